//! The hosted account page (`{issuer}/account`), HTTP side: who is signed in (the hosted
//! login's browser session, [`require_session`]; without one, the sign-in through the hosted
//! login and back, [`login`], [`callback`]), the page, and its forms: profile, password,
//! sessions and devices, connected applications. Server-rendered under the hosted pages' strict
//! CSP, no script; every form carries a CSRF token bound to the session
//! ([`AccountSession::csrf_token`]). The account rules are in
//! [`crate::accounts::self_service`] and [`crate::oidc::consent`].
//!
//! The pages of the email (`/account/email`) and second factors (`/account/security`) use the
//! same guard and CSRF token.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use chrono::NaiveDateTime;

use super::auth_api::client_ip;
use super::authorize::{
    cookie, cookie_value, failed, message, page, retry_after, see_other, start_pending,
};
use super::oauth::read_form;
use crate::accounts::browser_sessions::{self, SignedIn};
use crate::accounts::names::MAX_PASSWORD_BYTES;
use crate::accounts::profile::{Editor, Profile};
use crate::accounts::self_service::{self, Overview};
use crate::accounts::sessions::AuthError;
use crate::accounts::users::{self, AccountError};
use crate::http::error::Fault;
use crate::oidc::authorize::account::{self as console, ACCOUNT_PATH, safe_return_path};
use crate::oidc::consent::{self, ConsentView};
use crate::oidc::params::Params;
use crate::secrets::{CsrfToken, SessionSecret};
use crate::state::AppState;

/// What the CSRF tokens of the account pages are derived for ([`CsrfToken::bound_to`]).
const CSRF_PURPOSE: &str = "account";

/// The signed-in user of an account page: their live browser session and its cookie secret.
pub struct AccountSession {
    /// The user and the session.
    pub user: SignedIn,
    secret: SessionSecret,
}

impl AccountSession {
    /// The CSRF token of this session's account forms: derived from the session secret (an
    /// HttpOnly cookie no other site can read), so it needs no storage and is good for this
    /// session only.
    pub fn csrf_token(&self) -> CsrfToken {
        CsrfToken::bound_to(&self.secret, CSRF_PURPOSE)
    }

    /// Whether a form's `csrf_token` is this session's, compared in constant time.
    pub fn csrf_matches(&self, presented: Option<&str>) -> bool {
        presented.is_some_and(|token| self.csrf_token().matches(token))
    }
}

/// The browser's signed-in user, or the response that sends it through the hosted login and
/// back: a `303` to `{issuer path}/account/login` with `return_to`, the requested account page
/// (a `GET`'s own path and query when [`safe_return_path`] accepts it; the account page
/// otherwise, and after a form post).
///
/// # Errors
/// The redirect, or the hosted pages' 503/500 page when the database fails.
pub async fn require_session(
    app: &AppState,
    request: &HttpRequest,
) -> Result<AccountSession, HttpResponse> {
    let now = app.clock.now_naive();
    if let Some(secret) = cookie_value(app, request, "session").map(SessionSecret::presented) {
        match browser_sessions::signed_in(&app.db, &secret, now).await {
            Ok(Some(user)) => return Ok(AccountSession { user, secret }),
            Ok(None) => {}
            Err(error) => return Err(failed(app, error)),
        }
    }
    let base = app.issuer.path();
    let requested = match request.query_string() {
        "" => request.path().to_owned(),
        query => format!("{}?{query}", request.path()),
    };
    let return_to = (request.method() == actix_web::http::Method::GET)
        .then(|| safe_return_path(base, &requested))
        .flatten()
        .unwrap_or_else(|| format!("{base}{ACCOUNT_PATH}"));
    Err(see_other(&login_location(base, &return_to)))
}

/// `{base}/account/login?return_to=…`.
fn login_location(base: &str, return_to: &str) -> String {
    let query: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("return_to", return_to)
        .finish();
    format!("{base}{ACCOUNT_PATH}/login?{query}")
}

/// A form post of an account page: the signed-in user and the form, when its CSRF token is
/// the session's. Without a session, the sign-in redirect; with a bad token, a 403 page.
///
/// # Errors
/// The response to send instead.
pub async fn signed_form(
    app: &AppState,
    request: &HttpRequest,
    payload: web::Payload,
) -> Result<(AccountSession, Params), HttpResponse> {
    let session = require_session(app, request).await?;
    let params = read_form(request, payload).await.map_err(|error| {
        message(
            app,
            StatusCode::BAD_REQUEST,
            "Invalid request",
            &error.description,
        )
    })?;
    if !session.csrf_matches(params.get("csrf_token")) {
        tracing::warn!(user_id = %session.user.user_id, "account form refused: CSRF token");
        return Err(message(
            app,
            StatusCode::FORBIDDEN,
            "Request refused",
            "This form did not come from your account page. Open the account page and try again.",
        ));
    }
    Ok((session, params))
}

/// `GET /account/login?return_to=…`: the hosted login for the account page (a pending request
/// of the account console, [`console::sign_in_request`]), coming back to `return_to` when
/// [`safe_return_path`] accepts it (the account page otherwise). A browser already signed in
/// goes straight there. `HEAD` changes nothing.
pub async fn login(app: web::Data<AppState>, request: HttpRequest) -> HttpResponse {
    let base = app.issuer.path();
    let return_to = Params::parse(request.query_string().as_bytes())
        .ok()
        .and_then(|params| {
            params
                .get("return_to")
                .and_then(|r| safe_return_path(base, r))
        })
        .unwrap_or_else(|| format!("{base}{ACCOUNT_PATH}"));
    if request.method() == actix_web::http::Method::HEAD {
        return message(&app, StatusCode::OK, "Sign in", "Sign in to your account.");
    }
    let now = app.clock.now_naive();
    if let Some(secret) = cookie_value(&app, &request, "session").map(SessionSecret::presented) {
        match browser_sessions::signed_in(&app.db, &secret, now).await {
            Ok(Some(_)) => return see_other(&return_to),
            Ok(None) => {}
            Err(error) => return failed(&app, error),
        }
    }
    let authz = match console::sign_in_request(app.issuer.as_str(), return_to) {
        Ok(authz) => authz,
        Err(error) => return failed(&app, Fault::internal(error)),
    };
    start_pending(&app, &request, &authz, None, None, now).await
}

/// `GET /account/callback`: where the account page's sign-in ends. The code is not redeemed
/// (the sign-in set the browser session the page uses); the browser goes to the `state`, an
/// account page ([`safe_return_path`] again: the callback may be reached with anything), or
/// sees why the sign-in did not complete.
pub async fn callback(app: web::Data<AppState>, request: HttpRequest) -> HttpResponse {
    let base = app.issuer.path();
    let params = Params::parse(request.query_string().as_bytes()).unwrap_or_default();
    if params.get("error").is_some() {
        return message(
            &app,
            StatusCode::BAD_REQUEST,
            "Sign-in did not complete",
            "The sign-in to your account did not complete. Open your account page to try again.",
        );
    }
    let target = params
        .get("state")
        .and_then(|state| safe_return_path(base, state))
        .unwrap_or_else(|| format!("{base}{ACCOUNT_PATH}"));
    see_other(&target)
}

/// The outcome a form post reports on the page after its redirect (`?done=`): a fixed text
/// per key, so nothing the request carries is echoed.
fn notice(done: Option<&str>) -> Option<&'static str> {
    Some(match done? {
        "profile" => "Your profile was saved.",
        "password" => "Your password was changed. Every other browser and device was signed out.",
        "session" => "That browser was signed out.",
        "grant" => "That application's access was ended.",
        "application" => "The application's access was removed.",
        _ => return None,
    })
}

/// A problem with a form, shown in its section.
struct Problem {
    /// `profile`, `password`, `sessions` or `applications`.
    section: &'static str,
    text: String,
}

/// `GET /account`: the account page.
pub async fn page_get(app: web::Data<AppState>, request: HttpRequest) -> HttpResponse {
    let session = match require_session(&app, &request).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let params = Params::parse(request.query_string().as_bytes()).unwrap_or_default();
    let done = notice(params.get("done"));
    render(&app, &session, StatusCode::OK, done, None, None).await
}

/// The account page for `session`: `notice` after a change, `problem` with a refused form
/// (status 4xx), `submitted` the refused profile form (shown again as typed).
async fn render(
    app: &AppState,
    session: &AccountSession,
    status: StatusCode,
    notice: Option<&str>,
    problem: Option<Problem>,
    submitted: Option<&Params>,
) -> HttpResponse {
    let now = app.clock.now_naive();
    let user_id = session.user.user_id.clone();
    let overview = match self_service::overview(&app.db, user_id.clone(), now).await {
        Ok(overview) => overview,
        Err(AccountError::Db(error)) => return failed(app, error),
        Err(error) => return failed(app, Fault::internal(error)),
    };
    let consents = match consent::list(&app.db, user_id).await {
        Ok(consents) => consents,
        Err(error) => return failed(app, error),
    };
    let csrf = session.csrf_token();
    let (problem_section, problem) = problem.map_or(("", String::new()), |p| (p.section, p.text));
    let body = AccountPage::new(
        app.issuer.path(),
        csrf.expose(),
        &overview,
        &consents,
        &session.user.sid,
        submitted,
    );
    page(
        app,
        status,
        AccountPage {
            notice,
            problem_section,
            problem,
            ..body
        }
        .render(),
    )
}

/// One input of the profile form.
struct Field {
    name: &'static str,
    label: &'static str,
    kind: &'static str,
    autocomplete: &'static str,
    hint: &'static str,
    value: String,
}

/// The standard claims a user edits here (OIDC Core §5.1; `email` has its page, the
/// `*_verified` flags are an administrator's), as (claim, label, input type, autocomplete,
/// hint).
const PROFILE_FIELDS: [(&str, &str, &str, &str, &str); 13] = [
    ("name", "Full name", "text", "name", ""),
    ("given_name", "Given name", "text", "given-name", ""),
    ("middle_name", "Middle name", "text", "additional-name", ""),
    ("family_name", "Family name", "text", "family-name", ""),
    ("nickname", "Nickname", "text", "nickname", ""),
    ("profile", "Profile page", "url", "url", "an http(s) URL"),
    ("picture", "Picture", "url", "photo", "an http(s) URL"),
    ("website", "Website", "url", "url", "an http(s) URL"),
    ("gender", "Gender", "text", "sex", ""),
    (
        "birthdate",
        "Birthdate",
        "text",
        "bday",
        "YYYY-MM-DD, 0000-MM-DD or YYYY",
    ),
    ("zoneinfo", "Time zone", "text", "off", "e.g. Europe/Paris"),
    ("locale", "Language", "text", "language", "e.g. en-US"),
    (
        "phone_number",
        "Phone number",
        "tel",
        "tel",
        "E.164, e.g. +14155550100",
    ),
];

/// The members of the address claim (§5.1.1), as (form name, member, label, autocomplete).
const ADDRESS_FIELDS: [(&str, &str, &str, &str); 6] = [
    (
        "address_street_address",
        "street_address",
        "Street",
        "street-address",
    ),
    ("address_locality", "locality", "City", "address-level2"),
    ("address_region", "region", "Region", "address-level1"),
    (
        "address_postal_code",
        "postal_code",
        "Postal code",
        "postal-code",
    ),
    ("address_country", "country", "Country", "country-name"),
    ("address_formatted", "formatted", "Formatted", "off"),
];

struct SessionLine {
    sid: String,
    short_sid: String,
    signed_in: String,
    expires: String,
    current: bool,
    grants: Vec<GrantLine>,
}

struct GrantLine {
    id: String,
    client_id: String,
    scope: String,
    started: String,
    last_used: String,
}

struct ApplicationLine {
    client_id: String,
    scopes: String,
    claims: String,
    since: String,
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage<'a> {
    base: &'a str,
    csrf_token: &'a str,
    username: &'a str,
    email: &'a str,
    notice: Option<&'a str>,
    /// The section of `problem` (`""`: none).
    problem_section: &'static str,
    problem: String,
    fields: Vec<Field>,
    address: Vec<Field>,
    password_changed: String,
    sessions: Vec<SessionLine>,
    /// Grants made outside any browser session (the JSON API's logins).
    grants: Vec<GrantLine>,
    applications: Vec<ApplicationLine>,
}

/// `2026-12-01 09:30 UTC`.
fn when(at: NaiveDateTime) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

fn when_rfc3339(text: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(text)
        .map_or_else(|_| text.to_owned(), |at| when(at.naive_utc()))
}

fn claim_text(profile: &Profile, claim: &str) -> String {
    serde_json::to_value(profile)
        .ok()
        .and_then(|value| value.get(claim).and_then(|v| v.as_str().map(str::to_owned)))
        .unwrap_or_default()
}

impl<'a> AccountPage<'a> {
    fn new(
        base: &'a str,
        csrf_token: &'a str,
        overview: &'a Overview,
        consents: &[ConsentView],
        current_sid: &str,
        submitted: Option<&Params>,
    ) -> Self {
        let typed = |name: &str| submitted.map(|p| p.get(name).unwrap_or("").to_owned());
        let fields = PROFILE_FIELDS
            .iter()
            .map(|&(name, label, kind, autocomplete, hint)| Field {
                name,
                label,
                kind,
                autocomplete,
                hint,
                value: typed(name).unwrap_or_else(|| claim_text(&overview.profile, name)),
            })
            .collect();
        let stored = overview.profile.address.clone().unwrap_or_default();
        let address = ADDRESS_FIELDS
            .iter()
            .map(|&(name, member, label, autocomplete)| Field {
                name,
                label,
                kind: "text",
                autocomplete,
                hint: "",
                value: typed(name).unwrap_or_else(|| {
                    serde_json::to_value(&stored)
                        .ok()
                        .and_then(|v| v.get(member).and_then(|m| m.as_str().map(str::to_owned)))
                        .unwrap_or_default()
                }),
            })
            .collect();
        let grant_line = |grant: &self_service::GrantLine| GrantLine {
            id: grant.family.id.clone(),
            client_id: grant.family.client_id.clone(),
            scope: grant.family.scope.clone(),
            started: when(grant.family.created_at),
            last_used: grant
                .last_used
                .map_or_else(|| when(grant.family.created_at), when),
        };
        let sessions = overview
            .sessions
            .iter()
            .map(|session| SessionLine {
                sid: session.sid.clone(),
                short_sid: session.sid.chars().take(8).collect(),
                signed_in: when(session.auth_time),
                expires: when(session.expires_at),
                current: session.sid == current_sid,
                grants: overview
                    .grants
                    .iter()
                    .filter(|g| g.family.sid.as_deref() == Some(session.sid.as_str()))
                    .map(grant_line)
                    .collect(),
            })
            .collect();
        let live_sids: Vec<&str> = overview.sessions.iter().map(|s| s.sid.as_str()).collect();
        let grants = overview
            .grants
            .iter()
            .filter(|g| {
                g.family
                    .sid
                    .as_deref()
                    .is_none_or(|sid| !live_sids.contains(&sid))
            })
            .map(grant_line)
            .collect();
        let applications = consents
            .iter()
            .map(|c| ApplicationLine {
                client_id: c.client_id.clone(),
                scopes: c.scopes.join(" "),
                claims: c.claims.join(" "),
                since: when_rfc3339(&c.created_at),
            })
            .collect();
        Self {
            base,
            csrf_token,
            username: &overview.username,
            email: &overview.email,
            notice: None,
            problem_section: "",
            problem: String::new(),
            fields,
            address,
            password_changed: when(overview.password_changed_at),
            sessions,
            grants,
            applications,
        }
    }
}

/// `{base}/account?done={what}#{section}`: the page after a change (POST/redirect/GET).
fn done(app: &AppState, what: &str, section: &str) -> HttpResponse {
    see_other(&format!(
        "{}{ACCOUNT_PATH}?done={what}#{section}",
        app.issuer.path()
    ))
}

/// The answer to a form refused as invalid: the page, 400, with the problem in its section.
async fn refused(
    app: &AppState,
    session: &AccountSession,
    section: &'static str,
    text: impl Into<String>,
    submitted: Option<&Params>,
) -> HttpResponse {
    let problem = Problem {
        section,
        text: text.into(),
    };
    render(
        app,
        session,
        StatusCode::BAD_REQUEST,
        None,
        Some(problem),
        submitted,
    )
    .await
}

/// The answer to an account error that is not the user's input.
fn account_failure(app: &AppState, error: AccountError) -> HttpResponse {
    match error {
        AccountError::Db(error) => failed(app, error),
        AccountError::Hash(crate::accounts::password::HashError::Busy) => failed(app, Fault::Busy),
        other => failed(app, Fault::internal(other)),
    }
}

/// The JSON patch of a profile form. The form is the whole editable profile: every claim of
/// [`PROFILE_FIELDS`] is set to the form's value, and one the form leaves empty (browsers send
/// `name=`, which the form parser, as RFC 6749 §3.1 asks, reads as absent) is cleared; the
/// address is built from its members (all empty: no address). Nothing else the form carries
/// reaches the patch.
fn profile_patch(params: &Params) -> serde_json::Map<String, serde_json::Value> {
    use serde_json::Value;
    let mut patch = serde_json::Map::new();
    for (name, ..) in PROFILE_FIELDS {
        let value = params.get(name).unwrap_or("");
        patch.insert(name.to_owned(), Value::String(value.to_owned()));
    }
    let members: serde_json::Map<String, Value> = ADDRESS_FIELDS
        .iter()
        .filter_map(|(name, member, ..)| {
            let value = params.get(name)?.trim();
            (!value.is_empty()).then(|| ((*member).to_owned(), Value::String(value.to_owned())))
        })
        .collect();
    let address = if members.is_empty() {
        Value::Null
    } else {
        Value::Object(members)
    };
    patch.insert("address".to_owned(), address);
    patch
}

/// `POST /account/profile`: saves the standard claims of the form with the JSON API's rules
/// ([`users::update_claims`] as the user), audited as `user_updated`. A refused claim answers
/// the page (400) with the reason and the form as typed; nothing is saved.
pub async fn update_profile(
    app: web::Data<AppState>,
    request: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let (session, params) = match signed_form(&app, &request, payload).await {
        Ok(signed) => signed,
        Err(response) => return response,
    };
    let patch = profile_patch(&params);
    let id = session.user.user_id.clone();
    let now = app.clock.now_naive();
    let saved =
        crate::accounts::audit::audited(&app.db, id.clone(), "user_updated", now, move |conn| {
            users::update_claims(conn, &id, &patch, Editor::User, now)
        })
        .await;
    match saved {
        Ok(_) => done(&app, "profile", "profile"),
        Err(AccountError::Invalid(field)) => {
            refused(&app, &session, "profile", field.to_string(), Some(&params)).await
        }
        Err(error) => account_failure(&app, error),
    }
}

/// `POST /account/password`: `current_password` (checked as a sign-in is: throttled per
/// account, network and device, [`crate::accounts::sessions::Authenticator`]), `new_password`
/// twice (the password policy); then every other browser and device is signed out
/// ([`self_service::change_password`]). Refusals answer the page with the reason (400, 401 for
/// a wrong current password, 429 when throttled).
pub async fn change_password(
    app: web::Data<AppState>,
    request: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let (session, params) = match signed_form(&app, &request, payload).await {
        Ok(signed) => signed,
        Err(response) => return response,
    };
    let current = params.get("current_password").unwrap_or("");
    let new = params.get("new_password").unwrap_or("");
    if new != params.get("new_password_confirm").unwrap_or("") {
        return refused(
            &app,
            &session,
            "password",
            "The new passwords do not match.",
            None,
        )
        .await;
    }
    if new == current {
        return refused(
            &app,
            &session,
            "password",
            "The new password is the current one. Choose another.",
            None,
        )
        .await;
    }
    let user_id = session.user.user_id.clone();
    let password =
        match self_service::check_new_password(&app.db, user_id.clone(), new.to_owned()).await {
            Ok(password) => password,
            Err(AccountError::Invalid(field)) => {
                return refused(&app, &session, "password", field.to_string(), None).await;
            }
            Err(error) => return account_failure(&app, error),
        };
    let wrong = "The current password is incorrect.";
    if current.is_empty() || current.len() > MAX_PASSWORD_BYTES {
        return wrong_password(&app, &session, StatusCode::UNAUTHORIZED, wrong).await;
    }
    let device = cookie_value(&app, &request, "device");
    let checked = app
        .authenticator
        .authenticate(
            session.user.username.clone(),
            current.as_bytes().to_vec(),
            client_ip(&app, &request),
            device,
        )
        .await;
    let authenticated = match checked {
        Ok(authenticated) if authenticated.user.id == user_id => authenticated,
        Ok(_) | Err(AuthError::InvalidCredentials) => {
            return wrong_password(&app, &session, StatusCode::UNAUTHORIZED, wrong).await;
        }
        Err(AuthError::Throttled(seconds)) => {
            let page = wrong_password(
                &app,
                &session,
                StatusCode::TOO_MANY_REQUESTS,
                "Too many attempts. Wait a while, then try again.",
            )
            .await;
            return retry_after(page, seconds);
        }
        Err(error) => return failed(&app, error),
    };
    let changed = self_service::change_password(
        &app.db,
        &app.hasher,
        &app.clock,
        user_id,
        session.user.sid.clone(),
        authenticated,
        password,
    )
    .await;
    match changed {
        Ok(_) => done(&app, "password", "password"),
        Err(error) => account_failure(&app, error),
    }
}

async fn wrong_password(
    app: &AppState,
    session: &AccountSession,
    status: StatusCode,
    text: &str,
) -> HttpResponse {
    let problem = Problem {
        section: "password",
        text: text.to_owned(),
    };
    render(app, session, status, None, Some(problem), None).await
}

/// `POST /account/sessions/end`: `sid` signs one browser out (with every application grant
/// made in it), `grant` ends one application's access (its refresh tokens and access tokens).
/// Only the user's own: another id is "not found" (404 page). Ending this browser's own session
/// lands on the sign-in.
pub async fn end_session(
    app: web::Data<AppState>,
    request: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let (session, params) = match signed_form(&app, &request, payload).await {
        Ok(signed) => signed,
        Err(response) => return response,
    };
    let now = app.clock.now_naive();
    let user_id = session.user.user_id.clone();
    let (ended, what) = match (params.get("sid"), params.get("grant")) {
        (Some(sid), None) => (
            self_service::end_session(&app.db, user_id, sid.to_owned(), now).await,
            "session",
        ),
        (None, Some(grant)) => (
            self_service::end_grant(&app.db, user_id, grant.to_owned(), now).await,
            "grant",
        ),
        _ => {
            return refused(
                &app,
                &session,
                "sessions",
                "Choose one session or application to sign out.",
                None,
            )
            .await;
        }
    };
    match ended {
        Ok(()) if what == "session" && params.get("sid") == Some(session.user.sid.as_str()) => {
            signed_out(&app)
        }
        Ok(()) => done(&app, what, "sessions"),
        Err(AccountError::NotFound) => {
            let problem = Problem {
                section: "sessions",
                text: "That session or application is not one of yours, or has already ended."
                    .to_owned(),
            };
            render(
                &app,
                &session,
                StatusCode::NOT_FOUND,
                None,
                Some(problem),
                None,
            )
            .await
        }
        Err(error) => account_failure(&app, error),
    }
}

/// This browser was signed out: to the sign-in (for the account page), the cookie cleared.
fn signed_out(app: &AppState) -> HttpResponse {
    let base = app.issuer.path();
    let mut response = see_other(&login_location(base, &format!("{base}{ACCOUNT_PATH}")));
    let mut gone = cookie(app, "session", String::new(), Some(0));
    gone.make_removal();
    let _ = response.add_cookie(&gone);
    response
}

/// `POST /account/sessions/end-all`: signs the user out everywhere, this browser too (every
/// session, grant, access token and trusted device; audited as `logout_all`), and lands on the
/// sign-in.
pub async fn end_all(
    app: web::Data<AppState>,
    request: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let (session, _) = match signed_form(&app, &request, payload).await {
        Ok(signed) => signed,
        Err(response) => return response,
    };
    let now = app.clock.now_naive();
    match self_service::end_everything(&app.db, session.user.user_id.clone(), now).await {
        Ok(_) => signed_out(&app),
        Err(error) => account_failure(&app, error),
    }
}

/// `POST /account/applications/revoke`: `client_id` — withdraws the user's consent to that
/// application and ends its grants for the user ([`consent::revoke`], as the JSON API's
/// `DELETE /api/me/consents/{client_id}`), audited as `consent_revoked`. A client the user gave
/// no consent is "not found" (404 page).
pub async fn revoke_application(
    app: web::Data<AppState>,
    request: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let (session, params) = match signed_form(&app, &request, payload).await {
        Ok(signed) => signed,
        Err(response) => return response,
    };
    let Some(client_id) = params.get("client_id").map(str::to_owned) else {
        return refused(
            &app,
            &session,
            "applications",
            "Choose an application.",
            None,
        )
        .await;
    };
    let now = app.clock.now_naive();
    let user_id = session.user.user_id.clone();
    let actor = user_id.clone();
    let revoked =
        crate::accounts::audit::audited(&app.db, actor, "consent_revoked", now, move |conn| {
            consent::revoke(conn, &user_id, &client_id, now)
        })
        .await;
    match revoked {
        Ok(_) => done(&app, "application", "applications"),
        Err(AccountError::NotFound) => {
            let problem = Problem {
                section: "applications",
                text: "That application has no access to your account.".to_owned(),
            };
            render(
                &app,
                &session,
                StatusCode::NOT_FOUND,
                None,
                Some(problem),
                None,
            )
            .await
        }
        Err(error) => account_failure(&app, error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_are_fixed_texts() {
        assert_eq!(notice(Some("profile")), Some("Your profile was saved."));
        assert_eq!(notice(Some("<script>")), None);
        assert_eq!(notice(None), None);
    }

    #[test]
    fn a_profile_form_becomes_a_patch() {
        let params = Params::parse(
            b"name=Alice&nickname=&address_locality=Paris&address_country=&csrf_token=x",
        )
        .unwrap();
        let patch = profile_patch(&params);
        assert_eq!(patch["name"], "Alice");
        assert_eq!(patch["nickname"], "");
        assert_eq!(patch["website"], "", "a field left empty clears its claim");
        assert_eq!(patch["address"], serde_json::json!({"locality": "Paris"}));
        assert!(!patch.contains_key("csrf_token"));
        let cleared = profile_patch(&Params::parse(b"address_locality=+").unwrap());
        assert_eq!(cleared["address"], serde_json::Value::Null);
    }
}
