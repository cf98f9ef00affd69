//! SQL `LIKE` matching (`%`, `_`, an escape character) over characters. Callers fold case
//! first where the collation asks for it: the engine with its collation key, the gateway
//! (`SHOW STATUS LIKE ...` answered locally) with ASCII lower case.

#[derive(Clone, Copy, PartialEq)]
enum Tok {
    Lit(char),
    One,
    Any,
}

/// Does `text` match `pattern`? Both are compared character by character, as given.
pub fn like_chars(text: &[char], pattern: &[char], escape: char) -> bool {
    let mut toks = Vec::with_capacity(pattern.len());
    let mut i = 0;
    while i < pattern.len() {
        let c = pattern[i];
        if c == escape && i + 1 < pattern.len() {
            toks.push(Tok::Lit(pattern[i + 1]));
            i += 2;
            continue;
        }
        toks.push(match c {
            '%' => Tok::Any,
            '_' => Tok::One,
            c => Tok::Lit(c),
        });
        i += 1;
    }
    // Iterative wildcard matching, backtracking to the last '%'.
    let (mut ti, mut pi) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < text.len() {
        if pi < toks.len() {
            match toks[pi] {
                Tok::Any => {
                    star = Some((pi, ti));
                    pi += 1;
                    continue;
                }
                Tok::One => {
                    ti += 1;
                    pi += 1;
                    continue;
                }
                Tok::Lit(c) if c == text[ti] => {
                    ti += 1;
                    pi += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some((sp, st)) => {
                pi = sp + 1;
                ti = st + 1;
                star = Some((sp, st + 1));
            }
            None => return false,
        }
    }
    toks[pi..].iter().all(|t| *t == Tok::Any)
}

/// `LIKE` with the default escape `\` and ASCII case folding (names of variables).
pub fn like_ascii_ci(text: &str, pattern: &str) -> bool {
    let fold = |s: &str| {
        s.chars()
            .map(|c| c.to_ascii_lowercase())
            .collect::<Vec<_>>()
    };
    like_chars(&fold(text), &fold(pattern), '\\')
}

#[cfg(test)]
mod tests {
    use super::like_ascii_ci;

    #[test]
    fn wildcards_escape_and_case() {
        assert!(like_ascii_ci("Ssl_cipher", "ssl%"));
        assert!(like_ascii_ci("Ssl_cipher", "SSL_CIPHER"));
        assert!(like_ascii_ci("Ssl_cipher", "Ssl\\_c%r"));
        assert!(!like_ascii_ci("Sslxcipher", "Ssl\\_cipher"));
        assert!(like_ascii_ci("Ssl_version", "%_version"));
        assert!(like_ascii_ci("abc", "a_c"));
        assert!(!like_ascii_ci("abcd", "a_c"));
        assert!(like_ascii_ci("", "%"));
        assert!(!like_ascii_ci("", "_"));
        assert!(like_ascii_ci("aXbXc", "%X%c"));
    }
}
