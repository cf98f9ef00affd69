//! shardgate-sim: deterministic simulation of the gateway.
//!
//! The L0 stepper ([`world::World`]) runs the sans-IO gateway core, the simulated engine
//! shards and scripted clients on one thread with a virtual clock: no async, no threads, no
//! real time, one seeded PRNG. Scenario files (`scenarios/**/*.scn`, see [`scenario`]) drive
//! it; each run produces a plain-text transcript of every packet, decoded and tagged by
//! direction (DESIGN section 6), which tests snapshot and compare across two runs.
//!
//! The L1 world ([`l1::L1World`]) runs the same scenarios through the real runtime-tokio
//! driver on turmoil's simulated network (`world l1` in a scenario, `--world l1` on the
//! command line): partial reads and writes, latency, partitions, host crashes.
//!
//! Layout, by concern:
//! - [`world`]: the L0 stepper (actors, stepping order, clock); [`l1`]: the turmoil world;
//! - [`link`] and [`fault`]: what carries bytes, and the fault vocabulary with its
//!   packet-level filter;
//! - [`trace`] and [`render`]: protocol-state decoding of each connection into transcript
//!   lines; [`logs`]: the gateway's warnings captured into the transcript;
//! - [`client`]: scripted clients (core's client-side protocol machine) and their answers;
//! - [`scenario`]: the `.scn` parser; [`runner`]: running scenarios and checking expectations;
//! - [`harness`]: the trait both worlds implement for the runner;
//! - [`sweep`]: randomised seeds — a drawn world, a SQL workload checked against one unsharded
//!   reference engine, fault episodes — written out as scenarios and run like them.
//!
//! Determinism rules for this crate: no wall clock, no thread, no unseeded randomness (turmoil
//! is seeded and given a fixed epoch; tokio's scheduler is seeded through
//! `--cfg tokio_unstable`); ordered maps or vectors wherever iteration order reaches output;
//! transcripts never use `Debug` formatting. The command line (`cli/`, outside `src/`) reads
//! the wall clock for its progress bar only.

pub mod client;
pub mod fault;
pub mod harness;
pub mod l1;
pub mod link;
pub mod logs;
pub mod render;
pub mod runner;
pub mod scenario;
pub mod sweep;
pub mod trace;
pub mod world;

use std::path::{Path, PathBuf};

/// Every `*.scn` file under `dir`, sorted by path.
pub fn find_scenarios(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "scn") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}
