//! `GET /clients/{client_id}/logo`: a dynamic client's logo, fetched and checked at its
//! registration ([`crate::oidc::client_logo`]), served from our own origin for the hosted login
//! and consent pages (`img-src 'self'`, AUTHZ-11). The image is served with the type its bytes
//! were recognised as, `X-Content-Type-Options: nosniff` and a CSP that lets nothing run or load
//! should it ever be opened as a document; 404 (JSON) when the client has no logo.

use actix_web::{HttpResponse, web};

use crate::http::error::ApiError;
use crate::oidc::client_logo;
use crate::state::AppState;

/// How long browsers and shared caches may keep a logo, in seconds: short, so that a changed
/// or removed logo is soon gone from the pages.
const LOGO_MAX_AGE: u32 = 300;

/// `GET|HEAD /clients/{client_id}/logo`: 200 with the image, or 404.
///
/// # Errors
/// 404 `not_found` without a stored logo; 5xx for a database failure.
#[tracing::instrument(skip_all, fields(client_id = %client_id))]
pub async fn logo(
    state: web::Data<AppState>,
    client_id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let logo = client_logo::stored(&state.db, client_id.into_inner())
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(HttpResponse::Ok()
        .content_type(logo.image.content_type())
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header(("Content-Security-Policy", "default-src 'none'"))
        // Our pages embed it; other sites have no reason to.
        .insert_header(("Cross-Origin-Resource-Policy", "same-origin"))
        .insert_header(("Cache-Control", format!("public, max-age={LOGO_MAX_AGE}")))
        .body(logo.bytes))
}
