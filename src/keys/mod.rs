//! Signing keys: generation, JWK encoding and thumbprints, encryption at rest, the in-memory key
//! ring that signs, and the lifecycle operations (create, rotate, revoke).

pub mod error;
pub mod generate;
pub mod jwk;
pub mod kek;
pub mod keyring;
pub mod lifecycle;
pub mod rotator;
pub mod schedule;
pub mod signer;
pub mod spares;

pub use error::KeyError;
pub use keyring::{KeyRing, KeySet};
pub use signer::{SignError, Signer};

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The signing-key settings (`PORTCULLIS_KEK`, `PORTCULLIS_KEYS_DIR`, `PORTCULLIS_RSA_KEY_BITS`,
/// `PORTCULLIS_KEY_*`, `PORTCULLIS_JWKS_MAX_AGE`), validated so the key invariants hold.
#[derive(Clone, Debug)]
pub struct KeySettings {
    /// Directory of the KEK file `kek`.
    pub keys_dir: PathBuf,
    /// The KEK given directly (base64), if any; takes precedence over the file. Never logged.
    pub kek: Option<secrecy::SecretString>,
    /// RSA size for new keys.
    pub rsa_key_size: RsaKeySize,
    /// Rotation schedule: interval, publish lead, retention.
    pub policy: schedule::KeyPolicy,
    /// `Cache-Control: max-age` of the JWKS and discovery responses.
    pub jwks_max_age: Duration,
    /// How often a running server re-reads the keys (and the rotator checks the schedule).
    pub refresh_interval: Duration,
}

/// The JWS algorithms Portcullis signs with. Each key is bound to exactly one of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum SigningAlg {
    /// ECDSA P-256 with SHA-256 (RFC 7518 §3.4): the default for access tokens.
    #[serde(rename = "ES256")]
    Es256,
    /// RSASSA-PKCS1-v1_5 with SHA-256: OpenID Connect's mandatory ID-token algorithm.
    #[serde(rename = "RS256")]
    Rs256,
}

impl SigningAlg {
    /// Every supported algorithm.
    pub const ALL: [SigningAlg; 2] = [SigningAlg::Es256, SigningAlg::Rs256];

    /// The JWA name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Es256 => "ES256",
            Self::Rs256 => "RS256",
        }
    }

    /// Parses a JWA name (exact, case-sensitive).
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "ES256" => Some(Self::Es256),
            "RS256" => Some(Self::Rs256),
            _ => None,
        }
    }

    /// The matching `jsonwebtoken` algorithm, for verification.
    pub fn jsonwebtoken(self) -> jsonwebtoken::Algorithm {
        match self {
            Self::Es256 => jsonwebtoken::Algorithm::ES256,
            Self::Rs256 => jsonwebtoken::Algorithm::RS256,
        }
    }
}

impl std::fmt::Display for SigningAlg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// RSA modulus sizes offered for new RS256 keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RsaKeySize {
    /// 2048 bits (default; RFC 7518 §3.3 minimum).
    Rsa2048,
    /// 3072 bits.
    Rsa3072,
    /// 4096 bits.
    Rsa4096,
}

impl RsaKeySize {
    /// Modulus size in bits.
    pub fn bits(self) -> usize {
        match self {
            Self::Rsa2048 => 2048,
            Self::Rsa3072 => 3072,
            Self::Rsa4096 => 4096,
        }
    }
}

/// Lifecycle state of a signing key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyState {
    /// Published, not yet signing.
    Pending,
    /// The one signer of its algorithm.
    Active,
    /// Published, no longer signing.
    Retired,
    /// Left the JWKS after every token it signed expired; private half erased, row kept.
    Removed,
    /// Withdrawn at once (compromise); private half erased, row kept.
    Revoked,
}

impl KeyState {
    /// Column value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Active => "active",
            Self::Retired => "retired",
            Self::Removed => "removed",
            Self::Revoked => "revoked",
        }
    }

    /// Parses a column value.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "pending" => Some(Self::Pending),
            "active" => Some(Self::Active),
            "retired" => Some(Self::Retired),
            "removed" => Some(Self::Removed),
            "revoked" => Some(Self::Revoked),
            _ => None,
        }
    }
}
