//! The driver's clock: time since the driver started, read from tokio's clock, which turmoil
//! simulates. The only place time enters the system.
//!
//! Its timers live in the runtime that made the clock (the acceptor's, in production), not in
//! the runtime that happens to wait on them. Session threads run without a time driver: every
//! park of one would otherwise read the clock and lock its timer wheel, about 5% of the
//! instructions of a proxied query, for timers that almost never fire (idle and statement
//! deadlines, connect and handshake limits). A timer made here and polled on a session thread
//! wakes that thread when it fires, like any other cross-thread waker.

use std::future::Future;
use std::time::Duration;
use tokio::runtime::Handle;
use tokio::time::{Instant, Sleep, Timeout};

#[derive(Clone, Debug)]
pub struct Clock {
    start: Instant,
    /// The runtime whose time driver runs this clock's timers (`None`: outside any runtime,
    /// timers go to whichever runtime makes them).
    timers: Option<Handle>,
}

impl Clock {
    pub fn new() -> Clock {
        Clock {
            start: Instant::now(),
            timers: Handle::try_current().ok(),
        }
    }

    pub fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    pub fn now_us(&self) -> u64 {
        // Whole seconds and microseconds apart: no 128-bit arithmetic on the hot path.
        let d = self.start.elapsed();
        d.as_secs() * 1_000_000 + u64::from(d.subsec_micros())
    }

    /// The instant `due_us` after the start (for timers that are reset, not recreated).
    pub fn instant_at_us(&self, due_us: u64) -> Instant {
        self.start + Duration::from_micros(due_us)
    }

    /// A timer firing `due_us` after the start, in the clock's runtime.
    pub fn sleep_at_us(&self, due_us: u64) -> Sleep {
        let _in_timers = self.timers.as_ref().map(Handle::enter);
        tokio::time::sleep_until(self.instant_at_us(due_us))
    }

    pub async fn sleep_until_us(&self, due_us: u64) {
        self.sleep_at_us(due_us).await
    }

    pub async fn sleep_until_ms(&self, due_ms: u64) {
        self.sleep_at_us(due_ms.saturating_mul(1000)).await
    }

    /// `future`, given up after `limit` (its timer in the clock's runtime).
    pub fn timeout<F: Future>(&self, limit: Duration, future: F) -> Timeout<F> {
        let _in_timers = self.timers.as_ref().map(Handle::enter);
        tokio::time::timeout(limit, future)
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A session thread's runtime has no time driver: the clock's timers must still fire
    /// there, served by the runtime that made the clock.
    #[test]
    fn timers_fire_on_a_runtime_without_a_time_driver() {
        let home = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let clock = home.block_on(async { Clock::new() });
        let session = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .unwrap();
        session.block_on(async {
            let due = clock.now_us() + 5_000;
            let mut timer = Box::pin(clock.sleep_at_us(u64::MAX / 4));
            // Re-armed earlier, as the driver does with a session's deadline.
            timer.as_mut().reset(clock.instant_at_us(due));
            timer.await;
            assert!(clock.now_us() >= due);
            clock.sleep_until_ms(clock.now_ms() + 2).await;
            let slow = clock.timeout(Duration::from_millis(5), std::future::pending::<()>());
            assert!(slow.await.is_err(), "the timeout fires");
            let quick = clock.timeout(Duration::from_secs(60), async { 7 });
            assert_eq!(quick.await.ok(), Some(7));
        });
    }
}
