//! The passkey ceremony page and its script (issue 17 item 1), HTTP side. Hosted pages run no
//! script except here: a page that runs a WebAuthn ceremony carries the server's options in a
//! `data-webauthn` attribute and loads `{issuer}/assets/passkey.js`, allowed by its exact URL in
//! `script-src` (CSP3 §2.3.1); the script fills the form's `credential` field and submits the
//! form, which the server answers like any other. Every other page keeps `default-src 'none'`.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use askama::Template;

use super::authorize::{PAGE_CSP, form_action_source, page_with_csp};
use crate::state::AppState;

/// The script, served as is.
const PASSKEY_JS: &str = include_str!("../../assets/passkey.js");

/// `GET|HEAD /assets/passkey.js`: the ceremony script (`text/javascript`, `nosniff`, cached for
/// an hour).
pub async fn script() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header(("Cache-Control", "public, max-age=3600"))
        .body(PASSKEY_JS)
}

/// The page of one ceremony: the options, the form's fields and its button.
#[derive(Template)]
#[template(path = "passkey_ceremony.html")]
struct CeremonyPage<'a> {
    base: &'a str,
    title: &'a str,
    lead: &'a str,
    error: Option<&'a str>,
    action: &'a str,
    fields: &'a [(&'a str, &'a str)],
    ceremony: &'a str,
    options: &'a str,
    button: &'a str,
    back: Option<&'a str>,
}

/// What a ceremony page says and where its form goes.
pub(super) struct Ceremony<'a> {
    /// The page's heading.
    pub title: &'a str,
    /// The line under it.
    pub lead: &'a str,
    /// An error to show (a refused passkey, before trying again).
    pub error: Option<&'a str>,
    /// Where the form posts (under the issuer's path).
    pub action: &'a str,
    /// The form's hidden fields besides `ceremony` and `credential` (CSRF token, request id…).
    pub fields: &'a [(&'a str, &'a str)],
    /// The ceremony's id.
    pub ceremony: &'a str,
    /// The WebAuthn options, JSON.
    pub options: &'a str,
    /// The button's text.
    pub button: &'a str,
    /// A link back, if any.
    pub back: Option<&'a str>,
}

/// The ceremony page under a CSP that runs the passkey script and nothing else.
pub(super) fn ceremony_page(app: &AppState, status: StatusCode, c: Ceremony<'_>) -> HttpResponse {
    let script = form_action_source(&format!("{}/assets/passkey.js", app.issuer.as_str()));
    let csp = format!("{PAGE_CSP}; script-src {script}");
    let body = CeremonyPage {
        base: app.issuer.path(),
        title: c.title,
        lead: c.lead,
        error: c.error,
        action: c.action,
        fields: c.fields,
        ceremony: c.ceremony,
        options: c.options,
        button: c.button,
        back: c.back,
    }
    .render();
    page_with_csp(app, status, &csp, body)
}
