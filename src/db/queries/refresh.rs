//! Queries on refresh-token families and tokens.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConn;
use crate::db::models::{RefreshFamilyRow, RefreshTokenRow, UserRow};
use crate::db::schema::{refresh_token_families as families, refresh_tokens as tokens, users};

/// Inserts a family.
pub fn insert_family(conn: &mut DbConn, row: &RefreshFamilyRow) -> QueryResult<usize> {
    diesel::insert_into(families::table)
        .values(row)
        .execute(conn)
}

/// Inserts a token.
pub fn insert_token(conn: &mut DbConn, row: &RefreshTokenRow) -> QueryResult<usize> {
    diesel::insert_into(tokens::table).values(row).execute(conn)
}

/// A token and its family, by token hash.
pub fn find(
    conn: &mut DbConn,
    token_hash: &str,
) -> QueryResult<Option<(RefreshTokenRow, RefreshFamilyRow)>> {
    tokens::table
        .inner_join(families::table)
        .filter(tokens::token_hash.eq(token_hash))
        .select((RefreshTokenRow::as_select(), RefreshFamilyRow::as_select()))
        .first(conn)
        .optional()
}

/// Marks a token used if it is not yet: the row count (0 or 1) decides a race.
pub fn mark_used(conn: &mut DbConn, token_hash: &str, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(
        tokens::table
            .filter(tokens::token_hash.eq(token_hash))
            .filter(tokens::used_at.is_null()),
    )
    .set(tokens::used_at.eq(now))
    .execute(conn)
}

/// Revokes a family if it is live; returns rows changed.
pub fn revoke_family(
    conn: &mut DbConn,
    family_id: &str,
    reason: &str,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(
        families::table
            .filter(families::id.eq(family_id))
            .filter(families::revoked_at.is_null()),
    )
    .set((
        families::revoked_at.eq(now),
        families::revoked_reason.eq(reason),
    ))
    .execute(conn)
}

/// Revokes every live family of a user; returns rows changed.
pub fn revoke_user_families(
    conn: &mut DbConn,
    user_id: &str,
    reason: &str,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(
        families::table
            .filter(families::user_id.eq(user_id))
            .filter(families::revoked_at.is_null()),
    )
    .set((
        families::revoked_at.eq(now),
        families::revoked_reason.eq(reason),
    ))
    .execute(conn)
}

/// The tokens that replaced `parent_hash`.
pub fn children(conn: &mut DbConn, parent_hash: &str) -> QueryResult<Vec<RefreshTokenRow>> {
    tokens::table
        .filter(tokens::parent_hash.eq(parent_hash))
        .select(RefreshTokenRow::as_select())
        .load(conn)
}

/// A token, its family and the family's user, by token hash (one round trip on the hot path).
pub fn find_with_user(
    conn: &mut DbConn,
    token_hash: &str,
) -> QueryResult<Option<(RefreshTokenRow, RefreshFamilyRow, UserRow)>> {
    tokens::table
        .inner_join(families::table.inner_join(users::table))
        .filter(tokens::token_hash.eq(token_hash))
        .select((
            RefreshTokenRow::as_select(),
            RefreshFamilyRow::as_select(),
            UserRow::as_select(),
        ))
        .first(conn)
        .optional()
}
