//! The admin REST API under `/api`. Every route requires `Authorization: Bearer <token>`.

use std::sync::Arc;

use axum::extract::{Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use kreislauf_core::{Identifier, IdentifierKind, IdentityMapping, ProfileId};
use kreislauf_store::{from_millis, to_millis, NewSource, StoredEvent, TimelineCursor};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::AppState;

/// Who called: the admin token's name, for the audit log.
#[derive(Clone)]
pub(crate) struct Actor(pub(crate) String);

pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/sources", get(list_sources).post(create_source))
        .route("/api/sources/{id}", get(get_source).patch(update_source))
        .route("/api/sources/{id}/write-keys", post(add_write_key))
        .route("/api/write-keys", get(list_write_keys))
        .route("/api/write-keys/{key}", delete(revoke_write_key))
        .route("/api/profiles", get(search_profiles))
        .route("/api/profiles/lookup", get(lookup_profile))
        .route("/api/profiles/{id}", get(get_profile).delete(erase_profile))
        .route("/api/profiles/{id}/timeline", get(timeline))
        .route("/api/profiles/{id}/merges", get(merges))
        .route("/api/profiles/{id}/conflicts", get(conflicts))
        .route("/api/profiles/{id}/export", get(export))
        .route("/api/profiles/{id}/erase", post(erase_profile))
        .route("/api/merges/{id}/revert", post(revert_merge))
        .route("/api/audit", get(audit_log))
        .route("/api/stats", get(stats))
        .route("/api/quality/report", get(quality_report))
        .route("/api/quality/dedupe", post(quality_dedupe))
        .route("/api/quality/reviews", get(list_reviews))
        .route("/api/quality/gate", get(quality_gate))
        .route("/api/quality/reviews/{id}/accept", post(accept_review))
        .route("/api/quality/reviews/{id}/reject", post(reject_review))
}

/// Rejects every request without an active bearer token.
pub(crate) async fn require_token(
    State(state): State<Arc<AppState>>,
    mut request: Request,
    next: Next,
) -> Response {
    let token = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .map(str::to_owned);
    let Some(token) = token else {
        return ApiError::unauthorized("admin endpoints need Authorization: Bearer <token> (create one with `kreislauf token create`)").into_response();
    };
    match state.engine.verify_token(&token).await {
        Ok(Some(record)) => {
            request
                .extensions_mut()
                .insert(Actor(format!("token:{}", record.name)));
            next.run(request).await
        }
        Ok(None) => ApiError::unauthorized("unknown or revoked admin token").into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

type ApiResult = Result<Response, ApiError>;

fn ok(value: impl serde::Serialize) -> ApiResult {
    Ok(Json(value).into_response())
}

async fn list_sources(State(state): State<Arc<AppState>>) -> ApiResult {
    ok(state.engine.store().sources().await?)
}

async fn get_source(State(state): State<Arc<AppState>>, Path(id): Path<i64>) -> ApiResult {
    let source = state
        .engine
        .store()
        .sources()
        .await?
        .into_iter()
        .find(|s| s.id == id)
        .ok_or_else(|| ApiError::not_found(format!("source {id} not found")))?;
    ok(source)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SourceBody {
    name: Option<String>,
    brand: Option<String>,
    channel: Option<String>,
    identity_mapping: Option<IdentityMapping>,
    allowed_origins: Option<Vec<String>>,
}

fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        let message = e.to_string();
        // serde names the field in its message ("unknown field `x`", "missing field `name`").
        let field = message.split('`').nth(1).unwrap_or("").to_owned();
        ApiError::bad_request(&field, format!("invalid request body: {message}"))
    })
}

fn required(field: &str, v: Option<String>) -> Result<String, ApiError> {
    match v.map(|s| s.trim().to_owned()) {
        Some(s) if !s.is_empty() => Ok(s),
        _ => Err(ApiError::bad_request(
            field,
            format!("{field} is required and must not be empty"),
        )),
    }
}

async fn create_source(State(state): State<Arc<AppState>>, body: axum::body::Bytes) -> ApiResult {
    let body: SourceBody = parse_body(&body)?;
    let new = NewSource {
        name: required("name", body.name)?,
        brand: required("brand", body.brand)?,
        channel: required("channel", body.channel)?,
        identity_mapping: body.identity_mapping.unwrap_or_default(),
        allowed_origins: body.allowed_origins.unwrap_or_default(),
    };
    let (source, key) = state.engine.create_source(new).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"source": source, "write_key": key.key})),
    )
        .into_response())
}

async fn update_source(
    State(state): State<Arc<AppState>>,
    Path(id): Path<i64>,
    body: axum::body::Bytes,
) -> ApiResult {
    let body: SourceBody = parse_body(&body)?;
    let mut source = state
        .engine
        .store()
        .sources()
        .await?
        .into_iter()
        .find(|s| s.id == id)
        .ok_or_else(|| ApiError::not_found(format!("source {id} not found")))?;
    if let Some(name) = body.name {
        source.name = required("name", Some(name))?;
    }
    if let Some(brand) = body.brand {
        source.brand = required("brand", Some(brand))?;
    }
    if let Some(channel) = body.channel {
        source.channel = required("channel", Some(channel))?;
    }
    if let Some(mapping) = body.identity_mapping {
        source.identity_mapping = mapping;
    }
    if let Some(origins) = body.allowed_origins {
        source.allowed_origins = origins;
    }
    ok(state.engine.update_source(source).await?)
}

async fn add_write_key(State(state): State<Arc<AppState>>, Path(id): Path<i64>) -> ApiResult {
    let key = state.engine.add_write_key(id).await?;
    Ok((StatusCode::CREATED, Json(key)).into_response())
}

async fn list_write_keys(State(state): State<Arc<AppState>>) -> ApiResult {
    ok(state.engine.store().write_keys().await?)
}

async fn revoke_write_key(
    State(state): State<Arc<AppState>>,
    Path(key): Path<String>,
) -> ApiResult {
    state.engine.revoke_write_key(&key).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The root of `id`, or 404.
async fn root(state: &AppState, id: ProfileId) -> Result<ProfileId, ApiError> {
    state
        .engine
        .store()
        .root_of(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("profile {id} not found")))
}

async fn profile_json(state: &AppState, root: ProfileId) -> ApiResult {
    let profile = state
        .engine
        .store()
        .profile(root)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("profile {root} not found")))?;
    // The profile's quality score comes with it (issue 3): the same assessment the report uses.
    let assessment = kreislauf_engine::quality::assess(
        &profile,
        kreislauf_quality::Country::CH,
        state.engine.now().date_naive(),
    );
    let mut body = serde_json::to_value(&profile).unwrap_or(Value::Null);
    if let Some(obj) = body.as_object_mut() {
        obj.insert("quality_score".into(), Value::from(assessment.score));
    }
    ok(body)
}

async fn get_profile(State(state): State<Arc<AppState>>, Path(id): Path<ProfileId>) -> ApiResult {
    let root = root(&state, id).await?;
    profile_json(&state, root).await
}

#[derive(Deserialize)]
struct LookupQuery {
    kind: Option<String>,
    value: Option<String>,
}

async fn lookup_profile(
    State(state): State<Arc<AppState>>,
    Query(q): Query<LookupQuery>,
) -> ApiResult {
    let kind_name = required("kind", q.kind)?;
    let kind: IdentifierKind =
        kind_name
            .parse()
            .map_err(|e: kreislauf_core::identity::UnknownIdentifierKind| {
                ApiError::bad_request("kind", e.to_string())
            })?;
    let raw = required("value", q.value)?;
    let identifier = Identifier::new(kind, &raw)
        .ok_or_else(|| ApiError::bad_request("value", format!("{raw:?} is not a valid {kind}")))?;
    let root = state
        .engine
        .store()
        .profile_by_identifier(&identifier)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no profile with {identifier}")))?;
    profile_json(&state, root).await
}

#[derive(Deserialize)]
struct SearchQuery {
    #[serde(rename = "trait")]
    key: Option<String>,
    value: Option<String>,
    limit: Option<usize>,
}

async fn search_profiles(
    State(state): State<Arc<AppState>>,
    Query(q): Query<SearchQuery>,
) -> ApiResult {
    let key = required("trait", q.key)?;
    let raw = q
        .value
        .ok_or_else(|| ApiError::bad_request("value", "value is required"))?;
    // `value` is JSON when it parses as JSON (42, true, "x"), else a plain string.
    let value: Value = serde_json::from_str(&raw).unwrap_or(Value::String(raw));
    let limit = q.limit.unwrap_or(50).clamp(1, 500);
    let ids = state
        .engine
        .store()
        .search_by_trait(&key, &value, limit)
        .await?;
    let mut profiles = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(p) = state.engine.store().profile(id).await? {
            profiles.push(p);
        }
    }
    ok(json!({ "profiles": profiles }))
}

#[derive(Deserialize)]
struct PageQuery {
    limit: Option<usize>,
    before: Option<String>,
}

fn encode_cursor(e: &StoredEvent) -> String {
    format!("{}_{}", to_millis(e.timestamp), e.seq)
}

fn decode_cursor(s: &str) -> Result<TimelineCursor, ApiError> {
    let bad = || {
        ApiError::bad_request(
            "before",
            format!("{s:?} is not a cursor from a previous page's next_before"),
        )
    };
    let (ts, seq) = s.split_once('_').ok_or_else(bad)?;
    Ok(TimelineCursor {
        timestamp_ms: ts.parse().map_err(|_| bad())?,
        seq: seq.parse().map_err(|_| bad())?,
    })
}

async fn timeline(
    State(state): State<Arc<AppState>>,
    Path(id): Path<ProfileId>,
    Query(q): Query<PageQuery>,
) -> ApiResult {
    let root = root(&state, id).await?;
    let limit = q.limit.unwrap_or(50).clamp(1, 1000);
    let before = q.before.as_deref().map(decode_cursor).transpose()?;
    let events = state.engine.store().timeline(root, before, limit).await?;
    let next = (events.len() == limit)
        .then(|| events.last().map(encode_cursor))
        .flatten();
    ok(json!({ "profile_id": root, "events": events, "next_before": next }))
}

async fn merges(State(state): State<Arc<AppState>>, Path(id): Path<ProfileId>) -> ApiResult {
    let root = root(&state, id).await?;
    ok(state.engine.store().merges(root).await?)
}

async fn conflicts(State(state): State<Arc<AppState>>, Path(id): Path<ProfileId>) -> ApiResult {
    let root = root(&state, id).await?;
    ok(state.engine.store().conflicts(root).await?)
}

async fn export(
    State(state): State<Arc<AppState>>,
    axum::Extension(actor): axum::Extension<Actor>,
    Path(id): Path<ProfileId>,
) -> ApiResult {
    let root = root(&state, id).await?;
    let export = state
        .engine
        .store()
        .export(root)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("profile {id} not found")))?;
    state
        .engine
        .store()
        .audit(kreislauf_store::AuditEntry {
            at: state.engine.now(),
            actor: actor.0,
            action: "export".into(),
            subject: format!("profile {root}"),
            detail: json!({}),
        })
        .await?;
    let filename = format!("attachment; filename=\"kreislauf-profile-{root}.json\"");
    Ok(([(header::CONTENT_DISPOSITION, filename)], Json(export)).into_response())
}

async fn erase_profile(
    State(state): State<Arc<AppState>>,
    axum::Extension(actor): axum::Extension<Actor>,
    Path(id): Path<ProfileId>,
) -> ApiResult {
    let root = root(&state, id).await?;
    let report = state.engine.erase(root, &actor.0).await?;
    ok(json!({ "erased_profile": root, "removed": report }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RevertBody {
    reason: Option<String>,
}

async fn revert_merge(
    State(state): State<Arc<AppState>>,
    axum::Extension(actor): axum::Extension<Actor>,
    Path(id): Path<i64>,
    body: axum::body::Bytes,
) -> ApiResult {
    let body: RevertBody = if body.is_empty() {
        RevertBody { reason: None }
    } else {
        parse_body(&body)?
    };
    let reason = required("reason", body.reason)?;
    ok(state.engine.unmerge(id, &reason, &actor.0).await?)
}

#[derive(Deserialize)]
struct LimitQuery {
    limit: Option<usize>,
}

async fn audit_log(State(state): State<Arc<AppState>>, Query(q): Query<LimitQuery>) -> ApiResult {
    ok(state
        .engine
        .store()
        .audit_log(q.limit.unwrap_or(100).clamp(1, 1000))
        .await?)
}

async fn stats(State(state): State<Arc<AppState>>) -> ApiResult {
    let stats = state.engine.store().stats().await?;
    ok(
        json!({ "store": state.engine.store().backend_name(), "events": stats.events, "profiles": stats.profiles, "identities": stats.identities, "at": from_millis(to_millis(state.engine.now())) }),
    )
}

#[derive(Deserialize)]
struct QualityQuery {
    country: Option<String>,
}

async fn quality_report(
    State(state): State<Arc<AppState>>,
    Query(q): Query<QualityQuery>,
) -> ApiResult {
    let country = country_param(q.country.as_deref())?;
    let options =
        kreislauf_engine::quality::ReportOptions::new(country, state.engine.now().date_naive());
    ok(kreislauf_engine::quality::report(state.engine.store().as_ref(), &options).await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DedupeBody {
    #[serde(default)]
    apply: bool,
    auto_merge_threshold: Option<f64>,
    country: Option<String>,
}

async fn quality_dedupe(
    State(state): State<Arc<AppState>>,
    axum::Extension(actor): axum::Extension<Actor>,
    body: axum::body::Bytes,
) -> ApiResult {
    let body: DedupeBody = if body.is_empty() {
        DedupeBody {
            apply: false,
            auto_merge_threshold: None,
            country: None,
        }
    } else {
        parse_body(&body)?
    };
    let country = country_param(body.country.as_deref())?;
    let mut options =
        kreislauf_engine::quality::ReportOptions::new(country, state.engine.now().date_naive());
    if let Some(t) = body.auto_merge_threshold {
        if !(0.5..=1.0).contains(&t) {
            return Err(ApiError::bad_request(
                "auto_merge_threshold",
                "must be between 0.5 and 1.0",
            ));
        }
        options.auto_merge_threshold = t;
    }
    ok(kreislauf_engine::quality::dedupe(&state.engine, &options, body.apply, &actor.0).await?)
}

#[derive(Deserialize)]
struct ReviewQuery {
    status: Option<String>,
    limit: Option<usize>,
}

async fn list_reviews(
    State(state): State<Arc<AppState>>,
    Query(q): Query<ReviewQuery>,
) -> ApiResult {
    if let Some(status) = q.status.as_deref() {
        if !["pending", "accepted", "rejected"].contains(&status) {
            return Err(ApiError::bad_request(
                "status",
                format!("unknown status {status:?} (pending, accepted or rejected)"),
            ));
        }
    }
    ok(state
        .engine
        .store()
        .reviews(q.status.as_deref(), q.limit.unwrap_or(100).clamp(1, 1000))
        .await?)
}

async fn accept_review(
    State(state): State<Arc<AppState>>,
    axum::Extension(actor): axum::Extension<Actor>,
    Path(id): Path<i64>,
) -> ApiResult {
    ok(kreislauf_engine::quality::accept_review(&state.engine, id, &actor.0).await?)
}

async fn reject_review(
    State(state): State<Arc<AppState>>,
    axum::Extension(actor): axum::Extension<Actor>,
    Path(id): Path<i64>,
) -> ApiResult {
    ok(kreislauf_engine::quality::reject_review(&state.engine, id, &actor.0).await?)
}

#[derive(Deserialize)]
struct GateQuery {
    channel: Option<String>,
    min_score: Option<u8>,
    allow_suspicious: Option<bool>,
    country: Option<String>,
}

async fn quality_gate(State(state): State<Arc<AppState>>, Query(q): Query<GateQuery>) -> ApiResult {
    let channel_name = required("channel", q.channel)?;
    let channel = kreislauf_engine::quality::Channel::parse(&channel_name).ok_or_else(|| {
        ApiError::bad_request(
            "channel",
            format!("unknown channel {channel_name:?} (email, sms or post)"),
        )
    })?;
    let min_score = q.min_score.unwrap_or(0);
    if min_score > 100 {
        return Err(ApiError::bad_request(
            "min_score",
            "must be between 0 and 100",
        ));
    }
    let country = country_param(q.country.as_deref())?;
    let gate = kreislauf_engine::quality::CampaignGate {
        channel,
        min_score,
        allow_suspicious: q.allow_suspicious.unwrap_or(false),
    };
    ok(kreislauf_engine::quality::gate_counts(
        state.engine.store().as_ref(),
        &gate,
        country,
        state.engine.now().date_naive(),
    )
    .await?)
}

/// The `country` parameter of the quality endpoints: the default region for phone numbers and postcodes.
fn country_param(raw: Option<&str>) -> Result<kreislauf_quality::Country, ApiError> {
    match raw {
        None => Ok(kreislauf_quality::Country::CH),
        Some(c) => kreislauf_quality::Country::parse(c)
            .ok_or_else(|| ApiError::bad_request("country", format!("unknown country {c:?}"))),
    }
}
