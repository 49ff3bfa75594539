//! Operations: request ids, graceful shutdown.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};

use crate::helpers::{Backend, TestEnv, portcullis_command};
use crate::on_both_backends;

// Every response names its request; ids differ; error responses carry one too.
async fn every_response_carries_a_request_id(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let app = env.spawn().await;
    let mut seen = std::collections::HashSet::new();
    for path in [
        "/healthz",
        "/.well-known/jwks.json",
        "/no-such-path",
        "/healthz",
    ] {
        let response = app.get(path).await;
        let id = response.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_owned();
        assert_eq!(id.len(), 20, "{id}");
        assert!(seen.insert(id), "request ids are unique");
    }
}

// SIGTERM: readiness answers 503 at once while JWKS and liveness keep answering; after the
// drain the process exits cleanly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_readiness_then_exits_cleanly() {
    let env = TestEnv::new(Backend::Sqlite).await;
    let mut command = portcullis_command();
    command
        .args(["serve", "--bind", "127.0.0.1:0"])
        .env("PORTCULLIS_DATABASE_URL", &env.database_url)
        .env("PORTCULLIS_KEYS_DIR", &env.keys_dir)
        .env("PORTCULLIS_SHUTDOWN_DRAIN", "2s")
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null());
    let mut child = command.spawn().unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let address = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.contains("portcullis listening") {
                let start = line.find("address=").expect("address field") + "address=".len();
                return line[start..].split_whitespace().next().unwrap().to_owned();
            }
        }
        panic!("server exited before listening");
    })
    .await
    .expect("server started within 60 s");
    let client = reqwest::Client::new();
    let get = |path: &str| client.get(format!("http://{address}{path}")).send();
    assert_eq!(get("/readyz").await.unwrap().status(), 200);

    let pid = child.id().unwrap().to_string();
    let killed = tokio::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    assert!(killed.success());
    let mut drained = false;
    for _ in 0..40 {
        if get("/readyz").await.ok().map(|r| r.status())
            == Some(reqwest::StatusCode::SERVICE_UNAVAILABLE)
        {
            drained = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(drained, "readiness answers 503 once shutdown began");
    assert_eq!(
        get("/healthz").await.unwrap().status(),
        200,
        "still alive while draining"
    );
    assert_eq!(get("/.well-known/jwks.json").await.unwrap().status(), 200);

    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("exited after the drain")
        .unwrap();
    assert!(status.success(), "clean exit: {status}");
    let mut rest = String::new();
    while let Ok(Some(line)) = lines.next_line().await {
        rest.push_str(&line);
        rest.push('\n');
    }
    assert!(rest.contains("shutdown requested"), "{rest}");
}

on_both_backends!(every_response_carries_a_request_id);
