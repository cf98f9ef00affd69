//! `LAST_INSERT_ID()` inside a statement that goes to a shard: the shard's own session never
//! generated the id the client means, so the gateway writes its session's value into the text
//! before planning (Vitess binds `:__lastInsertId`). As a literal it is normalized into a bind
//! value like any other, so the plan is cached once and a vindex predicate on it still routes
//! to one shard (`where id = last_insert_id()`).

use super::reserve::{is_word, skip_block, skip_line, skip_quoted};

const NAME: &[u8] = b"last_insert_id";

/// `sql` with each `LAST_INSERT_ID()` (no argument) replaced by `value`; `None` when there is
/// none, or when the statement is a SELECT without FROM (the gateway answers that one itself).
/// A call that is a whole item of the top-level select list keeps its column name:
/// `11 AS `last_insert_id()``.
pub fn substitute_last_insert_id(sql: &str, value: u64) -> Option<String> {
    let b = sql.as_bytes();
    let mut calls: Vec<(usize, usize, bool)> = Vec::new();
    let mut words: Vec<String> = Vec::new();
    let mut depth = 0usize;
    let mut in_select_list = false;
    // The last significant token at depth 0 before the current position: `select`, `,`, …
    let mut prev_sig: Vec<u8> = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            q @ (b'\'' | b'"' | b'`') => {
                i = skip_quoted(b, i + 1, q);
                prev_sig = b"x".to_vec();
            }
            b'-' if b.get(i + 1) == Some(&b'-') => i = skip_line(b, i),
            b'#' => i = skip_line(b, i),
            b'/' if b.get(i + 1) == Some(&b'*') => i = skip_block(b, i + 2),
            b'(' => {
                depth += 1;
                i += 1;
                prev_sig = b"(".to_vec();
            }
            b')' => {
                depth = depth.saturating_sub(1);
                i += 1;
                prev_sig = b")".to_vec();
            }
            c if c.is_ascii_whitespace() => i += 1,
            c if is_word(c) || c == b'@' || c == b'.' => {
                let start = i;
                while i < b.len() && (is_word(b[i]) || b[i] == b'@' || b[i] == b'.') {
                    i += 1;
                }
                let word = sql[start..i].to_ascii_lowercase();
                let at_start = start == 0 || !matches!(b[start - 1], b'.' | b'@');
                if at_start && word.as_bytes() == NAME {
                    if let Some(end) = empty_call(b, i) {
                        let item_start = depth == 0
                            && in_select_list
                            && (prev_sig == b"select"
                                || prev_sig == b","
                                || prev_sig == b"distinct");
                        let item_end = depth == 0 && item_ends(b, end);
                        calls.push((start, end, item_start && item_end));
                        i = end;
                        prev_sig = b")".to_vec();
                        continue;
                    }
                }
                if depth == 0 {
                    match word.as_str() {
                        "select" => in_select_list = true,
                        "from" => in_select_list = false,
                        _ => {}
                    }
                }
                if words.len() < 8 {
                    words.push(word.clone());
                }
                prev_sig = word.into_bytes();
            }
            c => {
                i += 1;
                prev_sig = vec![c];
            }
        }
    }
    if calls.is_empty() {
        return None;
    }
    let tableless_select = words.first().is_some_and(|w| w == "select") && !has_from(sql);
    if tableless_select {
        return None;
    }
    let mut out = String::with_capacity(sql.len() + 32);
    let mut last = 0;
    for (start, end, whole_item) in calls {
        out.push_str(&sql[last..start]);
        out.push_str(&value.to_string());
        if whole_item {
            out.push_str(" AS `");
            out.push_str(&sql[start..end].replace('`', "``"));
            out.push('`');
        }
        last = end;
    }
    out.push_str(&sql[last..]);
    Some(out)
}

/// After the function name at `i`: `(` `)` with only whitespace around; the index after `)`.
fn empty_call(b: &[u8], mut i: usize) -> Option<usize> {
    while i < b.len() && b[i].is_ascii_whitespace() {
        i += 1;
    }
    if b.get(i) != Some(&b'(') {
        return None;
    }
    i += 1;
    while i < b.len() && b[i].is_ascii_whitespace() {
        i += 1;
    }
    (b.get(i) == Some(&b')')).then_some(i + 1)
}

/// Does a select item end at `i` (a comma, FROM, the end of the statement)?
fn item_ends(b: &[u8], mut i: usize) -> bool {
    while i < b.len() && b[i].is_ascii_whitespace() {
        i += 1;
    }
    match b.get(i) {
        None | Some(b',') | Some(b';') => true,
        Some(_) => {
            b.len() >= i + 4
                && b[i..i + 4].eq_ignore_ascii_case(b"from")
                && b.get(i + 4).is_none_or(|c| !is_word(*c))
        }
    }
}

/// Does the statement have a FROM keyword anywhere outside quotes?
fn has_from(sql: &str) -> bool {
    let b = sql.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            q @ (b'\'' | b'"' | b'`') => i = skip_quoted(b, i + 1, q),
            c if is_word(c) => {
                let start = i;
                while i < b.len() && is_word(b[i]) {
                    i += 1;
                }
                if b[start..i].eq_ignore_ascii_case(b"from") {
                    return true;
                }
            }
            _ => i += 1,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::substitute_last_insert_id as sub;

    #[test]
    fn routed_statements_get_the_session_value() {
        assert_eq!(
            sub("select * from t where id = last_insert_id()", 11).as_deref(),
            Some("select * from t where id = 11")
        );
        assert_eq!(
            sub("select LAST_INSERT_ID(), tier from c where id = 1", 7).as_deref(),
            Some("select 7 AS `LAST_INSERT_ID()`, tier from c where id = 1")
        );
        assert_eq!(
            sub("update t set x = last_insert_id ( ) + 1 where id = 3", 5).as_deref(),
            Some("update t set x = 5 + 1 where id = 3")
        );
        assert_eq!(
            sub("insert into t (a) values (last_insert_id())", 9).as_deref(),
            Some("insert into t (a) values (9)")
        );
    }

    #[test]
    fn left_alone() {
        // the gateway answers these itself
        assert_eq!(sub("select last_insert_id()", 3), None);
        // an argument sets the value: the shard's business
        assert_eq!(sub("select last_insert_id(5) from t", 3), None);
        assert_eq!(sub("select 'last_insert_id()' from t", 3), None);
        assert_eq!(sub("select `last_insert_id()` from t", 3), None);
        assert_eq!(sub("select x.last_insert_id() from t", 3), None);
        assert_eq!(sub("select * from t", 3), None);
    }
}
