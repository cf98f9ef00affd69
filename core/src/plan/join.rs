//! Cross-shard joins: a SELECT whose tables cannot share one route becomes a nested-loop join
//! at the gateway ([`JoinPlan`]), like Vitess's `Join` primitive.
//!
//! The FROM clause is split in two: a left (outer) part and a right (inner) part, each of which
//! is one route on its own (planned by the ordinary planner, so each side still rides along on
//! vindex equalities and reference tables). The left side runs once; for each of its rows the
//! right side runs with the left columns it refers to bound as literals (`:v0`, `:v1`, … in the
//! plan): a join on the right table's primary vindex column therefore reaches one shard per
//! left row, any other join condition scatters.
//!
//! Predicates go where they belong: WHERE conjuncts (and, for INNER JOIN, ON conjuncts) on the
//! left tables only go to the left query; every other conjunct goes to the right query with its
//! left columns bound. A LEFT JOIN's ON conjuncts all go to the right query (they decide which
//! right rows match, never which left rows appear). The select list is split per side and the
//! gateway puts the columns back in select-list order; ORDER BY, LIMIT and OFFSET apply at the
//! gateway after the join. A LEFT JOIN's `WHERE right.col IS [NOT] NULL` is checked on the
//! joined rows; `a RIGHT JOIN b` (two tables) runs as `b LEFT JOIN a`. Aggregates (COUNT, SUM,
//! MIN, MAX, AVG), GROUP BY, HAVING and DISTINCT run in the gateway's merge over the joined
//! rows ([`plan_grouped`]).
//!
//! Refused with 1235 (a precise message each): other aggregates (GROUP_CONCAT, COUNT(DISTINCT)),
//! subqueries, expressions over both sides, unqualified columns, other WHERE conditions on the
//! NULL-extended side of a LEFT JOIN, RIGHT JOIN after other joins, NATURAL joins at the split,
//! several `*` per side, `*` with aggregates.

use super::builder::{plan_query, unsupported, PlanContext};
use super::scope::{conjuncts, resolve_table, table_factor_name, value_of};
use super::{Plan, Route, ShardSql, ValueRef};
use crate::error::codes;
use crate::wire::Value;
use crate::SqlError;
use sqlparser::ast::{
    BinaryOperator, Expr, GroupByExpr, Ident, Join, JoinConstraint, JoinOperator, LimitClause,
    OrderByKind, Query, Select, SelectItem, SetExpr, Statement, TableFactor, TableWithJoins,
    Value as AstValue,
};
use std::ops::ControlFlow;

/// INNER or LEFT: which rows a left row without a matching right row gives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JoinKind {
    /// None.
    Inner,
    /// One, with the right columns NULL.
    Left,
}

/// Which side of the join a column comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Left,
    Right,
}

/// A nested-loop join executed at the gateway; see the module docs.
///
/// Each side's select list is a list of items: one column each, or a `*` / `t.*` (at most one
/// per side) whose width is known once the side's column definitions arrive.
#[derive(Clone, Debug)]
pub struct JoinPlan {
    pub kind: JoinKind,
    /// The outer side: runs once, its rows are buffered (see `exec::join`).
    pub left: Route,
    /// The inner side: runs once per left row, with `:vN` bound to the left row's values.
    pub right: Route,
    /// The right query with a WHERE that matches nothing, sent to the right keyspace's first
    /// shard when the left side has no rows (the result still needs the right columns).
    pub right_fields: Statement,
    /// Per side, per select item: is it a `*` (any width) rather than one column?
    pub left_items: Vec<bool>,
    pub right_items: Vec<bool>,
    /// `:vN` is left item `vars[N]`.
    pub vars: Vec<usize>,
    /// Output columns in order (side, item); the first `visible` are the client's, the rest
    /// are ORDER BY keys the client did not select.
    pub columns: Vec<(Side, usize)>,
    pub visible: usize,
    /// ORDER BY keys as (index into `columns`, descending).
    pub order_by: Vec<(usize, bool)>,
    /// LEFT JOIN `WHERE right.col IS [NOT] NULL`, checked on the joined rows: (index into
    /// `columns`, true for IS NULL).
    pub filters: Vec<(usize, bool)>,
    /// LIMIT count and offset, bound at execution.
    pub limit: Option<(ValueRef, ValueRef)>,
    /// Aggregates, GROUP BY, HAVING, DISTINCT (and then ORDER BY and LIMIT): every output
    /// column goes to this merge (the multi-shard one, fed by the joined rows as one shard);
    /// only its merge, HAVING, LIMIT and hidden-column fields are used.
    pub post: Option<Box<Route>>,
    /// The variable names of `vars`, for EXPLAIN (`o.status`).
    pub var_names: Vec<String>,
}

/// One table of the FROM clause in order, with how it joins what comes before it.
struct Item {
    relation: TableFactor,
    qualifier: String,
    /// `None` for the first table and comma joins; else the join operator.
    op: Option<JoinOperator>,
}

/// Tries to plan `select` as a nested-loop join. `Ok(None)`: the FROM clause has no split
/// into two routes (the caller reports why one route is not possible).
pub(super) fn plan_join(
    q: &Query,
    select: &Select,
    ctx: &PlanContext<'_>,
) -> Result<Option<Plan>, SqlError> {
    let items = flatten(&select.from, ctx)?;
    if items.len() < 2 {
        return Ok(None);
    }
    // `a RIGHT JOIN b` is `b LEFT JOIN a` with `*` still listing a's columns first.
    if let [a, b] = items.as_slice() {
        if let Some(JoinOperator::Right(c) | JoinOperator::RightOuter(c)) = &b.op {
            let swapped = [
                Item {
                    relation: b.relation.clone(),
                    qualifier: b.qualifier.clone(),
                    op: None,
                },
                Item {
                    relation: a.relation.clone(),
                    qualifier: a.qualifier.clone(),
                    op: Some(JoinOperator::LeftOuter(c.clone())),
                },
            ];
            return Ok(
                try_split(q, select, &swapped, 1, true, ctx)?.map(|p| Plan::Join(Box::new(p)))
            );
        }
    }
    for k in (1..items.len()).rev() {
        if let Some(p) = try_split(q, select, &items, k, false, ctx)? {
            return Ok(Some(Plan::Join(Box::new(p))));
        }
    }
    Ok(None)
}

fn flatten(from: &[TableWithJoins], ctx: &PlanContext<'_>) -> Result<Vec<Item>, SqlError> {
    let mut items = Vec::new();
    for twj in from {
        for (relation, op) in std::iter::once((&twj.relation, None)).chain(
            twj.joins
                .iter()
                .map(|j| (&j.relation, Some(&j.join_operator))),
        ) {
            let (name, alias) = table_factor_name(relation)
                .ok_or_else(|| unsupported("derived tables in a cross-shard join"))?;
            let t = resolve_table(name, alias.as_deref(), ctx)?;
            items.push(Item {
                relation: relation.clone(),
                qualifier: t.qualifier,
                op: op.cloned(),
            });
        }
    }
    Ok(items)
}

/// Which sides an expression reads; `Err` for what a join cannot split.
fn sides_of(e: &Expr, left: &[String], right: &[String]) -> Result<(bool, bool), SqlError> {
    let mut l = false;
    let mut r = false;
    let mut err = None;
    let _ = sqlparser::ast::visit_expressions(e, |x| {
        let col = match x {
            Expr::Subquery(_) | Expr::InSubquery { .. } | Expr::Exists { .. } => {
                err = Some(unsupported("subqueries in a cross-shard join"));
                return ControlFlow::Break(());
            }
            Expr::Identifier(i) => {
                if i.value.starts_with('@') {
                    return ControlFlow::Continue(());
                }
                err = Some(unsupported(format!(
                    "unqualified column '{}' in a cross-shard join (qualify it with its table)",
                    i.value
                )));
                return ControlFlow::Break(());
            }
            Expr::CompoundIdentifier(p) if p.len() >= 2 => {
                p[p.len() - 2].value.to_ascii_lowercase()
            }
            _ => return ControlFlow::Continue(()),
        };
        if left.contains(&col) {
            l = true;
        } else if right.contains(&col) {
            r = true;
        } else {
            err = Some(SqlError::new(
                codes::ER_BAD_FIELD,
                "42S22",
                format!("Unknown column '{x}' in 'field list'"),
            ));
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    });
    match err {
        Some(e) => Err(e),
        None => Ok((l, r)),
    }
}

fn and_all(preds: Vec<Expr>) -> Option<Expr> {
    preds.into_iter().reduce(|a, b| Expr::BinaryOp {
        left: Box::new(a),
        op: BinaryOperator::And,
        right: Box::new(b),
    })
}

/// The FROM clause of one side: its items chained, comma joins as CROSS JOIN.
fn side_from(items: &[Item]) -> Vec<TableWithJoins> {
    let joins = items[1..]
        .iter()
        .map(|it| Join {
            relation: it.relation.clone(),
            global: false,
            join_operator: it
                .op
                .clone()
                .unwrap_or(JoinOperator::CrossJoin(JoinConstraint::None)),
        })
        .collect();
    vec![TableWithJoins {
        relation: items[0].relation.clone(),
        joins,
    }]
}

fn try_split(
    q: &Query,
    select: &Select,
    items: &[Item],
    k: usize,
    swapped: bool,
    ctx: &PlanContext<'_>,
) -> Result<Option<JoinPlan>, SqlError> {
    let left_q: Vec<String> = items[..k].iter().map(|i| i.qualifier.clone()).collect();
    let right_q: Vec<String> = items[k..].iter().map(|i| i.qualifier.clone()).collect();
    // The join at the split, and what the right part may contain.
    let (kind, constraint) = match &items[k].op {
        None => (JoinKind::Inner, None),
        Some(
            JoinOperator::Join(c)
            | JoinOperator::Inner(c)
            | JoinOperator::CrossJoin(c)
            | JoinOperator::StraightJoin(c),
        ) => (JoinKind::Inner, Some(c)),
        Some(JoinOperator::Left(c) | JoinOperator::LeftOuter(c)) => (JoinKind::Left, Some(c)),
        Some(JoinOperator::Right(_) | JoinOperator::RightOuter(_)) => {
            return Err(unsupported(
                "RIGHT JOIN across shards after other joins (write it as a LEFT JOIN)",
            ))
        }
        Some(_) => return Ok(None),
    };
    let inner_only = items[k + 1..].iter().all(|it| {
        matches!(
            &it.op,
            None | Some(
                JoinOperator::Join(_)
                    | JoinOperator::Inner(_)
                    | JoinOperator::CrossJoin(_)
                    | JoinOperator::StraightJoin(_)
            )
        )
    });
    if !inner_only || (kind == JoinKind::Left && k + 1 != items.len()) {
        return Ok(None);
    }
    // Aggregates, GROUP BY, HAVING, DISTINCT: the join's rows go through a gateway merge.
    let has_aggregates = select.projection.iter().any(|i| match i {
        SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => has_aggregate(e),
        _ => false,
    });
    let grouped = !matches!(&select.group_by, GroupByExpr::Expressions(e, _) if e.is_empty());
    if has_aggregates || grouped || select.having.is_some() || select.distinct.is_some() {
        return plan_grouped(q, select, items, k, swapped, ctx);
    }
    if q.with.is_some() || q.fetch.is_some() {
        return Err(unsupported("WITH or FETCH in a cross-shard join"));
    }
    let mut split_conds = Vec::new();
    let mut uses_using = false;
    match constraint {
        Some(JoinConstraint::On(e)) => conjuncts(e, &mut split_conds),
        Some(JoinConstraint::Using(cols)) => {
            uses_using = true;
            for c in cols {
                let col = c.to_string().trim_matches('`').to_string();
                split_conds.push(Expr::BinaryOp {
                    left: Box::new(qualified(&items[k - 1].qualifier, &col)),
                    op: BinaryOperator::Eq,
                    right: Box::new(qualified(&items[k].qualifier, &col)),
                });
            }
        }
        Some(JoinConstraint::Natural) => {
            return Err(unsupported("NATURAL JOIN across shards"));
        }
        Some(JoinConstraint::None) | None => {}
    }
    let mut where_conds = Vec::new();
    if let Some(w) = &select.selection {
        conjuncts(w, &mut where_conds);
    }
    let mut left_preds = Vec::new();
    let mut right_preds = Vec::new();
    // LEFT JOIN: `right.col IS [NOT] NULL` in WHERE is checked at the gateway after the join
    // (it sees the NULL-extended rows); (column expression, wants NULL).
    let mut null_checks: Vec<(Expr, bool)> = Vec::new();
    for c in &where_conds {
        let (l, r) = sides_of(c, &left_q, &right_q)?;
        let null_check = match c {
            Expr::IsNull(e) => Some((e, true)),
            Expr::IsNotNull(e) => Some((e, false)),
            _ => None,
        };
        if !r {
            left_preds.push(c.clone());
        } else if let (JoinKind::Left, Some((e, is_null)), false) = (kind, null_check, l) {
            if !matches!(e.as_ref(), Expr::CompoundIdentifier(_)) {
                return Err(unsupported(format!(
                    "WHERE condition on the NULL-extended side of a cross-shard LEFT JOIN: {c}"
                )));
            }
            null_checks.push((e.as_ref().clone(), is_null));
        } else if kind == JoinKind::Left {
            return Err(unsupported(format!(
                "WHERE condition on the NULL-extended side of a cross-shard LEFT JOIN: {c}"
            )));
        } else {
            right_preds.push(c.clone());
        }
    }
    for c in &split_conds {
        let (_, r) = sides_of(c, &left_q, &right_q)?;
        if !r && kind == JoinKind::Inner {
            left_preds.push(c.clone());
        } else {
            right_preds.push(c.clone());
        }
    }
    // The right part's own ON conditions may name left columns too (bound like the rest).
    for it in &items[k + 1..] {
        if let Some(
            JoinOperator::Join(JoinConstraint::On(e))
            | JoinOperator::Inner(JoinConstraint::On(e))
            | JoinOperator::CrossJoin(JoinConstraint::On(e))
            | JoinOperator::StraightJoin(JoinConstraint::On(e)),
        ) = &it.op
        {
            sides_of(e, &left_q, &right_q)?;
        }
    }

    // The select list, split per side.
    let mut left_items: Vec<SelectItem> = Vec::new();
    let mut right_items: Vec<SelectItem> = Vec::new();
    let mut columns = Vec::new();
    let push = |side: Side, it: SelectItem, l: &mut Vec<SelectItem>, r: &mut Vec<SelectItem>| {
        let list = if side == Side::Left { l } else { r };
        list.push(it);
        (side, list.len() - 1)
    };
    for item in &select.projection {
        match item {
            SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => {
                let (l, r) = sides_of(e, &left_q, &right_q)?;
                if l && r {
                    return Err(unsupported(format!(
                        "an expression over both sides of a cross-shard join: {e}"
                    )));
                }
                let side = if r { Side::Right } else { Side::Left };
                columns.push(push(side, item.clone(), &mut left_items, &mut right_items));
            }
            SelectItem::Wildcard(_) => {
                if uses_using {
                    return Err(unsupported("* over a cross-shard join with USING"));
                }
                let order = if swapped {
                    [Side::Right, Side::Left]
                } else {
                    [Side::Left, Side::Right]
                };
                for side in order {
                    columns.push(push(side, item.clone(), &mut left_items, &mut right_items));
                }
            }
            SelectItem::QualifiedWildcard(kind, _) => {
                let name = kind.to_string().to_ascii_lowercase();
                let name = name.strip_suffix(".*").unwrap_or(&name);
                let qual = name.rsplit('.').next().unwrap_or("").trim_matches('`');
                let side = if left_q.iter().any(|x| x == qual) {
                    Side::Left
                } else if right_q.iter().any(|x| x == qual) {
                    Side::Right
                } else {
                    return Err(SqlError::new(
                        codes::ER_BAD_FIELD,
                        "42S22",
                        format!("Unknown table '{qual}'"),
                    ));
                };
                columns.push(push(side, item.clone(), &mut left_items, &mut right_items));
            }
            other => {
                return Err(unsupported(format!(
                    "select item {other} in a cross-shard join"
                )))
            }
        }
    }
    let visible = columns.len();
    for (name, list) in [("left", &left_items), ("right", &right_items)] {
        let wild = list.iter().filter(|i| is_wildcard(i)).count();
        if wild > 1 {
            return Err(unsupported(format!(
                "more than one * on the {name} side of a cross-shard join"
            )));
        }
    }

    // ORDER BY at the gateway: select-list columns, or columns added for it.
    let mut order_by = Vec::new();
    if let Some(ob) = &q.order_by {
        let OrderByKind::Expressions(exprs) = &ob.kind else {
            return Err(unsupported("ORDER BY ALL"));
        };
        for it in exprs {
            let desc = matches!(it.options.sort, Some(sqlparser::ast::OrderBySort::Desc));
            let col = order_column(&it.expr, &select.projection)?;
            let col = match col {
                Some(c) => c,
                None => {
                    let (l, r) = sides_of(&it.expr, &left_q, &right_q)?;
                    if l && r {
                        return Err(unsupported(format!(
                            "ORDER BY an expression over both sides of a cross-shard join: {}",
                            it.expr
                        )));
                    }
                    let side = if r { Side::Right } else { Side::Left };
                    columns.push(push(
                        side,
                        SelectItem::UnnamedExpr(it.expr.clone()),
                        &mut left_items,
                        &mut right_items,
                    ));
                    columns.len() - 1
                }
            };
            order_by.push((col, desc));
        }
    }
    let mut filters = Vec::new();
    for (e, is_null) in null_checks {
        columns.push(push(
            Side::Right,
            SelectItem::UnnamedExpr(e),
            &mut left_items,
            &mut right_items,
        ));
        filters.push((columns.len() - 1, is_null));
    }
    let limit = match &q.limit_clause {
        None => None,
        Some(lc) => {
            let (count, offset) = match lc {
                LimitClause::LimitOffset { limit, offset, .. } => {
                    (limit.as_ref(), offset.as_ref().map(|o| &o.value))
                }
                LimitClause::OffsetCommaLimit { offset, limit } => (Some(limit), Some(offset)),
            };
            match count {
                None => None,
                Some(c) => {
                    let c = value_of(c).ok_or_else(|| unsupported("non-literal LIMIT"))?;
                    let o = match offset {
                        Some(o) => value_of(o).ok_or_else(|| unsupported("non-literal OFFSET"))?,
                        None => ValueRef::Const(Value::Int(0)),
                    };
                    Some((c, o))
                }
            }
        }
    };

    // The right side's references to left columns become `:vN`, fetched by the left query.
    let mut vars: Vec<usize> = Vec::new();
    let mut var_names: Vec<String> = Vec::new();
    let mut bind = |e: &mut Expr| {
        let _ = sqlparser::ast::visit_expressions_mut(e, |x| {
            if let Expr::CompoundIdentifier(p) = x {
                if p.len() >= 2 && left_q.contains(&p[p.len() - 2].value.to_ascii_lowercase()) {
                    let text = x.to_string();
                    let n = match var_names.iter().position(|v| *v == text) {
                        Some(n) => n,
                        None => {
                            // A left column the client selected anyway is not fetched twice.
                            let selected = left_items.iter().position(
                                |i| matches!(i, SelectItem::UnnamedExpr(e) if e.to_string() == text),
                            );
                            let item = match selected {
                                Some(i) => i,
                                None => {
                                    left_items.push(SelectItem::UnnamedExpr(x.clone()));
                                    left_items.len() - 1
                                }
                            };
                            vars.push(item);
                            var_names.push(text);
                            var_names.len() - 1
                        }
                    };
                    *x = Expr::value(AstValue::Placeholder(format!(":v{n}")));
                }
            }
            ControlFlow::<()>::Continue(())
        });
    };
    let mut right_from = side_from(&items[k..]);
    for j in &mut right_from[0].joins {
        if let JoinOperator::Join(JoinConstraint::On(e))
        | JoinOperator::Inner(JoinConstraint::On(e))
        | JoinOperator::CrossJoin(JoinConstraint::On(e))
        | JoinOperator::StraightJoin(JoinConstraint::On(e)) = &mut j.join_operator
        {
            bind(e);
        }
    }
    for p in &mut right_preds {
        bind(p);
    }
    if right_items.is_empty() {
        // Only left columns selected: the right query still needs a column (its rows count).
        right_items.push(SelectItem::UnnamedExpr(Expr::value(AstValue::Number(
            "1".into(),
            false,
        ))));
    }
    if left_items.is_empty() {
        // Only right columns selected and nothing bound: the left query still needs a column.
        left_items.push(SelectItem::UnnamedExpr(Expr::value(AstValue::Number(
            "1".into(),
            false,
        ))));
    }

    let side_query = |proj: Vec<SelectItem>, from: Vec<TableWithJoins>, preds: Vec<Expr>| {
        let mut s = select.clone();
        s.projection = proj;
        s.from = from;
        s.selection = and_all(preds);
        let mut sq = q.clone();
        sq.order_by = None;
        sq.limit_clause = None;
        *sq.body = SetExpr::Select(Box::new(s));
        Statement::Query(Box::new(sq))
    };
    let left_items_flags: Vec<bool> = left_items.iter().map(is_wildcard).collect();
    let right_items_flags: Vec<bool> = right_items.iter().map(is_wildcard).collect();
    let left_stmt = side_query(left_items, side_from(&items[..k]), left_preds);
    let right_stmt = side_query(right_items.clone(), right_from.clone(), right_preds);
    let right_fields = side_query(
        right_items,
        right_from,
        vec![Expr::BinaryOp {
            left: Box::new(Expr::value(AstValue::Number("1".into(), false))),
            op: BinaryOperator::NotEq,
            right: Box::new(Expr::value(AstValue::Number("1".into(), false))),
        }],
    );
    let (Some(left), Some(right)) = (side_route(&left_stmt, ctx), side_route(&right_stmt, ctx))
    else {
        return Ok(None);
    };
    Ok(Some(JoinPlan {
        kind,
        left,
        right,
        right_fields,
        left_items: left_items_flags,
        right_items: right_items_flags,
        vars,
        columns,
        visible,
        order_by,
        filters,
        limit,
        post: None,
        var_names,
    }))
}

/// A grouped query over a join: the merge planner (the one multi-shard routes use) works out
/// the gateway's grouping over the joined rows; the join itself selects, per joined row, what
/// each aggregate needs: `1` for `COUNT(*)`, `x IS NOT NULL` for `COUNT(x)` (the merge sums
/// partial counts), `x` for SUM, MIN and MAX (AVG is SUM plus a hidden COUNT).
fn plan_grouped(
    q: &Query,
    select: &Select,
    items: &[Item],
    k: usize,
    swapped: bool,
    ctx: &PlanContext<'_>,
) -> Result<Option<JoinPlan>, SqlError> {
    for item in &select.projection {
        match item {
            SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => {
                if has_aggregate(e) && super::merge::aggregate_of(e).is_none() {
                    return Err(unsupported(format!(
                        "{e} over a cross-shard join (only COUNT, SUM, MIN, MAX and AVG of a column)"
                    )));
                }
            }
            _ => return Err(unsupported("* with aggregates over a cross-shard join")),
        }
    }
    let mut post = Route {
        opcode: super::Opcode::Scatter,
        keyspace: String::new(),
        tables: Vec::new(),
        sql: ShardSql::Template(Statement::Query(Box::new(q.clone()))),
        vindex: None,
        values: Vec::new(),
        in_column: None,
        destination: Vec::new(),
        merge: crate::exec::MergeSpec::default(),
        limit: None,
        having: Vec::new(),
        hidden_columns: 0,
        is_write: false,
    };
    super::merge::plan_merge(&mut post, q, select)?;
    let rewritten = match post.template_query() {
        Some(tq) => match *tq.body {
            SetExpr::Select(s) => s.projection,
            _ => select.projection.clone(),
        },
        None => select.projection.clone(),
    };
    // Each column of the merge, as the joined row provides it.
    let mut projection = Vec::new();
    for (i, item) in rewritten.iter().enumerate() {
        let (expr, alias) = match item {
            SelectItem::UnnamedExpr(e) => (e, None),
            SelectItem::ExprWithAlias { expr, alias } => (expr, Some(alias.clone())),
            _ => return Err(unsupported("* with aggregates over a cross-shard join")),
        };
        let per_row = match super::merge::aggregate_of(expr) {
            Some((func, _, arg)) => {
                if i < select.projection.len() && !post.merge.names.iter().any(|(c, _)| *c == i) {
                    let name = alias
                        .as_ref()
                        .map(|a| a.value.clone())
                        .unwrap_or_else(|| expr.to_string());
                    post.merge.names.push((i, name));
                }
                match (func.as_str(), arg) {
                    ("count", None) => Expr::value(AstValue::Number("1".into(), false)),
                    ("count", Some(x)) => Expr::IsNotNull(Box::new(x)),
                    (_, Some(x)) => x,
                    (f, None) => return Err(unsupported(format!("{f}(*)"))),
                }
            }
            None => expr.clone(),
        };
        projection.push(match alias {
            Some(alias) => SelectItem::ExprWithAlias {
                expr: per_row,
                alias,
            },
            None => SelectItem::UnnamedExpr(per_row),
        });
    }
    let mut flat = select.clone();
    flat.projection = projection;
    flat.group_by = GroupByExpr::Expressions(vec![], vec![]);
    flat.having = None;
    flat.distinct = None;
    let mut fq = q.clone();
    fq.order_by = None;
    fq.limit_clause = None;
    *fq.body = SetExpr::Select(Box::new(flat.clone()));
    let Some(mut j) = try_split(&fq, &flat, items, k, swapped, ctx)? else {
        return Ok(None);
    };
    if j.columns.len() < rewritten.len() || j.visible != rewritten.len() {
        return Err(unsupported(
            "this select list with aggregates over a cross-shard join",
        ));
    }
    post.sql = ShardSql::Fixed(String::new());
    j.post = Some(Box::new(post));
    Ok(Some(j))
}

/// One side planned as one route (its SQL always rendered from its own statement).
fn side_route(stmt: &Statement, ctx: &PlanContext<'_>) -> Option<Route> {
    let Statement::Query(q) = stmt else {
        return None;
    };
    match plan_query(stmt, q, ctx, false) {
        Ok(Plan::Route(mut r)) if r.merge.is_passthrough() && r.limit.is_none() => {
            if matches!(r.sql, ShardSql::Original) {
                r.sql = ShardSql::Template(stmt.clone());
            }
            Some(r)
        }
        _ => None,
    }
}

fn is_wildcard(i: &SelectItem) -> bool {
    matches!(
        i,
        SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..)
    )
}

fn qualified(table: &str, column: &str) -> Expr {
    Expr::CompoundIdentifier(vec![Ident::new(table), Ident::new(column)])
}

/// The output column an ORDER BY expression names: a position, an alias, or an identical
/// select-list expression. `None`: not in the select list.
fn order_column(e: &Expr, projection: &[SelectItem]) -> Result<Option<usize>, SqlError> {
    // Output column of projection item i (a `*` spans two entries of `columns`).
    let mut first_col = Vec::new();
    let mut at = 0;
    for item in projection {
        first_col.push(at);
        at += if matches!(item, SelectItem::Wildcard(_)) {
            2
        } else {
            1
        };
    }
    if let Expr::Value(v) = e {
        match &v.value {
            AstValue::Number(n, _) => {
                let pos: usize = n.parse().unwrap_or(0);
                if pos == 0 || pos > projection.len() || is_wildcard(&projection[pos - 1]) {
                    if pos >= 1 && pos <= projection.len() {
                        return Err(unsupported(
                            "ORDER BY the position of a * in a cross-shard join",
                        ));
                    }
                    return Err(SqlError::new(
                        codes::ER_BAD_FIELD,
                        "42S22",
                        format!("Unknown column '{pos}' in 'order clause'"),
                    ));
                }
                return Ok(Some(first_col[pos - 1]));
            }
            AstValue::Placeholder(_) => {
                return Err(unsupported("ORDER BY a bound value in a cross-shard join"))
            }
            _ => {}
        }
    }
    let text = e.to_string().to_ascii_lowercase();
    let unqualified = match e {
        Expr::Identifier(i) => Some(i.value.to_ascii_lowercase()),
        _ => None,
    };
    for (i, item) in projection.iter().enumerate() {
        let found = match item {
            SelectItem::ExprWithAlias { expr, alias } => {
                alias.value.to_ascii_lowercase() == text
                    || expr.to_string().to_ascii_lowercase() == text
            }
            SelectItem::UnnamedExpr(x) => {
                x.to_string().to_ascii_lowercase() == text
                    || unqualified.as_ref().is_some_and(|u| match x {
                        Expr::CompoundIdentifier(p) => {
                            p.last().is_some_and(|l| l.value.to_ascii_lowercase() == *u)
                        }
                        _ => false,
                    })
            }
            _ => false,
        };
        if found {
            return Ok(Some(first_col[i]));
        }
    }
    Ok(None)
}

/// Does `e` call an aggregate function?
fn has_aggregate(e: &Expr) -> bool {
    sqlparser::ast::visit_expressions(e, |x| match x {
        Expr::Function(f)
            if matches!(
                f.name.to_string().to_ascii_lowercase().as_str(),
                "count"
                    | "sum"
                    | "min"
                    | "max"
                    | "avg"
                    | "group_concat"
                    | "bit_and"
                    | "bit_or"
                    | "bit_xor"
                    | "std"
                    | "stddev"
                    | "variance"
                    | "json_arrayagg"
            ) =>
        {
            ControlFlow::Break(())
        }
        _ => ControlFlow::Continue(()),
    })
    .is_break()
}
