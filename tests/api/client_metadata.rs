//! Client ID metadata documents (issue 18; draft-ietf-oauth-client-id-metadata-document): a
//! `client_id` that is an https URL is resolved by fetching that document through the
//! SSRF-safe fetcher, cached by its headers; such a public client signs in through the hosted
//! pages (which name the document's host), redeems its code with PKCE, refreshes and revokes.
//! Documents that are invalid, unsafe to fetch or off are refused and never cached (SSRF-09,
//! CIMD-01..03).

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{
    Backend, DocServer, REDIRECT, Reply, TestApp, TestEnv, answer_consent, browser, code_of, enc,
    json_of, pkce,
};
use crate::on_both_backends;
use crate::outbound::outbound_args;

/// A server that resolves metadata documents, trusting `docs` (loopback allowed or not).
async fn spawn(env: &TestEnv, docs: &DocServer, allow_loopback: bool) -> TestApp {
    let mut args = outbound_args(env, docs, allow_loopback);
    args.client_id_metadata_documents = Some(true);
    env.spawn_with(args).await
}

/// A valid document for the client id `url`.
fn document(url: &str) -> Value {
    json!({
        "client_id": url,
        "client_name": "Metadata app",
        "redirect_uris": [REDIRECT],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
        "scope": "openid profile offline_access",
    })
}

const VERIFIER: &str = "metadata-document-client-verifier-0123456789abcdef";

/// `/authorize` for `client_id` with PKCE, `scope` and `redirect_uri`.
fn authorize_url(app: &TestApp, client_id: &str, redirect_uri: &str) -> String {
    app.url(&format!(
        "/authorize?response_type=code&client_id={}&redirect_uri={}&scope={}&state=s1&code_challenge={}&code_challenge_method=S256",
        enc(client_id),
        enc(redirect_uri),
        enc("openid offline_access"),
        pkce(VERIFIER),
    ))
}

/// POSTs `form` to `path` without client authentication: status and JSON body.
async fn post(app: &TestApp, path: &str, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let response = app.post_form(path, form).await;
    let status = response.status();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

// CIMD-01: a public client known only by its document URL signs in on the hosted page (which
// names the document's host), consents, redeems its code with PKCE, refreshes and revokes; the
// document is fetched once (cached by its max-age); discovery advertises the feature; a
// redirect URI not in the document gets the error page.
async fn a_metadata_document_client_signs_in_refreshes_and_revokes(backend: Backend) {
    let docs = DocServer::start().await;
    let env = TestEnv::new(backend).await;
    let app = spawn(&env, &docs, true).await;
    app.create_user("alice").await;
    let client_id = docs.url("/client.json");
    docs.serve(
        "/client.json",
        Reply::json(&document(&client_id)).header("Cache-Control", "max-age=600"),
    );
    for path in [
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
    ] {
        let discovery = json_of(app.get(path).await).await;
        assert_eq!(discovery["client_id_metadata_document_supported"], true);
    }

    let browser = browser();
    let page = browser
        .get(authorize_url(&app, &client_id, REDIRECT))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("published at <strong>127.0.0.1</strong>"),
        "the login page names the document's host: {html}"
    );
    let consent = crate::helpers::post_login_form(&browser, &app.address, &html, "alice").await;
    assert_eq!(consent.status(), StatusCode::OK, "consent is asked");
    let html = consent.text().await.unwrap();
    assert!(html.contains("published at <strong>127.0.0.1</strong>"));
    let approved = answer_consent(&browser, app.url("/authorize/consent"), &html, "approve").await;
    let code = code_of(&approved);

    let (status, tokens) = post(
        &app,
        "/token",
        &[
            ("grant_type", "authorization_code"),
            ("client_id", &client_id),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let claims = crate::helpers::decode_claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(claims["aud"], json!(client_id));
    let refresh_token = tokens["refresh_token"].as_str().unwrap().to_owned();
    let (status, refreshed) = post(
        &app,
        "/token",
        &[
            ("grant_type", "refresh_token"),
            ("client_id", &client_id),
            ("refresh_token", &refresh_token),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{refreshed}");
    let refresh_token = refreshed["refresh_token"].as_str().unwrap().to_owned();
    let (status, _) = post(
        &app,
        "/revoke",
        &[("client_id", &client_id), ("token", &refresh_token)],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = post(
        &app,
        "/token",
        &[
            ("grant_type", "refresh_token"),
            ("client_id", &client_id),
            ("refresh_token", &refresh_token),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "revoked: {body}");
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(docs.requests("/client.json"), 1, "cached by its max-age");

    // Redirect URIs match the document's exactly (§4.5): anything else is not redirected to.
    let response = app
        .client
        .get(authorize_url(&app, &client_id, "http://127.0.0.1:9/other"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.headers().get("location").is_none());
}

/// `/authorize` for `client_id` on `app`: refused with the error page (400, no redirect).
async fn assert_authorize_refused(app: &TestApp, client_id: &str, what: &str) {
    let response = app
        .client
        .get(authorize_url(app, client_id, REDIRECT))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{what}");
    assert!(response.headers().get("location").is_none(), "{what}");
    let (status, body) = post(
        app,
        "/token",
        &[
            ("grant_type", "authorization_code"),
            ("client_id", client_id),
            ("code", "x"),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}: {body}");
    assert_eq!(body["error"], "invalid_client", "{what}");
}

// CIMD-02: documents that break the rules are refused at the authorization and token endpoints,
// and errors are not cached (each attempt fetches again): a client_id that is not the URL, a
// shared-secret method or a client_secret, more than 5 KB, a redirect (not followed), a
// non-200 status, a non-JSON content type.
async fn invalid_metadata_documents_are_refused_and_not_cached(backend: Backend) {
    let docs = DocServer::start().await;
    let env = TestEnv::new(backend).await;
    let app = spawn(&env, &docs, true).await;
    let mut cases: Vec<(&str, Reply)> = Vec::new();
    let with = |path: &str, change: &dyn Fn(&mut Value)| {
        let mut doc = document(&docs.url(path));
        change(&mut doc);
        Reply::json(&doc)
    };
    cases.push((
        "/other-id.json",
        with("/other-id.json", &|d| {
            d["client_id"] = json!("https://x.example/c")
        }),
    ));
    cases.push((
        "/secret-method.json",
        with("/secret-method.json", &|d| {
            d["token_endpoint_auth_method"] = json!("client_secret_basic")
        }),
    ));
    cases.push((
        "/secret.json",
        with("/secret.json", &|d| d["client_secret"] = json!("s3cret")),
    ));
    cases.push((
        "/big.json",
        with("/big.json", &|d| {
            d["client_name"] = json!("x".repeat(6 * 1024))
        }),
    ));
    let mut redirect = Reply::json(&json!({}));
    redirect.status = 302;
    redirect
        .headers
        .push(("Location".into(), docs.url("/target.json")));
    docs.serve("/target.json", with("/target.json", &|_| {}));
    cases.push(("/redirect.json", redirect));
    let mut gone = with("/gone.json", &|_| {});
    gone.status = 410;
    cases.push(("/gone.json", gone));
    let mut html = with("/html.json", &|_| {});
    html.headers = vec![("Content-Type".into(), "text/html".into())];
    cases.push(("/html.json", html));
    for (path, reply) in cases {
        docs.serve(path, reply);
        assert_authorize_refused(&app, &docs.url(path), path).await;
        assert_eq!(docs.requests(path), 2, "{path}: errors are not cached");
    }
    assert_eq!(
        docs.requests("/target.json"),
        0,
        "the redirect was not followed"
    );
}

// SSRF-09, CIMD-03: a document URL on a loopback address (by IP or by a name resolving to it)
// without the test-only allowance, on a private or link-local literal, or in a non-canonical
// form is refused with no connection made; with the feature off (the default) an https
// client_id is an unknown client, nothing is fetched and discovery does not advertise it.
async fn metadata_documents_on_refused_addresses_or_when_off_are_never_fetched(backend: Backend) {
    let docs = DocServer::start().await;
    let env = TestEnv::new(backend).await;
    let app = spawn(&env, &docs, false).await;
    let by_ip = docs.url("/client.json");
    let by_name = format!("https://localhost:{}/client.json", docs.port);
    for url in [&by_ip, &by_name] {
        docs.serve(
            &url[url.find("/client").unwrap()..],
            Reply::json(&document(url)),
        );
    }
    for (url, what) in [
        (by_ip.clone(), "loopback IP"),
        (by_name.clone(), "a name resolving to loopback"),
        (
            format!("https://[::1]:{}/client.json", docs.port),
            "IPv6 loopback",
        ),
        (
            format!("https://[::ffff:127.0.0.1]:{}/client.json", docs.port),
            "IPv4-mapped",
        ),
        ("https://10.0.0.7/client.json".to_owned(), "private"),
        (
            "https://169.254.169.254/latest/meta-data".to_owned(),
            "link-local",
        ),
        ("https://localhost:1/".to_owned(), "no path"),
        (
            format!("https://LOCALHOST:{}/client.json", docs.port),
            "not canonical",
        ),
    ] {
        assert_authorize_refused(&app, &url, what).await;
        assert_eq!(docs.accepts(), 0, "{what}: no connection");
    }

    let off_env = TestEnv::new(backend).await;
    let off = off_env
        .spawn_with(outbound_args(&off_env, &docs, true))
        .await;
    let discovery = json_of(off.get("/.well-known/openid-configuration").await).await;
    assert!(
        discovery
            .get("client_id_metadata_document_supported")
            .is_none()
    );
    assert_authorize_refused(&off, &by_ip, "feature off").await;
    assert_eq!(
        docs.accepts(),
        0,
        "nothing is fetched when the feature is off"
    );
}

on_both_backends!(
    a_metadata_document_client_signs_in_refreshes_and_revokes,
    invalid_metadata_documents_are_refused_and_not_cached,
    metadata_documents_on_refused_addresses_or_when_off_are_never_fetched,
);
