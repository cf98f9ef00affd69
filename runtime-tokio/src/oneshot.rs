//! One statement on one shard, outside any client session (`shardgate apply-schema`).

use crate::clock::Clock;
use crate::embedded::EmbeddedShards;
use crate::net::Net;
use shardgate_core::backend::{BackendConfig, BackendConn, BackendEvent};
use shardgate_core::gateway::ShardAddress;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Runs `sql` on the shard at `address`; returns a one-line summary of the answer.
pub async fn run_on_shard<N: Net>(
    net: &N,
    embedded: &EmbeddedShards,
    address: &ShardAddress,
    sql: &str,
) -> Result<String, String> {
    let (user, password) = match address {
        ShardAddress::Mysql { user, password, .. } => (user.clone(), password.clone()),
        ShardAddress::Embedded { .. } => ("root".into(), String::new()),
    };
    let database = Some(address.database().to_string()).filter(|d| !d.is_empty());
    let conn = BackendConn::new(BackendConfig {
        user,
        password,
        database,
        max_packet: 0,
        found_rows: false,
        tls: None,
    });
    match address {
        ShardAddress::Mysql { host, port, .. } => {
            let s = net
                .connect(&format!("{host}:{port}"))
                .await
                .map_err(|e| e.to_string())?;
            drive(s, conn, sql).await
        }
        ShardAddress::Embedded { name, .. } => {
            let s = embedded
                .connect(name, Clock::new())
                .map_err(|e| e.to_string())?;
            drive(s, conn, sql).await
        }
    }
}

async fn drive<S: AsyncRead + AsyncWrite + Unpin>(
    mut s: S,
    mut conn: BackendConn,
    sql: &str,
) -> Result<String, String> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut sent = false;
    let mut rows = 0u64;
    loop {
        while let Some(ev) = conn.poll_event() {
            match ev {
                BackendEvent::Connected { .. } if !sent => {
                    conn.query(sql).map_err(|e| e.to_string())?;
                    sent = true;
                }
                BackendEvent::Row(_) => rows += 1,
                BackendEvent::Done { more: false, .. } => {
                    return Ok(format!("OK, {rows} row(s) returned"))
                }
                BackendEvent::Ok { ok, more: false } => {
                    return Ok(format!("OK, {} row(s) affected", ok.affected_rows))
                }
                BackendEvent::Error(e) | BackendEvent::Closed(e) => return Err(e.to_string()),
                _ => {}
            }
        }
        if let Some(out) = conn.poll_transmit() {
            s.write_all(&out).await.map_err(|e| e.to_string())?;
        }
        let n = s.read(&mut buf).await.map_err(|e| e.to_string())?;
        if n == 0 {
            conn.handle_close();
        } else {
            conn.handle_input(&buf[..n]);
        }
    }
}

/// The version string a MySQL server announces in its handshake (without logging in).
pub async fn server_version<N: Net>(net: &N, address: &ShardAddress) -> Result<String, String> {
    let ShardAddress::Mysql { host, port, .. } = address else {
        return Err("not a MySQL address".into());
    };
    let mut s = net
        .connect(&format!("{host}:{port}"))
        .await
        .map_err(|e| e.to_string())?;
    let mut decoder = shardgate_core::wire::PacketDecoder::new(1 << 20);
    let mut buf = vec![0u8; 4096];
    loop {
        if let Some(p) = decoder
            .next_packet()
            .map_err(|_| "handshake too large".to_string())?
        {
            let hs = shardgate_core::wire::handshake::HandshakeV10::decode(&p.payload)
                .map_err(|e| e.to_string())?;
            let _ = s.shutdown().await;
            return Ok(hs.server_version);
        }
        let n = s.read(&mut buf).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("server closed the connection before its handshake".into());
        }
        decoder.extend(&buf[..n]);
    }
}
