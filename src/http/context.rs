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
use actix_web::web;
use tracing::Instrument;

use crate::metrics::Metrics;
use crate::state::AppState;

/// The response header carrying the request id.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// A process-unique request id: a random per-process prefix and a counter, as 20 lowercase hex
/// digits written without a formatter (this runs on every request, the hot paths included).
struct RequestId([u8; 20]);

impl RequestId {
    fn next() -> Self {
        static PREFIX: OnceLock<u32> = OnceLock::new();
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let prefix = *PREFIX.get_or_init(|| {
            let mut bytes = [0u8; 4];
            let _ = aws_lc_rs::rand::fill(&mut bytes);
            u32::from_be_bytes(bytes)
        });
        Self::from_parts(prefix, COUNTER.fetch_add(1, Ordering::Relaxed))
    }

    /// `{prefix:08x}{counter:012x}` (the counter's low 48 bits).
    fn from_parts(prefix: u32, counter: u64) -> Self {
        let mut id = [0u8; 20];
        for (i, slot) in id[..8].iter_mut().enumerate() {
            *slot = HEX[((prefix >> (28 - 4 * i)) & 0xf) as usize];
        }
        for (i, slot) in id[8..].iter_mut().enumerate() {
            *slot = HEX[((counter >> (44 - 4 * i)) & 0xf) as usize];
        }
        Self(id)
    }

    fn as_str(&self) -> &str {
        // Only ASCII hex digits are ever written.
        std::str::from_utf8(&self.0).unwrap_or("00000000000000000000")
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// The metrics label of a resource (its full path pattern), stored as the resource's data by
/// `http::labelled` and read back by [`request_context`] once the response is made: no second
/// route match and no middleware per resource on the hot paths.
#[derive(Clone, Copy, Debug)]
pub struct RouteLabel(pub &'static str);

/// Middleware: runs the request inside a span carrying its id, method and path (so every log
/// line of the request names it), sets `X-Request-Id`, and logs the outcome at debug level
/// (server errors are logged where they happen, at warn or error).
pub async fn request_context(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let id = RequestId::next();
    // An INFO span: at the default level every line of the request names it; with logging
    // turned down to warn it costs nothing on the hot paths.
    let span = tracing::info_span!(
        "request",
        request_id = id.as_str(),
        method = %request.method(),
        path = %request.path()
    );
    let started = Instant::now();
    let method = method_label(request.method());
    let mut response = if header_bytes(request.headers()) > MAX_HEADER_BYTES {
        use actix_web::ResponseError;
        span.in_scope(|| tracing::info!("request refused: header section too large"));
        request
            .into_response(crate::http::error::ApiError::HeadersTooLarge.error_response())
            .map_into_right_body()
    } else {
        next.call(request)
            .instrument(span.clone())
            .await?
            .map_into_left_body()
    };
    // Routed requests carry their resource's label; the rest (404s) are `unmatched`.
    let route = response
        .request()
        .app_data::<RouteLabel>()
        .map_or("unmatched", |label| label.0);
    // The application's registry, found without a clone (every app of ours carries its state).
    if let Some(state) = response.request().app_data::<web::Data<AppState>>() {
        observe(
            &state.metrics,
            route,
            method,
            response.status().as_u16(),
            started,
        );
    }
    if let Ok(value) = HeaderValue::from_bytes(&id.0) {
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

/// The largest header section (names and values) a request may carry, 16 KiB as in Node.js:
/// ample for a bearer token, our cookies and a proxy's forwarding headers. actix itself allows
/// 96 headers in up to 128 KiB.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

fn header_bytes(headers: &actix_web::http::header::HeaderMap) -> usize {
    headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum()
}

fn method_label(method: &actix_web::http::Method) -> &'static str {
    match method.as_str() {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "PATCH" => "PATCH",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    }
}

fn observe(
    metrics: &Metrics,
    route: &'static str,
    method: &'static str,
    status: u16,
    started: Instant,
) {
    metrics
        .latency
        .get_or_create(&crate::metrics::RequestLabels {
            route,
            method,
            status,
        })
        .observe(started.elapsed().as_secs_f64());
}

#[cfg(test)]
mod tests {
    use super::RequestId;

    #[test]
    fn request_ids_are_prefix_and_counter_in_hex() {
        for (prefix, counter) in [(0, 0), (0xdead_beef, 1), (u32::MAX, 0xffff_ffff_ffff)] {
            let id = RequestId::from_parts(prefix, counter);
            assert_eq!(id.as_str(), format!("{prefix:08x}{counter:012x}"));
        }
    }
}
