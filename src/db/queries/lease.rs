//! Queries on `rotator_lease`: taking, renewing and confirming the lease of a cluster-wide role.
//!
//! Every step is one conditional `UPDATE` whose row count says whether it took effect
//! (CONVENTIONS 6), so the database decides between instances; nothing depends on session
//! state, which PgBouncer's transaction pooling would not keep.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConn;
use crate::db::schema::rotator_lease::dsl;

/// Gives `role` to `holder` until `until`: when `holder` holds it already (a renewal) or the
/// lease lapsed at `now` (a takeover). Returns whether `holder` holds it now.
pub fn take_or_renew(
    conn: &mut DbConn,
    role: &str,
    holder: &str,
    now: NaiveDateTime,
    until: NaiveDateTime,
) -> QueryResult<bool> {
    let changed = diesel::update(
        dsl::rotator_lease
            .filter(dsl::role.eq(role))
            .filter(dsl::holder.eq(holder).or(dsl::expires_at.le(now))),
    )
    .set((dsl::holder.eq(holder), dsl::expires_at.eq(until)))
    .execute(conn)?;
    Ok(changed == 1)
}

/// Extends the lease of `role` to `until` if `holder` still holds it, i.e. nobody took it over
/// since (a lease that lapsed without a taker is still `holder`'s: nobody else acted meanwhile).
/// Run first in the transaction of a change only the holder may make: the update also locks
/// the row (PostgreSQL: its row lock; SQLite: the write lock of `BEGIN IMMEDIATE`), so no
/// takeover commits before that transaction ends, and one that committed before makes this
/// return false.
pub fn renew_if_held(
    conn: &mut DbConn,
    role: &str,
    holder: &str,
    until: NaiveDateTime,
) -> QueryResult<bool> {
    let changed = diesel::update(
        dsl::rotator_lease
            .filter(dsl::role.eq(role))
            .filter(dsl::holder.eq(holder)),
    )
    .set(dsl::expires_at.eq(until))
    .execute(conn)?;
    Ok(changed == 1)
}

/// Ends `holder`'s lease of `role` at `now` (a clean shutdown), so another instance takes it
/// at its next tick instead of after the lease lapses. Returns whether `holder` held it.
pub fn release(
    conn: &mut DbConn,
    role: &str,
    holder: &str,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    let changed = diesel::update(
        dsl::rotator_lease
            .filter(dsl::role.eq(role))
            .filter(dsl::holder.eq(holder)),
    )
    .set(dsl::expires_at.eq(now))
    .execute(conn)?;
    Ok(changed == 1)
}

/// The holder of `role` and the end of its lease (an empty holder: never taken).
pub fn holder(conn: &mut DbConn, role: &str) -> QueryResult<Option<(String, NaiveDateTime)>> {
    dsl::rotator_lease
        .find(role)
        .select((dsl::holder, dsl::expires_at))
        .first(conn)
        .optional()
}
