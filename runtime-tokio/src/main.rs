//! `shardgate`: the gateway binary.

use clap::Parser;
use shardgate_runtime::config;
use shardgate_runtime::driver::Driver;
use shardgate_runtime::net::{Net, TokioNet};

/// A sharding MySQL gateway. With no arguments it serves the embedded default (in-process
/// simulated shards, no MySQL needed) on 127.0.0.1:15306.
#[derive(Parser, Debug)]
#[command(name = "shardgate", version)]
struct Cli {
    /// Address to listen on for MySQL clients.
    #[arg(long, default_value = "127.0.0.1:15306")]
    listen: String,
    /// Serve one unsharded keyspace passing through to this server:
    /// mysql://USER:PASS@HOST:PORT/DB
    #[arg(long)]
    backend: Option<String>,
    /// Log filter (tracing EnvFilter syntax), e.g. `info` or `shardgate_core=debug`.
    #[arg(long, default_value = "info", env = "SHARDGATE_LOG")]
    log: String,
    /// Worker threads of the runtime (default: number of cores).
    #[arg(long)]
    threads: Option<usize>,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(&cli.log))
        .with_writer(std::io::stderr)
        .init();
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    rt.enable_all();
    if let Some(n) = cli.threads {
        rt.worker_threads(n.max(1));
    }
    let rt = match rt.build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("shardgate: cannot start runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("shardgate: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), String> {
    let (gateway, embedded) = match &cli.backend {
        Some(url) => config::passthrough(url)?,
        None => config::embedded_default()?,
    };
    let net = TokioNet;
    let listener = net
        .bind(&cli.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", cli.listen))?;
    let addr = TokioNet::local_addr(&listener).unwrap_or_else(|_| cli.listen.clone());
    match &cli.backend {
        Some(url) => {
            tracing::info!(%addr, backend = %redact(url), "shardgate listening (pass-through)")
        }
        None => {
            tracing::info!(%addr, "shardgate listening (embedded default: simulated-engine shards)")
        }
    }
    let seed = std::process::id() as u64;
    Driver::new(net, gateway, embedded, seed)
        .serve(listener)
        .await
        .map_err(|e| e.to_string())
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
