//! The 503 contract while no primary takes writes (issue 19): a write that reaches a server that
//! no longer accepts writes (a demoted leader or a fenced primary: SQLSTATE 25006
//! `read_only_sql_transaction`) or no server at all answers `503 temporarily_unavailable` with
//! `Retry-After` in its endpoint family's shape — never a 500, never a wait past the pool's
//! timeouts — and writes nothing; the JWKS, discovery and the verification of issued access
//! tokens go on; service resumes without a restart. On Postgres directly and through PgBouncer
//! in transaction pooling, each on a cluster of the test's own.

use std::sync::Arc;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection};
use portcullis::db::Pooler;
use serde_json::{Value, json};

use crate::helpers::{
    Backend, Fixture, PASSWORD, Sent, TestEnv, browser, exchange_at, json_of, verifies_against,
};
use crate::pg::{PgBouncer, PgCluster};

/// A cluster of the test's own and an environment on a fresh database of it, reached directly
/// or (for [`Backend::PgBouncer`]) through a PgBouncer of its own in transaction pooling.
async fn own_cluster(backend: Backend) -> (Arc<PgCluster>, TestEnv, Option<PgBouncer>) {
    let cluster = PgCluster::start_own().await;
    let url = cluster.new_database().await;
    let dir = tempfile::tempdir().unwrap();
    if backend != Backend::PgBouncer {
        return (cluster, TestEnv::on(url, dir), None);
    }
    let bouncer = PgBouncer::in_front_of(&cluster).expect("pgbouncer is installed");
    let mut env = TestEnv::on(bouncer.url_of(&url), dir);
    env.pooler = Pooler::Transaction;
    (cluster, env, Some(bouncer))
}

/// Fences the cluster as a failover fences a demoted primary: every session, those already
/// open included (PgBouncer's server connections, the server's pool), runs read-only
/// transactions from now on (`default_transaction_read_only`, reloaded); `false` lifts it.
async fn set_read_only(cluster: &PgCluster, read_only: bool) {
    let admin = cluster.admin_url();
    tokio::task::spawn_blocking(move || {
        let mut conn = PgConnection::establish(&admin).unwrap();
        // ALTER SYSTEM refuses to run in a transaction block: one statement per call.
        conn.batch_execute(if read_only {
            "ALTER SYSTEM SET default_transaction_read_only = on"
        } else {
            "ALTER SYSTEM RESET default_transaction_read_only"
        })
        .unwrap();
        conn.batch_execute("SELECT pg_reload_conf()").unwrap();
        // The postmaster has reloaded once a new session sees the value; the other sessions
        // take it at their next command.
        let expected = if read_only { "on" } else { "off" };
        for _ in 0..100 {
            let mut probe = PgConnection::establish(&admin).unwrap();
            #[derive(diesel::QueryableByName)]
            struct Setting {
                #[diesel(sql_type = diesel::sql_types::Text)]
                default_transaction_read_only: String,
            }
            let seen: Setting = diesel::RunQueryDsl::get_result(
                diesel::sql_query("SHOW default_transaction_read_only"),
                &mut probe,
            )
            .unwrap();
            if seen.default_transaction_read_only == expected {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("default_transaction_read_only never became {expected}");
    })
    .await
    .unwrap();
    // Signals reach the idle backends within moments; give them that.
    tokio::time::sleep(Duration::from_millis(200)).await;
}

/// Rows of the tables a login, a refresh, a code redemption or a client registration writes.
async fn row_counts(env: &TestEnv) -> Vec<(&'static str, i64)> {
    let mut counts = Vec::new();
    for table in [
        "users",
        "clients",
        "browser_sessions",
        "refresh_token_families",
        "refresh_tokens",
        "authorization_codes",
        "login_attempts",
        "audit_events",
    ] {
        counts.push((table, env.count_rows(table).await));
    }
    counts
}

/// Asserts the 503 contract on `response` (a JSON body with `temporarily_unavailable`,
/// `Retry-After`, no cause): the body.
async fn assert_unavailable(what: &str, response: reqwest::Response) -> Value {
    let status = response.status();
    let retry = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = json_of(response).await;
    assert_eq!(status, 503, "{what}: {body}");
    assert_eq!(retry.as_deref(), Some("5"), "{what}");
    assert_eq!(body["error"], "temporarily_unavailable", "{what}: {body}");
    let text = body.to_string();
    assert!(
        !text.contains("read-only") && !text.contains("127.0.0.1"),
        "{what}: no cause in {text}"
    );
    body
}

/// What each family's write answers while the database is away or read-only, and what keeps
/// answering meanwhile. `code` is a code of `webapp` with `verifier`; `refresh` a JSON API
/// refresh token; `oauth_refresh` one of `webapp`.
struct Held {
    access: String,
    refresh: String,
    oauth_refresh: String,
    code: String,
    verifier: String,
}

async fn hold_tokens(f: &Fixture) -> Held {
    let (access, refresh) = f.app.tokens("alice").await;
    let (code, verifier) = f.code(&browser(), "openid offline_access").await;
    let issued = json_of(f.exchange(&code, &verifier).await).await;
    let oauth_refresh = issued["refresh_token"]
        .as_str()
        .expect("refresh_token")
        .to_owned();
    let (code, verifier) = f.code(&browser(), "openid").await;
    Held {
        access,
        refresh,
        oauth_refresh,
        code,
        verifier,
    }
}

/// Every family's write answers 503 by the contract, within `bound`; the in-memory endpoints
/// and token verification answer.
async fn writes_answer_503(f: &Fixture, admin: &str, held: &Held, bound: Duration) {
    let app = &f.app;
    let within = |what: &'static str, request: reqwest::RequestBuilder| async move {
        tokio::time::timeout(bound, request.sent())
            .await
            .unwrap_or_else(|_| panic!("{what}: no answer within {bound:?}"))
    };
    let login = within(
        "login",
        app.client
            .post(app.url("/api/auth/login"))
            .json(&json!({"username": "alice", "password": PASSWORD})),
    )
    .await;
    assert_unavailable("JSON API login", login).await;
    let refresh = within(
        "refresh",
        app.client
            .post(app.url("/api/auth/refresh"))
            .json(&json!({"refresh_token": held.refresh})),
    )
    .await;
    assert_unavailable("JSON API refresh", refresh).await;
    let oauth_refresh = within(
        "token refresh",
        app.client
            .post(app.url("/token"))
            .basic_auth("webapp", Some(&f.secret))
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", held.oauth_refresh.as_str()),
            ]),
    )
    .await;
    // RFC 6749 §5.2 shape: `error` and `error_description` only.
    let body = assert_unavailable("token endpoint refresh", oauth_refresh).await;
    assert_eq!(body.as_object().unwrap().len(), 2, "{body}");
    let redeem = within(
        "code redemption",
        exchange_at(
            &app.client,
            &app.address,
            &f.secret,
            &held.code,
            &held.verifier,
        ),
    )
    .await;
    assert_unavailable("token endpoint code", redeem).await;
    let create_client = within(
        "admin write",
        app.client
            .post(app.url("/admin/clients"))
            .bearer_auth(admin)
            .json(&json!({"client_id": "svc"})),
    )
    .await;
    assert_unavailable("admin API", create_client).await;

    let jwks = app.jwks().await;
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 2, "JWKS answers");
    assert_eq!(
        app.get("/.well-known/openid-configuration").await.status(),
        200,
        "discovery answers"
    );
    verifies_against(&held.access, &jwks, &app.issuer).expect("issued tokens still verify");
}

/// After the outage: what was held still works, once (nothing was spent during it).
async fn resumes(f: &Fixture, held: &Held) {
    let app = &f.app;
    let refreshed = app.refresh(&held.refresh).await;
    assert_eq!(
        refreshed.status(),
        200,
        "the JSON API refresh token was not spent"
    );
    let oauth = f
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", held.oauth_refresh.as_str()),
        ])
        .await;
    assert_eq!(oauth.status(), 200, "the OAuth refresh token was not spent");
    assert_eq!(
        f.exchange(&held.code, &held.verifier).await.status(),
        200,
        "the code was not spent"
    );
    assert_eq!(app.login("alice").await.status(), 200);
}

// A primary fenced read-only (as a demoted leader is): writes answer 503 (25006 is transient),
// nothing is half-written, JWKS/discovery/verification go on, and service resumes without a
// restart once writes are taken again.
async fn writes_to_a_read_only_primary_answer_503(backend: Backend) {
    let (cluster, env, _bouncer) = own_cluster(backend).await;
    let f = Fixture::on(env).await;
    let admin = f.app.admin_token().await;
    let held = hold_tokens(&f).await;
    let before = row_counts(&f.env).await;

    set_read_only(&cluster, true).await;
    writes_answer_503(&f, &admin, &held, Duration::from_secs(15)).await;
    assert_eq!(row_counts(&f.env).await, before, "nothing was written");

    set_read_only(&cluster, false).await;
    resumes(&f, &held).await;
}

// A stopped database (connection refused): the same answers within the pool's timeouts,
// and service resumes without a restart once it is back.
async fn writes_to_a_stopped_database_answer_503(backend: Backend) {
    let (cluster, env, _bouncer) = own_cluster(backend).await;
    let mut args = env.args();
    args.db_pool_timeout = Some("1s".into());
    let f = Fixture::on_with(env, args).await;
    let admin = f.app.admin_token().await;
    let held = hold_tokens(&f).await;
    {
        let cluster = Arc::clone(&cluster);
        tokio::task::spawn_blocking(move || cluster.stop())
            .await
            .unwrap();
    }
    writes_answer_503(&f, &admin, &held, Duration::from_secs(15)).await;
    {
        let cluster = Arc::clone(&cluster);
        tokio::task::spawn_blocking(move || cluster.restart())
            .await
            .unwrap();
    }
    crate::helpers::wait_until(
        "readiness recovers without a restart",
        Duration::from_secs(20),
        || async { f.app.get("/readyz").await.status() == 200 },
    )
    .await;
    resumes(&f, &held).await;
}

mod postgres {
    use crate::helpers::Backend;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_to_a_read_only_primary_answer_503() {
        super::writes_to_a_read_only_primary_answer_503(Backend::Postgres).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_to_a_stopped_database_answer_503() {
        super::writes_to_a_stopped_database_answer_503(Backend::Postgres).await
    }
}

crate::on_pgbouncer!(
    writes_to_a_read_only_primary_answer_503,
    writes_to_a_stopped_database_answer_503,
);
