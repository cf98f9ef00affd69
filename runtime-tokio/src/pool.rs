//! The driver's half of the backend connection pools: the core's [`Pool`] bookkeeping behind
//! a mutex, plus what only the driver has — sockets, wake-ups for waiters, the clock.
//!
//! A [`Lease`] stands for one unit of a pool's capacity. It travels with the socket it paid
//! for; dropping it (the socket closed, failed, or was never opened) gives the capacity back,
//! so no error path can leak a pool slot. Releasing a healthy connection hands socket,
//! protocol state and lease together to the next waiter or the idle stack.

use crate::clock::Clock;
use shardgate_core::backend::BackendConn;
use shardgate_core::error::codes;
use shardgate_core::gateway::Gateway;
use shardgate_core::pool::{Grant, Pool, PoolConfig, PoolStats, Ticket};
use shardgate_core::SqlError;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

/// An idle connection: its socket and its protocol state.
pub struct Idle<S> {
    pub stream: S,
    pub conn: BackendConn,
    /// The worker runtime whose I/O driver the socket is registered with
    /// ([`crate::workers::current`] of the session that released it).
    pub home: usize,
}

/// What [`TabletPool::acquire`] gives.
// Made once per acquire and matched at once: boxing the idle connection would only add an
// allocation to the reuse path.
#[allow(clippy::large_enum_variant)]
pub enum Acquired<S: Send + 'static> {
    /// An idle connection to adopt.
    Reuse(Idle<S>, Lease<S>),
    /// Capacity to open a new connection.
    Open(Lease<S>),
}

struct Inner<S> {
    pool: Pool<Idle<S>>,
    waiters: BTreeMap<Ticket, oneshot::Sender<Grant<Idle<S>>>>,
}

/// One tablet's pool.
pub struct TabletPool<S> {
    inner: Mutex<Inner<S>>,
    config: PoolConfig,
    gw: Arc<Gateway>,
    address: shardgate_core::gateway::ShardAddress,
}

/// One unit of a pool's capacity; given back when dropped.
pub struct Lease<S: Send + 'static> {
    pool: Option<Arc<TabletPool<S>>>,
}

impl<S: Send + 'static> Lease<S> {
    /// Gives a healthy idle connection back to the pool this lease came from.
    pub fn release(mut self, idle: Idle<S>, now_us: u64) {
        if let Some(p) = self.pool.take() {
            p.put_back(idle, now_us);
        }
    }
}

impl<S: Send + 'static> Drop for Lease<S> {
    fn drop(&mut self) {
        if let Some(p) = self.pool.take() {
            p.discard();
        }
    }
}

impl<S: Send + 'static> TabletPool<S> {
    fn stats(&self) -> Option<&PoolStats> {
        self.gw.pool_stats(&self.address)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner<S>> {
        // The bookkeeping stays consistent even if a holder panicked: every change is one
        // call on `Pool`.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn sync(&self, inner: &Inner<S>) {
        if let Some(s) = self.stats() {
            s.sync(&inner.pool);
        }
    }

    /// A connection's worth of capacity, waiting up to the acquire timeout. An idle
    /// connection that negotiated CLIENT_FOUND_ROWS as `found_rows` says is preferred (one
    /// that did not cannot serve the session: the caller closes it), then one carrying
    /// `settings` (the session's SETs): it needs no reset and no replay.
    pub async fn acquire(
        self: &Arc<Self>,
        clock: &Clock,
        settings: Option<&Arc<str>>,
        found_rows: bool,
    ) -> Result<Acquired<S>, SqlError> {
        let lease = || Lease {
            pool: Some(self.clone()),
        };
        let (ticket, rx) = {
            let mut inner = self.lock();
            let got = inner.pool.acquire_ranked(|idle| {
                2 * u8::from(idle.conn.found_rows() == found_rows)
                    + u8::from(idle.conn.settings() == settings)
            });
            self.sync(&inner);
            match got {
                Ok(g) => return Ok(self.granted(g, lease())),
                Err(ticket) => {
                    let (tx, rx) = oneshot::channel();
                    inner.waiters.insert(ticket, tx);
                    (ticket, rx)
                }
            }
        };
        let start = clock.now_us();
        let timeout = self.config.acquire_timeout_ms;
        let mut rx = rx;
        let got = tokio::select! {
            g = &mut rx => g.ok(),
            _ = clock.sleep_until_us(start + timeout.saturating_mul(1000)), if timeout > 0 => None,
        };
        let got = match got {
            Some(g) => Some(g),
            None => {
                let mut inner = self.lock();
                inner.waiters.remove(&ticket);
                let still_waiting = inner.pool.cancel(ticket);
                self.sync(&inner);
                drop(inner);
                // Not waiting any more: a grant was sent just before the deadline.
                if still_waiting {
                    None
                } else {
                    rx.try_recv().ok()
                }
            }
        };
        if let Some(s) = self.stats() {
            s.record_wait(clock.now_us().saturating_sub(start));
        }
        match got {
            Some(g) => Ok(self.granted(g, lease())),
            None => {
                if let Some(s) = self.stats() {
                    s.timeouts.fetch_add(1, Ordering::Relaxed);
                }
                let tablet = self.stats().map(|s| s.tablet.clone()).unwrap_or_default();
                Err(SqlError::new(
                    codes::ER_TOO_MANY_USER_CONNECTIONS,
                    "42000",
                    format!(
                        "shard {tablet}: no backend connection free within {timeout} ms (pool size {})",
                        self.config.max_size
                    ),
                ))
            }
        }
    }

    fn granted(&self, g: Grant<Idle<S>>, lease: Lease<S>) -> Acquired<S> {
        match g {
            Grant::Reuse(idle) => {
                if let Some(s) = self.stats() {
                    s.reused.fetch_add(1, Ordering::Relaxed);
                }
                Acquired::Reuse(idle, lease)
            }
            Grant::Open => {
                if let Some(s) = self.stats() {
                    s.opened.fetch_add(1, Ordering::Relaxed);
                }
                Acquired::Open(lease)
            }
        }
    }

    /// A healthy, idle connection comes back (its capacity moves with it).
    fn put_back(&self, idle: Idle<S>, now_us: u64) {
        let mut inner = self.lock();
        let mut next = inner.pool.release(idle, now_us);
        while let Some((ticket, grant)) = next.take() {
            match inner.waiters.remove(&ticket) {
                Some(tx) => {
                    if let Err(Grant::Reuse(idle)) = tx.send(grant) {
                        // The waiter is gone: the next one (or the idle stack) gets it.
                        next = inner.pool.release(idle, now_us);
                    }
                }
                None => {
                    if let Grant::Reuse(idle) = grant {
                        next = inner.pool.release(idle, now_us);
                    }
                }
            }
        }
        self.sync(&inner);
    }

    /// A connection is gone: its capacity goes to the next waiter.
    fn discard(&self) {
        let mut inner = self.lock();
        if let Some(s) = self.stats() {
            s.closed.fetch_add(1, Ordering::Relaxed);
        }
        let mut next = inner.pool.discard();
        while let Some((ticket, grant)) = next.take() {
            let sent = inner
                .waiters
                .remove(&ticket)
                .map(|tx| tx.send(grant).is_ok())
                .unwrap_or(false);
            if !sent {
                next = inner.pool.discard();
            }
        }
        self.sync(&inner);
    }

    /// Closes idle connections unused for longer than the idle timeout.
    pub fn expire_idle(&self, now_us: u64) -> usize {
        let ms = self.config.idle_timeout_ms;
        if ms == 0 {
            return 0;
        }
        let expired = {
            let mut inner = self.lock();
            let e = inner
                .pool
                .expire_idle(now_us.saturating_sub(ms.saturating_mul(1000)));
            self.sync(&inner);
            e
        };
        let n = expired.len();
        for _ in expired {
            // Dropping the socket closes it; the capacity goes back.
            self.discard();
        }
        n
    }
}

/// All tablets' pools, by shard address.
pub struct Pools<S> {
    by_address: BTreeMap<shardgate_core::gateway::ShardAddress, Arc<TabletPool<S>>>,
}

impl<S: Send + 'static> Pools<S> {
    pub fn new(gw: &Arc<Gateway>) -> Self {
        let config = gw.limits.pool;
        let by_address = gw
            .pools
            .keys()
            .map(|a| {
                (
                    a.clone(),
                    Arc::new(TabletPool {
                        inner: Mutex::new(Inner {
                            pool: Pool::new(config.max_size),
                            waiters: BTreeMap::new(),
                        }),
                        config,
                        gw: gw.clone(),
                        address: a.clone(),
                    }),
                )
            })
            .collect();
        Pools { by_address }
    }

    pub fn get(
        &self,
        address: &shardgate_core::gateway::ShardAddress,
    ) -> Option<&Arc<TabletPool<S>>> {
        self.by_address.get(address)
    }

    /// Closes every pool's expired idle connections; returns how many.
    pub fn expire_idle(&self, now_us: u64) -> usize {
        self.by_address
            .values()
            .map(|p| p.expire_idle(now_us))
            .sum()
    }
}
