//! The server side of one client connection: handshake, authentication, command decoding,
//! prepared-statement bookkeeping and multi-statement progress. Used by the gateway's client
//! sessions and by the simulated engine alike, so both speak exactly the same protocol.
//!
//! # Driving it
//! - inputs: [`ServerConn::handle_input`] (bytes from the client), [`ServerConn::handle_close`];
//! - requests: [`ServerConn::poll_request`] yields the next thing to execute (one statement of a
//!   batch, a prepared execution, a schema change…). It yields nothing while the previous
//!   request is unanswered, so a handler works on one request at a time;
//! - answers: `send_*` methods, all through the one [`ResponseWriter`];
//! - outputs: [`ServerConn::poll_transmit`] (bytes for the client), then
//!   [`ServerConn::is_closed`] (close the socket once the bytes are flushed).
//!
//! Call order after any input: `poll_request` until `None` (answering each), then
//! `poll_transmit`, then [`ServerConn::poll_tls_upgrade`], then `is_closed`.
//!
//! # Prepared statements
//! COM_STMT_PREPARE is parsed here (a syntax error is ERR 1064). A SELECT is then described
//! the way MySQL's prepare describes it, with its result columns' real names and types: this
//! type hands out a [`Request::Query`] for [`sql::describe_query`] (the statement with zeros
//! for its parameters and `LIMIT 0`), answered like any query; its column definitions become
//! the prepare's answer and nothing of it reaches the client. An error of the statement itself
//! (unknown table or column…) is the prepare's ERR; any other (a shard unreachable) leaves the
//! columns that came before it, or else those named in the text, untyped. Without this,
//! `SELECT *` announced no columns, and sysbench (libmariadb) crashed reading its rows.
//!
//! # TLS
//! With [`ServerConfig::tls`] the handshake offers CLIENT_SSL. A client that answers with an
//! SSLRequest makes [`ServerConn::poll_tls_upgrade`] yield the bytes already received after
//! it (the start of the client's TLS handshake): the driver runs the TLS handshake over the
//! socket (those bytes first), calls [`ServerConn::handle_tls_established`], and from then on
//! feeds decrypted bytes and encrypts what `poll_transmit` returns. This type never sees TLS
//! records. With [`ServerConfig::require_secure_transport`] a client that does not ask for TLS
//! gets ERR 3159 and is closed (logged).
//!
//! # Authentication
//! Against [`ServerConfig::users`]; which check runs for which plugin and account is described
//! in [`crate::users`].

use crate::error::{codes, SqlError};
use crate::response::{ErrorDisposition, ResponseWriter, RowFormat, WriterState};
use crate::sql;
use crate::users::{Sha2Fast, Users};
use crate::wire::auth;
use crate::wire::binary::{
    check_execute_params, decode_execute_params, encode_param_types, EncodedParams, ExecuteParams,
    ParamType,
};
use crate::wire::consts::{cap, com, mariadb_cap, status, ColumnType};
use crate::wire::handshake::{is_ssl_request, AuthSwitchRequest, HandshakeResponse, HandshakeV10};
use crate::wire::packet::FrameError;
use crate::wire::{ColumnDef, OkInfo, PacketDecoder, PacketOut, Reader, Value};
use bytes::{Bytes, BytesMut};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

/// MySQL's default `max_prepared_stmt_count`.
pub const MAX_PREPARED_STATEMENTS: usize = 16_382;

/// Static configuration shared by all connections of a server.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Announced in the handshake and by `@@version`.
    pub server_version: String,
    /// The accounts clients authenticate against (default: `root`, no password).
    pub users: Users,
    /// Largest client payload accepted; larger ones get ERR 1153 and a close.
    pub max_allowed_packet: usize,
    /// Capability flags offered to clients (CLIENT_SSL is added when `tls` is set).
    pub capabilities: u32,
    /// MariaDB's extended capabilities offered to clients ([`mariadb_cap`]); when not 0 the
    /// greeting clears CLIENT_MYSQL, as a MariaDB server does, so MariaDB clients announce theirs.
    /// Default: metadata caching, which spares a prepared statement's executes the column
    /// definitions its client already holds.
    pub mariadb_capabilities: u32,
    /// Offer TLS (CLIENT_SSL): the driver has a certificate and can run the TLS handshake.
    pub tls: bool,
    /// Refuse clients that do not switch to TLS (ERR 3159).
    pub require_secure_transport: bool,
    /// COM_STMT_EXECUTE parameters are checked but kept as the client encoded them
    /// ([`ExecuteParams::Encoded`]), not decoded into values: a pass-through forwards them.
    pub forward_params: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            server_version: "8.0.40-shardgate".to_string(),
            users: Users::default_root(),
            max_allowed_packet: 64 << 20,
            capabilities: cap::SERVER_DEFAULT,
            mariadb_capabilities: mariadb_cap::CACHE_METADATA,
            tls: false,
            require_secure_transport: false,
            forward_params: false,
        }
    }
}

/// Something the handler must execute and answer through the `send_*` methods.
#[derive(Clone, Debug, PartialEq)]
pub enum Request {
    /// Authentication passed: accept (`send_ok`) or refuse (`send_error`, then the
    /// connection closes), e.g. for an unknown default database.
    Connect {
        user: String,
        database: Option<String>,
    },
    /// One statement of a COM_QUERY. A multi-statement batch yields one per statement; each
    /// is answered with one result (or an error, which ends the batch).
    Query { sql: String },
    /// COM_STMT_EXECUTE: the prepared SQL and its bound parameters (values, or as the client
    /// encoded them with [`ServerConfig::forward_params`]); rows go out binary.
    Execute {
        stmt_id: u32,
        sql: Arc<str>,
        params: ExecuteParams,
    },
    /// COM_INIT_DB.
    InitDb { database: String },
    /// COM_RESET_CONNECTION: prepared statements are already dropped; reset session state.
    ResetConnection,
    /// COM_PROCESS_KILL (deprecated form of `KILL id`).
    Kill { connection_id: u32 },
}

#[derive(Debug)]
enum Phase {
    AwaitHandshakeResponse,
    /// An SSLRequest was received: waiting for the driver's TLS handshake.
    AwaitTls,
    /// Switched the client to mysql_native_password; its answer to the same nonce comes next.
    AwaitAuthSwitchResponse {
        user: String,
        database: Option<String>,
    },
    /// Asked a caching_sha2_password client for full authentication (over TLS): its
    /// clear-text password comes next.
    AwaitFullAuth {
        user: String,
        database: Option<String>,
    },
    /// `Request::Connect` handed out (or pending); the handler's answer ends the phase.
    Connecting,
    Command,
    /// Flush what is buffered, then close.
    Closed,
}

#[derive(Debug)]
struct Prepared {
    sql: Arc<str>,
    param_count: usize,
    types: Vec<ParamType>,
    /// Under metadata caching: the result columns this client last received for the
    /// statement (its executes may then skip them).
    described: Option<Arc<[ColumnDef]>>,
    /// `types` as the client sent them, for forwarding ([`EncodedParams`]).
    wire_types: Bytes,
    long_data: Vec<Option<BytesMut>>,
    /// An error from SEND_LONG_DATA (which has no response), reported by the next execute.
    deferred_error: Option<SqlError>,
}

/// A COM_STMT_PREPARE whose describe query is running (see the module docs).
#[derive(Debug)]
struct Describing {
    id: u32,
    statement: Prepared,
    params: Vec<ColumnDef>,
    /// The columns named in the statement's text: the answer when the describe fails for a
    /// reason that is not the statement's.
    by_name: Vec<ColumnDef>,
    /// The describe's result columns, once they came.
    columns: Option<Arc<[ColumnDef]>>,
}

/// Errors of a describe query that belong to the statement, as MySQL's own prepare reports
/// them: access denied to a database or table, unknown database, ambiguous or unknown column,
/// unknown table, unsupported by the planner. Any other (a shard down, a timeout, a kill) is
/// the moment's: the prepare answers with the columns that came, or else the named ones, and an
/// execute meets the error if it lasts.
const STATEMENT_ERRORS: &[u16] = &[1044, 1049, 1052, 1054, 1142, 1143, 1146, 1235];

/// One client connection, server side. See the module docs for the calling contract.
#[derive(Debug)]
pub struct ServerConn {
    config: Arc<ServerConfig>,
    connection_id: u32,
    scramble: [u8; 20],
    phase: Phase,
    decoder: PacketDecoder,
    out: BytesMut,
    writer: ResponseWriter,
    caps: u32,
    user: String,
    /// The client's address, for access-denied messages.
    peer_host: String,
    /// The connection runs over TLS (from the driver's confirmation on).
    tls_active: bool,
    /// SSLRequest received: the bytes after it, for the driver (taken once).
    tls_upgrade: Option<Bytes>,
    /// Keyspaces the authenticated account may use (`None`: all).
    keyspaces: Option<Vec<String>>,
    /// Statements of the current batch not yet handed out.
    batch: VecDeque<String>,
    pending: VecDeque<Request>,
    /// Is the request last handed out still unanswered?
    busy: bool,
    /// Rows of the current request are binary (COM_STMT_EXECUTE).
    binary: bool,
    /// The statement the current COM_STMT_EXECUTE runs, and whether its first result has
    /// begun (only that one may skip the column definitions the client holds).
    executing: Option<(u32, bool)>,
    statements: BTreeMap<u32, Prepared>,
    /// The prepare being described, if one is: its query's answers are captured, not sent.
    describing: Option<Describing>,
    next_stmt_id: u32,
    close_reason: Option<String>,
    /// The current request's rows sent and error code (for the query log and metrics).
    request_rows: u64,
    request_error: Option<u16>,
}

impl ServerConn {
    /// Starts a connection: the handshake is queued for transmission at once. `scramble`
    /// comes from the driver's seeded PRNG.
    pub fn new(config: Arc<ServerConfig>, connection_id: u32, scramble: [u8; 20]) -> Self {
        let offered = offered_capabilities(&config);
        let mut conn = ServerConn {
            decoder: PacketDecoder::new(config.max_allowed_packet.max(1024)),
            out: BytesMut::with_capacity(4096),
            writer: ResponseWriter::new(config.capabilities),
            caps: offered,
            peer_host: "%".to_string(),
            tls_active: false,
            tls_upgrade: None,
            keyspaces: None,
            config,
            connection_id,
            scramble,
            phase: Phase::AwaitHandshakeResponse,
            user: String::new(),
            batch: VecDeque::new(),
            pending: VecDeque::new(),
            busy: false,
            binary: false,
            executing: None,
            statements: BTreeMap::new(),
            describing: None,
            next_stmt_id: 1,
            close_reason: None,
            request_rows: 0,
            request_error: None,
        };
        let hs = HandshakeV10 {
            server_version: conn.config.server_version.clone(),
            connection_id,
            scramble,
            capabilities: if conn.config.mariadb_capabilities != 0 {
                offered & !cap::LONG_PASSWORD
            } else {
                offered
            },
            mariadb_capabilities: conn.config.mariadb_capabilities,
            charset: crate::wire::consts::charset::UTF8MB4_GENERAL_CI as u8,
            status: status::AUTOCOMMIT,
            auth_plugin: auth::NATIVE_PASSWORD.to_string(),
        };
        let mut payload = Vec::with_capacity(128);
        hs.encode(&mut payload);
        PacketOut::new(0).write(&mut conn.out, &payload);
        conn
    }

    // ---- getters ----

    pub fn connection_id(&self) -> u32 {
        self.connection_id
    }
    pub fn user(&self) -> &str {
        &self.user
    }
    /// Capabilities agreed with the client.
    pub fn capabilities(&self) -> u32 {
        self.caps
    }
    /// Is the connection over (once the last bytes from `poll_transmit` are flushed)?
    pub fn is_closed(&self) -> bool {
        matches!(self.phase, Phase::Closed)
    }
    /// Why the connection was closed by this side, if it was.
    pub fn close_reason(&self) -> Option<&str> {
        self.close_reason.as_deref()
    }
    /// Is a request handed out and not yet answered?
    pub fn is_busy(&self) -> bool {
        self.busy
    }
    pub fn writer_state(&self) -> WriterState {
        self.writer.state()
    }
    pub fn prepared_count(&self) -> usize {
        self.statements.len()
    }
    /// Past the handshake and authentication?
    pub fn is_authenticated(&self) -> bool {
        matches!(self.phase, Phase::Command)
    }
    /// Does the connection run over TLS?
    pub fn is_tls(&self) -> bool {
        self.tls_active
    }
    /// Keyspaces the authenticated account may use; `None`: every keyspace.
    pub fn allowed_keyspaces(&self) -> Option<&[String]> {
        self.keyspaces.as_deref()
    }
    /// May the authenticated account use keyspace `ks`?
    pub fn may_use_keyspace(&self, ks: &str) -> bool {
        self.keyspaces
            .as_ref()
            .is_none_or(|list| list.iter().any(|k| k == ks))
    }
    /// Rows sent and the error code (if any) of the request last handed out.
    pub fn request_outcome(&self) -> (u64, Option<u16>) {
        (self.request_rows, self.request_error)
    }

    // ---- inputs ----

    /// Bytes from the client.
    pub fn handle_input(&mut self, data: &[u8]) {
        if self.is_closed() {
            return;
        }
        if matches!(self.phase, Phase::AwaitTls) {
            // Still the client's TLS handshake: belongs to the driver, never to the decoder.
            // (Once the driver took the upgrade it reads the socket through TLS itself.)
            if let Some(pre) = self.tls_upgrade.take() {
                let mut b = BytesMut::from(pre.as_ref());
                b.extend_from_slice(data);
                self.tls_upgrade = Some(b.freeze());
            }
            return;
        }
        self.decoder.extend(data);
    }

    /// The client's address as seen by the driver (used in access-denied messages).
    pub fn set_peer_host(&mut self, host: &str) {
        self.peer_host = host.to_string();
    }

    /// The driver finished the TLS handshake: from now on bytes are decrypted ones, and the
    /// client's HandshakeResponse comes next.
    pub fn handle_tls_established(&mut self) {
        if matches!(self.phase, Phase::AwaitTls) {
            self.tls_active = true;
            self.tls_upgrade = None;
            self.decoder = PacketDecoder::new(self.config.max_allowed_packet.max(1024));
            self.phase = Phase::AwaitHandshakeResponse;
        }
    }

    /// The client went away.
    pub fn handle_close(&mut self) {
        if !self.is_closed() {
            self.phase = Phase::Closed;
            self.batch.clear();
            self.pending.clear();
        }
    }

    /// Session status bits (autocommit, in transaction) for every OK/EOF from now on.
    pub fn set_session_status(&mut self, bits: u16) {
        self.writer.set_session_status(bits);
    }

    // ---- outputs ----

    /// Bytes to send to the client, if any.
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        if self.out.is_empty() {
            None
        } else {
            Some(self.out.split().freeze())
        }
    }

    /// The bytes to send to the client, borrowed (empty: nothing to send); the caller writes
    /// them, then calls [`Self::transmitted`]. Unlike [`Self::poll_transmit`], no shared
    /// buffer changes hands: no reference counting per write on the hot path.
    pub fn pending_transmit(&self) -> &[u8] {
        &self.out
    }

    /// The bytes of [`Self::pending_transmit`] were written (or will never be).
    pub fn transmitted(&mut self) {
        crate::wire::packet::clear_written(&mut self.out);
    }

    /// `Some(bytes)` once, after an SSLRequest: start TLS on the client socket now, feeding
    /// the TLS engine `bytes` (already received) before reading the socket. Call after
    /// `poll_transmit` (nothing is pending then: the server says nothing before TLS).
    pub fn poll_tls_upgrade(&mut self) -> Option<Bytes> {
        if matches!(self.phase, Phase::AwaitTls) {
            self.tls_upgrade.take()
        } else {
            None
        }
    }

    /// Appends pending output to `dst` (drivers that keep their own buffer).
    pub fn transmit_into(&mut self, dst: &mut Vec<u8>) {
        dst.extend_from_slice(&self.out);
        self.out.clear();
    }

    /// The next request to execute, once the previous one is answered.
    pub fn poll_request(&mut self) -> Option<Request> {
        loop {
            if self.is_closed() {
                return None;
            }
            if self.busy {
                match self.writer.state() {
                    WriterState::Terminated { more_results: true } => {
                        // The previous statement of a batch is answered; hand out the next.
                        let sql = self.batch.pop_front()?;
                        let _ = self.writer.start_statement(!self.batch.is_empty());
                        self.request_rows = 0;
                        self.request_error = None;
                        return Some(Request::Query { sql });
                    }
                    WriterState::Terminated {
                        more_results: false,
                    } => {
                        self.busy = false;
                        self.batch.clear();
                        if matches!(self.phase, Phase::Connecting) {
                            self.phase = Phase::Command;
                        }
                    }
                    _ => return None,
                }
            }
            if let Some(r) = self.pending.pop_front() {
                self.busy = true;
                self.request_rows = 0;
                self.request_error = None;
                return Some(r);
            }
            match self.decoder.next_packet() {
                Ok(Some(p)) => self.on_packet(p.seq, p.payload),
                Ok(None) => return None,
                Err(FrameError::TooLarge { len, max }) => {
                    self.writer.start_command(0);
                    let _ = self.writer.start_statement(false);
                    self.writer
                        .error(&mut self.out, &SqlError::packet_too_large());
                    self.close(format!(
                        "client packet of {len} bytes exceeds max_allowed_packet {max}"
                    ));
                    return None;
                }
            }
        }
    }

    // ---- answers (all through the response writer) ----

    /// Starts a result set; rows are text or binary according to the request.
    pub fn send_columns(&mut self, columns: &[ColumnDef]) {
        self.send_columns_shared(std::sync::Arc::from(columns));
    }

    /// [`ServerConn::send_columns`] without copying shared columns (a shard's, relayed).
    pub fn send_columns_shared(&mut self, columns: std::sync::Arc<[ColumnDef]>) {
        if let Some(d) = &mut self.describing {
            d.columns.get_or_insert(columns);
            return;
        }
        let format = self.row_format();
        let caching = self.writer.caches_metadata();
        let known = caching
            && match self.executing {
                Some((id, false)) => self
                    .statements
                    .get(&id)
                    .and_then(|st| st.described.as_ref())
                    .is_some_and(|held| Arc::ptr_eq(held, &columns) || **held == *columns),
                _ => false,
            };
        let res = if known {
            self.writer
                .columns_begin_known(&mut self.out, columns.clone(), format)
        } else {
            self.writer
                .columns_begin_shared(&mut self.out, columns.clone(), format)
        };
        match res {
            Ok(()) => self.described(caching.then_some(columns)),
            Err(m) => self.send_error(&m.to_sql_error()),
        }
    }

    /// A result of the current execute began with `columns` described to the client
    /// (`None`: definitions it holds but the gateway does not, or no caching). Only a first
    /// result's are remembered: libmariadb keeps a later one's, which a next execute's
    /// first result must then describe again.
    fn described(&mut self, columns: Option<std::sync::Arc<[ColumnDef]>>) {
        let Some((id, begun)) = self.executing else {
            return;
        };
        self.executing = Some((id, true));
        if let Some(st) = self.statements.get_mut(&id) {
            st.described = columns.filter(|_| !begun);
        }
    }

    /// Sends one row. `false`: the row could not be written, an ERR went out instead and the
    /// request is over: stop producing rows.
    pub fn send_row(&mut self, values: &[Value]) -> bool {
        self.write_row(|w, out| w.row(out, values))
    }

    /// Sends one row given as a text-protocol payload (see [`ResponseWriter::row_text`]).
    pub fn send_row_text(&mut self, payload: &[u8]) -> bool {
        self.write_row(|w, out| w.row_text(out, payload))
    }

    /// Sends one row given as a binary-protocol payload (see [`ResponseWriter::row_binary`]).
    pub fn send_row_binary(&mut self, payload: &[u8]) -> bool {
        self.write_row(|w, out| w.row_binary(out, payload))
    }

    /// Relays a shard's whole packets (see [`ResponseWriter::relay`]). `false`: they did
    /// not fit the answer, an ERR went out instead and the request is over.
    pub fn send_relayed(&mut self, frames: &[u8], columns: usize, rows: u64) -> bool {
        if let Some(d) = &mut self.describing {
            if columns > 0 && d.columns.is_none() {
                d.columns = relayed_columns(&frames[..columns.min(frames.len())]);
            }
            return true;
        }
        let format = self.row_format();
        match self
            .writer
            .relay(&mut self.out, frames, columns, rows, format)
        {
            Ok(()) => {
                if columns > 0 {
                    self.described(None);
                }
                self.request_rows += rows;
                true
            }
            Err(m) => {
                self.send_error(&m.to_sql_error());
                false
            }
        }
    }

    /// Whether the current request's rows go out in the binary protocol.
    pub fn binary_rows(&self) -> bool {
        self.binary
    }

    fn row_format(&self) -> RowFormat {
        if self.binary {
            RowFormat::Binary
        } else {
            RowFormat::Text
        }
    }

    /// Writes one row (a describe's rows are dropped), counts it, or answers its failure with
    /// its ERR.
    fn write_row(
        &mut self,
        write: impl FnOnce(&mut ResponseWriter, &mut BytesMut) -> Result<(), crate::response::RowError>,
    ) -> bool {
        if self.describing.is_some() {
            return true;
        }
        match write(&mut self.writer, &mut self.out) {
            Ok(()) => {
                self.request_rows += 1;
                true
            }
            Err(e) => {
                self.send_error(&e.to_sql_error());
                false
            }
        }
    }

    /// Ends the current result set.
    pub fn send_finish(&mut self, warnings: u16) {
        if let Some(d) = self.describing.take() {
            let columns = d.columns.clone();
            return self.answer_prepare(d, columns);
        }
        if let Err(m) = self.writer.finish(&mut self.out, warnings) {
            self.send_error(&m.to_sql_error());
        }
    }

    /// Answers with OK (a statement without result set; or accepts a connection).
    pub fn send_ok(&mut self, ok: &OkInfo) {
        if let Some(d) = self.describing.take() {
            return self.answer_prepare(d, None);
        }
        if let Err(m) = self.writer.ok(&mut self.out, ok) {
            self.send_error(&m.to_sql_error());
        }
    }

    /// Answers with an error wherever the answer stands (DESIGN section 3). A refused
    /// connection, or an error with nowhere to go, closes the connection (logged).
    pub fn send_error(&mut self, err: &SqlError) {
        if let Some(d) = self.describing.take() {
            if !STATEMENT_ERRORS.contains(&err.code) {
                // Columns that came before the error (one shard of a scatter failed) still
                // describe the statement; without any, the ones its text names.
                tracing::debug!(conn = self.connection_id, %err, "describe failed; prepared without it");
                let columns = d.columns.clone();
                return self.answer_prepare(d, columns);
            }
        }
        match self.writer.error(&mut self.out, err) {
            ErrorDisposition::Sent => {
                self.request_error = Some(err.code);
                self.batch.clear();
                if matches!(self.phase, Phase::Connecting) {
                    self.close(format!("connection refused: {err}"));
                }
            }
            ErrorDisposition::Close => {
                self.close(format!(
                    "error after the final terminator has nowhere to go: {err}"
                ));
            }
        }
    }

    // ---- internals ----

    /// Closes the connection for a reason the session decided (timeouts), logged.
    pub fn close_with_reason(&mut self, reason: String) {
        self.close(reason);
    }

    fn close(&mut self, reason: String) {
        tracing::warn!(conn = self.connection_id, %reason, "closing client connection");
        self.close_reason = Some(reason);
        self.phase = Phase::Closed;
        self.batch.clear();
        self.pending.clear();
        self.busy = false;
    }

    /// An answer the connection gives by itself (not through a request).
    fn reply_ok(&mut self) {
        let _ = self.writer.start_statement(false);
        let _ = self.writer.ok(&mut self.out, &OkInfo::default());
    }

    fn reply_error(&mut self, err: &SqlError) {
        let _ = self.writer.start_statement(false);
        self.writer.error(&mut self.out, err);
    }

    fn on_packet(&mut self, seq: u8, payload: Bytes) {
        match std::mem::replace(&mut self.phase, Phase::Closed) {
            Phase::AwaitHandshakeResponse => self.on_handshake_response(seq, &payload),
            Phase::AwaitAuthSwitchResponse { user, database } => {
                self.phase = Phase::Connecting;
                self.writer.start_command(seq);
                let matched = self
                    .config
                    .users
                    .check_native(&user, &self.scramble, &payload);
                self.finish_auth(user, database, matched, !payload.is_empty(), false);
            }
            Phase::AwaitFullAuth { user, database } => {
                self.phase = Phase::Connecting;
                self.writer.start_command(seq);
                if payload.as_ref() == [0x02] || !self.tls_active {
                    // A request for the RSA public key (or an RSA-encrypted password): not
                    // offered; full authentication is only asked for over TLS.
                    self.reply_error(&SqlError::new(
                        codes::ER_ACCESS_DENIED,
                        "28000",
                        format!(
                            "Access denied for user '{user}'@'{}': caching_sha2_password full authentication needs a TLS connection (RSA key exchange is not supported)",
                            self.peer_host
                        ),
                    ));
                    self.close(format!(
                        "caching_sha2_password full authentication of '{user}' without TLS"
                    ));
                    return;
                }
                // The clear-text password, NUL-terminated.
                let password = payload.strip_suffix(&[0]).unwrap_or(&payload);
                let matched = self.config.users.check_clear(&user, password);
                self.finish_auth(user, database, matched, !password.is_empty(), false);
            }
            Phase::Command => {
                self.phase = Phase::Command;
                self.on_command(seq, payload);
            }
            p @ (Phase::Connecting | Phase::Closed | Phase::AwaitTls) => self.phase = p,
        }
    }

    fn on_handshake_response(&mut self, seq: u8, payload: &[u8]) {
        self.writer.start_command(seq);
        if is_ssl_request(payload) {
            if !self.config.tls || self.tls_active {
                // Not offered (or asked twice): a client insisting on it cannot be served.
                self.reply_error(&SqlError::new(
                    codes::ER_ACCESS_DENIED,
                    "08004",
                    "SSL connection is not supported by this server",
                ));
                self.close("client requested TLS, which is not configured".into());
                return;
            }
            // Whatever followed the SSLRequest is the start of the TLS handshake.
            self.tls_upgrade = Some(self.decoder.take_unframed().freeze());
            self.phase = Phase::AwaitTls;
            return;
        }
        let resp = match HandshakeResponse::decode(payload) {
            Ok(r) => r,
            Err(e) => {
                self.reply_error(&SqlError::new(
                    codes::ER_ACCESS_DENIED,
                    "08S01",
                    format!("Bad handshake: {e}"),
                ));
                self.close(format!("bad handshake response: {e}"));
                return;
            }
        };
        if self.config.require_secure_transport && !self.tls_active {
            self.reply_error(&SqlError::insecure_transport());
            self.close(format!(
                "client '{}' did not switch to TLS and secure transport is required",
                resp.user
            ));
            return;
        }
        self.caps = offered_capabilities(&self.config) & resp.capabilities;
        self.writer.set_capabilities(self.caps);
        self.writer.set_metadata_caching(
            resp.mariadb_capabilities
                & self.config.mariadb_capabilities
                & mariadb_cap::CACHE_METADATA
                != 0,
        );
        // The client's max_packet is its own limit, not ours to enforce on input.
        let plugin = resp.auth_plugin.as_deref().unwrap_or(auth::NATIVE_PASSWORD);
        let used_password = !resp.auth_response.is_empty();
        self.phase = Phase::Connecting;
        match plugin {
            auth::NATIVE_PASSWORD => {
                let matched =
                    self.config
                        .users
                        .check_native(&resp.user, &self.scramble, &resp.auth_response);
                self.finish_auth(resp.user, resp.database, matched, used_password, false);
            }
            auth::CACHING_SHA2 => {
                match self.config.users.check_sha2_fast(
                    &resp.user,
                    &self.scramble,
                    &resp.auth_response,
                ) {
                    Sha2Fast::Match(i) => {
                        self.finish_auth(resp.user, resp.database, Some(i), used_password, true)
                    }
                    Sha2Fast::Denied => {
                        self.finish_auth(resp.user, resp.database, None, used_password, true)
                    }
                    Sha2Fast::NeedFull if self.tls_active => {
                        // "perform full authentication": the client sends its password.
                        tracing::debug!(conn = self.connection_id, user = %resp.user, "caching_sha2_password: asking for full authentication");
                        PacketOut::new(seq.wrapping_add(1)).write(&mut self.out, &[0x01, 0x04]);
                        self.phase = Phase::AwaitFullAuth {
                            user: resp.user,
                            database: resp.database,
                        };
                    }
                    Sha2Fast::NeedFull => {
                        // Without TLS full authentication would need RSA: check the stored
                        // hash with mysql_native_password instead.
                        self.switch_to_native(seq, resp.user, resp.database)
                    }
                }
            }
            _ => self.switch_to_native(seq, resp.user, resp.database),
        }
    }

    /// Asks the client to answer the same nonce with mysql_native_password.
    fn switch_to_native(&mut self, seq: u8, user: String, database: Option<String>) {
        let switch = AuthSwitchRequest {
            plugin: auth::NATIVE_PASSWORD.to_string(),
            data: self.scramble.to_vec(),
        };
        let mut p = Vec::new();
        switch.encode(&mut p);
        PacketOut::new(seq.wrapping_add(1)).write(&mut self.out, &p);
        self.phase = Phase::AwaitAuthSwitchResponse { user, database };
    }

    /// `matched`: the index of the user's entry that accepted the credentials, if any.
    fn finish_auth(
        &mut self,
        user: String,
        database: Option<String>,
        matched: Option<usize>,
        used_password: bool,
        sha2: bool,
    ) {
        let Some(account) = matched.and_then(|i| self.config.users.account(&user, i)) else {
            self.reply_error(&SqlError::access_denied(
                &user,
                &self.peer_host,
                used_password,
            ));
            self.close(format!("authentication failed for user '{user}'"));
            return;
        };
        self.keyspaces = account.keyspaces.clone();
        if sha2 && used_password {
            // caching_sha2_password fast path: "fast auth success", then the OK.
            self.writer.raw_continue(&mut self.out, &[0x01, 0x03]);
        }
        self.user = user.clone();
        let _ = self.writer.start_statement(false);
        self.pending.push_back(Request::Connect { user, database });
    }

    fn on_command(&mut self, seq: u8, payload: Bytes) {
        self.writer.start_command(seq);
        self.binary = false;
        self.executing = None;
        let Some(&cmd) = payload.first() else {
            self.reply_error(&SqlError::new(
                codes::ER_NET_READ_ERROR,
                "08S01",
                "Empty command packet",
            ));
            return;
        };
        let body = &payload[1..];
        match cmd {
            com::QUIT => self.handle_close(),
            com::PING => self.reply_ok(),
            com::QUERY => self.on_query(body),
            com::INIT_DB => self.push(Request::InitDb {
                database: String::from_utf8_lossy(body).into_owned(),
            }),
            com::STMT_PREPARE => self.on_prepare(body),
            com::STMT_EXECUTE => self.on_execute(payload.slice(1..)),
            com::STMT_SEND_LONG_DATA => self.on_long_data(body),
            com::STMT_CLOSE => {
                // No response, even for an unknown id (MySQL sends none: a reply would desync).
                if let Ok(id) = Reader::new(body).u32() {
                    self.statements.remove(&id);
                }
            }
            com::STMT_RESET => self.on_stmt_reset(body),
            com::SET_OPTION => self.on_set_option(body),
            com::RESET_CONNECTION => {
                self.statements.clear();
                self.push(Request::ResetConnection);
            }
            com::FIELD_LIST => {
                // Deprecated; clients use it for tab completion. An empty list is a valid answer.
                let _ = self.writer.start_statement(false);
                let mut p = Vec::new();
                crate::wire::generic::put_eof(&mut p, 0, status::AUTOCOMMIT);
                self.writer.raw_final(&mut self.out, &p);
            }
            com::STATISTICS => {
                let _ = self.writer.start_statement(false);
                self.writer.raw_final(&mut self.out, b"Uptime: 0  Threads: 1  Questions: 0  Slow queries: 0  Opens: 0  Open tables: 0  Queries per second avg: 0.000");
            }
            com::PROCESS_KILL => match Reader::new(body).u32() {
                Ok(id) => self.push(Request::Kill { connection_id: id }),
                Err(_) => self.reply_error(&SqlError::wrong_arguments("KILL")),
            },
            other => self.reply_error(&SqlError::unknown_command(other)),
        }
    }

    fn push(&mut self, r: Request) {
        let _ = self.writer.start_statement(false);
        self.pending.push_back(r);
    }

    fn on_query(&mut self, body: &[u8]) {
        let Ok(text) = std::str::from_utf8(body) else {
            self.reply_error(&SqlError::new(
                codes::ER_UNKNOWN_ERROR,
                "HY000",
                "Query is not valid UTF-8",
            ));
            return;
        };
        let multi = self.caps & cap::MULTI_STATEMENTS != 0;
        let single = if multi {
            text.trim_matches(|c: char| c.is_whitespace() || c == ';')
        } else {
            text.trim()
        };
        if !single.is_empty() && (!multi || !single.contains(';')) {
            // One statement (the common case): no batch to split, nothing to allocate for one.
            self.batch.clear();
            let _ = self.writer.start_statement(false);
            self.pending.push_back(Request::Query {
                sql: single.to_string(),
            });
            return;
        }
        // A batch, or nothing at all (then the split is empty too).
        let mut stmts: VecDeque<String> = sql::split_statements(text)
            .into_iter()
            .map(str::to_string)
            .collect();
        let Some(first) = stmts.pop_front() else {
            self.reply_error(&SqlError::new(
                codes::ER_EMPTY_QUERY,
                "42000",
                "Query was empty",
            ));
            return;
        };
        self.batch = stmts;
        let _ = self.writer.start_statement(!self.batch.is_empty());
        self.pending.push_back(Request::Query { sql: first });
    }

    fn on_prepare(&mut self, body: &[u8]) {
        let _ = self.writer.start_statement(false);
        let Ok(text) = std::str::from_utf8(body) else {
            self.writer.error(
                &mut self.out,
                &SqlError::syntax("statement is not valid UTF-8"),
            );
            return;
        };
        // Parsed here, at the gateway: a syntax error is ERR 1064, never a dropped connection.
        let stmt = match sql::parse_one(text.trim().trim_end_matches(';')) {
            Ok(s) => s,
            Err(e) => {
                self.writer.error(&mut self.out, &e);
                return;
            }
        };
        if self.statements.len() >= MAX_PREPARED_STATEMENTS {
            self.writer.error(&mut self.out, &SqlError::new(1461, "42000", format!("Can't create more than max_prepared_stmt_count statements (current value: {MAX_PREPARED_STATEMENTS})")));
            return;
        }
        let param_count = sql::count_placeholders(&stmt);
        let id = self.next_stmt_id;
        self.next_stmt_id = self.next_stmt_id.wrapping_add(1).max(1);
        let d = Describing {
            id,
            statement: Prepared {
                sql: Arc::from(text),
                param_count,
                types: Vec::new(),
                described: None,
                wire_types: Bytes::new(),
                long_data: vec![None; param_count],
                deferred_error: None,
            },
            params: vec![ColumnDef::new("?", ColumnType::VarString); param_count],
            by_name: sql::prepared_result_columns(&stmt)
                .unwrap_or_default()
                .into_iter()
                .map(|name| ColumnDef::new(name, ColumnType::VarString))
                .collect(),
            columns: None,
        };
        match sql::describe_query(&stmt) {
            Some(query) => {
                // Answered by `answer_prepare` once the handler answers the query.
                self.describing = Some(d);
                self.pending.push_back(Request::Query { sql: query });
            }
            None => self.answer_prepare(d, None),
        }
    }

    /// Registers a prepared statement and answers its COM_STMT_PREPARE with `columns` as
    /// described by a shard (`None`: the ones named in its text, untyped).
    fn answer_prepare(&mut self, d: Describing, columns: Option<Arc<[ColumnDef]>>) {
        let Describing {
            id,
            mut statement,
            params,
            by_name,
            ..
        } = d;
        if let Some(c) = &columns {
            // A client caching metadata holds these from now on, as after MariaDB's prepare.
            statement.described = self.writer.caches_metadata().then(|| c.clone());
        }
        let columns = columns.unwrap_or_else(|| by_name.into());
        self.statements.insert(id, statement);
        let _ = self.writer.prepared(&mut self.out, id, &params, &columns);
    }

    fn on_execute(&mut self, payload: Bytes) {
        let mut r = Reader::new(&payload);
        let (Ok(id), Ok(_flags), Ok(_iterations)) = (r.u32(), r.u8(), r.u32()) else {
            self.reply_error(&SqlError::wrong_arguments("mysqld_stmt_execute"));
            return;
        };
        let Some(st) = self.statements.get_mut(&id) else {
            self.reply_error(&SqlError::unknown_stmt(id, "mysqld_stmt_execute"));
            return;
        };
        if let Some(e) = st.deferred_error.take() {
            st.long_data.iter_mut().for_each(|d| *d = None);
            self.reply_error(&e);
            return;
        }
        let start = r.position();
        let count = st.param_count;
        let long_data = st.long_data.iter().any(Option::is_some);
        let params = if self.config.forward_params && !long_data {
            // Checked, not decoded: forwarded as they are.
            let checked = check_execute_params(&mut r, count, &mut st.types);
            if !matches!(checked, Ok(false)) {
                // Types bound (again) by this execute, or maybe by one refused past its types.
                st.wire_types = encode_param_types(&st.types);
            }
            checked.ok().and_then(|_| {
                EncodedParams::cut(&payload, start, r.position(), count, &st.wire_types)
                    .map(ExecuteParams::Encoded)
            })
        } else {
            decode_execute_params(&mut r, count, &mut st.types, &st.long_data)
                .ok()
                .map(ExecuteParams::Values)
        };
        let Some(params) = params else {
            self.reply_error(&SqlError::wrong_arguments("mysqld_stmt_execute"));
            return;
        };
        st.long_data.iter_mut().for_each(|d| *d = None);
        let sql = st.sql.clone();
        self.binary = true;
        self.executing = Some((id, false));
        self.push(Request::Execute {
            stmt_id: id,
            sql,
            params,
        });
    }

    fn on_long_data(&mut self, body: &[u8]) {
        // No response in any case; problems are reported by the next COM_STMT_EXECUTE.
        let mut r = Reader::new(body);
        let (Ok(id), Ok(param)) = (r.u32(), r.u16()) else {
            return;
        };
        let Some(st) = self.statements.get_mut(&id) else {
            tracing::debug!(
                conn = self.connection_id,
                id,
                "long data for unknown statement ignored"
            );
            return;
        };
        match st.long_data.get_mut(param as usize) {
            Some(slot) => slot
                .get_or_insert_with(BytesMut::new)
                .extend_from_slice(r.rest()),
            None => {
                st.deferred_error = Some(SqlError::wrong_arguments("mysqld_stmt_send_long_data"))
            }
        }
    }

    fn on_stmt_reset(&mut self, body: &[u8]) {
        let id = Reader::new(body).u32().unwrap_or(0);
        match self.statements.get_mut(&id) {
            Some(st) => {
                st.long_data.iter_mut().for_each(|d| *d = None);
                st.deferred_error = None;
                self.reply_ok();
            }
            None => self.reply_error(&SqlError::unknown_stmt(id, "mysqld_stmt_reset")),
        }
    }

    fn on_set_option(&mut self, body: &[u8]) {
        match Reader::new(body).u16() {
            Ok(0) => self.caps |= cap::MULTI_STATEMENTS & self.config.capabilities,
            Ok(1) => self.caps &= !cap::MULTI_STATEMENTS,
            _ => {
                self.reply_error(&SqlError::unknown_command(com::SET_OPTION));
                return;
            }
        }
        // MySQL answers COM_SET_OPTION with EOF.
        let _ = self.writer.start_statement(false);
        let mut p = Vec::new();
        crate::wire::generic::put_eof(&mut p, 0, status::AUTOCOMMIT);
        self.writer.raw_final(&mut self.out, &p);
    }
}

#[cfg(test)]
mod tests;

/// The capability flags offered in the greeting's terms (CLIENT_SSL when TLS is configured).
fn offered_capabilities(config: &ServerConfig) -> u32 {
    config.capabilities | if config.tls { cap::SSL } else { 0 }
}

/// The column definitions of a relayed column block (count, definitions, and the EOF of a
/// client without DEPRECATE_EOF); `None` if one does not decode.
fn relayed_columns(frames: &[u8]) -> Option<Arc<[ColumnDef]>> {
    let mut decoder = PacketDecoder::new(frames.len().max(1024));
    decoder.extend(frames);
    let mut columns = Vec::new();
    let _count = decoder.next_packet().ok()??;
    while let Some(p) = decoder.next_packet().ok()? {
        if !(p.payload.first() == Some(&0xfe) && p.payload.len() < 9) {
            columns.push(ColumnDef::decode(&p.payload).ok()?);
        }
    }
    Some(columns.into())
}

/// The one packet a server sends when it refuses a connection before the handshake (e.g.
/// ERR 1040 "Too many connections").
pub fn refusal_packet(err: &SqlError) -> Bytes {
    let mut payload = Vec::with_capacity(32);
    crate::wire::generic::put_err(&mut payload, err);
    let mut out = BytesMut::new();
    PacketOut::new(0).write(&mut out, &payload);
    out.freeze()
}
