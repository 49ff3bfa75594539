//! Queries on `email_tokens`: single-use tokens sent by mail, stored by hash.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConn;
use crate::db::models::EmailTokenRow;
use crate::db::schema::email_tokens as t;

/// Stores a new token.
pub fn insert(conn: &mut DbConn, row: &EmailTokenRow) -> QueryResult<usize> {
    diesel::insert_into(t::table).values(row).execute(conn)
}

/// The token stored under `hash` for `purposes`, if it is unused and unexpired at `now` (a read:
/// nothing is spent).
pub fn find_live(
    conn: &mut DbConn,
    hash: &str,
    purposes: &[&str],
    now: NaiveDateTime,
) -> QueryResult<Option<EmailTokenRow>> {
    t::table
        .find(hash)
        .filter(t::purpose.eq_any(purposes))
        .filter(t::used_at.is_null())
        .filter(t::expires_at.gt(now))
        .select(EmailTokenRow::as_select())
        .first(conn)
        .optional()
}

/// Spends the token stored under `hash` for `purposes` at `now`: one conditional UPDATE, so of
/// concurrent presentations exactly one changes a row. Returns the rows changed (1: spent now).
pub fn spend(
    conn: &mut DbConn,
    hash: &str,
    purposes: &[&str],
    now: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(
        t::table
            .find(hash)
            .filter(t::purpose.eq_any(purposes))
            .filter(t::used_at.is_null())
            .filter(t::expires_at.gt(now)),
    )
    .set(t::used_at.eq(now))
    .execute(conn)
}

/// Marks every unused token of `user_id` for `purposes` used at `now` (superseded by a newer
/// one, or made moot by a change). Returns the rows changed.
pub fn supersede(
    conn: &mut DbConn,
    user_id: &str,
    purposes: &[&str],
    now: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(
        t::table
            .filter(t::user_id.eq(user_id))
            .filter(t::purpose.eq_any(purposes))
            .filter(t::used_at.is_null()),
    )
    .set(t::used_at.eq(now))
    .execute(conn)
}

/// The newest unused, unexpired token of `user_id` for `purpose` (a pending email change).
pub fn newest_live(
    conn: &mut DbConn,
    user_id: &str,
    purpose: &str,
    now: NaiveDateTime,
) -> QueryResult<Option<EmailTokenRow>> {
    t::table
        .filter(t::user_id.eq(user_id))
        .filter(t::purpose.eq(purpose))
        .filter(t::used_at.is_null())
        .filter(t::expires_at.gt(now))
        .order(t::created_at.desc())
        .select(EmailTokenRow::as_select())
        .first(conn)
        .optional()
}

/// Deletes up to `limit` tokens that expired before `before` (the janitor). Returns the rows
/// deleted.
pub fn purge(conn: &mut DbConn, before: NaiveDateTime, limit: i64) -> QueryResult<usize> {
    let hashes: Vec<String> = t::table
        .filter(t::expires_at.lt(before))
        .select(t::token_hash)
        .limit(limit)
        .load(conn)?;
    diesel::delete(t::table.filter(t::token_hash.eq_any(&hashes))).execute(conn)
}
