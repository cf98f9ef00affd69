//! The plan cache: normalized statement → plan, bounded, with hit/miss counters.
//!
//! Keyed by the session target and the normalized text (literals as `?`), so a point select
//! hits whatever its id. Lookups never iterate the map, so a `HashMap` cannot leak order into
//! output; eviction is first-in first-out through an ordered queue.

use super::Plan;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Hit and miss counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
    pub entries: usize,
}

#[derive(Debug, Default)]
struct Inner {
    map: HashMap<String, Arc<Plan>>,
    order: VecDeque<String>,
}

/// A bounded map from cache key to plan.
#[derive(Debug)]
pub struct PlanCache {
    inner: Mutex<Inner>,
    capacity: usize,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl PlanCache {
    pub fn new(capacity: usize) -> PlanCache {
        PlanCache {
            inner: Mutex::new(Inner::default()),
            capacity: capacity.max(1),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    pub fn get(&self, key: &str) -> Option<Arc<Plan>> {
        let found = self.inner.lock().ok().and_then(|g| g.map.get(key).cloned());
        match &found {
            Some(_) => self.hits.fetch_add(1, Ordering::Relaxed),
            None => self.misses.fetch_add(1, Ordering::Relaxed),
        };
        found
    }

    pub fn insert(&self, key: String, plan: Arc<Plan>) {
        let Ok(mut g) = self.inner.lock() else { return };
        if g.map.contains_key(&key) {
            return;
        }
        while g.map.len() >= self.capacity {
            let Some(old) = g.order.pop_front() else {
                break;
            };
            g.map.remove(&old);
        }
        g.order.push_back(key.clone());
        g.map.insert(key, plan);
    }

    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            entries: self.inner.lock().map(|g| g.map.len()).unwrap_or(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_fifo_with_counters() {
        let c = PlanCache::new(2);
        let p = Arc::new(Plan::Local(super::super::Local::Ok));
        c.insert("a".into(), p.clone());
        c.insert("b".into(), p.clone());
        c.insert("c".into(), p);
        assert!(c.get("a").is_none());
        assert!(c.get("b").is_some());
        assert!(c.get("c").is_some());
        assert_eq!(
            c.stats(),
            CacheStats {
                hits: 2,
                misses: 1,
                entries: 2
            }
        );
    }
}
