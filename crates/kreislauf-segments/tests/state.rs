//! Computed-trait state: aggregates, merge = union, incremental = recompute (late events too),
//! exact next-change instants, caps, serialisation.
#![allow(clippy::unwrap_used)]

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use kreislauf_segments::{
    ComputedTrait, ComputedTraitDef, ProfileTraitStates, TraitEvent, TraitState, VersionedState,
    DISTINCT_CAP,
};
use proptest::prelude::*;
use serde_json::{json, Value};

#[derive(Debug, Clone)]
struct Ev {
    name: &'static str,
    source: &'static str,
    ts: DateTime<Utc>,
    props: Value,
}

impl Ev {
    fn view(&self) -> TraitEvent<'_> {
        TraitEvent::new(self.name, self.source, "brand", self.ts).with_properties(&self.props)
    }
}

fn base() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 1, 0, 0, 0).unwrap()
}

const DEFS: [&str; 14] = [
    "{ name: c30, aggregate: count, events: [Order Completed], window: 30d }",
    "{ name: c_super, aggregate: count, events: [Order Completed], sources: [supermarket], where: { path: event.properties.category, eq: wine }, window: 3d }",
    "{ name: s30, aggregate: sum, of: event.properties.revenue, events: [Order Completed], window: 30d }",
    "{ name: sl, aggregate: sum, of: event.properties.revenue, events: [Order Completed], window: lifetime }",
    "{ name: min7, aggregate: min, of: event.properties.revenue, events: [Order Completed], window: 7d }",
    "{ name: maxl, aggregate: max, of: event.properties.revenue, events: [Order Completed], window: lifetime }",
    "{ name: first30, aggregate: first, of: event.properties.category, events: [Order Completed], window: 30d }",
    "{ name: last_at, aggregate: last, of: event.timestamp, events: [Order Completed], window: lifetime }",
    "{ name: last10, aggregate: last, of: event.properties.category, events: [Order Completed], window: 10d }",
    "{ name: d30, aggregate: distinct_count, of: event.properties.category, events: [Order Completed], window: 30d }",
    "{ name: dl, aggregate: distinct_count, of: event.properties.category, events: [Order Completed], window: lifetime }",
    "{ name: e7, aggregate: exists, events: [Order Completed], window: 7d }",
    "{ name: f30, aggregate: most_frequent, of: event.properties.category, events: [Order Completed], window: 30d }",
    "{ name: fl, aggregate: most_frequent, of: event.properties.category, events: [Order Completed], window: lifetime }",
];

fn all_traits() -> Vec<ComputedTrait> {
    DEFS.iter()
        .map(|y| {
            ComputedTraitDef::from_yaml_str(y)
                .unwrap()
                .compile()
                .unwrap()
        })
        .collect()
}

fn event() -> impl Strategy<Value = Ev> {
    (
        prop_oneof![4 => Just("Order Completed"), 1 => Just("Product Viewed")],
        prop_oneof![Just("supermarket"), Just("online")],
        // Minutes within ±60 days, coarse enough to produce equal timestamps.
        (-60i64 * 24..40 * 24).prop_map(|h| base() + TimeDelta::hours(h)),
        proptest::sample::select(vec!["wine", "cheese", "bread", "beer", "coffee"]),
        prop_oneof![
            (0i64..100_000).prop_map(|c| json!(c as f64 / 100.0)),
            (0i64..1000).prop_map(|c| json!(format!("{c}.5"))),
            Just(json!("n/a")),
            Just(Value::Null),
        ],
    )
        .prop_map(|(name, source, ts, category, revenue)| Ev {
            name,
            source,
            ts,
            props: json!({"category": category, "revenue": revenue}),
        })
}

fn now_strategy() -> impl Strategy<Value = DateTime<Utc>> {
    (0i64..45 * 24 * 60).prop_map(|m| base() + TimeDelta::minutes(m))
}

fn recompute(t: &ComputedTrait, events: &[Ev], now: DateTime<Utc>) -> TraitState {
    t.recompute(events.iter().map(Ev::view), now)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Profile merge: merging the states of two event sets equals the state of their union.
    #[test]
    fn merge_equals_union(a in proptest::collection::vec(event(), 0..25), b in proptest::collection::vec(event(), 0..25), now in now_strategy()) {
        for t in all_traits() {
            let mut merged = recompute(&t, &a, now);
            merged.merge(&recompute(&t, &b, now));
            let union: Vec<Ev> = a.iter().chain(&b).cloned().collect();
            let expected = recompute(&t, &union, now);
            prop_assert_eq!(&merged, &expected, "{}", t.name());
            prop_assert_eq!(t.value(&merged, now), t.value(&expected, now));
        }
    }

    /// Events arriving late and out of order, applied one by one as time passes, give the same
    /// state and value as a recompute from the full history.
    #[test]
    fn incremental_equals_recompute(
        events in proptest::collection::vec(event(), 0..40),
        mut arrivals in proptest::collection::vec(0i64..45 * 24 * 60, 40),
    ) {
        arrivals.sort_unstable();
        let arrival = |i: usize| base() + TimeDelta::minutes(arrivals[i]);
        let final_now = events.len().checked_sub(1).map_or(base(), arrival);
        for t in all_traits() {
            let mut state = TraitState::default();
            for (i, e) in events.iter().enumerate() {
                let before = t.value(&state, arrival(i));
                let applied = t.apply(&mut state, &e.view(), arrival(i));
                prop_assert_eq!(applied.value_changed, before != t.value(&state, arrival(i)));
            }
            t.prune(&mut state, final_now);
            let expected = recompute(&t, &events, final_now);
            prop_assert_eq!(&state, &expected, "{}", t.name());
            prop_assert_eq!(t.value(&state, final_now), t.value(&expected, final_now));
        }
    }

    /// Order does not matter (late events are just events).
    #[test]
    fn recompute_is_order_independent(events in proptest::collection::vec(event(), 0..30), now in now_strategy()) {
        let mut reversed = events.clone();
        reversed.reverse();
        for t in all_traits() {
            prop_assert_eq!(recompute(&t, &events, now), recompute(&t, &reversed, now), "{}", t.name());
        }
    }

    /// `next_change_at` is exact: the value holds until then and differs from then on; `None`
    /// means it never changes through time alone.
    #[test]
    fn next_change_at_is_exact(events in proptest::collection::vec(event(), 0..25), now in now_strategy()) {
        for t in all_traits() {
            let state = recompute(&t, &events, now);
            let value = t.value(&state, now);
            match t.next_change_at(&state, now) {
                Some(at) => {
                    prop_assert!(at > now);
                    prop_assert_eq!(t.value(&state, at - TimeDelta::nanoseconds(1)), value.clone(), "{} before {}", t.name(), at);
                    prop_assert_ne!(t.value(&state, at), value.clone(), "{} at {}", t.name(), at);
                    // Nothing in between either (values only change at UTC midnights).
                    let mut day = now;
                    while day < at {
                        prop_assert_eq!(t.value(&state, day), value.clone());
                        day += TimeDelta::days(1);
                    }
                }
                None => {
                    for days in [1, 8, 31, 400] {
                        prop_assert_eq!(t.value(&state, now + TimeDelta::days(days)), value.clone(), "{}", t.name());
                    }
                }
            }
        }
    }

    #[test]
    fn states_round_trip_through_json(events in proptest::collection::vec(event(), 0..25), now in now_strategy()) {
        let mut profile = ProfileTraitStates::default();
        for t in all_traits() {
            profile.by_name.insert(t.name().to_owned(), VersionedState { definition_hash: t.hash(), state: recompute(&t, &events, now) });
        }
        let text = serde_json::to_string(&profile).unwrap();
        let back: ProfileTraitStates = serde_json::from_str(&text).unwrap();
        prop_assert_eq!(back, profile);
    }
}

/// Reference model: the value computed naively from the event list.
fn oracle(t: &ComputedTrait, events: &[Ev], now: DateTime<Utc>) -> Option<Value> {
    use kreislauf_segments::{Aggregate, Window};
    let day = |ts: DateTime<Utc>| ts.timestamp().div_euclid(86_400);
    let def = t.definition();
    let live: Vec<&Ev> = events
        .iter()
        .filter(|e| t.matches(&e.view()))
        .filter(|e| match def.window {
            Window::Lifetime => true,
            Window::Days(n) => day(e.ts) >= day(now) - i64::from(n),
        })
        .collect();
    let of = def.of.as_ref().map(ToString::to_string);
    let field = |e: &Ev| -> Option<Value> {
        match of.as_deref() {
            Some("event.timestamp") => Some(json!(e
                .ts
                .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))),
            Some(path) => e
                .props
                .get(path.trim_start_matches("event.properties."))
                .cloned()
                .filter(|v| !v.is_null()),
            None => Some(Value::Bool(true)),
        }
    };
    let number = |v: Value| match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.replace('\'', "").parse::<f64>().ok(),
        _ => None,
    };
    let numbers = || live.iter().filter_map(|e| field(e).and_then(number));
    let as_number = |x: f64| {
        serde_json::to_value(x)
            .ok()
            .map(|v| if x.fract() == 0.0 { json!(x as i64) } else { v })
    };
    match def.aggregate {
        Aggregate::Count => Some(json!(live.len())),
        Aggregate::Exists => Some(json!(!live.is_empty())),
        Aggregate::Sum => {
            as_number(numbers().map(|x| (x * 1e6).round() as i64).sum::<i64>() as f64 / 1e6)
        }
        Aggregate::Min => numbers().reduce(f64::min).and_then(as_number),
        Aggregate::Max => numbers().reduce(f64::max).and_then(as_number),
        Aggregate::First | Aggregate::Last => {
            let stamped = live.iter().filter_map(|e| Some((e.ts, field(e)?)));
            let key = |(ts, v): &(DateTime<Utc>, Value)| {
                (
                    *ts,
                    if of.as_deref() == Some("event.timestamp") {
                        String::new()
                    } else {
                        v.to_string()
                    },
                )
            };
            if def.aggregate == Aggregate::First {
                stamped.min_by_key(key).map(|(_, v)| v)
            } else {
                stamped.max_by_key(key).map(|(_, v)| v)
            }
        }
        Aggregate::DistinctCount => {
            let set: std::collections::BTreeSet<String> = live
                .iter()
                .filter_map(|e| field(e)?.as_str().map(str::to_owned))
                .collect();
            Some(json!(set.len()))
        }
        Aggregate::MostFrequent => {
            let mut counts: std::collections::BTreeMap<String, usize> = Default::default();
            for e in &live {
                if let Some(v) = field(e).and_then(|v| v.as_str().map(str::to_owned)) {
                    *counts.entry(v).or_default() += 1;
                }
            }
            counts
                .into_iter()
                .max_by(|a, b| a.1.cmp(&b.1).then_with(|| b.0.cmp(&a.0)))
                .map(|(k, _)| json!(k))
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// The incremental state's value equals the value computed naively from the events, with
    /// many same-instant events to exercise tie-breaks.
    #[test]
    fn values_match_the_reference_model(
        events in proptest::collection::vec(event(), 0..30),
        coarse in any::<bool>(),
        now in now_strategy(),
    ) {
        let events: Vec<Ev> = events
            .into_iter()
            .map(|mut e| {
                if coarse {
                    // Snap to half days: many events share a timestamp and a bucket.
                    let secs = e.ts.timestamp();
                    e.ts = Utc.timestamp_opt(secs - secs.rem_euclid(43_200), 0).unwrap();
                }
                e
            })
            .collect();
        for t in all_traits() {
            let mut incremental = TraitState::default();
            for e in &events {
                t.apply(&mut incremental, &e.view(), now);
            }
            prop_assert_eq!(t.value(&incremental, now), oracle(&t, &events, now), "{}", t.name());
        }
    }
}

fn order(ts: DateTime<Utc>, category: &str, revenue: Value) -> Ev {
    Ev {
        name: "Order Completed",
        source: "supermarket",
        ts,
        props: json!({"category": category, "revenue": revenue}),
    }
}

fn trait_named(name: &str) -> ComputedTrait {
    all_traits().into_iter().find(|t| t.name() == name).unwrap()
}

#[test]
fn aggregate_values() {
    let now = base() + TimeDelta::days(5);
    let events = vec![
        order(base(), "wine", json!(10.10)),
        order(base() + TimeDelta::days(1), "cheese", json!("1'000.05")),
        order(base() + TimeDelta::days(2), "wine", json!(0.2)),
        order(base() + TimeDelta::days(3), "bread", json!(null)),
        order(base() - TimeDelta::days(40), "beer", json!(99)),
    ];
    let v = |name: &str| {
        let t = trait_named(name);
        t.value(&recompute(&t, &events, now), now)
    };
    assert_eq!(v("c30"), Some(json!(4)));
    assert_eq!(v("s30"), Some(json!(1010.35)));
    assert_eq!(v("sl"), Some(json!(1109.35)));
    assert_eq!(v("min7"), Some(json!(0.2)));
    assert_eq!(v("maxl"), Some(json!(1000.05)));
    assert_eq!(v("first30"), Some(json!("wine")));
    assert_eq!(v("last10"), Some(json!("bread")));
    assert_eq!(v("last_at"), Some(json!("2024-05-04T00:00:00Z")));
    assert_eq!(v("d30"), Some(json!(3)));
    assert_eq!(v("dl"), Some(json!(4)));
    assert_eq!(v("e7"), Some(json!(true)));
    assert_eq!(v("f30"), Some(json!("wine")));
    // Empty states: counts are 0, extrema absent.
    let empty = TraitState::default();
    assert_eq!(trait_named("c30").value(&empty, now), Some(json!(0)));
    assert_eq!(trait_named("s30").value(&empty, now), Some(json!(0)));
    assert_eq!(trait_named("e7").value(&empty, now), Some(json!(false)));
    assert_eq!(trait_named("maxl").value(&empty, now), None);
    assert_eq!(trait_named("f30").value(&empty, now), None);
}

#[test]
fn most_frequent_ties_go_to_the_alphabetically_first() {
    let t = trait_named("fl");
    let events = vec![
        order(base(), "wine", json!(1)),
        order(base(), "cheese", json!(1)),
    ];
    assert_eq!(
        t.value(&recompute(&t, &events, base()), base()),
        Some(json!("cheese"))
    );
}

#[test]
fn distinct_count_saturates_at_the_cap() {
    let t = trait_named("dl");
    let events: Vec<Ev> = (0..DISTINCT_CAP + 10)
        .map(|i| {
            order(
                base() + TimeDelta::minutes(i as i64),
                &format!("c{i}"),
                json!(1),
            )
        })
        .collect();
    let state = recompute(&t, &events, base() + TimeDelta::days(1));
    assert!(state.is_saturated());
    assert_eq!(t.value(&state, base()), Some(json!(DISTINCT_CAP)));
}

#[test]
fn future_dated_events_count_from_arrival_and_age_out_from_their_day() {
    let t = trait_named("c30");
    let now = base();
    let mut state = TraitState::default();
    let applied = t.apply(
        &mut state,
        &order(
            now + TimeDelta::days(2) + TimeDelta::hours(5),
            "wine",
            json!(1),
        )
        .view(),
        now,
    );
    assert!(applied.state_changed && applied.value_changed);
    assert_eq!(t.value(&state, now), Some(json!(1)));
    assert_eq!(
        t.next_change_at(&state, now),
        Some(base() + TimeDelta::days(33))
    );
}

#[test]
fn typical_state_sizes() {
    // A 30-day count with purchases on 4 days, serialised: the size the engine persists.
    let t = trait_named("c30");
    let events: Vec<Ev> = [0, 3, 9, 20]
        .iter()
        .map(|d| order(base() + TimeDelta::days(*d), "wine", json!(1)))
        .collect();
    let state = recompute(&t, &events, base() + TimeDelta::days(21));
    let text = serde_json::to_string(&state).unwrap();
    assert_eq!(
        text,
        r#"{"b":[[19844,{"n":1}],[19847,{"n":1}],[19853,{"n":1}],[19864,{"n":1}]]}"#
    );
    let last = trait_named("last_at");
    let text = serde_json::to_string(&recompute(&last, &events, base())).unwrap();
    assert_eq!(
        text,
        r#"{"b":[[-2147483648,{"l":{"t":1716249600000000}}]]}"#
    );
}
