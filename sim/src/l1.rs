//! The L1 world: the real runtime-tokio [`Driver`] on turmoil's simulated network.
//!
//! # Hosts
//! - `gateway`: [`Driver::serve`] over [`TurmoilNet`] (runtime-tokio's [`Net`] trait on
//!   `turmoil::net`), listening on port 3306; the topology's shards are
//!   [`ShardAddress::Mysql`] addresses `shard-<n>:3306`;
//! - `shard-<n>`: the simulated engine behind the real wire protocol, one task per accepted
//!   connection ([`EngineConn`]), with the shard's output passing the same [`FaultFilter`] and
//!   its input the same [`RequestFilter`] as in L0; the engine outlives crashes (its data is
//!   durable), open transactions roll back when their connection dies;
//! - `client-<name>`: one turmoil client per scripted client, carrying a [`ScriptedClient`]'s
//!   bytes over a simulated TCP stream.
//!
//! # Time and determinism
//! turmoil advances simulated time in 1 ms ticks and runs every host's tokio runtime (seeded
//! through `--cfg tokio_unstable`) on this thread; the simulation's seed and epoch are fixed,
//! message latency is 0 unless a scenario sets it (`latency ...`). The same seed therefore
//! gives the same transcript. [`Harness::settle`] steps until the network is quiet: no message
//! in flight on a link that is not held, and no byte moved by a client or shard for two steps.
//!
//! # Faults through turmoil
//! - `partition`: turmoil *holds* the gateway↔target link (segments wait, as TCP would keep
//!   retransmitting them; turmoil's own partition drops segments for good, which TCP never does
//!   on a live connection), and a new connection to a cut-off shard is refused at once, as
//!   turmoil refuses a connect across a partition; `heal` releases everything;
//! - `crash`/`restart`: turmoil crashes and bounces the shard host; while it is down a connect
//!   to it is refused at once, as a host whose server process died answers (turmoil itself
//!   models a powered-off host, whose SYN waits for the restart: the driver has no connect
//!   timeout, so a session would wait that long);
//! - `latency gateway shard=X 20ms`: turmoil's per-link latency;
//! - `disconnect a`: the client drops its socket;
//! - shard faults (`fault ...`), stalls and drops: applied by the shard host's tasks.

use crate::client::{Answer, ScriptedClient};
use crate::fault::{FaultFilter, FilterAction, Intercept, RequestFilter, ShardFault};
use crate::harness::{ConnectOptions, Endpoint, Harness, SessionState, TopologySpec};
use crate::link::LinkItem;
use crate::logs::LogCapture;
use crate::trace::{Decoded, Kind, Tracker};
use crate::world::{close_reason, ENGINE_VERSION};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use shardgate_core::gateway::{Gateway, Keyspace, Shard, ShardAddress, Topology};
use shardgate_core::server::ServerConfig;
use shardgate_core::vschema::parse_vschema;
use shardgate_core::wire::Value;
use shardgate_engine::conn::EngineConn;
use shardgate_engine::{Engine, EngineSession};
use shardgate_runtime::driver::Driver;
use shardgate_runtime::embedded::EmbeddedShards;
use shardgate_runtime::net::Net;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::sync::Notify;

/// The port every simulated server listens on.
const PORT: u16 = 3306;
/// Steps `settle` may take before the world is declared livelocked.
const SETTLE_STEPS_MAX: u64 = 200_000;
/// Simulated time `next_answer` waits before giving up.
const ANSWER_WAIT_MS_MAX: u64 = 120_000;

// ---- the network seam ----

/// runtime-tokio's [`Net`] on turmoil's TCP. Connects to a host the world has cut off fail at
/// once with `ConnectionRefused`; writes are split at seeded random sizes when packet
/// splitting is on.
#[derive(Clone)]
pub struct TurmoilNet {
    /// Hosts cut off by a partition, or whose server process is down: connects are refused.
    cut: Arc<Mutex<BTreeSet<String>>>,
    down: Arc<Mutex<BTreeSet<String>>>,
    split: Arc<AtomicBool>,
    rng: Arc<Mutex<ChaCha8Rng>>,
}

impl TurmoilNet {
    fn new(seed: u64) -> TurmoilNet {
        TurmoilNet {
            cut: Arc::new(Mutex::new(BTreeSet::new())),
            down: Arc::new(Mutex::new(BTreeSet::new())),
            split: Arc::new(AtomicBool::new(false)),
            rng: Arc::new(Mutex::new(ChaCha8Rng::seed_from_u64(seed ^ 0x7e7e_0001))),
        }
    }

    fn wrap(&self, inner: turmoil::net::TcpStream) -> SimStream {
        SimStream {
            inner,
            split: self.split.clone(),
            rng: self.rng.clone(),
        }
    }
}

/// A turmoil TCP stream whose writes may be cut into seeded random pieces.
pub struct SimStream {
    inner: turmoil::net::TcpStream,
    split: Arc<AtomicBool>,
    rng: Arc<Mutex<ChaCha8Rng>>,
}

impl AsyncRead for SimStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for SimStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let me = self.get_mut();
        let mut n = buf.len();
        if n > 1 && me.split.load(Ordering::Relaxed) {
            if let Ok(mut rng) = me.rng.lock() {
                n = rng.random_range(1..=n);
            }
        }
        Pin::new(&mut me.inner).poll_write(cx, &buf[..n])
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// A turmoil listener that wraps what it accepts like [`TurmoilNet::connect`] does.
pub struct SimListener {
    inner: turmoil::net::TcpListener,
    net: TurmoilNet,
}

impl Net for TurmoilNet {
    type Stream = SimStream;
    type Listener = SimListener;

    async fn bind(&self, addr: &str) -> io::Result<Self::Listener> {
        Ok(SimListener {
            inner: turmoil::net::TcpListener::bind(addr).await?,
            net: self.clone(),
        })
    }

    async fn accept(listener: &mut Self::Listener) -> io::Result<(Self::Stream, String)> {
        let (s, peer) = listener.inner.accept().await?;
        Ok((listener.net.wrap(s), peer.to_string()))
    }

    async fn connect(&self, addr: &str) -> io::Result<Self::Stream> {
        let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h).to_string();
        let cut = self.cut.lock().map(|c| c.contains(&host)).unwrap_or(false);
        if cut {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionRefused,
                format!("{addr}: partitioned"),
            ));
        }
        // A crashed server process: its host answers a SYN with RST. (turmoil models a host
        // that is off: the SYN would wait for its restart, and the driver has no connect
        // timeout.)
        let down = self.down.lock().map(|c| c.contains(&host)).unwrap_or(false);
        if down {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionRefused,
                format!("{addr}: connection refused (server down)"),
            ));
        }
        let s = turmoil::net::TcpStream::connect(addr).await?;
        Ok(self.wrap(s))
    }

    fn local_addr(listener: &Self::Listener) -> io::Result<String> {
        Ok(listener.inner.local_addr()?.to_string())
    }
}

// ---- shared state between the harness and the hosts' tasks ----

struct ClientState {
    client: ScriptedClient,
    trace: Tracker,
    notify: Rc<Notify>,
    /// The client asked to hang up.
    hung_up: bool,
    /// The socket is gone (either side).
    closed: bool,
    /// The server closed it (EOF or reset seen by the client).
    closed_by_server: bool,
    connection_id: Option<u32>,
    host: String,
}

struct ShardState {
    /// `-80`, or `commerce/-80` when ambiguous.
    display: String,
    host: String,
    engine: Arc<Mutex<Engine>>,
    config: Arc<ServerConfig>,
    armed: VecDeque<ShardFault>,
    stalled: bool,
    crashed: bool,
    /// Bumped by `fault drop`: connections of an older generation close.
    drop_generation: u64,
    next_conn_id: u32,
    /// Connection tasks alive (accepted and not yet closed).
    live: BTreeSet<u32>,
    notify: Rc<Notify>,
}

struct Shared {
    record: bool,
    transcript: String,
    clients: BTreeMap<String, ClientState>,
    shards: Vec<ShardState>,
    violations: Vec<String>,
    /// Bytes moved by clients and shards (quiet detection).
    activity: u64,
    /// Simulated milliseconds, as of the last step.
    now_ms: u64,
    rng: ChaCha8Rng,
    split: bool,
}

impl Shared {
    fn line(&mut self, prefix: &str, text: &str) {
        if self.record {
            let now = self.now_ms;
            self.transcript.push_str(&format!("@{now}ms "));
            self.transcript.push_str(prefix);
            if !prefix.is_empty() {
                self.transcript.push_str("  ");
            }
            self.transcript.push_str(text);
            self.transcript.push('\n');
        }
    }

    fn emit(&mut self, prefix: &str, packets: &[Decoded], toward_client: bool) {
        for d in packets {
            if let Kind::Violation(v) = &d.kind {
                if toward_client {
                    self.violations.push(format!("{prefix}: {v}"));
                }
            }
            if let Some(l) = &d.line {
                let l = l.clone();
                self.line(prefix, &l);
            }
        }
    }

    /// A piece size for a write, when packets are split.
    fn piece(&mut self, len: usize) -> usize {
        if self.split && len > 1 {
            self.rng.random_range(1..=len)
        } else {
            len
        }
    }
}

type SharedRef = Rc<RefCell<Shared>>;

// ---- client hosts ----

async fn client_task(name: String, shared: SharedRef) -> turmoil::Result {
    let notify = match shared.borrow().clients.get(&name) {
        Some(c) => c.notify.clone(),
        None => return Ok(()),
    };
    let to_gw = format!("client {name} -> gateway");
    let from_gw = format!("gateway -> client {name}");
    let stream = match turmoil::net::TcpStream::connect(("gateway", PORT)).await {
        Ok(s) => s,
        Err(e) => {
            let mut sh = shared.borrow_mut();
            sh.line("", &format!("client {name} cannot connect: {e}"));
            if let Some(c) = sh.clients.get_mut(&name) {
                c.closed = true;
                c.closed_by_server = true;
                c.client.handle_close();
            }
            return Ok(());
        }
    };
    let (mut rd, mut wr) = stream.into_split();
    let mut buf = vec![0u8; 64 * 1024];
    let mut scratch: Vec<Decoded> = Vec::new();
    loop {
        // Whatever the scripted client wants sent.
        let (out, hang_up) = {
            let mut sh = shared.borrow_mut();
            let sh = &mut *sh;
            let Some(c) = sh.clients.get_mut(&name) else {
                return Ok(());
            };
            let mut out = Vec::new();
            while let Some(b) = c.client.poll_transmit() {
                out.extend_from_slice(&b);
            }
            (out, c.hung_up)
        };
        if !out.is_empty() {
            {
                let mut sh = shared.borrow_mut();
                let sh = &mut *sh;
                sh.activity += out.len() as u64;
                scratch.clear();
                if let Some(c) = sh.clients.get_mut(&name) {
                    c.trace.on_request(&out, &mut scratch);
                }
                sh.emit(&to_gw, &scratch, false);
            }
            let mut rest: &[u8] = &out;
            while !rest.is_empty() {
                let n = shared.borrow_mut().piece(rest.len());
                if wr.write_all(&rest[..n]).await.is_err() {
                    break;
                }
                rest = &rest[n..];
            }
        }
        if hang_up {
            let mut sh = shared.borrow_mut();
            sh.activity += 1;
            sh.line(&to_gw, "close");
            if let Some(c) = sh.clients.get_mut(&name) {
                c.closed = true;
            }
            return Ok(());
        }
        tokio::select! {
            biased;
            _ = notify.notified() => {}
            r = rd.read(&mut buf) => {
                let mut sh = shared.borrow_mut();
                let sh = &mut *sh;
                match r {
                    Ok(n) if n > 0 => {
                        sh.activity += n as u64;
                        scratch.clear();
                        if let Some(c) = sh.clients.get_mut(&name) {
                            c.trace.on_response(&buf[..n], &mut scratch);
                        }
                        sh.emit(&from_gw, &scratch, true);
                        if let Some(c) = sh.clients.get_mut(&name) {
                            c.client.handle_input(&buf[..n]);
                            let v: Vec<String> = c.client.violations.drain(..).collect();
                            for v in v {
                                sh.violations.push(format!("client {name}: {v}"));
                            }
                        }
                    }
                    _ => {
                        sh.activity += 1;
                        sh.line(&from_gw, "close");
                        if let Some(c) = sh.clients.get_mut(&name) {
                            c.closed = true;
                            c.closed_by_server = true;
                            c.trace.on_close();
                            c.client.handle_close();
                        }
                        return Ok(());
                    }
                }
            }
        }
    }
}

// ---- shard hosts ----

/// Rolls the connection's open transaction back however its task ends (a crash cancels it).
struct EngineGuard {
    conn: EngineConn,
    engine: Arc<Mutex<Engine>>,
}

impl Drop for EngineGuard {
    fn drop(&mut self) {
        if let Ok(mut e) = self.engine.lock() {
            self.conn.handle_close(&mut e);
        }
    }
}

async fn shard_host(index: usize, shared: SharedRef) -> turmoil::Result {
    let listener = turmoil::net::TcpListener::bind(("0.0.0.0", PORT)).await?;
    loop {
        let (stream, _) = listener.accept().await?;
        tokio::task::spawn_local(shard_conn(index, stream, shared.clone()));
    }
}

fn now_ms() -> u64 {
    turmoil::elapsed().as_millis() as u64
}

async fn shard_conn(index: usize, stream: turmoil::net::TcpStream, shared: SharedRef) {
    let (id, engine, config, notify, generation, display) = {
        let mut sh = shared.borrow_mut();
        let s = &mut sh.shards[index];
        let id = s.next_conn_id;
        s.next_conn_id += 1;
        s.live.insert(id);
        (
            id,
            s.engine.clone(),
            s.config.clone(),
            s.notify.clone(),
            s.drop_generation,
            s.display.clone(),
        )
    };
    let mut scramble = [0u8; 20];
    {
        let mut sh = shared.borrow_mut();
        for b in scramble.iter_mut() {
            *b = sh.rng.random_range(0x21u8..0x7f);
        }
    }
    let who = format!("shard {display}#{id}");
    let to_shard = format!("gateway -> shard {display}#{id}");
    let from_shard = format!("shard {display}#{id} -> gateway");
    shared.borrow_mut().line(&to_shard, "connect");
    let mut guard = EngineGuard {
        conn: EngineConn::new(config, id, scramble),
        engine,
    };
    let (mut rd, mut wr) = stream.into_split();
    let mut filter = FaultFilter::new();
    let mut requests = RequestFilter::default();
    let mut trace = Tracker::new(shared.borrow().record);
    let mut queue: VecDeque<LinkItem> = VecDeque::new();
    let mut held = false;
    let mut items = Vec::new();
    let mut scratch = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let end = |shared: &SharedRef| {
        shared.borrow_mut().shards[index].live.remove(&id);
    };
    'conn: loop {
        // The engine's output, through the fault filter.
        let now = now_ms();
        while let Some(b) = guard.conn.poll_transmit(now) {
            items.clear();
            let act = {
                let mut sh = shared.borrow_mut();
                filter.on_response(&b, &mut sh.shards[index].armed, &who, &mut items)
            };
            queue.extend(items.drain(..));
            if act == FilterAction::CloseShard {
                break;
            }
        }
        if guard.conn.is_closed() && !queue.iter().any(|i| matches!(i, LinkItem::Close)) {
            queue.push_back(LinkItem::Close);
        }
        // Send what may be sent.
        let (stalled, dropped) = {
            let sh = shared.borrow();
            let s = &sh.shards[index];
            (s.stalled, s.drop_generation != generation)
        };
        if dropped {
            shared
                .borrow_mut()
                .line("", &format!("fault: {who} drops the connection"));
            break 'conn;
        }
        while !held && !stalled {
            let Some(item) = queue.pop_front() else {
                break;
            };
            match item {
                LinkItem::Data(b) => {
                    {
                        let mut sh = shared.borrow_mut();
                        sh.activity += b.len() as u64;
                        scratch.clear();
                        trace.on_response(&b, &mut scratch);
                        sh.emit(&from_shard, &scratch, false);
                    }
                    let mut rest: &[u8] = &b;
                    while !rest.is_empty() {
                        let n = shared.borrow_mut().piece(rest.len());
                        if wr.write_all(&rest[..n]).await.is_err() {
                            break 'conn;
                        }
                        rest = &rest[n..];
                    }
                }
                LinkItem::Note(n) => shared.borrow_mut().line("", &n),
                LinkItem::Hold => held = true,
                LinkItem::Close => {
                    shared.borrow_mut().line(&from_shard, "close");
                    break 'conn;
                }
            }
        }
        // Wait for input, a timer, or a change of the shard's state.
        let due = guard.conn.poll_timeout();
        let read = tokio::select! {
            biased;
            _ = notify.notified() => {
                // A resume releases holds.
                if !shared.borrow().shards[index].stalled {
                    held = false;
                }
                continue 'conn;
            }
            r = rd.read(&mut buf) => Some(r),
            _ = sleep_until_ms(due) => None,
        };
        let now = now_ms();
        match read {
            None => {
                if let Ok(mut e) = guard.engine.clone().lock() {
                    guard.conn.handle_timeout(&mut e, now);
                }
            }
            Some(Ok(n)) if n > 0 => {
                let mut notes = Vec::new();
                let intercept = {
                    let mut sh = shared.borrow_mut();
                    sh.activity += n as u64;
                    scratch.clear();
                    trace.on_request(&buf[..n], &mut scratch);
                    sh.emit(&to_shard, &scratch, false);
                    filter.on_request(&buf[..n]);
                    requests.on_request(
                        &buf[..n],
                        &mut sh.shards[index].armed,
                        &mut filter,
                        &who,
                        &mut notes,
                    )
                };
                for n in notes {
                    shared.borrow_mut().line("", &n);
                }
                let engine = guard.engine.clone();
                let Ok(mut e) = engine.lock() else {
                    break 'conn;
                };
                match intercept {
                    Intercept::Forward(bytes) => guard.conn.handle_input(&mut e, &bytes, now),
                    Intercept::Drop { forward, note } => {
                        guard.conn.handle_input(&mut e, &forward, now);
                        drop(e);
                        shared.borrow_mut().line("", &note);
                        break 'conn;
                    }
                }
            }
            Some(_) => {
                let mut sh = shared.borrow_mut();
                sh.activity += 1;
                sh.line(&to_shard, "close");
                break 'conn;
            }
        }
    }
    drop(rd);
    drop(wr);
    drop(guard);
    end(&shared);
}

async fn sleep_until_ms(due: Option<u64>) {
    match due {
        Some(t) => {
            let now = now_ms();
            tokio::time::sleep(Duration::from_millis(t.saturating_sub(now))).await
        }
        None => std::future::pending().await,
    }
}

// ---- the world ----

/// The L1 world. See the module docs.
pub struct L1World {
    sim: turmoil::Sim<'static>,
    shared: SharedRef,
    gw: Arc<Gateway>,
    net: TurmoilNet,
    logs: LogCapture,
    _log_guard: tracing::subscriber::DefaultGuard,
    /// Client names in creation order.
    order: Vec<String>,
    /// Held links (gateway, other host).
    held: BTreeSet<String>,
    close_reasons: BTreeMap<u32, String>,
    steps: u64,
}

impl L1World {
    /// Builds the simulation: the gateway host, one host per shard; no clients yet.
    ///
    /// # Errors
    /// A topology the gateway refuses (a vschema that does not fit).
    pub fn new(
        seed: u64,
        topology: &TopologySpec,
        record: bool,
        merge_queue_rows: Option<usize>,
    ) -> Result<L1World, String> {
        crate::world::quiet_failpoint_panics();
        let logs = LogCapture::default();
        let guard = tracing::subscriber::set_default(logs.clone());
        let mut sim = turmoil::Builder::new()
            .rng_seed(seed)
            .epoch(std::time::UNIX_EPOCH + Duration::from_secs(1_700_000_000))
            .simulation_duration(Duration::from_secs(10 * 365 * 24 * 3600))
            .min_message_latency(Duration::ZERO)
            .max_message_latency(Duration::ZERO)
            .build();
        let mut shards = Vec::new();
        let mut keyspaces = BTreeMap::new();
        let all = topology.shards();
        for ks in &topology.keyspaces {
            let mut list = Vec::new();
            for shard in &ks.shards {
                let n = shards.len();
                let host = format!("shard-{n}");
                let ambiguous = all.iter().filter(|(_, s)| s == shard).count() > 1;
                let display = if ambiguous {
                    format!("{}/{}", ks.name, shard)
                } else {
                    shard.clone()
                };
                let mut engine = Engine::new(ENGINE_VERSION);
                let mut s = EngineSession::new(0, None);
                engine
                    .execute(
                        &mut s,
                        &format!("CREATE DATABASE IF NOT EXISTS `{}`", ks.name),
                        0,
                    )
                    .map_err(|e| format!("shard {display}: {e}"))?;
                shards.push(ShardState {
                    display,
                    host: host.clone(),
                    engine: Arc::new(Mutex::new(engine)),
                    config: Arc::new(ServerConfig {
                        server_version: ENGINE_VERSION.to_string(),
                        ..ServerConfig::default()
                    }),
                    armed: VecDeque::new(),
                    stalled: false,
                    crashed: false,
                    drop_generation: 0,
                    next_conn_id: 1,
                    live: BTreeSet::new(),
                    notify: Rc::new(Notify::new()),
                });
                list.push(Shard {
                    name: shard.clone(),
                    address: ShardAddress::Mysql {
                        user: "root".into(),
                        password: String::new(),
                        host,
                        port: PORT,
                        database: ks.name.clone(),
                        tls: false,
                        ssl_ca: None,
                    },
                    replicas: Vec::new(),
                });
            }
            keyspaces.insert(
                ks.name.clone(),
                Keyspace {
                    name: ks.name.clone(),
                    sharded: ks.is_sharded(),
                    shards: list,
                },
            );
        }
        let default_keyspace = topology
            .keyspaces
            .first()
            .map(|k| k.name.clone())
            .ok_or("a topology needs at least one keyspace")?;
        let topo = Topology {
            keyspaces,
            default_keyspace,
        };
        let gw = match &topology.vschema {
            None => Gateway::new(ServerConfig::default(), topo),
            Some(v) => {
                let vschema = parse_vschema(&v.json).map_err(|errs| {
                    let lines: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
                    format!("vschema {}: {}", v.name, lines.join("; "))
                })?;
                Gateway::with_vschema(ServerConfig::default(), topo, vschema)
                    .map_err(|e| format!("topology does not fit vschema {}: {e}", v.name))?
            }
        };
        let mut gw = gw;
        if let Some(n) = merge_queue_rows {
            // Nothing else holds the gateway yet.
            if let Some(g) = Arc::get_mut(&mut gw) {
                g.limits.merge_queue_rows = n;
            }
        }
        let shared = Rc::new(RefCell::new(Shared {
            record,
            transcript: String::new(),
            clients: BTreeMap::new(),
            shards,
            violations: Vec::new(),
            activity: 0,
            now_ms: 0,
            rng: ChaCha8Rng::seed_from_u64(seed),
            split: false,
        }));
        let net = TurmoilNet::new(seed);
        {
            let gw = gw.clone();
            let net = net.clone();
            sim.host("gateway", move || {
                let gw = gw.clone();
                let net = net.clone();
                async move {
                    let embedded = Arc::new(EmbeddedShards::new(ENGINE_VERSION));
                    let driver = Driver::new(net.clone(), gw, embedded, seed);
                    let listener = net.bind(&format!("0.0.0.0:{PORT}")).await?;
                    driver.serve(listener).await?;
                    Ok(())
                }
            });
        }
        let hosts: Vec<String> = shared
            .borrow()
            .shards
            .iter()
            .map(|s| s.host.clone())
            .collect();
        for (i, host) in hosts.into_iter().enumerate() {
            let shared = shared.clone();
            sim.host(host, move || shard_host(i, shared.clone()));
        }
        let mut w = L1World {
            sim,
            shared,
            gw,
            net,
            logs,
            _log_guard: guard,
            order: Vec::new(),
            held: BTreeSet::new(),
            close_reasons: BTreeMap::new(),
            steps: 0,
        };
        w.settle()?;
        Ok(w)
    }

    pub fn gateway(&self) -> &Arc<Gateway> {
        &self.gw
    }

    /// Simulated milliseconds since the start.
    pub fn now_ms(&self) -> u64 {
        self.sim.elapsed().as_millis() as u64
    }

    /// turmoil steps taken (each one tick of 1 ms on every host).
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Backend connections still open on the shards' side.
    pub fn open_backends(&self) -> Vec<String> {
        let sh = self.shared.borrow();
        sh.shards
            .iter()
            .flat_map(|s| {
                s.live
                    .iter()
                    .map(move |id| format!("shard {}#{id}", s.display))
            })
            .collect()
    }

    fn step(&mut self) -> Result<(), String> {
        self.sim
            .step()
            .map_err(|e| format!("simulation failed: {e}"))?;
        self.steps += 1;
        self.shared.borrow_mut().now_ms = self.now_ms();
        self.drain_logs();
        Ok(())
    }

    fn drain_logs(&mut self) {
        if self.logs.is_empty() {
            return;
        }
        for l in self.logs.drain() {
            if let Some((conn, reason)) = close_reason(&l) {
                self.close_reasons.insert(conn, reason);
            }
            let text = l.render();
            self.shared.borrow_mut().line("", &text);
        }
    }

    /// Messages on links that are not held.
    fn in_flight(&self) -> usize {
        let held: Vec<(std::net::IpAddr, std::net::IpAddr)> = self
            .held
            .iter()
            .map(|h| {
                let a = self.sim.lookup("gateway");
                let b = self.sim.lookup(h.as_str());
                if a < b {
                    (a, b)
                } else {
                    (b, a)
                }
            })
            .collect();
        let mut n = 0;
        self.sim.links(|links| {
            for link in links {
                if held.contains(&link.pair()) {
                    continue;
                }
                n += link.count();
            }
        });
        n
    }

    fn client_notify(&self, client: &str) -> Result<Rc<Notify>, String> {
        self.shared
            .borrow()
            .clients
            .get(client)
            .map(|c| c.notify.clone())
            .ok_or_else(|| format!("no client named {client} (connect it first)"))
    }

    fn shard_index(&self, shard: &str) -> Result<usize, String> {
        let sh = self.shared.borrow();
        let displays: Vec<&str> = sh.shards.iter().map(|s| s.display.as_str()).collect();
        crate::scenario::one_shard(shard, &displays, |i| displays[i] == shard)
    }

    fn send_command(
        &mut self,
        client: &str,
        f: impl FnOnce(&mut ScriptedClient) -> Result<(), shardgate_core::SqlError>,
    ) -> Result<(), String> {
        let notify = self.client_notify(client)?;
        {
            let mut sh = self.shared.borrow_mut();
            let c = sh
                .clients
                .get_mut(client)
                .ok_or_else(|| format!("no client named {client}"))?;
            f(&mut c.client).map_err(|e| format!("client {client} cannot send: {}", e.message))?;
        }
        notify.notify_one();
        self.settle()
    }

    fn describe_holds(&self) -> String {
        let sh = self.shared.borrow();
        let mut held: Vec<String> = Vec::new();
        for s in &sh.shards {
            if s.stalled {
                held.push(format!("shard {} is stalled", s.display));
            }
            if s.crashed {
                held.push(format!("shard {} is down", s.display));
            }
        }
        for h in &self.held {
            held.push(format!("gateway <-> {h} is partitioned"));
        }
        if held.is_empty() {
            "nothing is held".into()
        } else {
            held.join(", ")
        }
    }
}

impl Harness for L1World {
    fn note(&mut self, line: &str) {
        self.shared.borrow_mut().line("", line);
    }

    fn transcript(&self) -> String {
        self.shared.borrow().transcript.clone()
    }

    fn connect(&mut self, client: &str, opts: &ConnectOptions) -> Result<(), String> {
        if self.shared.borrow().clients.contains_key(client) {
            return Err(format!("client {client} already exists"));
        }
        let host = format!("client-{client}");
        let record = self.shared.borrow().record;
        self.shared.borrow_mut().clients.insert(
            client.to_string(),
            ClientState {
                client: ScriptedClient::new(&opts.user, &opts.password, opts.database.as_deref()),
                trace: Tracker::new(record),
                notify: Rc::new(Notify::new()),
                hung_up: false,
                closed: false,
                closed_by_server: false,
                connection_id: None,
                host: host.clone(),
            },
        );
        self.order.push(client.to_string());
        let shared = self.shared.clone();
        self.sim
            .client(host, client_task(client.to_string(), shared));
        self.settle()
    }

    fn query(&mut self, client: &str, sql: &str) -> Result<(), String> {
        self.send_command(client, |c| c.query(sql))
    }

    fn prepare(&mut self, client: &str, sql: &str) -> Result<(), String> {
        self.send_command(client, |c| c.prepare(sql))
    }

    fn execute(&mut self, client: &str, stmt_id: u32, params: &[Value]) -> Result<(), String> {
        self.send_command(client, |c| c.execute(stmt_id, params))
    }

    fn disconnect(&mut self, client: &str) -> Result<(), String> {
        let notify = self.client_notify(client)?;
        {
            let mut sh = self.shared.borrow_mut();
            let Some(c) = sh.clients.get_mut(client) else {
                return Err(format!("no client named {client}"));
            };
            if c.hung_up {
                return Err(format!("client {client} already disconnected"));
            }
            c.hung_up = true;
            while c.client.next_answer().is_some() {}
        }
        notify.notify_one();
        self.settle()
    }

    fn next_answer(&mut self, client: &str) -> Result<Answer, String> {
        let start = self.now_ms();
        loop {
            {
                let mut sh = self.shared.borrow_mut();
                let c = sh
                    .clients
                    .get_mut(client)
                    .ok_or_else(|| format!("no client named {client}"))?;
                if let Some(a) = c.client.next_answer() {
                    if let Answer::Connected { connection_id } = &a {
                        c.connection_id = Some(*connection_id);
                    }
                    return Ok(a);
                }
                if c.hung_up {
                    return Err(format!("client {client} has disconnected"));
                }
            }
            if self.now_ms() - start > ANSWER_WAIT_MS_MAX {
                return Err(format!(
                    "no answer for {client} within {}s of simulated time ({})",
                    ANSWER_WAIT_MS_MAX / 1000,
                    self.describe_holds()
                ));
            }
            self.step()?;
        }
    }

    fn session_state(&self, client: &str) -> Result<SessionState, String> {
        let sh = self.shared.borrow();
        let c = sh
            .clients
            .get(client)
            .ok_or_else(|| format!("no client named {client}"))?;
        Ok(if c.hung_up {
            SessionState::ClosedByClient
        } else if c.closed_by_server {
            SessionState::ClosedByGateway {
                reason: c
                    .connection_id
                    .and_then(|id| self.close_reasons.get(&id).cloned()),
            }
        } else {
            SessionState::Open
        })
    }

    fn settle(&mut self) -> Result<(), String> {
        let mut quiet = 0;
        let mut steps = 0u64;
        while quiet < 2 {
            let before = self.shared.borrow().activity;
            self.step()?;
            steps += 1;
            let moved = self.shared.borrow().activity != before;
            if !moved && self.in_flight() == 0 {
                quiet += 1;
            } else {
                quiet = 0;
            }
            if steps > SETTLE_STEPS_MAX {
                return Err(format!(
                    "still moving after {SETTLE_STEPS_MAX} steps (livelock?)"
                ));
            }
        }
        Ok(())
    }

    fn advance(&mut self, ms: u64) -> Result<(), String> {
        let target = self.now_ms() + ms;
        while self.now_ms() < target {
            self.step()?;
        }
        let now = self.now_ms();
        self.shared.borrow_mut().line("", &format!("clock {now}ms"));
        self.settle()
    }

    fn arm_fault(&mut self, shard: &str, fault: ShardFault) -> Result<(), String> {
        let i = self.shard_index(shard)?;
        self.shared.borrow_mut().shards[i].armed.push_back(fault);
        Ok(())
    }

    fn drop_connections(&mut self, shard: &str) -> Result<(), String> {
        let i = self.shard_index(shard)?;
        let notify = {
            let mut sh = self.shared.borrow_mut();
            sh.shards[i].drop_generation += 1;
            sh.shards[i].notify.clone()
        };
        notify.notify_waiters();
        self.settle()
    }

    fn crash(&mut self, shard: &str) -> Result<(), String> {
        let i = self.shard_index(shard)?;
        let host = {
            let mut sh = self.shared.borrow_mut();
            sh.shards[i].crashed = true;
            let d = sh.shards[i].display.clone();
            sh.line("", &format!("fault: shard {d} crashes"));
            sh.shards[i].host.clone()
        };
        if let Ok(mut down) = self.net.down.lock() {
            down.insert(host.clone());
        }
        self.sim.crash(host.as_str());
        // The crashed host's connection tasks are gone; their engine sessions rolled back.
        self.shared.borrow_mut().shards[i].live.clear();
        self.settle()
    }

    fn restart(&mut self, shard: &str) -> Result<(), String> {
        let i = self.shard_index(shard)?;
        let host = {
            let mut sh = self.shared.borrow_mut();
            sh.shards[i].crashed = false;
            let d = sh.shards[i].display.clone();
            sh.line("", &format!("fault: shard {d} restarts"));
            sh.shards[i].host.clone()
        };
        if let Ok(mut down) = self.net.down.lock() {
            down.remove(&host);
        }
        self.sim.bounce(host.as_str());
        self.settle()
    }

    fn partition(&mut self, target: &Endpoint) -> Result<(), String> {
        let (host, what) = match target {
            Endpoint::Shard(s) => {
                let i = self.shard_index(s)?;
                let sh = self.shared.borrow();
                (
                    sh.shards[i].host.clone(),
                    format!("shard {}", sh.shards[i].display),
                )
            }
            Endpoint::Client(c) => {
                let sh = self.shared.borrow();
                let h = sh
                    .clients
                    .get(c)
                    .map(|c| c.host.clone())
                    .ok_or_else(|| format!("no client named {c}"))?;
                (h, format!("client {c}"))
            }
        };
        self.sim.hold("gateway", host.as_str());
        if let Ok(mut cut) = self.net.cut.lock() {
            cut.insert(host.clone());
        }
        self.held.insert(host);
        self.shared.borrow_mut().line(
            "",
            &format!("fault: partition between the gateway and {what}"),
        );
        Ok(())
    }

    fn heal(&mut self) -> Result<(), String> {
        let held: Vec<String> = std::mem::take(&mut self.held).into_iter().collect();
        for h in &held {
            self.sim.release("gateway", h.as_str());
        }
        if let Ok(mut cut) = self.net.cut.lock() {
            cut.clear();
        }
        self.shared
            .borrow_mut()
            .line("", "fault: every partition heals");
        self.settle()
    }

    fn stall(&mut self, shard: &str) -> Result<(), String> {
        let i = self.shard_index(shard)?;
        self.shared.borrow_mut().shards[i].stalled = true;
        Ok(())
    }

    fn resume(&mut self, shard: &str) -> Result<(), String> {
        let i = self.shard_index(shard)?;
        let notify = {
            let mut sh = self.shared.borrow_mut();
            sh.shards[i].stalled = false;
            sh.shards[i].notify.clone()
        };
        notify.notify_waiters();
        self.settle()
    }

    fn set_split_packets(&mut self, on: bool) {
        self.net.split.store(on, Ordering::Relaxed);
        self.shared.borrow_mut().split = on;
    }

    fn set_panic_marker(&mut self, marker: Option<&str>) {
        self.gw.failpoints.set_panic_on(marker);
    }

    fn shard_query(
        &mut self,
        shard: &str,
        database: &str,
        sql: &str,
    ) -> Result<Vec<Vec<Value>>, String> {
        let i = self.shard_index(shard)?;
        let engine = self.shared.borrow().shards[i].engine.clone();
        let mut engine = engine
            .lock()
            .map_err(|_| "engine lock poisoned".to_string())?;
        let mut s = EngineSession::new(0, None);
        s.set_database(database, &engine)
            .map_err(|e| e.to_string())?;
        match engine.execute(&mut s, sql, self.now_ms()) {
            Ok(e) => match e.outcome {
                shardgate_engine::Outcome::Rows { rows, .. } => Ok(rows),
                shardgate_engine::Outcome::Ok(_) => Ok(Vec::new()),
            },
            Err(e) => Err(e.to_string()),
        }
    }

    fn set_latency(&mut self, target: &Endpoint, ms: u64) -> Result<(), String> {
        let (host, what) = match target {
            Endpoint::Shard(s) => {
                let i = self.shard_index(s)?;
                let sh = self.shared.borrow();
                (
                    sh.shards[i].host.clone(),
                    format!("shard {}", sh.shards[i].display),
                )
            }
            Endpoint::Client(c) => {
                let sh = self.shared.borrow();
                let h = sh
                    .clients
                    .get(c)
                    .map(|c| c.host.clone())
                    .ok_or_else(|| format!("no client named {c}"))?;
                (h, format!("client {c}"))
            }
        };
        self.sim
            .set_link_latency("gateway", host.as_str(), Duration::from_millis(ms));
        self.shared.borrow_mut().line(
            "",
            &format!("fault: latency {ms}ms between the gateway and {what}"),
        );
        Ok(())
    }

    fn finish(&mut self) -> Vec<String> {
        let mut failures = Vec::new();
        {
            let mut sh = self.shared.borrow_mut();
            for name in &self.order {
                let Some(c) = sh.clients.get_mut(name) else {
                    continue;
                };
                let mut left = Vec::new();
                while let Some(a) = c.client.next_answer() {
                    left.push(a.describe());
                }
                if !left.is_empty() {
                    failures.push(format!(
                        "client {name}: answers never awaited: {}",
                        left.join("; ")
                    ));
                }
            }
            sh.line("", "-- end of scenario: every client quits");
        }
        let held: Vec<String> = std::mem::take(&mut self.held).into_iter().collect();
        for h in &held {
            self.sim.release("gateway", h.as_str());
        }
        if let Ok(mut cut) = self.net.cut.lock() {
            cut.clear();
        }
        let mut notifies = Vec::new();
        {
            let mut sh = self.shared.borrow_mut();
            for s in &mut sh.shards {
                s.stalled = false;
                notifies.push(s.notify.clone());
            }
            for name in &self.order {
                if let Some(c) = sh.clients.get_mut(name) {
                    if !c.hung_up && !c.closed {
                        if c.client.is_idle() {
                            c.client.quit();
                        }
                        c.hung_up = true;
                        notifies.push(c.notify.clone());
                    }
                }
            }
        }
        for n in notifies {
            n.notify_waiters();
            n.notify_one();
        }
        if let Err(e) = self.settle() {
            failures.push(e);
        }
        // The driver notices a closed client on its next read: give it time to close.
        if let Err(e) = self.advance(10) {
            failures.push(e);
        }
        let sessions = self.gw.session_count();
        if sessions != 0 {
            failures.push(format!(
                "{sessions} gateway session(s) still registered after every client left"
            ));
        }
        // Idle pooled connections stay open by design; anything beyond them leaked.
        let pooled_idle: u64 = self
            .gw
            .pools
            .values()
            .map(|p| p.idle.load(Ordering::Relaxed))
            .sum();
        let open = self.open_backends();
        if open.len() as u64 > pooled_idle {
            for who in open {
                failures.push(format!(
                    "backend connection {who} leaked: still open after every client left ({pooled_idle} idle in pools)"
                ));
            }
        }
        for p in self.gw.pools.values() {
            let in_use = p.in_use.load(Ordering::Relaxed);
            if in_use != 0 {
                failures.push(format!(
                    "pool {}: {in_use} connection(s) still lent out after every client left",
                    p.tablet
                ));
            }
        }
        let violations: Vec<String> = self.shared.borrow().violations.clone();
        failures.extend(
            violations
                .iter()
                .map(|v| format!("protocol violation: {v}")),
        );
        let c = &self.gw.counters;
        let counters = format!(
            "counters: connections={} statements={} errors={} panics={}",
            c.connections.load(Ordering::Relaxed),
            c.statements.load(Ordering::Relaxed),
            c.errors.load(Ordering::Relaxed),
            c.panics.load(Ordering::Relaxed),
        );
        self.shared.borrow_mut().line("", &counters);
        failures
    }
}
