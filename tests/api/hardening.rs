//! Security hardening (issue 13), on both backends: stale administrator power (ADM-04), the last
//! administrator (ADM-05), ambiguous identifiers (ADM-06), reserved client ids (ADM-07), the
//! audit trail (ADM-08), the admin API under a custom audience (ADM-09), unbounded state from
//! anonymous requests (DOS-07, DOS-08), lockout (LOGIN-09), logout CSRF and safe methods
//! (LOGOUT-01..04), cookie endpoints without JSON (CSRF-01), and introspection callers (REV-07).

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{
    Backend, ClientSpec, Fixture, PASSWORD, REDIRECT, Sent, TestApp, TestEnv, browser,
    client_secret, enc, hidden, json_of, location_params, param, pkce, stdout_json,
};
use crate::on_both_backends;

/// The id of a user, from the admin API.
async fn user_id(app: &TestApp, admin: &str, username: &str) -> String {
    let users = json_of(app.get_bearer("/admin/users", admin).await).await;
    users["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == username)
        .unwrap_or_else(|| panic!("{username} listed"))["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Audit events, newest first.
async fn audit(app: &TestApp, admin: &str) -> Vec<Value> {
    json_of(app.get_bearer("/admin/audit?limit=500", admin).await).await["events"]
        .as_array()
        .unwrap()
        .clone()
}

fn detail(event: &Value) -> Value {
    serde_json::from_str(event["detail"].as_str().expect("detail")).expect("detail is JSON")
}

// ADM-04: a demoted or disabled administrator's token loses its power at once — the admin API
// reads the roles and the account state from the database, not from the token.
async fn adm_04_demoted_or_disabled_admin_loses_power_at_once(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let app = env.spawn().await;
    let root = app.user_token("root", &["admin"]).await;
    let stale = app.user_token("mallory", &["admin"]).await;
    app.user_token("bob", &[]).await;
    let mallory = user_id(&app, &root, "mallory").await;

    // Demoted: the old token still has `roles: ["admin"]`, and is refused (403), and the attempt
    // is recorded; bob does not become an administrator.
    let demoted = app
        .delete_bearer("/admin/users/mallory/roles/admin", &root)
        .await;
    assert_eq!(demoted.status(), StatusCode::OK);
    let escalate = app
        .post_bearer("/admin/users/bob/roles/admin", &stale)
        .await;
    assert_eq!(escalate.status(), StatusCode::FORBIDDEN);
    assert_eq!(json_of(escalate).await["error"], "insufficient_scope");
    let bob = json_of(app.get_bearer("/admin/users", &root).await).await["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "bob")
        .unwrap()
        .clone();
    assert_eq!(bob["roles"], json!([]), "nothing was granted");
    let refused = audit(&app, &root).await;
    let record = refused
        .iter()
        .find(|e| e["action"] == "admin_request_refused")
        .expect("the refused call is in the audit trail (ADM-08)");
    assert_eq!(record["actor"], mallory.as_str());
    assert_eq!(detail(record)["path"], "/admin/users/bob/roles/admin");
    // Refused calls are recorded up to a bound per user (then only logged): a signed-in user
    // cannot grow the audit trail without limit.
    for _ in 0..25 {
        let again = app
            .post_bearer("/admin/users/bob/roles/admin", &stale)
            .await;
        assert_eq!(again.status(), StatusCode::FORBIDDEN);
    }
    let recorded = audit(&app, &root)
        .await
        .iter()
        .filter(|e| e["action"] == "admin_request_refused")
        .count();
    assert_eq!(recorded, 20);
    // The same token still works where no role is needed: the user is current.
    assert_eq!(
        app.get_bearer("/api/me", &stale).await.status(),
        StatusCode::OK
    );

    // Disabled: the token speaks for nobody, on every endpoint that acts for the user.
    let again = app.user_token("trent", &["admin"]).await;
    assert_eq!(
        app.post_bearer("/admin/users/trent/disable", &root)
            .await
            .status(),
        StatusCode::OK
    );
    for (method, path) in [
        (reqwest::Method::GET, "/admin/keys"),
        (reqwest::Method::POST, "/admin/users/bob/roles/admin"),
        (reqwest::Method::GET, "/api/me"),
        (reqwest::Method::POST, "/api/auth/logout-all"),
    ] {
        let response = app.send(method.clone(), path, &again, None).await;
        assert_eq!(
            response.status(),
            StatusCode::UNAUTHORIZED,
            "{method} {path}"
        );
        assert!(
            response.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .contains("invalid_token")
        );
    }
}

// ADM-04: logout everywhere, a password change and an administrator's revoke-sessions end the
// JSON API's access tokens (not only the refresh tokens), on every instance.
async fn adm_04_logout_all_and_password_change_end_access_tokens_everywhere(backend: Backend) {
    let env = TestEnv::new(backend).await;
    // Two instances of one deployment: one database, one issuer.
    let args = portcullis::config::SettingsArgs {
        issuer: Some("http://127.0.0.1:8080".into()),
        ..env.args()
    };
    let first = env.spawn_with(args.clone()).await;
    let second = env.spawn_with(args).await;
    let root = first.user_token("root", &["admin"]).await;

    // Logout everywhere through instance 1: instance 2 refuses the old access token at once.
    let alice = first.user_token("alice", &[]).await;
    assert_eq!(
        second.get_bearer("/api/me", &alice).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        first
            .post_bearer("/api/auth/logout-all", &alice)
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        second.get_bearer("/api/me", &alice).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        first.get_bearer("/api/me", &alice).await.status(),
        StatusCode::UNAUTHORIZED
    );
    // A new login works again at once.
    let fresh = first.session("alice").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        second.get_bearer("/api/me", &fresh).await.status(),
        StatusCode::OK
    );

    // A password change (CLI) ends it too.
    let output = env
        .cli_with_stdin(
            &["users", "set-password", "alice"],
            &format!("{PASSWORD} again\n"),
        )
        .await;
    stdout_json(&output);
    assert_eq!(
        second.get_bearer("/api/me", &fresh).await.status(),
        StatusCode::UNAUTHORIZED
    );

    // An administrator's revoke-sessions ends an admin's own access token as well.
    let other = first.user_token("other", &["admin"]).await;
    assert_eq!(
        second
            .post_bearer("/admin/users/other/revoke-sessions", &root)
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        first.get_bearer("/admin/keys", &other).await.status(),
        StatusCode::UNAUTHORIZED
    );
    // The secondary record names the administrator who acted, not the subject (ADM-08).
    let events = audit(&first, &root).await;
    let root_id = user_id(&first, &root, "root").await;
    let revoked = events
        .iter()
        .find(|e| e["action"] == "admin_revoked")
        .expect("admin_revoked recorded");
    assert_eq!(revoked["actor"], root_id.as_str());
}

// ADM-04: OAuth tokens follow the user's state too: userinfo and introspection refuse the
// access token of a user who logged out everywhere or was disabled.
async fn adm_04_oauth_tokens_follow_the_user_state(backend: Backend) {
    let f = Fixture::new(backend).await;
    let (code, verifier) = f.code(&browser(), "openid profile").await;
    let tokens = json_of(f.exchange(&code, &verifier).await).await;
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        f.app.get_bearer("/userinfo", &access).await.status(),
        StatusCode::OK
    );
    let active = json_of(f.token_like("/introspect", &[("token", &access)]).await).await;
    assert_eq!(active["active"], true);

    // alice logs out everywhere through the JSON API.
    let session = f.app.session("alice").await;
    let json_token = session["access_token"].as_str().unwrap();
    assert_eq!(
        f.app
            .post_bearer("/api/auth/logout-all", json_token)
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        f.app.get_bearer("/userinfo", &access).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let inactive = json_of(f.token_like("/introspect", &[("token", &access)]).await).await;
    assert_eq!(inactive, json!({ "active": false }));

    // Disabled: a fresh code-flow token is refused too.
    let (code, verifier) = f.code(&browser(), "openid profile").await;
    let tokens = json_of(f.exchange(&code, &verifier).await).await;
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        f.app.get_bearer("/userinfo", &access).await.status(),
        StatusCode::OK
    );
    stdout_json(&f.env.cli(&["users", "disable", "alice"]).await);
    assert_eq!(
        f.app.get_bearer("/userinfo", &access).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let inactive = json_of(f.token_like("/introspect", &[("token", &access)]).await).await;
    assert_eq!(inactive, json!({ "active": false }));
}

// ADM-05: the last enabled administrator cannot remove their own admin role or disable
// themselves (API and CLI); with a second administrator both are allowed.
async fn adm_05_the_last_administrator_stays(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let app = env.spawn().await;
    let root = app.user_token("root", &["admin"]).await;
    for (method, path) in [
        (reqwest::Method::DELETE, "/admin/users/root/roles/admin"),
        (reqwest::Method::POST, "/admin/users/root/disable"),
    ] {
        let refused = app.send(method.clone(), path, &root, None).await;
        assert_eq!(refused.status(), StatusCode::CONFLICT, "{method} {path}");
        assert_eq!(json_of(refused).await["error"], "last_admin");
    }
    let cli = env.cli(&["users", "remove-role", "root", "admin"]).await;
    assert!(!cli.status.success(), "the CLI refuses it too");
    // Still an administrator, still enabled, and nothing was recorded as a change.
    assert_eq!(
        app.get_bearer("/admin/keys", &root).await.status(),
        StatusCode::OK
    );
    assert!(
        !audit(&app, &root)
            .await
            .iter()
            .any(|e| e["action"] == "role_withdrawn" || e["action"] == "user_disabled")
    );
    // A second administrator: now root may step down.
    app.user_token("deputy", &["admin"]).await;
    let stepped = app
        .delete_bearer("/admin/users/root/roles/admin", &root)
        .await;
    assert_eq!(stepped.status(), StatusCode::OK);
}

// ADM-06: a username shaped like a user id is refused (registration, CLI), and a name that
// matches one user's id and another's username is refused as ambiguous, changing nothing.
async fn adm_06_identifiers_are_unambiguous(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let app = env.spawn().await;
    let root = app.user_token("root", &["admin"]).await;
    app.user_token("victim", &[]).await;
    let victim = user_id(&app, &root, "victim").await;

    let register = app
        .client
        .post(format!("{}/api/auth/register", app.address))
        .json(&json!({ "username": victim, "email": "x@example.com", "password": PASSWORD }))
        .sent()
        .await;
    assert_eq!(register.status(), StatusCode::BAD_REQUEST);
    assert!(
        json_of(register).await["error_description"]
            .as_str()
            .unwrap()
            .contains("user id")
    );
    let cli = env
        .cli_with_stdin(
            &[
                "users",
                "create",
                "--username",
                &victim,
                "--email",
                "y@example.com",
            ],
            &format!("{PASSWORD}\n"),
        )
        .await;
    assert!(!cli.status.success());

    // A row made before the rule: its username is the victim's id.
    let squatter = victim.clone();
    env.with_db(move |conn| {
        use diesel::prelude::*;
        use portcullis::db::schema::users;
        let now = chrono::Utc::now().naive_utc();
        diesel::insert_into(users::table)
            .values((
                users::id.eq(uuid::Uuid::new_v4().to_string()),
                users::username.eq(&squatter),
                users::username_normalized.eq(&squatter),
                users::email.eq("squatter@example.com"),
                users::email_normalized.eq("squatter@example.com"),
                users::password_hash.eq("x"),
                users::created_at.eq(now),
                users::updated_at.eq(now),
                users::password_changed_at.eq(now),
            ))
            .execute(conn)
            .unwrap();
    })
    .await;
    let ambiguous = app
        .post_bearer(&format!("/admin/users/{victim}/disable"), &root)
        .await;
    assert_eq!(ambiguous.status(), StatusCode::CONFLICT);
    assert_eq!(json_of(ambiguous).await["error"], "ambiguous_user");
    let cli = env.cli(&["users", "disable", &victim]).await;
    assert!(!cli.status.success(), "the CLI refuses it too");
    let users = json_of(app.get_bearer("/admin/users", &root).await).await;
    assert!(
        users["users"]
            .as_array()
            .unwrap()
            .iter()
            .all(|u| u["disabled"] == false),
        "nobody was disabled: {users}"
    );
}

// ADM-07: `portcullis` (the JSON API's client id) cannot be registered, in any case.
async fn adm_07_the_first_party_client_id_is_reserved(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let app = env.spawn().await;
    let root = app.user_token("root", &["admin"]).await;
    for id in ["portcullis", "Portcullis"] {
        let refused = app
            .send(
                reqwest::Method::POST,
                "/admin/clients",
                &root,
                Some(json!({ "client_id": id, "audiences": [app.issuer] })),
            )
            .await;
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST, "{id}");
        let cli = env.cli(&["clients", "create", "--client-id", id]).await;
        assert!(!cli.status.success(), "{id}");
    }
}

// ADM-08: every administrative change records actor, subject and what changed (old → new, no
// secret); a request that changes nothing records nothing.
async fn adm_08_the_audit_trail_says_what_changed(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let app = env.spawn().await;
    let root = app.user_token("root", &["admin"]).await;
    app.user_token("bob", &[]).await;
    let root_id = user_id(&app, &root, "root").await;
    let bob = user_id(&app, &root, "bob").await;

    // A role never held: no change, no record.
    let none = app
        .delete_bearer("/admin/users/bob/roles/admin", &root)
        .await;
    assert_eq!(none.status(), StatusCode::OK);
    assert!(
        !audit(&app, &root)
            .await
            .iter()
            .any(|e| e["action"] == "role_withdrawn")
    );
    // Granted, then granted again (no second record).
    for _ in 0..2 {
        assert_eq!(
            app.post_bearer("/admin/users/bob/roles/admin", &root)
                .await
                .status(),
            StatusCode::OK
        );
    }
    let events = audit(&app, &root).await;
    let granted: Vec<&Value> = events
        .iter()
        .filter(|e| e["action"] == "role_granted")
        .collect();
    assert_eq!(granted.len(), 1, "{events:?}");
    assert_eq!(granted[0]["actor"], root_id.as_str());
    assert_eq!(granted[0]["subject"], bob.as_str());
    assert_eq!(
        detail(granted[0]),
        json!({ "role": "admin", "roles": { "old": [], "new": ["admin"] } })
    );

    // A client: creation records its metadata and never its secret; redirect URIs old → new.
    let created = json_of(
        app.send(
            reqwest::Method::POST,
            "/admin/clients",
            &root,
            Some(json!({ "client_id": "shop", "redirect_uris": ["https://shop.example/cb"] })),
        )
        .await,
    )
    .await;
    let secret = created["client_secret"].as_str().unwrap().to_owned();
    let changed = app
        .send(
            reqwest::Method::PUT,
            "/admin/clients/shop/redirect-uris",
            &root,
            Some(json!({ "redirect_uris": ["https://shop.example/new"] })),
        )
        .await;
    assert_eq!(changed.status(), StatusCode::OK);
    assert_eq!(
        app.post_bearer("/admin/clients/shop/rotate-secret", &root)
            .await
            .status(),
        StatusCode::OK
    );
    let events = audit(&app, &root).await;
    let text = serde_json::to_string(&events).unwrap();
    assert!(!text.contains(&secret), "no secret in the audit trail");
    let creation = events
        .iter()
        .find(|e| e["action"] == "client_created")
        .unwrap();
    assert_eq!(
        detail(creation)["client"]["redirect_uris"],
        json!(["https://shop.example/cb"])
    );
    let uris = events
        .iter()
        .find(|e| e["action"] == "client_redirect_uris_changed")
        .unwrap();
    assert_eq!(
        detail(uris),
        json!({ "redirect_uris": { "old": ["https://shop.example/cb"], "new": ["https://shop.example/new"] } })
    );
    let rotated = events
        .iter()
        .find(|e| e["action"] == "client_secret_rotated")
        .unwrap();
    assert_eq!(detail(rotated), json!({ "client_secret": "replaced" }));
    // Disabling bob: the main record and the secondary one both name root as the actor.
    assert_eq!(
        app.post_bearer("/admin/users/bob/disable", &root)
            .await
            .status(),
        StatusCode::OK
    );
    let events = audit(&app, &root).await;
    for action in ["user_disabled", "disabled"] {
        let event = events.iter().find(|e| e["action"] == action).unwrap();
        assert_eq!(event["actor"], root_id.as_str(), "{action}");
        assert_eq!(event["subject"], bob.as_str(), "{action}");
    }
}

// ADM-09: with PORTCULLIS_ACCESS_TOKEN_AUDIENCE set, the JSON API's tokens still open the
// admin API for an administrator (and still not for anyone else).
async fn adm_09_admin_api_under_a_custom_audience(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let app = env
        .spawn_with(portcullis::config::SettingsArgs {
            access_token_audience: Some("https://api.example.com".into()),
            ..env.args()
        })
        .await;
    let root = app.user_token("root", &["admin"]).await;
    let user = app.user_token("bob", &[]).await;
    assert_eq!(
        app.get_bearer("/admin/keys", &root).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        app.get_bearer("/admin/keys", &user).await.status(),
        StatusCode::FORBIDDEN
    );
}

/// A server that believes `X-Forwarded-For` from loopback, so a test can speak from many
/// client addresses.
async fn behind_proxy(env: &TestEnv, extra: portcullis::config::SettingsArgs) -> TestApp {
    env.spawn_with(portcullis::config::SettingsArgs {
        trusted_proxies: Some("127.0.0.1".into()),
        ..extra
    })
    .await
}

async fn login_from(
    app: &TestApp,
    client: &reqwest::Client,
    ip: &str,
    username: &str,
    password: &str,
) -> StatusCode {
    client
        .post(format!("{}/api/auth/login", app.address))
        .header("X-Forwarded-For", ip)
        .json(&json!({ "username": username, "password": password }))
        .sent()
        .await
        .status()
}

// LOGIN-09: failures from one network never lock the owner out elsewhere; a distributed guesser
// is held to the per-account budget, and a device that signed in before keeps its own budget;
// an IPv6 /64 is one network (DOS-08).
async fn login_09_no_lockout_of_the_owner(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let args = portcullis::config::SettingsArgs {
        login_max_attempts_per_account: Some(8),
        ..env.args()
    };
    let app = behind_proxy(&env, args).await;
    app.user_token("alice", &[]).await;
    app.user_token("bob", &[]).await;
    let attacker = reqwest::Client::new();
    for _ in 0..5 {
        let status = login_from(&app, &attacker, "198.51.100.1", "alice", "wrong password!").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        login_from(&app, &attacker, "198.51.100.1", "alice", PASSWORD).await,
        StatusCode::TOO_MANY_REQUESTS,
        "the guessing network is throttled for this account"
    );
    // The owner, elsewhere, signs in; their client keeps the device cookie.
    let owner = browser();
    assert_eq!(
        login_from(&app, &owner, "203.0.113.9", "alice", PASSWORD).await,
        StatusCode::OK
    );

    // A distributed guesser: one attempt from each of many networks, until the per-account
    // budget for untrusted devices is spent.
    let mut statuses = Vec::new();
    for i in 10..16 {
        statuses.push(
            login_from(
                &app,
                &attacker,
                &format!("198.51.100.{i}"),
                "alice",
                "nope nope nope",
            )
            .await,
        );
    }
    assert_eq!(
        statuses.last(),
        Some(&StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    // A new, untrusted device with the right password waits as well...
    assert_eq!(
        login_from(
            &app,
            &reqwest::Client::new(),
            "192.0.2.77",
            "alice",
            PASSWORD
        )
        .await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // ... but the owner's device, from yet another network, is not locked out.
    assert_eq!(
        login_from(&app, &owner, "192.0.2.78", "alice", PASSWORD).await,
        StatusCode::OK
    );

    // IPv6: the addresses of one /64 share the per-network budget; another /64 does not.
    for i in 1..=5 {
        let status = login_from(
            &app,
            &attacker,
            &format!("2001:db8::{i}"),
            "bob",
            "wrong password!",
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        login_from(&app, &attacker, "2001:db8::ffff:1", "bob", PASSWORD).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        login_from(
            &app,
            &reqwest::Client::new(),
            "2001:db8:0:1::1",
            "bob",
            PASSWORD
        )
        .await,
        StatusCode::OK
    );
}

// DOS-07: what anonymous requests can make the server store is bounded: sizes of state and
// nonce, pending requests per browser and per network, throttle rows of a throttled client;
// and the janitor drains any backlog in one run.
async fn dos_07_anonymous_state_is_bounded(backend: Backend) {
    let f = Fixture::new(backend).await;
    let challenge = pkce(&"v".repeat(43));
    let base = format!(
        "response_type=code&client_id=webapp&redirect_uri={}&scope=openid&code_challenge={challenge}&code_challenge_method=S256",
        enc(REDIRECT)
    );
    let long_state = f
        .app
        .client
        .get(f.url(&format!("{base}&state={}", "s".repeat(2049))))
        .sent()
        .await;
    assert_eq!(long_state.status(), StatusCode::BAD_REQUEST);
    assert!(long_state.headers().get("location").is_none());
    let long_nonce = f
        .app
        .client
        .get(f.url(&format!("{base}&state=ok&nonce={}", "n".repeat(513))))
        .sent()
        .await;
    assert_eq!(long_nonce.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        param(&location_params(&long_nonce).1, "error").as_deref(),
        Some("invalid_request")
    );
    assert_eq!(f.env.count_rows("authorization_requests").await, 0);

    // One browser keeps its newest 16 pending requests.
    let tabs = browser();
    for _ in 0..20 {
        let page = tabs.get(f.url(&base)).sent().await;
        assert_eq!(page.status(), StatusCode::OK);
    }
    assert_eq!(f.env.count_rows("authorization_requests").await, 16);

    // One network (new browsers each time) may start 300 requests per request lifetime; then
    // 429, and nothing is stored.
    for i in 20..300 {
        let status = f.app.client.get(f.url(&base)).sent().await.status();
        assert_eq!(status, StatusCode::OK, "request {i}");
    }
    let refused = f.app.client.get(f.url(&base)).sent().await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(refused.headers().get("retry-after").is_some());
    assert_eq!(f.env.count_rows("authorization_requests").await, 296);

    // The janitor deletes every expired request in one run, however many.
    f.env
        .with_db(|conn| {
            use diesel::prelude::*;
            use portcullis::db::schema::authorization_requests as requests;
            let past = chrono::Utc::now().naive_utc() - chrono::Duration::minutes(1);
            diesel::update(requests::table)
                .set(requests::expires_at.eq(past))
                .execute(conn)
                .unwrap();
        })
        .await;
    let expired: Vec<_> = (0..2700)
        .map(|i| {
            format!(
                "('old{i}', 'b', 'c', 'webapp', 'r', 0, 'openid', 'x', 0, '2000-01-01 00:00:00')"
            )
        })
        .collect();
    let insert = format!(
        "INSERT INTO authorization_requests (id, browser_hash, csrf_hash, client_id, redirect_uri, redirect_uri_sent, scope, code_challenge, force_login, expires_at) VALUES {}",
        expired.join(", ")
    );
    f.env
        .with_db(move |conn| {
            use diesel::prelude::*;
            diesel::sql_query(insert).execute(conn).unwrap();
        })
        .await;
    assert_eq!(f.env.count_rows("authorization_requests").await, 2996);
    portcullis::startup::purge_expired(&f.app.state).await;
    assert_eq!(f.env.count_rows("authorization_requests").await, 0);
}

// DOS-07: a client over its per-network login budget creates no more throttle rows, however
// many usernames it tries.
async fn dos_07_throttled_client_creates_no_throttle_rows(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let app = env.spawn().await;
    for i in 0..20 {
        let status = login_from(
            &app,
            &app.client,
            "-",
            &format!("ghost{i}"),
            "whatever password",
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let rows = env.count_rows("login_attempts").await;
    for i in 0..50 {
        let status = login_from(
            &app,
            &app.client,
            "-",
            &format!("phantom{i}"),
            "whatever password",
        )
        .await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    }
    assert_eq!(env.count_rows("login_attempts").await, rows);
}

/// `prompt=none` for `webapp` in `browser`: the code, or the error.
async fn silent(f: &Fixture, browser: &reqwest::Client) -> Result<String, String> {
    let challenge = pkce(&"v".repeat(43));
    let response = browser
        .get(f.url(&format!(
            "response_type=code&client_id=webapp&redirect_uri={}&scope=openid&prompt=none&code_challenge={challenge}&code_challenge_method=S256",
            enc(REDIRECT)
        )))
        .sent().await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let (_, params) = location_params(&response);
    param(&params, "code").ok_or_else(|| param(&params, "error").unwrap_or_default())
}

// LOGOUT-01: a navigation to /logout without a hint for this session asks the user; a forged
// POST without the session-bound CSRF token ends nothing; the confirmed POST ends the session.
async fn logout_01_logout_needs_confirmation(backend: Backend) {
    let f = Fixture::new(backend).await;
    let browser = browser();
    f.code(&browser, "openid").await;
    let asked = browser
        .get(format!("{}/logout", f.app.address))
        .sent()
        .await;
    assert_eq!(asked.status(), StatusCode::OK);
    let html = asked.text().await.unwrap();
    assert!(html.contains("Sign out?"), "{html}");
    let csrf = hidden(&html, "csrf_token");
    assert!(
        silent(&f, &browser).await.is_ok(),
        "still signed in after the GET"
    );
    let forged = browser
        .post(format!("{}/logout", f.app.address))
        .form(&[("decision", "sign_out"), ("csrf_token", "forged")])
        .sent()
        .await;
    assert_eq!(forged.status(), StatusCode::OK);
    assert!(forged.text().await.unwrap().contains("Sign out?"));
    assert!(
        silent(&f, &browser).await.is_ok(),
        "still signed in after a forged POST"
    );
    let stay = browser
        .post(format!("{}/logout", f.app.address))
        .form(&[("decision", "stay"), ("csrf_token", csrf.as_str())])
        .sent()
        .await;
    assert_eq!(stay.status(), StatusCode::OK);
    assert!(
        silent(&f, &browser).await.is_ok(),
        "still signed in after 'stay'"
    );
    let confirmed = browser
        .post(format!("{}/logout", f.app.address))
        .form(&[("decision", "sign_out"), ("csrf_token", csrf.as_str())])
        .sent()
        .await;
    assert_eq!(confirmed.status(), StatusCode::OK);
    assert!(
        confirmed
            .text()
            .await
            .unwrap()
            .contains("You are signed out")
    );
    assert_eq!(silent(&f, &browser).await, Err("login_required".into()));
}

// LOGOUT-02: a request without the session's cookie ends no session, whatever ID token it
// carries; LOGOUT-04: a valid hint for this browser's own session ends it at once.
async fn logout_02_an_id_token_alone_ends_nothing(backend: Backend) {
    let f = Fixture::new(backend).await;
    let victim = browser();
    let (code, verifier) = f.code(&victim, "openid").await;
    let tokens = json_of(f.exchange(&code, &verifier).await).await;
    let id_token = tokens["id_token"].as_str().unwrap();
    let stranger = browser();
    let response = stranger
        .get(format!("{}/logout?id_token_hint={id_token}", f.app.address))
        .sent()
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        silent(&f, &victim).await.is_ok(),
        "the victim is still signed in"
    );
    // A valid hint for another session (another browser of the same user), sent with the
    // victim's cookie: the victim is asked, not signed out.
    let other = browser();
    let (code, verifier) = f.code(&other, "openid").await;
    let other_tokens = json_of(f.exchange(&code, &verifier).await).await;
    let other_hint = other_tokens["id_token"].as_str().unwrap();
    let asked = victim
        .get(format!(
            "{}/logout?id_token_hint={other_hint}",
            f.app.address
        ))
        .sent()
        .await;
    assert!(asked.text().await.unwrap().contains("Sign out?"));
    assert!(
        silent(&f, &victim).await.is_ok(),
        "a hint for another session ends nothing"
    );
    let own = victim
        .get(format!("{}/logout?id_token_hint={id_token}", f.app.address))
        .sent()
        .await;
    assert!(own.text().await.unwrap().contains("You are signed out"));
    assert_eq!(silent(&f, &victim).await, Err("login_required".into()));
}

// LOGOUT-03: HEAD changes nothing: HEAD /logout ends no session, HEAD /authorize with a session
// issues no code and stores no request.
async fn logout_03_safe_methods_change_nothing(backend: Backend) {
    let f = Fixture::new(backend).await;
    let browser = browser();
    f.code(&browser, "openid").await;
    let head = browser
        .head(format!("{}/logout", f.app.address))
        .sent()
        .await;
    assert_eq!(head.status(), StatusCode::OK);
    assert!(
        silent(&f, &browser).await.is_ok(),
        "HEAD /logout ended nothing"
    );
    let codes = f.env.count_rows("authorization_codes").await;
    let requests = f.env.count_rows("authorization_requests").await;
    let challenge = pkce(&"v".repeat(43));
    let head = browser
        .head(f.url(&format!(
            "response_type=code&client_id=webapp&redirect_uri={}&scope=openid&code_challenge={challenge}&code_challenge_method=S256",
            enc(REDIRECT)
        )))
        .sent().await;
    assert_eq!(head.status(), StatusCode::OK);
    assert!(head.headers().get("location").is_none());
    assert_eq!(f.env.count_rows("authorization_codes").await, codes);
    assert_eq!(f.env.count_rows("authorization_requests").await, requests);
}

// CSRF-01: the cookie-driven JSON endpoints (refresh, logout) want application/json even with
// an empty body, so a cross-site form cannot drive them.
async fn csrf_01_cookie_endpoints_want_json(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let app = env.spawn().await;
    app.user_token("alice", &[]).await;
    let jar = browser();
    let login = jar
        .post(format!("{}/api/auth/login", app.address))
        .json(&json!({ "username": "alice", "password": PASSWORD }))
        .sent()
        .await;
    assert_eq!(login.status(), StatusCode::OK);
    for path in ["/api/auth/refresh", "/api/auth/logout"] {
        for (what, content_type, body) in [
            ("without a type", None, None),
            (
                "as a form",
                Some("application/x-www-form-urlencoded"),
                Some(""),
            ),
            ("as text", Some("text/plain"), None),
        ] {
            let mut request = jar.post(app.url(path));
            if let Some(content_type) = content_type {
                request = request.header("Content-Type", content_type);
            }
            if let Some(body) = body {
                request = request.body(body);
            }
            assert_eq!(
                request.sent().await.status(),
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "{path} {what}"
            );
        }
    }
    let refreshed = jar
        .post(format!("{}/api/auth/refresh", app.address))
        .header("Content-Type", "application/json")
        .sent()
        .await;
    assert_eq!(
        refreshed.status(),
        StatusCode::OK,
        "the cookie still works with JSON"
    );
}

// REV-07: a client introspects its own tokens, and a resource server registered for an
// audience introspects tokens for it; anyone else learns `active: false`.
async fn rev_07_introspection_callers_are_authorized(backend: Backend) {
    let f = Fixture::new(backend).await;
    let (code, verifier) = f.code(&browser(), "openid offline_access").await;
    let tokens = json_of(f.exchange(&code, &verifier).await).await;
    let access = tokens["access_token"].as_str().unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let stranger = client_secret(&f.app.create_client(ClientSpec::new("stranger")).await);
    let api = client_secret(
        &f.app
            .create_client(
                ClientSpec::new("orders-api").introspection_audience("https://api.example.com"),
            )
            .await,
    );
    let introspect = |id: &'static str, secret: String, token: String| {
        let app = &f.app;
        async move {
            let response = app
                .client
                .post(format!("{}/introspect", app.address))
                .basic_auth(id, Some(secret))
                .form(&[("token", token)])
                .sent()
                .await;
            assert_eq!(response.status(), StatusCode::OK);
            response.json::<Value>().await.unwrap()
        }
    };
    assert_eq!(
        introspect("webapp", f.secret.clone(), access.into()).await["active"],
        true
    );
    assert_eq!(
        introspect("webapp", f.secret.clone(), refresh.into()).await["active"],
        true
    );
    assert_eq!(
        introspect("stranger", stranger.clone(), access.into()).await,
        json!({ "active": false })
    );
    assert_eq!(
        introspect("stranger", stranger, refresh.into()).await,
        json!({ "active": false })
    );
    assert_eq!(
        introspect("orders-api", api.clone(), access.into()).await["active"],
        true
    );
    assert_eq!(
        introspect("orders-api", api, refresh.into()).await,
        json!({ "active": false }),
        "refresh tokens are their client's business only"
    );
}

on_both_backends!(
    adm_04_demoted_or_disabled_admin_loses_power_at_once,
    adm_04_logout_all_and_password_change_end_access_tokens_everywhere,
    adm_04_oauth_tokens_follow_the_user_state,
    adm_05_the_last_administrator_stays,
    adm_06_identifiers_are_unambiguous,
    adm_07_the_first_party_client_id_is_reserved,
    adm_08_the_audit_trail_says_what_changed,
    adm_09_admin_api_under_a_custom_audience,
    login_09_no_lockout_of_the_owner,
    dos_07_anonymous_state_is_bounded,
    dos_07_throttled_client_creates_no_throttle_rows,
    logout_01_logout_needs_confirmation,
    logout_02_an_id_token_alone_ends_nothing,
    logout_03_safe_methods_change_nothing,
    csrf_01_cookie_endpoints_want_json,
    rev_07_introspection_callers_are_authorized,
);
