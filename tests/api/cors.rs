//! Browser apps (issue 15 item 7): CORS on the token, revocation and userinfo endpoints for a
//! client's web origins (registered `web_origins` and its redirect URIs' origins), `*` on the
//! discovery and JWKS documents, and nothing anywhere else — on both backends.
//!
//! Case ids: KEY-03 (CORS on the public documents), AUTHZ-11 (none on the authorization
//! endpoint and the hosted pages), and the CORS cases this package adds to the catalogue:
//! CORS-01 (origins exact per client, echoed, never `*` nor credentials on the client
//! endpoints), CORS-02 (a cross-origin form POST from an origin that is not the client's is
//! refused before any side effect), CORS-03 (no CORS on introspection and the admin API).

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{
    Backend, ClientSpec, Sent, TestApp, TestEnv, browser, enc, json_of, location_params, param,
    pkce, sign_in, stderr_of, stdout_json,
};
use crate::on_both_backends;

/// The SPA's redirect URI: its origin is allowed without being registered as a web origin.
const SPA_REDIRECT: &str = "https://spa.example.com/cb";
const SPA_ORIGIN: &str = "https://spa.example.com";
/// The SPA's development server, registered as an explicit web origin.
const SPA_DEV_ORIGIN: &str = "http://localhost:5173";
/// The origin of another client: known to the server, not the SPA's.
const OTHER_ORIGIN: &str = "https://other.example.com";
const EVIL_ORIGIN: &str = "https://evil.example";

/// A server with the public first-party SPA, another client, a native app registered with a
/// port-less loopback redirect URI, and `alice`.
async fn spa_server(backend: Backend) -> (TestEnv, TestApp) {
    let env = TestEnv::new(backend).await;
    let app = env.spawn().await;
    app.create_user("alice").await;
    app.create_client(
        ClientSpec::new("spa")
            .public()
            .first_party()
            .redirect_uri(SPA_REDIRECT)
            .web_origin(SPA_DEV_ORIGIN),
    )
    .await;
    app.create_client(ClientSpec::new("other").redirect_uri("https://other.example.com/cb"))
        .await;
    app.create_client(
        ClientSpec::new("native")
            .public()
            .redirect_uri("http://127.0.0.1/cb"),
    )
    .await;
    (env, app)
}

/// A code for the SPA (`alice` signed in on a fresh browser) and its verifier.
async fn spa_code(app: &TestApp, scope: &str) -> (String, String) {
    let verifier = "spa-verifier-".repeat(4);
    let url = format!(
        "{}/authorize?response_type=code&client_id=spa&redirect_uri={}&scope={}&state=s&code_challenge={}&code_challenge_method=S256",
        app.address,
        enc(SPA_REDIRECT),
        enc(scope),
        pkce(&verifier)
    );
    let response = sign_in(&browser(), &app.address, &url, "alice").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let (_, params) = location_params(&response);
    (param(&params, "code").expect("a code"), verifier)
}

/// POSTs `form` to `path` with `origin` (none: a server-side client).
async fn post_from(
    app: &TestApp,
    path: &str,
    origin: Option<&str>,
    form: &[(&str, &str)],
) -> reqwest::Response {
    let mut request = app.client.post(app.url(path)).form(form);
    if let Some(origin) = origin {
        request = request.header("Origin", origin);
    }
    request.sent().await
}

/// A CORS preflight of `method` on `path` from `origin`.
async fn preflight(app: &TestApp, path: &str, origin: &str, method: &str) -> reqwest::Response {
    app.client
        .request(reqwest::Method::OPTIONS, app.url(path))
        .header("Origin", origin)
        .header("Access-Control-Request-Method", method)
        .header(
            "Access-Control-Request-Headers",
            "authorization, content-type",
        )
        .sent()
        .await
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    response
        .headers()
        .get(name)
        .map(|v| v.to_str().expect("ASCII header"))
}

/// The answer names `origin` (CORS-01: echoed, never `*`, never credentials) and varies by it.
fn assert_allows(response: &reqwest::Response, origin: &str, what: &str) {
    assert_eq!(
        header(response, "access-control-allow-origin"),
        Some(origin),
        "{what}"
    );
    assert_eq!(header(response, "vary"), Some("Origin"), "{what}");
    assert_eq!(
        header(response, "access-control-allow-credentials"),
        None,
        "{what}: no cookies here"
    );
}

/// The answer carries no `Access-Control-*` header at all.
fn assert_no_cors(response: &reqwest::Response, what: &str) {
    let cors: Vec<_> = response
        .headers()
        .keys()
        .filter(|name| name.as_str().starts_with("access-control-"))
        .collect();
    assert!(cors.is_empty(), "{what}: {cors:?}");
}

fn code_form<'a>(code: &'a str, verifier: &'a str) -> [(&'static str, &'a str); 5] {
    [
        ("grant_type", "authorization_code"),
        ("client_id", "spa"),
        ("code", code),
        ("redirect_uri", SPA_REDIRECT),
        ("code_verifier", verifier),
    ]
}

// CORS-01: preflights. A preflight names no client, so it is answered for an origin of any
// client; from another origin, or for a method the endpoint does not take, 403 and no CORS
// header. RFC 8252 §7.3's any-port loopback matching does not widen CORS.
async fn preflights_are_answered_for_the_origins_of_clients(backend: Backend) {
    let (_env, app) = spa_server(backend).await;
    for (path, method, methods) in [
        ("/token", "POST", "POST"),
        ("/revoke", "POST", "POST"),
        ("/userinfo", "GET", "GET, POST"),
        ("/userinfo", "POST", "GET, POST"),
    ] {
        for origin in [SPA_ORIGIN, SPA_DEV_ORIGIN, OTHER_ORIGIN, "http://127.0.0.1"] {
            let answer = preflight(&app, path, origin, method).await;
            let what = format!("preflight {method} {path} from {origin}");
            assert_eq!(answer.status(), StatusCode::NO_CONTENT, "{what}");
            assert_allows(&answer, origin, &what);
            assert_eq!(
                header(&answer, "access-control-allow-methods"),
                Some(methods)
            );
            assert_eq!(
                header(&answer, "access-control-allow-headers"),
                Some("Authorization, Content-Type")
            );
            assert_eq!(header(&answer, "access-control-max-age"), Some("600"));
        }
        for origin in [
            EVIL_ORIGIN,
            "null",
            "http://spa.example.com",
            "https://spa.example.com.evil.example",
            "https://spa.example.com:8443",
            "http://127.0.0.1:51004",
            "http://localhost",
        ] {
            let answer = preflight(&app, path, origin, method).await;
            let what = format!("preflight {method} {path} from {origin}");
            assert_eq!(answer.status(), StatusCode::FORBIDDEN, "{what}");
            assert_no_cors(&answer, &what);
        }
    }
    for (path, method) in [
        ("/token", "GET"),
        ("/token", "DELETE"),
        ("/userinfo", "PUT"),
    ] {
        let answer = preflight(&app, path, SPA_ORIGIN, method).await;
        assert_eq!(answer.status(), StatusCode::FORBIDDEN, "{method} {path}");
        assert_no_cors(&answer, path);
    }
    // An OPTIONS that is not a preflight is what it was before: 405 with Allow.
    let plain = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("/token"))
        .header("Origin", SPA_ORIGIN)
        .sent()
        .await;
    assert_eq!(plain.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(header(&plain, "allow"), Some("POST"));
    assert_no_cors(&plain, "OPTIONS without Access-Control-Request-Method");
}

// CORS-01 and CORS-02 at the token endpoint: the SPA redeems its code cross-origin and reads
// the answer, errors included; a form POST (a CORS simple request, sent without preflight) from
// an origin that is not the SPA's is refused before the code is spent, so the same code then
// redeems from the SPA's origin (or from a server, without Origin).
async fn the_token_endpoint_answers_the_clients_origins_and_refuses_others(backend: Backend) {
    let (_env, app) = spa_server(backend).await;

    let (code, verifier) = spa_code(&app, "openid").await;
    for origin in [EVIL_ORIGIN, OTHER_ORIGIN, "null", "http://127.0.0.1"] {
        let refused = post_from(&app, "/token", Some(origin), &code_form(&code, &verifier)).await;
        assert_eq!(
            refused.status(),
            StatusCode::BAD_REQUEST,
            "CORS-02 {origin}"
        );
        assert_eq!(header(&refused, "access-control-allow-origin"), None);
        assert_eq!(header(&refused, "cache-control"), Some("no-store"));
        let body = json_of(refused).await;
        assert_eq!(body["error"], "invalid_request", "{body}");
        assert!(
            body["error_description"]
                .as_str()
                .unwrap()
                .contains("Origin"),
            "{body}"
        );
    }
    let redeemed = post_from(
        &app,
        "/token",
        Some(SPA_ORIGIN),
        &code_form(&code, &verifier),
    )
    .await;
    assert_eq!(redeemed.status(), StatusCode::OK, "the code was not spent");
    assert_allows(&redeemed, SPA_ORIGIN, "token");
    assert_eq!(
        header(&redeemed, "access-control-expose-headers"),
        Some("WWW-Authenticate, Retry-After")
    );
    assert!(json_of(redeemed).await["access_token"].is_string());
    // The SPA reads invalid_grant (a replayed code) from its origin.
    let replay = post_from(
        &app,
        "/token",
        Some(SPA_ORIGIN),
        &code_form(&code, &verifier),
    )
    .await;
    assert_eq!(replay.status(), StatusCode::BAD_REQUEST);
    assert_allows(&replay, SPA_ORIGIN, "invalid_grant");
    assert_eq!(json_of(replay).await["error"], "invalid_grant");

    // Refused cross-origin, then redeemed by a server-side client: no Origin, no CORS.
    let (code, verifier) = spa_code(&app, "openid").await;
    let refused = post_from(
        &app,
        "/token",
        Some(EVIL_ORIGIN),
        &code_form(&code, &verifier),
    )
    .await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    let server_side = post_from(&app, "/token", None, &code_form(&code, &verifier)).await;
    assert_eq!(server_side.status(), StatusCode::OK);
    assert_eq!(header(&server_side, "access-control-allow-origin"), None);
    assert_eq!(header(&server_side, "vary"), Some("Origin"));

    // The explicitly registered web origin works as well as the redirect URI's.
    let (code, verifier) = spa_code(&app, "openid").await;
    let dev = post_from(
        &app,
        "/token",
        Some(SPA_DEV_ORIGIN),
        &code_form(&code, &verifier),
    )
    .await;
    assert_eq!(dev.status(), StatusCode::OK);
    assert_allows(&dev, SPA_DEV_ORIGIN, "web origin");

    // Before the client is known, an error is readable from an origin of any client, not
    // from another site.
    for (origin, readable) in [
        (SPA_ORIGIN, true),
        (OTHER_ORIGIN, true),
        (EVIL_ORIGIN, false),
    ] {
        let malformed = post_from(&app, "/token", Some(origin), &[("client_id", "spa")]).await;
        assert_eq!(malformed.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            header(&malformed, "access-control-allow-origin"),
            readable.then_some(origin),
            "{origin}"
        );
        let unknown = post_from(
            &app,
            "/token",
            Some(origin),
            &[
                ("grant_type", "authorization_code"),
                ("client_id", "nobody"),
            ],
        )
        .await;
        assert_eq!(json_of(unknown).await["error"], "invalid_client");
    }
}

// CORS-01 and CORS-02 at the revocation endpoint, and userinfo for the token's client: a
// refused cross-origin revocation revokes nothing; userinfo is readable from the origins of the
// token's client only (its errors from an origin of any client, WWW-Authenticate exposed).
async fn revocation_and_userinfo_answer_the_tokens_client(backend: Backend) {
    let (_env, app) = spa_server(backend).await;
    let (code, verifier) = spa_code(&app, "openid offline_access").await;
    let tokens = json_of(
        post_from(
            &app,
            "/token",
            Some(SPA_ORIGIN),
            &code_form(&code, &verifier),
        )
        .await,
    )
    .await;
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let refresh = tokens["refresh_token"]
        .as_str()
        .unwrap_or_else(|| panic!("a refresh token: {tokens}"))
        .to_owned();

    let userinfo = |origin: &'static str, token: String| {
        app.client
            .get(app.url("/userinfo"))
            .bearer_auth(token)
            .header("Origin", origin)
            .send()
    };
    for origin in [SPA_ORIGIN, SPA_DEV_ORIGIN] {
        let answer = userinfo(origin, access.clone()).await.unwrap();
        assert_eq!(answer.status(), StatusCode::OK);
        assert_allows(&answer, origin, "userinfo");
        assert!(json_of(answer).await["sub"].is_string());
    }
    // Another client's origin is known to the server, but the token is the SPA's.
    for origin in [OTHER_ORIGIN, EVIL_ORIGIN] {
        let answer = userinfo(origin, access.clone()).await.unwrap();
        assert_eq!(answer.status(), StatusCode::OK);
        assert_eq!(
            header(&answer, "access-control-allow-origin"),
            None,
            "{origin}"
        );
        assert_eq!(header(&answer, "vary"), Some("Origin"));
    }
    // The token in a form POST (RFC 6750 §2.2) from the SPA.
    let posted = post_from(
        &app,
        "/userinfo",
        Some(SPA_ORIGIN),
        &[("access_token", &access)],
    )
    .await;
    assert_eq!(posted.status(), StatusCode::OK);
    assert_allows(&posted, SPA_ORIGIN, "userinfo POST");
    let forged = userinfo(SPA_ORIGIN, format!("{access}x")).await.unwrap();
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);
    assert_allows(&forged, SPA_ORIGIN, "userinfo error");
    assert_eq!(
        header(&forged, "access-control-expose-headers"),
        Some("WWW-Authenticate, Retry-After")
    );
    assert!(header(&forged, "www-authenticate").is_some());

    // A refused cross-origin revocation revokes nothing: the refresh token still refreshes
    // (from the SPA), and then its successor is revoked from the SPA's origin.
    let app = &app;
    let revoke = |origin: Option<&'static str>, token: String| async move {
        post_from(
            app,
            "/revoke",
            origin,
            &[("client_id", "spa"), ("token", &token)],
        )
        .await
    };
    for origin in [EVIL_ORIGIN, OTHER_ORIGIN] {
        let refused = revoke(Some(origin), refresh.clone()).await;
        assert_eq!(
            refused.status(),
            StatusCode::BAD_REQUEST,
            "CORS-02 {origin}"
        );
        assert_eq!(header(&refused, "access-control-allow-origin"), None);
        assert_eq!(json_of(refused).await["error"], "invalid_request");
    }
    let refreshed = post_from(
        app,
        "/token",
        Some(SPA_ORIGIN),
        &[
            ("grant_type", "refresh_token"),
            ("client_id", "spa"),
            ("refresh_token", &refresh),
        ],
    )
    .await;
    assert_eq!(refreshed.status(), StatusCode::OK, "not revoked");
    assert_allows(&refreshed, SPA_ORIGIN, "refresh");
    let successor = json_of(refreshed).await["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let revoked = revoke(Some(SPA_ORIGIN), successor.clone()).await;
    assert_eq!(revoked.status(), StatusCode::OK);
    assert_allows(&revoked, SPA_ORIGIN, "revoke");
    let after = post_from(
        app,
        "/token",
        None,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", "spa"),
            ("refresh_token", &successor),
        ],
    )
    .await;
    assert_eq!(json_of(after).await["error"], "invalid_grant");
}

// KEY-03: the discovery documents and the JWKS are public: `*` to any origin, preflight
// included (no credentials, no Vary needed).
async fn the_public_documents_answer_any_origin(backend: Backend) {
    let (_env, app) = spa_server(backend).await;
    for path in [
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
        "/.well-known/jwks.json",
    ] {
        let got = app
            .client
            .get(app.url(path))
            .header("Origin", EVIL_ORIGIN)
            .sent()
            .await;
        assert_eq!(got.status(), StatusCode::OK, "{path}");
        assert_eq!(
            header(&got, "access-control-allow-origin"),
            Some("*"),
            "{path}"
        );
        assert_eq!(header(&got, "access-control-allow-credentials"), None);
        let answer = preflight(&app, path, EVIL_ORIGIN, "GET").await;
        assert_eq!(answer.status(), StatusCode::NO_CONTENT, "{path}");
        assert_eq!(header(&answer, "access-control-allow-origin"), Some("*"));
        assert_eq!(
            header(&answer, "access-control-allow-methods"),
            Some("GET, HEAD")
        );
        assert_eq!(header(&answer, "access-control-max-age"), Some("600"));
        assert_eq!(header(&answer, "access-control-allow-credentials"), None);
        let post = preflight(&app, path, EVIL_ORIGIN, "POST").await;
        assert_eq!(post.status(), StatusCode::FORBIDDEN, "{path}");
        assert_no_cors(&post, path);
    }
}

// AUTHZ-11 and CORS-03: the authorization endpoint, the hosted pages (login, consent, logout,
// errors), introspection and the admin API never answer CORS, not even to an origin that is a
// client's, and their preflights get 405.
async fn nothing_else_answers_cors(backend: Backend) {
    let (_env, app) = spa_server(backend).await;
    let admin = app.admin_token().await;
    let verifier = "v".repeat(43);
    let authorize = format!(
        "/authorize?response_type=code&client_id=spa&redirect_uri={}&scope=openid&code_challenge={}&code_challenge_method=S256",
        enc(SPA_REDIRECT),
        pkce(&verifier)
    );
    let with_origin = |method: reqwest::Method, path: &str| {
        app.client
            .request(method, app.url(path))
            .header("Origin", SPA_ORIGIN)
    };
    let login_page = with_origin(reqwest::Method::GET, &authorize).sent().await;
    assert_eq!(login_page.status(), StatusCode::OK);
    assert_no_cors(&login_page, "the login page (AUTHZ-11)");
    let error_page = with_origin(reqwest::Method::GET, "/authorize?client_id=nobody")
        .sent()
        .await;
    assert_eq!(error_page.status(), StatusCode::BAD_REQUEST);
    assert_no_cors(&error_page, "the error page");
    for (method, path, form) in [
        (
            reqwest::Method::POST,
            "/authorize",
            vec![("client_id", "spa")],
        ),
        (
            reqwest::Method::POST,
            "/authorize/login",
            vec![("request_id", "x"), ("csrf_token", "y")],
        ),
        (
            reqwest::Method::POST,
            "/authorize/consent",
            vec![("request_id", "x"), ("csrf_token", "y")],
        ),
        (reqwest::Method::GET, "/logout", vec![]),
        (
            reqwest::Method::POST,
            "/introspect",
            vec![("client_id", "spa"), ("token", "x")],
        ),
    ] {
        let answer = with_origin(method.clone(), path).form(&form).sent().await;
        assert_no_cors(&answer, &format!("{method} {path}"));
    }
    let admin_answer = with_origin(reqwest::Method::GET, "/admin/clients")
        .bearer_auth(&admin)
        .sent()
        .await;
    assert_eq!(admin_answer.status(), StatusCode::OK);
    assert_no_cors(&admin_answer, "the admin API (CORS-03)");
    for (path, method) in [
        ("/authorize", "GET"),
        ("/authorize/login", "POST"),
        ("/authorize/consent", "POST"),
        ("/logout", "GET"),
        ("/introspect", "POST"),
        ("/admin/clients", "GET"),
        ("/admin/clients/spa/web-origins", "PUT"),
    ] {
        let answer = preflight(&app, path, SPA_ORIGIN, method).await;
        assert_eq!(
            answer.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "preflight {method} {path}"
        );
        assert_no_cors(&answer, &format!("preflight {method} {path}"));
    }
}

// Client metadata `web_origins`: validated at registration and on change through the admin API
// (the JSON API error shape, naming the origin; nothing half-written), shown in the client's
// metadata, and effective at once.
async fn web_origins_are_validated_and_take_effect_at_once(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let app = env.spawn().await;
    let admin = app.admin_token().await;
    let send = |method: reqwest::Method, path: &'static str, body: Value| {
        app.send(method, path, &admin, Some(body))
    };
    for bad in [
        "https://spa.example.com/",
        "https://spa.example.com/app",
        "http://spa.example.com",
        "https://SPA.example.com",
        "*",
        "null",
        "spa.example.com",
    ] {
        let refused = send(
            reqwest::Method::POST,
            "/admin/clients",
            json!({
                "client_id": "spa",
                "public": true,
                "redirect_uris": ["https://spa.example.com/cb"],
                "web_origins": ["https://ok.example.com", bad],
            }),
        )
        .await;
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST, "{bad}");
        let body = json_of(refused).await;
        assert_eq!(body["error"], "invalid_request", "{body}");
        let description = body["error_description"].as_str().unwrap();
        assert!(
            description.contains(&format!("web origin `{bad}` refused")),
            "{description}"
        );
    }
    let listed = json_of(
        app.send(reqwest::Method::GET, "/admin/clients", &admin, None)
            .await,
    )
    .await;
    assert_eq!(listed["clients"], json!([]), "nothing half-written");

    let created = send(
        reqwest::Method::POST,
        "/admin/clients",
        json!({
            "client_id": "spa",
            "public": true,
            "redirect_uris": ["https://spa.example.com/cb"],
            "web_origins": ["https://a.example.com", "https://a.example.com"],
        }),
    )
    .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    assert_eq!(
        json_of(created).await["web_origins"],
        json!(["https://a.example.com"]),
        "duplicates dropped"
    );
    assert_eq!(
        preflight(&app, "/token", "https://a.example.com", "POST")
            .await
            .status(),
        StatusCode::NO_CONTENT
    );

    let bad_change = send(
        reqwest::Method::PUT,
        "/admin/clients/spa/web-origins",
        json!({"web_origins": ["https://b.example.com", "https://b.example.com/"]}),
    )
    .await;
    assert_eq!(bad_change.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        preflight(&app, "/token", "https://a.example.com", "POST")
            .await
            .status(),
        StatusCode::NO_CONTENT,
        "unchanged"
    );
    let changed = send(
        reqwest::Method::PUT,
        "/admin/clients/spa/web-origins",
        json!({"web_origins": ["https://b.example.com"]}),
    )
    .await;
    assert_eq!(changed.status(), StatusCode::OK);
    assert_eq!(
        json_of(changed).await["web_origins"],
        json!(["https://b.example.com"])
    );
    for (origin, status) in [
        ("https://b.example.com", StatusCode::NO_CONTENT),
        ("https://a.example.com", StatusCode::FORBIDDEN),
        // The redirect URI's origin stays.
        (SPA_ORIGIN, StatusCode::NO_CONTENT),
    ] {
        assert_eq!(
            preflight(&app, "/token", origin, "POST").await.status(),
            status,
            "{origin}"
        );
    }
    let unknown = send(
        reqwest::Method::PUT,
        "/admin/clients/nobody/web-origins",
        json!({"web_origins": []}),
    )
    .await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    let audit = json_of(
        app.send(reqwest::Method::GET, "/admin/audit", &admin, None)
            .await,
    )
    .await;
    assert!(
        audit.to_string().contains("client_web_origins_changed"),
        "{audit}"
    );
}

// `portcullis clients create --web-origin` (repeatable) and `clients update --web-origin` /
// `--no-web-origins`; a bad origin exits non-zero naming it. A server started afterwards
// answers the registered origins.
async fn the_cli_registers_and_changes_web_origins(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let created = stdout_json(
        &env.cli(&[
            "clients",
            "create",
            "--client-id",
            "spa",
            "--public",
            "--redirect-uri",
            "https://spa.example.com/cb",
            "--web-origin",
            "http://localhost:5173",
            "--web-origin",
            "https://preview.example.com",
        ])
        .await,
    );
    assert_eq!(
        created["web_origins"],
        json!(["http://localhost:5173", "https://preview.example.com"])
    );
    let bad = env
        .cli(&[
            "clients",
            "update",
            "spa",
            "--web-origin",
            "https://x.example.com/",
        ])
        .await;
    assert!(!bad.status.success());
    let stderr = stderr_of(&bad);
    assert!(
        stderr.contains("web origin `https://x.example.com/` refused"),
        "{stderr}"
    );
    let nothing = env.cli(&["clients", "update", "spa"]).await;
    assert!(!nothing.status.success());
    let updated = stdout_json(
        &env.cli(&[
            "clients",
            "update",
            "spa",
            "--web-origin",
            "https://app.example.com",
        ])
        .await,
    );
    assert_eq!(updated["web_origins"], json!(["https://app.example.com"]));

    let app = env.spawn().await;
    for (origin, status) in [
        ("https://app.example.com", StatusCode::NO_CONTENT),
        (SPA_ORIGIN, StatusCode::NO_CONTENT),
        ("http://localhost:5173", StatusCode::FORBIDDEN),
    ] {
        assert_eq!(
            preflight(&app, "/token", origin, "POST").await.status(),
            status,
            "{origin}"
        );
    }
    app.stop().await;
    let cleared = stdout_json(
        &env.cli(&["clients", "update", "spa", "--no-web-origins"])
            .await,
    );
    assert_eq!(cleared["web_origins"], json!([]));
}

// With an issuer that has a path, CORS follows the routes under it, and the RFC 8414 document
// at the root answers any origin too.
async fn cors_follows_the_routes_under_the_issuers_path(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let app = env
        .spawn_with(portcullis::config::SettingsArgs {
            issuer: Some("http://localhost/idp".into()),
            ..env.args()
        })
        .await;
    app.create_client(ClientSpec::new("spa").public().redirect_uri(SPA_REDIRECT))
        .await;
    for (path, method, origin) in [
        ("/idp/token", "POST", SPA_ORIGIN),
        ("/idp/revoke", "POST", SPA_ORIGIN),
        ("/idp/userinfo", "GET", SPA_ORIGIN),
        ("/idp/.well-known/openid-configuration", "GET", "*"),
        ("/idp/.well-known/jwks.json", "GET", "*"),
        ("/.well-known/oauth-authorization-server/idp", "GET", "*"),
    ] {
        let answer = preflight(&app, path, SPA_ORIGIN, method).await;
        assert_eq!(answer.status(), StatusCode::NO_CONTENT, "{path}");
        assert_eq!(
            header(&answer, "access-control-allow-origin"),
            Some(origin),
            "{path}"
        );
    }
    for path in ["/token", "/idp/introspect", "/idp/authorize"] {
        assert_no_cors(&preflight(&app, path, SPA_ORIGIN, "POST").await, path);
    }
}

on_both_backends!(
    cors_follows_the_routes_under_the_issuers_path,
    preflights_are_answered_for_the_origins_of_clients,
    the_token_endpoint_answers_the_clients_origins_and_refuses_others,
    revocation_and_userinfo_answer_the_tokens_client,
    the_public_documents_answer_any_origin,
    nothing_else_answers_cors,
    web_origins_are_validated_and_take_effect_at_once,
    the_cli_registers_and_changes_web_origins,
);
