//! actix-web integration: the `Authenticated` extractor and RFC 6750 error responses.
//!
//! ```text
//! App::new()
//!     .app_data(web::Data::new(verifier))
//!     .route("/private", web::get().to(|auth: Authenticated| async move { auth.subject.clone() }))
//! ```

use std::future::Future;
use std::pin::Pin;

use actix_web::http::StatusCode;
use actix_web::http::header::{
    AUTHORIZATION, CACHE_CONTROL, HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE,
};
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError, web};
use serde::de::DeserializeOwned;
use serde_json::json;

use super::{AccessClaims, Verified, Verifier, VerifyError};

/// A request carrying a valid bearer access token. `C` is the caller's claims type.
#[derive(Debug, Clone)]
pub struct Authenticated<C = AccessClaims>(pub Verified<C>);

impl<C> std::ops::Deref for Authenticated<C> {
    type Target = Verified<C>;

    fn deref(&self) -> &Verified<C> {
        &self.0
    }
}

impl<C> Authenticated<C> {
    /// RFC 6750 §3.1: 403 `insufficient_scope` unless the token grants `scope`.
    pub fn require_scope(&self, scope: &str) -> Result<(), BearerError> {
        if self.scopes().any(|s| s == scope) {
            Ok(())
        } else {
            Err(BearerError::InsufficientScope(format!("scope {scope}")))
        }
    }

    /// 403 `insufficient_scope` unless the subject has `role`.
    pub fn require_role(&self, role: &str) -> Result<(), BearerError> {
        if self.roles.iter().any(|r| r == role) {
            Ok(())
        } else {
            Err(BearerError::InsufficientScope(format!("role {role}")))
        }
    }
}

/// A bearer-authentication failure, answered per RFC 6750 §3.
#[derive(Debug, thiserror::Error)]
pub enum BearerError {
    /// No bearer token in the `Authorization` header (§3.1: no error code is sent).
    #[error("bearer token required")]
    Missing,
    /// The token is malformed, forged, expired, or not for us.
    #[error("invalid token: {0}")]
    Invalid(VerifyError),
    /// Valid token without the needed scope or role.
    #[error("insufficient scope: {0}")]
    InsufficientScope(String),
    /// The request is malformed (RFC 6750 §3.1 `invalid_request`, 400): the token sent by more
    /// than one method (§2), or a form body that could not be read. The text is the
    /// `error_description`.
    #[error("invalid request: {0}")]
    InvalidRequest(&'static str),
    /// The token cannot be checked right now (the issuer's keys, or the application's own
    /// dependency): 503 with `Retry-After`.
    #[error("token verification unavailable")]
    Unavailable,
    /// The application failed while checking the token (it logs why): 500.
    #[error("token verification failed")]
    Internal,
    /// The application did not register a `Verifier`.
    #[error("no Verifier in app data")]
    NotConfigured,
}

impl From<VerifyError> for BearerError {
    fn from(error: VerifyError) -> Self {
        match error {
            VerifyError::KeysUnavailable => Self::Unavailable,
            other => Self::Invalid(other),
        }
    }
}

// The one RFC 6750 builder of the crate. `verify` works without the server (a resource server
// depends on it alone), so it cannot use the server's `http::error`; the server's own
// bearer-protected endpoints answer through this builder instead of a copy of it (the policy is
// written in `http::error`).
impl ResponseError for BearerError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Missing | Self::Invalid(_) => StatusCode::UNAUTHORIZED,
            Self::InsufficientScope(_) => StatusCode::FORBIDDEN,
            Self::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::NotConfigured | Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let (challenge, error, description) = match self {
            Self::Missing => (
                "Bearer",
                "invalid_request",
                "A bearer access token is required.",
            ),
            Self::Invalid(reason) => {
                tracing::debug!(%reason, "bearer token refused");
                (
                    r#"Bearer error="invalid_token", error_description="The access token is invalid or expired""#,
                    "invalid_token",
                    "The access token is invalid or expired.",
                )
            }
            Self::InsufficientScope(_) => (
                r#"Bearer error="insufficient_scope", error_description="The access token does not grant this""#,
                "insufficient_scope",
                "The access token does not grant this.",
            ),
            Self::InvalidRequest(description) => (
                r#"Bearer error="invalid_request""#,
                "invalid_request",
                *description,
            ),
            Self::Unavailable => (
                "",
                "temporarily_unavailable",
                "Token verification is temporarily unavailable.",
            ),
            Self::NotConfigured => {
                tracing::error!("Authenticated used without a Verifier in app data");
                ("", "server_error", "An internal error occurred.")
            }
            Self::Internal => ("", "server_error", "An internal error occurred."),
        };
        let mut response = HttpResponse::build(self.status_code());
        response.insert_header((CACHE_CONTROL, HeaderValue::from_static("no-store")));
        if matches!(self, Self::Unavailable) {
            // Keys are refetched, and a dependency comes back, within seconds.
            response.insert_header((RETRY_AFTER, HeaderValue::from_static("5")));
        }
        if !challenge.is_empty() {
            response.insert_header((WWW_AUTHENTICATE, HeaderValue::from_static(challenge)));
        }
        response.json(json!({ "error": error, "error_description": description }))
    }
}

/// The bearer token of the `Authorization` header (RFC 6750 §2.1; the only method accepted).
pub fn bearer_token(request: &HttpRequest) -> Result<String, BearerError> {
    let mut values = request.headers().get_all(AUTHORIZATION);
    let Some(value) = values.next() else {
        return Err(BearerError::Missing);
    };
    if values.next().is_some() {
        return Err(BearerError::Invalid(VerifyError::Malformed(
            "several Authorization headers",
        )));
    }
    let value = value.to_str().map_err(|_| {
        BearerError::Invalid(VerifyError::Malformed("non-ASCII Authorization header"))
    })?;
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(BearerError::Missing);
    }
    // token68 (RFC 9110 §11.2) — a JWT uses only base64url characters and dots.
    let token68 = |c: char| c.is_ascii_alphanumeric() || "-._~+/=".contains(c);
    if token.is_empty() || !token.chars().all(token68) {
        return Err(BearerError::Invalid(VerifyError::Malformed(
            "not a bearer token",
        )));
    }
    Ok(token.to_owned())
}

impl<C: DeserializeOwned + 'static> FromRequest for Authenticated<C> {
    type Error = BearerError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, BearerError>>>>;

    fn from_request(request: &HttpRequest, _payload: &mut actix_web::dev::Payload) -> Self::Future {
        let verifier = request
            .app_data::<web::Data<Verifier>>()
            .map(|data| Verifier::clone(data))
            .or_else(|| request.app_data::<Verifier>().cloned());
        let token = bearer_token(request);
        Box::pin(async move {
            let verifier = verifier.ok_or(BearerError::NotConfigured)?;
            Ok(Authenticated(verifier.verify::<C>(&token?).await?))
        })
    }
}
