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
    /// A pending key's due activation (UTC).
    pub activates_at: Option<NaiveDateTime>,
    /// When a retired key leaves the JWKS (UTC).
    pub remove_after: Option<NaiveDateTime>,
    /// When it left the JWKS (UTC).
    pub removed_at: Option<NaiveDateTime>,
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

/// A row of `users`.
#[derive(Queryable, Selectable, Insertable, Clone)]
#[diesel(table_name = crate::db::schema::users)]
pub struct UserRow {
    /// UUID.
    pub id: String,
    /// As chosen.
    pub username: String,
    /// Lower-cased username.
    pub username_normalized: String,
    /// As given.
    pub email: String,
    /// Lower-cased email.
    pub email_normalized: String,
    /// Argon2id PHC string.
    pub password_hash: String,
    /// Created (UTC).
    pub created_at: NaiveDateTime,
    /// Last change (UTC).
    pub updated_at: NaiveDateTime,
    /// Last password change (UTC).
    pub password_changed_at: NaiveDateTime,
    /// Set when disabled.
    pub disabled_at: Option<NaiveDateTime>,
}

impl std::fmt::Debug for UserRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRow")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("password_hash", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// A row of `refresh_token_families`.
#[derive(Queryable, Selectable, Insertable, Clone, Debug)]
#[diesel(table_name = crate::db::schema::refresh_token_families)]
pub struct RefreshFamilyRow {
    /// UUID.
    pub id: String,
    /// The user.
    pub user_id: String,
    /// The client.
    pub client_id: String,
    /// Granted scope.
    pub scope: String,
    /// Login time.
    pub created_at: NaiveDateTime,
    /// Absolute end.
    pub expires_at: NaiveDateTime,
    /// Revocation time.
    pub revoked_at: Option<NaiveDateTime>,
    /// Revocation reason.
    pub revoked_reason: Option<String>,
}

/// A row of `refresh_tokens` (the hash only; the token itself is never stored).
#[derive(Queryable, Selectable, Insertable, Clone, Debug)]
#[diesel(table_name = crate::db::schema::refresh_tokens)]
pub struct RefreshTokenRow {
    /// SHA-256 of the token.
    pub token_hash: String,
    /// Its family.
    pub family_id: String,
    /// The token it replaced.
    pub parent_hash: Option<String>,
    /// Issued.
    pub created_at: NaiveDateTime,
    /// Rotated.
    pub used_at: Option<NaiveDateTime>,
}
