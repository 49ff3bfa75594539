//! Dynamic clients' logos (RFC 7591 §2 `logo_uri`; the OpenID Foundation's
//! `oidcc-registration-logo-uri`): the logo is fetched once at registration through the
//! SSRF-safe fetcher, kept only when its bytes are a PNG, JPEG, GIF or WebP image of at most
//! 64 KiB, and served from our own origin at `/clients/{client_id}/logo`; the login and consent
//! pages show it from there under `img-src 'self'`, so they still load nothing from other origins
//! (AUTHZ-11). A logo that is refused (SVG, HTML, too large, a redirect, an error, plain http)
//! leaves the client registered without one; an RFC 7592 update fetches it again; deleting the
//! client deletes it.

use base64::Engine;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{
    Backend, DocServer, Reply, Sent, TestApp, TestEnv, browser, enc, json_of, pkce, post_login_form,
};
use crate::on_both_backends;
use crate::outbound::outbound_args;

/// The native app's loopback redirect URI.
pub const LOOPBACK: &str = "http://127.0.0.1:9/callback";

/// A 1×1 transparent PNG (67 bytes).
pub fn tiny_png() -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==")
        .unwrap()
}

/// A 32×32 PNG (189 bytes): a blue frame and diagonal, visible in screenshots.
pub fn framed_png() -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode("iVBORw0KGgoAAAANSUhEUgAAACAAAAAgCAIAAAD8GO2jAAAAhElEQVR42u3Wqw3AMAxFUW/SjTphBwwsLwmNmsaf52dSRbrIwEdmluO8SpPfAe1+KGkXVAHjtAogGkuAZWgAxTCAvGEDScMFZAwvABsBADNiAGCEgaiBACEDBPwGDjiNFOAxsoBpEADd4ACKQQNWBhP4NMjAbPCBl1ECjHurgNmQ/fxadf15Venw13eDAAAAAElFTkSuQmCC")
        .unwrap()
}

/// `body` served with `content_type`.
pub fn image(content_type: &str, body: Vec<u8>) -> Reply {
    Reply {
        status: 200,
        headers: vec![("Content-Type".into(), content_type.into())],
        body,
        stall: false,
    }
}

/// A server with open registration whose outbound fetcher trusts `docs` (loopback allowed).
pub async fn server(env: &TestEnv, docs: &DocServer) -> TestApp {
    let mut args = outbound_args(env, docs, true);
    args.client_registration = Some("open".into());
    args.client_registration_max_per_ip = Some(1000);
    env.spawn_with(args).await
}

/// Registers a public native client named `name` with `logo_uri` (if any): the 201 answer.
pub async fn register(app: &TestApp, name: &str, logo_uri: Option<&str>) -> Value {
    let mut metadata = json!({
        "client_name": name,
        "redirect_uris": [LOOPBACK],
        "token_endpoint_auth_method": "none",
        "scope": "openid profile",
    });
    if let Some(uri) = logo_uri {
        metadata["logo_uri"] = uri.into();
    }
    let response = app
        .client
        .post(app.url(&format!("{}/register", issuer_path(app))))
        .json(&metadata)
        .sent()
        .await;
    let status = response.status();
    let body = json_of(response).await;
    assert_eq!(status, StatusCode::CREATED, "{name}: {body}");
    body
}

/// `PUT /register/{client_id}` of `metadata` with the client's current registration access
/// token: the 200 answer (which carries the next token).
async fn update(app: &TestApp, registered: &Value, metadata: Value) -> Value {
    let response = app
        .client
        .put(registered["registration_client_uri"].as_str().unwrap())
        .bearer_auth(registered["registration_access_token"].as_str().unwrap())
        .json(&metadata)
        .sent()
        .await;
    let status = response.status();
    let body = json_of(response).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// The login page of `client_id` in a fresh browser: the browser, the page's CSP and HTML.
async fn login_page(app: &TestApp, client_id: &str) -> (reqwest::Client, String, String) {
    let url = app.url(&format!(
        "{}/authorize?response_type=code&client_id={client_id}&redirect_uri={}&scope=openid&state=s1\
         &code_challenge={}&code_challenge_method=S256",
        issuer_path(app),
        enc(LOOPBACK),
        pkce(&"v".repeat(50))
    ));
    let browser = browser();
    let page = browser.get(&url).sent().await;
    assert_eq!(page.status(), StatusCode::OK);
    let csp = csp_of(&page);
    (browser, csp, page.text().await.unwrap())
}

fn csp_of(page: &reqwest::Response) -> String {
    page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned()
}

/// AUTHZ-11: the page's CSP names no origin at all — every source is a keyword (`'none'`,
/// `'self'`, `'unsafe-inline'`) — and allows images from our own origin only.
fn assert_first_party_only(csp: &str) {
    let directives: Vec<&str> = csp.split(';').map(str::trim).collect();
    assert!(directives.contains(&"default-src 'none'"), "{csp}");
    assert!(directives.contains(&"img-src 'self'"), "{csp}");
    for directive in &directives {
        for source in directive.split_whitespace().skip(1) {
            assert!(
                source.starts_with('\'') && source.ends_with('\''),
                "`{source}` in {csp}"
            );
        }
    }
}

/// `GET /clients/{client_id}/logo`: status, headers and bytes.
async fn logo(app: &TestApp, client_id: &str) -> (StatusCode, reqwest::header::HeaderMap, Vec<u8>) {
    let response = app
        .get(&format!("{}/clients/{client_id}/logo", issuer_path(app)))
        .await;
    let (status, headers) = (response.status(), response.headers().clone());
    (status, headers, response.bytes().await.unwrap().to_vec())
}

/// The issuer's path (`""` at the root), which every route is under.
fn issuer_path(app: &TestApp) -> String {
    url::Url::parse(&app.issuer)
        .unwrap()
        .path()
        .trim_end_matches('/')
        .to_owned()
}

/// The `<img>` the hosted pages show for a client with a logo.
fn logo_img(app: &TestApp, client_id: &str, alt: &str) -> String {
    let path = issuer_path(app);
    format!(
        "<img class=\"client-logo\" src=\"{path}/clients/{client_id}/logo\" alt=\"{alt} logo\">"
    )
}

// A client registers with a logo_uri: the logo is fetched once, the login and consent pages show
// it from our own origin (the image URL resolves to the server's origin, the CSP names no other
// origin, the page never mentions the client's URL), the logo endpoint answers the same bytes
// with nosniff, a strict CSP and a short public cache; nothing is fetched again per page;
// deleting the client deletes the logo.
async fn a_registered_logo_is_shown_from_our_origin(backend: Backend) {
    let docs = DocServer::start().await;
    let env = TestEnv::new(backend).await;
    let app = server(&env, &docs).await;
    app.create_user("alice").await;
    let png = tiny_png();
    docs.serve("/logo.png", image("image/png", png.clone()));
    let logo_uri = docs.url("/logo.png");
    let registered = register(&app, "Logo App", Some(&logo_uri)).await;
    let client_id = registered["client_id"].as_str().unwrap().to_owned();
    assert_eq!(
        registered["logo_uri"],
        logo_uri.as_str(),
        "echoed as registered"
    );
    assert_eq!(docs.requests("/logo.png"), 1, "fetched at registration");

    let (status, headers, bytes) = logo(&app, &client_id).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(bytes, png);
    assert_eq!(headers["content-type"], "image/png");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["content-security-policy"], "default-src 'none'");
    assert_eq!(headers["cache-control"], "public, max-age=300");
    let head = app
        .client
        .head(app.url(&format!("/clients/{client_id}/logo")))
        .sent()
        .await;
    assert_eq!(head.status(), StatusCode::OK);

    let (browser, csp, html) = login_page(&app, &client_id).await;
    let img = logo_img(&app, &client_id, "Logo App");
    assert!(html.contains(&img), "{img} in {html}");
    let src = img.split('"').nth(3).unwrap();
    let resolved = url::Url::parse(&app.address).unwrap().join(src).unwrap();
    assert_eq!(
        resolved.origin(),
        url::Url::parse(&app.address).unwrap().origin(),
        "the image is on our origin"
    );
    assert_eq!(
        resolved.as_str(),
        app.url(&format!("/clients/{client_id}/logo"))
    );
    assert!(
        !html.contains(&format!(":{}", docs.port)),
        "no reference to the client's host"
    );
    assert_first_party_only(&csp);

    let consent = post_login_form(&browser, &app.address, &html, "alice").await;
    assert_eq!(consent.status(), StatusCode::OK, "the consent page");
    assert_first_party_only(&csp_of(&consent));
    let consent_html = consent.text().await.unwrap();
    assert!(consent_html.contains("name=\"decision\""), "{consent_html}");
    assert!(consent_html.contains(&img), "{consent_html}");
    assert_eq!(docs.requests("/logo.png"), 1, "the pages fetch nothing");

    // A client without a logo: no image, no logo endpoint.
    let plain = register(&app, "Plain App", None).await;
    let plain_id = plain["client_id"].as_str().unwrap();
    let (_, _, html) = login_page(&app, plain_id).await;
    assert!(!html.contains("<img"), "{html}");
    assert_eq!(logo(&app, plain_id).await.0, StatusCode::NOT_FOUND);
    assert_eq!(logo(&app, "no-such-client").await.0, StatusCode::NOT_FOUND);

    // RFC 7592 deletion takes the logo with the client.
    let deleted = app
        .client
        .delete(registered["registration_client_uri"].as_str().unwrap())
        .bearer_auth(registered["registration_access_token"].as_str().unwrap())
        .sent()
        .await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    assert_eq!(logo(&app, &client_id).await.0, StatusCode::NOT_FOUND);
}

// Logos that are not a small PNG, JPEG, GIF or WebP served directly over https are not stored,
// and the registration succeeds all the same: SVG (it can carry script), HTML (also when it is
// labelled image/png), a body over 64 KiB, a redirect (not followed), an error status, a
// non-image content type, plain http. The bytes decide the stored type (a JPEG labelled
// image/png is served as image/jpeg); exactly 64 KiB is accepted.
async fn refused_logos_leave_the_client_without_one(backend: Backend) {
    let docs = DocServer::start().await;
    let env = TestEnv::new(backend).await;
    let app = server(&env, &docs).await;
    let svg = b"<svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>".to_vec();
    let html = b"<!doctype html><html><body>hi</body></html>".to_vec();
    let mut oversized = tiny_png();
    oversized.resize(64 * 1024 + 1, 0);
    docs.serve("/logo.svg", image("image/svg+xml", svg));
    docs.serve(
        "/page.html",
        image("text/html; charset=utf-8", html.clone()),
    );
    docs.serve("/fake.png", image("image/png", html));
    docs.serve("/big.png", image("image/png", oversized));
    docs.serve("/octets.png", image("application/octet-stream", tiny_png()));
    docs.serve("/target.png", image("image/png", tiny_png()));
    docs.serve(
        "/moved.png",
        Reply {
            status: 302,
            headers: vec![("Location".into(), docs.url("/target.png"))],
            body: Vec::new(),
            stall: false,
        },
    );
    docs.serve(
        "/broken.png",
        Reply {
            status: 500,
            ..image("image/png", tiny_png())
        },
    );
    let port = docs.port;
    for (path, what) in [
        (docs.url("/logo.svg"), "SVG"),
        (docs.url("/page.html"), "HTML"),
        (docs.url("/fake.png"), "HTML labelled image/png"),
        (docs.url("/big.png"), "over 64 KiB"),
        (docs.url("/octets.png"), "not an image content type"),
        (docs.url("/moved.png"), "a redirect"),
        (docs.url("/broken.png"), "status 500"),
        (docs.url("/missing.png"), "status 404"),
        (format!("http://127.0.0.1:{port}/logo.png"), "plain http"),
    ] {
        let registered = register(&app, "Refused", Some(&path)).await;
        let client_id = registered["client_id"].as_str().unwrap();
        assert_eq!(registered["logo_uri"], path.as_str(), "{what}: echoed");
        assert_eq!(
            logo(&app, client_id).await.0,
            StatusCode::NOT_FOUND,
            "{what}"
        );
        let (_, csp, page) = login_page(&app, client_id).await;
        assert!(!page.contains("<img"), "{what}: {page}");
        assert_first_party_only(&csp);
    }
    assert_eq!(
        docs.requests("/target.png"),
        0,
        "the redirect was not followed"
    );
    assert_eq!(docs.requests("/big.png"), 1);

    let mut jpeg = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01".to_vec();
    jpeg.resize(64 * 1024, 0);
    docs.serve("/photo.png", image("image/png", jpeg.clone()));
    let registered = register(&app, "Photo", Some(&docs.url("/photo.png"))).await;
    let (status, headers, bytes) = logo(&app, registered["client_id"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK, "exactly 64 KiB is accepted");
    assert_eq!(headers["content-type"], "image/jpeg", "the bytes decide");
    assert_eq!(bytes, jpeg);
}

// RFC 7592 updates: a client registered with a refused logo gets one by updating its logo_uri;
// an update that keeps the URL fetches again (a new image replaces the old one; a failed fetch
// keeps the old one); a new URL that fails, or no logo_uri, removes it.
async fn updates_fetch_the_logo_again(backend: Backend) {
    let docs = DocServer::start().await;
    let env = TestEnv::new(backend).await;
    let app = server(&env, &docs).await;
    docs.serve("/a.svg", image("image/svg+xml", b"<svg/>".to_vec()));
    let registered = register(&app, "Updater", Some(&docs.url("/a.svg"))).await;
    let client_id = registered["client_id"].as_str().unwrap().to_owned();
    assert_eq!(logo(&app, &client_id).await.0, StatusCode::NOT_FOUND);
    let metadata = |logo_uri: Option<String>| {
        let mut body = json!({
            "client_id": client_id,
            "client_name": "Updater",
            "redirect_uris": [LOOPBACK],
            "token_endpoint_auth_method": "none",
            "scope": "openid profile",
        });
        if let Some(uri) = logo_uri {
            body["logo_uri"] = uri.into();
        }
        body
    };

    let png = tiny_png();
    docs.serve("/b.png", image("image/png", png.clone()));
    let updated = update(&app, &registered, metadata(Some(docs.url("/b.png")))).await;
    let (status, _, bytes) = logo(&app, &client_id).await;
    assert_eq!(status, StatusCode::OK, "the update fetched the new logo");
    assert_eq!(bytes, png);
    let (_, _, html) = login_page(&app, &client_id).await;
    assert!(
        html.contains(&logo_img(&app, &client_id, "Updater")),
        "{html}"
    );

    // Same URL, new image: replaced.
    let gif = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;".to_vec();
    docs.serve("/b.png", image("image/gif", gif.clone()));
    let updated = update(&app, &updated, metadata(Some(docs.url("/b.png")))).await;
    let (_, headers, bytes) = logo(&app, &client_id).await;
    assert_eq!(
        (headers["content-type"].to_str().unwrap(), bytes),
        ("image/gif", gif.clone())
    );

    // Same URL, failing now: the stored logo stays.
    docs.serve(
        "/b.png",
        Reply {
            status: 503,
            ..image("image/png", Vec::new())
        },
    );
    let updated = update(&app, &updated, metadata(Some(docs.url("/b.png")))).await;
    assert_eq!(
        logo(&app, &client_id).await.2,
        gif,
        "kept through a failed refetch"
    );

    // A new URL that fails: removed.
    let updated = update(&app, &updated, metadata(Some(docs.url("/a.svg")))).await;
    assert_eq!(logo(&app, &client_id).await.0, StatusCode::NOT_FOUND);

    // Back to a good one, then no logo_uri at all: removed.
    docs.serve("/c.png", image("image/png", png));
    let updated = update(&app, &updated, metadata(Some(docs.url("/c.png")))).await;
    assert_eq!(logo(&app, &client_id).await.0, StatusCode::OK);
    let cleared = update(&app, &updated, metadata(None)).await;
    assert!(cleared.get("logo_uri").is_none());
    assert_eq!(logo(&app, &client_id).await.0, StatusCode::NOT_FOUND);
    let (_, _, html) = login_page(&app, &client_id).await;
    assert!(!html.contains("<img"), "{html}");

    // Each update may name a new URL, so logo fetches have a budget per client (10 an hour;
    // six spent above): an update beyond it fetches nothing; a new URL then leaves no logo, an
    // unchanged one keeps the stored logo.
    let mut updated = cleared;
    for _ in 0..4 {
        updated = update(&app, &updated, metadata(Some(docs.url("/c.png")))).await;
    }
    assert_eq!(docs.requests("/c.png"), 5);
    assert_eq!(logo(&app, &client_id).await.0, StatusCode::OK);
    let updated = update(&app, &updated, metadata(Some(docs.url("/c.png")))).await;
    assert_eq!(docs.requests("/c.png"), 5, "over the budget: not fetched");
    assert_eq!(
        logo(&app, &client_id).await.0,
        StatusCode::OK,
        "unchanged URL: kept"
    );
    docs.serve("/d.png", image("image/png", tiny_png()));
    let updated = update(&app, &updated, metadata(Some(docs.url("/d.png")))).await;
    assert_eq!(
        updated["logo_uri"],
        docs.url("/d.png"),
        "the registration still changes"
    );
    assert_eq!(docs.requests("/d.png"), 0, "over the budget: not fetched");
    assert_eq!(
        logo(&app, &client_id).await.0,
        StatusCode::NOT_FOUND,
        "new URL: no logo"
    );
}

// Under an issuer with a path, the logo is served under that path (like every route) and the
// pages point there.
async fn logos_live_under_the_issuer_path(backend: Backend) {
    let docs = DocServer::start().await;
    let env = TestEnv::new(backend).await;
    let mut args = outbound_args(&env, &docs, true);
    args.client_registration = Some("open".into());
    args.issuer = Some("http://localhost/idp".into());
    let app = env.spawn_with(args).await;
    docs.serve("/logo.png", image("image/png", tiny_png()));
    let registered = register(&app, "Pathed", Some(&docs.url("/logo.png"))).await;
    let client_id = registered["client_id"].as_str().unwrap();
    let (_, csp, html) = login_page(&app, client_id).await;
    let img = format!(
        "<img class=\"client-logo\" src=\"/idp/clients/{client_id}/logo\" alt=\"Pathed logo\">"
    );
    assert!(html.contains(&img), "{img} in {html}");
    assert_first_party_only(&csp);
    let (status, _, bytes) = logo(&app, client_id).await;
    assert_eq!((status, bytes), (StatusCode::OK, tiny_png()));
    let at_root = app.get(&format!("/clients/{client_id}/logo")).await;
    assert_eq!(at_root.status(), StatusCode::NOT_FOUND);
}

on_both_backends!(
    a_registered_logo_is_shown_from_our_origin,
    refused_logos_leave_the_client_without_one,
    updates_fetch_the_logo_again,
    logos_live_under_the_issuer_path,
);
