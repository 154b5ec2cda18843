//! Pairing knowledge a marketer can edit: weighted rules between attribute
//! values of two catalogs, kept as a YAML or JSON document.
//!
//! ```yaml
//! version: 3
//! rules:
//!   - id: sparkling-antipasti
//!     from: { catalog: wines, attribute: type, values: [sparkling] }
//!     to: { catalog: recipes, attribute: course, values: [antipasti] }
//!     weight: 0.9
//!     note: Prosecco opens the evening
//! ```
//!
//! `weight` is in `[-1, 1]` (negative = "does not go together").
//! Rules are bidirectional unless `bidirectional: false`. The pseudo
//! attribute `category` matches item categories. Validation against a
//! [`CatalogSet`] reports every problem with its path and a did-you-mean
//! suggestion; [`PairingRules::content_hash`] is a stable hash of the
//! canonical content; [`PairingRules::diff`] summarises two versions.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::analysis::normalize_value;
use crate::catalog::CatalogSet;
use crate::error::{RuleProblem, RulesError};

/// One side of a rule: values of an attribute of a catalog.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSide {
    /// Catalog name.
    pub catalog: String,
    /// Attribute name, or `category`.
    pub attribute: String,
    /// Matching values (any of). `value: x` is accepted as a shorthand.
    #[serde(alias = "value", deserialize_with = "one_or_many")]
    pub values: Vec<String>,
}

impl RuleSide {
    /// Convenience constructor.
    pub fn new(catalog: &str, attribute: &str, values: &[&str]) -> Self {
        Self {
            catalog: catalog.to_string(),
            attribute: attribute.to_string(),
            values: values.iter().map(|value| value.to_string()).collect(),
        }
    }
}

fn one_or_many<'de, D>(deserializer: D) -> Result<Vec<String>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(deserializer)? {
        OneOrMany::One(value) => vec![value],
        OneOrMany::Many(values) => values,
    })
}

fn default_true() -> bool {
    true
}

fn is_true(flag: &bool) -> bool {
    *flag
}

/// A weighted pairing rule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PairingRule {
    /// Unique id, shown in recommendation reasons.
    pub id: String,
    /// Anchor side (e.g. the wine just bought).
    pub from: RuleSide,
    /// Recommended side (e.g. recipes).
    pub to: RuleSide,
    /// Strength in `[-1, 1]`.
    pub weight: f64,
    /// Whether the rule also applies from `to` to `from`.
    #[serde(default = "default_true", skip_serializing_if = "is_true")]
    pub bidirectional: bool,
    /// Free text for the marketer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A versioned rule document.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PairingRules {
    /// Marketer-maintained version number.
    pub version: u64,
    /// Optional description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The rules.
    #[serde(default)]
    pub rules: Vec<PairingRule>,
}

/// Non-fatal findings of validation (e.g. a value no item has yet).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ValidationReport {
    /// Warnings with their paths.
    pub warnings: Vec<RuleProblem>,
}

/// How two rule-document versions differ, by rule id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RulesDiff {
    /// Version of the old document.
    pub from_version: u64,
    /// Version of the new document.
    pub to_version: u64,
    /// Rule ids only in the new document.
    pub added: Vec<String>,
    /// Rule ids only in the old document.
    pub removed: Vec<String>,
    /// Rule ids present in both with changed fields (`id: field, field`).
    pub changed: Vec<(String, Vec<String>)>,
}

impl RulesDiff {
    /// True when no rule changed.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }
}

impl fmt::Display for RulesDiff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "rules v{} → v{}", self.from_version, self.to_version)?;
        for id in &self.added {
            writeln!(f, "  + {id}")?;
        }
        for id in &self.removed {
            writeln!(f, "  - {id}")?;
        }
        for (id, fields) in &self.changed {
            writeln!(f, "  ~ {id} ({})", fields.join(", "))?;
        }
        if self.is_empty() {
            writeln!(f, "  (no rule changes)")?;
        }
        Ok(())
    }
}

/// Weights outside this range are rejected.
pub const WEIGHT_RANGE: std::ops::RangeInclusive<f64> = -1.0..=1.0;

impl PairingRules {
    /// An empty document.
    pub fn new(version: u64) -> Self {
        Self {
            version,
            description: None,
            rules: Vec::new(),
        }
    }

    /// Parses YAML. Errors carry the parser's line/column and, for shape
    /// errors, the path (`rules[2]: missing field \`weight\``).
    pub fn from_yaml_str(text: &str) -> Result<Self, RulesError> {
        serde_norway::from_str(text).map_err(|error| RulesError::Parse {
            format: "yaml",
            message: with_path(
                serde_norway::from_str::<serde_json::Value>(text).ok(),
                error.to_string(),
            ),
        })
    }

    /// Parses JSON (errors as for YAML).
    pub fn from_json_str(text: &str) -> Result<Self, RulesError> {
        serde_json::from_str(text).map_err(|error| RulesError::Parse {
            format: "json",
            message: with_path(
                serde_json::from_str::<serde_json::Value>(text).ok(),
                error.to_string(),
            ),
        })
    }

    /// Serialises to YAML.
    pub fn to_yaml_string(&self) -> Result<String, RulesError> {
        serde_norway::to_string(self).map_err(|error| RulesError::Parse {
            format: "yaml",
            message: error.to_string(),
        })
    }

    /// Stable 64-bit hash (hex) of the canonical JSON form: independent of
    /// YAML vs JSON, key order and whitespace of the source text.
    pub fn content_hash(&self) -> String {
        let canonical = serde_json::to_vec(self).unwrap_or_default();
        format!("{:016x}", xxhash_rust::xxh3::xxh3_64(&canonical))
    }

    /// Checks the document on its own: ids, weights, non-empty values.
    pub fn validate_structure(&self) -> Result<(), RulesError> {
        let problems = self.structure_problems();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(RulesError::Invalid(problems))
        }
    }

    fn structure_problems(&self) -> Vec<RuleProblem> {
        let mut problems = Vec::new();
        let mut first_use: BTreeMap<&str, usize> = BTreeMap::new();
        for (index, rule) in self.rules.iter().enumerate() {
            let path = format!("rules[{index}]");
            if rule.id.trim().is_empty() {
                problems.push(problem(
                    format!("{path}.id"),
                    "rule id must not be empty".to_string(),
                ));
            } else if let Some(first) = first_use.insert(rule.id.as_str(), index) {
                first_use.insert(rule.id.as_str(), first);
                problems.push(problem(
                    format!("{path}.id"),
                    format!(
                        "duplicate rule id \"{}\" (first used at rules[{first}])",
                        rule.id
                    ),
                ));
            }
            if !rule.weight.is_finite() || !WEIGHT_RANGE.contains(&rule.weight) {
                problems.push(problem(
                    format!("{path}.weight"),
                    format!("weight {} out of range [-1, 1]", rule.weight),
                ));
            }
            for (side_name, side) in [("from", &rule.from), ("to", &rule.to)] {
                if side.values.iter().all(|value| value.trim().is_empty()) {
                    problems.push(problem(
                        format!("{path}.{side_name}.values"),
                        "at least one non-empty value is required".to_string(),
                    ));
                }
            }
        }
        problems
    }

    /// Validates against catalogs: unknown catalogs and attributes are
    /// errors (with did-you-mean), values no item has are warnings.
    pub fn validate(&self, catalogs: &CatalogSet) -> Result<ValidationReport, RulesError> {
        let mut problems = self.structure_problems();
        let mut report = ValidationReport::default();
        let catalog_names: Vec<String> = catalogs.names().map(str::to_string).collect();
        for (index, rule) in self.rules.iter().enumerate() {
            for (side_name, side) in [("from", &rule.from), ("to", &rule.to)] {
                let path = format!("rules[{index}].{side_name}");
                let Some(catalog) = catalogs.get(&side.catalog) else {
                    problems.push(problem(
                        format!("{path}.catalog"),
                        format!(
                            "unknown catalog \"{}\"{}",
                            side.catalog,
                            did_you_mean(&side.catalog, &catalog_names)
                        ),
                    ));
                    continue;
                };
                let attributes: Vec<String> = catalog.known_attributes().into_iter().collect();
                if !attributes.contains(&side.attribute) {
                    problems.push(problem(
                        format!("{path}.attribute"),
                        format!(
                            "unknown attribute \"{}\" in catalog \"{}\"{}",
                            side.attribute,
                            side.catalog,
                            did_you_mean(&side.attribute, &attributes)
                        ),
                    ));
                    continue;
                }
                let known: BTreeSet<String> = catalog
                    .known_values(&side.attribute)
                    .iter()
                    .map(|value| normalize_value(value))
                    .collect();
                let known_list: Vec<String> = known.iter().cloned().collect();
                for (value_index, value) in side.values.iter().enumerate() {
                    let normalised = normalize_value(value);
                    if !normalised.is_empty() && !known.contains(&normalised) {
                        report.warnings.push(problem(
                            format!("{path}.values[{value_index}]"),
                            format!(
                                "no item in catalog \"{}\" has {} \"{}\" yet{}",
                                side.catalog,
                                side.attribute,
                                value,
                                did_you_mean(&normalised, &known_list)
                            ),
                        ));
                    }
                }
            }
        }
        if problems.is_empty() {
            Ok(report)
        } else {
            Err(RulesError::Invalid(problems))
        }
    }

    /// Summary of changes from `self` (old) to `newer`.
    pub fn diff(&self, newer: &PairingRules) -> RulesDiff {
        let old: BTreeMap<&str, &PairingRule> = self
            .rules
            .iter()
            .map(|rule| (rule.id.as_str(), rule))
            .collect();
        let new: BTreeMap<&str, &PairingRule> = newer
            .rules
            .iter()
            .map(|rule| (rule.id.as_str(), rule))
            .collect();
        let added = new
            .keys()
            .filter(|id| !old.contains_key(*id))
            .map(|id| id.to_string())
            .collect();
        let removed = old
            .keys()
            .filter(|id| !new.contains_key(*id))
            .map(|id| id.to_string())
            .collect();
        let mut changed = Vec::new();
        for (id, before) in &old {
            let Some(after) = new.get(id) else { continue };
            let mut fields = Vec::new();
            if before.from != after.from {
                fields.push("from".to_string());
            }
            if before.to != after.to {
                fields.push("to".to_string());
            }
            if before.weight != after.weight {
                fields.push(format!("weight {} → {}", before.weight, after.weight));
            }
            if before.bidirectional != after.bidirectional {
                fields.push("bidirectional".to_string());
            }
            if before.note != after.note {
                fields.push("note".to_string());
            }
            if !fields.is_empty() {
                changed.push((id.to_string(), fields));
            }
        }
        RulesDiff {
            from_version: self.version,
            to_version: newer.version,
            added,
            removed,
            changed,
        }
    }
}

/// Finds which part of a syntactically valid document has the wrong shape
/// (serde's messages name the expected type but not where).
fn with_path(document: Option<serde_json::Value>, message: String) -> String {
    let Some(document) = document else {
        return message;
    };
    if let Some(version) = document.get("version") {
        if serde_json::from_value::<u64>(version.clone()).is_err() {
            return format!("version: {message}");
        }
    }
    if let Some(rules) = document.get("rules").and_then(serde_json::Value::as_array) {
        for (index, rule) in rules.iter().enumerate() {
            if let Err(error) = serde_json::from_value::<PairingRule>(rule.clone()) {
                return format!("rules[{index}]: {error}");
            }
        }
    }
    message
}

fn problem(path: String, message: String) -> RuleProblem {
    RuleProblem { path, message }
}

/// Edit distance counting a swap of neighbours as one edit (optimal
/// string alignment; "wien" → "wein" is 1), for small inputs.
pub(crate) fn edit_distance(left: &str, right: &str) -> usize {
    let left: Vec<char> = left.chars().collect();
    let right: Vec<char> = right.chars().collect();
    let width = right.len() + 1;
    let mut table = vec![0usize; (left.len() + 1) * width];
    for row in 0..=left.len() {
        table[row * width] = row;
    }
    for (column, cell) in table.iter_mut().enumerate().take(width) {
        *cell = column;
    }
    for row in 1..=left.len() {
        for column in 1..=right.len() {
            let cost = usize::from(left[row - 1] != right[column - 1]);
            let mut best = (table[(row - 1) * width + column] + 1)
                .min(table[row * width + column - 1] + 1)
                .min(table[(row - 1) * width + column - 1] + cost);
            if row > 1
                && column > 1
                && left[row - 1] == right[column - 2]
                && left[row - 2] == right[column - 1]
            {
                best = best.min(table[(row - 2) * width + column - 2] + 1);
            }
            table[row * width + column] = best;
        }
    }
    table[left.len() * width + right.len()]
}

/// `" (did you mean \"x\"?)"` for the closest candidate within a distance
/// that scales with the word length, or an empty string.
pub(crate) fn did_you_mean(word: &str, candidates: &[String]) -> String {
    let length = word.chars().count();
    let limit = if length <= 3 {
        1
    } else {
        (length / 3).clamp(2, 3)
    };
    candidates
        .iter()
        .map(|candidate| (edit_distance(word, candidate), candidate))
        .filter(|(distance, _)| *distance <= limit)
        .min()
        .map(|(_, candidate)| format!(" (did you mean \"{candidate}\"?)"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_examples() {
        assert_eq!(edit_distance("cusine", "cuisine"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("wein", "wein"), 0);
        assert_eq!(edit_distance("weins", "wines"), 2);
        assert_eq!(edit_distance("wien", "wein"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(
            did_you_mean("cusine", &["course".into(), "cuisine".into()]),
            " (did you mean \"cuisine\"?)"
        );
        assert_eq!(did_you_mean("xyz", &["cuisine".into()]), "");
    }

    #[test]
    fn hash_is_stable_across_formats() {
        let yaml = "version: 2\nrules:\n  - id: a\n    from: {catalog: wines, attribute: type, value: sparkling}\n    to: {catalog: recipes, attribute: course, values: [antipasti]}\n    weight: 0.5\n";
        let json = r#"{"rules":[{"weight":0.5,"id":"a","to":{"values":["antipasti"],"attribute":"course","catalog":"recipes"},"from":{"catalog":"wines","attribute":"type","values":["sparkling"]}}],"version":2}"#;
        let from_yaml = PairingRules::from_yaml_str(yaml).unwrap_or_else(|error| panic!("{error}"));
        let from_json = PairingRules::from_json_str(json).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(from_yaml, from_json);
        assert_eq!(from_yaml.content_hash(), from_json.content_hash());
        let mut changed = from_yaml.clone();
        changed.rules[0].weight = 0.6;
        assert_ne!(changed.content_hash(), from_yaml.content_hash());
        let diff = from_yaml.diff(&changed);
        assert_eq!(diff.changed.len(), 1);
        assert!(diff.to_string().contains("weight 0.5 → 0.6"), "{diff}");
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let yaml = "version: 1\nrules:\n  - id: a\n    from: {catalog: w, attribute: t, values: [x]}\n    to: {catalog: r, attribute: c, values: [y]}\n    wieght: 0.5\n";
        let error = PairingRules::from_yaml_str(yaml)
            .err()
            .map(|error| error.to_string())
            .unwrap_or_default();
        assert!(error.contains("wieght"), "{error}");
    }
}
