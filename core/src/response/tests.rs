//! Unit tests of the response writer: every place an error can arrive, for text and binary
//! results, with and without DEPRECATE_EOF. Packets are decoded back into a short readable
//! transcript so the assertions say what a client would see.

use super::*;
use crate::wire::consts::ColumnType;
use crate::wire::generic::{decode_eof, decode_err, decode_ok, is_eof};
use crate::wire::PacketDecoder;

const CAPS_EOF: u32 = cap::SERVER_DEFAULT & !cap::DEPRECATE_EOF;
const CAPS_NO_EOF: u32 = cap::SERVER_DEFAULT;

fn cols() -> Vec<ColumnDef> {
    vec![
        ColumnDef::new("id", ColumnType::LongLong),
        ColumnDef::new("name", ColumnType::VarString),
    ]
}

fn row(i: i64) -> Vec<Value> {
    vec![Value::Int(i), Value::text("x")]
}

/// Decodes the written bytes into tokens: `cols2 def def eof row row eof+MORE ok err1064 …`.
fn transcript(buf: &BytesMut, caps: u32) -> String {
    let mut d = PacketDecoder::new(1 << 24);
    d.extend(buf);
    let mut toks = Vec::new();
    let mut expect_seq = 1u8;
    // Result-set parsing state: remaining column defs, then rows until a terminator.
    let mut defs_left = 0usize;
    let mut in_rows = false;
    while let Some(p) = d.next_packet().unwrap() {
        assert_eq!(p.seq, expect_seq, "sequence ids must be consecutive");
        expect_seq = expect_seq.wrapping_add(1);
        let pl = &p.payload[..];
        let more = |st: u16| {
            if st & status::MORE_RESULTS_EXISTS != 0 {
                "+MORE"
            } else {
                ""
            }
        };
        if defs_left > 0 {
            toks.push("def".to_string());
            defs_left -= 1;
            if defs_left == 0 && caps & cap::DEPRECATE_EOF != 0 {
                in_rows = true;
            }
            continue;
        }
        match pl[0] {
            0xff => {
                toks.push(format!("err{}", decode_err(pl).unwrap().code));
                in_rows = false;
            }
            0xfe if is_eof(pl) && caps & cap::DEPRECATE_EOF == 0 => {
                let (_, st) = decode_eof(pl).unwrap();
                toks.push(format!("eof{}", more(st)));
                in_rows = !in_rows && toks.iter().rev().nth(1).is_some_and(|t| t == "def");
            }
            0xfe if in_rows => {
                let ok = decode_ok(pl, caps).unwrap();
                toks.push(format!("end{}", more(ok.status)));
                in_rows = false;
            }
            0x00 if !in_rows => {
                let ok = decode_ok(pl, caps).unwrap();
                toks.push(format!("ok{}", more(ok.status)));
            }
            _ if in_rows => toks.push("row".into()),
            n => {
                toks.push(format!("cols{n}"));
                defs_left = n as usize;
            }
        }
    }
    toks.join(" ")
}

fn writer(caps: u32) -> (ResponseWriter, BytesMut) {
    let mut w = ResponseWriter::new(caps);
    w.start_command(0);
    (w, BytesMut::new())
}

#[test]
fn error_before_any_packet_is_one_err() {
    for caps in [CAPS_EOF, CAPS_NO_EOF] {
        let (mut w, mut b) = writer(caps);
        w.start_statement(false).unwrap();
        assert_eq!(
            w.error(&mut b, &SqlError::syntax("x")),
            ErrorDisposition::Sent
        );
        assert_eq!(transcript(&b, caps), "err1064");
        assert!(w.is_complete());
    }
}

#[test]
fn error_after_fields_replaces_the_terminator() {
    let (mut w, mut b) = writer(CAPS_EOF);
    w.start_statement(false).unwrap();
    w.columns_begin(&mut b, &cols(), RowFormat::Text).unwrap();
    assert_eq!(
        w.error(&mut b, &SqlError::interrupted()),
        ErrorDisposition::Sent
    );
    assert_eq!(transcript(&b, CAPS_EOF), "cols2 def def eof err1317");

    let (mut w, mut b) = writer(CAPS_NO_EOF);
    w.start_statement(false).unwrap();
    w.columns_begin(&mut b, &cols(), RowFormat::Text).unwrap();
    assert_eq!(
        w.error(&mut b, &SqlError::interrupted()),
        ErrorDisposition::Sent
    );
    assert_eq!(transcript(&b, CAPS_NO_EOF), "cols2 def def err1317");
}

#[test]
fn error_after_rows_replaces_the_terminator() {
    for (caps, want) in [
        (CAPS_EOF, "cols2 def def eof row row err2013"),
        (CAPS_NO_EOF, "cols2 def def row row err2013"),
    ] {
        let (mut w, mut b) = writer(caps);
        w.start_statement(false).unwrap();
        w.columns_begin(&mut b, &cols(), RowFormat::Text).unwrap();
        w.row(&mut b, &row(1)).unwrap();
        w.row(&mut b, &row(2)).unwrap();
        assert_eq!(
            w.error(&mut b, &SqlError::backend_lost("shard 80- lost")),
            ErrorDisposition::Sent
        );
        assert_eq!(transcript(&b, caps), want);
        assert!(w.is_complete());
    }
}

#[test]
fn select_then_failing_statement_gives_result_with_more_then_err() {
    for (caps, want) in [
        (CAPS_EOF, "cols2 def def eof row eof+MORE err1064"),
        (CAPS_NO_EOF, "cols2 def def row end+MORE err1064"),
    ] {
        let (mut w, mut b) = writer(caps);
        w.start_statement(true).unwrap();
        w.columns_begin(&mut b, &cols(), RowFormat::Text).unwrap();
        w.row(&mut b, &row(1)).unwrap();
        w.finish(&mut b, 0).unwrap();
        assert_eq!(w.state(), WriterState::Terminated { more_results: true });
        // The failing statement raised its error before producing any packet.
        w.start_statement(false).unwrap();
        assert_eq!(
            w.error(&mut b, &SqlError::syntax("bad")),
            ErrorDisposition::Sent
        );
        assert_eq!(transcript(&b, caps), want);
    }
}

#[test]
fn error_when_previous_result_promised_more_is_the_next_result() {
    // Even without start_statement: the previous terminator said MORE, so ERR is legal.
    let (mut w, mut b) = writer(CAPS_NO_EOF);
    w.start_statement(true).unwrap();
    w.ok(&mut b, &OkInfo::affected(3)).unwrap();
    assert_eq!(
        w.error(&mut b, &SqlError::no_such_table("db.t")),
        ErrorDisposition::Sent
    );
    assert_eq!(transcript(&b, CAPS_NO_EOF), "ok+MORE err1146");
}

#[test]
fn update_then_failing_statement_keeps_the_connection() {
    let (mut w, mut b) = writer(CAPS_NO_EOF);
    w.start_statement(true).unwrap();
    w.ok(&mut b, &OkInfo::affected(1)).unwrap();
    w.start_statement(false).unwrap();
    assert_eq!(
        w.error(&mut b, &SqlError::syntax("bad")),
        ErrorDisposition::Sent
    );
    assert_eq!(transcript(&b, CAPS_NO_EOF), "ok+MORE err1064");
    // Next command on the same connection works.
    w.start_command(0);
    let mut b2 = BytesMut::new();
    w.start_statement(false).unwrap();
    w.ok(&mut b2, &OkInfo::default()).unwrap();
    assert_eq!(transcript(&b2, CAPS_NO_EOF), "ok");
}

#[test]
fn error_after_a_final_ok_has_nowhere_to_go() {
    let (mut w, mut b) = writer(CAPS_NO_EOF);
    w.start_statement(false).unwrap();
    w.ok(&mut b, &OkInfo::default()).unwrap();
    let before = b.len();
    assert_eq!(
        w.error(&mut b, &SqlError::internal("late")),
        ErrorDisposition::Close
    );
    assert_eq!(
        b.len(),
        before,
        "nothing may be written after a final terminator"
    );
}

#[test]
fn error_after_a_final_eof_has_nowhere_to_go() {
    let (mut w, mut b) = writer(CAPS_EOF);
    w.start_statement(false).unwrap();
    w.columns_begin(&mut b, &cols(), RowFormat::Text).unwrap();
    w.finish(&mut b, 0).unwrap();
    assert_eq!(
        w.error(&mut b, &SqlError::internal("late")),
        ErrorDisposition::Close
    );
}

#[test]
fn binary_results_follow_the_same_rules() {
    // COM_STMT_EXECUTE: after fields, after rows, and after a final terminator.
    for caps in [CAPS_EOF, CAPS_NO_EOF] {
        let (mut w, mut b) = writer(caps);
        w.start_statement(false).unwrap();
        w.columns_begin(&mut b, &cols(), RowFormat::Binary).unwrap();
        assert_eq!(
            w.error(&mut b, &SqlError::interrupted()),
            ErrorDisposition::Sent
        );
        assert!(transcript(&b, caps).ends_with("err1317"));

        let (mut w, mut b) = writer(caps);
        w.start_statement(false).unwrap();
        w.columns_begin(&mut b, &cols(), RowFormat::Binary).unwrap();
        w.row(&mut b, &row(1)).unwrap();
        w.row_text(&mut b, b"\x012\x01y").unwrap();
        assert_eq!(
            w.error(&mut b, &SqlError::interrupted()),
            ErrorDisposition::Sent
        );
        assert_eq!(
            w.state(),
            WriterState::Terminated {
                more_results: false
            }
        );
        let t = transcript(&b, caps);
        assert!(t.ends_with("row row err1317"), "{t}");

        let (mut w, mut b) = writer(caps);
        w.start_statement(false).unwrap();
        w.columns_begin(&mut b, &cols(), RowFormat::Binary).unwrap();
        w.row(&mut b, &row(1)).unwrap();
        w.finish(&mut b, 0).unwrap();
        assert_eq!(
            w.error(&mut b, &SqlError::interrupted()),
            ErrorDisposition::Close
        );
    }
}

#[test]
fn binary_rows_from_a_shard_are_relayed_as_they_are() {
    let (mut w, mut b) = writer(CAPS_NO_EOF);
    w.start_statement(false).unwrap();
    w.columns_begin(&mut b, &cols(), RowFormat::Binary).unwrap();
    let mut encoded = BytesMut::new();
    put_binary_row(&mut encoded, &cols(), &row(7)).unwrap();
    let start = b.len();
    w.row_binary(&mut b, &encoded).unwrap();
    assert_eq!(
        &b[start + 4..],
        &encoded[..],
        "the payload goes out byte for byte"
    );
    // A payload that is no binary row (no 0x00 header, or no room for the NULL bitmap)
    // leaves nothing half-written; its ERR replaces the terminator.
    let len = b.len();
    assert!(matches!(
        w.row_binary(&mut b, b"\x01x"),
        Err(RowError::Encode(_))
    ));
    assert!(matches!(
        w.row_binary(&mut b, b"\x00"),
        Err(RowError::Encode(_))
    ));
    assert_eq!(b.len(), len);
    let err = w.row_binary(&mut b, b"").unwrap_err();
    assert_eq!(w.error(&mut b, &err.to_sql_error()), ErrorDisposition::Sent);
    assert_eq!(transcript(&b, CAPS_NO_EOF), "cols2 def def row err1105");
    // Never into a text result.
    let (mut w, mut b) = writer(CAPS_NO_EOF);
    w.start_statement(false).unwrap();
    w.columns_begin(&mut b, &cols(), RowFormat::Text).unwrap();
    assert!(w.row_binary(&mut b, &encoded).is_err());
}

/// A shard's packets for a result of `cols()`: count and definitions (numbered from 9, as
/// another connection's sequence would be), and the text rows `ids`, each its own frames.
fn shard_frames(ids: &[i64]) -> (BytesMut, usize, BytesMut) {
    let mut out = PacketOut::new(9);
    let mut head = BytesMut::new();
    out.write(&mut head, &[2]);
    for c in cols() {
        let start = out.begin(&mut head);
        c.encode(&mut head);
        out.finish(&mut head, start);
    }
    let columns = head.len();
    let mut rows = BytesMut::new();
    for i in ids {
        let start = out.begin(&mut rows);
        put_text_row(&mut rows, &row(*i), &mut Vec::new());
        out.finish(&mut rows, start);
    }
    (head, columns, rows)
}

#[test]
fn relayed_packets_continue_the_answer_and_errors_still_replace_the_terminator() {
    for (caps, want) in [
        (CAPS_EOF, "cols2 def def eof row row row err1317"),
        (CAPS_NO_EOF, "cols2 def def row row row err1317"),
    ] {
        let (mut w, mut b) = writer(caps);
        w.start_statement(false).unwrap();
        let (mut frames, columns, rows) = shard_frames(&[1, 2, 3]);
        let (first, second) = rows.split_at(rows.len() / 3);
        frames.extend_from_slice(first);
        w.relay(&mut b, &frames, columns, 1, RowFormat::Text)
            .unwrap();
        w.relay(&mut b, second, 0, 2, RowFormat::Text).unwrap();
        assert_eq!(w.state(), WriterState::InResultSet { rows_sent: 3 });
        assert_eq!(
            w.error(&mut b, &SqlError::interrupted()),
            ErrorDisposition::Sent
        );
        assert_eq!(transcript(&b, caps), want);
    }
    // Relayed results end like any other, MORE_RESULTS included.
    let (mut w, mut b) = writer(CAPS_NO_EOF);
    w.start_statement(true).unwrap();
    let (mut frames, columns, rows) = shard_frames(&[1]);
    frames.extend_from_slice(&rows);
    w.relay(&mut b, &frames, columns, 1, RowFormat::Text)
        .unwrap();
    w.finish(&mut b, 0).unwrap();
    w.start_statement(false).unwrap();
    w.ok(&mut b, &OkInfo::default()).unwrap();
    assert_eq!(transcript(&b, CAPS_NO_EOF), "cols2 def def row end+MORE ok");
}

#[test]
fn relayed_rows_need_a_result_begun_and_a_begun_result_needs_none() {
    let (_, _, rows) = shard_frames(&[1]);
    let (mut w, mut b) = writer(CAPS_NO_EOF);
    w.start_statement(false).unwrap();
    assert!(w.relay(&mut b, &rows, 0, 1, RowFormat::Text).is_err());
    assert!(b.is_empty());
    let (head, columns, _) = shard_frames(&[]);
    w.relay(&mut b, &head, columns, 0, RowFormat::Text).unwrap();
    assert!(w.relay(&mut b, &head, columns, 0, RowFormat::Text).is_err());
}

#[test]
fn misuse_is_reported_not_written() {
    let (mut w, mut b) = writer(CAPS_NO_EOF);
    w.start_statement(false).unwrap();
    assert!(w.row(&mut b, &row(1)).is_err());
    assert!(w.finish(&mut b, 0).is_err());
    assert!(b.is_empty());
    w.ok(&mut b, &OkInfo::default()).unwrap();
    assert!(w.ok(&mut b, &OkInfo::default()).is_err());
    assert!(w.start_statement(false).is_err());
}

#[test]
fn a_row_that_cannot_be_encoded_leaves_no_partial_packet() {
    let (mut w, mut b) = writer(CAPS_NO_EOF);
    w.start_statement(false).unwrap();
    w.columns_begin(&mut b, &cols(), RowFormat::Binary).unwrap();
    let len = b.len();
    let err = w
        .row(&mut b, &[Value::text("not a number"), Value::Null])
        .unwrap_err();
    assert!(matches!(err, RowError::Encode(_)));
    assert_eq!(b.len(), len);
    assert_eq!(w.error(&mut b, &err.to_sql_error()), ErrorDisposition::Sent);
    assert_eq!(transcript(&b, CAPS_NO_EOF), "cols2 def def err1105");
}

#[test]
fn prepare_answer_with_params_and_no_columns() {
    let (mut w, mut b) = writer(CAPS_EOF);
    w.start_statement(false).unwrap();
    let p = vec![ColumnDef::new("?", ColumnType::VarString); 2];
    w.prepared(&mut b, 7, &p, &[]).unwrap();
    let mut d = PacketDecoder::new(1 << 20);
    d.extend(&b);
    let first = d.next_packet().unwrap().unwrap();
    let ok = PrepareOk::decode(&first.payload).unwrap();
    assert_eq!((ok.stmt_id, ok.num_params, ok.num_columns), (7, 2, 0));
    let mut n = 0;
    while d.next_packet().unwrap().is_some() {
        n += 1;
    }
    assert_eq!(n, 3, "two param defs and one EOF");
    assert!(w.is_complete());
}

/// The payloads written, in order.
fn payloads(buf: &BytesMut) -> Vec<Vec<u8>> {
    let mut d = PacketDecoder::new(1 << 24);
    d.extend(buf);
    std::iter::from_fn(|| d.next_packet().unwrap().map(|p| p.payload.to_vec())).collect()
}

#[test]
fn metadata_caching_marks_every_column_count_and_skips_only_known_definitions() {
    let columns: Arc<[ColumnDef]> = cols().into();
    for caps in [CAPS_EOF, CAPS_NO_EOF] {
        let eof = usize::from(caps & cap::DEPRECATE_EOF == 0);
        let (mut w, mut b) = writer(caps);
        w.set_metadata_caching(true);
        w.start_statement(false).unwrap();
        w.columns_begin_shared(&mut b, columns.clone(), RowFormat::Binary)
            .unwrap();
        w.row(&mut b, &row(1)).unwrap();
        w.finish(&mut b, 0).unwrap();
        let sent = payloads(&b);
        assert_eq!(sent[0], [2, 1], "count 2, definitions follow");
        assert_eq!(sent.len(), 1 + 2 + eof + 1 + 1);

        // Known columns: the count says none follow; the EOF (without DEPRECATE_EOF) stays,
        // and the binary row is still encoded for their types.
        let (mut w2, mut b) = writer(caps);
        w2.set_metadata_caching(true);
        w2.start_statement(false).unwrap();
        w2.columns_begin_known(&mut b, columns.clone(), RowFormat::Binary)
            .unwrap();
        w2.row(&mut b, &row(2)).unwrap();
        w2.finish(&mut b, 0).unwrap();
        let sent = payloads(&b);
        assert_eq!(sent[0], [2, 0]);
        assert_eq!(sent.len(), 1 + eof + 1 + 1);
        if eof == 1 {
            assert!(is_eof(&sent[1]));
        }
        assert_eq!(sent[1 + eof][0], 0, "a binary row");
        assert_eq!(w2.columns(), &columns[..]);
    }
    // Without caching negotiated, "known" columns are described as always.
    let (mut w, mut b) = writer(CAPS_NO_EOF);
    w.start_statement(false).unwrap();
    w.columns_begin_known(&mut b, columns.clone(), RowFormat::Binary)
        .unwrap();
    w.row(&mut b, &row(1)).unwrap();
    w.finish(&mut b, 0).unwrap();
    assert_eq!(transcript(&b, CAPS_NO_EOF), "cols2 def def row end");
}

#[test]
fn relayed_column_blocks_gain_the_metadata_follows_byte_under_caching() {
    for caps in [CAPS_EOF, CAPS_NO_EOF] {
        let eof = usize::from(caps & cap::DEPRECATE_EOF == 0);
        let (mut w, mut b) = writer(caps);
        w.set_metadata_caching(true);
        w.start_statement(false).unwrap();
        let (mut frames, columns, rows) = shard_frames(&[1, 2]);
        let (head, _) = frames.split_at(columns);
        let shard = payloads(&BytesMut::from(head));
        frames.extend_from_slice(&rows);
        w.relay(&mut b, &frames, columns, 2, RowFormat::Text)
            .unwrap();
        w.finish(&mut b, 0).unwrap();
        let sent = payloads(&b);
        assert_eq!(sent[0], [&shard[0][..], &[1]].concat());
        assert_eq!(
            sent[1..3],
            shard[1..3],
            "the definitions as the shard sent them"
        );
        assert_eq!(sent.len(), 3 + eof + 2 + 1);
        assert_eq!(
            w.state(),
            WriterState::Terminated {
                more_results: false
            }
        );
    }
}
