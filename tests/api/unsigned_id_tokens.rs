//! Unsigned ID tokens (OIDC Registration §2 `id_token_signed_response_alg: none`; the OIDF
//! module oidcc-idtoken-unsigned): discovery lists `none` after RS256 and ES256; a client
//! registered with it — dynamically (RFC 7591, echoed and changed by RFC 7592), by the CLI, by
//! the admin API or in-process — gets ID tokens that are Unsecured JWS (RFC 7515 Appendix A.5:
//! header `{"alg":"none","typ":"JWT"}`, an empty signature) with the claims a signed one carries,
//! from the code flow and on refresh, while its access tokens stay signed and other clients' ID
//! tokens stay signed (TOK-03). Such a token is never accepted back (JWT-01): not as an
//! `id_token_hint` (RP-initiated logout, `prompt=none`), not as a token-exchange subject or actor
//! token. Cases UIT-01 to UIT-07.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{DecodingKey, Validation};
use portcullis::config::SettingsArgs;
use portcullis::keys::{IdTokenAlg, SigningAlg};
use portcullis::oidc::clients::GrantType;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::Digest;

use crate::helpers::{
    Backend, ClientSpec, FLOW_NONCE, REDIRECT, Sent, TestApp, TestEnv, browser, client_secret,
    code_flow, decode_claims, enc, json_of, location_params, param, pkce, secret_of, stderr_of,
    stdout_json,
};
use crate::on_both_backends;

/// The scope of the flows of clients with refresh tokens.
const SCOPE: &str = "openid offline_access";

/// Where the test clients go after logout.
const BYE: &str = "http://127.0.0.1:9/bye";

/// The API the token-exchange clients exchange for.
const BILLING: &str = "https://billing.example.com/api";

/// The scope of the token-exchange clients' flows.
const PORTAL_SCOPE: &str = "openid billing:read";

/// RFC 8693 §3.
const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
const ID_TYPE: &str = "urn:ietf:params:oauth:token-type:id_token";

/// The exact header of an unsigned ID token.
const UNSIGNED_HEADER: &[u8] = br#"{"alg":"none","typ":"JWT"}"#;

/// Refreshes `tokens` of `client_id` (`secret`): the new token response.
async fn refreshed(app: &TestApp, client_id: &str, secret: &str, tokens: &Value) -> Value {
    let response = app
        .client
        .post(app.url("/token"))
        .basic_auth(client_id, Some(secret))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
        ])
        .sent()
        .await;
    assert_eq!(response.status(), StatusCode::OK, "{client_id}'s refresh");
    json_of(response).await
}

/// `prompt=none` for `client_id` on `browser`, with `extra` query parameters: the code, or the
/// error of the redirect.
async fn silent(
    app: &TestApp,
    browser: &reqwest::Client,
    client_id: &str,
    extra: &str,
) -> Result<String, String> {
    let url = app.url(&format!(
        "/authorize?response_type=code&client_id={client_id}&redirect_uri={}&scope=openid\
         &prompt=none&nonce=n2&code_challenge={}&code_challenge_method=S256{extra}",
        enc(REDIRECT),
        pkce(&"w".repeat(43))
    ));
    let response = browser.get(&url).sent().await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "prompt=none");
    let (_, params) = location_params(&response);
    match param(&params, "code") {
        Some(code) => Ok(code),
        None => Err(param(&params, "error").expect("an error")),
    }
}

/// The left half of the SHA-256 of `access_token`, base64url (OIDC Core §3.1.3.6 `at_hash`).
fn at_hash(access_token: &str) -> String {
    URL_SAFE_NO_PAD.encode(&sha2::Sha256::digest(access_token.as_bytes())[..16])
}

/// Asserts `id_token` is an Unsecured JWS — exactly the header `{"alg":"none","typ":"JWT"}`, the
/// claims, an empty signature after the second dot — issued by `app` to `client_id` for
/// `user_id` with the access token `access_token`, `nonce` when given (none otherwise), and the
/// claims a signed ID token carries. Its claims.
fn assert_unsigned_id_token(
    app: &TestApp,
    id_token: &str,
    client_id: &str,
    user_id: &str,
    access_token: &str,
    nonce: Option<&str>,
) -> Value {
    let segments: Vec<&str> = id_token.split('.').collect();
    assert_eq!(segments.len(), 3, "three segments: {id_token}");
    assert_eq!(
        URL_SAFE_NO_PAD.decode(segments[0]).unwrap(),
        UNSIGNED_HEADER,
        "the header"
    );
    assert!(
        segments[2].is_empty() && id_token.ends_with('.'),
        "an empty signature: {id_token}"
    );
    let claims = decode_claims(id_token);
    assert_eq!(claims["iss"], app.issuer.as_str());
    assert_eq!(claims["aud"], client_id);
    assert_eq!(claims["azp"], client_id);
    assert_eq!(claims["sub"], user_id);
    assert_eq!(claims["at_hash"], at_hash(access_token).as_str());
    match nonce {
        Some(nonce) => assert_eq!(claims["nonce"], nonce),
        None => assert!(claims.get("nonce").is_none(), "no nonce: {claims}"),
    }
    for member in ["sid", "acr"] {
        assert!(claims[member].is_string(), "{member}: {claims}");
    }
    assert!(claims["amr"].is_array(), "amr: {claims}");
    let (iat, exp) = (
        claims["iat"].as_i64().unwrap(),
        claims["exp"].as_i64().unwrap(),
    );
    assert!(exp > iat, "{claims}");
    assert!(claims["auth_time"].as_i64().unwrap() <= iat, "{claims}");
    claims
}

/// Verifies a signed `id_token` of `client_id` against `app`'s published keys with plain
/// jsonwebtoken, as a relying party does: its header `alg`.
async fn verified_signed_id_token(app: &TestApp, id_token: &str, client_id: &str) -> String {
    let header = jsonwebtoken::decode_header(id_token).expect("a JWS header");
    let kid = header.kid.clone().expect("a kid");
    let jwks = app.jwks().await;
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|key| key["kid"] == kid.as_str())
        .expect("the signing key is published")
        .clone();
    let key = DecodingKey::from_jwk(&serde_json::from_value::<Jwk>(jwk).unwrap()).unwrap();
    let mut validation = Validation::new(header.alg);
    validation.set_audience(&[client_id]);
    validation.set_issuer(&[&app.issuer]);
    jsonwebtoken::decode::<Value>(id_token, &key, &validation).expect("the signature verifies");
    format!("{:?}", header.alg)
}

/// A first-party confidential client `client_id` at [`REDIRECT`] (code + refresh, logout to
/// [`BYE`]) with ID tokens in `alg`.
fn web_client(client_id: &str, alg: IdTokenAlg) -> ClientSpec {
    ClientSpec::new(client_id)
        .redirect_uri(REDIRECT)
        .post_logout_redirect_uri(BYE)
        .first_party()
        .grant_type(GrantType::AuthorizationCode)
        .grant_type(GrantType::RefreshToken)
        .scope("openid")
        .scope("offline_access")
        .id_token_alg(alg)
}

/// A server on `backend` with dynamic registration by initial access token.
async fn registration_server(env: &TestEnv) -> TestApp {
    env.spawn_with(SettingsArgs {
        client_registration: Some("token".into()),
        ..env.args()
    })
    .await
}

// UIT-01: both discovery documents list `none` in `id_token_signing_alg_values_supported`, after
// the signed algorithms (RS256 first: OpenID Connect's mandatory one).
async fn discovery_lists_none_after_the_signed_algorithms(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let app = env.spawn().await;
    for path in [
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
    ] {
        let document = json_of(app.get(path).await).await;
        assert_eq!(
            document["id_token_signing_alg_values_supported"],
            json!(["RS256", "ES256", "none"]),
            "{path}"
        );
    }
}

// UIT-02: a client registered for `none` gets an unsigned ID token from the code flow (nonce,
// at_hash of its access token, sid, the same claims as a signed one) and again on refresh (the
// same sub and auth_time, no nonce, at_hash of the new access token); its access tokens stay
// signed (ES256, verified against the JWKS).
async fn a_client_registered_for_none_gets_unsigned_id_tokens_from_code_and_refresh(
    backend: Backend,
) {
    let env = TestEnv::new(backend).await;
    let app = env.spawn().await;
    let alice = app.create_user("alice").await;
    let secret = client_secret(
        &app.create_client(web_client("rp-none", IdTokenAlg::Unsigned))
            .await,
    );
    let tokens = code_flow(&app, &browser(), ("rp-none", &secret), SCOPE, "")
        .await
        .expect("tokens");
    let access = tokens["access_token"].as_str().unwrap();
    let claims = assert_unsigned_id_token(
        &app,
        tokens["id_token"].as_str().unwrap(),
        "rp-none",
        &alice,
        access,
        Some(FLOW_NONCE),
    );
    let header = jsonwebtoken::decode_header(access).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::ES256, "access token");
    assert!(
        crate::helpers::verifies_against(access, &app.jwks().await, &app.issuer).is_ok(),
        "the access token is signed by a published key"
    );

    let again = refreshed(&app, "rp-none", &secret, &tokens).await;
    let refreshed_claims = assert_unsigned_id_token(
        &app,
        again["id_token"].as_str().unwrap(),
        "rp-none",
        &alice,
        again["access_token"].as_str().unwrap(),
        None,
    );
    assert_eq!(refreshed_claims["auth_time"], claims["auth_time"]);
}

// UIT-03, TOK-03: only the client that registered `none` gets unsigned ID tokens: on the same
// server, a client with the default (RS256) and one with ES256 get ID tokens signed by a
// published key of that algorithm, with a kid, verified by a relying party's library.
async fn clients_not_registered_for_none_still_get_signed_id_tokens(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let app = env.spawn().await;
    let alice = app.create_user("alice").await;
    let unsigned = client_secret(
        &app.create_client(web_client("rp-none", IdTokenAlg::Unsigned))
            .await,
    );
    let rs256 = client_secret(
        &app.create_client(web_client("rp-rs256", IdTokenAlg::default()))
            .await,
    );
    let es256 = client_secret(
        &app.create_client(web_client(
            "rp-es256",
            IdTokenAlg::Signed(SigningAlg::Es256),
        ))
        .await,
    );
    let browser = browser();
    let tokens = code_flow(&app, &browser, ("rp-none", &unsigned), SCOPE, "")
        .await
        .expect("tokens");
    assert_unsigned_id_token(
        &app,
        tokens["id_token"].as_str().unwrap(),
        "rp-none",
        &alice,
        tokens["access_token"].as_str().unwrap(),
        Some(FLOW_NONCE),
    );
    for (client_id, secret, alg) in [("rp-rs256", &rs256, "RS256"), ("rp-es256", &es256, "ES256")] {
        let tokens = code_flow(&app, &browser, (client_id, secret), SCOPE, "")
            .await
            .expect("tokens");
        let again = refreshed(&app, client_id, secret, &tokens).await;
        for id_token in [&tokens["id_token"], &again["id_token"]] {
            let id_token = id_token.as_str().unwrap();
            assert_eq!(
                verified_signed_id_token(&app, id_token, client_id).await,
                alg,
                "{client_id}"
            );
            assert_eq!(decode_claims(id_token)["sub"], alice.as_str());
        }
    }
}

// UIT-04: dynamic registration (RFC 7591) accepts `id_token_signed_response_alg: none` and
// echoes it; the client's ID tokens are unsigned; RFC 7592 reads echo it, an update to RS256
// signs at once and an update back to `none` unsigns; other spellings and algorithms (`None`,
// `NONE`, `HS256`, `""`, a number) are `invalid_client_metadata`.
async fn registration_accepts_and_echoes_none(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let app = registration_server(&env).await;
    let alice = app.create_user("alice").await;
    let admin = app.admin_token().await;
    let iat = app.initial_access_token(&admin, None).await;
    let metadata = |alg: Value, client_id: Option<&str>| {
        let mut body = json!({
            "client_name": "Unsigned ID tokens RP",
            "redirect_uris": [REDIRECT],
            "grant_types": ["authorization_code"],
            "response_types": ["code"],
            "scope": "openid",
            "id_token_signed_response_alg": alg,
        });
        if let Some(client_id) = client_id {
            body["client_id"] = json!(client_id);
        }
        body
    };
    let register = |body: Value| {
        let (app, iat) = (&app, &iat);
        async move {
            let response = app
                .client
                .post(app.url("/register"))
                .bearer_auth(iat)
                .json(&body)
                .sent()
                .await;
            (response.status(), json_of(response).await)
        }
    };
    for refused in [
        json!("None"),
        json!("NONE"),
        json!("HS256"),
        json!(""),
        json!(0),
    ] {
        let (status, body) = register(metadata(refused.clone(), None)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}: {body}");
        assert_eq!(body["error"], "invalid_client_metadata", "{refused}");
    }
    let (status, registered) = register(metadata(json!("none"), None)).await;
    assert_eq!(status, StatusCode::CREATED, "{registered}");
    assert_eq!(registered["id_token_signed_response_alg"], "none");
    let client_id = registered["client_id"].as_str().unwrap().to_owned();
    let secret = secret_of(&registered);
    let browser = browser();
    let tokens = code_flow(&app, &browser, (&client_id, &secret), "openid", "")
        .await
        .expect("tokens");
    assert_unsigned_id_token(
        &app,
        tokens["id_token"].as_str().unwrap(),
        &client_id,
        &alice,
        tokens["access_token"].as_str().unwrap(),
        Some(FLOW_NONCE),
    );

    // RFC 7592: the read echoes it; updates change it at once.
    let (path, read) = app.read_registration(&registered).await;
    assert_eq!(read["id_token_signed_response_alg"], "none");
    let mut registration_token = read["registration_access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    for alg in ["RS256", "none"] {
        let response = app
            .send(
                reqwest::Method::PUT,
                &path,
                &registration_token,
                Some(metadata(json!(alg), Some(&client_id))),
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK, "update to {alg}");
        let updated = json_of(response).await;
        assert_eq!(updated["id_token_signed_response_alg"], alg);
        registration_token = updated["registration_access_token"]
            .as_str()
            .unwrap()
            .to_owned();
        let tokens = code_flow(&app, &browser, (&client_id, &secret), "openid", "")
            .await
            .expect("tokens");
        let id_token = tokens["id_token"].as_str().unwrap();
        if alg == "none" {
            assert_unsigned_id_token(
                &app,
                id_token,
                &client_id,
                &alice,
                tokens["access_token"].as_str().unwrap(),
                Some(FLOW_NONCE),
            );
        } else {
            assert_eq!(
                verified_signed_id_token(&app, id_token, &client_id).await,
                "RS256"
            );
        }
    }
}

// UIT-05: administrators' clients: `clients create --id-token-signing-alg none` (the CLI) and
// `POST /admin/clients` with `"id_token_alg": "none"` register clients whose ID tokens are
// unsigned; both listings show `none`; other spellings are refused by both.
async fn the_cli_and_the_admin_api_accept_none(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let by_cli = stdout_json(
        &env.cli(&[
            "clients",
            "create",
            "--client-id",
            "cli-app",
            "--redirect-uri",
            REDIRECT,
            "--first-party",
            "--id-token-signing-alg",
            "none",
        ])
        .await,
    );
    assert_eq!(by_cli["id_token_alg"], "none");
    let refused = env
        .cli(&[
            "clients",
            "create",
            "--client-id",
            "cli-bad",
            "--redirect-uri",
            REDIRECT,
            "--id-token-signing-alg",
            "None",
        ])
        .await;
    assert!(!refused.status.success());
    assert!(
        stderr_of(&refused).contains("`None` is not RS256, ES256 or none"),
        "{}",
        stderr_of(&refused)
    );

    let app = env.spawn().await;
    let alice = app.create_user("alice").await;
    let admin = app.admin_token().await;
    let create = |body: Value| {
        let (app, admin) = (&app, &admin);
        async move {
            app.send(reqwest::Method::POST, "/admin/clients", admin, Some(body))
                .await
        }
    };
    for refused in [json!("None"), json!("HS256"), json!("")] {
        let response = create(json!({
            "client_id": "admin-bad", "redirect_uris": [REDIRECT], "id_token_alg": refused,
        }))
        .await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{refused}");
        assert_eq!(json_of(response).await["error"], "invalid_request");
    }
    let response = create(json!({
        "client_id": "admin-app", "redirect_uris": [REDIRECT], "first_party": true,
        "id_token_alg": "none",
    }))
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let by_admin = json_of(response).await;
    assert_eq!(by_admin["id_token_alg"], "none");

    let listed = json_of(app.get_bearer("/admin/clients", &admin).await).await;
    for client_id in ["cli-app", "admin-app"] {
        let client = listed["clients"]
            .as_array()
            .unwrap()
            .iter()
            .find(|client| client["client_id"] == client_id)
            .unwrap_or_else(|| panic!("{client_id} listed"));
        assert_eq!(client["id_token_alg"], "none", "{client_id}");
    }
    let browser = browser();
    for (client_id, secret) in [
        ("cli-app", secret_of(&by_cli)),
        ("admin-app", secret_of(&by_admin)),
    ] {
        let tokens = code_flow(&app, &browser, (client_id, &secret), SCOPE, "")
            .await
            .expect("tokens");
        assert_unsigned_id_token(
            &app,
            tokens["id_token"].as_str().unwrap(),
            client_id,
            &alice,
            tokens["access_token"].as_str().unwrap(),
            Some(FLOW_NONCE),
        );
    }
}

// UIT-06, JWT-01, LOGOUT-04, AUTHZ-08: an unsigned ID token is never an `id_token_hint`. At
// RP-initiated logout, one the server issued itself (to a client registered for `none`, naming
// this browser's session) and a signed one turned into `alg: none` are "not valid" pages: no
// redirect, the session lives on; the same session's signed hint then ends it at once. At the
// authorization endpoint, `prompt=none` with an unsigned hint signs nobody in.
async fn an_unsigned_id_token_is_never_an_id_token_hint(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let app = env.spawn().await;
    app.create_user("alice").await;
    let unsigned = client_secret(
        &app.create_client(web_client("rp-none", IdTokenAlg::Unsigned))
            .await,
    );
    let signed = client_secret(
        &app.create_client(web_client("rp-rs256", IdTokenAlg::default()))
            .await,
    );
    let browser = browser();
    let unsigned_hint = code_flow(&app, &browser, ("rp-none", &unsigned), SCOPE, "")
        .await
        .expect("tokens")["id_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let signed_hint = code_flow(&app, &browser, ("rp-rs256", &signed), SCOPE, "")
        .await
        .expect("tokens")["id_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        decode_claims(&unsigned_hint)["sid"],
        decode_claims(&signed_hint)["sid"],
        "both name this browser's session"
    );
    // The signed hint with its header replaced by `{"alg":"none"}` and its signature dropped
    // (the suite's ChangeIdTokenToAlgNone).
    let stripped = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#),
        signed_hint.split('.').nth(1).unwrap()
    );

    // prompt=none in a browser without a session: the hint signs nobody in.
    for hint in [&unsigned_hint, &stripped] {
        assert_eq!(
            silent(
                &app,
                &crate::helpers::browser(),
                "rp-none",
                &format!("&id_token_hint={}", enc(hint))
            )
            .await,
            Err("login_required".to_owned())
        );
    }

    for (hint, what) in [
        (&unsigned_hint, "our unsigned"),
        (&stripped, "a stripped signed"),
    ] {
        let response = browser
            .get(app.url(&format!(
                "/logout?id_token_hint={}&post_logout_redirect_uri={}&state=bye",
                enc(hint),
                enc(BYE)
            )))
            .sent()
            .await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{what}");
        assert!(response.headers().get("location").is_none(), "{what}");
        assert!(
            response
                .text()
                .await
                .unwrap()
                .contains("The id_token_hint is not valid."),
            "{what}"
        );
        assert!(
            silent(&app, &browser, "rp-none", "").await.is_ok(),
            "still signed in after {what} hint"
        );
    }
    // The control: the same session's signed hint is accepted and ends it at once.
    let response = browser
        .get(app.url(&format!(
            "/logout?id_token_hint={}&post_logout_redirect_uri={}&state=bye",
            enc(&signed_hint),
            enc(BYE)
        )))
        .sent()
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()["location"], format!("{BYE}?state=bye"));
    assert_eq!(
        silent(&app, &browser, "rp-none", "").await,
        Err("login_required".to_owned())
    );
}

// UIT-07, JWT-01, TEX-06, TEX-07: an unsigned ID token is never a token-exchange subject (an
// `id_token` subject the exchanging client received itself, `invalid_request`) nor an actor
// token (as `id_token`, a type actor tokens never have, or as `access_token`); the same exchange
// with a signed ID token of a client registered the same way succeeds.
async fn an_unsigned_id_token_is_never_a_token_exchange_subject_or_actor(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let app = env.spawn().await;
    app.create_api(BILLING, &[("billing:read", "Read invoices")])
        .await;
    app.create_user("alice").await;
    let portal = |client_id: &str, alg: IdTokenAlg| {
        ClientSpec::new(client_id)
            .redirect_uri(REDIRECT)
            .first_party()
            .grant_type(GrantType::AuthorizationCode)
            .grant_type(GrantType::TokenExchange)
            .scope("openid")
            .scope("billing:read")
            .token_exchange_audience(BILLING)
            .id_token_alg(alg)
    };
    let unsigned = client_secret(
        &app.create_client(portal("portal-none", IdTokenAlg::Unsigned))
            .await,
    );
    let signed = client_secret(
        &app.create_client(portal("portal-rs256", IdTokenAlg::default()))
            .await,
    );
    let browser = browser();
    let tokens = code_flow(&app, &browser, ("portal-none", &unsigned), PORTAL_SCOPE, "")
        .await
        .expect("tokens");
    let unsigned_id = tokens["id_token"].as_str().unwrap();
    let own_access = tokens["access_token"].as_str().unwrap();
    assert!(unsigned_id.ends_with('.'), "an unsigned ID token");
    let exchange = |client_id: &'static str, secret: &str, form: Vec<(&str, &str)>| {
        let (app, secret) = (&app, secret.to_owned());
        let mut form: Vec<(String, String)> = form
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        form.push(("grant_type".into(), EXCHANGE.into()));
        async move {
            let response = app
                .client
                .post(app.url("/token"))
                .basic_auth(client_id, Some(secret))
                .form(&form)
                .sent()
                .await;
            (response.status(), json_of(response).await)
        }
    };

    let (status, body) = exchange(
        "portal-none",
        &unsigned,
        vec![
            ("subject_token", unsigned_id),
            ("subject_token_type", ID_TYPE),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_request");
    assert_eq!(
        body["error_description"],
        "The subject token is not an ID token of this server."
    );
    for actor_type in [ID_TYPE, ACCESS_TYPE] {
        let (status, body) = exchange(
            "portal-none",
            &unsigned,
            vec![
                ("subject_token", own_access),
                ("subject_token_type", ACCESS_TYPE),
                ("actor_token", unsigned_id),
                ("actor_token_type", actor_type),
            ],
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{actor_type}: {body}");
        assert_eq!(body["error"], "invalid_request", "{actor_type}");
    }

    // The control: the subject itself is fine for this client (its own access token), and a
    // signed ID token of a client registered the same way is a subject.
    let (status, body) = exchange(
        "portal-none",
        &unsigned,
        vec![
            ("subject_token", own_access),
            ("subject_token_type", ACCESS_TYPE),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let signed_id = code_flow(&app, &browser, ("portal-rs256", &signed), PORTAL_SCOPE, "")
        .await
        .expect("tokens")["id_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, body) = exchange(
        "portal-rs256",
        &signed,
        vec![
            ("subject_token", &signed_id),
            ("subject_token_type", ID_TYPE),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        decode_claims(body["access_token"].as_str().unwrap())["aud"],
        BILLING
    );
}

on_both_backends!(
    discovery_lists_none_after_the_signed_algorithms,
    a_client_registered_for_none_gets_unsigned_id_tokens_from_code_and_refresh,
    clients_not_registered_for_none_still_get_signed_id_tokens,
    registration_accepts_and_echoes_none,
    the_cli_and_the_admin_api_accept_none,
    an_unsigned_id_token_is_never_an_id_token_hint,
    an_unsigned_id_token_is_never_a_token_exchange_subject_or_actor,
);
