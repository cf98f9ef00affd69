//! The reference: one unsharded engine that runs every statement of a randomised workload the
//! way a single MySQL server would, one engine session per scripted client. What it answers is
//! what the gateway must answer (DESIGN section 7, the differential check).

use shardgate_core::wire::Value;
use shardgate_engine::{Engine, EngineSession, Outcome};
use std::collections::BTreeMap;

/// What one statement answered on the reference.
#[derive(Clone, PartialEq)]
pub enum RefResult {
    Rows {
        columns: usize,
        rows: Vec<Vec<Value>>,
    },
    Ok {
        affected: u64,
    },
    Err {
        code: u16,
    },
}

impl RefResult {
    pub fn is_err(&self) -> bool {
        matches!(self, RefResult::Err { .. })
    }
}

/// The reference server. See the module docs.
pub struct Reference {
    engine: Engine,
    database: String,
    sessions: BTreeMap<String, EngineSession>,
    next_conn: u32,
}

impl Reference {
    /// An engine holding the (empty) database `database`.
    pub fn new(database: &str) -> Reference {
        let mut engine = Engine::new(crate::world::ENGINE_VERSION);
        let mut s = EngineSession::new(0, None);
        let _ = engine.execute(&mut s, &format!("CREATE DATABASE `{database}`"), 0);
        Reference {
            engine,
            database: database.to_string(),
            sessions: BTreeMap::new(),
            next_conn: 1,
        }
    }

    fn ensure_session(&mut self, client: &str) {
        if !self.sessions.contains_key(client) {
            let mut s = EngineSession::new(self.next_conn, None);
            self.next_conn += 1;
            let _ = s.set_database(&self.database, &self.engine);
            self.sessions.insert(client.to_string(), s);
        }
    }

    /// Runs one statement (with `?` parameters bound from `params`) as `client`.
    pub fn run(&mut self, client: &str, sql: &str, params: &[Value]) -> RefResult {
        self.ensure_session(client);
        let Some(session) = self.sessions.get_mut(client) else {
            return RefResult::Err { code: 1105 };
        };
        match self.engine.execute_prepared(session, sql, params, 0) {
            Ok(e) => match e.outcome {
                Outcome::Rows { columns, rows } => RefResult::Rows {
                    columns: columns.len(),
                    rows,
                },
                Outcome::Ok(ok) => RefResult::Ok {
                    affected: ok.affected_rows,
                },
            },
            Err(e) => RefResult::Err { code: e.code },
        }
    }

    /// Is `client` inside a transaction (explicit, or implicit with autocommit off)?
    pub fn in_transaction(&self, client: &str) -> bool {
        self.sessions
            .get(client)
            .is_some_and(|s| s.in_transaction() || !s.autocommit())
    }

    /// The client's connection ended: its open transaction rolls back.
    pub fn disconnect(&mut self, client: &str) {
        if let Some(mut s) = self.sessions.remove(client) {
            self.engine.end_session(&mut s);
        }
    }

    /// Every row of a table, as `select *` returns them.
    pub fn table_rows(&mut self, table: &str) -> Vec<Vec<Value>> {
        let mut s = EngineSession::new(0, None);
        let _ = s.set_database(&self.database, &self.engine);
        match self
            .engine
            .execute(&mut s, &format!("SELECT * FROM `{table}`"), 0)
        {
            Ok(e) => match e.outcome {
                Outcome::Rows { rows, .. } => rows,
                Outcome::Ok(_) => Vec::new(),
            },
            Err(_) => Vec::new(),
        }
    }
}
