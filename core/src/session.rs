//! One client connection of the gateway: the client's protocol state ([`ServerConn`]), the
//! backend connections this session uses, and the statement in progress.
//!
//! # Driving it
//! - inputs: [`Session::handle_client_input`], [`Session::handle_client_close`],
//!   [`Session::handle_backend_input`], [`Session::handle_backend_close`];
//! - outputs, in this order after any input: [`Session::poll_event`] (open or close a backend
//!   connection, start TLS), [`Session::poll_backend_transmit`], [`Session::poll_client_transmit`],
//!   then [`Session::is_closed`].
//! - TLS: after [`SessionEvent::StartTls`] the driver runs the TLS handshake on the client
//!   socket, then calls [`Session::handle_tls_established`] and carries on with decrypted bytes.
//!
//! # Per-user keyspaces
//! An account may be limited to some keyspaces ([`crate::users`]). Every statement is checked
//! against the keyspace its plan routes to (the keyspace of its tables; the session's keyspace
//! for a statement without tables), as are `USE`, COM_INIT_DB and the handshake's database:
//! a denied one is ERR 1044 and the connection stays usable. A limited user who connects
//! without a database starts in the first keyspace of their list when the gateway's default
//! keyspace is not on it. Statements the gateway answers itself (`select @@version`, `SHOW
//! DATABASES` — which lists only allowed keyspaces) touch no keyspace. Internal work done on a
//! user's behalf (sequence reservations) is not checked. In `--backend` pass-through mode the
//! single keyspace is checked once, at connect.
//!
//! Every backend command has an *owner*: the statement in progress (by generation number),
//! the savepoint set before a part of it (`STMT_SAVEPOINT`), the session itself (replayed
//! `SET`s, `BEGIN`, rollbacks), or a sequence reservation. Events of a command whose owner is
//! gone (a statement ended early by an error or a satisfied LIMIT) are drained and dropped,
//! and the next command waits in the backend's queue meanwhile.
//!
//! A panic while handling one statement is caught here: the client gets ERR 1105, the
//! backends that may have been mid-result are dropped, the panic is counted, and the session
//! carries on.

use crate::backend::{BackendConfig, BackendConn, BackendEvent};
use crate::error::SqlError;
use crate::exec::join::{JoinShape, Joiner};
use crate::exec::{ok_info, Merger};
use crate::gateway::{Gateway, ShardAddress, TabletType};
use crate::plan::{
    plan_sql, Bindings, InsertPlan, JoinPlan, JoinValue, Local, LocalExpr, Plan, Planned, Target,
    TxnOp,
};
use crate::server::{Request, ServerConn};
use crate::wire::binary::ExecuteParams;
use crate::wire::consts::{status, ColumnType};
use crate::wire::{ColumnDef, OkInfo, Value};
use bytes::Bytes;
use smallvec::{smallvec, SmallVec};
use std::collections::{BTreeMap, VecDeque};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Index of a backend connection within its session.
pub type BackendId = usize;

/// Something the driver must do for the session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionEvent {
    /// Connect backend `id` to `address`, then feed bytes both ways. `pooled`: take the
    /// connection from the tablet's pool (an idle one is handed over with
    /// [`Session::adopt_backend`]); side connections (KILL QUERY) bypass the pool so they are
    /// never stuck behind the very query they must stop.
    OpenBackend {
        id: BackendId,
        address: ShardAddress,
        pooled: bool,
        /// The session's settings: an idle connection carrying the same is preferred.
        settings: Option<Arc<str>>,
    },
    /// Backend `id` is idle and clean: give it back to its pool ([`Session::take_released`]
    /// hands over its protocol state).
    ReleaseBackend { id: BackendId },
    /// Close backend `id` once its pending bytes are flushed.
    CloseBackend { id: BackendId },
    /// Deliver a KILL to session `target` ([`Session::handle_kill`]).
    Kill { target: u32, query_only: bool },
    /// Backend `id` wants TLS: write `ssl_request` to it in clear, run the TLS handshake
    /// (client side, presenting `server_name`), then [`Session::handle_backend_tls_established`]
    /// (or [`Session::handle_backend_close`] if it fails).
    StartBackendTls {
        id: BackendId,
        server_name: String,
        ssl_request: Bytes,
        /// The shard URL's `ssl-ca`: verify the server's certificate against it.
        ca: Option<String>,
    },
    /// The client asked for TLS: flush pending client bytes, then run the TLS handshake on
    /// the client socket, feeding the TLS engine `preamble` (bytes already received after the
    /// SSLRequest) before reading the socket; then [`Session::handle_tls_established`] (or
    /// [`Session::handle_client_close`] if the handshake fails).
    StartTls { preamble: Bytes },
}

/// Users allowed to kill any session (others may kill only their own).
const ADMIN_USERS: &[&str] = &["root"];

/// Who receives the answer to a backend command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Owner {
    /// Nobody (idle, or the owner is gone: drain and drop).
    None,
    /// The session's own bookkeeping (SET replay, BEGIN, ROLLBACK): answers are dropped.
    Internal,
    /// The statement with this generation.
    Exec(u64),
    /// The [`STMT_SAVEPOINT`] set before the part of the statement with this generation: an
    /// OK is dropped, an ERR is recorded in the statement (a failure then can't be undone
    /// safely — a `ROLLBACK TO` would reach an older savepoint of that name).
    Savepoint(u64),
    /// Results after the one relayed (a shard answered with more results than the client
    /// asked for, like a CALL): dropped, but an error among them is reported — and with the
    /// client's answer already final, that closes the connection (logged), never hides it.
    Tail,
}

/// A command waiting for its shard connection.
#[derive(Debug)]
enum ShardCommand {
    /// COM_QUERY.
    Query(String),
    /// A client's COM_STMT_EXECUTE, forwarded as a prepared statement of the shard connection
    /// (pass-through mode; see [`BackendConn::execute_sql`]).
    Execute {
        sql: Arc<str>,
        params: ExecuteParams,
    },
}

#[derive(Debug)]
struct BackendSlot {
    conn: BackendConn,
    /// (keyspace, shard index) — or a reserved key for the sequence connection.
    key: (String, usize),
    queue: VecDeque<(ShardCommand, Owner)>,
    owner: Owner,
    /// Joined the session's explicit transaction.
    in_txn: bool,
    /// A side connection (e.g. carrying KILL QUERY): closed once its queue is done.
    close_when_idle: bool,
    /// Connecting (TCP, handshake, authentication) must finish by then (µs).
    connect_deadline_us: Option<u64>,
    /// The tablet this connection goes to (the primary, or one replica).
    tablet: ShardAddress,
    /// A pooled connection that carried another session's settings is being reset
    /// (COM_RESET_CONNECTION) before this session's SETs are replayed on it.
    resetting: bool,
}

impl BackendSlot {
    /// Shard connections and the sequence connection come from pools; side connections
    /// don't.
    fn pooled(&self) -> bool {
        self.key.1 < KILLER_BASE || self.key.1 == SEQUENCE_CONN
    }
}

/// A shard's part of the statement in progress.
#[derive(Debug, Clone, Copy)]
struct Part {
    backend: BackendId,
    done: bool,
}

/// A statement's parts, inline up to two: most statements reach one shard, and a statement
/// should not cost an allocation for that.
type Parts = SmallVec<[Part; 2]>;

/// The statement being executed.
#[derive(Debug)]
enum Exec {
    Idle,
    /// Pass-through mode: accepting the client once the backend authenticates.
    Connecting {
        backend: BackendId,
    },
    /// Results of one or more shards relayed or merged to the client.
    Route(RouteExec),
    /// COMMIT, shard by shard in key-range order.
    Commit(CommitExec),
    /// An INSERT waiting for a block of sequence values.
    Sequence(SeqExec),
    /// A nested-loop join at the gateway (`exec::join`).
    Join(Box<JoinRun>),
    /// A multi-shard write failed inside a transaction: its shards roll back to the
    /// statement savepoint before the client gets the error ([`STMT_SAVEPOINT`]).
    Undo(UndoExec),
}

/// A cross-shard join in progress: the left side, then one right query per left row.
#[derive(Debug)]
struct JoinRun {
    planned: Planned,
    sql: String,
    joiner: Joiner,
    phase: JoinPhase,
    /// The shards of the current query (left side, one probe, or the fields query).
    parts: Parts,
    /// Concatenates the current query's shards in key-range order.
    merger: Merger,
    columns_sent: bool,
    rows_sent: u64,
    /// Aggregates, GROUP BY, DISTINCT over the join: the joined rows merged as one shard.
    post: Option<Merger>,
    post_done: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum JoinPhase {
    Left,
    Probe,
    /// The right side's columns when no probe ran (an empty left side).
    Fields,
}

#[derive(Debug)]
struct RouteExec {
    parts: Parts,
    rows_sent: u64,
    /// `None`: one part whose answer is relayed as is. Boxed: the common relayed statement
    /// then moves a small `Exec` around, not a merger's worth of bytes.
    merger: Option<Box<Merger>>,
    columns_sent: bool,
    ok: OkInfo,
    /// Each part's OK info and affected rows, when there are several: summed at the end
    /// ([`ok_info::sum`]).
    infos: Vec<(String, u64)>,
    /// For INSERTs filled from a sequence: the first id (becomes LAST_INSERT_ID()).
    first_id: Option<u64>,
    /// An INSERT into a sharded table: only sequence-generated ids change LAST_INSERT_ID()
    /// (an explicit id in the statement does not, as in MySQL).
    sharded_insert: bool,
    /// A read outside any transaction: retried once on a fresh connection when a part's
    /// connection fails before that part produced anything and before the client got a byte.
    retry: Option<Box<RouteRetry>>,
    /// Every part runs after [`STMT_SAVEPOINT`] on its shard: a failure undoes the statement
    /// on all of them ([`Exec::Undo`]) instead of leaving the parts that succeeded applied.
    savepoint: bool,
    /// Shards where setting that savepoint failed (label: error).
    savepoint_failed: Vec<String>,
    /// The one part answers a forwarded COM_STMT_EXECUTE: its rows are binary already.
    binary_rows: bool,
    /// The one part's result sets are relayed packet for packet
    /// ([`BackendConn::relay_result`]): pass-through, whose client reads the shard's own
    /// encoding, so nothing needs decoding.
    relay: bool,
}

impl RouteExec {
    /// The parts of a statement just sent, answers merged by `merger` (one slot per part, in
    /// order of `parts`) or relayed as is when `None`.
    fn new(parts: Parts, merger: Option<Merger>) -> RouteExec {
        RouteExec {
            parts,
            rows_sent: 0,
            merger: merger.map(Box::new),
            columns_sent: false,
            ok: OkInfo::default(),
            infos: Vec::new(),
            first_id: None,
            sharded_insert: false,
            retry: None,
            savepoint: false,
            savepoint_failed: Vec::new(),
            binary_rows: false,
            relay: false,
        }
    }
}

/// Undoing a failed multi-shard write: `ROLLBACK TO` [`STMT_SAVEPOINT`] on each of its shards.
#[derive(Debug)]
struct UndoExec {
    /// Shards whose `ROLLBACK TO` has not answered yet (with their labels).
    pending: Vec<(BackendId, String)>,
    /// The statement's error, for the client once every shard rolled back.
    error: SqlError,
    /// Shards where the savepoint or the `ROLLBACK TO` failed (label: error): the transaction
    /// is rolled back.
    failed: Vec<String>,
}

/// The savepoint set on each shard of a write that may reach several shards inside a
/// transaction, so a failure on one shard undoes the statement on all of them (MySQL rolls
/// back a failed statement, never the parts of it that worked; Vitess does the same with
/// `_vt_savepoint_N`).
///
/// - When: inside an explicit transaction or with autocommit off, for DML resolved to more
///   than one shard. A single-shard write needs none (the shard undoes its own failed
///   statement), nor does autocommit DML (it runs in an implicit transaction of its own that
///   is rolled back whole), nor DDL (it commits implicitly).
/// - Where: `SAVEPOINT` is queued on each of the statement's shards right before its part —
///   after the `BEGIN` and the replayed user savepoints of a shard joining the transaction
///   with this statement — so it marks exactly the state before the statement on every shard
///   it touches, and shards it doesn't touch get nothing. It costs one pipelined command per
///   shard, never an extra round trip before the statement starts.
/// - Failure: the client's answer waits while every shard of the statement runs
///   `ROLLBACK TO` (behind whatever of the statement it was still running); the client then
///   gets the statement's own error and the transaction stays open. If a `ROLLBACK TO`
///   fails, the whole transaction is rolled back and the client gets an ERR saying so.
/// - One fixed name, set again by each such statement (a `SAVEPOINT` with an existing name
///   moves it, deleting nothing else), so savepoints never pile up. It is never remembered
///   with the user's savepoints (so never replayed on shards joining later), and the name is
///   reserved: a user `SAVEPOINT` / `ROLLBACK TO` / `RELEASE` naming it is refused.
const STMT_SAVEPOINT: &str = "_shardgate_stmt";

/// What a read needs to run one of its parts again.
#[derive(Debug)]
struct RouteRetry {
    keyspace: String,
    /// Per part: the slot key's shard (replica keys included) and the SQL sent.
    shards: Vec<usize>,
    sqls: Vec<String>,
    /// Per part: the tablet used (a retry avoids it), and whether the part produced anything.
    tablets: Vec<Option<ShardAddress>>,
    started: Vec<bool>,
    used: bool,
}

#[derive(Debug)]
struct CommitExec {
    gen: u64,
    pending: VecDeque<BackendId>,
    committed: Vec<String>,
    current: Option<(BackendId, String)>,
    /// The answer once every shard committed (an implicit transaction's statement result).
    ok: OkInfo,
}

#[derive(Debug)]
struct SeqExec {
    gen: u64,
    backend: BackendId,
    planned: Planned,
    sql: String,
    stage: SeqStage,
    block: Option<(u64, u64)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SeqStage {
    Reserve,
    Write,
}

/// Shard index reserved for a session's sequence-reservation connection.
const SEQUENCE_CONN: usize = usize::MAX;
/// Keys at or above this are side connections (KILL QUERY); the shard is in the slot.
const KILLER_BASE: usize = usize::MAX / 2;
/// Keys from here up to [`KILLER_BASE`] are replica connections: `REPLICA_BASE + shard`.
/// They get the session's SETs but never join a transaction.
const REPLICA_BASE: usize = usize::MAX / 4;

/// The shard index of a slot key's shard (replica keys map back to their shard).
fn shard_index(key_shard: usize) -> usize {
    if (REPLICA_BASE..KILLER_BASE).contains(&key_shard) {
        key_shard - REPLICA_BASE
    } else {
        key_shard
    }
}

/// What the driver's TLS handshake with the client settled on, in MySQL's terms
/// (`SHOW STATUS LIKE 'Ssl_%'`): e.g. `TLSv1.3` and `TLS_AES_256_GCM_SHA384`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsInfo {
    pub version: String,
    pub cipher: String,
}

/// One gateway client connection. See the module docs for the calling contract.
#[derive(Debug)]
pub struct Session {
    gw: Arc<Gateway>,
    /// The gateway's default keyspace, shared by every statement record that names it.
    default_keyspace: Arc<str>,
    conn: ServerConn,
    backends: Slots<BackendSlot>,
    by_shard: BTreeMap<(String, usize), BackendId>,
    next_backend: BackendId,
    events: VecDeque<SessionEvent>,
    exec: Exec,
    gen: u64,
    target: Target,
    /// The database the client selected (pass-through mode).
    database: Option<String>,
    /// Session-wide statements, replayed on every backend the session opens.
    sets: Vec<String>,
    /// `sets` as one tag (`None` when empty): pooled connections carry the tag of the
    /// settings applied to them, so a session with the same settings skips the replay.
    sets_tag: Option<Arc<str>>,
    in_txn: bool,
    autocommit: bool,
    /// Autocommit is off and a shard reported its implicit transaction open (IN_TRANS) in an
    /// answer to the client's statement since the last COMMIT or ROLLBACK: the client's
    /// answers say IN_TRANS too, as MySQL's do (drivers such as Connector/J send ROLLBACK only
    /// when that flag says there is something to undo).
    implicit_open: bool,
    last_insert_id: u64,
    workload: Workload,
    transaction_mode: TransactionMode,
    /// The caller's clock (µs), set before every input.
    now_us: u64,
    created_us: u64,
    last_activity_us: u64,
    /// The statement being answered, for the query log and the query timeout.
    current: Option<CurrentStatement>,
    /// The statistics counter of the last statement's (plan, keyspace): the next one like it
    /// is counted without a lock.
    stats_counter: Option<crate::gateway::StatsCounter>,
    /// The session's `max_execution_time` (ms), overriding the gateway default.
    max_execution_time_ms: Option<u64>,
    /// Shards whose connection died while they held part of the open transaction: COMMIT
    /// must fail (their writes are gone), never answer OK.
    lost_in_txn: Vec<String>,
    /// Savepoints of the open transaction, oldest first (names as written; compared
    /// case-insensitively, as MySQL does). Replayed after BEGIN on shards joining later.
    savepoints: Vec<String>,
    /// Why the last `backend_for` found no tablet (an unhealthy primary, no healthy replica).
    tablet_error: Option<SqlError>,
    /// A tablet the next `backend_for` avoids when it can (a read being retried).
    avoid_tablet: Option<ShardAddress>,
    /// Backends handed back to their pool, until the driver takes them.
    released: BTreeMap<BackendId, BackendConn>,
    /// The client connection's TLS parameters, once it upgraded.
    tls: Option<Box<TlsInfo>>,
    /// The session created state that lives in its backend connections (temporary tables,
    /// user variables, locks, SQL-level prepared statements): it keeps its connections.
    reserved: bool,
    /// An autocommit write reaching several shards runs in a transaction of its own (Vitess's
    /// autocommit multi-shard DML): BEGIN on each shard, the parts, then COMMIT in key-range
    /// order once every part succeeded, or ROLLBACK everywhere when one failed.
    implicit_txn: bool,
}

#[derive(Debug)]
struct CurrentStatement {
    start_us: u64,
    sql: String,
    plan: &'static str,
    keyspace: Arc<str>,
    shards: Vec<String>,
    timed_out: bool,
}

/// Statement text kept in the query log.
const LOGGED_SQL_CHARS: usize = 512;

/// `set workload = 'oltp' | 'olap'`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// Results are capped at `Limits::oltp_max_rows` rows (still streamed, never buffered).
    Oltp,
    /// No row cap: large results stream with bounded memory.
    Olap,
}

/// `set transaction_mode = 'multi' | 'single'`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransactionMode {
    /// Commit shard by shard in key-range order; partial failures are reported.
    Multi,
    /// A transaction may touch one shard only.
    Single,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.gw.unregister_session(self.connection_id());
    }
}

impl Session {
    pub fn new(gw: Arc<Gateway>, connection_id: u32, scramble: [u8; 20]) -> Session {
        gw.counters.connections.fetch_add(1, Ordering::Relaxed);
        let conn = ServerConn::new(gw.server.clone(), connection_id, scramble);
        Session {
            default_keyspace: Arc::from(gw.topology.default_keyspace.as_str()),
            gw,
            conn,
            backends: Slots::new(),
            by_shard: BTreeMap::new(),
            next_backend: 0,
            events: VecDeque::new(),
            exec: Exec::Idle,
            gen: 0,
            target: Target::default(),
            database: None,
            sets: Vec::new(),
            sets_tag: None,
            tls: None,
            in_txn: false,
            autocommit: true,
            implicit_open: false,
            last_insert_id: 0,
            workload: Workload::Oltp,
            transaction_mode: TransactionMode::Multi,
            now_us: 0,
            created_us: 0,
            last_activity_us: 0,
            current: None,
            stats_counter: None,
            max_execution_time_ms: None,
            lost_in_txn: Vec::new(),
            savepoints: Vec::new(),
            tablet_error: None,
            avoid_tablet: None,
            implicit_txn: false,
            released: BTreeMap::new(),
            reserved: false,
        }
    }

    /// The caller's clock, in µs. Call before each input; time never goes backwards.
    pub fn set_now(&mut self, now_us: u64) {
        if self.created_us == 0 && self.now_us == 0 {
            self.created_us = now_us;
            self.last_activity_us = now_us;
        }
        self.now_us = self.now_us.max(now_us);
    }

    /// The next deadline (µs) at which [`Session::handle_timeout`] must be called.
    pub fn poll_timeout(&self) -> Option<u64> {
        let connect = self
            .backends
            .values()
            .filter_map(|s| s.connect_deadline_us)
            .min();
        match (self.session_deadline(), connect) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The client-facing deadline: handshake, statement, or idle timeout.
    fn session_deadline(&self) -> Option<u64> {
        let l = &self.gw.limits;
        let ms = |v: u64| v.saturating_mul(1000);
        if self.conn.is_closed() {
            return None;
        }
        if !self.conn.is_authenticated() {
            return (l.handshake_timeout_ms > 0)
                .then(|| self.created_us + ms(l.handshake_timeout_ms));
        }
        if let Some(c) = &self.current {
            let limit = self.max_execution_time_ms.unwrap_or(l.query_timeout_ms);
            return (limit > 0 && !c.timed_out).then(|| c.start_us + ms(limit));
        }
        (l.idle_timeout_ms > 0).then(|| self.last_activity_us + ms(l.idle_timeout_ms))
    }

    /// The clock reached a deadline from [`Session::poll_timeout`].
    pub fn handle_timeout(&mut self, now_us: u64) {
        self.set_now(now_us);
        self.expire_backend_connects(now_us);
        let Some(due) = self.session_deadline() else {
            self.pump();
            return;
        };
        if now_us < due {
            self.pump();
            return;
        }
        if !self.conn.is_authenticated() {
            self.conn.close_with_reason(
                "handshake timeout: the client did not authenticate in time".into(),
            );
        } else if let Some(c) = &mut self.current {
            c.timed_out = true;
            let err = SqlError::new(
                crate::error::codes::ER_QUERY_TIMEOUT,
                "HY000",
                "Query execution was interrupted, maximum statement execution time exceeded",
            );
            self.interrupt(err);
        } else {
            self.conn
                .close_with_reason("idle timeout: no command within the idle limit".into());
        }
        self.pump();
    }

    /// Shards that did not finish connecting by their deadline: their connection is given up
    /// with a clear error, which ends the statement waiting for it.
    fn expire_backend_connects(&mut self, now_us: u64) {
        let ms = self.gw.limits.shard_connect_timeout_ms;
        let late: Vec<BackendId> = self
            .backends
            .iter()
            .filter(|(_, s)| s.connect_deadline_us.is_some_and(|d| d <= now_us))
            .map(|(id, _)| *id)
            .collect();
        for id in late {
            let label = match self.backends.get(&id) {
                Some(s) => self.shard_label(&s.key),
                None => continue,
            };
            tracing::warn!(conn = self.connection_id(), backend = id, shard = %label, "shard did not complete its handshake in time");
            if let Some(s) = self.backends.get_mut(&id) {
                s.connect_deadline_us = None;
                s.conn.abort(SqlError::new(
                    crate::error::codes::ER_CONNECT_TO_FOREIGN_DATA_SOURCE,
                    "HY000",
                    format!("Unable to connect to shard {label}: no handshake within {ms} ms"),
                ));
            }
        }
    }

    /// May the driver read more from backend `id`? No while a streaming merge already holds
    /// many rows of that shard (it waits for the others): memory stays bounded.
    pub fn wants_backend_input(&self, id: BackendId) -> bool {
        if let Exec::Join(j) = &self.exec {
            return match j.parts.iter().position(|p| p.backend == id) {
                Some(i) => j.merger.queued(i) < self.gw.limits.merge_queue_rows,
                None => true,
            };
        }
        let Exec::Route(r) = &self.exec else {
            return true;
        };
        let Some(m) = &r.merger else { return true };
        match r.parts.iter().position(|p| p.backend == id) {
            Some(i) => m.queued(i) < self.gw.limits.merge_queue_rows,
            None => true,
        }
    }

    // ---- getters ----

    pub fn connection_id(&self) -> u32 {
        self.conn.connection_id()
    }
    /// Whether the client asked for CLIENT_FOUND_ROWS: a pooled backend connection serves
    /// this session only if it asked the same ([`BackendConn::found_rows`]).
    pub fn found_rows(&self) -> bool {
        self.conn.capabilities() & crate::wire::consts::cap::FOUND_ROWS != 0
    }
    pub fn is_closed(&self) -> bool {
        self.conn.is_closed()
    }
    /// Is a statement in progress?
    pub fn is_busy(&self) -> bool {
        !matches!(self.exec, Exec::Idle)
    }
    /// Open backend connections.
    pub fn backend_count(&self) -> usize {
        self.backends.len()
    }

    // ---- inputs ----

    pub fn handle_client_input(&mut self, data: &[u8]) {
        self.conn.handle_input(data);
        self.pump();
    }

    /// The client's address (for access-denied messages); call before any input.
    pub fn set_peer_host(&mut self, host: &str) {
        self.conn.set_peer_host(host);
    }

    /// The TLS handshake requested by [`SessionEvent::StartTls`] is done, with `info`.
    pub fn handle_tls_established(&mut self, info: TlsInfo) {
        self.tls = Some(Box::new(info));
        self.conn.handle_tls_established();
        self.pump();
    }

    /// Does the client connection run over TLS?
    pub fn is_tls(&self) -> bool {
        self.conn.is_tls()
    }

    pub fn handle_client_close(&mut self) {
        self.conn.handle_close();
        self.gw.unregister_session(self.connection_id());
        self.pump();
    }

    /// Another session killed this one. `query_only`: KILL QUERY — the statement in progress
    /// ends with ERR 1317 and the connection stays usable; otherwise the connection closes.
    pub fn handle_kill(&mut self, query_only: bool) {
        if !query_only {
            tracing::info!(conn = self.connection_id(), "connection killed");
            self.conn.handle_close();
            self.gw.unregister_session(self.connection_id());
            self.pump();
            return;
        }
        self.interrupt(SqlError::interrupted());
        self.pump();
    }

    /// Ends the statement in progress with `err` (KILL QUERY, query timeout): its shard
    /// queries are killed, the client gets the ERR, the connection stays usable.
    ///
    /// A multi-shard write running after [`STMT_SAVEPOINT`], or being undone, is not waited
    /// for: the whole transaction is rolled back instead (safe without waiting on shards that
    /// may not answer), and the ERR says so.
    fn interrupt(&mut self, err: SqlError) {
        if matches!(self.exec, Exec::Idle) {
            return;
        }
        for id in self.exec_backends() {
            self.kill_backend_query(id);
        }
        let undoing = matches!(&self.exec, Exec::Route(r) if r.savepoint)
            || matches!(self.exec, Exec::Undo(_));
        self.exec = Exec::Idle;
        if undoing {
            return self.abort_txn(&SqlError::new(
                err.code,
                err.sqlstate(),
                format!("{}; the transaction was rolled back (the interrupted statement had reached several shards)", err.message),
            ));
        }
        self.abort_implicit_txn();
        self.gw.counters.errors.fetch_add(1, Ordering::Relaxed);
        self.conn.send_error(&err);
    }

    pub fn handle_backend_input(&mut self, id: BackendId, data: &[u8]) {
        if let Some(slot) = self.backends.get_mut(&id) {
            slot.conn.handle_input(data);
        }
        self.pump();
    }

    /// The driver lends backend `id` an idle connection from the tablet's pool (authenticated
    /// and clean) instead of opening a new one.
    pub fn adopt_backend(&mut self, id: BackendId, conn: BackendConn) {
        let Some(slot) = self.backends.get_mut(&id) else {
            return;
        };
        let connected = BackendEvent::Connected {
            server_version: conn.server_version().to_string(),
            connection_id: conn.connection_id(),
        };
        let carried = conn.settings().cloned();
        slot.conn = conn;
        slot.connect_deadline_us = None;
        if carried == self.sets_tag {
            // Our settings are applied already: drop the replay queued when it was opened.
            let n = self.sets.len();
            let queued_replay = slot.queue.len() >= n
                && slot
                    .queue
                    .iter()
                    .zip(&self.sets)
                    .all(|((cmd, owner), set)| {
                        *owner == Owner::Internal
                            && matches!(cmd, ShardCommand::Query(sql) if sql == set)
                    });
            if queued_replay {
                slot.queue.drain(..n);
            }
        } else if carried.is_some() {
            // Another session's settings: cleared before ours are replayed.
            slot.resetting = slot.conn.reset_connection().is_ok();
            if !slot.resetting {
                let e = SqlError::new(2013, "HY000", "pooled shard connection not reusable");
                self.drop_backend(id);
                self.on_waiting_backend_lost(id, e);
                return self.pump();
            }
            slot.owner = Owner::Internal;
        }
        self.guarded(|s| s.on_backend_event(id, connected));
        self.pump();
    }

    /// The protocol state of a backend announced with [`SessionEvent::ReleaseBackend`].
    pub fn take_released(&mut self, id: BackendId) -> Option<BackendConn> {
        self.released.remove(&id)
    }

    /// The driver could not get backend `id` a connection (pool wait timed out, connect
    /// failed): the statement needing it ends with `err`.
    pub fn handle_backend_error(&mut self, id: BackendId, err: SqlError) {
        if let Some(slot) = self.backends.get_mut(&id) {
            slot.conn.abort(err);
        }
        self.pump();
    }

    /// The backend's socket closed, or connecting to it failed.
    pub fn handle_backend_close(&mut self, id: BackendId) {
        if let Some(slot) = self.backends.get_mut(&id) {
            slot.conn.handle_close();
        }
        self.pump();
    }

    // ---- outputs ----

    pub fn poll_event(&mut self) -> Option<SessionEvent> {
        if let Some(ev) = self.events.pop_front() {
            return Some(ev);
        }
        for (id, slot) in self.backends.iter_mut() {
            if let Some(ssl_request) = slot.conn.poll_tls_upgrade() {
                return Some(SessionEvent::StartBackendTls {
                    id: *id,
                    server_name: slot.conn.tls_server_name().unwrap_or_default().to_string(),
                    ssl_request,
                    ca: match &slot.tablet {
                        ShardAddress::Mysql { ssl_ca, .. } => ssl_ca.clone(),
                        ShardAddress::Embedded { .. } => None,
                    },
                });
            }
        }
        self.conn
            .poll_tls_upgrade()
            .map(|preamble| SessionEvent::StartTls { preamble })
    }

    /// The TLS handshake requested by [`SessionEvent::StartBackendTls`] is done.
    pub fn handle_backend_tls_established(&mut self, id: BackendId) {
        if let Some(slot) = self.backends.get_mut(&id) {
            slot.conn.handle_tls_established();
        }
        self.pump();
    }

    pub fn poll_backend_transmit(&mut self) -> Option<(BackendId, Bytes)> {
        self.backends
            .iter_mut()
            .find_map(|(id, s)| s.conn.poll_transmit().map(|b| (*id, b)))
    }

    pub fn poll_client_transmit(&mut self) -> Option<Bytes> {
        self.conn.poll_transmit()
    }

    /// The first backend connection with bytes to send, and those bytes, borrowed: the
    /// driver's form of [`Session::poll_backend_transmit`] (no shared buffer per write). Call
    /// [`Session::backend_transmitted`] once they are written.
    pub fn backend_transmit(&self) -> Option<(BackendId, &[u8])> {
        self.backends.iter().find_map(|(id, s)| {
            let bytes = s.conn.pending_transmit();
            (!bytes.is_empty()).then_some((*id, bytes))
        })
    }

    pub fn backend_transmitted(&mut self, id: BackendId) {
        if let Some(s) = self.backends.get_mut(&id) {
            s.conn.transmitted();
        }
    }

    /// The bytes to send to the client, borrowed (empty: none): the driver's form of
    /// [`Session::poll_client_transmit`]. Call [`Session::client_transmitted`] once written.
    pub fn client_transmit(&self) -> &[u8] {
        self.conn.pending_transmit()
    }

    pub fn client_transmitted(&mut self) {
        self.conn.transmitted();
    }

    // ---- the loop ----

    /// Moves everything that can move: backend events to their owners, queued backend
    /// commands onto idle connections, then new requests while no statement is in progress.
    fn pump(&mut self) {
        loop {
            let mut progressed = false;
            // By key, not over a collected list (no allocation per pass): handling an event
            // may open or drop backends.
            let mut next = self.backends.keys().next().copied();
            while let Some(id) = next {
                while let Some(ev) = self.backends.get_mut(&id).and_then(|s| s.conn.poll_event()) {
                    progressed = true;
                    self.guarded(|s| s.on_backend_event(id, ev));
                }
                progressed |= self.issue_queued(id);
                next = self.backends.next_key_after(id);
            }
            if matches!(self.exec, Exec::Idle) {
                // Decoding the request runs guarded too: a panic in the protocol layer answers
                // ERR 1105 instead of dropping the connection.
                let mut got = false;
                self.guarded(|s| {
                    if let Some(req) = s.conn.poll_request() {
                        got = true;
                        s.start(req);
                    }
                });
                progressed |= got;
            }
            self.finish_statement_if_answered();
            self.release_idle_backends();
            if self.conn.is_closed() && !self.backends.is_empty() {
                self.close_all_backends();
            }
            if !progressed {
                return;
            }
        }
    }

    /// Runs one step of statement handling, turning a panic into ERR 1105 for this
    /// statement only.
    fn guarded(&mut self, f: impl FnOnce(&mut Session)) {
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| f(self))) {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            self.gw.counters.panics.fetch_add(1, Ordering::Relaxed);
            tracing::error!(conn = self.connection_id(), panic = %what, "panic while handling a statement; answered with ERR 1105");
            // Backends caught mid-result cannot be trusted to be in sync any more.
            for id in self.exec_backends() {
                self.drop_backend(id);
            }
            self.exec = Exec::Idle;
            self.conn.send_error(&SqlError::internal(format!(
                "internal error while handling the statement: {what}"
            )));
        }
    }

    fn begin_statement(&mut self, sql: &str) {
        self.last_activity_us = self.now_us;
        let keyspace = match &self.target.keyspace {
            Some(k) => Arc::from(k.as_str()),
            None => self.default_keyspace.clone(),
        };
        self.current = Some(CurrentStatement {
            start_us: self.now_us,
            sql: if self.query_logged() {
                sql.chars().take(LOGGED_SQL_CHARS).collect()
            } else {
                String::new()
            },
            plan: if self.gw.passthrough {
                "Passthrough"
            } else {
                "Local"
            },
            keyspace,
            shards: Vec::new(),
            timed_out: false,
        });
    }

    /// Whether finished statements go to a query log (which alone needs their text and
    /// shard labels: the statistics don't).
    fn query_logged(&self) -> bool {
        self.gw.query_log.get().is_some()
    }

    /// The labels of `shards` of `ks` for the query log; none without one.
    fn logged_labels(&self, ks: &str, shards: impl Iterator<Item = usize>) -> Vec<String> {
        if !self.query_logged() {
            return Vec::new();
        }
        shards
            .map(|sh| self.shard_label(&(ks.to_string(), sh)))
            .collect()
    }

    fn note_plan(&mut self, plan: &'static str, keyspace: &str, shards: Vec<String>) {
        if let Some(c) = &mut self.current {
            c.plan = plan;
            if *c.keyspace != *keyspace {
                c.keyspace = Arc::from(keyspace);
            }
            c.shards = shards;
        }
    }

    /// Records the statement once its answer is complete (query log and metrics).
    fn finish_statement_if_answered(&mut self) {
        let answered = matches!(
            self.conn.writer_state(),
            crate::response::WriterState::Terminated { .. }
        );
        if self.current.is_none()
            || !matches!(self.exec, Exec::Idle)
            || !(answered || self.conn.is_closed())
        {
            return;
        }
        let Some(c) = self.current.take() else { return };
        let (rows, error) = self.conn.request_outcome();
        self.last_activity_us = self.now_us;
        let record = crate::gateway::StatementRecord {
            connection_id: self.connection_id(),
            keyspace: c.keyspace,
            shards: c.shards,
            plan: c.plan,
            rows,
            duration_us: self.now_us.saturating_sub(c.start_us),
            error,
            sql: c.sql,
        };
        self.gw
            .stats
            .record_cached(&mut self.stats_counter, &record);
        if let Some(sink) = self.gw.query_log.get() {
            (sink.0)(&record);
        }
    }

    /// Outside a transaction, and unless the session holds state in its connections, every
    /// backend whose work is done goes back to its pool: a session holds shard connections
    /// only while a statement (or transaction) needs them. A connection that carries the
    /// session's `SET`s is reset first (the next session replays its own); it leaves the
    /// session's shard map at once, so the next statement never lands on it mid-reset.
    /// Pass-through sessions keep theirs (the client's own session state lives there).
    fn release_idle_backends(&mut self) {
        if self.gw.passthrough
            || self.in_txn
            || !self.autocommit
            || self.reserved
            || !matches!(self.exec, Exec::Idle)
        {
            return;
        }
        let idle: Vec<BackendId> = self
            .backends
            .iter()
            .filter(|(_, s)| {
                s.pooled()
                    && s.conn.is_idle()
                    && s.owner == Owner::None
                    && s.queue.is_empty()
                    && !s.in_txn
                    && !s.close_when_idle
                    && !s.resetting
            })
            .map(|(id, _)| *id)
            .collect();
        for id in idle {
            // It goes back with the session's settings applied, tagged with them: the pool
            // lends it as it is to a session with the same settings, and any other session
            // resets it first (see `adopt_backend`).
            if let Some(mut slot) = self.backends.remove(&id) {
                self.by_shard.retain(|_, v| *v != id);
                slot.conn.set_settings(self.sets_tag.clone());
                self.released.insert(id, slot.conn);
                self.events.push_back(SessionEvent::ReleaseBackend { id });
            }
        }
    }

    fn exec_backends(&self) -> Vec<BackendId> {
        match &self.exec {
            Exec::Idle => Vec::new(),
            Exec::Connecting { backend } => vec![*backend],
            Exec::Route(r) => r
                .parts
                .iter()
                .filter(|p| !p.done)
                .map(|p| p.backend)
                .collect(),
            Exec::Commit(c) => c.current.iter().map(|(b, _)| *b).collect(),
            Exec::Sequence(s) => vec![s.backend],
            Exec::Join(j) => j
                .parts
                .iter()
                .filter(|p| !p.done)
                .map(|p| p.backend)
                .collect(),
            Exec::Undo(u) => u.pending.iter().map(|(b, _)| *b).collect(),
        }
    }

    fn next_gen(&mut self) -> u64 {
        self.gen += 1;
        self.gen
    }

    /// Stops a backend's running query: `KILL QUERY <thread>` on a side connection to the same
    /// shard. Outside a transaction the busy connection is also dropped, so the session never
    /// waits for a query that ignores the kill (a fresh connection opens on demand).
    fn kill_backend_query(&mut self, id: BackendId) {
        let Some(slot) = self.backends.get(&id) else {
            return;
        };
        let ks = slot.key.0.clone();
        let tablet = slot.tablet.clone();
        let thread = slot.conn.connection_id();
        let keep = slot.in_txn || self.in_txn || !self.autocommit;
        let side_key = (ks, KILLER_BASE + self.next_backend);
        let side = self.open_side_backend(tablet, side_key);
        if let Some(s) = self.backends.get_mut(&side) {
            s.close_when_idle = true;
        }
        self.send(side, format!("KILL QUERY {thread}"), Owner::Internal);
        if !keep {
            self.drop_backend(id);
        }
    }

    fn fail(&mut self, e: &SqlError) {
        self.gw.counters.errors.fetch_add(1, Ordering::Relaxed);
        self.exec = Exec::Idle;
        self.abort_implicit_txn();
        self.conn.send_error(e);
    }

    fn sync_status(&mut self) {
        let mut bits = 0;
        if self.autocommit {
            bits |= status::AUTOCOMMIT;
        }
        if self.in_txn || (self.implicit_open && !self.autocommit) {
            bits |= status::IN_TRANS;
        }
        self.conn.set_session_status(bits);
    }

    // ---- requests ----

    fn start(&mut self, req: Request) {
        self.gw.counters.statements.fetch_add(1, Ordering::Relaxed);
        match req {
            Request::Connect { database, .. } => self.on_connect(database),
            Request::Query { sql } => {
                self.begin_statement(&sql);
                self.gw.failpoints.check_statement(&sql);
                self.execute_sql(sql);
            }
            Request::Execute { sql, params, .. } => {
                self.begin_statement(&sql);
                self.gw.failpoints.check_statement(&sql);
                if self.gw.passthrough && !crate::sql::starts_with_keyword(&sql, "kill") {
                    self.forget_statements_on_use(&sql);
                    // The client's prepared statement runs as a prepared statement on the
                    // server as well (prepared once per shard connection), and its binary
                    // rows are relayed as they are: no SQL text to render, parse or convert
                    // rows for, on either side. Its parameters go as the client encoded them.
                    return self.forward(ShardCommand::Execute { sql, params });
                }
                // Sharded: prepared statements reach shards as text with literals bound
                // (planning needs the values), like Vitess; the response writer converts the
                // shards' text rows to binary rows.
                let Ok(params) = params.into_values() else {
                    return self.fail(&SqlError::wrong_arguments("mysqld_stmt_execute"));
                };
                let text = crate::sql::render_with_params(&sql, &params)
                    .map(Ok)
                    .unwrap_or_else(|| {
                        crate::sql::parse_one(&sql).and_then(|mut st| {
                            crate::sql::bind_placeholders(&mut st, &params)?;
                            Ok(st.to_string())
                        })
                    });
                match text {
                    Ok(t) => self.execute_sql(t),
                    Err(e) => self.fail(&e),
                }
            }
            Request::InitDb { database } => {
                if self.gw.passthrough {
                    self.database = Some(database.clone());
                    self.execute_sql(format!("USE `{}`", database.replace('`', "``")));
                } else {
                    self.execute_sql(format!("USE `{}`", database.replace('`', "``")));
                }
            }
            Request::ResetConnection => {
                // As in MySQL, the current database (here: the target) survives a reset.
                self.sets.clear();
                self.sets_tag = None;
                self.in_txn = false;
                self.implicit_open = false;
                self.savepoints.clear();
                self.autocommit = true;
                // Connections holding session state are closed, never pooled.
                self.close_all_backends();
                self.reserved = false;
                self.sync_status();
                self.conn.send_ok(&OkInfo::default());
            }
            Request::Kill { connection_id } => self.kill(connection_id as u64, false),
        }
    }

    /// `KILL [QUERY|CONNECTION] id` by gateway connection id: allowed for the same user or an
    /// admin; an unknown id is ERR 1094.
    fn kill(&mut self, id: u64, query_only: bool) {
        let target = u32::try_from(id)
            .ok()
            .and_then(|t| self.gw.session_info(t).map(|i| (t, i)));
        let Some((t, info)) = target else {
            return self.fail(&SqlError::no_such_thread(id));
        };
        let me = self.conn.user().to_string();
        if info.user != me && !ADMIN_USERS.contains(&me.as_str()) {
            return self.fail(&SqlError::new(
                1095,
                "HY000",
                format!("You are not owner of thread {id}"),
            ));
        }
        if t == self.connection_id() {
            if query_only {
                // Killing one's own query: nothing else runs while this statement does.
                return self.conn.send_ok(&OkInfo::default());
            }
            self.conn.send_error(&SqlError::interrupted());
            return self.handle_kill(false);
        }
        self.events.push_back(SessionEvent::Kill {
            target: t,
            query_only,
        });
        self.conn.send_ok(&OkInfo::default());
    }

    /// ERR 1044 unless the user may use keyspace `ks`.
    fn check_keyspace(&self, ks: &str) -> Result<(), SqlError> {
        if self.conn.may_use_keyspace(ks) {
            Ok(())
        } else {
            Err(SqlError::db_access_denied(self.conn.user(), ks))
        }
    }

    /// Where a session starts without a database: nowhere in particular (the gateway's
    /// default keyspace), or, for a user who may not use that one, the first allowed keyspace.
    fn initial_target(&self) -> Target {
        let default = &self.gw.topology.default_keyspace;
        match self.conn.allowed_keyspaces() {
            Some(list) if !list.contains(default) => list
                .iter()
                .find(|k| self.gw.topology.keyspaces.contains_key(*k))
                .map(|k| Target {
                    keyspace: Some(k.clone()),
                    ..Target::default()
                })
                .unwrap_or_default(),
            _ => Target::default(),
        }
    }

    fn on_connect(&mut self, database: Option<String>) {
        if self.gw.passthrough {
            let ks = self.gw.topology.default_keyspace.clone();
            if let Err(e) = self.check_keyspace(&ks) {
                return self.fail(&e);
            }
            self.gw
                .register_session(self.connection_id(), self.conn.user());
            // Validate credentials and database against the backend before accepting.
            self.database = database;
            let ks = self.gw.topology.default_keyspace.clone();
            match self.backend_for(&ks, 0) {
                Some(id) if self.backends.get(&id).is_some_and(|s| s.conn.is_idle()) => {
                    self.conn.send_ok(&OkInfo::default())
                }
                Some(id) => self.exec = Exec::Connecting { backend: id },
                None => self.fail(&SqlError::new(
                    1049,
                    "42000",
                    format!("Unknown keyspace '{ks}'"),
                )),
            }
            return;
        }
        self.target = self.initial_target();
        if let Some(db) = database.filter(|d| !d.is_empty()) {
            match Target::parse(&db) {
                Ok(t)
                    if t.keyspace
                        .as_ref()
                        .is_some_and(|k| self.gw.topology.keyspaces.contains_key(k)) =>
                {
                    if let Some(Err(e)) = t.keyspace.as_deref().map(|k| self.check_keyspace(k)) {
                        return self.fail(&e);
                    }
                    self.target = t
                }
                _ => {
                    return self.fail(&SqlError::new(
                        1049,
                        "42000",
                        format!("Unknown database '{db}'"),
                    ))
                }
            }
        }
        self.gw
            .register_session(self.connection_id(), self.conn.user());
        self.sync_status();
        self.conn.send_ok(&OkInfo::default());
    }

    /// Plans and starts one statement.
    /// Pass-through: before a `USE` (text or prepared), the statements prepared on the shard
    /// connections are let go: they keep the database they were prepared in.
    fn forget_statements_on_use(&mut self, sql: &str) {
        if crate::sql::starts_with_keyword(sql, "use") {
            for slot in self.backends.values_mut() {
                slot.conn.forget_statements();
            }
        }
    }

    /// Pass-through: `cmd` goes to the one shard connection (opened on demand) and its answer
    /// is relayed as it is.
    fn forward(&mut self, cmd: ShardCommand) {
        // One keyspace, one shard: the connection held, found without building a key.
        let held = self.by_shard.iter().find(|((_, s), _)| *s == 0);
        let id = match held.map(|(_, id)| *id) {
            Some(id) => id,
            None => {
                let ks = self.gw.topology.default_keyspace.clone();
                let Some(id) = self.backend_for(&ks, 0) else {
                    let e = self.tablet_error.take().unwrap_or_else(|| {
                        SqlError::new(1105, "HY000", format!("no shard in keyspace {ks}"))
                    });
                    return self.fail(&e);
                };
                id
            }
        };
        let binary_rows = matches!(cmd, ShardCommand::Execute { .. });
        let gen = self.next_gen();
        let part = Part {
            backend: id,
            done: false,
        };
        self.send_command(id, cmd, Owner::Exec(gen));
        let mut route = RouteExec::new(smallvec![part], None);
        route.binary_rows = binary_rows;
        self.begin_route(route, gen);
    }

    /// Makes `route` (its commands sent as generation `gen`) the statement in progress. One
    /// part's answer in the protocol the client reads (text for a query, binary for a forwarded
    /// execute) is relayed packet for packet: set up here if its command went out already,
    /// else as it is issued ([`Session::issue_queued`]).
    fn begin_route(&mut self, mut route: RouteExec, gen: u64) {
        route.relay = route.merger.is_none()
            && route.parts.len() == 1
            && route.binary_rows == self.conn.binary_rows();
        let relayed = route.relay.then(|| route.parts[0].backend);
        self.exec = Exec::Route(route);
        if let Some(s) = relayed.and_then(|id| self.backends.get_mut(&id)) {
            if s.owner == Owner::Exec(gen) {
                s.conn.relay_result(row_cap(self.workload, &self.gw));
            }
        }
    }

    fn execute_sql(&mut self, sql: String) {
        if crate::sql::starts_with_keyword(&sql, "kill") {
            if let Ok(sqlparser::ast::Statement::Kill { modifier, id }) =
                crate::sql::parse_one(&sql)
            {
                let query_only = matches!(modifier, Some(sqlparser::ast::KillType::Query));
                return self.kill(id, query_only);
            }
        }
        if self.gw.passthrough {
            self.forget_statements_on_use(&sql);
            return self.forward(ShardCommand::Query(sql));
        }
        if !self.reserved && crate::sql::needs_reserved_connection(&sql) {
            self.reserved = true;
        }
        // LAST_INSERT_ID() means this session's value, not the shard's: a literal before
        // planning (so it is a bind value, and a vindex predicate on it still routes).
        let sql = match crate::sql::substitute_last_insert_id(&sql, self.last_insert_id) {
            Some(s) => s,
            None => sql,
        };
        let planned = match plan_sql(&sql, &self.gw, &self.target) {
            Ok(p) => p,
            Err(e) => return self.fail(&e),
        };
        let plan = planned.plan.clone();
        let touched = match plan.as_ref() {
            Plan::Route(r) => Some(r.keyspace.as_str()),
            Plan::Insert(i) => Some(i.keyspace.as_str()),
            Plan::Use(t) => t.keyspace.as_deref(),
            _ => None,
        };
        if let Some(Err(e)) = touched.map(|ks| self.check_keyspace(ks)) {
            return self.fail(&e);
        }
        if self.tablet_type() == TabletType::Replica {
            // Replicas take no writes (Vitess refuses DML on replica targets too).
            let write = match plan.as_ref() {
                Plan::Insert(_) => true,
                Plan::Route(r) => r.is_write || r.opcode == crate::plan::Opcode::AllShards,
                _ => false,
            };
            if write {
                return self.fail(&SqlError::new(
                    crate::error::codes::ER_OPTION_PREVENTS_STATEMENT,
                    "HY000",
                    "cannot write through a @replica target: replicas are read-only (USE the keyspace without @replica, or @primary)",
                ));
            }
        }
        if !matches!(plan.as_ref(), Plan::Route(_)) {
            let ks = match plan.as_ref() {
                Plan::Insert(i) => i.keyspace.clone(),
                _ => self
                    .target
                    .keyspace
                    .clone()
                    .unwrap_or_else(|| self.gw.topology.default_keyspace.clone()),
            };
            self.note_plan(plan.kind(), &ks, Vec::new());
        }
        match plan.as_ref() {
            Plan::Route(route) => {
                let b = Bindings {
                    original: &sql,
                    literals: &planned.literals,
                    join_values: &[],
                };
                let Some(map) = self.gw.shard_maps.get(&route.keyspace) else {
                    return self.fail(&SqlError::new(
                        1049,
                        "42000",
                        format!("Unknown keyspace '{}'", route.keyspace),
                    ));
                };
                let queries = match route.resolve(&b, map) {
                    Ok(q) => q,
                    Err(e) => return self.fail(&e),
                };
                let merger = if queries.len() > 1 || !route.merge.is_passthrough() {
                    match route.merge_spec(&b) {
                        Ok(spec) => Some(Merger::new(spec, queries.len())),
                        Err(e) => return self.fail(&e),
                    }
                } else {
                    None
                };
                let ks = route.keyspace.clone();
                let labels = self.logged_labels(&ks, queries.iter().map(|q| q.shard));
                self.note_plan(plan.kind(), &ks, labels);
                let queries: Vec<(usize, String)> =
                    queries.into_iter().map(|q| (q.shard, q.sql)).collect();
                // DML only: DDL commits implicitly on each shard anyway.
                let dml = route.is_write && route.opcode != crate::plan::Opcode::AllShards;
                if dml {
                    self.begin_implicit_txn(queries.len());
                }
                // A read outside any transaction may be retried once (see `retry_read`).
                let retry = (!route.is_write
                    && route.opcode != crate::plan::Opcode::AllShards
                    && !self.in_txn
                    && self.autocommit)
                    .then(|| queries.clone());
                self.start_route_to(&ks, queries, merger, None, dml);
                self.arm_retry(&ks, retry);
            }
            Plan::Insert(ins) => self.start_insert(planned.clone(), sql, ins),
            Plan::Join(j) => self.start_join(planned.clone(), sql, j),
            Plan::Local(l) => self.answer_local(l),
            Plan::Use(t) => {
                self.target = t.clone();
                self.conn.send_ok(&OkInfo::default());
            }
            Plan::Transaction(op) => self.transaction(op.clone()),
            Plan::SessionSet { sql: set_sql } => self.session_set(set_sql.clone(), &sql),
        }
    }

    /// Sends `queries` (shard index, SQL) of keyspace `ks` and relays or merges the answers.
    /// `dml`: the queries change rows (a multi-shard one in a transaction runs after
    /// [`STMT_SAVEPOINT`]).
    fn start_route_to(
        &mut self,
        ks: &str,
        queries: Vec<(usize, String)>,
        merger: Option<Merger>,
        first_id: Option<u64>,
        dml: bool,
    ) {
        let savepoint = dml
            && queries.len() > 1
            && self.txn_open()
            && !self.implicit_txn
            && !self.gw.passthrough;
        let gen = self.next_gen();
        let parts = match self.send_parts(ks, queries.into_iter(), gen, savepoint) {
            Ok(parts) => parts,
            Err(e) => return self.fail(&e),
        };
        // One merger slot per part, in order of `parts` (key-range order).
        let mut route = RouteExec::new(parts, merger);
        route.first_id = first_id;
        route.savepoint = savepoint;
        self.begin_route(route, gen);
    }

    /// Makes the route just started retryable (its parts, in order, are `queries`).
    fn arm_retry(&mut self, ks: &str, queries: Option<Vec<(usize, String)>>) {
        let Some(queries) = queries else {
            return;
        };
        let Exec::Route(r) = &self.exec else {
            return;
        };
        if r.parts.len() != queries.len() {
            return;
        }
        let offset = match self.tablet_type() {
            TabletType::Primary => 0,
            TabletType::Replica => REPLICA_BASE,
        };
        let tablets = r
            .parts
            .iter()
            .map(|p| self.backends.get(&p.backend).map(|s| s.tablet.clone()))
            .collect();
        let n = queries.len();
        let (shards, sqls) = queries.into_iter().map(|(sh, q)| (sh + offset, q)).unzip();
        if let Exec::Route(r) = &mut self.exec {
            r.retry = Some(Box::new(RouteRetry {
                keyspace: ks.to_string(),
                shards,
                sqls,
                tablets,
                started: vec![false; n],
                used: false,
            }));
        }
    }

    /// A read's connection to backend `id` failed with `e`: runs that part again on a fresh
    /// connection (another healthy replica under `@replica`) when nothing of it reached the
    /// client, the part produced nothing yet, the failure is a lost or refused connection,
    /// and no retry was used. Never for writes or inside a transaction (not armed then).
    /// Returns whether it retried.
    fn retry_read(&mut self, id: BackendId, e: &SqlError) -> bool {
        use crate::error::codes::{CR_SERVER_LOST, ER_CONNECT_TO_FOREIGN_DATA_SOURCE};
        if !matches!(e.code, CR_SERVER_LOST | ER_CONNECT_TO_FOREIGN_DATA_SOURCE)
            || self.in_txn
            || !self.autocommit
        {
            return false;
        }
        let Exec::Route(r) = &mut self.exec else {
            return false;
        };
        let Some(pi) = r.parts.iter().position(|p| p.backend == id && !p.done) else {
            return false;
        };
        let Some(rt) = r.retry.as_mut() else {
            return false;
        };
        if rt.used || rt.started[pi] || r.columns_sent || r.rows_sent > 0 {
            return false;
        }
        rt.used = true;
        let (ks, shard, sql) = (rt.keyspace.clone(), rt.shards[pi], rt.sqls[pi].clone());
        self.avoid_tablet = rt.tablets[pi].clone();
        // The failed connection is gone (or going): never reuse its slot.
        if self.by_shard.get(&(ks.clone(), shard)) == Some(&id) {
            self.drop_backend(id);
        }
        let Some(new_id) = self.backend_for(&ks, shard) else {
            self.avoid_tablet = None;
            return false;
        };
        self.avoid_tablet = None;
        tracing::info!(conn = self.connection_id(), backend = id, retry_backend = new_id, error = %e, "read failed before any result: retrying once on a fresh connection");
        self.gw
            .counters
            .read_retries
            .fetch_add(1, Ordering::Relaxed);
        let tablet = self.backends.get(&new_id).map(|s| s.tablet.clone());
        let gen = self.gen;
        if let Exec::Route(r) = &mut self.exec {
            r.parts[pi].backend = new_id;
            if let Some(rt) = r.retry.as_mut() {
                rt.tablets[pi] = tablet;
            }
        }
        self.send(new_id, sql, Owner::Exec(gen));
        true
    }

    /// In a SINGLE-mode transaction, a statement reaching shards `shards` of `ks` must stay on
    /// the one shard the transaction already uses.
    fn single_mode_violation(&self, ks: &str, shards: &[usize]) -> Option<SqlError> {
        if !self.in_txn || self.implicit_txn || self.transaction_mode != TransactionMode::Single {
            return None;
        }
        let mut all: Vec<(String, usize)> = self
            .backends
            .values()
            .filter(|s| s.in_txn)
            .map(|s| s.key.clone())
            .collect();
        all.extend(shards.iter().map(|sh| (ks.to_string(), *sh)));
        all.sort();
        all.dedup();
        if all.len() <= 1 {
            return None;
        }
        let names: Vec<String> = all.iter().map(|k| self.shard_label(k)).collect();
        Some(SqlError::new(
            1105,
            "HY000",
            format!(
                "multi-shard transaction not allowed in SINGLE transaction_mode: [{}]",
                names.join(", ")
            ),
        ))
    }

    fn start_insert(&mut self, planned: Planned, sql: String, ins: &InsertPlan) {
        let b = Bindings {
            original: &sql,
            literals: &planned.literals,
            join_values: &[],
        };
        let need = ins.ids_needed(&b) as u64;
        let mut ids = Vec::new();
        if let Some(seq) = &ins.sequence {
            if need > 0 {
                let key = (seq.keyspace.clone(), seq.table.clone());
                let gw = self.gw.clone();
                let got = gw.sequences.lock().map(|mut seqs| {
                    let cache = seqs
                        .entry(key.clone())
                        .or_insert_with(|| crate::vschema::SequenceCache::new(&key.0, &key.1));
                    cache.next_n(need)
                });
                match got {
                    Ok(Ok(range)) => ids.extend(range),
                    Ok(Err(block)) => return self.reserve_sequence(planned, sql, block),
                    Err(_) => return self.fail(&SqlError::internal("sequence state poisoned")),
                }
            }
        }
        let Some(map) = self.gw.shard_maps.get(&ins.keyspace) else {
            return self.fail(&SqlError::new(
                1049,
                "42000",
                format!("Unknown keyspace '{}'", ins.keyspace),
            ));
        };
        let queries = match ins.resolve(&b, map, &ids) {
            Ok(q) => q,
            Err(e) => return self.fail(&e),
        };
        let merger = (queries.len() > 1).then(|| Merger::new(Default::default(), queries.len()));
        let ks = ins.keyspace.clone();
        let labels = self.logged_labels(&ks, queries.iter().map(|q| q.shard));
        self.note_plan("Insert", &ks, labels);
        self.begin_implicit_txn(queries.len());
        self.start_route_to(
            &ks,
            queries.into_iter().map(|q| (q.shard, q.sql)).collect(),
            merger,
            ids.first().copied(),
            true,
        );
        if let Exec::Route(r) = &mut self.exec {
            r.sharded_insert = true;
        }
    }

    /// Reserves a block of sequence values on the sequence's keyspace, on a connection of its
    /// own (never inside the client's transaction), then retries the insert.
    fn reserve_sequence(
        &mut self,
        planned: Planned,
        sql: String,
        block: crate::vschema::NeedBlock,
    ) {
        let ks = block.keyspace.clone();
        let Some(id) = self.backend_for(&ks, SEQUENCE_CONN) else {
            return self.fail(&SqlError::new(
                1105,
                "HY000",
                format!("sequence keyspace {ks} has no shard"),
            ));
        };
        let gen = self.next_gen();
        self.send(
            id,
            format!("begin; {}", block.select_sql()),
            Owner::Exec(gen),
        );
        self.exec = Exec::Sequence(SeqExec {
            gen,
            backend: id,
            planned,
            sql,
            stage: SeqStage::Reserve,
            block: None,
        });
        let _ = block;
    }

    fn answer_local(&mut self, l: &Local) {
        let col = |name: &str, t: ColumnType| ColumnDef::new(name, t);
        match l {
            Local::Row { columns } => {
                let defs: Vec<ColumnDef> = columns
                    .iter()
                    .map(|(n, e)| {
                        col(
                            n,
                            if matches!(e, LocalExpr::LastInsertId | LocalExpr::ConnectionId) {
                                ColumnType::LongLong
                            } else {
                                ColumnType::VarString
                            },
                        )
                    })
                    .collect();
                let row: Vec<Value> = columns
                    .iter()
                    .map(|(_, e)| match e {
                        LocalExpr::Database => self
                            .target
                            .display()
                            .or_else(|| Some(self.gw.topology.default_keyspace.clone()))
                            .map_or(Value::Null, |d| Value::text(&d)),
                        LocalExpr::LastInsertId => Value::UInt(self.last_insert_id),
                        LocalExpr::ConnectionId => Value::UInt(self.connection_id() as u64),
                        LocalExpr::Version => Value::text(&self.gw.server.server_version),
                        LocalExpr::VersionComment => {
                            Value::text("shardgate: a sharding MySQL gateway")
                        }
                        LocalExpr::Literal(v) => v.clone(),
                    })
                    .collect();
                self.conn.send_columns(&defs);
                self.conn.send_row(&row);
                self.conn.send_finish(0);
            }
            Local::ShowKeyspaces => {
                let names: Vec<String> = self
                    .gw
                    .topology
                    .keyspaces
                    .keys()
                    .filter(|k| self.conn.may_use_keyspace(k))
                    .cloned()
                    .collect();
                self.send_rows(&["Database"], names.into_iter().map(|n| vec![n]).collect());
            }
            Local::ShowShards => {
                let rows = self
                    .gw
                    .topology
                    .keyspaces
                    .values()
                    .flat_map(|k| {
                        k.shards
                            .iter()
                            .map(move |s| vec![format!("{}/{}", k.name, s.name)])
                    })
                    .collect();
                self.send_rows(&["Shards"], rows);
            }
            Local::SslStatus(pattern) => {
                let (version, cipher) = match &self.tls {
                    Some(t) => (t.version.clone(), t.cipher.clone()),
                    None => (String::new(), String::new()),
                };
                let rows = [("Ssl_cipher", cipher), ("Ssl_version", version)]
                    .into_iter()
                    .filter(|(name, _)| crate::sql::like::like_ascii_ci(name, pattern))
                    .map(|(name, value)| vec![name.to_string(), value])
                    .collect();
                self.send_rows(&["Variable_name", "Value"], rows);
            }
            Local::ShowTablets => {
                let rows = self
                    .gw
                    .topology
                    .keyspaces
                    .values()
                    .flat_map(|k| {
                        k.shards.iter().map(move |s| {
                            let host = match &s.address {
                                ShardAddress::Mysql { host, port, .. } => format!("{host}:{port}"),
                                ShardAddress::Embedded { name, .. } => format!("embedded:{name}"),
                            };
                            vec![
                                "zone1".into(),
                                k.name.clone(),
                                s.name.clone(),
                                "PRIMARY".into(),
                                "SERVING".into(),
                                host,
                            ]
                        })
                    })
                    .collect();
                self.send_rows(
                    &[
                        "Cell",
                        "Keyspace",
                        "Shard",
                        "TabletType",
                        "State",
                        "Hostname",
                    ],
                    rows,
                );
            }
            Local::Explain(text) => {
                let rows = text.lines().map(|l| vec![l.to_string()]).collect();
                self.send_rows(&["plan"], rows);
            }
            Local::Ok => self.conn.send_ok(&OkInfo::default()),
        }
    }

    fn send_rows(&mut self, names: &[&str], rows: Vec<Vec<String>>) {
        let defs: Vec<ColumnDef> = names
            .iter()
            .map(|n| ColumnDef::new(*n, ColumnType::VarString))
            .collect();
        self.conn.send_columns(&defs);
        for r in rows {
            let vals: Vec<Value> = r.iter().map(|s| Value::text(s)).collect();
            if !self.conn.send_row(&vals) {
                return;
            }
        }
        self.conn.send_finish(0);
    }

    fn transaction(&mut self, op: TxnOp) {
        if let TxnOp::Savepoint(n) | TxnOp::RollbackTo(n) | TxnOp::Release(n) = &op {
            if n.eq_ignore_ascii_case(STMT_SAVEPOINT) {
                return self.fail(&SqlError::new(
                    1105,
                    "HY000",
                    format!("savepoint name {n} is reserved by the gateway"),
                ));
            }
        }
        if matches!(op, TxnOp::Begin | TxnOp::Commit | TxnOp::Rollback) {
            self.savepoints.clear();
            self.implicit_open = false;
        }
        match op {
            TxnOp::Begin => {
                // An open transaction is committed first, as MySQL does.
                if self.in_txn {
                    self.end_participants("COMMIT");
                }
                self.lost_in_txn.clear();
                self.in_txn = true;
                self.sync_status();
                self.conn.send_ok(&OkInfo::default());
            }
            TxnOp::Commit if !self.lost_in_txn.is_empty() => {
                let lost = std::mem::take(&mut self.lost_in_txn).join(", ");
                self.end_participants("ROLLBACK");
                self.in_txn = false;
                self.sync_status();
                self.fail(&SqlError::new(
                    crate::error::codes::CR_SERVER_LOST,
                    "HY000",
                    format!("transaction rolled back: the connection to shard(s) [{lost}] was lost during the transaction"),
                ));
            }
            TxnOp::Commit => {
                let pending: VecDeque<BackendId> = self.participants().into();
                self.in_txn = false;
                self.sync_status();
                let gen = self.next_gen();
                self.exec = Exec::Commit(CommitExec {
                    gen,
                    pending,
                    committed: Vec::new(),
                    current: None,
                    ok: OkInfo::default(),
                });
                self.advance_commit();
            }
            TxnOp::Rollback => {
                self.lost_in_txn.clear();
                self.end_participants("ROLLBACK");
                self.in_txn = false;
                self.sync_status();
                self.conn.send_ok(&OkInfo::default());
            }
            TxnOp::Savepoint(name) => self.savepoint(name),
            TxnOp::RollbackTo(ref name) | TxnOp::Release(ref name) => {
                let Some(i) = self.savepoint_index(name) else {
                    return self.fail(&SqlError::new(
                        crate::error::codes::ER_SP_DOES_NOT_EXIST,
                        "42000",
                        format!("SAVEPOINT {name} does not exist"),
                    ));
                };
                // ROLLBACK TO keeps the savepoint and forgets later ones; RELEASE forgets it
                // too (MySQL semantics).
                let keep = if matches!(op, TxnOp::RollbackTo(_)) {
                    i + 1
                } else {
                    i
                };
                self.savepoints.truncate(keep);
                let ids = self.participants();
                self.fan_out(ids, op.shard_sql());
            }
        }
    }

    /// Whether statements run inside a transaction: an explicit one, or autocommit off.
    fn txn_open(&self) -> bool {
        self.in_txn || !self.autocommit
    }

    fn savepoint_index(&self, name: &str) -> Option<usize> {
        if !self.txn_open() {
            return None;
        }
        self.savepoints
            .iter()
            .position(|n| n.eq_ignore_ascii_case(name))
    }

    /// `SAVEPOINT name`: outside a transaction (autocommit) it is an OK that changes nothing,
    /// as in MySQL. Inside one it goes to every participating shard and is remembered so a
    /// shard joining later gets it replayed after its BEGIN; setting a name again moves it to
    /// the end, like MySQL.
    fn savepoint(&mut self, name: String) {
        if !self.txn_open() {
            return self.conn.send_ok(&OkInfo::default());
        }
        /// A bound on remembered savepoints (each is replayed on every joining shard).
        const MAX_SAVEPOINTS: usize = 256;
        self.savepoints.retain(|n| !n.eq_ignore_ascii_case(&name));
        if self.savepoints.len() >= MAX_SAVEPOINTS {
            return self.fail(&SqlError::new(
                1105,
                "HY000",
                format!("too many savepoints in one transaction (at most {MAX_SAVEPOINTS})"),
            ));
        }
        let sql = TxnOp::Savepoint(name.clone()).shard_sql();
        self.savepoints.push(name);
        let ids = self.participants();
        self.fan_out(ids, sql);
    }

    /// Sends `sql` to `ids` as the statement in progress: the client gets one OK, or the
    /// first shard error.
    fn fan_out(&mut self, ids: Vec<BackendId>, sql: String) {
        if ids.is_empty() {
            return self.conn.send_ok(&OkInfo::default());
        }
        let gen = self.next_gen();
        let mut parts = Parts::with_capacity(ids.len());
        for id in ids {
            self.send(id, sql.clone(), Owner::Exec(gen));
            parts.push(Part {
                backend: id,
                done: false,
            });
        }
        let merger = (parts.len() > 1).then(|| Merger::new(Default::default(), parts.len()));
        self.exec = Exec::Route(RouteExec::new(parts, merger));
    }

    /// Sends `sql` (COMMIT or ROLLBACK) to every participant as session bookkeeping, without
    /// waiting for the answers (later statements queue behind it on each backend).
    fn end_participants(&mut self, sql: &str) {
        for id in self.participants() {
            self.send(id, sql.to_string(), Owner::Internal);
            if let Some(s) = self.backends.get_mut(&id) {
                s.in_txn = false;
            }
        }
    }

    /// Backends taking part in the transaction, in key-range order. With autocommit off every
    /// backend may hold uncommitted work.
    fn participants(&self) -> Vec<BackendId> {
        let mut v: Vec<(&(String, usize), BackendId)> = self
            .backends
            .iter()
            .filter(|(_, s)| s.key.1 < REPLICA_BASE && (s.in_txn || !self.autocommit))
            .map(|(id, s)| (&s.key, *id))
            .collect();
        v.sort();
        v.into_iter().map(|(_, id)| id).collect()
    }

    fn advance_commit(&mut self) {
        let next = match &mut self.exec {
            Exec::Commit(c) => c.pending.pop_front().map(|id| (id, c.gen)),
            _ => return,
        };
        match next {
            Some((id, gen)) => {
                let name = self
                    .backends
                    .get(&id)
                    .map(|s| self.shard_label(&s.key))
                    .unwrap_or_default();
                if let Exec::Commit(c) = &mut self.exec {
                    c.current = Some((id, name));
                }
                if let Some(s) = self.backends.get_mut(&id) {
                    s.in_txn = false;
                }
                self.send(id, "COMMIT".into(), Owner::Exec(gen));
            }
            None => {
                let Exec::Commit(c) = std::mem::replace(&mut self.exec, Exec::Idle) else {
                    return;
                };
                self.conn.send_ok(&c.ok);
            }
        }
    }

    /// Starts an implicit transaction for an autocommit write over `shards` shards (more than
    /// one); see [`Session::implicit_txn`]. The client's status flags don't change.
    fn begin_implicit_txn(&mut self, shards: usize) {
        if shards > 1 && !self.in_txn && self.autocommit && !self.gw.passthrough {
            self.in_txn = true;
            self.implicit_txn = true;
            self.lost_in_txn.clear();
        }
    }

    /// The implicit transaction's statement failed: roll back every shard that took part.
    fn abort_implicit_txn(&mut self) {
        if std::mem::take(&mut self.implicit_txn) {
            self.end_participants("ROLLBACK");
            self.in_txn = false;
            self.lost_in_txn.clear();
            self.sync_status();
        }
    }

    fn shard_label(&self, key: &(String, usize)) -> String {
        let replica = if (REPLICA_BASE..KILLER_BASE).contains(&key.1) {
            "@replica"
        } else {
            ""
        };
        self.gw
            .topology
            .keyspaces
            .get(&key.0)
            .and_then(|k| k.shards.get(shard_index(key.1)))
            .map_or_else(
                || key.0.clone(),
                |s| format!("{}/{}{replica}", key.0, s.name),
            )
    }

    /// `SET …`: remembered and applied to every backend (now and when opened later). The
    /// client gets the answer of the first backend, so a bad SET is reported.
    fn session_set(&mut self, set_sql: String, original: &str) {
        if let Some(r) = self.gateway_variable(original) {
            return match r {
                Ok(()) => self.conn.send_ok(&OkInfo::default()),
                Err(e) => self.fail(&e),
            };
        }
        let autocommit_before = self.autocommit;
        let only_autocommit = self.track_session_variables(original);
        if self.autocommit && !self.in_txn {
            // Back to autocommit: the implicit transaction ended with its savepoints.
            self.savepoints.clear();
            self.implicit_open = false;
        }
        if only_autocommit && self.sets.is_empty() && self.autocommit && autocommit_before {
            // `SET autocommit = 1` on an autocommit session (many drivers send it on
            // connect) changes nothing on any shard: answered here, so it neither costs a
            // shard round trip nor marks the session's connections as carrying settings.
            self.sync_status();
            return self.conn.send_ok(&OkInfo::default());
        }
        const MAX_SETS: usize = 64;
        if self.sets.len() < MAX_SETS {
            self.sets.push(set_sql.clone());
            self.sets_tag = Some(Arc::from(self.sets.join(";\n")));
        } else {
            // Not remembered, so not replayed nor in the tag: the connections that got it
            // stay with this session.
            self.reserved = true;
        }
        let mut open: Vec<(String, usize)> = self
            .backends
            .values()
            .filter(|s| s.key.1 < KILLER_BASE)
            .map(|s| s.key.clone())
            .collect();
        open.sort();
        if open.is_empty() {
            let ks = self
                .target
                .keyspace
                .clone()
                .unwrap_or_else(|| self.gw.topology.default_keyspace.clone());
            open.push((ks, 0));
        }
        let gen = self.next_gen();
        let mut parts = Parts::new();
        for (ks, shard) in open {
            // A backend opened here gets every remembered SET, this one included.
            let fresh = !self.by_shard.contains_key(&(ks.clone(), shard));
            let Some(id) = self.backend_for(&ks, shard) else {
                continue;
            };
            if fresh {
                // The replay already queued it; the client's answer is a plain OK below.
                continue;
            }
            self.send(id, set_sql.clone(), Owner::Exec(gen));
            parts.push(Part {
                backend: id,
                done: false,
            });
        }
        self.sync_status();
        if parts.is_empty() {
            self.conn.send_ok(&OkInfo::default());
            return;
        }
        let merger = (parts.len() > 1).then(|| Merger::new(Default::default(), parts.len()));
        self.exec = Exec::Route(RouteExec::new(parts, merger));
    }

    /// Variables the gateway must know about even though shards apply them too:
    /// `autocommit` (transaction bookkeeping, status flags) and `max_execution_time` (the
    /// gateway's own statement timeout). Returns whether the statement sets `autocommit`
    /// and nothing else.
    fn track_session_variables(&mut self, sql: &str) -> bool {
        use sqlparser::ast::{Expr, Set, Statement, Value as V};
        let Ok(Statement::Set(set)) = crate::sql::parse_one(sql) else {
            return false;
        };
        let pairs: Vec<(String, Expr)> = match set {
            Set::SingleAssignment {
                variable, values, ..
            } => values
                .into_iter()
                .take(1)
                .map(|v| (variable.to_string(), v))
                .collect(),
            Set::MultipleAssignments { assignments } => assignments
                .into_iter()
                .map(|a| (a.name.to_string(), a.value))
                .collect(),
            _ => Vec::new(),
        };
        let mut only_autocommit = !pairs.is_empty();
        for (name, value) in pairs {
            let name = name.to_ascii_lowercase();
            let name = name
                .trim_start_matches("@@session.")
                .trim_start_matches("@@");
            let text = match &value {
                Expr::Value(v) => match &v.value {
                    V::Number(n, _) => n.clone(),
                    V::SingleQuotedString(t) | V::DoubleQuotedString(t) => t.to_ascii_lowercase(),
                    V::Boolean(b) => (if *b { "1" } else { "0" }).to_string(),
                    _ => String::new(),
                },
                Expr::Identifier(i) => i.value.to_ascii_lowercase(),
                _ => String::new(),
            };
            match name {
                "autocommit" => match text.as_str() {
                    "0" | "off" | "false" => self.autocommit = false,
                    "1" | "on" | "true" => self.autocommit = true,
                    _ => only_autocommit = false,
                },
                "max_execution_time" => {
                    only_autocommit = false;
                    self.max_execution_time_ms = text.parse::<u64>().ok().filter(|v| *v > 0)
                }
                _ => only_autocommit = false,
            }
        }
        only_autocommit
    }

    /// `SET workload = …` / `SET transaction_mode = …`: the gateway's own variables, never
    /// sent to shards. `None` when the statement sets something else.
    fn gateway_variable(&mut self, sql: &str) -> Option<Result<(), SqlError>> {
        use sqlparser::ast::{Expr, Set, Statement, Value as V};
        let Ok(Statement::Set(Set::SingleAssignment {
            variable, values, ..
        })) = crate::sql::parse_one(sql)
        else {
            return None;
        };
        let name = variable.to_string().to_ascii_lowercase();
        let name = name
            .trim_start_matches("@@session.")
            .trim_start_matches("@@");
        if name == "max_execution_time" {
            // Kept at the gateway (MariaDB shards do not know this variable): the gateway
            // interrupts statements itself with ERR 3024.
            let ms = match values.first() {
                Some(Expr::Value(v)) => match &v.value {
                    V::Number(n, _) => n.parse::<u64>().ok(),
                    _ => None,
                },
                _ => None,
            };
            return Some(match ms {
                Some(v) => {
                    self.max_execution_time_ms = (v > 0).then_some(v);
                    Ok(())
                }
                None => Err(SqlError::new(
                    1231,
                    "42000",
                    "Variable 'max_execution_time' needs a number of milliseconds",
                )),
            });
        }
        if name != "workload" && name != "transaction_mode" {
            return None;
        }
        let value = match values.first() {
            Some(Expr::Value(v)) => match &v.value {
                V::SingleQuotedString(s) | V::DoubleQuotedString(s) => s.to_ascii_lowercase(),
                _ => String::new(),
            },
            Some(Expr::Identifier(i)) => i.value.to_ascii_lowercase(),
            _ => String::new(),
        };
        let bad = || {
            SqlError::new(
                1231,
                "42000",
                format!("Variable '{name}' can't be set to the value of '{value}'"),
            )
        };
        Some(match (name, value.as_str()) {
            ("workload", "oltp") => {
                self.workload = Workload::Oltp;
                Ok(())
            }
            ("workload", "olap") => {
                self.workload = Workload::Olap;
                Ok(())
            }
            ("transaction_mode", "multi") => {
                self.transaction_mode = TransactionMode::Multi;
                Ok(())
            }
            ("transaction_mode", "single") => {
                self.transaction_mode = TransactionMode::Single;
                Ok(())
            }
            _ => Err(bad()),
        })
    }

    fn join_transaction(&mut self, id: BackendId) {
        // Pass-through mode forwards the client's own BEGIN; its in-transaction flag mirrors
        // the server's and must never make the gateway inject one (that would commit an
        // implicit autocommit=0 transaction).
        if !self.in_txn || self.gw.passthrough {
            return;
        }
        let Some(s) = self.backends.get_mut(&id) else {
            return;
        };
        if s.key.1 >= REPLICA_BASE {
            // Replica reads inside a transaction run outside it (replicas take no writes).
            return;
        }
        if !s.in_txn {
            s.in_txn = true;
            self.send(id, "BEGIN".into(), Owner::Internal);
            // The transaction's savepoints, in order, so ROLLBACK TO reaches this shard too.
            let replay: Vec<String> = self
                .savepoints
                .iter()
                .map(|n| TxnOp::Savepoint(n.clone()).shard_sql())
                .collect();
            for sql in replay {
                self.send(id, sql, Owner::Internal);
            }
        }
    }

    // ---- backends ----

    /// The backend for shard `shard` of keyspace `ks`, opening it if needed.
    /// `shard` is the slot key's shard: an index, `REPLICA_BASE + index` for a replica
    /// connection, or `SEQUENCE_CONN`. Opening picks the tablet ([`Gateway::pick_tablet`]);
    /// when there is none, `tablet_error` says why.
    fn backend_for(&mut self, ks: &str, shard: usize) -> Option<BackendId> {
        let key = (ks.to_string(), shard);
        if let Some(id) = self.by_shard.get(&key).copied() {
            if let Some(s) = self.backends.get(&id) {
                // An idle replica connection whose tablet has since failed its health check
                // is dropped; a healthy replica serves instead.
                let stale = (REPLICA_BASE..KILLER_BASE).contains(&shard)
                    && s.owner == Owner::None
                    && s.queue.is_empty()
                    && s.conn.is_idle()
                    && self
                        .gw
                        .tablet_health(&s.tablet)
                        .is_some_and(|h| !h.is_healthy());
                if !stale {
                    return Some(id);
                }
                self.drop_backend(id);
            }
        }
        let (idx, ty) = if shard == SEQUENCE_CONN {
            (0, TabletType::Primary)
        } else if (REPLICA_BASE..KILLER_BASE).contains(&shard) {
            (shard - REPLICA_BASE, TabletType::Replica)
        } else {
            (shard, TabletType::Primary)
        };
        let avoid = self.avoid_tablet.take();
        let start = self.connection_id() as usize;
        match self.gw.pick_tablet(ks, idx, ty, start, avoid.as_ref()) {
            Ok(address) => Some(self.open_side_backend(address, key)),
            Err(e) => {
                self.tablet_error = Some(e);
                None
            }
        }
    }

    /// The tablet type statements of the session's target use.
    fn tablet_type(&self) -> TabletType {
        match self.target.tablet_type.as_deref() {
            Some("replica" | "rdonly") if !self.gw.passthrough => TabletType::Replica,
            _ => TabletType::Primary,
        }
    }

    /// Opens a connection to shard `idx` of `ks`, registered under `key`.
    fn open_side_backend(&mut self, address: ShardAddress, key: (String, usize)) -> BackendId {
        let shard = key.1;
        let id = self.next_backend;
        self.next_backend += 1;
        let (user, password, tls) = match &address {
            ShardAddress::Mysql {
                user,
                password,
                host,
                tls,
                ..
            } => (user.clone(), password.clone(), tls.then(|| host.clone())),
            ShardAddress::Embedded { .. } => ("root".to_string(), String::new(), None),
        };
        let database = if self.gw.passthrough {
            self.database.clone()
        } else {
            None
        }
        .or_else(|| Some(address.database().to_string()))
        .filter(|d| !d.is_empty());
        let found_rows = self.found_rows();
        let conn = BackendConn::new(BackendConfig {
            user,
            password,
            database,
            max_packet: 0,
            found_rows,
            tls,
        });
        let mut slot = BackendSlot {
            conn,
            key: key.clone(),
            queue: VecDeque::new(),
            owner: Owner::None,
            in_txn: false,
            close_when_idle: false,
            resetting: false,
            tablet: address.clone(),
            connect_deadline_us: (self.gw.limits.shard_connect_timeout_ms > 0).then(|| {
                self.now_us + self.gw.limits.shard_connect_timeout_ms.saturating_mul(1000)
            }),
        };
        let pooled = slot.pooled();
        if shard < KILLER_BASE {
            for set in &self.sets {
                slot.queue
                    .push_back((ShardCommand::Query(set.clone()), Owner::Internal));
            }
            // Autocommit off: the new connection's implicit transaction gets the savepoints
            // (an explicit transaction replays them after BEGIN in `join_transaction`).
            if !self.in_txn && !self.autocommit {
                for n in &self.savepoints {
                    let sql = TxnOp::Savepoint(n.clone()).shard_sql();
                    slot.queue
                        .push_back((ShardCommand::Query(sql), Owner::Internal));
                }
            }
        }
        self.backends.insert(id, slot);
        self.by_shard.insert(key, id);
        self.events.push_back(SessionEvent::OpenBackend {
            id,
            address,
            pooled,
            settings: self.sets_tag.clone(),
        });
        id
    }

    /// Sends now if the connection is free, else queues behind what is in flight.
    fn send(&mut self, id: BackendId, sql: String, owner: Owner) {
        self.send_command(id, ShardCommand::Query(sql), owner);
    }

    fn send_command(&mut self, id: BackendId, cmd: ShardCommand, owner: Owner) {
        if let Some(s) = self.backends.get_mut(&id) {
            s.queue.push_back((cmd, owner));
        }
        self.issue_queued(id);
    }

    /// Starts the next queued command if the connection is idle. Returns whether it did.
    fn issue_queued(&mut self, id: BackendId) -> bool {
        let Some(s) = self.backends.get_mut(&id) else {
            return false;
        };
        if !s.conn.is_idle() || s.owner != Owner::None {
            return false;
        }
        if s.queue.is_empty() && s.close_when_idle {
            self.drop_backend(id);
            return true;
        }
        let Some((cmd, owner)) = s.queue.pop_front() else {
            return false;
        };
        let sent = match cmd {
            ShardCommand::Query(sql) => s.conn.query(&sql),
            ShardCommand::Execute { sql, params } => s.conn.execute_sql(sql, params),
        };
        match sent {
            Ok(()) => {
                s.owner = owner;
                if let (Owner::Exec(g), Exec::Route(r)) = (owner, &self.exec) {
                    if g == self.gen && r.relay {
                        s.conn.relay_result(row_cap(self.workload, &self.gw));
                    }
                }
                true
            }
            Err(e) => {
                tracing::warn!(backend = id, error = %e, "cannot send to backend");
                false
            }
        }
    }

    fn on_backend_event(&mut self, id: BackendId, ev: BackendEvent) {
        let terminal = matches!(
            ev,
            BackendEvent::Done { more: false, .. }
                | BackendEvent::Ok { more: false, .. }
                | BackendEvent::Error(_)
                | BackendEvent::Prepared { .. }
                | BackendEvent::Closed(_)
        );
        let owner = match &ev {
            BackendEvent::Connected { .. } => {
                if let Some(s) = self.backends.get_mut(&id) {
                    s.connect_deadline_us = None;
                }
                if let Exec::Connecting { backend } = self.exec {
                    if backend == id {
                        self.exec = Exec::Idle;
                        self.conn.send_ok(&OkInfo::default());
                    }
                }
                return;
            }
            BackendEvent::Closed(e) => {
                let owner = self.backends.get(&id).map_or(Owner::None, |s| s.owner);
                tracing::warn!(conn = self.connection_id(), backend = id, error = %e, "backend connection lost");
                self.drop_backend(id);
                owner
            }
            _ => self.backends.get(&id).map_or(Owner::None, |s| s.owner),
        };
        if terminal {
            if let Some(s) = self.backends.get_mut(&id) {
                s.owner = Owner::None;
            }
        }
        if let (Owner::Savepoint(g), BackendEvent::Error(e)) = (owner, &ev) {
            tracing::warn!(conn = self.connection_id(), backend = id, error = %e, "statement savepoint failed on a backend");
            let label = self.backends.get(&id).map(|s| self.shard_label(&s.key));
            if let (Exec::Route(r), true) = (&mut self.exec, g == self.gen) {
                r.savepoint_failed.push(format!(
                    "{}: savepoint not set: {}",
                    label.unwrap_or_default(),
                    e.message
                ));
            }
            return;
        }
        match owner {
            Owner::Exec(g) if g == self.gen => return self.on_exec_event(id, ev),
            Owner::Internal => {
                let resetting = self.backends.get(&id).is_some_and(|s| s.resetting);
                match &ev {
                    BackendEvent::Error(e) if resetting => {
                        // Its settings could not be cleared: never lend it to another session.
                        tracing::warn!(conn = self.connection_id(), backend = id, error = %e, "backend reset failed; closing it");
                        let e = e.clone();
                        self.drop_backend(id);
                        return self.on_waiting_backend_lost(id, e);
                    }
                    BackendEvent::Ok { .. } if resetting => {
                        if let Some(s) = self.backends.get_mut(&id) {
                            s.resetting = false;
                            s.conn.set_settings(None);
                        }
                    }
                    BackendEvent::Error(e) => {
                        tracing::warn!(conn = self.connection_id(), backend = id, error = %e, "session statement failed on a backend");
                    }
                    _ => {}
                }
            }
            Owner::Tail => {
                if let BackendEvent::Error(e) | BackendEvent::Closed(e) = &ev {
                    tracing::warn!(conn = self.connection_id(), backend = id, error = %e, "error after the statement's final answer");
                    if matches!(self.exec, Exec::Idle) {
                        self.conn.send_error(e);
                    }
                }
            }
            _ => {}
        }
        if let BackendEvent::Closed(e) = ev {
            self.on_waiting_backend_lost(id, e);
        }
    }

    /// A connection closed while the statement in progress was still waiting on it: it
    /// connected lazily and had sent nothing yet, or its command was queued behind another
    /// one (a replayed SET, a BEGIN, the previous statement's tail). That statement ends
    /// with the error (or its read is retried once) instead of waiting for ever.
    fn on_waiting_backend_lost(&mut self, id: BackendId, e: SqlError) {
        if matches!(self.exec, Exec::Connecting { backend } if backend == id) {
            return self.fail(&e);
        }
        if matches!(self.exec, Exec::Undo(_)) {
            // Lost while still running the failed statement: its ROLLBACK TO is gone.
            return self.on_undo_event(id, BackendEvent::Closed(e));
        }
        if self.exec_backends().contains(&id) && !self.retry_read(id, &e) {
            self.fail_route(e);
        }
    }

    fn on_exec_event(&mut self, id: BackendId, ev: BackendEvent) {
        match &mut self.exec {
            Exec::Route(_) => self.on_route_event(id, ev),
            Exec::Commit(_) => self.on_commit_event(id, ev),
            Exec::Sequence(_) => self.on_sequence_event(ev),
            Exec::Join(_) => self.on_join_event(id, ev),
            Exec::Undo(_) => self.on_undo_event(id, ev),
            _ => {}
        }
    }

    fn on_route_event(&mut self, id: BackendId, ev: BackendEvent) {
        let Exec::Route(r) = &mut self.exec else {
            return;
        };
        let Some(pi) = r.parts.iter().position(|p| p.backend == id && !p.done) else {
            return;
        };
        if let Some(rt) = r.retry.as_mut() {
            if !matches!(ev, BackendEvent::Closed(_)) {
                rt.started[pi] = true;
            }
        }
        match ev {
            BackendEvent::Columns(cols) => match &mut r.merger {
                None => {
                    r.columns_sent = true;
                    self.conn.send_columns_shared(cols);
                }
                Some(m) => {
                    if let Some(out) = m.columns(pi, &cols) {
                        r.columns_sent = true;
                        self.conn.send_columns(&out);
                    }
                }
            },
            BackendEvent::Relayed {
                frames,
                columns,
                rows,
            } => {
                r.columns_sent |= columns > 0;
                r.rows_sent += rows;
                if !self.conn.send_relayed(&frames, columns, rows) {
                    self.exec = Exec::Idle;
                }
            }
            BackendEvent::Row(row) => match &mut r.merger {
                None => {
                    r.rows_sent += 1;
                    let (n, binary) = (r.rows_sent, r.binary_rows);
                    let sent = !self.over_row_cap(n)
                        && if binary {
                            self.conn.send_row_binary(&row)
                        } else {
                            self.conn.send_row_text(&row)
                        };
                    if !sent {
                        self.exec = Exec::Idle;
                    }
                }
                Some(m) => {
                    m.row(pi, row);
                    self.flush_merged();
                }
            },
            BackendEvent::Done {
                warnings,
                more,
                status: st,
            } => {
                r.parts[pi].done = true;
                self.track_backend_status(st);
                let Exec::Route(r) = &mut self.exec else {
                    return;
                };
                match &mut r.merger {
                    None => {
                        self.conn.send_finish(warnings);
                        self.exec = Exec::Idle;
                        if more {
                            tracing::debug!(
                                "backend returned more results; only the first is relayed"
                            );
                            self.mark_tail(id);
                        }
                    }
                    Some(m) => {
                        m.done(pi);
                        self.flush_merged();
                    }
                }
            }
            BackendEvent::Ok { ok, more } => {
                r.parts[pi].done = true;
                if more {
                    if let Some(s) = self.backends.get_mut(&id) {
                        s.owner = Owner::Tail;
                    }
                }
                r.ok.affected_rows += ok.affected_rows;
                if r.ok.last_insert_id == 0 {
                    r.ok.last_insert_id = ok.last_insert_id;
                }
                r.ok.warnings = r.ok.warnings.saturating_add(ok.warnings);
                if r.parts.len() == 1 {
                    r.ok.info = ok.info.clone();
                } else {
                    r.infos.push((ok.info.clone(), ok.affected_rows));
                }
                let all_done = r.parts.iter().all(|p| p.done);
                self.track_backend_status(ok.status);
                if all_done {
                    let Exec::Route(r) = std::mem::replace(&mut self.exec, Exec::Idle) else {
                        return;
                    };
                    let mut out = r.ok;
                    if !r.infos.is_empty() {
                        out.info = ok_info::sum(&r.infos, r.sharded_insert);
                    }
                    if let Some(first) = r.first_id {
                        out.last_insert_id = first;
                        self.last_insert_id = first;
                    } else if !r.sharded_insert && out.last_insert_id != 0 {
                        self.last_insert_id = out.last_insert_id;
                    }
                    out.status = 0;
                    if std::mem::take(&mut self.implicit_txn) {
                        // Every part succeeded: commit the implicit transaction, then answer.
                        if !self.lost_in_txn.is_empty() {
                            let lost = std::mem::take(&mut self.lost_in_txn).join(", ");
                            self.end_participants("ROLLBACK");
                            self.in_txn = false;
                            self.sync_status();
                            return self.fail(&SqlError::new(
                                crate::error::codes::CR_SERVER_LOST,
                                "HY000",
                                format!("statement rolled back: the connection to shard(s) [{lost}] was lost"),
                            ));
                        }
                        let pending: VecDeque<BackendId> = self.participants().into();
                        self.in_txn = false;
                        self.sync_status();
                        let gen = self.next_gen();
                        self.exec = Exec::Commit(CommitExec {
                            gen,
                            pending,
                            committed: Vec::new(),
                            current: None,
                            ok: out,
                        });
                        return self.advance_commit();
                    }
                    self.sync_status();
                    self.conn.send_ok(&out);
                }
            }
            BackendEvent::Closed(e) => {
                if !self.retry_read(id, &e) {
                    self.fail_route(e);
                }
            }
            BackendEvent::Error(e) => self.fail_route(e),
            BackendEvent::Prepared { .. } | BackendEvent::Connected { .. } => {}
        }
    }

    /// The statement in progress failed with `e`: the client gets it, after the statement
    /// is undone on its shards when it ran after [`STMT_SAVEPOINT`].
    fn fail_route(&mut self, e: SqlError) {
        let (parts, failed) = match &mut self.exec {
            Exec::Route(r) if r.savepoint => {
                (r.parts.clone(), std::mem::take(&mut r.savepoint_failed))
            }
            _ => return self.fail(&e),
        };
        // Answers still coming for the statement are drained (their owner is gone); each
        // shard's ROLLBACK TO runs once its part is over.
        let gen = self.next_gen();
        let sql = TxnOp::RollbackTo(STMT_SAVEPOINT.into()).shard_sql();
        let mut pending = Vec::with_capacity(parts.len());
        for p in parts {
            // A shard whose connection was lost lost its whole transaction: COMMIT reports it
            // (`lost_in_txn`).
            if let Some(slot) = self.backends.get(&p.backend) {
                let label = self.shard_label(&slot.key);
                self.send(p.backend, sql.clone(), Owner::Exec(gen));
                pending.push((p.backend, label));
            }
        }
        // (where the savepoint could not be set, the undo has failed before it started)
        self.exec = Exec::Undo(UndoExec {
            pending,
            error: e,
            failed,
        });
        self.finish_undo();
    }

    /// An answer to an undo's `ROLLBACK TO` (or its connection closed).
    fn on_undo_event(&mut self, id: BackendId, ev: BackendEvent) {
        let Exec::Undo(u) = &mut self.exec else {
            return;
        };
        let Some(i) = u.pending.iter().position(|(b, _)| *b == id) else {
            return;
        };
        match ev {
            BackendEvent::Ok { .. } => {}
            BackendEvent::Error(e) | BackendEvent::Closed(e) => {
                u.failed.push(format!("{}: {}", u.pending[i].1, e.message));
            }
            // Nothing else answers a ROLLBACK TO; wait for its end.
            _ => return,
        }
        u.pending.remove(i);
        self.finish_undo();
    }

    /// Once every shard answered its `ROLLBACK TO`: the statement's error, with the
    /// transaction still open; or, when one failed, the whole transaction rolled back and an
    /// ERR saying so (never partial writes kept silently).
    fn finish_undo(&mut self) {
        let Exec::Undo(u) = &self.exec else {
            return;
        };
        if !u.pending.is_empty() {
            return;
        }
        let Exec::Undo(u) = std::mem::replace(&mut self.exec, Exec::Idle) else {
            return;
        };
        if u.failed.is_empty() {
            return self.fail(&u.error);
        }
        tracing::warn!(conn = self.connection_id(), failed = ?u.failed, "undoing a failed statement failed; rolling back the transaction");
        let e = &u.error;
        self.abort_txn(&SqlError::new(
            1105,
            "HY000",
            format!(
                "transaction rolled back: the statement failed ({} {}: {}) and undoing its partial writes failed on shard(s) [{}]",
                e.code,
                e.sqlstate(),
                e.message,
                u.failed.join("; ")
            ),
        ));
    }

    /// Rolls back the open transaction on every shard and answers `e`.
    fn abort_txn(&mut self, e: &SqlError) {
        self.end_participants("ROLLBACK");
        self.in_txn = false;
        self.savepoints.clear();
        self.lost_in_txn.clear();
        self.sync_status();
        self.fail(e);
    }

    // ---- cross-shard joins ----

    /// Starts a nested-loop join: the left side first (see `exec::join` for the order).
    fn start_join(&mut self, planned: Planned, sql: String, j: &JoinPlan) {
        let b = Bindings {
            original: &sql,
            literals: &planned.literals,
            join_values: &[],
        };
        let bound = (|| -> Result<_, SqlError> {
            let limit = match &j.limit {
                Some((c, o)) => Some((
                    crate::plan::limit_value(&b.resolve(c)?)?,
                    crate::plan::limit_value(&b.resolve(o)?)?,
                )),
                None => None,
            };
            let map = self.gw.shard_maps.get(&j.left.keyspace).ok_or_else(|| {
                SqlError::new(
                    1049,
                    "42000",
                    format!("Unknown keyspace '{}'", j.left.keyspace),
                )
            })?;
            let post = match &j.post {
                Some(p) => Some(Merger::new(p.merge_spec(&b)?, 1)),
                None => None,
            };
            Ok((limit, j.left.resolve(&b, map)?, post))
        })();
        let (limit, queries, post) = match bound {
            Ok(x) => x,
            Err(e) => return self.fail(&e),
        };
        let shape = JoinShape {
            kind: j.kind,
            left_items: j.left_items.clone(),
            right_items: j.right_items.clone(),
            vars: j.vars.clone(),
            columns: j.columns.clone(),
            // With a merge after the join, it gets every column (it drops the hidden ones).
            visible: if post.is_some() {
                j.columns.len()
            } else {
                j.visible
            },
            order_by: j.order_by.clone(),
            filters: j.filters.clone(),
            limit: limit.map(|l| l.0),
            offset: limit.map_or(0, |l| l.1),
            max_buffered_rows: self.gw.limits.oltp_max_rows,
        };
        let ks = j.left.keyspace.clone();
        let labels = self.logged_labels(&ks, queries.iter().map(|q| q.shard));
        self.note_plan("Join", &ks, labels);
        let gen = self.next_gen();
        let parts = match self.send_parts(
            &ks,
            queries.into_iter().map(|q| (q.shard, q.sql)),
            gen,
            false,
        ) {
            Ok(p) => p,
            Err(e) => return self.fail(&e),
        };
        self.exec = Exec::Join(Box::new(JoinRun {
            merger: Merger::new(Default::default(), parts.len()),
            parts,
            planned,
            sql,
            joiner: Joiner::new(shape),
            phase: JoinPhase::Left,
            columns_sent: false,
            rows_sent: 0,
            post,
            post_done: false,
        }));
    }

    /// Sends one query per (shard, SQL) of keyspace `ks` for the statement `gen`, each after
    /// [`STMT_SAVEPOINT`] when `savepoint` (a multi-shard write in a transaction).
    fn send_parts(
        &mut self,
        ks: &str,
        queries: impl Iterator<Item = (usize, String)>,
        gen: u64,
        savepoint: bool,
    ) -> Result<Parts, SqlError> {
        let queries: Vec<(usize, String)> = queries.collect();
        let shards: Vec<usize> = queries.iter().map(|(sh, _)| *sh).collect();
        if let Some(e) = self.single_mode_violation(ks, &shards) {
            return Err(e);
        }
        let ty = self.tablet_type();
        // Every tablet first: an unhealthy primary (or no healthy replica) is an ERR before
        // any shard got the statement.
        if !self.gw.passthrough {
            for &shard in &shards {
                let start = self.connection_id() as usize;
                self.gw.pick_tablet(ks, shard, ty, start, None)?;
            }
        }
        let mut parts = Parts::with_capacity(queries.len());
        for (shard, sql) in queries {
            let key_shard = match ty {
                TabletType::Primary => shard,
                TabletType::Replica => REPLICA_BASE + shard,
            };
            let id = self.backend_for(ks, key_shard).ok_or_else(|| {
                self.tablet_error.take().unwrap_or_else(|| {
                    SqlError::new(1105, "HY000", format!("no shard {shard} in keyspace {ks}"))
                })
            })?;
            self.join_transaction(id);
            if savepoint {
                let sql = TxnOp::Savepoint(STMT_SAVEPOINT.into()).shard_sql();
                self.send(id, sql, Owner::Savepoint(gen));
            }
            self.send(id, sql, Owner::Exec(gen));
            parts.push(Part {
                backend: id,
                done: false,
            });
        }
        Ok(parts)
    }

    fn on_join_event(&mut self, id: BackendId, ev: BackendEvent) {
        let Exec::Join(run) = &mut self.exec else {
            return;
        };
        let Some(pi) = run.parts.iter().position(|p| p.backend == id && !p.done) else {
            return;
        };
        let step = (|| -> Result<bool, SqlError> {
            match ev {
                BackendEvent::Columns(cols) => {
                    if let Some(out) = run.merger.columns(pi, &cols) {
                        match run.phase {
                            JoinPhase::Left => run.joiner.left_columns(&out)?,
                            JoinPhase::Probe | JoinPhase::Fields => {
                                run.joiner.right_columns(&out)?
                            }
                        }
                    }
                }
                BackendEvent::Row(row) => run.merger.row(pi, row),
                // Joins never relay.
                BackendEvent::Relayed { .. } => {}
                BackendEvent::Done { .. } => {
                    run.parts[pi].done = true;
                    run.merger.done(pi);
                }
                BackendEvent::Ok { .. } => {
                    return Err(SqlError::internal("a join side answered without rows"))
                }
                BackendEvent::Error(e) | BackendEvent::Closed(e) => return Err(e),
                BackendEvent::Prepared { .. } | BackendEvent::Connected { .. } => {}
            }
            while let Some(row) = run.merger.next_row() {
                match run.phase {
                    JoinPhase::Left => run.joiner.left_row(&row)?,
                    JoinPhase::Probe => run.joiner.right_row(&row)?,
                    JoinPhase::Fields => {}
                }
            }
            let all_done = run.parts.iter().all(|p| p.done);
            if all_done && run.phase == JoinPhase::Probe {
                run.joiner.probe_done()?;
            }
            Ok(all_done)
        })();
        match step {
            Err(e) => self.fail(&e),
            Ok(all_done) => {
                if all_done {
                    if let Err(e) = self.next_join_query() {
                        return self.fail(&e);
                    }
                }
                self.flush_join();
            }
        }
    }

    /// The current query is done: probe the next left row, or fetch the right columns, or
    /// end the join.
    fn next_join_query(&mut self) -> Result<(), SqlError> {
        let Exec::Join(run) = &mut self.exec else {
            return Ok(());
        };
        // The plan is shared (an `Arc`): no per-probe copy of the join's routes.
        let plan = run.planned.plan.clone();
        let Plan::Join(j) = plan.as_ref() else {
            return Err(SqlError::internal("join run without a join plan"));
        };
        let map = self
            .gw
            .shard_maps
            .get(&j.right.keyspace)
            .ok_or_else(|| SqlError::internal("unknown keyspace of the join's right side"))?;
        let queries = if let Some(values) = run.joiner.next_probe() {
            run.phase = JoinPhase::Probe;
            let b = Bindings {
                original: &run.sql,
                literals: &run.planned.literals,
                join_values: &values,
            };
            j.right
                .resolve(&b, map)?
                .into_iter()
                .map(|q| (q.shard, q.sql))
                .collect::<Vec<_>>()
        } else if run.phase == JoinPhase::Left {
            // No probe ran: the right side's columns still shape the result.
            run.phase = JoinPhase::Fields;
            let nulls = vec![
                JoinValue {
                    value: crate::wire::Value::Null,
                    numeric: false,
                };
                j.vars.len()
            ];
            let b = Bindings {
                original: &run.sql,
                literals: &run.planned.literals,
                join_values: &nulls,
            };
            vec![(0, b.render(&j.right_fields)?)]
        } else {
            run.joiner.finish();
            run.parts.clear();
            return Ok(());
        };
        let gen = self.gen;
        let ks = j.right.keyspace.clone();
        let parts = self.send_parts(&ks, queries.into_iter(), gen, false)?;
        if let Exec::Join(run) = &mut self.exec {
            run.merger = Merger::new(Default::default(), parts.len());
            run.parts = parts;
        }
        Ok(())
    }

    /// Sends what the join can send now; ends the result when the join is over.
    fn flush_join(&mut self) {
        let Exec::Join(run) = &mut self.exec else {
            return;
        };
        if let Some(m) = &mut run.post {
            if !run.columns_sent {
                let Some(cols) = run.joiner.output_columns() else {
                    return;
                };
                if let Some(out) = m.columns(0, &cols) {
                    run.columns_sent = true;
                    self.conn.send_columns(&out);
                }
            }
            let Exec::Join(run) = &mut self.exec else {
                return;
            };
            let Some(m) = &mut run.post else { return };
            while let Some(row) = run.joiner.next_row() {
                m.row(0, row);
            }
            if run.parts.is_empty() && !run.post_done {
                run.post_done = true;
                m.done(0);
            }
            let Exec::Join(run) = &mut self.exec else {
                return;
            };
            let Some(m) = &mut run.post else { return };
            if send_merged_rows(
                &mut self.conn,
                &self.gw,
                self.workload,
                m,
                &mut run.rows_sent,
            ) {
                self.exec = Exec::Idle;
            }
        }
        let Exec::Join(run) = &mut self.exec else {
            return;
        };
        if !run.columns_sent {
            let Some(cols) = run.joiner.output_columns() else {
                return;
            };
            run.columns_sent = true;
            self.conn.send_columns(&cols);
        }
        loop {
            let Exec::Join(run) = &mut self.exec else {
                return;
            };
            match run.joiner.next_row() {
                Some(row) => {
                    run.rows_sent += 1;
                    let n = run.rows_sent;
                    if self.over_row_cap(n) || !self.conn.send_row_text(&row) {
                        self.exec = Exec::Idle;
                        return;
                    }
                }
                None => {
                    // Over when every query is done and no probe is left, or a LIMIT without
                    // ORDER BY is satisfied (shards still sending are drained).
                    let over = run.parts.is_empty() || run.joiner.limit_reached();
                    if over {
                        self.conn.send_finish(0);
                        self.exec = Exec::Idle;
                    }
                    return;
                }
            }
        }
    }

    /// OLTP row cap: past it the result ends with an ERR in place of the terminator.
    fn over_row_cap(&mut self, rows: u64) -> bool {
        over_row_cap(&mut self.conn, &self.gw, self.workload, rows)
    }

    /// The rest of backend `id`'s answer belongs to nobody but is watched for errors.
    fn mark_tail(&mut self, id: BackendId) {
        if let Some(s) = self.backends.get_mut(&id) {
            s.owner = Owner::Tail;
        }
    }

    /// Sends every merged row that can leave now; ends the result when the merge is over.
    fn flush_merged(&mut self) {
        let Exec::Route(r) = &mut self.exec else {
            return;
        };
        if !r.columns_sent {
            return;
        }
        let Some(m) = &mut r.merger else { return };
        if send_merged_rows(&mut self.conn, &self.gw, self.workload, m, &mut r.rows_sent) {
            self.exec = Exec::Idle;
        }
    }

    fn on_commit_event(&mut self, _id: BackendId, ev: BackendEvent) {
        let Exec::Commit(c) = &mut self.exec else {
            return;
        };
        match ev {
            BackendEvent::Ok { more: false, .. } => {
                if let Some((_, name)) = c.current.take() {
                    c.committed.push(name);
                }
                self.advance_commit();
            }
            BackendEvent::Error(e) | BackendEvent::Closed(e) => {
                let failed = c.current.take().map(|(_, n)| n).unwrap_or_default();
                let committed = std::mem::take(&mut c.committed);
                let rest: Vec<BackendId> = c.pending.drain(..).collect();
                let mut rolled = Vec::new();
                for id in rest {
                    if let Some(s) = self.backends.get(&id) {
                        rolled.push(self.shard_label(&s.key));
                    }
                    self.send(id, "ROLLBACK".into(), Owner::Internal);
                }
                let msg = format!(
                    "commit failed on shard {failed}: {} (already committed: [{}]; rolled back: [{}])",
                    e.message,
                    committed.join(", "),
                    rolled.join(", ")
                );
                self.fail(&SqlError::new(e.code, e.sqlstate(), msg));
            }
            _ => {}
        }
    }

    fn on_sequence_event(&mut self, ev: BackendEvent) {
        let Exec::Sequence(s) = &mut self.exec else {
            return;
        };
        match (s.stage, ev) {
            (_, BackendEvent::Error(e)) | (_, BackendEvent::Closed(e)) => {
                let e = SqlError::new(
                    e.code,
                    e.sqlstate(),
                    format!("cannot reserve sequence values: {}", e.message),
                );
                if let Some(slot) = self.backends.get(&s.backend) {
                    let _ = slot;
                }
                let backend = s.backend;
                self.send(backend, "ROLLBACK".into(), Owner::Internal);
                self.fail(&e);
            }
            (SeqStage::Reserve, BackendEvent::Row(row)) => {
                let mut t = crate::wire::value::TextRow::new(&row);
                let num = |c: Option<Option<&[u8]>>| {
                    c.flatten()
                        .and_then(|b| std::str::from_utf8(b).ok())
                        .and_then(|x| x.parse::<u64>().ok())
                };
                let next_id = num(t.next().ok().flatten());
                let cache = num(t.next().ok().flatten());
                if let (Some(n), Some(c)) = (next_id, cache) {
                    s.block = Some((n, c));
                }
            }
            (SeqStage::Reserve, BackendEvent::Done { more: false, .. }) => {
                let Some((next_id, cache)) = s.block else {
                    let backend = s.backend;
                    self.send(backend, "ROLLBACK".into(), Owner::Internal);
                    return self.fail(&SqlError::new(
                        1105,
                        "HY000",
                        "sequence table has no row with id 0",
                    ));
                };
                let (ks, table) = match Plan::clone(&s.planned.plan) {
                    Plan::Insert(i) => i
                        .sequence
                        .map(|q| (q.keyspace, q.table))
                        .unwrap_or_default(),
                    _ => Default::default(),
                };
                let filled = self.gw.sequences.lock().ok().and_then(|mut m| {
                    m.entry((ks.clone(), table.clone()))
                        .or_insert_with(|| crate::vschema::SequenceCache::new(&ks, &table))
                        .fill(next_id, cache)
                        .ok()
                });
                let Exec::Sequence(s) = &mut self.exec else {
                    return;
                };
                match filled {
                    Some(new_next) => {
                        s.stage = SeqStage::Write;
                        let block = crate::vschema::NeedBlock {
                            keyspace: ks,
                            table,
                            cache_size: cache,
                        };
                        let (backend, gen) = (s.backend, s.gen);
                        self.send(
                            backend,
                            format!("{}; commit", block.update_sql(new_next)),
                            Owner::Exec(gen),
                        );
                    }
                    None => {
                        let backend = s.backend;
                        self.send(backend, "ROLLBACK".into(), Owner::Internal);
                        self.fail(&SqlError::new(1105, "HY000", "invalid sequence block"));
                    }
                }
            }
            (SeqStage::Write, BackendEvent::Ok { more: false, .. }) => {
                let Exec::Sequence(s) = std::mem::replace(&mut self.exec, Exec::Idle) else {
                    return;
                };
                if let Plan::Insert(ins) = s.planned.plan.as_ref() {
                    let ins = ins.clone();
                    self.start_insert(s.planned.clone(), s.sql, &ins);
                }
            }
            _ => {}
        }
    }

    /// Takes the status flags of a shard's answer to the client's statement. Pass-through
    /// mirrors the server's own state; otherwise, with autocommit off, a shard that reports
    /// IN_TRANS has opened its implicit transaction, and the client's answer says so too.
    fn track_backend_status(&mut self, st: u16) {
        if self.gw.passthrough {
            self.autocommit = st & status::AUTOCOMMIT != 0;
            self.in_txn = st & status::IN_TRANS != 0;
            self.sync_status();
        } else if !self.autocommit && !self.implicit_open && st & status::IN_TRANS != 0 {
            self.implicit_open = true;
            self.sync_status();
        }
    }

    fn drop_backend(&mut self, id: BackendId) {
        if let Some(slot) = self.backends.get(&id) {
            // Pass-through mode tracks the server's own transaction state instead of joins.
            let participant = slot.in_txn || (self.gw.passthrough && self.in_txn);
            if participant && (self.in_txn || !self.autocommit) {
                let label = self.shard_label(&slot.key);
                self.lost_in_txn.push(label);
            }
        }
        if self.backends.remove(&id).is_some() {
            self.by_shard.retain(|_, v| *v != id);
            self.events.push_back(SessionEvent::CloseBackend { id });
        }
    }

    fn close_all_backends(&mut self) {
        let ids: Vec<BackendId> = self.backends.keys().copied().collect();
        for id in ids {
            self.drop_backend(id);
        }
    }
}

mod slots;
pub use slots::Slots;

#[cfg(test)]
mod tests;

/// OLTP row cap: past it the result ends with an ERR in place of the terminator.
/// The most rows one result may have under `workload` (a relay hands the rows past it over
/// decoded, for [`over_row_cap`] to answer).
fn row_cap(workload: Workload, gw: &Gateway) -> u64 {
    match workload {
        Workload::Oltp => gw.limits.oltp_max_rows,
        _ => u64::MAX,
    }
}

fn over_row_cap(conn: &mut ServerConn, gw: &Gateway, workload: Workload, rows: u64) -> bool {
    let cap = row_cap(workload, gw);
    if rows > cap {
        gw.counters.errors.fetch_add(1, Ordering::Relaxed);
        conn.send_error(&SqlError::new(
            1105,
            "HY000",
            format!("Row count exceeded {cap} (OLTP workload); use set workload='olap' to stream larger results"),
        ));
        return true;
    }
    false
}

/// Sends every row a merge can give now (a route's or a join's). Returns whether the
/// statement's answer ended: the merge finished (a satisfied LIMIT ends it early; shards still
/// sending are drained), the row cap was passed, or a row could not be written.
fn send_merged_rows(
    conn: &mut ServerConn,
    gw: &Gateway,
    workload: Workload,
    m: &mut Merger,
    rows_sent: &mut u64,
) -> bool {
    loop {
        match m.next_row() {
            Some(row) => {
                *rows_sent += 1;
                if over_row_cap(conn, gw, workload, *rows_sent) || !conn.send_row_text(&row) {
                    return true;
                }
            }
            None => {
                if m.is_finished() {
                    conn.send_finish(0);
                    return true;
                }
                return false;
            }
        }
    }
}
