//! Reading definition objects field by field, recording errors with their field paths and
//! suggesting the intended key for unknown ones.

use serde_json::{Map, Value};

use kreislauf_expr::error::{child, describe, index};
use kreislauf_expr::suggest::hint;
use kreislauf_expr::ValidationErrors;

/// One JSON object being read at field path `at`.
pub(crate) struct ObjectReader<'v> {
    pub map: &'v Map<String, Value>,
    pub at: String,
}

impl<'v> ObjectReader<'v> {
    /// Reads `value` as an object whose fields must be among `known`.
    pub fn new(
        value: &'v Value,
        at: &str,
        what: &str,
        known: &[&str],
        errors: &mut ValidationErrors,
    ) -> Option<Self> {
        let Value::Object(map) = value else {
            errors.push(
                display(at),
                format!("expected {what} (an object), found {}", describe(value)),
            );
            return None;
        };
        for key in map.keys() {
            if !known.contains(&key.as_str()) {
                errors.push(
                    child(at, key),
                    format!(
                        "unknown field \"{key}\"{}",
                        hint(key, known.iter().copied())
                    ),
                );
            }
        }
        Some(Self {
            map,
            at: at.to_owned(),
        })
    }

    pub fn path(&self, key: &str) -> String {
        child(&self.at, key)
    }

    pub fn get(&self, key: &str) -> Option<&'v Value> {
        self.map.get(key)
    }

    pub fn required(&self, key: &str, errors: &mut ValidationErrors) -> Option<&'v Value> {
        let v = self.map.get(key);
        if v.is_none() {
            errors.push(self.path(key), "missing required field");
        }
        v
    }

    pub fn string(
        &self,
        key: &str,
        required: bool,
        errors: &mut ValidationErrors,
    ) -> Option<String> {
        let value = if required {
            self.required(key, errors)?
        } else {
            self.get(key)?
        };
        match value {
            Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
            other => {
                errors.push(
                    self.path(key),
                    format!("expected a non-empty string, found {}", describe(other)),
                );
                None
            }
        }
    }

    /// A list of non-empty strings; a single string counts as a list of one.
    pub fn string_list(&self, key: &str, errors: &mut ValidationErrors) -> Option<Vec<String>> {
        let value = self.get(key)?;
        let at = self.path(key);
        match value {
            Value::String(s) if !s.is_empty() => Some(vec![s.clone()]),
            Value::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    match item {
                        Value::String(s) if !s.is_empty() => out.push(s.clone()),
                        other => errors.push(
                            index(&at, i),
                            format!("expected a non-empty string, found {}", describe(other)),
                        ),
                    }
                }
                Some(out)
            }
            other => {
                errors.push(
                    at,
                    format!("expected a list of strings, found {}", describe(other)),
                );
                None
            }
        }
    }
}

pub(crate) fn display(at: &str) -> String {
    if at.is_empty() {
        "(definition)".to_owned()
    } else {
        at.to_owned()
    }
}

/// Whether `id` is a slug: lower-case ASCII letters, digits, `_` and `-`, starting with a
/// letter or digit, at most 64 characters. (Names appear in paths such as `computed.<name>`.)
pub(crate) fn check_slug(id: &str, allow_dash: bool) -> Result<(), String> {
    let ok_char = |c: char| {
        c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || (allow_dash && c == '-')
    };
    let starts_ok = id
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if id.len() <= 64 && starts_ok && id.chars().all(ok_char) {
        Ok(())
    } else {
        Err(format!(
            "expected lower-case letters, digits{} and \"_\" (at most 64, starting with a letter or digit), found \"{id}\"",
            if allow_dash { ", \"-\"" } else { "" }
        ))
    }
}

/// Parses YAML text into the JSON data model (so YAML and JSON share one validator).
pub(crate) fn parse_yaml(text: &str) -> Result<Value, ValidationErrors> {
    serde_norway::from_str(text)
        .map_err(|e| ValidationErrors::single("(document)", format!("invalid yaml: {e}")))
}

pub(crate) fn parse_json(text: &str) -> Result<Value, ValidationErrors> {
    serde_json::from_str(text)
        .map_err(|e| ValidationErrors::single("(document)", format!("invalid json: {e}")))
}
