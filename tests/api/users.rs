//! `portcullis users …`: accounts created and managed from the CLI, on both backends.

use portcullis::accounts::PasswordHasher;
use portcullis::accounts::password::HashParams;
use serde_json::Value;

use crate::helpers::{Backend, TestEnv, stderr_of, stdout_json};
use crate::on_both_backends;

async fn stored_hash(env: &TestEnv, user_id: &str) -> String {
    let manager = env.connection_manager();
    let id = user_id.to_owned();
    tokio::task::spawn_blocking(move || {
        use diesel::prelude::*;
        use portcullis::db::schema::users::dsl;
        let mut conn = manager.establish().unwrap();
        dsl::users
            .find(id)
            .select(dsl::password_hash)
            .first::<String>(&mut conn)
            .unwrap()
    })
    .await
    .unwrap()
}

async fn password_matches(hash: &str, password: &str) -> bool {
    let hasher = PasswordHasher::new(HashParams::default(), 1).unwrap();
    hasher
        .verify(password.as_bytes(), Some(hash))
        .await
        .unwrap()
}

async fn users_are_created_from_the_cli_without_exposing_the_hash(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let password = "correct horse battery staple ✓";
    let output = env
        .cli_with_stdin(
            &[
                "users",
                "create",
                "--username",
                "Alice",
                "--email",
                "Alice@Example.com",
                "--role",
                "admin",
                "--role",
                "user",
            ],
            &format!("{password}\n"),
        )
        .await;
    let user = stdout_json(&output);
    assert_eq!(user["username"], "Alice");
    assert_eq!(user["email"], "Alice@Example.com");
    assert_eq!(user["roles"], serde_json::json!(["admin", "user"]));
    assert_eq!(user["disabled"], false);
    let text = String::from_utf8_lossy(&output.stdout).to_string() + &stderr_of(&output);
    assert!(
        !text.contains("argon2") && !text.contains(password),
        "no hash or password in the output"
    );

    // Stored as Argon2id (OWASP parameters), exactly the line typed (no trimming, no truncation).
    let hash = stored_hash(&env, user["id"].as_str().unwrap()).await;
    assert!(
        hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{hash}"
    );
    assert!(password_matches(&hash, password).await);
    assert!(!password_matches(&hash, password.trim_end_matches('✓')).await);

    // Usernames and emails are unique case-insensitively.
    for (username, email) in [("alice", "bob@example.com"), ("bob", "ALICE@example.COM")] {
        let taken = env
            .cli_with_stdin(
                &["users", "create", "--username", username, "--email", email],
                "another password\n",
            )
            .await;
        assert!(!taken.status.success());
        assert!(
            stderr_of(&taken).contains("already exists"),
            "{}",
            stderr_of(&taken)
        );
    }
    let listed = stdout_json(&env.cli(&["users", "list"]).await);
    assert_eq!(listed.as_array().unwrap().len(), 1);
}

async fn password_policy_is_enforced_before_hashing(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let create = [
        "users",
        "create",
        "--username",
        "carol",
        "--email",
        "carol@example.com",
    ];
    let short = env.cli_with_stdin(&create, "short\n").await;
    assert!(!short.status.success());
    assert!(stderr_of(&short).contains("password: must be at least 8 characters"));
    let long = env
        .cli_with_stdin(&create, &format!("{}\n", "x".repeat(1025)))
        .await;
    assert!(!long.status.success());
    assert!(stderr_of(&long).contains("password: must be at most 1024 bytes"));
    let bad_name = env
        .cli_with_stdin(
            &[
                "users",
                "create",
                "--username",
                "c d",
                "--email",
                "c@example.com",
            ],
            "long enough\n",
        )
        .await;
    assert!(stderr_of(&bad_name).contains("username:"));
    let bad_email = env
        .cli_with_stdin(
            &["users", "create", "--username", "carol", "--email", "carol"],
            "long enough\n",
        )
        .await;
    assert!(stderr_of(&bad_email).contains("email:"));
    assert_eq!(
        stdout_json(&env.cli(&["users", "list"]).await),
        serde_json::json!([]),
        "nothing half-written"
    );
    // Exactly 1024 bytes and any script are fine.
    let ok = env
        .cli_with_stdin(&create, &format!("{}\n", "é".repeat(512)))
        .await;
    stdout_json(&ok);
}

async fn users_are_disabled_re_passworded_and_given_roles(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let user = stdout_json(
        &env.cli_with_stdin(
            &[
                "users",
                "create",
                "--username",
                "dave",
                "--email",
                "dave@example.com",
            ],
            "first password\n",
        )
        .await,
    );
    let id = user["id"].as_str().unwrap().to_owned();

    let changed = stdout_json(
        &env.cli_with_stdin(
            &["users", "set-password", "DAVE@example.com"],
            "second password\r\n",
        )
        .await,
    );
    assert_ne!(changed["password_changed_at"], user["password_changed_at"]);
    let hash = stored_hash(&env, &id).await;
    assert!(
        password_matches(&hash, "second password").await,
        "CRLF line ending stripped, nothing else"
    );
    assert!(!password_matches(&hash, "first password").await);

    // Another administrator, so dave is not the last one when he steps down (ADM-05).
    stdout_json(
        &env.cli_with_stdin(
            &[
                "users",
                "create",
                "--username",
                "erin",
                "--email",
                "erin@example.com",
                "--role",
                "admin",
            ],
            "erin's password\n",
        )
        .await,
    );
    let with_role = stdout_json(&env.cli(&["users", "add-role", "dave", "admin"]).await);
    assert_eq!(with_role["roles"], serde_json::json!(["admin"]));
    let again = stdout_json(&env.cli(&["users", "add-role", &id, "admin"]).await);
    assert_eq!(again["roles"], serde_json::json!(["admin"]), "idempotent");
    let without = stdout_json(&env.cli(&["users", "remove-role", "dave", "admin"]).await);
    assert_eq!(without["roles"], serde_json::json!([]));
    let bad_role = env.cli(&["users", "add-role", "dave", "Admin!"]).await;
    assert!(stderr_of(&bad_role).contains("role:"));

    let disabled = stdout_json(&env.cli(&["users", "disable", "dave"]).await);
    assert_eq!(disabled["disabled"], true);
    assert!(disabled["disabled_at"].is_string());
    let listed: Value = stdout_json(&env.cli(&["users", "list"]).await);
    assert_eq!(listed[0]["disabled"], true);
    assert_eq!(listed[1]["disabled"], false, "erin");

    let missing = env.cli(&["users", "disable", "nobody"]).await;
    assert!(!missing.status.success());
    assert!(stderr_of(&missing).contains("no such user"));
}

on_both_backends!(
    users_are_created_from_the_cli_without_exposing_the_hash,
    password_policy_is_enforced_before_hashing,
    users_are_disabled_re_passworded_and_given_roles,
);
