//! The hot-path lexer: turns a statement into a plan-cache key with its literals replaced by
//! `?`, and records where each literal was, without a full parse.
//!
//! A point-select parse costs ~5 µs; this scan costs well under one, which is what makes a plan
//! cache hit cheap. It is a small tokenizer, not a pattern match on raw text: it knows quoted
//! strings (with both escape styles), backquoted identifiers, numbers and comments. Anything
//! it is not sure about (comments, hex/bit literals, non-DML statements) makes it decline, and
//! the caller falls back to sqlparser on the original text.
//!
//! Integers right after `ORDER BY` / `GROUP BY` or a comma in those lists are column positions,
//! not values, and are kept.

use std::ops::Range;

/// What a literal looked like in the original text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LiteralKind {
    /// Digits only.
    Integer,
    /// Digits with a point or an exponent.
    Decimal,
    /// A quoted string (`'…'` or `"…"`).
    String,
}

/// One literal of the original statement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Literal {
    /// Byte range in the original text, quotes included.
    pub span: Range<usize>,
    pub kind: LiteralKind,
}

impl Literal {
    /// The literal's value: numbers as written, strings unquoted and unescaped.
    pub fn value(&self, sql: &str) -> Vec<u8> {
        let raw = &sql.as_bytes()[self.span.clone()];
        match self.kind {
            LiteralKind::String => unescape(&raw[1..raw.len() - 1], raw[0]),
            _ => raw.to_vec(),
        }
    }
}

/// A normalized statement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Normalized {
    /// Lower-cased keywords and identifiers kept as written, literals as `?`, whitespace
    /// collapsed: the plan-cache key.
    pub key: String,
    pub literals: Vec<Literal>,
}

/// Normalizes a SELECT/INSERT/REPLACE/UPDATE/DELETE; `None` for anything else or anything
/// unusual (the caller then parses the original text).
pub fn normalize(sql: &str) -> Option<Normalized> {
    let b = sql.as_bytes();
    let first = first_word(b)?;
    if !matches!(
        first.as_str(),
        "select" | "insert" | "replace" | "update" | "delete"
    ) {
        return None;
    }
    let mut key = String::with_capacity(sql.len());
    let mut literals = Vec::new();
    let mut i = 0usize;
    // Position-list tracking for ORDER BY / GROUP BY.
    let mut prev_word = String::new();
    let mut in_by_list = false;
    let mut last_sig: u8 = b' ';
    while i < b.len() {
        let c = b[i];
        match c {
            b' ' | b'\t' | b'\n' | b'\r' => {
                i += 1;
                if !key.ends_with(' ') && !key.is_empty() {
                    key.push(' ');
                }
                continue;
            }
            b'#' => return None,
            b'-' if b.get(i + 1) == Some(&b'-') => return None,
            b'/' if b.get(i + 1) == Some(&b'*') => return None,
            b'\'' | b'"' => {
                let end = skip_string(b, i)?;
                literals.push(Literal {
                    span: i..end,
                    kind: LiteralKind::String,
                });
                key.push('?');
                i = end;
                last_sig = b'?';
                continue;
            }
            b'`' => {
                let end = b[i + 1..].iter().position(|&x| x == b'`')? + i + 2;
                key.push_str(&sql[i..end]);
                i = end;
                last_sig = b'`';
                continue;
            }
            b'0'..=b'9' => {
                if c == b'0' && matches!(b.get(i + 1), Some(b'x' | b'X' | b'b' | b'B')) {
                    return None;
                }
                let (end, kind) = scan_number(b, i);
                if end < b.len() && (b[end].is_ascii_alphabetic() || b[end] == b'_') {
                    // An identifier starting with digits (legal in MySQL): keep as is.
                    let wend = scan_word(b, i);
                    key.push_str(&sql[i..wend]);
                    i = wend;
                    last_sig = b'a';
                    continue;
                }
                let is_position = in_by_list
                    && kind == LiteralKind::Integer
                    && (last_sig == b',' || prev_word == "by");
                if is_position {
                    key.push_str(&sql[i..end]);
                } else {
                    literals.push(Literal { span: i..end, kind });
                    key.push('?');
                }
                i = end;
                last_sig = b'0';
                prev_word.clear();
                continue;
            }
            b'.' if b.get(i + 1).is_some_and(u8::is_ascii_digit)
                && !last_sig.is_ascii_alphanumeric()
                && last_sig != b'`' =>
            {
                let (end, _) = scan_number(b, i);
                literals.push(Literal {
                    span: i..end,
                    kind: LiteralKind::Decimal,
                });
                key.push('?');
                i = end;
                last_sig = b'0';
                continue;
            }
            c if c.is_ascii_alphabetic() || c == b'_' || c == b'$' || c >= 0x80 => {
                let end = scan_word(b, i);
                let word = &sql[i..end];
                let lower = word.to_ascii_lowercase();
                if matches!(
                    lower.as_str(),
                    "x" | "b" | "n" | "_utf8mb4" | "_binary" | "_latin1" | "_utf8"
                ) && b.get(end) == Some(&b'\'')
                {
                    return None; // x'..', b'..', charset introducers
                }
                if lower == "by" && (prev_word == "order" || prev_word == "group") {
                    in_by_list = true;
                } else if matches!(
                    lower.as_str(),
                    "limit" | "having" | "for" | "union" | "lock" | "into" | "window"
                ) {
                    in_by_list = false;
                }
                key.push_str(&lower);
                prev_word = lower;
                i = end;
                last_sig = b'a';
                continue;
            }
            b'\\' => return None,
            _ => {
                key.push(c as char);
                if c == b';' {
                    in_by_list = false;
                }
                last_sig = c;
                prev_word.clear();
                i += 1;
            }
        }
    }
    while key.ends_with(' ') {
        key.pop();
    }
    Some(Normalized { key, literals })
}

/// Replaces the `?` placeholders of a prepared statement's text with the literals of
/// `params`, giving the text statement to plan and send (how Vitess executes prepared
/// statements). `None` when the text has something the lexer declines, or the count differs.
pub fn render_with_params(sql: &str, params: &[crate::wire::Value]) -> Option<String> {
    let b = sql.as_bytes();
    let mut out = String::with_capacity(sql.len() + params.len() * 8);
    let mut next = params.iter();
    let mut i = 0usize;
    let mut copied = 0usize;
    while i < b.len() {
        match b[i] {
            b'\'' | b'"' => i = skip_string(b, i)?,
            b'`' => i = b[i + 1..].iter().position(|&x| x == b'`')? + i + 2,
            b'#' => return None,
            b'-' if b.get(i + 1) == Some(&b'-') => return None,
            b'/' if b.get(i + 1) == Some(&b'*') => return None,
            b'?' => {
                out.push_str(&sql[copied..i]);
                push_literal(&mut out, next.next()?);
                i += 1;
                copied = i;
            }
            _ => i += 1,
        }
    }
    if next.next().is_some() {
        return None;
    }
    out.push_str(&sql[copied..]);
    Some(out)
}

/// Appends a value as a SQL literal (see `sql::literal` for the escaping rules).
fn push_literal(out: &mut String, v: &crate::wire::Value) {
    use crate::wire::Value;
    match v {
        Value::Null => out.push_str("NULL"),
        Value::Bytes(bytes) => match std::str::from_utf8(bytes) {
            Ok(s) if !s.contains(['\\', '\0']) => {
                out.push('\'');
                for ch in s.chars() {
                    if ch == '\'' {
                        out.push('\'');
                    }
                    out.push(ch);
                }
                out.push('\'');
            }
            Ok(_) => {
                out.push_str("_utf8mb4 X'");
                bytes.iter().for_each(|x| out.push_str(&format!("{x:02X}")));
                out.push('\'');
            }
            Err(_) => {
                out.push_str("X'");
                bytes.iter().for_each(|x| out.push_str(&format!("{x:02X}")));
                out.push('\'');
            }
        },
        other => {
            let mut v = Vec::new();
            other.write_text(&mut v);
            out.push_str(std::str::from_utf8(&v).unwrap_or("NULL"));
        }
    }
}

fn first_word(b: &[u8]) -> Option<String> {
    let start = b
        .iter()
        .position(|c| !c.is_ascii_whitespace() && *c != b'(')?;
    let end = scan_word(b, start);
    (end > start).then(|| String::from_utf8_lossy(&b[start..end]).to_ascii_lowercase())
}

fn scan_word(b: &[u8], mut i: usize) -> usize {
    while i < b.len()
        && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'$' || b[i] >= 0x80)
    {
        i += 1;
    }
    i
}

fn scan_number(b: &[u8], mut i: usize) -> (usize, LiteralKind) {
    let mut kind = LiteralKind::Integer;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    if i < b.len() && b[i] == b'.' {
        kind = LiteralKind::Decimal;
        i += 1;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        let mut j = i + 1;
        if j < b.len() && (b[j] == b'+' || b[j] == b'-') {
            j += 1;
        }
        if j < b.len() && b[j].is_ascii_digit() {
            kind = LiteralKind::Decimal;
            i = j;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
        }
    }
    (i, kind)
}

/// End (exclusive) of the quoted string starting at `i`; `None` if unterminated.
fn skip_string(b: &[u8], i: usize) -> Option<usize> {
    let q = b[i];
    let mut j = i + 1;
    while j < b.len() {
        if b[j] == b'\\' {
            j += 2;
            continue;
        }
        if b[j] == q {
            if b.get(j + 1) == Some(&q) {
                j += 2;
                continue;
            }
            return Some(j + 1);
        }
        j += 1;
    }
    None
}

/// MySQL string-literal escapes.
fn unescape(s: &[u8], quote: u8) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'\\' if i + 1 < s.len() => {
                out.push(match s[i + 1] {
                    b'n' => b'\n',
                    b't' => b'\t',
                    b'r' => b'\r',
                    b'0' => 0,
                    b'b' => 8,
                    b'Z' => 26,
                    other => other,
                });
                i += 2;
            }
            c if c == quote && s.get(i + 1) == Some(&quote) => {
                out.push(quote);
                i += 2;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Value;

    fn key(sql: &str) -> String {
        normalize(sql)
            .map(|n| n.key)
            .unwrap_or_else(|| "<none>".into())
    }

    #[test]
    fn literals_become_placeholders() {
        assert_eq!(
            key("SELECT c FROM sbtest1 WHERE id=42"),
            "select c from sbtest1 where id=?"
        );
        assert_eq!(
            key("select c from sbtest1 where id = 7"),
            "select c from sbtest1 where id = ?"
        );
        assert_eq!(
            key("insert into t(a,b) values (1,'x'),(2.5,\"y\")"),
            "insert into t(a,b) values (?,?),(?,?)"
        );
        assert_eq!(
            key("select * from t order by 2, a limit 10, 5"),
            "select * from t order by 2, a limit ?, ?"
        );
        assert_eq!(
            key("select a from t group by 1 having count(*) > 3"),
            "select a from t group by 1 having count(*) > ?"
        );
        assert_eq!(
            key("select `x 1` from t1 where t1.c = 1e3"),
            "select `x 1` from t1 where t1.c = ?"
        );
        assert_eq!(key("select 3d from t"), "select 3d from t");
    }

    #[test]
    fn declines_what_it_is_not_sure_about() {
        for sql in [
            "select 1 -- c",
            "select /* x */ 1",
            "select x'ff'",
            "select 0x1f",
            "create table t (a int)",
            "set a = 1",
            "select _utf8mb4'a'",
            "select 'unterminated",
        ] {
            assert_eq!(normalize(sql), None, "{sql}");
        }
    }

    #[test]
    fn literal_values_are_unescaped() {
        let sql = r"select * from t where a = 'it''s' and b = 'x\ny' and c = 12";
        let n = normalize(sql).unwrap();
        let vals: Vec<Vec<u8>> = n.literals.iter().map(|l| l.value(sql)).collect();
        assert_eq!(
            vals,
            vec![b"it's".to_vec(), b"x\ny".to_vec(), b"12".to_vec()]
        );
    }

    #[test]
    fn params_render_into_prepared_text() {
        let s = render_with_params(
            "select c from t where id = ? and n = '?' and m = ?",
            &[Value::Int(5), Value::text("o'k")],
        )
        .unwrap();
        assert_eq!(s, "select c from t where id = 5 and n = '?' and m = 'o''k'");
        assert_eq!(render_with_params("select ?", &[]), None);
        assert_eq!(render_with_params("select 1", &[Value::Int(1)]), None);
        assert_eq!(
            render_with_params("select ?", &[Value::text("a\\b")]).unwrap(),
            "select _utf8mb4 X'615C62'"
        );
    }
}

#[cfg(test)]
mod render_regression {
    #[test]
    fn statements_without_placeholders_render_unchanged() {
        let sql = "select 1, -1, 18446744073709551615, 1.5, 1e300, cast(2.5 as float), 'x', NULL, cast('2024-01-02' as date), cast('-12:00:01.5' as time(1)), cast('2024-01-02 03:04:05.678' as datetime(3)), x'00ff', 123456789012345678901234567890";
        assert_eq!(super::render_with_params(sql, &[]).as_deref(), Some(sql));
    }
}
