//! The authorization endpoint and the hosted login, consent and logout pages (RFC 6749 §4.1,
//! RFC 7636, OIDC Core §3.1.2, RFC 9207, RP-Initiated Logout 1.0).
//!
//! The pending request lives in the database, bound to the browser that started it (the hash of
//! a per-browser flow cookie) and to a CSRF token; the form's hidden fields only name it and
//! carry no authority (LOGIN-01). An unknown client or a redirect URI that is not registered
//! gets an error page, never a redirect (AUTHZ-01/03); every other error redirects with `error`,
//! `state` and `iss`.

use std::sync::Arc;

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::StatusCode;
use actix_web::http::header::LOCATION;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use chrono::{NaiveDateTime, Utc};

use super::auth_api::client_ip;
use super::oauth::read_form;
use crate::accounts::sessions::{self, AuthError};
use crate::db::models::{AuthorizationCodeRow, AuthorizationRequestRow, BrowserSessionRow};
use crate::db::queries::{oauth as q, refresh as refresh_q, throttle, users as user_q};
use crate::db::write_transaction;
use crate::http::error::{self, Fault};
use crate::oidc::clients::{Client, GrantType};
use crate::oidc::params::{Params, valid_challenge};
use crate::secrets::{AuthorizationCode, CsrfToken, FlowSecret, SessionSecret, random_identifier};
use crate::state::AppState;
use crate::verify::Scope;
use crate::verify::scope::tokens as scope_tokens;

/// How long a browser session (SSO) lasts.
pub const SESSION_TTL: chrono::Duration = chrono::Duration::hours(12);
/// How long a pending authorization request waits for the user.
const REQUEST_TTL: chrono::Duration = chrono::Duration::minutes(10);
/// Pending authorization requests one browser (flow cookie) keeps: its newest, one per open
/// sign-in tab; starting another drops the oldest.
const PENDING_PER_BROWSER: usize = 16;
/// Pending authorization requests one client network (an IPv4 address, an IPv6 /64) may start
/// per request lifetime (10 minutes), so it holds at most this many at once (each at most a few
/// KiB: state, nonce and hint are bounded); more get `429`.
const PENDING_PER_NETWORK: u32 = 300;
/// Authorization-code lifetime (CODE-03).
const CODE_TTL: chrono::Duration = chrono::Duration::seconds(60);
/// Longest `state` accepted, in bytes (DOS-07): ample for a client's own encoded state, and it
/// bounds what an anonymous request can make the server store.
const MAX_STATE: usize = 2048;
/// Longest `nonce` accepted, in bytes (a nonce is a random value: 512 is generous).
const MAX_NONCE: usize = 512;
/// Longest `login_hint` kept, in bytes (longer hints are cut at a character boundary).
const MAX_LOGIN_HINT: usize = 256;

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    /// The issuer's path, which the form action is under.
    base: &'a str,
    client_id: &'a str,
    request_id: &'a str,
    csrf_token: &'a str,
    username: &'a str,
    error: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "consent.html")]
struct ConsentPage<'a> {
    /// The issuer's path, which the form action is under.
    base: &'a str,
    client_id: &'a str,
    username: &'a str,
    scopes: Vec<&'a str>,
    request_id: &'a str,
    csrf_token: &'a str,
}

#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage<'a> {
    title: &'a str,
    message: &'a str,
    is_error: bool,
}

fn now() -> NaiveDateTime {
    Utc::now().naive_utc()
}

/// Headers of every page: no framing (HDR-01), no referrer, no caching, no sniffing.
fn page(state: &AppState, status: StatusCode, body: Result<String, askama::Error>) -> HttpResponse {
    let mut response = HttpResponse::build(status);
    response
        .content_type("text/html; charset=utf-8")
        .insert_header((
            "Content-Security-Policy",
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'",
        ))
        .insert_header(("X-Frame-Options", "DENY"))
        .insert_header(("Referrer-Policy", "no-referrer"))
        .insert_header(("Cache-Control", "no-store"))
        .insert_header(("Pragma", "no-cache"))
        .insert_header(("X-Content-Type-Options", "nosniff"));
    if state.issuer.is_https() {
        response.insert_header(("Strict-Transport-Security", "max-age=31536000"));
    }
    match body {
        Ok(html) => response.body(html),
        Err(error) => {
            tracing::error!(%error, "page did not render");
            HttpResponse::InternalServerError().finish()
        }
    }
}

fn message(state: &AppState, status: StatusCode, title: &str, text: &str) -> HttpResponse {
    let is_error = status.is_client_error() || status.is_server_error();
    page(
        state,
        status,
        MessagePage {
            title,
            message: text,
            is_error,
        }
        .render(),
    )
}

/// `response` with `Retry-After: seconds`.
fn retry_after(mut response: HttpResponse, seconds: u64) -> HttpResponse {
    response.headers_mut().insert(
        actix_web::http::header::RETRY_AFTER,
        actix_web::http::header::HeaderValue::from(seconds),
    );
    response
}

/// The page of a server-side failure: 503 + `Retry-After` when transient, else 500
/// (`http::error`'s policy; the cause is logged there).
fn failed(state: &AppState, fault: impl Into<Fault>) -> HttpResponse {
    let failure = error::page_failure(&fault.into());
    let page = message(state, failure.status, failure.title, failure.text);
    match failure.retry_after {
        Some(seconds) => retry_after(page, seconds),
        None => page,
    }
}

/// Cookie names: `__Host-` with `Secure` on an https issuer. A plain-http issuer (loopback
/// development, or one accepted with PORTCULLIS_INSECURE_HTTP_ISSUER) gets neither: browsers
/// refuse `Secure` cookies over http, and `__Host-` requires `Secure`.
fn cookie_name(state: &AppState, base: &'static str) -> String {
    if !state.issuer.is_https() {
        format!("portcullis_{base}")
    } else {
        format!("__Host-portcullis_{base}")
    }
}

fn cookie(
    state: &AppState,
    base: &'static str,
    value: String,
    max_age: Option<i64>,
) -> Cookie<'static> {
    // `Path=/` even under an issuer with a path: a `__Host-` cookie must have `Path=/`
    // (RFC 6265bis §4.1.3.2), and the http variant keeps the same scope so that development
    // behaves like production.
    let mut builder = Cookie::build(cookie_name(state, base), value)
        .path("/")
        .http_only(true)
        .secure(state.issuer.is_https())
        .same_site(SameSite::Lax);
    if let Some(seconds) = max_age {
        builder = builder.max_age(actix_web::cookie::time::Duration::seconds(seconds));
    }
    builder.finish()
}

fn cookie_value(state: &AppState, request: &HttpRequest, base: &'static str) -> Option<String> {
    request
        .cookie(&cookie_name(state, base))
        .map(|c| c.value().to_owned())
}

/// `uri` with `pairs` appended to its query, byte for byte otherwise (the registered string).
fn with_query(uri: &str, pairs: &[(&str, &str)]) -> String {
    let mut serializer = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in pairs {
        serializer.append_pair(name, value);
    }
    let separator = if uri.contains('?') { '&' } else { '?' };
    format!("{uri}{separator}{}", serializer.finish())
}

fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((LOCATION, location))
        .insert_header(("Cache-Control", "no-store"))
        .insert_header(("Referrer-Policy", "no-referrer"))
        .finish()
}

/// A validated authorization request.
struct Request {
    client: Arc<Client>,
    redirect_uri: String,
    redirect_uri_sent: bool,
    scope: String,
    state: Option<String>,
    nonce: Option<String>,
    code_challenge: String,
    max_age: Option<i64>,
    prompt_none: bool,
    prompt_login: bool,
    prompt_consent: bool,
    login_hint: Option<String>,
}

/// What is wrong with a request: a page (no trusted redirect URI) or a redirect.
enum Invalid {
    Page(&'static str),
    Redirect {
        redirect_uri: String,
        state: Option<String>,
        error: &'static str,
        description: &'static str,
    },
}

fn error_redirect(
    app: &AppState,
    redirect_uri: &str,
    state: Option<&str>,
    error: &str,
    description: &str,
) -> HttpResponse {
    let mut pairs = vec![("error", error), ("error_description", description)];
    if let Some(state) = state {
        pairs.push(("state", state));
    }
    pairs.push(("iss", app.issuer.as_str()));
    see_other(&with_query(redirect_uri, &pairs))
}

fn validate(app: &AppState, params: &Params) -> Result<Request, Invalid> {
    let client = params
        .get("client_id")
        .and_then(|id| app.clients.get(id))
        .ok_or(Invalid::Page("The application is unknown."))?;
    let (redirect_uri, redirect_uri_sent) = match params.get("redirect_uri") {
        Some(uri) if client.redirect_uris.iter().any(|r| r == uri) => (uri.to_owned(), true),
        Some(_) => {
            return Err(Invalid::Page(
                "The redirect URI is not registered for this application.",
            ));
        }
        None => match client.redirect_uris.as_slice() {
            [only] => (only.clone(), false),
            _ => return Err(Invalid::Page("The redirect URI is missing.")),
        },
    };
    let state = params.get("state").map(str::to_owned);
    let fail = |error, description| Invalid::Redirect {
        redirect_uri: redirect_uri.clone(),
        state: state.clone(),
        error,
        description,
    };
    if state.as_ref().is_some_and(|s| s.len() > MAX_STATE) {
        return Err(Invalid::Page("The state parameter is too long."));
    }
    if params.has("request") {
        return Err(fail(
            "request_not_supported",
            "Request objects are not supported.",
        ));
    }
    if params.has("request_uri") {
        return Err(fail(
            "request_uri_not_supported",
            "request_uri is not supported.",
        ));
    }
    match params.get("response_type") {
        None => return Err(fail("invalid_request", "response_type is required.")),
        Some("code") => {}
        Some(_) => {
            return Err(fail(
                "unsupported_response_type",
                "Only response_type=code is supported.",
            ));
        }
    }
    if !client.allows(GrantType::AuthorizationCode) {
        return Err(fail(
            "unauthorized_client",
            "This client may not use the authorization code flow.",
        ));
    }
    if params.get("response_mode").is_some_and(|m| m != "query") {
        return Err(fail(
            "invalid_request",
            "Only response_mode=query is supported.",
        ));
    }
    let not_allowed = || {
        fail(
            "invalid_scope",
            "The requested scope is not allowed for this client.",
        )
    };
    let scope = Scope::parse(params.get("scope").unwrap_or("")).map_err(|_| not_allowed())?;
    if scope.is_empty() {
        return Err(fail("invalid_scope", "scope is required."));
    }
    if !client.allows_scope(&scope) {
        return Err(fail(
            "invalid_scope",
            "The requested scope is not allowed for this client.",
        ));
    }
    let code_challenge = params.get("code_challenge").ok_or_else(|| {
        fail(
            "invalid_request",
            "PKCE is required: send code_challenge with code_challenge_method=S256.",
        )
    })?;
    if params.get("code_challenge_method") != Some("S256") {
        return Err(fail(
            "invalid_request",
            "code_challenge_method must be S256.",
        ));
    }
    if !valid_challenge(code_challenge) {
        return Err(fail(
            "invalid_request",
            "code_challenge must be 43 base64url characters.",
        ));
    }
    let nonce = params.get("nonce").map(str::to_owned);
    if nonce.as_ref().is_some_and(|n| n.len() > MAX_NONCE) {
        return Err(fail("invalid_request", "nonce is too long."));
    }
    let prompts: Vec<&str> = params
        .get("prompt")
        .unwrap_or("")
        .split(' ')
        .filter(|p| !p.is_empty())
        .collect();
    if prompts
        .iter()
        .any(|p| !["none", "login", "consent"].contains(p))
        || (prompts.contains(&"none") && prompts.len() > 1)
    {
        return Err(fail(
            "invalid_request",
            "prompt must be none, or any of login and consent.",
        ));
    }
    let max_age = match params.get("max_age") {
        None => None,
        Some(text) => Some(
            text.parse::<i64>()
                .ok()
                .filter(|v| *v >= 0)
                .ok_or_else(|| {
                    fail("invalid_request", "max_age must be a non-negative integer.")
                })?,
        ),
    };
    Ok(Request {
        client,
        redirect_uri,
        redirect_uri_sent,
        scope: scope.into_string(),
        state,
        nonce,
        code_challenge: code_challenge.to_owned(),
        max_age,
        prompt_none: prompts.contains(&"none"),
        prompt_login: prompts.contains(&"login"),
        prompt_consent: prompts.contains(&"consent"),
        login_hint: params.get("login_hint").map(|hint| {
            let mut end = hint.len().min(MAX_LOGIN_HINT);
            while !hint.is_char_boundary(end) {
                end -= 1;
            }
            hint[..end].to_owned()
        }),
    })
}

/// The browser's live session (and its user, if enabled).
async fn current_session(
    app: &AppState,
    request: &HttpRequest,
) -> Result<Option<(BrowserSessionRow, String)>, crate::db::DbError> {
    let Some(secret) = cookie_value(app, request, "session") else {
        return Ok(None);
    };
    let hash = SessionSecret::presented(secret).hash();
    app.db
        .run(move |conn| {
            let Some(session) = q::live_session(conn, hash.as_str(), now())? else {
                return Ok(None);
            };
            let user = user_q::find_by_id(conn, &session.user_id)?;
            Ok(user
                .filter(|u| u.disabled_at.is_none())
                .map(|u| (session, u.username)))
        })
        .await
}

/// The parameters of a GET (query) or POST (form body) request; an error page otherwise.
async fn query_or_form(
    app: &AppState,
    request: &HttpRequest,
    payload: web::Payload,
) -> Result<Params, HttpResponse> {
    let invalid = |text: &str| message(app, StatusCode::BAD_REQUEST, "Invalid request", text);
    if request.method() == actix_web::http::Method::POST {
        read_form(request, payload)
            .await
            .map_err(|error| invalid(&error.description))
    } else {
        Params::parse(request.query_string().as_bytes())
            .map_err(|_| invalid("A parameter was sent more than once or holds a NUL character."))
    }
}

/// `GET|POST /authorize`.
pub async fn authorize(
    app: web::Data<AppState>,
    request: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let params = match query_or_form(&app, &request, payload).await {
        Ok(params) => params,
        Err(page) => return page,
    };
    let authz = match validate(&app, &params) {
        Ok(authz) => authz,
        Err(Invalid::Page(text)) => {
            return message(&app, StatusCode::BAD_REQUEST, "Invalid request", text);
        }
        Err(Invalid::Redirect {
            redirect_uri,
            state,
            error,
            description,
        }) => return error_redirect(&app, &redirect_uri, state.as_deref(), error, description),
    };
    // A safe method changes nothing (LOGOUT-03): no code, no pending request, no cookie. The
    // request is valid; a browser would now see the sign-in.
    if request.method() == actix_web::http::Method::HEAD {
        return message(&app, StatusCode::OK, "Sign in", "Sign in to continue.");
    }
    let session = match current_session(&app, &request).await {
        Ok(session) => session,
        Err(error) => return failed(&app, error),
    };
    let fresh_enough = |s: &BrowserSessionRow| {
        authz
            .max_age
            .is_none_or(|max| (now() - s.auth_time).num_seconds() <= max)
    };
    let usable = session.filter(|(s, _)| !authz.prompt_login && fresh_enough(s));
    match usable {
        None if authz.prompt_none => error_redirect(
            &app,
            &authz.redirect_uri,
            authz.state.as_deref(),
            "login_required",
            "The user is not signed in.",
        ),
        None => start_login(&app, &request, &authz, None).await,
        Some((session, username)) => {
            let needs_consent = !authz.client.first_party || authz.prompt_consent;
            if needs_consent && authz.prompt_none {
                return error_redirect(
                    &app,
                    &authz.redirect_uri,
                    authz.state.as_deref(),
                    "consent_required",
                    "The user has not approved this application.",
                );
            }
            if needs_consent {
                return start_login(&app, &request, &authz, Some((&session, &username))).await;
            }
            issue_code(
                &app,
                &authz_into_row_parts(&authz),
                &session.user_id,
                session.auth_time,
                Some(session.sid.clone()),
            )
            .await
        }
    }
}

/// The parts of a request a code needs.
struct CodeParts {
    client_id: String,
    redirect_uri: String,
    redirect_uri_sent: bool,
    scope: String,
    state: Option<String>,
    nonce: Option<String>,
    code_challenge: String,
}

fn authz_into_row_parts(authz: &Request) -> CodeParts {
    CodeParts {
        client_id: authz.client.client_id.clone(),
        redirect_uri: authz.redirect_uri.clone(),
        redirect_uri_sent: authz.redirect_uri_sent,
        scope: authz.scope.clone(),
        state: authz.state.clone(),
        nonce: authz.nonce.clone(),
        code_challenge: authz.code_challenge.clone(),
    }
}

fn row_parts(row: &AuthorizationRequestRow) -> CodeParts {
    CodeParts {
        client_id: row.client_id.clone(),
        redirect_uri: row.redirect_uri.clone(),
        redirect_uri_sent: row.redirect_uri_sent != 0,
        scope: row.scope.clone(),
        state: row.state.clone(),
        nonce: row.nonce.clone(),
        code_challenge: row.code_challenge.clone(),
    }
}

/// Issues a code and sends the browser to the client with `code`, `state` and `iss` (303).
async fn issue_code(
    app: &AppState,
    parts: &CodeParts,
    user_id: &str,
    auth_time: NaiveDateTime,
    sid: Option<String>,
) -> HttpResponse {
    let code = match AuthorizationCode::generate() {
        Ok(code) => code,
        Err(error) => return failed(app, Fault::internal(error)),
    };
    let now = now();
    let row = AuthorizationCodeRow {
        code_hash: code.hash().into_string(),
        client_id: parts.client_id.clone(),
        user_id: user_id.to_owned(),
        redirect_uri: parts.redirect_uri.clone(),
        redirect_uri_sent: i32::from(parts.redirect_uri_sent),
        scope: parts.scope.clone(),
        nonce: parts.nonce.clone(),
        code_challenge: parts.code_challenge.clone(),
        auth_time,
        sid,
        created_at: now,
        expires_at: now + CODE_TTL,
        used_at: None,
        family_id: None,
        access_jti: None,
    };
    if let Err(error) = app
        .db
        .run(move |conn| Ok::<_, crate::db::DbError>(q::insert_code(conn, &row)?))
        .await
    {
        return failed(app, error);
    }
    let mut pairs = vec![("code", code.expose())];
    if let Some(state) = &parts.state {
        pairs.push(("state", state));
    }
    pairs.push(("iss", app.issuer.as_str()));
    see_other(&with_query(&parts.redirect_uri, &pairs))
}

/// Stores the pending request bound to this browser and shows the login page (or, for a
/// signed-in user, the consent page).
async fn start_login(
    app: &AppState,
    request: &HttpRequest,
    authz: &Request,
    signed_in: Option<(&BrowserSessionRow, &str)>,
) -> HttpResponse {
    let (flow, csrf, id) = match (
        FlowSecret::generate(),
        CsrfToken::generate(),
        random_identifier(),
    ) {
        (Ok(a), Ok(b), Ok(c)) => (a, b, c),
        _ => return failed(app, Fault::internal("no randomness")),
    };
    // One flow cookie per browser: an existing one is kept, so parallel tabs keep working.
    let flow = cookie_value(app, request, "flow")
        .filter(|v| v.len() == 43)
        .map_or(flow, FlowSecret::presented);
    let network = crate::accounts::network::network_of(client_ip(app, request));
    let row = AuthorizationRequestRow {
        id: id.clone(),
        browser_hash: flow.hash().into_string(),
        csrf_hash: csrf.hash().into_string(),
        client_id: authz.client.client_id.clone(),
        redirect_uri: authz.redirect_uri.clone(),
        redirect_uri_sent: i32::from(authz.redirect_uri_sent),
        scope: authz.scope.clone(),
        state: authz.state.clone(),
        nonce: authz.nonce.clone(),
        code_challenge: authz.code_challenge.clone(),
        max_age: authz.max_age.map(|m| i32::try_from(m).unwrap_or(i32::MAX)),
        force_login: i32::from(authz.prompt_login),
        user_id: signed_in.map(|(s, _)| s.user_id.clone()),
        auth_time: signed_in.map(|(s, _)| s.auth_time),
        expires_at: now() + REQUEST_TTL,
        completed_at: None,
    };
    // DOS-07: what an anonymous browser can make us store is bounded. A browser keeps its
    // newest requests (tabs); a network may hold only so many pending at once.
    let stored = app
        .db
        .run(move |conn| {
            write_transaction(conn, |conn| {
                let now = now();
                let key = format!("authorize:{network}");
                if throttle::spend(conn, &key, PENDING_PER_NETWORK, REQUEST_TTL, now)?.is_some() {
                    return Ok::<_, crate::db::DbError>(false);
                }
                q::trim_browser_requests(conn, &row.browser_hash, PENDING_PER_BROWSER - 1)?;
                q::insert_request(conn, &row)?;
                Ok(true)
            })
        })
        .await;
    match stored {
        Ok(true) => {}
        Ok(false) => {
            tracing::warn!("authorization request refused: too many pending from this network");
            let page = message(
                app,
                StatusCode::TOO_MANY_REQUESTS,
                "Too many sign-ins",
                "Too many sign-ins are waiting from your network. Finish or wait for one, then try again.",
            );
            return retry_after(page, 60);
        }
        Err(error) => return failed(app, error),
    }
    let body = match signed_in {
        Some((_, username)) => ConsentPage {
            base: app.issuer.path(),
            client_id: &authz.client.client_id,
            username,
            scopes: scope_tokens(&authz.scope).collect(),
            request_id: &id,
            csrf_token: csrf.expose(),
        }
        .render(),
        None => LoginPage {
            base: app.issuer.path(),
            client_id: &authz.client.client_id,
            request_id: &id,
            csrf_token: csrf.expose(),
            username: authz.login_hint.as_deref().unwrap_or(""),
            error: None,
        }
        .render(),
    };
    let mut response = page(app, StatusCode::OK, body);
    let _ = response.add_cookie(&cookie(app, "flow", flow.into_exposed(), None));
    response
}

/// A hosted-page form post (these routes take POST only) with the pending request it names, if
/// this browser started that request and the CSRF token matches.
async fn bound_form(
    app: &AppState,
    request: &HttpRequest,
    payload: web::Payload,
) -> Result<(Params, AuthorizationRequestRow), HttpResponse> {
    let params = query_or_form(app, request, payload).await?;
    let row = bound_request(app, request, &params).await?;
    Ok((params, row))
}

/// The pending request a form names, if this browser started it and the CSRF token matches.
async fn bound_request(
    app: &AppState,
    request: &HttpRequest,
    params: &Params,
) -> Result<AuthorizationRequestRow, HttpResponse> {
    let forbidden = || {
        message(
            app,
            StatusCode::FORBIDDEN,
            "Request refused",
            "This form does not belong to a sign-in started in this browser. Start again from the application.",
        )
    };
    let (Some(id), Some(csrf), Some(flow)) = (
        params.get("request_id").map(str::to_owned),
        params.get("csrf_token"),
        cookie_value(app, request, "flow"),
    ) else {
        return Err(forbidden());
    };
    let row = app
        .db
        .run(move |conn| Ok::<_, crate::db::DbError>(q::pending_request(conn, &id, now())?))
        .await
        .map_err(|error| failed(app, error))?;
    let Some(row) = row else {
        return Err(message(
            app,
            StatusCode::BAD_REQUEST,
            "Sign-in expired",
            "This sign-in request has expired or was completed. Start again from the application.",
        ));
    };
    // Both compared in constant time.
    if !FlowSecret::presented(flow)
        .hash()
        .matches(&row.browser_hash)
        || !CsrfToken::presented(csrf).hash().matches(&row.csrf_hash)
    {
        tracing::warn!(client_id = %row.client_id, "authorization form refused: browser binding or CSRF token mismatch");
        return Err(forbidden());
    }
    Ok(row)
}

/// `POST /authorize/login`: checks the password (throttled), starts a browser session (a new
/// cookie value every time, LOGIN-03), then consent or the code.
pub async fn login(
    app: web::Data<AppState>,
    request: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let (params, row) = match bound_form(&app, &request, payload).await {
        Ok(bound) => bound,
        Err(page) => return page,
    };
    let username = params.get("username").unwrap_or("").to_owned();
    let password = params.get("password").unwrap_or("").as_bytes().to_vec();
    let rerender = |status: StatusCode, error: &str| {
        // The same request and CSRF token stay valid for another attempt.
        let csrf = params.get("csrf_token").unwrap_or("");
        page(
            &app,
            status,
            LoginPage {
                base: app.issuer.path(),
                client_id: &row.client_id,
                request_id: &row.id,
                csrf_token: csrf,
                username: &username,
                error: Some(error),
            }
            .render(),
        )
    };
    if password.len() > crate::accounts::names::MAX_PASSWORD_BYTES {
        return rerender(
            StatusCode::UNAUTHORIZED,
            "The username or password is incorrect.",
        );
    }
    let device = cookie_value(&app, &request, "device");
    let authenticated = match app
        .authenticator
        .authenticate(
            username.clone(),
            password,
            client_ip(&app, &request),
            device,
        )
        .await
    {
        Ok(authenticated) => authenticated,
        Err(AuthError::InvalidCredentials) => {
            return rerender(
                StatusCode::UNAUTHORIZED,
                "The username or password is incorrect.",
            );
        }
        Err(AuthError::Throttled(seconds)) => {
            let page = rerender(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many attempts. Wait a while, then try again.",
            );
            return retry_after(page, seconds);
        }
        Err(error) => return failed(&app, error),
    };
    let user = authenticated.user.clone();
    let new_device = authenticated.new_device().map(str::to_owned);
    // A new session, whatever cookie came in: an old session of this browser ends.
    let (secret, sid) = match (SessionSecret::generate(), random_identifier()) {
        (Ok(a), Ok(b)) => (a, b),
        _ => return failed(&app, Fault::internal("no randomness")),
    };
    let auth_time = now();
    let session = BrowserSessionRow {
        id_hash: secret.hash().into_string(),
        sid: sid.clone(),
        user_id: user.id.clone(),
        auth_time,
        created_at: auth_time,
        expires_at: auth_time + SESSION_TTL,
        ended_at: None,
    };
    let old = cookie_value(&app, &request, "session").map(|v| SessionSecret::presented(v).hash());
    let client = app.clients.get(&row.client_id);
    let needs_consent = client.as_ref().is_none_or(|c| !c.first_party);
    let (request_id, user_id) = (row.id.clone(), user.id.clone());
    let stored = app
        .db
        .run(move |conn| {
            write_transaction(conn, |conn| {
                authenticated.forgive(conn)?;
                if let Some(old) = old {
                    q::end_session(conn, old.as_str(), auth_time)?;
                }
                q::insert_session(conn, &session)?;
                if needs_consent {
                    q::authenticate_request(conn, &request_id, &user_id, auth_time)?;
                    Ok::<_, crate::db::DbError>(true)
                } else {
                    Ok(q::complete_request(conn, &request_id, auth_time)? == 1)
                }
            })
        })
        .await;
    let proceed = match stored {
        Ok(proceed) => proceed,
        Err(error) => return failed(&app, error),
    };
    tracing::info!(user_id = %user.id, client_id = %row.client_id, "signed in at the hosted page");
    let mut response = if !proceed {
        message(
            &app,
            StatusCode::BAD_REQUEST,
            "Sign-in expired",
            "This sign-in request was already completed.",
        )
    } else if needs_consent {
        let csrf = params.get("csrf_token").unwrap_or("");
        page(
            &app,
            StatusCode::OK,
            ConsentPage {
                base: app.issuer.path(),
                client_id: &row.client_id,
                username: &user.username,
                scopes: scope_tokens(&row.scope).collect(),
                request_id: &row.id,
                csrf_token: csrf,
            }
            .render(),
        )
    } else {
        issue_code(&app, &row_parts(&row), &user.id, auth_time, Some(sid)).await
    };
    let max_age = SESSION_TTL.num_seconds();
    let _ = response.add_cookie(&cookie(
        &app,
        "session",
        secret.into_exposed(),
        Some(max_age),
    ));
    if let Some(device) = new_device {
        let trust = i64::try_from(sessions::DEVICE_TRUST.as_secs()).unwrap_or(i64::MAX);
        let _ = response.add_cookie(&cookie(&app, "device", device, Some(trust)));
    }
    response
}

/// `POST /authorize/consent`: approve issues the code; deny redirects with `access_denied`.
pub async fn consent(
    app: web::Data<AppState>,
    request: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let (params, row) = match bound_form(&app, &request, payload).await {
        Ok(bound) => bound,
        Err(page) => return page,
    };
    // Consent is given by the signed-in user of this browser, for the user who authenticated.
    let session = match current_session(&app, &request).await {
        Ok(session) => session,
        Err(error) => return failed(&app, error),
    };
    let (Some((session, _)), Some(user_id), Some(auth_time)) =
        (session, row.user_id.clone(), row.auth_time)
    else {
        return message(
            &app,
            StatusCode::FORBIDDEN,
            "Request refused",
            "Sign in first.",
        );
    };
    if session.user_id != user_id {
        return message(
            &app,
            StatusCode::FORBIDDEN,
            "Request refused",
            "Sign in first.",
        );
    }
    let approve = match params.get("decision") {
        Some("approve") => true,
        Some("deny") => false,
        _ => {
            return message(
                &app,
                StatusCode::BAD_REQUEST,
                "Invalid request",
                "Choose Allow or Deny.",
            );
        }
    };
    let id = row.id.clone();
    let completed = app
        .db
        .run(move |conn| Ok::<_, crate::db::DbError>(q::complete_request(conn, &id, now())?))
        .await;
    match completed {
        Ok(1) => {}
        Ok(_) => {
            return message(
                &app,
                StatusCode::BAD_REQUEST,
                "Sign-in expired",
                "This sign-in request was already completed.",
            );
        }
        Err(error) => return failed(&app, error),
    }
    if !approve {
        tracing::info!(%user_id, client_id = %row.client_id, "consent denied");
        return error_redirect(
            &app,
            &row.redirect_uri,
            row.state.as_deref(),
            "access_denied",
            "The user denied the request.",
        );
    }
    issue_code(
        &app,
        &row_parts(&row),
        &user_id,
        auth_time,
        Some(session.sid),
    )
    .await
}

#[derive(Template)]
#[template(path = "logout.html")]
struct LogoutPage<'a> {
    base: &'a str,
    username: &'a str,
    client_id: Option<&'a str>,
    post_logout_redirect_uri: Option<&'a str>,
    state: Option<&'a str>,
    csrf_token: &'a str,
}

/// The CSRF token of the logout confirmation: derived from the browser's session secret (which
/// is an HttpOnly cookie no other site can read), so it needs no storage and is bound to the one
/// session it ends.
fn logout_csrf(session: &SessionSecret) -> CsrfToken {
    CsrfToken::bound_to(session, "logout-confirmation")
}

/// `GET|HEAD|POST /logout` (RP-Initiated Logout 1.0): ends this browser's session and every
/// grant made in it; redirects only to a registered `post_logout_redirect_uri` of the client
/// named by a valid `id_token_hint` (or `client_id`).
///
/// Logout is a state change, so it is never done on the strength of a navigation alone
/// (LOGOUT-01): the session ends at once only when a valid `id_token_hint` names this
/// browser's own session (its `sid`, or its user when the token has no `sid`); otherwise the
/// user is asked, on a page that posts back with a CSRF token bound to the session. A request
/// without this browser's session cookie ends no session, whatever ID token it carries
/// (LOGOUT-02). `HEAD` changes nothing (LOGOUT-03).
pub async fn logout(
    app: web::Data<AppState>,
    request: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    if request.method() == actix_web::http::Method::HEAD {
        return message(
            &app,
            StatusCode::OK,
            "Sign out",
            "Sign out of your account.",
        );
    }
    let params = match query_or_form(&app, &request, payload).await {
        Ok(params) => params,
        Err(page) => return page,
    };
    let hint = match params.get("id_token_hint") {
        None => None,
        Some(token) => match app.tokens.verify_id_token_hint(token).await {
            Some(claims) => Some(claims),
            None => {
                return message(
                    &app,
                    StatusCode::BAD_REQUEST,
                    "Invalid request",
                    "The id_token_hint is not valid.",
                );
            }
        },
    };
    let client_id = match (
        params.get("client_id"),
        hint.as_ref().map(|h| h.aud.as_ref()),
    ) {
        (Some(a), Some(b)) if a != b => {
            return message(
                &app,
                StatusCode::BAD_REQUEST,
                "Invalid request",
                "client_id does not match the id_token_hint.",
            );
        }
        (Some(a), _) => Some(a.to_owned()),
        (None, b) => b.map(str::to_owned),
    };
    let redirect = match params.get("post_logout_redirect_uri") {
        None => None,
        Some(uri) => {
            let registered = client_id
                .as_deref()
                .and_then(|id| app.clients.get(id))
                .is_some_and(|c| c.post_logout_redirect_uris.iter().any(|r| r == uri));
            if !registered {
                return message(
                    &app,
                    StatusCode::BAD_REQUEST,
                    "Invalid request",
                    "The post_logout_redirect_uri is not registered for this application.",
                );
            }
            Some(uri.to_owned())
        }
    };
    let state = params.get("state").filter(|s| s.len() <= MAX_STATE);
    let finish = |app: &AppState| {
        let mut response = match &redirect {
            Some(uri) => {
                let location = match state {
                    Some(state) => with_query(uri, &[("state", state)]),
                    None => uri.clone(),
                };
                see_other(&location)
            }
            None => message(app, StatusCode::OK, "Signed out", "You are signed out."),
        };
        let mut gone = cookie(app, "session", String::new(), Some(0));
        gone.make_removal();
        let _ = response.add_cookie(&gone);
        response
    };
    let Some(secret) = cookie_value(&app, &request, "session").map(SessionSecret::presented) else {
        // No session in this browser: nothing to end (and a hint's sid ends nothing).
        return finish(&app);
    };
    let session = match current_session(&app, &request).await {
        Ok(session) => session,
        Err(error) => return failed(&app, error),
    };
    let Some((session, username)) = session else {
        return finish(&app);
    };
    let hint_matches = hint.as_ref().is_some_and(|h| match &h.sid {
        Some(sid) => *sid == session.sid,
        None => h.sub == session.user_id,
    });
    // Compared in constant time.
    let confirmed = request.method() == actix_web::http::Method::POST
        && params
            .get("csrf_token")
            .is_some_and(|token| logout_csrf(&secret).matches(token));
    if confirmed && params.get("decision") == Some("stay") {
        return message(
            &app,
            StatusCode::OK,
            "Still signed in",
            "You are still signed in.",
        );
    }
    if !hint_matches && !confirmed {
        let csrf = logout_csrf(&secret);
        return page(
            &app,
            StatusCode::OK,
            LogoutPage {
                base: app.issuer.path(),
                username: &username,
                client_id: client_id.as_deref(),
                post_logout_redirect_uri: redirect.as_deref(),
                state,
                csrf_token: csrf.expose(),
            }
            .render(),
        );
    }
    let now = now();
    let hash = secret.hash();
    let ended = app
        .db
        .run(move |conn| {
            write_transaction(conn, |conn| {
                if let Some(sid) = q::end_session(conn, hash.as_str(), now)? {
                    refresh_q::revoke_session_families(conn, &sid, "logout", now)?;
                }
                Ok::<_, crate::db::DbError>(())
            })
        })
        .await;
    if let Err(error) = ended {
        return failed(&app, error);
    }
    tracing::info!(user_id = %session.user_id, "signed out");
    finish(&app)
}
