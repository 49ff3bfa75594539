//! Test harness: a real server on 127.0.0.1:0 with its own fresh database (SQLite or Postgres),
//! and helpers to run the real binary.

use std::path::PathBuf;
use std::process::Output;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use portcullis::config::{Settings, SettingsArgs};
use portcullis::startup::Application;
use portcullis::state::AppState;
use serde_json::Value;
use tempfile::TempDir;

use crate::pg;

/// The password of every test user.
pub const PASSWORD: &str = "correct horse battery staple";

/// The storage backend a test runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite in a temporary file.
    Sqlite,
    /// A fresh database on the throwaway Postgres cluster.
    Postgres,
}

/// A fresh database plus a keys directory, owned by one test.
pub struct TestEnv {
    /// `sqlite://…` or `postgres://…`.
    pub database_url: String,
    /// Directory that holds the KEK file.
    pub keys_dir: PathBuf,
    /// Scratch directory (SQLite file, keys); deleted on drop.
    pub dir: TempDir,
}

impl TestEnv {
    /// A new empty database on `backend`.
    pub async fn new(backend: Backend) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let database_url = match backend {
            // A nested path also checks that the directory is created on first start.
            Backend::Sqlite => format!("sqlite://{}/data/portcullis.db", dir.path().display()),
            Backend::Postgres => tokio::task::spawn_blocking(|| pg::shared().create_database())
                .await
                .expect("create database"),
        };
        let keys_dir = dir.path().join("keys");
        Self {
            database_url,
            keys_dir,
            dir,
        }
    }

    /// Settings for a server on this environment, with quick key reloads.
    pub fn args(&self) -> SettingsArgs {
        SettingsArgs {
            database_url: Some(self.database_url.clone()),
            bind: Some("127.0.0.1:0".into()),
            keys_dir: Some(self.keys_dir.clone()),
            key_refresh_interval: Some("200ms".into()),
            workers: Some(2),
            // The API tests register users on both backends.
            open_registration: Some(true),
            ..Default::default()
        }
    }

    /// Starts a server with default test settings.
    pub async fn spawn(&self) -> TestApp {
        self.spawn_with(self.args()).await
    }

    /// Starts a server with `args`.
    pub async fn spawn_with(&self, args: SettingsArgs) -> TestApp {
        let settings = Settings::from_args(args).expect("settings");
        let app = Application::build(settings).await.expect("server starts");
        let address = format!("http://127.0.0.1:{}", app.port());
        let issuer = app.issuer().to_string();
        let handle = app.handle();
        let state = app.state().clone();
        let admin_address = app
            .admin_port()
            .map(|port| format!("http://127.0.0.1:{port}"));
        tokio::spawn(app.run_until_stopped());
        TestApp {
            address,
            admin_address,
            issuer,
            handle,
            state,
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
        }
    }

    /// Runs `f` with a fresh connection to this environment's database, on a blocking thread.
    pub async fn with_db<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut portcullis::db::DbConn) -> T + Send + 'static,
    ) -> T {
        let url = portcullis::db::DatabaseUrl::parse(&self.database_url).expect("url");
        tokio::task::spawn_blocking(move || {
            let mut conn = portcullis::db::ConnectionManager::new(url)
                .establish()
                .expect("connect");
            f(&mut conn)
        })
        .await
        .expect("database task")
    }

    /// Creates a user with `roles` through the CLI and logs in through `app`: its access token.
    pub async fn user_token(&self, app: &TestApp, username: &str, roles: &[&str]) -> String {
        let email = format!("{username}@example.com");
        let mut args = vec!["users", "create", "--username", username, "--email", &email];
        for role in roles {
            args.extend(["--role", role]);
        }
        stdout_json(&self.cli_with_stdin(&args, &format!("{PASSWORD}\n")).await);
        app.session(username).await["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned()
    }

    /// Runs the real `portcullis` binary against this environment's database and keys.
    pub async fn cli(&self, args: &[&str]) -> Output {
        self.cli_with_env(args, &[]).await
    }

    /// Runs the binary with `input` on its stdin.
    pub async fn cli_with_stdin(&self, args: &[&str], input: &str) -> Output {
        use tokio::io::AsyncWriteExt;
        let mut command = portcullis_command();
        command
            .args(args)
            .env("PORTCULLIS_DATABASE_URL", &self.database_url)
            .env("PORTCULLIS_KEYS_DIR", &self.keys_dir)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = command.spawn().expect("spawn");
        let mut stdin = child.stdin.take().expect("stdin");
        stdin
            .write_all(input.as_bytes())
            .await
            .expect("write stdin");
        drop(stdin);
        tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
            .await
            .expect("command finished within 60 s")
            .expect("command ran")
    }

    /// Runs the binary with extra environment variables.
    pub async fn cli_with_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut command = portcullis_command();
        command
            .args(args)
            .env("PORTCULLIS_DATABASE_URL", &self.database_url)
            .env("PORTCULLIS_KEYS_DIR", &self.keys_dir);
        for (key, value) in env {
            command.env(key, value);
        }
        run_with_timeout(command).await
    }

    /// `portcullis serve` on a free loopback port against this environment, as its own process
    /// (stderr piped for [`wait_until_listening`]), with `env` added.
    pub fn serve_command(&self, env: &[(&str, &str)]) -> tokio::process::Command {
        let mut command = portcullis_command();
        command
            .args(["serve", "--bind", "127.0.0.1:0"])
            .env("PORTCULLIS_DATABASE_URL", &self.database_url)
            .env("PORTCULLIS_KEYS_DIR", &self.keys_dir)
            .envs(env.iter().copied())
            .stderr(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null());
        command
    }
}

/// The binary under test with a clean environment (no inherited PORTCULLIS_* settings).
pub fn portcullis_command() -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_portcullis"));
    for (key, _) in std::env::vars() {
        if key.starts_with("PORTCULLIS_") || key == "DATABASE_URL" {
            command.env_remove(key);
        }
    }
    command.env("PORTCULLIS_LOG", "info").kill_on_drop(true);
    command
}

/// The log lines a spawned `portcullis serve` writes to its piped stderr.
pub type ServerLog = tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStderr>>;

/// Takes `child`'s piped stderr and reads it until the server says where it listens (at most
/// 60 s); returns that address, the lines read so far, and the rest of the log.
pub async fn wait_until_listening(
    child: &mut tokio::process::Child,
) -> (String, String, ServerLog) {
    use tokio::io::AsyncBufReadExt;
    let stderr = child.stderr.take().expect("stderr piped");
    let mut lines = tokio::io::BufReader::new(stderr).lines();
    let mut log = String::new();
    let address = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.expect("server log") {
            log.push_str(&line);
            log.push('\n');
            if line.contains("portcullis listening") {
                let start = line.find("address=").expect("address field") + "address=".len();
                return line[start..].split_whitespace().next().unwrap().to_owned();
            }
        }
        panic!("server exited before listening:\n{log}");
    })
    .await
    .expect("server started within 60 s");
    (address, log, lines)
}

/// Runs a command to completion, failing the test if it takes more than a minute.
pub async fn run_with_timeout(mut command: tokio::process::Command) -> Output {
    tokio::time::timeout(Duration::from_secs(60), command.output())
        .await
        .expect("command finished within 60 s")
        .expect("command ran")
}

/// A running server.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`.
    pub address: String,
    /// The separate admin listener, when configured.
    pub admin_address: Option<String>,
    /// The issuer the server uses.
    pub issuer: String,
    /// Stops the server.
    pub handle: ServerHandle,
    /// In-process state (the `Signer`), for tests that sign tokens.
    pub state: AppState,
    /// HTTP client that does not follow redirects.
    pub client: reqwest::Client,
}

impl TestApp {
    /// `POST /api/auth/login` as `username` with the test password.
    pub async fn login(&self, username: &str) -> reqwest::Response {
        self.client
            .post(format!("{}/api/auth/login", self.address))
            .json(&serde_json::json!({"username": username, "password": PASSWORD}))
            .send()
            .await
            .expect("login")
    }

    /// A successful login's body: access and refresh token.
    pub async fn session(&self, username: &str) -> Value {
        let response = self.login(username).await;
        assert_eq!(response.status(), 200, "login of {username}");
        response.json().await.expect("json")
    }

    /// GET a path.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .expect("request")
    }

    /// The current JWKS.
    pub async fn jwks(&self) -> Value {
        let response = self.get("/.well-known/jwks.json").await;
        assert_eq!(response.status(), 200);
        response.json().await.expect("jwks json")
    }

    /// Kids in the current JWKS.
    pub async fn jwks_kids(&self) -> Vec<String> {
        kids_of(&self.jwks().await)
    }

    /// Polls the JWKS until `done` holds (the server reloads keys every 200 ms in tests).
    pub async fn wait_for_jwks(&self, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        for _ in 0..150 {
            let jwks = self.jwks().await;
            if done(&jwks) {
                return jwks;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("JWKS never reached the expected state: {what}");
    }

    /// The spare keys (alg → kid) from `GET /admin/keys`, once every algorithm has one: key
    /// rotations and revocations publish these instead of generating a key in the request.
    pub async fn ready_spares(&self, admin: &str) -> std::collections::HashMap<String, String> {
        for _ in 0..300 {
            let keys: Value = self
                .get_bearer("/admin/keys", admin)
                .await
                .json()
                .await
                .expect("JSON");
            let spares: std::collections::HashMap<String, String> = keys["spares"]
                .as_array()
                .expect("spares listed")
                .iter()
                .map(|s| {
                    (
                        s["alg"].as_str().unwrap().into(),
                        s["kid"].as_str().unwrap().into(),
                    )
                })
                .collect();
            if spares.len() == 2 {
                return spares;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the spare keys were never ready");
    }

    /// POST `path` with a bearer token (and no body).
    pub async fn post_bearer(&self, path: &str, token: &str) -> reqwest::Response {
        self.client
            .post(format!("{}{path}", self.address))
            .bearer_auth(token)
            .send()
            .await
            .expect("request")
    }

    /// DELETE `path` with a bearer token.
    pub async fn delete_bearer(&self, path: &str, token: &str) -> reqwest::Response {
        self.client
            .delete(format!("{}{path}", self.address))
            .bearer_auth(token)
            .send()
            .await
            .expect("request")
    }

    /// GET `path` with a bearer token.
    pub async fn get_bearer(&self, path: &str, token: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.address))
            .bearer_auth(token)
            .send()
            .await
            .expect("request")
    }

    /// Stops the server and waits for it.
    pub async fn stop(self) {
        self.handle.stop(true).await;
    }
}

/// Kids of a JWKS document.
pub fn kids_of(jwks: &Value) -> Vec<String> {
    jwks["keys"]
        .as_array()
        .expect("keys array")
        .iter()
        .map(|k| k["kid"].as_str().expect("kid").to_owned())
        .collect()
}

/// Parses a command's stdout as JSON, with its stderr in the failure message.
pub fn stdout_json(output: &Output) -> Value {
    assert!(
        output.status.success(),
        "command failed: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

/// The stderr of a command as text.
pub fn stderr_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Polls every future concurrently on the current task and returns their outputs in order.
pub async fn join_all<F: std::future::Future>(futures: impl Iterator<Item = F>) -> Vec<F::Output> {
    let handles: Vec<_> = futures.map(Box::pin).collect();
    let mut outputs = Vec::new();
    let mut pending: Vec<_> = handles.into_iter().map(Some).collect();
    let mut results: Vec<Option<F::Output>> = (0..pending.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut waiting = false;
        for (i, slot) in pending.iter_mut().enumerate() {
            if let Some(future) = slot {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(output) => {
                        results[i] = Some(output);
                        *slot = None;
                    }
                    std::task::Poll::Pending => waiting = true,
                }
            }
        }
        if waiting {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    for result in results {
        outputs.push(result.unwrap());
    }
    outputs
}

/// Generates `#[tokio::test]` wrappers that run each named `async fn(Backend)` on SQLite and
/// on Postgres.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Postgres).await
                }
            )*
        }
    };
}
