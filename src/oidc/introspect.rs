//! Checks of tokens this provider issued, for introspection (RFC 7662), revocation (RFC 7009),
//! userinfo and RP-initiated logout: the signature with the published key named by `kid` (the
//! algorithm from our key record), our issuer, `typ`, and expiry — with no audience, since these
//! endpoints serve tokens of every audience.

use serde::Deserialize;

use crate::keys::SigningAlg;
use crate::state::AppState;

/// The claims of one of our access tokens.
#[derive(Debug, Clone, Deserialize)]
pub struct OwnAccessClaims {
    /// Subject.
    pub sub: String,
    /// Client.
    pub client_id: String,
    /// Scope.
    #[serde(default)]
    pub scope: String,
    /// Expiry.
    pub exp: i64,
    /// Issued at.
    pub iat: i64,
    /// Token id.
    pub jti: String,
    /// Audience.
    pub aud: serde_json::Value,
    /// Issuer.
    pub iss: String,
}

/// The claims of one of our ID tokens (for `id_token_hint`).
#[derive(Debug, Clone, Deserialize)]
pub struct OwnIdClaims {
    /// Subject.
    pub sub: String,
    /// The client it was issued to.
    pub aud: String,
    /// Browser session.
    #[serde(default)]
    pub sid: Option<String>,
}

fn decode<C: serde::de::DeserializeOwned>(
    state: &AppState,
    token: &str,
    typ: &str,
    check_exp: bool,
) -> Option<C> {
    if token.len() > 16 * 1024 {
        return None;
    }
    let header = jsonwebtoken::decode_header(token).ok()?;
    if header.typ.as_deref() != Some(typ) {
        return None;
    }
    let kid = header.kid?;
    let keys = state.keys.current();
    let key = keys.published().iter().find(|k| k.kid == kid)?;
    let alg: SigningAlg = key.alg;
    // The algorithm of our key record decides; a header naming another is refused.
    if header.alg != alg.jsonwebtoken() {
        return None;
    }
    let decoding = key.jwk.decoding_key().ok()?;
    let mut validation = jsonwebtoken::Validation::new(alg.jsonwebtoken());
    validation.set_issuer(&[state.issuer.as_str()]);
    validation.validate_aud = false;
    validation.validate_exp = check_exp;
    validation.leeway = 0;
    validation.set_required_spec_claims(&["iss", "exp", "sub"]);
    jsonwebtoken::decode::<C>(token, &decoding, &validation)
        .ok()
        .map(|data| data.claims)
}

/// One of our unexpired access tokens, or `None`.
pub fn own_access_token(state: &AppState, token: &str) -> Option<OwnAccessClaims> {
    decode(state, token, "at+jwt", true)
}

/// One of our ID tokens, expired or not (an `id_token_hint` may be old), or `None`.
pub fn own_id_token(state: &AppState, token: &str) -> Option<OwnIdClaims> {
    decode(state, token, "JWT", false)
}
