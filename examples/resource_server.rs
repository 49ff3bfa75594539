//! A small API protected by Portcullis access tokens, verified offline with `portcullis::verify`.
//!
//! Settings: `PORTCULLIS_ISSUER` (the issuer it trusts, default `http://127.0.0.1:8080`),
//! `RESOURCE_AUDIENCE` (expected audience, default: the issuer; set it to the identifier of the
//! API registered with `portcullis apis create`, the URL clients call it by) and `RESOURCE_BIND`
//! (default `127.0.0.1:8081`).
//!
//! With `RESOURCE_AUDIENCE` an https URL (or http on a loopback host), the server publishes its
//! RFC 9728 metadata at that URL's well-known path
//! (`http://127.0.0.1:8081/api` → `GET /.well-known/oauth-protected-resource/api`) and names it
//! in every `401`/`403` challenge (`WWW-Authenticate: Bearer resource_metadata="…"`), so a
//! client such as an MCP client finds the issuer from the API's URL alone.
//!
//! - `GET /public`: no token needed.
//! - `GET /private`: any valid access token; answers its `sub`.
//! - `GET /admin`: a token whose roles include `admin`.
//! - `GET /orders`: a token granting the API scope `orders:read` (register it with
//!   `portcullis apis create --identifier https://orders.example --name Orders --scope
//!   'orders:read=Read your orders'`; a client allowed it gets it with `resource=` that
//!   identifier, from any grant).

use actix_web::{App, HttpResponse, HttpServer, middleware, web};
use portcullis::verify::actix::{
    Authenticated, BearerError, ProtectedResource, resource_metadata_challenge,
};
use portcullis::verify::{ProtectedResourceMetadata, Verifier, VerifierConfig};
use serde_json::json;

async fn public() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "message": "anyone may read this" }))
}

async fn private(auth: Authenticated) -> HttpResponse {
    HttpResponse::Ok().json(json!({ "sub": auth.subject }))
}

async fn admin(auth: Authenticated) -> Result<HttpResponse, BearerError> {
    auth.require_role("admin")?;
    Ok(HttpResponse::Ok().json(json!({ "sub": auth.subject, "admin": true })))
}

async fn orders(auth: Authenticated) -> Result<HttpResponse, BearerError> {
    auth.require_scope("orders:read")?;
    Ok(HttpResponse::Ok().json(json!({ "sub": auth.subject, "orders": [] })))
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let issuer =
        std::env::var("PORTCULLIS_ISSUER").unwrap_or_else(|_| "http://127.0.0.1:8080".into());
    let mut config = VerifierConfig::for_issuer(&issuer);
    let mut resource = None;
    if let Ok(audience) = std::env::var("RESOURCE_AUDIENCE") {
        let mut metadata = ProtectedResourceMetadata::new(&audience, &issuer);
        metadata.scopes_supported = vec!["orders:read".into()];
        match ProtectedResource::new(&metadata) {
            Ok(published) => {
                eprintln!("resource metadata at {}", published.metadata_url());
                resource = Some(published);
            }
            Err(why) => eprintln!("no resource metadata: {why}"),
        }
        config.audiences = vec![audience];
    }
    let bind = std::env::var("RESOURCE_BIND").unwrap_or_else(|_| "127.0.0.1:8081".into());
    let verifier = Verifier::new(config).map_err(std::io::Error::other)?;
    let verifier = web::Data::new(verifier);
    eprintln!("resource server on http://{bind}, trusting {issuer}");
    HttpServer::new(move || {
        let metadata = resource.clone();
        App::new()
            .app_data(verifier.clone())
            .configure(move |cfg| {
                if let Some(metadata) = metadata {
                    metadata.configure()(cfg);
                }
            })
            .wrap(middleware::from_fn(resource_metadata_challenge))
            .route("/public", web::get().to(public))
            .route("/private", web::get().to(private))
            .route("/admin", web::get().to(admin))
            .route("/orders", web::get().to(orders))
    })
    .bind(&bind)?
    .run()
    .await
}
