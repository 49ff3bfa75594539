//! Operations: request ids, graceful shutdown.

use std::time::Duration;

use crate::helpers::{
    Backend, ClientSpec, PASSWORD, REDIRECT, Sent, TestApp, TestEnv, browser, client_secret, enc,
    exchange_at, hidden, join_all, location_params, param, pkce, sample, wait_for, wait_until,
};
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
    let mut child = env
        .serve_command(&[("PORTCULLIS_SHUTDOWN_DRAIN", "2s")])
        .spawn()
        .unwrap();
    let (address, _, mut lines) = crate::helpers::wait_until_listening(&mut child).await;
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
    let get = &get;
    wait_until(
        "readiness answers 503 once shutdown began",
        // Within the drain (2 s), after which the listener stops.
        Duration::from_secs(2),
        || async move {
            get("/readyz").await.ok().map(|r| r.status())
                == Some(reqwest::StatusCode::SERVICE_UNAVAILABLE)
        },
    )
    .await;
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

// The janitor deletes only what has ended, in bounded batches; live grants are untouched.
async fn janitor_deletes_ended_rows_in_bounded_batches(backend: Backend) {
    use portcullis::db::queries::oauth::purge_expired;
    let env = TestEnv::new(backend).await;
    let app = env.spawn().await;
    app.user_token("carol", &[]).await;
    let (_, live) = app.tokens("carol").await;
    for _ in 0..3 {
        app.logout(&app.tokens("carol").await.1).await;
    }
    // "Ended before a minute from now": the three logged-out families qualify, live ones do not.
    let later = chrono::Utc::now().naive_utc() + chrono::Duration::minutes(1);
    let first = env
        .with_db(move |conn| {
            purge_expired(conn, chrono::Utc::now().naive_utc(), later, later, 1).unwrap()
        })
        .await;
    assert_eq!(
        first.refresh_families, 1,
        "bounded: one per kind per batch of 1"
    );
    let rest = env
        .with_db(move |conn| {
            purge_expired(conn, chrono::Utc::now().naive_utc(), later, later, 1000).unwrap()
        })
        .await;
    assert_eq!(rest.refresh_families, 2, "{rest:?}");
    assert!(rest.login_attempts <= 2);
    let again = env
        .with_db(move |conn| {
            purge_expired(conn, chrono::Utc::now().naive_utc(), later, later, 1000).unwrap()
        })
        .await;
    assert_eq!(again.refresh_families, 0);
    // The live session still refreshes.
    assert_eq!(app.refresh(&live).await.status(), 200);
}

// The scheduled janitor: a running server (the rotator instance) deletes a family that ended
// more than a day ago at its next run and counts it in /metrics; live sessions are untouched.
async fn janitor_runs_on_schedule_and_counts_deletions(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let app = env.spawn().await;
    app.user_token("carl", &[]).await;
    let (_, live) = app.tokens("carl").await;
    app.logout(&app.tokens("carl").await.1).await;
    let deleted = || async {
        sample(
            &app.metrics().await,
            "portcullis_janitor_deleted_rows_total{kind=\"refresh_families\"}",
        )
        .unwrap_or(0.0)
    };
    let before = deleted().await;
    // The logout happened two days ago, as far as the janitor can tell.
    let families = |conn: &mut portcullis::db::DbConn| {
        use diesel::prelude::*;
        use portcullis::db::schema::refresh_token_families::dsl::*;
        refresh_token_families
            .select((id, revoked_at.is_not_null()))
            .load::<(String, bool)>(conn)
            .unwrap()
    };
    env.with_db(|conn| {
        use diesel::prelude::*;
        use portcullis::db::schema::refresh_token_families::dsl::*;
        let two_days_ago = chrono::Utc::now().naive_utc() - chrono::Duration::days(2);
        diesel::update(refresh_token_families.filter(revoked_at.is_not_null()))
            .set(revoked_at.eq(two_days_ago))
            .execute(conn)
            .unwrap();
    })
    .await;
    let count_before = env.with_db(families).await.len();
    // The janitor's interval (5 minutes by default) passes; its next run is at the next tick.
    app.advance(Duration::from_secs(300));
    let env = &env;
    let rows = wait_for(
        "the janitor ran on its schedule",
        Duration::from_secs(10),
        || async move {
            let rows = env.with_db(families).await;
            rows.iter().all(|(_, revoked)| !revoked).then_some(rows)
        },
    )
    .await;
    assert_eq!(rows.len(), count_before - 1, "only the ended family");
    // The run counts what it deleted once it is done.
    wait_until("the run finished", Duration::from_secs(10), || async {
        deleted().await > before
    })
    .await;
    assert_eq!(deleted().await, before + 1.0, "counted in /metrics");
    assert_eq!(app.refresh(&live).await.status(), 200);
}

/// A server that cuts requests off after 1 s, and its `host:port`.
async fn with_request_timeout_of_1s(env: &TestEnv) -> (TestApp, String) {
    let app = env
        .spawn_with(portcullis::config::SettingsArgs {
            request_timeout: Some("1s".into()),
            ..env.args()
        })
        .await;
    let address = app.address.trim_start_matches("http://").to_owned();
    (app, address)
}

// DOS: a client that never finishes its headers gets 408 and is closed after the request timeout,
// while other clients are served; hostile bytes get 4xx in the endpoint's error shape, never 500.
async fn slow_and_hostile_requests_are_refused_cleanly(backend: Backend) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let env = TestEnv::new(backend).await;
    let (app, address) = with_request_timeout_of_1s(&env).await;
    let mut slow = tokio::net::TcpStream::connect(&address).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();
    assert_eq!(
        app.get("/healthz").await.status(),
        200,
        "others are served meanwhile"
    );
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), slow.read_to_end(&mut answer))
        .await
        .expect("the slow connection is closed")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );

    // Invalid UTF-8 and NUL bytes.
    let login = app
        .post_raw(
            "/api/auth/login",
            "application/json",
            b"{\"username\": \"\xff\xfe\", \"password\": \"x\"}".to_vec(),
        )
        .await;
    assert_eq!(login.status(), 400);
    assert_eq!(
        login.json::<serde_json::Value>().await.unwrap()["error"],
        "invalid_request"
    );
    let nul = app
        .client
        .post(format!("{}/api/auth/login", app.address))
        .json(&serde_json::json!({"username": "a\u{0}b", "password": "whatever it is"}))
        .sent()
        .await;
    assert!(nul.status().is_client_error(), "{}", nul.status());
    let authorize = app
        .get("/authorize?client_id=%FF%00&response_type=code")
        .await;
    assert_eq!(authorize.status(), 400);
    let token = app
        .post_raw(
            "/token",
            "application/x-www-form-urlencoded",
            b"grant_type=client_credentials&client_id=%00%FF&client_secret=\xff".to_vec(),
        )
        .await;
    assert_eq!(token.status(), 400);
    assert_eq!(
        token.json::<serde_json::Value>().await.unwrap()["error"],
        "invalid_request"
    );
    // Deeply nested JSON (DOS-02).
    let nested = "[".repeat(100_000);
    let deep = app
        .post_raw("/api/auth/login", "application/json", nested)
        .await;
    assert!(
        deep.status() == 400 || deep.status() == 413,
        "{}",
        deep.status()
    );
    assert_eq!(app.get("/healthz").await.status(), 200, "still serving");
}

// LOGIN-07/KEY-11: a server logging at debug level through logins, refreshes, an OAuth code flow
// and client_credentials never writes a token, code, secret, CSRF token or password; every
// request line carries its request id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_never_contain_secrets() {
    let env = TestEnv::new(Backend::Sqlite).await;
    let user_id = env.create_user("frank").await;
    let secret = client_secret(&env.create_client(ClientSpec::webapp()).await);
    let service_secret = client_secret(&env.create_client(ClientSpec::new("svc")).await);

    let serve = [
        ("PORTCULLIS_LOG", "debug"),
        ("PORTCULLIS_SHUTDOWN_DRAIN", "0s"),
    ];
    let mut child = env.serve_command(&serve).spawn().unwrap();
    let (address, mut log, mut lines) = crate::helpers::wait_until_listening(&mut child).await;
    let base = format!("http://{address}");
    let mut secrets = vec![PASSWORD.to_owned(), secret.clone(), service_secret.clone()];

    let http = reqwest::Client::new();
    let session: serde_json::Value = http
        .post(format!("{base}/api/auth/login"))
        .json(&serde_json::json!({"username": "frank", "password": PASSWORD}))
        .json_value()
        .await;
    let refreshed: serde_json::Value = http
        .post(format!("{base}/api/auth/refresh"))
        .json(&serde_json::json!({"refresh_token": session["refresh_token"]}))
        .json_value()
        .await;
    for value in [&session, &refreshed] {
        secrets.push(value["access_token"].as_str().unwrap().to_owned());
        secrets.push(value["refresh_token"].as_str().unwrap().to_owned());
    }
    let browser = browser();
    let verifier = "v".repeat(50);
    let page = browser
        .get(format!(
            "{base}/authorize?response_type=code&client_id=webapp&redirect_uri={}&scope=openid%20offline_access&code_challenge={}&code_challenge_method=S256",
            enc(REDIRECT),
            pkce(&verifier)
        ))
        .sent().await
        .text()
        .await
        .unwrap();
    let csrf = hidden(&page, "csrf_token");
    let redirect = browser
        .post(format!("{base}/authorize/login"))
        .form(&[
            ("request_id", hidden(&page, "request_id")),
            ("csrf_token", csrf.clone()),
            ("username", "frank".into()),
            ("password", PASSWORD.into()),
        ])
        .sent()
        .await;
    let code = param(&location_params(&redirect).1, "code").unwrap();
    let tokens: serde_json::Value = exchange_at(&http, &base, &secret, &code, &verifier)
        .json_value()
        .await;
    let cc: serde_json::Value = http
        .post(format!("{base}/token"))
        .basic_auth("svc", Some(&service_secret))
        .form(&[("grant_type", "client_credentials")])
        .json_value()
        .await;
    secrets.extend([csrf, code]);
    for key in ["access_token", "refresh_token", "id_token"] {
        secrets.push(tokens[key].as_str().unwrap().to_owned());
    }
    secrets.push(cc["access_token"].as_str().unwrap().to_owned());
    // A failed login whose name tries to forge a log line, and one with a wrong password.
    for (username, password) in [
        (
            "x\r\nINFO forged: admin signed in\r\n",
            "forged password one",
        ),
        ("frank", "forged password two"),
    ] {
        let refused = http
            .post(format!("{base}/api/auth/login"))
            .json(&serde_json::json!({"username": username, "password": password}))
            .sent()
            .await;
        assert_eq!(refused.status(), 401);
        secrets.push(password.to_owned());
    }

    let pid = child.id().unwrap().to_string();
    tokio::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    while let Ok(Some(line)) = lines.next_line().await {
        log.push_str(&line);
        log.push('\n');
    }
    assert!(child.wait().await.unwrap().success());
    assert!(
        log.contains("request_id="),
        "request lines carry their id:\n{log}"
    );
    // LOGIN-07: successes and failures are logged with the client IP and the user id...
    let user_id = user_id.as_str();
    let line_with = |needle: &str| {
        log.lines()
            .filter(|line| line.contains(needle))
            .collect::<Vec<_>>()
    };
    let failures = line_with("login failed: invalid credentials");
    assert_eq!(failures.len(), 2, "{log}");
    assert!(
        failures
            .iter()
            .all(|line| line.contains("client_ip=127.0.0.1"))
    );
    assert!(failures.iter().any(|line| line.contains(user_id)));
    assert!(
        line_with(" login")
            .iter()
            .any(|line| line.contains(user_id) && line.contains("client_ip=127.0.0.1")),
        "{log}"
    );
    // ...and user input never starts a line of its own.
    assert!(
        !log.lines()
            .any(|line| line.trim_start().starts_with("INFO forged")),
        "a forged log line:\n{log}"
    );
    for secret in &secrets {
        // Tokens are long; any 24-character piece of one would be a leak.
        let probe = &secret[..secret.len().min(24)];
        assert!(
            !log.contains(probe),
            "a secret ({}…) is in the log:\n{log}",
            &probe[..6]
        );
    }
}

// GET /metrics: requests per route and status, tokens per grant and algorithm, login refusals,
// key gauges and the next transition, the pool.
async fn metrics_describe_traffic_keys_and_the_pool(backend: Backend) {
    let env = TestEnv::new(backend).await;
    // The server's own registry counts only this test's requests; with key reloads an hour
    // apart, no background tick checks a connection out while the counts are compared.
    let app = env
        .spawn_with(portcullis::config::SettingsArgs {
            key_refresh_interval: Some("1h".into()),
            ..env.args()
        })
        .await;
    app.user_token("dave", &[]).await;
    app.get("/.well-known/jwks.json").await;
    let refused = app
        .client
        .post(format!("{}/api/auth/login", app.address))
        .json(&serde_json::json!({"username": "dave", "password": "not the password"}))
        .sent()
        .await;
    assert_eq!(refused.status(), 401);
    let response = app.get("/metrics").await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = response.text().await.unwrap();
    let exactly_one = |prefix: &str| {
        assert_eq!(sample(&text, prefix), Some(1.0), "{prefix} in\n{text}");
    };
    exactly_one(
        "portcullis_http_request_duration_seconds_count{route=\"/.well-known/jwks.json\",method=\"GET\",status=\"200\"}",
    );
    exactly_one("portcullis_tokens_issued_total{grant=\"password\",alg=\"ES256\"}");
    exactly_one("portcullis_login_refusals_total{kind=\"invalid_credentials\"}");
    exactly_one(
        "portcullis_http_request_duration_seconds_count{route=\"/api/auth/login\",method=\"POST\",status=\"401\"}",
    );
    assert_eq!(
        sample(
            &text,
            "portcullis_signing_keys{alg=\"ES256\",state=\"active\"}"
        ),
        Some(1.0)
    );
    assert!(sample(&text, "portcullis_next_key_transition_seconds").is_some_and(|v| v > 0.0));
    assert!(sample(&text, "portcullis_db_pool_connections").is_some_and(|v| v >= 1.0));

    // Counters move with exactly what happens.
    let value = |text: &str, name: &str| sample(text, name).unwrap_or(0.0);
    let (reuse, throttled, waits) = (
        "portcullis_refresh_token_reuse_total",
        "portcullis_login_refusals_total{kind=\"throttled\"}",
        "portcullis_db_pool_wait_seconds_count",
    );
    let (_, session) = app.tokens("dave").await;
    assert_eq!(app.refresh(&session).await.status(), 200);
    assert_eq!(app.refresh(&session).await.status(), 401, "reused");
    let mut statuses = Vec::new();
    for _ in 0..8 {
        let wrong = app
            .client
            .post(format!("{}/api/auth/login", app.address))
            .json(&serde_json::json!({"username": "dave", "password": "still not it"}))
            .sent()
            .await;
        statuses.push(wrong.status().as_u16());
    }
    assert!(statuses.contains(&429), "{statuses:?}");
    let refused_by_throttle = statuses.iter().filter(|s| **s == 429).count() as f64;
    let after = app.get("/metrics").await.text().await.unwrap();
    assert_eq!(
        value(&after, reuse),
        value(&text, reuse) + 1.0,
        "reuse counted"
    );
    assert_eq!(
        value(&after, throttled),
        value(&text, throttled) + refused_by_throttle,
        "throttle counted"
    );
    // Each checkout is timed once: three readiness probes (one ping each), and the scrape's own
    // listing of the key schedule.
    for _ in 0..3 {
        assert_eq!(app.get("/readyz").await.status(), 200);
    }
    let last = app.get("/metrics").await.text().await.unwrap();
    assert_eq!(
        value(&last, waits),
        value(&after, waits) + 4.0,
        "checkouts timed"
    );
    for secret in ["password", "refresh_token\":"] {
        assert!(
            !text.contains(&format!("{secret}=")),
            "no secrets in metrics"
        );
    }
}

/// Sends `bytes` on a fresh connection, then reads until the server closes it (at most 10 s).
async fn raw_exchange(address: &str, bytes: &[u8], then_stall: bool) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    // The server may refuse before it has read everything: a failed write is part of the test.
    let _ = stream.write_all(bytes).await;
    if !then_stall {
        let _ = stream.shutdown().await;
    }
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
        .await
        .expect("the server closes the connection");
    // A reset after the answer is as good as a close.
    if let Err(error) = read {
        assert_eq!(error.kind(), std::io::ErrorKind::ConnectionReset, "{error}");
    }
    String::from_utf8_lossy(&answer).into_owned()
}

// DOS-04/05/06: connections that never send a byte and bodies sent too slowly are cut off after
// the request timeout (408, connection closed); oversized header sections are refused (431/400)
// without harm; CR/LF in a value reflected into `Location` is percent-encoded, never a new
// header. Other clients are served throughout.
async fn hostile_connections_headers_and_redirects(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let (app, address) = with_request_timeout_of_1s(&env).await;

    // DOS-06: a connection that never sends a byte is closed; a body that stops arriving gets
    // 408 in the endpoint's error shape, and the connection is closed. The three connections
    // wait out the request timeout side by side.
    let stalled: Vec<(&str, String)> = [
        (
            "/token",
            "application/x-www-form-urlencoded",
            "grant_type=clie",
        ),
        ("/api/auth/login", "application/json", "{\"username\": \"a"),
    ]
    .into_iter()
    .map(|(path, content_type, start)| {
        (
            path,
            format!(
                "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\nContent-Length: 200\r\n\r\n{start}"
            ),
        )
    })
    .collect();
    let (silent, answers) = tokio::join!(
        raw_exchange(&address, b"", true),
        join_all(stalled.iter().map(|(_, request)| raw_exchange(
            &address,
            request.as_bytes(),
            true
        ))),
    );
    assert!(
        silent.is_empty() || silent.starts_with("HTTP/1.1 408"),
        "{silent}"
    );
    for ((path, _), answer) in stalled.iter().zip(answers) {
        assert!(answer.starts_with("HTTP/1.1 408"), "{path}: {answer}");
        assert!(
            answer.contains("\"error\":\"invalid_request\""),
            "{path}: {answer}"
        );
    }

    // DOS-05: 1 000 headers, one 100 kB header, a 64 kB cookie.
    let many: String = (0..1000).map(|i| format!("X-H{i}: v\r\n")).collect();
    let long = format!("X-Long: {}\r\n", "a".repeat(100_000));
    let cookie = format!("Cookie: c={}\r\n", "b".repeat(64 * 1024));
    for (what, headers) in [("many", many), ("long", long), ("cookie", cookie)] {
        let request = format!("GET /.well-known/jwks.json HTTP/1.1\r\nHost: x\r\n{headers}\r\n");
        let answer = raw_exchange(&address, request.as_bytes(), false).await;
        assert!(
            answer.starts_with("HTTP/1.1 431"),
            "{what}: {}",
            answer.lines().next().unwrap_or_default()
        );
        assert_eq!(
            app.get("/healthz").await.status(),
            200,
            "healthy after {what}"
        );
    }

    // DOS-04: CR/LF in `state`, reflected into the error redirect, stays inside the query.
    app.create_client(ClientSpec::new("web").redirect_uri(REDIRECT))
        .await;
    let response = app
        .client
        .get(format!(
            "{}/authorize?response_type=code&client_id=web&redirect_uri={}&scope=bogus&state=x%0D%0ASet-Cookie:%20evil=1%0D%0A",
            app.address,
            enc(REDIRECT)
        ))
        .sent().await;
    assert_eq!(response.status(), 303);
    assert!(
        response
            .headers()
            .get_all("set-cookie")
            .iter()
            .all(|c| !c.to_str().unwrap_or_default().contains("evil")),
        "no injected header"
    );
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.contains("state=x%0D%0ASet-Cookie"), "{location}");
    assert!(!location.contains('\r') && !location.contains('\n'));
    assert_eq!(app.get("/healthz").await.status(), 200);
}

on_both_backends!(
    janitor_runs_on_schedule_and_counts_deletions,
    hostile_connections_headers_and_redirects,
    metrics_describe_traffic_keys_and_the_pool,
    slow_and_hostile_requests_are_refused_cleanly,
    every_response_carries_a_request_id,
    janitor_deletes_ended_rows_in_bounded_batches,
);
