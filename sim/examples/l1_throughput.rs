//! Statements per wall-clock second through the L1 turmoil world: point selects from one
//! client through the real runtime-tokio driver to an engine shard host and back, each
//! statement sent the way scenarios send it (then stepped until the network is quiet).
//!
//! `cargo run --release -p shardgate-sim --example l1_throughput [N] [shards]`

use shardgate_sim::client::Answer;
use shardgate_sim::harness::{ConnectOptions, Harness, KeyspaceSpec, TopologySpec, VSchemaSource};
use shardgate_sim::l1::L1World;
use std::time::Instant;

fn topology(sharded: bool) -> TopologySpec {
    if !sharded {
        return TopologySpec::embedded_default();
    }
    let json = r#"{"keyspaces": {"commerce": {"sharded": true,
        "vindexes": {"hash": {"type": "hash"}},
        "tables": {"t": {"column_vindexes": [{"column": "id", "name": "hash"}]}}}}}"#;
    TopologySpec {
        keyspaces: vec![KeyspaceSpec {
            name: "commerce".into(),
            shards: vec!["-80".into(), "80-".into()],
        }],
        vschema: Some(VSchemaSource {
            name: "t.json".into(),
            json: json.into(),
        }),
    }
}

fn run(n: usize, sharded: bool) -> (f64, u64) {
    let mut w = L1World::new(1, &topology(sharded), false, None).expect("world");
    let ok = |w: &mut L1World| match w.next_answer("a") {
        Ok(Answer::Ok { .. }) | Ok(Answer::Connected { .. }) => {}
        other => panic!(
            "setup failed: {}",
            other.map(|a| a.describe()).unwrap_or_else(|e| e)
        ),
    };
    w.connect("a", &ConnectOptions::default()).expect("connect");
    ok(&mut w);
    w.query(
        "a",
        "create table t (id bigint primary key, name varchar(20))",
    )
    .expect("send");
    ok(&mut w);
    let values: Vec<String> = (1..=100).map(|i| format!("({i}, 'name{i}')")).collect();
    w.query(
        "a",
        &format!("insert into t (id, name) values {}", values.join(",")),
    )
    .expect("send");
    ok(&mut w);
    let steps = w.steps();
    let start = Instant::now();
    for i in 0..n {
        w.query(
            "a",
            &format!("select id, name from t where id = {}", i % 100 + 1),
        )
        .expect("send");
        match w.next_answer("a") {
            Ok(Answer::Rows { rows, .. }) if rows.len() == 1 => {}
            _ => panic!("statement {i} failed"),
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let steps = w.steps() - steps;
    let failures = w.finish();
    assert!(failures.is_empty(), "{failures:?}");
    (n as f64 / secs, steps / n as u64)
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(5_000);
    for sharded in [false, true] {
        let (rate, steps) = run(n, sharded);
        println!(
            "{n} point selects, {} shard(s): {rate:.0} statements/s ({steps} turmoil steps each)",
            if sharded { 2 } else { 1 }
        );
    }
}
