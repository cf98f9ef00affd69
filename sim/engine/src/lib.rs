//! shardgate-engine: a deterministic, in-memory, MySQL/MariaDB-compatible SQL engine.
//!
//! It is the shard behind the gateway's embedded default and the simulator, so it must answer
//! like MariaDB would (results, column metadata, error codes) while being fully deterministic:
//! no clocks (the caller passes `now_ms`), no threads, no randomness, ordered maps only.
//!
//! Layout, by concern:
//! - [`parse`]: sqlparser (MySQL dialect) with numbered `?` placeholders and MySQL 1064 texts.
//! - [`types`]: values, exact decimals, collation-aware comparison and index keys.
//! - [`catalog`]: column types, table schemas, strict-mode coercion into columns.
//! - [`storage`]: rows clustered by primary key, unique indexes, undo records.
//! - [`expr`] / [`functions`]: compile-once expressions with MySQL typing; scalar functions.
//! - [`select`], [`dml`], [`ddl`], [`vars`]: statement execution.
//!
//! Transactions: each session keeps an undo log; ROLLBACK (or closing the connection) replays it
//! backwards. There is no isolation between sessions (the simulator serialises statements).

pub mod catalog;
pub mod conn;
mod correlated;
pub mod ddl;
pub mod dml;
pub mod expr;
pub mod functions;
pub mod parse;
pub mod select;
pub mod storage;
pub mod time;
pub mod types;
pub mod vars;

use shardgate_core::wire::consts::status;
use shardgate_core::wire::{ColumnDef, OkInfo, Value};
use shardgate_core::SqlError;
use sqlparser::ast::Statement;
use std::collections::BTreeMap;
use storage::{Table, Undo};
use types::Val;

/// One database: its tables by name (case-sensitive, as MySQL on Linux).
#[derive(Clone, Debug, Default)]
pub struct Database {
    pub tables: BTreeMap<String, Table>,
}

/// One server's data: databases → tables.
pub struct Engine {
    // (Debug is implemented by hand: summaries only, never table contents.)
    pub(crate) version: String,
    pub(crate) dbs: BTreeMap<String, Database>,
    /// The wall-clock time (ms since the Unix epoch) at the caller's time 0: NOW() and
    /// friends read `epoch_ms + now_ms`. 0 in the simulation (deterministic); the production
    /// binary sets the real one for the shards of its embedded default.
    epoch_ms: u64,
}

/// Per-connection state.
#[derive(Clone, Debug)]
pub struct EngineSession {
    pub(crate) connection_id: u32,
    pub(crate) database: Option<String>,
    pub(crate) user: String,
    pub(crate) autocommit: bool,
    pub(crate) in_tx: bool,
    /// Undo records of the open transaction, oldest first.
    pub(crate) undo: Vec<Undo>,
    /// Savepoints of the open transaction, oldest first: (name lower-cased, undo mark).
    pub(crate) savepoints: Vec<(String, usize)>,
    pub(crate) last_insert_id: u64,
    pub(crate) row_count: i64,
    pub(crate) found_rows: u64,
    /// The client asked for CLIENT_FOUND_ROWS: UPDATE and ON DUPLICATE KEY UPDATE count the
    /// rows they matched as affected, changed or not.
    pub client_found_rows: bool,
    /// `@name` variables (names lower-cased: they are case-insensitive).
    pub(crate) user_vars: BTreeMap<String, Val>,
    /// Session values of system variables set with SET.
    pub(crate) sys_vars: BTreeMap<String, Val>,
}

/// What a statement produced.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// A result set: column definitions and all rows.
    Rows {
        columns: Vec<ColumnDef>,
        rows: Vec<Vec<Value>>,
    },
    /// A statement without result set.
    Ok(OkInfo),
}

/// A statement's outcome plus the time the caller must wait before answering.
#[derive(Clone, Debug, PartialEq)]
pub struct Execution {
    pub outcome: Outcome,
    /// SLEEP(n) etc.: how long the caller must wait on its own clock before answering.
    pub delay_ms: u64,
}

/// Read-only context of one statement: what expressions may consult.
pub struct Ctx<'a> {
    pub engine: &'a Engine,
    pub sess: &'a EngineSession,
    pub params: &'a [Value],
    pub now_ms: u64,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("version", &self.version)
            .field("databases", &self.dbs.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl EngineSession {
    pub fn new(connection_id: u32, database: Option<&str>) -> Self {
        EngineSession {
            connection_id,
            database: database.map(|s| s.to_string()),
            user: "root".into(),
            autocommit: true,
            in_tx: false,
            undo: Vec::new(),
            savepoints: Vec::new(),
            last_insert_id: 0,
            row_count: -1,
            found_rows: 0,
            client_found_rows: false,
            user_vars: BTreeMap::new(),
            sys_vars: BTreeMap::new(),
        }
    }

    /// COM_INIT_DB / `USE db`.
    pub fn set_database(&mut self, db: &str, engine: &Engine) -> Result<(), SqlError> {
        if !engine.dbs.contains_key(db) {
            return Err(unknown_db(db));
        }
        self.database = Some(db.to_string());
        Ok(())
    }

    /// Whether a transaction is open (explicitly, or implicitly with autocommit off and a
    /// statement executed since the last commit).
    pub fn in_transaction(&self) -> bool {
        self.in_tx
    }

    pub fn autocommit(&self) -> bool {
        self.autocommit
    }

    /// Sets the user name reported by USER()/CURRENT_USER().
    pub fn set_user(&mut self, user: &str) {
        self.user = user.to_string();
    }

    pub fn database(&self) -> Option<&str> {
        self.database.as_deref()
    }

    pub fn last_insert_id(&self) -> u64 {
        self.last_insert_id
    }

    /// Server status flags for OK/EOF packets.
    pub fn status_flags(&self) -> u16 {
        let mut s = 0;
        if self.autocommit {
            s |= status::AUTOCOMMIT;
        }
        if self.in_tx {
            s |= status::IN_TRANS;
        }
        s
    }
}

pub(crate) fn unknown_db(db: &str) -> SqlError {
    SqlError::new(
        shardgate_core::error::codes::ER_BAD_DB_ERROR,
        "42000",
        format!("Unknown database '{db}'"),
    )
}

pub(crate) fn no_db() -> SqlError {
    SqlError::new(
        shardgate_core::error::codes::ER_NO_DB_ERROR,
        "3D000",
        "No database selected",
    )
}

/// Statement-level result before the transaction bookkeeping.
#[doc(hidden)]
pub enum Res {
    Rows(Vec<ColumnDef>, Vec<Vec<Value>>),
    Ok(OkInfo),
}

impl Engine {
    pub fn new(version: &str) -> Self {
        let mut dbs = BTreeMap::new();
        // Schemas every server has; tests and clients `USE mysql`/`test` freely.
        dbs.insert("mysql".to_string(), Database::default());
        dbs.insert("test".to_string(), Database::default());
        Engine {
            version: version.to_string(),
            dbs,
            epoch_ms: 0,
        }
    }

    /// See [`Engine::epoch_ms`](Engine): the wall clock at the caller's time 0.
    pub fn set_epoch_ms(&mut self, epoch_ms: u64) {
        self.epoch_ms = epoch_ms;
    }

    pub fn version(&self) -> &str {
        &self.version
    }

    /// Database names, sorted.
    pub fn databases(&self) -> Vec<String> {
        self.dbs.keys().cloned().collect()
    }

    pub fn execute(
        &mut self,
        session: &mut EngineSession,
        sql: &str,
        now_ms: u64,
    ) -> Result<Execution, SqlError> {
        self.execute_prepared(session, sql, &[], now_ms)
    }

    pub fn execute_prepared(
        &mut self,
        session: &mut EngineSession,
        sql: &str,
        params: &[Value],
        now_ms: u64,
    ) -> Result<Execution, SqlError> {
        // Statements sqlparser 0.63 cannot parse but clients send.
        if let Some(r) = ddl::pre_parse(self, session, sql) {
            return r.map(|outcome| Execution {
                outcome,
                delay_ms: 0,
            });
        }
        let parsed = parse::parse(sql)?;
        let mut delay = 0u64;
        let undo_mark = session.undo.len();
        let writes = dml::is_write(&parsed.stmt);
        // Autocommit off: the first statement touching a table opens a transaction
        // implicitly (like InnoDB, which sets SERVER_STATUS_IN_TRANS only then).
        let touches_tables = writes
            || matches!(&parsed.stmt, Statement::Query(q)
                if matches!(&*q.body, sqlparser::ast::SetExpr::Select(s) if !s.from.is_empty()));
        if !session.autocommit && !session.in_tx && touches_tables {
            session.in_tx = true;
        }
        // Statements read the calendar; only delays (SLEEP) are the caller's to time.
        let wall_ms = self.epoch_ms.saturating_add(now_ms);
        let r = self.dispatch(session, &parsed, sql, params, wall_ms, &mut delay);
        match r {
            Ok(res) => {
                if writes && !session.in_tx {
                    // Autocommit: the statement's changes are final.
                    session.undo.truncate(undo_mark);
                }
                let st = session.status_flags();
                let outcome = match res {
                    Res::Rows(columns, rows) => Outcome::Rows { columns, rows },
                    Res::Ok(mut ok) => {
                        ok.status |= st;
                        Outcome::Ok(ok)
                    }
                };
                if writes {
                    if let Outcome::Ok(ok) = &outcome {
                        session.row_count = ok.affected_rows as i64;
                    }
                } else if matches!(outcome, Outcome::Rows { .. }) {
                    session.row_count = -1;
                } else {
                    session.row_count = 0;
                }
                Ok(Execution {
                    outcome,
                    delay_ms: delay,
                })
            }
            Err(e) => {
                // Statement atomicity: undo this statement's partial changes only.
                self.rollback_to(session, undo_mark);
                Err(e)
            }
        }
    }

    /// Connection closed: roll back its open transaction.
    pub fn end_session(&mut self, session: &mut EngineSession) {
        self.rollback_to(session, 0);
        session.in_tx = false;
    }

    pub(crate) fn commit(&mut self, session: &mut EngineSession) {
        session.undo.clear();
        session.savepoints.clear();
        session.in_tx = false;
    }

    pub(crate) fn rollback_to(&mut self, session: &mut EngineSession, mark: usize) {
        while session.undo.len() > mark {
            let Some(u) = session.undo.pop() else { break };
            match u {
                Undo::Inserted { db, table, pk } => {
                    if let Some(t) = self.table_mut(&db, &table) {
                        t.remove(&pk);
                    }
                }
                // (a row saved before an ALTER TABLE changed the table's columns is dropped:
                // ALTER commits its own session, and another session's stale undo must not
                // store a row of the wrong width)
                Undo::Deleted { db, table, pk, row } => {
                    if let Some(t) = self.table_mut(&db, &table) {
                        if row.len() != t.schema.columns.len() {
                            continue;
                        }
                        t.put_raw(pk, row);
                    }
                }
                Undo::Updated {
                    db,
                    table,
                    old_pk,
                    new_pk,
                    old_row,
                } => {
                    if let Some(t) = self.table_mut(&db, &table) {
                        t.remove(&new_pk);
                        if old_row.len() != t.schema.columns.len() {
                            continue;
                        }
                        t.put_raw(old_pk, old_row);
                    }
                }
            }
        }
    }

    pub(crate) fn table_mut(&mut self, db: &str, table: &str) -> Option<&mut Table> {
        self.dbs.get_mut(db)?.tables.get_mut(table)
    }

    pub(crate) fn table(&self, db: &str, table: &str) -> Option<&Table> {
        self.dbs.get(db)?.tables.get(table)
    }

    fn dispatch(
        &mut self,
        session: &mut EngineSession,
        parsed: &parse::Parsed,
        sql: &str,
        params: &[Value],
        now_ms: u64,
        delay: &mut u64,
    ) -> Result<Res, SqlError> {
        let stmt = &parsed.stmt;
        match stmt {
            Statement::Query(q) => {
                let ctx = Ctx {
                    engine: self,
                    sess: session,
                    params,
                    now_ms,
                };
                let (cols, rows, d) = select::top_level(&ctx, q, sql, &parsed.tokens)?;
                *delay += d;
                Ok(Res::Rows(cols, rows))
            }
            Statement::Insert(_) | Statement::Update(_) | Statement::Delete(_) => {
                dml::execute(self, session, stmt, params, now_ms, delay)
            }
            Statement::StartTransaction { .. } => {
                // BEGIN commits an open transaction first, as MySQL does.
                self.commit(session);
                session.in_tx = true;
                Ok(Res::Ok(OkInfo::default()))
            }
            Statement::Commit { .. } => {
                self.commit(session);
                Ok(Res::Ok(OkInfo::default()))
            }
            Statement::Rollback {
                savepoint: None, ..
            } => {
                self.rollback_to(session, 0);
                session.savepoints.clear();
                session.in_tx = false;
                Ok(Res::Ok(OkInfo::default()))
            }
            // Savepoints as in InnoDB: outside a transaction SAVEPOINT is a no-op and
            // ROLLBACK TO / RELEASE find nothing (1305); with autocommit off SAVEPOINT opens
            // the transaction (as MySQL's multi-statement mode does); a name set again moves
            // to the end, keeping every other savepoint; ROLLBACK TO keeps the savepoint and
            // drops later ones; RELEASE drops it and later ones.
            Statement::Savepoint { name } => {
                if !session.autocommit {
                    session.in_tx = true;
                }
                if session.in_tx {
                    let name = name.value.to_ascii_lowercase();
                    session.savepoints.retain(|(n, _)| *n != name);
                    session.savepoints.push((name, session.undo.len()));
                }
                Ok(Res::Ok(OkInfo::default()))
            }
            Statement::Rollback {
                savepoint: Some(name),
                ..
            } => {
                let i = savepoint_index(session, &name.value)?;
                let mark = session.savepoints[i].1;
                session.savepoints.truncate(i + 1);
                self.rollback_to(session, mark);
                Ok(Res::Ok(OkInfo::default()))
            }
            Statement::ReleaseSavepoint { name } => {
                let i = savepoint_index(session, &name.value)?;
                session.savepoints.truncate(i);
                Ok(Res::Ok(OkInfo::default()))
            }
            Statement::Set(s) => vars::execute_set(self, session, s, params, now_ms),
            _ => ddl::execute(self, session, stmt, params, now_ms),
        }
    }
}

/// The position of savepoint `name` in the open transaction, or ERR 1305.
fn savepoint_index(session: &EngineSession, name: &str) -> Result<usize, SqlError> {
    let lower = name.to_ascii_lowercase();
    session
        .savepoints
        .iter()
        .position(|(n, _)| *n == lower)
        .ok_or_else(|| SqlError::new(1305, "42000", format!("SAVEPOINT {name} does not exist")))
}
