//! The audit trail as a service: administrative changes committed together with their record
//! (admin API and CLI), refused administrative requests (ADM-08), and the trail read back a page
//! at a time. The queries live in `db::queries::audit`; callers above `accounts` use this
//! module, never the queries.

use chrono::NaiveDateTime;

use crate::db::queries::audit as q;
use crate::db::{Db, DbConn, DbError};

pub use q::{AuditEvent, Change, REFUSED_RECORDS_PER_10_MINUTES};

/// Runs `change` on a blocking thread and records it as `action` by `actor` at `now`, in one
/// write transaction: no change is committed without its record, and a change that changed
/// nothing (`detail: None`) is not recorded. Logs the change once committed.
///
/// # Errors
/// `change`'s own error, or a database failure (`E: From<DbError>`), in which case nothing was
/// written.
pub async fn audited<T, E, F>(
    db: &Db,
    actor: String,
    action: &'static str,
    now: NaiveDateTime,
    change: F,
) -> Result<T, E>
where
    F: FnOnce(&mut DbConn) -> Result<Change<T>, E> + Send + 'static,
    T: Send + 'static,
    E: From<DbError> + From<diesel::result::Error> + Send + 'static,
{
    db.run(move |conn| q::audited(conn, &actor, action, now, change))
        .await
}

/// Records a refused administrative request by `actor` (`method`, `path`, why) at `now`, at most
/// [`REFUSED_RECORDS_PER_10_MINUTES`] per actor; the rest are only logged. Never fails the
/// caller: a failure to record is logged as a warning (the request is refused either way).
pub async fn record_refused(
    db: &Db,
    actor: String,
    method: String,
    path: String,
    reason: &'static str,
    now: NaiveDateTime,
) {
    let recorded = db
        .run(move |conn| {
            q::refused(conn, &actor, &method, &path, reason, now).map_err(DbError::Query)
        })
        .await;
    if let Err(error) = recorded {
        tracing::warn!(%error, "recording a refused admin call failed");
    }
}

/// Up to `limit` events, newest first, older than `before` when given (for the next page).
///
/// # Errors
/// A database failure.
pub async fn page(
    db: &Db,
    before: Option<NaiveDateTime>,
    limit: i64,
) -> Result<Vec<AuditEvent>, DbError> {
    db.run(move |conn| q::page(conn, before, limit).map_err(DbError::Query))
        .await
}
