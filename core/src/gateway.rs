//! What all sessions of one gateway share: the server configuration, the topology (which
//! keyspaces and shards exist, and where each shard lives), counters, and failpoints.
//!
//! Shared by reference (`Arc<Gateway>`); its mutable parts are atomics or small mutexes, never
//! held across calls, so a panic in one session cannot poison another.

use crate::plan::PlanCache;
use crate::pool::{PoolConfig, PoolStats};
use crate::server::ServerConfig;
use crate::vschema::{KeyspaceSchema, SequenceCache, ShardMap, VSchema};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Where the driver must connect for one shard. Opaque to the core: the driver maps it to a
/// socket address or an in-process engine.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ShardAddress {
    /// `mysql://user:pass@host:port/db`.
    Mysql {
        user: String,
        password: String,
        host: String,
        port: u16,
        database: String,
        /// `?ssl=true`: TLS toward the shard (MySQL's ssl-mode=REQUIRED: encrypted, the
        /// server's certificate is not verified).
        tls: bool,
        /// `?ssl-ca=PATH` (implies TLS): the server's certificate must chain to a CA of this
        /// PEM file and name the URL's host (MySQL's ssl-mode=VERIFY_IDENTITY).
        ssl_ca: Option<String>,
    },
    /// An in-process simulated engine; `name` identifies its data set.
    Embedded { name: String, database: String },
}

impl ShardAddress {
    /// Parses `embedded` (with a name given by the caller) or a `mysql://` URL.
    pub fn parse(url: &str, embedded_name: &str, default_db: &str) -> Result<ShardAddress, String> {
        if url == "embedded" {
            return Ok(ShardAddress::Embedded {
                name: embedded_name.to_string(),
                database: default_db.to_string(),
            });
        }
        let rest = url
            .strip_prefix("mysql://")
            .ok_or_else(|| format!("shard URL must start with mysql:// or be 'embedded': {url}"))?;
        let (auth, hostpart) = match rest.rsplit_once('@') {
            Some((a, h)) => (a, h),
            None => ("root", rest),
        };
        let (user, password) = match auth.split_once(':') {
            Some((u, p)) => (u.to_string(), p.to_string()),
            None => (auth.to_string(), String::new()),
        };
        let (hostpart, query) = match hostpart.split_once('?') {
            Some((h, q)) => (h, q),
            None => (hostpart, ""),
        };
        let mut tls = false;
        let mut ssl_ca = None;
        for param in query.split('&').filter(|p| !p.is_empty()) {
            match param.split_once('=') {
                Some(("ssl", "true" | "1")) => tls = true,
                Some(("ssl", "false" | "0")) => tls = false,
                Some(("ssl-ca" | "ssl_ca", path)) if !path.is_empty() => {
                    ssl_ca = Some(path.to_string())
                }
                _ => {
                    return Err(format!(
                    "unknown URL parameter {param:?} in {url} (known: ssl=true|false, ssl-ca=PATH)"
                ))
                }
            }
        }
        if ssl_ca.is_some() {
            if query.split('&').any(|p| matches!(p, "ssl=false" | "ssl=0")) {
                return Err(format!("ssl-ca needs TLS, but {url} says ssl=false"));
            }
            tls = true;
        }
        let (hostport, database) = match hostpart.split_once('/') {
            Some((h, d)) => (h, d.to_string()),
            None => (hostpart, default_db.to_string()),
        };
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) => (
                h.to_string(),
                p.parse::<u16>().map_err(|_| format!("bad port in {url}"))?,
            ),
            None => (hostport.to_string(), 3306),
        };
        if host.is_empty() {
            return Err(format!("missing host in {url}"));
        }
        Ok(ShardAddress::Mysql {
            user,
            password,
            host,
            port,
            database,
            tls,
            ssl_ca,
        })
    }

    /// The database name on the shard's server.
    pub fn database(&self) -> &str {
        match self {
            ShardAddress::Mysql { database, .. } | ShardAddress::Embedded { database, .. } => {
                database
            }
        }
    }
}

/// One shard of a keyspace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shard {
    /// Key range name, e.g. `-80`, `80-`, or `0` for an unsharded keyspace.
    pub name: String,
    /// The primary tablet: writes, transactions and reads without a tablet type.
    pub address: ShardAddress,
    /// Replica tablets (`--shard KS/SHARD@replica=URL`): reads under a `USE ks@replica` (or
    /// `@rdonly`) target.
    pub replicas: Vec<ShardAddress>,
}

/// Which tablets of a shard a statement may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TabletType {
    Primary,
    /// `@replica` and `@rdonly` targets (rdonly tablets are not told apart from replicas).
    Replica,
}

/// The last health check of one tablet. Written by the driver's health checker, read by
/// sessions when they pick a tablet. A tablet never checked counts as healthy.
#[derive(Debug)]
pub struct TabletHealth {
    /// `keyspace/shard` for a primary, `keyspace/shard@replica<N>` for a replica.
    pub name: String,
    pub tablet_type: TabletType,
    healthy: std::sync::atomic::AtomicBool,
    pub checks: AtomicU64,
    pub failures: AtomicU64,
    last_error: Mutex<String>,
}

impl TabletHealth {
    fn new(name: String, tablet_type: TabletType) -> TabletHealth {
        TabletHealth {
            name,
            tablet_type,
            healthy: std::sync::atomic::AtomicBool::new(true),
            checks: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            last_error: Mutex::new(String::new()),
        }
    }

    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    /// The error of the last failed check ("" when the last check passed).
    pub fn last_error(&self) -> String {
        self.last_error
            .lock()
            .map(|e| e.clone())
            .unwrap_or_default()
    }

    /// Records one check: `Ok` healthy, `Err(reason)` unhealthy.
    pub fn record(&self, result: Result<(), String>) {
        self.checks.fetch_add(1, Ordering::Relaxed);
        let (healthy, err) = match result {
            Ok(()) => (true, String::new()),
            Err(e) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                (false, e)
            }
        };
        if let Ok(mut g) = self.last_error.lock() {
            *g = err;
        }
        self.healthy.store(healthy, Ordering::Relaxed);
    }
}

/// A keyspace and its shards, in key-range order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Keyspace {
    pub name: String,
    pub sharded: bool,
    pub shards: Vec<Shard>,
}

/// All keyspaces, by name (ordered: iteration reaches SHOW output).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Topology {
    pub keyspaces: BTreeMap<String, Keyspace>,
    /// The keyspace a session uses before any `USE`.
    pub default_keyspace: String,
}

impl Topology {
    /// Keyspaces whose shards are all in-process engines (`(keyspace, shard)` pairs), as in
    /// the embedded default, tests and benchmarks. Whether a keyspace is sharded comes from
    /// the vschema given to [`Gateway::with_vschema`].
    pub fn embedded(shards: &[(&str, &str)], default_keyspace: &str) -> Topology {
        let mut keyspaces: BTreeMap<String, Keyspace> = BTreeMap::new();
        for (ks, shard) in shards {
            keyspaces
                .entry(ks.to_string())
                .or_insert_with(|| Keyspace {
                    name: ks.to_string(),
                    sharded: false,
                    shards: Vec::new(),
                })
                .shards
                .push(Shard {
                    name: shard.to_string(),
                    address: ShardAddress::Embedded {
                        name: format!("{ks}/{shard}"),
                        database: ks.to_string(),
                    },
                    replicas: Vec::new(),
                });
        }
        Topology {
            keyspaces,
            default_keyspace: default_keyspace.to_string(),
        }
    }

    /// One unsharded keyspace on one shard (the `--backend` mode).
    pub fn single(keyspace: &str, address: ShardAddress) -> Topology {
        let mut keyspaces = BTreeMap::new();
        keyspaces.insert(
            keyspace.to_string(),
            Keyspace {
                name: keyspace.to_string(),
                sharded: false,
                shards: vec![Shard {
                    name: "0".into(),
                    address,
                    replicas: Vec::new(),
                }],
            },
        );
        Topology {
            keyspaces,
            default_keyspace: keyspace.to_string(),
        }
    }
}

/// Counters read by tests, benchmarks and (later) the metrics endpoint.
#[derive(Debug, Default)]
pub struct Counters {
    pub connections: AtomicU64,
    pub statements: AtomicU64,
    pub errors: AtomicU64,
    /// Panics caught while handling a statement (each answered with ERR 1105).
    pub panics: AtomicU64,
    /// Connections the gateway closed itself (each logged with its reason).
    pub closed_by_gateway: AtomicU64,
    /// Reads run again on a fresh connection after their connection failed before any
    /// result (see `Session::retry_read`).
    pub read_retries: AtomicU64,
}

/// Fault-injection hooks for the simulator and tests; inert unless set.
#[derive(Debug, Default)]
pub struct Failpoints {
    /// Panic while handling any statement whose text contains this marker.
    panic_on: Mutex<Option<String>>,
    /// Whether `panic_on` holds a marker: checked on every statement, so the unarmed case
    /// (always, outside tests) takes no lock.
    armed: AtomicBool,
}

impl Failpoints {
    /// Arms (`Some`) or disarms (`None`) the statement panic marker.
    pub fn set_panic_on(&self, marker: Option<&str>) {
        if let Ok(mut g) = self.panic_on.lock() {
            *g = marker.map(str::to_string);
            self.armed.store(g.is_some(), Ordering::SeqCst);
        }
    }

    /// Panics if the statement matches the armed marker (simulates a gateway bug).
    pub fn check_statement(&self, sql: &str) {
        if !self.armed.load(Ordering::Relaxed) {
            return;
        }
        let armed = self.panic_on.lock().ok().and_then(|g| g.clone());
        if let Some(marker) = armed {
            if sql.contains(&marker) {
                panic!("failpoint: panic while handling a statement containing {marker:?}");
            }
        }
    }
}

/// A live client connection, for KILL and SHOW PROCESSLIST-style lookups.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionInfo {
    pub user: String,
}

/// Limits that apply to every session (configurable at start). Times in milliseconds;
/// 0 disables a timeout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// OLTP workload: a result with more rows ends with ERR (use `set workload='olap'`).
    pub oltp_max_rows: u64,
    /// Rows a streaming merge may hold for one shard before that shard is no longer read.
    pub merge_queue_rows: usize,
    /// A client must authenticate within this time.
    pub handshake_timeout_ms: u64,
    /// An idle client connection is closed after this time (MySQL's wait_timeout).
    pub idle_timeout_ms: u64,
    /// A statement running longer ends with ERR 3024 (a session's `max_execution_time`
    /// overrides it).
    pub query_timeout_ms: u64,
    /// Client connections beyond this get ERR 1040.
    pub max_connections: usize,
    /// Connecting to a shard (TCP connect, handshake, authentication) must finish within
    /// this time, else the statement that needed it ends with an ERR.
    pub shard_connect_timeout_ms: u64,
    /// Backend connection pools, per tablet.
    pub pool: PoolConfig,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            oltp_max_rows: 100_000,
            merge_queue_rows: 1_024,
            handshake_timeout_ms: 10_000,
            idle_timeout_ms: 28_800_000,
            query_timeout_ms: 0,
            max_connections: 10_000,
            shard_connect_timeout_ms: 5_000,
            pool: PoolConfig::default(),
        }
    }
}

/// Upper bounds (µs) of the latency histogram buckets; the last bucket is unbounded.
pub const LATENCY_BUCKETS_US: &[u64] = &[
    500, 1_000, 5_000, 10_000, 50_000, 100_000, 500_000, 1_000_000, 5_000_000, 10_000_000,
];

/// A fixed-bucket histogram with counts and total time per bucket (Vitess's timings shape).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Histogram {
    /// Upper bounds (µs) of the buckets; one more bucket holds everything above.
    pub bounds: &'static [u64],
    pub counts: Vec<u64>,
    pub totals_us: Vec<u64>,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram::with_buckets(LATENCY_BUCKETS_US)
    }
}

impl Histogram {
    pub fn with_buckets(bounds: &'static [u64]) -> Self {
        Histogram {
            bounds,
            counts: vec![0; bounds.len() + 1],
            totals_us: vec![0; bounds.len() + 1],
        }
    }
    pub fn record(&mut self, us: u64) {
        let i = bucket_of(self.bounds, us);
        self.counts[i] += 1;
        self.totals_us[i] += us;
    }
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }
    pub fn total_us(&self) -> u64 {
        self.totals_us.iter().sum()
    }
    /// Bucket names: each upper bound in µs, then `inf`.
    pub fn bucket_names(&self) -> impl Iterator<Item = String> + '_ {
        self.bounds
            .iter()
            .map(|b| b.to_string())
            .chain(std::iter::once("inf".to_string()))
    }
}

/// The bucket of `us` among upper `bounds`; past the last bound, the unbounded bucket.
fn bucket_of(bounds: &[u64], us: u64) -> usize {
    bounds.iter().position(|b| us <= *b).unwrap_or(bounds.len())
}

/// One statement, for the query log and the metrics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatementRecord {
    pub connection_id: u32,
    pub keyspace: Arc<str>,
    pub shards: Vec<String>,
    pub plan: &'static str,
    pub rows: u64,
    pub duration_us: u64,
    pub error: Option<u16>,
    /// The statement text, cut to a bounded length. With the shard labels, filled only when
    /// a query log is set ([`Gateway::query_log`]): the statistics need neither.
    pub sql: String,
}

/// Aggregated statement statistics (ordered maps: rendered as-is by the metrics endpoints).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// (plan type, keyspace) -> statements.
    pub queries: BTreeMap<(String, String), u64>,
    /// error code -> count.
    pub errors: BTreeMap<u16, u64>,
    /// Latency of every statement.
    pub latency: Histogram,
    pub rows_returned: u64,
}

/// Where finished statements go besides the statistics (the driver's query log).
pub struct QueryLogSink(pub Box<dyn Fn(&StatementRecord) + Send + Sync>);

impl std::fmt::Debug for QueryLogSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("QueryLogSink")
    }
}

/// Statement statistics of a gateway. Every session records every statement here, so the
/// common case takes no lock and allocates nothing: a session keeps the counter of its last
/// (plan, keyspace) pair ([`StatsCounter`]); latency and rows are atomics.
#[derive(Debug, Default)]
pub struct Stats {
    /// plan type -> keyspace -> statements (nested so a known pair is found by `&str`).
    queries: Mutex<BTreeMap<&'static str, BTreeMap<String, Arc<AtomicU64>>>>,
    /// error code -> count (errors only: off the common path).
    errors: Mutex<BTreeMap<u16, u64>>,
    latency: AtomicHistogram,
    rows_returned: AtomicU64,
}

/// A session's cached statement counter: the (plan, keyspace) pair it counts, and the count.
#[derive(Debug)]
pub struct StatsCounter {
    plan: &'static str,
    keyspace: Arc<str>,
    count: Arc<AtomicU64>,
}

impl Stats {
    /// Records one finished statement, counting it through `cached` when that counts `r`'s
    /// (plan, keyspace) pair, else through the pair's counter, which then becomes the cached one.
    pub fn record_cached(&self, cached: &mut Option<StatsCounter>, r: &StatementRecord) {
        let hit = cached.as_ref().is_some_and(|c| {
            c.plan == r.plan
                && (Arc::ptr_eq(&c.keyspace, &r.keyspace) || *c.keyspace == *r.keyspace)
        });
        if !hit {
            *cached = self.queries.lock().ok().map(|mut q| {
                let by_ks = q.entry(r.plan).or_default();
                let count = match by_ks.get(&*r.keyspace) {
                    Some(n) => n.clone(),
                    None => by_ks.entry(r.keyspace.to_string()).or_default().clone(),
                };
                StatsCounter {
                    plan: r.plan,
                    keyspace: r.keyspace.clone(),
                    count,
                }
            });
        }
        if let Some(c) = cached {
            c.count.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(code) = r.error {
            if let Ok(mut e) = self.errors.lock() {
                *e.entry(code).or_default() += 1;
            }
        }
        self.latency.record(r.duration_us);
        self.rows_returned.fetch_add(r.rows, Ordering::Relaxed);
    }
    pub fn snapshot(&self) -> StatsSnapshot {
        let queries = self
            .queries
            .lock()
            .map(|q| {
                q.iter()
                    .flat_map(|(plan, by_ks)| {
                        by_ks.iter().map(|(ks, n)| {
                            ((plan.to_string(), ks.clone()), n.load(Ordering::Relaxed))
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        StatsSnapshot {
            queries,
            errors: self.errors.lock().map(|e| e.clone()).unwrap_or_default(),
            latency: self.latency.snapshot(),
            rows_returned: self.rows_returned.load(Ordering::Relaxed),
        }
    }
}

/// [`Histogram`] with atomic buckets (the [`LATENCY_BUCKETS_US`] bounds), recorded without
/// a lock.
#[derive(Debug, Default)]
struct AtomicHistogram {
    counts: [AtomicU64; LATENCY_BUCKETS_US.len() + 1],
    totals_us: [AtomicU64; LATENCY_BUCKETS_US.len() + 1],
}

impl AtomicHistogram {
    fn record(&self, us: u64) {
        let i = bucket_of(LATENCY_BUCKETS_US, us);
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        self.totals_us[i].fetch_add(us, Ordering::Relaxed);
    }
    fn snapshot(&self) -> Histogram {
        let load = |a: &[AtomicU64]| a.iter().map(|c| c.load(Ordering::Relaxed)).collect();
        Histogram {
            bounds: LATENCY_BUCKETS_US,
            counts: load(&self.counts),
            totals_us: load(&self.totals_us),
        }
    }
}

/// Plans kept by the plan cache.
pub const PLAN_CACHE_ENTRIES: usize = 5_000;

/// State shared by all sessions of one gateway.
#[derive(Debug)]
pub struct Gateway {
    pub server: Arc<ServerConfig>,
    pub topology: Topology,
    pub vschema: VSchema,
    /// Key ranges of each keyspace's shards (index = position in `topology`).
    pub shard_maps: BTreeMap<String, ShardMap>,
    /// `--backend` mode: one unsharded keyspace and no vschema; statements go through
    /// untouched, USE and COM_INIT_DB included.
    pub passthrough: bool,
    pub plans: PlanCache,
    pub limits: Limits,
    pub stats: Stats,
    /// Set once by the driver to receive every finished statement.
    pub query_log: std::sync::OnceLock<QueryLogSink>,
    /// Sequence blocks, per (keyspace, table).
    pub sequences: Mutex<BTreeMap<(String, String), SequenceCache>>,
    pub counters: Counters,
    pub failpoints: Failpoints,
    /// Backend pool statistics per tablet (the driver owns the pools themselves).
    pub pools: BTreeMap<ShardAddress, PoolStats>,
    /// Health of every tablet (primaries and replicas), from the driver's periodic checks.
    pub health: BTreeMap<ShardAddress, TabletHealth>,
    /// Authenticated sessions by connection id.
    sessions: Mutex<BTreeMap<u32, SessionInfo>>,
    next_connection_id: AtomicU32,
}

impl Gateway {
    /// A pass-through gateway over one unsharded keyspace (no vschema).
    pub fn new(server: ServerConfig, topology: Topology) -> Arc<Gateway> {
        let mut vschema = VSchema::default();
        for (name, ks) in &topology.keyspaces {
            vschema.keyspaces.insert(
                name.clone(),
                KeyspaceSchema {
                    name: name.clone(),
                    sharded: ks.sharded,
                    ..Default::default()
                },
            );
        }
        let single_unsharded =
            topology.keyspaces.len() == 1 && topology.keyspaces.values().all(|k| !k.sharded);
        Self::build(server, topology, vschema, single_unsharded)
    }

    /// A sharding gateway. Checks that every keyspace of the vschema has shards, and orders
    /// each keyspace's shards by key range.
    ///
    /// # Errors
    /// A description of every mismatch between vschema and topology.
    pub fn with_vschema(
        server: ServerConfig,
        mut topology: Topology,
        mut vschema: VSchema,
    ) -> Result<Arc<Gateway>, String> {
        let mut problems = Vec::new();
        for (name, ks) in topology.keyspaces.iter_mut() {
            let names: Vec<&str> = ks.shards.iter().map(|s| s.name.as_str()).collect();
            match ShardMap::from_names(&names) {
                Ok(map) => {
                    let order: Vec<String> = map.shards().iter().map(|s| s.name.clone()).collect();
                    ks.shards
                        .sort_by_key(|s| order.iter().position(|n| *n == s.name));
                    if ks.sharded {
                        problems.extend(
                            map.check_full_coverage()
                                .into_iter()
                                .map(|e| format!("keyspace {name}: {e}")),
                        );
                    }
                }
                Err(e) => problems.push(format!("keyspace {name}: {e}")),
            }
            match vschema.keyspaces.get(name) {
                Some(v) => ks.sharded = v.sharded,
                None => {
                    vschema.keyspaces.insert(
                        name.clone(),
                        KeyspaceSchema {
                            name: name.clone(),
                            sharded: false,
                            ..Default::default()
                        },
                    );
                }
            }
            if !ks.sharded && ks.shards.len() != 1 {
                problems.push(format!(
                    "unsharded keyspace {name} must have exactly one shard, has {}",
                    ks.shards.len()
                ));
            }
        }
        for name in vschema.keyspaces.keys() {
            if !topology.keyspaces.contains_key(name) {
                problems.push(format!(
                    "keyspace {name} of the vschema has no shards (add --shard {name}/<range>=URL)"
                ));
            }
        }
        if !topology.keyspaces.contains_key(&topology.default_keyspace) {
            if let Some(first) = topology.keyspaces.keys().next() {
                topology.default_keyspace = first.clone();
            }
        }
        if problems.is_empty() {
            Ok(Self::build(server, topology, vschema, false))
        } else {
            Err(problems.join("\n"))
        }
    }

    /// The same gateway with its client-facing server config changed (users, TLS), at start
    /// before any session exists.
    ///
    /// # Errors
    /// The gateway is already shared.
    pub fn with_server_config(
        self: Arc<Self>,
        change: impl FnOnce(&mut ServerConfig),
    ) -> Result<Arc<Gateway>, String> {
        let mut g =
            Arc::try_unwrap(self).map_err(|_| "the gateway is already shared".to_string())?;
        change(Arc::make_mut(&mut g.server));
        Ok(Arc::new(g))
    }

    /// The same gateway with other limits (set at start, before any session exists).
    pub fn with_limits(self: Arc<Self>, limits: Limits) -> Arc<Gateway> {
        match Arc::try_unwrap(self) {
            Ok(mut g) => {
                g.pools = pool_stats(&g.topology, limits.pool.max_size);
                g.limits = limits;
                Arc::new(g)
            }
            Err(shared) => {
                tracing::warn!("limits not applied: the gateway is already shared");
                shared
            }
        }
    }

    fn build(
        server: ServerConfig,
        topology: Topology,
        vschema: VSchema,
        passthrough: bool,
    ) -> Arc<Gateway> {
        let shard_maps = topology
            .keyspaces
            .iter()
            .filter_map(|(name, ks)| {
                let names: Vec<&str> = ks.shards.iter().map(|s| s.name.as_str()).collect();
                ShardMap::from_names(&names).ok().map(|m| (name.clone(), m))
            })
            .collect();
        let limits = Limits::default();
        let mut server = server;
        // Pass-through forwards prepared statements' parameters as the client encoded them.
        server.forward_params = passthrough;
        Arc::new(Gateway {
            server: Arc::new(server),
            pools: pool_stats(&topology, limits.pool.max_size),
            health: tablet_health(&topology),
            topology,
            vschema,
            shard_maps,
            passthrough,
            plans: PlanCache::new(PLAN_CACHE_ENTRIES),
            limits,
            stats: Stats::default(),
            query_log: std::sync::OnceLock::new(),
            sequences: Mutex::new(BTreeMap::new()),
            counters: Counters::default(),
            failpoints: Failpoints::default(),
            sessions: Mutex::new(BTreeMap::new()),
            next_connection_id: AtomicU32::new(1),
        })
    }

    /// The health entry of the tablet at `address`.
    pub fn tablet_health(&self, address: &ShardAddress) -> Option<&TabletHealth> {
        self.health.get(address)
    }

    /// The tablet of shard `shard` (index in key-range order) of keyspace `ks` a statement of
    /// tablet type `ty` uses. A primary that failed its last health check is an ERR at once
    /// (never a connect that hangs); replicas are tried from position `start` (rotated, so
    /// sessions spread over them) and the first healthy one wins. With no healthy replica the
    /// statement fails, as in Vitess: reads under `@replica` never silently move to the
    /// primary.
    ///
    /// # Errors
    /// 1429 (HY000) naming the shard and the last health-check error; 1049 for an unknown
    /// keyspace or shard.
    pub fn pick_tablet(
        &self,
        ks: &str,
        shard: usize,
        ty: TabletType,
        start: usize,
        avoid: Option<&ShardAddress>,
    ) -> Result<ShardAddress, crate::SqlError> {
        use crate::error::codes::ER_CONNECT_TO_FOREIGN_DATA_SOURCE as UNAVAILABLE;
        let Some(s) = self
            .topology
            .keyspaces
            .get(ks)
            .and_then(|k| k.shards.get(shard))
        else {
            return Err(crate::SqlError::new(
                1049,
                "42000",
                format!("Unknown keyspace '{ks}' (shard {shard})"),
            ));
        };
        let unhealthy = |a: &ShardAddress| {
            self.health
                .get(a)
                .filter(|h| !h.is_healthy())
                .map(|h| (h.name.clone(), h.last_error()))
        };
        match ty {
            TabletType::Primary => match unhealthy(&s.address) {
                None => Ok(s.address.clone()),
                Some((_, err)) => Err(crate::SqlError::new(
                    UNAVAILABLE,
                    "HY000",
                    format!("shard {ks}/{} is unhealthy: {err}", s.name),
                )),
            },
            TabletType::Replica => {
                let n = s.replicas.len();
                if n == 0 {
                    return Err(crate::SqlError::new(
                        UNAVAILABLE,
                        "HY000",
                        format!(
                            "no replica tablet for shard {ks}/{} (target @replica; add --shard {ks}/{}@replica=URL)",
                            s.name, s.name
                        ),
                    ));
                }
                let mut errors = Vec::new();
                let mut avoided = None;
                for i in 0..n {
                    let a = &s.replicas[(start + i) % n];
                    match unhealthy(a) {
                        None if Some(a) == avoid => avoided = Some(a.clone()),
                        None => return Ok(a.clone()),
                        Some((name, err)) => errors.push(format!("{name}: {err}")),
                    }
                }
                // `avoid` only when it is the one healthy replica left.
                if let Some(a) = avoided {
                    return Ok(a);
                }
                Err(crate::SqlError::new(
                    UNAVAILABLE,
                    "HY000",
                    format!(
                        "no healthy replica for shard {ks}/{} ({})",
                        s.name,
                        errors.join("; ")
                    ),
                ))
            }
        }
    }

    /// The pool statistics of the tablet at `address`.
    pub fn pool_stats(&self, address: &ShardAddress) -> Option<&PoolStats> {
        self.pools.get(address)
    }

    /// Records an authenticated session.
    pub fn register_session(&self, id: u32, user: &str) {
        if let Ok(mut s) = self.sessions.lock() {
            s.insert(
                id,
                SessionInfo {
                    user: user.to_string(),
                },
            );
        }
    }

    pub fn unregister_session(&self, id: u32) {
        if let Ok(mut s) = self.sessions.lock() {
            s.remove(&id);
        }
    }

    pub fn session_info(&self, id: u32) -> Option<SessionInfo> {
        self.sessions.lock().ok().and_then(|s| s.get(&id).cloned())
    }

    /// Live sessions (for metrics).
    pub fn session_count(&self) -> usize {
        self.sessions.lock().map(|s| s.len()).unwrap_or(0)
    }

    /// A fresh connection id (MySQL thread id), in order of arrival.
    pub fn next_connection_id(&self) -> u32 {
        self.next_connection_id.fetch_add(1, Ordering::Relaxed)
    }
}

/// One statistics entry per tablet (`keyspace/shard`, `keyspace/shard@replicaN`); a server
/// shared by several shards keeps the first name.
fn pool_stats(topology: &Topology, capacity: usize) -> BTreeMap<ShardAddress, PoolStats> {
    let mut pools = BTreeMap::new();
    for (address, name, _) in tablets(topology) {
        pools
            .entry(address)
            .or_insert_with(|| PoolStats::new(name, capacity));
    }
    pools
}

/// One health entry per tablet, named like its pool.
fn tablet_health(topology: &Topology) -> BTreeMap<ShardAddress, TabletHealth> {
    let mut health = BTreeMap::new();
    for (address, name, ty) in tablets(topology) {
        health
            .entry(address)
            .or_insert_with(|| TabletHealth::new(name, ty));
    }
    health
}

/// Every tablet of the topology in order: (address, name, type).
fn tablets(topology: &Topology) -> Vec<(ShardAddress, String, TabletType)> {
    let mut out = Vec::new();
    for ks in topology.keyspaces.values() {
        for s in &ks.shards {
            let name = format!("{}/{}", ks.name, s.name);
            out.push((s.address.clone(), name.clone(), TabletType::Primary));
            for (i, r) in s.replicas.iter().enumerate() {
                out.push((r.clone(), format!("{name}@replica{i}"), TabletType::Replica));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mysql(port: u16) -> ShardAddress {
        ShardAddress::parse(&format!("mysql://root@127.0.0.1:{port}/db"), "x", "d").unwrap()
    }

    /// ks/0 with primary :1 and replicas :2, :3.
    fn replicated() -> Arc<Gateway> {
        let mut t = Topology::single("ks", mysql(1));
        if let Some(k) = t.keyspaces.get_mut("ks") {
            k.shards[0].replicas = vec![mysql(2), mysql(3)];
        }
        Gateway::new(ServerConfig::default(), t)
    }

    #[test]
    fn tablets_are_named_and_start_healthy() {
        let gw = replicated();
        let names: Vec<&str> = gw.health.values().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["ks/0", "ks/0@replica0", "ks/0@replica1"]);
        assert!(gw.health.values().all(|h| h.is_healthy()));
        assert_eq!(gw.pools.len(), 3, "replicas get pools too");
    }

    #[test]
    fn unhealthy_primary_is_a_clear_error() {
        let gw = replicated();
        let p = TabletType::Primary;
        assert_eq!(gw.pick_tablet("ks", 0, p, 0, None).unwrap(), mysql(1));
        gw.tablet_health(&mysql(1))
            .unwrap()
            .record(Err("Connection refused".into()));
        let e = gw.pick_tablet("ks", 0, p, 0, None).unwrap_err();
        assert_eq!((e.code, &e.state), (1429, b"HY000"));
        assert_eq!(e.message, "shard ks/0 is unhealthy: Connection refused");
        // replicas are unaffected; a later passing check heals the primary
        assert!(gw
            .pick_tablet("ks", 0, TabletType::Replica, 0, None)
            .is_ok());
        gw.tablet_health(&mysql(1)).unwrap().record(Ok(()));
        assert_eq!(gw.pick_tablet("ks", 0, p, 0, None).unwrap(), mysql(1));
        let h = gw.tablet_health(&mysql(1)).unwrap();
        assert_eq!(
            (
                h.checks.load(Ordering::Relaxed),
                h.failures.load(Ordering::Relaxed)
            ),
            (2, 1)
        );
        assert_eq!(h.last_error(), "");
    }

    #[test]
    fn replica_reads_rotate_skip_unhealthy_and_avoid() {
        let gw = replicated();
        let r = TabletType::Replica;
        assert_eq!(gw.pick_tablet("ks", 0, r, 0, None).unwrap(), mysql(2));
        assert_eq!(gw.pick_tablet("ks", 0, r, 1, None).unwrap(), mysql(3));
        assert_eq!(gw.pick_tablet("ks", 0, r, 2, None).unwrap(), mysql(2));
        // a retry avoids the replica that failed, unless it is the only healthy one
        assert_eq!(
            gw.pick_tablet("ks", 0, r, 0, Some(&mysql(2))).unwrap(),
            mysql(3)
        );
        gw.tablet_health(&mysql(3))
            .unwrap()
            .record(Err("timeout".into()));
        for start in 0..4 {
            assert_eq!(gw.pick_tablet("ks", 0, r, start, None).unwrap(), mysql(2));
        }
        assert_eq!(
            gw.pick_tablet("ks", 0, r, 0, Some(&mysql(2))).unwrap(),
            mysql(2)
        );
        gw.tablet_health(&mysql(2))
            .unwrap()
            .record(Err("refused".into()));
        let e = gw.pick_tablet("ks", 0, r, 0, None).unwrap_err();
        assert_eq!(e.code, 1429);
        assert_eq!(
            e.message,
            "no healthy replica for shard ks/0 (ks/0@replica0: refused; ks/0@replica1: timeout)"
        );
        // reads under @replica never fall back to the (healthy) primary
        assert_eq!(
            gw.pick_tablet("ks", 0, TabletType::Primary, 0, None)
                .unwrap(),
            mysql(1)
        );
    }

    #[test]
    fn replica_target_without_replicas_errors() {
        let gw = Gateway::new(ServerConfig::default(), Topology::single("ks", mysql(1)));
        let e = gw
            .pick_tablet("ks", 0, TabletType::Replica, 0, None)
            .unwrap_err();
        assert_eq!(e.code, 1429);
        assert!(
            e.message.starts_with("no replica tablet for shard ks/0"),
            "{e}"
        );
        assert_eq!(
            gw.pick_tablet("nope", 0, TabletType::Primary, 0, None)
                .unwrap_err()
                .code,
            1049
        );
    }

    #[test]
    fn shard_urls_parse() {
        let a =
            ShardAddress::parse("mysql://root:pw@127.0.0.1:17100/commerce_x80", "x", "d").unwrap();
        assert_eq!(
            a,
            ShardAddress::Mysql {
                user: "root".into(),
                password: "pw".into(),
                host: "127.0.0.1".into(),
                port: 17100,
                database: "commerce_x80".into(),
                tls: false,
                ssl_ca: None,
            }
        );
        let v = ShardAddress::parse("mysql://u@h:1/db?ssl-ca=/etc/ca.pem", "x", "d").unwrap();
        assert!(
            matches!(v, ShardAddress::Mysql { tls: true, ssl_ca: Some(ref ca), .. } if ca == "/etc/ca.pem")
        );
        assert!(ShardAddress::parse("mysql://u@h/db?ssl=false&ssl-ca=/ca.pem", "x", "d").is_err());
        let t = ShardAddress::parse("mysql://u:p@h:1/db?ssl=true", "x", "d").unwrap();
        assert!(
            matches!(t, ShardAddress::Mysql { tls: true, ref database, .. } if database == "db")
        );
        let t = ShardAddress::parse("mysql://u@h?ssl=1", "x", "d").unwrap();
        assert!(
            matches!(t, ShardAddress::Mysql { tls: true, ref database, .. } if database == "d")
        );
        assert!(ShardAddress::parse("mysql://u@h/db?sslmode=x", "x", "d")
            .unwrap_err()
            .contains("unknown URL parameter"));
        let b = ShardAddress::parse("mysql://root@db:3307", "x", "ks").unwrap();
        assert_eq!(b.database(), "ks");
        assert!(ShardAddress::parse("postgres://x", "x", "d").is_err());
        assert!(ShardAddress::parse("mysql://root@:12/x", "x", "d").is_err());
        assert_eq!(
            ShardAddress::parse("embedded", "commerce/-80", "commerce")
                .unwrap()
                .database(),
            "commerce"
        );
    }

    #[test]
    fn cached_counters_count_each_plan_and_keyspace_pair() {
        let stats = Stats::default();
        let record = |plan: &'static str, ks: &str| StatementRecord {
            connection_id: 1,
            keyspace: Arc::from(ks),
            shards: Vec::new(),
            plan,
            rows: 2,
            duration_us: 10,
            error: None,
            sql: String::new(),
        };
        let mut cached = None;
        for r in [
            record("Passthrough", "a"),
            record("Passthrough", "a"),
            record("Passthrough", "b"),
            record("Local", "b"),
            record("Passthrough", "a"),
        ] {
            stats.record_cached(&mut cached, &r);
        }
        stats.record_cached(&mut None, &record("Local", "b"));
        let snap = stats.snapshot();
        let count = |p: &str, k: &str| snap.queries.get(&(p.to_string(), k.to_string())).copied();
        assert_eq!(count("Passthrough", "a"), Some(3));
        assert_eq!(count("Passthrough", "b"), Some(1));
        assert_eq!(count("Local", "b"), Some(2));
        assert_eq!(snap.queries.len(), 3);
        assert_eq!(snap.rows_returned, 12);
    }
}
