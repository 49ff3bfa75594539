//! Dynamic client registration (RFC 7591) and management (RFC 7592), issue 18 item 3: off by
//! default; open registration of public clients within its policy (then a full code + PKCE
//! flow); registration with initial access tokens issued by administrators (missing, unknown,
//! expired, used-up and revoked tokens refused); RFC 7592 read, update and delete with the
//! registration access token; malformed bodies; the per-network budget; the janitor's expiry
//! of unused dynamic clients; a real client library (openidconnect) registering. Cases DCR-01
//! to DCR-09.

use std::time::Duration;

use portcullis::config::SettingsArgs;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{
    Backend, ClientSpec, Sent, TestApp, TestEnv, answer_consent, browser, code_of, enc, json_of,
    pkce, post_login_form, rp_http,
};
use crate::on_both_backends;
use crate::stub::TestKey;

/// The native app's loopback redirect URI.
const LOOPBACK: &str = "http://127.0.0.1:9/callback";

/// Settings with registration `mode` (`off`, `token`, `open`).
fn with_mode(env: &TestEnv, mode: &str) -> SettingsArgs {
    SettingsArgs {
        client_registration: Some(mode.into()),
        // The budget has its own test (DCR-07); the others register more than it allows.
        client_registration_max_per_ip: Some(1000),
        ..env.args()
    }
}

/// A server on `backend` with registration `mode`.
async fn server(backend: Backend, mode: &str) -> (TestEnv, TestApp) {
    let env = TestEnv::new(backend).await;
    let app = env.spawn_with(with_mode(&env, mode)).await;
    (env, app)
}

/// What an MCP client sends (the TypeScript SDK's `registerClient`): a POST of JSON metadata
/// with no `Authorization` header; an unknown member rides along.
fn native_app() -> Value {
    json!({
        "client_name": "Agent CLI",
        "redirect_uris": [LOOPBACK],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
        "scope": "openid profile offline_access",
        "software_version": "1.2.3",
    })
}

/// `POST /register` of `body` with an optional bearer token: status, headers and JSON body.
async fn register(
    app: &TestApp,
    token: Option<&str>,
    body: &Value,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let mut request = app.client.post(app.url("/register")).json(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.sent().await;
    let (status, headers) = (response.status(), response.headers().clone());
    let text = response.text().await.unwrap();
    (
        status,
        headers,
        serde_json::from_str(&text).unwrap_or(Value::Null),
    )
}

/// Asserts a refused registration: 400 with `code` in the RFC 7591 §3.2.2 JSON shape.
fn assert_metadata_error(
    (status, _, body): &(StatusCode, reqwest::header::HeaderMap, Value),
    code: &str,
    what: &str,
) {
    assert_eq!(*status, StatusCode::BAD_REQUEST, "{what}: {body}");
    assert_eq!(body["error"], code, "{what}: {body}");
    assert!(body["error_description"].is_string(), "{what}: {body}");
    assert!(body.get("client_id").is_none(), "{what}");
}

/// Asserts an RFC 6750 refusal of a token: 401, `invalid_token` in the challenge and the body.
fn assert_invalid_token(
    status: StatusCode,
    headers: &reqwest::header::HeaderMap,
    body: &Value,
    what: &str,
) {
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}: {body}");
    let challenge = headers["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.starts_with("Bearer") && challenge.contains("invalid_token"),
        "{what}: {challenge}"
    );
    assert_eq!(body["error"], "invalid_token", "{what}");
}

/// Issues an initial access token through the admin API: the answer.
async fn initial_token(app: &TestApp, admin: &str, body: Value) -> Value {
    let response = app
        .send(
            reqwest::Method::POST,
            "/admin/initial-access-tokens",
            admin,
            Some(body),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    json_of(response).await
}

/// Runs the code flow with PKCE for public client `client_id` as `alice` (consent approved):
/// the token response.
async fn code_flow(app: &TestApp, client_id: &str, scope: &str) -> (String, Value) {
    let verifier = "v".repeat(50);
    let url = app.url(&format!(
        "/authorize?response_type=code&client_id={client_id}&redirect_uri={}&scope={}&state=s1\
         &code_challenge={}&code_challenge_method=S256",
        enc(LOOPBACK),
        enc(scope),
        pkce(&verifier)
    ));
    let browser = browser();
    let page = browser.get(&url).sent().await;
    assert_eq!(page.status(), StatusCode::OK);
    let login_html = page.text().await.unwrap();
    let consent = post_login_form(&browser, &app.address, &login_html, "alice").await;
    assert_eq!(consent.status(), StatusCode::OK, "the consent page");
    let consent_html = consent.text().await.unwrap();
    let redirect = answer_consent(
        &browser,
        app.url("/authorize/consent"),
        &consent_html,
        "approve",
    )
    .await;
    let code = code_of(&redirect);
    let tokens = app
        .post_form(
            "/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", LOOPBACK),
                ("code_verifier", &verifier),
                ("client_id", client_id),
            ],
        )
        .await;
    assert_eq!(tokens.status(), StatusCode::OK);
    (login_html, json_of(tokens).await)
}

// DCR-01: open registration of a public native client (what the MCP SDK sends), then the code
// flow with PKCE with it; the answer is RFC 7591 §3.2.1's, unknown metadata is ignored, the
// login page shows the (unverified) name, administrators see the client and where it came from.
async fn open_registration_then_a_code_flow(backend: Backend) {
    let (_env, app) = server(backend, "open").await;
    app.create_user("alice").await;
    let (status, headers, body) = register(&app, None, &native_app()).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    assert_eq!(headers["cache-control"], "no-store");
    let client_id = body["client_id"].as_str().unwrap().to_owned();
    assert!(client_id.len() >= 32, "an unguessable id");
    assert!(
        body.get("client_secret").is_none(),
        "a public client has no secret"
    );
    assert!(body.get("client_secret_expires_at").is_none());
    assert!(body["client_id_issued_at"].as_i64().unwrap() > 1_700_000_000);
    assert_eq!(body["redirect_uris"], json!([LOOPBACK]));
    assert_eq!(
        body["grant_types"],
        json!(["authorization_code", "refresh_token"])
    );
    assert_eq!(body["response_types"], json!(["code"]));
    assert_eq!(body["token_endpoint_auth_method"], "none");
    assert_eq!(body["scope"], "openid profile offline_access");
    assert_eq!(body["client_name"], "Agent CLI");
    assert!(
        body.get("software_version").is_none(),
        "unknown metadata is ignored"
    );
    assert_eq!(
        body["registration_client_uri"],
        format!("{}/register/{client_id}", app.issuer)
    );
    assert!(body["registration_access_token"].as_str().unwrap().len() >= 43);

    let (login_html, tokens) = code_flow(&app, &client_id, "openid profile offline_access").await;
    assert!(login_html.contains("Agent CLI"), "the name is shown");
    assert!(
        login_html.contains("not verified"),
        "and marked as the client's own claim"
    );
    assert!(tokens["access_token"].is_string() && tokens["id_token"].is_string());
    assert!(tokens["refresh_token"].is_string());
    // A scope it did not register is not granted.
    let verifier = "w".repeat(50);
    let refused = app
        .get(&format!(
            "/authorize?response_type=code&client_id={client_id}&redirect_uri={}&scope=openid%20email&code_challenge={}&code_challenge_method=S256",
            enc(LOOPBACK),
            pkce(&verifier)
        ))
        .await;
    assert_eq!(refused.status(), StatusCode::SEE_OTHER);
    assert!(
        refused.headers()["location"]
            .to_str()
            .unwrap()
            .contains("error=invalid_scope")
    );

    let admin = app.admin_token().await;
    let clients = json_of(app.get_bearer("/admin/clients", &admin).await).await;
    let listed = clients["clients"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["client_id"] == client_id.as_str())
        .expect("listed")
        .clone();
    assert_eq!(listed["registration"], "open");
    assert_eq!(listed["client_type"], "public");
    assert_eq!(listed["pkce"], "required", "public clients always use PKCE");
    assert!(
        listed["last_used_at"].is_string(),
        "its token use was recorded"
    );
    let audit = json_of(app.get_bearer("/admin/audit", &admin).await).await;
    assert!(
        audit.to_string().contains("client_registered"),
        "registrations are audited"
    );
}

// DCR-02: registration is off by default: no registration_endpoint in discovery, 404 at
// /register; when on, both well-known documents advertise it.
async fn discovery_advertises_registration_only_when_enabled(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let off = env.spawn().await;
    for path in [
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
    ] {
        let document = json_of(off.get(path).await).await;
        assert!(document.get("registration_endpoint").is_none(), "{path}");
    }
    let (status, _, body) = register(&off, None, &native_app()).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, _, _) = register(&off, Some("anything"), &native_app()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    off.stop().await;
    for mode in ["token", "open"] {
        let on = env.spawn_with(with_mode(&env, mode)).await;
        for path in [
            "/.well-known/openid-configuration",
            "/.well-known/oauth-authorization-server",
        ] {
            let document = json_of(on.get(path).await).await;
            assert_eq!(
                document["registration_endpoint"],
                format!("{}/register", on.issuer),
                "{mode} {path}"
            );
        }
        on.stop().await;
    }
}

// DCR-03: with initial access tokens: an administrator issues one (admin API), a confidential
// client registers with it (a secret that never expires; the OIDF suite's private_key_jwt
// client with a kid-less inline key, contacts and a redirect URI with a query); a missing,
// unknown, expired, used-up or revoked token is refused with RFC 6750's 401; a refused
// registration (a pairwise subject type among them) spends no use; open registration is off in
// this mode; confidential clients default to the pkce_or_nonce policy.
async fn initial_access_tokens_gate_registration(backend: Backend) {
    let (_env, app) = server(backend, "token").await;
    let admin = app.admin_token().await;
    let issued = initial_token(
        &app,
        &admin,
        json!({"description": "partner onboarding", "expires_in": 600, "max_uses": 2}),
    )
    .await;
    let token = issued["initial_access_token"].as_str().unwrap().to_owned();
    assert_eq!(issued["state"], "active");
    assert_eq!(issued["max_uses"], 2);

    // No token: open registration is off here.
    let (status, headers, _) = register(&app, None, &native_app()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        headers["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    let (status, headers, body) = register(&app, Some("not-a-token"), &native_app()).await;
    assert_invalid_token(status, &headers, &body, "unknown token");

    // A refused registration (a fragment, AUTHZ-02) spends no use.
    let mut fragment =
        json!({"redirect_uris": ["https://rp.example.com/cb#frag"], "client_name": "x"});
    assert_metadata_error(
        &register(&app, Some(&token), &fragment).await,
        "invalid_redirect_uri",
        "fragment",
    );
    fragment["redirect_uris"] = json!(["javascript:alert(1)"]);
    assert_metadata_error(
        &register(&app, Some(&token), &fragment).await,
        "invalid_redirect_uri",
        "javascript",
    );
    // Pairwise subject identifiers are not offered: refused, not silently public.
    let pairwise = json!({
        "redirect_uris": ["https://rp.example.com/cb"], "subject_type": "pairwise",
        "sector_identifier_uri": "https://rp.example.com/redirect_uris.json",
    });
    assert_metadata_error(
        &register(&app, Some(&token), &pairwise).await,
        "invalid_client_metadata",
        "pairwise",
    );

    // A confidential web app: a secret, shown once, never expiring.
    let (status, _, web) = register(
        &app,
        Some(&token),
        &json!({
            "client_name": "Partner", "redirect_uris": ["https://rp.example.com/cb?tenant=1"],
            "contacts": ["ops@rp.example.com"], "policy_uri": "https://rp.example.com/privacy",
        }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{web}");
    assert_eq!(web["token_endpoint_auth_method"], "client_secret_basic");
    assert!(web["client_secret"].as_str().unwrap().len() >= 43);
    assert_eq!(web["client_secret_expires_at"], 0);
    assert_eq!(web["contacts"], json!(["ops@rp.example.com"]));
    assert_eq!(
        web["redirect_uris"],
        json!(["https://rp.example.com/cb?tenant=1"])
    );

    // The OIDF dynamic plan's client: private_key_jwt with one kid-less RS256 key.
    let key = TestKey::new(portcullis::keys::SigningAlg::Rs256);
    let mut jwk = key.jwk();
    jwk.as_object_mut().unwrap().remove("kid");
    let (status, _, oidf) = register(
        &app,
        Some(&token),
        &json!({
            "client_name": "conformance", "grant_types": ["authorization_code"],
            "response_types": ["code"], "redirect_uris": ["https://suite.example/test/callback?dummy1=lorem"],
            "contacts": ["certification@oidf.org"], "token_endpoint_auth_method": "private_key_jwt",
            "jwks": {"keys": [jwk]},
        }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{oidf}");
    assert!(oidf.get("client_secret").is_none());
    assert_eq!(oidf["jwks"]["keys"].as_array().unwrap().len(), 1);

    // Confidential clients registered with an initial access token default to pkce_or_nonce
    // (RFC 9700 §2.1.1): the plan's OpenID request with a nonce and no PKCE reaches the login
    // page; without the nonce, PKCE is still required.
    let oidf_id = oidf["client_id"].as_str().unwrap().to_owned();
    let without_pkce = |nonce: &str| {
        let (app, oidf_id) = (&app, &oidf_id);
        let nonce = nonce.to_owned();
        async move {
            app.get(&format!(
                "/authorize?response_type=code&client_id={oidf_id}&redirect_uri={}&scope=openid&state=s{nonce}",
                enc("https://suite.example/test/callback?dummy1=lorem"),
            ))
            .await
        }
    };
    assert_eq!(
        without_pkce("&nonce=n-1").await.status(),
        StatusCode::OK,
        "a nonce stands in for PKCE"
    );
    let refused = without_pkce("").await;
    assert_eq!(refused.status(), StatusCode::SEE_OTHER);
    assert!(
        refused.headers()["location"]
            .to_str()
            .unwrap()
            .contains("error=invalid_request"),
        "no nonce and no PKCE"
    );
    let admin_listing = json_of(app.get_bearer("/admin/clients", &admin).await).await;
    let policy_of = |id: &str| {
        admin_listing["clients"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["client_id"] == id)
            .map(|c| c["pkce"].clone())
            .unwrap()
    };
    assert_eq!(policy_of(&oidf_id), "pkce_or_nonce");
    assert_eq!(
        policy_of(web["client_id"].as_str().unwrap()),
        "pkce_or_nonce"
    );

    // Keys fetched from the client (jwks_uri, checked as the CLI checks it): refused when not
    // https, registered otherwise. Two refusals spend no use.
    let by_uri = |uri: &str| {
        json!({
            "redirect_uris": ["https://rp.example.com/cb"], "token_endpoint_auth_method": "private_key_jwt",
            "jwks_uri": uri,
        })
    };
    let extra = initial_token(&app, &admin, json!({"max_uses": 1})).await;
    let extra_token = extra["initial_access_token"].as_str().unwrap().to_owned();
    assert_metadata_error(
        &register(
            &app,
            Some(&extra_token),
            &by_uri("http://rp.example.com/jwks.json"),
        )
        .await,
        "invalid_client_metadata",
        "an http jwks_uri",
    );
    let mut both = by_uri("https://rp.example.com/jwks.json");
    both["jwks"] = json!({"keys": [key.jwk()]});
    assert_metadata_error(
        &register(&app, Some(&extra_token), &both).await,
        "invalid_client_metadata",
        "jwks and jwks_uri",
    );
    let (status, _, keyed) = register(
        &app,
        Some(&extra_token),
        &by_uri("https://rp.example.com/jwks.json"),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{keyed}");
    assert_eq!(keyed["jwks_uri"], "https://rp.example.com/jwks.json");
    assert!(keyed.get("client_secret").is_none());

    // Used up (two uses).
    let (status, headers, body) = register(&app, Some(&token), &native_app()).await;
    assert_invalid_token(status, &headers, &body, "used up");
    let tokens = json_of(app.get_bearer("/admin/initial-access-tokens", &admin).await).await;
    let listed = tokens["initial_access_tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == issued["id"])
        .unwrap();
    assert_eq!(listed["uses"], 2);
    assert_eq!(listed["state"], "used_up");
    assert!(
        listed.get("initial_access_token").is_none(),
        "never shown again"
    );
    assert!(!tokens.to_string().contains(&token));

    // Expired.
    let short = initial_token(&app, &admin, json!({"expires_in": 60})).await;
    let short_token = short["initial_access_token"].as_str().unwrap().to_owned();
    app.advance(Duration::from_secs(61));
    let (status, headers, body) = register(&app, Some(&short_token), &native_app()).await;
    assert_invalid_token(status, &headers, &body, "expired");

    // Revoked.
    let revocable = initial_token(&app, &admin, json!({})).await;
    let revocable_token = revocable["initial_access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let id = revocable["id"].as_str().unwrap();
    let revoked = app
        .delete_bearer(&format!("/admin/initial-access-tokens/{id}"), &admin)
        .await;
    assert_eq!(revoked.status(), StatusCode::OK);
    assert_eq!(json_of(revoked).await["state"], "revoked");
    let (status, headers, body) = register(&app, Some(&revocable_token), &native_app()).await;
    assert_invalid_token(status, &headers, &body, "revoked");
    let missing = app
        .delete_bearer("/admin/initial-access-tokens/no-such-id", &admin)
        .await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    // Only administrators issue them.
    let user = app.user_token("bob", &[]).await;
    let refused = app
        .send(
            reqwest::Method::POST,
            "/admin/initial-access-tokens",
            &user,
            Some(json!({})),
        )
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);

    let audit = json_of(app.get_bearer("/admin/audit", &admin).await)
        .await
        .to_string();
    assert!(
        audit.contains("initial_access_token_issued")
            && audit.contains("initial_access_token_revoked")
    );
    assert!(!audit.contains(&token), "no token in the audit trail");
}

// DCR-04: the open policy: public clients only; loopback http and private-use redirect URIs
// (https only when allowed); only the allowed scopes; jwks_uri and software statements refused;
// the same redirect-URI rules as the CLI's (fragments, non-loopback http, javascript:).
async fn open_policy_refusals(backend: Backend) {
    let (env, app) = server(backend, "open").await;
    let with = |changes: Value| {
        let mut body = native_app();
        for (k, v) in changes.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };
    for (changes, code, what) in [
        (
            json!({"token_endpoint_auth_method": "client_secret_basic"}),
            "invalid_client_metadata",
            "confidential",
        ),
        (
            json!({"token_endpoint_auth_method": "private_key_jwt"}),
            "invalid_client_metadata",
            "key client",
        ),
        (
            json!({"grant_types": ["client_credentials"], "response_types": []}),
            "invalid_client_metadata",
            "client_credentials",
        ),
        (
            json!({"redirect_uris": ["https://app.example.com/cb"]}),
            "invalid_redirect_uri",
            "https not allowed",
        ),
        (
            json!({"redirect_uris": ["http://app.example.com/cb"]}),
            "invalid_redirect_uri",
            "non-loopback http",
        ),
        (
            json!({"redirect_uris": ["http://127.0.0.1:9/cb#x"]}),
            "invalid_redirect_uri",
            "fragment",
        ),
        (
            json!({"redirect_uris": ["javascript:alert(1)"]}),
            "invalid_redirect_uri",
            "javascript",
        ),
        (json!({"redirect_uris": []}), "invalid_redirect_uri", "none"),
        (
            json!({"scope": "openid address"}),
            "invalid_client_metadata",
            "scope outside the policy",
        ),
        (
            json!({"scope": "orders:read"}),
            "invalid_client_metadata",
            "API scope outside the policy",
        ),
        (
            json!({"response_types": ["token"]}),
            "invalid_client_metadata",
            "implicit",
        ),
        (
            json!({"jwks_uri": "https://app.example.com/jwks"}),
            "invalid_client_metadata",
            "jwks_uri for a public client",
        ),
        (
            json!({"logo_uri": "javascript:alert(1)"}),
            "invalid_client_metadata",
            "logo_uri",
        ),
        (
            json!({"pkce": "optional"}),
            "invalid_client_metadata",
            "pkce",
        ),
        (
            json!({"software_statement": "eyJhbGciOiJub25lIn0.e30."}),
            "unapproved_software_statement",
            "software statement",
        ),
    ] {
        assert_metadata_error(&register(&app, None, &with(changes)).await, code, what);
    }
    // A private-use scheme is a native app's.
    let (status, _, body) = register(
        &app,
        None,
        &with(json!({"redirect_uris": ["com.example.agent:/cb"]})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // No scope: the policy's scopes.
    let mut unscoped = native_app();
    unscoped.as_object_mut().unwrap().remove("scope");
    unscoped
        .as_object_mut()
        .unwrap()
        .remove("token_endpoint_auth_method");
    let (status, _, body) = register(&app, None, &unscoped).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["scope"], "openid profile email offline_access");
    assert_eq!(
        body["token_endpoint_auth_method"], "none",
        "omitted means none here"
    );
    app.stop().await;

    // A deployment that allows https redirect URIs and one API's scope.
    let app = env
        .spawn_with(SettingsArgs {
            client_registration_open_https: Some(true),
            client_registration_open_scopes: Some("openid,orders:read".into()),
            ..with_mode(&env, "open")
        })
        .await;
    app.create_api(
        "https://orders.example.com",
        &[("orders:read", "Read orders")],
    )
    .await;
    let (status, _, body) = register(
        &app,
        None,
        &with(json!({"redirect_uris": ["https://app.example.com/cb"], "scope": "openid orders:read", "grant_types": ["authorization_code"]})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_metadata_error(
        &register(&app, None, &with(json!({"scope": "profile"}))).await,
        "invalid_client_metadata",
        "profile not allowed here",
    );
}

// DCR-05: RFC 7592: read, update and delete with the registration access token; every read and
// update replaces it (the old one stops working); a wrong token, another client's token or an
// administrator's client gets 401 invalid_token; an update must name the client; a deleted
// client is gone from the authorization endpoint.
async fn management_with_the_registration_access_token(backend: Backend) {
    let (_env, app) = server(backend, "open").await;
    let (_, _, first) = register(&app, None, &native_app()).await;
    let (_, _, other) = register(&app, None, &native_app()).await;
    let uri = first["registration_client_uri"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = uri.strip_prefix(&app.issuer).unwrap().to_owned();
    let client_id = first["client_id"].as_str().unwrap().to_owned();
    let token0 = first["registration_access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let call = |method: reqwest::Method, path: String, token: String, body: Option<Value>| {
        let app = &app;
        async move {
            let response = app.send(method, &path, &token, body).await;
            let (status, headers) = (response.status(), response.headers().clone());
            let text = response.text().await.unwrap();
            (
                status,
                headers,
                serde_json::from_str::<Value>(&text).unwrap_or(Value::Null),
            )
        }
    };

    // Wrong tokens.
    for (token, what) in [
        ("wrong".to_owned(), "a wrong token"),
        (
            other["registration_access_token"]
                .as_str()
                .unwrap()
                .to_owned(),
            "another client's token",
        ),
    ] {
        let (status, headers, body) = call(reqwest::Method::GET, path.clone(), token, None).await;
        assert_invalid_token(status, &headers, &body, what);
    }
    let status = app.client.get(&uri).sent().await.status();
    assert_eq!(status, StatusCode::UNAUTHORIZED, "no token");

    // Read: the metadata and a new token; the old one is spent.
    let (status, headers, read) =
        call(reqwest::Method::GET, path.clone(), token0.clone(), None).await;
    assert_eq!(status, StatusCode::OK, "{read}");
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(read["client_id"], client_id.as_str());
    assert_eq!(read["client_name"], "Agent CLI");
    assert_eq!(read["registration_client_uri"], uri.as_str());
    let token1 = read["registration_access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(token1, token0);
    let (status, headers, body) =
        call(reqwest::Method::GET, path.clone(), token0.clone(), None).await;
    assert_invalid_token(status, &headers, &body, "a replaced token");

    // Update: the body must name the client; it replaces the metadata.
    let mut update = native_app();
    update["client_name"] = json!("Agent CLI 2");
    update["redirect_uris"] = json!([LOOPBACK, "http://[::1]/callback"]);
    let (status, _, body) = call(
        reqwest::Method::PUT,
        path.clone(),
        token1.clone(),
        Some(update.clone()),
    )
    .await;
    assert_metadata_error(
        &(status, reqwest::header::HeaderMap::new(), body),
        "invalid_client_metadata",
        "no client_id",
    );
    update["client_id"] = json!(other["client_id"]);
    let (status, _, body) = call(
        reqwest::Method::PUT,
        path.clone(),
        token1.clone(),
        Some(update.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    update["client_id"] = json!(client_id);
    update["token_endpoint_auth_method"] = json!("client_secret_basic");
    let (status, _, body) = call(
        reqwest::Method::PUT,
        path.clone(),
        token1.clone(),
        Some(update.clone()),
    )
    .await;
    assert_eq!(
        body["error"], "invalid_client_metadata",
        "the open policy still applies: {status}"
    );
    update["token_endpoint_auth_method"] = json!("none");
    let (status, _, updated) = call(
        reqwest::Method::PUT,
        path.clone(),
        token1.clone(),
        Some(update),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["client_name"], "Agent CLI 2");
    assert_eq!(
        updated["redirect_uris"],
        json!([LOOPBACK, "http://[::1]/callback"])
    );
    let token2 = updated["registration_access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(token2, token1);
    let authorize = |client: String| {
        let app = &app;
        async move {
            app.get(&format!(
                "/authorize?response_type=code&client_id={client}&redirect_uri={}&scope=openid&code_challenge={}&code_challenge_method=S256",
                enc("http://[::1]/callback"),
                pkce(&"x".repeat(43))
            ))
            .await
            .status()
        }
    };
    assert_eq!(
        authorize(client_id.clone()).await,
        StatusCode::OK,
        "the new redirect URI works at once"
    );

    // An administrator's client is not managed here.
    app.create_client(ClientSpec::new("static").redirect_uri(LOOPBACK))
        .await;
    let (status, headers, body) = call(
        reqwest::Method::GET,
        "/register/static".into(),
        token2.clone(),
        None,
    )
    .await;
    assert_invalid_token(status, &headers, &body, "an administrator's client");

    // A wrong token deletes nothing.
    for method in [reqwest::Method::DELETE, reqwest::Method::PUT] {
        let (status, headers, body) = call(
            method.clone(),
            path.clone(),
            token1.clone(),
            Some(native_app()),
        )
        .await;
        assert_invalid_token(
            status,
            &headers,
            &body,
            &format!("{method} with a replaced token"),
        );
    }
    assert_eq!(
        authorize(client_id.clone()).await,
        StatusCode::OK,
        "still there"
    );

    // Delete: 204, then gone.
    let (status, _, _) = call(reqwest::Method::DELETE, path.clone(), token2.clone(), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, headers, body) = call(reqwest::Method::GET, path.clone(), token2, None).await;
    assert_invalid_token(status, &headers, &body, "a deleted client");
    assert_eq!(
        authorize(client_id).await,
        StatusCode::BAD_REQUEST,
        "an unknown client"
    );
    // HEAD would spend the token: it is not a method here.
    let head = app.client.head(&uri).sent().await;
    assert_eq!(head.status(), StatusCode::METHOD_NOT_ALLOWED);
}

// DCR-06: malformed, mistyped, wrongly labelled and oversized bodies get 400
// invalid_client_metadata in JSON; nothing is registered.
async fn malformed_bodies_are_refused(backend: Backend) {
    let (env, app) = server(backend, "open").await;
    for (content_type, body, what) in [
        ("application/json", "{not json".to_owned(), "not JSON"),
        ("application/json", "[1, 2]".to_owned(), "not an object"),
        (
            "application/json",
            r#"{"redirect_uris": "http://127.0.0.1/cb"}"#.to_owned(),
            "a string for a list",
        ),
        (
            "application/json",
            r#"{"redirect_uris": [1]}"#.to_owned(),
            "a number for a URI",
        ),
        (
            "application/json",
            r#"{"client_name": "a", "client_name": "b", "redirect_uris": ["http://127.0.0.1/cb"]}"#
                .to_owned(),
            "a duplicated member",
        ),
        ("application/json", String::new(), "empty"),
        (
            "application/x-www-form-urlencoded",
            "redirect_uris=http://127.0.0.1/cb".to_owned(),
            "a form",
        ),
        (
            "application/json",
            format!(r#"{{"client_name": "{}"}}"#, "a".repeat(20_000)),
            "oversized",
        ),
        (
            "application/json",
            format!(
                r#"{{"redirect_uris": ["http://127.0.0.1/cb"], "client_name": "{}"}}"#,
                "a".repeat(300)
            ),
            "a long name",
        ),
    ] {
        let response = app.post_raw("/register", content_type, body).await;
        let status = response.status();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        assert_eq!(status, StatusCode::BAD_REQUEST, "{what}: {answer}");
        assert_eq!(
            answer["error"], "invalid_client_metadata",
            "{what}: {answer}"
        );
        let description = answer["error_description"].as_str().unwrap();
        assert!(
            description.len() <= 1200 && !description.contains('\n'),
            "{what}"
        );
    }
    assert_eq!(env.count_rows("clients").await, 0);
}

// DCR-07: open registrations are counted per client network: over the budget, 429 with
// Retry-After; registrations with an initial access token are not counted.
async fn open_registration_is_rate_limited(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let app = env
        .spawn_with(SettingsArgs {
            client_registration_max_per_ip: Some(2),
            ..with_mode(&env, "open")
        })
        .await;
    for _ in 0..2 {
        assert_eq!(
            register(&app, None, &native_app()).await.0,
            StatusCode::CREATED
        );
    }
    let (status, headers, body) = register(&app, None, &native_app()).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert!(
        headers["retry-after"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 1
    );
    assert_eq!(body["error"], "too_many_requests");
    let admin = app.admin_token().await;
    let issued = initial_token(&app, &admin, json!({})).await;
    let token = issued["initial_access_token"].as_str().unwrap();
    assert_eq!(
        register(&app, Some(token), &native_app()).await.0,
        StatusCode::CREATED
    );
    // The window passes.
    app.advance(Duration::from_secs(16 * 60));
    assert_eq!(
        register(&app, None, &native_app()).await.0,
        StatusCode::CREATED
    );
}

// DCR-08: the janitor deletes dynamically registered clients that got no token for the
// configured time — and only those: a dynamic client in use and an administrator's unused
// client stay; the deletion is audited and the registry forgets the client at once.
async fn unused_dynamic_clients_expire(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let app = env
        .spawn_with(SettingsArgs {
            client_registration_unused_ttl: Some("1d".into()),
            ..with_mode(&env, "token")
        })
        .await;
    let admin = app.admin_token().await;
    let issued = initial_token(&app, &admin, json!({})).await;
    let token = issued["initial_access_token"].as_str().unwrap().to_owned();
    let machine =
        json!({"grant_types": ["client_credentials"], "response_types": [], "client_name": "job"});
    let (_, _, unused) = register(&app, Some(&token), &machine).await;
    let (_, _, used) = register(&app, Some(&token), &machine).await;
    app.create_client(ClientSpec::new("static-unused")).await;
    let get_token = |body: &Value| {
        let (id, secret) = (
            body["client_id"].as_str().unwrap().to_owned(),
            body["client_secret"].as_str().unwrap().to_owned(),
        );
        let app = &app;
        async move {
            app.client
                .post(app.url("/token"))
                .basic_auth(id, Some(secret))
                .form(&[("grant_type", "client_credentials")])
                .sent()
                .await
                .status()
        }
    };
    assert_eq!(get_token(&unused).await, StatusCode::OK, "it worked once…");
    app.advance(Duration::from_secs(2 * 86_400));
    assert_eq!(
        get_token(&used).await,
        StatusCode::OK,
        "…this one is in use now"
    );
    portcullis::startup::purge_expired(&app.state).await;
    assert_eq!(
        get_token(&unused).await,
        StatusCode::UNAUTHORIZED,
        "expired and deleted"
    );
    assert_eq!(get_token(&used).await, StatusCode::OK);
    // The administrator's sign-in of two days ago has expired.
    let admin = app.signed_in("root").await.0;
    let clients = json_of(app.get_bearer("/admin/clients", &admin).await)
        .await
        .to_string();
    assert!(
        clients.contains("static-unused"),
        "an administrator's client never expires"
    );
    assert!(!clients.contains(unused["client_id"].as_str().unwrap()));
    let audit = json_of(app.get_bearer("/admin/audit", &admin).await)
        .await
        .to_string();
    assert!(audit.contains("client_expired"));
}

// DCR-09: a real client library registers: openidconnect's ClientRegistrationRequest with an
// initial access token reads the 201 answer (RFC 7591 §3.2.1) into its types.
async fn a_client_library_registers(backend: Backend) {
    use openidconnect::core::{CoreClientRegistrationRequest, CoreProviderMetadata};
    use openidconnect::{AccessToken, ClientName, IssuerUrl, RedirectUrl};
    let (_env, app) = server(backend, "token").await;
    let admin = app.admin_token().await;
    let issued = initial_token(&app, &admin, json!({"max_uses": 1})).await;
    let http = rp_http(
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
    );
    let metadata =
        CoreProviderMetadata::discover_async(IssuerUrl::new(app.issuer.clone()).unwrap(), &http)
            .await
            .expect("discovery");
    let endpoint = metadata
        .registration_endpoint()
        .expect("advertised")
        .clone();
    let response = CoreClientRegistrationRequest::new(
        vec![RedirectUrl::new("https://rp.example.com/cb".into()).unwrap()],
        Default::default(),
    )
    .set_client_name(Some(
        vec![(None, ClientName::new("Library RP".into()))]
            .into_iter()
            .collect(),
    ))
    .set_initial_access_token(Some(AccessToken::new(
        issued["initial_access_token"].as_str().unwrap().into(),
    )))
    .register_async(&endpoint, &http)
    .await
    .expect("registered");
    assert!(!response.client_id().as_str().is_empty());
    assert!(response.client_secret().is_some());
    assert!(response.registration_access_token().is_some());
    assert!(response.registration_client_uri().is_some());
}

// DCR-03 through the CLI: `clients initial-token create|list|revoke` (audited as `cli`), and
// the token it prints registers a client once.
async fn the_cli_issues_lists_and_revokes_initial_access_tokens(backend: Backend) {
    use crate::helpers::stdout_json;
    let env = TestEnv::new(backend).await;
    let issued = stdout_json(
        &env.cli(&[
            "clients",
            "initial-token",
            "create",
            "--description",
            "ci",
            "--expires-in",
            "1h",
            "--max-uses",
            "1",
        ])
        .await,
    );
    let token = issued["initial_access_token"].as_str().unwrap().to_owned();
    assert_eq!(issued["created_by"], "cli");
    assert_eq!(issued["state"], "active");
    let app = env.spawn_with(with_mode(&env, "token")).await;
    assert_eq!(
        register(&app, Some(&token), &native_app()).await.0,
        StatusCode::CREATED
    );
    assert_eq!(
        register(&app, Some(&token), &native_app()).await.0,
        StatusCode::UNAUTHORIZED
    );
    let listed = stdout_json(&env.cli(&["clients", "initial-token", "list"]).await);
    assert_eq!(listed[0]["state"], "used_up");
    assert!(!listed.to_string().contains(&token));
    let second = stdout_json(&env.cli(&["clients", "initial-token", "create"]).await);
    let id = second["id"].as_str().unwrap();
    let revoked = stdout_json(&env.cli(&["clients", "initial-token", "revoke", id]).await);
    assert_eq!(revoked["state"], "revoked");
    let second_token = second["initial_access_token"].as_str().unwrap();
    assert_eq!(
        register(&app, Some(second_token), &native_app()).await.0,
        StatusCode::UNAUTHORIZED
    );
}

on_both_backends!(
    the_cli_issues_lists_and_revokes_initial_access_tokens,
    open_registration_then_a_code_flow,
    discovery_advertises_registration_only_when_enabled,
    initial_access_tokens_gate_registration,
    open_policy_refusals,
    management_with_the_registration_access_token,
    malformed_bodies_are_refused,
    open_registration_is_rate_limited,
    unused_dynamic_clients_expire,
    a_client_library_registers,
);
