//! The data-quality engine: how clean are the unified profiles, and which ones are probably the same person.
//!
//! [`assess`] checks one profile's fields with `kreislauf-quality`; [`report`] scans every profile, adds up
//! completeness and validity per field and per source, collects the worst problems with examples, and runs
//! the linkage model over the normalised fields to find likely duplicates, each explained field by field.
//! Read-only: merging and the review queue build on this next.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDate, Utc};
use kreislauf_core::SourceId;
use kreislauf_linkage::{
    BlockingRule, Comparison, ComparisonKind, Contribution, KeyPart, LinkageConfig, Records,
};
use kreislauf_quality::{
    address, birth_date, email, name, phone, Country, Field, FieldOutcome, FieldStatus,
};
use kreislauf_store::{ProfileRecord, Store, StoreError};
use serde::Serialize;
use serde_json::Value;

/// Trait names read for each field (Segment's reserved traits in snake and camel case, common German ones).
fn trait_names(field: Field) -> &'static [&'static str] {
    match field {
        Field::Email => &["email", "e_mail", "mail"],
        Field::Phone => &["phone", "phone_number", "phoneNumber", "mobile", "telefon"],
        Field::FirstName => &["first_name", "firstName", "given_name", "vorname"],
        Field::LastName => &[
            "last_name",
            "lastName",
            "surname",
            "family_name",
            "nachname",
        ],
        Field::Street => &["street", "address.street", "strasse"],
        Field::PostalCode => &[
            "postal_code",
            "postalCode",
            "zip",
            "plz",
            "address.postalCode",
            "address.postal_code",
        ],
        Field::Country => &["country", "address.country", "land"],
        Field::BirthDate => &[
            "birthday",
            "birth_date",
            "birthdate",
            "date_of_birth",
            "geburtsdatum",
        ],
    }
}

fn field_name(field: Field) -> &'static str {
    match field {
        Field::Email => "email",
        Field::Phone => "phone",
        Field::FirstName => "first_name",
        Field::LastName => "last_name",
        Field::Street => "street",
        Field::PostalCode => "postal_code",
        Field::Country => "country",
        Field::BirthDate => "birth_date",
    }
}

/// The field a top-level trait name holds, if a quality check knows it.
fn field_of_trait(name: &str) -> Option<Field> {
    Field::ALL
        .iter()
        .copied()
        .find(|f| trait_names(*f).contains(&name))
}

/// One trait as stored after the checks: the normalised value, what was received when that differs,
/// and the field's status.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedTrait {
    pub key: String,
    pub value: Value,
    pub raw: Option<Value>,
    pub status: Option<Value>,
}

/// Checks and normalises the traits of an identify message before they are stored (issue 3: "clean the
/// vegetables before you cook"). Fields the checks know (e-mail, phone, names, street, postcode, country,
/// birth date) get their normalised value, with the raw value kept beside it and a status; an invalid value
/// is stored as received, flagged. Other traits pass unchanged. `default_country` is the source's (phone
/// numbers and postcodes), unless the traits name a country.
pub fn check_traits(
    traits: &serde_json::Map<String, Value>,
    default_country: Country,
    today: NaiveDate,
) -> Vec<CheckedTrait> {
    let country = trait_names(Field::Country)
        .iter()
        .filter_map(|n| traits.get(*n)?.as_str())
        .find_map(Country::parse)
        .unwrap_or(default_country);
    traits
        .iter()
        .map(|(key, value)| {
            let text = match value {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            };
            let (Some(field), Some(text)) = (field_of_trait(key), text) else {
                return CheckedTrait {
                    key: key.clone(),
                    value: value.clone(),
                    raw: None,
                    status: None,
                };
            };
            let outcome = check_field(field, &text, country, today);
            let mut status = serde_json::to_value(&outcome.status).unwrap_or(Value::Null);
            if let (Some(obj), Some(suggestion)) = (status.as_object_mut(), &outcome.suggestion) {
                obj.insert("suggestion".into(), Value::from(suggestion.clone()));
            }
            if let (Some(obj), false) = (status.as_object_mut(), outcome.details.is_empty()) {
                obj.insert("details".into(), Value::Object(outcome.details.clone()));
            }
            let normalised = outcome.value.filter(|v| *v != text).map(Value::from);
            CheckedTrait {
                key: key.clone(),
                raw: normalised.as_ref().map(|_| value.clone()),
                value: normalised.unwrap_or_else(|| value.clone()),
                status: Some(status),
            }
        })
        .collect()
}

fn check_field(field: Field, value: &str, country: Country, today: NaiveDate) -> FieldOutcome {
    match field {
        Field::Email => email::validate(value),
        Field::Phone => phone::validate(value, country),
        Field::FirstName | Field::LastName => name::normalise(value),
        Field::Street => address::normalise_street(value, country),
        Field::PostalCode => address::validate_postal_code(value, country),
        Field::Country => address::validate_country(value),
        Field::BirthDate => birth_date::validate(value, today),
    }
}

/// A field's raw text (as received, before normalisation) and the source that set it.
fn raw_field(profile: &ProfileRecord, field: Field) -> Option<(String, SourceId)> {
    trait_names(field).iter().find_map(|name| {
        let (value, source) = match name.split_once('.') {
            Some((outer, inner)) => {
                let t = profile.traits.get(outer)?;
                (t.value.get(inner)?.clone(), t.source_id)
            }
            None => {
                let t = profile.traits.get(*name)?;
                (
                    t.raw.clone().unwrap_or_else(|| t.value.clone()),
                    t.source_id,
                )
            }
        };
        match value {
            Value::String(s) => Some((s, source)),
            Value::Number(n) => Some((n.to_string(), source)),
            _ => None,
        }
    })
}

/// One profile's checked fields and score.
#[derive(Debug, Clone, Serialize)]
pub struct Assessment {
    pub profile_id: i64,
    pub score: u8,
    pub fields: BTreeMap<&'static str, FieldOutcome>,
    /// Which source set each present field.
    pub sources: BTreeMap<&'static str, SourceId>,
}

/// Checks a profile's fields. `default_country` applies when the profile names none (phone and postcode
/// rules depend on it).
pub fn assess(profile: &ProfileRecord, default_country: Country, today: NaiveDate) -> Assessment {
    let raw: HashMap<Field, (String, SourceId)> = Field::ALL
        .iter()
        .filter_map(|f| raw_field(profile, *f).map(|v| (*f, v)))
        .collect();
    assess_values(profile.id, &raw, default_country, today)
}

/// Checks raw field values that do not come from a stored profile (imports, benchmarks).
pub fn assess_raw(
    id: i64,
    values: &[(Field, &str)],
    default_country: Country,
    today: NaiveDate,
) -> Assessment {
    let raw: HashMap<Field, (String, SourceId)> = values
        .iter()
        .map(|(f, v)| (*f, ((*v).to_owned(), 0)))
        .collect();
    assess_values(id, &raw, default_country, today)
}

fn assess_values(
    profile_id: i64,
    raw: &HashMap<Field, (String, SourceId)>,
    default_country: Country,
    today: NaiveDate,
) -> Assessment {
    let country = raw
        .get(&Field::Country)
        .and_then(|(c, _)| Country::parse(c))
        .unwrap_or(default_country);
    let check = |field: Field| -> FieldOutcome {
        let Some((value, _)) = raw.get(&field) else {
            return FieldOutcome::missing();
        };
        check_field(field, value, country, today)
    };
    let outcomes: Vec<(Field, FieldOutcome)> = Field::ALL.iter().map(|f| (*f, check(*f))).collect();
    let score =
        kreislauf_quality::score::score(&outcomes.iter().map(|(f, o)| (*f, o)).collect::<Vec<_>>());
    Assessment {
        profile_id,
        score,
        sources: raw.iter().map(|(f, (_, s))| (field_name(*f), *s)).collect(),
        fields: outcomes
            .into_iter()
            .map(|(f, o)| (field_name(f), o))
            .collect(),
    }
}

/// Counts of one field's statuses.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FieldCounts {
    pub valid: u64,
    pub normalised: u64,
    pub suspicious: u64,
    pub invalid: u64,
    pub missing: u64,
}

impl FieldCounts {
    fn add(&mut self, status: &FieldStatus) {
        match status {
            FieldStatus::Valid => self.valid += 1,
            FieldStatus::Normalised => self.normalised += 1,
            FieldStatus::Suspicious { .. } => self.suspicious += 1,
            FieldStatus::Invalid { .. } => self.invalid += 1,
            FieldStatus::Missing => self.missing += 1,
        }
    }

    fn total(&self) -> u64 {
        self.valid + self.normalised + self.suspicious + self.invalid + self.missing
    }

    /// Share of profiles that have the field at all.
    pub fn completeness(&self) -> f64 {
        ratio(self.total() - self.missing, self.total())
    }

    /// Share of present values that are valid or were normalised.
    pub fn validity(&self) -> f64 {
        ratio(self.valid + self.normalised, self.total() - self.missing)
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// One kind of problem, how often it occurs and a few examples.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    pub field: &'static str,
    pub status: &'static str,
    pub reason: String,
    pub count: u64,
    pub examples: Vec<ProblemExample>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProblemExample {
    pub profile_id: i64,
    pub raw: Option<String>,
    pub suggestion: Option<String>,
}

/// A likely duplicate pair with the evidence.
#[derive(Debug, Clone, Serialize)]
pub struct DuplicatePair {
    pub profiles: (i64, i64),
    pub probability: f64,
    pub explanation: Vec<Contribution>,
}

/// What the linkage model found among the profiles.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Duplicates {
    pub candidate_pairs: usize,
    /// Pairs at or above the auto-merge threshold.
    pub likely: usize,
    /// Pairs between the review and the auto-merge threshold.
    pub to_review: usize,
    pub auto_merge_threshold: f64,
    pub review_threshold: f64,
    /// The strongest pairs, explained.
    pub examples: Vec<DuplicatePair>,
    /// Every pair at or above the review threshold, strongest first (not serialised: can be large).
    #[serde(skip)]
    pub pairs: Vec<DuplicatePair>,
}

/// The data-quality report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub generated_at: DateTime<Utc>,
    pub profiles: u64,
    pub average_score: f64,
    /// Profiles scoring 80–100, 50–79 and below 50.
    pub score_bands: [u64; 3],
    pub fields: BTreeMap<&'static str, FieldCounts>,
    /// Per source name: per field, the statuses of the values that source set.
    pub sources: BTreeMap<String, BTreeMap<&'static str, FieldCounts>>,
    /// The most frequent problems, most frequent first.
    pub problems: Vec<Problem>,
    pub duplicates: Duplicates,
    /// Change since the previous report (none for the first).
    pub trend: Option<Trend>,
}

/// How the figures moved since the previous report: current minus previous.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Trend {
    pub since: DateTime<Utc>,
    pub profiles: i64,
    pub average_score: f64,
    pub likely_duplicates: i64,
    /// Per field: change of completeness and of validity (shares, e.g. +0.02 = two points better).
    pub fields: BTreeMap<String, FieldTrend>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FieldTrend {
    pub completeness: f64,
    pub validity: f64,
}

/// What the next report compares with.
fn summary(report: &Report) -> Value {
    serde_json::json!({
        "profiles": report.profiles,
        "average_score": report.average_score,
        "likely_duplicates": report.duplicates.likely,
        "fields": report.fields.iter().map(|(name, c)| {
            ((*name).to_owned(), serde_json::json!({"completeness": c.completeness(), "validity": c.validity()}))
        }).collect::<serde_json::Map<_, _>>(),
    })
}

fn trend(report: &Report, since: DateTime<Utc>, previous: &Value) -> Trend {
    let number = |v: &Value, key: &str| v.get(key).and_then(Value::as_f64).unwrap_or(0.0);
    Trend {
        since,
        profiles: report.profiles as i64 - number(previous, "profiles") as i64,
        average_score: report.average_score - number(previous, "average_score"),
        likely_duplicates: report.duplicates.likely as i64
            - number(previous, "likely_duplicates") as i64,
        fields: report
            .fields
            .iter()
            .map(|(name, c)| {
                let before = previous.get("fields").and_then(|f| f.get(*name));
                let old = |key: &str| before.map_or(0.0, |b| number(b, key));
                (
                    (*name).to_owned(),
                    FieldTrend {
                        completeness: c.completeness() - old("completeness"),
                        validity: c.validity() - old("validity"),
                    },
                )
            })
            .collect(),
    }
}

/// Report settings.
#[derive(Debug, Clone)]
pub struct ReportOptions {
    pub default_country: Country,
    pub today: NaiveDate,
    pub auto_merge_threshold: f64,
    pub review_threshold: f64,
    pub max_problems: usize,
    pub examples_per_problem: usize,
}

impl ReportOptions {
    pub fn new(default_country: Country, today: NaiveDate) -> Self {
        Self {
            default_country,
            today,
            auto_merge_threshold: 0.99,
            review_threshold: 0.8,
            max_problems: 10,
            examples_per_problem: 3,
        }
    }
}

/// A linkage row straight from raw values (imports, benchmarks): `street` and `house_number` are joined,
/// the record's own country decides phone and postcode rules (else `default_country`).
pub struct RawCustomer<'a> {
    pub email: Option<&'a str>,
    pub phone: Option<&'a str>,
    pub first_name: Option<&'a str>,
    pub last_name: Option<&'a str>,
    pub street: Option<&'a str>,
    pub house_number: Option<&'a str>,
    pub postal_code: Option<&'a str>,
    pub country: Option<&'a str>,
    pub birth_date: Option<&'a str>,
}

/// Checks a raw customer and returns its normalised linkage row (columns [`LINK_FIELDS`]).
pub fn customer_row(
    id: i64,
    c: &RawCustomer<'_>,
    default_country: Country,
    today: NaiveDate,
) -> Vec<Option<String>> {
    let street = match (c.street, c.house_number) {
        (Some(s), Some(n)) => Some(format!("{s} {n}")),
        (s, _) => s.map(str::to_owned),
    };
    let country = c
        .country
        .and_then(Country::parse)
        .unwrap_or(default_country);
    let values: Vec<(Field, &str)> = [
        (Field::Email, c.email),
        (Field::Phone, c.phone),
        (Field::FirstName, c.first_name),
        (Field::LastName, c.last_name),
        (Field::Street, street.as_deref()),
        (Field::PostalCode, c.postal_code),
        (Field::Country, c.country),
        (Field::BirthDate, c.birth_date),
    ]
    .into_iter()
    .filter_map(|(f, v)| v.map(|v| (f, v)))
    .collect();
    linkage_row(&assess_raw(id, &values, country, today))
}

/// Columns of [`linkage_row`].
pub const LINK_FIELDS: [&str; 7] = [
    "first_name",
    "last_name",
    "email",
    "phone",
    "street",
    "postal_code",
    "birth_date",
];

/// Normalised values for the linkage model (matching keys: case and umlaut spelling folded).
pub fn linkage_row(a: &Assessment) -> Vec<Option<String>> {
    let value = |f: &str| {
        a.fields
            .get(f)
            .filter(|o| o.is_usable())
            .and_then(|o| o.value.clone())
    };
    LINK_FIELDS
        .iter()
        .map(|f| match *f {
            "first_name" | "last_name" => value(f).and_then(|v| name::matching_key(&v)),
            "email" => value(f).and_then(|v| email::matching_key(&v)),
            "street" => value(f).and_then(|v| address::street_matching_key(&v)),
            "birth_date" => value(f).map(|v| v.replace('-', "")),
            _ => value(f),
        })
        .collect()
}

/// The comparisons and blocking rules for customer profiles. Blocks stay small at a million profiles:
/// every rule combines a selective key with a second one.
pub fn linkage_config(review_threshold: f64) -> LinkageConfig {
    let cmp = |field: &str, kind, tf| Comparison {
        field: field.into(),
        kind,
        term_frequency: tf,
    };
    let prefix = |field: &str, chars| KeyPart::Prefix {
        field: field.into(),
        chars,
    };
    let mut config = LinkageConfig::new(
        vec![
            cmp("first_name", ComparisonKind::Name, true),
            cmp("last_name", ComparisonKind::Name, true),
            cmp("email", ComparisonKind::Exact, false),
            cmp("phone", ComparisonKind::Code, false),
            cmp("street", ComparisonKind::Text, false),
            cmp("postal_code", ComparisonKind::Code, false),
            cmp("birth_date", ComparisonKind::Date, false),
        ],
        vec![
            BlockingRule {
                parts: vec![
                    KeyPart::Exact {
                        field: "birth_date".into(),
                    },
                    prefix("last_name", 1),
                ],
            },
            BlockingRule {
                parts: vec![
                    KeyPart::Exact {
                        field: "birth_date".into(),
                    },
                    prefix("first_name", 1),
                ],
            },
            BlockingRule::exact(&["last_name", "postal_code"]),
            BlockingRule {
                parts: vec![
                    prefix("first_name", 3),
                    prefix("last_name", 3),
                    KeyPart::Exact {
                        field: "postal_code".into(),
                    },
                ],
            },
            BlockingRule::exact(&["email"]),
            BlockingRule::exact(&["phone"]),
            BlockingRule {
                parts: vec![
                    prefix("street", 8),
                    KeyPart::Exact {
                        field: "postal_code".into(),
                    },
                    prefix("first_name", 1),
                ],
            },
        ],
    );
    config.threshold = review_threshold;
    config.vetoes = vec![kreislauf_linkage::Veto {
        different: vec!["first_name".into()],
        unless_exact: vec!["birth_date".into()],
    }];
    config.min_agreement = Some(kreislauf_linkage::MinAgreement {
        fields: ["first_name", "last_name", "birth_date", "email", "phone"]
            .map(String::from)
            .to_vec(),
        at_least: 2,
        max_level: 1,
    });
    config.prior_rules = vec![
        vec![("first_name".into(), 1), ("birth_date".into(), 0)],
        vec![("first_name".into(), 1), ("email".into(), 0)],
        vec![
            ("last_name".into(), 1),
            ("birth_date".into(), 0),
            ("postal_code".into(), 0),
        ],
    ];
    config
}

/// Scans every unified profile and builds the report.
pub async fn report(store: &dyn Store, options: &ReportOptions) -> Result<Report, StoreError> {
    let source_names: HashMap<SourceId, String> = store
        .sources()
        .await?
        .into_iter()
        .map(|s| (s.id, s.name))
        .collect();
    let mut fields: BTreeMap<&'static str, FieldCounts> = BTreeMap::new();
    let mut sources: BTreeMap<String, BTreeMap<&'static str, FieldCounts>> = BTreeMap::new();
    let mut problems: HashMap<(&'static str, &'static str, String), Problem> = HashMap::new();
    let (mut profiles, mut score_sum, mut bands) = (0u64, 0u64, [0u64; 3]);
    let mut rows = Vec::new();
    let mut ids = Vec::new();
    let mut after = 0;
    loop {
        let page = store.profiles_after(after, 1_000).await?;
        let Some(last) = page.last() else { break };
        after = last.id;
        for profile in &page {
            let a = assess(profile, options.default_country, options.today);
            profiles += 1;
            score_sum += u64::from(a.score);
            bands[if a.score >= 80 {
                0
            } else if a.score >= 50 {
                1
            } else {
                2
            }] += 1;
            for (field, outcome) in &a.fields {
                fields.entry(field).or_default().add(&outcome.status);
                if let Some(source) = a.sources.get(field) {
                    let name = source_names
                        .get(source)
                        .cloned()
                        .unwrap_or_else(|| format!("source {source}"));
                    sources
                        .entry(name)
                        .or_default()
                        .entry(field)
                        .or_default()
                        .add(&outcome.status);
                }
                let status = match &outcome.status {
                    FieldStatus::Suspicious { .. } => "suspicious",
                    FieldStatus::Invalid { .. } => "invalid",
                    _ => continue,
                };
                let reason = generalise(outcome.status.reason().unwrap_or_default());
                let problem = problems
                    .entry((field, status, reason.clone()))
                    .or_insert_with(|| Problem {
                        field,
                        status,
                        reason,
                        count: 0,
                        examples: Vec::new(),
                    });
                problem.count += 1;
                if problem.examples.len() < options.examples_per_problem {
                    problem.examples.push(ProblemExample {
                        profile_id: a.profile_id,
                        raw: outcome.raw.clone(),
                        suggestion: outcome.suggestion.clone(),
                    });
                }
            }
            rows.push(linkage_row(&a));
            ids.push(a.profile_id);
        }
    }
    let mut problems: Vec<Problem> = problems.into_values().collect();
    problems.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.field.cmp(b.field)));
    problems.truncate(options.max_problems);

    let records = Records {
        columns: LINK_FIELDS.iter().map(|s| (*s).to_owned()).collect(),
        rows,
    };
    let duplicates = find_duplicates(&records, &ids, options);
    let mut report = Report {
        generated_at: Utc::now(),
        profiles,
        average_score: ratio(score_sum, profiles),
        score_bands: bands,
        fields,
        sources,
        problems,
        duplicates,
        trend: None,
    };
    // Each report is compared with the previous one and becomes the next one's baseline.
    if let Some((since, previous)) = store.latest_report_snapshot(REPORT_KIND).await? {
        report.trend = Some(trend(&report, since, &previous));
    }
    store
        .save_report_snapshot(REPORT_KIND, report.generated_at, &summary(&report))
        .await?;
    Ok(report)
}

const REPORT_KIND: &str = "quality";

/// Reasons that name a specific value ("domain gmial.com looks like …") are grouped by their shape.
fn generalise(reason: &str) -> String {
    if reason.contains("looks like a typo") {
        return "looks like a typo of a common domain".into();
    }
    reason.to_owned()
}

fn find_duplicates(records: &Records, ids: &[i64], options: &ReportOptions) -> Duplicates {
    let Ok(linkage) = kreislauf_linkage::dedupe(records, &linkage_config(options.review_threshold))
    else {
        return Duplicates::default();
    };
    let mut matches: Vec<(usize, &kreislauf_linkage::ScoredPair)> = linkage
        .pairs
        .iter()
        .enumerate()
        .filter(|(_, p)| p.probability >= options.review_threshold)
        .collect();
    matches.sort_by(|a, b| b.1.probability.total_cmp(&a.1.probability));
    let likely = matches
        .iter()
        .filter(|(_, p)| p.probability >= options.auto_merge_threshold)
        .count();
    let pairs: Vec<DuplicatePair> = matches
        .iter()
        .map(|(i, p)| DuplicatePair {
            profiles: (ids[p.left], ids[p.right]),
            probability: p.probability,
            explanation: linkage.explain(*i, records, records),
        })
        .collect();
    Duplicates {
        candidate_pairs: linkage.candidate_pairs,
        likely,
        to_review: matches.len() - likely,
        auto_merge_threshold: options.auto_merge_threshold,
        review_threshold: options.review_threshold,
        examples: pairs.iter().take(5).cloned().collect(),
        pairs,
    }
}

/// What a de-duplication run did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DedupeOutcome {
    /// Pairs at or above the auto-merge threshold.
    pub likely: usize,
    /// Of those, merged now (reversible: `POST /api/merges/{id}/revert`).
    pub merged: Vec<i64>,
    /// Of those, not merged: already one profile, or a person reverted their merge before.
    pub skipped: usize,
    /// Pairs a person rejected before, left alone.
    pub rejected_before: usize,
    /// Review pairs newly queued (with `apply`).
    pub queued: usize,
    /// Pairs between the review and the auto-merge threshold, left for a person.
    pub to_review: Vec<DuplicatePair>,
}

/// Finds duplicates among the profiles and, with `apply`, merges those at or above the auto-merge
/// threshold through the engine's writer. The reason recorded with each merge names the probability and
/// the field evidence.
pub async fn dedupe(
    engine: &crate::Engine,
    options: &ReportOptions,
    apply: bool,
    actor: &str,
) -> Result<DedupeOutcome, crate::EngineError> {
    let report = report(engine.store().as_ref(), options).await?;
    let mut outcome = DedupeOutcome {
        likely: report.duplicates.likely,
        ..DedupeOutcome::default()
    };
    let store = engine.store();
    let mut reviews = Vec::new();
    for pair in report.duplicates.pairs {
        let (a, b) = pair.profiles;
        if store
            .review_of_pair(a, b)
            .await?
            .is_some_and(|r| r.status == "rejected")
        {
            outcome.rejected_before += 1;
            continue;
        }
        if pair.probability < options.auto_merge_threshold {
            reviews.push(kreislauf_store::NewReview {
                profile_a: a,
                profile_b: b,
                probability: pair.probability,
                explanation: serde_json::to_value(&pair.explanation).unwrap_or_default(),
                at: engine.now(),
            });
            outcome.to_review.push(pair);
            continue;
        }
        if !apply {
            continue;
        }
        let evidence: Vec<String> = pair
            .explanation
            .iter()
            .filter(|c| c.level.is_some())
            .map(|c| {
                format!(
                    "{} {} ({:+.1} bits)",
                    c.field,
                    c.level.as_deref().unwrap_or(""),
                    c.log2_bayes_factor
                )
            })
            .collect();
        let reason = format!(
            "duplicate detection: match probability {:.4}; {}",
            pair.probability,
            evidence.join(", ")
        );
        match engine.merge_profiles(a, b, &reason, actor, false).await? {
            Some(merge) => outcome.merged.push(merge.id),
            None => outcome.skipped += 1,
        }
    }
    if apply && !reviews.is_empty() {
        outcome.queued = store.queue_reviews(&reviews).await?;
    }
    Ok(outcome)
}

/// A person confirms a review pair: the two profiles are merged (reversibly) and the decision kept.
pub async fn accept_review(
    engine: &crate::Engine,
    id: i64,
    actor: &str,
) -> Result<kreislauf_store::ReviewRecord, crate::EngineError> {
    let review = engine
        .store()
        .review(id)
        .await?
        .ok_or_else(|| StoreError::not_found(format!("review {id}")))?;
    if review.status != "pending" {
        return Err(StoreError::Conflict {
            what: format!("a decision on review {id} ({})", review.status),
        }
        .into());
    }
    let reason = format!(
        "review {id} accepted by {actor} (match probability {:.4})",
        review.probability
    );
    let merge = engine
        .merge_profiles(review.profile_a, review.profile_b, &reason, actor, true)
        .await?;
    Ok(engine
        .store()
        .decide_review(id, "accepted", actor, engine.now(), merge.map(|m| m.id))
        .await?)
}

/// A person says a review pair is two people: the decision is kept, and detection never proposes the pair again.
pub async fn reject_review(
    engine: &crate::Engine,
    id: i64,
    actor: &str,
) -> Result<kreislauf_store::ReviewRecord, crate::EngineError> {
    Ok(engine
        .store()
        .decide_review(id, "rejected", actor, engine.now(), None)
        .await?)
}

/// A contact channel a campaign uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Email,
    Sms,
    Post,
}

impl Channel {
    pub fn parse(s: &str) -> Option<Channel> {
        match s {
            "email" => Some(Channel::Email),
            "sms" => Some(Channel::Sms),
            "post" => Some(Channel::Post),
            _ => None,
        }
    }

    /// The fields that must be usable to reach someone on this channel.
    fn contact_fields(self) -> &'static [&'static str] {
        match self {
            Channel::Email => &["email"],
            Channel::Sms => &["phone"],
            Channel::Post => &["last_name", "street", "postal_code"],
        }
    }
}

/// What a profile must meet before a campaign contacts it on a channel. Journeys use the same gate.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct CampaignGate {
    pub channel: Channel,
    /// Minimum profile quality score (0–100).
    #[serde(default)]
    pub min_score: u8,
    /// Contact values flagged suspicious (typo domain, disposable address) pass too.
    #[serde(default)]
    pub allow_suspicious: bool,
}

/// Why a profile may not be contacted; stable snake_case codes for reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GateReason {
    pub code: &'static str,
    pub detail: String,
}

/// The gate's verdict on one profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GateDecision {
    pub allowed: bool,
    pub reasons: Vec<GateReason>,
}

/// Trait flags that block contact until the journeys' suppression list exists: `unsubscribed`,
/// `do_not_contact`, and per channel `email_bounced` / `sms_opt_out`.
fn suppression(profile: &ProfileRecord, channel: Channel) -> Option<String> {
    let flag = |name: &str| {
        profile.traits.get(name).is_some_and(|t| {
            t.value == Value::Bool(true) || t.value == Value::String("true".into())
        })
    };
    let mut names = vec!["unsubscribed", "do_not_contact"];
    names.push(match channel {
        Channel::Email => "email_bounced",
        Channel::Sms => "sms_opt_out",
        Channel::Post => "post_returned",
    });
    names.into_iter().find(|n| flag(n)).map(str::to_owned)
}

impl CampaignGate {
    /// Checks an assessed profile; `suppressed_by` names a suppression flag if one is set.
    pub fn check(&self, a: &Assessment, suppressed_by: Option<&str>) -> GateDecision {
        let mut reasons = Vec::new();
        if let Some(flag) = suppressed_by {
            reasons.push(GateReason {
                code: "suppressed",
                detail: format!("{flag} is set"),
            });
        }
        for field in self.channel.contact_fields() {
            let outcome = a.fields.get(field);
            match outcome.map(|o| &o.status) {
                None | Some(FieldStatus::Missing) => reasons.push(GateReason {
                    code: "missing_contact",
                    detail: format!("no {field}"),
                }),
                Some(FieldStatus::Invalid { reason }) => reasons.push(GateReason {
                    code: "invalid_contact",
                    detail: format!("{field}: {reason}"),
                }),
                Some(FieldStatus::Suspicious { reason }) if !self.allow_suspicious => {
                    reasons.push(GateReason {
                        code: "suspicious_contact",
                        detail: format!("{field}: {reason}"),
                    })
                }
                _ => {}
            }
        }
        if a.score < self.min_score {
            reasons.push(GateReason {
                code: "low_quality_score",
                detail: format!("score {} below {}", a.score, self.min_score),
            });
        }
        GateDecision {
            allowed: reasons.is_empty(),
            reasons,
        }
    }
}

/// How many profiles a gate lets through, and why the others are held back (a profile can fail for
/// several reasons; each is counted).
#[derive(Debug, Clone, Default, Serialize)]
pub struct GateCounts {
    pub profiles: u64,
    pub allowed: u64,
    pub blocked: u64,
    pub by_reason: BTreeMap<&'static str, u64>,
    /// A few blocked profiles per reason, to look at.
    pub examples: BTreeMap<&'static str, Vec<(i64, String)>>,
}

/// Applies a gate to every profile.
pub async fn gate_counts(
    store: &dyn Store,
    gate: &CampaignGate,
    default_country: Country,
    today: NaiveDate,
) -> Result<GateCounts, StoreError> {
    let mut counts = GateCounts::default();
    let mut after = 0;
    loop {
        let page = store.profiles_after(after, 1_000).await?;
        let Some(last) = page.last() else { break };
        after = last.id;
        for profile in &page {
            let decision = gate.check(
                &assess(profile, default_country, today),
                suppression(profile, gate.channel).as_deref(),
            );
            counts.profiles += 1;
            if decision.allowed {
                counts.allowed += 1;
                continue;
            }
            counts.blocked += 1;
            for reason in decision.reasons {
                *counts.by_reason.entry(reason.code).or_default() += 1;
                let examples = counts.examples.entry(reason.code).or_default();
                if examples.len() < 3 {
                    examples.push((profile.id, reason.detail));
                }
            }
        }
    }
    Ok(counts)
}

#[cfg(test)]
mod gate_tests {
    use super::*;

    fn assessed(traits: &[(&str, &str)]) -> Assessment {
        let values: Vec<(Field, &str)> = traits
            .iter()
            .map(|(k, v)| {
                let field = match *k {
                    "email" => Field::Email,
                    "phone" => Field::Phone,
                    "first_name" => Field::FirstName,
                    "last_name" => Field::LastName,
                    "street" => Field::Street,
                    _ => Field::PostalCode,
                };
                (field, *v)
            })
            .collect();
        assess_raw(
            1,
            &values,
            Country::CH,
            NaiveDate::from_ymd_opt(2026, 11, 25).unwrap_or_default(),
        )
    }

    fn codes(d: &GateDecision) -> Vec<&'static str> {
        d.reasons.iter().map(|r| r.code).collect()
    }

    #[test]
    fn email_gate_needs_a_usable_address_and_no_suppression() {
        let gate = CampaignGate {
            channel: Channel::Email,
            min_score: 0,
            allow_suspicious: false,
        };
        assert!(
            gate.check(&assessed(&[("email", "hans@bluewin.ch")]), None)
                .allowed
        );
        assert_eq!(
            codes(&gate.check(&assessed(&[("phone", "079 123 45 67")]), None)),
            ["missing_contact"]
        );
        assert_eq!(
            codes(&gate.check(&assessed(&[("email", "hans@@bluewin")]), None)),
            ["invalid_contact"]
        );
        assert_eq!(
            codes(&gate.check(&assessed(&[("email", "hans@gmial.com")]), None)),
            ["suspicious_contact"]
        );
        let lenient = CampaignGate {
            allow_suspicious: true,
            ..gate.clone()
        };
        assert!(
            lenient
                .check(&assessed(&[("email", "hans@gmial.com")]), None)
                .allowed
        );
        assert_eq!(
            codes(&gate.check(
                &assessed(&[("email", "hans@bluewin.ch")]),
                Some("unsubscribed")
            )),
            ["suppressed"]
        );
    }

    #[test]
    fn score_and_postal_gates() {
        let strict = CampaignGate {
            channel: Channel::Email,
            min_score: 60,
            allow_suspicious: false,
        };
        assert_eq!(
            codes(&strict.check(&assessed(&[("email", "hans@bluewin.ch")]), None)),
            ["low_quality_score"]
        );
        let post = CampaignGate {
            channel: Channel::Post,
            min_score: 0,
            allow_suspicious: false,
        };
        let d = post.check(
            &assessed(&[
                ("last_name", "Müller"),
                ("street", "Bahnhofstrasse 1"),
                ("postal_code", "80011"),
            ]),
            None,
        );
        assert_eq!(codes(&d), ["invalid_contact"], "80011 is no Swiss postcode");
    }
}
