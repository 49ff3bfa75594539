//! Queries on `audit_events`.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConn;
use crate::db::schema::audit_events as events;

/// Records an event.
pub fn record(
    conn: &mut DbConn,
    actor: Option<&str>,
    action: &str,
    subject: Option<&str>,
    detail: Option<&str>,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::insert_into(events::table)
        .values((
            events::id.eq(uuid::Uuid::new_v4().to_string()),
            events::occurred_at.eq(now),
            events::actor.eq(actor),
            events::action.eq(action),
            events::subject.eq(subject),
            events::detail.eq(detail),
        ))
        .execute(conn)
}

/// `(actor, action, subject)` of an audit event.
pub type EventSummary = (Option<String>, String, Option<String>);

/// `(actor, action, subject)` of recent events, newest first.
pub fn recent(conn: &mut DbConn, limit: i64) -> QueryResult<Vec<EventSummary>> {
    events::table
        .order(events::occurred_at.desc())
        .limit(limit)
        .select((events::actor, events::action, events::subject))
        .load(conn)
}
