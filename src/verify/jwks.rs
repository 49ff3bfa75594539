//! The JWKS cache of a resource server: fetched once, kept for its `Cache-Control` max-age
//! (bounded), revalidated with `If-None-Match`, refreshed in the background before expiry,
//! refetched at most once per cooldown for an unknown `kid` (single-flight), and served stale for
//! a bounded time with back-off while the issuer is unreachable.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED, ParsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

use super::VerifierConfig;
use super::fetch::{max_age, read_limited};

/// One usable verification key: the algorithm is the key's own (from the JWK), fixed here.
pub struct VerificationKey {
    /// Key id.
    pub kid: String,
    /// The one algorithm this key verifies.
    pub alg: Algorithm,
    /// The JWA name of `alg`, compared byte-for-byte with the token header.
    pub alg_name: &'static str,
    /// Parsed public key.
    pub decoding_key: DecodingKey,
    /// Validation pinned to `alg`, built once per key.
    pub validation: Validation,
}

/// A snapshot of the cached keys.
pub struct KeyIndex {
    keys: HashMap<String, Arc<VerificationKey>>,
    /// Refresh in the background from this instant on.
    refresh_at: Instant,
    /// Serve these keys until this instant (max-age plus the stale allowance).
    usable_until: Instant,
    /// ETag of the document, for revalidation.
    etag: Option<String>,
}

impl KeyIndex {
    fn empty() -> Self {
        let now = Instant::now();
        Self {
            keys: HashMap::new(),
            refresh_at: now,
            usable_until: now,
            etag: None,
        }
    }

    /// The key with `kid`, if the index is still usable.
    pub fn get(&self, kid: &str, now: Instant) -> Option<&Arc<VerificationKey>> {
        if now <= self.usable_until {
            self.keys.get(kid)
        } else {
            None
        }
    }

    /// Number of keys held.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when no key is held.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// Why fetching keys failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// Network or HTTP-level failure.
    #[error("request to {url} failed: {reason}")]
    Http {
        /// The URL (no credentials are ever part of it).
        url: String,
        /// What happened.
        reason: String,
    },
    /// The URL or the address it resolves to is not one an outbound fetch may reach, or the
    /// answer was a redirect (never followed): no request was sent, or its answer was dropped.
    #[error("refused to fetch {url}: {reason}")]
    Refused {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The document is not a JWKS or discovery document we accept.
    #[error("invalid document from {url}: {reason}")]
    Document {
        /// The URL.
        url: String,
        /// What is wrong.
        reason: String,
    },
}

/// The outcome of a fetch that produced no new key set.
enum Fetched {
    /// 304: the cached keys stand, for this long.
    NotModified(Duration),
    /// The fetch failed.
    Failed(FetchError),
}

impl From<FetchError> for Fetched {
    fn from(error: FetchError) -> Self {
        Self::Failed(error)
    }
}

struct FetchState {
    jwks_uri: Option<String>,
    last_attempt: Option<Instant>,
    last_unknown_kid_attempt: Option<Instant>,
    failures: u32,
}

/// The cache. Cheap to share behind an `Arc`.
pub struct JwksCache {
    config: VerifierConfig,
    client: reqwest::Client,
    index: ArcSwap<KeyIndex>,
    fetch: tokio::sync::Mutex<FetchState>,
    refreshing: AtomicBool,
    fetches: AtomicU64,
    /// Keys are installed by the owner (a server verifying its own tokens); never fetched.
    local: bool,
}

/// How a refresh was triggered; decides which rate limit applies.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Trigger {
    /// A token named a kid we do not hold (at most once per cooldown).
    UnknownKid,
    /// The cached set is due for revalidation (back-off after failures only).
    Expiry,
}

impl JwksCache {
    /// A cache for `config`; nothing is fetched until first use.
    pub fn new(config: VerifierConfig) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(config.http_timeout)
            // A redirect could point the fetch anywhere; keys come only from the configured URL.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("portcullis-verify/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            fetch: tokio::sync::Mutex::new(FetchState {
                jwks_uri: config.jwks_url.clone(),
                last_attempt: None,
                last_unknown_kid_attempt: None,
                failures: 0,
            }),
            config,
            client,
            index: ArcSwap::from_pointee(KeyIndex::empty()),
            refreshing: AtomicBool::new(false),
            fetches: AtomicU64::new(0),
            local: false,
        })
    }

    /// A cache whose keys are installed with [`JwksCache::install_jwks`] and never fetched.
    pub fn local(config: VerifierConfig) -> Result<Self, reqwest::Error> {
        let mut cache = Self::new(config)?;
        cache.local = true;
        Ok(cache)
    }

    /// Installs a JWKS document directly, with the same rules as a fetched one (invalid keys
    /// ignored). For a server that verifies tokens it signed: the keys are its own, in memory.
    pub fn install_jwks(&self, body: &[u8]) -> Result<usize, String> {
        let keys = self.parse_jwks(body)?;
        let now = Instant::now();
        let forever = now
            .checked_add(Duration::from_secs(10 * 365 * 86_400))
            .unwrap_or(now);
        let count = keys.len();
        self.index.store(Arc::new(KeyIndex {
            keys,
            refresh_at: forever,
            usable_until: forever,
            etag: None,
        }));
        Ok(count)
    }

    /// How many JWKS requests this cache has sent (for tests and metrics).
    pub fn fetch_count(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    /// The key for `kid`: from the cache, or after at most one (single-flight, rate-limited)
    /// refetch. `Ok(None)`: no such key. `Err`: no usable key set at all.
    pub async fn key(
        self: &Arc<Self>,
        kid: &str,
    ) -> Result<Option<Arc<VerificationKey>>, FetchError> {
        let now = Instant::now();
        let trigger = {
            let index = self.index.load();
            if let Some(key) = index.get(kid, now) {
                if now >= index.refresh_at {
                    self.refresh_in_background();
                }
                return Ok(Some(Arc::clone(key)));
            }
            if self.local {
                return Ok(None);
            }
            // No usable set at all (first use, or stale beyond the allowance): a plain load.
            if now > index.usable_until {
                Trigger::Expiry
            } else {
                Trigger::UnknownKid
            }
        };
        let outcome = self.refresh(trigger, Some(kid)).await;
        let index = self.index.load();
        let now = Instant::now();
        match index.get(kid, now) {
            Some(key) => Ok(Some(Arc::clone(key))),
            None if now <= index.usable_until => Ok(None),
            None => match outcome {
                Err(error) => Err(error),
                Ok(()) => Ok(None),
            },
        }
    }

    fn refresh_in_background(self: &Arc<Self>) {
        if self.refreshing.swap(true, Ordering::AcqRel) {
            return;
        }
        let cache = Arc::clone(self);
        tokio::spawn(async move {
            if let Err(error) = cache.refresh(Trigger::Expiry, None).await {
                tracing::warn!(%error, "background JWKS refresh failed; serving the cached keys");
            }
            cache.refreshing.store(false, Ordering::Release);
        });
    }

    /// Refetches the JWKS unless another caller just did or a rate limit applies.
    async fn refresh(&self, trigger: Trigger, wanted_kid: Option<&str>) -> Result<(), FetchError> {
        let mut state = self.fetch.lock().await;
        let now = Instant::now();
        // Single flight: whoever held the lock may already have fetched what we need.
        let index = self.index.load();
        match (trigger, wanted_kid) {
            (Trigger::UnknownKid, Some(kid)) if index.get(kid, now).is_some() => return Ok(()),
            (Trigger::Expiry, _) if now < index.refresh_at && now <= index.usable_until => {
                return Ok(());
            }
            _ => {}
        }
        let since = |at: Option<Instant>| at.map(|t| now.saturating_duration_since(t));
        let backing_off = state.failures > 0
            && since(state.last_attempt)
                .is_some_and(|s| s < backoff(state.failures, self.config.max_backoff));
        let limited = match trigger {
            // A flood of random kids must not turn into a flood of fetches.
            Trigger::UnknownKid => {
                backing_off
                    || since(state.last_unknown_kid_attempt)
                        .is_some_and(|s| s < self.config.unknown_kid_cooldown)
            }
            Trigger::Expiry => backing_off,
        };
        if limited {
            return if now <= index.usable_until {
                Ok(())
            } else {
                Err(FetchError::Http {
                    url: state.jwks_uri.clone().unwrap_or_default(),
                    reason: "waiting before retrying a failed fetch".into(),
                })
            };
        }
        if trigger == Trigger::UnknownKid {
            state.last_unknown_kid_attempt = Some(now);
        }
        state.last_attempt = Some(now);
        let etag = index.etag.clone();
        let result = self.fetch_index(&mut state, etag.as_deref()).await;
        match result {
            Ok(new_index) => {
                state.failures = 0;
                tracing::debug!(keys = new_index.len(), "JWKS fetched");
                self.index.store(Arc::new(new_index));
                Ok(())
            }
            Err(Fetched::NotModified(ttl)) => {
                // 304: the same keys, valid for another max-age.
                state.failures = 0;
                let current = self.index.load();
                let now = Instant::now();
                self.index.store(Arc::new(KeyIndex {
                    keys: current.keys.clone(),
                    refresh_at: now + ttl.mul_f32(0.8),
                    usable_until: now + ttl + self.config.max_stale,
                    etag: current.etag.clone(),
                }));
                Ok(())
            }
            Err(Fetched::Failed(error)) => {
                state.failures = state.failures.saturating_add(1);
                Err(error)
            }
        }
    }

    /// Fetches (discovering `jwks_uri` first if needed); `Ok(None)` on 304 Not Modified.
    async fn fetch_index(
        &self,
        state: &mut FetchState,
        etag: Option<&str>,
    ) -> Result<KeyIndex, Fetched> {
        let jwks_uri = match &state.jwks_uri {
            Some(uri) => uri.clone(),
            None => {
                let uri = self.discover().await?;
                state.jwks_uri = Some(uri.clone());
                uri
            }
        };
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let mut request = self.client.get(&jwks_uri);
        if let Some(etag) = etag {
            request = request.header(reqwest::header::IF_NONE_MATCH, etag);
        }
        let http_error = |reason: String| FetchError::Http {
            url: jwks_uri.clone(),
            reason,
        };
        let response = request
            .send()
            .await
            .map_err(|e| http_error(e.to_string()))?;
        let status = response.status();
        let cache_control = response
            .headers()
            .get(reqwest::header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        if status == reqwest::StatusCode::NOT_MODIFIED && etag.is_some() {
            return Err(Fetched::NotModified(
                self.ttl_from_headers(cache_control.as_deref()),
            ));
        }
        if !status.is_success() {
            return Err(http_error(format!("status {status}")).into());
        }
        let new_etag = response
            .headers()
            .get(reqwest::header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = read_limited(response, self.config.max_document_bytes)
            .await
            .map_err(http_error)?;
        let keys = self
            .parse_jwks(&body)
            .map_err(|reason| FetchError::Document {
                url: jwks_uri.clone(),
                reason,
            })?;
        let ttl = self.ttl_from_headers(cache_control.as_deref());
        let now = Instant::now();
        Ok(KeyIndex {
            keys,
            refresh_at: now + ttl.mul_f32(0.8),
            usable_until: now + ttl + self.config.max_stale,
            etag: new_etag,
        })
    }

    /// OpenID Connect Discovery §4: fetch the metadata and check its `issuer` is ours exactly.
    async fn discover(&self) -> Result<String, FetchError> {
        let url = format!("{}/.well-known/openid-configuration", self.config.issuer);
        let error = |reason: String| FetchError::Document {
            url: url.clone(),
            reason,
        };
        let response = self
            .client
            .get(&url)
            .send()
            .await
            .map_err(|e| FetchError::Http {
                url: url.clone(),
                reason: e.to_string(),
            })?;
        if !response.status().is_success() {
            return Err(error(format!("status {}", response.status())));
        }
        let body = read_limited(response, self.config.max_document_bytes)
            .await
            .map_err(&error)?;
        let doc: Value = serde_json::from_slice(&body).map_err(|e| error(e.to_string()))?;
        if doc["issuer"].as_str() != Some(self.config.issuer.as_str()) {
            return Err(error("its `issuer` is not the configured issuer".into()));
        }
        // An https issuer must publish its keys over https too.
        let https_only = self.config.issuer.starts_with("https://");
        doc["jwks_uri"]
            .as_str()
            .filter(|uri| {
                uri.starts_with("https://") || (!https_only && uri.starts_with("http://"))
            })
            .map(str::to_owned)
            .ok_or_else(|| error("no usable `jwks_uri`".into()))
    }

    fn ttl_from_headers(&self, cache_control: Option<&str>) -> Duration {
        max_age(cache_control)
            .unwrap_or(self.config.default_cache_ttl)
            .clamp(self.config.min_cache_ttl, self.config.max_cache_ttl)
    }

    /// Parses a JWKS, keeping only keys that are usable for signature verification with an
    /// allowed algorithm and valid material. Anything else is ignored, not fatal.
    fn parse_jwks(&self, body: &[u8]) -> Result<HashMap<String, Arc<VerificationKey>>, String> {
        let doc: Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
        let entries = doc["keys"].as_array().ok_or("no `keys` array")?;
        let mut keys: HashMap<String, Arc<VerificationKey>> = HashMap::new();
        let mut duplicated = Vec::new();
        for entry in entries {
            match self.parse_key(entry) {
                Ok(key) => {
                    if keys.contains_key(&key.kid) {
                        duplicated.push(key.kid.clone());
                    }
                    keys.insert(key.kid.clone(), Arc::new(key));
                }
                Err(reason) => tracing::debug!(%reason, "ignoring a JWKS entry"),
            }
        }
        // An ambiguous kid cannot select a key: drop every key that shares it.
        for kid in duplicated {
            keys.remove(&kid);
        }
        Ok(keys)
    }

    fn parse_key(&self, jwk: &Value) -> Result<VerificationKey, String> {
        let key = public_key(jwk)?;
        let kid = key.kid.ok_or("no kid")?;
        let alg = key.alg;
        if !self.config.algorithms.contains(&alg) {
            return Err(format!("{kid}: algorithm {alg:?} not allowed"));
        }
        let decoding_key = key.decoding_key;
        // `exp` and `nbf` are checked by the verifier against its own `now` (with the leeway),
        // after the signature; here: the signature, `iss`, `aud` and the claims' presence.
        let mut validation = Validation::new(alg);
        validation.leeway = self.config.leeway.as_secs();
        validation.validate_nbf = false;
        validation.validate_exp = false;
        validation.set_issuer(&[&self.config.issuer]);
        if self.config.any_audience {
            validation.validate_aud = false;
        } else {
            validation.set_audience(&self.config.audiences);
        }
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        Ok(VerificationKey {
            kid: kid.to_owned(),
            alg,
            alg_name: key.alg_name,
            decoding_key,
            validation,
        })
    }
}

/// A public signature key read from a JWK (RFC 7517 §4), with the one algorithm it verifies.
pub struct PublicJwk {
    /// `kid`, when the JWK has a non-empty one.
    pub kid: Option<String>,
    /// The key's algorithm: its `alg` member, else the default of its type (`RS256` for `RSA`,
    /// `ES256` for `EC`).
    pub alg: Algorithm,
    /// The JWA name of `alg`.
    pub alg_name: &'static str,
    /// Whether the JWK named its algorithm (`alg` member): then the key is for that one only
    /// (RFC 7517 §4.4); without it, `alg` is its type's default.
    pub alg_declared: bool,
    /// The parsed key.
    pub decoding_key: DecodingKey,
}

/// Reads one public signature key of a JWKS: `RSA` (`RS256` or `PS256`, a modulus of at least
/// 2048 bits, an odd exponent ≥ 3) or `EC` on P-256 (`ES256`, the point checked to be on the
/// curve, RFC 8725 §2.5). Refused, with the reason: a `use` other than `sig`, private or
/// symmetric members (`d`, `p`, `q`, `dp`, `dq`, `qi`, `k`), any other type, curve or algorithm.
pub fn public_key(jwk: &Value) -> Result<PublicJwk, String> {
    let text = |name: &str| jwk.get(name).and_then(Value::as_str);
    let kid = text("kid").filter(|k| !k.is_empty()).map(str::to_owned);
    let name = kid.as_deref().unwrap_or("a key without kid").to_owned();
    if jwk.get("use").is_some() && text("use") != Some("sig") {
        return Err(format!("{name}: not a signature key"));
    }
    if ["d", "p", "q", "dp", "dq", "qi", "k"]
        .iter()
        .any(|m| jwk.get(*m).is_some())
    {
        return Err(format!("{name}: carries private or symmetric material"));
    }
    let kty = text("kty").ok_or_else(|| format!("{name}: no kty"))?;
    let (alg, alg_name) = match (text("alg"), kty) {
        (Some("RS256") | None, "RSA") => (Algorithm::RS256, "RS256"),
        (Some("PS256"), "RSA") => (Algorithm::PS256, "PS256"),
        (Some("ES256") | None, "EC") => (Algorithm::ES256, "ES256"),
        (alg, kty) => return Err(format!("{name}: unsupported kty {kty} / alg {alg:?}")),
    };
    let decoding_key = if kty == "RSA" {
        let n = b64(text("n"), "n")?;
        let e = b64(text("e"), "e")?;
        let n_bits = bit_length(&n);
        if n_bits < 2048 {
            return Err(format!(
                "{name}: RSA modulus of {n_bits} bits is below 2048"
            ));
        }
        let e_value = e.iter().fold(0u128, |acc, b| (acc << 8) | u128::from(*b));
        if e.len() > 8 || e_value < 3 || e_value % 2 == 0 {
            return Err(format!("{name}: unacceptable RSA exponent"));
        }
        DecodingKey::from_rsa_raw_components(&n, &e)
    } else {
        if text("crv") != Some("P-256") {
            return Err(format!("{name}: EC key is not on P-256"));
        }
        let x = b64(text("x"), "x")?;
        let y = b64(text("y"), "y")?;
        if x.len() != 32 || y.len() != 32 {
            return Err(format!("{name}: P-256 coordinates must be 32 bytes"));
        }
        let mut point = Vec::with_capacity(65);
        point.push(4);
        point.extend_from_slice(&x);
        point.extend_from_slice(&y);
        // Refuses points that are not on the curve (invalid-curve attacks, RFC 8725 §2.5).
        ParsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &point)
            .map_err(|_| format!("{name}: point is not on P-256"))?;
        DecodingKey::from_ec_components(
            text("x").unwrap_or_default(),
            text("y").unwrap_or_default(),
        )
        .map_err(|e| format!("{name}: {e}"))?
    };
    Ok(PublicJwk {
        kid,
        alg,
        alg_name,
        alg_declared: jwk.get("alg").is_some(),
        decoding_key,
    })
}

fn backoff(failures: u32, max: Duration) -> Duration {
    if failures == 0 {
        return Duration::ZERO;
    }
    Duration::from_secs(1u64 << failures.min(16).saturating_sub(1)).min(max)
}

fn b64(value: Option<&str>, member: &str) -> Result<Vec<u8>, String> {
    URL_SAFE_NO_PAD
        .decode(value.ok_or_else(|| format!("no `{member}`"))?)
        .map_err(|_| format!("`{member}` is not base64url"))
}

fn bit_length(big_endian: &[u8]) -> usize {
    match big_endian.iter().position(|b| *b != 0) {
        Some(first) => (big_endian.len() - first) * 8 - big_endian[first].leading_zeros() as usize,
        None => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let cap = Duration::from_secs(60);
        assert_eq!(backoff(0, cap), Duration::ZERO);
        assert_eq!(backoff(1, cap), Duration::from_secs(1));
        assert_eq!(backoff(3, cap), Duration::from_secs(4));
        assert_eq!(backoff(30, cap), cap);
    }

    #[test]
    fn bit_length_ignores_leading_zeros() {
        assert_eq!(bit_length(&[0, 0x80, 0]), 16);
        assert_eq!(bit_length(&[0x01]), 1);
        assert_eq!(bit_length(&[]), 0);
    }
}
