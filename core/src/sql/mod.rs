//! SQL text helpers shared by the gateway and the engine: splitting multi-statement
//! batches and mapping parser errors to MySQL's 1064.

mod last_insert_id;
pub mod like;
mod normalize;
mod reserve;
mod split;

pub use last_insert_id::substitute_last_insert_id;
pub use normalize::{normalize, render_with_params, Literal, LiteralKind, Normalized};
pub use reserve::{needs_reserved_connection, starts_with_keyword};
pub use split::split_statements;

use crate::error::SqlError;
use sqlparser::dialect::MySqlDialect;
use sqlparser::parser::{Parser, ParserError};

/// Parses exactly one statement with the MySQL dialect; failures become ERR 1064 / 42000.
pub fn parse_one(sql: &str) -> Result<sqlparser::ast::Statement, SqlError> {
    let dialect = MySqlDialect {};
    let mut stmts = Parser::parse_sql(&dialect, sql).map_err(|e| syntax_error(sql, &e))?;
    match stmts.len() {
        1 => Ok(stmts.remove(0)),
        0 => Err(SqlError::new(
            crate::error::codes::ER_EMPTY_QUERY,
            "42000",
            "Query was empty",
        )),
        _ => Err(SqlError::syntax(mysql_syntax_message(sql, "", 1))),
    }
}

/// Maps a sqlparser error to 1064 with MySQL's wording and the position of the problem.
pub fn syntax_error(sql: &str, err: &ParserError) -> SqlError {
    let msg = match err {
        ParserError::TokenizerError(m) | ParserError::ParserError(m) => m.as_str(),
        ParserError::RecursionLimitExceeded => "recursion limit exceeded",
    };
    // sqlparser appends " at Line: L, Column: C"; MySQL quotes the text from that point.
    let (line, col) = position_of(msg).unwrap_or((1, 1));
    let offset = byte_offset(sql, line, col).unwrap_or(0);
    tracing::debug!(parser = msg, "syntax error");
    SqlError::syntax(mysql_syntax_message(sql, &sql[offset..], line))
}

fn mysql_syntax_message(_sql: &str, near: &str, line: u64) -> String {
    let near: String = near.chars().take(80).collect();
    format!(
        "You have an error in your SQL syntax; check the manual that corresponds to your \
         MySQL server version for the right syntax to use near '{near}' at line {line}"
    )
}

fn position_of(msg: &str) -> Option<(u64, u64)> {
    let i = msg.rfind("Line: ")?;
    let rest = &msg[i + 6..];
    let (l, rest) = rest.split_once(", Column: ")?;
    let c: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    Some((l.trim().parse().ok()?, c.parse().ok()?))
}

/// Byte offset of a 1-based (line, column-in-chars) position, as the tokenizer reports them.
pub fn byte_offset(sql: &str, line: u64, column: u64) -> Option<usize> {
    let mut start = 0usize;
    for _ in 1..line {
        start += sql[start..].find('\n')? + 1;
    }
    let line_text = &sql[start..];
    let col = column.saturating_sub(1) as usize;
    let within = line_text
        .char_indices()
        .nth(col)
        .map(|(i, _)| i)
        .unwrap_or(line_text.len());
    Some(start + within)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax_errors_are_1064_with_position() {
        let e = parse_one("select 1 frm t where").unwrap_err();
        assert_eq!((e.code, e.sqlstate()), (1064, "42000"));
        assert!(e.message.contains("near '"), "{}", e.message);
        assert!(e.message.contains("at line 1"), "{}", e.message);
        let e =
            parse_one("delete s from t as s where s version convert unsigned limit ?").unwrap_err();
        assert_eq!(e.code, 1064);
    }

    #[test]
    fn describe_query_binds_zeros_and_limits_to_none() {
        let d = |sql: &str| describe_query(&parse_one(sql).unwrap());
        assert_eq!(
            d("select * from t where id >= ? and v like ? limit ?, ?").as_deref(),
            Some("SELECT * FROM t WHERE id >= 0 AND v LIKE 0 LIMIT 0")
        );
        assert_eq!(
            d("select a from t where b in (select c from u limit ?) order by a").as_deref(),
            Some("SELECT a FROM t WHERE b IN (SELECT c FROM u LIMIT 0) ORDER BY a LIMIT 0")
        );
        assert_eq!(
            d("select a from t union select b from u").as_deref(),
            Some("SELECT a FROM t UNION SELECT b FROM u LIMIT 0")
        );
        assert_eq!(d("select 1 into @x"), None);
        assert_eq!(d("insert into t values (?)"), None);
        assert_eq!(d("update t set a = ?"), None);
    }

    #[test]
    fn byte_offsets_follow_lines_and_chars() {
        assert_eq!(byte_offset("ab\ncdé f", 2, 4), Some(7));
        assert_eq!(byte_offset("abc", 1, 1), Some(0));
        assert_eq!(byte_offset("abc", 1, 9), Some(3));
        assert_eq!(byte_offset("abc", 3, 1), None);
    }
}

/// The result column names of a prepared SELECT, as COM_STMT_PREPARE announces them when its
/// describe query ([`describe_query`]) could not run: the select list (the leftmost SELECT of
/// a UNION). `None` when unknown without a shard (`*`, not a query): then no columns are
/// announced and the execute's result set carries them.
/// Clients built on libmysqlclient (sysbench, PHP, MySQLdb) only read the result of a
/// statement whose PREPARE announced columns, so a SELECT must never announce none.
pub fn prepared_result_columns(stmt: &sqlparser::ast::Statement) -> Option<Vec<String>> {
    use sqlparser::ast::{SelectItem, SetExpr, Statement};
    fn body(e: &SetExpr) -> Option<Vec<String>> {
        match e {
            SetExpr::Select(s) => s
                .projection
                .iter()
                .map(|item| match item {
                    SelectItem::UnnamedExpr(e) => Some(e.to_string()),
                    SelectItem::ExprWithAlias { alias, .. } => Some(alias.value.clone()),
                    _ => None,
                })
                .collect(),
            SetExpr::Query(q) => body(&q.body),
            SetExpr::SetOperation { left, .. } => body(left),
            _ => None,
        }
    }
    match stmt {
        Statement::Query(q) => body(&q.body).filter(|c| !c.is_empty()),
        _ => None,
    }
}

/// The query COM_STMT_PREPARE runs to describe a prepared SELECT's result columns with their
/// real types (Vitess's "get fields"): the statement with every `?` bound to `0` and the
/// outer `LIMIT 0`, so no row is read (MySQL skips a zero-limit query's execution) while
/// its column definitions come back exactly as an execute's would. `None` for anything
/// else — statements without result set, and `SELECT … INTO`, which has none either.
pub fn describe_query(stmt: &sqlparser::ast::Statement) -> Option<String> {
    use sqlparser::ast::{Expr, LimitClause, SetExpr, Statement, Value as AstValue};
    let Statement::Query(q) = stmt else {
        return None;
    };
    fn has_into(e: &SetExpr) -> bool {
        match e {
            SetExpr::Select(s) => s.into.is_some(),
            SetExpr::Query(q) => has_into(&q.body),
            SetExpr::SetOperation { left, right, .. } => has_into(left) || has_into(right),
            _ => false,
        }
    }
    if has_into(&q.body) {
        return None;
    }
    let mut stmt = stmt.clone();
    let zeros = vec![crate::wire::Value::Int(0); count_placeholders(&stmt)];
    bind_placeholders(&mut stmt, &zeros).ok()?;
    let Statement::Query(q) = &mut stmt else {
        return None;
    };
    q.limit_clause = Some(LimitClause::LimitOffset {
        limit: Some(Expr::value(AstValue::Number("0".into(), false))),
        offset: None,
        limit_by: Vec::new(),
    });
    Some(stmt.to_string())
}

/// Counts the `?` placeholders of a parsed statement (COM_STMT_PREPARE's parameter count).
pub fn count_placeholders(stmt: &sqlparser::ast::Statement) -> usize {
    use sqlparser::ast::{visit_expressions, Expr, Value as AstValue};
    use std::ops::ControlFlow;
    let mut n = 0usize;
    let _ = visit_expressions(stmt, |e| {
        if let Expr::Value(v) = e {
            if matches!(&v.value, AstValue::Placeholder(p) if p == "?") {
                n += 1;
            }
        }
        ControlFlow::<()>::Continue(())
    });
    n
}

/// Replaces the `?` placeholders, in order, by literals of `params` (how prepared statements
/// reach shards: as text queries, the way Vitess does it).
///
/// # Errors
/// 1210 when the number of parameters does not match.
pub fn bind_placeholders(
    stmt: &mut sqlparser::ast::Statement,
    params: &[crate::wire::Value],
) -> Result<(), SqlError> {
    use sqlparser::ast::{visit_expressions_mut, Expr, Value as AstValue};
    use std::ops::ControlFlow;
    let mut i = 0usize;
    let flow = visit_expressions_mut(stmt, |e| {
        if matches!(e, Expr::Value(v) if matches!(&v.value, AstValue::Placeholder(p) if p == "?")) {
            let Some(p) = params.get(i) else {
                return ControlFlow::Break(());
            };
            *e = literal(p);
            i += 1;
        }
        ControlFlow::Continue(())
    });
    if flow.is_break() || i != params.len() {
        return Err(SqlError::wrong_arguments("mysqld_stmt_execute"));
    }
    Ok(())
}

/// A wire value as a SQL literal expression.
///
/// Text that MySQL would read differently inside quotes (backslash escapes, NUL) is sent as a
/// hex literal with the `_utf8mb4` introducer, so it keeps its bytes *and* its collation;
/// non-UTF-8 bytes are a plain (binary) hex literal.
pub fn literal(v: &crate::wire::Value) -> sqlparser::ast::Expr {
    use crate::wire::Value;
    use sqlparser::ast::{Expr, Ident, Value as AstValue};
    let hex = |b: &[u8]| AstValue::HexStringLiteral(b.iter().map(|x| format!("{x:02X}")).collect());
    let value = match v {
        Value::Null => AstValue::Null,
        Value::Bytes(b) => match std::str::from_utf8(b) {
            Ok(s) if !s.contains(['\\', '\0']) => AstValue::SingleQuotedString(s.to_string()),
            Ok(_) => {
                return Expr::Prefixed {
                    prefix: Ident::new("_utf8mb4"),
                    value: Box::new(Expr::value(hex(b))),
                }
            }
            Err(_) => hex(b),
        },
        other => AstValue::Number(other.to_text().unwrap_or_default(), false),
    };
    Expr::value(value)
}

#[cfg(test)]
mod bind_tests {
    use super::*;
    use crate::wire::Value;

    #[test]
    fn placeholders_are_counted_and_bound_in_order() {
        let mut s = parse_one("select c from t where id = ? and name in (?, ?)").unwrap();
        assert_eq!(count_placeholders(&s), 3);
        bind_placeholders(
            &mut s,
            &[
                Value::Int(7),
                Value::text("o'k"),
                Value::Bytes(bytes::Bytes::from_static(&[0xff, 0])),
            ],
        )
        .unwrap();
        assert_eq!(
            s.to_string(),
            "SELECT c FROM t WHERE id = 7 AND name IN ('o''k', X'FF00')"
        );
        let mut s = parse_one("select ?").unwrap();
        bind_placeholders(&mut s, &[Value::text("a\\b")]).unwrap();
        assert_eq!(s.to_string(), "SELECT _utf8mb4 X'615C62'");
        let mut s = parse_one("select ?").unwrap();
        assert_eq!(bind_placeholders(&mut s, &[]).unwrap_err().code, 1210);
    }
}

#[cfg(test)]
mod prepared_columns_tests {
    use super::{parse_one, prepared_result_columns};

    fn cols(sql: &str) -> Option<Vec<String>> {
        prepared_result_columns(&parse_one(sql).expect("parses"))
    }

    #[test]
    fn a_prepared_select_announces_its_select_list() {
        assert_eq!(
            cols("SELECT c, SUM(k) AS s FROM sbtest1 WHERE id BETWEEN ? AND ?"),
            Some(vec!["c".to_string(), "s".to_string()])
        );
        assert_eq!(
            cols("select a from t union select b from u"),
            Some(vec!["a".to_string()])
        );
    }

    #[test]
    fn unknown_or_no_result_columns_announce_none() {
        assert_eq!(cols("select * from t where id = ?"), None);
        assert_eq!(cols("select t.* from t"), None);
        assert_eq!(cols("update t set a = ? where id = 1"), None);
    }
}
