//! Segments and computed traits under `/api` (behind the admin token like the rest of `/api`).

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use kreislauf_core::ProfileId;
use kreislauf_engine::audience::Audiences;
use serde::Deserialize;
use serde_json::json;

use crate::error::ApiError;
use crate::AppState;

type ApiResult = Result<Response, ApiError>;

pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/audiences", post(apply))
        .route("/api/segments", get(list))
        .route("/api/segments/preview", post(preview))
        .route("/api/segments/{id}", get(show))
        .route("/api/segments/{id}/members", get(members))
        .route("/api/segments/{id}/export", get(export))
        .route("/api/computed-traits", get(computed_traits))
        .route("/api/profiles/{id}/audience", get(profile))
}

fn audiences(state: &AppState) -> Result<&Audiences, ApiError> {
    state
        .audiences
        .as_ref()
        .ok_or_else(|| ApiError::unavailable("segments are not running in this process"))
}

fn text(body: &Bytes) -> Result<&str, ApiError> {
    std::str::from_utf8(body)
        .map_err(|_| ApiError::bad_request("body", "must be UTF-8 YAML or JSON"))
}

/// Applies a definition document (`computed_traits` and `segments`, YAML or JSON).
async fn apply(
    State(state): State<Arc<AppState>>,
    axum::Extension(actor): axum::Extension<crate::admin::Actor>,
    body: Bytes,
) -> ApiResult {
    let report = audiences(&state)?.apply(text(&body)?, &actor.0).await?;
    Ok(Json(report).into_response())
}

async fn list(State(state): State<Arc<AppState>>) -> ApiResult {
    Ok(Json(audiences(&state)?.segments().await?).into_response())
}

async fn show(State(state): State<Arc<AppState>>, Path(id): Path<String>) -> ApiResult {
    Ok(Json(audiences(&state)?.segment(&id).await?).into_response())
}

#[derive(Deserialize)]
struct PreviewQuery {
    scan: Option<usize>,
    sample: Option<usize>,
}

/// Size estimate and sample of an unsaved segment definition (the body).
async fn preview(
    State(state): State<Arc<AppState>>,
    Query(q): Query<PreviewQuery>,
    body: Bytes,
) -> ApiResult {
    let preview = audiences(&state)?
        .preview(
            text(&body)?,
            q.scan.unwrap_or(100_000),
            q.sample.unwrap_or(20).min(1000),
        )
        .await?;
    Ok(Json(preview).into_response())
}

#[derive(Deserialize)]
struct PageQuery {
    after: Option<ProfileId>,
    limit: Option<usize>,
}

async fn members(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
) -> ApiResult {
    let limit = q.limit.unwrap_or(100).clamp(1, 10_000);
    let members = audiences(&state)?
        .members(&id, q.after.unwrap_or(0), limit)
        .await?;
    let next = (members.len() == limit)
        .then(|| members.last().copied())
        .flatten();
    Ok(Json(json!({"members": members, "next_after": next})).into_response())
}

#[derive(Deserialize)]
struct ExportQuery {
    /// Comma-separated trait or computed-trait names.
    traits: Option<String>,
}

/// Members as CSV, streamed page by page.
async fn export(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    Query(q): Query<ExportQuery>,
) -> ApiResult {
    let audiences = audiences(&state)?.clone();
    let traits: Vec<String> = q
        .traits
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(String::from)
        .collect();
    // Fail before the 200 if the segment does not exist.
    audiences.members(&id, 0, 1).await?;
    let mut header_row = csv::Writer::from_writer(Vec::new());
    let mut columns = vec!["profile_id".to_string()];
    columns.extend(traits.iter().cloned());
    let _ = header_row.write_record(&columns);
    let first = header_row.into_inner().unwrap_or_default();
    let pages = futures_util::stream::unfold(
        (Some(0), audiences, id.clone(), traits),
        |(after, audiences, id, traits)| async move {
            let after = after?;
            match audiences.export_page(&id, &traits, after, 1000).await {
                Ok((rows, next)) => {
                    let mut out = csv::Writer::from_writer(Vec::new());
                    for row in rows {
                        let _ = out.write_record(&row);
                    }
                    let bytes = out.into_inner().unwrap_or_default();
                    Some((
                        Ok::<_, std::io::Error>(Bytes::from(bytes)),
                        (next, audiences, id, traits),
                    ))
                }
                Err(e) => Some((
                    Err(std::io::Error::other(e.to_string())),
                    (None, audiences, id, traits),
                )),
            }
        },
    );
    let body = futures_util::stream::once(async move { Ok(Bytes::from(first)) });
    let stream = futures_util::StreamExt::chain(body, pages);
    let filename = format!("attachment; filename=\"segment-{id}.csv\"");
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (header::CONTENT_DISPOSITION, filename),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

async fn computed_traits(State(state): State<Arc<AppState>>) -> ApiResult {
    Ok(Json(audiences(&state)?.computed_traits()).into_response())
}

async fn profile(State(state): State<Arc<AppState>>, Path(id): Path<ProfileId>) -> ApiResult {
    let root = state
        .engine
        .store()
        .root_of(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("profile {id} not found")))?;
    Ok(Json(audiences(&state)?.profile(root).await?).into_response())
}
