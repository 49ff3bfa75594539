//! Errors at the HTTP edge: the one error policy, and one response builder per endpoint family.
//!
//! # Policy
//! - **Client errors** answer 4xx with the family's code for them: the request can be fixed.
//!   They are not logged here; a handler logs what an operator needs (a throttled IP, a refused
//!   login) at info or warn.
//! - **Server-side failures** ([`Fault`]) answer one of two ways in every family:
//!   - *transient*, `503` + `Retry-After` + `temporarily_unavailable`: the database is away,
//!     saturated or not taking writes ([`DbError::is_transient`]: no pooled connection within the
//!     checkout timeout, a connection lost under the query, a statement, lock or busy timeout, a
//!     server that turned read-only under a failover (25006), a serialization failure or
//!     deadlock, an admin or crash shutdown), the server is shutting down, or the
//!     password-hashing queue is full. Nothing was changed; the same
//!     request may be retried. `Retry-After: 5`, but `1` for the hashing queue, which drains in
//!     well under a second (the hosted pages say 5 for both).
//!   - *internal*, `500` + `server_error`: anything else (a query that should not fail, key
//!     material, a panicked task).
//! - **Causes** stay attached as error sources (`#[source]`, never a `String`). The builder of
//!   each family logs the whole chain (`cause=outer: inner: innermost`) exactly once, inside the
//!   request's span so the line carries the request id: a 503 at warn, a 500 at error.
//! - **Bodies** say what a client can act on: the code, and a description that may name the
//!   offending field or parameter. A 5xx description is a fixed sentence; no body carries a cause,
//!   a query, an address or a path on disk. Error responses are never cached (`no-store`).
//!
//! # Families
//! | endpoints | error type | answer |
//! |---|---|---|
//! | OAuth: `/token`, `/revoke`, `/introspect` | [`OAuthError`] (protocol data, `oidc::error`) | RFC 6749 §5.2 JSON, `Pragma: no-cache`, `WWW-Authenticate: Basic` after a failed Basic client authentication |
//! | bearer-protected: `/userinfo`, `/api/me`, `/api/auth/logout-all`, admin authentication | [`BearerError`] | RFC 6750 §3, built by `verify::actix` (below) |
//! | JSON API: `/api/…`, probes, unknown paths and methods | [`ApiError`] | `{"error","error_description"}` |
//! | admin API: `/admin/…` | `AdminError` (`http::admin`) | the JSON API's shape, with extra members on conflicts |
//! | hosted pages: `/authorize…`, `/logout` | [`Fault`] via [`page_failure`] | the HTML message page |
//!
//! RFC 6750: `verify` is a resource server's verifier and works without the server, so it cannot
//! use this module. Its `BearerError` is the one RFC 6750 builder: the server's bearer-protected
//! endpoints answer through it too rather than through a copy here. A server-side failure during
//! the server's own bearer check (its database) is classified and logged here
//! ([`Fault::into_bearer`]) before it becomes one of `BearerError`'s server-side variants.

use std::borrow::Cow;
use std::error::Error;

use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, PRAGMA, RETRY_AFTER, WWW_AUTHENTICATE};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::accounts::mail_links::LinkError;
use crate::accounts::password::HashError;
use crate::accounts::sessions::AuthError;
use crate::accounts::users::AccountError;
use crate::db::DbError;
use crate::oidc::authorize::AuthorizeError;
use crate::oidc::error::OAuthError;
use crate::verify::actix::BearerError;

pub use crate::oidc::error::Cause;

/// `Retry-After` of a transient failure, in seconds.
const RETRY_UNAVAILABLE: u64 = 5;
/// `Retry-After` when the hashing queue is full: it drains in well under a second at the
/// default Argon2 cost.
const RETRY_BUSY: u64 = 1;

/// A server-side failure, classified once for every family.
#[derive(Debug, thiserror::Error)]
pub enum Fault {
    /// A dependency is away or saturated (or the server is shutting down): 503, retry later.
    #[error("temporarily unavailable")]
    Unavailable(#[source] Cause),
    /// The password-hashing queue is full (DOS-07, DOS-11): 503, retry in a second.
    #[error("password hashing queue full")]
    Busy,
    /// Anything else: 500.
    #[error("internal error")]
    Internal(#[source] Cause),
}

impl Fault {
    /// A transient failure caused by `cause`.
    pub fn unavailable(cause: impl Into<Cause>) -> Self {
        Self::Unavailable(cause.into())
    }

    /// An internal failure caused by `cause`.
    pub fn internal(cause: impl Into<Cause>) -> Self {
        Self::Internal(cause.into())
    }

    fn answer(&self) -> Answer<'_> {
        match self {
            Self::Unavailable(cause) => unavailable_answer(&**cause),
            Self::Busy => Answer {
                retry_after: Some(RETRY_BUSY),
                cause: Some(self),
                ..Answer::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "temporarily_unavailable",
                    "The server is busy; try again in a moment.",
                )
            },
            Self::Internal(cause) => internal_answer(&**cause),
        }
    }

    /// The RFC 6750 answer of a bearer check the server could not complete; the cause is
    /// logged here, since `BearerError` carries none.
    pub fn into_bearer(self) -> BearerError {
        self.answer().log();
        match self {
            Self::Unavailable(_) | Self::Busy => BearerError::Unavailable,
            Self::Internal(_) => BearerError::Internal,
        }
    }
}

impl From<DbError> for Fault {
    fn from(error: DbError) -> Self {
        if error.is_transient() {
            Self::unavailable(error)
        } else {
            Self::internal(error)
        }
    }
}

impl From<AuthorizeError> for Fault {
    fn from(error: AuthorizeError) -> Self {
        match error {
            AuthorizeError::Db(db) => db.into(),
            other => Self::internal(other),
        }
    }
}

impl From<AuthError> for Fault {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::Db(db) => db.into(),
            AuthError::Busy => Self::Busy,
            other => Self::internal(other),
        }
    }
}

/// What an error answer is made of, whatever its family.
struct Answer<'a> {
    status: StatusCode,
    code: &'static str,
    description: Cow<'a, str>,
    retry_after: Option<u64>,
    /// The rest of the body may still be on its way: the connection cannot be reused.
    close: bool,
    cause: Option<&'a (dyn Error + 'static)>,
}

impl<'a> Answer<'a> {
    fn new(status: StatusCode, code: &'static str, description: impl Into<Cow<'a, str>>) -> Self {
        Self {
            status,
            code,
            description: description.into(),
            retry_after: None,
            close: false,
            cause: None,
        }
    }

    /// Logs the cause of a server-side failure, once, in the request's span.
    fn log(&self) {
        let Some(cause) = self.cause else { return };
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            tracing::warn!(cause = %Chain(cause), "request failed: temporarily unavailable");
        } else if self.status.is_server_error() {
            tracing::error!(cause = %Chain(cause), "request failed: internal error");
        }
    }

    /// The response builder with the headers every family sends.
    fn builder(&self) -> actix_web::HttpResponseBuilder {
        self.log();
        let mut response = HttpResponse::build(self.status);
        response.insert_header((CACHE_CONTROL, "no-store"));
        if let Some(seconds) = self.retry_after {
            response.insert_header((RETRY_AFTER, seconds));
        }
        if self.close {
            response.force_close();
        }
        response
    }

    fn body(&self) -> ErrorBody<'_> {
        ErrorBody {
            error: self.code,
            error_description: &self.description,
        }
    }

    /// The JSON API's (and the admin API's) answer, with `extra` members in the body.
    fn json(&self, extra: Option<serde_json::Value>) -> HttpResponse {
        let mut builder = self.builder();
        match extra {
            Some(serde_json::Value::Object(mut members)) => {
                members.insert("error".into(), self.code.into());
                members.insert("error_description".into(), self.description.as_ref().into());
                builder.json(members)
            }
            _ => builder.json(self.body()),
        }
    }
}

/// An error and its sources, `outer: inner: innermost`, for one log field. A source whose text
/// its outer error already ends with (a `"…: {0}"` message) is not repeated.
pub struct Chain<'a>(pub &'a (dyn Error + 'static));

impl std::fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut shown = self.0.to_string();
        f.write_str(&shown)?;
        let mut source = self.0.source();
        while let Some(error) = source {
            let text = error.to_string();
            if !shown.ends_with(&text) {
                write!(f, ": {text}")?;
            }
            shown = text;
            source = error.source();
        }
        Ok(())
    }
}

/// The `{"error","error_description"}` body of every JSON family.
#[derive(Debug, Serialize)]
pub struct ErrorBody<'a> {
    /// Machine-readable code (snake_case).
    pub error: &'a str,
    /// Human-readable description; never contains internals.
    pub error_description: &'a str,
}

// ---------------------------------------------------------------------------------------------
// The JSON API

/// An error answered with the JSON API shape.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No such resource.
    #[error("not found")]
    NotFound,
    /// The path exists but not for this method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The server failed (503 or 500, per the policy above).
    #[error(transparent)]
    Fault(#[from] Fault),
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
    /// A second-factor code that is wrong, was used already, or whose challenge is unknown or
    /// expired.
    #[error("invalid code")]
    InvalidCode,
    /// The account needs a second factor it has not enrolled (the hosted login enrols it).
    #[error("second factor enrolment required")]
    SecondFactorEnrolmentRequired,
    /// A mailed link's token is unknown, used, superseded or expired.
    #[error("invalid link")]
    InvalidLink,
}

impl From<crate::accounts::factors::FactorError> for Fault {
    fn from(error: crate::accounts::factors::FactorError) -> Self {
        match error {
            crate::accounts::factors::FactorError::Db(db) => db.into(),
            other => Self::internal(other),
        }
    }
}

impl From<crate::accounts::factors::FactorError> for ApiError {
    fn from(error: crate::accounts::factors::FactorError) -> Self {
        use crate::accounts::factors::FactorError;
        match error {
            FactorError::InvalidCode | FactorError::NotEnrolled => Self::InvalidCode,
            FactorError::Throttled(seconds) => Self::TooManyRequests(seconds),
            FactorError::AlreadyEnrolled => {
                Self::InvalidRequest("a second factor is enrolled already".into())
            }
            other => Self::Fault(other.into()),
        }
    }
}

impl From<DbError> for ApiError {
    fn from(error: DbError) -> Self {
        Self::Fault(error.into())
    }
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::InvalidCredentials => Self::InvalidCredentials,
            AuthError::Throttled(seconds) => Self::TooManyRequests(seconds),
            AuthError::InvalidGrant => Self::InvalidGrant,
            fault => Self::Fault(fault.into()),
        }
    }
}

impl From<AccountError> for ApiError {
    fn from(error: AccountError) -> Self {
        match error {
            AccountError::Invalid(field) => Self::InvalidRequest(field.to_string()),
            AccountError::UserExists => Self::UserExists,
            AccountError::NotFound => Self::NotFound,
            AccountError::Ambiguous | AccountError::LastAdmin => {
                Self::InvalidRequest(error.to_string())
            }
            AccountError::Hash(HashError::Busy) => Self::Fault(Fault::Busy),
            AccountError::Hash(e) => Self::Fault(Fault::internal(e)),
            AccountError::Db(db) => db.into(),
        }
    }
}

impl From<LinkError> for ApiError {
    fn from(error: LinkError) -> Self {
        match error {
            LinkError::InvalidLink => Self::InvalidLink,
            LinkError::Throttled(seconds) => Self::TooManyRequests(seconds),
            LinkError::Invalid(field) => Self::InvalidRequest(field.to_string()),
            LinkError::AddressTaken => Self::UserExists,
            LinkError::Db(db) => db.into(),
            LinkError::Hash(HashError::Busy) => Self::Fault(Fault::Busy),
            other => Self::Fault(Fault::internal(other)),
        }
    }
}

impl ApiError {
    fn answer(&self) -> Answer<'_> {
        let client =
            |status, code, description: &'static str| Answer::new(status, code, description);
        match self {
            Self::Fault(fault) => fault.answer(),
            Self::NotFound => client(
                StatusCode::NOT_FOUND,
                "not_found",
                "No resource at this path.",
            ),
            Self::MethodNotAllowed => client(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "This method is not allowed on this resource.",
            ),
            Self::InvalidRequest(what) => {
                Answer::new(StatusCode::BAD_REQUEST, "invalid_request", what.as_str())
            }
            Self::UnsupportedMediaType => client(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "The body must be application/json.",
            ),
            Self::PayloadTooLarge => client(
                StatusCode::PAYLOAD_TOO_LARGE,
                "invalid_request",
                "The request body is too large.",
            ),
            Self::BodyTimeout => Answer {
                close: true,
                ..client(
                    StatusCode::REQUEST_TIMEOUT,
                    "invalid_request",
                    "The request body did not arrive in time.",
                )
            },
            Self::HeadersTooLarge => Answer {
                close: true,
                ..client(
                    StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                    "invalid_request",
                    "The request headers are too large.",
                )
            },
            Self::InvalidCredentials => client(
                StatusCode::UNAUTHORIZED,
                "invalid_credentials",
                "The username or password is incorrect.",
            ),
            Self::InvalidGrant => client(
                StatusCode::UNAUTHORIZED,
                "invalid_grant",
                "The refresh token is invalid, expired or revoked.",
            ),
            Self::UserExists => client(
                StatusCode::CONFLICT,
                "user_exists",
                "A user with this username or email already exists.",
            ),
            Self::RegistrationClosed => client(
                StatusCode::FORBIDDEN,
                "registration_closed",
                "Registration is closed.",
            ),
            Self::InvalidLink => client(
                StatusCode::BAD_REQUEST,
                "invalid_link",
                "The link is invalid, has expired or was already used; ask for a new one.",
            ),
            Self::TooManyRequests(seconds) => Answer {
                retry_after: Some(*seconds),
                ..client(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too_many_requests",
                    "Too many attempts; try again later.",
                )
            },
            Self::InvalidCode => client(
                StatusCode::UNAUTHORIZED,
                "invalid_code",
                "The code is wrong or was used already, or the challenge expired.",
            ),
            Self::SecondFactorEnrolmentRequired => client(
                StatusCode::FORBIDDEN,
                "second_factor_enrolment_required",
                "This account needs a second factor: set one up by signing in at the hosted login page.",
            ),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.answer().status
    }

    fn error_response(&self) -> HttpResponse {
        self.answer().json(None)
    }
}

// ---------------------------------------------------------------------------------------------
// The admin API: the JSON API's shape (`http::admin` maps its errors to these).

/// The admin API's answer to a client error: the JSON API's shape with `extra` members
/// (`extra` an object, or `null` for none).
pub fn admin_refusal(
    status: StatusCode,
    code: &'static str,
    description: &str,
    extra: serde_json::Value,
) -> HttpResponse {
    Answer::new(status, code, description).json(Some(extra))
}

/// A client error in the `{"error","error_description"}` shape with a protocol's own code (RFC
/// 7591 §3.2.2 for dynamic registration).
pub fn refusal(status: StatusCode, code: &'static str, description: &str) -> HttpResponse {
    Answer::new(status, code, description).json(None)
}

/// The admin API's answer when a dependency is briefly not ready (503 with `Retry-After`), with
/// a description of what to wait for.
pub fn admin_not_ready(description: &str, retry_after: u64) -> HttpResponse {
    Answer {
        retry_after: Some(retry_after),
        ..Answer::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            description,
        )
    }
    .json(None)
}

/// The admin API's answer to a database failure: 503 if transient, else 500.
pub fn admin_db_failure(error: &DbError) -> HttpResponse {
    if error.is_transient() {
        unavailable_answer(error).json(None)
    } else {
        internal_answer(error).json(None)
    }
}

/// The admin API's answer to a failed password hash: 503 when the queue is full, else 500.
pub fn admin_hash_failure(error: &HashError) -> HttpResponse {
    match error {
        HashError::Busy => Fault::Busy.answer().json(None),
        other => internal_answer(other).json(None),
    }
}

/// The admin API's answer to an internal failure caused by `cause`.
pub fn admin_internal(cause: &(dyn Error + 'static)) -> HttpResponse {
    internal_answer(cause).json(None)
}

fn unavailable_answer<'a>(cause: &'a (dyn Error + 'static)) -> Answer<'a> {
    Answer {
        cause: Some(cause),
        retry_after: Some(RETRY_UNAVAILABLE),
        ..Answer::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "The service is temporarily unavailable; try again shortly.",
        )
    }
}

fn internal_answer<'a>(cause: &'a (dyn Error + 'static)) -> Answer<'a> {
    Answer {
        cause: Some(cause),
        ..Answer::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "An internal error occurred.",
        )
    }
}

// ---------------------------------------------------------------------------------------------
// OAuth endpoints: RFC 6749 §5.2

impl ResponseError for OAuthError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let answer = Answer {
            retry_after: (status == StatusCode::SERVICE_UNAVAILABLE).then_some(RETRY_UNAVAILABLE),
            cause: self.cause.as_deref().map(|c| c as &(dyn Error + 'static)),
            ..Answer::new(status, self.code, self.description.as_str())
        };
        let mut response = answer.builder();
        // RFC 6749 §5.1/§5.2: no-store and no-cache on every token endpoint response.
        response.insert_header((PRAGMA, "no-cache"));
        if self.basic_challenge {
            // RFC 6749 §5.2: a failed Basic client authentication gets the challenge.
            response.insert_header((WWW_AUTHENTICATE, "Basic realm=\"portcullis\""));
        }
        response.json(answer.body())
    }
}

// ---------------------------------------------------------------------------------------------
// Hosted pages

/// What a hosted page shows for a server-side failure; `http::authorize` renders it in the
/// message page with its page headers.
pub struct PageFailure {
    /// The status.
    pub status: StatusCode,
    /// The page title.
    pub title: &'static str,
    /// The message.
    pub text: &'static str,
    /// `Retry-After`, for a transient failure.
    pub retry_after: Option<u64>,
}

/// The hosted pages' answer to `fault`, whose cause is logged here.
pub fn page_failure(fault: &Fault) -> PageFailure {
    let answer = fault.answer();
    answer.log();
    if answer.status == StatusCode::SERVICE_UNAVAILABLE {
        // A person reads this page: one wait for every transient cause.
        PageFailure {
            status: answer.status,
            title: "Temporarily unavailable",
            text: "Sign-in is temporarily unavailable. Try again shortly.",
            retry_after: Some(RETRY_UNAVAILABLE),
        }
    } else {
        PageFailure {
            status: answer.status,
            title: "Something went wrong",
            text: "Sign-in failed because of an error on our side. Try again later.",
            retry_after: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer: {0}")]
    struct Repeats(#[source] std::io::Error);

    #[derive(Debug, thiserror::Error)]
    #[error("middle")]
    struct Middle(#[source] Repeats);

    /// A connection lost under the query: transient.
    fn closed() -> DbError {
        DbError::Query(diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::ClosedConnection,
            Box::new("server closed the connection unexpectedly (10.0.0.7)".to_owned()),
        ))
    }

    /// A query that should not fail: internal.
    fn broken() -> DbError {
        DbError::Query(diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::Unknown,
            Box::new("relation \"users\" does not exist".to_owned()),
        ))
    }

    async fn parts(response: HttpResponse) -> (u16, Option<String>, String) {
        let status = response.status().as_u16();
        let retry = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = actix_web::body::to_bytes(response.into_body())
            .await
            .unwrap_or_else(|_| panic!("body"));
        (status, retry, String::from_utf8_lossy(&body).into_owned())
    }

    // The policy in one place: a transient database failure answers 503 + Retry-After in
    // every family, any other 500 without it; no body names the cause.
    #[tokio::test]
    async fn every_family_answers_database_failures_by_the_policy() {
        type Family = (&'static str, fn(DbError) -> HttpResponse);
        let families: [Family; 4] = [
            ("json api", |db| ApiError::from(db).error_response()),
            ("admin api", |db| admin_db_failure(&db)),
            ("oauth", |db| OAuthError::from(db).error_response()),
            ("bearer", |db| {
                Fault::from(db).into_bearer().error_response()
            }),
        ];
        for (family, answer) in families {
            for (db, status, code, retry) in [
                (closed(), 503, "temporarily_unavailable", Some("5")),
                (broken(), 500, "server_error", None),
            ] {
                let (got, retry_after, body) = parts(answer(db)).await;
                assert_eq!(got, status, "{family}");
                assert_eq!(retry_after.as_deref(), retry, "{family}");
                let body: serde_json::Value =
                    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{family}: {e}"));
                assert_eq!(body["error"], code, "{family}");
                let text = body.to_string();
                assert!(
                    !text.contains("10.0.0.7") && !text.contains("users"),
                    "{family}: no cause in {text}"
                );
            }
        }
        let page = page_failure(&Fault::from(closed()));
        assert_eq!((page.status.as_u16(), page.retry_after), (503, Some(5)));
        let page = page_failure(&Fault::from(broken()));
        assert_eq!((page.status.as_u16(), page.retry_after), (500, None));
    }

    #[test]
    fn the_chain_names_every_cause_once() {
        let error = Middle(Repeats(std::io::Error::other("innermost")));
        assert_eq!(Chain(&error).to_string(), "middle: outer: innermost");
    }
}
