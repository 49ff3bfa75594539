//! `/.well-known/*`: the JWKS and discovery documents, answered from memory.

use actix_web::http::header::{
    ACCESS_CONTROL_ALLOW_ORIGIN, CACHE_CONTROL, CONTENT_TYPE, ETAG, HeaderValue, IF_NONE_MATCH,
};
use actix_web::{HttpRequest, HttpResponse, web};

use crate::state::AppState;

const APPLICATION_JSON: HeaderValue = HeaderValue::from_static("application/json");
const ANY_ORIGIN: HeaderValue = HeaderValue::from_static("*");

/// `GET /.well-known/jwks.json`: the published public keys, with a strong ETag and 304 support.
pub async fn jwks(state: web::Data<AppState>, request: HttpRequest) -> HttpResponse {
    let set = state.keys.current();
    let etag = set.jwks_etag();
    let not_modified = request
        .headers()
        .get(IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| etag_matches(value, etag.as_bytes()));
    let mut response = if not_modified {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header((ETAG, etag.clone()))
        .insert_header((CACHE_CONTROL, state.public_cache_control.clone()))
        // Browsers (SPAs verifying ID tokens) may fetch the keys cross-origin; they are public.
        .insert_header((ACCESS_CONTROL_ALLOW_ORIGIN, ANY_ORIGIN));
    if not_modified {
        response.finish()
    } else {
        response
            .insert_header((CONTENT_TYPE, APPLICATION_JSON))
            .body(set.jwks_body().clone())
    }
}

/// `GET /.well-known/openid-configuration` and `/.well-known/oauth-authorization-server`.
pub async fn discovery(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, APPLICATION_JSON))
        .insert_header((CACHE_CONTROL, state.public_cache_control.clone()))
        .insert_header((ACCESS_CONTROL_ALLOW_ORIGIN, ANY_ORIGIN))
        .body(state.discovery.clone())
}

/// RFC 9110 §13.1.2: `If-None-Match` is `*` or a list of entity tags, compared weakly.
fn etag_matches(header: &str, etag: &[u8]) -> bool {
    header.split(',').map(str::trim).any(|candidate| {
        candidate == "*" || candidate.strip_prefix("W/").unwrap_or(candidate).as_bytes() == etag
    })
}

#[cfg(test)]
mod tests {
    use super::etag_matches;

    #[test]
    fn if_none_match_lists_and_weak_tags() {
        let etag = br#""abc""#;
        assert!(etag_matches(r#""abc""#, etag));
        assert!(etag_matches(r#""x", "abc""#, etag));
        assert!(etag_matches(r#"W/"abc""#, etag));
        assert!(etag_matches("*", etag));
        assert!(!etag_matches(r#""abd""#, etag));
        assert!(!etag_matches("abc", etag));
    }
}
