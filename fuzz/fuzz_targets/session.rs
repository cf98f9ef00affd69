//! A server connection after a valid login as root, fed the fuzz input; every request is
//! answered with something trivial (a one-row result, an OK or an error). The connection must
//! never panic, and what it sends must always be whole packets.
//!
//! Input: the first byte picks the mode.
//! - even: the rest is a raw byte stream, fed in chunks of `first / 2 % 32 + 1` bytes;
//! - odd: the rest is a list of `(len: u8, payload)` commands, each framed here with sequence
//!   id 0 (so the fuzzer reaches the command decoders without learning packet headers).
//!
//! `cargo fuzz run -s none session`

#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use shardgate_core::server::{Request, ServerConfig, ServerConn};
use shardgate_core::wire::binary::ExecuteParams;
use shardgate_core::wire::consts::{cap, ColumnType};
use shardgate_core::wire::handshake::HandshakeResponse;
use shardgate_core::wire::{ColumnDef, OkInfo, PacketDecoder, PacketOut, Value};
use shardgate_core::SqlError;
use std::sync::{Arc, OnceLock};

/// The server's configuration: decoding execute parameters, or checking and keeping them
/// encoded for forwarding (pass-through).
fn config(forward_params: bool) -> Arc<ServerConfig> {
    static CFG: OnceLock<[Arc<ServerConfig>; 2]> = OnceLock::new();
    CFG.get_or_init(|| {
        [false, true].map(|forward_params| {
            Arc::new(ServerConfig {
                forward_params,
                ..ServerConfig::default()
            })
        })
    })[usize::from(forward_params)]
    .clone()
}

/// The login packet of root with an empty password (sequence id 1, after the handshake).
fn login() -> &'static [u8] {
    static LOGIN: OnceLock<Vec<u8>> = OnceLock::new();
    LOGIN.get_or_init(|| {
        let resp = HandshakeResponse {
            capabilities: cap::SERVER_DEFAULT,
            mariadb_capabilities: 0,
            max_packet: 1 << 24,
            charset: 45,
            user: "root".into(),
            auth_response: Vec::new(),
            database: None,
            auth_plugin: Some("mysql_native_password".into()),
            attrs: vec![("_client_name".into(), "fuzz".into())],
        };
        let mut payload = Vec::new();
        resp.encode(&mut payload);
        let mut out = BytesMut::new();
        PacketOut::new(1).write(&mut out, &payload);
        out.to_vec()
    })
}

/// Checks that the server's output is a sequence of whole packets.
struct OutputCheck {
    frames: PacketDecoder,
    packets: usize,
}

impl OutputCheck {
    fn take(&mut self, server: &mut ServerConn) {
        while let Some(b) = server.poll_transmit() {
            self.frames.extend(&b);
            while let Ok(Some(_)) = self.frames.next_packet() {
                self.packets += 1;
            }
            assert_eq!(
                self.frames.buffered(),
                0,
                "server output ends in the middle of a packet"
            );
        }
    }
}

fn answer(server: &mut ServerConn, req: Request) {
    match req {
        Request::Connect { .. } => server.send_ok(&OkInfo::default()),
        Request::Query { sql } => match sql.len() % 3 {
            0 => {
                server.send_columns(&[
                    ColumnDef::new("n", ColumnType::LongLong),
                    ColumnDef::new("s", ColumnType::VarString),
                ]);
                if server.send_row(&[Value::Int(sql.len() as i64), Value::text(&sql)]) {
                    server.send_finish(0);
                }
            }
            1 => server.send_ok(&OkInfo::affected(1)),
            _ => server.send_error(&SqlError::new(1064, "42000", "fuzz says no")),
        },
        Request::Execute {
            sql,
            params: ExecuteParams::Values(params),
            ..
        } => match sql.len() % 3 {
            // Echo the parameters back as a binary row of string columns (numbers in string
            // columns are sent as their text).
            0 => {
                let cols: Vec<ColumnDef> = params
                    .iter()
                    .map(|_| ColumnDef::new("p", ColumnType::VarString))
                    .collect();
                server.send_columns(&cols);
                if server.send_row(&params) {
                    server.send_finish(0);
                }
            }
            // The same values in integer columns: text that is not a number must become an
            // ERR, not a panic or a malformed row.
            1 => {
                let cols: Vec<ColumnDef> = params
                    .iter()
                    .map(|_| ColumnDef::new("p", ColumnType::LongLong))
                    .collect();
                server.send_columns(&cols);
                if server.send_row(&params) {
                    server.send_finish(0);
                }
            }
            _ => server.send_error(&SqlError::new(1105, "HY000", "fuzz says no")),
        },
        // Forwarded parameters passed the check: they must decode.
        Request::Execute {
            params: ExecuteParams::Encoded(e),
            ..
        } => {
            e.values().expect("checked parameters decode");
            server.send_ok(&OkInfo::affected(1))
        }
        Request::InitDb { .. } | Request::ResetConnection | Request::Kill { .. } => {
            server.send_ok(&OkInfo::default())
        }
    }
}

fn drive(server: &mut ServerConn, out: &mut OutputCheck) {
    // Bounded: every request must be answerable; a loop that never ends is a bug too.
    for _ in 0..100_000 {
        match server.poll_request() {
            Some(req) => answer(server, req),
            None => break,
        }
    }
    out.take(server);
}

fuzz_target!(|data: &[u8]| {
    let forward = data.first().is_some_and(|b| b & 1 == 1);
    let mut server = ServerConn::new(config(forward), 1, *b"fuzzfuzzfuzzfuzzfuzz");
    let mut out = OutputCheck {
        frames: PacketDecoder::new(usize::MAX),
        packets: 0,
    };
    out.take(&mut server);
    server.handle_input(login());
    drive(&mut server, &mut out);
    assert!(
        !server.is_closed(),
        "root login failed: {:?}",
        server.close_reason()
    );

    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        let step = usize::from(mode / 2) % 32 + 1;
        for chunk in rest.chunks(step) {
            server.handle_input(chunk);
            drive(&mut server, &mut out);
            if server.is_closed() {
                break;
            }
        }
    } else {
        let mut rest = rest;
        while let Some((&len, tail)) = rest.split_first() {
            let n = usize::from(len).min(tail.len());
            let (payload, tail) = tail.split_at(n);
            rest = tail;
            let mut framed = BytesMut::new();
            PacketOut::new(0).write(&mut framed, payload);
            server.handle_input(&Bytes::from(framed));
            drive(&mut server, &mut out);
            if server.is_closed() {
                break;
            }
        }
    }
    server.handle_close();
    assert!(server.poll_request().is_none(), "request after close");
    out.take(&mut server);
});
