//! Prometheus metrics (`GET /metrics`, text format): one registry per application, created at
//! start and handed to what records (the HTTP middleware, the pool, token issuing, logins, the
//! janitor), so every server — and every test server in one process — counts only its own
//! events. The hot paths only bump atomics; gauges of keys and the pool are read at scrape time.
//! This module imports nothing of the crate: callers pass plain labels (`alg.as_str()`).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of an HTTP request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The route pattern (`/admin/keys/{kid}/revoke`), or `unmatched`.
    pub route: &'static str,
    /// The method.
    pub method: &'static str,
    /// The status code.
    pub status: u16,
}

/// Labels of issued tokens.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TokenLabels {
    /// `password` (JSON API login), `refresh` (JSON API), `authorization_code`,
    /// `refresh_token`, `client_credentials`.
    pub grant: &'static str,
    /// `ES256` or `RS256`.
    pub alg: &'static str,
}

/// A labelled event kind.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    /// The kind.
    pub kind: &'static str,
}

/// Labels of key gauges.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KeyLabels {
    /// Algorithm.
    pub alg: &'static str,
    /// State.
    pub state: &'static str,
}

/// Every metric.
pub struct Metrics {
    registry: Registry,
    /// HTTP latency by route, method and status (its `_count` counts the requests).
    pub latency: Family<RequestLabels, Histogram>,
    /// Tokens issued by grant and algorithm.
    pub tokens: Family<TokenLabels, Counter>,
    /// Refresh-token reuse detections (families revoked).
    pub refresh_reuse: Counter,
    /// Failed logins (`invalid_credentials`) and throttled attempts (`throttled`).
    pub logins: Family<KindLabels, Counter>,
    /// Time to get a database connection from the pool.
    pub pool_wait: Histogram,
    /// Rows the janitor deleted, by kind.
    pub janitor_deleted: Family<KindLabels, Counter>,
    /// Published keys by algorithm and state (set at scrape).
    pub keys: Family<KeyLabels, Gauge>,
    /// Seconds until the next scheduled key transition (set at scrape; -1: none scheduled).
    pub next_key_transition: Gauge,
    /// Pool connections open (set at scrape).
    pub pool_connections: Gauge,
    /// Pool connections idle (set at scrape).
    pub pool_idle: Gauge,
}

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 2.0, 16))
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every metric at zero.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("portcullis");
        let latency = Family::<RequestLabels, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency (its _count counts requests)",
            latency.clone(),
        );
        let tokens = Family::<TokenLabels, Counter>::default();
        registry.register("tokens_issued", "Access tokens issued", tokens.clone());
        let refresh_reuse = Counter::default();
        registry.register(
            "refresh_token_reuse",
            "Refresh-token reuse detections (families revoked)",
            refresh_reuse.clone(),
        );
        let logins = Family::<KindLabels, Counter>::default();
        registry.register(
            "login_refusals",
            "Refused logins: invalid_credentials or throttled",
            logins.clone(),
        );
        let pool_wait = latency_histogram();
        registry.register(
            "db_pool_wait_seconds",
            "Time to check a connection out of the pool",
            pool_wait.clone(),
        );
        let janitor_deleted = Family::<KindLabels, Counter>::default();
        registry.register(
            "janitor_deleted_rows",
            "Rows the janitor deleted",
            janitor_deleted.clone(),
        );
        let keys = Family::<KeyLabels, Gauge>::default();
        registry.register("signing_keys", "Published signing keys", keys.clone());
        let next_key_transition = Gauge::default();
        registry.register(
            "next_key_transition_seconds",
            "Seconds until the next scheduled key transition (-1: none)",
            next_key_transition.clone(),
        );
        let pool_connections = Gauge::default();
        registry.register(
            "db_pool_connections",
            "Open pool connections",
            pool_connections.clone(),
        );
        let pool_idle = Gauge::default();
        registry.register(
            "db_pool_idle_connections",
            "Idle pool connections",
            pool_idle.clone(),
        );
        Self {
            registry,
            latency,
            tokens,
            refresh_reuse,
            logins,
            pool_wait,
            janitor_deleted,
            keys,
            next_key_transition,
            pool_connections,
            pool_idle,
        }
    }

    /// Counts an issued access token of `grant`, signed with `alg` (`ES256`, `RS256`).
    pub fn token_issued(&self, grant: &'static str, alg: &'static str) {
        self.tokens.get_or_create(&TokenLabels { grant, alg }).inc();
    }

    /// Counts a refused login of `kind` (`invalid_credentials`, `throttled`).
    pub fn login_refused(&self, kind: &'static str) {
        self.logins.get_or_create(&KindLabels { kind }).inc();
    }

    /// Counts `rows` rows of `kind` deleted by the janitor.
    pub fn janitor_deleted_rows(&self, kind: &'static str, rows: u64) {
        self.janitor_deleted
            .get_or_create(&KindLabels { kind })
            .inc_by(rows);
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let mut text = String::new();
        if let Err(error) = prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            tracing::error!(%error, "metrics did not encode");
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registries_are_independent_and_keep_their_names() {
        let (one, other) = (Metrics::new(), Metrics::new());
        one.token_issued("password", "ES256");
        one.login_refused("throttled");
        one.janitor_deleted_rows("refresh_families", 3);
        let text = one.render();
        for line in [
            "portcullis_tokens_issued_total{grant=\"password\",alg=\"ES256\"} 1",
            "portcullis_login_refusals_total{kind=\"throttled\"} 1",
            "portcullis_janitor_deleted_rows_total{kind=\"refresh_families\"} 3",
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
        assert!(!other.render().contains("grant=\"password\""));
    }
}
