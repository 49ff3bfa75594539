//! The hosted account page (issue 17 item 5): the sign-in through the hosted login and back
//! (the return path only ever an account page), the profile with the JSON API's rules, the
//! password change that signs out every other device, sessions and devices signed out one by
//! one or all at once, connected applications revoked with their grants; CSRF tokens on every
//! form, another user's ids refused, every change audited — on both backends.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{
    Backend, ClientSpec, Fixture, PASSWORD, Sent, TestApp, answer_consent, browser, client_secret,
    enc, hidden, json_of, location_params, param, pkce, post_login_form,
};
use crate::on_both_backends;

/// The third-party client's redirect URI.
const PARTNER_CB: &str = "http://127.0.0.1:9/partner";
/// A new password that passes the policy.
const NEW_PASSWORD: &str = "a brand new passphrase 42";

/// The `Location` of a redirect, made absolute against the server.
fn location(app: &TestApp, response: &reqwest::Response) -> String {
    assert_eq!(
        response.status(),
        StatusCode::SEE_OTHER,
        "a redirect, not {:?}",
        response.status()
    );
    let location = response.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned();
    if location.starts_with("http") {
        location
    } else {
        app.url(&location)
    }
}

/// The path (and query) of a redirect's `Location`, without its fragment (the section the
/// page scrolls to).
fn location_path(response: &reqwest::Response) -> String {
    let location = response.headers()["location"].to_str().expect("location");
    let location = location
        .split_once('#')
        .map_or(location, |(before, _)| before);
    match url::Url::parse(location) {
        Ok(url) => match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        },
        Err(_) => location.to_owned(),
    }
}

async fn text(response: reqwest::Response) -> String {
    response.text().await.expect("body")
}

/// Signs `username` in on `browser` through the account page's redirect to the hosted login,
/// starting at `start` (a path): the page `start` led to (its HTML).
async fn sign_in_at(
    app: &TestApp,
    browser: &reqwest::Client,
    start: &str,
    username: &str,
) -> String {
    let first = browser.get(app.url(start)).sent().await;
    let login_url = location(app, &first);
    assert!(
        login_url.contains("/account/login?return_to="),
        "to the sign-in: {login_url}"
    );
    let login = browser.get(&login_url).sent().await;
    assert_eq!(login.status(), StatusCode::OK);
    let html = text(login).await;
    let signed = browser
        .post(app.url("/authorize/login"))
        .form(&[
            ("request_id", hidden(&html, "request_id")),
            ("csrf_token", hidden(&html, "csrf_token")),
            ("username", username.to_owned()),
            ("password", PASSWORD.to_owned()),
        ])
        .sent()
        .await;
    let callback = location(app, &signed);
    assert!(
        callback.starts_with(&format!("{}/account/callback?", app.issuer)),
        "the console's callback: {callback}"
    );
    let back = browser.get(&callback).sent().await;
    let page = location(app, &back);
    let response = browser.get(&page).sent().await;
    assert_eq!(response.status(), StatusCode::OK, "{page}");
    text(response).await
}

/// A browser signed in to the account page as `username`: the browser and the page.
async fn signed_in(app: &TestApp, username: &str) -> (reqwest::Client, String) {
    let browser = browser();
    let html = sign_in_at(app, &browser, "/account", username).await;
    assert!(html.contains(&format!("Signed in as <strong>{username}</strong>")));
    (browser, html)
}

/// The account page of a signed-in `browser`.
async fn account_page(app: &TestApp, browser: &reqwest::Client) -> String {
    let response = browser.get(app.url("/account")).sent().await;
    assert_eq!(response.status(), StatusCode::OK);
    text(response).await
}

/// Posts `form` (plus the page's CSRF token taken from `html`, unless `csrf` says otherwise)
/// to `path`.
async fn post(
    app: &TestApp,
    browser: &reqwest::Client,
    path: &str,
    csrf: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    let mut fields: Vec<(&str, &str)> = vec![("csrf_token", csrf)];
    fields.extend_from_slice(form);
    browser.post(app.url(path)).form(&fields).sent().await
}

/// The `data-{attribute}` values of the rows of `class` on the page.
fn rows(html: &str, class: &str, attribute: &str) -> Vec<String> {
    let marker = format!("<tr class=\"{class}\" data-{attribute}=\"");
    html.split(&marker)
        .skip(1)
        .map(|rest| rest.split('"').next().unwrap_or("").to_owned())
        .collect()
}

/// Whether the browser still has a live session: `/account` answers the page, not a redirect.
async fn still_signed_in(app: &TestApp, browser: &reqwest::Client) -> bool {
    browser.get(app.url("/account")).sent().await.status() == StatusCode::OK
}

/// The audit events of `action` (newest first) as (actor, subject, detail).
async fn audited(app: &TestApp, admin: &str, action: &str) -> Vec<(String, String, Value)> {
    let events = json_of(app.get_bearer("/admin/audit?limit=500", admin).await).await;
    events["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["action"] == action)
        .map(|e| {
            (
                e["actor"].as_str().unwrap_or_default().to_owned(),
                e["subject"].as_str().unwrap_or_default().to_owned(),
                e["detail"].clone(),
            )
        })
        .collect()
}

// Without a session the page sends the browser to the hosted login, which comes back to the
// page asked for; the page is a hosted page (strict CSP, no framing, no caching: HDR-01, HDR-03).
async fn without_a_session_the_page_signs_in_through_the_hosted_login_and_back(backend: Backend) {
    let f = Fixture::new(backend).await;
    let app = &f.app;
    let anonymous = app.get("/account").await;
    assert_eq!(
        location_path(&anonymous),
        "/account/login?return_to=%2Faccount"
    );
    // A page below the account page (`/account/security`, whose own handler calls the same
    // guard) comes back to itself, its query included.
    let browser = browser();
    let login = browser
        .get(app.url(&format!(
            "/account/login?return_to={}",
            enc("/account/security?step=totp")
        )))
        .sent()
        .await;
    let html = text(login).await;
    let signed = post_login_form(&browser, &app.address, &html, "alice").await;
    let callback = browser.get(location(app, &signed)).sent().await;
    assert_eq!(location_path(&callback), "/account/security?step=totp");

    let (browser, html) = signed_in(app, "alice").await;
    assert!(html.contains("href=\"/account/email\""), "{html}");
    assert!(html.contains("href=\"/account/security\""));
    let page = browser.get(app.url("/account")).sent().await;
    let headers = page.headers();
    assert_eq!(
        headers["content-security-policy"],
        "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'"
    );
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["cache-control"], "no-store");
    assert!(!text(page).await.contains("<script"));
    // Signed in, the sign-in goes straight back.
    let again = browser.get(app.url("/account/login")).sent().await;
    assert_eq!(location_path(&again), "/account");
}

// AUTHZ-04: the return path is ours only: an absolute URL, a scheme-relative `//host`, a
// backslash, a dot segment or another of our paths becomes the account page, at the sign-in
// and at the callback (which anyone can reach with any `state`); the console cannot be used at
// the authorization endpoint.
async fn the_return_path_is_never_an_open_redirect(backend: Backend) {
    let f = Fixture::new(backend).await;
    let app = &f.app;
    for evil in [
        "https://evil.example/account",
        "//evil.example/account",
        "/\\evil.example",
        "/account/../authorize",
        "/account//evil.example",
        "/token",
    ] {
        let callback = app
            .get(&format!("/account/callback?code=x&state={}", enc(evil)))
            .await;
        // The exact header: a path-only comparison would not see another host.
        assert_eq!(callback.status(), StatusCode::SEE_OTHER, "{evil}");
        assert_eq!(callback.headers()["location"], "/account", "{evil}");

        let browser = browser();
        let login = browser
            .get(app.url(&format!("/account/login?return_to={}", enc(evil))))
            .sent()
            .await;
        assert_eq!(login.status(), StatusCode::OK, "{evil}");
        let html = text(login).await;
        let signed = browser
            .post(app.url("/authorize/login"))
            .form(&[
                ("request_id", hidden(&html, "request_id")),
                ("csrf_token", hidden(&html, "csrf_token")),
                ("username", "alice".to_owned()),
                ("password", PASSWORD.to_owned()),
            ])
            .sent()
            .await;
        let (_, params) = location_params(&signed);
        assert_eq!(
            param(&params, "state").as_deref(),
            Some("/account"),
            "{evil}"
        );
    }
    // The console is not a registered client: the authorization endpoint refuses it with an
    // error page, never a redirect to its callback.
    let console = app
        .get(&format!(
            "/authorize?response_type=code&client_id=portcullis&redirect_uri={}&scope=openid&state={}&code_challenge={}&code_challenge_method=S256",
            enc(&format!("{}/account/callback", app.issuer)),
            enc("https://evil.example"),
            pkce(&"v".repeat(43))
        ))
        .await;
    assert_eq!(console.status(), StatusCode::BAD_REQUEST);
    assert!(console.headers().get("location").is_none());
    // A sign-in that failed at the client's end shows a page, not a redirect.
    let failed = app
        .get("/account/callback?error=access_denied&state=/account")
        .await;
    assert_eq!(failed.status(), StatusCode::BAD_REQUEST);
}

// The profile section saves the standard claims with the JSON API's rules (as the user:
// never the *_verified flags), audited; a refused value answers the page with the reason and
// the form as typed, and saves nothing.
async fn the_profile_section_saves_claims_with_the_api_rules(backend: Backend) {
    let f = Fixture::new(backend).await;
    let app = &f.app;
    let admin = app.admin_token().await;
    let (browser, html) = signed_in(app, "alice").await;
    let csrf = hidden(&html, "csrf_token");
    let saved = post(
        app,
        &browser,
        "/account/profile",
        &csrf,
        &[
            ("name", "Alice Liddell"),
            ("given_name", "Alice"),
            ("locale", "en-GB"),
            ("zoneinfo", "Europe/London"),
            ("address_locality", "Oxford"),
            ("address_country", "United Kingdom"),
        ],
    )
    .await;
    assert_eq!(location_path(&saved), "/account?done=profile");
    let html = text(browser.get(app.url("/account?done=profile")).sent().await).await;
    assert!(html.contains("Your profile was saved."));
    assert!(html.contains("value=\"Alice Liddell\""), "{html}");
    assert!(html.contains("value=\"Oxford\""));
    let (access, _) = app.tokens("alice").await;
    let me = json_of(app.me(&access).await).await;
    assert_eq!(me["claims"]["name"], "Alice Liddell");
    assert_eq!(
        me["claims"]["address"],
        serde_json::json!({"locality": "Oxford", "country": "United Kingdom"})
    );
    let events = audited(app, &admin, "user_updated").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].0, f.user_id);
    assert_eq!(events[0].1, f.user_id);

    for (field, value, reason) in [
        ("birthdate", "2999-01-01", "birthdate"),
        ("website", "javascript:alert(1)", "website"),
        ("locale", "not a tag!", "locale"),
        ("phone_number", "12345", "phone_number"),
        ("email_verified", "true", "unknown claim"),
    ] {
        let refused = post(
            app,
            &browser,
            "/account/profile",
            &csrf,
            &[("name", "Changed"), (field, value)],
        )
        .await;
        // `email_verified` is not a field of the form: it is ignored, like any other stray
        // member, and the rest saves.
        if field == "email_verified" {
            assert_eq!(location_path(&refused), "/account?done=profile");
            continue;
        }
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST, "{field}");
        let page = text(refused).await;
        assert!(page.contains("id=\"problem\""), "{page}");
        assert!(page.contains(reason), "{field}: {page}");
        assert!(page.contains("value=\"Changed\""), "the form as typed");
    }
    let me = json_of(app.me(&access).await).await;
    assert_eq!(me["claims"]["name"], "Changed");
    assert!(me["claims"].get("email_verified").is_none());
    assert!(me["claims"].get("birthdate").is_none());
    // Emptied fields are cleared.
    let cleared = post(
        app,
        &browser,
        "/account/profile",
        &csrf,
        &[
            ("name", ""),
            ("address_locality", ""),
            ("address_country", ""),
        ],
    )
    .await;
    assert_eq!(location_path(&cleared), "/account?done=profile");
    let me = json_of(app.me(&access).await).await;
    assert!(me["claims"].get("name").is_none(), "{me}");
    assert!(me["claims"].get("address").is_none(), "{me}");
}

// LOGIN-01 (a) for the account page's forms: every form refuses a post without the session's
// CSRF token, with a forged one or with another session's, and changes nothing.
async fn every_form_refuses_a_missing_or_foreign_csrf_token(backend: Backend) {
    let f = Fixture::new(backend).await;
    let app = &f.app;
    app.create_user("bob").await;
    let (alice, html) = signed_in(app, "alice").await;
    let sid = rows(&html, "session", "sid").remove(0);
    let (_, bob_html) = signed_in(app, "bob").await;
    let bobs_token = hidden(&bob_html, "csrf_token");
    let forms: [(&str, Vec<(&str, &str)>); 5] = [
        ("/account/profile", vec![("name", "Mallory")]),
        (
            "/account/password",
            vec![
                ("current_password", PASSWORD),
                ("new_password", NEW_PASSWORD),
                ("new_password_confirm", NEW_PASSWORD),
            ],
        ),
        ("/account/sessions/end", vec![("sid", sid.as_str())]),
        ("/account/sessions/end-all", vec![]),
        (
            "/account/applications/revoke",
            vec![("client_id", "partner")],
        ),
    ];
    for (path, form) in &forms {
        for token in ["", "forged", bobs_token.as_str()] {
            let refused = if token.is_empty() {
                alice.post(app.url(path)).form(form).sent().await
            } else {
                post(app, &alice, path, token, form).await
            };
            assert_eq!(refused.status(), StatusCode::FORBIDDEN, "{path} {token}");
        }
    }
    assert!(still_signed_in(app, &alice).await);
    let (access, _) = app.tokens("alice").await;
    assert!(
        json_of(app.me(&access).await).await["claims"]
            .get("name")
            .is_none()
    );
    // Not a form at all.
    let not_a_form = alice
        .post(app.url("/account/profile"))
        .json(&serde_json::json!({"name": "x"}))
        .sent()
        .await;
    assert_eq!(not_a_form.status(), StatusCode::BAD_REQUEST);
    // Without a session, a post goes to the sign-in and changes nothing.
    let anonymous = app
        .post_form("/account/profile", &[("csrf_token", "x"), ("name", "y")])
        .await;
    assert_eq!(
        location_path(&anonymous),
        "/account/login?return_to=%2Faccount"
    );
}

// The password changes only with the current password (throttled like a sign-in: LOGIN-06 (c))
// and a new one the policy accepts (LOGIN-05); then every other browser, device and token is
// signed out (RT-07), this browser stays, and the change is audited.
async fn the_password_change_needs_the_current_password_and_signs_out_other_devices(
    backend: Backend,
) {
    let f = Fixture::new(backend).await;
    let app = &f.app;
    let admin = app.admin_token().await;
    let (this, html) = signed_in(app, "alice").await;
    let (other, _) = signed_in(app, "alice").await;
    let (_, refresh) = app.tokens("alice").await;
    let csrf = hidden(&html, "csrf_token");
    let change = |current: &'static str, new: &'static str, again: &'static str| {
        let (this, csrf) = (&this, &csrf);
        async move {
            post(
                app,
                this,
                "/account/password",
                csrf,
                &[
                    ("current_password", current),
                    ("new_password", new),
                    ("new_password_confirm", again),
                ],
            )
            .await
        }
    };
    let wrong = change("not my password", NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(
        text(wrong)
            .await
            .contains("The current password is incorrect.")
    );
    let mismatch = change(PASSWORD, NEW_PASSWORD, "something else entirely").await;
    assert_eq!(mismatch.status(), StatusCode::BAD_REQUEST);
    assert!(text(mismatch).await.contains("do not match"));
    let weak = change(PASSWORD, "password", "password").await;
    assert_eq!(weak.status(), StatusCode::BAD_REQUEST);
    assert!(text(weak).await.contains("common"));
    let short = change(PASSWORD, "short", "short").await;
    assert_eq!(short.status(), StatusCode::BAD_REQUEST);
    assert!(text(short).await.contains("at least 8 characters"));
    let own_name = change(PASSWORD, "alice@example.com", "alice@example.com").await;
    assert_eq!(own_name.status(), StatusCode::BAD_REQUEST);
    assert!(
        still_signed_in(app, &other).await,
        "refusals change nothing"
    );
    assert_eq!(app.login("alice").await.status(), StatusCode::OK);

    let changed = change(PASSWORD, NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(location_path(&changed), "/account?done=password");
    assert!(still_signed_in(app, &this).await, "this browser stays");
    assert!(
        !still_signed_in(app, &other).await,
        "the other is signed out"
    );
    assert_eq!(
        app.refresh(&refresh).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(app.login("alice").await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.login_with("alice", NEW_PASSWORD).await.status(),
        StatusCode::OK
    );
    let events = audited(app, &admin, "password_change").await;
    assert_eq!(events.len(), 1);
    assert_eq!(
        (events[0].0.as_str(), events[0].1.as_str()),
        (f.user_id.as_str(), f.user_id.as_str())
    );
    assert!(
        events[0].2.to_string().contains("other_sessions_ended"),
        "{:?}",
        events[0].2
    );

    // Guesses of the current password are throttled like sign-ins.
    let mut throttled = false;
    for _ in 0..40 {
        let guess = change(
            "still not it",
            "another fine passphrase",
            "another fine passphrase",
        )
        .await;
        if guess.status() == StatusCode::TOO_MANY_REQUESTS {
            assert!(guess.headers().contains_key("retry-after"));
            throttled = true;
            break;
        }
        assert_eq!(guess.status(), StatusCode::UNAUTHORIZED);
    }
    assert!(throttled, "guesses are throttled");
}

// REV-07, sessions and devices: every live browser session is listed with the applications
// signed in through it, and the JSON API's logins apart; one is signed out with its grants,
// another user's ids are "not found" (and touch nothing), and signing out everywhere ends this
// browser too and lands on the sign-in. Each change is audited.
async fn sessions_are_listed_and_signed_out_one_or_all(backend: Backend) {
    let f = Fixture::new(backend).await;
    let app = &f.app;
    let admin = app.admin_token().await;
    app.create_user("bob").await;
    let (this, _) = signed_in(app, "alice").await;
    // Another browser, signed in through an application (`webapp`) with a refresh token.
    let other = browser();
    let (code, verifier) = f.code(&other, "openid offline_access").await;
    let tokens = json_of(f.exchange(&code, &verifier).await).await;
    let webapp_refresh = tokens["refresh_token"]
        .as_str()
        .expect("refresh")
        .to_owned();
    // And a login through the JSON API.
    let (_, api_refresh) = app.tokens("alice").await;

    let html = account_page(app, &this).await;
    let sids = rows(&html, "session", "sid");
    assert_eq!(sids.len(), 2, "{html}");
    assert!(html.contains("<strong>This browser</strong>"));
    let grants = rows(&html, "grant", "grant");
    assert_eq!(grants.len(), 1, "the JSON API's login, apart: {html}");
    assert!(
        html.contains("webapp"),
        "the application of the other browser"
    );
    let csrf = hidden(&html, "csrf_token");

    // Another user's session and grant are not found, and stay.
    let (bob, bob_html) = signed_in(app, "bob").await;
    let bob_sid = rows(&bob_html, "session", "sid").remove(0);
    let (_, bob_refresh) = app.tokens("bob").await;
    let bob_grant = rows(&account_page(app, &bob).await, "grant", "grant").remove(0);
    for form in [[("sid", bob_sid.as_str())], [("grant", bob_grant.as_str())]] {
        let refused = post(app, &this, "/account/sessions/end", &csrf, &form).await;
        assert_eq!(refused.status(), StatusCode::NOT_FOUND);
        assert!(text(refused).await.contains("not one of yours"));
    }
    assert!(still_signed_in(app, &bob).await);
    assert_eq!(app.refresh(&bob_refresh).await.status(), StatusCode::OK);
    let neither = post(app, &this, "/account/sessions/end", &csrf, &[]).await;
    assert_eq!(neither.status(), StatusCode::BAD_REQUEST);

    // The other browser, with the application's grant made in it.
    let other_sid = sids
        .iter()
        .find(|sid| !html.contains(&format!("data-sid=\"{sid}\">\n<td><strong>This browser")))
        .expect("the other session")
        .clone();
    let ended = post(
        app,
        &this,
        "/account/sessions/end",
        &csrf,
        &[("sid", &other_sid)],
    )
    .await;
    assert_eq!(location_path(&ended), "/account?done=session");
    assert!(!still_signed_in(app, &other).await);
    let refreshed = f
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &webapp_refresh),
        ])
        .await;
    assert_eq!(
        refreshed.status(),
        StatusCode::BAD_REQUEST,
        "its grant ended"
    );
    assert!(still_signed_in(app, &this).await);
    // The JSON API's login.
    let ended = post(
        app,
        &this,
        "/account/sessions/end",
        &csrf,
        &[("grant", &grants[0])],
    )
    .await;
    assert_eq!(location_path(&ended), "/account?done=grant");
    assert_eq!(
        app.refresh(&api_refresh).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let again = post(
        app,
        &this,
        "/account/sessions/end",
        &csrf,
        &[("grant", &grants[0])],
    )
    .await;
    assert_eq!(again.status(), StatusCode::NOT_FOUND, "already ended");
    assert_eq!(audited(app, &admin, "session_ended").await.len(), 1);
    assert_eq!(audited(app, &admin, "grant_revoked").await.len(), 1);

    // Everywhere, this browser too: to the sign-in.
    let (_, api_refresh) = app.tokens("alice").await;
    let all = post(app, &this, "/account/sessions/end-all", &csrf, &[]).await;
    assert_eq!(location_path(&all), "/account/login?return_to=%2Faccount");
    let landed = this.get(location(app, &all)).sent().await;
    assert_eq!(landed.status(), StatusCode::OK);
    assert!(
        text(landed).await.contains("name=\"password\""),
        "the sign-in page"
    );
    assert!(!still_signed_in(app, &this).await);
    assert_eq!(
        app.refresh(&api_refresh).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert!(still_signed_in(app, &bob).await, "bob is not touched");
    let events = audited(app, &admin, "logout_all").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].0, f.user_id);
}

// Signing out this browser's own session from the list lands on the sign-in.
async fn signing_out_this_browser_lands_on_the_sign_in(backend: Backend) {
    let f = Fixture::new(backend).await;
    let app = &f.app;
    let (this, html) = signed_in(app, "alice").await;
    let sid = rows(&html, "session", "sid").remove(0);
    let csrf = hidden(&html, "csrf_token");
    let ended = post(app, &this, "/account/sessions/end", &csrf, &[("sid", &sid)]).await;
    assert_eq!(location_path(&ended), "/account/login?return_to=%2Faccount");
    assert!(!still_signed_in(app, &this).await);
}

// REV-07, RT-07, connected applications: the consents with their scopes and claims; removing
// one withdraws the consent and ends that client's grants for the user (its refresh token stops
// working), audited; another user's (or no) consent is "not found".
async fn connected_applications_are_listed_and_revoked(backend: Backend) {
    let f = Fixture::new(backend).await;
    let app = &f.app;
    let admin = app.admin_token().await;
    app.create_user("bob").await;
    let partner = app
        .create_client(ClientSpec::new("partner").redirect_uri(PARTNER_CB))
        .await;
    let partner_secret = client_secret(&partner);
    let verifier = "p".repeat(43);
    let (this, _) = signed_in(app, "alice").await;
    // Alice approves `partner` in this browser.
    let authorize = this
        .get(app.url(&format!(
            "/authorize?response_type=code&client_id=partner&redirect_uri={}&scope={}&state=s&code_challenge={}&code_challenge_method=S256",
            enc(PARTNER_CB),
            enc("openid email offline_access"),
            pkce(&verifier)
        )))
        .sent()
        .await;
    assert_eq!(authorize.status(), StatusCode::OK, "the consent page");
    let consent_html = text(authorize).await;
    let approved = answer_consent(
        &this,
        app.url("/authorize/consent"),
        &consent_html,
        "approve",
    )
    .await;
    let (_, params) = location_params(&approved);
    let code = param(&params, "code").expect("code");
    let tokens = json_of(
        app.client
            .post(app.url("/token"))
            .basic_auth("partner", Some(&partner_secret))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", PARTNER_CB),
                ("code_verifier", verifier.as_str()),
            ])
            .sent()
            .await,
    )
    .await;
    let refresh = tokens["refresh_token"]
        .as_str()
        .expect("refresh")
        .to_owned();

    let html = account_page(app, &this).await;
    assert_eq!(rows(&html, "application", "client"), vec!["partner"]);
    assert!(html.contains("openid email offline_access"), "{html}");
    let csrf = hidden(&html, "csrf_token");

    // Bob has no consent to `partner`: not found, and Alice's stays.
    let (bob, bob_html) = signed_in(app, "bob").await;
    let refused = post(
        app,
        &bob,
        "/account/applications/revoke",
        &hidden(&bob_html, "csrf_token"),
        &[("client_id", "partner")],
    )
    .await;
    assert_eq!(refused.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        rows(&account_page(app, &this).await, "application", "client"),
        vec!["partner"]
    );
    let unknown = post(
        app,
        &this,
        "/account/applications/revoke",
        &csrf,
        &[("client_id", "nobody")],
    )
    .await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    let missing = post(app, &this, "/account/applications/revoke", &csrf, &[]).await;
    assert_eq!(missing.status(), StatusCode::BAD_REQUEST);

    let revoked = post(
        app,
        &this,
        "/account/applications/revoke",
        &csrf,
        &[("client_id", "partner")],
    )
    .await;
    assert_eq!(location_path(&revoked), "/account?done=application");
    let html = account_page(app, &this).await;
    assert!(rows(&html, "application", "client").is_empty());
    let refreshed = app
        .client
        .post(app.url("/token"))
        .basic_auth("partner", Some(&partner_secret))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh.as_str()),
        ])
        .sent()
        .await;
    assert_eq!(
        refreshed.status(),
        StatusCode::BAD_REQUEST,
        "the grant ended"
    );
    let events = audited(app, &admin, "consent_revoked").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].0, f.user_id);
    // The next authorization asks again.
    let again = this
        .get(app.url(&format!(
            "/authorize?response_type=code&client_id=partner&redirect_uri={}&scope=openid&state=s&code_challenge={}&code_challenge_method=S256",
            enc(PARTNER_CB),
            pkce(&verifier)
        )))
        .sent()
        .await;
    assert_eq!(again.status(), StatusCode::OK);
    assert!(text(again).await.contains("/authorize/consent"));
}

on_both_backends!(
    without_a_session_the_page_signs_in_through_the_hosted_login_and_back,
    the_return_path_is_never_an_open_redirect,
    the_profile_section_saves_claims_with_the_api_rules,
    every_form_refuses_a_missing_or_foreign_csrf_token,
    the_password_change_needs_the_current_password_and_signs_out_other_devices,
    sessions_are_listed_and_signed_out_one_or_all,
    signing_out_this_browser_lands_on_the_sign_in,
    connected_applications_are_listed_and_revoked,
);
