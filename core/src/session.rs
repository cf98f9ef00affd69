//! One client connection of the gateway: the client's protocol state ([`ServerConn`]), the
//! backend connections this session uses, and the statement in progress.
//!
//! # Driving it
//! - inputs: [`Session::handle_client_input`], [`Session::handle_client_close`],
//!   [`Session::handle_backend_input`], [`Session::handle_backend_close`];
//! - outputs, in this order after any input: [`Session::poll_event`] (open or close a backend
//!   connection), [`Session::poll_backend_transmit`], [`Session::poll_client_transmit`], then
//!   [`Session::is_closed`].
//!
//! A panic while handling one statement is caught here: the client gets ERR 1105, the backend
//! that may have been mid-result is dropped, the panic is counted, and the session carries on.

use crate::backend::{BackendConfig, BackendConn, BackendEvent};
use crate::error::SqlError;
use crate::gateway::{Gateway, ShardAddress};
use crate::server::{Request, ServerConn};
use crate::wire::consts::status;
use crate::wire::OkInfo;
use bytes::Bytes;
use std::collections::{BTreeMap, VecDeque};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Index of a backend connection within its session.
pub type BackendId = usize;

/// Something the driver must do for the session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionEvent {
    /// Connect backend `id` to `address`, then feed bytes both ways.
    OpenBackend {
        id: BackendId,
        address: ShardAddress,
    },
    /// Close backend `id` once its pending bytes are flushed.
    CloseBackend { id: BackendId },
}

#[derive(Debug)]
struct BackendSlot {
    conn: BackendConn,
    /// A command waiting for authentication to finish.
    queued: Option<String>,
}

/// The statement being executed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Exec {
    Idle,
    /// Accepting the client: waiting for the first backend to authenticate.
    Connecting {
        backend: BackendId,
    },
    /// A statement's answer is being relayed from one backend.
    Forwarding {
        backend: BackendId,
        discard: bool,
    },
}

/// One gateway client connection. See the module docs for the calling contract.
#[derive(Debug)]
pub struct Session {
    gw: Arc<Gateway>,
    conn: ServerConn,
    backends: BTreeMap<BackendId, BackendSlot>,
    by_shard: BTreeMap<(String, String), BackendId>,
    next_backend: BackendId,
    events: VecDeque<SessionEvent>,
    exec: Exec,
    keyspace: String,
    /// The database the client selected (sent to backends as they connect).
    database: Option<String>,
}

impl Session {
    pub fn new(gw: Arc<Gateway>, connection_id: u32, scramble: [u8; 20]) -> Session {
        gw.counters.connections.fetch_add(1, Ordering::Relaxed);
        let conn = ServerConn::new(gw.server.clone(), connection_id, scramble);
        let keyspace = gw.topology.default_keyspace.clone();
        Session {
            gw,
            conn,
            backends: BTreeMap::new(),
            by_shard: BTreeMap::new(),
            next_backend: 0,
            events: VecDeque::new(),
            exec: Exec::Idle,
            keyspace,
            database: None,
        }
    }

    // ---- getters ----

    pub fn connection_id(&self) -> u32 {
        self.conn.connection_id()
    }
    pub fn is_closed(&self) -> bool {
        self.conn.is_closed()
    }
    /// Is a statement in progress?
    pub fn is_busy(&self) -> bool {
        self.exec != Exec::Idle
    }

    // ---- inputs ----

    pub fn handle_client_input(&mut self, data: &[u8]) {
        self.conn.handle_input(data);
        self.pump();
    }

    pub fn handle_client_close(&mut self) {
        self.conn.handle_close();
        self.pump();
    }

    pub fn handle_backend_input(&mut self, id: BackendId, data: &[u8]) {
        if let Some(slot) = self.backends.get_mut(&id) {
            slot.conn.handle_input(data);
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
        self.events.pop_front()
    }

    pub fn poll_backend_transmit(&mut self) -> Option<(BackendId, Bytes)> {
        self.backends
            .iter_mut()
            .find_map(|(id, s)| s.conn.poll_transmit().map(|b| (*id, b)))
    }

    pub fn poll_client_transmit(&mut self) -> Option<Bytes> {
        self.conn.poll_transmit()
    }

    // ---- the loop ----

    /// Moves everything that can move: backend events into the statement in progress, then
    /// new requests while no statement is in progress.
    fn pump(&mut self) {
        loop {
            let mut progressed = false;
            let ids: Vec<BackendId> = self.backends.keys().copied().collect();
            for id in ids {
                while let Some(ev) = self.backends.get_mut(&id).and_then(|s| s.conn.poll_event()) {
                    progressed = true;
                    self.guarded(|s| s.on_backend_event(id, ev));
                }
            }
            if self.exec == Exec::Idle {
                if let Some(req) = self.conn.poll_request() {
                    progressed = true;
                    self.guarded(|s| s.start(req));
                }
            }
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
            // A backend caught mid-result cannot be trusted to be in sync any more.
            if let Exec::Forwarding { backend, .. } | Exec::Connecting { backend } = self.exec {
                self.drop_backend(backend);
            }
            self.exec = Exec::Idle;
            self.conn.send_error(&SqlError::internal(format!(
                "internal error while handling the statement: {what}"
            )));
        }
    }

    fn start(&mut self, req: Request) {
        self.gw.counters.statements.fetch_add(1, Ordering::Relaxed);
        match req {
            Request::Connect { database, .. } => {
                self.database = database;
                let Some(id) = self.backend_for_default_shard() else {
                    return self.fail(&SqlError::new(
                        1049,
                        "42000",
                        format!("Unknown keyspace '{}'", self.keyspace),
                    ));
                };
                self.exec = Exec::Connecting { backend: id };
                if self.backends.get(&id).is_some_and(|s| s.conn.is_idle()) {
                    self.exec = Exec::Idle;
                    self.conn.send_ok(&OkInfo::default());
                }
            }
            Request::Query { sql } => {
                self.gw.failpoints.check_statement(&sql);
                self.forward(sql);
            }
            Request::Execute { sql, params, .. } => {
                self.gw.failpoints.check_statement(&sql);
                // Prepared statements reach shards as text with literals bound, like Vitess;
                // the response writer converts the shard's text rows to binary rows.
                let bound = crate::sql::parse_one(&sql).and_then(|mut st| {
                    crate::sql::bind_placeholders(&mut st, &params)?;
                    Ok(st.to_string())
                });
                match bound {
                    Ok(text) => self.forward(text),
                    Err(e) => self.fail(&e),
                }
            }
            Request::InitDb { database } => {
                self.database = Some(database.clone());
                self.forward(format!("USE `{}`", database.replace('`', "``")));
            }
            Request::ResetConnection => {
                self.database = None;
                self.close_all_backends();
                self.conn.send_ok(&OkInfo::default());
            }
            Request::Kill { connection_id } => {
                self.fail(&SqlError::no_such_thread(connection_id as u64));
            }
        }
    }

    fn fail(&mut self, e: &SqlError) {
        self.gw.counters.errors.fetch_add(1, Ordering::Relaxed);
        self.conn.send_error(e);
    }

    /// Sends one statement to the default shard and relays its answer.
    fn forward(&mut self, sql: String) {
        let Some(id) = self.backend_for_default_shard() else {
            return self.fail(&SqlError::new(
                1049,
                "42000",
                format!("Unknown keyspace '{}'", self.keyspace),
            ));
        };
        let Some(slot) = self.backends.get_mut(&id) else {
            return;
        };
        self.exec = Exec::Forwarding {
            backend: id,
            discard: false,
        };
        if slot.conn.is_idle() {
            if let Err(e) = slot.conn.query(&sql) {
                self.exec = Exec::Idle;
                self.fail(&e);
            }
        } else {
            slot.queued = Some(sql);
        }
    }

    /// The backend of the current keyspace's first shard, opening it if needed.
    fn backend_for_default_shard(&mut self) -> Option<BackendId> {
        let ks = self.keyspace.clone();
        let shard = self
            .gw
            .topology
            .keyspaces
            .get(&ks)
            .and_then(|k| k.shards.first())
            .cloned()?;
        let key = (ks, shard.name.clone());
        if let Some(id) = self.by_shard.get(&key) {
            if self.backends.contains_key(id) {
                return Some(*id);
            }
        }
        let id = self.next_backend;
        self.next_backend += 1;
        let (user, password) = match &shard.address {
            ShardAddress::Mysql { user, password, .. } => (user.clone(), password.clone()),
            ShardAddress::Embedded { .. } => ("root".to_string(), String::new()),
        };
        let database = self
            .database
            .clone()
            .or_else(|| Some(shard.address.database().to_string()));
        let conn = BackendConn::new(BackendConfig {
            user,
            password,
            database,
            max_packet: 0,
        });
        self.backends.insert(id, BackendSlot { conn, queued: None });
        self.by_shard.insert(key, id);
        self.events.push_back(SessionEvent::OpenBackend {
            id,
            address: shard.address.clone(),
        });
        Some(id)
    }

    fn on_backend_event(&mut self, id: BackendId, ev: BackendEvent) {
        match ev {
            BackendEvent::Connected { .. } => {
                if let Some(sql) = self.backends.get_mut(&id).and_then(|s| s.queued.take()) {
                    if let Some(slot) = self.backends.get_mut(&id) {
                        if let Err(e) = slot.conn.query(&sql) {
                            self.exec = Exec::Idle;
                            self.fail(&e);
                        }
                    }
                }
                if self.exec == (Exec::Connecting { backend: id }) {
                    self.exec = Exec::Idle;
                    self.conn.send_ok(&OkInfo::default());
                }
            }
            BackendEvent::Closed(e) => {
                self.drop_backend(id);
                match self.exec {
                    Exec::Connecting { backend } | Exec::Forwarding { backend, .. }
                        if backend == id =>
                    {
                        self.exec = Exec::Idle;
                        tracing::warn!(conn = self.connection_id(), backend = id, error = %e, "backend connection lost");
                        self.fail(&e);
                    }
                    _ => {}
                }
            }
            other => self.relay(id, other),
        }
    }

    /// Relays one event of the statement's answer to the client through the writer.
    fn relay(&mut self, id: BackendId, ev: BackendEvent) {
        let Exec::Forwarding { backend, discard } = self.exec else {
            return;
        };
        if backend != id {
            return;
        }
        let finished = |more: bool, s: &mut Session| {
            if !more {
                s.exec = Exec::Idle;
            } else {
                // A backend multi-result (e.g. CALL): only the first result is relayed.
                s.exec = Exec::Forwarding {
                    backend,
                    discard: true,
                };
            }
        };
        match ev {
            BackendEvent::Columns(cols) if !discard => self.conn.send_columns(&cols),
            BackendEvent::Row(row) if !discard => {
                if !self.conn.send_row_text(&row) {
                    self.exec = Exec::Forwarding {
                        backend,
                        discard: true,
                    };
                }
            }
            BackendEvent::Done {
                status: st,
                warnings,
                more,
            } => {
                if !discard {
                    self.track_status(st);
                    self.conn.send_finish(warnings);
                }
                finished(more, self);
            }
            BackendEvent::Ok { ok, more } => {
                if !discard {
                    self.track_status(ok.status);
                    self.conn.send_ok(&OkInfo { status: 0, ..ok });
                }
                finished(more, self);
            }
            BackendEvent::Error(e) => {
                self.exec = Exec::Idle;
                if !discard {
                    self.fail(&e);
                }
            }
            _ => {}
        }
    }

    /// Mirrors the backend's transaction/autocommit status into the client's OK/EOF packets.
    fn track_status(&mut self, backend_status: u16) {
        self.conn
            .set_session_status(backend_status & (status::IN_TRANS | status::AUTOCOMMIT));
    }

    fn drop_backend(&mut self, id: BackendId) {
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
