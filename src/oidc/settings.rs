//! The token settings: lifetimes, the access-token algorithm and audience, refresh families.

use std::time::Duration;

use crate::keys::SigningAlg;

/// How tokens are issued (`PORTCULLIS_ACCESS_TOKEN_*`, `PORTCULLIS_ID_TOKEN_TTL`,
/// `PORTCULLIS_REFRESH_*`).
#[derive(Clone, Debug)]
pub struct TokenSettings {
    /// Access-token lifetime.
    pub access_token_ttl: Duration,
    /// ID-token lifetime.
    pub id_token_ttl: Duration,
    /// Access-token algorithm of the JSON API.
    pub access_token_alg: SigningAlg,
    /// Access-token audience of the JSON API; `None` means the issuer.
    pub access_token_audience: Option<String>,
    /// A refresh family ends after this long without a refresh.
    pub refresh_idle_ttl: Duration,
    /// A refresh family ends this long after login.
    pub refresh_absolute_ttl: Duration,
    /// Retry window for a lost refresh response (0: none).
    pub refresh_reuse_grace: Duration,
    /// The deployment's second-factor policy (`PORTCULLIS_SECOND_FACTOR`): under `required`, a
    /// refresh family from a password-only sign-in no longer refreshes.
    pub second_factor: crate::accounts::factors::SecondFactorPolicy,
}
