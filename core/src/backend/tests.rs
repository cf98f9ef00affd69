//! A shard connection against a MariaDB that caches result metadata (MariaDB 10.6+): the
//! server's packets are written here by hand, as MariaDB sends them.

use super::*;
use crate::wire::binary::PrepareOk;
use crate::wire::generic::put_ok;
use crate::wire::ColumnType;

/// One packet of the server's, framed with sequence number `seq`.
fn frame(seq: u8, payload: &[u8]) -> BytesMut {
    let mut out = BytesMut::new();
    PacketOut::new(seq).write(&mut out, payload);
    out
}

/// Packets framed with consecutive sequence numbers from `seq`.
fn frames(seq: u8, payloads: &[Vec<u8>]) -> Vec<u8> {
    let mut out = BytesMut::new();
    let mut w = PacketOut::new(seq);
    for p in payloads {
        w.write(&mut out, p);
    }
    out.to_vec()
}

fn ok_eof() -> Vec<u8> {
    let mut v = Vec::new();
    put_ok(&mut v, &OkInfo::default(), 0xfe, cap::PROTOCOL_41);
    v
}

fn column() -> ColumnDef {
    ColumnDef::new("c", ColumnType::VarString)
}

/// A connection authenticated to a MariaDB greeting that offers metadata caching
/// (`offer`), with the handshake response it sent.
fn connect(offer: bool) -> (BackendConn, HandshakeResponse) {
    let mut conn = BackendConn::new(BackendConfig {
        user: "root".into(),
        ..BackendConfig::default()
    });
    let greeting = HandshakeV10 {
        server_version: "5.5.5-10.11.19-MariaDB".into(),
        connection_id: 9,
        scramble: [b'a'; 20],
        capabilities: cap::SERVER_DEFAULT & !cap::LONG_PASSWORD,
        mariadb_capabilities: if offer {
            mariadb_cap::CACHE_METADATA
        } else {
            0
        },
        charset: 45,
        status: status::AUTOCOMMIT,
        auth_plugin: auth::NATIVE_PASSWORD.into(),
    };
    let mut g = Vec::new();
    greeting.encode(&mut g);
    conn.handle_input(&frame(0, &g));
    let sent = conn.poll_transmit().expect("a handshake response");
    let resp = HandshakeResponse::decode(&sent[4..]).unwrap();
    let mut ok = Vec::new();
    put_ok(&mut ok, &OkInfo::default(), 0, cap::PROTOCOL_41);
    conn.handle_input(&frame(2, &ok));
    assert!(matches!(
        conn.poll_event(),
        Some(BackendEvent::Connected { .. })
    ));
    (conn, resp)
}

/// The prepare answer of a statement with one parameter and one column `c`.
fn prepare_answer(stmt_id: u32) -> Vec<u8> {
    let mut head = Vec::new();
    PrepareOk {
        stmt_id,
        num_columns: 1,
        num_params: 1,
        warnings: 0,
    }
    .encode(&mut head);
    let mut param = Vec::new();
    ColumnDef::new("?", ColumnType::LongLong).encode(&mut param);
    let mut col = Vec::new();
    column().encode(&mut col);
    frames(1, &[head, param, col])
}

/// An execute's answer: one row, with or without the column definition.
fn execute_answer(with_metadata: bool) -> Vec<u8> {
    let mut packets = vec![vec![1, u8::from(with_metadata)]];
    if with_metadata {
        let mut col = Vec::new();
        column().encode(&mut col);
        packets.push(col);
    }
    packets.push(vec![0, 0, 1, b'x']);
    packets.push(ok_eof());
    frames(1, &packets)
}

fn events(conn: &mut BackendConn) -> Vec<BackendEvent> {
    std::iter::from_fn(|| conn.poll_event()).collect()
}

#[test]
fn metadata_caching_is_asked_of_a_mariadb_that_offers_it() {
    let (conn, resp) = connect(true);
    assert_eq!(
        resp.capabilities & cap::LONG_PASSWORD,
        0,
        "CLIENT_MYSQL clear"
    );
    assert_eq!(resp.mariadb_capabilities, mariadb_cap::CACHE_METADATA);
    assert!(conn.cache_metadata);
    let (conn, resp) = connect(false);
    assert_eq!(resp.mariadb_capabilities, 0);
    assert!(!conn.cache_metadata);
}

#[test]
fn skipped_metadata_comes_from_the_statements_prepare() {
    let (mut conn, _) = connect(true);
    let sql: Arc<str> = Arc::from("select c from t where id = ?");
    conn.execute_sql(sql.clone(), vec![Value::Int(1)]).unwrap();
    conn.transmitted();
    conn.handle_input(&prepare_answer(7));
    conn.transmitted();
    // The first execute already comes without metadata: the prepare sent the same.
    conn.handle_input(&execute_answer(false));
    match &events(&mut conn)[..] {
        [BackendEvent::Columns(cols), BackendEvent::Row(row), BackendEvent::Done { more: false, .. }] =>
        {
            assert_eq!(cols[..], [column()]);
            assert_eq!(row[..], [0, 0, 1, b'x']);
        }
        other => panic!("unexpected events {other:?}"),
    }
    assert!(conn.is_idle());
    // Relayed (pass-through): the columns come decoded, the rows as the server's packets.
    conn.execute_sql(sql, vec![Value::Int(2)]).unwrap();
    conn.relay_result(u64::MAX);
    conn.handle_input(&execute_answer(false));
    match &events(&mut conn)[..] {
        [BackendEvent::Columns(cols), BackendEvent::Relayed {
            columns: 0,
            rows: 1,
            ..
        }, BackendEvent::Done { .. }] => {
            assert_eq!(cols[..], [column()]);
        }
        other => panic!("unexpected events {other:?}"),
    }
}

#[test]
fn metadata_sent_again_replaces_the_remembered_one() {
    let (mut conn, _) = connect(true);
    conn.prepare("select c from t").unwrap();
    conn.handle_input(&prepare_answer(3));
    let _ = events(&mut conn);
    // The table changed: the execute describes its column again, under another name.
    conn.execute(3, &[Value::Int(1)]).unwrap();
    let mut renamed = Vec::new();
    ColumnDef::new("d", ColumnType::VarString).encode(&mut renamed);
    conn.handle_input(&frames(
        1,
        &[vec![1, 1], renamed, vec![0, 0, 1, b'y'], ok_eof()],
    ));
    let _ = events(&mut conn);
    conn.execute(3, &[Value::Int(1)]).unwrap();
    conn.handle_input(&execute_answer(false));
    match &events(&mut conn)[..] {
        [BackendEvent::Columns(cols), ..] => assert_eq!(cols[0].name, "d"),
        other => panic!("unexpected events {other:?}"),
    }
}

#[test]
fn skipped_metadata_of_a_statement_never_described_is_a_protocol_error() {
    let (mut conn, _) = connect(true);
    conn.execute(42, &[]).unwrap();
    conn.handle_input(&execute_answer(false));
    match &events(&mut conn)[..] {
        [BackendEvent::Closed(e)] => assert!(e.message.contains("never described"), "{e:?}"),
        other => panic!("unexpected events {other:?}"),
    }
    // A closed statement's columns are forgotten with it.
    let (mut conn, _) = connect(true);
    conn.prepare("select c from t").unwrap();
    conn.handle_input(&prepare_answer(5));
    let _ = events(&mut conn);
    conn.close_statement(5).unwrap();
    conn.execute(5, &[]).unwrap();
    conn.handle_input(&execute_answer(false));
    assert!(matches!(&events(&mut conn)[..], [BackendEvent::Closed(_)]));
}

#[test]
fn the_metadata_byte_is_read_only_under_caching() {
    assert_eq!(column_count(&[1, 0], true), Some((1, false)));
    assert_eq!(column_count(&[1, 1], true), Some((1, true)));
    // Absent (a server that did not take the capability after all): definitions follow.
    assert_eq!(column_count(&[1], true), Some((1, true)));
    assert_eq!(column_count(&[1, 0], false), Some((1, true)));
    assert_eq!(column_count(&[0], true), None);
}
