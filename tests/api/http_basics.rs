//! Discovery, probes, error shapes for unknown paths and methods, and a database outage.

use std::time::Duration;

use serde_json::Value;

use crate::helpers::{Backend, ClientSpec, Sent, TestEnv, wait_until};
use crate::on_both_backends;
use crate::pg::PgCluster;

async fn discovery_documents_name_the_issuer_and_jwks(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let app = env.spawn().await;
    assert_eq!(app.issuer, app.address, "default issuer is http://<bind>");
    for path in [
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
    ] {
        let response = app.get(path).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "application/json");
        let doc: Value = response.json().await.unwrap();
        assert_eq!(doc["issuer"], app.issuer.as_str());
        let jwks_uri = doc["jwks_uri"].as_str().unwrap();
        assert_eq!(jwks_uri, format!("{}/.well-known/jwks.json", app.issuer));
        let jwks: Value = app.client.get(jwks_uri).json_value().await;
        assert_eq!(jwks["keys"].as_array().unwrap().len(), 2);
    }

    // An explicit issuer is normalised (no trailing slash) and used byte-identically; the
    // routes live under its path.
    let mut args = env.args();
    args.issuer = Some("https://id.example.com/tenant/".into());
    let app = env.spawn_with(args).await;
    let doc: Value = app
        .get("/tenant/.well-known/openid-configuration")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(doc["issuer"], "https://id.example.com/tenant");
    assert_eq!(
        doc["jwks_uri"],
        "https://id.example.com/tenant/.well-known/jwks.json"
    );
}

async fn unknown_paths_and_methods_answer_json(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let app = env.spawn().await;
    let missing = app.get("/no/such/path").await;
    assert_eq!(missing.status(), 404);
    let body: Value = missing.json().await.unwrap();
    assert_eq!(body["error"], "not_found");
    assert!(body["error_description"].is_string());

    let url = format!("{}/.well-known/jwks.json", app.address);
    let post = app.client.post(&url).body("x").sent().await;
    assert_eq!(post.status(), 405);
    assert_eq!(post.headers()["allow"], "GET, HEAD");
    let body: Value = post.json().await.unwrap();
    assert_eq!(body["error"], "method_not_allowed");

    let head = app.client.head(&url).sent().await;
    assert_eq!(head.status(), 200);
    assert!(head.headers().contains_key("etag"));
}

async fn probes_report_health_and_readiness(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let app = env.spawn().await;
    let health = app.get("/healthz").await;
    assert_eq!(health.status(), 200);
    assert_eq!(health.json::<Value>().await.unwrap()["status"], "ok");
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), 200);
    assert_eq!(ready.json::<Value>().await.unwrap()["status"], "ready");
}

on_both_backends!(
    discovery_documents_name_the_issuer_and_jwks,
    unknown_paths_and_methods_answer_json,
    probes_report_health_and_readiness,
);

// FT-01 (in part): the database goes away → readiness 503 in the JSON shape within the pool
// checkout timeout, while the JWKS and discovery keep answering from memory; it recovers
// without a restart. Postgres only: an embedded SQLite file cannot become unreachable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_outage_fails_readiness_but_not_the_jwks() {
    let cluster = PgCluster::start_own().await;
    let url = cluster.new_database().await;
    let env = TestEnv::on(url, tempfile::tempdir().unwrap());
    let mut args = env.args();
    args.db_pool_timeout = Some("1s".into());
    let app = env.spawn_with(args).await;
    assert_eq!(app.get("/readyz").await.status(), 200);
    app.user_token("eve", &[]).await;
    let login = |password: &'static str| {
        app.client
            .post(format!("{}/api/auth/login", app.address))
            .json(&serde_json::json!({"username": "eve", "password": password}))
            .send()
    };
    let session: Value = login("correct horse battery staple")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let refresh_token = session["refresh_token"].as_str().unwrap().to_owned();
    let refresh = || {
        app.client
            .post(format!("{}/api/auth/refresh", app.address))
            .json(&serde_json::json!({"refresh_token": refresh_token}))
            .send()
    };
    app.create_client(ClientSpec::new("svc")).await;

    {
        let cluster = cluster.clone();
        tokio::task::spawn_blocking(move || cluster.stop())
            .await
            .unwrap();
    }
    let ready = tokio::time::timeout(Duration::from_secs(30), app.get("/readyz"))
        .await
        .expect("readiness answers instead of hanging");
    assert_eq!(ready.status(), 503);
    assert!(ready.headers().contains_key("retry-after"));
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable");
    let text = body.to_string();
    assert!(
        !text.contains("127.0.0.1") && !text.contains("connection"),
        "no internals: {text}"
    );

    assert_eq!(app.jwks_kids().await.len(), 2, "JWKS answers from memory");
    assert_eq!(
        app.get("/.well-known/openid-configuration").await.status(),
        200
    );
    assert_eq!(app.get("/healthz").await.status(), 200);

    // FT-01: nothing that needs its single-use or throttle checks is issued: 503, right shape.
    for (what, response) in [
        (
            "login",
            login("correct horse battery staple").await.unwrap(),
        ),
        ("refresh", refresh().await.unwrap()),
    ] {
        assert_eq!(response.status(), 503, "{what}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "temporarily_unavailable", "{what}");
    }
    let code = app
        .post_form(
            "/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", "x"),
                ("client_id", "svc"),
                ("client_secret", "wrong"),
            ],
        )
        .await;
    assert_eq!(
        code.status(),
        401,
        "client authentication needs no database"
    );
    let revoke = app
        .post_form(
            "/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", "x"),
                ("client_id", "svc"),
            ],
        )
        .await;
    assert!(revoke.status().is_client_error(), "{}", revoke.status());

    {
        let cluster = cluster.clone();
        tokio::task::spawn_blocking(move || cluster.restart())
            .await
            .unwrap();
    }
    wait_until(
        "readiness recovers without a restart",
        Duration::from_secs(15),
        || async { app.get("/readyz").await.status() == 200 },
    )
    .await;
    assert_eq!(
        refresh().await.unwrap().status(),
        200,
        "the refresh token was not spent during the outage"
    );
}

// FT-02: a slow database (every statement on `users` held up by a lock another session keeps)
// and an exhausted pool (2 connections, 6 logins): each login fails with 503
// `temporarily_unavailable` after the statement timeout or the pool checkout timeout instead of
// queueing for as long as the database is stuck; the JWKS, discovery and liveness answer
// meanwhile (they never touch the database); nothing is half-written; when the database is
// fast again, service resumes without a restart. Directly and through PgBouncer in transaction
// pooling (where the statement timeout is set per transaction).
async fn ft_02_slow_database_and_pool_exhaustion(backend: Backend) {
    use diesel::Connection;
    use diesel::connection::SimpleConnection;

    let env = TestEnv::new(backend).await;
    let mut args = env.args();
    args.db_pool_size = Some(2);
    args.db_pool_timeout = Some("1s".into());
    args.db_statement_timeout = Some("2s".into());
    let app = env.spawn_with(args).await;
    app.user_token("eve", &[]).await;
    let families = || {
        env.with_db(|conn| {
            use diesel::prelude::*;
            use portcullis::db::schema::refresh_token_families::dsl::*;
            refresh_token_families
                .count()
                .get_result::<i64>(conn)
                .unwrap()
        })
    };
    let before = families().await;

    // Another session locks `users` and keeps the lock until told to let go.
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let url = env.database_url.clone();
    let holder = std::thread::spawn(move || {
        let mut conn = diesel::PgConnection::establish(&url).unwrap();
        conn.batch_execute("BEGIN; LOCK TABLE users IN ACCESS EXCLUSIVE MODE")
            .unwrap();
        locked_tx.send(()).unwrap();
        release_rx.recv().unwrap();
        conn.batch_execute("COMMIT").unwrap();
    });
    locked_rx.recv().unwrap();

    let login = || {
        let (client, address) = (app.client.clone(), app.address.clone());
        async move {
            client
                .post(format!("{address}/api/auth/login"))
                .json(&serde_json::json!({"username": "eve", "password": "correct horse battery staple"}))
                .sent().await
        }
    };
    let pending: Vec<_> = (0..6).map(|_| login()).collect();
    let logins = tokio::spawn(crate::helpers::join_all(pending.into_iter()));
    tokio::time::sleep(Duration::from_millis(200)).await;
    // While every pooled connection waits on the database, the in-memory endpoints answer.
    assert_eq!(app.jwks_kids().await.len(), 2);
    assert_eq!(
        app.get("/.well-known/openid-configuration").await.status(),
        200
    );
    assert_eq!(app.get("/healthz").await.status(), 200);
    assert!(
        !logins.is_finished(),
        "the JWKS answered while the logins still waited on the database"
    );

    let responses = tokio::time::timeout(Duration::from_secs(30), logins)
        .await
        .expect("stuck logins end with an answer, not a wait as long as the lock")
        .unwrap();
    for response in responses {
        assert_eq!(response.status(), 503);
        assert_eq!(response.headers()["retry-after"], "5");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "temporarily_unavailable", "{body}");
        let text = body.to_string();
        assert!(
            !text.contains("statement") && !text.contains("users"),
            "no internals: {text}"
        );
    }
    assert_eq!(families().await, before, "no session was half-created");

    release_tx.send(()).unwrap();
    holder.join().unwrap();
    let resumed = login().await;
    assert_eq!(resumed.status(), 200, "service resumes without a restart");
    assert_eq!(families().await, before + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ft_02_slow_database_and_pool_exhaustion_fail_fast() {
    ft_02_slow_database_and_pool_exhaustion(Backend::Postgres).await
}

crate::on_pgbouncer!(ft_02_slow_database_and_pool_exhaustion);
