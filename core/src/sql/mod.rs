//! SQL text helpers shared by the gateway and the engine: splitting multi-statement
//! batches and mapping parser errors to MySQL's 1064.

mod split;

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
        0 => Err(SqlError::new(crate::error::codes::ER_EMPTY_QUERY, "42000", "Query was empty")),
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
pub(crate) fn byte_offset(sql: &str, line: u64, column: u64) -> Option<usize> {
    let mut start = 0usize;
    for _ in 1..line {
        start += sql[start..].find('\n')? + 1;
    }
    let line_text = &sql[start..];
    let col = column.saturating_sub(1) as usize;
    let within = line_text.char_indices().nth(col).map(|(i, _)| i).unwrap_or(line_text.len());
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
        let e = parse_one("delete s from t as s where s version convert unsigned limit ?").unwrap_err();
        assert_eq!(e.code, 1064);
    }

    #[test]
    fn byte_offsets_follow_lines_and_chars() {
        assert_eq!(byte_offset("ab\ncdé f", 2, 4), Some(7));
        assert_eq!(byte_offset("abc", 1, 1), Some(0));
        assert_eq!(byte_offset("abc", 1, 9), Some(3));
        assert_eq!(byte_offset("abc", 3, 1), None);
    }
}
