//! Every `scenarios/**/*.scn`, in path order: parsed, run twice in the L0 stepper (the two
//! transcripts must be byte-identical), inline expectations and end-of-run invariants checked,
//! and the transcript snapshotted to `snapshots/scn/<path without .scn>.snap`.
//!
//! Regenerate snapshots with `INSTA_UPDATE=always cargo test -p shardgate-sim --test scenarios`
//! (or `cargo insta review`); CI=true makes a missing snapshot fail.

// Against the deliberately broken writer these scenarios fail by design (see broken_writer.rs).
#![cfg(not(feature = "broken-writer"))]

use shardgate_sim::{find_scenarios, runner, scenario};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn every_scenario_passes_twice_identically_and_matches_its_snapshot() {
    let root = repo();
    let files = find_scenarios(&root.join("scenarios"));
    assert!(
        !files.is_empty(),
        "no scenarios found under {}",
        root.display()
    );
    let mut failures = Vec::new();
    for file in &files {
        let rel = file
            .strip_prefix(&root)
            .unwrap_or(file)
            .to_string_lossy()
            .replace('\\', "/");
        let sc = match scenario::load(file, &rel) {
            Ok(s) => s,
            Err(e) => {
                failures.push(e);
                continue;
            }
        };
        let out = runner::run_twice(&sc, None, false);
        failures.extend(runner::judge(&sc, &out.failures));
        // snapshots/scn/<path under scenarios/, without .scn>.snap
        let under = rel.strip_prefix("scenarios/").unwrap_or(&rel);
        let under = under.strip_suffix(".scn").unwrap_or(under);
        let (dir, name) = match under.rsplit_once('/') {
            Some((d, n)) => (root.join("snapshots/scn").join(d), n.to_string()),
            None => (root.join("snapshots/scn"), under.to_string()),
        };
        let transcript = out.transcript;
        let snap = catch_unwind(AssertUnwindSafe(|| {
            insta::with_settings!({
                snapshot_path => dir,
                prepend_module_to_snapshot => false,
                omit_expression => true,
                input_file => file,
            }, {
                insta::assert_snapshot!(name, transcript);
            });
        }));
        if snap.is_err() {
            failures.push(format!(
                "{rel}: transcript differs from its snapshot (see above)"
            ));
        }
    }
    eprintln!("{} scenario(s) run", files.len());
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

/// The same files through the real runtime-tokio driver on turmoil's network (expectations and
/// invariants only; L0 transcripts are the snapshots): the stepper and the driver agree.
#[test]
fn every_scenario_also_passes_in_the_turmoil_world() {
    let root = repo();
    let mut failures = Vec::new();
    let files = find_scenarios(&root.join("scenarios"));
    for file in &files {
        let rel = file
            .strip_prefix(&root)
            .unwrap_or(file)
            .to_string_lossy()
            .replace('\\', "/");
        let mut sc = match scenario::load(file, &rel) {
            Ok(s) => s,
            Err(e) => {
                failures.push(e);
                continue;
            }
        };
        sc.world = scenario::WorldKind::L1;
        let out = runner::run_in_its_world(&sc, None, false);
        failures.extend(runner::judge(&sc, &out.failures));
    }
    eprintln!("{} scenario(s) run in L1", files.len());
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}
