//! The engine served over the MySQL protocol: one [`EngineConn`] per client connection,
//! built on the same server-side state machine as the gateway (`shardgate_core::server`).
//!
//! Sans-IO like the core: bytes in, bytes out, time passed in. `SLEEP(n)` does not block: the
//! answer is computed at once and withheld until the caller's clock reaches the deadline
//! ([`EngineConn::poll_timeout`]), so simulated time controls it.

use crate::{Engine, EngineSession, Outcome};
use bytes::Bytes;
use shardgate_core::server::{Request, ServerConfig, ServerConn};
use shardgate_core::wire::consts::{cap, status};
use shardgate_core::wire::OkInfo;
use shardgate_core::SqlError;
use std::sync::Arc;

/// One client connection to an engine.
#[derive(Debug)]
pub struct EngineConn {
    conn: ServerConn,
    session: EngineSession,
    /// An answer withheld until a deadline (SLEEP), with the bytes to release then.
    held: Option<(u64, Bytes)>,
}

impl EngineConn {
    pub fn new(config: Arc<ServerConfig>, connection_id: u32, scramble: [u8; 20]) -> EngineConn {
        EngineConn {
            conn: ServerConn::new(config, connection_id, scramble),
            session: EngineSession::new(connection_id, None),
            held: None,
        }
    }

    pub fn is_closed(&self) -> bool {
        self.conn.is_closed() && self.held.is_none()
    }

    /// When the withheld answer is due, if one is.
    pub fn poll_timeout(&self) -> Option<u64> {
        self.held.as_ref().map(|(t, _)| *t)
    }

    /// Bytes from the client; executes whatever requests are complete.
    pub fn handle_input(&mut self, engine: &mut Engine, data: &[u8], now_ms: u64) {
        self.conn.handle_input(data);
        self.run(engine, now_ms);
    }

    /// The clock moved: release a due answer and continue with queued requests.
    pub fn handle_timeout(&mut self, engine: &mut Engine, now_ms: u64) {
        self.run(engine, now_ms);
    }

    pub fn handle_close(&mut self, engine: &mut Engine) {
        self.conn.handle_close();
        self.held = None;
        engine.end_session(&mut self.session);
    }

    /// Bytes to send now (a withheld answer only once due).
    pub fn poll_transmit(&mut self, now_ms: u64) -> Option<Bytes> {
        match &self.held {
            Some((due, _)) if *due > now_ms => None,
            Some(_) => self.held.take().map(|(_, b)| b),
            None => self.conn.poll_transmit(),
        }
    }

    fn run(&mut self, engine: &mut Engine, now_ms: u64) {
        loop {
            if matches!(self.held, Some((due, _)) if due > now_ms) {
                return;
            }
            if let Some((_, bytes)) = self.held.take() {
                // Keep order: the due answer goes out before anything newer.
                self.held = Some((now_ms, bytes));
                return;
            }
            let Some(req) = self.conn.poll_request() else {
                return;
            };
            let delay = self.execute(engine, req, now_ms);
            if delay > 0 {
                let bytes = self.conn.poll_transmit().unwrap_or_default();
                self.held = Some((now_ms + delay, bytes));
            }
        }
    }

    /// What the client's capabilities mean for its statements (CLIENT_FOUND_ROWS).
    fn take_capabilities(&mut self) {
        self.session.client_found_rows = self.conn.capabilities() & cap::FOUND_ROWS != 0;
    }

    /// Executes one request and answers it; returns how long the answer must be withheld.
    fn execute(&mut self, engine: &mut Engine, req: Request, now_ms: u64) -> u64 {
        let result = match req {
            Request::Connect { database, .. } => {
                self.take_capabilities();
                let r = match database {
                    Some(db) => self.session.set_database(&db, engine),
                    None => Ok(()),
                };
                self.answer_ok(r);
                return 0;
            }
            Request::InitDb { database } => {
                let r = self.session.set_database(&database, engine);
                self.answer_ok(r);
                return 0;
            }
            Request::ResetConnection => {
                // As in MySQL: everything of the session goes (transaction, variables,
                // temporary state) except the connection and its current database.
                let database = self.session.database.clone();
                engine.end_session(&mut self.session);
                self.session = EngineSession::new(self.conn.connection_id(), database.as_deref());
                // Capabilities are the connection's: a reset keeps them.
                self.take_capabilities();
                self.answer_ok(Ok(()));
                return 0;
            }
            Request::Kill { connection_id } => Err(SqlError::no_such_thread(connection_id as u64)),
            Request::Query { sql } => engine.execute(&mut self.session, &sql, now_ms),
            Request::Execute { sql, params, .. } => match params.into_values() {
                Ok(values) => engine.execute_prepared(&mut self.session, &sql, &values, now_ms),
                Err(_) => Err(SqlError::wrong_arguments("mysqld_stmt_execute")),
            },
        };
        self.sync_status();
        match result {
            Ok(exec) => {
                match exec.outcome {
                    Outcome::Rows { columns, rows } => {
                        self.conn.send_columns(&columns);
                        for row in &rows {
                            if !self.conn.send_row(row) {
                                return exec.delay_ms;
                            }
                        }
                        self.conn.send_finish(0);
                    }
                    Outcome::Ok(ok) => self.conn.send_ok(&ok),
                }
                exec.delay_ms
            }
            Err(e) => {
                self.conn.send_error(&e);
                0
            }
        }
    }

    fn answer_ok(&mut self, r: Result<(), SqlError>) {
        match r {
            Ok(()) => self.conn.send_ok(&OkInfo::default()),
            Err(e) => self.conn.send_error(&e),
        }
    }

    fn sync_status(&mut self) {
        let mut bits = 0;
        if self.session.autocommit() {
            bits |= status::AUTOCOMMIT;
        }
        if self.session.in_transaction() {
            bits |= status::IN_TRANS;
        }
        self.conn.set_session_status(bits);
    }
}
