//! Prometheus metrics (`GET /metrics`, text format). One process-wide registry: the hot paths
//! only bump atomics; gauges of keys and the pool are read at scrape time.

use std::sync::OnceLock;

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

impl Metrics {
    fn new() -> Self {
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

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let mut text = String::new();
        if let Err(error) = prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            tracing::error!(%error, "metrics did not encode");
        }
        text
    }
}

/// The process-wide metrics.
pub fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

/// Counts an issued access token.
pub fn token_issued(grant: &'static str, alg: crate::keys::SigningAlg) {
    metrics()
        .tokens
        .get_or_create(&TokenLabels {
            grant,
            alg: alg.as_str(),
        })
        .inc();
}
