//! Sessions of the first-party JSON API: login with throttling, refresh-token rotation with reuse
//! detection, logout, logout everywhere. Every single-use decision is a conditional UPDATE and
//! its row count inside one write transaction, so the database decides races on any number of
//! instances.

use std::net::IpAddr;
use std::time::Duration;

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{NaiveDateTime, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::password::HashError;
use crate::db::models::{RefreshFamilyRow, RefreshTokenRow, UserRow};
use crate::db::queries::{audit, devices as devices_q, refresh as q, throttle, users as user_q};
use crate::db::{DbConn, DbError, write_transaction};
use crate::keys::SignError;
use crate::state::AppState;

/// Client id of tokens issued by the first-party JSON API.
pub const FIRST_PARTY_CLIENT_ID: &str = "portcullis";
/// Scope of tokens issued by the first-party JSON API.
pub const FIRST_PARTY_SCOPE: &str = "openid profile email";

/// An opaque refresh token: 256 bits from the OS CSPRNG, base64url. Only its SHA-256 is stored.
pub struct RefreshToken(String);

impl RefreshToken {
    /// 256 fresh random bits (also used for codes and browser secrets).
    pub fn generate() -> Result<Self, AuthError> {
        let mut bytes = [0u8; 32];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(AuthError::Random)?;
        Ok(Self(URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// The token, for the response only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for RefreshToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RefreshToken(<redacted>)")
    }
}

/// The stored form of a refresh token.
pub fn token_hash(token: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes()))
}

/// Why a session operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Unknown user, wrong password or disabled account: one answer for all (LOGIN-04).
    #[error("invalid credentials")]
    InvalidCredentials,
    /// Too many attempts; retry after this many seconds.
    #[error("too many login attempts")]
    Throttled(u64),
    /// The refresh token is unknown, used, expired or revoked.
    #[error("invalid refresh token")]
    InvalidGrant,
    /// Database trouble.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The password-hashing queue is full: retry shortly (503).
    #[error("password hashing is at capacity")]
    Busy,
    /// Password hashing failed (other than a full queue); logged, never shown.
    #[error("password hashing failed: {0}")]
    Hash(#[source] HashError),
    /// Signing a token failed; logged, never shown.
    #[error("signing failed: {0}")]
    Sign(#[from] SignError),
    /// The system's random generator failed; logged, never shown.
    #[error("no randomness: {0}")]
    Random(#[source] aws_lc_rs::error::Unspecified),
}

impl From<diesel::result::Error> for AuthError {
    fn from(error: diesel::result::Error) -> Self {
        Self::Db(DbError::Query(error))
    }
}

impl From<HashError> for AuthError {
    fn from(error: HashError) -> Self {
        match error {
            HashError::Busy => Self::Busy,
            other => Self::Hash(other),
        }
    }
}

/// Tokens handed to the client.
#[derive(Debug)]
pub struct Issued {
    /// The access token (JWT).
    pub access_token: String,
    /// Seconds until it expires.
    pub expires_in: u64,
    /// The refresh token.
    pub refresh_token: RefreshToken,
    /// A device cookie to set: the login made this device trusted for the account.
    pub new_device: Option<String>,
}

/// RFC 9068 access-token claims.
#[derive(Serialize)]
struct AccessTokenClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    exp: i64,
    iat: i64,
    nbf: i64,
    jti: String,
    client_id: &'a str,
    scope: &'a str,
    roles: &'a [String],
}

fn now() -> NaiveDateTime {
    Utc::now().naive_utc()
}

fn chrono_duration(duration: Duration) -> chrono::Duration {
    chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::MAX)
}

fn sign_access_token(
    state: &AppState,
    user_id: &str,
    roles: &[String],
    grant: &'static str,
    access: &AccessRecord,
) -> Result<(String, u64), AuthError> {
    let settings = &state.token_settings;
    let ttl = settings.access_token_ttl.as_secs();
    let audience = settings
        .access_token_audience
        .as_deref()
        .unwrap_or(state.issuer.as_str());
    let claims = AccessTokenClaims {
        iss: state.issuer.as_str(),
        sub: user_id,
        aud: audience,
        exp: access.issued_at + i64::try_from(ttl).unwrap_or(i64::MAX / 2),
        iat: access.issued_at,
        nbf: access.issued_at,
        jti: access.jti.clone(),
        client_id: FIRST_PARTY_CLIENT_ID,
        scope: FIRST_PARTY_SCOPE,
        roles,
    };
    // RFC 9068 §2.1: `typ` is `at+jwt`.
    let token = state
        .signer
        .sign(settings.access_token_alg, "at+jwt", &claims)?;
    state
        .metrics
        .token_issued(grant, settings.access_token_alg.as_str());
    Ok((token, ttl))
}

/// A fresh `jti`: a random (version 4) UUID from aws-lc's userspace DRBG, which costs no system
/// call per token (uuid's own `new_v4` asks the kernel each time, one `getrandom` per token on
/// the client_credentials hot path).
pub fn new_jti() -> String {
    let mut bytes = [0u8; 16];
    if aws_lc_rs::rand::fill(&mut bytes).is_err() {
        return uuid::Uuid::new_v4().to_string();
    }
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

/// The record of an access token about to be issued for a user: its `jti`, `iat` and expiry.
/// It is stored with the grant's write, so the token counts only while the record stands (see
/// [`super::current`]).
#[derive(Debug, Clone)]
pub struct AccessRecord {
    /// The token's `jti`.
    pub jti: String,
    /// Its `iat` (seconds since the epoch).
    pub issued_at: i64,
    /// Its `exp` as a timestamp (UTC).
    pub expires_at: NaiveDateTime,
}

impl AccessRecord {
    /// A fresh record for a token that lives `ttl` from now.
    pub fn new(ttl: Duration) -> Self {
        let now = Utc::now();
        Self {
            jti: new_jti(),
            issued_at: now.timestamp(),
            expires_at: now.naive_utc() + chrono_duration(ttl),
        }
    }

    /// The row to insert for `user_id`'s token issued to `client_id` in `family_id`.
    pub fn row(
        &self,
        user_id: &str,
        client_id: &str,
        family_id: Option<&str>,
    ) -> crate::db::models::AccessTokenRow {
        crate::db::models::AccessTokenRow {
            jti: self.jti.clone(),
            family_id: family_id.map(str::to_owned),
            client_id: client_id.to_owned(),
            expires_at: self.expires_at,
            revoked_at: None,
            user_id: Some(user_id.to_owned()),
        }
    }
}

/// The roles of a user.
pub fn roles_of(conn: &mut DbConn, user_id: &str) -> Result<Vec<String>, AuthError> {
    Ok(user_q::roles_of(conn, &[user_id.to_owned()])?
        .into_iter()
        .map(|(_, role)| role)
        .collect())
}

/// What a refresh family was granted: the client, the scope and (for OAuth grants) when and in
/// which browser session the user authenticated.
#[derive(Clone, Debug)]
pub struct Grant {
    /// The client.
    pub client_id: String,
    /// Granted scope (space-separated).
    pub scope: String,
    /// Authentication time (OAuth grants).
    pub auth_time: Option<NaiveDateTime>,
    /// Browser session id (OAuth grants).
    pub sid: Option<String>,
}

impl Grant {
    /// The first-party JSON API's grant.
    pub fn first_party() -> Self {
        Self {
            client_id: FIRST_PARTY_CLIENT_ID.into(),
            scope: FIRST_PARTY_SCOPE.into(),
            auth_time: None,
            sid: None,
        }
    }
}

/// Starts a refresh-token family for `user_id` and returns its id and first token. Call in a
/// transaction.
pub fn start_family(
    conn: &mut DbConn,
    user_id: &str,
    grant: &Grant,
    absolute_ttl: Duration,
) -> Result<(String, RefreshToken), AuthError> {
    let now = now();
    let family = RefreshFamilyRow {
        id: uuid::Uuid::new_v4().to_string(),
        user_id: user_id.to_owned(),
        client_id: grant.client_id.clone(),
        scope: grant.scope.clone(),
        created_at: now,
        expires_at: now + chrono_duration(absolute_ttl),
        revoked_at: None,
        revoked_reason: None,
        auth_time: grant.auth_time,
        sid: grant.sid.clone(),
    };
    let token = RefreshToken::generate()?;
    q::insert_family(conn, &family)?;
    q::insert_token(
        conn,
        &RefreshTokenRow {
            token_hash: token_hash(token.expose()),
            family_id: family.id.clone(),
            parent_hash: None,
            created_at: now,
            used_at: None,
        },
    )?;
    Ok((family.id, token))
}

/// How long a device that signed in stays trusted (its own login budget, LOGIN-09).
pub const DEVICE_TRUST: Duration = Duration::from_secs(90 * 24 * 60 * 60);

/// Checks a password, on every path that logs a user in (JSON API, hosted login page): throttled
/// before any hashing (LOGIN-06), then one Argon2 verification (against a dummy hash for
/// unknown users, so both failures cost the same, LOGIN-04). The caller takes a success's attempt
/// back with [`Authenticated::forgive`].
///
/// The budgets (LOGIN-09), all per `PORTCULLIS_LOGIN_WINDOW`, counted atomically:
/// - a device that signed in to this account before (its device cookie, `device`) has a budget
///   of its own (`login_max_attempts`) and nothing else counts for it: failures elsewhere never
///   lock the owner's browser out;
/// - any other attempt counts on its client network (`login_max_attempts_per_ip`; an IPv6 /64),
///   and — only while that network is within budget, so a throttled client creates no more
///   state — on the account from that network (`login_max_attempts`) and on the account from
///   everywhere (`login_max_attempts_per_account`, higher: a distributed guesser is slowed to
///   that rate, while the owner on another network still gets in).
#[tracing::instrument(skip_all, fields(%client_ip))]
pub async fn authenticate(
    state: &AppState,
    login: String,
    password: Vec<u8>,
    client_ip: IpAddr,
    device: Option<String>,
) -> Result<Authenticated, AuthError> {
    let password = zeroize::Zeroizing::new(password);
    // No account name holds a NUL (Postgres text cannot): such a login is an unknown user, and
    // its throttle key drops the NULs.
    let login = login.replace('\0', "\u{fffd}");
    let lookup = login.to_lowercase();
    let device_hash = device
        .filter(|d| !d.is_empty() && d.len() <= 64)
        .map(|d| token_hash(&d));
    let settings = &state.account_settings;
    let (max_device, max_ip, max_account, window) = (
        settings.login_max_attempts,
        settings.login_max_attempts_per_ip,
        settings.login_max_attempts_per_account,
        settings.login_window,
    );
    let network = super::network::network_of(client_ip);
    // LOGIN-06: count the attempt first, atomically, so N parallel guesses are counted exactly
    // and the (N+1)th is refused before it costs a hash.
    let (user, counted, retry_after, trusted) = state
        .db
        .run(move |conn| {
            let user = user_q::find_by_login(conn, &lookup)?;
            write_transaction(conn, |conn| {
                let now = now();
                let trusted = match (&user, &device_hash) {
                    (Some(user), Some(hash)) => devices_q::trusted_for(conn, hash, &user.id, now)?,
                    _ => false,
                };
                // An existing account is throttled by its id, so its username and its email
                // share one budget; an unknown login by its text (it costs the same, so it
                // reveals nothing).
                let account = user
                    .as_ref()
                    .map_or_else(|| format!("login:{lookup}"), |u| format!("user:{}", u.id));
                let budgets: Vec<(String, u32)> = match (&device_hash, trusted) {
                    (Some(hash), true) => vec![(format!("device:{hash}"), max_device)],
                    _ => vec![
                        (format!("ip:{network}"), max_ip),
                        (format!("account-net:{account}:{network}"), max_device),
                        (format!("account:{account}"), max_account),
                    ],
                };
                let mut counted = Vec::new();
                let mut retry_after = None;
                for (key, max) in budgets {
                    retry_after = throttle::spend(conn, &key, max, chrono_duration(window), now)?;
                    counted.push(key);
                    if retry_after.is_some() {
                        // DOS-07: a throttled client creates no further throttle rows.
                        break;
                    }
                }
                Ok::<_, AuthError>((user, counted, retry_after, trusted))
            })
        })
        .await?;
    if let Some(seconds) = retry_after {
        tracing::warn!(trusted_device = trusted, "login throttled");
        state.metrics.login_refused("throttled");
        return Err(AuthError::Throttled(seconds));
    }

    let matched = state
        .hasher
        .verify(&password, user.as_ref().map(|u| u.password_hash.as_str()))
        .await?;
    let user = match user {
        Some(user) if matched && user.disabled_at.is_none() => user,
        _ => {
            state.metrics.login_refused("invalid_credentials");
            // LOGIN-07: the user id when the account exists; never the typed login (it may be a
            // password typed in the wrong field, or carry CR/LF) and never the password.
            tracing::info!(
                user_id = user.as_ref().map_or("-", |u| u.id.as_str()),
                "login failed: invalid credentials"
            );
            return Err(AuthError::InvalidCredentials);
        }
    };
    // A device that was not trusted for this account gets a new device cookie with the session.
    let new_device = if trusted {
        None
    } else {
        Some(RefreshToken::generate()?)
    };
    Ok(Authenticated {
        user,
        attempts: counted,
        new_device,
    })
}

/// A user whose password matched, and the throttle counters their attempt was counted on.
pub struct Authenticated {
    /// The user.
    pub user: UserRow,
    attempts: Vec<String>,
    new_device: Option<RefreshToken>,
}

impl Authenticated {
    /// Takes the successful attempt back (a success is not a failure), and records a new
    /// trusted device, inside the caller's transaction that also starts the session, so a login
    /// costs one write transaction.
    pub fn forgive(&self, conn: &mut DbConn) -> Result<(), diesel::result::Error> {
        for key in &self.attempts {
            throttle::uncount_attempt(conn, key)?;
        }
        if let Some(device) = &self.new_device {
            let now = now();
            devices_q::insert(
                conn,
                &token_hash(device.expose()),
                &self.user.id,
                now,
                now + chrono_duration(DEVICE_TRUST),
            )?;
        }
        Ok(())
    }

    /// The device cookie to set when this login made the device trusted (`None`: it was).
    pub fn new_device(&self) -> Option<&str> {
        self.new_device.as_ref().map(RefreshToken::expose)
    }
}

/// Logs a user in through the JSON API: [`authenticate`], then a new refresh family.
pub async fn login(
    state: &AppState,
    login: String,
    password: Vec<u8>,
    client_ip: IpAddr,
    device: Option<String>,
) -> Result<Issued, AuthError> {
    let authenticated = authenticate(state, login, password, client_ip, device).await?;
    let user = authenticated.user.clone();
    let new_device = authenticated.new_device().map(str::to_owned);

    let absolute_ttl = state.token_settings.refresh_absolute_ttl;
    let user_id = user.id.clone();
    let access = AccessRecord::new(state.token_settings.access_token_ttl);
    let record = access.clone();
    let (refresh_token, roles) = state
        .db
        .run(move |conn| {
            write_transaction(conn, |conn| {
                authenticated.forgive(conn)?;
                let (family, token) =
                    start_family(conn, &user_id, &Grant::first_party(), absolute_ttl)?;
                crate::db::queries::oauth::insert_access_token(
                    conn,
                    &record.row(&user_id, FIRST_PARTY_CLIENT_ID, Some(&family)),
                )?;
                let roles = roles_of(conn, &user_id)?;
                Ok::<_, AuthError>((token, roles))
            })
        })
        .await?;
    let (access_token, expires_in) =
        sign_access_token(state, &user.id, &roles, "password", &access)?;
    tracing::info!(user_id = %user.id, %client_ip, "login");
    Ok(Issued {
        access_token,
        expires_in,
        refresh_token,
        new_device,
    })
}

enum Rotation {
    Rotated(Refreshed),
    Reused { user_id: String, family_id: String },
    Rejected,
}

/// A successful rotation: the successor token and what the family grants.
#[derive(Debug)]
pub struct Refreshed {
    /// The successor refresh token.
    pub token: RefreshToken,
    /// The family's user.
    pub user_id: String,
    /// The user's roles.
    pub roles: Vec<String>,
    /// The family.
    pub family_id: String,
    /// What it grants.
    pub grant: Grant,
}

/// Rotates a refresh token: the presented token is marked used and its successor issued, in one
/// transaction. A token presented after it was rotated revokes its whole family (RT-03); of
/// concurrent presentations exactly one wins and the others count as reuse (RT-04). A token of
/// another client is refused and left untouched (RT-06). The access token issued with the
/// successor is recorded (`access`) in the same write.
#[tracing::instrument(skip_all)]
pub async fn rotate(
    state: &AppState,
    presented: String,
    client_id: String,
    access: AccessRecord,
) -> Result<Refreshed, AuthError> {
    let hash = token_hash(&presented);
    let idle = state.token_settings.refresh_idle_ttl;
    let grace = state.token_settings.refresh_reuse_grace;
    let outcome = state
        .db
        .run(move |conn| {
            let successor = RefreshToken::generate()?;
            let now = now();
            let issued_after = now - chrono_duration(idle);
            let successor_hash = token_hash(successor.expose());
            if let Some(rotated) = q::rotate_in_one_statement(
                conn,
                &q::RotateParams {
                    presented_hash: &hash,
                    successor_hash: &successor_hash,
                    client_id: &client_id,
                    now,
                    issued_after,
                    access_jti: &access.jti,
                    access_expires_at: access.expires_at,
                },
            )? {
                return Ok(Rotation::Rotated(Refreshed {
                    token: successor,
                    user_id: rotated.user_id,
                    roles: rotated.roles,
                    family_id: rotated.family_id,
                    grant: Grant {
                        client_id,
                        scope: rotated.scope,
                        auth_time: rotated.auth_time,
                        sid: rotated.sid,
                    },
                }));
            }
            write_transaction(conn, |conn| {
                let now = self::now();
                let Some(q::Presented {
                    token,
                    family,
                    user,
                    roles,
                }) = q::find_with_user(conn, &hash)?
                else {
                    return Ok::<_, AuthError>(Rotation::Rejected);
                };
                if family.revoked_at.is_some() || family.client_id != client_id {
                    return Ok(Rotation::Rejected);
                }
                // The presented token was issued at the family's last use (login or refresh).
                if now >= family.expires_at || now >= token.created_at + chrono_duration(idle) {
                    q::revoke_family(conn, &family.id, "expired", now)?;
                    return Ok(Rotation::Rejected);
                }
                // The conditional update decides: used before, or used concurrently, is reuse —
                // except, with a grace window, one retry of a lost response (see README).
                let fresh = token.used_at.is_none() && q::mark_used(conn, &hash, now)? == 1;
                if !fresh && !regrant_after_lost_response(conn, &token, grace, now)? {
                    q::revoke_family(conn, &family.id, "reuse", now)?;
                    audit::record(
                        conn,
                        Some(&family.user_id),
                        "refresh_token_reuse",
                        Some(&family.id),
                        None,
                        now,
                    )?;
                    return Ok(Rotation::Reused {
                        user_id: family.user_id,
                        family_id: family.id,
                    });
                }
                if user.disabled_at.is_some() {
                    q::revoke_family(conn, &family.id, "disabled", now)?;
                    return Ok(Rotation::Rejected);
                }
                q::insert_token(
                    conn,
                    &RefreshTokenRow {
                        token_hash: successor_hash,
                        family_id: family.id.clone(),
                        parent_hash: Some(hash.clone()),
                        created_at: now,
                        used_at: None,
                    },
                )?;
                crate::db::queries::oauth::insert_access_token(
                    conn,
                    &access.row(&family.user_id, &family.client_id, Some(&family.id)),
                )?;
                Ok(Rotation::Rotated(Refreshed {
                    token: successor,
                    user_id: family.user_id,
                    roles,
                    family_id: family.id,
                    grant: Grant {
                        client_id: family.client_id,
                        scope: family.scope,
                        auth_time: family.auth_time,
                        sid: family.sid,
                    },
                }))
            })
        })
        .await?;
    match outcome {
        Rotation::Rotated(refreshed) => Ok(refreshed),
        Rotation::Reused { user_id, family_id } => {
            state.metrics.refresh_reuse.inc();
            tracing::warn!(%user_id, %family_id, "refresh token reused: family revoked");
            Err(AuthError::InvalidGrant)
        }
        Rotation::Rejected => Err(AuthError::InvalidGrant),
    }
}

/// The JSON API's refresh: rotation for the first-party client, and a new access token.
pub async fn refresh(state: &AppState, presented: String) -> Result<Issued, AuthError> {
    let access = AccessRecord::new(state.token_settings.access_token_ttl);
    let refreshed = rotate(
        state,
        presented,
        FIRST_PARTY_CLIENT_ID.into(),
        access.clone(),
    )
    .await?;
    let (access_token, expires_in) = sign_access_token(
        state,
        &refreshed.user_id,
        &refreshed.roles,
        "refresh",
        &access,
    )?;
    Ok(Issued {
        access_token,
        expires_in,
        refresh_token: refreshed.token,
        new_device: None,
    })
}

/// The grace policy (`PORTCULLIS_REFRESH_REUSE_GRACE`, default 0 = off): a token rotated less
/// than `grace` ago may be presented once more, if the one successor it produced was never
/// used — the client lost the response. That successor is invalidated (presenting it later is
/// reuse) and a new one is issued. A second retry, a used successor, or a later retry is reuse.
fn regrant_after_lost_response(
    conn: &mut DbConn,
    token: &RefreshTokenRow,
    grace: Duration,
    now: NaiveDateTime,
) -> Result<bool, AuthError> {
    let within_grace = token
        .used_at
        .is_some_and(|used| !grace.is_zero() && now - used <= chrono_duration(grace));
    if !within_grace {
        return Ok(false);
    }
    let children = q::children(conn, &token.token_hash)?;
    match children.as_slice() {
        [only] if only.used_at.is_none() => Ok(q::mark_used(conn, &only.token_hash, now)? == 1),
        _ => Ok(false),
    }
}

/// Revokes the family of the presented token (whatever state it is in). Unknown tokens are
/// ignored, so logout reveals nothing about a token.
pub async fn logout(state: &AppState, presented: String) -> Result<(), AuthError> {
    let hash = token_hash(&presented);
    state
        .db
        .run(move |conn| {
            write_transaction(conn, |conn| {
                if let Some((_, family)) = q::find(conn, &hash)? {
                    let now = now();
                    if q::revoke_family(conn, &family.id, "logout", now)? == 1 {
                        audit::record(
                            conn,
                            Some(&family.user_id),
                            "logout",
                            Some(&family.id),
                            None,
                            now,
                        )?;
                    }
                }
                Ok::<_, AuthError>(())
            })
        })
        .await
}

/// Revokes everything that speaks for the user — refresh families, access tokens, browser
/// sessions (`reason`: `logout_all`, `password_change`, `disabled`, `admin_revoked`) — and
/// records it as done by `actor` (the user, an administrator's id, or `cli`). Composable inside
/// another transaction.
pub fn revoke_all(
    conn: &mut DbConn,
    user_id: &str,
    reason: &str,
    actor: &str,
) -> Result<usize, diesel::result::Error> {
    let now = now();
    let revoked = super::current::revoke_everything(conn, user_id, reason, now)?;
    audit::record(conn, Some(actor), reason, Some(user_id), None, now)?;
    Ok(revoked)
}

/// Logout everywhere.
pub async fn logout_all(state: &AppState, user_id: String) -> Result<usize, AuthError> {
    state
        .db
        .run(move |conn| {
            write_transaction(conn, |conn| {
                Ok::<_, AuthError>(revoke_all(conn, &user_id, "logout_all", &user_id)?)
            })
        })
        .await
}
