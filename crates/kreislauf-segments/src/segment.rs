//! Segment definitions and definition documents (JSON or YAML, one structure).
//!
//! ```yaml
//! computed_traits:
//!   - name: sparkling_purchases_30d
//!     aggregate: count
//!     events: [Order Completed]
//!     sources: [supermarket]
//!     where: { path: event.properties.category, eq: sparkling_wine }
//!     window: 30d
//! segments:
//!   - id: sparkling-wine-club
//!     name: Sparkling-wine buyers (30 days) with wine-club e-mail consent
//!     condition:
//!       all:
//!         - { path: computed.sparkling_purchases_30d, ge: 1 }
//!         - { path: consent.wine_club.email.marketing, eq: true }
//! ```

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use kreislauf_expr::error::{child, describe, index};
use kreislauf_expr::{Expr, ValidationErrors};

use crate::computed::ComputedTraitDef;
use crate::hash::content_hash;
use crate::reader::{check_slug, parse_json, parse_yaml, ObjectReader};

/// A segment as written.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentDefinition {
    /// Stable id: lower-case letters, digits, `_`, `-`.
    pub id: String,
    /// Display name.
    pub name: String,
    pub description: Option<String>,
    pub condition: Expr,
}

const SEGMENT_FIELDS: [&str; 4] = ["id", "name", "description", "condition"];
const DOCUMENT_FIELDS: [&str; 2] = ["computed_traits", "segments"];

impl SegmentDefinition {
    /// Parses a definition located at field path `at` in its document.
    pub fn from_value_at(value: &Value, at: &str) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let Some(r) = ObjectReader::new(value, at, "a segment", &SEGMENT_FIELDS, &mut errors)
        else {
            return Err(errors);
        };
        let id = r.string("id", true, &mut errors);
        if let Some(id) = &id {
            if let Err(m) = check_slug(id, true) {
                errors.push(r.path("id"), m);
            }
        }
        let name = r.string("name", false, &mut errors);
        let description = r.string("description", false, &mut errors);
        let condition =
            r.required("condition", &mut errors).and_then(|v| {
                match Expr::from_value_at(v, &r.path("condition")) {
                    Ok(e) => Some(e),
                    Err(e) => {
                        errors.extend(e);
                        None
                    }
                }
            });
        match (id, condition) {
            (Some(id), Some(condition)) if errors.is_empty() => Ok(Self {
                name: name.unwrap_or_else(|| id.clone()),
                id,
                description,
                condition,
            }),
            _ => Err(errors),
        }
    }

    pub fn from_yaml_str(text: &str) -> Result<Self, ValidationErrors> {
        Self::from_value_at(&parse_yaml(text)?, "")
    }

    pub fn from_json_str(text: &str) -> Result<Self, ValidationErrors> {
        Self::from_value_at(&parse_json(text)?, "")
    }

    /// The canonical JSON structure.
    pub fn to_value(&self) -> Value {
        let mut m = Map::new();
        m.insert("id".into(), Value::String(self.id.clone()));
        m.insert("name".into(), Value::String(self.name.clone()));
        if let Some(d) = &self.description {
            m.insert("description".into(), Value::String(d.clone()));
        }
        m.insert("condition".into(), self.condition.to_value());
        Value::Object(m)
    }

    /// Hash of the canonical form; equal content, equal hash.
    pub fn content_hash(&self) -> u64 {
        content_hash(&self.to_value())
    }
}

impl Serialize for SegmentDefinition {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_value().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for SegmentDefinition {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Self::from_value_at(&value, "").map_err(serde::de::Error::custom)
    }
}

/// A definitions document: computed traits and segments, as `kreislauf segment apply` reads it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Definitions {
    pub computed_traits: Vec<ComputedTraitDef>,
    pub segments: Vec<SegmentDefinition>,
}

impl Definitions {
    /// Parses a document; every error names its field path, e.g.
    /// `segments[0].condition.all[2].gt: expected a number or a date, found "fünfhundert"`.
    pub fn from_value(value: &Value) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let Some(r) = ObjectReader::new(
            value,
            "",
            "a definitions document",
            &DOCUMENT_FIELDS,
            &mut errors,
        ) else {
            return Err(errors);
        };
        let mut out = Definitions::default();
        let list = |key: &str, errors: &mut ValidationErrors| -> Vec<(String, Value)> {
            match r.get(key) {
                None => Vec::new(),
                Some(Value::Array(items)) => items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| (index(key, i), v.clone()))
                    .collect(),
                Some(other) => {
                    errors.push(
                        child("", key),
                        format!("expected a list, found {}", describe(other)),
                    );
                    Vec::new()
                }
            }
        };
        for (at, v) in list("computed_traits", &mut errors) {
            match ComputedTraitDef::from_value_at(&v, &at) {
                Ok(d) => out.computed_traits.push(d),
                Err(e) => errors.extend(e),
            }
        }
        for (at, v) in list("segments", &mut errors) {
            match SegmentDefinition::from_value_at(&v, &at) {
                Ok(d) => out.segments.push(d),
                Err(e) => errors.extend(e),
            }
        }
        errors.into_result(out)
    }

    pub fn from_yaml_str(text: &str) -> Result<Self, ValidationErrors> {
        Self::from_value(&parse_yaml(text)?)
    }

    pub fn from_json_str(text: &str) -> Result<Self, ValidationErrors> {
        Self::from_value(&parse_json(text)?)
    }

    pub fn to_value(&self) -> Value {
        let mut m = Map::new();
        m.insert(
            "computed_traits".into(),
            Value::Array(
                self.computed_traits
                    .iter()
                    .map(ComputedTraitDef::to_value)
                    .collect(),
            ),
        );
        m.insert(
            "segments".into(),
            Value::Array(
                self.segments
                    .iter()
                    .map(SegmentDefinition::to_value)
                    .collect(),
            ),
        );
        Value::Object(m)
    }
}
