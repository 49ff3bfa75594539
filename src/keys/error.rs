//! What a key operation can fail with.

use super::SigningAlg;
use super::kek::KekError;
use super::schedule::KeyInfo;
use crate::db::DbError;

/// Why a key operation failed. Messages are for operators; none contains key material.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Database trouble.
    #[error(transparent)]
    Db(#[from] DbError),
    /// KEK trouble.
    #[error(transparent)]
    Kek(#[from] KekError),
    /// A stored key does not decrypt under the configured KEK.
    #[error(
        "signing key {kid} cannot be decrypted with the configured key-encryption key (PORTCULLIS_KEK or <keys-dir>/kek); it belongs to another installation or was tampered with. Portcullis will not generate new keys over existing ones"
    )]
    Undecryptable {
        /// The key that failed.
        kid: String,
    },
    /// A stored key is malformed or inconsistent.
    #[error("signing key {kid} is invalid: {reason}")]
    Invalid {
        /// The key.
        kid: String,
        /// What is wrong.
        reason: String,
    },
    /// No such key.
    #[error("no signing key with kid {0}")]
    NotFound(String),
    /// Already revoked or removed: not published any more.
    #[error("signing key {0} is no longer published (revoked or removed)")]
    AlreadyRevoked(String),
    /// A rotation has started already: its pending keys are published and will activate.
    #[error("a rotation is already in progress: a pending key awaits activation")]
    RotationInProgress(Vec<KeyInfo>),
    /// A concurrent change won the race; nothing was written.
    #[error("another key change happened at the same time; nothing was changed, try again")]
    Conflict,
    /// Key generation failed; the cause (the key library's error, a failed blocking task or an
    /// encoding error) is kept as the source.
    #[error("key generation failed: {0}")]
    Generate(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The pre-generated key of this algorithm is not ready yet (it is being made in the
    /// background); nothing was changed.
    #[error("the next {0} key is still being generated; nothing was changed, try again shortly")]
    NoSpare(SigningAlg),
    /// This instance no longer holds the rotator lease (another instance took it over); the
    /// scheduled change was not made.
    #[error("this instance no longer holds the key rotator lease; another instance took over")]
    NotRotator,
}

impl From<diesel::result::Error> for KeyError {
    fn from(error: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        match error {
            // The one-active-per-algorithm index refused a second active key.
            Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => Self::Conflict,
            other => Self::Db(DbError::Query(other)),
        }
    }
}
