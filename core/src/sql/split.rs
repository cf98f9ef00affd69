//! Splits a multi-statement COM_QUERY into statements at top-level semicolons.
//!
//! MySQL executes a batch statement by statement, so a syntax error in statement N+1 must
//! surface only after statement N's result. We therefore split first and parse each piece
//! separately. Semicolons inside strings, identifiers and comments are found with sqlparser's
//! tokenizer, never with a regex on the raw text. A batch without `;` skips tokenizing.

use sqlparser::dialect::MySqlDialect;
use sqlparser::tokenizer::{Token, Tokenizer};

/// The statements of a batch, trimmed, empty pieces dropped. Text that cannot be tokenized
/// (an unterminated string, say) is returned whole: parsing it then reports the 1064.
pub fn split_statements(sql: &str) -> Vec<&str> {
    let trimmed = sql.trim_matches(|c: char| c.is_whitespace() || c == ';');
    if !trimmed.contains(';') {
        return if trimmed.is_empty() {
            Vec::new()
        } else {
            vec![trimmed]
        };
    }
    let dialect = MySqlDialect {};
    let Ok(tokens) = Tokenizer::new(&dialect, sql).tokenize_with_location() else {
        return vec![trimmed];
    };
    let mut out = Vec::new();
    let mut start = 0usize;
    for t in &tokens {
        if t.token == Token::SemiColon {
            let loc = t.span.start;
            // The tokenizer's positions are wrong inside MySQL's `/*! … */` comments: trust a
            // position only if a `;` really is there, else keep the batch whole (the parser
            // then answers it). Never slice on an unchecked offset.
            match super::byte_offset(sql, loc.line, loc.column) {
                Some(at) if at >= start && sql.as_bytes().get(at) == Some(&b';') => {
                    push_piece(&mut out, &sql[start..at]);
                    start = at + 1;
                }
                _ => return vec![trimmed],
            }
        }
    }
    push_piece(&mut out, &sql[start.min(sql.len())..]);
    out
}

fn push_piece<'a>(out: &mut Vec<&'a str>, piece: &'a str) {
    let p = piece.trim();
    if !p.is_empty() {
        out.push(p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_at_top_level_semicolons_only() {
        assert_eq!(
            split_statements("select 1; select 2"),
            vec!["select 1", "select 2"]
        );
        assert_eq!(
            split_statements("select 'a;b'; select `x;y` from t"),
            vec!["select 'a;b'", "select `x;y` from t"]
        );
        assert_eq!(
            split_statements("select 1 /* ; */; select \"q;\""),
            vec!["select 1 /* ; */", "select \"q;\""]
        );
        assert_eq!(split_statements("select 1;"), vec!["select 1"]);
        assert_eq!(split_statements("  ;; "), Vec::<&str>::new());
        assert_eq!(
            split_statements("update t set a=1;\n  selct oops"),
            vec!["update t set a=1", "selct oops"]
        );
        assert_eq!(
            split_statements("select 'é;'; select 2"),
            vec!["select 'é;'", "select 2"]
        );
    }

    #[test]
    fn executable_comments_never_panic() {
        // Found by the sql_text fuzz target: positions inside /*! */ are not byte offsets.
        for sql in [
            "select 1 /*!ééé;*/",
            "/*!ééé;*/",
            "/*!é\r*;*/",
            "select 1 /*!; */; select 2",
        ] {
            let pieces = split_statements(sql);
            assert!(!pieces.is_empty(), "{sql}");
        }
    }

    #[test]
    fn untokenizable_text_stays_whole() {
        assert_eq!(
            split_statements("select 'abc; select 2"),
            vec!["select 'abc; select 2"]
        );
    }
}
