//! The issue's scenarios end to end: definitions in YAML, events, memberships, time passing.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use kreislauf_expr::{IdentityKind, StaticFacts};
use kreislauf_segments::{
    schedule, ComputedTraitRegistry, Definitions, ProfileTraitStates, SegmentRegistry, TraitEvent,
    WithComputed,
};
use serde_json::{json, Value};

fn at(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap()
}

const DEFINITIONS: &str = r#"
computed_traits:
  - name: sparkling_purchases_30d
    description: Sparkling-wine orders at the supermarket in the last 30 days
    aggregate: count
    events: [Order Completed]
    sources: [supermarket]
    where: { path: event.properties.category, eq: sparkling_wine }
    window: 30d
  - name: lifetime_value_chf
    aggregate: sum
    of: event.properties.revenue
    events: [Order Completed]
    window: lifetime
  - name: last_purchase_at
    aggregate: last
    of: event.timestamp
    events: [Order Completed]
    window: lifetime
  - name: wine_purchases
    aggregate: count
    events: [Order Completed]
    where: { path: event.properties.category, in: [wine, sparkling_wine] }
    window: lifetime
  - name: wine_club_mail_opens
    aggregate: count
    events: [Email Opened]
    where: { path: event.properties.list, eq: wine_club }
    window: lifetime
segments:
  - id: sparkling-wine-club
    name: Sparkling-wine buyers (30 days) with wine-club e-mail consent
    condition:
      all:
        - { path: computed.sparkling_purchases_30d, ge: 1 }
        - { path: consent.wine_club.email.marketing, eq: true }
  - id: zurich-loyal-500
    name: Loyalty-card holders in Zürich with a lifetime value over CHF 500
    condition:
      all:
        - exists: identity.loyalty_card
        - { path: trait.city, eq: Zürich, ignore_case: true }
        - { path: computed.lifetime_value_chf, gt: 500 }
  - id: lapsed-60d
    name: No purchase for 60 days
    condition: { path: computed.last_purchase_at, more_than_ago: 60d }
  - id: wine-mail-no-wine
    name: Opened a wine-club mail but never bought wine
    condition:
      all:
        - { path: computed.wine_club_mail_opens, ge: 1 }
        - not: { path: computed.wine_purchases, ge: 1 }
  - id: birthday-today
    name: Birthday today (customer's time zone)
    condition: { path: trait.birthday, anniversary: today }
"#;

struct World {
    traits: ComputedTraitRegistry,
    segments: SegmentRegistry,
}

fn world() -> World {
    let doc = Definitions::from_yaml_str(DEFINITIONS).unwrap();
    let mut traits = ComputedTraitRegistry::new();
    traits.apply_all(doc.computed_traits).unwrap();
    let mut segments = SegmentRegistry::new();
    segments.apply_all(doc.segments, &traits).unwrap();
    World { traits, segments }
}

struct Profile {
    facts: StaticFacts,
    states: ProfileTraitStates,
    members: BTreeSet<String>,
}

impl Profile {
    fn new(facts: StaticFacts) -> Self {
        Self {
            facts,
            states: ProfileTraitStates::default(),
            members: BTreeSet::new(),
        }
    }

    /// Returns (entered, exited) ids.
    fn event(
        &mut self,
        w: &World,
        name: &str,
        source: &str,
        props: Value,
        ts: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> (Vec<String>, Vec<String>) {
        let event = TraitEvent::new(name, source, source, ts).with_properties(&props);
        let pass = schedule::on_event(
            &w.segments,
            &w.traits,
            &mut self.states,
            &self.members,
            &self.facts,
            &event,
            now,
        );
        let Some(update) = pass.membership else {
            return (Vec::new(), Vec::new());
        };
        self.members = update.members.clone();
        ids(&update)
    }

    fn time_pass(&mut self, w: &World, now: DateTime<Utc>) -> (Vec<String>, Vec<String>) {
        let update = schedule::on_time(
            &w.segments,
            &w.traits,
            &mut self.states,
            &self.members,
            &self.facts,
            now,
        );
        self.members = update.members.clone();
        ids(&update)
    }

    fn next_wake(&self, w: &World, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        schedule::next_reevaluation_at(
            &w.segments,
            &w.traits,
            &self.states,
            &self.members,
            &self.facts,
            now,
        )
    }

    fn computed(&self, w: &World, name: &str, now: DateTime<Utc>) -> Option<Value> {
        w.traits.value(name, &self.states, now)
    }
}

fn ids(u: &kreislauf_segments::MembershipUpdate) -> (Vec<String>, Vec<String>) {
    (
        u.entered.iter().map(|c| c.id.clone()).collect(),
        u.exited.iter().map(|c| c.id.clone()).collect(),
    )
}

#[test]
fn sparkling_wine_buyers_enter_and_age_out_exactly() {
    let w = world();
    let mut p =
        Profile::new(StaticFacts::new().with_consent("wine_club", "email", "marketing", true));
    let bought = at(2024, 5, 10, 15, 0);

    // Not counted: wrong source, wrong category.
    let (entered, _) = p.event(
        &w,
        "Order Completed",
        "online",
        json!({"category": "sparkling_wine"}),
        bought,
        bought,
    );
    assert!(entered.is_empty());
    let (entered, _) = p.event(
        &w,
        "Order Completed",
        "supermarket",
        json!({"category": "wine"}),
        bought,
        bought,
    );
    assert!(entered.is_empty());
    assert_eq!(
        p.computed(&w, "sparkling_purchases_30d", bought),
        Some(json!(0))
    );

    let (entered, exited) = p.event(
        &w,
        "Order Completed",
        "supermarket",
        json!({"category": "sparkling_wine"}),
        bought,
        bought,
    );
    assert_eq!(entered, vec!["sparkling-wine-club"]);
    assert!(exited.is_empty());
    assert_eq!(
        p.computed(&w, "sparkling_purchases_30d", bought),
        Some(json!(1))
    );

    // The purchase counts until the first UTC midnight after 30 days: 10 June 00:00.
    let t = w.traits.get("sparkling_purchases_30d").unwrap();
    let ages_out = at(2024, 6, 10, 0, 0);
    assert_eq!(
        t.next_change_at(
            &p.states.get("sparkling_purchases_30d").unwrap().state,
            bought
        ),
        Some(ages_out)
    );
    assert_eq!(p.next_wake(&w, bought), Some(ages_out));
    assert_eq!(
        p.computed(
            &w,
            "sparkling_purchases_30d",
            ages_out - TimeDelta::seconds(1)
        ),
        Some(json!(1))
    );

    // 31 days later the value has dropped and the profile exits.
    let later = bought + TimeDelta::days(31);
    assert_eq!(
        p.computed(&w, "sparkling_purchases_30d", later),
        Some(json!(0))
    );
    let (entered, exited) = p.time_pass(&w, later);
    assert!(entered.is_empty());
    assert_eq!(exited, vec!["sparkling-wine-club"]);
    assert!(
        p.states
            .get("sparkling_purchases_30d")
            .unwrap()
            .state
            .is_empty(),
        "pruned"
    );
}

#[test]
fn consent_is_required_for_the_wine_club_segment() {
    let w = world();
    for facts in [
        StaticFacts::new(),
        StaticFacts::new().with_consent("wine_club", "email", "marketing", false),
    ] {
        let mut p = Profile::new(facts);
        let now = at(2024, 5, 10, 15, 0);
        let (entered, _) = p.event(
            &w,
            "Order Completed",
            "supermarket",
            json!({"category": "sparkling_wine"}),
            now,
            now,
        );
        assert!(!entered.contains(&"sparkling-wine-club".to_owned()));
    }
}

#[test]
fn late_event_enters_and_ages_out_on_its_own_timestamp() {
    let w = world();
    let mut p =
        Profile::new(StaticFacts::new().with_consent("wine_club", "email", "marketing", true));
    let now = at(2024, 5, 10, 15, 0);
    // Arrives now, happened 25 days ago: counts, and ages out 5-6 days from now.
    let (entered, _) = p.event(
        &w,
        "Order Completed",
        "supermarket",
        json!({"category": "sparkling_wine"}),
        now - TimeDelta::days(25),
        now,
    );
    assert_eq!(entered, vec!["sparkling-wine-club"]);
    assert_eq!(p.next_wake(&w, now), Some(at(2024, 5, 16, 0, 0)));
    // Happened 40 days ago: too old to count.
    let mut q = Profile::new(p.facts.clone());
    let (entered, _) = q.event(
        &w,
        "Order Completed",
        "supermarket",
        json!({"category": "sparkling_wine"}),
        now - TimeDelta::days(40),
        now,
    );
    assert!(entered.is_empty());
    assert!(q.states.get("sparkling_purchases_30d").is_none());
}

#[test]
fn loyalty_card_holders_in_zurich_over_chf_500() {
    let w = world();
    let facts = StaticFacts::new()
        .with_trait("city", json!("ZÜRICH"))
        .with_identity(IdentityKind::LoyaltyCard, "2000123456789");
    let mut p = Profile::new(facts.clone());
    let now = at(2024, 5, 10, 15, 0);
    let (entered, _) = p.event(
        &w,
        "Order Completed",
        "online",
        json!({"revenue": 300}),
        now,
        now,
    );
    assert!(!entered.contains(&"zurich-loyal-500".to_owned()));
    let (entered, _) = p.event(
        &w,
        "Order Completed",
        "supermarket",
        json!({"revenue": "250.50"}),
        now,
        now,
    );
    assert!(
        entered.contains(&"zurich-loyal-500".to_owned()),
        "{entered:?}"
    );
    assert_eq!(
        p.computed(&w, "lifetime_value_chf", now),
        Some(json!(550.5))
    );

    // Same purchases without a loyalty card, or in Bern: not a member.
    for facts in [
        StaticFacts::new().with_trait("city", json!("Zuerich")),
        StaticFacts::new()
            .with_trait("city", json!("Bern"))
            .with_identity(IdentityKind::LoyaltyCard, "1"),
    ] {
        let mut q = Profile::new(facts);
        q.event(
            &w,
            "Order Completed",
            "online",
            json!({"revenue": 300}),
            now,
            now,
        );
        let (entered, _) = q.event(
            &w,
            "Order Completed",
            "online",
            json!({"revenue": 250.5}),
            now,
            now,
        );
        assert!(!entered.contains(&"zurich-loyal-500".to_owned()));
    }
}

#[test]
fn no_purchase_for_60_days_is_scheduled_exactly() {
    let w = world();
    let mut p = Profile::new(StaticFacts::new());
    let bought = at(2024, 3, 1, 9, 30);
    p.event(
        &w,
        "Order Completed",
        "supermarket",
        json!({"category": "bread"}),
        bought,
        bought,
    );
    assert!(!p.members.contains("lapsed-60d"));
    assert_eq!(
        p.computed(&w, "last_purchase_at", bought),
        Some(json!("2024-03-01T09:30:00Z"))
    );

    let lapses = bought + TimeDelta::days(60);
    assert_eq!(p.next_wake(&w, bought), Some(lapses));
    let (entered, _) = p.time_pass(&w, lapses - TimeDelta::seconds(1));
    assert!(entered.is_empty());
    let (entered, _) = p.time_pass(&w, lapses);
    assert_eq!(entered, vec!["lapsed-60d"]);
    assert_eq!(
        p.next_wake(&w, lapses),
        None,
        "stays lapsed until the next purchase"
    );

    // A late event with an older timestamp does not reset the clock; a new purchase does.
    let now = lapses + TimeDelta::days(1);
    let (_, exited) = p.event(
        &w,
        "Order Completed",
        "supermarket",
        json!({}),
        bought - TimeDelta::days(3),
        now,
    );
    assert!(exited.is_empty());
    let (_, exited) = p.event(&w, "Order Completed", "supermarket", json!({}), now, now);
    assert_eq!(exited, vec!["lapsed-60d"]);
}

#[test]
fn opened_a_wine_club_mail_but_never_bought_wine() {
    let w = world();
    let mut p = Profile::new(StaticFacts::new());
    let now = at(2024, 5, 10, 15, 0);
    let (entered, _) = p.event(
        &w,
        "Email Opened",
        "newsletter",
        json!({"list": "newsletter"}),
        now,
        now,
    );
    assert!(entered.is_empty());
    let (entered, _) = p.event(
        &w,
        "Email Opened",
        "newsletter",
        json!({"list": "wine_club"}),
        now,
        now,
    );
    assert_eq!(entered, vec!["wine-mail-no-wine"]);
    let (_, exited) = p.event(
        &w,
        "Order Completed",
        "online",
        json!({"category": "wine"}),
        now,
        now,
    );
    assert_eq!(exited, vec!["wine-mail-no-wine"]);
}

#[test]
fn birthday_today_in_zurich_versus_utc_around_midnight() {
    let w = world();
    let now = at(2024, 12, 23, 23, 30); // 00:30 on 24 December in Zürich
    let utc = StaticFacts::new().with_trait("birthday", json!("24.12.1980"));
    let zurich = utc.clone().with_timezone(chrono_tz::Europe::Zurich);
    let states = ProfileTraitStates::default();
    let member = |facts: &StaticFacts, now| {
        let with = WithComputed {
            base: facts,
            registry: &w.traits,
            states: &states,
            now,
        };
        w.segments
            .evaluate(&with, now, &BTreeSet::new())
            .members
            .contains("birthday-today")
    };
    assert!(member(&zurich, now));
    assert!(!member(&utc, now));
    assert!(member(&utc, at(2024, 12, 24, 0, 0)));
    assert!(
        !member(&zurich, at(2024, 12, 24, 23, 0)),
        "25 December in Zürich"
    );

    let members = BTreeSet::from(["birthday-today".to_owned()]);
    let wake =
        schedule::next_reevaluation_at(&w.segments, &w.traits, &states, &members, &zurich, now);
    assert_eq!(wake, Some(at(2024, 12, 24, 23, 0)));
    let wake = schedule::next_reevaluation_at(
        &w.segments,
        &w.traits,
        &states,
        &BTreeSet::new(),
        &utc,
        now,
    );
    assert_eq!(wake, Some(at(2024, 12, 24, 0, 0)));
}
