//! Queries on `mail_outbox`: mail queued with the action that caused it, claimed by one instance
//! at a time, sent, retried or given up.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConn;
use crate::db::models::OutboxRow;
use crate::db::schema::mail_outbox as m;

/// Queues a message.
pub fn insert(conn: &mut DbConn, row: &OutboxRow) -> QueryResult<usize> {
    diesel::insert_into(m::table).values(row).execute(conn)
}

/// Up to `limit` ids of messages due at `now`: unsent, not given up, their next attempt due and
/// not claimed by a live claim.
pub fn due(conn: &mut DbConn, now: NaiveDateTime, limit: i64) -> QueryResult<Vec<String>> {
    m::table
        .filter(m::sent_at.is_null())
        .filter(m::failed_at.is_null())
        .filter(m::next_attempt_at.le(now))
        .filter(m::claimed_until.is_null().or(m::claimed_until.lt(now)))
        .order(m::next_attempt_at.asc())
        .select(m::id)
        .limit(limit)
        .load(conn)
}

/// Claims message `id` until `until` if it is still due at `now`: one conditional UPDATE, so one
/// instance of many sends it. The claimed row, or `None` when another instance has it.
pub fn claim(
    conn: &mut DbConn,
    id: &str,
    now: NaiveDateTime,
    until: NaiveDateTime,
) -> QueryResult<Option<OutboxRow>> {
    let claimed = diesel::update(
        m::table
            .find(id)
            .filter(m::sent_at.is_null())
            .filter(m::failed_at.is_null())
            .filter(m::claimed_until.is_null().or(m::claimed_until.lt(now))),
    )
    .set(m::claimed_until.eq(until))
    .execute(conn)?;
    if claimed != 1 {
        return Ok(None);
    }
    m::table
        .find(id)
        .select(OutboxRow::as_select())
        .first(conn)
        .optional()
}

/// Records a delivery: sent at `now`, the body erased (it held a live link).
pub fn mark_sent(conn: &mut DbConn, id: &str, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(m::table.find(id))
        .set((
            m::sent_at.eq(now),
            m::body.eq(""),
            m::claimed_until.eq(None::<NaiveDateTime>),
            m::attempts.eq(m::attempts + 1),
            m::last_error.eq(None::<String>),
        ))
        .execute(conn)
}

/// Records a failed attempt: the next one at `next`, or given up at `now` when `next` is `None`
/// (then the body is erased too).
pub fn mark_failed(
    conn: &mut DbConn,
    id: &str,
    error: &str,
    now: NaiveDateTime,
    next: Option<NaiveDateTime>,
) -> QueryResult<usize> {
    let target = m::table.find(id);
    match next {
        Some(next) => diesel::update(target)
            .set((
                m::next_attempt_at.eq(next),
                m::claimed_until.eq(None::<NaiveDateTime>),
                m::attempts.eq(m::attempts + 1),
                m::last_error.eq(error),
            ))
            .execute(conn),
        None => diesel::update(target)
            .set((
                m::failed_at.eq(now),
                m::body.eq(""),
                m::claimed_until.eq(None::<NaiveDateTime>),
                m::attempts.eq(m::attempts + 1),
                m::last_error.eq(error),
            ))
            .execute(conn),
    }
}

/// Every message, newest first (the CLI's `mail outbox`).
pub fn list(conn: &mut DbConn) -> QueryResult<Vec<OutboxRow>> {
    m::table
        .order((m::created_at.desc(), m::id.asc()))
        .select(OutboxRow::as_select())
        .load(conn)
}

/// Deletes up to `limit` messages queued before `before` (the janitor; their links have
/// expired). Returns the rows deleted.
pub fn purge(conn: &mut DbConn, before: NaiveDateTime, limit: i64) -> QueryResult<usize> {
    let ids: Vec<String> = m::table
        .filter(m::created_at.lt(before))
        .select(m::id)
        .limit(limit)
        .load(conn)?;
    diesel::delete(m::table.filter(m::id.eq_any(&ids))).execute(conn)
}
