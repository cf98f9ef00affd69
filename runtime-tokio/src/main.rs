//! `shardgate`: the gateway binary.

use clap::{Parser, Subcommand};
use shardgate_core::gateway::ShardAddress;
use shardgate_runtime::config::{self, GatewaySpec};
use shardgate_runtime::driver::Driver;
use shardgate_runtime::net::{Net, TokioNet};
use std::process::ExitCode;

/// A sharding MySQL gateway. With no arguments it serves the embedded default (in-process
/// simulated shards, no MySQL needed) on 127.0.0.1:15306.
#[derive(Parser, Debug)]
#[command(name = "shardgate", version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    gateway: GatewayArgs,
    /// Address to listen on for MySQL clients.
    #[arg(long, default_value = "127.0.0.1:15306")]
    listen: String,
    /// Log filter (tracing EnvFilter syntax), e.g. `info` or `shardgate_core=debug`.
    #[arg(long, default_value = "info", env = "SHARDGATE_LOG", global = true)]
    log: String,
    /// Threads running client sessions, each a single-threaded runtime (default: number of
    /// cores). Accepting, HTTP and health checks run on the main thread.
    #[arg(long)]
    threads: Option<usize>,
    /// HTTP address for /healthz, /debug/vars and /metrics (e.g. 127.0.0.1:15000).
    #[arg(long)]
    http: Option<String>,
    /// Query log: one line per statement to this file, or `-` for stderr.
    #[arg(long)]
    query_log: Option<String>,
    #[command(flatten)]
    limits: LimitArgs,
    #[command(flatten)]
    security: SecurityArgs,
}

/// TLS toward clients and who may log in.
#[derive(clap::Args, Debug, Clone, Default)]
struct SecurityArgs {
    /// PEM certificate chain: offer TLS to clients (with --tls-key).
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<String>,
    /// PEM private key of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<String>,
    /// Refuse clients that do not switch to TLS (ERR 3159). Needs --tls-cert/--tls-key.
    #[arg(long)]
    require_secure_transport: bool,
    /// Users from a static auth file in Vitess's shape (like vtgate's
    /// -mysql_auth_server_static_file): {"user": [{"Password": "...", "MysqlNativePassword":
    /// "*HEX", "UserData": "...", "Keyspaces": ["ks"]}]}. Without it: root, no password.
    #[arg(long)]
    auth_file: Option<String>,
}

/// Timeouts and limits (0 disables a timeout).
#[derive(clap::Args, Debug, Clone)]
struct LimitArgs {
    /// Client connections beyond this get ERR 1040.
    #[arg(long, default_value_t = 10_000)]
    max_connections: usize,
    /// Statements running longer end with ERR 3024 (a session's max_execution_time overrides).
    #[arg(long, default_value_t = 0)]
    query_timeout_ms: u64,
    /// Idle client connections are closed after this long (MySQL's wait_timeout).
    #[arg(long, default_value_t = 28_800_000)]
    idle_timeout_ms: u64,
    /// Clients must authenticate within this time.
    #[arg(long, default_value_t = 10_000)]
    handshake_timeout_ms: u64,
    /// OLTP results with more rows end with an error (set workload='olap' to stream more).
    #[arg(long, default_value_t = 100_000)]
    oltp_max_rows: u64,
    /// How long in-flight statements may run after SIGTERM/SIGINT before the process exits.
    #[arg(long, default_value_t = 10_000)]
    shutdown_grace_ms: u64,
    /// Connecting to a shard (TCP, handshake, authentication) must finish within this time.
    #[arg(long, default_value_t = 5_000)]
    shard_connect_timeout_ms: u64,
    /// Backend connections per tablet at most, idle ones included (0: unbounded).
    #[arg(long, default_value_t = 128)]
    pool_size: usize,
    /// Pooled backend connections idle this long are closed.
    #[arg(long, default_value_t = 60_000)]
    pool_idle_timeout_ms: u64,
    /// A statement waits at most this long for a pooled connection, then gets ERR 1203.
    #[arg(long, default_value_t = 5_000)]
    pool_acquire_timeout_ms: u64,
    /// Every tablet (primary and replica) is checked this often: connect, log in, SELECT 1
    /// (0: no health checks; every tablet counts as healthy).
    #[arg(long, default_value_t = 5_000)]
    health_check_interval_ms: u64,
    /// A health check not done within this time fails.
    #[arg(long, default_value_t = 1_000)]
    health_check_timeout_ms: u64,
}

/// Where the shards are.
#[derive(clap::Args, Debug, Clone, Default)]
struct GatewayArgs {
    /// Serve one unsharded keyspace passing through to this server:
    /// mysql://USER:PASS@HOST:PORT/DB
    #[arg(long, global = true)]
    backend: Option<String>,
    /// Vitess VSchema JSON file: {"keyspaces": {"NAME": <keyspace vschema>}}.
    #[arg(long, global = true)]
    vschema: Option<String>,
    /// A shard: KEYSPACE/SHARD=mysql://USER:PASS@HOST:PORT/DB, or KEYSPACE/SHARD=embedded.
    /// Repeatable. KEYSPACE/SHARD@replica=URL adds a replica of that shard (repeatable too):
    /// reads under `USE ks@replica` go to a healthy replica.
    #[arg(long = "shard", global = true)]
    shards: Vec<String>,
    /// JSON config file with the same settings: {"vschema": FILE, "shards": {...}, "listen": ADDR, "users": {...}}.
    #[arg(long, global = true)]
    config: Option<String>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// VSchema tools.
    Vschema {
        #[command(subcommand)]
        action: VschemaCmd,
    },
    /// Runs DDL on every shard of a keyspace and reports each shard's answer.
    ApplySchema {
        #[arg(long)]
        keyspace: String,
        #[arg(long)]
        sql: String,
    },
}

#[derive(Subcommand, Debug)]
enum VschemaCmd {
    /// Checks a VSchema file and reports every problem with its path in the JSON.
    Validate { file: String },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(&cli.log))
        .with_writer(std::io::stderr)
        .init();
    if let Some(Command::Vschema {
        action: VschemaCmd::Validate { file },
    }) = &cli.command
    {
        return validate(file);
    }
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("shardgate: cannot start runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match &cli.command {
        Some(Command::ApplySchema { keyspace, sql }) => {
            rt.block_on(apply_schema(&cli.gateway, keyspace, sql))
        }
        _ => rt.block_on(serve(&cli)),
    };
    // Not dropped: this runtime runs the timers of the session threads (see
    // `shardgate_runtime::clock`), which keep polling them until the process exits; a
    // dropped runtime's timers panic when polled.
    std::mem::forget(rt);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("shardgate: {e}");
            ExitCode::FAILURE
        }
    }
}

fn validate(file: &str) -> ExitCode {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("shardgate: cannot read {file}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let errors = shardgate_core::vschema::validate_json(&text);
    if errors.is_empty() {
        println!("{file}: ok");
        ExitCode::SUCCESS
    } else {
        for e in &errors {
            println!("{file}: {e}");
        }
        println!("{} problem(s)", errors.len());
        ExitCode::FAILURE
    }
}

type Built = (
    std::sync::Arc<shardgate_core::gateway::Gateway>,
    std::sync::Arc<shardgate_runtime::embedded::EmbeddedShards>,
);

async fn build(args: &GatewayArgs) -> Result<(Built, Option<String>), String> {
    if let Some(url) = &args.backend {
        let address = ShardAddress::parse(url, "", "")?;
        let version = match shardgate_runtime::oneshot::server_version(&TokioNet, &address).await {
            Ok(v) => Some(v),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the backend's version; announcing shardgate's");
                None
            }
        };
        return Ok((config::passthrough(url, version)?, None));
    }
    let mut spec = match &args.config {
        Some(path) => config::read_config(path)?,
        None => GatewaySpec::default(),
    };
    if let Some(vs) = &args.vschema {
        spec.vschema_json =
            Some(std::fs::read_to_string(vs).map_err(|e| format!("cannot read {vs}: {e}"))?);
    }
    for s in &args.shards {
        config::add_shard_flag(&mut spec, s)?;
    }
    let listen = spec.listen.clone();
    if spec.shards.is_empty() && spec.vschema_json.is_none() {
        return Ok((config::embedded_default()?, listen));
    }
    Ok((config::build(&spec)?, listen))
}

async fn serve(cli: &Cli) -> Result<(), String> {
    let ((gateway, embedded), config_listen) = build(&cli.gateway).await?;
    embedded.use_wall_clock();
    let l = &cli.limits;
    let gateway = gateway.with_limits(shardgate_core::gateway::Limits {
        max_connections: l.max_connections,
        query_timeout_ms: l.query_timeout_ms,
        idle_timeout_ms: l.idle_timeout_ms,
        handshake_timeout_ms: l.handshake_timeout_ms,
        oltp_max_rows: l.oltp_max_rows,
        shard_connect_timeout_ms: l.shard_connect_timeout_ms,
        pool: shardgate_core::pool::PoolConfig {
            max_size: l.pool_size,
            idle_timeout_ms: l.pool_idle_timeout_ms,
            acquire_timeout_ms: l.pool_acquire_timeout_ms,
        },
        ..Default::default()
    });
    let sec = &cli.security;
    let users = match &sec.auth_file {
        Some(path) => {
            let text =
                std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?;
            let users = shardgate_core::users::parse_auth_file(&text)
                .map_err(|e| format!("{path}: {e}"))?;
            tracing::info!(file = %path, users = users.len(), "users from the auth file");
            Some(users)
        }
        None => None,
    };
    let acceptor = match (&sec.tls_cert, &sec.tls_key) {
        (Some(cert), Some(key)) => Some(shardgate_runtime::tls::acceptor_from_pem(cert, key)?),
        _ => None,
    };
    if sec.require_secure_transport && acceptor.is_none() {
        return Err("--require-secure-transport needs --tls-cert and --tls-key".into());
    }
    // A shard URL's CA file is read now, so that a wrong path stops the start-up instead of
    // failing every connection to that shard later.
    for k in gateway.topology.keyspaces.values() {
        for s in &k.shards {
            for address in std::iter::once(&s.address).chain(&s.replicas) {
                if let ShardAddress::Mysql {
                    ssl_ca: Some(ca), ..
                } = address
                {
                    shardgate_runtime::tls::shard_connector(Some(ca))?;
                }
            }
        }
    }
    let gateway = gateway.with_server_config(|server| {
        if let Some(users) = users {
            server.users = users;
        }
        server.tls = acceptor.is_some();
        server.require_secure_transport = sec.require_secure_transport;
    })?;
    if let Some(target) = &cli.query_log {
        shardgate_runtime::querylog::start(&gateway, target)
            .map_err(|e| format!("cannot open query log {target}: {e}"))?;
    }
    if let Some(addr) = &cli.http {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| format!("cannot listen on {addr} (http): {e}"))?;
        tracing::info!(%addr, "http endpoints: /healthz /debug/vars /metrics");
        let gw = gateway.clone();
        tokio::spawn(async move {
            if let Err(e) = shardgate_runtime::http::serve(listener, gw).await {
                tracing::error!(error = %e, "http endpoint stopped");
            }
        });
    }
    let listen = match (&config_listen, cli.listen.as_str()) {
        (Some(l), "127.0.0.1:15306") => l.clone(),
        _ => cli.listen.clone(),
    };
    let net = TokioNet;
    let listener = net
        .bind(&listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let addr = TokioNet::local_addr(&listener).unwrap_or_else(|_| listen.clone());
    let shards: Vec<String> = gateway
        .topology
        .keyspaces
        .values()
        .flat_map(|k| {
            k.shards
                .iter()
                .map(move |s| format!("{}/{}", k.name, s.name))
        })
        .collect();
    match &cli.gateway.backend {
        Some(url) => {
            tracing::info!(%addr, backend = %redact(url), "shardgate listening (pass-through)")
        }
        None => tracing::info!(%addr, shards = %shards.join(","), "shardgate listening"),
    }
    if cli.limits.health_check_interval_ms > 0 && cli.gateway.backend.is_none() {
        let every = std::time::Duration::from_millis(cli.limits.health_check_interval_ms);
        let timeout = std::time::Duration::from_millis(cli.limits.health_check_timeout_ms.max(1));
        tokio::spawn(shardgate_runtime::health::run(
            net,
            gateway.clone(),
            embedded.clone(),
            every,
            timeout,
        ));
    }
    let seed = std::process::id() as u64;
    let driver = Driver::new(net, gateway, embedded, seed);
    let threads = cli.threads.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    let workers = shardgate_runtime::workers::Workers::start(threads)
        .map_err(|e| format!("cannot start worker threads: {e}"))?;
    driver.set_workers(workers);
    if let Some(a) = acceptor {
        driver.set_tls(a);
        tracing::info!(
            require_secure_transport = sec.require_secure_transport,
            "TLS offered to clients"
        );
    }
    let accepting = tokio::spawn(driver.clone().serve(listener));
    shutdown_signal().await;
    tracing::info!("shutting down: no new clients; waiting for statements in progress");
    driver.begin_shutdown();
    let _ = accepting.await;
    let grace = std::time::Duration::from_millis(cli.limits.shutdown_grace_ms);
    let deadline = tokio::time::Instant::now() + grace;
    while driver.live_sessions() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let left = driver.live_sessions();
    if left > 0 {
        tracing::warn!(
            sessions = left,
            "grace period over: closing remaining sessions"
        );
    }
    tracing::info!("shardgate stopped");
    Ok(())
}

/// SIGTERM or SIGINT.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

async fn apply_schema(args: &GatewayArgs, keyspace: &str, sql: &str) -> Result<(), String> {
    let ((gateway, embedded), _) = build(args).await?;
    let ks = gateway
        .topology
        .keyspaces
        .get(keyspace)
        .ok_or_else(|| format!("unknown keyspace {keyspace}"))?;
    let mut failed = 0;
    for shard in &ks.shards {
        match shardgate_runtime::oneshot::run_on_shard(&TokioNet, &embedded, &shard.address, sql)
            .await
        {
            Ok(summary) => println!("{keyspace}/{}: {summary}", shard.name),
            Err(e) => {
                failed += 1;
                println!("{keyspace}/{}: {e}", shard.name);
            }
        }
    }
    if failed > 0 {
        Err(format!("{failed} of {} shard(s) failed", ks.shards.len()))
    } else {
        Ok(())
    }
}

/// A URL without its password, for logs.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            let user = creds.split(':').next().unwrap_or("");
            format!("{}{}@{}", &url[..s + 3], user, &url[at + 1..])
        }
        _ => url.to_string(),
    }
}
