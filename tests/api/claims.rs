//! Standard claims (OIDC Core §5.1), the `claims` parameter (§5.5), `acr`/`amr`, and email
//! validation (RFC 5322 addr-spec, IDNA): issue 15 items 4 and 9.

use serde_json::{Value, json};

use crate::helpers::{Backend, PASSWORD, TestEnv, stdout_json};
use crate::on_both_backends;

/// `POST /api/auth/register` with `email`.
async fn register_email(
    app: &crate::helpers::TestApp,
    username: &str,
    email: &str,
) -> reqwest::Response {
    app.post_json(
        "/api/auth/register",
        &json!({ "username": username, "email": email, "password": PASSWORD }),
    )
    .await
}

/// A 400 in the JSON API shape naming `field`.
async fn assert_invalid_field(response: reqwest::Response, field: &str) {
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request", "{body}");
    let description = body["error_description"].as_str().unwrap();
    assert!(
        description.starts_with(&format!("{field}: ")),
        "names {field}: {body}"
    );
}

// Issue 15 item 9: `u@@example.com` got 201, and an existing address with an invisible
// character appended registered a second, look-alike account.
async fn malformed_and_look_alike_emails_are_refused_at_registration(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let app = env.spawn().await;
    assert_eq!(
        register_email(&app, "alice", "alice@example.com")
            .await
            .status(),
        201
    );
    let before = env.count_rows("users").await;
    for (username, email) in [
        ("user5", "u@@example.com"),
        ("user6", "alice@example.com\u{200B}"),
        ("user7", "al\u{200D}ice@example.com"),
        ("user8", "alice@exam\u{200B}ple.com"),
        ("user9", "alice@example.com\u{202E}"),
        ("user10", "alice@\u{FEFF}example.com"),
        ("user11", "alice.@example.com"),
        ("user12", "alice@-example.com"),
        ("user13", "alice@[192.0.2.1]"),
    ] {
        let response = register_email(&app, username, email).await;
        assert_invalid_field(response, "email").await;
    }
    assert_eq!(env.count_rows("users").await, before, "nothing written");
    // Case and IDNA forms of the same address are the same account.
    let again = register_email(&app, "alice2", "ALICE@EXAMPLE.COM").await;
    assert_eq!(again.status(), 409);
    assert_eq!(
        register_email(&app, "bob", "bob@bücher.example")
            .await
            .status(),
        201
    );
    let punycode = register_email(&app, "bob2", "bob@xn--bcher-kva.example").await;
    assert_eq!(
        punycode.status(),
        409,
        "the A-label form is the same address"
    );
}

// The CLI refuses the same addresses; `users check` reports stored rows that no longer
// validate (written before the rule, or by hand) and changes nothing.
async fn the_cli_refuses_bad_emails_and_reports_stale_rows(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let refused = env
        .cli_with_stdin(
            &[
                "users",
                "create",
                "--username",
                "mallory",
                "--email",
                "u@@example.com",
            ],
            &format!("{PASSWORD}\n"),
        )
        .await;
    assert!(!refused.status.success());
    assert!(crate::helpers::stderr_of(&refused).contains("email"));
    env.cli_create_user("alice", &[]).await;
    env.cli_create_user("carol", &[]).await;
    let clean = env.cli(&["users", "check"]).await;
    assert!(
        clean.status.success(),
        "{}",
        crate::helpers::stderr_of(&clean)
    );
    assert_eq!(stdout_json(&clean), json!({ "stale": [] }));

    // A row from before the rule.
    env.with_db(|conn| {
        use diesel::RunQueryDsl;
        diesel::sql_query(
            "UPDATE users SET email = 'carol@example.com\u{200B}' WHERE username = 'carol'",
        )
        .execute(conn)
        .unwrap();
    })
    .await;
    let report = env.cli(&["users", "check"]).await;
    assert!(!report.status.success(), "non-zero when something is stale");
    let body: Value = serde_json::from_slice(&report.stdout).unwrap();
    let stale = body["stale"].as_array().unwrap();
    assert_eq!(stale.len(), 1, "{body}");
    assert_eq!(stale[0]["username"], "carol");
    assert_eq!(stale[0]["field"], "email");
    assert_eq!(stale[0]["value"], "carol@example.com\u{200B}");
    assert!(stale[0]["reason"].as_str().unwrap().contains("invisible"));
    // Reported, not changed.
    let users = stdout_json(&env.cli(&["users", "list"]).await);
    let carol = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "carol")
        .unwrap()
        .clone();
    assert_eq!(carol["email"], "carol@example.com\u{200B}");
}

on_both_backends!(
    malformed_and_look_alike_emails_are_refused_at_registration,
    the_cli_refuses_bad_emails_and_reports_stale_rows,
);
