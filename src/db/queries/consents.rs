//! Queries on remembered consent (one row per user and client), and on what a user's grants to
//! one client left behind (refresh families, access tokens, unredeemed codes), which end when
//! the consent is withdrawn.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConn;
use crate::db::models::ConsentRow;
use crate::db::schema::{
    access_tokens, authorization_codes as codes, consents, refresh_token_families as families,
};

/// The consent `user_id` gave `client_id`, if any.
pub fn find(conn: &mut DbConn, user_id: &str, client_id: &str) -> QueryResult<Option<ConsentRow>> {
    consents::table
        .find((user_id, client_id))
        .select(ConsentRow::as_select())
        .first(conn)
        .optional()
}

/// Every consent of `user_id`, most recently approved first (then by client id).
pub fn for_user(conn: &mut DbConn, user_id: &str) -> QueryResult<Vec<ConsentRow>> {
    consents::table
        .filter(consents::user_id.eq(user_id))
        .order((consents::updated_at.desc(), consents::client_id.asc()))
        .select(ConsentRow::as_select())
        .load(conn)
}

/// Inserts a consent (the caller made sure none exists; a concurrent insert fails on the
/// primary key).
pub fn insert(conn: &mut DbConn, row: &ConsentRow) -> QueryResult<usize> {
    diesel::insert_into(consents::table)
        .values(row)
        .execute(conn)
}

/// Replaces the scope and the claims approved beyond it (space-separated) of an existing consent
/// at `now`; returns rows changed (0 or 1).
pub fn set_scope(
    conn: &mut DbConn,
    user_id: &str,
    client_id: &str,
    scope: &str,
    claims: &str,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(consents::table.find((user_id, client_id)))
        .set((
            consents::scope.eq(scope),
            consents::claims.eq(claims),
            consents::updated_at.eq(now),
        ))
        .execute(conn)
}

/// Deletes the consent `user_id` gave `client_id`; returns rows deleted (0 or 1).
pub fn delete(conn: &mut DbConn, user_id: &str, client_id: &str) -> QueryResult<usize> {
    diesel::delete(consents::table.find((user_id, client_id))).execute(conn)
}

/// Deletes every consent given to `client_id` (the client is deleted: a client registered
/// again under the same id starts without any).
pub fn delete_for_client(conn: &mut DbConn, client_id: &str) -> QueryResult<usize> {
    diesel::delete(consents::table.filter(consents::client_id.eq(client_id))).execute(conn)
}

/// What [`end_client_grants`] ended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct EndedGrants {
    /// Refresh families revoked.
    pub refresh_families: usize,
    /// Unexpired access tokens revoked.
    pub access_tokens: usize,
    /// Unredeemed authorization codes deleted.
    pub authorization_codes: usize,
}

/// Ends every grant `user_id` gave `client_id` at `now`: its live refresh families (revoked
/// with `reason`), every unexpired access token issued to the client for the user (of a family
/// or not: a code redeemed without `offline_access` leaves no family), and every code not yet
/// redeemed (so none turns into a new grant afterwards).
pub fn end_client_grants(
    conn: &mut DbConn,
    user_id: &str,
    client_id: &str,
    reason: &str,
    now: NaiveDateTime,
) -> QueryResult<EndedGrants> {
    let refresh_families = diesel::update(
        families::table
            .filter(families::user_id.eq(user_id))
            .filter(families::client_id.eq(client_id))
            .filter(families::revoked_at.is_null()),
    )
    .set((
        families::revoked_at.eq(now),
        families::revoked_reason.eq(reason),
    ))
    .execute(conn)?;
    let access_tokens = diesel::update(
        access_tokens::table
            .filter(access_tokens::user_id.eq(user_id))
            .filter(access_tokens::client_id.eq(client_id))
            .filter(access_tokens::revoked_at.is_null())
            .filter(access_tokens::expires_at.gt(now)),
    )
    .set(access_tokens::revoked_at.eq(now))
    .execute(conn)?;
    let authorization_codes = diesel::delete(
        codes::table
            .filter(codes::user_id.eq(user_id))
            .filter(codes::client_id.eq(client_id))
            .filter(codes::used_at.is_null()),
    )
    .execute(conn)?;
    Ok(EndedGrants {
        refresh_families,
        access_tokens,
        authorization_codes,
    })
}
