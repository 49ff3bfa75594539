//! HTTP routes: thin handlers that parse, call a service, and map errors.

pub mod auth_api;
pub mod health;
pub mod json;
pub mod well_known;

use actix_web::http::Method;
use actix_web::{HttpResponse, web};

use crate::error::ApiError;

/// Registers every route. Unknown paths answer JSON 404; known paths with another method, 405.
/// The JSON API answers cross-origin requests only from `cors_origins`, exactly.
pub fn configure_with_cors(cors_origins: &[String]) -> impl FnOnce(&mut web::ServiceConfig) + '_ {
    move |cfg| {
        configure(cfg);
        cfg.service(
            web::scope("/api")
                .wrap(actix_web::middleware::Condition::new(
                    !cors_origins.is_empty(),
                    api_cors(cors_origins),
                ))
                .service(post_resource("/auth/register", auth_api::register))
                .service(post_resource("/auth/login", auth_api::login))
                .service(post_resource("/auth/refresh", auth_api::refresh))
                .service(post_resource("/auth/logout", auth_api::logout))
                .service(post_resource("/auth/logout-all", auth_api::logout_all))
                .service(get_resource("/me", auth_api::me)),
        );
    }
}

fn api_cors(origins: &[String]) -> actix_cors::Cors {
    origins
        .iter()
        .fold(actix_cors::Cors::default(), |cors, origin| {
            cors.allowed_origin(origin)
        })
        .allowed_methods(["GET", "POST"])
        .allowed_headers([
            actix_web::http::header::AUTHORIZATION,
            actix_web::http::header::CONTENT_TYPE,
        ])
        // The refresh cookie travels on cross-origin refresh/logout calls from allowed origins.
        .supports_credentials()
        .max_age(600)
}

/// Registers the routes that need no per-deployment settings (well-known documents, probes).
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
        .default_service(web::to(|| async { method_not_allowed("GET, HEAD") }))
}

/// A resource answering POST with `handler`, 405 (with `Allow`) otherwise.
fn post_resource<F, Args>(path: &str, handler: F) -> actix_web::Resource
where
    F: actix_web::Handler<Args>,
    Args: actix_web::FromRequest + 'static,
    F::Output: actix_web::Responder + 'static,
{
    web::resource(path)
        .route(web::post().to(handler))
        .default_service(web::to(|| async { method_not_allowed("POST") }))
}

fn method_not_allowed(allow: &'static str) -> HttpResponse {
    let mut response = actix_web::ResponseError::error_response(&ApiError::MethodNotAllowed);
    response.headers_mut().insert(
        actix_web::http::header::ALLOW,
        actix_web::http::header::HeaderValue::from_static(allow),
    );
    response
}

/// The fallback for unknown paths.
pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound)
}
