//! Record linkage: which records describe the same person.
//!
//! The pipeline, all unsupervised (no labels are used for training):
//! 1. **Blocking**: several rules, each a key built from field values; records sharing a key under any rule
//!    become a candidate pair (the union of all rules).
//! 2. **Comparison**: each configured field gives a graded level per pair ([`ComparisonKind`]).
//! 3. **Fellegi–Sunter model**: `u` probabilities (how often non-matches agree at each level) from random
//!    record pairs; `m` probabilities (how often matches do) and the match prior by expectation
//!    maximisation over the candidate pairs; exact agreement on a common value (Müller) counts for less
//!    than on a rare one (term-frequency adjustment).
//! 4. **Scoring**: a match weight and probability per pair, explained field by field.
//! 5. **Clustering** (de-duplication): pairs above the threshold are merged strongest first, and two groups
//!    join only if the pairs between them are, on average, matches too. This resists the chaining that
//!    plain connected components suffer (A~B, B~C, so A~C).
//!
//! Inputs are normalised strings (lower case, trimmed, umlauts folded): normalisation belongs to the
//! data-quality crate; [`fold`] is a minimal one for callers without it.

mod compare;
pub mod febrl;

use std::collections::{HashMap, HashSet};

use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

pub use compare::ComparisonKind;

/// Records as rows of optional field values, all rows with the same columns.
#[derive(Debug, Clone, Default)]
pub struct Records {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Option<String>>>,
}

impl Records {
    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == name)
    }

    fn value(&self, row: usize, col: usize) -> Option<&str> {
        self.rows
            .get(row)
            .and_then(|r| r.get(col))
            .and_then(|v| v.as_deref())
    }
}

/// Lower-cases, trims, folds umlauts and accents (ä→ae, ß→ss, é→e) and blank to `None`.
pub fn fold(raw: &str) -> Option<String> {
    let mut out = String::with_capacity(raw.len());
    for c in raw.trim().chars().flat_map(char::to_lowercase) {
        match c {
            'ä' => out.push_str("ae"),
            'ö' => out.push_str("oe"),
            'ü' => out.push_str("ue"),
            'ß' => out.push_str("ss"),
            'à' | 'á' | 'â' | 'ã' | 'å' => out.push('a'),
            'è' | 'é' | 'ê' | 'ë' => out.push('e'),
            'ì' | 'í' | 'î' | 'ï' => out.push('i'),
            'ò' | 'ó' | 'ô' | 'õ' => out.push('o'),
            'ù' | 'ú' | 'û' => out.push('u'),
            'ç' => out.push('c'),
            'ñ' => out.push('n'),
            c => out.push(c),
        }
    }
    (!out.is_empty()).then_some(out)
}

/// One compared field.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Comparison {
    pub field: String,
    pub kind: ComparisonKind,
    /// Weigh exact agreement by how common the value is.
    #[serde(default)]
    pub term_frequency: bool,
}

/// How a blocking key is built from one field.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "transform")]
pub enum KeyPart {
    Exact { field: String },
    Prefix { field: String, chars: usize },
}

/// Records agreeing on every part of a rule's key become candidates.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BlockingRule {
    pub parts: Vec<KeyPart>,
}

impl BlockingRule {
    pub fn exact(fields: &[&str]) -> Self {
        Self {
            parts: fields
                .iter()
                .map(|f| KeyPart::Exact {
                    field: (*f).to_owned(),
                })
                .collect(),
        }
    }
}

/// The linkage configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LinkageConfig {
    pub comparisons: Vec<Comparison>,
    pub blocking: Vec<BlockingRule>,
    /// Pairs at or above this match probability are matches.
    pub threshold: f64,
    /// Random pairs drawn to estimate `u`.
    pub u_sample_pairs: usize,
    pub em_iterations: usize,
    /// Blocks larger than this are skipped (a key shared by thousands of records does not discriminate).
    pub max_block_size: usize,
    pub seed: u64,
    /// Field sets that identify a person: a pair that is "different" on every field of one set is no
    /// match whatever else agrees (family members share surname, address, e-mail and landline but not
    /// first name and birth date). Applied during training too, so EM cannot learn "same household".
    #[serde(default)]
    pub vetoes: Vec<Veto>,
    /// A match needs at least this much agreement on person-identifying fields (sparse records that
    /// share only a surname and a postcode are not enough).
    #[serde(default)]
    pub min_agreement: Option<MinAgreement>,
    /// Deterministic rules that estimate the match prior instead of EM: a pair satisfying any rule (every
    /// listed field at or above the given level, 0 = exact) is counted as a match, and the count is
    /// divided by `prior_rule_recall`. EM then learns only `m`. Without rules EM estimates the prior too,
    /// which can drift to "same household" when most candidates are look-alikes.
    #[serde(default)]
    pub prior_rules: Vec<Vec<(String, u8)>>,
    #[serde(default = "default_prior_rule_recall")]
    pub prior_rule_recall: f64,
}

/// A pair "different" on every field of `different` is no match, unless one of `unless_exact` agrees exactly.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Veto {
    pub different: Vec<String>,
    #[serde(default)]
    pub unless_exact: Vec<String>,
}

/// At least `at_least` of `fields` must agree at level `max_level` or better.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MinAgreement {
    pub fields: Vec<String>,
    pub at_least: usize,
    pub max_level: u8,
}

fn default_prior_rule_recall() -> f64 {
    0.8
}

impl LinkageConfig {
    pub fn new(comparisons: Vec<Comparison>, blocking: Vec<BlockingRule>) -> Self {
        Self {
            comparisons,
            blocking,
            threshold: 0.5,
            u_sample_pairs: 100_000,
            em_iterations: 25,
            max_block_size: 1_000,
            seed: 42,
            vetoes: Vec::new(),
            min_agreement: None,
            prior_rules: Vec::new(),
            prior_rule_recall: default_prior_rule_recall(),
        }
    }
}

/// Configuration errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownField(pub String);

impl std::fmt::Display for UnknownField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "unknown field {:?} in the linkage configuration", self.0)
    }
}

impl std::error::Error for UnknownField {}

/// One field's part of a pair's match weight.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Contribution {
    pub field: String,
    /// `None` when a value is missing (no evidence either way).
    pub level: Option<String>,
    /// log2 of the Bayes factor m/u: positive is evidence for a match.
    pub log2_bayes_factor: f64,
}

/// A scored candidate pair (indexes into the left and right records; for de-duplication both the same set).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoredPair {
    pub left: usize,
    pub right: usize,
    /// Total match weight in bits, prior included.
    pub match_weight: f64,
    pub probability: f64,
}

/// Trained parameters, for reports and explanations.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Model {
    pub comparisons: Vec<Comparison>,
    /// m[k][level], u[k][level].
    pub m: Vec<Vec<f64>>,
    pub u: Vec<Vec<f64>>,
    /// Share of matches among candidate pairs.
    pub prior: f64,
    #[serde(skip)]
    tf: Vec<Option<HashMap<String, f64>>>,
}

/// The result of a linkage or de-duplication run.
#[derive(Debug, Clone)]
pub struct Linkage {
    pub model: Model,
    /// Every candidate pair, scored.
    pub pairs: Vec<ScoredPair>,
    pub candidate_pairs: usize,
    /// Levels per pair and comparison (`u8::MAX` = missing), row-major.
    levels: Vec<u8>,
    threshold: f64,
}

impl Linkage {
    /// Pairs at or above the threshold.
    pub fn matches(&self) -> impl Iterator<Item = &ScoredPair> {
        self.pairs
            .iter()
            .filter(move |p| p.probability >= self.threshold)
    }

    /// Each field's contribution to pair `index`'s match weight.
    pub fn explain(&self, index: usize, left: &Records, right: &Records) -> Vec<Contribution> {
        let k = self.model.comparisons.len();
        let Some(pair) = self.pairs.get(index) else {
            return Vec::new();
        };
        self.model
            .comparisons
            .iter()
            .enumerate()
            .map(|(c, cmp)| {
                let level = self.levels[index * k + c];
                let value = left
                    .column(&cmp.field)
                    .and_then(|col| left.value(pair.left, col));
                let _ = right;
                Contribution {
                    field: cmp.field.clone(),
                    level: (level != u8::MAX)
                        .then(|| cmp.kind.level_labels()[level as usize].to_owned()),
                    log2_bayes_factor: if level == u8::MAX {
                        0.0
                    } else {
                        self.model.log_bf(c, level, value) / std::f64::consts::LN_2
                    },
                }
            })
            .collect()
    }
}

impl Model {
    /// Natural-log Bayes factor of comparison `c` at `level`, term-frequency adjusted for exact matches.
    fn log_bf(&self, c: usize, level: u8, value: Option<&str>) -> f64 {
        let m = self.m[c][level as usize];
        let mut u = self.u[c][level as usize];
        if level == 0 {
            if let (Some(tf), Some(v)) = (&self.tf[c], value) {
                if let Some(freq) = tf.get(v) {
                    u = *freq;
                }
            }
        }
        (m / u.max(1e-9)).ln()
    }
}

struct Prepared<'a> {
    records: &'a Records,
    cols: Vec<usize>,
}

fn columns(records: &Records, config: &LinkageConfig) -> Result<Vec<usize>, UnknownField> {
    config
        .comparisons
        .iter()
        .map(|c| {
            records
                .column(&c.field)
                .ok_or_else(|| UnknownField(c.field.clone()))
        })
        .collect()
}

fn key(records: &Records, row: usize, rule: &BlockingRule) -> Option<String> {
    let mut key = String::new();
    for part in &rule.parts {
        let (field, chars) = match part {
            KeyPart::Exact { field } => (field, usize::MAX),
            KeyPart::Prefix { field, chars } => (field, *chars),
        };
        let value = records.column(field).and_then(|c| records.value(row, c))?;
        key.extend(value.chars().take(chars));
        key.push('\u{1f}');
    }
    Some(key)
}

fn validate_blocking(records: &Records, config: &LinkageConfig) -> Result<(), UnknownField> {
    for rule in &config.blocking {
        for part in &rule.parts {
            let (KeyPart::Exact { field } | KeyPart::Prefix { field, .. }) = part;
            if records.column(field).is_none() {
                return Err(UnknownField(field.clone()));
            }
        }
    }
    Ok(())
}

/// Candidate pairs (left index, right index). With `dedupe`, left and right are the same records and
/// only pairs `i < j` are produced.
fn candidates(
    left: &Records,
    right: &Records,
    config: &LinkageConfig,
    dedupe: bool,
) -> Vec<(u32, u32)> {
    let mut pairs: Vec<u64> = Vec::new();
    for rule in &config.blocking {
        let mut index: HashMap<String, Vec<u32>> = HashMap::new();
        for row in 0..right.rows.len() {
            if let Some(k) = key(right, row, rule) {
                index.entry(k).or_default().push(row as u32);
            }
        }
        if dedupe {
            for rows in index.values().filter(|r| r.len() <= config.max_block_size) {
                for (i, &a) in rows.iter().enumerate() {
                    for &b in &rows[i + 1..] {
                        pairs.push((u64::from(a) << 32) | u64::from(b));
                    }
                }
            }
        } else {
            for row in 0..left.rows.len() {
                let Some(k) = key(left, row, rule) else {
                    continue;
                };
                if let Some(rows) = index.get(&k).filter(|r| r.len() <= config.max_block_size) {
                    pairs.extend(rows.iter().map(|&b| ((row as u64) << 32) | u64::from(b)));
                }
            }
        }
    }
    pairs.sort_unstable();
    pairs.dedup();
    pairs
        .into_iter()
        .map(|p| ((p >> 32) as u32, p as u32))
        .collect()
}

fn levels_of(
    left: &Prepared<'_>,
    right: &Prepared<'_>,
    config: &LinkageConfig,
    a: usize,
    b: usize,
    out: &mut Vec<u8>,
) {
    for (c, cmp) in config.comparisons.iter().enumerate() {
        let level = match (
            left.records.value(a, left.cols[c]),
            right.records.value(b, right.cols[c]),
        ) {
            (Some(x), Some(y)) => cmp.kind.level(x, y),
            _ => u8::MAX,
        };
        out.push(level);
    }
}

/// Weight of the per-kind default `u` in pseudo-observations.
const U_PRIOR_WEIGHT: f64 = 1_000.0;

/// `u` from random pairs (nearly all non-matches), smoothed towards the kind's defaults.
fn estimate_u(
    left: &Prepared<'_>,
    right: &Prepared<'_>,
    config: &LinkageConfig,
    dedupe: bool,
) -> Vec<Vec<f64>> {
    let k = config.comparisons.len();
    let mut counts: Vec<Vec<f64>> = config
        .comparisons
        .iter()
        .map(|c| {
            c.kind
                .default_u()
                .iter()
                .map(|u| u * U_PRIOR_WEIGHT)
                .collect()
        })
        .collect();
    let (n_left, n_right) = (left.records.rows.len(), right.records.rows.len());
    // Never more draws than distinct pairs: with few records the defaults must keep their weight.
    let distinct = if dedupe {
        n_left * n_left.saturating_sub(1) / 2
    } else {
        n_left * n_right
    };
    if n_left == 0 || n_right == 0 {
        return counts;
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(config.seed);
    let mut buf = Vec::with_capacity(k);
    for _ in 0..config.u_sample_pairs.min(distinct) {
        let (a, b) = (rng.gen_range(0..n_left), rng.gen_range(0..n_right));
        if dedupe && a == b {
            continue;
        }
        buf.clear();
        levels_of(left, right, config, a, b, &mut buf);
        for (c, &level) in buf.iter().enumerate() {
            if level != u8::MAX {
                counts[c][level as usize] += 1.0;
            }
        }
    }
    for row in &mut counts {
        let total: f64 = row.iter().sum();
        row.iter_mut().for_each(|x| *x /= total);
    }
    counts
}

/// Share of records holding each value of the field, for term-frequency adjustment.
fn term_frequencies(
    left: &Prepared<'_>,
    right: &Prepared<'_>,
    col_left: usize,
    col_right: usize,
    dedupe: bool,
) -> HashMap<String, f64> {
    let mut counts: HashMap<String, f64> = HashMap::new();
    let mut total: f64 = 0.0;
    let sides: &[(&Prepared<'_>, usize)] = if dedupe {
        &[(left, col_left)]
    } else {
        &[(left, col_left), (right, col_right)]
    };
    for (side, col) in sides {
        for row in 0..side.records.rows.len() {
            if let Some(v) = side.records.value(row, *col) {
                *counts.entry(v.to_owned()).or_default() += 1.0;
                total += 1.0;
            }
        }
    }
    counts.values_mut().for_each(|c| *c /= total.max(1.0));
    counts
}

/// `m` of comparisons whose agreement levels are not estimated: an exact identifier (e-mail) agrees for
/// 90% of true matches; a different one is strong evidence against (people rarely give two addresses).
fn fixed_m(kind: ComparisonKind) -> Option<&'static [f64]> {
    match kind {
        ComparisonKind::Exact => Some(&[0.9, 0.1]),
        _ => None,
    }
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

fn run(
    left: &Records,
    right: &Records,
    config: &LinkageConfig,
    dedupe: bool,
) -> Result<Linkage, UnknownField> {
    validate_blocking(left, config)?;
    validate_blocking(right, config)?;
    let l = Prepared {
        records: left,
        cols: columns(left, config)?,
    };
    let r = Prepared {
        records: right,
        cols: columns(right, config)?,
    };
    let k = config.comparisons.len();
    let pairs = candidates(left, right, config, dedupe);
    let mut levels = Vec::with_capacity(pairs.len() * k);
    for &(a, b) in &pairs {
        levels_of(&l, &r, config, a as usize, b as usize, &mut levels);
    }
    let index_of = |f: &String| {
        config
            .comparisons
            .iter()
            .position(|c| &c.field == f)
            .ok_or_else(|| UnknownField(f.clone()))
    };
    let vetoes: Vec<(Vec<usize>, Vec<usize>)> = config
        .vetoes
        .iter()
        .map(|v| {
            Ok((
                v.different.iter().map(index_of).collect::<Result<_, _>>()?,
                v.unless_exact
                    .iter()
                    .map(index_of)
                    .collect::<Result<_, _>>()?,
            ))
        })
        .collect::<Result<_, UnknownField>>()?;
    let min_agreement: Option<(Vec<usize>, usize, u8)> = match &config.min_agreement {
        Some(rule) => Some((
            rule.fields.iter().map(index_of).collect::<Result<_, _>>()?,
            rule.at_least,
            rule.max_level,
        )),
        None => None,
    };
    let vetoed: Vec<bool> = (0..pairs.len())
        .map(|i| {
            let level = |c: usize| levels[i * k + c];
            let different = |c: usize| {
                level(c) != u8::MAX
                    && usize::from(level(c)) + 1 == config.comparisons[c].kind.levels()
            };
            let vetoed = vetoes.iter().any(|(diff, unless)| {
                !diff.is_empty()
                    && diff.iter().all(|&c| different(c))
                    && !unless.iter().any(|&c| level(c) == 0)
            });
            let too_little = min_agreement
                .as_ref()
                .is_some_and(|(fields, at_least, max)| {
                    fields
                        .iter()
                        .filter(|&&c| level(c) <= *max && !different(c))
                        .count()
                        < *at_least
                });
            vetoed || too_little
        })
        .collect();
    let field_index = |f: &String| {
        config
            .comparisons
            .iter()
            .position(|c| &c.field == f)
            .ok_or_else(|| UnknownField(f.clone()))
    };
    let prior_rules: Vec<Vec<(usize, u8)>> = config
        .prior_rules
        .iter()
        .map(|rule| {
            rule.iter()
                .map(|(f, max)| Ok((field_index(f)?, *max)))
                .collect::<Result<Vec<_>, UnknownField>>()
        })
        .collect::<Result<_, _>>()?;
    let fixed_prior = (!prior_rules.is_empty() && !pairs.is_empty()).then(|| {
        let hits = (0..pairs.len())
            .filter(|&i| {
                !vetoed[i]
                    && prior_rules
                        .iter()
                        .any(|rule| rule.iter().all(|&(c, max)| levels[i * k + c] <= max))
            })
            .count();
        (hits as f64 / config.prior_rule_recall.max(0.01) / pairs.len() as f64).clamp(1e-6, 0.999)
    });
    // With rules, each comparison's m is read off the pairs that rules *not* involving it call matches
    // (first name's m from pairs agreeing on surname, birth date and postcode, …): no EM, so nothing can
    // drift towards look-alike households.
    let anchored_m: Option<Vec<Option<Vec<f64>>>> = (!prior_rules.is_empty()).then(|| {
        (0..k)
            .map(|c| {
                let rules: Vec<&Vec<(usize, u8)>> = prior_rules
                    .iter()
                    .filter(|rule| rule.iter().all(|&(f, _)| f != c))
                    .collect();
                let mut counts = vec![0.5; config.comparisons[c].kind.levels()];
                let mut n = 0usize;
                for i in 0..pairs.len() {
                    let level = levels[i * k + c];
                    if level == u8::MAX
                        || vetoed[i]
                        || !rules
                            .iter()
                            .any(|rule| rule.iter().all(|&(f, max)| levels[i * k + f] <= max))
                    {
                        continue;
                    }
                    counts[usize::from(level)] += 1.0;
                    n += 1;
                }
                (n >= 30).then(|| {
                    let total: f64 = counts.iter().sum();
                    counts.iter().map(|x| x / total).collect()
                })
            })
            .collect()
    });
    let u = estimate_u(&l, &r, config, dedupe);
    let tf = config
        .comparisons
        .iter()
        .enumerate()
        .map(|(c, cmp)| {
            cmp.term_frequency
                .then(|| term_frequencies(&l, &r, l.cols[c], r.cols[c], dedupe))
        })
        .collect();
    // Start: matches agree strongly, the prior is modest; EM refines m and the prior.
    let m = config
        .comparisons
        .iter()
        .map(|c| {
            if let Some(fixed) = fixed_m(c.kind) {
                return fixed.to_vec();
            }
            let n = c.kind.levels();
            (0..n)
                .map(|i| {
                    if i == 0 {
                        0.8
                    } else if i + 1 == n {
                        0.05
                    } else {
                        0.15 / (n - 2) as f64
                    }
                })
                .collect()
        })
        .collect();
    let mut model = Model {
        comparisons: config.comparisons.clone(),
        m,
        u,
        prior: fixed_prior.unwrap_or(0.1),
        tf,
    };
    let mut learned = vec![true; k];
    if let Some(anchored) = &anchored_m {
        for (c, m) in anchored.iter().enumerate() {
            if let Some(m) = m {
                model.m[c] = m.clone();
                learned[c] = false;
            }
        }
    }
    let mut probabilities = vec![0.0; pairs.len()];
    let mut weights = vec![0.0; pairs.len()];
    for iteration in 0..=config.em_iterations {
        let log_prior = (model.prior / (1.0 - model.prior)).ln();
        for (i, &(a, _)) in pairs.iter().enumerate() {
            let mut w = log_prior;
            for c in 0..k {
                let level = levels[i * k + c];
                if level != u8::MAX {
                    w += model.log_bf(c, level, left.value(a as usize, l.cols[c]));
                }
            }
            weights[i] = w;
            probabilities[i] = if vetoed[i] { 0.0 } else { sigmoid(w) };
        }
        if iteration == config.em_iterations || pairs.is_empty() {
            break;
        }
        // M step: m and the prior from the expected matches.
        let mut m_counts: Vec<Vec<f64>> = config
            .comparisons
            .iter()
            .map(|c| vec![0.01; c.kind.levels()])
            .collect();
        for (i, p) in probabilities.iter().enumerate() {
            for c in 0..k {
                let level = levels[i * k + c];
                if level != u8::MAX {
                    m_counts[c][level as usize] += p;
                }
            }
        }
        for (c, row) in m_counts.iter_mut().enumerate() {
            if !learned[c] {
                row.copy_from_slice(&model.m[c]);
                continue;
            }
            if let Some(fixed) = fixed_m(config.comparisons[c].kind) {
                // Not learned: for exact identifiers a candidate set without real matches would otherwise
                // teach EM that "different address" is what matches look like.
                row.copy_from_slice(fixed);
                continue;
            }
            let total: f64 = row.iter().sum();
            row.iter_mut().for_each(|x| *x /= total);
        }
        model.m = m_counts;
        if fixed_prior.is_none() {
            model.prior =
                (probabilities.iter().sum::<f64>() / pairs.len() as f64).clamp(1e-6, 1.0 - 1e-6);
        }
    }
    let scored = pairs
        .iter()
        .zip(weights.iter().zip(&probabilities))
        .map(|(&(a, b), (&w, &p))| ScoredPair {
            left: a as usize,
            right: b as usize,
            match_weight: w / std::f64::consts::LN_2,
            probability: p,
        })
        .collect();
    Ok(Linkage {
        model,
        candidate_pairs: pairs.len(),
        pairs: scored,
        levels,
        threshold: config.threshold,
    })
}

/// Links two sets of records (e.g. two sources' customer lists).
pub fn link(
    left: &Records,
    right: &Records,
    config: &LinkageConfig,
) -> Result<Linkage, UnknownField> {
    run(left, right, config, false)
}

/// Finds duplicates within one set of records.
pub fn dedupe(records: &Records, config: &LinkageConfig) -> Result<Linkage, UnknownField> {
    run(records, records, config, true)
}

/// Groups records into persons from a de-duplication's matches, strongest pairs first. Two groups merge
/// only if the mean probability of the scored pairs between them reaches the threshold and at least half
/// of their cross pairs were scored, which stops one weak bridge from chaining two people together.
pub fn cluster(records: usize, linkage: &Linkage) -> Vec<usize> {
    let mut parent: Vec<usize> = (0..records).collect();
    let mut members: Vec<Vec<usize>> = (0..records).map(|i| vec![i]).collect();
    let scores: HashMap<(usize, usize), f64> = linkage
        .pairs
        .iter()
        .map(|p| ((p.left.min(p.right), p.left.max(p.right)), p.probability))
        .collect();
    let mut edges: Vec<&ScoredPair> = linkage.matches().collect();
    edges.sort_by(|a, b| b.probability.total_cmp(&a.probability));
    fn find(parent: &mut [usize], mut x: usize) -> usize {
        while parent[x] != x {
            parent[x] = parent[parent[x]];
            x = parent[x];
        }
        x
    }
    for edge in edges {
        let (a, b) = (find(&mut parent, edge.left), find(&mut parent, edge.right));
        if a == b {
            continue;
        }
        let (mut sum, mut scored) = (0.0, 0usize);
        for &x in &members[a] {
            for &y in &members[b] {
                if let Some(p) = scores.get(&(x.min(y), x.max(y))) {
                    sum += p;
                    scored += 1;
                }
            }
        }
        let cross = members[a].len() * members[b].len();
        if scored * 2 >= cross && sum / scored.max(1) as f64 >= linkage.threshold {
            let (big, small) = if members[a].len() >= members[b].len() {
                (a, b)
            } else {
                (b, a)
            };
            parent[small] = big;
            let moved = std::mem::take(&mut members[small]);
            members[big].extend(moved);
        }
    }
    (0..records).map(|i| find(&mut parent, i)).collect()
}

/// Precision, recall and F1 of predicted pairs against true pairs (both as unordered index pairs).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Accuracy {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub true_positives: usize,
    pub predicted: usize,
    pub actual: usize,
}

pub fn accuracy(predicted: &HashSet<(usize, usize)>, truth: &HashSet<(usize, usize)>) -> Accuracy {
    let tp = predicted.intersection(truth).count();
    let precision = if predicted.is_empty() {
        1.0
    } else {
        tp as f64 / predicted.len() as f64
    };
    let recall = if truth.is_empty() {
        1.0
    } else {
        tp as f64 / truth.len() as f64
    };
    let f1 = if precision + recall == 0.0 {
        0.0
    } else {
        2.0 * precision * recall / (precision + recall)
    };
    Accuracy {
        precision,
        recall,
        f1,
        true_positives: tp,
        predicted: predicted.len(),
        actual: truth.len(),
    }
}

/// Unordered pairs of records in the same cluster.
pub fn cluster_pairs(clusters: &[usize]) -> HashSet<(usize, usize)> {
    let mut by: HashMap<usize, Vec<usize>> = HashMap::new();
    for (i, &c) in clusters.iter().enumerate() {
        by.entry(c).or_default().push(i);
    }
    let mut pairs = HashSet::new();
    for group in by.values() {
        for (i, &a) in group.iter().enumerate() {
            for &b in &group[i + 1..] {
                pairs.insert((a.min(b), a.max(b)));
            }
        }
    }
    pairs
}
