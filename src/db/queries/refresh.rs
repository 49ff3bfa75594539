//! Queries on refresh-token families and tokens.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConn;
use crate::db::models::{RefreshFamilyRow, RefreshTokenRow, UserRow};
use crate::db::schema::{
    refresh_token_families as families, refresh_tokens as tokens, user_roles, users,
};

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

/// Everything a refresh needs to decide, read together.
pub struct Presented {
    /// The presented token.
    pub token: RefreshTokenRow,
    /// Its family.
    pub family: RefreshFamilyRow,
    /// The family's user.
    pub user: UserRow,
    /// The user's roles, sorted.
    pub roles: Vec<String>,
}

/// A token, its family, the family's user and the user's roles, by token hash: the hot path
/// reads everything in one round trip (one row per role, at least one row).
pub fn find_with_user(conn: &mut DbConn, token_hash: &str) -> QueryResult<Option<Presented>> {
    let rows: Vec<(RefreshTokenRow, RefreshFamilyRow, UserRow, Option<String>)> = tokens::table
        .inner_join(families::table.inner_join(users::table.left_join(user_roles::table)))
        .filter(tokens::token_hash.eq(token_hash))
        .select((
            RefreshTokenRow::as_select(),
            RefreshFamilyRow::as_select(),
            UserRow::as_select(),
            user_roles::role.nullable(),
        ))
        .order(user_roles::role.asc())
        .load(conn)?;
    let mut rows = rows.into_iter();
    let Some((token, family, user, first_role)) = rows.next() else {
        return Ok(None);
    };
    let roles = first_role
        .into_iter()
        .chain(rows.filter_map(|(_, _, _, role)| role))
        .collect();
    Ok(Some(Presented {
        token,
        family,
        user,
        roles,
    }))
}
