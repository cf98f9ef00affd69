//! The query log: one line per statement (connection, keyspace, shards, plan type, rows,
//! duration, error) to stderr or a file. Written by a background task so a slow disk never
//! stalls a session.

use shardgate_core::gateway::{Gateway, QueryLogSink, StatementRecord};
use std::io::Write;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Lines buffered before new ones are dropped (bounded memory under a flood).
const QUEUE_LINES: usize = 65_536;

/// Starts the query log toward `target` (`-` = stderr, else a file path, appended).
pub fn start(gw: &Arc<Gateway>, target: &str) -> std::io::Result<()> {
    let mut out: Box<dyn Write + Send> = if target == "-" {
        Box::new(std::io::stderr())
    } else {
        Box::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(target)?,
        )
    };
    let (tx, mut rx) = mpsc::channel::<String>(QUEUE_LINES);
    let _ = gw
        .query_log
        .set(QueryLogSink(Box::new(move |r: &StatementRecord| {
            let _ = tx.try_send(format_line(r));
        })));
    tokio::spawn(async move {
        while let Some(line) = rx.recv().await {
            let _ = out.write_all(line.as_bytes());
            if rx.is_empty() {
                let _ = out.flush();
            }
        }
    });
    Ok(())
}

/// One tab-separated line.
pub fn format_line(r: &StatementRecord) -> String {
    let shards = if r.shards.is_empty() {
        "-".to_string()
    } else {
        r.shards.join(",")
    };
    let error = r.error.map_or_else(|| "-".to_string(), |c| c.to_string());
    let sql: String = r
        .sql
        .chars()
        .map(|c| if c == '\n' || c == '\t' { ' ' } else { c })
        .collect();
    format!(
        "conn={}\tkeyspace={}\tshards={}\tplan={}\trows={}\tduration_us={}\terror={}\tsql={}\n",
        r.connection_id, r.keyspace, shards, r.plan, r.rows, r.duration_us, error, sql
    )
}
