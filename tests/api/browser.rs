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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_browser_signs_in_on_the_hosted_page() {
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
        return;
    };

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

    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let mut chromedriver = tokio::process::Command::new(driver)
        .arg(format!("--port={port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let _browsers = KillBrowsers(chromedriver.id().unwrap_or_default());
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
    let browser = WebDriver {
        http,
        base: format!("{base}/session/{}", session["sessionId"].as_str().unwrap()),
    };

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
    let _ = chromedriver.kill().await;
}
