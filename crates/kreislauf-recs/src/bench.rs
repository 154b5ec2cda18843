//! Benchmark (not a test): build a model over ~100,000 items and 10 million
//! interactions, then measure per-request latency of mixed strategies,
//! throughput, memory, and reader latency while a refresh rebuilds the
//! model in the background.
//!
//! Run it in release mode (`kreislauf bench recs`, or the crate example
//! `cargo run --release -p kreislauf-recs --example bench`); use
//! [`BenchConfig::small`] for a quick smoke run.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::catalog::ItemKey;
use crate::error::RecsError;
use crate::eval::{Generator, GeneratorConfig};
use crate::interactions::ItemIdx;
use crate::model::{ModelBuilder, ModelConfig, RecommenderHandle};
use crate::recommend::{HistoryEvent, Request, Strategy};

/// What to run.
#[derive(Clone, Debug)]
pub struct BenchConfig {
    /// Seed.
    pub seed: u64,
    /// Approximate number of items (split over wines, deli, recipes).
    pub items: usize,
    /// Interactions to generate.
    pub interactions: usize,
    /// Requests to time.
    pub requests: usize,
    /// Items per recommendation.
    pub count: usize,
    /// Model parameters.
    pub model: ModelConfig,
    /// Also time requests while a full refresh runs concurrently.
    pub measure_refresh: bool,
}

impl BenchConfig {
    /// 100,000 items, 10 million interactions, 20,000 requests.
    pub fn full(seed: u64) -> Self {
        Self {
            seed,
            items: 100_000,
            interactions: 10_000_000,
            requests: 20_000,
            count: 10,
            model: ModelConfig::standard(),
            measure_refresh: true,
        }
    }

    /// A fast smoke run (seconds in debug builds).
    pub fn small(seed: u64) -> Self {
        Self {
            items: 3_000,
            interactions: 60_000,
            requests: 500,
            ..Self::full(seed)
        }
    }
}

/// Latency percentiles in microseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Latency {
    /// Requests measured.
    pub requests: usize,
    /// Median.
    pub p50_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// Maximum.
    pub max_us: f64,
}

impl Latency {
    fn of(mut samples: Vec<Duration>) -> Self {
        if samples.is_empty() {
            return Self::default();
        }
        samples.sort_unstable();
        let at = |quantile: f64| {
            let index = ((samples.len() as f64 - 1.0) * quantile).round() as usize;
            samples[index.min(samples.len() - 1)].as_secs_f64() * 1e6
        };
        Self {
            requests: samples.len(),
            p50_us: at(0.5),
            p99_us: at(0.99),
            max_us: at(1.0),
        }
    }
}

/// Benchmark results.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct BenchReport {
    /// Items in the catalogs.
    pub items: usize,
    /// Interactions learned from.
    pub interactions: usize,
    /// Seconds to generate catalogs and interactions.
    pub generate_secs: f64,
    /// Seconds to build the first snapshot.
    pub build_secs: f64,
    /// Build breakdown: item table, text index, co-occurrence +
    /// popularity, rules and lists (milliseconds).
    pub build_breakdown_ms: [u128; 4],
    /// Co-occurrence neighbour entries.
    pub cooc_edges: usize,
    /// All requests.
    pub overall: Latency,
    /// Per strategy (item and profile requests mixed).
    pub per_strategy: Vec<(String, Latency)>,
    /// Profile-history requests only.
    pub profile_requests: Latency,
    /// Requests per second, single thread.
    pub requests_per_sec: f64,
    /// Approximate model memory in bytes.
    pub model_bytes: usize,
    /// Approximate interaction-log memory in bytes (builder side).
    pub log_bytes: usize,
    /// Peak resident set size from /proc/self/status (VmHWM), KiB.
    pub peak_rss_kib: Option<u64>,
    /// Seconds a full refresh took while readers kept going.
    pub refresh_secs: Option<f64>,
    /// Reader latency while the refresh ran.
    pub during_refresh: Option<Latency>,
}

/// Peak RSS of this process in KiB (Linux only).
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

impl fmt::Display for BenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "Recommendation benchmark: {} items, {} interactions",
            self.items, self.interactions
        )?;
        writeln!(f, "- generate: {:.1} s", self.generate_secs)?;
        let [table, text, behaviour, derive] = self.build_breakdown_ms;
        writeln!(
            f,
            "- build: {:.1} s (items {table} ms, text index {text} ms, co-occurrence + popularity {behaviour} ms, rules/lists {derive} ms; {} neighbour entries)",
            self.build_secs, self.cooc_edges
        )?;
        writeln!(
            f,
            "- model memory ≈ {:.0} MiB, interaction log ≈ {:.0} MiB",
            mib(self.model_bytes),
            mib(self.log_bytes)
        )?;
        if let Some(rss) = self.peak_rss_kib {
            writeln!(f, "- peak RSS (VmHWM): {:.0} MiB", rss as f64 / 1024.0)?;
        }
        writeln!(f, "\n| requests | n | p50 µs | p99 µs | max µs |")?;
        writeln!(f, "|---|---:|---:|---:|---:|")?;
        let mut line = |name: &str, latency: &Latency| {
            writeln!(
                f,
                "| {name} | {} | {:.0} | {:.0} | {:.0} |",
                latency.requests, latency.p50_us, latency.p99_us, latency.max_us
            )
        };
        line("all", &self.overall)?;
        for (name, latency) in &self.per_strategy {
            line(name, latency)?;
        }
        line("profile history", &self.profile_requests)?;
        if let Some(latency) = &self.during_refresh {
            line("during refresh", latency)?;
        }
        writeln!(
            f,
            "\nthroughput: {:.0} requests/s (one thread)",
            self.requests_per_sec
        )?;
        if let Some(seconds) = self.refresh_secs {
            writeln!(
                f,
                "refresh (full rebuild, readers not blocked): {seconds:.1} s"
            )?;
        }
        Ok(())
    }
}

fn generator_config(config: &BenchConfig) -> GeneratorConfig {
    let mut generator = GeneratorConfig::bench(config.seed);
    // New vintages add ~successor_share of the wines on top.
    let wines = (config.items as f64 * 0.16) as usize;
    generator.wines = wines.max(10);
    generator.deli = (config.items as f64 * 0.05).max(5.0) as usize;
    generator.recipes = config
        .items
        .saturating_sub(generator.wines + generator.deli + wines / 4)
        .max(10);
    generator.max_interactions = Some(config.interactions);
    generator.profiles = (config.interactions / 8).max(100);
    generator
}

/// Runs the benchmark.
pub fn run(config: BenchConfig) -> Result<BenchReport, RecsError> {
    let started = Instant::now();
    let generator = Generator::new(generator_config(&config));
    let mut builder = ModelBuilder::new(generator.catalogs().clone()).with_config(config.model);
    builder = builder.with_rules(generator.rules().clone())?;
    let mapping: Vec<Option<ItemIdx>> = generator
        .item_keys()
        .iter()
        .map(|key| builder.item_index(key))
        .collect();
    // Keep histories of the first profiles for profile requests.
    let history_profiles = 5_000u32;
    let mut histories: Vec<Vec<(u32, i64, crate::InteractionKind)>> =
        vec![Vec::new(); history_profiles as usize];
    {
        let log = builder.interaction_log_mut();
        log.reserve(config.interactions);
        generator.generate(|profile, item, kind, timestamp| {
            if let Some(Some(index)) = mapping.get(item as usize) {
                log.push(profile, *index, kind, timestamp);
                if let Some(history) = histories.get_mut(profile as usize) {
                    history.push((item, timestamp, kind));
                }
            }
        });
    }
    let interactions = builder.interaction_count();
    let generate_secs = started.elapsed().as_secs_f64();
    let log_bytes = builder.interaction_log_mut().approx_memory_bytes();

    let started = Instant::now();
    let handle = Arc::new(RecommenderHandle::new(builder));
    let build_secs = started.elapsed().as_secs_f64();
    let model = handle.snapshot();
    let stats = model.stats().clone();

    let keys = generator.item_keys();
    let to_history = |events: &[(u32, i64, crate::InteractionKind)]| -> Vec<HistoryEvent> {
        events
            .iter()
            .map(|(item, timestamp, kind)| HistoryEvent {
                item: keys[*item as usize].clone(),
                kind: *kind,
                timestamp: chrono::DateTime::from_timestamp(*timestamp, 0).unwrap_or_default(),
            })
            .collect()
    };
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed ^ 0xbe_4c4);
    let targets: [Option<&str>; 4] = [None, Some("recipes"), Some("wines"), Some("deli")];
    let requests: Vec<(Strategy, bool, Request)> = (0..config.requests)
        .map(|_| {
            let strategy = Strategy::ALL[rng.gen_range(0..Strategy::ALL.len())];
            let for_profile = rng.gen_bool(0.3);
            let mut request = if for_profile {
                let profile = rng.gen_range(0..histories.len());
                Request::for_profile(to_history(&histories[profile]), strategy, config.count)
            } else {
                let key: ItemKey = keys[rng.gen_range(0..keys.len())].clone();
                Request::for_item(key, strategy, config.count)
            };
            request.target_catalog = targets[rng.gen_range(0..targets.len())].map(str::to_string);
            (strategy, for_profile, request)
        })
        .collect();

    let time_all = |requests: &[(Strategy, bool, Request)]| -> Result<Vec<Duration>, RecsError> {
        let mut samples = Vec::with_capacity(requests.len());
        for (_, _, request) in requests {
            let started = Instant::now();
            let snapshot = handle.snapshot();
            let result = snapshot.recommend(request);
            let elapsed = started.elapsed();
            match result {
                Ok(_) | Err(RecsError::UnknownItem { .. }) => samples.push(elapsed),
                Err(error) => return Err(error),
            }
        }
        Ok(samples)
    };
    // Warm-up (thread-local scratch, caches), then measure.
    time_all(&requests[..requests.len().min(200)])?;
    let started = Instant::now();
    let samples = time_all(&requests)?;
    let total = started.elapsed().as_secs_f64();
    let per_strategy = Strategy::ALL
        .iter()
        .map(|strategy| {
            let chosen: Vec<Duration> = requests
                .iter()
                .zip(&samples)
                .filter(|((candidate, _, _), _)| candidate == strategy)
                .map(|(_, sample)| *sample)
                .collect();
            (strategy.to_string(), Latency::of(chosen))
        })
        .collect();
    let profile_requests = Latency::of(
        requests
            .iter()
            .zip(&samples)
            .filter(|((_, for_profile, _), _)| *for_profile)
            .map(|(_, sample)| *sample)
            .collect(),
    );

    let (refresh_secs, during_refresh) = if config.measure_refresh {
        let done = Arc::new(AtomicBool::new(false));
        let refresher = {
            let handle = Arc::clone(&handle);
            let done = Arc::clone(&done);
            std::thread::spawn(move || {
                let started = Instant::now();
                handle.refresh(None);
                done.store(true, Ordering::SeqCst);
                started.elapsed().as_secs_f64()
            })
        };
        let mut during = Vec::new();
        let mut round = 0usize;
        while !done.load(Ordering::SeqCst) {
            let (_, _, request) = &requests[round % requests.len()];
            let started = Instant::now();
            let _ = handle.snapshot().recommend(request);
            during.push(started.elapsed());
            round += 1;
        }
        let seconds = refresher
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (Some(seconds), Some(Latency::of(during)))
    } else {
        (None, None)
    };

    Ok(BenchReport {
        items: stats.items,
        interactions,
        generate_secs,
        build_secs,
        build_breakdown_ms: [
            stats.table_millis,
            stats.text_millis,
            stats.behaviour_millis,
            stats.derive_millis,
        ],
        cooc_edges: stats.cooc_edges,
        overall: Latency::of(samples),
        per_strategy,
        profile_requests,
        requests_per_sec: config.requests as f64 / total.max(f64::EPSILON),
        model_bytes: model.approx_memory_bytes(),
        log_bytes,
        peak_rss_kib: peak_rss_kib(),
        refresh_secs,
        during_refresh,
    })
}
