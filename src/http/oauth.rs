//! OAuth endpoints: `POST /token`, `POST /revoke` (RFC 7009), `POST /introspect` (RFC 7662),
//! `GET|POST /userinfo` (OIDC Core §5.3). Form bodies only, parameters never repeated, client
//! authentication by `client_secret_basic`, `client_secret_post`, `private_key_jwt` (RFC 7523
//! §2.2) or `none` (public clients).

use std::sync::Arc;

use actix_web::http::header::{AUTHORIZATION, CONTENT_TYPE};
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use serde_json::json;

use crate::http::cors::CrossOrigin;
use crate::http::error::Fault;
use crate::oidc::client_auth::{self, AuthMethod};
use crate::oidc::client_metadata;
use crate::oidc::clients::Client;
use crate::oidc::error::OAuthError;
use crate::oidc::grants;
use crate::oidc::introspect::{self, Introspection, UserInfoBody, UserInfoError};
use crate::oidc::params::Params;
use crate::oidc::revocation::{self, Revocation};
use crate::state::AppState;
use crate::verify::VerifyError;
use crate::verify::actix::{BearerError, bearer_token};

/// Largest form body accepted by the OAuth endpoints.
pub const FORM_LIMIT: usize = 16 * 1024;

pub(super) fn no_store_json(body: &impl serde::Serialize) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .insert_header(("Pragma", "no-cache"))
        .json(body)
}

/// Reads an `application/x-www-form-urlencoded` body (at most [`FORM_LIMIT`] bytes).
pub async fn read_form(request: &HttpRequest, payload: web::Payload) -> Result<Params, OAuthError> {
    let content_type = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim();
    if !essence.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        return Err(OAuthError::invalid_request(
            "The body must be application/x-www-form-urlencoded.",
        ));
    }
    let body = tokio::time::timeout(
        super::body_deadline(request),
        payload.to_bytes_limited(FORM_LIMIT),
    )
    .await
    .map_err(|_| OAuthError::body_timeout())?
    .map_err(|_| OAuthError::payload_too_large())?
    .map_err(|_| OAuthError::invalid_request("The request body could not be read."))?;
    Params::parse(&body).map_err(|dup| {
        OAuthError::invalid_request(format!(
            "{} was sent more than once or holds a NUL character.",
            safe(&dup.0)
        ))
    })
}

/// A parameter name fit for an error description (no CR/LF/TAB, bounded).
fn safe(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_ascii_graphic())
        .take(40)
        .collect()
}

/// Refuses a request to the token, revocation or introspection endpoint with anything in its
/// URL query: their parameters, client credentials included, travel in the form body only
/// (RFC 6749 §3.2, §2.3.1; RFC 7009 §2.1; RFC 7662 §2.1), so a query is a client mistake that
/// would put a code, a token or a secret in access logs. 400 `invalid_request`.
pub fn no_query(request: &HttpRequest) -> Result<(), OAuthError> {
    if request.query_string().is_empty() {
        Ok(())
    } else {
        Err(OAuthError::invalid_request(
            "Parameters are not accepted in the URL of this endpoint; send them in the form body.",
        ))
    }
}

/// The client `client_id` names: a registered one, or — when client ID metadata documents are
/// on and the id is an https URL — the client its document describes (fetched, or from the
/// cache). `Ok(None)`: no such client. `Err`: the document could not be fetched or is invalid.
pub async fn find_client(
    state: &AppState,
    client_id: &str,
) -> Result<Option<Arc<Client>>, crate::verify::FetchError> {
    if let Some(client) = state.clients.get(client_id) {
        return Ok(Some(client));
    }
    match &state.client_documents {
        Some(documents) if client_metadata::is_document_url(client_id) => {
            documents.client(client_id).await.map(Some)
        }
        _ => Ok(None),
    }
}

/// [`find_client`] where a document that cannot be used counts as no client (the reason is
/// logged).
async fn known_client(state: &AppState, client_id: &str) -> Option<Arc<Client>> {
    find_client(state, client_id).await.unwrap_or_else(|error| {
        tracing::warn!(%error, "client ID metadata document refused");
        None
    })
}

/// Authenticates the client of a token, revocation or introspection request (RFC 6749 §2.3):
/// a secret (`Authorization: Basic` or `client_secret` in the body), a client assertion
/// (`private_key_jwt`, [`authenticate_by_assertion`]), or nothing for a public client. `path` is
/// the endpoint's path (`/token`…), whose URL an assertion may name as its audience.
pub async fn authenticate_client(
    state: &AppState,
    request: &HttpRequest,
    params: &Params,
    path: &str,
) -> Result<Arc<Client>, OAuthError> {
    no_query(request)?;
    if params.get("client_assertion").is_some() || params.get("client_assertion_type").is_some() {
        return authenticate_by_assertion(state, request, params, path).await;
    }
    let basic = basic_credentials(request)?;
    let (client_id, secret, via_basic) = match (basic, params.get("client_secret")) {
        (Some(_), Some(_)) => {
            return Err(OAuthError::invalid_request(
                "Use one client authentication method, not two.",
            ));
        }
        (Some((id, secret)), None) => {
            if params.get("client_id").is_some_and(|body_id| body_id != id) {
                return Err(OAuthError::invalid_request(
                    "client_id differs from the authenticated client.",
                ));
            }
            (id, Some(secret), true)
        }
        (None, secret) => {
            let id = params
                .get("client_id")
                .ok_or_else(|| OAuthError::invalid_client(false))?;
            (id.to_owned(), secret.map(str::to_owned), false)
        }
    };
    let Some(client) = known_client(state, &client_id).await else {
        return Err(OAuthError::invalid_client(via_basic));
    };
    let authenticated = match (&secret, client.confidential) {
        (Some(secret), true) => client.secret_matches(secret),
        (None, false) => true,
        _ => false,
    };
    if !authenticated {
        tracing::warn!(client_id = %safe(&client_id), "client authentication failed");
        return Err(OAuthError::invalid_client(via_basic));
    }
    Ok(client)
}

/// `private_key_jwt` (RFC 7523 §2.2, OIDC Core §9): `client_assertion_type` is the JWT bearer
/// type, `client_assertion` a JWT whose `iss` names the client (and `client_id`, if sent, is the
/// same), checked by [`client_auth::check_assertion`] against the client's registered keys with
/// the issuer, the token endpoint and this endpoint's URL as audiences; then its `jti` is
/// recorded, so that an assertion is accepted once across every instance sharing the database.
/// Anything else in the request that authenticates (a secret, `Authorization`) is refused.
async fn authenticate_by_assertion(
    state: &AppState,
    request: &HttpRequest,
    params: &Params,
    path: &str,
) -> Result<Arc<Client>, OAuthError> {
    if request.headers().contains_key(AUTHORIZATION) || params.get("client_secret").is_some() {
        return Err(OAuthError::invalid_request(
            "Use one client authentication method, not two.",
        ));
    }
    if params.get("client_assertion_type") != Some(client_auth::JWT_BEARER_ASSERTION) {
        return Err(OAuthError::invalid_client_because(format!(
            "client_assertion_type must be {}.",
            client_auth::JWT_BEARER_ASSERTION
        )));
    }
    let assertion = params.required("client_assertion")?;
    let client_id = client_auth::unverified_issuer(assertion).ok_or_else(|| {
        OAuthError::invalid_client_because("The client assertion is not a JWT naming its iss.")
    })?;
    if params.get("client_id").is_some_and(|id| id != client_id) {
        return Err(OAuthError::invalid_request(
            "client_id differs from the client assertion's iss.",
        ));
    }
    let client = known_client(state, &client_id)
        .await
        .filter(|client| client.token_endpoint_auth_method == AuthMethod::PrivateKeyJwt)
        .ok_or_else(|| {
            tracing::warn!(client_id = %safe(&client_id), "client assertion for no key client");
            OAuthError::invalid_client(false)
        })?;
    let fetched;
    let keys = match (client.keys(), client.jwks_uri.as_deref()) {
        (Some(keys), _) => keys,
        (None, Some(jwks_uri)) => {
            let kid = client_auth::unverified_kid(assertion);
            fetched = state
                .remote_keys
                .keys(jwks_uri, kid.as_deref())
                .await
                .map_err(|error| {
                    tracing::warn!(client_id = %client.client_id, %error, "the client's jwks_uri could not be used");
                    OAuthError::invalid_client_because(
                        "The client's keys could not be fetched from its jwks_uri.",
                    )
                })?;
            &*fetched
        }
        (None, None) => return Err(OAuthError::invalid_client(false)),
    };
    let issuer = state.issuer.as_str();
    let token_endpoint = format!("{issuer}/token");
    let this_endpoint = format!("{issuer}{path}");
    let now = state.clock.now().timestamp();
    let accepted = client_auth::check_assertion(
        assertion,
        &client.client_id,
        keys,
        &[issuer, &token_endpoint, &this_endpoint],
        now,
    )?;
    let first_use = client_auth::spend(&state.db, &client.client_id, &accepted).await?;
    if !first_use {
        tracing::warn!(client_id = %client.client_id, "client assertion replayed");
        return Err(OAuthError::invalid_client_because(
            "The client assertion was used before (its jti is spent).",
        ));
    }
    Ok(client)
}

/// `Authorization: Basic` credentials, each part form-urldecoded (RFC 6749 §2.3.1).
fn basic_credentials(request: &HttpRequest) -> Result<Option<(String, String)>, OAuthError> {
    let Some(value) = request.headers().get(AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value
        .to_str()
        .map_err(|_| OAuthError::invalid_client(true))?;
    let (scheme, encoded) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(OAuthError::invalid_client(true));
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| OAuthError::invalid_client(true))?;
    let (id, secret) = decoded
        .split_once(':')
        .ok_or_else(|| OAuthError::invalid_client(true))?;
    let unescape = |part: &str| -> Result<String, OAuthError> {
        let plus_as_space = part.replace('+', " ");
        url::form_urlencoded::parse(format!("x={plus_as_space}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .ok_or_else(|| OAuthError::invalid_client(true))
    };
    Ok(Some((unescape(id)?, unescape(secret)?)))
}

/// `POST /token`. Cross-origin (CORS) for the client's web origins, errors included; a request
/// whose `Origin` is not one of them is refused before anything is exchanged ([`CrossOrigin`]).
pub async fn token(
    state: web::Data<AppState>,
    request: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let mut cors = CrossOrigin::of(&request, &state.clients);
    let result = exchange(&state, &request, payload, &mut cors).await;
    cors.respond(result)
}

async fn exchange(
    state: &AppState,
    request: &HttpRequest,
    payload: web::Payload,
    cors: &mut CrossOrigin,
) -> Result<HttpResponse, OAuthError> {
    no_query(request)?;
    let params = read_form(request, payload).await?;
    let grant_type = params.required("grant_type")?.to_owned();
    let client = authenticate_client(state, request, &params, "/token").await?;
    cors.check_client(&client)?;
    let response = grants::exchange(
        &state.tokens,
        state.apis.current(),
        Arc::clone(&client),
        &grant_type,
        &params,
    )
    .await?;
    // A dynamic client that gets tokens is in use: it does not expire as unused.
    crate::oidc::registration::record_use(&state.db, &client, state.clock.now_naive()).await;
    Ok(no_store_json(&response))
}

/// `POST /revoke` (RFC 7009): the decision is [`revocation::revoke`]'s; another client's token
/// answers `unauthorized_client`, everything else 200. Cross-origin as `/token`.
pub async fn revoke(
    state: web::Data<AppState>,
    request: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let mut cors = CrossOrigin::of(&request, &state.clients);
    let result = revoke_token(&state, &request, payload, &mut cors).await;
    cors.respond(result)
}

async fn revoke_token(
    state: &AppState,
    request: &HttpRequest,
    payload: web::Payload,
    cors: &mut CrossOrigin,
) -> Result<HttpResponse, OAuthError> {
    no_query(request)?;
    let params = read_form(request, payload).await?;
    let client = authenticate_client(state, request, &params, "/revoke").await?;
    cors.check_client(&client)?;
    let token = params.required("token")?;
    let now = state.clock.now_naive();
    let access = state.tokens.verify_access_token(token).await;
    let revoked = revocation::revoke(&state.db, &client.client_id, token, access, now).await?;
    if revoked == Revocation::NotIssuedToClient {
        return Err(OAuthError::unauthorized_client(
            "The token was not issued to this client.",
        ));
    }
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .insert_header(("Pragma", "no-cache"))
        .finish())
}

/// `POST /introspect` (RFC 7662): confidential clients only; what the caller may learn is
/// decided by [`introspect::introspect`].
pub async fn introspect(
    state: web::Data<AppState>,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, OAuthError> {
    no_query(&request)?;
    let params = read_form(&request, payload).await?;
    let client = authenticate_client(&state, &request, &params, "/introspect").await?;
    if !client.confidential {
        return Err(OAuthError::invalid_client(false));
    }
    let token = params.required("token")?;
    Ok(no_store_json(
        &match introspect::introspect(&state.tokens, &client, token).await? {
            Introspection::Inactive => json!({ "active": false }),
            Introspection::Access(claims) => {
                let mut body = json!({
                    "active": true,
                    "token_type": "Bearer",
                    "scope": claims.scope,
                    "client_id": claims.client_id,
                    "sub": claims.sub,
                    "aud": claims.aud,
                    "iss": claims.iss,
                    "exp": claims.exp,
                    "iat": claims.iat,
                    "jti": claims.jti,
                });
                // RFC 8693 §4.1: who acts for `sub`, with the earlier actors nested.
                if let Some(act) = &claims.act {
                    body["act"] = json!(act);
                }
                body
            }
            Introspection::Refresh(token) => json!({
                "active": true,
                "token_type": "refresh_token",
                "scope": token.scope,
                "client_id": token.client_id,
                "sub": token.sub,
                "iss": token.iss,
                "exp": token.exp,
                "iat": token.iat,
            }),
        },
    ))
}

/// `GET|POST /userinfo` (OIDC Core §5.3): the claims [`introspect::userinfo`] allows, as JSON
/// or, for a client that registered `userinfo_signed_response_alg`, as a signed JWT
/// (`application/jwt`, §5.3.2); `Cache-Control: no-store` either way; RFC 6750 errors. The
/// access token comes in the `Authorization: Bearer` header (RFC 6750 §2.1) or, on a POST with
/// an `application/x-www-form-urlencoded` body, as its `access_token` parameter (§2.2). Both at
/// once, a repeated parameter or an unreadable form body: 400 `invalid_request` (§2: a client
/// uses one method). Another body type is ignored (the header is then the only method).
/// Cross-origin (CORS) for the web origins of the token's client; errors for an origin of any
/// client.
pub async fn userinfo(
    state: web::Data<AppState>,
    request: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let mut cors = CrossOrigin::of(&request, &state.clients);
    let result = claims_of_user(&state, &request, payload, &mut cors).await;
    cors.respond(result)
}

async fn claims_of_user(
    state: &AppState,
    request: &HttpRequest,
    payload: web::Payload,
    cors: &mut CrossOrigin,
) -> Result<HttpResponse, BearerError> {
    let token = userinfo_token(request, payload).await?;
    let answer = introspect::userinfo(&state.tokens, &state.clients, &token)
        .await
        .map_err(|error| match error {
            UserInfoError::InvalidToken => {
                BearerError::Invalid(VerifyError::Malformed("not a valid access token"))
            }
            UserInfoError::InsufficientScope => {
                BearerError::InsufficientScope("scope openid".into())
            }
            UserInfoError::Unavailable(error) => Fault::from(error).into_bearer(),
            UserInfoError::Signing(error) => Fault::internal(error).into_bearer(),
        })?;
    cors.for_client(answer.client.as_deref());
    let mut response = HttpResponse::Ok();
    response.insert_header(("Cache-Control", "no-store"));
    Ok(match answer.body {
        UserInfoBody::Json(claims) => response.json(claims),
        // OIDC Core §5.3.2: a signed response is `application/jwt`.
        UserInfoBody::Signed(jwt) => response.content_type("application/jwt").body(jwt),
    })
}

/// The access token of a userinfo request: the header's, or the form body's (RFC 6750 §2.1,
/// §2.2), never both.
async fn userinfo_token(
    request: &HttpRequest,
    payload: web::Payload,
) -> Result<String, BearerError> {
    let has_header = request.headers().contains_key(AUTHORIZATION);
    let form_post = request.method() == actix_web::http::Method::POST
        && request
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|essence| {
                essence
                    .trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            });
    let in_body = if form_post {
        let params = read_form(request, payload).await.map_err(|_| {
            BearerError::InvalidRequest("The form body could not be read, or repeats a parameter.")
        })?;
        params.get("access_token").map(str::to_owned)
    } else {
        None
    };
    match (has_header, in_body) {
        (true, Some(_)) => Err(BearerError::InvalidRequest(
            "Send the access token in the Authorization header or in the form body, not both.",
        )),
        (false, Some(token)) => Ok(token),
        (_, None) => bearer_token(request),
    }
}
