//! Micro benchmarks of the hot paths: signing through the `Signer` beside the raw aws-lc-rs sign
//! rate, verification with `jsonwebtoken`, and the JWKS response path (in-process actix service).

#![expect(clippy::expect_used, reason = "a benchmark aborts on setup failure")]
#![expect(
    missing_docs,
    reason = "criterion_group! generates an undocumented function"
)]

use std::sync::Arc;
use std::time::Duration;

use actix_web::{App, test, web};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::RSA_PKCS1_SHA256;
use criterion::{Criterion, criterion_group, criterion_main};
use portcullis::keys::generate::{self, SigningKeyPair};
use portcullis::keys::keyring::{ActiveKey, PublishedKey};
use portcullis::keys::{IdTokenAlg, KeyRing, KeySet, KeyState, RsaKeySize, Signer, SigningAlg};
use portcullis::state::AppState;
use serde_json::json;

fn key_ring() -> Arc<KeyRing> {
    let mut active = Vec::new();
    let mut published = Vec::new();
    for alg in SigningAlg::ALL {
        let material = generate::generate(alg, RsaKeySize::Rsa2048).expect("key generation");
        let kid = material.jwk.thumbprint();
        active.push(ActiveKey {
            kid: kid.clone(),
            alg,
            pair: SigningKeyPair::from_material(&material).expect("key pair"),
        });
        published.push(PublishedKey {
            kid,
            alg,
            state: KeyState::Active,
            jwk: material.jwk,
        });
    }
    Arc::new(KeyRing::new(KeySet::new(active, published)))
}

/// Claims of a typical RFC 9068 access token.
fn claims() -> serde_json::Value {
    let now = jsonwebtoken::get_current_timestamp();
    json!({
        "iss": "https://id.example.com", "sub": "3f1c2a4e-8d2b-4c59-9a55-0d7f7c8e9b10",
        "aud": "https://api.example.com", "exp": now + 900, "iat": now, "nbf": now,
        "jti": "5b0e6c0a-7f0e-4d9a-8c2f-1a2b3c4d5e6f", "client_id": "web-app",
        "scope": "openid profile email", "roles": ["user"],
    })
}

fn signing(c: &mut Criterion) {
    portcullis::startup::install_crypto_provider();
    let ring = key_ring();
    let signer = Signer::new(Arc::clone(&ring));
    let claims = claims();
    let rng = SystemRandom::new();
    let mut group = c.benchmark_group("sign");
    for alg in SigningAlg::ALL {
        group.bench_function(format!("signer/{alg}"), |b| {
            b.iter(|| signer.sign(alg, "at+jwt", &claims).expect("sign"))
        });
        // The same signing input, signed directly with the parsed aws-lc-rs key pair: the ceiling.
        let token = signer.sign(alg, "at+jwt", &claims).expect("sign");
        let input = token
            .rsplit_once('.')
            .expect("three segments")
            .0
            .as_bytes()
            .to_vec();
        let set = ring.current();
        let key = Arc::clone(set.active(alg).expect("active key"));
        group.bench_function(format!("raw_aws_lc/{alg}"), |b| match &key.pair {
            SigningKeyPair::Es256(pair) => b.iter(|| pair.sign(&rng, &input).expect("sign")),
            SigningKeyPair::Rs256(pair) => {
                let mut signature = vec![0u8; pair.public_modulus_len()];
                b.iter(|| {
                    pair.sign(&RSA_PKCS1_SHA256, &rng, &input, &mut signature)
                        .expect("sign")
                })
            }
        });
    }
    group.finish();

    let mut group = c.benchmark_group("verify");
    for alg in SigningAlg::ALL {
        let token = signer.sign(alg, "at+jwt", &claims).expect("sign");
        let set = ring.current();
        let published = set
            .published()
            .iter()
            .find(|k| k.alg == alg)
            .expect("published key");
        let key = published.jwk.decoding_key().expect("decoding key");
        let mut validation = jsonwebtoken::Validation::new(alg.jsonwebtoken());
        validation.set_audience(&["https://api.example.com"]);
        validation.set_issuer(&["https://id.example.com"]);
        group.bench_function(format!("jsonwebtoken/{alg}"), |b| {
            b.iter(|| {
                jsonwebtoken::decode::<serde_json::Value>(&token, &key, &validation)
                    .expect("verify")
            })
        });
    }
    group.finish();
}

/// A real Portcullis on a throwaway SQLite database, for the benches that need its state.
fn bench_server(runtime: &tokio::runtime::Runtime, name: &str) -> portcullis::startup::Application {
    use portcullis::config::{Settings, SettingsArgs};
    let dir = std::env::temp_dir().join(format!("portcullis-bench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let settings = Settings::from_args(SettingsArgs {
        database_url: Some(format!("sqlite://{}/bench.db", dir.display())),
        keys_dir: Some(dir.join("keys")),
        bind: Some("127.0.0.1:0".into()),
        workers: Some(1),
        ..Default::default()
    })
    .expect("settings");
    runtime
        .block_on(portcullis::startup::Application::build(settings))
        .expect("server starts")
}

fn jwks_response(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let state: AppState = bench_server(&runtime, "jwks").state().clone();
    let etag = state.keys.current().jwks_etag().clone();
    let service = runtime.block_on(test::init_service(
        App::new()
            .app_data(web::Data::new(state))
            .configure(portcullis::http::configure),
    ));
    let mut group = c.benchmark_group("jwks");
    group.bench_function("200", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let request = test::TestRequest::get()
                    .uri("/.well-known/jwks.json")
                    .to_request();
                test::call_service(&service, request).await
            })
        })
    });
    group.bench_function("304", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let request = test::TestRequest::get()
                    .uri("/.well-known/jwks.json")
                    .insert_header(("If-None-Match", etag.clone()))
                    .to_request();
                test::call_service(&service, request).await
            })
        })
    });
    group.finish();
}

/// Warm-cache verification through `portcullis::verify` against a real in-process Portcullis,
/// beside a bare `jsonwebtoken::decode` of the same token into the same claims type.
fn verifier(c: &mut Criterion) {
    use portcullis::verify::{AccessClaims, Verifier, VerifierConfig};

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let app = bench_server(&runtime, "verify");
    let issuer = app.issuer().to_string();
    let signer = app.state().signer.clone();
    let ring = Arc::clone(&app.state().keys);
    runtime.spawn(app.run_until_stopped());
    let mut config = VerifierConfig::for_issuer(&issuer);
    config.audiences = vec!["https://api.example.com".into()];
    let verifier = Verifier::new(config).expect("verifier");

    let mut group = c.benchmark_group("verify_warm");
    for alg in SigningAlg::ALL {
        let mut claims = claims();
        claims["iss"] = json!(issuer);
        let token = signer.sign(alg, "at+jwt", &claims).expect("sign");
        runtime
            .block_on(verifier.verify::<AccessClaims>(&token))
            .expect("verifies");
        let set = ring.current();
        let key = set
            .published()
            .iter()
            .find(|k| k.alg == alg && k.state == KeyState::Active)
            .expect("active key")
            .jwk
            .decoding_key()
            .expect("decoding key");
        let mut validation = jsonwebtoken::Validation::new(alg.jsonwebtoken());
        validation.set_audience(&["https://api.example.com"]);
        validation.set_issuer(&[&issuer]);
        validation.validate_nbf = true;
        group.bench_function(format!("bare_jsonwebtoken/{alg}"), |b| {
            b.iter(|| {
                runtime.block_on(async {
                    jsonwebtoken::decode::<AccessClaims>(&token, &key, &validation).expect("verify")
                })
            })
        });
        group.bench_function(format!("portcullis_verify/{alg}"), |b| {
            b.iter(|| {
                runtime
                    .block_on(verifier.verify::<AccessClaims>(&token))
                    .expect("verify")
            })
        });
    }
    group.finish();
}

/// The client_credentials grant through the token service (scope parsed, jti, claims, signature,
/// counter), beside the bare `Signer` on the same claims: the service's cost over the signature.
fn issuing(c: &mut Criterion) {
    use portcullis::oidc::clients::{self, NewClient};
    use portcullis::oidc::grants;
    use portcullis::oidc::params::Params;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let state: AppState = bench_server(&runtime, "issuing").state().clone();
    let mut group = c.benchmark_group("issue");
    for alg in SigningAlg::ALL {
        let (issuer, now) = (state.issuer.to_string(), state.clock.now_naive());
        let new = NewClient {
            client_id: format!("svc-{alg}"),
            public: false,
            redirect_uris: Vec::new(),
            grant_types: Vec::new(),
            scopes: Vec::new(),
            audiences: vec!["https://api.example.com".into()],
            access_token_alg: alg,
            id_token_alg: IdTokenAlg::Signed(alg),
            userinfo_signed_response_alg: None,
            first_party: false,
            post_logout_redirect_uris: Vec::new(),
            introspection_audiences: Vec::new(),
            pkce: clients::PkcePolicy::Required,
            web_origins: Vec::new(),
            second_factor: portcullis::accounts::factors::SecondFactorPolicy::Off,
            token_endpoint_auth_method: None,
            jwks: None,
            jwks_uri: None,
            token_exchange_audiences: Vec::new(),
            request_uris: Vec::new(),
            request_object_signing_alg: None,
            subject_type: Default::default(),
        };
        let client = runtime
            .block_on(
                state
                    .db
                    .run(move |conn| clients::create(conn, new, &issuer, now)),
            )
            .expect("client")
            .value
            .client;
        let params = Params::parse(b"grant_type=client_credentials&scope=profile").expect("form");
        let apis = state.apis.current();
        group.bench_function(format!("client_credentials/{alg}"), |b| {
            b.iter(|| {
                grants::client_credentials(&state.tokens, &apis, &client, &params).expect("issue")
            })
        });
        let claims = claims();
        group.bench_function(format!("signer/{alg}"), |b| {
            b.iter(|| state.signer.sign(alg, "at+jwt", &claims).expect("sign"))
        });
    }
    group.finish();
}

/// Argon2id verification with the default (OWASP) parameters, one at a time and two at once on
/// the two hashing threads of a 2-core machine: the login throughput bound is 2 / (pair time).
fn password_hashing(c: &mut Criterion) {
    use portcullis::accounts::Password;
    use portcullis::accounts::password::{HashParams, PasswordHasher};
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let hasher = PasswordHasher::new(HashParams::default(), 2).expect("hasher");
    let hash = runtime
        .block_on(hasher.hash(Password::parse("benchmark passphrase".into()).expect("password")))
        .expect("hash");
    let mut group = c.benchmark_group("argon2id");
    group.sample_size(20);
    group.bench_function("verify_owasp_default", |b| {
        b.iter(|| {
            runtime
                .block_on(hasher.verify(b"benchmark passphrase", Some(&hash)))
                .expect("verify")
        })
    });
    group.bench_function("verify_pair_on_2_threads", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let (a, b) = tokio::join!(
                    hasher.verify(b"benchmark passphrase", Some(&hash)),
                    hasher.verify(b"benchmark passphrase", Some(&hash)),
                );
                (a.expect("verify"), b.expect("verify"))
            })
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(4)).warm_up_time(Duration::from_secs(1));
    targets = signing, jwks_response, verifier, issuing, password_hashing
}
criterion_main!(benches);
