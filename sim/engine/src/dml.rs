//! INSERT / REPLACE / INSERT ... ON DUPLICATE KEY UPDATE / UPDATE / DELETE.
//!
//! Each runs in two phases: with the engine borrowed read-only, expressions are compiled and the
//! affected rows found (PK fast path included); then the table is mutated, recording one undo
//! record per row change in the session so ROLLBACK and failed statements can revert.

use crate::catalog::{store, Column, SqlType, StoreCtx};
use crate::expr::{eval, CExpr, Compiler, Env, Scope, ScopeCol};
use crate::select::{cmp_keys, fetch_rows, resolve_table, table_scope};
use crate::storage::{Key, Undo};
use crate::types::{Dec, Val};
use crate::{Ctx, Engine, EngineSession, Res};
use shardgate_core::error::codes;
use shardgate_core::wire::{OkInfo, Value};
use shardgate_core::SqlError;
use sqlparser::ast::{self, Expr, Statement, VisitMut, VisitorMut};
use std::cell::Cell;
use std::ops::ControlFlow;

/// Whether a statement changes data (and so needs undo records kept or dropped).
pub fn is_write(s: &Statement) -> bool {
    matches!(
        s,
        Statement::Insert(_) | Statement::Update(_) | Statement::Delete(_)
    )
}

pub fn execute(
    engine: &mut Engine,
    sess: &mut EngineSession,
    stmt: &Statement,
    params: &[Value],
    now_ms: u64,
    delay: &mut u64,
) -> Result<Res, SqlError> {
    let d = Cell::new(0);
    let r = match stmt {
        Statement::Insert(i) => insert(engine, sess, i, params, now_ms, &d),
        Statement::Update(u) => update(engine, sess, u, params, now_ms, &d),
        Statement::Delete(x) => delete(engine, sess, x, params, now_ms, &d),
        _ => Err(SqlError::internal("not a DML statement")),
    };
    *delay += d.get();
    r
}

fn bad_null(col: &str) -> SqlError {
    SqlError::new(
        codes::ER_BAD_NULL_ERROR,
        "23000",
        format!("Column '{col}' cannot be null"),
    )
}

fn col_index(cols: &[Column], name: &str, clause: &str) -> Result<usize, SqlError> {
    cols.iter()
        .position(|c| c.name.eq_ignore_ascii_case(name))
        .ok_or_else(|| crate::expr::unknown_column(name, clause))
}

fn target_name(t: &ast::AssignmentTarget) -> Result<String, SqlError> {
    match t {
        ast::AssignmentTarget::ColumnName(n) => Ok(crate::expr::obj_parts(n)
            .last()
            .cloned()
            .unwrap_or_default()),
        ast::AssignmentTarget::Tuple(_) => Err(crate::expr::unsupported("tuple assignment")),
    }
}

/// A value to insert: an expression result or "use the column default".
enum Cell2 {
    Val(Val),
    Default,
}

fn is_default(e: &Expr) -> bool {
    matches!(e, Expr::Identifier(i) if i.quote_style.is_none() && i.value.eq_ignore_ascii_case("DEFAULT"))
}

/// Rewrites `VALUES(col)` into a reference to the pseudo-table `__values__`.
struct ValuesRewriter;
impl VisitorMut for ValuesRewriter {
    type Break = ();
    fn post_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
        if let Expr::Function(f) = e {
            let name = crate::expr::obj_parts(&f.name)
                .join(".")
                .to_ascii_lowercase();
            if name == "values" {
                if let ast::FunctionArguments::List(l) = &f.args {
                    if let [ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(inner))] =
                        l.args.as_slice()
                    {
                        let col = match inner {
                            Expr::Identifier(i) => Some(i.clone()),
                            Expr::CompoundIdentifier(ids) => ids.last().cloned(),
                            _ => None,
                        };
                        if let Some(c) = col {
                            *e = Expr::CompoundIdentifier(vec![
                                ast::Ident::new("__values__"),
                                ast::Ident::new(format!("__values__{}", c.value)),
                            ]);
                        }
                    }
                }
            }
        }
        ControlFlow::Continue(())
    }
}

fn same(a: &Val, b: &Val) -> bool {
    match (a, b) {
        (Val::Null, Val::Null) => true,
        (Val::Int(x), Val::Int(y)) => x == y,
        (Val::UInt(x), Val::UInt(y)) => x == y,
        (Val::Dec(x), Val::Dec(y)) => x.cmp_dec(*y) == std::cmp::Ordering::Equal,
        (Val::Double(x), Val::Double(y)) => x == y,
        (Val::Str(x), Val::Str(y)) => x == y,
        _ => false,
    }
}

fn default_for(col: &Column, now_ms: u64) -> Option<Val> {
    if col.default_now {
        let dt = crate::time::DateTime::from_unix_ms(now_ms);
        let f = match col.ty {
            SqlType::DateTime(f) | SqlType::Timestamp(f) => f,
            _ => 0,
        };
        return Some(Val::str(&dt.datetime_string(f)));
    }
    col.default.clone()
}

fn auto_value(v: &Val) -> Option<u64> {
    match v {
        Val::Int(i) if *i > 0 => Some(*i as u64),
        Val::UInt(u) if *u > 0 => Some(*u),
        Val::Dec(d) if d.m > 0 => Some(d.trunc_i128() as u64),
        _ => None,
    }
}

#[allow(clippy::too_many_arguments)]
fn insert(
    engine: &mut Engine,
    sess: &mut EngineSession,
    ins: &ast::Insert,
    params: &[Value],
    now_ms: u64,
    delay: &Cell<u64>,
) -> Result<Res, SqlError> {
    let name = match &ins.table {
        ast::TableObject::TableName(n) => n.clone(),
        other => return Err(crate::expr::unsupported(&other.to_string())),
    };
    // Phase 1: resolve, compute the candidate rows, compile ON DUPLICATE KEY UPDATE.
    let (db, tname, rows, odku) = {
        let ctx = Ctx {
            engine,
            sess,
            params,
            now_ms,
        };
        let (db, tname, table) = resolve_table(&ctx, &name)?;
        let cols = &table.schema.columns;
        let mut targets: Vec<usize> = Vec::new();
        for c in &ins.columns {
            let n = crate::expr::obj_parts(c)
                .last()
                .cloned()
                .unwrap_or_default();
            targets.push(col_index(cols, &n, "field list")?);
        }
        let empty = Scope::default();
        let env_eval = |e: &Expr| -> Result<Cell2, SqlError> {
            if is_default(e) {
                return Ok(Cell2::Default);
            }
            let mut c = Compiler::new(&ctx, &empty, "field list");
            let (ce, _) = c.expr(e)?;
            Ok(Cell2::Val(eval(
                &ce,
                &Env {
                    row: &[],
                    aggs: &[],
                    delay,
                },
            )?))
        };
        let mut rows: Vec<Vec<Cell2>> = Vec::new();
        if !ins.assignments.is_empty() {
            targets.clear();
            let mut row = Vec::new();
            for a in &ins.assignments {
                targets.push(col_index(cols, &target_name(&a.target)?, "field list")?);
                row.push(env_eval(&a.value)?);
            }
            rows.push(row);
        } else if let Some(src) = &ins.source {
            if targets.is_empty() {
                targets = (0..cols.len()).collect();
            }
            match &*src.body {
                ast::SetExpr::Values(v) => {
                    for (ri, r) in v.rows.iter().enumerate() {
                        if r.content.len() != targets.len()
                            && !(targets.len() == cols.len()
                                && r.content.is_empty()
                                && ins.columns.is_empty())
                        {
                            return Err(SqlError::new(
                                codes::ER_WRONG_VALUE_COUNT_ON_ROW,
                                "21S01",
                                format!("Column count doesn't match value count at row {}", ri + 1),
                            ));
                        }
                        let mut row = Vec::new();
                        for e in &r.content {
                            row.push(env_eval(e)?);
                        }
                        if r.content.is_empty() {
                            row = (0..targets.len()).map(|_| Cell2::Default).collect();
                        }
                        rows.push(row);
                    }
                }
                _ => {
                    let (qcols, qrows) = crate::select::run_query(&ctx, src)?;
                    if qcols.len() != targets.len() {
                        return Err(SqlError::new(
                            codes::ER_WRONG_VALUE_COUNT_ON_ROW,
                            "21S01",
                            "Column count doesn't match value count at row 1",
                        ));
                    }
                    rows = qrows
                        .into_iter()
                        .map(|r| r.into_iter().map(Cell2::Val).collect())
                        .collect();
                }
            }
        } else {
            return Err(crate::expr::unsupported("INSERT without values"));
        }
        // Full rows: explicit values or defaults, before coercion.
        let mut full: Vec<(Vec<Option<Val>>, Vec<bool>)> = Vec::new();
        for r in rows {
            let mut vals: Vec<Option<Val>> = vec![None; cols.len()];
            let mut explicit = vec![false; cols.len()];
            for (cell, &ti) in r.into_iter().zip(&targets) {
                if let Cell2::Val(v) = cell {
                    vals[ti] = Some(v);
                    explicit[ti] = true;
                }
            }
            full.push((vals, explicit));
        }
        let odku = match &ins.on {
            Some(ast::OnInsert::DuplicateKeyUpdate(assigns)) => {
                let mut scope = Scope {
                    cols: table_scope(&db, &tname, &table.schema),
                };
                let vals: Vec<ScopeCol> = table_scope(&db, "__values__", &table.schema)
                    .into_iter()
                    .map(|mut c| {
                        c.name = format!("__values__{}", c.name);
                        c
                    })
                    .collect();
                scope.cols.extend(vals);
                let mut out = Vec::new();
                for a in assigns {
                    let ti = col_index(cols, &target_name(&a.target)?, "field list")?;
                    let mut e = a.value.clone();
                    let _ = e.visit(&mut ValuesRewriter);
                    let mut c = Compiler::new(&ctx, &scope, "field list");
                    out.push((ti, c.expr(&e)?.0));
                }
                Some(out)
            }
            _ => None,
        };
        (db, tname, full, odku)
    };

    // MySQL reports "Records: …  Duplicates: …" for every INSERT but one of a single VALUES row.
    let one_values_row = !ins.assignments.is_empty()
        || matches!(ins.source.as_deref().map(|q| &*q.body),
            Some(ast::SetExpr::Values(v)) if v.rows.len() == 1);
    let records = rows.len() as u64;
    // Phase 2: coerce, assign AUTO_INCREMENT, store.
    let table = engine
        .table_mut(&db, &tname)
        .ok_or_else(|| SqlError::no_such_table(&format!("{db}.{tname}")))?;
    let sctx = StoreCtx {
        db: &db,
        table: &tname,
    };
    let mut affected = 0u64;
    // Rows stored new, and rows REPLACE deleted or ON DUPLICATE KEY UPDATE changed.
    let (mut copied, mut duplicates) = (0u64, 0u64);
    let mut first_generated: Option<u64> = None;
    let mut ok_insert_id = 0u64;
    for (ri, (vals, _explicit)) in rows.into_iter().enumerate() {
        let rown = ri + 1;
        let mut row = Vec::with_capacity(vals.len());
        for (ci, v) in vals.into_iter().enumerate() {
            let col = table.schema.columns[ci].clone();
            let v = match v {
                Some(v) => v,
                None => match default_for(&col, now_ms) {
                    Some(d) => d,
                    None if col.auto_increment || col.nullable => Val::Null,
                    None => {
                        if ins.ignore {
                            implicit_default(&col.ty)
                        } else {
                            return Err(SqlError::new(
                                1364,
                                "HY000",
                                format!("Field '{}' doesn't have a default value", col.name),
                            ));
                        }
                    }
                },
            };
            let v = if col.auto_increment {
                match auto_value(&v) {
                    Some(n) => {
                        if n >= table.auto_inc {
                            table.auto_inc = n.saturating_add(1);
                        }
                        // MySQL reports the last explicit value when none was generated.
                        ok_insert_id = n;
                        store(&col, v, &sctx, rown)?
                    }
                    None => {
                        let n = table.auto_inc;
                        table.auto_inc += 1;
                        if first_generated.is_none() {
                            first_generated = Some(n);
                        }
                        store(&col, Val::UInt(n), &sctx, rown)?
                    }
                }
            } else if v.is_null() && !col.nullable {
                if ins.ignore {
                    implicit_default(&col.ty)
                } else {
                    return Err(bad_null(&col.name));
                }
            } else {
                store(&col, v, &sctx, rown)?
            };
            row.push(v);
        }
        let pk = table.new_pk(&row);
        match table.conflict(&pk, &row, None) {
            None => {
                table.put_raw(pk.clone(), row);
                sess.undo.push(Undo::Inserted {
                    db: db.clone(),
                    table: tname.clone(),
                    pk,
                });
                affected += 1;
                copied += 1;
            }
            Some((existing, err)) => {
                if ins.replace_into {
                    // REPLACE: delete every conflicting row, then insert.
                    let mut cur = Some(existing);
                    while let Some(k) = cur {
                        if let Some(old) = table.remove(&k) {
                            sess.undo.push(Undo::Deleted {
                                db: db.clone(),
                                table: tname.clone(),
                                pk: k.clone(),
                                row: old,
                            });
                            affected += 1;
                            duplicates += 1;
                        }
                        cur = table.conflict(&pk, &row, None).map(|c| c.0);
                    }
                    table.put_raw(pk.clone(), row);
                    sess.undo.push(Undo::Inserted {
                        db: db.clone(),
                        table: tname.clone(),
                        pk,
                    });
                    affected += 1;
                    copied += 1;
                } else if let Some(assigns) = &odku {
                    let Some(old) = table.rows.get(&existing).cloned() else {
                        return Err(err);
                    };
                    let mut new = old.clone();
                    for (ti, e) in assigns {
                        let mut env_row = new.clone();
                        env_row.extend(row.iter().cloned());
                        let v = eval(
                            e,
                            &Env {
                                row: &env_row,
                                aggs: &[],
                                delay,
                            },
                        )?;
                        let col = table.schema.columns[*ti].clone();
                        new[*ti] = if v.is_null() && !col.nullable {
                            return Err(bad_null(&col.name));
                        } else {
                            store(&col, v, &sctx, rown)?
                        };
                    }
                    if old.iter().zip(&new).all(|(a, b)| same(a, b)) {
                        if sess.client_found_rows {
                            affected += 1;
                            duplicates += 1;
                        }
                    } else {
                        let new_pk = table.update(&existing, new)?;
                        sess.undo.push(Undo::Updated {
                            db: db.clone(),
                            table: tname.clone(),
                            old_pk: existing,
                            new_pk,
                            old_row: old,
                        });
                        affected += 2;
                        duplicates += 1;
                    }
                } else if ins.ignore {
                    continue;
                } else {
                    return Err(err);
                }
            }
        }
    }
    if let Some(g) = first_generated {
        sess.last_insert_id = g;
        ok_insert_id = g;
    }
    if ins.ignore {
        duplicates = records - copied;
    }
    let info = if one_values_row {
        String::new()
    } else {
        format!("Records: {records}  Duplicates: {duplicates}  Warnings: 0")
    };
    Ok(Res::Ok(OkInfo {
        affected_rows: affected,
        last_insert_id: ok_insert_id,
        info,
        ..Default::default()
    }))
}

/// The value strict mode would refuse but IGNORE stores instead of a missing NOT NULL value.
pub(crate) fn implicit_default(t: &SqlType) -> Val {
    match t {
        SqlType::Int { unsigned: true, .. } | SqlType::Year | SqlType::Bit(_) => Val::UInt(0),
        SqlType::Int { .. } => Val::Int(0),
        SqlType::Decimal { s, .. } => Val::Dec(Dec { m: 0, s: *s }),
        SqlType::Float | SqlType::Double => Val::Double(0.0),
        SqlType::Date => Val::str("0000-00-00"),
        SqlType::DateTime(_) | SqlType::Timestamp(_) => Val::str("0000-00-00 00:00:00"),
        SqlType::Time(_) => Val::str("00:00:00"),
        SqlType::Enum(m) => Val::str(m.first().map(|s| s.as_str()).unwrap_or("")),
        _ => Val::str(""),
    }
}

/// Rows matched by WHERE/ORDER BY/LIMIT of a single-table UPDATE or DELETE.
#[allow(clippy::too_many_arguments)]
fn matched_rows(
    ctx: &Ctx,
    scope: &Scope,
    table: &crate::storage::Table,
    selection: Option<&Expr>,
    order_by: &[ast::OrderByExpr],
    limit: Option<&Expr>,
    delay: &Cell<u64>,
) -> Result<Vec<(Key, Vec<Val>)>, SqlError> {
    let filter = match selection {
        Some(w) => Some(Compiler::new(ctx, scope, "where clause").expr(w)?.0),
        None => None,
    };
    let mut rows = Vec::new();
    for (k, r) in fetch_rows(table, 0, scope, filter.as_ref()) {
        let keep = match &filter {
            None => true,
            Some(f) => {
                eval(
                    f,
                    &Env {
                        row: &r,
                        aggs: &[],
                        delay,
                    },
                )?
                .truth()
                    == Some(true)
            }
        };
        if keep {
            rows.push((k, r));
        }
    }
    if !order_by.is_empty() {
        let mut keys = Vec::new();
        for o in order_by {
            let mut c = Compiler::new(ctx, scope, "order clause");
            keys.push((
                c.expr(&o.expr)?.0,
                matches!(o.options.sort, Some(ast::OrderBySort::Desc)),
            ));
        }
        let mut keyed = Vec::new();
        for (k, r) in rows {
            let env = Env {
                row: &r,
                aggs: &[],
                delay,
            };
            let kv: Vec<Val> = keys
                .iter()
                .map(|(e, _)| eval(e, &env))
                .collect::<Result<_, _>>()?;
            keyed.push((kv, (k, r)));
        }
        let desc: Vec<bool> = keys.iter().map(|k| k.1).collect();
        keyed.sort_by(|a, b| cmp_keys(&a.0, &b.0, &desc));
        rows = keyed.into_iter().map(|x| x.1).collect();
    }
    if let Some(l) = limit {
        let empty = Scope::default();
        let mut c = Compiler::new(ctx, &empty, "field list");
        let (ce, _) = c.expr(l)?;
        let n = eval(
            &ce,
            &Env {
                row: &[],
                aggs: &[],
                delay,
            },
        )?
        .to_i64()
        .unwrap_or(0)
        .max(0) as usize;
        rows.truncate(n);
    }
    Ok(rows)
}

fn single_table(twj: &ast::TableWithJoins) -> Result<(&ast::ObjectName, Option<String>), SqlError> {
    if !twj.joins.is_empty() {
        return Err(crate::expr::unsupported("multi-table UPDATE/DELETE"));
    }
    match &twj.relation {
        ast::TableFactor::Table { name, alias, .. } => {
            Ok((name, alias.as_ref().map(|a| a.name.value.clone())))
        }
        other => Err(crate::expr::unsupported(&other.to_string())),
    }
}

fn update(
    engine: &mut Engine,
    sess: &mut EngineSession,
    u: &ast::Update,
    params: &[Value],
    now_ms: u64,
    delay: &Cell<u64>,
) -> Result<Res, SqlError> {
    if u.from.is_some() {
        return Err(crate::expr::unsupported("UPDATE ... FROM"));
    }
    let (name, alias) = single_table(&u.table)?;
    let (db, tname, assigns, rows) = {
        let ctx = Ctx {
            engine,
            sess,
            params,
            now_ms,
        };
        let (db, tname, table) = resolve_table(&ctx, name)?;
        let alias = alias.unwrap_or_else(|| tname.clone());
        let scope = Scope {
            cols: table_scope(&db, &alias, &table.schema),
        };
        let mut assigns: Vec<(usize, CExpr)> = Vec::new();
        for a in &u.assignments {
            let n = target_name(&a.target)?;
            let ti = col_index(&table.schema.columns, &n, "field list")?;
            let e = if is_default(&a.value) {
                CExpr::Lit(default_for(&table.schema.columns[ti], now_ms).unwrap_or(Val::Null))
            } else {
                Compiler::new(&ctx, &scope, "field list").expr(&a.value)?.0
            };
            assigns.push((ti, e));
        }
        let rows = matched_rows(
            &ctx,
            &scope,
            table,
            u.selection.as_ref(),
            &u.order_by,
            u.limit.as_ref(),
            delay,
        )?;
        (db, tname, assigns, rows)
    };
    let table = engine
        .table_mut(&db, &tname)
        .ok_or_else(|| SqlError::no_such_table(&format!("{db}.{tname}")))?;
    let sctx = StoreCtx {
        db: &db,
        table: &tname,
    };
    let matched = rows.len() as u64;
    let mut changed = 0u64;
    for (ri, (pk, old)) in rows.into_iter().enumerate() {
        let mut new = old.clone();
        // Single-table UPDATE assigns left to right, later expressions see earlier results.
        for (ti, e) in &assigns {
            let v = eval(
                e,
                &Env {
                    row: &new,
                    aggs: &[],
                    delay,
                },
            )?;
            let col = table.schema.columns[*ti].clone();
            new[*ti] = if v.is_null() && !col.nullable {
                return Err(bad_null(&col.name));
            } else {
                store(&col, v, &sctx, ri + 1)?
            };
        }
        if old.iter().zip(&new).all(|(a, b)| same(a, b)) {
            continue;
        }
        let new_pk = table.update(&pk, new)?;
        sess.undo.push(Undo::Updated {
            db: db.clone(),
            table: tname.clone(),
            old_pk: pk,
            new_pk,
            old_row: old,
        });
        changed += 1;
    }
    Ok(Res::Ok(OkInfo {
        affected_rows: if sess.client_found_rows {
            matched
        } else {
            changed
        },
        info: format!("Rows matched: {matched}  Changed: {changed}  Warnings: 0"),
        ..Default::default()
    }))
}

fn delete(
    engine: &mut Engine,
    sess: &mut EngineSession,
    d: &ast::Delete,
    params: &[Value],
    now_ms: u64,
    delay: &Cell<u64>,
) -> Result<Res, SqlError> {
    let from = match &d.from {
        ast::FromTable::WithFromKeyword(f) | ast::FromTable::WithoutKeyword(f) => f,
    };
    if from.len() != 1 || !d.tables.is_empty() || d.using.is_some() {
        return Err(crate::expr::unsupported("multi-table DELETE"));
    }
    let (name, alias) = single_table(&from[0])?;
    let (db, tname, rows) = {
        let ctx = Ctx {
            engine,
            sess,
            params,
            now_ms,
        };
        let (db, tname, table) = resolve_table(&ctx, name)?;
        let alias = alias.unwrap_or_else(|| tname.clone());
        let scope = Scope {
            cols: table_scope(&db, &alias, &table.schema),
        };
        let rows = matched_rows(
            &ctx,
            &scope,
            table,
            d.selection.as_ref(),
            &d.order_by,
            d.limit.as_ref(),
            delay,
        )?;
        (db, tname, rows)
    };
    let table = engine
        .table_mut(&db, &tname)
        .ok_or_else(|| SqlError::no_such_table(&format!("{db}.{tname}")))?;
    let mut n = 0u64;
    for (pk, _) in rows {
        if let Some(old) = table.remove(&pk) {
            sess.undo.push(Undo::Deleted {
                db: db.clone(),
                table: tname.clone(),
                pk,
                row: old,
            });
            n += 1;
        }
    }
    Ok(Res::Ok(OkInfo::affected(n)))
}
