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

/// Runs an administrative change (admin API or CLI) and records it as `action` by `actor` in one
/// write transaction, so that no change is committed without its record; logs it once
/// committed. `change` returns its result and the subject to record.
pub fn audited<T, E>(
    conn: &mut DbConn,
    actor: &str,
    action: &'static str,
    change: impl FnOnce(&mut DbConn) -> Result<(T, String), E>,
) -> Result<T, E>
where
    E: From<diesel::result::Error>,
{
    let (value, subject) = crate::db::write_transaction(conn, |conn| {
        let (value, subject) = change(conn)?;
        let now = chrono::Utc::now().naive_utc();
        record(conn, Some(actor), action, Some(&subject), None, now)?;
        Ok::<_, E>((value, subject))
    })?;
    tracing::info!(actor, action, %subject, "admin change");
    Ok(value)
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

/// One audit event.
#[derive(Debug, Clone, Queryable, serde::Serialize)]
pub struct AuditEvent {
    /// Id.
    pub id: String,
    /// When (UTC).
    #[serde(serialize_with = "utc")]
    pub occurred_at: chrono::NaiveDateTime,
    /// Who.
    pub actor: Option<String>,
    /// What.
    pub action: String,
    /// To what.
    pub subject: Option<String>,
    /// Details (JSON text).
    pub detail: Option<String>,
}

fn utc<S: serde::Serializer>(at: &chrono::NaiveDateTime, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&at.and_utc().to_rfc3339())
}

/// A page of events, newest first, older than `before` if given.
pub fn page(
    conn: &mut DbConn,
    before: Option<chrono::NaiveDateTime>,
    limit: i64,
) -> QueryResult<Vec<AuditEvent>> {
    let mut query = events::table
        .order((events::occurred_at.desc(), events::id.desc()))
        .limit(limit)
        .into_boxed();
    if let Some(before) = before {
        query = query.filter(events::occurred_at.lt(before));
    }
    query
        .select((
            events::id,
            events::occurred_at,
            events::actor,
            events::action,
            events::subject,
            events::detail,
        ))
        .load(conn)
}
