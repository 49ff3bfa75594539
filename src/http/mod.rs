//! HTTP routes: thin handlers that parse, call a service, and map errors.

pub mod account;
pub mod account_security;
pub mod admin;
pub mod auth_api;
pub mod authorize;
pub mod bearer;
pub mod client_logo;
pub mod context;
pub mod cors;
pub mod device;
pub mod email;
pub mod error;
pub mod health;
pub mod json;
pub mod oauth;
pub mod passkeys;
pub mod registration;
pub mod well_known;

use std::time::Duration;

use actix_web::http::Method;
use actix_web::{HttpResponse, web};

use crate::http::error::ApiError;

pub use crate::state::HttpSettings;

/// Registers every public route under `base`, the issuer's path (`""` for the root), and the
/// admin API there too unless it has its own listener. Unknown paths answer JSON 404; known
/// paths with another method, 405. The JSON API answers cross-origin requests only from
/// `cors_origins`, exactly.
///
/// OIDC Discovery §4: the configuration is at `{issuer}/.well-known/openid-configuration`, so
/// every endpoint it names lives under the issuer's path too. With a non-empty path, the root
/// also answers the RFC 8414 §3 metadata (`/.well-known/oauth-authorization-server{path}`) and,
/// besides under the path, the probes (and `/metrics` when the admin API is here): load
/// balancers and scrapers address the host, while through a proxy that forwards only the
/// issuer's path they are reached under it.
pub fn configure_with_cors<'a>(
    cors_origins: &'a [String],
    with_admin: bool,
    base: &'a str,
) -> impl FnOnce(&mut web::ServiceConfig) + 'a {
    move |cfg| {
        if !base.is_empty() {
            cfg.service(cross_origin_resource(
                "/.well-known/oauth-authorization-server",
                format!("/.well-known/oauth-authorization-server{base}"),
                READ,
                well_known::discovery,
                cors::DOCUMENT,
            ));
            configure_probes(cfg);
            if with_admin {
                configure_metrics(cfg);
            }
        }
        under(cfg, base, |cfg| {
            configure(cfg);
            if with_admin {
                configure_admin(cfg);
            }
            configure_api(cfg, cors_origins);
        });
    }
}

/// The routes of the separate admin listener: the admin API under `base` (the issuer's path, as
/// on the public listener) and `/metrics` there and at the root.
pub fn configure_admin_listener(base: &str) -> impl FnOnce(&mut web::ServiceConfig) + '_ {
    move |cfg| {
        if !base.is_empty() {
            configure_metrics(cfg);
        }
        under(cfg, base, configure_admin);
    }
}

/// `routes` inside a scope at `base`, or at the root when `base` is empty.
fn under(cfg: &mut web::ServiceConfig, base: &str, routes: impl FnOnce(&mut web::ServiceConfig)) {
    if base.is_empty() {
        routes(cfg);
    } else {
        // A scope matches `base` and `base/…` only (segment boundary), never `base…`.
        cfg.service(web::scope(base).configure(routes));
    }
}

/// The first-party JSON API (`/api/…`), cross-origin only from `cors_origins`.
fn configure_api(cfg: &mut web::ServiceConfig, cors_origins: &[String]) {
    cfg.service(
        web::scope("/api")
            .wrap(actix_web::middleware::Condition::new(
                !cors_origins.is_empty(),
                api_cors(cors_origins),
            ))
            .service(scoped_resource(
                "/api/auth/register",
                "/auth/register",
                WRITE,
                auth_api::register,
            ))
            .service(scoped_resource(
                "/api/auth/login",
                "/auth/login",
                WRITE,
                auth_api::login,
            ))
            .service(scoped_resource(
                "/api/auth/login/second-factor",
                "/auth/login/second-factor",
                WRITE,
                auth_api::login_second_factor,
            ))
            .service(scoped_resource(
                "/api/auth/refresh",
                "/auth/refresh",
                WRITE,
                auth_api::refresh,
            ))
            .service(scoped_resource(
                "/api/auth/logout",
                "/auth/logout",
                WRITE,
                auth_api::logout,
            ))
            .service(scoped_resource(
                "/api/auth/logout-all",
                "/auth/logout-all",
                WRITE,
                auth_api::logout_all,
            ))
            // Email (issue 17): password reset and address verification by mailed links.
            .service(scoped_resource(
                "/api/auth/password-reset",
                "/auth/password-reset",
                WRITE,
                email::request_password_reset,
            ))
            .service(scoped_resource(
                "/api/auth/password-reset/confirm",
                "/auth/password-reset/confirm",
                WRITE,
                email::reset_password,
            ))
            .service(scoped_resource(
                "/api/auth/verify-email",
                "/auth/verify-email",
                WRITE,
                email::verify_email,
            ))
            .service(scoped_resource(
                "/api/me/email",
                "/me/email",
                WRITE,
                email::change_email,
            ))
            .service(scoped_resource(
                "/api/me/email/verification",
                "/me/email/verification",
                WRITE,
                email::resend_verification,
            ))
            .service(labelled(
                "/api/me",
                "GET, HEAD, PATCH",
                web::resource("/me")
                    .route(web::get().to(auth_api::me))
                    .route(web::head().to(auth_api::me))
                    .route(web::patch().to(auth_api::update_me)),
            ))
            .service(scoped_resource(
                "/api/me/consents",
                "/me/consents",
                READ,
                auth_api::consents,
            ))
            .service(scoped_resource(
                "/api/me/consents/{client_id}",
                "/me/consents/{client_id}",
                DELETE,
                auth_api::revoke_consent,
            )),
    );
}

fn api_cors(origins: &[String]) -> actix_cors::Cors {
    origins
        .iter()
        .fold(actix_cors::Cors::default(), |cors, origin| {
            cors.allowed_origin(origin)
        })
        .allowed_methods(["GET", "POST", "PATCH", "DELETE"])
        .allowed_headers([
            actix_web::http::header::AUTHORIZATION,
            actix_web::http::header::CONTENT_TYPE,
        ])
        // The refresh cookie travels on cross-origin refresh/logout calls from allowed origins.
        .supports_credentials()
        .max_age(600)
}

/// Registers the admin API (bearer-authenticated, never cross-origin) and `/metrics`.
pub fn configure_admin(cfg: &mut web::ServiceConfig) {
    configure_metrics(cfg);
    cfg.service(
        web::scope("/admin")
            .service(scoped_resource(
                "/admin/keys",
                "/keys",
                READ,
                admin::list_keys,
            ))
            .service(scoped_resource(
                "/admin/keys/rotate",
                "/keys/rotate",
                WRITE,
                admin::rotate,
            ))
            .service(scoped_resource(
                "/admin/keys/{kid}/revoke",
                "/keys/{kid}/revoke",
                WRITE,
                admin::revoke,
            ))
            .service(labelled(
                "/admin/clients",
                "GET, HEAD, POST",
                web::resource("/clients")
                    .route(web::get().to(admin::list_clients))
                    .route(web::head().to(admin::list_clients))
                    .route(web::post().to(admin::create_client)),
            ))
            .service(labelled(
                "/admin/initial-access-tokens",
                "GET, HEAD, POST",
                web::resource("/initial-access-tokens")
                    .route(web::get().to(admin::list_initial_tokens))
                    .route(web::head().to(admin::list_initial_tokens))
                    .route(web::post().to(admin::issue_initial_token)),
            ))
            .service(scoped_resource(
                "/admin/initial-access-tokens/{id}",
                "/initial-access-tokens/{id}",
                DELETE,
                admin::revoke_initial_token,
            ))
            .service(scoped_resource(
                "/admin/clients/{client_id}/redirect-uris",
                "/clients/{client_id}/redirect-uris",
                PUT,
                admin::update_redirect_uris,
            ))
            .service(scoped_resource(
                "/admin/clients/{client_id}/web-origins",
                "/clients/{client_id}/web-origins",
                PUT,
                admin::update_web_origins,
            ))
            .service(scoped_resource(
                "/admin/clients/{client_id}/token-exchange-audiences",
                "/clients/{client_id}/token-exchange-audiences",
                PUT,
                admin::update_token_exchange_audiences,
            ))
            .service(scoped_resource(
                "/admin/clients/{client_id}/second-factor",
                "/clients/{client_id}/second-factor",
                PUT,
                admin::update_second_factor,
            ))
            .service(scoped_resource(
                "/admin/clients/{client_id}/jwks",
                "/clients/{client_id}/jwks",
                PUT,
                admin::update_jwks,
            ))
            .service(scoped_resource(
                "/admin/clients/{client_id}/rotate-secret",
                "/clients/{client_id}/rotate-secret",
                WRITE,
                admin::rotate_client_secret,
            ))
            .service(scoped_resource(
                "/admin/clients/{client_id}",
                "/clients/{client_id}",
                DELETE,
                admin::delete_client,
            ))
            .service(labelled(
                "/admin/apis",
                "GET, HEAD, POST",
                web::resource("/apis")
                    .route(web::get().to(admin::list_apis))
                    .route(web::head().to(admin::list_apis))
                    .route(web::post().to(admin::create_api)),
            ))
            .service(labelled(
                "/admin/apis/{id}",
                "GET, HEAD, PATCH, DELETE",
                web::resource("/apis/{id}")
                    .route(web::get().to(admin::get_api))
                    .route(web::head().to(admin::get_api))
                    .route(web::patch().to(admin::update_api))
                    .route(web::delete().to(admin::delete_api)),
            ))
            .service(scoped_resource(
                "/admin/users",
                "/users",
                READ,
                admin::list_users,
            ))
            .service(scoped_resource(
                "/admin/users/{user}",
                "/users/{user}",
                PATCH,
                admin::update_user,
            ))
            .service(scoped_resource(
                "/admin/users/{user}/disable",
                "/users/{user}/disable",
                WRITE,
                admin::disable_user,
            ))
            .service(scoped_resource(
                "/admin/users/{user}/revoke-sessions",
                "/users/{user}/revoke-sessions",
                WRITE,
                admin::revoke_user_sessions,
            ))
            .service(scoped_resource(
                "/admin/users/{user}/reset-second-factors",
                "/users/{user}/reset-second-factors",
                WRITE,
                admin::reset_second_factors,
            ))
            .service(scoped_resource(
                "/admin/audit",
                "/audit",
                READ,
                admin::audit_events,
            ))
            .service(scoped_resource(
                "/admin/users/{user}/families",
                "/users/{user}/families",
                READ,
                admin::list_families,
            ))
            .service(scoped_resource(
                "/admin/users/{user}/consents",
                "/users/{user}/consents",
                READ,
                admin::list_consents,
            ))
            .service(scoped_resource(
                "/admin/users/{user}/consents/{client_id}",
                "/users/{user}/consents/{client_id}",
                DELETE,
                admin::revoke_consent,
            ))
            .service(scoped_resource(
                "/admin/users/{user}/roles/{role}",
                "/users/{user}/roles/{role}",
                WRITE_DELETE,
                admin::change_role,
            ))
            .service(scoped_resource(
                "/admin/families/{id}/revoke",
                "/families/{id}/revoke",
                WRITE,
                admin::revoke_family,
            )),
    );
}

/// Registers the routes that need no per-deployment settings (well-known documents, OAuth and
/// OIDC endpoints, probes), relative to wherever they are mounted. The well-known documents,
/// the token, revocation and userinfo endpoints answer CORS preflights ([`cors`]); nothing else
/// does.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(cross_origin_resource(
        "/.well-known/jwks.json",
        "/.well-known/jwks.json",
        READ,
        well_known::jwks,
        cors::DOCUMENT,
    ))
    .service(cross_origin_resource(
        "/.well-known/openid-configuration",
        "/.well-known/openid-configuration",
        READ,
        well_known::discovery,
        cors::DOCUMENT,
    ))
    .service(cross_origin_resource(
        "/.well-known/oauth-authorization-server",
        "/.well-known/oauth-authorization-server",
        READ,
        well_known::discovery,
        cors::DOCUMENT,
    ))
    .service(resource("/authorize", READ_WRITE, authorize::authorize))
    .service(resource("/authorize/login", WRITE, authorize::login))
    .service(resource("/authorize/consent", WRITE, authorize::consent))
    // Second factors (issue 17): the sign-in's second step and the account's security page.
    .service(resource(
        "/authorize/second-factor",
        WRITE,
        authorize::second_factor,
    ))
    .service(resource(
        "/account/security",
        READ_WRITE,
        account_security::security,
    ))
    // Passkeys (issue 17): the sign-in ceremony and the one script of the hosted pages.
    .service(resource("/authorize/passkey", WRITE, authorize::passkey))
    .service(resource("/assets/passkey.js", READ, passkeys::script))
    .service(resource("/logout", READ_WRITE, authorize::logout))
    // The hosted account page and its forms (`http::account`).
    .service(resource("/account", READ, account::page_get))
    .service(resource("/account/login", READ, account::login))
    .service(resource("/account/callback", READ, account::callback))
    .service(resource("/account/profile", WRITE, account::update_profile))
    .service(resource(
        "/account/password",
        WRITE,
        account::change_password,
    ))
    .service(resource(
        "/account/sessions/end",
        WRITE,
        account::end_session,
    ))
    .service(resource(
        "/account/sessions/end-all",
        WRITE,
        account::end_all,
    ))
    .service(resource(
        "/account/applications/revoke",
        WRITE,
        account::revoke_application,
    ))
    // Email (issue 17): the hosted pages of password reset, address verification and the
    // account's address.
    .service(resource(
        "/password-reset",
        READ_WRITE,
        email::password_reset_page,
    ))
    .service(resource(
        "/password-reset/confirm",
        READ_WRITE,
        email::password_reset_confirm_page,
    ))
    .service(resource(
        "/email/verify",
        READ_WRITE,
        email::email_verify_page,
    ))
    .service(resource(
        "/account/email",
        READ_WRITE,
        email::account_email_page,
    ))
    .service(cross_origin_resource(
        "/token",
        "/token",
        WRITE,
        oauth::token,
        cors::TOKEN,
    ))
    .service(cross_origin_resource(
        "/revoke",
        "/revoke",
        WRITE,
        oauth::revoke,
        cors::TOKEN,
    ))
    .service(resource("/introspect", WRITE, oauth::introspect))
    // The device authorization grant (RFC 8628): the device's endpoint and the user's page.
    .service(resource(
        "/device_authorization",
        WRITE,
        device::device_authorization,
    ))
    .service(resource("/device", READ_WRITE, device::verification_page))
    .service(resource("/device/decision", WRITE, device::decision))
    // Dynamic client registration (RFC 7591) and management (RFC 7592); 404 when it is off.
    .service(resource("/register", WRITE, registration::register))
    .service(resource(
        "/register/{client_id}",
        MANAGE,
        registration::configuration,
    ))
    // Dynamic clients' logos, fetched at registration, for the hosted pages (AUTHZ-11).
    .service(resource(
        "/clients/{client_id}/logo",
        READ,
        client_logo::logo,
    ))
    .service(cross_origin_resource(
        "/userinfo",
        "/userinfo",
        READ_WRITE,
        oauth::userinfo,
        cors::USERINFO,
    ))
    .service(resource("/openapi.json", READ, health::openapi));
    configure_probes(cfg);
}

/// The liveness and readiness probes.
fn configure_probes(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/healthz", READ, health::healthz))
        .service(resource("/readyz", READ, health::readyz));
}

/// The Prometheus endpoint.
fn configure_metrics(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/metrics", READ, health::metrics));
}

/// The methods a resource answers, and the `Allow` header that lists them.
#[derive(Clone, Copy)]
struct Methods(&'static [Method], &'static str);

/// Reads: GET, and HEAD wherever GET works.
const READ: Methods = Methods(&[Method::GET, Method::HEAD], "GET, HEAD");
/// The JSON API's writes.
const WRITE: Methods = Methods(&[Method::POST], "POST");
/// Replacement of a sub-resource.
const PUT: Methods = Methods(&[Method::PUT], "PUT");
/// A partial update.
const PATCH: Methods = Methods(&[Method::PATCH], "PATCH");
/// Deletion.
const DELETE: Methods = Methods(&[Method::DELETE], "DELETE");
/// A client's configuration (RFC 7592): read (no HEAD: a read replaces the registration access
/// token), replace, delete.
const MANAGE: Methods = Methods(
    &[Method::GET, Method::PUT, Method::DELETE],
    "GET, PUT, DELETE",
);
/// Granting and withdrawing (roles).
const WRITE_DELETE: Methods = Methods(&[Method::POST, Method::DELETE], "POST, DELETE");
/// Both (userinfo, authorize, logout).
const READ_WRITE: Methods = Methods(
    &[Method::GET, Method::HEAD, Method::POST],
    "GET, HEAD, POST",
);

/// A resource answering `methods` with `handler`, and 405 (with `Allow`) to any other method.
/// Each resource records its requests in the latency histogram under its own path pattern (a
/// static label: no allocation, no second route match on the hot paths).
fn resource<F, Args>(
    path: &'static str,
    methods: Methods,
    handler: F,
) -> impl actix_web::dev::HttpServiceFactory + 'static
where
    F: actix_web::Handler<Args>,
    Args: actix_web::FromRequest + 'static,
    F::Output: actix_web::Responder + 'static,
{
    scoped_resource(path, path, methods, handler)
}

/// [`resource`] inside a scope: `label` is the full path pattern (without the issuer's path),
/// for metrics.
fn scoped_resource<F, Args>(
    label: &'static str,
    path: impl Into<String>,
    methods: Methods,
    handler: F,
) -> impl actix_web::dev::HttpServiceFactory + 'static
where
    F: actix_web::Handler<Args>,
    Args: actix_web::FromRequest + 'static,
    F::Output: actix_web::Responder + 'static,
{
    let routes = methods
        .0
        .iter()
        .fold(web::resource(path.into()), |resource, method| {
            resource.route(web::route().method(method.clone()).to(handler.clone()))
        });
    labelled(label, methods.1, routes)
}

/// [`scoped_resource`] that also answers CORS preflights (`OPTIONS`) by `policy`
/// ([`cors::preflight`]); the handler itself writes the CORS headers of its answers.
fn cross_origin_resource<F, Args>(
    label: &'static str,
    path: impl Into<String>,
    methods: Methods,
    handler: F,
    policy: cors::Policy,
) -> impl actix_web::dev::HttpServiceFactory + 'static
where
    F: actix_web::Handler<Args>,
    Args: actix_web::FromRequest + 'static,
    F::Output: actix_web::Responder + 'static,
{
    let allow = methods.1;
    let routes =
        methods
            .0
            .iter()
            .fold(web::resource(path.into()), |resource, method| {
                resource.route(web::route().method(method.clone()).to(handler.clone()))
            })
            .route(web::route().method(Method::OPTIONS).to(
                move |request: actix_web::HttpRequest| cors::preflight(request, policy, allow),
            ));
    labelled(label, allow, routes)
}

/// Finishes a resource whose routes are in place: 405 with `allow` to any other method, and its
/// requests recorded in the latency histogram under `label`.
fn labelled(
    label: &'static str,
    allow: &'static str,
    routes: actix_web::Resource,
) -> impl actix_web::dev::HttpServiceFactory + 'static {
    routes
        .app_data(context::RouteLabel(label))
        .default_service(web::to(move || async move { method_not_allowed(allow) }))
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

/// How long a client may take to send a request body once its headers are in: the request
/// timeout again. actix bounds only the headers (`client_request_timeout`); without this, a
/// body sent one byte at a time (slowloris, DOS-06) would hold its connection indefinitely.
pub(crate) fn body_deadline(request: &actix_web::HttpRequest) -> Duration {
    request
        .app_data::<web::Data<crate::state::AppState>>()
        .map_or(Duration::from_secs(10), |state| {
            state.http_settings.request_timeout
        })
}
