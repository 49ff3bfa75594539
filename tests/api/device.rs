//! The device authorization grant (RFC 8628, issue 18 item 1), black-box on both backends: the
//! device's requests and every polling answer (`authorization_pending`, `slow_down` with its
//! growing interval, `expired_token`, `access_denied`), single use, another client's code,
//! the user's page behind the hosted login (code normalisation, confirmation, denial, the
//! guessing budget, the second-factor policy), codes hashed at rest, RFC 8707 resources, client
//! authentication like the token endpoint's (a secret, `private_key_jwt`), discovery, the
//! admin API and the janitor. Cases DEVICE-01 to DEVICE-10.

use std::time::Duration;

use portcullis::accounts::factors::SecondFactorPolicy;
use portcullis::keys::SigningAlg;
use portcullis::oidc::clients::GrantType;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{
    Backend, ClientSpec, DEVICE_GRANT, Fixture, Sent, TestApp, answer_device, browser,
    client_secret, decode_claims, follow, hidden, json_of, open_verification, submit_user_code,
    user_decides,
};
use crate::on_both_backends;
use crate::second_factors::{between, totp_at};
use crate::stub::{TestKey, now};

/// The device's interval.
const INTERVAL: Duration = Duration::from_secs(5);

/// A fixture (alice, webapp) with the public device client `tv` (device grant + refresh).
async fn with_tv(backend: Backend) -> Fixture {
    let f = Fixture::new(backend).await;
    f.app
        .create_client(
            ClientSpec::new("tv")
                .public()
                .grant_type(GrantType::DeviceCode)
                .grant_type(GrantType::RefreshToken),
        )
        .await;
    f
}

/// Polls after waiting the interval (the server's clock moves, nobody sleeps).
async fn poll_later(app: &TestApp, client_id: &str, device_code: &str) -> reqwest::Response {
    app.advance(INTERVAL);
    app.device_poll(client_id, device_code).await
}

fn error_of(body: &Value) -> &str {
    body["error"].as_str().unwrap_or_default()
}

// DEVICE-01, DEVICE-02: the whole grant with a public client: the response's shape and codes
// (eight consonants as XXXX-XXXX), pending until the user approves, then tokens once — with a
// refresh token for offline_access and an ID token for openid — and a second redemption
// refused and revoking what the first issued.
async fn a_device_is_signed_in_once(backend: Backend) {
    let f = with_tv(backend).await;
    let app = &f.app;
    let started = app.device_started("tv", "openid offline_access").await;
    let user_code = started["user_code"].as_str().unwrap();
    assert_eq!(user_code.len(), 9, "{started}");
    assert!(
        user_code.chars().enumerate().all(|(i, c)| if i == 4 {
            c == '-'
        } else {
            "BCDFGHJKLMNPQRSTVWXZ".contains(c)
        }),
        "{user_code}"
    );
    assert_eq!(
        started["verification_uri"],
        format!("{}/device", app.issuer)
    );
    assert_eq!(
        started["verification_uri_complete"],
        format!("{}/device?user_code={user_code}", app.issuer)
    );
    assert_eq!(started["expires_in"], 600);
    assert_eq!(started["interval"], 5);
    let device_code = started["device_code"].as_str().unwrap();
    assert!(device_code.len() >= 43, "256 bits");

    let (status, body) = app.device_poll_error("tv", device_code).await;
    assert_eq!((status, error_of(&body)), (400, "authorization_pending"));

    let browser = browser();
    let done = user_decides(app, &browser, &started, "alice", "approve").await;
    assert!(done.contains("Device connected"), "{done}");

    let issued = poll_later(app, "tv", device_code).await;
    assert_eq!(issued.status(), StatusCode::OK);
    assert_eq!(issued.headers()["cache-control"], "no-store");
    let tokens = json_of(issued).await;
    let access = decode_claims(tokens["access_token"].as_str().unwrap());
    assert_eq!(access["sub"], f.user_id.as_str());
    assert_eq!(access["client_id"], "tv");
    let id_token = decode_claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(id_token["aud"], "tv");
    assert_eq!(id_token["sub"], f.user_id.as_str());
    assert!(
        id_token.get("sid").is_none(),
        "the device is in no browser session"
    );
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let refreshed = app
        .post_form(
            "/token",
            &[
                ("grant_type", "refresh_token"),
                ("client_id", "tv"),
                ("refresh_token", refresh),
            ],
        )
        .await;
    assert_eq!(refreshed.status(), StatusCode::OK);
    let refresh = json_of(refreshed).await["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();

    // Single use: the code again is invalid_grant, and what it issued is revoked.
    let again = poll_later(app, "tv", device_code).await;
    assert_eq!(again.status(), StatusCode::BAD_REQUEST);
    assert_eq!(json_of(again).await["error"], "invalid_grant");
    let after = app
        .post_form(
            "/token",
            &[
                ("grant_type", "refresh_token"),
                ("client_id", "tv"),
                ("refresh_token", &refresh),
            ],
        )
        .await;
    assert_eq!(json_of(after).await["error"], "invalid_grant", "revoked");
}

// DEVICE-03: polling sooner than the interval is slow_down, and the interval grows by five
// seconds for that and every later request (RFC 8628 §3.5).
async fn slow_down_adds_five_seconds_for_every_later_request(backend: Backend) {
    let f = with_tv(backend).await;
    let app = &f.app;
    let started = app.device_started("tv", "openid").await;
    let code = started["device_code"].as_str().unwrap();
    let (_, body) = app.device_poll_error("tv", code).await;
    assert_eq!(error_of(&body), "authorization_pending");
    let (status, body) = app.device_poll_error("tv", code).await;
    assert_eq!((status, error_of(&body)), (400, "slow_down"), "{body}");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("10 seconds")
    );
    // Five seconds are no longer enough: the interval is ten now, and another slow_down makes
    // it fifteen.
    app.advance(Duration::from_secs(6));
    let (_, body) = app.device_poll_error("tv", code).await;
    assert_eq!(error_of(&body), "slow_down", "{body}");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("15 seconds")
    );
    app.advance(Duration::from_secs(14));
    let (_, body) = app.device_poll_error("tv", code).await;
    assert_eq!(error_of(&body), "slow_down", "{body}");
    app.advance(Duration::from_secs(20));
    let (_, body) = app.device_poll_error("tv", code).await;
    assert_eq!(error_of(&body), "authorization_pending", "{body}");
}

// DEVICE-04: after ten minutes the device hears expired_token, and the user's page no longer
// knows the code.
async fn an_expired_device_code_is_expired_token(backend: Backend) {
    let f = with_tv(backend).await;
    let app = &f.app;
    let started = app.device_started("tv", "openid").await;
    let code = started["device_code"].as_str().unwrap();
    app.advance(Duration::from_secs(601));
    let (status, body) = app.device_poll_error("tv", code).await;
    assert_eq!((status, error_of(&body)), (400, "expired_token"), "{body}");

    let browser = browser();
    let complete = started["verification_uri_complete"].as_str().unwrap();
    let page = open_verification(app, &browser, complete, "alice").await;
    let html = page.text().await.unwrap();
    let refused =
        submit_user_code(app, &browser, &html, started["user_code"].as_str().unwrap()).await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    assert!(
        refused
            .text()
            .await
            .unwrap()
            .contains("not valid or has expired")
    );
}

// DEVICE-05: the user denies: access_denied, and the denial is final.
async fn a_denied_device_hears_access_denied(backend: Backend) {
    let f = with_tv(backend).await;
    let app = &f.app;
    let started = app.device_started("tv", "openid profile").await;
    let code = started["device_code"].as_str().unwrap();
    let browser = browser();
    let done = user_decides(app, &browser, &started, "alice", "deny").await;
    assert!(done.contains("Request denied"), "{done}");
    for _ in 0..2 {
        let response = poll_later(app, "tv", code).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(json_of(response).await["error"], "access_denied");
    }
}

// DEVICE-06: another client's device code is invalid_grant (and stays the device's); a client
// not allowed the grant is unauthorized_client at both endpoints; a scope it may not have is
// invalid_scope; an unknown client is invalid_client; a confidential client authenticates
// with its secret, as at the token endpoint.
async fn device_codes_are_bound_to_their_client(backend: Backend) {
    let f = with_tv(backend).await;
    let app = &f.app;
    let console = app
        .create_client(ClientSpec::new("console").grant_type(GrantType::DeviceCode))
        .await;
    let secret = client_secret(&console);
    let started = app.device_started("tv", "openid").await;
    let code = started["device_code"].as_str().unwrap();
    let stolen = app
        .client
        .post(app.url("/token"))
        .basic_auth("console", Some(&secret))
        .form(&[("grant_type", DEVICE_GRANT), ("device_code", code)])
        .sent()
        .await;
    assert_eq!(stolen.status(), StatusCode::BAD_REQUEST);
    assert_eq!(json_of(stolen).await["error"], "invalid_grant");
    let still = json_of(poll_later(app, "tv", code).await).await;
    assert_eq!(
        error_of(&still),
        "authorization_pending",
        "still the device's"
    );

    // The confidential client, with its secret (Basic), and without it.
    let own = app
        .client
        .post(app.url("/device_authorization"))
        .basic_auth("console", Some(&secret))
        .form(&[("scope", "openid")])
        .sent()
        .await;
    assert_eq!(own.status(), StatusCode::OK);
    let unauthenticated = app.device_authorization("console", "openid").await;
    assert_eq!(unauthenticated.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(json_of(unauthenticated).await["error"], "invalid_client");
    let unknown = app.device_authorization("nobody", "openid").await;
    assert_eq!(json_of(unknown).await["error"], "invalid_client");

    // webapp may not use the grant.
    let webapp = f
        .token_like("/device_authorization", &[("scope", "openid")])
        .await;
    assert_eq!(webapp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(json_of(webapp).await["error"], "unauthorized_client");
    let webapp_poll = f
        .token(&[("grant_type", DEVICE_GRANT), ("device_code", code)])
        .await;
    assert_eq!(json_of(webapp_poll).await["error"], "unauthorized_client");

    for scope in ["openid admin", ""] {
        let refused = app.device_authorization("tv", scope).await;
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            json_of(refused).await["error"],
            "invalid_scope",
            "{scope:?}"
        );
    }
    let query = app
        .client
        .post(app.url("/device_authorization?client_id=tv"))
        .form(&[("scope", "openid")])
        .sent()
        .await;
    assert_eq!(json_of(query).await["error"], "invalid_request");
    let unknown_code = app.device_poll("tv", "not-a-device-code").await;
    assert_eq!(json_of(unknown_code).await["error"], "invalid_grant");
}

// DEVICE-07: user codes are read case-insensitively without their dash, and a wrong code is
// counted: past the budget the page answers 429 with Retry-After, even for the right code,
// like login throttling (the same counters table). The page filled in from
// verification_uri_complete still asks for confirmation.
async fn user_codes_are_normalised_and_guessing_is_throttled(backend: Backend) {
    let f = with_tv(backend).await;
    let app = &f.app;
    let started = app.device_started("tv", "openid").await;
    let user_code = started["user_code"].as_str().unwrap().to_owned();
    let browser = browser();
    let page = open_verification(app, &browser, &app.url("/device"), "alice").await;
    let html = page.text().await.unwrap();
    assert!(html.contains("name=\"user_code\" value=\"\""), "{html}");

    let typed = user_code.replace('-', " ").to_lowercase();
    let confirm = submit_user_code(app, &browser, &html, &typed).await;
    assert_eq!(confirm.status(), StatusCode::OK);
    let confirm = confirm.text().await.unwrap();
    assert!(
        confirm.contains(&user_code),
        "the code to compare with the device's"
    );
    assert!(confirm.contains("<strong>tv</strong>"), "the application");
    assert!(confirm.contains("openid"), "the access asked");
    assert!(confirm.contains("device"), "a device will act as the user");
    assert_eq!(
        app.device_poll_error("tv", started["device_code"].as_str().unwrap())
            .await
            .1["error"],
        "authorization_pending",
        "confirming the code decides nothing"
    );

    // A CSRF token of another session is refused.
    let forged = browser
        .post(app.url("/device"))
        .form(&[("csrf_token", "forged"), ("user_code", user_code.as_str())])
        .sent()
        .await;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);

    let mut wrong = "BCDF-GHJK".to_owned();
    if wrong == user_code {
        wrong = "BCDF-GHJL".to_owned();
    }
    for attempt in 0..10 {
        let refused = submit_user_code(app, &browser, &html, &wrong).await;
        assert_eq!(
            refused.status(),
            StatusCode::BAD_REQUEST,
            "attempt {attempt}"
        );
    }
    let throttled = submit_user_code(app, &browser, &html, &wrong).await;
    assert_eq!(throttled.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(throttled.headers().get("retry-after").is_some());
    let right = submit_user_code(app, &browser, &html, &user_code).await;
    assert_eq!(
        right.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "the budget is spent"
    );
    assert!(f.env.count_rows("login_attempts").await >= 2);
    // The window passes: the right code is found again.
    app.advance(Duration::from_secs(15 * 60 + 1));
    let started = app.device_started("tv", "openid").await;
    let again =
        submit_user_code(app, &browser, &html, started["user_code"].as_str().unwrap()).await;
    assert_eq!(again.status(), StatusCode::OK);
}

// DEVICE-08: neither code is stored in clear: the table holds their SHA-256 only.
async fn device_and_user_codes_are_hashed_at_rest(backend: Backend) {
    let f = with_tv(backend).await;
    let started = f.app.device_started("tv", "openid").await;
    let device_code = started["device_code"].as_str().unwrap().to_owned();
    let user_code = started["user_code"].as_str().unwrap().to_owned();
    let rows = f
        .env
        .with_db(|conn| {
            use diesel::prelude::*;
            use portcullis::db::models::DeviceAuthorizationRow;
            use portcullis::db::schema::device_authorizations as d;
            d::table
                .select(DeviceAuthorizationRow::as_select())
                .load::<DeviceAuthorizationRow>(conn)
                .unwrap()
        })
        .await;
    assert_eq!(rows.len(), 1);
    let normalised = user_code.replace('-', "");
    let stored = format!("{:?}", rows[0]);
    for secret in [&device_code, &user_code, &normalised] {
        assert!(
            !stored.contains(secret.as_str()),
            "{secret} stored in clear: {stored}"
        );
    }
    use base64::Engine;
    use sha2::Digest;
    let sha = |text: &str| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(text))
    };
    assert_eq!(rows[0].device_code_hash, sha(&device_code));
    assert_eq!(rows[0].user_code_hash, sha(&normalised));
}

// DEVICE-09: a client that requires a second factor gets no device signed in by a
// password-only session: the page sends the user through the sign-in with the second factor
// (here the enrolment of an authenticator app), and the device's tokens say so (acr mfa).
async fn the_second_factor_policy_holds_for_devices(backend: Backend) {
    let f = Fixture::new(backend).await;
    let app = &f.app;
    app.create_client(
        ClientSpec::new("kiosk")
            .public()
            .grant_type(GrantType::DeviceCode)
            .second_factor(SecondFactorPolicy::Required),
    )
    .await;
    let started = app.device_started("kiosk", "openid").await;
    let user_code = started["user_code"].as_str().unwrap();
    let browser = browser();
    let page = open_verification(app, &browser, &app.url("/device"), "alice").await;
    let html = page.text().await.unwrap();
    let asked = submit_user_code(app, &browser, &html, user_code).await;
    assert_eq!(asked.status(), StatusCode::OK);
    let login = asked.text().await.unwrap();
    assert!(
        login.contains("name=\"password\""),
        "sign in again: {login}"
    );
    // Deciding straight away with the password-only session is no way round.
    let bypass = browser
        .post(app.url("/device/decision"))
        .form(&[
            ("csrf_token", hidden(&html, "csrf_token")),
            ("user_code", user_code.to_owned()),
            ("decision", "approve".to_owned()),
        ])
        .sent()
        .await;
    assert!(bypass.text().await.unwrap().contains("name=\"password\""));
    let (_, body) = app
        .device_poll_error("kiosk", started["device_code"].as_str().unwrap())
        .await;
    assert_eq!(error_of(&body), "authorization_pending");

    let enrolment = crate::helpers::post_login_form(&browser, &app.address, &login, "alice").await;
    assert_eq!(enrolment.status(), StatusCode::OK);
    let enrolment = enrolment.text().await.unwrap();
    let secret = between(&enrolment, "<code id=\"secret\">", "</code>");
    let unix = u64::try_from(app.clock.now().timestamp()).unwrap();
    let signed_in = browser
        .post(app.url("/authorize/second-factor"))
        .form(&[
            ("request_id", hidden(&enrolment, "request_id")),
            ("csrf_token", hidden(&enrolment, "csrf_token")),
            ("code", totp_at(&secret, unix)),
        ])
        .sent()
        .await;
    let code_page = follow(app, &browser, signed_in).await;
    assert_eq!(code_page.status(), StatusCode::OK);
    let html = code_page.text().await.unwrap();
    assert!(
        html.contains(&format!("value=\"{user_code}\"")),
        "back with the code: {html}"
    );
    let confirm = submit_user_code(app, &browser, &html, user_code).await;
    let confirm = confirm.text().await.unwrap();
    assert!(confirm.contains("Authorize a device?"), "{confirm}");
    let done = answer_device(app, &browser, &confirm, "approve").await;
    assert_eq!(done.status(), StatusCode::OK);
    let issued = poll_later(app, "kiosk", started["device_code"].as_str().unwrap()).await;
    assert_eq!(issued.status(), StatusCode::OK);
    let tokens = json_of(issued).await;
    let access = decode_claims(tokens["access_token"].as_str().unwrap());
    assert_eq!(access["acr"], "urn:portcullis:acr:mfa", "{access}");
}

// DEVICE-10: the device authorization endpoint is advertised, authenticates private_key_jwt
// clients (the assertion may name the endpoint), limits each client's rate (429 slow_down),
// and the access token is for the RFC 8707 resource of the device's request; the admin API
// registers the grant; the janitor removes expired requests.
async fn device_endpoint_discovery_keys_rate_resource_and_janitor(backend: Backend) {
    let f = with_tv(backend).await;
    let app = &f.app;
    let discovery = json_of(app.get("/.well-known/openid-configuration").await).await;
    assert_eq!(
        discovery["device_authorization_endpoint"],
        format!("{}/device_authorization", app.issuer)
    );
    assert!(
        discovery["grant_types_supported"]
            .as_array()
            .unwrap()
            .contains(&json!(DEVICE_GRANT))
    );
    let oauth = json_of(app.get("/.well-known/oauth-authorization-server").await).await;
    assert_eq!(
        oauth["device_authorization_endpoint"],
        discovery["device_authorization_endpoint"]
    );

    // private_key_jwt, with an API resource.
    app.create_api("https://api.example.com", &[("read", "Read things")])
        .await;
    let key = TestKey::new(SigningAlg::Es256);
    app.create_client(
        ClientSpec::new("robot")
            .private_key_jwt(json!({ "keys": [key.jwk()] }))
            .grant_type(GrantType::DeviceCode)
            .scope("openid")
            .scope("read"),
    )
    .await;
    let assertion = |aud: &str| {
        let now = now();
        key.jws(
            &json!({ "alg": "ES256", "kid": key.kid }),
            &json!({
                "iss": "robot", "sub": "robot", "aud": aud, "iat": now, "exp": now + 60,
                "jti": uuid::Uuid::new_v4().to_string(),
            }),
        )
    };
    let endpoint = format!("{}/device_authorization", app.issuer);
    let started: Value = app
        .post_form(
            "/device_authorization",
            &[
                ("scope", "read"),
                ("resource", "https://api.example.com"),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ),
                ("client_assertion", &assertion(&endpoint)),
            ],
        )
        .await
        .json()
        .await
        .unwrap();
    assert!(started["device_code"].is_string(), "{started}");
    let browser = browser();
    user_decides(app, &browser, &started, "alice", "approve").await;
    app.advance(INTERVAL);
    let tokens: Value = app
        .post_form(
            "/token",
            &[
                ("grant_type", DEVICE_GRANT),
                ("device_code", started["device_code"].as_str().unwrap()),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ),
                ("client_assertion", &assertion(&app.issuer)),
            ],
        )
        .await
        .json()
        .await
        .unwrap();
    let access = decode_claims(tokens["access_token"].as_str().expect("tokens"));
    assert_eq!(access["aud"], "https://api.example.com", "{access}");
    assert_eq!(access["scope"], "read");
    let bad_resource = app
        .post_form(
            "/device_authorization",
            &[
                ("scope", "read"),
                ("resource", "https://other.example.com"),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ),
                ("client_assertion", &assertion(&endpoint)),
            ],
        )
        .await;
    assert_eq!(json_of(bad_resource).await["error"], "invalid_target");

    // The admin API registers a device client.
    let admin = app.admin_token().await;
    let created = app
        .client
        .post(app.url("/admin/clients"))
        .bearer_auth(&admin)
        .json(&json!({
            "client_id": "set-top", "public": true,
            "grant_types": [DEVICE_GRANT, "refresh_token"],
        }))
        .sent()
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let created = json_of(created).await;
    assert_eq!(
        created["grant_types"],
        json!([DEVICE_GRANT, "refresh_token"])
    );
    assert_eq!(
        app.device_authorization("set-top", "openid").await.status(),
        200
    );

    // The rate: 30 a minute per client and network (tv has made none yet this minute).
    for _ in 0..30 {
        assert_eq!(app.device_authorization("tv", "openid").await.status(), 200);
    }
    let limited = app.device_authorization("tv", "openid").await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(json_of(limited).await["error"], "slow_down");
    app.advance(Duration::from_secs(61));
    assert_eq!(app.device_authorization("tv", "openid").await.status(), 200);

    // The janitor keeps requests a day past their expiry, then deletes them.
    assert!(f.env.count_rows("device_authorizations").await >= 32);
    portcullis::startup::purge_expired(&app.state).await;
    assert!(f.env.count_rows("device_authorizations").await >= 32);
    app.advance(Duration::from_secs(24 * 3600 + 700));
    portcullis::startup::purge_expired(&app.state).await;
    assert_eq!(f.env.count_rows("device_authorizations").await, 0);
}

// DEVICE-10 (CLI): `clients create --grant-type urn:ietf:params:oauth:grant-type:device_code`
// registers a device client the server then serves; an unknown grant type names the valid ones.
async fn the_cli_registers_device_clients(backend: Backend) {
    use crate::helpers::stdout_json;
    let f = Fixture::new(backend).await;
    let created = f
        .env
        .cli(&[
            "clients",
            "create",
            "--client-id",
            "cli-tv",
            "--public",
            "--grant-type",
            DEVICE_GRANT,
        ])
        .await;
    assert!(created.status.success(), "{created:?}");
    assert_eq!(stdout_json(&created)["grant_types"], json!([DEVICE_GRANT]));
    f.app.reload_clients().await;
    assert_eq!(
        f.app
            .device_authorization("cli-tv", "openid")
            .await
            .status(),
        StatusCode::OK
    );
    let bad = f
        .env
        .cli(&[
            "clients",
            "create",
            "--client-id",
            "cli-x",
            "--grant-type",
            "device_code",
        ])
        .await;
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains(DEVICE_GRANT));
}

on_both_backends!(
    the_cli_registers_device_clients,
    a_device_is_signed_in_once,
    slow_down_adds_five_seconds_for_every_later_request,
    an_expired_device_code_is_expired_token,
    a_denied_device_hears_access_denied,
    device_codes_are_bound_to_their_client,
    user_codes_are_normalised_and_guessing_is_throttled,
    device_and_user_codes_are_hashed_at_rest,
    the_second_factor_policy_holds_for_devices,
    device_endpoint_discovery_keys_rate_resource_and_janitor,
);
