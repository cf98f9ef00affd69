//! The simulation can fail: built against the core's deliberately broken response writer
//! (feature `broken-writer`: an error while a result set is open closes the connection, the
//! old Vitess behaviour), the committed mid-stream-error scenarios must FAIL.
//!
//! `cargo test -p shardgate-sim --features broken-writer --test broken_writer`
#![cfg(feature = "broken-writer")]

use shardgate_sim::{runner, scenario};
use std::path::Path;

/// Scenarios whose shard error arrives while the client's result set is open.
const MID_STREAM: &[&str] = &[
    "scenarios/errors/after_fields.scn",
    "scenarios/errors/after_rows_text.scn",
    "scenarios/errors/after_rows_prepared.scn",
    "scenarios/errors/shard_drop_mid_stream.scn",
    "scenarios/faults/split_packets.scn",
    "scenarios/sharded/scatter_shard_error.scn",
    "scenarios/sharded/cross_shard_join_right_side_error.scn",
];

#[test]
fn mid_stream_error_scenarios_fail_against_the_broken_writer() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut passed_anyway = Vec::new();
    for rel in MID_STREAM {
        let sc = scenario::load(&root.join(rel), rel).unwrap_or_else(|e| panic!("{e}"));
        let out = runner::run_l0(&sc, None);
        if out.passed() {
            passed_anyway.push(*rel);
        } else {
            eprintln!("{rel}: failed as it must:\n  {}", out.failures.join("\n  "));
            // The failure is the one the scenario exists for: the client saw its connection
            // closed where an ERR was due.
            assert!(
                out.failures.iter().any(|f| f.contains("connection closed")),
                "{rel} failed for another reason: {:?}",
                out.failures
            );
        }
    }
    assert!(
        passed_anyway.is_empty(),
        "these scenarios did not notice the broken writer: {passed_anyway:?}"
    );
}

/// Randomised seeds notice it too: among seeds whose fault mix injects shard errors into
/// result sets, the broken writer makes runs fail.
#[test]
fn sweeps_with_mid_stream_errors_fail_against_the_broken_writer() {
    use shardgate_sim::sweep::{self, Draw, SweepOptions};
    let options = SweepOptions::default();
    let seeds: Vec<u64> = (1..)
        .filter(|s| Draw::new(*s, options).faults.read_error >= 15)
        .take(10)
        .collect();
    let failed: Vec<u64> = seeds
        .iter()
        .copied()
        .filter(|s| !sweep::run_seed(*s, options, false).passed())
        .collect();
    eprintln!(
        "seeds {seeds:?}: {} failed against the broken writer",
        failed.len()
    );
    assert!(
        !failed.is_empty(),
        "no seed among {seeds:?} noticed the broken writer"
    );
}
