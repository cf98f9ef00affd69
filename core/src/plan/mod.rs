//! The planner: a parsed statement becomes a [`Plan`] — pure, cacheable, and rendered as one
//! text tree used by snapshots and `EXPLAIN FORMAT=shardgate`.
//!
//! Plans are built from the *normalized* statement (literals replaced by placeholders named
//! `:N`, see `sql::normalize`), so one plan serves every execution of the same statement shape;
//! [`Bindings`] supply the literals of one execution. Where a route sends the statement
//! unchanged, the original text goes to the shard as is (no re-rendering, exact column names).

mod builder;
mod cache;
mod entry;
mod join;
mod merge;
mod render;
mod resolve;
mod scope;

pub use builder::{plan_statement, PlanContext, Target};
pub use cache::{CacheStats, PlanCache};
pub use entry::{plan_sql, Planned};
pub use join::{JoinKind, JoinPlan, Side};
pub use merge::HIDDEN_BASE;
pub use render::explain;
pub use resolve::{limit_value, ShardQuery};

use crate::exec::MergeSpec;
use crate::sql::{Literal, LiteralKind};
use crate::vschema::{Vindex, VindexValue};
use crate::wire::Value;
use crate::SqlError;
use sqlparser::ast::Statement;
use std::sync::Arc;

/// How a route picks its shards (the names Vitess uses).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Opcode {
    /// An unsharded keyspace: its only shard.
    Unsharded,
    /// Equality on a unique vindex: exactly one shard.
    EqualUnique,
    /// IN on a unique vindex: the shards of the values, each with its pruned IN list.
    In,
    /// No usable vindex predicate: every shard.
    Scatter,
    /// Reference tables only: any one shard (the first, for determinism).
    Reference,
    /// DDL and session-wide statements: every shard, unchanged.
    AllShards,
    /// The session targets one shard (`USE ks:-80`, `ks[ksid]`): that shard, unchanged.
    ByDestination,
    /// Nothing can match (e.g. `id IN (NULL)`): no shard; an empty result.
    None,
}

impl Opcode {
    pub fn name(self) -> &'static str {
        match self {
            Opcode::Unsharded => "Unsharded",
            Opcode::EqualUnique => "EqualUnique",
            Opcode::In => "IN",
            Opcode::Scatter => "Scatter",
            Opcode::Reference => "Reference",
            Opcode::AllShards => "AllShards",
            Opcode::ByDestination => "ByDestination",
            Opcode::None => "None",
        }
    }
}

/// A value the route needs at execution time.
#[derive(Clone, Debug, PartialEq)]
pub enum ValueRef {
    /// The N-th literal of the executed statement.
    Param(usize),
    /// Negated N-th literal (`-?`).
    NegParam(usize),
    Const(Value),
}

/// `ValueRef::Param(JOIN_VAR_BASE + n)` is the join variable `:vn`: a left-row value bound into
/// the right side of a [`JoinPlan`] ([`Bindings::join_values`]).
pub const JOIN_VAR_BASE: usize = 1 << 24;

/// A value of a left row bound into the right side of a join.
#[derive(Clone, Debug, PartialEq)]
pub struct JoinValue {
    pub value: Value,
    /// From a numeric column: written unquoted in the right side's SQL.
    pub numeric: bool,
}

/// One route: a keyspace, how to pick shards, what SQL to send, how to merge.
#[derive(Clone, Debug)]
pub struct Route {
    pub opcode: Opcode,
    pub keyspace: String,
    /// Tables involved, for the plan rendering and the query log.
    pub tables: Vec<String>,
    /// What text goes to the shards.
    pub sql: ShardSql,
    /// EqualUnique / IN: the vindex and the values to map.
    pub vindex: Option<Arc<dyn Vindex>>,
    pub values: Vec<ValueRef>,
    /// IN: the column whose IN list is pruned per shard.
    pub in_column: Option<String>,
    /// ByDestination: the fixed shard indexes.
    pub destination: Vec<usize>,
    /// What the gateway does with the rows.
    pub merge: MergeSpec,
    /// LIMIT count and offset taken from the statement (bound at execution).
    pub limit: Option<(ValueRef, ValueRef)>,
    /// HAVING conditions evaluated at the gateway: (column, operator, value).
    pub having: Vec<(usize, crate::exec::CmpOp, ValueRef)>,
    /// Columns appended to the select list for the merge (ORDER BY / GROUP BY / HAVING keys
    /// the client did not select), dropped before the client sees the rows. After a `*` the
    /// merge numbers them from [`HIDDEN_BASE`] until the column count is known; see
    /// [`Route::merge_spec_for`].
    pub hidden_columns: usize,
    /// Is the statement a write (for transaction bookkeeping and the query log)?
    pub is_write: bool,
}

/// The SQL a route sends.
// Plans live behind an `Arc` in the plan cache, built once per statement shape: a boxed
// `Statement` would save no copy worth an indirection.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum ShardSql {
    /// The executed statement's own text, untouched (exact column names, no re-rendering).
    Original,
    /// A rewritten statement with `:N` placeholders, rendered per execution.
    Template(Statement),
    /// Fixed text (statements the parser cannot represent).
    Fixed(String),
}

impl Route {
    /// The statement to rewrite: the current template, or the given original.
    pub fn template(&self, original: &Statement) -> Statement {
        match &self.sql {
            ShardSql::Template(t) => t.clone(),
            _ => original.clone(),
        }
    }

    /// The template's query, when the template is a query.
    pub fn template_query(&self) -> Option<sqlparser::ast::Query> {
        match &self.sql {
            ShardSql::Template(Statement::Query(q)) => Some((**q).clone()),
            _ => None,
        }
    }
}

/// An INSERT into a sharded table: each row to the shard of its keyspace id.
#[derive(Clone, Debug)]
pub struct InsertPlan {
    pub keyspace: String,
    pub table: String,
    /// The statement with all rows (`:N` placeholders); split per shard at execution.
    pub query: Statement,
    pub vindex: Arc<dyn Vindex>,
    /// Per row: the value of the primary vindex column (None: comes from the sequence).
    pub row_values: Vec<Option<ValueRef>>,
    /// The auto-increment column filled from a sequence, if the statement omitted it.
    pub sequence: Option<SequenceFill>,
}

/// Where a missing auto-increment value comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SequenceFill {
    pub column: String,
    pub keyspace: String,
    pub table: String,
}

/// Something the gateway answers itself.
#[derive(Clone, Debug, PartialEq)]
pub enum Local {
    /// A one-row result of gateway-known expressions (`select database(), @@version`).
    Row {
        columns: Vec<(String, LocalExpr)>,
    },
    ShowKeyspaces,
    ShowShards,
    ShowTablets,
    /// `SHOW [SESSION] STATUS LIKE 'ssl...'`: Ssl_cipher and Ssl_version of the client's
    /// connection, filtered by the pattern.
    SslStatus(String),
    /// EXPLAIN FORMAT=shardgate / vexplain plan: the rendered plan as rows.
    Explain(String),
    /// A statement accepted and ignored (e.g. `SET NAMES` on a sharded keyspace).
    Ok,
}

/// Expressions the gateway evaluates.
#[derive(Clone, Debug, PartialEq)]
pub enum LocalExpr {
    Database,
    LastInsertId,
    ConnectionId,
    Version,
    VersionComment,
    Literal(Value),
}

/// Transaction control.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TxnOp {
    Begin,
    Commit,
    Rollback,
    /// `SAVEPOINT name`: sent to every participating shard and replayed on shards that join
    /// the transaction later (the name as written, unquoted).
    Savepoint(String),
    /// `ROLLBACK [WORK] TO [SAVEPOINT] name` on every participating shard.
    RollbackTo(String),
    /// `RELEASE SAVEPOINT name` on every participating shard.
    Release(String),
}

impl TxnOp {
    /// The statement sent to shards (names quoted with backticks).
    pub fn shard_sql(&self) -> String {
        fn quote(name: &str) -> String {
            format!("`{}`", name.replace('`', "``"))
        }
        match self {
            TxnOp::Begin => "BEGIN".into(),
            TxnOp::Commit => "COMMIT".into(),
            TxnOp::Rollback => "ROLLBACK".into(),
            TxnOp::Savepoint(n) => format!("SAVEPOINT {}", quote(n)),
            TxnOp::RollbackTo(n) => format!("ROLLBACK TO SAVEPOINT {}", quote(n)),
            TxnOp::Release(n) => format!("RELEASE SAVEPOINT {}", quote(n)),
        }
    }
}

/// What to do for one statement.
// Cached behind an `Arc` (see `ShardSql`): the size difference of the variants costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum Plan {
    Route(Route),
    Insert(InsertPlan),
    Local(Local),
    /// `USE` with target syntax.
    Use(Target),
    Transaction(TxnOp),
    /// Session-wide statement (SET …): remembered and sent to every backend of the session.
    SessionSet {
        sql: String,
    },
    /// A nested-loop join at the gateway over two routes.
    Join(Box<JoinPlan>),
}

impl Plan {
    /// The plan's name for the query log and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Plan::Route(r) => r.opcode.name(),
            Plan::Insert(_) => "Insert",
            Plan::Local(_) => "Local",
            Plan::Use(_) => "Use",
            Plan::Transaction(_) => "Transaction",
            Plan::SessionSet { .. } => "Set",
            Plan::Join(_) => "Join",
        }
    }

    /// The text tree shown by EXPLAIN and the planner snapshots.
    pub fn render(&self) -> String {
        render::render(self)
    }
}

/// The literals of one execution.
#[derive(Clone, Copy, Debug)]
pub struct Bindings<'a> {
    pub original: &'a str,
    pub literals: &'a [Literal],
    /// A join's right side: the current left row's values for `:v0`, `:v1`, …
    pub join_values: &'a [JoinValue],
}

impl<'a> Bindings<'a> {
    pub fn none(original: &'a str) -> Self {
        Bindings {
            original,
            literals: &[],
            join_values: &[],
        }
    }

    /// The N-th literal as a value (integers as integers, everything else as text).
    pub fn value(&self, i: usize) -> Result<Value, SqlError> {
        if let Some(n) = i.checked_sub(JOIN_VAR_BASE) {
            return self
                .join_values
                .get(n)
                .map(|v| v.value.clone())
                .ok_or_else(|| SqlError::internal(format!("missing join value :v{n}")));
        }
        let lit = self
            .literals
            .get(i)
            .ok_or_else(|| SqlError::internal(format!("missing bind value :{i}")))?;
        let raw = lit.value(self.original);
        Ok(match lit.kind {
            LiteralKind::Integer => {
                let s = std::str::from_utf8(&raw).unwrap_or("0");
                match s.parse::<i64>() {
                    Ok(i) => Value::Int(i),
                    Err(_) => s
                        .parse::<u64>()
                        .map(Value::UInt)
                        .unwrap_or_else(|_| Value::Bytes(raw.into())),
                }
            }
            // `1.0` equals the integer 1 (MySQL compares numerically), so it must map to the
            // same keyspace id.
            LiteralKind::Decimal => {
                let s = std::str::from_utf8(&raw).unwrap_or("");
                match s.split_once('.') {
                    Some((int, frac)) if !frac.is_empty() && frac.bytes().all(|c| c == b'0') => int
                        .parse::<i64>()
                        .map(Value::Int)
                        .unwrap_or_else(|_| Value::Bytes(raw.into())),
                    _ => Value::Bytes(raw.into()),
                }
            }
            _ => Value::Bytes(raw.into()),
        })
    }

    /// The N-th literal as SQL text, exactly as written.
    pub fn raw(&self, i: usize) -> Option<&'a str> {
        self.literals
            .get(i)
            .and_then(|l| self.original.get(l.span.clone()))
    }

    pub fn resolve(&self, v: &ValueRef) -> Result<Value, SqlError> {
        match v {
            ValueRef::Const(c) => Ok(c.clone()),
            ValueRef::Param(i) => self.value(*i),
            ValueRef::NegParam(i) => Ok(match self.value(*i)? {
                Value::Int(x) => Value::Int(x.wrapping_neg()),
                Value::UInt(u) if u <= i64::MAX as u64 + 1 => Value::Int((u as i64).wrapping_neg()),
                Value::Bytes(b) => {
                    let mut n = b"-".to_vec();
                    n.extend_from_slice(&b);
                    Value::Bytes(n.into())
                }
                other => other,
            }),
        }
    }

    /// The N-th literal as a vindex input (numbers as numbers, strings as bytes).
    pub fn vindex_value(&self, v: &ValueRef) -> Result<Option<VindexValue>, SqlError> {
        let val = self.resolve(v)?;
        if val.is_null() {
            return Ok(None);
        }
        VindexValue::from_wire(&val)
            .map(Some)
            .map_err(|e| SqlError::new(1105, "HY000", format!("cannot compute keyspace id: {e}")))
    }

    /// Renders a statement with its `:N` placeholders replaced by this execution's literals.
    pub fn render(&self, stmt: &Statement) -> Result<String, SqlError> {
        let mut s = stmt.clone();
        self.substitute(&mut s)?;
        Ok(s.to_string())
    }

    /// Replaces `:N` placeholders in place.
    pub fn substitute(&self, stmt: &mut Statement) -> Result<(), SqlError> {
        use sqlparser::ast::{visit_expressions_mut, Expr, Value as AstValue};
        use std::ops::ControlFlow;
        let mut err = None;
        let _ = visit_expressions_mut(stmt, |e| {
            if let Expr::Value(v) = e {
                if let AstValue::Placeholder(p) = &v.value {
                    if let Some(i) = placeholder_index(p) {
                        // Join variables without values (EXPLAIN) stay as they are.
                        if i >= JOIN_VAR_BASE && i - JOIN_VAR_BASE >= self.join_values.len() {
                            return ControlFlow::Continue(());
                        }
                        match self.literal_expr(i) {
                            Ok(x) => *e = x,
                            Err(x) => {
                                err = Some(x);
                                return ControlFlow::Break(());
                            }
                        }
                    }
                }
            }
            ControlFlow::Continue(())
        });
        err.map_or(Ok(()), Err)
    }

    fn literal_expr(&self, i: usize) -> Result<sqlparser::ast::Expr, SqlError> {
        use sqlparser::ast::{Expr, Value as AstValue};
        if let Some(n) = i.checked_sub(JOIN_VAR_BASE) {
            let jv = self
                .join_values
                .get(n)
                .ok_or_else(|| SqlError::internal(format!("missing join value :v{n}")))?;
            return Ok(match &jv.value {
                Value::Bytes(b) if jv.numeric => match std::str::from_utf8(b) {
                    Ok(t)
                        if !t.is_empty()
                            && t.bytes()
                                .all(|c| c.is_ascii_digit() || b"+-.eE".contains(&c)) =>
                    {
                        Expr::value(AstValue::Number(t.to_string(), false))
                    }
                    _ => crate::sql::literal(&jv.value),
                },
                other => crate::sql::literal(other),
            });
        }
        let lit = self
            .literals
            .get(i)
            .ok_or_else(|| SqlError::internal(format!("missing bind value :{i}")))?;
        match lit.kind {
            LiteralKind::String => Ok(crate::sql::literal(&Value::Bytes(
                lit.value(self.original).into(),
            ))),
            _ => Ok(Expr::value(AstValue::Number(
                self.raw(i).unwrap_or("0").to_string(),
                false,
            ))),
        }
    }
}

#[cfg(test)]
mod tests;

/// The index a placeholder stands for: `:N` is literal N, `:vN` join variable N.
pub(crate) fn placeholder_index(p: &str) -> Option<usize> {
    let rest = p.strip_prefix(':')?;
    match rest.strip_prefix('v') {
        Some(n) => n.parse::<usize>().ok().map(|n| JOIN_VAR_BASE + n),
        None => rest.parse().ok(),
    }
}
