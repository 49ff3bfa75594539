//! Signed UserInfo responses (OIDC Core §5.3.2; OIDC Dynamic Client Registration §2
//! `userinfo_signed_response_alg`; the OIDF module oidcc-userinfo-rs256): discovery lists the
//! algorithms; a client registered dynamically, through the admin API or through the CLI with
//! an algorithm gets a JWT (`application/jwt`, `no-store`) signed with the server's key of that
//! algorithm, verified here against the published JWKS, whose claims are `iss`, `aud` (the
//! client), `iat` and exactly the JSON answer's claims; a client without it still gets JSON;
//! RFC 7592 reads and updates echo and change it; any other algorithm (`none`, `HS256`…) is
//! refused with `invalid_client_metadata`. Cases SUI-01 to SUI-03.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use portcullis::config::SettingsArgs;
use portcullis::keys::SigningAlg;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{
    Backend, ClientSpec, REDIRECT, Sent, TestApp, TestEnv, browser, client_secret, code_flow,
    json_of, secret_of, stderr_of, stdout_json,
};
use crate::on_both_backends;

/// The scope of every flow: `sub` and the `profile` and `email` claims in userinfo.
const SCOPE: &str = "openid profile email";

/// The origin of [`REDIRECT`]: the web origin of every test client (CORS).
const REDIRECT_ORIGIN: &str = "http://127.0.0.1:9";

/// A server on `backend` with dynamic registration by initial access token.
async fn token_registration_server(env: &TestEnv) -> TestApp {
    env.spawn_with(SettingsArgs {
        client_registration: Some("token".into()),
        ..env.args()
    })
    .await
}

/// The metadata of a confidential web client (a secret) at [`REDIRECT`] with `changes`.
fn web_client(changes: Value) -> Value {
    let mut body = json!({
        "client_name": "Signed userinfo RP",
        "redirect_uris": [REDIRECT],
        "grant_types": ["authorization_code"],
        "response_types": ["code"],
        "scope": SCOPE,
    });
    for (member, value) in changes.as_object().unwrap() {
        body[member] = value.clone();
    }
    body
}

/// `POST /register` of `body` with initial access token `token`: status and JSON body.
async fn register(app: &TestApp, token: &str, body: &Value) -> (StatusCode, Value) {
    let response = app
        .client
        .post(app.url("/register"))
        .bearer_auth(token)
        .json(body)
        .sent()
        .await;
    (response.status(), json_of(response).await)
}

/// The access token of [`code_flow`] for confidential client `client_id` (`secret`) and
/// [`SCOPE`] on `browser`.
async fn access_token(
    app: &TestApp,
    browser: &reqwest::Client,
    client_id: &str,
    secret: &str,
) -> String {
    code_flow(app, browser, (client_id, secret), SCOPE, "")
        .await
        .expect("tokens")["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A plain JSON userinfo answer (200, `application/json`, `no-store`): the claims.
async fn json_userinfo(response: reqwest::Response) -> Value {
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()["content-type"].to_str().unwrap();
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    assert_eq!(response.headers()["cache-control"], "no-store");
    json_of(response).await
}

/// A signed userinfo answer (200, `application/jwt`, `no-store`): the JWT.
async fn signed_userinfo(response: reqwest::Response) -> String {
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/jwt");
    assert_eq!(response.headers()["cache-control"], "no-store");
    response.text().await.unwrap()
}

/// Verifies a signed userinfo response as a relying party does (OIDC Core §5.3.2; the OIDF
/// module's checks): the header's `alg` is the registered `alg` and its `kid` names a key of the
/// published JWKS; the signature verifies with that key; `iss` is the issuer, `aud` the client,
/// `iat` a number; no `exp` or `nonce`. The claims less `iss`, `aud` and `iat`.
async fn verified_userinfo(app: &TestApp, jwt: &str, client_id: &str, alg: &str) -> Value {
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(jwt.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["alg"], alg, "the registered algorithm: {header}");
    let kid = header["kid"].as_str().expect("a kid");
    let jwks = app.jwks().await;
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|key| key["kid"] == kid)
        .unwrap_or_else(|| panic!("{kid} is published"))
        .clone();
    let key = DecodingKey::from_jwk(&serde_json::from_value::<Jwk>(jwk).unwrap()).unwrap();
    let algorithm = match alg {
        "RS256" => Algorithm::RS256,
        "ES256" => Algorithm::ES256,
        other => panic!("unexpected algorithm {other}"),
    };
    let mut validation = Validation::new(algorithm);
    validation.set_issuer(&[&app.issuer]);
    validation.set_audience(&[client_id]);
    // OIDC Core §5.3.2 asks for no `exp`; the OIDF module checks it only when present.
    validation.validate_exp = false;
    validation.set_required_spec_claims(&["iss", "aud"]);
    let mut claims = jsonwebtoken::decode::<Value>(jwt, &key, &validation)
        .expect("the signature verifies against the JWKS")
        .claims;
    assert_eq!(claims["iss"], app.issuer.as_str());
    assert_eq!(claims["aud"], client_id);
    assert!(claims["iat"].is_i64(), "{claims}");
    assert!(claims.get("exp").is_none() && claims.get("nonce").is_none());
    let object = claims.as_object_mut().unwrap();
    for member in ["iss", "aud", "iat"] {
        object.remove(member);
    }
    claims
}

/// Asserts an RFC 6750 refusal at userinfo: 401, `invalid_token` in the challenge and in a JSON
/// body, signed client or not.
async fn assert_refused(app: &TestApp) {
    let refused = app.get_bearer("/userinfo", "not-a-token").await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let challenge = refused.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.starts_with("Bearer") && challenge.contains("invalid_token"));
    assert_eq!(json_of(refused).await["error"], "invalid_token");
}

// SUI-01: discovery lists RS256 and ES256 in both documents; a client registered with an
// initial access token and `userinfo_signed_response_alg: RS256` gets a JWT signed with the RS256
// key (GET and form POST, CORS unchanged) whose claims are the JSON answer's (the plain client's,
// same user and scope), with iss, aud, iat around them; errors stay RFC 6750 JSON. RFC 7592: the
// read echoes the algorithm, an update to ES256 takes effect at once, `none` is refused, an
// update without it goes back to JSON.
async fn a_dynamically_registered_client_gets_signed_userinfo(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let app = token_registration_server(&env).await;
    let user_id = app.create_user("alice").await;
    let admin = app.admin_token().await;
    for path in [
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
    ] {
        let document = json_of(app.get(path).await).await;
        assert_eq!(
            document["userinfo_signing_alg_values_supported"],
            json!(["RS256", "ES256"]),
            "{path}"
        );
    }
    let plain = app
        .create_client(ClientSpec::new("plain").redirect_uri(REDIRECT))
        .await;
    let iat = app.initial_access_token(&admin, None).await;
    let (status, registered) = register(
        &app,
        &iat,
        &web_client(json!({"userinfo_signed_response_alg": "RS256"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{registered}");
    assert_eq!(registered["userinfo_signed_response_alg"], "RS256");
    let client_id = registered["client_id"].as_str().unwrap().to_owned();
    let secret = secret_of(&registered);

    // The plain client: JSON, as before; what the signed answer must carry.
    let browser = browser();
    let plain_token = access_token(&app, &browser, "plain", &client_secret(&plain)).await;
    let expected = json_userinfo(app.get_bearer("/userinfo", &plain_token).await).await;
    assert_eq!(expected["sub"], user_id.as_str());
    assert!(expected["email"].is_string() && expected["preferred_username"].is_string());

    let token = access_token(&app, &browser, &client_id, &secret).await;
    let jwt = signed_userinfo(app.get_bearer("/userinfo", &token).await).await;
    assert_eq!(
        verified_userinfo(&app, &jwt, &client_id, "RS256").await,
        expected
    );
    // The token in a form body (RFC 6750 §2.2), from the client's web origin: signed too, and
    // readable cross-origin as before.
    let posted = app
        .client
        .post(app.url("/userinfo"))
        .header("origin", REDIRECT_ORIGIN)
        .form(&[("access_token", token.as_str())])
        .sent()
        .await;
    assert_eq!(
        posted.headers()["access-control-allow-origin"],
        REDIRECT_ORIGIN
    );
    let jwt = signed_userinfo(posted).await;
    assert_eq!(
        verified_userinfo(&app, &jwt, &client_id, "RS256").await,
        expected
    );
    assert_refused(&app).await;

    // RFC 7592 read: the algorithm is part of the registered metadata.
    let (path, read) = app.read_registration(&registered).await;
    assert_eq!(read["userinfo_signed_response_alg"], "RS256");
    // Update: `none` refused; ES256 signs with the ES256 key at once.
    let mut registration_token = read["registration_access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    for (alg, expected_status) in [
        (json!("none"), StatusCode::BAD_REQUEST),
        (json!("ES256"), StatusCode::OK),
    ] {
        let update =
            web_client(json!({"client_id": client_id, "userinfo_signed_response_alg": alg}));
        let response = app
            .send(
                reqwest::Method::PUT,
                &path,
                &registration_token,
                Some(update),
            )
            .await;
        assert_eq!(response.status(), expected_status, "{alg}");
        let body = json_of(response).await;
        if expected_status == StatusCode::OK {
            assert_eq!(body["userinfo_signed_response_alg"], "ES256");
            registration_token = body["registration_access_token"]
                .as_str()
                .unwrap()
                .to_owned();
        } else {
            assert_eq!(body["error"], "invalid_client_metadata");
        }
    }
    let jwt = signed_userinfo(app.get_bearer("/userinfo", &token).await).await;
    assert_eq!(
        verified_userinfo(&app, &jwt, &client_id, "ES256").await,
        expected
    );
    // Update without it: plain JSON again, and the member is no longer returned.
    let response = app
        .send(
            reqwest::Method::PUT,
            &path,
            &registration_token,
            Some(web_client(json!({"client_id": client_id}))),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        json_of(response)
            .await
            .get("userinfo_signed_response_alg")
            .is_none()
    );
    assert_eq!(
        json_userinfo(app.get_bearer("/userinfo", &token).await).await,
        expected
    );
}

// SUI-02: administrators' clients: `clients create --userinfo-signed-response-alg RS256` (the
// CLI), `POST /admin/clients` with `"userinfo_signed_response_alg": "ES256"` and the service they
// share, in-process (RS256), get JWTs signed with those algorithms, carrying the plain client's JSON claims; both listings show the
// setting (absent for the plain client); other values are refused by both.
async fn administrators_clients_get_signed_userinfo(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let by_cli = stdout_json(
        &env.cli(&[
            "clients",
            "create",
            "--client-id",
            "cli-app",
            "--redirect-uri",
            REDIRECT,
            "--userinfo-signed-response-alg",
            "RS256",
        ])
        .await,
    );
    assert_eq!(by_cli["userinfo_signed_response_alg"], "RS256");
    let refused = env
        .cli(&[
            "clients",
            "create",
            "--client-id",
            "cli-none",
            "--redirect-uri",
            REDIRECT,
            "--userinfo-signed-response-alg",
            "none",
        ])
        .await;
    assert!(!refused.status.success());
    assert!(
        stderr_of(&refused).contains("`none` is not ES256 or RS256"),
        "{}",
        stderr_of(&refused)
    );

    let app = env.spawn().await;
    app.create_user("alice").await;
    let admin = app.admin_token().await;
    let create = |body: Value| {
        let (app, admin) = (&app, &admin);
        async move {
            app.send(reqwest::Method::POST, "/admin/clients", admin, Some(body))
                .await
        }
    };
    for refused in [json!("none"), json!("HS256"), json!("es256")] {
        let response = create(json!({
            "client_id": "admin-bad", "redirect_uris": [REDIRECT],
            "userinfo_signed_response_alg": refused,
        }))
        .await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{refused}");
        assert_eq!(json_of(response).await["error"], "invalid_request");
    }
    let response = create(json!({
        "client_id": "admin-app", "redirect_uris": [REDIRECT],
        "userinfo_signed_response_alg": "ES256",
    }))
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let by_admin = json_of(response).await;
    assert_eq!(by_admin["userinfo_signed_response_alg"], "ES256");
    let plain = app
        .create_client(ClientSpec::new("plain").redirect_uri(REDIRECT))
        .await;
    // The service both go through, in-process.
    let in_process = app
        .create_client(
            ClientSpec::new("service-app")
                .redirect_uri(REDIRECT)
                .userinfo_signed_response_alg(SigningAlg::Rs256),
        )
        .await;
    let listed = json_of(app.get_bearer("/admin/clients", &admin).await).await;
    let alg_of = |id: &str| {
        listed["clients"]
            .as_array()
            .unwrap()
            .iter()
            .find(|client| client["client_id"] == id)
            .unwrap_or_else(|| panic!("{id} listed"))
            .get("userinfo_signed_response_alg")
            .cloned()
    };
    assert_eq!(alg_of("cli-app"), Some(json!("RS256")));
    assert_eq!(alg_of("admin-app"), Some(json!("ES256")));
    assert_eq!(alg_of("plain"), None);

    let browser = browser();
    let plain_token = access_token(&app, &browser, "plain", &client_secret(&plain)).await;
    let expected = json_userinfo(app.get_bearer("/userinfo", &plain_token).await).await;
    for (client_id, secret, alg) in [
        ("cli-app", secret_of(&by_cli), "RS256"),
        ("admin-app", secret_of(&by_admin), "ES256"),
        ("service-app", client_secret(&in_process), "RS256"),
    ] {
        let token = access_token(&app, &browser, client_id, &secret).await;
        let jwt = signed_userinfo(app.get_bearer("/userinfo", &token).await).await;
        assert_eq!(
            verified_userinfo(&app, &jwt, client_id, alg).await,
            expected,
            "{client_id}"
        );
    }
    assert_refused(&app).await;
}

// SUI-03: registration refuses every `userinfo_signed_response_alg` but RS256 and ES256 —
// `none` (an unsigned answer adds nothing to JSON), `HS256` (no shared secret signs server
// answers), other algorithms, other spellings, the wrong type — with `invalid_client_metadata`,
// spending no use of the initial access token; `null` means plain JSON, like omitting it.
async fn registration_refuses_other_userinfo_algorithms(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let app = token_registration_server(&env).await;
    let admin = app.admin_token().await;
    let iat = app.initial_access_token(&admin, Some(2)).await;
    for refused in [
        json!("none"),
        json!("HS256"),
        json!("PS256"),
        json!("rs256"),
        json!(""),
        json!(256),
        json!(["RS256"]),
    ] {
        let (status, body) = register(
            &app,
            &iat,
            &web_client(json!({"userinfo_signed_response_alg": refused})),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}: {body}");
        assert_eq!(body["error"], "invalid_client_metadata", "{refused}");
        assert!(body["error_description"].is_string());
        assert!(body.get("client_id").is_none());
    }
    let (status, body) = register(
        &app,
        &iat,
        &web_client(json!({"userinfo_signed_response_alg": "ES256"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["userinfo_signed_response_alg"], "ES256");
    let (status, body) = register(
        &app,
        &iat,
        &web_client(json!({"userinfo_signed_response_alg": null})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert!(body.get("userinfo_signed_response_alg").is_none());
}

on_both_backends!(
    a_dynamically_registered_client_gets_signed_userinfo,
    administrators_clients_get_signed_userinfo,
    registration_refuses_other_userinfo_algorithms,
);
