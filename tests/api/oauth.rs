//! The OAuth 2 / OpenID Connect provider: a full flow driven by a real relying-party library
//! (the `openidconnect` crate) through the hosted login page, and the security cases of the
//! authorization and token endpoints — on both backends.

use std::sync::Arc;

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreProviderMetadata, CoreUserInfoClaims,
};
use openidconnect::{
    AccessTokenHash, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IntrospectionUrl,
    IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge, RedirectUrl, Scope,
    TokenIntrospectionResponse, TokenResponse,
};
use reqwest::StatusCode;
use serde_json::Value;

use portcullis::keys::SigningAlg;

use crate::helpers::{
    Backend, ClientSpec, Fixture, PASSWORD, REDIRECT, Sent, TestEnv, answer_consent, browser,
    client_secret, decode_claims, enc, hidden, join_all, json_of, location_params, param, pkce,
    rp_http, secret_of, sign_in, stdout_json, wait_until,
};
use crate::on_both_backends;

// The whole flow, with the openidconnect crate as the relying party: discovery → authorize →
// hosted login → code → tokens (ID token validated by the library, at_hash checked) →
// userinfo → refresh → introspect → revoke.
async fn full_flow_with_a_real_relying_party_library(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let app = env.spawn().await;
    let user_id = app.create_user("alice").await;
    let secret = app.create_webapp().await;
    let secret_for_revocation = secret.clone();

    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let http = rp_http(http);
    let metadata =
        CoreProviderMetadata::discover_async(IssuerUrl::new(app.issuer.clone()).unwrap(), &http)
            .await
            .expect("discovery");
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new("webapp".into()),
        Some(ClientSecret::new(secret)),
    )
    .set_redirect_uri(RedirectUrl::new(REDIRECT.into()).unwrap())
    .set_introspection_url(IntrospectionUrl::new(format!("{}/introspect", app.issuer)).unwrap());

    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (auth_url, csrf, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("offline_access".into()))
        .set_pkce_challenge(challenge)
        .url();

    let browser = browser();
    let redirect = sign_in(&browser, &app.address, auth_url.as_str(), "alice").await;
    assert_eq!(
        redirect.status(),
        StatusCode::SEE_OTHER,
        "LOGIN-08: 303 after the login POST"
    );
    let (location, params) = location_params(&redirect);
    assert!(location.starts_with(REDIRECT));
    assert_eq!(
        param(&params, "state").as_deref(),
        Some(csrf.secret().as_str())
    );
    assert_eq!(
        param(&params, "iss").as_deref(),
        Some(app.issuer.as_str()),
        "RFC 9207"
    );
    let code = param(&params, "code").unwrap();

    let tokens = client
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .expect("code exchange");
    let id_token = tokens.id_token().expect("an ID token");
    let verifier = client.id_token_verifier();
    let claims = id_token.claims(&verifier, &nonce).expect("ID token valid");
    assert_eq!(claims.subject().as_str(), user_id);
    assert!(claims.auth_time().is_some());
    let expected = claims.access_token_hash().expect("at_hash");
    let actual = AccessTokenHash::from_token(
        tokens.access_token(),
        id_token.signing_alg().unwrap(),
        id_token.signing_key(&verifier).unwrap(),
    )
    .unwrap();
    assert_eq!(&actual, expected);
    let first_auth_time = claims.auth_time();
    let refresh_token = tokens
        .refresh_token()
        .expect("offline_access gives a refresh token")
        .clone();

    let info: CoreUserInfoClaims = client
        .user_info(tokens.access_token().to_owned(), None)
        .unwrap()
        .request_async(&http)
        .await
        .expect("userinfo");
    assert_eq!(info.subject().as_str(), user_id);
    assert_eq!(info.preferred_username().unwrap().as_str(), "alice");
    assert_eq!(info.email().unwrap().as_str(), "alice@example.com");

    let refreshed = client
        .exchange_refresh_token(&refresh_token)
        .unwrap()
        .request_async(&http)
        .await
        .expect("refresh");
    let new_id = refreshed.id_token().expect("an ID token on refresh");
    let refreshed_claims = new_id
        .claims(&verifier, |_: Option<&Nonce>| Ok(()))
        .expect("refreshed ID token valid");
    assert_eq!(refreshed_claims.subject().as_str(), user_id);
    assert_eq!(refreshed_claims.auth_time(), first_auth_time);
    assert!(refreshed_claims.nonce().is_none());
    let second_refresh = refreshed.refresh_token().unwrap().clone();

    let introspected = client
        .introspect(refreshed.access_token())
        .request_async(&http)
        .await
        .expect("introspection");
    assert!(introspected.active());
    assert_eq!(introspected.client_id().unwrap().as_str(), "webapp");

    // RFC 7009 revocation (by hand: the library accepts only https revocation URLs).
    let revoked = app
        .client
        .post(format!("{}/revoke", app.address))
        .basic_auth("webapp", Some(&secret_for_revocation))
        .form(&[
            ("token", second_refresh.secret().as_str()),
            ("token_type_hint", "refresh_token"),
        ])
        .sent()
        .await;
    assert_eq!(revoked.status(), 200);
    let after = client
        .exchange_refresh_token(&second_refresh)
        .unwrap()
        .request_async(&http)
        .await;
    assert!(after.is_err(), "a revoked grant does not refresh");
    let introspected = client
        .introspect(refreshed.access_token())
        .request_async(&http)
        .await
        .unwrap();
    assert!(
        !introspected.active(),
        "the grant's access tokens are revoked with it"
    );
}

fn assert_page_without_redirect(response: &reqwest::Response, case: &str) {
    assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{case}");
    assert!(
        response.headers().get("location").is_none(),
        "{case}: never a redirect"
    );
}

// AUTHZ-01/03: anything but an exact registered redirect URI is an error page, never a redirect.
async fn authz_01_03_redirect_uri_must_match_exactly(backend: Backend) {
    let f = Fixture::new(backend).await;
    let challenge = pkce(&"v".repeat(43));
    let base = format!(
        "response_type=code&client_id=webapp&scope=openid&state=x&code_challenge={challenge}&code_challenge_method=S256"
    );
    let variants = [
        "http://127.0.0.1:9/cb/",
        "http://127.0.0.1:9/CB",
        "http://127.0.0.1:9/cb?x=1",
        "http://127.0.0.1:9/cb?code=attackercode",
        "http://127.0.0.1:9/cb#x",
        "https://127.0.0.1:9/cb",
        "http://127.0.0.1:10/cb",
        "http://127.0.0.1/cb",
        "http://localhost:9/cb",
        "http://[::1]:9/cb",
        "http://127.0.0.1:9@evil.example/cb",
        "http://127.0.0.1:9/cb/../evil",
        "http://127.0.0.1:9/cb/..%2Fevil",
        "http://127.0.0.1:9/cb%00",
        "http://127.0.0.1:9/cb ",
        "https://app.example.com/cb?tenant=2",
        "https://app.example.com/cb",
        "https://app.example.com.evil.example/cb?tenant=1",
        "https://APP.example.com/cb?tenant=1",
    ];
    for variant in variants {
        let response = f
            .app
            .client
            .get(f.url(&format!("{base}&redirect_uri={}", enc(variant))))
            .sent()
            .await;
        assert_page_without_redirect(&response, variant);
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
    }
    // Unknown client; two registered URIs and none named; a repeated parameter.
    let unknown = f
        .app
        .client
        .get(f.url(
            "response_type=code&client_id=nobody&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcb",
        ))
        .sent()
        .await;
    assert_page_without_redirect(&unknown, "unknown client");
    let missing = f.app.client.get(f.url(&base)).sent().await;
    assert_page_without_redirect(&missing, "missing redirect_uri with two registered");
    let twice = f
        .app
        .client
        .get(f.url(&format!(
            "{base}&redirect_uri={0}&redirect_uri={0}",
            enc(REDIRECT)
        )))
        .sent()
        .await;
    assert_page_without_redirect(&twice, "redirect_uri twice");

    // A registered URI with a query keeps it, byte for byte, and gets the error appended.
    let ok_uri = "https://app.example.com/cb?tenant=1";
    let response = f
        .app
        .client
        .get(f.url(&format!(
            "response_type=token&client_id=webapp&redirect_uri={}&state=st%26%3D",
            enc(ok_uri)
        )))
        .sent()
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let (location, params) = location_params(&response);
    assert!(location.starts_with("https://app.example.com/cb?tenant=1&"));
    assert_eq!(
        param(&params, "error").as_deref(),
        Some("unsupported_response_type")
    );
    assert_eq!(
        param(&params, "state").as_deref(),
        Some("st&="),
        "AUTHZ-06: state byte for byte"
    );
    assert_eq!(
        param(&params, "iss").as_deref(),
        Some(f.app.issuer.as_str())
    );
}

async fn authorize_error(f: &Fixture, query: &str) -> (String, Option<String>) {
    let response = f.app.client.get(f.url(query)).sent().await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "{query}");
    let (_, params) = location_params(&response);
    (
        param(&params, "error").unwrap_or_default(),
        param(&params, "state"),
    )
}

// PKCE-02/03/04 at the authorization endpoint; AUTHZ-05/09 and scope errors redirect.
async fn pkce_02_03_and_request_errors_redirect(backend: Backend) {
    let f = Fixture::new(backend).await;
    let challenge = pkce(&"v".repeat(43));
    let base = format!(
        "response_type=code&client_id=webapp&redirect_uri={}&scope=openid&state=s",
        enc(REDIRECT)
    );
    // AUTHZ-07: a repeated parameter is refused (an error page: which value would be trusted?).
    let twice = f
        .app
        .client
        .get(f.url(&format!(
            "{base}&scope=email&code_challenge={challenge}&code_challenge_method=S256"
        )))
        .sent()
        .await;
    assert_page_without_redirect(&twice, "scope twice");
    for (query, expected) in [
        (base.clone(), "invalid_request"),
        (
            format!("{base}&code_challenge={challenge}"),
            "invalid_request",
        ),
        (
            format!("{base}&code_challenge={challenge}&code_challenge_method=plain"),
            "invalid_request",
        ),
        (
            format!("{base}&code_challenge={challenge}&code_challenge_method=S512"),
            "invalid_request",
        ),
        (
            format!("{base}&code_challenge=short&code_challenge_method=S256"),
            "invalid_request",
        ),
        (
            format!("{base}&code_challenge={challenge}&code_challenge_method=S256&request=eyJ"),
            "invalid_request_object",
        ),
        (
            // AUTHZ-09: not registered, so never fetched.
            format!(
                "{base}&code_challenge={challenge}&code_challenge_method=S256&request_uri=https%3A%2F%2Fevil"
            ),
            "invalid_request_uri",
        ),
        (
            base.replace("scope=openid", "scope=openid%20admin")
                + &format!("&code_challenge={challenge}&code_challenge_method=S256"),
            "invalid_scope",
        ),
        (
            base.replace("response_type=code", "response_type=id_token%20token")
                + &format!("&code_challenge={challenge}&code_challenge_method=S256"),
            "unsupported_response_type",
        ),
        (
            format!("{base}&code_challenge={challenge}&code_challenge_method=S256&prompt=none"),
            "login_required",
        ),
    ] {
        let (error, state) = authorize_error(&f, &query).await;
        assert_eq!(error, expected, "{query}");
        assert_eq!(state.as_deref(), Some("s"), "{query}");
    }
}

// PKCE-01/03, CODE-01/03 at the token endpoint.
async fn pkce_01_code_01_03_code_binding_and_replay(backend: Backend) {
    let f = Fixture::new(backend).await;
    let browser = browser();

    // PKCE-01: missing or wrong verifier.
    let (code, _) = f.code(&browser, "openid offline_access").await;
    let response = f
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
        ])
        .await;
    assert_eq!(response.status(), 400);
    assert_eq!(json_of(response).await["error"], "invalid_grant");
    let (code, _) = f.code(&browser, "openid offline_access").await;
    let wrong = "b".repeat(43);
    let response = f
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &wrong),
        ])
        .await;
    assert_eq!(json_of(response).await["error"], "invalid_grant");

    // PKCE-03: the method switched at the token endpoint (the S256 challenge itself presented as
    // a plain verifier) is refused.
    let (code, verifier) = f.code(&browser, "openid offline_access").await;
    let response = f.exchange(&code, &pkce(&verifier)).await;
    assert_eq!(response.status(), 400);
    assert_eq!(json_of(response).await["error"], "invalid_grant");

    // CODE-03: redirect_uri must be repeated when it was sent; another client cannot redeem.
    let (code, verifier) = f.code(&browser, "openid").await;
    let response = f
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("code_verifier", &verifier),
        ])
        .await;
    assert_eq!(json_of(response).await["error"], "invalid_grant");
    let (code, verifier) = f.code(&browser, "openid").await;
    let other = f
        .app
        .post_form(
            "/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", &verifier),
                ("client_id", "spa"),
            ],
        )
        .await;
    assert_eq!(json_of(other).await["error"], "invalid_grant");

    // CODE-01: a replayed code is refused and revokes what the first redemption issued.
    let (code, verifier) = f.code(&browser, "openid offline_access").await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", verifier.as_str()),
    ];
    let first = f.token(&form).await;
    assert_eq!(first.status(), 200);
    assert_eq!(first.headers()["cache-control"], "no-store");
    assert_eq!(first.headers()["pragma"], "no-cache");
    let first = json_of(first).await;
    assert!(first["id_token"].is_string());
    let second = f.token(&form).await;
    assert_eq!(second.status(), 400);
    assert_eq!(json_of(second).await["error"], "invalid_grant");
    let refresh = f
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", first["refresh_token"].as_str().unwrap()),
        ])
        .await;
    assert_eq!(
        json_of(refresh).await["error"],
        "invalid_grant",
        "the first redemption's refresh token is revoked"
    );
    let introspected = f
        .token_like(
            "/introspect",
            &[("token", first["access_token"].as_str().unwrap())],
        )
        .await;
    assert_eq!(
        json_of(introspected).await,
        serde_json::json!({"active": false})
    );

    // CODE-03: a code of an OAuth-only request gives no ID token.
    let (code, verifier) = f.code(&browser, "profile").await;
    let plain = json_of(f.exchange(&code, &verifier).await).await;
    assert!(plain["access_token"].is_string());
    assert!(plain["id_token"].is_null());
    // The access token is for the client's audience.
    let claims = decode_claims(plain["access_token"].as_str().unwrap());
    assert_eq!(claims["aud"], "https://api.example.com");
    assert_eq!(claims["client_id"], "webapp");
    assert_eq!(claims["sub"], f.user_id.as_str());
}

// CODE-02: twenty concurrent redemptions of one code: exactly one succeeds.
async fn code_02_concurrent_redemption_has_one_winner(backend: Backend) {
    let f = Arc::new(Fixture::new(backend).await);
    let (code, verifier) = f.code(&browser(), "openid offline_access").await;
    let statuses = join_all((0..20).map(|_| {
        let f = Arc::clone(&f);
        let (code, verifier) = (code.clone(), verifier.clone());
        async move { f.exchange(&code, &verifier).await.status() }
    }))
    .await;
    assert_eq!(
        statuses.iter().filter(|s| **s == StatusCode::OK).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::BAD_REQUEST)
            .count(),
        19
    );
}

// RT-03/04/06 at the token endpoint: rotation, reuse, binding to the client, scope narrowing.
async fn rt_03_04_06_refresh_at_the_token_endpoint(backend: Backend) {
    let f = Arc::new(Fixture::new(backend).await);
    let (code, verifier) = f.code(&browser(), "openid profile offline_access").await;
    let tokens = json_of(f.exchange(&code, &verifier).await).await;
    let rt1 = tokens["refresh_token"].as_str().unwrap().to_owned();

    // RT-06: another client's refresh token is refused and left working; no client
    // authentication is 401; a wider scope is invalid_scope, a narrower one allowed.
    let stolen = f
        .app
        .post_form(
            "/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", rt1.as_str()),
                ("client_id", "spa"),
            ],
        )
        .await;
    assert_eq!(json_of(stolen).await["error"], "invalid_grant");
    let unauthenticated = f
        .app
        .post_form(
            "/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", rt1.as_str()),
                ("client_id", "webapp"),
            ],
        )
        .await;
    assert_eq!(unauthenticated.status(), 401);
    assert_eq!(json_of(unauthenticated).await["error"], "invalid_client");
    let wider = f
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &rt1),
            ("scope", "openid email"),
        ])
        .await;
    assert_eq!(json_of(wider).await["error"], "invalid_scope");
    let narrower = json_of(
        f.token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &rt1),
            ("scope", "openid"),
        ])
        .await,
    )
    .await;
    assert_eq!(narrower["scope"], "openid");
    let rt2 = narrower["refresh_token"].as_str().unwrap().to_owned();

    // RT-04: parallel refreshes of one token: exactly one 200.
    let statuses = join_all((0..10).map(|_| {
        let f = Arc::clone(&f);
        let rt2 = rt2.clone();
        async move {
            f.token(&[("grant_type", "refresh_token"), ("refresh_token", &rt2)])
                .await
                .status()
        }
    }))
    .await;
    assert_eq!(
        statuses.iter().filter(|s| **s == StatusCode::OK).count(),
        1,
        "{statuses:?}"
    );
    // RT-03: the reuse revoked the family: nothing of it refreshes any more.
    let again = f
        .token(&[("grant_type", "refresh_token"), ("refresh_token", &rt1)])
        .await;
    assert_eq!(json_of(again).await["error"], "invalid_grant");
}

// TEP-01..04 and client_credentials.
async fn token_endpoint_client_authentication_and_errors(backend: Backend) {
    let f = Fixture::new(backend).await;
    let service = f
        .app
        .create_client(
            ClientSpec::new("svc")
                .audience("https://api.example.com")
                .audience("https://other.example.com")
                .access_token_alg(SigningAlg::Rs256),
        )
        .await;
    let secret = client_secret(&service);
    let token = |form: Vec<(&'static str, String)>, basic: Option<(&str, &str)>| {
        let mut request = f
            .app
            .client
            .post(format!("{}/token", f.app.address))
            .form(&form);
        if let Some((id, secret)) = basic {
            request = request.basic_auth(id, Some(secret));
        }
        request.send()
    };
    let cc = || vec![("grant_type", "client_credentials".to_owned())];

    let ok = token(cc(), Some(("svc", &secret))).await.unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.headers()["cache-control"], "no-store");
    let body = json_of(ok).await;
    assert_eq!(body["token_type"], "Bearer");
    let header = jsonwebtoken::decode_header(body["access_token"].as_str().unwrap()).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::RS256);
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    let claims = decode_claims(body["access_token"].as_str().unwrap());
    assert_eq!(claims["sub"], "svc");
    assert_eq!(claims["aud"], "https://api.example.com");
    let mut with_audience = cc();
    with_audience.push(("audience", "https://other.example.com".into()));
    let other = json_of(token(with_audience, Some(("svc", &secret))).await.unwrap()).await;
    assert_eq!(
        decode_claims(other["access_token"].as_str().unwrap())["aud"],
        "https://other.example.com"
    );
    let mut foreign = cc();
    foreign.push(("resource", "https://evil.example.com".into()));
    assert_eq!(
        json_of(token(foreign, Some(("svc", &secret))).await.unwrap()).await["error"],
        "invalid_target"
    );

    // TEP-02: wrong secret (Basic) → 401 + WWW-Authenticate; post method; both at once.
    let wrong = token(cc(), Some(("svc", "nope"))).await.unwrap();
    assert_eq!(wrong.status(), 401);
    assert!(
        wrong.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic")
    );
    assert_eq!(wrong.headers()["cache-control"], "no-store");
    assert_eq!(json_of(wrong).await["error"], "invalid_client");
    let mut post = cc();
    post.extend([
        ("client_id", "svc".to_owned()),
        ("client_secret", secret.clone()),
    ]);
    assert_eq!(token(post.clone(), None).await.unwrap().status(), 200);
    assert_eq!(
        json_of(token(post, Some(("svc", &secret))).await.unwrap()).await["error"],
        "invalid_request"
    );
    let unknown = token(cc(), Some(("ghost", "x"))).await.unwrap();
    assert_eq!(unknown.status(), 401);

    // TEP-01: grant types.
    let none = token(vec![], Some(("svc", &secret))).await.unwrap();
    assert_eq!(json_of(none).await["error"], "invalid_request");
    let password = token(
        vec![("grant_type", "password".into())],
        Some(("svc", &secret)),
    )
    .await
    .unwrap();
    assert_eq!(json_of(password).await["error"], "unsupported_grant_type");
    let not_allowed = token(cc(), Some(("webapp", &f.secret))).await.unwrap();
    assert_eq!(json_of(not_allowed).await["error"], "unauthorized_client");
    let public = f
        .app
        .post_form(
            "/token",
            &[("grant_type", "client_credentials"), ("client_id", "spa")],
        )
        .await;
    assert_eq!(json_of(public).await["error"], "unauthorized_client");

    // TEP-03: GET, JSON body, duplicated parameters, secret in the URL.
    let get = f.app.get("/token").await;
    assert_eq!(get.status(), 405);
    let json_body = f
        .app
        .client
        .post(format!("{}/token", f.app.address))
        .basic_auth("svc", Some(&secret))
        .json(&serde_json::json!({"grant_type": "client_credentials"}))
        .sent()
        .await;
    assert_eq!(json_of(json_body).await["error"], "invalid_request");
    let duplicated = f
        .app
        .client
        .post(format!("{}/token", f.app.address))
        .basic_auth("svc", Some(&secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials&grant_type=client_credentials")
        .sent()
        .await;
    assert_eq!(json_of(duplicated).await["error"], "invalid_request");
    let in_url = f
        .app
        .post_form(
            "/token?client_secret={secret}",
            &[("grant_type", "client_credentials"), ("client_id", "svc")],
        )
        .await;
    assert_eq!(json_of(in_url).await["error"], "invalid_request");
    let huge = f
        .app
        .client
        .post(format!("{}/token", f.app.address))
        .basic_auth("svc", Some(&secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("x=".to_owned() + &"a".repeat(100_000))
        .sent()
        .await;
    assert_eq!(huge.status(), 413);

    // A rotated secret works at once; the old one stops. (The operator's CLI changes the
    // database; the running server picks the change up at its next refresh.)
    let rotated = stdout_json(&f.env.cli(&["clients", "rotate-secret", "svc"]).await);
    let new_secret = secret_of(&rotated);
    let (token, new_secret) = (&token, new_secret.as_str());
    wait_until(
        "the new secret is accepted within the refresh interval",
        std::time::Duration::from_secs(5),
        || async move {
            token(cc(), Some(("svc", new_secret)))
                .await
                .unwrap()
                .status()
                == 200
        },
    )
    .await;
    assert_eq!(
        token(cc(), Some(("svc", &secret))).await.unwrap().status(),
        401
    );
}

// LOGIN-01: the login form needs the CSRF token and the browser that started the flow;
// LOGIN-04 on the hosted page; HDR-01.
async fn login_01_04_hosted_page_binding_and_enumeration(backend: Backend) {
    let f = Fixture::new(backend).await;
    let challenge = pkce(&"v".repeat(43));
    let url = f.url(&format!(
        "response_type=code&client_id=webapp&redirect_uri={}&scope=openid&code_challenge={challenge}&code_challenge_method=S256",
        enc(REDIRECT)
    ));
    let attacker = browser();
    let page = attacker.get(&url).sent().await;
    for (header, value) in [
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
        ("cache-control", "no-store"),
        ("x-content-type-options", "nosniff"),
    ] {
        assert_eq!(page.headers()[header], value, "HDR-01/03 {header}");
    }
    assert!(
        page.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    assert!(
        page.headers().get("access-control-allow-origin").is_none(),
        "AUTHZ-11"
    );
    let html = page.text().await.unwrap();
    let (request_id, csrf) = (hidden(&html, "request_id"), hidden(&html, "csrf_token"));
    let post = |client: &reqwest::Client, csrf: &str, username: &str, password: &str| {
        client
            .post(format!("{}/authorize/login", f.app.address))
            .form(&[
                ("request_id", request_id.as_str()),
                ("csrf_token", csrf),
                ("username", username),
                ("password", password),
            ])
            .send()
    };
    // Wrong CSRF token: refused.
    let forged = post(&attacker, "forged", "alice", PASSWORD).await.unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    // The attacker's flow submitted from the victim's browser: refused (bound to the browser).
    let victim = browser();
    let hijack = post(&victim, &csrf, "alice", PASSWORD).await.unwrap();
    assert_eq!(hijack.status(), StatusCode::FORBIDDEN);
    assert!(hijack.headers().get("location").is_none());

    // LOGIN-04: unknown user and wrong password answer alike.
    let unknown = post(&attacker, &csrf, "nobody", "wrong password!")
        .await
        .unwrap();
    let wrong = post(&attacker, &csrf, "alice", "wrong password!")
        .await
        .unwrap();
    assert_eq!(unknown.status(), wrong.status());
    let strip = |html: String| {
        html.replace("value=\"nobody\"", "")
            .replace("value=\"alice\"", "")
    };
    assert_eq!(
        strip(unknown.text().await.unwrap()),
        strip(wrong.text().await.unwrap())
    );

    // The genuine browser with the right token signs in: 303 to the client, session cookie set.
    let done = post(&attacker, &csrf, "alice", PASSWORD).await.unwrap();
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    let cookie = done.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    // The request is spent.
    let replay = post(&attacker, &csrf, "alice", PASSWORD).await.unwrap();
    assert_eq!(replay.status(), StatusCode::BAD_REQUEST);
}

// AUTHZ-08: prompt=none with a session gives a code without UI; prompt=login and max_age force
// a new login; LOGIN-09: a third-party client asks for consent, and deny → access_denied.
async fn authz_08_prompt_max_age_and_consent(backend: Backend) {
    let f = Fixture::new(backend).await;
    let browser = browser();
    f.code(&browser, "openid").await;
    let challenge = pkce(&"v".repeat(43));
    let base = format!(
        "response_type=code&client_id=webapp&redirect_uri={}&scope=openid&state=p&code_challenge={challenge}&code_challenge_method=S256",
        enc(REDIRECT)
    );
    let silent = browser
        .get(f.url(&format!("{base}&prompt=none")))
        .sent()
        .await;
    assert_eq!(silent.status(), StatusCode::SEE_OTHER);
    assert!(param(&location_params(&silent).1, "code").is_some());
    let forced = browser
        .get(f.url(&format!("{base}&prompt=login")))
        .sent()
        .await;
    assert_eq!(
        forced.status(),
        StatusCode::OK,
        "prompt=login shows the login page"
    );
    let long = browser
        .get(f.url(&format!("{base}&max_age=10000")))
        .sent()
        .await;
    assert_eq!(
        long.status(),
        StatusCode::SEE_OTHER,
        "max_age=10000 needs no new login"
    );
    f.app.advance(std::time::Duration::from_secs(1));
    let short = browser
        .get(f.url(&format!("{base}&max_age=0")))
        .sent()
        .await;
    assert_eq!(
        short.status(),
        StatusCode::OK,
        "max_age=0 forces a new login"
    );

    // A third-party client: consent page; deny → access_denied with state.
    f.app
        .create_client(ClientSpec::new("partner").redirect_uri("http://127.0.0.1:9/partner"))
        .await;
    let partner = format!(
        "response_type=code&client_id=partner&redirect_uri={}&scope=openid%20email&state=q&code_challenge={challenge}&code_challenge_method=S256",
        enc("http://127.0.0.1:9/partner")
    );
    let none = browser
        .get(f.url(&format!("{partner}&prompt=none")))
        .sent()
        .await;
    assert_eq!(
        param(&location_params(&none).1, "error").as_deref(),
        Some("consent_required")
    );
    let consent = browser.get(f.url(&partner)).sent().await;
    assert_eq!(consent.status(), StatusCode::OK);
    let html = consent.text().await.unwrap();
    assert!(html.contains("partner") && html.contains("email"));
    let denied = answer_consent(
        &browser,
        format!("{}/authorize/consent", f.app.address),
        &html,
        "deny",
    )
    .await;
    assert_eq!(denied.status(), StatusCode::SEE_OTHER);
    let (_, params) = location_params(&denied);
    assert_eq!(param(&params, "error").as_deref(), Some("access_denied"));
    assert_eq!(param(&params, "state").as_deref(), Some("q"));
    let consent = browser.get(f.url(&partner)).sent().await;
    let html = consent.text().await.unwrap();
    let approved = answer_consent(
        &browser,
        format!("{}/authorize/consent", f.app.address),
        &html,
        "approve",
    )
    .await;
    assert!(param(&location_params(&approved).1, "code").is_some());
}

// RP-initiated logout: only a registered post_logout_redirect_uri; the session and its grants end.
async fn logout_ends_the_session_and_its_grants(backend: Backend) {
    let f = Fixture::new(backend).await;
    let browser = browser();
    let (code, verifier) = f.code(&browser, "openid offline_access").await;
    let tokens = json_of(f.exchange(&code, &verifier).await).await;
    let id_token = tokens["id_token"].as_str().unwrap();
    let bad = browser
        .get(format!(
            "{}/logout?id_token_hint={id_token}&post_logout_redirect_uri={}",
            f.app.address,
            enc("https://evil.example/")
        ))
        .sent()
        .await;
    assert_page_without_redirect(&bad, "unregistered post_logout_redirect_uri");
    let tampered = browser
        .get(format!(
            "{}/logout?id_token_hint={}x",
            f.app.address, id_token
        ))
        .sent()
        .await;
    assert_page_without_redirect(&tampered, "tampered id_token_hint");
    let out = browser
        .get(format!(
            "{}/logout?id_token_hint={id_token}&post_logout_redirect_uri={}&state=bye",
            f.app.address,
            enc("http://127.0.0.1:9/bye")
        ))
        .sent()
        .await;
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        out.headers()["location"],
        "http://127.0.0.1:9/bye?state=bye"
    );
    let refresh = f
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
        ])
        .await;
    assert_eq!(
        json_of(refresh).await["error"],
        "invalid_grant",
        "the session's grants end"
    );
    let challenge = pkce(&"v".repeat(43));
    let silent = browser
        .get(f.url(&format!("response_type=code&client_id=webapp&redirect_uri={}&scope=openid&prompt=none&code_challenge={challenge}&code_challenge_method=S256", enc(REDIRECT))))
        .sent().await;
    assert_eq!(
        param(&location_params(&silent).1, "error").as_deref(),
        Some("login_required")
    );
}

// The discovery document lists the endpoints and only what is implemented.
async fn discovery_lists_what_is_implemented(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let app = env.spawn().await;
    let doc: Value = app
        .get("/.well-known/openid-configuration")
        .await
        .json()
        .await
        .unwrap();
    for endpoint in [
        "authorization_endpoint",
        "token_endpoint",
        "userinfo_endpoint",
        "revocation_endpoint",
        "introspection_endpoint",
        "end_session_endpoint",
    ] {
        assert!(
            doc[endpoint].as_str().unwrap().starts_with(&app.issuer),
            "{endpoint}"
        );
    }
    assert_eq!(
        doc["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(doc["response_types_supported"], serde_json::json!(["code"]));
    assert_eq!(doc["authorization_response_iss_parameter_supported"], true);
    assert_eq!(doc["request_uri_parameter_supported"], true);
    assert_eq!(doc["require_request_uri_registration"], true);
}

// LOGIN-06 (c): the hosted page is throttled like the JSON API; LOGIN-01 (d): extra form fields
// have no effect, the stored request decides.
async fn login_06_hosted_page_throttling_and_tampered_fields(backend: Backend) {
    let f = Fixture::new(backend).await;
    let challenge = pkce(&"v".repeat(43));
    let url = f.url(&format!(
        "response_type=code&client_id=webapp&redirect_uri={}&scope=openid&state=orig&code_challenge={challenge}&code_challenge_method=S256",
        enc(REDIRECT)
    ));
    let browser = browser();
    let html = browser.get(&url).sent().await.text().await.unwrap();
    let (request_id, csrf) = (hidden(&html, "request_id"), hidden(&html, "csrf_token"));
    // Tampered hidden fields: the code still goes to the stored redirect URI with the stored state.
    let tampered = browser
        .post(format!("{}/authorize/login", f.app.address))
        .form(&[
            ("request_id", request_id.as_str()),
            ("csrf_token", csrf.as_str()),
            ("username", "alice"),
            ("password", PASSWORD),
            ("client_id", "spa"),
            ("redirect_uri", "https://evil.example/cb"),
            ("state", "evil"),
            ("scope", "openid email"),
        ])
        .sent()
        .await;
    let (location, params) = location_params(&tampered);
    assert!(location.starts_with(REDIRECT), "{location}");
    assert_eq!(param(&params, "state").as_deref(), Some("orig"));

    let html = browser.get(f.url(&format!(
        "response_type=code&client_id=webapp&redirect_uri={}&scope=openid&prompt=login&code_challenge={challenge}&code_challenge_method=S256",
        enc(REDIRECT)
    ))).sent().await.text().await.unwrap();
    let (request_id, csrf) = (hidden(&html, "request_id"), hidden(&html, "csrf_token"));
    let mut statuses = Vec::new();
    for _ in 0..7 {
        let response = browser
            .post(format!("{}/authorize/login", f.app.address))
            .form(&[
                ("request_id", request_id.as_str()),
                ("csrf_token", csrf.as_str()),
                ("username", "alice"),
                ("password", "not the password"),
            ])
            .sent()
            .await;
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            assert!(response.headers().contains_key("retry-after"));
        }
        statuses.push(response.status());
    }
    assert_eq!(
        &statuses[..5],
        &[StatusCode::UNAUTHORIZED; 5],
        "{statuses:?}"
    );
    assert_eq!(statuses[5], StatusCode::TOO_MANY_REQUESTS, "{statuses:?}");
    // Even the right password is refused while throttled, before any hashing.
    let right = browser
        .post(format!("{}/authorize/login", f.app.address))
        .form(&[
            ("request_id", request_id.as_str()),
            ("csrf_token", csrf.as_str()),
            ("username", "alice"),
            ("password", PASSWORD),
        ])
        .sent()
        .await;
    assert_eq!(right.status(), StatusCode::TOO_MANY_REQUESTS);
}

// HDR-02/03: on an https issuer the cookies are __Host-, Secure, HttpOnly, SameSite=Lax, and
// pages send HSTS.
async fn hdr_02_cookies_and_hsts_on_an_https_issuer(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let app = env
        .spawn_with(portcullis::config::SettingsArgs {
            issuer: Some("https://idp.example.test".into()),
            ..env.args()
        })
        .await;
    app.create_webapp().await;
    let challenge = pkce(&"v".repeat(43));
    let page = app
        .client
        .get(format!(
            "{}/authorize?response_type=code&client_id=webapp&scope=openid&code_challenge={challenge}&code_challenge_method=S256",
            app.address
        ))
        .sent().await;
    assert_eq!(page.status(), 200);
    assert!(
        page.headers()["strict-transport-security"]
            .to_str()
            .unwrap()
            .contains("max-age=31536000")
    );
    let cookie = page.headers()["set-cookie"].to_str().unwrap().to_owned();
    for part in [
        "__Host-portcullis_flow=",
        "Secure",
        "HttpOnly",
        "SameSite=Lax",
        "Path=/",
    ] {
        assert!(cookie.contains(part), "{part} in {cookie}");
    }
    assert!(!cookie.contains("Domain"), "{cookie}");
}

// Userinfo (RFC 6750 errors), introspection (confidential clients only) and REV-02/03.
async fn userinfo_introspection_and_revocation_edges(backend: Backend) {
    let f = Fixture::new(backend).await;
    let (code, verifier) = f.code(&browser(), "openid email offline_access").await;
    let tokens = json_of(f.exchange(&code, &verifier).await).await;
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let info = f.app.get_bearer("/userinfo", &access).await;
    assert_eq!(info.status(), 200);
    let info = json_of(info).await;
    assert_eq!(info["sub"], f.user_id.as_str());
    assert_eq!(info["email"], "alice@example.com");
    assert!(
        info["preferred_username"].is_null(),
        "no profile scope, no profile claims"
    );
    let bad = f.app.get_bearer("/userinfo", &(access.clone() + "x")).await;
    assert_eq!(bad.status(), 401);
    assert!(
        bad.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );
    let service = f.app.create_client(ClientSpec::new("svc")).await;
    let service_secret = client_secret(&service);
    let cc = json_of(
        f.app
            .client
            .post(format!("{}/token", f.app.address))
            .basic_auth("svc", Some(&service_secret))
            .form(&[("grant_type", "client_credentials")])
            .sent()
            .await,
    )
    .await;
    let no_openid = f
        .app
        .get_bearer("/userinfo", cc["access_token"].as_str().unwrap())
        .await;
    assert_eq!(no_openid.status(), 403);

    // Introspection needs a confidential client.
    let public = f
        .app
        .post_form(
            "/introspect",
            &[("token", access.as_str()), ("client_id", "spa")],
        )
        .await;
    assert_eq!(public.status(), 401);
    let garbage = json_of(f.token_like("/introspect", &[("token", "garbage")]).await).await;
    assert_eq!(garbage, serde_json::json!({"active": false}));

    // REV-03: another client cannot revoke; REV-02: unknown tokens answer 200.
    let foreign = f
        .app
        .client
        .post(format!("{}/revoke", f.app.address))
        .basic_auth("svc", Some(&service_secret))
        .form(&[("token", tokens["refresh_token"].as_str().unwrap())])
        .sent()
        .await;
    assert_eq!(foreign.status(), 400);
    assert_eq!(json_of(foreign).await["error"], "unauthorized_client");
    let still = f
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
        ])
        .await;
    assert_eq!(still.status(), 200, "the token stays valid");
    let unknown = f.token_like("/revoke", &[("token", "no-such-token")]).await;
    assert_eq!(unknown.status(), 200);
    // An access token can be revoked on its own: introspection and userinfo then refuse it.
    let revoked = f
        .token_like(
            "/revoke",
            &[
                ("token", access.as_str()),
                ("token_type_hint", "access_token"),
            ],
        )
        .await;
    assert_eq!(revoked.status(), 200);
    assert_eq!(
        json_of(
            f.token_like("/introspect", &[("token", access.as_str())])
                .await
        )
        .await["active"],
        false
    );
    assert_eq!(f.app.get_bearer("/userinfo", &access).await.status(), 401);
}

// Scope is parsed once (RFC 6749 §3.3): at every grant the scope a token carries and the
// response names is the canonical text — duplicates and extra spaces dropped — as the
// authorization endpoint always stored it.
async fn scope_text_is_canonical_at_every_grant(backend: Backend) {
    let f = Fixture::new(backend).await;
    let service = client_secret(&f.app.create_client(ClientSpec::new("svc")).await);
    let issued = json_of(
        f.app
            .client
            .post(format!("{}/token", f.app.address))
            .basic_auth("svc", Some(service))
            .form(&[
                ("grant_type", "client_credentials"),
                ("scope", " email  profile email "),
            ])
            .sent()
            .await,
    )
    .await;
    assert_eq!(issued["scope"], "email profile");
    assert_eq!(
        decode_claims(issued["access_token"].as_str().unwrap())["scope"],
        "email profile"
    );

    let (code, verifier) = f.code(&browser(), "openid profile offline_access").await;
    let tokens = json_of(f.exchange(&code, &verifier).await).await;
    let narrower = json_of(
        f.token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
            ("scope", "profile  openid profile"),
        ])
        .await,
    )
    .await;
    assert_eq!(narrower["scope"], "profile openid");
    assert_eq!(
        decode_claims(narrower["access_token"].as_str().unwrap())["scope"],
        "profile openid"
    );
}

on_both_backends!(
    login_06_hosted_page_throttling_and_tampered_fields,
    hdr_02_cookies_and_hsts_on_an_https_issuer,
    userinfo_introspection_and_revocation_edges,
    full_flow_with_a_real_relying_party_library,
    authz_01_03_redirect_uri_must_match_exactly,
    pkce_02_03_and_request_errors_redirect,
    pkce_01_code_01_03_code_binding_and_replay,
    code_02_concurrent_redemption_has_one_winner,
    rt_03_04_06_refresh_at_the_token_endpoint,
    token_endpoint_client_authentication_and_errors,
    login_01_04_hosted_page_binding_and_enumeration,
    authz_08_prompt_max_age_and_consent,
    logout_ends_the_session_and_its_grants,
    discovery_lists_what_is_implemented,
    scope_text_is_canonical_at_every_grant,
);
