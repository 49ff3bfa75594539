//! Pairwise subject identifiers (OIDC Core §8.1; OIDC Dynamic Client Registration §2
//! `subject_type` and `sector_identifier_uri`, §5). Clients of one sector see one `sub` for a
//! user, clients of other sectors another, and none sees the user id; the same `sub` is in the ID
//! token, the access token, userinfo, introspection and after a refresh; our own tokens' pairwise
//! `sub` leads back to the user (userinfo, token exchange with an ID token, a `claims` request's
//! `sub`). Registration checks the sector: the document must list every redirect URI, is fetched
//! only for a caller with a good credential and SSRF-safely, and the sector cannot change later.
//! Cases PAIRWISE-01 to PAIRWISE-05.

use portcullis::config::SettingsArgs;
use portcullis::oidc::clients::GrantType;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{
    Backend, ClientSpec, DocServer, REDIRECT, Reply, Sent, TestApp, TestEnv, browser,
    client_secret, code_flow, decode_claims, enc, json_of,
};
use crate::on_both_backends;

const API: &str = "https://api.example.com";
const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ID_TOKEN: &str = "urn:ietf:params:oauth:token-type:id_token";

/// POSTs `form` to `path` as `client_id` (HTTP Basic): status and JSON body.
async fn post_as(
    app: &TestApp,
    (client_id, secret): (&str, &str),
    path: &str,
    form: &[(&str, &str)],
) -> (StatusCode, Value) {
    let response = app
        .client
        .post(app.url(path))
        .basic_auth(client_id, Some(secret))
        .form(form)
        .sent()
        .await;
    (response.status(), json_of(response).await)
}

/// The `sub` of a JWT's claims.
fn sub_of(token: &Value) -> String {
    decode_claims(token.as_str().expect("a token"))["sub"]
        .as_str()
        .expect("sub")
        .to_owned()
}

/// Everything `client` (its id and secret) learns about alice's `sub` in one sign-in: the ID
/// token's `sub`, which the access token, userinfo, introspection and a refresh (new access and
/// ID tokens) all repeat.
async fn seen_sub(app: &TestApp, client: (&str, &str)) -> String {
    let tokens = code_flow(app, &browser(), client, "openid profile offline_access", "")
        .await
        .expect("tokens");
    let sub = sub_of(&tokens["id_token"]);
    assert_eq!(sub_of(&tokens["access_token"]), sub, "access token");
    let access = tokens["access_token"].as_str().unwrap();
    let userinfo = app.get_bearer("/userinfo", access).await;
    assert_eq!(userinfo.status(), StatusCode::OK);
    assert_eq!(json_of(userinfo).await["sub"], sub, "userinfo");
    let (status, introspected) = post_as(app, client, "/introspect", &[("token", access)]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(introspected["active"], true, "{introspected}");
    assert_eq!(introspected["sub"], sub, "introspection");
    let refresh = tokens["refresh_token"].as_str().expect("a refresh token");
    let (status, introspected) = post_as(app, client, "/introspect", &[("token", refresh)]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(introspected["active"], true, "{introspected}");
    assert_eq!(introspected["sub"], sub, "refresh token introspection");
    let (status, refreshed) = post_as(
        app,
        client,
        "/token",
        &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{refreshed}");
    assert_eq!(sub_of(&refreshed["access_token"]), sub, "refreshed");
    if refreshed.get("id_token").is_some() {
        assert_eq!(sub_of(&refreshed["id_token"]), sub, "refreshed ID token");
    }
    sub
}

/// A confidential client `id` at [`REDIRECT`] (code, refresh), pairwise in `sector` when given:
/// its id and secret.
async fn client(app: &TestApp, id: &str, sector: Option<&str>) -> (String, String) {
    let mut spec = ClientSpec::new(id)
        .redirect_uri(REDIRECT)
        .grant_type(GrantType::AuthorizationCode)
        .grant_type(GrantType::RefreshToken);
    if let Some(sector) = sector {
        spec = spec.pairwise(sector);
    }
    (id.to_owned(), client_secret(&app.create_client(spec).await))
}

// PAIRWISE-01: two clients of one sector see alice under one `sub`, a client of another sector
// under another, and none of them sees her user id (which a public client sees); each sees its
// `sub` in the ID token, the access token, userinfo, introspection and after a refresh.
async fn pairwise_clients_see_one_identifier_per_sector(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let app = env.spawn().await;
    let alice = app.create_user("alice").await;
    let discovery = json_of(app.get("/.well-known/openid-configuration").await).await;
    assert_eq!(
        discovery["subject_types_supported"],
        json!(["public", "pairwise"])
    );
    let a1 = client(&app, "shop-web", Some("shop.example")).await;
    let a2 = client(&app, "shop-admin", Some("shop.example")).await;
    let b = client(&app, "news", Some("news.example")).await;
    let public = client(&app, "plain", None).await;
    let seen = |c: &(String, String)| {
        let c = (c.0.clone(), c.1.clone());
        let app = &app;
        async move { seen_sub(app, (&c.0, &c.1)).await }
    };
    let (shop_web, shop_admin, news, plain) = (
        seen(&a1).await,
        seen(&a2).await,
        seen(&b).await,
        seen(&public).await,
    );
    assert_eq!(shop_web, shop_admin, "one sector, one identifier");
    assert_ne!(shop_web, news, "another sector, another identifier");
    assert_eq!(plain, alice, "a public client sees the user id");
    for pairwise in [&shop_web, &news] {
        assert_ne!(pairwise, &alice);
        assert!(!pairwise.contains(&alice) && pairwise.len() <= 255);
    }
    // The admin API registers pairwise clients in their redirect URIs' one host.
    let admin = app.admin_token().await;
    let create = |body: Value| {
        let (app, admin) = (&app, &admin);
        async move {
            let response = app
                .send(reqwest::Method::POST, "/admin/clients", admin, Some(body))
                .await;
            (response.status(), json_of(response).await)
        }
    };
    let (status, made) = create(json!({
        "client_id": "admin-made",
        "redirect_uris": ["https://Shop.example/cb", "https://shop.example/other"],
        "subject_type": "pairwise",
    }))
    .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    assert_eq!(made["subject_type"], "pairwise");
    assert_eq!(made["sector_identifier"], "shop.example");
    let (status, refused) = create(json!({
        "client_id": "two-hosts",
        "redirect_uris": ["https://shop.example/cb", "https://news.example/cb"],
        "subject_type": "pairwise",
    }))
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
}

// PAIRWISE-02: a pairwise client's `claims` request names alice by the `sub` it knows (OIDC
// Core §5.5.1): her session answers prompt=none; her user id or another sector's `sub` names
// nobody signed in here.
async fn a_claims_sub_names_the_user_as_the_client_knows_them(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let app = env.spawn().await;
    let alice = app.create_user("alice").await;
    let shop = client(&app, "shop-web", Some("shop.example")).await;
    let news = client(&app, "news", Some("news.example")).await;
    let browser = browser();
    let own = sub_of(
        &code_flow(&app, &browser, (&shop.0, &shop.1), "openid", "")
            .await
            .unwrap()["id_token"],
    );
    let other = seen_sub(&app, (&news.0, &news.1)).await;
    // One browser session, two sectors: each sees its own `sid` (no handle links them).
    let sid = |tokens: &Value| decode_claims(tokens["id_token"].as_str().unwrap())["sid"].clone();
    let shop_tokens = code_flow(&app, &browser, (&shop.0, &shop.1), "openid", "")
        .await
        .unwrap();
    let news_tokens = code_flow(&app, &browser, (&news.0, &news.1), "openid", "")
        .await
        .unwrap();
    assert!(sid(&shop_tokens).is_string() && sid(&news_tokens).is_string());
    assert_ne!(sid(&shop_tokens), sid(&news_tokens), "a sid per sector");
    let asking = |sub: &str| {
        format!(
            "&prompt=none&claims={}",
            enc(&json!({"id_token": {"sub": {"value": sub}}}).to_string())
        )
    };
    let answered = code_flow(&app, &browser, (&shop.0, &shop.1), "openid", &asking(&own))
        .await
        .expect("the session answers for its own sub");
    assert_eq!(sub_of(&answered["id_token"]), own);
    for stranger in [alice.as_str(), other.as_str()] {
        let refused = code_flow(
            &app,
            &browser,
            (&shop.0, &shop.1),
            "openid",
            &asking(stranger),
        )
        .await;
        assert_eq!(
            refused.err().as_deref(),
            Some("login_required"),
            "{stranger}"
        );
    }
    // The pairwise ID token names this browser's session (its `sid` opened back): RP-initiated
    // logout ends it without asking.
    let hint = shop_tokens["id_token"].as_str().unwrap();
    let logout = browser
        .get(app.url(&format!("/logout?id_token_hint={}", enc(hint))))
        .sent()
        .await;
    assert_eq!(logout.status(), StatusCode::OK);
    assert!(logout.text().await.unwrap().contains("You are signed out."));
    let after = code_flow(&app, &browser, (&shop.0, &shop.1), "openid", "&prompt=none").await;
    assert_eq!(after.err().as_deref(), Some("login_required"));
}

// PAIRWISE-03: a pairwise client exchanges its ID token (RFC 8693) for an API token that speaks
// for the same user under the same `sub` (the ID token's `sub` is opened back to the user).
async fn a_pairwise_id_token_is_exchanged_for_the_same_user(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let app = env.spawn().await;
    app.create_user("alice").await;
    app.create_api(API, &[("api:read", "Read")]).await;
    let secret = client_secret(
        &app.create_client(
            ClientSpec::new("svc")
                .redirect_uri(REDIRECT)
                .grant_type(GrantType::AuthorizationCode)
                .grant_type(GrantType::TokenExchange)
                .scope("openid")
                .scope("api:read")
                .token_exchange_audience(API)
                .pairwise("svc.example"),
        )
        .await,
    );
    let tokens = code_flow(&app, &browser(), ("svc", &secret), "openid api:read", "")
        .await
        .unwrap();
    let sub = sub_of(&tokens["id_token"]);
    let (status, exchanged) = post_as(
        &app,
        ("svc", &secret),
        "/token",
        &[
            ("grant_type", EXCHANGE),
            ("subject_token", tokens["id_token"].as_str().unwrap()),
            ("subject_token_type", ID_TOKEN),
            ("audience", API),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{exchanged}");
    let claims = decode_claims(exchanged["access_token"].as_str().unwrap());
    assert_eq!(claims["sub"], sub.as_str());
    assert_eq!(claims["aud"], API);
}

/// A server with registration by initial access token, outbound fetches reaching `docs`
/// (`loopback`: whether the loopback address the document server listens on is allowed), and
/// alice; with an administrator's initial access token.
async fn registration_server(
    env: &TestEnv,
    docs: &DocServer,
    loopback: bool,
    mode: &str,
) -> (TestApp, String, String) {
    let app = env
        .spawn_with(SettingsArgs {
            client_registration: Some(mode.into()),
            ..crate::outbound::outbound_args(env, docs, loopback)
        })
        .await;
    app.create_user("alice").await;
    let admin = app.admin_token().await;
    let token = app.initial_access_token(&admin, Some(20)).await;
    (app, token, admin)
}

/// `POST /register` of `body` with `token` (none: anonymous): status and JSON body.
async fn register(app: &TestApp, token: Option<&str>, body: &Value) -> (StatusCode, Value) {
    let mut request = app.client.post(app.url("/register")).json(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.sent().await;
    (response.status(), json_of(response).await)
}

/// A confidential web client's metadata, pairwise, with `changes`.
fn pairwise_client(changes: Value) -> Value {
    let mut body = json!({
        "client_name": "Pairwise RP",
        "redirect_uris": [REDIRECT],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "scope": "openid profile offline_access",
        "subject_type": "pairwise",
    });
    for (member, value) in changes.as_object().unwrap() {
        body[member] = value.clone();
    }
    body
}

/// Asserts a refusal `invalid_client_metadata` (400, JSON).
fn assert_invalid_metadata((status, body): (StatusCode, Value), what: &str) {
    assert_eq!(status, StatusCode::BAD_REQUEST, "{what}: {body}");
    assert_eq!(body["error"], "invalid_client_metadata", "{what}: {body}");
}

// PAIRWISE-04: a sector identifier document that lists every redirect URI makes the client
// pairwise in the document's host (the same `sub` as an administrator's client of that sector);
// one that misses a redirect URI, is not a JSON array of strings, or names a public client is
// refused; without a document the redirect URIs must share one host; RFC 7592 reads echo the
// document and an update cannot change the sector.
async fn registration_checks_the_sector(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let docs = DocServer::start().await;
    let (app, token, _) = registration_server(&env, &docs, true, "token").await;
    docs.serve(
        "/sector.json",
        Reply::json(&json!([REDIRECT, "https://other.example/cb"])),
    );
    let document = docs.url("/sector.json");
    let (status, registered) = register(
        &app,
        Some(&token),
        &pairwise_client(json!({"sector_identifier_uri": document})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{registered}");
    assert_eq!(registered["subject_type"], "pairwise");
    assert_eq!(registered["sector_identifier_uri"], document);
    assert_eq!(docs.requests("/sector.json"), 1);
    let id = registered["client_id"].as_str().unwrap();
    let secret = registered["client_secret"].as_str().unwrap();
    let dynamic = seen_sub(&app, (id, secret)).await;
    // The sector is the document's host: an administrator's client of that sector agrees.
    let admins = client(&app, "admins", Some("127.0.0.1")).await;
    assert_eq!(seen_sub(&app, (&admins.0, &admins.1)).await, dynamic);

    docs.serve("/bad.json", Reply::json(&json!(["https://example.com/op"])));
    docs.serve(
        "/object.json",
        Reply::json(&json!({"redirect_uris": [REDIRECT]})),
    );
    for (changes, what) in [
        (
            json!({"sector_identifier_uri": docs.url("/bad.json")}),
            "a redirect URI missing",
        ),
        (
            json!({"sector_identifier_uri": docs.url("/object.json")}),
            "not an array",
        ),
        (
            json!({"sector_identifier_uri": docs.url("/absent.json")}),
            "not found",
        ),
        (
            json!({"subject_type": "public", "sector_identifier_uri": document}),
            "public",
        ),
        (
            json!({"subject_type": "pairwise-ish"}),
            "unknown subject type",
        ),
        (
            json!({"redirect_uris": [REDIRECT, "https://elsewhere.example/cb"]}),
            "two hosts without a document",
        ),
    ] {
        assert_invalid_metadata(
            register(&app, Some(&token), &pairwise_client(changes)).await,
            what,
        );
    }
    let (status, same_host) = register(
        &app,
        Some(&token),
        &pairwise_client(json!({"redirect_uris": [REDIRECT, "http://127.0.0.1:9/other"]})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{same_host}");
    assert_eq!(same_host["subject_type"], "pairwise");

    // RFC 7592: the read echoes the document; an update to public is refused.
    let (path, read) = app.read_registration(&registered).await;
    assert_eq!(read["sector_identifier_uri"], document);
    let mut update = pairwise_client(json!({"subject_type": "public"}));
    update["client_id"] = json!(id);
    let updated = app
        .send(
            reqwest::Method::PUT,
            &path,
            read["registration_access_token"].as_str().unwrap(),
            Some(update),
        )
        .await;
    let updated = (updated.status(), json_of(updated).await);
    assert_invalid_metadata(updated, "an update changing the sector");
}

// PAIRWISE-05: nobody without a good credential makes the server fetch a sector document: a
// wrong initial access token is refused before the fetch, and open registration may not name a
// document at all; a document at a special-use address is refused with no connection made.
async fn a_sector_document_is_fetched_only_for_a_good_credential_and_safely(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let docs = DocServer::start().await;
    let (app, _token, admin) = registration_server(&env, &docs, true, "open").await;
    docs.serve("/sector.json", Reply::json(&json!([REDIRECT])));
    let body = pairwise_client(json!({
        "sector_identifier_uri": docs.url("/sector.json"),
        "token_endpoint_auth_method": "none",
    }));
    let (status, refused) = register(&app, Some("not-an-initial-access-token"), &body).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{refused}");
    assert_invalid_metadata(register(&app, None, &body).await, "open registration");
    assert_eq!(
        docs.requests("/sector.json"),
        0,
        "no fetch without a credential"
    );
    // Open registration may still be pairwise in its redirect URIs' host.
    let mut by_host = body.clone();
    by_host
        .as_object_mut()
        .unwrap()
        .remove("sector_identifier_uri");
    let (status, registered) = register(&app, None, &by_host).await;
    assert_eq!(status, StatusCode::CREATED, "{registered}");
    assert_eq!(registered["subject_type"], "pairwise");
    // Loopback redirect URIs name no party: each such client is its own sector, not one
    // sector shared by every native app.
    let (status, second) = register(&app, None, &by_host).await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
    let listed = json_of(
        app.send(reqwest::Method::GET, "/admin/clients", &admin, None)
            .await,
    )
    .await;
    let sector_of = |client: &Value| {
        let id = client["client_id"].as_str().unwrap();
        let listed = listed["clients"].as_array().expect("a list");
        listed.iter().find(|c| c["client_id"] == id).unwrap()["sector_identifier"].clone()
    };
    let (first, second) = (sector_of(&registered), sector_of(&second));
    assert!(
        first.as_str().is_some_and(|s| s.starts_with("client:")),
        "{first}"
    );
    assert_ne!(first, second);

    let env = TestEnv::new(backend).await;
    let guarded = DocServer::start().await;
    let (app, token, _) = registration_server(&env, &guarded, false, "token").await;
    guarded.serve("/sector.json", Reply::json(&json!([REDIRECT])));
    let body = pairwise_client(json!({"sector_identifier_uri": guarded.url("/sector.json")}));
    assert_invalid_metadata(register(&app, Some(&token), &body).await, "loopback");
    assert_eq!(
        guarded.accepts(),
        0,
        "no connection to a special-use address"
    );
}

on_both_backends!(
    pairwise_clients_see_one_identifier_per_sector,
    a_claims_sub_names_the_user_as_the_client_knows_them,
    a_pairwise_id_token_is_exchanged_for_the_same_user,
    registration_checks_the_sector,
    a_sector_document_is_fetched_only_for_a_good_credential_and_safely,
);
