//! What the gateway does with the rows of a multi-shard SELECT, and the per-shard query that
//! feeds it: AVG becomes SUM plus a hidden COUNT, LIMIT n OFFSET m becomes LIMIT m+n, HAVING
//! moves to the gateway (shards only see partial groups), and ORDER BY / GROUP BY / HAVING keys
//! missing from the select list are fetched as hidden columns after the visible ones.
//!
//! Hidden columns are numbered from [`HIDDEN_BASE`] while planning. Without a `*` in the select
//! list the visible column count is known and they are renumbered at once; with one, they stay
//! relative to the end of the row until the shards' column count is known
//! ([`Route::merge_spec_for`](super::Route::merge_spec_for)).

use super::builder::unsupported;
use super::scope::{conjuncts, value_of};
use super::{Route, ShardSql, ValueRef};
use crate::exec::{AggFunc, Aggregate, CmpOp, MergeSpec, SortKey};
use crate::wire::Value;
use crate::SqlError;
use sqlparser::ast::{
    BinaryOperator, Expr, FunctionArg, FunctionArgExpr, FunctionArguments, GroupByExpr, Ident,
    LimitClause, ObjectName, OrderByKind, Query, Select, SelectItem, SetExpr, Statement,
    Value as AstValue,
};

/// Column indexes at or above this denote hidden columns appended for the merge, counted
/// from the first hidden column.
pub use crate::exec::merge::HIDDEN_BASE;

/// Renumbers every column a merge refers to.
pub(super) fn remap_columns(m: &mut MergeSpec, f: &dyn Fn(usize) -> usize) {
    m.remap_columns(f);
}

/// The select list being planned and the hidden columns added to it.
struct Keys<'s> {
    select: &'s Select,
    /// Items before the first `*`: their positions are the columns' positions.
    known_prefix: usize,
    /// Hidden columns with the key they are found by (their expression's text; an AVG's
    /// hidden SUM is found by the AVG's text, so a plain SUM never shares it).
    hidden: Vec<(String, Expr)>,
    merge: MergeSpec,
}

impl Keys<'_> {
    /// The column of an ORDER BY / GROUP BY / HAVING expression: a select-list position, an
    /// alias or identical select-list expression, else a hidden column appended for it (an
    /// aggregate then merges like the visible ones).
    fn column(&mut self, e: &Expr, clause: &str) -> Result<usize, SqlError> {
        if let Expr::Value(v) = e {
            if let AstValue::Number(n, _) = &v.value {
                let pos: usize = n
                    .parse()
                    .map_err(|_| unsupported(format!("{clause} position {n}")))?;
                // Hidden columns come last, so position p is column p-1 even after a `*`.
                if pos == 0
                    || (self.known_prefix == self.select.projection.len()
                        && pos > self.select.projection.len())
                {
                    return Err(SqlError::new(
                        crate::error::codes::ER_BAD_FIELD,
                        "42S22",
                        format!("Unknown column '{pos}' in '{clause}'"),
                    ));
                }
                return Ok(pos - 1);
            }
        }
        let text = e.to_string().to_ascii_lowercase();
        let unqualified = super::scope::column_of(e).filter(|c| c.0.is_none());
        for (i, item) in self.select.projection[..self.known_prefix]
            .iter()
            .enumerate()
        {
            let found = match item {
                SelectItem::ExprWithAlias { expr, alias } => {
                    alias.value.to_ascii_lowercase() == text
                        || expr.to_string().to_ascii_lowercase() == text
                }
                SelectItem::UnnamedExpr(x) => {
                    x.to_string().to_ascii_lowercase() == text
                        || unqualified
                            .as_ref()
                            .is_some_and(|u| super::scope::column_of(x).is_some_and(|c| c.1 == u.1))
                }
                _ => false,
            };
            if found {
                return Ok(i);
            }
        }
        if let Some(pos) = self.hidden_position(&text) {
            return Ok(HIDDEN_BASE + pos);
        }
        if let Some((func, distinct, arg)) = aggregate_of(e) {
            if distinct {
                return Err(unsupported(format!("{func}(DISTINCT …) across shards")));
            }
            let func = match func.as_str() {
                "count" => AggFunc::Count,
                "sum" => AggFunc::Sum,
                "min" => AggFunc::Min,
                "max" => AggFunc::Max,
                _ => {
                    // AVG(x): a hidden SUM(x) named after the AVG (so a plain SUM(x) never
                    // shares it) merged as an average with a hidden COUNT(x).
                    let arg = arg.ok_or_else(|| unsupported("AVG(*)"))?;
                    let count_col =
                        self.hidden_aggregate(make_fn("count", arg.clone()), AggFunc::Count);
                    self.hidden.push((text, make_fn("sum", arg)));
                    let col = HIDDEN_BASE + self.hidden.len() - 1;
                    self.merge.aggregates.push(Aggregate {
                        col,
                        func: AggFunc::Avg { count_col },
                    });
                    return Ok(col);
                }
            };
            return Ok(self.hidden_aggregate(e.clone(), func));
        }
        if contains_aggregate(e) {
            return Err(unsupported(format!(
                "{clause} on an expression over aggregates across shards: {e}"
            )));
        }
        Ok(self.push_hidden(e.clone()))
    }

    fn hidden_position(&self, text: &str) -> Option<usize> {
        self.hidden.iter().position(|(key, _)| key == text)
    }

    fn push_hidden(&mut self, e: Expr) -> usize {
        self.hidden.push((e.to_string().to_ascii_lowercase(), e));
        HIDDEN_BASE + self.hidden.len() - 1
    }

    /// A hidden aggregate column (shared with an identical one already hidden).
    fn hidden_aggregate(&mut self, e: Expr, func: AggFunc) -> usize {
        let text = e.to_string().to_ascii_lowercase();
        if let Some(pos) = self.hidden_position(&text) {
            return HIDDEN_BASE + pos;
        }
        let col = self.push_hidden(e);
        self.merge.aggregates.push(Aggregate { col, func });
        col
    }
}

/// Works out what the gateway must do with the rows of a multi-shard SELECT, rewriting the
/// per-shard query where needed.
pub(super) fn plan_merge(route: &mut Route, q: &Query, select: &Select) -> Result<(), SqlError> {
    let mut sel = select.clone();
    let known_prefix = select
        .projection
        .iter()
        .position(|i| {
            matches!(
                i,
                SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..)
            )
        })
        .unwrap_or(select.projection.len());
    let has_wildcard = known_prefix < select.projection.len();
    let visible = select.projection.len();
    let mut keys = Keys {
        select,
        known_prefix,
        hidden: Vec::new(),
        merge: MergeSpec::default(),
    };
    let mut rewritten = false;

    // Aggregates in the select list.
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
        if i >= known_prefix {
            return Err(unsupported("aggregates after * across shards"));
        }
        let f = match func.as_str() {
            "count" => AggFunc::Count,
            "sum" => AggFunc::Sum,
            "min" => AggFunc::Min,
            "max" => AggFunc::Max,
            _ => {
                // AVG(x) -> SUM(x) shown under the original name, plus a hidden COUNT(x).
                let Some(arg) = arg else {
                    return Err(unsupported("AVG(*)"));
                };
                let name = alias
                    .as_ref()
                    .map(|a| a.value.clone())
                    .unwrap_or_else(|| expr.to_string());
                // The shard's column name does not matter: the merge renames it.
                sel.projection[i] = match &alias {
                    Some(a) => SelectItem::ExprWithAlias {
                        expr: make_fn("sum", arg.clone()),
                        alias: a.clone(),
                    },
                    None => SelectItem::UnnamedExpr(make_fn("sum", arg.clone())),
                };
                let count_col = keys.hidden_aggregate(make_fn("count", arg), AggFunc::Count);
                keys.merge.names.push((i, name));
                rewritten = true;
                AggFunc::Avg { count_col }
            }
        };
        keys.merge.aggregates.push(Aggregate { col: i, func: f });
    }

    // GROUP BY keys.
    if let GroupByExpr::Expressions(exprs, _) = &select.group_by {
        for e in exprs {
            let col = keys.column(e, "group statement")?;
            keys.merge.group_by.push(col);
        }
    }

    // HAVING: evaluated at the gateway on merged groups, since a shard only sees part of each
    // group. Without grouping it is a row filter and stays on the shards.
    let grouped = !keys.merge.group_by.is_empty() || !keys.merge.aggregates.is_empty();
    if let (Some(h), true) = (&select.having, grouped) {
        let mut cs = Vec::new();
        conjuncts(h, &mut cs);
        for c in cs {
            let (key, op, v) = having_condition(&c)?;
            let col = keys.column(key, "having clause")?;
            route.having.push((col, op, v));
        }
        sel.having = None;
        rewritten = true;
    }

    keys.merge.distinct = matches!(select.distinct, Some(sqlparser::ast::Distinct::Distinct));

    // ORDER BY keys.
    if let Some(ob) = &q.order_by {
        if let OrderByKind::Expressions(items) = &ob.kind {
            for it in items {
                let col = keys.column(&it.expr, "order clause")?;
                let desc = matches!(it.options.sort, Some(sqlparser::ast::OrderBySort::Desc));
                keys.merge.order_by.push(SortKey { col, desc });
            }
        }
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
    let mut merge = keys.merge;
    if grouped || merge.distinct {
        // Grouping at the gateway sees every row: the shards must not apply the LIMIT.
        if route.limit.is_some() {
            query.limit_clause = None;
        }
    }
    let n_hidden = keys.hidden.len();
    sel.projection.extend(
        keys.hidden
            .into_iter()
            .map(|(_, e)| SelectItem::UnnamedExpr(e)),
    );
    if n_hidden > 0 {
        rewritten = true;
        route.hidden_columns = n_hidden;
        if !has_wildcard {
            let f = |c: usize| {
                if c >= HIDDEN_BASE {
                    visible + (c - HIDDEN_BASE)
                } else {
                    c
                }
            };
            remap_columns(&mut merge, &f);
            for h in &mut route.having {
                h.0 = f(h.0);
            }
            merge.visible = Some(visible);
        }
    }
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

/// One HAVING conjunct as `key <op> literal` (a literal on the left is moved right).
fn having_condition(c: &Expr) -> Result<(&Expr, CmpOp, ValueRef), SqlError> {
    let refused = || unsupported(format!("HAVING {c} across shards"));
    let Expr::BinaryOp { left, op, right } = c else {
        return Err(refused());
    };
    let (op, flipped) = match op {
        BinaryOperator::Eq => (CmpOp::Eq, CmpOp::Eq),
        BinaryOperator::NotEq => (CmpOp::NotEq, CmpOp::NotEq),
        BinaryOperator::Lt => (CmpOp::Lt, CmpOp::Gt),
        BinaryOperator::LtEq => (CmpOp::LtEq, CmpOp::GtEq),
        BinaryOperator::Gt => (CmpOp::Gt, CmpOp::Lt),
        BinaryOperator::GtEq => (CmpOp::GtEq, CmpOp::LtEq),
        _ => return Err(refused()),
    };
    match (value_of(left), value_of(right)) {
        (None, Some(v)) => Ok((left.as_ref(), op, v)),
        (Some(v), None) => Ok((right.as_ref(), flipped, v)),
        _ => Err(refused()),
    }
}

fn make_fn(name: &str, arg: Expr) -> Expr {
    use sqlparser::ast::{Function, FunctionArgumentList};
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
pub(super) fn aggregate_of(e: &Expr) -> Option<(String, bool, Option<Expr>)> {
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

/// Does `e` use an aggregate of this query (those inside its subqueries are theirs)?
fn contains_aggregate(e: &Expr) -> bool {
    use sqlparser::ast::{Visit, Visitor};
    use std::ops::ControlFlow;
    struct Find {
        depth: usize,
    }
    impl Visitor for Find {
        type Break = ();
        fn pre_visit_query(&mut self, _: &Query) -> ControlFlow<()> {
            self.depth += 1;
            ControlFlow::Continue(())
        }
        fn post_visit_query(&mut self, _: &Query) -> ControlFlow<()> {
            self.depth -= 1;
            ControlFlow::Continue(())
        }
        fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
            if self.depth == 0 && aggregate_of(e).is_some() {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        }
    }
    e.visit(&mut Find { depth: 0 }).is_break()
}
