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

/// How a client's ID tokens are secured (OIDC Registration §2 `id_token_signed_response_alg`,
/// stored as its JWA name in `clients.id_token_alg`): signed with the active key of a
/// [`SigningAlg`] (RS256 by default, OIDC Core §3.1.3.7), or unsigned (`none`).
///
/// An unsigned ID token is an Unsecured JWS (RFC 7515 Appendix A.5, RFC 7519 §6): header
/// `{"alg":"none","typ":"JWT"}`, the claims, an empty signature. OIDC Registration §2: "The value
/// none MUST NOT be used as the ID Token alg value unless the Client uses only Response Types
/// that return no ID Token from the Authorization Endpoint (such as when only using the
/// Authorization Code Flow)". `code` is Portcullis's only response type, so every client
/// qualifies: its ID tokens (authorization code, refresh and device grants) come only from the
/// token endpoint, in a TLS response to the client's own request, which is what OIDC Core
/// §3.1.3.7 item 6 lets a client rely on instead of a signature. Such a token is never accepted
/// back (`id_token_hint`, token exchange): the server's own verifiers accept only signatures by
/// its published keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IdTokenAlg {
    /// A compact JWS signed with the active key of this algorithm.
    Signed(SigningAlg),
    /// An Unsecured JWS (`alg: none`, empty signature).
    Unsigned,
}

impl IdTokenAlg {
    /// Every value, in the order discovery lists them (`id_token_signing_alg_values_supported`):
    /// RS256 (OpenID Connect's mandatory one), ES256, then `none`.
    pub const ALL: [IdTokenAlg; 3] = [
        IdTokenAlg::Signed(SigningAlg::Rs256),
        IdTokenAlg::Signed(SigningAlg::Es256),
        IdTokenAlg::Unsigned,
    ];

    /// The JWA name: `RS256`, `ES256` or `none`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Signed(alg) => alg.as_str(),
            Self::Unsigned => "none",
        }
    }

    /// Parses a JWA name (exact, case-sensitive: `None` is not `none`).
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "none" => Some(Self::Unsigned),
            other => SigningAlg::parse(other).map(Self::Signed),
        }
    }
}

impl Default for IdTokenAlg {
    /// RS256 (OIDC Core §3.1.3.7: the default when a client registered none).
    fn default() -> Self {
        Self::Signed(SigningAlg::Rs256)
    }
}

impl std::fmt::Display for IdTokenAlg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for IdTokenAlg {
    /// As its JWA name, like [`SigningAlg`].
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
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

#[cfg(test)]
mod tests {
    use super::{IdTokenAlg, SigningAlg};

    #[test]
    fn id_token_algs_parse_their_jwa_names_exactly() {
        for alg in IdTokenAlg::ALL {
            assert_eq!(IdTokenAlg::parse(alg.as_str()), Some(alg));
        }
        assert_eq!(IdTokenAlg::parse("none"), Some(IdTokenAlg::Unsigned));
        for refused in ["None", "NONE", "", "HS256", "rs256"] {
            assert_eq!(IdTokenAlg::parse(refused), None, "{refused}");
        }
        assert_eq!(IdTokenAlg::default(), IdTokenAlg::Signed(SigningAlg::Rs256));
        assert_eq!(
            serde_json::to_value(IdTokenAlg::Unsigned).unwrap(),
            serde_json::json!("none")
        );
    }
}
