//! Shared application state, built once at start and injected into handlers.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header::HeaderValue;
use actix_web::web::Bytes;

use crate::accounts::mail_links::MailLinks;
use crate::accounts::sessions::Authenticator;
use crate::accounts::{AccountSettings, PasswordHasher};
use crate::clock::Clock;
use crate::db::Db;
use crate::keys::lifecycle::{self, KeyContext};
use crate::keys::{KeyRing, KeySet, Signer, SigningAlg};
use crate::metrics::Metrics;
use crate::oidc::apis::ApiRegistry;
use crate::oidc::clients::ClientRegistry;
use crate::oidc::tokens::TokenService;
use crate::oidc::{Issuer, TokenSettings};

/// The HTTP edge's settings (`PORTCULLIS_CORS_ORIGINS`, `PORTCULLIS_TRUSTED_PROXIES`,
/// `PORTCULLIS_REQUEST_TIMEOUT`). Declared here, beside the state that carries it, so that
/// `http` imports `state` and never the other way round.
#[derive(Clone, Debug)]
pub struct HttpSettings {
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpAddr>,
    /// Exact origins allowed to call the JSON API from a browser.
    pub cors_origins: Vec<String>,
    /// Deadline for a request's headers, and again for its body.
    pub request_timeout: Duration,
}

/// Everything a handler may need. Cloned cheaply into each worker.
#[derive(Clone)]
pub struct AppState {
    /// Database pool handle.
    pub db: Db,
    /// The current signing keys and JWKS.
    pub keys: Arc<KeyRing>,
    /// Signs tokens with the active keys.
    pub signer: Signer,
    /// The issuer identifier.
    pub issuer: Issuer,
    /// Pre-serialised discovery document.
    pub discovery: Bytes,
    /// `Cache-Control` value of the JWKS and discovery responses.
    pub public_cache_control: HeaderValue,
    /// Token lifetimes, algorithm, audience and refresh families.
    pub token_settings: TokenSettings,
    /// Throttling, registration and hashing.
    pub account_settings: AccountSettings,
    /// Trusted proxies, CORS and request deadlines.
    pub http_settings: HttpSettings,
    /// Password hashing with bounded concurrency.
    pub hasher: PasswordHasher,
    /// Password checks with login throttling (JSON API, hosted login page).
    pub authenticator: Authenticator,
    /// Second factors: TOTP, recovery codes, the JSON API's challenge step.
    pub factors: crate::accounts::factors::Factors,
    /// Passkeys (WebAuthn): registration, passwordless and second-factor sign-in.
    pub passkeys: crate::accounts::passkeys::Passkeys,
    /// Issues every token and reads back our own (one token model, one verification policy).
    pub tokens: Arc<TokenService>,
    /// KEK, schedule and key size for key changes.
    pub key_context: KeyContext,
    /// OAuth clients, in memory.
    pub clients: Arc<ClientRegistry>,
    /// APIs (resource servers) and their scopes, in memory.
    pub apis: Arc<ApiRegistry>,
    /// Set when shutdown began: readiness answers 503 while in-flight work finishes.
    pub draining: Arc<std::sync::atomic::AtomicBool>,
    /// This application's metrics registry (`GET /metrics`).
    pub metrics: Arc<Metrics>,
    /// The time source of expiries, the key schedule and the janitor (tests move it forward).
    pub clock: Clock,
    /// Links sent by mail: address verification and password reset.
    pub mail_links: MailLinks,
    /// The keys of clients registered with a `jwks_uri`, fetched SSRF-safely and cached.
    pub remote_keys: Arc<crate::oidc::client_auth::RemoteKeys>,
    /// Request objects (OIDC Core §6): references fetched SSRF-safely, signatures checked with
    /// the client's keys.
    pub request_objects: Arc<crate::oidc::authorize::RequestObjects>,
    /// Clients of client ID metadata documents (`PORTCULLIS_CLIENT_ID_METADATA_DOCUMENTS`);
    /// `None` when off.
    pub client_documents: Option<Arc<crate::oidc::client_metadata::MetadataDocuments>>,
    /// Dynamic client registration (RFC 7591, RFC 7592).
    pub registration: Arc<crate::oidc::registration::RegistrationSettings>,
    /// Fetches dynamic clients' logos (RFC 7591 §2 `logo_uri`) SSRF-safely at registration.
    pub client_logos: Arc<crate::oidc::client_logo::LogoFetcher>,
    /// The SSRF-safe fetcher of documents clients name (sector identifier documents).
    pub outbound: Arc<crate::verify::fetch::SafeFetcher>,
}

impl AppState {
    /// What client registration fetches (logos, sector identifier documents).
    pub fn registration_fetches(&self) -> crate::oidc::registration::Fetches<'_> {
        crate::oidc::registration::Fetches {
            logos: &self.client_logos,
            documents: &self.outbound,
        }
    }

    /// Our own verifiers' keys become `set`'s JWKS (installed with the set, before it signs).
    fn install_jwks(&self, set: &KeySet) {
        if let Err(error) = self.tokens.install_jwks(set.jwks_body()) {
            tracing::error!(%error, "the verifier refused our own JWKS");
        }
    }

    /// Re-reads the published keys and installs them, unless that would leave an algorithm
    /// without a signer; failures keep the current set (and are logged). Signing, the published
    /// JWKS and our own verification switch together.
    ///
    /// Called after a change by this process (admin API) and by the refresh tick, possibly at
    /// the same time: a set is installed only if no other set was installed while it was read
    /// (that one may have been read after a change this one predates); else the keys are read
    /// again.
    pub async fn reload_keys(&self) {
        for attempt in 1..=KEY_RELOAD_ATTEMPTS {
            let observed = self.keys.observe();
            match lifecycle::load_with(&self.db, &self.key_context.kek).await {
                Ok(set) if SigningAlg::ALL.iter().all(|alg| set.active(*alg).is_some()) => {
                    let count = set.published().len();
                    let installed = if attempt == KEY_RELOAD_ATTEMPTS {
                        // Read after the change: at worst older than a change made meanwhile,
                        // which the next refresh tick installs (its fingerprint differs).
                        self.keys.replace(set, |set| self.install_jwks(set));
                        true
                    } else {
                        self.keys
                            .install_over(&observed, set, |set| self.install_jwks(set))
                    };
                    if installed {
                        tracing::info!(published = count, "signing keys changed; reloaded");
                        return;
                    }
                }
                Ok(_) => {
                    tracing::warn!(
                        "key change left an algorithm without an active key; keeping the current set"
                    );
                    return;
                }
                Err(error) => {
                    tracing::error!(%error, "reloading signing keys failed; keeping the current set");
                    return;
                }
            }
        }
    }
}

/// How often [`AppState::reload_keys`] reads the keys when other reloads keep overtaking it.
const KEY_RELOAD_ATTEMPTS: usize = 3;
