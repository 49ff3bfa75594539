//! Queries on `trusted_devices`: devices (browsers, apps) that signed in to an account.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConn;
use crate::db::schema::trusted_devices as devices;

/// Records a device that signed in to `user_id`, known by the hash of its cookie.
pub fn insert(
    conn: &mut DbConn,
    token_hash: &str,
    user_id: &str,
    now: NaiveDateTime,
    expires_at: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::insert_into(devices::table)
        .values((
            devices::token_hash.eq(token_hash),
            devices::user_id.eq(user_id),
            devices::created_at.eq(now),
            devices::expires_at.eq(expires_at),
        ))
        .execute(conn)
}

/// Whether the device with this cookie hash signed in to `user_id` and is still trusted.
pub fn trusted_for(
    conn: &mut DbConn,
    token_hash: &str,
    user_id: &str,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    let count: i64 = devices::table
        .filter(devices::token_hash.eq(token_hash))
        .filter(devices::user_id.eq(user_id))
        .filter(devices::expires_at.gt(now))
        .count()
        .get_result(conn)?;
    Ok(count > 0)
}

/// Forgets every device of a user (password change, disable, logout everywhere: a device that
/// signed in with the old password is trusted no more).
pub fn forget_user_devices(conn: &mut DbConn, user_id: &str) -> QueryResult<usize> {
    diesel::delete(devices::table.filter(devices::user_id.eq(user_id))).execute(conn)
}
