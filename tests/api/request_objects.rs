//! Request objects (OIDC Core §6.1 `request`, §6.2 `request_uri`; RFC 9101 where it does not
//! conflict with Core), the OIDF dynamic plan's oidcc-request-uri-unsigned,
//! oidcc-request-uri-signed-rs256 and oidcc-ensure-request-object-with-redirect-uri: objects by
//! value (unsigned, RS256, ES256, PS256, signed with kid-less client keys) and by reference
//! (served over https by the document server, fetched only when registered), the object's
//! parameters superseding the outer ones (state and nonce inside only reach the redirect and
//! the ID token; an inner redirect URI wins over a bad outer one), and every refusal: AUTHZ-09
//! and REQOBJ-01..07 (security-cases.md), with the JWT cases they rest on (JWT-01/02/03/06/10/12).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portcullis::keys::SigningAlg;
use portcullis::oidc::clients::{PkcePolicy, RequestObjectAlg};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{
    Backend, ClientSpec, DocServer, REDIRECT, Reply, Sent, TestApp, TestEnv, browser,
    client_secret, code_of, decode_claims, enc, json_of, location_params, param, pkce, sign_in,
    stdout_json,
};
use crate::on_both_backends;
use crate::outbound::outbound_args;
use crate::stub::{TestKey, now};

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The PKCE verifier of the objects' `code_challenge`.
const VERIFIER: &str = "request-object-verifier-0123456789-abcdefghijklmn";

/// A JWK of `key` without `kid` (the OpenID certification client registers its key so).
fn kidless(key: &TestKey) -> Value {
    let mut jwk = key.jwk();
    jwk.as_object_mut().unwrap().remove("kid");
    jwk
}

/// [`kidless`] without `alg` either: an RSA key for RS256 and PS256 alike.
fn kidless_any_alg(key: &TestKey) -> Value {
    let mut jwk = kidless(key);
    jwk.as_object_mut().unwrap().remove("alg");
    jwk
}

/// An unsigned request object (`alg: none`, empty signature).
fn unsigned(claims: &Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#);
    format!("{header}.{}.", URL_SAFE_NO_PAD.encode(claims.to_string()))
}

/// A request object signed by `key` with its own algorithm, `typ: JWT`, no `kid`.
fn signed(key: &TestKey, claims: &Value) -> String {
    key.jws(&json!({ "alg": key.alg.as_str(), "typ": "JWT" }), claims)
}

/// A request object signed by the RSA `key` with PS256, no `kid`.
fn signed_pss(key: &TestKey, claims: &Value) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"PS256"}"#),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = key.sign_pss(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

/// The whole request of `client_id` as the objects carry it (the certification's
/// `iss`/`aud`, no `exp`, `jti` or `nbf`): state, nonce and the PKCE challenge only inside.
fn inner(app: &TestApp, client_id: &str) -> Value {
    json!({
        "iss": client_id, "aud": app.issuer, "client_id": client_id, "response_type": "code",
        "redirect_uri": REDIRECT, "scope": "openid", "state": format!("{client_id}-inner-state"),
        "nonce": format!("{client_id}-inner-nonce"), "code_challenge": pkce(VERIFIER),
        "code_challenge_method": "S256",
    })
}

/// `/authorize` with what the certification sends outside the object (`client_id`,
/// `redirect_uri`, `response_type`, `scope`) and `extra`.
fn outer_url(app: &TestApp, client_id: &str, extra: &[(&str, &str)]) -> String {
    let mut query = format!(
        "/authorize?client_id={client_id}&redirect_uri={}&response_type=code&scope=openid",
        enc(REDIRECT)
    );
    for (name, value) in extra {
        query.push_str(&format!("&{name}={}", enc(value)));
    }
    app.url(&query)
}

/// A server on `backend` fetching from `docs` (loopback allowed for the test, 1 s limit) with
/// `alice` and the clients: `plain` (a secret, no algorithm registered, a request URI with a
/// fragment), `signed` (private_key_jwt with kid-less RS256 and ES256 keys, RS256 registered,
/// a request URI), `any` (kid-less RSA key without `alg` and an ES256 key, no algorithm
/// registered). The secret of `plain`.
async fn server(backend: Backend, docs: &DocServer) -> (TestEnv, TestApp, Keys, String) {
    let env = TestEnv::new(backend).await;
    let app = env.spawn_with(outbound_args(&env, docs, true)).await;
    app.create_user("alice").await;
    let keys = Keys {
        rs: TestKey::new(SigningAlg::Rs256),
        es: TestKey::new(SigningAlg::Es256),
        any_rs: TestKey::new(SigningAlg::Rs256),
        any_es: TestKey::new(SigningAlg::Es256),
    };
    let plain = app
        .create_client(
            ClientSpec::new("plain")
                .redirect_uri(REDIRECT)
                .first_party()
                .request_uri(&docs.url("/plain.jwt#v1")),
        )
        .await;
    app.create_client(
        ClientSpec::new("signed")
            .redirect_uri(REDIRECT)
            .first_party()
            .private_key_jwt(json!({ "keys": [kidless(&keys.rs), kidless(&keys.es)] }))
            .request_object_signing_alg(RequestObjectAlg::Rs256)
            .request_uri(&docs.url("/signed.jwt")),
    )
    .await;
    app.create_client(
        ClientSpec::new("any")
            .redirect_uri(REDIRECT)
            .first_party()
            .private_key_jwt(
                json!({ "keys": [kidless_any_alg(&keys.any_rs), kidless(&keys.any_es)] }),
            ),
    )
    .await;
    (env, app, keys, client_secret(&plain))
}

/// The clients' keys.
struct Keys {
    /// `signed`'s RS256 key.
    rs: TestKey,
    /// `signed`'s ES256 key.
    es: TestKey,
    /// `any`'s RSA key (no `alg` in its JWK).
    any_rs: TestKey,
    /// `any`'s ES256 key.
    any_es: TestKey,
}

/// A 200 of `jwt` as `content_type`.
fn jwt_reply(jwt: &str, content_type: &str) -> Reply {
    Reply {
        status: 200,
        headers: vec![("Content-Type".into(), content_type.into())],
        body: jwt.as_bytes().to_vec(),
        stall: false,
    }
}

/// Signs in as `alice` from `url` (a first-party client: no consent): `(state, code)` of the
/// redirect to [`REDIRECT`].
async fn authorized(app: &TestApp, url: &str) -> (Option<String>, String) {
    let response = sign_in(&browser(), &app.address, url, "alice").await;
    let (location, params) = location_params(&response);
    assert!(location.starts_with(REDIRECT), "{location}");
    assert_eq!(param(&params, "iss").as_deref(), Some(app.issuer.as_str()));
    (param(&params, "state"), code_of(&response))
}

/// Redeems `code` (with [`VERIFIER`]) as `client_id`: with `secret` (Basic) or, without one, an
/// assertion signed by `key`. The ID token's claims.
async fn id_claims(
    app: &TestApp,
    client_id: &str,
    code: &str,
    secret: Option<&str>,
    key: Option<&TestKey>,
) -> Value {
    let mut form = vec![
        ("grant_type", "authorization_code".to_owned()),
        ("code", code.to_owned()),
        ("redirect_uri", REDIRECT.to_owned()),
        ("code_verifier", VERIFIER.to_owned()),
    ];
    let mut request = app.client.post(app.url("/token"));
    if let Some(secret) = secret {
        request = request.basic_auth(client_id, Some(secret));
    }
    if let Some(key) = key {
        let now = now();
        let assertion = key.jws(
            &json!({ "alg": key.alg.as_str() }),
            &json!({
                "iss": client_id, "sub": client_id, "aud": app.issuer, "iat": now,
                "exp": now + 60, "jti": uuid::Uuid::new_v4().to_string(),
            }),
        );
        form.push(("client_assertion_type", JWT_BEARER.to_owned()));
        form.push(("client_assertion", assertion));
    }
    let response = request.form(&form).sent().await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = json_of(response).await;
    decode_claims(body["id_token"].as_str().unwrap())
}

/// The error `url` redirected to [`REDIRECT`] with: `(error, state)`; `iss` is checked.
async fn refused(app: &TestApp, url: &str) -> (String, Option<String>) {
    let response = app.client.get(url).sent().await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "{url}");
    let (location, params) = location_params(&response);
    assert!(location.starts_with(REDIRECT), "{location}");
    assert!(param(&params, "code").is_none(), "{location}");
    assert!(param(&params, "error_description").is_some());
    assert_eq!(param(&params, "iss").as_deref(), Some(app.issuer.as_str()));
    (param(&params, "error").unwrap(), param(&params, "state"))
}

/// `url` answers the error page: 400 HTML, no redirect.
async fn error_page(app: &TestApp, url: &str) -> String {
    let response = app.client.get(url).sent().await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{url}");
    assert!(response.headers().get("location").is_none());
    response.text().await.unwrap()
}

// Discovery says what is supported (module 20 fails without RS256 listed); by value: an
// unsigned object of a client that registered no algorithm, RS256 and ES256 objects signed with
// kid-less keys, PS256 with an RSA key registered without alg. State and nonce only inside the
// object reach the redirect and the ID token (module 19's condition); the PKCE challenge inside
// binds the code.
async fn request_objects_by_value_carry_the_whole_request(backend: Backend) {
    let docs = DocServer::start().await;
    let (_env, app, keys, secret) = server(backend, &docs).await;
    let discovery = json_of(app.get("/.well-known/openid-configuration").await).await;
    assert_eq!(discovery["request_parameter_supported"], true);
    assert_eq!(discovery["request_uri_parameter_supported"], true);
    assert_eq!(discovery["require_request_uri_registration"], true);
    assert_eq!(
        discovery["request_object_signing_alg_values_supported"],
        json!(["none", "RS256", "PS256", "ES256"])
    );

    let cases: [(&str, String, Option<&str>, Option<&TestKey>); 4] = [
        (
            "plain",
            unsigned(&inner(&app, "plain")),
            Some(&secret),
            None,
        ),
        (
            "signed",
            signed(&keys.rs, &inner(&app, "signed")),
            None,
            Some(&keys.rs),
        ),
        (
            "any",
            signed(&keys.any_es, &inner(&app, "any")),
            None,
            Some(&keys.any_es),
        ),
        (
            "any",
            signed_pss(&keys.any_rs, &inner(&app, "any")),
            None,
            Some(&keys.any_es),
        ),
    ];
    for (client_id, object, secret, key) in cases {
        let url = outer_url(&app, client_id, &[("request", &object)]);
        let (state, code) = authorized(&app, &url).await;
        assert_eq!(state, Some(format!("{client_id}-inner-state")));
        let claims = id_claims(&app, client_id, &code, secret, key).await;
        assert_eq!(claims["nonce"], format!("{client_id}-inner-nonce"));
        assert_eq!(claims["aud"], client_id);
    }
    // The same object as a form POST to /authorize.
    let object = unsigned(&inner(&app, "plain"));
    let page = browser()
        .post(app.url("/authorize"))
        .form(&[
            ("client_id", "plain"),
            ("response_type", "code"),
            ("request", &object),
        ])
        .sent()
        .await;
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("name=\"password\""));
    assert_eq!(docs.accepts(), 0, "nothing was fetched");
}

// REQOBJ-01 / AUTHZ-09 (Keycloak CVE-2020-10770): a request_uri is fetched only when the client
// registered it, compared as an exact string, fragment included (the fragment is not sent); an
// unregistered one — another path, the registered one without its fragment, another client's —
// is refused with invalid_request_uri and no connection is made. Module 19: the unsigned object
// served as application/oauth-authz-req+jwt; module 20: an RS256 object (kid-less key, typ JWT,
// iss and aud, no exp/jti/nbf) served as application/jwt.
async fn request_uris_are_fetched_only_when_registered(backend: Backend) {
    let docs = DocServer::start().await;
    let (_env, app, keys, secret) = server(backend, &docs).await;
    docs.serve(
        "/plain.jwt",
        jwt_reply(
            &unsigned(&inner(&app, "plain")),
            "application/oauth-authz-req+jwt",
        ),
    );
    docs.serve(
        "/signed.jwt",
        jwt_reply(&signed(&keys.rs, &inner(&app, "signed")), "application/jwt"),
    );
    docs.serve(
        "/evil.jwt",
        jwt_reply(&unsigned(&inner(&app, "plain")), "application/jwt"),
    );

    for (request_uri, why) in [
        (docs.url("/evil.jwt"), "another URL"),
        (
            docs.url("/plain.jwt"),
            "the registered URL without its fragment",
        ),
        (docs.url("/plain.jwt#v2"), "another fragment"),
        (docs.url("/plain.jwt#V1"), "the fragment in another case"),
        (docs.url("/signed.jwt"), "another client's URL"),
        (
            "https://169.254.169.254/latest/meta-data".to_owned(),
            "a cloud metadata address",
        ),
    ] {
        let url = outer_url(
            &app,
            "plain",
            &[("request_uri", &request_uri), ("state", "outer")],
        );
        let (error, state) = refused(&app, &url).await;
        assert_eq!(error, "invalid_request_uri", "{why}");
        assert_eq!(state.as_deref(), Some("outer"), "{why}");
    }
    assert_eq!(docs.accepts(), 0, "no connection for an unregistered URL");

    let registered = docs.url("/plain.jwt#v1");
    let url = outer_url(&app, "plain", &[("request_uri", &registered)]);
    let (state, code) = authorized(&app, &url).await;
    assert_eq!(state.as_deref(), Some("plain-inner-state"));
    let claims = id_claims(&app, "plain", &code, Some(&secret), None).await;
    assert_eq!(claims["nonce"], "plain-inner-nonce");
    assert_eq!(
        docs.requests("/plain.jwt"),
        1,
        "fetched without its fragment"
    );

    let url = outer_url(&app, "signed", &[("request_uri", &docs.url("/signed.jwt"))]);
    let (state, code) = authorized(&app, &url).await;
    assert_eq!(state.as_deref(), Some("signed-inner-state"));
    let claims = id_claims(&app, "signed", &code, None, Some(&keys.rs)).await;
    assert_eq!(claims["nonce"], "signed-inner-nonce");
    assert_eq!(docs.requests("/evil.jwt"), 0);
}

// REQOBJ-06 (module 21): the object's redirect_uri supersedes the outer one, and is checked as
// usual. A good one inside wins over an unregistered one outside (the code goes to the
// registered URI); an unregistered one inside is the error page even with a good one outside;
// an object that fails with an unregistered outer URI is the error page, never a redirect.
async fn the_inner_redirect_uri_wins_and_is_checked(backend: Backend) {
    let docs = DocServer::start().await;
    let (_env, app, keys, secret) = server(backend, &docs).await;
    let bad = format!("{REDIRECT}_invalid");
    let object = unsigned(&inner(&app, "plain"));
    let url = app.url(&format!(
        "/authorize?client_id=plain&redirect_uri={}&response_type=code&scope=openid&request={}",
        enc(&bad),
        enc(&object)
    ));
    let (state, code) = authorized(&app, &url).await;
    assert_eq!(state.as_deref(), Some("plain-inner-state"));
    id_claims(&app, "plain", &code, Some(&secret), None).await;

    let mut unregistered = inner(&app, "plain");
    unregistered["redirect_uri"] = json!(bad);
    let url = outer_url(&app, "plain", &[("request", &unsigned(&unregistered))]);
    let page = error_page(&app, &url).await;
    assert!(page.contains("redirect URI"), "{page}");

    // A refused object (an ES256 signature for a client registered RS256) with a bad outer URI.
    let wrong = signed(&keys.es, &inner(&app, "signed"));
    let url = app.url(&format!(
        "/authorize?client_id=signed&redirect_uri={}&response_type=code&request={}",
        enc(&bad),
        enc(&wrong)
    ));
    error_page(&app, &url).await;
}

// REQOBJ-02..05 and the JWT cases under them: every object that must not be trusted is refused
// with invalid_request_object (invalid_request for both request and request_uri), at the outer
// request's registered redirect URI with the outer state, never with the object's.
async fn untrusted_request_objects_are_refused(backend: Backend) {
    let docs = DocServer::start().await;
    let (_env, app, keys, _) = server(backend, &docs).await;
    let stranger = TestKey::new(SigningAlg::Rs256);
    let good = inner(&app, "signed");
    let with = |name: &str, value: Value| {
        let mut claims = good.clone();
        claims[name] = value;
        claims
    };
    let tampered = {
        let jwt = signed(&keys.rs, &good);
        let mut parts: Vec<String> = jwt.split('.').map(str::to_owned).collect();
        parts[1] = URL_SAFE_NO_PAD.encode(with("scope", json!("openid email")).to_string());
        parts.join(".")
    };
    let stripped = {
        let jwt = signed(&keys.rs, &good);
        format!("{}.", &jwt[..jwt.rfind('.').unwrap()])
    };
    let cases: Vec<(&str, String, &str)> = vec![
        // REQOBJ-02, JWT-01: unsigned for a client registered RS256; None is not none.
        ("signed", unsigned(&good), "none for an RS256 client"),
        (
            "signed",
            format!(
                "{}.{}.",
                URL_SAFE_NO_PAD.encode(br#"{"alg":"None"}"#),
                URL_SAFE_NO_PAD.encode(good.to_string())
            ),
            "alg None",
        ),
        // REQOBJ-02: another algorithm than the registered one, with the client's own key.
        (
            "signed",
            signed(&keys.es, &good),
            "ES256 for an RS256 client",
        ),
        // REQOBJ-03, JWT-02: a tampered payload, a stripped signature.
        ("signed", tampered, "tampered payload"),
        ("signed", stripped, "signature stripped"),
        // REQOBJ-03, JWT-08: a key the client never registered.
        ("signed", signed(&stranger, &good), "another key"),
        // JWT-03/JWT-06: PS256 with a key whose JWK says RS256; the algorithm is the key's.
        (
            "signed",
            signed_pss(&keys.rs, &good),
            "PS256 on an RS256 key",
        ),
        // REQOBJ-04: iss, aud, exp (JWT-12: a string exp is no exp).
        (
            "signed",
            signed(&keys.rs, &with("iss", json!("any"))),
            "iss",
        ),
        (
            "signed",
            signed(&keys.rs, &with("aud", json!("https://other.example"))),
            "aud",
        ),
        (
            "signed",
            signed(&keys.rs, &with("exp", json!(now() - 3600))),
            "expired",
        ),
        (
            "signed",
            signed(&keys.rs, &with("exp", json!((now() + 600).to_string()))),
            "exp as a string",
        ),
        // REQOBJ-05: an object of another client, for another flow, or nesting another object.
        (
            "signed",
            signed(&keys.rs, &with("client_id", json!("any"))),
            "inner client_id",
        ),
        (
            "signed",
            signed(&keys.rs, &with("response_type", json!("token"))),
            "inner response_type",
        ),
        (
            "signed",
            signed(&keys.rs, &with("request_uri", json!(docs.url("/x")))),
            "nested request_uri",
        ),
        // JWT-10: duplicate members.
        (
            "any",
            keys.any_es.jws_raw(
                br#"{"alg":"ES256"}"#,
                br#"{"client_id":"any","state":"a","state":"b"}"#,
            ),
            "duplicate member",
        ),
        // REQOBJ-07: by value over 16 KiB.
        (
            "any",
            unsigned(&with("state", json!("s".repeat(17 * 1024)))),
            "oversized",
        ),
        ("any", "not.a-jwt".to_owned(), "malformed"),
    ];
    for (client_id, object, why) in cases {
        let url = outer_url(&app, client_id, &[("request", &object), ("state", "outer")]);
        let (error, state) = refused(&app, &url).await;
        assert_eq!(error, "invalid_request_object", "{why}");
        assert_eq!(state.as_deref(), Some("outer"), "{why}: the outer state");
    }
    // Both by value and by reference.
    let url = outer_url(
        &app,
        "signed",
        &[
            ("request", &signed(&keys.rs, &good)),
            ("request_uri", &docs.url("/signed.jwt")),
            ("state", "outer"),
        ],
    );
    assert_eq!(refused(&app, &url).await.0, "invalid_request");
    assert_eq!(docs.accepts(), 0, "nothing was fetched");
}

// REQOBJ-07 (and SSRF-05..08 for this fetch): a registered request_uri that answers too much,
// the wrong content type (JSON, text), slowly, with an error status or a redirect is refused
// with invalid_request_uri, the redirect not followed; the fetch is never cached.
async fn bad_request_uri_answers_are_refused(backend: Backend) {
    let docs = DocServer::start().await;
    let env = TestEnv::new(backend).await;
    let app = env.spawn_with(outbound_args(&env, &docs, true)).await;
    let object = unsigned(&json!({ "client_id": "bad", "state": "inner" }));
    let big = jwt_reply(
        &format!("{object}{}", "x".repeat(20 * 1024)),
        "application/jwt",
    );
    let mut slow = jwt_reply(&object, "application/jwt");
    slow.stall = true;
    let mut missing = jwt_reply(&object, "application/jwt");
    missing.status = 404;
    let mut redirect = jwt_reply(&object, "application/jwt");
    redirect.status = 302;
    redirect
        .headers
        .push(("Location".into(), docs.url("/target.jwt")));
    docs.serve("/target.jwt", jwt_reply(&object, "application/jwt"));
    let cases = [
        ("/big.jwt", big),
        ("/json.jwt", jwt_reply(&object, "application/json")),
        ("/text.jwt", jwt_reply(&object, "text/plain")),
        ("/slow.jwt", slow),
        ("/missing.jwt", missing),
        ("/redirect.jwt", redirect),
    ];
    let mut spec = ClientSpec::new("bad")
        .redirect_uri(REDIRECT)
        .pkce(PkcePolicy::Optional);
    for (path, _) in &cases {
        spec = spec.request_uri(&docs.url(path));
    }
    app.create_client(spec).await;
    for (path, reply) in cases {
        docs.serve(path, reply);
        for attempt in 1..=2 {
            let url = outer_url(
                &app,
                "bad",
                &[("request_uri", &docs.url(path)), ("state", "outer")],
            );
            let (error, state) = refused(&app, &url).await;
            assert_eq!(error, "invalid_request_uri", "{path}");
            assert_eq!(state.as_deref(), Some("outer"));
            assert_eq!(docs.requests(path), attempt, "{path}: not cached");
        }
    }
    assert_eq!(
        docs.requests("/target.jwt"),
        0,
        "the redirect was not followed"
    );
}

// Registration (REQOBJ-01's other half): request_uris are https (loopback aside, as for
// jwks_uri), at most 10 of at most 512 bytes, fragments kept; request_object_signing_alg is
// none, RS256, PS256 or ES256, a signed one needs keys that fit it. Dynamic registration
// echoes both (module 20's registration); the admin API and the CLI take them.
async fn request_uris_and_the_algorithm_are_registered_strictly(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let app = env
        .spawn_with(portcullis::config::SettingsArgs {
            client_registration: Some("token".into()),
            ..env.args()
        })
        .await;
    let admin = app.admin_token().await;
    let token = app.initial_access_token(&admin, None).await;
    let key = TestKey::new(SigningAlg::Rs256);
    let register = |body: Value| {
        let request = app
            .client
            .post(app.url("/register"))
            .bearer_auth(&token)
            .json(&body);
        async move {
            let response = request.sent().await;
            (response.status(), json_of(response).await)
        }
    };
    let metadata = |extra: Value| {
        let mut body = json!({
            "redirect_uris": ["https://rp.example.com/cb"],
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks": { "keys": [kidless(&key)] },
        });
        for (name, value) in extra.as_object().unwrap() {
            body[name] = value.clone();
        }
        body
    };
    let uri = "https://rp.example.com/requests/1.jwt#2f1c";
    let (status, body) = register(metadata(json!({
        "request_uris": [uri, uri], "request_object_signing_alg": "RS256",
    })))
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        body["request_uris"],
        json!([uri]),
        "fragment kept, duplicate dropped"
    );
    assert_eq!(body["request_object_signing_alg"], "RS256");

    let long = format!("https://rp.example.com/{}", "a".repeat(500));
    let many: Vec<String> = (0..11)
        .map(|i| format!("https://rp.example.com/{i}.jwt"))
        .collect();
    for (extra, why) in [
        (
            json!({"request_uris": ["http://rp.example.com/r.jwt"]}),
            "http",
        ),
        (
            json!({"request_uris": ["https://10.0.0.1/r.jwt"]}),
            "private address",
        ),
        (
            json!({"request_uris": ["https://u:p@rp.example.com/r.jwt"]}),
            "credentials",
        ),
        (json!({"request_uris": ["/r.jwt"]}), "relative"),
        (json!({"request_uris": [long]}), "over 512 bytes"),
        (json!({"request_uris": many}), "more than 10"),
        (
            json!({"request_uris": "https://rp.example.com/r.jwt"}),
            "not a list",
        ),
        (json!({"request_object_signing_alg": "HS256"}), "HS256"),
        (json!({"request_object_signing_alg": "NONE"}), "NONE"),
        (
            json!({"request_object_signing_alg": "ES256"}),
            "no ES256 key",
        ),
    ] {
        let (status, body) = register(metadata(extra)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{why}: {body}");
        assert_eq!(body["error"], "invalid_client_metadata", "{why}: {body}");
    }
    // A signed algorithm needs keys: a secret client cannot register one; none it can.
    let secretful = json!({
        "redirect_uris": ["https://rp.example.com/cb"], "request_object_signing_alg": "PS256",
    });
    let (status, body) = register(secretful).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = register(json!({
        "redirect_uris": ["https://rp.example.com/cb"], "request_object_signing_alg": "none",
    }))
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["request_object_signing_alg"], "none");
    assert!(body.get("request_uris").is_none());

    // The admin API.
    let created = app
        .send(
            Method::POST,
            "/admin/clients",
            &admin,
            Some(json!({
                "client_id": "admin-made", "redirect_uris": [REDIRECT],
                "request_uris": ["https://rp.example.com/a.jwt"],
                "request_object_signing_alg": "none",
            })),
        )
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let created = json_of(created).await;
    assert_eq!(
        created["request_uris"],
        json!(["https://rp.example.com/a.jwt"])
    );
    assert_eq!(created["request_object_signing_alg"], "none");
    let refused = app
        .send(
            Method::POST,
            "/admin/clients",
            &admin,
            Some(json!({
                "client_id": "admin-bad", "redirect_uris": [REDIRECT],
                "request_object_signing_alg": "RS512",
            })),
        )
        .await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);

    // The CLI.
    let cli = stdout_json(
        &env.cli(&[
            "clients",
            "create",
            "--client-id",
            "cli-made",
            "--redirect-uri",
            REDIRECT,
            "--request-uri",
            "https://rp.example.com/1.jwt#x",
            "--request-uri",
            "https://rp.example.com/2.jwt",
            "--request-object-signing-alg",
            "none",
        ])
        .await,
    );
    assert_eq!(
        cli["request_uris"],
        json!([
            "https://rp.example.com/1.jwt#x",
            "https://rp.example.com/2.jwt"
        ])
    );
    assert_eq!(cli["request_object_signing_alg"], "none");
    let bad = env
        .cli(&[
            "clients",
            "create",
            "--client-id",
            "cli-bad",
            "--redirect-uri",
            REDIRECT,
            "--request-uri",
            "http://rp.example.com/1.jwt",
        ])
        .await;
    assert!(!bad.status.success());
    assert!(crate::helpers::stderr_of(&bad).contains("request_uri"));
}

on_both_backends!(
    request_objects_by_value_carry_the_whole_request,
    request_uris_are_fetched_only_when_registered,
    the_inner_redirect_uri_wins_and_is_checked,
    untrusted_request_objects_are_refused,
    bad_request_uri_answers_are_refused,
    request_uris_and_the_algorithm_are_registered_strictly,
);
