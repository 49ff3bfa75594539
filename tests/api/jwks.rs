//! The JWKS: shape, caching headers, and tokens from the `Signer` verifying against it.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portcullis::keys::SigningAlg;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::helpers::{Backend, Sent, TestEnv, kids_of, verify_signed_token};
use crate::on_both_backends;

/// RFC 7638 thumbprint computed independently of the server's code.
fn thumbprint(key: &Value) -> String {
    let canonical = match key["kty"].as_str().unwrap() {
        "RSA" => json!({"e": key["e"], "kty": "RSA", "n": key["n"]}),
        "EC" => json!({"crv": key["crv"], "kty": "EC", "x": key["x"], "y": key["y"]}),
        other => panic!("unexpected kty {other}"),
    };
    // serde_json sorts object keys and writes no whitespace: the RFC 7638 canonical form.
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.to_string().as_bytes()))
}

// KEY-01: public members only, unique kid (= thumbprint), `alg` and `use` on every key.
async fn jwks_publishes_one_public_key_per_algorithm(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let app = env.spawn().await;
    let response = app.get("/.well-known/jwks.json").await;
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(headers["cache-control"], "public, max-age=300");
    assert_eq!(headers["access-control-allow-origin"], "*");
    let jwks: Value = response.json().await.unwrap();

    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2, "{jwks}");
    let mut algs: Vec<&str> = keys.iter().map(|k| k["alg"].as_str().unwrap()).collect();
    algs.sort();
    assert_eq!(algs, ["ES256", "RS256"]);
    for key in keys {
        assert_eq!(key["use"], "sig");
        let members: Vec<&String> = key.as_object().unwrap().keys().collect();
        for private in ["d", "p", "q", "dp", "dq", "qi", "oth", "k"] {
            assert!(
                !members.iter().any(|m| *m == private),
                "private member {private} in {key}"
            );
        }
        assert_eq!(
            key["kid"].as_str().unwrap(),
            thumbprint(key),
            "kid is the RFC 7638 thumbprint"
        );
        match key["alg"].as_str().unwrap() {
            "RS256" => {
                assert_eq!(key["kty"], "RSA");
                let n = URL_SAFE_NO_PAD.decode(key["n"].as_str().unwrap()).unwrap();
                assert_eq!(n.len(), 256, "RSA-2048 by default");
                assert_eq!(key["e"], "AQAB");
            }
            "ES256" => {
                assert_eq!(key["kty"], "EC");
                assert_eq!(key["crv"], "P-256");
            }
            other => panic!("unexpected alg {other}"),
        }
    }
    let kids = kids_of(&jwks);
    assert_ne!(kids[0], kids[1]);
    // The directory of the SQLite file was created on first start.
    if backend == Backend::Sqlite {
        assert!(env.dir.path().join("data/portcullis.db").is_file());
    }
}

async fn jwks_has_strong_etag_and_answers_304(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let app = env.spawn().await;
    let first = app.get("/.well-known/jwks.json").await;
    let etag = first.headers()["etag"].to_str().unwrap().to_owned();
    assert!(
        etag.starts_with('"') && etag.ends_with('"'),
        "strong ETag: {etag}"
    );
    let body = first.bytes().await.unwrap();

    let again = app.get("/.well-known/jwks.json").await;
    assert_eq!(
        again.headers()["etag"],
        etag.as_str(),
        "stable while keys are unchanged"
    );
    assert_eq!(again.bytes().await.unwrap(), body);

    let url = format!("{}/.well-known/jwks.json", app.address);
    let cached = app
        .client
        .get(&url)
        .header("If-None-Match", &etag)
        .sent()
        .await;
    assert_eq!(cached.status(), 304);
    assert_eq!(cached.headers()["etag"], etag.as_str());
    assert_eq!(cached.headers()["cache-control"], "public, max-age=300");
    assert!(cached.bytes().await.unwrap().is_empty());

    let listed = app
        .client
        .get(&url)
        .header("If-None-Match", format!("\"other\", {etag}"))
        .sent()
        .await;
    assert_eq!(listed.status(), 304);

    let stale = app
        .client
        .get(&url)
        .header("If-None-Match", "\"stale\"")
        .sent()
        .await;
    assert_eq!(stale.status(), 200);
    assert_eq!(stale.bytes().await.unwrap(), body);
}

async fn signer_tokens_verify_against_the_jwks(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let app = env.spawn().await;
    for alg in SigningAlg::ALL {
        verify_signed_token(&app, alg).await;
    }
}

async fn rsa_key_size_is_selectable(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let mut args = env.args();
    args.rsa_key_bits = Some(3072);
    let app = env.spawn_with(args).await;
    let jwks = app.jwks().await;
    let rsa = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kty"] == "RSA")
        .unwrap()
        .clone();
    let n = URL_SAFE_NO_PAD.decode(rsa["n"].as_str().unwrap()).unwrap();
    assert_eq!(n.len(), 384);
    verify_signed_token(&app, SigningAlg::Rs256).await;
}

on_both_backends!(
    jwks_publishes_one_public_key_per_algorithm,
    jwks_has_strong_etag_and_answers_304,
    signer_tokens_verify_against_the_jwks,
    rsa_key_size_is_selectable,
);
