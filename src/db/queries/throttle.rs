//! Queries on `login_attempts`: atomic counting per key and window.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConn;
use crate::db::schema::login_attempts as attempts;

/// Counts one attempt for `key` within the window that started after `window_floor`, starting a
/// new window at `now` when there is none. Returns the attempts counted in the window, this one
/// included. Run inside a write transaction: the increment is one statement, so concurrent
/// attempts are counted exactly.
pub fn count_attempt(
    conn: &mut DbConn,
    key: &str,
    now: NaiveDateTime,
    window_floor: NaiveDateTime,
) -> QueryResult<(i32, NaiveDateTime)> {
    // Three outcomes race: bump a live window, restart an expired one, or open the first. Each
    // is one conditional statement; whoever loses a race retries and lands in the next case.
    for _ in 0..3 {
        let bumped = diesel::update(
            attempts::table
                .filter(attempts::throttle_key.eq(key))
                .filter(attempts::window_started_at.gt(window_floor)),
        )
        .set(attempts::attempts.eq(attempts::attempts + 1))
        .execute(conn)?;
        if bumped == 1 {
            break;
        }
        let restarted = diesel::update(
            attempts::table
                .filter(attempts::throttle_key.eq(key))
                .filter(attempts::window_started_at.le(window_floor)),
        )
        .set((
            attempts::attempts.eq(1),
            attempts::window_started_at.eq(now),
        ))
        .execute(conn)?;
        if restarted == 1 {
            break;
        }
        // A savepoint, so a concurrent insert's unique violation does not abort the transaction.
        let inserted = conn.transaction(|conn| {
            diesel::insert_into(attempts::table)
                .values((
                    attempts::throttle_key.eq(key),
                    attempts::attempts.eq(1),
                    attempts::window_started_at.eq(now),
                ))
                .execute(conn)
        });
        match inserted {
            Ok(_) => break,
            Err(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _,
            )) => {}
            Err(other) => return Err(other),
        }
    }
    attempts::table
        .find(key)
        .select((attempts::attempts, attempts::window_started_at))
        .first(conn)
}

/// Spends one attempt of `key`'s budget of `max` per `window`: counts it ([`count_attempt`]) and
/// answers `Some(seconds until the window ends)` when the budget is exceeded, `None` while it
/// holds. The one budget check of logins, registrations, pending authorization requests and
/// refused-admin records.
pub fn spend(
    conn: &mut DbConn,
    key: &str,
    max: u32,
    window: chrono::Duration,
    now: NaiveDateTime,
) -> QueryResult<Option<u64>> {
    let (attempts, started) = count_attempt(conn, key, now, now - window)?;
    if u32::try_from(attempts).unwrap_or(u32::MAX) <= max {
        return Ok(None);
    }
    Ok(Some(
        (started + window - now).num_seconds().max(1).unsigned_abs(),
    ))
}

/// Takes back one counted attempt (a successful login is not a failure).
pub fn uncount_attempt(conn: &mut DbConn, key: &str) -> QueryResult<usize> {
    diesel::update(
        attempts::table
            .filter(attempts::throttle_key.eq(key))
            .filter(attempts::attempts.gt(0)),
    )
    .set(attempts::attempts.eq(attempts::attempts - 1))
    .execute(conn)
}
