//! Password policy and the password-hashing budget, on both backends: normalisation (NFKC) on
//! every path that sets or checks a password, the common-password list, legacy hashes, the
//! bounded hashing queue, the registration throttle and work skipped for abandoned requests.

use std::io::Write;
use std::time::Duration;

use argon2::password_hash::{PasswordHasher as _, SaltString, rand_core::OsRng};
use portcullis::config::SettingsArgs;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{
    Backend, PASSWORD, REDIRECT, Sent, TestApp, TestEnv, browser, enc, hidden, pkce, stderr_of,
    stdout_json, wait_until,
};
use crate::on_both_backends;

/// How long the hasher's state may take to settle: a state to reach, not a speed to assert.
const FOR_A_MINUTE: Duration = Duration::from_secs(60);

/// "Crème brûlée à Noël" precomposed (NFC), as most keyboards type it.
const NFC: &str = "Cr\u{e8}me br\u{fb}l\u{e9}e \u{e0} No\u{eb}l";
/// The same password decomposed (NFD), as some input methods and platforms send it.
const NFD: &str = "Cre\u{300}me bru\u{302}le\u{301}e a\u{300} Noe\u{308}l";

/// Argon2 settings that keep the one hashing thread busy for a good while per hash, so a queue
/// can be filled and observed.
fn slow_hashing(env: &TestEnv, queue: usize) -> SettingsArgs {
    SettingsArgs {
        hashing_concurrency: Some(1),
        hashing_queue: Some(queue),
        argon2_memory_kib: Some(64 * 1024),
        argon2_iterations: Some(16),
        register_max_per_ip: Some(1000),
        // Probes refused while the hasher is full still count as login attempts.
        login_max_attempts: Some(100),
        login_max_attempts_per_ip: Some(100),
        ..env.args()
    }
}

/// The hosted login page of a fresh authorization request for `webapp`: (request_id, csrf).
async fn login_page(app: &TestApp, browser: &reqwest::Client) -> (String, String) {
    let challenge = pkce(&"v".repeat(43));
    let url = format!(
        "{}/authorize?response_type=code&client_id=webapp&redirect_uri={}&scope=openid&state=s&code_challenge={challenge}&code_challenge_method=S256",
        app.address,
        enc(REDIRECT)
    );
    let page = browser.get(&url).sent().await;
    assert_eq!(page.status(), StatusCode::OK, "login page");
    let html = page.text().await.unwrap();
    (hidden(&html, "request_id"), hidden(&html, "csrf_token"))
}

async fn hosted_login(
    app: &TestApp,
    browser: &reqwest::Client,
    username: &str,
    password: &str,
) -> reqwest::Response {
    let (request_id, csrf) = login_page(app, browser).await;
    browser
        .post(format!("{}/authorize/login", app.address))
        .form(&[
            ("request_id", request_id.as_str()),
            ("csrf_token", csrf.as_str()),
            ("username", username),
            ("password", password),
        ])
        .sent()
        .await
}

// LOGIN-10 (NIST SP 800-63B §5.1.1.2): a password registered in NFC and typed in NFD (or the
// reverse) is the same password, on the JSON API and on the hosted login page.
async fn login_10_nfd_typed_password_matches_nfc_registration(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let app = env.spawn().await;
    app.create_webapp().await;
    assert_ne!(NFC.as_bytes(), NFD.as_bytes());
    assert_eq!(
        app.register_with("noel", NFC).await.status(),
        StatusCode::CREATED
    );
    assert_eq!(
        app.register_with("zoe", NFD).await.status(),
        StatusCode::CREATED
    );
    for (user, typed) in [("noel", NFD), ("noel", NFC), ("zoe", NFC), ("zoe", NFD)] {
        let response = app.login_with(user, typed).await;
        assert_eq!(response.status(), StatusCode::OK, "JSON API: {user}");
    }
    assert_eq!(
        app.login_with("noel", "Creme brulee a Noel").await.status(),
        StatusCode::UNAUTHORIZED,
        "normalisation composes; it does not strip accents"
    );
    let signed_in = hosted_login(&app, &browser(), "noel", NFD).await;
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER, "hosted page");
    let location = signed_in.headers()["location"].to_str().unwrap();
    assert!(
        location.starts_with(REDIRECT) && location.contains("code="),
        "{location}"
    );
}

// LOGIN-05 (NIST SP 800-63B §5.1.1.2, ASVS 6.2.12): a common or breached password, or the
// account's own name, is refused at registration and password change, with a reason that names
// the rule and never echoes the password.
async fn login_05_common_and_own_name_passwords_are_refused(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let app = env.spawn().await;
    for common in ["password", "12345678", "Password", "PASSWORD1", "iloveyou "] {
        let response = app.register_with("victor", common).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{common}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_request");
        // One fixed description for every listed password: the rule, never the input.
        assert_eq!(
            body["error_description"],
            "password: is on the list of common and breached passwords; choose another",
            "{common}"
        );
    }
    for own in ["Victor.Hugo", "victor.hugo@example.com"] {
        let response = app
            .client
            .post(format!("{}/api/auth/register", app.address))
            .json(&json!({"username": "victor.hugo", "email": "victor.hugo@example.com", "password": own}))
            .sent().await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{own}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            body["error_description"],
            "password: must not be the username or the email address"
        );
    }
    assert_eq!(
        app.register_with("victor", PASSWORD).await.status(),
        StatusCode::CREATED,
        "nothing was created by the refusals"
    );

    // The CLI's password change and user creation apply the same policy.
    let refused = env
        .cli_with_stdin(&["users", "set-password", "victor"], "12345678\n")
        .await;
    assert!(!refused.status.success());
    assert!(
        stderr_of(&refused).contains("common"),
        "{}",
        stderr_of(&refused)
    );
    let refused = env
        .cli_with_stdin(
            &[
                "users",
                "create",
                "--username",
                "walter.white",
                "--email",
                "ww@example.com",
            ],
            "Walter.White\n",
        )
        .await;
    assert!(!refused.status.success());
    assert!(
        stderr_of(&refused).contains("must not be the username"),
        "{}",
        stderr_of(&refused)
    );
    assert_eq!(
        app.login_with("victor", PASSWORD).await.status(),
        StatusCode::OK
    );
    stdout_json(
        &env.cli_with_stdin(&["users", "set-password", "victor"], &format!("{NFD}\n"))
            .await,
    );
    assert_eq!(
        app.login_with("victor", NFC).await.status(),
        StatusCode::OK,
        "a password set through the CLI is normalised too"
    );
}

// LOGIN-11: a hash stored before normalisation (of the bytes as typed) still verifies when the
// user types the password exactly as before; nobody is locked out by the change.
async fn login_11_legacy_unnormalised_hash_still_verifies(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let app = env.spawn().await;
    let user: Value = app
        .register_with("legacy", PASSWORD)
        .await
        .json()
        .await
        .unwrap();
    let id = user["id"].as_str().unwrap().to_owned();
    // What the server stored before normalisation: Argon2id of the NFD bytes themselves.
    let legacy = argon2::Argon2::default()
        .hash_password(NFD.as_bytes(), &SaltString::generate(&mut OsRng))
        .unwrap()
        .to_string();
    env.with_db(move |conn| {
        let now = chrono::Utc::now().naive_utc();
        let changed =
            portcullis::db::queries::users::set_password(conn, &id, &legacy, now).unwrap();
        assert_eq!(changed, 1);
    })
    .await;
    assert_eq!(
        app.login_with("legacy", NFD).await.status(),
        StatusCode::OK,
        "typed as before"
    );
    assert_eq!(
        app.login_with("legacy", "Creme brulee a Noel")
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    // The NFC spelling never matched this hash, before or after the change.
    assert_eq!(
        app.login_with("legacy", NFC).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

/// Fills the hashing budget in-process (one hash running, `queue` waiting) and returns the
/// tasks; panics if the hasher is not full.
async fn fill_hasher(app: &TestApp, queue: usize) -> Vec<tokio::task::JoinHandle<()>> {
    let hasher = app.state.hasher.clone();
    let tasks: Vec<_> = (0..=queue)
        .map(|_| {
            let hasher = hasher.clone();
            tokio::spawn(async move {
                let password = portcullis::accounts::Password::parse(PASSWORD.into()).unwrap();
                hasher.hash(password).await.unwrap();
            })
        })
        .collect();
    wait_until("the hasher is full", FOR_A_MINUTE, || {
        std::future::ready(hasher.in_flight() == queue + 1)
    })
    .await;
    tasks
}

/// Sends `probe` while the hasher is full until one answer comes back refused (a probe that
/// found a free slot, because the filling hashes ended first, is retried with a fresh fill).
async fn while_full<F, Fut>(app: &TestApp, queue: usize, what: &str, probe: F) -> reqwest::Response
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = reqwest::Response>,
{
    for attempt in 0..5 {
        let fill = fill_hasher(app, queue).await;
        let response = probe(attempt).await;
        for task in fill {
            task.await.unwrap();
        }
        if response.status() == StatusCode::SERVICE_UNAVAILABLE {
            return response;
        }
    }
    panic!("{what}: never refused while the hasher was full");
}

async fn assert_json_busy(response: reqwest::Response, what: &str) {
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE, "{what}");
    assert_eq!(response.headers()["retry-after"], "1", "{what}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable", "{what}: {body}");
    assert!(body["error_description"].is_string(), "{what}: {body}");
}

// DOS-11: the password-hashing queue is bounded. When every hashing thread is busy and the
// queue is full, registration, JSON login and the hosted login page answer 503 with
// Retry-After at once instead of piling up behind Argon2.
async fn dos_11_full_hashing_queue_answers_503_with_retry_after(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let queue = 1;
    let app = &env.spawn_with(slow_hashing(&env, queue)).await;
    app.create_webapp().await;
    assert_eq!(
        app.register_with("quinn", PASSWORD).await.status(),
        StatusCode::CREATED
    );

    let refused = while_full(app, queue, "register", |i| async move {
        app.register_with(&format!("busy{i}"), PASSWORD).await
    })
    .await;
    assert_json_busy(refused, "register").await;
    let refused = while_full(app, queue, "JSON login", |_| {
        app.login_with("quinn", PASSWORD)
    })
    .await;
    assert_json_busy(refused, "JSON login").await;
    let browser = browser();
    let refused = while_full(app, queue, "hosted page", |_| {
        hosted_login(app, &browser, "quinn", PASSWORD)
    })
    .await;
    assert_eq!(refused.headers()["retry-after"], "5", "hosted page");
    assert!(
        refused
            .text()
            .await
            .unwrap()
            .contains("temporarily unavailable")
    );

    // Once the queue has room again, the same requests succeed.
    assert_eq!(app.state.hasher.in_flight(), 0);
    assert_eq!(
        app.login_with("quinn", PASSWORD).await.status(),
        StatusCode::OK
    );
}

// DOS-12 (DOS-07, LOGIN-06 for sign-up): registrations are counted per client IP before any
// hashing; over the budget → 429 + Retry-After in the JSON shape, without a hash. A refused
// (invalid) registration costs no hash and is not counted; X-Forwarded-For from an untrusted
// peer does not reset the budget.
async fn dos_12_registration_is_throttled_per_ip_before_hashing(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let app = env
        .spawn_with(SettingsArgs {
            register_max_per_ip: Some(3),
            ..env.args()
        })
        .await;
    assert_eq!(
        app.register_with("first", "password").await.status(),
        StatusCode::BAD_REQUEST
    );
    for name in ["first", "second", "third"] {
        assert_eq!(
            app.register_with(name, PASSWORD).await.status(),
            StatusCode::CREATED
        );
    }
    let hashes = app.state.hasher.hashes_computed();
    let throttled = app.register_with("fourth", PASSWORD).await;
    assert_eq!(throttled.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = throttled.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=900).contains(&retry_after), "{retry_after}");
    let body: Value = throttled.json().await.unwrap();
    assert_eq!(body["error"], "too_many_requests");
    let spoofed = app
        .client
        .post(format!("{}/api/auth/register", app.address))
        .header("X-Forwarded-For", "203.0.113.9")
        .json(&json!({"username": "fifth", "email": "fifth@example.com", "password": PASSWORD}))
        .sent()
        .await;
    assert_eq!(spoofed.status(), StatusCode::TOO_MANY_REQUESTS);
    // "Same username, again and again" (the incident) costs no hash either.
    assert_eq!(
        app.register_with("first", PASSWORD).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        app.state.hasher.hashes_computed(),
        hashes,
        "throttled registrations were not hashed"
    );
    // Logins have their own budget.
    assert_eq!(
        app.login_with("first", PASSWORD).await.status(),
        StatusCode::OK
    );
}

// DOS-13: a request whose client went away while it waited for a hashing thread is never hashed
// (actix drops the handler's future when the connection closes; the waiter leaves the queue).
// Counted, not timed: raw connections each send a registration and close while queued; the
// hasher's count shows only the hash that was already running was computed.
async fn dos_13_abandoned_registrations_are_not_hashed(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let app = env.spawn_with(slow_hashing(&env, 32)).await;
    assert_eq!(
        app.register_with("real", PASSWORD).await.status(),
        StatusCode::CREATED
    );
    let hasher = app.state.hasher.clone();
    let before = hasher.hashes_computed();

    // Occupy the only hashing thread.
    let running = {
        let hasher = hasher.clone();
        tokio::spawn(async move {
            let password = portcullis::accounts::Password::parse(PASSWORD.into()).unwrap();
            hasher.hash(password).await.unwrap();
        })
    };
    wait_until("the running hash started", FOR_A_MINUTE, || {
        std::future::ready(hasher.hashes_computed() == before + 1)
    })
    .await;

    let abandoned = 6;
    let address = app.address.trim_start_matches("http://").to_owned();
    let sockets = tokio::task::spawn_blocking(move || {
        (0..abandoned)
            .map(|i| {
                let body = json!({
                    "username": format!("gone{i}"),
                    "email": format!("gone{i}@example.com"),
                    "password": PASSWORD,
                })
                .to_string();
                let mut socket = std::net::TcpStream::connect(&address).unwrap();
                write!(
                    socket,
                    "POST /api/auth/register HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                )
                .unwrap();
                socket
            })
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    wait_until(
        "every abandoned registration is queued",
        FOR_A_MINUTE,
        || std::future::ready(hasher.in_flight() == 1 + abandoned),
    )
    .await;
    drop(sockets);
    running.await.unwrap();
    wait_until("the queue is empty", FOR_A_MINUTE, || {
        std::future::ready(hasher.in_flight() == 0)
    })
    .await;
    assert_eq!(
        hasher.hashes_computed() - before,
        1,
        "only the hash that was running; none of the {abandoned} abandoned registrations"
    );
    // And nothing of theirs was stored.
    assert_eq!(
        app.login_with("gone0", PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.login_with("real", PASSWORD).await.status(),
        StatusCode::OK
    );
}

on_both_backends!(
    login_10_nfd_typed_password_matches_nfc_registration,
    login_05_common_and_own_name_passwords_are_refused,
    login_11_legacy_unnormalised_hash_still_verifies,
    dos_11_full_hashing_queue_answers_503_with_retry_after,
    dos_12_registration_is_throttled_per_ip_before_hashing,
    dos_13_abandoned_registrations_are_not_hashed,
);
