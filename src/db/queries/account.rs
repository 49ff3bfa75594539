//! Queries of the account page: a user's own live browser sessions and grants, each addressed
//! together with its user, so one user's ids never reach another user's rows.

use chrono::NaiveDateTime;
use diesel::dsl::max;
use diesel::prelude::*;

use crate::db::DbConn;
use crate::db::models::{BrowserSessionRow, RefreshFamilyRow};
use crate::db::schema::{
    browser_sessions as sessions, refresh_token_families as families, refresh_tokens as tokens,
};

/// The live (not ended, unexpired at `now`) browser sessions of `user_id`, newest first.
pub fn live_sessions(
    conn: &mut DbConn,
    user_id: &str,
    now: NaiveDateTime,
) -> QueryResult<Vec<BrowserSessionRow>> {
    sessions::table
        .filter(sessions::user_id.eq(user_id))
        .filter(sessions::ended_at.is_null())
        .filter(sessions::expires_at.gt(now))
        .order(sessions::created_at.desc())
        .select(BrowserSessionRow::as_select())
        .load(conn)
}

/// Ends the live session `sid` of `user_id` (only theirs); returns rows changed (0 or 1).
pub fn end_session_of(
    conn: &mut DbConn,
    user_id: &str,
    sid: &str,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(
        sessions::table
            .filter(sessions::user_id.eq(user_id))
            .filter(sessions::sid.eq(sid))
            .filter(sessions::ended_at.is_null())
            .filter(sessions::expires_at.gt(now)),
    )
    .set(sessions::ended_at.eq(now))
    .execute(conn)
}

/// Ends every session of `user_id` but `keep_sid`; returns rows changed.
pub fn end_sessions_except(
    conn: &mut DbConn,
    user_id: &str,
    keep_sid: &str,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(
        sessions::table
            .filter(sessions::user_id.eq(user_id))
            .filter(sessions::sid.ne(keep_sid))
            .filter(sessions::ended_at.is_null()),
    )
    .set(sessions::ended_at.eq(now))
    .execute(conn)
}

/// The ids of the unrevoked refresh families of `user_id` made in browser session `sid`.
pub fn session_family_ids(conn: &mut DbConn, user_id: &str, sid: &str) -> QueryResult<Vec<String>> {
    families::table
        .filter(families::user_id.eq(user_id))
        .filter(families::sid.eq(sid))
        .filter(families::revoked_at.is_null())
        .select(families::id)
        .load(conn)
}

/// The live family `family_id` if it belongs to `user_id`.
pub fn live_family_of(
    conn: &mut DbConn,
    user_id: &str,
    family_id: &str,
    now: NaiveDateTime,
) -> QueryResult<Option<RefreshFamilyRow>> {
    families::table
        .filter(families::id.eq(family_id))
        .filter(families::user_id.eq(user_id))
        .filter(families::revoked_at.is_null())
        .filter(families::expires_at.gt(now))
        .select(RefreshFamilyRow::as_select())
        .first(conn)
        .optional()
}

/// When each of `family_ids` last issued a refresh token (its latest rotation, or its start).
pub fn last_issued(
    conn: &mut DbConn,
    family_ids: &[String],
) -> QueryResult<Vec<(String, Option<NaiveDateTime>)>> {
    if family_ids.is_empty() {
        return Ok(Vec::new());
    }
    tokens::table
        .filter(tokens::family_id.eq_any(family_ids))
        .group_by(tokens::family_id)
        .select((tokens::family_id, max(tokens::created_at)))
        .load(conn)
}
