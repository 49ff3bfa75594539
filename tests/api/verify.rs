//! `portcullis::verify`: the JWT-* cases of the security catalogue (§1), each named, against a
//! stub issuer whose keys and JWKS the tests control, and the cache against a real Portcullis.

use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{EncodingKey, Header};
use portcullis::keys::SigningAlg;
use portcullis::verify::{TokenKind, Verifier, VerifierConfig, VerifyError};
use serde_json::{Value, json};

use crate::helpers::{Backend, Sent, TestEnv, join_all, stdout_json};
use crate::stub::{StubIssuer, TestKey, claims, now};

fn config(issuer: &str) -> VerifierConfig {
    let mut config = VerifierConfig::for_issuer(issuer);
    config.audiences = vec!["api".into()];
    config
}

struct Fixture {
    es: TestKey,
    rs: TestKey,
    stub: StubIssuer,
    verifier: Verifier,
}

impl Fixture {
    async fn new() -> Self {
        Self::with_config(|_| {}).await
    }

    async fn with_config(tweak: impl FnOnce(&mut VerifierConfig)) -> Self {
        let es = TestKey::new(SigningAlg::Es256);
        let rs = TestKey::new(SigningAlg::Rs256);
        let stub = StubIssuer::start(&[&es, &rs]).await;
        let mut config = config(&stub.base);
        tweak(&mut config);
        let verifier = Verifier::new(config).unwrap();
        let fixture = Self {
            es,
            rs,
            stub,
            verifier,
        };
        // Control: genuine tokens of both keys verify, so every rejection below is meaningful.
        for key in [&fixture.es, &fixture.rs] {
            let token = key.token(&fixture.claims());
            fixture
                .verify(&token)
                .await
                .expect("a genuine token verifies");
        }
        fixture
    }

    fn claims(&self) -> Value {
        claims(&self.stub.base)
    }

    async fn verify(&self, token: &str) -> Result<Value, VerifyError> {
        self.verifier.verify::<Value>(token).await.map(|v| v.claims)
    }

    async fn assert_rejected(&self, token: &str, case: &str) {
        let result = self.verify(token).await;
        assert!(result.is_err(), "{case}: accepted a token it must refuse");
    }
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn with_signature(token: &str, signature: &[u8]) -> String {
    let (input, _) = token.rsplit_once('.').unwrap();
    format!("{input}.{}", b64(signature))
}

// JWT-01 ★: alg none, every casing, with and without the original signature.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_01_alg_none_is_rejected() {
    let f = Fixture::new().await;
    let claims = f.claims();
    let genuine = f.es.token(&claims);
    let original_signature = genuine.rsplit_once('.').unwrap().1;
    for alg in ["none", "None", "NONE", "nOnE"] {
        let header = json!({"alg": alg, "typ": "at+jwt", "kid": f.es.kid});
        let unsigned = format!("{}.{}.", b64(header.to_string()), b64(claims.to_string()));
        f.assert_rejected(&unsigned, &format!("alg {alg}, empty signature"))
            .await;
        let kept = format!(
            "{}.{}.{original_signature}",
            b64(header.to_string()),
            b64(claims.to_string())
        );
        f.assert_rejected(&kept, &format!("alg {alg}, original signature"))
            .await;
    }
}

// JWT-02: signature stripped, borrowed from another token, payload tampered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_02_missing_or_foreign_signatures_are_rejected() {
    let f = Fixture::new().await;
    let token = f.rs.token(&f.claims());
    let (input, _) = token.rsplit_once('.').unwrap();
    f.assert_rejected(&format!("{input}."), "stripped signature")
        .await;
    let mut other_claims = f.claims();
    other_claims["sub"] = json!("someone-else");
    let other = f.rs.token(&other_claims);
    let other_signature = URL_SAFE_NO_PAD
        .decode(other.rsplit_once('.').unwrap().1)
        .unwrap();
    f.assert_rejected(
        &with_signature(&token, &other_signature),
        "another token's signature",
    )
    .await;
    let parts: Vec<&str> = token.split('.').collect();
    let mut admin = f.claims();
    admin["roles"] = json!(["admin"]);
    let tampered = format!("{}.{}.{}", parts[0], b64(admin.to_string()), parts[2]);
    f.assert_rejected(&tampered, "tampered payload").await;
}

// JWT-03 ★ / JWT-04: HS* with the public key as the HMAC secret, in every encoding; weak and
// blank secrets; an RS256 key presented as PS256 / RS512.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_03_04_hmac_key_confusion_is_rejected() {
    use rsa::pkcs8::EncodePublicKey;
    let f = Fixture::new().await;
    let jwk = f.rs.jwk();
    let n = URL_SAFE_NO_PAD.decode(jwk["n"].as_str().unwrap()).unwrap();
    let e = URL_SAFE_NO_PAD.decode(jwk["e"].as_str().unwrap()).unwrap();
    let public = rsa::RsaPublicKey::new(
        rsa::BigUint::from_bytes_be(&n),
        rsa::BigUint::from_bytes_be(&e),
    )
    .unwrap();
    let der = public.to_public_key_der().unwrap().as_bytes().to_vec();
    let body = STANDARD.encode(&der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    let pem = format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----",
        lines.join("\n")
    );
    let ec_jwk = f.es.jwk();
    let mut secrets: Vec<(String, Vec<u8>)> = vec![
        ("PEM".into(), pem.clone().into_bytes()),
        ("PEM + newline".into(), format!("{pem}\n").into_bytes()),
        (
            "whitespace + PEM".into(),
            format!("  \n{pem}\n").into_bytes(),
        ),
        ("DER".into(), der),
        ("JWK JSON".into(), jwk.to_string().into_bytes()),
        ("raw modulus".into(), n),
        ("EC JWK JSON".into(), ec_jwk.to_string().into_bytes()),
        ("blank".into(), Vec::new()),
        ("weak".into(), b"secret".to_vec()),
    ];
    secrets.push((
        "EC x".into(),
        URL_SAFE_NO_PAD
            .decode(ec_jwk["x"].as_str().unwrap())
            .unwrap(),
    ));
    for (name, secret) in &secrets {
        for (alg, kid) in [
            (jsonwebtoken::Algorithm::HS256, &f.rs.kid),
            (jsonwebtoken::Algorithm::HS384, &f.rs.kid),
            (jsonwebtoken::Algorithm::HS512, &f.es.kid),
        ] {
            let mut header = Header::new(alg);
            header.kid = Some(kid.clone());
            header.typ = Some("at+jwt".into());
            let token =
                jsonwebtoken::encode(&header, &f.claims(), &EncodingKey::from_secret(secret))
                    .unwrap();
            f.assert_rejected(&token, &format!("{alg:?} with {name}"))
                .await;
        }
    }
    // "Each key MUST be used with exactly one algorithm": a valid RSA signature by the right key,
    // but under another RSA algorithm, is refused.
    let pair = aws_lc_rs::signature::RsaKeyPair::from_pkcs8(&f.rs.material.pkcs8).unwrap();
    for (alg, padding) in [
        (
            "PS256",
            &aws_lc_rs::signature::RSA_PSS_SHA256 as &'static dyn aws_lc_rs::signature::RsaEncoding,
        ),
        ("RS512", &aws_lc_rs::signature::RSA_PKCS1_SHA512),
    ] {
        let header = json!({"alg": alg, "typ": "at+jwt", "kid": f.rs.kid});
        let input = format!(
            "{}.{}",
            b64(header.to_string()),
            b64(f.claims().to_string())
        );
        let mut signature = vec![0u8; pair.public_modulus_len()];
        pair.sign(
            padding,
            &aws_lc_rs::rand::SystemRandom::new(),
            input.as_bytes(),
            &mut signature,
        )
        .unwrap();
        let result = f.verify(&format!("{input}.{}", b64(&signature))).await;
        assert_eq!(result.unwrap_err(), VerifyError::AlgorithmMismatch, "{alg}");
    }
}

/// Counts TCP connections: proves that no outbound request was made.
struct Canary {
    url: String,
    hits: Arc<AtomicUsize>,
}

impl Canary {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/keys", listener.local_addr().unwrap());
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&hits);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stream.is_ok() {
                    counter.fetch_add(1, Ordering::SeqCst);
                }
            }
        });
        Self { url, hits }
    }
}

// JWT-05 ★: header-supplied keys (jwk, jku, x5u, x5c) are never honoured; no outbound request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_05_header_supplied_keys_are_ignored_without_fetching() {
    let f = Fixture::new().await;
    let canary = Canary::start();
    let attacker = TestKey::new(SigningAlg::Es256);
    let claims = f.claims();
    let cases = [
        (
            "embedded jwk",
            json!({"alg": "ES256", "typ": "at+jwt", "kid": f.es.kid, "jwk": attacker.jwk()}),
        ),
        (
            "jku",
            json!({"alg": "ES256", "typ": "at+jwt", "kid": f.es.kid, "jku": canary.url}),
        ),
        (
            "x5u",
            json!({"alg": "ES256", "typ": "at+jwt", "kid": f.es.kid, "x5u": canary.url}),
        ),
        (
            "x5c",
            json!({"alg": "ES256", "typ": "at+jwt", "kid": f.es.kid, "x5c": [STANDARD.encode(b"self-signed")]}),
        ),
        (
            "jku, attacker kid",
            json!({"alg": "ES256", "typ": "at+jwt", "kid": attacker.kid, "jku": canary.url}),
        ),
    ];
    for (name, header) in cases {
        f.assert_rejected(&attacker.jws(&header, &claims), name)
            .await;
        // Even signed by the genuine key, a token carrying these members is refused.
        f.assert_rejected(
            &f.es.jws(&header, &claims),
            &format!("{name}, genuine signature"),
        )
        .await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        canary.hits.load(Ordering::SeqCst),
        0,
        "no request reached the attacker's URL"
    );
}

// The allowed algorithms are configurable: an ES256-only verifier ignores RSA keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowed_algorithms_restrict_the_keys_used() {
    let es = TestKey::new(SigningAlg::Es256);
    let rs = TestKey::new(SigningAlg::Rs256);
    let stub = StubIssuer::start(&[&es, &rs]).await;
    let mut config = config(&stub.base);
    config.algorithms = vec![jsonwebtoken::Algorithm::ES256];
    let verifier = Verifier::new(config).unwrap();
    assert!(
        verifier
            .verify::<Value>(&es.token(&claims(&stub.base)))
            .await
            .is_ok()
    );
    assert_eq!(
        verifier
            .verify::<Value>(&rs.token(&claims(&stub.base)))
            .await
            .unwrap_err(),
        VerifyError::UnknownKey
    );
    let mut hs_only = VerifierConfig::for_issuer(&stub.base);
    hs_only.algorithms = vec![jsonwebtoken::Algorithm::HS256];
    assert!(Verifier::new(hs_only).is_err(), "HS* can never be allowed");
}

// JWT-06: a key of the wrong type for the header's algorithm.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_06_key_type_must_match_the_algorithm() {
    let f = Fixture::new().await;
    let claims = f.claims();
    let es_with_rsa_kid = f.es.jws(
        &json!({"alg": "ES256", "typ": "at+jwt", "kid": f.rs.kid}),
        &claims,
    );
    assert_eq!(
        f.verify(&es_with_rsa_kid).await.unwrap_err(),
        VerifyError::AlgorithmMismatch
    );
    let rs_with_ec_kid = f.rs.jws(
        &json!({"alg": "RS256", "typ": "at+jwt", "kid": f.es.kid}),
        &claims,
    );
    assert_eq!(
        f.verify(&rs_with_ec_kid).await.unwrap_err(),
        VerifyError::AlgorithmMismatch
    );
}

// JWT-07 ★: kid injection values are only map keys; unknown kids refetch at most once per
// cooldown, single-flight.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_07_kid_injection_and_unknown_kid_flood() {
    let f = Fixture::new().await;
    let claims = f.claims();
    let before = f.stub.jwks_requests();
    let long = "k".repeat(10_000);
    let kids = [
        json!("../../../../dev/null"),
        json!("/proc/self/cmdline"),
        json!("' OR '1'='1"),
        json!("$(id)"),
        json!(long),
        json!(""),
        json!(42),
        json!(["a"]),
        json!({"a": 1}),
    ];
    for kid in &kids {
        let header = json!({"alg": "ES256", "typ": "at+jwt", "kid": kid});
        f.assert_rejected(&f.es.jws(&header, &claims), &format!("kid {kid}"))
            .await;
    }
    let no_kid = f.es.jws(&json!({"alg": "ES256", "typ": "at+jwt"}), &claims);
    f.assert_rejected(&no_kid, "absent kid").await;

    // A flood of random unknown kids, concurrently: at most one refetch in all.
    let tokens: Vec<String> = (0..1000)
        .map(|i| {
            f.es.jws(
                &json!({"alg": "ES256", "typ": "at+jwt", "kid": format!("random-{i}")}),
                &claims,
            )
        })
        .collect();
    let results = join_all(tokens.iter().map(|t| f.verify(t))).await;
    assert!(results.iter().all(|r| *r == Err(VerifyError::UnknownKey)));
    let refetches = f.stub.jwks_requests() - before;
    assert!(
        refetches <= 1,
        "{refetches} JWKS fetches for unknown kids; at most 1 per cooldown"
    );
}

// Single flight: 1,000 concurrent requests with a new kid cause exactly one fetch, and all pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_kid_refetch_is_single_flight() {
    let f = Fixture::new().await;
    let before = f.stub.jwks_requests();
    let newcomer = TestKey::new(SigningAlg::Es256);
    f.stub.set_keys(&[f.es.jwk(), f.rs.jwk(), newcomer.jwk()]);
    let token = newcomer.token(&f.claims());
    let results = join_all((0..1000).map(|_| f.verify(&token))).await;
    assert!(
        results.iter().all(Result::is_ok),
        "every request verifies after one refetch"
    );
    assert_eq!(f.stub.jwks_requests() - before, 1, "exactly one JWKS fetch");
}

// JWT-08: a key removed from the JWKS, and a key of another issuer with a forged iss.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_08_removed_and_foreign_keys_are_rejected() {
    let f = Fixture::with_config(|c| c.unknown_kid_cooldown = Duration::ZERO).await;
    let token = f.rs.token(&f.claims());
    f.stub.set_keys(&[f.es.jwk()]);
    // The verifier still holds the removed key until its cache is refreshed; force the refresh
    // through an unknown kid, as a rotation would.
    let probe = TestKey::new(SigningAlg::Es256);
    f.assert_rejected(&probe.token(&f.claims()), "unknown key")
        .await;
    assert_eq!(
        f.verify(&token).await.unwrap_err(),
        VerifyError::UnknownKey,
        "removed key"
    );

    let staging = TestKey::new(SigningAlg::Es256);
    let other_issuer = StubIssuer::start(&[&staging]).await;
    let mut forged = f.claims();
    forged["iss"] = json!(f.stub.base);
    f.assert_rejected(&staging.token(&forged), "key of another issuer")
        .await;
    other_issuer.stop().await;
}

/// P-256 group order n, big-endian.
const P256_N: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];

fn sub_be(a: &[u8; 32], b: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let mut d = i16::from(a[i]) - i16::from(b[i]) - borrow;
        borrow = if d < 0 {
            d += 256;
            1
        } else {
            0
        };
        out[i] = d as u8;
    }
    out
}

fn der_integer(bytes: &[u8]) -> Vec<u8> {
    let trimmed: Vec<u8> = bytes.iter().copied().skip_while(|b| *b == 0).collect();
    let mut value = if trimmed.first().is_some_and(|b| b & 0x80 != 0) {
        vec![0]
    } else {
        vec![]
    };
    value.extend(trimmed);
    let mut out = vec![0x02, value.len() as u8];
    out.extend(value);
    out
}

// JWT-09 ★: ES256 psychic signatures, out-of-range values, DER and wrong lengths. High-S policy:
// RFC 7518 does not require low-S, so the malleated (r, n−s) form of a genuine signature is
// accepted, as every JOSE library does; it proves nothing an attacker did not already have.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_09_es256_signature_edge_cases() {
    let f = Fixture::new().await;
    let token = f.es.token(&f.claims());
    let signature = URL_SAFE_NO_PAD
        .decode(token.rsplit_once('.').unwrap().1)
        .unwrap();
    let (r, s) = signature.split_at(32);
    let zero = [0u8; 32];
    let cat = |a: &[u8], b: &[u8]| [a, b].concat();
    let mut der = vec![0x30];
    let body = [der_integer(r), der_integer(s)].concat();
    der.push(body.len() as u8);
    der.extend(body);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("r = s = 0 (psychic)", vec![0u8; 64]),
        ("r = 0", cat(&zero, s)),
        ("s = 0", cat(r, &zero)),
        ("r = n", cat(&P256_N, s)),
        ("s = n", cat(r, &P256_N)),
        ("r > n", cat(&[0xff; 32], s)),
        ("s > n", cat(r, &[0xff; 32])),
        ("DER-encoded", der),
        ("63 bytes", signature[..63].to_vec()),
        ("65 bytes", cat(&signature, &[0])),
        ("128 bytes", cat(&signature, &signature)),
    ];
    for (name, bytes) in cases {
        f.assert_rejected(&with_signature(&token, &bytes), name)
            .await;
    }
    let high_s = cat(r, &sub_be(&P256_N, s));
    assert!(
        f.verify(&with_signature(&token, &high_s)).await.is_ok(),
        "documented high-S policy"
    );
}

// JWT-10: JOSE parsing edge cases.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_10_jose_parsing_is_strict() {
    let f = Fixture::new().await;
    let claims = f.claims();
    let claims_text = claims.to_string();
    let kid = &f.es.kid;
    let dup_header = format!(r#"{{"alg":"ES256","typ":"at+jwt","kid":"{kid}","alg":"none"}}"#);
    f.assert_rejected(
        &f.es.jws_raw(dup_header.as_bytes(), claims_text.as_bytes()),
        "duplicate header member",
    )
    .await;
    let dup_exp = format!(
        r#"{{"iss":"{}","sub":"u","aud":"api","exp":{},"exp":1}}"#,
        f.stub.base,
        now() + 300
    );
    let header = f.es.header().to_string();
    f.assert_rejected(
        &f.es.jws_raw(header.as_bytes(), dup_exp.as_bytes()),
        "duplicate exp",
    )
    .await;
    for (name, extra) in [
        ("crit", json!({"crit": ["exp"], "exp": 1})),
        ("b64 false", json!({"b64": false})),
        ("cty JWT", json!({"cty": "JWT"})),
    ] {
        let mut header = f.es.header();
        for (k, v) in extra.as_object().unwrap() {
            header[k] = v.clone();
        }
        f.assert_rejected(&f.es.jws(&header, &claims), name).await;
    }
    let token = f.es.token(&claims);
    let parts: Vec<&str> = token.split('.').collect();
    let structural = [
        ("2 segments", format!("{}.{}", parts[0], parts[1])),
        ("4 segments", format!("{token}.{}", parts[2])),
        (
            "5 segments (JWE)",
            format!("{}.a.b.{}.{}", parts[0], parts[1], parts[2]),
        ),
        (
            "padding",
            format!("{}=.{}.{}", parts[0], parts[1], parts[2]),
        ),
        (
            "embedded whitespace",
            format!("{} .{}.{}", parts[0], parts[1], parts[2]),
        ),
        (
            "header not an object",
            format!("{}.{}.{}", b64("[1,2]"), parts[1], parts[2]),
        ),
    ];
    for (name, token) in structural {
        f.assert_rejected(&token, name).await;
    }
    // `+` and `/` (standard base64) instead of `-` and `_`.
    let mut standard_sig = STANDARD.encode(URL_SAFE_NO_PAD.decode(parts[2]).unwrap());
    standard_sig = standard_sig.trim_end_matches('=').to_owned();
    if standard_sig != parts[2] {
        f.assert_rejected(
            &format!("{}.{}.{standard_sig}", parts[0], parts[1]),
            "standard alphabet",
        )
        .await;
    }
    let plus = format!(
        "{}.{}.{}",
        parts[0],
        parts[1],
        parts[2].replacen(|c: char| c.is_ascii_alphanumeric(), "+", 1)
    );
    f.assert_rejected(&plus, "`+` in signature").await;
    // Non-canonical trailing bits: the last character of a 64-byte signature encodes 4 spare bits.
    let last = parts[2].chars().last().unwrap();
    let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let index = alphabet.find(last).unwrap();
    let tweaked = alphabet.chars().nth(index ^ 1).unwrap();
    let non_canonical = format!(
        "{}.{}.{}{tweaked}",
        parts[0],
        parts[1],
        &parts[2][..parts[2].len() - 1]
    );
    f.assert_rejected(&non_canonical, "non-canonical trailing bits")
        .await;
}

// JWT-11: invalid key material in the JWKS is ignored; the valid keys keep working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_11_invalid_jwks_keys_are_ignored() {
    let f = Fixture::with_config(|c| c.unknown_kid_cooldown = Duration::ZERO).await;
    let small_rsa = json!({"kty": "RSA", "kid": "small", "alg": "RS256", "use": "sig",
        "n": b64([0xC3u8; 128]), "e": "AQAB"});
    let mut e_one = f.rs.jwk();
    e_one["kid"] = json!("e-one");
    e_one["e"] = json!(b64([1u8]));
    let off_curve = json!({"kty": "EC", "kid": "off-curve", "alg": "ES256", "crv": "P-256",
        "x": b64([1u8; 32]), "y": b64([2u8; 32])});
    let mut with_private = f.es.jwk();
    with_private["kid"] = json!("leaky");
    with_private["d"] = json!(b64([3u8; 32]));
    f.stub.set_keys(&[
        f.es.jwk(),
        f.rs.jwk(),
        small_rsa,
        e_one,
        off_curve,
        with_private,
    ]);
    let claims = f.claims();
    for kid in ["small", "e-one"] {
        let token = f.rs.jws(
            &json!({"alg": "RS256", "typ": "at+jwt", "kid": kid}),
            &claims,
        );
        assert_eq!(
            f.verify(&token).await.unwrap_err(),
            VerifyError::UnknownKey,
            "{kid}"
        );
    }
    for kid in ["off-curve", "leaky"] {
        let token = f.es.jws(
            &json!({"alg": "ES256", "typ": "at+jwt", "kid": kid}),
            &claims,
        );
        assert_eq!(
            f.verify(&token).await.unwrap_err(),
            VerifyError::UnknownKey,
            "{kid}"
        );
    }
    assert!(f.verify(&f.es.token(&claims)).await.is_ok());
    assert!(f.verify(&f.rs.token(&claims)).await.is_ok());
}

// JWT-12 ★ / JWT-13: time claims — types, presence, leeway boundaries (leeway 60 s: clocks up
// to 59 s apart agree, 61 s do not).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_12_13_time_claims() {
    let f = Fixture::new().await;
    let base = f.claims();
    let with = |name: &str, value: Value| {
        let mut claims = base.clone();
        claims[name] = value;
        f.es.token(&claims)
    };
    let without = |name: &str| {
        let mut claims = base.clone();
        claims.as_object_mut().unwrap().remove(name);
        f.es.token(&claims)
    };
    let now = now();
    f.assert_rejected(&with("exp", json!(now - 61)), "expired beyond leeway")
        .await;
    assert!(
        f.verify(&with("exp", json!(now - 59))).await.is_ok(),
        "expired within leeway"
    );
    f.assert_rejected(&with("nbf", json!(now + 61)), "not yet valid beyond leeway")
        .await;
    assert!(
        f.verify(&with("nbf", json!(now + 59))).await.is_ok(),
        "nbf within leeway"
    );
    assert!(
        f.verify(&with("nbf", json!(now + 30))).await.is_ok(),
        "fresh token, RS clock 30 s behind"
    );
    f.assert_rejected(&without("exp"), "exp missing").await;
    for (name, value) in [
        ("string", json!("9999999999")),
        ("float", json!(9_999_999_999.5)),
        ("negative", json!(-1)),
        ("null", Value::Null),
    ] {
        f.assert_rejected(&with("exp", value.clone()), &format!("exp {name}"))
            .await;
        f.assert_rejected(&with("nbf", value), &format!("nbf {name}"))
            .await;
    }
    // 1e400 cannot even be represented: write the payload by hand.
    let raw = format!(
        r#"{{"iss":"{}","sub":"u","aud":"api","exp":1e400}}"#,
        f.stub.base
    );
    f.assert_rejected(
        &f.es
            .jws_raw(f.es.header().to_string().as_bytes(), raw.as_bytes()),
        "exp 1e400",
    )
    .await;
    f.assert_rejected(&with("iat", json!(now + 3600)), "iat an hour in the future")
        .await;
}

// JWT-14: oversized tokens and deeply nested claims are refused cheaply.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_14_oversized_tokens_are_refused() {
    let f = Fixture::new().await;
    let huge = "a".repeat(64 * 1024);
    assert_eq!(
        f.verify(&huge).await.unwrap_err(),
        VerifyError::Malformed("token too long")
    );
    let mut many = f.claims();
    for i in 0..10_000 {
        many[format!("c{i}")] = json!(i);
    }
    f.assert_rejected(&f.es.token(&many), "10,000 claims").await;
    let nested = format!(
        r#"{{"iss":"x","deep":{}{}}}"#,
        "[".repeat(5_000),
        "]".repeat(5_000)
    );
    f.assert_rejected(
        &f.es
            .jws_raw(f.es.header().to_string().as_bytes(), nested.as_bytes()),
        "nested",
    )
    .await;
}

// JWT-16 ★: typ, iss and aud.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_16_typ_iss_and_aud_are_enforced() {
    let f = Fixture::new().await;
    let claims = f.claims();
    for typ in [
        json!("JWT"),
        json!("jwt"),
        json!("id_token+jwt"),
        Value::Null,
    ] {
        let mut header = f.es.header();
        header["typ"] = typ.clone();
        assert_eq!(
            f.verify(&f.es.jws(&header, &claims)).await.unwrap_err(),
            VerifyError::WrongType,
            "typ {typ}"
        );
    }
    let mut no_typ = f.es.header();
    no_typ.as_object_mut().unwrap().remove("typ");
    assert_eq!(
        f.verify(&f.es.jws(&no_typ, &claims)).await.unwrap_err(),
        VerifyError::WrongType
    );
    let mut media_type = f.es.header();
    media_type["typ"] = json!("application/at+jwt");
    assert!(
        f.verify(&f.es.jws(&media_type, &claims)).await.is_ok(),
        "full media type is at+jwt too"
    );

    let with = |name: &str, value: Value| {
        let mut c = claims.clone();
        c[name] = value;
        f.es.token(&c)
    };
    let base = f.stub.base.clone();
    for iss in [
        format!("{base}/"),
        base.replace("http://", "https://"),
        base.to_uppercase(),
        "https://evil.example".into(),
    ] {
        f.assert_rejected(&with("iss", json!(iss)), &format!("iss {iss}"))
            .await;
    }
    f.assert_rejected(&with("aud", json!("other-api")), "wrong aud")
        .await;
    f.assert_rejected(
        &with("aud", json!(["other-api", "web"])),
        "aud array without us",
    )
    .await;
    assert!(
        f.verify(&with("aud", json!(["other-api", "api"])))
            .await
            .is_ok(),
        "aud array with us"
    );
    let mut no_aud = claims.clone();
    no_aud.as_object_mut().unwrap().remove("aud");
    f.assert_rejected(&f.es.token(&no_aud), "missing aud").await;
    // An ID token (typ JWT, aud = client id) is not an access token.
    let id_token = f.rs.jws(
        &json!({"alg": "RS256", "typ": "JWT", "kid": f.rs.kid}),
        &json!({"iss": base, "sub": "user-1", "aud": "api", "exp": now() + 300, "iat": now(), "nonce": "n"}),
    );
    assert_eq!(
        f.verify(&id_token).await.unwrap_err(),
        VerifyError::WrongType
    );
}

// KEY-07 / FT-09: the JWKS endpoint fails → the last good set keeps serving for the stale
// period, with back-off; beyond it, verification fails closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_keys_serve_while_the_jwks_fails_then_fail_closed() {
    let f = Fixture::with_config(|c| {
        c.min_cache_ttl = Duration::from_secs(1);
        c.max_stale = Duration::from_secs(3);
        c.max_backoff = Duration::from_secs(1);
    })
    .await;
    f.stub.set_cache_control("max-age=1");
    // Pick up the short max-age.
    let newcomer = TestKey::new(SigningAlg::Es256);
    f.stub.set_keys(&[f.es.jwk(), f.rs.jwk(), newcomer.jwk()]);
    f.verify(&newcomer.token(&f.claims())).await.unwrap();
    f.stub.set_status(500);
    let before = f.stub.jwks_requests();
    // Past max-age but within the stale allowance: still verifies, and refreshes are attempted.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    f.verify(&f.es.token(&f.claims()))
        .await
        .expect("served stale");
    let mut attempted = false;
    for _ in 0..40 {
        if f.stub.jwks_requests() > before {
            attempted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(attempted, "a background refresh was attempted");
    // Beyond max-age + max_stale: fail closed.
    let mut closed = false;
    for _ in 0..100 {
        if f.verify(&f.es.token(&f.claims())).await == Err(VerifyError::KeysUnavailable) {
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        closed,
        "verification fails closed once the stale period is over"
    );
    let during_outage = f.stub.jwks_requests() - before;
    assert!(
        during_outage < 20,
        "back-off bounds the retries: {during_outage} requests"
    );
    // The issuer comes back: service resumes.
    f.stub.set_status(200);
    let mut resumed = false;
    for _ in 0..50 {
        if f.verify(&f.es.token(&f.claims())).await.is_ok() {
            resumed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(resumed, "verification resumes when the JWKS is back");
}

// The cache revalidates with If-None-Match and keeps its keys on 304.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_cache_revalidates_with_if_none_match() {
    let f = Fixture::with_config(|c| c.min_cache_ttl = Duration::from_secs(1)).await;
    f.stub.set_cache_control("max-age=1");
    let newcomer = TestKey::new(SigningAlg::Es256);
    f.stub.set_keys(&[f.es.jwk(), f.rs.jwk(), newcomer.jwk()]);
    f.verify(&newcomer.token(&f.claims())).await.unwrap();
    let mut revalidated = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        f.verify(&f.es.token(&f.claims())).await.unwrap();
        if f.stub.not_modified() > 0 {
            revalidated = true;
            break;
        }
    }
    assert!(revalidated, "the expired cache was revalidated with a 304");
    assert!(f.verify(&newcomer.token(&f.claims())).await.is_ok());
}

// Against a real Portcullis: discovery, then a rotation picked up through the unknown-kid refetch.
async fn rotation_at_a_real_issuer_is_picked_up(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let app = env.spawn().await;
    let mut config = VerifierConfig::for_issuer(&app.issuer);
    config.audiences = vec!["api".into()];
    let verifier = Verifier::new(config).unwrap();
    let sign = |app: &crate::helpers::TestApp, alg| {
        let mut claims = claims(&app.issuer);
        claims["roles"] = json!(["admin"]);
        app.state.signer.sign(alg, "at+jwt", &claims).unwrap()
    };
    for alg in SigningAlg::ALL {
        let verified = verifier.verify::<Value>(&sign(&app, alg)).await.unwrap();
        assert_eq!(verified.subject, "user-1");
        assert_eq!(verified.roles, ["admin"]);
    }
    let fetches = verifier.cache().fetch_count();
    stdout_json(&env.cli(&["keys", "rotate", "--immediate"]).await);
    app.wait_for_jwks("rotated", |jwks| crate::helpers::kids_of(jwks).len() == 4)
        .await;
    for alg in SigningAlg::ALL {
        verifier
            .verify::<Value>(&sign(&app, alg))
            .await
            .expect("new key found by refetch");
    }
    assert_eq!(
        verifier.cache().fetch_count() - fetches,
        1,
        "one refetch for the rotation"
    );
}

/// The example resource server's routes, served in-process with a verifier for `issuer`.
async fn resource_server(issuer: &str) -> (String, actix_web::dev::ServerHandle) {
    use actix_web::{App, HttpResponse, HttpServer, web};
    use portcullis::verify::actix::{Authenticated, BearerError};
    let verifier = web::Data::new(Verifier::new(config(issuer)).unwrap());
    let server = HttpServer::new(move || {
        App::new()
            .app_data(verifier.clone())
            .route(
                "/public",
                web::get().to(|| async { HttpResponse::Ok().body("public") }),
            )
            .route(
                "/private",
                web::get().to(|auth: Authenticated| async move {
                    HttpResponse::Ok().json(json!({"sub": auth.subject}))
                }),
            )
            .route(
                "/admin",
                web::get().to(|auth: Authenticated| async move {
                    auth.require_role("admin")?;
                    Ok::<_, BearerError>(HttpResponse::Ok().finish())
                }),
            )
            .route(
                "/write",
                web::get().to(|auth: Authenticated| async move {
                    auth.require_scope("write")?;
                    Ok::<_, BearerError>(HttpResponse::Ok().finish())
                }),
            )
            .route(
                "/step-up",
                web::get().to(|auth: Authenticated| async move {
                    auth.require_authentication(&["urn:portcullis:acr:mfa"], Some(300))?;
                    Ok::<_, BearerError>(HttpResponse::Ok().finish())
                }),
            )
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .unwrap();
    let address = format!("http://{}", server.addrs()[0]);
    let server = server.run();
    let handle = server.handle();
    tokio::spawn(server);
    (address, handle)
}

// RFC 9470 step-up at the resource server: a token from a password-only, a missing or a stale
// sign-in gets 401 `insufficient_user_authentication` naming the `acr_values` and `max_age` the
// client must ask for; a recent multi-factor sign-in passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn step_up_names_the_sign_in_the_resource_needs() {
    let f = Fixture::new().await;
    let (rs, _handle) = resource_server(&f.stub.base).await;
    let client = reqwest::Client::new();
    let call = |claims: Value| {
        let token = f.es.token(&claims);
        let client = client.clone();
        let url = format!("{rs}/step-up");
        async move { client.get(url).bearer_auth(token).sent().await }
    };
    let with = |acr: Option<&str>, auth_time: Option<i64>| {
        let mut claims = f.claims();
        if let Some(acr) = acr {
            claims["acr"] = json!(acr);
            claims["amr"] = json!(["pwd", "otp", "mfa"]);
        }
        if let Some(at) = auth_time {
            claims["auth_time"] = json!(at);
        }
        claims
    };
    let expected = concat!(
        r#"Bearer error="insufficient_user_authentication", "#,
        r#"error_description="A stronger or more recent sign-in is required", "#,
        r#"acr_values="urn:portcullis:acr:mfa", max_age="300""#
    );
    for (what, claims) in [
        ("no acr (client credentials)", with(None, Some(now()))),
        (
            "password only",
            with(Some("urn:portcullis:acr:password"), Some(now())),
        ),
        (
            "mfa an hour ago",
            with(Some("urn:portcullis:acr:mfa"), Some(now() - 3600)),
        ),
        (
            "mfa without auth_time",
            with(Some("urn:portcullis:acr:mfa"), None),
        ),
    ] {
        let response = call(claims).await;
        assert_eq!(response.status(), 401, "{what}");
        assert_eq!(response.headers()["www-authenticate"], expected, "{what}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "insufficient_user_authentication", "{what}");
    }
    let ok = call(with(Some("urn:portcullis:acr:mfa"), Some(now() - 10))).await;
    assert_eq!(ok.status(), 200, "a recent multi-factor sign-in");
}

// RFC 6750 through the actix extractor; JWT-15 (header only) and JWT-17 (scope/role → 403).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extractor_answers_per_rfc_6750() {
    let f = Fixture::new().await;
    let (rs, _handle) = resource_server(&f.stub.base).await;
    let client = reqwest::Client::new();
    let token = f.es.token(&f.claims());

    assert_eq!(
        client.get(format!("{rs}/public")).sent().await.status(),
        200
    );
    let ok = client
        .get(format!("{rs}/private"))
        .bearer_auth(&token)
        .sent()
        .await;
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.json::<Value>().await.unwrap()["sub"], "user-1");

    let missing = client.get(format!("{rs}/private")).sent().await;
    assert_eq!(missing.status(), 401);
    assert_eq!(
        missing.headers()["www-authenticate"],
        "Bearer",
        "no error code without credentials"
    );

    let mut expired = f.claims();
    expired["exp"] = json!(now() - 3600);
    for (name, request) in [
        (
            "forged",
            client
                .get(format!("{rs}/private"))
                .bearer_auth(format!("{token}x")),
        ),
        (
            "expired",
            client
                .get(format!("{rs}/private"))
                .bearer_auth(f.es.token(&expired)),
        ),
        (
            "garbage",
            client
                .get(format!("{rs}/private"))
                .header("Authorization", "Bearer not a token"),
        ),
    ] {
        let response = request.sent().await;
        assert_eq!(response.status(), 401, "{name}");
        let challenge = response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            challenge.starts_with(r#"Bearer error="invalid_token""#),
            "{name}: {challenge}"
        );
        assert_eq!(
            response.json::<Value>().await.unwrap()["error"],
            "invalid_token"
        );
    }

    // JWT-15: a token in the query string or a Basic header is not a bearer credential.
    let query = client
        .get(format!("{rs}/private?access_token={token}"))
        .sent()
        .await;
    assert_eq!(query.status(), 401);
    let basic = client
        .get(format!("{rs}/private"))
        .basic_auth("user-1", Some(&token))
        .sent()
        .await;
    assert_eq!(basic.status(), 401);

    // JWT-17: valid token, missing role or scope → 403 insufficient_scope.
    let admin = client
        .get(format!("{rs}/admin"))
        .bearer_auth(&token)
        .sent()
        .await;
    assert_eq!(admin.status(), 403);
    let challenge = admin.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        challenge.starts_with(r#"Bearer error="insufficient_scope""#),
        "{challenge}"
    );
    assert_eq!(
        admin.json::<Value>().await.unwrap()["error"],
        "insufficient_scope"
    );
    let mut admin_claims = f.claims();
    admin_claims["roles"] = json!(["user", "admin"]);
    let allowed = client
        .get(format!("{rs}/admin"))
        .bearer_auth(f.es.token(&admin_claims))
        .sent()
        .await;
    assert_eq!(allowed.status(), 200);
    assert_eq!(
        client
            .get(format!("{rs}/write"))
            .bearer_auth(&token)
            .sent()
            .await
            .status(),
        200
    );
    let mut read_only = f.claims();
    read_only["scope"] = json!("read");
    let denied = client
        .get(format!("{rs}/write"))
        .bearer_auth(f.es.token(&read_only))
        .sent()
        .await;
    assert_eq!(denied.status(), 403);

    // JWT-14: a 64 kB Authorization header is refused, not processed.
    let huge = client
        .get(format!("{rs}/private"))
        .header("Authorization", format!("Bearer {}", "a".repeat(64 * 1024)))
        .sent()
        .await;
    assert!(
        matches!(huge.status().as_u16(), 400 | 401 | 431),
        "{}",
        huge.status()
    );

    // The issuer is down and was never reached: 503, not 401 (the token may well be valid).
    f.stub.stop().await;
    let (rs_down, _handle) = resource_server("http://127.0.0.1:9").await;
    let response = client
        .get(format!("{rs_down}/private"))
        .bearer_auth(&token)
        .sent()
        .await;
    assert_eq!(response.status(), 503);
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"],
        "temporarily_unavailable"
    );
}

// A verifier configured with a JWKS URL uses it directly, without discovery.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_jwks_url_skips_discovery() {
    let key = TestKey::new(SigningAlg::Es256);
    let stub = StubIssuer::start(&[&key]).await;
    let mut config = config("https://issuer.example");
    config.jwks_url = Some(format!("{}/jwks", stub.base));
    let verifier = Verifier::new(config).unwrap();
    let verified = verifier
        .verify::<Value>(&key.token(&claims("https://issuer.example")))
        .await
        .unwrap();
    assert_eq!(verified.subject, "user-1");
    assert_eq!(verified.scopes().collect::<Vec<_>>(), ["read", "write"]);
    assert_eq!(stub.jwks_requests(), 1);
    // The issuer in tokens must still be the configured one.
    assert!(
        verifier
            .verify::<Value>(&key.token(&claims(&stub.base)))
            .await
            .is_err()
    );
}

// The issuer checks its own tokens by these rules with server-side options, and each option
// relaxes only its one rule: any audience (introspection, userinfo), ID tokens whose expiry is
// not enforced (`id_token_hint`), and the instant of the server's own clock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_side_options_relax_only_their_rule() {
    let f = Fixture::new().await;
    let mut any_audience = config(&f.stub.base);
    any_audience.audiences = Vec::new();
    any_audience.any_audience = true;
    let own = Verifier::new(any_audience.clone()).unwrap();
    let verify = |token: String| {
        let own = own.clone();
        async move { own.verify::<Value>(&token).await }
    };
    let with = |name: &str, value: Value| {
        let mut claims = f.claims();
        claims[name] = value;
        claims
    };
    let elsewhere = f.es.token(&with("aud", json!("https://elsewhere.example")));
    assert!(verify(elsewhere.clone()).await.is_ok(), "any audience");
    f.assert_rejected(&elsewhere, "the default checks the audience")
        .await;
    for (case, token) in [
        ("expired", f.es.token(&with("exp", json!(now() - 3600)))),
        (
            "foreign issuer",
            f.es.token(&with("iss", json!("https://evil.example"))),
        ),
        ("no audience", {
            let mut claims = f.claims();
            claims.as_object_mut().unwrap().remove("aud");
            f.es.token(&claims)
        }),
        (
            "an ID token",
            f.es.jws(
                &json!({"alg": "ES256", "typ": "JWT", "kid": f.es.kid}),
                &f.claims(),
            ),
        ),
    ] {
        assert!(verify(token).await.is_err(), "{case}: still refused");
    }

    let hint = Verifier::new(VerifierConfig {
        token_kind: TokenKind::Id,
        check_expiry: false,
        ..any_audience
    })
    .unwrap();
    let id_header = json!({"alg": "ES256", "typ": "JWT", "kid": f.es.kid});
    let old = f.es.jws(&id_header, &with("exp", json!(now() - 86_400)));
    assert!(hint.verify::<Value>(&old).await.is_ok(), "an old ID token");
    assert_eq!(
        hint.verify::<Value>(&f.es.token(&f.claims()))
            .await
            .unwrap_err(),
        VerifyError::WrongType,
        "an access token is not an ID token"
    );
    let forged = with_signature(&old, &f.rs.sign(b"other"));
    assert!(hint.verify::<Value>(&forged).await.is_err(), "signature");

    // The instant is the caller's: a token is expired an hour later, not yet valid before.
    let token = f.es.token(&f.claims());
    let at = |offset: i64| u64::try_from(now() + offset).unwrap();
    assert!(own.verify_at::<Value>(&token, at(0)).await.is_ok());
    assert!(own.verify_at::<Value>(&token, at(3600)).await.is_err());
    assert!(own.verify_at::<Value>(&token, at(-3600)).await.is_err());
}

// Portcullis verifies its own tokens with the same verifier, keys installed from memory (no
// HTTP), and follows key changes.
async fn the_server_verifies_its_own_tokens_by_the_same_rules(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let app = env.spawn().await;
    let own = app.state.tokens.first_party_verifier();
    let mut claims = claims(&app.issuer);
    claims["aud"] = json!(app.issuer);
    for alg in SigningAlg::ALL {
        let token = app.state.signer.sign(alg, "at+jwt", &claims).unwrap();
        assert_eq!(own.verify::<Value>(&token).await.unwrap().subject, "user-1");
        let id_token = app.state.signer.sign(alg, "JWT", &claims).unwrap();
        assert_eq!(
            own.verify::<Value>(&id_token).await.unwrap_err(),
            VerifyError::WrongType
        );
    }
    let mut other_audience = claims.clone();
    other_audience["aud"] = json!("api");
    let token = app
        .state
        .signer
        .sign(SigningAlg::Es256, "at+jwt", &other_audience)
        .unwrap();
    assert!(
        own.verify::<Value>(&token).await.is_err(),
        "default audience is the issuer itself"
    );

    let old_token = app
        .state
        .signer
        .sign(SigningAlg::Es256, "at+jwt", &claims)
        .unwrap();
    let listed = stdout_json(&env.cli(&["keys", "list"]).await);
    let old_es_kid = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["alg"] == "ES256")
        .unwrap()["kid"]
        .as_str()
        .unwrap()
        .to_owned();
    stdout_json(&env.cli(&["keys", "revoke", &old_es_kid, "--replace"]).await);
    app.wait_for_jwks("revoked", |jwks| {
        !crate::helpers::kids_of(jwks).contains(&old_es_kid)
    })
    .await;
    assert_eq!(
        own.verify::<Value>(&old_token).await.unwrap_err(),
        VerifyError::UnknownKey,
        "a revoked key no longer verifies"
    );
    let new_token = app
        .state
        .signer
        .sign(SigningAlg::Es256, "at+jwt", &claims)
        .unwrap();
    own.verify::<Value>(&new_token)
        .await
        .expect("the replacement verifies");
    assert_eq!(own.cache().fetch_count(), 0, "never fetched over HTTP");
}

crate::on_both_backends!(
    rotation_at_a_real_issuer_is_picked_up,
    the_server_verifies_its_own_tokens_by_the_same_rules,
);
