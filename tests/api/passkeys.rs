//! Passkeys (issue 17 item 1), on both backends, through real HTTP: registration on the account
//! page, sign-in without a password and a passkey as the second factor through the hosted login
//! of an authorization-code flow, `amr`/`acr`, removal, the JSON API's answer for an account
//! whose only second factor is a passkey, and an IP issuer (passkeys unavailable). The browser
//! side is a software authenticator written here from the WebAuthn Level 2 formats (CBOR
//! attestation object with attestation `none`, ES256 assertions signed by aws-lc-rs),
//! independently of the server's webauthn-rs, so it can also forge what a real browser would
//! never send. Attacks: WEBAUTHN-01 an assertion for another origin or rpId, WEBAUTHN-02 a
//! ceremony answered twice (challenge replay), WEBAUTHN-03 a counter that does not move forward,
//! WEBAUTHN-04 no user verification; a removed passkey, another user's passkey. The same
//! ceremonies in headless Chromium with chromedriver's virtual authenticator are in
//! `browser.rs`.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Backend, Fixture, Sent, TestEnv, browser, code_of, hidden, json_of};
use crate::on_both_backends;
use crate::second_factors::{acr_amr, authorize_url, password_session, password_step, redeem};

/// User present, user verified, attested credential data (WebAuthn §6.1 flags).
const UP: u8 = 0x01;
const UV: u8 = 0x04;
const AT: u8 = 0x40;
const ACR_MFA: &str = "urn:portcullis:acr:mfa";

fn sha256(data: &[u8]) -> Vec<u8> {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data)
        .as_ref()
        .to_vec()
}

/// A CBOR head (RFC 8949 §3): major type and argument.
fn cbor_head(major: u8, value: usize) -> Vec<u8> {
    let major = major << 5;
    match value {
        0..=23 => vec![major | value as u8],
        24..=255 => vec![major | 24, value as u8],
        _ => {
            let mut head = vec![major | 25];
            head.extend_from_slice(&(value as u16).to_be_bytes());
            head
        }
    }
}

fn cbor_bytes(data: &[u8]) -> Vec<u8> {
    let mut out = cbor_head(2, data.len());
    out.extend_from_slice(data);
    out
}

fn cbor_text(text: &str) -> Vec<u8> {
    let mut out = cbor_head(3, text.len());
    out.extend_from_slice(text.as_bytes());
    out
}

/// What a test changes in an authenticator's answer (all `None`: an honest answer).
#[derive(Default, Clone)]
struct Forge {
    /// clientData `origin` instead of the server's.
    origin: Option<String>,
    /// The RP id hashed into the authenticator data instead of the server's.
    rp_id: Option<String>,
    /// Authenticator data flags instead of UP|UV (|AT on registration).
    flags: Option<u8>,
    /// The signature counter to report instead of the next one.
    counter: Option<u32>,
    /// Another signature over the data (a corrupted one).
    bad_signature: bool,
}

/// A software authenticator holding one ES256 discoverable credential for `rp_id`.
struct Authenticator {
    key: EcdsaKeyPair,
    credential_id: Vec<u8>,
    /// The user handle the relying party gave at registration.
    user_handle: Vec<u8>,
    counter: u32,
    rp_id: String,
    origin: String,
}

impl Authenticator {
    /// A new authenticator for the server whose issuer is `issuer` (`http://localhost:PORT`).
    fn new(issuer: &str) -> Self {
        let url = url::Url::parse(issuer).unwrap();
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        let key =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref()).unwrap();
        let mut credential_id = vec![0u8; 32];
        aws_lc_rs::rand::fill(&mut credential_id).unwrap();
        Self {
            key,
            credential_id,
            user_handle: Vec::new(),
            counter: 0,
            rp_id: url.host_str().unwrap().to_owned(),
            origin: url.origin().ascii_serialization(),
        }
    }

    fn client_data(&self, kind: &str, options: &Value, forge: &Forge) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "type": kind,
            "challenge": options["publicKey"]["challenge"],
            "origin": forge.origin.clone().unwrap_or_else(|| self.origin.clone()),
            "crossOrigin": false,
        }))
        .unwrap()
    }

    fn auth_data_head(&self, flags: u8, counter: u32, forge: &Forge) -> Vec<u8> {
        let rp_id = forge.rp_id.as_deref().unwrap_or(&self.rp_id);
        let mut data = sha256(rp_id.as_bytes());
        data.push(flags);
        data.extend_from_slice(&counter.to_be_bytes());
        data
    }

    /// `navigator.credentials.create()`: the credential JSON the page's script would post for
    /// the creation `options`.
    fn register(&mut self, options: &Value, forge: &Forge) -> String {
        let pk = &options["publicKey"];
        assert_eq!(pk["rp"]["id"], self.rp_id.as_str(), "{options}");
        self.user_handle = B64
            .decode(pk["user"]["id"].as_str().unwrap().trim_end_matches('='))
            .unwrap();
        let client_data = self.client_data("webauthn.create", options, forge);
        let mut auth_data = self.auth_data_head(forge.flags.unwrap_or(UP | UV | AT), 0, forge);
        auth_data.extend_from_slice(&[0u8; 16]); // AAGUID: none
        auth_data.extend_from_slice(&(self.credential_id.len() as u16).to_be_bytes());
        auth_data.extend_from_slice(&self.credential_id);
        // COSE_Key (RFC 9053 §7.1.1): {1: 2 (EC2), 3: -7 (ES256), -1: 1 (P-256), -2: x, -3: y}.
        let point = self.key.public_key().as_ref();
        auth_data.extend_from_slice(&[0xa5, 0x01, 0x02, 0x03, 0x26, 0x20, 0x01, 0x21]);
        auth_data.extend_from_slice(&cbor_bytes(&point[1..33]));
        auth_data.push(0x22);
        auth_data.extend_from_slice(&cbor_bytes(&point[33..65]));
        // Attestation `none` (WebAuthn §8.7): {"fmt": "none", "attStmt": {}, "authData": …}.
        let mut attestation = vec![0xa3];
        attestation.extend(cbor_text("fmt"));
        attestation.extend(cbor_text("none"));
        attestation.extend(cbor_text("attStmt"));
        attestation.push(0xa0);
        attestation.extend(cbor_text("authData"));
        attestation.extend(cbor_bytes(&auth_data));
        serde_json::to_string(&json!({
            "id": B64.encode(&self.credential_id),
            "rawId": B64.encode(&self.credential_id),
            "type": "public-key",
            "extensions": {},
            "response": {
                "attestationObject": B64.encode(&attestation),
                "clientDataJSON": B64.encode(&client_data),
                "transports": ["internal"],
            },
        }))
        .unwrap()
    }

    /// `navigator.credentials.get()`: the assertion JSON for the request `options`, its counter
    /// one more than the last (unless forged).
    fn assert(&mut self, options: &Value, forge: &Forge) -> String {
        let client_data = self.client_data("webauthn.get", options, forge);
        let counter = forge.counter.unwrap_or(self.counter + 1);
        self.counter = self.counter.max(counter);
        let auth_data = self.auth_data_head(forge.flags.unwrap_or(UP | UV), counter, forge);
        let mut signed = auth_data.clone();
        signed.extend(sha256(&client_data));
        if forge.bad_signature {
            signed.push(0);
        }
        let signature = self.key.sign(&SystemRandom::new(), &signed).unwrap();
        serde_json::to_string(&json!({
            "id": B64.encode(&self.credential_id),
            "rawId": B64.encode(&self.credential_id),
            "type": "public-key",
            "extensions": {},
            "response": {
                "authenticatorData": B64.encode(&auth_data),
                "clientDataJSON": B64.encode(&client_data),
                "signature": B64.encode(signature.as_ref()),
                "userHandle": B64.encode(&self.user_handle),
            },
        }))
        .unwrap()
    }
}

/// The `data-webauthn` options of a ceremony page (HTML-unescaped JSON).
fn options_of(html: &str) -> Value {
    let marker = "data-webauthn=\"";
    let start = html
        .find(marker)
        .unwrap_or_else(|| panic!("no options in {html}"))
        + marker.len();
    let end = html[start..].find('"').unwrap() + start;
    let text = html[start..end]
        .replace("&#34;", "\"")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#60;", "<")
        .replace("&#62;", ">")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&#38;", "&")
        .replace("&amp;", "&");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("options {text}: {e}"))
}

/// A server whose issuer is `http://localhost:PORT` (bound on 127.0.0.1:PORT): passkeys need a
/// domain as relying-party id, and browsers treat `localhost` as a secure context.
pub(crate) async fn localhost_fixture(backend: Backend) -> Fixture {
    let env = TestEnv::new(backend).await;
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let args = portcullis::config::SettingsArgs {
        bind: Some(format!("127.0.0.1:{port}")),
        issuer: Some(format!("http://localhost:{port}")),
        ..env.args()
    };
    Fixture::on_with(env, args).await
}

/// The account security page of the browser's session.
async fn security_page(f: &Fixture, browser: &reqwest::Client) -> String {
    let page = browser.get(f.app.url("/account/security")).sent().await;
    assert_eq!(page.status(), StatusCode::OK);
    page.text().await.unwrap()
}

/// Starts registering a passkey named `name` on the account page: the ceremony page.
async fn start_registration(
    f: &Fixture,
    browser: &reqwest::Client,
    name: &str,
) -> reqwest::Response {
    let html = security_page(f, browser).await;
    browser
        .post(f.app.url("/account/security"))
        .form(&[
            ("csrf_token", hidden(&html, "csrf_token").as_str()),
            ("action", "passkey-start"),
            ("passkey_name", name),
        ])
        .sent()
        .await
}

/// Posts the ceremony page `html`'s form with `credential`.
async fn post_ceremony(
    f: &Fixture,
    browser: &reqwest::Client,
    path: &str,
    html: &str,
    credential: &str,
) -> reqwest::Response {
    let mut form: Vec<(&str, String)> = vec![
        ("csrf_token", hidden(html, "csrf_token")),
        ("ceremony", hidden(html, "ceremony")),
        ("credential", credential.to_owned()),
    ];
    if path == "/account/security" {
        form.push(("action", "passkey-finish".into()));
    } else {
        form.push(("request_id", hidden(html, "request_id")));
        form.push(("step", "finish".into()));
    }
    browser.post(f.app.url(path)).form(&form).sent().await
}

/// Registers `authenticator`'s passkey as `name` for the browser's signed-in user: the security
/// page after.
async fn register(
    f: &Fixture,
    browser: &reqwest::Client,
    authenticator: &mut Authenticator,
    name: &str,
) -> String {
    let started = start_registration(f, browser, name).await;
    assert_eq!(started.status(), StatusCode::OK);
    let html = started.text().await.unwrap();
    let options = options_of(&html);
    let credential = authenticator.register(&options, &Forge::default());
    let done = post_ceremony(f, browser, "/account/security", &html, &credential).await;
    assert_eq!(done.status(), StatusCode::OK);
    let html = done.text().await.unwrap();
    assert!(
        html.contains(&format!("<strong class=\"passkey-name\">{name}</strong>")),
        "{html}"
    );
    html
}

/// Alice signed in with her password in a browser, with a passkey registered: the fixture, the
/// browser and the authenticator.
async fn with_passkey(backend: Backend) -> (Fixture, reqwest::Client, Authenticator) {
    let f = localhost_fixture(backend).await;
    let browser = browser();
    password_session(&f, &browser).await;
    let mut authenticator = Authenticator::new(&f.app.issuer);
    register(&f, &browser, &mut authenticator, "Laptop").await;
    (f, browser, authenticator)
}

/// Opens the authorization URL in a fresh browser and starts the passwordless ceremony from
/// its login page: the browser and the ceremony page.
async fn passwordless_start(f: &Fixture) -> (reqwest::Client, String) {
    let fresh = browser();
    let login = fresh.get(authorize_url(f, "")).sent().await;
    assert_eq!(login.status(), StatusCode::OK);
    let html = login.text().await.unwrap();
    assert!(html.contains("Sign in with a passkey"), "{html}");
    let started = fresh
        .post(f.app.url("/authorize/passkey"))
        .form(&[
            ("request_id", hidden(&html, "request_id")),
            ("csrf_token", hidden(&html, "csrf_token")),
            ("step", "start".to_owned()),
        ])
        .sent()
        .await;
    assert_eq!(started.status(), StatusCode::OK);
    // The ceremony page runs the passkey script and nothing else.
    let csp = started.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.starts_with("default-src 'none'")
            && csp.ends_with(&format!("; script-src {}/assets/passkey.js", f.app.issuer)),
        "{csp}"
    );
    let html = started.text().await.unwrap();
    (fresh, html)
}

/// Whether `response` started a browser session (a session cookie set).
fn sets_session(response: &reqwest::Response) -> bool {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .any(|c| c.to_str().unwrap_or("").starts_with("portcullis_session="))
}

/// A refused assertion: 401, the ceremony page again (a new ceremony), no session, no code.
async fn assert_refused(response: reqwest::Response) -> String {
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(!sets_session(&response));
    assert!(response.headers().get("location").is_none());
    let html = response.text().await.unwrap();
    assert!(html.contains("The passkey was not accepted"), "{html}");
    html
}

on_both_backends!(
    a_passkey_registers_and_signs_in_without_a_password,
    a_passkey_is_the_second_factor_after_a_password,
    assertions_for_another_origin_or_rp_id_are_refused,
    a_ceremony_is_answered_once,
    a_counter_that_does_not_move_forward_is_refused,
    user_verification_is_required,
    a_removed_passkey_no_longer_signs_in,
);

async fn a_passkey_registers_and_signs_in_without_a_password(backend: Backend) {
    let f = localhost_fixture(backend).await;
    let browser = browser();
    password_session(&f, &browser).await;
    let html = security_page(&f, &browser).await;
    assert!(
        html.contains("id=\"passkeys-status\">No passkey yet."),
        "{html}"
    );
    let started = start_registration(&f, &browser, "Laptop").await;
    let html = started.text().await.unwrap();
    let options = options_of(&html);
    let pk = &options["publicKey"];
    // A discoverable credential with user verification, attestation none, for rp id localhost;
    // the user handle is the user's id (a UUID), not their name.
    assert_eq!(pk["rp"]["id"], "localhost");
    assert_eq!(pk["authenticatorSelection"]["residentKey"], "required");
    assert_eq!(pk["authenticatorSelection"]["userVerification"], "required");
    assert_eq!(pk["attestation"], "none");
    let handle = B64.decode(pk["user"]["id"].as_str().unwrap()).unwrap();
    assert_eq!(
        uuid::Uuid::from_slice(&handle).unwrap().to_string(),
        f.user_id
    );
    let mut authenticator = Authenticator::new(&f.app.issuer);
    let credential = authenticator.register(&options, &Forge::default());
    let done = post_ceremony(&f, &browser, "/account/security", &html, &credential).await;
    assert_eq!(done.status(), StatusCode::OK);
    let html = done.text().await.unwrap();
    assert!(
        html.contains("Passkey \u{201c}Laptop\u{201d} added."),
        "{html}"
    );
    assert!(
        html.contains("<strong class=\"passkey-name\">Laptop</strong>, added"),
        "{html}"
    );
    assert!(html.contains("never used"), "{html}");
    // The same credential again (to this or any account) is refused: one account per credential.
    let again = start_registration(&f, &browser, "Twice").await;
    let again_html = again.text().await.unwrap();
    let again_options = options_of(&again_html);
    // Excluded by the options already (the browser would refuse to make it again)...
    assert_eq!(
        again_options["publicKey"]["excludeCredentials"][0]["id"],
        B64.encode(&authenticator.credential_id)
    );
    // ...and by the server when sent anyway,
    let twice = authenticator.register(&again_options, &Forge::default());
    let refused = post_ceremony(&f, &browser, "/account/security", &again_html, &twice).await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    // and for another account (whose options do not exclude it).
    let carol = browser_with_session(&f).await;
    let started = start_registration(&f, &carol, "Stolen").await;
    let carol_html = started.text().await.unwrap();
    let stolen = authenticator.register(&options_of(&carol_html), &Forge::default());
    let refused = post_ceremony(&f, &carol, "/account/security", &carol_html, &stolen).await;
    assert_eq!(refused.status(), StatusCode::CONFLICT);
    // The authenticator's user handle stays alice's (the one her registration gave).
    authenticator.user_handle = handle.clone();

    // Passwordless: the login page's passkey button, the ceremony, the code.
    let (fresh, html) = passwordless_start(&f).await;
    let options = options_of(&html);
    assert_eq!(options["publicKey"]["userVerification"], "required");
    assert!(
        options.get("mediation").is_none(),
        "a modal prompt: {options}"
    );
    let credential = authenticator.assert(&options, &Forge::default());
    let response = post_ceremony(&f, &fresh, "/authorize/passkey", &html, &credential).await;
    assert!(sets_session(&response));
    let tokens = redeem(&f, &code_of(&response)).await;
    for (acr, amr) in acr_amr(&tokens) {
        assert_eq!(acr, ACR_MFA);
        assert_eq!(amr, json!(["hwk", "user", "mfa"]));
    }
    let id = crate::helpers::decode_claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(id["sub"], f.user_id.as_str());
    // The account page shows the use; the counter and flags are stored.
    let html = security_page(&f, &fresh).await;
    assert!(html.contains(", last used "), "{html}");
    let (count, eligible, state) = f
        .env
        .with_db(|conn| {
            use diesel::prelude::*;
            use portcullis::db::schema::second_factors as t;
            t::table
                .filter(t::kind.eq("passkey"))
                .select((t::sign_count, t::backup_eligible, t::backup_state))
                .first::<(Option<i64>, Option<i32>, Option<i32>)>(conn)
                .unwrap()
        })
        .await;
    assert_eq!((count, eligible, state), (Some(1), Some(0), Some(0)));
    // A session started by a passkey needs no password for the next client either.
    let next = fresh.get(authorize_url(&f, "")).sent().await;
    code_of(&next);
}

async fn a_passkey_is_the_second_factor_after_a_password(backend: Backend) {
    let (f, _, mut authenticator) = with_passkey(backend).await;
    // The password, then the second step: a passkey is alice's only factor, so no code form.
    let fresh = browser();
    let step = password_step(&f, &fresh, &authorize_url(&f, "")).await;
    assert_eq!(step.status(), StatusCode::OK);
    let html = step.text().await.unwrap();
    assert!(html.contains("id=\"passkey-second-factor\""), "{html}");
    assert!(!html.contains("name=\"code\""), "{html}");
    let started = fresh
        .post(f.app.url("/authorize/passkey"))
        .form(&[
            ("request_id", hidden(&html, "request_id")),
            ("csrf_token", hidden(&html, "csrf_token")),
            ("step", "start".to_owned()),
        ])
        .sent()
        .await;
    assert_eq!(started.status(), StatusCode::OK);
    let html = started.text().await.unwrap();
    let options = options_of(&html);
    // The user's passkeys are named (not discoverable), with user verification.
    assert_eq!(
        options["publicKey"]["allowCredentials"][0]["id"],
        B64.encode(&authenticator.credential_id)
    );
    assert_eq!(options["publicKey"]["userVerification"], "required");
    let credential = authenticator.assert(&options, &Forge::default());
    let response = post_ceremony(&f, &fresh, "/authorize/passkey", &html, &credential).await;
    let tokens = redeem(&f, &code_of(&response)).await;
    for (acr, amr) in acr_amr(&tokens) {
        assert_eq!(acr, ACR_MFA);
        assert_eq!(amr, json!(["pwd", "hwk", "mfa"]));
    }

    // Another user's passkey is no second factor for alice.
    let bob_id = f.app.create_user("bob").await;
    let bob = browser();
    let login = bob
        .get(authorize_url(&f, ""))
        .sent()
        .await
        .text()
        .await
        .unwrap();
    let bob_session = crate::helpers::post_login_form(&bob, &f.app.address, &login, "bob").await;
    code_of(&bob_session);
    let mut bobs = Authenticator::new(&f.app.issuer);
    register(&f, &bob, &mut bobs, "Bob key").await;
    assert_ne!(bob_id, f.user_id);
    let fresh = browser();
    let step = password_step(&f, &fresh, &authorize_url(&f, "")).await;
    let html = step.text().await.unwrap();
    let started = fresh
        .post(f.app.url("/authorize/passkey"))
        .form(&[
            ("request_id", hidden(&html, "request_id")),
            ("csrf_token", hidden(&html, "csrf_token")),
            ("step", "start".to_owned()),
        ])
        .sent()
        .await;
    let html = started.text().await.unwrap();
    let options = options_of(&html);
    let credential = bobs.assert(&options, &Forge::default());
    assert_refused(post_ceremony(&f, &fresh, "/authorize/passkey", &html, &credential).await).await;
    // A code is no way around it either: alice has no authenticator app.
    let code = fresh
        .post(f.app.url("/authorize/second-factor"))
        .form(&[
            ("request_id", hidden(&html, "request_id")),
            ("csrf_token", hidden(&html, "csrf_token")),
            ("code", "123456".to_owned()),
        ])
        .sent()
        .await;
    assert_eq!(code.status(), StatusCode::UNAUTHORIZED);

    // The JSON API cannot take a passkey: it says so, and issues nothing.
    let response = f.app.login("alice").await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body = json_of(response).await;
    assert_eq!(body["error"], "second_factor_required");
    assert_eq!(body["methods"], json!([]));
    assert_eq!(body["hosted_only"], json!(["passkey"]));
    assert!(body.get("challenge").is_none(), "{body}");
    assert!(body.get("access_token").is_none(), "{body}");
}

async fn assertions_for_another_origin_or_rp_id_are_refused(backend: Backend) {
    // WEBAUTHN-01: clientData's origin and the authenticator data's rpIdHash must be this
    // server's, exactly (no other port, scheme or subdomain).
    let (f, browser, mut authenticator) = with_passkey(backend).await;
    let port = url::Url::parse(&f.app.issuer).unwrap().port().unwrap();
    let (fresh, mut html) = passwordless_start(&f).await;
    for forge in [
        Forge {
            origin: Some(format!("http://evil.localhost:{port}")),
            ..Forge::default()
        },
        Forge {
            origin: Some(format!("http://localhost:{}", port.wrapping_add(1))),
            ..Forge::default()
        },
        Forge {
            origin: Some(format!("https://localhost:{port}")),
            ..Forge::default()
        },
        Forge {
            rp_id: Some("evil.example".into()),
            ..Forge::default()
        },
    ] {
        let options = options_of(&html);
        let credential = authenticator.assert(&options, &forge);
        let response = post_ceremony(&f, &fresh, "/authorize/passkey", &html, &credential).await;
        // The refusal page holds a new ceremony for the next try.
        html = assert_refused(response).await;
    }
    // The honest answer on the same page is accepted (so the refusals were the forgeries').
    let options = options_of(&html);
    let credential = authenticator.assert(&options, &Forge::default());
    let response = post_ceremony(&f, &fresh, "/authorize/passkey", &html, &credential).await;
    code_of(&response);
    // Registration checks the origin too.
    let started = start_registration(&f, &browser, "Forged").await;
    let html = started.text().await.unwrap();
    let mut other = Authenticator::new(&f.app.issuer);
    let forged = other.register(
        &options_of(&html),
        &Forge {
            origin: Some("https://evil.example".into()),
            ..Forge::default()
        },
    );
    let refused = post_ceremony(&f, &browser, "/account/security", &html, &forged).await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    assert!(!refused.text().await.unwrap().contains("Forged</strong>"));
}

async fn a_ceremony_is_answered_once(backend: Backend) {
    // WEBAUTHN-02: a ceremony's challenge is spent by its first answer, whatever that answer.
    let (f, browser, mut authenticator) = with_passkey(backend).await;
    let (fresh, html) = passwordless_start(&f).await;
    let options = options_of(&html);
    let corrupted = authenticator.assert(
        &options,
        &Forge {
            bad_signature: true,
            ..Forge::default()
        },
    );
    assert_refused(post_ceremony(&f, &fresh, "/authorize/passkey", &html, &corrupted).await).await;
    // A correct answer to the spent ceremony is refused.
    let correct = authenticator.assert(&options, &Forge::default());
    assert_refused(post_ceremony(&f, &fresh, "/authorize/passkey", &html, &correct).await).await;
    // An answer to one ceremony does not answer another (its challenge is not the new one).
    let (other, other_html) = passwordless_start(&f).await;
    let replayed = authenticator.assert(&options, &Forge::default());
    assert_refused(post_ceremony(&f, &other, "/authorize/passkey", &other_html, &replayed).await)
        .await;
    // A registration is answered once too.
    let started = start_registration(&f, &browser, "Phone").await;
    let html = started.text().await.unwrap();
    let mut phone = Authenticator::new(&f.app.issuer);
    let credential = phone.register(&options_of(&html), &Forge::default());
    let done = post_ceremony(&f, &browser, "/account/security", &html, &credential).await;
    assert_eq!(done.status(), StatusCode::OK);
    let replay = post_ceremony(&f, &browser, "/account/security", &html, &credential).await;
    assert_eq!(replay.status(), StatusCode::BAD_REQUEST);
}

async fn a_counter_that_does_not_move_forward_is_refused(backend: Backend) {
    // WEBAUTHN-03: a signature counter at or below the stored one (a cloned authenticator) is
    // refused; the passkey stays, and its owner's next real use passes.
    let (f, _, mut authenticator) = with_passkey(backend).await;
    let (fresh, html) = passwordless_start(&f).await;
    let forge = Forge {
        counter: Some(5),
        ..Forge::default()
    };
    let credential = authenticator.assert(&options_of(&html), &forge);
    code_of(&post_ceremony(&f, &fresh, "/authorize/passkey", &html, &credential).await);
    for counter in [5, 4] {
        let (fresh, html) = passwordless_start(&f).await;
        let forge = Forge {
            counter: Some(counter),
            ..Forge::default()
        };
        let credential = authenticator.assert(&options_of(&html), &forge);
        assert_refused(post_ceremony(&f, &fresh, "/authorize/passkey", &html, &credential).await)
            .await;
    }
    let stored = f
        .env
        .with_db(|conn| {
            use diesel::prelude::*;
            use portcullis::db::schema::second_factors as t;
            t::table
                .filter(t::kind.eq("passkey"))
                .select(t::sign_count)
                .first::<Option<i64>>(conn)
                .unwrap()
        })
        .await;
    assert_eq!(stored, Some(5), "the counter never moves back");
    let (fresh, html) = passwordless_start(&f).await;
    let credential = authenticator.assert(&options_of(&html), &Forge::default());
    code_of(&post_ceremony(&f, &fresh, "/authorize/passkey", &html, &credential).await);
}

async fn user_verification_is_required(backend: Backend) {
    // WEBAUTHN-04: without the UV flag (presence only) neither a sign-in nor a registration
    // passes: a passkey counts as two factors only with user verification.
    let (f, browser, mut authenticator) = with_passkey(backend).await;
    let (fresh, html) = passwordless_start(&f).await;
    let presence_only = Forge {
        flags: Some(UP),
        ..Forge::default()
    };
    let credential = authenticator.assert(&options_of(&html), &presence_only);
    let html =
        assert_refused(post_ceremony(&f, &fresh, "/authorize/passkey", &html, &credential).await)
            .await;
    let credential = authenticator.assert(&options_of(&html), &Forge::default());
    code_of(&post_ceremony(&f, &fresh, "/authorize/passkey", &html, &credential).await);
    let started = start_registration(&f, &browser, "No UV").await;
    let html = started.text().await.unwrap();
    let mut other = Authenticator::new(&f.app.issuer);
    let credential = other.register(
        &options_of(&html),
        &Forge {
            flags: Some(UP | AT),
            ..Forge::default()
        },
    );
    let refused = post_ceremony(&f, &browser, "/account/security", &html, &credential).await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
}

async fn a_removed_passkey_no_longer_signs_in(backend: Backend) {
    let (f, browser, mut authenticator) = with_passkey(backend).await;
    let mut phone = Authenticator::new(&f.app.issuer);
    let html = register(&f, &browser, &mut phone, "Phone").await;
    // A ceremony started before the removal, answered after it.
    let (fresh, ceremony_html) = passwordless_start(&f).await;
    let laptop = html
        .split("data-passkey=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    // Nobody else can remove it (the form's CSRF token is bound to the session).
    let stranger = browser_with_session(&f).await;
    let stranger_html = security_page(&f, &stranger).await;
    let foreign = stranger
        .post(f.app.url("/account/security"))
        .form(&[
            ("csrf_token", hidden(&stranger_html, "csrf_token").as_str()),
            ("action", "passkey-remove"),
            ("passkey_id", laptop.as_str()),
        ])
        .sent()
        .await;
    assert_eq!(foreign.status(), StatusCode::NOT_FOUND);
    let removed = browser
        .post(f.app.url("/account/security"))
        .form(&[
            ("csrf_token", hidden(&html, "csrf_token").as_str()),
            ("action", "passkey-remove"),
            ("passkey_id", laptop.as_str()),
        ])
        .sent()
        .await;
    assert_eq!(removed.status(), StatusCode::OK);
    let html = removed.text().await.unwrap();
    assert!(
        !html.contains(">Laptop</strong>") && html.contains(">Phone</strong>"),
        "{html}"
    );
    let credential = authenticator.assert(&options_of(&ceremony_html), &Forge::default());
    assert_refused(
        post_ceremony(
            &f,
            &fresh,
            "/authorize/passkey",
            &ceremony_html,
            &credential,
        )
        .await,
    )
    .await;
    // The other passkey still signs in; a new registration no longer excludes the removed one.
    let (fresh, html) = passwordless_start(&f).await;
    let credential = phone.assert(&options_of(&html), &Forge::default());
    code_of(&post_ceremony(&f, &fresh, "/authorize/passkey", &html, &credential).await);
    let started = start_registration(&f, &browser, "Again").await;
    let options = options_of(&started.text().await.unwrap());
    let excluded = options["publicKey"]["excludeCredentials"]
        .as_array()
        .unwrap();
    assert_eq!(excluded.len(), 1, "{options}");
    assert_eq!(excluded[0]["id"], B64.encode(&phone.credential_id));
}

/// A fresh browser signed in as a new user `carol` with her password.
async fn browser_with_session(f: &Fixture) -> reqwest::Client {
    f.app.create_user("carol").await;
    let carol = browser();
    let login = carol
        .get(authorize_url(f, ""))
        .sent()
        .await
        .text()
        .await
        .unwrap();
    let response = crate::helpers::post_login_form(&carol, &f.app.address, &login, "carol").await;
    code_of(&response);
    carol
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ip_issuer_has_no_passkeys() {
    // The default issuer, http://127.0.0.1:PORT: an IP address is no relying-party id, so the
    // server starts without passkeys and offers none.
    let f = Fixture::new(Backend::Sqlite).await;
    let fresh = browser();
    let login = fresh.get(authorize_url(&f, "")).sent().await;
    let html = login.text().await.unwrap();
    assert!(!html.contains("passkey"), "{html}");
    let response = fresh
        .post(f.app.url("/authorize/passkey"))
        .form(&[
            ("request_id", hidden(&html, "request_id")),
            ("csrf_token", hidden(&html, "csrf_token")),
            ("step", "start".to_owned()),
        ])
        .sent()
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let browser = browser();
    password_session(&f, &browser).await;
    let html = security_page(&f, &browser).await;
    assert!(
        html.contains("Passkeys cannot be used with this server"),
        "{html}"
    );
    // The script is served all the same (static), as JavaScript that cannot be sniffed.
    let script = f.app.get("/assets/passkey.js").await;
    assert_eq!(script.status(), StatusCode::OK);
    assert_eq!(
        script.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    assert_eq!(script.headers()["x-content-type-options"], "nosniff");
}
