//! Email (issue 17 item 4): address verification at registration and at every change, and
//! password reset, through a real SMTP server process (Debian's `python3-aiosmtpd`, started per
//! test by `support/smtp_server.py`); every link is taken from the message the server received.
//! Without aiosmtpd the tests print `SMTP TEST DID NOT RUN` and pass, unless
//! `PORTCULLIS_REQUIRE_SMTP` is set (CI), where they fail.

use std::path::PathBuf;
use std::time::Duration;

use portcullis::config::SettingsArgs;
use serde_json::{Value, json};

use crate::helpers::{
    Backend, PASSWORD, Sent, TestApp, TestEnv, browser, hidden, stdout_json, wait_for,
};
use crate::on_both_backends;

/// Debian's Python, the one `python3-aiosmtpd` installs into.
const PYTHON: &str = "/usr/bin/python3";
const NEW_PASSWORD: &str = "a brand new passphrase";

/// Whether the SMTP tests can run: `false` (after saying so) without aiosmtpd, a failure when
/// `PORTCULLIS_REQUIRE_SMTP` is set.
fn smtp_or_skip() -> bool {
    let present = std::process::Command::new(PYTHON)
        .args(["-c", "import aiosmtpd"])
        .output()
        .is_ok_and(|out| out.status.success());
    if present {
        return true;
    }
    assert!(
        std::env::var("PORTCULLIS_REQUIRE_SMTP").is_err(),
        "PORTCULLIS_REQUIRE_SMTP is set but python3-aiosmtpd is not installed"
    );
    eprintln!(
        "SMTP TEST DID NOT RUN: python3-aiosmtpd is not installed (apt-get install python3-aiosmtpd)"
    );
    false
}

/// A free loopback port (bound and released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A real SMTP server (aiosmtpd) in its own process, saving what it accepts as JSON files.
struct SmtpServer {
    port: u16,
    dir: tempfile::TempDir,
    _child: tokio::process::Child,
}

impl SmtpServer {
    /// A server on `port` with `extra` arguments (`--user U --password P`, `--starttls C K`…).
    async fn start_on(port: u16, extra: &[&str]) -> Self {
        use tokio::io::AsyncBufReadExt;
        let dir = tempfile::tempdir().unwrap();
        let script =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/api/support/smtp_server.py");
        let mut child = tokio::process::Command::new(PYTHON)
            .arg(script)
            .arg(dir.path())
            .arg(port.to_string())
            .args(extra)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("smtp server starts");
        let stdout = child.stdout.take().unwrap();
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .expect("smtp server ready in time")
            .unwrap();
        assert_eq!(ready.as_deref(), Some("READY"));
        Self {
            port,
            dir,
            _child: child,
        }
    }

    /// A server with authentication (user `mailer`, password `mail-secret`) on a free port.
    async fn start() -> Self {
        Self::start_on(
            free_port(),
            &["--user", "mailer", "--password", "mail-secret"],
        )
        .await
    }

    /// The messages received so far, in order.
    fn messages(&self) -> Vec<Value> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        names.sort();
        names
            .iter()
            .map(|p| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap())
            .collect()
    }

    /// Waits for message number `n` (1-based) and returns it.
    async fn message(&self, n: usize) -> Value {
        wait_for(
            &format!("mail number {n}"),
            Duration::from_secs(20),
            || async move { self.messages().get(n - 1).cloned() },
        )
        .await
    }
}

/// Settings of a server that sends through `smtp` (plain SMTP on loopback, with its user).
fn smtp_args(env: &TestEnv, smtp: &SmtpServer) -> SettingsArgs {
    SettingsArgs {
        smtp_host: Some("127.0.0.1".into()),
        smtp_port: Some(u32::from(smtp.port)),
        smtp_tls: Some("none".into()),
        smtp_username: Some("mailer".into()),
        smtp_password: Some("mail-secret".to_owned().into()),
        ..env.args()
    }
}

/// The token of the link to `path` in `message`'s body; the link must start with the issuer.
fn token_in(app: &TestApp, message: &Value, path: &str) -> String {
    let body = message["body"].as_str().unwrap();
    let prefix = format!("{}{path}?token=", app.issuer);
    let line = body
        .lines()
        .find(|line| line.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no link {prefix}… in {body}"));
    line[prefix.len()..].trim().to_owned()
}

/// Waits until a message of the outbox has a failed, unsent delivery attempt; its error.
async fn failed_delivery(env: &TestEnv) -> String {
    wait_for("a failed delivery attempt", Duration::from_secs(20), || async {
        env.with_db(|conn| {
            use diesel::RunQueryDsl;
            #[derive(diesel::QueryableByName)]
            struct Failure {
                #[diesel(sql_type = diesel::sql_types::Text)]
                last_error: String,
            }
            diesel::sql_query(
                "SELECT last_error FROM mail_outbox WHERE last_error IS NOT NULL AND sent_at IS NULL",
            )
            .load::<Failure>(conn)
            .unwrap()
            .pop()
            .map(|f| f.last_error)
        })
        .await
    })
    .await
}

async fn request_reset(app: &TestApp, email: &str) -> reqwest::Response {
    app.post_json("/api/auth/password-reset", &json!({ "email": email }))
        .await
}

async fn confirm_reset(app: &TestApp, token: &str, password: &str) -> reqwest::Response {
    app.post_json(
        "/api/auth/password-reset/confirm",
        &json!({ "token": token, "password": password }),
    )
    .await
}

async fn verify(app: &TestApp, token: &str) -> reqwest::Response {
    app.post_json("/api/auth/verify-email", &json!({ "token": token }))
        .await
}

// HDR-04: a reset requested with a forged Host still mails a link naming the issuer; the link sets a
// new password through the policy, ends every session (refresh families, access tokens), and
// works once (reset-token reuse). The SMTP server saw an authenticated session.
async fn a_password_reset_by_mail_ends_every_session(backend: Backend) {
    if !smtp_or_skip() {
        return;
    }
    let env = TestEnv::new(backend).await;
    let smtp = SmtpServer::start().await;
    let app = env.spawn_with(smtp_args(&env, &smtp)).await;
    app.register("alice").await;
    let welcome = smtp.message(1).await;
    assert_eq!(welcome["subject"], "Confirm your email address");
    assert_eq!(welcome["authenticated"], true, "AUTH against the server");
    let (access, refresh) = app.tokens("alice").await;

    let requested = app
        .client
        .post(app.url("/api/auth/password-reset"))
        .header("Host", "evil.example")
        .header("X-Forwarded-Host", "evil.example")
        .json(&json!({ "email": "ALICE@example.com" }))
        .sent()
        .await;
    assert_eq!(requested.status(), 202);
    let mail = smtp.message(2).await;
    assert_eq!(mail["subject"], "Reset your password");
    assert_eq!(mail["rcpt_tos"], json!(["alice@example.com"]));
    let body = mail["body"].as_str().unwrap();
    assert!(!body.contains("evil.example"), "{body}");
    let token = token_in(&app, &mail, "/password-reset/confirm");

    // The password policy applies; the token survives a refused password.
    let weak = confirm_reset(&app, &token, "password").await;
    assert_eq!(weak.status(), 400);
    assert_eq!(
        weak.json::<Value>().await.unwrap()["error"],
        "invalid_request"
    );
    assert_eq!(
        confirm_reset(&app, &token, NEW_PASSWORD).await.status(),
        204
    );

    // Every session ended.
    assert_eq!(app.refresh(&refresh).await.status(), 401);
    assert_eq!(app.me(&access).await.status(), 401);
    assert_eq!(app.login("alice").await.status(), 401);
    assert_eq!(app.login_with("alice", NEW_PASSWORD).await.status(), 200);
    // Single use.
    let again = confirm_reset(&app, &token, "yet another passphrase").await;
    assert_eq!(again.status(), 400);
    assert_eq!(
        again.json::<Value>().await.unwrap()["error"],
        "invalid_link"
    );
    assert_eq!(app.login_with("alice", NEW_PASSWORD).await.status(), 200);
}

// Reset-token expiry: links expire (30 minutes by default), and a newer one supersedes the older.
async fn reset_links_expire_and_are_superseded(backend: Backend) {
    if !smtp_or_skip() {
        return;
    }
    let env = TestEnv::new(backend).await;
    let smtp = SmtpServer::start().await;
    let app = env.spawn_with(smtp_args(&env, &smtp)).await;
    app.register("alice").await;
    smtp.message(1).await;
    assert_eq!(request_reset(&app, "alice@example.com").await.status(), 202);
    let first = token_in(&app, &smtp.message(2).await, "/password-reset/confirm");
    app.advance(Duration::from_secs(31 * 60));
    let expired = confirm_reset(&app, &first, NEW_PASSWORD).await;
    assert_eq!(expired.status(), 400);
    assert_eq!(
        expired.json::<Value>().await.unwrap()["error"],
        "invalid_link"
    );

    assert_eq!(request_reset(&app, "alice@example.com").await.status(), 202);
    let second = token_in(&app, &smtp.message(3).await, "/password-reset/confirm");
    assert_eq!(request_reset(&app, "alice@example.com").await.status(), 202);
    let third = token_in(&app, &smtp.message(4).await, "/password-reset/confirm");
    assert_eq!(
        confirm_reset(&app, &second, NEW_PASSWORD).await.status(),
        400,
        "superseded"
    );
    assert_eq!(
        confirm_reset(&app, &third, NEW_PASSWORD).await.status(),
        204
    );
    assert_eq!(app.login("alice").await.status(), 401);
}

// LOGIN-04 (reset): a reset request answers the same — status and body — for an account's address, an unknown
// one and a disabled account's, on the JSON API and the hosted page; only the account gets a
// mail. Requests are throttled per address (unknown ones alike) and per client network.
async fn reset_requests_reveal_nothing_and_are_throttled(backend: Backend) {
    if !smtp_or_skip() {
        return;
    }
    let env = TestEnv::new(backend).await;
    let smtp = SmtpServer::start().await;
    let app = env.spawn_with(smtp_args(&env, &smtp)).await;
    app.create_user("alice").await;
    app.create_user("carol").await;
    let admin = app.admin_token().await;
    assert_eq!(
        app.post_bearer("/admin/users/carol/disable", &admin)
            .await
            .status(),
        200
    );

    let mut answers = Vec::new();
    for address in [
        "nobody@example.com",
        "carol@example.com",
        "alice@example.com",
    ] {
        let response = request_reset(&app, address).await;
        answers.push((response.status(), response.text().await.unwrap()));
    }
    assert!(answers.iter().all(|a| *a == answers[0]), "{answers:?}");
    assert_eq!(answers[0].0, 202);
    let mail = smtp.message(1).await;
    assert_eq!(mail["rcpt_tos"], json!(["alice@example.com"]));
    // No mail for the others: the outbox holds alice's only (the work ran after each answer).
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(env.count_rows("mail_outbox").await, 1);
    assert_eq!(smtp.messages().len(), 1);

    // The hosted page: the same page for both.
    let browser = browser();
    let form = browser
        .get(app.url("/password-reset"))
        .sent()
        .await
        .text()
        .await
        .unwrap();
    let csrf = hidden(&form, "csrf_token");
    let mut pages = Vec::new();
    for address in ["nobody2@example.com", "alice@example.com"] {
        let response = browser
            .post(app.url("/password-reset"))
            .form(&[("csrf_token", csrf.as_str()), ("email", address)])
            .sent()
            .await;
        pages.push((response.status(), response.text().await.unwrap()));
    }
    assert_eq!(pages[0], pages[1]);
    assert_eq!(pages[0].0, 200);

    // LOGIN-06 (for mail): per address, 3 per window, an unknown address like a known one.
    // Alice's address has had 2 requests, the unknown one 1; this network 5 of its 10.
    assert_eq!(request_reset(&app, "alice@example.com").await.status(), 202);
    for _ in 0..2 {
        assert_eq!(
            request_reset(&app, "nobody@example.com").await.status(),
            202
        );
    }
    for address in ["alice@example.com", "nobody@example.com"] {
        let response = request_reset(&app, address).await;
        assert_eq!(response.status(), 429, "{address}");
        assert!(response.headers().contains_key("retry-after"));
    }
    // Per network: the 11th request from this client is refused whatever the address.
    let fresh = request_reset(&app, "someone@example.org").await;
    assert_eq!(fresh.status(), 429);
    assert!(fresh.headers().contains_key("retry-after"));
    // HDR-04: a forged X-Forwarded-For (no trusted proxy configured) does not reset it.
    let forged = app
        .client
        .post(app.url("/api/auth/password-reset"))
        .header("X-Forwarded-For", "203.0.113.9")
        .json(&json!({ "email": "someone@example.org" }))
        .sent()
        .await;
    assert_eq!(forged.status(), 429);
}

// The hosted pages: the login page links to the reset page; the link from the mail opens a form
// (nothing spent by opening it), which needs its CSRF token (LOGIN-01 a), matching passwords and
// the policy; the pages send the login page's CSP (HDR-01).
async fn the_hosted_reset_pages_work_without_scripts(backend: Backend) {
    if !smtp_or_skip() {
        return;
    }
    let env = TestEnv::new(backend).await;
    let smtp = SmtpServer::start().await;
    let args = smtp_args(&env, &smtp);
    let f = crate::helpers::Fixture::on_with(env, args).await;
    let app = &f.app;
    let authorize = f.url(&format!(
        "response_type=code&client_id=webapp&redirect_uri={}&scope=openid&state=s&code_challenge={}&code_challenge_method=S256",
        crate::helpers::enc(crate::helpers::REDIRECT),
        crate::helpers::pkce(&"v".repeat(43))
    ));
    let login_page = browser().get(authorize).sent().await.text().await.unwrap();
    assert!(
        login_page.contains("href=\"/password-reset\">Forgot your password?</a>"),
        "{login_page}"
    );

    let browser = browser();
    let form = browser.get(app.url("/password-reset")).sent().await;
    assert_eq!(form.status(), 200);
    let csp = form.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.starts_with("default-src 'none'") && !csp.contains("script-src"),
        "{csp}"
    );
    let csrf = hidden(&form.text().await.unwrap(), "csrf_token");
    // Without the CSRF token (a cross-site form): refused.
    let forged = browser
        .post(app.url("/password-reset"))
        .form(&[("email", "alice@example.com")])
        .sent()
        .await;
    assert_eq!(forged.status(), 403);
    let sent = browser
        .post(app.url("/password-reset"))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("email", "alice@example.com"),
        ])
        .sent()
        .await;
    assert_eq!(sent.status(), 200);
    let token = token_in(app, &smtp.message(1).await, "/password-reset/confirm");

    let link = app.url(&format!("/password-reset/confirm?token={token}"));
    let page = browser.get(&link).sent().await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    let csrf = hidden(&html, "csrf_token");
    assert_eq!(hidden(&html, "token"), token);
    let post = |fields: Vec<(&'static str, String)>| {
        let browser = browser.clone();
        let url = app.url("/password-reset/confirm");
        async move { browser.post(url).form(&fields).sent().await }
    };
    let no_csrf = post(vec![
        ("token", token.clone()),
        ("password", NEW_PASSWORD.into()),
        ("password_confirmation", NEW_PASSWORD.into()),
    ])
    .await;
    assert_eq!(no_csrf.status(), 403);
    let differ = post(vec![
        ("csrf_token", csrf.clone()),
        ("token", token.clone()),
        ("password", NEW_PASSWORD.into()),
        ("password_confirmation", "something else entirely".into()),
    ])
    .await;
    assert_eq!(differ.status(), 400);
    let done = post(vec![
        ("csrf_token", csrf.clone()),
        ("token", token.clone()),
        ("password", NEW_PASSWORD.into()),
        ("password_confirmation", NEW_PASSWORD.into()),
    ])
    .await;
    assert_eq!(done.status(), 200);
    assert!(done.text().await.unwrap().contains("Password changed"));
    assert_eq!(app.login_with("alice", NEW_PASSWORD).await.status(), 200);
    // The link is spent: its page now says so.
    assert_eq!(browser.get(&link).sent().await.status(), 400);
}

// Registration mails a verification link; `email_verified` (userinfo, /api/me) is false until
// it is confirmed, then true. Opening the link spends nothing; confirming spends it.
async fn email_verified_is_earned_by_the_link(backend: Backend) {
    if !smtp_or_skip() {
        return;
    }
    let env = TestEnv::new(backend).await;
    let smtp = SmtpServer::start().await;
    let app = env.spawn_with(smtp_args(&env, &smtp)).await;
    app.register("alice").await;
    let (access, _) = app.tokens("alice").await;
    let userinfo = |access: String| {
        let app = &app;
        async move {
            app.get_bearer("/userinfo", &access)
                .await
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    assert_eq!(userinfo(access.clone()).await["email_verified"], false);
    let mail = smtp.message(1).await;
    assert_eq!(mail["rcpt_tos"], json!(["alice@example.com"]));
    let token = token_in(&app, &mail, "/email/verify");

    let browser = browser();
    let link = app.url(&format!("/email/verify?token={token}"));
    let page = browser.get(&link).sent().await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert_eq!(
        userinfo(access.clone()).await["email_verified"],
        false,
        "opening spends nothing"
    );
    let confirmed = browser
        .post(app.url("/email/verify"))
        .form(&[
            ("csrf_token", hidden(&html, "csrf_token")),
            ("token", token.clone()),
        ])
        .sent()
        .await;
    assert_eq!(confirmed.status(), 200);
    assert_eq!(userinfo(access.clone()).await["email_verified"], true);
    let me: Value = app.me(&access).await.json().await.unwrap();
    assert_eq!(me["claims"]["email_verified"], true);
    // Single use, on the JSON API too.
    let again = verify(&app, &token).await;
    assert_eq!(again.status(), 400);
    assert_eq!(
        again.json::<Value>().await.unwrap()["error"],
        "invalid_link"
    );
    // Verified: asking again sends nothing.
    let resend = app.post_bearer("/api/me/email/verification", &access).await;
    assert_eq!(resend.status(), 200);
}

// A new address takes effect only once the link mailed to it is confirmed: until then the old
// one signs in and the new one does not. A token acts on its own account and address only:
// another user's token changes that user, never the one who presents it.
async fn an_email_change_takes_effect_only_when_verified(backend: Backend) {
    if !smtp_or_skip() {
        return;
    }
    let env = TestEnv::new(backend).await;
    let smtp = SmtpServer::start().await;
    let app = env.spawn_with(smtp_args(&env, &smtp)).await;
    app.create_user("alice").await;
    app.create_user("bob").await;
    let (alice, _) = app.tokens("alice").await;
    let (bob, _) = app.tokens("bob").await;

    let change = |token: String, email: &'static str| {
        let app = &app;
        async move {
            app.send(
                reqwest::Method::POST,
                "/api/me/email",
                &token,
                Some(json!({ "email": email })),
            )
            .await
        }
    };
    let asked = change(alice.clone(), "alice@new.example").await;
    assert_eq!(asked.status(), 202);
    assert_eq!(
        asked.json::<Value>().await.unwrap()["pending_email"],
        "alice@new.example"
    );
    let alice_mail = smtp.message(1).await;
    assert_eq!(alice_mail["rcpt_tos"], json!(["alice@new.example"]));
    assert_eq!(alice_mail["subject"], "Confirm your new email address");
    let alice_token = token_in(&app, &alice_mail, "/email/verify");
    // Another account's address is refused; nothing is mailed.
    assert_eq!(change(alice.clone(), "BOB@example.com").await.status(), 409);

    // Not yet: the old address signs in, the new one does not.
    assert_eq!(app.login("alice@example.com").await.status(), 200);
    assert_eq!(app.login("alice@new.example").await.status(), 401);

    // Bob's own change, and his token presented by alice: it changes bob, not alice.
    assert_eq!(
        app.send(
            reqwest::Method::PATCH,
            "/api/me",
            &bob,
            Some(json!({ "email": "bob@new.example" }))
        )
        .await
        .json::<Value>()
        .await
        .unwrap()["pending_email"],
        "bob@new.example"
    );
    let bob_token = token_in(&app, &smtp.message(2).await, "/email/verify");
    let used_by_alice = app
        .client
        .post(app.url("/api/auth/verify-email"))
        .bearer_auth(&alice)
        .json(&json!({ "token": bob_token }))
        .sent()
        .await;
    assert_eq!(used_by_alice.status(), 200);
    let body: Value = used_by_alice.json().await.unwrap();
    assert_eq!(body["email"], "bob@new.example");
    let alice_me: Value = app.me(&alice).await.json().await.unwrap();
    assert_eq!(alice_me["email"], "alice@example.com");
    let bob_me: Value = app.me(&bob).await.json().await.unwrap();
    assert_eq!(bob_me["email"], "bob@new.example");

    // Alice confirms hers: the address changes, verified; the old one no longer signs in.
    let confirmed = verify(&app, &alice_token).await;
    assert_eq!(confirmed.status(), 200);
    assert_eq!(confirmed.json::<Value>().await.unwrap()["changed"], true);
    assert_eq!(app.login("alice@new.example").await.status(), 200);
    assert_eq!(app.login("alice@example.com").await.status(), 401);
    let me: Value = app.me(&alice).await.json().await.unwrap();
    assert_eq!(me["email"], "alice@new.example");
    assert_eq!(me["claims"]["email_verified"], true);
    assert_eq!(verify(&app, &alice_token).await.status(), 400, "single use");

    // A change whose address another account takes meanwhile is refused at confirmation.
    assert_eq!(
        change(alice.clone(), "shared@example.com").await.status(),
        202
    );
    let shared_token = token_in(&app, &smtp.message(3).await, "/email/verify");
    assert_eq!(
        change(bob.clone(), "shared@example.com").await.status(),
        202
    );
    let bob_shared = token_in(&app, &smtp.message(4).await, "/email/verify");
    assert_eq!(verify(&app, &bob_shared).await.status(), 200);
    assert_eq!(verify(&app, &shared_token).await.status(), 409);
    let me: Value = app.me(&alice).await.json().await.unwrap();
    assert_eq!(me["email"], "alice@new.example");
}

// SMTP down: the user's action is kept in the outbox and the mail goes out, from the delivery
// task's retries, once the server is back.
async fn mail_waits_in_the_outbox_while_smtp_is_down(backend: Backend) {
    if !smtp_or_skip() {
        return;
    }
    let env = TestEnv::new(backend).await;
    let port = free_port();
    let app = env
        .spawn_with(SettingsArgs {
            smtp_host: Some("127.0.0.1".into()),
            smtp_port: Some(u32::from(port)),
            smtp_tls: Some("none".into()),
            ..env.args()
        })
        .await;
    app.create_user("alice").await;
    assert_eq!(request_reset(&app, "alice@example.com").await.status(), 202);
    failed_delivery(&env).await;
    let smtp = SmtpServer::start_on(port, &[]).await;
    // Past the back-off of the attempts made so far, well within the link's 30 minutes.
    app.advance(Duration::from_secs(10 * 60));
    let mail = smtp.message(1).await;
    assert_eq!(mail["subject"], "Reset your password");
    let token = token_in(&app, &mail, "/password-reset/confirm");
    assert_eq!(
        confirm_reset(&app, &token, NEW_PASSWORD).await.status(),
        204
    );
}

// With no SMTP server (the embedded default) mail stays in the outbox; `portcullis mail outbox`
// prints it with its link, which works.
async fn without_smtp_the_cli_prints_the_outbox(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let app = env.spawn().await;
    app.register("alice").await;
    let out = env.cli(&["mail", "outbox"]).await;
    let outbox = stdout_json(&out);
    let entries = outbox.as_array().unwrap();
    assert_eq!(entries.len(), 1, "{outbox}");
    assert_eq!(entries[0]["to"], "alice@example.com");
    assert_eq!(entries[0]["state"], "pending");
    let token = token_in(
        &app,
        &json!({ "body": entries[0]["body"] }),
        "/email/verify",
    );
    assert_eq!(verify(&app, &token).await.status(), 200);
    // Sealed at rest: the stored body is not the text.
    let stored: Vec<String> = env
        .with_db(|conn| {
            use diesel::RunQueryDsl;
            #[derive(diesel::QueryableByName)]
            struct Body {
                #[diesel(sql_type = diesel::sql_types::Text)]
                body: String,
            }
            diesel::sql_query("SELECT body FROM mail_outbox")
                .load::<Body>(conn)
                .unwrap()
                .into_iter()
                .map(|b| b.body)
                .collect()
        })
        .await;
    assert!(
        !stored[0].contains(&token) && !stored[0].contains("http"),
        "sealed"
    );
    let _ = PASSWORD;
}

// STARTTLS (required) and implicit TLS, each against a server whose certificate chains to the
// CA file given; a server with another certificate gets nothing.
async fn mail_goes_over_starttls_and_tls(backend: Backend) {
    if !smtp_or_skip() {
        return;
    }
    let env = TestEnv::new(backend).await;
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap();
    let (cert, key) = (
        env.dir.path().join("smtp.crt"),
        env.dir.path().join("smtp.key"),
    );
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    let (cert_s, key_s) = (cert.display().to_string(), key.display().to_string());
    for mode in ["starttls", "tls"] {
        let flag = format!("--{mode}");
        let smtp = SmtpServer::start_on(
            free_port(),
            &[
                "--user",
                "mailer",
                "--password",
                "mail-secret",
                &flag,
                &cert_s,
                &key_s,
            ],
        )
        .await;
        let app = env
            .spawn_with(SettingsArgs {
                smtp_host: Some("localhost".into()),
                smtp_port: Some(u32::from(smtp.port)),
                smtp_tls: Some(mode.into()),
                smtp_ca_file: Some(cert.clone()),
                smtp_username: Some("mailer".into()),
                smtp_password: Some("mail-secret".to_owned().into()),
                ..env.args()
            })
            .await;
        let name = format!("user{}", mode.len());
        app.register(&name).await;
        let mail = smtp.message(1).await;
        assert_eq!(mail["tls"], true, "{mode}");
        assert_eq!(mail["authenticated"], true, "{mode}");
        app.stop().await;
    }
    // A server whose certificate does not chain to the CA file: nothing is sent to it.
    let impostor = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (other_cert, other_key) = (
        env.dir.path().join("other.crt"),
        env.dir.path().join("other.key"),
    );
    std::fs::write(&other_cert, impostor.cert.pem()).unwrap();
    std::fs::write(&other_key, impostor.signing_key.serialize_pem()).unwrap();
    let smtp = SmtpServer::start_on(
        free_port(),
        &[
            "--tls",
            &other_cert.display().to_string(),
            &other_key.display().to_string(),
        ],
    )
    .await;
    let app = env
        .spawn_with(SettingsArgs {
            smtp_host: Some("localhost".into()),
            smtp_port: Some(u32::from(smtp.port)),
            smtp_tls: Some("tls".into()),
            smtp_ca_file: Some(cert.clone()),
            ..env.args()
        })
        .await;
    app.register("userx").await;
    failed_delivery(&env).await;
    assert!(smtp.messages().is_empty());
}

// LOGIN-04 (signup): registration does answer `409 user_exists` for a taken login — an account is
// usable at once, so hiding it would be undone by signing in (README, Email) — but the answer is
// one and the same whichever field is taken (username or address, any case, a disabled
// account's), and a refused registration mails nobody: the owner of the address gets no mail
// from a stranger's attempt, and nothing is queued for the attacker.
async fn registration_reveals_no_more_than_a_taken_login(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let app = env.spawn().await;
    app.register("alice").await;
    app.create_user("carol").await;
    let admin = app.admin_token().await;
    assert_eq!(
        app.post_bearer("/admin/users/carol/disable", &admin)
            .await
            .status(),
        200
    );
    assert_eq!(env.count_rows("mail_outbox").await, 1, "alice's own link");
    let mut answers = Vec::new();
    for (username, email) in [
        ("mallory1", "alice@example.com"),
        ("mallory2", "ALICE@Example.com"),
        ("alice", "mallory3@example.com"),
        ("mallory4", "carol@example.com"),
    ] {
        let response = app
            .post_json(
                "/api/auth/register",
                &json!({ "username": username, "email": email, "password": NEW_PASSWORD }),
            )
            .await;
        answers.push((response.status(), response.text().await.unwrap()));
    }
    assert!(answers.iter().all(|a| *a == answers[0]), "{answers:?}");
    assert_eq!(answers[0].0, 409);
    assert_eq!(env.count_rows("mail_outbox").await, 1, "nothing mailed");
}

// The account's email page (`/account/email`, behind the browser session): the sign-in without one; its
// forms need the session's CSRF token (LOGIN-01 a); it mails the confirmation link again and
// asks for a change, which shows as pending until the link mailed to the new address is
// confirmed.
async fn the_account_email_page_changes_the_address_by_link(backend: Backend) {
    if !smtp_or_skip() {
        return;
    }
    let env = TestEnv::new(backend).await;
    let smtp = SmtpServer::start().await;
    let args = smtp_args(&env, &smtp);
    let f = crate::helpers::Fixture::on_with(env, args).await;
    let app = &f.app;
    let browser = browser();
    // Without a session: the account pages' sign-in, coming back here.
    let unsigned = browser.get(app.url("/account/email")).sent().await;
    assert_eq!(unsigned.status(), 303);
    assert!(
        unsigned.headers()["location"]
            .to_str()
            .unwrap()
            .ends_with("/account/login?return_to=%2Faccount%2Femail"),
        "{:?}",
        unsigned.headers()["location"]
    );
    f.code(&browser, "openid").await;
    let page = browser.get(app.url("/account/email")).sent().await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("alice@example.com") && html.contains("not verified yet"),
        "{html}"
    );
    let csrf = hidden(&html, "csrf_token");
    let forged = browser
        .post(app.url("/account/email"))
        .form(&[("action", "change"), ("email", "mallory@example.com")])
        .sent()
        .await;
    assert_eq!(forged.status(), 403);

    let resent = browser
        .post(app.url("/account/email"))
        .form(&[("csrf_token", csrf.as_str()), ("action", "resend")])
        .sent()
        .await;
    assert_eq!(resent.status(), 200);
    let mail = smtp.message(1).await;
    assert_eq!(mail["rcpt_tos"], json!(["alice@example.com"]));
    let verify_token = token_in(app, &mail, "/email/verify");

    let changed = browser
        .post(app.url("/account/email"))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("action", "change"),
            ("email", "alice@new.example"),
        ])
        .sent()
        .await;
    assert_eq!(changed.status(), 200);
    assert!(
        changed
            .text()
            .await
            .unwrap()
            .contains("Waiting for confirmation: <strong>alice@new.example</strong>")
    );
    let mail = smtp.message(2).await;
    assert_eq!(mail["rcpt_tos"], json!(["alice@new.example"]));
    let change_token = token_in(app, &mail, "/email/verify");
    assert_eq!(verify(app, &change_token).await.status(), 200);
    let html = browser
        .get(app.url("/account/email"))
        .sent()
        .await
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("<strong>alice@new.example</strong> — verified"),
        "{html}"
    );
    // The link sent to the old address proves nothing now.
    assert_eq!(verify(app, &verify_token).await.status(), 400);
}

on_both_backends!(
    a_password_reset_by_mail_ends_every_session,
    reset_links_expire_and_are_superseded,
    reset_requests_reveal_nothing_and_are_throttled,
    the_hosted_reset_pages_work_without_scripts,
    email_verified_is_earned_by_the_link,
    an_email_change_takes_effect_only_when_verified,
    mail_waits_in_the_outbox_while_smtp_is_down,
    without_smtp_the_cli_prints_the_outbox,
    mail_goes_over_starttls_and_tls,
    registration_reveals_no_more_than_a_taken_login,
    the_account_email_page_changes_the_address_by_link,
);
