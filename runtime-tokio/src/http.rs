//! The operators' HTTP port: `/healthz`, `/debug/vars` (Vitess expvar-style JSON) and
//! `/metrics` (Prometheus text), all read from the gateway's counters and statistics.

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use serde_json::{json, Map, Value};
use shardgate_core::gateway::{Gateway, LATENCY_BUCKETS_US};
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
    let mut buckets = Map::new();
    for (i, n) in stats.latency.counts.iter().enumerate() {
        let name = LATENCY_BUCKETS_US
            .get(i)
            .map_or_else(|| "inf".to_string(), |b| b.to_string());
        buckets.insert(name, json!(n));
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
        "QueryLatency": {
            "BucketsUpperBoundMicros": buckets,
            "Count": stats.latency.count(),
            "TotalMicros": stats.latency.total_us(),
        },
        "PlanCache": { "Hits": cache.hits, "Misses": cache.misses, "Entries": cache.entries },
        "Shards": shards,
    })
}

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
    let mut cumulative = 0u64;
    for (i, n) in stats.latency.counts.iter().enumerate() {
        cumulative += n;
        let le = LATENCY_BUCKETS_US
            .get(i)
            .map_or_else(|| "+Inf".to_string(), |b| format!("{}", *b as f64 / 1e6));
        let _ = writeln!(
            o,
            "shardgate_query_duration_seconds_bucket{{le=\"{le}\"}} {cumulative}"
        );
    }
    if stats.latency.counts.is_empty() {
        let _ = writeln!(
            o,
            "shardgate_query_duration_seconds_bucket{{le=\"+Inf\"}} 0"
        );
    }
    let _ = writeln!(
        o,
        "shardgate_query_duration_seconds_sum {}",
        stats.latency.total_us() as f64 / 1e6
    );
    let _ = writeln!(
        o,
        "shardgate_query_duration_seconds_count {}",
        stats.latency.count()
    );
    o
}
