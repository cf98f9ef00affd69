//! Per-core runtimes for client sessions: `n` threads, each running a current-thread tokio
//! runtime. A session lives on one of them from accept to close, so its wake-ups never cross
//! threads: no work stealing, no parked worker to notify per ready socket (on a 2-core box
//! that bookkeeping — futex wake-ups and context switches — cost more than the session's own
//! work). Accepted connections are dealt round-robin.
//!
//! A socket is registered with the I/O driver of the runtime that opened or accepted it; one
//! that moves to another runtime (an accepted client, a pooled backend connection adopted by
//! a session elsewhere) is re-registered there ([`crate::net::Net::rehome`]).

use std::cell::Cell;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::runtime::Handle;

thread_local! {
    /// The index of the worker runtime this thread runs; [`NOT_A_WORKER`] elsewhere.
    static WORKER: Cell<usize> = const { Cell::new(NOT_A_WORKER) };
}

/// [`current`] on a thread that is not a worker (the acceptor, tests, the simulator).
pub const NOT_A_WORKER: usize = usize::MAX;

/// The worker runtime the calling thread runs, or [`NOT_A_WORKER`].
pub fn current() -> usize {
    WORKER.with(Cell::get)
}

/// The running worker runtimes.
pub struct Workers {
    handles: Vec<Handle>,
    next: AtomicUsize,
}

impl Workers {
    /// Starts `n` (at least one) worker threads, each with its own current-thread runtime
    /// that runs until the process exits.
    pub fn start(n: usize) -> io::Result<Workers> {
        let mut handles = Vec::with_capacity(n.max(1));
        for i in 0..n.max(1) {
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::Builder::new()
                .name(format!("shardgate-worker-{i}"))
                .spawn(move || {
                    WORKER.with(|w| w.set(i));
                    // No time driver: session timers live in the acceptor's runtime
                    // (see `crate::clock`).
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_io()
                        .build();
                    match rt {
                        Ok(rt) => {
                            let _ = tx.send(Ok(rt.handle().clone()));
                            rt.block_on(std::future::pending::<()>());
                        }
                        Err(e) => {
                            let _ = tx.send(Err(e));
                        }
                    }
                })?;
            let handle = rx
                .recv()
                .map_err(|_| io::Error::other("worker thread died at start"))??;
            handles.push(handle);
        }
        Ok(Workers {
            handles,
            next: AtomicUsize::new(0),
        })
    }

    /// The runtime for the next session (round-robin).
    pub fn next(&self) -> &Handle {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.handles.len();
        &self.handles[i]
    }
}
