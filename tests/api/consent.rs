//! Remembered consent (issue 15 item 3): `prompt=none` after consent, new scopes ask again,
//! `prompt=consent` forces the page (first-party clients included, after a fresh sign-in),
//! `max_age` checked again after the consent page, and consents listed and withdrawn by the
//! user (JSON API) and by administrators (admin API) — withdrawing ends the client's grants —
//! on both backends.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{
    Backend, ClientSpec, Fixture, PASSWORD, REDIRECT, Sent, answer_consent, browser, client_secret,
    code_of, enc, hidden, json_of, location_params, param, pkce,
};
use crate::on_both_backends;

/// The third-party client's redirect URI.
const PARTNER_CB: &str = "http://127.0.0.1:9/partner";

/// The OAuth fixture (first-party `webapp`, user `alice`) and a third-party client `partner`.
struct Consenting {
    f: Fixture,
    partner_secret: String,
    verifier: String,
}

impl Consenting {
    async fn new(backend: Backend) -> Self {
        let f = Fixture::new(backend).await;
        let partner = f
            .app
            .create_client(ClientSpec::new("partner").redirect_uri(PARTNER_CB))
            .await;
        Self {
            f,
            partner_secret: client_secret(&partner),
            verifier: "c".repeat(43),
        }
    }

    /// `GET /authorize` for `client_id` with `scope` and `extra` parameters.
    async fn authorize(
        &self,
        browser: &reqwest::Client,
        client_id: &str,
        scope: &str,
        extra: &str,
    ) -> reqwest::Response {
        let redirect = if client_id == "partner" {
            PARTNER_CB
        } else {
            REDIRECT
        };
        let url = self.f.url(&format!(
            "response_type=code&client_id={client_id}&redirect_uri={}&scope={}&state=s&nonce=n\
             &code_challenge={}&code_challenge_method=S256{extra}",
            enc(redirect),
            enc(scope),
            pkce(&self.verifier)
        ));
        browser.get(url).sent().await
    }

    /// Submits the hosted login form of `html` as `username`.
    async fn sign_in(
        &self,
        browser: &reqwest::Client,
        html: &str,
        username: &str,
    ) -> reqwest::Response {
        assert!(html.contains("name=\"password\""), "a login page: {html}");
        browser
            .post(self.f.app.url("/authorize/login"))
            .form(&[
                ("request_id", hidden(html, "request_id")),
                ("csrf_token", hidden(html, "csrf_token")),
                ("username", username.to_owned()),
                ("password", PASSWORD.to_owned()),
            ])
            .sent()
            .await
    }

    /// Answers the consent page `html` with `decision`.
    async fn decide(
        &self,
        browser: &reqwest::Client,
        html: &str,
        decision: &str,
    ) -> reqwest::Response {
        assert!(
            html.contains("/authorize/consent"),
            "a consent page: {html}"
        );
        answer_consent(
            browser,
            self.f.app.url("/authorize/consent"),
            html,
            decision,
        )
        .await
    }

    /// Signs `username` in for `partner` with `scope` on a new browser and approves: the
    /// browser and the code.
    async fn approved(&self, username: &str, scope: &str) -> (reqwest::Client, String) {
        let browser = browser();
        let login = self.authorize(&browser, "partner", scope, "").await;
        let consent = self.sign_in(&browser, &text(login).await, username).await;
        assert_eq!(consent.status(), StatusCode::OK, "the consent page");
        let approved = self.decide(&browser, &text(consent).await, "approve").await;
        (browser, code_of(&approved))
    }

    /// Redeems a code of `partner`: the token response.
    async fn exchange(&self, code: &str) -> Value {
        let response = self
            .f
            .app
            .client
            .post(self.f.app.url("/token"))
            .basic_auth("partner", Some(&self.partner_secret))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", PARTNER_CB),
                ("code_verifier", &self.verifier),
            ])
            .sent()
            .await;
        assert_eq!(response.status(), StatusCode::OK, "code redeemed");
        json_of(response).await
    }

    /// A refresh of `partner` with `refresh_token`.
    async fn refresh(&self, refresh_token: &str) -> reqwest::Response {
        self.f
            .app
            .client
            .post(self.f.app.url("/token"))
            .basic_auth("partner", Some(&self.partner_secret))
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
            ])
            .sent()
            .await
    }
}

async fn text(response: reqwest::Response) -> String {
    response.text().await.expect("body")
}

/// The `error` of a redirect to the client.
fn error_of(response: &reqwest::Response) -> Option<String> {
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "a redirect");
    param(&location_params(response).1, "error")
}

/// The `<li>` items of a consent page's first list and of its "allowed before" list.
fn listed(html: &str) -> (Vec<String>, Vec<String>) {
    let items = |part: &str| -> Vec<String> {
        part.split("<li>")
            .skip(1)
            .map(|item| item.split("</li>").next().unwrap_or("").to_owned())
            .collect()
    };
    match html.split_once("You allowed it before") {
        Some((new, before)) => (items(new), items(before)),
        None => (items(html), Vec::new()),
    }
}

// Consent is remembered per user, client and scopes: prompt=none then issues a code (module
// oidcc-prompt-none-logged-in); a scope not yet approved asks again, showing the new one apart;
// prompt=consent shows the page even when all were approved.
async fn a_remembered_consent_lets_prompt_none_through_and_new_scopes_ask_again(backend: Backend) {
    let c = Consenting::new(backend).await;
    let (browser, code) = c.approved("alice", "openid").await;
    c.exchange(&code).await;

    let silent = c
        .authorize(&browser, "partner", "openid", "&prompt=none")
        .await;
    c.exchange(&code_of(&silent)).await;
    let again = c.authorize(&browser, "partner", "openid", "").await;
    code_of(&again);

    let more = c
        .authorize(&browser, "partner", "openid email", "&prompt=none")
        .await;
    assert_eq!(error_of(&more).as_deref(), Some("consent_required"));
    let page = c.authorize(&browser, "partner", "email openid", "").await;
    assert_eq!(page.status(), StatusCode::OK, "new scope: asked again");
    let html = text(page).await;
    assert_eq!(
        listed(&html),
        (vec!["email".to_owned()], vec!["openid".to_owned()])
    );
    code_of(&c.decide(&browser, &html, "approve").await);
    // The union is remembered: either scope, or both, pass silently.
    for scope in ["openid email", "email", "openid"] {
        let silent = c
            .authorize(&browser, "partner", scope, "&prompt=none")
            .await;
        code_of(&silent);
    }

    let forced = c
        .authorize(&browser, "partner", "openid", "&prompt=consent")
        .await;
    assert_eq!(
        forced.status(),
        StatusCode::OK,
        "prompt=consent shows the page"
    );
    let html = text(forced).await;
    assert_eq!(listed(&html), (vec![], vec!["openid".to_owned()]));
    // A denial keeps what was approved before.
    let denied = c.decide(&browser, &html, "deny").await;
    assert_eq!(error_of(&denied).as_deref(), Some("access_denied"));
    code_of(
        &c.authorize(&browser, "partner", "openid", "&prompt=none")
            .await,
    );

    // The consent is alice's: bob, signed in on the same client, is asked.
    let bob_browser = browser_for(&c, "bob").await;
    let bob = c
        .authorize(&bob_browser, "partner", "openid", "&prompt=none")
        .await;
    assert_eq!(error_of(&bob).as_deref(), Some("consent_required"));
}

/// A browser where `username` (created now) signed in through the first-party client.
async fn browser_for(c: &Consenting, username: &str) -> reqwest::Client {
    c.f.app.create_user(username).await;
    let browser = browser();
    let login = c.authorize(&browser, "webapp", "openid", "").await;
    code_of(&c.sign_in(&browser, &text(login).await, username).await);
    browser
}

// C10: a first-party client skips consent, except with prompt=consent — also right after a sign-in
// at the hosted page (which used to issue the code at once).
async fn prompt_consent_asks_even_a_first_party_client_after_a_fresh_sign_in(backend: Backend) {
    let c = Consenting::new(backend).await;
    let browser = browser();
    let login = c
        .authorize(&browser, "webapp", "openid", "&prompt=consent")
        .await;
    let consent = c.sign_in(&browser, &text(login).await, "alice").await;
    assert_eq!(
        consent.status(),
        StatusCode::OK,
        "the consent page, no code"
    );
    let html = text(consent).await;
    assert!(html.contains("webapp"), "{html}");
    code_of(&c.decide(&browser, &html, "approve").await);
    // Signed in: prompt=consent still asks; without it, no page.
    let forced = c
        .authorize(&browser, "webapp", "openid", "&prompt=consent")
        .await;
    assert_eq!(forced.status(), StatusCode::OK);
    code_of(&c.authorize(&browser, "webapp", "openid", "").await);
    // Without prompt=consent a first-party sign-in goes straight to the client.
    let other = crate::helpers::browser();
    let login = c.authorize(&other, "webapp", "openid", "").await;
    code_of(&c.sign_in(&other, &text(login).await, "alice").await);
}

// The W4 note: a consent given long after the request must not issue a code whose authentication
// is older than the request's max_age allows: the user signs in again for the same request.
async fn an_approval_after_max_age_ran_out_asks_to_sign_in_again(backend: Backend) {
    let c = Consenting::new(backend).await;
    let browser = browser_for(&c, "carol").await;
    let page = c
        .authorize(&browser, "partner", "openid", "&max_age=300")
        .await;
    assert_eq!(page.status(), StatusCode::OK, "a consent page");
    let html = text(page).await;
    c.f.app.advance(std::time::Duration::from_secs(301));
    let late = c.decide(&browser, &html, "approve").await;
    assert_eq!(late.status(), StatusCode::OK, "no code: sign in again");
    let login = text(late).await;
    assert!(login.contains("Sign in again"), "{login}");
    let consent = c.sign_in(&browser, &login, "carol").await;
    assert_eq!(consent.status(), StatusCode::OK, "then the consent page");
    let code = code_of(&c.decide(&browser, &text(consent).await, "approve").await);
    let tokens = c.exchange(&code).await;
    let claims = crate::helpers::decode_claims(tokens["id_token"].as_str().unwrap());
    let auth_time = claims["auth_time"].as_i64().unwrap();
    let now = c.f.app.state.clock.now_naive().and_utc().timestamp();
    assert!(
        now - auth_time <= 300,
        "auth_time {auth_time} within max_age of {now}"
    );
}

// The user lists and withdraws consents through the JSON API; withdrawing ends the client's
// grants (the refresh token stops working, the access token is inactive) and the next
// authorization asks again. Audited.
async fn withdrawing_a_consent_ends_the_clients_grants(backend: Backend) {
    let c = Consenting::new(backend).await;
    let (browser, code) = c.approved("alice", "openid offline_access").await;
    let tokens = c.exchange(&code).await;
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let refreshed = c.refresh(&refresh).await;
    assert_eq!(refreshed.status(), StatusCode::OK);
    let refresh = json_of(refreshed).await["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (token, _) = c.f.app.signed_in("alice").await;

    let listed = json_of(c.f.app.get_bearer("/api/me/consents", &token).await).await;
    let consents = listed["consents"].as_array().unwrap();
    assert_eq!(consents.len(), 1, "{listed}");
    assert_eq!(consents[0]["client_id"], "partner");
    assert_eq!(
        consents[0]["scopes"],
        serde_json::json!(["openid", "offline_access"])
    );

    // A code issued before the withdrawal and not yet redeemed.
    let silent = c
        .authorize(&browser, "partner", "openid offline_access", "&prompt=none")
        .await;
    let fresh_code = code_of(&silent);
    let withdrawn =
        c.f.app
            .delete_bearer("/api/me/consents/partner", &token)
            .await;
    assert_eq!(withdrawn.status(), StatusCode::OK);
    let withdrawn = json_of(withdrawn).await;
    assert_eq!(withdrawn["client_id"], "partner");
    assert_eq!(withdrawn["ended"]["refresh_families"], 1, "{withdrawn}");
    assert_eq!(withdrawn["ended"]["authorization_codes"], 1, "{withdrawn}");

    let refused = c.refresh(&refresh).await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    assert_eq!(json_of(refused).await["error"], "invalid_grant");
    let userinfo = c.f.app.get_bearer("/userinfo", &access).await;
    assert_eq!(
        userinfo.status(),
        StatusCode::UNAUTHORIZED,
        "the access token ended"
    );
    // A code issued before the withdrawal is no way back in.
    let late =
        c.f.app
            .client
            .post(c.f.app.url("/token"))
            .basic_auth("partner", Some(&c.partner_secret))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", fresh_code.as_str()),
                ("redirect_uri", PARTNER_CB),
                ("code_verifier", c.verifier.as_str()),
            ])
            .sent()
            .await;
    assert_eq!(json_of(late).await["error"], "invalid_grant");

    let none = c
        .authorize(&browser, "partner", "openid", "&prompt=none")
        .await;
    assert_eq!(error_of(&none).as_deref(), Some("consent_required"));
    let listed = json_of(c.f.app.get_bearer("/api/me/consents", &token).await).await;
    assert_eq!(listed["consents"], serde_json::json!([]));

    // Withdrawing again, or a client never approved (or unknown): 404 in the JSON shape.
    for client in ["partner", "webapp", "no-such-client"] {
        let missing =
            c.f.app
                .delete_bearer(&format!("/api/me/consents/{client}"), &token)
                .await;
        assert_eq!(missing.status(), StatusCode::NOT_FOUND, "{client}");
        assert_eq!(json_of(missing).await["error"], "not_found");
    }
    let admin = c.f.app.admin_token().await;
    let audit = json_of(c.f.app.get_bearer("/admin/audit", &admin).await).await;
    let event = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "consent_revoked")
        .unwrap_or_else(|| panic!("consent_revoked audited: {audit}"));
    assert_eq!(event["actor"], c.f.user_id.as_str());
    assert_eq!(event["subject"], c.f.user_id.as_str());
}

// Consents are the user's own: another user neither lists nor withdraws them, and an
// application's token (even one for this API's audience) manages none; unauthenticated 401.
async fn another_users_consents_are_out_of_reach(backend: Backend) {
    let c = Consenting::new(backend).await;
    let (_, code) = c.approved("alice", "openid offline_access").await;
    let tokens = c.exchange(&code).await;
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    let partner_access = tokens["access_token"].as_str().unwrap().to_owned();

    let bob = c.f.app.user_token("bob", &[]).await;
    let listed = json_of(c.f.app.get_bearer("/api/me/consents", &bob).await).await;
    assert_eq!(
        listed["consents"],
        serde_json::json!([]),
        "bob sees none of alice's"
    );
    let missing =
        c.f.app
            .delete_bearer("/api/me/consents/partner", &bob)
            .await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_eq!(json_of(missing).await["error"], "not_found");
    let bob_admin_route =
        c.f.app
            .get_bearer("/admin/users/alice/consents", &bob)
            .await;
    assert_eq!(bob_admin_route.status(), StatusCode::FORBIDDEN);
    let bob_admin_delete =
        c.f.app
            .delete_bearer("/admin/users/alice/consents/partner", &bob)
            .await;
    assert_eq!(bob_admin_delete.status(), StatusCode::FORBIDDEN);

    // The partner's own access token (audience: this issuer) speaks for alice, but is not her
    // account's login.
    for (method, path) in [
        (reqwest::Method::GET, "/api/me/consents"),
        (reqwest::Method::DELETE, "/api/me/consents/partner"),
    ] {
        let refused = c.f.app.send(method, path, &partner_access, None).await;
        assert_eq!(refused.status(), StatusCode::FORBIDDEN, "{path}");
        assert_eq!(json_of(refused).await["error"], "insufficient_scope");
    }
    let anonymous = c.f.app.get("/api/me/consents").await;
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);

    // Alice's consent and grant are untouched.
    assert_eq!(c.refresh(&refresh).await.status(), StatusCode::OK);
    let (alice, _) = c.f.app.signed_in("alice").await;
    let listed = json_of(c.f.app.get_bearer("/api/me/consents", &alice).await).await;
    assert_eq!(listed["consents"].as_array().unwrap().len(), 1);
}

// Administrators list and withdraw a user's consents (audited); the client's grants end and the
// next authorization asks again. Unknown users and consents: 404 in the JSON shape.
async fn an_administrator_withdraws_a_users_consent(backend: Backend) {
    let c = Consenting::new(backend).await;
    let (browser, code) = c.approved("alice", "openid offline_access").await;
    let refresh = c.exchange(&code).await["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let admin = c.f.app.admin_token().await;

    let listed = json_of(
        c.f.app
            .get_bearer("/admin/users/alice/consents", &admin)
            .await,
    )
    .await;
    assert_eq!(listed["consents"][0]["client_id"], "partner", "{listed}");
    let by_id = json_of(
        c.f.app
            .get_bearer(&format!("/admin/users/{}/consents", c.f.user_id), &admin)
            .await,
    )
    .await;
    assert_eq!(by_id, listed);

    for (path, what) in [
        ("/admin/users/nobody/consents", "unknown user"),
        ("/admin/users/nobody/consents/partner", "unknown user"),
        (
            "/admin/users/alice/consents/no-such-client",
            "unknown client",
        ),
        ("/admin/users/alice/consents/webapp", "no consent"),
    ] {
        let method = if path.ends_with("/consents") {
            reqwest::Method::GET
        } else {
            reqwest::Method::DELETE
        };
        let missing = c.f.app.send(method, path, &admin, None).await;
        assert_eq!(missing.status(), StatusCode::NOT_FOUND, "{what}: {path}");
        assert_eq!(json_of(missing).await["error"], "not_found");
    }

    let withdrawn =
        c.f.app
            .delete_bearer("/admin/users/alice/consents/partner", &admin)
            .await;
    assert_eq!(withdrawn.status(), StatusCode::OK);
    assert_eq!(json_of(withdrawn).await["ended"]["refresh_families"], 1);
    let refused = c.refresh(&refresh).await;
    assert_eq!(json_of(refused).await["error"], "invalid_grant");
    let none = c
        .authorize(&browser, "partner", "openid", "&prompt=none")
        .await;
    assert_eq!(error_of(&none).as_deref(), Some("consent_required"));

    let audit = json_of(c.f.app.get_bearer("/admin/audit", &admin).await).await;
    let event = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "consent_revoked")
        .unwrap_or_else(|| panic!("consent_revoked audited: {audit}"));
    assert_eq!(event["subject"], c.f.user_id.as_str());
    assert_ne!(
        event["actor"],
        c.f.user_id.as_str(),
        "the administrator acted"
    );
    let detail: Value = serde_json::from_str(event["detail"].as_str().unwrap()).unwrap();
    assert_eq!(detail["client_id"], "partner", "{event}");
    assert_eq!(detail["scope"], "openid offline_access", "{event}");
}

// Deleting a client forgets the consents given to it: a client registered again under the same
// id is asked for again.
async fn a_deleted_client_takes_its_consents_along(backend: Backend) {
    let c = Consenting::new(backend).await;
    let (browser, _) = c.approved("alice", "openid").await;
    let admin = c.f.app.admin_token().await;
    let deleted =
        c.f.app
            .delete_bearer("/admin/clients/partner", &admin)
            .await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    c.f.app
        .create_client(ClientSpec::new("partner").redirect_uri(PARTNER_CB))
        .await;
    let none = c
        .authorize(&browser, "partner", "openid", "&prompt=none")
        .await;
    assert_eq!(error_of(&none).as_deref(), Some("consent_required"));
}

on_both_backends!(
    a_remembered_consent_lets_prompt_none_through_and_new_scopes_ask_again,
    prompt_consent_asks_even_a_first_party_client_after_a_fresh_sign_in,
    an_approval_after_max_age_ran_out_asks_to_sign_in_again,
    withdrawing_a_consent_ends_the_clients_grants,
    another_users_consents_are_out_of_reach,
    an_administrator_withdraws_a_users_consent,
    a_deleted_client_takes_its_consents_along,
);
