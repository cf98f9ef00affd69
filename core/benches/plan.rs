//! Planner costs on the embedded default vschema (issue 3 targets): a plan-cache hit
//! (normalise + lookup) <= 2 µs per point select, parse + plan on a miss <= 30 µs.
//!
//! `cargo bench -p shardgate-core --bench plan`.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use shardgate_core::gateway::{Gateway, Topology};
use shardgate_core::plan::{plan_sql, Target};
use shardgate_core::server::ServerConfig;
use shardgate_core::sql::normalize;
use shardgate_core::vschema::default_vschema;
use std::hint::black_box;
use std::sync::Arc;

/// The embedded default: `commerce` sharded `-80`,`80-`, `lookup` unsharded.
fn default_gateway() -> Arc<Gateway> {
    let topology = Topology::embedded(shardgate_core::vschema::DEFAULT_SHARDS, "commerce");
    Gateway::with_vschema(ServerConfig::default(), topology, default_vschema())
        .expect("default vschema")
}

const POINT: &str = "select * from customer where customer_id = 42";

/// Statements of the miss benchmark: a point select and two heavier shapes.
const MISS: &[(&str, &str)] = &[
    ("point_select", POINT),
    (
        "scatter_order_limit",
        "select customer_id, email from customer where email like 'a%' order by customer_id desc limit 10",
    ),
    (
        "join_same_shard",
        "select c.email, o.sku from customer c join corder o on c.customer_id = o.customer_id where c.customer_id = 5",
    ),
];

fn bench_plan(c: &mut Criterion) {
    let gw = default_gateway();
    let target = Target::default();
    for (_, sql) in MISS {
        plan_sql(sql, &gw, &target).unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    let mut g = c.benchmark_group("plan");

    // Warm cache, varying ids: every call normalises and finds the same shape.
    let stmts: Vec<String> = (0..1024)
        .map(|i| format!("select * from customer where customer_id = {}", i * 7919))
        .collect();
    plan_sql(&stmts[0], &gw, &target).unwrap();
    let mut i = 0usize;
    g.bench_function("hit/point_select", |b| {
        b.iter(|| {
            i = (i + 1) & 1023;
            black_box(plan_sql(black_box(&stmts[i]), &gw, &target).unwrap())
        })
    });

    g.bench_function("normalize/point_select", |b| {
        b.iter(|| {
            i = (i + 1) & 1023;
            black_box(normalize(black_box(&stmts[i])))
        })
    });

    // A miss: a fresh gateway each time (built outside the timed part), so the plan cache is
    // cold and the statement is parsed and planned (the gateway is dropped untimed too).
    for (name, sql) in MISS {
        g.bench_function(format!("miss/{name}"), |b| {
            b.iter_batched_ref(
                default_gateway,
                |gw| black_box(plan_sql(black_box(sql), gw, &target).unwrap()),
                BatchSize::SmallInput,
            )
        });
    }

    // A miss on a warm, shared gateway: a new statement shape every time (a unique alias), so
    // cache insertion and eviction are included.
    let mut n = 0u64;
    g.bench_function("miss/unique_shape", |b| {
        b.iter_batched(
            || {
                n += 1;
                format!("select customer_id as c{n} from customer where customer_id = 42")
            },
            |sql| black_box(plan_sql(&sql, &gw, &target).unwrap()),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, bench_plan);
criterion_main!(benches);
