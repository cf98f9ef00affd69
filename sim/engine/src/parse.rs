//! Parsing: sqlparser's tokenizer + parser (MySQL dialect), with `?` placeholders numbered so
//! prepared-statement parameters bind by position, parse errors in MySQL's 1064 wording, and the
//! select-list text MySQL uses as column names.

use shardgate_core::SqlError;
use sqlparser::ast::Statement;
use sqlparser::dialect::MySqlDialect;
use sqlparser::keywords::Keyword;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Location, Token, TokenWithSpan, Tokenizer};

pub struct Parsed {
    pub stmt: Statement,
    pub tokens: Vec<TokenWithSpan>,
}

/// MySQL's syntax error text, quoting the statement from the failing position.
pub fn syntax_error(sql: &str, line: u64, col: u64) -> SqlError {
    let off = offset_of(sql, line, col).unwrap_or(sql.len());
    let rest: String = sql[off..].chars().take(80).collect();
    SqlError::syntax(format!(
        "You have an error in your SQL syntax; check the manual that corresponds to your MySQL server version for the right syntax to use near '{}' at line {}",
        rest,
        line.max(1)
    ))
}

/// Byte offset of a 1-based (line, column-in-chars) location.
pub fn offset_of(sql: &str, line: u64, col: u64) -> Option<usize> {
    if line == 0 {
        return None;
    }
    let mut cur_line = 1u64;
    let mut line_start = 0usize;
    if line > 1 {
        for (i, c) in sql.char_indices() {
            if c == '\n' {
                cur_line += 1;
                if cur_line == line {
                    line_start = i + 1;
                    break;
                }
            }
        }
        if cur_line != line {
            return None;
        }
    }
    let rest = &sql[line_start..];
    // Columns count characters from 1.
    let at = col
        .checked_sub(1)
        .and_then(|k| rest.char_indices().nth(k as usize));
    Some(at.map_or(sql.len(), |(i, _)| line_start + i))
}

fn loc_offset(sql: &str, l: Location) -> Option<usize> {
    offset_of(sql, l.line, l.column)
}

/// Extracts "Line: N, Column: M" from a sqlparser message.
fn error_position(msg: &str) -> Option<(u64, u64)> {
    let i = msg.rfind("Line: ")?;
    let rest = &msg[i + 6..];
    let comma = rest.find(',')?;
    let line: u64 = rest[..comma].trim().parse().ok()?;
    let j = rest.find("Column: ")?;
    let col: String = rest[j + 8..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    Some((line, col.parse().ok()?))
}

fn map_error(sql: &str, msg: &str) -> SqlError {
    if msg.contains("found: EOF") {
        return SqlError::syntax(
            "You have an error in your SQL syntax; check the manual that corresponds to your MySQL server version for the right syntax to use near '' at line 1".to_string(),
        );
    }
    match error_position(msg) {
        Some((l, c)) => syntax_error(sql, l, c),
        None => syntax_error(sql, 1, 1),
    }
}

/// Tokenises and parses exactly one statement.
pub fn parse(sql: &str) -> Result<Parsed, SqlError> {
    let dialect = MySqlDialect {};
    let mut tokens = Tokenizer::new(&dialect, sql)
        .tokenize_with_location()
        .map_err(|e| map_error(sql, &e.to_string()))?;
    let mut n = 0;
    for t in tokens.iter_mut() {
        if let Token::Placeholder(p) = &t.token {
            if p == "?" {
                n += 1;
                t.token = Token::Placeholder(format!("?{n}"));
            }
        }
    }
    let meaningful = tokens.iter().any(|t| {
        !matches!(
            t.token,
            Token::Whitespace(_) | Token::SemiColon | Token::EOF
        )
    });
    if !meaningful {
        return Err(SqlError::new(
            shardgate_core::error::codes::ER_EMPTY_QUERY,
            "42000",
            "Query was empty",
        ));
    }
    let mut parser = Parser::new(&dialect).with_tokens_with_locations(tokens.clone());
    let stmts = parser
        .parse_statements()
        .map_err(|e| map_error(sql, &e.to_string()))?;
    let mut it = stmts.into_iter();
    match (it.next(), it.next()) {
        (Some(stmt), None) => Ok(Parsed { stmt, tokens }),
        (Some(_), Some(_)) => Err(SqlError::syntax(
            "You have an error in your SQL syntax; multi-statements must be split by the caller",
        )),
        _ => Err(SqlError::new(
            shardgate_core::error::codes::ER_EMPTY_QUERY,
            "42000",
            "Query was empty",
        )),
    }
}

/// The first words of a statement (upper-case), for statements sqlparser does not know.
pub fn leading_words(tokens: &[TokenWithSpan], n: usize) -> Vec<String> {
    tokens
        .iter()
        .filter(|t| !matches!(t.token, Token::Whitespace(_)))
        .take(n)
        .map(|t| match &t.token {
            Token::Word(w) => w.value.to_ascii_uppercase(),
            other => other.to_string(),
        })
        .collect()
}

/// The raw text of each select-list item of the SELECT whose keyword starts at `select_at`:
/// MySQL names an unaliased column by the expression exactly as written.
pub fn select_item_texts(
    sql: &str,
    tokens: &[TokenWithSpan],
    select_at: Location,
) -> Option<Vec<String>> {
    let toks: Vec<&TokenWithSpan> = tokens
        .iter()
        .filter(|t| !matches!(t.token, Token::Whitespace(_)))
        .collect();
    let mut i = toks.iter().position(|t| t.span.start == select_at)? + 1;
    // Skip modifiers.
    while let Some(t) = toks.get(i) {
        match &t.token {
            Token::Word(w)
                if matches!(
                    w.keyword,
                    Keyword::DISTINCT
                        | Keyword::ALL
                        | Keyword::DISTINCTROW
                        | Keyword::HIGH_PRIORITY
                        | Keyword::STRAIGHT_JOIN
                        | Keyword::SQL_SMALL_RESULT
                        | Keyword::SQL_BIG_RESULT
                        | Keyword::SQL_BUFFER_RESULT
                        | Keyword::SQL_NO_CACHE
                        | Keyword::SQL_CALC_FOUND_ROWS
                ) =>
            {
                i += 1
            }
            _ => break,
        }
    }
    let mut items = Vec::new();
    let mut depth = 0i32;
    let mut start: Option<usize> = None;
    let mut last_end: Option<Location> = None;
    let mut start_loc: Option<Location> = None;
    let push = |s: Option<Location>, e: Option<Location>, items: &mut Vec<String>| {
        let (Some(s), Some(e)) = (s, e) else {
            items.push(String::new());
            return;
        };
        let a = loc_offset(sql, s).unwrap_or(0);
        let b = loc_offset(sql, e).unwrap_or(sql.len());
        items.push(sql.get(a..b).unwrap_or("").to_string());
    };
    while let Some(t) = toks.get(i) {
        let stop = match &t.token {
            Token::LParen => {
                depth += 1;
                false
            }
            Token::RParen => {
                depth -= 1;
                depth < 0
            }
            Token::Comma if depth == 0 => {
                push(start_loc, last_end, &mut items);
                start = None;
                start_loc = None;
                i += 1;
                continue;
            }
            Token::SemiColon | Token::EOF => true,
            Token::Word(w) if depth == 0 && w.quote_style.is_none() => matches!(
                w.keyword,
                Keyword::FROM
                    | Keyword::WHERE
                    | Keyword::GROUP
                    | Keyword::HAVING
                    | Keyword::ORDER
                    | Keyword::LIMIT
                    | Keyword::INTO
                    | Keyword::FOR
                    | Keyword::UNION
                    | Keyword::EXCEPT
                    | Keyword::INTERSECT
                    | Keyword::WINDOW
                    | Keyword::LOCK
            ),
            _ => false,
        };
        if stop {
            break;
        }
        if start.is_none() {
            start = Some(i);
            start_loc = Some(t.span.start);
        }
        last_end = Some(t.span.end);
        i += 1;
    }
    push(start_loc, last_end, &mut items);
    Some(items)
}
