//! JSON request bodies with our error shape: 415 unless `application/json`, 413 over the limit,
//! 400 naming what is malformed. An empty body is "no body" where a handler allows it.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::error::PayloadError;
use actix_web::http::header::CONTENT_TYPE;
use actix_web::web::Bytes;
use actix_web::{FromRequest, HttpRequest};
use serde::de::DeserializeOwned;

use crate::http::error::ApiError;

/// Largest JSON body accepted by the API endpoints.
pub const MAX_JSON_BODY: usize = 16 * 1024;

/// A JSON body that may be absent (empty). The request must say `Content-Type:
/// application/json` either way: these endpoints act on a cookie, and a cross-site form or a
/// "simple" cross-origin request cannot send that type without a CORS preflight, so SameSite
/// is not the only defence (CSRF-01).
pub struct OptionalJson<T>(pub Option<T>);

/// A required JSON body.
pub struct Json<T>(pub T);

fn is_json(request: &HttpRequest) -> bool {
    request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"))
}

fn read<T: DeserializeOwned + 'static>(
    request: &HttpRequest,
    payload: &mut Payload,
) -> Pin<Box<dyn Future<Output = Result<Option<T>, ApiError>>>> {
    let json = is_json(request);
    let declared_too_large = request
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .is_some_and(|len| len > MAX_JSON_BODY);
    let body = actix_web::web::Bytes::from_request(request, payload);
    let deadline = super::body_deadline(request);
    Box::pin(async move {
        if declared_too_large {
            return Err(ApiError::PayloadTooLarge);
        }
        let body: Bytes = tokio::time::timeout(deadline, body)
            .await
            .map_err(|_| ApiError::BodyTimeout)?
            .map_err(|error| match error.as_error::<PayloadError>() {
                Some(PayloadError::Overflow) => ApiError::PayloadTooLarge,
                _ => ApiError::InvalidRequest("The request body could not be read.".into()),
            })?;
        if body.is_empty() {
            return Ok(None);
        }
        if body.len() > MAX_JSON_BODY {
            return Err(ApiError::PayloadTooLarge);
        }
        // A cross-site HTML form cannot send application/json, so this also stops login CSRF.
        if !json {
            return Err(ApiError::UnsupportedMediaType);
        }
        serde_json::from_slice(&body).map(Some).map_err(|e| {
            ApiError::InvalidRequest(format!("The body is not valid JSON for this request: {e}"))
        })
    })
}

impl<T: DeserializeOwned + 'static> FromRequest for OptionalJson<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let json = is_json(request);
        let body = read::<T>(request, payload);
        Box::pin(async move {
            if !json {
                return Err(ApiError::UnsupportedMediaType);
            }
            body.await.map(OptionalJson)
        })
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let json = is_json(request);
        let body = read::<T>(request, payload);
        Box::pin(async move {
            match body.await? {
                Some(value) => Ok(Json(value)),
                None if !json => Err(ApiError::UnsupportedMediaType),
                None => Err(ApiError::InvalidRequest("A JSON body is required.".into())),
            }
        })
    }
}
