//! Setups (b2) and (b4) of the differential SQL suite, cargo-side: scenarios/sql/*.slt through
//! the gateway over 2 and over 4 embedded shards (keyspace `ks` sharded, `seq` unsharded, the
//! VSchema scenarios/sql/vschema.json), in the L0 stepper — the same records
//! e2e/test_differential.py runs over sockets, without building the release binary. Labels:
//! sharded, shards2 or shards4, embedded.
//!
//! The record parser is the engine runner's (sim/engine/tests/slt.rs, setup (a)).

#[path = "../engine/tests/slt.rs"]
#[allow(dead_code)]
mod engine_slt;

use engine_slt::{check_error, check_ok, check_rows, parse, suite_files, Record};
use shardgate_sim::client::Answer;
use shardgate_sim::harness::{ConnectOptions, Harness, KeyspaceSpec, TopologySpec, VSchemaSource};
use shardgate_sim::world::{World, WorldConfig};

fn applies(rec: &Record, labels: &[&str]) -> bool {
    rec.onlyif.iter().all(|l| labels.contains(&l.as_str()))
        && !rec.skipif.iter().any(|l| labels.contains(&l.as_str()))
}

fn check(rec: &Record, answer: Answer) -> Result<String, (String, String)> {
    match answer {
        Answer::Error { error, .. } | Answer::Closed(error) => {
            check_error(rec, error.code, &error.message)
        }
        Answer::Rows { columns, rows, .. } => check_rows(rec, columns.len(), &rows),
        Answer::Ok { ok, .. } => check_ok(rec, ok.affected_rows),
        other => Err(("unexpected answer".into(), other.describe())),
    }
}

fn run_setup(shards: &[&str], labels: &[&str]) -> Vec<String> {
    let vschema = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/sql/vschema.json"),
    )
    .expect("scenarios/sql/vschema.json");
    let topology = TopologySpec {
        keyspaces: vec![
            KeyspaceSpec {
                name: "ks".into(),
                shards: shards.iter().map(|s| s.to_string()).collect(),
            },
            KeyspaceSpec {
                name: "seq".into(),
                shards: vec!["0".into()],
            },
        ],
        vschema: Some(VSchemaSource {
            name: "vschema.json".into(),
            json: vschema,
        }),
    };
    let mut failures = Vec::new();
    for path in suite_files() {
        let mut w = World::new(WorldConfig {
            seed: 1,
            topology: topology.clone(),
            record: false,
            merge_queue_rows: None,
        })
        .expect("world");
        w.connect("a", &ConnectOptions::default()).expect("connect");
        let _ = w.next_answer("a").expect("connected");
        let records = parse(&path);
        let (mut run, mut passed, mut xfailed) = (0, 0, 0);
        for rec in records.iter().filter(|r| applies(r, labels)) {
            run += 1;
            let at = format!("{}:{} ({})", path.display(), rec.line, labels[1]);
            w.query("a", &rec.sql).expect("send");
            let answer = w.next_answer("a").expect("an answer");
            let xfail = rec.xfail.iter().any(|l| labels.contains(&l.as_str()));
            match (check(rec, answer), xfail) {
                (Ok(_), false) => passed += 1,
                (Err(_), true) => xfailed += 1,
                (Ok(got), true) => failures.push(format!(
                    "{at}: marked xfail (a known bug) but passed: remove the marker\n    {}\n    got  {got}",
                    rec.sql
                )),
                (Err((why, got)), false) => failures.push(format!(
                    "{at}: {why}\n    {}\n    want {}\n    got  {got}",
                    rec.sql,
                    rec.describe()
                )),
            }
        }
        eprintln!(
            "{} ({}): {run} run, {passed} passed, {xfailed} known bugs (xfail)",
            path.display(),
            labels[1]
        );
    }
    failures
}

#[test]
fn differential_suite_through_the_gateway_on_2_and_4_embedded_shards() {
    let mut failures = run_setup(&["-80", "80-"], &["sharded", "shards2", "embedded"]);
    failures.extend(run_setup(
        &["-40", "40-80", "80-c0", "c0-"],
        &["sharded", "shards4", "embedded"],
    ));
    assert!(
        failures.is_empty(),
        "{} record(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
