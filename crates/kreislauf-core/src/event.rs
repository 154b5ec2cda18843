//! Segment-spec messages: validation, normalisation and timestamp correction.
//!
//! A message arrives as JSON (`track`, `identify`, `page`, `screen`, `group`, `alias`); it leaves as
//! an [`Event`] whose `body` is the complete normalised message as it will be stored and exported.

use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::identity::{Identifier, IdentifierKind};
use crate::source::IdentityMapping;

/// Segment's documented size limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_event_bytes: usize,
    pub max_batch_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_event_bytes: 32 * 1024,
            max_batch_bytes: 500 * 1024,
        }
    }
}

/// The Segment message types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    Track,
    Identify,
    Page,
    Screen,
    Group,
    Alias,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Track => "track",
            EventKind::Identify => "identify",
            EventKind::Page => "page",
            EventKind::Screen => "screen",
            EventKind::Group => "group",
            EventKind::Alias => "alias",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "track" => EventKind::Track,
            "identify" => EventKind::Identify,
            "page" => EventKind::Page,
            "screen" => EventKind::Screen,
            "group" => EventKind::Group,
            "alias" => EventKind::Alias,
            _ => return None,
        })
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What is wrong with one message, naming the field (dotted path) and, in a batch, its index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{}{field}: {message}", index.map(|i| format!("batch[{i}].")).unwrap_or_default())]
pub struct FieldError {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<usize>,
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            index: None,
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn at(mut self, index: usize) -> Self {
        self.index = Some(index);
        self
    }
}

/// Batch-level fields that apply to every message of a batch.
#[derive(Debug, Clone, Default)]
pub struct BatchDefaults {
    pub context: Option<Map<String, Value>>,
    pub integrations: Option<Map<String, Value>>,
    pub sent_at: Option<DateTime<Utc>>,
}

/// A validated, normalised message ready to be resolved and stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub message_id: String,
    pub kind: EventKind,
    /// `event` of a track, `name` of a page or screen.
    pub name: Option<String>,
    pub user_id: Option<String>,
    pub anonymous_id: Option<String>,
    /// `previousId` of an alias.
    pub previous_id: Option<String>,
    /// When it happened, corrected for client clock skew.
    pub timestamp: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    /// The complete normalised message as stored and exported.
    pub body: Map<String, Value>,
}

impl Event {
    /// Identifiers this event carries, normalised, strongest first, without duplicates.
    pub fn identifiers(&self, mapping: &IdentityMapping) -> Vec<Identifier> {
        let mut ids = Vec::new();
        if let Some(id) = self
            .user_id
            .as_deref()
            .and_then(|v| Identifier::new(IdentifierKind::UserId, v))
        {
            ids.push(id);
        }
        if let Some(id) = self
            .anonymous_id
            .as_deref()
            .and_then(|v| Identifier::new(IdentifierKind::AnonymousId, v))
        {
            ids.push(id);
        }
        for kind in [
            IdentifierKind::LoyaltyCard,
            IdentifierKind::Email,
            IdentifierKind::Phone,
        ] {
            for name in mapping.names(kind) {
                for container in [self.traits(), self.context_traits(), self.properties()] {
                    if let Some(id) = container
                        .and_then(|c| c.get(name))
                        .and_then(scalar_str)
                        .and_then(|v| Identifier::new(kind, &v))
                    {
                        ids.push(id);
                    }
                }
            }
        }
        ids.sort();
        ids.dedup();
        ids
    }

    pub fn traits(&self) -> Option<&Map<String, Value>> {
        self.body.get("traits").and_then(Value::as_object)
    }

    pub fn properties(&self) -> Option<&Map<String, Value>> {
        self.body.get("properties").and_then(Value::as_object)
    }

    pub fn context_traits(&self) -> Option<&Map<String, Value>> {
        self.body
            .get("context")
            .and_then(|c| c.get("traits"))
            .and_then(Value::as_object)
    }

    /// Traits that this event sets on its profile: those of an `identify` (and of a `group`'s `context.traits`
    /// are not persisted, as in Segment).
    pub fn profile_traits(&self) -> Option<&Map<String, Value>> {
        match self.kind {
            EventKind::Identify => self.traits(),
            _ => None,
        }
    }
}

fn scalar_str(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Parses an RFC 3339 / ISO-8601 timestamp as sent by Segment clients.
pub fn parse_timestamp(field: &str, v: &Value) -> Result<Option<DateTime<Utc>>, FieldError> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => DateTime::parse_from_rfc3339(s.trim())
            .map(|t| Some(t.with_timezone(&Utc)))
            .map_err(|_| FieldError::new(field, format!("not an ISO-8601 timestamp: {s:?}"))),
        _ => Err(FieldError::new(
            field,
            "must be an ISO-8601 timestamp string",
        )),
    }
}

fn format_ts(t: DateTime<Utc>) -> Value {
    Value::String(t.to_rfc3339_opts(SecondsFormat::Millis, true))
}

/// Validates and normalises one message.
///
/// * `implied_kind` is set by the single-message endpoints (`/v1/track` …); in a batch `type` is required.
/// * `raw_len` is the message's size in bytes as received, checked against the event limit.
pub fn normalise(
    value: Value,
    implied_kind: Option<EventKind>,
    defaults: &BatchDefaults,
    received_at: DateTime<Utc>,
    raw_len: usize,
    limits: &Limits,
) -> Result<Event, FieldError> {
    if raw_len > limits.max_event_bytes {
        return Err(FieldError::new(
            "",
            format!(
                "event is {raw_len} bytes; the limit is {} bytes",
                limits.max_event_bytes
            ),
        ));
    }
    let Value::Object(mut body) = value else {
        return Err(FieldError::new("", "each event must be a JSON object"));
    };
    // A stable id for messages without one, so that a retry of the same content is still deduplicated
    // (hashed before normalisation adds receive-time fields).
    let content_hash = match body.get("messageId") {
        None | Some(Value::Null) => Some(xxhash_rust::xxh3::xxh3_128(
            Value::Object(body.clone()).to_string().as_bytes(),
        )),
        Some(_) => None,
    };

    let kind = match (body.get("type"), implied_kind) {
        (Some(Value::String(t)), implied) => {
            let parsed = EventKind::parse(t).ok_or_else(|| {
                FieldError::new("type", format!("unknown type {t:?} (expected track, identify, page, screen, group or alias)"))
            })?;
            if implied.is_some_and(|k| k != parsed) {
                return Err(FieldError::new(
                    "type",
                    format!("type {t:?} does not match the endpoint"),
                ));
            }
            parsed
        }
        (Some(Value::Null) | None, Some(k)) => k,
        (Some(_), _) => return Err(FieldError::new("type", "must be a string")),
        (None, None) => return Err(FieldError::new("type", "is required in a batch")),
    };
    body.insert("type".into(), Value::String(kind.as_str().into()));

    let user_id = id_field(&body, "userId")?;
    let anonymous_id = id_field(&body, "anonymousId")?;
    let previous_id = id_field(&body, "previousId")?;
    match kind {
        EventKind::Alias => {
            if previous_id.is_none() {
                return Err(FieldError::new("previousId", "is required for alias"));
            }
            if user_id.is_none() && anonymous_id.is_none() {
                return Err(FieldError::new(
                    "userId",
                    "alias needs userId (or anonymousId)",
                ));
            }
        }
        _ if user_id.is_none() && anonymous_id.is_none() => {
            return Err(FieldError::new(
                "userId",
                "userId or anonymousId is required",
            ));
        }
        _ => {}
    }
    for (field, v) in [
        ("userId", &user_id),
        ("anonymousId", &anonymous_id),
        ("previousId", &previous_id),
    ] {
        match v {
            Some(s) => body.insert(field.into(), Value::String(s.clone())),
            None => body.remove(field),
        };
    }

    for (field, text) in [
        ("event", body.get("event")),
        ("name", body.get("name")),
        ("messageId", body.get("messageId")),
    ] {
        if text.and_then(Value::as_str).is_some_and(has_control) {
            return Err(FieldError::new(
                field,
                "must not contain control characters",
            ));
        }
    }
    if let Some(key) = body
        .get("traits")
        .and_then(Value::as_object)
        .and_then(|t| t.keys().find(|k| k.contains('\0') || k.is_empty()))
    {
        return Err(FieldError::new(
            format!("traits.{}", key.replace('\0', "\\0")),
            "trait names must be non-empty and must not contain NUL",
        ));
    }
    let name = match kind {
        EventKind::Track => match body.get("event") {
            Some(Value::String(s)) if !s.trim().is_empty() => Some(s.clone()),
            Some(Value::String(_)) | None | Some(Value::Null) => {
                return Err(FieldError::new("event", "is required for track"));
            }
            Some(_) => return Err(FieldError::new("event", "must be a string")),
        },
        EventKind::Page | EventKind::Screen => match body.get("name") {
            Some(Value::String(s)) => Some(s.clone()),
            None | Some(Value::Null) => None,
            Some(_) => return Err(FieldError::new("name", "must be a string")),
        },
        _ => None,
    };

    for field in ["properties", "traits", "context", "integrations"] {
        match body.get(field) {
            None | Some(Value::Object(_)) => {}
            Some(Value::Null) => {
                body.remove(field);
            }
            Some(_) => return Err(FieldError::new(field, "must be a JSON object")),
        }
    }
    if body
        .get("context")
        .and_then(|c| c.get("traits"))
        .is_some_and(|t| !t.is_null() && !t.is_object())
    {
        return Err(FieldError::new("context.traits", "must be a JSON object"));
    }
    merge_defaults(&mut body, "context", defaults.context.as_ref());
    merge_defaults(&mut body, "integrations", defaults.integrations.as_ref());

    let explicit = parse_timestamp("timestamp", body.get("timestamp").unwrap_or(&Value::Null))?;
    let original = parse_timestamp(
        "originalTimestamp",
        body.get("originalTimestamp").unwrap_or(&Value::Null),
    )?;
    let sent_at = match parse_timestamp("sentAt", body.get("sentAt").unwrap_or(&Value::Null))? {
        Some(t) => Some(t),
        None => defaults.sent_at,
    };
    let timestamp = correct_clock_skew(explicit, original, sent_at, received_at);
    body.insert("timestamp".into(), format_ts(timestamp));
    body.insert("receivedAt".into(), format_ts(received_at));
    if let Some(t) = sent_at {
        body.insert("sentAt".into(), format_ts(t));
    }

    let message_id = match body.get("messageId") {
        Some(Value::String(s)) if !s.trim().is_empty() => {
            if s.len() > 256 {
                return Err(FieldError::new(
                    "messageId",
                    "is longer than 256 characters",
                ));
            }
            s.clone()
        }
        Some(Value::Number(n)) => n.to_string(),
        None | Some(Value::Null) => format!("kl-{:032x}", content_hash.unwrap_or_default()),
        Some(Value::String(_)) => return Err(FieldError::new("messageId", "must not be empty")),
        Some(_) => return Err(FieldError::new("messageId", "must be a string")),
    };
    body.insert("messageId".into(), Value::String(message_id.clone()));

    Ok(Event {
        message_id,
        kind,
        name,
        user_id,
        anonymous_id,
        previous_id,
        timestamp,
        received_at,
        body,
    })
}

/// Segment's rule: an explicit `timestamp` is trusted; otherwise the client's `originalTimestamp` is
/// shifted by the difference between the server's receive time and the client's send time.
pub fn correct_clock_skew(
    explicit: Option<DateTime<Utc>>,
    original: Option<DateTime<Utc>>,
    sent_at: Option<DateTime<Utc>>,
    received_at: DateTime<Utc>,
) -> DateTime<Utc> {
    match (explicit, original, sent_at) {
        (Some(t), _, _) => t,
        (None, Some(orig), Some(sent)) => received_at - (sent - orig),
        (None, Some(orig), None) => orig,
        (None, None, _) => received_at,
    }
}

/// NUL cannot be stored in a text column (PostgreSQL refuses it); other control characters in ids are typos.
fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

fn id_field(body: &Map<String, Value>, field: &str) -> Result<Option<String>, FieldError> {
    match body.get(field) {
        Some(Value::String(s)) if has_control(s) => Err(FieldError::new(
            field,
            "must not contain control characters",
        )),
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) if s.len() > 512 => {
            Err(FieldError::new(field, "is longer than 512 characters"))
        }
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(_) => Err(FieldError::new(field, "must be a string")),
    }
}

/// Batch-level `context`/`integrations` fill in keys the message does not set itself.
fn merge_defaults(
    body: &mut Map<String, Value>,
    field: &str,
    defaults: Option<&Map<String, Value>>,
) {
    let Some(defaults) = defaults else { return };
    let target = body
        .entry(field)
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(target) = target {
        for (k, v) in defaults {
            target.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-25T10:00:00Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    }

    fn norm(v: Value) -> Result<Event, FieldError> {
        normalise(
            v,
            None,
            &BatchDefaults::default(),
            now(),
            100,
            &Limits::default(),
        )
    }

    #[test]
    fn track_needs_event_name_and_an_identity() {
        assert_eq!(
            norm(json!({"type":"track","userId":"u1"})).map(|_| ()),
            Err(FieldError::new("event", "is required for track"))
        );
        let err = norm(json!({"type":"track","event":"Order Completed"}))
            .err()
            .map(|e| e.field);
        assert_eq!(err.as_deref(), Some("userId"));
        let ev = norm(json!({"type":"track","event":"Order Completed","userId":42})).ok();
        assert_eq!(ev.and_then(|e| e.user_id).as_deref(), Some("42"));
    }

    #[test]
    fn rejects_bad_types_and_sizes() {
        assert_eq!(
            norm(json!({"type":"bogus","userId":"u"}))
                .err()
                .map(|e| e.field)
                .as_deref(),
            Some("type")
        );
        assert_eq!(
            norm(json!({"userId":"u"}))
                .err()
                .map(|e| e.field)
                .as_deref(),
            Some("type")
        );
        assert_eq!(
            norm(json!({"type":"identify","userId":"u","traits":[1]}))
                .err()
                .map(|e| e.field)
                .as_deref(),
            Some("traits")
        );
        assert_eq!(
            norm(json!({"type":"identify","userId":"u","timestamp":"yesterday"}))
                .err()
                .map(|e| e.field)
                .as_deref(),
            Some("timestamp")
        );
        let big = normalise(
            json!({"type":"identify","userId":"u"}),
            None,
            &BatchDefaults::default(),
            now(),
            40_000,
            &Limits::default(),
        );
        assert!(big.is_err());
        assert_eq!(
            norm(json!("string")).err().map(|e| e.field).as_deref(),
            Some("")
        );
    }

    #[test]
    fn rejects_control_characters_in_ids_and_trait_names() {
        assert_eq!(
            norm(json!({"type":"track","event":"X","userId":"u\u{0}"}))
                .err()
                .map(|e| e.field)
                .as_deref(),
            Some("userId")
        );
        assert_eq!(
            norm(json!({"type":"track","event":"X\u{0}","userId":"u"}))
                .err()
                .map(|e| e.field)
                .as_deref(),
            Some("event")
        );
        assert!(norm(json!({"type":"identify","userId":"u","traits":{"a\u{0}b":1}})).is_err());
        assert!(
            norm(json!({"type":"identify","userId":"u","traits":{"note":"a\u{0}b"}})).is_ok(),
            "values are stored as escaped JSON"
        );
    }

    #[test]
    fn corrects_clock_skew_like_segment() {
        let ev = norm(json!({
            "type":"track","event":"X","anonymousId":"a",
            "originalTimestamp":"2026-11-25T09:59:00Z","sentAt":"2026-11-25T11:00:00Z"
        }));
        // The client clock is one hour fast: sent 11:00 client time, received 10:00.
        assert_eq!(
            ev.map(|e| e.timestamp.to_rfc3339()).ok().as_deref(),
            Some("2026-11-25T08:59:00+00:00")
        );
        let explicit = norm(
            json!({"type":"track","event":"X","anonymousId":"a","timestamp":"2020-01-01T00:00:00Z","sentAt":"2026-11-25T11:00:00Z"}),
        );
        assert_eq!(
            explicit.map(|e| e.timestamp.to_rfc3339()).ok().as_deref(),
            Some("2020-01-01T00:00:00+00:00")
        );
    }

    #[test]
    fn merges_batch_context_without_overriding() {
        let defaults = BatchDefaults {
            context: json!({"library":{"name":"batch"},"locale":"de-CH"})
                .as_object()
                .cloned(),
            integrations: None,
            sent_at: None,
        };
        let ev = normalise(
            json!({"type":"page","anonymousId":"a","context":{"locale":"en"}}),
            None,
            &defaults,
            now(),
            10,
            &Limits::default(),
        );
        let ctx = ev.ok().and_then(|e| e.body.get("context").cloned());
        assert_eq!(ctx, Some(json!({"library":{"name":"batch"},"locale":"en"})));
    }

    #[test]
    fn missing_message_id_is_stable_for_the_same_bytes() {
        let a = norm(json!({"type":"track","event":"X","userId":"u"}))
            .map(|e| e.message_id)
            .ok();
        let b = norm(json!({"type":"track","event":"X","userId":"u"}))
            .map(|e| e.message_id)
            .ok();
        let c = norm(json!({"type":"track","event":"Y","userId":"u"}))
            .map(|e| e.message_id)
            .ok();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn extracts_identifiers_from_traits_context_and_properties() {
        let ev = norm(json!({
            "type":"track","event":"Order Completed","anonymousId":"anon-1",
            "properties":{"loyalty_card":"2501 0000 1234"},
            "context":{"traits":{"email":"Hans@Example.ch"}}
        }));
        let ids: Vec<String> = ev
            .map(|e| e.identifiers(&IdentityMapping::default()))
            .unwrap_or_default()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            ids,
            [
                "loyalty_card=250100001234",
                "email=hans@example.ch",
                "anonymous_id=anon-1"
            ]
        );
    }
}
