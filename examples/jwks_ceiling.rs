//! The ceiling for `scripts/bench-http`: a minimal actix-web server answering
//! `/.well-known/jwks.json` with fixed bytes and the same headers as Portcullis, so the load
//! script can compare the real endpoint against the fastest this machine can serve.
//!
//! Usage: `jwks_ceiling BODY_FILE ADDRESS [WORKERS]`

use actix_web::http::header::{
    ACCESS_CONTROL_ALLOW_ORIGIN, CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH,
};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let usage = || std::io::Error::other("usage: jwks_ceiling BODY_FILE ADDRESS [WORKERS]");
    let body = web::Bytes::from(std::fs::read(args.next().ok_or_else(usage)?)?);
    let address = args.next().ok_or_else(usage)?;
    let workers: usize = args.next().and_then(|w| w.parse().ok()).unwrap_or(2);
    HttpServer::new(move || {
        let body = body.clone();
        App::new().route(
            "/.well-known/jwks.json",
            web::get().to(move |request: HttpRequest| {
                let body = body.clone();
                async move {
                    let mut response = if request.headers().contains_key(IF_NONE_MATCH) {
                        HttpResponse::NotModified()
                    } else {
                        HttpResponse::Ok()
                    };
                    response
                        .insert_header((ETAG, "\"ceiling\""))
                        .insert_header((CACHE_CONTROL, "public, max-age=300"))
                        .insert_header((ACCESS_CONTROL_ALLOW_ORIGIN, "*"));
                    if request.headers().contains_key(IF_NONE_MATCH) {
                        response.finish()
                    } else {
                        response
                            .insert_header((CONTENT_TYPE, "application/json"))
                            .body(body)
                    }
                }
            }),
        )
    })
    .workers(workers)
    .bind(address)?
    .run()
    .await
}
