//! Definition errors: exact field paths, did-you-mean, unknown references, cycles.
#![allow(clippy::unwrap_used)]

use kreislauf_segments::{ComputedTraitRegistry, Definitions, SegmentDefinition, SegmentRegistry};

fn doc_errors(yaml: &str) -> Vec<String> {
    match Definitions::from_yaml_str(yaml) {
        Ok(_) => Vec::new(),
        Err(e) => e.iter().map(ToString::to_string).collect(),
    }
}

/// Parses, then applies to fresh registries; returns all messages.
fn apply_errors(yaml: &str) -> Vec<String> {
    let doc = match Definitions::from_yaml_str(yaml) {
        Ok(d) => d,
        Err(e) => return e.iter().map(ToString::to_string).collect(),
    };
    let mut traits = ComputedTraitRegistry::new();
    if let Err(e) = traits.apply_all(doc.computed_traits) {
        return e.iter().map(ToString::to_string).collect();
    }
    let mut segments = SegmentRegistry::new();
    match segments.apply_all(doc.segments, &traits) {
        Ok(_) => Vec::new(),
        Err(e) => e.iter().map(ToString::to_string).collect(),
    }
}

const TRAITS: &str = r#"
computed_traits:
  - { name: lifetime_value_chf, aggregate: sum, of: event.properties.revenue, events: [Order Completed], window: lifetime }
  - { name: wine_purchases_30d, aggregate: count, events: [Order Completed], window: 30d }
"#;

#[test]
fn bad_literal_names_its_exact_path() {
    let errs = doc_errors(
        r#"
segments:
  - id: zurich-loyal-500
    condition:
      all:
        - exists: identity.loyalty_card
        - { path: trait.city, eq: Zürich }
        - { path: computed.lifetime_value_chf, gt: fünfhundert }
"#,
    );
    assert_eq!(
        errs,
        vec!["segments[0].condition.all[2].gt: expected a number or a date, found \"fünfhundert\""]
    );
}

#[test]
fn unknown_operator_and_field_suggest_the_intended_one() {
    let errs = doc_errors(
        r#"
segments:
  - id: a
    conditon: true
  - id: b
    condition: { path: trait.email, ends_wth: "@bluewin.ch" }
computed_traits:
  - { name: x, aggregate: cuont, events: [Order Completed], windw: 30d }
"#,
    );
    assert!(
        errs.contains(
            &"computed_traits[0].windw: unknown field \"windw\", did you mean \"window\"?"
                .to_owned()
        ),
        "{errs:#?}"
    );
    assert!(
        errs.iter().any(|e| e.starts_with(
            "computed_traits[0].aggregate: unknown aggregate \"cuont\", did you mean \"count\"?"
        )),
        "{errs:#?}"
    );
    assert!(
        errs.contains(
            &"segments[0].conditon: unknown field \"conditon\", did you mean \"condition\"?"
                .to_owned()
        ),
        "{errs:#?}"
    );
    assert!(errs.contains(&"segments[1].condition.ends_wth: unknown operator \"ends_wth\", did you mean \"ends_with\"?".to_owned()), "{errs:#?}");
}

#[test]
fn unknown_computed_trait_is_rejected_with_a_suggestion() {
    let errs = apply_errors(&format!(
        "{TRAITS}\nsegments:\n  - {{ id: wine, condition: {{ path: computed.wine_purchase_30d, ge: 1 }} }}\n"
    ));
    assert_eq!(
        errs,
        vec!["segments[0].condition.path: unknown computed trait \"wine_purchase_30d\", did you mean \"wine_purchases_30d\"?"]
    );
}

#[test]
fn unknown_segment_reference_is_rejected() {
    let errs = apply_errors(&format!(
        "{TRAITS}\nsegments:\n  - {{ id: vip, condition: true }}\n  - {{ id: b, condition: {{ not: {{ in_segment: vipp }} }} }}\n"
    ));
    assert_eq!(
        errs,
        vec![
            "segments[1].condition.not.in_segment: unknown segment \"vipp\", did you mean \"vip\"?"
        ]
    );
}

#[test]
fn reference_cycles_are_detected() {
    let errs = apply_errors(
        r#"
segments:
  - { id: a, condition: { in_segment: b } }
  - { id: b, condition: { any: [ { in_segment: c }, true ] } }
  - { id: c, condition: { in_segment: a } }
"#,
    );
    assert_eq!(
        errs,
        vec!["segments[0].condition: segment reference cycle: a -> b -> c -> a"]
    );
    let errs = apply_errors("segments:\n  - { id: self, condition: { in_segment: self } }\n");
    assert_eq!(
        errs,
        vec!["segments[0].condition: segment reference cycle: self -> self"]
    );
}

#[test]
fn cycle_through_an_existing_segment_is_detected() {
    let traits = ComputedTraitRegistry::new();
    let mut segments = SegmentRegistry::new();
    let a = SegmentDefinition::from_yaml_str("{ id: a, condition: true }").unwrap();
    let b = SegmentDefinition::from_yaml_str("{ id: b, condition: { in_segment: a } }").unwrap();
    segments.apply_all(vec![a, b], &traits).unwrap();
    let a2 = SegmentDefinition::from_yaml_str("{ id: a, condition: { in_segment: b } }").unwrap();
    let err = segments.apply(a2, &traits).unwrap_err().to_string();
    assert!(
        err.contains("segment reference cycle: a -> b -> a"),
        "{err}"
    );
    assert_eq!(
        segments.current("a").map(|v| v.version),
        Some(1),
        "rejected batch changes nothing"
    );
}

#[test]
fn computed_trait_definition_errors() {
    let errs = doc_errors(
        r#"
computed_traits:
  - { name: Lifetime Value, aggregate: sum, events: [Order Completed], window: 30 Tage }
  - { name: ok_name, aggregate: count, events: [], window: lifetime, of: trait.city }
"#,
    );
    let expected = [
        "computed_traits[0].name: expected lower-case letters",
        "computed_traits[0].of: aggregate \"sum\" needs the value to aggregate",
        "computed_traits[0].window: expected whole days like \"30d\"",
        "computed_traits[1].events: expected at least one event name",
        "computed_traits[1].of: expected an event path like \"event.properties.revenue\", found \"trait.city\"",
    ];
    for prefix in expected {
        assert!(
            errs.iter().any(|e| e.starts_with(prefix)),
            "missing {prefix:?} in {errs:#?}"
        );
    }
    assert_eq!(errs.len(), expected.len(), "{errs:#?}");
}

#[test]
fn where_clauses_may_only_look_at_the_event_and_not_at_time() {
    let errs = apply_errors(
        r#"
computed_traits:
  - name: a
    aggregate: count
    events: [Order Completed]
    where: { path: trait.city, eq: Bern }
    window: 30d
"#,
    );
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0].starts_with(
            "computed_traits[0].where.path: \"trait.city\" is not available here; allowed: event.*"
        ),
        "{errs:?}"
    );
    let errs = apply_errors(
        r#"
computed_traits:
  - name: a
    aggregate: count
    events: [Order Completed]
    where: { path: event.properties.delivery, within_next: 7d }
    window: 30d
"#,
    );
    assert!(
        errs[0].starts_with("computed_traits[0].where: time-relative operators"),
        "{errs:?}"
    );
}

#[test]
fn duplicate_ids_and_invalid_slugs() {
    let errs = apply_errors(
        "segments:\n  - { id: a, condition: true }\n  - { id: a, condition: false }\n",
    );
    assert_eq!(
        errs,
        vec!["segments[1].id: duplicate segment id \"a\" (also at index 0)"]
    );
    let errs = doc_errors("segments:\n  - { id: Wine Lovers, condition: true }\n");
    assert!(
        errs[0].starts_with("segments[0].id: expected lower-case letters"),
        "{errs:?}"
    );
}

#[test]
fn json_documents_give_the_same_errors() {
    let json = r#"{"segments": [{"id": "x", "condition": {"all": [true, true, {"path": "computed.ltv", "gt": "fünfhundert"}]}}]}"#;
    let errs: Vec<String> = Definitions::from_json_str(json)
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        errs,
        vec!["segments[0].condition.all[2].gt: expected a number or a date, found \"fünfhundert\""]
    );
}

#[test]
fn yaml_and_json_documents_are_the_same_structure() {
    let yaml = Definitions::from_yaml_str(&format!(
        "{TRAITS}\nsegments:\n  - {{ id: big, name: Big, condition: {{ path: computed.lifetime_value_chf, between: [500, 1'000] }} }}\n"
    ))
    .unwrap();
    let json_text = serde_json::to_string(&yaml.to_value()).unwrap();
    let json = Definitions::from_json_str(&json_text).unwrap();
    assert_eq!(yaml, json);
    let yaml_text = serde_norway::to_string(&yaml.to_value()).unwrap();
    assert_eq!(Definitions::from_yaml_str(&yaml_text).unwrap(), yaml);
}
