//! The authorization-code flow in a real browser: headless Chromium, driven over the W3C
//! WebDriver protocol (chromedriver), opens the authorization URL, types into the hosted login
//! form, submits it, and lands on the client's redirect URI with a code that then redeems.
//!
//! `.ci/run` installs chromium and chromium-driver and sets `PORTCULLIS_REQUIRE_BROWSER=1`, which
//! makes a missing browser a failure. Elsewhere, without chromedriver, the test prints that it
//! did not run.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{
    Backend, ClientSpec, PASSWORD, Sent, TestEnv, client_secret, enc, pkce, wait_until,
};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

fn find_program(name: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain(["/usr/bin".into(), "/usr/lib/chromium".into()])
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
}

/// A minimal W3C WebDriver session.
struct WebDriver {
    http: reqwest::Client,
    base: String,
}

impl WebDriver {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response: Value = request.json_value().await;
        assert!(
            response["value"]["error"].is_null(),
            "WebDriver {path}: {response}"
        );
        response["value"].clone()
    }

    async fn element(&self, css: &str) -> String {
        let found = self
            .call(
                reqwest::Method::POST,
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        found[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element {css}: {found}"))
            .to_owned()
    }
}

/// Stops chromedriver's browsers when the test ends, even by a panic (chromium outlives a killed
/// chromedriver otherwise).
struct KillBrowsers(u32);

impl Drop for KillBrowsers {
    fn drop(&mut self) {
        let _ = std::process::Command::new("pkill")
            .args(["-KILL", "-P", &self.0.to_string()])
            .status();
    }
}

/// Waits for one HTTP request on `listener` and returns its request target.
async fn callback(listener: tokio::net::TcpListener) -> String {
    let (mut stream, _) = listener.accept().await.unwrap();
    let mut buffer = vec![0u8; 8192];
    let read = stream.read(&mut buffer).await.unwrap();
    let head = String::from_utf8_lossy(&buffer[..read]).into_owned();
    let target = head.split(' ').nth(1).unwrap_or_default().to_owned();
    let _ = stream
        .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
        .await;
    target
}

/// A headless Chromium under chromedriver, for one test: the WebDriver session, and what keeps
/// the browser alive (dropping it stops chromedriver and its browsers).
struct Launched {
    browser: WebDriver,
    // Dropped first: the browsers are found as chromedriver's children, so before it goes.
    _browsers: KillBrowsers,
    _chromedriver: tokio::process::Child,
}

/// Starts chromedriver and a headless Chromium session, or `None` (after saying so) when they
/// are not installed and `PORTCULLIS_REQUIRE_BROWSER` is not set.
async fn launch() -> Option<Launched> {
    let (Some(driver), Some(chromium)) = (
        find_program("chromedriver"),
        find_program("chromium").or_else(|| find_program("chromium-browser")),
    ) else {
        assert!(
            std::env::var("PORTCULLIS_REQUIRE_BROWSER").is_err(),
            "PORTCULLIS_REQUIRE_BROWSER is set but chromium/chromedriver are not installed"
        );
        eprintln!(
            "BROWSER TEST DID NOT RUN: chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)"
        );
        return None;
    };
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let chromedriver = tokio::process::Command::new(driver)
        .arg(format!("--port={port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let browsers = KillBrowsers(chromedriver.id().unwrap_or_default());
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let status = format!("{base}/status");
    let (http_ref, status) = (&http, status.as_str());
    wait_until(
        "chromedriver started",
        Duration::from_secs(10),
        || async move {
            match http_ref.get(status).send().await {
                Ok(response) => response
                    .json::<Value>()
                    .await
                    .map(|v| v["value"]["ready"] == true)
                    .unwrap_or(false),
                Err(_) => false,
            }
        },
    )
    .await;
    let session = WebDriver {
        http: http.clone(),
        base: base.clone(),
    }
    .call(
        reqwest::Method::POST,
        "/session",
        Some(json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
            },
        }}})),
    )
    .await;
    Some(Launched {
        browser: WebDriver {
            http,
            base: format!("{base}/session/{}", session["sessionId"].as_str().unwrap()),
        },
        _chromedriver: chromedriver,
        _browsers: browsers,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_browser_signs_in_on_the_hosted_page() {
    let Some(launched) = launch().await else {
        return;
    };
    let browser = &launched.browser;

    let env = TestEnv::new(Backend::Sqlite).await;
    let app = env.spawn().await;
    app.create_user("alice").await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let redirect = format!(
        "http://127.0.0.1:{}/cb",
        listener.local_addr().unwrap().port()
    );
    let client = app
        .create_client(
            ClientSpec::new("browser-app")
                .redirect_uri(&redirect)
                .first_party(),
        )
        .await;
    let secret = client_secret(&client);

    let verifier = "browser-verifier-".repeat(4);
    let url = format!(
        "{}/authorize?response_type=code&client_id=browser-app&redirect_uri={}&scope=openid&state=from-the-browser&code_challenge={}&code_challenge_method=S256",
        app.address,
        enc(&redirect),
        pkce(&verifier)
    );
    let landed = tokio::spawn(callback(listener));
    browser
        .call(reqwest::Method::POST, "/url", Some(json!({"url": url})))
        .await;
    let title = browser.call(reqwest::Method::GET, "/title", None).await;
    assert!(title.as_str().unwrap().contains("Sign in"), "{title}");
    let username = browser.element("input[name=username]").await;
    browser
        .call(
            reqwest::Method::POST,
            &format!("/element/{username}/value"),
            Some(json!({"text": "alice"})),
        )
        .await;
    let password = browser.element("input[name=password]").await;
    browser
        .call(
            reqwest::Method::POST,
            &format!("/element/{password}/value"),
            Some(json!({"text": PASSWORD})),
        )
        .await;
    let submit = browser.element("button[type=submit]").await;
    browser
        .call(
            reqwest::Method::POST,
            &format!("/element/{submit}/click"),
            Some(json!({})),
        )
        .await;

    let target = tokio::time::timeout(Duration::from_secs(30), landed)
        .await
        .expect("the browser reached the redirect URI")
        .unwrap();
    let params: Vec<(String, String)> = url::form_urlencoded::parse(
        target
            .split_once('?')
            .map(|(_, q)| q)
            .unwrap_or("")
            .as_bytes(),
    )
    .into_owned()
    .collect();
    let get = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    assert!(target.starts_with("/cb?"), "{target}");
    assert_eq!(get("state").as_deref(), Some("from-the-browser"));
    assert_eq!(get("iss").as_deref(), Some(app.issuer.as_str()));
    let code = get("code").expect("a code");

    let tokens: Value = app
        .client
        .post(format!("{}/token", app.address))
        .basic_auth("browser-app", Some(&secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", redirect.as_str()),
            ("code_verifier", verifier.as_str()),
        ])
        .json_value()
        .await;
    assert!(tokens["id_token"].is_string(), "{tokens}");
    browser.call(reqwest::Method::DELETE, "", None).await;
}

/// One HTTP request as a relying party's callback received it.
#[derive(Debug)]
struct Received {
    method: String,
    /// The request target: path and query.
    target: String,
    /// Header names in lower case, values as sent.
    headers: Vec<(String, String)>,
    body: String,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Waits for the next HTTP request on `listener` (connections that send nothing, such as a
/// browser's preconnects, are skipped, and so are requests for `/favicon.ico`), reads it whole (headers and a `Content-Length` body),
/// answers `200 ok` and returns it.
async fn receive(listener: &tokio::net::TcpListener) -> Received {
    loop {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut data = Vec::new();
        let mut buffer = [0u8; 8192];
        let head_end = loop {
            if let Some(at) = data.windows(4).position(|w| w == b"\r\n\r\n") {
                break Some(at);
            }
            match tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buffer)).await {
                Ok(Ok(0)) | Err(_) | Ok(Err(_)) => break None,
                Ok(Ok(read)) => data.extend_from_slice(&buffer[..read]),
            }
        };
        let Some(head_end) = head_end else {
            continue;
        };
        let head = String::from_utf8_lossy(&data[..head_end]).into_owned();
        let mut lines = head.split("\r\n");
        let mut request_line = lines.next().unwrap_or_default().split(' ');
        let method = request_line.next().unwrap_or_default().to_owned();
        let target = request_line.next().unwrap_or_default().to_owned();
        let headers: Vec<(String, String)> = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let length: usize = headers
            .iter()
            .find(|(k, _)| k == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = data[head_end + 4..].to_vec();
        while body.len() < length {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(read) => body.extend_from_slice(&buffer[..read]),
            }
        }
        if target == "/favicon.ico" {
            // The browser asks for the icon of the page it just showed.
            let _ = stream
                .write_all(
                    b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                )
                .await;
            continue;
        }
        let _ = stream
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
            .await;
        return Received {
            method,
            target,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        };
    }
}

/// A form-encoded body's parameter.
fn form_param(body: &str, name: &str) -> Option<String> {
    url::form_urlencoded::parse(body.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Asserts the form-post checks of the certification suite on a callback
/// (`CheckCallbackHttpMethodIsPost`, `CheckCallbackContentTypeIsFormUrlEncoded`,
/// `RejectAuthCodeInUrlQuery`, `RejectErrorInUrlQuery`).
fn assert_form_posted(received: &Received, path: &str) {
    assert_eq!(received.method, "POST", "{received:?}");
    assert_eq!(received.target, path, "nothing in the query: {received:?}");
    assert_eq!(
        received.header("content-type"),
        Some("application/x-www-form-urlencoded"),
        "{received:?}"
    );
}

/// Types `text` into the element `css`.
async fn type_into(browser: &WebDriver, css: &str, text: &str) {
    let element = browser.element(css).await;
    browser
        .call(
            reqwest::Method::POST,
            &format!("/element/{element}/value"),
            Some(json!({ "text": text })),
        )
        .await;
}

/// Clicks the element `css`.
async fn click(browser: &WebDriver, css: &str) {
    let element = browser.element(css).await;
    browser
        .call(
            reqwest::Method::POST,
            &format!("/element/{element}/click"),
            Some(json!({})),
        )
        .await;
}

// Issue 15 item 5 in a real browser: with `response_mode=form_post` the page the server answers
// posts the error (a request without response_type) and then, after the hosted login, the code
// to the client's callback — `POST`, `application/x-www-form-urlencoded`, nothing in the query —
// which only works if Chromium runs the page's script under its CSP (hash) and the CSP's
// `form-action` lets the form go to the redirect URI.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_browser_form_posts_the_response() {
    let Some(launched) = launch().await else {
        return;
    };
    let browser = &launched.browser;
    let env = TestEnv::new(Backend::Sqlite).await;
    let app = env.spawn().await;
    app.create_user("alice").await;
    let listener = std::sync::Arc::new(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap());
    let redirect = format!(
        "http://127.0.0.1:{}/cb",
        listener.local_addr().unwrap().port()
    );
    let client = app
        .create_client(ClientSpec::new("rp").redirect_uri(&redirect).first_party())
        .await;
    let secret = client_secret(&client);
    let verifier = "form-post-verifier-".repeat(3);
    let query = format!(
        "client_id=rp&redirect_uri={}&scope=openid&state=st-1&code_challenge={}&code_challenge_method=S256&response_mode=form_post",
        enc(&redirect),
        pkce(&verifier)
    );
    let expect = |listener: &std::sync::Arc<tokio::net::TcpListener>| {
        let listener = listener.clone();
        tokio::spawn(async move { receive(&listener).await })
    };

    let landed = expect(&listener);
    browser
        .call(
            reqwest::Method::POST,
            "/url",
            Some(json!({ "url": format!("{}/authorize?{query}", app.address) })),
        )
        .await;
    let error = tokio::time::timeout(Duration::from_secs(30), landed)
        .await
        .expect("the error was posted to the callback")
        .unwrap();
    assert_form_posted(&error, "/cb");
    assert_eq!(
        form_param(&error.body, "error").as_deref(),
        Some("invalid_request")
    );
    assert_eq!(form_param(&error.body, "state").as_deref(), Some("st-1"));
    assert_eq!(
        form_param(&error.body, "iss").as_deref(),
        Some(app.issuer.as_str())
    );

    let landed = expect(&listener);
    browser
        .call(
            reqwest::Method::POST,
            "/url",
            Some(json!({ "url": format!("{}/authorize?response_type=code&{query}", app.address) })),
        )
        .await;
    type_into(browser, "input[name=username]", "alice").await;
    type_into(browser, "input[name=password]", PASSWORD).await;
    click(browser, "button[type=submit]").await;
    let success = tokio::time::timeout(Duration::from_secs(30), landed)
        .await
        .expect("the code was posted to the callback")
        .unwrap();
    assert_form_posted(&success, "/cb");
    assert_eq!(form_param(&success.body, "state").as_deref(), Some("st-1"));
    assert_eq!(
        form_param(&success.body, "iss").as_deref(),
        Some(app.issuer.as_str())
    );
    let code = form_param(&success.body, "code").expect("a code");
    let tokens = app
        .client
        .post(format!("{}/token", app.address))
        .basic_auth("rp", Some(&secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", redirect.as_str()),
            ("code_verifier", verifier.as_str()),
        ])
        .json_value()
        .await;
    assert!(tokens["id_token"].is_string(), "{tokens}");
    browser.call(reqwest::Method::DELETE, "", None).await;
}

/// The single-page app of [`a_single_page_app_signs_in_and_calls_the_api_cross_origin`]: one
/// page, served at `/` and `/callback`, whose script does what an SPA's OpenID library does —
/// discovery, authorization code + PKCE (S256 by WebCrypto) as a public client, the code
/// redeemed with `fetch()` at the token endpoint, userinfo with the bearer token — all
/// cross-origin, and reports what it could read in `#result` and the title (`done` or `error`).
const SPA_PAGE: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>spa</title></head>
<body><pre id="result"></pre>
<script>
const ISSUER = "__ISSUER__";
const CLIENT_ID = "spa";
const REDIRECT_URI = location.origin + "/callback";
const b64url = (bytes) => btoa(String.fromCharCode(...new Uint8Array(bytes)))
  .replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
const random = (n) => b64url(crypto.getRandomValues(new Uint8Array(n)));
function report(title, value) {
  document.getElementById("result").textContent = JSON.stringify(value);
  document.title = title;
}
async function main() {
  const config = await (await fetch(ISSUER + "/.well-known/openid-configuration")).json();
  if (location.pathname !== "/callback") {
    const verifier = random(32), state = random(16);
    sessionStorage.setItem("verifier", verifier);
    sessionStorage.setItem("state", state);
    const challenge = b64url(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
    location.assign(config.authorization_endpoint + "?" + new URLSearchParams({
      response_type: "code", client_id: CLIENT_ID, redirect_uri: REDIRECT_URI,
      scope: "openid profile", state, code_challenge: challenge, code_challenge_method: "S256",
    }));
    return;
  }
  const params = new URLSearchParams(location.search);
  if (params.get("state") !== sessionStorage.getItem("state")) throw new Error("state mismatch");
  const redeem = () => fetch(config.token_endpoint, {
    method: "POST",
    body: new URLSearchParams({
      grant_type: "authorization_code", code: params.get("code"), redirect_uri: REDIRECT_URI,
      client_id: CLIENT_ID, code_verifier: sessionStorage.getItem("verifier"),
    }),
  });
  const token = await redeem();
  const tokens = await token.json();
  const userinfo = await fetch(config.userinfo_endpoint, {
    headers: { Authorization: "Bearer " + tokens.access_token },
  });
  const claims = await userinfo.json();
  let introspection;
  try {
    await fetch(config.introspection_endpoint, {
      method: "POST", body: new URLSearchParams({ client_id: CLIENT_ID, token: tokens.access_token }),
    });
    introspection = "readable";
  } catch (e) {
    introspection = "blocked";
  }
  const replay = await redeem();
  report("done", {
    token_status: token.status,
    token_type: tokens.token_type,
    id_token: typeof tokens.id_token,
    userinfo_status: userinfo.status,
    sub: claims.sub,
    introspection,
    replay_status: replay.status,
    replay_error: (await replay.json()).error,
  });
}
main().catch((e) => report("error", { error: String(e) }));
</script></body></html>"#;

/// Serves `page` to every request on `listener` (a 404 for `/favicon.ico`), until aborted.
async fn serve_page(listener: tokio::net::TcpListener, page: String) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            continue;
        };
        let page = page.clone();
        tokio::spawn(async move {
            let mut data = Vec::new();
            let mut buffer = [0u8; 8192];
            while !data.windows(4).any(|w| w == b"\r\n\r\n") {
                match tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buffer)).await
                {
                    Ok(Ok(read)) if read > 0 => data.extend_from_slice(&buffer[..read]),
                    _ => return,
                }
            }
            let head = String::from_utf8_lossy(&data);
            let target = head.split(' ').nth(1).unwrap_or_default();
            let response = if target == "/favicon.ico" {
                "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                    .to_owned()
            } else {
                format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\ncache-control: no-store\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{page}",
                    page.len()
                )
            };
            let _ = stream.write_all(response.as_bytes()).await;
        });
    }
}

// Issue 15 item 7 in a real browser (CORS-01, KEY-03): a single-page app served on another
// loopback origin signs in as a public client with code + PKCE (S256 by WebCrypto), then reads
// discovery, redeems its code at /token and calls /userinfo with fetch() — cross-origin, which
// works only if the server answers CORS (userinfo's bearer header needs a preflight). The
// browser itself keeps the page from reading introspection (no CORS there) and lets it read the
// invalid_grant of a replayed code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_page_app_signs_in_and_calls_the_api_cross_origin() {
    let Some(launched) = launch().await else {
        return;
    };
    let browser = &launched.browser;
    let env = TestEnv::new(Backend::Sqlite).await;
    let app = env.spawn().await;
    let user_id = app.create_user("alice").await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let spa_origin = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    app.create_client(
        ClientSpec::new("spa")
            .public()
            .first_party()
            .redirect_uri(&format!("{spa_origin}/callback")),
    )
    .await;
    let server = tokio::spawn(serve_page(
        listener,
        SPA_PAGE.replace("__ISSUER__", &app.issuer),
    ));

    browser
        .call(
            reqwest::Method::POST,
            "/url",
            Some(json!({ "url": format!("{spa_origin}/") })),
        )
        .await;
    let title = |browser: &WebDriver| {
        let request = browser.http.get(format!("{}/title", browser.base));
        async move {
            let value: Value = request.json_value().await;
            value["value"].as_str().unwrap_or_default().to_owned()
        }
    };
    crate::helpers::wait_until(
        "the SPA sent the browser to the login page",
        Duration::from_secs(30),
        || {
            let title = title(browser);
            async move { title.await.contains("Sign in") }
        },
    )
    .await;
    type_into(browser, "input[name=username]", "alice").await;
    type_into(browser, "input[name=password]", PASSWORD).await;
    click(browser, "button[type=submit]").await;
    let finished = crate::helpers::wait_for("the SPA finished", Duration::from_secs(30), || {
        let title = title(browser);
        async move {
            let title = title.await;
            (title == "done" || title == "error").then_some(title)
        }
    })
    .await;
    let result = browser
        .call(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({
                "script": "return document.getElementById('result').textContent",
                "args": [],
            })),
        )
        .await;
    let result: Value = serde_json::from_str(result.as_str().unwrap()).unwrap();
    assert_eq!(finished, "done", "{result}");
    assert_eq!(result["token_status"], 200, "{result}");
    assert_eq!(result["token_type"], "Bearer", "{result}");
    assert_eq!(result["id_token"], "string", "{result}");
    assert_eq!(result["userinfo_status"], 200, "{result}");
    assert_eq!(result["sub"], user_id.as_str(), "{result}");
    assert_eq!(
        result["introspection"], "blocked",
        "no CORS on introspection: {result}"
    );
    assert_eq!(result["replay_status"], 400, "{result}");
    assert_eq!(result["replay_error"], "invalid_grant", "{result}");
    server.abort();
    browser.call(reqwest::Method::DELETE, "", None).await;
}

/// Where the account page's screenshots go: `target/screenshots/` of this checkout (CI keeps
/// that directory as an artefact).
fn screenshot_dir() -> std::path::PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("screenshots")
}

/// Saves the browser's viewport as `target/screenshots/{name}.png`.
async fn screenshot(browser: &WebDriver, name: &str) {
    use base64::Engine;
    let png = browser
        .call(reqwest::Method::GET, "/screenshot", None)
        .await;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(png.as_str().expect("a base64 PNG"))
        .expect("base64");
    let dir = screenshot_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.png"));
    std::fs::write(&path, bytes).unwrap();
    println!("screenshot: {}", path.display());
}

/// The page's title.
async fn page_title(browser: &WebDriver) -> String {
    browser
        .call(reqwest::Method::GET, "/title", None)
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Waits until the page's title contains `text`.
async fn wait_for_title(browser: &WebDriver, text: &str) {
    crate::helpers::wait_until(
        &format!("a page titled {text}"),
        Duration::from_secs(30),
        || async move { page_title(browser).await.contains(text) },
    )
    .await;
}

// Issue 17 item 5 in a real browser, without scripts on our pages: the account page sends the
// browser through the hosted login and back, the profile saves, an application approved in
// the same browser shows as connected with the browser's session, and "sign out everywhere"
// lands on the sign-in. Screenshots of each step go to target/screenshots/account-*.png.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_browser_walks_the_account_page() {
    let Some(launched) = launch().await else {
        return;
    };
    let browser = &launched.browser;
    browser
        .call(
            reqwest::Method::POST,
            "/window/rect",
            Some(json!({"width": 1100, "height": 2600})),
        )
        .await;
    let env = TestEnv::new(Backend::Sqlite).await;
    let app = env.spawn().await;
    app.create_user("alice").await;
    // A login through the JSON API: a device of its own on the page.
    app.tokens("alice").await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let redirect = format!(
        "http://127.0.0.1:{}/cb",
        listener.local_addr().unwrap().port()
    );
    app.create_client(ClientSpec::new("partner-app").redirect_uri(&redirect))
        .await;

    let open = |path: String| async move {
        browser
            .call(reqwest::Method::POST, "/url", Some(json!({ "url": path })))
            .await;
    };
    open(format!("{}/account", app.address)).await;
    wait_for_title(browser, "Sign in").await;
    screenshot(browser, "account-1-sign-in").await;
    type_into(browser, "input[name=username]", "alice").await;
    type_into(browser, "input[name=password]", PASSWORD).await;
    click(browser, "button[type=submit]").await;
    wait_for_title(browser, "Your account").await;
    screenshot(browser, "account-2-signed-in").await;

    type_into(browser, "#name", "Alice Liddell").await;
    type_into(browser, "#locale", "en-GB").await;
    click(browser, "#profile button[type=submit]").await;
    crate::helpers::wait_until(
        "the profile saved",
        Duration::from_secs(30),
        || async move {
            let url = browser.call(reqwest::Method::GET, "/url", None).await;
            url.as_str().unwrap_or_default().contains("done=profile")
        },
    )
    .await;
    browser.element("#notice").await;
    screenshot(browser, "account-3-profile-saved").await;

    // An application approved in this browser.
    let verifier = "account-page-verifier-".repeat(3);
    let landed = tokio::spawn(callback(listener));
    open(format!(
        "{}/authorize?response_type=code&client_id=partner-app&redirect_uri={}&scope=openid%20email&state=s&code_challenge={}&code_challenge_method=S256",
        app.address,
        enc(&redirect),
        pkce(&verifier)
    ))
    .await;
    click(browser, "button[value=approve]").await;
    tokio::time::timeout(Duration::from_secs(30), landed)
        .await
        .expect("the browser reached the application")
        .unwrap();
    open(format!("{}/account#sessions", app.address)).await;
    wait_for_title(browser, "Your account").await;
    browser
        .element("tr.application[data-client=partner-app]")
        .await;
    browser.element("tr.grant").await;
    screenshot(browser, "account-4-sessions-and-applications").await;

    click(browser, "#sessions form.inline button[type=submit]").await;
    wait_for_title(browser, "Sign in").await;
    screenshot(browser, "account-5-signed-out-everywhere").await;
    open(format!("{}/account", app.address)).await;
    wait_for_title(browser, "Sign in").await;
    browser.call(reqwest::Method::DELETE, "", None).await;
}

// Issue 18 item 1 (DEVICE-01 end to end): the device grant driven as a CLI drives it — the
// `openidconnect` crate's device flow (discovery, the device authorization request, then polling
// the token endpoint at the interval the server sets) — while the user, in headless Chromium,
// opens `verification_uri_complete`, signs in on the hosted login, finds the code filled in and
// confirms it, reads which application asks and that a device will act as them, and allows it.
// The polling client's waits move the server's clock (a short real pause lets the browser go on).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_is_signed_in_from_a_real_browser() {
    use openidconnect::core::{CoreClient, CoreDeviceAuthorizationResponse, CoreProviderMetadata};
    use openidconnect::{ClientId, DeviceAuthorizationUrl, IssuerUrl, OAuth2TokenResponse, Scope};

    let Some(launched) = launch().await else {
        return;
    };
    let browser = &launched.browser;
    let env = TestEnv::new(Backend::Sqlite).await;
    let app = env.spawn().await;
    let user_id = app.create_user("alice").await;
    app.create_client(
        ClientSpec::new("tv-cli")
            .public()
            .grant_type(portcullis::oidc::clients::GrantType::DeviceCode)
            .grant_type(portcullis::oidc::clients::GrantType::RefreshToken),
    )
    .await;

    // The device: discovery, then the device authorization request.
    let http = crate::helpers::rp_http(
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
    );
    let metadata =
        CoreProviderMetadata::discover_async(IssuerUrl::new(app.issuer.clone()).unwrap(), &http)
            .await
            .expect("discovery");
    let discovery: Value = app
        .client
        .get(format!("{}/.well-known/openid-configuration", app.address))
        .json_value()
        .await;
    let endpoint = discovery["device_authorization_endpoint"]
        .as_str()
        .expect("advertised")
        .to_owned();
    let client = CoreClient::from_provider_metadata(metadata, ClientId::new("tv-cli".into()), None)
        .set_device_authorization_url(DeviceAuthorizationUrl::new(endpoint).unwrap());
    let details: CoreDeviceAuthorizationResponse = client
        .exchange_device_code()
        .add_scope(Scope::new("offline_access".into()))
        .request_async(&http)
        .await
        .expect("device authorization");
    let user_code = details.user_code().secret().clone();
    let complete = details
        .verification_uri_complete()
        .expect("verification_uri_complete")
        .secret()
        .clone();
    assert_eq!(details.interval(), Duration::from_secs(5));

    // The device polls while the user acts.
    let app_ref = &app;
    let polling = async {
        client
            .exchange_device_access_token(&details)
            .unwrap()
            .request_async(
                &http,
                |interval| async move {
                    app_ref.advance(interval);
                    tokio::time::sleep(Duration::from_millis(300)).await;
                },
                None,
            )
            .await
    };
    let user = async {
        browser
            .call(
                reqwest::Method::POST,
                "/url",
                Some(json!({ "url": complete })),
            )
            .await;
        wait_for_title(browser, "Sign in").await;
        type_into(browser, "input[name=username]", "alice").await;
        type_into(browser, "input[name=password]", PASSWORD).await;
        click(browser, "button[type=submit]").await;
        wait_for_title(browser, "Connect a device").await;
        let field = browser.element("input[name=user_code]").await;
        let filled = browser
            .call(
                reqwest::Method::GET,
                &format!("/element/{field}/property/value"),
                None,
            )
            .await;
        assert_eq!(
            filled.as_str(),
            Some(user_code.as_str()),
            "the code is filled in"
        );
        screenshot(browser, "device-1-code").await;
        click(browser, "button[type=submit]").await;
        wait_for_title(browser, "Authorize a device").await;
        let shown = browser.element("#user-code").await;
        let shown = browser
            .call(
                reqwest::Method::GET,
                &format!("/element/{shown}/text"),
                None,
            )
            .await;
        assert_eq!(
            shown.as_str(),
            Some(user_code.as_str()),
            "the code to compare"
        );
        let body = browser.element("main").await;
        let text = browser
            .call(reqwest::Method::GET, &format!("/element/{body}/text"), None)
            .await;
        let text = text.as_str().unwrap_or_default();
        assert!(text.contains("tv-cli") && text.contains("device"), "{text}");
        screenshot(browser, "device-2-confirm").await;
        click(browser, "button[value=approve]").await;
        wait_for_title(browser, "Device connected").await;
    };
    let (tokens, ()) = tokio::join!(
        async { tokio::time::timeout(Duration::from_secs(60), polling).await },
        user
    );
    let tokens = tokens
        .expect("the device got its tokens in time")
        .expect("tokens");
    let access = crate::helpers::decode_claims(tokens.access_token().secret());
    assert_eq!(access["sub"], user_id.as_str());
    assert_eq!(access["client_id"], "tv-cli");
    assert!(tokens.refresh_token().is_some(), "offline_access");
    browser.call(reqwest::Method::DELETE, "", None).await;
}

/// Whether the page's source contains `text`.
async fn page_has(browser: &WebDriver, text: &str) -> bool {
    browser
        .call(reqwest::Method::GET, "/source", None)
        .await
        .as_str()
        .unwrap_or_default()
        .contains(text)
}

/// A code flow of `browser-app` opened in the browser, waiting for its callback: the
/// authorization URL, the redirect URI and the callback's request target to come.
async fn code_flow(
    app: &crate::helpers::TestApp,
    verifier: &str,
) -> (String, String, tokio::task::JoinHandle<String>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let redirect = format!(
        "http://127.0.0.1:{}/cb",
        listener.local_addr().unwrap().port()
    );
    let url = format!(
        "{}/authorize?response_type=code&client_id=browser-app&redirect_uri={}&scope=openid&state=s&code_challenge={}&code_challenge_method=S256",
        app.issuer,
        enc(&redirect),
        pkce(verifier)
    );
    // Skips connections that send nothing (the browser's preconnects).
    let landed = tokio::spawn(async move { receive(&listener).await.target });
    (url, redirect, landed)
}

/// The ID token's claims after the callback `landed` for `redirect` (its code redeemed by
/// `browser-app` with `secret`).
async fn redeemed_id_token(
    app: &crate::helpers::TestApp,
    secret: &str,
    redirect: &str,
    verifier: &str,
    landed: tokio::task::JoinHandle<String>,
) -> Value {
    let target = tokio::time::timeout(Duration::from_secs(30), landed)
        .await
        .expect("the browser reached the application")
        .unwrap();
    let code = url::form_urlencoded::parse(target.split_once('?').unwrap().1.as_bytes())
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .expect("a code");
    let tokens: Value = app
        .client
        .post(format!("{}/token", app.address))
        .basic_auth("browser-app", Some(secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", redirect),
            ("code_verifier", verifier),
        ])
        .json_value()
        .await;
    crate::helpers::decode_claims(tokens["id_token"].as_str().expect("an ID token"))
}

/// Forgets the browser's cookies for the server (its session): cookies are deleted for the
/// current page's host, so the browser goes there first.
async fn sign_out(browser: &WebDriver, app: &crate::helpers::TestApp) {
    browser
        .call(
            reqwest::Method::POST,
            "/url",
            Some(json!({ "url": format!("{}/healthz", app.issuer) })),
        )
        .await;
    browser.call(reqwest::Method::DELETE, "/cookie", None).await;
}

// Issue 17 item 1 in a real browser: headless Chromium with chromedriver's virtual authenticator
// (W3C WebAuthn §11: CTAP2, internal transport, resident keys, user verification) registers a
// passkey on the account page, signs in with it alone and as the second factor after the
// password, through the hosted login of real authorization-code flows; with user verification
// turned off, no sign-in happens. The server's issuer is http://localhost:PORT: browsers refuse
// WebAuthn on IP origins. Screenshots go to target/screenshots/passkey-*.png.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_browser_uses_passkeys() {
    let Some(launched) = launch().await else {
        return;
    };
    let browser = &launched.browser;
    browser
        .call(
            reqwest::Method::POST,
            "/window/rect",
            Some(json!({"width": 1000, "height": 1600})),
        )
        .await;
    let env = TestEnv::new(Backend::Sqlite).await;
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let app = env
        .spawn_with(portcullis::config::SettingsArgs {
            bind: Some(format!("127.0.0.1:{port}")),
            issuer: Some(format!("http://localhost:{port}")),
            ..env.args()
        })
        .await;
    app.create_user("alice").await;
    let (flows, mut redirects) = (3, Vec::new());
    let mut pending = Vec::new();
    for n in 0..flows {
        let verifier = format!("passkey-browser-verifier-{n}-").repeat(3);
        let (url, redirect, landed) = code_flow(&app, &verifier).await;
        redirects.push(redirect.clone());
        pending.push((url, redirect, landed, verifier));
    }
    let mut spec = ClientSpec::new("browser-app").first_party();
    for redirect in &redirects {
        spec = spec.redirect_uri(redirect);
    }
    let secret = client_secret(&app.create_client(spec).await);
    let authenticator = browser
        .call(
            reqwest::Method::POST,
            "/webauthn/authenticator",
            Some(json!({
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": true,
                "hasUserVerification": true,
                "isUserConsenting": true,
                "isUserVerified": true,
            })),
        )
        .await;
    let authenticator = authenticator
        .as_str()
        .expect("an authenticator id")
        .to_owned();
    let open = |url: String| async move {
        browser
            .call(reqwest::Method::POST, "/url", Some(json!({ "url": url })))
            .await;
    };

    // Register: sign in with the password on the account page, then add a passkey.
    open(format!(
        "{}/account/login?return_to=/account/security",
        app.issuer
    ))
    .await;
    wait_for_title(browser, "Sign in").await;
    type_into(browser, "input[name=username]", "alice").await;
    type_into(browser, "input[name=password]", PASSWORD).await;
    click(browser, "button[type=submit]").await;
    wait_for_title(browser, "Security").await;
    screenshot(browser, "passkey-1-security-page").await;
    type_into(browser, "#passkey-name", "Virtual laptop").await;
    click(browser, "#passkey-add button[type=submit]").await;
    wait_for_title(browser, "Add a passkey").await;
    screenshot(browser, "passkey-2-ceremony").await;
    click(browser, "button[data-webauthn-go]").await;
    wait_for_title(browser, "Security").await;
    crate::helpers::wait_until(
        "the passkey listed",
        Duration::from_secs(30),
        || async move { page_has(browser, "Virtual laptop</strong>").await },
    )
    .await;
    screenshot(browser, "passkey-3-registered").await;
    let credentials = browser
        .call(
            reqwest::Method::GET,
            &format!("/webauthn/authenticator/{authenticator}/credentials"),
            None,
        )
        .await;
    let credentials = credentials.as_array().expect("credentials");
    assert_eq!(credentials.len(), 1, "{credentials:?}");
    assert_eq!(credentials[0]["isResidentCredential"], true, "discoverable");
    assert_eq!(credentials[0]["rpId"], "localhost");

    // Passwordless, in a browser without a session: the login page's passkey button.
    let (url, redirect, landed, verifier) = pending.remove(0);
    sign_out(browser, &app).await;
    open(url).await;
    wait_for_title(browser, "Sign in").await;
    screenshot(browser, "passkey-4-login-page").await;
    click(browser, "#passkey-sign-in button").await;
    wait_for_title(browser, "Use your passkey").await;
    click(browser, "button[data-webauthn-go]").await;
    let id = redeemed_id_token(&app, &secret, &redirect, &verifier, landed).await;
    assert_eq!(id["amr"], json!(["hwk", "user", "mfa"]));
    assert_eq!(id["acr"], "urn:portcullis:acr:mfa");

    // The second factor after the password (alice has a factor now, so it is asked).
    let (url, redirect, landed, verifier) = pending.remove(0);
    sign_out(browser, &app).await;
    open(url).await;
    wait_for_title(browser, "Sign in").await;
    type_into(browser, "input[name=username]", "alice").await;
    type_into(browser, "input[name=password]", PASSWORD).await;
    click(browser, "button[type=submit]").await;
    wait_for_title(browser, "Second factor").await;
    screenshot(browser, "passkey-5-second-factor").await;
    click(browser, "#passkey-second-factor button").await;
    wait_for_title(browser, "Use your passkey").await;
    click(browser, "button[data-webauthn-go]").await;
    let id = redeemed_id_token(&app, &secret, &redirect, &verifier, landed).await;
    assert_eq!(id["amr"], json!(["pwd", "hwk", "mfa"]));

    // Without user verification nothing signs in: the browser or the server refuses.
    let (url, _, landed, _) = pending.remove(0);
    browser
        .call(
            reqwest::Method::POST,
            &format!("/webauthn/authenticator/{authenticator}/uv"),
            Some(json!({"isUserVerified": false})),
        )
        .await;
    sign_out(browser, &app).await;
    open(url).await;
    wait_for_title(browser, "Sign in").await;
    click(browser, "#passkey-sign-in button").await;
    wait_for_title(browser, "Use your passkey").await;
    click(browser, "button[data-webauthn-go]").await;
    crate::helpers::wait_until(
        "the passkey refused",
        Duration::from_secs(30),
        || async move { page_has(browser, "The passkey was not").await },
    )
    .await;
    screenshot(browser, "passkey-6-no-user-verification").await;
    assert!(!landed.is_finished(), "no code without user verification");
    landed.abort();
    browser.call(reqwest::Method::DELETE, "", None).await;
}

// A dynamic client's logo in a real browser (the OpenID Foundation's
// oidcc-registration-logo-uri looks at this page): the login page shows the logo we fetched at
// registration, and the browser loads it — and everything else — from our own origin, under
// the page's CSP (an image the CSP blocked would have no size). Screenshot:
// target/screenshots/login-with-client-logo.png.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_browser_shows_a_dynamic_clients_logo_from_our_origin() {
    let Some(launched) = launch().await else {
        return;
    };
    let browser = &launched.browser;
    let docs = crate::helpers::DocServer::start().await;
    let env = TestEnv::new(Backend::Sqlite).await;
    let app = crate::client_logo::server(&env, &docs).await;
    let logo = crate::client_logo::framed_png();
    docs.serve("/logo.png", crate::client_logo::image("image/png", logo));
    let registered =
        crate::client_logo::register(&app, "Logo App", Some(&docs.url("/logo.png"))).await;
    let url = format!(
        "{}/authorize?response_type=code&client_id={}&redirect_uri={}&scope=openid&state=s&code_challenge={}&code_challenge_method=S256",
        app.address,
        registered["client_id"].as_str().unwrap(),
        enc(crate::client_logo::LOOPBACK),
        pkce(&"v".repeat(50))
    );
    browser
        .call(reqwest::Method::POST, "/url", Some(json!({ "url": url })))
        .await;
    wait_for_title(browser, "Sign in").await;
    let loaded = crate::helpers::wait_for("the logo loaded", Duration::from_secs(30), || async move {
        let image = browser
            .call(
                reqwest::Method::POST,
                "/execute/sync",
                Some(json!({
                    "script": "const i = document.querySelector('img.client-logo'); return i && i.complete ? [i.naturalWidth, i.naturalHeight, i.currentSrc, i.alt] : null",
                    "args": [],
                })),
            )
            .await;
        (!image.is_null()).then_some(image)
    })
    .await;
    assert_eq!(
        loaded,
        json!([
            32,
            32,
            format!(
                "{}/clients/{}/logo",
                app.address,
                registered["client_id"].as_str().unwrap()
            ),
            "Logo App logo"
        ]),
        "the browser loaded the logo from our origin"
    );
    let resources = browser
        .call(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({
                "script": "return [location.href].concat(performance.getEntriesByType('resource').map(e => e.name))",
                "args": [],
            })),
        )
        .await;
    for loaded in resources.as_array().unwrap() {
        assert!(
            loaded
                .as_str()
                .unwrap()
                .starts_with(&format!("{}/", app.address)),
            "AUTHZ-11: {loaded} is not from our origin ({resources})"
        );
    }
    assert_eq!(
        docs.requests("/logo.png"),
        1,
        "only the registration fetched it"
    );
    screenshot(browser, "login-with-client-logo").await;
    browser.call(reqwest::Method::DELETE, "", None).await;
}
