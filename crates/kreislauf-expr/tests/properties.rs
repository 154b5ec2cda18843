//! Property tests: logical laws, round trips, no panics, and soundness of `next_time_change`.
#![allow(clippy::unwrap_used)]

use chrono::{DateTime, NaiveDate, TimeDelta, TimeZone, Utc};
use kreislauf_expr::{
    compile, Anniversary, Expr, IdentityKind, Literal, Path, Predicate, Scope, Span, StaticFacts,
    Test,
};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

const PATHS: [&str; 10] = [
    "trait.city",
    "trait.n",
    "trait.tags",
    "trait.birthday",
    "trait.seen",
    "computed.c",
    "identity.email",
    "consent.wine_club.email.marketing",
    "event.properties.x",
    "profile.created_at",
];
const WORDS: [&str; 8] = [
    "Zürich", "zurich", "Bern", "wine", "cheese", "ä", "x*y", "500",
];

fn base_now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 3, 30, 22, 30, 0).unwrap()
}

fn path() -> impl Strategy<Value = Path> {
    proptest::sample::select(PATHS.to_vec()).prop_map(|p| Path::parse(p).unwrap())
}

fn word() -> impl Strategy<Value = String> {
    proptest::sample::select(WORDS.to_vec()).prop_map(str::to_owned)
}

fn date() -> impl Strategy<Value = NaiveDate> {
    (1970i32..2030, 1u32..=12, 1u32..=28)
        .prop_map(|(y, m, d)| NaiveDate::from_ymd_opt(y, m, d).unwrap())
}

/// A birth date whose anniversary falls within days of `base_now` (incl. leap days).
fn anniversary_near_now() -> impl Strategy<Value = NaiveDate> {
    use chrono::Datelike;
    (-40i64..40, 1950i32..2010).prop_map(|(days, year)| {
        let d = base_now().date_naive() + TimeDelta::days(days);
        d.with_year(year)
            .unwrap_or_else(|| NaiveDate::from_ymd_opt(1992, 2, 29).unwrap())
    })
}

fn instant() -> impl Strategy<Value = DateTime<Utc>> {
    // Around base_now, to the second, plus a few far away.
    prop_oneof![
        (-90i64 * 86_400..90 * 86_400).prop_map(|s| base_now() + TimeDelta::seconds(s)),
        (0i64..2_000_000_000).prop_map(|s| Utc.timestamp_opt(s, 0).unwrap()),
    ]
}

fn number() -> impl Strategy<Value = f64> {
    prop_oneof![
        (-1000i64..1000).prop_map(|n| n as f64),
        (-1000i64..1000).prop_map(|n| n as f64 / 4.0)
    ]
}

fn eq_literal() -> impl Strategy<Value = Literal> {
    prop_oneof![
        any::<bool>().prop_map(Literal::Bool),
        number().prop_map(Literal::Number),
        word()
            .prop_filter("plain strings", |w| w != "500")
            .prop_map(Literal::String),
        date().prop_map(Literal::Date),
        instant().prop_map(Literal::DateTime),
    ]
}

fn ord_literal() -> impl Strategy<Value = Literal> {
    prop_oneof![
        number().prop_map(Literal::Number),
        date().prop_map(Literal::Date),
        instant().prop_map(Literal::DateTime),
    ]
}

fn span() -> impl Strategy<Value = Span> {
    prop_oneof![
        (1i64..400).prop_map(|d| Span::days(d).unwrap()),
        (1i64..10_000).prop_map(|s| Span::from_seconds(s * 60).unwrap()),
    ]
}

fn test_and_case() -> impl Strategy<Value = (Test, bool)> {
    let list = || proptest::collection::vec(eq_literal(), 1..4);
    prop_oneof![
        Just((Test::Exists, false)),
        Just((Test::Missing, false)),
        (eq_literal(), any::<bool>()).prop_map(|(l, f)| (Test::Eq(l), f)),
        (eq_literal(), any::<bool>()).prop_map(|(l, f)| (Test::Ne(l), f)),
        ord_literal().prop_map(|l| (Test::Lt(l), false)),
        ord_literal().prop_map(|l| (Test::Ge(l), false)),
        (number(), number()).prop_map(|(a, b)| (
            Test::Between(Literal::Number(a.min(b)), Literal::Number(a.max(b))),
            false
        )),
        (word(), any::<bool>()).prop_map(|(w, f)| (Test::Contains(w), f)),
        (word(), any::<bool>()).prop_map(|(w, f)| (Test::StartsWith(w), f)),
        (word(), any::<bool>()).prop_map(|(w, f)| (Test::Matches(w), f)),
        (list(), any::<bool>()).prop_map(|(l, f)| (Test::In(l), f)),
        (list(), any::<bool>()).prop_map(|(l, f)| (Test::NotIn(l), f)),
        (list(), any::<bool>()).prop_map(|(l, f)| (Test::AllOf(l), f)),
        span().prop_map(|s| (Test::WithinLast(s), false)),
        span().prop_map(|s| (Test::MoreThanAgo(s), false)),
        span().prop_map(|s| (Test::WithinNext(s), false)),
        proptest::sample::select(vec![
            Anniversary::Today,
            Anniversary::Tomorrow,
            Anniversary::ThisMonth
        ])
        .prop_map(|a| (Test::Anniversary(a), false)),
    ]
}

fn leaf() -> impl Strategy<Value = Expr> {
    prop_oneof![
        1 => any::<bool>().prop_map(Expr::Const),
        1 => proptest::sample::select(vec!["vip", "wine"]).prop_map(|s| Expr::InSegment(s.to_owned())),
        8 => (path(), test_and_case()).prop_map(|(path, (test, ignore_case))| Expr::Test(Predicate {
            path,
            test,
            ignore_case,
        })),
    ]
}

fn expr() -> impl Strategy<Value = Expr> {
    leaf().prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            inner.clone().prop_map(Expr::not),
            proptest::collection::vec(inner.clone(), 1..4).prop_map(Expr::All),
            proptest::collection::vec(inner, 1..4).prop_map(Expr::Any),
        ]
    })
}

fn fact_value() -> impl Strategy<Value = Value> {
    // Dates and instants dominate so that time-relative operators see temporal values often.
    let scalar = prop_oneof![
        1 => Just(Value::Null),
        1 => any::<bool>().prop_map(Value::Bool),
        1 => number().prop_map(|n| json!(n)),
        1 => word().prop_map(Value::String),
        1 => Just(json!("")),
        2 => date().prop_map(|d| json!(d.format("%d.%m.%Y").to_string())),
        2 => date().prop_map(|d| json!(d.to_string())),
        6 => instant().prop_map(|t| json!(t.to_rfc3339())),
        3 => anniversary_near_now().prop_map(|d| json!(d.to_string())),
        1 => Just(json!({"nested": 1})),
    ];
    prop_oneof![
        4 => scalar.clone(),
        1 => proptest::collection::vec(scalar, 0..4).prop_map(Value::Array),
    ]
}

fn facts() -> impl Strategy<Value = StaticFacts> {
    (
        proptest::collection::vec(proptest::option::of(fact_value()), 7),
        proptest::collection::vec(word(), 0..3),
        proptest::option::of(any::<bool>()),
        proptest::collection::btree_set(proptest::sample::select(vec!["vip", "wine"]), 0..2),
        proptest::sample::select(vec![
            None,
            Some(chrono_tz::Europe::Zurich),
            Some(chrono_tz::Pacific::Kiritimati),
            Some(chrono_tz::America::Havana),
        ]),
    )
        .prop_map(|(values, emails, consent, segments, tz)| {
            let mut f = StaticFacts::new();
            let names = ["city", "n", "tags", "birthday", "seen"];
            for (name, v) in names.iter().zip(&values) {
                if let Some(v) = v {
                    f.traits.insert((*name).to_owned(), v.clone());
                }
            }
            if let Some(v) = &values[5] {
                f.computed.insert("c".to_owned(), v.clone());
            }
            if let Some(v) = &values[6] {
                let mut props = Map::new();
                props.insert("x".to_owned(), v.clone());
                f.event
                    .insert("properties".to_owned(), Value::Object(props));
                f.profile.insert("created_at".to_owned(), v.clone());
            }
            f.identities.insert(IdentityKind::Email, emails);
            if let Some(c) = consent {
                f = f.with_consent("wine_club", "email", "marketing", c);
            }
            f.segments = segments.into_iter().map(str::to_owned).collect();
            f.timezone = tz;
            f
        })
}

fn eval(e: &Expr, f: &StaticFacts, now: DateTime<Utc>) -> bool {
    compile(e, &Scope::unchecked()).unwrap().evaluate(f, now)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(384))]

    #[test]
    fn json_and_yaml_round_trip(e in expr()) {
        prop_assert_eq!(&Expr::from_value(&e.to_value()).unwrap(), &e);
        let json_text = serde_json::to_string(&e).unwrap();
        prop_assert_eq!(&serde_json::from_str::<Expr>(&json_text).unwrap(), &e);
        let yaml_text = serde_norway::to_string(&e).unwrap();
        prop_assert_eq!(&serde_norway::from_str::<Expr>(&yaml_text).unwrap(), &e, "{}", yaml_text);
    }

    #[test]
    fn double_negation(e in expr(), f in facts(), offset in -200i64..200) {
        let now = base_now() + TimeDelta::hours(offset);
        prop_assert_eq!(eval(&Expr::not(Expr::not(e.clone())), &f, now), eval(&e, &f, now));
    }

    #[test]
    fn de_morgan(a in expr(), b in expr(), f in facts()) {
        let now = base_now();
        let not_all = Expr::not(Expr::All(vec![a.clone(), b.clone()]));
        let any_not = Expr::Any(vec![Expr::not(a.clone()), Expr::not(b.clone())]);
        prop_assert_eq!(eval(&not_all, &f, now), eval(&any_not, &f, now));
        let not_any = Expr::not(Expr::Any(vec![a.clone(), b.clone()]));
        let all_not = Expr::All(vec![Expr::not(a), Expr::not(b)]);
        prop_assert_eq!(eval(&not_any, &f, now), eval(&all_not, &f, now));
    }

    #[test]
    fn ne_is_exists_and_not_eq(p in path(), l in eq_literal(), fold in any::<bool>(), f in facts()) {
        let now = base_now();
        let pred = |test| Expr::Test(Predicate { path: p.clone(), test, ignore_case: fold });
        let exists = Expr::Test(Predicate { path: p.clone(), test: Test::Exists, ignore_case: false });
        let ne = pred(Test::Ne(l.clone()));
        let spelled = Expr::All(vec![exists, Expr::not(pred(Test::Eq(l)))]);
        prop_assert_eq!(eval(&ne, &f, now), eval(&spelled, &f, now));
    }

    /// Nothing flips before the announced instant, and `None` means nothing flips at all.
    #[test]
    fn next_time_change_is_a_sound_lower_bound(e in expr(), f in facts(), offset in -2000i64..2000) {
        let now = base_now() + TimeDelta::minutes(offset * 17);
        let compiled = compile(&e, &Scope::unchecked()).unwrap();
        let value = compiled.evaluate(&f, now);
        let probes: Vec<DateTime<Utc>> = match compiled.next_time_change(&f, now) {
            Some(t) => {
                prop_assert!(t > now);
                let gap = t - now;
                let mut probes: Vec<_> = (1..8).map(|k| now + gap / 8 * k).collect();
                probes.push(t - TimeDelta::nanoseconds(1));
                probes
            }
            None => [1i64, 13, 24 * 31, 24 * 200, 24 * 400, 24 * 3000]
                .iter()
                .map(|h| now + TimeDelta::hours(*h))
                .collect(),
        };
        for probe in probes {
            prop_assert_eq!(compiled.evaluate(&f, probe), value, "at {} (now {})", probe, now);
        }
    }

    /// The same, focused on one time-relative test over values close to `now`, so that every
    /// branch (inside, before, after, anniversary today/tomorrow/this month) is hit often.
    #[test]
    fn single_time_test_flips_exactly_when_announced(
        (test, _) in test_and_case().prop_filter("time tests", |(t, _)| t.is_time_dependent()),
        days in -5i64..5,
        year in 1950i32..2010,
        as_date in any::<bool>(),
        seconds in 0i64..86_400,
        tz in proptest::sample::select(vec![chrono_tz::UTC, chrono_tz::Europe::Zurich, chrono_tz::Pacific::Kiritimati]),
    ) {
        use chrono::Datelike;
        let now = base_now();
        let value = if as_date {
            let d = now.date_naive() + TimeDelta::days(days);
            json!(d.with_year(year).unwrap_or(d).to_string())
        } else {
            json!((now + TimeDelta::days(days) + TimeDelta::seconds(seconds)).to_rfc3339())
        };
        let f = StaticFacts::new().with_trait("seen", value).with_timezone(tz);
        let compiled = compile(&Expr::test(Path::parse("trait.seen").unwrap(), test), &Scope::unchecked()).unwrap();
        let before = compiled.evaluate(&f, now);
        if let Some(t) = compiled.next_time_change(&f, now) {
            prop_assert!(t > now);
            prop_assert_eq!(compiled.evaluate(&f, t - TimeDelta::nanoseconds(1)), before);
            // A single test flips exactly at the announced instant.
            prop_assert_ne!(compiled.evaluate(&f, t), before, "no flip at {}", t);
        }
    }

    /// Arbitrary documents: parsing and compiling either reject them or yield expressions that
    /// evaluate without panicking and round-trip.
    #[test]
    fn arbitrary_documents_never_panic(doc in arbitrary_doc(), f in facts()) {
        if let Ok(e) = Expr::from_value(&doc) {
            if let Ok(c) = compile(&e, &Scope::unchecked()) {
                let _ = c.evaluate(&f, base_now());
                let _ = c.next_time_change(&f, base_now());
                prop_assert_eq!(Expr::from_value(&e.to_value()).unwrap(), e);
            }
        }
    }
}

fn arbitrary_doc() -> impl Strategy<Value = Value> {
    let keys = proptest::sample::select(vec![
        "all",
        "any",
        "not",
        "path",
        "eq",
        "ne",
        "gt",
        "between",
        "in",
        "all_of",
        "matches",
        "within_last",
        "anniversary",
        "exists",
        "missing",
        "in_segment",
        "ignore_case",
        "bogus",
    ]);
    let leaf = prop_oneof![
        fact_value(),
        proptest::sample::select(PATHS.to_vec()).prop_map(|p| json!(p)),
        proptest::sample::select(vec![
            "30d",
            "today",
            "2w",
            "-1d",
            "0d",
            "fünfhundert",
            "1'000.5"
        ])
        .prop_map(|s| json!(s)),
    ];
    leaf.prop_recursive(4, 32, 4, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(keys.clone(), inner, 0..4).prop_map(|m| Value::Object(
                m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
            )),
        ]
    })
}
