//! Waiting for something another task or process does (a background tick, a reload, a server
//! starting): the only place the tests poll. Time that has to pass for an expiry, a rotation or
//! the janitor is not waited for: the test moves the server's clock (`TestApp::advance`).

use std::future::Future;
use std::time::Duration;

/// How often a condition is checked.
const POLL: Duration = Duration::from_millis(20);

/// Polls `probe` until it yields a value, at most `timeout` (a state to reach, not a speed to
/// assert); fails the test naming `what` otherwise.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never happened within {timeout:?}: {what}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// Polls `probe` until it holds, at most `timeout`.
pub async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut probe: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    wait_for(what, timeout, || {
        let done = probe();
        async move { done.await.then_some(()) }
    })
    .await
}
