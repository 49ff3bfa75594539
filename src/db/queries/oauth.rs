//! Queries on browser sessions, pending authorization requests, authorization codes and the
//! access tokens of grants.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConn;
use crate::db::models::{
    AccessTokenRow, AuthorizationCodeRow, AuthorizationRequestRow, BrowserSessionRow,
};
use crate::db::schema::{
    access_tokens, authorization_codes as codes, authorization_requests as requests,
    browser_sessions as sessions, refresh_token_families as families,
};

/// Inserts a browser session.
pub fn insert_session(conn: &mut DbConn, row: &BrowserSessionRow) -> QueryResult<usize> {
    diesel::insert_into(sessions::table)
        .values(row)
        .execute(conn)
}

/// A live browser session by the hash of its cookie secret.
pub fn live_session(
    conn: &mut DbConn,
    id_hash: &str,
    now: NaiveDateTime,
) -> QueryResult<Option<BrowserSessionRow>> {
    sessions::table
        .filter(sessions::id_hash.eq(id_hash))
        .filter(sessions::ended_at.is_null())
        .filter(sessions::expires_at.gt(now))
        .select(BrowserSessionRow::as_select())
        .first(conn)
        .optional()
}

/// Whether the browser session `sid` of `user_id` is live at `now`: not ended (logout, logout
/// everywhere, password change, disable), not expired.
pub fn session_live_by_sid(
    conn: &mut DbConn,
    sid: &str,
    user_id: &str,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    sessions::table
        .filter(sessions::sid.eq(sid))
        .filter(sessions::user_id.eq(user_id))
        .filter(sessions::ended_at.is_null())
        .filter(sessions::expires_at.gt(now))
        .select(sessions::sid)
        .first::<String>(conn)
        .optional()
        .map(|found| found.is_some())
}

/// The grant (refresh family) of the access token `jti`: its id and scope; `None` for a token
/// of no recorded grant.
pub fn grant_of_access_token(
    conn: &mut DbConn,
    jti: &str,
) -> QueryResult<Option<(String, String)>> {
    access_tokens::table
        .inner_join(families::table.on(access_tokens::family_id.eq(families::id.nullable())))
        .filter(access_tokens::jti.eq(jti))
        .select((families::id, families::scope))
        .first(conn)
        .optional()
}

/// Ends a session by cookie hash; returns its `sid` if it was live.
pub fn end_session(
    conn: &mut DbConn,
    id_hash: &str,
    now: NaiveDateTime,
) -> QueryResult<Option<String>> {
    let sid = sessions::table
        .filter(sessions::id_hash.eq(id_hash))
        .filter(sessions::ended_at.is_null())
        .select(sessions::sid)
        .first::<String>(conn)
        .optional()?;
    diesel::update(sessions::table.filter(sessions::id_hash.eq(id_hash)))
        .set(sessions::ended_at.eq(now))
        .execute(conn)?;
    Ok(sid)
}

/// Ends a session by `sid`.
pub fn end_session_by_sid(conn: &mut DbConn, sid: &str, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(
        sessions::table
            .filter(sessions::sid.eq(sid))
            .filter(sessions::ended_at.is_null()),
    )
    .set(sessions::ended_at.eq(now))
    .execute(conn)
}

/// Ends every session of a user (password change, disable, logout everywhere).
pub fn end_user_sessions(
    conn: &mut DbConn,
    user_id: &str,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(
        sessions::table
            .filter(sessions::user_id.eq(user_id))
            .filter(sessions::ended_at.is_null()),
    )
    .set(sessions::ended_at.eq(now))
    .execute(conn)
}

/// Inserts a pending authorization request.
pub fn insert_request(conn: &mut DbConn, row: &AuthorizationRequestRow) -> QueryResult<usize> {
    diesel::insert_into(requests::table)
        .values(row)
        .execute(conn)
}

/// Deletes a browser's pending requests beyond its newest `keep` (so a browser holds at most
/// `keep` + the one about to be inserted); returns how many were deleted.
pub fn trim_browser_requests(
    conn: &mut DbConn,
    browser_hash: &str,
    keep: usize,
) -> QueryResult<usize> {
    let ids: Vec<String> = requests::table
        .filter(requests::browser_hash.eq(browser_hash))
        .filter(requests::completed_at.is_null())
        .order(requests::expires_at.desc())
        .select(requests::id)
        .load(conn)?;
    if ids.len() <= keep {
        return Ok(0);
    }
    diesel::delete(requests::table.filter(requests::id.eq_any(&ids[keep..]))).execute(conn)
}

/// A pending (not completed, not expired) request by id.
pub fn pending_request(
    conn: &mut DbConn,
    id: &str,
    now: NaiveDateTime,
) -> QueryResult<Option<AuthorizationRequestRow>> {
    requests::table
        .filter(requests::id.eq(id))
        .filter(requests::completed_at.is_null())
        .filter(requests::expires_at.gt(now))
        .select(AuthorizationRequestRow::as_select())
        .first(conn)
        .optional()
}

/// Records who authenticated for a pending request (before consent).
pub fn authenticate_request(
    conn: &mut DbConn,
    id: &str,
    user_id: &str,
    auth_time: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(requests::table.filter(requests::id.eq(id)))
        .set((
            requests::user_id.eq(user_id),
            requests::auth_time.eq(auth_time),
        ))
        .execute(conn)
}

/// Completes a pending request once; returns rows changed (0: completed already).
pub fn complete_request(conn: &mut DbConn, id: &str, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(
        requests::table
            .filter(requests::id.eq(id))
            .filter(requests::completed_at.is_null()),
    )
    .set(requests::completed_at.eq(now))
    .execute(conn)
}

/// What one janitor run deleted, per kind.
#[derive(Debug, Default, Clone, Copy, serde::Serialize)]
pub struct Purged {
    /// Authorization requests.
    pub authorization_requests: usize,
    /// Authorization codes.
    pub authorization_codes: usize,
    /// Access-token records.
    pub access_tokens: usize,
    /// Browser sessions.
    pub browser_sessions: usize,
    /// Refresh families (with their tokens).
    pub refresh_families: usize,
    /// Login throttle rows.
    pub login_attempts: usize,
    /// Expired trusted devices.
    pub trusted_devices: usize,
    /// Client assertions (`jti`s) past their `exp`.
    pub client_assertions: usize,
    /// Device authorization requests (RFC 8628) expired before the grace cutoff.
    pub device_authorizations: usize,
}

impl Purged {
    /// Rows deleted in total.
    pub fn total(&self) -> usize {
        self.authorization_requests
            + self.authorization_codes
            + self.access_tokens
            + self.browser_sessions
            + self.refresh_families
            + self.login_attempts
            + self.trusted_devices
            + self.client_assertions
            + self.device_authorizations
    }

    /// The most rows any one kind lost (a call that deleted a full batch of some kind is
    /// followed by another).
    pub fn largest(&self) -> usize {
        [
            self.authorization_requests,
            self.authorization_codes,
            self.access_tokens,
            self.browser_sessions,
            self.refresh_families,
            self.login_attempts,
            self.trusted_devices,
            self.client_assertions,
            self.device_authorizations,
        ]
        .into_iter()
        .max()
        .unwrap_or(0)
    }

    fn add(&mut self, other: &Self) {
        self.authorization_requests += other.authorization_requests;
        self.authorization_codes += other.authorization_codes;
        self.access_tokens += other.access_tokens;
        self.browser_sessions += other.browser_sessions;
        self.refresh_families += other.refresh_families;
        self.login_attempts += other.login_attempts;
        self.trusted_devices += other.trusted_devices;
        self.client_assertions += other.client_assertions;
        self.device_authorizations += other.device_authorizations;
    }

    /// Adds a batch's counts to a run's.
    pub fn absorb(&mut self, batch: &Self) {
        self.add(batch);
    }
}

/// Deletes, at most `batch` rows of each kind, what can no longer matter: pending
/// authorization requests and access-token records once expired (`now`: they are never looked
/// at again); codes and sessions that ended or expired before `before`; refresh families
/// revoked or expired before `before` (their tokens go with them, so reuse detection keeps
/// working for every family that can still be presented); trusted devices and client-assertion
/// records that expired; device authorization requests (RFC 8628) expired before `before`;
/// throttle windows older than `throttle_before`. Bounded work per call: the janitor calls it
/// again until a call deletes less than a batch of every kind.
pub fn purge_expired(
    conn: &mut DbConn,
    now: NaiveDateTime,
    before: NaiveDateTime,
    throttle_before: NaiveDateTime,
    batch: i64,
) -> QueryResult<Purged> {
    use crate::db::schema::{
        login_attempts as attempts, refresh_tokens as tokens, trusted_devices as devices,
    };
    let request_ids = requests::table
        .filter(requests::expires_at.lt(now))
        .select(requests::id)
        .limit(batch)
        .load::<String>(conn)?;
    let authorization_requests =
        diesel::delete(requests::table.filter(requests::id.eq_any(&request_ids))).execute(conn)?;
    let code_hashes = codes::table
        .filter(codes::expires_at.lt(before))
        .select(codes::code_hash)
        .limit(batch)
        .load::<String>(conn)?;
    let authorization_codes =
        diesel::delete(codes::table.filter(codes::code_hash.eq_any(&code_hashes))).execute(conn)?;
    // An access token's record matters until the token expires, not after.
    let jtis = access_tokens::table
        .filter(access_tokens::expires_at.lt(now))
        .select(access_tokens::jti)
        .limit(batch)
        .load::<String>(conn)?;
    let access_tokens =
        diesel::delete(access_tokens::table.filter(access_tokens::jti.eq_any(&jtis)))
            .execute(conn)?;
    let session_ids = sessions::table
        .filter(
            sessions::expires_at
                .lt(before)
                .or(sessions::ended_at.lt(before)),
        )
        .select(sessions::id_hash)
        .limit(batch)
        .load::<String>(conn)?;
    let browser_sessions =
        diesel::delete(sessions::table.filter(sessions::id_hash.eq_any(&session_ids)))
            .execute(conn)?;
    let family_ids = families::table
        .filter(
            families::expires_at
                .lt(before)
                .or(families::revoked_at.lt(before)),
        )
        .select(families::id)
        .limit(batch)
        .load::<String>(conn)?;
    diesel::delete(tokens::table.filter(tokens::family_id.eq_any(&family_ids))).execute(conn)?;
    let refresh_families =
        diesel::delete(families::table.filter(families::id.eq_any(&family_ids))).execute(conn)?;
    let keys = attempts::table
        .filter(attempts::window_started_at.lt(throttle_before))
        .select(attempts::throttle_key)
        .limit(batch)
        .load::<String>(conn)?;
    let login_attempts =
        diesel::delete(attempts::table.filter(attempts::throttle_key.eq_any(&keys)))
            .execute(conn)?;
    let device_hashes = devices::table
        .filter(devices::expires_at.lt(now))
        .select(devices::token_hash)
        .limit(batch)
        .load::<String>(conn)?;
    let trusted_devices =
        diesel::delete(devices::table.filter(devices::token_hash.eq_any(&device_hashes)))
            .execute(conn)?;
    let client_assertions = super::clients::purge_assertions(conn, now, batch)?;
    // Kept past expiry as long as codes are, so that a late poll still hears expired_token.
    let device_authorizations = super::device_authorizations::purge(conn, before, batch)?;
    Ok(Purged {
        device_authorizations,
        trusted_devices,
        client_assertions,
        authorization_requests,
        authorization_codes,
        access_tokens,
        browser_sessions,
        refresh_families,
        login_attempts,
    })
}

/// Inserts a code.
pub fn insert_code(conn: &mut DbConn, row: &AuthorizationCodeRow) -> QueryResult<usize> {
    diesel::insert_into(codes::table).values(row).execute(conn)
}

/// A code by hash.
pub fn find_code(conn: &mut DbConn, code_hash: &str) -> QueryResult<Option<AuthorizationCodeRow>> {
    codes::table
        .find(code_hash)
        .select(AuthorizationCodeRow::as_select())
        .first(conn)
        .optional()
}

/// Redeems a code once: the conditional update's row count (0 or 1) decides a race (CODE-02).
pub fn redeem_code(conn: &mut DbConn, code_hash: &str, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(
        codes::table
            .filter(codes::code_hash.eq(code_hash))
            .filter(codes::used_at.is_null()),
    )
    .set(codes::used_at.eq(now))
    .execute(conn)
}

/// Records what a redemption issued.
pub fn record_redemption(
    conn: &mut DbConn,
    code_hash: &str,
    family_id: Option<&str>,
    access_jti: &str,
) -> QueryResult<usize> {
    diesel::update(codes::table.find(code_hash))
        .set((
            codes::family_id.eq(family_id),
            codes::access_jti.eq(access_jti),
        ))
        .execute(conn)
}

/// Records an access token of a grant.
pub fn insert_access_token(conn: &mut DbConn, row: &AccessTokenRow) -> QueryResult<usize> {
    diesel::insert_into(access_tokens::table)
        .values(row)
        .execute(conn)
}

/// Revokes an access token by `jti` (recording it if it was never recorded).
pub fn revoke_access_token(
    conn: &mut DbConn,
    jti: &str,
    client_id: &str,
    expires_at: NaiveDateTime,
    now: NaiveDateTime,
) -> QueryResult<()> {
    let updated = diesel::update(access_tokens::table.find(jti))
        .set(access_tokens::revoked_at.eq(now))
        .execute(conn)?;
    if updated == 0 {
        insert_access_token(
            conn,
            &AccessTokenRow {
                jti: jti.to_owned(),
                family_id: None,
                client_id: client_id.to_owned(),
                expires_at,
                revoked_at: Some(now),
                user_id: None,
                requested_claims: None,
            },
        )?;
    }
    Ok(())
}

/// Ends a grant: its refresh family (if live; returns the families changed, 0 or 1) and every
/// access token issued from it.
pub fn revoke_grant(
    conn: &mut DbConn,
    family_id: &str,
    reason: &str,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    let revoked = super::refresh::revoke_family(conn, family_id, reason, now)?;
    revoke_family_access_tokens(conn, family_id, now)?;
    Ok(revoked)
}

/// Revokes every access token of a grant.
pub fn revoke_family_access_tokens(
    conn: &mut DbConn,
    family_id: &str,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(
        access_tokens::table
            .filter(access_tokens::family_id.eq(family_id))
            .filter(access_tokens::revoked_at.is_null()),
    )
    .set(access_tokens::revoked_at.eq(now))
    .execute(conn)
}

/// An access token's record, when its grant (refresh family) was revoked and the claims the grant
/// asked for individually.
pub fn access_token_record(conn: &mut DbConn, jti: &str) -> QueryResult<Option<AccessTokenRecord>> {
    let found: Option<(AccessTokenRow, Option<NaiveDateTime>, Option<String>)> =
        access_tokens::table
            .left_join(families::table.on(access_tokens::family_id.eq(families::id.nullable())))
            .filter(access_tokens::jti.eq(jti))
            .select((
                AccessTokenRow::as_select(),
                families::revoked_at.nullable(),
                families::requested_claims.nullable(),
            ))
            .first(conn)
            .optional()?;
    Ok(found.map(
        |(record, grant_revoked_at, family_claims)| AccessTokenRecord {
            // A code's token holds its grant's claims; a refreshed token finds them on its family.
            requested_claims: record.requested_claims.clone().or(family_claims),
            record,
            grant_revoked_at,
        },
    ))
}

/// An access token's record with what its grant (refresh family) adds.
#[derive(Debug, Clone)]
pub struct AccessTokenRecord {
    /// The record.
    pub record: AccessTokenRow,
    /// When its grant was revoked, if it was.
    pub grant_revoked_at: Option<NaiveDateTime>,
    /// The grant's individually requested claims (OIDC Core §5.5; JSON): the record's own, else
    /// its family's.
    pub requested_claims: Option<String>,
}

/// Revokes every unexpired access token of a user (logout everywhere, password change,
/// disable): they stop working at every endpoint that acts for the user, on every instance.
pub fn revoke_user_access_tokens(
    conn: &mut DbConn,
    user_id: &str,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(
        access_tokens::table
            .filter(access_tokens::user_id.eq(user_id))
            .filter(access_tokens::revoked_at.is_null())
            .filter(access_tokens::expires_at.gt(now)),
    )
    .set(access_tokens::revoked_at.eq(now))
    .execute(conn)
}
