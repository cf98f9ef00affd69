//! Protocol-state decoding of one MySQL connection, both directions.
//!
//! A [`Tracker`] watches the bytes a client sends ([`Tracker::on_request`]) and the bytes the
//! server answers ([`Tracker::on_response`]) and classifies every packet by the connection's
//! protocol state: handshake, command, column definitions, rows, terminators. It knows what
//! to expect because it sees the command that started each answer, exactly as a client does.
//!
//! It serves two purposes with one state machine:
//! - transcripts: each packet renders as at most one line (column definitions become one
//!   `columns N: ...` line once all have arrived);
//! - fault injection ([`crate::fault`]): the filter on a shard's output needs to know where
//!   rows begin and where a command's answer ends, and the sequence id to give an injected ERR.
//!
//! Anything a well-behaved peer never sends (a packet while no command is pending, a wrong
//! sequence id, an undecodable row) is reported as [`Kind::Violation`]; the simulator treats a
//! violation on a gateway-to-client link as a failed run.

use crate::render;
use bytes::Bytes;
use shardgate_core::wire::binary::{
    decode_binary_row, decode_execute_params, ParamType, PrepareOk,
};
use shardgate_core::wire::consts::{cap, com, mariadb_cap, status};
use shardgate_core::wire::generic::{decode_eof, decode_err, decode_ok, is_eof};
use shardgate_core::wire::handshake::{AuthSwitchRequest, HandshakeResponse, HandshakeV10};
use shardgate_core::wire::value::TextRow;
use shardgate_core::wire::{ColumnDef, OkInfo, PacketDecoder, Reader};
use shardgate_core::SqlError;
use std::collections::BTreeMap;

/// What one packet is, given the connection's state.
#[derive(Clone, PartialEq)]
pub enum Kind {
    // ---- server to client ----
    Greeting,
    AuthSwitch,
    AuthMore,
    /// The OK that accepts a connection.
    AuthOk,
    ColumnCount,
    ColumnDef,
    /// The EOF after column definitions (without DEPRECATE_EOF).
    ColumnsEof,
    Row,
    /// The end of a result set (EOF, or OK-as-EOF under DEPRECATE_EOF).
    End {
        status: u16,
        more: bool,
    },
    /// A statement without result set.
    Ok {
        status: u16,
        more: bool,
    },
    Err(SqlError),
    PrepareOk,
    PrepareDef,
    /// COM_STATISTICS's string, COM_SET_OPTION's EOF and similar one-off answers.
    Other,
    // ---- client to server ----
    HandshakeResponse,
    AuthData,
    Command(u8),
    // ---- either ----
    Violation(String),
}

/// One logical packet with its classification.
#[derive(Clone)]
pub struct Decoded {
    pub seq: u8,
    pub payload: Bytes,
    pub kind: Kind,
    /// Does this packet complete the answer to the pending command (or refuse the connection)?
    pub ends_command: bool,
    /// The transcript line, when rendering is on and the packet deserves one.
    pub line: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    AwaitGreeting,
    AwaitHandshakeResponse,
    AwaitAuthResult,
    /// The server asked for more auth data (switch request); the client answers next.
    AwaitAuthData,
    Idle,
    Answer(Answer),
    Closed,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Answer {
    /// OK, ERR or a column count (COM_QUERY, COM_STMT_EXECUTE).
    ResultStart,
    ColumnDefs {
        left: u64,
    },
    ColumnsEof,
    Rows,
    PrepareStart,
    PrepareDefs {
        params_left: u16,
        cols_left: u16,
        eofs_left: u8,
    },
    /// One OK or ERR.
    Simple,
    /// COM_SET_OPTION: EOF or ERR.
    SetOption,
    /// COM_STATISTICS: a bare string.
    Statistics,
}

/// Tracks one connection. See the module docs.
pub struct Tracker {
    render: bool,
    req: PacketDecoder,
    resp: PacketDecoder,
    state: State,
    server_caps: u32,
    caps: u32,
    /// Sequence id the next server packet must carry.
    next_seq: u8,
    /// Rows of the current result are binary (COM_STMT_EXECUTE).
    binary: bool,
    columns: Vec<ColumnDef>,
    /// Parameter and column definitions of a prepare answer, collected for one line each.
    prep_params: Vec<ColumnDef>,
    prep: Option<PrepareOk>,
    /// Prepared statements seen on this connection.
    statements: BTreeMap<u32, Statement>,
    /// MariaDB's extended capabilities of the greeting.
    server_mariadb_caps: u32,
    /// MariaDB's metadata caching was negotiated: column counts carry "metadata follows".
    cache_metadata: bool,
    /// The statement the current COM_STMT_EXECUTE runs.
    executing: Option<u32>,
}

/// A prepared statement as the wire showed it.
struct Statement {
    /// Parameter count and bound types (to render COM_STMT_EXECUTE parameters).
    params: usize,
    types: Vec<ParamType>,
    /// The result columns last described for it (prepare answer or execute), which an
    /// execute under metadata caching may skip.
    described: Vec<ColumnDef>,
}

impl Tracker {
    /// `render`: produce transcript lines (off for the fault filter, which only classifies).
    pub fn new(render: bool) -> Tracker {
        Tracker {
            render,
            req: PacketDecoder::new(1 << 30),
            resp: PacketDecoder::new(1 << 30),
            state: State::AwaitGreeting,
            server_caps: 0,
            caps: 0,
            next_seq: 0,
            binary: false,
            columns: Vec::new(),
            prep_params: Vec::new(),
            prep: None,
            statements: BTreeMap::new(),
            server_mariadb_caps: 0,
            cache_metadata: false,
            executing: None,
        }
    }

    /// Is an answer in progress (a command sent and not fully answered)?
    pub fn in_answer(&self) -> bool {
        matches!(self.state, State::Answer(_))
    }

    /// Capabilities agreed by both ends (known once the handshake response passed).
    pub fn capabilities(&self) -> u32 {
        self.caps
    }

    /// Bytes the client sent.
    pub fn on_request(&mut self, data: &[u8], out: &mut Vec<Decoded>) {
        self.req.extend(data);
        while let Ok(Some(p)) = self.req.next_packet() {
            let d = self.request_packet(p.seq, p.payload);
            out.push(d);
        }
    }

    /// Bytes the server sent.
    pub fn on_response(&mut self, data: &[u8], out: &mut Vec<Decoded>) {
        self.resp.extend(data);
        while let Ok(Some(p)) = self.resp.next_packet() {
            let d = self.response_packet(p.seq, p.payload);
            out.push(d);
        }
    }

    /// The connection closed.
    pub fn on_close(&mut self) {
        self.state = State::Closed;
    }

    fn deprecate_eof(&self) -> bool {
        self.caps & cap::DEPRECATE_EOF != 0
    }

    // ---- requests ----

    fn request_packet(&mut self, seq: u8, payload: Bytes) -> Decoded {
        let mut d = Decoded {
            seq,
            kind: Kind::Other,
            ends_command: false,
            line: None,
            payload: Bytes::new(),
        };
        match self.state {
            State::AwaitHandshakeResponse => {
                d.kind = Kind::HandshakeResponse;
                match HandshakeResponse::decode(&payload) {
                    Ok(r) => {
                        self.caps = self.server_caps & r.capabilities;
                        self.cache_metadata = self.server_mariadb_caps
                            & r.mariadb_capabilities
                            & mariadb_cap::CACHE_METADATA
                            != 0;
                        if self.render {
                            let mut line = format!("handshake response user={}", r.user);
                            if let Some(db) = &r.database {
                                line.push_str(" db=");
                                line.push_str(db);
                            }
                            d.line = Some(line);
                        }
                    }
                    Err(e) => {
                        d.kind = Kind::Violation(format!("bad handshake response: {e}"));
                    }
                }
                self.next_seq = seq.wrapping_add(1);
                self.state = State::AwaitAuthResult;
            }
            State::AwaitAuthData => {
                d.kind = Kind::AuthData;
                d.line = self.render.then(|| "auth data".to_string());
                self.next_seq = seq.wrapping_add(1);
                self.state = State::AwaitAuthResult;
            }
            State::Idle => {
                self.next_seq = seq.wrapping_add(1);
                d = self.command(seq, &payload);
                if seq != 0 {
                    d.kind = Kind::Violation(format!("command with sequence id {seq}, not 0"));
                }
            }
            State::Closed => {}
            s => {
                d.kind = Kind::Violation(format!(
                    "client packet while the server's answer is incomplete ({})",
                    state_name(s)
                ));
            }
        }
        if let (true, Kind::Violation(v)) = (self.render, &d.kind) {
            d.line = Some(format!("protocol violation: {v}"));
        }
        d.payload = payload;
        d
    }

    fn command(&mut self, seq: u8, payload: &[u8]) -> Decoded {
        let cmd = payload.first().copied().unwrap_or(0xff);
        let body = payload.get(1..).unwrap_or(&[]);
        let mut d = Decoded {
            seq,
            payload: Bytes::new(),
            kind: Kind::Command(cmd),
            ends_command: false,
            line: None,
        };
        let sql = |b: &[u8]| render::escape(b);
        self.executing = None;
        let (next, line) = match cmd {
            com::QUERY => {
                self.binary = false;
                (
                    Some(Answer::ResultStart),
                    format!("COM_QUERY {}", sql(body)),
                )
            }
            com::STMT_PREPARE => (
                Some(Answer::PrepareStart),
                format!("COM_STMT_PREPARE {}", sql(body)),
            ),
            com::STMT_EXECUTE => {
                self.binary = true;
                self.executing = Reader::new(body).u32().ok();
                (Some(Answer::ResultStart), self.execute_line(body))
            }
            com::STMT_CLOSE => {
                let id = Reader::new(body).u32().unwrap_or(0);
                self.statements.remove(&id);
                (None, format!("COM_STMT_CLOSE stmt={id}"))
            }
            com::STMT_SEND_LONG_DATA => (None, "COM_STMT_SEND_LONG_DATA".to_string()),
            com::QUIT => {
                self.state = State::Closed;
                d.line = self.render.then(|| "COM_QUIT".to_string());
                return d;
            }
            com::PING => (Some(Answer::Simple), "COM_PING".to_string()),
            com::INIT_DB => (Some(Answer::Simple), format!("COM_INIT_DB {}", sql(body))),
            com::STMT_RESET => (Some(Answer::Simple), "COM_STMT_RESET".to_string()),
            com::RESET_CONNECTION => (Some(Answer::Simple), "COM_RESET_CONNECTION".to_string()),
            com::SET_OPTION => (Some(Answer::SetOption), "COM_SET_OPTION".to_string()),
            com::STATISTICS => (Some(Answer::Statistics), "COM_STATISTICS".to_string()),
            com::PROCESS_KILL => {
                let id = Reader::new(body).u32().unwrap_or(0);
                (Some(Answer::Simple), format!("COM_PROCESS_KILL {id}"))
            }
            // Unknown commands get one ERR (or OK) from a well-behaved server.
            other => (Some(Answer::Simple), format!("COM_0x{other:02x}")),
        };
        if let Some(a) = next {
            self.state = State::Answer(a);
        }
        if self.render {
            d.line = Some(line);
        }
        d
    }

    fn execute_line(&mut self, body: &[u8]) -> String {
        let mut r = Reader::new(body);
        let id = r.u32().unwrap_or(0);
        let _ = (r.u8(), r.u32());
        let mut line = format!("COM_STMT_EXECUTE stmt={id}");
        if let Some(st) = self.statements.get_mut(&id) {
            match decode_execute_params(&mut r, st.params, &mut st.types, &[]) {
                Ok(values) if !values.is_empty() => {
                    line.push_str(" (");
                    for (i, v) in values.iter().enumerate() {
                        if i > 0 {
                            line.push_str(", ");
                        }
                        line.push_str(&render::param(v));
                    }
                    line.push(')');
                }
                Ok(_) => {}
                Err(e) => {
                    line.push_str(" <undecodable parameters: ");
                    line.push_str(e.0);
                    line.push('>');
                }
            }
        }
        line
    }

    // ---- responses ----

    fn response_packet(&mut self, seq: u8, payload: Bytes) -> Decoded {
        let mut d = Decoded {
            seq,
            kind: Kind::Other,
            ends_command: false,
            line: None,
            payload: Bytes::new(),
        };
        let expected = self.next_seq;
        self.next_seq = seq.wrapping_add(1);
        self.classify(&payload, &mut d);
        if !matches!(d.kind, Kind::Violation(_)) && seq != expected && self.state != State::Closed {
            d.kind = Kind::Violation(format!("sequence id {seq}, expected {expected}"));
        }
        if let (true, Kind::Violation(v)) = (self.render, &d.kind) {
            let what = d.line.take().map(|l| format!(" ({l})")).unwrap_or_default();
            d.line = Some(format!("protocol violation: {v}{what}"));
        }
        d.payload = payload;
        d
    }

    fn classify(&mut self, p: &[u8], d: &mut Decoded) {
        let first = p.first().copied();
        match self.state {
            State::AwaitGreeting => {
                if first == Some(0xff) {
                    self.refused(p, d);
                    return;
                }
                match HandshakeV10::decode(p) {
                    Ok(hs) => {
                        self.server_caps = hs.capabilities;
                        self.server_mariadb_caps = hs.mariadb_capabilities;
                        d.kind = Kind::Greeting;
                        if self.render {
                            d.line = Some(format!(
                                "handshake v10 server={} conn={}",
                                render::escape(hs.server_version.as_bytes()),
                                hs.connection_id
                            ));
                        }
                        self.state = State::AwaitHandshakeResponse;
                    }
                    Err(e) => d.kind = Kind::Violation(format!("bad handshake: {e}")),
                }
            }
            State::AwaitAuthResult => match first {
                Some(0x00) => {
                    d.kind = Kind::AuthOk;
                    d.ends_command = true;
                    let ok = decode_ok(p, self.caps).unwrap_or_default();
                    d.line = self.render.then(|| render::ok(&ok));
                    self.state = State::Idle;
                }
                Some(0xff) => self.refused(p, d),
                Some(0xfe) => {
                    d.kind = Kind::AuthSwitch;
                    if self.render {
                        let plugin = AuthSwitchRequest::decode(p)
                            .map(|s| s.plugin)
                            .unwrap_or_default();
                        d.line = Some(format!("auth switch plugin={plugin}"));
                    }
                    self.state = State::AwaitAuthData;
                }
                Some(0x01) => {
                    d.kind = Kind::AuthMore;
                    d.line = self.render.then(|| "auth more data".to_string());
                }
                _ => d.kind = Kind::Violation("unexpected packet during authentication".into()),
            },
            State::Answer(a) => self.answer(a, p, d),
            State::Idle => {
                d.kind = Kind::Violation("server packet while no command is pending".into());
                if self.render {
                    d.line = Some(self.describe_stray(p));
                }
            }
            State::AwaitHandshakeResponse | State::AwaitAuthData => {
                d.kind = Kind::Violation("server packet while the client's turn".into());
            }
            State::Closed => {}
        }
    }

    /// A line for a packet that arrived outside any answer (an ERR or OK is still readable).
    fn describe_stray(&self, p: &[u8]) -> String {
        match p.first() {
            Some(0xff) => decode_err(p)
                .map(|e| render::err(&e))
                .unwrap_or_else(|_| "ERR <malformed>".into()),
            Some(0x00) => decode_ok(p, self.caps)
                .map(|o| render::ok(&o))
                .unwrap_or_else(|_| "OK <malformed>".into()),
            _ => format!("{} bytes", p.len()),
        }
    }

    fn refused(&mut self, p: &[u8], d: &mut Decoded) {
        let e = decode_err(p).unwrap_or_else(|_| SqlError::new(2013, "HY000", "malformed ERR"));
        d.line = self.render.then(|| render::err(&e));
        d.kind = Kind::Err(e);
        d.ends_command = true;
        self.state = State::Closed;
    }

    fn err(&mut self, p: &[u8], d: &mut Decoded) {
        match decode_err(p) {
            Ok(e) => {
                d.line = self.render.then(|| render::err(&e));
                d.kind = Kind::Err(e);
            }
            Err(e) => d.kind = Kind::Violation(format!("malformed ERR: {e}")),
        }
        d.ends_command = true;
        self.state = State::Idle;
    }

    fn answer(&mut self, a: Answer, p: &[u8], d: &mut Decoded) {
        let first = p.first().copied();
        match a {
            Answer::ResultStart => match first {
                Some(0x00) => match decode_ok(p, self.caps) {
                    Ok(ok) => self.ok_packet(&ok, d),
                    Err(e) => d.kind = Kind::Violation(format!("malformed OK: {e}")),
                },
                Some(0xff) => self.err(p, d),
                Some(0xfb) => {
                    d.kind = Kind::Other;
                    d.line = self.render.then(|| "LOCAL INFILE request".to_string());
                }
                _ => {
                    let mut r = Reader::new(p);
                    match (r.lenenc_int(), self.cache_metadata.then(|| r.u8())) {
                        (Ok(n), Some(Ok(0))) if n > 0 => self.columns_skipped(n, d),
                        (Ok(n), None | Some(Ok(1))) if n > 0 => {
                            d.kind = Kind::ColumnCount;
                            self.columns.clear();
                            self.state = State::Answer(Answer::ColumnDefs { left: n });
                        }
                        _ => d.kind = Kind::Violation("malformed result set header".into()),
                    }
                }
            },
            Answer::ColumnDefs { left } => match ColumnDef::decode(p) {
                Ok(c) => {
                    d.kind = Kind::ColumnDef;
                    self.columns.push(c);
                    if left > 1 {
                        self.state = State::Answer(Answer::ColumnDefs { left: left - 1 });
                    } else {
                        d.line = self
                            .render
                            .then(|| render::columns("columns", &self.columns));
                        if let Some(st) = self
                            .executed_statement()
                            .and_then(|id| self.statements.get_mut(&id))
                        {
                            st.described.clone_from(&self.columns);
                        }
                        self.state = State::Answer(self.after_columns());
                    }
                }
                Err(e) => d.kind = Kind::Violation(format!("malformed column definition: {e}")),
            },
            Answer::ColumnsEof => {
                if is_eof(p) {
                    d.kind = Kind::ColumnsEof;
                    self.state = State::Answer(Answer::Rows);
                } else {
                    d.kind = Kind::Violation("missing EOF after column definitions".into());
                }
            }
            Answer::Rows => match first {
                Some(0xff) => self.err(p, d),
                Some(0xfe) if self.deprecate_eof() && p.len() < 0xff_ff_ff => {
                    match decode_ok(p, self.caps) {
                        Ok(ok) => self.end(ok.status, ok.warnings, d),
                        Err(e) => {
                            d.kind = Kind::Violation(format!("malformed end of result set: {e}"))
                        }
                    }
                }
                Some(0xfe) if !self.deprecate_eof() && is_eof(p) => {
                    let (warnings, st) = decode_eof(p).unwrap_or((0, 0));
                    self.end(st, warnings, d);
                }
                _ => self.row(p, d),
            },
            Answer::PrepareStart => match first {
                Some(0xff) => self.err(p, d),
                _ => match PrepareOk::decode(p) {
                    Ok(h) => {
                        d.kind = Kind::PrepareOk;
                        if self.render {
                            d.line = Some(format!(
                                "PREPARE_OK stmt={} params={} columns={}",
                                h.stmt_id, h.num_params, h.num_columns
                            ));
                        }
                        self.statements.insert(
                            h.stmt_id,
                            Statement {
                                params: h.num_params as usize,
                                types: Vec::new(),
                                described: Vec::new(),
                            },
                        );
                        let eofs = if self.deprecate_eof() {
                            0
                        } else {
                            (h.num_params > 0) as u8 + (h.num_columns > 0) as u8
                        };
                        self.prep_params.clear();
                        self.columns.clear();
                        self.state = State::Answer(Answer::PrepareDefs {
                            params_left: h.num_params,
                            cols_left: h.num_columns,
                            eofs_left: eofs,
                        });
                        self.prep = Some(h);
                        self.prepare_done(d);
                    }
                    Err(e) => d.kind = Kind::Violation(format!("malformed prepare answer: {e}")),
                },
            },
            Answer::PrepareDefs {
                params_left,
                cols_left,
                eofs_left,
            } => {
                d.kind = Kind::PrepareDef;
                let (mut pl, mut cl, mut el) = (params_left, cols_left, eofs_left);
                // Definitions start with the catalog "def", never with 0xfe: an EOF is an EOF.
                if is_eof(p) && el > 0 {
                    el -= 1;
                } else if pl > 0 {
                    match ColumnDef::decode(p) {
                        Ok(c) => self.prep_params.push(c),
                        Err(e) => {
                            d.kind = Kind::Violation(format!("malformed parameter definition: {e}"))
                        }
                    }
                    pl -= 1;
                    if pl == 0 && self.render {
                        d.line = Some(render::columns("params", &self.prep_params));
                    }
                } else if cl > 0 {
                    match ColumnDef::decode(p) {
                        Ok(c) => self.columns.push(c),
                        Err(e) => {
                            d.kind = Kind::Violation(format!("malformed column definition: {e}"))
                        }
                    }
                    cl -= 1;
                    if cl == 0 {
                        if let Some(st) = self
                            .prep
                            .as_ref()
                            .and_then(|h| self.statements.get_mut(&h.stmt_id))
                        {
                            st.described.clone_from(&self.columns);
                        }
                        if self.render {
                            d.line = Some(render::columns("columns", &self.columns));
                        }
                    }
                } else {
                    d.kind = Kind::Violation("unexpected packet after a prepare answer".into());
                }
                self.state = State::Answer(Answer::PrepareDefs {
                    params_left: pl,
                    cols_left: cl,
                    eofs_left: el,
                });
                self.prepare_done(d);
            }
            Answer::Simple => match first {
                Some(0x00) => match decode_ok(p, self.caps) {
                    Ok(ok) => {
                        d.line = self.render.then(|| render::ok(&ok));
                        d.kind = Kind::Ok {
                            status: ok.status,
                            more: false,
                        };
                        d.ends_command = true;
                        self.state = State::Idle;
                    }
                    Err(e) => d.kind = Kind::Violation(format!("malformed OK: {e}")),
                },
                Some(0xff) => self.err(p, d),
                _ => d.kind = Kind::Violation("unexpected answer to a simple command".into()),
            },
            Answer::SetOption => match first {
                Some(0xff) => self.err(p, d),
                _ => {
                    let (w, st) = decode_eof(p).unwrap_or((0, 0));
                    d.line = self.render.then(|| render::eof(st, w));
                    d.kind = Kind::Other;
                    d.ends_command = true;
                    self.state = State::Idle;
                }
            },
            Answer::Statistics => {
                d.line = self
                    .render
                    .then(|| format!("statistics {}", render::escape(p)));
                d.kind = Kind::Other;
                d.ends_command = true;
                self.state = State::Idle;
            }
        }
    }

    /// The statement of the COM_STMT_EXECUTE being answered, when metadata caching is on.
    fn executed_statement(&self) -> Option<u32> {
        self.executing.filter(|_| self.cache_metadata)
    }

    /// What follows a result's column definitions.
    fn after_columns(&self) -> Answer {
        if self.deprecate_eof() {
            Answer::Rows
        } else {
            Answer::ColumnsEof
        }
    }

    /// A column count saying the definitions do not follow: the client holds them, as the
    /// ones last described for the statement being executed.
    fn columns_skipped(&mut self, n: u64, d: &mut Decoded) {
        let held = self
            .executed_statement()
            .and_then(|id| self.statements.get(&id))
            .map(|st| st.described.clone());
        match held {
            Some(cols) if cols.len() as u64 == n => {
                d.kind = Kind::ColumnCount;
                d.line = self
                    .render
                    .then(|| render::columns("cached columns", &cols));
                self.columns = cols;
                self.state = State::Answer(self.after_columns());
            }
            _ => {
                d.kind = Kind::Violation(format!(
                    "{n} column definitions skipped that the client never received"
                ))
            }
        }
    }

    fn prepare_done(&mut self, d: &mut Decoded) {
        if let State::Answer(Answer::PrepareDefs {
            params_left: 0,
            cols_left: 0,
            eofs_left: 0,
        }) = self.state
        {
            d.ends_command = true;
            self.state = State::Idle;
        }
    }

    fn ok_packet(&mut self, ok: &OkInfo, d: &mut Decoded) {
        let more = ok.status & status::MORE_RESULTS_EXISTS != 0;
        d.kind = Kind::Ok {
            status: ok.status,
            more,
        };
        d.line = self.render.then(|| render::ok(ok));
        if more {
            self.state = State::Answer(Answer::ResultStart);
        } else {
            d.ends_command = true;
            self.state = State::Idle;
        }
    }

    fn end(&mut self, st: u16, warnings: u16, d: &mut Decoded) {
        let more = st & status::MORE_RESULTS_EXISTS != 0;
        d.kind = Kind::End { status: st, more };
        d.line = self.render.then(|| render::eof(st, warnings));
        if more {
            self.state = State::Answer(Answer::ResultStart);
        } else {
            d.ends_command = true;
            self.state = State::Idle;
        }
    }

    fn row(&mut self, p: &[u8], d: &mut Decoded) {
        d.kind = Kind::Row;
        if !self.render {
            return;
        }
        if self.binary {
            match decode_binary_row(&self.columns, p) {
                Ok(values) => {
                    d.line = self
                        .render
                        .then(|| format!("binary row {}", render::row(&values)))
                }
                Err(e) => d.kind = Kind::Violation(format!("undecodable binary row: {e}")),
            }
            return;
        }
        let payload = Bytes::copy_from_slice(p);
        match TextRow::new(&payload).to_values(&payload) {
            Ok(values) if values.len() == self.columns.len() => {
                d.line = Some(format!("row {}", render::row(&values)));
            }
            Ok(values) => {
                d.kind = Kind::Violation(format!(
                    "text row with {} cells for {} columns",
                    values.len(),
                    self.columns.len()
                ))
            }
            Err(e) => d.kind = Kind::Violation(format!("undecodable text row: {e}")),
        }
    }
}

fn state_name(s: State) -> &'static str {
    match s {
        State::AwaitGreeting => "awaiting the handshake",
        State::AwaitHandshakeResponse => "awaiting the handshake response",
        State::AwaitAuthResult => "awaiting the authentication result",
        State::AwaitAuthData => "awaiting auth data",
        State::Idle => "idle",
        State::Answer(_) => "answer in progress",
        State::Closed => "closed",
    }
}
