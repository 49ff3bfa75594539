//! The real `portcullis` binary: for the tests of the CLI itself and of the process (signals,
//! logs, `kill -9`). Everything else sets up in-process (`fixtures`).

use std::process::Output;
use std::time::Duration;

use serde_json::Value;

use super::{PASSWORD, TestEnv};

impl TestEnv {
    /// Runs the real `portcullis` binary against this environment's database and keys.
    pub async fn cli(&self, args: &[&str]) -> Output {
        self.cli_with_env(args, &[]).await
    }

    /// Runs the binary with `input` on its stdin.
    pub async fn cli_with_stdin(&self, args: &[&str], input: &str) -> Output {
        use tokio::io::AsyncWriteExt;
        let mut command = self.command(args, &[]);
        command
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

    /// Creates `username` (email `username@example.com`, the test password) with `roles` through
    /// `portcullis users create`, for the tests where the CLI is the point: the printed user.
    pub async fn cli_create_user(&self, username: &str, roles: &[&str]) -> Value {
        let email = format!("{username}@example.com");
        let mut args = vec!["users", "create", "--username", username, "--email", &email];
        for role in roles {
            args.extend(["--role", role]);
        }
        stdout_json(&self.cli_with_stdin(&args, &format!("{PASSWORD}\n")).await)
    }

    /// Runs the binary with extra environment variables.
    pub async fn cli_with_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        run_with_timeout(self.command(args, env)).await
    }

    /// `portcullis serve` on a free loopback port against this environment, as its own process
    /// (stderr piped for [`wait_until_listening`]), with `env` added.
    pub fn serve_command(&self, env: &[(&str, &str)]) -> tokio::process::Command {
        let mut command = self.command(&["serve", "--bind", "127.0.0.1:0"], env);
        command
            .stderr(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null());
        command
    }

    /// The binary with `args` on this environment's database and keys, and `env` added.
    fn command(&self, args: &[&str], env: &[(&str, &str)]) -> tokio::process::Command {
        let mut command = portcullis_command();
        command
            .args(args)
            .env("PORTCULLIS_DATABASE_URL", &self.database_url)
            .env("PORTCULLIS_KEYS_DIR", &self.keys_dir)
            .env("PORTCULLIS_DB_POOLER", self.pooler.as_str())
            .envs(env.iter().copied());
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

/// Runs the binary in a fresh scratch directory with `args` and `env` (no database given: the
/// embedded default there).
pub async fn portcullis_in_scratch(args: &[&str], env: &[(&str, &str)]) -> Output {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut command = portcullis_command();
    command
        .args(args)
        .current_dir(dir.path())
        .envs(env.iter().copied());
    run_with_timeout(command).await
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
                return line[start..]
                    .split_whitespace()
                    .next()
                    .expect("an address")
                    .to_owned();
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
