//! Email, HTTP side: password reset and address verification (the JSON API and the hosted pages
//! reached from the mails' links and the login page's "Forgot your password?"), and the
//! account's email page (`/account/email`). The rules live in
//! [`crate::accounts::mail_links`]; every link there is built from the issuer.
//!
//! Hosted pages: server-rendered with the login page's headers (strict CSP, no script). Their
//! forms carry a CSRF token: derived from the browser's form cookie on the pages that belong to
//! no sign-in (reset, verification), from the session cookie on `/account/email`. Opening a link
//! (GET) shows a form and spends nothing — mail scanners open links — and the token is spent by
//! its POST.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use serde_json::json;

use super::auth_api::{account_holder, client_ip, no_store};
use super::authorize::{cookie, cookie_value, failed, message, page, query_or_form, retry_after};
use super::json::Json;
use crate::accounts::mail_links::{CHANGE_EMAIL, LinkError, RESET_PASSWORD, VERIFY_EMAIL};
use crate::accounts::names::InvalidField;
use crate::accounts::{Email, Password};
use crate::http::bearer::UserBearer;
use crate::http::error::{ApiError, Fault};
use crate::oidc::params::Params;
use crate::secrets::{CsrfToken, FormSecret, MailToken};
use crate::state::AppState;

/// What a reset request answers, whether or not the address has an account.
const RESET_REQUESTED: &str =
    "If an account has this address, a link to choose a new password was sent to it.";

/// A token as presented in a link: a base64url text of sensible length, else no token.
fn presented_token(text: Option<&str>) -> Option<MailToken> {
    text.filter(|t| (1..=128).contains(&t.len()))
        .map(MailToken::presented)
}

fn invalid(error: InvalidField) -> ApiError {
    ApiError::InvalidRequest(error.to_string())
}

// ---------------------------------------------------------------------------------------------
// The JSON API

/// `POST /api/auth/password-reset` body.
#[derive(Deserialize)]
pub struct ResetRequestBody {
    email: String,
}

/// `POST /api/auth/password-reset/confirm` body.
#[derive(Deserialize)]
pub struct ResetBody {
    token: String,
    password: String,
}

/// `POST /api/auth/verify-email` body.
#[derive(Deserialize)]
pub struct VerifyBody {
    token: String,
}

/// `POST /api/me/email` body.
#[derive(Deserialize)]
pub struct ChangeBody {
    email: String,
}

/// `POST /api/auth/password-reset` `{email}` → `202 {"status": "requested", "message"}`, the same
/// whether or not an account has the address (the mail is prepared after the answer);
/// `400 invalid_request` for a malformed address, `429` with `Retry-After` over the budgets of
/// the address or the client's network.
pub async fn request_password_reset(
    state: web::Data<AppState>,
    request: HttpRequest,
    Json(body): Json<ResetRequestBody>,
) -> Result<HttpResponse, ApiError> {
    let email = Email::parse(body.email.trim()).map_err(invalid)?;
    state
        .mail_links
        .request_password_reset(&email, client_ip(&state, &request))
        .await?;
    Ok(no_store(StatusCode::ACCEPTED)
        .json(json!({ "status": "requested", "message": RESET_REQUESTED })))
}

/// `POST /api/auth/password-reset/confirm` `{token, password}` → `204`: the password is set
/// (through the password policy) and every session of the user ends. `400 invalid_link` for a
/// token that is unknown, used, superseded or expired; `400 invalid_request` naming the
/// password's rule (the token stays good).
pub async fn reset_password(
    state: web::Data<AppState>,
    Json(body): Json<ResetBody>,
) -> Result<HttpResponse, ApiError> {
    let token = presented_token(Some(&body.token)).ok_or(ApiError::InvalidLink)?;
    let password = Password::parse(body.password).map_err(invalid)?;
    state.mail_links.reset_password(&token, password).await?;
    Ok(no_store(StatusCode::NO_CONTENT).finish())
}

/// `POST /api/auth/verify-email` `{token}` → `200 {"email", "email_verified": true, "changed"}`:
/// the address the link was sent to is verified (a pending change takes effect). `400
/// invalid_link`; `409 user_exists` when another account took a new address meanwhile.
pub async fn verify_email(
    state: web::Data<AppState>,
    Json(body): Json<VerifyBody>,
) -> Result<HttpResponse, ApiError> {
    let token = presented_token(Some(&body.token)).ok_or(ApiError::InvalidLink)?;
    let confirmed = state.mail_links.confirm_email(&token).await?;
    Ok(no_store(StatusCode::OK).json(json!({
        "email": confirmed.email,
        "email_verified": true,
        "changed": confirmed.changed,
    })))
}

/// `POST /api/me/email` (bearer, the account's own login) `{email}` → `202 {"email",
/// "pending_email"}`: a link goes to the new address, which replaces the current one only once
/// confirmed. `400 invalid_request` (malformed, or already the account's address), `409
/// user_exists`, `429` with `Retry-After`, `403 insufficient_scope` for an application's token.
pub async fn change_email(
    state: web::Data<AppState>,
    request: HttpRequest,
    auth: UserBearer,
    Json(body): Json<ChangeBody>,
) -> Result<HttpResponse, actix_web::Error> {
    account_holder(&auth)?;
    let email = Email::parse(body.email.trim()).map_err(invalid)?;
    let user = auth.current.user;
    if email.normalized() == user.email_normalized {
        return Err(
            ApiError::InvalidRequest("email: is already the account's address".into()).into(),
        );
    }
    state
        .mail_links
        .request_email_change(&user, &email, client_ip(&state, &request))
        .await
        .map_err(ApiError::from)?;
    Ok(no_store(StatusCode::ACCEPTED).json(json!({
        "email": user.email,
        "pending_email": email.as_str(),
    })))
}

/// `POST /api/me/email/verification` (bearer, the account's own login) → `202 {"sent": true}`
/// (a link to the current address), or `200 {"email_verified": true}` when it is verified
/// already. `429` with `Retry-After`.
pub async fn resend_verification(
    state: web::Data<AppState>,
    request: HttpRequest,
    auth: UserBearer,
) -> Result<HttpResponse, actix_web::Error> {
    account_holder(&auth)?;
    let sent = state
        .mail_links
        .resend_verification(&auth.current.user, client_ip(&state, &request))
        .await
        .map_err(ApiError::from)?;
    Ok(if sent {
        no_store(StatusCode::ACCEPTED).json(json!({ "sent": true }))
    } else {
        no_store(StatusCode::OK).json(json!({ "email_verified": true }))
    })
}

// ---------------------------------------------------------------------------------------------
// Hosted pages

#[derive(Template)]
#[template(path = "password_reset_request.html")]
struct ResetRequestPage<'a> {
    base: &'a str,
    csrf_token: &'a str,
    email: &'a str,
    error: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "password_reset.html")]
struct ResetPage<'a> {
    base: &'a str,
    csrf_token: &'a str,
    token: &'a str,
    error: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "email_verify.html")]
struct VerifyPage<'a> {
    base: &'a str,
    csrf_token: &'a str,
    token: &'a str,
    email: &'a str,
}

#[derive(Template)]
#[template(path = "account_email.html")]
struct AccountEmailPage<'a> {
    base: &'a str,
    csrf_token: &'a str,
    email: &'a str,
    verified: bool,
    pending: Option<&'a str>,
    error: Option<&'a str>,
    notice: Option<&'a str>,
}

/// The form cookie's name (`__Host-portcullis_form` on https).
const FORM_COOKIE: &str = "form";

/// A hosted form page of one purpose: the browser's form secret (from its cookie, or new), the
/// page's CSRF token derived from it, and whether the answer must set the cookie.
struct FormPage {
    form: FormSecret,
    new: bool,
    csrf: CsrfToken,
}

impl FormPage {
    /// The form page of `purpose` for this browser; the failure page when no secret can be made.
    fn of(app: &AppState, request: &HttpRequest, purpose: &str) -> Result<Self, Box<HttpResponse>> {
        let presented =
            cookie_value(app, request, FORM_COOKIE).filter(|v| (1..=64).contains(&v.len()));
        let (form, new) = match presented {
            Some(value) => (FormSecret::presented(value), false),
            None => match FormSecret::generate() {
                Ok(secret) => (secret, true),
                Err(error) => return Err(Box::new(failed(app, Fault::internal(error)))),
            },
        };
        let csrf = CsrfToken::for_form(&form, purpose);
        Ok(Self { form, new, csrf })
    }

    /// The page `body` with `status`, setting the form cookie when it is new.
    fn respond(
        &self,
        app: &AppState,
        status: StatusCode,
        body: Result<String, askama::Error>,
    ) -> HttpResponse {
        let mut response = page(app, status, body);
        if self.new {
            let cookie = cookie(app, FORM_COOKIE, self.form.expose().to_owned(), None);
            let _ = response.add_cookie(&cookie);
        }
        response
    }
}

/// Whether a posted form of `purpose` carries the CSRF token of this browser's form cookie.
fn form_csrf_ok(app: &AppState, request: &HttpRequest, params: &Params, purpose: &str) -> bool {
    let (Some(form), Some(presented)) = (
        cookie_value(app, request, FORM_COOKIE),
        params.get("csrf_token"),
    ) else {
        return false;
    };
    CsrfToken::for_form(&FormSecret::presented(form), purpose).matches(presented)
}

fn refused(app: &AppState) -> HttpResponse {
    message(
        app,
        StatusCode::FORBIDDEN,
        "Request refused",
        "This form was not sent from this site in this browser. Open the page again and retry.",
    )
}

fn dead_link(app: &AppState) -> HttpResponse {
    message(
        app,
        StatusCode::BAD_REQUEST,
        "Link no longer valid",
        "This link is invalid, has expired or was already used. Ask for a new one.",
    )
}

/// A failure of a mailed-link operation on a page: the server-side ones by the page policy.
fn link_failure(app: &AppState, error: LinkError) -> HttpResponse {
    match ApiError::from(error) {
        ApiError::Fault(fault) => failed(app, fault),
        ApiError::InvalidLink => dead_link(app),
        ApiError::TooManyRequests(seconds) => retry_after(
            message(
                app,
                StatusCode::TOO_MANY_REQUESTS,
                "Too many requests",
                "Too many mails were asked for. Wait a while, then try again.",
            ),
            seconds,
        ),
        other => message(
            app,
            StatusCode::BAD_REQUEST,
            "Invalid request",
            &other.to_string(),
        ),
    }
}

const RESET_FORM: &str = "password-reset";
const RESET_CONFIRM_FORM: &str = "password-reset-confirm";
const VERIFY_FORM: &str = "email-verify";

/// `GET|POST /password-reset`: the form asking for the address, and its answer — the same page
/// whether or not an account has the address.
pub async fn password_reset_page(
    app: web::Data<AppState>,
    request: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let form = match FormPage::of(&app, &request, RESET_FORM) {
        Ok(form) => form,
        Err(page) => return *page,
    };
    let render = |status: StatusCode, email: &str, error: Option<&str>| {
        let body = ResetRequestPage {
            base: app.issuer.path(),
            csrf_token: form.csrf.expose(),
            email,
            error,
        }
        .render();
        form.respond(&app, status, body)
    };
    if request.method() != actix_web::http::Method::POST {
        return render(StatusCode::OK, "", None);
    }
    let params = match query_or_form(&app, &request, payload).await {
        Ok(params) => params,
        Err(page) => return page,
    };
    if !form_csrf_ok(&app, &request, &params, RESET_FORM) {
        return refused(&app);
    }
    let typed = params.get("email").unwrap_or("").trim().to_owned();
    let email = match Email::parse(&typed) {
        Ok(email) => email,
        Err(_) => {
            return render(
                StatusCode::BAD_REQUEST,
                &typed,
                Some("Type a valid email address."),
            );
        }
    };
    match app
        .mail_links
        .request_password_reset(&email, client_ip(&app, &request))
        .await
    {
        Ok(()) => message(&app, StatusCode::OK, "Check your mail", RESET_REQUESTED),
        Err(error) => link_failure(&app, error),
    }
}

/// `GET|POST /password-reset/confirm?token=…`: the new-password form of a live link, and its
/// answer: the password set, every session ended.
pub async fn password_reset_confirm_page(
    app: web::Data<AppState>,
    request: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let form = match FormPage::of(&app, &request, RESET_CONFIRM_FORM) {
        Ok(form) => form,
        Err(page) => return *page,
    };
    let params = match query_or_form(&app, &request, payload).await {
        Ok(params) => params,
        Err(page) => return page,
    };
    let Some(token) = presented_token(params.get("token")) else {
        return dead_link(&app);
    };
    let render = |status: StatusCode, error: Option<&str>| {
        let body = ResetPage {
            base: app.issuer.path(),
            csrf_token: form.csrf.expose(),
            token: token.expose(),
            error,
        }
        .render();
        form.respond(&app, status, body)
    };
    if request.method() != actix_web::http::Method::POST {
        return match app.mail_links.is_live(&token, &[RESET_PASSWORD]).await {
            Ok(true) => render(StatusCode::OK, None),
            Ok(false) => dead_link(&app),
            Err(error) => link_failure(&app, error),
        };
    }
    if !form_csrf_ok(&app, &request, &params, RESET_CONFIRM_FORM) {
        return refused(&app);
    }
    let typed = params.get("password").unwrap_or("").to_owned();
    if params.get("password_confirmation") != Some(typed.as_str()) {
        return render(StatusCode::BAD_REQUEST, Some("The two passwords differ."));
    }
    let password = match Password::parse(typed) {
        Ok(password) => password,
        Err(error) => {
            return render(
                StatusCode::BAD_REQUEST,
                Some(&format!("The password {}.", error.reason)),
            );
        }
    };
    match app.mail_links.reset_password(&token, password).await {
        Ok(_) => message(
            &app,
            StatusCode::OK,
            "Password changed",
            "Your password was changed, and every session of your account ended. Sign in again with the new password.",
        ),
        Err(LinkError::Invalid(error)) => render(
            StatusCode::BAD_REQUEST,
            Some(&format!("The password {}.", error.reason)),
        ),
        Err(error) => link_failure(&app, error),
    }
}

/// `GET|POST /email/verify?token=…`: the confirmation form of a live verification link, and its
/// answer.
pub async fn email_verify_page(
    app: web::Data<AppState>,
    request: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let form = match FormPage::of(&app, &request, VERIFY_FORM) {
        Ok(form) => form,
        Err(page) => return *page,
    };
    let params = match query_or_form(&app, &request, payload).await {
        Ok(params) => params,
        Err(page) => return page,
    };
    let Some(token) = presented_token(params.get("token")) else {
        return dead_link(&app);
    };
    if request.method() != actix_web::http::Method::POST {
        return match app
            .mail_links
            .is_live(&token, &[VERIFY_EMAIL, CHANGE_EMAIL])
            .await
        {
            Ok(true) => {
                let body = VerifyPage {
                    base: app.issuer.path(),
                    csrf_token: form.csrf.expose(),
                    token: token.expose(),
                    email: "this address",
                }
                .render();
                form.respond(&app, StatusCode::OK, body)
            }
            Ok(false) => dead_link(&app),
            Err(error) => link_failure(&app, error),
        };
    }
    if !form_csrf_ok(&app, &request, &params, VERIFY_FORM) {
        return refused(&app);
    }
    match app.mail_links.confirm_email(&token).await {
        Ok(confirmed) => message(
            &app,
            StatusCode::OK,
            "Email address confirmed",
            &format!(
                "{} is now the confirmed address of your account.",
                confirmed.email
            ),
        ),
        Err(LinkError::AddressTaken) => message(
            &app,
            StatusCode::CONFLICT,
            "Address taken",
            "This address now belongs to another account.",
        ),
        Err(error) => link_failure(&app, error),
    }
}

/// `GET|POST /account/email`, behind the browser session (the account pages' guard and CSRF
/// token, [`super::account::require_session`]): the account's address, whether it is verified,
/// a pending change; a new address (a link goes to it), or the verification link again.
pub async fn account_email_page(
    app: web::Data<AppState>,
    request: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    // The account pages' guard: without a browser session, the sign-in and back here.
    let session = match super::account::require_session(&app, &request).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let csrf = session.csrf_token();
    let status = match app
        .mail_links
        .email_status(session.user.user_id.clone())
        .await
    {
        Ok(Some(status)) => status,
        Ok(None) => {
            return message(
                &app,
                StatusCode::UNAUTHORIZED,
                "Sign in first",
                "Sign in to your account first.",
            );
        }
        Err(error) => return link_failure(&app, error),
    };
    let render =
        |code: StatusCode, pending: Option<&str>, error: Option<&str>, notice: Option<&str>| {
            page(
                &app,
                code,
                AccountEmailPage {
                    base: app.issuer.path(),
                    csrf_token: csrf.expose(),
                    email: &status.user.email,
                    verified: status.verified,
                    pending,
                    error,
                    notice,
                }
                .render(),
            )
        };
    if request.method() != actix_web::http::Method::POST {
        return render(StatusCode::OK, status.pending.as_deref(), None, None);
    }
    let params = match query_or_form(&app, &request, payload).await {
        Ok(params) => params,
        Err(page) => return page,
    };
    if !params
        .get("csrf_token")
        .is_some_and(|presented| csrf.matches(presented))
    {
        return refused(&app);
    }
    let ip = client_ip(&app, &request);
    if params.get("action") == Some("resend") {
        return match app.mail_links.resend_verification(&status.user, ip).await {
            Ok(_) => render(
                StatusCode::OK,
                status.pending.as_deref(),
                None,
                Some("We sent a confirmation link to your address."),
            ),
            Err(error) => link_failure(&app, error),
        };
    }
    let typed = params.get("email").unwrap_or("").trim().to_owned();
    let email = match Email::parse(&typed) {
        Ok(email) if email.normalized() != status.user.email_normalized => email,
        Ok(_) => {
            return render(
                StatusCode::BAD_REQUEST,
                status.pending.as_deref(),
                Some("This is your address already."),
                None,
            );
        }
        Err(_) => {
            return render(
                StatusCode::BAD_REQUEST,
                status.pending.as_deref(),
                Some("Type a valid email address."),
                None,
            );
        }
    };
    match app
        .mail_links
        .request_email_change(&status.user, &email, ip)
        .await
    {
        Ok(()) => render(
            StatusCode::OK,
            Some(email.as_str()),
            None,
            Some("We sent a link to the new address. Your address changes once you open it."),
        ),
        Err(LinkError::AddressTaken) => render(
            StatusCode::CONFLICT,
            status.pending.as_deref(),
            Some("This address belongs to another account."),
            None,
        ),
        Err(error) => link_failure(&app, error),
    }
}
