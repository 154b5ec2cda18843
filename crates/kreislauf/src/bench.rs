//! `kreislauf bench ingest`: drives the HTTP batch API over loopback with realistic events and reports
//! acknowledged-durable events/s, batch latency percentiles, peak RSS and store size.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Subcommand;
use kreislauf_store::{NewSource, Store};
use rand::{Rng, SeedableRng};

use crate::config::Settings;

#[derive(Subcommand)]
pub enum BenchCommand {
    /// De-duplication of generated German/Swiss/Austrian customer records with ground truth.
    Dedupe {
        /// People to generate (records ≈ people × 1.3 with the default duplicate rate).
        #[arg(long, default_value_t = 100_000)]
        people: usize,
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// Match probability at or above which a pair is merged.
        #[arg(long, default_value_t = 0.9)]
        threshold: f64,
        /// Blocks larger than this are skipped (they do not discriminate).
        #[arg(long, default_value_t = 30)]
        max_block: usize,
    },
    /// Duplicate detection accuracy and speed on the Febrl benchmark files (linkage 4a↔4b, de-duplication of 3).
    Linkage {
        /// Folder with dataset3.csv, dataset4a.csv and dataset4b.csv.
        #[arg(long, default_value = "../shared/datasets/febrl")]
        febrl: std::path::PathBuf,
    },
    /// Recommendations: 100,000 items and 10 million interactions, model build time and memory, latency per
    /// request by strategy, and latency while the model refreshes.
    Recs {
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// 5,000 items and 200,000 interactions.
        #[arg(long)]
        small: bool,
        /// Skip the measurement during a model refresh.
        #[arg(long)]
        no_refresh: bool,
    },
    /// HTTP batch ingestion into a fresh store (embedded unless --database-url is given).
    Ingest {
        /// Events to send in total.
        #[arg(long, default_value_t = 1_000_000)]
        events: u64,
        /// Events per batch request.
        #[arg(long, default_value_t = 100)]
        batch: usize,
        /// Concurrent clients.
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
        /// Distinct people the events come from.
        #[arg(long, default_value_t = 200_000)]
        identities: u64,
        /// Target rate in events/s (open loop); without it clients send as fast as they are answered.
        #[arg(long)]
        rate: Option<u64>,
        /// Print a progress line every this many events.
        #[arg(long, default_value_t = 1_000_000)]
        report_every: u64,
        /// Print the result as one JSON line too.
        #[arg(long)]
        json: bool,
        /// Keep this many segments (each over its own windowed computed trait) current while ingesting.
        #[arg(long, default_value_t = 0)]
        segments: usize,
    },
}

pub async fn run(cmd: BenchCommand, settings: Settings) -> anyhow::Result<()> {
    match cmd {
        BenchCommand::Linkage { febrl } => linkage(&febrl),
        BenchCommand::Recs {
            seed,
            small,
            no_refresh,
        } => {
            let mut config = if small {
                kreislauf_recs::bench::BenchConfig::small(seed)
            } else {
                kreislauf_recs::bench::BenchConfig::full(seed)
            };
            config.measure_refresh = !no_refresh;
            let report =
                tokio::task::spawn_blocking(move || kreislauf_recs::bench::run(config)).await??;
            println!("{report}");
            Ok(())
        }
        BenchCommand::Dedupe {
            people,
            seed,
            threshold,
            max_block,
        } => dedupe_generated(people, seed, threshold, max_block),
        BenchCommand::Ingest {
            events,
            batch,
            concurrency,
            identities,
            rate,
            report_every,
            json,
            segments,
        } => {
            ingest(
                settings,
                IngestParams {
                    events,
                    batch: batch.max(1),
                    concurrency: concurrency.max(1),
                    identities: identities.max(1),
                    rate,
                    report_every,
                    json,
                    segments,
                },
            )
            .await
        }
    }
}

struct IngestParams {
    events: u64,
    batch: usize,
    concurrency: usize,
    identities: u64,
    rate: Option<u64>,
    report_every: u64,
    json: bool,
    segments: usize,
}

/// `n` computed traits and segments over the benchmark's events: windowed counts and sums of orders by
/// revenue band, and page views, so that every order changes several of them.
fn bench_audiences(n: usize) -> String {
    let mut doc = String::from("computed_traits:\n");
    for i in 0..n {
        let (aggregate, of) = if i % 2 == 0 {
            ("count", "")
        } else {
            ("sum", "    of: event.properties.revenue\n")
        };
        doc.push_str(&format!(
            "  - name: orders_{i}\n    aggregate: {aggregate}\n{of}    events: [Order Completed]\n    where: {{ path: event.properties.revenue, ge: {} }}\n    window: {}d\n",
            (i * 20) % 400,
            7 + i * 3
        ));
    }
    doc.push_str("segments:\n");
    for i in 0..n {
        doc.push_str(&format!(
            "  - id: segment-{i}\n    condition: {{ all: [ {{ path: computed.orders_{i}, ge: {} }}, {{ path: trait.city, eq: Zürich, ignore_case: true }} ] }}\n",
            1 + i % 3
        ));
    }
    doc
}

fn peak_rss_mib() -> f64 {
    status_kib("VmHWM:") as f64 / 1024.0
}

fn rss_mib() -> f64 {
    status_kib("VmRSS:") as f64 / 1024.0
}

fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn dir_size_mib(dir: &Path) -> f64 {
    dir_bytes(dir) as f64 / (1024.0 * 1024.0)
}

/// Bytes of all files under `dir`, sub-folders (the event log) included.
fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter_map(|e| {
                    let meta = e.metadata().ok()?;
                    Some(if meta.is_dir() {
                        dir_bytes(&e.path())
                    } else {
                        meta.len()
                    })
                })
                .sum()
        })
        .unwrap_or(0)
}

/// One realistic event of about 450 bytes from person `who`.
fn event_json(rng: &mut impl Rng, who: u64, now: &str) -> String {
    let message_id = uuid::Uuid::new_v4();
    let roll: u8 = rng.gen_range(0..10);
    let anon = format!("{:016x}", who.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    match roll {
        0 => format!(
            r#"{{"type":"identify","userId":"user-{who}","anonymousId":"{anon}","messageId":"{message_id}","timestamp":"{now}","traits":{{"email":"kunde{who}@example.ch","first_name":"Hans","last_name":"Müller","loyalty_card":"2501{who:08}","city":"Zürich","preferred_language":"de-CH"}},"context":{{"library":{{"name":"analytics-python","version":"2.3.3"}},"ip":"10.1.2.3"}}}}"#
        ),
        1 | 2 => format!(
            r#"{{"type":"page","anonymousId":"{anon}","messageId":"{message_id}","timestamp":"{now}","name":"Rezept: Risotto mit Spargel","properties":{{"path":"/rezepte/risotto-spargel","url":"https://rezepte.example.ch/rezepte/risotto-spargel","referrer":"https://weinclub.example.ch/newsletter"}},"context":{{"library":{{"name":"analytics.js","version":"5.2.0"}},"userAgent":"Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)","locale":"de-CH"}}}}"#
        ),
        _ => {
            let revenue = rng.gen_range(5..400);
            format!(
                r#"{{"type":"track","event":"Order Completed","userId":"user-{who}","messageId":"{message_id}","timestamp":"{now}","properties":{{"order_id":"o-{message_id}","revenue":{revenue}.90,"currency":"CHF","store":"Zürich HB","products":[{{"sku":"PRO-DOC-075","name":"Prosecco DOC Bio","category":"Schaumwein","price":11.95,"quantity":2}}]}},"context":{{"library":{{"name":"pos-gateway","version":"1.4.0"}}}}}}"#
            )
        }
    }
}

async fn ingest(settings: Settings, p: IngestParams) -> anyhow::Result<()> {
    // A fresh store every run: a temp folder, or a fresh schema on PostgreSQL.
    let tmp = tempfile::Builder::new()
        .prefix("kreislauf-bench-")
        .tempdir_in(std::env::temp_dir())?;
    let store: Arc<dyn Store> = match &settings.database_url {
        Some(url) => {
            let schema = format!("kl_bench_{}", chrono::Utc::now().timestamp_millis());
            Arc::new(
                kreislauf_store_postgres::PostgresStore::connect_with_schema(url, &schema)
                    .await
                    .context("connect to PostgreSQL")?,
            )
        }
        None => Arc::new(kreislauf_store_sqlite::SqliteStore::open(
            &tmp.path().join("kreislauf.db"),
        )?),
    };
    let backend = store.backend_name();
    let engine = crate::start_engine(&settings, store.clone()).await?;
    let audiences = if p.segments > 0 {
        let audiences = kreislauf_engine::audience::Audiences::start(engine.clone()).await?;
        audiences
            .apply(&bench_audiences(p.segments), "bench")
            .await?;
        Some(audiences)
    } else {
        None
    };
    let (_, key) = engine
        .create_source(NewSource {
            name: "bench".into(),
            brand: "bench".into(),
            channel: "http".into(),
            identity_mapping: Default::default(),
            allowed_origins: vec![],
        })
        .await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(kreislauf_server::serve(
        listener,
        kreislauf_server::AppState::new(engine.clone()),
        async {
            let _ = stop_rx.await;
        },
    ));

    eprintln!(
        "bench ingest: {} events, {} per batch, {} clients, {} identities, backend {backend}{}",
        p.events,
        p.batch,
        p.concurrency,
        p.identities,
        p.rate
            .map(|r| format!(", target {r} events/s"))
            .unwrap_or_default()
    );
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(p.concurrency)
        .build()?;
    let url = format!("http://{addr}/v1/batch");
    let sent = Arc::new(AtomicU64::new(0));
    let acked = Arc::new(AtomicU64::new(0));
    let throttled = Arc::new(AtomicU64::new(0));
    let batches_total = p.events.div_ceil(p.batch as u64);
    let next_batch = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..p.concurrency {
        let (client, url, key) = (client.clone(), url.clone(), key.key.clone());
        let (acked, throttled, next_batch, sent) = (
            acked.clone(),
            throttled.clone(),
            next_batch.clone(),
            sent.clone(),
        );
        let (batch, identities, rate, total) = (p.batch, p.identities, p.rate, p.events);
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut rng = rand::rngs::StdRng::from_entropy();
            loop {
                let n = next_batch.fetch_add(1, Ordering::Relaxed);
                if n >= batches_total {
                    break;
                }
                if let Some(rate) = rate {
                    // Open loop: batch n is due at n·batch/rate seconds after the start.
                    let due =
                        started + Duration::from_secs_f64(n as f64 * batch as f64 / rate as f64);
                    tokio::time::sleep_until(due.into()).await;
                }
                let size = batch.min((total - n * batch as u64) as usize);
                let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
                let mut body = String::with_capacity(size * 480 + 64);
                body.push_str(r#"{"batch":["#);
                for i in 0..size {
                    if i > 0 {
                        body.push(',');
                    }
                    let who = rng.gen_range(0..identities);
                    body.push_str(&event_json(&mut rng, who, &now));
                }
                body.push_str(&format!(r#"],"sentAt":"{now}"}}"#));
                sent.fetch_add(size as u64, Ordering::Relaxed);
                loop {
                    let t0 = Instant::now();
                    let response = client
                        .post(&url)
                        .basic_auth(&key, Some(""))
                        .header("content-type", "application/json")
                        .body(body.clone())
                        .send()
                        .await;
                    match response {
                        Ok(r) if r.status() == 200 => {
                            latencies.push(t0.elapsed().as_secs_f64());
                            acked.fetch_add(size as u64, Ordering::Relaxed);
                            break;
                        }
                        Ok(r) if r.status() == 429 => {
                            throttled.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                        Ok(r) => anyhow::bail!(
                            "unexpected status {} from {url}: {}",
                            r.status(),
                            r.text().await.unwrap_or_default()
                        ),
                        Err(e) => anyhow::bail!("request failed: {e}"),
                    }
                }
            }
            Ok::<_, anyhow::Error>(latencies)
        }));
    }
    let reporter = {
        let (acked, data_dir) = (acked.clone(), tmp.path().to_owned());
        let every = p.report_every.max(1);
        tokio::spawn(async move {
            let mut next = every;
            let mut last = (Instant::now(), 0u64);
            loop {
                tokio::time::sleep(Duration::from_millis(200)).await;
                let now_acked = acked.load(Ordering::Relaxed);
                if now_acked >= next {
                    let rate = (now_acked - last.1) as f64 / last.0.elapsed().as_secs_f64();
                    eprintln!("  {:>10} events  {:>9.0} events/s (interval)  RSS {:>6.0} MiB  store {:>7.0} MiB", now_acked, rate, rss_mib(), dir_size_mib(&data_dir));
                    last = (Instant::now(), now_acked);
                    next = (now_acked / every + 1) * every;
                }
            }
        })
    };
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await??);
    }
    let elapsed = started.elapsed().as_secs_f64();
    reporter.abort();
    let audience_lag = match &audiences {
        Some(a) => {
            let t0 = Instant::now();
            a.catch_up().await?;
            let lag = t0.elapsed().as_secs_f64();
            let sizes: Vec<String> = a
                .segments()
                .await?
                .into_iter()
                .take(5)
                .map(|s| format!("{} {}", s.id, s.members))
                .collect();
            eprintln!(
                "segments: {} kept current; the audience processor finished {lag:.1}s after the last acknowledgement (first sizes: {})",
                p.segments,
                sizes.join(", ")
            );
            a.stop();
            Some(lag)
        }
        None => None,
    };
    let _ = stop_tx.send(());
    server.await??;
    engine.shutdown().await;
    let stored = store.stats().await?.events;
    latencies.sort_by(f64::total_cmp);
    let pct = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0.0)
            * 1000.0
    };
    let total = acked.load(Ordering::Relaxed);
    let result = serde_json::json!({
        "backend": backend,
        "events": total,
        "stored": stored,
        "seconds": elapsed,
        "events_per_second": total as f64 / elapsed,
        "batch_p50_ms": pct(0.50),
        "batch_p99_ms": pct(0.99),
        "batch_max_ms": latencies.last().copied().unwrap_or(0.0) * 1000.0,
        "throttled_requests": throttled.load(Ordering::Relaxed),
        "peak_rss_mib": peak_rss_mib(),
        "store_mib": dir_size_mib(tmp.path()),
        "segments": p.segments,
        "audience_lag_seconds": audience_lag,
    });
    eprintln!(
        "result: {total} events acknowledged (durable) in {elapsed:.1}s = {:.0} events/s; batch latency p50 {:.1} ms, p99 {:.1} ms; peak RSS {:.0} MiB (server and load generator); store {:.0} MiB; {} requests throttled (429)",
        total as f64 / elapsed,
        pct(0.50),
        pct(0.99),
        peak_rss_mib(),
        dir_size_mib(tmp.path()),
        throttled.load(Ordering::Relaxed)
    );
    // With segments, entries and exits are stored as events too.
    if stored < total || (p.segments == 0 && stored != total) {
        anyhow::bail!("store holds {stored} events but {total} were acknowledged");
    }
    if p.json {
        println!("{result}");
    }
    Ok(())
}

fn linkage(dir: &Path) -> anyhow::Result<()> {
    use kreislauf_linkage::{accuracy, cluster, cluster_pairs, dedupe, febrl, link};
    let started = Instant::now();
    let a = febrl::load(&dir.join("dataset4a.csv")).map_err(anyhow::Error::msg)?;
    let b = febrl::load(&dir.join("dataset4b.csv")).map_err(anyhow::Error::msg)?;
    let result = link(&a.records, &b.records, &febrl::config())?;
    let predicted = result.matches().map(|p| (p.left, p.right)).collect();
    let acc = accuracy(&predicted, &febrl::true_pairs_between(&a, &b));
    println!(
        "febrl4 linkage: {} candidate pairs, precision {:.4}, recall {:.4}, F1 {:.4}, {:.3}s (load, block, compare, train, score), peak RSS {:.0} MiB",
        result.candidate_pairs, acc.precision, acc.recall, acc.f1, started.elapsed().as_secs_f64(), peak_rss_mib()
    );
    let started = Instant::now();
    let file = febrl::load(&dir.join("dataset3.csv")).map_err(anyhow::Error::msg)?;
    let result = dedupe(&file.records, &febrl::config())?;
    let clusters = cluster(file.records.rows.len(), &result);
    let acc = accuracy(&cluster_pairs(&clusters), &febrl::true_pairs_within(&file));
    println!(
        "febrl3 de-duplication: {} candidate pairs, precision {:.4}, recall {:.4}, F1 {:.4} (clustered), {:.3}s, peak RSS {:.0} MiB",
        result.candidate_pairs, acc.precision, acc.recall, acc.f1, started.elapsed().as_secs_f64(), peak_rss_mib()
    );
    Ok(())
}

fn dedupe_generated(
    people: usize,
    seed: u64,
    threshold: f64,
    max_block: usize,
) -> anyhow::Result<()> {
    use kreislauf_engine::quality::{customer_row, linkage_config, RawCustomer, LINK_FIELDS};
    use kreislauf_linkage::{accuracy, cluster, cluster_pairs, dedupe, Records};
    use kreislauf_quality::Country;
    use std::collections::{HashMap, HashSet};

    let started = Instant::now();
    let config = kreislauf_testdata::GeneratorConfig {
        seed,
        people,
        ..Default::default()
    };
    let records = kreislauf_testdata::Generator::new(config)?.generate();
    let generated = started.elapsed();
    let today = chrono::NaiveDate::from_ymd_opt(2026, 11, 25).unwrap_or_default();
    let rows: Vec<Vec<Option<String>>> = records
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let raw = RawCustomer {
                email: r.email.as_deref(),
                phone: r.phone.as_deref(),
                first_name: r.first_name.as_deref(),
                last_name: r.last_name.as_deref(),
                street: r.street.as_deref(),
                house_number: r.house_number.as_deref(),
                postal_code: r.postal_code.as_deref(),
                country: r.country.as_deref(),
                birth_date: r.birth_date.as_deref(),
            };
            customer_row(i as i64, &raw, Country::CH, today)
        })
        .collect();
    let normalised = started.elapsed() - generated;
    let table = Records {
        columns: LINK_FIELDS.iter().map(|s| (*s).to_owned()).collect(),
        rows,
    };
    let mut config = linkage_config(threshold);
    config.max_block_size = max_block;
    let result = dedupe(&table, &config)?;
    let clusters = cluster(records.len(), &result);
    let linked = started.elapsed() - generated - normalised;
    let index: HashMap<u64, usize> = records
        .iter()
        .enumerate()
        .map(|(i, r)| (r.record_id, i))
        .collect();
    let to_index = |pairs: std::collections::BTreeSet<(u64, u64)>| -> HashSet<(usize, usize)> {
        pairs
            .into_iter()
            .filter_map(|(a, b)| Some((*index.get(&a)?, *index.get(&b)?)))
            .map(|(a, b)| (a.min(b), a.max(b)))
            .collect()
    };
    let truth = to_index(kreislauf_testdata::true_pairs(&records));
    let households = to_index(kreislauf_testdata::household_pairs(&records));
    let predicted = cluster_pairs(&clusters);
    let acc = accuracy(&predicted, &truth);
    let household_merges = predicted.intersection(&households).count();
    if std::env::var_os("KREISLAUF_BENCH_DEBUG").is_some() {
        eprintln!("prior {:.4}", result.model.prior);
        for (c, cmp) in result.model.comparisons.iter().enumerate() {
            let cells: Vec<String> = cmp
                .kind
                .level_labels()
                .iter()
                .enumerate()
                .map(|(l, label)| {
                    format!(
                        "{label}: m {:.3} u {:.5}",
                        result.model.m[c][l], result.model.u[c][l]
                    )
                })
                .collect();
            eprintln!("  {:<12} {}", cmp.field, cells.join(" | "));
        }
        let mut shown = 0;
        for (i, p) in result.pairs.iter().enumerate() {
            let key = (p.left.min(p.right), p.left.max(p.right));
            if p.probability >= 0.5 && !truth.contains(&key) && shown < 6 {
                shown += 1;
                let why: Vec<String> = result
                    .explain(i, &table, &table)
                    .iter()
                    .map(|c| {
                        format!(
                            "{}={}{:+.1}",
                            c.field,
                            c.level.as_deref().unwrap_or("null"),
                            c.log2_bayes_factor
                        )
                    })
                    .collect();
                eprintln!(
                    "  FP p={:.3} household={} {:?} | {:?} :: {}",
                    p.probability,
                    households.contains(&key),
                    table.rows[p.left],
                    table.rows[p.right],
                    why.join(" ")
                );
            }
        }
    }
    println!(
        "generated {} records of {people} people (seed {seed}) in {:.1}s; normalised in {:.1}s; blocked, compared, trained, scored and clustered {} candidate pairs in {:.1}s",
        records.len(),
        generated.as_secs_f64(),
        normalised.as_secs_f64(),
        result.candidate_pairs,
        linked.as_secs_f64()
    );
    println!(
        "clustered: precision {:.4}, recall {:.4}, F1 {:.4}; {} of {} household pairs (different people, same family) wrongly merged; total {:.1}s, peak RSS {:.0} MiB",
        acc.precision,
        acc.recall,
        acc.f1,
        household_merges,
        households.len(),
        started.elapsed().as_secs_f64(),
        peak_rss_mib()
    );
    Ok(())
}
