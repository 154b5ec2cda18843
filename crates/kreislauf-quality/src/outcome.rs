//! The result type every field checker returns.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// How good a field value is.
///
/// Serialises flat into [`FieldOutcome`] as `"status": "suspicious", "reason": "…"`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum FieldStatus {
    /// The value was already in its normal form.
    Valid,
    /// The value is valid; normalisation changed how it is written (case, spacing, format).
    Normalised,
    /// The value is usable but probably wrong (typo, placeholder, disposable address, …).
    Suspicious {
        /// Short lowercase English phrase naming what looks wrong.
        reason: String,
    },
    /// The value cannot be used.
    Invalid {
        /// Short lowercase English phrase naming what is wrong.
        reason: String,
    },
    /// No value was given (absent, empty or only whitespace).
    Missing,
}

impl FieldStatus {
    /// The reason of a suspicious or invalid value.
    pub fn reason(&self) -> Option<&str> {
        match self {
            FieldStatus::Suspicious { reason } | FieldStatus::Invalid { reason } => Some(reason),
            _ => None,
        }
    }
}

/// The outcome of checking one field.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FieldOutcome {
    /// The value as received; `None` only when the field was absent.
    pub raw: Option<String>,
    /// The normalised value; `None` when missing or invalid.
    pub value: Option<String>,
    /// Valid, normalised, suspicious, invalid or missing.
    #[serde(flatten)]
    pub status: FieldStatus,
    /// A likely correction the user could confirm (e.g. the e-mail with a fixed domain).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suggestion: Option<String>,
    /// Field-specific facts (phone number type, house number, age, matching key, …).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub details: Map<String, Value>,
}

impl FieldOutcome {
    /// The outcome for a field that was not supplied at all.
    pub fn missing() -> Self {
        FieldOutcome {
            raw: None,
            value: None,
            status: FieldStatus::Missing,
            suggestion: None,
            details: Map::new(),
        }
    }

    /// True when the field has a value that may be used (valid, normalised or suspicious).
    pub fn is_usable(&self) -> bool {
        self.value.is_some()
            && matches!(
                self.status,
                FieldStatus::Valid | FieldStatus::Normalised | FieldStatus::Suspicious { .. }
            )
    }

    /// A blank raw value.
    pub(crate) fn blank(raw: &str) -> Self {
        FieldOutcome {
            raw: Some(raw.to_owned()),
            ..FieldOutcome::missing()
        }
    }

    pub(crate) fn invalid(raw: &str, reason: impl Into<String>) -> Self {
        FieldOutcome {
            raw: Some(raw.to_owned()),
            value: None,
            status: FieldStatus::Invalid {
                reason: reason.into(),
            },
            suggestion: None,
            details: Map::new(),
        }
    }

    /// A usable value: `Valid` when it equals the raw input, `Normalised` otherwise.
    pub(crate) fn usable(raw: &str, value: String) -> Self {
        let status = if value == raw {
            FieldStatus::Valid
        } else {
            FieldStatus::Normalised
        };
        FieldOutcome {
            raw: Some(raw.to_owned()),
            value: Some(value),
            status,
            suggestion: None,
            details: Map::new(),
        }
    }

    /// Marks a usable value as suspicious; keeps the first reason if already suspicious.
    pub(crate) fn suspect(mut self, reason: impl Into<String>) -> Self {
        if !matches!(
            self.status,
            FieldStatus::Suspicious { .. } | FieldStatus::Invalid { .. }
        ) {
            self.status = FieldStatus::Suspicious {
                reason: reason.into(),
            };
        }
        self
    }

    pub(crate) fn detail(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.details.insert(key.to_owned(), value.into());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialises_flat_and_snake_case() {
        let outcome = FieldOutcome::usable(" a ", "a".to_owned()).suspect("looks odd");
        let json = serde_json::to_value(&outcome).expect("serialisable");
        assert_eq!(
            json,
            serde_json::json!({"raw": " a ", "value": "a", "status": "suspicious", "reason": "looks odd"})
        );
        let back: FieldOutcome = serde_json::from_value(json).expect("deserialisable");
        assert_eq!(back, outcome);

        let json = serde_json::to_value(FieldOutcome::missing()).expect("serialisable");
        assert_eq!(
            json,
            serde_json::json!({"raw": null, "value": null, "status": "missing"})
        );
    }

    #[test]
    fn first_reason_wins() {
        let outcome = FieldOutcome::usable("a", "a".to_owned())
            .suspect("first")
            .suspect("second");
        assert_eq!(outcome.status.reason(), Some("first"));
        assert!(outcome.is_usable());
        assert!(!FieldOutcome::invalid("x", "bad").is_usable());
    }
}
