//! Key ranges and shard resolution, exactly as Vitess.
//!
//! A shard of a sharded keyspace is named after the half-open range of keyspace ids it holds:
//! `-80` is `[min, 0x80)`, `80-` is `[0x80, max)`, `40-80` is `[0x40, 0x80)`. An empty bound is
//! unbounded. A keyspace id belongs to a range when `start <= ksid < end`, compared as bytes
//! after trailing zero bytes are stripped, so `80` and `8000` name the same bound. Names
//! without a `-` (`0`, the usual unsharded shard name) and `-` itself are the full range.

use std::cmp::Ordering;
use std::fmt;

/// A half-open range of keyspace ids. An empty `start` or `end` is unbounded.
///
/// The bounds are kept as written (so `8000-` prints back as `8000-`); every comparison
/// ignores trailing zero bytes, so `KeyRange::parse("80-")` and `KeyRange::parse("8000-")`
/// hold the same keyspace ids and compare equal with [`KeyRange::same_range`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct KeyRange {
    pub start: Vec<u8>,
    pub end: Vec<u8>,
}

/// Why a shard name, sharding spec or shard set was rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRangeError {
    pub message: String,
}

impl KeyRangeError {
    fn new(message: impl Into<String>) -> Self {
        KeyRangeError {
            message: message.into(),
        }
    }
}

impl fmt::Display for KeyRangeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for KeyRangeError {}

/// Strips trailing zero bytes: `80 00` -> `80`, `00` -> ``.
fn strip(b: &[u8]) -> &[u8] {
    let mut n = b.len();
    while n > 0 && b[n - 1] == 0 {
        n -= 1;
    }
    &b[..n]
}

/// Compares two keyspace ids / bounds as Vitess does: as if the shorter one were padded with
/// zero bytes (equivalently: bytewise after stripping trailing zeros).
pub fn key_compare(a: &[u8], b: &[u8]) -> Ordering {
    strip(a).cmp(strip(b))
}

fn decode_hex(s: &str) -> Result<Vec<u8>, KeyRangeError> {
    let b = s.as_bytes();
    if b.len() & 1 == 1 {
        return Err(KeyRangeError::new(format!(
            "invalid hex key {s:?}: odd number of digits"
        )));
    }
    let digit = |c: u8| -> Result<u8, KeyRangeError> {
        match c {
            b'0'..=b'9' => Ok(c - b'0'),
            b'a'..=b'f' => Ok(c - b'a' + 10),
            b'A'..=b'F' => Ok(c - b'A' + 10),
            _ => Err(KeyRangeError::new(format!(
                "invalid hex key {s:?}: not a hex digit"
            ))),
        }
    };
    b.chunks(2)
        .map(|p| Ok(digit(p[0])? << 4 | digit(p[1])?))
        .collect()
}

/// Lowercase hex of `b`.
pub fn hex(b: &[u8]) -> String {
    const D: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len() * 2);
    for &x in b {
        s.push(D[(x >> 4) as usize] as char);
        s.push(D[(x & 15) as usize] as char);
    }
    s
}

/// Parses a hex keyspace id as written in `ks[deadbeef]` targets.
pub fn parse_keyspace_id(s: &str) -> Result<Vec<u8>, KeyRangeError> {
    decode_hex(s)
}

impl KeyRange {
    /// The full range `-`.
    pub fn full() -> KeyRange {
        KeyRange::default()
    }

    /// Builds a range from its two bounds (empty = unbounded); rejects `start >= end`.
    pub fn new(start: Vec<u8>, end: Vec<u8>) -> Result<KeyRange, KeyRangeError> {
        let kr = KeyRange { start, end };
        if !kr.end.is_empty() && key_compare(&kr.start, &kr.end) != Ordering::Less {
            return Err(KeyRangeError::new(format!(
                "key range {kr}: start must be below end"
            )));
        }
        Ok(kr)
    }

    /// Parses a shard name: `-80`, `80-`, `40-80`, `-` (full range). A name without a `-`
    /// (`0`, `""`, or any other unsharded shard name) is the full range, as in Vitess.
    pub fn parse(name: &str) -> Result<KeyRange, KeyRangeError> {
        let Some((s, e)) = name.split_once('-') else {
            return Ok(KeyRange::full());
        };
        if e.contains('-') {
            return Err(KeyRangeError::new(format!(
                "invalid shard name {name:?}: more than one '-'"
            )));
        }
        let start = decode_hex(s)
            .map_err(|err| KeyRangeError::new(format!("invalid shard name {name:?}: {err}")))?;
        let end = decode_hex(e)
            .map_err(|err| KeyRangeError::new(format!("invalid shard name {name:?}: {err}")))?;
        KeyRange::new(start, end)
            .map_err(|_| KeyRangeError::new(format!("invalid shard name {name:?}: out of order")))
    }

    /// True when the range is the whole keyspace id space.
    pub fn is_full(&self) -> bool {
        strip(&self.start).is_empty() && self.end.is_empty()
    }

    /// `start <= ksid < end` with trailing zero bytes ignored.
    pub fn contains(&self, ksid: &[u8]) -> bool {
        key_compare(&self.start, ksid) != Ordering::Greater
            && (self.end.is_empty() || key_compare(ksid, &self.end) == Ordering::Less)
    }

    /// True when both ranges hold the same keyspace ids (`80-` and `8000-`).
    pub fn same_range(&self, other: &KeyRange) -> bool {
        key_compare(&self.start, &other.start) == Ordering::Equal
            && self.end.is_empty() == other.end.is_empty()
            && key_compare(&self.end, &other.end) == Ordering::Equal
    }

    /// True when the two ranges share at least one keyspace id.
    pub fn intersects(&self, other: &KeyRange) -> bool {
        let a_before_b_end =
            other.end.is_empty() || key_compare(&self.start, &other.end) == Ordering::Less;
        let b_before_a_end =
            self.end.is_empty() || key_compare(&other.start, &self.end) == Ordering::Less;
        a_before_b_end && b_before_a_end
    }

    /// The Vitess shard name, e.g. `-80`, `40-80`, `-`.
    pub fn name(&self) -> String {
        format!("{}-{}", hex(&self.start), hex(&self.end))
    }
}

impl fmt::Display for KeyRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", hex(&self.start), hex(&self.end))
    }
}

/// Parses the Vitess sharding shorthand `-40-80-c0-` into consecutive ranges
/// (`-40`, `40-80`, `80-c0`, `c0-`). `-` alone is one full range. Bounds must increase.
pub fn parse_shard_spec(spec: &str) -> Result<Vec<KeyRange>, KeyRangeError> {
    let parts: Vec<&str> = spec.split('-').collect();
    if parts.len() < 2 {
        return Err(KeyRangeError::new(format!(
            "malformed spec {spec:?}: doesn't define a range"
        )));
    }
    let mut out = Vec::with_capacity(parts.len() - 1);
    let mut prev = decode_hex(parts[0])
        .map_err(|e| KeyRangeError::new(format!("malformed spec {spec:?}: {e}")))?;
    for (i, p) in parts[1..].iter().enumerate() {
        let last = i == parts.len() - 2;
        if p.is_empty() && !last {
            return Err(KeyRangeError::new(format!(
                "malformed spec {spec:?}: MinKey/MaxKey cannot be in the middle of the spec"
            )));
        }
        let end = decode_hex(p)
            .map_err(|e| KeyRangeError::new(format!("malformed spec {spec:?}: {e}")))?;
        let kr = KeyRange::new(prev, end.clone()).map_err(|_| {
            KeyRangeError::new(format!(
                "malformed spec {spec:?}: shard limits should be in order"
            ))
        })?;
        out.push(kr);
        prev = end;
    }
    Ok(out)
}

/// Checks that `ranges` (any order) cover the whole keyspace id space with no gap and no
/// overlap. Returns every problem found.
pub fn check_full_coverage(ranges: &[KeyRange]) -> Vec<KeyRangeError> {
    let mut errs = Vec::new();
    if ranges.is_empty() {
        errs.push(KeyRangeError::new("no shards"));
        return errs;
    }
    let mut sorted: Vec<&KeyRange> = ranges.iter().collect();
    sorted.sort_by(|a, b| key_compare(&a.start, &b.start));
    if !strip(&sorted[0].start).is_empty() {
        errs.push(KeyRangeError::new(format!(
            "gap: no shard covers -{}",
            hex(&sorted[0].start)
        )));
    }
    for w in sorted.windows(2) {
        let (a, b) = (w[0], w[1]);
        if a.end.is_empty() {
            errs.push(KeyRangeError::new(format!("shards {a} and {b} overlap")));
            continue;
        }
        match key_compare(&a.end, &b.start) {
            Ordering::Equal => {}
            Ordering::Less => errs.push(KeyRangeError::new(format!(
                "gap: no shard covers {}-{}",
                hex(&a.end),
                hex(&b.start)
            ))),
            Ordering::Greater => {
                errs.push(KeyRangeError::new(format!("shards {a} and {b} overlap")))
            }
        }
    }
    let last = sorted[sorted.len() - 1];
    if !last.end.is_empty() {
        errs.push(KeyRangeError::new(format!(
            "gap: no shard covers {}-",
            hex(&last.end)
        )));
    }
    errs
}

/// One shard of a keyspace: its name as configured and its key range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shard {
    pub name: String,
    pub range: KeyRange,
}

/// The shards of one keyspace, sorted by start, non-overlapping, for binary search.
/// Shard indexes (`usize`) are positions in this sorted order, which is also the fixed
/// order in which results are merged and transactions are committed.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ShardMap {
    shards: Vec<Shard>,
}

impl ShardMap {
    /// Builds a map from shard names (`-80`, `80-`, `0`, ...). Rejects unparsable names,
    /// duplicates and overlaps; gaps are allowed here (see [`ShardMap::check_full_coverage`]).
    pub fn from_names<S: AsRef<str>>(names: &[S]) -> Result<ShardMap, KeyRangeError> {
        let shards = names
            .iter()
            .map(|n| {
                Ok(Shard {
                    name: n.as_ref().to_string(),
                    range: KeyRange::parse(n.as_ref())?,
                })
            })
            .collect::<Result<Vec<_>, KeyRangeError>>()?;
        ShardMap::new(shards)
    }

    /// Builds a map from a Vitess spec such as `-40-80-c0-`; shards are named canonically.
    pub fn from_spec(spec: &str) -> Result<ShardMap, KeyRangeError> {
        let shards = parse_shard_spec(spec)?
            .into_iter()
            .map(|r| Shard {
                name: r.name(),
                range: r,
            })
            .collect();
        ShardMap::new(shards)
    }

    /// Sorts by start and rejects overlapping ranges.
    pub fn new(mut shards: Vec<Shard>) -> Result<ShardMap, KeyRangeError> {
        shards.sort_by(|a, b| {
            key_compare(&a.range.start, &b.range.start).then_with(|| a.name.cmp(&b.name))
        });
        for w in shards.windows(2) {
            if w[0].range.intersects(&w[1].range) {
                return Err(KeyRangeError::new(format!(
                    "shards {} and {} overlap",
                    w[0].name, w[1].name
                )));
            }
        }
        Ok(ShardMap { shards })
    }

    /// Every gap (overlaps cannot exist in a built map).
    pub fn check_full_coverage(&self) -> Vec<KeyRangeError> {
        let ranges: Vec<KeyRange> = self.shards.iter().map(|s| s.range.clone()).collect();
        check_full_coverage(&ranges)
    }

    pub fn shards(&self) -> &[Shard] {
        &self.shards
    }

    pub fn len(&self) -> usize {
        self.shards.len()
    }

    pub fn is_empty(&self) -> bool {
        self.shards.is_empty()
    }

    pub fn get(&self, idx: usize) -> Option<&Shard> {
        self.shards.get(idx)
    }

    /// The index of the shard named `name` (exact name, or the same key range: `80-` finds
    /// a shard configured as `8000-`).
    pub fn index_of(&self, name: &str) -> Option<usize> {
        if let Some(i) = self.shards.iter().position(|s| s.name == name) {
            return Some(i);
        }
        let kr = KeyRange::parse(name).ok()?;
        if !name.contains('-') {
            return None;
        }
        self.shards.iter().position(|s| s.range.same_range(&kr))
    }

    /// The shard holding `ksid`, by binary search over the sorted starts.
    pub fn shard_for(&self, ksid: &[u8]) -> Option<usize> {
        // Number of shards whose start <= ksid; the candidate is the last of those.
        let n = self
            .shards
            .partition_point(|s| key_compare(&s.range.start, ksid) != Ordering::Greater);
        if n == 0 {
            return None;
        }
        let i = n - 1;
        self.shards[i].range.contains(ksid).then_some(i)
    }

    /// The shards intersecting `range`, in order.
    pub fn shards_for_range(&self, range: &KeyRange) -> Vec<usize> {
        // First shard whose end is after range.start; then walk while shard.start < range.end.
        let first = self.shards.partition_point(|s| {
            !s.range.end.is_empty() && key_compare(&s.range.end, &range.start) != Ordering::Greater
        });
        let mut out = Vec::new();
        for (i, s) in self.shards.iter().enumerate().skip(first) {
            if !range.end.is_empty() && key_compare(&s.range.start, &range.end) != Ordering::Less {
                break;
            }
            if s.range.intersects(range) {
                out.push(i);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn kr(s: &str) -> KeyRange {
        KeyRange::parse(s).unwrap()
    }

    #[test]
    fn parse_names() {
        assert_eq!(
            kr("-80"),
            KeyRange {
                start: vec![],
                end: vec![0x80]
            }
        );
        assert_eq!(
            kr("80-"),
            KeyRange {
                start: vec![0x80],
                end: vec![]
            }
        );
        assert_eq!(
            kr("40-80"),
            KeyRange {
                start: vec![0x40],
                end: vec![0x80]
            }
        );
        assert_eq!(kr("C0-"), kr("c0-"));
        for full in ["-", "", "0"] {
            assert!(kr(full).is_full(), "{full:?}");
            assert!(kr(full).contains(&[]));
            assert!(kr(full).contains(&[0xff; 8]));
        }
        assert_eq!(kr("-80").to_string(), "-80");
        assert_eq!(kr("40-80").name(), "40-80");
        assert_eq!(kr("-").to_string(), "-");
        assert_eq!(kr("8000-").to_string(), "8000-");
    }

    #[test]
    fn parse_rejects() {
        for bad in [
            "80-40", "80-80", "80-8000", "8-", "-8", "zz-", "-40-80", "40--", "x-y",
        ] {
            assert!(KeyRange::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn contains_strips_trailing_zeros() {
        let lo = kr("-80");
        let hi = kr("80-");
        assert!(lo.contains(&[0x7f, 0xff]));
        assert!(!lo.contains(&[0x80]));
        assert!(!lo.contains(&[0x80, 0x00]));
        assert!(hi.contains(&[0x80]));
        assert!(hi.contains(&[0x80, 0x00, 0x00]));
        assert!(kr("-8000").same_range(&lo));
        assert!(!kr("-8000").contains(&[0x80]));
        assert!(kr("4000-8000").contains(&[0x40]));
        assert!(kr("40-80").contains(&[0x40, 0, 0, 0, 0, 0, 0, 0]));
        assert!(!kr("40-80").contains(&[0x3f, 0xff]));
        assert!(kr("-80").contains(&[]));
    }

    #[test]
    fn spec_shorthand() {
        let r = parse_shard_spec("-40-80-c0-").unwrap();
        let names: Vec<String> = r.iter().map(|k| k.name()).collect();
        assert_eq!(names, ["-40", "40-80", "80-c0", "c0-"]);
        assert_eq!(parse_shard_spec("-").unwrap(), vec![KeyRange::full()]);
        assert_eq!(
            parse_shard_spec("-80-").unwrap(),
            vec![kr("-80"), kr("80-")]
        );
        assert!(parse_shard_spec("").is_err());
        assert!(parse_shard_spec("80").is_err());
        assert!(parse_shard_spec("-80-40-").is_err());
        assert!(parse_shard_spec("-80--").is_err());
        assert!(parse_shard_spec("-80-80-").is_err());
        assert!(parse_shard_spec("-8g-").is_err());
        assert!(check_full_coverage(&r).is_empty());
    }

    #[test]
    fn coverage() {
        assert!(check_full_coverage(&[kr("80-"), kr("-80")]).is_empty());
        assert!(check_full_coverage(&[kr("0")]).is_empty());
        assert!(check_full_coverage(&[kr("-8000"), kr("80-")]).is_empty());
        let msgs = |v: Vec<KeyRangeError>| v.into_iter().map(|e| e.message).collect::<Vec<_>>();
        assert_eq!(
            msgs(check_full_coverage(&[kr("-40"), kr("80-")])),
            ["gap: no shard covers 40-80"]
        );
        assert_eq!(
            msgs(check_full_coverage(&[kr("40-80")])),
            ["gap: no shard covers -40", "gap: no shard covers 80-"]
        );
        assert_eq!(
            msgs(check_full_coverage(&[kr("-80"), kr("40-")])),
            ["shards -80 and 40- overlap"]
        );
        assert_eq!(msgs(check_full_coverage(&[])), ["no shards"]);
    }

    #[test]
    fn shard_map() {
        let m = ShardMap::from_names(&["80-", "-40", "40-80"]).unwrap();
        let names: Vec<&str> = m.shards().iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["-40", "40-80", "80-"]);
        assert_eq!(m.shard_for(&[0x00]), Some(0));
        assert_eq!(m.shard_for(&[]), Some(0));
        assert_eq!(m.shard_for(&[0x40]), Some(1));
        assert_eq!(m.shard_for(&[0x7f, 0xff]), Some(1));
        assert_eq!(m.shard_for(&[0x80, 0]), Some(2));
        assert_eq!(m.shard_for(&[0xff; 8]), Some(2));
        assert_eq!(m.index_of("40-80"), Some(1));
        assert_eq!(m.index_of("4000-80"), Some(1));
        assert_eq!(m.index_of("0"), None);
        assert_eq!(m.shards_for_range(&kr("-")), vec![0, 1, 2]);
        assert_eq!(m.shards_for_range(&kr("40-80")), vec![1]);
        assert_eq!(m.shards_for_range(&kr("30-50")), vec![0, 1]);
        assert_eq!(m.shards_for_range(&kr("80-")), vec![2]);
        assert_eq!(m.shards_for_range(&kr("-40")), vec![0]);
        assert!(m.check_full_coverage().is_empty());
        assert!(ShardMap::from_names(&["-80", "40-"]).is_err());
        let gap = ShardMap::from_names(&["-40", "80-"]).unwrap();
        assert_eq!(gap.shard_for(&[0x50]), None);
        assert_eq!(gap.check_full_coverage().len(), 1);
        let un = ShardMap::from_names(&["0"]).unwrap();
        assert_eq!(un.shard_for(&[0x12, 0x34]), Some(0));
        assert_eq!(un.index_of("0"), Some(0));
        let s = ShardMap::from_spec("-40-80-c0-").unwrap();
        assert_eq!(s.len(), 4);
        assert_eq!(s.shard_for(&[0xc0]), Some(3));
    }

    /// A random valid spec: sorted distinct non-zero-stripped boundaries.
    fn spec_strategy() -> impl Strategy<Value = String> {
        proptest::collection::btree_set(
            proptest::collection::vec(any::<u8>(), 1..3)
                .prop_filter("nonzero", |v| v.last() != Some(&0)),
            0..8,
        )
        .prop_map(|set| {
            let mut s = String::from("-");
            for b in set {
                s.push_str(&hex(&b));
                s.push('-');
            }
            s
        })
    }

    proptest! {
        #[test]
        fn every_ksid_in_exactly_one_shard(spec in spec_strategy(), ksid in proptest::collection::vec(any::<u8>(), 0..10)) {
            let ranges = parse_shard_spec(&spec).unwrap();
            prop_assert!(check_full_coverage(&ranges).is_empty());
            let n = ranges.iter().filter(|r| r.contains(&ksid)).count();
            prop_assert_eq!(n, 1);
            let m = ShardMap::from_spec(&spec).unwrap();
            let i = m.shard_for(&ksid).unwrap();
            prop_assert!(m.shards()[i].range.contains(&ksid));
            let point = KeyRange { start: ksid.clone(), end: vec![] };
            prop_assert_eq!(m.shards_for_range(&point).first().copied(), Some(i));
        }

        #[test]
        fn name_round_trip(start in proptest::collection::vec(any::<u8>(), 0..4), end in proptest::collection::vec(any::<u8>(), 0..4)) {
            if let Ok(r) = KeyRange::new(start, end) {
                let name = r.name();
                let back = KeyRange::parse(&name).unwrap();
                prop_assert_eq!(&back, &r);
                prop_assert_eq!(back.name(), name);
            }
        }

        #[test]
        fn parse_never_panics(s in "[-0-9a-fA-Fxg]{0,12}") {
            let _ = KeyRange::parse(&s);
            let _ = parse_shard_spec(&s);
        }

        #[test]
        fn shards_for_range_matches_brute_force(spec in spec_strategy(), a in proptest::collection::vec(any::<u8>(), 0..3), b in proptest::collection::vec(any::<u8>(), 0..3)) {
            let m = ShardMap::from_spec(&spec).unwrap();
            if let Ok(r) = KeyRange::new(a, b) {
                let brute: Vec<usize> = (0..m.len()).filter(|&i| m.shards()[i].range.intersects(&r)).collect();
                prop_assert_eq!(m.shards_for_range(&r), brute);
            }
        }
    }
}
