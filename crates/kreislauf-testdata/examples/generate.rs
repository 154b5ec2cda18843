//! Writes a generated data set as CSV and prints its summary and timing.
//!
//! ```text
//! cargo run --release -p kreislauf-testdata --example generate -- [PEOPLE] [SEED] [OUT.csv]
//! ```
//!
//! Without `OUT.csv` only the summary is printed (generation is timed on its own).

use std::fs::File;
use std::io::BufWriter;
use std::time::Instant;

use kreislauf_testdata::{write_csv, Generator, GeneratorConfig, Stats};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let people = args.next().map(|s| s.parse()).transpose()?.unwrap_or(1_000);
    let seed = args.next().map(|s| s.parse()).transpose()?.unwrap_or(42);
    let out = args.next();

    let config = GeneratorConfig {
        seed,
        people,
        ..GeneratorConfig::default()
    };
    let generator = Generator::new(config)?;
    let start = Instant::now();
    let records = generator.generate();
    let generated = start.elapsed();
    eprintln!("generated {} records in {:.2?}", records.len(), generated);

    if let Some(path) = out {
        let start = Instant::now();
        write_csv(&records, BufWriter::new(File::create(&path)?))?;
        eprintln!("wrote {path} in {:.2?}", start.elapsed());
    }
    let stats = Stats::of(&records);
    println!("{}", serde_json::to_string_pretty(&stats)?);
    Ok(())
}
