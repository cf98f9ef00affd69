//! A server connection and a backend (client) connection wired together with no sockets,
//! stepped by hand (the quinn-style `Pair`). The handler is a tiny scripted executor.

use super::*;
use crate::backend::{BackendConfig, BackendConn, BackendEvent};
use crate::wire::consts::ColumnType;

struct Pair {
    server: ServerConn,
    client: BackendConn,
    events: Vec<BackendEvent>,
    /// Everything the server transmitted, for tests of the bytes themselves.
    sent: Vec<u8>,
    /// Everything the client transmitted.
    client_sent: Vec<u8>,
}

/// Answers requests: `select N` -> one INT column with N; a statement that fails to parse ->
/// its 1064; `boom` after rows -> ERR mid-result; anything else -> OK.
fn handle(server: &mut ServerConn, req: Request) {
    match req {
        Request::Connect { database, .. } => match database.as_deref() {
            Some("nope") => {
                server.send_error(&SqlError::new(1049, "42000", "Unknown database 'nope'"))
            }
            _ => server.send_ok(&OkInfo::default()),
        },
        Request::Query { sql } => answer(server, &sql, &[]),
        Request::Execute { sql, params, .. } => match params.into_values() {
            Ok(values) => answer(server, &sql, &values),
            Err(_) => server.send_error(&SqlError::wrong_arguments("mysqld_stmt_execute")),
        },
        _ => server.send_ok(&OkInfo::default()),
    }
}

fn answer(server: &mut ServerConn, sql: &str, params: &[Value]) {
    if sql == "stream then boom" {
        server.send_columns(&[ColumnDef::new("n", ColumnType::LongLong)]);
        server.send_row(&[Value::Int(1)]);
        server.send_error(&SqlError::interrupted());
        return;
    }
    let mut stmt = match crate::sql::parse_one(sql) {
        Ok(s) => s,
        Err(e) => return server.send_error(&e),
    };
    if let Err(e) = crate::sql::bind_placeholders(&mut stmt, params) {
        return server.send_error(&e);
    }
    let text = stmt.to_string();
    if let Some(n) = text.strip_prefix("SELECT ") {
        server.send_columns(&[ColumnDef::new("n", ColumnType::LongLong)]);
        server.send_row(&[Value::Int(n.parse().unwrap_or(-1))]);
        server.send_finish(0);
    } else {
        server.send_ok(&OkInfo::affected(1));
    }
}

impl Pair {
    fn new(user: &str, password: &str, database: Option<&str>) -> Pair {
        Pair::offering(cap::SERVER_DEFAULT, user, password, database)
    }

    /// A pair whose server offers `caps`.
    fn offering(caps: u32, user: &str, password: &str, database: Option<&str>) -> Pair {
        Pair::configured(|c| c.capabilities = caps, user, password, database)
    }

    /// A pair whose server offers `caps` and no metadata caching (a MySQL server): the
    /// client relays whole results, column block included.
    fn relaying(caps: u32) -> Pair {
        Pair::configured(
            |c| {
                c.capabilities = caps;
                c.mariadb_capabilities = 0;
            },
            "root",
            "",
            None,
        )
    }

    /// A pair whose server's configuration `edit` changed.
    fn configured(
        edit: impl FnOnce(&mut ServerConfig),
        user: &str,
        password: &str,
        database: Option<&str>,
    ) -> Pair {
        let mut cfg = ServerConfig::default();
        edit(&mut cfg);
        cfg.users.set_password("app", "secret");
        cfg.max_allowed_packet = 4096;
        let server = ServerConn::new(Arc::new(cfg), 7, *b"0123456789abcdefghij");
        let client = BackendConn::new(BackendConfig {
            user: user.into(),
            password: password.into(),
            database: database.map(str::to_string),
            max_packet: 0,
            found_rows: false,
            tls: None,
        });
        let mut p = Pair {
            server,
            client,
            events: Vec::new(),
            sent: Vec::new(),
            client_sent: Vec::new(),
        };
        p.drive();
        p
    }

    fn drive(&mut self) {
        self.drive_with(handle)
    }

    /// [`Pair::drive`] with another request handler.
    fn drive_with(&mut self, mut handler: impl FnMut(&mut ServerConn, Request)) {
        for _ in 0..100 {
            let mut moved = false;
            while let Some(req) = self.server.poll_request() {
                handler(&mut self.server, req);
            }
            if let Some(b) = self.server.poll_transmit() {
                self.sent.extend_from_slice(&b);
                self.client.handle_input(&b);
                moved = true;
            }
            if self.server.is_closed() {
                self.client.handle_close();
            }
            while let Some(e) = self.client.poll_event() {
                self.events.push(e);
            }
            if let Some(b) = self.client.poll_transmit() {
                self.client_sent.extend_from_slice(&b);
                self.server.handle_input(&b);
                moved = true;
            }
            if !moved {
                return;
            }
        }
        panic!("pair did not settle");
    }

    fn take(&mut self) -> Vec<String> {
        std::mem::take(&mut self.events)
            .into_iter()
            .map(|e| match e {
                BackendEvent::Connected { .. } => "connected".to_string(),
                BackendEvent::Columns(c) => format!("cols{}", c.len()),
                BackendEvent::Row(_) => "row".into(),
                BackendEvent::Relayed { columns, rows, .. } => {
                    format!("relayed{}/{rows}", if columns > 0 { "+cols" } else { "" })
                }
                BackendEvent::Done { more, .. } => {
                    format!("done{}", if more { "+more" } else { "" })
                }
                BackendEvent::Ok { more, .. } => format!("ok{}", if more { "+more" } else { "" }),
                BackendEvent::Prepared {
                    stmt_id, params, ..
                } => format!("prepared{stmt_id}/{params}"),
                BackendEvent::Error(e) => format!("err{}", e.code),
                BackendEvent::Closed(e) => format!("closed{}", e.code),
            })
            .collect()
    }

    fn query(&mut self, sql: &str) -> Vec<String> {
        self.client.query(sql).unwrap();
        self.drive();
        self.take()
    }
}

#[test]
fn root_with_empty_password_connects() {
    let mut p = Pair::new("root", "", None);
    assert_eq!(p.take(), ["connected"]);
    assert_eq!(p.query("select 5"), ["cols1", "row", "done"]);
}

#[test]
fn password_users_connect_and_bad_credentials_get_1045() {
    let mut p = Pair::new("app", "secret", None);
    assert_eq!(p.take(), ["connected"]);
    let mut p = Pair::new("app", "wrong", None);
    assert_eq!(p.take(), ["closed1045"]);
    assert!(p.server.is_closed());
    let mut p = Pair::new("nobody", "", None);
    assert_eq!(p.take(), ["closed1045"]);
}

#[test]
fn an_unknown_default_database_refuses_the_connection() {
    let mut p = Pair::new("root", "", Some("nope"));
    assert_eq!(p.take(), ["closed1049"]);
}

#[test]
fn multi_statement_error_is_the_next_result() {
    let mut p = Pair::new("root", "", None);
    p.take();
    assert_eq!(
        p.query("select 1; selct oops; select 2"),
        ["cols1", "row", "done+more", "err1064"]
    );
    assert_eq!(p.query("update t set a = 1; selct"), ["ok+more", "err1064"]);
    assert_eq!(
        p.query("select 1; select 2"),
        ["cols1", "row", "done+more", "cols1", "row", "done"]
    );
    assert_eq!(p.query("select 3"), ["cols1", "row", "done"]);
}

#[test]
fn mid_stream_error_replaces_the_terminator() {
    let mut p = Pair::new("root", "", None);
    p.take();
    assert_eq!(p.query("stream then boom"), ["cols1", "row", "err1317"]);
    assert_eq!(p.query("select 1"), ["cols1", "row", "done"]);
}

#[test]
fn prepare_with_a_syntax_error_is_1064_and_the_connection_lives() {
    let mut p = Pair::new("root", "", None);
    p.take();
    p.client
        .prepare("delete s from t as s where s version convert unsigned limit ?")
        .unwrap();
    p.drive();
    assert_eq!(p.take(), ["err1064"]);
    assert_eq!(p.query("select 1"), ["cols1", "row", "done"]);
    p.client.prepare("select ?").unwrap();
    p.drive();
    assert_eq!(p.take(), ["prepared1/1"]);
}

#[test]
fn unknown_statement_ids_get_one_err_or_nothing() {
    let mut p = Pair::new("root", "", None);
    p.take();
    p.client.execute(99, &[]).unwrap();
    p.drive();
    assert_eq!(p.take(), ["err1243"]);
    p.client
        .raw_command(&[com::STMT_RESET, 99, 0, 0, 0])
        .unwrap();
    p.drive();
    assert_eq!(p.take(), ["err1243"]);
    // CLOSE and SEND_LONG_DATA have no response, not even for unknown ids.
    p.client.close_statement(99).unwrap();
    p.drive();
    assert!(p.server.poll_transmit().is_none());
    assert_eq!(p.query("select 1"), ["cols1", "row", "done"]);
}

#[test]
fn unknown_commands_get_1047_and_the_connection_lives() {
    let mut p = Pair::new("root", "", None);
    p.take();
    p.client.raw_command(&[0x99, 1, 2]).unwrap();
    p.drive();
    assert_eq!(p.take(), ["err1047"]);
    p.client.ping().unwrap();
    p.drive();
    assert_eq!(p.take(), ["ok"]);
}

#[test]
fn oversized_packets_get_1153_then_close() {
    let mut p = Pair::new("root", "", None);
    p.take();
    let big = format!("select '{}'", "x".repeat(5000));
    assert_eq!(p.query(&big), ["err1153", "closed2013"]);
    assert!(p
        .server
        .close_reason()
        .unwrap()
        .contains("max_allowed_packet"));
}

#[test]
fn empty_queries_get_1065() {
    let mut p = Pair::new("root", "", None);
    p.take();
    assert_eq!(p.query("  ;  "), ["err1065"]);
    assert_eq!(p.query("select 1"), ["cols1", "row", "done"]);
    // One statement with stray separators is one result, not a batch.
    assert_eq!(p.query(" select 4 ;; "), ["cols1", "row", "done"]);
}

mod robustness {
    use super::*;
    use proptest::prelude::*;

    /// The bytes of an authenticated client's first packets (handshake response for root).
    fn logged_in_pair() -> Pair {
        let mut p = Pair::new("root", "", None);
        p.take();
        p
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        /// Arbitrary bytes after login never panic; the connection either stays open or was
        /// closed with a logged reason (never silently).
        #[test]
        fn arbitrary_command_streams_end_in_err_or_a_logged_close(
            chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 1..8)
        ) {
            let mut p = logged_in_pair();
            for c in &chunks {
                p.server.handle_input(c);
                p.drive();
            }
            if p.server.is_closed() {
                prop_assert!(p.server.close_reason().is_some(), "closed without a reason");
            }
        }

        /// Framed garbage commands (valid packet headers, random payloads) never close the
        /// connection; `select 1` is answered afterwards.
        #[test]
        fn framed_garbage_commands_leave_the_connection_usable(
            payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..48), 1..6)
        ) {
            let mut p = logged_in_pair();
            let server = &mut p.server;
            for body in &payloads {
                // Keep COM_QUIT out: it legitimately ends the connection.
                if body[0] == com::QUIT {
                    continue;
                }
                let mut framed = BytesMut::new();
                PacketOut::new(0).write(&mut framed, body);
                server.handle_input(&framed);
                while let Some(req) = server.poll_request() {
                    handle(server, req);
                }
                let _ = server.poll_transmit();
                prop_assert!(!server.is_closed(), "closed by command {:?}: {:?}", body, server.close_reason());
            }
            let mut framed = BytesMut::new();
            PacketOut::new(0).write(&mut framed, b"\x03select 1");
            server.handle_input(&framed);
            while let Some(req) = server.poll_request() {
                handle(server, req);
            }
            let out = server.poll_transmit().unwrap_or_default();
            let mut d = PacketDecoder::new(1 << 20);
            d.extend(&out);
            let first = d.next_packet().unwrap().map(|p| p.payload.to_vec());
            // One column, and (metadata caching being negotiated) its definition follows.
            prop_assert_eq!(first, Some(vec![1u8, 1]), "select 1 must start a one-column result");
        }

        /// Bytes before login: a bad handshake is refused with an ERR and a logged close.
        #[test]
        fn garbage_handshakes_are_refused_with_a_reason(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            let mut server = ServerConn::new(Arc::new(ServerConfig::default()), 1, *b"0123456789abcdefghij");
            let _ = server.poll_transmit();
            let mut framed = BytesMut::new();
            PacketOut::new(1).write(&mut framed, &data);
            server.handle_input(&framed);
            while let Some(req) = server.poll_request() {
                handle(&mut server, req);
            }
            if server.is_closed() {
                prop_assert!(server.close_reason().is_some());
            }
        }
    }
}

// ---- TLS upgrade, caching_sha2_password full authentication, secure transport ----

mod tls_auth {
    use super::super::*;
    use crate::users::parse_auth_file;
    use crate::wire::generic::decode_err;
    use crate::wire::handshake::put_ssl_request;

    const NONCE: [u8; 20] = *b"0123456789abcdefghij";
    const CLIENT_CAPS: u32 = cap::PROTOCOL_41
        | cap::SECURE_CONNECTION
        | cap::PLUGIN_AUTH
        | cap::PLUGIN_AUTH_LENENC_CLIENT_DATA
        | cap::CONNECT_WITH_DB
        | cap::SSL;

    fn config(tls: bool, require: bool) -> Arc<ServerConfig> {
        Arc::new(ServerConfig {
            users: parse_auth_file(
                r#"{
                    "plain": [{"Password": "secret"}],
                    "hashed": [{"MysqlNativePassword": "*14E65567ABDB5135D0CFD9A70B3032C179A49EE7"}]
                }"#,
            )
            .unwrap(),
            tls,
            require_secure_transport: require,
            ..ServerConfig::default()
        })
    }

    fn frame(seq: u8, payload: &[u8]) -> Vec<u8> {
        let mut b = BytesMut::new();
        PacketOut::new(seq).write(&mut b, payload);
        b.to_vec()
    }

    /// The server's packets since the last call: (seq, payload).
    fn packets(s: &mut ServerConn) -> Vec<(u8, Vec<u8>)> {
        let mut d = PacketDecoder::new(1 << 20);
        if let Some(b) = s.poll_transmit() {
            d.extend(&b);
        }
        let mut out = Vec::new();
        while let Ok(Some(p)) = d.next_packet() {
            out.push((p.seq, p.payload.to_vec()));
        }
        out
    }

    fn response(user: &str, plugin: &str, auth: Vec<u8>) -> Vec<u8> {
        let r = HandshakeResponse {
            capabilities: CLIENT_CAPS,
            mariadb_capabilities: 0,
            max_packet: 1 << 24,
            charset: 45,
            user: user.into(),
            auth_response: auth,
            database: None,
            auth_plugin: Some(plugin.into()),
            attrs: Vec::new(),
        };
        let mut p = Vec::new();
        r.encode(&mut p);
        p
    }

    /// Runs the handler side: accept every connection.
    fn accept(s: &mut ServerConn) -> bool {
        let mut connected = false;
        while let Some(req) = s.poll_request() {
            if let Request::Connect { .. } = req {
                connected = true;
                s.send_ok(&OkInfo::default());
            }
        }
        connected
    }

    /// A fresh connection that has gone through SSLRequest and the (driver's) TLS handshake.
    fn over_tls(cfg: &Arc<ServerConfig>) -> ServerConn {
        let mut s = ServerConn::new(cfg.clone(), 1, NONCE);
        let hs = packets(&mut s);
        let caps = HandshakeV10::decode(&hs[0].1).unwrap().capabilities;
        assert_ne!(caps & cap::SSL, 0, "CLIENT_SSL offered");
        let mut ssl = Vec::new();
        put_ssl_request(&mut ssl, CLIENT_CAPS, 0, 1 << 24, 45);
        // The TLS ClientHello often arrives in the same segment as the SSLRequest.
        let mut input = frame(1, &ssl);
        input.extend_from_slice(b"\x16\x03\x01hello");
        s.handle_input(&input[..10]);
        assert!(!accept(&mut s));
        s.handle_input(&input[10..]);
        assert!(!accept(&mut s));
        assert!(s.poll_transmit().is_none(), "nothing is said before TLS");
        assert_eq!(
            s.poll_tls_upgrade().as_deref(),
            Some(&b"\x16\x03\x01hello"[..])
        );
        assert_eq!(s.poll_tls_upgrade(), None, "the upgrade is handed out once");
        assert!(!s.is_tls());
        s.handle_tls_established();
        assert!(s.is_tls());
        s
    }

    #[test]
    fn ssl_request_upgrade_then_plain_password_fast_path() {
        let cfg = config(true, false);
        let mut s = over_tls(&cfg);
        let auth = auth::scramble_sha2(b"secret", &NONCE);
        s.handle_input(&frame(2, &response("plain", auth::CACHING_SHA2, auth)));
        assert!(accept(&mut s));
        assert_eq!(
            packets(&mut s),
            [(3, vec![0x01, 0x03]), (4, vec![0, 0, 0, 2, 0, 0, 0])]
        );
        assert!(s.is_authenticated());
    }

    #[test]
    fn full_authentication_over_tls_then_the_fast_path_from_the_cache() {
        let cfg = config(true, false);
        let mut s = over_tls(&cfg);
        let auth = auth::scramble_sha2(b"secret", &NONCE);
        s.handle_input(&frame(2, &response("hashed", auth::CACHING_SHA2, auth)));
        assert!(!accept(&mut s));
        assert_eq!(
            packets(&mut s),
            [(3, vec![0x01, 0x04])],
            "perform full auth"
        );
        s.handle_input(&frame(4, b"secret\0"));
        assert!(accept(&mut s));
        let p = packets(&mut s);
        assert_eq!((p[0].0, p[0].1[0]), (5, 0x00), "OK after full auth: {p:?}");
        // A second connection of the same user takes the fast path.
        let mut s = over_tls(&cfg);
        let auth = auth::scramble_sha2(b"secret", &NONCE);
        s.handle_input(&frame(2, &response("hashed", auth::CACHING_SHA2, auth)));
        assert!(accept(&mut s));
        assert_eq!(packets(&mut s)[0], (3, vec![0x01, 0x03]));
    }

    #[test]
    fn full_authentication_with_a_wrong_password_is_1045() {
        let cfg = config(true, false);
        let mut s = over_tls(&cfg);
        let auth = auth::scramble_sha2(b"wrong", &NONCE);
        s.handle_input(&frame(2, &response("hashed", auth::CACHING_SHA2, auth)));
        assert!(!accept(&mut s));
        assert_eq!(packets(&mut s), [(3, vec![0x01, 0x04])]);
        s.handle_input(&frame(4, b"wrong\0"));
        assert!(!accept(&mut s));
        let p = packets(&mut s);
        let e = decode_err(&p[0].1).unwrap();
        assert_eq!((p[0].0, e.code, &e.state), (5, 1045, b"28000"));
        assert_eq!(
            e.message,
            "Access denied for user 'hashed'@'%' (using password: YES)"
        );
        assert!(s.is_closed());
        assert!(s.close_reason().unwrap().contains("authentication failed"));
    }

    #[test]
    fn a_public_key_request_is_refused_with_1045() {
        let cfg = config(true, false);
        let mut s = over_tls(&cfg);
        let auth = auth::scramble_sha2(b"secret", &NONCE);
        s.handle_input(&frame(2, &response("hashed", auth::CACHING_SHA2, auth)));
        assert!(!accept(&mut s));
        packets(&mut s);
        s.handle_input(&frame(4, &[0x02]));
        assert!(!accept(&mut s));
        let e = decode_err(&packets(&mut s)[0].1).unwrap();
        assert_eq!(e.code, 1045);
        assert!(e.message.contains("RSA"), "{}", e.message);
        assert!(s.is_closed());
    }

    #[test]
    fn without_tls_a_hash_only_user_is_switched_to_native_password() {
        let cfg = config(true, false);
        let mut s = ServerConn::new(cfg, 1, NONCE);
        s.set_peer_host("10.0.0.7");
        packets(&mut s);
        let auth = auth::scramble_sha2(b"secret", &NONCE);
        s.handle_input(&frame(1, &response("hashed", auth::CACHING_SHA2, auth)));
        assert!(!accept(&mut s));
        let p = packets(&mut s);
        assert_eq!((p[0].0, p[0].1[0]), (2, 0xfe), "AuthSwitchRequest");
        s.handle_input(&frame(3, &auth::scramble_native(b"secret", &NONCE)));
        assert!(accept(&mut s));
        assert_eq!(packets(&mut s)[0].0, 4);
        // A wrong one names the peer host.
        let mut s = ServerConn::new(config(false, false), 1, NONCE);
        s.set_peer_host("10.0.0.7");
        packets(&mut s);
        s.handle_input(&frame(
            1,
            &response("plain", auth::NATIVE_PASSWORD, vec![1; 20]),
        ));
        assert!(!accept(&mut s));
        let e = decode_err(&packets(&mut s)[0].1).unwrap();
        assert_eq!(
            e.message,
            "Access denied for user 'plain'@'10.0.0.7' (using password: YES)"
        );
    }

    #[test]
    fn require_secure_transport_refuses_plain_clients_with_3159() {
        let cfg = config(true, true);
        let mut s = ServerConn::new(cfg.clone(), 1, NONCE);
        packets(&mut s);
        let auth = auth::scramble_native(b"secret", &NONCE);
        s.handle_input(&frame(1, &response("plain", auth::NATIVE_PASSWORD, auth)));
        assert!(!accept(&mut s));
        let p = packets(&mut s);
        let e = decode_err(&p[0].1).unwrap();
        assert_eq!((p[0].0, e.code, &e.state), (2, 3159, b"HY000"));
        assert_eq!(
            e.message,
            "Connections using insecure transport are prohibited while --require_secure_transport=ON."
        );
        assert!(s.is_closed());
        assert!(s.close_reason().unwrap().contains("TLS"));
        // Over TLS the same client is welcome.
        let mut s = over_tls(&cfg);
        let auth = auth::scramble_native(b"secret", &NONCE);
        s.handle_input(&frame(2, &response("plain", auth::NATIVE_PASSWORD, auth)));
        assert!(accept(&mut s));
    }

    #[test]
    fn ssl_request_without_tls_configured_is_refused() {
        let mut s = ServerConn::new(config(false, false), 1, NONCE);
        let caps = HandshakeV10::decode(&packets(&mut s)[0].1)
            .unwrap()
            .capabilities;
        assert_eq!(caps & cap::SSL, 0, "CLIENT_SSL not offered");
        let mut ssl = Vec::new();
        put_ssl_request(&mut ssl, CLIENT_CAPS, 0, 1 << 24, 45);
        s.handle_input(&frame(1, &ssl));
        assert!(!accept(&mut s));
        assert_eq!(s.poll_tls_upgrade(), None);
        assert_eq!(decode_err(&packets(&mut s)[0].1).unwrap().code, 1045);
        assert!(s.is_closed());
    }

    mod robustness {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

            /// Arbitrary bytes in the connection phase of a TLS-offering, secure-transport
            /// server — after an SSLRequest or not, with the driver "completing" TLS whenever
            /// asked — never panic, and a close always has a reason.
            #[test]
            fn arbitrary_connection_phase_input_never_panics(
                ssl_first in any::<bool>(),
                chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..80), 1..8)
            ) {
                let mut s = ServerConn::new(config(true, true), 1, NONCE);
                packets(&mut s);
                if ssl_first {
                    let mut ssl = Vec::new();
                    put_ssl_request(&mut ssl, CLIENT_CAPS, 0, 1 << 24, 45);
                    s.handle_input(&frame(1, &ssl));
                }
                for c in &chunks {
                    s.handle_input(c);
                    accept(&mut s);
                    let _ = s.poll_transmit();
                    if s.poll_tls_upgrade().is_some() {
                        s.handle_tls_established();
                        accept(&mut s);
                    }
                }
                if s.is_closed() {
                    prop_assert!(s.close_reason().is_some(), "closed without a reason");
                }
            }
        }
    }

    #[test]
    fn ssl_request_decoding() {
        let mut ssl = Vec::new();
        put_ssl_request(&mut ssl, CLIENT_CAPS, 0, 1 << 24, 45);
        assert_eq!(ssl.len(), 32);
        assert!(is_ssl_request(&ssl));
        // Without CLIENT_SSL, or with a body (a full HandshakeResponse), it is not one.
        let mut no_ssl = Vec::new();
        put_ssl_request(&mut no_ssl, CLIENT_CAPS & !cap::SSL, 0, 1 << 24, 45);
        assert!(!is_ssl_request(&no_ssl));
        assert!(!is_ssl_request(&response(
            "plain",
            auth::NATIVE_PASSWORD,
            vec![]
        )));
        assert!(!is_ssl_request(&ssl[..31]));
    }
}

mod backend_tls {
    use super::super::*;
    use crate::backend::{BackendConfig, BackendConn, BackendEvent};

    fn shuttle(server: &mut ServerConn, client: &mut BackendConn) {
        for _ in 0..20 {
            while let Some(req) = server.poll_request() {
                if let Request::Connect { .. } = req {
                    server.send_ok(&OkInfo::default());
                }
            }
            if let Some(b) = server.poll_transmit() {
                client.handle_input(&b);
            }
            // The "driver": SSLRequest in clear, then both sides over (imagined) TLS.
            if let Some(req) = client.poll_tls_upgrade() {
                server.handle_input(&req);
                assert!(server.poll_request().is_none());
                assert_eq!(server.poll_tls_upgrade().as_deref(), Some(&b""[..]));
                server.handle_tls_established();
                client.handle_tls_established();
            }
            if let Some(b) = client.poll_transmit() {
                server.handle_input(&b);
            }
        }
    }

    fn config(password: &str, tls: bool) -> BackendConfig {
        BackendConfig {
            user: "app".into(),
            password: password.into(),
            database: None,
            max_packet: 0,
            found_rows: false,
            tls: tls.then(|| "shard.example".to_string()),
        }
    }

    #[test]
    fn a_backend_connection_switches_to_tls_before_authenticating() {
        let mut cfg = ServerConfig {
            tls: true,
            require_secure_transport: true,
            ..ServerConfig::default()
        };
        cfg.users.set_password("app", "secret");
        let cfg = Arc::new(cfg);
        let mut server = ServerConn::new(cfg.clone(), 1, *b"0123456789abcdefghij");
        let mut client = BackendConn::new(config("secret", true));
        shuttle(&mut server, &mut client);
        assert!(matches!(
            client.poll_event(),
            Some(BackendEvent::Connected { .. })
        ));
        assert!(client.is_tls() && server.is_tls());
        // The same server refuses a plain client (3159), and a TLS client of a server without
        // TLS fails clearly (2026).
        let mut server = ServerConn::new(cfg, 2, *b"0123456789abcdefghij");
        let mut client = BackendConn::new(config("secret", false));
        shuttle(&mut server, &mut client);
        assert!(matches!(client.poll_event(), Some(BackendEvent::Closed(e)) if e.code == 3159));
        let mut server = ServerConn::new(Arc::new(ServerConfig::default()), 3, [b'x'; 20]);
        let mut client = BackendConn::new(config("", true));
        shuttle(&mut server, &mut client);
        assert!(matches!(client.poll_event(), Some(BackendEvent::Closed(e)) if e.code == 2026));
    }
}

#[test]
fn execute_sql_prepares_once_per_connection_and_relays_binary_rows() {
    let mut p = Pair::new("root", "", None);
    p.take();
    let sql: Arc<str> = Arc::from("select ?");
    p.client
        .execute_sql(sql.clone(), vec![Value::Int(5)])
        .unwrap();
    p.drive();
    // The prepare's answer is consumed: only the execute's result surfaces.
    let events = std::mem::take(&mut p.events);
    match &events[..] {
        [BackendEvent::Columns(_), BackendEvent::Row(row), BackendEvent::Done { .. }] => {
            assert_eq!(row[0], 0, "a binary row starts with 0x00");
        }
        other => panic!("unexpected events {other:?}"),
    }
    assert_eq!(p.client.prepared_count(), 1);
    p.client
        .execute_sql(sql.clone(), vec![Value::Int(6)])
        .unwrap();
    p.drive();
    assert_eq!(p.take(), ["cols1", "row", "done"]);
    assert_eq!(p.server.prepared_count(), 1, "prepared on the server once");
    // Another parameter count than the server's statement has: its error, nothing sent.
    p.client.execute_sql(sql.clone(), Vec::new()).unwrap();
    assert!(p.client.poll_transmit().is_none());
    p.drive();
    assert_eq!(p.take(), ["err1210"]);
    assert!(p.client.is_idle());
}

/// The relayed packets of `events`, as (sequence id, payload) pairs.
fn relayed_packets(events: &[BackendEvent]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    for e in events {
        if let BackendEvent::Relayed { frames, .. } = e {
            let mut d = PacketDecoder::new(1 << 24);
            d.extend(frames);
            while let Some(p) = d.next_packet().unwrap() {
                out.push((p.seq, p.payload.to_vec()));
            }
        }
    }
    out
}

#[test]
fn relayed_results_come_as_whole_packets_with_terminators_decoded() {
    let mut p = Pair::relaying(cap::SERVER_DEFAULT);
    p.take();
    p.client.query("select 5").unwrap();
    p.client.relay_result(u64::MAX);
    p.drive();
    let events = std::mem::take(&mut p.events);
    let packets = relayed_packets(&events);
    // Column count, its definition, the row; the OK-as-EOF terminator is decoded.
    assert_eq!(packets.len(), 3);
    assert_eq!(packets[0], (1, vec![1]));
    assert_eq!(packets[2], (3, b"\x015".to_vec()));
    let names: Vec<String> = {
        p.events = events;
        p.take()
    };
    assert_eq!(names, ["relayed+cols/1", "done"]);
    // The next command decodes again unless asked.
    assert_eq!(p.query("select 6"), ["cols1", "row", "done"]);

    // Past the row budget rows come decoded (the caller's cap answers them).
    p.client.query("select 7").unwrap();
    p.client.relay_result(0);
    p.drive();
    assert_eq!(p.take(), ["relayed+cols/0", "row", "done"]);

    // An error mid-result is decoded, after the rows relayed before it.
    p.client.query("stream then boom").unwrap();
    p.client.relay_result(u64::MAX);
    p.drive();
    assert_eq!(p.take(), ["relayed+cols/1", "err1317"]);

    // A prepared statement's binary rows relay the same way, after a prepare consumed inside.
    p.client
        .execute_sql(Arc::from("select ?"), vec![Value::Int(9)])
        .unwrap();
    p.client.relay_result(u64::MAX);
    p.drive();
    let events = std::mem::take(&mut p.events);
    let packets = relayed_packets(&events);
    assert_eq!(packets.len(), 3);
    assert_eq!(packets[2].1[0], 0, "a binary row starts with 0x00");
    p.events = events;
    assert_eq!(p.take(), ["relayed+cols/1", "done"]);
    assert!(p.client.is_idle());
}

#[test]
fn relay_never_splits_a_column_block_whatever_the_reads() {
    let mut p = Pair::relaying(cap::SERVER_DEFAULT);
    p.take();
    p.client.query("select 5").unwrap();
    p.client.relay_result(u64::MAX);
    let sent = p.client.poll_transmit().unwrap();
    p.server.handle_input(&sent);
    while let Some(req) = p.server.poll_request() {
        handle(&mut p.server, req);
    }
    let answer = p.server.poll_transmit().unwrap();
    for b in answer.iter() {
        p.client.handle_input(&[*b]);
    }
    let events: Vec<BackendEvent> = std::iter::from_fn(|| p.client.poll_event()).collect();
    match &events[..] {
        [BackendEvent::Relayed {
            frames,
            columns,
            rows: 0,
        }, BackendEvent::Relayed {
            columns: 0,
            rows: 1,
            ..
        }, BackendEvent::Done { .. }] => {
            assert_eq!(
                *columns,
                frames.len(),
                "the whole column block and nothing else"
            );
        }
        other => panic!("unexpected events {other:?}"),
    }
}

#[test]
fn relay_from_a_server_without_deprecate_eof_leaves_out_its_eof() {
    let mut p = Pair::relaying(cap::SERVER_DEFAULT & !cap::DEPRECATE_EOF);
    p.take();
    p.client.query("select 5").unwrap();
    p.client.relay_result(u64::MAX);
    p.drive();
    let events = std::mem::take(&mut p.events);
    // Count and definition, then (the EOF between, consumed) the row.
    assert_eq!(relayed_packets(&events).len(), 3);
    p.events = events;
    assert_eq!(p.take(), ["relayed+cols/0", "relayed/1", "done"]);
}

#[test]
fn forwarded_executes_keep_the_clients_encoding_and_its_types() {
    let mut p = Pair::configured(|c| c.forward_params = true, "root", "", None);
    p.take();
    p.client.prepare("select ?").unwrap();
    p.drive();
    let [BackendEvent::Prepared { stmt_id, .. }] = &p.events[..] else {
        panic!("unexpected events {:?}", p.events);
    };
    let id = stmt_id.to_le_bytes();
    p.take();
    let header = [com::STMT_EXECUTE, id[0], id[1], id[2], id[3], 0, 1, 0, 0, 0];
    // One DATETIME parameter, its type bound with this execute: 2024-01-02.
    let bound = [0u8, 1, ColumnType::DateTime as u8, 0, 4, 0xe8, 0x07, 1, 2];
    // The next execute leaves the type out, as clients do.
    let unbound = [0u8, 0, 4, 0xe8, 0x07, 1, 3];
    let mut forward = |params: &[u8]| {
        p.client
            .raw_command(&[&header[..], params].concat())
            .unwrap();
        let sent = p.client.poll_transmit().unwrap();
        p.server.handle_input(&sent);
        let req = p.server.poll_request();
        // Answer anything to keep the pair in step.
        p.server.send_ok(&OkInfo::default());
        let answer = p.server.poll_transmit().unwrap();
        p.client.handle_input(&answer);
        match req {
            Some(Request::Execute {
                params: ExecuteParams::Encoded(e),
                ..
            }) => {
                let mut out = BytesMut::new();
                e.put(&mut out);
                (out.to_vec(), e.values().unwrap())
            }
            other => panic!("unexpected request {other:?}"),
        }
    };
    let (first, values) = forward(&bound);
    assert_eq!(first, bound, "forwarded as the client encoded it");
    assert_eq!(values, [Value::text("2024-01-02 00:00:00")]);
    let (second, _) = forward(&unbound);
    assert_eq!(second[..4], bound[..4], "its DATETIME type is put back");
    assert_eq!(second[4..], unbound[2..]);
    p.drive();
    assert_eq!(p.take(), ["ok", "ok"]);
    // A value cut short is refused as decoding refuses it, and the connection lives.
    p.client
        .raw_command(&[&header[..], &unbound[..5]].concat())
        .unwrap();
    p.drive();
    assert_eq!(p.take(), ["err1210"]);
    assert_eq!(p.query("select 2"), ["cols1", "row", "done"]);
}

#[test]
fn forwarded_executes_bind_their_types_once_per_statement() {
    let mut p = Pair::new("root", "", None);
    p.take();
    let sql: Arc<str> = Arc::from("select ?");
    // One BIGINT parameter (7) as a client encoded it, types bound; `flags` 0x80: unsigned.
    let encoded = |flags: u8| {
        let body = Bytes::from(
            [
                &[0u8, 1, ColumnType::LongLong as u8, flags][..],
                &7i64.to_le_bytes(),
            ]
            .concat(),
        );
        let types = body.slice(2..4);
        ExecuteParams::Encoded(EncodedParams::cut(&body, 0, body.len(), 1, &types).unwrap())
    };
    // Runs one execute; returns the new-params-bound flag it went out with.
    let run = |p: &mut Pair, params: ExecuteParams, fail: bool| {
        p.client_sent.clear();
        p.client.execute_sql(sql.clone(), params).unwrap();
        p.drive_with(|server, req| match req {
            Request::Execute { .. } if fail => server.send_error(&SqlError::interrupted()),
            other => handle(server, other),
        });
        let mut d = PacketDecoder::new(1 << 20);
        d.extend(&p.client_sent);
        let exec = std::iter::from_fn(|| d.next_packet().unwrap())
            .find(|packet| packet.payload[0] == com::STMT_EXECUTE)
            .unwrap();
        // Command, id, cursor flags, iteration count, the NULL bitmap; then the flag.
        (exec.payload[11], exec.payload.len())
    };
    let (flag, bound_len) = run(&mut p, encoded(0), false);
    assert_eq!(flag, 1, "the first execute binds the types");
    assert_eq!(p.take(), ["cols1", "row", "done"]);
    let (flag, len) = run(&mut p, encoded(0), false);
    assert_eq!(
        (flag, len),
        (0, bound_len - 2),
        "the same types are left out"
    );
    assert_eq!(
        p.take(),
        ["cols1", "row", "done"],
        "and the server still has them"
    );
    assert_eq!(
        run(&mut p, encoded(0x80), false).0,
        1,
        "other types are bound"
    );
    assert_eq!(run(&mut p, encoded(0x80), true).0, 0);
    p.take();
    assert_eq!(
        run(&mut p, encoded(0x80), false).0,
        1,
        "again after a failed execute"
    );
    // Values go out typed by value: the types held afterwards are not the client's.
    p.client_sent.clear();
    p.client
        .execute_sql(sql.clone(), vec![Value::text("x")])
        .unwrap();
    p.drive();
    assert_eq!(
        run(&mut p, encoded(0x80), false).0,
        1,
        "again after typed values"
    );
    p.take();
    // The same through `execute` with the statement's id (the server's first: 1).
    assert_eq!(run(&mut p, encoded(0x80), false).0, 0);
    p.client.execute(1, &[Value::Int(7)]).unwrap();
    p.drive();
    assert_eq!(p.take(), ["cols1", "row", "done", "cols1", "row", "done"]);
    assert_eq!(
        run(&mut p, encoded(0x80), false).0,
        1,
        "again after `execute`"
    );
    p.take();
    // A reset connection holds nothing.
    p.client.reset_connection().unwrap();
    p.drive();
    p.take();
    assert_eq!(
        run(&mut p, encoded(0x80), false).0,
        1,
        "again after a reset"
    );
    assert_eq!(p.take(), ["cols1", "row", "done"]);
}

#[test]
fn execute_sql_answers_a_refused_prepare_with_its_error_and_stays_usable() {
    let mut p = Pair::new("root", "", None);
    p.take();
    p.client
        .execute_sql(Arc::from("selec oops ?"), vec![Value::Int(1)])
        .unwrap();
    p.drive();
    assert_eq!(p.take(), ["err1064"]);
    assert!(p.client.is_idle());
    assert_eq!(p.client.prepared_count(), 0);
    assert_eq!(p.query("select 2"), ["cols1", "row", "done"]);
}

#[test]
fn forgotten_statements_are_closed_before_the_next_command_and_prepared_again() {
    let mut p = Pair::new("root", "", None);
    p.take();
    let sql: Arc<str> = Arc::from("select ?");
    p.client
        .execute_sql(sql.clone(), vec![Value::Int(1)])
        .unwrap();
    p.drive();
    p.take();
    p.client.forget_statements();
    assert_eq!(p.client.prepared_count(), 0);
    assert_eq!(
        p.server.prepared_count(),
        1,
        "closed with the next command, not before"
    );
    assert_eq!(p.query("select 2"), ["cols1", "row", "done"]);
    assert_eq!(p.server.prepared_count(), 0);
    p.client.execute_sql(sql, vec![Value::Int(3)]).unwrap();
    p.drive();
    assert_eq!(p.take(), ["cols1", "row", "done"]);
    assert_eq!(p.server.prepared_count(), 1);
    // COM_RESET_CONNECTION drops the server's statements: nothing left to close.
    p.client.reset_connection().unwrap();
    p.drive();
    assert_eq!(p.take(), ["ok"]);
    assert_eq!(p.client.prepared_count(), 0);
}

/// MariaDB's metadata caching toward a client that negotiated it (libmariadb does).
mod metadata_caching {
    use super::*;

    /// Executes `select ?` and answers it with `columns` and one row; returns the payloads
    /// the server sent for the execute and what the client made of them.
    fn execute(p: &mut Pair, columns: &[ColumnDef]) -> (Vec<Vec<u8>>, Vec<BackendEvent>) {
        p.client
            .execute_sql(Arc::from("select ?"), vec![Value::Int(1)])
            .unwrap();
        p.sent.clear();
        p.drive_with(|server, req| match req {
            Request::Execute { .. } => {
                server.send_columns(columns);
                server.send_row(&vec![Value::Int(1); columns.len()]);
                server.send_finish(0);
            }
            other => handle(server, other),
        });
        let mut d = PacketDecoder::new(1 << 20);
        d.extend(&p.sent);
        let mut payloads = Vec::new();
        while let Some(packet) = d.next_packet().unwrap() {
            payloads.push(packet.payload.to_vec());
        }
        (payloads, std::mem::take(&mut p.events))
    }

    fn int_columns(names: &[&str]) -> Vec<ColumnDef> {
        names
            .iter()
            .map(|n| ColumnDef::new(*n, ColumnType::LongLong))
            .collect()
    }

    fn received_columns(events: &[BackendEvent]) -> Vec<String> {
        match events {
            [BackendEvent::Columns(c), BackendEvent::Row(_), BackendEvent::Done { .. }] => {
                c.iter().map(|c| c.name.clone()).collect()
            }
            other => panic!("unexpected events {other:?}"),
        }
    }

    #[test]
    fn repeated_executes_send_only_the_column_count() {
        let mut p = Pair::new("root", "", None);
        p.take();
        assert!(p.server.writer.caches_metadata(), "the client asked for it");
        let one = int_columns(&["m"]);
        // The prepare described `n` (its describe query's column): the first execute's
        // other columns are described.
        let (sent, events) = execute(&mut p, &one);
        assert!(
            sent.contains(&vec![1, 1]),
            "count 1, definitions follow: {sent:?}"
        );
        assert_eq!(received_columns(&events), ["m"]);
        // The same columns again: the count with "metadata follows" 0, then the row at once.
        let (sent, events) = execute(&mut p, &one);
        assert_eq!(sent[sent.len() - 3], [1, 0]);
        assert_eq!(
            sent[sent.len() - 2][0],
            0,
            "the binary row follows the count"
        );
        assert_eq!(received_columns(&events), ["m"], "the client's own copy");
        // Other columns are described again, and then held.
        let two = int_columns(&["a", "b"]);
        let (sent, events) = execute(&mut p, &two);
        assert_eq!(sent[sent.len() - 5], [2, 1]);
        assert_eq!(received_columns(&events), ["a", "b"]);
        let (sent, events) = execute(&mut p, &two);
        assert_eq!(sent[sent.len() - 3], [2, 0]);
        assert_eq!(received_columns(&events), ["a", "b"]);
    }

    #[test]
    fn a_first_execute_skips_the_columns_its_prepare_described() {
        let mut p = Pair::new("root", "", None);
        p.take();
        // `handle` describes `select ?` with one LONGLONG column `n`, as the execute answers.
        let (sent, events) = execute(&mut p, &int_columns(&["n"]));
        assert_eq!(
            sent[sent.len() - 3],
            [1, 0],
            "held since the prepare: {sent:?}"
        );
        assert_eq!(received_columns(&events), ["n"]);
    }

    #[test]
    fn text_results_carry_the_byte_and_always_their_definitions() {
        let mut p = Pair::new("root", "", None);
        p.take();
        for _ in 0..2 {
            p.sent.clear();
            assert_eq!(p.query("select 5"), ["cols1", "row", "done"]);
            let mut d = PacketDecoder::new(1 << 20);
            d.extend(&p.sent);
            assert_eq!(d.next_packet().unwrap().unwrap().payload.as_ref(), [1, 1]);
        }
    }

    #[test]
    fn a_client_without_it_gets_plain_column_counts() {
        let mut p = Pair::configured(|c| c.mariadb_capabilities = 0, "root", "", None);
        p.take();
        assert!(!p.server.writer.caches_metadata());
        let one = int_columns(&["n"]);
        for _ in 0..2 {
            let (sent, events) = execute(&mut p, &one);
            assert_eq!(sent[sent.len() - 4], [1], "count, definition, row, OK");
            assert_eq!(received_columns(&events), ["n"]);
        }
    }

    #[test]
    fn the_greeting_offers_it_the_mariadb_way() {
        let cfg = Arc::new(ServerConfig::default());
        let mut server = ServerConn::new(cfg, 1, [7; 20]);
        let greeting = server.poll_transmit().unwrap();
        let hs = HandshakeV10::decode(&greeting[4..]).unwrap();
        assert_eq!(
            hs.capabilities & cap::LONG_PASSWORD,
            0,
            "CLIENT_MYSQL cleared"
        );
        assert_eq!(hs.mariadb_capabilities, mariadb_cap::CACHE_METADATA);
        assert_ne!(
            hs.capabilities & cap::SESSION_TRACK,
            0,
            "offered as by MySQL 5.7+ and MariaDB 10.2+ (mysql2 reads OK info by it)"
        );
        let cfg = Arc::new(ServerConfig {
            mariadb_capabilities: 0,
            ..ServerConfig::default()
        });
        let mut server = ServerConn::new(cfg, 1, [7; 20]);
        let greeting = server.poll_transmit().unwrap();
        let hs = HandshakeV10::decode(&greeting[4..]).unwrap();
        assert_ne!(hs.capabilities & cap::LONG_PASSWORD, 0);
        assert_eq!(hs.mariadb_capabilities, 0);
    }
}

/// COM_STMT_PREPARE of a SELECT describes its columns with a query of the handler's.
mod describe {
    use super::*;

    fn typed_columns() -> Vec<ColumnDef> {
        vec![
            ColumnDef::new("id", ColumnType::Long),
            ColumnDef::new("email", ColumnType::VarString),
        ]
    }

    /// Prepares `sql` with `answer` answering every query; returns the queries it saw and
    /// the client's events.
    fn prepare(
        p: &mut Pair,
        sql: &str,
        mut answer: impl FnMut(&mut ServerConn),
    ) -> (Vec<String>, Vec<BackendEvent>) {
        p.client.prepare(sql).unwrap();
        let mut seen = Vec::new();
        p.sent.clear();
        p.drive_with(|server, req| match req {
            Request::Query { sql } => {
                seen.push(sql);
                answer(server);
            }
            other => handle(server, other),
        });
        (seen, std::mem::take(&mut p.events))
    }

    fn prepared_columns(events: &[BackendEvent]) -> Vec<(String, ColumnType)> {
        match events {
            [BackendEvent::Prepared { columns, .. }] => columns
                .iter()
                .map(|c| (c.name.clone(), c.col_type))
                .collect(),
            other => panic!("unexpected events {other:?}"),
        }
    }

    #[test]
    fn a_select_is_prepared_with_the_columns_its_describe_query_returns() {
        let mut p = Pair::new("root", "", None);
        p.take();
        let (seen, events) = prepare(&mut p, "select * from t where id >= ? limit ?", |s| {
            s.send_columns(&typed_columns());
            s.send_row(&[Value::Int(1), Value::Null]);
            s.send_finish(0);
        });
        assert_eq!(seen, ["SELECT * FROM t WHERE id >= 0 LIMIT 0"]);
        assert_eq!(
            prepared_columns(&events),
            [
                ("id".to_string(), ColumnType::Long),
                ("email".to_string(), ColumnType::VarString)
            ]
        );
        let mut d = PacketDecoder::new(1 << 20);
        d.extend(&p.sent);
        let mut packets = 0;
        while let Some(packet) = d.next_packet().unwrap() {
            assert_ne!(packet.payload[0], 0xff);
            packets += 1;
        }
        assert_eq!(
            packets, 5,
            "header, 2 params, 2 columns: nothing of the describe's row"
        );
        assert_eq!(p.server.prepared_count(), 1);
        assert_eq!(p.query("select 1"), ["cols1", "row", "done"]);
    }

    #[test]
    fn an_error_of_the_statement_is_the_prepare_answer() {
        let mut p = Pair::new("root", "", None);
        p.take();
        let (_, events) = prepare(&mut p, "select * from nosuch where a = ?", |s| {
            s.send_error(&SqlError::new(
                1146,
                "42S02",
                "Table 'db.nosuch' doesn't exist",
            ))
        });
        assert!(matches!(&events[..], [BackendEvent::Error(e)] if e.code == 1146));
        assert_eq!(p.server.prepared_count(), 0, "no statement was created");
        assert_eq!(p.query("select 1"), ["cols1", "row", "done"]);
    }

    #[test]
    fn another_error_leaves_the_columns_named_in_the_text() {
        let mut p = Pair::new("root", "", None);
        p.take();
        let (_, events) = prepare(&mut p, "select a, b as c from t where a = ?", |s| {
            s.send_error(&SqlError::backend_lost("shard down"))
        });
        assert_eq!(
            prepared_columns(&events),
            [
                ("a".to_string(), ColumnType::VarString),
                ("c".to_string(), ColumnType::VarString)
            ]
        );
        assert_eq!(p.server.prepared_count(), 1);
    }

    #[test]
    fn columns_that_came_before_another_error_still_describe_it() {
        let mut p = Pair::new("root", "", None);
        p.take();
        let (_, events) = prepare(&mut p, "select * from t", |s| {
            s.send_columns(&typed_columns());
            s.send_error(&SqlError::backend_lost(
                "one shard of the scatter went away",
            ))
        });
        assert_eq!(
            prepared_columns(&events)[0],
            ("id".to_string(), ColumnType::Long)
        );
        // The statement's own error after columns is still the prepare's ERR.
        let (_, events) = prepare(&mut p, "select * from t", |s| {
            s.send_columns(&typed_columns());
            s.send_error(&SqlError::new(
                1054,
                "42S22",
                "Unknown column 'x' in 'field list'",
            ))
        });
        assert!(matches!(&events[..], [BackendEvent::Error(e)] if e.code == 1054));
        assert_eq!(p.server.prepared_count(), 1);
    }

    #[test]
    fn a_relayed_column_block_is_decoded() {
        for caps in [
            cap::SERVER_DEFAULT,
            cap::SERVER_DEFAULT & !cap::DEPRECATE_EOF,
        ] {
            let mut p = Pair::offering(caps, "root", "", None);
            p.take();
            let mut block = BytesMut::new();
            let mut out = PacketOut::new(1);
            out.write(&mut block, &[2]);
            for c in typed_columns() {
                let mut v = Vec::new();
                c.encode(&mut v);
                out.write(&mut block, &v);
            }
            if caps & cap::DEPRECATE_EOF == 0 {
                let mut v = Vec::new();
                crate::wire::generic::put_eof(&mut v, 0, 0);
                out.write(&mut block, &v);
            }
            let (_, events) = prepare(&mut p, "select * from t", |s| {
                assert!(s.send_relayed(&block, block.len(), 0));
                s.send_finish(0);
            });
            assert_eq!(prepared_columns(&events).len(), 2);
            assert_eq!(prepared_columns(&events)[1].1, ColumnType::VarString);
        }
    }

    #[test]
    fn statements_without_result_set_are_answered_at_once() {
        let mut p = Pair::new("root", "", None);
        p.take();
        let (seen, events) = prepare(&mut p, "insert into t values (?, ?)", |_| {
            panic!("no describe query for an INSERT")
        });
        assert!(seen.is_empty());
        assert!(
            matches!(&events[..], [BackendEvent::Prepared { params: 2, columns, .. }] if columns.is_empty())
        );
    }
}
