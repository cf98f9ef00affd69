//! The statements one shard connection has prepared on its server, by SQL text.
//!
//! A client's prepared statement in pass-through mode runs as a prepared statement on the
//! shard too (no re-parsing there, binary rows relayed as they are). The shard's statement
//! belongs to the shard connection, not to the client's statement: it is prepared on the
//! first execute over that connection and kept for the next ones, whichever client statement
//! with the same text they come from. The cache is bounded; the statement used least recently
//! is closed on the server to make room.

use std::collections::BTreeMap;
use std::sync::Arc;

/// Statements kept per shard connection: MariaDB's `max_prepared_stmt_count` (16,382 by
/// default) is shared by every connection of the server.
pub const CAPACITY: usize = 64;

#[derive(Debug, Clone)]
struct Entry {
    sql: Arc<str>,
    id: u32,
    params: u16,
    /// When it was last used (a counter, not a clock): the smallest is evicted first.
    used: u64,
}

/// See the module docs.
#[derive(Debug, Default)]
pub(crate) struct PreparedCache {
    /// By a 64-bit hash of the text (cheaper per execute than hashing the text into a map);
    /// the entry keeps the text, so two texts with one hash never share a statement.
    by_sql: BTreeMap<u64, Entry>,
    tick: u64,
    /// The text looked up last and its hash: a client runs the same statement again and
    /// again, and recognising its text by pointer skips hashing it per execute.
    last: Option<(Arc<str>, u64)>,
    /// Server statements no longer wanted: closed (COM_STMT_CLOSE, no answer) before the next
    /// command.
    to_close: Vec<u32>,
}

impl PreparedCache {
    /// The server's statement id and parameter count for `sql`, if prepared.
    pub fn get(&mut self, sql: &Arc<str>) -> Option<(u32, u16)> {
        self.tick += 1;
        let k = match &self.last {
            Some((text, k)) if Arc::ptr_eq(text, sql) => *k,
            _ => {
                let k = key(sql);
                self.last = Some((sql.clone(), k));
                k
            }
        };
        let e = self.by_sql.get_mut(&k)?;
        if !Arc::ptr_eq(&e.sql, sql) && *e.sql != **sql {
            return None;
        }
        e.used = self.tick;
        Some((e.id, e.params))
    }

    /// Remembers a statement just prepared; past [`CAPACITY`], the least recently used one
    /// is queued for closing.
    pub fn insert(&mut self, sql: Arc<str>, id: u32, params: u16) {
        self.tick += 1;
        let k = key(&sql);
        let entry = Entry {
            sql,
            id,
            params,
            used: self.tick,
        };
        if let Some(old) = self.by_sql.insert(k, entry) {
            self.to_close.push(old.id);
        }
        if self.by_sql.len() > CAPACITY {
            let lru = self
                .by_sql
                .iter()
                .min_by_key(|(_, e)| e.used)
                .map(|(k, e)| (*k, e.id));
            if let Some((k, id)) = lru {
                self.by_sql.remove(&k);
                self.to_close.push(id);
            }
        }
    }

    /// Every statement is to be closed (the connection's default database changed: a
    /// statement prepared before would still read the old one's tables).
    pub fn forget_all(&mut self) {
        let mut ids: Vec<u32> = std::mem::take(&mut self.by_sql)
            .into_values()
            .map(|e| e.id)
            .collect();
        ids.sort_unstable();
        self.to_close.extend(ids);
    }

    /// The server dropped every statement (COM_RESET_CONNECTION): nothing to close.
    pub fn clear(&mut self) {
        self.by_sql.clear();
        self.to_close.clear();
    }

    /// Statement ids to close now.
    pub fn take_closes(&mut self) -> Vec<u32> {
        std::mem::take(&mut self.to_close)
    }

    pub fn len(&self) -> usize {
        self.by_sql.len()
    }
}

fn key(sql: &str) -> u64 {
    xxhash_rust::xxh64::xxh64(sql.as_bytes(), 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hit_after_insert_and_miss_otherwise() {
        let mut c = PreparedCache::default();
        assert_eq!(c.get(&"select 1".into()), None);
        c.insert("select 1".into(), 7, 0);
        assert_eq!(c.get(&"select 1".into()), Some((7, 0)));
        assert_eq!(c.get(&"select 2".into()), None);
        assert!(c.take_closes().is_empty());
    }

    #[test]
    fn the_same_text_is_found_by_pointer_or_by_content_and_forgotten_alike() {
        let mut c = PreparedCache::default();
        let text: Arc<str> = "select c from t where id = ?".into();
        c.insert(text.clone(), 4, 1);
        for _ in 0..3 {
            assert_eq!(c.get(&text), Some((4, 1)));
        }
        let copy: Arc<str> = text.to_string().into();
        assert_eq!(
            c.get(&copy),
            Some((4, 1)),
            "an equal text in another allocation"
        );
        assert_eq!(c.get(&"select 2".into()), None);
        assert_eq!(c.get(&text), Some((4, 1)));
        c.forget_all();
        assert_eq!(
            c.get(&text),
            None,
            "the remembered hash does not outlive the entry"
        );
        assert_eq!(c.take_closes(), vec![4]);
    }

    #[test]
    fn evicts_the_least_recently_used_past_capacity() {
        let mut c = PreparedCache::default();
        for i in 0..CAPACITY as u32 {
            c.insert(format!("select {i}").into(), i + 1, 0);
        }
        // Statement 0 is used again, so statement 1 is now the least recently used.
        assert!(c.get(&"select 0".into()).is_some());
        c.insert("select new".into(), 1000, 1);
        assert_eq!(c.len(), CAPACITY);
        assert_eq!(c.take_closes(), vec![2]);
        assert_eq!(c.get(&"select 1".into()), None);
        assert_eq!(c.get(&"select 0".into()), Some((1, 0)));
        assert_eq!(c.get(&"select new".into()), Some((1000, 1)));
    }

    #[test]
    fn forget_all_closes_every_statement_and_clear_closes_none() {
        let mut c = PreparedCache::default();
        c.insert("b".into(), 2, 0);
        c.insert("a".into(), 1, 0);
        c.forget_all();
        assert_eq!(c.len(), 0);
        assert_eq!(c.take_closes(), vec![1, 2]);
        c.insert("a".into(), 3, 0);
        c.forget_all();
        c.clear();
        assert!(c.take_closes().is_empty());
    }
}
