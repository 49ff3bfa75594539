//! The admin API: `GET /admin/keys`, `POST /admin/keys/rotate[?immediate=true][&alg=…]`,
//! `POST /admin/keys/{kid}/revoke`.
//!
//! Authentication is a bearer access token only (no cookie, so no CSRF), verified by the same
//! rules as every resource server with the issuer itself as the required audience: a token
//! minted for another audience never opens it. The subject must hold the `admin` role. Every
//! change is audited (who, what, which keys) by the key service, which the CLI shares.

use std::future::Future;
use std::pin::Pin;

use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError, web};
use serde_json::json;

use crate::error::ApiError;
use crate::keys::SigningAlg;
use crate::keys::lifecycle::{self, Actor, KeyError, RotateRequest};
use crate::state::AppState;
use crate::verify::actix::{BearerError, bearer_token};

/// The role that opens the admin API.
pub const ADMIN_ROLE: &str = "admin";

/// An authenticated administrator: the `sub` of a valid access token for the issuer's own
/// audience whose roles include `admin`.
pub struct Admin {
    /// The user id.
    pub user_id: String,
}

impl FromRequest for Admin {
    type Error = AdminError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, AdminError>>>>;

    fn from_request(request: &HttpRequest, _payload: &mut actix_web::dev::Payload) -> Self::Future {
        let state = request.app_data::<web::Data<AppState>>().cloned();
        let token = bearer_token(request);
        let path = request.path().to_owned();
        Box::pin(async move {
            let state = state.ok_or(AdminError::Bearer(BearerError::NotConfigured))?;
            let token = token.map_err(AdminError::Bearer)?;
            let verified = state
                .admin_verifier
                .verify::<crate::verify::AccessClaims>(&token)
                .await
                .map_err(|e| AdminError::Bearer(e.into()))?;
            // Only the first-party login's tokens: an OAuth client's token, even one for the
            // issuer's audience with an admin's roles, never opens the admin API.
            let first_party = verified.claims.client_id.as_deref()
                == Some(crate::accounts::sessions::FIRST_PARTY_CLIENT_ID);
            if !first_party {
                return Err(AdminError::Bearer(BearerError::Invalid(
                    crate::verify::VerifyError::Malformed("not a first-party token"),
                )));
            }
            if !verified.roles.iter().any(|role| role == ADMIN_ROLE) {
                tracing::warn!(subject = %verified.subject, %path, "admin API refused: not an admin");
                return Err(AdminError::Bearer(BearerError::InsufficientScope(format!(
                    "role {ADMIN_ROLE}"
                ))));
            }
            Ok(Admin {
                user_id: verified.subject,
            })
        })
    }
}

/// An admin API failure: RFC 6750 for authentication, the JSON API shape otherwise.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// Missing, invalid or insufficient bearer token.
    #[error(transparent)]
    Bearer(BearerError),
    /// The key service refused or failed.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// A malformed parameter; the text names it.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
}

impl ResponseError for AdminError {
    fn status_code(&self) -> StatusCode {
        self.error_response().status()
    }

    fn error_response(&self) -> HttpResponse {
        let conflict = |error: &str, description: &str, extra: serde_json::Value| {
            let mut body = json!({ "error": error, "error_description": description });
            if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
                body.extend(extra.clone());
            }
            HttpResponse::Conflict()
                .insert_header(("Cache-Control", "no-store"))
                .json(body)
        };
        match self {
            Self::Bearer(error) => error.error_response(),
            Self::InvalidRequest(what) => ApiError::InvalidRequest(what.clone()).error_response(),
            Self::Key(KeyError::NotFound(_)) => ApiError::NotFound.error_response(),
            Self::Key(KeyError::RotationInProgress(pending)) => conflict(
                "rotation_in_progress",
                "A rotation is already in progress; its pending key activates at the time shown.",
                json!({ "pending": pending }),
            ),
            Self::Key(KeyError::AlreadyRevoked(_)) => conflict(
                "key_not_published",
                "The key is already revoked or removed.",
                json!({}),
            ),
            Self::Key(KeyError::Conflict) => conflict(
                "conflict",
                "Another key change happened at the same time; nothing was changed. Try again.",
                json!({}),
            ),
            Self::Key(KeyError::Db(db)) => {
                ApiError::from(crate::db::DbError::Unavailable(db.to_string())).error_response()
            }
            // Key material or KEK trouble: logged by ApiError, never sent.
            Self::Key(other) => ApiError::Internal(other.to_string()).error_response(),
        }
    }
}

fn ok(status: StatusCode, body: &impl serde::Serialize) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header(("Cache-Control", "no-store"))
        .json(body)
}

/// `GET /admin/keys`: every key (no key material) with its next scheduled change.
pub async fn list_keys(
    state: web::Data<AppState>,
    _admin: Admin,
) -> Result<HttpResponse, AdminError> {
    let policy = state.key_context.policy;
    let keys = state
        .db
        .run(move |conn| lifecycle::list(conn, &policy))
        .await?;
    Ok(ok(
        StatusCode::OK,
        &json!({
            "keys": keys,
            "schedule": {
                "rotation_interval_seconds": policy.rotation_interval.map(|d| d.as_secs()),
                "publish_lead_seconds": policy.publish_lead.as_secs(),
                "retention_seconds": policy.retention.as_secs(),
            },
        }),
    ))
}

/// `POST /admin/keys/rotate`: a new pending key per algorithm (201), or with `immediate=true`
/// a new signer at once (200, with a warning that caches may lag).
pub async fn rotate(
    state: web::Data<AppState>,
    admin: Admin,
    request: HttpRequest,
) -> Result<HttpResponse, AdminError> {
    let rotate_request = rotate_params(request.query_string())?;
    let immediate = rotate_request.immediate;
    let rotation = lifecycle::rotate_keys(
        &state.db,
        &state.key_context,
        rotate_request,
        Actor::Admin(admin.user_id),
    )
    .await?;
    state.reload_keys().await;
    let status = if immediate {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok(ok(status, &rotation))
}

fn rotate_params(query: &str) -> Result<RotateRequest, AdminError> {
    let mut request = RotateRequest {
        algs: Vec::new(),
        immediate: false,
    };
    for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
        match name.as_ref() {
            "immediate" => {
                request.immediate = match value.as_ref() {
                    "true" | "1" => true,
                    "false" | "0" => false,
                    _ => {
                        return Err(AdminError::InvalidRequest(
                            "immediate must be true or false".into(),
                        ));
                    }
                }
            }
            "alg" => {
                request.algs.push(SigningAlg::parse(&value).ok_or_else(|| {
                    AdminError::InvalidRequest("alg must be ES256 or RS256".into())
                })?)
            }
            _ => {
                return Err(AdminError::InvalidRequest(format!(
                    "unknown parameter {}",
                    name.chars().take(64).collect::<String>()
                )));
            }
        }
    }
    if request.algs.is_empty() {
        request.algs = SigningAlg::ALL.to_vec();
    }
    request.algs.sort();
    request.algs.dedup();
    Ok(request)
}

/// `POST /admin/keys/{kid}/revoke`: out of the JWKS at once; an active key is replaced in the
/// same transaction.
pub async fn revoke(
    state: web::Data<AppState>,
    admin: Admin,
    kid: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    let revocation = lifecycle::revoke_key(
        &state.db,
        &state.key_context,
        kid.into_inner(),
        Actor::Admin(admin.user_id),
    )
    .await?;
    state.reload_keys().await;
    Ok(ok(StatusCode::OK, &revocation))
}
