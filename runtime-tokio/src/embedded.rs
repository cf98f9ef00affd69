//! In-process engine shards: a backend connection to `embedded` is an in-memory pipe whose
//! other end is served by the simulated engine, over the real wire protocol.

use crate::clock::Clock;
use shardgate_core::server::ServerConfig;
use shardgate_engine::conn::EngineConn;
use shardgate_engine::Engine;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

/// Pipe capacity: bounds memory per embedded connection and gives backpressure.
const PIPE_BYTES: usize = 256 * 1024;

/// The engines of all embedded shards, by name (e.g. `commerce/-80`).
#[derive(Debug)]
pub struct EmbeddedShards {
    engines: BTreeMap<String, Arc<Mutex<Engine>>>,
    config: Arc<ServerConfig>,
    next_id: AtomicU32,
    /// NOW() on the real calendar ([`EmbeddedShards::use_wall_clock`]); off, the engines count
    /// from the Unix epoch at the driver's time 0, as the deterministic simulation needs.
    wall_clock: AtomicBool,
}

impl EmbeddedShards {
    pub fn new(version: &str) -> EmbeddedShards {
        let config = ServerConfig {
            server_version: version.to_string(),
            ..ServerConfig::default()
        };
        EmbeddedShards {
            engines: BTreeMap::new(),
            config: Arc::new(config),
            next_id: AtomicU32::new(1),
            wall_clock: AtomicBool::new(false),
        }
    }

    /// The engines' NOW() follows the real calendar from now on (the production binary; the
    /// simulation leaves it off so that runs replay byte for byte).
    pub fn use_wall_clock(&self) {
        self.wall_clock.store(true, Ordering::Relaxed);
    }

    /// Adds a shard whose engine holds `databases` (created empty).
    pub fn add(&mut self, name: &str, databases: &[&str]) -> Result<(), shardgate_core::SqlError> {
        let mut engine = Engine::new(&self.config.server_version);
        let mut session = shardgate_engine::EngineSession::new(0, None);
        for db in databases {
            engine.execute(
                &mut session,
                &format!("CREATE DATABASE IF NOT EXISTS `{db}`"),
                0,
            )?;
        }
        self.engines
            .insert(name.to_string(), Arc::new(Mutex::new(engine)));
        Ok(())
    }

    /// Runs statements directly on an embedded shard's engine (set-up of the embedded default).
    pub fn run_sql(
        &self,
        name: &str,
        database: &str,
        statements: &[&str],
    ) -> Result<(), shardgate_core::SqlError> {
        let engine = self.engine(name).ok_or_else(|| {
            shardgate_core::SqlError::internal(format!("no embedded shard {name}"))
        })?;
        let mut engine = engine
            .lock()
            .map_err(|_| shardgate_core::SqlError::internal("engine lock poisoned"))?;
        let mut session = shardgate_engine::EngineSession::new(0, None);
        session.set_database(database, &engine)?;
        for sql in statements {
            engine.execute(&mut session, sql, 0)?;
        }
        Ok(())
    }

    pub fn engine(&self, name: &str) -> Option<Arc<Mutex<Engine>>> {
        self.engines.get(name).cloned()
    }

    /// Opens a connection to shard `name`: returns the client end, serves the other end on a
    /// new task.
    pub fn connect(&self, name: &str, clock: Clock) -> std::io::Result<DuplexStream> {
        let engine = self.engine(name).ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("no embedded shard {name}"),
            )
        })?;
        if self.wall_clock.load(Ordering::Relaxed) {
            let wall_ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64);
            if let Ok(mut e) = engine.lock() {
                e.set_epoch_ms(wall_ms.saturating_sub(clock.now_ms()));
            }
        }
        let (client, server) = tokio::io::duplex(PIPE_BYTES);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let conn = EngineConn::new(self.config.clone(), id, scramble_for(id));
        tokio::spawn(serve(server, conn, engine, clock));
        Ok(client)
    }
}

/// Deterministic per-connection nonce (the engine is a test double; its auth is not a
/// security boundary).
fn scramble_for(id: u32) -> [u8; 20] {
    let mut s = [0u8; 20];
    for (i, b) in s.iter_mut().enumerate() {
        *b = b'A' + ((id as usize * 7 + i * 13) % 26) as u8;
    }
    s
}

/// Serves one engine connection until either side closes.
pub async fn serve<S>(mut stream: S, mut conn: EngineConn, engine: Arc<Mutex<Engine>>, clock: Clock)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let now = clock.now_ms();
        while let Some(out) = conn.poll_transmit(now) {
            if stream.write_all(&out).await.is_err() {
                return close(&mut conn, &engine);
            }
        }
        if conn.is_closed() {
            return close(&mut conn, &engine);
        }
        let read = match conn.poll_timeout() {
            Some(due) => {
                tokio::select! {
                    biased;
                    r = stream.read(&mut buf) => Some(r),
                    _ = clock.sleep_until_ms(due) => None,
                }
            }
            None => Some(stream.read(&mut buf).await),
        };
        let now = clock.now_ms();
        let Ok(mut engine_guard) = engine.lock() else {
            return;
        };
        match read {
            None => conn.handle_timeout(&mut engine_guard, now),
            Some(Ok(0)) | Some(Err(_)) => {
                conn.handle_close(&mut engine_guard);
                return;
            }
            Some(Ok(n)) => conn.handle_input(&mut engine_guard, &buf[..n], now),
        }
    }
}

fn close(conn: &mut EngineConn, engine: &Arc<Mutex<Engine>>) {
    if let Ok(mut e) = engine.lock() {
        conn.handle_close(&mut e);
    }
}
