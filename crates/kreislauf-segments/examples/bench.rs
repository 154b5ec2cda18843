//! `cargo run --release -p kreislauf-segments --example bench [profiles] [recompute_profiles]`
use kreislauf_segments::bench::{run, BenchConfig};

fn main() {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<usize>());
    let mut config = BenchConfig::default();
    if let Some(Ok(n)) = args.next() {
        config.profiles = n;
    }
    if let Some(Ok(n)) = args.next() {
        config.recompute_profiles = n;
    }
    println!("{config:?}");
    print!("{}", run(&config));
}
