//! The test harness, in one place. A test makes a [`TestEnv`] (its own fresh database on SQLite
//! or Postgres, a keys directory, a clock) and starts real servers on it ([`TestApp`], on
//! 127.0.0.1:0, talked to over HTTP). Users and clients are made in-process through the
//! services (`fixtures`); the binary is spawned only where the CLI or the process itself is
//! under test (`cli`). Expiry, rotation and janitor tests move the servers' clock instead of
//! sleeping; polling is left for what other tasks do (`wait`).

mod app;
mod cli;
mod device;
mod doc_server;
mod env;
mod fixtures;
mod oauth;
mod tokens;
mod wait;

pub use app::TestApp;
pub use cli::{
    portcullis_command, portcullis_in_scratch, run_with_timeout, stderr_of, stdout_json,
    wait_until_listening,
};
pub use device::{
    DEVICE_GRANT, answer_device, follow, open_verification, submit_user_code, user_decides,
};
pub use doc_server::{DocServer, Reply};
pub use env::{Backend, TestEnv, pgbouncer_or_skip};
pub use fixtures::{ClientSpec, client_secret};
pub use oauth::{
    FLOW_NONCE, Fixture, REDIRECT, answer_consent, browser, code_flow, code_of, enc, exchange_at,
    hidden, location_params, param, pkce, post_login_form, rp_http, sign_in,
};
pub use tokens::{
    claim_i64, decode_claims, kid_of, kids_of, verifies_against, verify_signed_token,
};
pub use wait::{wait_for, wait_until};

use serde_json::Value;

/// The password of every test user.
pub const PASSWORD: &str = "correct horse battery staple";

/// The `client_secret` of a client as the admin API or `clients create` answer it.
pub fn secret_of(client: &Value) -> String {
    client["client_secret"]
        .as_str()
        .expect("client_secret")
        .to_owned()
}

/// The request chains tests write again and again, each in one call.
pub trait Sent {
    /// Sends the request, failing the test on a transport error: the response.
    fn sent(self) -> impl std::future::Future<Output = reqwest::Response>;
    /// Sends the request: the response's JSON body.
    fn json_value(self) -> impl std::future::Future<Output = Value>;
}

impl Sent for reqwest::RequestBuilder {
    async fn sent(self) -> reqwest::Response {
        self.send().await.expect("request")
    }

    async fn json_value(self) -> Value {
        json_of(self.sent().await).await
    }
}

/// A response's JSON body.
pub async fn json_of(response: reqwest::Response) -> Value {
    response.json().await.expect("JSON body")
}

/// The value of a sample line of a Prometheus text exposition.
pub fn sample(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|line| line.starts_with(prefix))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
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
        outputs.push(result.expect("every future finished"));
    }
    outputs
}

/// Generates `#[tokio::test]` wrappers (module `pgbouncer`) that run each named
/// `async fn(Backend)` on Postgres through PgBouncer in transaction pooling.
#[macro_export]
macro_rules! on_pgbouncer {
    ($($name:ident),* $(,)?) => {
        mod pgbouncer {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if $crate::helpers::pgbouncer_or_skip() {
                        super::$name($crate::helpers::Backend::PgBouncer).await
                    }
                }
            )*
        }
    };
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
