//! Runs a SQL file statement by statement (';' at end of line) and prints each outcome as text.
//! `cargo run -p shardgate-engine --example run_sql -- file.sql`
use shardgate_engine::{Engine, EngineSession, Outcome};

fn main() {
    let path = std::env::args().nth(1).expect("usage: run_sql FILE");
    let text = std::fs::read_to_string(path).expect("read");
    let mut engine = Engine::new("10.11.6-MariaDB-shardgate-engine");
    let mut s = EngineSession::new(1, None);
    let _ = engine.execute(&mut s, "create database if not exists e2e_diff", 0);
    let _ = engine.execute(&mut s, "use e2e_diff", 0);
    let mut buf = String::new();
    for line in text.lines() {
        let t = line.trim();
        if buf.is_empty() && (t.is_empty() || t.starts_with("--")) {
            continue;
        }
        buf.push_str(line);
        buf.push('\n');
        if t.ends_with(';') {
            let sql = buf.trim().trim_end_matches(';').to_string();
            buf.clear();
            println!("> {sql}");
            match engine.execute(&mut s, &sql, 1_700_000_000_000) {
                Err(e) => println!("  {e}"),
                Ok(x) => match x.outcome {
                    Outcome::Ok(ok) => println!(
                        "  OK affected={} insert_id={} {}",
                        ok.affected_rows, ok.last_insert_id, ok.info
                    ),
                    Outcome::Rows { columns, rows } => {
                        let names: Vec<String> = columns.iter().map(|c| c.name.clone()).collect();
                        println!("  | {}", names.join(" | "));
                        for r in rows {
                            let cells: Vec<String> = r
                                .iter()
                                .map(|v| v.to_text().unwrap_or_else(|| "NULL".into()))
                                .collect();
                            println!("  | {}", cells.join(" | "));
                        }
                    }
                },
            }
        }
    }
}
