//! The first-party JSON API: `/api/auth/{register,login,refresh,logout,logout-all}`, `/api/me`,
//! `/api/me/consents[/{client_id}]`.

use std::net::IpAddr;

use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieDuration};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use super::json::{Json, OptionalJson};
use crate::accounts::factors::{self, SecondStep};
use crate::accounts::profile::Editor;
use crate::accounts::registration;
use crate::accounts::sessions;
use crate::accounts::users::{self, NewUser};
use crate::accounts::{Email, Password, Username};
use crate::http::bearer::UserBearer;
use crate::http::error::ApiError;
use crate::oidc::consent;
use crate::oidc::tokens::{Issued, SignIn};
use crate::secrets::{DeviceSecret, FactorChallenge, RefreshToken};
use crate::state::AppState;
use crate::verify::actix::BearerError;

/// The refresh-token cookie; `Path={issuer path}/api/auth` so refresh and logout both receive it.
const REFRESH_COOKIE: &str = "portcullis_refresh";
/// The device cookie of the JSON API's login (LOGIN-09): a device that signed in before keeps a
/// login budget of its own. Sent only to the login endpoint.
const DEVICE_COOKIE: &str = "portcullis_device";

/// `POST /api/auth/register` body.
#[derive(Deserialize)]
pub struct RegisterRequest {
    username: String,
    email: String,
    password: String,
}

/// `POST /api/auth/login` body: `username` may also be the email.
#[derive(Deserialize)]
pub struct LoginRequest {
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    email: Option<String>,
    password: String,
}

/// `POST /api/auth/refresh` and `/logout` body (optional: the cookie may carry the token).
#[derive(Deserialize, Default)]
pub struct RefreshRequest {
    #[serde(default)]
    refresh_token: Option<String>,
}

pub(super) fn no_store(status: StatusCode) -> actix_web::HttpResponseBuilder {
    let mut builder = HttpResponse::build(status);
    builder
        .insert_header(("Cache-Control", "no-store"))
        .insert_header(("Pragma", "no-cache"));
    builder
}

/// A cookie of the JSON API: `HttpOnly`, `SameSite=Strict`, at `path` under the issuer's path
/// (where the JSON API lives), `Secure` on an https issuer (browsers refuse it over plain http:
/// loopback development, or an issuer accepted with PORTCULLIS_INSECURE_HTTP_ISSUER).
fn api_cookie<'c>(
    state: &AppState,
    name: &'static str,
    path: &str,
    value: String,
    max_age: CookieDuration,
) -> Cookie<'c> {
    Cookie::build(name, value)
        .path(format!("{}{path}", state.issuer.path()))
        .http_only(true)
        .secure(state.issuer.is_https())
        .same_site(SameSite::Strict)
        .max_age(max_age)
        .finish()
}

fn refresh_cookie<'c>(state: &AppState, value: String, max_age: CookieDuration) -> Cookie<'c> {
    api_cookie(state, REFRESH_COOKIE, "/api/auth", value, max_age)
}

fn issued_response(state: &AppState, issued: Issued) -> HttpResponse {
    let max_age = CookieDuration::seconds(
        i64::try_from(state.token_settings.refresh_absolute_ttl.as_secs()).unwrap_or(i64::MAX),
    );
    let mut response = no_store(StatusCode::OK);
    response.cookie(refresh_cookie(
        state,
        issued.refresh_token.expose().to_owned(),
        max_age,
    ));
    if let Some(device) = issued.new_device.map(DeviceSecret::into_exposed) {
        let trust = i64::try_from(sessions::DEVICE_TRUST.as_secs()).unwrap_or(i64::MAX);
        response.cookie(api_cookie(
            state,
            DEVICE_COOKIE,
            "/api/auth/login",
            device,
            CookieDuration::seconds(trust),
        ));
    }
    response.json(json!({
        "access_token": issued.access_token,
        "token_type": "Bearer",
        "expires_in": issued.expires_in,
        "refresh_token": issued.refresh_token.expose(),
    }))
}

fn cleared_cookie_response(state: &AppState) -> HttpResponse {
    no_store(StatusCode::NO_CONTENT)
        .cookie(refresh_cookie(state, String::new(), CookieDuration::ZERO))
        .finish()
}

/// The client address: the peer, or the last untrusted `X-Forwarded-For` hop when the peer is a
/// configured proxy.
/// The client's address: the peer, or the nearest untrusted hop of `X-Forwarded-For` when the
/// peer is a configured proxy.
pub fn client_ip(state: &AppState, request: &HttpRequest) -> IpAddr {
    let peer = request
        .peer_addr()
        .map_or(IpAddr::from([0, 0, 0, 0]), |addr| addr.ip());
    let trusted = &state.http_settings.trusted_proxies;
    if !trusted.contains(&peer) {
        return peer;
    }
    request
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|hop| hop.trim().parse::<IpAddr>().ok())
        .rev()
        .find(|hop| !trusted.contains(hop))
        .unwrap_or(peer)
}

/// The refresh token from the body, else the cookie.
fn presented_token(
    request: &HttpRequest,
    body: Option<RefreshRequest>,
) -> Result<RefreshToken, ApiError> {
    body.and_then(|b| b.refresh_token)
        .or_else(|| request.cookie(REFRESH_COOKIE).map(|c| c.value().to_owned()))
        .filter(|t| !t.is_empty() && t.len() <= 512)
        .map(RefreshToken::presented)
        .ok_or_else(|| ApiError::InvalidRequest("refresh_token: missing (body or cookie)".into()))
}

/// `POST /api/auth/register` → 201 with the user. The password must pass the policy
/// ([`Password::parse`]: length, NFKC, not a common password) and not be the account's own name;
/// then the attempt is counted against the client's registration budget before any hashing.
pub async fn register(
    state: web::Data<AppState>,
    request: HttpRequest,
    Json(body): Json<RegisterRequest>,
) -> Result<HttpResponse, ApiError> {
    if !state.account_settings.open_registration {
        return Err(ApiError::RegistrationClosed);
    }
    let invalid = |e: crate::accounts::names::InvalidField| ApiError::InvalidRequest(e.to_string());
    let username = Username::parse(&body.username).map_err(invalid)?;
    let email = Email::parse(&body.email).map_err(invalid)?;
    let password = Password::parse(body.password).map_err(invalid)?;
    password
        .check_not_account_name(&username, &email)
        .map_err(invalid)?;
    throttle_registration(&state, client_ip(&state, &request)).await?;
    let new = NewUser {
        username,
        email,
        password,
        roles: Vec::new(),
    };
    let user = users::create(&state.db, &state.hasher, &state.clock, new).await?;
    // The address is unverified until the link mailed to it is confirmed. The account exists
    // either way: a link that could not be queued is logged, and the user asks again
    // (`POST /api/me/email/verification`).
    if let Err(error) = state.mail_links.send_verification(user.id.clone()).await {
        tracing::warn!(%error, user_id = %user.id, "the verification link could not be queued");
    }
    Ok(no_store(StatusCode::CREATED).json(user))
}

/// DOS-07/DOS-12: counts a registration against the client's budget
/// ([`registration::spend`]) before it costs a hash; requests refused as invalid are not counted.
async fn throttle_registration(state: &AppState, ip: IpAddr) -> Result<(), ApiError> {
    let now = state.clock.now_naive();
    let retry_after = registration::spend(&state.db, &state.account_settings, ip, now).await?;
    match retry_after {
        Some(seconds) => {
            tracing::warn!(%ip, "registration throttled");
            Err(ApiError::TooManyRequests(seconds))
        }
        None => Ok(()),
    }
}

/// `POST /api/auth/login` → tokens, and the refresh token as a cookie.
pub async fn login(
    state: web::Data<AppState>,
    request: HttpRequest,
    Json(body): Json<LoginRequest>,
) -> Result<HttpResponse, ApiError> {
    let login = body
        .username
        .or(body.email)
        .filter(|l| !l.is_empty() && l.len() <= 254)
        .ok_or_else(|| ApiError::InvalidRequest("username: missing".into()))?;
    // Refused before hashing: Argon2 of a megabyte is a denial of service.
    if body.password.len() > crate::accounts::names::MAX_PASSWORD_BYTES {
        return Err(ApiError::InvalidCredentials);
    }
    let ip = client_ip(&state, &request);
    let device = request.cookie(DEVICE_COOKIE).map(|c| c.value().to_owned());
    let authenticated = state
        .authenticator
        .authenticate(login, body.password.into_bytes(), ip, device)
        .await?;
    // The second factor (issue 17): the deployment's policy and whether the user has one. A
    // login that owes one gets a challenge, never tokens.
    let enrolled = state.factors.status(authenticated.user.id.clone()).await?;
    let has_factor = enrolled.totp || enrolled.passkeys > 0;
    // A passkey is checked by a WebAuthn ceremony in a browser (origin-bound): this API cannot
    // take one. It says so, rather than issuing tokens without the factor.
    let hosted_only: Vec<&str> = if enrolled.passkeys > 0 {
        vec!["passkey"]
    } else {
        Vec::new()
    };
    match factors::second_step(state.account_settings.second_factor, false, has_factor) {
        SecondStep::None => {}
        SecondStep::Enrol => return Err(ApiError::SecondFactorEnrolmentRequired),
        SecondStep::Verify if !enrolled.totp => {
            tracing::info!(user_id = %authenticated.user.id, %ip, "login owes a passkey: only the hosted login can take it");
            return Ok(no_store(StatusCode::UNAUTHORIZED).json(json!({
                "error": "second_factor_required",
                "error_description": "The password is correct, but this account's second factor is a passkey, which only the hosted login (/authorize) can check.",
                "methods": [],
                "hosted_only": hosted_only,
            })));
        }
        SecondStep::Verify => {
            let user_id = authenticated.user.id.clone();
            let device = authenticated.new_device_secret();
            let challenge = state
                .factors
                .start_challenge(user_id.clone(), move |conn| authenticated.forgive(conn))
                .await?;
            tracing::info!(%user_id, %ip, "login owes a second factor: challenge issued");
            let mut response = no_store(StatusCode::UNAUTHORIZED);
            if let Some(device) = device.map(DeviceSecret::into_exposed) {
                let trust = i64::try_from(sessions::DEVICE_TRUST.as_secs()).unwrap_or(i64::MAX);
                response.cookie(api_cookie(
                    &state,
                    DEVICE_COOKIE,
                    "/api/auth/login",
                    device,
                    CookieDuration::seconds(trust),
                ));
            }
            return Ok(response.json(json!({
                "error": "second_factor_required",
                "error_description": "The password is correct; send a code from the authenticator app (or a recovery code) with this challenge to /api/auth/login/second-factor.",
                "challenge": challenge.expose(),
                "methods": ["totp", "recovery_code"],
                "hosted_only": hosted_only,
                "expires_in": factors::CHALLENGE_TTL.num_seconds(),
            })));
        }
    }
    let issued = state
        .tokens
        .login(SignIn::Password(Box::new(authenticated)), ip)
        .await?;
    Ok(issued_response(&state, issued))
}

/// `POST /api/auth/login/second-factor` body.
#[derive(Deserialize)]
pub struct SecondFactorRequest {
    challenge: String,
    code: String,
}

/// `POST /api/auth/login/second-factor` with `{challenge, code}` → tokens, as a login: the
/// challenge a login answered (single use, 5 minutes) and a TOTP code (each accepted once) or a
/// recovery code (single use). Throttled like logins; `401 invalid_code` for a wrong or used
/// code or an unknown, used or expired challenge (a wrong code leaves the challenge usable
/// until it expires).
pub async fn login_second_factor(
    state: web::Data<AppState>,
    request: HttpRequest,
    Json(body): Json<SecondFactorRequest>,
) -> Result<HttpResponse, ApiError> {
    if body.challenge.is_empty() || body.challenge.len() > 128 || body.code.len() > 64 {
        return Err(ApiError::InvalidCode);
    }
    let ip = client_ip(&state, &request);
    let challenge = FactorChallenge::presented(body.challenge);
    let (user_id, _) = state
        .factors
        .check_challenge(&challenge, &body.code, ip)
        .await?;
    let issued = state
        .tokens
        .login(SignIn::SecondFactor { user_id, challenge }, ip)
        .await
        .map_err(|error| match error {
            // The challenge was completed concurrently: one of them gets tokens.
            sessions::AuthError::InvalidGrant => ApiError::InvalidCode,
            other => other.into(),
        })?;
    Ok(issued_response(&state, issued))
}

/// `POST /api/auth/refresh` → a new pair; the presented token is rotated.
pub async fn refresh(
    state: web::Data<AppState>,
    request: HttpRequest,
    OptionalJson(body): OptionalJson<RefreshRequest>,
) -> Result<HttpResponse, ApiError> {
    let token = presented_token(&request, body)?;
    let issued = state.tokens.refresh_first_party(&token).await?;
    Ok(issued_response(&state, issued))
}

/// `POST /api/auth/logout` → 204; the token's family is revoked and the cookie cleared.
pub async fn logout(
    state: web::Data<AppState>,
    request: HttpRequest,
    OptionalJson(body): OptionalJson<RefreshRequest>,
) -> Result<HttpResponse, ApiError> {
    let token = presented_token(&request, body)?;
    sessions::logout(&state.db, state.clock.now_naive(), &token).await?;
    Ok(cleared_cookie_response(&state))
}

/// `POST /api/auth/logout-all` (bearer) → 204; everything of the user is revoked (refresh
/// families, access tokens, browser sessions). The token must still speak for its user.
pub async fn logout_all(
    state: web::Data<AppState>,
    auth: UserBearer,
) -> Result<HttpResponse, ApiError> {
    sessions::logout_all(&state.db, state.clock.now_naive(), auth.current.user.id).await?;
    Ok(cleared_cookie_response(&state))
}

/// `GET /api/me` (bearer) → the user's profile, if the token still speaks for the user (not
/// disabled, not logged out everywhere, password unchanged since). The check already read the
/// user and their roles, so the profile costs no further query.
pub async fn me(state: web::Data<AppState>, auth: UserBearer) -> Result<HttpResponse, ApiError> {
    let current = auth.current;
    let id = current.user.id.clone();
    let claims = state
        .db
        .run(move |conn| users::claims_of(conn, &id))
        .await?;
    Ok(no_store(StatusCode::OK)
        .json(users::UserView::from_row(current.user, current.roles).with_claims(claims)))
}

/// `PATCH /api/me` (bearer) with a JSON object of claims → the user, changed. The user may set
/// every standard claim but `email_verified` and `phone_number_verified`
/// ([`users::update_claims`], [`crate::accounts::profile`] for the rules); `""` or `null`
/// clears a claim. A new `email` does not replace the address yet: a link goes to it, and the
/// answer's `pending_email` names it until the link is confirmed (issue 17: the address changes
/// only once verified). `400 invalid_request` naming the field, `409 user_exists` for an email
/// another account has, `429` over the mail budgets, `403 insufficient_scope` for an
/// application's token (not the account's own login). Nothing is written when a field is
/// refused; audited with the user as actor.
pub async fn update_me(
    state: web::Data<AppState>,
    request: HttpRequest,
    auth: UserBearer,
    Json(mut patch): Json<serde_json::Map<String, serde_json::Value>>,
) -> Result<HttpResponse, actix_web::Error> {
    // Only the account's own login: an application's token, even one for this API's audience,
    // never changes the user's email or claims.
    let id = account_holder(&auth)?;
    let current = auth.current.user.clone();
    // A new address (not the same one in another form, which `update_claims` re-keys) waits
    // for its link; checked before anything is written.
    let new_email = match patch.get("email") {
        Some(serde_json::Value::String(text)) => {
            let email =
                Email::parse(text.trim()).map_err(|e| ApiError::InvalidRequest(e.to_string()))?;
            if email.normalized() == current.email_normalized {
                None
            } else {
                state
                    .mail_links
                    .check_available(id.clone(), &email)
                    .await
                    .map_err(ApiError::from)?;
                Some(email)
            }
        }
        _ => None,
    };
    if new_email.is_some() {
        patch.remove("email");
    }
    let now = state.clock.now_naive();
    let user_id = id.clone();
    let view =
        crate::accounts::audit::audited(&state.db, id.clone(), "user_updated", now, move |conn| {
            users::update_claims(conn, &user_id, &patch, Editor::User, now)
        })
        .await
        .map_err(ApiError::from)?;
    let mut body = serde_json::to_value(&view)
        .map_err(|e| ApiError::Fault(crate::http::error::Fault::internal(e)))?;
    if let Some(email) = new_email {
        state
            .mail_links
            .request_email_change(&current, &email, client_ip(&state, &request))
            .await
            .map_err(ApiError::from)?;
        body["pending_email"] = serde_json::Value::String(email.as_str().to_owned());
    }
    Ok(no_store(StatusCode::OK).json(body))
}

/// The user id of a token from the account's own login (the JSON API's first-party client):
/// an application's token, even one for this API's audience, never manages the user's
/// consents (it could read which other applications the user approved, or withdraw them).
pub(super) fn account_holder(auth: &UserBearer) -> Result<String, BearerError> {
    let first_party = auth.claims.client_id.as_deref() == Some(sessions::FIRST_PARTY_CLIENT_ID)
        && auth.current.client_id == sessions::FIRST_PARTY_CLIENT_ID;
    if !first_party {
        return Err(BearerError::InsufficientScope(
            "a token of the account's own login".into(),
        ));
    }
    Ok(auth.current.user.id.clone())
}

/// `GET /api/me/consents` (bearer, first-party login) → `{"consents": [{"client_id", "scopes",
/// "created_at", "updated_at"}]}`: the applications the user approved and for which scopes,
/// most recently approved first. 403 `insufficient_scope` for an application's token.
pub async fn consents(
    state: web::Data<AppState>,
    auth: UserBearer,
) -> Result<HttpResponse, actix_web::Error> {
    let user_id = account_holder(&auth)?;
    let consents = consent::list(&state.db, user_id)
        .await
        .map_err(ApiError::from)?;
    Ok(no_store(StatusCode::OK).json(json!({ "consents": consents })))
}

/// `DELETE /api/me/consents/{client_id}` (bearer, first-party login) → `{"client_id", "ended":
/// {"refresh_families", "access_tokens", "authorization_codes"}}`: withdraws the consent and
/// ends the application's grants for the user (its refresh tokens stop working; its next
/// authorization asks again), audited. 404 `not_found` when the user gave that client no
/// consent (an unknown client included).
pub async fn revoke_consent(
    state: web::Data<AppState>,
    auth: UserBearer,
    client_id: web::Path<String>,
) -> Result<HttpResponse, actix_web::Error> {
    let user_id = account_holder(&auth)?;
    let (client_id, now) = (client_id.into_inner(), state.clock.now_naive());
    let actor = user_id.clone();
    let revoked =
        crate::accounts::audit::audited(&state.db, actor, "consent_revoked", now, move |conn| {
            consent::revoke(conn, &user_id, &client_id, now)
        })
        .await
        .map_err(ApiError::from)?;
    Ok(no_store(StatusCode::OK).json(revoked))
}
