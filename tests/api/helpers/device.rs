//! The device authorization grant's two sides (RFC 8628): the device, asking at the device
//! authorization endpoint and polling the token endpoint, and the user at the verification page
//! in a browser with cookies (the hosted login when it asks, the code form, the confirmation).

use serde_json::Value;

use super::{Sent, TestApp, hidden, json_of, post_login_form};

/// The device grant's `grant_type`.
pub const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

impl TestApp {
    /// `POST /device_authorization` for the public client `client_id` with `scope`.
    pub async fn device_authorization(&self, client_id: &str, scope: &str) -> reqwest::Response {
        self.post_form(
            "/device_authorization",
            &[("client_id", client_id), ("scope", scope)],
        )
        .await
    }

    /// A started device authorization of the public client `client_id`: the response body.
    pub async fn device_started(&self, client_id: &str, scope: &str) -> Value {
        let response = self.device_authorization(client_id, scope).await;
        assert_eq!(response.status(), 200, "device authorization");
        json_of(response).await
    }

    /// One token request of the public client `client_id` with `device_code`.
    pub async fn device_poll(&self, client_id: &str, device_code: &str) -> reqwest::Response {
        self.post_form(
            "/token",
            &[
                ("grant_type", DEVICE_GRANT),
                ("client_id", client_id),
                ("device_code", device_code),
            ],
        )
        .await
    }

    /// The `error` of a device poll that must fail with `status`.
    pub async fn device_poll_error(&self, client_id: &str, device_code: &str) -> (u16, Value) {
        let response = self.device_poll(client_id, device_code).await;
        let status = response.status().as_u16();
        (status, json_of(response).await)
    }
}

/// `location` of a redirect on `app`, absolute.
fn absolute(app: &TestApp, location: &str) -> String {
    if location.starts_with("http") {
        location.to_owned()
    } else {
        app.url(location)
    }
}

/// Follows `response`'s 303s with GETs on `browser`: the first response that is no redirect.
pub async fn follow(
    app: &TestApp,
    browser: &reqwest::Client,
    mut response: reqwest::Response,
) -> reqwest::Response {
    while response.status() == 303 {
        let location = response.headers()["location"].to_str().unwrap().to_owned();
        response = browser.get(absolute(app, &location)).sent().await;
    }
    response
}

/// Opens `url` (a verification URI) on `browser`, signing in as `username` when the page asks:
/// the page it ends on (the code form, for a sign-in without a second factor).
pub async fn open_verification(
    app: &TestApp,
    browser: &reqwest::Client,
    url: &str,
    username: &str,
) -> reqwest::Response {
    let page = browser.get(url).sent().await;
    assert_eq!(page.status(), 200, "verification page");
    let html = page.text().await.unwrap();
    if !html.contains("name=\"password\"") {
        return browser.get(url).sent().await;
    }
    let signed_in = post_login_form(browser, &app.address, &html, username).await;
    follow(app, browser, signed_in).await
}

/// Posts the code form `html` with `user_code`: the confirmation page, or the form again.
pub async fn submit_user_code(
    app: &TestApp,
    browser: &reqwest::Client,
    html: &str,
    user_code: &str,
) -> reqwest::Response {
    browser
        .post(app.url("/device"))
        .form(&[
            ("csrf_token", hidden(html, "csrf_token")),
            ("user_code", user_code.to_owned()),
        ])
        .sent()
        .await
}

/// Answers the confirmation page `html` with `decision` (`approve` or `deny`).
pub async fn answer_device(
    app: &TestApp,
    browser: &reqwest::Client,
    html: &str,
    decision: &str,
) -> reqwest::Response {
    browser
        .post(app.url("/device/decision"))
        .form(&[
            ("csrf_token", hidden(html, "csrf_token")),
            ("user_code", hidden(html, "user_code")),
            ("decision", decision.to_owned()),
        ])
        .sent()
        .await
}

/// The user side of a device authorization, whole: `username` opens the response's
/// `verification_uri_complete`, signs in, confirms the filled-in code and answers `decision`.
/// The final page's HTML.
pub async fn user_decides(
    app: &TestApp,
    browser: &reqwest::Client,
    started: &Value,
    username: &str,
    decision: &str,
) -> String {
    let complete = started["verification_uri_complete"].as_str().unwrap();
    let code_page = open_verification(app, browser, complete, username).await;
    assert_eq!(code_page.status(), 200);
    let html = code_page.text().await.unwrap();
    let user_code = started["user_code"].as_str().unwrap();
    assert!(
        html.contains(&format!("value=\"{user_code}\"")),
        "the code is filled in, to confirm: {html}"
    );
    let confirm = submit_user_code(app, browser, &html, user_code).await;
    assert_eq!(confirm.status(), 200);
    let confirm = confirm.text().await.unwrap();
    assert!(confirm.contains("Authorize a device?"), "{confirm}");
    let done = answer_device(app, browser, &confirm, decision).await;
    assert_eq!(done.status(), 200);
    done.text().await.unwrap()
}
