//! The driver's clock: milliseconds since the driver started, read from tokio's clock, which
//! turmoil simulates. The only place time enters the system.

use std::time::Duration;
use tokio::time::Instant;

#[derive(Clone, Copy, Debug)]
pub struct Clock {
    start: Instant,
}

impl Clock {
    pub fn new() -> Clock {
        Clock {
            start: Instant::now(),
        }
    }

    pub fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    pub fn now_us(&self) -> u64 {
        self.start.elapsed().as_micros() as u64
    }

    /// The instant `due_us` after the start (for timers that are reset, not recreated).
    pub fn instant_at_us(&self, due_us: u64) -> Instant {
        self.start + Duration::from_micros(due_us)
    }

    pub async fn sleep_until_us(&self, due_us: u64) {
        tokio::time::sleep_until(self.start + Duration::from_micros(due_us)).await
    }

    pub async fn sleep_until_ms(&self, due_ms: u64) {
        tokio::time::sleep_until(self.start + Duration::from_millis(due_ms)).await
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}
