//! The relying party's side of the OAuth / OpenID Connect flows: a browser with cookies, the
//! hosted login page, redirects and their parameters, PKCE, and the shared OAuth fixture.

use reqwest::StatusCode;

use super::{Backend, ClientSpec, PASSWORD, Sent, TestApp, TestEnv, client_secret};

/// The redirect URI of the test clients (nothing listens there: redirects are not followed).
pub const REDIRECT: &str = "http://127.0.0.1:9/cb";

/// An HTTP client for the relying-party library, on the test's reqwest (no redirects followed).
pub fn rp_http(
    client: reqwest::Client,
) -> impl Fn(
    openidconnect::HttpRequest,
) -> std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<openidconnect::HttpResponse, reqwest::Error>>>,
> {
    move |request: openidconnect::HttpRequest| {
        let client = client.clone();
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let response = client
                .request(parts.method, parts.uri.to_string())
                .headers(parts.headers)
                .body(body)
                .send()
                .await?;
            let status = response.status();
            let headers = response.headers().clone();
            let bytes = response.bytes().await?;
            let mut out = openidconnect::http::Response::new(bytes.to_vec());
            *out.status_mut() = status;
            *out.headers_mut() = headers;
            Ok(out)
        })
    }
}

/// A browser: a cookie jar, no redirects followed.
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("browser")
}

/// The value of a hidden input of a page.
pub fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {html}"))
        + marker.len();
    let end = html[start..].find('"').expect("closing quote") + start;
    html[start..end].to_owned()
}

/// Query parameters of a redirect's `Location`.
pub fn location_params(response: &reqwest::Response) -> (String, Vec<(String, String)>) {
    let location = response.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned();
    let url = url::Url::parse(&location).expect("absolute location");
    let params = url.query_pairs().into_owned().collect();
    (location, params)
}

/// A parameter of `params`.
pub fn param(params: &[(String, String)], name: &str) -> Option<String> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
}

/// Percent-encodes a query value.
pub fn enc(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// The S256 code challenge of `verifier`.
pub fn pkce(verifier: &str) -> String {
    use base64::Engine;
    use sha2::Digest;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()))
}

/// Opens `url` in `browser`, signs in on the hosted page of the server at `base`, and returns
/// the final response (the 303 to the client, or a consent page).
pub async fn sign_in(
    browser: &reqwest::Client,
    base: &str,
    url: &str,
    username: &str,
) -> reqwest::Response {
    let page = browser.get(url).send().await.expect("login page");
    assert_eq!(page.status(), 200, "login page");
    let html = page.text().await.expect("html");
    assert!(html.contains("name=\"username\"") && html.contains("name=\"password\""));
    post_login_form(browser, base, &html, username).await
}

/// Posts the hosted login form of the page `html` (its request id and CSRF token) to
/// `{base}/authorize/login` as `username` with the test password: the response.
pub async fn post_login_form(
    browser: &reqwest::Client,
    base: &str,
    html: &str,
    username: &str,
) -> reqwest::Response {
    browser
        .post(format!("{base}/authorize/login"))
        .form(&[
            ("request_id", hidden(html, "request_id")),
            ("csrf_token", hidden(html, "csrf_token")),
            ("username", username.to_owned()),
            ("password", PASSWORD.to_owned()),
        ])
        .send()
        .await
        .expect("login POST")
}

/// The `code` of a 303 redirect to the client (fails on anything else).
pub fn code_of(response: &reqwest::Response) -> String {
    assert_eq!(response.status(), 303, "a redirect");
    let (location, params) = location_params(response);
    param(&params, "code").unwrap_or_else(|| panic!("a code in {location}"))
}

/// Answers the consent page `html` with `decision` (`approve` or `deny`) by posting its form to
/// `consent_url` (`{issuer}/authorize/consent`) on `browser`: the response (a 303 to the client,
/// a form_post page, …).
pub async fn answer_consent(
    browser: &reqwest::Client,
    consent_url: String,
    html: &str,
    decision: &str,
) -> reqwest::Response {
    browser
        .post(consent_url)
        .form(&[
            ("request_id", hidden(html, "request_id")),
            ("csrf_token", hidden(html, "csrf_token")),
            ("decision", decision.to_owned()),
        ])
        .sent()
        .await
}

/// The nonce of every [`code_flow`].
pub const FLOW_NONCE: &str = "n-0S6_WzA2Mj";

/// The code flow with PKCE and [`FLOW_NONCE`] for confidential client `client_id` (`secret`,
/// HTTP Basic) at [`REDIRECT`] on `browser` for `scope`, `extra` appended to the authorization
/// request: `alice` signs in when the browser has no session, consent is approved when asked.
/// The token response (its status asserted 200), or the `error` the authorization response
/// carried.
pub async fn code_flow(
    app: &TestApp,
    browser: &reqwest::Client,
    (client_id, secret): (&str, &str),
    scope: &str,
    extra: &str,
) -> Result<serde_json::Value, String> {
    let verifier = "v".repeat(50);
    let url = app.url(&format!(
        "/authorize?response_type=code&client_id={client_id}&redirect_uri={}&scope={}&state=s1\
         &nonce={FLOW_NONCE}&code_challenge={}&code_challenge_method=S256{extra}",
        enc(REDIRECT),
        enc(scope),
        pkce(&verifier)
    ));
    let mut response = browser.get(&url).sent().await;
    while response.status() == StatusCode::OK {
        let html = response.text().await.expect("a page");
        response = if html.contains("name=\"username\"") {
            post_login_form(browser, &app.address, &html, "alice").await
        } else {
            answer_consent(browser, app.url("/authorize/consent"), &html, "approve").await
        };
    }
    if let Some(error) = param(&location_params(&response).1, "error") {
        return Err(error);
    }
    let code = code_of(&response);
    let tokens = app
        .client
        .post(app.url("/token"))
        .basic_auth(client_id, Some(secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &verifier),
        ])
        .sent()
        .await;
    assert_eq!(tokens.status(), StatusCode::OK, "{client_id}'s tokens");
    Ok(super::json_of(tokens).await)
}

/// The correct redemption of `code` (the test redirect URI and `verifier`) by `webapp` with
/// `secret` (HTTP Basic) at the token endpoint of the server at `base` (its address, or its
/// issuer when that has a path), ready to send on `http`. [`Fixture::exchange`] sends it for the
/// fixture's server; a test that runs the binary, or its own `TestApp`, sends it here.
pub fn exchange_at(
    http: &reqwest::Client,
    base: &str,
    secret: &str,
    code: &str,
    verifier: &str,
) -> reqwest::RequestBuilder {
    http.post(format!("{base}/token"))
        .basic_auth("webapp", Some(secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier),
        ])
}

/// A server with a confidential first-party client (`webapp`), a public client (`spa`) and a
/// user (`alice`).
pub struct Fixture {
    /// The environment.
    pub env: TestEnv,
    /// The server.
    pub app: TestApp,
    /// The secret of `webapp`.
    pub secret: String,
    /// The id of `alice`.
    pub user_id: String,
}

impl Fixture {
    /// A server on `backend` with the clients and the user.
    pub async fn new(backend: Backend) -> Self {
        Self::on(TestEnv::new(backend).await).await
    }

    /// The fixture on `env`, with its default settings.
    pub async fn on(env: TestEnv) -> Self {
        let args = env.args();
        Self::on_with(env, args).await
    }

    /// The fixture on `env`, its server started with `args`.
    pub async fn on_with(env: TestEnv, args: portcullis::config::SettingsArgs) -> Self {
        let app = env.spawn_with(args).await;
        let user_id = app.create_user("alice").await;
        let webapp = app
            .create_client(
                ClientSpec::webapp()
                    .redirect_uri("https://app.example.com/cb?tenant=1")
                    .audience("https://api.example.com")
                    .post_logout_redirect_uri("http://127.0.0.1:9/bye"),
            )
            .await;
        app.create_client(
            ClientSpec::new("spa")
                .public()
                .redirect_uri("http://127.0.0.1:9/spa"),
        )
        .await;
        Self {
            secret: client_secret(&webapp),
            env,
            app,
            user_id,
        }
    }

    /// `/authorize?query` on the server.
    pub fn url(&self, query: &str) -> String {
        format!("{}/authorize?{query}", self.app.address)
    }

    /// POSTs `form` to the token endpoint as `webapp` (HTTP Basic).
    pub async fn token(&self, form: &[(&str, &str)]) -> reqwest::Response {
        self.token_like("/token", form).await
    }

    /// POSTs `form` to `path` as `webapp` (HTTP Basic): the token, introspection and revocation
    /// endpoints.
    pub async fn token_like(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.app
            .client
            .post(self.app.url(path))
            .basic_auth("webapp", Some(&self.secret))
            .form(form)
            .send()
            .await
            .expect("request")
    }

    /// Redeems `code` correctly (its redirect URI and verifier), as `webapp`.
    pub async fn exchange(&self, code: &str, verifier: &str) -> reqwest::Response {
        exchange_at(
            &self.app.client,
            &self.app.address,
            &self.secret,
            code,
            verifier,
        )
        .sent()
        .await
    }

    /// A code for `webapp` (signed in on `browser`), with its verifier.
    pub async fn code(&self, browser: &reqwest::Client, scope: &str) -> (String, String) {
        let verifier = "a".repeat(43) + "-verifier";
        let challenge = pkce(&verifier);
        let url = self.url(&format!(
            "response_type=code&client_id=webapp&redirect_uri={}&scope={}&state=s1&code_challenge={challenge}&code_challenge_method=S256",
            enc(REDIRECT),
            enc(scope)
        ));
        let first = browser.get(&url).send().await.expect("authorize");
        let response = if first.status() == StatusCode::OK {
            let html = first.text().await.expect("html");
            browser
                .post(self.app.url("/authorize/login"))
                .form(&[
                    ("request_id", hidden(&html, "request_id")),
                    ("csrf_token", hidden(&html, "csrf_token")),
                    ("username", "alice".into()),
                    ("password", PASSWORD.into()),
                ])
                .send()
                .await
                .expect("login POST")
        } else {
            first
        };
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        let (_, params) = location_params(&response);
        (param(&params, "code").expect("code"), verifier)
    }
}
