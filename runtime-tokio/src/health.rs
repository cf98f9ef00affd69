//! Periodic tablet health checks: the schedule lives here, the state (one
//! [`TabletHealth`](shardgate_core::gateway::TabletHealth) per tablet) and every decision made
//! from it (an unhealthy primary is an ERR at once, replica reads skip unhealthy replicas)
//! live in the core.

use crate::embedded::EmbeddedShards;
use crate::net::Net;
use shardgate_core::gateway::{Gateway, ShardAddress};
use std::sync::Arc;
use std::time::Duration;

/// Checks every MySQL tablet (primaries and replicas) every `interval`: connect, log in and
/// run `SELECT 1` within `timeout` (a TLS tablet: read its handshake). In-process shards are
/// not checked. Runs until the process ends.
pub async fn run<N: Net>(
    net: N,
    gw: Arc<Gateway>,
    embedded: Arc<EmbeddedShards>,
    interval: Duration,
    timeout: Duration,
) {
    loop {
        check_all(&net, &gw, &embedded, timeout).await;
        tokio::time::sleep(interval).await;
    }
}

/// One round of checks, tablets checked concurrently.
pub async fn check_all<N: Net>(
    net: &N,
    gw: &Arc<Gateway>,
    embedded: &Arc<EmbeddedShards>,
    timeout: Duration,
) {
    let mut tasks = Vec::new();
    for address in gw.health.keys() {
        let ShardAddress::Mysql { tls, .. } = address else {
            continue;
        };
        let (net, gw, embedded, address, tls) = (
            net.clone(),
            gw.clone(),
            embedded.clone(),
            address.clone(),
            *tls,
        );
        tasks.push(tokio::spawn(async move {
            let probe = async {
                if tls {
                    crate::oneshot::server_version(&net, &address).await.map(|_| ())
                } else {
                    crate::oneshot::run_on_shard(&net, &embedded, &address, "SELECT 1")
                        .await
                        .map(|_| ())
                }
            };
            let result = match tokio::time::timeout(timeout, probe).await {
                Ok(r) => r,
                Err(_) => Err(format!("no answer within {} ms", timeout.as_millis())),
            };
            if let Some(h) = gw.tablet_health(&address) {
                let was = h.is_healthy();
                if let Err(e) = &result {
                    if was || h.checks.load(std::sync::atomic::Ordering::Relaxed) == 0 {
                        tracing::warn!(tablet = %h.name, error = %e, "tablet failed its health check");
                    }
                } else if !was {
                    tracing::info!(tablet = %h.name, "tablet healthy again");
                }
                h.record(result);
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
}
