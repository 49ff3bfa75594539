//! The device authorization grant (RFC 8628), HTTP side: `POST /device_authorization` (the
//! device's request, authenticated like the token endpoint, JSON answers) and the verification
//! page a user opens on another device: `GET /device` (the code form, pre-filled from
//! `verification_uri_complete`), `POST /device` (the code checked under a guessing budget,
//! then the confirmation: which application, which access, that a device will act as the user),
//! and `POST /device/decision` (allow or deny). The page needs a browser session: without one,
//! or with one that lacks the second factor the device's client requires, it sends the user
//! through the hosted login and back. The protocol rules are in [`crate::oidc::device`].

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use super::auth_api::client_ip;
use super::authorize::{cookie_value, failed, message, page, retry_after, start_pending};
use super::oauth::{authenticate_client, no_query, no_store_json, read_form};
use crate::accounts::browser_sessions::{self, SignedIn};
use crate::accounts::factors::{self, SecondStep};
use crate::accounts::network::network_of;
use crate::http::error::Fault;
use crate::oidc::apis::ScopeLine;
use crate::oidc::authorize::account as console;
use crate::oidc::device::{self, Decider, Lookup, PendingDevice, VERIFICATION_PATH};
use crate::oidc::error::OAuthError;
use crate::oidc::params::Params;
use crate::secrets::{CsrfToken, SessionSecret, UserCode};
use crate::state::AppState;

/// What the CSRF tokens of the verification page's forms are derived for.
const CSRF_PURPOSE: &str = "device";

/// `POST /device_authorization` (RFC 8628 §3.1, §3.2): the client authenticates as at the token
/// endpoint (a secret, `private_key_jwt` or, public, its `client_id`), then
/// [`device::start`] decides. Errors are RFC 6749 §5.2 JSON.
pub async fn device_authorization(
    state: web::Data<AppState>,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, OAuthError> {
    no_query(&request)?;
    let params = read_form(&request, payload).await?;
    let client = authenticate_client(&state, &request, &params, "/device_authorization").await?;
    let network = network_of(client_ip(&state, &request));
    let started = device::start(
        &state.db,
        &state.apis.current(),
        &client,
        &params,
        state.issuer.as_str(),
        &network,
        state.clock.now_naive(),
    )
    .await?;
    Ok(no_store_json(&started))
}

#[derive(Template)]
#[template(path = "device.html")]
struct CodePage<'a> {
    base: &'a str,
    username: &'a str,
    csrf_token: &'a str,
    user_code: &'a str,
    error: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "device_consent.html")]
struct ConfirmPage<'a> {
    base: &'a str,
    client_id: &'a str,
    username: &'a str,
    user_code: &'a str,
    scopes: Vec<ScopeLine>,
    csrf_token: &'a str,
}

/// The verification page's signed-in user and the CSRF token of their forms.
struct DeviceSession {
    user: SignedIn,
    csrf: CsrfToken,
}

/// The browser's session, if it has a live one.
async fn session_of(
    app: &AppState,
    request: &HttpRequest,
) -> Result<Option<DeviceSession>, HttpResponse> {
    let Some(secret) = cookie_value(app, request, "session").map(SessionSecret::presented) else {
        return Ok(None);
    };
    match browser_sessions::signed_in(&app.db, &secret, app.clock.now_naive()).await {
        Ok(Some(user)) => Ok(Some(DeviceSession {
            csrf: CsrfToken::bound_to(&secret, CSRF_PURPOSE),
            user,
        })),
        Ok(None) => Ok(None),
        Err(error) => Err(failed(app, error)),
    }
}

/// The hosted login (the account console's sign-in, [`console::sign_in_request`]) coming back
/// to the verification page with `user_code` filled in; `mfa`: the sign-in must include a
/// second factor.
async fn sign_in(
    app: &AppState,
    request: &HttpRequest,
    user_code: Option<&str>,
    mfa: bool,
) -> HttpResponse {
    let base = app.issuer.path();
    // Only a well-formed code goes into the return path ([`console::safe_return_path`]).
    let return_to = match user_code.and_then(UserCode::presented) {
        Some(code) => format!("{base}{VERIFICATION_PATH}?user_code={}", code.display()),
        None => format!("{base}{VERIFICATION_PATH}"),
    };
    let mut authz = match console::sign_in_request(app.issuer.as_str(), return_to) {
        Ok(authz) => authz,
        Err(error) => return failed(app, Fault::internal(error)),
    };
    authz.claims.mfa = mfa;
    start_pending(app, request, &authz, None, None, app.clock.now_naive()).await
}

/// The code form for `session`, with `user_code` in it and `error` above it.
fn code_page(
    app: &AppState,
    session: &DeviceSession,
    status: StatusCode,
    user_code: &str,
    error: Option<&str>,
) -> HttpResponse {
    page(
        app,
        status,
        CodePage {
            base: app.issuer.path(),
            username: &session.user.username,
            csrf_token: session.csrf.expose(),
            user_code,
            error,
        }
        .render(),
    )
}

/// The `user_code` of a request's query, as typed (bounded: it is echoed into the form).
fn typed_code(params: &Params) -> String {
    params
        .get("user_code")
        .unwrap_or("")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == ' ')
        .take(16)
        .collect()
}

/// `GET /device[?user_code=…]` (RFC 8628 §3.3, §3.3.1): the code form, the code filled in from
/// `verification_uri_complete` but still to be confirmed; without a session, the hosted login
/// first. `HEAD` changes nothing.
pub async fn verification_page(
    app: web::Data<AppState>,
    request: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    if request.method() == actix_web::http::Method::POST {
        return submit_code(&app, &request, payload).await;
    }
    let params = Params::parse(request.query_string().as_bytes()).unwrap_or_default();
    let typed = typed_code(&params);
    if request.method() == actix_web::http::Method::HEAD {
        return message(
            &app,
            StatusCode::OK,
            "Connect a device",
            "Enter the code your device shows.",
        );
    }
    match session_of(&app, &request).await {
        Ok(Some(session)) => code_page(&app, &session, StatusCode::OK, &typed, None),
        Ok(None) => sign_in(&app, &request, Some(&typed), false).await,
        Err(page) => page,
    }
}

/// A form post of the verification page: the session and the form, when its CSRF token is the
/// session's.
async fn signed_form(
    app: &AppState,
    request: &HttpRequest,
    payload: web::Payload,
) -> Result<(DeviceSession, Params), HttpResponse> {
    let params = read_form(request, payload).await.map_err(|error| {
        message(
            app,
            StatusCode::BAD_REQUEST,
            "Invalid request",
            &error.description,
        )
    })?;
    let Some(session) = session_of(app, request).await? else {
        return Err(sign_in(app, request, params.get("user_code"), false).await);
    };
    if !params
        .get("csrf_token")
        .is_some_and(|token| session.csrf.matches(token))
    {
        tracing::warn!(user_id = %session.user.user_id, "device form refused: CSRF token");
        return Err(message(
            app,
            StatusCode::FORBIDDEN,
            "Request refused",
            "This form did not come from the device page. Open it again and retry.",
        ));
    }
    Ok((session, params))
}

/// The pending request of the form's `user_code` for `session`, or the page to show instead:
/// the code form again (wrong or expired code, 400), the throttled answer (429 with
/// `Retry-After`), or the hosted login when the device's client needs a second factor this
/// session lacks (the stricter of the deployment's and the client's policy, as at the
/// authorization endpoint: no bypass through the device flow).
async fn found_device(
    app: &AppState,
    request: &HttpRequest,
    session: &DeviceSession,
    params: &Params,
) -> Result<PendingDevice, HttpResponse> {
    let typed = typed_code(params);
    let network = network_of(client_ip(app, request));
    let now = app.clock.now_naive();
    let window = app.account_settings.login_window;
    let lookup = device::look_up(
        &app.db,
        &typed,
        &session.user.user_id,
        &network,
        window,
        now,
    )
    .await;
    let found = match lookup {
        Ok(Lookup::Found(found)) => found,
        Ok(Lookup::NotFound) => {
            return Err(code_page(
                app,
                session,
                StatusCode::BAD_REQUEST,
                &typed,
                Some("That code is not valid or has expired. Check the code on your device."),
            ));
        }
        Ok(Lookup::Throttled(seconds)) => {
            tracing::warn!(user_id = %session.user.user_id, "device user codes throttled");
            let page = code_page(
                app,
                session,
                StatusCode::TOO_MANY_REQUESTS,
                &typed,
                Some("Too many attempts. Wait a while, then try again."),
            );
            return Err(retry_after(page, seconds));
        }
        Err(error) => return Err(failed(app, error)),
    };
    let Some(client) = app.clients.get(&found.client_id) else {
        return Err(code_page(
            app,
            session,
            StatusCode::BAD_REQUEST,
            &typed,
            Some("That code is not valid or has expired. Check the code on your device."),
        ));
    };
    let policy = app
        .account_settings
        .second_factor
        .strictest(client.second_factor);
    let enrolled = match app.factors.is_enrolled(session.user.user_id.clone()).await {
        Ok(enrolled) => enrolled,
        Err(error) => return Err(failed(app, error)),
    };
    if factors::second_step(policy, false, enrolled) != SecondStep::None
        && !session.user.is_multi_factor()
    {
        return Err(sign_in(app, request, Some(&found.user_code), true).await);
    }
    Ok(found)
}

/// `POST /device`: the typed code ([`found_device`]), then the confirmation page: the
/// application, the access it asks, the code to compare with the device's, and the warning that
/// a device will act as the user (RFC 8628 §5.4, remote phishing).
async fn submit_code(app: &AppState, request: &HttpRequest, payload: web::Payload) -> HttpResponse {
    let (session, params) = match signed_form(app, request, payload).await {
        Ok(form) => form,
        Err(page) => return page,
    };
    let found = match found_device(app, request, &session, &params).await {
        Ok(found) => found,
        Err(page) => return page,
    };
    let apis = app.apis.current();
    page(
        app,
        StatusCode::OK,
        ConfirmPage {
            base: app.issuer.path(),
            client_id: &found.client_id,
            username: &session.user.username,
            user_code: &found.user_code,
            scopes: apis.describe(found.scope.iter()),
            csrf_token: session.csrf.expose(),
        }
        .render(),
    )
}

/// `POST /device/decision`: `decision=approve` or `deny` for the form's code (looked up again:
/// pending, this user's budget, the second-factor rule). Approving remembers the client's
/// consent; the device's next poll gets its tokens, or `access_denied`.
pub async fn decision(
    app: web::Data<AppState>,
    request: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let (session, params) = match signed_form(&app, &request, payload).await {
        Ok(form) => form,
        Err(page) => return page,
    };
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
    let found = match found_device(&app, &request, &session, &params).await {
        Ok(found) => found,
        Err(page) => return page,
    };
    let client_id = found.client_id.clone();
    let decider = Decider {
        user_id: session.user.user_id.clone(),
        auth_time: session.user.auth_time,
        amr: session.user.amr.clone(),
    };
    match device::decide(&app.db, found, decider, approve, app.clock.now_naive()).await {
        Ok(true) if approve => {
            tracing::info!(user_id = %session.user.user_id, %client_id, "device authorization approved");
            message(
                &app,
                StatusCode::OK,
                "Device connected",
                "Your device is now signed in. You can close this page and return to your device.",
            )
        }
        Ok(true) => {
            tracing::info!(user_id = %session.user.user_id, %client_id, "device authorization denied");
            message(
                &app,
                StatusCode::OK,
                "Request denied",
                "The device was not signed in. You can close this page.",
            )
        }
        Ok(false) => message(
            &app,
            StatusCode::BAD_REQUEST,
            "Request expired",
            "This request was already answered or has expired. Start again on your device.",
        ),
        Err(error) => failed(&app, error),
    }
}
