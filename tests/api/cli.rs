//! The binary: embedded default start, migrations, and clear one-line errors for bad settings.

use std::net::TcpListener;

use crate::helpers::{
    Backend, TestEnv, portcullis_command, portcullis_in_scratch, run_with_timeout, stderr_of,
    stdout_json,
};
use crate::on_both_backends;

/// The README's run command: no settings at all, a fresh directory, keys created on first start.
#[tokio::test]
async fn serve_runs_on_the_embedded_default_with_no_settings() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = portcullis_command();
    // Only the port is overridden, so parallel tests do not collide on 8080.
    command
        .args(["serve", "--bind", "127.0.0.1:0"])
        .current_dir(dir.path())
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null());
    let mut child = command.spawn().unwrap();
    let (address, _, _log) = crate::helpers::wait_until_listening(&mut child).await;

    let jwks: serde_json::Value = reqwest::get(format!("http://{address}/.well-known/jwks.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 2);
    assert!(
        dir.path().join("data/portcullis.db").is_file(),
        "default sqlite://data/portcullis.db"
    );
    assert!(
        dir.path().join("keys/kek").is_file(),
        "KEK created in the default keys dir"
    );
    child.kill().await.unwrap();
}

async fn migrate_twice_is_a_no_op(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let first = stdout_json(&env.cli(&["migrate"]).await);
    assert!(!first["applied"].as_array().unwrap().is_empty(), "{first}");
    let second = stdout_json(&env.cli(&["migrate"]).await);
    assert_eq!(second["applied"], serde_json::json!([]));
    // And a server starts on the migrated database.
    let app = env.spawn().await;
    assert_eq!(app.jwks_kids().await.len(), 2);
}

on_both_backends!(migrate_twice_is_a_no_op);

async fn expect_clean_failure(args: &[&str], env: &[(&str, &str)], names: &str) {
    let output = portcullis_in_scratch(args, env).await;
    assert!(!output.status.success(), "{args:?} should fail");
    let stderr = stderr_of(&output);
    assert!(stderr.contains(names), "stderr names {names}: {stderr}");
    assert!(!stderr.contains("panicked"), "no panic: {stderr}");
    let error_lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("portcullis: error"))
        .collect();
    assert_eq!(error_lines.len(), 1, "exactly one error line: {stderr}");
}

#[tokio::test]
async fn malformed_settings_exit_with_one_clear_line() {
    for (setting, value) in [
        ("PORTCULLIS_DATABASE_URL", "mysql://db/x"),
        ("PORTCULLIS_DATABASE_URL", "postgress://typo/x"),
        ("PORTCULLIS_KEK", "dG9vIHNob3J0"),
        ("PORTCULLIS_BIND", "localhost"),
        ("PORTCULLIS_ISSUER", "ftp://id.example"),
        ("PORTCULLIS_RSA_KEY_BITS", "1024"),
        ("PORTCULLIS_DB_POOL_TIMEOUT", "soon"),
        ("PORTCULLIS_CLIENT_REGISTRATION", "maybe"),
    ] {
        expect_clean_failure(&["serve"], &[(setting, value)], setting).await;
    }
}

#[tokio::test]
async fn unreadable_kek_file_exits_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    // A directory where the KEK file should be: unreadable as a file, even for root.
    std::fs::create_dir_all(dir.path().join("keys/kek")).unwrap();
    let keys_dir = dir.path().join("keys");
    let db = format!("sqlite://{}/p.db", dir.path().display());
    expect_clean_failure(
        &["serve", "--bind", "127.0.0.1:0"],
        &[
            ("PORTCULLIS_KEYS_DIR", keys_dir.to_str().unwrap()),
            ("PORTCULLIS_DATABASE_URL", &db),
        ],
        "KEK file",
    )
    .await;
    // A KEK file of the wrong length.
    let other = tempfile::tempdir().unwrap();
    std::fs::write(other.path().join("kek"), "c2hvcnQ=\n").unwrap();
    let db = format!("sqlite://{}/p.db", other.path().display());
    expect_clean_failure(
        &["serve", "--bind", "127.0.0.1:0"],
        &[
            ("PORTCULLIS_KEYS_DIR", other.path().to_str().unwrap()),
            ("PORTCULLIS_DATABASE_URL", &db),
        ],
        "expected 32",
    )
    .await;
}

#[tokio::test]
async fn bind_address_in_use_exits_naming_the_setting() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/p.db", dir.path().display());
    let keys = dir.path().join("keys");
    expect_clean_failure(
        &["serve", "--bind", &address],
        &[
            ("PORTCULLIS_DATABASE_URL", &db),
            ("PORTCULLIS_KEYS_DIR", keys.to_str().unwrap()),
        ],
        "PORTCULLIS_BIND",
    )
    .await;
}

#[tokio::test]
async fn unreachable_postgres_exits_with_a_redacted_message() {
    let free = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://user:hunter2@127.0.0.1:{free}/portcullis");
    let dir = tempfile::tempdir().unwrap();
    let mut command = portcullis_command();
    command
        .args(["migrate"])
        .env("PORTCULLIS_DATABASE_URL", &url)
        .current_dir(dir.path());
    let output = run_with_timeout(command).await;
    assert!(!output.status.success());
    let stderr = stderr_of(&output);
    assert!(stderr.contains("cannot connect"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "password redacted: {stderr}");
}

#[tokio::test]
async fn database_url_is_read_when_the_portcullis_setting_is_unset() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("from-database-url.db");
    let mut command = portcullis_command();
    command
        .args(["migrate"])
        .env("DATABASE_URL", format!("sqlite://{}", db.display()))
        .current_dir(dir.path());
    let output = run_with_timeout(command).await;
    let applied = stdout_json(&output);
    assert!(!applied["applied"].as_array().unwrap().is_empty());
    assert!(db.is_file(), "DATABASE_URL chose the database");
    assert!(
        !dir.path().join("data").exists(),
        "the default was not used"
    );
}

/// Settings come from the file, then the environment, then the flags, each overriding the one
/// before; `DATABASE_URL` sits below the file. `config check` shows the result, the KEK redacted.
#[tokio::test]
async fn config_check_layers_the_file_the_environment_and_the_flags() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("portcullis.toml");
    std::fs::write(
        &file,
        "jwks_max_age = 120\nlogin_window = \"20m\"\naccess_token_ttl = \"10m\"\nkek = \"c2VjcmV0\"\ndatabase_url = \"sqlite://from-file.db\"\n",
    )
    .unwrap();
    let mut command = portcullis_command();
    command
        .args(["config", "check", "--jwks-max-age", "60"])
        .env("PORTCULLIS_CONFIG", &file)
        .env("PORTCULLIS_JWKS_MAX_AGE", "90")
        .env("PORTCULLIS_ACCESS_TOKEN_TTL", "5m")
        .env("DATABASE_URL", "sqlite://from-database-url.db")
        .current_dir(dir.path());
    let output = run_with_timeout(command).await;
    let shown = stdout_json(&output);
    assert_eq!(shown["jwks_max_age"], 60, "the flag wins");
    assert_eq!(
        shown["access_token_ttl"], "300s",
        "the environment wins over the file"
    );
    assert_eq!(shown["login_window"], "1200s", "from the file");
    assert_eq!(shown["database_url"], "sqlite://from-file.db");
    assert_eq!(shown["kek"], "<redacted>");
    assert!(!String::from_utf8_lossy(&output.stdout).contains("c2VjcmV0"));
}
