//! The client side of the protocol: one state machine per shard connection.
//!
//! It authenticates to a real MySQL/MariaDB (or the simulated engine), sends commands, and
//! parses responses incrementally, packet by packet: a result set surfaces as
//! [`BackendEvent::Columns`], then one [`BackendEvent::Row`] per row (the raw payload, never
//! decoded or copied here), then [`BackendEvent::Done`] — or [`BackendEvent::Error`] wherever
//! the server sends ERR, including mid-result. For a client that reads the shard's encoding as
//! it is (pass-through, a single-shard text route), [`BackendConn::relay_result`] turns the
//! column block and rows into [`BackendEvent::Relayed`] runs of whole packets instead; the
//! terminator still comes decoded.
//!
//! Calling order: `handle_input` / `handle_close`, then `poll_event` until `None`, then
//! `poll_transmit`, then [`BackendConn::poll_tls_upgrade`]. Commands (`query`, `prepare`,
//! `execute`, …) may be issued when [`BackendConn::is_idle`].
//!
//! # TLS
//! With [`BackendConfig::tls`] the connection answers the server's handshake with an
//! SSLRequest, handed out by [`BackendConn::poll_tls_upgrade`] (not by `poll_transmit`): the
//! driver writes it in clear, runs the TLS handshake, and calls
//! [`BackendConn::handle_tls_established`]; the HandshakeResponse then goes out over TLS. A
//! server that does not offer TLS fails the connection (2026). Over TLS, a caching_sha2_password
//! server asking for full authentication gets the password; without TLS that is refused.

use crate::error::{codes, SqlError};
use crate::wire::auth;
use crate::wire::binary::{put_execute_params, ExecuteParams, PrepareOk};
use crate::wire::codec::Reader;
use crate::wire::consts::{cap, charset, com, mariadb_cap, status};
use crate::wire::generic::{decode_eof, decode_err, decode_ok, is_eof};
use crate::wire::handshake::{AuthSwitchRequest, HandshakeResponse, HandshakeV10};
use crate::wire::packet::FrameError;
use crate::wire::{ColumnDef, OkInfo, PacketDecoder, PacketOut, Value};
use bytes::{BufMut, Bytes, BytesMut};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

mod prepared;
use prepared::PreparedCache;

#[cfg(test)]
mod tests;

/// Credentials and options for one backend connection.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BackendConfig {
    pub user: String,
    pub password: String,
    pub database: Option<String>,
    /// Largest payload accepted from the server.
    pub max_packet: usize,
    /// Ask for CLIENT_FOUND_ROWS (affected rows = matched rows), as the gateway's own client
    /// asked: the client must see the affected-row counts it would see directly.
    pub found_rows: bool,
    /// Switch to TLS before authenticating; the server name the driver presents (SNI).
    pub tls: Option<String>,
}

/// What a backend connection reports.
#[derive(Clone, Debug, PartialEq)]
pub enum BackendEvent {
    /// Authenticated; commands may be sent. Carries the server's version string.
    Connected {
        server_version: String,
        connection_id: u32,
    },
    /// A result set begins.
    Columns(Arc<[ColumnDef]>),
    /// One row, as the server sent it (text or binary protocol, per command).
    Row(Bytes),
    /// A result set ended; `more`: another result of the same command follows.
    Done {
        status: u16,
        warnings: u16,
        more: bool,
    },
    /// A statement without result set succeeded; `more` as above.
    Ok { ok: OkInfo, more: bool },
    /// COM_STMT_PREPARE succeeded.
    Prepared {
        stmt_id: u32,
        params: u16,
        columns: Vec<ColumnDef>,
    },
    /// Whole packets of a result set, relayed undecoded (see [`BackendConn::relay_result`]):
    /// the first `columns` bytes, when not 0, are the column count and definitions that begin
    /// the result; `rows` rows follow. The terminator still comes as [`BackendEvent::Done`].
    Relayed {
        frames: Bytes,
        columns: usize,
        rows: u64,
    },
    /// The server answered ERR: the command is over. During connect, the connection is over.
    Error(SqlError),
    /// The connection is unusable (closed, protocol violation); carries why.
    Closed(SqlError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    AwaitHandshake,
    /// SSLRequest handed to the driver; waiting for its TLS handshake.
    AwaitTls,
    AwaitAuthResult,
    Idle,
    /// A command's response is being read.
    Reading(Reading),
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reading {
    /// First packet of a (next) result: OK, ERR or a column count.
    ResultStart,
    ColumnDefs {
        left: u64,
    },
    /// The EOF after column definitions (without DEPRECATE_EOF).
    ColumnsEof,
    Rows,
    /// COM_STMT_PREPARE: header, then param defs and column defs (each block + EOF).
    PrepareStart,
    PrepareDefs {
        params_left: u16,
        cols_left: u16,
        eofs_left: u8,
    },
    /// COM_PING / COM_INIT_DB / COM_STMT_RESET: one OK or ERR.
    Simple,
}

/// One connection to a shard, client side.
#[derive(Debug)]
pub struct BackendConn {
    config: BackendConfig,
    phase: Phase,
    decoder: PacketDecoder,
    out: BytesMut,
    caps: u32,
    seq: u8,
    nonce: Vec<u8>,
    events: VecDeque<BackendEvent>,
    columns: Vec<ColumnDef>,
    /// The column definition packets of the result being read.
    pending_defs: Vec<Bytes>,
    /// The last result's definitions, raw and decoded: a statement run again (a prepared
    /// point select, say) gets the same columns without decoding or allocating them again.
    last_defs: Vec<Vec<u8>>,
    last_columns: Option<Arc<[ColumnDef]>>,
    prepare: Option<(u32, u16)>,
    server_version: String,
    connection_id: u32,
    /// The SSLRequest packet, until the driver takes it.
    tls_request: Option<Bytes>,
    /// The HandshakeResponse, held back until TLS is up.
    held_response: Option<Vec<u8>>,
    tls_active: bool,
    /// The session settings (`SET`s) applied to this connection, as the tag its pool
    /// matches on: a session with the same settings reuses it as it is.
    settings: Option<Arc<str>>,
    /// Statements prepared on the server by [`BackendConn::execute_sql`].
    statements: PreparedCache,
    /// The statement of [`BackendConn::execute_sql`] being prepared: executed once prepared.
    pending_execute: Option<(Arc<str>, ExecuteParams)>,
    /// Rows the command in progress may still relay ([`BackendConn::relay_result`]);
    /// `None`: its results are decoded.
    relay_rows: Option<u64>,
    /// MariaDB's metadata caching was negotiated: its column-count packets carry a
    /// "metadata follows" byte, and a prepared statement's result may come without column
    /// definitions (MariaDB then saves encoding them per execute, 40 bytes and more a query).
    cache_metadata: bool,
    /// The statement whose COM_STMT_EXECUTE is being answered, if one is.
    executing: Option<u32>,
    /// What the server holds for each statement still open, which executes may leave out.
    held: BTreeMap<u32, Held>,
}

/// What a server keeps of one prepared statement between executes.
#[derive(Debug, Default)]
struct Held {
    /// Under `cache_metadata`: the columns it last described (by its prepare, or an execute
    /// whose metadata changed).
    columns: Option<Arc<[ColumnDef]>>,
    /// The parameter types bound by its last execute: the next one with the same types
    /// leaves them out (new-params-bound 0), as libmariadb does.
    param_types: Option<Bytes>,
}

/// A column-count packet: the count (never 0) and whether the column definitions follow.
/// Under MariaDB's metadata caching (`cached`) one more byte says so (read where present);
/// without it they always follow.
fn column_count(p: &[u8], cached: bool) -> Option<(u64, bool)> {
    let mut r = Reader::new(p);
    let n = r.lenenc_int().ok().filter(|&n| n > 0)?;
    let follows = !(cached && matches!(r.u8(), Ok(0)));
    Some((n, follows))
}

/// Capabilities the gateway asks of its shards.
const CLIENT_CAPS: u32 = cap::LONG_PASSWORD
    | cap::LONG_FLAG
    | cap::PROTOCOL_41
    | cap::TRANSACTIONS
    | cap::SECURE_CONNECTION
    | cap::MULTI_STATEMENTS
    | cap::MULTI_RESULTS
    | cap::PS_MULTI_RESULTS
    | cap::PLUGIN_AUTH
    | cap::PLUGIN_AUTH_LENENC_CLIENT_DATA
    | cap::DEPRECATE_EOF;

impl BackendConn {
    pub fn new(config: BackendConfig) -> Self {
        let max = if config.max_packet == 0 {
            1 << 30
        } else {
            config.max_packet
        };
        BackendConn {
            config,
            phase: Phase::AwaitHandshake,
            decoder: PacketDecoder::new(max),
            out: BytesMut::with_capacity(1024),
            caps: CLIENT_CAPS,
            seq: 0,
            nonce: Vec::new(),
            events: VecDeque::new(),
            columns: Vec::new(),
            pending_defs: Vec::new(),
            last_defs: Vec::new(),
            last_columns: None,
            prepare: None,
            server_version: String::new(),
            connection_id: 0,
            tls_request: None,
            held_response: None,
            tls_active: false,
            settings: None,
            statements: PreparedCache::default(),
            pending_execute: None,
            relay_rows: None,
            cache_metadata: false,
            executing: None,
            held: BTreeMap::new(),
        }
    }

    // ---- getters ----

    /// Ready for a command?
    pub fn is_idle(&self) -> bool {
        self.phase == Phase::Idle
    }
    pub fn is_closed(&self) -> bool {
        self.phase == Phase::Closed
    }
    /// The server's thread id (for KILL QUERY toward the backend).
    pub fn connection_id(&self) -> u32 {
        self.connection_id
    }
    /// The session settings this connection carries (see [`BackendConn::set_settings`]).
    pub fn settings(&self) -> Option<&Arc<str>> {
        self.settings.as_ref()
    }
    /// Records which session settings were applied to this connection (`None`: a clean one).
    pub fn set_settings(&mut self, settings: Option<Arc<str>>) {
        self.settings = settings;
    }
    pub fn server_version(&self) -> &str {
        &self.server_version
    }
    /// The columns of the result set being read.
    pub fn columns(&self) -> &[ColumnDef] {
        &self.columns
    }
    /// Capabilities agreed with the server.
    pub fn capabilities(&self) -> u32 {
        self.caps
    }
    /// Whether this connection asked for CLIENT_FOUND_ROWS: its affected-row counts are
    /// matched rows, not changed ones, for as long as it lives.
    pub fn found_rows(&self) -> bool {
        self.config.found_rows
    }

    // ---- inputs ----

    pub fn handle_input(&mut self, data: &[u8]) {
        if self.phase == Phase::Closed {
            return;
        }
        self.decoder.extend(data);
        loop {
            if self.relay_rows.is_some() && !self.relay_frames() {
                // The rest of a column block or row is still to come (or the connection
                // failed).
                return;
            }
            match self.decoder.next_packet() {
                Ok(Some(p)) => {
                    self.seq = p.seq.wrapping_add(1);
                    self.on_packet(p.payload);
                    if self.phase == Phase::Closed {
                        return;
                    }
                }
                Ok(None) => return,
                Err(FrameError::TooLarge { len, max }) => {
                    self.fail(SqlError::new(
                        codes::ER_NET_PACKET_TOO_LARGE,
                        "08S01",
                        format!("backend packet of {len} bytes exceeds {max}"),
                    ));
                    return;
                }
            }
        }
    }

    /// The driver gave up on this connection (a deadline passed): it is closed with `err`.
    pub fn abort(&mut self, err: SqlError) {
        if self.phase != Phase::Closed {
            self.fail(err);
        }
    }

    /// The socket closed (or the connect failed).
    pub fn handle_close(&mut self) {
        if self.phase != Phase::Closed {
            let during = match self.phase {
                Phase::Reading(_) => "during query",
                Phase::AwaitHandshake | Phase::AwaitTls | Phase::AwaitAuthResult => {
                    "during handshake"
                }
                _ => "while idle",
            };
            self.fail(SqlError::backend_lost(format!(
                "Lost connection to backend {during}"
            )));
        }
    }

    // ---- outputs ----

    pub fn poll_event(&mut self) -> Option<BackendEvent> {
        self.events.pop_front()
    }

    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        if self.out.is_empty() {
            None
        } else {
            Some(self.out.split().freeze())
        }
    }

    /// The bytes to send to the server, borrowed; see [`crate::server::ServerConn::pending_transmit`].
    pub fn pending_transmit(&self) -> &[u8] {
        &self.out
    }

    /// The bytes of [`Self::pending_transmit`] were written (or will never be).
    pub fn transmitted(&mut self) {
        crate::wire::packet::clear_written(&mut self.out);
    }

    /// `Some(ssl_request)` once when the connection wants TLS: write those bytes in clear,
    /// then run the TLS handshake (client side), then [`BackendConn::handle_tls_established`].
    pub fn poll_tls_upgrade(&mut self) -> Option<Bytes> {
        self.tls_request.take()
    }

    /// The server name to present in the TLS handshake (see [`BackendConfig::tls`]).
    pub fn tls_server_name(&self) -> Option<&str> {
        self.config.tls.as_deref()
    }

    /// Does the connection run over TLS?
    pub fn is_tls(&self) -> bool {
        self.tls_active
    }

    /// The TLS handshake is done: authentication continues over it.
    pub fn handle_tls_established(&mut self) {
        if self.phase == Phase::AwaitTls {
            self.tls_active = true;
            if let Some(resp) = self.held_response.take() {
                self.send(&resp);
            }
            self.phase = Phase::AwaitAuthResult;
        }
    }

    // ---- commands ----

    /// COM_QUERY. Results come back as events.
    pub fn query(&mut self, sql: &str) -> Result<(), SqlError> {
        self.command(com::QUERY, sql.as_bytes(), Reading::ResultStart)
    }

    /// COM_STMT_PREPARE.
    pub fn prepare(&mut self, sql: &str) -> Result<(), SqlError> {
        self.command(com::STMT_PREPARE, sql.as_bytes(), Reading::PrepareStart)
    }

    /// COM_STMT_EXECUTE with parameters; rows arrive in the binary protocol.
    pub fn execute(&mut self, stmt_id: u32, params: &[Value]) -> Result<(), SqlError> {
        self.execute_with(stmt_id, |out| put_execute_params(out, params))?;
        // Typed by value: whatever types the server held for it are replaced.
        self.hold_param_types(stmt_id, None);
        Ok(())
    }

    /// COM_STMT_EXECUTE whose parameter part `put` writes.
    fn execute_with(
        &mut self,
        stmt_id: u32,
        put: impl FnOnce(&mut BytesMut),
    ) -> Result<(), SqlError> {
        self.command_with(com::STMT_EXECUTE, Reading::ResultStart, |out| {
            let id = stmt_id.to_le_bytes();
            // The id, CURSOR_TYPE_NO_CURSOR, an iteration count of 1.
            out.extend_from_slice(&[id[0], id[1], id[2], id[3], 0, 1, 0, 0, 0]);
            put(out);
        })?;
        self.executing = Some(stmt_id);
        Ok(())
    }

    /// Runs `sql` as a prepared statement of this connection: COM_STMT_EXECUTE of the
    /// server statement prepared for that text, after a COM_STMT_PREPARE the first time (its
    /// answer is consumed here: the events are the execute's, or the prepare's ERR). Rows
    /// arrive in the binary protocol. Parameters go out as the client encoded them, or typed
    /// by value (see [`ExecuteParams`]).
    pub fn execute_sql(
        &mut self,
        sql: Arc<str>,
        params: impl Into<ExecuteParams>,
    ) -> Result<(), SqlError> {
        let params = params.into();
        self.ensure_idle()?;
        match self.statements.get(&sql) {
            Some((id, count)) => self.execute_checked(id, count, &params),
            None => {
                self.command(com::STMT_PREPARE, sql.as_bytes(), Reading::PrepareStart)?;
                self.pending_execute = Some((sql, params));
                Ok(())
            }
        }
    }

    /// The result sets answering the command just issued are relayed instead of decoded:
    /// column definitions and rows come as [`BackendEvent::Relayed`] runs of whole packets,
    /// for a client that reads the shard's packets as they are (pass-through). At most
    /// `max_rows` rows are relayed; later ones come as [`BackendEvent::Row`] (for the caller's
    /// row cap). OK, EOF and ERR still come decoded, so the caller writes the terminators.
    pub fn relay_result(&mut self, max_rows: u64) {
        if matches!(self.phase, Phase::Reading(_)) {
            self.relay_rows = Some(max_rows);
        }
    }

    /// Statements prepared by [`BackendConn::execute_sql`] are closed before the next
    /// command: the default database changed (they would keep reading the old one's tables).
    pub fn forget_statements(&mut self) {
        self.statements.forget_all();
    }

    /// How many statements [`BackendConn::execute_sql`] keeps prepared on the server.
    pub fn prepared_count(&self) -> usize {
        self.statements.len()
    }

    /// COM_STMT_CLOSE (no response).
    pub fn close_statement(&mut self, stmt_id: u32) -> Result<(), SqlError> {
        self.ensure_idle()?;
        self.write_close(stmt_id);
        Ok(())
    }

    fn write_close(&mut self, stmt_id: u32) {
        self.held.remove(&stmt_id);
        let mut p = [com::STMT_CLOSE, 0, 0, 0, 0];
        p[1..].copy_from_slice(&stmt_id.to_le_bytes());
        PacketOut::new(0).write(&mut self.out, &p);
    }

    /// COM_STMT_EXECUTE of a statement prepared with `count` parameters: a different number
    /// of values is the server's own error, answered without sending.
    fn execute_checked(
        &mut self,
        id: u32,
        count: u16,
        params: &ExecuteParams,
    ) -> Result<(), SqlError> {
        if usize::from(count) != params.len() {
            self.events.push_back(BackendEvent::Error(SqlError::new(
                codes::ER_WRONG_ARGUMENTS,
                "HY000",
                "Incorrect arguments to mysqld_stmt_execute",
            )));
            return Ok(());
        }
        let held = self.held.get(&id).and_then(|h| h.param_types.clone());
        let mut bound = None;
        self.execute_with(id, |out| bound = params.put_after(out, held.as_ref()))?;
        self.hold_param_types(id, bound);
        Ok(())
    }

    /// Records the parameter types the server holds for statement `id` after an execute
    /// (`None`: not known, so the next execute binds its types again).
    fn hold_param_types(&mut self, id: u32, types: Option<Bytes>) {
        match types {
            Some(types) => self.held.entry(id).or_default().param_types = Some(types),
            None => {
                if let Some(h) = self.held.get_mut(&id) {
                    h.param_types = None;
                }
            }
        }
    }

    /// COM_PING.
    pub fn ping(&mut self) -> Result<(), SqlError> {
        self.command(com::PING, &[], Reading::Simple)
    }

    /// COM_INIT_DB.
    pub fn init_db(&mut self, db: &str) -> Result<(), SqlError> {
        self.command(com::INIT_DB, db.as_bytes(), Reading::Simple)
    }

    /// COM_RESET_CONNECTION (before returning a connection to a pool). The server drops its
    /// prepared statements too.
    pub fn reset_connection(&mut self) -> Result<(), SqlError> {
        self.command(com::RESET_CONNECTION, &[], Reading::Simple)?;
        self.statements.clear();
        self.held.clear();
        Ok(())
    }

    /// COM_QUIT; the connection is closed afterwards.
    pub fn quit(&mut self) {
        if self.phase == Phase::Idle {
            PacketOut::new(0).write(&mut self.out, &[com::QUIT]);
        }
        self.phase = Phase::Closed;
    }

    /// Sends raw command bytes (tests and the fuzzer).
    pub fn raw_command(&mut self, payload: &[u8]) -> Result<(), SqlError> {
        let (cmd, body) = payload
            .split_first()
            .ok_or_else(|| SqlError::internal("empty command"))?;
        self.command(*cmd, body, Reading::ResultStart)
    }

    // ---- internals ----

    fn ensure_idle(&self) -> Result<(), SqlError> {
        match self.phase {
            Phase::Idle => Ok(()),
            Phase::Closed => Err(SqlError::new(
                codes::CR_SERVER_GONE,
                "HY000",
                "backend connection is closed",
            )),
            _ => Err(SqlError::internal("backend connection is busy")),
        }
    }

    fn command(&mut self, cmd: u8, body: &[u8], reading: Reading) -> Result<(), SqlError> {
        self.command_with(cmd, reading, |out| out.extend_from_slice(body))
    }

    /// Writes command `cmd` whose body `body` encodes straight into the output buffer.
    fn command_with(
        &mut self,
        cmd: u8,
        reading: Reading,
        body: impl FnOnce(&mut BytesMut),
    ) -> Result<(), SqlError> {
        self.ensure_idle()?;
        for id in self.statements.take_closes() {
            self.write_close(id);
        }
        self.executing = None;
        let mut out = PacketOut::new(0);
        let start = out.begin(&mut self.out);
        self.out.put_u8(cmd);
        body(&mut self.out);
        out.finish(&mut self.out, start);
        self.phase = Phase::Reading(reading);
        Ok(())
    }

    fn fail(&mut self, err: SqlError) {
        self.phase = Phase::Closed;
        self.relay_rows = None;
        self.events.push_back(BackendEvent::Closed(err));
    }

    fn send(&mut self, payload: &[u8]) {
        let mut out = PacketOut::new(self.seq);
        out.write(&mut self.out, payload);
        self.seq = out.seq;
    }

    fn on_packet(&mut self, p: Bytes) {
        match self.phase {
            Phase::AwaitHandshake => self.on_handshake(&p),
            Phase::AwaitTls => self.fail(SqlError::backend_lost(
                "unexpected packet from backend before TLS",
            )),
            Phase::AwaitAuthResult => self.on_auth_result(&p),
            Phase::Reading(r) => self.on_response(r, p),
            Phase::Idle => self.fail(SqlError::backend_lost(
                "unexpected packet from backend while idle",
            )),
            Phase::Closed => {}
        }
    }

    fn on_handshake(&mut self, p: &[u8]) {
        if p.first() == Some(&0xff) {
            let e = decode_err(p)
                .unwrap_or_else(|_| SqlError::backend_lost("backend refused the connection"));
            self.fail(e);
            return;
        }
        let hs = match HandshakeV10::decode(p) {
            Ok(h) => h,
            Err(e) => {
                return self.fail(SqlError::backend_lost(format!(
                    "bad handshake from backend: {e}"
                )))
            }
        };
        self.caps = CLIENT_CAPS & hs.capabilities;
        // A MariaDB server (CLIENT_MYSQL clear) offering metadata caching: take it.
        self.cache_metadata = self.caps & cap::LONG_PASSWORD == 0
            && hs.mariadb_capabilities & mariadb_cap::CACHE_METADATA != 0;
        if self.config.found_rows {
            self.caps |= cap::FOUND_ROWS & hs.capabilities;
        }
        if self.config.database.is_some() {
            self.caps |= cap::CONNECT_WITH_DB & hs.capabilities;
        }
        if self.config.tls.is_some() {
            if hs.capabilities & cap::SSL == 0 {
                return self.fail(SqlError::new(
                    codes::CR_SSL_CONNECTION_ERROR,
                    "HY000",
                    "TLS is required toward this shard (ssl=true) but the server does not offer it",
                ));
            }
            self.caps |= cap::SSL;
        }
        self.server_version = hs.server_version.clone();
        self.connection_id = hs.connection_id;
        self.nonce = hs.scramble.to_vec();
        let plugin = match hs.auth_plugin.as_str() {
            auth::CACHING_SHA2 => auth::CACHING_SHA2,
            _ => auth::NATIVE_PASSWORD,
        };
        let resp = HandshakeResponse {
            capabilities: self.caps,
            mariadb_capabilities: if self.cache_metadata {
                mariadb_cap::CACHE_METADATA
            } else {
                0
            },
            max_packet: 1 << 30,
            charset: charset::UTF8MB4_GENERAL_CI as u8,
            user: self.config.user.clone(),
            auth_response: self.scramble_for(plugin),
            database: self.config.database.clone(),
            auth_plugin: Some(plugin.to_string()),
            attrs: Vec::new(),
        };
        let mut payload = Vec::with_capacity(128);
        resp.encode(&mut payload);
        if self.config.tls.is_some() {
            // MariaDB's extended capabilities go in both packets: a server may read them from
            // either.
            let mut ssl = Vec::with_capacity(32);
            crate::wire::handshake::put_ssl_request(
                &mut ssl,
                self.caps,
                resp.mariadb_capabilities,
                1 << 30,
                charset::UTF8MB4_GENERAL_CI as u8,
            );
            let mut frame = BytesMut::with_capacity(36);
            let mut out = PacketOut::new(self.seq);
            out.write(&mut frame, &ssl);
            self.seq = out.seq;
            self.tls_request = Some(frame.freeze());
            self.held_response = Some(payload);
            self.phase = Phase::AwaitTls;
            return;
        }
        self.send(&payload);
        self.phase = Phase::AwaitAuthResult;
    }

    fn scramble_for(&self, plugin: &str) -> Vec<u8> {
        let pw = self.config.password.as_bytes();
        match plugin {
            auth::CACHING_SHA2 => auth::scramble_sha2(pw, &self.nonce),
            _ => auth::scramble_native(pw, &self.nonce),
        }
    }

    fn on_auth_result(&mut self, p: &[u8]) {
        match p.first() {
            Some(0x00) => {
                self.phase = Phase::Idle;
                self.events.push_back(BackendEvent::Connected {
                    server_version: self.server_version.clone(),
                    connection_id: self.connection_id,
                });
            }
            Some(0xff) => {
                let e = decode_err(p).unwrap_or_else(|_| SqlError::access_denied(&self.config.user, "gateway", true));
                self.fail(e);
            }
            Some(0xfe) => match AuthSwitchRequest::decode(p) {
                Ok(sw) if sw.plugin == auth::NATIVE_PASSWORD || sw.plugin == auth::CACHING_SHA2 => {
                    self.nonce = sw.data;
                    let resp = self.scramble_for(&sw.plugin);
                    self.send(&resp);
                }
                Ok(sw) => self.fail(SqlError::new(codes::CR_AUTH_PLUGIN_ERR, "HY000", format!("backend asks for unsupported auth plugin '{}'", sw.plugin))),
                Err(e) => self.fail(SqlError::backend_lost(format!("bad auth switch: {e}"))),
            },
            // caching_sha2_password: 0x01 0x03 fast auth success (OK follows), 0x01 0x04 full
            // authentication: the clear-text password over TLS; without TLS it would need
            // RSA, which is not implemented: refused clearly.
            Some(0x01) if p.get(1) == Some(&0x03) => {}
            Some(0x01) if p.get(1) == Some(&0x04) && self.tls_active => {
                let mut pw = self.config.password.clone().into_bytes();
                pw.push(0);
                self.send(&pw);
            }
            Some(0x01) if p.get(1) == Some(&0x04) => self.fail(SqlError::new(
                codes::CR_AUTH_PLUGIN_ERR,
                "HY000",
                "backend requires caching_sha2_password full authentication, which needs TLS toward the shard (add ?ssl=true to its URL)",
            )),
            _ => self.fail(SqlError::backend_lost("unexpected packet during backend authentication")),
        }
    }

    /// A result whose column definitions the server skipped ("metadata follows" 0): they are
    /// those it last sent for the statement being executed.
    fn columns_cached(&mut self, n: u64, deprecate_eof: bool) {
        let cols = self
            .executing
            .and_then(|id| self.held.get(&id)?.columns.as_ref());
        match cols {
            Some(cols) if cols.len() as u64 == n => {
                self.events.push_back(BackendEvent::Columns(cols.clone()));
                self.phase = Phase::Reading(if deprecate_eof {
                    Reading::Rows
                } else {
                    Reading::ColumnsEof
                });
            }
            _ => self.fail(SqlError::backend_lost(
                "backend skipped the column definitions of a result it never described",
            )),
        }
    }

    /// The columns of the result whose definitions were just read: the previous result's
    /// when the packets are byte for byte the same, else decoded (and remembered).
    fn result_columns(&mut self) -> Result<Arc<[ColumnDef]>, crate::wire::DecodeError> {
        let defs = std::mem::take(&mut self.pending_defs);
        if let Some(cols) = &self.last_columns {
            let same = defs.len() == self.last_defs.len()
                && defs
                    .iter()
                    .zip(&self.last_defs)
                    .all(|(a, b)| a[..] == b[..]);
            if same {
                return Ok(cols.clone());
            }
        }
        let cols: Arc<[ColumnDef]> = defs
            .iter()
            .map(|p| ColumnDef::decode(p))
            .collect::<Result<Vec<_>, _>>()?
            .into();
        self.last_defs = defs.iter().map(|p| p.to_vec()).collect();
        self.last_columns = Some(cols.clone());
        Ok(cols)
    }

    fn on_response(&mut self, r: Reading, p: Bytes) {
        let deprecate_eof = self.caps & cap::DEPRECATE_EOF != 0;
        match r {
            Reading::ResultStart => match p.first() {
                Some(0x00) => self.on_ok(&p, true),
                Some(0xff) => self.on_err(&p),
                Some(0xfb) => self.fail(SqlError::unsupported(
                    "LOAD DATA LOCAL INFILE is not supported through the gateway",
                )),
                _ => match column_count(&p, self.cache_metadata) {
                    Some((n, true)) => {
                        self.pending_defs.clear();
                        self.phase = Phase::Reading(Reading::ColumnDefs { left: n });
                    }
                    Some((n, false)) => self.columns_cached(n, deprecate_eof),
                    None => self.fail(SqlError::backend_lost(
                        "malformed result set header from backend",
                    )),
                },
            },
            Reading::ColumnDefs { left } => {
                self.pending_defs.push(p);
                if left > 1 {
                    self.phase = Phase::Reading(Reading::ColumnDefs { left: left - 1 });
                    return;
                }
                match self.result_columns() {
                    Ok(cols) => {
                        if let (true, Some(id)) = (self.cache_metadata, self.executing) {
                            self.held.entry(id).or_default().columns = Some(cols.clone());
                        }
                        self.events.push_back(BackendEvent::Columns(cols));
                        self.phase = Phase::Reading(if deprecate_eof {
                            Reading::Rows
                        } else {
                            Reading::ColumnsEof
                        });
                    }
                    Err(e) => self.fail(SqlError::backend_lost(format!(
                        "malformed column definition: {e}"
                    ))),
                }
            }
            Reading::ColumnsEof => {
                if is_eof(&p) {
                    self.phase = Phase::Reading(Reading::Rows);
                } else {
                    self.fail(SqlError::backend_lost(
                        "missing EOF after column definitions",
                    ));
                }
            }
            Reading::Rows => match p.first() {
                Some(0xff) => self.on_err(&p),
                Some(0xfe) if deprecate_eof && p.len() < 0xff_ff_ff => {
                    match decode_ok(&p, self.caps) {
                        Ok(ok) => self.on_result_end(ok.status, ok.warnings),
                        Err(_) => self.fail(SqlError::backend_lost("malformed end of result set")),
                    }
                }
                Some(0xfe) if !deprecate_eof && is_eof(&p) => {
                    let (warnings, st) = decode_eof(&p).unwrap_or((0, 0));
                    self.on_result_end(st, warnings);
                }
                _ => self.events.push_back(BackendEvent::Row(p)),
            },
            Reading::PrepareStart => match p.first() {
                Some(0xff) => self.on_err(&p),
                _ => match PrepareOk::decode(&p) {
                    Ok(h) => {
                        self.columns.clear();
                        self.prepare = Some((h.stmt_id, h.num_params));
                        let eofs = if deprecate_eof {
                            0
                        } else {
                            (h.num_params > 0) as u8 + (h.num_columns > 0) as u8
                        };
                        self.phase = Phase::Reading(Reading::PrepareDefs {
                            params_left: h.num_params,
                            cols_left: h.num_columns,
                            eofs_left: eofs,
                        });
                        self.maybe_prepared();
                    }
                    Err(e) => self.fail(SqlError::backend_lost(format!(
                        "malformed prepare response: {e}"
                    ))),
                },
            },
            Reading::PrepareDefs {
                params_left,
                cols_left,
                eofs_left,
            } => {
                let mut next = (params_left, cols_left, eofs_left);
                if is_eof(&p) && eofs_left > 0 {
                    next.2 -= 1;
                } else if params_left > 0 {
                    next.0 -= 1;
                } else if cols_left > 0 {
                    match ColumnDef::decode(&p) {
                        Ok(c) => self.columns.push(c),
                        Err(e) => {
                            return self.fail(SqlError::backend_lost(format!(
                                "malformed column definition: {e}"
                            )))
                        }
                    }
                    next.1 -= 1;
                } else {
                    return self.fail(SqlError::backend_lost(
                        "unexpected packet after prepare response",
                    ));
                }
                self.phase = Phase::Reading(Reading::PrepareDefs {
                    params_left: next.0,
                    cols_left: next.1,
                    eofs_left: next.2,
                });
                self.maybe_prepared();
            }
            Reading::Simple => match p.first() {
                Some(0x00) => self.on_ok(&p, false),
                Some(0xff) => self.on_err(&p),
                _ => self.fail(SqlError::backend_lost(
                    "unexpected reply to a simple command",
                )),
            },
        }
    }

    fn maybe_prepared(&mut self) {
        if let Phase::Reading(Reading::PrepareDefs {
            params_left: 0,
            cols_left: 0,
            eofs_left: 0,
        }) = self.phase
        {
            let (stmt_id, params) = self.prepare.take().unwrap_or((0, 0));
            if self.cache_metadata {
                // MariaDB skips the metadata of an execute when its prepare sent the same.
                self.held.entry(stmt_id).or_default().columns = Some(self.columns.clone().into());
            }
            // Idle for the execute that follows, whose answer a relay asked for still covers.
            self.phase = Phase::Idle;
            if let Some((sql, values)) = self.pending_execute.take() {
                self.columns.clear();
                self.statements.insert(sql, stmt_id, params);
                if let Err(e) = self.execute_checked(stmt_id, params, &values) {
                    self.fail(e);
                }
                if self.phase == Phase::Idle {
                    // Refused without sending.
                    self.command_done();
                }
                return;
            }
            self.command_done();
            self.events.push_back(BackendEvent::Prepared {
                stmt_id,
                params,
                columns: std::mem::take(&mut self.columns),
            });
        }
    }

    fn on_ok(&mut self, p: &[u8], may_have_more: bool) {
        match decode_ok(p, self.caps) {
            Ok(ok) => {
                let more = may_have_more && ok.status & status::MORE_RESULTS_EXISTS != 0;
                self.result_done(more);
                self.events.push_back(BackendEvent::Ok { ok, more });
            }
            Err(_) => self.fail(SqlError::backend_lost("malformed OK from backend")),
        }
    }

    fn on_err(&mut self, p: &[u8]) {
        let e = decode_err(p).unwrap_or_else(|_| SqlError::internal("malformed ERR from backend"));
        // A failed execute may not have bound its types: the next one sends them again.
        if let Some(id) = self.executing {
            self.hold_param_types(id, None);
        }
        self.command_done();
        // A failed prepare of `execute_sql` is that statement's answer.
        self.pending_execute = None;
        self.events.push_back(BackendEvent::Error(e));
    }

    /// Relays the whole packets at the front of the input (see [`BackendConn::relay_result`])
    /// up to the first one left to [`BackendConn::on_response`]: OK, EOF, ERR, anything
    /// unexpected, the row past the budget. A run ends on a whole unit — the column block, or
    /// a row with all its 16 MiB pieces — so an error can still take the place of what follows.
    /// Returns whether the packet now in front is the decoder's to take: `false` while a unit
    /// is incomplete (its first packets must not be decoded) or the connection failed.
    fn relay_frames(&mut self) -> bool {
        let Some(budget) = self.relay_rows else {
            return true;
        };
        let Phase::Reading(start) = self.phase else {
            return true;
        };
        // Never from inside a column block or a packet the decoder is reassembling.
        if self.decoder.is_mid_packet() || !matches!(start, Reading::ResultStart | Reading::Rows) {
            return true;
        }
        let deprecate_eof = self.caps & cap::DEPRECATE_EOF != 0;
        let max = self.decoder.max_payload();
        let mut reading = start;
        let (mut off, mut rows, mut columns, mut logical) = (0usize, 0u64, 0usize, 0usize);
        let mut too_large = None;
        // Did the scan stop at a packet left to the decoder (not at the end of the input)?
        let mut stopped = false;
        // The end of the last whole unit, with the state and counts there.
        let (mut cut, mut cut_reading, mut cut_seq, mut cut_rows) = (0, start, self.seq, 0);
        while let Some((seq, p)) = self.decoder.frame_at(off) {
            if logical == 0 {
                reading = match reading {
                    Reading::ResultStart => match p.first() {
                        // Under metadata caching the column block may be the gateway's to
                        // supply: the decoder takes it, the rows are relayed.
                        _ if self.cache_metadata => {
                            stopped = true;
                            break;
                        }
                        None | Some(0x00 | 0xfb | 0xfe | 0xff) => {
                            stopped = true;
                            break;
                        }
                        _ => match Reader::new(p).lenenc_int() {
                            Ok(n) if n > 0 => Reading::ColumnDefs { left: n },
                            _ => {
                                stopped = true;
                                break;
                            }
                        },
                    },
                    Reading::ColumnDefs { left } if left > 1 => {
                        Reading::ColumnDefs { left: left - 1 }
                    }
                    Reading::ColumnDefs { .. } if deprecate_eof => Reading::Rows,
                    Reading::ColumnDefs { .. } => Reading::ColumnsEof,
                    Reading::Rows => {
                        let end = match p.first() {
                            Some(0xff) => true,
                            Some(0xfe) if deprecate_eof => p.len() < 0xff_ff_ff,
                            Some(0xfe) => is_eof(p),
                            _ => false,
                        };
                        if end || rows == budget {
                            stopped = true;
                            break;
                        }
                        rows += 1;
                        Reading::Rows
                    }
                    _ => {
                        stopped = true;
                        break;
                    }
                };
            }
            logical += p.len();
            if logical > max {
                too_large = Some(logical);
                break;
            }
            let whole = p.len() < crate::wire::consts::MAX_PACKET_PAYLOAD;
            off += 4 + p.len();
            if !whole {
                continue;
            }
            logical = 0;
            if matches!(reading, Reading::ColumnDefs { .. }) {
                continue;
            }
            if cut == 0 && start == Reading::ResultStart {
                // The first whole unit of a new result: its column block.
                columns = off;
            }
            (cut, cut_reading, cut_seq, cut_rows) = (off, reading, seq.wrapping_add(1), rows);
        }
        if cut > 0 {
            self.phase = Phase::Reading(cut_reading);
            self.seq = cut_seq;
            self.relay_rows = Some(budget - cut_rows);
            let frames = self.decoder.take_front(cut);
            self.events.push_back(BackendEvent::Relayed {
                frames,
                columns,
                rows: cut_rows,
            });
        }
        if let Some(len) = too_large {
            self.fail(SqlError::new(
                codes::ER_NET_PACKET_TOO_LARGE,
                "08S01",
                format!("backend packet of {len} bytes exceeds {max}"),
            ));
            return false;
        }
        // Stopped, it was at a unit's first packet (every stop is): the decoder takes it.
        // Else the input ended, maybe inside a unit whose packets wait for its end.
        debug_assert!(!stopped || cut == off);
        stopped
    }

    /// A result ended: the next one of the same command follows (`more`), or the command is
    /// done.
    fn result_done(&mut self, more: bool) {
        if more {
            self.phase = Phase::Reading(Reading::ResultStart);
        } else {
            self.command_done();
        }
    }

    /// The command's answer is complete: the connection takes the next one, decoded unless
    /// that asks for a relay.
    fn command_done(&mut self) {
        self.phase = Phase::Idle;
        self.relay_rows = None;
    }

    fn on_result_end(&mut self, st: u16, warnings: u16) {
        let more = st & status::MORE_RESULTS_EXISTS != 0;
        self.result_done(more);
        self.events.push_back(BackendEvent::Done {
            status: st,
            warnings,
            more,
        });
    }
}
