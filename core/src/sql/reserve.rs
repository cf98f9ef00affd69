//! Which statements leave state in the backend connection that ran them, so the session
//! must keep that connection instead of handing it back to the pool (Vitess's "reserved
//! connections").

/// Markers of connection state, matched case-insensitively outside quotes and comments:
/// temporary tables, named locks, table locks, SQL-level prepared statements,
/// `FOUND_ROWS()` after `SQL_CALC_FOUND_ROWS`.
const MARKERS: &[&[u8]] = &[
    b"temporary",
    b"get_lock",
    b"lock tables",
    b"prepare",
    b"sql_calc_found_rows",
];

/// Does `sql` create state that lives in its backend connection? User variables (`@x`, not
/// `@@system`) count too. Errs on the safe side: a false positive only keeps a connection.
pub fn needs_reserved_connection(sql: &str) -> bool {
    let b = sql.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            q @ (b'\'' | b'"' | b'`') => i = skip_quoted(b, i + 1, q),
            b'-' if b.get(i + 1) == Some(&b'-') => i = skip_line(b, i),
            b'#' => i = skip_line(b, i),
            b'/' if b.get(i + 1) == Some(&b'*') && b.get(i + 2) != Some(&b'!') => {
                i = skip_block(b, i + 2)
            }
            b'@' => {
                if b.get(i + 1) == Some(&b'@') {
                    i += 2;
                    while i < b.len() && (b[i].is_ascii_alphanumeric() || b"_.$".contains(&b[i])) {
                        i += 1;
                    }
                } else {
                    return true;
                }
            }
            c if c.is_ascii_alphabetic() => {
                let at_word_start = i == 0 || !is_word(b[i - 1]);
                if at_word_start && MARKERS.iter().any(|m| starts_with_ci(&b[i..], m)) {
                    return true;
                }
                i += 1;
            }
            _ => i += 1,
        }
    }
    false
}

/// Does `sql` begin with keyword `kw` (any case), after blanks and comments? Cheaper than a
/// parse, for the few statements the gateway must spot on paths that never parse.
pub fn starts_with_keyword(sql: &str, kw: &str) -> bool {
    let b = sql.as_bytes();
    let mut i = 0;
    loop {
        match b.get(i) {
            Some(c) if c.is_ascii_whitespace() => i += 1,
            Some(b'#') => i = skip_line(b, i),
            Some(b'-') if b.get(i + 1) == Some(&b'-') => i = skip_line(b, i),
            Some(b'/') if b.get(i + 1) == Some(&b'*') && b.get(i + 2) != Some(&b'!') => {
                i = skip_block(b, i + 2)
            }
            _ => return starts_with_ci(&b[i..], kw.as_bytes()),
        }
    }
}

pub(crate) fn is_word(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'$'
}

fn starts_with_ci(hay: &[u8], needle: &[u8]) -> bool {
    hay.len() >= needle.len()
        && hay[..needle.len()].eq_ignore_ascii_case(needle)
        && hay.get(needle.len()).is_none_or(|c| !is_word(*c))
}

/// Index after the closing quote (a doubled quote or a backslash escape stays inside).
pub(crate) fn skip_quoted(b: &[u8], mut i: usize, q: u8) -> usize {
    while i < b.len() {
        if b[i] == b'\\' && q != b'`' {
            i += 2;
        } else if b[i] == q {
            if b.get(i + 1) == Some(&q) {
                i += 2;
            } else {
                return i + 1;
            }
        } else {
            i += 1;
        }
    }
    b.len()
}

pub(crate) fn skip_line(b: &[u8], i: usize) -> usize {
    b[i..]
        .iter()
        .position(|c| *c == b'\n')
        .map_or(b.len(), |p| i + p + 1)
}

pub(crate) fn skip_block(b: &[u8], i: usize) -> usize {
    b[i..]
        .windows(2)
        .position(|w| w == b"*/")
        .map_or(b.len(), |p| i + p + 2)
}

#[cfg(test)]
mod tests {
    use super::needs_reserved_connection as reserved;
    use super::starts_with_keyword;

    #[test]
    fn leading_keywords_are_found_past_blanks_and_comments() {
        assert!(starts_with_keyword("KILL 5", "kill"));
        assert!(starts_with_keyword("  /* why */ kill query 5", "kill"));
        assert!(starts_with_keyword("-- note\n# more\nUse `db`", "use"));
        assert!(starts_with_keyword("use", "use"));
        assert!(!starts_with_keyword("killer()", "kill"));
        assert!(!starts_with_keyword("select 'kill'", "kill"));
        assert!(!starts_with_keyword("/*!50000 use x */", "use"));
        // Never slices inside a multi-byte character.
        assert!(!starts_with_keyword("kil\u{e9} 5", "kill"));
        assert!(!starts_with_keyword("", "kill"));
    }

    #[test]
    fn connection_state_is_detected() {
        assert!(reserved("CREATE TEMPORARY TABLE t (a int)"));
        assert!(reserved("select get_lock('x', 1)"));
        assert!(reserved("LOCK TABLES t WRITE"));
        assert!(reserved("set @x = 1"));
        assert!(reserved("select a into @v from t"));
        assert!(reserved("PREPARE s FROM 'select 1'"));
        assert!(reserved("select SQL_CALC_FOUND_ROWS * from t limit 1"));
    }

    #[test]
    fn plain_statements_and_lookalikes_are_not() {
        assert!(!reserved("select * from customer where customer_id = 1"));
        assert!(!reserved("select @@version, @@session.autocommit"));
        assert!(!reserved("insert into customer (email) values ('a@b.com')"));
        assert!(!reserved("select 'get_lock(' , \"@x\" from t -- @y\n"));
        assert!(!reserved("select temporary_total from t /* @x */"));
        assert!(!reserved("select `@weird` from t"));
        assert!(!reserved("update t set s = 'it''s @ home'"));
    }
}
