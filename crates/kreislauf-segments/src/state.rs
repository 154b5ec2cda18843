//! The per-profile, per-trait state: compact, serialisable, mergeable.
//!
//! * Windowed traits keep one bucket per UTC day that had matching events, so a state holds at
//!   most `window + 1` buckets (plus any future-dated days); lifetime traits keep one bucket.
//! * `distinct_count` keeps each distinct value with the last UTC day it was seen (not per
//!   bucket), capped at [`DISTINCT_CAP`] values: exact up to the cap, then it saturates (the
//!   values seen longest ago are dropped first, as they would age out first).
//! * `most_frequent` keeps each value with its per-day counts (one entry for lifetime traits),
//!   capped at [`FREQUENT_CAP`] values (the least frequent is dropped beyond that).
//! * Sums are integers in micro-units (6 decimals), so merges are exact and order-independent.
//!
//! Serialised with short keys, e.g. a 30-day count with purchases on three days:
//! `{"b":[[19876,{"n":2}],[19880,{"n":1}],[19890,{"n":1}]]}`.

use std::cmp::Ordering;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use kreislauf_expr::literal::format_instant;

/// Distinct values kept per `distinct_count` state.
pub const DISTINCT_CAP: usize = 256;
/// Distinct values kept per `most_frequent` state.
pub const FREQUENT_CAP: usize = 64;
/// The bucket key of lifetime traits.
pub const LIFETIME_BUCKET: i32 = i32::MIN;

/// UTC day number (days since 1970-01-01).
pub fn day_of(t: DateTime<Utc>) -> i32 {
    let day = t.timestamp().div_euclid(86_400);
    i32::try_from(day).unwrap_or(if day < 0 { i32::MIN + 1 } else { i32::MAX })
}

/// Midnight UTC starting `day`.
pub fn day_start(day: i32) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(i64::from(day) * 86_400, 0)
}

/// An aggregated value with the instant of its event, for first/last.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stamped {
    /// Microseconds since the epoch.
    pub t: i64,
    /// The value; absent when the value is the event's timestamp itself (saves the bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub v: Option<Value>,
}

impl Stamped {
    pub fn new(at: DateTime<Utc>, v: Option<Value>) -> Self {
        Self {
            t: at.timestamp_micros(),
            v,
        }
    }

    /// By instant, then by value text: a total order, so merges pick the same winner as a
    /// single pass would, whatever the event order.
    pub fn order(&self, other: &Stamped) -> Ordering {
        self.t
            .cmp(&other.t)
            .then_with(|| self.key().cmp(&other.key()))
    }

    fn key(&self) -> String {
        self.v.as_ref().map(Value::to_string).unwrap_or_default()
    }

    pub fn value(&self) -> Value {
        match &self.v {
            Some(v) => v.clone(),
            None => DateTime::from_timestamp_micros(self.t)
                .map_or(Value::Null, |t| Value::String(format_instant(t))),
        }
    }
}

/// One bucket's accumulator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Acc {
    #[serde(rename = "n")]
    Count(u64),
    /// Micro-units.
    #[serde(rename = "s")]
    Sum(i64),
    #[serde(rename = "lo")]
    Min(f64),
    #[serde(rename = "hi")]
    Max(f64),
    #[serde(rename = "f")]
    First(Stamped),
    #[serde(rename = "l")]
    Last(Stamped),
    #[serde(rename = "e")]
    Seen,
}

impl Acc {
    /// Combines two accumulators of the same kind (a mismatch — only possible with a state
    /// from another definition — keeps `self`).
    pub(crate) fn merge(&mut self, other: &Acc) {
        match (self, other) {
            (Acc::Count(a), Acc::Count(b)) => *a = a.saturating_add(*b),
            (Acc::Sum(a), Acc::Sum(b)) => *a = a.saturating_add(*b),
            (Acc::Min(a), Acc::Min(b)) => *a = a.min(*b),
            (Acc::Max(a), Acc::Max(b)) => *a = a.max(*b),
            (Acc::First(a), Acc::First(b)) if b.order(a) == Ordering::Less => *a = b.clone(),
            (Acc::Last(a), Acc::Last(b)) if b.order(a) == Ordering::Greater => *a = b.clone(),
            (Acc::Seen, Acc::Seen) => {}
            _ => {}
        }
    }
}

/// The state of one computed trait for one profile.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TraitState {
    /// `(UTC day, accumulator)` sorted by day; lifetime traits use [`LIFETIME_BUCKET`].
    #[serde(rename = "b", default, skip_serializing_if = "Vec::is_empty")]
    buckets: Vec<(i32, Acc)>,
    /// `distinct_count`: `(value, last UTC day seen)` sorted by value.
    #[serde(rename = "d", default, skip_serializing_if = "Vec::is_empty")]
    distinct: Vec<(String, i32)>,
    /// `most_frequent`: `(value, [(UTC day, count)])` sorted by value, days ascending.
    #[serde(rename = "m", default, skip_serializing_if = "Vec::is_empty")]
    frequent: Vec<(String, Vec<(i32, u32)>)>,
    /// Whether values were dropped at a cap (the value is then no longer exact).
    #[serde(rename = "x", default, skip_serializing_if = "std::ops::Not::not")]
    saturated: bool,
}

impl TraitState {
    pub fn buckets(&self) -> &[(i32, Acc)] {
        &self.buckets
    }

    pub fn distinct(&self) -> &[(String, i32)] {
        &self.distinct
    }

    pub fn frequent(&self) -> &[(String, Vec<(i32, u32)>)] {
        &self.frequent
    }

    /// Whether a cap ([`DISTINCT_CAP`], [`FREQUENT_CAP`]) was hit: the value is no longer exact.
    pub fn is_saturated(&self) -> bool {
        self.saturated
    }

    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty() && self.distinct.is_empty() && self.frequent.is_empty()
    }

    pub(crate) fn add_frequent(&mut self, key: &str, day: i32, count: u32) {
        let i = match self.frequent.binary_search_by(|(k, _)| k.as_str().cmp(key)) {
            Ok(i) => i,
            Err(i) => {
                self.frequent.insert(i, (key.to_owned(), Vec::new()));
                i
            }
        };
        let days = &mut self.frequent[i].1;
        match days.binary_search_by(|(d, _)| d.cmp(&day)) {
            Ok(j) => days[j].1 = days[j].1.saturating_add(count),
            Err(j) => days.insert(j, (day, count)),
        }
    }

    fn enforce_frequent_cap(&mut self) {
        while self.frequent.len() > FREQUENT_CAP {
            let total = |days: &[(i32, u32)]| days.iter().map(|(_, n)| u64::from(*n)).sum::<u64>();
            // Drop the least frequent value (ties: the alphabetically last).
            let least = self
                .frequent
                .iter()
                .enumerate()
                .min_by(|(_, a), (_, b)| total(&a.1).cmp(&total(&b.1)).then_with(|| b.0.cmp(&a.0)))
                .map(|(i, _)| i);
            if let Some(i) = least {
                self.frequent.remove(i);
            }
            self.saturated = true;
        }
    }

    pub(crate) fn add_to_bucket(&mut self, day: i32, acc: Acc) {
        match self.buckets.binary_search_by(|(d, _)| d.cmp(&day)) {
            Ok(i) => self.buckets[i].1.merge(&acc),
            Err(i) => self.buckets.insert(i, (day, acc)),
        }
    }

    pub(crate) fn add_frequent_capped(&mut self, key: &str, day: i32) {
        self.add_frequent(key, day, 1);
        self.enforce_frequent_cap();
    }

    pub(crate) fn add_distinct(&mut self, key: String, day: i32) {
        match self
            .distinct
            .binary_search_by(|(k, _)| k.as_str().cmp(&key))
        {
            Ok(i) => self.distinct[i].1 = self.distinct[i].1.max(day),
            Err(i) => self.distinct.insert(i, (key, day)),
        }
        self.enforce_distinct_cap();
    }

    fn enforce_distinct_cap(&mut self) {
        while self.distinct.len() > DISTINCT_CAP {
            // Drop the value seen longest ago (ties: the alphabetically last).
            let oldest = self
                .distinct
                .iter()
                .enumerate()
                .min_by(|(_, a), (_, b)| a.1.cmp(&b.1).then_with(|| b.0.cmp(&a.0)))
                .map(|(i, _)| i);
            if let Some(i) = oldest {
                self.distinct.remove(i);
            }
            self.saturated = true;
        }
    }

    pub(crate) fn drop_before(&mut self, oldest_day: i32) {
        self.buckets
            .retain(|(d, _)| *d == LIFETIME_BUCKET || *d >= oldest_day);
        self.distinct.retain(|(_, d)| *d >= oldest_day);
        for (_, days) in self.frequent.iter_mut() {
            days.retain(|(d, _)| *d == LIFETIME_BUCKET || *d >= oldest_day);
        }
        self.frequent.retain(|(_, days)| !days.is_empty());
    }

    /// Merges another state of the same trait into this one (profile merge). Exact for every
    /// aggregate as long as the caps are not reached: the result equals the state built from
    /// the union of both event sets.
    pub fn merge(&mut self, other: &TraitState) {
        for (day, acc) in &other.buckets {
            self.add_to_bucket(*day, acc.clone());
        }
        for (key, day) in &other.distinct {
            match self.distinct.binary_search_by(|(k, _)| k.as_str().cmp(key)) {
                Ok(i) => self.distinct[i].1 = self.distinct[i].1.max(*day),
                Err(i) => self.distinct.insert(i, (key.clone(), *day)),
            }
        }
        for (key, days) in &other.frequent {
            for (day, n) in days {
                self.add_frequent(key, *day, *n);
            }
        }
        self.saturated |= other.saturated;
        self.enforce_distinct_cap();
        self.enforce_frequent_cap();
    }
}
