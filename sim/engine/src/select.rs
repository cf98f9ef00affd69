//! SELECT execution: FROM (tables, joins, derived tables) → WHERE → GROUP BY/aggregates →
//! HAVING → projection → DISTINCT → ORDER BY → LIMIT. Single-table reads whose WHERE pins the
//! primary key (`=`, IN, ranges) read only those keys from the clustered BTreeMap.

use crate::catalog::TableSchema;
use crate::expr::{
    derived, eval, kind, merge_types, unknown_column, AggFn, AggSpec, AliasMode, CExpr, CmpOp,
    Compiler, Env, Scope, ScopeCol, K,
};
use crate::storage::{Key, Table};
use crate::types::{compare, key_of, Dec, KeyPart, Val};
use crate::Ctx;
use shardgate_core::wire::{ColumnDef, Value};
use shardgate_core::SqlError;
use sqlparser::ast::{self, Expr, Query, Select, SelectItem, SetExpr, TableFactor};
use sqlparser::tokenizer::TokenWithSpan;
use std::cell::Cell;
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

/// A whole result in wire form: its columns, its rows, and the SLEEP() delay (ms) it asked for.
pub type WireResult = (Vec<ColumnDef>, Vec<Vec<Value>>, u64);

/// Runs the top-level query of a statement: names columns from the SQL text, converts to wire.
pub fn top_level(
    ctx: &Ctx,
    q: &Query,
    sql: &str,
    tokens: &[TokenWithSpan],
) -> Result<WireResult, SqlError> {
    let names = match &*q.body {
        SetExpr::Select(s) => {
            crate::parse::select_item_texts(sql, tokens, s.select_token.0.span.start)
        }
        _ => None,
    };
    let delay = Cell::new(0);
    let (cols, rows) = query(ctx, q, names.as_deref(), &delay)?;
    let out = rows
        .iter()
        .map(|r| {
            r.iter()
                .zip(&cols)
                .map(|(v, c)| crate::expr::to_wire(v, c))
                .collect()
        })
        .collect();
    Ok((cols, out, delay.get()))
}

/// Runs a (sub)query, returning engine values.
pub fn run_query(ctx: &Ctx, q: &Query) -> Result<(Vec<ColumnDef>, Vec<Vec<Val>>), SqlError> {
    let delay = Cell::new(0);
    query(ctx, q, None, &delay)
}

fn query(
    ctx: &Ctx,
    q: &Query,
    names: Option<&[String]>,
    delay: &Cell<u64>,
) -> Result<(Vec<ColumnDef>, Vec<Vec<Val>>), SqlError> {
    if q.with.is_some() {
        return Err(crate::expr::unsupported("WITH"));
    }
    let (limit, offset) = limits(ctx, q.limit_clause.as_ref())?;
    let order: &[ast::OrderByExpr] = match &q.order_by {
        Some(ob) => match &ob.kind {
            ast::OrderByKind::Expressions(v) => v,
            ast::OrderByKind::All(_) => return Err(crate::expr::unsupported("ORDER BY ALL")),
        },
        None => &[],
    };
    let slept = delay.get();
    let answer = match &*q.body {
        SetExpr::Select(s) => select(ctx, s, order, limit, offset, names, delay),
        other => {
            let (cols, rows) = set_expr(ctx, other, delay)?;
            finish_rows(ctx, cols, rows, order, limit, offset)
        }
    };
    if limit == Some(0) {
        // MySQL answers a zero LIMIT without executing the query: its SLEEPs never run (the
        // gateway's describe of a prepared SELECT relies on it).
        delay.set(slept);
    }
    answer
}

fn set_expr(
    ctx: &Ctx,
    e: &SetExpr,
    delay: &Cell<u64>,
) -> Result<(Vec<ColumnDef>, Vec<Vec<Val>>), SqlError> {
    match e {
        SetExpr::Select(s) => select(ctx, s, &[], None, 0, None, delay),
        SetExpr::Query(q) => query(ctx, q, None, delay),
        SetExpr::SetOperation {
            op: ast::SetOperator::Union,
            set_quantifier,
            left,
            right,
        } => {
            let (lc, mut lr) = set_expr(ctx, left, delay)?;
            let (rc, rr) = set_expr(ctx, right, delay)?;
            if lc.len() != rc.len() {
                return Err(SqlError::new(
                    1222,
                    "21000",
                    "The used SELECT statements have a different number of columns",
                ));
            }
            lr.extend(rr);
            let cols: Vec<ColumnDef> = lc
                .iter()
                .zip(&rc)
                .map(|(a, b)| {
                    let mut m = merge_types(&[a, b]);
                    m.name = a.name.clone();
                    m
                })
                .collect();
            let distinct = !matches!(
                set_quantifier,
                ast::SetQuantifier::All | ast::SetQuantifier::AllByName
            );
            if distinct {
                let mut seen = BTreeSet::new();
                lr.retain(|r| seen.insert(key_of(r)));
            }
            Ok((cols, lr))
        }
        SetExpr::Values(v) => {
            let scope = Scope::default();
            let mut rows = Vec::new();
            let mut cols = Vec::new();
            for (ri, row) in v.rows.iter().enumerate() {
                let mut out = Vec::new();
                for (i, e) in row.content.iter().enumerate() {
                    let mut c = Compiler::new(ctx, &scope, "field list");
                    let (ce, t) = c.expr(e)?;
                    if ri == 0 {
                        let mut t = t;
                        t.name = format!("column_{i}");
                        cols.push(t);
                    }
                    out.push(eval(
                        &ce,
                        &Env {
                            row: &[],
                            aggs: &[],
                            delay,
                        },
                    )?);
                }
                rows.push(out);
            }
            Ok((cols, rows))
        }
        _ => Err(crate::expr::unsupported(&e.to_string())),
    }
}

/// ORDER BY / LIMIT over an already computed result (UNION): names resolve to output columns.
fn finish_rows(
    ctx: &Ctx,
    cols: Vec<ColumnDef>,
    mut rows: Vec<Vec<Val>>,
    order: &[ast::OrderByExpr],
    limit: Option<u64>,
    offset: u64,
) -> Result<(Vec<ColumnDef>, Vec<Vec<Val>>), SqlError> {
    if !order.is_empty() {
        let scope = Scope {
            cols: cols
                .iter()
                .map(|c| ScopeCol {
                    db: String::new(),
                    qual: String::new(),
                    name: c.name.clone(),
                    def: c.clone(),
                })
                .collect(),
        };
        let mut comp = Compiler::new(ctx, &scope, "order clause");
        let mut keys = Vec::new();
        for o in order {
            let e = match position(&o.expr) {
                Some(p) if p >= 1 && p <= cols.len() => CExpr::Col(p - 1),
                Some(p) => return Err(unknown_column(&p.to_string(), "order clause")),
                None => comp.expr(&o.expr)?.0,
            };
            keys.push((e, matches!(o.options.sort, Some(ast::OrderBySort::Desc))));
        }
        let delay = Cell::new(0);
        let mut keyed = Vec::new();
        for r in rows {
            let env = Env {
                row: &r,
                aggs: &[],
                delay: &delay,
            };
            let k: Vec<Val> = keys
                .iter()
                .map(|(e, _)| eval(e, &env))
                .collect::<Result<_, _>>()?;
            keyed.push((k, r));
        }
        let desc: Vec<bool> = keys.iter().map(|k| k.1).collect();
        keyed.sort_by(|a, b| cmp_keys(&a.0, &b.0, &desc));
        rows = keyed.into_iter().map(|x| x.1).collect();
    }
    Ok((cols, apply_limit(rows, limit, offset)))
}

fn apply_limit<T>(rows: Vec<T>, limit: Option<u64>, offset: u64) -> Vec<T> {
    rows.into_iter()
        .skip(offset.min(usize::MAX as u64) as usize)
        .take(limit.unwrap_or(u64::MAX).min(usize::MAX as u64) as usize)
        .collect()
}

fn const_u64(ctx: &Ctx, e: &Expr) -> Result<u64, SqlError> {
    let scope = Scope::default();
    let mut c = Compiler::new(ctx, &scope, "field list");
    let (ce, _) = c.expr(e)?;
    let delay = Cell::new(0);
    let v = eval(
        &ce,
        &Env {
            row: &[],
            aggs: &[],
            delay: &delay,
        },
    )?;
    match v {
        Val::Int(i) if i >= 0 => Ok(i as u64),
        Val::UInt(u) => Ok(u),
        _ => Err(SqlError::wrong_arguments("LIMIT")),
    }
}

fn limits(ctx: &Ctx, l: Option<&ast::LimitClause>) -> Result<(Option<u64>, u64), SqlError> {
    Ok(match l {
        None => (None, 0),
        Some(ast::LimitClause::LimitOffset { limit, offset, .. }) => {
            let lim = match limit {
                Some(e) => Some(const_u64(ctx, e)?),
                None => None,
            };
            let off = match offset {
                Some(o) => const_u64(ctx, &o.value)?,
                None => 0,
            };
            (lim, off)
        }
        Some(ast::LimitClause::OffsetCommaLimit { offset, limit }) => {
            (Some(const_u64(ctx, limit)?), const_u64(ctx, offset)?)
        }
    })
}

fn position(e: &Expr) -> Option<usize> {
    if let Expr::Value(v) = e {
        if let ast::Value::Number(n, _) = &v.value {
            return n.parse().ok();
        }
    }
    None
}

/// Orders rows: NULL first ascending (last descending), values by [`compare`].
pub fn cmp_keys(a: &[Val], b: &[Val], desc: &[bool]) -> Ordering {
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        let o = compare(x, y);
        let o = if desc.get(i).copied().unwrap_or(false) {
            o.reverse()
        } else {
            o
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}

/// A table reference resolved to storage.
pub fn resolve_table<'e>(
    ctx: &Ctx<'e>,
    name: &ast::ObjectName,
) -> Result<(String, String, &'e Table), SqlError> {
    let parts = crate::expr::obj_parts(name);
    let (db, t) = match parts.as_slice() {
        [t] => match &ctx.sess.database {
            Some(d) => (d.clone(), t.clone()),
            None => return Err(crate::no_db()),
        },
        [d, t] => (d.clone(), t.clone()),
        _ => return Err(SqlError::no_such_table(&parts.join("."))),
    };
    match ctx.engine.table(&db, &t) {
        Some(tab) => Ok((db, t, tab)),
        None => Err(SqlError::no_such_table(&format!("{db}.{t}"))),
    }
}

pub fn table_scope(db: &str, alias: &str, schema: &TableSchema) -> Vec<ScopeCol> {
    (0..schema.columns.len())
        .map(|i| ScopeCol {
            db: db.to_string(),
            qual: alias.to_string(),
            name: schema.columns[i].name.clone(),
            def: schema.column_def(i, db, alias),
        })
        .collect()
}

/// One FROM item before rows are fetched: either a stored table (rows fetched lazily so the
/// WHERE clause can narrow them) or already materialised rows.
enum Source<'e> {
    Table(&'e Table),
    Rows(Vec<Vec<Val>>),
}

struct FromItem<'e> {
    scope: Vec<ScopeCol>,
    source: Source<'e>,
}

fn from_factor<'e>(
    ctx: &Ctx<'e>,
    f: &TableFactor,
    delay: &Cell<u64>,
) -> Result<FromItem<'e>, SqlError> {
    match f {
        TableFactor::Table { name, alias, .. } => {
            let (db, t, tab) = resolve_table(ctx, name)?;
            let alias = alias.as_ref().map(|a| a.name.value.clone()).unwrap_or(t);
            Ok(FromItem {
                scope: table_scope(&db, &alias, &tab.schema),
                source: Source::Table(tab),
            })
        }
        TableFactor::Derived {
            subquery, alias, ..
        } => {
            let Some(alias) = alias else {
                return Err(SqlError::new(
                    1248,
                    "42000",
                    "Every derived table must have its own alias",
                ));
            };
            let (cols, rows) = query(ctx, subquery, None, delay)?;
            let scope = cols
                .into_iter()
                .map(|c| ScopeCol {
                    db: String::new(),
                    qual: alias.name.value.clone(),
                    name: c.name.clone(),
                    def: c,
                })
                .collect();
            Ok(FromItem {
                scope,
                source: Source::Rows(rows),
            })
        }
        TableFactor::NestedJoin {
            table_with_joins, ..
        } => {
            let (scope, rows) = from_joined(ctx, table_with_joins, delay)?;
            Ok(FromItem {
                scope: scope.cols,
                source: Source::Rows(rows),
            })
        }
        other => Err(crate::expr::unsupported(&other.to_string())),
    }
}

fn all_rows(src: Source) -> Vec<Vec<Val>> {
    match src {
        Source::Table(t) => t.rows.values().cloned().collect(),
        Source::Rows(r) => r,
    }
}

fn from_joined(
    ctx: &Ctx,
    twj: &ast::TableWithJoins,
    delay: &Cell<u64>,
) -> Result<(Scope, Vec<Vec<Val>>), SqlError> {
    let first = from_factor(ctx, &twj.relation, delay)?;
    let mut scope = Scope { cols: first.scope };
    let mut rows = all_rows(first.source);
    for j in &twj.joins {
        let right = from_factor(ctx, &j.relation, delay)?;
        let rwidth = right.scope.len();
        let lwidth = scope.cols.len();
        let rrows = all_rows(right.source);
        let mut combined = scope.clone();
        combined.cols.extend(right.scope);
        use ast::JoinOperator as J;
        let (kind, constraint) = match &j.join_operator {
            J::Join(c) | J::Inner(c) => (0, Some(c)),
            J::Left(c) | J::LeftOuter(c) => (1, Some(c)),
            J::Right(c) | J::RightOuter(c) => (2, Some(c)),
            J::CrossJoin(c) => (0, Some(c)),
            J::StraightJoin(c) => (0, Some(c)),
            other => return Err(crate::expr::unsupported(&format!("{other:?}"))),
        };
        let cond: Option<CExpr> = match constraint {
            Some(ast::JoinConstraint::On(e)) => {
                let mut c = Compiler::new(ctx, &combined, "on clause");
                Some(c.expr(e)?.0)
            }
            Some(ast::JoinConstraint::Using(cols)) => {
                let mut acc: Option<CExpr> = None;
                for name in cols {
                    let n = crate::expr::obj_parts(name).join(".");
                    let l = scope
                        .cols
                        .iter()
                        .position(|c| c.name.eq_ignore_ascii_case(&n));
                    let r = combined.cols[lwidth..]
                        .iter()
                        .position(|c| c.name.eq_ignore_ascii_case(&n));
                    let (Some(l), Some(r)) = (l, r) else {
                        return Err(unknown_column(&n, "from clause"));
                    };
                    let eq = CExpr::Cmp(
                        CmpOp::Eq,
                        Box::new(CExpr::Col(l)),
                        Box::new(CExpr::Col(lwidth + r)),
                    );
                    acc = Some(match acc {
                        None => eq,
                        Some(a) => CExpr::And(Box::new(a), Box::new(eq)),
                    });
                }
                acc
            }
            Some(ast::JoinConstraint::Natural) => {
                let mut acc: Option<CExpr> = None;
                for (l, lc) in scope.cols.iter().enumerate() {
                    if let Some(r) = combined.cols[lwidth..]
                        .iter()
                        .position(|c| c.name.eq_ignore_ascii_case(&lc.name))
                    {
                        let eq = CExpr::Cmp(
                            CmpOp::Eq,
                            Box::new(CExpr::Col(l)),
                            Box::new(CExpr::Col(lwidth + r)),
                        );
                        acc = Some(match acc {
                            None => eq,
                            Some(a) => CExpr::And(Box::new(a), Box::new(eq)),
                        });
                    }
                }
                acc
            }
            _ => None,
        };
        let mut out = Vec::new();
        let matches = |l: &Vec<Val>, r: &Vec<Val>| -> Result<Option<Vec<Val>>, SqlError> {
            let mut row = l.clone();
            row.extend(r.iter().cloned());
            let ok = match &cond {
                None => true,
                Some(c) => {
                    eval(
                        c,
                        &Env {
                            row: &row,
                            aggs: &[],
                            delay,
                        },
                    )?
                    .truth()
                        == Some(true)
                }
            };
            Ok(if ok { Some(row) } else { None })
        };
        if kind == 2 {
            for r in &rrows {
                let mut hit = false;
                for l in &rows {
                    if let Some(row) = matches(l, r)? {
                        out.push(row);
                        hit = true;
                    }
                }
                if !hit {
                    let mut row = vec![Val::Null; lwidth];
                    row.extend(r.iter().cloned());
                    out.push(row);
                }
            }
        } else {
            for l in &rows {
                let mut hit = false;
                for r in &rrows {
                    if let Some(row) = matches(l, r)? {
                        out.push(row);
                        hit = true;
                    }
                }
                if !hit && kind == 1 {
                    let mut row = l.clone();
                    row.extend(std::iter::repeat_n(Val::Null, rwidth));
                    out.push(row);
                }
            }
        }
        if kind != 0 {
            // Outer joins make the inner side nullable.
            let range = if kind == 1 {
                lwidth..lwidth + rwidth
            } else {
                0..lwidth
            };
            for c in &mut combined.cols[range] {
                c.def.flags &= !shardgate_core::wire::consts::flag::NOT_NULL;
            }
        }
        scope = combined;
        rows = out;
    }
    Ok((scope, rows))
}

/// Conjuncts of a compiled WHERE.
fn conjuncts<'x>(e: &'x CExpr, out: &mut Vec<&'x CExpr>) {
    if let CExpr::And(a, b) = e {
        conjuncts(a, out);
        conjuncts(b, out);
    } else {
        out.push(e);
    }
}

/// Whether a literal can be turned into an index key for a column of kind `k` without changing
/// comparison semantics (numbers against numeric columns, strings against string columns).
fn key_compatible(k: K, v: &Val) -> bool {
    match v {
        Val::Int(_) | Val::UInt(_) | Val::Dec(_) => matches!(k, K::Int | K::UInt | K::Dec(_)),
        Val::Str(_) => k == K::Str,
        _ => false,
    }
}

/// Rows of a stored table narrowed by PK predicates found in `filter` (the full filter is still
/// applied by the caller).
pub fn fetch_rows(
    table: &Table,
    scope_offset: usize,
    scope: &Scope,
    filter: Option<&CExpr>,
) -> Vec<(Key, Vec<Val>)> {
    let pk = &table.schema.primary;
    let full = || {
        table
            .rows
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    let Some(filter) = filter else { return full() };
    if pk.is_empty() {
        return full();
    }
    let mut cs = Vec::new();
    conjuncts(filter, &mut cs);
    let col_kind = |i: usize| kind(&scope.cols[scope_offset + i].def);
    let pk_col = |e: &CExpr| -> Option<usize> {
        if let CExpr::Col(c) = e {
            let c = c.checked_sub(scope_offset)?;
            pk.iter().position(|p| *p == c)
        } else {
            None
        }
    };
    // Equality on every PK column: one lookup.
    let mut eq: Vec<Option<Val>> = vec![None; pk.len()];
    let mut lists: Option<(usize, Vec<Val>)> = None;
    let mut lo: Bound<Val> = Bound::Unbounded;
    let mut hi: Bound<Val> = Bound::Unbounded;
    for c in &cs {
        match c {
            CExpr::Cmp(op, a, b) => {
                let (pos, v, op) = match (pk_col(a), &**b, pk_col(b), &**a) {
                    (Some(p), CExpr::Lit(v), _, _) => (p, v, *op),
                    (_, _, Some(p), CExpr::Lit(v)) => (
                        p,
                        v,
                        match op {
                            CmpOp::Lt => CmpOp::Gt,
                            CmpOp::Le => CmpOp::Ge,
                            CmpOp::Gt => CmpOp::Lt,
                            CmpOp::Ge => CmpOp::Le,
                            o => *o,
                        },
                    ),
                    _ => continue,
                };
                if !key_compatible(col_kind(pk[pos]), v) {
                    continue;
                }
                match op {
                    CmpOp::Eq => eq[pos] = Some(v.clone()),
                    CmpOp::Gt if pk.len() == 1 => lo = Bound::Excluded(v.clone()),
                    CmpOp::Ge if pk.len() == 1 => lo = Bound::Included(v.clone()),
                    CmpOp::Lt if pk.len() == 1 => hi = Bound::Excluded(v.clone()),
                    CmpOp::Le if pk.len() == 1 => hi = Bound::Included(v.clone()),
                    _ => {}
                }
            }
            CExpr::Between(x, l, h, false) if pk.len() == 1 => {
                if let (Some(0), CExpr::Lit(l), CExpr::Lit(h)) = (pk_col(x), &**l, &**h) {
                    let k = col_kind(pk[0]);
                    if key_compatible(k, l) && key_compatible(k, h) {
                        lo = Bound::Included(l.clone());
                        hi = Bound::Included(h.clone());
                    }
                }
            }
            CExpr::In(x, items, false) if pk.len() == 1 => {
                if let Some(0) = pk_col(x) {
                    let k = col_kind(pk[0]);
                    let vals: Option<Vec<Val>> = items
                        .iter()
                        .map(|i| match i {
                            CExpr::Lit(v) if key_compatible(k, v) => Some(v.clone()),
                            _ => None,
                        })
                        .collect();
                    if let Some(v) = vals {
                        lists = Some((0, v));
                    }
                }
            }
            _ => {}
        }
    }
    if eq.iter().all(|v| v.is_some()) {
        let vals: Vec<Val> = eq.into_iter().flatten().collect();
        let key = key_of(&vals);
        return table
            .rows
            .get(&key)
            .map(|r| vec![(key, r.clone())])
            .unwrap_or_default();
    }
    if let Some((_, vals)) = lists {
        let keys: BTreeSet<Key> = vals.iter().map(|v| vec![KeyPart::of(v)]).collect();
        return keys
            .into_iter()
            .filter_map(|k| table.rows.get(&k).map(|r| (k, r.clone())))
            .collect();
    }
    if !matches!((&lo, &hi), (Bound::Unbounded, Bound::Unbounded)) {
        let conv = |b: &Bound<Val>| match b {
            Bound::Included(v) => Bound::Included(vec![KeyPart::of(v)]),
            Bound::Excluded(v) => Bound::Excluded(vec![KeyPart::of(v)]),
            Bound::Unbounded => Bound::Unbounded,
        };
        let (l, h) = (conv(&lo), conv(&hi));
        // An empty or inverted range would make BTreeMap::range panic: check first.
        let valid = match (&l, &h) {
            (Bound::Included(a) | Bound::Excluded(a), Bound::Included(b) | Bound::Excluded(b)) => {
                a < b || (a == b && matches!((&l, &h), (Bound::Included(_), Bound::Included(_))))
            }
            _ => true,
        };
        if !valid {
            return Vec::new();
        }
        return table
            .rows
            .range((l, h))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
    }
    full()
}

/// Output column named as MySQL does.
fn item_name(e: &Expr, raw: Option<&String>) -> String {
    match e {
        Expr::Identifier(i) if !i.value.starts_with('@') => i.value.clone(),
        Expr::CompoundIdentifier(ids) if !ids[0].value.starts_with('@') => {
            ids.last().map(|i| i.value.clone()).unwrap_or_default()
        }
        Expr::Value(v) => match &v.value {
            ast::Value::SingleQuotedString(s) | ast::Value::DoubleQuotedString(s) => s.clone(),
            _ => raw.cloned().unwrap_or_else(|| e.to_string()),
        },
        _ => match raw {
            Some(r) if !r.is_empty() => r.clone(),
            _ => e.to_string(),
        },
    }
}

/// Accumulator of one aggregate within one group.
#[derive(Clone, Debug, Default)]
struct Acc {
    count: i64,
    sum: Option<Dec>,
    fsum: f64,
    use_double: bool,
    best: Option<Val>,
    parts: Vec<Vec<u8>>,
    bits: Option<u64>,
    seen: BTreeSet<Vec<KeyPart>>,
}

impl Acc {
    fn update(&mut self, spec: &AggSpec, args: Vec<Val>) {
        if spec.func == AggFn::CountStar {
            self.count += 1;
            return;
        }
        if args.iter().any(|v| v.is_null()) {
            return;
        }
        if spec.distinct && !self.seen.insert(key_of(&args)) {
            return;
        }
        self.count += 1;
        let v = &args[0];
        match spec.func {
            AggFn::Sum | AggFn::Avg => {
                if matches!(kind(&spec.arg_ty), K::Double | K::Str) || self.use_double {
                    if !self.use_double {
                        self.use_double = true;
                        self.fsum = self.sum.map(|d| d.to_f64()).unwrap_or(0.0);
                    }
                    self.fsum += v.to_f64().unwrap_or(0.0);
                } else {
                    let d = v.to_dec().unwrap_or(Dec::from_i64(0));
                    match self.sum.unwrap_or(Dec::from_i64(0)).checked_add(d) {
                        Some(s) => self.sum = Some(s),
                        None => {
                            self.use_double = true;
                            self.fsum = self.sum.map(|d| d.to_f64()).unwrap_or(0.0) + d.to_f64();
                        }
                    }
                }
            }
            AggFn::Min | AggFn::Max => {
                let better = match &self.best {
                    None => true,
                    Some(b) => {
                        let o = compare(v, b);
                        (spec.func == AggFn::Min && o == Ordering::Less)
                            || (spec.func == AggFn::Max && o == Ordering::Greater)
                    }
                };
                if better {
                    self.best = Some(v.clone());
                }
            }
            AggFn::GroupConcat => {
                let mut s = Vec::new();
                for a in &args {
                    s.extend(a.to_bytes().unwrap_or_default());
                }
                self.parts.push(s);
            }
            AggFn::BitAnd | AggFn::BitOr | AggFn::BitXor => {
                let x = v.to_i64().unwrap_or(0) as u64;
                self.bits = Some(match (self.bits, spec.func) {
                    (None, _) => x,
                    (Some(b), AggFn::BitAnd) => b & x,
                    (Some(b), AggFn::BitOr) => b | x,
                    (Some(b), _) => b ^ x,
                });
            }
            AggFn::Count | AggFn::CountStar => {}
        }
    }

    fn finish(&self, spec: &AggSpec) -> Val {
        match spec.func {
            AggFn::Count | AggFn::CountStar => Val::Int(self.count),
            AggFn::Sum => {
                if self.count == 0 {
                    Val::Null
                } else if self.use_double {
                    Val::Double(self.fsum)
                } else {
                    Val::Dec(self.sum.unwrap_or(Dec::from_i64(0)))
                }
            }
            AggFn::Avg => {
                if self.count == 0 {
                    Val::Null
                } else if self.use_double {
                    Val::Double(self.fsum / self.count as f64)
                } else {
                    let s = self.sum.unwrap_or(Dec::from_i64(0));
                    match s.div(Dec::from_i64(self.count), spec.out_ty.decimals) {
                        Some(d) => Val::Dec(d),
                        None => Val::Double(s.to_f64() / self.count as f64),
                    }
                }
            }
            AggFn::Min | AggFn::Max => self.best.clone().unwrap_or(Val::Null),
            AggFn::GroupConcat => {
                if self.parts.is_empty() {
                    Val::Null
                } else {
                    Val::Str(self.parts.join(&spec.separator[..]))
                }
            }
            AggFn::BitAnd => Val::UInt(self.bits.unwrap_or(u64::MAX)),
            AggFn::BitOr | AggFn::BitXor => Val::UInt(self.bits.unwrap_or(0)),
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn select(
    ctx: &Ctx,
    s: &Select,
    order: &[ast::OrderByExpr],
    limit: Option<u64>,
    offset: u64,
    names: Option<&[String]>,
    delay: &Cell<u64>,
) -> Result<(Vec<ColumnDef>, Vec<Vec<Val>>), SqlError> {
    if s.into.is_some() {
        return Err(crate::expr::unsupported("SELECT INTO"));
    }
    // FROM: a single stored table keeps its rows unfetched until WHERE is compiled.
    let from: Vec<&ast::TableWithJoins> = s
        .from
        .iter()
        .filter(|t| {
            !(t.joins.is_empty()
                && matches!(&t.relation, TableFactor::Table { name, alias: None, .. }
                    if crate::expr::obj_parts(name).len() == 1
                        && crate::expr::obj_parts(name)[0].eq_ignore_ascii_case("dual")))
        })
        .collect();
    let mut scope = Scope::default();
    let mut single: Option<&Table> = None;
    let mut rows: Vec<Vec<Val>> = vec![vec![]];
    if from.len() == 1 && from[0].joins.is_empty() {
        let item = from_factor(ctx, &from[0].relation, delay)?;
        scope.cols = item.scope;
        match item.source {
            Source::Table(t) => single = Some(t),
            Source::Rows(r) => rows = r,
        }
    } else {
        for (i, twj) in from.iter().enumerate() {
            let (sc, r) = from_joined(ctx, twj, delay)?;
            if i == 0 {
                scope = sc;
                rows = r;
            } else {
                // Comma join: cross product.
                let mut out = Vec::with_capacity(rows.len() * r.len());
                for l in &rows {
                    for x in &r {
                        let mut row = l.clone();
                        row.extend(x.iter().cloned());
                        out.push(row);
                    }
                }
                scope.cols.extend(sc.cols);
                rows = out;
            }
        }
    }

    // WHERE.
    let filter = match &s.selection {
        Some(w) => {
            let mut c = Compiler::new(ctx, &scope, "where clause");
            Some(c.expr(w)?.0)
        }
        None => None,
    };
    if let Some(t) = single {
        rows = fetch_rows(t, 0, &scope, filter.as_ref())
            .into_iter()
            .map(|(_, r)| r)
            .collect();
    }
    if let Some(f) = &filter {
        let mut kept = Vec::with_capacity(rows.len());
        for r in rows {
            if eval(
                f,
                &Env {
                    row: &r,
                    aggs: &[],
                    delay,
                },
            )?
            .truth()
                == Some(true)
            {
                kept.push(r);
            }
        }
        rows = kept;
    }

    // Projection.
    let mut comp = Compiler::new(ctx, &scope, "field list");
    comp.allow_aggs = true;
    let mut items: Vec<(String, CExpr, ColumnDef)> = Vec::new();
    for (idx, item) in s.projection.iter().enumerate() {
        match item {
            SelectItem::UnnamedExpr(e) => {
                let (ce, mut t) = comp.expr(e)?;
                let name = item_name(e, names.and_then(|n| n.get(idx)));
                t.name = name.clone();
                items.push((name, ce, t));
            }
            SelectItem::ExprWithAlias { expr, alias } => {
                let (ce, mut t) = comp.expr(expr)?;
                t.name = alias.value.clone();
                items.push((alias.value.clone(), ce, t));
            }
            SelectItem::ExprWithAliases { .. } => {
                return Err(crate::expr::unsupported("multiple aliases"));
            }
            SelectItem::Wildcard(_) => {
                if scope.cols.is_empty() {
                    return Err(SqlError::new(1096, "HY000", "No tables used"));
                }
                for (i, c) in scope.cols.iter().enumerate() {
                    items.push((c.name.clone(), CExpr::Col(i), c.def.clone()));
                }
            }
            SelectItem::QualifiedWildcard(kind, _) => {
                let q = match kind {
                    ast::SelectItemQualifiedWildcardKind::ObjectName(n) => {
                        crate::expr::obj_parts(n)
                    }
                    ast::SelectItemQualifiedWildcardKind::Expr(e) => vec![e.to_string()],
                };
                let qual = q.last().cloned().unwrap_or_default();
                let mut any = false;
                for (i, c) in scope.cols.iter().enumerate() {
                    if c.qual == qual && (q.len() < 2 || c.db == q[0]) {
                        items.push((c.name.clone(), CExpr::Col(i), c.def.clone()));
                        any = true;
                    }
                }
                if !any {
                    return Err(SqlError::new(
                        1051,
                        "42S02",
                        format!("Unknown table '{}'", q.join(".")),
                    ));
                }
            }
        }
    }
    comp.aliases = items
        .iter()
        .map(|(n, e, t)| (n.clone(), e.clone(), t.clone()))
        .collect();

    // GROUP BY.
    let mut group: Vec<CExpr> = Vec::new();
    if let ast::GroupByExpr::Expressions(exprs, _) = &s.group_by {
        let mut gc = Compiler::new(ctx, &scope, "group statement");
        gc.aliases = comp.aliases.clone();
        gc.alias_mode = AliasMode::Fallback;
        for g in exprs {
            match position(g) {
                Some(p) if p >= 1 && p <= items.len() => group.push(items[p - 1].1.clone()),
                Some(p) => return Err(unknown_column(&p.to_string(), "group statement")),
                None => group.push(gc.expr(g)?.0),
            }
        }
        if group.iter().any(has_agg) {
            return Err(SqlError::new(1056, "42000", "Can't group on aggregate"));
        }
    } else {
        return Err(crate::expr::unsupported("GROUP BY ALL"));
    }

    // HAVING.
    comp.clause = "having clause";
    comp.alias_mode = AliasMode::Fallback;
    let having = match &s.having {
        Some(h) => Some(comp.expr(h)?.0),
        None => None,
    };

    // ORDER BY.
    comp.clause = "order clause";
    comp.alias_mode = AliasMode::First;
    let mut keys: Vec<(CExpr, bool)> = Vec::new();
    for o in order {
        let e = match position(&o.expr) {
            Some(p) if p >= 1 && p <= items.len() => items[p - 1].1.clone(),
            Some(p) => return Err(unknown_column(&p.to_string(), "order clause")),
            None => comp.expr(&o.expr)?.0,
        };
        keys.push((e, matches!(o.options.sort, Some(ast::OrderBySort::Desc))));
    }
    let aggs = std::mem::take(&mut comp.aggs);
    let is_agg = !group.is_empty() || !aggs.is_empty();
    if !is_agg && having.is_some() {
        // HAVING without grouping filters like WHERE over the projection.
    }

    // Evaluate.
    let mut out: Vec<(Vec<Val>, Vec<Val>)> = Vec::new();
    let project = |env: &Env| -> Result<(Vec<Val>, Vec<Val>), SqlError> {
        let vals = items
            .iter()
            .map(|(_, e, _)| eval(e, env))
            .collect::<Result<Vec<_>, _>>()?;
        let ks = keys
            .iter()
            .map(|(e, _)| eval(e, env))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((vals, ks))
    };
    if is_agg {
        let mut groups: BTreeMap<Vec<KeyPart>, usize> = BTreeMap::new();
        let mut states: Vec<(Vec<Val>, Vec<Acc>)> = Vec::new();
        for r in &rows {
            let env = Env {
                row: r,
                aggs: &[],
                delay,
            };
            let gk: Vec<Val> = group
                .iter()
                .map(|g| eval(g, &env))
                .collect::<Result<_, _>>()?;
            let gi = *groups.entry(key_of(&gk)).or_insert_with(|| {
                states.push((r.clone(), vec![Acc::default(); aggs.len()]));
                states.len() - 1
            });
            for (ai, spec) in aggs.iter().enumerate() {
                let args: Vec<Val> = spec
                    .args
                    .iter()
                    .map(|a| eval(a, &env))
                    .collect::<Result<_, _>>()?;
                states[gi].1[ai].update(spec, args);
            }
        }
        if group.is_empty() && states.is_empty() {
            states.push((
                vec![Val::Null; scope.cols.len()],
                vec![Acc::default(); aggs.len()],
            ));
            groups.insert(Vec::new(), 0);
        }
        // MariaDB returns groups in GROUP BY order when there is no ORDER BY.
        for (_, gi) in groups {
            let (first, accs) = &states[gi];
            let results: Vec<Val> = accs.iter().zip(&aggs).map(|(a, s)| a.finish(s)).collect();
            let env = Env {
                row: first,
                aggs: &results,
                delay,
            };
            if let Some(h) = &having {
                if eval(h, &env)?.truth() != Some(true) {
                    continue;
                }
            }
            out.push(project(&env)?);
        }
    } else {
        for r in &rows {
            let env = Env {
                row: r,
                aggs: &[],
                delay,
            };
            if let Some(h) = &having {
                if eval(h, &env)?.truth() != Some(true) {
                    continue;
                }
            }
            out.push(project(&env)?);
        }
    }

    if matches!(s.distinct, Some(ast::Distinct::Distinct)) {
        let mut seen = BTreeSet::new();
        out.retain(|(v, _)| seen.insert(key_of(v)));
    }
    if !keys.is_empty() {
        let desc: Vec<bool> = keys.iter().map(|k| k.1).collect();
        out.sort_by(|a, b| cmp_keys(&a.1, &b.1, &desc));
    }
    let out = apply_limit(out, limit, offset);
    let cols = items.into_iter().map(|(_, _, t)| t).collect::<Vec<_>>();
    let cols = cols
        .into_iter()
        .map(|mut c| {
            if c.org_table.is_empty() {
                let n = c.name.clone();
                c = derived(c);
                c.name = n;
            }
            c
        })
        .collect();
    Ok((cols, out.into_iter().map(|(v, _)| v).collect()))
}

fn has_agg(e: &CExpr) -> bool {
    use CExpr::*;
    match e {
        Agg(_) => true,
        Lit(_) | Col(_) => false,
        Neg(a, _) | Not(a) | BitNot(a) | IsNull(a, _) | IsBool(a, _, _) | Conform(a, _) => {
            has_agg(a)
        }
        Arith(_, a, b, _, _)
        | Bit(_, a, b)
        | Cmp(_, a, b)
        | NullEq(a, b)
        | And(a, b)
        | Or(a, b)
        | Xor(a, b)
        | Like(a, b, _, _) => has_agg(a) || has_agg(b),
        In(a, l, _) => has_agg(a) || l.iter().any(has_agg),
        Between(a, b, c, _) => has_agg(a) || has_agg(b) || has_agg(c),
        Case {
            operand,
            whens,
            els,
        } => {
            operand.as_deref().is_some_and(has_agg)
                || whens.iter().any(|(a, b)| has_agg(a) || has_agg(b))
                || els.as_deref().is_some_and(has_agg)
        }
        Func(_, args) => args.iter().any(has_agg),
    }
}
