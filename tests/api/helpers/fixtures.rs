//! In-process fixtures: users and clients made through the services the CLI and the admin API
//! use (`accounts::users::create`, `oidc::clients::create`), and JSON-API sessions through the
//! authenticator and the token service the login endpoint uses. Only the tests of the CLI itself
//! spawn the binary.

use std::sync::Arc;

use portcullis::accounts::factors::SecondFactorPolicy;
use portcullis::accounts::password::HashParams;
use portcullis::accounts::users::{self, NewUser, UserView};
use portcullis::accounts::{Email, Password, PasswordHasher, Role, Username};
use portcullis::clock::Clock;
use portcullis::db::Db;
use portcullis::keys::{IdTokenAlg, SigningAlg};
use portcullis::oidc::clients::{self, NewClient, PkcePolicy, Registered};

use super::{PASSWORD, REDIRECT, TestApp, TestEnv};

/// A client to register: the arguments of `portcullis clients create`, with the same defaults
/// (confidential; code + refresh with redirect URIs, else client_credentials; every known scope;
/// the issuer as audience; ES256 access tokens, RS256 ID tokens; consent asked).
#[derive(Clone, Debug)]
pub struct ClientSpec(NewClient);

impl ClientSpec {
    /// A confidential client `client_id`.
    pub fn new(client_id: &str) -> Self {
        Self(NewClient {
            client_id: client_id.to_owned(),
            public: false,
            redirect_uris: Vec::new(),
            grant_types: Vec::new(),
            scopes: Vec::new(),
            audiences: Vec::new(),
            access_token_alg: SigningAlg::Es256,
            id_token_alg: IdTokenAlg::default(),
            userinfo_signed_response_alg: None,
            first_party: false,
            post_logout_redirect_uris: Vec::new(),
            introspection_audiences: Vec::new(),
            pkce: PkcePolicy::Required,
            web_origins: Vec::new(),
            second_factor: SecondFactorPolicy::Off,
            token_endpoint_auth_method: None,
            jwks: None,
            jwks_uri: None,
            token_exchange_audiences: Vec::new(),
            request_uris: Vec::new(),
            request_object_signing_alg: None,
            subject_type: portcullis::oidc::subjects::SubjectType::Public,
        })
    }

    /// A client with pairwise subject identifiers in `sector` (OIDC Core §8.1), set directly
    /// (the administrator's path that checks a sector is tested through registration).
    pub fn pairwise(mut self, sector: &str) -> Self {
        self.0.subject_type =
            portcullis::oidc::subjects::SubjectType::Pairwise(portcullis::oidc::subjects::Sector {
                sector_identifier: sector.to_owned(),
                sector_identifier_uri: None,
            });
        self
    }

    /// A confidential client that authenticates with `private_key_jwt` and the keys of `jwks`.
    pub fn private_key_jwt(mut self, jwks: serde_json::Value) -> Self {
        self.0.token_endpoint_auth_method =
            Some(portcullis::oidc::client_auth::AuthMethod::PrivateKeyJwt);
        self.0.jwks = Some(jwks);
        self
    }

    /// A confidential client that authenticates with `private_key_jwt` and the keys at
    /// `jwks_uri`.
    pub fn private_key_jwt_uri(mut self, jwks_uri: &str) -> Self {
        self.0.token_endpoint_auth_method =
            Some(portcullis::oidc::client_auth::AuthMethod::PrivateKeyJwt);
        self.0.jwks_uri = Some(jwks_uri.to_owned());
        self
    }

    /// The first-party web app the hosted-page tests sign in to: `webapp`, redirecting to
    /// [`REDIRECT`], no consent.
    pub fn webapp() -> Self {
        Self::new("webapp").redirect_uri(REDIRECT).first_party()
    }

    /// A public client (no secret, PKCE only).
    pub fn public(mut self) -> Self {
        self.0.public = true;
        self
    }

    /// An exact redirect URI.
    pub fn redirect_uri(mut self, uri: &str) -> Self {
        self.0.redirect_uris.push(uri.to_owned());
        self
    }

    /// An audience of its access tokens (the first is the default).
    pub fn audience(mut self, audience: &str) -> Self {
        self.0.audiences.push(audience.to_owned());
        self
    }

    /// The algorithm of its access tokens.
    pub fn access_token_alg(mut self, alg: SigningAlg) -> Self {
        self.0.access_token_alg = alg;
        self
    }

    /// The algorithm of its ID tokens (`IdTokenAlg::Unsigned`: `none`).
    pub fn id_token_alg(mut self, alg: IdTokenAlg) -> Self {
        self.0.id_token_alg = alg;
        self
    }

    /// Userinfo answers it with a JWT signed with `alg` (OIDC Core §5.3.2).
    pub fn userinfo_signed_response_alg(mut self, alg: SigningAlg) -> Self {
        self.0.userinfo_signed_response_alg = Some(alg);
        self
    }

    /// Its users are not asked for consent.
    pub fn first_party(mut self) -> Self {
        self.0.first_party = true;
        self
    }

    /// An exact post-logout redirect URI.
    pub fn post_logout_redirect_uri(mut self, uri: &str) -> Self {
        self.0.post_logout_redirect_uris.push(uri.to_owned());
        self
    }

    /// An allowed scope (an OpenID scope or a scope of a registered API); the first replaces
    /// the default (every OpenID scope).
    pub fn scope(mut self, scope: &str) -> Self {
        self.0.scopes.push(scope.to_owned());
        self
    }

    /// An allowed grant type; the first replaces the default.
    pub fn grant_type(mut self, grant: portcullis::oidc::clients::GrantType) -> Self {
        self.0.grant_types.push(grant);
        self
    }

    /// Its PKCE policy (default: required).
    pub fn pkce(mut self, policy: PkcePolicy) -> Self {
        self.0.pkce = policy;
        self
    }

    /// A web origin its browser code calls from (CORS), besides its redirect URIs' origins.
    pub fn web_origin(mut self, origin: &str) -> Self {
        self.0.web_origins.push(origin.to_owned());
        self
    }

    /// Its second-factor policy (default: off, the deployment's).
    pub fn second_factor(mut self, policy: SecondFactorPolicy) -> Self {
        self.0.second_factor = policy;
        self
    }

    /// An audience whose access tokens it may introspect.
    pub fn introspection_audience(mut self, audience: &str) -> Self {
        self.0.introspection_audiences.push(audience.to_owned());
        self
    }

    /// A URL it may pass as `request_uri` (OIDC Core §6.2).
    pub fn request_uri(mut self, uri: &str) -> Self {
        self.0.request_uris.push(uri.to_owned());
        self
    }

    /// The algorithm its request objects must be signed with.
    pub fn request_object_signing_alg(
        mut self,
        alg: portcullis::oidc::clients::RequestObjectAlg,
    ) -> Self {
        self.0.request_object_signing_alg = Some(alg);
        self
    }

    /// An audience it may ask for by token exchange (RFC 8693; the first is its default).
    pub fn token_exchange_audience(mut self, audience: &str) -> Self {
        self.0.token_exchange_audiences.push(audience.to_owned());
        self
    }
}

/// The secret of a confidential client registered by a fixture (shown once).
pub fn client_secret(client: &Registered) -> String {
    client
        .client_secret
        .clone()
        .expect("a confidential client has a secret")
}

/// A user with the test password and `roles`, through the accounts service.
fn new_user(username: &str, roles: &[&str]) -> NewUser {
    NewUser {
        username: Username::parse(username).expect("username"),
        email: Email::parse(&format!("{username}@example.com")).expect("email"),
        password: Password::parse(PASSWORD.to_owned()).expect("password"),
        roles: roles
            .iter()
            .map(|role| Role::parse(role).expect("role"))
            .collect(),
    }
}

/// Registers `spec` on `db` at `clock`'s time, with `issuer` as the default audience.
async fn register_client(db: &Db, clock: &Clock, spec: ClientSpec, issuer: &str) -> Registered {
    let (issuer, now) = (issuer.to_owned(), clock.now_naive());
    db.run(move |conn| clients::create(conn, spec.0, &issuer, now).map(|change| change.value))
        .await
        .expect("client registered")
}

impl TestApp {
    /// Creates `username` (email `username@example.com`, the test password) with `roles`,
    /// through the server's accounts service and password hasher: the user.
    pub async fn create_user_with_roles(&self, username: &str, roles: &[&str]) -> UserView {
        users::create(
            &self.state.db,
            &self.state.hasher,
            &self.state.clock,
            new_user(username, roles),
        )
        .await
        .expect("user created")
    }

    /// Creates `username` without roles: its id.
    pub async fn create_user(&self, username: &str) -> String {
        self.create_user_with_roles(username, &[]).await.id
    }

    /// A JSON-API session of `username` (the test password) made in-process, as the login
    /// endpoint makes it: the password checked by the server's authenticator (throttling
    /// included), then a refresh family started and the access token issued by its token
    /// service. (access token, refresh token).
    pub async fn signed_in(&self, username: &str) -> (String, String) {
        let loopback = std::net::IpAddr::from([127, 0, 0, 1]);
        let authenticated = self
            .state
            .authenticator
            .authenticate(
                username.to_owned(),
                PASSWORD.as_bytes().to_vec(),
                loopback,
                None,
            )
            .await
            .expect("authenticated");
        let issued = self
            .state
            .tokens
            .login(
                portcullis::oidc::tokens::SignIn::Password(Box::new(authenticated)),
                loopback,
            )
            .await
            .expect("signed in");
        (
            issued.access_token,
            issued.refresh_token.expose().to_owned(),
        )
    }

    /// Creates `username` with `roles` and signs it in: its access token.
    pub async fn user_token(&self, username: &str, roles: &[&str]) -> String {
        self.create_user_with_roles(username, roles).await;
        self.signed_in(username).await.0
    }

    /// An administrator, `root`, signed in: its access token.
    pub async fn admin_token(&self) -> String {
        self.user_token("root", &["admin"]).await
    }

    /// The RFC 7592 read of the client `registered` (a registration's answer): the path of its
    /// configuration endpoint on this server and the read's JSON (asserted `200`), which holds
    /// the next registration access token.
    pub async fn read_registration(
        &self,
        registered: &serde_json::Value,
    ) -> (String, serde_json::Value) {
        let path = registered["registration_client_uri"]
            .as_str()
            .expect("registration_client_uri")
            .strip_prefix(&self.issuer)
            .expect("under the issuer")
            .to_owned();
        let token = registered["registration_access_token"]
            .as_str()
            .expect("registration_access_token");
        let read = self.get_bearer(&path, token).await;
        assert_eq!(read.status(), reqwest::StatusCode::OK);
        (path, super::json_of(read).await)
    }

    /// An initial access token for dynamic registration (RFC 7591 §3) with `max_uses` (`None`:
    /// no limit), issued by administrator `admin` through the admin API (asserted `201`).
    pub async fn initial_access_token(&self, admin: &str, max_uses: Option<u32>) -> String {
        let issued = self
            .send(
                reqwest::Method::POST,
                "/admin/initial-access-tokens",
                admin,
                Some(serde_json::json!({"description": "test", "max_uses": max_uses})),
            )
            .await;
        assert_eq!(issued.status(), reqwest::StatusCode::CREATED);
        super::json_of(issued).await["initial_access_token"]
            .as_str()
            .expect("initial_access_token")
            .to_owned()
    }

    /// Registers `spec` (default audience: this server's issuer) and has the server load it at
    /// once: the client with its secret.
    pub async fn create_client(&self, spec: ClientSpec) -> Registered {
        let registered =
            register_client(&self.state.db, &self.state.clock, spec, &self.issuer).await;
        self.reload_clients().await;
        registered
    }

    /// Registers an API `identifier` named `name` with `scopes` (name, description) through the
    /// service the CLI and the admin API use, and has the server load it at once: the API.
    pub async fn create_api(
        &self,
        identifier: &str,
        scopes: &[(&str, &str)],
    ) -> portcullis::oidc::apis::Api {
        use portcullis::oidc::apis::{self, ApiScope, NewApi};
        let new = NewApi {
            identifier: identifier.to_owned(),
            name: format!("API {identifier}"),
            scopes: scopes
                .iter()
                .map(|(name, description)| ApiScope {
                    name: (*name).to_owned(),
                    description: (*description).to_owned(),
                })
                .collect(),
        };
        let (issuer, now) = (self.issuer.clone(), self.state.clock.now_naive());
        let api = self
            .state
            .db
            .run(move |conn| apis::create(conn, new, &issuer, now).map(|change| change.value))
            .await
            .expect("API registered");
        self.state
            .apis
            .reload(&self.state.db)
            .await
            .expect("APIs reloaded");
        api
    }

    /// Loads the clients from the database at once (a client another instance registered).
    pub async fn reload_clients(&self) {
        self.state
            .clients
            .reload(&self.state.db)
            .await
            .expect("clients reloaded");
    }

    /// Registers the first-party [`ClientSpec::webapp`]: its secret.
    pub async fn create_webapp(&self) -> String {
        client_secret(&self.create_client(ClientSpec::webapp()).await)
    }
}

/// The issuer of a server started with the default bind address and no issuer setting, as
/// `portcullis clients create` assumes it without `PORTCULLIS_ISSUER`.
const DEFAULT_ISSUER: &str = "http://127.0.0.1:8080";

impl TestEnv {
    /// A pool on this environment's database, migrated, for fixtures made before any server
    /// runs (servers started as processes of their own, say).
    async fn fixture_db(&self) -> Db {
        let url = self.database();
        portcullis::startup::migrate(&url, self.pooler)
            .await
            .expect("migrations");
        Db::connect(
            url,
            1,
            std::time::Duration::from_secs(10),
            std::time::Duration::from_secs(10),
            self.pooler,
            Arc::default(),
        )
    }

    /// Creates `username` with `roles` before any server runs: the user.
    pub async fn create_user_with_roles(&self, username: &str, roles: &[&str]) -> UserView {
        let hasher = PasswordHasher::new(HashParams::default(), 1).expect("hasher");
        users::create(
            &self.fixture_db().await,
            &hasher,
            &self.clock,
            new_user(username, roles),
        )
        .await
        .expect("user created")
    }

    /// Creates `username` without roles before any server runs: its id.
    pub async fn create_user(&self, username: &str) -> String {
        self.create_user_with_roles(username, &[]).await.id
    }

    /// Registers `spec` before any server runs (default audience: [`DEFAULT_ISSUER`]); a server
    /// started afterwards loads it.
    pub async fn create_client(&self, spec: ClientSpec) -> Registered {
        register_client(&self.fixture_db().await, &self.clock, spec, DEFAULT_ISSUER).await
    }
}
