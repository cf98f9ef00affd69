//! The plan as text: one rendering for EXPLAIN and the planner snapshots. Plain text, no
//! `Debug` output: per route the opcode, keyspace, the shards, and the exact SQL each gets.

use super::{Bindings, JoinKind, JoinPlan, Local, LocalExpr, Opcode, Plan, Side, TxnOp};
use crate::exec::{AggFunc, CmpOp, MergeSpec};
use crate::gateway::Topology;
use crate::vschema::ShardMap;
use std::fmt::Write as _;

/// The plan shape without execution values.
pub fn render(plan: &Plan) -> String {
    let mut out = String::new();
    header(plan, &mut out);
    out
}

/// The plan resolved for one execution: shards and per-shard SQL.
pub fn explain(
    plan: &Plan,
    b: &Bindings<'_>,
    topology: &Topology,
    maps: &dyn Fn(&str) -> Option<ShardMap>,
) -> String {
    let mut out = String::new();
    if let Plan::Join(j) = plan {
        explain_join(j, b, topology, maps, &mut out);
        return out;
    }
    header(plan, &mut out);
    let shard_name = |ks: &str, i: usize| {
        topology
            .keyspaces
            .get(ks)
            .and_then(|k| k.shards.get(i))
            .map_or_else(|| format!("#{i}"), |s| s.name.clone())
    };
    let resolved = match plan {
        Plan::Route(r) => maps(&r.keyspace).map(|m| (r.keyspace.clone(), r.resolve(b, &m))),
        Plan::Insert(i) => maps(&i.keyspace).map(|m| {
            let ids: Vec<u64> = (1..=i.ids_needed(b) as u64).collect();
            (i.keyspace.clone(), i.resolve(b, &m, &ids))
        }),
        _ => None,
    };
    match resolved {
        Some((ks, Ok(queries))) => {
            for q in queries {
                let why = q.why.map(|w| format!("  ({w})")).unwrap_or_default();
                let _ = writeln!(out, "  shard {}/{}{}", ks, shard_name(&ks, q.shard), why);
                let _ = writeln!(out, "    {}", q.sql);
            }
        }
        Some((_, Err(e))) => {
            let _ = writeln!(out, "  error: {e}");
        }
        None => {}
    }
    match plan {
        Plan::Route(r) => {
            if let Ok(m) = r.merge_spec(b) {
                merge_lines(&m, r.hidden_columns, &mut out);
            }
        }
        Plan::Insert(i) if i.sequence.is_some() => {
            let _ = writeln!(
                out,
                "  (ids shown as 1, 2, …: the sequence hands out the real ones at execution)"
            );
        }
        Plan::Local(Local::Explain(text)) => {
            for line in text.lines() {
                let _ = writeln!(out, "  | {line}");
            }
        }
        _ => {}
    }
    out
}

fn header(plan: &Plan, out: &mut String) {
    match plan {
        Plan::Route(r) => {
            let _ = write!(out, "Route {} keyspace={}", r.opcode.name(), r.keyspace);
            if !r.tables.is_empty() {
                let _ = write!(out, " tables={}", r.tables.join(","));
            }
            if let Some(v) = &r.vindex {
                let _ = write!(out, " vindex={}", v.type_name());
            }
            out.push('\n');
        }
        Plan::Insert(i) => {
            let _ = write!(
                out,
                "Insert keyspace={} table={} vindex={}",
                i.keyspace,
                i.table,
                i.vindex.type_name()
            );
            if let Some(s) = &i.sequence {
                let _ = write!(
                    out,
                    " sequence={}.{} column={}",
                    s.keyspace, s.table, s.column
                );
            }
            out.push('\n');
        }
        Plan::Local(l) => {
            let _ = writeln!(out, "Local {}", local_name(l));
        }
        Plan::Use(t) => {
            let _ = writeln!(out, "Use {}", t.display().unwrap_or_default());
        }
        Plan::Transaction(op) => {
            let scope = match op {
                TxnOp::Begin | TxnOp::Commit | TxnOp::Rollback => "",
                TxnOp::Savepoint(_) => " (every participant; replayed on shards joining later)",
                TxnOp::RollbackTo(_) | TxnOp::Release(_) => " (every participant)",
            };
            let _ = writeln!(out, "Transaction {}{scope}", op.shard_sql());
        }
        Plan::SessionSet { sql } => {
            let _ = writeln!(out, "SessionSet (every backend of the session)\n    {sql}");
        }
        Plan::Join(j) => {
            let _ = writeln!(
                out,
                "Join {} (nested loop at the gateway: the right side runs once per left row)",
                join_kind(j.kind)
            );
        }
    }
}

fn join_kind(k: JoinKind) -> &'static str {
    match k {
        JoinKind::Inner => "Inner",
        JoinKind::Left => "Left",
    }
}

/// A join: the left route as it runs (shards and SQL), the right route's shape with its
/// `:vN` variables, how the variables and output columns come from the sides, and what the
/// gateway does after the join.
fn explain_join(
    j: &JoinPlan,
    b: &Bindings<'_>,
    topology: &Topology,
    maps: &dyn Fn(&str) -> Option<ShardMap>,
    out: &mut String,
) {
    header(&Plan::Join(Box::new(j.clone())), out);
    let left = explain(&Plan::Route(j.left.clone()), b, topology, maps);
    for (i, line) in left.lines().enumerate() {
        let _ = writeln!(out, "  {}{line}", if i == 0 { "left: " } else { "  " });
    }
    let r = &j.right;
    let _ = write!(out, "  right: ");
    header(&Plan::Route(r.clone()), out);
    let per_row = match r.opcode {
        Opcode::EqualUnique => {
            let v = r
                .values
                .first()
                .map(|v| show_value(v, b))
                .unwrap_or_default();
            let name = r.vindex.as_ref().map_or("vindex", |v| v.type_name());
            format!("one shard per left row: {name}({v})")
        }
        Opcode::In => "the shards of the IN values".to_string(),
        Opcode::Scatter => "every shard, per left row".to_string(),
        Opcode::None => "no match".to_string(),
        _ => "its keyspace's one shard, per left row".to_string(),
    };
    let _ = writeln!(out, "    shards: {per_row}");
    let sql = match &r.sql {
        super::ShardSql::Template(t) => b.render(t).unwrap_or_else(|e| format!("error: {e}")),
        super::ShardSql::Fixed(s) => s.clone(),
        super::ShardSql::Original => b.original.to_string(),
    };
    let _ = writeln!(out, "      {sql}");
    for (n, name) in j.var_names.iter().enumerate() {
        let _ = writeln!(out, "  :v{n} = {name} (left item {})", j.vars[n]);
    }
    let col = |(side, item): &(Side, usize)| {
        let s = if *side == Side::Left { "left" } else { "right" };
        let wild = match side {
            Side::Left => j.left_items.get(*item),
            Side::Right => j.right_items.get(*item),
        };
        format!("{s}{item}{}", if wild == Some(&true) { ".*" } else { "" })
    };
    let cols: Vec<String> = j.columns[..j.visible].iter().map(col).collect();
    let _ = writeln!(out, "  columns: {}", cols.join(", "));
    if let Some(post) = &j.post {
        if let Ok(m) = post.merge_spec(b) {
            merge_lines(&m, post.hidden_columns, out);
        }
    }
    let mut post = Vec::new();
    for (c, is_null) in &j.filters {
        let name = j.columns.get(*c).map(col).unwrap_or_default();
        post.push(format!(
            "where {name} is {}null",
            if *is_null { "" } else { "not " }
        ));
    }
    if !j.order_by.is_empty() {
        let keys: Vec<String> = j
            .order_by
            .iter()
            .map(|(c, desc)| {
                let name = j.columns.get(*c).map(col).unwrap_or_default();
                format!("{name}{}", if *desc { " desc" } else { "" })
            })
            .collect();
        post.push(format!("order by {} (buffered)", keys.join(", ")));
    }
    if let Some((c, o)) = &j.limit {
        post.push(format!(
            "limit {} offset {}",
            show_value(c, b),
            show_value(o, b)
        ));
    }
    if !post.is_empty() {
        let _ = writeln!(out, "  after the join: {}", post.join("; "));
    }
}

fn show_value(v: &super::ValueRef, b: &Bindings<'_>) -> String {
    match v {
        super::ValueRef::Param(i) | super::ValueRef::NegParam(i) if *i >= super::JOIN_VAR_BASE => {
            format!(":v{}", i - super::JOIN_VAR_BASE)
        }
        other => b
            .resolve(other)
            .ok()
            .and_then(|x| x.to_text())
            .unwrap_or_else(|| "NULL".into()),
    }
}

fn local_name(l: &Local) -> String {
    match l {
        Local::Row { columns } => {
            let names: Vec<String> = columns
                .iter()
                .map(|(n, e)| {
                    let what = match e {
                        LocalExpr::Database => "database",
                        LocalExpr::LastInsertId => "last_insert_id",
                        LocalExpr::ConnectionId => "connection_id",
                        LocalExpr::Version => "version",
                        LocalExpr::VersionComment => "version_comment",
                        LocalExpr::Literal(_) => "literal",
                    };
                    format!("{n}={what}")
                })
                .collect();
            format!("row [{}]", names.join(", "))
        }
        Local::ShowKeyspaces => "SHOW KEYSPACES".into(),
        Local::ShowShards => "SHOW VITESS_SHARDS".into(),
        Local::ShowTablets => "SHOW VITESS_TABLETS".into(),
        Local::SslStatus(p) => format!("SHOW STATUS LIKE '{p}' (the client's TLS)"),
        Local::Explain(_) => "EXPLAIN".into(),
        Local::Ok => "OK".into(),
    }
}

fn merge_lines(m: &MergeSpec, hidden: usize, out: &mut String) {
    if m.is_passthrough() {
        return;
    }
    // Hidden columns follow the visible ones; after a `*` they are counted from the end.
    let col = |c: usize| {
        if c >= super::HIDDEN_BASE {
            format!("hidden{}", c - super::HIDDEN_BASE)
        } else {
            match m.visible {
                Some(v) if c >= v => format!("hidden{}", c - v),
                _ => format!("col{c}"),
            }
        }
    };
    let mut parts = Vec::new();
    if !m.group_by.is_empty() {
        parts.push(format!(
            "group by {}",
            m.group_by
                .iter()
                .map(|c| col(*c))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    for a in &m.aggregates {
        let f = match a.func {
            AggFunc::Count => "count".to_string(),
            AggFunc::Sum => "sum".to_string(),
            AggFunc::Min => "min".to_string(),
            AggFunc::Max => "max".to_string(),
            AggFunc::Avg { count_col } => format!("avg(sum/{})", col(count_col)),
        };
        parts.push(format!("{f} {}", col(a.col)));
    }
    for h in &m.having {
        let op = match h.op {
            CmpOp::Eq => "=",
            CmpOp::NotEq => "<>",
            CmpOp::Lt => "<",
            CmpOp::LtEq => "<=",
            CmpOp::Gt => ">",
            CmpOp::GtEq => ">=",
        };
        parts.push(format!(
            "having {} {op} {}",
            col(h.col),
            String::from_utf8_lossy(&h.value)
        ));
    }
    if m.distinct {
        parts.push("distinct".into());
    }
    if !m.order_by.is_empty() {
        parts.push(format!(
            "order by {}",
            m.order_by
                .iter()
                .map(|k| format!("{}{}", col(k.col), if k.desc { " desc" } else { "" }))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if let Some(l) = m.limit {
        parts.push(format!("limit {l} offset {}", m.offset));
    }
    match m.visible {
        Some(v) => parts.push(format!("show first {v} columns")),
        None if hidden > 0 => parts.push(format!("drop last {hidden} columns")),
        None => {}
    }
    let _ = writeln!(out, "  merge: {}", parts.join("; "));
}
