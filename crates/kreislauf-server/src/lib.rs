//! The HTTP adapter. Only this crate knows HTTP: handlers authenticate, parse and validate input, call
//! one engine or store method and map the result (or error) to JSON.

mod admin;
mod error;
mod ingest;
mod openapi;
mod segments;

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use kreislauf_core::Limits;
use kreislauf_engine::Engine;
use tokio::net::TcpListener;
use tower_http::cors::{AllowOrigin, CorsLayer};

pub use error::ApiError;

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    pub engine: Engine,
    pub limits: Limits,
    /// Segments and computed traits; without them those endpoints answer 503.
    pub audiences: Option<kreislauf_engine::audience::Audiences>,
}

impl AppState {
    pub fn new(engine: Engine) -> Arc<Self> {
        Arc::new(Self {
            engine,
            limits: Limits::default(),
            audiences: None,
        })
    }

    /// The state with the audience processor (what `kreislauf serve` runs).
    pub fn with_audiences(
        engine: Engine,
        audiences: kreislauf_engine::audience::Audiences,
    ) -> Arc<Self> {
        Arc::new(Self {
            engine,
            limits: Limits::default(),
            audiences: Some(audiences),
        })
    }
}

/// The whole HTTP surface.
pub fn router(state: Arc<AppState>) -> Router {
    let engine = state.engine.clone();
    // Browsers (analytics.js) post from the shop's origin; only origins a source allows get CORS.
    let cors = CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(move |origin: &HeaderValue, _| {
            origin
                .to_str()
                .is_ok_and(|o| engine.allowed_origins().contains(o))
        }))
        .allow_methods([Method::POST, Method::OPTIONS])
        .allow_headers([
            axum::http::header::CONTENT_TYPE,
            axum::http::header::AUTHORIZATION,
            axum::http::header::CONTENT_ENCODING,
            axum::http::HeaderName::from_static("x-retry-count"),
        ])
        .max_age(std::time::Duration::from_secs(3600));
    let ingest = ingest::routes().layer(cors);
    let admin =
        admin::routes()
            .merge(segments::routes())
            .route_layer(middleware::from_fn_with_state(
                state.clone(),
                admin::require_token,
            ));
    Router::new()
        .merge(ingest)
        .merge(admin)
        .route("/api/openapi.json", get(openapi::document))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

async fn ready(State(state): State<Arc<AppState>>) -> Response {
    match state.engine.store().sources().await {
        Ok(_) => "ready".into_response(),
        Err(e) => ApiError::unavailable(format!("store not ready: {e}")).into_response(),
    }
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        state.engine.metrics().render(),
    )
        .into_response()
}

/// Request latency by route and status, and a trace line per request.
async fn observe(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into());
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status();
    let seconds = started.elapsed().as_secs_f64();
    state
        .engine
        .metrics()
        .http_seconds
        .with_label_values(&[route.as_str(), status.as_str()])
        .observe(seconds);
    tracing::debug!(route = %route, status = status.as_u16(), ms = seconds * 1000.0, "request");
    response
}

/// Serves until `shutdown` resolves, then finishes in-flight requests (their batches are committed).
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}
