//! Micro-benchmark (not a test): per-event incremental cost with 20 computed traits and 20
//! segments, full recompute of one segment over N profiles, and state size per profile.
//!
//! Run in release: `cargo run --release -p kreislauf-segments --example bench [profiles]`.
//! The only module that reads a clock (to measure), and only when `run` is called.

use std::collections::BTreeSet;
use std::fmt;
use std::hint::black_box;
use std::time::Instant;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use serde_json::{json, Value};

use kreislauf_expr::{IdentityKind, StaticFacts};

use crate::event::TraitEvent;
use crate::registry::SegmentRegistry;
use crate::schedule;
use crate::segment::Definitions;
use crate::state::TraitState;
use crate::traits::{ComputedTraitRegistry, ProfileTraitStates, WithComputed};

/// Benchmark sizes.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    /// Profiles in the incremental benchmark.
    pub profiles: usize,
    /// History per profile (spread over the last 120 days).
    pub events_per_profile: usize,
    /// Events measured in the incremental benchmark.
    pub incremental_events: usize,
    /// Profiles in the full-recompute benchmark.
    pub recompute_profiles: usize,
    pub seed: u64,
}

impl Default for BenchConfig {
    fn default() -> Self {
        Self {
            profiles: 2_000,
            events_per_profile: 40,
            incremental_events: 100_000,
            recompute_profiles: 20_000,
            seed: 42,
        }
    }
}

/// The measurements.
#[derive(Debug, Clone)]
pub struct BenchReport {
    pub computed_traits: usize,
    pub segments: usize,
    /// Mean cost of one event: apply to the matching computed traits + re-evaluate affected segments.
    pub event_ns_affected: f64,
    /// Mean cost of one event when all 20 segments are re-evaluated after it (worst case).
    pub event_ns_all_segments: f64,
    /// Mean cost of an event whose name no computed trait listens to.
    pub event_ns_non_matching: f64,
    /// Mean cost of `next_reevaluation_at` for one profile.
    pub schedule_ns: f64,
    /// Full recompute of one segment reading a 30-day computed trait, per profile.
    pub recompute_ns_per_profile: f64,
    pub recompute_profiles: usize,
    pub recompute_events: usize,
    pub recompute_members: usize,
    /// Mean serialised (JSON) size of all 20 trait states of a profile.
    pub state_bytes_per_profile: f64,
    /// Mean serialised size per aggregate kind: `(trait name, bytes)`.
    pub state_bytes_by_trait: Vec<(String, f64)>,
}

impl fmt::Display for BenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "computed traits: {}, segments: {}",
            self.computed_traits, self.segments
        )?;
        writeln!(
            f,
            "per event, affected segments only: {:>9.0} ns",
            self.event_ns_affected
        )?;
        writeln!(
            f,
            "per event, all 20 segments:        {:>9.0} ns",
            self.event_ns_all_segments
        )?;
        writeln!(
            f,
            "per event, matching no trait:      {:>9.0} ns",
            self.event_ns_non_matching
        )?;
        writeln!(
            f,
            "next_reevaluation_at per profile:  {:>9.0} ns",
            self.schedule_ns
        )?;
        writeln!(
            f,
            "full recompute, 1 segment + 30d trait: {:.0} ns/profile ({} profiles, {} events, {} members)",
            self.recompute_ns_per_profile, self.recompute_profiles, self.recompute_events, self.recompute_members
        )?;
        writeln!(
            f,
            "state per profile (JSON, 20 traits): {:.0} bytes",
            self.state_bytes_per_profile
        )?;
        for (name, bytes) in &self.state_bytes_by_trait {
            writeln!(f, "  {name:<28} {bytes:>7.1} bytes")?;
        }
        Ok(())
    }
}

/// xorshift64*: deterministic and dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// The 20 computed traits and 20 segments the benchmark uses.
pub const BENCH_DEFINITIONS: &str = r#"
computed_traits:
  - { name: orders_30d, aggregate: count, events: [Order Completed], window: 30d }
  - { name: orders_90d, aggregate: count, events: [Order Completed], window: 90d }
  - name: sparkling_purchases_30d
    aggregate: count
    events: [Order Completed]
    sources: [supermarket]
    where: { path: event.properties.category, eq: sparkling_wine }
    window: 30d
  - name: wine_purchases_lifetime
    aggregate: count
    events: [Order Completed]
    where: { path: event.properties.category, in: [wine, sparkling_wine] }
    window: lifetime
  - { name: lifetime_value_chf, aggregate: sum, of: event.properties.revenue, events: [Order Completed], window: lifetime }
  - { name: revenue_30d, aggregate: sum, of: event.properties.revenue, events: [Order Completed], window: 30d }
  - { name: max_order_chf, aggregate: max, of: event.properties.revenue, events: [Order Completed], window: lifetime }
  - { name: min_order_chf_90d, aggregate: min, of: event.properties.revenue, events: [Order Completed], window: 90d }
  - { name: first_purchase_at, aggregate: first, of: event.timestamp, events: [Order Completed], window: lifetime }
  - { name: last_purchase_at, aggregate: last, of: event.timestamp, events: [Order Completed], window: lifetime }
  - { name: favourite_category, aggregate: most_frequent, of: event.properties.category, events: [Order Completed], window: 90d }
  - { name: distinct_categories_90d, aggregate: distinct_count, of: event.properties.category, events: [Order Completed], window: 90d }
  - { name: product_views_7d, aggregate: count, events: [Product Viewed], window: 7d }
  - name: viewed_wine_30d
    aggregate: exists
    events: [Product Viewed]
    where: { path: event.properties.category, eq: wine }
    window: 30d
  - { name: mail_opens_30d, aggregate: count, events: [Email Opened], window: 30d }
  - name: wine_club_mail_opens
    aggregate: count
    events: [Email Opened]
    where: { path: event.properties.list, eq: wine_club }
    window: lifetime
  - { name: last_seen_at, aggregate: last, of: event.timestamp, events: [Order Completed, Product Viewed, Email Opened], window: lifetime }
  - { name: cart_adds_14d, aggregate: count, events: [Product Added], window: 14d }
  - { name: distinct_products_30d, aggregate: distinct_count, of: event.properties.sku, events: [Product Viewed], window: 30d }
  - { name: last_store, aggregate: last, of: event.properties.store, events: [Order Completed], window: lifetime }
segments:
  - id: sparkling-wine-club
    condition:
      all:
        - { path: computed.sparkling_purchases_30d, ge: 1 }
        - { path: consent.wine_club.email.marketing, eq: true }
  - id: zurich-loyal-500
    condition:
      all:
        - exists: identity.loyalty_card
        - { path: trait.city, eq: Zürich, ignore_case: true }
        - { path: computed.lifetime_value_chf, gt: 500 }
  - { id: lapsed-60d, condition: { path: computed.last_purchase_at, more_than_ago: 60d } }
  - id: wine-mail-no-wine
    condition:
      all:
        - { path: computed.wine_club_mail_opens, ge: 1 }
        - not: { path: computed.wine_purchases_lifetime, ge: 1 }
  - { id: birthday-today, condition: { path: trait.birthday, anniversary: today } }
  - { id: active-30d, condition: { path: computed.orders_30d, ge: 1 } }
  - { id: frequent-90d, condition: { path: computed.orders_90d, ge: 5 } }
  - { id: big-spender-30d, condition: { path: computed.revenue_30d, gt: 300 } }
  - { id: big-basket, condition: { path: computed.max_order_chf, ge: 200 } }
  - { id: wine-lover, condition: { path: computed.favourite_category, in: [wine, sparkling_wine] } }
  - { id: explorer, condition: { path: computed.distinct_categories_90d, ge: 3 } }
  - { id: browsing, condition: { path: computed.product_views_7d, ge: 3 } }
  - id: wine-browser-not-buyer
    condition:
      all:
        - { path: computed.viewed_wine_30d, eq: true }
        - not: { in_segment: active-30d }
  - { id: mail-engaged, condition: { path: computed.mail_opens_30d, ge: 2 } }
  - { id: seen-recently, condition: { path: computed.last_seen_at, within_last: 14d } }
  - { id: cart-abandoner, condition: { all: [ { path: computed.cart_adds_14d, ge: 1 }, { not: { in_segment: active-30d } } ] } }
  - { id: catalogue-surfer, condition: { path: computed.distinct_products_30d, ge: 10 } }
  - { id: zurich-store, condition: { path: computed.last_store, starts_with: "ZH-" } }
  - { id: new-customer, condition: { path: computed.first_purchase_at, within_last: 30d } }
  - id: vip
    condition:
      any:
        - in_segment: zurich-loyal-500
        - all: [ { in_segment: frequent-90d }, { in_segment: big-spender-30d } ]
"#;

const CATEGORIES: [&str; 8] = [
    "wine",
    "sparkling_wine",
    "cheese",
    "bread",
    "coffee",
    "chocolate",
    "beer",
    "fruit",
];
const STORES: [&str; 4] = ["ZH-01", "ZH-02", "BE-01", "GE-03"];

struct SyntheticEvent {
    name: &'static str,
    source: &'static str,
    timestamp: DateTime<Utc>,
    properties: Value,
}

impl SyntheticEvent {
    fn view(&self) -> TraitEvent<'_> {
        TraitEvent {
            name: self.name,
            source: self.source,
            brand: self.source,
            timestamp: self.timestamp,
            properties: Some(&self.properties),
            context: None,
        }
    }
}

fn synthetic_event(rng: &mut Rng, at: DateTime<Utc>) -> SyntheticEvent {
    let roll = rng.below(100);
    let source = if rng.below(3) == 0 {
        "online"
    } else {
        "supermarket"
    };
    let (name, properties) = match roll {
        0..=29 => (
            "Order Completed",
            json!({
                "category": rng.pick(&CATEGORIES),
                "revenue": (rng.below(30_000) as f64) / 100.0,
                "store": rng.pick(&STORES),
            }),
        ),
        30..=69 => (
            "Product Viewed",
            json!({"category": rng.pick(&CATEGORIES), "sku": format!("SKU-{}", rng.below(200))}),
        ),
        70..=84 => (
            "Email Opened",
            json!({"list": if rng.below(2) == 0 { "wine_club" } else { "newsletter" }}),
        ),
        85..=94 => (
            "Product Added",
            json!({"sku": format!("SKU-{}", rng.below(200))}),
        ),
        _ => ("Page Viewed", json!({"path": "/"})),
    };
    SyntheticEvent {
        name,
        source,
        timestamp: at,
        properties,
    }
}

fn profile_facts(rng: &mut Rng) -> StaticFacts {
    let mut f = StaticFacts::new()
        .with_trait(
            "city",
            json!(*rng.pick(&["Zürich", "ZURICH", "Bern", "Basel", "Zuerich"])),
        )
        .with_trait(
            "birthday",
            json!(format!(
                "{}.{}.19{}",
                1 + rng.below(28),
                1 + rng.below(12),
                50 + rng.below(50)
            )),
        )
        .with_consent("wine_club", "email", "marketing", rng.below(2) == 0)
        .with_timezone(chrono_tz::Europe::Zurich);
    if rng.below(2) == 0 {
        f = f.with_identity(
            IdentityKind::LoyaltyCard,
            &format!("2{:012}", rng.next() % 1_000_000_000_000),
        );
    }
    f
}

fn history(rng: &mut Rng, n: usize, now: DateTime<Utc>) -> Vec<SyntheticEvent> {
    (0..n)
        .map(|_| {
            let age = TimeDelta::seconds((rng.next() % (120 * 86_400)) as i64);
            synthetic_event(rng, now - age)
        })
        .collect()
}

fn per(nanos: u128, count: usize) -> f64 {
    nanos as f64 / count.max(1) as f64
}

/// Runs the benchmark. Panics only if the built-in definitions are invalid (a programming
/// error, covered by tests).
pub fn run(config: &BenchConfig) -> BenchReport {
    let doc = Definitions::from_yaml_str(BENCH_DEFINITIONS)
        .unwrap_or_else(|e| panic!("bench definitions: {e}"));
    let mut traits = ComputedTraitRegistry::new();
    traits
        .apply_all(doc.computed_traits)
        .unwrap_or_else(|e| panic!("bench traits: {e}"));
    let mut segments = SegmentRegistry::new();
    segments
        .apply_all(doc.segments, &traits)
        .unwrap_or_else(|e| panic!("bench segments: {e}"));

    let mut rng = Rng(config.seed | 1);
    let start = Utc
        .with_ymd_and_hms(2024, 6, 1, 8, 0, 0)
        .single()
        .unwrap_or_default();

    // Warm-up: build each profile's states from its history.
    struct Profile {
        facts: StaticFacts,
        states: ProfileTraitStates,
        members: BTreeSet<String>,
    }
    let mut profiles: Vec<Profile> = (0..config.profiles.max(1))
        .map(|_| {
            let facts = profile_facts(&mut rng);
            let events = history(&mut rng, config.events_per_profile, start);
            let mut states = ProfileTraitStates::default();
            for t in traits.iter() {
                if let Some(s) =
                    traits.recompute(t.name(), events.iter().map(SyntheticEvent::view), start)
                {
                    if !s.state.is_empty() {
                        states.by_name.insert(t.name().to_owned(), s);
                    }
                }
            }
            let with = WithComputed {
                base: &facts,
                registry: &traits,
                states: &states,
                now: start,
            };
            let members = segments.evaluate(&with, start, &BTreeSet::new()).members;
            Profile {
                facts,
                states,
                members,
            }
        })
        .collect();

    // State sizes.
    let mut total_bytes = 0usize;
    let mut by_trait: Vec<(String, usize)> =
        traits.iter().map(|t| (t.name().to_owned(), 0)).collect();
    for p in &profiles {
        total_bytes += serde_json::to_vec(&p.states).map_or(0, |v| v.len());
        for (name, bytes) in by_trait.iter_mut() {
            let empty = TraitState::default();
            let state = p.states.get(name).map_or(&empty, |s| &s.state);
            *bytes += serde_json::to_vec(state).map_or(0, |v| v.len());
        }
    }
    let n_profiles = profiles.len();

    // Incremental: events arrive in time order, spread over profiles.
    let events: Vec<(usize, SyntheticEvent)> = (0..config.incremental_events)
        .map(|i| {
            let at = start + TimeDelta::seconds(i as i64 * 7);
            (rng.below(n_profiles), synthetic_event(&mut rng, at))
        })
        .collect();
    let began = Instant::now();
    for (who, e) in &events {
        let p = &mut profiles[*who];
        let pass = schedule::on_event(
            &segments,
            &traits,
            &mut p.states,
            &p.members,
            &p.facts,
            &e.view(),
            e.timestamp,
        );
        if let Some(update) = pass.membership {
            p.members = update.members;
        }
    }
    let event_ns_affected = per(began.elapsed().as_nanos(), events.len());

    let began = Instant::now();
    for (who, e) in &events {
        let p = &mut profiles[*who];
        let now = e.timestamp;
        traits.apply_event(&mut p.states, &e.view(), now);
        let with = WithComputed {
            base: &p.facts,
            registry: &traits,
            states: &p.states,
            now,
        };
        p.members = segments.evaluate(&with, now, &p.members).members;
    }
    let event_ns_all_segments = per(began.elapsed().as_nanos(), events.len());

    let page_view = SyntheticEvent {
        name: "Page Viewed",
        source: "online",
        timestamp: start,
        properties: json!({"path": "/"}),
    };
    let began = Instant::now();
    for i in 0..events.len() {
        let p = &mut profiles[i % n_profiles];
        let pass = schedule::on_event(
            &segments,
            &traits,
            &mut p.states,
            &p.members,
            &p.facts,
            &page_view.view(),
            start,
        );
        black_box(pass);
    }
    let event_ns_non_matching = per(began.elapsed().as_nanos(), events.len());

    let end = events.last().map_or(start, |(_, e)| e.timestamp);
    let began = Instant::now();
    for p in &profiles {
        black_box(schedule::next_reevaluation_at(
            &segments, &traits, &p.states, &p.members, &p.facts, end,
        ));
    }
    let schedule_ns = per(began.elapsed().as_nanos(), n_profiles);

    // Full recompute of one segment with a windowed computed trait over N profiles.
    let recompute_histories: Vec<(StaticFacts, Vec<SyntheticEvent>)> = (0..config
        .recompute_profiles)
        .map(|_| {
            (
                profile_facts(&mut rng),
                history(&mut rng, config.events_per_profile, start),
            )
        })
        .collect();
    let segment = segments.compiled("sparkling-wine-club");
    let sparkling = traits.get("sparkling_purchases_30d");
    let mut recompute_members = 0;
    let began = Instant::now();
    if let (Some(segment), Some(sparkling)) = (segment, sparkling) {
        for (facts, events) in &recompute_histories {
            let mut states = ProfileTraitStates::default();
            let state = sparkling.recompute(events.iter().map(SyntheticEvent::view), start);
            states.by_name.insert(
                sparkling.name().to_owned(),
                crate::traits::VersionedState {
                    definition_hash: sparkling.hash(),
                    state,
                },
            );
            let with = WithComputed {
                base: facts,
                registry: &traits,
                states: &states,
                now: start,
            };
            if segment.evaluate(&with, start) {
                recompute_members += 1;
            }
        }
    }
    let recompute_ns_per_profile = per(began.elapsed().as_nanos(), recompute_histories.len());

    BenchReport {
        computed_traits: traits.len(),
        segments: segments.len(),
        event_ns_affected,
        event_ns_all_segments,
        event_ns_non_matching,
        schedule_ns,
        recompute_ns_per_profile,
        recompute_profiles: recompute_histories.len(),
        recompute_events: recompute_histories.iter().map(|(_, e)| e.len()).sum(),
        recompute_members,
        state_bytes_per_profile: total_bytes as f64 / n_profiles as f64,
        state_bytes_by_trait: by_trait
            .into_iter()
            .map(|(n, b)| (n, b as f64 / n_profiles as f64))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiny_run_produces_a_plausible_report() {
        let report = run(&BenchConfig {
            profiles: 5,
            events_per_profile: 10,
            incremental_events: 200,
            recompute_profiles: 20,
            seed: 7,
        });
        assert_eq!(report.computed_traits, 20);
        assert_eq!(report.segments, 20);
        assert_eq!(report.recompute_events, 200);
        assert!(report.state_bytes_per_profile > 0.0);
        assert!(report.event_ns_affected > 0.0);
        assert_eq!(report.state_bytes_by_trait.len(), 20);
    }
}
