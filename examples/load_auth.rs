//! Load generator for `scripts/bench-auth` (loopback only, bounded by a duration).
//!
//! `load_auth refresh BASE_URL CONCURRENCY SECONDS`: each of CONCURRENCY clients logs in once,
//! then refreshes in a chain for SECONDS (every request rotates a distinct token).
//! `load_auth login BASE_URL CONCURRENCY SECONDS`: CONCURRENCY clients log in repeatedly while
//! one more client measures `GET /.well-known/jwks.json` latency.
//! `load_auth tokens BASE_URL COUNT 0`: logs in COUNT times and prints the refresh tokens, one
//! per line (for `scripts/refresh.lua` under wrk).
//! `load_auth code BASE_URL CONCURRENCY SECONDS`: each client signs in once at the hosted page
//! (client `bench-web`, secret in `BENCH_WEB_SECRET`), then loops: `GET /authorize` (silent, the
//! session exists) → `POST /token` (authorization_code + PKCE). Reports the exchange alone.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

const PASSWORD: &str = "benchmark passphrase";

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn report(name: &str, mut latencies: Vec<Duration>, errors: usize, elapsed: Duration) {
    latencies.sort();
    println!(
        "{name}: {} ok, {errors} errors, {:.1} req/s, p50 {:.2} ms, p99 {:.2} ms",
        latencies.len(),
        latencies.len() as f64 / elapsed.as_secs_f64(),
        percentile(&latencies, 0.50).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
    );
}

async fn login(client: &reqwest::Client, base: &str, username: &str) -> Option<String> {
    let response = client
        .post(format!("{base}/api/auth/login"))
        .json(&json!({"username": username, "password": PASSWORD}))
        .send()
        .await
        .ok()?;
    if !response.status().is_success() {
        return None;
    }
    let body: Value = response.json().await.ok()?;
    body["refresh_token"].as_str().map(str::to_owned)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, mode, base, concurrency, seconds] = args.as_slice() else {
        return Err("usage: load_auth refresh|login BASE_URL CONCURRENCY SECONDS".into());
    };
    let concurrency: usize = concurrency.parse()?;
    let duration = Duration::from_secs(seconds.parse()?);
    let client = reqwest::Client::new();
    let username = format!("bench-{}", std::process::id());
    client
        .post(format!("{base}/api/auth/register"))
        .json(&json!({"username": username, "email": format!("{username}@example.com"), "password": PASSWORD}))
        .send()
        .await?;

    if mode == "code" {
        return code_flow(base, concurrency, duration, &username).await;
    }

    if mode == "tokens" {
        for _ in 0..concurrency {
            match login(&client, base, &username).await {
                Some(token) => println!("{token}"),
                None => return Err("login failed".into()),
            }
        }
        return Ok(());
    }

    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (client, base, username, mode) =
            (client.clone(), base.clone(), username.clone(), mode.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0usize;
            let mut token = if mode == "refresh" {
                login(&client, &base, &username).await
            } else {
                None
            };
            while Instant::now() < deadline {
                let began = Instant::now();
                let ok = if mode == "refresh" {
                    let Some(current) = token.take() else { break };
                    let response = client
                        .post(format!("{base}/api/auth/refresh"))
                        .json(&json!({"refresh_token": current}))
                        .send()
                        .await;
                    match response {
                        Ok(r) if r.status().is_success() => {
                            let body: Value = r.json().await.unwrap_or_default();
                            token = body["refresh_token"].as_str().map(str::to_owned);
                            token.is_some()
                        }
                        _ => false,
                    }
                } else {
                    login(&client, &base, &username).await.is_some()
                };
                if ok {
                    latencies.push(began.elapsed());
                } else {
                    errors += 1;
                    if mode == "refresh" {
                        token = login(&client, &base, &username).await;
                    }
                }
            }
            (latencies, errors)
        }));
    }
    let jwks = (mode == "login").then(|| {
        let (client, base) = (client.clone(), base.clone());
        tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0usize;
            while Instant::now() < deadline {
                let began = Instant::now();
                let ok = match client
                    .get(format!("{base}/.well-known/jwks.json"))
                    .send()
                    .await
                {
                    Ok(r) if r.status().is_success() => r.bytes().await.is_ok(),
                    _ => false,
                };
                if ok {
                    latencies.push(began.elapsed());
                } else {
                    errors += 1;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            (latencies, errors)
        })
    });
    let mut all = Vec::new();
    let mut errors = 0;
    for task in tasks {
        let (latencies, task_errors) = task.await?;
        all.extend(latencies);
        errors += task_errors;
    }
    let elapsed = start.elapsed();
    report(mode, all, errors, elapsed);
    if let Some(jwks) = jwks {
        let (latencies, errors) = jwks.await?;
        report("jwks during the login storm", latencies, errors, elapsed);
    }
    Ok(())
}

const REDIRECT: &str = "http://127.0.0.1:9/cb";
const VERIFIER: &str = "benchmark-verifier-benchmark-verifier-benchmark";

fn hidden(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_owned())
}

fn code_of(response: &reqwest::Response) -> Option<String> {
    let location = response.headers().get("location")?.to_str().ok()?;
    url::Url::parse(location)
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
}

async fn code_flow(
    base: &str,
    concurrency: usize,
    duration: Duration,
    username: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    use base64::Engine;
    use sha2::Digest;
    let secret = std::env::var("BENCH_WEB_SECRET")?;
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(VERIFIER.as_bytes()));
    let authorize = format!(
        "{base}/authorize?response_type=code&client_id=bench-web&redirect_uri={}&scope=openid&code_challenge={challenge}&code_challenge_method=S256",
        url::form_urlencoded::byte_serialize(REDIRECT.as_bytes()).collect::<String>()
    );
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (authorize, base, username, secret) = (
            authorize.clone(),
            base.to_owned(),
            username.to_owned(),
            secret.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let browser = reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .ok()?;
            let page = browser
                .get(&authorize)
                .send()
                .await
                .ok()?
                .text()
                .await
                .ok()?;
            let signed_in = browser
                .post(format!("{base}/authorize/login"))
                .form(&[
                    ("request_id", hidden(&page, "request_id")?),
                    ("csrf_token", hidden(&page, "csrf_token")?),
                    ("username", username),
                    ("password", PASSWORD.to_owned()),
                ])
                .send()
                .await
                .ok()?;
            let mut code = code_of(&signed_in);
            let mut latencies = Vec::new();
            let mut errors = 0usize;
            while Instant::now() < deadline {
                let current = match code.take() {
                    Some(code) => code,
                    None => match browser.get(&authorize).send().await {
                        Ok(response) => match code_of(&response) {
                            Some(code) => code,
                            None => {
                                errors += 1;
                                continue;
                            }
                        },
                        Err(_) => {
                            errors += 1;
                            continue;
                        }
                    },
                };
                let began = Instant::now();
                let exchanged = browser
                    .post(format!("{base}/token"))
                    .basic_auth("bench-web", Some(&secret))
                    .form(&[
                        ("grant_type", "authorization_code"),
                        ("code", current.as_str()),
                        ("redirect_uri", REDIRECT),
                        ("code_verifier", VERIFIER),
                    ])
                    .send()
                    .await;
                match exchanged {
                    Ok(r) if r.status().is_success() => {
                        if r.bytes().await.is_ok() {
                            latencies.push(began.elapsed());
                        } else {
                            errors += 1;
                        }
                    }
                    _ => errors += 1,
                }
            }
            Some((latencies, errors))
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for task in tasks {
        match task.await? {
            Some((latencies, task_errors)) => {
                all.extend(latencies);
                errors += task_errors;
            }
            None => errors += 1,
        }
    }
    let elapsed = start.elapsed();
    println!(
        "(each loop also runs GET /authorize; throughput counts complete authorize + exchange loops)"
    );
    report("authorization-code exchange", all, errors, elapsed);
    Ok(())
}
