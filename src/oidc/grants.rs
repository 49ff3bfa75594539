//! The token endpoint's grants (RFC 6749 §4.1.3, §4.4, §6) and the tokens they issue: RFC 9068
//! access tokens and OpenID Connect ID tokens.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{NaiveDateTime, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::clients::{Client, GrantType};
use super::error::OAuthError;
use super::params::{Params, pkce_matches};
use crate::accounts::sessions::{self, AuthError, Grant, RefreshToken, token_hash};
use crate::db::models::{AccessTokenRow, UserRow};
use crate::db::queries::{audit, oauth as q, refresh as refresh_q, users as user_q};
use crate::db::{DbConn, write_transaction};
use crate::keys::SigningAlg;
use crate::state::AppState;

/// A successful token response (RFC 6749 §5.1, OIDC Core §3.1.3.3).
#[derive(Debug, Serialize)]
pub struct TokenResponse {
    /// The access token (JWT).
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// The granted scope.
    pub scope: String,
    /// The refresh token, when `offline_access` was granted (or for non-OIDC grants that allow
    /// refresh).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// The ID token, when `openid` was granted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}

fn has_scope(scope: &str, wanted: &str) -> bool {
    scope.split(' ').any(|s| s == wanted)
}

fn now() -> NaiveDateTime {
    Utc::now().naive_utc()
}

impl From<AuthError> for OAuthError {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::InvalidGrant => {
                Self::invalid_grant("The refresh token is invalid, expired or revoked.")
            }
            AuthError::Db(db) => db.into(),
            other => Self::internal(other),
        }
    }
}

#[derive(Serialize)]
struct AccessClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    exp: i64,
    iat: i64,
    nbf: i64,
    jti: &'a str,
    client_id: &'a str,
    scope: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    auth_time: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    roles: Option<&'a [String]>,
}

/// An access token to sign.
pub struct AccessToken<'a> {
    /// The client it is issued to.
    pub client: &'a Client,
    /// Subject: a user id, or the client id (client credentials).
    pub subject: &'a str,
    /// Audience.
    pub audience: &'a str,
    /// Scope.
    pub scope: &'a str,
    /// Its `jti`.
    pub jti: &'a str,
    /// Authentication time of the user.
    pub auth_time: Option<NaiveDateTime>,
    /// Roles (first-party clients only).
    pub roles: Option<&'a [String]>,
    /// The grant, for metrics.
    pub grant: &'static str,
}

/// Signs an RFC 9068 access token (`typ: at+jwt`) with the client's algorithm; returns it and
/// its lifetime.
pub fn sign_access_token(
    state: &AppState,
    token: &AccessToken<'_>,
) -> Result<(String, u64), OAuthError> {
    let iat = Utc::now().timestamp();
    let ttl = state.token_settings.access_token_ttl.as_secs();
    let claims = AccessClaims {
        iss: state.issuer.as_str(),
        sub: token.subject,
        aud: token.audience,
        exp: iat + i64::try_from(ttl).unwrap_or(i64::MAX / 2),
        iat,
        nbf: iat,
        jti: token.jti,
        client_id: &token.client.client_id,
        scope: token.scope,
        auth_time: token.auth_time.map(|t| t.and_utc().timestamp()),
        roles: token.roles,
    };
    let jwt = state
        .signer
        .sign(token.client.access_token_alg, "at+jwt", &claims)
        .map_err(OAuthError::internal)?;
    state
        .metrics
        .token_issued(token.grant, token.client.access_token_alg.as_str());
    Ok((jwt, ttl))
}

#[derive(Serialize)]
struct IdClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    exp: i64,
    iat: i64,
    auth_time: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    nonce: Option<&'a str>,
    at_hash: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    sid: Option<&'a str>,
    azp: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    preferred_username: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    email_verified: Option<bool>,
}

/// `at_hash` (OIDC Core §3.1.3.6): the left half of the SHA-256 of the access token (both of our
/// algorithms hash with SHA-256), base64url.
pub fn at_hash(access_token: &str) -> String {
    let digest = Sha256::digest(access_token.as_bytes());
    URL_SAFE_NO_PAD.encode(&digest[..16])
}

/// An ID token to sign.
pub struct IdToken<'a> {
    /// The client (audience and algorithm).
    pub client: &'a Client,
    /// The user.
    pub user: &'a UserRow,
    /// Granted scope (decides the profile and email claims).
    pub scope: &'a str,
    /// When the user authenticated.
    pub auth_time: NaiveDateTime,
    /// The request's nonce (not on refresh).
    pub nonce: Option<&'a str>,
    /// The browser session.
    pub sid: Option<&'a str>,
    /// The access token issued with it.
    pub access_token: &'a str,
}

/// Signs an ID token with the client's ID-token algorithm (RS256 by default).
pub fn sign_id_token(state: &AppState, token: &IdToken<'_>) -> Result<String, OAuthError> {
    let iat = Utc::now().timestamp();
    let ttl = i64::try_from(state.token_settings.id_token_ttl.as_secs()).unwrap_or(i64::MAX / 2);
    let profile = has_scope(token.scope, "profile");
    let email = has_scope(token.scope, "email");
    let claims = IdClaims {
        iss: state.issuer.as_str(),
        sub: &token.user.id,
        aud: &token.client.client_id,
        exp: iat + ttl,
        iat,
        auth_time: token.auth_time.and_utc().timestamp(),
        nonce: token.nonce,
        at_hash: at_hash(token.access_token),
        sid: token.sid,
        azp: &token.client.client_id,
        preferred_username: profile.then_some(token.user.username.as_str()),
        email: email.then_some(token.user.email.as_str()),
        email_verified: email.then_some(false),
    };
    state
        .signer
        .sign(token.client.id_token_alg, "JWT", &claims)
        .map_err(OAuthError::internal)
}

/// `client_credentials` (RFC 6749 §4.4): confidential clients only; `sub` is the client; the
/// audience comes from `resource`/`audience` (one of the client's) or is the client's default.
/// Writes nothing: the client comes from memory.
pub fn client_credentials(
    state: &AppState,
    client: &Client,
    params: &Params,
) -> Result<TokenResponse, OAuthError> {
    if !client.confidential || !client.allows(GrantType::ClientCredentials) {
        return Err(OAuthError::unauthorized_client(
            "This client may not use client_credentials.",
        ));
    }
    let audience = match (params.get("resource"), params.get("audience")) {
        (Some(_), Some(_)) => {
            return Err(OAuthError::invalid_request(
                "Send either resource or audience, not both.",
            ));
        }
        (Some(a), None) | (None, Some(a)) => {
            if !client.audiences.iter().any(|allowed| allowed == a) {
                return Err(OAuthError::invalid_target());
            }
            a
        }
        (None, None) => client.default_audience(state.issuer.as_str()),
    };
    let scope = params.get("scope").unwrap_or("");
    if !client.allows_scope(scope)
        || has_scope(scope, "openid")
        || has_scope(scope, "offline_access")
    {
        return Err(OAuthError::invalid_scope(
            "The requested scope is not allowed for this client.",
        ));
    }
    let jti = sessions::new_jti();
    let (access_token, expires_in) = sign_access_token(
        state,
        &AccessToken {
            client,
            subject: &client.client_id,
            audience,
            scope,
            jti: &jti,
            auth_time: None,
            roles: None,
            grant: "client_credentials",
        },
    )?;
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in,
        scope: scope.to_owned(),
        refresh_token: None,
        id_token: None,
    })
}

enum Redemption {
    Issued {
        user: Box<UserRow>,
        roles: Vec<String>,
        scope: String,
        nonce: Option<String>,
        auth_time: NaiveDateTime,
        sid: Option<String>,
        jti: String,
        refresh_token: Option<RefreshToken>,
    },
    Refused(&'static str),
}

/// `unauthorized_client` unless `client` may use `grant`.
fn permit(client: &Client, grant: GrantType) -> Result<(), OAuthError> {
    if client.allows(grant) {
        Ok(())
    } else {
        Err(OAuthError::unauthorized_client(format!(
            "This client may not use {}.",
            grant.as_str()
        )))
    }
}

/// `authorization_code` (RFC 6749 §4.1.3, RFC 7636 §4.6): the code is single-use — one
/// conditional update decides concurrent redemptions (CODE-02) — and bound to the client, the
/// redirect URI and the PKCE challenge (CODE-03, PKCE-01). A replayed code revokes everything its
/// first redemption issued (CODE-01).
pub async fn authorization_code(
    state: &AppState,
    client: Arc<Client>,
    params: &Params,
) -> Result<TokenResponse, OAuthError> {
    permit(&client, GrantType::AuthorizationCode)?;
    let code = params.required("code")?;
    let hash = token_hash(code);
    let redirect_uri = params.get("redirect_uri").map(str::to_owned);
    let verifier = params.get("code_verifier").map(str::to_owned);
    let absolute_ttl = state.token_settings.refresh_absolute_ttl;
    let access_ttl = state.token_settings.access_token_ttl;
    let client_for_db = Arc::clone(&client);
    let outcome = state
        .db
        .run(move |conn| {
            write_transaction(conn, |conn| {
                redeem(
                    conn,
                    &client_for_db,
                    &hash,
                    redirect_uri.as_deref(),
                    verifier.as_deref(),
                    absolute_ttl,
                    access_ttl,
                )
            })
        })
        .await?;
    let Redemption::Issued {
        user,
        roles,
        scope,
        nonce,
        auth_time,
        sid,
        jti,
        refresh_token,
    } = outcome
    else {
        let Redemption::Refused(why) = outcome else {
            return Err(OAuthError::invalid_grant("The code is invalid."));
        };
        return Err(OAuthError::invalid_grant(why));
    };
    let audience = client.default_audience(state.issuer.as_str());
    let (access_token, expires_in) = sign_access_token(
        state,
        &AccessToken {
            client: &client,
            subject: &user.id,
            audience,
            scope: &scope,
            jti: &jti,
            auth_time: Some(auth_time),
            roles: client.first_party.then_some(roles.as_slice()),
            grant: "authorization_code",
        },
    )?;
    let id_token = if has_scope(&scope, "openid") {
        Some(sign_id_token(
            state,
            &IdToken {
                client: &client,
                user: &user,
                scope: &scope,
                auth_time,
                nonce: nonce.as_deref(),
                sid: sid.as_deref(),
                access_token: &access_token,
            },
        )?)
    } else {
        None
    };
    tracing::info!(client_id = %client.client_id, user_id = %user.id, "authorization code redeemed");
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in,
        scope,
        refresh_token: refresh_token.map(|t| t.expose().to_owned()),
        id_token,
    })
}

fn chrono_duration(d: std::time::Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

fn redeem(
    conn: &mut DbConn,
    client: &Client,
    hash: &str,
    redirect_uri: Option<&str>,
    verifier: Option<&str>,
    absolute_ttl: std::time::Duration,
    access_ttl: std::time::Duration,
) -> Result<Redemption, OAuthError> {
    let now = now();
    let Some(row) = q::find_code(conn, hash)? else {
        return Ok(Redemption::Refused("The code is invalid or expired."));
    };
    // The conditional update decides: of concurrent redemptions exactly one gets 1. A code seen
    // used (before, or by a concurrent winner) is a replay: what it issued is revoked.
    if q::redeem_code(conn, hash, now)? != 1 {
        let issued = q::find_code(conn, hash)?;
        if let Some(family) = issued.as_ref().and_then(|r| r.family_id.as_deref()) {
            q::revoke_grant(conn, family, "code_replay", now)?;
        }
        if let Some(jti) = issued.as_ref().and_then(|r| r.access_jti.as_deref()) {
            q::revoke_access_token(conn, jti, &row.client_id, row.expires_at, now)?;
        }
        audit::record(
            conn,
            Some(&row.user_id),
            "authorization_code_replay",
            Some(&row.client_id),
            None,
            now,
        )?;
        tracing::warn!(client_id = %row.client_id, "authorization code replayed: its grant is revoked");
        return Ok(Redemption::Refused("The code was already used."));
    }
    // Checks after the redemption: a code presented wrongly is spent, never retried.
    if row.client_id != client.client_id {
        return Ok(Redemption::Refused(
            "The code was issued to another client.",
        ));
    }
    if now >= row.expires_at {
        return Ok(Redemption::Refused("The code is invalid or expired."));
    }
    let redirect_ok = match redirect_uri {
        Some(given) => given == row.redirect_uri,
        None => row.redirect_uri_sent == 0,
    };
    if !redirect_ok {
        return Ok(Redemption::Refused(
            "redirect_uri does not match the authorization request.",
        ));
    }
    if !verifier.is_some_and(|v| pkce_matches(v, &row.code_challenge)) {
        return Ok(Redemption::Refused(
            "The PKCE code_verifier does not match.",
        ));
    }
    let Some(user) = user_q::find_by_id(conn, &row.user_id)? else {
        return Ok(Redemption::Refused("The user no longer exists."));
    };
    if user.disabled_at.is_some() {
        return Ok(Redemption::Refused("The user is disabled."));
    }
    let roles = sessions::roles_of(conn, &user.id)?;
    // OIDC Core §11: a refresh token only with offline_access (for OIDC requests); plain OAuth
    // requests get one when the client may refresh.
    let wants_refresh = if has_scope(&row.scope, "openid") {
        has_scope(&row.scope, "offline_access")
    } else {
        true
    };
    let (family_id, refresh_token) = if wants_refresh && client.allows(GrantType::RefreshToken) {
        let grant = Grant {
            client_id: client.client_id.clone(),
            scope: row.scope.clone(),
            auth_time: Some(row.auth_time),
            sid: row.sid.clone(),
        };
        let (family, token) = sessions::start_family(conn, &user.id, &grant, absolute_ttl)?;
        (Some(family), Some(token))
    } else {
        (None, None)
    };
    let jti = sessions::new_jti();
    q::insert_access_token(
        conn,
        &AccessTokenRow {
            jti: jti.clone(),
            family_id: family_id.clone(),
            client_id: client.client_id.clone(),
            expires_at: now + chrono_duration(access_ttl),
            revoked_at: None,
            user_id: Some(user.id.clone()),
        },
    )?;
    q::record_redemption(conn, hash, family_id.as_deref(), &jti)?;
    Ok(Redemption::Issued {
        user: Box::new(user),
        roles,
        scope: row.scope,
        nonce: row.nonce,
        auth_time: row.auth_time,
        sid: row.sid,
        jti,
        refresh_token,
    })
}

/// `refresh_token` (RFC 6749 §6): the JSON API's family store, rotation and reuse detection,
/// bound to the client (RT-06); `scope` may only narrow the grant (`invalid_scope`).
pub async fn refresh_token(
    state: &AppState,
    client: Arc<Client>,
    params: &Params,
) -> Result<TokenResponse, OAuthError> {
    permit(&client, GrantType::RefreshToken)?;
    let presented = params.required("refresh_token")?.to_owned();
    // A wider scope is refused before the token is rotated, so the refusal costs it nothing.
    let requested = params.get("scope").map(str::to_owned);
    if let Some(requested) = &requested {
        let hash = token_hash(&presented);
        let granted = state
            .db
            .run(move |conn| Ok::<_, OAuthError>(refresh_q::find(conn, &hash)?))
            .await?
            .map(|(_, family)| family.scope);
        if let Some(granted) = granted
            && !requested
                .split(' ')
                .filter(|s| !s.is_empty())
                .all(|s| has_scope(&granted, s))
        {
            return Err(OAuthError::invalid_scope(
                "The requested scope exceeds the original grant.",
            ));
        }
    }
    let access = sessions::AccessRecord::new(state.token_settings.access_token_ttl);
    let jti = access.jti.clone();
    let refreshed = sessions::rotate(state, presented, client.client_id.clone(), access).await?;
    let scope = requested.unwrap_or_else(|| refreshed.grant.scope.clone());
    let user_id = refreshed.user_id.clone();
    let user = state
        .db
        .run(move |conn| Ok::<_, OAuthError>(user_q::find_by_id(conn, &user_id)?))
        .await?
        .ok_or_else(|| OAuthError::invalid_grant("The user no longer exists."))?;
    let audience = client.default_audience(state.issuer.as_str());
    let (access_token, expires_in) = sign_access_token(
        state,
        &AccessToken {
            client: &client,
            subject: &user.id,
            audience,
            scope: &scope,
            jti: &jti,
            auth_time: refreshed.grant.auth_time,
            roles: client.first_party.then_some(refreshed.roles.as_slice()),
            grant: "refresh_token",
        },
    )?;
    // OIDC Core §12.2: same sub and auth_time, no nonce.
    let id_token = match (has_scope(&scope, "openid"), refreshed.grant.auth_time) {
        (true, Some(auth_time)) => Some(sign_id_token(
            state,
            &IdToken {
                client: &client,
                user: &user,
                scope: &scope,
                auth_time,
                nonce: None,
                sid: refreshed.grant.sid.as_deref(),
                access_token: &access_token,
            },
        )?),
        _ => None,
    };
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in,
        scope,
        refresh_token: Some(refreshed.token.expose().to_owned()),
        id_token,
    })
}

/// The signing algorithm names the provider supports (discovery).
pub fn supported_algs() -> Vec<&'static str> {
    SigningAlg::ALL.iter().map(|a| a.as_str()).collect()
}
