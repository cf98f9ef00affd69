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

use super::merge::plan_merge;
use super::scope::{
    conjuncts, from_tables, or_to_in, resolve_table, table_access, table_factor_name, value_of,
    Access, Scope, TableRef,
};
use super::{
    InsertPlan, Local, LocalExpr, Opcode, Plan, Route, SequenceFill, ShardSql, TxnOp, ValueRef,
};
use crate::error::codes;
use crate::exec::MergeSpec;
use crate::gateway::Topology;
use crate::vschema::{KeyspaceSchema, TableKind, VSchema, Vindex};
use crate::wire::Value;
use crate::SqlError;
use sqlparser::ast::{
    Expr, FunctionArguments, ObjectName, ObjectNamePart, ObjectType, Query, SelectItem, SetExpr,
    Statement, TableObject,
};
use std::sync::Arc;

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

pub(super) fn unsupported(what: impl Into<String>) -> SqlError {
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
        Statement::Query(q) => plan_query(stmt, q, ctx, true),
        Statement::Insert(_) => plan_insert(stmt, ctx),
        Statement::Update(_) | Statement::Delete(_) => plan_update_delete(stmt, ctx),
        Statement::CreateTable(_)
        | Statement::AlterTable(_)
        | Statement::Drop { .. }
        | Statement::CreateIndex(_)
        | Statement::Truncate(_)
        | Statement::CreateView(_)
        | Statement::RenameTable(_) => plan_ddl(stmt, ctx),
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
        Statement::Rollback {
            savepoint: Some(name),
            ..
        } => Plan::Transaction(TxnOp::RollbackTo(name.value.clone())),
        Statement::Savepoint { name } => Plan::Transaction(TxnOp::Savepoint(name.value.clone())),
        Statement::ReleaseSavepoint { name } => {
            Plan::Transaction(TxnOp::Release(name.value.clone()))
        }
        Statement::Set(_) => Plan::SessionSet {
            sql: stmt.to_string(),
        },
        Statement::ShowDatabases { .. } => Plan::Local(Local::ShowKeyspaces),
        // The TLS status of the client's connection is the gateway's to tell: a shard would
        // describe its own connection to the gateway.
        Statement::ShowStatus {
            filter: Some(sqlparser::ast::ShowStatementFilter::Like(pattern)),
            global: false,
            ..
        } if pattern.to_ascii_lowercase().starts_with("ssl") => {
            Plan::Local(Local::SslStatus(pattern.clone()))
        }
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
            // Literals ride along (`select database(), 1`); the gateway alone must not answer
            // `select 1`, which keeps going to a shard as a liveness probe.
            other => match value_of(other) {
                Some(ValueRef::Const(v)) => {
                    let name = match (item, other) {
                        (SelectItem::UnnamedExpr(_), Expr::Value(x)) => match &x.value {
                            sqlparser::ast::Value::SingleQuotedString(t)
                            | sqlparser::ast::Value::DoubleQuotedString(t) => t.clone(),
                            _ => name,
                        },
                        _ => name,
                    };
                    cols.push((name, LocalExpr::Literal(v)));
                    continue;
                }
                _ => return None,
            },
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
        hidden_columns: 0,
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
    // Sent as it is, but for keyspace qualifiers (the shard's database has its own name).
    let mut r = stripped(stmt, ks, Opcode::ByDestination, ctx);
    r.destination = vec![idx];
    r.is_write = !matches!(stmt, Statement::Query(_));
    Ok(Plan::Route(r))
}

/// Removes keyspace qualifiers (`commerce.t` → `t`): shard databases have their own names.
/// Returns whether anything changed.
fn strip_keyspace_qualifiers(stmt: &mut Statement, ctx: &PlanContext<'_>) -> bool {
    use sqlparser::ast::visit_relations_mut;
    use std::ops::ControlFlow;
    let mut changed = false;
    let mut strip = |name: &mut ObjectName| {
        if name.0.len() == 2 {
            if let ObjectNamePart::Identifier(i) = &name.0[0] {
                if ctx.topology.keyspaces.contains_key(&i.value) {
                    name.0.remove(0);
                    changed = true;
                }
            }
        }
    };
    // The visitor does not see the names of RENAME TABLE and DROP as relations.
    match stmt {
        Statement::RenameTable(renames) => {
            for r in renames {
                strip(&mut r.old_name);
                strip(&mut r.new_name);
            }
        }
        Statement::Drop {
            object_type: ObjectType::Table | ObjectType::View,
            names,
            ..
        } => {
            names.iter_mut().for_each(&mut strip);
        }
        Statement::Drop { table: Some(t), .. } => strip(t),
        _ => {}
    }
    let _ = visit_relations_mut(stmt, |name| {
        strip(name);
        ControlFlow::<()>::Continue(())
    });
    changed
}

/// The table names of a statement, RENAME TABLE's included.
fn relation_names(stmt: &Statement) -> Vec<ObjectName> {
    use sqlparser::ast::visit_relations;
    use std::ops::ControlFlow;
    let mut names = Vec::new();
    match stmt {
        Statement::RenameTable(renames) => {
            for r in renames {
                names.push(r.old_name.clone());
                names.push(r.new_name.clone());
            }
        }
        Statement::Drop {
            object_type: ObjectType::Table | ObjectType::View,
            names: n,
            ..
        } => {
            names.extend(n.iter().cloned());
        }
        Statement::Drop { table: Some(t), .. } => names.push(t.clone()),
        _ => {}
    }
    let _ = visit_relations(stmt, |n| {
        names.push(n.clone());
        ControlFlow::<()>::Continue(())
    });
    names
}

// ---------------------------------------------------------------- SELECT

/// Every table a statement names (FROM clauses, joins, subqueries), resolved.
fn statement_tables<'a>(
    stmt: &Statement,
    ctx: &PlanContext<'a>,
) -> Result<Vec<TableRef<'a>>, SqlError> {
    relation_names(stmt)
        .iter()
        .map(|n| resolve_table(n, None, ctx))
        .collect()
}

/// The one keyspace a statement over `tables` can be sent to: that of its non-reference
/// tables. A reference table is copied to the shards of its own keyspace only, so it must be
/// of that keyspace too, or have its `source` there (it is then read from the source).
fn route_keyspace<'a>(tables: &[TableRef<'a>]) -> Result<&'a KeyspaceSchema, SqlError> {
    let owner = tables
        .iter()
        .find(|t| !t.is_reference())
        .or(tables.first())
        .ok_or_else(|| SqlError::internal("no table to route by"))?;
    let elsewhere = |t: &&TableRef<'_>| {
        t.keyspace.name != owner.keyspace.name
            && reference_source(t).is_none_or(|(ks, _)| *ks != owner.keyspace.name)
    };
    match tables.iter().find(elsewhere) {
        Some(other) => Err(unsupported(format!(
            "cross-keyspace query ({} and {})",
            owner.keyspace.name, other.keyspace.name
        ))),
        None => Ok(owner.keyspace),
    }
}

fn reference_source<'a>(t: &TableRef<'a>) -> Option<&'a (String, String)> {
    match &t.table?.kind {
        TableKind::Reference { source } => source.as_ref(),
        _ => None,
    }
}

/// Routes a statement that need not look at shards: every table in one unsharded keyspace
/// (passed through), or only reference tables (any one shard). `None` otherwise.
fn unsharded_or_reference(
    stmt: &Statement,
    tables: &[TableRef<'_>],
    ctx: &PlanContext<'_>,
) -> Result<Option<Route>, SqlError> {
    let ks = route_keyspace(tables)?;
    let opcode = if !ks.sharded {
        Opcode::Unsharded
    } else if tables.iter().all(|t| t.is_reference()) {
        Opcode::Reference
    } else {
        return Ok(None);
    };
    Ok(Some(routed_to(stmt, tables, ks, opcode, ctx)))
}

/// A route to keyspace `ks` sending the statement with keyspace qualifiers stripped and
/// reference tables of other keyspaces replaced by their sources in `ks`.
fn routed_to(
    stmt: &Statement,
    tables: &[TableRef<'_>],
    ks: &KeyspaceSchema,
    opcode: Opcode,
    ctx: &PlanContext<'_>,
) -> Route {
    let mut r = match read_from_sources(stmt, tables, ks) {
        Some(rewritten) => {
            let mut r = stripped(&rewritten, ks.name.clone(), opcode, ctx);
            r.sql = ShardSql::Template(r.template(&rewritten));
            r
        }
        None => stripped(stmt, ks.name.clone(), opcode, ctx),
    };
    r.tables = tables
        .iter()
        .map(|t| match reference_source(t) {
            Some((sks, st)) if t.keyspace.name != ks.name => format!("{sks}.{st}"),
            _ => t.full_name(),
        })
        .collect();
    r
}

/// Replaces reference tables of other keyspaces by their sources in `ks` (Vitess reads a
/// reference table from its source when the rest of the statement lives there), keeping the
/// reference table's name as the alias. `None` when there are none.
fn read_from_sources(
    stmt: &Statement,
    tables: &[TableRef<'_>],
    ks: &KeyspaceSchema,
) -> Option<Statement> {
    use sqlparser::ast::{Ident, TableAlias, TableFactor, VisitMut, VisitorMut};
    use std::ops::ControlFlow;
    let renames: Vec<(String, String, String)> = tables
        .iter()
        .filter(|t| t.keyspace.name != ks.name)
        .filter_map(|t| {
            let (_, src) = reference_source(t)?;
            Some((
                t.keyspace.name.clone(),
                t.name.to_ascii_lowercase(),
                src.clone(),
            ))
        })
        .collect();
    if renames.is_empty() {
        return None;
    }
    struct Rename<'r>(&'r [(String, String, String)]);
    impl VisitorMut for Rename<'_> {
        type Break = ();
        fn pre_visit_table_factor(&mut self, f: &mut TableFactor) -> ControlFlow<()> {
            if let TableFactor::Table { name, alias, .. } = f {
                let parts: Vec<String> = name
                    .0
                    .iter()
                    .filter_map(|p| match p {
                        ObjectNamePart::Identifier(i) => Some(i.value.clone()),
                        _ => None,
                    })
                    .collect();
                let (qualifier, table) = match parts.as_slice() {
                    [t] => (None, t.clone()),
                    [k, t] => (Some(k.clone()), t.clone()),
                    _ => return ControlFlow::Continue(()),
                };
                let hit = self.0.iter().find(|(rks, rt, _)| {
                    *rt == table.to_ascii_lowercase() && qualifier.as_ref().is_none_or(|q| q == rks)
                });
                if let Some((_, _, src)) = hit {
                    *name = ObjectName::from(vec![Ident::new(src.clone())]);
                    if alias.is_none() && !src.eq_ignore_ascii_case(&table) {
                        *alias = Some(TableAlias {
                            explicit: true,
                            name: Ident::new(table),
                            columns: vec![],
                            at: None,
                        });
                    }
                }
            }
            ControlFlow::Continue(())
        }
    }
    let mut out = stmt.clone();
    let _ = out.visit(&mut Rename(&renames));
    Some(out)
}

fn table_names(tables: &[TableRef<'_>]) -> Vec<String> {
    tables.iter().map(TableRef::full_name).collect()
}

/// The vindex columns of the sharded tables (for the OR → IN rewrite).
fn vindex_columns(tables: &[TableRef<'_>]) -> Vec<String> {
    tables
        .iter()
        .filter(|t| t.is_sharded())
        .filter_map(|t| t.table?.primary_vindex()?.columns.first().cloned())
        .collect()
}

/// The opcode, vindex and values a route gets from the best access to its sharded tables.
fn apply_access(
    route: &mut Route,
    access: Access,
    vindex: Option<Arc<dyn Vindex>>,
    stmt: &Statement,
) {
    let all_null = |vals: &[ValueRef]| {
        vals.iter()
            .all(|v| matches!(v, ValueRef::Const(Value::Null)))
    };
    match access {
        // `col = NULL`, `col IN (NULL)`: nothing can match anywhere (Vitess: None).
        Access::Equal(v) if all_null(std::slice::from_ref(&v)) => route.opcode = Opcode::None,
        Access::In(vals, _) if all_null(&vals) => route.opcode = Opcode::None,
        Access::Equal(v) => {
            route.opcode = Opcode::EqualUnique;
            route.vindex = vindex;
            route.values = vec![v];
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
}

/// Plans a query: one route when its tables allow, else (with `allow_join`) a nested-loop
/// join at the gateway ([`super::join`]); when neither works, the one-route error.
pub(super) fn plan_query(
    stmt: &Statement,
    q: &Query,
    ctx: &PlanContext<'_>,
    allow_join: bool,
) -> Result<Plan, SqlError> {
    match plan_one_route(stmt, q, ctx) {
        Err(e) if allow_join && needs_join(&e) => {
            let SetExpr::Select(select) = q.body.as_ref() else {
                return Err(e);
            };
            match super::join::plan_join(q, select, ctx)? {
                Some(p) => Ok(p),
                None => Err(e),
            }
        }
        other => other,
    }
}

/// Is `e` the one-route planner saying the FROM clause spans shards or keyspaces (what a
/// nested-loop join can answer), rather than refusing some other part of the statement?
fn needs_join(e: &SqlError) -> bool {
    e.code == codes::ER_NOT_SUPPORTED_YET
        && [
            "unsupported: cross-shard join of ",
            "unsupported: cross-keyspace query ",
            "unsupported: outer join keeping every row of reference table ",
        ]
        .iter()
        .any(|p| e.message.starts_with(p))
}

fn plan_one_route(stmt: &Statement, q: &Query, ctx: &PlanContext<'_>) -> Result<Plan, SqlError> {
    let all_tables = statement_tables(stmt, ctx)?;
    if all_tables.is_empty() {
        // `select 1`, `select now()`: any shard of the session's keyspace.
        return any_shard_of_target(ctx);
    }
    if let Some(r) = unsharded_or_reference(stmt, &all_tables, ctx)? {
        return Ok(Plan::Route(r));
    }
    let SetExpr::Select(select) = q.body.as_ref() else {
        return Err(unsupported("UNION on a sharded keyspace"));
    };
    let from = from_tables(&select.from, ctx)?;
    let mut where_preds = Vec::new();
    if let Some(w) = &select.selection {
        conjuncts(w, &mut where_preds);
    }
    let mut tie_preds = where_preds.clone();
    for c in from.inner_conds.iter().chain(&from.outer_conds) {
        conjuncts(c, &mut tie_preds);
    }
    let mut scope = Scope::new(from.tables.clone(), &tie_preds);
    scope.add_subqueries(select.as_ref(), &where_preds, ctx)?;
    if let Some(rewritten) = or_to_in(stmt, &vindex_columns(&scope.tables)) {
        if let Statement::Query(q2) = &rewritten {
            return plan_one_route(&rewritten, q2, ctx);
        }
    }
    scope.check_one_route()?;

    // Only the WHERE clause and inner joins' conditions restrict the rows: they pick shards.
    let mut route_preds = where_preds;
    for c in &from.inner_conds {
        conjuncts(c, &mut route_preds);
    }
    let single = from.tables.len() == 1;
    let mut access = Access::Scatter;
    let mut vindex = None;
    for t in from.tables.iter().filter(|t| t.is_sharded()) {
        let a = table_access(t, &route_preds, single);
        if a.better_than(&access) {
            access = a;
            vindex = t
                .table
                .and_then(|s| s.primary_vindex())
                .map(|cv| cv.vindex.clone());
        }
    }
    let ks = route_keyspace(&scope.tables)?;
    let mut route = stripped(stmt, ks.name.clone(), Opcode::Scatter, ctx);
    route.tables = table_names(&scope.tables);
    apply_access(&mut route, access, vindex, stmt);

    // An outer join keeping every row of a reference table would repeat those rows once per
    // shard: fine on one shard only.
    for (kept, nullable) in &from.outer_joins {
        let sharded = |side: &Vec<usize>| side.iter().any(|&i| from.tables[i].is_sharded());
        if !sharded(kept)
            && sharded(nullable)
            && !matches!(route.opcode, Opcode::EqualUnique | Opcode::None)
        {
            return Err(unsupported(format!(
                "outer join keeping every row of reference table {} across shards",
                from.tables[kept[0]].name
            )));
        }
    }
    if matches!(route.opcode, Opcode::In | Opcode::Scatter) {
        plan_merge(&mut route, q, select)?;
    }
    Ok(Plan::Route(route))
}

fn stripped(stmt: &Statement, keyspace: String, opcode: Opcode, ctx: &PlanContext<'_>) -> Route {
    let mut r = passthrough(keyspace, opcode);
    let mut q = stmt.clone();
    if strip_keyspace_qualifiers(&mut q, ctx) {
        r.sql = ShardSql::Template(q);
    }
    r
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
    let full = t.full_name();
    if let Some(ts) = t.table {
        if let TableKind::Reference { source } = &ts.kind {
            return write_to_reference_source(stmt, &t, source.as_ref(), ctx);
        }
    }
    let all_tables = statement_tables(stmt, ctx)?;
    let ks = route_keyspace(&all_tables)?;
    if !ks.sharded {
        let mut r = routed_to(stmt, &all_tables, ks, Opcode::Unsharded, ctx);
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
    let mut scope = Scope::new(vec![t.clone()], &preds);
    scope.add_subqueries(stmt, &preds, ctx)?;
    if let Some(rewritten) = or_to_in(stmt, &vindex_columns(&scope.tables)) {
        return plan_update_delete(&rewritten, ctx);
    }
    scope.check_one_route()?;
    let mut r = stripped(stmt, t.keyspace.name.clone(), Opcode::Scatter, ctx);
    r.tables = table_names(&scope.tables);
    r.is_write = true;
    let vindex = ts.primary_vindex().map(|c| c.vindex.clone());
    apply_access(&mut r, table_access(&t, &preds, true), vindex, stmt);
    if has_order_or_limit && matches!(r.opcode, Opcode::Scatter | Opcode::In) {
        return Err(unsupported(
            "multi-shard UPDATE/DELETE with ORDER BY or LIMIT",
        ));
    }
    Ok(Plan::Route(r))
}

fn multi_table_write(stmt: &Statement, ctx: &PlanContext<'_>) -> Result<Plan, SqlError> {
    let tables = statement_tables(stmt, ctx)?;
    let ks = match tables.first() {
        Some(_) => route_keyspace(&tables)?,
        None => target_keyspace(ctx).ok_or_else(|| SqlError::internal("no keyspace"))?,
    };
    if ks.sharded {
        return Err(unsupported(
            "multi-table UPDATE/DELETE on a sharded keyspace",
        ));
    }
    let mut r = routed_to(stmt, &tables, ks, Opcode::Unsharded, ctx);
    r.is_write = true;
    Ok(Plan::Route(r))
}

fn plan_ddl(stmt: &Statement, ctx: &PlanContext<'_>) -> Result<Plan, SqlError> {
    if let Statement::Drop { object_type, .. } = stmt {
        if !matches!(
            object_type,
            ObjectType::Table | ObjectType::View | ObjectType::Index
        ) {
            return Err(unsupported(format!(
                "DROP {object_type} through the gateway"
            )));
        }
    }
    // The keyspace: from the qualified table names (all the same one), else the session's.
    let mut named: Vec<String> = Vec::new();
    let mut tables: Vec<String> = Vec::new();
    for name in relation_names(stmt) {
        let parts: Vec<&str> = name
            .0
            .iter()
            .filter_map(|p| match p {
                ObjectNamePart::Identifier(i) => Some(i.value.as_str()),
                _ => None,
            })
            .collect();
        if let [k, t] = parts.as_slice() {
            if !named.iter().any(|n| n == k) {
                named.push(k.to_string());
            }
            tables.push(format!("{k}.{t}"));
        } else if let [t] = parts.as_slice() {
            tables.push(t.to_string());
        }
    }
    if let Some(unknown) = named
        .iter()
        .find(|k| !ctx.topology.keyspaces.contains_key(*k))
    {
        return Err(SqlError::new(
            codes::ER_BAD_DB_ERROR,
            "42000",
            format!("Unknown database '{unknown}'"),
        ));
    }
    if named.len() > 1 {
        return Err(unsupported(format!(
            "DDL across keyspaces ({})",
            named.join(" and ")
        )));
    }
    let ks = named.pop().unwrap_or_else(|| target_keyspace_name(ctx));
    if !ctx.topology.keyspaces.contains_key(&ks) {
        return Err(SqlError::new(
            codes::ER_BAD_DB_ERROR,
            "42000",
            format!("Unknown database '{ks}'"),
        ));
    }
    let tables = tables
        .into_iter()
        .map(|t| {
            if t.contains('.') {
                t
            } else {
                format!("{ks}.{t}")
            }
        })
        .collect();
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
    r.tables = tables;
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
