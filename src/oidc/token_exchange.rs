//! Token exchange (RFC 8693) for delegation: a confidential client presents a token that speaks
//! for a user (the `subject_token`: one of our access tokens, or an ID token we issued to it) and,
//! optionally, one that names who acts (the `actor_token`: one of our access tokens issued to
//! it); it gets an access token for one audience it is configured to exchange for, which speaks
//! for the same user, carries `act` (RFC 8693 §4.1) and grants no more than the subject did.
//!
//! Decisions (the README's "Token exchange" section says the same for operators):
//! - Only access tokens are issued (`issued_token_type`
//!   `urn:ietf:params:oauth:token-type:access_token`, `token_type` `Bearer`), never a refresh
//!   or ID token: `requested_token_type` may only name the access-token type.
//! - A subject access token must be ours, unexpired, still current (recorded, unrevoked
//!   directly or with its grant, its user enabled: ADM-04), speak for a user, and have been
//!   issued to the caller or for an audience the caller serves (its `introspection_audiences`):
//!   a client cannot launder a token that was never presented to it.
//! - A subject ID token must be ours, unexpired, issued to the caller (`aud`), and its browser
//!   session (`sid`) still live for an enabled user. It proves who signed in and grants no API:
//!   the exchanged token carries `openid` only.
//! - An actor token must be one of our current access tokens issued to the caller (its own
//!   client-credentials token, or a user's token at it): a client cannot name another client's
//!   principal as its actor. Without one, the caller is the actor. `may_act` is not used (our
//!   tokens never carry it).
//! - Audience: one per token, the `resource` or `audience` named, else the client's first
//!   exchange audience; it must be one of the client's `token_exchange_audiences`
//!   (`invalid_target`) and, for an access-token subject, an API the subject's grant holds
//!   scopes of, or the subject token's own audience (`invalid_target`).
//! - Scope: within what the subject's grant holds (its refresh family's scope; the token's own
//!   scope when the grant is not recorded, or when the subject was itself exchanged, so a chain
//!   only narrows), what the client may have, and the audience's API (plus the OpenID scopes,
//!   never `offline_access`); a `scope` beyond that is `invalid_scope`, none means all of it.
//! - The lifetime is the usual one, cut to the subject token's remaining life.
//! - The second-factor policy (the deployment's and the client's, the stricter) applies to the
//!   subject's sign-in.
//! - The token is recorded (user, caller, the subject's grant) in the transaction that checks the
//!   subject, so revoking the subject's grant, disabling the user or logging out everywhere ends
//!   it too at every endpoint of ours.

use std::sync::Arc;

use chrono::NaiveDateTime;

use super::apis::Apis;
use super::clients::{Client, GrantType, KNOWN_SCOPES};
use super::error::OAuthError;
use super::grants::TokenResponse;
use super::params::Params;
use super::tokens::{AccessClaims, AccessRequest, GrantKind, Recipient, Subject, TokenService};
use crate::accounts::current;
use crate::accounts::factors::{self, SecondFactorPolicy};
use crate::accounts::sessions::{AccessRecord, AuthError};
use crate::db::queries::{oauth as oauth_q, users as user_q};
use crate::db::{DbConn, write_transaction};
use crate::verify::{Actor, Scope};

/// RFC 8693 §3: the type of an access token.
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// RFC 8693 §3: the type of an ID token.
pub const ID_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:id_token";

/// The longest delegation chain (`act` nested in `act`) an exchanged token may carry: a bound on
/// the token's size; a longer chain is refused (`invalid_request`).
pub const MAX_ACTORS: usize = 5;

/// The kinds of subject token accepted.
enum SubjectKind {
    /// An access token, and the user id behind its `sub` (pairwise identifiers opened back).
    Access(Box<AccessClaims<'static>>, String),
    Id {
        sub: String,
        sid: Option<String>,
        auth_time: i64,
        amr: String,
        exp: i64,
    },
}

/// The subject as the database says it is now.
struct SubjectNow {
    user_id: String,
    roles: Vec<String>,
    /// How the subject signed in (RFC 8176 methods, space-separated).
    amr: String,
    auth_time: Option<NaiveDateTime>,
    /// The grant's scope, or the token's (see the module's decisions).
    bound: Scope,
    /// The APIs the subject may be exchanged for besides those of `bound`: the subject access
    /// token's own audience.
    own_audience: Option<String>,
    /// The subject's grant (refresh family), which the exchanged token joins.
    family_id: Option<String>,
    /// The subject token's `exp`.
    exp: i64,
    /// The subject token's `act`.
    act: Option<Actor>,
}

/// What the write decided: the token's record and its claims' parts.
struct Decided {
    subject: SubjectNow,
    scope: Scope,
    actor: Actor,
    record: AccessRecord,
}

fn bad_subject(description: &str) -> OAuthError {
    OAuthError::invalid_request(description.to_owned())
}

/// The token-exchange grant (RFC 8693 §2.1) for the authenticated `client`: see the module's
/// decisions. Errors (RFC 8693 §2.2.2): `unauthorized_client` (a public client, or one not
/// allowed the grant), `invalid_request` (a parameter missing or unsupported; a subject or actor
/// token that is not acceptable), `invalid_target` (an audience the client may not exchange
/// for, or that the subject's grant does not reach), `invalid_scope` (a scope beyond the subject's
/// grant, the client or the audience).
pub async fn exchange(
    tokens: &TokenService,
    apis: Arc<Apis>,
    client: &Arc<Client>,
    params: &Params,
) -> Result<TokenResponse, OAuthError> {
    // RFC 8693 §2.1: the client authenticates; a public client holds no credential.
    if !client.confidential || !client.allows(GrantType::TokenExchange) {
        return Err(OAuthError::unauthorized_client(
            "This client may not use token exchange.",
        ));
    }
    let subject_token = params.required("subject_token")?;
    let subject_type = params.required("subject_token_type")?;
    match params.get("requested_token_type") {
        None | Some(ACCESS_TOKEN_TYPE) => {}
        Some(_) => {
            return Err(OAuthError::invalid_request(format!(
                "Only access tokens are issued: requested_token_type must be {ACCESS_TOKEN_TYPE}."
            )));
        }
    }
    // RFC 8693 §2.1: actor_token_type is REQUIRED with actor_token and MUST NOT be sent without.
    let actor_token = match (params.get("actor_token"), params.get("actor_token_type")) {
        (None, None) => None,
        (Some(token), Some(ACCESS_TOKEN_TYPE)) => Some(token),
        (Some(_), Some(_)) => {
            return Err(OAuthError::invalid_request(format!(
                "actor_token_type must be {ACCESS_TOKEN_TYPE}."
            )));
        }
        (Some(_), None) => {
            return Err(OAuthError::invalid_request(
                "actor_token_type is required with actor_token.",
            ));
        }
        (None, Some(_)) => {
            return Err(OAuthError::invalid_request(
                "actor_token_type is sent only with actor_token.",
            ));
        }
    };
    let target = target_of(client, params)?;
    let requested = params
        .get("scope")
        .map(|text| {
            Scope::parse(text).map_err(|_| OAuthError::invalid_scope("The scope is malformed."))
        })
        .transpose()?;
    let subject = match subject_type {
        ACCESS_TOKEN_TYPE => {
            let claims = tokens
                .verify_access_token(subject_token)
                .await
                .ok_or_else(|| {
                    bad_subject("The subject token is not a valid access token of this server.")
                })?;
            if claims.is_client_token() {
                return Err(bad_subject("The subject token speaks for no user."));
            }
            let entitled = claims.client_id == client.client_id.as_str()
                || client
                    .introspection_audiences
                    .iter()
                    .any(|audience| *audience == claims.aud);
            if !entitled {
                return Err(bad_subject(
                    "The subject token was neither issued to this client nor for an audience it serves.",
                ));
            }
            let user_id = tokens.user_id_of(&claims.sub).into_owned();
            SubjectKind::Access(Box::new(claims), user_id)
        }
        ID_TOKEN_TYPE => {
            let claims = tokens
                .verify_id_token_hint(subject_token)
                .await
                .ok_or_else(|| {
                    bad_subject("The subject token is not an ID token of this server.")
                })?;
            if claims.exp <= tokens.clock().now().timestamp() {
                return Err(bad_subject("The subject token has expired."));
            }
            if claims.aud != client.client_id.as_str() {
                return Err(bad_subject(
                    "The subject ID token was not issued to this client.",
                ));
            }
            SubjectKind::Id {
                sub: claims.sub.into_owned(),
                sid: claims.sid.map(std::borrow::Cow::into_owned),
                auth_time: claims.auth_time,
                amr: claims
                    .amr
                    .unwrap_or_default()
                    .iter()
                    .map(|m| m.as_ref())
                    .collect::<Vec<_>>()
                    .join(" "),
                exp: claims.exp,
            }
        }
        _ => {
            return Err(OAuthError::invalid_request(format!(
                "subject_token_type must be {ACCESS_TOKEN_TYPE} or {ID_TOKEN_TYPE}."
            )));
        }
    };
    let actor = match actor_token {
        None => None,
        Some(token) => {
            let claims = tokens.verify_access_token(token).await.ok_or_else(|| {
                OAuthError::invalid_request(
                    "The actor token is not a valid access token of this server.",
                )
            })?;
            if claims.client_id != client.client_id.as_str() {
                return Err(OAuthError::invalid_request(
                    "The actor token was not issued to this client.",
                ));
            }
            let user_id = tokens.user_id_of(&claims.sub).into_owned();
            Some((claims, user_id))
        }
    };
    let policy = tokens
        .settings()
        .second_factor
        .strictest(client.second_factor);
    let now = tokens.clock().now();
    let jti_record = tokens.access_record(now);
    let client_for_db = Arc::clone(client);
    let target_for_db = target.clone();
    let decided = tokens
        .db()
        .run(move |conn| {
            write_transaction(conn, |conn| {
                let now = now.naive_utc();
                let subject = subject_now(conn, subject, now)?;
                // No bypass: a password-only sign-in does not become a token where a second
                // factor is required.
                if policy == SecondFactorPolicy::Required && !factors::is_multi_factor(&subject.amr)
                {
                    return Err(bad_subject(
                        "The subject's sign-in had no second factor, which this client requires.",
                    ));
                }
                let actor = actor_of(conn, &client_for_db, actor, subject.act.clone())?;
                let scope = scope_of(&apis, &client_for_db, &subject, &target_for_db, requested)?;
                // RFC 8693 §2.2.1: no longer than the subject token lives.
                let expires_at = subject.exp.min(jti_record.expires_at.and_utc().timestamp());
                let Some(expires_at) = chrono::DateTime::from_timestamp(expires_at, 0) else {
                    return Err(bad_subject("The subject token has expired."));
                };
                if expires_at.naive_utc() <= now {
                    return Err(bad_subject("The subject token has expired."));
                }
                let record = AccessRecord {
                    expires_at: expires_at.naive_utc(),
                    ..jti_record
                };
                oauth_q::insert_access_token(
                    conn,
                    &record.row(
                        &subject.user_id,
                        &client_for_db.client_id,
                        subject.family_id.as_deref(),
                    ),
                )?;
                Ok::<_, OAuthError>(Decided {
                    subject,
                    scope,
                    actor,
                    record,
                })
            })
        })
        .await?;
    let Decided {
        subject,
        scope,
        actor,
        record,
    } = decided;
    let access = tokens.sign_access_token(
        &AccessRequest {
            recipient: Recipient::Client(client),
            subject: Subject::User {
                id: &subject.user_id,
                roles: &subject.roles,
                auth_time: subject.auth_time,
                amr: &subject.amr,
            },
            scope: &scope,
            audience: Some(&target),
            grant: GrantKind::TokenExchange,
            actor: Some(&actor),
        },
        &record,
    )?;
    tracing::info!(client_id = %client.client_id, user_id = %subject.user_id, actor = %actor.sub, audience = %target, "token exchanged");
    Ok(TokenResponse {
        access_token: access.token,
        issued_token_type: Some(ACCESS_TOKEN_TYPE),
        token_type: "Bearer",
        expires_in: access.expires_in,
        scope,
        refresh_token: None,
        id_token: None,
    })
}

/// The one audience of the exchanged token (RFC 8693 §2.1, RFC 8707 §2): `resource` and
/// `audience` together name at most one (`invalid_target`), else the client's first exchange
/// audience; it must be one the client may exchange for (`invalid_target`).
fn target_of(client: &Client, params: &Params) -> Result<String, OAuthError> {
    let mut named: Vec<&str> = params.resources().iter().map(String::as_str).collect();
    named.extend(params.get("audience"));
    named.dedup();
    let target = match named.as_slice() {
        [] => client.token_exchange_audiences.first().map(String::as_str),
        [one] => Some(*one),
        _ => {
            return Err(OAuthError::invalid_target_because(
                "Name one resource or audience: an access token has one audience.",
            ));
        }
    };
    match target {
        Some(target) if client.token_exchange_audiences.iter().any(|a| a == target) => {
            Ok(target.to_owned())
        }
        _ => Err(OAuthError::invalid_target_because(
            "This client may not exchange tokens for this audience.",
        )),
    }
}

/// The subject as the database says it is now (in the issuing transaction): an access token
/// current for its user (ADM-04), or an ID token whose session is live; `invalid_request`
/// otherwise.
fn subject_now(
    conn: &mut DbConn,
    subject: SubjectKind,
    now: NaiveDateTime,
) -> Result<SubjectNow, OAuthError> {
    match subject {
        SubjectKind::Access(claims, user_id) => {
            let current = match current::current_user(conn, &claims.jti, &user_id)? {
                Ok(current) => current,
                Err(why) => {
                    tracing::info!(
                        reason = why.reason(),
                        "token exchange: subject token not current"
                    );
                    return Err(bad_subject(
                        "The subject token is revoked or no longer speaks for its user.",
                    ));
                }
            };
            let grant = oauth_q::grant_of_access_token(conn, &claims.jti)?;
            // A subject that was itself exchanged is bounded by its own scope, so a chain only
            // narrows; a token of a recorded grant by the grant's scope.
            let bound = match (&grant, &claims.act) {
                (Some((_, scope)), None) => Scope::parse(scope).map_err(AuthError::StoredScope)?,
                _ => claims.scope.clone().into_owned(),
            };
            Ok(SubjectNow {
                user_id: current.user.id,
                roles: current.roles,
                amr: claims.amr.as_deref().unwrap_or_default().join(" "),
                auth_time: claims
                    .auth_time
                    .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
                    .map(|t| t.naive_utc()),
                bound,
                own_audience: Some(claims.aud.into_owned()),
                family_id: grant.map(|(family, _)| family),
                exp: claims.exp,
                act: claims.act.map(std::borrow::Cow::into_owned),
            })
        }
        SubjectKind::Id {
            sub,
            sid,
            auth_time,
            amr,
            exp,
        } => {
            // The ID token is a sign-in: it counts while that browser session does (logout,
            // logout everywhere, password change and disable end it) and its user is enabled.
            let live = match &sid {
                Some(sid) => oauth_q::session_live_by_sid(conn, sid, &sub, now)?,
                None => false,
            };
            let user = user_q::find_by_id(conn, &sub)?.filter(|u| u.disabled_at.is_none());
            let (true, Some(user)) = (live, user) else {
                tracing::info!("token exchange: subject ID token's session ended or user disabled");
                return Err(bad_subject(
                    "The subject ID token's session has ended or its user is disabled.",
                ));
            };
            let roles =
                crate::accounts::sessions::roles_of(conn, &user.id).map_err(OAuthError::from)?;
            Ok(SubjectNow {
                user_id: user.id,
                roles,
                amr,
                auth_time: chrono::DateTime::from_timestamp(auth_time, 0).map(|t| t.naive_utc()),
                // An ID token grants identity, no API.
                bound: Scope::parse("openid").unwrap_or_else(|_| Scope::empty()),
                own_audience: None,
                family_id: None,
                exp,
                act: None,
            })
        }
    }
}

/// The `act` claim (RFC 8693 §4.1): the actor token's principal (a user acting through the
/// client, or the client itself), else the client; the subject's own `act` nested inside. The
/// actor token must still be current (`invalid_request`).
fn actor_of(
    conn: &mut DbConn,
    client: &Client,
    actor_token: Option<(AccessClaims<'static>, String)>,
    earlier: Option<Actor>,
) -> Result<Actor, OAuthError> {
    let (sub, client_id) = match actor_token {
        None => (client.client_id.clone(), None),
        Some((claims, user_id)) => {
            let active = if claims.is_client_token() {
                current::client_token_active(conn, &claims.jti)?
            } else {
                current::current_user(conn, &claims.jti, &user_id)?.is_ok()
            };
            if !active {
                return Err(OAuthError::invalid_request(
                    "The actor token is revoked or no longer speaks for its user.",
                ));
            }
            let client_id = (!claims.is_client_token()).then(|| claims.client_id.to_string());
            (claims.sub.into_owned(), client_id)
        }
    };
    let actor = Actor {
        sub,
        client_id,
        act: earlier.map(Box::new),
        extra: Default::default(),
    };
    if actor.chain().count() > MAX_ACTORS {
        return Err(OAuthError::invalid_request(format!(
            "The delegation chain would exceed {MAX_ACTORS} actors."
        )));
    }
    Ok(actor)
}

/// Whether `scope` may go into a token for the API `target` (or the non-API audience
/// `target`): a scope of that API, or an OpenID scope other than `offline_access`.
fn fits_target(apis: &Apis, scope: &str, target: &str) -> bool {
    match apis.api_of(scope) {
        Some(api) => api.identifier == target,
        None => KNOWN_SCOPES.contains(&scope) && scope != "offline_access",
    }
}

/// The scope of the exchanged token (see the module's decisions); the audience must be an API
/// the subject's grant holds scopes of, or its own audience (`invalid_target`).
fn scope_of(
    apis: &Apis,
    client: &Client,
    subject: &SubjectNow,
    target: &str,
    requested: Option<Scope>,
) -> Result<Scope, OAuthError> {
    let reached = subject.own_audience.as_deref() == Some(target)
        || subject.bound.iter().any(|s| {
            apis.api_of(s)
                .is_some_and(|api| api.identifier == target)
        })
        // An ID token grants no API: its audience is the client's configuration alone.
        || subject.own_audience.is_none();
    if !reached {
        return Err(OAuthError::invalid_target_because(
            "The subject's grant does not reach this audience.",
        ));
    }
    let allowed = |s: &str| {
        subject.bound.contains(s)
            && client.scopes.iter().any(|a| a == s)
            && fits_target(apis, s, target)
    };
    match requested {
        Some(requested) => {
            if let Some(refused) = requested.iter().find(|s| !allowed(s)) {
                let why = if !subject.bound.contains(refused) {
                    "exceeds what the subject token grants"
                } else if !client.scopes.iter().any(|a| a == refused) {
                    "is not allowed for this client"
                } else {
                    "is not for the requested audience"
                };
                return Err(OAuthError::invalid_scope(format!(
                    "The scope {refused} {why}."
                )));
            }
            Ok(requested)
        }
        None => {
            let kept: Vec<&str> = subject.bound.iter().filter(|s| allowed(s)).collect();
            Ok(Scope::parse(&kept.join(" ")).unwrap_or_else(|_| Scope::empty()))
        }
    }
}
