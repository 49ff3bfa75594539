//! Rows as Rust types.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::signing_keys;

/// A row of `signing_keys`.
#[derive(Queryable, Selectable, Insertable, Clone)]
#[diesel(table_name = signing_keys)]
pub struct SigningKeyRow {
    /// RFC 7638 thumbprint.
    pub kid: String,
    /// Algorithm name.
    pub alg: String,
    /// Lifecycle state.
    pub state: String,
    /// Public JWK JSON.
    pub public_jwk: String,
    /// Sealed private key.
    pub private_key_sealed: String,
    /// Creation time (UTC).
    pub created_at: NaiveDateTime,
    /// Activation time (UTC).
    pub activated_at: Option<NaiveDateTime>,
    /// Retirement time (UTC).
    pub retired_at: Option<NaiveDateTime>,
    /// Revocation time (UTC).
    pub revoked_at: Option<NaiveDateTime>,
}

impl std::fmt::Debug for SigningKeyRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeyRow")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("state", &self.state)
            .field("private_key_sealed", &"<sealed>")
            .finish_non_exhaustive()
    }
}
