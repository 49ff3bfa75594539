//! A user's grants (refresh families, RFC 6749 §6) as an administrator manages them: the live
//! ones listed, one ended with every token it issued.

use chrono::NaiveDateTime;
use serde_json::json;

use crate::accounts::audit::Change;
use crate::accounts::users::{self, AccountError};
use crate::db::models::RefreshFamilyRow;
use crate::db::queries::{oauth, refresh};
use crate::db::{Db, DbError};

/// The revocation reason recorded on a grant an administrator ended.
const ADMIN_REVOKED: &str = "admin_revoked";

/// The live (unrevoked, unexpired at `now`) grants of `user` (a username, email or id), newest
/// first.
///
/// # Errors
/// [`AccountError::NotFound`] for an unknown user; a database failure.
pub async fn live(
    db: &Db,
    user: String,
    now: NaiveDateTime,
) -> Result<Vec<RefreshFamilyRow>, AccountError> {
    db.run(move |conn| {
        let id = users::get(conn, &user)?.id;
        refresh::live_families(conn, &id, now).map_err(|e| AccountError::Db(DbError::Query(e)))
    })
    .await
}

/// Ends the grant `family_id` at `now`: its refresh family and every access token issued from
/// it, as an audited change (run it inside [`crate::accounts::audit::audited`]).
///
/// # Errors
/// [`AccountError::NotFound`] when no live grant has that id; a database failure.
pub fn revoke(
    conn: &mut crate::db::DbConn,
    family_id: String,
    now: NaiveDateTime,
) -> Result<Change<()>, AccountError> {
    match oauth::revoke_grant(conn, &family_id, ADMIN_REVOKED, now)? {
        1 => Ok(Change::made((), family_id, json!({ "revoked": true }))),
        _ => Err(AccountError::NotFound),
    }
}
