//! The in-memory key set: parsed signing key pairs and the pre-serialised JWKS, swapped atomically
//! when keys change so the hot paths never touch the database or a lock.

use std::collections::BTreeMap;
use std::sync::Arc;

use actix_web::http::header::HeaderValue;
use actix_web::web::Bytes;
use arc_swap::ArcSwap;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use super::generate::SigningKeyPair;
use super::jwk::{PublicJwk, PublishedJwk};
use super::{KeyState, SigningAlg};

/// A key that may sign: the parsed key pair and its id.
pub struct ActiveKey {
    /// Key id published in the JWKS and put in every token header.
    pub kid: String,
    /// Its one algorithm.
    pub alg: SigningAlg,
    /// Parsed key pair.
    pub pair: SigningKeyPair,
}

/// A published key (pending, active or retired) as loaded from the database.
pub struct PublishedKey {
    /// Key id.
    pub kid: String,
    /// Algorithm.
    pub alg: SigningAlg,
    /// State.
    pub state: KeyState,
    /// Public key.
    pub jwk: PublicJwk,
}

/// One consistent snapshot of the keys.
pub struct KeySet {
    active: BTreeMap<SigningAlg, Arc<ActiveKey>>,
    published: Vec<PublishedKey>,
    jwks_body: Bytes,
    jwks_etag: HeaderValue,
    fingerprint: Vec<(String, String)>,
}

impl KeySet {
    /// Builds a snapshot from the active key pairs and every published key.
    pub fn new(active: Vec<ActiveKey>, mut published: Vec<PublishedKey>) -> Self {
        // Stable order: by algorithm, then signer first, then newest pending, then retired.
        published.sort_by(|a, b| {
            (a.alg, state_rank(a.state), &a.kid).cmp(&(b.alg, state_rank(b.state), &b.kid))
        });
        let keys: Vec<PublishedJwk> = published
            .iter()
            .map(|k| PublishedJwk {
                key: k.jwk.clone(),
                kid: k.kid.clone(),
                use_: "sig".into(),
                alg: k.alg.as_str().into(),
            })
            .collect();
        let body = serde_json::json!({ "keys": keys }).to_string();
        // Base64url is always a valid header value, so this conversion cannot fail.
        let jwks_etag = HeaderValue::from_str(&format!(
            "\"{}\"",
            URL_SAFE_NO_PAD.encode(Sha256::digest(body.as_bytes()))
        ))
        .unwrap_or_else(|_| HeaderValue::from_static("\"\""));
        let mut fingerprint: Vec<(String, String)> = published
            .iter()
            .map(|k| (k.kid.clone(), k.state.as_str().to_owned()))
            .collect();
        fingerprint.sort();
        Self {
            active: active.into_iter().map(|k| (k.alg, Arc::new(k))).collect(),
            published,
            jwks_body: Bytes::from(body),
            jwks_etag,
            fingerprint,
        }
    }

    /// The signing key of `alg`, if one is active.
    pub fn active(&self, alg: SigningAlg) -> Option<&Arc<ActiveKey>> {
        self.active.get(&alg)
    }

    /// Every published key.
    pub fn published(&self) -> &[PublishedKey] {
        &self.published
    }

    /// The JWKS document, serialised once.
    pub fn jwks_body(&self) -> &Bytes {
        &self.jwks_body
    }

    /// Strong ETag of the JWKS body (quoted).
    pub fn jwks_etag(&self) -> &HeaderValue {
        &self.jwks_etag
    }

    /// Sorted `(kid, state)` pairs, to detect changes in the database cheaply.
    pub fn fingerprint(&self) -> &[(String, String)] {
        &self.fingerprint
    }
}

fn state_rank(state: KeyState) -> u8 {
    match state {
        KeyState::Active => 0,
        KeyState::Pending => 1,
        KeyState::Retired => 2,
        KeyState::Removed | KeyState::Revoked => 3,
    }
}

/// The current key set, replaced atomically; readers never wait.
pub struct KeyRing {
    current: ArcSwap<KeySet>,
}

impl KeyRing {
    /// A ring holding `set`.
    pub fn new(set: KeySet) -> Self {
        Self {
            current: ArcSwap::from_pointee(set),
        }
    }

    /// A snapshot of the current set (cheap; no lock).
    pub fn current(&self) -> arc_swap::Guard<Arc<KeySet>> {
        self.current.load()
    }

    /// Replaces the set.
    pub fn replace(&self, set: KeySet) {
        self.current.store(Arc::new(set));
    }
}
