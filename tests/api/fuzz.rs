//! Property tests (bounded: proptest's default 256 cases each) of the parsers that face hostile
//! input: the verifier's JWS/JWT path, the OAuth form parser, the redirect-URI rules and the
//! PKCE check. They must never panic, and must keep their invariants. Failing inputs are kept by
//! proptest under `proptest-regressions/` and replayed first.

use portcullis::keys::generate;
use portcullis::keys::{RsaKeySize, SigningAlg};
use portcullis::oidc::clients::validate_redirect_uri;
use portcullis::oidc::params::{Params, pkce_matches, valid_challenge};
use portcullis::verify::{Verifier, VerifierConfig};
use proptest::prelude::*;

fn verifier() -> Verifier {
    let material = generate::generate(SigningAlg::Es256, RsaKeySize::Rsa2048).unwrap();
    let kid = material.jwk.thumbprint();
    let mut jwk = serde_json::to_value(&material.jwk).unwrap();
    jwk["kid"] = kid.into();
    jwk["alg"] = "ES256".into();
    jwk["use"] = "sig".into();
    let verifier = Verifier::local(VerifierConfig::for_issuer("https://idp.example")).unwrap();
    verifier
        .install_jwks(serde_json::json!({ "keys": [jwk] }).to_string().as_bytes())
        .unwrap();
    verifier
}

fn s256(verifier: &str) -> String {
    use base64::Engine;
    use sha2::Digest;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()))
}

proptest! {
    // The verifier refuses, never panics on, arbitrary tokens: raw strings, and three segments
    // of arbitrary base64url-decoded JSON-ish bytes.
    #[test]
    fn the_verifier_refuses_arbitrary_tokens(
        raw in ".{0,400}",
        header in proptest::collection::vec(any::<u8>(), 0..200),
        payload in proptest::collection::vec(any::<u8>(), 0..300),
        signature in proptest::collection::vec(any::<u8>(), 0..80),
    ) {
        use base64::Engine;
        let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let verifier = verifier_once();
        let structured = format!("{}.{}.{}", b64(&header), b64(&payload), b64(&signature));
        let with_json_header = format!(
            "{}.{}.{}",
            b64(br#"{"alg":"ES256","typ":"at+jwt","kid":"x"}"#),
            b64(&payload),
            b64(&signature)
        );
        for token in [raw.as_str(), structured.as_str(), with_json_header.as_str()] {
            let verified = runtime.block_on(verifier.verify::<serde_json::Value>(token));
            prop_assert!(verified.is_err());
        }
    }

    // Form parsing: never panics; a parsed value never holds a NUL; a repeated name is refused.
    #[test]
    fn the_form_parser_holds_its_rules(body in proptest::collection::vec(any::<u8>(), 0..500)) {
        if let Ok(params) = Params::parse(&body) {
            for name in ["grant_type", "code", "client_id", "redirect_uri", "scope", "state"] {
                prop_assert!(params.get(name).is_none_or(|v| !v.contains('\0') && !v.is_empty()));
            }
        }
        let mut twice = body.clone();
        twice.extend_from_slice(b"&x=1&x=2");
        prop_assert!(Params::parse(&twice).is_err());
    }

    // Redirect URIs: never panics; anything accepted is https, or http on a loopback host, with
    // no fragment, wildcard, credentials or whitespace.
    #[test]
    fn redirect_uri_rules_hold(uri in "(https?|javascript|data|HTTP)://[ -~]{0,60}|.{0,80}") {
        if validate_redirect_uri(&uri).is_ok() {
            let parsed = url::Url::parse(&uri).unwrap();
            prop_assert!(!uri.contains('#') && !uri.contains('*'));
            prop_assert!(!uri.chars().any(char::is_whitespace));
            prop_assert!(parsed.username().is_empty() && parsed.password().is_none());
            match parsed.scheme() {
                "https" => {}
                "http" => {
                    let host = parsed.host_str().unwrap_or_default();
                    prop_assert!(
                        host == "localhost" || host.starts_with("127.") || host == "[::1]",
                        "{uri}"
                    );
                }
                other => prop_assert!(false, "scheme {other} accepted: {uri}"),
            }
        }
    }

    // PKCE: a valid verifier matches its own S256 challenge and nothing else; arbitrary input
    // never panics and never matches a challenge it was not derived from.
    #[test]
    fn pkce_s256_holds(
        verifier in "[A-Za-z0-9._~-]{43,128}",
        other in ".{0,200}",
    ) {
        let challenge = s256(&verifier);
        prop_assert!(valid_challenge(&challenge));
        prop_assert!(pkce_matches(&verifier, &challenge));
        prop_assert!(!pkce_matches(&challenge, &challenge) || challenge == verifier);
        if other != verifier {
            prop_assert!(!pkce_matches(&other, &challenge));
        }
    }
}

/// One verifier for every case (key generation is the slow part).
fn verifier_once() -> &'static Verifier {
    static VERIFIER: std::sync::OnceLock<Verifier> = std::sync::OnceLock::new();
    VERIFIER.get_or_init(verifier)
}
