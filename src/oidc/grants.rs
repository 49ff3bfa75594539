//! The token endpoint's grants (RFC 6749 §4.1.3, §4.4, §6): each checks what its RFC requires of
//! the request, then issues through the one token service ([`super::tokens`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::NaiveDateTime;
use serde::Serialize;
use serde_json::Value;

use super::apis::{Apis, Target};
use super::claims_request::RequestedClaims;
use super::clients::{Client, GrantType, TOKEN_EXCHANGE_GRANT};
use super::error::OAuthError;
use super::params::{Params, pkce_matches};
use super::tokens::{AccessRequest, GrantKind, IdTokenRequest, Recipient, Subject, TokenService};
use super::{standard_claims, token_exchange};
use crate::accounts::sessions::{self, AccessRecord, AuthError, Grant};
use crate::db::models::UserRow;
use crate::db::queries::{audit, oauth as q, refresh as refresh_q, users as user_q};
use crate::db::{DbConn, write_transaction};
use crate::keys::{SignError, SigningAlg};
use crate::secrets::{AuthorizationCode, RefreshToken, TokenHash};
use crate::verify::Scope;

/// A successful token response (RFC 6749 §5.1, OIDC Core §3.1.3.3). `Debug` leaves the tokens
/// out.
#[derive(Serialize)]
pub struct TokenResponse {
    /// The access token (JWT).
    pub access_token: String,
    /// The type of the issued token (RFC 8693 §2.2.1, token exchange only): always
    /// `urn:ietf:params:oauth:token-type:access_token`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issued_token_type: Option<&'static str>,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// The granted scope.
    pub scope: Scope,
    /// The refresh token, when `offline_access` was granted (or for non-OIDC grants that allow
    /// refresh).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// The ID token, when `openid` was granted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("access_token", &"<redacted>")
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "<redacted>"),
            )
            .field("id_token", &self.id_token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
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

impl From<SignError> for OAuthError {
    fn from(error: SignError) -> Self {
        Self::internal(error)
    }
}

/// `POST /token`: the grant named by `grant_type` (RFC 6749 §4.1.3, §4.4, §6; RFC 8693 §2.1),
/// for an authenticated `client`. `apis` (the
/// registered APIs as they are now) decide each access token's audience and scope from the
/// request's `resource` (RFC 8707 §2).
pub async fn exchange(
    tokens: &TokenService,
    apis: Arc<Apis>,
    client: Arc<Client>,
    grant_type: &str,
    params: &Params,
) -> Result<TokenResponse, OAuthError> {
    match grant_type {
        "client_credentials" => client_credentials(tokens, &apis, &client, params),
        "authorization_code" => authorization_code(tokens, apis, client, params).await,
        "refresh_token" => refresh_token(tokens, &apis, client, params).await,
        super::clients::DEVICE_CODE_GRANT => {
            super::device::device_code(tokens, apis, client, params).await
        }
        TOKEN_EXCHANGE_GRANT => token_exchange::exchange(tokens, apis, &client, params).await,
        _ => Err(OAuthError::unsupported_grant_type()),
    }
}

fn scope_not_allowed() -> OAuthError {
    OAuthError::invalid_scope("The requested scope is not allowed for this client.")
}

/// `client_credentials` (RFC 6749 §4.4): confidential clients only; `sub` is the client. The
/// audience is the `resource` (RFC 8707 §2; `audience` is accepted in its place): an API whose
/// scopes are asked for (without `scope`: every scope of it the client is allowed) or one of the
/// client's audiences; without one, the API of the requested scopes, else the client's default.
/// Writes nothing: the client and the APIs come from memory.
pub fn client_credentials(
    tokens: &TokenService,
    apis: &Apis,
    client: &Client,
    params: &Params,
) -> Result<TokenResponse, OAuthError> {
    if !client.confidential || !client.allows(GrantType::ClientCredentials) {
        return Err(OAuthError::unauthorized_client(
            "This client may not use client_credentials.",
        ));
    }
    let mut resources = params.resources().to_vec();
    if let Some(audience) = params.get("audience") {
        if !resources.is_empty() {
            return Err(OAuthError::invalid_request(
                "Send either resource or audience, not both.",
            ));
        }
        resources.push(audience.to_owned());
    }
    let scope = match params.get("scope") {
        Some(text) => Scope::parse(text).map_err(|_| scope_not_allowed())?,
        None => apis
            .allowed_of(client, &resources)
            .unwrap_or_else(Scope::empty),
    };
    if !client.allows_scope(&scope) || scope.contains("openid") || scope.contains("offline_access")
    {
        return Err(scope_not_allowed());
    }
    let Target { audience, scope } = apis.target(client, &scope, &resources)?;
    let record = tokens.access_record(tokens.clock().now());
    let access = tokens.sign_access_token(
        &AccessRequest {
            recipient: Recipient::Client(client),
            subject: Subject::Client,
            scope: &scope,
            audience: audience.as_deref(),
            grant: GrantKind::ClientCredentials,
            actor: None,
        },
        &record,
    )?;
    Ok(TokenResponse {
        access_token: access.token,
        issued_token_type: None,
        token_type: "Bearer",
        expires_in: access.expires_in,
        scope,
        refresh_token: None,
        id_token: None,
    })
}

/// The outcome of redeeming a code (an authorization code, a device code): what it issues, or
/// why it is refused (`invalid_grant`).
pub(crate) enum Redemption {
    /// Recorded; the tokens are to be signed ([`sign_issued`]).
    Issued(Box<Issued>),
    /// Refused with this description.
    Refused(&'static str),
}

/// What a redemption of a user's grant issues, recorded in the database and still to be signed.
pub(crate) struct Issued {
    user: UserRow,
    roles: Vec<String>,
    scope: Scope,
    target: Target,
    nonce: Option<String>,
    auth_time: NaiveDateTime,
    sid: Option<String>,
    amr: String,
    refresh_token: Option<RefreshToken>,
    id_token_claims: BTreeMap<String, Value>,
    /// The refresh family started, if any.
    pub family_id: Option<String>,
}

/// A user's grant to record at its redemption ([`record_user_grant`]).
pub(crate) struct UserGrant<'a> {
    /// The user who approved it.
    pub user_id: &'a str,
    /// The granted scope (stored text).
    pub scope: &'a str,
    /// The access token's audience and scope.
    pub target: Target,
    /// The authorization request's nonce.
    pub nonce: Option<String>,
    /// When the user authenticated.
    pub auth_time: NaiveDateTime,
    /// The browser session the grant was made in, if it belongs to one.
    pub sid: Option<String>,
    /// How the user signed in (RFC 8176).
    pub amr: String,
    /// The claims asked for individually (OIDC Core §5.5), stored form.
    pub requested_claims: Option<String>,
    /// A refresh family's absolute lifetime.
    pub absolute_ttl: std::time::Duration,
    /// The access token to record.
    pub access: &'a AccessRecord,
    /// Now.
    pub now: NaiveDateTime,
}

/// Records the grant of a redeemed code for `client`: refused when the user no longer exists or
/// is disabled; else its roles and ID-token claims read, a refresh family started when the
/// grant allows one (OIDC Core §11: with `offline_access` for OpenID requests; plain OAuth
/// requests when the client may refresh), and the access token recorded.
pub(crate) fn record_user_grant(
    conn: &mut DbConn,
    client: &Client,
    grant: UserGrant<'_>,
) -> Result<Redemption, OAuthError> {
    let Some(user) = user_q::find_by_id(conn, grant.user_id)? else {
        return Ok(Redemption::Refused("The user no longer exists."));
    };
    if user.disabled_at.is_some() {
        return Ok(Redemption::Refused("The user is disabled."));
    }
    let roles = sessions::roles_of(conn, &user.id)?;
    let scope = Scope::parse(grant.scope).map_err(AuthError::StoredScope)?;
    // OIDC Core §5.5: the claims the request asked for individually go with the grant (its
    // refresh family and this access token: refreshed ID tokens and userinfo honour them).
    let requested = RequestedClaims::released_from(grant.requested_claims.as_deref());
    let id_token_claims = if scope.contains("openid") {
        standard_claims::id_token_claims(conn, &user, &requested)?
    } else {
        BTreeMap::new()
    };
    let wants_refresh = if scope.contains("openid") {
        scope.contains("offline_access")
    } else {
        true
    };
    let (family_id, refresh_token) = if wants_refresh && client.allows(GrantType::RefreshToken) {
        let family = Grant {
            client_id: client.client_id.clone(),
            scope: scope.clone(),
            auth_time: Some(grant.auth_time),
            sid: grant.sid.clone(),
            requested_claims: grant.requested_claims.clone(),
            amr: grant.amr.clone(),
        };
        let (family, token) =
            sessions::start_family(conn, &user.id, &family, grant.absolute_ttl, grant.now)?;
        (Some(family), Some(token))
    } else {
        (None, None)
    };
    let mut access_row = grant
        .access
        .row(&user.id, &client.client_id, family_id.as_deref());
    access_row.requested_claims = grant.requested_claims;
    q::insert_access_token(conn, &access_row)?;
    Ok(Redemption::Issued(Box::new(Issued {
        user,
        roles,
        scope,
        target: grant.target,
        nonce: grant.nonce,
        auth_time: grant.auth_time,
        sid: grant.sid,
        amr: grant.amr,
        refresh_token,
        id_token_claims,
        family_id,
    })))
}

/// Signs what a redemption recorded ([`record_user_grant`]): the access token of `record`, an
/// ID token when `openid` was granted, and the refresh token; the token response.
pub(crate) fn sign_issued(
    tokens: &TokenService,
    client: &Client,
    issued: Issued,
    record: &AccessRecord,
    grant: GrantKind,
) -> Result<TokenResponse, OAuthError> {
    let Issued {
        user,
        roles,
        scope,
        target,
        nonce,
        auth_time,
        sid,
        amr,
        refresh_token,
        id_token_claims,
        family_id: _,
    } = issued;
    let access = tokens.sign_access_token(
        &AccessRequest {
            recipient: Recipient::Client(client),
            subject: Subject::User {
                id: &user.id,
                roles: &roles,
                auth_time: Some(auth_time),
                amr: &amr,
            },
            scope: &target.scope,
            audience: target.audience.as_deref(),
            grant,
            actor: None,
        },
        record,
    )?;
    let id_token = if scope.contains("openid") {
        Some(tokens.sign_id_token(&IdTokenRequest {
            client,
            user: &user,
            scope: &scope,
            auth_time,
            nonce: nonce.as_deref(),
            sid: sid.as_deref(),
            access_token: &access.token,
            amr: &amr,
            user_claims: &id_token_claims,
        })?)
    } else {
        None
    };
    tracing::info!(client_id = %client.client_id, user_id = %user.id, grant = ?grant, "user grant redeemed");
    Ok(TokenResponse {
        access_token: access.token,
        issued_token_type: None,
        token_type: "Bearer",
        expires_in: access.expires_in,
        // RFC 6749 §5.1: the scope of the access token.
        scope: target.scope,
        refresh_token: refresh_token.map(RefreshToken::into_exposed),
        id_token,
    })
}

/// `unauthorized_client` unless `client` may use `grant`.
pub(crate) fn permit(client: &Client, grant: GrantType) -> Result<(), OAuthError> {
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
/// redirect URI and the PKCE challenge, or its absence (CODE-03, PKCE-01). A replayed code revokes everything its
/// first redemption issued (CODE-01). The access token is for the `resource` named (RFC 8707
/// §2), one the grant holds scopes of; a refused resource leaves the code unspent.
pub async fn authorization_code(
    tokens: &TokenService,
    apis: Arc<Apis>,
    client: Arc<Client>,
    params: &Params,
) -> Result<TokenResponse, OAuthError> {
    permit(&client, GrantType::AuthorizationCode)?;
    let hash = AuthorizationCode::presented(params.required("code")?).hash();
    let redirect_uri = params.get("redirect_uri").map(str::to_owned);
    let verifier = params.get("code_verifier").map(str::to_owned);
    let resources = params.resources().to_vec();
    let absolute_ttl = tokens.settings().refresh_absolute_ttl;
    let now = tokens.clock().now();
    let record = tokens.access_record(now);
    let stored = record.clone();
    let client_for_db = Arc::clone(&client);
    let outcome = tokens
        .db()
        .run(move |conn| {
            write_transaction(conn, |conn| {
                redeem(
                    conn,
                    &Redeem {
                        client: &client_for_db,
                        apis: &apis,
                        resources: &resources,
                        hash: &hash,
                        redirect_uri: redirect_uri.as_deref(),
                        verifier: verifier.as_deref(),
                        absolute_ttl,
                        access: &stored,
                        now: now.naive_utc(),
                    },
                )
            })
        })
        .await?;
    match outcome {
        Redemption::Issued(issued) => sign_issued(
            tokens,
            &client,
            *issued,
            &record,
            GrantKind::AuthorizationCode,
        ),
        Redemption::Refused(why) => Err(OAuthError::invalid_grant(why)),
    }
}

/// A code redemption: who presents which code, and the access token it would issue.
struct Redeem<'a> {
    client: &'a Client,
    apis: &'a Apis,
    resources: &'a [String],
    hash: &'a TokenHash,
    redirect_uri: Option<&'a str>,
    verifier: Option<&'a str>,
    absolute_ttl: std::time::Duration,
    access: &'a AccessRecord,
    now: NaiveDateTime,
}

fn redeem(conn: &mut DbConn, redeem: &Redeem<'_>) -> Result<Redemption, OAuthError> {
    let Redeem {
        client,
        apis,
        resources,
        hash,
        redirect_uri,
        verifier,
        absolute_ttl,
        access,
        now,
    } = *redeem;
    let hash = hash.as_str();
    let Some(row) = q::find_code(conn, hash)? else {
        return Ok(Redemption::Refused("The code is invalid or expired."));
    };
    // RFC 8707 §2: the resource is checked before the code is spent, so that the client may
    // ask again for a resource of its grant (only by the client the code was issued to: any
    // other presentation spends it below).
    let target =
        if row.client_id == client.client_id && row.used_at.is_none() && now < row.expires_at {
            let granted = Scope::parse(&row.scope).map_err(AuthError::StoredScope)?;
            Some(apis.target(client, &granted, resources)?)
        } else {
            None
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
    let Some(target) = target.filter(|_| now < row.expires_at) else {
        return Ok(Redemption::Refused("The code is invalid or expired."));
    };
    let redirect_ok = match redirect_uri {
        Some(given) => given == row.redirect_uri,
        None => row.redirect_uri_sent == 0,
    };
    if !redirect_ok {
        return Ok(Redemption::Refused(
            "redirect_uri does not match the authorization request.",
        ));
    }
    // Downgrade protection both ways (RFC 9700 §2.1.1, RFC 7636 §4.6): a code issued with a
    // challenge needs its verifier; a code issued without one takes no verifier.
    match (row.code_challenge.as_deref(), verifier) {
        (Some(challenge), Some(verifier)) if pkce_matches(verifier, challenge) => {}
        (Some(_), _) => {
            return Ok(Redemption::Refused(
                "The PKCE code_verifier does not match.",
            ));
        }
        (None, Some(_)) => {
            return Ok(Redemption::Refused(
                "code_verifier was sent for a code issued without code_challenge.",
            ));
        }
        (None, None) => {}
    }
    let outcome = record_user_grant(
        conn,
        client,
        UserGrant {
            user_id: &row.user_id,
            scope: &row.scope,
            target,
            nonce: row.nonce,
            auth_time: row.auth_time,
            sid: row.sid,
            amr: row.amr,
            requested_claims: row.requested_claims,
            absolute_ttl,
            access,
            now,
        },
    )?;
    if let Redemption::Issued(issued) = &outcome {
        q::record_redemption(conn, hash, issued.family_id.as_deref(), &access.jti)?;
    }
    Ok(outcome)
}

/// `refresh_token` (RFC 6749 §6): the one refresh path ([`TokenService::refresh`]) bound to the
/// client (RT-06); `scope` may only narrow the grant (`invalid_scope`); the access token is for
/// any `resource` of the grant (RFC 8707 §2.2: an API it holds scopes of, with only those
/// scopes; the refresh token keeps the whole grant); an ID token again when `openid` was granted
/// (OIDC Core §12.2).
pub async fn refresh_token(
    tokens: &TokenService,
    apis: &Apis,
    client: Arc<Client>,
    params: &Params,
) -> Result<TokenResponse, OAuthError> {
    permit(&client, GrantType::RefreshToken)?;
    let presented = RefreshToken::presented(params.required("refresh_token")?);
    // A wider scope or a refused resource is refused before the token is rotated, so the
    // refusal costs it nothing. Without either and without APIs, the grant is used as it is
    // (no read before the rotation).
    let exceeds = || OAuthError::invalid_scope("The requested scope exceeds the original grant.");
    let resources = params.resources();
    let target = if params.has("scope") || !resources.is_empty() || !apis.is_empty() {
        let hash = presented.hash();
        let granted = tokens
            .db()
            .run(move |conn| Ok::<_, OAuthError>(refresh_q::find(conn, hash.as_str())?))
            .await?
            .map(|(_, family)| family.scope);
        match granted {
            // An unknown token: the rotation refuses it.
            None => None,
            Some(granted) => {
                let granted = Scope::parse(&granted).map_err(AuthError::StoredScope)?;
                let requested = match params.get("scope") {
                    None => granted,
                    Some(text) => Scope::parse(text)
                        .ok()
                        .filter(|requested| requested.is_subset_of(&granted))
                        .ok_or_else(exceeds)?,
                };
                Some(apis.target(&client, &requested, resources)?)
            }
        }
    } else {
        None
    };
    let (requested, audience) = match target {
        Some(Target { audience, scope }) => (Some(scope), audience),
        None => (None, None),
    };
    let refreshed = tokens
        .refresh(
            Recipient::Client(&client),
            &presented,
            requested,
            audience.as_deref(),
        )
        .await?;
    // OIDC Core §12.2: same sub and auth_time, no nonce; §5.5: the claims the grant's request
    // asked for in the ID token again, as they are now.
    let id_token = match (
        refreshed.scope.contains("openid"),
        refreshed.rotation.grant.auth_time,
    ) {
        (true, Some(auth_time)) => {
            let user_id = refreshed.rotation.user_id.clone();
            let requested = RequestedClaims::released_from(
                refreshed.rotation.grant.requested_claims.as_deref(),
            );
            let (user, user_claims) = tokens
                .db()
                .run(move |conn| {
                    let Some(user) = user_q::find_by_id(conn, &user_id)? else {
                        return Ok::<_, OAuthError>(None);
                    };
                    let claims = standard_claims::id_token_claims(conn, &user, &requested)?;
                    Ok(Some((user, claims)))
                })
                .await?
                .ok_or_else(|| OAuthError::invalid_grant("The user no longer exists."))?;
            Some(tokens.sign_id_token(&IdTokenRequest {
                client: &client,
                user: &user,
                scope: &refreshed.scope,
                auth_time,
                nonce: None,
                sid: refreshed.rotation.grant.sid.as_deref(),
                access_token: &refreshed.access.token,
                amr: &refreshed.rotation.grant.amr,
                user_claims: &user_claims,
            })?)
        }
        _ => None,
    };
    Ok(TokenResponse {
        access_token: refreshed.access.token,
        issued_token_type: None,
        token_type: "Bearer",
        expires_in: refreshed.access.expires_in,
        scope: refreshed.scope,
        refresh_token: Some(refreshed.rotation.token.into_exposed()),
        id_token,
    })
}

/// The signing algorithm names the provider supports (discovery).
pub fn supported_algs() -> Vec<&'static str> {
    SigningAlg::ALL.iter().map(|a| a.as_str()).collect()
}
