//! Allocation check of the row paths (issue 2: "no per-row heap allocation" on text decode).
//!
//! A counting global allocator wraps the system one; each path runs over 10,000 rows and the
//! allocations made inside are counted. Text decode must make none (asserted); the other
//! paths write into pre-reserved buffers and are reported (and asserted to stay flat, i.e. not
//! one allocation per row). Also prints a rough rows/s for text decode.
//!
//! `cargo bench -p shardgate-core --bench alloc_check` (harness = false; a plain `main`).

mod common;

use bytes::BytesMut;
use shardgate_core::response::{ResponseWriter, RowFormat};
use shardgate_core::wire::binary::text_row_to_binary;
use shardgate_core::wire::consts::cap;
use shardgate_core::wire::value::TextRow;
use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const ROWS: u64 = 10_000;

/// Allocations made by `f`.
fn count<R>(f: impl FnOnce() -> R) -> (u64, R) {
    let before = ALLOCS.load(Ordering::Relaxed);
    let r = f();
    (ALLOCS.load(Ordering::Relaxed) - before, r)
}

fn decode_all(rows: &[bytes::Bytes]) -> (usize, usize) {
    let mut cells = 0usize;
    let mut bytes = 0usize;
    for row in rows {
        let mut r = TextRow::new(black_box(row));
        while let Some(cell) = r.next().expect("valid row") {
            cells += 1;
            bytes += cell.map_or(0, <[u8]>::len);
        }
    }
    (cells, bytes)
}

fn main() {
    let columns = common::columns();
    let rows = common::text_rows(ROWS);
    let mut failed = false;

    // Text decode: zero allocations, whatever the row count.
    let (allocs, (cells, _)) = count(|| decode_all(&rows));
    assert_eq!(cells as u64, ROWS * common::COLUMNS as u64);
    println!("text decode      {ROWS} rows: {allocs} allocations");
    if allocs != 0 {
        eprintln!("FAIL: text decode allocated {allocs} times for {ROWS} rows");
        failed = true;
    }

    // Rough speed of the same path (criterion's `wire` bench is the reference figure).
    let reps = 200;
    let t = Instant::now();
    for _ in 0..reps {
        black_box(decode_all(&rows));
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "text decode      {:.1} M rows/s ({} rows in {:.3}s)",
        (reps as f64 * ROWS as f64) / secs / 1e6,
        reps as u64 * ROWS,
        secs
    );

    // Text -> binary conversion into a buffer that has room: no allocation per row.
    let mut out = BytesMut::with_capacity(4 << 20);
    let (allocs, _) = count(|| {
        for r in &rows {
            text_row_to_binary(&mut out, &columns, r).expect("converts");
        }
    });
    println!("text->binary     {ROWS} rows: {allocs} allocations");
    if allocs > 0 {
        eprintln!("FAIL: text_row_to_binary allocated {allocs} times for {ROWS} rows");
        failed = true;
    }

    // The response writer forwarding text rows, text and binary format, into a buffer with
    // room (after one warm-up pass that sizes its internal column list).
    for (name, format) in [("text", RowFormat::Text), ("binary", RowFormat::Binary)] {
        let mut buf = BytesMut::with_capacity(4 << 20);
        let mut w = ResponseWriter::new(cap::SERVER_DEFAULT | cap::DEPRECATE_EOF);
        let mut pass = |buf: &mut BytesMut| {
            buf.clear();
            w.start_command(0);
            w.start_statement(false).unwrap();
            w.columns_begin(buf, &columns, format).unwrap();
            for r in &rows {
                w.row_text(buf, r).unwrap();
            }
            w.finish(buf, 0).unwrap();
        };
        pass(&mut buf);
        let (allocs, _) = count(|| pass(&mut buf));
        println!("writer {name:<6}    {ROWS} rows: {allocs} allocations (columns_begin included)");
        // columns_begin clones the column definitions (a few allocations per result set);
        // anything proportional to the rows is a regression.
        if allocs >= ROWS / 10 {
            eprintln!("FAIL: response writer ({name}) allocated {allocs} times for {ROWS} rows");
            failed = true;
        }
    }

    if failed {
        std::process::exit(1);
    }
    println!("alloc_check: ok");
}
