//! One direction of a simulated connection: an ordered queue of what the sender wrote.
//!
//! Besides bytes, a link carries markers placed by faults so that they take effect at the
//! right point of the stream: a note for the transcript (printed when delivery reaches it), a
//! hold (delivery stops there until resumed), and the close of the sender's end.
//!
//! Delivery hands out one queued chunk at a time, or, when splitting is on, a random prefix of
//! it drawn from the world's seeded PRNG: the receiver then sees packets cut at arbitrary byte
//! boundaries, as TCP may deliver them.

use bytes::Bytes;
use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use std::collections::VecDeque;

/// What a sender put on a link.
#[derive(Clone)]
pub enum LinkItem {
    Data(Bytes),
    /// A transcript line, emitted when delivery reaches this point.
    Note(String),
    /// Delivery stops here until [`Link::resume`].
    Hold,
    /// The sender closed its end.
    Close,
}

/// What one delivery step hands to the receiver.
pub enum Delivery {
    Data(Bytes),
    Note(String),
    Close,
}

/// One direction of a connection.
#[derive(Default)]
pub struct Link {
    queue: VecDeque<LinkItem>,
    /// A hold marker was reached; nothing is delivered until resumed.
    held: bool,
    /// The close was delivered (or the receiver is gone): everything later is dropped.
    done: bool,
}

impl Link {
    pub fn push(&mut self, item: LinkItem) {
        if self.done {
            return;
        }
        // Coalesce adjacent data: one write call of the sender is not a message boundary.
        if let (LinkItem::Data(new), Some(LinkItem::Data(last))) = (&item, self.queue.back_mut()) {
            if !new.is_empty() {
                let mut v = Vec::with_capacity(last.len() + new.len());
                v.extend_from_slice(last);
                v.extend_from_slice(new);
                *last = Bytes::from(v);
            }
            return;
        }
        self.queue.push_back(item);
    }

    pub fn push_data(&mut self, data: Bytes) {
        if !data.is_empty() {
            self.push(LinkItem::Data(data));
        }
    }

    /// Can a delivery happen now?
    pub fn is_ready(&self) -> bool {
        !self.held && !self.done && !self.queue.is_empty()
    }

    /// Has anything not been delivered yet (held or not)?
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    pub fn is_held(&self) -> bool {
        self.held
    }

    /// Has the sender's close been delivered, or the receiver gone?
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Releases a hold.
    pub fn resume(&mut self) {
        self.held = false;
    }

    /// The sender died: what it had not sent yet (held bytes included) is lost; later items
    /// are still delivered.
    pub fn lose_pending(&mut self) {
        self.queue.clear();
        self.held = false;
    }

    /// The receiver is gone: drop everything, now and later.
    pub fn discard(&mut self) {
        self.queue.clear();
        self.done = true;
    }

    /// The next delivery; `split`: cut data at a random boundary drawn from this PRNG.
    pub fn deliver(&mut self, split: Option<&mut ChaCha8Rng>) -> Option<Delivery> {
        if !self.is_ready() {
            return None;
        }
        match self.queue.pop_front()? {
            LinkItem::Data(mut b) => {
                if let Some(rng) = split {
                    if b.len() > 1 {
                        let n = rng.random_range(1..=b.len());
                        if n < b.len() {
                            let rest = b.split_off(n);
                            self.queue.push_front(LinkItem::Data(rest));
                        }
                    }
                }
                Some(Delivery::Data(b))
            }
            LinkItem::Note(s) => Some(Delivery::Note(s)),
            LinkItem::Hold => {
                self.held = true;
                None
            }
            LinkItem::Close => {
                self.queue.clear();
                self.done = true;
                Some(Delivery::Close)
            }
        }
    }
}
