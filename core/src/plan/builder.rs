//! Statement → [`Plan`]. Pure: reads the vschema and topology, never a connection.
//!
//! The rules, in Vitess's terms:
//! - unsharded keyspaces pass through untouched;
//! - equality on a unique vindex → one shard; IN → the shards of its values, IN list pruned;
//!   no vindex predicate → scatter with the merge the statement needs;
//! - reference tables: reads go to any one shard (or ride along with the other side of a
//!   join); writes go to the declared `source`, else ERR 1173;
//! - INSERT: a keyspace id per row; UPDATE/DELETE routed like reads; changing a primary
//!   vindex column is refused; DDL goes to every shard of the keyspace.

use super::{
    InsertPlan, Local, LocalExpr, Opcode, Plan, Route, SequenceFill, ShardSql, TxnOp, ValueRef,
};
use crate::error::codes;
use crate::exec::{AggFunc, Aggregate, CmpOp, MergeSpec, SortKey};
use crate::gateway::Topology;
use crate::vschema::{KeyspaceSchema, TableKind, TableSchema, VSchema};
use crate::wire::Value;
use crate::SqlError;
use sqlparser::ast::{
    BinaryOperator, Expr, FunctionArg, FunctionArgExpr, FunctionArguments, GroupByExpr,
    LimitClause, ObjectName, ObjectNamePart, OrderByKind, Query, Select, SelectItem, SetExpr,
    Statement, TableFactor, TableObject, TableWithJoins, UnaryOperator, Value as AstValue,
};

/// Column indexes at or above this denote hidden columns appended for the merge, counted
/// from the first hidden column (resolved by the merger once the column count is known).
pub const HIDDEN_BASE: usize = 1 << 30;

/// Where a session's statements go (`USE` target syntax).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Target {
    pub keyspace: Option<String>,
    /// `ks:-80`: one named shard.
    pub shard: Option<String>,
    /// `ks[deadbeef]`: the shard owning this keyspace id.
    pub keyspace_id: Option<Vec<u8>>,
    /// `@primary`, `@replica`, `@rdonly` (primary when absent).
    pub tablet_type: Option<String>,
}

impl Target {
    /// Parses `ks`, `ks@replica`, `ks:-80`, `ks:-80@rdonly`, `ks[deadbeef]`.
    pub fn parse(s: &str) -> Result<Target, SqlError> {
        let bad = || {
            SqlError::new(
                codes::ER_BAD_DB_ERROR,
                "42000",
                format!("Unknown database '{s}'"),
            )
        };
        let (rest, tablet_type) = match s.rsplit_once('@') {
            Some((r, t)) => {
                let t = t.to_ascii_lowercase();
                if !matches!(t.as_str(), "primary" | "master" | "replica" | "rdonly") {
                    return Err(SqlError::new(
                        1105,
                        "HY000",
                        format!("invalid tablet type: {t}"),
                    ));
                }
                (
                    r,
                    Some(if t == "master" {
                        "primary".to_string()
                    } else {
                        t
                    }),
                )
            }
            None => (s, None),
        };
        let mut t = Target {
            tablet_type,
            ..Default::default()
        };
        if let Some(open) = rest.find('[') {
            let close = rest.strip_suffix(']').ok_or_else(bad)?;
            t.keyspace = Some(rest[..open].to_string());
            let hex = &close[open + 1..];
            t.keyspace_id =
                Some(crate::vschema::keyrange::parse_keyspace_id(hex).map_err(|_| bad())?);
        } else if let Some((ks, shard)) = rest.split_once(':') {
            t.keyspace = Some(ks.to_string());
            t.shard = Some(shard.to_string());
        } else if !rest.is_empty() {
            t.keyspace = Some(rest.to_string());
        }
        Ok(t)
    }

    /// The text `select database()` shows.
    pub fn display(&self) -> Option<String> {
        let ks = self.keyspace.as_ref()?;
        let mut s = ks.clone();
        if let Some(sh) = &self.shard {
            s.push(':');
            s.push_str(sh);
        }
        if let Some(id) = &self.keyspace_id {
            s.push('[');
            s.push_str(&crate::vschema::keyrange::hex(id));
            s.push(']');
        }
        if let Some(tt) = &self.tablet_type {
            s.push('@');
            s.push_str(tt);
        }
        Some(s)
    }
}

/// What planning reads.
#[derive(Clone, Copy, Debug)]
pub struct PlanContext<'a> {
    pub vschema: &'a VSchema,
    pub topology: &'a Topology,
    pub target: &'a Target,
}

fn unsupported(what: impl Into<String>) -> SqlError {
    SqlError::unsupported(format!("unsupported: {}", what.into()))
}

/// Plans one parsed (normalized) statement.
pub fn plan_statement(stmt: &Statement, ctx: &PlanContext<'_>) -> Result<Plan, SqlError> {
    if ctx.target.shard.is_some() || ctx.target.keyspace_id.is_some() {
        if let Some(p) = plan_session_statement(stmt, ctx)? {
            return Ok(p);
        }
        return plan_by_destination(stmt, ctx);
    }
    if let Some(p) = plan_session_statement(stmt, ctx)? {
        return Ok(p);
    }
    match stmt {
        Statement::Query(q) => plan_query(stmt, q, ctx),
        Statement::Insert(_) => plan_insert(stmt, ctx),
        Statement::Update(_) | Statement::Delete(_) => plan_update_delete(stmt, ctx),
        Statement::CreateTable(_)
        | Statement::AlterTable(_)
        | Statement::Drop { .. }
        | Statement::CreateIndex(_)
        | Statement::Truncate(_)
        | Statement::CreateView(_) => plan_ddl(stmt, ctx),
        Statement::ShowTables { .. }
        | Statement::ShowColumns { .. }
        | Statement::ShowVariables { .. }
        | Statement::ShowStatus { .. } => any_shard_of_target(ctx),
        Statement::ExplainTable { .. } => any_shard_of_target(ctx),
        _ => match target_keyspace(ctx) {
            Some(ks) if !ks.sharded => {
                Ok(Plan::Route(passthrough(ks.name.clone(), Opcode::Unsharded)))
            }
            _ => Err(unsupported(format!(
                "statement on a sharded keyspace: {}",
                first_words(stmt)
            ))),
        },
    }
}

fn first_words(stmt: &Statement) -> String {
    stmt.to_string()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Statements about the session itself, whatever the target.
fn plan_session_statement(
    stmt: &Statement,
    ctx: &PlanContext<'_>,
) -> Result<Option<Plan>, SqlError> {
    Ok(Some(match stmt {
        Statement::Use(u) => {
            use sqlparser::ast::Use;
            let name = match u {
                Use::Object(n) | Use::Database(n) | Use::Schema(n) => object_name_raw(n),
                _ => return Err(unsupported("USE form")),
            };
            let t = Target::parse(&name)?;
            if let Some(ks) = &t.keyspace {
                if !ctx.topology.keyspaces.contains_key(ks) {
                    return Err(SqlError::new(
                        codes::ER_BAD_DB_ERROR,
                        "42000",
                        format!("Unknown database '{ks}'"),
                    ));
                }
                if let Some(sh) = &t.shard {
                    let known = ctx
                        .topology
                        .keyspaces
                        .get(ks)
                        .is_some_and(|k| k.shards.iter().any(|s| &s.name == sh));
                    if !known {
                        return Err(SqlError::new(
                            codes::ER_BAD_DB_ERROR,
                            "42000",
                            format!("Unknown database '{name}' (no shard {sh})"),
                        ));
                    }
                }
            }
            Plan::Use(t)
        }
        Statement::StartTransaction { .. } => Plan::Transaction(TxnOp::Begin),
        Statement::Commit { .. } => Plan::Transaction(TxnOp::Commit),
        Statement::Rollback {
            savepoint: None, ..
        } => Plan::Transaction(TxnOp::Rollback),
        Statement::Set(_) => Plan::SessionSet {
            sql: stmt.to_string(),
        },
        Statement::ShowDatabases { .. } => Plan::Local(Local::ShowKeyspaces),
        Statement::ShowVariable { variable } => {
            let name: Vec<String> = variable
                .iter()
                .map(|i| i.value.to_ascii_lowercase())
                .collect();
            match name.join(" ").as_str() {
                "keyspaces" | "databases" => Plan::Local(Local::ShowKeyspaces),
                "vitess_shards" => Plan::Local(Local::ShowShards),
                "vitess_tablets" => Plan::Local(Local::ShowTablets),
                _ => return Ok(None),
            }
        }
        Statement::Query(q) => match local_select(q) {
            Some(cols) => Plan::Local(Local::Row { columns: cols }),
            None => return Ok(None),
        },
        _ => return Ok(None),
    }))
}

/// `select database(), @@version, 1` — expressions the gateway answers itself.
fn local_select(q: &Query) -> Option<Vec<(String, LocalExpr)>> {
    let SetExpr::Select(s) = q.body.as_ref() else {
        return None;
    };
    if !s.from.is_empty() || s.selection.is_some() || q.order_by.is_some() {
        return None;
    }
    let mut cols = Vec::new();
    let mut gateway_only = false;
    for item in &s.projection {
        let (expr, name) = match item {
            SelectItem::UnnamedExpr(e) => (e, e.to_string()),
            SelectItem::ExprWithAlias { expr, alias } => (expr, alias.value.clone()),
            _ => return None,
        };
        let le = match expr {
            Expr::Function(f)
                if matches!(&f.args, FunctionArguments::List(l) if l.args.is_empty())
                    || matches!(f.args, FunctionArguments::None) =>
            {
                match f.name.to_string().to_ascii_lowercase().as_str() {
                    "database" | "schema" => LocalExpr::Database,
                    "last_insert_id" => LocalExpr::LastInsertId,
                    "connection_id" => LocalExpr::ConnectionId,
                    "version" => LocalExpr::Version,
                    _ => return None,
                }
            }
            Expr::Identifier(i) => match i.value.to_ascii_lowercase().as_str() {
                "@@version" => LocalExpr::Version,
                "@@version_comment" => LocalExpr::VersionComment,
                _ => return None,
            },
            _ => return None,
        };
        gateway_only = true;
        cols.push((name, le));
    }
    gateway_only.then_some(cols)
}

/// The raw text of a possibly quoted name (`ks@replica` arrives as one identifier).
fn object_name_raw(n: &ObjectName) -> String {
    n.0.iter()
        .filter_map(|p| match p {
            ObjectNamePart::Identifier(i) => Some(i.value.clone()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join(".")
}

fn target_keyspace<'a>(ctx: &PlanContext<'a>) -> Option<&'a KeyspaceSchema> {
    let name = ctx
        .target
        .keyspace
        .as_ref()
        .or(Some(&ctx.topology.default_keyspace))?;
    ctx.vschema.keyspaces.get(name)
}

fn target_keyspace_name(ctx: &PlanContext<'_>) -> String {
    ctx.target
        .keyspace
        .clone()
        .unwrap_or_else(|| ctx.topology.default_keyspace.clone())
}

/// A route that sends the statement unchanged.
fn passthrough(keyspace: String, opcode: Opcode) -> Route {
    Route {
        opcode,
        keyspace,
        tables: Vec::new(),
        sql: ShardSql::Original,
        vindex: None,
        values: Vec::new(),
        in_column: None,
        destination: Vec::new(),
        merge: MergeSpec::default(),
        limit: None,
        having: Vec::new(),
        is_write: false,
    }
}

fn any_shard_of_target(ctx: &PlanContext<'_>) -> Result<Plan, SqlError> {
    let ks = target_keyspace_name(ctx);
    let sharded = ctx.vschema.keyspaces.get(&ks).is_some_and(|k| k.sharded);
    Ok(Plan::Route(passthrough(
        ks,
        if sharded {
            Opcode::Reference
        } else {
            Opcode::Unsharded
        },
    )))
}

fn plan_by_destination(stmt: &Statement, ctx: &PlanContext<'_>) -> Result<Plan, SqlError> {
    let ks = target_keyspace_name(ctx);
    let keyspace = ctx.topology.keyspaces.get(&ks).ok_or_else(|| {
        SqlError::new(
            codes::ER_BAD_DB_ERROR,
            "42000",
            format!("Unknown database '{ks}'"),
        )
    })?;
    let idx = if let Some(sh) = &ctx.target.shard {
        keyspace.shards.iter().position(|s| &s.name == sh)
    } else if let Some(id) = &ctx.target.keyspace_id {
        let names: Vec<&str> = keyspace.shards.iter().map(|s| s.name.as_str()).collect();
        crate::vschema::ShardMap::from_names(&names)
            .ok()
            .and_then(|m| m.shard_for(id))
    } else {
        None
    };
    let idx = idx.ok_or_else(|| SqlError::new(1105, "HY000", "target shard not found"))?;
    let mut r = passthrough(ks, Opcode::ByDestination);
    r.destination = vec![idx];
    r.is_write = !matches!(stmt, Statement::Query(_));
    Ok(Plan::Route(r))
}

// ---------------------------------------------------------------- tables

/// A table of the statement, resolved against the vschema.
#[derive(Clone, Debug)]
struct TableRef<'a> {
    keyspace: &'a KeyspaceSchema,
    table: Option<&'a TableSchema>,
    name: String,
    /// The name columns are qualified with (alias or table name), lowercase.
    qualifier: String,
}

/// Resolves `[ks.]table`; tables unknown to the vschema belong to the target keyspace when it
/// is unsharded (unsharded keyspaces need not list their tables, as in Vitess).
fn resolve_table<'a>(
    name: &ObjectName,
    alias: Option<&str>,
    ctx: &PlanContext<'a>,
) -> Result<TableRef<'a>, SqlError> {
    let parts: Vec<String> = name
        .0
        .iter()
        .filter_map(|p| match p {
            ObjectNamePart::Identifier(i) => Some(i.value.clone()),
            _ => None,
        })
        .collect();
    let (ks_name, table) = match parts.as_slice() {
        [t] => (None, t.clone()),
        [k, t] => (Some(k.clone()), t.clone()),
        _ => return Err(unsupported(format!("table name {name}"))),
    };
    let qualifier = alias
        .map(str::to_string)
        .unwrap_or_else(|| table.clone())
        .to_ascii_lowercase();
    let target = ks_name.clone().or_else(|| ctx.target.keyspace.clone());
    match ctx.vschema.find_table(target.as_deref(), &table) {
        Ok((ks, t)) => Ok(TableRef {
            keyspace: ks,
            table: Some(t),
            name: table,
            qualifier,
        }),
        Err(e) => {
            let ks_name = target.unwrap_or_else(|| ctx.topology.default_keyspace.clone());
            match ctx.vschema.keyspaces.get(&ks_name) {
                Some(ks) if !ks.sharded => Ok(TableRef {
                    keyspace: ks,
                    table: None,
                    name: table,
                    qualifier,
                }),
                Some(_) => Err(SqlError::no_such_table(&format!("{ks_name}.{table}"))),
                None if ks_name_is_topology_only(ctx, &ks_name) => {
                    Err(SqlError::no_such_table(&format!("{ks_name}.{table}")))
                }
                None => Err(e.to_sql_error()),
            }
        }
    }
}

fn ks_name_is_topology_only(ctx: &PlanContext<'_>, ks: &str) -> bool {
    ctx.topology.keyspaces.contains_key(ks)
}

/// Removes keyspace qualifiers (`commerce.t` → `t`): shard databases have their own names.
/// Returns whether anything changed.
fn strip_keyspace_qualifiers(stmt: &mut Statement, ctx: &PlanContext<'_>) -> bool {
    use sqlparser::ast::visit_relations_mut;
    use std::ops::ControlFlow;
    let mut changed = false;
    let _ = visit_relations_mut(stmt, |name| {
        if name.0.len() == 2 {
            if let ObjectNamePart::Identifier(i) = &name.0[0] {
                if ctx.topology.keyspaces.contains_key(&i.value) {
                    name.0.remove(0);
                    changed = true;
                }
            }
        }
        ControlFlow::<()>::Continue(())
    });
    changed
}

fn table_factor_name(f: &TableFactor) -> Option<(&ObjectName, Option<String>)> {
    match f {
        TableFactor::Table { name, alias, .. } => {
            Some((name, alias.as_ref().map(|a| a.name.value.clone())))
        }
        _ => None,
    }
}

/// Collects the tables of a FROM clause and the ON conditions of its joins.
fn from_tables<'a>(
    from: &[TableWithJoins],
    ctx: &PlanContext<'a>,
) -> Result<(Vec<TableRef<'a>>, Vec<Expr>), SqlError> {
    use sqlparser::ast::{JoinConstraint, JoinOperator};
    let mut tables = Vec::new();
    let mut conds = Vec::new();
    for twj in from {
        let (name, alias) = table_factor_name(&twj.relation).ok_or_else(|| {
            unsupported("derived tables or table functions on a sharded keyspace")
        })?;
        tables.push(resolve_table(name, alias.as_deref(), ctx)?);
        for j in &twj.joins {
            let (name, alias) = table_factor_name(&j.relation)
                .ok_or_else(|| unsupported("derived tables in joins on a sharded keyspace"))?;
            tables.push(resolve_table(name, alias.as_deref(), ctx)?);
            let constraint = match &j.join_operator {
                JoinOperator::Join(c) | JoinOperator::Inner(c) => Some(c),
                JoinOperator::CrossJoin(c) => Some(c),
                JoinOperator::Left(c)
                | JoinOperator::LeftOuter(c)
                | JoinOperator::Right(c)
                | JoinOperator::RightOuter(c) => Some(c),
                _ => None,
            };
            if let Some(JoinConstraint::On(e)) = constraint {
                conds.push(e.clone());
            }
        }
    }
    Ok((tables, conds))
}

// ---------------------------------------------------------------- predicates

/// Top-level AND conjuncts.
fn conjuncts(e: &Expr, out: &mut Vec<Expr>) {
    match e {
        Expr::BinaryOp {
            left,
            op: BinaryOperator::And,
            right,
        } => {
            conjuncts(left, out);
            conjuncts(right, out);
        }
        Expr::Nested(inner) => conjuncts(inner, out),
        other => out.push(other.clone()),
    }
}

/// A column reference: (qualifier if any, column), lowercase.
fn column_of(e: &Expr) -> Option<(Option<String>, String)> {
    match e {
        Expr::Identifier(i) => Some((None, i.value.to_ascii_lowercase())),
        Expr::CompoundIdentifier(p) if p.len() == 2 => Some((
            Some(p[0].value.to_ascii_lowercase()),
            p[1].value.to_ascii_lowercase(),
        )),
        Expr::CompoundIdentifier(p) if p.len() == 3 => Some((
            Some(p[1].value.to_ascii_lowercase()),
            p[2].value.to_ascii_lowercase(),
        )),
        Expr::Nested(inner) => column_of(inner),
        _ => None,
    }
}

/// A literal or a bound placeholder.
pub(crate) fn value_of(e: &Expr) -> Option<ValueRef> {
    match e {
        Expr::Value(v) => match &v.value {
            AstValue::Placeholder(p) => p
                .strip_prefix(':')
                .and_then(|n| n.parse().ok())
                .map(ValueRef::Param),
            AstValue::Number(n, _) => Some(ValueRef::Const(match n.parse::<i64>() {
                Ok(i) => Value::Int(i),
                Err(_) => Value::from_str(n),
            })),
            AstValue::SingleQuotedString(s) | AstValue::DoubleQuotedString(s) => {
                Some(ValueRef::Const(Value::from_str(s)))
            }
            AstValue::Null => Some(ValueRef::Const(Value::Null)),
            _ => None,
        },
        Expr::UnaryOp {
            op: UnaryOperator::Minus,
            expr,
        } => match value_of(expr)? {
            ValueRef::Param(i) => Some(ValueRef::NegParam(i)),
            ValueRef::Const(Value::Int(i)) => Some(ValueRef::Const(Value::Int(-i))),
            _ => None,
        },
        Expr::Nested(inner) => value_of(inner),
        _ => None,
    }
}

/// Does `col` (possibly qualified) name column `column` of table `t`?
fn refers_to(
    col: &(Option<String>, String),
    t: &TableRef<'_>,
    column: &str,
    single_table: bool,
) -> bool {
    col.1 == column
        && match &col.0 {
            Some(q) => *q == t.qualifier,
            None => single_table,
        }
}

/// How one sharded table is reached, from the predicates.
#[derive(Clone, Debug)]
enum Access {
    Equal(ValueRef),
    In(Vec<ValueRef>, String),
    Scatter,
}

fn table_access(t: &TableRef<'_>, preds: &[Expr], single_table: bool) -> Access {
    let Some(vcol) = t
        .table
        .and_then(|s| s.primary_vindex())
        .and_then(|cv| cv.columns.first().cloned())
    else {
        return Access::Scatter;
    };
    let mut found_in = None;
    for p in preds {
        match p {
            Expr::BinaryOp {
                left,
                op: BinaryOperator::Eq,
                right,
            } => {
                for (c, v) in [(left, right), (right, left)] {
                    if let (Some(col), Some(val)) = (column_of(c), value_of(v)) {
                        if refers_to(&col, t, &vcol, single_table) {
                            return Access::Equal(val);
                        }
                    }
                }
            }
            Expr::InList {
                expr,
                list,
                negated: false,
            } => {
                if let Some(col) = column_of(expr) {
                    if refers_to(&col, t, &vcol, single_table) {
                        let vals: Option<Vec<ValueRef>> = list.iter().map(value_of).collect();
                        if let Some(v) = vals {
                            found_in = Some(Access::In(v, vcol.clone()));
                        }
                    }
                }
            }
            _ => {}
        }
    }
    found_in.unwrap_or(Access::Scatter)
}

// ---------------------------------------------------------------- SELECT

fn plan_query(stmt: &Statement, q: &Query, ctx: &PlanContext<'_>) -> Result<Plan, SqlError> {
    let select = match q.body.as_ref() {
        SetExpr::Select(s) => s,
        _ => {
            // UNION and friends: fine on an unsharded keyspace, refused on a sharded one.
            return match target_keyspace(ctx) {
                Some(ks) if !ks.sharded => Ok(Plan::Route(stripped(
                    stmt,
                    ks.name.clone(),
                    Opcode::Unsharded,
                    ctx,
                ))),
                _ => Err(unsupported("UNION on a sharded keyspace")),
            };
        }
    };
    if select.from.is_empty() {
        return any_shard_of_target(ctx);
    }
    let (tables, join_conds) = from_tables(&select.from, ctx)?;
    let ks = tables[0].keyspace;
    if let Some(other) = tables
        .iter()
        .find(|t| t.keyspace.name != ks.name && !t.table.is_some_and(|x| x.is_reference()))
    {
        if !(tables[0].table.is_some_and(|x| x.is_reference())) {
            return Err(unsupported(format!(
                "cross-keyspace query ({} and {})",
                ks.name, other.keyspace.name
            )));
        }
    }
    let sharded: Vec<&TableRef<'_>> = tables
        .iter()
        .filter(|t| t.keyspace.sharded && !t.table.is_some_and(|x| x.is_reference()))
        .collect();
    let names: Vec<String> = tables
        .iter()
        .map(|t| format!("{}.{}", t.keyspace.name, t.name))
        .collect();
    if sharded.is_empty() {
        // Unsharded, or reference tables only.
        let route_ks = if ks.sharded {
            ks.name.clone()
        } else {
            ks.name.clone()
        };
        let opcode = if ks.sharded {
            Opcode::Reference
        } else {
            Opcode::Unsharded
        };
        let mut r = stripped(stmt, route_ks, opcode, ctx);
        r.tables = names;
        return Ok(Plan::Route(r));
    }
    let route_ks = sharded[0].keyspace;
    let mut preds = Vec::new();
    if let Some(w) = &select.selection {
        conjuncts(w, &mut preds);
    }
    let mut all_preds = preds.clone();
    for c in &join_conds {
        conjuncts(c, &mut all_preds);
    }
    let single = tables.len() == 1;
    // Several sharded tables form one route only if joined on their primary vindex columns.
    if sharded.len() > 1 {
        for t in &sharded[1..] {
            if !joined_on_vindex(sharded[0], t, &all_preds) {
                return Err(unsupported(format!(
                    "cross-shard join of {} and {} (join them on their primary vindex columns)",
                    sharded[0].name, t.name
                )));
            }
        }
    }
    // The most selective access among the joined sharded tables decides the route.
    let mut access = Access::Scatter;
    let mut vindex = None;
    for t in &sharded {
        let a = table_access(t, &all_preds, single);
        let better = match (&access, &a) {
            (Access::Scatter, Access::In(..) | Access::Equal(_)) => true,
            (Access::In(..), Access::Equal(_)) => true,
            _ => false,
        };
        if better {
            access = a;
            vindex = t
                .table
                .and_then(|s| s.primary_vindex())
                .map(|cv| cv.vindex.clone());
        }
    }
    let mut route = stripped(stmt, route_ks.name.clone(), Opcode::Scatter, ctx);
    route.tables = names;
    match access {
        Access::Equal(v) => {
            route.opcode = Opcode::EqualUnique;
            route.vindex = vindex;
            route.values = vec![v];
            return Ok(Plan::Route(route));
        }
        Access::In(vals, col) => {
            route.opcode = Opcode::In;
            route.vindex = vindex;
            route.values = vals;
            route.in_column = Some(col);
            route.sql = ShardSql::Template(route.template(stmt));
        }
        Access::Scatter => {}
    }
    plan_merge(&mut route, q, select)?;
    Ok(Plan::Route(route))
}

fn joined_on_vindex(a: &TableRef<'_>, b: &TableRef<'_>, preds: &[Expr]) -> bool {
    let (Some(va), Some(vb)) = (
        a.table.and_then(|t| t.primary_vindex()),
        b.table.and_then(|t| t.primary_vindex()),
    ) else {
        return false;
    };
    if va.vindex.type_name() != vb.vindex.type_name() {
        return false;
    }
    let (ca, cb) = (&va.columns[0], &vb.columns[0]);
    preds.iter().any(|p| match p {
        Expr::BinaryOp {
            left,
            op: BinaryOperator::Eq,
            right,
        } => match (column_of(left), column_of(right)) {
            (Some(l), Some(r)) => {
                (refers_to(&l, a, ca, false) && refers_to(&r, b, cb, false))
                    || (refers_to(&l, b, cb, false) && refers_to(&r, a, ca, false))
            }
            _ => false,
        },
        _ => false,
    })
}

fn stripped(stmt: &Statement, keyspace: String, opcode: Opcode, ctx: &PlanContext<'_>) -> Route {
    let mut r = passthrough(keyspace, opcode);
    let mut q = stmt.clone();
    if strip_keyspace_qualifiers(&mut q, ctx) {
        r.sql = ShardSql::Template(q);
    }
    r
}

/// Works out what the gateway must do with the rows of a multi-shard SELECT, rewriting the
/// per-shard query where needed (AVG → SUM + COUNT, LIMIT n OFFSET m → LIMIT m+n, HAVING
/// removed, hidden columns for ORDER BY / GROUP BY keys not in the select list).
fn plan_merge(route: &mut Route, q: &Query, select: &Select) -> Result<(), SqlError> {
    let mut merge = MergeSpec::default();
    let mut sel = select.clone();
    let has_wildcard = sel.projection.iter().any(|i| {
        matches!(
            i,
            SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..)
        )
    });
    let visible = sel.projection.len();
    let mut hidden: Vec<SelectItem> = Vec::new();
    let mut rewritten = false;

    // Aggregates in the select list.
    let mut agg_cols = Vec::new();
    for (i, item) in select.projection.iter().enumerate() {
        let (expr, alias) = match item {
            SelectItem::UnnamedExpr(e) => (e, None),
            SelectItem::ExprWithAlias { expr, alias } => (expr, Some(alias.clone())),
            _ => continue,
        };
        let Some((func, distinct, arg)) = aggregate_of(expr) else {
            if contains_aggregate(expr) {
                return Err(unsupported(format!(
                    "expression over aggregates on a sharded keyspace: {expr}"
                )));
            }
            continue;
        };
        if distinct {
            return Err(unsupported(format!("{func}(DISTINCT …) across shards")));
        }
        let f = match func.as_str() {
            "count" => AggFunc::Count,
            "sum" => AggFunc::Sum,
            "min" => AggFunc::Min,
            "max" => AggFunc::Max,
            "avg" => {
                let Some(arg) = arg else {
                    return Err(unsupported("AVG(*)"));
                };
                // AVG(x) -> SUM(x) shown under the original name, plus a hidden COUNT(x).
                let name = alias
                    .as_ref()
                    .map(|a| a.value.clone())
                    .unwrap_or_else(|| expr.to_string());
                sel.projection[i] = SelectItem::ExprWithAlias {
                    expr: make_fn("sum", arg.clone()),
                    alias: sqlparser::ast::Ident::new(name.clone()),
                };
                hidden.push(SelectItem::UnnamedExpr(make_fn("count", arg)));
                merge.names.push((i, name));
                rewritten = true;
                AggFunc::Avg {
                    count_col: HIDDEN_BASE + hidden.len() - 1,
                }
            }
            _ => continue,
        };
        agg_cols.push(i);
        merge.aggregates.push(Aggregate { col: i, func: f });
    }

    // GROUP BY keys.
    if let GroupByExpr::Expressions(exprs, _) = &select.group_by {
        for e in exprs {
            let col = key_column(e, select, has_wildcard, &mut hidden)?;
            merge.group_by.push(col);
        }
    }
    if !hidden.is_empty() {
        rewritten = true;
    }

    // HAVING: evaluated at the gateway on merged groups; shards must not filter partial groups.
    if let Some(h) = &select.having {
        let mut cs = Vec::new();
        conjuncts(h, &mut cs);
        for c in cs {
            let Expr::BinaryOp { left, op, right } = &c else {
                return Err(unsupported(format!("HAVING {c}")));
            };
            let op = match op {
                BinaryOperator::Eq => CmpOp::Eq,
                BinaryOperator::NotEq => CmpOp::NotEq,
                BinaryOperator::Lt => CmpOp::Lt,
                BinaryOperator::LtEq => CmpOp::LtEq,
                BinaryOperator::Gt => CmpOp::Gt,
                BinaryOperator::GtEq => CmpOp::GtEq,
                _ => return Err(unsupported(format!("HAVING {c}"))),
            };
            let Some(v) = value_of(right) else {
                return Err(unsupported(format!("HAVING {c}")));
            };
            let col = key_column(left, select, has_wildcard, &mut hidden)?;
            route_having(route, col, op, v);
        }
        sel.having = None;
        rewritten = true;
    }

    merge.distinct = matches!(select.distinct, Some(sqlparser::ast::Distinct::Distinct));

    // ORDER BY keys.
    if let Some(ob) = &q.order_by {
        if let OrderByKind::Expressions(items) = &ob.kind {
            for it in items {
                let col = key_column(&it.expr, select, has_wildcard, &mut hidden)?;
                let desc = matches!(it.options.sort, Some(sqlparser::ast::OrderBySort::Desc));
                merge.order_by.push(SortKey { col, desc });
            }
        }
    }
    if hidden.len()
        > merge
            .aggregates
            .iter()
            .filter(|a| matches!(a.func, AggFunc::Avg { .. }))
            .count()
    {
        rewritten = true;
    }

    // LIMIT n OFFSET m -> each shard returns m+n rows; the gateway skips m and keeps n.
    let mut query = match route.template_query() {
        Some(tq) => tq,
        None => q.clone(),
    };
    if let Some(lc) = &q.limit_clause {
        let (count, offset) = match lc {
            LimitClause::LimitOffset {
                limit: Some(l),
                offset,
                ..
            } => (Some(l), offset.as_ref().map(|o| &o.value)),
            LimitClause::OffsetCommaLimit { offset, limit } => (Some(limit), Some(offset)),
            _ => (None, None),
        };
        if let Some(c) = count {
            let c = value_of(c).ok_or_else(|| unsupported("non-literal LIMIT"))?;
            let o = match offset {
                Some(o) => value_of(o).ok_or_else(|| unsupported("non-literal OFFSET"))?,
                None => ValueRef::Const(Value::Int(0)),
            };
            route.limit = Some((c, o));
            rewritten = true;
        }
    }
    if !merge.group_by.is_empty() || !merge.aggregates.is_empty() || merge.distinct {
        // Grouping at the gateway sees every row: the shards must not apply the LIMIT.
        if route.limit.is_some() {
            query.limit_clause = None;
        }
    }
    let n_hidden = hidden.len();
    sel.projection.extend(hidden);
    if n_hidden > 0 {
        merge.visible = Some(visible);
    }
    merge.having = Vec::new();
    if rewritten {
        // Keep the (qualifier-stripped) FROM/WHERE of the template, with the new select list.
        if let SetExpr::Select(tsel) = query.body.as_mut() {
            tsel.projection = sel.projection;
            tsel.having = sel.having;
        }
        route.sql = ShardSql::Template(Statement::Query(Box::new(query)));
    }
    route.merge = merge;
    Ok(())
}

fn route_having(route: &mut Route, col: usize, op: CmpOp, v: ValueRef) {
    route.having.push((col, op, v));
}

/// The select-list position of an ORDER BY / GROUP BY / HAVING expression (by position
/// number, alias, or identical expression), or a hidden column appended for it.
fn key_column(
    e: &Expr,
    select: &Select,
    has_wildcard: bool,
    hidden: &mut Vec<SelectItem>,
) -> Result<usize, SqlError> {
    if let Expr::Value(v) = e {
        if let AstValue::Number(n, _) = &v.value {
            let pos: usize = n.parse().map_err(|_| unsupported("ORDER BY position"))?;
            if pos == 0 || pos > select.projection.len() || has_wildcard {
                return Err(unsupported("ORDER BY position with *"));
            }
            return Ok(pos - 1);
        }
    }
    let text = e.to_string().to_ascii_lowercase();
    if !has_wildcard {
        for (i, item) in select.projection.iter().enumerate() {
            match item {
                SelectItem::ExprWithAlias { expr, alias } => {
                    if alias.value.to_ascii_lowercase() == text
                        || expr.to_string().to_ascii_lowercase() == text
                    {
                        return Ok(i);
                    }
                }
                SelectItem::UnnamedExpr(x) => {
                    let xt = x.to_string().to_ascii_lowercase();
                    if xt == text
                        || (column_of(x).map(|c| c.1) == column_of(e).map(|c| c.1)
                            && column_of(e).is_some()
                            && column_of(e).and_then(|c| c.0).is_none())
                    {
                        return Ok(i);
                    }
                }
                _ => {}
            }
        }
    }
    if let Some(pos) = hidden.iter().position(
        |h| matches!(h, SelectItem::UnnamedExpr(x) if x.to_string().to_ascii_lowercase() == text),
    ) {
        return Ok(HIDDEN_BASE + pos);
    }
    hidden.push(SelectItem::UnnamedExpr(e.clone()));
    Ok(HIDDEN_BASE + hidden.len() - 1)
}

fn make_fn(name: &str, arg: Expr) -> Expr {
    use sqlparser::ast::{Function, FunctionArgumentList, Ident};
    Expr::Function(Function {
        name: ObjectName::from(vec![Ident::new(name)]),
        uses_odbc_syntax: false,
        parameters: FunctionArguments::None,
        args: FunctionArguments::List(FunctionArgumentList {
            duplicate_treatment: None,
            args: vec![FunctionArg::Unnamed(FunctionArgExpr::Expr(arg))],
            clauses: vec![],
        }),
        filter: None,
        null_treatment: None,
        over: None,
        within_group: vec![],
    })
}

/// `count(*)`, `sum(x)`, …: (name, distinct, argument).
fn aggregate_of(e: &Expr) -> Option<(String, bool, Option<Expr>)> {
    let Expr::Function(f) = e else { return None };
    let name = f.name.to_string().to_ascii_lowercase();
    if !matches!(name.as_str(), "count" | "sum" | "min" | "max" | "avg") {
        return None;
    }
    let FunctionArguments::List(l) = &f.args else {
        return None;
    };
    let distinct = matches!(
        l.duplicate_treatment,
        Some(sqlparser::ast::DuplicateTreatment::Distinct)
    );
    let arg = match l.args.first() {
        Some(FunctionArg::Unnamed(FunctionArgExpr::Expr(x))) => Some(x.clone()),
        _ => None,
    };
    Some((name, distinct, arg))
}

fn contains_aggregate(e: &Expr) -> bool {
    use sqlparser::ast::visit_expressions;
    use std::ops::ControlFlow;
    visit_expressions(e, |x| {
        if aggregate_of(x).is_some() {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    })
    .is_break()
}

// ---------------------------------------------------------------- writes

fn plan_insert(stmt: &Statement, ctx: &PlanContext<'_>) -> Result<Plan, SqlError> {
    let Statement::Insert(ins) = stmt else {
        return Err(SqlError::internal("not an insert"));
    };
    let TableObject::TableName(name) = &ins.table else {
        return Err(unsupported("INSERT into a table function"));
    };
    let t = resolve_table(name, None, ctx)?;
    let full = format!("{}.{}", t.keyspace.name, t.name);
    if let Some(ts) = t.table {
        if let TableKind::Reference { source } = &ts.kind {
            return write_to_reference_source(stmt, &t, source.as_ref(), ctx);
        }
        if ts.is_sequence() {
            return Err(SqlError::cant_route(format!(
                "cannot write to sequence table {full} directly"
            )));
        }
    }
    if !t.keyspace.sharded {
        let mut r = stripped(stmt, t.keyspace.name.clone(), Opcode::Unsharded, ctx);
        r.tables = vec![full];
        r.is_write = true;
        return Ok(Plan::Route(r));
    }
    let ts = t.table.ok_or_else(|| SqlError::no_such_table(&full))?;
    let cv = ts
        .primary_vindex()
        .ok_or_else(|| SqlError::cant_route(format!("table {full} has no primary vindex")))?;
    let vcol = cv.columns[0].clone();
    let Some(source) = &ins.source else {
        return Err(unsupported("INSERT … SET on a sharded table"));
    };
    let SetExpr::Values(values) = source.body.as_ref() else {
        return Err(unsupported("INSERT … SELECT into a sharded table"));
    };
    if ins.columns.is_empty() {
        return Err(SqlError::cant_route(format!(
            "INSERT into sharded table {full} needs a column list"
        )));
    }
    let cols: Vec<String> = ins
        .columns
        .iter()
        .map(|c| c.to_string().trim_matches('`').to_ascii_lowercase())
        .collect();
    let vpos = cols.iter().position(|c| *c == vcol);
    let auto = ts.auto_increment.as_ref();
    let auto_missing = auto.filter(|a| !cols.contains(&a.column));
    if vpos.is_none() && auto_missing.is_none_or(|a| a.column != vcol) {
        return Err(SqlError::cant_route(format!(
            "INSERT into {full} must give the primary vindex column '{vcol}'"
        )));
    }
    if let Some(sqlparser::ast::OnInsert::DuplicateKeyUpdate(assigns)) = &ins.on {
        if assigns.iter().any(|a| {
            a.target
                .to_string()
                .trim_matches('`')
                .eq_ignore_ascii_case(&vcol)
        }) {
            return Err(unsupported(format!(
                "ON DUPLICATE KEY UPDATE of the primary vindex column '{vcol}'"
            )));
        }
    }
    let mut row_values = Vec::with_capacity(values.rows.len());
    for row in &values.rows {
        if row.len() != cols.len() {
            return Err(SqlError::new(
                codes::ER_WRONG_VALUE_COUNT_ON_ROW,
                "21S01",
                "Column count doesn't match value count at row 1",
            ));
        }
        match vpos {
            Some(p) => {
                let v = value_of(&row[p]).ok_or_else(|| {
                    SqlError::cant_route(format!(
                        "the value of vindex column '{vcol}' must be a literal"
                    ))
                })?;
                let is_null = matches!(v, ValueRef::Const(Value::Null));
                row_values.push(if is_null && auto.is_some_and(|a| a.column == vcol) {
                    None
                } else {
                    Some(v)
                });
            }
            None => row_values.push(None),
        }
    }
    if row_values
        .iter()
        .any(|v| matches!(v, Some(ValueRef::Const(Value::Null))))
    {
        return Err(SqlError::cant_route(format!(
            "NULL value for vindex column '{vcol}'"
        )));
    }
    let sequence = auto
        .filter(|a| !cols.contains(&a.column) || row_values.iter().any(Option::is_none))
        .map(|a| SequenceFill {
            column: a.column.clone(),
            keyspace: a.sequence.0.clone(),
            table: a.sequence.1.clone(),
        });
    let mut query = stmt.clone();
    strip_keyspace_qualifiers(&mut query, ctx);
    Ok(Plan::Insert(InsertPlan {
        keyspace: t.keyspace.name.clone(),
        table: t.name.clone(),
        query,
        vindex: cv.vindex.clone(),
        row_values,
        sequence,
    }))
}

fn write_to_reference_source(
    stmt: &Statement,
    t: &TableRef<'_>,
    source: Option<&(String, String)>,
    ctx: &PlanContext<'_>,
) -> Result<Plan, SqlError> {
    let full = format!("{}.{}", t.keyspace.name, t.name);
    let Some((src_ks, src_table)) = source else {
        return Err(SqlError::cant_route(format!(
            "cannot write to reference table {full}: it has no source table (declare \"source\" in the vschema)"
        )));
    };
    // The source lives in an unsharded keyspace; rename the table to the source's.
    let mut query = stmt.clone();
    {
        use sqlparser::ast::{visit_relations_mut, Ident};
        use std::ops::ControlFlow;
        let _ = visit_relations_mut(&mut query, |name| {
            let last = name.0.last().and_then(|p| match p {
                ObjectNamePart::Identifier(i) => Some(i.value.to_ascii_lowercase()),
                _ => None,
            });
            if last.as_deref() == Some(t.name.to_ascii_lowercase().as_str()) {
                *name = ObjectName::from(vec![Ident::new(src_table.clone())]);
            }
            ControlFlow::<()>::Continue(())
        });
    }
    let _ = ctx;
    let mut r = passthrough(src_ks.clone(), Opcode::Unsharded);
    r.sql = ShardSql::Template(query);
    r.tables = vec![format!("{src_ks}.{src_table}")];
    r.is_write = true;
    Ok(Plan::Route(r))
}

fn plan_update_delete(stmt: &Statement, ctx: &PlanContext<'_>) -> Result<Plan, SqlError> {
    let (name, alias, selection, assignments, has_order_or_limit) = match stmt {
        Statement::Update(u) => {
            if !u.table.joins.is_empty() || u.from.is_some() {
                return multi_table_write(stmt, ctx);
            }
            let (n, a) =
                table_factor_name(&u.table.relation).ok_or_else(|| unsupported("UPDATE target"))?;
            (
                n,
                a,
                u.selection.as_ref(),
                Some(&u.assignments),
                !u.order_by.is_empty() || u.limit.is_some(),
            )
        }
        Statement::Delete(d) => {
            let from = match &d.from {
                sqlparser::ast::FromTable::WithFromKeyword(f)
                | sqlparser::ast::FromTable::WithoutKeyword(f) => f,
            };
            if from.len() != 1
                || !from[0].joins.is_empty()
                || !d.tables.is_empty()
                || d.using.is_some()
            {
                return multi_table_write(stmt, ctx);
            }
            let (n, a) =
                table_factor_name(&from[0].relation).ok_or_else(|| unsupported("DELETE target"))?;
            (
                n,
                a,
                d.selection.as_ref(),
                None,
                !d.order_by.is_empty() || d.limit.is_some(),
            )
        }
        _ => return Err(SqlError::internal("not an update/delete")),
    };
    let t = resolve_table(name, alias.as_deref(), ctx)?;
    let full = format!("{}.{}", t.keyspace.name, t.name);
    if let Some(ts) = t.table {
        if let TableKind::Reference { source } = &ts.kind {
            return write_to_reference_source(stmt, &t, source.as_ref(), ctx);
        }
    }
    if !t.keyspace.sharded {
        let mut r = stripped(stmt, t.keyspace.name.clone(), Opcode::Unsharded, ctx);
        r.tables = vec![full];
        r.is_write = true;
        return Ok(Plan::Route(r));
    }
    let ts = t.table.ok_or_else(|| SqlError::no_such_table(&full))?;
    if let (Some(assigns), Some(cv)) = (assignments, ts.primary_vindex()) {
        for a in assigns {
            let target = a.target.to_string().to_ascii_lowercase();
            let col = target.rsplit('.').next().unwrap_or("").trim_matches('`');
            if cv.columns.iter().any(|c| c == col) {
                return Err(unsupported(format!(
                    "changing the primary vindex column '{col}' of {full}"
                )));
            }
        }
    }
    let mut preds = Vec::new();
    if let Some(w) = selection {
        conjuncts(w, &mut preds);
    }
    let mut r = stripped(stmt, t.keyspace.name.clone(), Opcode::Scatter, ctx);
    r.tables = vec![full];
    r.is_write = true;
    match table_access(&t, &preds, true) {
        Access::Equal(v) => {
            r.opcode = Opcode::EqualUnique;
            r.vindex = ts.primary_vindex().map(|c| c.vindex.clone());
            r.values = vec![v];
        }
        Access::In(vals, col) => {
            r.opcode = Opcode::In;
            r.vindex = ts.primary_vindex().map(|c| c.vindex.clone());
            r.values = vals;
            r.in_column = Some(col);
            r.sql = ShardSql::Template(r.template(stmt));
        }
        Access::Scatter if has_order_or_limit => {
            return Err(unsupported(
                "multi-shard UPDATE/DELETE with ORDER BY or LIMIT",
            ));
        }
        Access::Scatter => {}
    }
    Ok(Plan::Route(r))
}

fn multi_table_write(stmt: &Statement, ctx: &PlanContext<'_>) -> Result<Plan, SqlError> {
    match target_keyspace(ctx) {
        Some(ks) if !ks.sharded => {
            let mut r = stripped(stmt, ks.name.clone(), Opcode::Unsharded, ctx);
            r.is_write = true;
            Ok(Plan::Route(r))
        }
        _ => Err(unsupported(
            "multi-table UPDATE/DELETE on a sharded keyspace",
        )),
    }
}

fn plan_ddl(stmt: &Statement, ctx: &PlanContext<'_>) -> Result<Plan, SqlError> {
    // The keyspace: from a qualified table name, else the session's.
    let mut ks = target_keyspace_name(ctx);
    {
        use sqlparser::ast::visit_relations;
        use std::ops::ControlFlow;
        let _ = visit_relations(stmt, |name| {
            if name.0.len() == 2 {
                if let ObjectNamePart::Identifier(i) = &name.0[0] {
                    if ctx.topology.keyspaces.contains_key(&i.value) {
                        ks = i.value.clone();
                        return ControlFlow::Break(());
                    }
                }
            }
            ControlFlow::Continue(())
        });
    }
    if !ctx.topology.keyspaces.contains_key(&ks) {
        return Err(SqlError::new(
            codes::ER_BAD_DB_ERROR,
            "42000",
            format!("Unknown database '{ks}'"),
        ));
    }
    let sharded = ctx.vschema.keyspaces.get(&ks).is_some_and(|k| k.sharded);
    let mut r = stripped(
        stmt,
        ks,
        if sharded {
            Opcode::AllShards
        } else {
            Opcode::Unsharded
        },
        ctx,
    );
    r.is_write = true;
    Ok(Plan::Route(r))
}

/// DDL the parser cannot read (`ALTER DATABASE … CHARACTER SET`), sent to every shard of the
/// session's keyspace with the database name removed (each shard's database has its own).
pub fn plan_alter_database(
    rest_after_name: &str,
    keyspace: &str,
    ctx: &PlanContext<'_>,
) -> Result<Plan, SqlError> {
    if !ctx.topology.keyspaces.contains_key(keyspace) {
        return Err(SqlError::new(
            codes::ER_BAD_DB_ERROR,
            "42000",
            format!("Unknown database '{keyspace}'"),
        ));
    }
    let sql = format!("ALTER DATABASE {rest_after_name}");
    let sharded = ctx
        .vschema
        .keyspaces
        .get(keyspace)
        .is_some_and(|k| k.sharded);
    let mut r = passthrough(
        keyspace.to_string(),
        if sharded {
            Opcode::AllShards
        } else {
            Opcode::Unsharded
        },
    );
    r.sql = ShardSql::Fixed(sql);
    r.is_write = true;
    Ok(Plan::Route(r))
}
