//! Streaming CSV import of customers and historical events, through the same pipeline as the HTTP API.
//!
//! * Memory is bounded: records are read, validated and committed in chunks.
//! * Every line that cannot be imported goes to a rejects file with its line number and reason.
//! * A re-run creates no duplicates: a line without a `message_id` gets one derived from its content.

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use kreislauf_core::event::{normalise, BatchDefaults, FieldError, Limits};
use kreislauf_core::{EventKind, IdentifierKind, Source};
use serde::Serialize;
use serde_json::{Map, Number, Value};

use crate::ingest::{Engine, EngineError};

/// What to import.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportKind {
    /// One customer per line; becomes an `identify` with every non-empty column as a trait.
    Customers,
    /// One event per line: `type` (default track), `event`, `user_id`/`anonymous_id`, `timestamp`,
    /// `message_id`, and `properties.<name>`, `traits.<name>`, `context.<name>` columns.
    Events,
}

/// The result of an import.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ImportSummary {
    pub lines: u64,
    pub accepted: u64,
    pub duplicates: u64,
    pub rejected: u64,
    pub suppressed: u64,
    pub elapsed_ms: u64,
}

/// Import failures that stop the whole import (a bad line does not: it is rejected).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("cannot read the CSV header: {0}")]
    Header(String),
    #[error("CSV has no column that identifies a person (one of user_id, anonymous_id, email, phone, loyalty_card or a mapped name)")]
    NoIdentifierColumn,
    #[error("cannot write the rejects file: {0}")]
    Rejects(std::io::Error),
    #[error(transparent)]
    Engine(#[from] EngineError),
}

const CHUNK: usize = 1_000;

/// Imports `input` into `source`. `rejects` receives `line,field,error` rows; `progress` is called with
/// the number of lines read so far.
pub async fn import_csv<R: Read, W: Write>(
    engine: &Engine,
    source: Arc<Source>,
    kind: ImportKind,
    input: R,
    rejects: &mut W,
    progress: &mut dyn FnMut(u64),
) -> Result<ImportSummary, ImportError> {
    let started = Instant::now();
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(input);
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| ImportError::Header(e.to_string()))?
        .iter()
        .map(str::to_owned)
        .collect();
    if kind == ImportKind::Customers
        && !headers
            .iter()
            .any(|h| identifier_column(&source, h).is_some())
    {
        return Err(ImportError::NoIdentifierColumn);
    }
    writeln!(rejects, "line,field,error").map_err(ImportError::Rejects)?;
    let mut summary = ImportSummary::default();
    let mut chunk = Vec::with_capacity(CHUNK);
    let mut last_progress = Instant::now();
    let limits = Limits::default();
    let mut record = csv::StringRecord::new();
    loop {
        let line = reader.position().line() + 1;
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                summary.lines += 1;
                summary.rejected += 1;
                reject(rejects, line, "", &e.to_string())?;
                continue;
            }
        }
        summary.lines += 1;
        let line = record.position().map(|p| p.line()).unwrap_or(line);
        let message = match kind {
            ImportKind::Customers => customer_message(&source, &headers, &record, line),
            ImportKind::Events => event_message(&headers, &record, line),
        };
        let received_at = engine.now();
        let normalised = message.and_then(|(value, raw_len)| {
            normalise(
                value,
                None,
                &BatchDefaults::default(),
                received_at,
                raw_len,
                &limits,
            )
        });
        match normalised {
            Ok(event) => chunk.push(event),
            Err(e) => {
                summary.rejected += 1;
                engine
                    .metrics()
                    .events_rejected
                    .with_label_values(&[
                        source.name.as_str(),
                        &format!("invalid_{}", reason_field(&e)),
                    ])
                    .inc();
                reject(rejects, line, &e.field, &e.message)?;
            }
        }
        if chunk.len() >= CHUNK {
            flush(engine, &source, &mut chunk, &mut summary).await?;
        }
        if last_progress.elapsed() > Duration::from_millis(100) {
            progress(summary.lines);
            last_progress = Instant::now();
        }
    }
    flush(engine, &source, &mut chunk, &mut summary).await?;
    progress(summary.lines);
    rejects.flush().map_err(ImportError::Rejects)?;
    summary.elapsed_ms = started.elapsed().as_millis() as u64;
    Ok(summary)
}

fn reason_field(e: &FieldError) -> String {
    if e.field.is_empty() {
        "event".into()
    } else {
        e.field.replace('.', "_")
    }
}

async fn flush(
    engine: &Engine,
    source: &Arc<Source>,
    chunk: &mut Vec<kreislauf_core::Event>,
    summary: &mut ImportSummary,
) -> Result<(), ImportError> {
    if chunk.is_empty() {
        return Ok(());
    }
    let outcome = engine
        .ingest_waiting(source.clone(), std::mem::take(chunk))
        .await?;
    summary.accepted += outcome.accepted as u64;
    summary.duplicates += outcome.duplicates as u64;
    summary.suppressed += outcome.suppressed as u64;
    Ok(())
}

fn reject<W: Write>(w: &mut W, line: u64, field: &str, error: &str) -> Result<(), ImportError> {
    let mut row = csv::Writer::from_writer(Vec::new());
    row.write_record([line.to_string().as_str(), field, error])
        .map_err(|e| ImportError::Rejects(std::io::Error::other(e)))?;
    let bytes = row
        .into_inner()
        .map_err(|e| ImportError::Rejects(std::io::Error::other(e.to_string())))?;
    w.write_all(&bytes).map_err(ImportError::Rejects)
}

/// Which identifier a customer column holds, if any.
fn identifier_column(source: &Source, header: &str) -> Option<IdentifierKind> {
    match header {
        "user_id" | "userId" => Some(IdentifierKind::UserId),
        "anonymous_id" | "anonymousId" => Some(IdentifierKind::AnonymousId),
        _ => [
            IdentifierKind::LoyaltyCard,
            IdentifierKind::Email,
            IdentifierKind::Phone,
        ]
        .into_iter()
        .find(|k| {
            source
                .identity_mapping
                .names(*k)
                .iter()
                .any(|n| n == header)
        }),
    }
}

/// A stable message id from the line's content, so that re-importing the same line is a no-op.
fn content_message_id(prefix: &str, record: &csv::StringRecord) -> String {
    let mut bytes = Vec::new();
    for field in record.iter() {
        bytes.extend_from_slice(field.as_bytes());
        bytes.push(0x1f);
    }
    format!("{prefix}-{:032x}", xxhash_rust::xxh3::xxh3_128(&bytes))
}

fn customer_message(
    source: &Source,
    headers: &[String],
    record: &csv::StringRecord,
    _line: u64,
) -> Result<(Value, usize), FieldError> {
    let mut traits = Map::new();
    let mut body = Map::new();
    body.insert("type".into(), "identify".into());
    let mut timestamp = None;
    for (header, value) in headers.iter().zip(record.iter()) {
        if value.is_empty() {
            continue;
        }
        match header.as_str() {
            "user_id" | "userId" => {
                body.insert("userId".into(), value.into());
            }
            "anonymous_id" | "anonymousId" => {
                body.insert("anonymousId".into(), value.into());
            }
            "updated_at" | "timestamp" => timestamp = Some(parse_time(header, value)?),
            _ => {
                traits.insert(header.clone(), value.into());
            }
        }
    }
    if !body.contains_key("userId") && !body.contains_key("anonymousId") {
        // A customer known only by e-mail, phone or card: the identifier itself anchors the profile.
        let anchor = headers
            .iter()
            .zip(record.iter())
            .find_map(|(h, v)| {
                (!v.is_empty())
                    .then(|| identifier_column(source, h))
                    .flatten()
                    .map(|k| format!("{k}:{v}"))
            })
            .ok_or_else(|| {
                FieldError::new(
                    "user_id",
                    "line has no identifier (user_id, anonymous_id, email, phone or loyalty_card)",
                )
            })?;
        body.insert("anonymousId".into(), format!("import:{anchor}").into());
    }
    body.insert("traits".into(), Value::Object(traits));
    body.insert(
        "messageId".into(),
        content_message_id("import-customer", record).into(),
    );
    if let Some(ts) = timestamp {
        body.insert("timestamp".into(), ts.to_rfc3339().into());
    }
    let raw_len = record.as_slice().len();
    Ok((Value::Object(body), raw_len))
}

fn event_message(
    headers: &[String],
    record: &csv::StringRecord,
    _line: u64,
) -> Result<(Value, usize), FieldError> {
    let mut body = Map::new();
    let mut nested: [(&str, Map<String, Value>); 3] = [
        ("properties", Map::new()),
        ("traits", Map::new()),
        ("context", Map::new()),
    ];
    let mut kind = EventKind::Track;
    for (header, value) in headers.iter().zip(record.iter()) {
        if value.is_empty() {
            continue;
        }
        match header.as_str() {
            "type" => {
                kind = EventKind::parse(value)
                    .ok_or_else(|| FieldError::new("type", format!("unknown type {value:?}")))?
            }
            "event" | "name" => {
                body.insert(header.clone(), value.into());
            }
            "user_id" | "userId" => {
                body.insert("userId".into(), value.into());
            }
            "anonymous_id" | "anonymousId" => {
                body.insert("anonymousId".into(), value.into());
            }
            "previous_id" | "previousId" => {
                body.insert("previousId".into(), value.into());
            }
            "message_id" | "messageId" => {
                body.insert("messageId".into(), value.into());
            }
            "timestamp" => {
                body.insert(
                    "timestamp".into(),
                    parse_time(header, value)?.to_rfc3339().into(),
                );
            }
            other => {
                let Some((group, name)) = other.split_once('.') else {
                    return Err(FieldError::new(
                        other,
                        "unknown column (use properties.<name>, traits.<name> or context.<name>)",
                    ));
                };
                let Some((_, map)) = nested.iter_mut().find(|(g, _)| *g == group) else {
                    return Err(FieldError::new(
                        other,
                        "unknown column group (use properties., traits. or context.)",
                    ));
                };
                map.insert(name.to_owned(), cell_value(value));
            }
        }
    }
    if !body.contains_key("timestamp") {
        return Err(FieldError::new(
            "timestamp",
            "is required for a historical event",
        ));
    }
    body.insert("type".into(), kind.as_str().into());
    for (group, map) in nested {
        if !map.is_empty() {
            body.insert(group.into(), Value::Object(map));
        }
    }
    if !body.contains_key("messageId") {
        body.insert(
            "messageId".into(),
            content_message_id("import-event", record).into(),
        );
    }
    Ok((Value::Object(body), record.as_slice().len()))
}

/// Plain numbers and booleans become JSON numbers and booleans; anything else stays text (so "00123" keeps its zeros).
fn cell_value(cell: &str) -> Value {
    match cell {
        "true" => return Value::Bool(true),
        "false" => return Value::Bool(false),
        _ => {}
    }
    let plain_number = !cell.starts_with('0') || cell == "0" || cell.starts_with("0.");
    if plain_number {
        if let Ok(i) = cell.parse::<i64>() {
            return Value::Number(i.into());
        }
        if let Some(n) = cell.parse::<f64>().ok().and_then(Number::from_f64) {
            if cell.contains('.') && !cell.ends_with('.') {
                return Value::Number(n);
            }
        }
    }
    Value::String(cell.to_owned())
}

/// RFC 3339, `YYYY-MM-DD HH:MM:SS` (UTC), `YYYY-MM-DD`, or German `DD.MM.YYYY [HH:MM]`.
fn parse_time(field: &str, s: &str) -> Result<DateTime<Utc>, FieldError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    for fmt in [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M:%S",
        "%d.%m.%Y %H:%M",
        "%d.%m.%Y %H:%M:%S",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, fmt) {
            return Ok(Utc.from_utc_datetime(&t));
        }
    }
    for fmt in ["%Y-%m-%d", "%d.%m.%Y"] {
        if let Some(t) = NaiveDate::parse_from_str(s, fmt)
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
        {
            return Ok(Utc.from_utc_datetime(&t));
        }
    }
    Err(FieldError::new(
        field,
        format!("cannot read {s:?} as a date/time (use ISO-8601, e.g. 2026-11-25T10:00:00Z)"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_keep_leading_zeros_and_type_plain_numbers() {
        assert_eq!(cell_value("00123"), Value::String("00123".into()));
        assert_eq!(cell_value("12"), Value::Number(12.into()));
        assert_eq!(cell_value("12.5"), serde_json::json!(12.5));
        assert_eq!(cell_value("0.5"), serde_json::json!(0.5));
        assert_eq!(cell_value("true"), Value::Bool(true));
        assert_eq!(cell_value("Prosecco"), Value::String("Prosecco".into()));
    }

    #[test]
    fn reads_common_time_formats() {
        for s in [
            "2026-11-25T10:00:00Z",
            "2026-11-25 10:00:00",
            "25.11.2026 10:00",
        ] {
            assert_eq!(
                parse_time("timestamp", s)
                    .map(|t| t.to_rfc3339())
                    .ok()
                    .as_deref(),
                Some("2026-11-25T10:00:00+00:00"),
                "{s}"
            );
        }
        assert!(parse_time("timestamp", "gestern").is_err());
    }
}
