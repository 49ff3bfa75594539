//! `oidcc-dynamic-certification-test-plan` (issue 18 item 8): the OpenID Foundation's Dynamic OP
//! plan, one test per module, named after it with the prefix `dynamic_`. The plan fixes
//! `server_metadata=discovery`, `client_registration=dynamic_client`,
//! `client_auth_type=private_key_jwt`, `response_mode=default` and, for Portcullis,
//! `response_type=code`.
//!
//! The harness plays the suite: the OP has registration with initial access tokens on and an
//! administrator's initial access token with enough uses; each module registers its own
//! client(s) at `registration_endpoint` exactly as the suite does (client_name, grant_types,
//! response_types `code`, the callback, contacts, `private_key_jwt` with one RS256 key without a
//! `kid`, or a `jwks_uri` the document server serves), checks the answer as the suite does
//! (`201`, `client_id`, `registration_client_uri` over https with `registration_access_token`),
//! runs the code flow with a nonce and a state and without PKCE, authenticates at the token
//! endpoint with signed assertions, and ends with `DELETE` on `registration_client_uri` (`204`).
//!
//! The OP's issuer is https (the suite's `VerifyClientManagementCredentials` and the discovery
//! module want https URLs) on a loopback name, `op.localhost` (RFC 6761 §6.3), so that the
//! test-only loopback allowance lets the OP fetch the clients' `jwks_uri` from the https document
//! server on 127.0.0.1. The URLs of the issuer are reached on the test listener.
//!
//! Not applicable (OIDC Discovery §3 makes dynamic OPs advertise the `id_token` and
//! `token id_token` response types and, in `grant_types_supported`, `implicit`; Portcullis offers
//! the code flow only, RFC 9700 §2.1.2): in `oidcc-discovery-endpoint-verification`, the
//! `id_token` and `token id_token` members of `OIDCCCheckDiscEndpointResponseTypesSupportedDynamic`
//! and the `implicit` member of `OIDCCCheckDiscEndpointGrantTypesSupportedDynamic`. They are
//! asserted absent, so the document stays truthful; nothing else is left out.
//!
//! `oidcc-idtoken-unsigned` runs: discovery lists `none` in `id_token_signing_alg_values_supported`
//! and a client may register unsigned ID tokens (OIDC Registration §2 allows them for clients
//! that get no ID token from the authorization endpoint: every client here). The sector modules
//! run: `pairwise` is offered, and the suite's sector identifier document is served by the
//! document server. No module is skipped.

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::basic::{compare_id_token_claims, refresh_response};
use super::checks;
use super::config::{self, Registration};
use super::{
    Auth, AuthRequest, Flow, Mode, Op, RpClient, Tokens, USER, fresh_browser, random_alnum,
    redirect_uri,
};
use crate::helpers::{Backend, DocServer, Reply, Sent, TestEnv, json_of};
use crate::oidf_modules;
use crate::stub::TestKey;

/// The OP's issuer: https, on a loopback name.
const ISSUER: &str = "https://op.localhost";

/// RFC 7523 §2.2.
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// `AddContactsToDynamicRegistrationRequest`: where the suite asks to be contacted.
const CONTACT: &str = "certification@oidf.org";

/// Where the document server serves a client's keys (`client1_jwks`).
const CLIENT_JWKS: &str = "/client1_jwks";

/// A client's signing key and the `kid` its assertions name (none for the plan's kid-less
/// `GenerateRS256ClientJWKs` key, the thumbprint for `GenerateRS256ClientJWKsWithKeyID`).
struct ClientKey {
    key: TestKey,
    kid: Option<String>,
}

impl ClientKey {
    /// `GenerateRS256ClientJWKs`: one RS256 key, `use: sig`, `alg: RS256`, no `kid`.
    fn kidless() -> Self {
        Self {
            key: TestKey::new(portcullis::keys::SigningAlg::Rs256),
            kid: None,
        }
    }

    /// `GenerateRS256ClientJWKsWithKeyID`: the same with `kid` (its thumbprint).
    fn with_kid() -> Self {
        let key = TestKey::new(portcullis::keys::SigningAlg::Rs256);
        let kid = Some(key.kid.clone());
        Self { key, kid }
    }

    /// The public JWKS the client registers (`jwks`) or publishes (`jwks_uri`).
    fn public_jwks(&self) -> Value {
        let mut jwk = self.key.jwk();
        if self.kid.is_none() {
            jwk.as_object_mut().expect("a JWK object").remove("kid");
        }
        json!({ "keys": [jwk] })
    }
}

/// A client a module registered: the suite's `client` (the registration answer) and its key.
struct Client {
    /// `client_id` (no secret: `private_key_jwt`).
    rp: RpClient,
    /// The key its assertions are signed with (replaced when the module rotates it).
    key: ClientKey,
    /// The registration answer.
    answer: Value,
}

/// The OP under test as the suite sees it after `configure()`, with the initial access token
/// of its configuration and the document server where the suite publishes client keys.
struct DynamicOp {
    /// The discovery document and JWKS, reached on the listener (the issuer stays the issuer):
    /// [`Op`]'s browser, userinfo and check helpers.
    op: Op,
    /// The discovery document as served (the issuer's URLs).
    served: Value,
    /// Serves the clients' `jwks_uri`.
    docs: DocServer,
    /// `client.initial_access_token` of the suite's configuration.
    initial_access_token: String,
    /// An administrator's access token (the tester's hands on the OP: key rotation).
    admin: String,
}

impl DynamicOp {
    /// A server with registration by initial access token, the suite's user, an initial access
    /// token issued by an administrator, and discovery and the JWKS fetched and checked
    /// (`GetDynamicServerConfiguration`, `CheckServerConfiguration`, `FetchServerKeys` and the
    /// key checks, `EnsureServerConfigurationSupportsPrivateKeyJwt`).
    async fn start(backend: Backend) -> Self {
        let docs = DocServer::start().await;
        let env = TestEnv::new(backend).await;
        let app = env
            .spawn_with(portcullis::config::SettingsArgs {
                issuer: Some(ISSUER.into()),
                client_registration: Some("token".into()),
                ..crate::outbound::outbound_args(&env, &docs, true)
            })
            .await;
        app.create_user(USER).await;
        super::give_every_standard_claim(&app).await;
        let admin = app.admin_token().await;
        // A module registers at most two clients; refused registrations spend no use.
        let initial_access_token = app.initial_access_token(&admin, Some(10)).await;

        let response = app.get("/.well-known/openid-configuration").await;
        assert_eq!(response.status(), 200, "GetDynamicServerConfiguration");
        let served = json_of(response).await;
        assert_eq!(served["issuer"], ISSUER);
        checks::server_configuration(&served, Auth::InForm);
        assert!(
            served["registration_endpoint"].is_string(),
            "CallDynamicRegistrationEndpoint: no registration_endpoint"
        );
        let mut discovery = served.clone();
        for (name, value) in discovery.as_object_mut().expect("an object") {
            if let Some(url) = value.as_str().filter(|_| name != "issuer") {
                *value = json!(listener(&app.address, url));
            }
        }
        let jwks = app
            .client
            .get(discovery["jwks_uri"].as_str().expect("jwks_uri"))
            .sent()
            .await;
        assert_eq!(jwks.status(), 200, "FetchServerKeys");
        let jwks = json_of(jwks).await;
        checks::server_jwks(&jwks, true);
        // The plan's clients are registered by each module (below), not configured.
        let unused = || RpClient {
            id: String::new(),
            secret: String::new(),
        };
        Self {
            op: Op {
                _env: env,
                app,
                discovery,
                jwks,
                client: unused(),
                client2: unused(),
                mode: Mode::Query,
            },
            served,
            docs,
            initial_access_token,
            admin,
        }
    }

    /// A URL of the issuer, on the test listener.
    fn listener(&self, url: &str) -> String {
        listener(&self.op.app.address, url)
    }

    /// `OIDCCCreateDynamicClientRegistrationRequest` for `module`: the plan's client with the
    /// inline kid-less key (or, with `jwks_uri`, its keys by reference).
    fn registration_request(module: &str, key: &ClientKey, jwks_uri: Option<&str>) -> Value {
        let mut request = json!({
            "client_name": format!("OIDF Conformance Test {module}"),
            "grant_types": ["authorization_code"],
            "token_endpoint_auth_method": "private_key_jwt",
            "response_types": ["code"],
            "redirect_uris": [redirect_uri()],
            "contacts": [CONTACT],
        });
        match jwks_uri {
            Some(uri) => request["jwks_uri"] = json!(uri),
            None => request["jwks"] = key.public_jwks(),
        }
        request
    }

    /// `CallDynamicRegistrationEndpoint`: POSTs `request` with the initial access token.
    async fn post_registration(&self, request: &Value) -> reqwest::Response {
        let endpoint = self.listener(self.served["registration_endpoint"].as_str().unwrap());
        self.op
            .app
            .client
            .post(endpoint)
            .header("accept", "application/json")
            .header("accept-charset", "utf-8")
            .header("content-type", "application/json")
            .bearer_auth(&self.initial_access_token)
            .body(request.to_string())
            .sent()
            .await
    }

    /// Registers the client `request` describes, signing with `key`, and checks the answer as
    /// `CallDynamicRegistrationEndpointAndVerifySuccessfulResponse` does:
    /// `EnsureContentTypeJson`, `EnsureHttpStatusCodeIs201`,
    /// `CheckNoErrorFromDynamicRegistrationEndpoint`, `ExtractDynamicRegistrationResponse`,
    /// `VerifyClientManagementCredentials` (both or neither; an https URL; non-empty),
    /// `VerifyDynamicRegistrationResponseClientCredentials`.
    async fn register(&self, request: &Value, key: ClientKey) -> Client {
        let response = self.post_registration(request).await;
        let status = response.status();
        let media = media_type(&response);
        let answer = json_of(response).await;
        assert_eq!(media, "application/json", "EnsureContentTypeJson");
        assert_eq!(
            status,
            StatusCode::CREATED,
            "EnsureHttpStatusCodeIs201: {answer}"
        );
        assert!(
            answer.get("error").is_none(),
            "CheckNoErrorFromDynamicRegistrationEndpoint"
        );
        let client_id = answer["client_id"]
            .as_str()
            .expect("ExtractDynamicRegistrationResponse: client_id")
            .to_owned();
        verify_client_management_credentials(&answer);
        if answer.get("client_secret").is_some() {
            assert!(
                answer.get("client_secret_expires_at").is_some(),
                "VerifyDynamicRegistrationResponseClientCredentials"
            );
        }
        Client {
            rp: RpClient {
                id: client_id,
                secret: String::new(),
            },
            key,
            answer,
        }
    }

    /// The plan's client for `module` with a kid-less inline key, with `customize` applied to
    /// the registration request (the module's `createDynamicClientRegistrationRequest`).
    async fn client(&self, module: &str, customize: impl FnOnce(&mut Value)) -> Client {
        let key = ClientKey::kidless();
        let mut request = Self::registration_request(module, &key, None);
        customize(&mut request);
        self.register(&request, key).await
    }

    /// The plan's client for `module` with its keys at the document server's `jwks_uri`
    /// (`AddJwksUriToDynamicRegistrationRequest`, keys with a `kid`).
    async fn jwks_uri_client(&self, module: &str, customize: impl FnOnce(&mut Value)) -> Client {
        let key = ClientKey::with_kid();
        self.docs
            .serve(CLIENT_JWKS, Reply::json(&key.public_jwks()));
        let jwks_uri = self.docs.url(CLIENT_JWKS);
        let mut request = Self::registration_request(module, &key, Some(&jwks_uri));
        customize(&mut request);
        self.register(&request, key).await
    }

    /// `UnregisterDynamicallyRegisteredClient`: `DELETE` on `registration_client_uri` with the
    /// registration access token: `204` (anything else is a FAILURE or WARNING).
    async fn unregister(&self, client: &Client) {
        let uri = client.answer["registration_client_uri"].as_str().unwrap();
        let token = client.answer["registration_access_token"].as_str().unwrap();
        let response = self
            .op
            .app
            .client
            .delete(self.listener(uri))
            .header("accept", "application/json")
            .bearer_auth(token)
            .sent()
            .await;
        assert_eq!(
            response.status(),
            StatusCode::NO_CONTENT,
            "UnregisterDynamicallyRegisteredClient"
        );
    }

    /// `CreateClientAuthenticationAssertionClaims` + `SignClientAuthenticationAssertion`: `iss`
    /// and `sub` the client, `aud` (the token endpoint, or the issuer in
    /// oidcc-ensure-client-assertion-with-iss-aud-succeeds), a random `jti`, `iat` now, `exp` a
    /// minute later; signed RS256 with the client's key, its `kid` in the header if it has one.
    fn assertion(&self, client: &Client, aud: &str) -> String {
        let now = self.op.now();
        let mut header = json!({ "alg": "RS256" });
        if let Some(kid) = &client.key.kid {
            header["kid"] = json!(kid);
        }
        client.key.key.jws(
            &header,
            &json!({
                "iss": client.rp.id, "sub": client.rp.id, "aud": aud, "jti": random_alnum(20),
                "iat": now, "exp": now + 60,
            }),
        )
    }

    /// A token request of `client` with `form`, authenticated by an assertion for `aud`
    /// (default: the token endpoint, as served).
    async fn token(
        &self,
        client: &Client,
        form: &[(&str, &str)],
        aud: Option<&str>,
    ) -> reqwest::Response {
        let aud = aud.unwrap_or_else(|| self.served["token_endpoint"].as_str().unwrap());
        let assertion = self.assertion(client, aud);
        let mut pairs: Vec<(&str, &str)> = form.to_vec();
        pairs.push(("client_assertion_type", JWT_BEARER));
        pairs.push(("client_assertion", &assertion));
        self.op.token(&client.rp, Auth::InForm, &pairs).await
    }

    /// Redeems `code` of `request` (its redirect URI, no `code_verifier`) with an assertion for
    /// `aud`, with the token-response checks (§0.5; `ExtractIdTokenFromTokenResponse`): the
    /// token response.
    async fn redeem(
        &self,
        client: &Client,
        code: &str,
        request: &AuthRequest,
        aud: Option<&str>,
    ) -> Value {
        let redirect = request.get("redirect_uri").unwrap_or_default().to_owned();
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect.as_str()),
        ];
        checks::token_response(self.token(client, &form, aud).await).await
    }

    /// [`DynamicOp::redeem`] with the standard ID-token checks (§0.6).
    async fn tokens_for(
        &self,
        client: &Client,
        code: &str,
        request: &AuthRequest,
        aud: Option<&str>,
    ) -> Tokens {
        let body = self.redeem(client, code, request, aud).await;
        let id_token = body["id_token"].as_str().expect("id_token").to_owned();
        let id_claims = checks::standard_id_token(
            &id_token,
            self.op.issuer(),
            &client.rp.id,
            request.nonce(),
            &self.op.jwks,
            self.op.now(),
        );
        Tokens {
            body,
            id_token,
            id_claims,
        }
    }

    /// The standard flow of a module: authorize → callback checks → token (assertion for
    /// `aud`) with the ID-token checks → userinfo.
    async fn flow_with(
        &self,
        browser: &reqwest::Client,
        client: &Client,
        request: &AuthRequest,
        aud: Option<&str>,
    ) -> Flow {
        self.flow_sending(browser, client, request, request, aud)
            .await
    }

    /// The standard flow where the browser is sent `sent` while the checks expect `request`
    /// (a request object carries `state` and `nonce` that `sent` lacks outside it).
    async fn flow_sending(
        &self,
        browser: &reqwest::Client,
        client: &Client,
        sent: &AuthRequest,
        request: &AuthRequest,
        aud: Option<&str>,
    ) -> Flow {
        let driven = self.op.authorize(browser, sent).await;
        let logins = driven.logins;
        let callback = driven.callback();
        let code =
            checks::authorization_response(&callback, request, self.op.issuer(), Mode::Query);
        let tokens = self.tokens_for(client, &code, request, aud).await;
        let response = self.op.userinfo(tokens.access_token()).await;
        let userinfo = checks::userinfo_response(response, &tokens.id_claims, self.op.now()).await;
        Flow {
            code,
            tokens,
            userinfo,
            logins,
        }
    }

    /// [`DynamicOp::flow_with`] with the token endpoint as the assertion's audience.
    async fn flow(
        &self,
        browser: &reqwest::Client,
        client: &Client,
        request: &AuthRequest,
    ) -> Flow {
        self.flow_with(browser, client, request, None).await
    }

    /// `client`'s standard request with `redirect_uri` instead of the registered one gets the
    /// error page, not a redirect (`ExpectRedirectUriErrorPage`).
    async fn expect_redirect_uri_error_page(&self, client: &Client, redirect_uri: &str) {
        let request = self
            .op
            .request(&client.rp)
            .set("redirect_uri", redirect_uri);
        let driven = self.op.authorize(&fresh_browser(), &request).await;
        checks::page(&driven.outcome, "ExpectRedirectUriErrorPage");
    }

    /// The first page a fresh browser gets for `client`'s standard request (the login page
    /// the tester screenshots in the registration modules): its HTML.
    async fn login_page(&self, client: &Client) -> String {
        let request = self.op.request(&client.rp);
        let mut url = url::Url::parse(
            self.op.discovery["authorization_endpoint"]
                .as_str()
                .unwrap(),
        )
        .expect("authorization_endpoint");
        url.query_pairs_mut().extend_pairs(request.pairs());
        let response = fresh_browser().get(url.as_str()).sent().await;
        assert_eq!(response.status(), StatusCode::OK, "the login page");
        let html = response.text().await.expect("body");
        assert!(html.contains("name=\"username\""), "the login page: {html}");
        html
    }
}

/// `url` of the issuer on the listener at `address` (the same path).
fn listener(address: &str, url: &str) -> String {
    match url.strip_prefix(ISSUER) {
        Some(path) => format!("{address}{path}"),
        None => url.to_owned(),
    }
}

/// A response's media type, without parameters.
fn media_type(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .unwrap_or_default()
        .trim()
        .to_owned()
}

/// `VerifyClientManagementCredentials` (`AbstractJsonUriIsValidAndHttps`): both or neither of
/// `registration_client_uri` and `registration_access_token`; the URI a parseable https URL; the
/// token not empty.
fn verify_client_management_credentials(answer: &Value) {
    let (uri, token) = (
        answer.get("registration_client_uri"),
        answer.get("registration_access_token"),
    );
    assert_eq!(
        uri.is_some(),
        token.is_some(),
        "VerifyClientManagementCredentials: both or neither"
    );
    let (Some(uri), Some(token)) = (uri, token) else {
        return;
    };
    let uri = uri.as_str().unwrap_or_default();
    let parsed = url::Url::parse(uri)
        .unwrap_or_else(|e| panic!("VerifyClientManagementCredentials: {uri}: {e}"));
    assert_eq!(
        parsed.scheme(),
        "https",
        "VerifyClientManagementCredentials: URL for client management point does not use https scheme"
    );
    assert!(
        !token.as_str().unwrap_or_default().is_empty(),
        "VerifyClientManagementCredentials: registration_access_token must not be empty"
    );
}

/// Response types as sets of words (`responseTypesEqual`: `token id_token` = `id_token token`).
fn same_response_type(a: &str, b: &str) -> bool {
    let words = |t: &str| {
        let mut words: Vec<String> = t.split(' ').map(str::to_owned).collect();
        words.sort();
        words
    };
    words(a) == words(b)
}

/// `OIDCCCheckDiscEndpointResponseTypesSupportedDynamic` (OIDC Discovery §3: a dynamic OP
/// supports `code`, `id_token` and `token id_token`): `code` is required. Not applicable:
/// `id_token` and `token id_token`, the implicit flow Portcullis does not offer (RFC 9700
/// §2.1.2); asserted absent, so discovery stays truthful.
pub fn response_types_supported_dynamic(doc: &Value) {
    let types: Vec<&str> = doc["response_types_supported"]
        .as_array()
        .expect("response_types_supported")
        .iter()
        .map(|t| t.as_str().unwrap_or_default())
        .collect();
    assert!(
        types.iter().any(|t| same_response_type(t, "code")),
        "OIDCCCheckDiscEndpointResponseTypesSupportedDynamic: code"
    );
    for implicit in ["id_token", "token id_token"] {
        assert!(
            !types.iter().any(|t| same_response_type(t, implicit)),
            "not applicable, and not advertised: {implicit}"
        );
    }
}

/// `OIDCCCheckDiscEndpointGrantTypesSupportedDynamic` (when `grant_types_supported` is
/// present: `authorization_code` and `implicit`): `authorization_code` is required. Not
/// applicable: `implicit` (RFC 9700 §2.1.2); asserted absent.
pub fn grant_types_supported_dynamic(grants: &Value) {
    assert!(
        checks::has(grants, "authorization_code"),
        "OIDCCCheckDiscEndpointGrantTypesSupportedDynamic: authorization_code"
    );
    assert!(
        !checks::has(grants, "implicit"),
        "not applicable, and not advertised: implicit"
    );
}

/// `OIDCCIdTokenRS256` (OP-IDToken-RS256, OP-IDToken-kid): registered with
/// `id_token_signed_response_alg: RS256`; the ID token names its key
/// (`EnsureIdTokenContainsKid`) and is signed RS256 (`CheckIdTokenSignatureAlgorithm`).
async fn dynamic_oidcc_idtoken_rs256(backend: Backend) {
    let dop = DynamicOp::start(backend).await;
    let client = dop
        .client("oidcc-idtoken-rs256", |request| {
            request["id_token_signed_response_alg"] = json!("RS256");
        })
        .await;
    assert_eq!(client.answer["id_token_signed_response_alg"], "RS256");
    let request = dop.op.request(&client.rp);
    let flow = dop.flow(&fresh_browser(), &client, &request).await;
    let header = jsonwebtoken::decode_header(&flow.tokens.id_token).expect("a JWS");
    assert!(
        header.kid.is_some_and(|kid| !kid.is_empty()),
        "EnsureIdTokenContainsKid"
    );
    assert_eq!(
        header.alg,
        jsonwebtoken::Algorithm::RS256,
        "CheckIdTokenSignatureAlgorithm"
    );
    dop.unregister(&client).await;
}

/// `OIDCCIdTokenUnsigned` (OP-IDToken-none): runs, as discovery lists `none` in
/// `id_token_signing_alg_values_supported` (`OIDCCCheckIdTokenSigningAlgValuesSupportedAlgNone`,
/// else the suite skips it). The client registers `id_token_signed_response_alg: none`
/// (`AddIdTokenSigningAlgNoneToDynamicRegistrationRequest`), echoed; the code flow runs as in
/// oidcc-server; the token response's ID token parses as an unsecured JWT
/// (`ExtractIdTokenFromTokenResponse`) and the module's only ID-token check is
/// `CheckIdTokenSignatureAlgorithm`: the header's `alg` is the registered `none`. Userinfo
/// answers the access token (`EnsureHttpStatusCodeIs200`). Beyond the suite (which overrides
/// `performIdTokenValidation` with that one check): the token is exactly header
/// `{"alg":"none","typ":"JWT"}`, claims and an empty signature, and its claims pass the claim
/// checks of `PerformStandardIdTokenChecks` (all but `ValidateIdTokenSignature`) and
/// `ValidateAtHash`.
async fn dynamic_oidcc_idtoken_unsigned(backend: Backend) {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let dop = DynamicOp::start(backend).await;
    assert!(
        checks::has(&dop.served["id_token_signing_alg_values_supported"], "none"),
        "OIDCCCheckIdTokenSigningAlgValuesSupportedAlgNone"
    );
    let client = dop
        .client("oidcc-idtoken-unsigned", |request| {
            request["id_token_signed_response_alg"] = json!("none");
        })
        .await;
    assert_eq!(client.answer["id_token_signed_response_alg"], "none");
    let request = dop.op.request(&client.rp);
    let driven = dop.op.authorize(&fresh_browser(), &request).await;
    let code =
        checks::authorization_response(&driven.callback(), &request, dop.op.issuer(), Mode::Query);
    let body = dop.redeem(&client, &code, &request, None).await;
    let id_token = body["id_token"].as_str().expect("id_token");
    assert_eq!(
        checks::jwt_header(id_token)["alg"],
        "none",
        "CheckIdTokenSignatureAlgorithm"
    );
    // Ours: the exact Unsecured JWS, and its claims.
    let [header, payload, signature] = id_token.split('.').collect::<Vec<_>>()[..] else {
        panic!("three segments: {id_token}");
    };
    assert_eq!(
        URL_SAFE_NO_PAD.decode(header).expect("base64url"),
        br#"{"alg":"none","typ":"JWT"}"#
    );
    assert!(signature.is_empty(), "an empty signature");
    let claims = checks::id_token_claims(
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url"))
            .expect("JSON claims"),
        dop.op.issuer(),
        &client.rp.id,
        request.nonce(),
        dop.op.now(),
    );
    let access_token = body["access_token"].as_str().expect("access_token");
    assert_eq!(
        claims["at_hash"],
        checks::left_hash(access_token),
        "ValidateAtHash"
    );
    let userinfo = dop.op.userinfo(access_token).await;
    assert_eq!(
        userinfo.status(),
        StatusCode::OK,
        "EnsureHttpStatusCodeIs200"
    );
    dop.unregister(&client).await;
}

/// `OIDCCUserInfoRS256` (OP-UserInfo-RS256): the client registers
/// `userinfo_signed_response_alg: RS256`; discovery lists RS256 in
/// `userinfo_signing_alg_values_supported` (`CheckDiscEndpointUserinfoSigningAlgValuesSupportedContainsRS256`);
/// userinfo answers `application/jwt` (`EnsureContentTypeApplicationJwt`) signed RS256 by a key
/// of the OP's JWKS (`ValidateUserInfoResponseSignature`), `iss` the issuer and `aud` the client
/// (`ValidateSignedUserInfoResponseStandardJWTClaims`), no `nonce`, `sub` that of the ID token,
/// and the usual userinfo claim checks on its claims.
async fn dynamic_oidcc_userinfo_rs256(backend: Backend) {
    let dop = DynamicOp::start(backend).await;
    assert!(
        checks::has(
            &dop.served["userinfo_signing_alg_values_supported"],
            "RS256"
        ),
        "CheckDiscEndpointUserinfoSigningAlgValuesSupportedContainsRS256"
    );
    let client = dop
        .client("oidcc-userinfo-rs256", |request| {
            request["userinfo_signed_response_alg"] = json!("RS256");
        })
        .await;
    assert_eq!(client.answer["userinfo_signed_response_alg"], "RS256");
    let request = dop.op.request(&client.rp);
    let driven = dop.op.authorize(&fresh_browser(), &request).await;
    let code =
        checks::authorization_response(&driven.callback(), &request, dop.op.issuer(), Mode::Query);
    let tokens = dop.tokens_for(&client, &code, &request, None).await;
    let response = dop.op.userinfo(tokens.access_token()).await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "EnsureHttpStatusCodeIs200"
    );
    assert_eq!(
        media_type(&response),
        "application/jwt",
        "EnsureContentTypeApplicationJwt"
    );
    let jwt = response.text().await.expect("the signed userinfo");
    let header = jsonwebtoken::decode_header(&jwt).expect("a JWS");
    assert_eq!(
        header.alg,
        jsonwebtoken::Algorithm::RS256,
        "the registered userinfo_signed_response_alg"
    );
    let claims = checks::verify_signature(&jwt, &dop.op.jwks);
    assert_eq!(
        claims["iss"], ISSUER,
        "ValidateSignedUserInfoResponseStandardJWTClaims: iss"
    );
    let aud = &claims["aud"];
    assert!(
        aud == client.rp.id.as_str() || checks::has(aud, &client.rp.id),
        "ValidateSignedUserInfoResponseStandardJWTClaims: aud {aud}"
    );
    assert!(claims.get("nonce").is_none(), "no nonce in signed userinfo");
    let object = claims.as_object().expect("claims");
    checks::standard_claims(object, "UserInfo", dop.op.now());
    assert_eq!(
        claims["sub"], tokens.id_claims["sub"],
        "VerifyUserInfoAndIdTokenInTokenEndpointSameSub"
    );
    dop.unregister(&client).await;
}

/// `OIDCCEnsureRedirectUriInAuthorizationRequest` (OP-redirect_uri-Missing): two redirect URIs
/// registered (`AddMultipleRedirectUriToDynamicRegistrationRequest`), none in the request: an
/// error page (`ExpectRedirectUriMissingErrorPage`), no redirect.
async fn dynamic_oidcc_ensure_redirect_uri_in_authorization_request(backend: Backend) {
    let dop = DynamicOp::start(backend).await;
    let client = dop
        .client(
            "oidcc-ensure-redirect-uri-in-authorization-request",
            |request| {
                request["redirect_uris"] = json!([redirect_uri(), "https://example.org/redirect"]);
            },
        )
        .await;
    let request = dop.op.request(&client.rp).without("redirect_uri");
    let driven = dop.op.authorize(&fresh_browser(), &request).await;
    checks::page(&driven.outcome, "ExpectRedirectUriMissingErrorPage");
    dop.unregister(&client).await;
}

/// `AddQueryToRedirectUri`: the callback with `bar=foo`.
fn redirect_uri_with_query() -> String {
    format!("{}?bar=foo", redirect_uri())
}

/// `OIDCCRedirectUriQueryOK` (OP-redirect_uri-Query-OK): registered with a query; the request
/// and the token request use it; the flow completes and the callback keeps the query.
async fn dynamic_oidcc_redirect_uri_query_ok(backend: Backend) {
    let dop = DynamicOp::start(backend).await;
    let with_query = redirect_uri_with_query();
    let client = dop
        .client("oidcc-redirect-uri-query-OK", |request| {
            request["redirect_uris"] = json!([with_query]);
        })
        .await;
    let request = dop.op.request(&client.rp).set("redirect_uri", &with_query);
    let driven = dop.op.authorize(&fresh_browser(), &request).await;
    let callback = driven.callback();
    assert!(
        callback
            .url
            .query_pairs()
            .any(|(k, v)| k == "bar" && v == "foo"),
        "the registered query is kept: {}",
        callback.url
    );
    let code = checks::authorization_response(&callback, &request, dop.op.issuer(), Mode::Query);
    let tokens = dop.tokens_for(&client, &code, &request, None).await;
    let response = dop.op.userinfo(tokens.access_token()).await;
    checks::userinfo_response(response, &tokens.id_claims, dop.op.now()).await;
    dop.unregister(&client).await;
}

/// `OIDCCRedirectUriQueryMismatch` (OP-redirect_uri-Query-Mismatch): registered `?bar=foo`,
/// requested `?foo=bar` (`ReplaceRedirectUriQueryInAuthorizationRequest`): an error page.
async fn dynamic_oidcc_redirect_uri_query_mismatch(backend: Backend) {
    let dop = DynamicOp::start(backend).await;
    let client = dop
        .client("oidcc-redirect-uri-query-mismatch", |request| {
            request["redirect_uris"] = json!([redirect_uri_with_query()]);
        })
        .await;
    dop.expect_redirect_uri_error_page(&client, &format!("{}?foo=bar", redirect_uri()))
        .await;
    dop.unregister(&client).await;
}

/// `OIDCCRedirectUriQueryAdded` (OP-redirect_uri-Query-Added): registered without a query,
/// requested with `?foo=bar` (`AddQueryToRedirectUriInAuthorizationRequest`): an error page.
async fn dynamic_oidcc_redirect_uri_query_added(backend: Backend) {
    let dop = DynamicOp::start(backend).await;
    let client = dop.client("oidcc-redirect-uri-query-added", |_| {}).await;
    dop.expect_redirect_uri_error_page(&client, &format!("{}?foo=bar", redirect_uri()))
        .await;
    dop.unregister(&client).await;
}

/// `OIDCCRedirectUriRegFrag` (OP-redirect_uri-RegFrag): registering `…#foobar`
/// (`AddFragmentToRedirectUri`): `EnsureContentTypeJson`, `EnsureHttpStatusCodeIs400`,
/// `CheckErrorFromDynamicRegistrationEndpointIsInvalidRedirectUriOrInvalidClientMetadata`.
async fn dynamic_oidcc_redirect_uri_regfrag(backend: Backend) {
    let dop = DynamicOp::start(backend).await;
    let key = ClientKey::kidless();
    let mut request = DynamicOp::registration_request("oidcc-redirect-uri-regfrag", &key, None);
    request["redirect_uris"] = json!([format!("{}#foobar", redirect_uri())]);
    let response = dop.post_registration(&request).await;
    assert_eq!(
        media_type(&response),
        "application/json",
        "EnsureContentTypeJson"
    );
    assert_eq!(
        response.status(),
        StatusCode::BAD_REQUEST,
        "EnsureHttpStatusCodeIs400"
    );
    let body = json_of(response).await;
    assert!(
        ["invalid_redirect_uri", "invalid_client_metadata"]
            .contains(&body["error"].as_str().unwrap_or_default()),
        "CheckErrorFromDynamicRegistrationEndpointIsInvalidRedirectUriOrInvalidClientMetadata: {body}"
    );
}

/// `OIDCCDiscoveryEndpointVerification` in the `dynamic_client` variant: the config plan's rows
/// ([`config::endpoint_verification`]) with the two dynamic rows, whose implicit-flow members
/// are not applicable ([`response_types_supported_dynamic`],
/// [`grant_types_supported_dynamic`]); `registration_endpoint` is an https URL.
async fn dynamic_oidcc_discovery_endpoint_verification(backend: Backend) {
    let dop = DynamicOp::start(backend).await;
    config::https_url(
        &dop.served["registration_endpoint"],
        "CheckDiscEndpointRegistrationEndpoint",
    );
    let response = dop.op.app.get("/.well-known/openid-configuration").await;
    config::endpoint_verification(&dop.op.app, ISSUER, response, Registration::Dynamic).await;
}

/// `OIDCCServerTest` (OP-Registration-Endpoint, OP-Registration-Dynamic, OP-Registration-jwks):
/// registration, then the basic plan's oidcc-server checks.
async fn dynamic_oidcc_server(backend: Backend) {
    let dop = DynamicOp::start(backend).await;
    let client = dop.client("oidcc-server", |_| {}).await;
    let request = dop.op.request(&client.rp);
    let flow = dop.flow(&fresh_browser(), &client, &request).await;
    checks::oidcc_server(&flow);
    dop.unregister(&client).await;
}

/// Whether `html` (as a browser decodes it) links `uri`.
fn links(html: &str, uri: &str) -> bool {
    checks::unescape(html).contains(&format!("href=\"{uri}\""))
}

/// `OIDCCRegistrationPolicyUri` (OP-Registration-policy_uri): the login page links the
/// registered `policy_uri` (`ExpectLoginPageWithPolicyLink`).
async fn dynamic_oidcc_registration_policy_uri(backend: Backend) {
    let dop = DynamicOp::start(backend).await;
    let policy = format!("{}/policy", super::BASE);
    let client = dop
        .client("oidcc-registration-policy-uri", |request| {
            request["policy_uri"] = json!(policy);
        })
        .await;
    let html = dop.login_page(&client).await;
    assert!(
        links(&html, &policy),
        "ExpectLoginPageWithPolicyLink: {html}"
    );
    dop.unregister(&client).await;
}

/// `OIDCCRegistrationTosUri` (OP-Registration-tos_uri): the login page links the registered
/// `tos_uri` (`ExpectLoginPageWithTosLink`).
async fn dynamic_oidcc_registration_tos_uri(backend: Backend) {
    let dop = DynamicOp::start(backend).await;
    let tos = format!("{}/tos", super::BASE);
    let client = dop
        .client("oidcc-registration-tos-uri", |request| {
            request["tos_uri"] = json!(tos);
        })
        .await;
    let html = dop.login_page(&client).await;
    assert!(links(&html, &tos), "ExpectLoginPageWithTosLink: {html}");
    dop.unregister(&client).await;
}

/// Where the suite serves its logo (`CreateLogoUri`: a 38 KB PNG on the suite's host).
const LOGO_PATH: &str = "/images/openid.png";

/// `OIDCCRegistrationLogoUri` (OP-Registration-logo_uri): the client registers a `logo_uri`
/// (`AddLogoUriToDynamicRegistrationRequest`), and a fresh login page shows the logo
/// (`ExpectLoginPageWithLogo`, reviewed on its screenshot). Portcullis fetched the image at
/// registration and the page shows it from the OP's own origin (AUTHZ-11): the `<img>` on the
/// page resolves to the OP and answers the suite's image; the suite's server was asked for it
/// once, at registration.
async fn dynamic_oidcc_registration_logo_uri(backend: Backend) {
    let dop = DynamicOp::start(backend).await;
    let png = crate::client_logo::framed_png();
    dop.docs.serve(
        LOGO_PATH,
        crate::client_logo::image("image/png", png.clone()),
    );
    let logo = dop.docs.url(LOGO_PATH);
    let client = dop
        .client("oidcc-registration-logo-uri", |request| {
            request["logo_uri"] = json!(logo);
        })
        .await;
    let html = dop.login_page(&client).await;
    let marker = "<img class=\"client-logo\" src=\"";
    let at = html
        .find(marker)
        .unwrap_or_else(|| panic!("ExpectLoginPageWithLogo: {html}"))
        + marker.len();
    let src = &html[at..at + html[at..].find('"').expect("closing quote")];
    let page = url::Url::parse(dop.op.discovery["authorization_endpoint"].as_str().unwrap())
        .expect("authorization_endpoint");
    let image = page.join(src).expect("the logo's URL");
    assert_eq!(
        image.origin(),
        page.origin(),
        "the logo is served by the OP"
    );
    let response = fresh_browser().get(image.as_str()).sent().await;
    assert_eq!(response.status(), StatusCode::OK, "{image}");
    assert_eq!(response.headers()["content-type"], "image/png");
    assert_eq!(response.bytes().await.expect("the logo").to_vec(), png);
    assert_eq!(
        dop.docs.requests(LOGO_PATH),
        1,
        "fetched once, at registration"
    );
    dop.unregister(&client).await;
}

/// `OIDCCRegistrationJwksUri` (OP-Registration-jwks_uri): the client registers a `jwks_uri`
/// (keys with a `kid`) instead of `jwks`; the OP fetches them for the assertion; full flow.
async fn dynamic_oidcc_registration_jwks_uri(backend: Backend) {
    let dop = DynamicOp::start(backend).await;
    let client = dop
        .jwks_uri_client("oidcc-registration-jwks-uri", |_| {})
        .await;
    assert_eq!(client.answer["jwks_uri"], dop.docs.url(CLIENT_JWKS));
    assert!(client.answer.get("jwks").is_none());
    let request = dop.op.request(&client.rp);
    dop.flow(&fresh_browser(), &client, &request).await;
    assert!(
        dop.docs.requests(CLIENT_JWKS) >= 1,
        "the keys came from the jwks_uri"
    );
    dop.unregister(&client).await;
}

/// Where the suite serves its sector identifier document (`AddSectorIdentifierUriToDynamicRegistrationRequest`:
/// `<base_url>/redirect_uris.json`), here on the document server.
const SECTOR_DOCUMENT: &str = "/redirect_uris.json";

/// The two sector modules' registration: `subject_type: pairwise`
/// (`AddSubjectTypePairwiseToDynamicRegistrationRequest`) and the `sector_identifier_uri` of the
/// document `listed` (`CreateSectorRedirectUris`, `CreateInvalidSectorRedirectUris`), which the
/// suite serves as a JSON array. Discovery must offer `pairwise` (the modules' skip condition).
fn sector_registration(dop: &DynamicOp, module: &str, listed: &[String]) -> (Value, ClientKey) {
    assert!(
        checks::has(&dop.served["subject_types_supported"], "pairwise"),
        "Server configuration does not explicitly support pairwise subject type"
    );
    dop.docs.serve(SECTOR_DOCUMENT, Reply::json(&json!(listed)));
    let key = ClientKey::kidless();
    let mut request = DynamicOp::registration_request(module, &key, None);
    request["subject_type"] = json!("pairwise");
    request["sector_identifier_uri"] = json!(dop.docs.url(SECTOR_DOCUMENT));
    (request, key)
}

/// `OIDCCRegistrationSectorUri`: a sector identifier document listing the callback makes a
/// successful registration (the module stops there; here the pairwise client also signs in, and
/// its `sub` is not the user id).
async fn dynamic_oidcc_registration_sector_uri(backend: Backend) {
    let dop = DynamicOp::start(backend).await;
    let (request, key) =
        sector_registration(&dop, "oidcc-registration-sector-uri", &[redirect_uri()]);
    let client = dop.register(&request, key).await;
    assert_eq!(
        dop.docs.requests(SECTOR_DOCUMENT),
        1,
        "the document was read"
    );
    assert_eq!(client.answer["subject_type"], "pairwise");
    let request = dop.op.request(&client.rp);
    let flow = dop.flow(&fresh_browser(), &client, &request).await;
    let sub = flow.userinfo["sub"].as_str().expect("sub");
    // User ids are UUIDs; a pairwise identifier is not one.
    assert!(
        !sub.is_empty() && uuid::Uuid::parse_str(sub).is_err(),
        "a pairwise sub: {sub}"
    );
    dop.unregister(&client).await;
}

/// `OIDCCRegistrationSectorBad` (OP-Registration-Sector-Bad): a sector identifier document that
/// does not list the callback is refused: `EnsureContentTypeJson`, `EnsureHttpStatusCodeIs400`,
/// `CheckErrorFromDynamicRegistrationEndpointIsInvalidClientMetadata`.
async fn dynamic_oidcc_registration_sector_bad(backend: Backend) {
    let dop = DynamicOp::start(backend).await;
    let (request, _) = sector_registration(
        &dop,
        "oidcc-registration-sector-bad",
        &["https://example.com/op".to_owned()],
    );
    let response = dop.post_registration(&request).await;
    assert_eq!(
        media_type(&response),
        "application/json",
        "EnsureContentTypeJson"
    );
    assert_eq!(
        response.status(),
        StatusCode::BAD_REQUEST,
        "EnsureHttpStatusCodeIs400"
    );
    assert_eq!(
        json_of(response).await["error"],
        "invalid_client_metadata",
        "CheckErrorFromDynamicRegistrationEndpointIsInvalidClientMetadata"
    );
    assert_eq!(
        dop.docs.requests(SECTOR_DOCUMENT),
        1,
        "the document was read"
    );
}

/// `OIDCCServerRotateKeys` `fetchAndValidateJwks`: `FetchServerKeys`, `CheckServerKeysIsValid`,
/// `ValidateServerJWKs`, `CheckForKeyIdInServerJWKs`, `CheckDistinctKeyIdValueInServerJWKs`,
/// `EnsureServerJwksDoesNotContainPrivateOrSymmetricKeys`.
async fn fetch_and_validate_jwks(dop: &DynamicOp) -> Vec<Value> {
    let response = dop
        .op
        .app
        .client
        .get(dop.op.discovery["jwks_uri"].as_str().unwrap())
        .sent()
        .await;
    assert_eq!(response.status(), 200, "FetchServerKeys");
    let jwks = json_of(response).await;
    checks::server_jwks(&jwks, true);
    jwks["keys"].as_array().unwrap().clone()
}

/// A key's public material (`n` for RSA, `x`/`y` for EC).
fn material(key: &Value) -> (Value, Value) {
    match key["kty"].as_str() {
        Some("RSA") => (key["n"].clone(), key["e"].clone()),
        _ => (key["x"].clone(), key["y"].clone()),
    }
}

/// `OIDCCServerRotateKeys` (OP-Rotation-OP-Sig): the JWKS before and after the tester rotates
/// the OP's keys (here an administrator, `POST /admin/keys/rotate`): a new key with a new `kid`
/// and new material (`VerifyNewJwksHasNewSigningKey`), every old key still published
/// (`VerifyNewJwksStillHasOldSigningKey`, WARNING), distinct kids.
async fn dynamic_oidcc_server_rotate_keys(backend: Backend) {
    let dop = DynamicOp::start(backend).await;
    let original = fetch_and_validate_jwks(&dop).await;
    // TellUserToRotateOpKeys.
    dop.op.app.ready_spares(&dop.admin).await;
    let rotated = dop
        .op
        .app
        .post_bearer("/admin/keys/rotate", &dop.admin)
        .await;
    assert_eq!(rotated.status(), StatusCode::CREATED);
    let new = fetch_and_validate_jwks(&dop).await;
    let new_key = new.iter().find(|key| {
        original
            .iter()
            .all(|old| old["kid"] != key["kid"] && material(old) != material(key))
    });
    assert!(
        new_key.is_some(),
        "VerifyNewJwksHasNewSigningKey: {original:?} → {new:?}"
    );
    for old in &original {
        assert!(
            new.iter()
                .any(|key| key["kid"] == old["kid"] && material(key) == material(old)),
            "VerifyNewJwksStillHasOldSigningKey: {}",
            old["kid"]
        );
    }
}

/// `ExtractRefreshTokenFromTokenResponse`, `EnsureServerConfigurationSupportsRefreshToken`
/// (WARNING), `EnsureRefreshTokenContainsAllowedCharactersOnly`: the refresh token of `flow`.
fn refresh_token_of(dop: &DynamicOp, flow: &Flow) -> String {
    let refresh = flow.tokens.body["refresh_token"]
        .as_str()
        .expect("a refresh token (else the module is SKIPPED with a WARNING)")
        .to_owned();
    assert!(
        checks::has(&dop.served["grant_types_supported"], "refresh_token"),
        "EnsureServerConfigurationSupportsRefreshToken"
    );
    checks::printable(&refresh, "RefreshToken");
    refresh
}

/// `RefreshTokenRequestSteps`: a refresh a second later (with `scope` for the first client),
/// its checks, the refreshed ID token compared with the first; userinfo with the new access
/// token. Returns the refresh token the client holds now.
async fn refresh(
    dop: &DynamicOp,
    client: &Client,
    flow: &Flow,
    refresh_token: String,
    scope: bool,
) -> String {
    dop.op.wait(1);
    let mut form = vec![
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token.as_str()),
    ];
    if scope {
        form.push(("scope", "openid offline_access"));
    }
    let body = refresh_response(dop.token(client, &form, None).await).await;
    if let Some(id_token) = body["id_token"].as_str() {
        let claims = checks::verify_signature(id_token, &dop.op.jwks);
        compare_id_token_claims(&flow.tokens.id_claims, &claims);
    }
    let response = dop
        .op
        .userinfo(body["access_token"].as_str().unwrap())
        .await;
    assert_eq!(response.status(), 200, "userinfo with the refreshed token");
    body["refresh_token"]
        .as_str()
        .map_or(refresh_token, str::to_owned)
}

/// `AddRefreshTokenGrantTypeToDynamicRegistrationRequest`.
fn with_refresh_token_grant(request: &mut Value) {
    request["grant_types"] = json!(["authorization_code", "refresh_token"]);
}

/// The refresh modules' request: `scope=openid offline_access`
/// (`SetScopeInClientConfigurationToOpenIdOfflineAccess…`) and `prompt=consent`
/// (`AddPromptConsentToAuthorizationEndpointRequestIfScopeContainsOfflineAccess`).
fn offline_request(dop: &DynamicOp, client: &Client) -> AuthRequest {
    assert!(
        checks::has(&dop.served["scopes_supported"], "offline_access"),
        "offline_access advertised: the module asks for it"
    );
    dop.op
        .request(&client.rp)
        .set("scope", "openid offline_access")
        .set("prompt", "consent")
}

/// `OIDCCRefreshTokenRPKeyRotation` (OP-Rotation-RP-Sig): a `jwks_uri` client with the refresh
/// grant redeems its code; then it rotates its key (a new key with a new `kid` replaces the old
/// one at its `jwks_uri`) and refreshes with an assertion under the new key: `200`, then
/// userinfo.
async fn dynamic_oidcc_refresh_token_rp_key_rotation(backend: Backend) {
    let dop = DynamicOp::start(backend).await;
    let mut client = dop
        .jwks_uri_client(
            "oidcc-refresh-token-rp-key-rotation",
            with_refresh_token_grant,
        )
        .await;
    let request = offline_request(&dop, &client);
    let flow = dop.flow(&fresh_browser(), &client, &request).await;
    let refresh_token = refresh_token_of(&dop, &flow);
    // Cycling keys in RP jwks_uri.
    let rotated = ClientKey::with_kid();
    assert_ne!(rotated.kid, client.key.kid);
    dop.docs
        .serve(CLIENT_JWKS, Reply::json(&rotated.public_jwks()));
    client.key = rotated;
    refresh(&dop, &client, &flow, refresh_token, true).await;
    dop.unregister(&client).await;
}

/// `OIDCCRefreshToken` (two clients, `AbstractOIDCCMultipleClient`): per client a flow with
/// `offline_access` and `prompt=consent` (the second with a 43-character nonce), a refresh and
/// userinfo; then client 2's refresh token presented by client 1: `invalid_grant`.
async fn dynamic_oidcc_refresh_token(backend: Backend) {
    let dop = DynamicOp::start(backend).await;
    let client = dop
        .client("oidcc-refresh-token", with_refresh_token_grant)
        .await;
    let client2 = dop
        .client("oidcc-refresh-token", with_refresh_token_grant)
        .await;
    let browser = fresh_browser();
    let mut latest = Vec::new();
    for (each, nonce_length, first) in [(&client, 10, true), (&client2, 43, false)] {
        let request = offline_request(&dop, each).set("nonce", &random_alnum(nonce_length));
        let flow = dop.flow(&browser, each, &request).await;
        let refresh_token = refresh_token_of(&dop, &flow);
        latest.push(refresh(&dop, each, &flow, refresh_token, first).await);
    }
    // RefreshTokenRequestExpectingErrorSteps: client 2's token presented by client 1.
    let response = dop
        .token(
            &client,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &latest[1]),
            ],
            None,
        )
        .await;
    checks::token_error_invalid_grant(response).await;
    dop.unregister(&client).await;
    dop.unregister(&client2).await;
}

/// `OIDCCEnsureClientAssertionWithIssAudSucceeds`: the client assertion's `aud` is the issuer
/// (`UpdateClientAuthenticationAssertionClaimsWithISSAud`), not the token endpoint: accepted.
async fn dynamic_oidcc_ensure_client_assertion_with_iss_aud_succeeds(backend: Backend) {
    let dop = DynamicOp::start(backend).await;
    let client = dop
        .client(
            "oidcc-ensure-client-assertion-with-iss-aud-succeeds",
            |_| {},
        )
        .await;
    let request = dop.op.request(&client.rp);
    dop.flow_with(&fresh_browser(), &client, &request, Some(ISSUER))
        .await;
    dop.unregister(&client).await;
}

/// `ConvertAuthorizationEndpointRequestToRequestObject`: the request's parameters (client_id,
/// nonce, redirect_uri, response_type, scope, state) as request object claims, with `iss` (the
/// client) and `aud` (the issuer) as the suite adds them for signed objects; no `exp`, `jti` or
/// `nbf`.
fn request_object_claims(request: &AuthRequest, client: &Client) -> Value {
    let mut claims = serde_json::Map::new();
    for name in [
        "client_id",
        "nonce",
        "redirect_uri",
        "response_type",
        "scope",
        "state",
    ] {
        if let Some(value) = request.get(name) {
            claims.insert(name.to_owned(), json!(value));
        }
    }
    claims.insert("iss".into(), json!(client.rp.id));
    claims.insert("aud".into(), json!(ISSUER));
    Value::Object(claims)
}

/// An unsigned request object (`alg: none`, empty signature).
fn unsigned_request_object(claims: &Value) -> String {
    use base64::Engine;
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    format!(
        "{}.{}.",
        b64(br#"{"alg":"none"}"#),
        b64(claims.to_string().as_bytes())
    )
}

/// Where the document server serves the request object (`request_uri`, with the fragment the
/// suite adds, `#` and random characters).
const REQUEST_OBJECT: &str = "/requesturi/object";

/// The request-by-reference modules (19, 20): the client registers `request_uris` (with a
/// fragment) and, for `signed`, `request_object_signing_alg: RS256`; the document server serves
/// the whole request as a request object (`application/jwt`) — unsigned, or signed RS256 with
/// the client's kid-less key and `typ: JWT`; outside it only `client_id`, `redirect_uri`,
/// `response_type`, `scope` and `request_uri`. The flow completes with the `state` and `nonce`
/// that exist only inside the object (the callback and ID-token checks), and the object was
/// fetched once, without the fragment.
async fn request_uri_module(backend: Backend, module: &str, signed: bool) {
    let dop = DynamicOp::start(backend).await;
    assert_eq!(
        dop.served["request_uri_parameter_supported"],
        json!(true),
        "CheckDiscEndpointRequestUriParameterSupported"
    );
    let algs = &dop.served["request_object_signing_alg_values_supported"];
    if signed {
        assert!(
            checks::has(algs, "RS256"),
            "CheckDiscEndpointRequestObjectSigningAlgValuesSupportedContainsRS256"
        );
    } else {
        assert!(
            checks::has(algs, "none"),
            "the skip condition: none offered"
        );
    }
    let request_uri = format!("{}#{}", dop.docs.url(REQUEST_OBJECT), random_alnum(20));
    let client = dop
        .client(module, |request| {
            request["request_uris"] = json!([request_uri]);
            if signed {
                request["request_object_signing_alg"] = json!("RS256");
            }
        })
        .await;
    assert_eq!(client.answer["request_uris"], json!([request_uri]));
    let request = dop.op.request(&client.rp);
    let claims = request_object_claims(&request, &client);
    let object = if signed {
        client
            .key
            .key
            .jws(&json!({ "alg": "RS256", "typ": "JWT" }), &claims)
    } else {
        unsigned_request_object(&claims)
    };
    dop.docs.serve(
        REQUEST_OBJECT,
        Reply {
            status: 200,
            headers: vec![("Content-Type".into(), "application/jwt".into())],
            body: object.into_bytes(),
            stall: false,
        },
    );
    let sent = request
        .clone()
        .without("state")
        .without("nonce")
        .set("request_uri", &request_uri);
    dop.flow_sending(&fresh_browser(), &client, &sent, &request, None)
        .await;
    assert_eq!(
        dop.docs.requests(REQUEST_OBJECT),
        1,
        "fetched once, without the fragment"
    );
    dop.unregister(&client).await;
}

/// `OIDCCRequestUriUnsigned` (OP-request_uri-Unsigned): see [`request_uri_module`].
async fn dynamic_oidcc_request_uri_unsigned(backend: Backend) {
    request_uri_module(backend, "oidcc-request-uri-unsigned", false).await
}

/// `OIDCCRequestUriSignedRS256` (OP-request_uri-Sig): see [`request_uri_module`].
async fn dynamic_oidcc_request_uri_signed_rs256(backend: Backend) {
    request_uri_module(backend, "oidcc-request-uri-signed-rs256", true).await
}

/// `OIDCCEnsureRequestObjectWithRedirectUri`: an unsigned request object by value with the
/// good `redirect_uri` inside and `<callback>_invalid` outside. Passing is the inner URI used
/// or an error page; the object's parameters supersede the outer ones here, so the flow
/// completes at the good URI (never an error at the registered one).
async fn dynamic_oidcc_ensure_request_object_with_redirect_uri(backend: Backend) {
    let dop = DynamicOp::start(backend).await;
    let client = dop
        .client("oidcc-ensure-request-object-with-redirect-uri", |_| {})
        .await;
    let request = dop.op.request(&client.rp);
    let object = unsigned_request_object(&request_object_claims(&request, &client));
    let sent = request
        .clone()
        .without("state")
        .without("nonce")
        .set("redirect_uri", &format!("{}_invalid", redirect_uri()))
        .set("request", &object);
    let flow = dop
        .flow_sending(&fresh_browser(), &client, &sent, &request, None)
        .await;
    assert!(!flow.code.is_empty());
    dop.unregister(&client).await;
}

// The modules in the plan's order (its numbering in /work/notes/dynamic-plan-report.md):
//  1 oidcc-idtoken-rs256                         dynamic_oidcc_idtoken_rs256
//  2 oidcc-idtoken-unsigned                      dynamic_oidcc_idtoken_unsigned
//  3 oidcc-userinfo-rs256                        dynamic_oidcc_userinfo_rs256
//  4 oidcc-ensure-redirect-uri-in-authorization-request
//                                                dynamic_oidcc_ensure_redirect_uri_in_authorization_request
//  5 oidcc-redirect-uri-query-OK                 dynamic_oidcc_redirect_uri_query_ok
//  6 oidcc-redirect-uri-query-mismatch           dynamic_oidcc_redirect_uri_query_mismatch
//  7 oidcc-redirect-uri-query-added              dynamic_oidcc_redirect_uri_query_added
//  8 oidcc-redirect-uri-regfrag                  dynamic_oidcc_redirect_uri_regfrag
//  9 oidcc-discovery-endpoint-verification       dynamic_oidcc_discovery_endpoint_verification
//                                                (implicit members not applicable)
// 10 oidcc-server                                dynamic_oidcc_server
// 11 oidcc-registration-logo-uri                 dynamic_oidcc_registration_logo_uri
// 12 oidcc-registration-policy-uri               dynamic_oidcc_registration_policy_uri
// 13 oidcc-registration-tos-uri                  dynamic_oidcc_registration_tos_uri
// 14 oidcc-registration-jwks-uri                 dynamic_oidcc_registration_jwks_uri
// 15 oidcc-registration-sector-uri               dynamic_oidcc_registration_sector_uri
// 16 oidcc-registration-sector-bad               dynamic_oidcc_registration_sector_bad
// 17 oidcc-server-rotate-keys                    dynamic_oidcc_server_rotate_keys
// 18 oidcc-refresh-token-rp-key-rotation         dynamic_oidcc_refresh_token_rp_key_rotation
// 19 oidcc-request-uri-unsigned                  dynamic_oidcc_request_uri_unsigned
// 20 oidcc-request-uri-signed-rs256              dynamic_oidcc_request_uri_signed_rs256
// 21 oidcc-ensure-request-object-with-redirect-uri
//                                                dynamic_oidcc_ensure_request_object_with_redirect_uri
// 22 oidcc-refresh-token                         dynamic_oidcc_refresh_token
// 23 oidcc-ensure-client-assertion-with-iss-aud-succeeds
//                                                dynamic_oidcc_ensure_client_assertion_with_iss_aud_succeeds
oidf_modules!(
    dynamic_oidcc_idtoken_rs256,
    dynamic_oidcc_idtoken_unsigned,
    dynamic_oidcc_userinfo_rs256,
    dynamic_oidcc_ensure_redirect_uri_in_authorization_request,
    dynamic_oidcc_redirect_uri_query_ok,
    dynamic_oidcc_redirect_uri_query_mismatch,
    dynamic_oidcc_redirect_uri_query_added,
    dynamic_oidcc_redirect_uri_regfrag,
    dynamic_oidcc_discovery_endpoint_verification,
    dynamic_oidcc_server,
    dynamic_oidcc_registration_logo_uri,
    dynamic_oidcc_registration_policy_uri,
    dynamic_oidcc_registration_tos_uri,
    dynamic_oidcc_registration_jwks_uri,
    dynamic_oidcc_registration_sector_uri,
    dynamic_oidcc_registration_sector_bad,
    dynamic_oidcc_server_rotate_keys,
    dynamic_oidcc_refresh_token_rp_key_rotation,
    dynamic_oidcc_request_uri_unsigned,
    dynamic_oidcc_request_uri_signed_rs256,
    dynamic_oidcc_ensure_request_object_with_redirect_uri,
    dynamic_oidcc_refresh_token,
    dynamic_oidcc_ensure_client_assertion_with_iss_aud_succeeds,
);
