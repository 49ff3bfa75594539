//! Queries on `signing_keys`.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConn;
use crate::db::models::SigningKeyRow;
use crate::db::schema::signing_keys::dsl;

/// States whose keys are published in the JWKS.
pub const PUBLISHED_STATES: [&str; 3] = ["pending", "active", "retired"];

/// Every key, oldest first.
pub fn all(conn: &mut DbConn) -> QueryResult<Vec<SigningKeyRow>> {
    dsl::signing_keys
        .order((dsl::created_at.asc(), dsl::kid.asc()))
        .select(SigningKeyRow::as_select())
        .load(conn)
}

/// Keys that are published (pending, active, retired), oldest first.
pub fn published(conn: &mut DbConn) -> QueryResult<Vec<SigningKeyRow>> {
    dsl::signing_keys
        .filter(dsl::state.eq_any(PUBLISHED_STATES))
        .order((dsl::created_at.asc(), dsl::kid.asc()))
        .select(SigningKeyRow::as_select())
        .load(conn)
}

/// `(kid, state)` of every published key: a cheap fingerprint to notice changes.
pub fn published_states(conn: &mut DbConn) -> QueryResult<Vec<(String, String)>> {
    dsl::signing_keys
        .filter(dsl::state.eq_any(PUBLISHED_STATES))
        .order(dsl::kid.asc())
        .select((dsl::kid, dsl::state))
        .load(conn)
}

/// Number of keys in any state.
pub fn count(conn: &mut DbConn) -> QueryResult<i64> {
    dsl::signing_keys.count().get_result(conn)
}

/// One key by kid.
pub fn find(conn: &mut DbConn, kid: &str) -> QueryResult<Option<SigningKeyRow>> {
    dsl::signing_keys
        .find(kid)
        .select(SigningKeyRow::as_select())
        .first(conn)
        .optional()
}

/// Inserts a key row.
pub fn insert(conn: &mut DbConn, row: &SigningKeyRow) -> QueryResult<usize> {
    diesel::insert_into(dsl::signing_keys)
        .values(row)
        .execute(conn)
}

/// The active key of `alg`, if any.
pub fn active(conn: &mut DbConn, alg: &str) -> QueryResult<Option<SigningKeyRow>> {
    dsl::signing_keys
        .filter(dsl::alg.eq(alg))
        .filter(dsl::state.eq("active"))
        .select(SigningKeyRow::as_select())
        .first(conn)
        .optional()
}

/// Pending keys, oldest first.
pub fn pending(conn: &mut DbConn) -> QueryResult<Vec<SigningKeyRow>> {
    dsl::signing_keys
        .filter(dsl::state.eq("pending"))
        .order((dsl::created_at.asc(), dsl::kid.asc()))
        .select(SigningKeyRow::as_select())
        .load(conn)
}

/// Retires `kid` if it is still active, to be removed from the JWKS at `remove_after`; returns
/// the number of rows changed (0 or 1).
pub fn retire(
    conn: &mut DbConn,
    kid: &str,
    now: NaiveDateTime,
    remove_after: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(
        dsl::signing_keys
            .filter(dsl::kid.eq(kid))
            .filter(dsl::state.eq("active")),
    )
    .set((
        dsl::state.eq("retired"),
        dsl::retired_at.eq(now),
        dsl::remove_after.eq(remove_after),
    ))
    .execute(conn)
}

/// Activates `kid` if it is still pending; returns the number of rows changed (0 or 1).
pub fn activate(conn: &mut DbConn, kid: &str, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(
        dsl::signing_keys
            .filter(dsl::kid.eq(kid))
            .filter(dsl::state.eq("pending")),
    )
    .set((dsl::state.eq("active"), dsl::activated_at.eq(now)))
    .execute(conn)
}

/// Removes the retired `kid` from the JWKS once its retention has passed, erasing its private
/// half (the row stays for audit); returns the number of rows changed (0 or 1).
pub fn remove(conn: &mut DbConn, kid: &str, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(
        dsl::signing_keys
            .filter(dsl::kid.eq(kid))
            .filter(dsl::state.eq("retired"))
            .filter(dsl::remove_after.le(now)),
    )
    .set((
        dsl::state.eq("removed"),
        dsl::removed_at.eq(now),
        dsl::private_key_sealed.eq(""),
    ))
    .execute(conn)
}

/// Revokes a published key, erasing its private half; returns the number of rows changed.
pub fn revoke(conn: &mut DbConn, kid: &str, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(
        dsl::signing_keys
            .filter(dsl::kid.eq(kid))
            .filter(dsl::state.eq_any(PUBLISHED_STATES)),
    )
    .set((
        dsl::state.eq("revoked"),
        dsl::revoked_at.eq(now),
        dsl::private_key_sealed.eq(""),
    ))
    .execute(conn)
}
