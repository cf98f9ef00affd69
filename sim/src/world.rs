//! The L0 stepper: the gateway core, the simulated engine shards and scripted clients, stepped
//! by hand on one thread with a virtual clock. No async, no threads, no real time.
//!
//! # What is in a world
//! - one [`Gateway`] and, per scripted client, one gateway [`Session`];
//! - shard hosts: one [`Engine`] per shard, one [`EngineConn`] per backend connection;
//! - scripted clients ([`ScriptedClient`]);
//! - links: per connection, one [`Link`] each way (client <-> session, session backend <->
//!   engine connection); shard output passes a [`FaultFilter`] before its link;
//! - a virtual clock in milliseconds and one PRNG (ChaCha8, seeded from the scenario seed)
//!   that draws every nonce and every split point.
//!
//! # Stepping
//! One step moves outputs into links, then delivers: [`World::pump`] polls every state machine
//! in a fixed order (clients in creation order; for each: the client, then its session's
//! events, backend bytes and client bytes; then backend connections by (client, backend id)),
//! and [`World::deliver_round`] hands each ready link, in the same order, one delivery (the
//! whole queued chunk, or a seeded random prefix when packets are split; a shard link is not
//! read while the session's merge holds enough of its rows, as in the driver). The world is *quiet*
//! when a step moves nothing. Time moves only through [`Harness::advance`], or when
//! [`Harness::next_answer`] waits on a quiet world with a pending engine timer (SLEEP).
//!
//! Everything visible lands in the transcript at the moment it is delivered: decoded packets
//! tagged by direction, fault notes, the gateway's warnings and errors, connection closes.

use crate::client::{Answer, ScriptedClient};
use crate::fault::{FaultFilter, FilterAction, Intercept, RequestFilter, ShardFault};
use crate::harness::{ConnectOptions, Endpoint, Harness, SessionState, TopologySpec};
use crate::link::{Delivery, Link, LinkItem};
use crate::logs::LogCapture;
use crate::trace::{Decoded, Kind, Tracker};
use bytes::Bytes;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use shardgate_core::backend::BackendConn;
use shardgate_core::gateway::{Gateway, Keyspace, Shard, ShardAddress, Topology};
use shardgate_core::server::ServerConfig;
use shardgate_core::session::{BackendId, Session, SessionEvent};
use shardgate_core::vschema::parse_vschema;
use shardgate_core::wire::Value;
use shardgate_engine::conn::EngineConn;
use shardgate_engine::{Engine, EngineSession};
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Once};

/// The version the simulated shards announce.
pub const ENGINE_VERSION: &str = "8.0.40-sim-engine";

/// Deliveries one `settle` may make before the world is declared livelocked.
const STEP_LIMIT: u64 = 50_000_000;

/// How a world is built.
#[derive(Clone)]
pub struct WorldConfig {
    pub seed: u64,
    pub topology: TopologySpec,
    /// Render a transcript (off for throughput runs: packets are still checked).
    pub record: bool,
    /// Tuning re-drawn small in simulation (None: the gateway's defaults).
    pub merge_queue_rows: Option<usize>,
}

struct ClientSlot {
    name: String,
    client: ScriptedClient,
    session: Session,
    up: Link,
    down: Link,
    trace: Tracker,
    /// `client a -> gateway` / `gateway -> client a`.
    to_gw: String,
    from_gw: String,
    hung_up: bool,
    session_closed: bool,
    close_reason: Option<String>,
    /// Cut off from the gateway: nothing crosses either way.
    partitioned: bool,
}

struct BackendPipe {
    host: usize,
    engine: Option<EngineConn>,
    up: Link,
    down: Link,
    filter: FaultFilter,
    /// Statement faults in front of the engine.
    requests: RequestFilter,
    trace: Tracker,
    /// `gateway a.0 -> shard 0` / `shard 0 -> gateway a.0` / `shard 0 (a.0)`.
    to_shard: String,
    from_shard: String,
    who: String,
    gateway_closed: bool,
    /// Given back to the gateway's pool: the idle connection's protocol state, until a
    /// session adopts it.
    parked: Option<BackendConn>,
}

struct ShardHost {
    /// The embedded name the topology points at (`commerce/0`).
    name: String,
    /// How transcripts and faults name it (`0`, or `commerce/0` when ambiguous).
    display: String,
    engine: Engine,
    config: Arc<ServerConfig>,
    next_conn_id: u32,
    armed: VecDeque<ShardFault>,
    /// Sends nothing until resumed.
    stalled: bool,
    /// Crashed and not restarted: connections refused.
    crashed: bool,
    /// Cut off from the gateway: nothing crosses either way, connections refused.
    partitioned: bool,
}

/// The L0 world. See the module docs.
pub struct World {
    gw: Arc<Gateway>,
    topology: TopologySpec,
    now_ms: u64,
    rng: ChaCha8Rng,
    split_packets: bool,
    record: bool,
    clients: Vec<ClientSlot>,
    hosts: Vec<ShardHost>,
    backends: BTreeMap<(usize, BackendId), BackendPipe>,
    transcript: String,
    violations: Vec<String>,
    logs: LogCapture,
    _log_guard: tracing::subscriber::DefaultGuard,
    scratch: Vec<Decoded>,
    items: Vec<LinkItem>,
    keys: Vec<(usize, BackendId)>,
}

impl World {
    /// Builds the world: gateway, shard engines (each holding the keyspace's database), no
    /// clients yet. The world captures the gateway's logs as this thread's default `tracing`
    /// subscriber until it is dropped: keep one world per thread alive at a time.
    ///
    /// # Errors
    /// A topology the core cannot serve yet (a VSchema file), or an engine refusing setup.
    pub fn new(config: WorldConfig) -> Result<World, String> {
        quiet_failpoint_panics();
        let logs = LogCapture::default();
        let guard = tracing::subscriber::set_default(logs.clone());
        let mut keyspaces = BTreeMap::new();
        let mut hosts = Vec::new();
        let all = config.topology.shards();
        for ks in &config.topology.keyspaces {
            let mut shards = Vec::new();
            for shard in &ks.shards {
                let name = format!("{}/{}", ks.name, shard);
                let ambiguous = all.iter().filter(|(_, s)| s == shard).count() > 1;
                let display = if ambiguous {
                    name.clone()
                } else {
                    shard.clone()
                };
                let server = ServerConfig {
                    server_version: ENGINE_VERSION.to_string(),
                    ..ServerConfig::default()
                };
                let mut engine = Engine::new(ENGINE_VERSION);
                let mut s = EngineSession::new(0, None);
                engine
                    .execute(
                        &mut s,
                        &format!("CREATE DATABASE IF NOT EXISTS `{}`", ks.name),
                        0,
                    )
                    .map_err(|e| format!("shard {name}: {e}"))?;
                hosts.push(ShardHost {
                    name: name.clone(),
                    display,
                    engine,
                    config: Arc::new(server),
                    next_conn_id: 1,
                    armed: VecDeque::new(),
                    stalled: false,
                    crashed: false,
                    partitioned: false,
                });
                shards.push(Shard {
                    name: shard.clone(),
                    address: ShardAddress::Embedded {
                        name,
                        database: ks.name.clone(),
                    },
                    replicas: Vec::new(),
                });
            }
            keyspaces.insert(
                ks.name.clone(),
                Keyspace {
                    name: ks.name.clone(),
                    sharded: ks.is_sharded(),
                    shards,
                },
            );
        }
        let default_keyspace = config
            .topology
            .keyspaces
            .first()
            .map(|k| k.name.clone())
            .ok_or("a topology needs at least one keyspace")?;
        let topology = Topology {
            keyspaces,
            default_keyspace,
        };
        let gw = match &config.topology.vschema {
            None => Gateway::new(ServerConfig::default(), topology),
            Some(v) => {
                let vschema = parse_vschema(&v.json).map_err(|errs| {
                    let lines: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
                    format!("vschema {}: {}", v.name, lines.join("; "))
                })?;
                Gateway::with_vschema(ServerConfig::default(), topology, vschema)
                    .map_err(|e| format!("topology does not fit vschema {}: {e}", v.name))?
            }
        };
        let mut gw = gw;
        if let Some(n) = config.merge_queue_rows {
            // Nothing else holds the gateway yet.
            if let Some(g) = Arc::get_mut(&mut gw) {
                g.limits.merge_queue_rows = n;
            }
        }
        Ok(World {
            gw,
            topology: config.topology,
            now_ms: 0,
            rng: ChaCha8Rng::seed_from_u64(config.seed),
            split_packets: false,
            record: config.record,
            clients: Vec::new(),
            hosts,
            backends: BTreeMap::new(),
            transcript: String::new(),
            violations: Vec::new(),
            logs,
            _log_guard: guard,
            scratch: Vec::new(),
            items: Vec::new(),
            keys: Vec::new(),
        })
    }

    pub fn gateway(&self) -> &Arc<Gateway> {
        &self.gw
    }

    pub fn topology(&self) -> &TopologySpec {
        &self.topology
    }

    pub fn now_ms(&self) -> u64 {
        self.now_ms
    }

    /// Protocol violations seen so far on gateway-to-client links.
    pub fn violations(&self) -> &[String] {
        &self.violations
    }

    /// Backend connections still open on the shard side.
    pub fn open_backends(&self) -> Vec<String> {
        // Parked connections are idle in the gateway's pool, not leaked.
        self.backends
            .values()
            .filter(|p| p.engine.is_some() && p.parked.is_none())
            .map(|p| p.who.clone())
            .collect()
    }

    fn line(&mut self, prefix: &str, text: &str) {
        if self.record {
            self.transcript.push_str(prefix);
            if !prefix.is_empty() {
                self.transcript.push_str("  ");
            }
            self.transcript.push_str(text);
            self.transcript.push('\n');
        }
    }

    fn client_index(&self, name: &str) -> Result<usize, String> {
        self.clients
            .iter()
            .position(|c| c.name == name)
            .ok_or_else(|| format!("no client named {name} (connect it first)"))
    }

    fn host_index(&self, shard: &str) -> Result<usize, String> {
        let displays: Vec<&str> = self.hosts.iter().map(|h| h.display.as_str()).collect();
        crate::scenario::one_shard(shard, &displays, |i| {
            displays[i] == shard || self.hosts[i].name == shard
        })
    }

    fn scramble(&mut self) -> [u8; 20] {
        let mut s = [0u8; 20];
        for b in s.iter_mut() {
            *b = self.rng.random_range(0x21u8..0x7f);
        }
        s
    }

    /// Writes captured gateway logs into the transcript; remembers close reasons.
    fn drain_logs(&mut self) {
        if self.logs.is_empty() {
            return;
        }
        for l in self.logs.drain() {
            if let Some((conn, reason)) = close_reason(&l) {
                if let Some(slot) = self
                    .clients
                    .iter_mut()
                    .find(|c| c.session.connection_id() == conn)
                {
                    slot.close_reason = Some(reason);
                }
            }
            let text = l.render();
            self.line("", &text);
        }
    }

    // ---- stepping ----

    /// Moves every pending output into its link. Returns whether anything moved.
    pub fn pump(&mut self) -> bool {
        let mut moved = false;
        for ci in 0..self.clients.len() {
            moved |= self.pump_client(ci);
        }
        moved |= self.pump_engines();
        moved
    }

    fn pump_client(&mut self, ci: usize) -> bool {
        let mut moved = false;
        let slot = &mut self.clients[ci];
        while let Some(b) = slot.client.poll_transmit() {
            moved = true;
            if !slot.hung_up {
                slot.up.push_data(b);
            }
        }
        while let Some(ev) = self.clients[ci].session.poll_event() {
            moved = true;
            match ev {
                SessionEvent::OpenBackend {
                    id,
                    address,
                    pooled,
                    ..
                } => {
                    if !(pooled && self.adopt_parked(ci, id, &address)) {
                        self.open_backend(ci, id, address)
                    }
                }
                SessionEvent::ReleaseBackend { id } => {
                    let conn = self.clients[ci].session.take_released(id);
                    if let (Some(p), Some(conn)) = (self.backends.get_mut(&(ci, id)), conn) {
                        p.parked = Some(conn);
                    }
                }
                SessionEvent::CloseBackend { id } => {
                    if let Some(p) = self.backends.get_mut(&(ci, id)) {
                        p.gateway_closed = true;
                        p.up.push(LinkItem::Close);
                        p.down.discard();
                    }
                }
                SessionEvent::Kill { target, query_only } => {
                    if let Some(c) = self
                        .clients
                        .iter_mut()
                        .find(|c| c.session.connection_id() == target)
                    {
                        c.session.handle_kill(query_only);
                    }
                    // The target may log why it closes: note it before its close is seen.
                    self.drain_logs();
                }
                SessionEvent::StartBackendTls { id, .. } => {
                    // Simulated shards are never `?ssl=true`; if one were, it could not go on.
                    self.clients[ci].session.handle_backend_close(id);
                }
                SessionEvent::StartTls { .. } => {
                    // Simulated gateways offer no TLS (ServerConfig::tls is off), so a
                    // session never asks; if one did, the client could not go on.
                    self.clients[ci].session.handle_client_close();
                }
            }
        }
        while let Some((id, b)) = self.clients[ci].session.poll_backend_transmit() {
            moved = true;
            if let Some(p) = self.backends.get_mut(&(ci, id)) {
                if !p.gateway_closed && !p.up.is_done() {
                    p.filter.on_request(&b);
                    p.up.push_data(b);
                }
            }
        }
        let slot = &mut self.clients[ci];
        while let Some(b) = slot.session.poll_client_transmit() {
            moved = true;
            if !slot.hung_up {
                slot.down.push_data(b);
            }
        }
        if slot.session.is_closed() && !slot.session_closed {
            moved = true;
            slot.session_closed = true;
            let text = if slot.hung_up {
                format!("session {} ended: the client hung up", slot.name)
            } else {
                slot.down.push(LinkItem::Close);
                match &slot.close_reason {
                    Some(r) => format!("gateway closed client {}: {r}", slot.name),
                    None => {
                        let v = format!("gateway closed client {} without logging why", slot.name);
                        self.violations.push(v.clone());
                        v
                    }
                }
            };
            self.line("", &text);
        }
        moved
    }

    /// The gateway's pool in L0: a session needing a connection to a shard adopts an idle
    /// (parked) one — its own most recent first, then the oldest of another client's — under
    /// its new backend id. A parked connection whose shard went away is dropped instead.
    fn adopt_parked(&mut self, ci: usize, id: BackendId, address: &ShardAddress) -> bool {
        let ShardAddress::Embedded { name, .. } = address else {
            return false;
        };
        let Some(hi) = self.hosts.iter().position(|h| &h.name == name) else {
            return false;
        };
        // A partition does not stop an idle connection from being lent out: like a real
        // socket, its segments are held until the heal (only new connects are refused).
        if self.hosts[hi].crashed {
            return false;
        }
        // Only a connection that asked for CLIENT_FOUND_ROWS as this client did counts
        // affected rows as it expects.
        let found_rows = self.clients[ci].session.found_rows();
        let usable = |p: &BackendPipe| {
            p.host == hi
                && p.parked
                    .as_ref()
                    .is_some_and(|c| c.found_rows() == found_rows)
                && p.engine.is_some()
                && !p.gateway_closed
                && !p.up.is_done()
                && !p.down.is_done()
        };
        let own = self
            .backends
            .iter()
            .rev()
            .find(|(k, p)| k.0 == ci && usable(p))
            .map(|(k, _)| *k);
        let key = own.or_else(|| {
            self.backends
                .iter()
                .find(|(_, p)| usable(p))
                .map(|(k, _)| *k)
        });
        let Some(key) = key else {
            return false;
        };
        let Some(mut pipe) = self.backends.remove(&key) else {
            return false;
        };
        let Some(conn) = pipe.parked.take() else {
            return false;
        };
        if key.0 != ci {
            let label = format!("{}.{}", self.clients[ci].name, id);
            let display = self.hosts[hi].display.clone();
            pipe.to_shard = format!("gateway {label} -> shard {display}");
            pipe.from_shard = format!("shard {display} -> gateway {label}");
            pipe.who = format!("shard {display} ({label})");
        }
        self.backends.insert((ci, id), pipe);
        self.clients[ci].session.adopt_backend(id, conn);
        self.drain_logs();
        true
    }

    fn open_backend(&mut self, ci: usize, id: BackendId, address: ShardAddress) {
        let label = format!("{}.{}", self.clients[ci].name, id);
        let host = match &address {
            ShardAddress::Embedded { name, .. } => self.hosts.iter().position(|h| &h.name == name),
            ShardAddress::Mysql { .. } => None,
        };
        let Some(hi) = host else {
            let what = match &address {
                ShardAddress::Embedded { name, .. } => format!("no embedded shard {name}"),
                ShardAddress::Mysql { host, port, .. } => {
                    format!("{host}:{port} is a real server (L0 has no network)")
                }
            };
            self.line("", &format!("gateway {label} cannot connect: {what}"));
            self.clients[ci].session.handle_backend_close(id);
            self.drain_logs();
            return;
        };
        if self.hosts[hi].crashed || self.hosts[hi].partitioned {
            let h = &self.hosts[hi];
            let why = if h.crashed {
                "is down"
            } else {
                "is unreachable (partition)"
            };
            let text = format!(
                "gateway {label} -> shard {}  connect refused: shard {} {why}",
                h.display, h.display
            );
            self.line("", &text);
            self.clients[ci].session.handle_backend_close(id);
            self.drain_logs();
            return;
        }
        let scramble = self.scramble();
        let h = &mut self.hosts[hi];
        let conn_id = h.next_conn_id;
        h.next_conn_id += 1;
        let engine = EngineConn::new(h.config.clone(), conn_id, scramble);
        let display = h.display.clone();
        let pipe = BackendPipe {
            host: hi,
            engine: Some(engine),
            up: Link::default(),
            down: Link::default(),
            filter: FaultFilter::new(),
            requests: RequestFilter::default(),
            trace: Tracker::new(self.record),
            to_shard: format!("gateway {label} -> shard {display}"),
            from_shard: format!("shard {display} -> gateway {label}"),
            who: format!("shard {display} ({label})"),
            gateway_closed: false,
            parked: None,
        };
        let text = format!("{}  connect", pipe.to_shard);
        self.line("", &text);
        self.backends.insert((ci, id), pipe);
    }

    fn pump_engines(&mut self) -> bool {
        let mut moved = false;
        let now = self.now_ms;
        for pipe in self.backends.values_mut() {
            let Some(engine) = pipe.engine.as_mut() else {
                continue;
            };
            let host = &mut self.hosts[pipe.host];
            let mut closed = false;
            while let Some(b) = engine.poll_transmit(now) {
                moved = true;
                if pipe.gateway_closed {
                    continue;
                }
                self.items.clear();
                let act = pipe
                    .filter
                    .on_response(&b, &mut host.armed, &pipe.who, &mut self.items);
                for it in self.items.drain(..) {
                    pipe.down.push(it);
                }
                if act == FilterAction::CloseShard {
                    closed = true;
                    break;
                }
            }
            if !closed && engine.is_closed() {
                closed = true;
                pipe.down.push(LinkItem::Close);
            }
            if closed {
                moved = true;
                engine.handle_close(&mut host.engine);
                pipe.engine = None;
                pipe.up.discard();
            }
        }
        moved
    }

    /// One delivery on every ready link, in the fixed order. Returns whether anything moved.
    pub fn deliver_round(&mut self) -> bool {
        let mut moved = false;
        for ci in 0..self.clients.len() {
            if self.clients[ci].partitioned {
                continue;
            }
            if self.clients[ci].up.is_ready() {
                moved = true;
                let rng = self.split_packets.then_some(&mut self.rng);
                if let Some(d) = self.clients[ci].up.deliver(rng) {
                    self.deliver_to_gateway(ci, d);
                }
            }
            if self.clients[ci].down.is_ready() {
                moved = true;
                let rng = self.split_packets.then_some(&mut self.rng);
                if let Some(d) = self.clients[ci].down.deliver(rng) {
                    self.deliver_to_client(ci, d);
                }
            }
        }
        self.keys.clear();
        self.keys.extend(self.backends.keys().copied());
        for k in 0..self.keys.len() {
            let key = self.keys[k];
            let Some(p) = self.backends.get_mut(&key) else {
                continue;
            };
            if self.hosts[p.host].partitioned {
                continue;
            }
            if p.up.is_ready() {
                moved = true;
                let rng = self.split_packets.then_some(&mut self.rng);
                if let Some(d) = p.up.deliver(rng) {
                    self.deliver_to_shard(key, d);
                }
            }
            let Some(p) = self.backends.get_mut(&key) else {
                continue;
            };
            // Backpressure, as the driver applies it: a shard whose rows a streaming merge
            // already holds enough of is not read.
            if p.down.is_ready()
                && !self.hosts[p.host].stalled
                && self.clients[key.0].session.wants_backend_input(key.1)
            {
                moved = true;
                let rng = self.split_packets.then_some(&mut self.rng);
                if let Some(d) = p.down.deliver(rng) {
                    self.deliver_from_shard(key, d);
                }
            }
            let gone = self.backends.get(&key).is_some_and(|p| {
                p.engine.is_none() && p.up.is_done() && (p.down.is_done() || p.down.is_empty())
            });
            if gone {
                self.backends.remove(&key);
            }
        }
        moved
    }

    fn deliver_to_gateway(&mut self, ci: usize, d: Delivery) {
        match d {
            Delivery::Data(b) => {
                self.trace_request(ci, None, &b);
                self.clients[ci].session.handle_client_input(&b);
            }
            Delivery::Note(s) => self.line("", &s),
            Delivery::Close => {
                let prefix = self.clients[ci].to_gw.clone();
                self.line(&prefix, "close");
                self.clients[ci].session.handle_client_close();
            }
        }
        self.drain_logs();
    }

    fn deliver_to_client(&mut self, ci: usize, d: Delivery) {
        match d {
            Delivery::Data(b) => {
                self.trace_response(ci, None, &b);
                let slot = &mut self.clients[ci];
                slot.client.handle_input(&b);
                for v in slot.client.violations.drain(..) {
                    self.violations.push(format!("client {}: {v}", slot.name));
                }
            }
            Delivery::Note(s) => self.line("", &s),
            Delivery::Close => {
                let prefix = self.clients[ci].from_gw.clone();
                self.line(&prefix, "close");
                self.clients[ci].trace.on_close();
                self.clients[ci].client.handle_close();
            }
        }
    }

    fn deliver_to_shard(&mut self, key: (usize, BackendId), d: Delivery) {
        match d {
            Delivery::Data(b) => {
                self.trace_request(key.0, Some(key.1), &b);
                let now = self.now_ms;
                let mut notes = Vec::new();
                if let Some(p) = self.backends.get_mut(&key) {
                    if let Some(e) = p.engine.as_mut() {
                        let host = &mut self.hosts[p.host];
                        match p.requests.on_request(
                            &b,
                            &mut host.armed,
                            &mut p.filter,
                            &p.who,
                            &mut notes,
                        ) {
                            Intercept::Forward(bytes) => {
                                e.handle_input(&mut host.engine, &bytes, now)
                            }
                            Intercept::Drop { forward, note } => {
                                e.handle_input(&mut host.engine, &forward, now);
                                e.handle_close(&mut host.engine);
                                p.engine = None;
                                p.up.discard();
                                p.down.push(LinkItem::Note(note));
                                p.down.push(LinkItem::Close);
                            }
                        }
                    }
                }
                for n in notes {
                    self.line("", &n);
                }
            }
            Delivery::Note(s) => self.line("", &s),
            Delivery::Close => {
                if let Some(p) = self.backends.get_mut(&key) {
                    let prefix = p.to_shard.clone();
                    if let Some(mut e) = p.engine.take() {
                        e.handle_close(&mut self.hosts[p.host].engine);
                    }
                    p.trace.on_close();
                    p.down.discard();
                    self.line(&prefix, "close");
                }
            }
        }
        self.drain_logs();
    }

    fn deliver_from_shard(&mut self, key: (usize, BackendId), d: Delivery) {
        match d {
            Delivery::Data(b) => {
                self.trace_response(key.0, Some(key.1), &b);
                self.clients[key.0].session.handle_backend_input(key.1, &b);
            }
            Delivery::Note(s) => self.line("", &s),
            Delivery::Close => {
                if let Some(p) = self.backends.get_mut(&key) {
                    let prefix = p.from_shard.clone();
                    p.trace.on_close();
                    self.line(&prefix, "close");
                }
                self.clients[key.0].session.handle_backend_close(key.1);
            }
        }
        self.drain_logs();
    }

    /// Decodes bytes a client (or a session's backend) sent, for the transcript.
    fn trace_request(&mut self, ci: usize, backend: Option<BackendId>, b: &Bytes) {
        let mut out = std::mem::take(&mut self.scratch);
        out.clear();
        let prefix = match backend {
            None => {
                let slot = &mut self.clients[ci];
                slot.trace.on_request(b, &mut out);
                &slot.to_gw
            }
            Some(id) => match self.backends.get_mut(&(ci, id)) {
                Some(p) => {
                    p.trace.on_request(b, &mut out);
                    &p.to_shard
                }
                None => return,
            },
        };
        let prefix = prefix.clone();
        self.emit(&prefix, &out, false);
        self.scratch = out;
    }

    /// Decodes bytes a session (or a shard) sent, for the transcript.
    fn trace_response(&mut self, ci: usize, backend: Option<BackendId>, b: &Bytes) {
        let mut out = std::mem::take(&mut self.scratch);
        out.clear();
        let prefix = match backend {
            None => {
                let slot = &mut self.clients[ci];
                slot.trace.on_response(b, &mut out);
                &slot.from_gw
            }
            Some(id) => match self.backends.get_mut(&(ci, id)) {
                Some(p) => {
                    p.trace.on_response(b, &mut out);
                    &p.from_shard
                }
                None => return,
            },
        };
        let prefix = prefix.clone();
        self.emit(&prefix, &out, backend.is_none());
        self.scratch = out;
    }

    fn emit(&mut self, prefix: &str, packets: &[Decoded], toward_client: bool) {
        for d in packets {
            if let Kind::Violation(v) = &d.kind {
                if toward_client {
                    self.violations.push(format!("{prefix}: {v}"));
                }
            }
            if let Some(l) = &d.line {
                self.line(prefix, l);
            }
        }
    }

    /// Runs until quiet.
    ///
    /// # Errors
    /// The world keeps moving past [`STEP_LIMIT`] deliveries (a livelock).
    pub fn run_until_quiet(&mut self) -> Result<(), String> {
        let mut steps = 0u64;
        loop {
            let a = self.pump();
            let b = self.deliver_round();
            if !a && !b {
                return Ok(());
            }
            steps += 1;
            if steps > STEP_LIMIT {
                return Err(format!("still moving after {STEP_LIMIT} steps (livelock?)"));
            }
        }
    }

    /// The earliest engine timer (a withheld SLEEP answer).
    pub fn next_timer(&self) -> Option<u64> {
        self.backends
            .values()
            .filter_map(|p| p.engine.as_ref().and_then(EngineConn::poll_timeout))
            .min()
    }

    fn fire_timers(&mut self, at: u64) {
        self.now_ms = self.now_ms.max(at);
        let now = self.now_ms;
        self.line("", &format!("clock {now}ms"));
        for p in self.backends.values_mut() {
            if let Some(e) = p.engine.as_mut() {
                if e.poll_timeout().is_some_and(|t| t <= now) {
                    e.handle_timeout(&mut self.hosts[p.host].engine, now);
                }
            }
        }
    }

    /// What is holding the world up, for "no answer" failures.
    fn describe_holds(&self) -> String {
        let mut held: Vec<String> = Vec::new();
        for h in &self.hosts {
            if h.stalled {
                held.push(format!("shard {} is stalled", h.display));
            }
            if h.partitioned {
                held.push(format!(
                    "shard {} is partitioned from the gateway",
                    h.display
                ));
            }
        }
        for c in self.clients.iter().filter(|c| c.partitioned) {
            held.push(format!("client {} is partitioned from the gateway", c.name));
        }
        held.extend(
            self.backends
                .values()
                .filter(|p| p.down.is_held() && !p.down.is_empty())
                .map(|p| format!("{} is held", p.who)),
        );
        if held.is_empty() {
            "nothing is held".into()
        } else {
            held.join(", ")
        }
    }
}

impl Harness for World {
    fn note(&mut self, line: &str) {
        self.line("", line);
    }

    fn transcript(&self) -> String {
        self.transcript.clone()
    }

    fn connect(&mut self, client: &str, opts: &ConnectOptions) -> Result<(), String> {
        if self.clients.iter().any(|c| c.name == client) {
            return Err(format!("client {client} already exists"));
        }
        let id = self.gw.next_connection_id();
        let scramble = self.scramble();
        let session = Session::new(self.gw.clone(), id, scramble);
        self.clients.push(ClientSlot {
            name: client.to_string(),
            client: ScriptedClient::new(&opts.user, &opts.password, opts.database.as_deref()),
            session,
            up: Link::default(),
            down: Link::default(),
            trace: Tracker::new(self.record),
            to_gw: format!("client {client} -> gateway"),
            from_gw: format!("gateway -> client {client}"),
            hung_up: false,
            session_closed: false,
            close_reason: None,
            partitioned: false,
        });
        self.run_until_quiet()
    }

    fn query(&mut self, client: &str, sql: &str) -> Result<(), String> {
        let ci = self.client_index(client)?;
        self.clients[ci]
            .client
            .query(sql)
            .map_err(|e| format!("client {client} cannot send: {}", e.message))?;
        self.run_until_quiet()
    }

    fn prepare(&mut self, client: &str, sql: &str) -> Result<(), String> {
        let ci = self.client_index(client)?;
        self.clients[ci]
            .client
            .prepare(sql)
            .map_err(|e| format!("client {client} cannot send: {}", e.message))?;
        self.run_until_quiet()
    }

    fn execute(&mut self, client: &str, stmt_id: u32, params: &[Value]) -> Result<(), String> {
        let ci = self.client_index(client)?;
        self.clients[ci]
            .client
            .execute(stmt_id, params)
            .map_err(|e| format!("client {client} cannot send: {}", e.message))?;
        self.run_until_quiet()
    }

    fn disconnect(&mut self, client: &str) -> Result<(), String> {
        let ci = self.client_index(client)?;
        let slot = &mut self.clients[ci];
        if slot.hung_up {
            return Err(format!("client {client} already disconnected"));
        }
        slot.hung_up = true;
        slot.up.push(LinkItem::Close);
        slot.down.discard();
        while slot.client.next_answer().is_some() {}
        self.run_until_quiet()
    }

    fn next_answer(&mut self, client: &str) -> Result<Answer, String> {
        let ci = self.client_index(client)?;
        loop {
            self.run_until_quiet()?;
            if let Some(a) = self.clients[ci].client.next_answer() {
                return Ok(a);
            }
            if self.clients[ci].hung_up {
                return Err(format!("client {client} has disconnected"));
            }
            match self.next_timer() {
                Some(t) => self.fire_timers(t),
                None => {
                    return Err(format!(
                        "no answer for {client}: the world is quiet ({})",
                        self.describe_holds()
                    ))
                }
            }
        }
    }

    fn session_state(&self, client: &str) -> Result<SessionState, String> {
        let ci = self.client_index(client)?;
        let slot = &self.clients[ci];
        Ok(if !slot.session.is_closed() {
            SessionState::Open
        } else if slot.hung_up {
            SessionState::ClosedByClient
        } else {
            SessionState::ClosedByGateway {
                reason: slot.close_reason.clone(),
            }
        })
    }

    fn settle(&mut self) -> Result<(), String> {
        self.run_until_quiet()
    }

    fn advance(&mut self, ms: u64) -> Result<(), String> {
        let target = self.now_ms + ms;
        loop {
            self.run_until_quiet()?;
            match self.next_timer() {
                Some(t) if t <= target => self.fire_timers(t),
                _ => break,
            }
        }
        if self.now_ms < target {
            self.fire_timers(target);
        }
        self.run_until_quiet()
    }

    fn arm_fault(&mut self, shard: &str, fault: ShardFault) -> Result<(), String> {
        let hi = self.host_index(shard)?;
        self.hosts[hi].armed.push_back(fault);
        Ok(())
    }

    fn drop_connections(&mut self, shard: &str) -> Result<(), String> {
        let hi = self.host_index(shard)?;
        for p in self.backends.values_mut().filter(|p| p.host == hi) {
            if let Some(mut e) = p.engine.take() {
                e.handle_close(&mut self.hosts[hi].engine);
                p.up.discard();
                if self.hosts[hi].stalled || p.down.is_held() {
                    // Held bytes were never sent: they die with the connection.
                    p.down.lose_pending();
                }
                p.down.push(LinkItem::Note(format!(
                    "fault: {} drops the connection",
                    p.who
                )));
                p.down.push(LinkItem::Close);
            }
        }
        self.run_until_quiet()
    }

    fn crash(&mut self, shard: &str) -> Result<(), String> {
        let hi = self.host_index(shard)?;
        self.hosts[hi].crashed = true;
        let text = format!("fault: shard {} crashes", self.hosts[hi].display);
        self.line("", &text);
        self.drop_connections(shard)
    }

    fn restart(&mut self, shard: &str) -> Result<(), String> {
        let hi = self.host_index(shard)?;
        self.hosts[hi].crashed = false;
        let text = format!("fault: shard {} restarts", self.hosts[hi].display);
        self.line("", &text);
        self.run_until_quiet()
    }

    fn partition(&mut self, target: &Endpoint) -> Result<(), String> {
        match target {
            Endpoint::Shard(s) => {
                let hi = self.host_index(s)?;
                self.hosts[hi].partitioned = true;
                let text = format!(
                    "fault: partition between the gateway and shard {}",
                    self.hosts[hi].display
                );
                self.line("", &text);
            }
            Endpoint::Client(c) => {
                let ci = self.client_index(c)?;
                self.clients[ci].partitioned = true;
                self.line(
                    "",
                    &format!("fault: partition between the gateway and client {c}"),
                );
            }
        }
        Ok(())
    }

    fn heal(&mut self) -> Result<(), String> {
        for h in &mut self.hosts {
            h.partitioned = false;
        }
        for c in &mut self.clients {
            c.partitioned = false;
        }
        self.line("", "fault: every partition heals");
        self.run_until_quiet()
    }

    fn stall(&mut self, shard: &str) -> Result<(), String> {
        let hi = self.host_index(shard)?;
        self.hosts[hi].stalled = true;
        Ok(())
    }

    fn resume(&mut self, shard: &str) -> Result<(), String> {
        let hi = self.host_index(shard)?;
        self.hosts[hi].stalled = false;
        for p in self.backends.values_mut().filter(|p| p.host == hi) {
            p.down.resume();
        }
        self.run_until_quiet()
    }

    fn set_split_packets(&mut self, on: bool) {
        self.split_packets = on;
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
        let hi = self.host_index(shard)?;
        let now = self.now_ms;
        let engine = &mut self.hosts[hi].engine;
        let mut s = EngineSession::new(0, None);
        s.set_database(database, engine)
            .map_err(|e| e.to_string())?;
        match engine.execute(&mut s, sql, now) {
            Ok(e) => match e.outcome {
                shardgate_engine::Outcome::Rows { rows, .. } => Ok(rows),
                shardgate_engine::Outcome::Ok(_) => Ok(Vec::new()),
            },
            Err(e) => Err(e.to_string()),
        }
    }

    fn finish(&mut self) -> Vec<String> {
        let mut failures = Vec::new();
        for slot in &mut self.clients {
            let mut left = Vec::new();
            while let Some(a) = slot.client.next_answer() {
                left.push(a.describe());
            }
            if !left.is_empty() {
                failures.push(format!(
                    "client {}: answers never awaited: {}",
                    slot.name,
                    left.join("; ")
                ));
            }
        }
        self.line("", "-- end of scenario: every client quits");
        for h in &mut self.hosts {
            h.stalled = false;
            h.partitioned = false;
        }
        for c in &mut self.clients {
            c.partitioned = false;
        }
        for p in self.backends.values_mut() {
            p.down.resume();
        }
        for slot in &mut self.clients {
            if !slot.hung_up && !slot.client.is_closed() {
                if slot.client.is_idle() {
                    slot.client.quit();
                    while let Some(b) = slot.client.poll_transmit() {
                        slot.up.push_data(b);
                    }
                }
                slot.hung_up = true;
                slot.up.push(LinkItem::Close);
                slot.down.discard();
            }
        }
        if let Err(e) = self.run_until_quiet() {
            failures.push(e);
        }
        for slot in &self.clients {
            if !slot.session.is_closed() {
                failures.push(format!(
                    "session {} still open after its client left",
                    slot.name
                ));
            }
        }
        for who in self.open_backends() {
            failures.push(format!(
                "backend connection {who} leaked: still open after every client left"
            ));
        }
        failures.extend(
            self.violations
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
        self.line("", &counters);
        failures
    }
}

/// A log line that says the gateway closes a client connection: (connection id, why).
/// `closing client connection` carries its reason; `connection killed` (KILL from another
/// session, logged at INFO) is its own reason.
pub fn close_reason(l: &crate::logs::LogLine) -> Option<(u32, String)> {
    let conn = l.field("conn").and_then(|c| c.parse::<u32>().ok())?;
    match l.message.as_str() {
        "closing client connection" => Some((conn, l.field("reason")?.to_string())),
        "connection killed" => Some((conn, "connection killed".to_string())),
        _ => None,
    }
}

/// Failpoint panics are expected in simulation: keep their message off stderr (other panics
/// still print through the previous hook).
pub(crate) fn quiet_failpoint_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let msg = info
                .payload()
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| info.payload().downcast_ref::<&str>().copied())
                .unwrap_or("");
            if !msg.starts_with("failpoint:") {
                previous(info);
            }
        }));
    });
}
