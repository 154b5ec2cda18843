//! The Segment HTTP Tracking API: `/v1/{track,identify,page,screen,group,alias,batch,import}` and the
//! short paths analytics.js uses (`/v1/{t,i,p,s,g,a,b}`).
//!
//! Batch semantics follow Segment: an unreadable body (bad JSON, too large, bad gzip) rejects the whole
//! request and stores nothing. Within a readable batch each event is validated alone: valid events are
//! stored, invalid ones are not, and the answer is 400 naming every rejected event's index and field
//! (Segment answers 200 and drops them silently; we say what was dropped).

use std::io::Read;
use std::sync::Arc;

use axum::body::{to_bytes, Body};
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use base64::Engine as _;
use chrono::Utc;
use kreislauf_core::event::{normalise, parse_timestamp, BatchDefaults};
use kreislauf_core::{EventKind, FieldError, Source};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::AppState;

#[derive(Clone, Copy)]
enum Endpoint {
    Single(EventKind),
    Batch,
}

pub(crate) fn routes() -> Router<Arc<AppState>> {
    let mut router = Router::new();
    let singles = [
        ("track", "t", EventKind::Track),
        ("identify", "i", EventKind::Identify),
        ("page", "p", EventKind::Page),
        ("screen", "s", EventKind::Screen),
        ("group", "g", EventKind::Group),
        ("alias", "a", EventKind::Alias),
    ];
    for (long, short, kind) in singles {
        let handler = move |state: State<Arc<AppState>>, headers: HeaderMap, body: Body| {
            handle(state, headers, body, Endpoint::Single(kind))
        };
        router = router
            .route(&format!("/v1/{long}"), post(handler))
            .route(&format!("/v1/{short}"), post(handler));
    }
    let batch = |state: State<Arc<AppState>>, headers: HeaderMap, body: Body| {
        handle(state, headers, body, Endpoint::Batch)
    };
    router
        .route("/v1/batch", post(batch))
        .route("/v1/b", post(batch))
        .route("/v1/import", post(batch))
}

#[derive(Deserialize)]
struct BatchEnvelope<'a> {
    #[serde(borrow)]
    batch: Option<Vec<&'a RawValue>>,
    #[serde(default)]
    context: Option<Value>,
    #[serde(default)]
    integrations: Option<Value>,
    #[serde(default, rename = "sentAt")]
    sent_at: Option<Value>,
    #[serde(default, rename = "writeKey")]
    write_key: Option<String>,
}

async fn handle(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
    endpoint: Endpoint,
) -> Response {
    match ingest(&state, &headers, body, endpoint).await {
        Ok(()) => Json(serde_json::json!({"success": true})).into_response(),
        Err(e) => e.into_response(),
    }
}

fn count_rejected(state: &AppState, source: &str, reason: &str, n: usize) {
    state
        .engine
        .metrics()
        .events_rejected
        .with_label_values(&[source, reason])
        .inc_by(n as u64);
}

async fn ingest(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
    endpoint: Endpoint,
) -> Result<(), ApiError> {
    let limit = match endpoint {
        Endpoint::Batch => state.limits.max_batch_bytes,
        Endpoint::Single(_) => state.limits.max_event_bytes,
    };
    let basic_key = basic_auth_user(headers)?;
    let raw = read_body(headers, body, limit).await.inspect_err(|e| {
        if e.code == "payload_too_large" {
            count_rejected(state, "unknown", "too_large", 1);
        }
    })?;
    let received_at = Utc::now();
    let envelope: BatchEnvelope = serde_json::from_slice(&raw)
        .map_err(|e| ApiError::bad_request("", format!("body is not a JSON object: {e}")))?;
    let source = authenticate(state, basic_key.as_deref(), envelope.write_key.as_deref()).await?;

    let (items, defaults): (Vec<&RawValue>, BatchDefaults) = match endpoint {
        Endpoint::Batch => {
            let items = envelope.batch.ok_or_else(|| {
                ApiError::bad_request("batch", "batch is required and must be an array of events")
            })?;
            let defaults = BatchDefaults {
                context: object_field("context", envelope.context)?,
                integrations: object_field("integrations", envelope.integrations)?,
                sent_at: parse_timestamp(
                    "sentAt",
                    envelope.sent_at.as_ref().unwrap_or(&Value::Null),
                )
                .map_err(field_error)?,
            };
            (items, defaults)
        }
        Endpoint::Single(_) => {
            let whole: &RawValue = serde_json::from_slice(&raw)
                .map_err(|e| ApiError::bad_request("", format!("body is not JSON: {e}")))?;
            (vec![whole], BatchDefaults::default())
        }
    };
    let implied = match endpoint {
        Endpoint::Single(kind) => Some(kind),
        Endpoint::Batch => None,
    };

    let mut events = Vec::with_capacity(items.len());
    let mut errors = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let parsed: Result<Value, FieldError> =
            serde_json::from_str(item.get()).map_err(|e| FieldError::new("", e.to_string()));
        let result = parsed.and_then(|mut value| {
            if let Value::Object(map) = &mut value {
                map.remove("writeKey");
            }
            normalise(
                value,
                implied,
                &defaults,
                received_at,
                item.get().len(),
                &state.limits,
            )
        });
        match result {
            Ok(event) => events.push(event),
            Err(e) => {
                let reason = if e.message.contains("bytes; the limit") {
                    "too_large".to_owned()
                } else {
                    format!("invalid_{}", reason_name(&e.field))
                };
                count_rejected(state, &source.name, &reason, 1);
                errors.push(match endpoint {
                    Endpoint::Batch => e.at(index),
                    Endpoint::Single(_) => e,
                });
            }
        }
    }
    let accepted = state.engine.ingest(source, events).await?.accepted;
    if errors.is_empty() {
        return Ok(());
    }
    let mut error = match (&endpoint, errors.as_slice()) {
        (Endpoint::Single(_), [only]) => ApiError::bad_request(&only.field, only.to_string()),
        _ => {
            let mut e = ApiError::bad_request(
                "batch",
                format!(
                    "{} of {} events were rejected; the others were stored",
                    errors.len(),
                    items.len()
                ),
            );
            e.code = "invalid_events";
            e.accepted = Some(accepted);
            e
        }
    };
    if matches!(endpoint, Endpoint::Single(_)) && error.field.as_deref() == Some("") {
        error.field = None;
    }
    error.errors = errors;
    Err(error)
}

fn reason_name(field: &str) -> String {
    if field.is_empty() {
        "event".into()
    } else {
        field.replace('.', "_")
    }
}

fn field_error(e: FieldError) -> ApiError {
    ApiError::bad_request(&e.field, e.to_string())
}

fn object_field(field: &str, v: Option<Value>) -> Result<Option<Map<String, Value>>, ApiError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m)),
        Some(_) => Err(ApiError::bad_request(
            field,
            format!("{field} must be a JSON object"),
        )),
    }
}

/// The write key from `Authorization: Basic base64(key:)`, if that header is present.
fn basic_auth_user(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .map_err(|_| ApiError::unauthorized("Authorization header is not ASCII"))?;
    let Some(encoded) = text
        .strip_prefix("Basic ")
        .or_else(|| text.strip_prefix("basic "))
    else {
        return Err(ApiError::unauthorized(
            "Authorization must be Basic with the write key as user name",
        ));
    };
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| {
            ApiError::unauthorized("Authorization Basic credentials are not valid base64")
        })?;
    let text = String::from_utf8(decoded)
        .map_err(|_| ApiError::unauthorized("Authorization Basic credentials are not UTF-8"))?;
    let user = text.split_once(':').map(|(u, _)| u).unwrap_or(&text);
    Ok((!user.is_empty()).then(|| user.to_owned()))
}

async fn authenticate(
    state: &AppState,
    basic: Option<&str>,
    body_key: Option<&str>,
) -> Result<Arc<Source>, ApiError> {
    let key = basic.or(body_key).ok_or_else(|| {
        ApiError::unauthorized(
            "missing write key: send it as the Basic auth user name or as writeKey in the body",
        )
    })?;
    state.engine.authenticate(key).await.ok_or_else(|| {
        count_rejected(state, "unknown", "unauthorized", 1);
        ApiError::unauthorized("unknown or revoked write key")
    })
}

/// Reads the body (gunzipping it if needed) up to `limit` bytes of JSON.
async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Vec<u8>, ApiError> {
    let too_large = || ApiError::too_large(format!("body is larger than {limit} bytes"));
    let bytes = to_bytes(body, limit + 1).await.map_err(|_| too_large())?;
    let gzipped = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("gzip"));
    let raw = if gzipped {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&bytes[..])
            .take(limit as u64 + 1)
            .read_to_end(&mut out)
            .map_err(|e| ApiError::bad_request("", format!("body is not valid gzip: {e}")))?;
        out
    } else {
        bytes.to_vec()
    };
    if raw.len() > limit {
        return Err(too_large());
    }
    Ok(raw)
}
