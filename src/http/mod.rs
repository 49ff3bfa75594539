//! HTTP routes: thin handlers that parse, call a service, and map errors.

pub mod health;
pub mod well_known;

use actix_web::http::Method;
use actix_web::{HttpResponse, web};

use crate::error::ApiError;

/// Registers every route. Unknown paths answer JSON 404; known paths with another method, 405.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(get_resource("/.well-known/jwks.json", well_known::jwks))
        .service(get_resource(
            "/.well-known/openid-configuration",
            well_known::discovery,
        ))
        .service(get_resource(
            "/.well-known/oauth-authorization-server",
            well_known::discovery,
        ))
        .service(get_resource("/healthz", health::healthz))
        .service(get_resource("/readyz", health::readyz));
}

/// A resource answering GET and HEAD with `handler`, 405 (with `Allow`) otherwise.
fn get_resource<F, Args>(path: &str, handler: F) -> actix_web::Resource
where
    F: actix_web::Handler<Args>,
    Args: actix_web::FromRequest + 'static,
    F::Output: actix_web::Responder + 'static,
{
    web::resource(path)
        .route(web::get().to(handler.clone()))
        .route(web::route().method(Method::HEAD).to(handler))
        .default_service(web::to(method_not_allowed))
}

async fn method_not_allowed() -> HttpResponse {
    let mut response = actix_web::ResponseError::error_response(&ApiError::MethodNotAllowed);
    response.headers_mut().insert(
        actix_web::http::header::ALLOW,
        actix_web::http::header::HeaderValue::from_static("GET, HEAD"),
    );
    response
}

/// The fallback for unknown paths.
pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound)
}
