//! Issue 15, package W3 (relying parties at the edges): the userinfo token in a form body
//! (RFC 6750 §2.2), `response_mode=form_post`, native apps (RFC 8252), browser apps (CORS) and
//! the token endpoint's query — on both backends.

use serde_json::Value;

use std::time::Duration;

use crate::helpers::{
    Backend, ClientSpec, Fixture, PASSWORD, REDIRECT, Sent, answer_consent, browser, enc, hidden,
    json_of, location_params, param, pkce,
};
use crate::on_both_backends;

/// The JSON error and the `WWW-Authenticate` challenge of a userinfo answer.
async fn bearer_error(response: reqwest::Response) -> (u16, String, Value) {
    let status = response.status().as_u16();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, challenge, json_of(response).await)
}

// C4 / `oidcc-userinfo-post-body`: userinfo takes the access token in a form-encoded POST body
// when no Authorization header is sent (RFC 6750 §2.2); both at once is `invalid_request` (§2);
// a POST with the header and an empty form body (`oidcc-userinfo-post-header`) works as before.
async fn userinfo_takes_the_token_in_a_form_body(backend: Backend) {
    let f = Fixture::new(backend).await;
    let (code, verifier) = f.code(&browser(), "openid email").await;
    let tokens = json_of(f.exchange(&code, &verifier).await).await;
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let url = f.app.url("/userinfo");
    let http = &f.app.client;

    let in_body = http
        .post(&url)
        .form(&[("access_token", &access)])
        .sent()
        .await;
    assert_eq!(in_body.status(), 200);
    assert_eq!(in_body.headers()["cache-control"], "no-store");
    let info = json_of(in_body).await;
    assert_eq!(info["sub"], f.user_id.as_str());
    assert_eq!(info["email"], "alice@example.com");

    let header_and_empty_form = http
        .post(&url)
        .bearer_auth(&access)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("")
        .sent()
        .await;
    assert_eq!(header_and_empty_form.status(), 200);

    let (status, challenge, body) = bearer_error(
        http.post(&url)
            .bearer_auth(&access)
            .form(&[("access_token", &access)])
            .sent()
            .await,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_request");
    assert!(challenge.contains("invalid_request"), "{challenge}");

    let twice = http
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("access_token={access}&access_token={access}"))
        .sent()
        .await;
    let (status, _, body) = bearer_error(twice).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );

    let forged = http
        .post(&url)
        .form(&[("access_token", format!("{access}x"))])
        .sent()
        .await;
    let (status, challenge, body) = bearer_error(forged).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"], "invalid_token");
    assert!(challenge.contains("invalid_token"), "{challenge}");

    // Only a form body carries the token (§2.2); a GET's query never does (§2.3 is not
    // supported), nor does a JSON body.
    let json_body = http
        .post(&url)
        .json(&serde_json::json!({ "access_token": access }))
        .sent()
        .await;
    assert_eq!(json_body.status(), 401);
    let in_query = http
        .get(format!("{url}?access_token={access}"))
        .sent()
        .await;
    assert_eq!(in_query.status(), 401);
}

// Issue 15 item 10: `prompt=none&max_age=0` with a live (but older) session says why it failed:
// `login_required` because the session is older than `max_age`, not "the user is not signed
// in"; without a session the description stays.
async fn prompt_none_with_a_too_old_session_says_why(backend: Backend) {
    let f = Fixture::new(backend).await;
    let browser = browser();
    let request = format!(
        "response_type=code&client_id=webapp&redirect_uri={}&scope=openid&state=m0&code_challenge={}&code_challenge_method=S256&prompt=none",
        enc(REDIRECT),
        pkce(&"v".repeat(43))
    );
    let anonymous = browser.get(f.url(&request)).sent().await;
    let (_, params) = location_params(&anonymous);
    assert_eq!(param(&params, "error").as_deref(), Some("login_required"));
    assert_eq!(
        param(&params, "error_description").as_deref(),
        Some("The user is not signed in.")
    );

    f.code(&browser, "openid").await;
    f.app.advance(Duration::from_secs(1));
    let too_old = browser
        .get(f.url(&format!("{request}&max_age=0")))
        .sent()
        .await;
    assert_eq!(too_old.status(), 303);
    let (_, params) = location_params(&too_old);
    assert_eq!(param(&params, "error").as_deref(), Some("login_required"));
    let description = param(&params, "error_description").unwrap();
    assert!(description.contains("max_age"), "{description}");
    assert_eq!(param(&params, "state").as_deref(), Some("m0"));
    assert!(param(&params, "code").is_none());
}

// Issue 15 item 10 (RFC 6749 §3.2, RFC 7009 §2.1, RFC 7662 §2.1): the token, revocation and
// introspection endpoints take their parameters in the form body only; anything in the URL
// query — a credential, a grant parameter, or a stray name — is `invalid_request`, before the
// client is authenticated or anything is redeemed (the code still works afterwards).
async fn token_endpoints_refuse_parameters_in_the_query(backend: Backend) {
    let f = Fixture::new(backend).await;
    let (code, verifier) = f.code(&browser(), "openid").await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", verifier.as_str()),
    ];
    for query in [
        format!("code={}", enc(&code)),
        "grant_type=authorization_code".to_owned(),
        "client_id=webapp".to_owned(),
        "x=1".to_owned(),
    ] {
        for path in ["/token", "/revoke", "/introspect"] {
            let response = f.token_like(&format!("{path}?{query}"), &form).await;
            assert_eq!(response.status(), 400, "{path}?{query}");
            assert_eq!(response.headers()["cache-control"], "no-store");
            let body = json_of(response).await;
            assert_eq!(body["error"], "invalid_request", "{path}?{query}");
            assert!(
                body["error_description"].as_str().unwrap().contains("URL"),
                "{body}"
            );
        }
    }
    // Nothing was redeemed: the code works once, from the body.
    let tokens = f.exchange(&code, &verifier).await;
    assert_eq!(tokens.status(), 200);
}

/// The HTML-escaped text `askama` writes, read back.
fn unescape(text: &str) -> String {
    text.replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&#60;", "<")
        .replace("&#62;", ">")
        .replace("&#38;", "&")
}

/// What a `form_post` page posts: its form's action and method, and its hidden inputs.
struct PostedForm {
    action: String,
    method: String,
    fields: Vec<(String, String)>,
}

impl PostedForm {
    fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Reads the value of attribute `name` in an HTML tag.
fn attribute(tag: &str, name: &str) -> String {
    let marker = format!("{name}=\"");
    let start = tag
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {tag}"))
        + marker.len();
    let end = tag[start..].find('"').expect("closing quote") + start;
    unescape(&tag[start..end])
}

/// Asserts `response` is a form_post page (OAuth 2.0 Form Post Response Mode §2) — 200, HTML,
/// no `Location`, not cached, a CSP that runs only its hashed script and posts only to the
/// redirect URI, a `<noscript>` button — and returns its form.
async fn form_post_page(response: reqwest::Response, redirect_uri: &str) -> PostedForm {
    assert_eq!(response.status(), 200);
    assert!(response.headers().get("location").is_none());
    let headers = response.headers().clone();
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"),
        "{headers:?}"
    );
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    let csp = headers["content-security-policy"].to_str().unwrap();
    let directives: Vec<&str> = csp.split(';').map(str::trim).collect();
    assert!(directives.contains(&"default-src 'none'"), "{csp}");
    assert!(directives.contains(&"frame-ancestors 'none'"), "{csp}");
    let script_src = directives
        .iter()
        .find(|d| d.starts_with("script-src "))
        .unwrap_or_else(|| panic!("no script-src in {csp}"));
    assert!(
        script_src.starts_with("script-src 'sha256-") && !script_src.contains("unsafe"),
        "{csp}"
    );
    let form_action = directives
        .iter()
        .find(|d| d.starts_with("form-action "))
        .unwrap_or_else(|| panic!("no form-action in {csp}"));
    let without_query = redirect_uri.split('?').next().unwrap();
    assert_eq!(
        *form_action,
        format!("form-action {without_query}"),
        "{csp}"
    );
    let html = response.text().await.unwrap();
    // The one script is the one the hash allows.
    let script_start = html.find("<script>").expect("a script") + "<script>".len();
    let script_end = html[script_start..].find("</script>").unwrap() + script_start;
    let script = &html[script_start..script_end];
    use base64::Engine;
    use sha2::Digest;
    let hash = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(script));
    assert_eq!(
        *script_src,
        format!("script-src 'sha256-{hash}'"),
        "{script}"
    );
    assert_eq!(html.matches("<script").count(), 1, "{html}");
    let noscript = html.find("<noscript>").expect("a noscript");
    assert!(
        html[noscript..].contains("<button type=\"submit\">"),
        "{html}"
    );
    let form_start = html.find("<form ").expect("a form");
    let form_tag = &html[form_start..html[form_start..].find('>').unwrap() + form_start];
    let mut fields = Vec::new();
    let mut rest = &html[form_start..];
    while let Some(at) = rest.find("<input ") {
        let tag = &rest[at..rest[at..].find('>').unwrap() + at];
        assert_eq!(attribute(tag, "type"), "hidden", "{tag}");
        fields.push((attribute(tag, "name"), attribute(tag, "value")));
        rest = &rest[at + tag.len()..];
    }
    PostedForm {
        action: attribute(form_tag, "action"),
        method: attribute(form_tag, "method"),
        fields,
    }
}

// Issue 15 item 5 (OAuth 2.0 Form Post Response Mode; the form-post certification plan): the
// code and every error reach the client as a page that posts them to the redirect URI —
// nothing in a `Location`, nothing in the query — after the login page, after consent, and
// when the request is refused before any page (a missing response_type is posted too:
// `response_mode` is read first). Unsupported modes are refused in the default (query) mode.
async fn form_post_delivers_codes_and_errors(backend: Backend) {
    let f = Fixture::new(backend).await;
    let discovery = json_of(f.app.get("/.well-known/openid-configuration").await).await;
    assert_eq!(
        discovery["response_modes_supported"],
        serde_json::json!(["query", "form_post"])
    );
    let registered = "https://app.example.com/cb?tenant=1";
    let verifier = "f".repeat(43);
    let state = r#"s"<b>&'x"#;
    let base = format!(
        "client_id=webapp&redirect_uri={}&scope=openid&state={}&code_challenge={}&code_challenge_method=S256",
        enc(registered),
        enc(state),
        pkce(&verifier)
    );
    let webapp_secret = f.secret.clone();
    let issuer = f.app.issuer.clone();

    // The code, after the login page.
    let browser = browser();
    let login = browser
        .get(f.url(&format!(
            "{base}&response_type=code&response_mode=form_post"
        )))
        .sent()
        .await;
    let html = login.text().await.unwrap();
    let posted = browser
        .post(f.app.url("/authorize/login"))
        .form(&[
            ("request_id", hidden(&html, "request_id")),
            ("csrf_token", hidden(&html, "csrf_token")),
            ("username", "alice".into()),
            ("password", PASSWORD.into()),
        ])
        .sent()
        .await;
    assert!(
        posted
            .headers()
            .get_all("set-cookie")
            .iter()
            .any(|c| c.to_str().unwrap().contains("session")),
        "the session cookie comes with the page"
    );
    let form = form_post_page(posted, registered).await;
    assert_eq!(
        (form.action.as_str(), form.method.as_str()),
        (registered, "post")
    );
    let names: Vec<&str> = form.fields.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(names, ["code", "state", "iss"]);
    assert_eq!(form.get("state"), Some(state));
    assert_eq!(form.get("iss"), Some(issuer.as_str()));
    let code = form.get("code").unwrap().to_owned();
    let tokens = f
        .app
        .client
        .post(f.app.url("/token"))
        .basic_auth("webapp", Some(&webapp_secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", registered),
            ("code_verifier", verifier.as_str()),
        ])
        .sent()
        .await;
    assert_eq!(tokens.status(), 200);

    // Single sign-on: the code at once, posted.
    let silent = browser
        .get(f.url(&format!(
            "{base}&response_type=code&response_mode=form_post&prompt=none"
        )))
        .sent()
        .await;
    let form = form_post_page(silent, registered).await;
    assert!(form.get("code").is_some());

    // Errors found before any page: posted as well, response_type missing included.
    for (query, error) in [
        ("&response_mode=form_post", "invalid_request"),
        (
            "&response_type=token&response_mode=form_post",
            "unsupported_response_type",
        ),
        (
            "&response_mode=form_post&response_type=code&request=x",
            "invalid_request_object",
        ),
        (
            "&response_type=code&response_mode=form_post&prompt=bogus",
            "invalid_request",
        ),
    ] {
        let refused = f
            .app
            .client
            .get(f.url(&format!("{base}{query}")))
            .sent()
            .await;
        let form = form_post_page(refused, registered).await;
        assert_eq!(form.get("error"), Some(error), "{query}");
        assert!(form.get("error_description").is_some());
        assert_eq!(form.get("state"), Some(state));
        assert_eq!(form.get("iss"), Some(issuer.as_str()));
        assert!(form.get("code").is_none());
    }
    // prompt=none without a session: login_required, posted.
    let anonymous = f
        .app
        .client
        .get(f.url(&format!(
            "{base}&response_type=code&response_mode=form_post&prompt=none"
        )))
        .sent()
        .await;
    let form = form_post_page(anonymous, registered).await;
    assert_eq!(form.get("error"), Some("login_required"));

    // Unsupported modes: invalid_request in the default mode (a 303 with the query).
    for mode in ["fragment", "query.jwt", "form_post.jwt", "web_message"] {
        let refused = f
            .app
            .client
            .get(f.url(&format!("{base}&response_type=code&response_mode={mode}")))
            .sent()
            .await;
        assert_eq!(refused.status(), 303, "{mode}");
        let (location, params) = location_params(&refused);
        assert!(location.starts_with(registered), "{location}");
        assert_eq!(param(&params, "error").as_deref(), Some("invalid_request"));
        assert_eq!(param(&params, "state").as_deref(), Some(state));
    }
    // An unknown client or redirect URI is still a page, never a post.
    let unregistered = f
        .app
        .client
        .get(f.url(&format!(
            "client_id=webapp&redirect_uri={}&response_type=code&response_mode=form_post&scope=openid",
            enc("https://evil.example/cb")
        )))
        .sent()
        .await;
    assert_eq!(unregistered.status(), 400);
    assert!(!unregistered.text().await.unwrap().contains("<form"));

    // A third-party client: the consent page, then deny → access_denied, posted.
    let partner_uri = "http://127.0.0.1:9/partner";
    f.app
        .create_client(ClientSpec::new("partner").redirect_uri(partner_uri))
        .await;
    let partner = format!(
        "response_type=code&response_mode=form_post&client_id=partner&redirect_uri={}&scope=openid&state=q&code_challenge={}&code_challenge_method=S256",
        enc(partner_uri),
        pkce(&verifier)
    );
    let consent = browser.get(f.url(&partner)).sent().await;
    let html = consent.text().await.unwrap();
    let denied = answer_consent(&browser, f.app.url("/authorize/consent"), &html, "deny").await;
    let form = form_post_page(denied, partner_uri).await;
    assert_eq!(form.action, partner_uri);
    assert_eq!(form.get("error"), Some("access_denied"));
    assert_eq!(form.get("state"), Some("q"));
    let consent = browser.get(f.url(&partner)).sent().await;
    let html = consent.text().await.unwrap();
    let approved =
        answer_consent(&browser, f.app.url("/authorize/consent"), &html, "approve").await;
    let form = form_post_page(approved, partner_uri).await;
    assert!(form.get("code").is_some());
}

/// Signs `alice` in on `browser` for `url` (a public, third-party-free native client: no
/// consent) and returns the `303`'s `Location`.
async fn signed_in_location(f: &Fixture, browser: &reqwest::Client, url: &str) -> String {
    let page = browser.get(url).sent().await;
    assert_eq!(page.status(), 200, "{url}");
    let html = page.text().await.unwrap();
    let done = browser
        .post(f.app.url("/authorize/login"))
        .form(&[
            ("request_id", hidden(&html, "request_id")),
            ("csrf_token", hidden(&html, "csrf_token")),
            ("username", "alice".into()),
            ("password", PASSWORD.into()),
        ])
        .sent()
        .await;
    assert_eq!(done.status(), 303);
    done.headers()["location"].to_str().unwrap().to_owned()
}

// Issue 15 item 6 (RFC 8252): a native app registered with `http://127.0.0.1/cb` opens its
// listener on an ephemeral port, sends that port in the request, receives the code there (a
// real listener) and redeems it with PKCE and the same redirect URI. Only the port may differ;
// `localhost` matches exactly; `[::1]` works the same; private-use schemes in reverse-domain
// form are registrable for public clients only, and receive the code.
async fn native_apps_use_any_loopback_port_and_private_use_schemes(backend: Backend) {
    let f = Fixture::new(backend).await;
    f.app
        .create_client(
            ClientSpec::new("native")
                .public()
                .first_party()
                .redirect_uri("http://127.0.0.1/cb")
                .redirect_uri("http://[::1]/cb")
                .redirect_uri("http://localhost/cb")
                .redirect_uri("com.example.app:/oauth2redirect"),
        )
        .await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let redirect = format!("http://127.0.0.1:{port}/cb");
    let verifier = "n".repeat(50);
    let request = |redirect: &str| {
        f.url(&format!(
            "response_type=code&client_id=native&redirect_uri={}&scope=openid&state=app-1&code_challenge={}&code_challenge_method=S256",
            enc(redirect),
            pkce(&verifier)
        ))
    };
    let browser = browser();
    let location = signed_in_location(&f, &browser, &request(&redirect)).await;
    assert!(
        location.starts_with(&format!("{redirect}?code=")),
        "{location}"
    );
    // The app's listener receives the redirect.
    let app_side = tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut buffer = vec![0u8; 8192];
        let read = stream.read(&mut buffer).await.unwrap();
        let head = String::from_utf8_lossy(&buffer[..read]).into_owned();
        let _ = stream
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            .await;
        head.split(' ').nth(1).unwrap_or_default().to_owned()
    });
    let delivered = reqwest::get(&location).await.unwrap();
    assert_eq!(delivered.status(), 200);
    let target = app_side.await.unwrap();
    let callback = url::Url::parse(&format!("http://127.0.0.1{target}")).unwrap();
    let params: Vec<(String, String)> = callback.query_pairs().into_owned().collect();
    assert_eq!(param(&params, "state").as_deref(), Some("app-1"));
    let code = param(&params, "code").unwrap();

    let redeem = |code: String, redirect: String| {
        let http = f.app.client.clone();
        let url = f.app.url("/token");
        let verifier = verifier.clone();
        async move {
            http.post(url)
                .form(&[
                    ("grant_type", "authorization_code"),
                    ("client_id", "native"),
                    ("code", code.as_str()),
                    ("redirect_uri", redirect.as_str()),
                    ("code_verifier", verifier.as_str()),
                ])
                .sent()
                .await
        }
    };
    // The token request names the port the code was sent to: another port is another URI.
    let other_port = redeem(code.clone(), format!("http://127.0.0.1:{}/cb", port ^ 1)).await;
    assert_eq!(json_of(other_port).await["error"], "invalid_grant");
    // A fresh code (single sign-on: no login) redeems with the port it was sent to.
    let tokens = {
        let location = {
            let response = browser.get(request(&redirect)).sent().await;
            assert_eq!(response.status(), 303);
            response.headers()["location"].to_str().unwrap().to_owned()
        };
        let url = url::Url::parse(&location).unwrap();
        let params: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        redeem(param(&params, "code").unwrap(), redirect.clone()).await
    };
    assert_eq!(tokens.status(), 200);
    assert!(json_of(tokens).await["id_token"].is_string());

    // [::1] on any port.
    let v6 = "http://[::1]:61023/cb";
    let response = browser.get(request(v6)).sent().await;
    assert_eq!(response.status(), 303);
    assert!(
        response.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with(&format!("{v6}?code=")),
    );
    // Only the port may differ; localhost is matched exactly (no port registered, none
    // accepted); an unregistered URI is a page, never a redirect.
    for refused in [
        format!("http://127.0.0.1:{port}/cb/"),
        format!("http://127.0.0.1:{port}/other"),
        format!("http://127.0.0.2:{port}/cb"),
        format!("https://127.0.0.1:{port}/cb"),
        format!("http://localhost:{port}/cb"),
        "http://127.0.0.1:0/cb".to_owned(),
    ] {
        let response = browser.get(request(&refused)).sent().await;
        assert_eq!(response.status(), 400, "{refused}");
        assert!(response.headers().get("location").is_none(), "{refused}");
    }
    let exact = browser.get(request("http://localhost/cb")).sent().await;
    assert_eq!(exact.status(), 303);

    // A private-use scheme receives the code.
    let response = browser
        .get(request("com.example.app:/oauth2redirect"))
        .sent()
        .await;
    assert_eq!(response.status(), 303);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        location.starts_with("com.example.app:/oauth2redirect?code="),
        "{location}"
    );

    // Private-use schemes: public clients only, reverse-domain form only (admin API, standard
    // error shape, nothing written).
    let admin = f.app.admin_token().await;
    for (body, why) in [
        (
            serde_json::json!({"client_id": "conf", "redirect_uris": ["com.example.app:/cb"]}),
            "public",
        ),
        (
            serde_json::json!({"client_id": "pub", "public": true, "redirect_uris": ["myapp:/cb"]}),
            "private-use",
        ),
    ] {
        let refused = f
            .app
            .send(reqwest::Method::POST, "/admin/clients", &admin, Some(body))
            .await;
        assert_eq!(refused.status(), 400);
        let error = json_of(refused).await;
        assert_eq!(error["error"], "invalid_request", "{error}");
        assert!(
            error["error_description"].as_str().unwrap().contains(why),
            "{error}"
        );
    }
    let clients = json_of(
        f.app
            .send(reqwest::Method::GET, "/admin/clients", &admin, None)
            .await,
    )
    .await;
    let ids: Vec<&str> = clients["clients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["client_id"].as_str().unwrap())
        .collect();
    assert!(!ids.contains(&"conf") && !ids.contains(&"pub"), "{ids:?}");
    // Nor can a confidential client's redirect URIs be changed to one.
    let changed = f
        .app
        .send(
            reqwest::Method::PUT,
            "/admin/clients/webapp/redirect-uris",
            &admin,
            Some(serde_json::json!({"redirect_uris": ["com.example.app:/cb"]})),
        )
        .await;
    assert_eq!(changed.status(), 400);
    let changed = f
        .app
        .send(
            reqwest::Method::PUT,
            "/admin/clients/native/redirect-uris",
            &admin,
            Some(serde_json::json!({"redirect_uris": ["com.example.app:/cb", "http://127.0.0.1/cb"]})),
        )
        .await;
    assert_eq!(changed.status(), 200);
}

on_both_backends!(
    native_apps_use_any_loopback_port_and_private_use_schemes,
    form_post_delivers_codes_and_errors,
    userinfo_takes_the_token_in_a_form_body,
    prompt_none_with_a_too_old_session_says_why,
    token_endpoints_refuse_parameters_in_the_query,
);
