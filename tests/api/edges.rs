//! Issue 15, package W3 (relying parties at the edges): the userinfo token in a form body
//! (RFC 6750 §2.2), `response_mode=form_post`, native apps (RFC 8252), browser apps (CORS) and
//! the token endpoint's query — on both backends.

use serde_json::Value;

use std::time::Duration;

use crate::helpers::{
    Backend, Fixture, REDIRECT, Sent, browser, enc, json_of, location_params, param, pkce,
};
use crate::on_both_backends;

/// The JSON error and the `WWW-Authenticate` challenge of a userinfo answer.
async fn bearer_error(response: reqwest::Response) -> (u16, String, Value) {
    let status = response.status().as_u16();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, challenge, json_of(response).await)
}

// C4 / `oidcc-userinfo-post-body`: userinfo takes the access token in a form-encoded POST body
// when no Authorization header is sent (RFC 6750 §2.2); both at once is `invalid_request` (§2);
// a POST with the header and an empty form body (`oidcc-userinfo-post-header`) works as before.
async fn userinfo_takes_the_token_in_a_form_body(backend: Backend) {
    let f = Fixture::new(backend).await;
    let (code, verifier) = f.code(&browser(), "openid email").await;
    let tokens = json_of(f.exchange(&code, &verifier).await).await;
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let url = f.app.url("/userinfo");
    let http = &f.app.client;

    let in_body = http
        .post(&url)
        .form(&[("access_token", &access)])
        .sent()
        .await;
    assert_eq!(in_body.status(), 200);
    assert_eq!(in_body.headers()["cache-control"], "no-store");
    let info = json_of(in_body).await;
    assert_eq!(info["sub"], f.user_id.as_str());
    assert_eq!(info["email"], "alice@example.com");

    let header_and_empty_form = http
        .post(&url)
        .bearer_auth(&access)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("")
        .sent()
        .await;
    assert_eq!(header_and_empty_form.status(), 200);

    let (status, challenge, body) = bearer_error(
        http.post(&url)
            .bearer_auth(&access)
            .form(&[("access_token", &access)])
            .sent()
            .await,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_request");
    assert!(challenge.contains("invalid_request"), "{challenge}");

    let twice = http
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("access_token={access}&access_token={access}"))
        .sent()
        .await;
    let (status, _, body) = bearer_error(twice).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );

    let forged = http
        .post(&url)
        .form(&[("access_token", format!("{access}x"))])
        .sent()
        .await;
    let (status, challenge, body) = bearer_error(forged).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"], "invalid_token");
    assert!(challenge.contains("invalid_token"), "{challenge}");

    // Only a form body carries the token (§2.2); a GET's query never does (§2.3 is not
    // supported), nor does a JSON body.
    let json_body = http
        .post(&url)
        .json(&serde_json::json!({ "access_token": access }))
        .sent()
        .await;
    assert_eq!(json_body.status(), 401);
    let in_query = http
        .get(format!("{url}?access_token={access}"))
        .sent()
        .await;
    assert_eq!(in_query.status(), 401);
}

// Issue 15 item 10: `prompt=none&max_age=0` with a live (but older) session says why it failed:
// `login_required` because the session is older than `max_age`, not "the user is not signed
// in"; without a session the description stays.
async fn prompt_none_with_a_too_old_session_says_why(backend: Backend) {
    let f = Fixture::new(backend).await;
    let browser = browser();
    let request = format!(
        "response_type=code&client_id=webapp&redirect_uri={}&scope=openid&state=m0&code_challenge={}&code_challenge_method=S256&prompt=none",
        enc(REDIRECT),
        pkce(&"v".repeat(43))
    );
    let anonymous = browser.get(f.url(&request)).sent().await;
    let (_, params) = location_params(&anonymous);
    assert_eq!(param(&params, "error").as_deref(), Some("login_required"));
    assert_eq!(
        param(&params, "error_description").as_deref(),
        Some("The user is not signed in.")
    );

    f.code(&browser, "openid").await;
    f.app.advance(Duration::from_secs(1));
    let too_old = browser
        .get(f.url(&format!("{request}&max_age=0")))
        .sent()
        .await;
    assert_eq!(too_old.status(), 303);
    let (_, params) = location_params(&too_old);
    assert_eq!(param(&params, "error").as_deref(), Some("login_required"));
    let description = param(&params, "error_description").unwrap();
    assert!(description.contains("max_age"), "{description}");
    assert_eq!(param(&params, "state").as_deref(), Some("m0"));
    assert!(param(&params, "code").is_none());
}

// Issue 15 item 10 (RFC 6749 §3.2, RFC 7009 §2.1, RFC 7662 §2.1): the token, revocation and
// introspection endpoints take their parameters in the form body only; anything in the URL
// query — a credential, a grant parameter, or a stray name — is `invalid_request`, before the
// client is authenticated or anything is redeemed (the code still works afterwards).
async fn token_endpoints_refuse_parameters_in_the_query(backend: Backend) {
    let f = Fixture::new(backend).await;
    let (code, verifier) = f.code(&browser(), "openid").await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", verifier.as_str()),
    ];
    for query in [
        format!("code={}", enc(&code)),
        "grant_type=authorization_code".to_owned(),
        "client_id=webapp".to_owned(),
        "x=1".to_owned(),
    ] {
        for path in ["/token", "/revoke", "/introspect"] {
            let response = f.token_like(&format!("{path}?{query}"), &form).await;
            assert_eq!(response.status(), 400, "{path}?{query}");
            assert_eq!(response.headers()["cache-control"], "no-store");
            let body = json_of(response).await;
            assert_eq!(body["error"], "invalid_request", "{path}?{query}");
            assert!(
                body["error_description"].as_str().unwrap().contains("URL"),
                "{body}"
            );
        }
    }
    // Nothing was redeemed: the code works once, from the body.
    let tokens = f.exchange(&code, &verifier).await;
    assert_eq!(tokens.status(), 200);
}

on_both_backends!(
    userinfo_takes_the_token_in_a_form_body,
    prompt_none_with_a_too_old_session_says_why,
    token_endpoints_refuse_parameters_in_the_query,
);
