//! Discovery metadata (OpenID Connect Discovery 1.0 §3, RFC 8414 §2). It lists only what exists;
//! later capabilities add their fields here.

use serde::Serialize;

use crate::config::Issuer;

/// The provider metadata document.
#[derive(Debug, Serialize)]
pub struct ProviderMetadata {
    /// The issuer identifier, byte-identical to the `iss` of every token.
    pub issuer: String,
    /// Where the public signing keys are published.
    pub jwks_uri: String,
}

impl ProviderMetadata {
    /// The metadata of an issuer.
    pub fn for_issuer(issuer: &Issuer) -> Self {
        Self {
            issuer: issuer.as_str().to_owned(),
            jwks_uri: format!("{issuer}/.well-known/jwks.json"),
        }
    }
}
