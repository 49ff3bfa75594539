//! CORS for browser apps (issue 15 item 7): preflights and `Access-Control-*` headers on the
//! token, revocation and userinfo endpoints (for a client's web origins) and on the discovery
//! and JWKS documents (for any origin: they are public). Which origin a client allows is
//! decided in `oidc::clients` ([`Client::allows_origin`], computed when the registry loads);
//! this module reads `Origin` and writes headers. No other endpoint answers CORS: not the
//! authorization endpoint nor the hosted pages (RFC 9700 §2.6, AUTHZ-11), not introspection,
//! not the admin API. Never `Access-Control-Allow-Credentials` here: these endpoints take no
//! cookies. The first-party JSON API (`/api/…`) has its own CORS from `cors_origins`.

use actix_web::http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE, ACCESS_CONTROL_REQUEST_METHOD,
    HeaderValue, ORIGIN, VARY,
};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};

use crate::oidc::clients::{Client, ClientRegistry, RequestOrigin, check_request_origin};
use crate::oidc::error::OAuthError;
use crate::state::AppState;

/// Who may call an endpoint cross-origin, and with which methods.
#[derive(Clone, Copy, Debug)]
pub enum Policy {
    /// The web origins of clients (token, revocation, userinfo): a preflight is answered for
    /// an origin of any client, naming it (never `*`); each actual response is checked against
    /// its own client. The methods, as `Access-Control-Allow-Methods` lists them.
    Clients(&'static str),
    /// Any origin, `*` (the discovery and JWKS documents; RFC 9700 §2.6 allows it, KEY-03).
    Public,
}

/// The token and revocation endpoints: POST from a client's origins.
pub const TOKEN: Policy = Policy::Clients("POST");
/// The userinfo endpoint: GET and POST from a client's origins.
pub const USERINFO: Policy = Policy::Clients("GET, POST");
/// The discovery and JWKS documents: GET from anywhere.
pub const DOCUMENT: Policy = Policy::Public;

/// The request headers browser code may send (`Access-Control-Allow-Headers`).
const ALLOW_HEADERS: HeaderValue = HeaderValue::from_static("Authorization, Content-Type");
/// The same for the public documents (a conditional GET of the JWKS).
const DOCUMENT_ALLOW_HEADERS: HeaderValue = HeaderValue::from_static("If-None-Match");
/// The methods of the public documents.
const DOCUMENT_METHODS: HeaderValue = HeaderValue::from_static("GET, HEAD");
/// How long, in seconds, a browser may cache a preflight's answer (`Access-Control-Max-Age`).
const MAX_AGE_SECONDS: HeaderValue = HeaderValue::from_static("600");
/// The response headers browser code may read besides the safelisted ones: RFC 6750 §3's
/// `WWW-Authenticate` (userinfo errors) and `Retry-After` (throttling, 503).
const EXPOSE_HEADERS: HeaderValue = HeaderValue::from_static("WWW-Authenticate, Retry-After");
const ANY_ORIGIN: HeaderValue = HeaderValue::from_static("*");
const VARY_ORIGIN: HeaderValue = HeaderValue::from_static("Origin");

/// `OPTIONS` on an endpoint with a CORS `policy` (`allow`: its `Allow` header). A CORS
/// preflight (`Origin` and `Access-Control-Request-Method`) for a method of the policy from an
/// allowed origin gets 204 with `Access-Control-Allow-Origin` (the origin, or `*` for a public
/// document), `-Allow-Methods`, `-Allow-Headers` and `-Max-Age`; from another origin or for
/// another method, 403 with no `Access-Control-*` header (the browser then refuses the actual
/// request). An `OPTIONS` that is not a preflight gets 405, as before CORS.
pub async fn preflight(request: HttpRequest, policy: Policy, allow: &'static str) -> HttpResponse {
    let headers = request.headers();
    let (Some(origin), Some(method)) = (
        headers.get(ORIGIN),
        headers.get(ACCESS_CONTROL_REQUEST_METHOD),
    ) else {
        return super::method_not_allowed(allow);
    };
    let method = method.to_str().unwrap_or("");
    match policy {
        Policy::Public => {
            if !lists(DOCUMENT_METHODS.to_str().unwrap_or(""), method) {
                return refused();
            }
            HttpResponse::NoContent()
                .insert_header((ACCESS_CONTROL_ALLOW_ORIGIN, ANY_ORIGIN))
                .insert_header((ACCESS_CONTROL_ALLOW_METHODS, DOCUMENT_METHODS))
                .insert_header((ACCESS_CONTROL_ALLOW_HEADERS, DOCUMENT_ALLOW_HEADERS))
                .insert_header((ACCESS_CONTROL_MAX_AGE, MAX_AGE_SECONDS))
                .finish()
        }
        Policy::Clients(methods) => {
            let known = origin
                .to_str()
                .is_ok_and(|origin| clients(&request).is_some_and(|c| c.knows_origin(origin)));
            if !known || !lists(methods, method) {
                return refused();
            }
            HttpResponse::NoContent()
                .insert_header((ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone()))
                .insert_header((ACCESS_CONTROL_ALLOW_METHODS, methods))
                .insert_header((ACCESS_CONTROL_ALLOW_HEADERS, ALLOW_HEADERS))
                .insert_header((ACCESS_CONTROL_MAX_AGE, MAX_AGE_SECONDS))
                .insert_header((VARY, VARY_ORIGIN))
                .finish()
        }
    }
}

/// A preflight that is not allowed: 403, no `Access-Control-*` header.
fn refused() -> HttpResponse {
    HttpResponse::Forbidden()
        .insert_header((VARY, VARY_ORIGIN))
        .finish()
}

/// Whether the comma-separated `list` names `method` (methods are case-sensitive, RFC 9110
/// §9.1).
fn lists(list: &str, method: &str) -> bool {
    list.split(',').any(|m| m.trim() == method)
}

fn clients(request: &HttpRequest) -> Option<&ClientRegistry> {
    request
        .app_data::<web::Data<AppState>>()
        .map(|state| state.clients.as_ref())
}

/// The CORS side of one answer of the token, revocation or userinfo endpoint: the request's
/// `Origin`, and whether the answer may name it in `Access-Control-Allow-Origin`. Until the
/// client is known, an origin of any client is allowed (so an SPA can read `invalid_client`
/// or a malformed-request error); once it is known, only that client's origins are.
#[derive(Debug)]
pub struct CrossOrigin {
    origin: Option<HeaderValue>,
    allowed: bool,
}

impl CrossOrigin {
    /// Reads the request's `Origin`; allowed while it is an origin of any client.
    pub fn of(request: &HttpRequest, clients: &ClientRegistry) -> Self {
        let origin = request.headers().get(ORIGIN).cloned();
        let allowed = origin
            .as_ref()
            .and_then(|o| o.to_str().ok())
            .is_some_and(|o| clients.knows_origin(o));
        Self { origin, allowed }
    }

    /// A token or revocation request's client is known: refuses (400 `invalid_request`) an
    /// `Origin` that is not one of its web origins, before the request does anything
    /// ([`check_request_origin`], CORS-02); otherwise the answer is allowed exactly when the
    /// request came from one of its origins.
    pub fn check_client(&mut self, client: &Client) -> Result<(), OAuthError> {
        let decided = check_request_origin(client, self.origin.as_ref().map(HeaderValue::as_bytes));
        self.allowed = matches!(decided, Ok(RequestOrigin::Allowed));
        decided.map(|_| ())
    }

    /// A userinfo answer's client is known (the access token's `client_id`): allowed exactly
    /// when it is registered and the request came from one of its origins.
    pub fn for_client(&mut self, client: Option<&Client>) {
        self.allowed = match (&self.origin, client) {
            (Some(origin), Some(client)) => origin
                .to_str()
                .is_ok_and(|origin| client.allows_origin(origin)),
            _ => false,
        };
    }

    /// The response (an error rendered in its own shape, RFC 6749 §5.2 / RFC 6750 §3) with
    /// `Vary: Origin`, and, when allowed, `Access-Control-Allow-Origin` naming the origin and
    /// `Access-Control-Expose-Headers`.
    pub fn respond<E>(self, result: Result<HttpResponse, E>) -> HttpResponse
    where
        E: ResponseError + 'static,
    {
        let mut response = result.unwrap_or_else(HttpResponse::from_error);
        let headers = response.headers_mut();
        headers.append(VARY, VARY_ORIGIN);
        if let (true, Some(origin)) = (self.allowed, self.origin) {
            headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
            headers.insert(ACCESS_CONTROL_EXPOSE_HEADERS, EXPOSE_HEADERS);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::lists;

    #[test]
    fn methods_are_matched_exactly() {
        assert!(lists("GET, POST", "POST"));
        assert!(lists("GET, POST", "GET"));
        assert!(!lists("GET, POST", "post"));
        assert!(!lists("POST", "DELETE"));
        assert!(!lists("POST", ""));
    }
}
