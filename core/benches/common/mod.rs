//! Shared fixtures of the wire benchmarks and the allocation check: a 10-column result set
//! (five integers, five short strings) like a sysbench/OLTP row.

#![allow(dead_code)]

use bytes::{Bytes, BytesMut};
use shardgate_core::wire::consts::ColumnType;
use shardgate_core::wire::value::put_text_row;
use shardgate_core::wire::{ColumnDef, Value};

pub const COLUMNS: usize = 10;

pub fn columns() -> Vec<ColumnDef> {
    let int = |n: &str, t| ColumnDef::new(n, t);
    let text = |n: &str| ColumnDef::new(n, ColumnType::VarString);
    vec![
        int("id", ColumnType::LongLong),
        int("k", ColumnType::Long),
        text("c"),
        int("qty", ColumnType::Long),
        text("pad"),
        int("flags", ColumnType::Tiny),
        text("email"),
        int("ts", ColumnType::LongLong),
        text("city"),
        text("code"),
    ]
}

/// Row `i` as values (ints and short strings, every 16th `city` NULL).
pub fn values(i: u64) -> Vec<Value> {
    let s = |t: String| Value::Bytes(Bytes::from(t));
    vec![
        Value::Int(i as i64),
        Value::Int((i * 7919 % 100_000) as i64),
        s(format!("c-{:05}", i % 100_000)),
        Value::Int((i % 500) as i64),
        s(format!("pad{}", i % 97)),
        Value::Int((i % 3) as i64),
        s(format!("u{}@ex.com", i % 10_000)),
        Value::Int(1_700_000_000 + i as i64),
        if i.is_multiple_of(16) {
            Value::Null
        } else {
            s(format!("city{}", i % 50))
        },
        s(format!("{:03}", i % 1000)),
    ]
}

/// `n` text-protocol row payloads, each a `Bytes` view into one contiguous buffer.
pub fn text_rows(n: u64) -> Vec<Bytes> {
    let mut buf = BytesMut::new();
    let mut scratch = Vec::new();
    let mut ends = Vec::with_capacity(n as usize);
    for i in 0..n {
        put_text_row(&mut buf, &values(i), &mut scratch);
        ends.push(buf.len());
    }
    let all = buf.freeze();
    let mut start = 0;
    ends.into_iter()
        .map(|end| {
            let row = all.slice(start..end);
            start = end;
            row
        })
        .collect()
}
