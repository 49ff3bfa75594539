//! `oidcc-rp-initiated-logout-certification-test-plan` (oidf-spec.md §4): after a normal first
//! flow (`AbstractOIDCCRpInitiatedLogout`), a GET of the end-session endpoint in the same
//! browser; modules expecting the redirect check its query and then a `prompt=none` that must
//! fail, modules expecting a page fail on any call of the post-logout callback.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;

use super::checks::{self, USER_INTERFACE_ERRORS};
use super::config::{all_endpoints_https, https_op, https_url};
use super::{Auth, Flow, Mode, Op, Outcome, end_session_state, fresh_browser, long_state};
use crate::helpers::{Backend, Sent, hidden};
use crate::oidf_modules;

/// What the end-session endpoint did.
enum Ended {
    /// It redirected to the post-logout redirect URI.
    Redirect(url::Url),
    /// It showed a page.
    Page(Outcome),
}

/// A browser signed in through the first flow of the logout modules.
async fn signed_in(op: &Op) -> (reqwest::Client, Flow) {
    let browser = fresh_browser();
    let request = op.request(&op.client);
    let flow = op.flow(&browser, &op.client, &request, Auth::Basic).await;
    (browser, flow)
}

/// `CreateEndSessionEndpointRequest` with `params`, GET by the browser.
async fn end_session(op: &Op, browser: &reqwest::Client, params: &[(&str, &str)]) -> Ended {
    let mut url = url::Url::parse(op.discovery["end_session_endpoint"].as_str().unwrap())
        .expect("end_session_endpoint");
    if !params.is_empty() {
        url.query_pairs_mut().extend_pairs(params);
    }
    let response = browser.get(url.as_str()).sent().await;
    ended(response).await
}

async fn ended(response: reqwest::Response) -> Ended {
    let status = response.status();
    if status.is_redirection() {
        let location = response.headers()["location"].to_str().unwrap().to_owned();
        let url = url::Url::parse(&location).expect("absolute location");
        return Ended::Redirect(url);
    }
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    Ended::Page(Outcome::Page {
        status,
        content_type,
        html: response.text().await.unwrap(),
    })
}

/// A page is expected (a screenshot, REVIEW): any call of the post-logout callback fails the
/// module. Returns the page.
fn expect_page(ended: Ended, what: &str) -> String {
    match ended {
        Ended::Redirect(url) => panic!("{what}: a page was expected, redirected to {url}"),
        Ended::Page(outcome) => checks::page(&outcome, what),
    }
}

/// The redirect to the registered post-logout URI: `CheckPostLogoutState` /
/// `CheckNoPostLogoutState`, `CheckForUnexpectedParametersInPostLogoutRedirect` (WARNING).
fn expect_redirect(ended: Ended, state: Option<&str>) {
    let Ended::Redirect(url) = ended else {
        panic!("a redirect to the post-logout redirect URI was expected");
    };
    let mut bare = url.clone();
    bare.set_query(None);
    assert_eq!(bare.as_str(), super::post_logout_redirect_uri());
    let params: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    for (name, _) in &params {
        assert_eq!(
            name, "state",
            "CheckForUnexpectedParametersInPostLogoutRedirect"
        );
    }
    let returned = params
        .iter()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.as_str());
    assert_eq!(
        returned, state,
        "CheckPostLogoutState / CheckNoPostLogoutState"
    );
}

/// After the redirect: a `prompt=none` authorization must fail with an error that needs a
/// user interface (the generic error checks).
async fn prompt_none_fails(op: &Op, browser: &reqwest::Client) {
    let request = op
        .request(&op.client)
        .set("prompt", "none")
        .set("state", &long_state());
    let callback = op.authorize(browser, &request).await.callback();
    checks::authorization_error(
        &callback,
        &request,
        op.issuer(),
        Mode::Query,
        &USER_INTERFACE_ERRORS,
    );
}

/// `OIDCCRpInitiatedLogoutDiscoveryEndpointVerification` (§4.1): on an https issuer,
/// `CheckDiscEndpointAllEndpointsAreHttps` and `CheckDiscEndSessionEndpoint`.
async fn oidcc_rp_initiated_logout_discovery_endpoint_verification(backend: Backend) {
    let (_env, _app, response) = https_op(backend).await;
    assert_eq!(response.status(), 200);
    let doc: serde_json::Value = response.json().await.unwrap();
    all_endpoints_https(&doc);
    https_url(&doc["end_session_endpoint"], "CheckDiscEndSessionEndpoint");
}

/// `OIDCCRpInitiatedLogout` (§4.2): hint, registered URI and state: redirected with the state;
/// the session is over.
async fn oidcc_rp_initiated_logout(backend: Backend) {
    let op = Op::new(backend, Mode::Query).await;
    let (browser, flow) = signed_in(&op).await;
    let state = end_session_state();
    let uri = super::post_logout_redirect_uri();
    let ended = end_session(
        &op,
        &browser,
        &[
            ("id_token_hint", flow.tokens.id_token.as_str()),
            ("post_logout_redirect_uri", &uri),
            ("state", &state),
        ],
    )
    .await;
    expect_redirect(ended, Some(&state));
    prompt_none_fails(&op, &browser).await;
}

/// `OIDCCRpInitiatedLogoutBadLogoutRedirectUri` (§4.3): an unregistered URI: a page.
async fn oidcc_rp_initiated_logout_bad_post_logout_redirect_uri(backend: Backend) {
    let op = Op::new(backend, Mode::Query).await;
    let (browser, flow) = signed_in(&op).await;
    let bad = format!("{}/bad_post_logout_redirect_uri", super::BASE);
    let ended = end_session(
        &op,
        &browser,
        &[
            ("id_token_hint", flow.tokens.id_token.as_str()),
            ("post_logout_redirect_uri", &bad),
            ("state", &end_session_state()),
        ],
    )
    .await;
    expect_page(ended, "ExpectPostLogoutRedirectUriNotRegisteredErrorPage");
}

/// `OIDCCRpInitiatedLogoutModifiedIdTokenHint` (§4.4): the hint's header replaced by
/// `{"alg": "none"}` and its signature dropped: a page.
async fn oidcc_rp_initiated_logout_modified_id_token_hint(backend: Backend) {
    let op = Op::new(backend, Mode::Query).await;
    let (browser, flow) = signed_in(&op).await;
    let payload = flow.tokens.id_token.split('.').nth(1).unwrap();
    let none = format!(
        "{}.{payload}.",
        URL_SAFE_NO_PAD.encode(br#"{"alg": "none"}"#)
    );
    let ended = end_session(
        &op,
        &browser,
        &[
            ("id_token_hint", none.as_str()),
            (
                "post_logout_redirect_uri",
                &super::post_logout_redirect_uri(),
            ),
            ("state", &end_session_state()),
        ],
    )
    .await;
    expect_page(ended, "ExpectInvalidIdTokenHintErrorPage");
}

/// `OIDCCRpInitiatedLogoutNoIdTokenHint` (§4.5): URI and state, no hint (and no client_id): a
/// page.
async fn oidcc_rp_initiated_logout_no_id_token_hint(backend: Backend) {
    let op = Op::new(backend, Mode::Query).await;
    let (browser, _) = signed_in(&op).await;
    let ended = end_session(
        &op,
        &browser,
        &[
            (
                "post_logout_redirect_uri",
                &super::post_logout_redirect_uri(),
            ),
            ("state", &end_session_state()),
        ],
    )
    .await;
    expect_page(ended, "a logout or error page");
}

/// `OIDCCRpInitiatedLogoutNoParams` (§4.6): no parameters: a page (`ExpectSuccessfulLogoutPage`);
/// Portcullis asks for confirmation, and once the tester confirms, says the user is signed out.
async fn oidcc_rp_initiated_logout_no_params(backend: Backend) {
    let op = Op::new(backend, Mode::Query).await;
    let (browser, _) = signed_in(&op).await;
    let html = expect_page(
        end_session(&op, &browser, &[]).await,
        "ExpectSuccessfulLogoutPage",
    );
    let confirmed = browser
        .post(op.discovery["end_session_endpoint"].as_str().unwrap())
        .form(&[
            ("csrf_token", hidden(&html, "csrf_token")),
            ("decision", "sign_out".to_owned()),
        ])
        .sent()
        .await;
    let page = expect_page(ended(confirmed).await, "ExpectSuccessfulLogoutPage");
    assert!(page.contains("You are signed out."), "{page}");
    prompt_none_fails(&op, &browser).await;
}

/// `OIDCCRpInitiatedLogoutNoPostLogoutRedirectUri` (§4.7): hint and state: the logged-out page.
async fn oidcc_rp_initiated_logout_no_post_logout_redirect_uri(backend: Backend) {
    let op = Op::new(backend, Mode::Query).await;
    let (browser, flow) = signed_in(&op).await;
    let ended = end_session(
        &op,
        &browser,
        &[
            ("id_token_hint", flow.tokens.id_token.as_str()),
            ("state", &end_session_state()),
        ],
    )
    .await;
    let page = expect_page(ended, "a logged-out page");
    assert!(page.contains("You are signed out."), "{page}");
}

/// `OIDCCRpInitiatedLogoutNoState` (§4.8): hint and URI, no state: redirected without a state.
async fn oidcc_rp_initiated_logout_no_state(backend: Backend) {
    let op = Op::new(backend, Mode::Query).await;
    let (browser, flow) = signed_in(&op).await;
    let ended = end_session(
        &op,
        &browser,
        &[
            ("id_token_hint", flow.tokens.id_token.as_str()),
            (
                "post_logout_redirect_uri",
                &super::post_logout_redirect_uri(),
            ),
        ],
    )
    .await;
    expect_redirect(ended, None);
    prompt_none_fails(&op, &browser).await;
}

/// `OIDCCRpInitiatedLogoutOnlyState` (§4.9): only a state: a page.
async fn oidcc_rp_initiated_logout_only_state(backend: Backend) {
    let op = Op::new(backend, Mode::Query).await;
    let (browser, _) = signed_in(&op).await;
    let ended = end_session(&op, &browser, &[("state", &end_session_state())]).await;
    expect_page(ended, "a logout page");
}

/// `OIDCCRpInitiatedLogoutQueryAddedToLogoutRedirectUri` (§4.10): `?foo=bar` added to the
/// registered URI: a page.
async fn oidcc_rp_initiated_logout_query_added_to_post_logout_redirect_uri(backend: Backend) {
    let op = Op::new(backend, Mode::Query).await;
    let (browser, flow) = signed_in(&op).await;
    let uri = format!("{}?foo=bar", super::post_logout_redirect_uri());
    let ended = end_session(
        &op,
        &browser,
        &[
            ("id_token_hint", flow.tokens.id_token.as_str()),
            ("post_logout_redirect_uri", &uri),
            ("state", &end_session_state()),
        ],
    )
    .await;
    expect_page(ended, "an error page");
}

/// `OIDCCRpInitiatedLogoutBadIdTokenHint` (§4.11): a hint signed by the suite (HS256 keyed with
/// the client secret, `iss` the client): a page.
async fn oidcc_rp_initiated_logout_bad_id_token_hint(backend: Backend) {
    let op = Op::new(backend, Mode::Query).await;
    let (browser, _) = signed_in(&op).await;
    let now = op.now();
    let claims = json!({
        "iss": op.client.id, "sub": "SubjectID", "aud": op.issuer(), "nonce": "flibble",
        "iat": now, "exp": now + 300,
    });
    let hint = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(op.client.secret.as_bytes()),
    )
    .unwrap();
    let ended = end_session(
        &op,
        &browser,
        &[
            ("id_token_hint", hint.as_str()),
            (
                "post_logout_redirect_uri",
                &super::post_logout_redirect_uri(),
            ),
            ("state", &end_session_state()),
        ],
    )
    .await;
    expect_page(ended, "ExpectInvalidIdTokenHintErrorPage");
    // The session is still there (nothing was ended by a forged hint).
    let request = op.request(&op.client).set("prompt", "none");
    let callback = op.authorize(&browser, &request).await.callback();
    assert!(callback.param("code").is_some(), "{:?}", callback.params);
}

oidf_modules!(
    oidcc_rp_initiated_logout_discovery_endpoint_verification,
    oidcc_rp_initiated_logout,
    oidcc_rp_initiated_logout_bad_post_logout_redirect_uri,
    oidcc_rp_initiated_logout_modified_id_token_hint,
    oidcc_rp_initiated_logout_no_id_token_hint,
    oidcc_rp_initiated_logout_no_params,
    oidcc_rp_initiated_logout_no_post_logout_redirect_uri,
    oidcc_rp_initiated_logout_no_state,
    oidcc_rp_initiated_logout_only_state,
    oidcc_rp_initiated_logout_query_added_to_post_logout_redirect_uri,
    oidcc_rp_initiated_logout_bad_id_token_hint,
);
