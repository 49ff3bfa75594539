//! The in-memory key set: parsed signing key pairs and the pre-serialised JWKS, swapped atomically
//! when keys change so the hot paths never touch the database or a lock.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

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
    /// Held by whoever installs a set (never by readers): the check that the set in place is
    /// still the one a load began from, what is installed along with the set (the verifiers'
    /// JWKS) and the swap happen as one step, so two installs cannot interleave.
    installing: Mutex<()>,
}

impl KeyRing {
    /// A ring holding `set`.
    pub fn new(set: KeySet) -> Self {
        Self {
            current: ArcSwap::from_pointee(set),
            installing: Mutex::new(()),
        }
    }

    /// A snapshot of the current set (cheap; no lock).
    pub fn current(&self) -> arc_swap::Guard<Arc<KeySet>> {
        self.current.load()
    }

    /// The set in place now, to hand to [`KeyRing::install_over`] as the one a load of the
    /// database began from (taken before the load reads).
    pub fn observe(&self) -> Arc<KeySet> {
        self.current.load_full()
    }

    /// Installs `set` if the set in place is still `observed` (from [`KeyRing::observe`] before
    /// `set` was read), calling `along(&set)` first (the verifiers' JWKS, so tokens signed with
    /// a new key verify from the moment it signs); returns whether it was installed. Another set
    /// installed meanwhile may have been read after a change `set` predates (a key revoked or
    /// rotated while a refresh tick read the table): `set` is dropped rather than put back over
    /// it, and the caller reads again.
    pub fn install_over(
        &self,
        observed: &Arc<KeySet>,
        set: KeySet,
        along: impl FnOnce(&KeySet),
    ) -> bool {
        let _installing = self
            .installing
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if !Arc::ptr_eq(&self.current.load(), observed) {
            return false;
        }
        along(&set);
        self.current.store(Arc::new(set));
        true
    }

    /// Installs `set` whatever is in place, calling `along(&set)` first (as
    /// [`KeyRing::install_over`] does).
    pub fn replace(&self, set: KeySet, along: impl FnOnce(&KeySet)) {
        let _installing = self
            .installing
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        along(&set);
        self.current.store(Arc::new(set));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    fn set(kid: &str) -> KeySet {
        KeySet::new(
            Vec::new(),
            vec![PublishedKey {
                kid: kid.into(),
                alg: SigningAlg::Es256,
                state: KeyState::Active,
                jwk: PublicJwk::Ec {
                    crv: "P-256".into(),
                    x: kid.into(),
                    y: kid.into(),
                },
            }],
        )
    }

    fn kids(ring: &KeyRing) -> Vec<String> {
        ring.current()
            .published()
            .iter()
            .map(|k| k.kid.clone())
            .collect()
    }

    // A refresh tick that read the keys before a change (a revocation) and finishes after the
    // reload that follows the change must not put the older set back: the revoked key would sign
    // and be published again until the next tick. Nor may it install its JWKS.
    #[test]
    fn a_set_overtaken_by_another_is_not_installed() {
        let ring = KeyRing::new(set("before"));
        let observed_by_tick = ring.observe();
        let observed_by_reload = ring.observe();
        let jwks = Cell::new("");
        assert!(ring.install_over(&observed_by_reload, set("after"), |_| jwks.set("after")));
        assert!(!ring.install_over(&observed_by_tick, set("stale"), |_| jwks.set("stale")));
        assert_eq!(kids(&ring), ["after"]);
        assert_eq!(jwks.get(), "after");
        // A load that began from the set now in place is installed.
        let observed = ring.observe();
        assert!(ring.install_over(&observed, set("next"), |_| jwks.set("next")));
        assert_eq!(kids(&ring), ["next"]);
        assert_eq!(jwks.get(), "next");
    }
}
