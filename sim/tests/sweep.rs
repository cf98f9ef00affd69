//! The bounded sweep `make test` runs: 200 randomised seeds starting from a seed derived from
//! the git commit (`git rev-parse HEAD`; a fixed seed without git), so every commit explores
//! new seeds and a failure names its seed. Replay one with `make sim SEED=<seed>`.
//!
//! Also: a few of the next seeds through the real driver on turmoil's network, and a seed
//! replayed gives a byte-identical transcript (in both worlds).

// Against the deliberately broken writer the mid-stream faults fail by design.
#![cfg(not(feature = "broken-writer"))]

use shardgate_sim::scenario::WorldKind;
use shardgate_sim::sweep::{self, SweepOptions};

const SEEDS: u64 = 200;
/// Seeds run through the turmoil world as well.
const L1_SEEDS: u64 = 25;
/// The start seed when git is not available.
const FALLBACK_SEED: u64 = 20_240_601;

/// The first 12 hex digits of HEAD (seeds stay short enough to type).
fn start_seed() -> u64 {
    std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| {
            let hex = String::from_utf8_lossy(&o.stdout);
            u64::from_str_radix(hex.trim().get(..12)?, 16).ok()
        })
        .unwrap_or(FALLBACK_SEED)
}

#[test]
fn bounded_sweep_seeded_from_the_commit() {
    let start = start_seed();
    eprintln!("sweep: {SEEDS} seeds from {start} (shardgate-sim sweep {SEEDS} --seed {start})");
    let mut failures = Vec::new();
    let mut statements = 0;
    for seed in start..start + SEEDS {
        let out = sweep::run_seed(seed, SweepOptions::default(), false);
        statements += out.statements;
        if let Some(f) = out.failures.first() {
            failures.push(format!(
                "seed {seed}: {f}\n  replay: make sim SEED={seed}\n  drawn: {}",
                out.draw.describe().trim_end().replace('\n', "; ")
            ));
        }
    }
    eprintln!(
        "{SEEDS} seeds, {statements} statements, {} failed",
        failures.len()
    );
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

/// A few seeds of the same draws through the real driver on turmoil's network.
#[test]
fn bounded_sweep_through_the_driver() {
    let start = start_seed().wrapping_add(SEEDS);
    let options = SweepOptions {
        world: WorldKind::L1,
        ..SweepOptions::default()
    };
    let mut failures = Vec::new();
    for seed in start..start + L1_SEEDS {
        let out = sweep::run_seed(seed, options, false);
        if let Some(f) = out.failures.first() {
            failures.push(format!(
                "seed {seed} (l1): {f}\n  replay: shardgate-sim seed {seed} --world l1"
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn a_seed_replays_byte_identically() {
    for seed in [3, 19, 77] {
        let a = sweep::run_seed(seed, SweepOptions::default(), true);
        let b = sweep::run_seed(seed, SweepOptions::default(), true);
        assert!(!a.transcript.is_empty());
        assert!(
            a.transcript == b.transcript,
            "seed {seed}: transcripts differ"
        );
        assert_eq!(a.failures, b.failures, "seed {seed}: failures differ");
    }
}
