//! The operators' HTTP port: `/healthz`, `/debug/vars` (Vitess expvar-style JSON) and
//! `/metrics` (Prometheus text), all read from the gateway's counters and statistics.

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use serde_json::{json, Map, Value};
use shardgate_core::gateway::{Gateway, Histogram, TabletType};
use shardgate_core::pool::PoolStats;
use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Serves the endpoints on `listener` until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, gw: Arc<Gateway>) -> std::io::Result<()> {
    let vars_gw = gw.clone();
    let metrics_gw = gw.clone();
    let app = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/debug/vars",
            get(move || {
                let gw = vars_gw.clone();
                async move {
                    (
                        [(header::CONTENT_TYPE, "application/json")],
                        debug_vars(&gw).to_string(),
                    )
                }
            }),
        )
        .route(
            "/metrics",
            get(move || {
                let gw = metrics_gw.clone();
                async move {
                    (
                        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                        prometheus(&gw),
                    )
                        .into_response()
                }
            }),
        );
    axum::serve(listener, app).await
}

/// Vitess-style expvars.
pub fn debug_vars(gw: &Gateway) -> Value {
    let c = &gw.counters;
    let stats = gw.stats.snapshot();
    let cache = gw.plans.stats();
    let mut queries = Map::new();
    for ((plan, ks), n) in &stats.queries {
        queries.insert(format!("{plan}.{ks}"), json!(n));
    }
    let mut errors = Map::new();
    for (code, n) in &stats.errors {
        errors.insert(code.to_string(), json!(n));
    }
    let mut pools = Map::new();
    for p in gw.pools.values() {
        pools.insert(
            p.tablet.clone(),
            json!({
                "Capacity": p.capacity,
                "Open": p.open.load(Ordering::Relaxed),
                "InUse": p.in_use.load(Ordering::Relaxed),
                "Idle": p.idle.load(Ordering::Relaxed),
                "Waiting": p.waiting.load(Ordering::Relaxed),
                "Opened": p.opened.load(Ordering::Relaxed),
                "Reused": p.reused.load(Ordering::Relaxed),
                "Closed": p.closed.load(Ordering::Relaxed),
                "WaitTimeouts": p.timeouts.load(Ordering::Relaxed),
                "WaitTime": histogram_json(&p.wait_snapshot()),
            }),
        );
    }
    let mut health = Map::new();
    for h in gw.health.values() {
        health.insert(
            h.name.clone(),
            json!({
                "TabletType": match h.tablet_type {
                    TabletType::Primary => "primary",
                    TabletType::Replica => "replica",
                },
                "Healthy": h.is_healthy(),
                "Checks": h.checks.load(Ordering::Relaxed),
                "Failures": h.failures.load(Ordering::Relaxed),
                "LastError": h.last_error(),
            }),
        );
    }
    let mut shards = Vec::new();
    for k in gw.topology.keyspaces.values() {
        for s in &k.shards {
            shards.push(json!(format!("{}/{}", k.name, s.name)));
        }
    }
    json!({
        "Connections": c.connections.load(Ordering::Relaxed),
        "Sessions": gw.session_count(),
        "Statements": c.statements.load(Ordering::Relaxed),
        "Errors": c.errors.load(Ordering::Relaxed),
        "Panics": c.panics.load(Ordering::Relaxed),
        "ClosedByGateway": c.closed_by_gateway.load(Ordering::Relaxed),
        "QueriesProcessedByPlanKeyspace": queries,
        "ErrorsByCode": errors,
        "RowsReturned": stats.rows_returned,
        "QueryLatency": histogram_json(&stats.latency),
        "Pools": pools,
        "TabletHealth": health,
        "ReadRetries": c.read_retries.load(Ordering::Relaxed),
        "PlanCache": { "Hits": cache.hits, "Misses": cache.misses, "Entries": cache.entries },
        "Shards": shards,
    })
}

/// One per-pool metric of the Prometheus page: its name, its help text, and how to read it.
type PoolMetric = (&'static str, &'static str, fn(&PoolStats) -> u64);

/// Prometheus text exposition.
pub fn prometheus(gw: &Gateway) -> String {
    let c = &gw.counters;
    let stats = gw.stats.snapshot();
    let cache = gw.plans.stats();
    let mut o = String::new();
    let counter = |o: &mut String, name: &str, help: &str, v: u64| {
        let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}");
    };
    counter(
        &mut o,
        "shardgate_connections_total",
        "Client connections accepted.",
        c.connections.load(Ordering::Relaxed),
    );
    counter(
        &mut o,
        "shardgate_statements_total",
        "Statements received.",
        c.statements.load(Ordering::Relaxed),
    );
    counter(
        &mut o,
        "shardgate_panics_total",
        "Panics caught while handling a statement (answered with ERR 1105).",
        c.panics.load(Ordering::Relaxed),
    );
    counter(
        &mut o,
        "shardgate_plan_cache_hits_total",
        "Plan cache hits.",
        cache.hits,
    );
    counter(
        &mut o,
        "shardgate_plan_cache_misses_total",
        "Plan cache misses.",
        cache.misses,
    );
    counter(
        &mut o,
        "shardgate_rows_returned_total",
        "Rows sent to clients.",
        stats.rows_returned,
    );
    counter(
        &mut o,
        "shardgate_read_retries_total",
        "Reads run again on a fresh connection after their connection failed before any result.",
        c.read_retries.load(Ordering::Relaxed),
    );
    let _ = writeln!(o, "# HELP shardgate_tablet_healthy 1 when the tablet passed its last health check.\n# TYPE shardgate_tablet_healthy gauge");
    for h in gw.health.values() {
        let _ = writeln!(
            o,
            "shardgate_tablet_healthy{{tablet=\"{}\"}} {}",
            h.name,
            u8::from(h.is_healthy())
        );
    }
    let _ = writeln!(o, "# HELP shardgate_tablet_health_check_failures_total Failed health checks per tablet.\n# TYPE shardgate_tablet_health_check_failures_total counter");
    for h in gw.health.values() {
        let _ = writeln!(
            o,
            "shardgate_tablet_health_check_failures_total{{tablet=\"{}\"}} {}",
            h.name,
            h.failures.load(Ordering::Relaxed)
        );
    }
    let _ = writeln!(o, "# HELP shardgate_sessions Authenticated client sessions.\n# TYPE shardgate_sessions gauge\nshardgate_sessions {}", gw.session_count());
    let _ = writeln!(o, "# HELP shardgate_queries_total Statements by plan type and keyspace.\n# TYPE shardgate_queries_total counter");
    for ((plan, ks), n) in &stats.queries {
        let _ = writeln!(
            o,
            "shardgate_queries_total{{plan=\"{plan}\",keyspace=\"{ks}\"}} {n}"
        );
    }
    let _ = writeln!(o, "# HELP shardgate_errors_total Statements answered with an error, by MySQL error code.\n# TYPE shardgate_errors_total counter");
    for (code, n) in &stats.errors {
        let _ = writeln!(o, "shardgate_errors_total{{code=\"{code}\"}} {n}");
    }
    let _ = writeln!(o, "# HELP shardgate_query_duration_seconds Statement latency at the gateway.\n# TYPE shardgate_query_duration_seconds histogram");
    prometheus_histogram(
        &mut o,
        "shardgate_query_duration_seconds",
        "",
        &stats.latency,
    );
    let gauges: [PoolMetric; 5] = [
        ("capacity", "Most connections the pool opens.", |p| {
            p.capacity as u64
        }),
        ("open", "Open connections (idle included).", |p| {
            p.open.load(Ordering::Relaxed)
        }),
        ("in_use", "Connections lent to sessions.", |p| {
            p.in_use.load(Ordering::Relaxed)
        }),
        ("idle", "Idle connections.", |p| {
            p.idle.load(Ordering::Relaxed)
        }),
        ("waiting", "Sessions waiting for a connection.", |p| {
            p.waiting.load(Ordering::Relaxed)
        }),
    ];
    for (name, help, get) in gauges {
        let _ = writeln!(
            o,
            "# HELP shardgate_pool_{name} {help}\n# TYPE shardgate_pool_{name} gauge"
        );
        for p in gw.pools.values() {
            let _ = writeln!(
                o,
                "shardgate_pool_{name}{{tablet=\"{}\"}} {}",
                p.tablet,
                get(p)
            );
        }
    }
    let counters: [PoolMetric; 4] = [
        ("opened", "Connections opened.", |p| {
            p.opened.load(Ordering::Relaxed)
        }),
        ("reused", "Idle connections handed out again.", |p| {
            p.reused.load(Ordering::Relaxed)
        }),
        ("closed", "Connections closed by the pool.", |p| {
            p.closed.load(Ordering::Relaxed)
        }),
        (
            "wait_timeouts",
            "Acquires that gave up waiting (answered with an error).",
            |p| p.timeouts.load(Ordering::Relaxed),
        ),
    ];
    for (name, help, get) in counters {
        let _ = writeln!(
            o,
            "# HELP shardgate_pool_{name}_total {help}\n# TYPE shardgate_pool_{name}_total counter"
        );
        for p in gw.pools.values() {
            let _ = writeln!(
                o,
                "shardgate_pool_{name}_total{{tablet=\"{}\"}} {}",
                p.tablet,
                get(p)
            );
        }
    }
    let _ = writeln!(o, "# HELP shardgate_pool_wait_seconds Time sessions waited for a backend connection.\n# TYPE shardgate_pool_wait_seconds histogram");
    for p in gw.pools.values() {
        let labels = format!("tablet=\"{}\",", p.tablet);
        prometheus_histogram(
            &mut o,
            "shardgate_pool_wait_seconds",
            &labels,
            &p.wait_snapshot(),
        );
    }
    o
}

/// Vitess timings shape: counts and total time per bucket, and the totals.
fn histogram_json(h: &Histogram) -> Value {
    let mut counts = Map::new();
    let mut totals = Map::new();
    for ((name, n), t) in h.bucket_names().zip(&h.counts).zip(&h.totals_us) {
        counts.insert(name.clone(), json!(n));
        totals.insert(name, json!(t));
    }
    json!({
        "BucketsUpperBoundMicros": counts,
        "TotalMicrosByBucket": totals,
        "Count": h.count(),
        "TotalMicros": h.total_us(),
    })
}

/// One Prometheus histogram (cumulative buckets in seconds, sum, count); `labels` is empty
/// or ends with a comma.
fn prometheus_histogram(o: &mut String, name: &str, labels: &str, h: &Histogram) {
    let mut cumulative = 0u64;
    for (i, n) in h.counts.iter().enumerate() {
        cumulative += n;
        let le = h
            .bounds
            .get(i)
            .map_or_else(|| "+Inf".to_string(), |b| format!("{}", *b as f64 / 1e6));
        let _ = writeln!(o, "{name}_bucket{{{labels}le=\"{le}\"}} {cumulative}");
    }
    let braces = if labels.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", labels.trim_end_matches(','))
    };
    let _ = writeln!(o, "{name}_sum{braces} {}", h.total_us() as f64 / 1e6);
    let _ = writeln!(o, "{name}_count{braces} {}", h.count());
}
