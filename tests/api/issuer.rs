//! The issuer setting: every route under the issuer's path (OIDC Discovery §4, RFC 8414 §3),
//! and a plain-http issuer on a public host refused at start unless explicitly accepted.
//!
//! The servers here use the issuer `http://localhost/idp`: a loopback host whose path matters.
//! The test server listens on `127.0.0.1:<port>`, so requests go to `app.address` + the path
//! part of each URL.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{
    Backend, PASSWORD, REDIRECT, Sent, TestApp, TestEnv, browser, decode_claims, enc, exchange_at,
    hidden, location_params, param, pkce, portcullis_in_scratch, stderr_of, stdout_json,
};
use crate::on_both_backends;

const ISSUER: &str = "http://localhost/idp";

async fn spawn_under_path(env: &TestEnv) -> TestApp {
    let app = env
        .spawn_with(portcullis::config::SettingsArgs {
            issuer: Some(format!("{ISSUER}/")),
            ..env.args()
        })
        .await;
    assert_eq!(app.issuer, ISSUER, "normalised without the trailing slash");
    app
}

/// `url` (under the issuer) on the test server: its path, requested at `app.address`.
fn on_server(app: &TestApp, url: &str) -> String {
    let path = url
        .strip_prefix("http://localhost")
        .unwrap_or_else(|| panic!("{url} is not under the issuer's origin"));
    format!("{}{path}", app.address)
}

// ISS-01 (OIDC Discovery §4): the configuration is at `{issuer}/.well-known/openid-configuration`
// and every endpoint it names answers on the server; nothing is left at the root.
async fn iss_01_discovery_and_its_endpoints_live_under_the_issuer_path(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let app = spawn_under_path(&env).await;
    let response = app.get("/idp/.well-known/openid-configuration").await;
    assert_eq!(response.status(), StatusCode::OK);
    let doc: Value = response.json().await.unwrap();
    assert_eq!(doc["issuer"], ISSUER);
    for endpoint in [
        "authorization_endpoint",
        "token_endpoint",
        "jwks_uri",
        "userinfo_endpoint",
        "revocation_endpoint",
        "introspection_endpoint",
        "end_session_endpoint",
    ] {
        let url = doc[endpoint].as_str().unwrap();
        assert!(url.starts_with(&format!("{ISSUER}/")), "{endpoint}: {url}");
        let get = app.client.get(on_server(&app, url)).sent().await;
        let post = app.client.post(on_server(&app, url)).sent().await;
        for (method, response) in [("GET", get), ("POST", post)] {
            assert_ne!(
                response.status(),
                StatusCode::NOT_FOUND,
                "{method} {endpoint} {url} resolves"
            );
        }
        // And not at the root: the routes moved, they were not copied.
        let root_path = url.strip_prefix(ISSUER).unwrap();
        assert_eq!(
            app.get(root_path).await.status(),
            StatusCode::NOT_FOUND,
            "{root_path} at the root"
        );
    }
    let jwks: Value = app
        .client
        .get(on_server(&app, doc["jwks_uri"].as_str().unwrap()))
        .json_value()
        .await;
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 2);
    for path in [
        "/authorize",
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
        "/api/auth/login",
        "/admin/keys",
        "/openapi.json",
        // A scope matches whole segments only.
        "/idpx/.well-known/openid-configuration",
    ] {
        let response = app.get(path).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        assert_eq!(
            response.json::<Value>().await.unwrap()["error"],
            "not_found"
        );
    }
}

// ISS-02 (RFC 8414 §3): the authorization server metadata is at the well-known URI inserted
// between host and path, `/.well-known/oauth-authorization-server/idp`, with the same issuer.
async fn iss_02_rfc8414_metadata_at_the_inserted_well_known_path(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let app = spawn_under_path(&env).await;
    let response = app.get("/.well-known/oauth-authorization-server/idp").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/json");
    let doc: Value = response.json().await.unwrap();
    // RFC 8414 §3.3: the issuer is identical to the one the URL was built from.
    assert_eq!(doc["issuer"], ISSUER);
    assert_eq!(doc["token_endpoint"], format!("{ISSUER}/token"));
    let head = app
        .client
        .head(format!(
            "{}/.well-known/oauth-authorization-server/idp",
            app.address
        ))
        .sent()
        .await;
    assert_eq!(head.status(), StatusCode::OK);
}

// ISS-03: the first-party JSON API lives under the issuer's path, its refresh cookie is scoped
// there, and its tokens carry the issuer with its path (accepted by `/idp/api/me`).
async fn iss_03_json_api_under_the_issuer_path(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let app = spawn_under_path(&env).await;
    let registered = app
        .client
        .post(format!("{}/idp/api/auth/register", app.address))
        .json(&serde_json::json!({"username": "alice", "email": "alice@example.com", "password": PASSWORD}))
        .sent().await;
    assert_eq!(registered.status(), StatusCode::CREATED);
    let login = app
        .client
        .post(format!("{}/idp/api/auth/login", app.address))
        .json(&serde_json::json!({"username": "alice", "password": PASSWORD}))
        .sent()
        .await;
    assert_eq!(login.status(), StatusCode::OK);
    let cookie = login.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.contains("Path=/idp/api/auth"), "{cookie}");
    let tokens: Value = login.json().await.unwrap();
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(decode_claims(access)["iss"], ISSUER);
    let me = app
        .client
        .get(format!("{}/idp/api/me", app.address))
        .bearer_auth(access)
        .sent()
        .await;
    assert_eq!(me.status(), StatusCode::OK);
    let refreshed = app
        .client
        .post(format!("{}/idp/api/auth/refresh", app.address))
        .json(&serde_json::json!({"refresh_token": tokens["refresh_token"]}))
        .sent()
        .await;
    assert_eq!(refreshed.status(), StatusCode::OK);
    let root = app
        .client
        .post(format!("{}/api/auth/login", app.address))
        .json(&serde_json::json!({"username": "alice", "password": PASSWORD}))
        .sent()
        .await;
    assert_eq!(root.status(), StatusCode::NOT_FOUND);
}

// ISS-04: the hosted login page's form posts under the issuer's path, and the whole code flow
// works there (authorize → login form → code with `iss` → token endpoint).
async fn iss_04_hosted_login_form_actions_under_the_issuer_path(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let app = spawn_under_path(&env).await;
    let secret = app.create_webapp().await;
    app.create_user("alice").await;
    let verifier = "v".repeat(43);
    let browser = browser();
    let page = browser
        .get(format!(
            "{}/idp/authorize?response_type=code&client_id=webapp&redirect_uri={}&scope=openid&state=s1&code_challenge={}&code_challenge_method=S256",
            app.address,
            enc(REDIRECT),
            pkce(&verifier)
        ))
        .sent().await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    let marker = "action=\"";
    let start = html.find(marker).expect("a form") + marker.len();
    let action = &html[start..start + html[start..].find('"').unwrap()];
    assert_eq!(action, "/idp/authorize/login");
    let signed_in = browser
        .post(format!("{}{action}", app.address))
        .form(&[
            ("request_id", hidden(&html, "request_id")),
            ("csrf_token", hidden(&html, "csrf_token")),
            ("username", "alice".to_owned()),
            ("password", PASSWORD.to_owned()),
        ])
        .sent()
        .await;
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
    let (location, params) = location_params(&signed_in);
    assert!(location.starts_with(REDIRECT), "{location}");
    assert_eq!(param(&params, "iss").as_deref(), Some(ISSUER));
    let code = param(&params, "code").expect("code");
    let base = format!("{}/idp", app.address);
    let tokens = exchange_at(&app.client, &base, &secret, &code, &verifier)
        .sent()
        .await;
    assert_eq!(tokens.status(), StatusCode::OK);
    let tokens: Value = tokens.json().await.unwrap();
    let id_token = decode_claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(id_token["iss"], ISSUER);
}

// ISS-05: probes and metrics answer at the root (where load balancers and scrapers point) and
// under the issuer's path; the OpenAPI document names the path as its server; on a separate
// admin listener the admin API is under the path too.
async fn iss_05_operations_endpoints_at_root_and_under_the_path(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let app = spawn_under_path(&env).await;
    for path in [
        "/healthz",
        "/readyz",
        "/metrics",
        "/idp/healthz",
        "/idp/readyz",
        "/idp/metrics",
    ] {
        assert_eq!(app.get(path).await.status(), StatusCode::OK, "{path}");
    }
    let openapi: Value = app.get("/idp/openapi.json").await.json().await.unwrap();
    assert_eq!(openapi["servers"], serde_json::json!([{"url": "/idp"}]));
    assert!(openapi["paths"]["/api/auth/login"].is_object());

    let separate = env
        .spawn_with(portcullis::config::SettingsArgs {
            issuer: Some(ISSUER.into()),
            admin_bind: Some("127.0.0.1:0".into()),
            ..env.args()
        })
        .await;
    let admin = separate.admin_address.clone().unwrap();
    let keys = separate
        .client
        .get(format!("{admin}/idp/admin/keys"))
        .sent()
        .await;
    assert_eq!(
        keys.status(),
        StatusCode::UNAUTHORIZED,
        "exists, needs a token"
    );
    for path in ["/metrics", "/idp/metrics"] {
        let response = separate.client.get(format!("{admin}{path}")).sent().await;
        assert_eq!(response.status(), StatusCode::OK, "admin listener {path}");
    }
    for path in ["/idp/admin/keys", "/metrics", "/idp/metrics"] {
        assert_eq!(
            separate.get(path).await.status(),
            StatusCode::NOT_FOUND,
            "public listener {path}"
        );
    }
}

on_both_backends!(
    iss_01_discovery_and_its_endpoints_live_under_the_issuer_path,
    iss_02_rfc8414_metadata_at_the_inserted_well_known_path,
    iss_03_json_api_under_the_issuer_path,
    iss_04_hosted_login_form_actions_under_the_issuer_path,
    iss_05_operations_endpoints_at_root_and_under_the_path,
);

// ISS-06: a plain-http issuer on a host that is not loopback is refused at start with one line
// naming the setting and the way out; the prefix trick `http://127.0.0.1.evil.com` is not
// loopback; PORTCULLIS_INSECURE_HTTP_ISSUER (or its flag) accepts it explicitly.
#[tokio::test]
async fn iss_06_plain_http_public_issuer_is_refused_at_start() {
    for issuer in ["http://id.example.com", "http://127.0.0.1.evil.com"] {
        // `config check` first: were the check broken, `serve` would run until the timeout.
        for args in [
            &["config", "check"][..],
            &["serve", "--bind", "127.0.0.1:0"][..],
        ] {
            let output = portcullis_in_scratch(args, &[("PORTCULLIS_ISSUER", issuer)]).await;
            assert!(!output.status.success(), "{args:?} with {issuer}");
            let stderr = stderr_of(&output);
            let errors: Vec<&str> = stderr
                .lines()
                .filter(|l| l.starts_with("portcullis: error"))
                .collect();
            assert_eq!(errors.len(), 1, "one error line: {stderr}");
            assert!(
                errors[0].contains(&format!("PORTCULLIS_ISSUER: `{issuer}` is plain http"))
                    && errors[0].contains("PORTCULLIS_INSECURE_HTTP_ISSUER=true"),
                "{stderr}"
            );
            assert!(!stderr.contains("panicked"), "{stderr}");
        }
    }
    // The default issuer of a specific public bind address is refused the same way.
    let output = portcullis_in_scratch(
        &["config", "check"],
        &[("PORTCULLIS_BIND", "192.0.2.1:8080")],
    )
    .await;
    assert!(!output.status.success());
    assert!(
        stderr_of(&output).contains("issuer defaults to `http://192.0.2.1:8080`"),
        "{}",
        stderr_of(&output)
    );

    let by_env = stdout_json(
        &portcullis_in_scratch(
            &["config", "check"],
            &[
                ("PORTCULLIS_ISSUER", "http://id.example.com"),
                ("PORTCULLIS_INSECURE_HTTP_ISSUER", "true"),
            ],
        )
        .await,
    );
    assert_eq!(by_env["insecure_http_issuer"], true);
    assert_eq!(by_env["issuer"], "http://id.example.com");
    let by_flag = stdout_json(
        &portcullis_in_scratch(
            &[
                "config",
                "check",
                "--issuer",
                "http://id.example.com",
                "--insecure-http-issuer",
                "true",
            ],
            &[],
        )
        .await,
    );
    assert_eq!(by_flag["insecure_http_issuer"], true);
    // Loopback and https issuers need nothing; the flag defaults to false.
    for issuer in [
        "http://localhost:8080",
        "http://[::1]:80",
        "https://id.example.com",
    ] {
        let checked = stdout_json(
            &portcullis_in_scratch(&["config", "check"], &[("PORTCULLIS_ISSUER", issuer)]).await,
        );
        assert_eq!(checked["insecure_http_issuer"], false, "{issuer}");
    }
}
