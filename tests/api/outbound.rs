//! Outbound fetches (issue 18 item 4) and `jwks_uri` for `private_key_jwt` clients (item 2):
//! a client's keys are fetched from its https URL through the SSRF-safe fetcher, cached by
//! their headers and refetched for an unknown `kid` (key rotation at the client); URLs and
//! addresses that are not public, redirects, oversized, slow and non-JSON answers are refused,
//! and where the address is refused, no connection is made (SSRF-01..SSRF-08).

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use portcullis::config::SettingsArgs;
use portcullis::keys::SigningAlg;

use crate::helpers::{Backend, ClientSpec, DocServer, Reply, TestApp, TestEnv, json_of};
use crate::on_both_backends;
use crate::stub::{TestKey, now};

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Settings that trust `docs`' certificate, with a 1 s fetch limit; loopback allowed or not.
pub fn outbound_args(env: &TestEnv, docs: &DocServer, allow_loopback: bool) -> SettingsArgs {
    SettingsArgs {
        outbound_ca_file: Some(docs.write_cert(env.dir.path())),
        outbound_allow_loopback: Some(allow_loopback),
        outbound_timeout: Some("1s".into()),
        ..env.args()
    }
}

fn jwks(keys: &[&TestKey]) -> Value {
    json!({ "keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>() })
}

/// A fresh assertion of `client_id` signed by `key` (its kid in the header), audience the issuer.
fn assertion(app: &TestApp, client_id: &str, key: &TestKey, kid: &str) -> String {
    let now = now();
    key.jws(
        &json!({ "alg": key.alg.as_str(), "kid": kid }),
        &json!({
            "iss": client_id, "sub": client_id, "aud": app.issuer, "iat": now, "exp": now + 60,
            "jti": uuid::Uuid::new_v4().to_string(),
        }),
    )
}

/// A client_credentials request authenticated by `assertion`: status and body.
async fn token_with(app: &TestApp, assertion: &str) -> (StatusCode, Value) {
    let response = app
        .post_form(
            "/token",
            &[
                ("grant_type", "client_credentials"),
                ("client_assertion_type", JWT_BEARER),
                ("client_assertion", assertion),
            ],
        )
        .await;
    let status = response.status();
    (status, json_of(response).await)
}

// A client registered with a jwks_uri gets tokens with keys fetched from it; the key set is
// cached (a second request fetches nothing); when the client rotates its keys, an assertion
// with the new kid refetches at once and works; an assertion with a made-up kid right after
// is refused without another fetch (the unknown-kid cooldown).
async fn jwks_uri_keys_are_fetched_cached_and_refetched_on_rotation(backend: Backend) {
    let docs = DocServer::start().await;
    let env = TestEnv::new(backend).await;
    let app = env.spawn_with(outbound_args(&env, &docs, true)).await;
    let (old, new) = (
        TestKey::new(SigningAlg::Es256),
        TestKey::new(SigningAlg::Rs256),
    );
    docs.serve(
        "/jwks",
        Reply::json(&jwks(&[&old]))
            .header("Cache-Control", "public, max-age=600")
            .header("Content-Type", "application/jwk-set+json"),
    );
    let registered = app
        .create_client(ClientSpec::new("remote").private_key_jwt_uri(&docs.url("/jwks")))
        .await;
    assert!(registered.client_secret.is_none());
    assert_eq!(docs.requests("/jwks"), 0, "keys are fetched when needed");

    for _ in 0..2 {
        let (status, body) = token_with(&app, &assertion(&app, "remote", &old, &old.kid)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    assert_eq!(docs.requests("/jwks"), 1, "cached by its max-age");

    // Rotation at the client: the new key replaces the old one at the URL.
    docs.serve("/jwks", Reply::json(&jwks(&[&new])));
    let (status, body) = token_with(&app, &assertion(&app, "remote", &new, &new.kid)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        docs.requests("/jwks"),
        2,
        "an unknown kid refetched the keys"
    );

    let (status, body) = token_with(&app, &assertion(&app, "remote", &new, "made-up")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"], "invalid_client");
    assert_eq!(docs.requests("/jwks"), 2, "no refetch within the cooldown");
    // The old key is gone from the set that is now cached.
    let (status, _) = token_with(&app, &assertion(&app, "remote", &old, &old.kid)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // The admin API shows the URL and changes it (exactly one of jwks and jwks_uri).
    let admin = app.admin_token().await;
    let response = app.send(Method::GET, "/admin/clients", &admin, None).await;
    let clients = json_of(response).await;
    let shown = clients["clients"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["client_id"] == "remote")
        .unwrap()
        .clone();
    assert_eq!(shown["jwks_uri"], docs.url("/jwks"));
    assert_eq!(shown["token_endpoint_auth_method"], "private_key_jwt");
    assert!(shown.get("jwks").is_none());
    let both = json!({ "jwks": jwks(&[&new]), "jwks_uri": docs.url("/jwks") });
    let response = app
        .send(
            Method::PUT,
            "/admin/clients/remote/jwks",
            &admin,
            Some(both),
        )
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let response = app
        .send(
            Method::PUT,
            "/admin/clients/remote/jwks",
            &admin,
            Some(json!({ "jwks_uri": docs.url("/other") })),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(json_of(response).await["jwks_uri"], docs.url("/other"));
}

/// Registers a key client `id` with `jwks_uri` through the admin API: status and body.
async fn register(app: &TestApp, admin: &str, id: &str, jwks_uri: &str) -> (StatusCode, Value) {
    let body = json!({
        "client_id": id, "token_endpoint_auth_method": "private_key_jwt", "jwks_uri": jwks_uri,
    });
    let response = app
        .send(Method::POST, "/admin/clients", admin, Some(body))
        .await;
    let status = response.status();
    (status, json_of(response).await)
}

// SSRF-01..04: without the test-only loopback allowance, a jwks_uri on a loopback address (by
// IPv4 or IPv6 literal, or by a name that resolves to it) is refused at the fetch with no
// connection made; URLs that are not https, carry credentials or name a private, link-local,
// CGNAT, unspecified, unique-local or IPv4-mapped address are refused at registration.
async fn jwks_uri_on_special_use_addresses_is_refused_without_a_connection(backend: Backend) {
    let docs = DocServer::start().await;
    let key = TestKey::new(SigningAlg::Es256);
    docs.serve("/jwks", Reply::json(&jwks(&[&key])));
    let env = TestEnv::new(backend).await;
    let app = env.spawn_with(outbound_args(&env, &docs, false)).await;
    let admin = app.admin_token().await;

    // SSRF-01: loopback by IP literal; SSRF-02: a name that resolves to loopback.
    for (id, uri) in [
        ("by-ip", docs.url("/jwks")),
        ("by-ipv6", format!("https://[::1]:{}/jwks", docs.port)),
        ("by-name", format!("https://localhost:{}/jwks", docs.port)),
    ] {
        let (status, body) = register(&app, &admin, id, &uri).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let (status, body) = token_with(&app, &assertion(&app, id, &key, &key.kid)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{id}: {body}");
        assert_eq!(body["error"], "invalid_client");
        assert_eq!(
            docs.accepts(),
            0,
            "{id}: no connection to a refused address"
        );
    }

    // SSRF-03: special-use literals and URLs that are not plain https are refused at once.
    for uri in [
        "https://10.0.0.8/jwks".to_owned(),
        "https://169.254.169.254/latest/meta-data".to_owned(),
        "https://192.168.1.1/jwks".to_owned(),
        "https://100.64.0.1/jwks".to_owned(),
        "https://0.0.0.0/jwks".to_owned(),
        format!("https://[::ffff:127.0.0.1]:{}/jwks", docs.port),
        "https://[fd00::1]/jwks".to_owned(),
        "https://[fe80::1]/jwks".to_owned(),
        format!("http://127.0.0.1:{}/jwks", docs.port),
        "https://user:pw@client.example/jwks".to_owned(),
        "https://client.example/jwks#frag".to_owned(),
    ] {
        let (status, body) = register(&app, &admin, "literal", &uri).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {body}");
        assert!(
            body["error_description"]
                .as_str()
                .unwrap_or_default()
                .contains("jwks_uri"),
            "{uri}: {body}"
        );
    }
    // SSRF-04: jwks and jwks_uri together, or jwks_uri for a client without keys.
    let response = app
        .send(
            Method::POST,
            "/admin/clients",
            &admin,
            Some(json!({
                "client_id": "both", "token_endpoint_auth_method": "private_key_jwt",
                "jwks": jwks(&[&key]), "jwks_uri": "https://client.example/jwks",
            })),
        )
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let response = app
        .send(
            Method::POST,
            "/admin/clients",
            &admin,
            Some(json!({ "client_id": "secretful", "jwks_uri": "https://client.example/jwks" })),
        )
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(docs.accepts(), 0);
}

// SSRF-05..08: with loopback allowed (so the test server is reachable), a redirect is not
// followed (the target is never requested), and an oversized body, a body that stalls past
// the time limit, a non-JSON content type and an error status are refused; none is cached (the
// next request fetches again).
async fn redirects_oversized_slow_and_non_json_answers_are_refused(backend: Backend) {
    let docs = DocServer::start().await;
    let key = TestKey::new(SigningAlg::Es256);
    let env = TestEnv::new(backend).await;
    let app = env.spawn_with(outbound_args(&env, &docs, true)).await;
    let good = jwks(&[&key]);
    docs.serve("/target", Reply::json(&good));
    let mut redirect = Reply::json(&json!({}));
    redirect.status = 302;
    redirect
        .headers
        .push(("Location".into(), docs.url("/target")));
    let mut big = good.clone();
    big["padding"] = json!("x".repeat(20 * 1024));
    let mut slow = Reply::json(&good);
    slow.stall = true;
    let mut html = Reply::json(&good);
    html.headers = vec![("Content-Type".into(), "text/html".into())];
    let mut missing = Reply::json(&good);
    missing.status = 404;
    for (path, reply) in [
        ("/redirect", redirect),
        ("/big", Reply::json(&big)),
        ("/slow", slow),
        ("/html", html),
        ("/missing", missing),
    ] {
        docs.serve(path, reply);
        let id = path.trim_start_matches('/');
        app.create_client(ClientSpec::new(id).private_key_jwt_uri(&docs.url(path)))
            .await;
        for attempt in 1..=2 {
            let (status, body) = token_with(&app, &assertion(&app, id, &key, &key.kid)).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}: {body}");
            assert_eq!(body["error"], "invalid_client", "{path}");
            assert_eq!(
                docs.requests(path),
                attempt,
                "{path}: errors are not cached"
            );
        }
    }
    assert_eq!(docs.requests("/target"), 0, "the redirect was not followed");
}

on_both_backends!(
    jwks_uri_keys_are_fetched_cached_and_refetched_on_rotation,
    jwks_uri_on_special_use_addresses_is_refused_without_a_connection,
    redirects_oversized_slow_and_non_json_answers_are_refused,
);
