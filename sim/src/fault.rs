//! Fault vocabulary and the packet-level filter that applies shard faults.
//!
//! Faults are world-agnostic values: the L0 stepper applies them to its links, and a turmoil
//! world can apply the same [`ShardFault`]s by passing a shard's output through a
//! [`FaultFilter`] before writing it to its socket.
//!
//! A shard fault is *armed* on a shard host and fires on the next answer it fits, whichever
//! backend connection of that host carries it:
//! - result-set faults ([`ShardFault::ErrorAfterRows`], [`ShardFault::DropAfterRows`],
//!   [`ShardFault::StallAfterRows`]) fire on the next result set: after its column definitions
//!   and N rows (or at its terminator, if it has fewer rows), the rest of the answer is replaced
//!   by an ERR packet carrying the next sequence id, by closing the connection, or by a hold;
//! - [`ShardFault::ErrorAfterOk`] fires on the next final OK (a statement without result set):
//!   the shard sends one extra ERR packet after it — garbage the gateway must not forward;
//! - [`ShardFault::MoreResults`] fires on the next final EOF or OK: it carries MORE_RESULTS,
//!   as a `CALL`'s answer does, followed by nothing, a trailing OK, or a held trailing OK;
//! - [`ShardFault::OnQuery`] fires on the next statement the shard *receives* that starts with
//!   the given words (e.g. `commit`): the [`RequestFilter`] in front of the engine either runs
//!   `ROLLBACK` in its place and answers ERR (as InnoDB does on a deadlock: the transaction is
//!   gone), or closes the connection before the engine sees it (the engine rolls back).
//!
//! The filter decodes the shard's bytes with a [`Tracker`], so it knows where rows begin and
//! where the answer ends; packets are re-framed unchanged when no fault fires.

use crate::link::LinkItem;
use crate::render;
use crate::trace::{Decoded, Kind, Tracker};
use bytes::BytesMut;
use shardgate_core::wire::consts::status;
use shardgate_core::wire::consts::MAX_PACKET_PAYLOAD;
use shardgate_core::wire::generic::{decode_ok, is_eof, put_err, put_ok};
use shardgate_core::wire::{OkInfo, PacketOut};
use shardgate_core::SqlError;
use std::collections::VecDeque;

/// A fault of one shard host.
#[derive(Clone, PartialEq)]
pub enum ShardFault {
    /// The next result set is cut after `rows` rows (0: right after the column definitions) by
    /// an ERR packet.
    ErrorAfterRows { rows: u64, error: SqlError },
    /// The shard closes the connection after `rows` rows of the next result set.
    DropAfterRows { rows: u64 },
    /// The shard stops sending after `rows` rows of the next result set, until resumed.
    StallAfterRows { rows: u64 },
    /// The shard sends an extra ERR after the next final OK.
    ErrorAfterOk { error: SqlError },
    /// The next final terminator (EOF or OK) carries MORE_RESULTS, as a `CALL`'s answer does;
    /// `then` says what follows it.
    MoreResults { then: Trailing },
    /// The next statement received that starts with `prefix` (words, case-insensitive) fails
    /// before it runs: see [`QueryFault`].
    OnQuery { prefix: String, fault: QueryFault },
}

/// What [`ShardFault::OnQuery`] does to the statement.
#[derive(Clone, PartialEq)]
pub enum QueryFault {
    /// The engine runs `ROLLBACK` instead and the answer is this ERR (a deadlock at commit).
    Error(SqlError),
    /// The shard closes the connection without running it (its transaction rolls back).
    Drop,
}

/// What follows a terminator that [`ShardFault::MoreResults`] marked with MORE_RESULTS.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Trailing {
    /// Nothing: the rest of the answer never comes.
    Nothing,
    /// A final OK, as after a `CALL`'s result sets.
    Ok,
    /// A final OK, held until the shard is resumed (the client can act in between).
    HeldOk,
}

impl ShardFault {
    /// The scenario spelling (`after_rows=3 error=2013`), for transcripts and sweeps' printouts.
    pub fn spec(&self) -> String {
        match self {
            ShardFault::ErrorAfterRows { rows: 0, error } => {
                format!("after_fields error={}", error.code)
            }
            ShardFault::ErrorAfterRows { rows, error } => {
                format!("after_rows={rows} error={}", error.code)
            }
            ShardFault::DropAfterRows { rows } => format!("drop_after_rows={rows}"),
            ShardFault::StallAfterRows { rows } => format!("stall_after_rows={rows}"),
            ShardFault::ErrorAfterOk { error } => format!("after_ok error={}", error.code),
            ShardFault::MoreResults {
                then: Trailing::Nothing,
            } => "more_after_final".to_string(),
            ShardFault::MoreResults { then: Trailing::Ok } => "trailing_ok".to_string(),
            ShardFault::MoreResults {
                then: Trailing::HeldOk,
            } => "trailing_ok held".to_string(),
            ShardFault::OnQuery {
                prefix,
                fault: QueryFault::Error(e),
            } => format!("on_query={} error={}", prefix.replace(' ', "_"), e.code),
            ShardFault::OnQuery {
                prefix,
                fault: QueryFault::Drop,
            } => format!("on_query={} drop", prefix.replace(' ', "_")),
        }
    }

    fn on_result_set(&self) -> bool {
        matches!(
            self,
            ShardFault::ErrorAfterRows { .. }
                | ShardFault::DropAfterRows { .. }
                | ShardFault::StallAfterRows { .. }
        )
    }
}

/// The error a fault injects for `code`: MySQL's SQLSTATE and wording where known, so
/// transcripts read like the real thing. `state` overrides the SQLSTATE.
pub fn injected_error(code: u16, state: Option<&str>) -> SqlError {
    let (st, msg) = match code {
        1053 => ("08S01", "Server shutdown in progress"),
        1105 => ("HY000", "Unknown error (injected fault)"),
        1146 => ("42S02", "Table doesn't exist (injected fault)"),
        1205 => (
            "HY000",
            "Lock wait timeout exceeded; try restarting transaction",
        ),
        1213 => (
            "40001",
            "Deadlock found when trying to get lock; try restarting transaction",
        ),
        1317 => ("70100", "Query execution was interrupted"),
        2013 => ("HY000", "Lost connection to MySQL server during query"),
        3024 => (
            "HY000",
            "Query execution was interrupted, maximum statement execution time exceeded",
        ),
        _ => ("HY000", "injected fault"),
    };
    SqlError::new(code, state.unwrap_or(st), msg)
}

/// What the filter wants done besides forwarding bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum FilterAction {
    None,
    /// The shard closed the connection (drop fault): close the shard's end now.
    CloseShard,
}

/// Applies shard faults to one backend connection's server-to-client bytes.
pub struct FaultFilter {
    tracker: Tracker,
    active: Option<(ShardFault, u64)>,
    /// Dropping the rest of an answer after an injected ERR.
    dropping: bool,
    closed: bool,
    /// The next answer's final packet becomes this ERR (set by the [`RequestFilter`]).
    replace_answer: Option<SqlError>,
    scratch: Vec<Decoded>,
}

impl Default for FaultFilter {
    fn default() -> Self {
        FaultFilter::new()
    }
}

impl FaultFilter {
    pub fn new() -> FaultFilter {
        FaultFilter {
            tracker: Tracker::new(false),
            active: None,
            dropping: false,
            closed: false,
            replace_answer: None,
            scratch: Vec::new(),
        }
    }

    /// The answer to the command now in flight ends with `error` in place of its OK or ERR.
    pub fn replace_answer(&mut self, error: SqlError) {
        self.replace_answer = Some(error);
    }

    /// Bytes the gateway sent to the shard (the filter must see commands to classify answers).
    pub fn on_request(&mut self, data: &[u8]) {
        self.scratch.clear();
        self.tracker.on_request(data, &mut self.scratch);
    }

    /// Bytes the shard sent: appends what the gateway will receive to `out`. `armed` is the
    /// shard host's queue of faults; `who` names the connection in fault notes
    /// (`shard 0 (a.0)`).
    pub fn on_response(
        &mut self,
        data: &[u8],
        armed: &mut VecDeque<ShardFault>,
        who: &str,
        out: &mut Vec<LinkItem>,
    ) -> FilterAction {
        if self.closed {
            return FilterAction::None;
        }
        self.scratch.clear();
        self.tracker.on_response(data, &mut self.scratch);
        let packets = std::mem::take(&mut self.scratch);
        let mut pass = BytesMut::new();
        let mut action = FilterAction::None;
        for p in &packets {
            if self.closed {
                break;
            }
            if self.dropping {
                self.dropping = !p.ends_command;
                continue;
            }
            if p.ends_command {
                if let Some(error) = self.replace_answer.take() {
                    flush(&mut pass, out);
                    let mut payload = Vec::new();
                    put_err(&mut payload, &error);
                    PacketOut::new(p.seq).write(&mut pass, &payload);
                    continue;
                }
            }
            match &p.kind {
                Kind::ColumnCount => {
                    if self.active.is_none() {
                        if let Some(i) = armed.iter().position(ShardFault::on_result_set) {
                            self.active = armed.remove(i).map(|f| (f, 0));
                        }
                    }
                    reframe(&mut pass, p);
                }
                Kind::Row | Kind::End { .. } if self.active.is_some() => {
                    let Some((fault, seen)) = self.active.as_mut() else {
                        continue;
                    };
                    let limit = match fault {
                        ShardFault::ErrorAfterRows { rows, .. }
                        | ShardFault::DropAfterRows { rows }
                        | ShardFault::StallAfterRows { rows } => *rows,
                        ShardFault::ErrorAfterOk { .. }
                        | ShardFault::MoreResults { .. }
                        | ShardFault::OnQuery { .. } => u64::MAX,
                    };
                    if matches!(p.kind, Kind::Row) && *seen < limit {
                        *seen += 1;
                        reframe(&mut pass, p);
                        continue;
                    }
                    let after = after_text(*seen);
                    let Some((fault, _)) = self.active.take() else {
                        continue;
                    };
                    flush(&mut pass, out);
                    match fault {
                        ShardFault::ErrorAfterRows { error, .. } => {
                            out.push(LinkItem::Note(format!(
                                "fault: {who} error {} {after}",
                                error.code
                            )));
                            let mut b = BytesMut::new();
                            let mut payload = Vec::new();
                            put_err(&mut payload, &error);
                            PacketOut::new(p.seq).write(&mut b, &payload);
                            out.push(LinkItem::Data(b.freeze()));
                            self.dropping = !p.ends_command;
                        }
                        ShardFault::DropAfterRows { .. } => {
                            out.push(LinkItem::Note(format!(
                                "fault: {who} drops the connection {after}"
                            )));
                            out.push(LinkItem::Close);
                            self.closed = true;
                            action = FilterAction::CloseShard;
                        }
                        ShardFault::StallAfterRows { .. } => {
                            out.push(LinkItem::Note(format!("fault: {who} stalls {after}")));
                            out.push(LinkItem::Hold);
                            reframe(&mut pass, p);
                        }
                        ShardFault::ErrorAfterOk { .. }
                        | ShardFault::MoreResults { .. }
                        | ShardFault::OnQuery { .. } => reframe(&mut pass, p),
                    }
                }
                Kind::End {
                    more: false,
                    status,
                }
                | Kind::Ok {
                    more: false,
                    status,
                } if armed
                    .iter()
                    .any(|f| matches!(f, ShardFault::MoreResults { .. })) =>
                {
                    let i = armed
                        .iter()
                        .position(|f| matches!(f, ShardFault::MoreResults { .. }));
                    let Some(ShardFault::MoreResults { then }) = i.and_then(|i| armed.remove(i))
                    else {
                        continue;
                    };
                    flush(&mut pass, out);
                    let what = if matches!(p.kind, Kind::Ok { .. }) {
                        "OK"
                    } else {
                        "EOF"
                    };
                    let caps = self.tracker.capabilities();
                    let payload = with_more_results(&p.payload, caps);
                    out.push(LinkItem::Note(match then {
                        Trailing::Nothing => format!(
                            "fault: {who} marks its final {what} with MORE_RESULTS; the rest never comes"
                        ),
                        Trailing::Ok => format!(
                            "fault: {who} answers like a CALL: MORE_RESULTS on its final {what}, then a trailing OK"
                        ),
                        Trailing::HeldOk => format!(
                            "fault: {who} answers like a CALL: MORE_RESULTS on its final {what}, then a trailing OK held until resumed"
                        ),
                    }));
                    PacketOut::new(p.seq).write(&mut pass, &payload);
                    if then != Trailing::Nothing {
                        let ok = OkInfo {
                            status: status & !status::MORE_RESULTS_EXISTS,
                            ..OkInfo::default()
                        };
                        let mut trailing = Vec::new();
                        put_ok(&mut trailing, &ok, 0x00, caps);
                        if then == Trailing::HeldOk {
                            flush(&mut pass, out);
                            out.push(LinkItem::Hold);
                        }
                        PacketOut::new(p.seq.wrapping_add(1)).write(&mut pass, &trailing);
                    }
                }
                Kind::Ok { more: false, .. } => {
                    reframe(&mut pass, p);
                    let i = armed
                        .iter()
                        .position(|f| matches!(f, ShardFault::ErrorAfterOk { .. }));
                    if let Some(ShardFault::ErrorAfterOk { error }) =
                        i.and_then(|i| armed.remove(i))
                    {
                        flush(&mut pass, out);
                        out.push(LinkItem::Note(format!(
                            "fault: {who} sends ERR {} after the final OK",
                            error.code
                        )));
                        let mut payload = Vec::new();
                        put_err(&mut payload, &error);
                        PacketOut::new(p.seq.wrapping_add(1)).write(&mut pass, &payload);
                    }
                }
                _ => reframe(&mut pass, p),
            }
        }
        flush(&mut pass, out);
        self.scratch = packets;
        action
    }
}

/// What the [`RequestFilter`] made of bytes the gateway sent to a shard.
pub enum Intercept {
    /// Hand these bytes to the engine (possibly rewritten).
    Forward(Vec<u8>),
    /// Hand these bytes to the engine, then close the connection from the shard's side (the
    /// note says why); later bytes are lost.
    Drop { forward: Vec<u8>, note: String },
}

/// Applies [`ShardFault::OnQuery`] to the gateway-to-shard bytes of one connection, in front
/// of the engine. Passes bytes through untouched unless an `OnQuery` fault is armed (or a
/// packet is half-read), so fault-free runs hand the engine exactly what was sent.
#[derive(Default)]
pub struct RequestFilter {
    decoder: Option<shardgate_core::wire::PacketDecoder>,
}

impl RequestFilter {
    /// Bytes on their way to the engine. A matching statement is answered through `filter`
    /// (its answer replaced by the ERR) or makes the connection drop; `notes` gets one line
    /// per fired fault.
    pub fn on_request(
        &mut self,
        data: &[u8],
        armed: &mut VecDeque<ShardFault>,
        filter: &mut FaultFilter,
        who: &str,
        notes: &mut Vec<String>,
    ) -> Intercept {
        let any_armed = armed
            .iter()
            .any(|f| matches!(f, ShardFault::OnQuery { .. }));
        let decoder = match &mut self.decoder {
            Some(d) => d,
            None if !any_armed => return Intercept::Forward(data.to_vec()),
            None => self
                .decoder
                .insert(shardgate_core::wire::PacketDecoder::new(1 << 30)),
        };
        decoder.extend(data);
        let mut out = BytesMut::new();
        while let Ok(Some(p)) = decoder.next_packet() {
            let fired = if p.seq == 0
                && p.payload.first() == Some(&shardgate_core::wire::consts::com::QUERY)
            {
                let sql = String::from_utf8_lossy(&p.payload[1..]).to_ascii_lowercase();
                let words: Vec<&str> = sql.split_whitespace().collect();
                let i = armed.iter().position(|f| match f {
                    ShardFault::OnQuery { prefix, .. } => {
                        let want: Vec<&str> = prefix.split_whitespace().collect();
                        words.len() >= want.len()
                            && words
                                .iter()
                                .zip(&want)
                                .all(|(w, x)| w.trim_end_matches(';') == *x)
                    }
                    _ => false,
                });
                i.and_then(|i| armed.remove(i))
            } else {
                None
            };
            match fired {
                Some(ShardFault::OnQuery {
                    prefix,
                    fault: QueryFault::Error(e),
                }) => {
                    notes.push(format!(
                        "fault: {who} fails `{prefix}` with ERR {}: runs ROLLBACK in its place",
                        e.code
                    ));
                    filter.replace_answer(e);
                    let mut payload = vec![shardgate_core::wire::consts::com::QUERY];
                    payload.extend_from_slice(b"ROLLBACK");
                    PacketOut::new(0).write(&mut out, &payload);
                }
                Some(ShardFault::OnQuery { prefix, .. }) => {
                    let note = format!("fault: {who} drops the connection on `{prefix}`");
                    self.decoder = None;
                    return Intercept::Drop {
                        forward: out.to_vec(),
                        note,
                    };
                }
                _ => {
                    let pieces = (p.payload.len() / MAX_PACKET_PAYLOAD) as u8;
                    PacketOut::new(p.seq.wrapping_sub(pieces)).write(&mut out, &p.payload);
                }
            }
        }
        if decoder.buffered() == 0 && !any_armed {
            self.decoder = None;
        }
        Intercept::Forward(out.to_vec())
    }
}

/// A final EOF / OK payload with SERVER_MORE_RESULTS_EXISTS set.
fn with_more_results(payload: &[u8], caps: u32) -> Vec<u8> {
    if is_eof(payload) && payload.len() >= 5 {
        let mut v = payload.to_vec();
        let st = u16::from_le_bytes([v[3], v[4]]) | status::MORE_RESULTS_EXISTS;
        v[3..5].copy_from_slice(&st.to_le_bytes());
        return v;
    }
    match decode_ok(payload, caps) {
        Ok(mut ok) => {
            ok.status |= status::MORE_RESULTS_EXISTS;
            let mut v = Vec::with_capacity(payload.len());
            put_ok(&mut v, &ok, payload[0], caps);
            v
        }
        Err(_) => payload.to_vec(),
    }
}

fn after_text(rows: u64) -> String {
    match rows {
        0 => "after fields".to_string(),
        1 => "after 1 row".to_string(),
        n => format!("after {n} rows"),
    }
}

/// Writes a decoded packet back as it came: `seq` is that of its last physical packet, so a
/// payload of 16 MiB or more (split on the wire) starts as many ids earlier.
fn reframe(buf: &mut BytesMut, p: &Decoded) {
    let pieces = (p.payload.len() / MAX_PACKET_PAYLOAD) as u8;
    PacketOut::new(p.seq.wrapping_sub(pieces)).write(buf, &p.payload);
}

fn flush(buf: &mut BytesMut, out: &mut Vec<LinkItem>) {
    if !buf.is_empty() {
        out.push(LinkItem::Data(buf.split().freeze()));
    }
}

/// `ERR 2013 (HY000) ...` for fault descriptions.
pub fn describe_error(e: &SqlError) -> String {
    render::err(e)
}
