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

/// What an administrative change did, for its audit record: the value to return, the subject
/// (a user id, client id, key id), and what changed (old → new, never a secret). `detail: None`
/// means nothing changed (a role the user already held, a user already disabled): no record.
#[derive(Debug)]
pub struct Change<T> {
    /// The change's result.
    pub value: T,
    /// Whom or what it changed.
    pub subject: String,
    /// What changed, as JSON; `None`: nothing.
    pub detail: Option<serde_json::Value>,
}

impl<T> Change<T> {
    /// A change of `subject` described by `detail`.
    pub fn made(value: T, subject: impl Into<String>, detail: serde_json::Value) -> Self {
        Self {
            value,
            subject: subject.into(),
            detail: Some(detail),
        }
    }

    /// Nothing changed (the request asked for the state that already held).
    pub fn none(value: T, subject: impl Into<String>) -> Self {
        Self {
            value,
            subject: subject.into(),
            detail: None,
        }
    }
}

/// Runs an administrative change (admin API or CLI) and records it as `action` by `actor`, with
/// its detail at `now`, in one write transaction, so that no change is committed without its
/// record; logs it once committed. A change that changed nothing is not recorded.
pub fn audited<T, E>(
    conn: &mut DbConn,
    actor: &str,
    action: &'static str,
    now: NaiveDateTime,
    change: impl FnOnce(&mut DbConn) -> Result<Change<T>, E>,
) -> Result<T, E>
where
    E: From<diesel::result::Error>,
{
    let (value, subject, changed) = crate::db::write_transaction(conn, |conn| {
        let Change {
            value,
            subject,
            detail,
        } = change(conn)?;
        if let Some(detail) = &detail {
            record(
                conn,
                Some(actor),
                action,
                Some(&subject),
                Some(&detail.to_string()),
                now,
            )?;
        }
        Ok::<_, E>((value, subject, detail.is_some()))
    })?;
    if changed {
        tracing::info!(actor, action, %subject, "admin change");
    } else {
        tracing::info!(actor, action, %subject, "admin request changed nothing");
    }
    Ok(value)
}

/// How many refused administrative requests of one actor are recorded per 10 minutes; the rest
/// are only logged, so a signed-in user cannot grow the audit trail without bound.
pub const REFUSED_RECORDS_PER_10_MINUTES: u32 = 20;

/// Records a refused administrative request (the caller is not, or no longer, an
/// administrator), so attempts are in the trail as well as changes — at most
/// [`REFUSED_RECORDS_PER_10_MINUTES`] per actor (counted in the shared throttle table), at `now`.
/// Returns whether it was recorded.
pub fn refused(
    conn: &mut DbConn,
    actor: &str,
    method: &str,
    path: &str,
    reason: &str,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    crate::db::write_transaction(conn, |conn| {
        let key = format!("admin-refused:{actor}");
        let window = chrono::Duration::minutes(10);
        if super::throttle::spend(conn, &key, REFUSED_RECORDS_PER_10_MINUTES, window, now)?
            .is_some()
        {
            return Ok(false);
        }
        let detail = serde_json::json!({ "method": method, "path": path, "reason": reason });
        record(
            conn,
            Some(actor),
            "admin_request_refused",
            None,
            Some(&detail.to_string()),
            now,
        )?;
        Ok(true)
    })
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
