//! Statements per wall-clock second through the L0 stepper: point selects from one client
//! through the gateway session to an engine shard and back, every packet decoded.
//!
//! `cargo run --release -p shardgate-sim --example stepper_throughput [N]`

use shardgate_sim::client::Answer;
use shardgate_sim::harness::{ConnectOptions, Harness, TopologySpec};
use shardgate_sim::world::{World, WorldConfig};
use std::time::Instant;

fn run(n: usize, record: bool) -> f64 {
    let mut w = World::new(WorldConfig {
        seed: 1,
        topology: TopologySpec::embedded_default(),
        record,
        merge_queue_rows: None,
    })
    .expect("world");
    let ok = |w: &mut World| match w.next_answer("a") {
        Ok(Answer::Ok { .. }) | Ok(Answer::Connected { .. }) => {}
        _ => panic!("setup failed"),
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
    w.query("a", &format!("insert into t values {}", values.join(",")))
        .expect("send");
    ok(&mut w);
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
    let failures = w.finish();
    assert!(failures.is_empty(), "{failures:?}");
    n as f64 / secs
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000);
    for record in [false, true] {
        let rate = run(n, record);
        println!(
            "{n} point selects, transcript {}: {rate:.0} statements/s",
            if record { "on" } else { "off" }
        );
    }
}
