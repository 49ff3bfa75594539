//! APIs (resource servers) and their scopes (issue 15 item 1): RFC 8707 `resource` at the
//! authorization and token endpoints for every grant, a resource server authorizing by an API
//! scope with `portcullis::verify`, the consent page, the admin API and the CLI, bad input.

use portcullis::oidc::clients::GrantType;
use portcullis::verify::{Verifier, VerifierConfig};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{
    Backend, ClientSpec, REDIRECT, Sent, TestApp, TestEnv, answer_consent, browser, client_secret,
    decode_claims, enc, json_of, location_params, param, pkce, sign_in, stdout_json,
};
use crate::on_both_backends;

const ORDERS: &str = "https://orders.example.com";
const BILLING: &str = "https://billing.example.com/api";

/// The example resource server's API-scope route, in-process: `GET /orders` needs a token for
/// `audience` (verified offline against `issuer`'s JWKS) granting `orders:read`.
async fn orders_server(issuer: &str, audience: &str) -> (String, actix_web::dev::ServerHandle) {
    use actix_web::{App, HttpResponse, HttpServer, web};
    use portcullis::verify::actix::{Authenticated, BearerError};
    let mut config = VerifierConfig::for_issuer(issuer);
    config.audiences = vec![audience.to_owned()];
    let verifier = web::Data::new(Verifier::new(config).unwrap());
    let server = HttpServer::new(move || {
        App::new().app_data(verifier.clone()).route(
            "/orders",
            web::get().to(|auth: Authenticated| async move {
                auth.require_scope("orders:read")?;
                Ok::<_, BearerError>(HttpResponse::Ok().json(json!({ "sub": auth.subject })))
            }),
        )
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .unwrap();
    let address = format!("http://{}", server.addrs()[0]);
    let server = server.run();
    let handle = server.handle();
    tokio::spawn(server);
    (address, handle)
}

/// `GET /orders` at the resource server with `token`: the status.
async fn orders_status(rs: &str, token: &str) -> StatusCode {
    reqwest::Client::new()
        .get(format!("{rs}/orders"))
        .bearer_auth(token)
        .sent()
        .await
        .status()
}

/// POSTs `form` to the token endpoint as `client_id` (HTTP Basic): status and JSON body.
async fn token(
    app: &TestApp,
    client_id: &str,
    secret: &str,
    form: &[(&str, &str)],
) -> (StatusCode, Value) {
    let response = app
        .client
        .post(app.url("/token"))
        .basic_auth(client_id, Some(secret))
        .form(form)
        .sent()
        .await;
    let status = response.status();
    (status, json_of(response).await)
}

/// A server with the orders and billing APIs.
async fn with_apis(env: &TestEnv) -> TestApp {
    let app = env.spawn().await;
    app.create_api(
        ORDERS,
        &[
            ("orders:read", "Read your orders"),
            ("orders:write", "Place orders for you"),
        ],
    )
    .await;
    app.create_api(BILLING, &[("billing:read", "Read your invoices")])
        .await;
    app
}

// A resource server authorizing by an API scope accepts a token from each grant (code, refresh,
// client_credentials); each token is for one API with only that API's scopes (RFC 8707 §2,
// §2.2); a refused resource costs neither the code nor the refresh token.
async fn resource_server_authorizes_by_api_scope_for_every_grant(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let app = with_apis(&env).await;
    let (rs, _handle) = orders_server(&app.issuer, ORDERS).await;
    app.create_user("alice").await;
    let mut spec = ClientSpec::webapp();
    for scope in ["openid", "offline_access", "orders:read", "billing:read"] {
        spec = spec.scope(scope);
    }
    for grant in [
        GrantType::AuthorizationCode,
        GrantType::RefreshToken,
        GrantType::ClientCredentials,
    ] {
        spec = spec.grant_type(grant);
    }
    let secret = client_secret(&app.create_client(spec).await);
    let call = |form: Vec<(&'static str, String)>| {
        let secret = secret.clone();
        let app = &app;
        async move {
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            token(app, "webapp", &secret, &form).await
        }
    };

    // client_credentials: the resource names the API; without scope, what the client may have.
    let (status, cc) = call(vec![
        ("grant_type", "client_credentials".into()),
        ("resource", ORDERS.into()),
    ])
    .await;
    assert_eq!(status, StatusCode::OK, "{cc}");
    assert_eq!(cc["scope"], "orders:read");
    let claims = decode_claims(cc["access_token"].as_str().unwrap());
    assert_eq!(claims["aud"], ORDERS);
    assert_eq!(claims["scope"], "orders:read");
    assert_eq!(
        orders_status(&rs, cc["access_token"].as_str().unwrap()).await,
        StatusCode::OK
    );
    // The scope alone names the API.
    let (_, inferred) = call(vec![
        ("grant_type", "client_credentials".into()),
        ("scope", "orders:read".into()),
    ])
    .await;
    assert_eq!(
        decode_claims(inferred["access_token"].as_str().unwrap())["aud"],
        ORDERS
    );
    // Another API's token is refused by this resource server (audience), and a scope of
    // another API does not make a resource of it.
    let (_, billing) = call(vec![
        ("grant_type", "client_credentials".into()),
        ("resource", BILLING.into()),
    ])
    .await;
    assert_eq!(billing["scope"], "billing:read");
    assert_eq!(
        orders_status(&rs, billing["access_token"].as_str().unwrap()).await,
        StatusCode::UNAUTHORIZED
    );
    for form in [
        vec![("scope", "billing:read"), ("resource", ORDERS)],
        vec![("resource", "https://evil.example.com")],
        vec![("resource", "not a uri")],
    ] {
        let mut request = vec![("grant_type", "client_credentials".to_owned())];
        request.extend(form.iter().map(|(k, v)| (*k, (*v).to_owned())));
        let (status, body) = call(request).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{form:?}");
        assert_eq!(body["error"], "invalid_target", "{form:?}");
    }
    // Two resources: one audience per token.
    let two = app
        .client
        .post(app.url("/token"))
        .basic_auth("webapp", Some(&secret))
        .body(format!(
            "grant_type=client_credentials&resource={}&resource={}",
            enc(ORDERS),
            enc(BILLING)
        ))
        .header("content-type", "application/x-www-form-urlencoded")
        .json_value()
        .await;
    assert_eq!(two["error"], "invalid_target");

    // authorization_code: a grant of two APIs; the token request names one.
    let verifier = "v".repeat(43);
    let url = app.url(&format!(
        "/authorize?response_type=code&client_id=webapp&redirect_uri={}&scope={}&code_challenge={}&code_challenge_method=S256",
        enc(REDIRECT),
        enc("openid offline_access orders:read billing:read"),
        pkce(&verifier)
    ));
    let redirect = sign_in(&browser(), &app.address, &url, "alice").await;
    assert_eq!(redirect.status(), StatusCode::SEE_OTHER);
    let code = param(&location_params(&redirect).1, "code").expect("code");
    let redeem = |resource: Option<&'static str>| {
        let mut form = vec![
            ("grant_type", "authorization_code".to_owned()),
            ("code", code.clone()),
            ("redirect_uri", REDIRECT.to_owned()),
            ("code_verifier", verifier.clone()),
        ];
        if let Some(resource) = resource {
            form.push(("resource", resource.to_owned()));
        }
        call(form)
    };
    let (status, ambiguous) = redeem(None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(ambiguous["error"], "invalid_target", "{ambiguous}");
    let (_, foreign) = redeem(Some("https://evil.example.com")).await;
    assert_eq!(foreign["error"], "invalid_target");
    let (status, issued) = redeem(Some(ORDERS)).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the refused resources left the code unspent: {issued}"
    );
    assert_eq!(issued["scope"], "openid offline_access orders:read");
    let access = issued["access_token"].as_str().unwrap();
    let claims = decode_claims(access);
    assert_eq!(claims["aud"], ORDERS);
    assert_eq!(claims["scope"], "openid offline_access orders:read");
    assert_eq!(orders_status(&rs, access).await, StatusCode::OK);
    // The OpenID scopes stay in the API's token: userinfo answers it.
    assert_eq!(
        app.get_bearer("/userinfo", access).await.status(),
        StatusCode::OK
    );
    assert!(issued["id_token"].is_string());

    // refresh_token: any API of the grant, down-scoped; the refresh token keeps the whole grant.
    let mut refresh_token = issued["refresh_token"].as_str().unwrap().to_owned();
    let refresh = |refresh_token: String, extra: Vec<(&'static str, &'static str)>| {
        let mut form = vec![
            ("grant_type", "refresh_token".to_owned()),
            ("refresh_token", refresh_token),
        ];
        form.extend(extra.into_iter().map(|(k, v)| (k, v.to_owned())));
        call(form)
    };
    for refused in [
        vec![("resource", "https://evil.example.com")],
        vec![("resource", ORDERS), ("resource", BILLING)],
        vec![],
    ] {
        let (status, body) = refresh(refresh_token.clone(), refused.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{refused:?}");
        assert_eq!(body["error"], "invalid_target", "{refused:?}: {body}");
    }
    let (_, wider) = refresh(
        refresh_token.clone(),
        vec![("resource", ORDERS), ("scope", "orders:read orders:write")],
    )
    .await;
    assert_eq!(wider["error"], "invalid_scope");
    let (status, to_billing) = refresh(refresh_token.clone(), vec![("resource", BILLING)]).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "still usable after the refusals: {to_billing}"
    );
    assert_eq!(to_billing["scope"], "openid offline_access billing:read");
    let billing_token = to_billing["access_token"].as_str().unwrap();
    assert_eq!(decode_claims(billing_token)["aud"], BILLING);
    assert_eq!(
        orders_status(&rs, billing_token).await,
        StatusCode::UNAUTHORIZED
    );
    refresh_token = to_billing["refresh_token"].as_str().unwrap().to_owned();
    let (status, back) = refresh(
        refresh_token.clone(),
        vec![("resource", ORDERS), ("scope", "openid orders:read")],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{back}");
    assert_eq!(back["scope"], "openid orders:read");
    assert_eq!(
        orders_status(&rs, back["access_token"].as_str().unwrap()).await,
        StatusCode::OK
    );
    // The narrowed refresh still holds the whole grant.
    let (status, again) = refresh(
        back["refresh_token"].as_str().unwrap().to_owned(),
        vec![("resource", BILLING)],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["scope"], "openid offline_access billing:read");
    app.stop().await;
}

// The authorization request's resource (RFC 8707 §2): an API whose scopes are asked, alone;
// errors go back to the client; the consent page shows the API scopes' descriptions; a grant of
// one API needs no resource at the token endpoint. Clients without API scopes keep their
// audience.
async fn authorization_resource_and_consent_page(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let app = with_apis(&env).await;
    app.create_user("alice").await;
    let mut spec = ClientSpec::new("shop")
        .redirect_uri(REDIRECT)
        .audience("https://legacy.example.com");
    for scope in ["openid", "orders:read", "orders:write", "billing:read"] {
        spec = spec.scope(scope);
    }
    let secret = client_secret(&app.create_client(spec).await);
    let verifier = "w".repeat(43);
    let url = |scope: &str, resources: &[&str]| {
        let mut url = app.url(&format!(
            "/authorize?response_type=code&client_id=shop&redirect_uri={}&scope={}&state=s&code_challenge={}&code_challenge_method=S256",
            enc(REDIRECT),
            enc(scope),
            pkce(&verifier)
        ));
        for resource in resources {
            url.push_str(&format!("&resource={}", enc(resource)));
        }
        url
    };
    let browser = browser();
    for (scope, resources, error) in [
        (
            "openid orders:read billing:read",
            vec![ORDERS],
            "invalid_scope",
        ),
        ("openid", vec![ORDERS], "invalid_target"),
        (
            "openid orders:read",
            vec!["https://evil.example.com"],
            "invalid_target",
        ),
        (
            "openid orders:read",
            vec![ORDERS, BILLING],
            "invalid_target",
        ),
        ("openid orders:delete", vec![], "invalid_scope"),
    ] {
        let response = browser.get(url(scope, &resources)).sent().await;
        assert_eq!(
            response.status(),
            StatusCode::SEE_OTHER,
            "{scope} {resources:?}"
        );
        let (target, params) = location_params(&response);
        assert!(target.starts_with(REDIRECT), "{target}");
        assert_eq!(
            param(&params, "error").as_deref(),
            Some(error),
            "{scope} {resources:?}"
        );
        assert_eq!(param(&params, "state").as_deref(), Some("s"));
    }
    // A client's own audience may be named (no API scopes with it).
    let own = browser
        .get(url("openid", &["https://legacy.example.com"]))
        .sent()
        .await;
    assert_eq!(own.status(), StatusCode::OK, "login page");

    let consent = sign_in(
        &browser,
        &app.address,
        &url("openid orders:read orders:write", &[ORDERS]),
        "alice",
    )
    .await;
    assert_eq!(consent.status(), StatusCode::OK);
    let html = consent.text().await.unwrap();
    assert!(html.contains("Read your orders"), "{html}");
    assert!(html.contains("Place orders for you"), "{html}");
    assert!(html.contains("orders:read"), "{html}");
    assert!(
        html.contains(&format!("API {ORDERS}")),
        "the API's name: {html}"
    );
    let approved = answer_consent(&browser, app.url("/authorize/consent"), &html, "approve").await;
    assert_eq!(approved.status(), StatusCode::SEE_OTHER);
    let code = param(&location_params(&approved).1, "code").expect("code");
    let (status, issued) = token(
        &app,
        "shop",
        &secret,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{issued}");
    let claims = decode_claims(issued["access_token"].as_str().unwrap());
    assert_eq!(claims["aud"], ORDERS, "one API in the grant: its audience");
    assert_eq!(claims["scope"], "openid orders:read orders:write");

    // Without API scopes: the client's default audience, as before APIs existed.
    // Signed in, and `openid` approved already (remembered consent): a code at once.
    let plain = browser.get(url("openid", &[])).sent().await;
    assert_eq!(plain.status(), StatusCode::SEE_OTHER);
    let code = param(&location_params(&plain).1, "code").expect("code");
    let (_, issued) = token(
        &app,
        "shop",
        &secret,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    let claims = decode_claims(issued["access_token"].as_str().unwrap());
    assert_eq!(claims["aud"], "https://legacy.example.com");
    assert_eq!(claims["scope"], "openid");

    // Discovery advertises the OpenID scopes only.
    let discovery = app
        .client
        .get(app.url("/.well-known/openid-configuration"))
        .json_value()
        .await;
    let advertised = discovery["scopes_supported"].as_array().unwrap();
    assert!(
        advertised
            .iter()
            .all(|s| !s.as_str().unwrap().contains(':')),
        "{advertised:?}"
    );
    app.stop().await;
}

// The admin API: create, list, get, patch, delete, audited; bad input gets the JSON error shape
// and writes nothing; an API in use (a client allowed its scopes) is neither deleted nor loses
// those scopes; a new API and client are usable at once.
async fn admin_manages_apis(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let app = env.spawn().await;
    let admin = app.admin_token().await;
    let send = |method: Method, path: &str, body: Option<Value>| {
        let (app, admin, path) = (&app, admin.clone(), path.to_owned());
        async move {
            let response = app.send(method, &path, &admin, body).await;
            let status = response.status();
            let text = response.text().await.unwrap();
            (
                status,
                serde_json::from_str::<Value>(&text).unwrap_or(Value::Null),
            )
        }
    };
    let orders = json!({
        "identifier": ORDERS,
        "name": "Orders",
        "scopes": [
            { "name": "orders:read", "description": "Read your orders" },
            { "name": "orders:write", "description": "Place orders for you" },
        ],
    });
    let (status, created) = send(Method::POST, "/admin/apis", Some(orders.clone())).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["identifier"], ORDERS);
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(uuid::Uuid::parse_str(&id).unwrap().get_version_num(), 4);
    assert_eq!(created["scopes"].as_array().unwrap().len(), 2);

    // Bad input: 400 invalid_request or 409, and nothing written.
    let bad = |identifier: &str, scopes: Value| json!({ "identifier": identifier, "name": "X", "scopes": scopes });
    let one = |name: &str| json!([{ "name": name, "description": "d" }]);
    for (body, status, error) in [
        (bad("orders", one("x:read")), 400, "invalid_request"),
        (
            bad("https://x.example/#frag", one("x:read")),
            400,
            "invalid_request",
        ),
        (bad(&app.issuer, one("x:read")), 400, "invalid_request"),
        (
            bad("https://x.example", one("two words")),
            400,
            "invalid_request",
        ),
        (
            bad("https://x.example", one("openid")),
            400,
            "invalid_request",
        ),
        (bad("https://x.example", one("")), 400, "invalid_request"),
        (
            bad(
                "https://x.example",
                json!([{ "name": "x", "description": "" }]),
            ),
            400,
            "invalid_request",
        ),
        (
            bad(
                "https://x.example",
                json!([{ "name": "x:read", "description": "a" }, { "name": "x:read", "description": "b" }]),
            ),
            400,
            "invalid_request",
        ),
        (
            bad("https://x.example", json!([{ "name": "x:read" }])),
            400,
            "invalid_request",
        ),
        (
            json!({ "identifier": "https://x.example", "name": "X", "extra": 1 }),
            400,
            "invalid_request",
        ),
        (orders.clone(), 409, "api_exists"),
        (
            bad(
                "https://x.example",
                json!([{ "name": "x:read", "description": "a" }, { "name": "orders:read", "description": "b" }]),
            ),
            409,
            "scope_exists",
        ),
    ] {
        let (got, answer) = send(Method::POST, "/admin/apis", Some(body.clone())).await;
        assert_eq!(got.as_u16(), status, "{body}: {answer}");
        assert_eq!(answer["error"], error, "{body}: {answer}");
        assert!(answer["error_description"].is_string(), "{answer}");
    }
    assert_eq!(env.count_rows("apis").await, 1, "nothing half-written");
    assert_eq!(
        env.count_rows("api_scopes").await,
        2,
        "nothing half-written"
    );

    // A client allowed an API scope through the admin API; its token at once.
    let (status, client) = send(
        Method::POST,
        "/admin/clients",
        Some(json!({ "client_id": "svc", "scopes": ["orders:read"] })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{client}");
    let secret = client["client_secret"].as_str().unwrap().to_owned();
    let (status, issued) = token(
        &app,
        "svc",
        &secret,
        &[("grant_type", "client_credentials"), ("resource", ORDERS)],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{issued}");
    assert_eq!(
        decode_claims(issued["access_token"].as_str().unwrap())["aud"],
        ORDERS
    );
    let (status, unknown) = send(
        Method::POST,
        "/admin/clients",
        Some(json!({ "client_id": "svc2", "scopes": ["orders:delete"] })),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let why = unknown["error_description"].as_str().unwrap();
    assert!(
        why.contains("orders:delete")
            && why.contains("OpenID scopes")
            && why.contains("orders:read"),
        "{why}"
    );

    // Read, rename, replace scopes; removing a scope in use is refused.
    let (_, listed) = send(Method::GET, "/admin/apis", None).await;
    assert_eq!(listed["apis"][0]["id"], id.as_str());
    let (status, fetched) = send(Method::GET, &format!("/admin/apis/{id}"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(fetched["name"], "Orders");
    let (status, renamed) = send(
        Method::PATCH,
        &format!("/admin/apis/{id}"),
        Some(json!({ "name": "Orders v2", "scopes": [
            { "name": "orders:read", "description": "See your orders" },
            { "name": "orders:cancel", "description": "Cancel orders" },
        ] })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{renamed}");
    assert_eq!(renamed["name"], "Orders v2");
    let names: Vec<&str> = renamed["scopes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["orders:cancel", "orders:read"]);
    let (status, in_use) = send(
        Method::PATCH,
        &format!("/admin/apis/{id}"),
        Some(json!({ "scopes": [] })),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(in_use["error"], "api_in_use");
    assert_eq!(in_use["clients"], json!(["svc"]));
    let (status, in_use) = send(Method::DELETE, &format!("/admin/apis/{id}"), None).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(in_use["error"], "api_in_use");
    assert_eq!(env.count_rows("api_scopes").await, 2, "nothing changed");

    // Once no client uses it, it goes (by its identifier too); then 404.
    assert_eq!(
        app.delete_bearer("/admin/clients/svc", &admin)
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    let (status, _) = send(Method::DELETE, &format!("/admin/apis/{id}"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(env.count_rows("api_scopes").await, 0);
    let (status, gone) = send(Method::GET, &format!("/admin/apis/{id}"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(gone["error"], "not_found");
    let (status, _) = send(
        Method::PATCH,
        &format!("/admin/apis/{id}"),
        Some(json!({ "name": "n" })),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Audited like the client changes.
    let (_, audit) = send(Method::GET, "/admin/audit", None).await;
    let actions: Vec<&str> = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    for action in ["api_created", "api_changed", "api_deleted"] {
        assert!(actions.contains(&action), "{action} in {actions:?}");
    }
    // Unauthenticated: refused like every admin route.
    let anonymous = app.client.get(app.url("/admin/apis")).sent().await;
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    app.stop().await;
}

// The CLI: `apis create/list/update/delete`, `clients create --scope` of an API scope, and the
// refusals (unknown scope naming where scopes come from, an API in use).
async fn cli_manages_apis_and_client_scopes(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let unknown = env
        .cli(&[
            "clients",
            "create",
            "--client-id",
            "svc",
            "--scope",
            "orders:read",
        ])
        .await;
    assert!(!unknown.status.success());
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert!(
        stderr.contains("unknown scope `orders:read`") && stderr.contains("portcullis apis create"),
        "{stderr}"
    );
    let created = stdout_json(
        &env.cli(&[
            "apis",
            "create",
            "--identifier",
            ORDERS,
            "--name",
            "Orders",
            "--scope",
            "orders:read=Read your orders",
        ])
        .await,
    );
    assert_eq!(created["scopes"][0]["description"], "Read your orders");
    let client = stdout_json(
        &env.cli(&[
            "clients",
            "create",
            "--client-id",
            "svc",
            "--scope",
            "orders:read",
        ])
        .await,
    );
    assert_eq!(client["scopes"], json!(["orders:read"]));
    let updated = stdout_json(
        &env.cli(&[
            "apis",
            "update",
            ORDERS,
            "--name",
            "Orders v2",
            "--scope",
            "orders:write=Place orders",
        ])
        .await,
    );
    assert_eq!(updated["name"], "Orders v2");
    assert_eq!(updated["scopes"].as_array().unwrap().len(), 2);
    for refused in [
        vec!["apis", "update", ORDERS, "--remove-scope", "orders:read"],
        vec!["apis", "delete", ORDERS],
        vec!["apis", "create", "--identifier", "no-uri", "--name", "X"],
        vec![
            "apis",
            "create",
            "--identifier",
            "https://x.example",
            "--name",
            "X",
            "--scope",
            "bad",
        ],
    ] {
        let output = env.cli(&refused).await;
        assert!(!output.status.success(), "{refused:?}");
    }
    let listed = stdout_json(&env.cli(&["apis", "list"]).await);
    assert_eq!(listed.as_array().unwrap().len(), 1);
    let removed = stdout_json(
        &env.cli(&["apis", "update", ORDERS, "--remove-scope", "orders:write"])
            .await,
    );
    assert_eq!(removed["scopes"].as_array().unwrap().len(), 1);
    stdout_json(&env.cli(&["clients", "delete", "svc"]).await);
    let deleted = stdout_json(&env.cli(&["apis", "delete", ORDERS]).await);
    assert_eq!(deleted["deleted"], ORDERS);
    assert_eq!(env.count_rows("apis").await, 0);
}

/// An MCP-style resource server at `{listener}/mcp` with RFC 9728 metadata (scope `tools:call`),
/// verifying tokens for that URL offline against `issuer`'s JWKS.
async fn mcp_server(issuer: &str) -> (String, actix_web::dev::ServerHandle) {
    use actix_web::{App, HttpResponse, HttpServer, middleware, web};
    use portcullis::verify::ProtectedResourceMetadata;
    use portcullis::verify::actix::{
        Authenticated, BearerError, ProtectedResource, resource_metadata_challenge,
    };
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let resource = format!("http://{}/mcp", listener.local_addr().unwrap());
    let mut config = VerifierConfig::for_issuer(issuer);
    config.audiences = vec![resource.clone()];
    let verifier = web::Data::new(Verifier::new(config).unwrap());
    let mut metadata = ProtectedResourceMetadata::new(&resource, issuer);
    metadata.scopes_supported = vec!["tools:call".into()];
    metadata.resource_name = Some("Tools".into());
    let metadata = ProtectedResource::new(&metadata).unwrap();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(verifier.clone())
            .configure(metadata.configure())
            .wrap(middleware::from_fn(resource_metadata_challenge))
            .route(
                "/mcp",
                web::post().to(|auth: Authenticated| async move {
                    auth.require_scope("tools:call")?;
                    Ok::<_, BearerError>(HttpResponse::Ok().json(json!({ "sub": auth.subject })))
                }),
            )
    })
    .workers(1)
    .listen(listener)
    .unwrap();
    let server = server.run();
    let handle = server.handle();
    tokio::spawn(server);
    (resource, handle)
}

/// The `resource_metadata` URL of a `WWW-Authenticate` value (RFC 9728 §5.1).
fn resource_metadata_of(challenge: &str) -> String {
    let start = challenge
        .find("resource_metadata=\"")
        .unwrap_or_else(|| panic!("no resource_metadata in {challenge}"))
        + "resource_metadata=\"".len();
    let rest = &challenge[start..];
    rest[..rest.find('"').unwrap()].to_owned()
}

// RFC 9728 (issue 18 item 6): a client that knows only the resource's URL finds its metadata
// from the 401 challenge, checks that `resource` is that URL (§3.3), finds the authorization
// server's token endpoint from its RFC 8414 metadata, gets a token for the resource (RFC 8707)
// and calls it; refused tokens (another audience, a missing scope) point at the metadata too.
async fn resource_metadata_leads_a_client_from_the_url_to_a_token(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let app = env.spawn().await;
    let (mcp, _handle) = mcp_server(&app.issuer).await;
    app.create_api(
        &mcp,
        &[("tools:call", "Call tools"), ("tools:list", "List tools")],
    )
    .await;
    app.create_api(ORDERS, &[("orders:read", "Read your orders")])
        .await;
    let spec = ClientSpec::new("agent")
        .scope("tools:call")
        .scope("tools:list")
        .scope("orders:read")
        .grant_type(GrantType::ClientCredentials);
    let secret = client_secret(&app.create_client(spec).await);
    let http = reqwest::Client::new();

    // 1. Unauthenticated: 401 naming the metadata, and nothing else said (RFC 6750 §3.1).
    let refused = http.post(&mcp).sent().await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let challenge = refused.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    let origin = mcp.trim_end_matches("/mcp");
    let metadata_url = format!("{origin}/.well-known/oauth-protected-resource/mcp");
    assert_eq!(
        challenge,
        format!("Bearer resource_metadata=\"{metadata_url}\"")
    );

    // 2. The metadata, public and cacheable, names this resource and the issuer.
    let response = http.get(resource_metadata_of(&challenge)).sent().await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["access-control-allow-origin"], "*");
    assert_eq!(response.headers()["content-type"], "application/json");
    let metadata = json_of(response).await;
    assert_eq!(
        metadata,
        json!({
            "resource": mcp,
            "authorization_servers": [app.issuer],
            "scopes_supported": ["tools:call"],
            "bearer_methods_supported": ["header"],
            "resource_name": "Tools",
        })
    );
    let preflight = http
        .request(Method::OPTIONS, &metadata_url)
        .header("origin", "https://inspector.example")
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "mcp-protocol-version")
        .sent()
        .await;
    assert_eq!(preflight.status(), StatusCode::NO_CONTENT);
    assert_eq!(preflight.headers()["access-control-allow-origin"], "*");

    // 3. The authorization server's metadata (RFC 8414 §3) gives the token endpoint.
    let issuer = metadata["authorization_servers"][0].as_str().unwrap();
    let server_metadata = json_of(
        http.get(format!("{issuer}/.well-known/oauth-authorization-server"))
            .sent()
            .await,
    )
    .await;
    let token_endpoint = server_metadata["token_endpoint"].as_str().unwrap();
    let token_for = |resource: &str, scope: &str| {
        let form = [
            ("grant_type", "client_credentials".to_owned()),
            ("resource", resource.to_owned()),
            ("scope", scope.to_owned()),
        ];
        let request = http
            .post(token_endpoint)
            .basic_auth("agent", Some(&secret))
            .form(&form);
        async move {
            let body = json_of(request.sent().await).await;
            body["access_token"]
                .as_str()
                .unwrap_or_else(|| panic!("no token: {body}"))
                .to_owned()
        }
    };

    // 4. A token for the resource with its scope is accepted.
    let token = token_for(&mcp, "tools:call").await;
    assert_eq!(decode_claims(&token)["aud"], mcp.as_str());
    let ok = http.post(&mcp).bearer_auth(&token).sent().await;
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(json_of(ok).await["sub"], "agent");

    // 5. Another API's token: 401 invalid_token; this resource's token without the scope: 403
    // insufficient_scope. Both challenges keep their error and name the metadata.
    for (token, status, error) in [
        (
            token_for(ORDERS, "orders:read").await,
            StatusCode::UNAUTHORIZED,
            "invalid_token",
        ),
        (
            token_for(&mcp, "tools:list").await,
            StatusCode::FORBIDDEN,
            "insufficient_scope",
        ),
    ] {
        let response = http.post(&mcp).bearer_auth(&token).sent().await;
        assert_eq!(response.status(), status);
        let challenge = response.headers()["www-authenticate"].to_str().unwrap();
        assert!(
            challenge.starts_with(&format!("Bearer error=\"{error}\", ")),
            "{challenge}"
        );
        assert_eq!(resource_metadata_of(challenge), metadata_url, "{challenge}");
    }
}

on_both_backends!(
    resource_server_authorizes_by_api_scope_for_every_grant,
    resource_metadata_leads_a_client_from_the_url_to_a_token,
    authorization_resource_and_consent_page,
    admin_manages_apis,
    cli_manages_apis_and_client_scopes,
);
