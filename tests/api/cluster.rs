//! Several instances on one Postgres (FT-06), and `kill -9` under load (FT-03/04): the
//! guarantees that rest on the database hold across processes — on Postgres directly and
//! through PgBouncer in transaction pooling.

use std::sync::Arc;
use std::time::Duration;

use portcullis::config::SettingsArgs;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{
    Backend, ClientSpec, PASSWORD, REDIRECT, Sent, TestApp, TestEnv, browser, client_secret, enc,
    exchange_at, join_all, location_params, param, pkce,
};

async fn spawn_three(env: &TestEnv) -> Vec<Arc<TestApp>> {
    let args = SettingsArgs {
        issuer: Some("https://idp.example.test".into()),
        ..env.args()
    };
    let mut apps = Vec::new();
    for _ in 0..3 {
        apps.push(Arc::new(env.spawn_with(args.clone()).await));
    }
    apps
}

// FT-06: three instances behind a round robin: CODE-02 (one redemption wins), RT-04 (one
// rotation wins) and LOGIN-06 (throttling counted across instances).
async fn ft_06_three_instances_keep_single_use_and_throttling(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let apps = spawn_three(&env).await;
    apps[0].create_user("alice").await;
    let secret = apps[0].create_webapp().await;
    for app in &apps[1..] {
        app.reload_clients().await;
    }

    // A code from instance 0, redeemed 21 times round robin.
    let code = sign_in(&browser(), &apps[0].address, "alice").await;
    let statuses = join_all((0..21).map(|i| {
        let (app, code, secret) = (Arc::clone(&apps[i % 3]), code.clone(), secret.clone());
        async move {
            let status = exchange(&app.client, &app.address, &secret, &code).await;
            StatusCode::from_u16(status.expect("an answer")).unwrap()
        }
    }))
    .await;
    assert_eq!(
        statuses.iter().filter(|s| **s == StatusCode::OK).count(),
        1,
        "CODE-02: {statuses:?}"
    );

    // RT-04: one JSON-API refresh token, 21 parallel rotations round robin.
    let session: Value = apps[1].login("alice").await.json().await.unwrap();
    let token = session["refresh_token"].as_str().unwrap().to_owned();
    let statuses = join_all((0..21).map(|i| {
        let (app, token) = (Arc::clone(&apps[i % 3]), token.clone());
        async move {
            app.client
                .post(format!("{}/api/auth/refresh", app.address))
                .json(&json!({"refresh_token": token}))
                .sent()
                .await
                .status()
        }
    }))
    .await;
    assert_eq!(
        statuses.iter().filter(|s| **s == StatusCode::OK).count(),
        1,
        "RT-04: {statuses:?}"
    );

    // LOGIN-06: 30 parallel wrong passwords across the instances are counted exactly: with a
    // budget of 5 per account, at most 5 are checked and the rest throttled.
    let statuses = join_all((0..30).map(|i| {
        let app = Arc::clone(&apps[i % 3]);
        async move {
            app.client
                .post(format!("{}/api/auth/login", app.address))
                .json(&json!({"username": "alice", "password": "wrong password!"}))
                .sent()
                .await
                .status()
        }
    }))
    .await;
    let checked = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    let throttled = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!(checked + throttled, 30, "{statuses:?}");
    assert!(
        checked <= 5,
        "LOGIN-06 across instances: {checked} passwords checked"
    );
}

// FT-03/04: a server killed with SIGKILL in the middle of refresh and code-redemption load
// leaves the database consistent: no family with two live tokens, no code redeemed twice, and
// every refresh token a client holds still works or is cleanly refused.
async fn ft_03_04_kill_9_under_load_keeps_the_invariants(backend: Backend) {
    let env = TestEnv::new(backend).await;
    env.create_user("bob").await;
    let secret = client_secret(&env.create_client(ClientSpec::webapp()).await);
    let start = || env.serve_command(&[]).spawn().unwrap();
    async fn address_of(child: &mut tokio::process::Child) -> String {
        let (address, _, mut lines) = crate::helpers::wait_until_listening(child).await;
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        address
    }
    let mut child = start();
    let base = format!("http://{}", address_of(&mut child).await);
    let http = reqwest::Client::new();
    let mut chains = Vec::new();
    for _ in 0..8 {
        let session: Value = http
            .post(format!("{base}/api/auth/login"))
            .json(&json!({"username": "bob", "password": PASSWORD}))
            .json_value()
            .await;
        chains.push(session["refresh_token"].as_str().unwrap().to_owned());
    }
    // Refresh chains in flight when the process is killed.
    let load = chains
        .into_iter()
        .map(|token| {
            let (http, base) = (http.clone(), base.clone());
            tokio::spawn(async move {
                let mut token = token;
                for _ in 0..10_000 {
                    let Ok(response) = http
                        .post(format!("{base}/api/auth/refresh"))
                        .json(&json!({"refresh_token": token}))
                        .send()
                        .await
                    else {
                        break;
                    };
                    let Ok(body) = response.json::<Value>().await else {
                        break;
                    };
                    match body["refresh_token"].as_str() {
                        Some(next) => token = next.to_owned(),
                        None => break,
                    }
                }
                token
            })
        })
        .collect::<Vec<_>>();
    // Code redemptions in flight too: browsers signed in once, then silent authorizations
    // and code exchanges in a loop.
    let mut browsers = Vec::new();
    for _ in 0..4 {
        let browser = browser();
        let code = sign_in(&browser, &base, "bob").await;
        assert_eq!(exchange(&browser, &base, &secret, &code).await, Some(200));
        browsers.push(browser);
    }
    let redemptions = browsers
        .into_iter()
        .map(|browser| {
            let (base, secret) = (base.clone(), secret.clone());
            tokio::spawn(async move {
                let mut seen = Vec::new();
                for _ in 0..10_000 {
                    let Some(code) = silent_code(&browser, &base).await else {
                        break;
                    };
                    let status = exchange(&browser, &base, &secret, &code).await;
                    seen.push((code, status));
                    if status.is_none() {
                        break;
                    }
                }
                seen
            })
        })
        .collect::<Vec<_>>();
    tokio::time::sleep(Duration::from_millis(700)).await;
    child.start_kill().unwrap();
    child.wait().await.unwrap();
    let held: Vec<String> = join_all(load.into_iter())
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let codes: Vec<(String, Option<u16>)> = join_all(redemptions.into_iter())
        .await
        .into_iter()
        .flat_map(Result::unwrap)
        .collect();
    assert!(
        codes.iter().filter(|(_, s)| *s == Some(200)).count() >= 4,
        "codes were redeemed under load: {codes:?}"
    );
    assert!(
        codes.iter().all(|(_, s)| matches!(s, Some(200) | None)),
        "before the kill every exchange succeeded or got no answer: {codes:?}"
    );

    let live_per_family = env
        .with_db(|conn| {
            use diesel::prelude::*;
            use portcullis::db::schema::refresh_tokens::dsl::*;
            refresh_tokens
                .filter(used_at.is_null())
                .group_by(family_id)
                .select((family_id, diesel::dsl::count_star()))
                .load::<(String, i64)>(conn)
                .unwrap()
        })
        .await;
    assert!(
        live_per_family.iter().all(|(_, n)| *n == 1),
        "one live token per family: {live_per_family:?}"
    );
    // 8 JSON-API chains, and one grant per redeemed code (offline_access): every family of the
    // web client belongs to exactly one code marked used, and no used code lacks its family.
    let (code_families, used_codes, families_of_used_codes) = env
        .with_db(|conn| {
            use diesel::prelude::*;
            use portcullis::db::schema::{authorization_codes as c, refresh_token_families as f};
            let families: i64 = f::table
                .filter(f::client_id.eq("webapp"))
                .count()
                .get_result(conn)
                .unwrap();
            let used: Vec<Option<String>> = c::table
                .filter(c::used_at.is_not_null())
                .select(c::family_id)
                .load(conn)
                .unwrap();
            let mut linked: Vec<String> = used.iter().flatten().cloned().collect();
            let count = used.len() as i64;
            linked.sort();
            linked.dedup();
            (families, count, linked.len() as i64)
        })
        .await;
    assert_eq!(
        code_families, used_codes,
        "one family per redeemed code, none without its code marked used"
    );
    assert_eq!(families_of_used_codes, used_codes, "distinct families");
    assert_eq!(live_per_family.len() as i64, 8 + code_families);

    // After a restart each client's last token either still refreshes (its rotation never
    // committed or its answer arrived) or is refused cleanly: never a 5xx.
    let mut child = start();
    let base = format!("http://{}", address_of(&mut child).await);
    let mut working = 0;
    for token in held {
        let response = http
            .post(format!("{base}/api/auth/refresh"))
            .json(&json!({"refresh_token": token}))
            .sent()
            .await;
        assert!(
            response.status() == 200 || response.status() == 401,
            "{}",
            response.status()
        );
        if response.status() == 200 {
            working += 1;
        }
    }
    assert!(working >= 1, "most chains survive a crash");

    // No code is redeemable twice: a code whose exchange succeeded is refused now; a code whose
    // answer was lost is redeemable at most once (if its transaction never committed).
    let browser = browser();
    for (code, before) in codes {
        let first = exchange(&browser, &base, &secret, &code).await;
        let second = exchange(&browser, &base, &secret, &code).await;
        let successes = [before, first, second]
            .iter()
            .filter(|s| **s == Some(200))
            .count();
        assert!(successes <= 1, "{code}: {before:?} {first:?} {second:?}");
        assert_eq!(second, Some(400), "a spent code is refused");
    }
    child.start_kill().unwrap();
}

mod postgres {
    use crate::helpers::Backend;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ft_06_three_instances_keep_single_use_and_throttling() {
        super::ft_06_three_instances_keep_single_use_and_throttling(Backend::Postgres).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ft_03_04_kill_9_under_load_keeps_the_invariants() {
        super::ft_03_04_kill_9_under_load_keeps_the_invariants(Backend::Postgres).await
    }
}

crate::on_pgbouncer!(
    ft_06_three_instances_keep_single_use_and_throttling,
    ft_03_04_kill_9_under_load_keeps_the_invariants,
);

const VERIFIER: &str = "ft04-verifier-ft04-verifier-ft04-verifier-ft04-verifier";

fn authorize_url(base: &str) -> String {
    format!(
        "{base}/authorize?response_type=code&client_id=webapp&redirect_uri={}&scope=openid%20offline_access&code_challenge={}&code_challenge_method=S256",
        enc(REDIRECT),
        pkce(VERIFIER)
    )
}

/// Signs `browser` in as `username` on the hosted page; returns the code of that first
/// authorization.
async fn sign_in(browser: &reqwest::Client, base: &str, username: &str) -> String {
    let signed_in = crate::helpers::sign_in(browser, base, &authorize_url(base), username).await;
    param(&location_params(&signed_in).1, "code").unwrap()
}

/// A code from a silent authorization (the browser session exists), or None once the server
/// is gone.
async fn silent_code(browser: &reqwest::Client, base: &str) -> Option<String> {
    let response = browser.get(authorize_url(base)).send().await.ok()?;
    response.headers().get("location")?;
    param(&location_params(&response).1, "code")
}

/// Exchanges `code` for the web client; the status, or None when no answer arrived.
async fn exchange(http: &reqwest::Client, base: &str, secret: &str, code: &str) -> Option<u16> {
    let response = exchange_at(http, base, secret, code, VERIFIER)
        .send()
        .await
        .ok()?;
    let status = response.status().as_u16();
    // The answer counts only if its body arrived in full.
    response.bytes().await.ok().map(|_| status)
}
