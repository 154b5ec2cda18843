//! `kreislauf`: the CLI and the only place where concrete storage backends are chosen and wired.

mod bench;
mod config;
mod demo;

/// JSON ingestion allocates and frees many small objects across threads; glibc's allocator spent a quarter
/// of the ingest benchmark's CPU time (BENCHMARKS.md), mimalloc far less.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use kreislauf_core::{Identifier, IdentifierKind};
use kreislauf_engine::audience::Audiences;
use kreislauf_engine::import::{import_csv, ImportKind};
use kreislauf_engine::{Engine, EngineConfig, Metrics, SystemClock};
use kreislauf_store::{NewSource, Store};
use kreislauf_store_postgres::PostgresStore;
use kreislauf_store_sqlite::SqliteStore;

use crate::config::{Overrides, Settings};

#[derive(Parser)]
#[command(
    name = "kreislauf",
    version,
    about = "Kreislauf — customer experience management: unified profiles, journeys, voice of the customer"
)]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone)]
struct GlobalArgs {
    /// Settings file (default: ./kreislauf.toml if present).
    #[arg(long, global = true, env = "KREISLAUF_CONFIG")]
    config: Option<PathBuf>,
    /// Folder of the embedded store.
    #[arg(long, global = true, env = "KREISLAUF_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// PostgreSQL URL (postgres://…); without it the embedded store is used.
    #[arg(long, global = true, env = "KREISLAUF_DATABASE_URL")]
    database_url: Option<String>,
    /// Log filter (e.g. info, debug, kreislauf_engine=debug).
    #[arg(long, global = true, env = "KREISLAUF_LOG")]
    log: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP server (ingestion API, admin API, metrics).
    Serve {
        /// Address to listen on (default 127.0.0.1:8080).
        #[arg(long, env = "KREISLAUF_LISTEN")]
        listen: Option<SocketAddr>,
    },
    /// Start a fresh embedded workspace, replay demo events through the HTTP API and show the result.
    Demo(demo::DemoArgs),
    /// Manage admin API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Manage sources (brand × channel) and their write keys.
    #[command(subcommand)]
    Source(SourceCommand),
    /// Import customers or historical events from CSV.
    #[command(subcommand)]
    Import(ImportCommand),
    /// Look at, export, unmerge or erase profiles.
    #[command(subcommand)]
    Profile(ProfileCommand),
    /// Data quality: how clean the profiles are, and likely duplicates.
    #[command(subcommand)]
    Quality(QualityCommand),
    /// Segments and computed traits: define, preview, list, export.
    #[command(subcommand)]
    Segment(SegmentCommand),
    /// Recommendations: offline evaluation on generated interaction data.
    #[command(subcommand)]
    Recs(RecsCommand),
    /// Benchmarks.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
}

#[derive(Subcommand)]
enum RecsCommand {
    /// Time-split evaluation of every strategy, the blend and most-popular on generated catalogs and
    /// interactions with known structure; with --als-script also implicit-feedback ALS (Python `implicit`)
    /// on exactly the same split. Prints precision, recall, NDCG at k and coverage.
    Eval {
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// A smaller world, for a quick look.
        #[arg(long)]
        small: bool,
        /// crates/kreislauf-recs/scripts/als_baseline.py (needs `pip install implicit`).
        #[arg(long)]
        als_script: Option<PathBuf>,
        #[arg(long, default_value = "python3")]
        python: String,
        /// Keep the split (train.csv, test.csv) here.
        #[arg(long)]
        export: Option<PathBuf>,
        /// Also the blend with each component switched off.
        #[arg(long)]
        ablations: bool,
    },
}

#[derive(Subcommand)]
enum SegmentCommand {
    /// Apply a definition file (YAML or JSON with `computed_traits` and `segments`). Changed definitions
    /// get a new version; profiles are recomputed before the command returns.
    Apply { file: PathBuf },
    /// Segments in force with their member counts.
    List,
    /// One segment: definition, versions, member count over time.
    Show { id: String },
    /// Estimated size and a sample of members of a segment definition file, without saving it.
    Preview {
        file: PathBuf,
        /// Profiles to evaluate at most (the estimate is exact when all are).
        #[arg(long, default_value_t = 100_000)]
        scan: usize,
        #[arg(long, default_value_t = 10)]
        sample: usize,
    },
    /// Members as CSV with the named traits and computed traits.
    Export {
        id: String,
        /// Comma-separated trait or computed-trait names.
        #[arg(long, default_value = "")]
        traits: String,
        /// Output file (default: standard output).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum ReviewCommand {
    /// Pairs waiting for a decision (or --status accepted|rejected).
    List {
        #[arg(long, default_value = "pending")]
        status: String,
    },
    /// Confirm a pair: merge the two profiles (reversibly).
    Accept { id: i64 },
    /// Two different people: never propose the pair again.
    Reject { id: i64 },
}

#[derive(Subcommand)]
enum QualityCommand {
    /// Campaign gate: who may be contacted on a channel, and why the others may not.
    Gate {
        /// email, sms or post.
        #[arg(long, default_value = "email")]
        channel: String,
        /// Minimum profile quality score (0–100).
        #[arg(long, default_value_t = 0)]
        min_score: u8,
        /// Let contact values flagged suspicious (typo domains, disposable addresses) pass.
        #[arg(long)]
        allow_suspicious: bool,
        #[arg(long, default_value = "CH")]
        country: String,
    },
    /// Decide duplicate pairs that detection was not sure about.
    #[command(subcommand)]
    Review(ReviewCommand),
    /// Find duplicate profiles; with --apply, merge those at or above --auto (reversibly) and list the rest for review.
    Dedupe {
        #[arg(long, default_value = "CH")]
        country: String,
        /// Merge (without it, only show what would be merged).
        #[arg(long)]
        apply: bool,
        /// Match probability at or above which profiles are merged.
        #[arg(long, default_value_t = 0.99)]
        auto: f64,
    },
    /// Completeness and validity per field and source, the worst problems, likely duplicates.
    Report {
        /// Default country for phone numbers and postcodes of profiles that name none.
        #[arg(long, default_value = "CH")]
        country: String,
        /// Print JSON instead of tables.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create a token; its secret is printed once.
    Create {
        name: String,
    },
    List,
    Revoke {
        id: i64,
    },
}

#[derive(Subcommand)]
enum SourceCommand {
    /// Create a source and print its write key.
    Create {
        name: String,
        #[arg(long)]
        brand: String,
        #[arg(long)]
        channel: String,
        /// Browser origin allowed to send events (repeatable).
        #[arg(long = "origin")]
        origins: Vec<String>,
        /// Country for this source's phone numbers and postcodes when the data names none (CH, DE, AT, LI).
        #[arg(long)]
        country: Option<String>,
    },
    List,
    /// Add a write key to a source.
    AddKey {
        source: String,
    },
    /// Revoke a write key.
    RevokeKey {
        key: String,
    },
}

#[derive(Subcommand)]
enum ImportCommand {
    /// One customer per line; every column becomes a trait, identifier columns link the profile.
    Customers(ImportArgs),
    /// One historical event per line (type, event, user_id/anonymous_id, timestamp, properties.<name>…).
    Events(ImportArgs),
}

#[derive(Args)]
struct ImportArgs {
    file: PathBuf,
    /// Name of the source the data comes from.
    #[arg(long)]
    source: String,
    /// Where rejected lines go (default: FILE.rejects.csv).
    #[arg(long)]
    rejects: Option<PathBuf>,
}

#[derive(Subcommand)]
enum ProfileCommand {
    /// Show a profile by id.
    Show { id: i64 },
    /// Find a profile by identifier, e.g. `lookup email hans@example.ch`.
    Lookup { kind: String, value: String },
    /// The newest events of a profile.
    Timeline {
        id: i64,
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Everything stored about the person, as JSON.
    Export {
        id: i64,
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Revert a merge.
    Unmerge {
        merge_id: i64,
        #[arg(long)]
        reason: String,
    },
    /// Erase a person: every trait, identity and event; only salted hashes of the identifiers remain.
    Erase {
        id: i64,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let overrides = Overrides {
        config: cli.global.config.clone(),
        data_dir: cli.global.data_dir.clone(),
        database_url: cli.global.database_url.clone(),
        listen: match &cli.command {
            Command::Serve { listen } => *listen,
            _ => None,
        },
        log: cli.global.log.clone(),
    };
    let settings = Settings::resolve(&overrides)?;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&settings.log)
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(cli.command, settings))
}

async fn run(command: Command, settings: Settings) -> anyhow::Result<()> {
    match command {
        Command::Serve { .. } => serve(settings).await,
        Command::Demo(args) => demo::run(args, settings).await,
        Command::Token(cmd) => token(cmd, &open_store(&settings).await?).await,
        Command::Source(cmd) => source(cmd, &settings).await,
        Command::Import(cmd) => import(cmd, &settings).await,
        Command::Profile(cmd) => profile(cmd, &settings).await,
        Command::Quality(QualityCommand::Report { country, json }) => {
            quality_report(&settings, &country, json).await
        }
        Command::Quality(QualityCommand::Review(cmd)) => quality_review(&settings, cmd).await,
        Command::Quality(QualityCommand::Gate {
            channel,
            min_score,
            allow_suspicious,
            country,
        }) => quality_gate(&settings, &channel, min_score, allow_suspicious, &country).await,
        Command::Quality(QualityCommand::Dedupe {
            country,
            apply,
            auto,
        }) => quality_dedupe(&settings, &country, apply, auto).await,
        Command::Segment(cmd) => segment(cmd, &settings).await,
        Command::Recs(RecsCommand::Eval {
            seed,
            small,
            als_script,
            python,
            export,
            ablations,
        }) => {
            let mut config = if small {
                kreislauf_recs::eval::EvalConfig::small(seed)
            } else {
                kreislauf_recs::eval::EvalConfig::standard(seed)
            };
            config.als_script = als_script;
            config.python = python;
            config.export_dir = export;
            config.ablations = ablations;
            let report =
                tokio::task::spawn_blocking(move || kreislauf_recs::eval::run_evaluation(&config))
                    .await??;
            println!("{report}");
            Ok(())
        }
        Command::Bench(cmd) => bench::run(cmd, settings).await,
    }
}

/// Opens the configured backend: PostgreSQL with a URL, else the embedded store in the data folder.
pub(crate) async fn open_store(settings: &Settings) -> anyhow::Result<Arc<dyn Store>> {
    match &settings.database_url {
        Some(url) => {
            let store = PostgresStore::connect(url).await.with_context(|| {
                "cannot connect to PostgreSQL (check --database-url)".to_string()
            })?;
            Ok(Arc::new(store))
        }
        None => {
            let path = settings.data_dir.join("kreislauf.db");
            let store = SqliteStore::open(&path)
                .with_context(|| format!("cannot open the embedded store at {}", path.display()))?;
            Ok(Arc::new(store))
        }
    }
}

/// The single-writer lock: one process at a time may run the ingest writer on a store. Held while alive.
pub(crate) enum WriterLock {
    /// An OS file lock on `writer.lock` in the embedded store's folder.
    Embedded(#[allow(dead_code)] File),
    /// A PostgreSQL advisory lock on the store's schema.
    Postgres(#[allow(dead_code)] kreislauf_store_postgres::WriterLease),
}

/// Opens the configured store for writing, with its writer lock.
pub(crate) async fn open_writer(
    settings: &Settings,
) -> anyhow::Result<(Arc<dyn Store>, WriterLock)> {
    match &settings.database_url {
        Some(url) => {
            let store = PostgresStore::connect(url)
                .await
                .context("cannot connect to PostgreSQL (check --database-url)")?;
            let lease = store
                .acquire_writer_lease()
                .await
                .context("cannot become the ingest writer; stop the other process first, or do this through its HTTP API")?;
            Ok((Arc::new(store), WriterLock::Postgres(lease)))
        }
        None => {
            let lock = lock_writer(settings)?;
            Ok((open_store(settings).await?, lock))
        }
    }
}

fn lock_writer(settings: &Settings) -> anyhow::Result<WriterLock> {
    std::fs::create_dir_all(&settings.data_dir)
        .with_context(|| format!("cannot create {}", settings.data_dir.display()))?;
    let path = settings.data_dir.join("writer.lock");
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(WriterLock::Embedded(file)),
        Err(_) => bail!(
            "another kreislauf process (probably `kreislauf serve`) is writing to {}; stop it first, or do this through its HTTP API",
            settings.data_dir.display()
        ),
    }
}

pub(crate) async fn start_engine(
    settings: &Settings,
    store: Arc<dyn Store>,
) -> anyhow::Result<Engine> {
    let config = EngineConfig {
        max_queued_events: settings.max_queued_events,
        ..EngineConfig::default()
    };
    Ok(Engine::start(
        store,
        Arc::new(SystemClock),
        Arc::new(Metrics::new()),
        config,
    )
    .await?)
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let (store, _lock) = open_writer(&settings).await?;
    let engine = start_engine(&settings, store.clone()).await?;
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("cannot listen on {}", settings.listen))?;
    let addr = listener.local_addr()?;
    let stats = store.stats().await?;
    eprintln!(
        "Kreislauf {} listening on http://{addr}",
        env!("CARGO_PKG_VERSION")
    );
    match &settings.database_url {
        Some(_) => eprintln!("  store:    PostgreSQL"),
        None => eprintln!(
            "  store:    embedded SQLite in {}",
            settings.data_dir.display()
        ),
    }
    eprintln!(
        "  data:     {} events, {} profiles, {} sources",
        stats.events,
        stats.profiles,
        store.sources().await?.len()
    );
    eprintln!(
        "  ingest:   POST http://{addr}/v1/batch (Segment HTTP API, write key as Basic user)"
    );
    eprintln!("  admin:    http://{addr}/api (Bearer token: `kreislauf token create NAME`), OpenAPI at /api/openapi.json");
    let audiences = Audiences::start(engine.clone()).await?;
    let state = kreislauf_server::AppState::with_audiences(engine.clone(), audiences.clone());
    kreislauf_server::serve(listener, state, shutdown_signal()).await?;
    audiences.stop();
    engine.shutdown().await;
    eprintln!("stopped; every acknowledged event is committed");
    Ok(())
}

pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down: finishing in-flight batches");
}

async fn token(cmd: TokenCommand, store: &Arc<dyn Store>) -> anyhow::Result<()> {
    match cmd {
        TokenCommand::Create { name } => {
            let secret = kreislauf_engine::ingest::random_secret("kl_");
            let record = store
                .create_token(
                    &name,
                    &kreislauf_engine::ingest::token_hash(&secret),
                    chrono::Utc::now(),
                )
                .await?;
            eprintln!(
                "created token {} ({}); it is shown only now:",
                record.id, record.name
            );
            println!("{secret}");
        }
        TokenCommand::List => {
            for t in store.tokens().await? {
                let state = t
                    .revoked_at
                    .map(|r| format!("revoked {r}"))
                    .unwrap_or_else(|| "active".into());
                println!(
                    "{:>4}  {:<20} created {}  {state}",
                    t.id, t.name, t.created_at
                );
            }
        }
        TokenCommand::Revoke { id } => {
            store.revoke_token(id, chrono::Utc::now()).await?;
            eprintln!("revoked token {id}");
        }
    }
    Ok(())
}

async fn source(cmd: SourceCommand, settings: &Settings) -> anyhow::Result<()> {
    let store = open_store(settings).await?;
    let now = chrono::Utc::now();
    match cmd {
        SourceCommand::Create {
            name,
            brand,
            channel,
            origins,
            country,
        } => {
            if let Some(c) = &country {
                if kreislauf_quality::Country::parse(c).is_none() {
                    bail!("--country {c:?} is not a country Kreislauf knows (CH, DE, AT, LI, … as ISO 3166 codes)");
                }
            }
            let created = store
                .create_source(NewSource {
                    name,
                    brand,
                    channel,
                    identity_mapping: kreislauf_core::IdentityMapping {
                        default_country: country.map(|c| c.to_uppercase()),
                        ..Default::default()
                    },
                    allowed_origins: origins,
                })
                .await?;
            let key = store
                .add_write_key(
                    created.id,
                    &kreislauf_engine::ingest::random_secret("wk_"),
                    now,
                )
                .await?;
            eprintln!(
                "created source {} ({}): write key",
                created.id, created.name
            );
            println!("{}", key.key);
        }
        SourceCommand::List => {
            let keys = store.write_keys().await?;
            for s in store.sources().await? {
                let active: Vec<&str> = keys
                    .iter()
                    .filter(|k| k.source_id == s.id && k.revoked_at.is_none())
                    .map(|k| k.key.as_str())
                    .collect();
                println!(
                    "{:>4}  {:<24} brand={:<16} channel={:<12} keys={}",
                    s.id,
                    s.name,
                    s.brand,
                    s.channel,
                    active.join(",")
                );
            }
        }
        SourceCommand::AddKey { source } => {
            let found = store
                .sources()
                .await?
                .into_iter()
                .find(|s| s.name == source || s.id.to_string() == source);
            let Some(found) = found else {
                bail!("no source named {source:?} (see `kreislauf source list`)")
            };
            println!(
                "{}",
                store
                    .add_write_key(
                        found.id,
                        &kreislauf_engine::ingest::random_secret("wk_"),
                        now
                    )
                    .await?
                    .key
            );
        }
        SourceCommand::RevokeKey { key } => {
            store.revoke_write_key(&key, now).await?;
            eprintln!("revoked");
        }
    }
    Ok(())
}

async fn segment(cmd: SegmentCommand, settings: &Settings) -> anyhow::Result<()> {
    let (store, _lock) = open_writer(settings).await?;
    let engine = start_engine(settings, store).await?;
    let audiences = Audiences::start(engine.clone()).await?;
    let result = segment_command(cmd, &audiences).await;
    audiences.stop();
    engine.shutdown().await;
    result
}

async fn segment_command(cmd: SegmentCommand, audiences: &Audiences) -> anyhow::Result<()> {
    let read = |file: &Path| {
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))
    };
    match cmd {
        SegmentCommand::Apply { file } => {
            let text = read(&file)?;
            let report = audiences
                .apply(&text, "cli")
                .await
                .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            eprintln!("recomputing profiles …");
            audiences.catch_up().await?;
            for d in &report.definitions {
                println!(
                    "{:<15} {:<32} v{:<4} {}",
                    d.kind, d.name, d.version, d.outcome
                );
            }
        }
        SegmentCommand::List => {
            println!("{:<32} {:>10} {:>8}  name", "id", "members", "version");
            for s in audiences.segments().await? {
                println!(
                    "{:<32} {:>10} {:>8}  {}",
                    s.id, s.members, s.version, s.name
                );
            }
        }
        SegmentCommand::Show { id } => {
            println!(
                "{}",
                serde_json::to_string_pretty(&audiences.segment(&id).await?)?
            );
        }
        SegmentCommand::Preview { file, scan, sample } => {
            let text = read(&file)?;
            let preview = audiences
                .preview(&text, scan, sample)
                .await
                .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            println!(
                "{} {} of {} profiles (matched {} of {} evaluated); sample: {:?}",
                if preview.exact { "exactly" } else { "about" },
                preview.estimated_size,
                preview.profiles,
                preview.matched,
                preview.scanned,
                preview.sample
            );
        }
        SegmentCommand::Export { id, traits, out } => {
            let traits: Vec<String> = traits
                .split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(String::from)
                .collect();
            let total = audiences.size(&id).await?;
            let sink: Box<dyn std::io::Write> = match &out {
                Some(path) => Box::new(BufWriter::new(
                    File::create(path)
                        .with_context(|| format!("cannot create {}", path.display()))?,
                )),
                None => Box::new(BufWriter::new(std::io::stdout().lock())),
            };
            let mut writer = csv::Writer::from_writer(sink);
            let mut header = vec!["profile_id".to_string()];
            header.extend(traits.iter().cloned());
            writer.write_record(&header)?;
            let bar = indicatif::ProgressBar::new(total);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} members",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            let mut after = 0;
            loop {
                let (rows, next) = audiences.export_page(&id, &traits, after, 1000).await?;
                for row in &rows {
                    writer.write_record(row)?;
                }
                bar.inc(rows.len() as u64);
                match next {
                    Some(n) => after = n,
                    None => break,
                }
            }
            writer.flush()?;
            bar.finish_and_clear();
            if let Some(path) = out {
                eprintln!("{} members written to {}", bar.position(), path.display());
            }
        }
    }
    Ok(())
}

async fn import(cmd: ImportCommand, settings: &Settings) -> anyhow::Result<()> {
    let (kind, args) = match cmd {
        ImportCommand::Customers(a) => (ImportKind::Customers, a),
        ImportCommand::Events(a) => (ImportKind::Events, a),
    };
    let (store, _lock) = open_writer(settings).await?;
    let engine = start_engine(settings, store).await?;
    let Some(source) = engine.source_by_name(&args.source) else {
        bail!("no source named {:?}; create it with `kreislauf source create {} --brand B --channel C`", args.source, args.source)
    };
    let input =
        File::open(&args.file).with_context(|| format!("cannot open {}", args.file.display()))?;
    let size = input.metadata().map(|m| m.len()).unwrap_or(0);
    let rejects_path = args
        .rejects
        .clone()
        .unwrap_or_else(|| rejects_path_for(&args.file));
    let mut rejects = BufWriter::new(
        File::create(&rejects_path)
            .with_context(|| format!("cannot create {}", rejects_path.display()))?,
    );
    let bar = indicatif::ProgressBar::new(size);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let counting = CountingReader {
        inner: BufReader::with_capacity(1 << 20, input),
        bar: bar.clone(),
    };
    let summary = import_csv(
        &engine,
        source,
        kind,
        counting,
        &mut rejects,
        &mut |lines| bar.set_message(format!("{lines} lines")),
    )
    .await;
    bar.finish_and_clear();
    engine.shutdown().await;
    let summary = summary?;
    eprintln!(
        "imported {}: {} lines, {} stored, {} already there, {} rejected, {} suppressed (erased persons) in {:.1}s",
        args.file.display(),
        summary.lines,
        summary.accepted,
        summary.duplicates,
        summary.rejected,
        summary.suppressed,
        summary.elapsed_ms as f64 / 1000.0
    );
    if summary.rejected > 0 {
        eprintln!(
            "rejected lines with line numbers and reasons: {}",
            rejects_path.display()
        );
    }
    Ok(())
}

fn rejects_path_for(file: &Path) -> PathBuf {
    let mut name = file
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".rejects.csv");
    file.with_file_name(name)
}

/// Advances the progress bar by the bytes read.
struct CountingReader<R> {
    inner: R,
    bar: indicatif::ProgressBar,
}

impl<R: std::io::Read> std::io::Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bar.inc(n as u64);
        Ok(n)
    }
}

async fn profile(cmd: ProfileCommand, settings: &Settings) -> anyhow::Result<()> {
    let print = |v: &dyn erased::Json| -> anyhow::Result<()> {
        println!("{}", v.pretty()?);
        Ok(())
    };
    match cmd {
        ProfileCommand::Show { id } => {
            let store = open_store(settings).await?;
            let root = store
                .root_of(id)
                .await?
                .with_context(|| format!("no profile {id}"))?;
            print(
                &store
                    .profile(root)
                    .await?
                    .with_context(|| format!("no profile {id}"))?,
            )?;
        }
        ProfileCommand::Lookup { kind, value } => {
            let store = open_store(settings).await?;
            let kind: IdentifierKind = kind.parse()?;
            let id = Identifier::new(kind, &value)
                .with_context(|| format!("{value:?} is not a valid {kind}"))?;
            let root = store
                .profile_by_identifier(&id)
                .await?
                .with_context(|| format!("no profile with {id}"))?;
            print(
                &store
                    .profile(root)
                    .await?
                    .with_context(|| format!("no profile {root}"))?,
            )?;
        }
        ProfileCommand::Timeline { id, limit } => {
            let store = open_store(settings).await?;
            let root = store
                .root_of(id)
                .await?
                .with_context(|| format!("no profile {id}"))?;
            for e in store.timeline(root, None, limit).await? {
                println!(
                    "{}  {:<9} {:<28} source={} {}",
                    e.timestamp,
                    e.kind,
                    e.name.as_deref().unwrap_or("-"),
                    e.source_id,
                    e.message_id
                );
            }
        }
        ProfileCommand::Export { id, out } => {
            let store = open_store(settings).await?;
            let root = store
                .root_of(id)
                .await?
                .with_context(|| format!("no profile {id}"))?;
            let export = store
                .export(root)
                .await?
                .with_context(|| format!("no profile {id}"))?;
            store
                .audit(kreislauf_store::AuditEntry {
                    at: chrono::Utc::now(),
                    actor: "cli".into(),
                    action: "export".into(),
                    subject: format!("profile {root}"),
                    detail: serde_json::json!({}),
                })
                .await?;
            let text = serde_json::to_string_pretty(&export)?;
            match out {
                Some(path) => std::fs::write(&path, text)
                    .with_context(|| format!("cannot write {}", path.display()))?,
                None => println!("{text}"),
            }
        }
        ProfileCommand::Unmerge { merge_id, reason } => {
            let (store, _lock) = open_writer(settings).await?;
            let engine = start_engine(settings, store).await?;
            let record = engine.unmerge(merge_id, &reason, "cli").await;
            engine.shutdown().await;
            let record = record?;
            eprintln!(
                "merge {merge_id} reverted: profiles {} and {} are separate again",
                record.winner, record.loser
            );
        }
        ProfileCommand::Erase { id, yes } => {
            if !yes {
                bail!("erasing profile {id} cannot be undone; run again with --yes to confirm");
            }
            let (store, _lock) = open_writer(settings).await?;
            let engine = start_engine(settings, store).await?;
            let root = engine
                .store()
                .root_of(id)
                .await?
                .with_context(|| format!("no profile {id}"))?;
            let report = engine.erase(root, "cli").await;
            engine.shutdown().await;
            let report = report?;
            eprintln!(
                "erased profile {root}: {} profiles, {} identities, {} events, {} traits, {} merges removed",
                report.profiles, report.identities, report.events, report.traits, report.merges
            );
        }
    }
    Ok(())
}

async fn quality_gate(
    settings: &Settings,
    channel: &str,
    min_score: u8,
    allow_suspicious: bool,
    country: &str,
) -> anyhow::Result<()> {
    use kreislauf_engine::quality::{gate_counts, CampaignGate, Channel};
    let channel = Channel::parse(channel)
        .with_context(|| format!("unknown channel {channel:?} (email, sms or post)"))?;
    anyhow::ensure!(min_score <= 100, "--min-score must be between 0 and 100");
    let country = kreislauf_quality::Country::parse(country)
        .with_context(|| format!("unknown country {country:?}"))?;
    let store = open_store(settings).await?;
    let gate = CampaignGate {
        channel,
        min_score,
        allow_suspicious,
    };
    let counts = gate_counts(
        store.as_ref(),
        &gate,
        country,
        chrono::Utc::now().date_naive(),
    )
    .await?;
    println!(
        "{} of {} profiles may be contacted by {:?}; {} held back:",
        counts.allowed, counts.profiles, channel, counts.blocked
    );
    for (reason, n) in &counts.by_reason {
        let examples: Vec<String> = counts
            .examples
            .get(reason)
            .into_iter()
            .flatten()
            .map(|(id, d)| format!("#{id} {d}"))
            .collect();
        println!("  {reason:<20} {n:>8}   e.g. {}", examples.join("; "));
    }
    Ok(())
}

async fn quality_review(settings: &Settings, cmd: ReviewCommand) -> anyhow::Result<()> {
    match cmd {
        ReviewCommand::List { status } => {
            let store = open_store(settings).await?;
            for r in store.reviews(Some(&status), 1000).await? {
                let evidence: Vec<String> = r
                    .explanation
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|c| !c["level"].is_null())
                    .map(|c| {
                        format!(
                            "{} {} {:+.1}",
                            c["field"].as_str().unwrap_or(""),
                            c["level"].as_str().unwrap_or(""),
                            c["log2_bayes_factor"].as_f64().unwrap_or(0.0)
                        )
                    })
                    .collect();
                println!(
                    "{:>6}  profiles {} ~ {}  p={:.3}  {}  {}",
                    r.id,
                    r.profile_a,
                    r.profile_b,
                    r.probability,
                    r.status,
                    evidence.join(", ")
                );
            }
        }
        ReviewCommand::Accept { id } | ReviewCommand::Reject { id } => {
            let accept = matches!(cmd, ReviewCommand::Accept { .. });
            let (store, _lock) = open_writer(settings).await?;
            let engine = start_engine(settings, store).await?;
            let result = if accept {
                kreislauf_engine::quality::accept_review(&engine, id, "cli").await
            } else {
                kreislauf_engine::quality::reject_review(&engine, id, "cli").await
            };
            engine.shutdown().await;
            let review = result?;
            match review.merge_id {
                Some(merge) => eprintln!(
                    "review {id} accepted: profiles {} and {} merged (merge {merge}, reversible)",
                    review.profile_a, review.profile_b
                ),
                None => eprintln!(
                    "review {id} {}: profiles {} and {} stay separate",
                    review.status, review.profile_a, review.profile_b
                ),
            }
        }
    }
    Ok(())
}

async fn quality_dedupe(
    settings: &Settings,
    country: &str,
    apply: bool,
    auto: f64,
) -> anyhow::Result<()> {
    let country = kreislauf_quality::Country::parse(country)
        .with_context(|| format!("unknown country {country:?}"))?;
    anyhow::ensure!(
        (0.5..=1.0).contains(&auto),
        "--auto must be between 0.5 and 1.0, got {auto}"
    );
    let (store, _lock) = open_writer(settings).await?;
    let engine = start_engine(settings, store).await?;
    let mut options =
        kreislauf_engine::quality::ReportOptions::new(country, chrono::Utc::now().date_naive());
    options.auto_merge_threshold = auto;
    let outcome = kreislauf_engine::quality::dedupe(&engine, &options, apply, "cli").await;
    engine.shutdown().await;
    let outcome = outcome?;
    if apply {
        eprintln!(
            "{} likely duplicate pairs (p ≥ {auto}): {} merged (merge ids {:?}; revert with `kreislauf profile unmerge ID --reason …`), {} skipped (already one profile, or reverted before)",
            outcome.likely,
            outcome.merged.len(),
            outcome.merged,
            outcome.skipped
        );
    } else {
        eprintln!("{} likely duplicate pairs (p ≥ {auto}) would be merged; run again with --apply to merge them", outcome.likely);
    }
    eprintln!(
        "{} pairs need a person's review ({} newly queued; `kreislauf quality review list`), {} rejected before and left alone:",
        outcome.to_review.len(),
        outcome.queued,
        outcome.rejected_before
    );
    for pair in outcome.to_review.iter().take(20) {
        println!(
            "  profiles {} ~ {}  p={:.3}",
            pair.profiles.0, pair.profiles.1, pair.probability
        );
    }
    Ok(())
}

async fn quality_report(settings: &Settings, country: &str, json: bool) -> anyhow::Result<()> {
    use kreislauf_engine::quality::{report, ReportOptions};
    let country = kreislauf_quality::Country::parse(country)
        .with_context(|| format!("unknown country {country:?}"))?;
    let store = open_store(settings).await?;
    let r = report(
        store.as_ref(),
        &ReportOptions::new(country, chrono::Utc::now().date_naive()),
    )
    .await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(());
    }
    let pct = |x: f64| format!("{:.1}%", x * 100.0);
    println!(
        "Data quality — {} profiles, average score {:.0}/100 (80–100: {}, 50–79: {}, below 50: {})\n",
        r.profiles, r.average_score, r.score_bands[0], r.score_bands[1], r.score_bands[2]
    );
    if let Some(t) = &r.trend {
        let moved: Vec<String> = t
            .fields
            .iter()
            .filter(|(_, f)| f.validity.abs() >= 0.001 || f.completeness.abs() >= 0.001)
            .map(|(name, f)| {
                format!(
                    "{name} validity {:+.1} pts, completeness {:+.1} pts",
                    f.validity * 100.0,
                    f.completeness * 100.0
                )
            })
            .collect();
        println!(
            "Since the last report ({}): {:+} profiles, average score {:+.1}, likely duplicates {:+}{}\n",
            t.since.format("%Y-%m-%d %H:%M"),
            t.profiles,
            t.average_score,
            t.likely_duplicates,
            if moved.is_empty() {
                String::new()
            } else {
                format!("; {}", moved.join("; "))
            }
        );
    }
    println!(
        "{:<12} {:>8} {:>8} {:>10} {:>10} {:>8} {:>8} {:>12} {:>9}",
        "field",
        "valid",
        "normal.",
        "suspicious",
        "invalid",
        "missing",
        "",
        "completeness",
        "validity"
    );
    for (field, c) in &r.fields {
        println!(
            "{:<12} {:>8} {:>8} {:>10} {:>10} {:>8} {:>8} {:>12} {:>9}",
            field,
            c.valid,
            c.normalised,
            c.suspicious,
            c.invalid,
            c.missing,
            "",
            pct(c.completeness()),
            pct(c.validity())
        );
    }
    println!("\nBy source (validity of the values each source set):");
    for (source, fields) in &r.sources {
        let cells: Vec<String> = fields
            .iter()
            .map(|(f, c)| format!("{f} {}", pct(c.validity())))
            .collect();
        println!("  {source:<20} {}", cells.join(", "));
    }
    println!("\nWorst problems:");
    for (i, p) in r.problems.iter().enumerate() {
        let examples: Vec<String> = p
            .examples
            .iter()
            .map(|e| {
                let fix = e
                    .suggestion
                    .as_deref()
                    .map(|s| format!(" → {s}"))
                    .unwrap_or_default();
                format!(
                    "#{} {:?}{fix}",
                    e.profile_id,
                    e.raw.as_deref().unwrap_or("")
                )
            })
            .collect();
        println!(
            "  {:>2}. {} {}: {} — {} profiles, e.g. {}",
            i + 1,
            p.field,
            p.status,
            p.reason,
            p.count,
            examples.join("; ")
        );
    }
    let d = &r.duplicates;
    println!(
        "\nLikely duplicates: {} pairs ≥ {:.2} (auto-merge), {} pairs {:.2}–{:.2} (review), from {} candidate pairs",
        d.likely, d.auto_merge_threshold, d.to_review, d.review_threshold, d.auto_merge_threshold, d.candidate_pairs
    );
    for pair in &d.examples {
        let evidence: Vec<String> = pair
            .explanation
            .iter()
            .filter(|c| c.level.is_some())
            .map(|c| {
                format!(
                    "{} {} {:+.1}",
                    c.field,
                    c.level.as_deref().unwrap_or(""),
                    c.log2_bayes_factor
                )
            })
            .collect();
        println!(
            "  profiles {} ~ {}  p={:.4}: {}",
            pair.profiles.0,
            pair.profiles.1,
            pair.probability,
            evidence.join(", ")
        );
    }
    Ok(())
}

mod erased {
    //! Pretty-printing any serialisable value through one `&dyn` entry point.
    pub trait Json {
        fn pretty(&self) -> serde_json::Result<String>;
    }
    impl<T: serde::Serialize> Json for T {
        fn pretty(&self) -> serde_json::Result<String> {
            serde_json::to_string_pretty(self)
        }
    }
}
