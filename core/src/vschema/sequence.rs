//! Sequences: the id-block cache behind `auto_increment` columns, as a pure state machine.
//!
//! A Vitess sequence table lives in an unsharded keyspace and has one row:
//! `CREATE TABLE seq (id INT, next_id BIGINT, cache BIGINT, PRIMARY KEY (id))` with `id = 0`.
//! The gateway reserves a block of ids from it and hands them out from memory:
//!
//! 1. [`SequenceCache::next_n`] returns ids from the current block `[next, limit)`, or a
//!    [`NeedBlock`] when the block cannot satisfy the request;
//! 2. the caller, in a transaction on the sequence's keyspace, runs [`NeedBlock::select_sql`]
//!    (`select next_id, cache from seq where id = 0 for update`), feeds the answer to
//!    [`SequenceCache::fill`], runs [`NeedBlock::update_sql`] with the value `fill` returned,
//!    and commits;
//! 3. it calls `next_n` again, which now succeeds.
//!
//! Ids are never handed out twice; ids may be skipped (like Vitess, a block that is too small
//! for a request is abandoned unless the new block directly follows it).

use std::fmt;
use std::ops::Range;

/// A request to reserve a new block of ids from a sequence table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NeedBlock {
    pub keyspace: String,
    pub table: String,
    /// The smallest number of new ids that satisfies the pending request; the block actually
    /// reserved is this rounded up to a multiple of the table's `cache`.
    pub cache_size: u64,
}

impl NeedBlock {
    /// Reads (and locks) the sequence row.
    pub fn select_sql(&self) -> String {
        format!(
            "select next_id, cache from {} where id = 0 for update",
            quote_ident(&self.table)
        )
    }

    /// Stores the new `next_id` returned by [`SequenceCache::fill`].
    pub fn update_sql(&self, new_next_id: u64) -> String {
        format!(
            "update {} set next_id = {new_next_id} where id = 0",
            quote_ident(&self.table)
        )
    }
}

fn quote_ident(s: &str) -> String {
    format!("`{}`", s.replace('`', "``"))
}

/// Why a reservation answer was rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SequenceError {
    /// `cache` must be at least 1.
    BadCache(u64),
    /// The block would run past u64::MAX.
    Exhausted,
    /// `fill` without a pending [`NeedBlock`].
    NotRequested,
}

impl fmt::Display for SequenceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SequenceError::BadCache(c) => write!(f, "invalid sequence cache value: {c}"),
            SequenceError::Exhausted => f.write_str("sequence exhausted"),
            SequenceError::NotRequested => f.write_str("sequence block filled without a request"),
        }
    }
}

impl std::error::Error for SequenceError {}

/// The cache of one sequence table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SequenceCache {
    keyspace: String,
    table: String,
    /// Next id to hand out.
    next: u64,
    /// One past the last reserved id.
    limit: u64,
    /// Ids the pending request still needs from the next block (0 = no request pending).
    pending: u64,
}

impl SequenceCache {
    pub fn new(keyspace: impl Into<String>, table: impl Into<String>) -> Self {
        SequenceCache {
            keyspace: keyspace.into(),
            table: table.into(),
            next: 0,
            limit: 0,
            pending: 0,
        }
    }

    /// Ids left in the current block.
    pub fn remaining(&self) -> u64 {
        self.limit - self.next
    }

    /// `n` consecutive ids, or a request to reserve a block first. `n = 0` is an empty range.
    pub fn next_n(&mut self, n: u64) -> Result<Range<u64>, NeedBlock> {
        if n <= self.remaining() {
            let r = self.next..self.next + n;
            self.next += n;
            self.pending = 0;
            return Ok(r);
        }
        // If the new block directly follows the current one the remainder is kept, so only
        // the shortfall is needed; otherwise the whole request. Ask for the larger (safe) one
        // only when we know; `fill` computes the exact figure.
        self.pending = n;
        Err(NeedBlock {
            keyspace: self.keyspace.clone(),
            table: self.table.clone(),
            cache_size: n - self.remaining(),
        })
    }

    /// Feeds the sequence row read under lock (`next_id`, `cache`). Returns the new
    /// `next_id` the caller must write back before committing.
    pub fn fill(&mut self, next_id: u64, cache: u64) -> Result<u64, SequenceError> {
        if self.pending == 0 {
            return Err(SequenceError::NotRequested);
        }
        if cache == 0 {
            return Err(SequenceError::BadCache(cache));
        }
        // A row below what we already hold (reset behind our back): continue after our block,
        // as Vitess does, so no id is handed out twice.
        let start = next_id.max(self.limit);
        let contiguous = start == self.limit && self.remaining() > 0;
        let need = if contiguous {
            self.pending - self.remaining()
        } else {
            self.pending
        };
        let blocks = need.div_ceil(cache).max(1);
        let size = blocks.checked_mul(cache).ok_or(SequenceError::Exhausted)?;
        let new_limit = start.checked_add(size).ok_or(SequenceError::Exhausted)?;
        if !contiguous {
            self.next = start;
        }
        self.limit = new_limit;
        self.pending = 0;
        Ok(new_limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn need(n: u64) -> NeedBlock {
        NeedBlock {
            keyspace: "lookup".into(),
            table: "customer_seq".into(),
            cache_size: n,
        }
    }

    #[test]
    fn hands_out_blocks() {
        let mut s = SequenceCache::new("lookup", "customer_seq");
        assert_eq!(s.next_n(0), Ok(0..0));
        let nb = s.next_n(1).unwrap_err();
        assert_eq!(nb, need(1));
        assert_eq!(
            nb.select_sql(),
            "select next_id, cache from `customer_seq` where id = 0 for update"
        );
        assert_eq!(
            nb.update_sql(1001),
            "update `customer_seq` set next_id = 1001 where id = 0"
        );
        assert_eq!(s.fill(1, 1000), Ok(1001));
        assert_eq!(s.next_n(1), Ok(1..2));
        assert_eq!(s.next_n(3), Ok(2..5));
        assert_eq!(s.remaining(), 996);
        assert_eq!(s.next_n(996), Ok(5..1001));
        assert_eq!(s.next_n(2), Err(need(2)));
        assert_eq!(s.fill(1001, 1000), Ok(2001));
        assert_eq!(s.next_n(2), Ok(1001..1003));
    }

    #[test]
    fn contiguous_block_keeps_remainder() {
        let mut s = SequenceCache::new("k", "t");
        s.next_n(1).unwrap_err();
        assert_eq!(s.fill(1, 10), Ok(11));
        assert_eq!(s.next_n(8), Ok(1..9));
        // 2 left, 5 wanted: the next block follows ours, so 9..14 comes out in one piece.
        let nb = s.next_n(5).unwrap_err();
        assert_eq!(nb.cache_size, 3);
        assert_eq!(s.fill(11, 10), Ok(21));
        assert_eq!(s.next_n(5), Ok(9..14));
        assert_eq!(s.remaining(), 7);
    }

    #[test]
    fn non_contiguous_block_abandons_remainder() {
        let mut s = SequenceCache::new("k", "t");
        s.next_n(1).unwrap_err();
        s.fill(1, 10).unwrap();
        s.next_n(8).unwrap();
        s.next_n(5).unwrap_err();
        // Another gateway took 11..21 meanwhile.
        assert_eq!(s.fill(21, 10), Ok(31));
        assert_eq!(s.next_n(5), Ok(21..26));
    }

    #[test]
    fn large_requests_take_several_blocks() {
        let mut s = SequenceCache::new("k", "t");
        s.next_n(25).unwrap_err();
        assert_eq!(s.fill(100, 10), Ok(130));
        assert_eq!(s.next_n(25), Ok(100..125));
        assert_eq!(s.remaining(), 5);
    }

    #[test]
    fn reset_backwards_never_repeats_ids() {
        let mut s = SequenceCache::new("k", "t");
        s.next_n(1).unwrap_err();
        s.fill(50, 10).unwrap();
        assert_eq!(s.next_n(10), Ok(50..60));
        s.next_n(1).unwrap_err();
        // Someone reset next_id to 1: we continue after 60.
        assert_eq!(s.fill(1, 10), Ok(70));
        assert_eq!(s.next_n(1), Ok(60..61));
    }

    #[test]
    fn errors() {
        let mut s = SequenceCache::new("k", "t");
        assert_eq!(s.fill(1, 10), Err(SequenceError::NotRequested));
        s.next_n(1).unwrap_err();
        assert_eq!(s.fill(1, 0), Err(SequenceError::BadCache(0)));
        assert_eq!(s.fill(u64::MAX - 5, 10), Err(SequenceError::Exhausted));
        assert_eq!(s.fill(1, u64::MAX), Err(SequenceError::Exhausted));
        assert_eq!(s.fill(0, u64::MAX), Ok(u64::MAX));
        assert_eq!(s.next_n(1), Ok(0..1));
        let mut s = SequenceCache::new("k", "t");
        s.next_n(u64::MAX).unwrap_err();
        assert_eq!(s.fill(2, 3), Err(SequenceError::Exhausted));
    }
}
