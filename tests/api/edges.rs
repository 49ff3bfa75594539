//! Issue 15, package W3 (relying parties at the edges): the userinfo token in a form body
//! (RFC 6750 §2.2), `response_mode=form_post`, native apps (RFC 8252), browser apps (CORS) and
//! the token endpoint's query — on both backends.

use serde_json::Value;

use crate::helpers::{Backend, Fixture, Sent, browser, json_of};
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

on_both_backends!(userinfo_takes_the_token_in_a_form_body);
