//! The one entry point for signing: compact JWS (RFC 7515 §7.1) with the active key of an
//! algorithm, from parsed aws-lc-rs key pairs (no per-token key parsing), and the Unsecured JWS
//! (RFC 7515 Appendix A.5) of clients that registered unsigned ID tokens.

use std::sync::Arc;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::RSA_PKCS1_SHA256;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;

use super::generate::SigningKeyPair;
use super::{KeyRing, SigningAlg};

/// Why a token could not be signed.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// No active key for the algorithm (should not happen once started).
    #[error("no active {0} signing key")]
    NoActiveKey(SigningAlg),
    /// The claims did not serialise.
    #[error("claims did not serialise: {0}")]
    Claims(#[from] serde_json::Error),
    /// The crypto library refused (should not happen).
    #[error("signing failed")]
    Crypto,
}

/// Signs JWTs with the active key of an algorithm. Cheap to clone.
#[derive(Clone)]
pub struct Signer {
    ring: Arc<KeyRing>,
    rng: SystemRandom,
}

#[derive(Serialize)]
struct Header<'a> {
    alg: &'static str,
    typ: &'a str,
    /// The signing key's id; an Unsecured JWS has no key, hence no `kid`.
    #[serde(skip_serializing_if = "Option::is_none")]
    kid: Option<&'a str>,
}

/// The JWS Signing Input (RFC 7515 §5.1 step 6): `BASE64URL(header) '.' BASE64URL(claims)`,
/// in a string with room for `signature_len` more base64url characters and a dot.
fn signing_input<C: Serialize>(
    header: &Header<'_>,
    claims: &C,
    signature_len: usize,
) -> Result<String, SignError> {
    let header = serde_json::to_vec(header)?;
    let payload = serde_json::to_vec(claims)?;
    let mut token =
        String::with_capacity((header.len() + payload.len()) * 4 / 3 + 2 + signature_len);
    URL_SAFE_NO_PAD.encode_string(&header, &mut token);
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(&payload, &mut token);
    Ok(token)
}

/// `claims` as an Unsecured JWS (RFC 7515 Appendix A.5, RFC 7519 §6.1) in compact form: header
/// `{"alg":"none","typ":typ}`, the claims serialised exactly as [`Signer::sign`] serialises
/// them, and an empty signature (the token ends with its second dot). Only for the ID tokens of
/// a client that registered `id_token_signed_response_alg: none` ([`super::IdTokenAlg`]); no
/// verifier of this server accepts such a token.
///
/// # Errors
/// The claims did not serialise ([`SignError::Claims`]).
pub fn unsecured<C: Serialize>(typ: &str, claims: &C) -> Result<String, SignError> {
    let header = Header {
        alg: "none",
        typ,
        kid: None,
    };
    let mut token = signing_input(&header, claims, 0)?;
    token.push('.');
    Ok(token)
}

impl Signer {
    /// A signer over `ring`.
    pub fn new(ring: Arc<KeyRing>) -> Self {
        Self {
            ring,
            rng: SystemRandom::new(),
        }
    }

    /// Signs `claims` as a compact JWS with header `{alg, typ, kid}`; the algorithm is the key's
    /// own, never chosen by the caller's data.
    pub fn sign<C: Serialize>(
        &self,
        alg: SigningAlg,
        typ: &str,
        claims: &C,
    ) -> Result<String, SignError> {
        let set = self.ring.current();
        let key = set.active(alg).ok_or(SignError::NoActiveKey(alg))?;
        let header = Header {
            alg: key.alg.as_str(),
            typ,
            kid: Some(&key.kid),
        };
        let signature_len = if alg == SigningAlg::Es256 { 86 } else { 700 };
        let mut token = signing_input(&header, claims, signature_len)?;

        match &key.pair {
            SigningKeyPair::Es256(pair) => {
                let signature = pair
                    .sign(&self.rng, token.as_bytes())
                    .map_err(|_| SignError::Crypto)?;
                token.push('.');
                URL_SAFE_NO_PAD.encode_string(signature.as_ref(), &mut token);
            }
            SigningKeyPair::Rs256(pair) => {
                let mut signature = vec![0u8; pair.public_modulus_len()];
                pair.sign(
                    &RSA_PKCS1_SHA256,
                    &self.rng,
                    token.as_bytes(),
                    &mut signature,
                )
                .map_err(|_| SignError::Crypto)?;
                token.push('.');
                URL_SAFE_NO_PAD.encode_string(&signature, &mut token);
            }
        }
        Ok(token)
    }

    /// The key ring this signer reads.
    pub fn key_ring(&self) -> &Arc<KeyRing> {
        &self.ring
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unsecured_jws_is_header_claims_and_an_empty_signature() {
        let token = unsecured("JWT", &serde_json::json!({"sub": "u1", "nonce": "n"})).unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3, "{token}");
        assert_eq!(
            URL_SAFE_NO_PAD.decode(parts[0]).unwrap(),
            br#"{"alg":"none","typ":"JWT"}"#
        );
        assert_eq!(
            URL_SAFE_NO_PAD.decode(parts[1]).unwrap(),
            br#"{"nonce":"n","sub":"u1"}"#
        );
        assert!(parts[2].is_empty() && token.ends_with('.'));
    }
}
