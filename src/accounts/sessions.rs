//! Sessions: password checks with throttling (every path that logs a user in), refresh-token
//! families (start, rotation with reuse detection, logout) and logging out everywhere. Every
//! single-use decision is a conditional UPDATE and its row count inside one write transaction,
//! so the database decides races on any number of instances. The tokens themselves are issued
//! by `oidc::tokens`; this module never signs.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDateTime;

use super::AccountSettings;
use super::password::{HashError, PasswordHasher};
use crate::clock::Clock;
use crate::db::models::{RefreshFamilyRow, RefreshTokenRow, UserRow};
use crate::db::queries::{audit, devices as devices_q, refresh as q, throttle, users as user_q};
use crate::db::{Db, DbConn, DbError, write_transaction};
use crate::keys::SignError;
use crate::metrics::Metrics;
use crate::secrets::{DeviceSecret, NoRandomness, RefreshToken};
use crate::verify::{InvalidScope, Scope};

/// Client id of tokens issued by the first-party JSON API.
pub const FIRST_PARTY_CLIENT_ID: &str = "portcullis";
/// Scope of tokens issued by the first-party JSON API.
pub const FIRST_PARTY_SCOPE: &str = "openid profile email";

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
    #[error(transparent)]
    Random(#[from] NoRandomness),
    /// A scope read back from the database does not parse (a corrupt row); logged, never shown.
    #[error("a stored scope is not a scope: {0}")]
    StoredScope(#[source] InvalidScope),
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

fn chrono_duration(duration: Duration) -> chrono::Duration {
    chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::MAX)
}

/// The lifetimes of refresh families and the reuse grace (`PORTCULLIS_REFRESH_*`).
#[derive(Clone, Copy, Debug)]
pub struct RefreshPolicy {
    /// A token unused for this long expires (the family's idle lifetime).
    pub idle_ttl: Duration,
    /// A family ends this long after its login or grant, whatever its use.
    pub absolute_ttl: Duration,
    /// How long a rotated token may be presented once more after a lost response (0: never).
    pub reuse_grace: Duration,
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
    /// The record of a token `jti` issued at `now` that lives `ttl`.
    pub fn new(jti: String, now: chrono::DateTime<chrono::Utc>, ttl: Duration) -> Self {
        Self {
            jti,
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
            requested_claims: None,
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
    /// Granted scope.
    pub scope: Scope,
    /// Authentication time (OAuth grants).
    pub auth_time: Option<NaiveDateTime>,
    /// Browser session id (OAuth grants).
    pub sid: Option<String>,
    /// The claims the grant's authorization request asked for individually (OIDC Core §5.5),
    /// as `oidc::claims_request` stores them; opaque here.
    pub requested_claims: Option<String>,
    /// How the user signed in (RFC 8176 methods, space-separated): every token of the grant
    /// carries it.
    pub amr: String,
}

impl Grant {
    /// The first-party JSON API's grant of a login by the methods `amr`.
    pub fn first_party(amr: &str) -> Self {
        Self {
            client_id: FIRST_PARTY_CLIENT_ID.into(),
            scope: first_party_scope(),
            auth_time: None,
            sid: None,
            requested_claims: None,
            amr: amr.to_owned(),
        }
    }
}

/// [`FIRST_PARTY_SCOPE`], parsed.
pub fn first_party_scope() -> Scope {
    Scope::parse(FIRST_PARTY_SCOPE).unwrap_or_default()
}

/// A scope read back from the database (written there from a parsed [`Scope`]).
fn stored_scope(text: &str) -> Result<Scope, AuthError> {
    Scope::parse(text).map_err(AuthError::StoredScope)
}

/// Starts a refresh-token family for `user_id` at `now` and returns its id and first token.
/// Call in a transaction.
pub fn start_family(
    conn: &mut DbConn,
    user_id: &str,
    grant: &Grant,
    absolute_ttl: Duration,
    now: NaiveDateTime,
) -> Result<(String, RefreshToken), AuthError> {
    let family = RefreshFamilyRow {
        id: uuid::Uuid::new_v4().to_string(),
        user_id: user_id.to_owned(),
        client_id: grant.client_id.clone(),
        scope: grant.scope.as_str().to_owned(),
        created_at: now,
        expires_at: now + chrono_duration(absolute_ttl),
        revoked_at: None,
        revoked_reason: None,
        auth_time: grant.auth_time,
        sid: grant.sid.clone(),
        requested_claims: grant.requested_claims.clone(),
        amr: grant.amr.clone(),
    };
    let token = RefreshToken::generate()?;
    q::insert_family(conn, &family)?;
    q::insert_token(
        conn,
        &RefreshTokenRow {
            token_hash: token.hash().into_string(),
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

/// Checks passwords on every path that logs a user in (JSON API, hosted login page). Cheap to
/// clone.
#[derive(Clone)]
pub struct Authenticator {
    db: Db,
    hasher: PasswordHasher,
    settings: AccountSettings,
    clock: Clock,
    metrics: Arc<Metrics>,
}

impl Authenticator {
    /// An authenticator over `db` with the login budgets of `settings`; refusals are counted
    /// in `metrics`.
    pub fn new(
        db: Db,
        hasher: PasswordHasher,
        settings: AccountSettings,
        clock: Clock,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            db,
            hasher,
            settings,
            clock,
            metrics,
        }
    }

    /// Checks a password: throttled before any hashing (LOGIN-06), then one Argon2 verification
    /// (against a dummy hash for unknown users, so both failures cost the same, LOGIN-04). The
    /// caller takes a success's attempt back with [`Authenticated::forgive`].
    ///
    /// The budgets (LOGIN-09), all per `PORTCULLIS_LOGIN_WINDOW`, counted atomically:
    /// - a device that signed in to this account before (its device cookie, `device`) has a
    ///   budget of its own (`login_max_attempts`) and nothing else counts for it: failures
    ///   elsewhere never lock the owner's browser out;
    /// - any other attempt counts on its client network (`login_max_attempts_per_ip`; an IPv6
    ///   /64), and — only while that network is within budget, so a throttled client creates no
    ///   more state — on the account from that network (`login_max_attempts`) and on the account
    ///   from everywhere (`login_max_attempts_per_account`, higher: a distributed guesser is
    ///   slowed to that rate, while the owner on another network still gets in).
    #[tracing::instrument(skip_all, fields(%client_ip))]
    pub async fn authenticate(
        &self,
        login: String,
        password: Vec<u8>,
        client_ip: IpAddr,
        device: Option<String>,
    ) -> Result<Authenticated, AuthError> {
        let password = zeroize::Zeroizing::new(password);
        // No account name holds a NUL (Postgres text cannot): such a login is an unknown user,
        // and its throttle key drops the NULs.
        let login = login.replace('\0', "\u{fffd}");
        let lookup = login.to_lowercase();
        // The same account whichever IDNA form of its email domain is typed.
        let keys = super::names::login_keys(&login);
        let device_hash = device
            .filter(|d| !d.is_empty() && d.len() <= 64)
            .map(|d| DeviceSecret::presented(d).hash());
        let settings = &self.settings;
        let (max_device, max_ip, max_account, window) = (
            settings.login_max_attempts,
            settings.login_max_attempts_per_ip,
            settings.login_max_attempts_per_account,
            settings.login_window,
        );
        let network = super::network::network_of(client_ip);
        let now = self.clock.now_naive();
        // LOGIN-06: count the attempt first, atomically, so N parallel guesses are counted
        // exactly and the (N+1)th is refused before it costs a hash.
        let (user, counted, retry_after, trusted) = self
            .db
            .run(move |conn| {
                let user = user_q::find_by_login(conn, &keys)?;
                write_transaction(conn, |conn| {
                    let trusted = match (&user, &device_hash) {
                        (Some(user), Some(hash)) => {
                            devices_q::trusted_for(conn, hash.as_str(), &user.id, now)?
                        }
                        _ => false,
                    };
                    // An existing account is throttled by its id, so its username and its email
                    // share one budget; an unknown login by its text (it costs the same, so it
                    // reveals nothing).
                    let account = user
                        .as_ref()
                        .map_or_else(|| format!("login:{lookup}"), |u| format!("user:{}", u.id));
                    let budgets: Vec<(String, u32)> = match (&device_hash, trusted) {
                        (Some(hash), true) => {
                            vec![(format!("device:{}", hash.as_str()), max_device)]
                        }
                        _ => vec![
                            (format!("ip:{network}"), max_ip),
                            (format!("account-net:{account}:{network}"), max_device),
                            (format!("account:{account}"), max_account),
                        ],
                    };
                    let mut counted = Vec::new();
                    let mut retry_after = None;
                    for (key, max) in budgets {
                        retry_after =
                            throttle::spend(conn, &key, max, chrono_duration(window), now)?;
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
            self.metrics.login_refused("throttled");
            return Err(AuthError::Throttled(seconds));
        }

        let matched = self
            .hasher
            .verify(&password, user.as_ref().map(|u| u.password_hash.as_str()))
            .await?;
        let user = match user {
            Some(user) if matched && user.disabled_at.is_none() => user,
            _ => {
                self.metrics.login_refused("invalid_credentials");
                // LOGIN-07: the user id when the account exists; never the typed login (it may
                // be a password typed in the wrong field, or carry CR/LF) and never the password.
                tracing::info!(
                    user_id = user.as_ref().map_or("-", |u| u.id.as_str()),
                    "login failed: invalid credentials"
                );
                return Err(AuthError::InvalidCredentials);
            }
        };
        // A device that was not trusted for this account gets a new device cookie with the
        // session.
        let new_device = if trusted {
            None
        } else {
            Some(DeviceSecret::generate()?)
        };
        Ok(Authenticated {
            user,
            attempts: counted,
            new_device,
            at: self.clock.now_naive(),
        })
    }
}

/// A user whose password matched, and the throttle counters their attempt was counted on.
pub struct Authenticated {
    /// The user.
    pub user: UserRow,
    attempts: Vec<String>,
    new_device: Option<DeviceSecret>,
    at: NaiveDateTime,
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
            devices_q::insert(
                conn,
                device.hash().as_str(),
                &self.user.id,
                self.at,
                self.at + chrono_duration(DEVICE_TRUST),
            )?;
        }
        Ok(())
    }

    /// The device cookie to set when this login made the device trusted (`None`: it was).
    pub fn new_device(&self) -> Option<&str> {
        self.new_device.as_ref().map(DeviceSecret::expose)
    }

    /// [`Authenticated::new_device`], as the secret it is.
    pub fn new_device_secret(&self) -> Option<DeviceSecret> {
        self.new_device.clone()
    }
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

/// Rotates a refresh token at `now`: the presented token is marked used and its successor
/// issued, in one transaction. A token presented after it was rotated revokes its whole family
/// (RT-03); of concurrent presentations exactly one wins and the others count as reuse (RT-04).
/// A token of another client is refused and left untouched (RT-06). The access token issued
/// with the successor is recorded (`access`) in the same write.
#[tracing::instrument(skip_all)]
pub async fn rotate(
    db: &Db,
    policy: RefreshPolicy,
    now: NaiveDateTime,
    presented: &RefreshToken,
    client_id: String,
    access: AccessRecord,
    metrics: &Metrics,
) -> Result<Refreshed, AuthError> {
    let hash = presented.hash();
    let RefreshPolicy {
        idle_ttl: idle,
        reuse_grace: grace,
        ..
    } = policy;
    let outcome = db
        .run(move |conn| {
            let successor = RefreshToken::generate()?;
            let issued_after = now - chrono_duration(idle);
            let successor_hash = successor.hash();
            if let Some(rotated) = q::rotate_in_one_statement(
                conn,
                &q::RotateParams {
                    presented_hash: hash.as_str(),
                    successor_hash: successor_hash.as_str(),
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
                        scope: stored_scope(&rotated.scope)?,
                        auth_time: rotated.auth_time,
                        sid: rotated.sid,
                        requested_claims: rotated.requested_claims,
                        amr: rotated.amr,
                    },
                }));
            }
            write_transaction(conn, |conn| {
                let Some(q::Presented {
                    token,
                    family,
                    user,
                    roles,
                }) = q::find_with_user(conn, hash.as_str())?
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
                let fresh = token.used_at.is_none() && q::mark_used(conn, hash.as_str(), now)? == 1;
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
                        token_hash: successor_hash.into_string(),
                        family_id: family.id.clone(),
                        parent_hash: Some(hash.as_str().to_owned()),
                        created_at: now,
                        used_at: None,
                    },
                )?;
                crate::db::queries::oauth::insert_access_token(
                    conn,
                    &access.row(&family.user_id, &family.client_id, Some(&family.id)),
                )?;
                let scope = stored_scope(&family.scope)?;
                Ok(Rotation::Rotated(Refreshed {
                    token: successor,
                    user_id: family.user_id,
                    roles,
                    family_id: family.id,
                    grant: Grant {
                        client_id: family.client_id,
                        scope,
                        auth_time: family.auth_time,
                        sid: family.sid,
                        requested_claims: family.requested_claims,
                        amr: family.amr,
                    },
                }))
            })
        })
        .await?;
    match outcome {
        Rotation::Rotated(refreshed) => Ok(refreshed),
        Rotation::Reused { user_id, family_id } => {
            metrics.refresh_reuse.inc();
            tracing::warn!(%user_id, %family_id, "refresh token reused: family revoked");
            Err(AuthError::InvalidGrant)
        }
        Rotation::Rejected => Err(AuthError::InvalidGrant),
    }
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

/// Revokes the family of the presented token (whatever state it is in) at `now`. Unknown
/// tokens are ignored, so logout reveals nothing about a token.
pub async fn logout(
    db: &Db,
    now: NaiveDateTime,
    presented: &RefreshToken,
) -> Result<(), AuthError> {
    let hash = presented.hash();
    db.run(move |conn| {
        write_transaction(conn, |conn| {
            if let Some((_, family)) = q::find(conn, hash.as_str())?
                && q::revoke_family(conn, &family.id, "logout", now)? == 1
            {
                audit::record(
                    conn,
                    Some(&family.user_id),
                    "logout",
                    Some(&family.id),
                    None,
                    now,
                )?;
            }
            Ok::<_, AuthError>(())
        })
    })
    .await
}

/// Revokes everything that speaks for the user — refresh families, access tokens, browser
/// sessions (`reason`: `logout_all`, `password_change`, `disabled`, `admin_revoked`) — and
/// records it as done by `actor` (the user, an administrator's id, or `cli`) at `now`.
/// Composable inside another transaction.
pub fn revoke_all(
    conn: &mut DbConn,
    user_id: &str,
    reason: &str,
    actor: &str,
    now: NaiveDateTime,
) -> Result<usize, diesel::result::Error> {
    let revoked = super::current::revoke_everything(conn, user_id, reason, now)?;
    audit::record(conn, Some(actor), reason, Some(user_id), None, now)?;
    Ok(revoked)
}

/// Logout everywhere, at `now`.
pub async fn logout_all(db: &Db, now: NaiveDateTime, user_id: String) -> Result<usize, AuthError> {
    db.run(move |conn| {
        write_transaction(conn, |conn| {
            Ok::<_, AuthError>(revoke_all(conn, &user_id, "logout_all", &user_id, now)?)
        })
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_party_scope_parses_to_its_text() {
        assert_eq!(first_party_scope().as_str(), FIRST_PARTY_SCOPE);
        assert_eq!(Grant::first_party("pwd").scope.as_str(), FIRST_PARTY_SCOPE);
    }
}
