//! Encoding and decoding a 1,000-row result set (10 short columns: ints and short strings) in
//! the text and the binary protocol, and a full pass of the response writer.
//!
//! `cargo bench -p shardgate-core --bench wire`. Throughput is reported in rows/s
//! (issue 2 target: text decode >= 5M rows/s, with no per-row allocation: see `alloc_check`).

mod common;

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use shardgate_core::response::{ResponseWriter, RowFormat};
use shardgate_core::wire::binary::{decode_binary_row, put_binary_row, text_row_to_binary};
use shardgate_core::wire::consts::cap;
use shardgate_core::wire::value::{put_text_row, TextRow};
use shardgate_core::wire::Value;
use std::hint::black_box;

const ROWS: u64 = 1000;

fn bench_text(c: &mut Criterion) {
    let values: Vec<Vec<Value>> = (0..ROWS).map(common::values).collect();
    let rows = common::text_rows(ROWS);
    let mut g = c.benchmark_group("text");
    g.throughput(Throughput::Elements(ROWS));

    let mut out = BytesMut::with_capacity(128 * 1024);
    let mut scratch = Vec::with_capacity(32);
    g.bench_function("encode_1000", |b| {
        b.iter(|| {
            out.clear();
            for v in &values {
                put_text_row(&mut out, black_box(v), &mut scratch);
            }
            black_box(out.len())
        })
    });

    g.bench_function("decode_1000", |b| {
        b.iter(|| {
            let mut cells = 0usize;
            let mut bytes = 0usize;
            for row in &rows {
                let mut r = TextRow::new(black_box(row));
                while let Some(cell) = r.next().unwrap() {
                    cells += 1;
                    bytes += cell.map_or(0, <[u8]>::len);
                }
            }
            black_box((cells, bytes))
        })
    });
    g.finish();
}

fn bench_binary(c: &mut Criterion) {
    let columns = common::columns();
    let values: Vec<Vec<Value>> = (0..ROWS).map(common::values).collect();
    let text_rows = common::text_rows(ROWS);
    let mut encoded = BytesMut::new();
    let mut binary_rows = Vec::new();
    for v in &values {
        put_binary_row(&mut encoded, &columns, v).unwrap();
        binary_rows.push(encoded.split().freeze());
    }
    let mut g = c.benchmark_group("binary");
    g.throughput(Throughput::Elements(ROWS));

    let mut out = BytesMut::with_capacity(128 * 1024);
    g.bench_function("encode_1000", |b| {
        b.iter(|| {
            out.clear();
            for v in &values {
                put_binary_row(&mut out, &columns, black_box(v)).unwrap();
            }
            black_box(out.len())
        })
    });

    g.bench_function("text_to_binary_1000", |b| {
        b.iter(|| {
            out.clear();
            for r in &text_rows {
                text_row_to_binary(&mut out, &columns, black_box(r)).unwrap();
            }
            black_box(out.len())
        })
    });

    g.bench_function("decode_1000", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for r in &binary_rows {
                n += decode_binary_row(&columns, black_box(r)).unwrap().len();
            }
            black_box(n)
        })
    });
    g.finish();
}

/// columns_begin + 1000 × row_text + finish, as the session does for a forwarded result.
fn bench_writer(c: &mut Criterion) {
    let columns = common::columns();
    let rows = common::text_rows(ROWS);
    let mut g = c.benchmark_group("response_writer");
    g.throughput(Throughput::Elements(ROWS));
    for (name, format) in [
        ("text_1000", RowFormat::Text),
        ("binary_1000", RowFormat::Binary),
    ] {
        let mut buf = BytesMut::with_capacity(256 * 1024);
        let mut w = ResponseWriter::new(cap::SERVER_DEFAULT | cap::DEPRECATE_EOF);
        g.bench_function(name, |b| {
            b.iter(|| {
                buf.clear();
                w.start_command(0);
                w.start_statement(false).unwrap();
                w.columns_begin(&mut buf, &columns, format).unwrap();
                for r in &rows {
                    w.row_text(&mut buf, black_box(r)).unwrap();
                }
                w.finish(&mut buf, 0).unwrap();
                black_box(buf.len())
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench_text, bench_binary, bench_writer);
criterion_main!(benches);
