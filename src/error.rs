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
    /// Password hashing is at capacity (every thread busy, the queue full): refused at once so
    /// a burst cannot pile up behind Argon2; retry in a second (DOS-07, DOS-11).
    #[error("password hashing queue full")]
    Overloaded,
    /// Anything else; the cause is logged, not sent.
    #[error("internal error: {0}")]
    Internal(String),
    /// The request body or a parameter is malformed; the text names the field.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The body is not `application/json`.
    #[error("unsupported media type")]
    UnsupportedMediaType,
    /// The header section is larger than allowed.
    #[error("request headers too large")]
    HeadersTooLarge,
    /// The body did not arrive within the request timeout.
    #[error("request body timeout")]
    BodyTimeout,
    /// The body is larger than allowed.
    #[error("payload too large")]
    PayloadTooLarge,
    /// Wrong username or password (one answer for both).
    #[error("invalid credentials")]
    InvalidCredentials,
    /// The refresh token is not usable.
    #[error("invalid grant")]
    InvalidGrant,
    /// The username or email is taken.
    #[error("user exists")]
    UserExists,
    /// Open registration is switched off.
    #[error("registration closed")]
    RegistrationClosed,
    /// Throttled; retry after this many seconds.
    #[error("too many requests")]
    TooManyRequests(u64),
}

impl From<DbError> for ApiError {
    fn from(error: DbError) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        match error {
            DbError::Unavailable(cause) => Self::Unavailable(cause),
            // The connection died under the query, or the database was too slow or busy: the
            // database is away or overloaded, not broken, and the request changed nothing.
            DbError::Query(Error::DatabaseError(
                DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
                info,
            )) => Self::Unavailable(info.message().to_owned()),
            DbError::Query(Error::DatabaseError(_, info))
                if crate::db::is_timeout(info.message()) =>
            {
                Self::Unavailable(info.message().to_owned())
            }
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<crate::accounts::sessions::AuthError> for ApiError {
    fn from(error: crate::accounts::sessions::AuthError) -> Self {
        use crate::accounts::sessions::AuthError;
        match error {
            AuthError::InvalidCredentials => Self::InvalidCredentials,
            AuthError::Throttled(seconds) => Self::TooManyRequests(seconds),
            AuthError::InvalidGrant => Self::InvalidGrant,
            AuthError::Db(db) => db.into(),
            AuthError::Busy => Self::Overloaded,
            AuthError::Internal(cause) => Self::Internal(cause),
        }
    }
}

impl From<crate::accounts::users::AccountError> for ApiError {
    fn from(error: crate::accounts::users::AccountError) -> Self {
        use crate::accounts::users::AccountError;
        match error {
            AccountError::Invalid(field) => Self::InvalidRequest(field.to_string()),
            AccountError::UserExists => Self::UserExists,
            AccountError::NotFound => Self::NotFound,
            AccountError::Ambiguous | AccountError::LastAdmin => {
                Self::InvalidRequest(error.to_string())
            }
            AccountError::Hash(crate::accounts::password::HashError::Busy) => Self::Overloaded,
            AccountError::Hash(e) => Self::Internal(e.to_string()),
            AccountError::Db(db) => db.into(),
        }
    }
}

impl ApiError {
    fn code(&self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::Unavailable(_) | Self::Overloaded => "temporarily_unavailable",
            Self::Internal(_) => "server_error",
            Self::InvalidRequest(_)
            | Self::PayloadTooLarge
            | Self::BodyTimeout
            | Self::HeadersTooLarge => "invalid_request",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::InvalidCredentials => "invalid_credentials",
            Self::InvalidGrant => "invalid_grant",
            Self::UserExists => "user_exists",
            Self::RegistrationClosed => "registration_closed",
            Self::TooManyRequests(_) => "too_many_requests",
        }
    }

    fn description(&self) -> String {
        match self {
            Self::NotFound => "No resource at this path.".into(),
            Self::MethodNotAllowed => "This method is not allowed on this resource.".into(),
            Self::Unavailable(_) => {
                "The service is temporarily unavailable; try again shortly.".into()
            }
            Self::Overloaded => "The server is busy; try again in a moment.".into(),
            Self::Internal(_) => "An internal error occurred.".into(),
            Self::InvalidRequest(what) => what.clone(),
            Self::UnsupportedMediaType => "The body must be application/json.".into(),
            Self::PayloadTooLarge => "The request body is too large.".into(),
            Self::BodyTimeout => "The request body did not arrive in time.".into(),
            Self::HeadersTooLarge => "The request headers are too large.".into(),
            Self::InvalidCredentials => "The username or password is incorrect.".into(),
            Self::InvalidGrant => "The refresh token is invalid, expired or revoked.".into(),
            Self::UserExists => "A user with this username or email already exists.".into(),
            Self::RegistrationClosed => "Registration is closed.".into(),
            Self::TooManyRequests(_) => "Too many attempts; try again later.".into(),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Unavailable(_) | Self::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Self::InvalidCredentials | Self::InvalidGrant => StatusCode::UNAUTHORIZED,
            Self::UserExists => StatusCode::CONFLICT,
            Self::RegistrationClosed => StatusCode::FORBIDDEN,
            Self::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            Self::Unavailable(cause) => {
                tracing::warn!(%cause, "request failed: dependency unavailable")
            }
            Self::Overloaded => tracing::warn!("request refused: password hashing queue full"),
            Self::Internal(cause) => tracing::error!(%cause, "request failed: internal error"),
            _ => {}
        }
        let mut response = HttpResponse::build(self.status_code());
        match self {
            Self::Unavailable(_) => {
                response.insert_header(("Retry-After", "5"));
            }
            // The queue drains in well under a second at the default Argon2 cost.
            Self::Overloaded => {
                response.insert_header(("Retry-After", "1"));
            }
            Self::TooManyRequests(seconds) => {
                response.insert_header(("Retry-After", seconds.to_string()));
            }
            // The rest of the body may still be on its way: the connection cannot be reused.
            Self::BodyTimeout | Self::HeadersTooLarge => {
                response.force_close();
            }
            _ => {}
        }
        response
            .insert_header(("Cache-Control", "no-store"))
            .json(ErrorBody {
                error: self.code(),
                error_description: self.description(),
            })
    }
}
