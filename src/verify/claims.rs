//! The standard claims of an RFC 9068 access token.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// The claims of an RFC 9068 access token. Unknown claims are kept in `extra`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// Issuer.
    pub iss: String,
    /// Subject (the user id, or the client id for client-credentials tokens).
    pub sub: String,
    /// Audiences (a single string in the token is read as a one-element list).
    #[serde(deserialize_with = "one_or_many")]
    pub aud: Vec<String>,
    /// Expiry (seconds since the epoch).
    pub exp: u64,
    /// Issued at.
    #[serde(default)]
    pub iat: Option<u64>,
    /// Not before.
    #[serde(default)]
    pub nbf: Option<u64>,
    /// Token id.
    #[serde(default)]
    pub jti: Option<String>,
    /// The client the token was issued to.
    #[serde(default)]
    pub client_id: Option<String>,
    /// Space-separated scopes.
    #[serde(default)]
    pub scope: Option<String>,
    /// Roles of the subject.
    #[serde(default)]
    pub roles: Vec<String>,
    /// When the user signed in (seconds since the epoch; OIDC Core §2): tokens of user grants.
    #[serde(default)]
    pub auth_time: Option<u64>,
    /// The authentication context class of that sign-in (Portcullis:
    /// `urn:portcullis:acr:password` or `urn:portcullis:acr:mfa`): tokens of user grants.
    #[serde(default)]
    pub acr: Option<String>,
    /// The authentication methods of that sign-in (RFC 8176: `pwd`, `otp`, `mfa`…).
    #[serde(default)]
    pub amr: Vec<String>,
    /// The current actor (RFC 8693 §4.1), in tokens issued by token exchange: who acts for
    /// `sub`. Authorize by it and the top-level claims only; earlier actors nested inside it are
    /// informational.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Actor>,
    /// Every other claim.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// The `act` (actor) claim (RFC 8693 §4.1): the party acting for the token's subject. A
/// delegation chain nests: `act` inside `act` names the actor before, the outermost is current.
/// Portcullis writes `sub` (a user id, or a client id for a client acting for itself) and, for a
/// user acting through a client, that client's `client_id`; other members are kept in `extra`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// The actor's subject identifier.
    #[serde(default)]
    pub sub: String,
    /// The client the actor acted through (Portcullis: when the actor is a user).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The earlier actor of a delegation chain (informational, RFC 8693 §4.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Box<Actor>>,
    /// Every other member (`iss`, …).
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

impl Actor {
    /// The chain of actors, the current one first (RFC 8693 §4.1).
    pub fn chain(&self) -> impl Iterator<Item = &Actor> {
        std::iter::successors(Some(self), |actor| actor.act.as_deref())
    }
}

impl AccessClaims {
    /// The scopes of `scope`.
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        super::scope::tokens(self.scope.as_deref().unwrap_or_default())
    }
}

fn one_or_many<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(deserializer)? {
        OneOrMany::One(one) => vec![one],
        OneOrMany::Many(many) => many,
    })
}
