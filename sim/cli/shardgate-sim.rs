//! `shardgate-sim`: the simulator's command line.
//!
//! - `run <file.scn> [--seed N] [--twice] [--split] [--world l0|l1]`: one scenario in its world
//!   (the L0 stepper unless it says `world l1`), its transcript on stdout;
//! - `seed N [--save NAME] [--scn] [--known-bugs] [--world l0|l1]`: one randomised seed — its drawn parameters,
//!   then the readable transcript; `--save` writes it as `scenarios/regressions/NAME.scn`;
//! - `sweep N [--seed S] [--known-bugs] [--world l0|l1]`: N seeds from S; a progress bar on stderr (seeds done,
//!   seeds/s, failures) and, for each failing seed, the command that replays it.
//!
//! Failures go to stderr and make the exit status 1. This file is the only part of the crate
//! that reads the wall clock (the progress bar and throughput figures); no simulated run sees it.

use clap::{Parser, Subcommand};
use shardgate_sim::sweep::{self, SweepOptions};
use shardgate_sim::{runner, scenario};
use std::io::Write as _;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

#[derive(Parser)]
#[command(
    name = "shardgate-sim",
    about = "Deterministic simulation of shardgate"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one scenario file and print its transcript.
    Run {
        file: String,
        /// Override the scenario's seed.
        #[arg(long)]
        seed: Option<u64>,
        /// Run twice and fail if the transcripts differ.
        #[arg(long)]
        twice: bool,
        /// Split every delivery at seeded random byte boundaries from the start.
        #[arg(long)]
        split: bool,
        /// Run in this world whatever the file says: l0 (stepper) or l1 (turmoil).
        #[arg(long)]
        world: Option<String>,
    },
    /// Run one randomised seed with a readable transcript.
    Seed {
        seed: u64,
        /// Write the seed as scenarios/regressions/NAME.scn (and NAME.json, its vschema).
        #[arg(long)]
        save: Option<String>,
        /// Print the generated scenario instead of running it.
        #[arg(long)]
        scn: bool,
        /// Also draw shapes that trip known gateway bugs.
        #[arg(long)]
        known_bugs: bool,
        /// l0 (the stepper, default) or l1 (turmoil and the real driver).
        #[arg(long, default_value = "l0")]
        world: String,
    },
    /// Run N randomised seeds.
    Sweep {
        n: u64,
        /// The first seed (default: drawn from the clock, and printed).
        #[arg(long)]
        seed: Option<u64>,
        /// Also draw shapes that trip known gateway bugs.
        #[arg(long)]
        known_bugs: bool,
        /// l0 (the stepper, default) or l1 (turmoil and the real driver).
        #[arg(long, default_value = "l0")]
        world: String,
    },
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Run {
            file,
            seed,
            twice,
            split,
            world,
        } => run_file(&file, seed, twice, split, world.as_deref()),
        Command::Seed {
            seed,
            save,
            scn,
            known_bugs,
            world,
        } => match options(known_bugs, &world) {
            Ok(o) => run_seed(seed, save.as_deref(), scn, o),
            Err(e) => e,
        },
        Command::Sweep {
            n,
            seed,
            known_bugs,
            world,
        } => match options(known_bugs, &world) {
            Ok(o) => run_sweep(n, seed, o),
            Err(e) => e,
        },
    }
}

fn options(known_bugs: bool, world: &str) -> Result<SweepOptions, ExitCode> {
    let world = match world {
        "l0" => scenario::WorldKind::L0,
        "l1" => scenario::WorldKind::L1,
        w => {
            eprintln!("--world {w}: l0 or l1");
            return Err(ExitCode::FAILURE);
        }
    };
    Ok(SweepOptions { known_bugs, world })
}

fn run_file(
    file: &str,
    seed: Option<u64>,
    twice: bool,
    split: bool,
    world: Option<&str>,
) -> ExitCode {
    let mut sc = match scenario::load(Path::new(file), file) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    match world {
        None => {}
        Some("l0") => sc.world = scenario::WorldKind::L0,
        Some("l1") => sc.world = scenario::WorldKind::L1,
        Some(w) => {
            eprintln!("--world {w}: l0 or l1");
            return ExitCode::FAILURE;
        }
    }
    eprintln!("seed {}", seed.unwrap_or(sc.seed));
    let out = if twice {
        runner::run_twice(&sc, seed, split)
    } else {
        runner::run_in_its_world(&sc, seed, split)
    };
    print!("{}", out.transcript);
    for f in &out.failures {
        eprintln!("FAILED {f}");
    }
    if let Some(why) = &sc.xfail {
        eprintln!("xfail (known bug): {why}");
    }
    let verdict = runner::judge(&sc, &out.failures);
    for f in verdict.iter().filter(|f| !out.failures.contains(f)) {
        eprintln!("FAILED {f}");
    }
    if verdict.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn run_seed(seed: u64, save: Option<&str>, scn: bool, options: SweepOptions) -> ExitCode {
    let draw = sweep::Draw::new(seed, options);
    print!("{}", draw.describe());
    if scn {
        let s = sweep::build(seed, options, &format!("seed-{seed}.json"));
        println!();
        print!("{}", s.text);
        return ExitCode::SUCCESS;
    }
    println!();
    let out = match catch_unwind(AssertUnwindSafe(|| sweep::run_seed(seed, options, true))) {
        Ok(o) => o,
        Err(p) => {
            eprintln!("seed {seed} PANICKED: {}", panic_text(&p));
            return ExitCode::FAILURE;
        }
    };
    print!("{}", out.transcript);
    for f in &out.failures {
        eprintln!("FAILED {f}");
    }
    if let Some(name) = save {
        if let Err(e) = save_seed(seed, name, options, out.failures.first()) {
            eprintln!("cannot save: {e}");
            return ExitCode::FAILURE;
        }
    }
    if out.passed() {
        eprintln!("seed {seed} passed ({} statements)", out.statements);
        ExitCode::SUCCESS
    } else {
        eprintln!("replay: make sim SEED={seed}");
        ExitCode::FAILURE
    }
}

/// Writes the seed as a regression scenario. A seed that fails now is marked `xfail` with its
/// first failure, so the committed file keeps `make test` green until the bug is fixed.
fn save_seed(
    seed: u64,
    name: &str,
    options: SweepOptions,
    failure: Option<&String>,
) -> Result<(), String> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(format!("{name}: use letters, digits, - and _"));
    }
    let dir = repo_root().join("scenarios/regressions");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let json_name = format!("{name}.json");
    let s = sweep::build(seed, options, &json_name);
    let mut text = s.text.clone();
    if let Some(f) = failure {
        let why = f.lines().next().unwrap_or("").trim().to_string();
        let mut lines: Vec<&str> = text.lines().collect();
        // After the `seed` line: header directives come before the first step.
        let at = lines
            .iter()
            .position(|l| l.starts_with("seed "))
            .map_or(1, |i| i + 1);
        let xfail = format!("xfail {why}");
        lines.insert(at, &xfail);
        text = lines.join("\n");
        text.push('\n');
        eprintln!("the seed fails now: saved with `xfail` (remove it once fixed)");
    }
    let scn = dir.join(format!("{name}.scn"));
    std::fs::write(&scn, text).map_err(|e| format!("{}: {e}", scn.display()))?;
    eprintln!("wrote {}", scn.display());
    if let Some(json) = &s.vschema {
        let path = dir.join(&json_name);
        std::fs::write(&path, json).map_err(|e| format!("{}: {e}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

fn panic_text(p: &Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "(no message)".into())
}

fn run_sweep(n: u64, seed: Option<u64>, options: SweepOptions) -> ExitCode {
    let start = seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64 % 1_000_000_000_000)
            .unwrap_or(1)
    });
    eprintln!("sweep: {n} seeds from {start} (repeat with --seed {start})");
    let began = Instant::now();
    let mut failed: Vec<(u64, String)> = Vec::new();
    let mut statements = 0usize;
    let mut last_draw = Instant::now();
    for i in 0..n {
        let s = start.wrapping_add(i);
        let out = catch_unwind(AssertUnwindSafe(|| sweep::run_seed(s, options, false)));
        match out {
            Ok(o) => {
                statements += o.statements;
                if let Some(f) = o.failures.first() {
                    failed.push((s, f.lines().next().unwrap_or("").to_string()));
                    println!("seed {s} FAILED: {f}\n  replay: make sim SEED={s}");
                }
            }
            Err(p) => {
                let msg = format!("panicked: {}", panic_text(&p));
                println!("seed {s} FAILED: {msg}\n  replay: make sim SEED={s}");
                failed.push((s, msg));
            }
        }
        if last_draw.elapsed().as_millis() >= 200 || i + 1 == n {
            last_draw = Instant::now();
            progress(i + 1, n, began.elapsed().as_secs_f64(), failed.len());
        }
    }
    eprintln!();
    let secs = began.elapsed().as_secs_f64();
    eprintln!(
        "{n} seeds in {secs:.1}s ({:.1} seeds/s, {statements} statements, {:.0} statements/s), {} failed",
        n as f64 / secs.max(1e-9),
        statements as f64 / secs.max(1e-9),
        failed.len()
    );
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        for (s, f) in &failed {
            eprintln!("  make sim SEED={s}    # {f}");
        }
        ExitCode::FAILURE
    }
}

fn progress(done: u64, n: u64, secs: f64, failures: usize) {
    const WIDTH: u64 = 30;
    let filled = (done * WIDTH / n.max(1)) as usize;
    let bar = format!(
        "{}{}",
        "#".repeat(filled),
        ".".repeat(WIDTH as usize - filled)
    );
    let mut err = std::io::stderr();
    let _ = write!(
        err,
        "\r[{bar}] {done}/{n} seeds  {:.1} seeds/s  {failures} failed ",
        done as f64 / secs.max(1e-9)
    );
    let _ = err.flush();
}
