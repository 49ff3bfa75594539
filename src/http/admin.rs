//! The admin API: `GET /admin/keys`, `POST /admin/keys/rotate[?immediate=true][&alg=…]`,
//! `POST /admin/keys/{kid}/revoke`, clients, users, their grants and consents, the audit trail.
//!
//! Authentication is a bearer access token only (no cookie, so no CSRF), verified by the same
//! rules as every resource server with the JSON API's audience, from the first-party login
//! only; the user must hold the `admin` role now (checked in the database on every request).
//! Every change is audited (who, what, old → new) in the transaction that makes it, and refused
//! calls by signed-in users are recorded too.

use std::future::Future;
use std::pin::Pin;

use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError, web};
use serde_json::json;

use crate::accounts::audit;
use crate::accounts::factors::SecondFactorPolicy;
use crate::accounts::sessions::FIRST_PARTY_CLIENT_ID;
use crate::accounts::users::{self, AccountError};
use crate::db::{DbConn, DbError};
use crate::http::bearer::{Refused, UserBearer};
use crate::http::error::{self, ApiError};
use crate::http::json::Json;
use crate::keys::lifecycle::{self, Actor, KeyError, RotateRequest};
use crate::keys::{IdTokenAlg, SigningAlg};
use crate::oidc::apis::{self as oidc_apis, ApiScope, ApiUpdate, ApisError, NewApi};
use crate::oidc::client_auth::AuthMethod;
use crate::oidc::clients::{
    self as oidc_clients, ClientError, GrantType, NewClient, PkcePolicy, RequestObjectAlg,
};
use crate::oidc::consent;
use crate::oidc::registration;
use crate::oidc::subjects;
use crate::oidc::user_grants;
use crate::state::AppState;
use crate::verify::actix::BearerError;

/// The role that opens the admin API.
pub const ADMIN_ROLE: &str = "admin";

/// An authenticated administrator: a first-party access token (the JSON API's login) whose user
/// holds the `admin` role *now*, checked in the database on every request (ADM-04): a demoted,
/// disabled or logged-out administrator's token stops working at once. A refused call by a
/// signed-in user is recorded in the audit trail (ADM-08).
pub struct Admin {
    /// The user id.
    pub user_id: String,
}

impl FromRequest for Admin {
    type Error = AdminError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, AdminError>>>>;

    fn from_request(request: &HttpRequest, _payload: &mut actix_web::dev::Payload) -> Self::Future {
        let request = request.clone();
        Box::pin(async move {
            let state = request
                .app_data::<web::Data<AppState>>()
                .cloned()
                .ok_or(AdminError::Bearer(BearerError::NotConfigured))?;
            let refuse = |subject: String, reason: &'static str| {
                let (method, path) = (request.method().to_string(), request.path().to_owned());
                tracing::warn!(%subject, %path, reason, "admin API refused");
                audit::record_refused(
                    &state.db,
                    subject,
                    method,
                    path,
                    reason,
                    state.clock.now_naive(),
                )
            };
            let bearer = match UserBearer::extract(&request).await {
                Ok(bearer) => bearer,
                Err(Refused {
                    error,
                    stale: Some((subject, why)),
                }) => {
                    refuse(subject, why.reason()).await;
                    return Err(AdminError::Bearer(error));
                }
                Err(refused) => return Err(AdminError::Bearer(refused.error)),
            };
            // Only the first-party login's tokens: an OAuth client's token, even one for the
            // issuer's audience with an admin's roles, never opens the admin API.
            let first_party = bearer.claims.client_id.as_deref() == Some(FIRST_PARTY_CLIENT_ID)
                && bearer.current.client_id == FIRST_PARTY_CLIENT_ID;
            if !first_party {
                return Err(AdminError::Bearer(BearerError::Invalid(
                    crate::verify::VerifyError::Malformed("not a first-party token"),
                )));
            }
            let user_id = bearer.current.user.id.clone();
            if !bearer.current.has_role(ADMIN_ROLE) {
                refuse(user_id, "not an administrator").await;
                return Err(AdminError::Bearer(BearerError::InsufficientScope(format!(
                    "role {ADMIN_ROLE}"
                ))));
            }
            Ok(Admin { user_id })
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
    /// A client change was refused or failed.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// A user change was refused or failed.
    #[error(transparent)]
    Account(#[from] AccountError),
    /// An API change was refused or failed.
    #[error(transparent)]
    Apis(#[from] ApisError),
}

impl ResponseError for AdminError {
    fn status_code(&self) -> StatusCode {
        self.error_response().status()
    }

    fn error_response(&self) -> HttpResponse {
        let conflict = |code, description, extra| {
            error::admin_refusal(StatusCode::CONFLICT, code, description, extra)
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
            // The spare key is being generated in the background, which takes about a second.
            Self::Key(KeyError::NoSpare(alg)) => error::admin_not_ready(
                &format!(
                    "The next {alg} key is still being generated; nothing was changed. Try again shortly."
                ),
                1,
            ),
            Self::Key(KeyError::Db(db))
            | Self::Client(ClientError::Db(db))
            | Self::Account(AccountError::Db(db))
            | Self::Apis(ApisError::Db(db)) => error::admin_db_failure(db),
            Self::Apis(ApisError::Invalid(what)) => {
                ApiError::InvalidRequest(what.clone()).error_response()
            }
            Self::Apis(ApisError::NotFound) => ApiError::NotFound.error_response(),
            Self::Apis(ApisError::Exists) => conflict(
                "api_exists",
                "An API with this identifier (or one of these scopes) already exists.",
                json!({}),
            ),
            Self::Apis(ApisError::ScopeTaken { scope, api }) => conflict(
                "scope_exists",
                "A scope with this name belongs to another API; scope names are unique across APIs.",
                json!({ "scope": scope, "api": api }),
            ),
            Self::Apis(ApisError::InUse { clients }) => conflict(
                "api_in_use",
                "Clients are allowed scopes this change would remove; nothing was changed.",
                json!({ "clients": clients }),
            ),
            // Key material or KEK trouble: logged, never sent.
            Self::Key(other) => error::admin_internal(other),
            Self::Client(ClientError::Invalid(what)) => {
                ApiError::InvalidRequest(what.clone()).error_response()
            }
            Self::Client(ClientError::Exists) => conflict(
                "client_exists",
                "A client with this client_id already exists.",
                json!({}),
            ),
            Self::Client(ClientError::NotFound) | Self::Account(AccountError::NotFound) => {
                ApiError::NotFound.error_response()
            }
            Self::Account(AccountError::Ambiguous) => conflict(
                "ambiguous_user",
                "The name matches one user's id and another user's username or email; use the id.",
                json!({}),
            ),
            Self::Account(AccountError::LastAdmin) => conflict(
                "last_admin",
                "This would leave no enabled administrator; grant the role to another user first.",
                json!({}),
            ),
            Self::Account(AccountError::Invalid(field)) => {
                ApiError::InvalidRequest(field.to_string()).error_response()
            }
            Self::Account(AccountError::UserExists) => ApiError::UserExists.error_response(),
            Self::Account(AccountError::Hash(hash)) => error::admin_hash_failure(hash),
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
            // Keys generated ahead of need: a rotation or revocation publishes these (kid only).
            "spares": state.key_context.spares.ready(),
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

impl From<crate::db::DbError> for AdminError {
    fn from(error: crate::db::DbError) -> Self {
        Self::Key(KeyError::Db(error))
    }
}

/// [`audit::audited`] on a blocking thread, by the administrator.
async fn audited<T, E, F>(
    state: &AppState,
    admin: &Admin,
    action: &'static str,
    change: F,
) -> Result<T, AdminError>
where
    F: FnOnce(&mut DbConn) -> Result<audit::Change<T>, E> + Send + 'static,
    T: Send + 'static,
    E: From<DbError> + From<diesel::result::Error> + Send + 'static,
    AdminError: From<E>,
{
    Ok(audit::audited(
        &state.db,
        admin.user_id.clone(),
        action,
        state.clock.now_naive(),
        change,
    )
    .await?)
}

/// An audited change to one client, after which the in-memory registry is reloaded at once.
async fn change_client<T, F>(
    state: &AppState,
    admin: &Admin,
    action: &'static str,
    change: F,
) -> Result<T, AdminError>
where
    F: FnOnce(&mut DbConn) -> Result<audit::Change<T>, ClientError> + Send + 'static,
    T: Send + 'static,
{
    let value = audited(state, admin, action, change).await?;
    state.clients.reload(&state.db).await?;
    Ok(value)
}

/// `POST /admin/clients` body.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateClient {
    client_id: String,
    #[serde(default)]
    public: bool,
    #[serde(default)]
    redirect_uris: Vec<String>,
    #[serde(default)]
    grant_types: Vec<String>,
    #[serde(default)]
    scopes: Vec<String>,
    #[serde(default)]
    audiences: Vec<String>,
    #[serde(default)]
    access_token_alg: Option<String>,
    /// `RS256` (default), `ES256` or `none`: unsigned ID tokens (OIDC Registration §2 allows
    /// them for clients that get no ID token from the authorization endpoint: every client here,
    /// `code` being the only response type; see [`IdTokenAlg`]).
    #[serde(default)]
    id_token_alg: Option<String>,
    /// `RS256` or `ES256`: userinfo answers this client with a signed JWT (OIDC Core §5.3.2);
    /// absent: plain JSON.
    #[serde(default)]
    userinfo_signed_response_alg: Option<String>,
    #[serde(default)]
    first_party: bool,
    #[serde(default)]
    post_logout_redirect_uris: Vec<String>,
    #[serde(default)]
    introspection_audiences: Vec<String>,
    /// `required` (default), `pkce_or_nonce` or `optional`.
    #[serde(default)]
    pkce: Option<String>,
    /// Web origins (`scheme://host[:port]`) its browser code calls from, besides its redirect
    /// URIs' origins (CORS).
    #[serde(default)]
    web_origins: Vec<String>,
    /// `off` (default: the deployment's policy), `optional` or `required`.
    #[serde(default)]
    second_factor: Option<String>,
    /// `none`, `client_secret_basic` (default for confidential clients), `client_secret_post`
    /// (the same) or `private_key_jwt` (RFC 7591 §2).
    #[serde(default)]
    token_endpoint_auth_method: Option<String>,
    /// The client's public keys, a JSON Web Key Set (`private_key_jwt`).
    #[serde(default)]
    jwks: Option<serde_json::Value>,
    /// Or the https URL of its JSON Web Key Set (`private_key_jwt`; not with `jwks`).
    #[serde(default)]
    jwks_uri: Option<String>,
    /// The audiences it may ask for by token exchange (RFC 8693), the first its default
    /// (confidential clients allowed `urn:ietf:params:oauth:grant-type:token-exchange`).
    #[serde(default)]
    token_exchange_audiences: Vec<String>,
    /// The URLs it may pass as `request_uri` (OIDC Core §6.2), https, fragments kept.
    #[serde(default)]
    request_uris: Vec<String>,
    /// `RS256`, `PS256`, `ES256` (with its keys) or `none`: the algorithm of its request objects.
    #[serde(default)]
    request_object_signing_alg: Option<String>,
    /// `public` (default) or `pairwise` subject identifiers (OIDC Core §8).
    #[serde(default)]
    subject_type: Option<String>,
    /// Pairwise: an https URL of a JSON array listing every redirect URI (fetched SSRF-safely);
    /// its host is the sector. Absent: the one host of the redirect URIs.
    #[serde(default)]
    sector_identifier_uri: Option<String>,
}

/// A second-factor policy of a request body: `off`, `optional` or `required`.
fn second_factor_policy(text: Option<&str>) -> Result<SecondFactorPolicy, AdminError> {
    match text {
        None => Ok(SecondFactorPolicy::Off),
        Some(text) => SecondFactorPolicy::parse(text).ok_or_else(|| {
            AdminError::InvalidRequest("second_factor is off, optional or required".into())
        }),
    }
}

/// `GET /admin/clients`: every client (no secrets).
pub async fn list_clients(
    state: web::Data<AppState>,
    _admin: Admin,
) -> Result<HttpResponse, AdminError> {
    let clients = state.db.run(oidc_clients::list).await?;
    Ok(ok(StatusCode::OK, &json!({ "clients": clients })))
}

/// `POST /admin/clients`: registers a client; the answer holds its secret, shown once.
pub async fn create_client(
    state: web::Data<AppState>,
    admin: Admin,
    body: Json<CreateClient>,
) -> Result<HttpResponse, AdminError> {
    let body = body.0;
    let alg = |text: Option<String>, default: SigningAlg| match text {
        None => Ok(default),
        Some(text) => SigningAlg::parse(&text)
            .ok_or_else(|| AdminError::InvalidRequest("algorithms are ES256 or RS256".into())),
    };
    let grant_types = body
        .grant_types
        .iter()
        .map(|g| {
            GrantType::parse(g)
                .ok_or_else(|| AdminError::InvalidRequest(format!("unknown grant type {g}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let pkce = match body.pkce.as_deref() {
        None => PkcePolicy::Required,
        Some(text) => PkcePolicy::parse(text).ok_or_else(|| {
            AdminError::InvalidRequest("pkce is required, pkce_or_nonce or optional".into())
        })?,
    };
    let token_endpoint_auth_method = body
        .token_endpoint_auth_method
        .as_deref()
        .map(|text| {
            AuthMethod::parse(text).ok_or_else(|| {
                AdminError::InvalidRequest(
                    "token_endpoint_auth_method is none, client_secret_basic, client_secret_post or private_key_jwt".into(),
                )
            })
        })
        .transpose()?;
    let subject_type = subjects::checked_subject_type(
        &state.outbound,
        body.subject_type.as_deref(),
        body.sector_identifier_uri.as_deref(),
        &body.redirect_uris,
        &body.client_id,
    )
    .await
    .map_err(AdminError::InvalidRequest)?;
    let new = NewClient {
        client_id: body.client_id,
        public: body.public,
        redirect_uris: body.redirect_uris,
        grant_types,
        scopes: body.scopes,
        audiences: body.audiences,
        access_token_alg: alg(body.access_token_alg, SigningAlg::Es256)?,
        id_token_alg: match body.id_token_alg.as_deref() {
            None => IdTokenAlg::default(),
            Some(text) => IdTokenAlg::parse(text).ok_or_else(|| {
                AdminError::InvalidRequest("id_token_alg is RS256, ES256 or none".into())
            })?,
        },
        userinfo_signed_response_alg: body
            .userinfo_signed_response_alg
            .map(|text| {
                SigningAlg::parse(&text).ok_or_else(|| {
                    AdminError::InvalidRequest(
                        "userinfo_signed_response_alg is RS256 or ES256 (absent: plain JSON)"
                            .into(),
                    )
                })
            })
            .transpose()?,
        first_party: body.first_party,
        post_logout_redirect_uris: body.post_logout_redirect_uris,
        introspection_audiences: body.introspection_audiences,
        pkce,
        web_origins: body.web_origins,
        second_factor: second_factor_policy(body.second_factor.as_deref())?,
        token_endpoint_auth_method,
        jwks: body.jwks,
        jwks_uri: body.jwks_uri,
        token_exchange_audiences: body.token_exchange_audiences,
        request_uris: body.request_uris,
        request_object_signing_alg: body
            .request_object_signing_alg
            .as_deref()
            .map(|text| {
                RequestObjectAlg::parse(text).ok_or_else(|| {
                    AdminError::InvalidRequest(
                        "request_object_signing_alg is none, RS256, PS256 or ES256".into(),
                    )
                })
            })
            .transpose()?,
        subject_type,
    };
    let (issuer, now) = (state.issuer.to_string(), state.clock.now_naive());
    let registered = change_client(&state, &admin, "client_created", move |conn| {
        oidc_clients::create(conn, new, &issuer, now)
    })
    .await?;
    Ok(ok(StatusCode::CREATED, &registered))
}

/// `POST /admin/initial-access-tokens` body.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssueInitialToken {
    /// What it is for (shown in the list).
    #[serde(default)]
    description: String,
    /// Seconds until it expires; default one day.
    #[serde(default)]
    expires_in: Option<u64>,
    /// Registrations it allows; default no limit until it expires.
    #[serde(default)]
    max_uses: Option<i32>,
}

/// `POST /admin/initial-access-tokens`: issues an initial access token for dynamic client
/// registration (RFC 7591 §3); the answer holds the token, shown once (201).
pub async fn issue_initial_token(
    state: web::Data<AppState>,
    admin: Admin,
    body: Json<IssueInitialToken>,
) -> Result<HttpResponse, AdminError> {
    let body = body.0;
    let new = registration::NewInitialToken {
        description: body.description,
        ttl: std::time::Duration::from_secs(body.expires_in.unwrap_or(86_400)),
        max_uses: body.max_uses,
    };
    let (actor, now) = (admin.user_id.clone(), state.clock.now_naive());
    let issued = audited(&state, &admin, "initial_access_token_issued", move |conn| {
        registration::issue_initial_token(conn, &actor, new, now)
    })
    .await?;
    Ok(ok(StatusCode::CREATED, &issued))
}

/// `GET /admin/initial-access-tokens`: every initial access token (never the token), newest
/// first, with its state.
pub async fn list_initial_tokens(
    state: web::Data<AppState>,
    _admin: Admin,
) -> Result<HttpResponse, AdminError> {
    let now = state.clock.now_naive();
    let tokens = state
        .db
        .run(move |conn| registration::list_initial_tokens(conn, now))
        .await?;
    Ok(ok(
        StatusCode::OK,
        &json!({ "initial_access_tokens": tokens }),
    ))
}

/// `DELETE /admin/initial-access-tokens/{id}`: revokes it (clients registered with it stay).
pub async fn revoke_initial_token(
    state: web::Data<AppState>,
    admin: Admin,
    id: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    let (id, now) = (id.into_inner(), state.clock.now_naive());
    let view = audited(
        &state,
        &admin,
        "initial_access_token_revoked",
        move |conn| registration::revoke_initial_token(conn, &id, now),
    )
    .await?;
    Ok(ok(StatusCode::OK, &view))
}

/// `PUT /admin/clients/{client_id}/redirect-uris` body.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedirectUris {
    redirect_uris: Vec<String>,
}

/// `PUT /admin/clients/{client_id}/redirect-uris`: replaces the redirect URIs.
pub async fn update_redirect_uris(
    state: web::Data<AppState>,
    admin: Admin,
    client_id: web::Path<String>,
    body: Json<RedirectUris>,
) -> Result<HttpResponse, AdminError> {
    let uris = body.0.redirect_uris;
    let (id, now) = (client_id.into_inner(), state.clock.now_naive());
    let client = change_client(
        &state,
        &admin,
        "client_redirect_uris_changed",
        move |conn| oidc_clients::set_redirect_uris(conn, &id, &uris, now),
    )
    .await?;
    Ok(ok(StatusCode::OK, &client))
}

/// `PUT /admin/clients/{client_id}/web-origins` body.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebOrigins {
    web_origins: Vec<String>,
}

/// `PUT /admin/clients/{client_id}/web-origins`: replaces the explicitly registered web origins
/// (each `scheme://host[:port]`; 400 `invalid_request` naming a bad one); the client's redirect
/// URIs' origins stay allowed.
pub async fn update_web_origins(
    state: web::Data<AppState>,
    admin: Admin,
    client_id: web::Path<String>,
    body: Json<WebOrigins>,
) -> Result<HttpResponse, AdminError> {
    let origins = body.0.web_origins;
    let (id, now) = (client_id.into_inner(), state.clock.now_naive());
    let client = change_client(&state, &admin, "client_web_origins_changed", move |conn| {
        oidc_clients::set_web_origins(conn, &id, &origins, now)
    })
    .await?;
    Ok(ok(StatusCode::OK, &client))
}

/// `PUT /admin/clients/{client_id}/token-exchange-audiences` body.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenExchangeAudiences {
    token_exchange_audiences: Vec<String>,
}

/// `PUT /admin/clients/{client_id}/token-exchange-audiences`: replaces the audiences the client
/// may ask for by token exchange (RFC 8693; the first is the default), audited. 400
/// `invalid_request` for a client without the token-exchange grant, an empty list or a bad
/// audience; 404 for an unknown client.
pub async fn update_token_exchange_audiences(
    state: web::Data<AppState>,
    admin: Admin,
    client_id: web::Path<String>,
    body: Json<TokenExchangeAudiences>,
) -> Result<HttpResponse, AdminError> {
    let audiences = body.0.token_exchange_audiences;
    let (id, now) = (client_id.into_inner(), state.clock.now_naive());
    let client = change_client(
        &state,
        &admin,
        "client_token_exchange_audiences_changed",
        move |conn| oidc_clients::set_token_exchange_audiences(conn, &id, &audiences, now),
    )
    .await?;
    Ok(ok(StatusCode::OK, &client))
}

/// `PUT /admin/clients/{client_id}/second-factor` body.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientSecondFactor {
    second_factor: String,
}

/// `PUT /admin/clients/{client_id}/second-factor`: sets the client's second-factor policy
/// (`off`: the deployment's; `optional`; `required`), audited.
pub async fn update_second_factor(
    state: web::Data<AppState>,
    admin: Admin,
    client_id: web::Path<String>,
    body: Json<ClientSecondFactor>,
) -> Result<HttpResponse, AdminError> {
    let policy = second_factor_policy(Some(&body.0.second_factor))?;
    let (id, now) = (client_id.into_inner(), state.clock.now_naive());
    let client = change_client(
        &state,
        &admin,
        "client_second_factor_changed",
        move |conn| oidc_clients::set_second_factor(conn, &id, policy, now),
    )
    .await?;
    Ok(ok(StatusCode::OK, &client))
}

/// `PUT /admin/clients/{client_id}/jwks` body: `jwks` or `jwks_uri`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Jwks {
    #[serde(default)]
    jwks: Option<serde_json::Value>,
    #[serde(default)]
    jwks_uri: Option<String>,
}

/// `PUT /admin/clients/{client_id}/jwks`: replaces a confidential client's public keys (a JSON
/// Web Key Set, `jwks`, or its https URL, `jwks_uri`: exactly one); it then authenticates with
/// `private_key_jwt` only (RFC 7523 §2.2) and a secret it had stops working. 400
/// `invalid_request` naming a refused key or URL; 404 for no such client.
pub async fn update_jwks(
    state: web::Data<AppState>,
    admin: Admin,
    client_id: web::Path<String>,
    body: Json<Jwks>,
) -> Result<HttpResponse, AdminError> {
    let source = match (body.0.jwks, body.0.jwks_uri) {
        (Some(jwks), None) => oidc_clients::KeySource::Jwks(jwks),
        (None, Some(uri)) => oidc_clients::KeySource::JwksUri(uri),
        _ => {
            return Err(AdminError::InvalidRequest(
                "give jwks or jwks_uri (exactly one)".into(),
            ));
        }
    };
    let (id, now) = (client_id.into_inner(), state.clock.now_naive());
    let client = change_client(&state, &admin, "client_jwks_changed", move |conn| {
        oidc_clients::set_keys(conn, &id, &source, now)
    })
    .await?;
    Ok(ok(StatusCode::OK, &client))
}

/// `POST /admin/clients/{client_id}/rotate-secret`: a new secret, shown once.
pub async fn rotate_client_secret(
    state: web::Data<AppState>,
    admin: Admin,
    client_id: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    let (id, now) = (client_id.into_inner(), state.clock.now_naive());
    let registered = change_client(&state, &admin, "client_secret_rotated", move |conn| {
        oidc_clients::rotate_secret(conn, &id, now)
    })
    .await?;
    Ok(ok(StatusCode::OK, &registered))
}

/// `DELETE /admin/clients/{client_id}`: deletes the client; its refresh tokens stop working.
pub async fn delete_client(
    state: web::Data<AppState>,
    admin: Admin,
    client_id: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    let (id, now) = (client_id.into_inner(), state.clock.now_naive());
    change_client(&state, &admin, "client_deleted", move |conn| {
        oidc_clients::delete(conn, &id, now)
    })
    .await?;
    Ok(HttpResponse::NoContent()
        .insert_header(("Cache-Control", "no-store"))
        .finish())
}

/// An audited change to one API, after which the in-memory registry is reloaded at once.
async fn change_api<T, F>(
    state: &AppState,
    admin: &Admin,
    action: &'static str,
    change: F,
) -> Result<T, AdminError>
where
    F: FnOnce(&mut DbConn) -> Result<audit::Change<T>, ApisError> + Send + 'static,
    T: Send + 'static,
{
    let value = audited(state, admin, action, change).await?;
    state.apis.reload(&state.db).await?;
    Ok(value)
}

/// `POST /admin/apis` body.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateApi {
    identifier: String,
    name: String,
    #[serde(default)]
    scopes: Vec<ApiScope>,
}

/// `PATCH /admin/apis/{id}` body: what is present is replaced (`scopes`: the whole set).
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateApi {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    scopes: Option<Vec<ApiScope>>,
}

/// `GET /admin/apis`: every API with its scopes.
pub async fn list_apis(
    state: web::Data<AppState>,
    _admin: Admin,
) -> Result<HttpResponse, AdminError> {
    let apis = state.db.run(oidc_apis::list).await?;
    Ok(ok(StatusCode::OK, &json!({ "apis": apis })))
}

/// `POST /admin/apis`: registers an API (resource server) and its scopes.
pub async fn create_api(
    state: web::Data<AppState>,
    admin: Admin,
    body: Json<CreateApi>,
) -> Result<HttpResponse, AdminError> {
    let body = body.0;
    let new = NewApi {
        identifier: body.identifier,
        name: body.name,
        scopes: body.scopes,
    };
    let (issuer, now) = (state.issuer.to_string(), state.clock.now_naive());
    let api = change_api(&state, &admin, "api_created", move |conn| {
        oidc_apis::create(conn, new, &issuer, now)
    })
    .await?;
    Ok(ok(StatusCode::CREATED, &api))
}

/// `GET /admin/apis/{id}`: one API (by id or identifier).
pub async fn get_api(
    state: web::Data<AppState>,
    _admin: Admin,
    id: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    let id = id.into_inner();
    let api = state.db.run(move |conn| oidc_apis::find(conn, &id)).await?;
    Ok(ok(StatusCode::OK, &api))
}

/// `PATCH /admin/apis/{id}`: renames an API or replaces its scopes.
pub async fn update_api(
    state: web::Data<AppState>,
    admin: Admin,
    id: web::Path<String>,
    body: Json<UpdateApi>,
) -> Result<HttpResponse, AdminError> {
    let body = body.0;
    let update = ApiUpdate {
        name: body.name,
        replace_scopes: body.scopes,
        ..ApiUpdate::default()
    };
    let (id, now) = (id.into_inner(), state.clock.now_naive());
    let api = change_api(&state, &admin, "api_changed", move |conn| {
        oidc_apis::update(conn, &id, update, now)
    })
    .await?;
    Ok(ok(StatusCode::OK, &api))
}

/// `DELETE /admin/apis/{id}`: deletes an API no client is allowed a scope of.
pub async fn delete_api(
    state: web::Data<AppState>,
    admin: Admin,
    id: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    let id = id.into_inner();
    change_api(&state, &admin, "api_deleted", move |conn| {
        oidc_apis::delete(conn, &id)
    })
    .await?;
    Ok(HttpResponse::NoContent()
        .insert_header(("Cache-Control", "no-store"))
        .finish())
}

/// `GET /admin/users`: every user (no password hashes).
pub async fn list_users(
    state: web::Data<AppState>,
    _admin: Admin,
) -> Result<HttpResponse, AdminError> {
    let users = state.db.run(users::list).await?;
    Ok(ok(StatusCode::OK, &json!({ "users": users })))
}

/// `PATCH /admin/users/{user}` with a JSON object of claims (and `email`): changes them
/// ([`users::update_claims`] as an administrator: the `*_verified` flags too); the user.
pub async fn update_user(
    state: web::Data<AppState>,
    admin: Admin,
    user: web::Path<String>,
    Json(patch): Json<serde_json::Map<String, serde_json::Value>>,
) -> Result<HttpResponse, AdminError> {
    let who = user.into_inner();
    let now = state.clock.now_naive();
    let view = audited(&state, &admin, "user_updated", move |conn| {
        users::update_claims(
            conn,
            &who,
            &patch,
            crate::accounts::profile::Editor::Admin,
            now,
        )
    })
    .await?;
    Ok(ok(StatusCode::OK, &view))
}

/// `POST /admin/users/{user}/disable`: disables the user and ends every session and grant.
pub async fn disable_user(
    state: web::Data<AppState>,
    admin: Admin,
    user: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    let who = user.into_inner();
    let actor = admin.user_id.clone();
    let now = state.clock.now_naive();
    let view = audited(&state, &admin, "user_disabled", move |conn| {
        users::disable(conn, &who, &actor, now)
    })
    .await?;
    Ok(ok(StatusCode::OK, &view))
}

/// `POST /admin/users/{user}/revoke-sessions`: ends every session and grant of the user.
pub async fn revoke_user_sessions(
    state: web::Data<AppState>,
    admin: Admin,
    user: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    let who = user.into_inner();
    let actor = admin.user_id.clone();
    let now = state.clock.now_naive();
    let revoked = audited(&state, &admin, "user_sessions_revoked", move |conn| {
        let id = users::get(conn, &who)?.id;
        let revoked =
            crate::accounts::sessions::revoke_all(conn, &id, "admin_revoked", &actor, now)?;
        Ok::<_, AccountError>(audit::Change::made(
            revoked,
            id,
            json!({ "revoked_families": revoked }),
        ))
    })
    .await?;
    Ok(ok(StatusCode::OK, &json!({ "revoked_families": revoked })))
}

/// `POST /admin/users/{user}/reset-second-factors`: removes every second factor of the user
/// (TOTP, recovery codes), audited (`second_factors_reset`); for a user who lost their device.
/// Sessions are left alone (revoke them too with `revoke-sessions` if the account may be taken
/// over). `{"removed_factors": n}`.
pub async fn reset_second_factors(
    state: web::Data<AppState>,
    admin: Admin,
    user: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    let who = user.into_inner();
    let removed = audited(&state, &admin, "second_factors_reset", move |conn| {
        let id = users::get(conn, &who)?.id;
        let removed = crate::accounts::factors::reset(conn, &id)?;
        Ok::<_, AccountError>(audit::Change::made(
            removed,
            id,
            json!({ "removed_factors": removed }),
        ))
    })
    .await?;
    Ok(ok(StatusCode::OK, &json!({ "removed_factors": removed })))
}

/// `GET /admin/audit?limit=&before=`: audit events, newest first (`before`: RFC 3339, for the
/// next page; `limit`: 1–500, default 100).
pub async fn audit_events(
    state: web::Data<AppState>,
    _admin: Admin,
    request: HttpRequest,
) -> Result<HttpResponse, AdminError> {
    let mut limit = 100i64;
    let mut before = None;
    for (name, value) in url::form_urlencoded::parse(request.query_string().as_bytes()) {
        match name.as_ref() {
            "limit" => {
                limit = value
                    .parse::<i64>()
                    .ok()
                    .filter(|l| (1..=500).contains(l))
                    .ok_or_else(|| AdminError::InvalidRequest("limit must be 1 to 500".into()))?;
            }
            "before" => {
                before = Some(
                    chrono::DateTime::parse_from_rfc3339(&value)
                        .map_err(|_| {
                            AdminError::InvalidRequest("before must be an RFC 3339 time".into())
                        })?
                        .naive_utc(),
                );
            }
            _ => {
                return Err(AdminError::InvalidRequest(format!(
                    "unknown parameter {}",
                    name.chars().take(64).collect::<String>()
                )));
            }
        }
    }
    let events = audit::page(&state.db, before, limit).await?;
    let next = events
        .last()
        .filter(|_| events.len() == usize::try_from(limit).unwrap_or(usize::MAX))
        .map(|e| e.occurred_at.and_utc().to_rfc3339());
    Ok(ok(
        StatusCode::OK,
        &json!({ "events": events, "next_before": next }),
    ))
}

/// `GET /admin/users/{user}/families`: the user's live refresh families (grants).
pub async fn list_families(
    state: web::Data<AppState>,
    _admin: Admin,
    user: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    let families = user_grants::live(&state.db, user.into_inner(), state.clock.now_naive()).await?;
    let families: Vec<serde_json::Value> = families
        .iter()
        .map(|f| {
            json!({
                "id": f.id,
                "client_id": f.client_id,
                "scope": f.scope,
                "created_at": f.created_at.and_utc().to_rfc3339(),
                "expires_at": f.expires_at.and_utc().to_rfc3339(),
                "auth_time": f.auth_time.map(|t| t.and_utc().to_rfc3339()),
            })
        })
        .collect();
    Ok(ok(StatusCode::OK, &json!({ "families": families })))
}

/// `POST /admin/families/{id}/revoke`: ends one grant (its refresh and access tokens).
pub async fn revoke_family(
    state: web::Data<AppState>,
    admin: Admin,
    family: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    let (id, now) = (family.into_inner(), state.clock.now_naive());
    audited(&state, &admin, "family_revoked", move |conn| {
        user_grants::revoke(conn, id, now)
    })
    .await?;
    Ok(ok(StatusCode::OK, &json!({ "revoked": true })))
}

/// `POST|DELETE /admin/users/{user}/roles/{role}`: grants or withdraws a role.
pub async fn change_role(
    state: web::Data<AppState>,
    admin: Admin,
    path: web::Path<(String, String)>,
    request: HttpRequest,
) -> Result<HttpResponse, AdminError> {
    let (who, role) = path.into_inner();
    let role = crate::accounts::Role::parse(&role)
        .map_err(|e| AdminError::InvalidRequest(e.to_string()))?;
    let grant = request.method() == actix_web::http::Method::POST;
    let action = if grant {
        "role_granted"
    } else {
        "role_withdrawn"
    };
    let now = state.clock.now_naive();
    let view = audited(&state, &admin, action, move |conn| {
        if grant {
            users::add_role(conn, &who, &role, now)
        } else {
            users::remove_role(conn, &who, &role, now)
        }
    })
    .await?;
    Ok(ok(StatusCode::OK, &view))
}

/// `GET /admin/users/{user}/consents`: the consents the user gave (`{"consents": [{"client_id",
/// "scopes", "created_at", "updated_at"}]}`), most recently approved first. 404 for an unknown
/// user.
pub async fn list_consents(
    state: web::Data<AppState>,
    _admin: Admin,
    user: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    let consents = consent::list_of(&state.db, user.into_inner()).await?;
    Ok(ok(StatusCode::OK, &json!({ "consents": consents })))
}

/// `DELETE /admin/users/{user}/consents/{client_id}`: withdraws the user's consent to the
/// client and ends the client's grants for the user, audited (`consent_revoked`). Answers what
/// ended; 404 for an unknown user or when the user gave that client no consent.
pub async fn revoke_consent(
    state: web::Data<AppState>,
    admin: Admin,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AdminError> {
    let (who, client_id) = path.into_inner();
    let now = state.clock.now_naive();
    let revoked = audited(&state, &admin, "consent_revoked", move |conn| {
        consent::revoke_of(conn, &who, &client_id, now)
    })
    .await?;
    Ok(ok(StatusCode::OK, &revoked))
}
