//! `private_key_jwt` client authentication (issue 18 item 2; RFC 7523 §2.2, OIDC Core §9): a
//! client registered with its public keys proves itself with a signed assertion at the token,
//! revocation and introspection endpoints; every way to forge, replay or stretch an assertion
//! is refused (TEP-06 and the JWT cases of client assertions); registration of keys is strict
//! (JWT-11); Authlib's `PrivateKeyJWT` works.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use portcullis::keys::SigningAlg;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Backend, ClientSpec, TestApp, TestEnv, client_secret, json_of};
use crate::on_both_backends;
use crate::stub::{TestKey, now};

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A JWKS of `keys`' public halves.
fn jwks(keys: &[&TestKey]) -> Value {
    json!({ "keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>() })
}

/// Valid assertion claims of `client_id` for audience `aud`, with a fresh `jti`.
fn assertion_claims(client_id: &str, aud: &str) -> Value {
    let now = now();
    json!({
        "iss": client_id, "sub": client_id, "aud": aud, "iat": now, "exp": now + 60,
        "jti": uuid::Uuid::new_v4().to_string(),
    })
}

/// An assertion signed by `key` with its own header (alg, kid).
fn assertion(key: &TestKey, claims: &Value) -> String {
    key.jws(&json!({ "alg": key.alg.as_str(), "kid": key.kid }), claims)
}

/// POSTs `form` plus the assertion to `path`: status and JSON body (empty for no body).
async fn post_with_assertion(
    app: &TestApp,
    path: &str,
    form: &[(&str, &str)],
    assertion: &str,
) -> (StatusCode, Value) {
    let mut fields: Vec<(&str, &str)> = form.to_vec();
    fields.push(("client_assertion_type", JWT_BEARER));
    fields.push(("client_assertion", assertion));
    let response = app.post_form(path, &fields).await;
    let status = response.status();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn cc_with(app: &TestApp, assertion: &str) -> (StatusCode, Value) {
    post_with_assertion(
        app,
        "/token",
        &[("grant_type", "client_credentials")],
        assertion,
    )
    .await
}

/// Registers `client_id` as a `private_key_jwt` client_credentials client with `keys`.
async fn key_client(app: &TestApp, client_id: &str, keys: &[&TestKey]) {
    let spec = ClientSpec::new(client_id).private_key_jwt(jwks(keys));
    let registered = app.create_client(spec).await;
    assert!(
        registered.client_secret.is_none(),
        "a key client has no secret"
    );
}

// A client with an ES256 key and an RS256 key gets tokens, introspects and revokes with
// assertions naming the issuer or the endpoint's URL as audience; discovery advertises it.
async fn private_key_jwt_authenticates_at_token_revocation_and_introspection(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let app = env.spawn().await;
    let (es, rs) = (
        TestKey::new(SigningAlg::Es256),
        TestKey::new(SigningAlg::Rs256),
    );
    key_client(&app, "svc", &[&es, &rs]).await;
    let issuer = app.issuer.clone();

    let discovery = json_of(app.get("/.well-known/openid-configuration").await).await;
    for member in [
        "token_endpoint_auth_methods_supported",
        "revocation_endpoint_auth_methods_supported",
        "introspection_endpoint_auth_methods_supported",
    ] {
        assert!(
            discovery[member]
                .as_array()
                .unwrap()
                .contains(&json!("private_key_jwt")),
            "{member}"
        );
    }
    assert_eq!(
        discovery["token_endpoint_auth_signing_alg_values_supported"],
        json!(["RS256", "PS256", "ES256"])
    );

    let token_endpoint = format!("{issuer}/token");
    let mut tokens = Vec::new();
    for (key, aud) in [(&es, issuer.as_str()), (&rs, token_endpoint.as_str())] {
        let (status, body) = cc_with(&app, &assertion(key, &assertion_claims("svc", aud))).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        tokens.push(body["access_token"].as_str().unwrap().to_owned());
    }
    // `client_id` in the body may name the client too.
    let (status, body) = post_with_assertion(
        &app,
        "/token",
        &[("grant_type", "client_credentials"), ("client_id", "svc")],
        &assertion(&es, &assertion_claims("svc", &issuer)),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let introspect_url = format!("{issuer}/introspect");
    let (status, body) = post_with_assertion(
        &app,
        "/introspect",
        &[("token", &tokens[0])],
        &assertion(&es, &assertion_claims("svc", &introspect_url)),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["active"], true);
    assert_eq!(body["client_id"], "svc");

    let (status, _) = post_with_assertion(
        &app,
        "/revoke",
        &[("token", &tokens[0])],
        &assertion(&rs, &assertion_claims("svc", &issuer)),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (_, body) = post_with_assertion(
        &app,
        "/introspect",
        &[("token", &tokens[0])],
        &assertion(&es, &assertion_claims("svc", &issuer)),
    )
    .await;
    assert_eq!(body["active"], false, "revoked");
}

/// Asserts a refused assertion: 401 `invalid_client`, no token.
fn assert_refused((status, body): (StatusCode, Value), what: &str) {
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}: {body}");
    assert_eq!(body["error"], "invalid_client", "{what}: {body}");
    assert!(body.get("access_token").is_none(), "{what}");
}

// TEP-06, JWT-01/02/03/05/06/12/14 for client assertions: a replayed jti, another audience, expired, exp too far ahead, nbf/iat in the
// future, an unknown kid, an alg that is not the key's, `none`, HS256 keyed with the public key,
// a foreign key under the client's kid, iss/sub of another client, no jti, header-borne keys,
// a secret beside an assertion, a secret for a key client, an assertion for a secret client.
async fn forged_replayed_and_stretched_assertions_are_refused(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let app = env.spawn().await;
    let es = TestKey::new(SigningAlg::Es256);
    let rs = TestKey::new(SigningAlg::Rs256);
    key_client(&app, "svc", &[&es]).await;
    let secret_client = app.create_client(ClientSpec::new("shared")).await;
    let secret = client_secret(&secret_client);
    let issuer = app.issuer.clone();
    let good = || assertion_claims("svc", &issuer);

    // TEP-06: one assertion, one use — recorded in the database every instance shares.
    let once = assertion(&es, &good());
    assert_eq!(cc_with(&app, &once).await.0, StatusCode::OK);
    let replay = cc_with(&app, &once).await;
    assert!(
        replay.1["error_description"]
            .as_str()
            .unwrap_or_default()
            .contains("used before"),
        "{}",
        replay.1
    );
    assert_refused(replay, "replayed jti");

    // TEP-06, JWT-12: audience, lifetime and clock.
    let with = |changes: Value| {
        let mut claims = good();
        for (k, v) in changes.as_object().unwrap() {
            if v.is_null() {
                claims.as_object_mut().unwrap().remove(k);
            } else {
                claims[k] = v.clone();
            }
        }
        claims
    };
    let now = now();
    for (what, claims) in [
        (
            "another audience",
            with(json!({ "aud": "https://elsewhere.example" })),
        ),
        (
            "another issuer's token endpoint",
            with(json!({ "aud": format!("{issuer}x/token") })),
        ),
        ("expired", with(json!({ "exp": now - 120 }))),
        ("exp hours ahead", with(json!({ "exp": now + 3 * 3600 }))),
        ("no exp", with(json!({ "exp": null }))),
        ("nbf in the future", with(json!({ "nbf": now + 600 }))),
        ("iat in the future", with(json!({ "iat": now + 600 }))),
        ("no jti", with(json!({ "jti": null }))),
        ("empty jti", with(json!({ "jti": "" }))),
        ("iss of another client", with(json!({ "iss": "shared" }))),
        ("sub of another client", with(json!({ "sub": "shared" }))),
    ] {
        assert_refused(cc_with(&app, &assertion(&es, &claims)).await, what);
    }

    // JWT-01/02/03/05/06: the key and the algorithm come from the registration, never from the
    // assertion.
    let unknown_kid = es.jws(&json!({ "alg": "ES256", "kid": "not-registered" }), &good());
    assert_refused(cc_with(&app, &unknown_kid).await, "unknown kid");
    let foreign = TestKey::new(SigningAlg::Es256);
    let foreign_under_kid = foreign.jws(&json!({ "alg": "ES256", "kid": es.kid }), &good());
    assert_refused(
        cc_with(&app, &foreign_under_kid).await,
        "foreign key, our kid",
    );
    let wrong_alg = rs.jws(&json!({ "alg": "RS256", "kid": es.kid }), &good());
    assert_refused(cc_with(&app, &wrong_alg).await, "alg not of the key");
    let header = |h: Value| URL_SAFE_NO_PAD.encode(h.to_string());
    let body = URL_SAFE_NO_PAD.encode(good().to_string());
    let unsigned = format!(
        "{}.{body}.",
        header(json!({ "alg": "none", "kid": es.kid }))
    );
    assert_refused(cc_with(&app, &unsigned).await, "alg none");
    let hs_input = format!(
        "{}.{body}",
        header(json!({ "alg": "HS256", "kid": es.kid }))
    );
    let hs_key = aws_lc_rs::hmac::Key::new(
        aws_lc_rs::hmac::HMAC_SHA256,
        es.jwk().to_string().as_bytes(),
    );
    let hs = format!(
        "{hs_input}.{}",
        URL_SAFE_NO_PAD.encode(aws_lc_rs::hmac::sign(&hs_key, hs_input.as_bytes()))
    );
    assert_refused(cc_with(&app, &hs).await, "HS256 with the public key");
    let with_jwk = es.jws(
        &json!({ "alg": "ES256", "kid": es.kid, "jwk": foreign.jwk() }),
        &good(),
    );
    assert_refused(cc_with(&app, &with_jwk).await, "jwk in the header");
    let tampered = {
        let token = assertion(&es, &good());
        let parts: Vec<&str> = token.split('.').collect();
        let mut claims = good();
        claims["sub"] = json!("svc");
        claims["extra"] = json!("changed");
        format!(
            "{}.{}.{}",
            parts[0],
            URL_SAFE_NO_PAD.encode(claims.to_string()),
            parts[2]
        )
    };
    assert_refused(
        cc_with(&app, &tampered).await,
        "payload changed after signing",
    );
    assert_refused(cc_with(&app, "not-a-jwt").await, "garbage");
    assert_refused(
        cc_with(&app, &"a".repeat(9000)).await,
        "oversized assertion",
    );

    // One method at a time, and each client only its own.
    let (status, body) = post_with_assertion(
        &app,
        "/token",
        &[("grant_type", "client_credentials"), ("client_secret", "x")],
        &assertion(&es, &good()),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_request");
    let (status, body) = post_with_assertion(
        &app,
        "/token",
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "shared"),
        ],
        &assertion(&es, &good()),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "client_id differs: {body}");
    let wrong_type = app
        .post_form(
            "/token",
            &[
                ("grant_type", "client_credentials"),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:saml2-bearer",
                ),
                ("client_assertion", &assertion(&es, &good())),
            ],
        )
        .await;
    assert_eq!(wrong_type.status(), StatusCode::UNAUTHORIZED);
    // A secret client's key-less identity cannot be claimed with an assertion…
    let as_shared = assertion(&es, &assertion_claims("shared", &issuer));
    assert_refused(
        cc_with(&app, &as_shared).await,
        "assertion for a secret client",
    );
    // …and a key client has no secret to guess.
    let response = app
        .post_form(
            "/token",
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "svc"),
                ("client_secret", &secret),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let response = app
        .post_form(
            "/token",
            &[("grant_type", "client_credentials"), ("client_id", "svc")],
        )
        .await;
    assert_eq!(
        response.status(),
        StatusCode::UNAUTHORIZED,
        "no credentials at all"
    );
    // The good path still works after all that.
    assert_eq!(
        cc_with(&app, &assertion(&es, &good())).await.0,
        StatusCode::OK
    );
}

// JWT-11: registration is strict (every key usable or the request fails, naming why), and an
// administrator moves a client between a secret and keys: the old credential stops at once.
async fn client_keys_are_registered_strictly_and_replace_the_secret(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let app = env.spawn().await;
    let admin = app.admin_token().await;
    let es = TestKey::new(SigningAlg::Es256);
    let create = |body: Value| {
        let app = &app;
        let admin = admin.clone();
        async move {
            let response = app
                .send(Method::POST, "/admin/clients", &admin, Some(body))
                .await;
            let status = response.status();
            (status, json_of(response).await)
        }
    };
    let mut private = es.jwk();
    private["d"] = json!(URL_SAFE_NO_PAD.encode([7u8; 32]));
    let mut off_curve = es.jwk();
    off_curve["y"] = off_curve["x"].clone();
    let mut hmac = es.jwk();
    hmac["kty"] = json!("oct");
    let twin = {
        let mut other = TestKey::new(SigningAlg::Es256).jwk();
        other["kid"] = json!(es.kid);
        other
    };
    for (what, jwks, needle) in [
        ("a private key", json!({ "keys": [private] }), "private"),
        (
            "a point off the curve",
            json!({ "keys": [off_curve] }),
            "not on P-256",
        ),
        (
            "a symmetric key",
            json!({ "keys": [hmac] }),
            "unsupported kty",
        ),
        ("no keys", json!({ "keys": [] }), "1 to 10 keys"),
        ("not a set", json!([es.jwk()]), "keys"),
        (
            "a kid twice",
            json!({ "keys": [es.jwk(), twin] }),
            "told apart",
        ),
    ] {
        let (status, body) = create(json!({
            "client_id": "k", "token_endpoint_auth_method": "private_key_jwt", "jwks": jwks,
        }))
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{what}: {body}");
        assert!(
            body.to_string().contains(needle),
            "{what}: {body} should say {needle}"
        );
    }
    let (status, body) = create(json!({
        "client_id": "k", "token_endpoint_auth_method": "private_key_jwt",
    }))
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "no jwks: {body}");
    let (status, body) = create(json!({
        "client_id": "k", "public": true, "redirect_uris": ["https://app.example/cb"],
        "token_endpoint_auth_method": "private_key_jwt", "jwks": jwks(&[&es]),
    }))
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "public key client: {body}");
    let (status, body) = create(json!({ "client_id": "k", "jwks": jwks(&[&es]) })).await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "jwks without the method: {body}"
    );
    let listed = json_of(app.send(Method::GET, "/admin/clients", &admin, None).await).await;
    assert_eq!(listed["clients"], json!([]), "nothing half-written");

    // A key client's registration: no secret, its keys as registered (public members only).
    let (status, body) = create(json!({
        "client_id": "k", "token_endpoint_auth_method": "private_key_jwt", "jwks": jwks(&[&es]),
    }))
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["token_endpoint_auth_method"], "private_key_jwt");
    assert!(body.get("client_secret").is_none());
    assert_eq!(body["jwks"], jwks(&[&es]));

    // A secret client moved to keys: the secret stops working at once, assertions work.
    let shared = app.create_client(ClientSpec::new("moving")).await;
    let secret = client_secret(&shared);
    let secret_form = [
        ("grant_type", "client_credentials"),
        ("client_id", "moving"),
        ("client_secret", secret.as_str()),
    ];
    let with_secret = || app.post_form("/token", &secret_form);
    assert_eq!(with_secret().await.status(), StatusCode::OK);
    let response = app
        .send(
            Method::PUT,
            "/admin/clients/moving/jwks",
            &admin,
            Some(json!({ "jwks": jwks(&[&es]) })),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        json_of(response).await["token_endpoint_auth_method"],
        "private_key_jwt"
    );
    assert_eq!(with_secret().await.status(), StatusCode::UNAUTHORIZED);
    let claims = assertion_claims("moving", &app.issuer);
    assert_eq!(
        cc_with(&app, &assertion(&es, &claims)).await.0,
        StatusCode::OK
    );
    // …and back to a secret with rotate-secret: the keys stop working.
    let rotated = json_of(
        app.send(
            Method::POST,
            "/admin/clients/moving/rotate-secret",
            &admin,
            None,
        )
        .await,
    )
    .await;
    assert_eq!(rotated["token_endpoint_auth_method"], "client_secret_basic");
    assert!(rotated.get("jwks").is_none());
    let claims = assertion_claims("moving", &app.issuer);
    assert_refused(
        cc_with(&app, &assertion(&es, &claims)).await,
        "keys after rotate",
    );
    let new_secret = rotated["client_secret"].as_str().unwrap();
    let response = app
        .post_form(
            "/token",
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "moving"),
                ("client_secret", new_secret),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let audit = json_of(
        app.send(Method::GET, "/admin/audit?limit=5", &admin, None)
            .await,
    )
    .await;
    assert!(audit.to_string().contains("client_jwks_changed"), "{audit}");
    assert!(
        audit.to_string().contains(&es.kid),
        "audited with kids: {audit}"
    );
    assert!(
        !audit.to_string().contains("\"x\""),
        "no key material in the audit"
    );

    // The CLI registers a key client from a file.
    let file = env.dir.path().join("jwks.json");
    std::fs::write(&file, jwks(&[&es]).to_string()).unwrap();
    let output = env
        .cli(&[
            "clients",
            "create",
            "--client-id",
            "cli-keys",
            "--token-endpoint-auth-method",
            "private_key_jwt",
            "--jwks",
            &format!("@{}", file.display()),
        ])
        .await;
    assert!(output.status.success(), "{output:?}");
    app.reload_clients().await;
    let claims = assertion_claims("cli-keys", &app.issuer);
    assert_eq!(
        cc_with(&app, &assertion(&es, &claims)).await.0,
        StatusCode::OK
    );
}

/// The PKCS#8 PEM of a test key's private half.
fn private_pem(key: &TestKey) -> String {
    let body = STANDARD.encode(&*key.material.pkcs8);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        lines.join("\n")
    )
}

/// Whether Debian's or the path's python3 has Authlib and requests.
fn authlib_installed() -> bool {
    std::process::Command::new("python3")
        .args(["-c", "import authlib, requests"])
        .output()
        .is_ok_and(|o| o.status.success())
}

const AUTHLIB_CLIENT: &str = r#"
import json, sys
import requests
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7523 import PrivateKeyJWT, private_key_jwt_sign
issuer, client_id, pem, alg, kid = sys.argv[1:6]
token_endpoint = issuer + "/token"
# As the Authlib documentation does it: the session signs a fresh assertion per request.
session = OAuth2Session(client_id, pem, token_endpoint_auth_method="private_key_jwt")
session.register_client_auth_method(PrivateKeyJWT(token_endpoint, alg=alg, headers={"kid": kid}))
token = session.fetch_token(token_endpoint, grant_type="client_credentials")
# One assertion signed by Authlib, sent twice.
assertion = private_key_jwt_sign(pem, client_id, token_endpoint, alg=alg, header={"kid": kid})
form = {
    "grant_type": "client_credentials",
    "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
    "client_assertion": assertion,
}
first = requests.post(token_endpoint, data=form)
second = requests.post(token_endpoint, data=form)
print(json.dumps({"token": token, "first": first.status_code, "second": second.status_code,
                  "second_body": second.json()}))
"#;

// Interoperability: Authlib's `PrivateKeyJWT` (RFC 7523 client authentication as Python apps
// do it) gets a token with an ES256 and an RS256 key; its assertion replayed is refused.
async fn authlib_private_key_jwt_gets_a_token(backend: Backend) {
    if !authlib_installed() {
        assert!(
            std::env::var("PORTCULLIS_REQUIRE_AUTHLIB").is_err(),
            "PORTCULLIS_REQUIRE_AUTHLIB is set but Authlib is not installed"
        );
        eprintln!("AUTHLIB TEST DID NOT RUN: python3 -m pip install authlib requests");
        return;
    }
    let env = TestEnv::new(backend).await;
    let app = env.spawn().await;
    let (es, rs) = (
        TestKey::new(SigningAlg::Es256),
        TestKey::new(SigningAlg::Rs256),
    );
    key_client(&app, "py", &[&es, &rs]).await;
    for key in [&es, &rs] {
        let output = tokio::process::Command::new("python3")
            .args([
                "-c",
                AUTHLIB_CLIENT,
                &app.issuer,
                "py",
                &private_pem(key),
                key.alg.as_str(),
                &key.kid,
            ])
            .output()
            .await
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let result: Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(result["token"]["token_type"], "Bearer", "{result}");
        assert!(result["token"]["access_token"].is_string());
        assert_eq!(result["first"], 200, "{result}");
        assert_eq!(result["second"], 401, "replayed: {result}");
        assert_eq!(result["second_body"]["error"], "invalid_client");
    }
}

on_both_backends!(
    private_key_jwt_authenticates_at_token_revocation_and_introspection,
    forged_replayed_and_stretched_assertions_are_refused,
    client_keys_are_registered_strictly_and_replace_the_secret,
    authlib_private_key_jwt_gets_a_token,
);
