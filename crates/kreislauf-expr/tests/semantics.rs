//! Behaviour of the language on concrete facts: missing data, string folding, lists, dates,
//! birthdays in time zones, scopes and time-change instants.
#![allow(clippy::unwrap_used)]

use chrono::{DateTime, TimeZone, Utc};
use kreislauf_expr::{compile, Compiled, Expr, IdentityKind, Scope, StaticFacts};
use serde_json::{json, Value};

fn at(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap()
}

fn c(v: Value) -> Compiled {
    compile(&Expr::from_value(&v).unwrap(), &Scope::unchecked()).unwrap()
}

fn holds(v: Value, facts: &StaticFacts) -> bool {
    c(v).evaluate(facts, at(2024, 6, 15, 12, 0))
}

#[test]
fn missing_values_fail_every_operator_but_missing() {
    let empty = StaticFacts::new();
    let blank = StaticFacts::new()
        .with_trait("city", json!(""))
        .with_trait("tags", json!([]));
    for facts in [&empty, &blank] {
        assert!(!holds(json!({"path": "trait.city", "eq": "Bern"}), facts));
        assert!(!holds(json!({"path": "trait.city", "ne": "Bern"}), facts));
        assert!(!holds(
            json!({"path": "trait.city", "not_in": ["Bern"]}),
            facts
        ));
        assert!(!holds(
            json!({"path": "trait.tags", "all_of": ["wine"]}),
            facts
        ));
        assert!(!holds(json!({"exists": "trait.city"}), facts));
        assert!(holds(json!({"missing": "trait.city"}), facts));
        assert!(holds(json!({"missing": "trait.tags"}), facts));
        // not is plain negation: includes the profiles without a city.
        assert!(holds(
            json!({"not": {"path": "trait.city", "eq": "Bern"}}),
            facts
        ));
    }
}

#[test]
fn ne_means_present_and_different() {
    let bern = StaticFacts::new().with_trait("city", json!("Bern"));
    let basel = StaticFacts::new().with_trait("city", json!("Basel"));
    let rule = json!({"path": "trait.city", "ne": "Bern"});
    assert!(!holds(rule.clone(), &bern));
    assert!(holds(rule, &basel));
}

#[test]
fn wrong_types_compare_false() {
    let f = StaticFacts::new().with_trait("ltv", json!("abc"));
    assert!(!holds(json!({"path": "trait.ltv", "gt": 5}), &f));
    assert!(!holds(json!({"path": "trait.ltv", "le": 5}), &f));
    assert!(!holds(
        json!({"path": "trait.ltv", "within_last": "3d"}),
        &f
    ));
    assert!(holds(json!({"path": "trait.ltv", "ne": 5}), &f));
}

#[test]
fn numbers_from_strings_and_decimals() {
    let f = StaticFacts::new()
        .with_trait("ltv", json!("1'250.50"))
        .with_trait("zip", json!(8001));
    assert!(holds(json!({"path": "trait.ltv", "gt": 500}), &f));
    assert!(holds(
        json!({"path": "trait.ltv", "between": ["1000", 1250.5]}),
        &f
    ));
    assert!(!holds(json!({"path": "trait.ltv", "gt": 1250.5}), &f));
    assert!(holds(json!({"path": "trait.zip", "eq": "8001"}), &f));
    assert!(holds(json!({"path": "trait.zip", "starts_with": 80}), &f));
    assert!(holds(json!({"path": "trait.zip", "in": [8000, 8001]}), &f));
}

#[test]
fn case_and_umlaut_insensitive_strings() {
    for city in ["Zürich", "ZURICH", "zuerich", "Zu\u{308}rich"] {
        let f = StaticFacts::new().with_trait("city", json!(city));
        assert!(
            holds(
                json!({"path": "trait.city", "eq": "Zürich", "ignore_case": true}),
                &f
            ),
            "{city}"
        );
        assert!(
            holds(
                json!({"path": "trait.city", "in": ["Bern", "zürich"], "ignore_case": true}),
                &f
            ),
            "{city}"
        );
        assert!(holds(
            json!({"path": "trait.city", "starts_with": "ZÜ", "ignore_case": true}),
            &f
        ));
        assert!(holds(
            json!({"path": "trait.city", "matches": "z*ich", "ignore_case": true}),
            &f
        ));
    }
    let f = StaticFacts::new().with_trait("city", json!("ZURICH"));
    assert!(
        !holds(json!({"path": "trait.city", "eq": "Zürich"}), &f),
        "exact by default"
    );
    assert!(!holds(
        json!({"path": "trait.city", "contains": "rich"}),
        &f
    ));
    assert!(holds(json!({"path": "trait.city", "contains": "RIC"}), &f));
}

#[test]
fn list_operands() {
    let f = StaticFacts::new()
        .with_trait("interests", json!(["wine", "Cheese", null]))
        .with_identity(IdentityKind::Email, "anna@bluewin.ch")
        .with_identity(IdentityKind::Email, "anna@example.com");
    assert!(holds(
        json!({"path": "trait.interests", "any_of": ["beer", "wine"]}),
        &f
    ));
    assert!(holds(
        json!({"path": "trait.interests", "all_of": ["wine", "cheese"], "ignore_case": true}),
        &f
    ));
    assert!(!holds(
        json!({"path": "trait.interests", "all_of": ["wine", "beer"]}),
        &f
    ));
    assert!(holds(json!({"path": "trait.interests", "eq": "wine"}), &f));
    assert!(
        !holds(json!({"path": "trait.interests", "ne": "wine"}), &f),
        "some element is wine"
    );
    assert!(holds(
        json!({"path": "identity.email", "ends_with": "@bluewin.ch"}),
        &f
    ));
    assert!(holds(
        json!({"path": "identity.email", "matches": "*@example.*"}),
        &f
    ));
    assert!(holds(json!({"exists": "identity.email"}), &f));
    assert!(holds(json!({"missing": "identity.phone"}), &f));
}

#[test]
fn nested_traits_event_profile_and_consent() {
    let f = StaticFacts::new()
        .with_trait(
            "address",
            json!({"zip": "8001", "lines": ["Bahnhofstrasse 1"]}),
        )
        .with_event_field("name", json!("Order Completed"))
        .with_event_field(
            "properties",
            json!({"category": "sparkling_wine", "revenue": 49.9}),
        )
        .with_profile_attribute("created_at", json!("2024-06-01T08:00:00Z"))
        .with_consent("wine_club", "email", "marketing", true)
        .with_consent("wine_club", "sms", "marketing", false)
        .with_segment("vip");
    assert!(holds(
        json!({"path": "trait.address.zip", "eq": "8001"}),
        &f
    ));
    assert!(holds(
        json!({"path": "trait.address.lines.0", "contains": "Bahnhof"}),
        &f
    ));
    assert!(holds(
        json!({"path": "event.properties.category", "eq": "sparkling_wine"}),
        &f
    ));
    assert!(holds(
        json!({"path": "event.properties.revenue", "lt": 50}),
        &f
    ));
    assert!(holds(
        json!({"path": "event.name", "eq": "Order Completed"}),
        &f
    ));
    assert!(holds(
        json!({"path": "profile.created_at", "within_last": "30d"}),
        &f
    ));
    assert!(holds(
        json!({"path": "consent.wine_club.email.marketing", "eq": true}),
        &f
    ));
    assert!(holds(
        json!({"path": "consent.wine_club.sms.marketing", "eq": false}),
        &f
    ));
    assert!(holds(
        json!({"missing": "consent.wine_club.post.marketing"}),
        &f
    ));
    assert!(holds(json!({"in_segment": "vip"}), &f));
    assert!(!holds(json!({"in_segment": "wine-lovers"}), &f));
}

#[test]
fn date_literals_in_swiss_and_iso_form() {
    let f = StaticFacts::new().with_trait("birthday", json!("24.12.1980"));
    assert!(holds(
        json!({"path": "trait.birthday", "eq": "1980-12-24"}),
        &f
    ));
    assert!(holds(
        json!({"path": "trait.birthday", "lt": "1.1.1981"}),
        &f
    ));
    assert!(holds(
        json!({"path": "trait.birthday", "between": ["1980-01-01", "31.12.1980"]}),
        &f
    ));
    let g = StaticFacts::new().with_trait("signed_up", json!("2024-06-14T23:30:00Z"));
    // Dates compare with the fact's date in the customer's time zone: 01:30 on 15 June in Zürich.
    assert!(holds(
        json!({"path": "trait.signed_up", "eq": "14.06.2024"}),
        &g
    ));
    let g = g.with_timezone(chrono_tz::Europe::Zurich);
    assert!(holds(
        json!({"path": "trait.signed_up", "eq": "15.06.2024"}),
        &g
    ));
    assert!(holds(
        json!({"path": "trait.signed_up", "lt": "2024-06-15T00:00:00Z"}),
        &g
    ));
}

#[test]
fn relative_dates_and_their_flip_instants() {
    let now = at(2024, 6, 15, 12, 0);
    let purchase = "2024-06-01T10:00:00Z";
    let f = StaticFacts::new().with_computed("last_purchase_at", json!(purchase));

    let within = c(json!({"path": "computed.last_purchase_at", "within_last": "30d"}));
    assert!(within.evaluate(&f, now));
    let flip = within.next_time_change(&f, now).unwrap();
    assert_eq!(flip, at(2024, 7, 1, 10, 0));
    assert!(within.evaluate(&f, flip - chrono::TimeDelta::seconds(1)));
    assert!(!within.evaluate(&f, flip));
    assert_eq!(within.next_time_change(&f, flip), None);

    let ago = c(json!({"path": "computed.last_purchase_at", "more_than_ago": "60d"}));
    assert!(!ago.evaluate(&f, now));
    let flip = ago.next_time_change(&f, now).unwrap();
    assert_eq!(flip, at(2024, 7, 31, 10, 0));
    assert!(ago.evaluate(&f, flip));
    assert!(!ago.evaluate(&f, flip - chrono::TimeDelta::seconds(1)));

    let soon = c(json!({"path": "trait.renewal", "within_next": "7d"}));
    let g = StaticFacts::new().with_trait("renewal", json!("2024-06-30T00:00:00Z"));
    assert!(!soon.evaluate(&g, now));
    assert_eq!(soon.next_time_change(&g, now), Some(at(2024, 6, 23, 0, 0)));
    assert!(soon.evaluate(&g, at(2024, 6, 23, 0, 0)));
    assert_eq!(
        soon.next_time_change(&g, at(2024, 6, 23, 0, 0)),
        Some(at(2024, 6, 30, 0, 0))
    );
    assert!(!soon.evaluate(&g, at(2024, 6, 30, 0, 0)));
}

#[test]
fn no_time_change_when_a_static_conjunct_is_false() {
    let f = StaticFacts::new()
        .with_computed("last_purchase_at", json!("2024-06-01T10:00:00Z"))
        .with_trait("city", json!("Basel"));
    let e = c(json!({"all": [
        {"path": "trait.city", "eq": "Bern"},
        {"path": "computed.last_purchase_at", "within_last": "30d"},
    ]}));
    assert_eq!(e.next_time_change(&f, at(2024, 6, 15, 12, 0)), None);
    let e = c(json!({"any": [
        {"path": "trait.city", "eq": "Basel"},
        {"path": "computed.last_purchase_at", "within_last": "30d"},
    ]}));
    assert_eq!(e.next_time_change(&f, at(2024, 6, 15, 12, 0)), None);
}

#[test]
fn birthday_today_depends_on_the_customers_time_zone() {
    let rule = c(json!({"path": "trait.birthday", "anniversary": "today"}));
    let utc = StaticFacts::new().with_trait("birthday", json!("24.12.1980"));
    let zurich = utc.clone().with_timezone(chrono_tz::Europe::Zurich);
    // 23:30 UTC on the 23rd is already 00:30 on the 24th in Zürich.
    let now = at(2024, 12, 23, 23, 30);
    assert!(rule.evaluate(&zurich, now));
    assert!(!rule.evaluate(&utc, now));
    // Zürich: ends at local midnight of the 25th = 23:00 UTC on the 24th.
    assert_eq!(
        rule.next_time_change(&zurich, now),
        Some(at(2024, 12, 24, 23, 0))
    );
    // UTC: starts in half an hour.
    assert_eq!(
        rule.next_time_change(&utc, now),
        Some(at(2024, 12, 24, 0, 0))
    );
    assert!(rule.evaluate(&utc, at(2024, 12, 24, 0, 0)));
    assert!(!rule.evaluate(&zurich, at(2024, 12, 24, 23, 0)));

    let month = c(json!({"path": "trait.birthday", "anniversary": "this_month"}));
    assert!(month.evaluate(&zurich, at(2024, 12, 1, 0, 0)));
    assert!(!month.evaluate(&utc, at(2024, 11, 30, 23, 30)));
    assert!(month.evaluate(&zurich, at(2024, 11, 30, 23, 30)));
    assert_eq!(
        month.next_time_change(&utc, at(2024, 6, 1, 0, 0)),
        Some(at(2024, 12, 1, 0, 0))
    );

    let tomorrow = c(json!({"path": "trait.birthday", "anniversary": "tomorrow"}));
    assert!(tomorrow.evaluate(&utc, at(2024, 12, 23, 12, 0)));
    assert_eq!(
        tomorrow.next_time_change(&utc, at(2024, 12, 23, 12, 0)),
        Some(at(2024, 12, 24, 0, 0))
    );
    assert_eq!(
        tomorrow.next_time_change(&utc, at(2024, 12, 1, 12, 0)),
        Some(at(2024, 12, 23, 0, 0))
    );
}

#[test]
fn scopes_reject_what_evaluation_could_not_use() {
    let computed = vec![
        "wine_purchases_30d".to_owned(),
        "lifetime_value_chf".to_owned(),
    ];
    let segments = vec!["vip".to_owned()];
    let scope = Scope::segment(&computed, &segments);
    let errors = |v: Value| {
        compile(&Expr::from_value(&v).unwrap(), &scope)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    };
    assert_eq!(
        errors(json!({"all": [{"exists": "trait.a"}, {"path": "computed.wine_purchase_30d", "ge": 1}]})),
        "all[1].path: unknown computed trait \"wine_purchase_30d\", did you mean \"wine_purchases_30d\"?"
    );
    assert_eq!(
        errors(json!({"not": {"in_segment": "vipp"}})),
        "not.in_segment: unknown segment \"vipp\", did you mean \"vip\"?"
    );
    assert!(errors(json!({"path": "event.name", "eq": "x"}))
        .starts_with("path: \"event.name\" is not available here"));
    let filter = compile(
        &Expr::from_value(&json!({"path": "trait.city", "eq": "x"})).unwrap(),
        &Scope::event_filter(),
    );
    assert!(filter.is_err());
}

#[test]
fn yaml_and_json_give_the_same_expression() {
    let yaml = r#"
all:
  - exists: identity.loyalty_card
  - { path: trait.city, eq: Zürich, ignore_case: true }
  - { path: computed.lifetime_value_chf, gt: 500 }
  - { path: trait.birthday, lt: 24.12.1980 }
"#;
    let json = r#"{"all": [
        {"exists": "identity.loyalty_card"},
        {"path": "trait.city", "eq": "Zürich", "ignore_case": true},
        {"path": "computed.lifetime_value_chf", "gt": 500},
        {"path": "trait.birthday", "lt": "1980-12-24"}]}"#;
    let a = Expr::from_yaml_str(yaml).unwrap();
    let b = Expr::from_json_str(json).unwrap();
    assert_eq!(a, b);
    let via_serde: Expr = serde_json::from_str(json).unwrap();
    assert_eq!(a, via_serde);
    let bad: Result<Expr, _> = serde_json::from_str(r#"{"path": "trait.a", "gt": "fünfhundert"}"#);
    assert!(bad
        .unwrap_err()
        .to_string()
        .contains("gt: expected a number or a date, found \"fünfhundert\""));
}
