//! From statement text to an executable plan: the plan cache on the hot path, the parser on a
//! miss, and the statement forms sqlparser cannot read handled with its tokenizer first.

use super::builder::plan_alter_database;
use super::{plan_statement, Local, Plan, PlanContext, Target};
use crate::gateway::Gateway;
use crate::sql::{normalize, parse_one, Literal};
use crate::SqlError;
use sqlparser::ast::{visit_expressions_mut, Expr, Statement, Value as AstValue};
use sqlparser::dialect::MySqlDialect;
use sqlparser::tokenizer::{Token, Tokenizer};
use std::ops::ControlFlow;
use std::sync::Arc;

/// A statement ready to execute: its plan and this execution's literals.
#[derive(Clone, Debug)]
pub struct Planned {
    pub plan: Arc<Plan>,
    pub literals: Vec<Literal>,
}

/// Plans `sql` for a session with `target`, through the plan cache.
pub fn plan_sql(sql: &str, gw: &Gateway, target: &Target) -> Result<Planned, SqlError> {
    let ctx = PlanContext {
        vschema: &gw.vschema,
        topology: &gw.topology,
        target,
    };
    if let Some(rest) = explain_prefix(sql) {
        let inner = plan_sql(rest, gw, target)?;
        let b = super::Bindings {
            original: rest,
            literals: &inner.literals,
            join_values: &[],
        };
        let text = super::explain(&inner.plan, &b, &gw.topology, &|ks| {
            gw.shard_maps.get(ks).cloned()
        });
        return Ok(Planned {
            plan: Arc::new(Plan::Local(Local::Explain(text))),
            literals: Vec::new(),
        });
    }
    if let Some((name, rest)) = alter_database(sql) {
        let ks = name
            .or_else(|| target.keyspace.clone())
            .unwrap_or_else(|| gw.topology.default_keyspace.clone());
        return Ok(Planned {
            plan: Arc::new(plan_alter_database(&rest, &ks, &ctx)?),
            literals: Vec::new(),
        });
    }
    let target_key = target.display().unwrap_or_default();
    match normalize(sql) {
        Some(n) => {
            let key = format!("{target_key}|{}", n.key);
            if let Some(plan) = gw.plans.get(&key) {
                return Ok(Planned {
                    plan,
                    literals: n.literals,
                });
            }
            // Parse the normalized text (so the plan fits every execution of this shape);
            // fall back to the original if the placeholders make it unparsable.
            let plan = match parse_one(&n.key) {
                // A select without tables may be answered by the gateway with its literals
                // (`select database(), 1`): planned from the original text, not cached.
                Ok(stmt) if !n.literals.is_empty() && is_tableless_select(&stmt) => {
                    let plan = plan_statement(&parse_one(sql)?, &ctx)?;
                    return Ok(Planned {
                        plan: Arc::new(plan),
                        literals: Vec::new(),
                    });
                }
                Ok(mut stmt) => {
                    number_placeholders(&mut stmt, &n.key);
                    match plan_statement(&stmt, &ctx) {
                        Ok(p) => p,
                        // Errors are not cached: say them with the statement's own literals
                        // rather than the placeholders.
                        Err(e) => {
                            let original = parse_one(sql).and_then(|s| plan_statement(&s, &ctx));
                            return Err(original.err().unwrap_or(e));
                        }
                    }
                }
                Err(_) => {
                    let stmt = parse_one(sql)?;
                    let plan = plan_statement(&stmt, &ctx)?;
                    return Ok(Planned {
                        plan: Arc::new(plan),
                        literals: Vec::new(),
                    });
                }
            };
            let plan = Arc::new(plan);
            gw.plans.insert(key, plan.clone());
            Ok(Planned {
                plan,
                literals: n.literals,
            })
        }
        None => {
            let stmt = parse_one(sql)?;
            Ok(Planned {
                plan: Arc::new(plan_statement(&stmt, &ctx)?),
                literals: Vec::new(),
            })
        }
    }
}

/// `SELECT …` without FROM (at any depth).
fn is_tableless_select(stmt: &Statement) -> bool {
    use sqlparser::ast::visit_relations;
    matches!(stmt, Statement::Query(_))
        && !visit_relations(stmt, |_| ControlFlow::Break(())).is_break()
}

/// Renames each `?` of the normalized text to `:N`, N being its literal's index, using the
/// placeholder's position (visiting order need not follow the text).
fn number_placeholders(stmt: &mut Statement, key: &str) {
    let positions = placeholder_positions(key);
    let _ = visit_expressions_mut(stmt, |e| {
        if let Expr::Value(v) = e {
            if matches!(&v.value, AstValue::Placeholder(p) if p == "?") {
                let loc = v.span.start;
                if let Some(off) = crate::sql::byte_offset(key, loc.line, loc.column) {
                    if let Ok(i) = positions.binary_search(&off) {
                        v.value = AstValue::Placeholder(format!(":{i}"));
                    }
                }
            }
        }
        ControlFlow::<()>::Continue(())
    });
}

fn placeholder_positions(key: &str) -> Vec<usize> {
    let mut out = Vec::new();
    let mut in_quote = false;
    for (i, c) in key.bytes().enumerate() {
        match c {
            b'`' => in_quote = !in_quote,
            b'?' if !in_quote => out.push(i),
            _ => {}
        }
    }
    out
}

/// Significant tokens with their byte offsets (whitespace and comments skipped).
fn tokens(sql: &str, max: usize) -> Vec<(Token, usize)> {
    let dialect = MySqlDialect {};
    let Ok(toks) = Tokenizer::new(&dialect, sql).tokenize_with_location() else {
        return Vec::new();
    };
    toks.into_iter()
        .filter(|t| !matches!(t.token, Token::Whitespace(_)))
        .take(max)
        .filter_map(|t| {
            crate::sql::byte_offset(sql, t.span.start.line, t.span.start.column)
                .map(|o| (t.token, o))
        })
        .collect()
}

fn word(t: &Token) -> Option<String> {
    match t {
        Token::Word(w) => Some(w.value.to_ascii_lowercase()),
        _ => None,
    }
}

/// `EXPLAIN FORMAT=shardgate <stmt>` or `vexplain plan <stmt>`: the inner statement's text.
fn explain_prefix(sql: &str) -> Option<&str> {
    let head = sql.trim_start().get(..8)?.to_ascii_lowercase();
    if !head.starts_with("explain") && !head.starts_with("vexplain") {
        return None;
    }
    let t = tokens(sql, 5);
    let w: Vec<Option<String>> = t.iter().map(|(tok, _)| word(tok)).collect();
    let rest_at = match w.as_slice() {
        [Some(a), Some(b), _, Some(c), ..]
            if a == "explain" && b == "format" && c == "shardgate" && t[2].0 == Token::Eq =>
        {
            t.get(4)?.1
        }
        [Some(a), Some(b), ..]
            if a == "vexplain" && (b == "plan" || b == "queries" || b == "all") =>
        {
            t.get(2)?.1
        }
        _ => return None,
    };
    sql.get(rest_at..)
}

/// `ALTER DATABASE|SCHEMA [name] <options>` (sqlparser 0.63 cannot parse it): (name, options).
fn alter_database(sql: &str) -> Option<(Option<String>, String)> {
    let head = sql.trim_start().get(..5)?.to_ascii_lowercase();
    if head != "alter" {
        return None;
    }
    let t = tokens(sql, 4);
    let w: Vec<Option<String>> = t.iter().map(|(tok, _)| word(tok)).collect();
    match w.as_slice() {
        [Some(a), Some(b), third, ..] if a == "alter" && (b == "database" || b == "schema") => {
            let options_start = [
                "character",
                "charset",
                "default",
                "collate",
                "read",
                "encryption",
            ];
            match third {
                Some(x) if !options_start.contains(&x.as_str()) => {
                    let name = match &t[2].0 {
                        Token::Word(w) => w.value.clone(),
                        _ => return None,
                    };
                    Some((Some(name), sql.get(t.get(3)?.1..)?.trim().to_string()))
                }
                _ => Some((None, sql.get(t.get(2)?.1..)?.trim().to_string())),
            }
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_found_with_the_tokenizer() {
        assert_eq!(
            explain_prefix("EXPLAIN FORMAT=shardgate select 1"),
            Some("select 1")
        );
        assert_eq!(
            explain_prefix("vexplain plan select * from t"),
            Some("select * from t")
        );
        assert_eq!(explain_prefix("explain select 1"), None);
        assert_eq!(
            alter_database("ALTER DATABASE commerce CHARACTER SET utf8mb4"),
            Some((Some("commerce".into()), "CHARACTER SET utf8mb4".into()))
        );
        assert_eq!(
            alter_database("alter schema default charset utf8mb4"),
            Some((None, "default charset utf8mb4".into()))
        );
        assert_eq!(alter_database("alter table t add c int"), None);
        assert_eq!(placeholder_positions("a = ? and `x?` = ?"), vec![4, 17]);
    }
}
