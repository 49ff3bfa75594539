//! actix-web integration: the `Authenticated` extractor, RFC 6750 error responses, and the
//! resource's RFC 9728 metadata ([`ProtectedResource`]).
//!
//! ```text
//! let resource = ProtectedResource::new(&ProtectedResourceMetadata::new(audience, issuer))?;
//! App::new()
//!     .app_data(web::Data::new(verifier))
//!     .configure(resource.configure())
//!     .wrap(middleware::from_fn(resource_metadata_challenge))
//!     .route("/private", web::get().to(|auth: Authenticated| async move { auth.subject.clone() }))
//! ```

use std::future::Future;
use std::pin::Pin;

use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, HeaderMap, HeaderValue, RETRY_AFTER,
    WWW_AUTHENTICATE,
};
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError, web};
use serde::de::DeserializeOwned;
use serde_json::json;

use super::resource::{InvalidResource, ProtectedResourceMetadata, metadata_url};
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

impl Authenticated<AccessClaims> {
    /// RFC 9470 step-up: `Ok` when the user's sign-in behind the token is of one of
    /// `acr_values` (its `acr` claim) and, with `max_age` (seconds), no older than that (its
    /// `auth_time`). Otherwise 401 `insufficient_user_authentication` with `acr_values` (and
    /// `max_age`) in the challenge (§3), so that the client asks the authorization server for
    /// that sign-in (`acr_values=` / `max_age=` at the authorization endpoint) and retries with
    /// the new token. A token without `acr` (client credentials) never satisfies it.
    pub fn require_authentication(
        &self,
        acr_values: &[&str],
        max_age: Option<u64>,
    ) -> Result<(), BearerError> {
        let claims = &self.claims;
        let acr_ok = acr_values.is_empty()
            || claims
                .acr
                .as_deref()
                .is_some_and(|acr| acr_values.contains(&acr));
        let fresh = max_age.is_none_or(|max_age| {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            claims
                .auth_time
                .is_some_and(|at| now.saturating_sub(at) <= max_age)
        });
        if acr_ok && fresh {
            Ok(())
        } else {
            Err(BearerError::InsufficientUserAuthentication {
                acr_values: acr_values.join(" "),
                max_age,
            })
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
    /// Valid token from a sign-in that is too weak or too old (RFC 9470 §3): 401 with
    /// `acr_values` (space-separated, as the authorization request takes them) and `max_age`
    /// (seconds) in the challenge.
    #[error("insufficient user authentication")]
    InsufficientUserAuthentication {
        /// The acceptable classes, space-separated.
        acr_values: String,
        /// The oldest acceptable sign-in, in seconds.
        max_age: Option<u64>,
    },
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
            Self::Missing | Self::Invalid(_) | Self::InsufficientUserAuthentication { .. } => {
                StatusCode::UNAUTHORIZED
            }
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
            Self::InsufficientUserAuthentication { .. } => (
                "",
                "insufficient_user_authentication",
                "A stronger or more recent sign-in is required.",
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
        if let Self::InsufficientUserAuthentication {
            acr_values,
            max_age,
        } = self
        {
            response.insert_header((WWW_AUTHENTICATE, step_up_challenge(acr_values, *max_age)));
        }
        response.json(json!({ "error": error, "error_description": description }))
    }
}

/// The RFC 9470 §3 challenge: `Bearer error="insufficient_user_authentication",
/// error_description="…"`, then `acr_values="…"` (when given and fit for a quoted string) and
/// `max_age="…"`.
fn step_up_challenge(acr_values: &str, max_age: Option<u64>) -> HeaderValue {
    let mut challenge = String::from(
        r#"Bearer error="insufficient_user_authentication", error_description="A stronger or more recent sign-in is required""#,
    );
    let quotable = |text: &str| {
        text.bytes()
            .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
    };
    if !acr_values.is_empty() && quotable(acr_values) {
        challenge.push_str(&format!(r#", acr_values="{acr_values}""#));
    }
    if let Some(max_age) = max_age {
        challenge.push_str(&format!(r#", max_age="{max_age}""#));
    }
    HeaderValue::from_str(&challenge).unwrap_or_else(|_| {
        HeaderValue::from_static(r#"Bearer error="insufficient_user_authentication""#)
    })
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

/// A resource's RFC 9728 metadata for an actix-web app: [`ProtectedResource::configure`] serves
/// the document at its well-known path (§3.1) on this server, and the middleware
/// [`resource_metadata_challenge`] names its URL in the app's Bearer challenges (§5.1), so that
/// a client given only the resource's URL finds the authorization server. Cheap to clone.
#[derive(Clone, Debug)]
pub struct ProtectedResource {
    document: web::Bytes,
    url: Arc<str>,
    path: Arc<str>,
}

impl ProtectedResource {
    /// The document of `metadata`, served at the well-known URL of its `resource`.
    ///
    /// Errors: a `resource` that cannot have metadata (see [`metadata_url`]).
    pub fn new(metadata: &ProtectedResourceMetadata) -> Result<Self, InvalidResource> {
        let url = metadata_url(&metadata.resource)?;
        let path = url::Url::parse(&url)
            .map(|parsed| parsed.path().to_owned())
            .map_err(|_| InvalidResource {
                identifier: metadata.resource.clone(),
                reason: "not an absolute URL",
            })?;
        let document = serde_json::to_vec(metadata).map_err(|_| InvalidResource {
            identifier: metadata.resource.clone(),
            reason: "the metadata does not serialise",
        })?;
        Ok(Self {
            document: document.into(),
            url: url.into(),
            path: path.into(),
        })
    }

    /// The absolute URL of the document (what `resource_metadata` names).
    pub fn metadata_url(&self) -> &str {
        &self.url
    }

    /// The path this server answers the document at (`/.well-known/oauth-protected-resource…`).
    pub fn metadata_path(&self) -> &str {
        &self.path
    }

    /// Registers the document's route (`GET`, and `OPTIONS` for browsers' preflight: it is
    /// public, `Access-Control-Allow-Origin: *`, cacheable for an hour) and this value as app
    /// data for [`resource_metadata_challenge`].
    pub fn configure(&self) -> impl FnOnce(&mut web::ServiceConfig) + use<> {
        let resource = self.clone();
        move |cfg| {
            let document = resource.document.clone();
            cfg.app_data(web::Data::new(resource.clone())).service(
                web::resource(resource.path.to_string())
                    .route(web::get().to(move || {
                        let document = document.clone();
                        async move {
                            HttpResponse::Ok()
                                .insert_header((CONTENT_TYPE, "application/json"))
                                .insert_header((CACHE_CONTROL, "public, max-age=3600"))
                                .insert_header((ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
                                .body(document)
                        }
                    }))
                    .route(web::method(actix_web::http::Method::OPTIONS).to(|| async {
                        HttpResponse::NoContent()
                            .insert_header((ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
                            .insert_header((ACCESS_CONTROL_ALLOW_METHODS, "GET"))
                            .insert_header((ACCESS_CONTROL_ALLOW_HEADERS, "*"))
                            .insert_header((CACHE_CONTROL, "public, max-age=3600"))
                            .finish()
                    })),
            );
        }
    }
}

/// Middleware (`actix_web::middleware::from_fn(resource_metadata_challenge)`): adds
/// `resource_metadata="<url>"` (RFC 9728 §5.1) to every `Bearer` challenge of a `401` or `403`
/// response, when the app registered a [`ProtectedResource`] with its `configure`. Challenges of
/// other schemes and challenges that already name their metadata are left alone.
pub async fn resource_metadata_challenge(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let resource = request
        .app_data::<web::Data<ProtectedResource>>()
        .map(|data| Arc::clone(&data.url));
    let mut response = next.call(request).await?;
    let status = response.status();
    if let Some(url) = resource
        && matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN)
    {
        name_metadata(response.headers_mut(), &url);
    }
    Ok(response)
}

/// Rewrites each `Bearer` challenge in `headers` to carry `resource_metadata="{url}"`.
fn name_metadata(headers: &mut HeaderMap, url: &str) {
    let challenges: Vec<HeaderValue> = headers.get_all(WWW_AUTHENTICATE).cloned().collect();
    if challenges.is_empty() {
        return;
    }
    headers.remove(WWW_AUTHENTICATE);
    for challenge in challenges {
        let rewritten = challenge.to_str().ok().and_then(|text| {
            let (scheme, params) = text.split_once(' ').unwrap_or((text, ""));
            if !scheme.eq_ignore_ascii_case("bearer") || params.contains("resource_metadata=") {
                return None;
            }
            let parameter = format!("resource_metadata=\"{url}\"");
            let value = if params.trim().is_empty() {
                format!("{scheme} {parameter}")
            } else {
                format!("{scheme} {params}, {parameter}")
            };
            HeaderValue::from_str(&value).ok()
        });
        headers.append(WWW_AUTHENTICATE, rewritten.unwrap_or(challenge));
    }
}
