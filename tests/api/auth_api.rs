//! The first-party JSON API: register, login, refresh with rotation and reuse detection,
//! logout, logout everywhere, /api/me — on both backends.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{DecodingKey, EncodingKey, Header, Validation, jwk::Jwk};
use portcullis::keys::SigningAlg;
use serde_json::{Value, json};

use crate::helpers::{Backend, PASSWORD, Sent, TestEnv, join_all, stdout_json};
use crate::on_both_backends;

async fn assert_invalid_grant(response: reqwest::Response, case: &str) {
    assert_eq!(response.status(), 401, "{case}");
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"],
        "invalid_grant",
        "{case}"
    );
}

async fn happy_path_register_login_me_refresh_logout(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let app = env.spawn().await;
    let user = app.register("alice").await;
    assert!(user.get("password_hash").is_none());

    let response = app.login_with("alice", PASSWORD).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    for attribute in [
        "portcullis_refresh=",
        "HttpOnly",
        "SameSite=Strict",
        "Path=/api/auth",
    ] {
        assert!(cookie.contains(attribute), "{attribute} in {cookie}");
    }
    assert!(
        !cookie.contains("Secure"),
        "plain-http loopback issuer: no Secure flag"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    let access = body["access_token"].as_str().unwrap();
    let refresh_token = body["refresh_token"].as_str().unwrap().to_owned();
    assert!(
        URL_SAFE_NO_PAD.decode(&refresh_token).unwrap().len() >= 32,
        "≥ 256 bits"
    );

    // The access token verifies with plain jsonwebtoken against the served JWKS (RFC 9068).
    let header = jsonwebtoken::decode_header(access).unwrap();
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    assert_eq!(header.alg, jsonwebtoken::Algorithm::ES256);
    let jwks = app.jwks().await;
    let jwk: Jwk = serde_json::from_value(
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["kid"] == header.kid.clone().unwrap().as_str())
            .unwrap()
            .clone(),
    )
    .unwrap();
    let mut validation = Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.set_audience(&[&app.issuer]);
    validation.set_issuer(&[&app.issuer]);
    let claims =
        jsonwebtoken::decode::<Value>(access, &DecodingKey::from_jwk(&jwk).unwrap(), &validation)
            .unwrap()
            .claims;
    assert_eq!(claims["sub"], user["id"]);
    for claim in ["exp", "iat", "nbf", "jti", "client_id", "scope", "roles"] {
        assert!(claims.get(claim).is_some(), "claim {claim}");
    }

    let profile = app.me(access).await;
    assert_eq!(profile.status(), 200);
    assert_eq!(profile.json::<Value>().await.unwrap()["username"], "alice");

    // Roles are read afresh at every refresh.
    stdout_json(&env.cli(&["users", "add-role", "alice", "auditor"]).await);
    stdout_json(&env.cli(&["users", "add-role", "alice", "admin"]).await);
    let response = app.refresh(&refresh_token).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let payload = body["access_token"]
        .as_str()
        .unwrap()
        .split('.')
        .nth(1)
        .unwrap()
        .to_owned();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    assert_eq!(claims["roles"], json!(["admin", "auditor"]));
    let second = body["refresh_token"].as_str().unwrap().to_owned();
    let third = app.refreshed(&second).await.1;
    // The cookie alone works too (empty body).
    let with_cookie = app
        .client
        .post(format!("{}/api/auth/refresh", app.address))
        .header("Cookie", format!("portcullis_refresh={third}"))
        // CSRF-01: the cookie endpoints want JSON even with an empty body.
        .header("Content-Type", "application/json")
        .sent()
        .await;
    assert_eq!(with_cookie.status(), 200);
    let fourth = with_cookie.json::<Value>().await.unwrap()["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();

    let logout = app
        .post_json("/api/auth/logout", &json!({"refresh_token": fourth}))
        .await;
    assert_eq!(logout.status(), 204);
    assert!(
        logout.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    assert_invalid_grant(app.refresh(&fourth).await, "refresh after logout").await;
}

// RT-03 ★: a rotated token presented again revokes the whole family, the live successor too.
async fn rt_03_reuse_revokes_the_family(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let app = env.spawn().await;
    app.register("bob").await;
    let (_, first) = app.tokens("bob").await;
    let second = app.refreshed(&first).await.1;
    assert_invalid_grant(app.refresh(&first).await, "reuse of a rotated token").await;
    assert_invalid_grant(app.refresh(&second).await, "the live successor after reuse").await;

    let events = env
        .with_db(|conn| portcullis::db::queries::audit::recent(conn, 20).unwrap())
        .await;
    assert!(
        events
            .iter()
            .any(|(_, action, _)| action == "refresh_token_reuse"),
        "{events:?}"
    );
}

// RT-04 ★: 20 parallel refreshes of one token → exactly one 200.
async fn rt_04_parallel_refreshes_have_one_winner(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let app = env.spawn().await;
    app.register("carol").await;
    let (_, token) = app.tokens("carol").await;
    let attempts = (0..20).map(|_| app.refresh(&token));
    let mut statuses = Vec::new();
    for response in join_all(attempts).await {
        statuses.push(response.status().as_u16());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 401),
        "{statuses:?}"
    );
}

// RT-08 ★: reuse detection survives a restart, same-second rotations, and refresh racing logout.
async fn rt_08_reuse_detection_survives_restart_and_races(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let app = env.spawn().await;
    app.register("dave").await;
    // (b) three rotations within one second, then the first token again.
    let (_, t1) = app.tokens("dave").await;
    let t2 = app.refreshed(&t1).await.1;
    let t3 = app.refreshed(&t2).await.1;
    let _t4 = app.refreshed(&t3).await.1;
    assert_invalid_grant(app.refresh(&t2).await, "same-second reuse").await;

    // (a) rotate, restart, present the old token: still detected.
    let (_, u1) = app.tokens("dave").await;
    let u2 = app.refreshed(&u1).await.1;
    app.stop().await;
    let app = env.spawn().await;
    assert_invalid_grant(app.refresh(&u1).await, "reuse after restart").await;
    assert_invalid_grant(app.refresh(&u2).await, "family revoked across restart").await;

    // (c) refresh racing logout: whatever the order, the family ends revoked.
    let (_, v1) = app.tokens("dave").await;
    let logout_body = json!({"refresh_token": v1});
    let (refreshed_response, logout_response) = tokio::join!(
        app.refresh(&v1),
        app.post_json("/api/auth/logout", &logout_body),
    );
    assert_eq!(logout_response.status(), 204);
    if refreshed_response.status() == 200 {
        let v2 = refreshed_response.json::<Value>().await.unwrap()["refresh_token"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_invalid_grant(app.refresh(&v2).await, "successor of a logged-out family").await;
    }
    assert_invalid_grant(app.refresh(&v1).await, "the raced token").await;
}

async fn logout_all_password_change_and_disable_end_every_session(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let app = env.spawn().await;
    app.register("erin").await;
    let (access, phone) = app.tokens("erin").await;
    let (_, laptop) = app.tokens("erin").await;
    let response = app
        .client
        .post(format!("{}/api/auth/logout-all", app.address))
        .bearer_auth(&access)
        .sent()
        .await;
    assert_eq!(response.status(), 204);
    assert_invalid_grant(app.refresh(&phone).await, "phone after logout-all").await;
    assert_invalid_grant(app.refresh(&laptop).await, "laptop after logout-all").await;
    let unauthenticated = app
        .client
        .post(format!("{}/api/auth/logout-all", app.address))
        .sent()
        .await;
    assert_eq!(unauthenticated.status(), 401);

    let (_, before_change) = app.tokens("erin").await;
    stdout_json(
        &env.cli_with_stdin(&["users", "set-password", "erin"], "a brand new password\n")
            .await,
    );
    assert_invalid_grant(app.refresh(&before_change).await, "after password change").await;
    assert_eq!(
        app.login_with("erin", PASSWORD).await.status(),
        401,
        "old password"
    );

    let (access, before_disable) = {
        let response = app.login_with("erin", "a brand new password").await;
        let body: Value = response.json().await.unwrap();
        (
            body["access_token"].as_str().unwrap().to_owned(),
            body["refresh_token"].as_str().unwrap().to_owned(),
        )
    };
    stdout_json(&env.cli(&["users", "disable", "erin"]).await);
    assert_invalid_grant(app.refresh(&before_disable).await, "after disable").await;
    let disabled_login = app.login_with("erin", "a brand new password").await;
    assert_eq!(disabled_login.status(), 401);
    assert_eq!(
        disabled_login.json::<Value>().await.unwrap()["error"],
        "invalid_credentials"
    );
    assert_eq!(
        app.me(&access).await.status(),
        401,
        "a disabled account's token no longer opens /api/me"
    );
}

async fn idle_and_absolute_lifetimes_end_a_family(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let mut args = env.args();
    args.refresh_idle_ttl = Some("1s".into());
    let app = env.spawn_with(args).await;
    app.register("frank").await;
    let (_, idle) = app.tokens("frank").await;
    app.advance(Duration::from_millis(1500));
    assert_invalid_grant(app.refresh(&idle).await, "idle beyond 1 s").await;
    app.stop().await;

    let mut args = env.args();
    args.refresh_absolute_ttl = Some("2s".into());
    let app = env.spawn_with(args).await;
    let (_, token) = app.tokens("frank").await;
    app.advance(Duration::from_millis(1000));
    let token = app.refreshed(&token).await.1;
    app.advance(Duration::from_millis(1500));
    assert_invalid_grant(app.refresh(&token).await, "absolute lifetime over").await;
}

// LOGIN-04 ★: unknown user and wrong password are indistinguishable (status, body, headers).
async fn login_04_no_user_enumeration(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let app = env.spawn().await;
    app.register("grace").await;
    let unknown = app.login_with("nobody-here", PASSWORD).await;
    let wrong = app.login_with("grace", "wrong password!").await;
    assert_eq!(unknown.status(), 401);
    assert_eq!(unknown.status(), wrong.status());
    let headers = |r: &reqwest::Response| {
        let mut h: Vec<(String, String)> = r
            .headers()
            .iter()
            // The date and the per-request id differ for every response alike.
            .filter(|(name, _)| *name != "date" && *name != "x-request-id")
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_owned()))
            .collect();
        h.sort();
        h
    };
    assert_eq!(headers(&unknown), headers(&wrong));
    let (unknown, wrong) = (unknown.bytes().await.unwrap(), wrong.bytes().await.unwrap());
    assert_eq!(unknown, wrong);
    assert_eq!(
        serde_json::from_slice::<Value>(&unknown).unwrap()["error"],
        "invalid_credentials"
    );
}

// LOGIN-06 ★: 50 parallel wrong passwords are counted exactly: 5 are checked, 45 get 429 before
// hashing; the correct password is throttled too until the window ends; other accounts are not.
async fn login_06_throttling_counts_parallel_attempts_exactly(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let mut args = env.args();
    args.login_max_attempts_per_ip = Some(1000);
    let app = env.spawn_with(args).await;
    app.register("heidi").await;
    app.register("ivan").await;
    let attempts = (0..50).map(|_| app.login_with("heidi", "wrong password!"));
    let responses = join_all(attempts).await;
    let mut counts = (0, 0);
    for response in responses {
        match response.status().as_u16() {
            401 => counts.0 += 1,
            429 => {
                counts.1 += 1;
                let retry: u64 = response.headers()["retry-after"]
                    .to_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                assert!((1..=900).contains(&retry), "Retry-After {retry}");
                assert_eq!(
                    response.json::<Value>().await.unwrap()["error"],
                    "too_many_requests"
                );
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(counts, (5, 45));
    assert_eq!(
        app.login_with("heidi", PASSWORD).await.status(),
        429,
        "throttled before hashing"
    );
    assert_eq!(
        app.login_with("HEIDI@example.com", PASSWORD).await.status(),
        429,
        "the email shares the account's budget"
    );
    assert_eq!(
        app.login_with("ivan", PASSWORD).await.status(),
        200,
        "other accounts are not affected"
    );
}

async fn bad_bodies_get_the_json_error_shape(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let app = env.spawn().await;
    let url = format!("{}/api/auth/login", app.address);
    let form = app
        .client
        .post(&url)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("username=a&password=b")
        .sent()
        .await;
    assert_eq!(form.status(), 415);
    assert_eq!(
        form.json::<Value>().await.unwrap()["error"],
        "unsupported_media_type"
    );
    let big = app
        .client
        .post(&url)
        .header("Content-Type", "application/json")
        .body(format!(
            r#"{{"username":"a","password":"{}"}}"#,
            "x".repeat(20_000)
        ))
        .sent()
        .await;
    assert_eq!(big.status(), 413);
    assert_eq!(
        big.json::<Value>().await.unwrap()["error"],
        "invalid_request"
    );
    let malformed = app
        .client
        .post(&url)
        .header("Content-Type", "application/json")
        .body(r#"{"username": "a", "#)
        .sent()
        .await;
    assert_eq!(malformed.status(), 400);
    assert_eq!(
        malformed.json::<Value>().await.unwrap()["error"],
        "invalid_request"
    );

    let taken = {
        app.register("judy").await;
        app.post_json(
            "/api/auth/register",
            &json!({"username": "JUDY", "email": "other@example.com", "password": PASSWORD}),
        )
        .await
    };
    assert_eq!(taken.status(), 409);
    assert_eq!(taken.json::<Value>().await.unwrap()["error"], "user_exists");
    let invalid = app
        .post_json(
            "/api/auth/register",
            &json!({"username": "kim", "email": "not-an-email", "password": PASSWORD}),
        )
        .await;
    assert_eq!(invalid.status(), 400);
    let body: Value = invalid.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .starts_with("email:"),
        "{body}"
    );
    let get = app.client.get(&url).sent().await;
    assert_eq!(get.status(), 405);
    assert_eq!(get.headers()["allow"], "POST");
}

async fn registration_can_be_closed(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let mut args = env.args();
    args.open_registration = Some(false);
    let app = env.spawn_with(args).await;
    let closed = app
        .post_json(
            "/api/auth/register",
            &json!({"username": "leo", "email": "leo@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(closed.status(), 403);
    assert_eq!(
        closed.json::<Value>().await.unwrap()["error"],
        "registration_closed"
    );
}

// /api/me applies the resource-server rules (JWT-01, -02, -03, -12, -16).
async fn api_me_rejects_forged_and_foreign_tokens(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let app = env.spawn().await;
    let user = app.register("mallory").await;
    let (access, _) = app.tokens("mallory").await;
    assert_eq!(app.me(&access).await.status(), 200);
    let parts: Vec<&str> = access.split('.').collect();
    let mut claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    let kid = jsonwebtoken::decode_header(&access).unwrap().kid.unwrap();

    let mut forged = Vec::new();
    claims["roles"] = json!(["admin"]);
    forged.push((
        "tampered",
        format!(
            "{}.{}.{}",
            parts[0],
            URL_SAFE_NO_PAD.encode(claims.to_string()),
            parts[2]
        ),
    ));
    let none =
        URL_SAFE_NO_PAD.encode(json!({"alg": "none", "typ": "at+jwt", "kid": kid}).to_string());
    forged.push(("alg none", format!("{none}.{}.", parts[1])));
    let jwks = app.jwks().await;
    let public = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .unwrap()
        .to_string();
    let mut hs = Header::new(jsonwebtoken::Algorithm::HS256);
    hs.kid = Some(kid.clone());
    hs.typ = Some("at+jwt".into());
    forged.push((
        "HS256 with the public key",
        jsonwebtoken::encode(&hs, &claims, &EncodingKey::from_secret(public.as_bytes())).unwrap(),
    ));
    let now = jsonwebtoken::get_current_timestamp() as i64;
    let base = json!({"iss": app.issuer, "sub": user["id"], "aud": app.issuer, "iat": now - 3600, "nbf": now - 3600, "exp": now - 1800});
    forged.push((
        "expired",
        app.state
            .signer
            .sign(SigningAlg::Es256, "at+jwt", &base)
            .unwrap(),
    ));
    let mut fresh = base.clone();
    fresh["exp"] = json!(now + 600);
    fresh["iat"] = json!(now);
    let mut wrong_aud = fresh.clone();
    wrong_aud["aud"] = json!("https://other.example");
    forged.push((
        "wrong aud",
        app.state
            .signer
            .sign(SigningAlg::Es256, "at+jwt", &wrong_aud)
            .unwrap(),
    ));
    let mut wrong_iss = fresh.clone();
    wrong_iss["iss"] = json!("https://evil.example");
    forged.push((
        "wrong iss",
        app.state
            .signer
            .sign(SigningAlg::Es256, "at+jwt", &wrong_iss)
            .unwrap(),
    ));
    forged.push((
        "ID token typ",
        app.state
            .signer
            .sign(SigningAlg::Rs256, "JWT", &fresh)
            .unwrap(),
    ));
    for (case, token) in forged {
        let response = app.me(&token).await;
        assert_eq!(response.status(), 401, "{case}");
        let challenge = response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            challenge.contains(r#"error="invalid_token""#),
            "{case}: {challenge}"
        );
    }
    // Control: the same claims, genuinely signed, are accepted — with the `jti` of a token this
    // server recorded for the user (ADM-04: an unrecorded token speaks for nobody).
    let mut control = fresh.clone();
    control["jti"] = claims["jti"].clone();
    assert_eq!(
        app.me(&app
            .state
            .signer
            .sign(SigningAlg::Es256, "at+jwt", &control)
            .unwrap())
            .await
            .status(),
        200
    );
    let unrecorded = app
        .state
        .signer
        .sign(SigningAlg::Es256, "at+jwt", &fresh)
        .unwrap();
    assert_eq!(app.me(&unrecorded).await.status(), 401, "unrecorded jti");
}

// The lost-response grace window (off by default): one retry while the successor is unused.
async fn reuse_grace_allows_one_retry_of_a_lost_response(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let mut args = env.args();
    args.refresh_reuse_grace = Some("30s".into());
    let app = env.spawn_with(args).await;
    app.register("nina").await;

    let (_, t0) = app.tokens("nina").await;
    let _lost = app.refreshed(&t0).await.1;
    let s2 = app.refreshed(&t0).await.1;
    let s3 = app.refreshed(&s2).await.1;
    assert_invalid_grant(app.refresh(&t0).await, "a second retry is reuse").await;
    assert_invalid_grant(app.refresh(&s3).await, "and it revoked the family").await;

    let (_, u0) = app.tokens("nina").await;
    let u1 = app.refreshed(&u0).await.1;
    let _u2 = app.refreshed(&u1).await.1;
    assert_invalid_grant(app.refresh(&u0).await, "retry after the successor was used").await;

    let (_, v0) = app.tokens("nina").await;
    let lost = app.refreshed(&v0).await.1;
    let _v2 = app.refreshed(&v0).await.1;
    assert_invalid_grant(
        app.refresh(&lost).await,
        "the invalidated successor is reuse",
    )
    .await;
}

// ADM-06: a username that looks like a user id is refused, so it can never stand in for that
// user (ambiguous lookups of rows made before the rule: tests/api/hardening.rs).
async fn a_username_equal_to_an_id_is_not_that_user(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let app = env.spawn().await;
    let victim = app.register("olivia").await;
    let victim_id = victim["id"].as_str().unwrap().to_owned();
    let impostor = app
        .post_json(
            "/api/auth/register",
            &json!({"username": victim_id, "email": "impostor@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(impostor.status(), 400);
    let (victim_access, _) = app.tokens("olivia").await;
    let profile: Value = app.me(&victim_access).await.json().await.unwrap();
    assert_eq!(profile["username"], "olivia");
    let disabled = stdout_json(&env.cli(&["users", "disable", &victim_id]).await);
    assert_eq!(disabled["username"], "olivia", "the CLI resolves the id");
}

on_both_backends!(
    a_username_equal_to_an_id_is_not_that_user,
    reuse_grace_allows_one_retry_of_a_lost_response,
    happy_path_register_login_me_refresh_logout,
    rt_03_reuse_revokes_the_family,
    rt_04_parallel_refreshes_have_one_winner,
    rt_08_reuse_detection_survives_restart_and_races,
    logout_all_password_change_and_disable_end_every_session,
    idle_and_absolute_lifetimes_end_a_family,
    login_04_no_user_enumeration,
    login_06_throttling_counts_parallel_attempts_exactly,
    bad_bodies_get_the_json_error_shape,
    registration_can_be_closed,
    api_me_rejects_forged_and_foreign_tokens,
);

// CORS is off unless origins are configured, and then exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_is_off_by_default_and_exact_when_configured() {
    let env = TestEnv::new(Backend::Sqlite).await;
    let app = env.spawn().await;
    let url = format!("{}/api/auth/login", app.address);
    let response = app
        .client
        .post(&url)
        .header("Origin", "https://app.example.com")
        .json(&json!({"username": "x", "password": "y"}))
        .sent()
        .await;
    assert!(
        response
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    app.stop().await;

    let mut args = env.args();
    args.cors_origins = Some("https://app.example.com".into());
    let app = env.spawn_with(args).await;
    let url = format!("{}/api/auth/login", app.address);
    let preflight = |origin: &'static str| {
        app.client
            .request(reqwest::Method::OPTIONS, &url)
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "POST")
            .header("Access-Control-Request-Headers", "content-type")
            .send()
    };
    let allowed = preflight("https://app.example.com").await.unwrap();
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    assert_eq!(
        allowed.headers()["access-control-allow-credentials"],
        "true"
    );
    let denied = preflight("https://app.example.com.evil.example")
        .await
        .unwrap();
    assert!(
        denied
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    let denied = preflight("http://app.example.com").await.unwrap();
    assert!(
        denied
            .headers()
            .get("access-control-allow-origin")
            .is_none(),
        "scheme is part of the origin"
    );
}
