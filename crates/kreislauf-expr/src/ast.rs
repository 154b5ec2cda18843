//! The condition AST and its one document format (the same structure in JSON and YAML).
//!
//! A condition is one of:
//! * `true` / `false`;
//! * `{all: [c, ...]}`, `{any: [c, ...]}` (non-empty), `{not: c}`;
//! * `{in_segment: <segment id>}`;
//! * `{exists: <path>}`, `{missing: <path>}`;
//! * `{path: <path>, <operator>: <argument>}` with optional `ignore_case: true` for the string
//!   operators. Operators: `eq ne lt le gt ge between contains starts_with ends_with matches in
//!   not_in any_of all_of within_last more_than_ago within_next anniversary`.
//!
//! Parsing reports every problem with its field path; serialising gives the canonical form, and
//! parsing that again gives the same AST.

use std::collections::BTreeSet;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::error::{child, describe, index, ValidationErrors};
use crate::literal::{parse_date, parse_decimal, parse_instant, Anniversary, Literal, Span};
use crate::path::{IdentityKind, Path};
use crate::suggest::hint;

/// A condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Const(bool),
    All(Vec<Expr>),
    Any(Vec<Expr>),
    Not(Box<Expr>),
    /// Membership in another segment (as computed in the same evaluation pass).
    InSegment(String),
    Test(Predicate),
}

/// A test of one operand.
#[derive(Debug, Clone, PartialEq)]
pub struct Predicate {
    pub path: Path,
    pub test: Test,
    /// Case-, accent- and umlaut-insensitive string comparison (string operators only).
    pub ignore_case: bool,
}

/// The operators. For list-valued operands (JSON arrays, identities) every operator except
/// `exists`, `missing`, `all_of`, `ne` and `not_in` holds if it holds for *some* element.
#[derive(Debug, Clone, PartialEq)]
pub enum Test {
    Exists,
    Missing,
    Eq(Literal),
    /// Present and not equal: `exists` and not `eq`.
    Ne(Literal),
    Lt(Literal),
    Le(Literal),
    Gt(Literal),
    Ge(Literal),
    /// Inclusive on both ends.
    Between(Literal, Literal),
    Contains(String),
    StartsWith(String),
    EndsWith(String),
    /// A glob: `*` any run, `?` one character.
    Matches(String),
    In(Vec<Literal>),
    /// Present and in none: `exists` and not `in`.
    NotIn(Vec<Literal>),
    /// Some element equals one of the values (for list-valued traits; same as `in`).
    AnyOf(Vec<Literal>),
    /// Every value equals some element.
    AllOf(Vec<Literal>),
    /// An instant in `(now - span, now]`.
    WithinLast(Span),
    /// An instant at or before `now - span`.
    MoreThanAgo(Span),
    /// An instant in `(now, now + span]`.
    WithinNext(Span),
    /// The date's month and day (in the profile's time zone) fall today / tomorrow / this month.
    Anniversary(Anniversary),
}

/// Every operator keyword, in documentation order.
pub const OPERATORS: [&str; 19] = [
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "between",
    "contains",
    "starts_with",
    "ends_with",
    "matches",
    "in",
    "not_in",
    "any_of",
    "all_of",
    "within_last",
    "more_than_ago",
    "within_next",
    "anniversary",
];

/// Keys that stand alone in a condition object.
pub const COMBINATORS: [&str; 6] = ["all", "any", "not", "in_segment", "exists", "missing"];

/// Operators that accept `ignore_case`.
pub const TEXT_OPERATORS: [&str; 10] = [
    "eq",
    "ne",
    "in",
    "not_in",
    "any_of",
    "all_of",
    "contains",
    "starts_with",
    "ends_with",
    "matches",
];

fn known_keys() -> impl Iterator<Item = &'static str> {
    COMBINATORS
        .into_iter()
        .chain(OPERATORS)
        .chain(["path", "ignore_case"])
}

impl Test {
    /// The operator keyword.
    pub fn operator(&self) -> &'static str {
        match self {
            Test::Exists => "exists",
            Test::Missing => "missing",
            Test::Eq(_) => "eq",
            Test::Ne(_) => "ne",
            Test::Lt(_) => "lt",
            Test::Le(_) => "le",
            Test::Gt(_) => "gt",
            Test::Ge(_) => "ge",
            Test::Between(..) => "between",
            Test::Contains(_) => "contains",
            Test::StartsWith(_) => "starts_with",
            Test::EndsWith(_) => "ends_with",
            Test::Matches(_) => "matches",
            Test::In(_) => "in",
            Test::NotIn(_) => "not_in",
            Test::AnyOf(_) => "any_of",
            Test::AllOf(_) => "all_of",
            Test::WithinLast(_) => "within_last",
            Test::MoreThanAgo(_) => "more_than_ago",
            Test::WithinNext(_) => "within_next",
            Test::Anniversary(_) => "anniversary",
        }
    }

    /// Whether the result can change while the facts stay the same.
    pub fn is_time_dependent(&self) -> bool {
        matches!(
            self,
            Test::WithinLast(_) | Test::MoreThanAgo(_) | Test::WithinNext(_) | Test::Anniversary(_)
        )
    }

    fn argument(&self) -> Value {
        let list = |items: &[Literal]| Value::Array(items.iter().map(Literal::to_value).collect());
        match self {
            Test::Exists | Test::Missing => Value::Null,
            Test::Eq(l) | Test::Ne(l) | Test::Lt(l) | Test::Le(l) | Test::Gt(l) | Test::Ge(l) => {
                l.to_value()
            }
            Test::Between(a, b) => Value::Array(vec![a.to_value(), b.to_value()]),
            Test::Contains(s) | Test::StartsWith(s) | Test::EndsWith(s) | Test::Matches(s) => {
                Value::String(s.clone())
            }
            Test::In(l) | Test::NotIn(l) | Test::AnyOf(l) | Test::AllOf(l) => list(l),
            Test::WithinLast(s) | Test::MoreThanAgo(s) | Test::WithinNext(s) => {
                Value::String(s.to_string())
            }
            Test::Anniversary(a) => Value::String(a.as_str().to_owned()),
        }
    }
}

/// Names and things an expression refers to, so an engine knows what to re-evaluate when
/// something changes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct References {
    /// Top-level trait names (`trait.address.zip` → `address`).
    pub traits: BTreeSet<String>,
    pub computed: BTreeSet<String>,
    pub identities: BTreeSet<IdentityKind>,
    /// `(brand, channel, purpose)`.
    pub consents: BTreeSet<(String, String, String)>,
    pub segments: BTreeSet<String>,
    /// Event paths without the `event.` prefix, e.g. `properties.category`.
    pub event: BTreeSet<String>,
    pub profile: BTreeSet<String>,
    /// Whether the result can change as time passes alone (relative dates, anniversaries).
    pub time_dependent: bool,
}

impl References {
    fn add_path(&mut self, path: &Path) {
        match path {
            Path::Trait { name, .. } => {
                self.traits.insert(name.clone());
            }
            Path::Computed(name) => {
                self.computed.insert(name.clone());
            }
            Path::Identity(kind) => {
                self.identities.insert(*kind);
            }
            Path::Consent {
                brand,
                channel,
                purpose,
            } => {
                self.consents
                    .insert((brand.clone(), channel.clone(), purpose.clone()));
            }
            Path::Event { field, rest } => {
                let mut full = field.clone();
                for r in rest {
                    full.push('.');
                    full.push_str(r);
                }
                self.event.insert(full);
            }
            Path::Profile(attr) => {
                self.profile.insert(attr.clone());
            }
        }
    }
}

impl Expr {
    /// `{path: <path>, <op>: ...}` without `ignore_case`.
    pub fn test(path: Path, test: Test) -> Expr {
        Expr::Test(Predicate {
            path,
            test,
            ignore_case: false,
        })
    }

    /// Logical negation.
    #[allow(clippy::should_implement_trait)]
    pub fn not(inner: Expr) -> Expr {
        Expr::Not(Box::new(inner))
    }

    /// Parses a condition from its JSON structure; errors are located relative to the root.
    pub fn from_value(value: &Value) -> Result<Expr, ValidationErrors> {
        Self::from_value_at(value, "")
    }

    /// Parses a condition whose location in the enclosing document is `at`, e.g.
    /// `segments[0].condition`, so that errors name the full field path.
    pub fn from_value_at(value: &Value, at: &str) -> Result<Expr, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let expr = parse_node(value, at, &mut errors);
        match expr {
            Some(e) if errors.is_empty() => Ok(e),
            _ => {
                if errors.is_empty() {
                    errors.push(display_at(at), "invalid condition");
                }
                Err(errors)
            }
        }
    }

    /// Parses a condition written as JSON text.
    pub fn from_json_str(text: &str) -> Result<Expr, ValidationErrors> {
        let value: Value = serde_json::from_str(text)
            .map_err(|e| ValidationErrors::single("(document)", format!("invalid json: {e}")))?;
        Self::from_value(&value)
    }

    /// Parses a condition written as YAML text.
    pub fn from_yaml_str(text: &str) -> Result<Expr, ValidationErrors> {
        let value: Value = serde_norway::from_str(text)
            .map_err(|e| ValidationErrors::single("(document)", format!("invalid yaml: {e}")))?;
        Self::from_value(&value)
    }

    /// The canonical JSON structure.
    pub fn to_value(&self) -> Value {
        let single = |key: &str, v: Value| {
            let mut m = Map::new();
            m.insert(key.to_owned(), v);
            Value::Object(m)
        };
        match self {
            Expr::Const(b) => Value::Bool(*b),
            Expr::All(items) => single(
                "all",
                Value::Array(items.iter().map(Expr::to_value).collect()),
            ),
            Expr::Any(items) => single(
                "any",
                Value::Array(items.iter().map(Expr::to_value).collect()),
            ),
            Expr::Not(inner) => single("not", inner.to_value()),
            Expr::InSegment(id) => single("in_segment", Value::String(id.clone())),
            Expr::Test(p) => match p.test {
                Test::Exists | Test::Missing => {
                    single(p.test.operator(), Value::String(p.path.to_string()))
                }
                _ => {
                    let mut m = Map::new();
                    m.insert("path".to_owned(), Value::String(p.path.to_string()));
                    m.insert(p.test.operator().to_owned(), p.test.argument());
                    if p.ignore_case {
                        m.insert("ignore_case".to_owned(), Value::Bool(true));
                    }
                    Value::Object(m)
                }
            },
        }
    }

    /// Everything this expression refers to.
    pub fn references(&self) -> References {
        let mut refs = References::default();
        self.collect_references(&mut refs);
        refs
    }

    fn collect_references(&self, refs: &mut References) {
        match self {
            Expr::Const(_) => {}
            Expr::All(items) | Expr::Any(items) => {
                items.iter().for_each(|e| e.collect_references(refs))
            }
            Expr::Not(inner) => inner.collect_references(refs),
            Expr::InSegment(id) => {
                refs.segments.insert(id.clone());
            }
            Expr::Test(p) => {
                refs.add_path(&p.path);
                refs.time_dependent |= p.test.is_time_dependent();
            }
        }
    }
}

impl Serialize for Expr {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_value().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Expr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Expr::from_value(&value).map_err(serde::de::Error::custom)
    }
}

fn display_at(at: &str) -> String {
    if at.is_empty() {
        "(condition)".to_owned()
    } else {
        at.to_owned()
    }
}

fn parse_node(value: &Value, at: &str, errors: &mut ValidationErrors) -> Option<Expr> {
    let map = match value {
        Value::Bool(b) => return Some(Expr::Const(*b)),
        Value::Object(map) => map,
        other => {
            errors.push(
                display_at(at),
                format!(
                    "expected a condition (an object such as {{path: trait.city, eq: Zürich}}, or true/false), found {}",
                    describe(other)
                ),
            );
            return None;
        }
    };
    if map.is_empty() {
        errors.push(
            display_at(at),
            "expected a condition, found an empty object (use all, any, not, in_segment, exists, missing, or path with an operator)",
        );
        return None;
    }
    let mut ok = true;
    for key in map.keys() {
        if !known_keys().any(|k| k == key) {
            errors.push(
                child(at, key),
                format!("unknown operator \"{key}\"{}", hint(key, known_keys())),
            );
            ok = false;
        }
    }
    if !ok {
        return None;
    }

    let combinators: Vec<&str> = COMBINATORS
        .into_iter()
        .filter(|k| map.contains_key(*k))
        .collect();
    if let Some(&first) = combinators.first() {
        if map.len() > 1 {
            let others: Vec<&str> = map
                .keys()
                .map(String::as_str)
                .filter(|k| *k != first)
                .collect();
            errors.push(
                display_at(at),
                format!(
                    "\"{first}\" must stand alone in its object, found also {}; wrap several conditions in all: [...]",
                    quote_list(&others)
                ),
            );
            return None;
        }
        let arg_at = child(at, first);
        let arg = &map[first];
        return match first {
            "all" | "any" => {
                let Value::Array(items) = arg else {
                    errors.push(
                        arg_at,
                        format!("expected a list of conditions, found {}", describe(arg)),
                    );
                    return None;
                };
                if items.is_empty() {
                    errors.push(
                        arg_at,
                        "expected at least one condition, found an empty list",
                    );
                    return None;
                }
                let parsed: Vec<Option<Expr>> = items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| parse_node(item, &index(&arg_at, i), errors))
                    .collect();
                let parsed: Option<Vec<Expr>> = parsed.into_iter().collect();
                parsed.map(|items| {
                    if first == "all" {
                        Expr::All(items)
                    } else {
                        Expr::Any(items)
                    }
                })
            }
            "not" => parse_node(arg, &arg_at, errors).map(Expr::not),
            "in_segment" => match arg {
                Value::String(id) if !id.trim().is_empty() => Some(Expr::InSegment(id.clone())),
                other => {
                    errors.push(
                        arg_at,
                        format!("expected a segment id, found {}", describe(other)),
                    );
                    None
                }
            },
            _ => {
                let path = parse_path(arg, &arg_at, errors)?;
                let test = if first == "exists" {
                    Test::Exists
                } else {
                    Test::Missing
                };
                Some(Expr::Test(Predicate {
                    path,
                    test,
                    ignore_case: false,
                }))
            }
        };
    }

    let operators: Vec<&str> = OPERATORS
        .into_iter()
        .filter(|k| map.contains_key(*k))
        .collect();
    let Some(path_value) = map.get("path") else {
        match operators.first() {
            Some(op) => errors.push(
                child(at, "path"),
                format!("missing path: which value should \"{op}\" test, e.g. path: trait.city?"),
            ),
            None => errors.push(
                display_at(at),
                "expected a condition, found only ignore_case (add path and an operator)",
            ),
        }
        return None;
    };
    let path = parse_path(path_value, &child(at, "path"), errors);
    let op = match operators.as_slice() {
        [op] => *op,
        [] => {
            errors.push(
                display_at(at),
                format!(
                    "missing operator next to path, expected one of {}",
                    OPERATORS.join(", ")
                ),
            );
            return None;
        }
        many => {
            errors.push(
                display_at(at),
                format!(
                    "one operator per condition, found {}; combine them with all: [...]",
                    quote_list(many)
                ),
            );
            return None;
        }
    };
    let ignore_case = match map.get("ignore_case") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            errors.push(
                child(at, "ignore_case"),
                format!("expected true or false, found {}", describe(other)),
            );
            return None;
        }
    };
    if ignore_case && !TEXT_OPERATORS.contains(&op) {
        errors.push(
            child(at, "ignore_case"),
            format!(
                "ignore_case applies only to {}, not to \"{op}\"",
                TEXT_OPERATORS.join(", ")
            ),
        );
        return None;
    }
    let arg_at = child(at, op);
    let test = parse_test(op, &map[op], &arg_at, errors)?;
    Some(Expr::Test(Predicate {
        path: path?,
        test,
        ignore_case,
    }))
}

fn quote_list(items: &[&str]) -> String {
    items
        .iter()
        .map(|k| format!("\"{k}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

fn parse_path(value: &Value, at: &str, errors: &mut ValidationErrors) -> Option<Path> {
    match value {
        Value::String(text) => match Path::parse(text) {
            Ok(p) => Some(p),
            Err(message) => {
                errors.push(at, message);
                None
            }
        },
        other => {
            errors.push(
                at,
                format!(
                    "expected a path like \"trait.city\", found {}",
                    describe(other)
                ),
            );
            None
        }
    }
}

fn parse_test(op: &str, arg: &Value, at: &str, errors: &mut ValidationErrors) -> Option<Test> {
    let mut record = |result: Result<Test, String>| match result {
        Ok(t) => Some(t),
        Err(message) => {
            errors.push(at, message);
            None
        }
    };
    match op {
        "eq" => record(equality_literal(arg).map(Test::Eq)),
        "ne" => record(equality_literal(arg).map(Test::Ne)),
        "lt" => record(ordered_literal(arg).map(Test::Lt)),
        "le" => record(ordered_literal(arg).map(Test::Le)),
        "gt" => record(ordered_literal(arg).map(Test::Gt)),
        "ge" => record(ordered_literal(arg).map(Test::Ge)),
        "between" => record(between(arg)),
        "contains" => record(text_argument(arg).map(Test::Contains)),
        "starts_with" => record(text_argument(arg).map(Test::StartsWith)),
        "ends_with" => record(text_argument(arg).map(Test::EndsWith)),
        "matches" => record(text_argument(arg).map(Test::Matches)),
        "in" | "not_in" | "any_of" | "all_of" => {
            let items = literal_list(arg, at, errors)?;
            Some(match op {
                "in" => Test::In(items),
                "not_in" => Test::NotIn(items),
                "any_of" => Test::AnyOf(items),
                _ => Test::AllOf(items),
            })
        }
        "within_last" => record(span(arg).map(Test::WithinLast)),
        "more_than_ago" => record(span(arg).map(Test::MoreThanAgo)),
        "within_next" => record(span(arg).map(Test::WithinNext)),
        "anniversary" => record(match arg {
            Value::String(s) => Anniversary::parse(s).map(Test::Anniversary).ok_or_else(|| {
                format!(
                    "expected one of {}, found \"{s}\"{}",
                    Anniversary::NAMES.join(", "),
                    hint(s, Anniversary::NAMES)
                )
            }),
            other => Err(format!(
                "expected one of {}, found {}",
                Anniversary::NAMES.join(", "),
                describe(other)
            )),
        }),
        other => record(Err(format!("unknown operator \"{other}\""))),
    }
}

/// A literal for equality: booleans, numbers, strings; strings that are dates or instants are
/// compared as such.
fn equality_literal(arg: &Value) -> Result<Literal, String> {
    match arg {
        Value::Bool(b) => Ok(Literal::Bool(*b)),
        Value::Number(n) => n
            .as_f64()
            .filter(|f| f.is_finite())
            .map(Literal::Number)
            .ok_or_else(|| format!("expected a finite number, found {n}")),
        Value::String(s) if s.is_empty() => Err(
            "an empty string never matches (empty values count as missing); use missing: <path>"
                .to_owned(),
        ),
        Value::String(s) => Ok(string_literal(s)),
        Value::Null => {
            Err("expected a value, found null; use missing: <path> to test for absence".to_owned())
        }
        other => Err(format!(
            "expected a single value, found {}",
            describe(other)
        )),
    }
}

fn string_literal(s: &str) -> Literal {
    if let Some(d) = parse_date(s) {
        Literal::Date(d)
    } else if let Some(t) = parse_instant(s) {
        Literal::DateTime(t)
    } else {
        Literal::String(s.to_owned())
    }
}

/// A literal for ordering: a number (also a plain decimal string) or a date/instant.
fn ordered_literal(arg: &Value) -> Result<Literal, String> {
    let found = || format!("expected a number or a date, found {}", describe(arg));
    match arg {
        Value::Number(n) => n
            .as_f64()
            .filter(|f| f.is_finite())
            .map(Literal::Number)
            .ok_or_else(found),
        Value::String(s) => {
            if let Some(n) = parse_decimal(s) {
                return Ok(Literal::Number(n));
            }
            match string_literal(s) {
                Literal::String(_) => Err(found()),
                dated => Ok(dated),
            }
        }
        _ => Err(found()),
    }
}

fn between(arg: &Value) -> Result<Test, String> {
    let Value::Array(items) = arg else {
        return Err(format!("expected [low, high], found {}", describe(arg)));
    };
    let [low, high] = items.as_slice() else {
        return Err(format!(
            "expected [low, high], found a list of {}",
            items.len()
        ));
    };
    let (low, high) = (ordered_literal(low)?, ordered_literal(high)?);
    let in_order = match (&low, &high) {
        (Literal::Number(a), Literal::Number(b)) => a <= b,
        (Literal::Date(a), Literal::Date(b)) => a <= b,
        (Literal::DateTime(a), Literal::DateTime(b)) => a <= b,
        _ => {
            return Err(format!(
                "low and high must be of the same kind, found {} and {}",
                low.kind(),
                high.kind()
            ))
        }
    };
    if !in_order {
        return Err(format!(
            "low must not be greater than high, found [{}, {}]",
            low.to_value(),
            high.to_value()
        ));
    }
    Ok(Test::Between(low, high))
}

fn text_argument(arg: &Value) -> Result<String, String> {
    match arg {
        Value::String(s) if !s.is_empty() => Ok(s.clone()),
        Value::String(_) => Err("expected a non-empty string, found \"\"".to_owned()),
        Value::Number(n) => Ok(n.to_string()),
        other => Err(format!("expected a string, found {}", describe(other))),
    }
}

fn literal_list(arg: &Value, at: &str, errors: &mut ValidationErrors) -> Option<Vec<Literal>> {
    let Value::Array(items) = arg else {
        errors.push(
            at,
            format!("expected a list of values, found {}", describe(arg)),
        );
        return None;
    };
    if items.is_empty() {
        errors.push(at, "expected at least one value, found an empty list");
        return None;
    }
    let mut out = Vec::with_capacity(items.len());
    let mut ok = true;
    for (i, item) in items.iter().enumerate() {
        match equality_literal(item) {
            Ok(l) => out.push(l),
            Err(message) => {
                errors.push(index(at, i), message);
                ok = false;
            }
        }
    }
    ok.then_some(out)
}

fn span(arg: &Value) -> Result<Span, String> {
    let parsed = match arg {
        Value::String(s) => Span::parse(s),
        Value::Number(n) => n.as_i64().and_then(Span::days),
        _ => None,
    };
    parsed.ok_or_else(|| {
        format!(
            "expected a duration like \"30d\", \"12h\", \"2w\" (at most 36525 days), found {}",
            describe(arg)
        )
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn errors_of(v: Value) -> Vec<String> {
        Expr::from_value_at(&v, "condition")
            .err()
            .map(|e| e.iter().map(ToString::to_string).collect())
            .unwrap_or_default()
    }

    #[test]
    fn parses_and_round_trips() {
        let doc = json!({"all": [
            {"path": "trait.city", "eq": "Zürich", "ignore_case": true},
            {"exists": "identity.loyalty_card"},
            {"path": "computed.lifetime_value_chf", "gt": 500},
            {"not": {"in_segment": "wine-buyers"}},
            {"path": "trait.birthday", "anniversary": "today"},
            {"path": "computed.last_purchase_at", "more_than_ago": "60d"},
            {"path": "trait.birthday", "lt": "24.12.1980"},
            {"path": "trait.tags", "all_of": ["wine", "cheese"]},
        ]});
        let expr = Expr::from_value(&doc).unwrap();
        let again = Expr::from_value(&expr.to_value()).unwrap();
        assert_eq!(expr, again);
        let Expr::All(items) = &expr else {
            panic!("not all")
        };
        assert_eq!(
            items[6],
            Expr::test(
                Path::parse("trait.birthday").unwrap(),
                Test::Lt(Literal::Date(
                    chrono::NaiveDate::from_ymd_opt(1980, 12, 24).unwrap()
                ))
            )
        );
    }

    #[test]
    fn names_the_bad_field() {
        let errs = errors_of(json!({"all": [
            {"exists": "trait.a"},
            {"exists": "trait.b"},
            {"path": "computed.lifetime_value_chf", "gt": "fünfhundert"},
        ]}));
        assert_eq!(
            errs,
            vec!["condition.all[2].gt: expected a number or a date, found \"fünfhundert\""]
        );
    }

    #[test]
    fn unknown_operator_suggests() {
        let errs = errors_of(json!({"any": [{"path": "trait.email", "start_with": "anna"}]}));
        assert_eq!(
            errs,
            vec!["condition.any[0].start_with: unknown operator \"start_with\", did you mean \"starts_with\"?"]
        );
    }

    #[test]
    fn structural_mistakes() {
        assert!(errors_of(json!({"all": []}))[0].contains("condition.all: expected at least one"));
        assert!(errors_of(json!({"path": "trait.a", "gt": 1, "lt": 5}))[0]
            .contains("one operator per condition"));
        assert!(errors_of(json!({"gt": 1}))[0].starts_with("condition.path: missing path"));
        assert!(errors_of(json!({"path": "trait.a"}))[0].contains("missing operator"));
        assert!(errors_of(json!({"all": [true], "not": true}))[0].contains("must stand alone"));
        assert!(
            errors_of(json!({"path": "trait.a", "gt": 1, "ignore_case": true}))[0]
                .starts_with("condition.ignore_case:")
        );
        assert!(
            errors_of(json!({"path": "trait.a", "between": [5, 1]}))[0].contains("low must not")
        );
        assert!(errors_of(json!({"path": "trait.a", "eq": null}))[0].contains("use missing"));
        assert!(
            errors_of(json!({"path": "trait.a", "within_last": "30 Tage"}))[0]
                .starts_with("condition.within_last: expected a duration")
        );
        assert!(errors_of(json!({"path": "trait.a", "in": [1, null]}))[0]
            .starts_with("condition.in[1]:"));
        assert!(errors_of(json!("trait.a"))[0].starts_with("condition: expected a condition"));
    }

    #[test]
    fn reports_several_errors() {
        let errs = errors_of(json!({"all": [
            {"path": "traits.city", "eq": "Bern"},
            {"path": "trait.a", "gt": "x"},
        ]}));
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(errs[0].starts_with("condition.all[0].path: unknown path namespace"));
    }

    #[test]
    fn references_are_collected() {
        let expr = Expr::from_value(&json!({"all": [
            {"path": "computed.wine_30d", "ge": 1},
            {"path": "trait.address.zip", "starts_with": "80"},
            {"in_segment": "vip"},
            {"path": "consent.wine_club.email.marketing", "eq": true},
            {"path": "profile.created_at", "within_last": "7d"},
        ]}))
        .unwrap();
        let refs = expr.references();
        assert!(refs.computed.contains("wine_30d"));
        assert!(refs.traits.contains("address"));
        assert!(refs.segments.contains("vip"));
        assert_eq!(refs.consents.len(), 1);
        assert!(refs.time_dependent);
    }
}
