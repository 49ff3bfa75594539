//! Per-request context: a request id on every log line of the request (a tracing span) and in
//! the `X-Request-Id` response header; request counts and latency per route for `/metrics`.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use actix_web::Error;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use tracing::Instrument;

/// The response header carrying the request id.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// A process-unique id: a random per-process prefix and a counter (cheap on the hot paths).
fn next_request_id() -> String {
    static PREFIX: OnceLock<u32> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let prefix = *PREFIX.get_or_init(|| {
        let mut bytes = [0u8; 4];
        let _ = aws_lc_rs::rand::fill(&mut bytes);
        u32::from_be_bytes(bytes)
    });
    format!(
        "{prefix:08x}{:012x}",
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Middleware: runs the request inside a span carrying its id, method and path (so every log
/// line of the request names it), sets `X-Request-Id`, and logs the outcome at debug level
/// (server errors are logged where they happen, at warn or error).
pub async fn request_context(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let id = next_request_id();
    // At ERROR level the span is enabled whenever any logging is, so warnings carry the id.
    let span = tracing::error_span!(
        "request",
        request_id = %id,
        method = %request.method(),
        path = %request.path()
    );
    let started = Instant::now();
    let route = request
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = request.method().as_str().to_owned();
    let mut response = next.call(request).instrument(span.clone()).await?;
    let metrics = crate::metrics::metrics();
    metrics
        .latency
        .get_or_create(&crate::metrics::RouteLabels {
            route: route.clone(),
        })
        .observe(started.elapsed().as_secs_f64());
    metrics
        .requests
        .get_or_create(&crate::metrics::RequestLabels {
            route,
            method,
            status: response.status().as_u16(),
        })
        .inc();
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    span.in_scope(|| {
        tracing::debug!(
            status = response.status().as_u16(),
            elapsed_us = started.elapsed().as_micros() as u64,
            "request completed"
        );
    });
    Ok(response)
}
