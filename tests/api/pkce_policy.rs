//! The per-client PKCE policy (issue 15, C1): `required`, `pkce_or_nonce`, `optional`, set at
//! registration (fixtures, admin API, CLI), applied at the authorization endpoint (PKCE-02), and
//! downgrade protection at the token endpoint both ways (PKCE-01, RFC 9700 §2.1.1, RFC 7636 §4.6).

use portcullis::oidc::clients::PkcePolicy;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{
    Backend, ClientSpec, REDIRECT, Sent, TestApp, TestEnv, browser, client_secret, enc, hidden,
    json_of, location_params, param, pkce, sign_in, stdout_json,
};
use crate::on_both_backends;

/// A server with user `alice` and three confidential first-party clients redirecting to
/// [`REDIRECT`]: `strict` (required), `either` (pkce_or_nonce) and `legacy` (optional). Their
/// secrets, by client id.
async fn server(backend: Backend) -> (TestEnv, TestApp, Vec<(&'static str, String)>) {
    let env = TestEnv::new(backend).await;
    let app = env.spawn().await;
    app.create_user("alice").await;
    let mut secrets = Vec::new();
    for (id, policy) in [
        ("strict", PkcePolicy::Required),
        ("either", PkcePolicy::PkceOrNonce),
        ("legacy", PkcePolicy::Optional),
    ] {
        let spec = ClientSpec::new(id)
            .redirect_uri(REDIRECT)
            .first_party()
            .pkce(policy);
        secrets.push((id, client_secret(&app.create_client(spec).await)));
    }
    (env, app, secrets)
}

fn secret<'a>(secrets: &'a [(&str, String)], id: &str) -> &'a str {
    &secrets.iter().find(|(i, _)| *i == id).unwrap().1
}

/// `/authorize` for `client` with `extra` parameters (scope included).
fn authorize_url(app: &TestApp, client: &str, extra: &str) -> String {
    app.url(&format!(
        "/authorize?response_type=code&client_id={client}&redirect_uri={}&state=st{extra}",
        enc(REDIRECT)
    ))
}

const VERIFIER: &str = "pkce-policy-verifier-0123456789-abcdefghijklmnop";

fn challenge_params() -> String {
    format!(
        "&code_challenge={}&code_challenge_method=S256",
        pkce(VERIFIER)
    )
}

/// Whether the policy let the request through: the hosted login page (200), or its error
/// redirected (`invalid_request` with the description and the state).
async fn admitted(app: &TestApp, client: &str, extra: &str) -> Result<(), String> {
    let response = app
        .client
        .get(authorize_url(app, client, extra))
        .sent()
        .await;
    if response.status() == StatusCode::OK {
        return Ok(());
    }
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "{client} {extra}");
    let (location, params) = location_params(&response);
    assert!(location.starts_with(REDIRECT), "{location}");
    assert_eq!(
        param(&params, "error").as_deref(),
        Some("invalid_request"),
        "{location}"
    );
    assert_eq!(param(&params, "state").as_deref(), Some("st"));
    assert_eq!(param(&params, "iss").as_deref(), Some(app.issuer.as_str()));
    Err(param(&params, "error_description").unwrap())
}

// PKCE-02 per policy: who may leave PKCE out, and what a refused request is told.
async fn pkce_02_the_policy_decides_who_may_omit_pkce(backend: Backend) {
    let (_env, app, _) = server(backend).await;
    let with_pkce = challenge_params();
    let cases: [(&str, &str, bool); 12] = [
        // (client, parameters, admitted)
        ("strict", "&scope=openid", false),
        ("strict", "&scope=openid&nonce=n1", false),
        ("strict", &format!("&scope=openid{with_pkce}"), true),
        ("either", "&scope=openid&nonce=n1", true),
        ("either", "&scope=openid", false),
        ("either", "&scope=profile&nonce=n1", false),
        ("either", &format!("&scope=profile{with_pkce}"), true),
        ("legacy", "&scope=openid", true),
        ("legacy", "&scope=profile", true),
        ("legacy", &format!("&scope=openid{with_pkce}"), true),
        // A challenge that is sent is checked whatever the policy; a method alone is refused.
        (
            "legacy",
            &format!(
                "&scope=openid&code_challenge={}&code_challenge_method=plain",
                pkce(VERIFIER)
            ),
            false,
        ),
        ("legacy", "&scope=openid&code_challenge_method=S256", false),
    ];
    for (client, extra, expected) in cases {
        let outcome = admitted(&app, client, extra).await;
        assert_eq!(outcome.is_ok(), expected, "{client} {extra}: {outcome:?}");
        if let Err(description) = outcome {
            // A clear description, in the charset RFC 6749 §4.1.2.1 allows.
            assert!(
                description.contains("PKCE") || description.contains("code_challenge"),
                "{description}"
            );
            assert!(
                description
                    .chars()
                    .all(|c| (' '..='~').contains(&c) && c != '"' && c != '\\')
            );
        }
    }
    let description = admitted(&app, "either", "&scope=openid").await.unwrap_err();
    assert!(description.contains("nonce"), "{description}");
}

/// A code for `client` on `browser` (signing `alice` in when the browser has no session yet).
async fn code_for(app: &TestApp, browser: &reqwest::Client, client: &str, extra: &str) -> String {
    let url = authorize_url(app, client, extra);
    let first = browser.get(&url).sent().await;
    let response = if first.status() == StatusCode::OK {
        let html = first.text().await.unwrap();
        browser
            .post(app.url("/authorize/login"))
            .form(&[
                ("request_id", hidden(&html, "request_id")),
                ("csrf_token", hidden(&html, "csrf_token")),
                ("username", "alice".into()),
                ("password", crate::helpers::PASSWORD.into()),
            ])
            .sent()
            .await
    } else {
        first
    };
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "{client} {extra}");
    let (location, params) = location_params(&response);
    param(&params, "code").unwrap_or_else(|| panic!("a code: {location}"))
}

/// Redeems `code` as `client` (HTTP Basic) with `verifier` if any.
async fn redeem(
    app: &TestApp,
    client: &str,
    secret: &str,
    code: &str,
    verifier: Option<&str>,
) -> (StatusCode, Value) {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
    ];
    if let Some(verifier) = verifier {
        form.push(("code_verifier", verifier));
    }
    let response = app
        .client
        .post(app.url("/token"))
        .basic_auth(client, Some(secret))
        .form(&form)
        .sent()
        .await;
    (response.status(), json_of(response).await)
}

// PKCE-01 downgrade both ways, for codes issued through the hosted login (a pending request
// stored without a challenge) and from an existing session (issued at once).
async fn pkce_01_codes_are_redeemed_only_as_they_were_issued(backend: Backend) {
    let (_env, app, secrets) = server(backend).await;
    let session = browser();
    for client in ["legacy", "either"] {
        let secret = secret(&secrets, client);
        let without = "&scope=openid&nonce=n1";
        let with = format!("&scope=openid&nonce=n1{}", challenge_params());

        // Issued without a challenge: a code_verifier is refused, and the code is spent.
        let code = code_for(&app, &session, client, without).await;
        let (status, body) = redeem(&app, client, secret, &code, Some(VERIFIER)).await;
        assert_eq!(status, 400, "{client}: {body}");
        assert_eq!(body["error"], "invalid_grant", "{client}");
        assert_eq!(
            redeem(&app, client, secret, &code, None).await.1["error"],
            "invalid_grant",
            "{client}: the refused code is spent"
        );
        // Issued without a challenge, redeemed without a verifier: tokens.
        let code = code_for(&app, &session, client, without).await;
        let (status, body) = redeem(&app, client, secret, &code, None).await;
        assert_eq!(status, 200, "{client}: {body}");
        assert!(body["id_token"].is_string() && body["access_token"].is_string());

        // Issued with a challenge: the verifier is required and must match.
        let code = code_for(&app, &session, client, &with).await;
        let (status, body) = redeem(&app, client, secret, &code, None).await;
        assert_eq!(
            (status.as_u16(), &body["error"]),
            (400, &json!("invalid_grant"))
        );
        let code = code_for(&app, &session, client, &with).await;
        let wrong = "w".repeat(43);
        let (_, body) = redeem(&app, client, secret, &code, Some(&wrong)).await;
        assert_eq!(body["error"], "invalid_grant", "{client}");
        let code = code_for(&app, &session, client, &with).await;
        let (status, body) = redeem(&app, client, secret, &code, Some(VERIFIER)).await;
        assert_eq!(status, 200, "{client}: {body}");
    }
    // The very first code above came through the hosted login (a pending request
    // stored without a challenge); the rest from the session. Once more through the login page.
    let code = code_for(&app, &browser(), "legacy", "&scope=openid").await;
    let (_, body) = redeem(
        &app,
        "legacy",
        secret(&secrets, "legacy"),
        &code,
        Some(VERIFIER),
    )
    .await;
    assert_eq!(body["error"], "invalid_grant");
    let code = code_for(&app, &browser(), "legacy", "&scope=openid").await;
    let (status, _) = redeem(&app, "legacy", secret(&secrets, "legacy"), &code, None).await;
    assert_eq!(status, 200);
}

// The policy at registration: admin API and CLI, shown in listings; a public client may only
// have `required`; existing clients (and the default) require PKCE.
async fn pkce_policy_is_set_at_registration(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let app = env.spawn().await;
    let admin = app.admin_token().await;
    let create = |body: Value| {
        let (app, admin) = (&app, &admin);
        async move {
            app.send(reqwest::Method::POST, "/admin/clients", admin, Some(body))
                .await
        }
    };
    let created = create(json!({
        "client_id": "rp", "redirect_uris": [REDIRECT], "pkce": "pkce_or_nonce",
    }))
    .await;
    assert_eq!(created.status(), 201);
    assert_eq!(json_of(created).await["pkce"], "pkce_or_nonce");
    let default =
        json_of(create(json!({"client_id": "plain", "redirect_uris": [REDIRECT]})).await).await;
    assert_eq!(default["pkce"], "required");
    for bad in [
        json!({"client_id": "spa", "public": true, "redirect_uris": [REDIRECT], "pkce": "optional"}),
        json!({"client_id": "spa", "public": true, "redirect_uris": [REDIRECT], "pkce": "pkce_or_nonce"}),
        json!({"client_id": "odd", "redirect_uris": [REDIRECT], "pkce": "sometimes"}),
        json!({"client_id": "odd", "redirect_uris": [REDIRECT], "pkce": true}),
    ] {
        let response = create(bad.clone()).await;
        assert_eq!(response.status(), 400, "{bad}");
        let body = json_of(response).await;
        assert!(body["error"].is_string(), "{bad}: {body}");
    }
    let listed = json_of(app.get_bearer("/admin/clients", &admin).await).await;
    let policies: Vec<(&str, &str)> = listed["clients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["client_id"].as_str().unwrap(),
                c["pkce"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(policies, [("plain", "required"), ("rp", "pkce_or_nonce")]);

    let cli = stdout_json(
        &env.cli(&[
            "clients",
            "create",
            "--client-id",
            "cli-rp",
            "--redirect-uri",
            REDIRECT,
            "--pkce",
            "optional",
            "--first-party",
        ])
        .await,
    );
    assert_eq!(cli["pkce"], "optional");
    let public = env
        .cli(&[
            "clients",
            "create",
            "--client-id",
            "cli-spa",
            "--public",
            "--redirect-uri",
            REDIRECT,
            "--pkce",
            "optional",
        ])
        .await;
    assert!(!public.status.success());
    assert!(
        crate::helpers::stderr_of(&public).contains("pkce=required"),
        "{}",
        crate::helpers::stderr_of(&public)
    );
    let listed = stdout_json(&env.cli(&["clients", "list"]).await);
    let cli_rp = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["client_id"] == "cli-rp")
        .unwrap();
    assert_eq!(cli_rp["pkce"], "optional");

    // The CLI's client is usable without PKCE once the server has loaded it.
    app.reload_clients().await;
    app.create_user("alice").await;
    let url = authorize_url(&app, "cli-rp", "&scope=openid");
    let response = sign_in(&browser(), &app.address, &url, "alice").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
}

on_both_backends!(
    pkce_02_the_policy_decides_who_may_omit_pkce,
    pkce_01_codes_are_redeemed_only_as_they_were_issued,
    pkce_policy_is_set_at_registration,
);
