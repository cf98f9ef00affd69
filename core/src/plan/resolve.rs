//! Execution-time resolution of a plan: which shards, and the exact SQL each one gets.
//! Shared by the executor and by EXPLAIN, so what EXPLAIN shows is what is sent.

use super::{Bindings, InsertPlan, Opcode, Route, ShardSql, ValueRef};
use crate::exec::{HavingCond, MergeSpec};
use crate::vschema::{keyrange::hex, ShardMap};
use crate::wire::Value;
use crate::SqlError;
use sqlparser::ast::{Expr, LimitClause, SetExpr, Statement, Value as AstValue};
use std::collections::BTreeMap;

/// One shard's part of a statement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardQuery {
    /// Index into the keyspace's shards (key-range order).
    pub shard: usize,
    pub sql: String,
    /// How the shard was chosen (for EXPLAIN): e.g. `hash(1) = 166b40b44aba4bd6`.
    pub why: Option<String>,
}

fn lookup_shard(
    route_vindex: &dyn crate::vschema::Vindex,
    v: &crate::vschema::VindexValue,
    map: &ShardMap,
) -> Result<(usize, String), SqlError> {
    let ksid = route_vindex
        .map(v)
        .map_err(|e| SqlError::new(1105, "HY000", format!("cannot compute keyspace id: {e}")))?;
    let shard = map.shard_for(&ksid).ok_or_else(|| {
        SqlError::new(
            1105,
            "HY000",
            format!("no shard for keyspace id {}", hex(&ksid)),
        )
    })?;
    Ok((shard, hex(&ksid)))
}

impl Route {
    /// The shards and per-shard SQL for one execution.
    pub fn resolve(&self, b: &Bindings<'_>, map: &ShardMap) -> Result<Vec<ShardQuery>, SqlError> {
        let all = || (0..map.len()).collect::<Vec<_>>();
        match self.opcode {
            Opcode::Unsharded | Opcode::Reference => Ok(vec![ShardQuery {
                shard: 0,
                sql: self.text(b, None)?,
                why: None,
            }]),
            Opcode::Scatter | Opcode::AllShards => {
                let sql = self.text(b, None)?;
                Ok(all()
                    .into_iter()
                    .map(|shard| ShardQuery {
                        shard,
                        sql: sql.clone(),
                        why: None,
                    })
                    .collect())
            }
            Opcode::ByDestination => {
                let sql = self.text(b, None)?;
                Ok(self
                    .destination
                    .iter()
                    .map(|&shard| ShardQuery {
                        shard,
                        sql: sql.clone(),
                        why: None,
                    })
                    .collect())
            }
            Opcode::None => Ok(vec![ShardQuery {
                shard: 0,
                sql: self.text(b, None)?,
                why: Some("no match".into()),
            }]),
            Opcode::EqualUnique => {
                let vindex = self
                    .vindex
                    .as_deref()
                    .ok_or_else(|| SqlError::internal("route without vindex"))?;
                let value = self
                    .values
                    .first()
                    .ok_or_else(|| SqlError::internal("route without value"))?;
                match b.vindex_value(value)? {
                    // `col = NULL` matches nothing anywhere: any one shard answers correctly.
                    None => Ok(vec![ShardQuery {
                        shard: 0,
                        sql: self.text(b, None)?,
                        why: Some("NULL matches nothing".into()),
                    }]),
                    Some(v) => {
                        // A value the vindex cannot map (`'abc'` for `hash`) cannot equal any
                        // stored vindex value: like Vitess, no shard can match; any one answers.
                        let Ok((shard, ksid)) = lookup_shard(vindex, &v, map) else {
                            return Ok(vec![ShardQuery {
                                shard: 0,
                                sql: self.text(b, None)?,
                                why: Some("value has no keyspace id: matches nothing".into()),
                            }]);
                        };
                        let why = format!(
                            "{}({}) = {ksid}",
                            vindex.type_name(),
                            show(&b.resolve(value)?)
                        );
                        Ok(vec![ShardQuery {
                            shard,
                            sql: self.text(b, None)?,
                            why: Some(why),
                        }])
                    }
                }
            }
            Opcode::In => {
                let vindex = self
                    .vindex
                    .as_deref()
                    .ok_or_else(|| SqlError::internal("route without vindex"))?;
                // Each shard gets its own values, once each; NULL matches nothing.
                let mut per_shard: BTreeMap<usize, Vec<ValueRef>> = BTreeMap::new();
                let mut seen: Vec<Value> = Vec::new();
                for v in &self.values {
                    let value = b.resolve(v)?;
                    if seen.contains(&value) {
                        continue;
                    }
                    seen.push(value);
                    if let Some(vv) = b.vindex_value(v)? {
                        // Values without a keyspace id match nothing: dropped from every shard.
                        if let Ok((shard, _)) = lookup_shard(vindex, &vv, map) {
                            per_shard.entry(shard).or_default().push(v.clone());
                        }
                    }
                }
                if per_shard.is_empty() {
                    return Ok(vec![ShardQuery {
                        shard: 0,
                        sql: self.text(b, None)?,
                        why: Some("no non-NULL value".into()),
                    }]);
                }
                per_shard
                    .into_iter()
                    .map(|(shard, vals)| {
                        let why = vals
                            .iter()
                            .map(|v| b.resolve(v).map(|x| show(&x)))
                            .collect::<Result<Vec<_>, _>>()?
                            .join(", ");
                        Ok(ShardQuery {
                            shard,
                            sql: self.text(b, Some(&vals))?,
                            why: Some(format!("{}: {why}", vindex.type_name())),
                        })
                    })
                    .collect()
            }
        }
    }

    /// The merge for one execution once the shards' column count is known: hidden columns
    /// placed after a `*` get their real positions. Use this one to execute.
    pub fn merge_spec_for(&self, b: &Bindings<'_>, columns: usize) -> Result<MergeSpec, SqlError> {
        let mut m = self.merge_spec(b)?;
        if self.hidden_columns > 0 && m.visible.is_none() {
            let first_hidden = columns.checked_sub(self.hidden_columns).ok_or_else(|| {
                SqlError::internal(format!(
                    "shard returned {columns} columns, fewer than the {} hidden ones",
                    self.hidden_columns
                ))
            })?;
            let f = |c: usize| {
                if c >= super::HIDDEN_BASE {
                    first_hidden + (c - super::HIDDEN_BASE)
                } else {
                    c
                }
            };
            super::merge::remap_columns(&mut m, &f);
            m.visible = Some(first_hidden);
        }
        Ok(m)
    }

    /// The merge for one execution, with LIMIT/OFFSET and HAVING values bound. Hidden columns
    /// after a `*` are still numbered from [`super::HIDDEN_BASE`] (EXPLAIN shows them so).
    pub fn merge_spec(&self, b: &Bindings<'_>) -> Result<MergeSpec, SqlError> {
        let mut m = self.merge.clone();
        if self.hidden_columns > 0 && m.visible.is_none() {
            m.trailing_hidden = self.hidden_columns;
        }
        for (_, name) in &mut m.names {
            *name = b.fill_placeholders(name);
        }
        if let Some((count, offset)) = &self.limit {
            m.limit = Some(as_u64(&b.resolve(count)?)?);
            m.offset = as_u64(&b.resolve(offset)?)?;
        }
        for (col, op, v) in &self.having {
            let mut text = Vec::new();
            b.resolve(v)?.write_text(&mut text);
            m.having.push(HavingCond {
                col: *col,
                op: *op,
                value: text,
            });
        }
        Ok(m)
    }

    /// The SQL text for one shard: original, or the template rendered with this execution's
    /// literals, the IN list pruned to `in_values`, and LIMIT n OFFSET m turned into m+n.
    fn text(&self, b: &Bindings<'_>, in_values: Option<&[ValueRef]>) -> Result<String, SqlError> {
        let mut stmt = match &self.sql {
            ShardSql::Original => return Ok(b.original.to_string()),
            ShardSql::Fixed(s) => return Ok(s.clone()),
            ShardSql::Template(t) => t.clone(),
        };
        if let (Some(vals), Some(col)) = (in_values, &self.in_column) {
            prune_in_list(&mut stmt, col, &self.values, vals);
        }
        b.substitute(&mut stmt)?;
        if let (Some((count, offset)), Statement::Query(q)) = (&self.limit, &mut stmt) {
            if q.limit_clause.is_some() {
                let n = as_u64(&b.resolve(count)?)?.saturating_add(as_u64(&b.resolve(offset)?)?);
                q.limit_clause = Some(LimitClause::LimitOffset {
                    limit: Some(Expr::value(AstValue::Number(n.to_string(), false))),
                    offset: None,
                    limit_by: vec![],
                });
            }
        }
        Ok(stmt.to_string())
    }
}

fn show(v: &Value) -> String {
    v.to_text().unwrap_or_else(|| "NULL".into())
}

/// A bound LIMIT or OFFSET value as a count.
pub fn limit_value(v: &Value) -> Result<u64, SqlError> {
    as_u64(v)
}

fn as_u64(v: &Value) -> Result<u64, SqlError> {
    match v {
        Value::Int(i) if *i >= 0 => Ok(*i as u64),
        Value::UInt(u) => Ok(*u),
        Value::Bytes(b) => std::str::from_utf8(b)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| SqlError::syntax("LIMIT needs a non-negative integer")),
        _ => Err(SqlError::syntax("LIMIT needs a non-negative integer")),
    }
}

/// Replaces the IN list that routed (on `column`, with exactly the values `routed`) with the
/// given values; other IN lists on the same column are left alone.
fn prune_in_list(stmt: &mut Statement, column: &str, routed: &[ValueRef], vals: &[ValueRef]) {
    use sqlparser::ast::visit_expressions_mut;
    use std::ops::ControlFlow;
    let _ = visit_expressions_mut(stmt, |e| {
        if let Expr::InList {
            expr,
            list,
            negated: false,
        } = e
        {
            let name = match expr.as_ref() {
                Expr::Identifier(i) => Some(i.value.to_ascii_lowercase()),
                Expr::CompoundIdentifier(p) => p.last().map(|i| i.value.to_ascii_lowercase()),
                _ => None,
            };
            let same_list = list.len() == routed.len()
                && list
                    .iter()
                    .zip(routed)
                    .all(|(x, r)| super::scope::value_of(x).as_ref() == Some(r));
            if name.as_deref() == Some(column) && same_list {
                *list = vals.iter().map(value_expr).collect();
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    });
}

/// The placeholder text of literal `i` (`:N`) or of a join variable (`:vN`).
fn placeholder(i: usize) -> String {
    match i.checked_sub(super::JOIN_VAR_BASE) {
        Some(n) => format!(":v{n}"),
        None => format!(":{i}"),
    }
}

fn value_expr(v: &ValueRef) -> Expr {
    use sqlparser::ast::UnaryOperator;
    match v {
        ValueRef::Param(i) => Expr::value(AstValue::Placeholder(placeholder(*i))),
        ValueRef::NegParam(i) => Expr::UnaryOp {
            op: UnaryOperator::Minus,
            expr: Box::new(Expr::value(AstValue::Placeholder(placeholder(*i)))),
        },
        ValueRef::Const(c) => crate::sql::literal(c),
    }
}

impl InsertPlan {
    /// Splits the rows per shard. `ids`: one sequence value per row when the plan fills the
    /// auto-increment column (rows that gave their own value keep it).
    pub fn resolve(
        &self,
        b: &Bindings<'_>,
        map: &ShardMap,
        ids: &[u64],
    ) -> Result<Vec<ShardQuery>, SqlError> {
        let Statement::Insert(ins) = &self.query else {
            return Err(SqlError::internal("insert plan without insert"));
        };
        let mut ins = ins.clone();
        b.substitute_insert(&mut ins)?;
        let Some(source) = ins.source.as_mut() else {
            return Err(SqlError::internal("insert without rows"));
        };
        let SetExpr::Values(values) = source.body.as_mut() else {
            return Err(SqlError::internal("insert without VALUES"));
        };
        // Fill the auto-increment column from the sequence.
        let mut row_ids: Vec<Option<u64>> = vec![None; values.rows.len()];
        if let Some(seq) = &self.sequence {
            let pos = ins.columns.iter().position(|c| {
                c.to_string()
                    .trim_matches('`')
                    .eq_ignore_ascii_case(&seq.column)
            });
            let pos = match pos {
                Some(p) => p,
                None => {
                    ins.columns.push(sqlparser::ast::ObjectName::from(vec![
                        sqlparser::ast::Ident::new(seq.column.clone()),
                    ]));
                    for row in values.rows.iter_mut() {
                        row.push(Expr::value(AstValue::Null));
                    }
                    ins.columns.len() - 1
                }
            };
            let mut next = ids.iter();
            for (i, row) in values.rows.iter_mut().enumerate() {
                if matches!(&row[pos], Expr::Value(v) if v.value == AstValue::Null) {
                    let id = *next
                        .next()
                        .ok_or_else(|| SqlError::internal("not enough sequence values"))?;
                    row[pos] = Expr::value(AstValue::Number(id.to_string(), false));
                    row_ids[i] = Some(id);
                }
            }
        }
        let mut per_shard: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for (i, v) in self.row_values.iter().enumerate() {
            let vv = match (v, row_ids[i]) {
                (Some(v), _) => b.vindex_value(v)?,
                (None, Some(id)) => Some(crate::vschema::VindexValue::UInt(id)),
                (None, None) => None,
            };
            let vv = vv.ok_or_else(|| {
                SqlError::cant_route(format!("no value for the vindex column of row {}", i + 1))
            })?;
            let (shard, _) = lookup_shard(self.vindex.as_ref(), &vv, map)?;
            per_shard.entry(shard).or_default().push(i);
        }
        let all_rows = std::mem::take(&mut values.rows);
        let mut out = Vec::new();
        for (shard, rows) in per_shard {
            let mut one = ins.clone();
            if let Some(SetExpr::Values(v)) = one.source.as_mut().map(|s| s.body.as_mut()) {
                v.rows = rows.iter().map(|&i| all_rows[i].clone()).collect();
            }
            out.push(ShardQuery {
                shard,
                sql: Statement::Insert(one).to_string(),
                why: Some(format!("{} row(s)", rows.len())),
            });
        }
        Ok(out)
    }

    /// How many sequence values one execution needs.
    pub fn ids_needed(&self, b: &Bindings<'_>) -> usize {
        let _ = b;
        if self.sequence.is_none() {
            return 0;
        }
        let Statement::Insert(ins) = &self.query else {
            return 0;
        };
        let Some(SetExpr::Values(values)) = ins.source.as_ref().map(|s| s.body.as_ref()) else {
            return 0;
        };
        let seq = self
            .sequence
            .as_ref()
            .map(|s| s.column.as_str())
            .unwrap_or("");
        match ins
            .columns
            .iter()
            .position(|c| c.to_string().trim_matches('`').eq_ignore_ascii_case(seq))
        {
            None => values.rows.len(),
            Some(p) => values
                .rows
                .iter()
                .filter(|r| matches!(&r[p], Expr::Value(v) if v.value == AstValue::Null))
                .count(),
        }
    }
}

impl Bindings<'_> {
    /// A column name taken from the normalized statement, its `:N` placeholders replaced by
    /// the literals as written (`avg(x * :0)` → `avg(x * 2)`).
    fn fill_placeholders(&self, name: &str) -> String {
        let mut out = String::new();
        let mut rest = name;
        while let Some(at) = rest.find(':') {
            out.push_str(&rest[..at]);
            let digits: String = rest[at + 1..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            match digits.parse::<usize>().ok().and_then(|i| self.raw(i)) {
                Some(raw) => out.push_str(raw),
                None => {
                    out.push(':');
                    out.push_str(&digits);
                }
            }
            rest = &rest[at + 1 + digits.len()..];
        }
        out.push_str(rest);
        out
    }

    fn substitute_insert(&self, ins: &mut sqlparser::ast::Insert) -> Result<(), SqlError> {
        let mut stmt = Statement::Insert(ins.clone());
        self.substitute(&mut stmt)?;
        if let Statement::Insert(i) = stmt {
            *ins = i;
        }
        Ok(())
    }
}
