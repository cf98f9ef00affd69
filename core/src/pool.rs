//! Backend connection pools: one per tablet (shard address), shared by all sessions.
//!
//! [`Pool`] is the sans-IO bookkeeping — how many connections are open, which are idle, who
//! waits — generic over what a connection is (the driver's socket plus its
//! [`crate::backend::BackendConn`] state). The driver wraps it with its own wake-ups and
//! clock; [`PoolStats`] is what operators see (`/debug/vars`, `/metrics`).
//!
//! Rules:
//! - `max_size` bounds open connections, idle ones included, so a burst of clients never
//!   opens more than that many connections to one MySQL server;
//! - an idle connection goes to the longest waiter first (FIFO), else back on the idle stack
//!   (LIFO: the warmest connection is reused, cold ones age out under `idle_timeout`);
//! - a waiter whose deadline passes cancels its ticket and gets a clear ERR, never a hang.

use crate::gateway::Histogram;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// A waiter's place in the queue.
pub type Ticket = u64;

/// What an acquire (or a hand-over to a waiter) gives.
#[derive(Debug, PartialEq, Eq)]
pub enum Grant<T> {
    /// An idle, authenticated connection.
    Reuse(T),
    /// Capacity to open a new connection (already counted as open).
    Open,
}

/// Pool sizing (per tablet).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolConfig {
    /// Open connections at most (idle and in use). 0: unbounded.
    pub max_size: usize,
    /// Idle connections older than this are closed (ms; 0: never).
    pub idle_timeout_ms: u64,
    /// A session waits at most this long for a connection (ms; 0: forever).
    pub acquire_timeout_ms: u64,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            max_size: 128,
            idle_timeout_ms: 60_000,
            acquire_timeout_ms: 5_000,
        }
    }
}

/// The bookkeeping of one tablet's pool.
#[derive(Debug)]
pub struct Pool<T> {
    max_size: usize,
    open: usize,
    /// Idle connections with the time (µs) they became idle; the last is the warmest.
    idle: Vec<(T, u64)>,
    waiters: VecDeque<Ticket>,
    next_ticket: Ticket,
}

impl<T> Pool<T> {
    pub fn new(max_size: usize) -> Self {
        Pool {
            max_size,
            open: 0,
            idle: Vec::new(),
            waiters: VecDeque::new(),
            next_ticket: 0,
        }
    }

    /// Open connections (idle included).
    pub fn open(&self) -> usize {
        self.open
    }
    pub fn idle(&self) -> usize {
        self.idle.len()
    }
    pub fn waiting(&self) -> usize {
        self.waiters.len()
    }

    /// A connection now, or a ticket to wait with. Nobody overtakes a waiter.
    pub fn acquire(&mut self) -> Result<Grant<T>, Ticket> {
        self.acquire_ranked(|_| 0)
    }

    /// [`Pool::acquire`], lending the idle connection that `rank`s highest, the warmest of
    /// those.
    pub fn acquire_ranked(&mut self, rank: impl Fn(&T) -> u8) -> Result<Grant<T>, Ticket> {
        if self.waiters.is_empty() {
            let mut pick: Option<(usize, u8)> = None;
            for (i, (t, _)) in self.idle.iter().enumerate() {
                let r = rank(t);
                if pick.is_none_or(|(_, best)| r >= best) {
                    pick = Some((i, r));
                }
            }
            let taken = pick.map(|(i, _)| self.idle.remove(i));
            if let Some((t, _)) = taken {
                return Ok(Grant::Reuse(t));
            }
            if self.max_size == 0 || self.open < self.max_size {
                self.open += 1;
                return Ok(Grant::Open);
            }
        }
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        self.waiters.push_back(ticket);
        Err(ticket)
    }

    /// A healthy connection comes back: the first waiter gets it, else it waits idle.
    pub fn release(&mut self, conn: T, now_us: u64) -> Option<(Ticket, Grant<T>)> {
        match self.waiters.pop_front() {
            Some(w) => Some((w, Grant::Reuse(conn))),
            None => {
                self.idle.push((conn, now_us));
                None
            }
        }
    }

    /// A connection was closed (or failed to open): its capacity goes to the first waiter.
    pub fn discard(&mut self) -> Option<(Ticket, Grant<T>)> {
        self.open = self.open.saturating_sub(1);
        if self.max_size != 0 && self.open >= self.max_size {
            return None;
        }
        let w = self.waiters.pop_front()?;
        self.open += 1;
        Some((w, Grant::Open))
    }

    /// A waiter gave up (deadline, client gone). Returns whether it was still waiting (if
    /// not, a grant is already on its way to it and must be given back).
    pub fn cancel(&mut self, ticket: Ticket) -> bool {
        match self.waiters.iter().position(|w| *w == ticket) {
            Some(i) => {
                self.waiters.remove(i);
                true
            }
            None => false,
        }
    }

    /// Takes out the idle connections that became idle at or before `cutoff_us` (the caller
    /// closes them, then calls [`Pool::discard`] for each).
    pub fn expire_idle(&mut self, cutoff_us: u64) -> Vec<T> {
        let keep = self.idle.iter().position(|(_, since)| *since > cutoff_us);
        let n = keep.unwrap_or(self.idle.len());
        self.idle.drain(..n).map(|(t, _)| t).collect()
    }
}

/// Upper bounds (µs) of the pool wait histogram buckets; the last bucket is unbounded.
pub const WAIT_BUCKETS_US: &[u64] = &[
    100, 500, 1_000, 5_000, 10_000, 50_000, 100_000, 500_000, 1_000_000, 5_000_000,
];

/// What operators see of one tablet's pool.
#[derive(Debug)]
pub struct PoolStats {
    /// `keyspace/shard`.
    pub tablet: String,
    pub capacity: usize,
    pub open: AtomicU64,
    pub in_use: AtomicU64,
    pub idle: AtomicU64,
    pub waiting: AtomicU64,
    /// Connections opened, and idle connections handed out again.
    pub opened: AtomicU64,
    pub reused: AtomicU64,
    /// Connections closed by the pool (idle timeout, found dead, not reusable).
    pub closed: AtomicU64,
    /// Acquires that gave up at the deadline.
    pub timeouts: AtomicU64,
    /// Time spent waiting for a connection (only acquires that had to wait).
    pub wait: Mutex<Histogram>,
}

impl PoolStats {
    pub fn new(tablet: String, capacity: usize) -> Self {
        PoolStats {
            tablet,
            capacity,
            open: AtomicU64::new(0),
            in_use: AtomicU64::new(0),
            idle: AtomicU64::new(0),
            waiting: AtomicU64::new(0),
            opened: AtomicU64::new(0),
            reused: AtomicU64::new(0),
            closed: AtomicU64::new(0),
            timeouts: AtomicU64::new(0),
            wait: Mutex::new(Histogram::with_buckets(WAIT_BUCKETS_US)),
        }
    }

    /// Mirrors a pool's gauges after a change.
    pub fn sync<T>(&self, pool: &Pool<T>) {
        let open = pool.open() as u64;
        let idle = pool.idle() as u64;
        self.open.store(open, Ordering::Relaxed);
        self.idle.store(idle, Ordering::Relaxed);
        self.in_use
            .store(open.saturating_sub(idle), Ordering::Relaxed);
        self.waiting.store(pool.waiting() as u64, Ordering::Relaxed);
    }

    pub fn record_wait(&self, us: u64) {
        if let Ok(mut h) = self.wait.lock() {
            h.record(us);
        }
    }

    pub fn wait_snapshot(&self) -> Histogram {
        self.wait.lock().map(|h| h.clone()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_up_to_max_then_queues() {
        let mut p: Pool<&str> = Pool::new(2);
        assert_eq!(p.acquire(), Ok(Grant::Open));
        assert_eq!(p.acquire(), Ok(Grant::Open));
        assert_eq!(p.acquire(), Err(0));
        assert_eq!(p.acquire(), Err(1));
        assert_eq!(p.open(), 2);
        assert_eq!(p.waiting(), 2);
    }

    #[test]
    fn released_connection_goes_to_the_first_waiter() {
        let mut p = Pool::new(1);
        assert_eq!(p.acquire(), Ok(Grant::Open));
        assert_eq!(p.acquire(), Err(0));
        assert_eq!(p.acquire(), Err(1));
        assert_eq!(p.release("a", 10), Some((0, Grant::Reuse("a"))));
        assert_eq!(p.release("a", 20), Some((1, Grant::Reuse("a"))));
        assert_eq!(p.release("a", 30), None);
        assert_eq!(p.idle(), 1);
        assert_eq!(p.acquire(), Ok(Grant::Reuse("a")));
    }

    #[test]
    fn the_best_ranked_idle_connection_is_lent_warmest_first() {
        let mut p = Pool::new(4);
        for _ in 0..4 {
            assert_eq!(p.acquire(), Ok(Grant::Open));
        }
        for (name, at) in [("a1", 1), ("b1", 2), ("a2", 3), ("c", 4)] {
            p.release(name, at);
        }
        let rank = |t: &&str| if t.starts_with('a') { 2 } else { 0 };
        assert_eq!(p.acquire_ranked(rank), Ok(Grant::Reuse("a2")));
        assert_eq!(p.acquire_ranked(rank), Ok(Grant::Reuse("a1")));
        // None ranks higher than another: the warmest.
        assert_eq!(p.acquire_ranked(rank), Ok(Grant::Reuse("c")));
    }

    #[test]
    fn idle_is_lifo_and_nobody_overtakes_a_waiter() {
        let mut p = Pool::new(3);
        for _ in 0..3 {
            assert_eq!(p.acquire(), Ok(Grant::Open));
        }
        p.release("cold", 1);
        p.release("warm", 2);
        assert_eq!(p.acquire(), Ok(Grant::Reuse("warm")));
        assert_eq!(p.acquire(), Ok(Grant::Reuse("cold")));
        assert_eq!(p.acquire(), Err(0));
        // A connection released while someone waits is theirs, not a newcomer's.
        assert_eq!(p.release("x", 3), Some((0, Grant::Reuse("x"))));
    }

    #[test]
    fn discard_frees_capacity_for_a_waiter() {
        let mut p: Pool<&str> = Pool::new(1);
        assert_eq!(p.acquire(), Ok(Grant::Open));
        assert_eq!(p.acquire(), Err(0));
        assert_eq!(p.discard(), Some((0, Grant::Open)));
        assert_eq!(p.open(), 1);
        assert_eq!(p.discard(), None);
        assert_eq!(p.open(), 0);
    }

    #[test]
    fn cancelled_waiter_is_skipped() {
        let mut p = Pool::new(1);
        assert_eq!(p.acquire(), Ok(Grant::Open));
        assert_eq!(p.acquire(), Err(0));
        assert_eq!(p.acquire(), Err(1));
        assert!(p.cancel(0));
        assert!(!p.cancel(0));
        assert_eq!(p.release("a", 5), Some((1, Grant::Reuse("a"))));
    }

    #[test]
    fn expire_takes_only_old_idle_connections() {
        let mut p = Pool::new(0);
        for _ in 0..3 {
            assert_eq!(p.acquire(), Ok(Grant::Open));
        }
        p.release("a", 100);
        p.release("b", 200);
        p.release("c", 300);
        assert_eq!(p.expire_idle(200), vec!["a", "b"]);
        assert_eq!(p.idle(), 1);
        assert_eq!(p.discard(), None);
        assert_eq!(p.open(), 2);
    }

    #[test]
    fn unbounded_pool_never_waits() {
        let mut p: Pool<()> = Pool::new(0);
        for _ in 0..1000 {
            assert_eq!(p.acquire(), Ok(Grant::Open));
        }
    }
}
