//! A running server and the HTTP calls tests make to it.

use std::collections::HashMap;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use portcullis::clock::Clock;
use portcullis::startup::Application;
use portcullis::state::AppState;
use serde_json::{Value, json};

use super::{PASSWORD, Sent, kids_of, wait_for};

/// A running server (in this process, on 127.0.0.1:0, with its own database).
pub struct TestApp {
    /// `http://127.0.0.1:PORT`.
    pub address: String,
    /// The separate admin listener, when configured.
    pub admin_address: Option<String>,
    /// The issuer the server uses.
    pub issuer: String,
    /// Stops the server.
    pub handle: ServerHandle,
    /// In-process state: the `Signer`, the database handle, the services fixtures go through.
    pub state: AppState,
    /// HTTP client that does not follow redirects.
    pub client: reqwest::Client,
    /// The server's clock (shared with every server of its `TestEnv`).
    pub clock: Clock,
}

impl TestApp {
    /// Runs `app` in the background.
    pub(super) fn running(app: Application) -> Self {
        let address = format!("http://127.0.0.1:{}", app.port());
        let issuer = app.issuer().to_string();
        let handle = app.handle();
        let state = app.state().clone();
        let admin_address = app
            .admin_port()
            .map(|port| format!("http://127.0.0.1:{port}"));
        tokio::spawn(app.run_until_stopped());
        Self {
            address,
            admin_address,
            issuer,
            handle,
            clock: state.clock.clone(),
            state,
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
        }
    }

    /// Moves the server's clock forward by `by` (instead of sleeping): expiries, the key
    /// schedule and the janitor see the time pass; the background tick that acts on it still
    /// runs every key refresh interval.
    pub fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }

    /// `path` on this server.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// GET a path.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request")
    }

    /// POST a JSON body to a path.
    pub async fn post_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("request")
    }

    /// POST a form to a path, without client authentication.
    pub async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.client.post(self.url(path)).form(form).sent().await
    }

    /// POST `body` as `content_type` to a path (bytes the typed helpers would not send).
    pub async fn post_raw(
        &self,
        path: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .header("content-type", content_type)
            .body(body)
            .sent()
            .await
    }

    /// `method path` with a bearer token and an optional JSON body.
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> reqwest::Response {
        let mut request = self
            .client
            .request(method, self.url(path))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.expect("request")
    }

    /// GET `path` with a bearer token.
    pub async fn get_bearer(&self, path: &str, token: &str) -> reqwest::Response {
        self.send(reqwest::Method::GET, path, token, None).await
    }

    /// POST `path` with a bearer token (and no body).
    pub async fn post_bearer(&self, path: &str, token: &str) -> reqwest::Response {
        self.send(reqwest::Method::POST, path, token, None).await
    }

    /// DELETE `path` with a bearer token.
    pub async fn delete_bearer(&self, path: &str, token: &str) -> reqwest::Response {
        self.send(reqwest::Method::DELETE, path, token, None).await
    }

    /// `POST /api/auth/register` of `username` (email `username@example.com`) with `password`.
    pub async fn register_with(&self, username: &str, password: &str) -> reqwest::Response {
        self.post_json(
            "/api/auth/register",
            &json!({
                "username": username,
                "email": format!("{username}@example.com"),
                "password": password,
            }),
        )
        .await
    }

    /// Registers `username` with the test password through the JSON API (201): the user.
    pub async fn register(&self, username: &str) -> Value {
        let response = self.register_with(username, PASSWORD).await;
        assert_eq!(response.status(), 201, "registration of {username}");
        response.json().await.expect("json")
    }

    /// `POST /api/auth/login` as `username` with `password`.
    pub async fn login_with(&self, username: &str, password: &str) -> reqwest::Response {
        self.post_json(
            "/api/auth/login",
            &json!({"username": username, "password": password}),
        )
        .await
    }

    /// `POST /api/auth/login` as `username` with the test password.
    pub async fn login(&self, username: &str) -> reqwest::Response {
        self.login_with(username, PASSWORD).await
    }

    /// A successful login's body: access and refresh token.
    pub async fn session(&self, username: &str) -> Value {
        let response = self.login(username).await;
        assert_eq!(response.status(), 200, "login of {username}");
        response.json().await.expect("json")
    }

    /// A successful login: (access token, refresh token).
    pub async fn tokens(&self, username: &str) -> (String, String) {
        tokens_of(&self.session(username).await)
    }

    /// `POST /api/auth/refresh` with `refresh_token`.
    pub async fn refresh(&self, refresh_token: &str) -> reqwest::Response {
        self.post_json(
            "/api/auth/refresh",
            &json!({"refresh_token": refresh_token}),
        )
        .await
    }

    /// A successful refresh: (access token, refresh token).
    pub async fn refreshed(&self, refresh_token: &str) -> (String, String) {
        let response = self.refresh(refresh_token).await;
        assert_eq!(response.status(), 200, "refresh");
        tokens_of(&response.json().await.expect("json"))
    }

    /// `POST /api/auth/logout` of `refresh_token` (204).
    pub async fn logout(&self, refresh_token: &str) {
        let response = self
            .post_json("/api/auth/logout", &json!({"refresh_token": refresh_token}))
            .await;
        assert_eq!(response.status(), 204, "logout");
    }

    /// `GET /api/me` with `access_token`.
    pub async fn me(&self, access_token: &str) -> reqwest::Response {
        self.get_bearer("/api/me", access_token).await
    }

    /// `/metrics`, as text.
    pub async fn metrics(&self) -> String {
        self.get("/metrics").await.text().await.expect("metrics")
    }

    /// The current JWKS.
    pub async fn jwks(&self) -> Value {
        let response = self.get("/.well-known/jwks.json").await;
        assert_eq!(response.status(), 200);
        response.json().await.expect("jwks json")
    }

    /// Kids in the current JWKS.
    pub async fn jwks_kids(&self) -> Vec<String> {
        kids_of(&self.jwks().await)
    }

    /// Polls the JWKS until `done` holds (the server reloads keys every 200 ms in tests).
    pub async fn wait_for_jwks(&self, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let done = &done;
        wait_for(what, Duration::from_secs(15), || async move {
            let jwks = self.jwks().await;
            done(&jwks).then_some(jwks)
        })
        .await
    }

    /// The spare keys (alg → kid) from `GET /admin/keys`, once every algorithm has one: key
    /// rotations and revocations publish these instead of generating a key in the request.
    pub async fn ready_spares(&self, admin: &str) -> HashMap<String, String> {
        wait_for(
            "the spare keys are ready",
            Duration::from_secs(30),
            || async move {
                let keys: Value = self
                    .get_bearer("/admin/keys", admin)
                    .await
                    .json()
                    .await
                    .expect("JSON");
                let spares: HashMap<String, String> = keys["spares"]
                    .as_array()
                    .expect("spares listed")
                    .iter()
                    .map(|s| {
                        (
                            s["alg"].as_str().expect("alg").into(),
                            s["kid"].as_str().expect("kid").into(),
                        )
                    })
                    .collect();
                (spares.len() == 2).then_some(spares)
            },
        )
        .await
    }

    /// Stops the server and waits for it.
    pub async fn stop(self) {
        self.handle.stop(true).await;
    }
}

/// (access token, refresh token) of a token response.
pub fn tokens_of(body: &Value) -> (String, String) {
    (
        body["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned(),
        body["refresh_token"]
            .as_str()
            .expect("refresh_token")
            .to_owned(),
    )
}
