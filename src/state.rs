//! Shared application state, built once at start and injected into handlers.

use std::sync::Arc;

use actix_web::http::header::HeaderValue;
use actix_web::web::Bytes;

use crate::accounts::PasswordHasher;
use crate::config::{Issuer, Settings};
use crate::db::Db;
use crate::keys::{KeyRing, KeySet, Signer};
use crate::verify::Verifier;

/// Everything a handler may need. Cloned cheaply into each worker.
#[derive(Clone)]
pub struct AppState {
    /// Database pool handle.
    pub db: Db,
    /// The current signing keys and JWKS.
    pub keys: Arc<KeyRing>,
    /// Signs tokens with the active keys.
    pub signer: Signer,
    /// The issuer identifier.
    pub issuer: Issuer,
    /// Pre-serialised discovery document.
    pub discovery: Bytes,
    /// `Cache-Control` value of the JWKS and discovery responses.
    pub public_cache_control: HeaderValue,
    /// Every setting (token lifetimes, throttling, registration).
    pub settings: Arc<Settings>,
    /// Password hashing with bounded concurrency.
    pub hasher: PasswordHasher,
    /// Verifies the access tokens this server signed, by the rules every resource server uses
    /// (`portcullis::verify`), with the keys installed from memory. Default audience: the issuer.
    pub verifier: Verifier,
}

impl AppState {
    /// Makes `set` the current key set: signing, the published JWKS and our own verification
    /// all switch together.
    pub fn install_key_set(&self, set: KeySet) {
        if let Err(error) = self.verifier.install_jwks(set.jwks_body()) {
            tracing::error!(%error, "the verifier refused our own JWKS");
        }
        self.keys.replace(set);
    }
}
