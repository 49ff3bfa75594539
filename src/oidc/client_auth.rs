//! How a client proves itself at the token, revocation and introspection endpoints: its
//! registered method (RFC 7591 §2 `token_endpoint_auth_method`) and, for `private_key_jwt`
//! (RFC 7523 §2.2, OIDC Core §9), the check of its assertion against the public keys it
//! registered. Which endpoint and how the assertion's `jti` is recorded are the caller's.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, Validation};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::db::{Db, DbError};
use crate::oidc::error::OAuthError;
use crate::oidc::remote::{CacheBounds, RemoteCache};
use crate::verify::FetchError;
use crate::verify::fetch::SafeFetcher;
use crate::verify::jwks::{PublicJwk, public_key};

/// `client_assertion_type` of a JWT client assertion (RFC 7523 §2.2).
pub const JWT_BEARER_ASSERTION: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Largest client assertion accepted, in bytes.
pub const MAX_ASSERTION_LEN: usize = 8 * 1024;

/// Longest an assertion may still be valid when it arrives (`exp` − now), in seconds: assertions
/// are for one request, and each `jti` is remembered until its `exp`. One hour, as Hydra allows,
/// which also takes the default lifetime of common client libraries (Authlib signs for 3600 s).
pub const MAX_ASSERTION_LIFETIME_SECS: i64 = 3600;

/// Clock skew allowed on `exp`, `nbf` and `iat`, in seconds.
pub const LEEWAY_SECS: u64 = 60;

/// The signature algorithms of client assertions (`token_endpoint_auth_signing_alg_values_supported`).
pub const ASSERTION_ALGS: [&str; 3] = ["RS256", "PS256", "ES256"];

/// A client's registered authentication method (RFC 7591 §2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// A public client: no authentication, `client_id` in the body.
    None,
    /// A confidential client with a secret, in `Authorization: Basic` or (`client_secret_post`)
    /// the form body: both are accepted, as they always were.
    ClientSecretBasic,
    /// A confidential client with no secret: a JWT signed by one of its registered keys.
    PrivateKeyJwt,
}

impl AuthMethod {
    /// The RFC 7591 name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::ClientSecretBasic => "client_secret_basic",
            Self::PrivateKeyJwt => "private_key_jwt",
        }
    }

    /// Parses an RFC 7591 name; `client_secret_post` is the same method as
    /// `client_secret_basic` here (a secret client may use either).
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "none" => Some(Self::None),
            "client_secret_basic" | "client_secret_post" => Some(Self::ClientSecretBasic),
            "private_key_jwt" => Some(Self::PrivateKeyJwt),
            _ => None,
        }
    }
}

/// A client's registered public keys (a JWKS, RFC 7517 §5), parsed. Every key must be usable:
/// registration refuses a set with a bad key rather than dropping it.
pub struct ClientKeys {
    keys: Vec<PublicJwk>,
}

impl fmt::Debug for ClientKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.keys.iter().map(|k| (k.kid.as_deref(), k.alg_name)))
            .finish()
    }
}

/// Largest JWKS a client may register, in bytes.
pub const MAX_JWKS_LEN: usize = 16 * 1024;

/// Most keys in a client's JWKS.
pub const MAX_KEYS: usize = 10;

impl ClientKeys {
    /// Parses a client's JWKS (`{"keys": [...]}`): 1 to [`MAX_KEYS`] public signature keys (see
    /// [`public_key`]), `kid`s unique when present; a key without `kid` is allowed when no other
    /// key has its algorithm (the OpenID conformance suite registers one so). Errors name the
    /// key and the reason.
    pub fn parse(jwks: &Value) -> Result<Self, String> {
        let text = serde_json::to_string(jwks).unwrap_or_default();
        if text.len() > MAX_JWKS_LEN {
            return Err(format!("jwks is larger than {MAX_JWKS_LEN} bytes"));
        }
        let entries = jwks
            .get("keys")
            .and_then(Value::as_array)
            .ok_or("jwks must be a JSON Web Key Set: an object with a `keys` array")?;
        if entries.is_empty() || entries.len() > MAX_KEYS {
            return Err(format!("jwks must hold 1 to {MAX_KEYS} keys"));
        }
        let mut keys: Vec<PublicJwk> = Vec::with_capacity(entries.len());
        for entry in entries {
            let key = public_key(entry).map_err(|why| format!("jwks: {why}"))?;
            let clash = keys.iter().any(|other| match (&key.kid, &other.kid) {
                (Some(a), Some(b)) => a == b,
                _ => key.alg == other.alg && (key.kid.is_none() || other.kid.is_none()),
            });
            if clash {
                return Err(format!(
                    "jwks: `{}` cannot be told apart from another key (give each key its own kid)",
                    key.kid.as_deref().unwrap_or("a key without kid")
                ));
            }
            keys.push(key);
        }
        Ok(Self { keys })
    }

    /// Whether a key has `kid`.
    pub fn has_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid.as_deref() == Some(kid))
    }

    /// The keys' ids, in order (`-` for a key without one), for audit records.
    pub fn kids(&self) -> Vec<String> {
        self.keys
            .iter()
            .map(|k| k.kid.clone().unwrap_or_else(|| "-".into()))
            .collect()
    }

    /// The keys that may have signed a JWS of `alg` whose header names `kid` (a request object,
    /// OIDC Core §6.1): the key with that `kid`, or — without one — every key; in both cases
    /// only keys of `alg`'s type (RSA for RS256 and PS256, EC P-256 for ES256) whose JWK does
    /// not name another algorithm (RFC 7517 §4.4). The algorithm is thus never the header's
    /// alone: it must fit the registered key (JWT-03, JWT-06). Empty: no key fits.
    pub fn verifying_keys(&self, alg: Algorithm, kid: Option<&str>) -> Vec<&PublicJwk> {
        let rsa = |a: Algorithm| matches!(a, Algorithm::RS256 | Algorithm::PS256);
        let fits = |key: &PublicJwk| {
            if key.alg_declared {
                key.alg == alg
            } else {
                key.alg == alg || (rsa(key.alg) && rsa(alg))
            }
        };
        self.keys
            .iter()
            .filter(|key| kid.is_none_or(|kid| key.kid.as_deref() == Some(kid)))
            .filter(|key| fits(key))
            .collect()
    }

    /// Whether some key can verify `alg` (see [`ClientKeys::verifying_keys`]).
    pub fn supports(&self, alg: Algorithm) -> bool {
        !self.verifying_keys(alg, None).is_empty()
    }

    /// The key an assertion's header names: by `kid`, or — without one — the only key of its
    /// `alg`. The key's algorithm must be the header's (never chosen by the header alone).
    fn select(&self, alg: Algorithm, kid: Option<&str>) -> Result<&PublicJwk, &'static str> {
        let key = match kid {
            Some(kid) => self
                .keys
                .iter()
                .find(|k| k.kid.as_deref() == Some(kid))
                .ok_or("no registered key has the assertion's kid")?,
            None => {
                let mut of_alg = self.keys.iter().filter(|k| k.alg == alg);
                match (of_alg.next(), of_alg.next()) {
                    (Some(key), None) => key,
                    (None, _) => return Err("no registered key has the assertion's alg"),
                    (Some(_), Some(_)) => return Err("the assertion has no kid to choose a key"),
                }
            }
        };
        if key.alg == alg {
            Ok(key)
        } else {
            Err("the assertion's alg is not its key's")
        }
    }
}

/// How long a client's keys fetched from its `jwks_uri` are kept: the response's
/// `Cache-Control` lifetime bounded to 1 to 60 minutes (5 without one); an assertion naming a
/// `kid` the cached set lacks refetches at once, then at most every 30 seconds (key rotation
/// at the client; a flood of made-up kids is not a flood of fetches).
pub const REMOTE_KEYS_CACHE: CacheBounds = CacheBounds {
    min: Duration::from_secs(60),
    default: Duration::from_secs(300),
    max: Duration::from_secs(3600),
    refetch_cooldown: Duration::from_secs(30),
};

/// The keys of clients registered with a `jwks_uri` (RFC 7591 §2), fetched through the
/// SSRF-safe fetcher (at most [`MAX_JWKS_LEN`] bytes, a JSON content type) and cached by URL
/// ([`REMOTE_KEYS_CACHE`]).
pub struct RemoteKeys {
    cache: RemoteCache<ClientKeys>,
}

impl RemoteKeys {
    /// Keys fetched with `fetcher`.
    pub fn new(fetcher: Arc<SafeFetcher>) -> Self {
        Self {
            cache: RemoteCache::new(
                fetcher,
                "application/jwk-set+json, application/json",
                MAX_JWKS_LEN,
                REMOTE_KEYS_CACHE,
            ),
        }
    }

    /// The key set at `jwks_uri`, parsed by [`ClientKeys::parse`]; refetched first (within the
    /// cooldown) when the cached set has no key `kid`. Errors: the fetch's, or a document that
    /// is not a valid key set.
    pub async fn keys(
        &self,
        jwks_uri: &str,
        kid: Option<&str>,
    ) -> Result<Arc<ClientKeys>, FetchError> {
        self.cache
            .get(
                jwks_uri,
                |keys| kid.is_none_or(|kid| keys.has_kid(kid)),
                |body| {
                    let jwks: Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
                    ClientKeys::parse(&jwks)
                },
            )
            .await
    }
}

/// The `kid` of an assertion's header, read without checking it (to choose which key set
/// suffices); `None` without one or for anything that is not a JWS.
pub fn unverified_kid(assertion: &str) -> Option<String> {
    if assertion.len() > MAX_ASSERTION_LEN {
        return None;
    }
    jsonwebtoken::decode_header(assertion).ok()?.kid
}

/// The claims of a client assertion that are checked here (RFC 7523 §3).
#[derive(Deserialize)]
struct AssertionClaims {
    jti: Option<String>,
    exp: i64,
    iat: Option<i64>,
}

/// An accepted assertion: its `jti` must now be recorded as spent until `expires_at`.
#[derive(Debug)]
pub struct AcceptedAssertion {
    /// The assertion's `jti`.
    pub jti: String,
    /// Its `exp` (seconds since the epoch).
    pub expires_at: i64,
}

impl AcceptedAssertion {
    /// The key its `jti` is recorded under: base64url SHA-256 of the client id and the `jti`
    /// (fixed length whatever the `jti`, and one client's `jti`s never collide with another's).
    pub fn record_key(&self, client_id: &str) -> String {
        let mut digest = Sha256::new();
        digest.update(client_id.as_bytes());
        digest.update([0]);
        digest.update(self.jti.as_bytes());
        URL_SAFE_NO_PAD.encode(digest.finalize())
    }
}

/// Records `accepted` as spent by `client_id` until its `exp` (RFC 7523 §3 item 7: the `jti`
/// is single-use): `Ok(false)` when it was spent before — on any instance, since the record is
/// in the shared database.
pub async fn spend(
    db: &Db,
    client_id: &str,
    accepted: &AcceptedAssertion,
) -> Result<bool, OAuthError> {
    let expires_at = chrono::DateTime::from_timestamp(accepted.expires_at, 0)
        .map(|at| at.naive_utc())
        .ok_or_else(|| OAuthError::invalid_client(false))?;
    let (id, key) = (client_id.to_owned(), accepted.record_key(client_id));
    db.run(move |conn| {
        crate::db::queries::clients::record_assertion(conn, &id, &key, expires_at)
            .map_err(DbError::Query)
    })
    .await
    .map_err(OAuthError::from)
}

/// The `iss` of an assertion, read without checking it, to find the client whose keys verify
/// it (RFC 7523 §3: `iss` and `sub` are the client id). `None` for anything not a JWS with a
/// string `iss`.
pub fn unverified_issuer(assertion: &str) -> Option<String> {
    if assertion.len() > MAX_ASSERTION_LEN {
        return None;
    }
    let payload = assertion.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    claims.get("iss")?.as_str().map(str::to_owned)
}

/// Checks `assertion` as the client authentication of `client_id` with `keys` (RFC 7523 §3, OIDC
/// Core §9): a JWS signed by one of the keys with that key's algorithm (`none`, HMAC and any
/// other are refused), `iss` and `sub` the client id, `aud` naming one of `audiences` (the
/// issuer, the token endpoint URL), `exp` in the future but at most
/// [`MAX_ASSERTION_LIFETIME_SECS`] ahead, `nbf`/`iat` not in the future, a `jti`. `now` is seconds
/// since the epoch. Errors are `invalid_client` naming what failed (the client learns nothing
/// about other clients). The `jti` is not recorded here.
pub fn check_assertion(
    assertion: &str,
    client_id: &str,
    keys: &ClientKeys,
    audiences: &[&str],
    now: i64,
) -> Result<AcceptedAssertion, OAuthError> {
    let refuse = |why: &str| {
        tracing::warn!(client_id, reason = why, "client assertion refused");
        OAuthError::invalid_client_because(format!("The client assertion is not valid: {why}."))
    };
    if assertion.len() > MAX_ASSERTION_LEN {
        return Err(refuse("it is too large"));
    }
    let header = jsonwebtoken::decode_header(assertion).map_err(|_| refuse("no JWS header"))?;
    // Members that would bring their own key or processing rules are refused, not ignored
    // (RFC 7515 §4.1.11: a `crit` the recipient does not implement fails the JWS).
    let raw_header: Value = assertion
        .split('.')
        .next()
        .and_then(|part| URL_SAFE_NO_PAD.decode(part).ok())
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(|| refuse("no JWS header"))?;
    if ["crit", "jku", "jwk", "x5u", "x5c"]
        .iter()
        .any(|member| raw_header.get(member).is_some())
    {
        return Err(refuse("its header brings keys or critical extensions"));
    }
    let key = keys
        .select(header.alg, header.kid.as_deref())
        .map_err(refuse)?;
    let mut validation = Validation::new(key.alg);
    validation.leeway = LEEWAY_SECS;
    validation.validate_nbf = true;
    validation.set_issuer(&[client_id]);
    validation.sub = Some(client_id.to_owned());
    validation.set_audience(audiences);
    validation.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
    let data = jsonwebtoken::decode::<AssertionClaims>(assertion, &key.decoding_key, &validation)
        .map_err(|error| {
        use jsonwebtoken::errors::ErrorKind;
        refuse(match error.kind() {
            ErrorKind::InvalidSignature => "its signature does not verify",
            ErrorKind::ExpiredSignature => "it has expired",
            ErrorKind::ImmatureSignature => "it is not valid yet (nbf)",
            ErrorKind::InvalidAudience => "its aud is neither the issuer nor the token endpoint",
            ErrorKind::InvalidIssuer => "its iss is not the client id",
            ErrorKind::InvalidSubject => "its sub is not the client id",
            ErrorKind::MissingRequiredClaim(_) => "it lacks exp, iss, sub or aud",
            ErrorKind::InvalidAlgorithm => "the assertion's alg is not its key's",
            _ => "it is not a well-formed signed JWT",
        })
    })?;
    let claims = data.claims;
    if claims.exp - now > MAX_ASSERTION_LIFETIME_SECS + LEEWAY_SECS as i64 {
        return Err(refuse("its exp is more than an hour ahead"));
    }
    let jti = claims
        .jti
        .filter(|jti| !jti.is_empty() && jti.len() <= 256)
        .ok_or_else(|| refuse("it has no jti (1 to 256 characters)"))?;
    // `iat` in the future (beyond the leeway) marks a clock that cannot be trusted.
    if claims.iat.is_some_and(|iat| iat > now + LEEWAY_SECS as i64) {
        return Err(refuse("its iat is in the future"));
    }
    Ok(AcceptedAssertion {
        jti,
        expires_at: claims.exp,
    })
}
