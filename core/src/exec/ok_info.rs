//! The info string of an OK made up of several shards' OKs. MySQL puts a statement's counts
//! there ("Records: 4  Duplicates: 0  Warnings: 0" after a multi-row INSERT, "Rows matched: 2
//! Changed: 1  Warnings: 0" after an UPDATE) and clients read them: Node's mysql2 takes
//! `changedRows` from it, PHP's `mysqli_info` returns it. A statement split over shards gets the
//! sum of its parts' counts, as one server would have reported them.

/// The summed info of a statement's parts, each given as its OK's info and affected rows.
/// `rows_insert`: the parts are the rows of one INSERT split over shards — several rows, so
/// MySQL reports records even when each shard got a single row and reported none. Empty when
/// no part reported counts, or when the parts' infos do not share one shape (then no sum would
/// be true).
pub fn sum(parts: &[(String, u64)], rows_insert: bool) -> String {
    let mut total: Option<Vec<(&str, u64)>> =
        rows_insert.then(|| vec![("Records", 0), ("Duplicates", 0), ("Warnings", 0)]);
    let mut empty_affected = Vec::new();
    for (info, affected) in parts {
        if info.is_empty() {
            empty_affected.push(*affected);
            continue;
        }
        let Some(counts) = parse(info) else {
            return String::new();
        };
        match &mut total {
            None => total = Some(counts),
            Some(t) => {
                if t.len() != counts.len() || t.iter().zip(&counts).any(|(a, b)| a.0 != b.0) {
                    return String::new();
                }
                for (a, b) in t.iter_mut().zip(&counts) {
                    a.1 += b.1;
                }
            }
        }
    }
    let Some(mut total) = total else {
        return String::new();
    };
    // A part that received one row of a multi-row INSERT answers without counts (MySQL
    // reports none for a single VALUES row): it is still one record, and a duplicate when it
    // did not insert exactly one row (IGNOREd: 0 affected; ON DUPLICATE KEY UPDATE: 0 or 2).
    if total.first().is_some_and(|c| c.0 == "Records") {
        for affected in empty_affected {
            total[0].1 += 1;
            if let Some(d) = total.iter_mut().find(|c| c.0 == "Duplicates") {
                d.1 += u64::from(affected != 1);
            }
        }
    }
    let mut out = String::new();
    for (i, (label, n)) in total.iter().enumerate() {
        if i > 0 {
            out.push_str("  ");
        }
        out.push_str(label);
        out.push_str(": ");
        out.push_str(&n.to_string());
    }
    out
}

/// `Label: N` pairs separated by two spaces, as MySQL formats them; `None` for anything else.
fn parse(info: &str) -> Option<Vec<(&str, u64)>> {
    info.split("  ")
        .map(|pair| {
            let (label, n) = pair.split_once(": ")?;
            Some((label, n.trim().parse().ok()?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(p: &[(&str, u64)]) -> Vec<(String, u64)> {
        p.iter().map(|(s, n)| (s.to_string(), *n)).collect()
    }

    #[test]
    fn update_counts_add_up() {
        let p = parts(&[
            ("Rows matched: 2  Changed: 1  Warnings: 0", 1),
            ("Rows matched: 3  Changed: 3  Warnings: 1", 3),
        ]);
        assert_eq!(sum(&p, false), "Rows matched: 5  Changed: 4  Warnings: 1");
    }

    #[test]
    fn a_single_row_part_of_an_insert_counts_as_one_record() {
        let p = parts(&[
            ("Records: 3  Duplicates: 1  Warnings: 0", 4),
            ("", 1),
            ("", 2),
        ]);
        assert_eq!(sum(&p, true), "Records: 5  Duplicates: 2  Warnings: 0");
        // Two rows on two shards: neither reports counts, the statement had two records.
        let p = parts(&[("", 1), ("", 0)]);
        assert_eq!(sum(&p, true), "Records: 2  Duplicates: 1  Warnings: 0");
    }

    #[test]
    fn no_counts_or_mixed_shapes_give_no_info() {
        assert_eq!(sum(&parts(&[("", 1), ("", 1)]), false), "");
        assert_eq!(sum(&[], false), "");
        let mixed = parts(&[
            ("Rows matched: 2  Changed: 1  Warnings: 0", 1),
            ("Records: 2  Duplicates: 0  Warnings: 0", 2),
        ]);
        assert_eq!(sum(&mixed, false), "");
        let odd = parts(&[
            ("Rows matched: 2  Changed: 1  Warnings: 0", 1),
            ("hello", 0),
        ]);
        assert_eq!(sum(&odd, false), "");
    }
}
