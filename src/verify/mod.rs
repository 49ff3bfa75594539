//! Offline verification of RFC 9068 access tokens for resource servers: a self-refreshing JWKS
//! cache and strict JWS/JWT rules (RFC 8725). Usable without the server:
//! `portcullis = { default-features = false, features = ["verify", "actix"] }`.
//!
//! The key is chosen by `kid` from the issuer's own JWKS only; the algorithm comes from that key,
//! never from the token header; `none`, HS*, and header-supplied keys (`jwk`, `jku`, `x5u`, `x5c`)
//! are never honoured; `typ` must be `at+jwt`; `iss`, `aud`, `exp` and `nbf` are enforced with a
//! leeway of at most 60 s.
//!
//! The issuer checks its own tokens by these same rules (one policy), with server-side options
//! a resource server never needs: any audience (introspection, userinfo), ID tokens and no
//! expiry (`id_token_hint`), and its own clock ([`Verifier::verify_at`]).

#[cfg(feature = "actix")]
pub mod actix;
pub mod claims;
pub mod fetch;
pub mod jwks;
pub mod resource;
pub mod scope;
pub mod strict_json;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use serde::de::{DeserializeOwned, IgnoredAny};
use serde_json::Value;

pub use claims::{AccessClaims, Actor};
pub use jwks::{FetchError, JwksCache};
pub use resource::{ProtectedResourceMetadata, metadata_url};
pub use scope::{InvalidScope, Scope};

/// The three segments (header, payload, signature; still base64url) of a compact JWS (RFC 7515
/// §7.1), or `None` when `token` has more or fewer than two dots. Nothing is decoded.
pub fn compact_segments(token: &str) -> Option<[&str; 3]> {
    let mut segments = token.split('.');
    match (
        segments.next(),
        segments.next(),
        segments.next(),
        segments.next(),
    ) {
        (Some(header), Some(payload), Some(signature), None) => Some([header, payload, signature]),
        _ => None,
    }
}

/// The largest leeway accepted for `exp`/`nbf` (RFC 9068 §4: "a few minutes" at most; we keep
/// it to one).
pub const MAX_LEEWAY: Duration = Duration::from_secs(60);

/// Verifier settings. Build with [`VerifierConfig::for_issuer`] and adjust fields.
#[derive(Clone, Debug)]
pub struct VerifierConfig {
    /// The issuer whose tokens are accepted; compared byte-for-byte with `iss`.
    pub issuer: String,
    /// The JWKS URL; `None` discovers `jwks_uri` from the issuer's metadata.
    pub jwks_url: Option<String>,
    /// Accepted audiences: a token must name at least one.
    pub audiences: Vec<String>,
    /// Accepted algorithms (ES256 and RS256 only).
    pub algorithms: Vec<Algorithm>,
    /// Clock leeway for `exp`/`nbf` (≤ 60 s; default 60 s, so clocks up to a minute apart agree).
    pub leeway: Duration,
    /// Cache lifetime when the JWKS response has no `max-age`.
    pub default_cache_ttl: Duration,
    /// Lower bound on the cache lifetime.
    pub min_cache_ttl: Duration,
    /// Upper bound on the cache lifetime.
    pub max_cache_ttl: Duration,
    /// How long the last good key set keeps serving while the JWKS endpoint fails.
    pub max_stale: Duration,
    /// At most one refetch per this interval for tokens with an unknown `kid` (counted from the
    /// last refetch an unknown `kid` caused, so a rotation right after a fetch is still seen).
    pub unknown_kid_cooldown: Duration,
    /// Longest wait between retries after failed fetches.
    pub max_backoff: Duration,
    /// HTTP timeout of a JWKS or discovery request.
    pub http_timeout: Duration,
    /// Largest JWKS/discovery document accepted.
    pub max_document_bytes: usize,
    /// Longest token accepted (anything longer is refused before parsing).
    pub max_token_bytes: usize,
    /// The kind of token accepted: access tokens (the default; a resource server never changes
    /// it) or, for the issuer's own check of an `id_token_hint`, ID tokens.
    pub token_kind: TokenKind,
    /// Accept a token of any audience. Only for the issuer's own endpoints (introspection,
    /// userinfo, revocation), which serve tokens of every audience; a resource server never
    /// sets it.
    pub any_audience: bool,
    /// Refuse expired tokens (the default). Only the issuer's check of an `id_token_hint`,
    /// which may be old, turns it off.
    pub check_expiry: bool,
}

/// The kind of JWT a verifier accepts, by its `typ` header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenKind {
    /// RFC 9068 access tokens: `typ` is `at+jwt` (or `application/at+jwt`).
    Access,
    /// OpenID Connect ID tokens as this server signs them: `typ` is `JWT`.
    Id,
}

impl VerifierConfig {
    /// Defaults for tokens of `issuer` (trailing slash removed), audience = the issuer.
    pub fn for_issuer(issuer: &str) -> Self {
        let issuer = issuer.trim_end_matches('/').to_owned();
        Self {
            audiences: vec![issuer.clone()],
            issuer,
            jwks_url: None,
            algorithms: vec![Algorithm::ES256, Algorithm::RS256],
            leeway: MAX_LEEWAY,
            default_cache_ttl: Duration::from_secs(300),
            min_cache_ttl: Duration::from_secs(30),
            max_cache_ttl: Duration::from_secs(86_400),
            max_stale: Duration::from_secs(3_600),
            unknown_kid_cooldown: Duration::from_secs(30),
            max_backoff: Duration::from_secs(300),
            http_timeout: Duration::from_secs(5),
            max_document_bytes: 256 * 1024,
            max_token_bytes: 8 * 1024,
            token_kind: TokenKind::Access,
            any_audience: false,
            check_expiry: true,
        }
    }
}

/// Why a verifier could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A setting is out of range.
    #[error("verifier configuration: {0}")]
    Invalid(String),
    /// The HTTP client could not be built.
    #[error("verifier HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

/// Why a token was refused. Every variant except `KeysUnavailable` means "invalid token"; the
/// distinctions are for logs, not for the caller's response body.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VerifyError {
    /// Not three base64url segments, oversized, or not JSON objects.
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    /// A header member the verifier never honours (`jku`, `jwk`, `x5u`, `x5c`, `crit`, …).
    #[error("forbidden header member `{0}`")]
    ForbiddenHeader(String),
    /// `typ` is not `at+jwt` (for an ID-token verifier: not `JWT`).
    #[error("not the expected kind of token (typ)")]
    WrongType,
    /// No key with this `kid` in the issuer's JWKS.
    #[error("unknown key id")]
    UnknownKey,
    /// The header's `alg` is not the key's algorithm.
    #[error("algorithm does not match the key")]
    AlgorithmMismatch,
    /// Signature, `iss`, `aud`, `exp` or `nbf` failed.
    #[error("token rejected: {0}")]
    Rejected(String),
    /// A claim has the wrong JSON type or value.
    #[error("invalid claim `{0}`")]
    InvalidClaim(&'static str),
    /// No usable key set (the JWKS endpoint is down beyond the stale allowance).
    #[error("signing keys unavailable")]
    KeysUnavailable,
}

/// A verified access token.
#[derive(Debug, Clone)]
pub struct Verified<C> {
    /// The claims, as the caller's type (deserialized once).
    pub claims: C,
    /// `sub`: with `iss`, the identity to authorise on (never an email or username).
    pub subject: String,
    /// `scope`, space-separated (empty when absent).
    pub scope: String,
    /// `roles` (empty when absent).
    pub roles: Vec<String>,
}

impl<C> Verified<C> {
    /// The scopes of `scope`.
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        scope::tokens(&self.scope)
    }
}

/// Verifies access tokens of one issuer. Cheap to clone (shares one cache).
#[derive(Clone)]
pub struct Verifier {
    cache: Arc<JwksCache>,
    max_token_bytes: usize,
    leeway: u64,
    token_kind: TokenKind,
    check_expiry: bool,
}

impl Verifier {
    /// Builds a verifier; nothing is fetched until the first token.
    pub fn new(config: VerifierConfig) -> Result<Self, ConfigError> {
        Self::build(config, JwksCache::new)
    }

    fn build(
        config: VerifierConfig,
        cache: fn(VerifierConfig) -> Result<JwksCache, reqwest::Error>,
    ) -> Result<Self, ConfigError> {
        if config.leeway > MAX_LEEWAY {
            return Err(ConfigError::Invalid("leeway must be at most 60 s".into()));
        }
        if config.audiences.is_empty() && !config.any_audience {
            return Err(ConfigError::Invalid(
                "at least one audience is required".into(),
            ));
        }
        if config.algorithms.is_empty()
            || config
                .algorithms
                .iter()
                .any(|a| !matches!(a, Algorithm::ES256 | Algorithm::RS256))
        {
            return Err(ConfigError::Invalid(
                "algorithms must be ES256 and/or RS256".into(),
            ));
        }
        if !(config.issuer.starts_with("https://") || config.issuer.starts_with("http://")) {
            return Err(ConfigError::Invalid("issuer must be an http(s) URL".into()));
        }
        // jsonwebtoken needs exactly one process-wide crypto provider; installing twice is fine.
        let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
        Ok(Self {
            max_token_bytes: config.max_token_bytes,
            leeway: config.leeway.as_secs(),
            token_kind: config.token_kind,
            check_expiry: config.check_expiry,
            cache: Arc::new(cache(config)?),
        })
    }

    /// A verifier for tokens this process signs itself: its keys are installed from the
    /// in-memory JWKS with [`Verifier::install_jwks`], never fetched over HTTP, and checked by
    /// exactly the rules a resource server applies.
    pub fn local(config: VerifierConfig) -> Result<Self, ConfigError> {
        Self::build(config, JwksCache::local)
    }

    /// Replaces the keys of a [`Verifier::local`] verifier with those of a JWKS document.
    pub fn install_jwks(&self, body: &[u8]) -> Result<usize, String> {
        self.cache.install_jwks(body)
    }

    /// The JWKS cache (fetch counts, snapshot).
    pub fn cache(&self) -> &Arc<JwksCache> {
        &self.cache
    }

    /// Verifies `token` and returns its claims as `C` beside the subject, scopes and roles.
    pub async fn verify<C: DeserializeOwned>(
        &self,
        token: &str,
    ) -> Result<Verified<C>, VerifyError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        self.verify_at(token, now).await
    }

    /// [`Verifier::verify`] at the instant `now` (seconds since the epoch): for a server that
    /// reads time from its own clock.
    pub async fn verify_at<C: DeserializeOwned>(
        &self,
        token: &str,
        now: u64,
    ) -> Result<Verified<C>, VerifyError> {
        let parts = self.parse_header(token)?;
        let key = match self.cache.key(&parts.kid).await {
            Ok(Some(key)) => key,
            Ok(None) => return Err(VerifyError::UnknownKey),
            Err(error) => {
                tracing::warn!(%error, "no usable JWKS");
                return Err(VerifyError::KeysUnavailable);
            }
        };
        // RFC 8725 §3.1: the algorithm is the key's, never the header's choice.
        if parts.alg != key.alg_name {
            return Err(VerifyError::AlgorithmMismatch);
        }
        // Signature, iss and aud; the claims are read below, once, and the times checked there
        // against `now`.
        jsonwebtoken::decode::<IgnoredAny>(token, &key.decoding_key, &key.validation)
            .map_err(|e| VerifyError::Rejected(format!("{:?}", e.kind())))?;
        let payload = URL_SAFE_NO_PAD
            .decode(parts.payload)
            .map_err(|_| VerifyError::Malformed("payload is not base64url"))?;
        let [exp, nbf, iat, sub, scope, roles] = strict_json::scan(&payload, &CLAIMS_READ)
            .map_err(|_| {
                VerifyError::Malformed("claims are not a JSON object with unique members")
            })?;
        self.check_times(exp.as_ref(), nbf.as_ref(), iat.as_ref(), now)?;
        let subject = match sub {
            Some(Value::String(subject)) => subject,
            _ => return Err(VerifyError::InvalidClaim("sub")),
        };
        let scope = match scope {
            None => String::new(),
            Some(Value::String(scope)) => scope,
            Some(_) => return Err(VerifyError::InvalidClaim("scope")),
        };
        let roles = match roles {
            None => Vec::new(),
            Some(Value::Array(roles)) => roles
                .into_iter()
                .map(|r| match r {
                    Value::String(role) => Some(role),
                    _ => None,
                })
                .collect::<Option<Vec<_>>>()
                .ok_or(VerifyError::InvalidClaim("roles"))?,
            Some(_) => return Err(VerifyError::InvalidClaim("roles")),
        };
        let claims: C =
            serde_json::from_slice(&payload).map_err(|_| VerifyError::InvalidClaim("claims"))?;
        Ok(Verified {
            claims,
            subject,
            scope,
            roles,
        })
    }

    fn parse_header<'t>(&self, token: &'t str) -> Result<Parts<'t>, VerifyError> {
        if token.len() > self.max_token_bytes {
            return Err(VerifyError::Malformed("token too long"));
        }
        let Some([header, payload, signature]) = compact_segments(token) else {
            return Err(VerifyError::Malformed("not three segments"));
        };
        if header.is_empty() || payload.is_empty() || signature.is_empty() {
            return Err(VerifyError::Malformed("empty segment"));
        }
        // Strict base64url: no padding, no `+`/`/`, no whitespace, canonical trailing bits.
        let header_bytes = URL_SAFE_NO_PAD
            .decode(header)
            .map_err(|_| VerifyError::Malformed("header is not base64url"))?;
        let [alg, kid, typ, forbidden @ ..] = strict_json::scan(&header_bytes, &HEADER_READ)
            .map_err(|_| {
                VerifyError::Malformed("header is not a JSON object with unique members")
            })?;
        if let Some(i) = forbidden.iter().position(Option::is_some) {
            return Err(VerifyError::ForbiddenHeader(HEADER_READ[3 + i].to_owned()));
        }
        let typ = typ
            .as_ref()
            .and_then(Value::as_str)
            .ok_or(VerifyError::WrongType)?;
        let expected = match self.token_kind {
            // RFC 9068 §4: `at+jwt`, or the full media type; media types compare
            // case-insensitively.
            TokenKind::Access => {
                typ.eq_ignore_ascii_case("at+jwt") || typ.eq_ignore_ascii_case("application/at+jwt")
            }
            TokenKind::Id => typ.eq_ignore_ascii_case("JWT"),
        };
        if !expected {
            return Err(VerifyError::WrongType);
        }
        let kid = match kid {
            Some(Value::String(kid)) if !kid.is_empty() && kid.len() <= 256 => kid,
            _ => return Err(VerifyError::Malformed("kid missing or not a short string")),
        };
        let alg = match alg {
            Some(Value::String(alg)) => alg,
            _ => return Err(VerifyError::Malformed("alg missing")),
        };
        Ok(Parts { kid, alg, payload })
    }

    /// RFC 7519 §2 NumericDate: integers only; strings, floats, negatives and null are refused
    /// (CVE-2026-25537 was a type confusion here). With the leeway: `exp` is not past (RFC 7519
    /// §4.1.4), `nbf` not ahead (§4.1.5), and `iat` may not lie in the future.
    fn check_times(
        &self,
        exp: Option<&Value>,
        nbf: Option<&Value>,
        iat: Option<&Value>,
        now: u64,
    ) -> Result<(), VerifyError> {
        let numeric = |name: &'static str, value: Option<&Value>| match value {
            None => Ok(None),
            Some(value) => value
                .as_u64()
                .map(Some)
                .ok_or(VerifyError::InvalidClaim(name)),
        };
        let exp = numeric("exp", exp)?.ok_or(VerifyError::InvalidClaim("exp"))?;
        if self.check_expiry && exp < now.saturating_sub(self.leeway) {
            return Err(VerifyError::Rejected("ExpiredSignature".into()));
        }
        if numeric("nbf", nbf)?.is_some_and(|nbf| nbf > now.saturating_add(self.leeway)) {
            return Err(VerifyError::Rejected("ImmatureSignature".into()));
        }
        if numeric("iat", iat)?.is_some_and(|iat| iat > now.saturating_add(self.leeway)) {
            return Err(VerifyError::InvalidClaim("iat"));
        }
        Ok(())
    }
}

/// Claims the verifier itself reads.
const CLAIMS_READ: [&str; 6] = ["exp", "nbf", "iat", "sub", "scope", "roles"];

/// Header members read: `alg`, `kid`, `typ`, then those that would let a token choose its own
/// key or change how it is processed, refused when present.
const HEADER_READ: [&str; 12] = [
    "alg", "kid", "typ", "jku", "jwk", "x5u", "x5c", "crit", "b64", "zip", "enc", "cty",
];

struct Parts<'t> {
    kid: String,
    alg: String,
    payload: &'t str,
}
