//! The OpenID Foundation's certification plans as tests (issue 15 item 2, issue 18 item 8):
//! every module of `oidcc-basic-certification-test-plan`, `oidcc-config-certification-test-plan`,
//! `oidcc-formpost-basic-certification-test-plan`,
//! `oidcc-rp-initiated-logout-certification-test-plan` and
//! `oidcc-dynamic-certification-test-plan` ([`dynamic`], which names the modules not written
//! yet), one test per module, named after it, with the suite's conditions (FAILURE and WARNING
//! alike, asserted as failures: the goal is a clean run) in [`checks`]. The reading of the suite is /work/oidf-spec.md (§0 common machinery, §1–4
//! the modules).
//!
//! The harness plays the suite: discovery and a static client configured as the plans configure
//! it (confidential, `client_secret_basic`, no PKCE, so registered `pkce: optional`; redirect URI
//! `<base>/callback`; post-logout `<base>/post_logout_redirect`; a second client for
//! `oidcc-refresh-token`), a browser that signs in at the hosted page over HTTP, and the
//! server's clock moved instead of the suite's waits.

mod basic;
mod checks;
mod config;
mod dynamic;
mod formpost;
mod logout;

use std::collections::BTreeMap;

use portcullis::oidc::clients::PkcePolicy;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{
    Backend, ClientSpec, PASSWORD, Sent, TestApp, TestEnv, answer_consent, browser, client_secret,
    hidden, json_of,
};

/// The suite's `base_url` (nothing listens there: redirects are read, not followed).
pub const BASE: &str = "http://127.0.0.1:9";

/// `CreateRedirectUri`: the suite's callback.
pub fn redirect_uri() -> String {
    format!("{BASE}/callback")
}

/// `CreatePostLogoutRedirectUri`.
pub fn post_logout_redirect_uri() -> String {
    format!("{BASE}/post_logout_redirect")
}

/// The user the tester signs in as.
pub const USER: &str = "buffy";

/// Generates `#[tokio::test]` wrappers that run each named `async fn(Backend)` on SQLite and on
/// Postgres, keeping the attributes written before a name (an `ignore` with its reason).
#[macro_export]
macro_rules! oidf_modules {
    ($($(#[$meta:meta])* $name:ident),* $(,)?) => {
        mod sqlite {
            $(
                $(#[$meta])*
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                $(#[$meta])*
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Postgres).await
                }
            )*
        }
    };
}

/// How the authorization response travels (the plan's `ResponseMode` variant).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `default`: a redirect with the parameters in the query.
    Query,
    /// `form_post`: a page that POSTs them to the redirect URI.
    FormPost,
}

/// A static client of the suite's configuration (`client`, `client2`, `client_secret_post`).
#[derive(Clone, Debug)]
pub struct RpClient {
    /// `client_id`.
    pub id: String,
    /// `client_secret`.
    pub secret: String,
}

/// Client authentication at the token endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Auth {
    /// `AddBasicAuthClientSecretToRequest`.
    Basic,
    /// `AddFormBasedClientSecretToRequest`.
    Post,
    /// Credentials the caller put in the form itself (`private_key_jwt`'s
    /// `client_assertion`, as the dynamic plan's clients send).
    InForm,
}

/// The OP under test as the suite sees it after `configure()` (oidf-spec §0.2).
pub struct Op {
    /// The environment (its database and keys live as long as the OP).
    _env: TestEnv,
    /// The server.
    pub app: TestApp,
    /// The discovery document.
    pub discovery: Value,
    /// The JWKS at `jwks_uri`.
    pub jwks: Value,
    /// `client`.
    pub client: RpClient,
    /// `client2` (oidcc-refresh-token).
    pub client2: RpClient,
    /// The response mode of the plan.
    pub mode: Mode,
}

/// The suite's test user has every standard claim (OIDC Core §5.1), as an OP under
/// certification configures it: `VerifyScopesReturnedInUserInfoClaims` (WARNING) wants each
/// claim of each requested scope in userinfo. Set through the accounts service, as an
/// administrator would (`PATCH /admin/users/{user}`).
async fn give_every_standard_claim(app: &TestApp) {
    let patch = serde_json::json!({
        "name": "Buffy Summers",
        "given_name": "Buffy",
        "family_name": "Summers",
        "middle_name": "Anne",
        "nickname": "Buff",
        "profile": "https://buffy.example/profile",
        "picture": "https://buffy.example/buffy.png",
        "website": "https://buffy.example",
        "gender": "female",
        "birthdate": "1981-01-19",
        "zoneinfo": "America/Los_Angeles",
        "locale": "en-US",
        "email_verified": true,
        "phone_number": "+18055550100",
        "phone_number_verified": true,
        "address": {
            "formatted": "1630 Revello Drive\nSunnydale, CA 95037\nUSA",
            "street_address": "1630 Revello Drive",
            "locality": "Sunnydale",
            "region": "CA",
            "postal_code": "95037",
            "country": "USA"
        },
    });
    let serde_json::Value::Object(patch) = patch else {
        unreachable!("an object")
    };
    let now = app.clock.now_naive();
    app.state
        .db
        .run(move |conn| {
            portcullis::accounts::users::update_claims(
                conn,
                USER,
                &patch,
                portcullis::accounts::profile::Editor::Admin,
                now,
            )
        })
        .await
        .expect("claims set");
}

impl Op {
    /// A server with the suite's static clients and the user, configured as the flow modules
    /// do (discovery, JWKS and their checks, `client_secret_basic` supported, userinfo).
    pub async fn new(backend: Backend, mode: Mode) -> Self {
        Self::configured(backend, mode, Auth::Basic, true).await
    }

    /// As [`Op::new`], with the token-endpoint authentication the module checks discovery for,
    /// and the clients registered first-party (no consent page) or third-party (consent asked
    /// until remembered).
    pub async fn configured(backend: Backend, mode: Mode, auth: Auth, first_party: bool) -> Self {
        let env = TestEnv::new(backend).await;
        let app = env.spawn().await;
        app.create_user(USER).await;
        give_every_standard_claim(&app).await;
        let mut clients = Vec::new();
        for id in ["oidf", "oidf2"] {
            let mut spec = ClientSpec::new(id)
                .redirect_uri(&redirect_uri())
                .post_logout_redirect_uri(&post_logout_redirect_uri())
                .pkce(PkcePolicy::Optional);
            if first_party {
                spec = spec.first_party();
            }
            let registered = app.create_client(spec).await;
            clients.push(RpClient {
                id: id.to_owned(),
                secret: client_secret(&registered),
            });
        }
        let discovery = app
            .client
            .get(app.url("/.well-known/openid-configuration"))
            .sent()
            .await;
        assert_eq!(discovery.status(), 200, "GetDynamicServerConfiguration");
        let discovery = json_of(discovery).await;
        checks::server_configuration(&discovery, auth);
        let jwks_uri = discovery["jwks_uri"].as_str().expect("jwks_uri");
        let jwks = app.client.get(jwks_uri).sent().await;
        assert_eq!(jwks.status(), 200, "FetchServerKeys");
        let jwks = json_of(jwks).await;
        checks::server_jwks(&jwks, true);
        let client2 = clients.pop().expect("client2");
        let client = clients.pop().expect("client");
        Self {
            _env: env,
            app,
            discovery,
            jwks,
            client,
            client2,
            mode,
        }
    }

    /// The issuer of the discovery document.
    pub fn issuer(&self) -> &str {
        self.discovery["issuer"].as_str().expect("issuer")
    }

    /// The suite's "now" (the server's clock, moved by the tests), in seconds.
    pub fn now(&self) -> i64 {
        self.app.clock.now().timestamp()
    }

    /// Moves time on by `seconds` (the suite's `WaitFor…` conditions).
    pub fn wait(&self, seconds: u64) {
        self.app.advance(std::time::Duration::from_secs(seconds));
    }

    /// `CreateAuthorizationRequestSteps` for `client`: `client_id`, `nonce`, `redirect_uri`,
    /// `response_type=code`, `scope=openid`, `state` (and `response_mode=form_post` in the
    /// form-post plan).
    pub fn request(&self, client: &RpClient) -> AuthRequest {
        let mut params = BTreeMap::new();
        params.insert("client_id".to_owned(), client.id.clone());
        params.insert("nonce".to_owned(), random_alnum(10));
        params.insert("redirect_uri".to_owned(), redirect_uri());
        params.insert("response_type".to_owned(), "code".to_owned());
        params.insert("scope".to_owned(), "openid".to_owned());
        params.insert("state".to_owned(), random_alnum(10));
        if self.mode == Mode::FormPost {
            params.insert("response_mode".to_owned(), "form_post".to_owned());
        }
        AuthRequest {
            params,
            reversed: false,
            post: false,
        }
    }

    /// Sends `request` from `browser` (`BuildPlainRedirectToAuthorizationEndpoint`, or the
    /// form POST of oidcc-ensure-post-request-succeeds) and follows the OP's pages, signing in
    /// and approving as the tester does, until the callback or a page the tester would
    /// screenshot.
    pub async fn authorize(&self, browser: &reqwest::Client, request: &AuthRequest) -> Driven {
        let endpoint = self.discovery["authorization_endpoint"]
            .as_str()
            .expect("authorization_endpoint");
        let pairs = request.pairs();
        let response = if request.post {
            browser.post(endpoint).form(&pairs).sent().await
        } else {
            let mut url = url::Url::parse(endpoint).expect("endpoint URL");
            url.query_pairs_mut().extend_pairs(&pairs);
            browser.get(url.as_str()).sent().await
        };
        self.drive(browser, response).await
    }

    /// Follows the OP from `response` (see [`Op::authorize`]).
    pub async fn drive(
        &self,
        browser: &reqwest::Client,
        mut response: reqwest::Response,
    ) -> Driven {
        let mut driven = Driven {
            logins: 0,
            consents: 0,
            outcome: Outcome::Page {
                status: StatusCode::OK,
                content_type: String::new(),
                html: String::new(),
            },
        };
        for _ in 0..4 {
            let status = response.status();
            if status == StatusCode::SEE_OTHER || status == StatusCode::FOUND {
                let location = response.headers()["location"]
                    .to_str()
                    .expect("location")
                    .to_owned();
                let url = url::Url::parse(&location).expect("absolute location");
                assert!(
                    location.starts_with(BASE),
                    "the OP redirected somewhere else: {location}"
                );
                driven.outcome = Outcome::Callback(Callback {
                    method: "GET",
                    content_type: None,
                    params: url.query_pairs().into_owned().collect(),
                    url,
                });
                return driven;
            }
            let content_type = response
                .headers()
                .get("content-type")
                .map(|v| v.to_str().expect("content-type").to_owned())
                .unwrap_or_default();
            let html = response.text().await.expect("body");
            if status == StatusCode::OK && html.contains("name=\"username\"") {
                driven.logins += 1;
                response = browser
                    .post(self.app.url("/authorize/login"))
                    .form(&[
                        ("request_id", hidden(&html, "request_id")),
                        ("csrf_token", hidden(&html, "csrf_token")),
                        ("username", USER.to_owned()),
                        ("password", PASSWORD.to_owned()),
                    ])
                    .sent()
                    .await;
                continue;
            }
            if status == StatusCode::OK && html.contains("/authorize/consent\"") {
                driven.consents += 1;
                response = answer_consent(
                    browser,
                    self.app.url("/authorize/consent"),
                    &html,
                    "approve",
                )
                .await;
                continue;
            }
            if let Some(form) =
                checks::auto_post_form(&html).filter(|form| form.action.starts_with(BASE))
            {
                // The browser submits the form: a POST of the fields, form-encoded.
                let url = url::Url::parse(&form.action).expect("form action URL");
                assert!(
                    form.method.eq_ignore_ascii_case("post"),
                    "form_post page: method {}",
                    form.method
                );
                driven.outcome = Outcome::Callback(Callback {
                    method: "POST",
                    content_type: Some(form.enctype.clone()),
                    params: form.fields,
                    url,
                });
                return driven;
            }
            driven.outcome = Outcome::Page {
                status,
                content_type,
                html,
            };
            return driven;
        }
        panic!("the OP kept asking (login, consent) more than four times");
    }

    /// The token request of `code` (`createAuthorizationCodeRequest`), with `extra` parameters.
    pub async fn token(
        &self,
        client: &RpClient,
        auth: Auth,
        form: &[(&str, &str)],
    ) -> reqwest::Response {
        let endpoint = self.discovery["token_endpoint"]
            .as_str()
            .expect("token_endpoint");
        let mut pairs: Vec<(&str, &str)> = form.to_vec();
        let mut request = self
            .app
            .client
            .post(endpoint)
            .header("accept", "application/json");
        match auth {
            Auth::Basic => {
                use base64::Engine;
                let credentials = format!(
                    "{}:{}",
                    crate::helpers::enc(&client.id),
                    crate::helpers::enc(&client.secret)
                );
                let encoded = base64::engine::general_purpose::STANDARD.encode(credentials);
                request = request.header("authorization", format!("Basic {encoded}"));
            }
            Auth::Post => {
                pairs.push(("client_id", &client.id));
                pairs.push(("client_secret", &client.secret));
            }
            Auth::InForm => {}
        }
        let body: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&pairs)
            .finish();
        request
            .header(
                "content-type",
                "application/x-www-form-urlencoded;charset=UTF-8",
            )
            .body(body)
            .sent()
            .await
    }

    /// `grant_type=authorization_code&code=…&redirect_uri=…` (no `code_verifier`, unless given).
    pub async fn redeem(
        &self,
        client: &RpClient,
        auth: Auth,
        code: &str,
        verifier: Option<&str>,
    ) -> reqwest::Response {
        let redirect = redirect_uri();
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect.as_str()),
        ];
        if let Some(verifier) = verifier {
            form.push(("code_verifier", verifier));
        }
        self.token(client, auth, &form).await
    }

    /// `CallProtectedResource` / `CallUserInfoEndpoint`: GET userinfo with the bearer header.
    pub async fn userinfo(&self, access_token: &str) -> reqwest::Response {
        self.app
            .client
            .get(
                self.discovery["userinfo_endpoint"]
                    .as_str()
                    .expect("userinfo"),
            )
            .header("accept", "application/json")
            .bearer_auth(access_token)
            .sent()
            .await
    }

    /// The standard flow of a module: authorize → callback checks (§0.4) → token (§0.5) with the
    /// ID-token checks (§0.6) → userinfo (§0.7, §0.10).
    pub async fn flow(
        &self,
        browser: &reqwest::Client,
        client: &RpClient,
        request: &AuthRequest,
        auth: Auth,
    ) -> Flow {
        let driven = self.authorize(browser, request).await;
        let logins = driven.logins;
        let callback = driven.callback();
        let code = checks::authorization_response(&callback, request, self.issuer(), self.mode);
        let tokens = self.tokens_for(client, auth, &code, request).await;
        let response = self.userinfo(tokens.access_token()).await;
        let userinfo = checks::userinfo_response(response, &tokens.id_claims, self.now()).await;
        Flow {
            code,
            tokens,
            userinfo,
            logins,
        }
    }

    /// Redeems `code` (§0.5) and runs the standard ID-token checks (§0.6).
    pub async fn tokens_for(
        &self,
        client: &RpClient,
        auth: Auth,
        code: &str,
        request: &AuthRequest,
    ) -> Tokens {
        let response = self.redeem(client, auth, code, request.verifier()).await;
        let body = checks::token_response(response).await;
        let id_token = body["id_token"].as_str().expect("id_token").to_owned();
        let id_claims = checks::standard_id_token(
            &id_token,
            self.issuer(),
            &client.id,
            request.nonce(),
            &self.jwks,
            self.now(),
        );
        Tokens {
            body,
            id_token,
            id_claims,
        }
    }
}

/// What the OP ended on after [`Op::authorize`].
#[derive(Debug)]
pub struct Driven {
    /// How many login pages the tester filled in.
    pub logins: usize,
    /// How many consent pages the tester approved.
    pub consents: usize,
    /// The callback, or the page the tester would screenshot.
    pub outcome: Outcome,
}

impl Driven {
    /// The callback; fails the module when the OP ended on a page.
    pub fn callback(self) -> Callback {
        match self.outcome {
            Outcome::Callback(callback) => callback,
            Outcome::Page { status, html, .. } => {
                panic!("expected a callback, the OP showed a page ({status}): {html}")
            }
        }
    }
}

/// Where a browser ended up.
#[derive(Debug)]
pub enum Outcome {
    /// The suite's callback was called.
    Callback(Callback),
    /// A page of the OP.
    Page {
        /// Its status.
        status: StatusCode,
        /// Its media type.
        content_type: String,
        /// Its body.
        html: String,
    },
}

/// A call of the suite's callback.
#[derive(Debug)]
pub struct Callback {
    /// `GET` (query) or `POST` (form_post).
    pub method: &'static str,
    /// The POST's content type.
    pub content_type: Option<String>,
    /// The URL called.
    pub url: url::Url,
    /// The response parameters (query, or POST body).
    pub params: Vec<(String, String)>,
}

impl Callback {
    /// A response parameter.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The names of the parameters in the URL's query.
    pub fn query_names(&self) -> Vec<String> {
        self.url
            .query_pairs()
            .map(|(k, _)| k.into_owned())
            .collect()
    }
}

/// An authorization request being built (parameters in alphabetical order, as
/// `BuildPlainRedirectToAuthorizationEndpoint` sends them).
#[derive(Clone, Debug)]
pub struct AuthRequest {
    params: BTreeMap<String, String>,
    reversed: bool,
    post: bool,
}

impl AuthRequest {
    /// Sets a parameter.
    pub fn set(mut self, name: &str, value: &str) -> Self {
        self.params.insert(name.to_owned(), value.to_owned());
        self
    }

    /// Removes a parameter.
    pub fn without(mut self, name: &str) -> Self {
        self.params.remove(name);
        self
    }

    /// `BuildPlainRedirectToAuthorizationEndpointReorderedParams`: reverse alphabetical order.
    pub fn reversed(mut self) -> Self {
        self.reversed = true;
        self
    }

    /// Sent as a form POST (oidcc-ensure-post-request-succeeds).
    pub fn posted(mut self) -> Self {
        self.post = true;
        self
    }

    /// A parameter.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }

    /// The `nonce` sent.
    pub fn nonce(&self) -> Option<&str> {
        self.get("nonce")
    }

    /// The `state` sent.
    pub fn state(&self) -> Option<&str> {
        self.get("state")
    }

    /// The PKCE verifier (kept out of the request: `code_verifier` is not a parameter here).
    pub fn verifier(&self) -> Option<&str> {
        self.get("_code_verifier")
    }

    /// `code_challenge` (S256) + `code_challenge_method`, keeping the verifier for the token
    /// request.
    pub fn with_pkce(self, verifier: &str) -> Self {
        self.set("code_challenge", &crate::helpers::pkce(verifier))
            .set("code_challenge_method", "S256")
            .set("_code_verifier", verifier)
    }

    fn pairs(&self) -> Vec<(String, String)> {
        let mut pairs: Vec<(String, String)> = self
            .params
            .iter()
            .filter(|(k, _)| !k.starts_with('_'))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if self.reversed {
            pairs.reverse();
        }
        pairs
    }
}

/// The token response, its ID token and the ID token's claims.
#[derive(Debug)]
pub struct Tokens {
    /// The JSON body.
    pub body: Value,
    /// `id_token`.
    pub id_token: String,
    /// Its claims.
    pub id_claims: Value,
}

impl Tokens {
    /// `access_token`.
    pub fn access_token(&self) -> &str {
        self.body["access_token"].as_str().expect("access_token")
    }
}

/// A completed standard flow.
#[derive(Debug)]
pub struct Flow {
    /// The authorization code.
    pub code: String,
    /// The token response.
    pub tokens: Tokens,
    /// The userinfo response (a JSON object).
    pub userinfo: Value,
    /// Login pages filled in.
    pub logins: usize,
}

/// `n` random alphanumerics (`CreateRandomNonceValue`, `CreateRandomStateValue`).
pub fn random_alnum(n: usize) -> String {
    use rand_like::next;
    const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    (0..n)
        .map(|_| ALNUM[next() % ALNUM.len()] as char)
        .collect()
}

/// `requested_state_length=128`: 124 alphanumerics and `-._~`.
pub fn long_state() -> String {
    random_alnum(124) + "-._~"
}

/// `CreateRandomEndSessionState`: 50 letters, 10 digits and 30 punctuation characters
/// (`+`, space and `;` replaced by `~`).
pub fn end_session_state() -> String {
    use rand_like::next;
    const LETTERS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    const PUNCT: &[u8] = b"!\"#$%&'()*,-./:<=>?@[\\]^_`{|}~";
    let pick = |set: &[u8], n: usize| -> String {
        (0..n).map(|_| set[next() % set.len()] as char).collect()
    };
    pick(LETTERS, 50) + &pick(b"0123456789", 10) + &pick(PUNCT, 30)
}

/// Randomness for test values, from the OS through the standard library's hasher keys.
mod rand_like {
    use std::hash::{BuildHasher, Hasher};

    pub fn next() -> usize {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u8(0);
        hasher.finish() as usize
    }
}

/// A fresh browser (`no OP cookies`).
pub fn fresh_browser() -> reqwest::Client {
    browser()
}
