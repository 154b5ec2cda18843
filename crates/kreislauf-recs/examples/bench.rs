//! Runs the recommendation benchmark.
//!
//! `cargo run --release -p kreislauf-recs --example bench -- [--small] [--seed N] [--no-refresh]`

use std::process::ExitCode;

use kreislauf_recs::bench::{run, BenchConfig};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let seed = args
        .iter()
        .position(|arg| arg == "--seed")
        .and_then(|index| args.get(index + 1))
        .and_then(|seed| seed.parse().ok())
        .unwrap_or(7);
    let mut config = if args.iter().any(|arg| arg == "--small") {
        BenchConfig::small(seed)
    } else {
        BenchConfig::full(seed)
    };
    config.measure_refresh = !args.iter().any(|arg| arg == "--no-refresh");
    match run(config) {
        Ok(report) => {
            println!("{report}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("benchmark failed: {error}");
            ExitCode::FAILURE
        }
    }
}
