//! Computed-trait definitions: an aggregate over a profile's events, filtered by event name,
//! source, brand and a condition on the event, over a sliding window of days or the lifetime.
//!
//! ```yaml
//! name: sparkling_purchases_30d
//! description: Sparkling-wine orders at the supermarket in the last 30 days
//! aggregate: count          # count sum min max first last distinct_count exists most_frequent
//! events: [Order Completed]
//! sources: [supermarket]    # optional: source names
//! brands: [supermarket]     # optional: source brands
//! where: { path: event.properties.category, eq: sparkling_wine }   # optional, event.* only
//! window: 30d               # or: lifetime
//! ```
//!
//! `of: event.properties.revenue` names the aggregated value (required for `sum`, `min`, `max`,
//! `first`, `last`, `distinct_count`, `most_frequent`; for `count`/`exists` it restricts to
//! events that have it). `last` of `event.timestamp` gives e.g. `last_purchase_at`.
//!
//! Window semantics: an event counts until the first UTC midnight after `timestamp + N days`
//! (per-day buckets; nothing within the exact last N×24 h is ever missed, and an event stays at
//! most one day longer). Events dated in the future (clock skew) count from their arrival.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use kreislauf_expr::error::{child, describe};
use kreislauf_expr::literal::{number_value, parse_decimal};
use kreislauf_expr::suggest::hint;
use kreislauf_expr::{compile_at, Compiled, Expr, Path, Scope, Span, ValidationErrors};

use crate::event::TraitEvent;
use crate::hash::content_hash;
use crate::reader::{check_slug, parse_json, parse_yaml, ObjectReader};
use crate::state::{day_of, day_start, Acc, Stamped, TraitState, DISTINCT_CAP, LIFETIME_BUCKET};

/// The aggregate functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Aggregate {
    Count,
    Sum,
    Min,
    Max,
    First,
    Last,
    DistinctCount,
    Exists,
    MostFrequent,
}

impl Aggregate {
    pub const ALL: [Aggregate; 9] = [
        Aggregate::Count,
        Aggregate::Sum,
        Aggregate::Min,
        Aggregate::Max,
        Aggregate::First,
        Aggregate::Last,
        Aggregate::DistinctCount,
        Aggregate::Exists,
        Aggregate::MostFrequent,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Aggregate::Count => "count",
            Aggregate::Sum => "sum",
            Aggregate::Min => "min",
            Aggregate::Max => "max",
            Aggregate::First => "first",
            Aggregate::Last => "last",
            Aggregate::DistinctCount => "distinct_count",
            Aggregate::Exists => "exists",
            Aggregate::MostFrequent => "most_frequent",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }

    /// Whether the aggregate needs `of` (a value to aggregate).
    pub fn needs_value(self) -> bool {
        !matches!(self, Aggregate::Count | Aggregate::Exists)
    }
}

/// Sliding window of whole days, or the whole history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Window {
    Lifetime,
    Days(u32),
}

/// Longest window: ten years of daily buckets.
pub const MAX_WINDOW_DAYS: u32 = 3650;

/// A computed trait as written.
#[derive(Debug, Clone, PartialEq)]
pub struct ComputedTraitDef {
    pub name: String,
    pub description: Option<String>,
    pub aggregate: Aggregate,
    /// Event names (exact); at least one.
    pub events: Vec<String>,
    /// Source names; empty means any.
    pub sources: Vec<String>,
    /// Source brands; empty means any.
    pub brands: Vec<String>,
    /// `where`: a condition over `event.*`.
    pub filter: Option<Expr>,
    /// `of`: the aggregated value, an `event.*` path.
    pub of: Option<Path>,
    pub window: Window,
}

const FIELDS: [&str; 9] = [
    "name",
    "description",
    "aggregate",
    "events",
    "sources",
    "brands",
    "where",
    "of",
    "window",
];

impl ComputedTraitDef {
    /// Parses a definition located at field path `at` in its document.
    pub fn from_value_at(value: &Value, at: &str) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let Some(r) = ObjectReader::new(value, at, "a computed trait", &FIELDS, &mut errors) else {
            return Err(errors);
        };
        let name = r.string("name", true, &mut errors);
        if let Some(n) = &name {
            if let Err(m) = check_slug(n, false) {
                errors.push(r.path("name"), m);
            }
        }
        let description = r.string("description", false, &mut errors);
        let aggregate = r.required("aggregate", &mut errors).and_then(|v| match v {
            Value::String(s) => Aggregate::parse(s).or_else(|| {
                errors.push(
                    r.path("aggregate"),
                    format!(
                        "unknown aggregate \"{s}\"{}; expected one of {}",
                        hint(s, Aggregate::ALL.map(Aggregate::as_str)),
                        Aggregate::ALL.map(Aggregate::as_str).join(", ")
                    ),
                );
                None
            }),
            other => {
                errors.push(
                    r.path("aggregate"),
                    format!("expected an aggregate name, found {}", describe(other)),
                );
                None
            }
        });
        let events = match r.string_list("events", &mut errors) {
            Some(list) if list.is_empty() => {
                errors.push(
                    r.path("events"),
                    "expected at least one event name, found an empty list",
                );
                None
            }
            Some(list) => Some(list),
            None => {
                if r.get("events").is_none() {
                    errors.push(r.path("events"), "missing required field");
                }
                None
            }
        };
        let sources = r.string_list("sources", &mut errors).unwrap_or_default();
        let brands = r.string_list("brands", &mut errors).unwrap_or_default();
        let filter = r
            .get("where")
            .and_then(|v| match Expr::from_value_at(v, &r.path("where")) {
                Ok(e) => Some(e),
                Err(e) => {
                    errors.extend(e);
                    None
                }
            });
        let of = r.get("of").and_then(|v| match v {
            Value::String(s) => match Path::parse(s) {
                Ok(p @ Path::Event { .. }) => Some(p),
                Ok(other) => {
                    errors.push(
                        r.path("of"),
                        format!("expected an event path like \"event.properties.revenue\", found \"{other}\""),
                    );
                    None
                }
                Err(m) => {
                    errors.push(r.path("of"), m);
                    None
                }
            },
            other => {
                errors.push(r.path("of"), format!("expected an event path, found {}", describe(other)));
                None
            }
        });
        if let Some(agg) = aggregate {
            if agg.needs_value() && r.get("of").is_none() {
                errors.push(
                    r.path("of"),
                    format!("aggregate \"{}\" needs the value to aggregate, e.g. of: event.properties.revenue", agg.as_str()),
                );
            }
        }
        let window = r.required("window", &mut errors).and_then(|v| {
            let parsed = match v {
                Value::String(s) if s == "lifetime" => Some(Window::Lifetime),
                Value::String(s) => Span::parse(s)
                    .filter(|span| span.seconds() % 86_400 == 0)
                    .and_then(|span| u32::try_from(span.seconds() / 86_400).ok())
                    .filter(|d| (1..=MAX_WINDOW_DAYS).contains(d))
                    .map(Window::Days),
                Value::Number(n) => n
                    .as_u64()
                    .and_then(|d| u32::try_from(d).ok())
                    .filter(|d| (1..=MAX_WINDOW_DAYS).contains(d))
                    .map(Window::Days),
                _ => None,
            };
            if parsed.is_none() {
                errors.push(
                    r.path("window"),
                    format!(
                        "expected whole days like \"30d\" (1 to {MAX_WINDOW_DAYS}) or \"lifetime\", found {}",
                        describe(v)
                    ),
                );
            }
            parsed
        });
        match (name, aggregate, events, window) {
            (Some(name), Some(aggregate), Some(events), Some(window)) if errors.is_empty() => {
                Ok(Self {
                    name,
                    description,
                    aggregate,
                    events,
                    sources,
                    brands,
                    filter,
                    of,
                    window,
                })
            }
            _ => Err(errors),
        }
    }

    pub fn from_yaml_str(text: &str) -> Result<Self, ValidationErrors> {
        Self::from_value_at(&parse_yaml(text)?, "")
    }

    pub fn from_json_str(text: &str) -> Result<Self, ValidationErrors> {
        Self::from_value_at(&parse_json(text)?, "")
    }

    /// The canonical JSON structure (what the content hash is computed over).
    pub fn to_value(&self) -> Value {
        let mut m = Map::new();
        let strings = |v: &[String]| Value::Array(v.iter().cloned().map(Value::String).collect());
        m.insert("name".into(), Value::String(self.name.clone()));
        if let Some(d) = &self.description {
            m.insert("description".into(), Value::String(d.clone()));
        }
        m.insert(
            "aggregate".into(),
            Value::String(self.aggregate.as_str().into()),
        );
        m.insert("events".into(), strings(&self.events));
        if !self.sources.is_empty() {
            m.insert("sources".into(), strings(&self.sources));
        }
        if !self.brands.is_empty() {
            m.insert("brands".into(), strings(&self.brands));
        }
        if let Some(f) = &self.filter {
            m.insert("where".into(), f.to_value());
        }
        if let Some(of) = &self.of {
            m.insert("of".into(), Value::String(of.to_string()));
        }
        let window = match self.window {
            Window::Lifetime => "lifetime".to_owned(),
            Window::Days(d) => format!("{d}d"),
        };
        m.insert("window".into(), Value::String(window));
        Value::Object(m)
    }

    /// Hash of the canonical form: equal definitions hash equally whatever their field order.
    pub fn content_hash(&self) -> u64 {
        content_hash(&self.to_value())
    }

    /// Validates the parts that need compiling and returns the evaluable trait.
    pub fn compile(&self) -> Result<ComputedTrait, ValidationErrors> {
        self.compile_at("")
    }

    pub(crate) fn compile_at(&self, at: &str) -> Result<ComputedTrait, ValidationErrors> {
        let filter = match &self.filter {
            None => None,
            Some(expr) => {
                let where_at = child(at, "where");
                let compiled = compile_at(expr, &Scope::event_filter(), &where_at)?;
                if compiled.is_time_dependent() {
                    return Err(ValidationErrors::single(
                        where_at,
                        "time-relative operators (within_last, more_than_ago, within_next, anniversary) are not allowed here: whether an event counts must not change as time passes",
                    ));
                }
                Some(compiled)
            }
        };
        let of = match &self.of {
            Some(Path::Event { field, rest }) => Some((field.clone(), rest.clone())),
            _ => None,
        };
        Ok(ComputedTrait {
            hash: self.content_hash(),
            def: self.clone(),
            filter,
            of,
        })
    }
}

impl Serialize for ComputedTraitDef {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_value().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for ComputedTraitDef {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Self::from_value_at(&value, "").map_err(serde::de::Error::custom)
    }
}

/// What applying one event did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Applied {
    /// The state was modified (persist it; ask `next_change_at` again).
    pub state_changed: bool,
    /// The value at `now` differs from before (re-evaluate dependent segments).
    pub value_changed: bool,
}

/// What one matching event contributes.
enum Contribution {
    Unit,
    Number(f64),
    /// For first/last: the value, or `None` when the value is the event's timestamp itself.
    Stamped(Option<Value>),
    Key(String),
}

/// A compiled, evaluable computed trait.
#[derive(Debug, Clone)]
pub struct ComputedTrait {
    def: ComputedTraitDef,
    filter: Option<Compiled>,
    of: Option<(String, Vec<String>)>,
    hash: u64,
}

impl ComputedTrait {
    pub fn definition(&self) -> &ComputedTraitDef {
        &self.def
    }

    pub fn name(&self) -> &str {
        &self.def.name
    }

    /// Content hash of the definition; stored with each state to detect stale states.
    pub fn hash(&self) -> u64 {
        self.hash
    }

    /// Whether the event passes the name, source, brand and `where` filters.
    pub fn matches(&self, event: &TraitEvent<'_>) -> bool {
        self.def.events.iter().any(|n| n == event.name)
            && (self.def.sources.is_empty() || self.def.sources.iter().any(|s| s == event.source))
            && (self.def.brands.is_empty() || self.def.brands.iter().any(|b| b == event.brand))
            // `where` has no time-relative operators (rejected at compile), so `now` is irrelevant.
            && self
                .filter
                .as_ref()
                .is_none_or(|f| f.evaluate(event, event.timestamp))
    }

    fn contribution(&self, event: &TraitEvent<'_>) -> Option<Contribution> {
        let value = match &self.of {
            None => return Some(Contribution::Unit),
            Some((field, rest)) => event.value_at(field, rest),
        };
        let value = value.filter(|v| !matches!(v.as_ref(), Value::Null) && v.as_ref() != "")?;
        Some(match self.def.aggregate {
            Aggregate::Count | Aggregate::Exists => Contribution::Unit,
            Aggregate::Sum | Aggregate::Min | Aggregate::Max => {
                Contribution::Number(match value.as_ref() {
                    Value::Number(n) => n.as_f64()?,
                    Value::String(s) => parse_decimal(s)?,
                    _ => return None,
                })
            }
            Aggregate::First | Aggregate::Last => {
                let is_timestamp =
                    matches!(&self.of, Some((f, rest)) if f == "timestamp" && rest.is_empty());
                Contribution::Stamped((!is_timestamp).then(|| value.into_owned()))
            }
            Aggregate::DistinctCount | Aggregate::MostFrequent => {
                Contribution::Key(match value.as_ref() {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    Value::Bool(b) => b.to_string(),
                    _ => return None,
                })
            }
        })
    }

    fn window_days(&self) -> Option<i32> {
        match self.def.window {
            Window::Lifetime => None,
            Window::Days(d) => i32::try_from(d).ok(),
        }
    }

    /// Whether a bucket of `day` counts at `today`.
    fn in_window(&self, day: i32, today: i32) -> bool {
        match self.window_days() {
            None => true,
            // No upper bound: events dated in the future (clock skew) count from arrival.
            Some(n) => day >= today.saturating_sub(n),
        }
    }

    /// Applies one event (in any order: late events with old timestamps are fine). Events that
    /// do not match, lack the aggregated value, or are too old to ever count again are ignored.
    pub fn apply(
        &self,
        state: &mut TraitState,
        event: &TraitEvent<'_>,
        now: DateTime<Utc>,
    ) -> Applied {
        if !self.matches(event) {
            return Applied::default();
        }
        let Some(contribution) = self.contribution(event) else {
            return Applied::default();
        };
        let day = day_of(event.timestamp);
        if let Some(n) = self.window_days() {
            if day < day_of(now).saturating_sub(n) {
                return Applied::default();
            }
        }
        let before = self.value(state, now);
        self.insert(state, day, event.timestamp, contribution);
        self.prune(state, now);
        let after = self.value(state, now);
        Applied {
            state_changed: true,
            value_changed: before != after,
        }
    }

    fn insert(
        &self,
        state: &mut TraitState,
        day: i32,
        at: DateTime<Utc>,
        contribution: Contribution,
    ) {
        let bucket_day = if self.window_days().is_some() {
            day
        } else {
            LIFETIME_BUCKET
        };
        let stamp = |v| Stamped::new(at, v);
        let acc = match (self.def.aggregate, contribution) {
            (Aggregate::DistinctCount, Contribution::Key(key)) => {
                state.add_distinct(key, day);
                return;
            }
            (Aggregate::Count, _) => Acc::Count(1),
            (Aggregate::Exists, _) => Acc::Seen,
            (Aggregate::Sum, Contribution::Number(n)) => Acc::Sum(to_micros(n)),
            (Aggregate::Min, Contribution::Number(n)) => Acc::Min(n),
            (Aggregate::Max, Contribution::Number(n)) => Acc::Max(n),
            (Aggregate::First, Contribution::Stamped(v)) => Acc::First(stamp(v)),
            (Aggregate::Last, Contribution::Stamped(v)) => Acc::Last(stamp(v)),
            (Aggregate::MostFrequent, Contribution::Key(key)) => {
                state.add_frequent_capped(&key, bucket_day);
                return;
            }
            _ => return,
        };
        state.add_to_bucket(bucket_day, acc);
    }

    /// Drops buckets that can never count again at or after `now`.
    pub fn prune(&self, state: &mut TraitState, now: DateTime<Utc>) {
        if let Some(n) = self.window_days() {
            state.drop_before(day_of(now).saturating_sub(n));
        }
    }

    /// The value at `now`. `count`, `sum`, `distinct_count` and `exists` always have one
    /// (0 / false when nothing counted); the others are `None` without data.
    pub fn value(&self, state: &TraitState, now: DateTime<Utc>) -> Option<Value> {
        let today = day_of(now);
        if self.def.aggregate == Aggregate::DistinctCount {
            let n = state
                .distinct()
                .iter()
                .filter(|(_, day)| self.in_window(*day, today))
                .count();
            return Some(Value::from(n));
        }
        let live = state
            .buckets()
            .iter()
            .filter(|(day, _)| *day == LIFETIME_BUCKET || self.in_window(*day, today))
            .map(|(_, acc)| acc);
        match self.def.aggregate {
            Aggregate::Count => Some(Value::from(
                live.map(|a| if let Acc::Count(n) = a { *n } else { 0 })
                    .sum::<u64>(),
            )),
            Aggregate::Sum => {
                let micros = live
                    .map(|a| if let Acc::Sum(m) = a { *m } else { 0 })
                    .fold(0i64, i64::saturating_add);
                Some(number_value(micros as f64 / MICROS))
            }
            Aggregate::Min => live
                .filter_map(|a| if let Acc::Min(v) = a { Some(*v) } else { None })
                .reduce(f64::min)
                .map(number_value),
            Aggregate::Max => live
                .filter_map(|a| if let Acc::Max(v) = a { Some(*v) } else { None })
                .reduce(f64::max)
                .map(number_value),
            Aggregate::First => live
                .filter_map(|a| if let Acc::First(s) = a { Some(s) } else { None })
                .min_by(|a, b| a.order(b))
                .map(Stamped::value),
            Aggregate::Last => live
                .filter_map(|a| if let Acc::Last(s) = a { Some(s) } else { None })
                .max_by(|a, b| a.order(b))
                .map(Stamped::value),
            Aggregate::Exists => Some(Value::Bool(live.count() > 0)),
            Aggregate::MostFrequent => {
                let totals = state.frequent().iter().map(|(key, days)| {
                    let total: u64 = days
                        .iter()
                        .filter(|(day, _)| *day == LIFETIME_BUCKET || self.in_window(*day, today))
                        .map(|(_, n)| u64::from(*n))
                        .sum();
                    (key.as_str(), total)
                });
                most_frequent(totals)
            }
            Aggregate::DistinctCount => None,
        }
    }

    /// The first instant after `now` at which the value changes through time alone (an event
    /// ageing out of the window). Exact, not an estimate. Values only change at the UTC
    /// midnight when a day leaves the window, so only those instants are examined.
    pub fn next_change_at(&self, state: &TraitState, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let n = self.window_days()?;
        let oldest = day_of(now).saturating_sub(n);
        let leave = |day: i32| day_start(day.saturating_add(n + 1));
        match self.def.aggregate {
            // Every value leaving lowers the count.
            Aggregate::DistinctCount => state
                .distinct()
                .iter()
                .map(|(_, day)| *day)
                .filter(|day| *day >= oldest)
                .min()
                .and_then(leave),
            Aggregate::MostFrequent => self
                .next_frequent_change(state, now, oldest)
                .and_then(leave),
            _ => {
                // Buckets are sorted by day: once bucket i has left, buckets i+1.. remain. One
                // backward pass gives the value of every such suffix.
                let live: Vec<&(i32, Acc)> = state
                    .buckets()
                    .iter()
                    .filter(|(d, _)| *d >= oldest)
                    .collect();
                let current = self.value(state, now);
                let mut after_leaving: Vec<Option<Value>> = vec![None; live.len()];
                let mut suffix: Option<Acc> = None;
                for i in (0..live.len()).rev() {
                    after_leaving[i] = self.acc_value(suffix.as_ref());
                    match suffix.as_mut() {
                        Some(acc) => acc.merge(&live[i].1),
                        None => suffix = Some(live[i].1.clone()),
                    }
                }
                live.iter()
                    .zip(after_leaving)
                    .find(|(_, value)| *value != current)
                    .and_then(|((day, _), _)| leave(*day))
            }
        }
    }

    /// The value of a bucketed aggregate from its combined accumulator (`None`: no buckets).
    fn acc_value(&self, acc: Option<&Acc>) -> Option<Value> {
        match (self.def.aggregate, acc) {
            (Aggregate::Count, None) => Some(Value::from(0)),
            (Aggregate::Sum, None) => Some(Value::from(0)),
            (Aggregate::Exists, None) => Some(Value::Bool(false)),
            (Aggregate::Exists, Some(_)) => Some(Value::Bool(true)),
            (_, None) => None,
            (_, Some(Acc::Count(n))) => Some(Value::from(*n)),
            (_, Some(Acc::Sum(m))) => Some(number_value(*m as f64 / MICROS)),
            (_, Some(Acc::Min(v) | Acc::Max(v))) => Some(number_value(*v)),
            (_, Some(Acc::First(s) | Acc::Last(s))) => Some(s.value()),
            (_, Some(Acc::Seen)) => Some(Value::Bool(true)),
        }
    }

    /// The day whose leaving first changes the most frequent value: sweep the leave days in
    /// order, taking counts away.
    fn next_frequent_change(
        &self,
        state: &TraitState,
        now: DateTime<Utc>,
        oldest: i32,
    ) -> Option<i32> {
        let mut totals: Vec<(&str, u64)> = Vec::with_capacity(state.frequent().len());
        let mut leaving: Vec<(i32, usize, u32)> = Vec::new();
        for (i, (key, days)) in state.frequent().iter().enumerate() {
            let mut total = 0;
            for (day, count) in days.iter().filter(|(d, _)| *d >= oldest) {
                total += u64::from(*count);
                leaving.push((*day, i, *count));
            }
            totals.push((key.as_str(), total));
        }
        leaving.sort_unstable();
        let current = self.value(state, now);
        let mut k = 0;
        while k < leaving.len() {
            let day = leaving[k].0;
            while k < leaving.len() && leaving[k].0 == day {
                let (_, i, count) = leaving[k];
                totals[i].1 -= u64::from(count);
                k += 1;
            }
            if most_frequent(totals.iter().copied()) != current {
                return Some(day);
            }
        }
        None
    }

    /// The state from scratch, from a profile's events (any order), as of `now`; used after a
    /// definition change and after a profile unmerge.
    pub fn recompute<'e, I>(&self, events: I, now: DateTime<Utc>) -> TraitState
    where
        I: IntoIterator<Item = TraitEvent<'e>>,
    {
        let mut state = TraitState::default();
        let oldest = self.window_days().map(|n| day_of(now).saturating_sub(n));
        for event in events {
            if !self.matches(&event) {
                continue;
            }
            let Some(contribution) = self.contribution(&event) else {
                continue;
            };
            let day = day_of(event.timestamp);
            if oldest.is_some_and(|o| day < o) {
                continue;
            }
            self.insert(&mut state, day, event.timestamp, contribution);
        }
        self.prune(&mut state, now);
        state
    }

    /// Notes on approximation, for documentation and the CLI.
    pub fn caps_note(&self) -> Option<String> {
        match self.def.aggregate {
            Aggregate::DistinctCount => Some(format!(
                "exact up to {DISTINCT_CAP} distinct values, then saturates"
            )),
            _ => None,
        }
    }
}

impl PartialEq for ComputedTrait {
    fn eq(&self, other: &Self) -> bool {
        self.hash == other.hash && self.def == other.def
    }
}

/// The value with the highest positive count; ties go to the alphabetically first value.
fn most_frequent<'k>(totals: impl Iterator<Item = (&'k str, u64)>) -> Option<Value> {
    totals
        .filter(|(_, n)| *n > 0)
        .max_by(|a, b| a.1.cmp(&b.1).then_with(|| b.0.cmp(a.0)))
        .map(|(k, _)| Value::String(k.to_owned()))
}

/// Sums are kept in integer micro-units so that merging is exact and order-independent.
const MICROS: f64 = 1_000_000.0;

fn to_micros(n: f64) -> i64 {
    // `as` saturates on overflow and maps NaN to 0, which is what we want for garbage input.
    (n * MICROS).round() as i64
}
