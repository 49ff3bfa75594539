//! Second factors (issue 17 items 2 and 3), on both backends, through real HTTP: TOTP enrolment
//! at `/account/security` (QR code as inline SVG, the key as text, one valid code, ten recovery
//! codes shown once), sign-in with TOTP through the hosted login of an authorization-code flow,
//! recovery codes, the JSON API's challenge step, step-up by `acr_values`, an essential `acr`
//! and `max_age`, `amr`/`acr` in ID and access tokens, the per-client policy (enrolment during
//! the sign-in; no bypass through `prompt=none` or the refresh grant), the administrator's
//! reset. Attacks: TOTP replay, brute force, a second factor skipped through the JSON API, the
//! refresh grant or `prompt=none`, recovery-code reuse.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{
    Backend, Fixture, REDIRECT, Sent, browser, code_of, decode_claims, enc, hidden, json_of,
    location_params, param, pkce, sign_in,
};
use crate::on_both_backends;

pub(crate) const VERIFIER: &str = "second-factor-verifier-0123456789-abcdefghijk";
const ACR_MFA: &str = "urn:portcullis:acr:mfa";

/// The TOTP code of the base32 `secret` at `unix` seconds, as an authenticator app computes it
/// (RFC 6238 over RFC 4226: HMAC-SHA-1 of the 30-second step, dynamic truncation, 6 digits).
/// Written here from the RFCs, independently of the server's TOTP crate.
pub(crate) fn totp_at(secret: &str, unix: u64) -> String {
    use aws_lc_rs::hmac;
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &base32_decode(secret));
    let mac = hmac::sign(&key, &(unix / 30).to_be_bytes());
    let mac = mac.as_ref();
    // RFC 4226 §5.4: the low nibble of the last byte picks four bytes; drop their top bit.
    let offset = usize::from(mac[19] & 0x0f);
    let binary = u32::from_be_bytes([
        mac[offset],
        mac[offset + 1],
        mac[offset + 2],
        mac[offset + 3],
    ]) & 0x7fff_ffff;
    format!("{:06}", binary % 1_000_000)
}

/// RFC 4648 base32 (upper-case alphabet, padding optional) to bytes.
fn base32_decode(text: &str) -> Vec<u8> {
    let (mut bits, mut count, mut out) = (0u64, 0u32, Vec::new());
    for c in text.trim_end_matches('=').chars() {
        let value = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
            .find(c.to_ascii_uppercase())
            .unwrap_or_else(|| panic!("not base32: {c}"));
        bits = (bits << 5) | value as u64;
        count += 5;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
            bits &= (1 << count) - 1;
        }
    }
    out
}

#[test]
fn the_test_totp_matches_rfc_6238() {
    // RFC 6238 Appendix B, SHA-1: the key "12345678901234567890" (base32 below) at T = 59 s
    // gives 94287082; at 1111111109 s, 07081804 (the last six digits here).
    let key = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
    assert_eq!(base32_decode(key), b"12345678901234567890");
    assert_eq!(totp_at(key, 59), "287082");
    assert_eq!(totp_at(key, 1_111_111_109), "081804");
}

/// The server's clock, in Unix seconds.
fn now(f: &Fixture) -> u64 {
    u64::try_from(f.app.clock.now().timestamp()).unwrap()
}

/// The code of the server's current time step.
fn code_now(f: &Fixture, secret: &str) -> String {
    totp_at(secret, now(f))
}

/// Moves the server's clock to the next time step (a code of a new step).
fn next_step(f: &Fixture) {
    f.app.advance(Duration::from_secs(30));
}

/// `/authorize` for `webapp` with scope `openid offline_access` and `extra`.
pub(crate) fn authorize_url(f: &Fixture, extra: &str) -> String {
    f.url(&format!(
        "response_type=code&client_id=webapp&redirect_uri={}&scope={}&state=st&nonce=n\
         &code_challenge={}&code_challenge_method=S256{extra}",
        enc(REDIRECT),
        enc("openid offline_access"),
        pkce(VERIFIER)
    ))
}

/// Opens `url` and posts the password on its login page: the response (the code's 303, or the
/// second step's page).
pub(crate) async fn password_step(
    f: &Fixture,
    browser: &reqwest::Client,
    url: &str,
) -> reqwest::Response {
    sign_in(browser, &f.app.address, url, "alice").await
}

/// Posts `code` on the second step's page `html`.
async fn post_code(
    f: &Fixture,
    browser: &reqwest::Client,
    html: &str,
    code: &str,
) -> reqwest::Response {
    browser
        .post(f.app.url("/authorize/second-factor"))
        .form(&[
            ("request_id", hidden(html, "request_id")),
            ("csrf_token", hidden(html, "csrf_token")),
            ("code", code.to_owned()),
        ])
        .sent()
        .await
}

/// Redeems `code`: the token response.
pub(crate) async fn redeem(f: &Fixture, code: &str) -> Value {
    let response = f.exchange(code, VERIFIER).await;
    assert_eq!(response.status(), StatusCode::OK);
    json_of(response).await
}

/// The ID and access tokens' `acr` and `amr` of a token response.
pub(crate) fn acr_amr(tokens: &Value) -> [(Value, Value); 2] {
    let id = decode_claims(tokens["id_token"].as_str().unwrap());
    let access = decode_claims(tokens["access_token"].as_str().unwrap());
    [
        (id["acr"].clone(), id["amr"].clone()),
        (access["acr"].clone(), access["amr"].clone()),
    ]
}

/// Signs alice in with her password only (she has no factor yet): the browser holds a session.
pub(crate) async fn password_session(f: &Fixture, browser: &reqwest::Client) -> Value {
    let response = password_step(f, browser, &authorize_url(f, "")).await;
    let tokens = redeem(f, &code_of(&response)).await;
    for (acr, amr) in acr_amr(&tokens) {
        assert_eq!(acr, "urn:portcullis:acr:password");
        assert_eq!(amr, json!(["pwd"]));
    }
    tokens
}

/// Enrols an authenticator app for the browser's signed-in user at `/account/security`: its key
/// and the ten recovery codes shown once.
async fn enrol(f: &Fixture, browser: &reqwest::Client) -> (String, Vec<String>) {
    let page = browser.get(f.app.url("/account/security")).sent().await;
    assert_eq!(page.status(), StatusCode::OK);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.starts_with("default-src 'none'"), "{csp}");
    let html = page.text().await.unwrap();
    assert!(html.contains("id=\"totp-status\">Off."), "{html}");
    let csrf = hidden(&html, "csrf_token");
    let started = browser
        .post(f.app.url("/account/security"))
        .form(&[("csrf_token", csrf.as_str()), ("action", "start")])
        .sent()
        .await;
    assert_eq!(started.status(), StatusCode::OK);
    let html = started.text().await.unwrap();
    // The QR code is drawn by the server as inline SVG; the key is there as text.
    assert!(
        html.contains("<svg") && !html.contains("<img"),
        "inline SVG"
    );
    let secret = between(&html, "<code id=\"secret\">", "</code>");
    assert!(secret.len() >= 32, "a 160-bit key in base32: {secret}");
    // A wrong code does not turn it on.
    let wrong = confirm(f, browser, &csrf, "000000").await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let done = confirm(f, browser, &csrf, &code_now(f, &secret)).await;
    assert_eq!(done.status(), StatusCode::OK);
    let html = done.text().await.unwrap();
    assert!(html.contains("id=\"totp-status\">On."), "{html}");
    let list = between(&html, "<ul id=\"recovery-codes\">", "</ul>");
    let codes: Vec<String> = list
        .split("<code>")
        .skip(1)
        .map(|item| item.split("</code>").next().unwrap().to_owned())
        .collect();
    assert_eq!(codes.len(), 10, "ten recovery codes: {list}");
    // Shown once: the page does not show them again.
    let again = browser.get(f.app.url("/account/security")).sent().await;
    assert!(!again.text().await.unwrap().contains(&codes[0]));
    (secret, codes)
}

async fn confirm(
    f: &Fixture,
    browser: &reqwest::Client,
    csrf: &str,
    code: &str,
) -> reqwest::Response {
    browser
        .post(f.app.url("/account/security"))
        .form(&[("csrf_token", csrf), ("action", "confirm"), ("code", code)])
        .sent()
        .await
}

pub(crate) fn between(html: &str, start: &str, end: &str) -> String {
    let from = html
        .find(start)
        .unwrap_or_else(|| panic!("no {start} in {html}"))
        + start.len();
    let to = html[from..].find(end).unwrap() + from;
    html[from..to].to_owned()
}

/// A server with alice enrolled (key, recovery codes), a fresh browser.
async fn enrolled(backend: Backend) -> (Fixture, String, Vec<String>) {
    let f = Fixture::new(backend).await;
    let browser = browser();
    password_session(&f, &browser).await;
    let (secret, codes) = enrol(&f, &browser).await;
    next_step(&f);
    (f, secret, codes)
}

/// Signs in with password and `code` in a fresh browser: the final response.
async fn sign_in_with(f: &Fixture, code: &str) -> (reqwest::Client, reqwest::Response) {
    let browser = browser();
    let second = password_step(f, &browser, &authorize_url(f, "")).await;
    assert_eq!(second.status(), StatusCode::OK, "the second step");
    let html = second.text().await.unwrap();
    assert!(html.contains("/authorize/second-factor"), "{html}");
    let response = post_code(f, &browser, &html, code).await;
    (browser, response)
}

async fn totp_sign_in_through_the_hosted_login(backend: Backend) {
    let (f, secret, _) = enrolled(backend).await;
    let (_, response) = sign_in_with(&f, &code_now(&f, &secret)).await;
    let tokens = redeem(&f, &code_of(&response)).await;
    for (acr, amr) in acr_amr(&tokens) {
        assert_eq!(acr, ACR_MFA);
        assert_eq!(amr, json!(["pwd", "otp", "mfa"]));
    }
    // The refresh grant keeps how the user signed in.
    let refreshed = json_of(
        f.token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
        ])
        .await,
    )
    .await;
    for (acr, amr) in acr_amr(&refreshed) {
        assert_eq!(acr, ACR_MFA);
        assert_eq!(amr, json!(["pwd", "otp", "mfa"]));
    }
    // Discovery advertises both classes.
    let discovery = json_of(f.app.get("/.well-known/openid-configuration").await).await;
    assert_eq!(
        discovery["acr_values_supported"],
        json!(["urn:portcullis:acr:password", ACR_MFA])
    );
}

// Attack: TOTP replay (RFC 6238 §5.2; single use decided by a conditional update, as CODE-02).
/// RFC 6238 §5.2: a code is accepted once; a code of an earlier step than one used is refused.
async fn a_totp_code_is_accepted_once(backend: Backend) {
    let (f, secret, _) = enrolled(backend).await;
    let code = code_now(&f, &secret);
    let (_, first) = sign_in_with(&f, &code).await;
    code_of(&first);
    let (_, replayed) = sign_in_with(&f, &code).await;
    assert_eq!(
        replayed.status(),
        StatusCode::UNAUTHORIZED,
        "replay refused"
    );
    assert!(
        replayed
            .text()
            .await
            .unwrap()
            .contains("incorrect or was used already")
    );
    // The previous step's code (still within the skew) is older than the one used: refused.
    let earlier = totp_at(&secret, now(&f) - 30);
    let (_, older) = sign_in_with(&f, &earlier).await;
    assert_eq!(older.status(), StatusCode::UNAUTHORIZED);
    next_step(&f);
    let (_, fresh) = sign_in_with(&f, &code_now(&f, &secret)).await;
    code_of(&fresh);
}

// LOGIN-06 (a), (c): TOTP brute force, throttled like logins on every path (hosted page, JSON API).
/// Guesses are throttled like logins: after the budget (5 per window) even the right code gets
/// 429 with Retry-After, and nothing is issued.
async fn guessing_codes_is_throttled(backend: Backend) {
    let (f, secret, _) = enrolled(backend).await;
    // The enrolment's wrong code counted; a new window starts afresh.
    f.app.advance(Duration::from_secs(16 * 60));
    let browser = browser();
    let second = password_step(&f, &browser, &authorize_url(&f, "")).await;
    let html = second.text().await.unwrap();
    for guess in 0..5 {
        let response = post_code(&f, &browser, &html, &format!("{:06}", 100_000 + guess)).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "guess {guess}");
    }
    let blocked = post_code(&f, &browser, &html, &code_now(&f, &secret)).await;
    assert_eq!(blocked.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(blocked.headers().contains_key("retry-after"));
    // The JSON API's step shares the budget.
    let login = f.app.login("alice").await;
    let challenge = json_of(login).await["challenge"]
        .as_str()
        .unwrap()
        .to_owned();
    let answer = f
        .app
        .post_json(
            "/api/auth/login/second-factor",
            &json!({ "challenge": challenge, "code": code_now(&f, &secret) }),
        )
        .await;
    assert_eq!(answer.status(), StatusCode::TOO_MANY_REQUESTS);
}

// Attack: recovery-code reuse (single use by row count, CONVENTIONS 6).
/// Recovery codes sign in in place of a TOTP code, once each.
async fn recovery_codes_are_single_use(backend: Backend) {
    let (f, _, codes) = enrolled(backend).await;
    // Typed in capitals with blanks instead of dashes: the same code.
    let typed = codes[3].to_uppercase().replace('-', " ");
    let (_, response) = sign_in_with(&f, &typed).await;
    let tokens = redeem(&f, &code_of(&response)).await;
    for (acr, amr) in acr_amr(&tokens) {
        assert_eq!(acr, ACR_MFA);
        assert_eq!(amr, json!(["pwd", "otp", "mfa"]));
    }
    let (_, reused) = sign_in_with(&f, &codes[3]).await;
    assert_eq!(reused.status(), StatusCode::UNAUTHORIZED, "reuse refused");
    let (_, other) = sign_in_with(&f, &codes[4]).await;
    code_of(&other);
}

// LOGIN-06 (c): a second factor skipped through the JSON API; the challenge is single use.
/// The JSON API's login answers a challenge, not tokens; the code completes it, once.
async fn the_json_api_login_answers_a_second_factor_challenge(backend: Backend) {
    let (f, secret, codes) = enrolled(backend).await;
    let response = f.app.login("alice").await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body = json_of(response).await;
    assert_eq!(body["error"], "second_factor_required");
    assert!(body.get("access_token").is_none() && body.get("refresh_token").is_none());
    assert_eq!(body["methods"], json!(["totp", "recovery_code"]));
    let challenge = body["challenge"].as_str().unwrap().to_owned();
    let answer = |code: String| {
        let challenge = challenge.clone();
        let app = &f.app;
        async move {
            app.post_json(
                "/api/auth/login/second-factor",
                &json!({ "challenge": challenge, "code": code }),
            )
            .await
        }
    };
    let wrong = answer("123456".into()).await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(json_of(wrong).await["error"], "invalid_code");
    let done = answer(code_now(&f, &secret)).await;
    assert_eq!(done.status(), StatusCode::OK);
    let tokens = json_of(done).await;
    let access = decode_claims(tokens["access_token"].as_str().unwrap());
    assert_eq!(access["acr"], ACR_MFA);
    assert_eq!(access["amr"], json!(["pwd", "otp", "mfa"]));
    // The challenge is spent: a second completion (even with a good recovery code) gets nothing.
    let again = answer(codes[0].clone()).await;
    assert_eq!(again.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(json_of(again).await["error"], "invalid_code");
    // A made-up challenge gets nothing either.
    let forged = f
        .app
        .post_json(
            "/api/auth/login/second-factor",
            &json!({ "challenge": "x".repeat(43), "code": codes[1] }),
        )
        .await;
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);
    // Refreshing the JSON API's family keeps its methods.
    let refreshed = json_of(
        f.app
            .refresh(tokens["refresh_token"].as_str().unwrap())
            .await,
    )
    .await;
    let access = decode_claims(refreshed["access_token"].as_str().unwrap());
    assert_eq!(access["amr"], json!(["pwd", "otp", "mfa"]));
}

// TOK-01 (max_age), CS oidcc-ensure-request-with-acr-values-succeeds / oidcc-max-age-1: step-up;
// attack: a second factor skipped through prompt=none.
/// A session that signed in with a password only must present the second factor when the
/// client asks for the multi-factor class (`acr_values`, an essential `acr`), and `max_age`
/// asks for both again; `prompt=none` cannot skip it.
async fn step_up_by_acr_values_essential_acr_and_max_age(backend: Backend) {
    let f = Fixture::new(backend).await;
    let browser = browser();
    password_session(&f, &browser).await;
    let (secret, _) = enrol(&f, &browser).await;
    next_step(&f);
    let mfa = format!(
        "&acr_values={}",
        enc(&format!("{ACR_MFA} urn:portcullis:acr:password"))
    );
    // The password-only session answers a request that prefers the password class...
    let plain = browser
        .get(authorize_url(
            &f,
            &format!(
                "&prompt=none&acr_values={}",
                enc("urn:portcullis:acr:password")
            ),
        ))
        .sent()
        .await;
    code_of(&plain);
    // ...but not one asking for the multi-factor class, with or without prompt=none.
    let none = browser
        .get(authorize_url(&f, &format!("{mfa}&prompt=none")))
        .sent()
        .await;
    let (_, params) = location_params(&none);
    assert_eq!(param(&params, "error").as_deref(), Some("login_required"));
    assert!(
        param(&params, "error_description")
            .unwrap()
            .contains("second factor")
    );
    let essential = format!(
        "&claims={}",
        enc(&json!({ "id_token": { "acr": { "essential": true, "value": ACR_MFA } } }).to_string())
    );
    let none = browser
        .get(authorize_url(&f, &format!("{essential}&prompt=none")))
        .sent()
        .await;
    let (_, params) = location_params(&none);
    assert_eq!(param(&params, "error").as_deref(), Some("login_required"));
    // Stepping up: the password, then the code.
    let second = password_step(&f, &browser, &authorize_url(&f, &mfa)).await;
    let html = second.text().await.unwrap();
    let response = post_code(&f, &browser, &html, &code_now(&f, &secret)).await;
    let tokens = redeem(&f, &code_of(&response)).await;
    assert_eq!(acr_amr(&tokens)[0].0, ACR_MFA);
    // The multi-factor session now answers prompt=none for the class.
    let sso = browser
        .get(authorize_url(&f, &format!("{essential}&prompt=none")))
        .sent()
        .await;
    let tokens = redeem(&f, &code_of(&sso)).await;
    assert_eq!(acr_amr(&tokens)[0].0, ACR_MFA);
    // max_age: an authentication older than it signs in again, second factor included.
    f.app.advance(Duration::from_secs(120));
    let old = browser
        .get(authorize_url(&f, "&max_age=60&prompt=none"))
        .sent()
        .await;
    let (_, params) = location_params(&old);
    assert_eq!(param(&params, "error").as_deref(), Some("login_required"));
    let second = password_step(&f, &browser, &authorize_url(&f, "&max_age=60")).await;
    assert_eq!(second.status(), StatusCode::OK, "the second step again");
    let html = second.text().await.unwrap();
    assert!(html.contains("/authorize/second-factor"));
    let response = post_code(&f, &browser, &html, &code_now(&f, &secret)).await;
    code_of(&response);
}

// LOGIN-06 (c) and the lesson of CVE-2026-16103 (checked at sign-in, not at redemption): a
// second factor skipped through the refresh grant or prompt=none.
/// A client that requires a second factor: a user without one enrols during the sign-in; a
/// password-only session gets `login_required` under `prompt=none`; a refresh token from a
/// password-only sign-in no longer refreshes once the client requires one.
async fn a_client_requiring_a_second_factor_has_no_bypass(backend: Backend) {
    let f = Fixture::new(backend).await;
    let admin = f.app.user_token("root", &["admin"]).await;
    let browser = browser();
    let old = password_session(&f, &browser).await;
    let changed = f
        .app
        .client
        .put(f.app.url("/admin/clients/webapp/second-factor"))
        .bearer_auth(&admin)
        .json(&json!({ "second_factor": "required" }))
        .sent()
        .await;
    assert_eq!(changed.status(), StatusCode::OK);
    assert_eq!(json_of(changed).await["second_factor"], "required");
    // The refresh grant: the password-only grant ends.
    let refused = f
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", old["refresh_token"].as_str().unwrap()),
        ])
        .await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    assert_eq!(json_of(refused).await["error"], "invalid_grant");
    // prompt=none with the password-only session.
    let none = browser.get(authorize_url(&f, "&prompt=none")).sent().await;
    let (_, params) = location_params(&none);
    assert_eq!(param(&params, "error").as_deref(), Some("login_required"));
    // Signing in: the password, then the enrolment of an app in the sign-in itself.
    let enrolment = password_step(&f, &browser, &authorize_url(&f, "")).await;
    assert_eq!(enrolment.status(), StatusCode::OK);
    let html = enrolment.text().await.unwrap();
    assert!(html.contains("<svg"), "the QR code");
    let secret = between(&html, "<code id=\"secret\">", "</code>");
    let wrong = post_code(&f, &browser, &html, "000000").await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let html = wrong.text().await.unwrap();
    assert_eq!(between(&html, "<code id=\"secret\">", "</code>"), secret);
    let response = post_code(&f, &browser, &html, &code_now(&f, &secret)).await;
    let tokens = redeem(&f, &code_of(&response)).await;
    assert_eq!(acr_amr(&tokens)[0].0, ACR_MFA);
    // That multi-factor grant refreshes.
    let refreshed = f
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
        ])
        .await;
    assert_eq!(refreshed.status(), StatusCode::OK);
}

// LOGIN-06 (c): the deployment's policy holds on the JSON API's login and refresh.
/// The deployment requires a second factor: the JSON API refuses a user without one (no tokens
/// through the back door), and a JSON API refresh token from a password-only login ends.
async fn a_deployment_requiring_a_second_factor_has_no_bypass(backend: Backend) {
    let f = Fixture::new(backend).await;
    let (_, refresh) = f.app.tokens("alice").await;
    let mut args = f.env.args();
    args.second_factor = Some("required".into());
    let strict = f.env.spawn_with(args).await;
    let login = strict.login("alice").await;
    assert_eq!(login.status(), StatusCode::FORBIDDEN);
    let body = json_of(login).await;
    assert_eq!(body["error"], "second_factor_enrolment_required");
    assert!(body.get("access_token").is_none());
    let refreshed = strict.refresh(&refresh).await;
    assert_eq!(refreshed.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(json_of(refreshed).await["error"], "invalid_grant");
}

// ADM-01's rule for admin actions: authenticated, authorised, audited.
/// Administrators reset a user's second factors (admin API, audited): the user signs in with
/// the password again.
async fn administrators_reset_second_factors(backend: Backend) {
    let (f, _, _) = enrolled(backend).await;
    let admin = f.app.user_token("root", &["admin"]).await;
    assert_eq!(
        f.app.login("alice").await.status(),
        StatusCode::UNAUTHORIZED
    );
    let reset = f
        .app
        .client
        .post(f.app.url("/admin/users/alice/reset-second-factors"))
        .bearer_auth(&admin)
        .sent()
        .await;
    assert_eq!(reset.status(), StatusCode::OK);
    assert_eq!(json_of(reset).await, json!({ "removed_factors": 1 }));
    assert_eq!(f.app.login("alice").await.status(), StatusCode::OK);
    let audit = json_of(
        f.app
            .client
            .get(f.app.url("/admin/audit"))
            .bearer_auth(&admin)
            .sent()
            .await,
    )
    .await;
    let events = audit["events"].as_array().unwrap();
    assert!(
        events
            .iter()
            .any(|e| e["action"] == "second_factors_reset" && e["subject"] == f.user_id),
        "{audit}"
    );
}

// LOGIN-01 (a): a forged form (no CSRF token of the session) changes nothing.
/// Removing the app needs a current code; recovery codes go with it.
async fn removing_the_app_needs_a_code(backend: Backend) {
    let f = Fixture::new(backend).await;
    let browser = browser();
    password_session(&f, &browser).await;
    let (secret, codes) = enrol(&f, &browser).await;
    next_step(&f);
    let html = browser
        .get(f.app.url("/account/security"))
        .sent()
        .await
        .text()
        .await
        .unwrap();
    let csrf = hidden(&html, "csrf_token");
    let remove = |code: String| {
        let (csrf, browser) = (csrf.clone(), browser.clone());
        let url = f.app.url("/account/security");
        async move {
            browser
                .post(url)
                .form(&[
                    ("csrf_token", csrf.as_str()),
                    ("action", "remove"),
                    ("code", code.as_str()),
                ])
                .sent()
                .await
        }
    };
    assert_eq!(
        remove("000000".into()).await.status(),
        StatusCode::UNAUTHORIZED
    );
    // A forged form (no CSRF token of this session) changes nothing.
    let forged = browser
        .post(f.app.url("/account/security"))
        .form(&[
            ("csrf_token", "forged"),
            ("action", "remove"),
            ("code", &code_now(&f, &secret)),
        ])
        .sent()
        .await;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let removed = remove(code_now(&f, &secret)).await;
    assert_eq!(removed.status(), StatusCode::OK);
    assert!(
        removed
            .text()
            .await
            .unwrap()
            .contains("id=\"totp-status\">Off.")
    );
    // The password alone signs in again; the recovery codes are gone.
    let response = password_step(&f, &crate::helpers::browser(), &authorize_url(&f, "")).await;
    code_of(&response);
    let _ = codes;
}

/// The CLI covers the new settings: a client's policy (`clients update --second-factor-policy`, and a
/// bad value refused) and an administrator's reset (`users reset-second-factors`), audited.
async fn the_cli_sets_client_policy_and_resets_second_factors(backend: Backend) {
    use crate::helpers::stdout_json;
    let (f, _, _) = enrolled(backend).await;
    let updated = f
        .env
        .cli(&[
            "clients",
            "update",
            "webapp",
            "--second-factor-policy",
            "required",
        ])
        .await;
    assert!(updated.status.success(), "{updated:?}");
    assert_eq!(stdout_json(&updated)["second_factor"], "required");
    let bad = f
        .env
        .cli(&[
            "clients",
            "update",
            "webapp",
            "--second-factor",
            "sometimes",
        ])
        .await;
    assert!(!bad.status.success());
    assert_eq!(
        f.app.login("alice").await.status(),
        StatusCode::UNAUTHORIZED
    );
    let reset = f.env.cli(&["users", "reset-second-factors", "alice"]).await;
    assert!(reset.status.success(), "{reset:?}");
    assert_eq!(stdout_json(&reset), json!({ "removed_factors": 1 }));
    // The password alone signs in again (the deployment's policy is `optional`).
    assert_eq!(f.app.login("alice").await.status(), StatusCode::OK);
    let admin = f.app.user_token("root", &["admin"]).await;
    let audit = json_of(
        f.app
            .client
            .get(f.app.url("/admin/audit"))
            .bearer_auth(&admin)
            .sent()
            .await,
    )
    .await;
    let actions: Vec<&str> = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert!(
        actions.contains(&"second_factors_reset")
            && actions.contains(&"client_second_factor_changed"),
        "{audit}"
    );
}

on_both_backends!(
    totp_sign_in_through_the_hosted_login,
    a_totp_code_is_accepted_once,
    guessing_codes_is_throttled,
    recovery_codes_are_single_use,
    the_json_api_login_answers_a_second_factor_challenge,
    step_up_by_acr_values_essential_acr_and_max_age,
    a_client_requiring_a_second_factor_has_no_bypass,
    a_deployment_requiring_a_second_factor_has_no_bypass,
    administrators_reset_second_factors,
    removing_the_app_needs_a_code,
    the_cli_sets_client_policy_and_resets_second_factors,
);
