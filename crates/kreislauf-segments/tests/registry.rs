//! Registries: versions by content hash, dependency lookups, evaluation order, the event index.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use chrono::{TimeZone, Utc};
use kreislauf_expr::StaticFacts;
use kreislauf_segments::{
    ApplyOutcome, Changes, ComputedTraitDef, ComputedTraitRegistry, RegistryError,
    SegmentDefinition, SegmentRegistry, TraitEvent,
};
use serde_json::json;

fn seg(yaml: &str) -> SegmentDefinition {
    SegmentDefinition::from_yaml_str(yaml).unwrap()
}

fn traits() -> ComputedTraitRegistry {
    let mut r = ComputedTraitRegistry::new();
    for yaml in [
        "{ name: orders_30d, aggregate: count, events: [Order Completed], window: 30d }",
        "{ name: wine_purchases_30d, aggregate: count, events: [Order Completed], where: { path: event.properties.category, eq: wine }, window: 30d }",
        "{ name: mail_opens, aggregate: count, events: [Email Opened], window: lifetime }",
    ] {
        r.apply(ComputedTraitDef::from_yaml_str(yaml).unwrap()).unwrap();
    }
    r
}

fn registry() -> SegmentRegistry {
    let t = traits();
    let mut r = SegmentRegistry::new();
    r.apply_all(
        vec![
            seg("{ id: vip, condition: { any: [ { in_segment: wine-lovers }, { in_segment: buyers } ] } }"),
            seg("{ id: wine-lovers, condition: { path: computed.wine_purchases_30d, ge: 2 } }"),
            seg("{ id: buyers, condition: { path: computed.orders_30d, ge: 1 } }"),
            seg("{ id: zurich, condition: { path: trait.city, eq: Zürich, ignore_case: true } }"),
            seg("{ id: birthday, condition: { path: trait.birthday, anniversary: today } }"),
            seg("{ id: vip-zurich, condition: { all: [ { in_segment: vip }, { in_segment: zurich } ] } }"),
        ],
        &t,
    )
    .unwrap();
    r
}

#[test]
fn reapplying_the_same_definition_is_a_no_op_and_a_change_bumps_the_version() {
    let t = traits();
    let mut r = registry();
    let same = seg("{ condition: { path: computed.orders_30d, ge: 1 }, id: buyers }");
    assert_eq!(
        r.apply(same, &t).unwrap(),
        ApplyOutcome::Unchanged { version: 1 }
    );
    let changed = seg("{ id: buyers, condition: { path: computed.orders_30d, ge: 2 } }");
    assert_eq!(
        r.apply(changed.clone(), &t).unwrap(),
        ApplyOutcome::Updated { version: 2 }
    );
    assert_eq!(
        r.apply(changed, &t).unwrap(),
        ApplyOutcome::Unchanged { version: 2 }
    );
    assert_eq!(r.versions("buyers").len(), 2);
    assert_eq!(r.current("buyers").unwrap().version, 2);
    assert_ne!(r.versions("buyers")[0].hash, r.versions("buyers")[1].hash);
    assert_eq!(
        r.apply(seg("{ id: new-one, condition: true }"), &t)
            .unwrap(),
        ApplyOutcome::Created { version: 1 }
    );
}

#[test]
fn computed_trait_registry_versions() {
    let mut t = traits();
    let same = ComputedTraitDef::from_json_str(
        r#"{"window": "30d", "events": ["Order Completed"], "aggregate": "count", "name": "orders_30d"}"#,
    )
    .unwrap();
    assert_eq!(
        t.apply(same).unwrap(),
        ApplyOutcome::Unchanged { version: 1 }
    );
    let changed = ComputedTraitDef::from_yaml_str(
        "{ name: orders_30d, aggregate: count, events: [Order Completed], window: 31d }",
    )
    .unwrap();
    assert_eq!(
        t.apply(changed).unwrap(),
        ApplyOutcome::Updated { version: 2 }
    );
    assert_eq!(t.version("orders_30d"), Some(2));
}

#[test]
fn dependency_lookups() {
    let r = registry();
    assert_eq!(
        r.dependents_of_computed("wine_purchases_30d")
            .collect::<Vec<_>>(),
        vec!["wine-lovers"]
    );
    assert_eq!(
        r.dependents_of_trait("city").collect::<Vec<_>>(),
        vec!["zurich"]
    );
    assert_eq!(
        r.dependents_of_segment("vip").collect::<Vec<_>>(),
        vec!["vip-zurich"]
    );
    assert_eq!(r.time_dependent().collect::<Vec<_>>(), vec!["birthday"]);
    // Transitive, in dependency order.
    assert_eq!(
        r.affected(&Changes::computed(["wine_purchases_30d"])),
        vec!["wine-lovers", "vip", "vip-zurich"]
    );
    assert_eq!(
        r.affected(&Changes::computed(["mail_opens"])),
        Vec::<&str>::new()
    );
    assert_eq!(r.affected(&Changes::time()), vec!["birthday"]);
}

#[test]
fn evaluation_order_puts_references_first() {
    let r = registry();
    let order = r.evaluation_order();
    let pos = |id: &str| order.iter().position(|o| o == id).unwrap();
    assert!(pos("wine-lovers") < pos("vip"));
    assert!(pos("buyers") < pos("vip"));
    assert!(pos("vip") < pos("vip-zurich"));
    assert!(pos("zurich") < pos("vip-zurich"));
    assert_eq!(order.len(), 6);
}

#[test]
fn membership_diff_and_cascade_through_references() {
    let r = registry();
    let now = Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).unwrap();
    let facts = StaticFacts::new()
        .with_trait("city", json!("Zuerich"))
        .with_computed("orders_30d", json!(1))
        .with_computed("wine_purchases_30d", json!(0));
    let full = r.evaluate(&facts, now, &BTreeSet::new());
    let entered: Vec<&str> = full.entered.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(entered.len(), 4);
    for id in ["buyers", "vip", "zurich", "vip-zurich"] {
        assert!(entered.contains(&id), "{id} in {entered:?}");
    }
    // Orders age out: only `buyers` is re-evaluated directly, vip and vip-zurich follow.
    let facts = facts.with_computed("orders_30d", json!(0));
    let update = r.evaluate_changes(
        &facts,
        now,
        &full.members,
        &Changes::computed(["orders_30d"]),
    );
    let exited: Vec<&str> = update.exited.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(exited, vec!["buyers", "vip", "vip-zurich"]);
    assert!(update.entered.is_empty());
    assert_eq!(update.members, BTreeSet::from(["zurich".to_owned()]));
    assert!(update.exited.iter().all(|c| c.version == 1));
    // Unknown previous ids are dropped silently.
    let prev = BTreeSet::from(["deleted-segment".to_owned(), "zurich".to_owned()]);
    let update = r.evaluate_changes(&facts, now, &prev, &Changes::default());
    assert_eq!(update.members, BTreeSet::from(["zurich".to_owned()]));
    assert!(update.exited.is_empty());
}

#[test]
fn removal_is_refused_while_referenced() {
    let mut r = registry();
    assert_eq!(
        r.remove("vip"),
        Err(RegistryError::InUse {
            id: "vip".into(),
            dependents: vec!["vip-zurich".into()]
        })
    );
    assert_eq!(
        r.remove("nope"),
        Err(RegistryError::UnknownSegment("nope".into()))
    );
    r.remove("vip-zurich").unwrap();
    r.remove("vip").unwrap();
    assert_eq!(r.len(), 4);
    assert_eq!(r.dependents_of_segment("buyers").count(), 0);
}

#[test]
fn events_no_trait_listens_to_touch_nothing() {
    let t = traits();
    let now = Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).unwrap();
    let mut states = Default::default();
    let page = TraitEvent::new("Page Viewed", "web", "brand", now);
    assert_eq!(t.matching(&page).count(), 0);
    let outcome = t.apply_event(&mut states, &page, now);
    assert!(outcome.changed.is_empty() && !outcome.state_changed);
    assert!(states.by_name.is_empty());

    let props = json!({"category": "cheese"});
    let order = TraitEvent::new("Order Completed", "web", "brand", now).with_properties(&props);
    let names: Vec<&str> = t.matching(&order).map(|c| c.name()).collect();
    assert_eq!(
        names,
        vec!["orders_30d"],
        "the wine filter does not match cheese"
    );
    let outcome = t.apply_event(&mut states, &order, now);
    assert_eq!(outcome.changed, vec!["orders_30d"]);
    assert_eq!(
        states.by_name.len(),
        1,
        "no empty state kept for the non-matching wine trait"
    );
}

#[test]
fn states_from_an_old_definition_are_reported_stale() {
    let mut t = traits();
    let now = Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).unwrap();
    let mut states = Default::default();
    let order = TraitEvent::new("Order Completed", "web", "brand", now);
    t.apply_event(&mut states, &order, now);
    t.apply(
        ComputedTraitDef::from_yaml_str(
            "{ name: orders_30d, aggregate: count, events: [Order Completed], window: 7d }",
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(t.stale(&states), vec!["orders_30d"]);
    let outcome = t.apply_event(&mut states, &order, now);
    assert_eq!(outcome.stale, vec!["orders_30d"]);
    let fresh = t.recompute("orders_30d", [order, order], now).unwrap();
    states.by_name.insert("orders_30d".into(), fresh);
    assert!(t.stale(&states).is_empty());
    assert_eq!(t.value("orders_30d", &states, now), Some(json!(2)));
}
