//! A stub issuer for verifier tests: serves discovery and a JWKS we control (status, body,
//! caching headers), counts requests, and signs arbitrary JWS with its own keys.

use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::RSA_PKCS1_SHA256;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portcullis::keys::generate::{self, KeyMaterial, SigningKeyPair};
use portcullis::keys::{RsaKeySize, SigningAlg};
use serde_json::{Value, json};

/// A key the tests sign with.
pub struct TestKey {
    pub kid: String,
    pub alg: SigningAlg,
    pub material: KeyMaterial,
    pair: SigningKeyPair,
}

impl TestKey {
    pub fn new(alg: SigningAlg) -> Self {
        let material = generate::generate(alg, RsaKeySize::Rsa2048).unwrap();
        let pair = SigningKeyPair::from_material(&material).unwrap();
        Self {
            kid: material.jwk.thumbprint(),
            alg,
            material,
            pair,
        }
    }

    /// The public JWK with kid, use and alg.
    pub fn jwk(&self) -> Value {
        let mut jwk = serde_json::to_value(&self.material.jwk).unwrap();
        jwk["kid"] = json!(self.kid);
        jwk["use"] = json!("sig");
        jwk["alg"] = json!(self.alg.as_str());
        jwk
    }

    /// Signs `input` with this key's own algorithm.
    pub fn sign(&self, input: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match &self.pair {
            SigningKeyPair::Es256(pair) => pair.sign(&rng, input).unwrap().as_ref().to_vec(),
            SigningKeyPair::Rs256(pair) => {
                let mut signature = vec![0u8; pair.public_modulus_len()];
                pair.sign(&RSA_PKCS1_SHA256, &rng, input, &mut signature)
                    .unwrap();
                signature
            }
        }
    }

    /// Signs `input` with RSASSA-PSS SHA-256 (PS256); this must be an RSA key.
    pub fn sign_pss(&self, input: &[u8]) -> Vec<u8> {
        let SigningKeyPair::Rs256(pair) = &self.pair else {
            panic!("PS256 needs an RSA key")
        };
        let mut signature = vec![0u8; pair.public_modulus_len()];
        pair.sign(
            &aws_lc_rs::signature::RSA_PSS_SHA256,
            &SystemRandom::new(),
            input,
            &mut signature,
        )
        .unwrap();
        signature
    }

    /// A compact JWS over raw header and payload bytes.
    pub fn jws_raw(&self, header: &[u8], payload: &[u8]) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(payload)
        );
        let signature = self.sign(input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }

    /// A compact JWS with the given header and claims.
    pub fn jws(&self, header: &Value, claims: &Value) -> String {
        self.jws_raw(header.to_string().as_bytes(), claims.to_string().as_bytes())
    }

    /// The header Portcullis would write for an access token.
    pub fn header(&self) -> Value {
        json!({"alg": self.alg.as_str(), "typ": "at+jwt", "kid": self.kid})
    }

    /// A valid access token with `claims`.
    pub fn token(&self, claims: &Value) -> String {
        self.jws(&self.header(), claims)
    }
}

/// Seconds since the epoch.
pub fn now() -> i64 {
    jsonwebtoken::get_current_timestamp() as i64
}

/// Valid access-token claims for `issuer` and audience `api`.
pub fn claims(issuer: &str) -> Value {
    let now = now();
    json!({
        "iss": issuer, "sub": "user-1", "aud": "api", "iat": now, "nbf": now, "exp": now + 300,
        "jti": "t-1", "client_id": "web", "scope": "read write", "roles": ["user"],
    })
}

struct StubState {
    base: Mutex<String>,
    jwks: Mutex<Value>,
    status: AtomicU16,
    cache_control: Mutex<String>,
    jwks_requests: AtomicUsize,
    not_modified: AtomicUsize,
}

/// A running stub issuer.
pub struct StubIssuer {
    pub base: String,
    state: Arc<StubState>,
    handle: ServerHandle,
}

impl StubIssuer {
    /// Starts a stub publishing `keys`, with `Cache-Control: max-age=300`.
    pub async fn start(keys: &[&TestKey]) -> Self {
        let state = Arc::new(StubState {
            base: Mutex::new(String::new()),
            jwks: Mutex::new(json!({"keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>()})),
            status: AtomicU16::new(200),
            cache_control: Mutex::new("public, max-age=300".into()),
            jwks_requests: AtomicUsize::new(0),
            not_modified: AtomicUsize::new(0),
        });
        let data = web::Data::from(Arc::clone(&state));
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .route(
                    "/.well-known/openid-configuration",
                    web::get().to(discovery),
                )
                .route("/jwks", web::get().to(jwks))
        })
        .workers(1)
        .bind("127.0.0.1:0")
        .unwrap();
        let base = format!("http://{}", server.addrs()[0]);
        *state.base.lock().unwrap() = base.clone();
        let server = server.run();
        let handle = server.handle();
        tokio::spawn(server);
        Self {
            base,
            state,
            handle,
        }
    }

    pub fn set_keys(&self, keys: &[Value]) {
        *self.state.jwks.lock().unwrap() = json!({ "keys": keys });
    }

    pub fn set_status(&self, status: u16) {
        self.state.status.store(status, Ordering::SeqCst);
    }

    pub fn set_cache_control(&self, value: &str) {
        *self.state.cache_control.lock().unwrap() = value.into();
    }

    /// JWKS requests received (200, 304 and errors).
    pub fn jwks_requests(&self) -> usize {
        self.state.jwks_requests.load(Ordering::SeqCst)
    }

    /// JWKS requests answered 304.
    pub fn not_modified(&self) -> usize {
        self.state.not_modified.load(Ordering::SeqCst)
    }

    pub async fn stop(&self) {
        self.handle.stop(false).await;
    }
}

async fn discovery(state: web::Data<StubState>) -> HttpResponse {
    let base = state.base.lock().unwrap().clone();
    HttpResponse::Ok().json(json!({ "issuer": base, "jwks_uri": format!("{base}/jwks") }))
}

async fn jwks(state: web::Data<StubState>, request: HttpRequest) -> HttpResponse {
    state.jwks_requests.fetch_add(1, Ordering::SeqCst);
    let status = state.status.load(Ordering::SeqCst);
    if status != 200 {
        return HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap())
            .finish();
    }
    let body = state.jwks.lock().unwrap().to_string();
    let etag = format!(
        "\"{}\"",
        URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            body.as_bytes()
        ))
    );
    let cache_control = state.cache_control.lock().unwrap().clone();
    if request
        .headers()
        .get("if-none-match")
        .and_then(|v| v.to_str().ok())
        == Some(etag.as_str())
    {
        state.not_modified.fetch_add(1, Ordering::SeqCst);
        return HttpResponse::NotModified()
            .insert_header(("ETag", etag))
            .insert_header(("Cache-Control", cache_control))
            .finish();
    }
    HttpResponse::Ok()
        .insert_header(("ETag", etag))
        .insert_header(("Cache-Control", cache_control))
        .content_type("application/json")
        .body(body)
}
