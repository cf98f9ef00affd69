//! The one response writer (DESIGN section 3).
//!
//! Every packet answering a client command goes through [`ResponseWriter`], whichever command
//! produced it: COM_QUERY, each statement of a multi-statement COM_QUERY, COM_STMT_EXECUTE,
//! COM_STMT_PREPARE. Its explicit state decides where an error can still go:
//!
//! ```text
//!             columns()                 finish() / ok()
//!   Idle ───────────────> InResultSet ─────────────────> Terminated{more_results}
//!    │   ok() / error()        │ error(): ERR replaces the terminator
//!    └─────────────────────────┴──────────────────────> Terminated{more_results: false}
//! ```
//!
//! - an error while `InResultSet` is written as ERR in place of the EOF/OK terminator;
//! - after a terminator carrying SERVER_MORE_RESULTS_EXISTS the error *is* the next result;
//! - only after a final terminator has an error nowhere to go: [`ErrorDisposition::Close`].
//!
//! This is why the Vitess bugs (connection dropped on a mid-stream error, on a failing second
//! statement, on a failing prepare) cannot happen: no caller decides these cases by itself.

use crate::error::SqlError;
use crate::wire::binary::{put_binary_row, text_row_to_binary, PrepareOk};
use crate::wire::codec::put_lenenc_int;
use crate::wire::consts::{cap, status};
use crate::wire::generic::{put_eof, put_err, put_ok};
use crate::wire::packet::payload_len;
use crate::wire::value::put_text_row;
use crate::wire::{ColumnDef, OkInfo, PacketOut, Value};
use bytes::BytesMut;
use std::sync::Arc;

/// Which row encoding the current result uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowFormat {
    /// COM_QUERY: text rows.
    Text,
    /// COM_STMT_EXECUTE: binary rows.
    Binary,
}

/// Where the writer stands within the answer to the current command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriterState {
    /// Nothing sent yet for the current statement.
    Idle,
    /// Column definitions sent; rows may follow.
    InResultSet { rows_sent: u64 },
    /// The statement is answered. With `more_results` another result follows in this batch.
    Terminated { more_results: bool },
}

/// What happened to an error handed to [`ResponseWriter::error`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorDisposition {
    /// An ERR packet was written; the connection stays usable.
    Sent,
    /// The answer was already complete: the error has nowhere to go and the connection must be
    /// closed (the caller logs why).
    Close,
}

/// A call that does not fit the current state: a bug in the caller, reported instead of
/// producing a malformed stream. The session answers it as ERR 1105 where it still can.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriterMisuse {
    pub call: &'static str,
    pub state: WriterState,
}

impl WriterMisuse {
    /// The ERR 1105 answering it where the answer still can take one.
    pub fn to_sql_error(&self) -> SqlError {
        SqlError::internal(format!(
            "response writer misuse: {} in {:?}",
            self.call, self.state
        ))
    }
}

/// Writes responses into a caller-owned buffer. See the module docs for the state machine.
#[derive(Debug)]
pub struct ResponseWriter {
    caps: u32,
    /// MariaDB's metadata caching was negotiated: every column-count packet says whether the
    /// definitions follow.
    cache_metadata: bool,
    state: WriterState,
    out: PacketOut,
    /// Does the current statement's terminator carry MORE_RESULTS (a later statement follows)?
    more_after_current: bool,
    format: RowFormat,
    columns: Arc<[ColumnDef]>,
    /// The encoded definitions of `columns` (payloads back to back, with their ends): a
    /// result with the very same columns as the last one is written without encoding.
    encoded: Vec<u8>,
    encoded_ends: Vec<usize>,
    /// Session status bits (autocommit, in transaction) added to every OK/EOF.
    session_status: u16,
    scratch: Vec<u8>,
}

impl ResponseWriter {
    pub fn new(caps: u32) -> Self {
        ResponseWriter {
            caps,
            cache_metadata: false,
            state: WriterState::Terminated {
                more_results: false,
            },
            out: PacketOut::new(1),
            more_after_current: false,
            format: RowFormat::Text,
            columns: Arc::from(Vec::new()),
            encoded: Vec::new(),
            encoded_ends: Vec::new(),
            session_status: status::AUTOCOMMIT,
            scratch: Vec::new(),
        }
    }

    // ---- getters ----

    pub fn state(&self) -> WriterState {
        self.state
    }
    pub fn capabilities(&self) -> u32 {
        self.caps
    }
    /// Was MariaDB's metadata caching negotiated with the client?
    pub fn caches_metadata(&self) -> bool {
        self.cache_metadata
    }
    /// The columns of the result set being written (binary encoding needs their types).
    pub fn columns(&self) -> &[ColumnDef] {
        &self.columns
    }
    /// Has the current command's answer ended (final terminator or ERR)?
    pub fn is_complete(&self) -> bool {
        self.state
            == WriterState::Terminated {
                more_results: false,
            }
    }

    // ---- configuration ----

    pub fn set_capabilities(&mut self, caps: u32) {
        self.caps = caps;
    }
    pub fn set_metadata_caching(&mut self, on: bool) {
        self.cache_metadata = on;
    }
    pub fn set_session_status(&mut self, bits: u16) {
        self.session_status = bits;
    }

    // ---- starting ----

    /// A new command arrived with sequence id `seq`: answers continue the sequence.
    pub fn start_command(&mut self, seq: u8) {
        self.out = PacketOut::new(seq.wrapping_add(1));
        self.state = WriterState::Idle;
        self.more_after_current = false;
    }

    /// A statement of the current command begins; `more_after` says whether another
    /// statement of the same batch follows it.
    pub fn start_statement(&mut self, more_after: bool) -> Result<(), WriterMisuse> {
        match self.state {
            WriterState::Idle | WriterState::Terminated { more_results: true } => {
                self.state = WriterState::Idle;
                self.more_after_current = more_after;
                Ok(())
            }
            s => Err(WriterMisuse {
                call: "start_statement",
                state: s,
            }),
        }
    }

    // ---- results ----

    /// Sends the column count and definitions (and EOF without DEPRECATE_EOF).
    pub fn columns_begin(
        &mut self,
        buf: &mut BytesMut,
        columns: &[ColumnDef],
        format: RowFormat,
    ) -> Result<(), WriterMisuse> {
        self.columns_begin_shared(buf, Arc::from(columns), format)
    }

    /// [`ResponseWriter::columns_begin`] for shared columns: the same `Arc` as the previous
    /// result's (a relayed shard result read again) reuses their encoding.
    pub fn columns_begin_shared(
        &mut self,
        buf: &mut BytesMut,
        columns: Arc<[ColumnDef]>,
        format: RowFormat,
    ) -> Result<(), WriterMisuse> {
        self.begin_result(buf, columns, format, false)
    }

    /// [`ResponseWriter::columns_begin_shared`] for columns the client already holds (the
    /// ones last described to it for the prepared statement being executed): under metadata
    /// caching only their count goes out; without it this is `columns_begin_shared`.
    pub fn columns_begin_known(
        &mut self,
        buf: &mut BytesMut,
        columns: Arc<[ColumnDef]>,
        format: RowFormat,
    ) -> Result<(), WriterMisuse> {
        self.begin_result(buf, columns, format, self.cache_metadata)
    }

    fn begin_result(
        &mut self,
        buf: &mut BytesMut,
        columns: Arc<[ColumnDef]>,
        format: RowFormat,
        skip_definitions: bool,
    ) -> Result<(), WriterMisuse> {
        self.expect_idle("columns_begin")?;
        self.format = format;
        if skip_definitions {
            self.column_count(buf, columns.len(), false);
            self.columns = columns;
            self.encoded.clear();
            self.encoded_ends.clear();
            self.columns_end(buf);
            return Ok(());
        }
        if !Arc::ptr_eq(&self.columns, &columns) || self.encoded_ends.len() != columns.len() {
            self.encoded.clear();
            self.encoded_ends.clear();
            for c in columns.iter() {
                c.encode(&mut self.encoded);
                self.encoded_ends.push(self.encoded.len());
            }
            self.columns = columns;
        }
        self.column_count(buf, self.columns.len(), true);
        let mut from = 0;
        for &end in &self.encoded_ends {
            let start = self.out.begin(buf);
            buf.extend_from_slice(&self.encoded[from..end]);
            self.out.finish(buf, start);
            from = end;
        }
        self.columns_end(buf);
        Ok(())
    }

    /// The column-count packet; under metadata caching it says whether definitions follow.
    fn column_count(&mut self, buf: &mut BytesMut, count: usize, definitions_follow: bool) {
        let start = self.out.begin(buf);
        put_lenenc_int(buf, count as u64);
        if self.cache_metadata {
            buf.extend_from_slice(&[definitions_follow as u8]);
        }
        self.out.finish(buf, start);
    }

    /// After the column definitions (sent or skipped): the EOF of a client without
    /// DEPRECATE_EOF, and rows may follow.
    fn columns_end(&mut self, buf: &mut BytesMut) {
        if self.caps & cap::DEPRECATE_EOF == 0 {
            let start = self.out.begin(buf);
            put_eof(buf, 0, self.status_bits(false));
            self.out.finish(buf, start);
        }
        self.state = WriterState::InResultSet { rows_sent: 0 };
    }

    /// Sends one row given as values.
    pub fn row(&mut self, buf: &mut BytesMut, values: &[Value]) -> Result<(), RowError> {
        self.expect_rows("row")?;
        let start = self.out.begin(buf);
        let res = match self.format {
            RowFormat::Text => {
                put_text_row(buf, values, &mut self.scratch);
                Ok(())
            }
            RowFormat::Binary => put_binary_row(buf, &self.columns, values),
        };
        self.commit_row(buf, start, res)
    }

    /// Sends one row given as a text-protocol payload (forwarded from a shard as is, or
    /// converted to the binary protocol when the client executes a prepared statement).
    pub fn row_text(&mut self, buf: &mut BytesMut, payload: &[u8]) -> Result<(), RowError> {
        self.expect_rows("row_text")?;
        let start = self.out.begin(buf);
        let res = match self.format {
            RowFormat::Text => {
                buf.extend_from_slice(payload);
                Ok(())
            }
            RowFormat::Binary => text_row_to_binary(buf, &self.columns, payload),
        };
        self.commit_row(buf, start, res)
    }

    /// Sends one row given as a binary-protocol payload (a shard's answer to a forwarded
    /// COM_STMT_EXECUTE), as is. Only the header byte and the NULL bitmap's room are checked:
    /// the shard encoded the values for the very columns it sent.
    pub fn row_binary(&mut self, buf: &mut BytesMut, payload: &[u8]) -> Result<(), RowError> {
        self.expect_rows("row_binary")?;
        let start = self.out.begin(buf);
        let bitmap = (self.columns.len() + 7 + 2) / 8;
        let res = if self.format != RowFormat::Binary {
            Err(crate::wire::DecodeError("binary row in a text result"))
        } else if payload.first() != Some(&0) || payload.len() < 1 + bitmap {
            Err(crate::wire::DecodeError("malformed binary row"))
        } else {
            buf.extend_from_slice(payload);
            Ok(())
        };
        self.commit_row(buf, start, res)
    }

    /// Copies a shard's whole packets of a result set as they are (pass-through relay):
    /// the first `columns` bytes of `frames`, when not 0, are the column count and
    /// definitions that begin the result (the EOF after them is added for a client without
    /// DEPRECATE_EOF); `rows` rows follow. Sequence ids are rewritten to continue this answer.
    pub fn relay(
        &mut self,
        buf: &mut BytesMut,
        frames: &[u8],
        columns: usize,
        rows: u64,
        format: RowFormat,
    ) -> Result<(), WriterMisuse> {
        let (head, body) = frames.split_at(columns.min(frames.len()));
        if head.is_empty() {
            self.expect_rows("relay")?;
        } else {
            self.expect_idle("relay")?;
            self.format = format;
            if self.cache_metadata && head.len() >= 4 {
                // The shard's column count has no "metadata follows" byte; this client's must.
                let end = (4 + payload_len(head)).min(head.len());
                let start = self.out.begin(buf);
                buf.extend_from_slice(&head[4..end]);
                buf.extend_from_slice(&[1]);
                self.out.finish(buf, start);
                self.copy_frames(buf, &head[end..]);
            } else {
                self.copy_frames(buf, head);
            }
            self.columns_end(buf);
        }
        self.copy_frames(buf, body);
        if let WriterState::InResultSet { rows_sent } = &mut self.state {
            *rows_sent += rows;
        }
        Ok(())
    }

    /// Appends whole packets, renumbering them in this answer's sequence.
    fn copy_frames(&mut self, buf: &mut BytesMut, frames: &[u8]) {
        let mut at = buf.len();
        buf.extend_from_slice(frames);
        while at + 4 <= buf.len() {
            let len = payload_len(&buf[at..]);
            buf[at + 3] = self.out.seq;
            self.out.seq = self.out.seq.wrapping_add(1);
            at += 4 + len;
        }
    }

    /// Ends the result set with EOF (or OK-as-EOF under DEPRECATE_EOF).
    pub fn finish(&mut self, buf: &mut BytesMut, warnings: u16) -> Result<(), WriterMisuse> {
        self.expect_rows("finish")?;
        let more = self.more_after_current;
        let status = self.status_bits(more);
        let start = self.out.begin(buf);
        if self.caps & cap::DEPRECATE_EOF != 0 {
            let ok = OkInfo {
                status,
                warnings,
                ..Default::default()
            };
            put_ok(buf, &ok, 0xfe, self.caps);
        } else {
            put_eof(buf, warnings, status);
        }
        self.out.finish(buf, start);
        self.state = WriterState::Terminated { more_results: more };
        Ok(())
    }

    /// Answers a statement without result set.
    pub fn ok(&mut self, buf: &mut BytesMut, ok: &OkInfo) -> Result<(), WriterMisuse> {
        self.expect_idle("ok")?;
        let more = self.more_after_current;
        let ok = OkInfo {
            status: ok.status | self.status_bits(more),
            ..ok.clone()
        };
        let start = self.out.begin(buf);
        put_ok(buf, &ok, 0x00, self.caps);
        self.out.finish(buf, start);
        self.state = WriterState::Terminated { more_results: more };
        Ok(())
    }

    /// Answers COM_STMT_PREPARE: the header, then parameter and column definitions.
    pub fn prepared(
        &mut self,
        buf: &mut BytesMut,
        stmt_id: u32,
        params: &[ColumnDef],
        columns: &[ColumnDef],
    ) -> Result<(), WriterMisuse> {
        self.expect_idle("prepared")?;
        let header = PrepareOk {
            stmt_id,
            num_columns: columns.len() as u16,
            num_params: params.len() as u16,
            warnings: 0,
        };
        self.out.write(buf, &{
            let mut v = Vec::with_capacity(12);
            header.encode(&mut v);
            v
        });
        for defs in [params, columns] {
            if defs.is_empty() {
                continue;
            }
            for c in defs {
                let start = self.out.begin(buf);
                c.encode(buf);
                self.out.finish(buf, start);
            }
            if self.caps & cap::DEPRECATE_EOF == 0 {
                let start = self.out.begin(buf);
                put_eof(buf, 0, self.status_bits(false));
                self.out.finish(buf, start);
            }
        }
        self.state = WriterState::Terminated {
            more_results: false,
        };
        Ok(())
    }

    /// Sends an error wherever the answer stands; see [`ErrorDisposition`].
    pub fn error(&mut self, buf: &mut BytesMut, err: &SqlError) -> ErrorDisposition {
        match self.state {
            WriterState::Terminated {
                more_results: false,
            } => return ErrorDisposition::Close,
            #[cfg(feature = "broken-writer")]
            WriterState::InResultSet { .. } => return ErrorDisposition::Close,
            _ => {}
        }
        let start = self.out.begin(buf);
        put_err(buf, err);
        self.out.finish(buf, start);
        // An ERR ends the command: a batch stops at its first error.
        self.state = WriterState::Terminated {
            more_results: false,
        };
        ErrorDisposition::Sent
    }

    /// A packet outside result sets (e.g. a one-off reply to COM_PING via `ok`, or the raw
    /// EOF some legacy commands expect), continuing the sequence. Ends the command.
    pub fn raw_final(&mut self, buf: &mut BytesMut, payload: &[u8]) {
        self.out.write(buf, payload);
        self.state = WriterState::Terminated {
            more_results: false,
        };
    }

    /// A packet in the sequence that does not change the answer's state (auth-more-data
    /// before the OK that accepts a connection).
    pub fn raw_continue(&mut self, buf: &mut BytesMut, payload: &[u8]) {
        self.out.write(buf, payload);
    }

    // ---- internals ----

    fn status_bits(&self, more: bool) -> u16 {
        self.session_status | if more { status::MORE_RESULTS_EXISTS } else { 0 }
    }

    fn expect_idle(&self, call: &'static str) -> Result<(), WriterMisuse> {
        match self.state {
            WriterState::Idle => Ok(()),
            s => Err(WriterMisuse { call, state: s }),
        }
    }

    fn expect_rows(&self, call: &'static str) -> Result<(), WriterMisuse> {
        match self.state {
            WriterState::InResultSet { .. } => Ok(()),
            s => Err(WriterMisuse { call, state: s }),
        }
    }

    fn commit_row(
        &mut self,
        buf: &mut BytesMut,
        start: usize,
        res: Result<(), crate::wire::DecodeError>,
    ) -> Result<(), RowError> {
        match res {
            Ok(()) => {
                self.out.finish(buf, start);
                if let WriterState::InResultSet { rows_sent } = &mut self.state {
                    *rows_sent += 1;
                }
                Ok(())
            }
            Err(e) => {
                // Drop the half-written packet; the header slot too.
                buf.truncate(start - 4);
                Err(RowError::Encode(e))
            }
        }
    }
}

/// A row that could not be written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RowError {
    Misuse(WriterMisuse),
    /// The value does not fit its column type (e.g. text "abc" in an INT column in binary mode).
    Encode(crate::wire::DecodeError),
}

impl From<WriterMisuse> for RowError {
    fn from(m: WriterMisuse) -> Self {
        RowError::Misuse(m)
    }
}

impl RowError {
    /// The error to send to the client in place of the row.
    pub fn to_sql_error(&self) -> SqlError {
        match self {
            RowError::Misuse(m) => m.to_sql_error(),
            RowError::Encode(e) => SqlError::internal(format!("cannot encode row: {e}")),
        }
    }
}

#[cfg(test)]
mod tests;
