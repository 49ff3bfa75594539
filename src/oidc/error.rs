//! RFC 6749 §5.2 error responses of the token, revocation and introspection endpoints.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

use crate::db::DbError;

/// An OAuth error: a §5.2 code, a description without CR/LF/TAB or internals, and a status.
#[derive(Debug, thiserror::Error)]
#[error("{code}: {description}")]
pub struct OAuthError {
    /// The §5.2 code.
    pub code: &'static str,
    /// Human-readable, safe to show.
    pub description: String,
    /// HTTP status.
    pub status: StatusCode,
    /// Send `WWW-Authenticate: Basic` (a failed Basic client authentication).
    pub basic_challenge: bool,
}

impl OAuthError {
    fn new(code: &'static str, status: StatusCode, description: impl Into<String>) -> Self {
        Self {
            code,
            description: description.into(),
            status,
            basic_challenge: false,
        }
    }

    /// 400 `invalid_request`.
    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::new("invalid_request", StatusCode::BAD_REQUEST, description)
    }

    /// 401 `invalid_client`.
    pub fn invalid_client(basic: bool) -> Self {
        Self {
            basic_challenge: basic,
            ..Self::new(
                "invalid_client",
                StatusCode::UNAUTHORIZED,
                "Client authentication failed.",
            )
        }
    }

    /// 400 `invalid_grant`.
    pub fn invalid_grant(description: impl Into<String>) -> Self {
        Self::new("invalid_grant", StatusCode::BAD_REQUEST, description)
    }

    /// 400 `unauthorized_client`.
    pub fn unauthorized_client(description: impl Into<String>) -> Self {
        Self::new("unauthorized_client", StatusCode::BAD_REQUEST, description)
    }

    /// 400 `unsupported_grant_type`.
    pub fn unsupported_grant_type() -> Self {
        Self::new(
            "unsupported_grant_type",
            StatusCode::BAD_REQUEST,
            "This grant type is not supported.",
        )
    }

    /// 400 `invalid_scope`.
    pub fn invalid_scope(description: impl Into<String>) -> Self {
        Self::new("invalid_scope", StatusCode::BAD_REQUEST, description)
    }

    /// 400 `invalid_target` (RFC 8707): an audience the client may not request.
    pub fn invalid_target() -> Self {
        Self::new(
            "invalid_target",
            StatusCode::BAD_REQUEST,
            "The requested audience is not allowed for this client.",
        )
    }

    /// 503 `temporarily_unavailable`; the cause is logged.
    pub fn unavailable(cause: &dyn std::fmt::Display) -> Self {
        tracing::warn!(%cause, "OAuth request failed: dependency unavailable");
        Self::new(
            "temporarily_unavailable",
            StatusCode::SERVICE_UNAVAILABLE,
            "The service is temporarily unavailable; try again shortly.",
        )
    }

    /// 500 `server_error`; the cause is logged, never sent.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(%cause, "OAuth request failed: internal error");
        Self::new(
            "server_error",
            StatusCode::INTERNAL_SERVER_ERROR,
            "An internal error occurred.",
        )
    }
}

impl From<DbError> for OAuthError {
    fn from(error: DbError) -> Self {
        match crate::error::ApiError::from(error) {
            crate::error::ApiError::Unavailable(cause) => Self::unavailable(&cause),
            other => Self::internal(&other),
        }
    }
}

impl From<diesel::result::Error> for OAuthError {
    fn from(error: diesel::result::Error) -> Self {
        DbError::Query(error).into()
    }
}

impl ResponseError for OAuthError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        response
            .insert_header(("Cache-Control", "no-store"))
            .insert_header(("Pragma", "no-cache"));
        if self.basic_challenge {
            response.insert_header(("WWW-Authenticate", "Basic realm=\"portcullis\""));
        }
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response.insert_header(("Retry-After", "5"));
        }
        response.json(json!({ "error": self.code, "error_description": self.description }))
    }
}
