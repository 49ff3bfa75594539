//! Token exchange (RFC 8693; issue 18 item 5): a service exchanges a user's token for a token for
//! another API that speaks for the same user, names the service in `act` (nested along a chain),
//! and grants no more than the subject; what a client may exchange for is configured per client;
//! unacceptable subject and actor tokens, widening and unconfigured targets are refused with the
//! RFC 8693 §2.2.2 errors. Security cases TEX-01 to TEX-08.

use std::time::Duration;

use portcullis::accounts::factors::SecondFactorPolicy;
use portcullis::oidc::clients::GrantType;
use portcullis::verify::{AccessClaims, Verifier, VerifierConfig};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{
    Backend, ClientSpec, REDIRECT, Sent, TestApp, TestEnv, browser, client_secret, code_of,
    decode_claims, enc, json_of, pkce, sign_in, stdout_json,
};
use crate::on_both_backends;

const ORDERS: &str = "https://orders.example.com";
const BILLING: &str = "https://billing.example.com/api";
const INVENTORY: &str = "https://inventory.example.com";
const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS: &str = "urn:ietf:params:oauth:token-type:access_token";
const ID: &str = "urn:ietf:params:oauth:token-type:id_token";
const NOT_OURS: &str = "The subject token is not a valid access token of this server.";

/// A server with three APIs, the user `alice`, and the clients: `webapp` (the first-party web
/// app users sign in to), `orders-svc` (the orders API's back end: it serves the orders API and
/// may exchange for billing, orders and inventory) and `billing-svc` (the billing API's back
/// end: it serves billing and may exchange for billing only).
struct World {
    env: TestEnv,
    app: TestApp,
    webapp: String,
    orders: String,
    billing: String,
    alice: String,
}

impl World {
    async fn new(backend: Backend) -> Self {
        let env = TestEnv::new(backend).await;
        let app = env.spawn().await;
        app.create_api(
            ORDERS,
            &[
                ("orders:read", "Read orders"),
                ("orders:write", "Place orders"),
            ],
        )
        .await;
        app.create_api(BILLING, &[("billing:read", "Read invoices")])
            .await;
        app.create_api(INVENTORY, &[("inventory:read", "Read stock")])
            .await;
        let alice = app.create_user("alice").await;
        let mut webapp = ClientSpec::webapp()
            .grant_type(GrantType::AuthorizationCode)
            .grant_type(GrantType::RefreshToken);
        for scope in [
            "openid",
            "offline_access",
            "orders:read",
            "orders:write",
            "billing:read",
        ] {
            webapp = webapp.scope(scope);
        }
        let webapp = client_secret(&app.create_client(webapp).await);
        let mut orders = ClientSpec::new("orders-svc")
            .grant_type(GrantType::TokenExchange)
            .grant_type(GrantType::ClientCredentials)
            .introspection_audience(ORDERS)
            .token_exchange_audience(BILLING)
            .token_exchange_audience(ORDERS)
            .token_exchange_audience(INVENTORY);
        for scope in [
            "openid",
            "orders:read",
            "orders:write",
            "billing:read",
            "inventory:read",
        ] {
            orders = orders.scope(scope);
        }
        let orders = client_secret(&app.create_client(orders).await);
        let billing = client_secret(
            &app.create_client(
                ClientSpec::new("billing-svc")
                    .grant_type(GrantType::TokenExchange)
                    .scope("openid")
                    .scope("billing:read")
                    .introspection_audience(BILLING)
                    .token_exchange_audience(BILLING),
            )
            .await,
        );
        Self {
            env,
            app,
            webapp,
            orders,
            billing,
            alice,
        }
    }

    /// POSTs `form` to the token endpoint as `client_id` (HTTP Basic): status and JSON body.
    async fn token(
        &self,
        client_id: &str,
        secret: &str,
        form: &[(&str, &str)],
    ) -> (StatusCode, Value) {
        post_token(&self.app, client_id, secret, form).await
    }

    /// `orders-svc` exchanges `subject` (an access token) with the `extra` parameters.
    async fn as_orders(&self, subject: &str, extra: &[(&str, &str)]) -> (StatusCode, Value) {
        let mut form = vec![
            ("grant_type", EXCHANGE),
            ("subject_token", subject),
            ("subject_token_type", ACCESS),
        ];
        form.extend_from_slice(extra);
        self.token("orders-svc", &self.orders, &form).await
    }

    /// `username` signs in to `webapp` for `scope`; the code is redeemed for `resource`: the
    /// token response.
    async fn webapp_tokens(&self, username: &str, scope: &str, resource: &str) -> Value {
        user_tokens(
            &self.app,
            ("webapp", &self.webapp),
            username,
            scope,
            Some(resource),
        )
        .await
    }
}

/// POSTs `form` to `app`'s token endpoint as `client_id` (HTTP Basic): status and JSON body.
async fn post_token(
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

/// `username` signs in on the hosted page to the first-party `client` (id, secret) for `scope`;
/// the code is redeemed (for `resource`, if any): the token response.
async fn user_tokens(
    app: &TestApp,
    (client_id, secret): (&str, &str),
    username: &str,
    scope: &str,
    resource: Option<&str>,
) -> Value {
    let verifier = "x".repeat(43);
    let url = app.url(&format!(
        "/authorize?response_type=code&client_id={client_id}&redirect_uri={}&scope={}&code_challenge={}&code_challenge_method=S256&nonce=n",
        enc(REDIRECT),
        enc(scope),
        pkce(&verifier)
    ));
    let code = code_of(&sign_in(&browser(), &app.address, &url, username).await);
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", verifier.as_str()),
    ];
    form.extend(resource.map(|r| ("resource", r)));
    let (status, body) = post_token(app, client_id, secret, &form).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

fn access_of(body: &Value) -> &str {
    body["access_token"].as_str().expect("access_token")
}

/// Asserts an RFC 6749 §5.2 error `error` (400 or 401 for `invalid_client`).
fn assert_error(outcome: &(StatusCode, Value), error: &str, what: &str) {
    let (status, body) = outcome;
    assert_eq!(*status, StatusCode::BAD_REQUEST, "{what}: {body}");
    assert_eq!(body["error"], error, "{what}: {body}");
    assert!(body.get("access_token").is_none(), "{what}: {body}");
}

/// The verifier a resource server for `audience` runs: `portcullis::verify`, offline against the
/// server's published keys.
fn resource_server(app: &TestApp, audience: &str) -> Verifier {
    let mut config = VerifierConfig::for_issuer(&app.issuer);
    config.audiences = vec![audience.to_owned()];
    Verifier::new(config).unwrap()
}

// TEX-01, TEX-02: a service exchanges the user's token for a token for another API of the user's
// grant: same `sub`, its own `client_id`, `act` naming it (nested when the subject was itself
// exchanged, RFC 8693 §4.1), a scope within the grant, the client and the API, no longer-lived
// than the subject. The resource server's verifier reads `act`; introspection shows it; an
// actor token names a user acting through the service; discovery advertises the grant.
async fn exchanged_token_narrows_and_carries_act(backend: Backend) {
    let w = World::new(backend).await;
    let metadata = json_of(w.app.get("/.well-known/openid-configuration").await).await;
    assert!(
        metadata["grant_types_supported"]
            .as_array()
            .unwrap()
            .contains(&json!(EXCHANGE)),
        "{metadata}"
    );
    let subject = w
        .webapp_tokens(
            "alice",
            "openid offline_access orders:read billing:read",
            ORDERS,
        )
        .await;
    let subject = access_of(&subject).to_owned();
    let subject_claims = decode_claims(&subject);
    assert_eq!(subject_claims["aud"], ORDERS);

    // The orders back end calls billing for alice.
    let (status, body) = w
        .as_orders(
            &subject,
            &[("audience", BILLING), ("scope", "billing:read")],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["issued_token_type"], ACCESS);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "billing:read");
    assert!(body.get("refresh_token").is_none() && body.get("id_token").is_none());
    let exchanged = access_of(&body).to_owned();
    let claims = decode_claims(&exchanged);
    assert_eq!(claims["aud"], BILLING);
    assert_eq!(claims["sub"], w.alice.as_str());
    assert_eq!(claims["client_id"], "orders-svc");
    assert_eq!(claims["scope"], "billing:read");
    assert_eq!(claims["act"], json!({ "sub": "orders-svc" }));
    assert_eq!(claims["amr"], subject_claims["amr"]);
    assert!(claims["exp"].as_i64() <= subject_claims["exp"].as_i64());
    assert!(body["expires_in"].as_u64().unwrap() <= 900);

    // Without scope: all the grant holds of the audience's API that the client may have; with
    // `resource` in place of `audience`.
    let (status, body) = w.as_orders(&subject, &[("resource", BILLING)]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["scope"], "openid billing:read");
    // Without a target: the client's first exchange audience.
    let (status, body) = w.as_orders(&subject, &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(decode_claims(access_of(&body))["aud"], BILLING);
    // The subject's own audience, narrowed.
    let (status, body) = w
        .as_orders(&subject, &[("audience", ORDERS), ("scope", "orders:read")])
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["scope"], "orders:read");

    // The billing API's verifier (portcullis::verify) accepts the token and reads `act`.
    let verified = resource_server(&w.app, BILLING)
        .verify::<AccessClaims>(&exchanged)
        .await
        .expect("billing accepts the exchanged token");
    assert_eq!(verified.claims.sub, w.alice);
    let act = verified.claims.act.as_ref().expect("act");
    assert_eq!(act.sub, "orders-svc");
    assert_eq!(act.chain().count(), 1);
    // The orders API's verifier does not (another audience).
    assert!(
        resource_server(&w.app, ORDERS)
            .verify::<AccessClaims>(&exchanged)
            .await
            .is_err()
    );

    // Introspection (by the client it was issued to) shows the actor.
    let introspected = w
        .app
        .client
        .post(w.app.url("/introspect"))
        .basic_auth("orders-svc", Some(&w.orders))
        .form(&[("token", exchanged.as_str())])
        .json_value()
        .await;
    assert_eq!(introspected["active"], true, "{introspected}");
    assert_eq!(introspected["act"], json!({ "sub": "orders-svc" }));
    assert_eq!(introspected["sub"], w.alice.as_str());

    // A chain: the billing back end exchanges the token it received; the new actor is current,
    // the earlier one nested (RFC 8693 §4.1), and the chain only narrows.
    let (status, body) = w
        .token(
            "billing-svc",
            &w.billing,
            &[
                ("grant_type", EXCHANGE),
                ("subject_token", &exchanged),
                ("subject_token_type", ACCESS),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let nested = access_of(&body).to_owned();
    assert_eq!(
        decode_claims(&nested)["act"],
        json!({ "sub": "billing-svc", "act": { "sub": "orders-svc" } })
    );
    assert_eq!(body["scope"], "billing:read");
    let verified = resource_server(&w.app, BILLING)
        .verify::<AccessClaims>(&nested)
        .await
        .expect("verifies");
    let chain: Vec<&str> = verified
        .claims
        .act
        .as_ref()
        .unwrap()
        .chain()
        .map(|a| a.sub.as_str())
        .collect();
    assert_eq!(chain, ["billing-svc", "orders-svc"]);
    // The first hop's token held billing:read only: openid is beyond it now (TEX-03).
    let widened = w
        .token(
            "billing-svc",
            &w.billing,
            &[
                ("grant_type", EXCHANGE),
                ("subject_token", &exchanged),
                ("subject_token_type", ACCESS),
                ("scope", "openid billing:read"),
            ],
        )
        .await;
    assert_error(&widened, "invalid_scope", "a chain widening its scope");

    // An actor token: bob (say, support staff) acts for alice through the orders back end,
    // with a token of his at it.
    let bob = w.app.create_user("bob").await;
    let bobs = w.webapp_tokens("bob", "openid orders:read", ORDERS).await;
    let (status, bobs_at_orders) = w
        .as_orders(
            access_of(&bobs),
            &[("audience", ORDERS), ("scope", "orders:read")],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{bobs_at_orders}");
    let (status, body) = w
        .as_orders(
            &subject,
            &[
                ("audience", BILLING),
                ("actor_token", access_of(&bobs_at_orders)),
                ("actor_token_type", ACCESS),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let claims = decode_claims(access_of(&body));
    assert_eq!(claims["sub"], w.alice.as_str());
    assert_eq!(
        claims["act"],
        json!({ "sub": bob, "client_id": "orders-svc" })
    );
    // The service's own client-credentials token as actor: the service itself.
    let (status, own) = w
        .token(
            "orders-svc",
            &w.orders,
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{own}");
    let (status, body) = w
        .as_orders(
            &subject,
            &[
                ("actor_token", access_of(&own)),
                ("actor_token_type", ACCESS),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        decode_claims(access_of(&body))["act"],
        json!({ "sub": "orders-svc" })
    );
    // Issued through the one token service: counted under its own grant label.
    let metrics = w.app.metrics().await;
    assert!(
        metrics
            .lines()
            .any(|l| l.contains("grant=\"token_exchange\"") && !l.starts_with('#')),
        "{metrics}"
    );
}

// TEX-03, TEX-04, TEX-05: scope and audience only narrow, within what the client is configured
// for: a scope beyond the grant, of another API than the audience, an audience the grant does
// not reach, one the client may not exchange for, two audiences; a client not allowed the grant
// and a public client; the admin API and the CLI register the setting and refuse it where it
// cannot apply.
async fn widening_and_unconfigured_targets_are_refused(backend: Backend) {
    let w = World::new(backend).await;
    let subject = w
        .webapp_tokens("alice", "openid orders:read billing:read", ORDERS)
        .await;
    let subject = access_of(&subject).to_owned();

    let beyond_grant = w
        .as_orders(&subject, &[("audience", ORDERS), ("scope", "orders:write")])
        .await;
    assert_error(&beyond_grant, "invalid_scope", "a scope the grant lacks");
    let other_api = w
        .as_orders(
            &subject,
            &[("audience", ORDERS), ("scope", "orders:read billing:read")],
        )
        .await;
    assert_error(&other_api, "invalid_scope", "a scope of another API");
    let offline = w
        .as_orders(
            &subject,
            &[("audience", ORDERS), ("scope", "offline_access")],
        )
        .await;
    assert_error(&offline, "invalid_scope", "offline_access");
    let unreached = w.as_orders(&subject, &[("audience", INVENTORY)]).await;
    assert_error(&unreached, "invalid_target", "an API the grant lacks");
    for target in ["https://evil.example.com", "not a uri"] {
        let unconfigured = w.as_orders(&subject, &[("audience", target)]).await;
        assert_error(&unconfigured, "invalid_target", target);
    }
    let two = w
        .as_orders(&subject, &[("resource", ORDERS), ("audience", BILLING)])
        .await;
    assert_error(&two, "invalid_target", "two audiences");
    // billing-svc may exchange for billing only, even a token it may present.
    let for_billing = w
        .webapp_tokens("alice", "openid orders:read billing:read", BILLING)
        .await;
    let not_configured = w
        .token(
            "billing-svc",
            &w.billing,
            &[
                ("grant_type", EXCHANGE),
                ("subject_token", access_of(&for_billing)),
                ("subject_token_type", ACCESS),
                ("audience", ORDERS),
            ],
        )
        .await;
    assert_error(
        &not_configured,
        "invalid_target",
        "an API the client may not exchange for",
    );

    // A client not allowed the grant, and a public client.
    let form = [
        ("grant_type", EXCHANGE),
        ("subject_token", subject.as_str()),
        ("subject_token_type", ACCESS),
        ("audience", ORDERS),
    ];
    let webapp = w.token("webapp", &w.webapp, &form).await;
    assert_error(&webapp, "unauthorized_client", "a client without the grant");
    w.app
        .create_client(ClientSpec::new("spa").public().redirect_uri(REDIRECT))
        .await;
    let mut public_form = form.to_vec();
    public_form.push(("client_id", "spa"));
    let response = w
        .app
        .client
        .post(w.app.url("/token"))
        .form(&public_form)
        .sent()
        .await;
    let public = (response.status(), json_of(response).await);
    assert_error(&public, "unauthorized_client", "a public client");

    // The admin API: the setting is registered, listed, and refused where it cannot apply.
    let admin = w.app.admin_token().await;
    let create = |body: Value| {
        let app = &w.app;
        let admin = admin.clone();
        async move {
            let response = app
                .client
                .post(app.url("/admin/clients"))
                .bearer_auth(&admin)
                .json(&body)
                .sent()
                .await;
            (response.status(), json_of(response).await)
        }
    };
    let (status, created) = create(json!({
        "client_id": "gateway",
        "grant_types": [EXCHANGE],
        "scopes": ["orders:read"],
        "token_exchange_audiences": [ORDERS, ORDERS],
    }))
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["grant_types"], json!([EXCHANGE]));
    assert_eq!(created["token_exchange_audiences"], json!([ORDERS]));
    for (body, why) in [
        (
            json!({ "client_id": "p", "public": true, "redirect_uris": [REDIRECT], "grant_types": [EXCHANGE], "token_exchange_audiences": [ORDERS] }),
            "confidential clients only",
        ),
        (
            json!({ "client_id": "q", "grant_types": [EXCHANGE] }),
            "at least one token_exchange_audience",
        ),
        (
            json!({ "client_id": "r", "token_exchange_audiences": [ORDERS] }),
            "need the urn:ietf:params:oauth:grant-type:token-exchange grant type",
        ),
        (
            json!({ "client_id": "s", "grant_types": [EXCHANGE], "token_exchange_audiences": ["two words"] }),
            "without spaces",
        ),
    ] {
        let (status, refused) = create(body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{why}: {refused}");
        assert!(
            refused["error_description"].as_str().unwrap().contains(why),
            "{why}: {refused}"
        );
    }
    // The gateway registered through the admin API exchanges at once.
    w.app.reload_clients().await;
    let gateway_secret = crate::helpers::secret_of(&created);
    let mut gateway_subject = w.webapp_tokens("alice", "openid orders:read", ORDERS).await;
    gateway_subject = gateway_subject["access_token"].clone();
    let gateway = w
        .token(
            "gateway",
            &gateway_secret,
            &[
                ("grant_type", EXCHANGE),
                ("subject_token", gateway_subject.as_str().unwrap()),
                ("subject_token_type", ACCESS),
            ],
        )
        .await;
    // Not issued to it, and it serves no audience: not its business.
    assert_error(
        &gateway,
        "invalid_request",
        "a token the client was never sent",
    );

    // The CLI registers the setting too.
    let cli = stdout_json(
        &w.env
            .cli(&[
                "clients",
                "create",
                "--client-id",
                "cli-exchanger",
                "--grant-type",
                EXCHANGE,
                "--token-exchange-audience",
                BILLING,
            ])
            .await,
    );
    assert_eq!(cli["token_exchange_audiences"], json!([BILLING]));
    assert_eq!(cli["grant_types"], json!([EXCHANGE]));
    let refused = w
        .env
        .cli(&[
            "clients",
            "create",
            "--client-id",
            "cli-public",
            "--public",
            "--redirect-uri",
            REDIRECT,
            "--grant-type",
            EXCHANGE,
            "--token-exchange-audience",
            BILLING,
        ])
        .await;
    assert!(!refused.status.success(), "a public exchanging client");
}

// TEX-05: the audiences a client may exchange for change through the admin API and the CLI, each
// change audited, and the next exchange follows them (the first is the default); a client
// without the grant, an empty list, a bad audience and an unknown client are refused and change
// nothing.
async fn token_exchange_audiences_change_through_the_admin_api_and_the_cli(backend: Backend) {
    let w = World::new(backend).await;
    let subject = w
        .webapp_tokens(
            "alice",
            "openid offline_access orders:read billing:read",
            ORDERS,
        )
        .await;
    let subject = access_of(&subject).to_owned();
    let admin = w.app.admin_token().await;
    let put = |client_id: &str, body: Value| {
        let (app, admin) = (&w.app, admin.clone());
        let path = format!("/admin/clients/{client_id}/token-exchange-audiences");
        async move {
            let response = app
                .send(reqwest::Method::PUT, &path, &admin, Some(body))
                .await;
            (response.status(), json_of(response).await)
        }
    };

    let (status, changed) = put(
        "orders-svc",
        json!({ "token_exchange_audiences": [BILLING] }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["token_exchange_audiences"], json!([BILLING]));
    let refused = w.as_orders(&subject, &[("audience", ORDERS)]).await;
    assert_error(
        &refused,
        "invalid_target",
        "an audience no longer configured",
    );
    let (status, by_default) = w.as_orders(&subject, &[("scope", "billing:read")]).await;
    assert_eq!(status, StatusCode::OK, "{by_default}");
    let claims = decode_claims(by_default["access_token"].as_str().unwrap());
    assert_eq!(
        claims["aud"],
        json!(BILLING),
        "the new first audience is the default"
    );

    for (client_id, body, expected, why) in [
        (
            "webapp",
            json!({ "token_exchange_audiences": [ORDERS] }),
            StatusCode::BAD_REQUEST,
            "not allowed the urn:ietf:params:oauth:grant-type:token-exchange grant type",
        ),
        (
            "orders-svc",
            json!({ "token_exchange_audiences": [] }),
            StatusCode::BAD_REQUEST,
            "at least one token_exchange_audience",
        ),
        (
            "orders-svc",
            json!({ "token_exchange_audiences": ["two words"] }),
            StatusCode::BAD_REQUEST,
            "without spaces",
        ),
        (
            "orders-svc",
            json!({ "audiences": [ORDERS] }),
            StatusCode::BAD_REQUEST,
            "",
        ),
        (
            "nobody",
            json!({ "token_exchange_audiences": [ORDERS] }),
            StatusCode::NOT_FOUND,
            "",
        ),
    ] {
        let (status, answer) = put(client_id, body).await;
        assert_eq!(status, expected, "{why}: {answer}");
        let description = answer["error_description"].as_str().unwrap_or_default();
        assert!(description.contains(why), "{why}: {answer}");
    }
    let clients = json_of(w.app.get_bearer("/admin/clients", &admin).await).await;
    let orders = clients["clients"]
        .as_array()
        .and_then(|all| all.iter().find(|c| c["client_id"] == "orders-svc"))
        .cloned()
        .unwrap_or_else(|| panic!("orders-svc listed: {clients}"));
    assert_eq!(
        orders["token_exchange_audiences"],
        json!([BILLING]),
        "refusals change nothing"
    );

    let cli = stdout_json(
        &w.env
            .cli(&[
                "clients",
                "update",
                "orders-svc",
                "--token-exchange-audience",
                ORDERS,
                "--token-exchange-audience",
                BILLING,
            ])
            .await,
    );
    assert_eq!(cli["token_exchange_audiences"], json!([ORDERS, BILLING]));
    w.app.reload_clients().await;
    let (status, exchanged) = w.as_orders(&subject, &[("audience", ORDERS)]).await;
    assert_eq!(status, StatusCode::OK, "{exchanged}");
    let refused = w
        .env
        .cli(&[
            "clients",
            "update",
            "webapp",
            "--token-exchange-audience",
            ORDERS,
        ])
        .await;
    assert!(!refused.status.success(), "a client without the grant");

    let events = json_of(w.app.get_bearer("/admin/audit?limit=500", &admin).await).await;
    // The audit API gives each detail as the JSON text stored.
    let changes: Vec<Value> = events["events"]
        .as_array()
        .map(|all| {
            all.iter()
                .filter(|e| e["action"] == "client_token_exchange_audiences_changed")
                .map(|e| {
                    let detail: Value =
                        serde_json::from_str(e["detail"].as_str().unwrap_or("null")).unwrap();
                    detail["token_exchange_audiences"].clone()
                })
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        changes,
        [
            json!({ "old": [BILLING], "new": [ORDERS, BILLING] }),
            json!({ "old": [BILLING, ORDERS, INVENTORY], "new": [BILLING] }),
        ],
        "both changes audited, newest first: {events}"
    );
}

// TEX-06, TEX-07: unacceptable subject and actor tokens are `invalid_request` (RFC 8693
// §2.2.2): tampered, another issuer's (same keys), a refresh token or an ID token presented as an
// access token, unsupported token types, a token the client was never sent, an actor token of
// another client, a missing or stray actor_token_type; a subject from a revoked grant or of a
// disabled user (ADM-04) — which also ends the tokens exchanged from it; an expired subject,
// and the exchanged token never outlives the subject.
async fn unacceptable_subject_and_actor_tokens_are_refused(backend: Backend) {
    let w = World::new(backend).await;
    let tokens = w
        .webapp_tokens(
            "alice",
            "openid offline_access orders:read billing:read",
            ORDERS,
        )
        .await;
    let subject = access_of(&tokens).to_owned();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    let id_token = tokens["id_token"].as_str().unwrap().to_owned();
    let (status, body) = w.as_orders(&subject, &[]).await;
    assert_eq!(status, StatusCode::OK, "the control exchange: {body}");
    let exchanged = access_of(&body).to_owned();

    // Tampered: one character of the payload changed.
    let mut parts: Vec<String> = subject.split('.').map(str::to_owned).collect();
    let flipped = if parts[1].ends_with('A') { 'B' } else { 'A' };
    parts[1].pop();
    parts[1].push(flipped);
    let tampered = parts.join(".");
    let outcome = w.as_orders(&tampered, &[]).await;
    assert_error(&outcome, "invalid_request", "tampered");
    assert_eq!(outcome.1["error_description"], NOT_OURS);
    // A refresh token, and an ID token, presented as an access token.
    for (token, what) in [(&refresh, "a refresh token"), (&id_token, "an ID token")] {
        let outcome = w.as_orders(token, &[]).await;
        assert_error(&outcome, "invalid_request", what);
        assert_eq!(outcome.1["error_description"], NOT_OURS, "{what}");
    }
    // Token types: an access token presented as an ID token; unsupported types.
    let as_id = w
        .token(
            "orders-svc",
            &w.orders,
            &[
                ("grant_type", EXCHANGE),
                ("subject_token", &subject),
                ("subject_token_type", ID),
            ],
        )
        .await;
    assert_error(&as_id, "invalid_request", "an access token as an ID token");
    for (name, value) in [
        (
            "subject_token_type",
            "urn:ietf:params:oauth:token-type:refresh_token",
        ),
        ("subject_token_type", "urn:ietf:params:oauth:token-type:jwt"),
    ] {
        let outcome = w
            .token(
                "orders-svc",
                &w.orders,
                &[
                    ("grant_type", EXCHANGE),
                    ("subject_token", &refresh),
                    (name, value),
                ],
            )
            .await;
        assert_error(&outcome, "invalid_request", value);
    }
    let missing = w
        .token(
            "orders-svc",
            &w.orders,
            &[("grant_type", EXCHANGE), ("subject_token_type", ACCESS)],
        )
        .await;
    assert_error(&missing, "invalid_request", "no subject_token");
    let refresh_wanted = w
        .as_orders(
            &subject,
            &[(
                "requested_token_type",
                "urn:ietf:params:oauth:token-type:refresh_token",
            )],
        )
        .await;
    assert_error(
        &refresh_wanted,
        "invalid_request",
        "a refresh token requested",
    );
    let (status, _) = w
        .as_orders(&subject, &[("requested_token_type", ACCESS)])
        .await;
    assert_eq!(status, StatusCode::OK, "an access token requested");

    // Actor tokens.
    let untyped = w.as_orders(&subject, &[("actor_token", &exchanged)]).await;
    assert_error(&untyped, "invalid_request", "actor_token without its type");
    assert!(
        untyped.1["error_description"]
            .as_str()
            .unwrap()
            .contains("actor_token_type is required")
    );
    let stray = w.as_orders(&subject, &[("actor_token_type", ACCESS)]).await;
    assert_error(
        &stray,
        "invalid_request",
        "actor_token_type without actor_token",
    );
    let foreign_actor = w
        .as_orders(
            &subject,
            &[("actor_token", &subject), ("actor_token_type", ACCESS)],
        )
        .await;
    assert_error(
        &foreign_actor,
        "invalid_request",
        "another client's token as actor",
    );
    let bad_actor = w
        .as_orders(
            &subject,
            &[("actor_token", &tampered), ("actor_token_type", ACCESS)],
        )
        .await;
    assert_error(&bad_actor, "invalid_request", "a tampered actor token");

    // A token the client was never sent: billing-svc neither received nor serves ORDERS tokens.
    let not_entitled = w
        .token(
            "billing-svc",
            &w.billing,
            &[
                ("grant_type", EXCHANGE),
                ("subject_token", &subject),
                ("subject_token_type", ACCESS),
            ],
        )
        .await;
    assert_error(
        &not_entitled,
        "invalid_request",
        "a token of another audience",
    );

    // Another issuer: a second server on the same database (same keys, clients and grants) —
    // only `iss` differs. Its token is exchangeable there, not here.
    let other = w.env.spawn().await;
    let foreign = user_tokens(
        &other,
        ("webapp", &w.webapp),
        "alice",
        "openid orders:read billing:read",
        Some(ORDERS),
    )
    .await;
    let foreign = access_of(&foreign).to_owned();
    let form = [
        ("grant_type", EXCHANGE),
        ("subject_token", foreign.as_str()),
        ("subject_token_type", ACCESS),
        ("audience", ORDERS),
    ];
    let (status, body) = post_token(&other, "orders-svc", &w.orders, &form).await;
    assert_eq!(status, StatusCode::OK, "at its own issuer: {body}");
    let outcome = w.as_orders(&foreign, &[("audience", ORDERS)]).await;
    assert_error(&outcome, "invalid_request", "another issuer's token");
    assert_eq!(outcome.1["error_description"], NOT_OURS);

    // The subject's grant revoked (the web app revokes its refresh token): the subject is
    // refused, and the token exchanged from it is no longer active anywhere on this server.
    let revoked = w
        .app
        .client
        .post(w.app.url("/revoke"))
        .basic_auth("webapp", Some(&w.webapp))
        .form(&[("token", refresh.as_str())])
        .sent()
        .await;
    assert_eq!(revoked.status(), StatusCode::OK);
    let outcome = w.as_orders(&subject, &[]).await;
    assert_error(&outcome, "invalid_request", "a subject of a revoked grant");
    let introspected = w
        .app
        .client
        .post(w.app.url("/introspect"))
        .basic_auth("orders-svc", Some(&w.orders))
        .form(&[("token", exchanged.as_str())])
        .json_value()
        .await;
    assert_eq!(introspected, json!({ "active": false }));

    // A disabled user: the subject is refused.
    let fresh = w.webapp_tokens("alice", "openid orders:read", ORDERS).await;
    let fresh = access_of(&fresh).to_owned();
    let admin = w.app.admin_token().await;
    let disabled = w
        .app
        .client
        .post(w.app.url(&format!("/admin/users/{}/disable", w.alice)))
        .bearer_auth(&admin)
        .sent()
        .await;
    assert!(disabled.status().is_success(), "{}", disabled.status());
    let outcome = w.as_orders(&fresh, &[]).await;
    assert_error(&outcome, "invalid_request", "a disabled user");
}

// TEX-08: the exchanged token lives no longer than the subject; an expired subject is refused.
async fn the_exchanged_token_never_outlives_the_subject(backend: Backend) {
    let w = World::new(backend).await;
    let subject = w
        .webapp_tokens(
            "alice",
            "openid offline_access orders:read billing:read",
            ORDERS,
        )
        .await;
    let subject = access_of(&subject).to_owned();
    let subject_exp = decode_claims(&subject)["exp"].as_i64().unwrap();
    w.app.advance(Duration::from_secs(600));
    let (status, body) = w.as_orders(&subject, &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let claims = decode_claims(access_of(&body));
    assert_eq!(claims["exp"].as_i64().unwrap(), subject_exp);
    let expires_in = body["expires_in"].as_i64().unwrap();
    assert!((295..=300).contains(&expires_in), "{expires_in}");
    w.app.advance(Duration::from_secs(301));
    let outcome = w.as_orders(&subject, &[]).await;
    assert_error(&outcome, "invalid_request", "an expired subject");
    assert_eq!(outcome.1["error_description"], NOT_OURS);
}

// TEX-06 (ID tokens), TEX-07 (second factor): an ID token the client received is a subject:
// the exchanged token speaks for its user with `openid` only; another client's ID token, an ID
// token whose session ended, and a password-only subject where the client requires a second
// factor are refused.
async fn id_token_subjects_and_the_second_factor_policy(backend: Backend) {
    let w = World::new(backend).await;
    let portal = client_secret(
        &w.app
            .create_client(
                ClientSpec::new("portal")
                    .redirect_uri(REDIRECT)
                    .first_party()
                    .grant_type(GrantType::AuthorizationCode)
                    .grant_type(GrantType::TokenExchange)
                    .scope("openid")
                    .scope("billing:read")
                    .token_exchange_audience(BILLING),
            )
            .await,
    );
    let signed_in = user_tokens(&w.app, ("portal", &portal), "alice", "openid", None).await;
    let id_token = signed_in["id_token"].as_str().unwrap().to_owned();
    let exchange = |token: String, extra: Vec<(&'static str, &'static str)>| {
        let (app, portal) = (&w.app, portal.clone());
        async move {
            let mut form = vec![
                ("grant_type", EXCHANGE),
                ("subject_token", token.as_str()),
                ("subject_token_type", ID),
            ];
            form.extend(extra);
            post_token(app, "portal", &portal, &form).await
        }
    };
    let (status, body) = exchange(id_token.clone(), vec![]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["scope"], "openid");
    let claims = decode_claims(access_of(&body));
    assert_eq!(claims["sub"], w.alice.as_str());
    assert_eq!(claims["aud"], BILLING);
    assert_eq!(claims["client_id"], "portal");
    assert_eq!(claims["act"], json!({ "sub": "portal" }));
    // An ID token grants no API scope.
    let widened = exchange(id_token.clone(), vec![("scope", "billing:read")]).await;
    assert_error(&widened, "invalid_scope", "an API scope from an ID token");
    // Another client's ID token.
    let webapps = w.webapp_tokens("alice", "openid orders:read", ORDERS).await;
    let outcome = exchange(webapps["id_token"].as_str().unwrap().to_owned(), vec![]).await;
    assert_error(&outcome, "invalid_request", "another client's ID token");

    // A client that requires a second factor: alice signed in with a password only.
    let strict = client_secret(
        &w.app
            .create_client(
                ClientSpec::new("strict-svc")
                    .grant_type(GrantType::TokenExchange)
                    .scope("orders:read")
                    .introspection_audience(ORDERS)
                    .token_exchange_audience(ORDERS)
                    .second_factor(SecondFactorPolicy::Required),
            )
            .await,
    );
    let subject = access_of(&webapps).to_owned();
    let outcome = w
        .token(
            "strict-svc",
            &strict,
            &[
                ("grant_type", EXCHANGE),
                ("subject_token", &subject),
                ("subject_token_type", ACCESS),
            ],
        )
        .await;
    assert_error(&outcome, "invalid_request", "a password-only subject");
    assert!(
        outcome.1["error_description"]
            .as_str()
            .unwrap()
            .contains("second factor")
    );

    // Everything of alice's revoked (an administrator's revoke-sessions): the ID token's session
    // has ended.
    let admin = w.app.admin_token().await;
    let revoked = w
        .app
        .client
        .post(
            w.app
                .url(&format!("/admin/users/{}/revoke-sessions", w.alice)),
        )
        .bearer_auth(&admin)
        .sent()
        .await;
    assert!(revoked.status().is_success(), "{}", revoked.status());
    let outcome = exchange(id_token, vec![]).await;
    assert_error(
        &outcome,
        "invalid_request",
        "an ID token of an ended session",
    );
}

on_both_backends!(
    exchanged_token_narrows_and_carries_act,
    widening_and_unconfigured_targets_are_refused,
    token_exchange_audiences_change_through_the_admin_api_and_the_cli,
    unacceptable_subject_and_actor_tokens_are_refused,
    the_exchanged_token_never_outlives_the_subject,
    id_token_subjects_and_the_second_factor_policy,
);
