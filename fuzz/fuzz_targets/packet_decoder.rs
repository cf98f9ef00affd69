//! Arbitrary bytes into every decoder of `shardgate_core::wire`: the packet framer (fed in
//! chunks whose size comes from the first byte), then each decoder on each framed payload and
//! on the raw input. Decoders must return `Err`, never panic. (Statement text has its own
//! target, `sql_text`.)
//!
//! `cargo fuzz run -s none packet_decoder`

#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use shardgate_core::wire::binary::{
    decode_binary_row, decode_execute_params, text_row_to_binary, DateTime, ParamType, PrepareOk,
    Time,
};
use shardgate_core::wire::consts::{cap, flag, ColumnType};
use shardgate_core::wire::generic::{decode_eof, decode_err, decode_ok, is_eof};
use shardgate_core::wire::handshake::{
    is_ssl_request, AuthSwitchRequest, HandshakeResponse, HandshakeV10,
};
use shardgate_core::wire::value::TextRow;
use shardgate_core::wire::{ColumnDef, PacketDecoder, Reader};
use std::sync::OnceLock;

/// Every column type, and the integer ones once more as UNSIGNED; temporal ones with an fsp.
fn all_columns() -> &'static [ColumnDef] {
    static COLS: OnceLock<Vec<ColumnDef>> = OnceLock::new();
    COLS.get_or_init(|| {
        let mut cols: Vec<ColumnDef> = (0u8..=255)
            .filter_map(ColumnType::from_u8)
            .map(|t| ColumnDef::new(format!("c{}", t as u8), t))
            .collect();
        for t in [
            ColumnType::Tiny,
            ColumnType::Short,
            ColumnType::Int24,
            ColumnType::Long,
            ColumnType::LongLong,
        ] {
            let mut c = ColumnDef::new("u", t);
            c.flags |= flag::UNSIGNED;
            cols.push(c);
        }
        for t in [
            ColumnType::DateTime,
            ColumnType::Time,
            ColumnType::Timestamp,
        ] {
            let mut c = ColumnDef::new("fsp", t);
            c.decimals = 6;
            cols.push(c);
        }
        cols
    })
}

/// Small column lists (so valid rows are within the fuzzer's reach), chosen by `sel`.
fn column_set(sel: u8) -> Vec<ColumnDef> {
    let all = all_columns();
    match sel % 4 {
        0 => all.to_vec(),
        1 => vec![
            ColumnDef::new("id", ColumnType::LongLong),
            ColumnDef::new("name", ColumnType::VarString),
        ],
        2 => {
            let i = usize::from(sel / 4) % all.len();
            vec![all[i].clone()]
        }
        _ => {
            let i = usize::from(sel / 4) % all.len();
            let j = usize::from(sel.wrapping_mul(7)) % all.len();
            vec![
                all[i].clone(),
                all[j].clone(),
                all[(i + j) % all.len()].clone(),
            ]
        }
    }
}

fn payload_decoders(p: &[u8], sel: u8) {
    for caps in [
        cap::SERVER_DEFAULT,
        cap::SERVER_DEFAULT | cap::SESSION_TRACK,
        cap::PROTOCOL_41,
        0,
    ] {
        let _ = decode_ok(p, caps);
    }
    let _ = decode_err(p);
    let _ = is_eof(p);
    let _ = decode_eof(p);
    let _ = ColumnDef::decode(p);
    let _ = HandshakeV10::decode(p);
    let _ = HandshakeResponse::decode(p);
    let _ = is_ssl_request(p);
    let _ = AuthSwitchRequest::decode(p);
    let _ = PrepareOk::decode(p);
    let _ = DateTime::parse(p);
    let _ = Time::parse(p);

    // Text rows: cell by cell, then into owned values.
    let mut row = TextRow::new(p);
    let mut cells = 0usize;
    while let Ok(Some(_)) = row.next() {
        cells += 1;
        if cells > p.len() + 1 {
            panic!("TextRow yields more cells than the payload has bytes");
        }
    }
    let owned = Bytes::copy_from_slice(p);
    let _ = TextRow::new(&owned).to_values(&owned);

    // Binary rows and text->binary conversion against column lists.
    let cols = column_set(sel);
    let _ = decode_binary_row(&cols, p);
    let mut out = BytesMut::new();
    if text_row_to_binary(&mut out, &cols, p).is_err() {
        assert!(
            out.is_empty(),
            "text_row_to_binary left bytes behind on error"
        );
    }

    // COM_STMT_EXECUTE parameter blocks, with and without previously bound types.
    let count = usize::from(sel % 20);
    let mut types = Vec::new();
    let _ = decode_execute_params(&mut Reader::new(p), count, &mut types, &[]);
    let mut bound: Vec<ParamType> = cols
        .iter()
        .map(|c| ParamType {
            col_type: c.col_type,
            unsigned: c.is_unsigned(),
        })
        .collect();
    let n = bound.len();
    let long: Vec<Option<BytesMut>> = (0..n)
        .map(|i| (i % 3 == 1).then(|| BytesMut::from(&b"long"[..])))
        .collect();
    let _ = decode_execute_params(&mut Reader::new(p), n, &mut bound, &long);
}

fuzz_target!(|data: &[u8]| {
    let sel = data.first().copied().unwrap_or(0);
    payload_decoders(data, sel);

    let step = usize::from(sel) % 64 + 1;
    let mut dec = PacketDecoder::new(1 << 16);
    for chunk in data.chunks(step) {
        dec.extend(chunk);
        loop {
            match dec.next_packet() {
                Ok(Some(p)) => payload_decoders(&p.payload, p.seq),
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
});
