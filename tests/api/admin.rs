//! The admin API: authentication (ADM-01), concurrency and audit (ADM-02), no key material in
//! any response (ADM-03, KEY-11), emergency revocation (KEY-10) — on both backends.

use portcullis::config::SettingsArgs;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{Backend, Sent, TestEnv, join_all, json_of, kids_of, stdout_json};
use crate::on_both_backends;

/// Fails if `body` carries anything that looks like private key material.
fn assert_no_key_material(body: &Value) {
    let text = body.to_string();
    for field in [
        "\"d\"", "\"p\"", "\"q\"", "\"dp\"", "\"dq\"", "\"qi\"", "private", "sealed",
    ] {
        assert!(
            !text.contains(field),
            "{field} in an admin response: {text}"
        );
    }
}

fn active_kid(keys: &Value, alg: &str) -> String {
    keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["alg"] == alg && k["state"] == "active")
        .unwrap_or_else(|| panic!("an active {alg} key in {keys}"))["kid"]
        .as_str()
        .unwrap()
        .to_owned()
}

// ADM-01: unauthenticated 401, non-admin 403, another audience 401, no cookie authentication.
async fn adm_01_only_admin_tokens_for_the_issuer_open_the_admin_api(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let app = env.spawn().await;

    let missing = app.get("/admin/keys").await;
    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
    assert!(
        missing.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    let forged = app.post_bearer("/admin/keys/rotate", "e30.e30.c2ln").await;
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(json_of(forged).await["error"], "invalid_token");

    let user = app.user_token("mallory", &[]).await;
    let refused = app.post_bearer("/admin/keys/rotate", &user).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(json_of(refused).await["error"], "insufficient_scope");

    // The refresh cookie of an admin's login is no credential here (no CSRF surface).
    let admin = app.user_token("root", &["admin"]).await;
    let login = app.login("root").await;
    let cookie = login.headers()["set-cookie"].to_str().unwrap().to_owned();
    let cookie_only = app
        .client
        .post(format!("{}/admin/keys/rotate", app.address))
        .header("Cookie", cookie.split(';').next().unwrap())
        .sent()
        .await;
    assert_eq!(cookie_only.status(), StatusCode::UNAUTHORIZED);

    let listed = app.get_bearer("/admin/keys", &admin).await;
    assert_eq!(listed.status(), StatusCode::OK);
    assert_eq!(listed.headers()["cache-control"], "no-store");
    let body = json_of(listed).await;
    assert_eq!(body["keys"].as_array().unwrap().len(), 2);
    assert_no_key_material(&body);
    assert!(body["schedule"]["publish_lead_seconds"].as_u64().unwrap() >= 300);
    app.stop().await;

    // Tokens minted for another audience never open the admin API, even an admin's.
    let api_audience = env
        .spawn_with(SettingsArgs {
            access_token_audience: Some("https://api.example".into()),
            ..env.args()
        })
        .await;
    let login = api_audience.login("root").await;
    let token = json_of(login).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let me = api_audience.get_bearer("/api/me", &token).await;
    assert_eq!(
        me.status(),
        StatusCode::OK,
        "the token is valid for its API"
    );
    // ADM-09: the admin API takes the JSON API's tokens under its audience (it once refused
    // every token when the audience was set); the first-party and role checks still hold.
    let admitted = api_audience.get_bearer("/admin/keys", &token).await;
    assert_eq!(admitted.status(), StatusCode::OK);
}

// ADM-01: with PORTCULLIS_ADMIN_BIND the admin API is served there and only there.
async fn adm_01_separate_admin_listener(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let app = env
        .spawn_with(SettingsArgs {
            admin_bind: Some("127.0.0.1:0".into()),
            ..env.args()
        })
        .await;
    let admin = app.user_token("root", &["admin"]).await;
    let public = app.get_bearer("/admin/keys", &admin).await;
    assert_eq!(public.status(), StatusCode::NOT_FOUND);
    assert_eq!(json_of(public).await["error"], "not_found");

    let admin_address = app.admin_address.clone().expect("admin listener");
    let listed = app
        .client
        .get(format!("{admin_address}/admin/keys"))
        .bearer_auth(&admin)
        .sent()
        .await;
    assert_eq!(listed.status(), StatusCode::OK);
    let unauthenticated = app
        .client
        .get(format!("{admin_address}/admin/keys"))
        .sent()
        .await;
    assert_eq!(unauthenticated.status(), StatusCode::UNAUTHORIZED);
    let public_route = app
        .client
        .get(format!("{admin_address}/.well-known/jwks.json"))
        .sent()
        .await;
    assert_eq!(public_route.status(), StatusCode::NOT_FOUND);
}

// ADM-02: concurrent rotations make one rotation; the other gets 409. Every action is audited.
async fn adm_02_concurrent_rotations_and_audit(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let app = env.spawn().await;
    let admin = app.user_token("root", &["admin"]).await;
    let me: Value = json_of(app.get_bearer("/api/me", &admin).await).await;
    let admin_id = me["id"].as_str().unwrap().to_owned();
    let spares = app.ready_spares(&admin).await;

    let responses = join_all((0..4).map(|_| app.post_bearer("/admin/keys/rotate", &admin))).await;
    let mut created = Vec::new();
    let mut conflicts = 0;
    for response in responses {
        match response.status() {
            StatusCode::CREATED => created.push(json_of(response).await),
            StatusCode::CONFLICT => {
                let body = json_of(response).await;
                assert!(
                    ["rotation_in_progress", "conflict"].contains(&body["error"].as_str().unwrap()),
                    "{body}"
                );
                assert_no_key_material(&body);
                conflicts += 1;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(created.len(), 1, "exactly one rotation");
    assert_eq!(conflicts, 3);
    let rotation = &created[0];
    assert_no_key_material(rotation);
    let pending: Vec<String> = rotation["pending"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(pending.len(), 2, "{rotation}");
    // The new keys are the spares generated ahead, not keys generated inside the request.
    for kid in spares.values() {
        assert!(pending.contains(kid), "{kid} in {pending:?}");
    }
    for key in rotation["pending"].as_array().unwrap() {
        assert_eq!(key["state"], "pending");
        assert!(key["activates_at"].is_string());
    }
    // Published at once by the instance that made the change (KEY-04).
    let kids = app.jwks_kids().await;
    for kid in &pending {
        assert!(kids.contains(kid), "{kid} published before it signs");
    }
    let again = app.post_bearer("/admin/keys/rotate", &admin).await;
    assert_eq!(again.status(), StatusCode::CONFLICT);
    assert_eq!(json_of(again).await["pending"].as_array().unwrap().len(), 2);

    let events = env
        .with_db(|conn| portcullis::db::queries::audit::recent(conn, 50).unwrap())
        .await;
    for kid in &pending {
        assert!(
            events.iter().any(|(actor, action, subject)| {
                actor.as_deref() == Some(admin_id.as_str())
                    && action == "key_rotation_started"
                    && subject.as_deref() == Some(kid.as_str())
            }),
            "audited: {events:?}"
        );
    }
}

// KEY-10: an emergency revocation removes the key from the JWKS at once, a replacement signs
// from the same transaction, and tokens of the revoked key stop verifying.
async fn key_10_revoking_the_active_key(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let app = env.spawn().await;
    let admin = app.user_token("root", &["admin"]).await;
    let keys = json_of(app.get_bearer("/admin/keys", &admin).await).await;
    let compromised = active_kid(&keys, "ES256");
    let spares = app.ready_spares(&admin).await;

    let revoked = app
        .post_bearer(&format!("/admin/keys/{compromised}/revoke"), &admin)
        .await;
    assert_eq!(revoked.status(), StatusCode::OK);
    let body = json_of(revoked).await;
    assert_no_key_material(&body);
    assert_eq!(body["revoked"]["state"], "revoked");
    let replacement = body["replacement"]["kid"].as_str().unwrap().to_owned();
    assert_eq!(body["replacement"]["state"], "active");
    assert_eq!(replacement, spares["ES256"], "the spare, generated ahead");
    assert!(
        body["warning"].as_str().unwrap().contains("cached JWKS"),
        "a replacement that was not pre-published says caches may lag: {body}"
    );

    let kids = app.jwks_kids().await;
    assert!(!kids.contains(&compromised), "gone at once");
    assert!(kids.contains(&replacement));
    // The admin token was signed by the revoked key: it no longer opens anything.
    let stale = app.get_bearer("/admin/keys", &admin).await;
    assert_eq!(stale.status(), StatusCode::UNAUTHORIZED);
    let me = app.get_bearer("/api/me", &admin).await;
    assert_eq!(me.status(), StatusCode::UNAUTHORIZED);

    let login = app.login("root").await;
    let fresh = json_of(login).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let header = jsonwebtoken::decode_header(&fresh).unwrap();
    assert_eq!(header.kid.as_deref(), Some(replacement.as_str()));

    let again = app
        .post_bearer(&format!("/admin/keys/{compromised}/revoke"), &fresh)
        .await;
    assert_eq!(again.status(), StatusCode::CONFLICT);
    assert_eq!(json_of(again).await["error"], "key_not_published");
    let unknown = app
        .post_bearer("/admin/keys/no-such-kid/revoke", &fresh)
        .await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    assert_eq!(json_of(unknown).await["error"], "not_found");

    let list = env.keys_list().await;
    let row = list
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == compromised.as_str())
        .unwrap()
        .clone();
    assert_eq!(row["state"], "revoked");
    let sealed = env
        .with_db(move |conn| {
            portcullis::db::queries::signing_keys::find(conn, &compromised)
                .unwrap()
                .unwrap()
                .private_key_sealed
        })
        .await;
    assert!(sealed.is_empty(), "the revoked private key is erased");
}

// Immediate rotation answers 200 with a warning; malformed parameters get the JSON error shape.
async fn immediate_rotation_and_bad_parameters(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let app = env.spawn().await;
    let admin = app.user_token("root", &["admin"]).await;
    let before = kids_of(&app.jwks().await);
    let spares = app.ready_spares(&admin).await;

    for bad in ["?immediate=maybe", "?alg=HS256", "?alg=none", "?x=1"] {
        let response = app
            .post_bearer(&format!("/admin/keys/rotate{bad}"), &admin)
            .await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(json_of(response).await["error"], "invalid_request");
    }
    let wrong_method = app.get_bearer("/admin/keys/rotate", &admin).await;
    assert_eq!(wrong_method.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(app.jwks_kids().await, before, "nothing changed");

    let response = app
        .post_bearer("/admin/keys/rotate?immediate=true&alg=RS256", &admin)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = json_of(response).await;
    assert!(body["warning"].as_str().unwrap().contains("cached JWKS"));
    assert_eq!(body["activated"].as_array().unwrap().len(), 1);
    assert_eq!(body["activated"][0]["alg"], "RS256");
    assert_eq!(body["retired"][0]["alg"], "RS256");
    let new_kid = body["activated"][0]["kid"].as_str().unwrap();
    assert_eq!(new_kid, spares["RS256"], "the spare, generated ahead");
    assert!(app.jwks_kids().await.contains(&new_kid.to_owned()));

    // The RS256 spare is taken until the background refill makes another: an immediate
    // rotation needing it now is told to retry (it never generates a key itself), and after
    // the refill it succeeds with the new spare.
    let again = app
        .post_bearer("/admin/keys/rotate?immediate=true&alg=RS256", &admin)
        .await;
    let second = match again.status() {
        StatusCode::SERVICE_UNAVAILABLE => {
            assert_eq!(again.headers()["retry-after"], "1");
            assert_eq!(json_of(again).await["error"], "temporarily_unavailable");
            let refilled = app.ready_spares(&admin).await;
            let retried = app
                .post_bearer("/admin/keys/rotate?immediate=true&alg=RS256", &admin)
                .await;
            assert_eq!(retried.status(), StatusCode::OK);
            let retried = json_of(retried).await;
            assert_eq!(retried["activated"][0]["kid"], refilled["RS256"].as_str());
            retried
        }
        // The refill had already finished.
        StatusCode::OK => json_of(again).await,
        other => panic!("unexpected {other}"),
    };
    assert_ne!(
        second["activated"][0]["kid"], new_kid,
        "a new spare, not the first again"
    );
    assert_eq!(second["retired"][0]["kid"], new_kid);
}

// Admin API for clients, users and the audit trail (issue 7): every change takes effect at once
// and is audited; secrets appear only in the create and rotate answers.
async fn admin_manages_clients_users_and_reads_the_audit(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let app = env.spawn().await;
    let admin = app.user_token("root", &["admin"]).await;
    let user = app.user_token("mallory", &[]).await;
    let cc = |secret: String| {
        app.client
            .post(format!("{}/token", app.address))
            .basic_auth("svc", Some(secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
    };
    let create_client = |body: serde_json::Value| {
        app.send(reqwest::Method::POST, "/admin/clients", &admin, Some(body))
    };
    assert_eq!(
        app.send(reqwest::Method::GET, "/admin/clients", &user, None)
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    let created = create_client(serde_json::json!({"client_id": "svc"})).await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let created = json_of(created).await;
    let secret = crate::helpers::secret_of(&created);
    assert_eq!(
        cc(secret.clone()).await.unwrap().status(),
        200,
        "usable at once"
    );
    let listed = json_of(
        app.send(reqwest::Method::GET, "/admin/clients", &admin, None)
            .await,
    )
    .await;
    assert!(!listed.to_string().contains(&secret) && !listed.to_string().contains("secret_hash"));
    assert_eq!(listed["clients"][0]["client_id"], "svc");
    // Like every resource: 405 in the JSON shape with Allow, and its own latency label.
    let wrong_method = app
        .send(reqwest::Method::PUT, "/admin/clients", &admin, None)
        .await;
    assert_eq!(wrong_method.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(wrong_method.headers()["allow"], "GET, HEAD, POST");
    assert_eq!(json_of(wrong_method).await["error"], "method_not_allowed");
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains(
            "portcullis_http_request_duration_seconds_count{route=\"/admin/clients\",method=\"GET\",status=\"200\"}"
        ),
        "{metrics}"
    );
    let duplicate = create_client(serde_json::json!({"client_id": "svc"})).await;
    assert_eq!(duplicate.status(), StatusCode::CONFLICT);

    let web = create_client(serde_json::json!({
        "client_id": "web",
        "redirect_uris": ["https://app.example.com/cb"],
    }))
    .await;
    assert_eq!(web.status(), StatusCode::CREATED);
    let bad = app
        .send(
            reqwest::Method::PUT,
            "/admin/clients/web/redirect-uris",
            &admin,
            Some(serde_json::json!({"redirect_uris": ["javascript:alert(1)"]})),
        )
        .await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let good = app
        .send(
            reqwest::Method::PUT,
            "/admin/clients/web/redirect-uris",
            &admin,
            Some(serde_json::json!({"redirect_uris": ["https://app.example.com/new"]})),
        )
        .await;
    assert_eq!(
        json_of(good).await["redirect_uris"],
        serde_json::json!(["https://app.example.com/new"])
    );

    let rotated = json_of(
        app.send(
            reqwest::Method::POST,
            "/admin/clients/svc/rotate-secret",
            &admin,
            None,
        )
        .await,
    )
    .await;
    let new_secret = crate::helpers::secret_of(&rotated);
    assert_eq!(cc(new_secret.clone()).await.unwrap().status(), 200);
    assert_eq!(
        cc(secret).await.unwrap().status(),
        401,
        "the old secret stops at once"
    );
    let deleted = app
        .send(reqwest::Method::DELETE, "/admin/clients/svc", &admin, None)
        .await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    assert_eq!(cc(new_secret).await.unwrap().status(), 401);
    assert_eq!(
        app.send(reqwest::Method::DELETE, "/admin/clients/svc", &admin, None)
            .await
            .status(),
        StatusCode::NOT_FOUND
    );

    // Users: list, revoke every session, disable.
    let users = json_of(
        app.send(reqwest::Method::GET, "/admin/users", &admin, None)
            .await,
    )
    .await;
    assert!(users.to_string().contains("mallory") && !users.to_string().contains("argon2"));
    let session = json_of(app.login("mallory").await).await;
    let revoked = app
        .send(
            reqwest::Method::POST,
            "/admin/users/mallory/revoke-sessions",
            &admin,
            None,
        )
        .await;
    assert_eq!(revoked.status(), 200);
    let refresh = app
        .client
        .post(format!("{}/api/auth/refresh", app.address))
        .json(&serde_json::json!({"refresh_token": session["refresh_token"]}))
        .sent()
        .await;
    assert_eq!(refresh.status(), 401);
    let disabled = app
        .send(
            reqwest::Method::POST,
            "/admin/users/mallory/disable",
            &admin,
            None,
        )
        .await;
    assert_eq!(disabled.status(), 200);
    assert_eq!(app.login("mallory").await.status(), 401);

    // The audit trail, paged.
    let page = json_of(
        app.send(reqwest::Method::GET, "/admin/audit?limit=2", &admin, None)
            .await,
    )
    .await;
    assert_eq!(page["events"].as_array().unwrap().len(), 2);
    let actions: Vec<&str> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(actions.contains(&"user_disabled"), "{actions:?}");
    let before = page["next_before"].as_str().unwrap();
    let next = json_of(
        app.send(
            reqwest::Method::GET,
            &format!(
                "/admin/audit?limit=100&before={}",
                crate::helpers::enc(before)
            ),
            &admin,
            None,
        )
        .await,
    )
    .await;
    let all: Vec<&str> = next["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for action in [
        "client_created",
        "client_secret_rotated",
        "client_deleted",
        "client_redirect_uris_changed",
    ] {
        assert!(all.contains(&action), "{action} in {all:?}");
    }
    let bad_page = app
        .send(reqwest::Method::GET, "/admin/audit?limit=0", &admin, None)
        .await;
    assert_eq!(bad_page.status(), StatusCode::BAD_REQUEST);
}

// /openapi.json describes every JSON-API and admin route that exists (and only those).
async fn openapi_lists_every_route(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let app = env.spawn().await;
    let doc: Value = app.get("/openapi.json").await.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    let routes = [
        ("/api/auth/register", "post"),
        ("/api/auth/login", "post"),
        ("/api/auth/login/second-factor", "post"),
        ("/api/auth/refresh", "post"),
        ("/api/auth/logout", "post"),
        ("/api/auth/logout-all", "post"),
        ("/api/auth/password-reset", "post"),
        ("/api/auth/password-reset/confirm", "post"),
        ("/api/auth/verify-email", "post"),
        ("/api/me/email", "post"),
        ("/api/me/email/verification", "post"),
        ("/api/me", "get"),
        ("/api/me", "patch"),
        ("/api/me/consents", "get"),
        ("/api/me/consents/{client_id}", "delete"),
        ("/admin/keys", "get"),
        ("/admin/keys/rotate", "post"),
        ("/admin/keys/{kid}/revoke", "post"),
        ("/admin/clients", "get"),
        ("/admin/clients", "post"),
        ("/admin/clients/{client_id}/redirect-uris", "put"),
        ("/admin/clients/{client_id}/web-origins", "put"),
        ("/admin/clients/{client_id}/token-exchange-audiences", "put"),
        ("/admin/clients/{client_id}/second-factor", "put"),
        ("/admin/clients/{client_id}/jwks", "put"),
        ("/admin/clients/{client_id}/rotate-secret", "post"),
        ("/admin/clients/{client_id}", "delete"),
        ("/admin/apis", "get"),
        ("/admin/apis", "post"),
        ("/admin/apis/{id}", "get"),
        ("/admin/apis/{id}", "patch"),
        ("/admin/apis/{id}", "delete"),
        ("/admin/users", "get"),
        ("/admin/users/{user}", "patch"),
        ("/admin/users/{user}/disable", "post"),
        ("/admin/users/{user}/revoke-sessions", "post"),
        ("/admin/users/{user}/reset-second-factors", "post"),
        ("/admin/audit", "get"),
        ("/admin/users/{user}/families", "get"),
        ("/admin/users/{user}/consents", "get"),
        ("/admin/users/{user}/consents/{client_id}", "delete"),
        ("/admin/users/{user}/roles/{role}", "post"),
        ("/admin/users/{user}/roles/{role}", "delete"),
        ("/admin/families/{id}/revoke", "post"),
        ("/admin/initial-access-tokens", "get"),
        ("/admin/initial-access-tokens", "post"),
        ("/admin/initial-access-tokens/{id}", "delete"),
    ];
    for (path, method) in routes {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} documented"
        );
        // The route exists: without credentials it is refused, not unknown.
        let concrete = path
            .replace("{kid}", "k")
            .replace("{client_id}", "c")
            .replace("{user}", "u")
            .replace("{role}", "r")
            .replace("{id}", "i");
        let response = app
            .client
            .request(
                method.to_uppercase().parse().unwrap(),
                format!("{}{concrete}", app.address),
            )
            .sent()
            .await;
        assert_ne!(
            response.status(),
            StatusCode::NOT_FOUND,
            "{method} {path} exists"
        );
    }
    let documented: usize = paths.values().map(|p| p.as_object().unwrap().len()).sum();
    assert_eq!(documented, routes.len(), "nothing undocumented or extra");
}

// A user's grants can be listed and ended one by one; roles change over HTTP (audited).
async fn admin_manages_roles_and_grants(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let app = env.spawn().await;
    let admin = app.user_token("root", &["admin"]).await;
    app.user_token("walter", &[]).await;
    let first = json_of(app.login("walter").await).await;
    let second = json_of(app.login("walter").await).await;
    let families = json_of(app.get_bearer("/admin/users/walter/families", &admin).await).await;
    let list = families["families"].as_array().unwrap();
    assert_eq!(
        list.len(),
        3,
        "the two logins and the token helper's: {families}"
    );
    let newest = list[0]["id"].as_str().unwrap().to_owned();
    let revoked = app
        .post_bearer(&format!("/admin/families/{newest}/revoke"), &admin)
        .await;
    assert_eq!(revoked.status(), 200);
    let refresh = |token: &Value| {
        app.client
            .post(format!("{}/api/auth/refresh", app.address))
            .json(&serde_json::json!({"refresh_token": token["refresh_token"]}))
            .send()
    };
    assert_eq!(
        refresh(&second).await.unwrap().status(),
        401,
        "the ended grant"
    );
    assert_eq!(
        refresh(&first).await.unwrap().status(),
        200,
        "the others live on"
    );
    let again = app
        .post_bearer(&format!("/admin/families/{newest}/revoke"), &admin)
        .await;
    assert_eq!(again.status(), StatusCode::NOT_FOUND);

    let granted = app
        .post_bearer("/admin/users/walter/roles/auditor", &admin)
        .await;
    assert_eq!(granted.status(), 200);
    assert!(
        json_of(granted).await["roles"]
            .to_string()
            .contains("auditor")
    );
    let withdrawn = app
        .client
        .delete(format!("{}/admin/users/walter/roles/auditor", app.address))
        .bearer_auth(&admin)
        .sent()
        .await;
    assert_eq!(withdrawn.status(), 200);
    assert!(
        !json_of(withdrawn).await["roles"]
            .to_string()
            .contains("auditor")
    );
    let bad = app
        .post_bearer("/admin/users/walter/roles/not%20a%20role", &admin)
        .await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let events = env
        .with_db(|conn| portcullis::db::queries::audit::recent(conn, 20).unwrap())
        .await;
    for action in ["family_revoked", "role_granted", "role_withdrawn"] {
        assert!(
            events.iter().any(|(_, a, _)| a == action),
            "{action}: {events:?}"
        );
    }
}

// The CLI's client and user commands: `clients list` and `clients delete` work, and every change
// is in the audit trail as actor `cli`, as the admin API's are; a refused change records nothing.
async fn cli_client_and_user_changes_are_audited(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let app = env.spawn().await;
    let admin = app.user_token("root", &["admin"]).await;
    let dora = app.user_token("dora", &[]).await;
    let dora_id = json_of(app.get_bearer("/api/me", &dora).await).await["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let created = stdout_json(
        &env.cli(&["clients", "create", "--client-id", "cli-svc"])
            .await,
    );
    let secret = crate::helpers::secret_of(&created);
    let listed = stdout_json(&env.cli(&["clients", "list"]).await);
    assert!(listed.to_string().contains("\"cli-svc\"") && !listed.to_string().contains(&secret));
    let rotated = stdout_json(&env.cli(&["clients", "rotate-secret", "cli-svc"]).await);
    assert_ne!(crate::helpers::secret_of(&rotated), secret);
    let deleted = stdout_json(&env.cli(&["clients", "delete", "cli-svc"]).await);
    assert_eq!(deleted["deleted"], "cli-svc");
    let listed = stdout_json(&env.cli(&["clients", "list"]).await);
    assert!(!listed.to_string().contains("\"cli-svc\""), "{listed}");
    let again = env.cli(&["clients", "delete", "cli-svc"]).await;
    assert!(
        !again.status.success(),
        "an unknown client cannot be deleted"
    );

    for args in [
        ["users", "add-role", "dora", "auditor"],
        ["users", "remove-role", "dora", "auditor"],
    ] {
        stdout_json(&env.cli(&args).await);
    }
    stdout_json(&env.cli(&["users", "disable", "dora"]).await);

    let events = json_of(app.get_bearer("/admin/audit?limit=500", &admin).await).await;
    let by_cli: Vec<(String, String)> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["actor"] == "cli")
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_owned(),
                e["subject"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let mut expected: Vec<(String, String)> = [
        ("client_created", "cli-svc"),
        ("client_secret_rotated", "cli-svc"),
        ("client_deleted", "cli-svc"),
        ("role_granted", dora_id.as_str()),
        ("role_withdrawn", dora_id.as_str()),
        ("user_disabled", dora_id.as_str()),
        // The disable's secondary record (sessions ended) names the CLI as the actor (ADM-08).
        ("disabled", dora_id.as_str()),
    ]
    .iter()
    .map(|(a, s)| ((*a).to_owned(), (*s).to_owned()))
    .collect();
    let mut found = by_cli.clone();
    found.sort();
    expected.sort();
    assert_eq!(
        found, expected,
        "one record per change, none for the refused delete"
    );
}

// Users' record timestamps come from the server's clock (not the system time): registration,
// a role change and disabling, after the clock moved forward.
async fn user_records_are_dated_by_the_servers_clock(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let app = env.spawn().await;
    let ahead = std::time::Duration::from_secs(2 * 86_400);
    app.advance(ahead);
    let later = chrono::Utc::now() + chrono::Duration::days(2) - chrono::Duration::minutes(1);
    let at = |user: &Value, field: &str| {
        chrono::DateTime::parse_from_rfc3339(user[field].as_str().unwrap())
            .unwrap_or_else(|e| panic!("{field} in {user}: {e}"))
    };
    let registered = app.register("erin").await;
    for field in ["created_at", "updated_at", "password_changed_at"] {
        assert!(at(&registered, field) > later, "{field}: {registered}");
    }
    let admin = app.user_token("root", &["admin"]).await;
    let granted = json_of(
        app.post_bearer("/admin/users/erin/roles/auditor", &admin)
            .await,
    )
    .await;
    assert!(at(&granted, "updated_at") > later, "{granted}");
    let disabled = json_of(app.post_bearer("/admin/users/erin/disable", &admin).await).await;
    assert!(at(&disabled, "disabled_at") > later, "{disabled}");
    app.stop().await;
}

on_both_backends!(
    user_records_are_dated_by_the_servers_clock,
    cli_client_and_user_changes_are_audited,
    adm_01_only_admin_tokens_for_the_issuer_open_the_admin_api,
    adm_01_separate_admin_listener,
    adm_02_concurrent_rotations_and_audit,
    key_10_revoking_the_active_key,
    immediate_rotation_and_bad_parameters,
    admin_manages_clients_users_and_reads_the_audit,
    openapi_lists_every_route,
    admin_manages_roles_and_grants,
);
