//! Queries on second factors (`second_factors`), recovery codes and the JSON API's
//! second-factor challenges. Single-use steps (a TOTP time step, a recovery code, a challenge)
//! are conditional updates whose row count decides.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConn;
use crate::db::models::SecondFactorRow;
use crate::db::schema::{
    authorization_requests as requests, recovery_codes as codes,
    second_factor_challenges as challenges, second_factors as factors,
};

/// The `kind` of a TOTP factor.
pub const TOTP: &str = "totp";

/// The user's TOTP factor, confirmed or being enrolled.
pub fn totp_of(conn: &mut DbConn, user_id: &str) -> QueryResult<Option<SecondFactorRow>> {
    factors::table
        .filter(factors::user_id.eq(user_id))
        .filter(factors::kind.eq(TOTP))
        .select(SecondFactorRow::as_select())
        .first(conn)
        .optional()
}

/// The kinds of the user's confirmed factors.
pub fn confirmed_kinds(conn: &mut DbConn, user_id: &str) -> QueryResult<Vec<String>> {
    factors::table
        .filter(factors::user_id.eq(user_id))
        .filter(factors::confirmed_at.is_not_null())
        .select(factors::kind)
        .load(conn)
}

/// Inserts a factor.
pub fn insert(conn: &mut DbConn, row: &SecondFactorRow) -> QueryResult<usize> {
    diesel::insert_into(factors::table)
        .values(row)
        .execute(conn)
}

/// Deletes the user's TOTP factor that is still being enrolled (unconfirmed).
pub fn delete_unconfirmed_totp(conn: &mut DbConn, user_id: &str) -> QueryResult<usize> {
    diesel::delete(
        factors::table
            .filter(factors::user_id.eq(user_id))
            .filter(factors::kind.eq(TOTP))
            .filter(factors::confirmed_at.is_null()),
    )
    .execute(conn)
}

/// Confirms an enrolling factor with the time step of its first code; 0 when it was confirmed
/// already (or is gone).
pub fn confirm(conn: &mut DbConn, id: &str, step: i64, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(
        factors::table
            .filter(factors::id.eq(id))
            .filter(factors::confirmed_at.is_null()),
    )
    .set((
        factors::confirmed_at.eq(now),
        factors::last_used_step.eq(step),
        factors::last_used_at.eq(now),
    ))
    .execute(conn)
}

/// Spends time step `step` of a confirmed factor: 1 when no code of this or a later step was
/// accepted before (RFC 6238 §5.2: a code is accepted once), else 0.
pub fn use_step(conn: &mut DbConn, id: &str, step: i64, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(
        factors::table
            .filter(factors::id.eq(id))
            .filter(factors::confirmed_at.is_not_null())
            .filter(
                factors::last_used_step
                    .is_null()
                    .or(factors::last_used_step.lt(step)),
            ),
    )
    .set((
        factors::last_used_step.eq(step),
        factors::last_used_at.eq(now),
    ))
    .execute(conn)
}

/// Deletes the user's TOTP factor.
pub fn delete_totp(conn: &mut DbConn, user_id: &str) -> QueryResult<usize> {
    diesel::delete(
        factors::table
            .filter(factors::user_id.eq(user_id))
            .filter(factors::kind.eq(TOTP)),
    )
    .execute(conn)
}

/// Deletes every factor of the user and their recovery codes; returns the factors deleted.
pub fn delete_all(conn: &mut DbConn, user_id: &str) -> QueryResult<usize> {
    diesel::delete(codes::table.filter(codes::user_id.eq(user_id))).execute(conn)?;
    diesel::delete(factors::table.filter(factors::user_id.eq(user_id))).execute(conn)
}

/// Replaces the user's recovery codes by `hashes`, created at `now`.
pub fn replace_recovery_codes(
    conn: &mut DbConn,
    user_id: &str,
    hashes: &[String],
    now: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::delete(codes::table.filter(codes::user_id.eq(user_id))).execute(conn)?;
    // One statement per code: diesel's batch insert is not portable across the MultiConnection.
    let mut inserted = 0;
    for hash in hashes {
        inserted += diesel::insert_into(codes::table)
            .values((
                codes::code_hash.eq(hash),
                codes::user_id.eq(user_id),
                codes::created_at.eq(now),
            ))
            .execute(conn)?;
    }
    Ok(inserted)
}

/// Deletes the user's recovery codes.
pub fn delete_recovery_codes(conn: &mut DbConn, user_id: &str) -> QueryResult<usize> {
    diesel::delete(codes::table.filter(codes::user_id.eq(user_id))).execute(conn)
}

/// Spends the user's recovery code of hash `hash`: 1 when it was unused, else 0.
pub fn use_recovery_code(
    conn: &mut DbConn,
    user_id: &str,
    hash: &str,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(
        codes::table
            .filter(codes::code_hash.eq(hash))
            .filter(codes::user_id.eq(user_id))
            .filter(codes::used_at.is_null()),
    )
    .set(codes::used_at.eq(now))
    .execute(conn)
}

/// How many of the user's recovery codes are unused.
pub fn unused_recovery_codes(conn: &mut DbConn, user_id: &str) -> QueryResult<i64> {
    codes::table
        .filter(codes::user_id.eq(user_id))
        .filter(codes::used_at.is_null())
        .count()
        .get_result(conn)
}

/// Inserts a JSON API challenge.
pub fn insert_challenge(
    conn: &mut DbConn,
    id_hash: &str,
    user_id: &str,
    now: NaiveDateTime,
    expires_at: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::insert_into(challenges::table)
        .values((
            challenges::id_hash.eq(id_hash),
            challenges::user_id.eq(user_id),
            challenges::created_at.eq(now),
            challenges::expires_at.eq(expires_at),
        ))
        .execute(conn)
}

/// The user of a live (unused, unexpired) challenge.
pub fn challenge_user(
    conn: &mut DbConn,
    id_hash: &str,
    now: NaiveDateTime,
) -> QueryResult<Option<String>> {
    challenges::table
        .filter(challenges::id_hash.eq(id_hash))
        .filter(challenges::used_at.is_null())
        .filter(challenges::expires_at.gt(now))
        .select(challenges::user_id)
        .first(conn)
        .optional()
}

/// Completes a live challenge once: 1, or 0 when it was used (or expired) meanwhile.
pub fn complete_challenge(
    conn: &mut DbConn,
    id_hash: &str,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(
        challenges::table
            .filter(challenges::id_hash.eq(id_hash))
            .filter(challenges::used_at.is_null())
            .filter(challenges::expires_at.gt(now)),
    )
    .set(challenges::used_at.eq(now))
    .execute(conn)
}

/// Deletes challenges that expired before `before`; returns rows deleted.
pub fn purge_challenges(conn: &mut DbConn, before: NaiveDateTime) -> QueryResult<usize> {
    diesel::delete(challenges::table.filter(challenges::expires_at.lt(before))).execute(conn)
}

/// Records that `user_id` passed the password for pending request `id` at `at` and owes the
/// second factor; 0 when the request was completed meanwhile.
pub fn await_second_factor(
    conn: &mut DbConn,
    id: &str,
    user_id: &str,
    at: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(
        requests::table
            .filter(requests::id.eq(id))
            .filter(requests::completed_at.is_null()),
    )
    .set((
        requests::factor_user_id.eq(user_id),
        requests::factor_at.eq(at),
    ))
    .execute(conn)
}
