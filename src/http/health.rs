//! Liveness and readiness probes.

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::http::error::{ApiError, Fault};
use crate::state::AppState;

/// `GET /healthz`: the process is up (no dependency is checked).
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(json!({ "status": "ok" }))
}

/// `GET /readyz`: 200 only when the database answers within the pool checkout timeout and the
/// server is not shutting down.
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    if state.draining.load(std::sync::atomic::Ordering::Relaxed) {
        return Err(Fault::unavailable("shutting down").into());
    }
    // Whatever the failure, the database does not answer: not ready (503), never a 500.
    state.db.ping().await.map_err(Fault::unavailable)?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(json!({ "status": "ready" })))
}

/// `GET /metrics`: Prometheus text format. Served on the admin listener when there is one.
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let metrics = &state.metrics;
    let keys = state.keys.current();
    for alg in crate::keys::SigningAlg::ALL {
        for key_state in [
            crate::keys::KeyState::Pending,
            crate::keys::KeyState::Active,
            crate::keys::KeyState::Retired,
        ] {
            let count = keys
                .published()
                .iter()
                .filter(|k| k.alg == alg && k.state == key_state)
                .count();
            metrics
                .keys
                .get_or_create(&crate::metrics::KeyLabels {
                    alg: alg.as_str(),
                    state: key_state.as_str(),
                })
                .set(i64::try_from(count).unwrap_or(i64::MAX));
        }
    }
    let policy = state.key_context.policy;
    let next = state
        .db
        .run(move |conn| crate::keys::lifecycle::list(conn, &policy))
        .await
        .ok()
        .and_then(|keys| {
            keys.iter()
                .filter_map(|k| k.next.as_ref().map(|n| n.at))
                .min()
        });
    metrics
        .next_key_transition
        .set(next.map_or(-1, |at| (at - state.clock.now()).num_seconds().max(0)));
    let (open, idle) = state.db.pool_state();
    metrics.pool_connections.set(i64::from(open));
    metrics.pool_idle.set(i64::from(idle));
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(metrics.render())
}

/// The OpenAPI 3.1 document of the JSON and admin APIs.
const OPENAPI: &str = include_str!("openapi.json");

/// `GET /openapi.json`. Under an issuer with a path, the document names that path as its server
/// (a relative server URL, resolved against where the document is served), since its paths
/// start at the issuer's path.
pub async fn openapi(state: web::Data<AppState>) -> HttpResponse {
    let body: std::borrow::Cow<'static, str> = match state.issuer.path() {
        "" => OPENAPI.into(),
        base => with_server(base).into(),
    };
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "public, max-age=300"))
        .content_type("application/json")
        .body(body)
}

/// The document with `servers: [{"url": base}]` as its first member.
fn with_server(base: &str) -> String {
    let server = json!([{ "url": base }]);
    match OPENAPI.strip_prefix('{') {
        Some(members) => format!("{{\n  \"servers\": {server},{members}"),
        None => OPENAPI.to_owned(),
    }
}
