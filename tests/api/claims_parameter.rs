//! The `claims` request parameter (OpenID Connect Core §5.5; issue 15 item 4): claims asked for
//! one by one reach userinfo or the ID token (at the code redemption and after a refresh), an
//! essential `acr` we cannot meet and a `sub` of another user fail the request, a malformed
//! parameter is `invalid_request` with nothing written, and a third-party client's consent
//! covers the claims asked beyond the scopes — on both backends.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{
    Backend, ClientSpec, Fixture, REDIRECT, Sent, answer_consent, browser, client_secret, code_of,
    decode_claims, enc, json_of, location_params, param, pkce, post_login_form,
};
use crate::on_both_backends;

/// The third-party client's redirect URI.
const PARTNER_CB: &str = "http://127.0.0.1:9/partner";
const VERIFIER: &str = "claims-parameter-verifier-0123456789-abcdefgh";

/// Gives `username` a name and a verified email, as an administrator would.
async fn give_claims(f: &Fixture, username: &str) {
    let patch = json!({ "name": "Alice Liddell", "nickname": "Al", "email_verified": true });
    let Value::Object(patch) = patch else {
        unreachable!("an object")
    };
    let (now, user) = (f.app.clock.now_naive(), username.to_owned());
    f.app
        .state
        .db
        .run(move |conn| {
            portcullis::accounts::users::update_claims(
                conn,
                &user,
                &patch,
                portcullis::accounts::profile::Editor::Admin,
                now,
            )
        })
        .await
        .expect("claims set");
}

/// `/authorize` for `client_id` with `scope`, the `claims` parameter `claims` and `extra`.
fn authorize_url(f: &Fixture, client_id: &str, scope: &str, claims: &str, extra: &str) -> String {
    let redirect = if client_id == "partner" {
        PARTNER_CB
    } else {
        REDIRECT
    };
    f.url(&format!(
        "response_type=code&client_id={client_id}&redirect_uri={}&scope={}&state=st&nonce=n\
         &code_challenge={}&code_challenge_method=S256&claims={}{extra}",
        enc(redirect),
        enc(scope),
        pkce(VERIFIER),
        enc(claims)
    ))
}

/// Posts the login form of `html` as `username`.
async fn sign_in(
    f: &Fixture,
    browser: &reqwest::Client,
    html: &str,
    username: &str,
) -> reqwest::Response {
    assert!(html.contains("name=\"password\""), "a login page: {html}");
    post_login_form(browser, &f.app.address, html, username).await
}

/// A code for `webapp` (first party: no consent) with `scope` and `claims`, alice signing in.
async fn webapp_code(f: &Fixture, scope: &str, claims: &str) -> String {
    let browser = browser();
    let login = browser
        .get(authorize_url(f, "webapp", scope, claims, ""))
        .sent()
        .await;
    let html = login.text().await.unwrap();
    code_of(&sign_in(f, &browser, &html, "alice").await)
}

async fn redeem(f: &Fixture, code: &str) -> Value {
    let response = f
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ])
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    json_of(response).await
}

async fn userinfo(f: &Fixture, tokens: &Value) -> Value {
    let response = f
        .app
        .get_bearer("/userinfo", tokens["access_token"].as_str().unwrap())
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    json_of(response).await
}

// §5.5: `{"userinfo":{"name":{"essential":true}}}` with scope openid alone gives `name` in
// userinfo (no scope covers it) and not in the ID token; claims not asked stay out. Discovery
// advertises the parameter.
async fn a_claim_asked_for_userinfo_is_released_there_only(backend: Backend) {
    let f = Fixture::new(backend).await;
    give_claims(&f, "alice").await;
    let discovery = json_of(f.app.get("/.well-known/openid-configuration").await).await;
    assert_eq!(discovery["claims_parameter_supported"], json!(true));

    let claims = r#"{"userinfo":{"name":{"essential":true},"unknown_claim":null},"other":1}"#;
    let tokens = redeem(&f, &webapp_code(&f, "openid", claims).await).await;
    assert!(tokens.get("refresh_token").is_none());
    let id = decode_claims(tokens["id_token"].as_str().unwrap());
    assert!(id.get("name").is_none(), "not asked for the ID token: {id}");
    let info = userinfo(&f, &tokens).await;
    let mut names: Vec<&String> = info.as_object().unwrap().keys().collect();
    names.sort();
    assert_eq!(names, ["name", "sub"], "{info}");
    assert_eq!(info["name"], "Alice Liddell");
    assert_eq!(info["sub"], json!(f.user_id));

    // The same grant without the parameter: sub only.
    let plain = redeem(&f, &webapp_code(&f, "openid", "{}").await).await;
    assert_eq!(
        userinfo(&f, &plain).await,
        json!({ "sub": f.user_id }),
        "nothing asked, nothing released"
    );
}

// §5.5: `id_token` members go into the ID token at the redemption and again after a refresh
// (OIDC Core §12.2), with the values as they are then; the refreshed access token's userinfo
// keeps honouring the `userinfo` member.
async fn claims_asked_for_the_id_token_survive_the_refresh(backend: Backend) {
    let f = Fixture::new(backend).await;
    give_claims(&f, "alice").await;
    let claims = json!({
        "id_token": {"email": {"essential": true}, "email_verified": null,
                     "nickname": {"value": "someone else"}, "acr": {"essential": false}},
        "userinfo": {"name": null},
    })
    .to_string();
    let tokens = redeem(&f, &webapp_code(&f, "openid offline_access", &claims).await).await;
    let id = decode_claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(id["email"], "alice@example.com", "{id}");
    assert_eq!(id["email_verified"], true);
    assert_eq!(
        id["nickname"], "Al",
        "value is informational: the stored one"
    );
    assert!(id.get("name").is_none(), "asked for userinfo only: {id}");
    assert_eq!(id["acr"], "urn:portcullis:acr:password");

    let refreshed = f
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
        ])
        .await;
    assert_eq!(refreshed.status(), StatusCode::OK);
    let refreshed = json_of(refreshed).await;
    let id = decode_claims(refreshed["id_token"].as_str().unwrap());
    assert_eq!(id["email"], "alice@example.com", "after refresh: {id}");
    assert_eq!(id["nickname"], "Al");
    assert!(id.get("name").is_none());
    let info = userinfo(&f, &refreshed).await;
    assert_eq!(info["name"], "Alice Liddell", "{info}");
    assert!(info.get("email").is_none(), "asked for the ID token only");
}

// OpenID Connect Core Error Code unmet_authentication_requirements 1.0 / §5.5.1.1: an essential
// acr we do not offer fails the request at the client's redirect URI, before any page; asked
// voluntarily it is answered with the class we have.
async fn an_essential_acr_we_cannot_meet_is_refused(backend: Backend) {
    let f = Fixture::new(backend).await;
    let before = f.env.count_rows("authorization_requests").await;
    let browser = browser();
    for claims in [
        r#"{"id_token":{"acr":{"essential":true,"values":["urn:mace:incommon:iap:silver"]}}}"#,
        r#"{"id_token":{"acr":{"essential":true,"value":"gold"}}}"#,
    ] {
        let response = browser
            .get(authorize_url(&f, "webapp", "openid", claims, ""))
            .sent()
            .await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{claims}");
        let (target, params) = location_params(&response);
        assert!(target.starts_with(REDIRECT.split('?').next().unwrap()));
        assert_eq!(
            param(&params, "error").as_deref(),
            Some("unmet_authentication_requirements")
        );
        assert_eq!(param(&params, "state").as_deref(), Some("st"));
        assert!(param(&params, "code").is_none());
        assert!(param(&params, "iss").is_some());
    }
    assert_eq!(
        f.env.count_rows("authorization_requests").await,
        before,
        "nothing pending"
    );
    let met = r#"{"id_token":{"acr":{"essential":true,"values":["gold","urn:portcullis:acr:password"]}}}"#;
    let tokens = redeem(&f, &webapp_code(&f, "openid", met).await).await;
    let id = decode_claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(id["acr"], "urn:portcullis:acr:password");
}

// §5.5.1: a `sub` value limits the request to that user. Another user's session does not count
// (prompt=none: login_required; otherwise the login page), signing in as another user is
// refused (no session, no code), and signing in as the named user gets the code.
async fn a_sub_value_must_be_the_user_who_signs_in(backend: Backend) {
    let f = Fixture::new(backend).await;
    let bob = f.app.create_user("bob").await;
    let browser = browser();
    // Alice has a session in this browser.
    webapp_code_in(&f, &browser, "openid", "{}", "alice").await;
    let for_bob = json!({"id_token": {"sub": {"value": bob}}}).to_string();

    let silent = browser
        .get(authorize_url(
            &f,
            "webapp",
            "openid",
            &for_bob,
            "&prompt=none",
        ))
        .sent()
        .await;
    assert_eq!(silent.status(), StatusCode::SEE_OTHER);
    let (_, params) = location_params(&silent);
    assert_eq!(param(&params, "error").as_deref(), Some("login_required"));
    assert!(param(&params, "code").is_none());

    let login = browser
        .get(authorize_url(&f, "webapp", "openid", &for_bob, ""))
        .sent()
        .await;
    assert_eq!(login.status(), StatusCode::OK, "the login page, not a code");
    let html = login.text().await.unwrap();
    let sessions = f.env.count_rows("browser_sessions").await;
    let refused = sign_in(&f, &browser, &html, "alice").await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(refused.headers().get("location").is_none());
    let again = refused.text().await.unwrap();
    assert!(again.contains("another account"), "{again}");
    assert_eq!(
        f.env.count_rows("browser_sessions").await,
        sessions,
        "no session for the wrong user"
    );
    let code = code_of(&sign_in(&f, &browser, &again, "bob").await);
    let tokens = redeem(&f, &code).await;
    let id = decode_claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(id["sub"], json!(bob));

    // Bob's session now answers a request naming him, silently.
    let silent = browser
        .get(authorize_url(
            &f,
            "webapp",
            "openid",
            &for_bob,
            "&prompt=none",
        ))
        .sent()
        .await;
    code_of(&silent);
}

/// A code for `webapp` signing `username` in on `browser` (or its session).
async fn webapp_code_in(
    f: &Fixture,
    browser: &reqwest::Client,
    scope: &str,
    claims: &str,
    username: &str,
) -> String {
    let first = browser
        .get(authorize_url(f, "webapp", scope, claims, ""))
        .sent()
        .await;
    if first.status() == StatusCode::SEE_OTHER {
        return code_of(&first);
    }
    let html = first.text().await.unwrap();
    code_of(&sign_in(f, browser, &html, username).await)
}

// §5.5 shapes: anything else is invalid_request at the redirect URI (state and iss included,
// the standard shape) and nothing is written: no pending request, no code.
async fn malformed_claims_are_invalid_requests_with_nothing_written(backend: Backend) {
    let f = Fixture::new(backend).await;
    let browser = browser();
    // Alice is signed in, so a valid request would issue a code at once.
    webapp_code_in(&f, &browser, "openid", "{}", "alice").await;
    let (requests, codes) = (
        f.env.count_rows("authorization_requests").await,
        f.env.count_rows("authorization_codes").await,
    );
    let long = format!(
        r#"{{"userinfo":{{"name":{{"value":"{}"}}}}}}"#,
        "x".repeat(5000)
    );
    for claims in [
        "not json",
        "[]",
        r#"{"userinfo":["name"]}"#,
        r#"{"id_token":{"email":true}}"#,
        r#"{"userinfo":{"name":{"essential":"yes"}}}"#,
        r#"{"userinfo":{"name":{"values":"Alice"}}}"#,
        r#"{"id_token":{"sub":{"value":7}}}"#,
        r#"{"userinfo":{"name":null}"#,
        long.as_str(),
    ] {
        let response = browser
            .get(authorize_url(&f, "webapp", "openid", claims, ""))
            .sent()
            .await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{claims}");
        let (_, params) = location_params(&response);
        assert_eq!(
            param(&params, "error").as_deref(),
            Some("invalid_request"),
            "{claims}"
        );
        let description = param(&params, "error_description").unwrap();
        assert!(description.starts_with("claims"), "{description}");
        assert!(
            description
                .bytes()
                .all(|b| (0x20..=0x7e).contains(&b) && b != b'"' && b != b'\\'),
            "RFC 6749 charset: {description}"
        );
        assert_eq!(param(&params, "state").as_deref(), Some("st"));
        assert!(param(&params, "code").is_none());
    }
    assert_eq!(f.env.count_rows("authorization_requests").await, requests);
    assert_eq!(f.env.count_rows("authorization_codes").await, codes);
}

// §5.5 with remembered consent (issue 15 item 3): a third-party client's consent page lists the
// claims asked beyond the scopes; a claim not approved before asks again (prompt=none:
// consent_required); once approved it is remembered, listed with the consent, and the next
// request asking for it is answered silently.
async fn consent_covers_the_claims_asked_beyond_the_scopes(backend: Backend) {
    let f = Fixture::new(backend).await;
    give_claims(&f, "alice").await;
    let partner = f
        .app
        .create_client(ClientSpec::new("partner").redirect_uri(PARTNER_CB))
        .await;
    let partner_secret = client_secret(&partner);
    let browser = browser();

    // First consent: scope openid, no claim.
    let login = browser
        .get(authorize_url(&f, "partner", "openid", "{}", ""))
        .sent()
        .await;
    let consent = sign_in(&f, &browser, &login.text().await.unwrap(), "alice").await;
    assert_eq!(consent.status(), StatusCode::OK);
    let html = consent.text().await.unwrap();
    assert!(!html.contains("details of your profile"), "{html}");
    code_of(&answer_consent(&browser, f.app.url("/authorize/consent"), &html, "approve").await);

    let with_name = r#"{"userinfo":{"name":{"essential":true}}}"#;
    let silent = browser
        .get(authorize_url(
            &f,
            "partner",
            "openid",
            with_name,
            "&prompt=none",
        ))
        .sent()
        .await;
    let (_, params) = location_params(&silent);
    assert_eq!(
        param(&params, "error").as_deref(),
        Some("consent_required"),
        "a claim not approved before asks again"
    );
    let page = browser
        .get(authorize_url(&f, "partner", "openid", with_name, ""))
        .sent()
        .await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("details of your profile") && html.contains("<li>name</li>"),
        "the consent page lists the claim: {html}"
    );
    let code =
        code_of(&answer_consent(&browser, f.app.url("/authorize/consent"), &html, "approve").await);
    let tokens = json_of(
        f.app
            .client
            .post(f.app.url("/token"))
            .basic_auth("partner", Some(&partner_secret))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", PARTNER_CB),
                ("code_verifier", VERIFIER),
            ])
            .sent()
            .await,
    )
    .await;
    let info = json_of(
        f.app
            .get_bearer("/userinfo", tokens["access_token"].as_str().unwrap())
            .await,
    )
    .await;
    assert_eq!(info["name"], "Alice Liddell", "{info}");

    // Remembered: asked again silently, it is answered.
    let silent = browser
        .get(authorize_url(
            &f,
            "partner",
            "openid",
            with_name,
            "&prompt=none",
        ))
        .sent()
        .await;
    code_of(&silent);
    let (token, _) = f.app.signed_in("alice").await;
    let listed = json_of(f.app.get_bearer("/api/me/consents", &token).await).await;
    assert_eq!(listed["consents"][0]["claims"], json!(["name"]), "{listed}");
    assert_eq!(listed["consents"][0]["scopes"], json!(["openid"]));
}

on_both_backends!(
    a_claim_asked_for_userinfo_is_released_there_only,
    claims_asked_for_the_id_token_survive_the_refresh,
    an_essential_acr_we_cannot_meet_is_refused,
    a_sub_value_must_be_the_user_who_signs_in,
    malformed_claims_are_invalid_requests_with_nothing_written,
    consent_covers_the_claims_asked_beyond_the_scopes,
);
