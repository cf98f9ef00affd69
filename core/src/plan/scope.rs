//! What a statement reads and what its predicates say about shards: its tables (FROM clause,
//! joins and subqueries) resolved against the vschema, the vindex predicates that pick shards,
//! and whether the sharded tables are tied to one another on their primary vindex columns.
//!
//! Several sharded tables may share one route only when equalities on their primary vindex
//! columns connect them all (directly or through each other): then every row a shard needs is
//! on that shard. A subquery's tables count the same way, so a subquery either stays on the
//! outer row's shard (correlated on the vindex, or `vindex IN (SELECT vindex …)`) or the
//! statement is refused — never answered from one shard's part of the data.

use super::ValueRef;
use crate::vschema::{KeyspaceSchema, TableKind, TableLookupError, TableSchema};
use crate::wire::Value;
use crate::SqlError;
use sqlparser::ast::{
    BinaryOperator, Expr, Ident, ObjectName, ObjectNamePart, Query, SelectItem, SetExpr, Statement,
    TableFactor, TableWithJoins, UnaryOperator, Value as AstValue,
};
use std::ops::{ControlFlow, Range};

use super::builder::{unsupported, PlanContext};

// ---------------------------------------------------------------- tables

/// A table of the statement, resolved against the vschema.
#[derive(Clone, Debug)]
pub(super) struct TableRef<'a> {
    pub keyspace: &'a KeyspaceSchema,
    pub table: Option<&'a TableSchema>,
    pub name: String,
    /// The name columns are qualified with (alias or table name), lowercase.
    pub qualifier: String,
}

impl TableRef<'_> {
    pub fn is_reference(&self) -> bool {
        self.table.is_some_and(|t| t.is_reference())
    }

    /// A table whose rows are spread over the shards (not a reference table, not unsharded).
    pub fn is_sharded(&self) -> bool {
        self.keyspace.sharded && !self.is_reference()
    }

    /// `keyspace.table`, as plans and errors show it.
    pub fn full_name(&self) -> String {
        format!("{}.{}", self.keyspace.name, self.name)
    }

    /// The primary vindex column and the vindex's name.
    fn primary_vindex(&self) -> Option<(&str, &str)> {
        let cv = self.table?.primary_vindex()?;
        Some((cv.columns.first()?.as_str(), cv.vindex_name.as_str()))
    }
}

/// Resolves `[ks.]table`; tables unknown to the vschema belong to the target keyspace when it
/// is unsharded (unsharded keyspaces need not list their tables, as in Vitess).
pub(super) fn resolve_table<'a>(
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
        Err(TableLookupError::Ambiguous { keyspaces, .. }) => {
            match reference_over_source(&keyspaces, &table, ctx) {
                Some((ks, t)) => Ok(TableRef {
                    keyspace: ks,
                    table: Some(t),
                    name: table,
                    qualifier,
                }),
                None => Err(TableLookupError::Ambiguous { table, keyspaces }.to_sql_error()),
            }
        }
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
                None if ctx.topology.keyspaces.contains_key(&ks_name) => {
                    Err(SqlError::no_such_table(&format!("{ks_name}.{table}")))
                }
                None => Err(e.to_sql_error()),
            }
        }
    }
}

/// An unqualified name found in several keyspaces is no ambiguity when one of them is a
/// reference table and every other is its `source` (Vitess treats the source as an alias of
/// the reference table): the reference table, which rides along with any route of its
/// keyspace, and whose writes go to the source.
fn reference_over_source<'a>(
    keyspaces: &[String],
    table: &str,
    ctx: &PlanContext<'a>,
) -> Option<(&'a KeyspaceSchema, &'a TableSchema)> {
    let found: Vec<(&KeyspaceSchema, &TableSchema)> = keyspaces
        .iter()
        .filter_map(|k| ctx.vschema.keyspaces.get(k))
        .filter_map(|ks| ks.table(table).map(|t| (ks, t)))
        .collect();
    found.iter().copied().find(|(ks, t)| match &t.kind {
        TableKind::Reference {
            source: Some((src_ks, src_table)),
        } => found.iter().all(|(oks, ot)| {
            oks.name == ks.name || (oks.name == *src_ks && ot.name.eq_ignore_ascii_case(src_table))
        }),
        _ => false,
    })
}

pub(super) fn table_factor_name(f: &TableFactor) -> Option<(&ObjectName, Option<String>)> {
    match f {
        TableFactor::Table { name, alias, .. } => {
            Some((name, alias.as_ref().map(|a| a.name.value.clone())))
        }
        _ => None,
    }
}

/// The tables of a FROM clause and what its joins say.
pub(super) struct FromInfo<'a> {
    pub tables: Vec<TableRef<'a>>,
    /// ON / USING conditions of inner joins: they filter the result, so they may route.
    pub inner_conds: Vec<Expr>,
    /// ON / USING conditions of outer joins: they only decide which rows are NULL-extended,
    /// so they may tie tables into one route but never narrow the route's shards.
    pub outer_conds: Vec<Expr>,
    /// Outer joins as (preserved tables, NULL-supplying tables), indexes into `tables`.
    pub outer_joins: Vec<(Vec<usize>, Vec<usize>)>,
}

/// Collects the tables of a FROM clause and the conditions of its joins (`USING (c)` becomes
/// `left.c = right.c`, the left being the table just before the join).
pub(super) fn from_tables<'a>(
    from: &[TableWithJoins],
    ctx: &PlanContext<'a>,
) -> Result<FromInfo<'a>, SqlError> {
    use sqlparser::ast::{JoinConstraint, JoinOperator};
    let mut info = FromInfo {
        tables: Vec::new(),
        inner_conds: Vec::new(),
        outer_conds: Vec::new(),
        outer_joins: Vec::new(),
    };
    for twj in from {
        let (name, alias) = table_factor_name(&twj.relation).ok_or_else(|| {
            unsupported("derived tables or table functions on a sharded keyspace")
        })?;
        let first = info.tables.len();
        info.tables
            .push(resolve_table(name, alias.as_deref(), ctx)?);
        for j in &twj.joins {
            let (name, alias) = table_factor_name(&j.relation)
                .ok_or_else(|| unsupported("derived tables in joins on a sharded keyspace"))?;
            let right = info.tables.len();
            info.tables
                .push(resolve_table(name, alias.as_deref(), ctx)?);
            let left: Vec<usize> = (first..right).collect();
            let (constraint, outer) = match &j.join_operator {
                JoinOperator::Join(c)
                | JoinOperator::Inner(c)
                | JoinOperator::CrossJoin(c)
                | JoinOperator::StraightJoin(c) => (c, None),
                JoinOperator::Left(c) | JoinOperator::LeftOuter(c) => {
                    (c, Some((left.clone(), vec![right])))
                }
                JoinOperator::Right(c) | JoinOperator::RightOuter(c) => {
                    (c, Some((vec![right], left.clone())))
                }
                other => {
                    return Err(unsupported(format!(
                        "{} on a sharded keyspace",
                        join_name(other)
                    )))
                }
            };
            let mut conds = Vec::new();
            match constraint {
                JoinConstraint::On(e) => conds.push(e.clone()),
                JoinConstraint::Using(cols) => {
                    let l = &info.tables[right - 1].qualifier;
                    let r = &info.tables[right].qualifier;
                    for c in cols {
                        let col = c.to_string().trim_matches('`').to_string();
                        conds.push(Expr::BinaryOp {
                            left: Box::new(qualified(l, &col)),
                            op: BinaryOperator::Eq,
                            right: Box::new(qualified(r, &col)),
                        });
                    }
                }
                JoinConstraint::Natural | JoinConstraint::None => {}
            }
            match outer {
                None => info.inner_conds.extend(conds),
                Some(sides) => {
                    info.outer_conds.extend(conds);
                    info.outer_joins.push(sides);
                }
            }
        }
    }
    Ok(info)
}

fn join_name(op: &sqlparser::ast::JoinOperator) -> &'static str {
    use sqlparser::ast::JoinOperator as J;
    match op {
        J::FullOuter(_) => "FULL OUTER JOIN",
        J::Semi(_) | J::LeftSemi(_) | J::RightSemi(_) => "SEMI JOIN",
        J::Anti(_) | J::LeftAnti(_) | J::RightAnti(_) => "ANTI JOIN",
        J::CrossApply | J::OuterApply => "APPLY",
        J::AsOf { .. } => "ASOF JOIN",
        _ => "this join",
    }
}

fn qualified(table: &str, column: &str) -> Expr {
    Expr::CompoundIdentifier(vec![Ident::new(table), Ident::new(column)])
}

// ---------------------------------------------------------------- predicates

/// Top-level AND conjuncts.
pub(super) fn conjuncts(e: &Expr, out: &mut Vec<Expr>) {
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
pub(super) fn column_of(e: &Expr) -> Option<(Option<String>, String)> {
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
            AstValue::Placeholder(p) => super::placeholder_index(p).map(ValueRef::Param),
            AstValue::Number(n, _) => Some(ValueRef::Const(match n.parse::<i64>() {
                Ok(i) => Value::Int(i),
                Err(_) => Value::text(n),
            })),
            AstValue::SingleQuotedString(s) | AstValue::DoubleQuotedString(s) => {
                Some(ValueRef::Const(Value::text(s)))
            }
            AstValue::Null => Some(ValueRef::Const(Value::Null)),
            _ => None,
        },
        Expr::UnaryOp {
            op: UnaryOperator::Minus,
            expr,
        } => match value_of(expr)? {
            ValueRef::Param(i) => Some(ValueRef::NegParam(i)),
            ValueRef::Const(Value::Int(i)) => {
                i.checked_neg().map(|n| ValueRef::Const(Value::Int(n)))
            }
            _ => None,
        },
        Expr::Nested(inner) => value_of(inner),
        _ => None,
    }
}

/// Does `col` (possibly qualified) name column `column` of table `t`?
pub(super) fn refers_to(
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
pub(super) enum Access {
    Equal(ValueRef),
    /// The values of the first IN list on the vindex column, and the column.
    In(Vec<ValueRef>, String),
    Scatter,
}

impl Access {
    /// Equality beats IN beats scatter.
    fn rank(&self) -> u8 {
        match self {
            Access::Equal(_) => 2,
            Access::In(..) => 1,
            Access::Scatter => 0,
        }
    }

    pub fn better_than(&self, other: &Access) -> bool {
        self.rank() > other.rank()
    }
}

pub(super) fn table_access(t: &TableRef<'_>, preds: &[Expr], single_table: bool) -> Access {
    let Some((vcol, _)) = t.primary_vindex() else {
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
                        if refers_to(&col, t, vcol, single_table) {
                            return Access::Equal(val);
                        }
                    }
                }
            }
            Expr::InList {
                expr,
                list,
                negated: false,
            } if found_in.is_none() => {
                if let Some(col) = column_of(expr) {
                    if refers_to(&col, t, vcol, single_table) {
                        let vals: Option<Vec<ValueRef>> = list.iter().map(value_of).collect();
                        if let Some(v) = vals {
                            found_in = Some(Access::In(v, vcol.to_string()));
                        }
                    }
                }
            }
            _ => {}
        }
    }
    found_in.unwrap_or(Access::Scatter)
}

/// Rewrites `c = 1 OR c = 2 OR c IN (3)` into `c IN (1, 2, 3)` (as Vitess does) when `c` is
/// one of `columns`, so the IN route and its pruning apply. `None` when nothing changed.
pub(super) fn or_to_in(stmt: &Statement, columns: &[String]) -> Option<Statement> {
    use sqlparser::ast::visit_expressions_mut;
    let mut out = stmt.clone();
    let mut changed = false;
    let _ = visit_expressions_mut(&mut out, |e| {
        if let Expr::BinaryOp {
            left,
            op: BinaryOperator::Or,
            right,
        } = e
        {
            let mut col = None;
            let mut vals = Vec::new();
            let ok = [left.as_ref(), right.as_ref()]
                .into_iter()
                .all(|side| equalities(side, &mut col, &mut vals));
            if let (true, Some(c)) = (ok, col) {
                if column_of(&c).is_some_and(|(_, name)| columns.contains(&name)) {
                    *e = Expr::InList {
                        expr: Box::new(c),
                        list: vals,
                        negated: false,
                    };
                    changed = true;
                }
            }
        }
        ControlFlow::<()>::Continue(())
    });
    changed.then_some(out)
}

/// `c = v` or `c IN (v, …)` with `c` the same column as before: appends the values.
fn equalities(e: &Expr, col: &mut Option<Expr>, vals: &mut Vec<Expr>) -> bool {
    let (c, vs): (&Expr, Vec<&Expr>) = match e {
        Expr::Nested(inner) => return equalities(inner, col, vals),
        Expr::BinaryOp {
            left,
            op: BinaryOperator::Eq,
            right,
        } => match (column_of(left), column_of(right)) {
            (Some(_), None) => (left.as_ref(), vec![right.as_ref()]),
            (None, Some(_)) => (right.as_ref(), vec![left.as_ref()]),
            _ => return false,
        },
        Expr::InList {
            expr,
            list,
            negated: false,
        } if column_of(expr).is_some() => (expr.as_ref(), list.iter().collect()),
        _ => return false,
    };
    if vs.iter().any(|v| value_of(v).is_none()) {
        return false;
    }
    match col {
        Some(prev) if column_of(prev) != column_of(c) => return false,
        Some(_) => {}
        None => *col = Some(c.clone()),
    }
    vals.extend(vs.into_iter().cloned());
    true
}

// ---------------------------------------------------------------- one route or not

/// Every table a statement reads (outer FROM first, then each subquery's) and the equalities
/// that may tie them together.
pub(super) struct Scope<'a> {
    pub tables: Vec<TableRef<'a>>,
    /// The first `outer` tables are the statement's own (FROM clause or DML target).
    pub outer: usize,
    /// Conditions with the tables of the query they appear in (for unqualified columns).
    conds: Vec<(Expr, Range<usize>)>,
    /// `outer_col IN (SELECT inner_col …)`: (outer column, inner column, inner tables).
    in_subqueries: Vec<(Expr, Expr, Range<usize>)>,
}

impl<'a> Scope<'a> {
    /// The statement's own tables and the conditions among them.
    pub fn new(tables: Vec<TableRef<'a>>, conds: &[Expr]) -> Scope<'a> {
        let outer = tables.len();
        Scope {
            tables,
            outer,
            conds: conds.iter().map(|c| (c.clone(), 0..outer)).collect(),
            in_subqueries: Vec::new(),
        }
    }

    /// Adds the tables and conditions of every subquery found in `node` (at any depth), and
    /// the `col IN (SELECT …)` among `top_conds` (the outer WHERE's conjuncts).
    pub fn add_subqueries<V: sqlparser::ast::Visit>(
        &mut self,
        node: &V,
        top_conds: &[Expr],
        ctx: &PlanContext<'a>,
    ) -> Result<(), SqlError> {
        let mut found: Vec<Query> = Vec::new();
        let _ = sqlparser::ast::visit_expressions(node, |e| {
            match e {
                Expr::Subquery(q)
                | Expr::InSubquery { subquery: q, .. }
                | Expr::Exists { subquery: q, .. } => found.push((**q).clone()),
                _ => {}
            }
            ControlFlow::<()>::Continue(())
        });
        let mut ranges = Vec::new();
        for q in &found {
            let start = self.tables.len();
            match q.body.as_ref() {
                SetExpr::Select(sel) => {
                    let info = from_tables(&sel.from, ctx)?;
                    self.tables.extend(info.tables);
                    let range = start..self.tables.len();
                    let mut cs = Vec::new();
                    if let Some(w) = &sel.selection {
                        conjuncts(w, &mut cs);
                    }
                    for c in info.inner_conds.iter().chain(&info.outer_conds) {
                        conjuncts(c, &mut cs);
                    }
                    self.conds
                        .extend(cs.into_iter().map(|c| (c, range.clone())));
                }
                _ => {
                    // A UNION inside a subquery: its tables, with nothing tying them.
                    let mut names = Vec::new();
                    let _ = sqlparser::ast::visit_relations(q, |n| {
                        names.push(n.clone());
                        ControlFlow::<()>::Continue(())
                    });
                    for n in names {
                        self.tables.push(resolve_table(&n, None, ctx)?);
                    }
                }
            }
            ranges.push((q.clone(), start..self.tables.len()));
        }
        for c in top_conds {
            if let Expr::InSubquery {
                expr,
                subquery,
                negated: false,
            } = c
            {
                let inner = match subquery.body.as_ref() {
                    SetExpr::Select(sel) => match sel.projection.as_slice() {
                        [SelectItem::UnnamedExpr(x)]
                        | [SelectItem::ExprWithAlias { expr: x, .. }] => Some(x.clone()),
                        _ => None,
                    },
                    _ => None,
                };
                let range = ranges.iter().find(|(q, _)| q == subquery.as_ref());
                if let (Some(inner), Some((_, range))) = (inner, range) {
                    self.in_subqueries
                        .push((expr.as_ref().clone(), inner, range.clone()));
                }
            }
        }
        Ok(())
    }

    /// The sharded table whose primary vindex column `e` names, looked up in the query the
    /// expression belongs to first (`scope`), then anywhere; `None` when unknown or ambiguous.
    fn vindex_owner(&self, e: &Expr, scope: &Range<usize>) -> Option<usize> {
        let col = column_of(e)?;
        let single = scope.len() == 1;
        let matches = |r: Range<usize>| -> Vec<usize> {
            r.filter(|&i| {
                let t = &self.tables[i];
                t.is_sharded()
                    && t.primary_vindex()
                        .is_some_and(|(v, _)| refers_to(&col, t, v, single))
            })
            .collect()
        };
        let mut found = matches(scope.clone());
        if found.is_empty() && col.0.is_some() {
            found = matches(0..self.tables.len());
        }
        match found.as_slice() {
            [i] => Some(*i),
            _ => None,
        }
    }

    /// Checks that one route can answer for every sharded table: they are all tied together
    /// by vindex equalities, and the statement's own tables include a sharded one.
    pub fn check_one_route(&self) -> Result<(), SqlError> {
        let n = self.tables.len();
        let mut parent: Vec<usize> = (0..n).collect();
        fn find(p: &mut [usize], i: usize) -> usize {
            let mut r = i;
            while p[r] != r {
                r = p[r];
            }
            p[i] = r;
            r
        }
        let join = |a: usize, b: usize, p: &mut Vec<usize>| {
            let same_vindex = self.tables[a].primary_vindex().map(|v| v.1)
                == self.tables[b].primary_vindex().map(|v| v.1);
            if same_vindex {
                let (ra, rb) = (find(p, a), find(p, b));
                p[ra] = rb;
            }
        };
        for (c, scope) in &self.conds {
            if let Expr::BinaryOp {
                left,
                op: BinaryOperator::Eq,
                right,
            } = c
            {
                if let (Some(a), Some(b)) = (
                    self.vindex_owner(left, scope),
                    self.vindex_owner(right, scope),
                ) {
                    join(a, b, &mut parent);
                }
            }
        }
        for (outer_col, inner_col, range) in &self.in_subqueries {
            if let (Some(a), Some(b)) = (
                self.vindex_owner(outer_col, &(0..self.outer)),
                self.vindex_owner(inner_col, range),
            ) {
                join(a, b, &mut parent);
            }
        }
        let sharded: Vec<usize> = (0..n).filter(|&i| self.tables[i].is_sharded()).collect();
        let Some(&first) = sharded.first() else {
            return Ok(());
        };
        if first >= self.outer {
            return Err(unsupported(format!(
                "a subquery on sharded table {} under a query that is not sharded by it",
                self.tables[first].name
            )));
        }
        for &i in &sharded[1..] {
            if find(&mut parent, i) != find(&mut parent, first) {
                let (a, b) = (&self.tables[first].name, &self.tables[i].name);
                return Err(unsupported(if i < self.outer {
                    format!(
                        "cross-shard join of {a} and {b} (join them on their primary vindex columns)"
                    )
                } else {
                    format!(
                        "subquery on {b} that cannot run on the shards of {a} (correlate it on the primary vindex column)"
                    )
                }));
            }
        }
        Ok(())
    }
}
