//! Randomised simulation (DESIGN section 7): one seed derives a whole world — topology, vschema,
//! schema, a workload from a SQL generator and a fault mix — which is written out as an
//! ordinary scenario (`.scn` text) whose expectations come from one unsharded reference engine,
//! then run in the L0 stepper like any committed scenario.
//!
//! Because a seed *is* a scenario, `shardgate-sim seed N --save NAME` writes exactly what ran to
//! `scenarios/regressions/NAME.scn` (plus `NAME.json`, its vschema), and that file fails the same
//! way the seed did.
//!
//! # Invariants checked after every run
//! - each statement answered exactly once: every expectation consumes one answer, a protocol
//!   violation toward a client fails the run, and no answer may be left unread at the end;
//! - the connection is usable after every ERR: each expected error is followed by `select 1`
//!   on the same connection;
//! - every statement's result equals the reference's (ordered where ORDER BY fixes the order,
//!   as multisets otherwise; error codes too);
//! - no acknowledged write lost: the final contents of every table, read through the gateway
//!   and read directly from the shards' engines, equal the reference's, and every row of a
//!   sharded table lives on the shard its vindex maps it to;
//! - no backend connection leaked after every client left; KILL QUERY yields 1317.
//!
//! # Known bugs
//! Fault and statement shapes that trip a known, reported gateway bug are kept out of the
//! workload unless [`SweepOptions::known_bugs`] is set (`--known-bugs`); each is listed in
//! [`KNOWN_BUGS`] with the regression scenario that reproduces it.

pub mod gen;
pub mod reference;

use crate::harness::Harness;
use crate::harness::VSchemaSource;
use crate::l1::L1World;
use crate::runner;
use crate::scenario::{self, Scenario, WorldKind};
use crate::world::{World, WorldConfig};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use shardgate_core::vschema::functional::Hash;
use shardgate_core::vschema::ShardMap;
use shardgate_core::wire::Value;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Known gateway bugs the generator steers around by default, each with its regression file.
pub const KNOWN_BUGS: &[(&str, &str)] = &[
    (
        "a shard connection lost inside a transaction (crash, dropped connection) is forgotten: COMMIT answers OK and that shard's writes are gone",
        "scenarios/sharded/shard_crash_in_transaction.scn",
    ),
    (
        "pass-through (one unsharded keyspace) with autocommit=0: the gateway sends BEGIN before the second statement, which commits the implicit transaction; ROLLBACK then keeps the first write",
        "scenarios/regressions/autocommit_off_passthrough.scn",
    ),
];

/// How seeds are drawn and run.
#[derive(Clone, Copy, Default)]
pub struct SweepOptions {
    /// Also draw the shapes of [`KNOWN_BUGS`] (seeds then fail until those are fixed).
    pub known_bugs: bool,
    /// The world that runs each seed (the draw is the same in either).
    pub world: WorldKind,
}

/// How a table of the generated schema is sharded.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum TableKind {
    /// `(id pk, k, s, d)`, sharded by `id`.
    ById,
    /// `(id pk, cid, k, s)`, sharded by `cid` (`id` is unique only because the generator keeps
    /// it so: shards cannot check it).
    ByCustomer,
}

/// One table of the generated schema.
#[derive(Clone)]
pub struct Table {
    pub name: String,
    pub kind: TableKind,
}

impl Table {
    /// The column the vindex hashes (the routing key).
    pub fn vindex_column(&self) -> &'static str {
        match self.kind {
            TableKind::ById => "id",
            TableKind::ByCustomer => "cid",
        }
    }

    pub fn columns(&self) -> &'static [&'static str] {
        match self.kind {
            TableKind::ById => &["id", "k", "s", "d"],
            TableKind::ByCustomer => &["id", "cid", "k", "s"],
        }
    }

    pub fn ddl(&self) -> String {
        match self.kind {
            TableKind::ById => format!(
                "create table {} (id bigint primary key, k int, s varchar(12), d decimal(8,2))",
                self.name
            ),
            TableKind::ByCustomer => format!(
                "create table {} (id bigint primary key, cid bigint not null, k int, s varchar(12))",
                self.name
            ),
        }
    }
}

/// Chance per workload step (in 1/1000) of each fault; 0 = switched off for this seed.
#[derive(Clone, Default)]
pub struct FaultMix {
    /// A shard's result set ends in an injected ERR after N rows.
    pub read_error: u32,
    /// A shard drops its connection after N rows of a result set.
    pub read_drop: u32,
    /// KILL QUERY from client b on a streaming select of client a.
    pub kill_query: u32,
    /// KILL (connection) of a throwaway client, possibly inside a transaction.
    pub kill_connection: u32,
    /// A shard host crashes and restarts between statements.
    pub crash_idle: u32,
    /// A shard host crashes in the middle of a select.
    pub crash_mid: u32,
    /// The gateway is cut off from a shard while a statement is in flight, then healed.
    pub partition: u32,
    /// A shard holds everything it sends while a statement is in flight, then resumes.
    pub stall: u32,
    /// The gateway panics while handling one statement (failpoint).
    pub panic: u32,
    /// A throwaway client hangs up in the middle of a result, or inside a transaction.
    pub disconnect: u32,
}

impl FaultMix {
    fn entries(&self) -> [(&'static str, u32); 10] {
        [
            ("read_error", self.read_error),
            ("read_drop", self.read_drop),
            ("kill_query", self.kill_query),
            ("kill_connection", self.kill_connection),
            ("crash_idle", self.crash_idle),
            ("crash_mid", self.crash_mid),
            ("partition", self.partition),
            ("stall", self.stall),
            ("panic", self.panic),
            ("disconnect", self.disconnect),
        ]
    }

    /// `read_error=3% kill_query=1% ...` (only the faults switched on).
    pub fn describe(&self) -> String {
        let on: Vec<String> = self
            .entries()
            .iter()
            .filter(|(_, v)| *v > 0)
            .map(|(k, v)| format!("{k}={}.{}%", v / 10, v % 10))
            .collect();
        if on.is_empty() {
            "none".into()
        } else {
            on.join(" ")
        }
    }
}

/// Everything one seed derives. Printed before the run.
#[derive(Clone)]
pub struct Draw {
    pub seed: u64,
    /// `0` (one unsharded shard) or key ranges covering the keyspace.
    pub shards: Vec<String>,
    pub tables: Vec<Table>,
    pub faults: FaultMix,
    pub split_packets: bool,
    /// The gateway's merge queue, drawn small (backpressure on every scatter) or left alone.
    pub merge_queue_rows: Option<usize>,
    /// Workload steps to generate (each one statement or one fault episode).
    pub steps: usize,
    pub options: SweepOptions,
}

/// The keyspace every generated world uses.
pub const KEYSPACE: &str = "commerce";

impl Draw {
    /// Derives a world from `seed`.
    pub fn new(seed: u64, options: SweepOptions) -> Draw {
        // A stream of its own: the world's PRNG is seeded with `seed` itself.
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed_d4a3_0000_0001);
        let n = rng.random_range(1..=4usize);
        let shards = if n == 1 {
            vec!["0".to_string()]
        } else {
            let mut cuts: Vec<u8> = Vec::new();
            while cuts.len() < n - 1 {
                let c = rng.random_range(0x10u8..=0xf0);
                if !cuts.contains(&c) {
                    cuts.push(c);
                }
            }
            cuts.sort_unstable();
            let mut names = Vec::new();
            let mut prev = String::new();
            for c in &cuts {
                let hex = format!("{c:02x}");
                names.push(format!("{prev}-{hex}"));
                prev = hex;
            }
            names.push(format!("{prev}-"));
            names
        };
        let table_count = rng.random_range(1..=3usize);
        let tables = (0..table_count)
            .map(|i| Table {
                name: format!("t{}", i + 1),
                kind: if rng.random_bool(0.5) {
                    TableKind::ById
                } else {
                    TableKind::ByCustomer
                },
            })
            .collect();
        let rate = |rng: &mut ChaCha8Rng| -> u32 {
            if rng.random_bool(0.5) {
                [5u32, 15, 40][rng.random_range(0..3usize)]
            } else {
                0
            }
        };
        let faults = FaultMix {
            read_error: rate(&mut rng),
            read_drop: rate(&mut rng),
            kill_query: rate(&mut rng),
            kill_connection: rate(&mut rng),
            crash_idle: rate(&mut rng),
            crash_mid: rate(&mut rng),
            partition: rate(&mut rng),
            stall: rate(&mut rng),
            panic: rate(&mut rng),
            disconnect: rate(&mut rng),
        };
        let split_packets = rng.random_bool(0.25);
        let merge_queue_rows = rng.random_bool(0.5).then(|| rng.random_range(1..=5usize));
        let steps = rng.random_range(40..=120usize);
        Draw {
            seed,
            shards,
            tables,
            faults,
            split_packets,
            merge_queue_rows,
            steps,
            options,
        }
    }

    pub fn sharded(&self) -> bool {
        !(self.shards.len() == 1 && self.shards[0] == "0")
    }

    /// The vschema (Vitess JSON) of a sharded draw: the `hash` vindex on each table's routing key.
    pub fn vschema_json(&self) -> Option<String> {
        if !self.sharded() {
            return None;
        }
        let tables: Vec<String> = self
            .tables
            .iter()
            .map(|t| {
                format!(
                    "        \"{}\": {{ \"column_vindexes\": [{{ \"column\": \"{}\", \"name\": \"hash\" }}] }}",
                    t.name,
                    t.vindex_column()
                )
            })
            .collect();
        Some(format!(
            "{{\n  \"keyspaces\": {{\n    \"{KEYSPACE}\": {{\n      \"sharded\": true,\n      \"vindexes\": {{ \"hash\": {{ \"type\": \"hash\" }} }},\n      \"tables\": {{\n{}\n      }}\n    }}\n  }}\n}}\n",
            tables.join(",\n")
        ))
    }

    /// The shard (index into [`Draw::shards`]) a routing key lives on.
    pub fn shard_of(&self, key: i64) -> usize {
        if !self.sharded() {
            return 0;
        }
        let ksid = Hash::hash_u64(key as u64);
        ShardMap::from_names(&self.shards)
            .ok()
            .and_then(|m| m.shard_for(&ksid))
            .unwrap_or(0)
    }

    /// The parameters, one per line (what `shardgate-sim seed` prints before running).
    pub fn describe(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "seed: {}", self.seed);
        let _ = writeln!(
            out,
            "topology: {KEYSPACE} shards={}{}",
            self.shards.join(","),
            if self.sharded() {
                " (hash vindex)"
            } else {
                " (unsharded)"
            }
        );
        let schema: Vec<String> = self
            .tables
            .iter()
            .map(|t| format!("{} by {}", t.name, t.vindex_column()))
            .collect();
        let _ = writeln!(out, "schema: {}", schema.join(", "));
        let _ = writeln!(out, "faults: {}", self.faults.describe());
        let _ = writeln!(
            out,
            "split packets: {}",
            if self.split_packets { "on" } else { "off" }
        );
        if let Some(n) = self.merge_queue_rows {
            let _ = writeln!(out, "tuning: merge_queue_rows={n}");
        }
        let _ = writeln!(out, "workload: {} steps on clients a and b", self.steps);
        if self.options.world == WorldKind::L1 {
            let _ = writeln!(out, "world: l1 (turmoil, runtime-tokio driver)");
        }
        if self.options.known_bugs {
            let _ = writeln!(out, "known bugs: drawn too (--known-bugs)");
        }
        out
    }
}

/// One seed, ready to run: the scenario text and what it needs besides.
pub struct SeedScenario {
    pub draw: Draw,
    /// The `.scn` text (its vschema line names `<vschema_name>`).
    pub text: String,
    pub vschema: Option<String>,
    /// Statements the workload sends (for throughput figures).
    pub statements: usize,
    /// The reference's final table contents.
    pub final_tables: BTreeMap<String, Vec<Vec<Value>>>,
}

/// Builds seed `seed`'s scenario; its topology line names the vschema file `vschema_name`.
pub fn build(seed: u64, options: SweepOptions, vschema_name: &str) -> SeedScenario {
    let draw = Draw::new(seed, options);
    let g = gen::generate(&draw, vschema_name);
    SeedScenario {
        vschema: draw.vschema_json(),
        draw,
        text: g.text,
        statements: g.statements,
        final_tables: g.final_tables,
    }
}

/// What running one seed gave.
pub struct SeedOutcome {
    pub draw: Draw,
    pub transcript: String,
    pub failures: Vec<String>,
    pub statements: usize,
}

impl SeedOutcome {
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Parses a seed's scenario text (the vschema JSON supplied directly).
///
/// # Errors
/// A parse error: a generator bug.
pub fn scenario_of(s: &SeedScenario, path: &str, vschema_name: &str) -> Result<Scenario, String> {
    let mut sc = scenario::parse(path, &s.text)?;
    if let (Some(v), Some(json)) = (&mut sc.topology.vschema, &s.vschema) {
        v.json = json.clone();
    } else if let Some(json) = &s.vschema {
        sc.topology.vschema = Some(VSchemaSource {
            name: vschema_name.to_string(),
            json: json.clone(),
        });
    }
    Ok(sc)
}

/// Runs seed `seed` in the L0 stepper and checks every invariant. `record`: render the
/// transcript (off for sweeps; a failing seed is replayed with it on).
pub fn run_seed(seed: u64, options: SweepOptions, record: bool) -> SeedOutcome {
    let name = format!("seed-{seed}.json");
    let s = build(seed, options, &name);
    let path = format!("seed {seed}");
    let sc = match scenario_of(&s, &path, &name) {
        Ok(sc) => sc,
        Err(e) => {
            return SeedOutcome {
                draw: s.draw,
                transcript: String::new(),
                failures: vec![format!("generator wrote an unparsable scenario: {e}")],
                statements: s.statements,
            }
        }
    };
    let fail = |draw: Draw, e: String| SeedOutcome {
        draw,
        transcript: String::new(),
        failures: vec![format!("{path}: {e}")],
        statements: s.statements,
    };
    let (transcript, failures) = match options.world {
        WorldKind::L0 => {
            let config = WorldConfig {
                seed,
                topology: sc.topology.clone(),
                record,
                merge_queue_rows: sc.merge_queue_rows,
            };
            match World::new(config) {
                Ok(mut w) => run_and_check(&sc, seed, &mut w, &s),
                Err(e) => return fail(s.draw, e),
            }
        }
        WorldKind::L1 => match L1World::new(seed, &sc.topology, record, sc.merge_queue_rows) {
            Ok(mut w) => run_and_check(&sc, seed, &mut w, &s),
            Err(e) => return fail(s.draw, e),
        },
    };
    SeedOutcome {
        draw: s.draw,
        transcript,
        failures,
        statements: s.statements,
    }
}

fn run_and_check<H: Harness>(
    sc: &Scenario,
    seed: u64,
    h: &mut H,
    s: &SeedScenario,
) -> (String, Vec<String>) {
    let out = runner::run(sc, seed, h);
    let mut failures = out.failures;
    if failures.is_empty() {
        failures.extend(check_shards(&s.draw, h, &s.final_tables));
    }
    (out.transcript, failures)
}

/// The final contents of every table, read directly from the shards' engines: their union
/// equals the reference's table and each row sits on the shard its vindex names.
fn check_shards<H: Harness>(
    draw: &Draw,
    world: &mut H,
    expected: &BTreeMap<String, Vec<Vec<Value>>>,
) -> Vec<String> {
    let mut failures = Vec::new();
    for t in &draw.tables {
        let mut all: Vec<String> = Vec::new();
        for (i, shard) in draw.shards.iter().enumerate() {
            let rows =
                match world.shard_query(shard, KEYSPACE, &format!("SELECT * FROM {}", t.name)) {
                    Ok(r) => r,
                    Err(e) => {
                        failures.push(format!("shard {shard}: reading {}: {e}", t.name));
                        continue;
                    }
                };
            let key_at = t.columns().iter().position(|c| *c == t.vindex_column());
            for r in &rows {
                let key = key_at.and_then(|k| r.get(k)).and_then(int_of);
                if let Some(key) = key {
                    let home = draw.shard_of(key);
                    if draw.sharded() && home != i {
                        failures.push(format!(
                            "row {} of {} is on shard {shard}, its vindex maps it to shard {}",
                            crate::render::expected_row(r),
                            t.name,
                            draw.shards[home]
                        ));
                    }
                }
                all.push(crate::render::expected_row(r));
            }
        }
        all.sort();
        let mut want: Vec<String> = expected
            .get(&t.name)
            .map(|rows| {
                rows.iter()
                    .map(|r| crate::render::expected_row(r))
                    .collect()
            })
            .unwrap_or_default();
        want.sort();
        if all != want {
            failures.push(format!(
                "table {} on the shards differs from the reference (lost or extra writes):\n  reference: {}\n  shards:    {}",
                t.name,
                want.join(" / "),
                all.join(" / ")
            ));
        }
    }
    failures
}

fn int_of(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        Value::UInt(u) => i64::try_from(*u).ok(),
        Value::Bytes(b) => std::str::from_utf8(b).ok()?.parse().ok(),
        _ => None,
    }
}
