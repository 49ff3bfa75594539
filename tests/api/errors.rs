//! The error policy (`src/http/error.rs`) seen from outside: what a failure answers in each
//! endpoint family, and that its log lines carry the request's id.

use std::time::Duration;

use crate::helpers::{Backend, TestEnv};
use crate::oauth::{
    PASSWORD, REDIRECT, create_user, create_webapp, enc, hidden, location_params, param, pkce,
};

// Work on the blocking pool runs in the request's span: the warning of a replayed code, written
// inside the database closure, names the id the replaying request got in `X-Request-Id`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_database_work_logs_with_the_request_id() {
    let env = TestEnv::new(Backend::Sqlite).await;
    create_user(&env, "alice").await;
    let secret = create_webapp(&env).await;
    let mut child = env
        .serve_command(&[("PORTCULLIS_SHUTDOWN_DRAIN", "0s")])
        .spawn()
        .unwrap();
    let (address, _, mut lines) = crate::helpers::wait_until_listening(&mut child).await;
    let base = format!("http://{address}");

    let browser = crate::oauth::browser();
    let verifier = "v".repeat(50);
    let page = browser
        .get(format!(
            "{base}/authorize?response_type=code&client_id=webapp&redirect_uri={}&scope=openid&code_challenge={}&code_challenge_method=S256",
            enc(REDIRECT),
            pkce(&verifier)
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let redirect = browser
        .post(format!("{base}/authorize/login"))
        .form(&[
            ("request_id", hidden(&page, "request_id")),
            ("csrf_token", hidden(&page, "csrf_token")),
            ("username", "alice".into()),
            ("password", PASSWORD.into()),
        ])
        .send()
        .await
        .unwrap();
    let code = param(&location_params(&redirect).1, "code").unwrap();
    let redeem = || {
        reqwest::Client::new()
            .post(format!("{base}/token"))
            .basic_auth("webapp", Some(&secret))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", REDIRECT),
                ("code_verifier", verifier.as_str()),
            ])
            .send()
    };
    assert_eq!(redeem().await.unwrap().status(), 200);
    let replay = redeem().await.unwrap();
    assert_eq!(replay.status(), 400);
    let request_id = replay.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();

    let line = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.contains("authorization code replayed") {
                return line;
            }
        }
        panic!("the server's log ended without the replay warning");
    })
    .await
    .expect("the replay is logged");
    assert!(
        line.contains(&format!("request_id={request_id}"))
            || line.contains(&format!("request_id=\"{request_id}\"")),
        "the replay warning names the replaying request ({request_id}): {line}"
    );
}
