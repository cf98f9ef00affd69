//! 4-shard ORDER BY merge through the executor's [`Merger`] (issue 3 target: >= 1M rows/s),
//! sans-IO: 250,000 pre-built text rows per shard, interleaved keys, fed in batches the way
//! shard results arrive, the merged rows drained as soon as they can leave.
//!
//! `cargo bench -p shardgate-core --bench merge`.

mod common;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use shardgate_core::exec::{MergeSpec, Merger, SortKey};
use std::hint::black_box;

const SHARDS: usize = 4;
const PER_SHARD: u64 = 250_000;
/// Rows delivered per shard between drains (a network read's worth).
const BATCH: usize = 256;

/// Shard `s` holds ids ≡ s (mod 4), ascending: the merge alternates shards on every row.
fn shard_rows() -> Vec<Vec<Bytes>> {
    let all = common::text_rows(PER_SHARD * SHARDS as u64);
    let mut shards: Vec<Vec<Bytes>> = (0..SHARDS)
        .map(|_| Vec::with_capacity(PER_SHARD as usize))
        .collect();
    for (i, row) in all.into_iter().enumerate() {
        shards[i % SHARDS].push(row);
    }
    shards
}

fn run(
    spec: &MergeSpec,
    columns: &[shardgate_core::wire::ColumnDef],
    shards: &[Vec<Bytes>],
) -> u64 {
    let mut m = Merger::new(spec.clone(), SHARDS);
    for s in 0..SHARDS {
        m.columns(s, columns);
    }
    let mut out = 0u64;
    let mut bytes = 0usize;
    let mut pos = 0usize;
    let len = shards[0].len();
    while pos < len {
        let end = (pos + BATCH).min(len);
        for (s, rows) in shards.iter().enumerate() {
            for r in &rows[pos..end] {
                m.row(s, r.clone());
            }
            if end == len {
                m.done(s);
            }
        }
        pos = end;
        while let Some(r) = m.next_row() {
            out += 1;
            bytes += r.len();
        }
    }
    assert!(m.is_finished());
    black_box(bytes);
    out
}

fn bench_merge(c: &mut Criterion) {
    let columns = common::columns();
    let shards = shard_rows();
    let spec = MergeSpec {
        order_by: vec![SortKey {
            col: 0,
            desc: false,
        }],
        ..Default::default()
    };
    assert_eq!(run(&spec, &columns, &shards), PER_SHARD * SHARDS as u64);

    let mut g = c.benchmark_group("merge");
    g.throughput(Throughput::Elements(PER_SHARD * SHARDS as u64));
    g.sample_size(10);
    g.bench_function("order_by_4x250k", |b| {
        b.iter(|| run(&spec, &columns, &shards))
    });
    // The same rows without ORDER BY (concat in shard order), for comparison.
    let concat = MergeSpec::default();
    g.bench_function("concat_4x250k", |b| {
        b.iter(|| run(&concat, &columns, &shards))
    });
    g.finish();
}

criterion_group!(benches, bench_merge);
criterion_main!(benches);
