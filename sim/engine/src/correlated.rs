//! Correlated `[NOT] EXISTS (subquery)`: the subquery is run once with its correlated
//! conditions taken out, and those conditions are then checked per outer row against the rows it
//! returned — the answer MySQL gives by re-running the subquery for each outer row.
//!
//! Supported shape (what applications write): a plain `SELECT … FROM … WHERE` without GROUP
//! BY, HAVING or LIMIT, whose outer references all sit in top-level AND-ed comparisons
//! `inner_expr OP outer_expr` (either order; OP one of = <> < <= > >=). Anything else keeps the
//! error the uncorrelated attempt gave (1054 unknown column).

use crate::expr::{obj_parts, CExpr, CmpOp, Compiler};
use crate::types::Val;
use shardgate_core::SqlError;
use sqlparser::ast::{self, BinaryOperator, Expr, SelectItem, SetExpr, TableFactor};
use std::ops::ControlFlow;

/// Names visible inside the subquery's FROM: qualifiers and column names.
struct Inner {
    quals: Vec<String>,
    cols: Vec<String>,
}

impl Inner {
    fn of(c: &Compiler, sel: &ast::Select) -> Option<Inner> {
        let mut inner = Inner {
            quals: Vec::new(),
            cols: Vec::new(),
        };
        for twj in &sel.from {
            let mut factors = vec![&twj.relation];
            factors.extend(twj.joins.iter().map(|j| &j.relation));
            for f in factors {
                let TableFactor::Table { name, alias, .. } = f else {
                    return None;
                };
                let parts = obj_parts(name);
                let (db, table) = match parts.as_slice() {
                    [t] => (c.ctx.sess.database.clone()?, t.clone()),
                    [d, t] => (d.clone(), t.clone()),
                    _ => return None,
                };
                let tab = c.ctx.engine.dbs.get(&db)?.tables.get(&table)?;
                inner.quals.push(
                    alias
                        .as_ref()
                        .map_or_else(|| table.clone(), |a| a.name.value.clone()),
                );
                inner
                    .cols
                    .extend(tab.schema.columns.iter().map(|c| c.name.clone()));
            }
        }
        Some(inner)
    }

    /// Does `e` name a column of the outer query (not one of the subquery's own)?
    fn is_outer(&self, c: &Compiler, e: &Expr) -> bool {
        match e {
            Expr::Identifier(i) => {
                !self.cols.iter().any(|n| n.eq_ignore_ascii_case(&i.value))
                    && c.scope
                        .cols
                        .iter()
                        .any(|s| s.name.eq_ignore_ascii_case(&i.value))
            }
            Expr::CompoundIdentifier(ids) if ids.len() >= 2 => {
                let qual = &ids[ids.len() - 2].value;
                !self.quals.iter().any(|q| q.eq_ignore_ascii_case(qual))
                    && c.scope
                        .cols
                        .iter()
                        .any(|s| s.qual.eq_ignore_ascii_case(qual))
            }
            _ => false,
        }
    }

    /// (has outer references, has inner-or-other column references)
    fn refs(&self, c: &Compiler, e: &Expr) -> (bool, bool) {
        let (mut outer, mut other) = (false, false);
        let _ = ast::visit_expressions(e, |x| {
            if matches!(x, Expr::Identifier(_) | Expr::CompoundIdentifier(_)) {
                if self.is_outer(c, x) {
                    outer = true;
                } else {
                    other = true;
                }
            }
            ControlFlow::<()>::Continue(())
        });
        (outer, other)
    }
}

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
        Expr::Nested(x) => conjuncts(x, out),
        other => out.push(other.clone()),
    }
}

/// `a OP b` read as `b OP' a`.
fn flip(op: CmpOp) -> CmpOp {
    match op {
        CmpOp::Lt => CmpOp::Gt,
        CmpOp::Le => CmpOp::Ge,
        CmpOp::Gt => CmpOp::Lt,
        CmpOp::Ge => CmpOp::Le,
        o => o,
    }
}

fn cmp_op(op: &BinaryOperator) -> Option<CmpOp> {
    Some(match op {
        BinaryOperator::Eq => CmpOp::Eq,
        BinaryOperator::NotEq => CmpOp::Ne,
        BinaryOperator::Lt => CmpOp::Lt,
        BinaryOperator::LtEq => CmpOp::Le,
        BinaryOperator::Gt => CmpOp::Gt,
        BinaryOperator::GtEq => CmpOp::Ge,
        _ => return None,
    })
}

/// Compiles a correlated `[NOT] EXISTS`; `None` when the subquery is not of the supported
/// shape (the caller reports its original error).
pub fn exists(c: &mut Compiler, q: &ast::Query, negated: bool) -> Option<Result<CExpr, SqlError>> {
    if q.limit_clause.is_some() || q.with.is_some() {
        return None;
    }
    let SetExpr::Select(sel) = q.body.as_ref() else {
        return None;
    };
    let no_group = match &sel.group_by {
        ast::GroupByExpr::Expressions(e, m) => e.is_empty() && m.is_empty(),
        ast::GroupByExpr::All(_) => false,
    };
    if !no_group || sel.having.is_some() {
        return None;
    }
    let inner = Inner::of(c, sel)?;
    let mut parts = Vec::new();
    if let Some(w) = &sel.selection {
        conjuncts(w, &mut parts);
    }
    // (inner expression, op as `outer OP inner`, outer expression)
    let mut corr: Vec<(Expr, CmpOp, Expr)> = Vec::new();
    let mut rest: Vec<Expr> = Vec::new();
    for p in parts {
        let (outer, _) = inner.refs(c, &p);
        if !outer {
            rest.push(p);
            continue;
        }
        let Expr::BinaryOp { left, op, right } = &p else {
            return None;
        };
        let op = cmp_op(op)?;
        let (lo, lother) = inner.refs(c, left);
        let (ro, rother) = inner.refs(c, right);
        if lo && !lother && !ro {
            // outer OP inner
            corr.push(((**right).clone(), op, (**left).clone()));
        } else if ro && !rother && !lo {
            // inner OP outer  ==  outer OP' inner
            corr.push(((**left).clone(), flip(op), (**right).clone()));
        } else {
            return None;
        }
    }
    if corr.is_empty() {
        return None;
    }
    // Outer references anywhere else (select list, joins' ON) are not supported.
    let mut probe = sel.as_ref().clone();
    probe.selection = None;
    let (outer_elsewhere, _) = inner.refs_in_select(c, &probe);
    if outer_elsewhere {
        return None;
    }
    let mut sub = q.clone();
    let mut s2 = sel.as_ref().clone();
    s2.projection = corr
        .iter()
        .map(|(i, _, _)| SelectItem::UnnamedExpr(i.clone()))
        .collect();
    s2.distinct = Some(ast::Distinct::Distinct);
    s2.selection = rest.into_iter().reduce(|a, b| Expr::BinaryOp {
        left: Box::new(a),
        op: BinaryOperator::And,
        right: Box::new(b),
    });
    *sub.body = SetExpr::Select(Box::new(s2));
    sub.order_by = None;
    Some(build(c, &sub, &corr, negated))
}

fn build(
    c: &mut Compiler,
    sub: &ast::Query,
    corr: &[(Expr, CmpOp, Expr)],
    negated: bool,
) -> Result<CExpr, SqlError> {
    let (_, rows) = crate::select::run_query(c.ctx, sub)?;
    let mut outers = Vec::with_capacity(corr.len());
    for (_, _, o) in corr {
        outers.push(c.expr(o)?.0);
    }
    // One equality: `outer IN (values)`, read as IS TRUE (EXISTS is never NULL).
    if let [(_, CmpOp::Eq, _)] = corr {
        let items: Vec<CExpr> = rows
            .into_iter()
            .map(|mut r| CExpr::Lit(r.pop().unwrap_or(Val::Null)))
            .collect();
        if items.is_empty() {
            return Ok(CExpr::Lit(Val::bool(negated)));
        }
        let x = outers.pop().unwrap_or(CExpr::Lit(Val::Null));
        return Ok(CExpr::IsBool(
            Box::new(CExpr::In(Box::new(x), items, false)),
            true,
            negated,
        ));
    }
    // Any inner row satisfying every correlated condition: OR over rows of AND over conditions
    // (a balanced tree, so evaluation depth stays logarithmic), read as IS TRUE.
    let mut ors: Vec<CExpr> = Vec::new();
    for row in rows {
        let mut all: Option<CExpr> = None;
        for (k, (_, op, _)) in corr.iter().enumerate() {
            let v = row.get(k).cloned().unwrap_or(Val::Null);
            let cmp = CExpr::Cmp(*op, Box::new(outers[k].clone()), Box::new(CExpr::Lit(v)));
            all = Some(match all {
                None => cmp,
                Some(a) => CExpr::And(Box::new(a), Box::new(cmp)),
            });
        }
        ors.extend(all);
    }
    while ors.len() > 1 {
        let mut next = Vec::with_capacity(ors.len().div_ceil(2));
        let mut it = ors.into_iter();
        while let Some(a) = it.next() {
            next.push(match it.next() {
                Some(b) => CExpr::Or(Box::new(a), Box::new(b)),
                None => a,
            });
        }
        ors = next;
    }
    Ok(match ors.pop() {
        None => CExpr::Lit(Val::bool(negated)),
        Some(x) => CExpr::IsBool(Box::new(x), true, negated),
    })
}

impl Inner {
    fn refs_in_select(&self, c: &Compiler, sel: &ast::Select) -> (bool, bool) {
        let (mut outer, mut other) = (false, false);
        let _ = ast::visit_expressions(sel, |x: &Expr| {
            if matches!(x, Expr::Identifier(_) | Expr::CompoundIdentifier(_)) {
                if self.is_outer(c, x) {
                    outer = true;
                } else {
                    other = true;
                }
            }
            ControlFlow::<()>::Continue(())
        });
        (outer, other)
    }
}
