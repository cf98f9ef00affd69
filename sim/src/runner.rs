//! Runs a [`Scenario`] against a [`Harness`], checking its inline expectations, and the
//! determinism check: every scenario runs twice and both transcripts must be byte-identical.

use crate::client::Answer;
use crate::harness::{Harness, SessionState};
use crate::l1::L1World;
use crate::render;
use crate::scenario::{Expect, KillTarget, Scenario, Sort, Step, StepKind, WorldKind};
use crate::world::{World, WorldConfig};
use std::collections::BTreeMap;

/// What one run produced.
pub struct Outcome {
    pub transcript: String,
    /// Failed expectations and invariants, `file:line: message` where a step is to blame.
    pub failures: Vec<String>,
}

impl Outcome {
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// The failures that fail a test: a plain scenario's own; for an `xfail` scenario (a known
/// bug), nothing while it fails as known — except non-determinism, which is never expected —
/// and one failure once it passes.
pub fn judge(sc: &Scenario, failures: &[String]) -> Vec<String> {
    let Some(why) = &sc.xfail else {
        return failures.to_vec();
    };
    let nondeterministic: Vec<String> = failures
        .iter()
        .filter(|f| f.contains("not deterministic"))
        .cloned()
        .collect();
    if !nondeterministic.is_empty() {
        return nondeterministic;
    }
    if failures.is_empty() {
        return vec![format!(
            "{}: passes now, but is marked `xfail {why}`: the bug is fixed, remove the xfail line",
            sc.path
        )];
    }
    Vec::new()
}

/// The transcript header (DESIGN section 6).
pub fn header(sc: &Scenario, seed: u64) -> String {
    let xfail = match &sc.xfail {
        Some(why) => format!("xfail (known bug): {why}\n"),
        None => String::new(),
    };
    let world = match sc.world {
        WorldKind::L0 => "",
        WorldKind::L1 => "world: l1 (turmoil, runtime-tokio driver)\n",
    };
    format!(
        "scenario: {}\nproperty: {}\ntopology: {}\nseed: {}\n{world}{xfail}\n",
        sc.path,
        sc.property,
        sc.topology.describe(),
        seed
    )
}

/// Runs a scenario once in the L0 stepper; `seed` overrides the file's.
pub fn run_l0(sc: &Scenario, seed: Option<u64>) -> Outcome {
    run_l0_with(sc, seed, false)
}

/// As [`run_l0`]; `split_packets`: every link splits deliveries at seeded random boundaries
/// from the start (the scenario's own `fault split_packets off` still turns it off).
pub fn run_l0_with(sc: &Scenario, seed: Option<u64>, split_packets: bool) -> Outcome {
    let seed = seed.unwrap_or(sc.seed);
    let config = WorldConfig {
        seed,
        topology: sc.topology.clone(),
        record: true,
        merge_queue_rows: sc.merge_queue_rows,
    };
    match World::new(config) {
        Ok(mut world) => {
            if split_packets {
                world.set_split_packets(true);
                world.note("fault: split_packets (forced for this run)");
            }
            run(sc, seed, &mut world)
        }
        Err(e) => Outcome {
            transcript: header(sc, seed),
            failures: vec![format!("{}: {e}", sc.path)],
        },
    }
}

/// Runs a scenario once in the turmoil world (L1); `seed` overrides the file's.
pub fn run_l1(sc: &Scenario, seed: Option<u64>, split_packets: bool) -> Outcome {
    let seed = seed.unwrap_or(sc.seed);
    match L1World::new(seed, &sc.topology, true, sc.merge_queue_rows) {
        Ok(mut world) => {
            if split_packets {
                world.set_split_packets(true);
                world.note("fault: split_packets (forced for this run)");
            }
            run(sc, seed, &mut world)
        }
        Err(e) => Outcome {
            transcript: header(sc, seed),
            failures: vec![format!("{}: {e}", sc.path)],
        },
    }
}

/// Runs a scenario in the world it names (`world l1`, else L0).
pub fn run_in_its_world(sc: &Scenario, seed: Option<u64>, split_packets: bool) -> Outcome {
    match sc.world {
        WorldKind::L0 => run_l0_with(sc, seed, split_packets),
        WorldKind::L1 => run_l1(sc, seed, split_packets),
    }
}

/// Runs a scenario twice in its world and adds a failure if the transcripts differ.
pub fn run_twice(sc: &Scenario, seed: Option<u64>, split_packets: bool) -> Outcome {
    let first = run_in_its_world(sc, seed, split_packets);
    let second = run_in_its_world(sc, seed, split_packets);
    compare_runs(sc, first, second)
}

fn compare_runs(sc: &Scenario, first: Outcome, second: Outcome) -> Outcome {
    let mut out = first;
    if out.transcript != second.transcript {
        out.failures.push(format!(
            "{}: not deterministic: the second run's transcript differs{}",
            sc.path,
            first_difference(&out.transcript, &second.transcript)
        ));
    }
    if out.failures != second.failures {
        out.failures.push(format!(
            "{}: not deterministic: the two runs failed differently",
            sc.path
        ));
    }
    out
}

/// Runs a scenario twice in the L0 stepper and adds a failure if the transcripts differ.
pub fn run_l0_twice(sc: &Scenario, seed: Option<u64>) -> Outcome {
    run_l0_twice_with(sc, seed, false)
}

/// As [`run_l0_twice`], with [`run_l0_with`]'s options.
pub fn run_l0_twice_with(sc: &Scenario, seed: Option<u64>, split_packets: bool) -> Outcome {
    let first = run_l0_with(sc, seed, split_packets);
    let second = run_l0_with(sc, seed, split_packets);
    compare_runs(sc, first, second)
}

fn first_difference(a: &str, b: &str) -> String {
    for (i, (x, y)) in a.lines().zip(b.lines()).enumerate() {
        if x != y {
            return format!(" at line {}:\n  first:  {x}\n  second: {y}", i + 1);
        }
    }
    format!(
        " in length ({} vs {} lines)",
        a.lines().count(),
        b.lines().count()
    )
}

/// Runs a scenario against any world. Stops at the first failed step, then ends the run
/// (every client quits) and checks the end-of-run invariants.
pub fn run<H: Harness>(sc: &Scenario, seed: u64, h: &mut H) -> Outcome {
    let mut failures = Vec::new();
    let mut state = RunState::default();
    for step in &sc.steps {
        h.note(&format!("> {}", step.text));
        if let Err(msg) = exec(h, step, &mut state) {
            failures.push(format!("{}:{}: {msg}", sc.path, step.line));
            h.note(&format!("! step failed: {msg}"));
            break;
        }
    }
    failures.extend(h.finish().into_iter().map(|f| format!("{}: {f}", sc.path)));
    Outcome {
        transcript: format!("{}{}", header(sc, seed), h.transcript()),
        failures,
    }
}

/// What a run remembers between steps.
#[derive(Default)]
struct RunState {
    /// Prepared statement ids by (client, name).
    stmts: BTreeMap<(String, String), u32>,
    /// Each client's connection id, as the gateway announced it.
    conn_ids: BTreeMap<String, u32>,
}

fn exec<H: Harness>(h: &mut H, step: &Step, state: &mut RunState) -> Result<(), String> {
    let stmts = &mut state.stmts;
    match &step.kind {
        StepKind::Connect {
            client,
            opts,
            expect,
        } => {
            h.connect(client, opts)?;
            let a = h.next_answer(client)?;
            check(&a, expect)?;
            if let Answer::Connected { connection_id } = a {
                state.conn_ids.insert(client.clone(), connection_id);
            }
            Ok(())
        }
        StepKind::Kill {
            from,
            target,
            query_only,
            expect,
        } => {
            let id = match target {
                KillTarget::Id(id) => *id,
                KillTarget::Client(c) => *state
                    .conn_ids
                    .get(c)
                    .ok_or_else(|| format!("client {c} never connected"))?
                    as u64,
            };
            let sql = if *query_only {
                format!("KILL QUERY {id}")
            } else {
                format!("KILL {id}")
            };
            h.query(from, &sql)?;
            check(&h.next_answer(from)?, expect)
        }
        StepKind::On { .. } => Ok(()),
        StepKind::StatementOk {
            client,
            sql,
            affected,
        } => {
            h.query(client, sql)?;
            loop {
                let a = h.next_answer(client)?;
                match &a {
                    Answer::Ok { .. } | Answer::Rows { .. } if a.more() => continue,
                    Answer::Ok { ok, .. } => {
                        return match affected {
                            Some(n) if *n != ok.affected_rows => {
                                Err(format!("expected OK affected={n}, got {}", a.describe()))
                            }
                            _ => Ok(()),
                        }
                    }
                    Answer::Rows { .. } if affected.is_none() => return Ok(()),
                    other => return Err(format!("expected ok, got {}", other.describe())),
                }
            }
        }
        StepKind::StatementError {
            client,
            sql,
            code,
            state,
        } => {
            h.query(client, sql)?;
            let expect = Expect::Error {
                code: *code,
                state: state.clone(),
            };
            loop {
                let a = h.next_answer(client)?;
                if a.more() {
                    continue;
                }
                return check(&a, &expect);
            }
        }
        StepKind::Query {
            client,
            sql,
            columns,
            sort,
            rows,
        } => {
            h.query(client, sql)?;
            let a = h.next_answer(client)?;
            if let Answer::Rows { columns: cols, .. } = &a {
                if cols.len() != *columns {
                    return Err(format!(
                        "expected {columns} column(s), got {}",
                        render::columns("columns", cols)
                    ));
                }
            }
            check(
                &a,
                &Expect::Rows {
                    count: Some(rows.len()),
                    more: false,
                    rows: Some(rows.clone()),
                    sort: *sort,
                },
            )
        }
        StepKind::Send { client, sql } => h.query(client, sql),
        StepKind::Await { client, expect } => check(&h.next_answer(client)?, expect),
        StepKind::Prepare {
            client,
            name,
            sql,
            expect,
        } => {
            h.prepare(client, sql)?;
            let a = h.next_answer(client)?;
            check(&a, expect)?;
            if let Answer::Prepared { stmt_id, .. } = a {
                stmts.insert((client.clone(), name.clone()), stmt_id);
            }
            Ok(())
        }
        StepKind::Execute {
            client,
            name,
            params,
            expect,
        } => {
            let id = stmts
                .get(&(client.clone(), name.clone()))
                .copied()
                .ok_or_else(|| format!("no prepared statement {name} on client {client}"))?;
            h.execute(client, id, params)?;
            check(&h.next_answer(client)?, expect)
        }
        StepKind::Fault { shard, fault } => h.arm_fault(shard, fault.clone()),
        StepKind::Drop { shard } => h.drop_connections(shard),
        StepKind::Stall { shard } => h.stall(shard),
        StepKind::Crash { shard } => h.crash(shard),
        StepKind::Restart { shard } => h.restart(shard),
        StepKind::Partition { target } => h.partition(target),
        StepKind::Heal => h.heal(),
        StepKind::Latency { target, ms } => h.set_latency(target, *ms),
        StepKind::Resume { shard } => h.resume(shard),
        StepKind::SplitPackets(on) => {
            h.set_split_packets(*on);
            Ok(())
        }
        StepKind::Panic { marker } => {
            h.set_panic_marker(marker.as_deref());
            Ok(())
        }
        StepKind::Disconnect { client } => h.disconnect(client),
        StepKind::Advance { ms } => h.advance(*ms),
        StepKind::ExpectClosed { client } => {
            h.settle()?;
            match h.session_state(client)? {
                SessionState::ClosedByGateway { reason: Some(_) } => {}
                SessionState::ClosedByGateway { reason: None } => {
                    return Err(format!("the gateway closed {client} without logging why"))
                }
                SessionState::Open => return Err(format!("{client} is still open")),
                SessionState::ClosedByClient => {
                    return Err(format!(
                        "{client} was closed by the client, not the gateway"
                    ))
                }
            }
            check(&h.next_answer(client)?, &Expect::Closed)
        }
        StepKind::ExpectOpen { client } => {
            h.settle()?;
            match h.session_state(client)? {
                SessionState::Open => Ok(()),
                SessionState::ClosedByGateway { reason } => Err(format!(
                    "the gateway closed {client}: {}",
                    reason.unwrap_or_else(|| "(no reason logged)".into())
                )),
                SessionState::ClosedByClient => Err(format!("{client} has disconnected")),
            }
        }
    }
}

fn describe(e: &Expect) -> String {
    let more = |m: bool| {
        if m {
            " with more results following"
        } else {
            ""
        }
    };
    match e {
        Expect::Connected => "connected".into(),
        Expect::Ok {
            affected: Some(n),
            more: m,
        } => format!("OK affected={n}{}", more(*m)),
        Expect::Ok {
            affected: None,
            more: m,
        } => format!("OK{}", more(*m)),
        Expect::Rows {
            count: Some(n),
            more: m,
            ..
        } => format!("{n} row(s){}", more(*m)),
        Expect::Rows {
            count: None,
            more: m,
            ..
        } => format!("a result set{}", more(*m)),
        Expect::Error {
            code,
            state: Some(s),
        } => format!("ERR {code} ({s})"),
        Expect::Error { code, state: None } => format!("ERR {code}"),
        Expect::Prepared => "a prepared statement".into(),
        Expect::Closed => "the connection closed".into(),
    }
}

/// Checks one answer against an expectation.
///
/// # Errors
/// A message saying what was expected and what arrived.
pub fn check(a: &Answer, e: &Expect) -> Result<(), String> {
    let mismatch = || Err(format!("expected {}, got {}", describe(e), a.describe()));
    match (e, a) {
        (Expect::Connected, Answer::Connected { .. }) => Ok(()),
        (Expect::Prepared, Answer::Prepared { .. }) => Ok(()),
        (Expect::Closed, Answer::Closed(_)) => Ok(()),
        (Expect::Ok { affected, more }, Answer::Ok { ok, more: m }) => {
            if more != m || affected.is_some_and(|n| n != ok.affected_rows) {
                return mismatch();
            }
            Ok(())
        }
        (
            Expect::Rows {
                count,
                more,
                rows,
                sort,
            },
            Answer::Rows {
                rows: got, more: m, ..
            },
        ) => {
            if more != m || count.is_some_and(|n| n != got.len()) {
                return mismatch();
            }
            if let Some(want) = rows {
                let mut want = want.clone();
                let mut have: Vec<String> = got.iter().map(|r| render::expected_row(r)).collect();
                if *sort == Sort::Rows {
                    want.sort();
                    have.sort();
                }
                if want != have {
                    return Err(format!(
                        "rows differ\n  expected:\n    {}\n  got:\n    {}",
                        want.join("\n    "),
                        have.join("\n    ")
                    ));
                }
            }
            Ok(())
        }
        (Expect::Error { code, state }, Answer::Error { error, .. }) => {
            if error.code != *code || state.as_deref().is_some_and(|s| s != error.sqlstate()) {
                return mismatch();
            }
            Ok(())
        }
        _ => mismatch(),
    }
}
