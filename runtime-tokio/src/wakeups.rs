//! Which of a session's sockets woke its task. A session task waits on its client socket and
//! on each backend socket at once; with one shared waker, every wake-up would poll all of them
//! again, and a socket polled without news only re-registers the waker it already holds. Each
//! source gets its own waker instead, which marks the source's bit before waking the task, so a
//! wake-up polls the sources that have news and those never polled since they last had some.
//!
//! The rule that keeps this from losing a wake-up: a source's bit is cleared only when a poll
//! of that source returned `Pending` (its waker is registered again), never after `Ready`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Wake, Waker};

/// The client socket's bit.
pub const CLIENT: u64 = 1;

/// A backend socket's bit. Backends share the 63 other bits by id: a shared bit only means
/// that a wake-up of one polls the others too.
pub fn backend_bit(id: usize) -> u64 {
    1 << (1 + id % 63)
}

/// A session's sources, as bits: woken (set by the sources' wakers) and to poll.
pub struct Wakeups {
    woken: Arc<AtomicU64>,
    /// Sources to poll at the next wake-up.
    dirty: u64,
    /// The task's own waker, which every source waker wakes.
    task: Option<Waker>,
}

impl Default for Wakeups {
    fn default() -> Self {
        Wakeups {
            woken: Arc::new(AtomicU64::new(0)),
            dirty: u64::MAX,
            task: None,
        }
    }
}

impl Wakeups {
    /// Starts a poll of the task: takes the bits woken since the last one. Returns `true`
    /// when the task's waker is new (the first poll, or the task moved), in which case every
    /// source waker made before must be made again ([`Wakeups::waker`]) and every source is
    /// polled.
    pub fn begin(&mut self, cx: &Context<'_>) -> bool {
        let fresh = !self.task.as_ref().is_some_and(|t| t.will_wake(cx.waker()));
        if fresh {
            self.task = Some(cx.waker().clone());
            self.dirty = u64::MAX;
        }
        self.dirty |= self.woken.swap(0, Ordering::AcqRel);
        fresh
    }

    /// A waker for the source with `bit`, waking `cx`'s task; the source is polled at the
    /// next wake-up, since nothing holds this waker yet.
    pub fn waker(&mut self, cx: &Context<'_>, bit: u64) -> Waker {
        self.dirty |= bit;
        Waker::from(Arc::new(SourceWaker {
            woken: self.woken.clone(),
            bit,
            task: cx.waker().clone(),
        }))
    }

    pub fn is_dirty(&self, bit: u64) -> bool {
        self.dirty & bit != 0
    }

    /// The task returns `Pending`: every source polled returned `Pending` too, so only the
    /// `kept` ones (not polled this time) still need a poll.
    pub fn settle(&mut self, kept: u64) {
        self.dirty &= kept;
    }

    /// Sources may have been polled with other wakers, or replaced (TLS, a new connection):
    /// poll them all at the next wake-up.
    pub fn mark(&mut self, bits: u64) {
        self.dirty |= bits;
    }
}

struct SourceWaker {
    woken: Arc<AtomicU64>,
    bit: u64,
    task: Waker,
}

impl Wake for SourceWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.fetch_or(self.bit, Ordering::AcqRel);
        self.task.wake_by_ref();
    }
}

/// A task waker that counts its wake-ups (tests of the driver's polling).
#[cfg(test)]
pub(crate) struct CountWakes(pub std::sync::atomic::AtomicUsize);

#[cfg(test)]
impl Wake for CountWakes {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use CountWakes as Count;

    #[test]
    fn a_source_is_polled_again_only_after_its_waker_fired() {
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let task = Waker::from(count.clone());
        let cx = Context::from_waker(&task);
        let mut w = Wakeups::default();
        assert!(w.begin(&cx), "first poll: everything is new");
        let client = w.waker(&cx, CLIENT);
        let b1 = w.waker(&cx, backend_bit(1));
        assert!(w.is_dirty(CLIENT) && w.is_dirty(backend_bit(1)));
        w.settle(0);
        assert!(!w.begin(&cx));
        assert!(!w.is_dirty(CLIENT) && !w.is_dirty(backend_bit(1)));
        b1.wake_by_ref();
        assert_eq!(count.0.load(Ordering::Relaxed), 1, "the task is woken");
        assert!(!w.begin(&cx));
        assert!(w.is_dirty(backend_bit(1)) && !w.is_dirty(CLIENT));
        // Not polled this time (kept), so still due next time.
        w.settle(backend_bit(1));
        assert!(!w.begin(&cx) && w.is_dirty(backend_bit(1)));
        drop(client);
    }

    #[test]
    fn a_new_task_waker_makes_every_source_due() {
        let a = Waker::from(Arc::new(Count(AtomicUsize::new(0))));
        let b = Waker::from(Arc::new(Count(AtomicUsize::new(0))));
        let mut w = Wakeups::default();
        w.begin(&Context::from_waker(&a));
        w.settle(0);
        assert!(w.begin(&Context::from_waker(&b)));
        assert!(w.is_dirty(CLIENT) && w.is_dirty(backend_bit(7)));
    }

    #[test]
    fn backend_bits_never_take_the_clients() {
        for id in 0..1000 {
            assert_ne!(backend_bit(id), CLIENT);
            assert_eq!(backend_bit(id).count_ones(), 1);
        }
    }
}
