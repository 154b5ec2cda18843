//! Rule documents: validation errors name the path, did-you-mean, hashing,
//! diffs.
#![allow(clippy::unwrap_used)]

mod common;

use kreislauf_recs::{ModelBuilder, PairingRules, RecsError, RulesError};

fn problems(error: RulesError) -> Vec<String> {
    match error {
        RulesError::Invalid(problems) => problems.iter().map(ToString::to_string).collect(),
        other => panic!("expected validation problems, got {other}"),
    }
}

const BROKEN: &str = r#"
version: 2
rules:
  - id: ok
    from: { catalog: wines, attribute: type, values: [sparkling] }
    to: { catalog: recipes, attribute: course, values: [antipasti] }
    weight: 0.9
  - id: typo-catalog
    from: { catalog: weins, attribute: type, values: [red] }
    to: { catalog: recipes, attribute: course, values: [hauptgericht] }
    weight: 0.5
  - id: ok
    from: { catalog: wines, attribute: type, values: [white] }
    to: { catalog: recipes, attribute: diet, values: [fisch] }
    weight: 1.5
  - id: typo-attribute
    from: { catalog: wines, attribute: type, values: [red] }
    to: { catalog: recipes, attribute: cusine, values: [italienisch] }
    weight: 0.4
  - id: empty
    from: { catalog: wines, attribute: grape, values: [""] }
    to: { catalog: deli, attribute: colour, values: [gelb] }
    weight: -0.2
"#;

#[test]
fn validation_names_every_offending_path() {
    let rules = PairingRules::from_yaml_str(BROKEN).unwrap();
    let problems = problems(rules.validate(&common::catalogs()).unwrap_err());
    let expected = [
        "rules[1].from.catalog: unknown catalog \"weins\" (did you mean \"wines\"?)",
        "rules[2].id: duplicate rule id \"ok\" (first used at rules[0])",
        "rules[2].weight: weight 1.5 out of range [-1, 1]",
        "rules[3].to.attribute: unknown attribute \"cusine\" in catalog \"recipes\" (did you mean \"cuisine\"?)",
        "rules[4].from.values: at least one non-empty value is required",
        "rules[4].to.attribute: unknown attribute \"colour\" in catalog \"deli\"",
    ];
    for message in expected {
        assert!(
            problems.iter().any(|problem| problem == message),
            "missing {message:?} in {problems:#?}"
        );
    }
    assert_eq!(problems.len(), expected.len(), "{problems:#?}");
    // The builder refuses invalid rules with the same message.
    let error = ModelBuilder::new(common::catalogs())
        .with_rules(rules)
        .err()
        .unwrap();
    assert!(matches!(error, RecsError::Rules(_)));
    assert!(
        error.to_string().contains("rules[3].to.attribute"),
        "{error}"
    );
}

#[test]
fn unknown_values_are_warnings_with_suggestions() {
    let yaml = r#"
version: 1
rules:
  - id: a
    from: { catalog: wines, attribute: type, values: [sparkling, sparkeling] }
    to: { catalog: recipes, attribute: course, values: [antipasto] }
    weight: 0.5
"#;
    let report = PairingRules::from_yaml_str(yaml)
        .unwrap()
        .validate(&common::catalogs())
        .unwrap();
    let warnings: Vec<String> = report.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(
        warnings[0].starts_with("rules[0].from.values[1]:"),
        "{warnings:?}"
    );
    assert!(
        warnings[0].contains("did you mean \"sparkling\""),
        "{warnings:?}"
    );
    assert!(
        warnings[1].contains("did you mean \"antipasti\""),
        "{warnings:?}"
    );
}

#[test]
fn parse_errors_mention_location() {
    let error = PairingRules::from_yaml_str("version: 1\nrules:\n  - id: [unclosed\n")
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with("cannot parse yaml rule document"),
        "{error}"
    );
    assert!(error.contains("line"), "{error}");
    let error = PairingRules::from_json_str(r#"{"version": "one", "rules": []}"#)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("json") && error.contains("version: invalid type"),
        "{error}"
    );
    let yaml = "version: 1\nrules:\n  - id: a\n    from: {catalog: w, attribute: t, values: [x]}\n    to: {catalog: r, attribute: c, values: [y]}\n";
    let error = PairingRules::from_yaml_str(yaml).unwrap_err().to_string();
    assert!(
        error.contains("rules[0]: missing field `weight`"),
        "{error}"
    );
}

#[test]
fn versions_hash_and_diff() {
    let base = common::rules();
    base.validate(&common::catalogs()).unwrap();
    let same = PairingRules::from_json_str(&serde_json::to_string(&base).unwrap()).unwrap();
    assert_eq!(base.content_hash(), same.content_hash());
    assert_eq!(base.content_hash().len(), 16);
    let mut next = base.clone();
    next.version = 8;
    next.rules.retain(|rule| rule.id != "red-not-fish");
    next.rules[0].weight = 0.95;
    next.rules.push(kreislauf_recs::PairingRule {
        id: "white-fondue".into(),
        from: kreislauf_recs::RuleSide::new("wines", "type", &["white"]),
        to: kreislauf_recs::RuleSide::new("recipes", "main_ingredients", &["käse"]),
        weight: 0.7,
        bidirectional: false,
        note: None,
    });
    assert_ne!(base.content_hash(), next.content_hash());
    let diff = base.diff(&next);
    assert_eq!(diff.added, vec!["white-fondue"]);
    assert_eq!(diff.removed, vec!["red-not-fish"]);
    assert_eq!(diff.changed.len(), 1);
    assert_eq!(diff.changed[0].0, "sparkling-antipasti");
    let text = diff.to_string();
    assert!(text.starts_with("rules v7 → v8"), "{text}");
    assert!(
        text.contains("+ white-fondue") && text.contains("- red-not-fish"),
        "{text}"
    );
    assert!(base.diff(&same).is_empty());
    // YAML round trip keeps the content (and the hash).
    let yaml = next.to_yaml_string().unwrap();
    assert_eq!(
        PairingRules::from_yaml_str(&yaml).unwrap().content_hash(),
        next.content_hash()
    );
}
