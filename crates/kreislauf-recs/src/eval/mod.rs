//! Offline evaluation: generate → split by time → evaluate strategies side
//! by side against a most-popular baseline and (optionally) an external
//! implicit-ALS baseline run on the *same* split.
//!
//! Protocol (mirrored exactly by `scripts/als_baseline.py`):
//!
//! * interactions before the split time are **train**, at/after it **test**;
//! * a profile is evaluated when it has at least one train interaction and
//!   a non-empty relevant set; `--max-profiles`/`max_profiles` keeps the
//!   first N such profiles in lexicographic order of their id;
//! * relevant = distinct test items of the profile that are not in its
//!   train history and are available (recommendable);
//! * every recommender returns k items, never items from the profile's
//!   train history and never unavailable ones;
//! * metrics as defined in [`metrics`]; coverage denominator = available
//!   items of all catalogs;
//! * most-popular = train interaction count per item (all kinds,
//!   unweighted), ties by the `catalog:id` string ascending.
//!
//! The split is exported as `train.csv` / `test.csv` (`profile,item,kind,
//! timestamp` with `item` = `catalog:id`, timestamp in unix seconds) plus
//! `items.csv` (`item,available`).

pub mod generator;
pub mod metrics;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use generator::{Generator, GeneratorConfig, TruthPair};

use crate::catalog::{CatalogSet, ItemKey};
use crate::error::RecsError;
use crate::interactions::Interaction;
use crate::model::{Model, ModelBuilder, ModelConfig};
use crate::recommend::{BlendWeights, HistoryEvent, Request, Strategy};

/// A time-based split.
#[derive(Clone, Debug)]
pub struct Split {
    /// Interactions before `split_time`.
    pub train: Vec<Interaction>,
    /// Interactions at or after `split_time`.
    pub test: Vec<Interaction>,
    /// The boundary.
    pub split_time: DateTime<Utc>,
}

/// Splits interactions at a time (train < T ≤ test), keeping order.
pub fn split_by_time(interactions: &[Interaction], split_time: DateTime<Utc>) -> Split {
    let (train, test): (Vec<_>, Vec<_>) = interactions
        .iter()
        .cloned()
        .partition(|interaction| interaction.timestamp < split_time);
    Split {
        train,
        test,
        split_time,
    }
}

/// Paths of an exported split.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SplitFiles {
    /// `train.csv`.
    pub train: PathBuf,
    /// `test.csv`.
    pub test: PathBuf,
    /// `items.csv`.
    pub items: PathBuf,
}

fn write_interactions(path: &Path, interactions: &[Interaction]) -> Result<(), RecsError> {
    let file = File::create(path).map_err(|error| RecsError::io(path, error))?;
    let mut writer = BufWriter::new(file);
    let io = |error| RecsError::io(path, error);
    writeln!(writer, "profile,item,kind,timestamp").map_err(io)?;
    for interaction in interactions {
        writeln!(
            writer,
            "{},{},{},{}",
            csv_field(&interaction.profile),
            csv_field(&interaction.item.to_string()),
            interaction.kind,
            interaction.timestamp.timestamp()
        )
        .map_err(io)?;
    }
    writer.flush().map_err(io)
}

fn csv_field(value: &str) -> String {
    if value.contains([',', '"', '\n']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_string()
    }
}

/// Writes `train.csv`, `test.csv` and `items.csv` into `dir`.
pub fn write_split_csv(
    split: &Split,
    catalogs: &CatalogSet,
    dir: &Path,
) -> Result<SplitFiles, RecsError> {
    std::fs::create_dir_all(dir).map_err(|error| RecsError::io(dir, error))?;
    let files = SplitFiles {
        train: dir.join("train.csv"),
        test: dir.join("test.csv"),
        items: dir.join("items.csv"),
    };
    write_interactions(&files.train, &split.train)?;
    write_interactions(&files.test, &split.test)?;
    let file = File::create(&files.items).map_err(|error| RecsError::io(&files.items, error))?;
    let mut writer = BufWriter::new(file);
    let io = |error| RecsError::io(&files.items, error);
    writeln!(writer, "item,available").map_err(io)?;
    for catalog in catalogs.catalogs() {
        for item in catalog.items() {
            let key = ItemKey::new(catalog.name(), item.id.as_str());
            writeln!(writer, "{},{}", csv_field(&key.to_string()), item.available).map_err(io)?;
        }
    }
    writer.flush().map_err(io)?;
    Ok(files)
}

/// One line of the report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalRow {
    /// Recommender name.
    pub name: String,
    /// Mean precision@k.
    pub precision: f64,
    /// Mean recall@k.
    pub recall: f64,
    /// Mean NDCG@k.
    pub ndcg: f64,
    /// Catalog coverage.
    pub coverage: f64,
    /// Profiles evaluated.
    pub profiles: usize,
}

/// The evaluation outcome; `Display` renders a Markdown table.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EvalReport {
    /// Cut-off.
    pub k: usize,
    /// Catalog the task was restricted to.
    pub target_catalog: Option<String>,
    /// Generator seed.
    pub seed: u64,
    /// Items in all catalogs.
    pub items: usize,
    /// Available items (coverage denominator).
    pub recommendable_items: usize,
    /// Train interactions.
    pub train_interactions: usize,
    /// Test interactions.
    pub test_interactions: usize,
    /// Profiles evaluated.
    pub profiles_evaluated: usize,
    /// Split time.
    pub split_time: DateTime<Utc>,
    /// Rows, Kreislauf strategies first.
    pub rows: Vec<EvalRow>,
    /// Model build time in milliseconds.
    pub build_millis: u128,
    /// Remarks (e.g. the external baseline's parameters or failure).
    pub notes: Vec<String>,
}

impl EvalReport {
    /// Row by name.
    pub fn row(&self, name: &str) -> Option<&EvalRow> {
        self.rows.iter().find(|row| row.name == name)
    }
}

impl fmt::Display for EvalReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let k = self.k;
        writeln!(
            f,
            "Offline evaluation: {} (seed {}, split {}, {} items / {} recommendable, {} train / {} test interactions, {} profiles)\n",
            self.target_catalog
                .as_deref()
                .map_or_else(|| "next items, all catalogs".to_string(), |catalog| format!("next items in catalog \"{catalog}\"")),
            self.seed,
            self.split_time.format("%Y-%m-%d"),
            self.items,
            self.recommendable_items,
            self.train_interactions,
            self.test_interactions,
            self.profiles_evaluated
        )?;
        writeln!(
            f,
            "| recommender | P@{k} | R@{k} | NDCG@{k} | coverage | profiles |"
        )?;
        writeln!(f, "|---|---:|---:|---:|---:|---:|")?;
        for row in &self.rows {
            writeln!(
                f,
                "| {} | {:.4} | {:.4} | {:.4} | {:.3} | {} |",
                row.name, row.precision, row.recall, row.ndcg, row.coverage, row.profiles
            )?;
        }
        for note in &self.notes {
            writeln!(f, "\n{note}")?;
        }
        Ok(())
    }
}

/// What to evaluate.
#[derive(Clone, Debug)]
pub struct EvalConfig {
    /// The synthetic world.
    pub generator: GeneratorConfig,
    /// Cut-off k.
    pub k: usize,
    /// Model parameters.
    pub model: ModelConfig,
    /// Kreislauf strategies to evaluate.
    pub strategies: Vec<Strategy>,
    /// Where to write the split CSVs (a temp dir when the script runs
    /// and this is `None`).
    pub export_dir: Option<PathBuf>,
    /// `scripts/als_baseline.py` to run on the exported split.
    pub als_script: Option<PathBuf>,
    /// Python interpreter.
    pub python: String,
    /// Evaluate at most this many profiles (first by id).
    pub max_profiles: Option<usize>,
    /// Also evaluate the blend with each component switched off, to show
    /// what pairing rules, co-occurrence and similarity each contribute.
    pub ablations: bool,
    /// Restrict the task to one catalog (e.g. `recipes`: "which content
    /// will this customer engage with next?"); `None` = all catalogs.
    pub target_catalog: Option<String>,
}

impl EvalConfig {
    /// Standard evaluation world, all strategies, k = 10.
    pub fn standard(seed: u64) -> Self {
        Self {
            generator: GeneratorConfig::standard(seed),
            k: 10,
            model: ModelConfig::standard(),
            strategies: Strategy::ALL.to_vec(),
            export_dir: None,
            als_script: None,
            python: "python3".into(),
            max_profiles: None,
            target_catalog: None,
            ablations: true,
        }
    }

    /// Small world for tests.
    pub fn small(seed: u64) -> Self {
        Self {
            generator: GeneratorConfig::small(seed),
            ..Self::standard(seed)
        }
    }
}

/// Per-profile evaluation input.
struct Case {
    history: Vec<HistoryEvent>,
    seen: HashSet<ItemKey>,
    relevant: HashSet<ItemKey>,
}

fn build_cases(
    split: &Split,
    catalogs: &CatalogSet,
    max_profiles: Option<usize>,
    target: Option<&str>,
) -> BTreeMap<String, Case> {
    let mut cases: BTreeMap<String, Case> = BTreeMap::new();
    for interaction in &split.train {
        let case = cases
            .entry(interaction.profile.clone())
            .or_insert_with(|| Case {
                history: Vec::new(),
                seen: HashSet::new(),
                relevant: HashSet::new(),
            });
        case.history.push(HistoryEvent {
            item: interaction.item.clone(),
            kind: interaction.kind,
            timestamp: interaction.timestamp,
        });
        case.seen.insert(interaction.item.clone());
    }
    for interaction in &split.test {
        let Some(case) = cases.get_mut(&interaction.profile) else {
            continue;
        };
        let available = catalogs
            .item(&interaction.item)
            .is_some_and(|item| item.available);
        let in_target = target.is_none_or(|catalog| interaction.item.catalog == catalog);
        if available && in_target && !case.seen.contains(&interaction.item) {
            case.relevant.insert(interaction.item.clone());
        }
    }
    cases.retain(|_, case| !case.relevant.is_empty());
    if let Some(limit) = max_profiles {
        while cases.len() > limit {
            cases.pop_last();
        }
    }
    cases
}

#[derive(Default)]
struct Accumulator {
    precision: f64,
    recall: f64,
    ndcg: f64,
    profiles: usize,
    distinct: HashSet<ItemKey>,
}

impl Accumulator {
    fn add(&mut self, recommended: Vec<ItemKey>, relevant: &HashSet<ItemKey>, k: usize) {
        self.precision += metrics::precision_at_k(&recommended, relevant, k);
        self.recall += metrics::recall_at_k(&recommended, relevant, k);
        self.ndcg += metrics::ndcg_at_k(&recommended, relevant, k);
        self.profiles += 1;
        self.distinct.extend(recommended.into_iter().take(k));
    }

    fn row(self, name: &str, recommendable: usize) -> EvalRow {
        let count = self.profiles.max(1) as f64;
        EvalRow {
            name: name.to_string(),
            precision: self.precision / count,
            recall: self.recall / count,
            ndcg: self.ndcg / count,
            coverage: metrics::coverage(self.distinct.len(), recommendable),
            profiles: self.profiles,
        }
    }
}

fn most_popular_row(
    split: &Split,
    cases: &BTreeMap<String, Case>,
    catalogs: &CatalogSet,
    target: Option<&str>,
    k: usize,
    recommendable: usize,
) -> EvalRow {
    let mut counts: HashMap<&ItemKey, usize> = HashMap::new();
    for interaction in &split.train {
        *counts.entry(&interaction.item).or_insert(0) += 1;
    }
    let mut ranking: Vec<(usize, String, &ItemKey)> = counts
        .into_iter()
        .filter(|(key, _)| catalogs.item(key).is_some_and(|item| item.available))
        .filter(|(key, _)| target.is_none_or(|catalog| key.catalog == catalog))
        .map(|(key, count)| (count, key.to_string(), key))
        .collect();
    ranking.sort_by(|left, right| right.0.cmp(&left.0).then_with(|| left.1.cmp(&right.1)));
    let mut accumulator = Accumulator::default();
    for case in cases.values() {
        let recommended: Vec<ItemKey> = ranking
            .iter()
            .filter(|(_, _, key)| !case.seen.contains(*key))
            .take(k)
            .map(|(_, _, key)| (*key).clone())
            .collect();
        accumulator.add(recommended, &case.relevant, k);
    }
    accumulator.row("most-popular", recommendable)
}

/// What every evaluated recommender is asked.
struct Task<'a> {
    cases: &'a BTreeMap<String, Case>,
    target: Option<&'a str>,
    k: usize,
    split_time: DateTime<Utc>,
    recommendable: usize,
}

fn strategy_row(
    model: &Model,
    task: &Task<'_>,
    strategy: Strategy,
    blend: Option<(&str, BlendWeights)>,
) -> Result<EvalRow, RecsError> {
    let Task {
        cases,
        target,
        k,
        split_time,
        recommendable,
    } = *task;
    let mut accumulator = Accumulator::default();
    for case in cases.values() {
        let mut request = Request::for_profile(case.history.clone(), strategy, k);
        request.exclude_seen = true;
        request.now = Some(split_time);
        request.target_catalog = target.map(str::to_string);
        request.blend = blend.map(|(_, weights)| weights);
        let recommended: Vec<ItemKey> = model
            .recommend(&request)?
            .into_iter()
            .map(|rec| rec.item)
            .collect();
        accumulator.add(recommended, &case.relevant, k);
    }
    let name = match blend {
        Some((label, _)) => format!("kreislauf {strategy} {label}"),
        None => format!("kreislauf {strategy}"),
    };
    Ok(accumulator.row(&name, recommendable))
}

#[derive(Deserialize)]
struct ScriptOutput {
    rows: Vec<EvalRow>,
    #[serde(default)]
    params: serde_json::Value,
}

/// Runs the external baseline on an exported split and reads its rows.
pub fn run_baseline_script(
    python: &str,
    script: &Path,
    files: &SplitFiles,
    k: usize,
    max_profiles: Option<usize>,
    target: Option<&str>,
    seed: u64,
) -> Result<(Vec<EvalRow>, serde_json::Value), RecsError> {
    let mut command = Command::new(python);
    command
        .arg(script)
        .arg("--train")
        .arg(&files.train)
        .arg("--test")
        .arg(&files.test)
        .arg("--items")
        .arg(&files.items)
        .arg("--k")
        .arg(k.to_string())
        .arg("--seed")
        .arg(seed.to_string());
    if let Some(limit) = max_profiles {
        command.arg("--max-profiles").arg(limit.to_string());
    }
    if let Some(catalog) = target {
        command.arg("--catalog").arg(catalog);
    }
    let failure = |message: String| RecsError::Script {
        script: script.to_path_buf(),
        message,
    };
    let output = command
        .output()
        .map_err(|error| failure(format!("cannot start {python}: {error}")))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: String = stderr
            .lines()
            .rev()
            .take(8)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n");
        return Err(failure(format!("exit status {}: {tail}", output.status)));
    }
    let parsed: ScriptOutput = serde_json::from_slice(&output.stdout)
        .map_err(|error| failure(format!("unreadable json output: {error}")))?;
    Ok((parsed.rows, parsed.params))
}

/// Generates the world, splits it, builds the model on train, evaluates
/// all configured strategies and the most-popular baseline, optionally
/// exports the split and runs the ALS script.
pub fn run_evaluation(config: &EvalConfig) -> Result<EvalReport, RecsError> {
    let generator = Generator::new(config.generator.clone());
    let interactions = generator.interactions();
    let split = split_by_time(&interactions, config.generator.split_time());
    let catalogs = generator.catalogs();
    let target = config.target_catalog.as_deref();
    if let Some(name) = target {
        if catalogs.get(name).is_none() {
            return Err(RecsError::UnknownCatalog(name.to_string()));
        }
    }
    let recommendable = catalogs
        .catalogs()
        .filter(|catalog| target.is_none_or(|name| catalog.name() == name))
        .map(|catalog| catalog.items().filter(|item| item.available).count())
        .sum();

    let started = Instant::now();
    let mut builder = ModelBuilder::new(catalogs.clone())
        .with_config(config.model)
        .with_rules(generator.rules().clone())?
        .with_reference_time(split.split_time);
    builder.add_interactions(&split.train);
    let model = builder.build();
    let build_millis = started.elapsed().as_millis();

    let cases = build_cases(&split, catalogs, config.max_profiles, target);
    let task = Task {
        cases: &cases,
        target,
        k: config.k,
        split_time: split.split_time,
        recommendable,
    };
    let mut rows = Vec::new();
    for strategy in &config.strategies {
        rows.push(strategy_row(&model, &task, *strategy, None)?);
    }
    if config.ablations && config.strategies.contains(&Strategy::Blend) {
        let full = config.model.recommend.blend;
        let without_pairing = BlendWeights {
            pairing: 0.0,
            ..full
        };
        let without_cooc = BlendWeights {
            cooccurrence: 0.0,
            ..full
        };
        let without_similarity = BlendWeights {
            similarity: 0.0,
            ..full
        };
        for blend in [
            ("without pairing", without_pairing),
            ("without co-occurrence", without_cooc),
            ("without similarity", without_similarity),
        ] {
            rows.push(strategy_row(&model, &task, Strategy::Blend, Some(blend))?);
        }
    }
    rows.push(most_popular_row(
        &split,
        &cases,
        catalogs,
        target,
        config.k,
        recommendable,
    ));

    let mut notes = Vec::new();
    let export_dir = match (&config.export_dir, &config.als_script) {
        (Some(dir), _) => Some(dir.clone()),
        (None, Some(_)) => Some(std::env::temp_dir().join(format!(
            "kreislauf-recs-eval-{}-{}",
            config.generator.seed,
            std::process::id()
        ))),
        (None, None) => None,
    };
    if let Some(dir) = export_dir {
        let files = write_split_csv(&split, catalogs, &dir)?;
        notes.push(format!("Split exported to {}.", dir.display()));
        if let Some(script) = &config.als_script {
            let (script_rows, params) = run_baseline_script(
                &config.python,
                script,
                &files,
                config.k,
                config.max_profiles,
                target,
                config.generator.seed,
            )?;
            for row in script_rows {
                rows.push(EvalRow {
                    name: format!("{} (python)", row.name),
                    ..row
                });
            }
            notes.push(format!("Baseline parameters: {params}"));
        }
    }
    Ok(EvalReport {
        k: config.k,
        target_catalog: config.target_catalog.clone(),
        seed: config.generator.seed,
        items: catalogs.item_count(),
        recommendable_items: recommendable,
        train_interactions: split.train.len(),
        test_interactions: split.test.len(),
        profiles_evaluated: cases.len(),
        split_time: split.split_time,
        rows,
        build_millis,
        notes,
    })
}
