//! Standard claims (OIDC Core §5.1), the `claims` parameter (§5.5), `acr`/`amr`, and email
//! validation (RFC 5322 addr-spec, IDNA): issue 15 items 4 and 9.

use serde_json::{Value, json};

use crate::helpers::{Backend, Fixture, PASSWORD, TestEnv, browser, stdout_json};
use crate::on_both_backends;

/// `POST /api/auth/register` with `email`.
async fn register_email(
    app: &crate::helpers::TestApp,
    username: &str,
    email: &str,
) -> reqwest::Response {
    app.post_json(
        "/api/auth/register",
        &json!({ "username": username, "email": email, "password": PASSWORD }),
    )
    .await
}

/// A 400 in the JSON API shape naming `field`.
async fn assert_invalid_field(response: reqwest::Response, field: &str) {
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request", "{body}");
    let description = body["error_description"].as_str().unwrap();
    assert!(
        description.starts_with(&format!("{field}: ")),
        "names {field}: {body}"
    );
}

// Issue 15 item 9: `u@@example.com` got 201, and an existing address with an invisible
// character appended registered a second, look-alike account.
async fn malformed_and_look_alike_emails_are_refused_at_registration(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let app = env.spawn().await;
    assert_eq!(
        register_email(&app, "alice", "alice@example.com")
            .await
            .status(),
        201
    );
    let before = env.count_rows("users").await;
    for (username, email) in [
        ("user5", "u@@example.com"),
        ("user6", "alice@example.com\u{200B}"),
        ("user7", "al\u{200D}ice@example.com"),
        ("user8", "alice@exam\u{200B}ple.com"),
        ("user9", "alice@example.com\u{202E}"),
        ("user10", "alice@\u{FEFF}example.com"),
        ("user11", "alice.@example.com"),
        ("user12", "alice@-example.com"),
        ("user13", "alice@[192.0.2.1]"),
    ] {
        let response = register_email(&app, username, email).await;
        assert_invalid_field(response, "email").await;
    }
    assert_eq!(env.count_rows("users").await, before, "nothing written");
    // Case and IDNA forms of the same address are the same account.
    let again = register_email(&app, "alice2", "ALICE@EXAMPLE.COM").await;
    assert_eq!(again.status(), 409);
    assert_eq!(
        register_email(&app, "bob", "bob@bücher.example")
            .await
            .status(),
        201
    );
    let punycode = register_email(&app, "bob2", "bob@xn--bcher-kva.example").await;
    assert_eq!(
        punycode.status(),
        409,
        "the A-label form is the same address"
    );
}

// The CLI refuses the same addresses; `users check` reports stored rows that no longer
// validate (written before the rule, or by hand) and changes nothing.
async fn the_cli_refuses_bad_emails_and_reports_stale_rows(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let refused = env
        .cli_with_stdin(
            &[
                "users",
                "create",
                "--username",
                "mallory",
                "--email",
                "u@@example.com",
            ],
            &format!("{PASSWORD}\n"),
        )
        .await;
    assert!(!refused.status.success());
    assert!(crate::helpers::stderr_of(&refused).contains("email"));
    env.cli_create_user("alice", &[]).await;
    env.cli_create_user("carol", &[]).await;
    let clean = env.cli(&["users", "check"]).await;
    assert!(
        clean.status.success(),
        "{}",
        crate::helpers::stderr_of(&clean)
    );
    assert_eq!(stdout_json(&clean), json!({ "stale": [] }));

    // A row from before the rule.
    env.with_db(|conn| {
        use diesel::RunQueryDsl;
        diesel::sql_query(
            "UPDATE users SET email = 'carol@example.com\u{200B}' WHERE username = 'carol'",
        )
        .execute(conn)
        .unwrap();
    })
    .await;
    let report = env.cli(&["users", "check"]).await;
    assert!(!report.status.success(), "non-zero when something is stale");
    let body: Value = serde_json::from_slice(&report.stdout).unwrap();
    let stale = body["stale"].as_array().unwrap();
    assert_eq!(stale.len(), 1, "{body}");
    assert_eq!(stale[0]["username"], "carol");
    assert_eq!(stale[0]["field"], "email");
    assert_eq!(stale[0]["value"], "carol@example.com\u{200B}");
    assert!(stale[0]["reason"].as_str().unwrap().contains("invisible"));
    // Reported, not changed.
    let users = stdout_json(&env.cli(&["users", "list"]).await);
    let carol = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "carol")
        .unwrap()
        .clone();
    assert_eq!(carol["email"], "carol@example.com\u{200B}");
}

/// Every standard claim, valid.
fn full_profile() -> Value {
    json!({
        "name": "Alice Liddell",
        "given_name": "Alice",
        "family_name": "Liddell",
        "middle_name": "Pleasance",
        "nickname": "Al",
        "profile": "https://example.com/alice",
        "picture": "https://example.com/alice.png",
        "website": "https://alice.example",
        "gender": "female",
        "birthdate": "1852-05-04",
        "zoneinfo": "Europe/London",
        "locale": "en-GB",
        "phone_number": "+441632960000",
        "address": {"street_address": "1 Rabbit Hole", "locality": "Oxford", "country": "UK"},
    })
}

async fn patch_json(
    app: &crate::helpers::TestApp,
    path: &str,
    token: &str,
    body: &Value,
) -> reqwest::Response {
    app.client
        .patch(app.url(path))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap()
}

// PATCH /api/me: the user sets their own claims (not the verified flags); every invalid value
// is a 400 naming its field, and nothing of a refused patch is written.
async fn users_edit_their_claims_with_validation(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let app = env.spawn().await;
    app.register("alice").await;
    let (token, _) = app.tokens("alice").await;
    let response = patch_json(&app, "/api/me", &token, &full_profile()).await;
    assert_eq!(response.status(), 200);
    let user: Value = response.json().await.unwrap();
    assert_eq!(user["claims"]["name"], "Alice Liddell");
    assert_eq!(user["claims"]["address"]["locality"], "Oxford");
    let me: Value = app.me(&token).await.json().await.unwrap();
    assert_eq!(me["claims"], user["claims"]);

    for (body, field) in [
        (json!({"picture": "javascript:alert(1)"}), "picture"),
        (json!({"website": "//example.com"}), "website"),
        (json!({"profile": "ftp://example.com/alice"}), "profile"),
        (json!({"locale": "en_GB"}), "locale"),
        (json!({"zoneinfo": "Mars/Olympus_Mons"}), "zoneinfo"),
        (json!({"birthdate": "1990-02-30"}), "birthdate"),
        (json!({"birthdate": "12/05/1990"}), "birthdate"),
        (json!({"phone_number": "01632 960000"}), "phone_number"),
        (json!({"address": {"planet": "Earth"}}), "address"),
        (json!({"email_verified": true}), "email_verified"),
        (
            json!({"phone_number_verified": true}),
            "phone_number_verified",
        ),
        (json!({"email": "u@@example.com"}), "email"),
        (json!({"email": "alice@example.com\u{200B}"}), "email"),
        (json!({"name": "Bob", "nickname": 5}), "nickname"),
    ] {
        let response = patch_json(&app, "/api/me", &token, &body).await;
        assert_invalid_field(response, field).await;
    }
    let zwsp = patch_json(
        &app,
        "/api/me",
        &token,
        &json!({"email": "alice@example.com\u{200B}"}),
    )
    .await;
    assert_invalid_field(zwsp, "email").await;
    let me: Value = app.me(&token).await.json().await.unwrap();
    assert_eq!(
        me["claims"], user["claims"],
        "nothing of a refused patch is written"
    );

    // Blank values are absent, never "".
    let cleared: Value = patch_json(
        &app,
        "/api/me",
        &token,
        &json!({"nickname": "", "middle_name": null, "name": "  "}),
    )
    .await
    .json()
    .await
    .unwrap();
    for claim in ["nickname", "middle_name", "name"] {
        assert!(cleared["claims"].get(claim).is_none(), "{claim}: {cleared}");
    }
    // An application's token for this API's audience speaks for alice but is not her login.
    {
        use crate::helpers::{
            ClientSpec, REDIRECT, client_secret, enc, location_params, param, pkce,
        };
        let partner = app
            .create_client(
                ClientSpec::new("partner")
                    .redirect_uri(REDIRECT)
                    .first_party(),
            )
            .await;
        let browser = browser();
        let verifier = "p".repeat(43);
        let url = app.url(&format!(
            "/authorize?response_type=code&client_id=partner&redirect_uri={}&scope=openid%20profile&state=s&code_challenge={}&code_challenge_method=S256",
            enc(REDIRECT),
            pkce(&verifier)
        ));
        let redirect = crate::helpers::sign_in(&browser, &app.address, &url, "alice").await;
        let (_, params) = location_params(&redirect);
        let code = param(&params, "code").expect("code");
        let tokens: Value = app
            .client
            .post(app.url("/token"))
            .basic_auth("partner", Some(client_secret(&partner)))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", REDIRECT),
                ("code_verifier", verifier.as_str()),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let partner_token = tokens["access_token"].as_str().unwrap();
        let refused = patch_json(
            &app,
            "/api/me",
            partner_token,
            &json!({"email": "mallory@example.com"}),
        )
        .await;
        assert_eq!(refused.status(), 403);
        let me: Value = app.me(&token).await.json().await.unwrap();
        assert_eq!(me["email"], "alice@example.com");
    }
    // Another account's email is taken.
    app.register("bob").await;
    let taken = patch_json(
        &app,
        "/api/me",
        &token,
        &json!({"email": "BOB@example.com"}),
    )
    .await;
    assert_eq!(taken.status(), 409);
    let moved = patch_json(
        &app,
        "/api/me",
        &token,
        &json!({"email": "alice@bücher.example"}),
    )
    .await;
    assert_eq!(moved.status(), 200);
}

// PATCH /admin/users/{user} and `users update`: an administrator sets the verified flags too.
async fn administrators_edit_claims_through_the_api_and_the_cli(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let app = env.spawn().await;
    let admin = app.admin_token().await;
    app.create_user("alice").await;
    let mut body = full_profile();
    body["email_verified"] = json!(true);
    body["phone_number_verified"] = json!(true);
    let response = patch_json(&app, "/admin/users/alice", &admin, &body).await;
    assert_eq!(response.status(), 200);
    let user: Value = response.json().await.unwrap();
    assert_eq!(user["claims"]["email_verified"], true);
    assert_eq!(user["claims"]["phone_number_verified"], true);
    let refused = patch_json(
        &app,
        "/admin/users/alice",
        &admin,
        &json!({"zoneinfo": "Nowhere/Land"}),
    )
    .await;
    assert_invalid_field(refused, "zoneinfo").await;
    let unknown = patch_json(&app, "/admin/users/nobody", &admin, &json!({"name": "X"})).await;
    assert_eq!(unknown.status(), 404);
    // A user's token does not open it.
    let (user_token, _) = app.signed_in("alice").await;
    let forbidden = patch_json(
        &app,
        "/admin/users/alice",
        &user_token,
        &json!({"name": "X"}),
    )
    .await;
    assert_eq!(forbidden.status(), 403);

    // The CLI: a new email resets email_verified; "" clears.
    let updated = stdout_json(
        &env.cli(&[
            "users",
            "update",
            "alice",
            "--email",
            "alice@example.org",
            "--nickname",
            "",
        ])
        .await,
    );
    assert_eq!(updated["email"], "alice@example.org");
    assert!(
        updated["claims"].get("email_verified").is_none(),
        "{updated}"
    );
    assert!(updated["claims"].get("nickname").is_none());
    let bad = env
        .cli(&["users", "update", "alice", "--locale", "not a tag"])
        .await;
    assert!(!bad.status.success());
    assert!(crate::helpers::stderr_of(&bad).contains("locale"));
    // `users check` is clean, and reports a claim that no longer validates.
    assert!(env.cli(&["users", "check"]).await.status.success());
    env.with_db(|conn| {
        use diesel::RunQueryDsl;
        diesel::sql_query("UPDATE user_claims SET claims = '{\"website\":\"ftp://x.example\"}'")
            .execute(conn)
            .unwrap();
    })
    .await;
    let report = env.cli(&["users", "check"]).await;
    assert!(!report.status.success());
    let body: Value = serde_json::from_slice(&report.stdout).unwrap();
    assert_eq!(body["stale"][0]["field"], "website", "{body}");
}

/// `/userinfo` with an access token for `scope` (alice's, through `webapp`).
async fn userinfo_for(f: &Fixture, scope: &str) -> Value {
    let (code, verifier) = f.code(&browser(), scope).await;
    let tokens: Value = f.exchange(&code, &verifier).await.json().await.unwrap();
    let info = f
        .app
        .get_bearer("/userinfo", tokens["access_token"].as_str().unwrap())
        .await;
    assert_eq!(info.status(), 200);
    info.json().await.unwrap()
}

fn members(value: &Value) -> Vec<&str> {
    let mut names: Vec<&str> = value
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    names.sort_unstable();
    names
}

// OIDC Core §5.4: each scope's claims, and only those, from userinfo; none blank.
async fn userinfo_returns_the_claims_of_each_scope(backend: Backend) {
    let f = Fixture::new(backend).await;
    let admin = f.app.admin_token().await;
    let mut body = full_profile();
    body["phone_number_verified"] = json!(true);
    let set = patch_json(&f.app, "/admin/users/alice", &admin, &body).await;
    assert_eq!(set.status(), 200);

    assert_eq!(members(&userinfo_for(&f, "openid").await), ["sub"]);
    let profile = userinfo_for(&f, "openid profile").await;
    assert_eq!(
        members(&profile),
        [
            "birthdate",
            "family_name",
            "gender",
            "given_name",
            "locale",
            "middle_name",
            "name",
            "nickname",
            "picture",
            "preferred_username",
            "profile",
            "sub",
            "updated_at",
            "website",
            "zoneinfo",
        ]
    );
    assert!(profile["updated_at"].is_i64());
    let email = userinfo_for(&f, "openid email").await;
    assert_eq!(members(&email), ["email", "email_verified", "sub"]);
    assert_eq!(email["email_verified"], false);
    let phone = userinfo_for(&f, "openid phone").await;
    assert_eq!(
        members(&phone),
        ["phone_number", "phone_number_verified", "sub"]
    );
    assert_eq!(phone["phone_number_verified"], true);
    let address = userinfo_for(&f, "openid address").await;
    assert_eq!(members(&address), ["address", "sub"]);
    assert_eq!(
        address["address"],
        json!({"street_address": "1 Rabbit Hole", "locality": "Oxford", "country": "UK"})
    );
    let all = userinfo_for(&f, "openid profile email phone address").await;
    assert_eq!(members(&all).len(), 15 + 2 + 2 + 1);
    for (name, value) in all.as_object().unwrap() {
        if let Some(text) = value.as_str() {
            assert!(!text.trim().is_empty(), "{name} is blank");
        }
    }

    // Discovery lists the scopes and claims.
    let discovery: Value = f
        .app
        .get("/.well-known/openid-configuration")
        .await
        .json()
        .await
        .unwrap();
    for scope in ["profile", "email", "phone", "address"] {
        assert!(
            discovery["scopes_supported"]
                .as_array()
                .unwrap()
                .contains(&json!(scope))
        );
    }
    for claim in ["name", "birthdate", "phone_number", "address", "updated_at"] {
        assert!(
            discovery["claims_supported"]
                .as_array()
                .unwrap()
                .contains(&json!(claim)),
            "{claim}"
        );
    }
}

/// The token response of a code for `scope` (alice's, through `webapp`).
async fn tokens_for(f: &Fixture, scope: &str) -> Value {
    let (code, verifier) = f.code(&browser(), scope).await;
    let response = f.exchange(&code, &verifier).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

// OIDC Core §5.4 (issue 15, C5): an ID token issued with an access token carries no scope
// claims; they come from userinfo. On refresh too.
async fn the_id_token_carries_no_scope_claims_when_an_access_token_is_issued(backend: Backend) {
    let f = Fixture::new(backend).await;
    let admin = f.app.admin_token().await;
    let set = patch_json(&f.app, "/admin/users/alice", &admin, &full_profile()).await;
    assert_eq!(set.status(), 200);
    let scope = "openid profile email phone address offline_access";
    let tokens = tokens_for(&f, scope).await;
    let refreshed: Value = f
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
        ])
        .await
        .json()
        .await
        .unwrap();
    for id_token in [&tokens["id_token"], &refreshed["id_token"]] {
        let claims = crate::helpers::decode_claims(id_token.as_str().unwrap());
        for (_, names) in portcullis::oidc::standard_claims::SCOPE_CLAIMS {
            for name in names {
                assert!(
                    claims.get(*name).is_none(),
                    "{name} in the ID token: {claims}"
                );
            }
        }
        assert!(claims["sub"].is_string());
    }
    let info = f
        .app
        .get_bearer("/userinfo", tokens["access_token"].as_str().unwrap())
        .await
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(info["email"], "alice@example.com");
    assert_eq!(info["name"], "Alice Liddell");
    assert_eq!(info["preferred_username"], "alice");
}

// OIDC Core §2, §3.1.2.1, RFC 8176 (issue 15, C8): every ID token names its authentication
// context class and method; `acr_values` with the advertised values is met, and values this
// server does not offer are answered with the class it has (acr is voluntary).
async fn id_tokens_carry_acr_and_amr(backend: Backend) {
    use crate::helpers::{REDIRECT, enc, location_params, param, pkce};
    let f = Fixture::new(backend).await;
    let discovery: Value = f
        .app
        .get("/.well-known/openid-configuration")
        .await
        .json()
        .await
        .unwrap();
    let supported: Vec<&str> = discovery["acr_values_supported"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(!supported.is_empty());
    for claim in ["acr", "amr"] {
        assert!(
            discovery["claims_supported"]
                .as_array()
                .unwrap()
                .contains(&json!(claim))
        );
    }
    let browser = browser();
    for acr_values in [supported.join(" "), "1 2".to_owned()] {
        let verifier = "v".repeat(43);
        let url = f.url(&format!(
            "response_type=code&client_id=webapp&redirect_uri={}&scope=openid&state=s&nonce=n&code_challenge={}&code_challenge_method=S256&acr_values={}",
            enc(REDIRECT),
            pkce(&verifier),
            enc(&acr_values)
        ));
        let first = browser.get(&url).send().await.unwrap();
        let response = if first.status() == 200 {
            crate::helpers::sign_in(&browser, &f.app.address, &url, "alice").await
        } else {
            first
        };
        assert_eq!(response.status(), 303);
        let (_, params) = location_params(&response);
        let code = param(&params, "code").expect("a code");
        let tokens: Value = f.exchange(&code, &verifier).await.json().await.unwrap();
        let claims = crate::helpers::decode_claims(tokens["id_token"].as_str().unwrap());
        let acr = claims["acr"].as_str().expect("acr");
        assert!(supported.contains(&acr), "{acr}");
        assert_eq!(claims["amr"], json!(["pwd"]));
    }
}

/// `POST /api/auth/login` naming the account by `login`: its status and user id (`sub`).
async fn login_as(app: &crate::helpers::TestApp, login: &str) -> (u16, Option<String>) {
    let response = app.login(login).await;
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    let sub = body["access_token"].as_str().map(|token| {
        crate::helpers::decode_claims(token)["sub"]
            .as_str()
            .unwrap()
            .to_owned()
    });
    (status, sub)
}

// An address with an internationalised domain is one account whichever IDNA form is typed
// (UTS #46: `bücher.example` is `xn--bcher-kva.example`): login, the admin API's lookup and
// registration uniqueness compare one key (the domain's U-label form), both directions. A row
// stored before keys were IDNA-normalised (its key the address lower-cased as typed) keeps
// working, and `users check` reports it without changing it.
async fn either_idna_form_of_an_email_finds_the_account(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let app = env.spawn().await;
    let admin = app.admin_token().await;
    for (username, registered, other) in [
        ("bob", "bob@bücher.example", "bob@xn--bcher-kva.example"),
        (
            "carol",
            "carol@xn--bcher-kva.example",
            "Carol@BÜCHER.example",
        ),
    ] {
        let created = register_email(&app, username, registered).await;
        assert_eq!(created.status(), 201, "{registered}");
        let id = created.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        for login in [registered, other] {
            assert_eq!(
                login_as(&app, login).await,
                (200, Some(id.clone())),
                "{login}"
            );
        }
        // The admin API names users by id, username or email (an empty patch changes nothing).
        let path = format!("/admin/users/{}", crate::helpers::enc(other));
        let found = patch_json(&app, &path, &admin, &json!({})).await;
        assert_eq!(found.status(), 200, "admin lookup by {other}");
        assert_eq!(found.json::<Value>().await.unwrap()["id"], json!(id));
        let twin = register_email(&app, &format!("{username}2"), other).await;
        assert_eq!(twin.status(), 409, "{other} is {registered}");
    }

    // A row from before IDNA keys: registered by A-label, keyed as typed.
    let dave = register_email(&app, "dave", "dave@example.org").await;
    assert_eq!(dave.status(), 201);
    env.with_db(|conn| {
        use diesel::RunQueryDsl;
        diesel::sql_query(
            "UPDATE users SET email = 'dave@xn--mnchen-3ya.example', \
             email_normalized = 'dave@xn--mnchen-3ya.example' WHERE username = 'dave'",
        )
        .execute(conn)
        .unwrap();
    })
    .await;
    for login in ["dave@xn--mnchen-3ya.example", "dave@münchen.example"] {
        assert_eq!(login_as(&app, login).await.0, 200, "{login}");
    }
    assert_eq!(
        register_email(&app, "dave2", "dave@münchen.example")
            .await
            .status(),
        409,
        "the old key counts for uniqueness"
    );
    let report = env.cli(&["users", "check"]).await;
    let body: Value = serde_json::from_slice(&report.stdout).unwrap();
    let stale = body["stale"].as_array().unwrap();
    assert_eq!(stale.len(), 1, "{body}");
    assert_eq!(stale[0]["username"], "dave");
    assert_eq!(stale[0]["field"], "email");
    assert!(
        stale[0]["reason"].as_str().unwrap().contains("IDNA"),
        "{body}"
    );
    // Reported, not changed.
    assert_eq!(login_as(&app, "dave@xn--mnchen-3ya.example").await.0, 200);
    // Saving the same address again renews the key: nothing left to report.
    let renewed = patch_json(
        &app,
        "/admin/users/dave",
        &admin,
        &json!({"email": "dave@xn--mnchen-3ya.example"}),
    )
    .await;
    assert_eq!(renewed.status(), 200);
    let report = env.cli(&["users", "check"]).await;
    assert_eq!(stdout_json(&report), json!({ "stale": [] }));
    for login in ["dave@xn--mnchen-3ya.example", "dave@münchen.example"] {
        assert_eq!(login_as(&app, login).await.0, 200, "{login}");
    }
}

on_both_backends!(
    either_idna_form_of_an_email_finds_the_account,
    id_tokens_carry_acr_and_amr,
    the_id_token_carries_no_scope_claims_when_an_access_token_is_issued,
    malformed_and_look_alike_emails_are_refused_at_registration,
    the_cli_refuses_bad_emails_and_reports_stale_rows,
    users_edit_their_claims_with_validation,
    administrators_edit_claims_through_the_api_and_the_cli,
    userinfo_returns_the_claims_of_each_scope,
);
