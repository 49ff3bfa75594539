//! The error policy (`src/http/error.rs`) seen from outside: what a failure answers in each
//! endpoint family, and that its log lines carry the request's id.

use std::time::Duration;

use crate::helpers::{
    Backend, ClientSpec, REDIRECT, TestEnv, browser, client_secret, enc, exchange_at,
    location_params, param, pkce, sign_in, wait_until_listening,
};
use crate::on_both_backends;

// Work on the blocking pool runs in the request's span: the warning of a replayed code, written
// inside the database closure, names the id the replaying request got in `X-Request-Id`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_database_work_logs_with_the_request_id() {
    let env = TestEnv::new(Backend::Sqlite).await;
    env.create_user("alice").await;
    let secret = client_secret(&env.create_client(ClientSpec::webapp()).await);
    let mut child = env
        .serve_command(&[("PORTCULLIS_SHUTDOWN_DRAIN", "0s")])
        .spawn()
        .unwrap();
    let (address, _, mut lines) = wait_until_listening(&mut child).await;
    let base = format!("http://{address}");

    let browser = browser();
    let verifier = "v".repeat(50);
    let authorize = format!(
        "{base}/authorize?response_type=code&client_id=webapp&redirect_uri={}&scope=openid&code_challenge={}&code_challenge_method=S256",
        enc(REDIRECT),
        pkce(&verifier)
    );
    let redirect = sign_in(&browser, &base, &authorize, "alice").await;
    let code = param(&location_params(&redirect).1, "code").unwrap();
    let redeem = || exchange_at(&reqwest::Client::new(), &base, &secret, &code, &verifier).send();
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

/// Another session that blocks the server's database work until dropped: on SQLite it holds the
/// write lock (in WAL mode readers go on, so only writes wait, then fail with "database is
/// locked" after the busy timeout); on Postgres it holds `tables` in ACCESS EXCLUSIVE mode (the
/// server's statements on them wait, then hit the statement timeout).
struct Blocker {
    release: std::sync::mpsc::Sender<()>,
    holder: std::thread::JoinHandle<()>,
}

impl Blocker {
    fn hold(database_url: &str, tables: &[&str]) -> Self {
        use diesel::Connection;
        use diesel::connection::SimpleConnection;
        let (url, tables) = (database_url.to_owned(), tables.join(", "));
        let (locked_tx, locked_rx) = std::sync::mpsc::channel();
        let (release, release_rx) = std::sync::mpsc::channel::<()>();
        let holder = std::thread::spawn(move || {
            let run = |conn: &mut dyn FnMut(&str)| {
                conn("BEGIN");
                locked_tx.send(()).unwrap();
                let _ = release_rx.recv();
                conn("COMMIT");
            };
            if let Some(path) = url.strip_prefix("sqlite://") {
                let mut conn = diesel::SqliteConnection::establish(path).unwrap();
                conn.batch_execute("PRAGMA busy_timeout = 5000").unwrap();
                run(&mut |sql| {
                    let sql = if sql == "BEGIN" {
                        "BEGIN EXCLUSIVE"
                    } else {
                        sql
                    };
                    conn.batch_execute(sql).unwrap();
                });
            } else {
                let mut conn = diesel::PgConnection::establish(&url).unwrap();
                run(&mut |sql| {
                    let sql = if sql == "BEGIN" {
                        format!("BEGIN; LOCK TABLE {tables} IN ACCESS EXCLUSIVE MODE")
                    } else {
                        sql.to_owned()
                    };
                    conn.batch_execute(&sql).unwrap();
                });
            }
        });
        locked_rx.recv().unwrap();
        Self { release, holder }
    }

    fn release(self) {
        self.release.send(()).unwrap();
        self.holder.join().unwrap();
    }
}

/// Status, `Retry-After`, and the body of `response`.
async fn answer(
    response: reqwest::Response,
) -> (u16, Option<String>, reqwest::header::HeaderMap, String) {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let retry = headers
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, retry, headers, response.text().await.unwrap())
}

// A transient database failure (a statement or busy timeout while another session holds a
// lock) answers 503 + `Retry-After` in the shape of each endpoint family: the JSON API, the
// admin API, the token endpoint (RFC 6749 `temporarily_unavailable`), the hosted pages, and (on
// Postgres, where a reader can be made to wait) the bearer-protected endpoints. No body names
// the cause, and service resumes once the lock is gone.
async fn transient_database_failures_answer_503_in_every_family(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let mut args = env.args();
    args.db_statement_timeout = Some("1s".into());
    let app = env.spawn_with(args).await;
    let admin = app.admin_token().await;
    app.create_user("alice").await;
    let secret = app.create_webapp().await;
    let verifier = "v".repeat(50);
    let authorize = format!(
        "{}/authorize?response_type=code&client_id=webapp&redirect_uri={}&scope=openid&code_challenge={}&code_challenge_method=S256",
        app.address,
        enc(REDIRECT),
        pkce(&verifier)
    );
    let signed_in = sign_in(&browser(), &app.address, &authorize, "alice").await;
    let code = param(&location_params(&signed_in).1, "code").unwrap();

    let blocker = Blocker::hold(
        &env.database_url,
        &[
            "login_attempts",
            "authorization_codes",
            "authorization_requests",
            "clients",
        ],
    );
    let login = app.login("alice");
    let create_client = app
        .client
        .post(format!("{}/admin/clients", app.address))
        .bearer_auth(&admin)
        .json(&serde_json::json!({"client_id": "svc"}))
        .send();
    let redeem = exchange_at(&app.client, &app.address, &secret, &code, &verifier).send();
    let page = browser().get(&authorize).send();
    let (login, create_client, redeem, page) = tokio::join!(login, create_client, redeem, page);
    blocker.release();

    for (family, response) in [
        ("json api", login),
        ("admin api", create_client.unwrap()),
        ("token endpoint", redeem.unwrap()),
    ] {
        let (status, retry, headers, body) = answer(response).await;
        assert_eq!(status, 503, "{family}: {body}");
        assert_eq!(retry.as_deref(), Some("5"), "{family}");
        assert_eq!(headers["cache-control"], "no-store", "{family}");
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json["error"], "temporarily_unavailable", "{family}: {body}");
        for internal in ["lock", "statement", "database", "login_attempts"] {
            assert!(!body.contains(internal), "{family}: no internals: {body}");
        }
        if family == "token endpoint" {
            assert_eq!(headers["pragma"], "no-cache", "RFC 6749 §5.1");
        }
    }
    let (status, retry, headers, body) = answer(page.unwrap()).await;
    assert_eq!(status, 503, "hosted page: {body}");
    assert_eq!(retry.as_deref(), Some("5"), "hosted page");
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"),
        "hosted page"
    );
    assert!(body.contains("temporarily unavailable"), "{body}");

    if backend != Backend::Sqlite {
        let blocker = Blocker::hold(&env.database_url, &["access_tokens"]);
        let me = app.get_bearer("/api/me", &admin).await;
        blocker.release();
        let (status, retry, _, body) = answer(me).await;
        assert_eq!(status, 503, "bearer-protected: {body}");
        assert_eq!(retry.as_deref(), Some("5"), "bearer-protected");
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json["error"], "temporarily_unavailable", "{body}");
    }

    assert_eq!(app.login("alice").await.status(), 200, "service resumes");
}

on_both_backends!(transient_database_failures_answer_503_in_every_family);

// Through PgBouncer in transaction pooling the statement timeout still holds: it is set on each
// unit of work's transaction, not on a session that the pooler does not keep.
crate::on_pgbouncer!(transient_database_failures_answer_503_in_every_family);
