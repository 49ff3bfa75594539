//! Queries on `device_authorizations` (RFC 8628): insert, look up by either code's hash, the
//! user's decision and the single redemption (each a conditional update whose row count
//! decides), the polling state, and the janitor's purge.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConn;
use crate::db::models::DeviceAuthorizationRow;
use crate::db::schema::device_authorizations as devices;

/// `status` of a request the user has not decided yet.
pub const PENDING: &str = "pending";
/// `status` of a request the user approved.
pub const APPROVED: &str = "approved";
/// `status` of a request the user denied.
pub const DENIED: &str = "denied";

/// Inserts a request. A user-code hash already taken (a live or expired row) is a unique
/// violation: the caller draws another code.
pub fn insert(conn: &mut DbConn, row: &DeviceAuthorizationRow) -> QueryResult<usize> {
    diesel::insert_into(devices::table)
        .values(row)
        .execute(conn)
}

/// The request of a device code, by its hash.
pub fn find_by_device_code(
    conn: &mut DbConn,
    device_code_hash: &str,
) -> QueryResult<Option<DeviceAuthorizationRow>> {
    devices::table
        .filter(devices::device_code_hash.eq(device_code_hash))
        .select(DeviceAuthorizationRow::as_select())
        .first(conn)
        .optional()
}

/// The request of a user code, by its hash.
pub fn find_by_user_code(
    conn: &mut DbConn,
    user_code_hash: &str,
) -> QueryResult<Option<DeviceAuthorizationRow>> {
    devices::table
        .filter(devices::user_code_hash.eq(user_code_hash))
        .select(DeviceAuthorizationRow::as_select())
        .first(conn)
        .optional()
}

/// The user's decision on a pending, unexpired request: `status` (`approved` or `denied`), who
/// and how they signed in. Returns the rows changed (0: decided meanwhile, or expired).
pub fn decide(
    conn: &mut DbConn,
    id: &str,
    status: &str,
    user: (&str, NaiveDateTime, &str),
    now: NaiveDateTime,
) -> QueryResult<usize> {
    let (user_id, auth_time, amr) = user;
    diesel::update(
        devices::table
            .filter(devices::id.eq(id))
            .filter(devices::status.eq(PENDING))
            .filter(devices::expires_at.gt(now)),
    )
    .set((
        devices::status.eq(status),
        devices::user_id.eq(user_id),
        devices::auth_time.eq(auth_time),
        devices::amr.eq(amr),
        devices::decided_at.eq(now),
    ))
    .execute(conn)
}

/// Records a token request for `id` at `now`, with the interval the device must keep from now
/// on (RFC 8628 §3.5).
pub fn record_poll(
    conn: &mut DbConn,
    id: &str,
    interval_secs: i32,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(devices::table.filter(devices::id.eq(id)))
        .set((
            devices::last_polled_at.eq(now),
            devices::interval_secs.eq(interval_secs),
        ))
        .execute(conn)
}

/// Redeems an approved request once: the conditional update's row count (0 or 1) decides
/// concurrent token requests.
pub fn redeem(conn: &mut DbConn, id: &str, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(
        devices::table
            .filter(devices::id.eq(id))
            .filter(devices::status.eq(APPROVED))
            .filter(devices::used_at.is_null()),
    )
    .set(devices::used_at.eq(now))
    .execute(conn)
}

/// Records what a redemption issued (revoked if the device code is presented again).
pub fn record_redemption(
    conn: &mut DbConn,
    id: &str,
    family_id: Option<&str>,
    access_jti: &str,
) -> QueryResult<usize> {
    diesel::update(devices::table.filter(devices::id.eq(id)))
        .set((
            devices::family_id.eq(family_id),
            devices::access_jti.eq(access_jti),
        ))
        .execute(conn)
}

/// Deletes up to `batch` requests that expired before `before` (the janitor).
pub fn purge(conn: &mut DbConn, before: NaiveDateTime, batch: i64) -> QueryResult<usize> {
    let ids = devices::table
        .filter(devices::expires_at.lt(before))
        .select(devices::id)
        .limit(batch)
        .load::<String>(conn)?;
    diesel::delete(devices::table.filter(devices::id.eq_any(&ids))).execute(conn)
}
