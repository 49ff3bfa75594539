//! The authorization endpoint and the hosted login, consent and logout pages, HTTP side
//! (RFC 6749 §4.1, OIDC Core §3.1.2, RP-Initiated Logout 1.0): parameters and cookies in,
//! pages, redirects, cookies and headers out. What the protocol decides — validation, single
//! sign-on, the pending request bound to this browser, codes, logout — is in
//! [`crate::oidc::authorize`] and [`crate::oidc::logout`]; each handler here maps their outcomes.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::StatusCode;
use actix_web::http::header::LOCATION;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use chrono::NaiveDateTime;

use super::auth_api::client_ip;
use super::oauth::read_form;
use crate::accounts::browser_sessions::{self, NewSession, SESSION_TTL, SignedIn};
use crate::accounts::factors::{
    self, FactorStatus, SIGNED_IN_WITH_PASSWORD, SIGNED_IN_WITH_PASSWORD_AND_OTP,
    SecondFactorPolicy, SecondStep,
};
use crate::accounts::network::network_of;
use crate::accounts::passkeys::PasskeyError;
use crate::accounts::sessions::{self, AuthError, Authenticated};
use crate::db::DbError;
use crate::http::error::{self, Fault};
use crate::oidc::apis::ScopeLine;
use crate::oidc::authorize::pending::{self, Binding, PendingRequest, Start};
use crate::oidc::authorize::{
    self, AuthorizationRequest, AuthorizationResponse, CodeGrant, ConsentOutcome, Outcome,
};
use crate::oidc::claims_request::RequestedClaims;
use crate::oidc::consent::{self, Remembered};
use crate::oidc::logout::{self, Confirmation, IdTokenHint, LogoutOutcome};
use crate::oidc::params::Params;
use crate::secrets::{CsrfToken, FlowSecret, SessionSecret};
use crate::state::AppState;
use crate::verify::Scope;

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    /// The issuer's path, which the form action is under.
    base: &'a str,
    client_id: &'a str,
    /// The host of the client's metadata document, when its id is one's URL.
    document_host: Option<String>,
    /// What the client registered about itself.
    about: About,
    request_id: &'a str,
    csrf_token: &'a str,
    username: &'a str,
    error: Option<&'a str>,
    /// Offer "Sign in with a passkey" (passkeys are available for this issuer).
    passkeys: bool,
}

/// The second step of a sign-in: a TOTP or recovery code, or a passkey.
#[derive(Template)]
#[template(path = "second_factor.html")]
struct SecondFactorPage<'a> {
    /// The issuer's path, which the form action is under.
    base: &'a str,
    client_id: &'a str,
    username: &'a str,
    request_id: &'a str,
    csrf_token: &'a str,
    error: Option<&'a str>,
    /// The user has an authenticator app: the code form.
    totp: bool,
    /// The user has passkeys (and they are available): the passkey button.
    passkey: bool,
}

/// The enrolment of an authenticator app: its QR code (inline SVG) and key, and the form for
/// its first code; in a sign-in (`request_id`, `client_id`) or on the account page.
#[derive(Template)]
#[template(path = "totp_enrol.html")]
pub(super) struct TotpEnrolPage<'a> {
    /// Where the form posts.
    pub action: &'a str,
    /// The client of the sign-in, if in one.
    pub client_id: Option<&'a str>,
    /// The user.
    pub username: &'a str,
    /// The pending request of the sign-in, if in one.
    pub request_id: Option<&'a str>,
    /// The form's CSRF token.
    pub csrf_token: &'a str,
    /// The QR code of the `otpauth://` URI, as SVG (drawn by the server from its own data).
    pub qr_svg: &'a str,
    /// The key, base32.
    pub secret: &'a str,
    /// What went wrong with the last code.
    pub error: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "consent.html")]
struct ConsentPage<'a> {
    /// The issuer's path, which the form action is under.
    base: &'a str,
    client_id: &'a str,
    /// The host of the client's metadata document, when its id is one's URL.
    document_host: Option<String>,
    /// What the client registered about itself.
    about: About,
    username: &'a str,
    /// The requested scopes not approved before; API scopes with their description.
    scopes: Vec<ScopeLine>,
    /// The requested scopes approved before (shown again under `prompt=consent`).
    granted: Vec<ScopeLine>,
    /// The claims asked for beyond the scopes (the `claims` parameter, OIDC Core §5.5) not
    /// approved before.
    claims: Vec<&'a str>,
    /// Those approved before.
    granted_claims: Vec<&'a str>,
    request_id: &'a str,
    csrf_token: &'a str,
}

/// What a client registered about itself (RFC 7591 §2), for the login and consent pages: its
/// name (marked unverified for a dynamically registered client, whose name nobody checked),
/// links to its privacy policy and terms, and its logo when one was fetched and accepted at
/// registration — from our own origin (`{issuer path}/clients/{client_id}/logo`, allowed by
/// `img-src 'self'`), never from `logo_uri`: the pages load nothing from other origins
/// (AUTHZ-11).
#[derive(Default)]
struct About {
    name: Option<String>,
    policy_uri: Option<String>,
    tos_uri: Option<String>,
    /// The path of the stored logo.
    logo: Option<String>,
    unverified: bool,
}

impl About {
    fn of(app: &AppState, client_id: &str) -> Self {
        app.clients
            .get(client_id)
            .map(|client| Self {
                name: client.display.client_name.clone(),
                policy_uri: client.display.policy_uri.clone(),
                tos_uri: client.display.tos_uri.clone(),
                // Registered client ids are `[A-Za-z0-9-._~]`: a path segment as they are.
                logo: client
                    .has_logo()
                    .then(|| format!("{}/clients/{}/logo", app.issuer.path(), client.client_id)),
                unverified: client.is_dynamic(),
            })
            .unwrap_or_default()
    }
}

/// What the consent page asks about: the request's scope (validated text) and the claims it
/// asks for individually.
struct Asked<'a> {
    scope: &'a str,
    claims: &'a RequestedClaims,
}

/// The consent page for `asked`, what was `consented` before set apart from the new: scopes, and
/// the claims asked for beyond them.
fn consent_page(
    app: &AppState,
    client_id: &str,
    username: &str,
    asked: Asked<'_>,
    consented: Option<&Remembered>,
    request_id: &str,
    csrf_token: &str,
) -> Result<String, askama::Error> {
    let (granted, scopes): (Vec<&str>, Vec<&str>) = crate::verify::scope::tokens(asked.scope)
        .partition(|scope| consented.is_some_and(|c| c.scope.contains(scope)));
    // Validated before the request was stored; one that no longer parses asks for no claim
    // beyond the scopes it cannot name (every asked claim is listed).
    let scope = Scope::parse(asked.scope).unwrap_or_default();
    let (claims, granted_claims) = consent::claims_split(consented, &scope, asked.claims);
    let apis = app.apis.current();
    ConsentPage {
        base: app.issuer.path(),
        about: About::of(app, client_id),
        client_id,
        document_host: crate::oidc::client_metadata::document_host(client_id),
        username,
        scopes: apis.describe(scopes),
        granted: apis.describe(granted),
        claims,
        granted_claims,
        request_id,
        csrf_token,
    }
    .render()
}

#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage<'a> {
    title: &'a str,
    message: &'a str,
    is_error: bool,
}

/// The page of a `form_post` response (OAuth 2.0 Form Post Response Mode §2): a form that
/// posts the response parameters to the redirect URI, submitted by [`FORM_POST_SCRIPT`], with a
/// button when scripts are off.
#[derive(Template)]
#[template(path = "form_post.html")]
struct FormPostPage<'a> {
    /// The verified redirect URI.
    action: &'a str,
    /// The response parameters.
    fields: &'a [(&'static str, String)],
    /// [`FORM_POST_SCRIPT`], the page's only script.
    script: &'static str,
}

/// The script of the `form_post` page, allowed by its hash alone (`script-src 'sha256-…'`).
const FORM_POST_SCRIPT: &str = r#"document.getElementById("response").submit();"#;

/// The Content-Security-Policy source of [`FORM_POST_SCRIPT`]: `'sha256-<base64>'` (CSP3 §2.3.1).
fn form_post_script_hash() -> String {
    use base64::Engine;
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, FORM_POST_SCRIPT.as_bytes());
    format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD.encode(digest.as_ref())
    )
}

/// The `form-action` source that allows posting to `action` (a verified redirect URI) and
/// nowhere else the CSP grammar can tell apart (CSP3 §2.3.1): scheme, host, port and path, the
/// query left out (a source has none). A host the grammar cannot name (an IPv6 literal) or a
/// path holding `;` or `,` (CSP separators) falls back to the scheme alone.
pub(super) fn form_action_source(action: &str) -> String {
    let Ok(url) = url::Url::parse(action) else {
        return "'none'".to_owned();
    };
    let scheme = url.scheme();
    let host = match url.host() {
        Some(url::Host::Domain(domain)) => Some(domain.to_owned()),
        Some(url::Host::Ipv4(ip)) => Some(ip.to_string()),
        Some(url::Host::Ipv6(_)) | None => None,
    };
    let path = url.path();
    match host {
        Some(host) if !path.contains([';', ',']) => {
            let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
            format!("{scheme}://{host}{port}{path}")
        }
        _ => format!("{scheme}:"),
    }
}

/// Sends the browser to the client with an authorization response: a `303` (query mode) or
/// the self-submitting page (form_post), under a CSP that runs only its script and posts only
/// to the redirect URI.
fn deliver(state: &AppState, response: AuthorizationResponse) -> HttpResponse {
    match response {
        AuthorizationResponse::Redirect(location) => see_other(&location),
        AuthorizationResponse::FormPost { action, fields } => {
            let csp = format!(
                "default-src 'none'; script-src {}; style-src 'unsafe-inline'; form-action {}; frame-ancestors 'none'; base-uri 'none'",
                form_post_script_hash(),
                form_action_source(&action)
            );
            let body = FormPostPage {
                action: &action,
                fields: &fields,
                script: FORM_POST_SCRIPT,
            }
            .render();
            page_with_csp(state, StatusCode::OK, &csp, body)
        }
    }
}

/// The CSP of every hosted page: nothing loads, nothing runs, no framing.
pub(super) const PAGE_CSP: &str =
    "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'";

/// The CSP of the login and consent pages: [`PAGE_CSP`], and images from our own origin only
/// (the client's logo as we stored it; AUTHZ-11: nothing from other origins).
const CLIENT_PAGE_CSP: &str = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'";

/// [`page`] for the login and consent pages, which may show the client's logo
/// ([`CLIENT_PAGE_CSP`]).
fn client_page(
    state: &AppState,
    status: StatusCode,
    body: Result<String, askama::Error>,
) -> HttpResponse {
    page_with_csp(state, status, CLIENT_PAGE_CSP, body)
}

/// Headers of every page: no framing (HDR-01), no referrer, no caching, no sniffing.
pub(super) fn page(
    state: &AppState,
    status: StatusCode,
    body: Result<String, askama::Error>,
) -> HttpResponse {
    page_with_csp(state, status, PAGE_CSP, body)
}

/// [`page`] with its own Content-Security-Policy.
pub(super) fn page_with_csp(
    state: &AppState,
    status: StatusCode,
    csp: &str,
    body: Result<String, askama::Error>,
) -> HttpResponse {
    let mut response = HttpResponse::build(status);
    response
        .content_type("text/html; charset=utf-8")
        .insert_header(("Content-Security-Policy", csp))
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

pub(super) fn message(
    state: &AppState,
    status: StatusCode,
    title: &str,
    text: &str,
) -> HttpResponse {
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
pub(super) fn retry_after(mut response: HttpResponse, seconds: u64) -> HttpResponse {
    response.headers_mut().insert(
        actix_web::http::header::RETRY_AFTER,
        actix_web::http::header::HeaderValue::from(seconds),
    );
    response
}

/// The page of a server-side failure: 503 + `Retry-After` when transient, else 500
/// (`http::error`'s policy; the cause is logged there).
pub(super) fn failed(state: &AppState, fault: impl Into<Fault>) -> HttpResponse {
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

pub(super) fn cookie(
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

pub(super) fn cookie_value(
    state: &AppState,
    request: &HttpRequest,
    base: &'static str,
) -> Option<String> {
    request
        .cookie(&cookie_name(state, base))
        .map(|c| c.value().to_owned())
}

pub(super) fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((LOCATION, location))
        .insert_header(("Cache-Control", "no-store"))
        .insert_header(("Referrer-Policy", "no-referrer"))
        .finish()
}

/// The browser's signed-in user, from its session cookie.
pub(super) async fn current_session(
    app: &AppState,
    request: &HttpRequest,
    now: NaiveDateTime,
) -> Result<Option<SignedIn>, DbError> {
    let Some(secret) = cookie_value(app, request, "session").map(SessionSecret::presented) else {
        return Ok(None);
    };
    browser_sessions::signed_in(&app.db, &secret, now).await
}

/// The parameters of a GET (query) or POST (form body) request; an error page otherwise.
pub(super) async fn query_or_form(
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
    let now = app.clock.now_naive();
    // A client ID metadata document is fetched (or taken from the cache) before the request is
    // checked against its client; one that cannot be used ends the request here (§4.3).
    let document_client = match params.get("client_id") {
        Some(id) if app.clients.get(id).is_none() => {
            match crate::http::oauth::find_client(&app, id).await {
                Ok(found) => found,
                Err(error) => {
                    tracing::warn!(%error, "client ID metadata document refused");
                    return message(
                        &app,
                        StatusCode::BAD_REQUEST,
                        "Unknown client",
                        "The client's metadata document could not be fetched or is not valid.",
                    );
                }
            }
        }
        _ => None,
    };
    let lookup = |id: &str| app.clients.get(id).or_else(|| document_client.clone());
    // A request object (OIDC Core §6) is applied first: its parameters supersede the outer ones.
    let params = match authorize::request_object::resolve(
        params,
        lookup,
        &app.request_objects,
        app.issuer.as_str(),
        app.clock.now().timestamp(),
    )
    .await
    {
        Ok(params) => params,
        Err(rejection) => return respond(&app, &request, rejection.into(), None, now).await,
    };
    let mut authz = match authorize::parse(&params, lookup, &app.apis.current()) {
        Ok(authz) => authz,
        Err(rejection) => return respond(&app, &request, rejection.into(), None, now).await,
    };
    // A `claims` request's `sub` names the user as this client knows them (pairwise or not);
    // one that names nobody it knows becomes the empty `sub`, which no user has.
    if let Some(asked) = authz.claims.sub.take() {
        authz.claims.sub = Some(
            app.tokens
                .requested_user(&authz.client, &asked)
                .unwrap_or_default(),
        );
    }
    // A second factor required for this client (its policy or the deployment's) is asked of
    // every sign-in for it: a session without one does not count (no bypass through SSO or
    // prompt=none).
    if app
        .account_settings
        .second_factor
        .strictest(authz.client.second_factor)
        == SecondFactorPolicy::Required
    {
        authz.claims.mfa = true;
    }
    // A safe method changes nothing (LOGOUT-03): no code, no pending request, no cookie. The
    // request is valid; a browser would now see the sign-in.
    if request.method() == actix_web::http::Method::HEAD {
        return message(&app, StatusCode::OK, "Sign in", "Sign in to continue.");
    }
    let session = match current_session(&app, &request, now).await {
        Ok(session) => session,
        Err(error) => return failed(&app, error),
    };
    let consented = match &session {
        Some(signed_in) => {
            let (user_id, client_id) = (signed_in.user_id.clone(), authz.client.client_id.clone());
            match consent::remembered(&app.db, user_id, client_id).await {
                Ok(consented) => consented,
                Err(error) => return failed(&app, error),
            }
        }
        None => None,
    };
    let outcome = authorize::decide(authz, session, consented.as_ref(), now);
    respond(&app, &request, outcome, consented.as_ref(), now).await
}

/// The response to an outcome of the authorization endpoint (`consented`: what the signed-in
/// user approved the client before, set apart on the consent page).
async fn respond(
    app: &AppState,
    request: &HttpRequest,
    outcome: Outcome,
    consented: Option<&Remembered>,
    now: NaiveDateTime,
) -> HttpResponse {
    match outcome {
        Outcome::ErrorPage(text) => message(app, StatusCode::BAD_REQUEST, "Invalid request", text),
        Outcome::RedirectError(redirect) => deliver(app, redirect.response(app.issuer.as_str())),
        Outcome::ShowLogin(authz) => start_pending(app, request, &authz, None, None, now).await,
        Outcome::ShowConsent(authz, session) => {
            start_pending(app, request, &authz, Some(&session), consented, now).await
        }
        Outcome::IssueCode(grant) => send_code(app, grant, now).await,
    }
}

/// Issues a code and sends the browser to the client with `code`, `state` and `iss` (a `303`,
/// or the form_post page).
async fn send_code(app: &AppState, grant: CodeGrant, now: NaiveDateTime) -> HttpResponse {
    match authorize::issue_code(&app.db, grant, now).await {
        Ok(redirect) => deliver(app, redirect.response(app.issuer.as_str())),
        Err(error) => failed(app, error),
    }
}

/// Keeps the request pending, bound to this browser (the flow cookie), and shows the login page
/// (or, for a signed-in user, the consent page).
pub(super) async fn start_pending(
    app: &AppState,
    request: &HttpRequest,
    authz: &AuthorizationRequest,
    signed_in: Option<&SignedIn>,
    consented: Option<&Remembered>,
    now: NaiveDateTime,
) -> HttpResponse {
    let network = network_of(client_ip(app, request));
    let flow = cookie_value(app, request, "flow");
    let started = match pending::start(&app.db, authz, flow, signed_in, &network, now).await {
        Ok(Start::Pending(started)) => started,
        Ok(Start::TooManyPending) => {
            let page = message(
                app,
                StatusCode::TOO_MANY_REQUESTS,
                "Too many sign-ins",
                "Too many sign-ins are waiting from your network. Finish or wait for one, then try again.",
            );
            return retry_after(page, 60);
        }
        Err(error) => return failed(app, error),
    };
    let body = match signed_in {
        Some(session) => consent_page(
            app,
            &authz.client.client_id,
            &session.username,
            Asked {
                scope: authz.scope.as_str(),
                claims: &authz.claims,
            },
            consented,
            &started.request_id,
            started.csrf_token.expose(),
        ),
        None => LoginPage {
            base: app.issuer.path(),
            about: About::of(app, &authz.client.client_id),
            client_id: &authz.client.client_id,
            document_host: crate::oidc::client_metadata::document_host(&authz.client.client_id),
            request_id: &started.request_id,
            csrf_token: started.csrf_token.expose(),
            username: authz.login_hint.as_deref().unwrap_or(""),
            error: None,
            passkeys: app.passkeys.available(),
        }
        .render(),
    };
    let mut response = client_page(app, StatusCode::OK, body);
    let _ = response.add_cookie(&cookie(
        app,
        "flow",
        started.flow_secret.into_exposed(),
        None,
    ));
    response
}

/// A hosted-page form post (these routes take POST only) with the pending request it names, if
/// this browser started that request and the CSRF token matches.
async fn bound_form(
    app: &AppState,
    request: &HttpRequest,
    payload: web::Payload,
    now: NaiveDateTime,
) -> Result<(Params, PendingRequest), HttpResponse> {
    let params = query_or_form(app, request, payload).await?;
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
    let (flow, csrf) = (FlowSecret::presented(flow), CsrfToken::presented(csrf));
    match pending::bound(&app.db, id, &flow, &csrf, now).await {
        Ok(Binding::Bound(pending)) => Ok((params, *pending)),
        Ok(Binding::Expired) => Err(message(
            app,
            StatusCode::BAD_REQUEST,
            "Sign-in expired",
            "This sign-in request has expired or was completed. Start again from the application.",
        )),
        Ok(Binding::Refused) => Err(forbidden()),
        Err(error) => Err(failed(app, error)),
    }
}

/// The client a pending request names: a registered one, or the account page's own sign-in
/// ([`authorize::account::console`]; never in the registry, so never accepted from a browser
/// at the authorization endpoint).
async fn client_of(
    app: &AppState,
    client_id: &str,
) -> Option<std::sync::Arc<crate::oidc::clients::Client>> {
    if client_id == crate::accounts::sessions::FIRST_PARTY_CLIENT_ID {
        return Some(std::sync::Arc::new(authorize::account::console(
            app.issuer.as_str(),
        )));
    }
    crate::http::oauth::find_client(app, client_id)
        .await
        .ok()
        .flatten()
}

/// `POST /authorize/login`: checks the password (throttled), starts a browser session (a new
/// cookie value every time, LOGIN-03), then consent or the code.
pub async fn login(
    app: web::Data<AppState>,
    request: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let (params, pending) = match bound_form(&app, &request, payload, app.clock.now_naive()).await {
        Ok(bound) => bound,
        Err(page) => return page,
    };
    let username = params.get("username").unwrap_or("").to_owned();
    let password = params.get("password").unwrap_or("").as_bytes().to_vec();
    let rerender = |status: StatusCode, error: &str| {
        // The same request and CSRF token stay valid for another attempt.
        let csrf = params.get("csrf_token").unwrap_or("");
        client_page(
            &app,
            status,
            LoginPage {
                base: app.issuer.path(),
                about: About::of(&app, &pending.request.client_id),
                client_id: &pending.request.client_id,
                document_host: crate::oidc::client_metadata::document_host(
                    &pending.request.client_id,
                ),
                request_id: &pending.id,
                csrf_token: csrf,
                username: &username,
                error: Some(error),
                passkeys: app.passkeys.available(),
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
    // OIDC Core §5.5.1: a request limited to one user (a `sub` `value` in `claims`) is answered
    // for that user only: a sign-in as another is refused, and no session starts.
    if !pending.request.claims.allows_subject(&user.id) {
        tracing::info!(user_id = %user.id, client_id = %pending.request.client_id, "sign-in refused: the request names another user (claims sub)");
        return rerender(
            StatusCode::FORBIDDEN,
            "This application asked for another account. Sign in with that account.",
        );
    }
    let new_device = authenticated.new_device().map(str::to_owned);
    // The second factor (issue 17): what this sign-in owes after the password.
    let step = match owed_step(&app, &pending, &user.id).await {
        Ok(step) => step,
        Err(page) => return page,
    };
    if step != SecondStep::None {
        let at = app.clock.now_naive();
        match pending::await_second_factor(&app.db, pending.id.clone(), authenticated, at).await {
            Ok(true) => {}
            Ok(false) => return already_completed(&app),
            Err(error) => return failed(&app, error),
        }
        let csrf = params.get("csrf_token").unwrap_or("");
        let mut response = second_step_page(
            &app,
            &pending,
            (&user.id, &user.username),
            step,
            csrf,
            (StatusCode::OK, None),
        )
        .await;
        if let Some(device) = new_device {
            let trust = i64::try_from(sessions::DEVICE_TRUST.as_secs()).unwrap_or(i64::MAX);
            let _ = response.add_cookie(&cookie(&app, "device", device, Some(trust)));
        }
        return response;
    }
    let csrf = params.get("csrf_token").unwrap_or("").to_owned();
    let signed_in = SignInDone {
        user_id: user.id.clone(),
        username: user.username.clone(),
        authenticated: Some(authenticated),
        amr: SIGNED_IN_WITH_PASSWORD,
        new_device,
    };
    finish_sign_in(&app, &request, &csrf, &pending, signed_in).await
}

/// A sign-in at the hosted pages that is complete: the user, the password attempt to take back
/// (when the password was the last step), how the user signed in and a new device cookie.
struct SignInDone {
    user_id: String,
    username: String,
    authenticated: Option<Authenticated>,
    amr: &'static str,
    new_device: Option<String>,
}

/// The page of a request completed meanwhile (another tab, a double submit).
fn already_completed(app: &AppState) -> HttpResponse {
    message(
        app,
        StatusCode::BAD_REQUEST,
        "Sign-in expired",
        "This sign-in request was already completed.",
    )
}

/// What a sign-in of `user_id` for `pending` owes after the password: the stricter of the
/// deployment's and the client's second-factor policy, the request's step-up (`acr_values`, an
/// essential `acr`), and whether the user has a factor.
async fn owed_step(
    app: &AppState,
    pending: &PendingRequest,
    user_id: &str,
) -> Result<SecondStep, HttpResponse> {
    let client_policy = app
        .clients
        .get(&pending.request.client_id)
        .map_or(SecondFactorPolicy::Off, |client| client.second_factor);
    let policy = app.account_settings.second_factor.strictest(client_policy);
    let enrolled = app
        .factors
        .is_enrolled(user_id.to_owned())
        .await
        .map_err(|error| failed(app, error))?;
    Ok(factors::second_step(
        policy,
        pending.request.claims.mfa,
        enrolled,
    ))
}

/// The page of the second step of a sign-in for `pending` by `user` (id, username): the code
/// form, or the enrolment of an authenticator app (its QR code and key) when the user has none;
/// `answer` is the status and the error to show.
async fn second_step_page(
    app: &AppState,
    pending: &PendingRequest,
    user: (&str, &str),
    step: SecondStep,
    csrf_token: &str,
    answer: (StatusCode, Option<&str>),
) -> HttpResponse {
    let (status, error) = answer;
    let verify = |factors: FactorStatus| {
        page(
            app,
            status,
            SecondFactorPage {
                base: app.issuer.path(),
                client_id: &pending.request.client_id,
                username: user.1,
                request_id: &pending.id,
                csrf_token,
                error,
                passkey: factors.passkeys > 0 && app.passkeys.available(),
                // The code form unless a passkey is the only way (a wrong code is refused
                // either way).
                totp: factors.totp || factors.passkeys == 0 || !app.passkeys.available(),
            }
            .render(),
        )
    };
    if step != SecondStep::Enrol {
        return match app.factors.status(user.0.to_owned()).await {
            Ok(factors) => verify(factors),
            Err(error) => failed(app, error),
        };
    }
    let enrolment = match app
        .factors
        .enrolment(user.0.to_owned(), user.1.to_owned())
        .await
    {
        Ok(enrolment) => enrolment,
        // Enrolled meanwhile (another tab): the code form.
        Err(factors::FactorError::AlreadyEnrolled) => {
            return verify(FactorStatus {
                totp: true,
                ..FactorStatus::default()
            });
        }
        Err(error) => return failed(app, error),
    };
    let action = format!("{}/authorize/second-factor", app.issuer.path());
    page(
        app,
        status,
        TotpEnrolPage {
            action: &action,
            client_id: Some(&pending.request.client_id),
            username: user.1,
            request_id: Some(&pending.id),
            csrf_token,
            qr_svg: &enrolment.qr_svg().unwrap_or_default(),
            secret: &enrolment.secret_base32,
            error,
        }
        .render(),
    )
}

/// `POST /authorize/second-factor`: the second step of a sign-in whose password matched (the
/// pending request records who owes it): a TOTP or recovery code, or — for a user who must have
/// a factor and has none — the first code of a new authenticator app. Throttled like logins;
/// a code is accepted once. Then as after the password: a new session (`amr` `pwd otp mfa`),
/// consent or the code.
pub async fn second_factor(
    app: web::Data<AppState>,
    request: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let (params, pending) = match bound_form(&app, &request, payload, app.clock.now_naive()).await {
        Ok(bound) => bound,
        Err(page) => return page,
    };
    // Only after the password: the request must record who passed it.
    let Some((user_id, _)) = pending.factor_owed.clone() else {
        return message(
            &app,
            StatusCode::FORBIDDEN,
            "Request refused",
            "Sign in with your password first.",
        );
    };
    let user = match app.factors.enabled_user(user_id.clone()).await {
        Ok(Some(user)) => user,
        Ok(None) => {
            return message(
                &app,
                StatusCode::FORBIDDEN,
                "Request refused",
                "This account cannot sign in.",
            );
        }
        Err(error) => return failed(&app, error),
    };
    let step = match owed_step(&app, &pending, &user.id).await {
        Ok(step) => step,
        Err(page) => return page,
    };
    let csrf = params.get("csrf_token").unwrap_or("").to_owned();
    let code = params.get("code").unwrap_or("");
    let ip = client_ip(&app, &request);
    let checked = match step {
        SecondStep::Enrol => app.factors.confirm_totp(user.id.clone(), code, ip).await,
        SecondStep::Verify => app
            .factors
            .verify(user.id.clone(), code, ip)
            .await
            .map(|_| ()),
        // Nothing owed any more (the policy changed, or an administrator reset the factors
        // meanwhile): the password was the sign-in.
        SecondStep::None => Ok(()),
    };
    let amr = if step == SecondStep::None {
        SIGNED_IN_WITH_PASSWORD
    } else {
        SIGNED_IN_WITH_PASSWORD_AND_OTP
    };
    let (status, message, wait) = match checked {
        Ok(()) => (StatusCode::OK, "", None),
        Err(factors::FactorError::InvalidCode | factors::FactorError::NotEnrolled) => (
            StatusCode::UNAUTHORIZED,
            "The code is incorrect or was used already.",
            None,
        ),
        Err(factors::FactorError::Throttled(seconds)) => (
            StatusCode::TOO_MANY_REQUESTS,
            "Too many attempts. Wait a while, then try again.",
            Some(seconds),
        ),
        Err(error) => return failed(&app, error),
    };
    if status != StatusCode::OK {
        let page = second_step_page(
            &app,
            &pending,
            (&user.id, &user.username),
            step,
            &csrf,
            (status, Some(message)),
        )
        .await;
        return match wait {
            Some(seconds) => retry_after(page, seconds),
            None => page,
        };
    }
    tracing::info!(user_id = %user.id, client_id = %pending.request.client_id, "second factor accepted at the hosted page");
    let signed_in = SignInDone {
        user_id: user.id.clone(),
        username: user.username.clone(),
        authenticated: None,
        amr,
        new_device: None,
    };
    finish_sign_in(&app, &request, &csrf, &pending, signed_in).await
}

/// `POST /authorize/passkey` (`step=start|finish`): a sign-in with a passkey for the pending
/// request. After a password (the request records who owes the second factor) it is that
/// user's second factor (`amr` `pwd hwk mfa`, or `swk` for a synced passkey); otherwise it is a
/// passwordless sign-in with a discoverable passkey (`hwk user mfa`: user verification is
/// required, so it is multi-factor and owes no further step). `start` shows the ceremony page
/// (the only page with a script); `finish` checks the browser's answer (webauthn-rs: challenge,
/// origin, rpId, signature, user verification, counter; throttled, the ceremony used once) and
/// then continues as after the password: a new session, consent or the code. A refused answer
/// shows a new ceremony with 401, and no session starts.
pub async fn passkey(
    app: web::Data<AppState>,
    request: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let (params, pending) = match bound_form(&app, &request, payload, app.clock.now_naive()).await {
        Ok(bound) => bound,
        Err(page) => return page,
    };
    let owing = pending
        .factor_owed
        .as_ref()
        .map(|(user_id, _)| user_id.clone());
    if let Some(user_id) = &owing {
        match app.factors.enabled_user(user_id.clone()).await {
            Ok(Some(_)) => {}
            Ok(None) => {
                return message(
                    &app,
                    StatusCode::FORBIDDEN,
                    "Request refused",
                    "This account cannot sign in.",
                );
            }
            Err(error) => return failed(&app, error),
        }
    }
    let csrf = params.get("csrf_token").unwrap_or("").to_owned();
    let show = |status: StatusCode, error: Option<&'static str>| {
        passkey_ceremony(&app, &pending, owing.clone(), &csrf, status, error)
    };
    match params.get("step") {
        Some("start") => return show(StatusCode::OK, None).await,
        Some("finish") => {}
        _ => {
            return message(
                &app,
                StatusCode::BAD_REQUEST,
                "Invalid request",
                "Start the passkey sign-in from the sign-in page.",
            );
        }
    }
    let ceremony = crate::secrets::CeremonyId::presented(params.get("ceremony").unwrap_or(""));
    let credential = params.get("credential").unwrap_or("");
    let asserted = match app
        .passkeys
        .finish_sign_in(
            pending.id.clone(),
            owing.clone(),
            &ceremony,
            credential,
            client_ip(&app, &request),
        )
        .await
    {
        Ok(asserted) => asserted,
        Err(PasskeyError::Refused) => {
            return show(
                StatusCode::UNAUTHORIZED,
                Some("The passkey was not accepted. Try again, or sign in another way."),
            )
            .await;
        }
        Err(PasskeyError::Throttled(seconds)) => {
            let page = message(
                &app,
                StatusCode::TOO_MANY_REQUESTS,
                "Too many attempts",
                "Too many attempts. Wait a while, then try again.",
            );
            return retry_after(page, seconds);
        }
        Err(error) => return passkey_failed(&app, error),
    };
    // OIDC Core §5.5.1: a request limited to one user is answered for that user only.
    if !pending.request.claims.allows_subject(&asserted.user_id) {
        tracing::info!(user_id = %asserted.user_id, client_id = %pending.request.client_id, "sign-in refused: the request names another user (claims sub)");
        return message(
            &app,
            StatusCode::FORBIDDEN,
            "Request refused",
            "This application asked for another account. Sign in with that account.",
        );
    }
    let signed_in = SignInDone {
        user_id: asserted.user_id,
        username: asserted.username,
        authenticated: None,
        amr: factors::passkey_methods(owing.is_some(), asserted.synced),
        new_device: None,
    };
    finish_sign_in(&app, &request, &csrf, &pending, signed_in).await
}

/// The ceremony page of a passkey sign-in for `pending` (the second factor of `user_id`, or
/// passwordless): a new ceremony, its options, and the form that finishes it.
async fn passkey_ceremony(
    app: &AppState,
    pending: &PendingRequest,
    user_id: Option<String>,
    csrf_token: &str,
    status: StatusCode,
    error: Option<&str>,
) -> HttpResponse {
    let second_factor = user_id.is_some();
    let started = match app
        .passkeys
        .start_sign_in(pending.id.clone(), user_id)
        .await
    {
        Ok(started) => started,
        Err(error) => return passkey_failed(app, error),
    };
    let action = format!("{}/authorize/passkey", app.issuer.path());
    let fields = [
        ("request_id", pending.id.as_str()),
        ("csrf_token", csrf_token),
        ("step", "finish"),
    ];
    super::passkeys::ceremony_page(
        app,
        status,
        super::passkeys::Ceremony {
            title: "Use your passkey",
            lead: if second_factor {
                "Confirm it is you with one of your passkeys."
            } else {
                "Sign in with a passkey saved on this device, a phone or a security key."
            },
            error,
            action: &action,
            fields: &fields,
            ceremony: started.ceremony.expose(),
            options: &started.options,
            button: "Use a passkey",
            back: None,
        },
    )
}

/// The page of a passkey operation that could not run: passkeys unavailable here (404), none
/// to use (400), or a server-side failure.
pub(super) fn passkey_failed(app: &AppState, error: PasskeyError) -> HttpResponse {
    match error {
        PasskeyError::Unavailable => message(
            app,
            StatusCode::NOT_FOUND,
            "Passkeys unavailable",
            "Passkeys cannot be used with this server's address.",
        ),
        PasskeyError::Refused => message(
            app,
            StatusCode::BAD_REQUEST,
            "No passkey",
            "This account has no passkey. Sign in another way.",
        ),
        PasskeyError::Db(error) => failed(app, error),
        other => failed(app, Fault::internal(other)),
    }
}

/// Completes a sign-in at the hosted pages: a new browser session (a new cookie value every
/// time, LOGIN-03) remembering how the user signed in, then consent or the code.
async fn finish_sign_in(
    app: &AppState,
    request: &HttpRequest,
    csrf: &str,
    pending: &PendingRequest,
    done: SignInDone,
) -> HttpResponse {
    let SignInDone {
        user_id,
        username,
        authenticated,
        amr,
        new_device,
    } = done;
    // The user authenticated now (after the last check), whatever session came in.
    let auth_time = app.clock.now_naive();
    let NewSession {
        secret,
        row: session,
    } = match browser_sessions::new_session(&user_id, auth_time, amr) {
        Ok(session) => session,
        Err(error) => return failed(app, Fault::internal(error)),
    };
    let sid = session.sid.clone();
    let previous = cookie_value(app, request, "session").map(SessionSecret::presented);
    let consented = match consent::remembered(
        &app.db,
        user_id.clone(),
        pending.request.client_id.clone(),
    )
    .await
    {
        Ok(consented) => consented,
        Err(error) => return failed(app, error),
    };
    let client = client_of(app, &pending.request.client_id).await;
    let needs_consent =
        authorize::consent_after_sign_in(pending, client.as_deref(), consented.as_ref());
    let stored = pending::record_sign_in(
        &app.db,
        pending.id.clone(),
        authenticated,
        previous,
        session,
        needs_consent,
    )
    .await;
    let proceed = match stored {
        Ok(proceed) => proceed,
        Err(error) => return failed(app, error),
    };
    tracing::info!(user_id = %user_id, client_id = %pending.request.client_id, "signed in at the hosted page");
    let mut response = if !proceed {
        message(
            app,
            StatusCode::BAD_REQUEST,
            "Sign-in expired",
            "This sign-in request was already completed.",
        )
    } else if needs_consent {
        client_page(
            app,
            StatusCode::OK,
            consent_page(
                app,
                &pending.request.client_id,
                &username,
                Asked {
                    scope: &pending.request.scope,
                    claims: &pending.request.claims,
                },
                consented.as_ref(),
                &pending.id,
                csrf,
            ),
        )
    } else {
        let grant = CodeGrant::for_pending(pending, &user_id, auth_time, &sid, amr);
        send_code(app, grant, auth_time).await
    };
    let max_age = SESSION_TTL.num_seconds();
    let _ = response.add_cookie(&cookie(
        app,
        "session",
        secret.into_exposed(),
        Some(max_age),
    ));
    if let Some(device) = new_device {
        let trust = i64::try_from(sessions::DEVICE_TRUST.as_secs()).unwrap_or(i64::MAX);
        let _ = response.add_cookie(&cookie(app, "device", device, Some(trust)));
    }
    response
}

/// `POST /authorize/consent`: approve issues the code; deny redirects with `access_denied`.
pub async fn consent(
    app: web::Data<AppState>,
    request: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let now = app.clock.now_naive();
    let (params, pending) = match bound_form(&app, &request, payload, now).await {
        Ok(bound) => bound,
        Err(page) => return page,
    };
    let session = match current_session(&app, &request, now).await {
        Ok(session) => session,
        Err(error) => return failed(&app, error),
    };
    let verdict =
        match authorize::decide_consent(&pending, session.as_ref(), params.get("decision"), now) {
            ConsentOutcome::SignInFirst => {
                return message(
                    &app,
                    StatusCode::FORBIDDEN,
                    "Request refused",
                    "Sign in first.",
                );
            }
            ConsentOutcome::ChooseAgain => {
                return message(
                    &app,
                    StatusCode::BAD_REQUEST,
                    "Invalid request",
                    "Choose Allow or Deny.",
                );
            }
            ConsentOutcome::SignInAgain => {
                // The same request and CSRF token stay valid for the sign-in.
                return client_page(
                    &app,
                    StatusCode::OK,
                    LoginPage {
                        base: app.issuer.path(),
                        about: About::of(&app, &pending.request.client_id),
                        client_id: &pending.request.client_id,
                        document_host: crate::oidc::client_metadata::document_host(
                            &pending.request.client_id,
                        ),
                        request_id: &pending.id,
                        csrf_token: params.get("csrf_token").unwrap_or(""),
                        username: session.as_ref().map_or("", |s| s.username.as_str()),
                        error: Some("Your sign-in is too old for this application. Sign in again."),
                        passkeys: app.passkeys.available(),
                    }
                    .render(),
                );
            }
            ConsentOutcome::Approved(grant) => Ok(*grant),
            ConsentOutcome::Denied(redirect) => Err(redirect),
        };
    let completed = match &verdict {
        // The approval is remembered with the completion, in one transaction.
        Ok(grant) => pending::complete_approved(&app.db, &pending, &grant.user_id, now).await,
        Err(_) => pending::complete(&app.db, pending.id.clone(), now).await,
    };
    match completed {
        Ok(true) => {}
        Ok(false) => {
            return message(
                &app,
                StatusCode::BAD_REQUEST,
                "Sign-in expired",
                "This sign-in request was already completed.",
            );
        }
        Err(error) => return failed(&app, error),
    }
    match verdict {
        Ok(grant) => send_code(&app, grant, now).await,
        Err(denied) => {
            let user_id = pending.user_id.as_deref().unwrap_or_default();
            tracing::info!(%user_id, client_id = %pending.request.client_id, "consent denied");
            deliver(&app, denied.response(app.issuer.as_str()))
        }
    }
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

/// `GET|HEAD|POST /logout` (RP-Initiated Logout 1.0): ends this browser's session and every
/// grant made in it, after confirmation unless a valid `id_token_hint` names this session
/// (LOGOUT-01, LOGOUT-02; the rules are in [`crate::oidc::logout`]). `HEAD` changes nothing
/// (LOGOUT-03).
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
        Some(token) => Some(match app.tokens.verify_id_token_hint(token).await {
            Some(claims) => IdTokenHint::Valid(Box::new(claims)),
            None => IdTokenHint::Invalid,
        }),
    };
    let logout_request = match logout::parse(&params, hint, |id| app.clients.get(id)) {
        Ok(logout_request) => logout_request,
        Err(text) => return message(&app, StatusCode::BAD_REQUEST, "Invalid request", text),
    };
    let finish = |app: &AppState| {
        let mut response = match logout_request.redirect_location() {
            Some(location) => see_other(&location),
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
    let now = app.clock.now_naive();
    let session = match browser_sessions::signed_in(&app.db, &secret, now).await {
        Ok(session) => session,
        Err(error) => return failed(&app, error),
    };
    let Some(session) = session else {
        return finish(&app);
    };
    let posted = (request.method() == actix_web::http::Method::POST).then(|| Confirmation {
        csrf_token: params.get("csrf_token"),
        decision: params.get("decision"),
    });
    match logout::decide(&logout_request, &session, &secret, posted) {
        LogoutOutcome::StillSignedIn => message(
            &app,
            StatusCode::OK,
            "Still signed in",
            "You are still signed in.",
        ),
        LogoutOutcome::AskConfirmation { csrf_token } => page(
            &app,
            StatusCode::OK,
            LogoutPage {
                base: app.issuer.path(),
                username: &session.username,
                client_id: logout_request.client_id.as_deref(),
                post_logout_redirect_uri: logout_request.post_logout_redirect_uri.as_deref(),
                state: logout_request.state.as_deref(),
                csrf_token: csrf_token.expose(),
            }
            .render(),
        ),
        LogoutOutcome::EndSession => {
            if let Err(error) = logout::end_session(&app.db, &secret, now).await {
                return failed(&app, error);
            }
            tracing::info!(user_id = %session.user_id, "signed out");
            finish(&app)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_post_script_hash_is_the_sha256_of_the_script() {
        // printf '%s' 'document.getElementById("response").submit();' | openssl dgst -sha256 -binary | base64
        assert_eq!(
            form_post_script_hash(),
            "'sha256-mQ2oGECEQvP+Nu+by0UKX2wmZ+b33NETq1RQ2wOEDw0='"
        );
    }

    #[test]
    fn form_action_names_the_redirect_uri_without_its_query() {
        for (uri, source) in [
            ("https://app.example/cb?tenant=1", "https://app.example/cb"),
            ("http://127.0.0.1:51004/cb", "http://127.0.0.1:51004/cb"),
            (
                "https://app.example:8443/a/b",
                "https://app.example:8443/a/b",
            ),
            ("http://[::1]:61023/cb", "http:"),
            ("https://app.example/a;b", "https:"),
            ("com.example.app:/cb", "com.example.app:"),
        ] {
            assert_eq!(form_action_source(uri), source, "{uri}");
        }
    }
}
