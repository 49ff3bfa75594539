//! Shared application state, built once at start and injected into handlers.

use std::sync::Arc;

use actix_web::http::header::HeaderValue;
use actix_web::web::Bytes;

use crate::config::Issuer;
use crate::db::Db;
use crate::keys::{KeyRing, Signer};

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
}
