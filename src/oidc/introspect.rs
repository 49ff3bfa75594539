//! The decisions of introspection (RFC 7662) and userinfo (OIDC Core §5.3), on tokens read back
//! by the token service under the one verification policy ([`super::tokens`]) and on the
//! current state of their user ([`crate::accounts::current`]). No actix types: `http/oauth.rs`
//! parses the request and renders the outcome.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::Duration as ChronoDuration;
use serde::Serialize;
use serde_json::Value;

use super::claims_request::RequestedClaims;
use super::clients::{Client, ClientRegistry};
use super::standard_claims;
use super::tokens::{AccessClaims, TokenService};
use crate::accounts::current::{self, NotCurrent};
use crate::db::DbError;
use crate::db::queries::{refresh as refresh_q, users as user_q};
use crate::keys::SignError;
use crate::secrets::RefreshToken;
use crate::verify::Scope;

/// What introspection may say about a token.
#[derive(Debug)]
pub enum Introspection {
    /// `{"active": false}` and nothing else: not valid, not current, or not the caller's
    /// business.
    Inactive,
    /// One of our access tokens, active.
    Access(Box<AccessClaims<'static>>),
    /// One of the caller's refresh tokens, active.
    Refresh(ActiveRefreshToken),
}

/// An active refresh token, as introspection describes it.
#[derive(Debug)]
pub struct ActiveRefreshToken {
    /// What its family grants.
    pub scope: Scope,
    /// The client it was issued to (the caller).
    pub client_id: String,
    /// The user.
    pub sub: String,
    /// The issuer.
    pub iss: String,
    /// When its family ends (seconds since the epoch).
    pub exp: i64,
    /// When it was issued.
    pub iat: i64,
}

/// RFC 7662: what `caller` (an authenticated confidential client) may learn about `token`. A
/// caller learns about its own tokens, and about access tokens for an audience it is registered
/// to introspect (`introspection_audiences`, RFC 7662 §4); anything else — not valid, not
/// current (the user disabled or logged out everywhere), or not the caller's business — is
/// [`Introspection::Inactive`].
pub async fn introspect(
    tokens: &TokenService,
    caller: &Client,
    token: &str,
) -> Result<Introspection, DbError> {
    if let Some(claims) = tokens.verify_access_token(token).await {
        return introspect_access_token(tokens, caller, claims).await;
    }
    introspect_refresh_token(tokens, caller, RefreshToken::presented(token)).await
}

async fn introspect_access_token(
    tokens: &TokenService,
    caller: &Client,
    claims: AccessClaims<'static>,
) -> Result<Introspection, DbError> {
    let entitled = claims.client_id == caller.client_id.as_str()
        || caller
            .introspection_audiences
            .iter()
            .any(|audience| *audience == claims.aud);
    if !entitled {
        tracing::info!(caller = %caller.client_id, "introspection of another client's token answered inactive");
        return Ok(Introspection::Inactive);
    }
    let (jti, sub, own_client) = (
        claims.jti.clone().into_owned(),
        tokens.user_id_of(&claims.sub).into_owned(),
        claims.is_client_token(),
    );
    let active = tokens
        .db()
        .run(move |conn| {
            // A client's own token (client credentials) is recorded only when revoked; a user's
            // token counts only while its user is current.
            Ok::<_, DbError>(match current::current_user(conn, &jti, &sub)? {
                Ok(_) => true,
                Err(NotCurrent::Unrecorded) if own_client => true,
                Err(NotCurrent::OtherSubject) if own_client => {
                    current::client_token_active(conn, &jti)?
                }
                Err(_) => false,
            })
        })
        .await?;
    Ok(if active {
        Introspection::Access(Box::new(claims))
    } else {
        Introspection::Inactive
    })
}

async fn introspect_refresh_token(
    tokens: &TokenService,
    caller: &Client,
    presented: RefreshToken,
) -> Result<Introspection, DbError> {
    let hash = presented.hash();
    let found = tokens
        .db()
        .run(move |conn| {
            let Some((token, family)) = refresh_q::find(conn, hash.as_str())? else {
                return Ok::<_, DbError>(None);
            };
            let enabled = user_q::find_by_id(conn, &family.user_id)?
                .is_some_and(|user| user.disabled_at.is_none());
            Ok(enabled.then_some((token, family)))
        })
        .await?;
    let now = tokens.clock().now_naive();
    let idle =
        ChronoDuration::from_std(tokens.settings().refresh_idle_ttl).unwrap_or(ChronoDuration::MAX);
    match found {
        // A refresh token is its own client's business only.
        Some((token, family))
            if family.client_id == caller.client_id
                && token.used_at.is_none()
                && family.revoked_at.is_none()
                && now < family.expires_at
                && now < token.created_at + idle =>
        {
            let Ok(scope) = Scope::parse(&family.scope) else {
                return Ok(Introspection::Inactive);
            };
            // The user as the client knows them (its pairwise identifier, OIDC Core §8.1).
            let Ok(sub) = tokens.subject_for(caller, &family.user_id) else {
                return Ok(Introspection::Inactive);
            };
            Ok(Introspection::Refresh(ActiveRefreshToken {
                scope,
                client_id: family.client_id,
                sub: sub.into_owned(),
                iss: tokens.issuer().as_str().to_owned(),
                exp: family.expires_at.and_utc().timestamp(),
                iat: token.created_at.and_utc().timestamp(),
            }))
        }
        _ => Ok(Introspection::Inactive),
    }
}

/// The claims userinfo returns (OIDC Core §5.3.2): `sub`, the claims of the granted scopes and
/// those the grant's `claims` parameter asked for in userinfo (§5.5), that are set
/// ([`standard_claims`]). Members in alphabetical order, as the response has always
/// had them.
#[derive(Debug, Serialize)]
#[serde(transparent)]
pub struct UserInfo(pub BTreeMap<String, Value>);

/// How userinfo answers (OIDC Core §5.3.2).
#[derive(Debug)]
pub enum UserInfoBody {
    /// `application/json`: the claims.
    Json(UserInfo),
    /// `application/jwt`: a JWS of the claims with `iss`, `aud` (the client) and `iat`
    /// ([`TokenService::sign_userinfo`]), for a client that registered
    /// `userinfo_signed_response_alg`.
    Signed(String),
}

/// A userinfo answer: its body, and the registered client the access token was issued to (its
/// `client_id`, RFC 9068 §2.2; `None` for a client not in the registry, such as one described
/// by a metadata document), whose web origins may read it (CORS).
#[derive(Debug)]
pub struct UserInfoAnswer {
    /// The claims, as JSON or signed.
    pub body: UserInfoBody,
    /// The access token's client.
    pub client: Option<Arc<Client>>,
}

/// Why userinfo refused a bearer token (RFC 6750 §3.1).
#[derive(Debug, thiserror::Error)]
pub enum UserInfoError {
    /// Not one of our valid access tokens, or it no longer speaks for its user.
    #[error("not a valid access token")]
    InvalidToken,
    /// The token does not grant `openid`.
    #[error("the token does not grant openid")]
    InsufficientScope,
    /// The user's state could not be read.
    #[error(transparent)]
    Unavailable(#[from] DbError),
    /// A signed response could not be signed (no active key of the client's algorithm).
    #[error(transparent)]
    Signing(#[from] SignError),
}

/// OIDC Core §5.3: the bearer token must be one of our access tokens, unrevoked, with `openid`,
/// and still speak for its user; the claims follow the granted scopes and the grant's `claims`
/// parameter (§5.5: its `userinfo` member, found through the token's record). They are signed
/// (§5.3.2) when the token's client, looked up in `clients`, registered
/// `userinfo_signed_response_alg`; otherwise plain JSON.
pub async fn userinfo(
    tokens: &TokenService,
    clients: &ClientRegistry,
    token: &str,
) -> Result<UserInfoAnswer, UserInfoError> {
    let claims = tokens
        .verify_access_token(token)
        .await
        .ok_or(UserInfoError::InvalidToken)?;
    if !claims.scope.contains("openid") {
        return Err(UserInfoError::InsufficientScope);
    }
    // The record names the user id; the answer's `sub` is the token's, as its client knows
    // the user (a pairwise identifier for a pairwise client).
    let (jti, sub) = (claims.jti.into_owned(), claims.sub.into_owned());
    let user_id = tokens.user_id_of(&sub).into_owned();
    let client_id = claims.client_id.to_string();
    // The token must still speak for its user: recorded, unrevoked, the user enabled.
    let (user, profile, requested) = tokens
        .db()
        .run(move |conn| {
            let Ok(current) = current::current_user(conn, &jti, &user_id)? else {
                return Ok::<_, DbError>(None);
            };
            let profile = standard_claims::profile_of(conn, &current.user.id)?;
            Ok(Some((current.user, profile, current.requested_claims)))
        })
        .await?
        .ok_or(UserInfoError::InvalidToken)?;
    let requested = RequestedClaims::released_from(requested.as_deref());
    let mut names = standard_claims::for_scope(&claims.scope);
    names.extend(requested.userinfo.iter().map(String::as_str));
    names.insert("sub");
    let mut claims = standard_claims::collect(&user, &profile, names);
    claims.insert("sub".to_owned(), serde_json::Value::String(sub));
    let client = clients.get(&client_id);
    let body = match client
        .as_deref()
        .and_then(|c| c.userinfo_signed_response_alg)
    {
        Some(alg) => UserInfoBody::Signed(tokens.sign_userinfo(&client_id, alg, &claims)?),
        None => UserInfoBody::Json(UserInfo(claims)),
    };
    Ok(UserInfoAnswer { body, client })
}
