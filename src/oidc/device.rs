//! The device authorization grant (RFC 8628): the device authorization endpoint's decision
//! (§3.1, §3.2), the user's side at the verification page (§3.3: a user code looked up under a
//! guessing budget, §5.1; then approved or denied), and the token endpoint's polling answers
//! and single redemption (§3.4, §3.5). The pages and the endpoint's HTTP are `http::device`'s.
//!
//! Decisions (the RFC leaves them to the server): a request lives [`DEVICE_CODE_TTL`]; the
//! device polls every [`POLL_INTERVAL_SECS`], five more after each `slow_down`; a client asks
//! for at most [`MAX_PER_CLIENT`] requests a minute, [`MAX_PER_CLIENT_NETWORK`] of them from one
//! network; a user may type [`MAX_WRONG_CODES_PER_USER`] wrong codes per login throttling
//! window (`PORTCULLIS_LOGIN_WINDOW`, 15 minutes by default), a network
//! [`MAX_WRONG_CODES_PER_NETWORK`]. The device code is 256
//! random bits; the user code eight symbols of twenty (about 2^34.6), both stored as hashes.
//! The grant belongs to no browser session (no `sid`): signing out of the browser that approved
//! it leaves the device signed in; withdrawing the client's consent on the account page ends it.

use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDateTime;
use diesel::Connection;
use serde::Serialize;

use super::apis::Apis;
use super::authorize::checks::check_scope;
use super::claims_request::RequestedClaims;
use super::clients::{Client, GrantType};
use super::consent::{self, Approval};
use super::error::OAuthError;
use super::grants::{self, Redemption, TokenResponse, UserGrant};
use super::params::Params;
use super::tokens::{GrantKind, TokenService};
use crate::accounts::sessions::AuthError;
use crate::db::models::DeviceAuthorizationRow;
use crate::db::queries::device_authorizations::{self as q, APPROVED, DENIED, PENDING};
use crate::db::queries::{audit, oauth as oauth_q, throttle};
use crate::db::{Db, DbConn, DbError, write_transaction};
use crate::secrets::{DeviceCode, UserCode};
use crate::verify::Scope;

/// How long a device authorization request (its device and user codes) lives: 10 minutes.
pub const DEVICE_CODE_TTL: Duration = Duration::from_secs(600);

/// The polling interval a device starts with, in seconds (RFC 8628 §3.2's default).
pub const POLL_INTERVAL_SECS: i32 = 5;

/// What each `slow_down` adds to the interval, in seconds (RFC 8628 §3.5).
pub const SLOW_DOWN_STEP_SECS: i32 = 5;

/// The verification page, relative to the issuer (`verification_uri`).
pub const VERIFICATION_PATH: &str = "/device";

/// Device authorization requests one client may make per minute, from anywhere: bounds the
/// rows one client (its credentials, or a public client's id) can make the server keep.
pub const MAX_PER_CLIENT: u32 = 600;

/// Device authorization requests one client may make per minute from one network (an IPv4
/// address, an IPv6 /64).
pub const MAX_PER_CLIENT_NETWORK: u32 = 30;

/// Wrong user codes one signed-in user may type per login throttling window (RFC 8628 §5.1).
pub const MAX_WRONG_CODES_PER_USER: u32 = 10;

/// Wrong user codes one network may type per login throttling window, whoever is signed in.
pub const MAX_WRONG_CODES_PER_NETWORK: u32 = 30;

/// How many fresh user codes are drawn when one collides with a stored one.
const USER_CODE_DRAWS: usize = 5;

/// The device authorization response (RFC 8628 §3.2). `Debug` leaves the codes out.
#[derive(Serialize)]
pub struct DeviceAuthorization {
    /// The device code the device polls with.
    pub device_code: String,
    /// The user code, `XXXX-XXXX`.
    pub user_code: String,
    /// The verification page.
    pub verification_uri: String,
    /// The verification page with the user code filled in (it still asks for confirmation).
    pub verification_uri_complete: String,
    /// Seconds until both codes expire.
    pub expires_in: u64,
    /// Seconds the device waits between token requests.
    pub interval: u64,
}

impl std::fmt::Debug for DeviceAuthorization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceAuthorization")
            .field("device_code", &"<redacted>")
            .field("user_code", &"<redacted>")
            .field("expires_in", &self.expires_in)
            .field("interval", &self.interval)
            .finish()
    }
}

fn chrono_duration(duration: Duration) -> chrono::Duration {
    chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::MAX)
}

/// The device authorization endpoint (RFC 8628 §3.1, §3.2) for an authenticated `client`, from
/// `network` at `now`: the client must be allowed the grant (`unauthorized_client`); `scope`
/// is required and allowed to the client (`invalid_scope`, as at the authorization endpoint);
/// a `resource` (RFC 8707) must fit it (`invalid_target`); the client's budgets hold (429
/// `slow_down`). Stores the request with both codes hashed; answers them in clear, once.
///
/// # Errors
/// The refusals above, or a database or randomness failure (`server_error`,
/// `temporarily_unavailable`).
pub async fn start(
    db: &Db,
    apis: &Apis,
    client: &Client,
    params: &Params,
    issuer: &str,
    network: &str,
    now: NaiveDateTime,
) -> Result<DeviceAuthorization, OAuthError> {
    grants::permit(client, GrantType::DeviceCode)?;
    let as_oauth = |error: super::authorize::AuthorizationError| {
        OAuthError::from_code(error.code, error.description)
    };
    let scope = check_scope(params, client).map_err(as_oauth)?;
    let resources = params.resources();
    apis.check_authorization_resource(client, &scope, resources)
        .map_err(as_oauth)?;
    let device_code = DeviceCode::generate().map_err(OAuthError::internal)?;
    let mut row = DeviceAuthorizationRow {
        id: uuid::Uuid::new_v4().to_string(),
        device_code_hash: device_code.hash().into_string(),
        user_code_hash: String::new(),
        client_id: client.client_id.clone(),
        scope: scope.as_str().to_owned(),
        resource: resources.first().cloned(),
        status: PENDING.to_owned(),
        user_id: None,
        auth_time: None,
        amr: None,
        interval_secs: POLL_INTERVAL_SECS,
        last_polled_at: None,
        created_at: now,
        expires_at: now + chrono_duration(DEVICE_CODE_TTL),
        decided_at: None,
        used_at: None,
        family_id: None,
        access_jti: None,
    };
    let keys = [
        (
            format!("device_authorization:{}", client.client_id),
            MAX_PER_CLIENT,
        ),
        (
            format!("device_authorization:{}:{network}", client.client_id),
            MAX_PER_CLIENT_NETWORK,
        ),
    ];
    let user_code = db
        .run(move |conn| {
            write_transaction(conn, |conn| {
                for (key, max) in &keys {
                    if throttle::spend(conn, key, *max, chrono::Duration::minutes(1), now)?
                        .is_some()
                    {
                        return Ok(Err(OAuthError::too_many_requests(
                            "Too many device authorization requests from this client; wait a minute.",
                        )));
                    }
                }
                insert_with_fresh_user_code(conn, &mut row).map(Ok)
            })
        })
        .await
        .map_err(|error: InsertError| match error {
            InsertError::Db(error) => OAuthError::from(error),
            InsertError::NoRandomness => OAuthError::internal("no randomness"),
            InsertError::NoFreeCode => OAuthError::internal("no free user code"),
        })??;
    tracing::info!(client_id = %client.client_id, "device authorization started");
    let verification_uri = format!("{issuer}{VERIFICATION_PATH}");
    let shown = user_code.display();
    Ok(DeviceAuthorization {
        device_code: device_code.into_exposed(),
        verification_uri_complete: format!("{verification_uri}?user_code={shown}"),
        user_code: shown,
        verification_uri,
        expires_in: DEVICE_CODE_TTL.as_secs(),
        interval: POLL_INTERVAL_SECS.unsigned_abs().into(),
    })
}

/// Why a device authorization could not be stored.
#[derive(Debug)]
enum InsertError {
    Db(DbError),
    NoRandomness,
    NoFreeCode,
}

impl From<DbError> for InsertError {
    fn from(error: DbError) -> Self {
        Self::Db(error)
    }
}

impl From<diesel::result::Error> for InsertError {
    fn from(error: diesel::result::Error) -> Self {
        Self::Db(DbError::Query(error))
    }
}

/// Inserts `row` with a fresh user code, drawing again when the code's hash is taken (the
/// unique index decides; each attempt in a savepoint, so a collision does not abort the
/// transaction): the code.
fn insert_with_fresh_user_code(
    conn: &mut DbConn,
    row: &mut DeviceAuthorizationRow,
) -> Result<UserCode, InsertError> {
    for _ in 0..USER_CODE_DRAWS {
        let user_code = UserCode::generate().map_err(|_| InsertError::NoRandomness)?;
        row.user_code_hash = user_code.hash().into_string();
        match conn.transaction(|conn| q::insert(conn, row)) {
            Ok(_) => return Ok(user_code),
            Err(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _,
            )) => {}
            Err(other) => return Err(other.into()),
        }
    }
    Err(InsertError::NoFreeCode)
}

/// A pending device authorization the user found by its code: what the confirmation page
/// shows.
#[derive(Clone, Debug)]
pub struct PendingDevice {
    /// The request's id.
    pub id: String,
    /// The client (the device's application).
    pub client_id: String,
    /// The requested scope.
    pub scope: Scope,
    /// The code as the user should see it, `XXXX-XXXX`.
    pub user_code: String,
}

/// What the verification page learns of a typed user code.
#[derive(Debug)]
pub enum Lookup {
    /// A pending, unexpired request.
    Found(PendingDevice),
    /// No such code, or it expired or was decided: one answer for all (no oracle).
    NotFound,
    /// Too many wrong codes from this user or network: retry after this many seconds.
    Throttled(u64),
}

/// Looks up the code `typed` (RFC 8628 §6.1: case-insensitive, dashes ignored) for the signed-in
/// `user_id` from `network`. Every lookup is counted on the user's and the network's budgets of
/// `window` (the login throttling window: the janitor keeps throttle rows that long) first and
/// a found code is taken back, so wrong codes are what is counted (§5.1, as failed logins are);
/// a spent budget refuses even a right code until its window ends.
///
/// # Errors
/// A database failure.
pub async fn look_up(
    db: &Db,
    typed: &str,
    user_id: &str,
    network: &str,
    window: Duration,
    now: NaiveDateTime,
) -> Result<Lookup, DbError> {
    let code = UserCode::presented(typed);
    let keys = [
        (
            format!("user_code:user:{user_id}"),
            MAX_WRONG_CODES_PER_USER,
        ),
        (
            format!("user_code:network:{network}"),
            MAX_WRONG_CODES_PER_NETWORK,
        ),
    ];
    let window = chrono_duration(window);
    db.run(move |conn| {
        write_transaction(conn, |conn| {
            let mut wait = None;
            for (key, max) in &keys {
                if let Some(seconds) = throttle::spend(conn, key, *max, window, now)? {
                    wait = Some(wait.map_or(seconds, |w: u64| w.max(seconds)));
                }
            }
            if let Some(seconds) = wait {
                return Ok(Lookup::Throttled(seconds));
            }
            let Some(code) = code else {
                return Ok(Lookup::NotFound);
            };
            let found = q::find_by_user_code(conn, code.hash().as_str())?
                .filter(|row| row.status == PENDING && now < row.expires_at);
            let Some(row) = found else {
                return Ok(Lookup::NotFound);
            };
            let Ok(scope) = Scope::parse(&row.scope) else {
                return Ok(Lookup::NotFound);
            };
            for (key, _) in &keys {
                throttle::uncount_attempt(conn, key)?;
            }
            Ok::<_, DbError>(Lookup::Found(PendingDevice {
                id: row.id,
                client_id: row.client_id,
                scope,
                user_code: code.display(),
            }))
        })
    })
    .await
}

/// The signed-in user deciding a device authorization: who, and how and when they signed in
/// (their browser session's), which the device's tokens carry (`auth_time`, `amr`, `acr`).
#[derive(Clone, Debug)]
pub struct Decider {
    /// The user.
    pub user_id: String,
    /// When they authenticated.
    pub auth_time: NaiveDateTime,
    /// How (RFC 8176 methods, space-separated).
    pub amr: String,
}

/// Records `decider`'s answer to the pending request `device` at `now`: approved (the client's
/// consent is remembered with it, in the same transaction, so the grant is listed and
/// withdrawable on the account page) or denied. `false` when it was decided meanwhile or
/// expired.
///
/// # Errors
/// A database failure.
pub async fn decide(
    db: &Db,
    device: PendingDevice,
    decider: Decider,
    approve: bool,
    now: NaiveDateTime,
) -> Result<bool, DbError> {
    db.run(move |conn| {
        write_transaction(conn, |conn| {
            let status = if approve { APPROVED } else { DENIED };
            let user = (
                decider.user_id.as_str(),
                decider.auth_time,
                decider.amr.as_str(),
            );
            if q::decide(conn, &device.id, status, user, now)? != 1 {
                return Ok::<_, DbError>(false);
            }
            if approve {
                consent::record(
                    conn,
                    &decider.user_id,
                    &device.client_id,
                    Approval {
                        scope: &device.scope,
                        claims: &RequestedClaims::default(),
                    },
                    now,
                )?;
            }
            let action = if approve {
                "device_authorization_approved"
            } else {
                "device_authorization_denied"
            };
            audit::record(
                conn,
                Some(&decider.user_id),
                action,
                Some(&device.client_id),
                None,
                now,
            )?;
            Ok(true)
        })
    })
    .await
}

/// The token endpoint's `urn:ietf:params:oauth:grant-type:device_code` (RFC 8628 §3.4, §3.5)
/// for an authenticated `client`: `invalid_grant` for an unknown code or another client's;
/// `expired_token` after [`DEVICE_CODE_TTL`]; `access_denied` once the user denied;
/// `authorization_pending` while the user has not decided, or `slow_down` (the interval grown
/// by [`SLOW_DOWN_STEP_SECS`] for this and every later request) when the device polls sooner
/// than its interval; once approved, the tokens, once: a conditional update decides concurrent
/// requests, and a code presented again is `invalid_grant` and revokes what it issued. The
/// access token is for the `resource` of the token request, else of the device request (RFC
/// 8707), refused before the code is spent.
///
/// # Errors
/// The answers above, or a database or signing failure.
pub async fn device_code(
    tokens: &TokenService,
    apis: Arc<Apis>,
    client: Arc<Client>,
    params: &Params,
) -> Result<TokenResponse, OAuthError> {
    grants::permit(&client, GrantType::DeviceCode)?;
    let hash = DeviceCode::presented(params.required("device_code")?).hash();
    let resources = params.resources().to_vec();
    let absolute_ttl = tokens.settings().refresh_absolute_ttl;
    let now = tokens.clock().now();
    let record = tokens.access_record(now);
    let stored = record.clone();
    let client_for_db = Arc::clone(&client);
    let now = now.naive_utc();
    let answer = tokens
        .db()
        .run(move |conn| {
            write_transaction(conn, |conn| {
                poll(
                    conn,
                    &client_for_db,
                    &apis,
                    hash.as_str(),
                    &resources,
                    (absolute_ttl, &stored),
                    now,
                )
            })
        })
        .await?;
    match answer? {
        Redemption::Issued(issued) => {
            grants::sign_issued(tokens, &client, *issued, &record, GrantKind::DeviceCode)
        }
        Redemption::Refused(why) => Err(OAuthError::invalid_grant(why)),
    }
}

/// One token request for a device code, inside the caller's transaction. The outer error rolls
/// the transaction back (a failure, a refused resource); the inner one is the answer to a
/// request whose effects (the poll, a replay's revocation) are kept.
fn poll(
    conn: &mut DbConn,
    client: &Client,
    apis: &Apis,
    hash: &str,
    resources: &[String],
    issue: (Duration, &crate::accounts::sessions::AccessRecord),
    now: NaiveDateTime,
) -> Result<Result<Redemption, OAuthError>, OAuthError> {
    let (absolute_ttl, access) = issue;
    let Some(row) = q::find_by_device_code(conn, hash)? else {
        return Ok(Ok(Redemption::Refused("The device code is invalid.")));
    };
    // Another client's code is refused and left as it is: it is the device's, not the caller's.
    if row.client_id != client.client_id {
        tracing::warn!(client_id = %client.client_id, "device code of another client presented");
        return Ok(Ok(Redemption::Refused(
            "The device code was issued to another client.",
        )));
    }
    if row.used_at.is_some() {
        // A device code is spent once; presented again, it may have been stolen: what it
        // issued is revoked (as for an authorization code, CODE-01).
        if let Some(family) = row.family_id.as_deref() {
            oauth_q::revoke_grant(conn, family, "device_code_replay", now)?;
        }
        if let Some(jti) = row.access_jti.as_deref() {
            oauth_q::revoke_access_token(conn, jti, &row.client_id, row.expires_at, now)?;
        }
        audit::record(
            conn,
            row.user_id.as_deref(),
            "device_code_replay",
            Some(&row.client_id),
            None,
            now,
        )?;
        tracing::warn!(client_id = %row.client_id, "device code replayed: its grant is revoked");
        return Ok(Ok(Redemption::Refused("The device code was already used.")));
    }
    if now >= row.expires_at {
        return Ok(Err(OAuthError::expired_token()));
    }
    match row.status.as_str() {
        DENIED => {
            return Ok(Err(OAuthError::access_denied(
                "The user denied the request.",
            )));
        }
        APPROVED => {}
        _ => {
            // RFC 8628 §3.5: polled sooner than the interval allows, the interval grows by
            // five seconds for this and every later request.
            let too_soon = row.last_polled_at.is_some_and(|last| {
                now < last + chrono::Duration::seconds(row.interval_secs.into())
            });
            let interval = if too_soon {
                row.interval_secs.saturating_add(SLOW_DOWN_STEP_SECS)
            } else {
                row.interval_secs
            };
            q::record_poll(conn, &row.id, interval, now)?;
            return Ok(Err(if too_soon {
                OAuthError::slow_down(interval)
            } else {
                OAuthError::authorization_pending()
            }));
        }
    }
    let granted = Scope::parse(&row.scope).map_err(AuthError::StoredScope)?;
    let stored_resource: Vec<String> = row.resource.iter().cloned().collect();
    let resources = if resources.is_empty() {
        &stored_resource
    } else {
        resources
    };
    let target = apis.target(client, &granted, resources)?;
    if q::redeem(conn, &row.id, now)? != 1 {
        return Ok(Ok(Redemption::Refused("The device code was already used.")));
    }
    let (Some(user_id), Some(auth_time)) = (row.user_id.as_deref(), row.auth_time) else {
        return Ok(Ok(Redemption::Refused("The device code is invalid.")));
    };
    let outcome = grants::record_user_grant(
        conn,
        client,
        UserGrant {
            user_id,
            scope: &row.scope,
            target,
            nonce: None,
            auth_time,
            sid: None,
            amr: row.amr.clone().unwrap_or_default(),
            requested_claims: None,
            absolute_ttl,
            access,
            now,
        },
    )?;
    if let Redemption::Issued(issued) = &outcome {
        q::record_redemption(conn, &row.id, issued.family_id.as_deref(), &access.jti)?;
    }
    Ok(Ok(outcome))
}
