//! A scripted client: core's client-side protocol machine ([`BackendConn`]) plus the assembly
//! of its events into whole [`Answer`]s that scenarios check.
//!
//! Sans-IO like everything it wraps, so any world can carry its bytes: the L0 stepper over its
//! links, a turmoil world over a simulated TCP stream.

use crate::render;
use bytes::Bytes;
use shardgate_core::backend::{BackendConfig, BackendConn, BackendEvent};
use shardgate_core::wire::binary::decode_binary_row;
use shardgate_core::wire::consts::status;
use shardgate_core::wire::value::TextRow;
use shardgate_core::wire::{ColumnDef, OkInfo, Value};
use shardgate_core::SqlError;
use std::collections::VecDeque;

/// One complete answer the client received (one result of a possibly multi-result command).
#[derive(Clone, PartialEq)]
pub enum Answer {
    /// The connection was accepted.
    Connected { connection_id: u32 },
    /// A statement without result set.
    Ok { ok: OkInfo, more: bool },
    /// A whole result set.
    Rows {
        columns: Vec<ColumnDef>,
        rows: Vec<Vec<Value>>,
        status: u16,
        more: bool,
    },
    /// COM_STMT_PREPARE succeeded.
    Prepared { stmt_id: u32, params: u16 },
    /// ERR; `rows_before`: rows of a result set received before the ERR replaced its end.
    Error {
        error: SqlError,
        rows_before: Option<usize>,
    },
    /// The connection is gone (closed by the server, or a protocol failure).
    Closed(SqlError),
}

impl Answer {
    /// Does another result of the same command follow?
    pub fn more(&self) -> bool {
        match self {
            Answer::Ok { more, .. } | Answer::Rows { more, .. } => *more,
            _ => false,
        }
    }

    /// Plain-text description for failure messages.
    pub fn describe(&self) -> String {
        let more = if self.more() {
            " (more results follow)"
        } else {
            ""
        };
        match self {
            Answer::Connected { connection_id } => {
                format!("connected as connection {connection_id}")
            }
            Answer::Ok { ok, .. } => format!("{}{more}", render::ok(ok)),
            Answer::Rows {
                rows, status: st, ..
            } => format!(
                "{} row(s), EOF status={}{more}",
                rows.len(),
                render::status_flags(*st)
            ),
            Answer::Prepared { stmt_id, params } => {
                format!("prepared stmt={stmt_id} params={params}")
            }
            Answer::Error {
                error,
                rows_before: Some(n),
            } => {
                format!("{} after {n} row(s)", render::err(error))
            }
            Answer::Error { error, .. } => render::err(error),
            Answer::Closed(e) => format!("connection closed: {}", render::err(e)),
        }
    }
}

/// One scripted client connection. See the module docs.
pub struct ScriptedClient {
    conn: BackendConn,
    building: Option<(Vec<ColumnDef>, Vec<Vec<Value>>)>,
    /// The current command's rows are binary (COM_STMT_EXECUTE).
    binary: bool,
    answers: VecDeque<Answer>,
    /// Rows the client could not decode (a protocol failure of the server).
    pub violations: Vec<String>,
}

impl ScriptedClient {
    pub fn new(user: &str, password: &str, database: Option<&str>) -> ScriptedClient {
        ScriptedClient {
            conn: BackendConn::new(BackendConfig {
                user: user.to_string(),
                password: password.to_string(),
                database: database.map(str::to_string),
                max_packet: 0,
                found_rows: false,
                tls: None,
            }),
            building: None,
            binary: false,
            answers: VecDeque::new(),
            violations: Vec::new(),
        }
    }

    /// Ready for a command (connected and not waiting for an answer)?
    pub fn is_idle(&self) -> bool {
        self.conn.is_idle()
    }

    pub fn is_closed(&self) -> bool {
        self.conn.is_closed()
    }

    /// COM_QUERY (a multi-statement batch is just SQL with `;`).
    pub fn query(&mut self, sql: &str) -> Result<(), SqlError> {
        self.conn.query(sql)?;
        self.binary = false;
        Ok(())
    }

    pub fn prepare(&mut self, sql: &str) -> Result<(), SqlError> {
        self.conn.prepare(sql)?;
        self.binary = false;
        Ok(())
    }

    pub fn execute(&mut self, stmt_id: u32, params: &[Value]) -> Result<(), SqlError> {
        self.conn.execute(stmt_id, params)?;
        self.binary = true;
        Ok(())
    }

    /// Sends COM_QUIT; the connection is over.
    pub fn quit(&mut self) {
        self.conn.quit();
    }

    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        self.conn.poll_transmit()
    }

    pub fn handle_input(&mut self, data: &[u8]) {
        self.conn.handle_input(data);
        self.collect();
    }

    pub fn handle_close(&mut self) {
        self.conn.handle_close();
        self.collect();
    }

    /// The oldest answer not yet taken.
    pub fn next_answer(&mut self) -> Option<Answer> {
        self.answers.pop_front()
    }

    pub fn pending_answers(&self) -> usize {
        self.answers.len()
    }

    fn collect(&mut self) {
        while let Some(ev) = self.conn.poll_event() {
            match ev {
                BackendEvent::Connected { connection_id, .. } => {
                    self.answers.push_back(Answer::Connected { connection_id })
                }
                BackendEvent::Columns(cols) => self.building = Some((cols.to_vec(), Vec::new())),
                BackendEvent::Relayed { .. } => {
                    // This client never asks for a relay: its answers are checked decoded.
                    self.violations
                        .push("relayed packets nobody asked for".into())
                }
                BackendEvent::Row(payload) => {
                    let binary = self.binary;
                    if let Some((cols, rows)) = &mut self.building {
                        let decoded = if binary {
                            decode_binary_row(cols, &payload)
                        } else {
                            TextRow::new(&payload).to_values(&payload)
                        };
                        match decoded {
                            Ok(values) => rows.push(values),
                            Err(e) => {
                                self.violations.push(format!("undecodable row: {e}"));
                                rows.push(Vec::new());
                            }
                        }
                    }
                }
                BackendEvent::Done {
                    status: st, more, ..
                } => {
                    let (columns, rows) = self.building.take().unwrap_or_default();
                    self.answers.push_back(Answer::Rows {
                        columns,
                        rows,
                        status: st,
                        more,
                    });
                }
                BackendEvent::Ok { ok, more } => self.answers.push_back(Answer::Ok { ok, more }),
                BackendEvent::Prepared {
                    stmt_id, params, ..
                } => self.answers.push_back(Answer::Prepared { stmt_id, params }),
                BackendEvent::Error(error) => {
                    let rows_before = self.building.take().map(|(_, r)| r.len());
                    self.answers.push_back(Answer::Error { error, rows_before });
                }
                BackendEvent::Closed(e) => {
                    self.building = None;
                    self.answers.push_back(Answer::Closed(e));
                }
            }
        }
    }
}

/// Whether a status carries MORE_RESULTS (helper for worlds that read raw answers).
pub fn has_more(st: u16) -> bool {
    st & status::MORE_RESULTS_EXISTS != 0
}
