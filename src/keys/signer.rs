//! The one entry point for signing: compact JWS (RFC 7515 §7.1) with the active key of an
//! algorithm, from parsed aws-lc-rs key pairs (no per-token key parsing).

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
    kid: &'a str,
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
        let header = serde_json::to_vec(&Header {
            alg: key.alg.as_str(),
            typ,
            kid: &key.kid,
        })?;
        let payload = serde_json::to_vec(claims)?;

        let mut token = String::with_capacity(
            (header.len() + payload.len()) * 4 / 3
                + 2
                + if alg == SigningAlg::Es256 { 86 } else { 700 },
        );
        URL_SAFE_NO_PAD.encode_string(&header, &mut token);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&payload, &mut token);

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
