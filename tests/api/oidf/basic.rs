//! `oidcc-basic-certification-test-plan` (oidf-spec.md §1): every module, in the plan's order.
//! Each module body takes the response mode, so the form-post plan (§3, [`super::formpost`])
//! runs the same bodies with `response_mode=form_post`.
//!
//! Not run for a static client (`@VariantNotApplicable(ClientRegistration=static_client)` or
//! dynamic registration needed), so no test: `oidcc-idtoken-signature`,
//! `oidcc-idtoken-unsigned`, `oidcc-request-uri-unsigned-supported-correctly-or-rejected-as-unsupported`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use super::checks::{self, USER_INTERFACE_ERRORS};
use super::{Auth, AuthRequest, Mode, Op, Outcome, fresh_browser, long_state, random_alnum};
use crate::helpers::{Backend, Sent, json_of};
use crate::oidf_modules;

/// `OIDCCServerTest` (§1.1): the happy flow and its extra checks.
pub async fn oidcc_server_in(backend: Backend, mode: Mode) {
    let op = Op::new(backend, mode).await;
    let request = op.request(&op.client);
    let flow = op
        .flow(&fresh_browser(), &op.client, &request, Auth::Basic)
        .await;
    checks::oidcc_server(&flow);
}

async fn oidcc_server(backend: Backend) {
    oidcc_server_in(backend, Mode::Query).await
}

/// `OIDCCResponseTypeMissing` (§1.2): an error redirected (invalid_request or
/// unsupported_response_type, the generic error checks) or an error page.
pub async fn oidcc_response_type_missing_in(backend: Backend, mode: Mode) {
    let op = Op::new(backend, mode).await;
    let request = op.request(&op.client).without("response_type");
    let driven = op.authorize(&fresh_browser(), &request).await;
    match &driven.outcome {
        Outcome::Callback(callback) => {
            checks::authorization_error(
                callback,
                &request,
                op.issuer(),
                mode,
                &["unsupported_response_type", "invalid_request"],
            );
        }
        page => {
            checks::page(page, "ExpectResponseTypeMissingErrorPage");
        }
    }
}

async fn oidcc_response_type_missing(backend: Backend) {
    oidcc_response_type_missing_in(backend, Mode::Query).await
}

/// `OIDCCUserInfoGet` (§1.5): userinfo by GET with the bearer header (the flow's call).
pub async fn oidcc_userinfo_get_in(backend: Backend, mode: Mode) {
    let op = Op::new(backend, mode).await;
    let request = op.request(&op.client);
    let flow = op
        .flow(&fresh_browser(), &op.client, &request, Auth::Basic)
        .await;
    let response = op.userinfo(flow.tokens.access_token()).await;
    checks::userinfo_response(response, &flow.tokens.id_claims, op.now()).await;
}

async fn oidcc_userinfo_get(backend: Backend) {
    oidcc_userinfo_get_in(backend, Mode::Query).await
}

/// `OIDCCUserInfoPostHeader` (§1.6): POST, bearer header, form content type, empty body.
pub async fn oidcc_userinfo_post_header_in(backend: Backend, mode: Mode) {
    let op = Op::new(backend, mode).await;
    let request = op.request(&op.client);
    let flow = op
        .flow(&fresh_browser(), &op.client, &request, Auth::Basic)
        .await;
    let response = op
        .app
        .client
        .post(op.discovery["userinfo_endpoint"].as_str().unwrap())
        .header("accept", "application/json")
        .header("content-type", "application/x-www-form-urlencoded")
        .bearer_auth(flow.tokens.access_token())
        .body("")
        .sent()
        .await;
    checks::userinfo_response(response, &flow.tokens.id_claims, op.now()).await;
}

async fn oidcc_userinfo_post_header(backend: Backend) {
    oidcc_userinfo_post_header_in(backend, Mode::Query).await
}

/// `OIDCCUserInfoPostBody` (§1.7): POST, no Authorization header, `access_token` in the form
/// body (RFC 6750 §2.2). A non-2xx answer is `UserInfoEndpointWithAccessTokenInBodyNotSupported`
/// (WARNING).
pub async fn oidcc_userinfo_post_body_in(backend: Backend, mode: Mode) {
    let op = Op::new(backend, mode).await;
    let request = op.request(&op.client);
    let flow = op
        .flow(&fresh_browser(), &op.client, &request, Auth::Basic)
        .await;
    let response = op
        .app
        .client
        .post(op.discovery["userinfo_endpoint"].as_str().unwrap())
        .header("accept", "application/json")
        .form(&[("access_token", flow.tokens.access_token())])
        .sent()
        .await;
    assert!(
        response.status().is_success(),
        "UserInfoEndpointWithAccessTokenInBodyNotSupported: {}",
        response.status()
    );
    checks::userinfo_response(response, &flow.tokens.id_claims, op.now()).await;
}

async fn oidcc_userinfo_post_body(backend: Backend) {
    oidcc_userinfo_post_body_in(backend, Mode::Query).await
}

/// `OIDCCEnsureRequestWithoutNonceSucceedsForCodeFlow` (§1.8): no nonce (and no PKCE): a code;
/// the module stops after the callback.
pub async fn oidcc_ensure_request_without_nonce_succeeds_for_code_flow_in(
    backend: Backend,
    mode: Mode,
) {
    let op = Op::new(backend, mode).await;
    let request = op.request(&op.client).without("nonce");
    let callback = op.authorize(&fresh_browser(), &request).await.callback();
    checks::authorization_response(&callback, &request, op.issuer(), mode);
}

async fn oidcc_ensure_request_without_nonce_succeeds_for_code_flow(backend: Backend) {
    oidcc_ensure_request_without_nonce_succeeds_for_code_flow_in(backend, Mode::Query).await
}

/// `AbstractOIDCCReturnedClaimsServerTest` with `scope`: SKIPPED unless `scopes_supported` has
/// every scope (`OIDCCCheckScopesSupportedContainScopeTest`); else the flow, the userinfo checks
/// and `VerifyScopesReturnedInUserInfoClaims` (WARNING). Returns the flow, if it ran.
async fn returned_claims(op: &Op, request: AuthRequest) -> Option<super::Flow> {
    let scope = request.get("scope").unwrap().to_owned();
    let supported = &op.discovery["scopes_supported"];
    if !scope.split(' ').all(|s| checks::has(supported, s)) {
        return None;
    }
    let flow = op
        .flow(&fresh_browser(), &op.client, &request, Auth::Basic)
        .await;
    checks::scopes_in_userinfo(&flow.userinfo, &scope);
    checks::no_unrequested_claims(&flow.tokens.id_claims, &scope);
    Some(flow)
}

/// `OIDCCScopeProfile` (§1.9).
pub async fn oidcc_scope_profile_in(backend: Backend, mode: Mode) {
    let op = Op::new(backend, mode).await;
    let request = op.request(&op.client).set("scope", "openid profile");
    returned_claims(&op, request)
        .await
        .expect("profile is in scopes_supported: the module runs");
}

async fn oidcc_scope_profile(backend: Backend) {
    oidcc_scope_profile_in(backend, Mode::Query).await
}

/// `OIDCCScopeEmail` (§1.10): plus no `name` in the ID token or userinfo, and no `email` in the
/// ID token of a code flow (`EnsureIdTokenDoesNotContainEmailForScopeEmail`, WARNING).
pub async fn oidcc_scope_email_in(backend: Backend, mode: Mode) {
    let op = Op::new(backend, mode).await;
    scope_email(&op, op.request(&op.client).set("scope", "openid email")).await;
}

async fn scope_email(op: &Op, request: AuthRequest) {
    let flow = returned_claims(op, request)
        .await
        .expect("email is in scopes_supported: the module runs");
    checks::id_token_without_name(&flow.tokens.id_claims);
    checks::id_token_without_email(&flow.tokens.id_claims);
    assert!(
        flow.userinfo.get("name").is_none(),
        "EnsureUserInfoDoesNotContainName"
    );
}

async fn oidcc_scope_email(backend: Backend) {
    oidcc_scope_email_in(backend, Mode::Query).await
}

/// A scope module the suite skips while the scope is not advertised: the skip condition, or
/// (once advertised) the module.
async fn scope_module(backend: Backend, mode: Mode, scope: &str) {
    let op = Op::new(backend, mode).await;
    let request = op.request(&op.client).set("scope", scope);
    if returned_claims(&op, request).await.is_none() {
        // OIDCCCheckScopesSupportedContainScopeTest: SKIPPED (acceptable for certification).
        let supported = &op.discovery["scopes_supported"];
        assert!(
            scope.split(' ').any(|s| !checks::has(supported, s)),
            "{scope}: the skip condition"
        );
    }
}

/// `OIDCCScopeAddress` (§1.11): SKIPPED while `address` is not in `scopes_supported`.
pub async fn oidcc_scope_address_in(backend: Backend, mode: Mode) {
    scope_module(backend, mode, "openid address").await
}

async fn oidcc_scope_address(backend: Backend) {
    oidcc_scope_address_in(backend, Mode::Query).await
}

/// `OIDCCScopePhone` (§1.12): SKIPPED while `phone` is not in `scopes_supported`.
pub async fn oidcc_scope_phone_in(backend: Backend, mode: Mode) {
    scope_module(backend, mode, "openid phone").await
}

async fn oidcc_scope_phone(backend: Backend) {
    oidcc_scope_phone_in(backend, Mode::Query).await
}

/// `OIDCCScopeAll` (§1.13): SKIPPED while `address`/`phone` are not in `scopes_supported`.
pub async fn oidcc_scope_all_in(backend: Backend, mode: Mode) {
    scope_module(backend, mode, "openid email phone address profile").await
}

async fn oidcc_scope_all(backend: Backend) {
    oidcc_scope_all_in(backend, Mode::Query).await
}

/// `OIDCCAlternateHappyFlow` (§1.14): scope-email with `scope=email openid` and the parameters
/// in reverse order.
pub async fn oidcc_alternate_happy_flow_in(backend: Backend, mode: Mode) {
    let op = Op::new(backend, mode).await;
    let request = op
        .request(&op.client)
        .set("scope", "email openid")
        .reversed();
    scope_email(&op, request).await;
}

async fn oidcc_alternate_happy_flow(backend: Backend) {
    oidcc_alternate_happy_flow_in(backend, Mode::Query).await
}

/// A module that is the standard flow with `name=value` added (display, locales, unknown
/// parameter).
async fn flow_with(backend: Backend, mode: Mode, name: &str, value: &str) {
    let op = Op::new(backend, mode).await;
    let request = op.request(&op.client).set(name, value);
    op.flow(&fresh_browser(), &op.client, &request, Auth::Basic)
        .await;
}

/// `OIDCCDisplayPage` (§1.15).
pub async fn oidcc_display_page_in(backend: Backend, mode: Mode) {
    flow_with(backend, mode, "display", "page").await
}

async fn oidcc_display_page(backend: Backend) {
    oidcc_display_page_in(backend, Mode::Query).await
}

/// `OIDCCDisplayPopup` (§1.16).
pub async fn oidcc_display_popup_in(backend: Backend, mode: Mode) {
    flow_with(backend, mode, "display", "popup").await
}

async fn oidcc_display_popup(backend: Backend) {
    oidcc_display_popup_in(backend, Mode::Query).await
}

/// `CheckSecondIdTokenAuthTimeIsLaterIfPresent`.
fn auth_time_later(first: &Value, second: &Value) {
    if let (Some(a), Some(b)) = (first["auth_time"].as_i64(), second["auth_time"].as_i64()) {
        assert!(
            b > a,
            "CheckSecondIdTokenAuthTimeIsLaterIfPresent: {a} then {b}"
        );
    }
}

/// `CheckIdTokenAuthTimeClaimsSameIfPresent`, `CheckIdTokenSubConsistentForSecondAuthorization`.
fn same_authentication(first: &Value, second: &Value) {
    if first.get("auth_time").is_some() && second.get("auth_time").is_some() {
        assert_eq!(
            first["auth_time"], second["auth_time"],
            "CheckIdTokenAuthTimeClaimsSameIfPresent"
        );
    }
    assert_eq!(
        first["sub"], second["sub"],
        "CheckIdTokenSubConsistentForSecondAuthorization"
    );
}

/// `OIDCCPromptLogin` (§1.17): a second flow with `prompt=login` a second later shows the login
/// page again (`ExpectSecondLoginPage`) and a later `auth_time`.
pub async fn oidcc_prompt_login_in(backend: Backend, mode: Mode) {
    let op = Op::new(backend, mode).await;
    let browser = fresh_browser();
    let first = op
        .flow(&browser, &op.client, &op.request(&op.client), Auth::Basic)
        .await;
    assert_eq!(first.logins, 1);
    op.wait(1);
    let request = op.request(&op.client).set("prompt", "login");
    let second = op.flow(&browser, &op.client, &request, Auth::Basic).await;
    assert_eq!(second.logins, 1, "ExpectSecondLoginPage");
    auth_time_later(&first.tokens.id_claims, &second.tokens.id_claims);
}

async fn oidcc_prompt_login(backend: Backend) {
    oidcc_prompt_login_in(backend, Mode::Query).await
}

/// `OIDCCPromptNoneNotLoggedIn` (§1.18): a fresh browser, a 128-character state, `prompt=none`:
/// an error that requires a user interface, with the generic error checks.
pub async fn oidcc_prompt_none_not_logged_in_in(backend: Backend, mode: Mode) {
    let op = Op::new(backend, mode).await;
    let request = op
        .request(&op.client)
        .set("state", &long_state())
        .set("prompt", "none");
    let callback = op.authorize(&fresh_browser(), &request).await.callback();
    checks::authorization_error(
        &callback,
        &request,
        op.issuer(),
        mode,
        &USER_INTERFACE_ERRORS,
    );
}

async fn oidcc_prompt_none_not_logged_in(backend: Backend) {
    oidcc_prompt_none_not_logged_in_in(backend, Mode::Query).await
}

/// `AbstractOIDCCSameAuthTwiceServerTest`: a login, then `second` in the same browser without
/// any page; the same `auth_time` and `sub`. Returns both ID-token claim sets.
async fn same_auth_twice(op: &Op, first: AuthRequest, second: AuthRequest) -> (Value, Value) {
    let browser = fresh_browser();
    let one = op.flow(&browser, &op.client, &first, Auth::Basic).await;
    let two = op.flow(&browser, &op.client, &second, Auth::Basic).await;
    assert_eq!(two.logins, 0, "the second authorization asks nothing");
    same_authentication(&one.tokens.id_claims, &two.tokens.id_claims);
    (one.tokens.id_claims, two.tokens.id_claims)
}

/// `OIDCCPromptNoneLoggedIn` (§1.19).
pub async fn oidcc_prompt_none_logged_in_in(backend: Backend, mode: Mode) {
    let op = Op::new(backend, mode).await;
    let second = op.request(&op.client).set("prompt", "none");
    same_auth_twice(&op, op.request(&op.client), second).await;
}

async fn oidcc_prompt_none_logged_in(backend: Backend) {
    oidcc_prompt_none_logged_in_in(backend, Mode::Query).await
}

/// oidcc-prompt-none-logged-in with the certification client registered third-party: the
/// consent given at the first flow is remembered for the `prompt=none` one (C3).
async fn oidcc_prompt_none_logged_in_third_party(backend: Backend) {
    let op = Op::configured(backend, Mode::Query, Auth::Basic, false).await;
    let second = op.request(&op.client).set("prompt", "none");
    same_auth_twice(&op, op.request(&op.client), second).await;
}

/// `OIDCCMaxAge1` (§1.20): two seconds after a login, `max_age=1` shows the login page again;
/// the second `auth_time` is present, later, and recent.
pub async fn oidcc_max_age_1_in(backend: Backend, mode: Mode) {
    let op = Op::new(backend, mode).await;
    let browser = fresh_browser();
    let first = op
        .flow(&browser, &op.client, &op.request(&op.client), Auth::Basic)
        .await;
    op.wait(2);
    let request = op.request(&op.client).set("max_age", "1");
    let second = op.flow(&browser, &op.client, &request, Auth::Basic).await;
    assert_eq!(second.logins, 1, "ExpectSecondLoginPage");
    let auth_time = second.tokens.id_claims["auth_time"]
        .as_i64()
        .expect("CheckIdTokenAuthTimeClaimPresentDueToMaxAge");
    auth_time_later(&first.tokens.id_claims, &second.tokens.id_claims);
    assert!(
        auth_time >= op.now() - 301,
        "CheckIdTokenAuthTimeIsRecentIfPresent"
    );
}

async fn oidcc_max_age_1(backend: Backend) {
    oidcc_max_age_1_in(backend, Mode::Query).await
}

/// `OIDCCMaxAge10000` (§1.21): `max_age=15000` then `max_age=10000`: no second login, the same
/// authentication, `auth_time` present in both.
pub async fn oidcc_max_age_10000_in(backend: Backend, mode: Mode) {
    let op = Op::new(backend, mode).await;
    let first = op.request(&op.client).set("max_age", "15000");
    let second = op.request(&op.client).set("max_age", "10000");
    let (one, two) = same_auth_twice(&op, first, second).await;
    for claims in [one, two] {
        assert!(
            claims["auth_time"].is_i64(),
            "CheckIdTokenAuthTimeClaimPresentDueToMaxAge"
        );
    }
}

async fn oidcc_max_age_10000(backend: Backend) {
    oidcc_max_age_10000_in(backend, Mode::Query).await
}

/// `OIDCCEnsureRequestWithUnknownParameterSucceeds` (§1.22).
pub async fn oidcc_ensure_request_with_unknown_parameter_succeeds_in(backend: Backend, mode: Mode) {
    flow_with(backend, mode, "extra", "foobar").await
}

async fn oidcc_ensure_request_with_unknown_parameter_succeeds(backend: Backend) {
    oidcc_ensure_request_with_unknown_parameter_succeeds_in(backend, Mode::Query).await
}

/// `OIDCCIdTokenHint` (§1.23): the second authorization is `prompt=none` with the first ID
/// token as `id_token_hint`.
pub async fn oidcc_id_token_hint_in(backend: Backend, mode: Mode) {
    let op = Op::new(backend, mode).await;
    let browser = fresh_browser();
    let first = op
        .flow(&browser, &op.client, &op.request(&op.client), Auth::Basic)
        .await;
    let request = op
        .request(&op.client)
        .set("prompt", "none")
        .set("id_token_hint", &first.tokens.id_token);
    let second = op.flow(&browser, &op.client, &request, Auth::Basic).await;
    assert_eq!(second.logins, 0, "no page for prompt=none");
    same_authentication(&first.tokens.id_claims, &second.tokens.id_claims);
}

async fn oidcc_id_token_hint(backend: Backend) {
    oidcc_id_token_hint_in(backend, Mode::Query).await
}

/// oidcc-id-token-hint with the certification client registered third-party (C3).
async fn oidcc_id_token_hint_third_party(backend: Backend) {
    let op = Op::configured(backend, Mode::Query, Auth::Basic, false).await;
    let browser = fresh_browser();
    let first = op
        .flow(&browser, &op.client, &op.request(&op.client), Auth::Basic)
        .await;
    let request = op
        .request(&op.client)
        .set("prompt", "none")
        .set("id_token_hint", &first.tokens.id_token);
    let second = op.flow(&browser, &op.client, &request, Auth::Basic).await;
    same_authentication(&first.tokens.id_claims, &second.tokens.id_claims);
}

/// `OIDCCLoginHint` (§1.24): `login_hint=buffy@<issuer host>`, a fresh browser, a login.
pub async fn oidcc_login_hint_in(backend: Backend, mode: Mode) {
    let op = Op::new(backend, mode).await;
    let host = url::Url::parse(op.issuer())
        .unwrap()
        .host_str()
        .unwrap()
        .to_owned();
    let request = op
        .request(&op.client)
        .set("login_hint", &format!("buffy@{host}"));
    let flow = op
        .flow(&fresh_browser(), &op.client, &request, Auth::Basic)
        .await;
    assert_eq!(flow.logins, 1);
}

async fn oidcc_login_hint(backend: Backend) {
    oidcc_login_hint_in(backend, Mode::Query).await
}

/// `OIDCCUiLocales` (§1.25).
pub async fn oidcc_ui_locales_in(backend: Backend, mode: Mode) {
    flow_with(backend, mode, "ui_locales", "se").await
}

async fn oidcc_ui_locales(backend: Backend) {
    oidcc_ui_locales_in(backend, Mode::Query).await
}

/// `OIDCCClaimsLocales` (§1.26).
pub async fn oidcc_claims_locales_in(backend: Backend, mode: Mode) {
    flow_with(backend, mode, "claims_locales", "se").await
}

async fn oidcc_claims_locales(backend: Backend) {
    oidcc_claims_locales_in(backend, Mode::Query).await
}

/// `OIDCCEnsureRequestWithAcrValuesSucceeds` (§1.27): `acr_values` = every advertised value
/// (else `1 2`); `ValidateIdTokenACRClaimAgainstAcrValuesRequest` (WARNING): `acr` is one of
/// them.
pub async fn oidcc_ensure_request_with_acr_values_succeeds_in(backend: Backend, mode: Mode) {
    let op = Op::new(backend, mode).await;
    let values: Vec<String> = op.discovery["acr_values_supported"]
        .as_array()
        .map(|a| a.iter().map(|v| v.as_str().unwrap().to_owned()).collect())
        .unwrap_or_else(|| vec!["1".into(), "2".into()]);
    let request = op.request(&op.client).set("acr_values", &values.join(" "));
    let flow = op
        .flow(&fresh_browser(), &op.client, &request, Auth::Basic)
        .await;
    let acr = flow.tokens.id_claims["acr"]
        .as_str()
        .expect("ValidateIdTokenACRClaimAgainstAcrValuesRequest: acr present");
    assert!(
        values.iter().any(|v| v == acr),
        "ValidateIdTokenACRClaimAgainstAcrValuesRequest: {acr} in {values:?}"
    );
}

async fn oidcc_ensure_request_with_acr_values_succeeds(backend: Backend) {
    oidcc_ensure_request_with_acr_values_succeeds_in(backend, Mode::Query).await
}

/// `AbstractOIDCCAuthCodeReuse`: the flow, then (after `wait` seconds) the same token request:
/// the token-endpoint error checks. Returns the op and the first access token.
async fn code_reuse(backend: Backend, mode: Mode, wait: u64) -> (Op, String) {
    let op = Op::new(backend, mode).await;
    let request = op.request(&op.client);
    let flow = op
        .flow(&fresh_browser(), &op.client, &request, Auth::Basic)
        .await;
    op.wait(wait);
    let again = op.redeem(&op.client, Auth::Basic, &flow.code, None).await;
    assert_ne!(again.status(), 200, "ServerAllowedReusingAuthorizationCode");
    checks::token_error_invalid_grant(again).await;
    let access_token = flow.tokens.access_token().to_owned();
    (op, access_token)
}

/// `OIDCCAuthCodeReuse` (§1.28).
pub async fn oidcc_codereuse_in(backend: Backend, mode: Mode) {
    code_reuse(backend, mode, 0).await;
}

async fn oidcc_codereuse(backend: Backend) {
    oidcc_codereuse_in(backend, Mode::Query).await
}

/// `OIDCCAuthCodeReuseAfter30Seconds` (§1.29): and the first access token is revoked
/// (`EnsureHttpStatusCodeIs4xx`, WARNING).
pub async fn oidcc_codereuse_30seconds_in(backend: Backend, mode: Mode) {
    let (op, access_token) = code_reuse(backend, mode, 30).await;
    let response = op.userinfo(&access_token).await;
    assert!(
        response.status().is_client_error(),
        "EnsureHttpStatusCodeIs4xx: {}",
        response.status()
    );
}

async fn oidcc_codereuse_30seconds(backend: Backend) {
    oidcc_codereuse_30seconds_in(backend, Mode::Query).await
}

/// `OIDCCEnsureRegisteredRedirectUri` (§1.30): `<base>/callback/<random>`: an error page
/// (`ExpectRedirectUriErrorPage`), no redirect to either URI.
pub async fn oidcc_ensure_registered_redirect_uri_in(backend: Backend, mode: Mode) {
    let op = Op::new(backend, mode).await;
    let bad = format!("{}/{}", super::redirect_uri(), random_alnum(10));
    let request = op.request(&op.client).set("redirect_uri", &bad);
    let driven = op.authorize(&fresh_browser(), &request).await;
    checks::page(&driven.outcome, "ExpectRedirectUriErrorPage");
}

async fn oidcc_ensure_registered_redirect_uri(backend: Backend) {
    oidcc_ensure_registered_redirect_uri_in(backend, Mode::Query).await
}

/// `OIDCCEnsurePostRequestSucceeds` (§1.31): the authorization request as a form POST.
pub async fn oidcc_ensure_post_request_succeeds_in(backend: Backend, mode: Mode) {
    let op = Op::new(backend, mode).await;
    let request = op.request(&op.client).posted();
    op.flow(&fresh_browser(), &op.client, &request, Auth::Basic)
        .await;
}

async fn oidcc_ensure_post_request_succeeds(backend: Backend) {
    oidcc_ensure_post_request_succeeds_in(backend, Mode::Query).await
}

/// `OIDCCServerTestClientSecretPost` (§1.32): discovery must list `client_secret_post`; the
/// token request authenticates in the body.
pub async fn oidcc_server_client_secret_post_in(backend: Backend, mode: Mode) {
    let op = Op::configured(backend, mode, Auth::Post, true).await;
    let request = op.request(&op.client);
    op.flow(&fresh_browser(), &op.client, &request, Auth::Post)
        .await;
}

async fn oidcc_server_client_secret_post(backend: Backend) {
    oidcc_server_client_secret_post_in(backend, Mode::Query).await
}

/// An unsigned request object (`alg: none`) of `claims`.
fn unsigned_request_object(claims: &Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{header}.{payload}.")
}

/// `AbstractOIDCCRequestObjectServerTest` request: the whole request as an unsigned request
/// object; the URL keeps `client_id`, `redirect_uri`, `response_type`, `scope`; `state`,
/// `nonce` and `response_mode` are only inside.
fn request_object_request(op: &Op) -> (AuthRequest, AuthRequest) {
    let full = op.request(&op.client);
    let mut claims = serde_json::Map::new();
    for name in [
        "client_id",
        "nonce",
        "redirect_uri",
        "response_type",
        "scope",
        "state",
        "response_mode",
    ] {
        if let Some(value) = full.get(name) {
            claims.insert(name.to_owned(), json!(value));
        }
    }
    claims.insert("iss".into(), json!(op.client.id));
    claims.insert("aud".into(), json!(op.issuer()));
    let outer = full
        .clone()
        .without("state")
        .without("nonce")
        .without("response_mode")
        .set("request", &unsigned_request_object(&Value::Object(claims)));
    (full, outer)
}

/// `OIDCCUnsignedRequestObjectSupportedCorrectlyOrRejectedAsUnsupported` (§1.34): SKIPPED at
/// configure when `request_object_signing_alg_values_supported` is an array without `none`;
/// here `none` is offered and request objects are supported, so the flow must complete: the
/// callback carries the `state` that is only inside the object (in the `response_mode` only
/// inside it, for the form-post plan), and the ID token the object's `nonce`.
pub async fn oidcc_unsigned_request_object_supported_correctly_or_rejected_as_unsupported_in(
    backend: Backend,
    mode: Mode,
) {
    let op = Op::new(backend, mode).await;
    let algs = &op.discovery["request_object_signing_alg_values_supported"];
    assert!(checks::has(algs, "none"), "none offered: the module runs");
    assert_eq!(op.discovery["request_parameter_supported"], json!(true));
    let (full, outer) = request_object_request(&op);
    assert!(outer.state().is_none() && outer.nonce().is_none());
    let callback = op.authorize(&fresh_browser(), &outer).await.callback();
    if mode == Mode::FormPost {
        checks::form_post_callback(&callback);
    }
    let code = checks::authorization_response(&callback, &full, op.issuer(), mode);
    op.tokens_for(&op.client, Auth::Basic, &code, &full).await;
}

async fn oidcc_unsigned_request_object_supported_correctly_or_rejected_as_unsupported(
    backend: Backend,
) {
    oidcc_unsigned_request_object_supported_correctly_or_rejected_as_unsupported_in(
        backend,
        Mode::Query,
    )
    .await
}

/// `OIDCCClaimsEssential` (§1.35): `claims={"userinfo":{"name":{"essential":true}}}`:
/// `EnsureUserInfoContainsName` and `EnsureIdTokenDoesNotContainName` (WARNING).
pub async fn oidcc_claims_essential_in(backend: Backend, mode: Mode) {
    let op = Op::new(backend, mode).await;
    let claims = json!({"userinfo": {"name": {"essential": true}}}).to_string();
    let request = op.request(&op.client).set("claims", &claims);
    let flow = op
        .flow(&fresh_browser(), &op.client, &request, Auth::Basic)
        .await;
    assert!(
        flow.userinfo["name"]
            .as_str()
            .is_some_and(|n| !n.is_empty()),
        "EnsureUserInfoContainsName: {}",
        flow.userinfo
    );
    checks::id_token_without_name(&flow.tokens.id_claims);
}

async fn oidcc_claims_essential(backend: Backend) {
    oidcc_claims_essential_in(backend, Mode::Query).await
}

/// `OIDCCEnsureRequestObjectWithRedirectUri` (§1.36): a request object with the good
/// redirect_uri inside and a bad one outside. Passing is the inner URI used, or an error page;
/// request objects supersede the outer parameters here (OIDC Core §6.3.3), so the flow
/// completes at the good URI (a redirect to it with an error, or anything at the bad one,
/// would fail `EnsureOPDoesNotUseDefaultRedirectUriInCaseOfInvalidRedirectUri`).
pub async fn oidcc_ensure_request_object_with_redirect_uri_in(backend: Backend, mode: Mode) {
    let op = Op::new(backend, mode).await;
    let (full, outer) = request_object_request(&op);
    let outer = outer.set(
        "redirect_uri",
        &format!("{}_invalid", super::redirect_uri()),
    );
    let callback = op.authorize(&fresh_browser(), &outer).await.callback();
    assert_eq!(
        callback.url.as_str().split('?').next(),
        Some(super::redirect_uri().as_str()),
        "the inner redirect_uri"
    );
    let code = checks::authorization_response(&callback, &full, op.issuer(), mode);
    op.tokens_for(&op.client, Auth::Basic, &code, &full).await;
}

async fn oidcc_ensure_request_object_with_redirect_uri(backend: Backend) {
    oidcc_ensure_request_object_with_redirect_uri_in(backend, Mode::Query).await
}

/// `RefreshTokenRequestSteps` checks on a refresh response (§1.37). Returns the body.
pub async fn refresh_response(response: reqwest::Response) -> Value {
    assert_eq!(response.status(), 200, "CheckTokenEndpointHttpStatus200");
    let headers = response.headers().clone();
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json"),
        "CheckTokenEndpointReturnedJsonContentType"
    );
    assert!(
        headers["cache-control"]
            .to_str()
            .unwrap()
            .contains("no-store"),
        "CheckTokenEndpointCacheHeaders"
    );
    let body = json_of(response).await;
    assert!(
        body.get("error").is_none(),
        "CheckIfTokenEndpointResponseError"
    );
    assert!(
        body["token_type"]
            .as_str()
            .is_some_and(|t| t.eq_ignore_ascii_case("bearer")),
        "CheckTokenTypeIsBearer"
    );
    let access = body["access_token"].as_str().unwrap();
    assert!(
        checks::entropy_bits(access) > 96.0,
        "EnsureMinimumAccessTokenEntropy"
    );
    checks::printable(access, "AccessToken");
    let expires_in = body["expires_in"]
        .as_i64()
        .expect("ExtractExpiresInFromTokenEndpointResponse");
    assert!(
        expires_in > 0 && expires_in <= 31_536_000,
        "ValidateExpiresIn"
    );
    if let Some(refresh) = body["refresh_token"].as_str() {
        assert!(refresh.len() >= 16, "EnsureMinimumRefreshTokenLength");
        assert!(
            checks::entropy_bits(refresh) > 96.0,
            "EnsureMinimumRefreshTokenEntropy"
        );
    }
    body
}

/// `CompareIdTokenClaims`: the refreshed ID token speaks of the same authentication.
pub fn compare_id_token_claims(first: &Value, second: &Value) {
    assert_eq!(first["iss"], second["iss"], "CompareIdTokenClaims: iss");
    assert_eq!(first["sub"], second["sub"], "CompareIdTokenClaims: sub");
    let set = |aud: &Value| -> Vec<String> {
        let mut auds: Vec<String> = match aud {
            Value::Array(a) => a.iter().map(|v| v.as_str().unwrap().to_owned()).collect(),
            other => vec![other.as_str().unwrap().to_owned()],
        };
        auds.sort();
        auds
    };
    assert_eq!(
        set(&first["aud"]),
        set(&second["aud"]),
        "CompareIdTokenClaims: aud"
    );
    assert_ne!(
        first["iat"], second["iat"],
        "CompareIdTokenClaims: iat differs"
    );
    if second.get("auth_time").is_some() {
        assert_eq!(
            first["auth_time"], second["auth_time"],
            "CompareIdTokenClaims: auth_time"
        );
    }
    assert_eq!(
        first.get("azp"),
        second.get("azp"),
        "CompareIdTokenClaims: azp"
    );
}

/// `OIDCCRefreshToken` (§1.37): per client, a flow with `offline_access` and `prompt=consent`,
/// a refresh a second later and its checks, userinfo with the new token; then client 2's
/// refresh token presented by client 1: `invalid_grant`.
pub async fn oidcc_refresh_token_in(backend: Backend, mode: Mode) {
    let op = Op::new(backend, mode).await;
    assert!(
        checks::has(&op.discovery["scopes_supported"], "offline_access"),
        "offline_access advertised: the module asks for it"
    );
    assert!(
        checks::has(&op.discovery["grant_types_supported"], "refresh_token"),
        "EnsureServerConfigurationSupportsRefreshToken"
    );
    let browser = fresh_browser();
    let mut refresh_tokens = Vec::new();
    for (client, nonce_length, scope_on_refresh) in
        [(&op.client, 10, true), (&op.client2, 43, false)]
    {
        let request = op
            .request(client)
            .set("scope", "openid offline_access")
            .set("prompt", "consent")
            .set("nonce", &random_alnum(nonce_length));
        let flow = op.flow(&browser, client, &request, Auth::Basic).await;
        let refresh = flow.tokens.body["refresh_token"]
            .as_str()
            .expect("a refresh token (else the module is SKIPPED with a WARNING)")
            .to_owned();
        checks::printable(&refresh, "RefreshToken");
        op.wait(1);
        let mut form = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh.as_str()),
        ];
        if scope_on_refresh {
            form.push(("scope", "openid offline_access"));
        }
        let body = refresh_response(op.token(client, Auth::Basic, &form).await).await;
        if let Some(id_token) = body["id_token"].as_str() {
            let claims = checks::verify_signature(id_token, &op.jwks);
            compare_id_token_claims(&flow.tokens.id_claims, &claims);
        }
        let response = op.userinfo(body["access_token"].as_str().unwrap()).await;
        assert_eq!(response.status(), 200, "userinfo with the refreshed token");
        refresh_tokens.push(
            body["refresh_token"]
                .as_str()
                .map_or(refresh, str::to_owned),
        );
    }
    // RefreshTokenRequestExpectingErrorSteps: client 2's token presented by client 1.
    let response = op
        .token(
            &op.client,
            Auth::Basic,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &refresh_tokens[1]),
            ],
        )
        .await;
    checks::token_error_invalid_grant(response).await;
}

async fn oidcc_refresh_token(backend: Backend) {
    oidcc_refresh_token_in(backend, Mode::Query).await
}

/// `OIDCCEnsureRequestWithValidPkceSucceeds` (§1.38): S256 of a 128-character verifier; the
/// token request sends it.
pub async fn oidcc_ensure_request_with_valid_pkce_succeeds_in(backend: Backend, mode: Mode) {
    let op = Op::new(backend, mode).await;
    let verifier = random_alnum(128);
    let request = op.request(&op.client).with_pkce(&verifier);
    op.flow(&fresh_browser(), &op.client, &request, Auth::Basic)
        .await;
}

async fn oidcc_ensure_request_with_valid_pkce_succeeds(backend: Backend) {
    oidcc_ensure_request_with_valid_pkce_succeeds_in(backend, Mode::Query).await
}

oidf_modules!(
    oidcc_server,
    oidcc_response_type_missing,
    oidcc_userinfo_get,
    oidcc_userinfo_post_header,
    oidcc_userinfo_post_body,
    oidcc_ensure_request_without_nonce_succeeds_for_code_flow,
    oidcc_scope_profile,
    oidcc_scope_email,
    oidcc_scope_address,
    oidcc_scope_phone,
    oidcc_scope_all,
    oidcc_alternate_happy_flow,
    oidcc_display_page,
    oidcc_display_popup,
    oidcc_prompt_login,
    oidcc_prompt_none_not_logged_in,
    oidcc_prompt_none_logged_in,
    oidcc_prompt_none_logged_in_third_party,
    oidcc_max_age_1,
    oidcc_max_age_10000,
    oidcc_ensure_request_with_unknown_parameter_succeeds,
    oidcc_id_token_hint,
    oidcc_id_token_hint_third_party,
    oidcc_login_hint,
    oidcc_ui_locales,
    oidcc_claims_locales,
    oidcc_ensure_request_with_acr_values_succeeds,
    oidcc_codereuse,
    oidcc_codereuse_30seconds,
    oidcc_ensure_registered_redirect_uri,
    oidcc_ensure_post_request_succeeds,
    oidcc_server_client_secret_post,
    oidcc_unsigned_request_object_supported_correctly_or_rejected_as_unsupported,
    oidcc_claims_essential,
    oidcc_ensure_request_object_with_redirect_uri,
    oidcc_refresh_token,
    oidcc_ensure_request_with_valid_pkce_succeeds,
);
