//! Error types at the HTTP edge. `ApiError` answers `{"error","error_description"}`; 5xx bodies
//! are generic and the cause is logged, never sent.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::db::DbError;

/// The JSON error body of the non-OAuth endpoints.
#[derive(Debug, Serialize)]
pub struct ErrorBody {
    /// Machine-readable code (snake_case).
    pub error: &'static str,
    /// Human-readable description; never contains internals.
    pub error_description: String,
}

/// An error answered with the JSON API shape.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No such resource.
    #[error("not found")]
    NotFound,
    /// The path exists but not for this method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// A dependency (the database) is unavailable; retry later.
    #[error("temporarily unavailable: {0}")]
    Unavailable(String),
    /// Anything else; the cause is logged, not sent.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<DbError> for ApiError {
    fn from(error: DbError) -> Self {
        match error {
            DbError::Unavailable(cause) => Self::Unavailable(cause),
            other => Self::Internal(other.to_string()),
        }
    }
}

impl ApiError {
    fn code(&self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::Unavailable(_) => "temporarily_unavailable",
            Self::Internal(_) => "server_error",
        }
    }

    fn description(&self) -> &'static str {
        match self {
            Self::NotFound => "No resource at this path.",
            Self::MethodNotAllowed => "This method is not allowed on this resource.",
            Self::Unavailable(_) => "The service is temporarily unavailable; try again shortly.",
            Self::Internal(_) => "An internal error occurred.",
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            Self::Unavailable(cause) => {
                tracing::warn!(%cause, "request failed: dependency unavailable")
            }
            Self::Internal(cause) => tracing::error!(%cause, "request failed: internal error"),
            _ => {}
        }
        let mut response = HttpResponse::build(self.status_code());
        if matches!(self, Self::Unavailable(_)) {
            response.insert_header(("Retry-After", "5"));
        }
        response
            .insert_header(("Cache-Control", "no-store"))
            .json(ErrorBody {
                error: self.code(),
                error_description: self.description().to_owned(),
            })
    }
}
