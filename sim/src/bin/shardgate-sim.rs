//! `shardgate-sim run <file.scn> [--seed N] [--twice] [--split]`: runs one scenario in the L0 stepper and
//! prints its transcript; failures go to stderr and make the exit status 1.

use clap::{Parser, Subcommand};
use shardgate_sim::{runner, scenario};
use std::path::Path;
use std::process::ExitCode;

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
    },
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Run {
            file,
            seed,
            twice,
            split,
        } => {
            let sc = match scenario::load(Path::new(&file), &file) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::FAILURE;
                }
            };
            eprintln!("seed {}", seed.unwrap_or(sc.seed));
            let out = if twice {
                runner::run_l0_twice_with(&sc, seed, split)
            } else {
                runner::run_l0_with(&sc, seed, split)
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
    }
}
