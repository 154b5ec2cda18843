//! API errors: one table from error kind to HTTP status and stable snake_case code.
//! Every error body has `success: false`, `code` and `message` (rudder-sdk reads the last two).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use kreislauf_core::FieldError;
use kreislauf_engine::EngineError;
use kreislauf_store::StoreError;
use serde::Serialize;

/// An error answer (boxed: handlers return it by value on every path).
#[derive(Debug)]
pub struct ApiError(Box<ErrorBody>);

/// The JSON body of an error answer.
#[derive(Debug, Serialize)]
pub struct ErrorBody {
    #[serde(skip)]
    pub status: StatusCode,
    pub success: bool,
    pub code: &'static str,
    pub message: String,
    /// The offending field (dotted path) for a single-field error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Per-event errors of a batch.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// Events of the batch that were stored despite the errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accepted: Option<usize>,
    #[serde(skip)]
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self(Box::new(ErrorBody {
            status,
            success: false,
            code,
            message: message.into(),
            field: None,
            errors: Vec::new(),
            accepted: None,
            retry_after: None,
        }))
    }

    pub fn bad_request(field: &str, message: impl Into<String>) -> Self {
        let mut e = Self::new(StatusCode::BAD_REQUEST, "invalid_request", message);
        e.field = Some(field.to_owned());
        e
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", message)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }

    pub fn overloaded() -> Self {
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "overloaded",
            "too many events are waiting to be written; retry later",
        );
        e.retry_after = Some(1);
        e
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { .. } => ApiError::not_found(e.to_string()),
            StoreError::Conflict { .. } => {
                ApiError::new(StatusCode::CONFLICT, "conflict", e.to_string())
            }
            StoreError::Locked(_) => ApiError::unavailable(e.to_string()),
            StoreError::Corrupt(_) | StoreError::Backend(_) => {
                tracing::error!(error = %e, "store failure");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal storage error; see the server log",
                )
            }
        }
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::Overloaded => ApiError::overloaded(),
            EngineError::Stopped => ApiError::unavailable("the server is shutting down"),
            EngineError::Store(s) => s.into(),
        }
    }
}

impl From<kreislauf_engine::audience::AudienceError> for ApiError {
    fn from(e: kreislauf_engine::audience::AudienceError) -> Self {
        use kreislauf_engine::audience::AudienceError;
        match e {
            AudienceError::Invalid(message) => {
                let field = message.split(':').next().unwrap_or_default().to_owned();
                let mut err = ApiError::new(StatusCode::BAD_REQUEST, "invalid_definition", message);
                err.field = Some(field);
                err
            }
            AudienceError::NotFound { .. } => ApiError::not_found(e.to_string()),
            AudienceError::Stopped => ApiError::unavailable(e.to_string()),
            AudienceError::Store(s) => s.into(),
            AudienceError::Engine(s) => s.into(),
        }
    }
}

impl std::ops::Deref for ApiError {
    type Target = ErrorBody;
    fn deref(&self) -> &ErrorBody {
        &self.0
    }
}

impl std::ops::DerefMut for ApiError {
    fn deref_mut(&mut self) -> &mut ErrorBody {
        &mut self.0
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(&*self.0)).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}
