//! `GET|POST /account/security`: the account's second factors, hosted and server-rendered under
//! the hosted pages' headers (strict CSP, no script, no framing): set up an authenticator app
//! (QR code as inline SVG and the key as text; one valid code turns it on and shows ten recovery
//! codes once), make new recovery codes, turn the app off. Behind the browser session (the SSO
//! cookie of the hosted login); every form carries a CSRF token derived from that session.
//! Making new recovery codes and turning the app off each need a current code (TOTP or
//! recovery): whoever does so proves they hold the factor.
//!
//! Passkeys (WebAuthn): listed with their name, when added and last used, and whether synced;
//! added by name (the ceremony page is the one page here that runs a script), removed by id.
//! Adding or removing a passkey needs the session and the form's CSRF token, as turning on the
//! authenticator app does (a lost passkey cannot be asked for to remove it).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use super::auth_api::client_ip;
use super::authorize::{
    TotpEnrolPage, cookie_value, failed, message, page, passkey_failed, query_or_form, retry_after,
};
use super::passkeys::{Ceremony, ceremony_page};
use crate::accounts::browser_sessions::{self, SignedIn};
use crate::accounts::factors::{FactorError, FactorStatus};
use crate::accounts::passkeys::PasskeyError;
use crate::secrets::{CsrfToken, SessionSecret};
use crate::state::AppState;

/// The purpose the page's CSRF token is derived for.
const CSRF_PURPOSE: &str = "account-security";

#[derive(Template)]
#[template(path = "account_security.html")]
struct SecurityPage<'a> {
    base: &'a str,
    username: &'a str,
    csrf_token: &'a str,
    totp: bool,
    recovery_codes_left: i64,
    /// New recovery codes, shown once.
    recovery_codes: &'a [String],
    error: Option<&'a str>,
    notice: Option<&'a str>,
    /// Passkeys can be used here (the issuer's host is a domain).
    passkeys_available: bool,
    /// The user's passkeys.
    passkeys: Vec<PasskeyLine>,
}

/// A passkey as the page lists it.
struct PasskeyLine {
    id: String,
    name: String,
    /// `YYYY-MM-DD HH:MM UTC`.
    created: String,
    last_used: Option<String>,
    synced: bool,
}

/// A time as the page shows it.
fn shown_time(at: chrono::NaiveDateTime) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// The browser's signed-in user and its session secret, or the page that says to sign in.
async fn signed_in(
    app: &AppState,
    request: &HttpRequest,
) -> Result<(SignedIn, SessionSecret), HttpResponse> {
    let sign_in_first = || {
        message(
            app,
            StatusCode::UNAUTHORIZED,
            "Sign in first",
            "Sign in to your account, then open this page again.",
        )
    };
    let Some(secret) = cookie_value(app, request, "session").map(SessionSecret::presented) else {
        return Err(sign_in_first());
    };
    match browser_sessions::signed_in(&app.db, &secret, app.clock.now_naive()).await {
        Ok(Some(session)) => Ok((session, secret)),
        Ok(None) => Err(sign_in_first()),
        Err(error) => Err(failed(app, error)),
    }
}

/// What the security page shows besides the factors' state.
#[derive(Default)]
struct Shown<'a> {
    recovery_codes: &'a [String],
    error: Option<&'a str>,
    notice: Option<&'a str>,
}

/// The security page of `session` (its factors read now), with `status` and what else to show.
async fn security_page(
    app: &AppState,
    session: &SignedIn,
    secret: &SessionSecret,
    status: StatusCode,
    shown: Shown<'_>,
) -> HttpResponse {
    let state: FactorStatus = match app.factors.status(session.user_id.clone()).await {
        Ok(state) => state,
        Err(error) => return failed(app, error),
    };
    let passkeys = match app.passkeys.list(session.user_id.clone()).await {
        Ok(passkeys) => passkeys
            .into_iter()
            .map(|key| PasskeyLine {
                id: key.id,
                name: key.name,
                created: shown_time(key.created_at),
                last_used: key.last_used_at.map(shown_time),
                synced: key.synced,
            })
            .collect(),
        Err(error) => return passkey_failed(app, error),
    };
    let csrf = CsrfToken::bound_to(secret, CSRF_PURPOSE);
    page(
        app,
        status,
        SecurityPage {
            passkeys_available: app.passkeys.available(),
            passkeys,
            base: app.issuer.path(),
            username: &session.username,
            csrf_token: csrf.expose(),
            totp: state.totp,
            recovery_codes_left: state.recovery_codes_left,
            recovery_codes: shown.recovery_codes,
            error: shown.error,
            notice: shown.notice,
        }
        .render(),
    )
}

/// The enrolment page of `session` (the waiting enrolment, or a new one).
async fn enrolment_page(
    app: &AppState,
    session: &SignedIn,
    secret: &SessionSecret,
    status: StatusCode,
    error: Option<&str>,
) -> HttpResponse {
    let enrolment = match app
        .factors
        .enrolment(session.user_id.clone(), session.username.clone())
        .await
    {
        Ok(enrolment) => enrolment,
        Err(FactorError::AlreadyEnrolled) => {
            return security_page(app, session, secret, StatusCode::OK, Shown::default()).await;
        }
        Err(error) => return failed(app, error),
    };
    let csrf = CsrfToken::bound_to(secret, CSRF_PURPOSE);
    let action = format!("{}/account/security", app.issuer.path());
    page(
        app,
        status,
        TotpEnrolPage {
            action: &action,
            client_id: None,
            username: &session.username,
            request_id: None,
            csrf_token: csrf.expose(),
            qr_svg: &enrolment.qr_svg().unwrap_or_default(),
            secret: &enrolment.secret_base32,
            error,
        }
        .render(),
    )
}

/// `GET|HEAD|POST /account/security`. GET shows the page; POST does one `action` (`start`,
/// `confirm`, `recovery`, `remove`) with the form's CSRF token (403 without it).
pub async fn security(
    app: web::Data<AppState>,
    request: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let (session, secret) = match signed_in(&app, &request).await {
        Ok(signed_in) => signed_in,
        Err(page) => return page,
    };
    if request.method() != actix_web::http::Method::POST {
        return security_page(&app, &session, &secret, StatusCode::OK, Shown::default()).await;
    }
    let params = match query_or_form(&app, &request, payload).await {
        Ok(params) => params,
        Err(page) => return page,
    };
    let csrf = CsrfToken::bound_to(&secret, CSRF_PURPOSE);
    if !params.get("csrf_token").is_some_and(|t| csrf.matches(t)) {
        return message(
            &app,
            StatusCode::FORBIDDEN,
            "Request refused",
            "This form does not belong to your session. Open the page again.",
        );
    }
    let code = params.get("code").unwrap_or("");
    let ip = client_ip(&app, &request);
    let user = session.user_id.clone();
    let wrong = "The code is incorrect or was used already.";
    match params.get("action") {
        Some("start") => enrolment_page(&app, &session, &secret, StatusCode::OK, None).await,
        Some("confirm") => match app.factors.confirm_totp(user.clone(), code, ip).await {
            Ok(()) => {
                tracing::info!(user_id = %user, "TOTP factor enrolled");
                let codes = match app.factors.new_recovery_codes(user).await {
                    Ok(codes) => codes,
                    Err(error) => return failed(&app, error),
                };
                let shown = Shown {
                    recovery_codes: &codes,
                    notice: Some("Your authenticator app is on."),
                    ..Shown::default()
                };
                security_page(&app, &session, &secret, StatusCode::OK, shown).await
            }
            Err(FactorError::InvalidCode) => {
                enrolment_page(
                    &app,
                    &session,
                    &secret,
                    StatusCode::UNAUTHORIZED,
                    Some(wrong),
                )
                .await
            }
            Err(error) => refused(&app, &session, &secret, error).await,
        },
        Some("recovery") => match app.factors.verify(user.clone(), code, ip).await {
            Ok(_) => {
                let codes = match app.factors.new_recovery_codes(user).await {
                    Ok(codes) => codes,
                    Err(error) => return failed(&app, error),
                };
                let shown = Shown {
                    recovery_codes: &codes,
                    notice: Some("New recovery codes: the old ones no longer work."),
                    ..Shown::default()
                };
                security_page(&app, &session, &secret, StatusCode::OK, shown).await
            }
            Err(error) => refused(&app, &session, &secret, error).await,
        },
        Some("remove") => match app.factors.remove_totp(user.clone(), code, ip).await {
            Ok(()) => {
                tracing::info!(user_id = %user, "TOTP factor removed by the user");
                let shown = Shown {
                    notice: Some("Your authenticator app is off."),
                    ..Shown::default()
                };
                security_page(&app, &session, &secret, StatusCode::OK, shown).await
            }
            Err(error) => refused(&app, &session, &secret, error).await,
        },
        Some("passkey-start") => {
            let name = params.get("passkey_name").unwrap_or("");
            passkey_start(&app, &session, &secret, name).await
        }
        Some("passkey-finish") => {
            let ceremony =
                crate::secrets::CeremonyId::presented(params.get("ceremony").unwrap_or(""));
            let credential = params.get("credential").unwrap_or("");
            let (status, shown) = match app
                .passkeys
                .finish_registration(user, &ceremony, credential)
                .await
            {
                Ok(name) => (
                    StatusCode::OK,
                    Ok(format!("Passkey \u{201c}{name}\u{201d} added.")),
                ),
                Err(PasskeyError::Refused) => (
                    StatusCode::BAD_REQUEST,
                    Err("The passkey was not added. Try again."),
                ),
                Err(PasskeyError::Duplicate) => (
                    StatusCode::CONFLICT,
                    Err("This passkey is registered already."),
                ),
                Err(PasskeyError::TooMany) => (StatusCode::BAD_REQUEST, Err(TOO_MANY)),
                Err(error) => return passkey_failed(&app, error),
            };
            let shown = match &shown {
                Ok(notice) => Shown {
                    notice: Some(notice),
                    ..Shown::default()
                },
                Err(error) => Shown {
                    error: Some(error),
                    ..Shown::default()
                },
            };
            security_page(&app, &session, &secret, status, shown).await
        }
        Some("passkey-remove") => {
            let id = params.get("passkey_id").unwrap_or("").to_owned();
            let (status, shown) = match app.passkeys.remove(user, id).await {
                Ok(true) => (
                    StatusCode::OK,
                    Shown {
                        notice: Some("Passkey removed: it no longer signs in."),
                        ..Shown::default()
                    },
                ),
                Ok(false) => (
                    StatusCode::NOT_FOUND,
                    Shown {
                        error: Some("You have no such passkey."),
                        ..Shown::default()
                    },
                ),
                Err(error) => return passkey_failed(&app, error),
            };
            security_page(&app, &session, &secret, status, shown).await
        }
        _ => message(
            &app,
            StatusCode::BAD_REQUEST,
            "Invalid request",
            "Choose an action on the page.",
        ),
    }
}

/// What the page says when the user has the most passkeys allowed.
const TOO_MANY: &str = "You have the most passkeys allowed (10). Remove one first.";

/// Starts registering a passkey named `name`: the ceremony page (its form comes back here with
/// `passkey-finish`), or the security page saying what is wrong with the name.
async fn passkey_start(
    app: &AppState,
    session: &SignedIn,
    secret: &SessionSecret,
    name: &str,
) -> HttpResponse {
    let started = match app
        .passkeys
        .start_registration(session.user_id.clone(), session.username.clone(), name)
        .await
    {
        Ok(started) => started,
        Err(PasskeyError::InvalidName) => {
            let shown = Shown {
                error: Some("Give the passkey a name of 1 to 64 characters."),
                ..Shown::default()
            };
            return security_page(app, session, secret, StatusCode::BAD_REQUEST, shown).await;
        }
        Err(PasskeyError::TooMany) => {
            let shown = Shown {
                error: Some(TOO_MANY),
                ..Shown::default()
            };
            return security_page(app, session, secret, StatusCode::BAD_REQUEST, shown).await;
        }
        Err(error) => return passkey_failed(app, error),
    };
    let csrf = CsrfToken::bound_to(secret, CSRF_PURPOSE);
    let action = format!("{}/account/security", app.issuer.path());
    let fields = [("csrf_token", csrf.expose()), ("action", "passkey-finish")];
    ceremony_page(
        app,
        StatusCode::OK,
        Ceremony {
            title: "Add a passkey",
            lead: "Your browser asks where to save the passkey and for your screen lock, PIN or fingerprint.",
            error: None,
            action: &action,
            fields: &fields,
            ceremony: started.ceremony.expose(),
            options: &started.options,
            button: "Create the passkey",
            back: Some(&action),
        },
    )
}

/// The security page after a refused code: 401 (wrong, used, nothing enrolled), 429 with
/// `Retry-After` (throttled), or the failure page.
async fn refused(
    app: &AppState,
    session: &SignedIn,
    secret: &SessionSecret,
    error: FactorError,
) -> HttpResponse {
    match error {
        FactorError::InvalidCode | FactorError::NotEnrolled => {
            let shown = Shown {
                error: Some("The code is incorrect or was used already."),
                ..Shown::default()
            };
            security_page(app, session, secret, StatusCode::UNAUTHORIZED, shown).await
        }
        FactorError::Throttled(seconds) => {
            let shown = Shown {
                error: Some("Too many attempts. Wait a while, then try again."),
                ..Shown::default()
            };
            let page =
                security_page(app, session, secret, StatusCode::TOO_MANY_REQUESTS, shown).await;
            retry_after(page, seconds)
        }
        other => failed(app, other),
    }
}
