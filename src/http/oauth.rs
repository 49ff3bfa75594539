//! OAuth endpoints: `POST /token`, `POST /revoke` (RFC 7009), `POST /introspect` (RFC 7662),
//! `GET|POST /userinfo` (OIDC Core §5.3). Form bodies only, parameters never repeated, client
//! authentication by `client_secret_basic`, `client_secret_post` or `none` (public clients).

use std::sync::Arc;

use actix_web::http::header::{AUTHORIZATION, CONTENT_TYPE};
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use serde_json::json;

use crate::accounts::current;
use crate::db::queries::{oauth as q, refresh as refresh_q, users as user_q};
use crate::http::error::Fault;
use crate::oidc::clients::Client;
use crate::oidc::error::OAuthError;
use crate::oidc::grants;
use crate::oidc::introspect::own_access_token;
use crate::oidc::params::Params;
use crate::state::AppState;
use crate::verify::VerifyError;
use crate::verify::actix::{BearerError, bearer_token};

/// Largest form body accepted by the OAuth endpoints.
pub const FORM_LIMIT: usize = 16 * 1024;

fn no_store_json(body: &impl serde::Serialize) -> HttpResponse {
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

/// Authenticates the client of a token, revocation or introspection request (RFC 6749 §2.3).
pub fn authenticate_client(
    state: &AppState,
    request: &HttpRequest,
    params: &Params,
) -> Result<Arc<Client>, OAuthError> {
    if request.query_string().contains("client_secret") {
        return Err(OAuthError::invalid_request(
            "Client credentials are not accepted in the URL.",
        ));
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
    let Some(client) = state.clients.get(&client_id) else {
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

/// `POST /token`.
pub async fn token(
    state: web::Data<AppState>,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, OAuthError> {
    let params = read_form(&request, payload).await?;
    let grant_type = params.required("grant_type")?.to_owned();
    let client = authenticate_client(&state, &request, &params)?;
    let response = match grant_type.as_str() {
        "client_credentials" => grants::client_credentials(&state, &client, &params)?,
        "authorization_code" => grants::authorization_code(&state, client, &params).await?,
        "refresh_token" => grants::refresh_token(&state, client, &params).await?,
        _ => return Err(OAuthError::unsupported_grant_type()),
    };
    Ok(no_store_json(&response))
}

/// `POST /revoke` (RFC 7009): a refresh token revokes its whole grant; an access token is put
/// on the revocation list. Unknown tokens answer 200; another client's token is refused and
/// stays valid (REV-03). A storage failure is never reported as success (REV-05).
pub async fn revoke(
    state: web::Data<AppState>,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, OAuthError> {
    let params = read_form(&request, payload).await?;
    let client = authenticate_client(&state, &request, &params)?;
    let token = params.required("token")?.to_owned();
    let now = chrono::Utc::now().naive_utc();
    // Whatever the hint says, both kinds are looked for (RFC 7009 §2.1).
    let access = own_access_token(&state, &token);
    let hash = crate::accounts::sessions::token_hash(&token);
    let client_id = client.client_id.clone();
    let outcome = state
        .db
        .run(move |conn| {
            crate::db::write_transaction(conn, |conn| {
                if let Some((_, family)) = refresh_q::find(conn, &hash)? {
                    if family.client_id != client_id {
                        return Ok::<_, OAuthError>(false);
                    }
                    q::revoke_grant(conn, &family.id, "revoked", now)?;
                    return Ok(true);
                }
                if let Some(claims) = access {
                    if claims.client_id != client_id {
                        return Ok(false);
                    }
                    let expires = chrono::DateTime::from_timestamp(claims.exp, 0)
                        .map_or(now, |t| t.naive_utc());
                    q::revoke_access_token(conn, &claims.jti, &client_id, expires, now)?;
                }
                Ok(true)
            })
        })
        .await?;
    if !outcome {
        return Err(OAuthError::unauthorized_client(
            "The token was not issued to this client.",
        ));
    }
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .insert_header(("Pragma", "no-cache"))
        .finish())
}

/// `POST /introspect` (RFC 7662): confidential clients only. A caller learns about its own
/// tokens, and about access tokens for an audience it is registered to introspect
/// (`introspection_audiences`, RFC 7662 §4); anything else — not valid, not current (the user
/// disabled or logged out everywhere), or not the caller's business — is `{"active": false}`
/// and nothing else.
pub async fn introspect(
    state: web::Data<AppState>,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, OAuthError> {
    let params = read_form(&request, payload).await?;
    let client = authenticate_client(&state, &request, &params)?;
    if !client.confidential {
        return Err(OAuthError::invalid_client(false));
    }
    let token = params.required("token")?.to_owned();
    let inactive = || no_store_json(&json!({ "active": false }));
    if let Some(claims) = own_access_token(&state, &token) {
        let audiences: Vec<&str> = match &claims.aud {
            serde_json::Value::String(one) => vec![one.as_str()],
            serde_json::Value::Array(many) => many.iter().filter_map(|a| a.as_str()).collect(),
            _ => Vec::new(),
        };
        let entitled = claims.client_id == client.client_id
            || audiences
                .iter()
                .any(|aud| client.introspection_audiences.iter().any(|a| a == aud));
        if !entitled {
            tracing::info!(caller = %client.client_id, "introspection of another client's token answered inactive");
            return Ok(inactive());
        }
        let (jti, sub, own_client) = (
            claims.jti.clone(),
            claims.sub.clone(),
            claims.sub == claims.client_id,
        );
        let active = state
            .db
            .run(move |conn| {
                // A client's own token (client credentials) is recorded only when revoked; a
                // user's token counts only while its user is current.
                Ok::<_, OAuthError>(match current::current_user(conn, &jti, &sub)? {
                    Ok(_) => true,
                    Err(current::NotCurrent::Unrecorded) if own_client => true,
                    Err(current::NotCurrent::OtherSubject) if own_client => {
                        current::client_token_active(conn, &jti)?
                    }
                    Err(_) => false,
                })
            })
            .await?;
        if !active {
            return Ok(inactive());
        }
        return Ok(no_store_json(&json!({
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
        })));
    }
    let hash = crate::accounts::sessions::token_hash(&token);
    let idle = state.token_settings.refresh_idle_ttl;
    let found = state
        .db
        .run(move |conn| {
            let Some((token, family)) = refresh_q::find(conn, &hash)? else {
                return Ok::<_, OAuthError>(None);
            };
            let enabled = user_q::find_by_id(conn, &family.user_id)?
                .is_some_and(|user| user.disabled_at.is_none());
            Ok(enabled.then_some((token, family)))
        })
        .await?;
    let now = chrono::Utc::now().naive_utc();
    match found {
        // A refresh token is its own client's business only.
        Some((token, family))
            if family.client_id == client.client_id
                && token.used_at.is_none()
                && family.revoked_at.is_none()
                && now < family.expires_at
                && now
                    < token.created_at
                        + chrono::Duration::from_std(idle).unwrap_or(chrono::Duration::MAX) =>
        {
            Ok(no_store_json(&json!({
                "active": true,
                "token_type": "refresh_token",
                "scope": family.scope,
                "client_id": family.client_id,
                "sub": family.user_id,
                "iss": state.issuer.as_str(),
                "exp": family.expires_at.and_utc().timestamp(),
                "iat": token.created_at.and_utc().timestamp(),
            })))
        }
        _ => Ok(inactive()),
    }
}

/// `GET|POST /userinfo` (OIDC Core §5.3): the bearer token must be one of ours, unrevoked, with
/// `openid`; the claims follow the granted scopes. RFC 6750 errors.
pub async fn userinfo(
    state: web::Data<AppState>,
    request: HttpRequest,
) -> Result<HttpResponse, BearerError> {
    let token = bearer_token(&request)?;
    let invalid = || BearerError::Invalid(VerifyError::Malformed("not a valid access token"));
    let claims = own_access_token(&state, &token).ok_or_else(invalid)?;
    if !claims.scope.split(' ').any(|s| s == "openid") {
        return Err(BearerError::InsufficientScope("scope openid".into()));
    }
    let (jti, sub) = (claims.jti.clone(), claims.sub.clone());
    // The token must still speak for its user: recorded, unrevoked, the user enabled.
    let user = state
        .db
        .run(move |conn| Ok::<_, crate::db::DbError>(current::current_user(conn, &jti, &sub)?.ok()))
        .await
        .map_err(|error| Fault::from(error).into_bearer())?
        .map(|current| current.user)
        .ok_or_else(invalid)?;
    let scope = |s: &str| claims.scope.split(' ').any(|granted| granted == s);
    let mut body = serde_json::Map::new();
    body.insert("sub".into(), json!(user.id));
    if scope("profile") {
        body.insert("preferred_username".into(), json!(user.username));
        body.insert(
            "updated_at".into(),
            json!(user.updated_at.and_utc().timestamp()),
        );
    }
    if scope("email") {
        body.insert("email".into(), json!(user.email));
        body.insert("email_verified".into(), json!(false));
    }
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(body))
}
