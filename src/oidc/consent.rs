//! Remembered consent (OIDC Core §3.1.2.4, "the Authorization Server … MAY … use previously
//! recorded consent"): the scopes a user approved for a client, per user and client. Scope
//! strings of every kind count alike (OpenID scopes and API scopes): a request is covered when
//! every scope it asks for was approved before. Approving at the consent page records the union
//! of what was approved before and what the request asked; withdrawing a consent ends that
//! client's grants for the user in the same transaction.

use chrono::NaiveDateTime;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use serde::Serialize;
use serde_json::json;

use crate::accounts::audit::Change;
use crate::accounts::users::{self, AccountError};
use crate::db::models::ConsentRow;
use crate::db::queries::consents as q;
use crate::db::{Db, DbConn, DbError, write_transaction};
use crate::verify::Scope;

pub use q::EndedGrants;

/// The revocation reason recorded on the refresh families a withdrawn consent ended.
pub const CONSENT_REVOKED: &str = "consent_revoked";

/// Whether the scopes `consented` (none: never approved) cover every scope of `requested`.
pub fn covers(consented: Option<&Scope>, requested: &Scope) -> bool {
    consented.is_some_and(|consented| requested.is_subset_of(consented))
}

/// The scopes of `requested` that `consented` does not cover, in the requested order: what the
/// consent page presents as new.
pub fn not_covered<'a>(consented: Option<&Scope>, requested: &'a Scope) -> Vec<&'a str> {
    requested
        .iter()
        .filter(|scope| !consented.is_some_and(|c| c.contains(scope)))
        .collect()
}

/// `consented` with the scopes of `approved` it lacks appended (order kept: first approval
/// first).
fn union(consented: &str, approved: &Scope) -> String {
    let mut scope = consented.to_owned();
    for token in approved.iter() {
        if !crate::verify::scope::tokens(consented).any(|c| c == token) {
            if !scope.is_empty() {
                scope.push(' ');
            }
            scope.push_str(token);
        }
    }
    scope
}

/// The scopes `user_id` approved for `client_id`; `None` when never (or no longer). A stored
/// scope that no longer parses counts as none (the user is asked again).
///
/// # Errors
/// A database failure.
pub async fn remembered(
    db: &Db,
    user_id: String,
    client_id: String,
) -> Result<Option<Scope>, DbError> {
    let row = db
        .run(move |conn| Ok::<_, DbError>(q::find(conn, &user_id, &client_id)?))
        .await?;
    Ok(row.and_then(|row| Scope::parse(&row.scope).ok()))
}

/// Records that `user_id` approved `approved` for `client_id` at `now`: the consent's scope
/// becomes the union of what it held and `approved`. Composes inside the caller's transaction;
/// on PostgreSQL a concurrent first approval (the primary key decides) is merged, not failed.
///
/// # Errors
/// A database failure.
pub fn record(
    conn: &mut DbConn,
    user_id: &str,
    client_id: &str,
    approved: &Scope,
    now: NaiveDateTime,
) -> Result<(), DieselError> {
    if merge(conn, user_id, client_id, approved, now)? {
        return Ok(());
    }
    let row = ConsentRow {
        user_id: user_id.to_owned(),
        client_id: client_id.to_owned(),
        scope: approved.as_str().to_owned(),
        created_at: now,
        updated_at: now,
    };
    // A savepoint: on PostgreSQL a failed statement would otherwise abort the whole transaction.
    match write_transaction(conn, |conn| q::insert(conn, &row)) {
        Ok(_) => Ok(()),
        Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {
            merge(conn, user_id, client_id, approved, now).map(|_| ())
        }
        Err(error) => Err(error),
    }
}

/// Adds `approved` to an existing consent; `false` when there is none.
fn merge(
    conn: &mut DbConn,
    user_id: &str,
    client_id: &str,
    approved: &Scope,
    now: NaiveDateTime,
) -> Result<bool, DieselError> {
    let Some(existing) = q::find(conn, user_id, client_id)? else {
        return Ok(false);
    };
    let scope = union(&existing.scope, approved);
    q::set_scope(conn, user_id, client_id, &scope, now)?;
    Ok(true)
}

/// A consent as the JSON and admin APIs list it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ConsentView {
    /// The client it was given to.
    pub client_id: String,
    /// The approved scopes, in the order first approved (OpenID and API scopes alike).
    pub scopes: Vec<String>,
    /// First approval (RFC 3339, UTC).
    pub created_at: String,
    /// Last approval (RFC 3339, UTC).
    pub updated_at: String,
}

impl ConsentView {
    fn from_row(row: ConsentRow) -> Self {
        Self {
            client_id: row.client_id,
            scopes: crate::verify::scope::tokens(&row.scope)
                .map(str::to_owned)
                .collect(),
            created_at: row.created_at.and_utc().to_rfc3339(),
            updated_at: row.updated_at.and_utc().to_rfc3339(),
        }
    }
}

/// The consents of the user with id `user_id`, most recently approved first.
///
/// # Errors
/// A database failure.
pub async fn list(db: &Db, user_id: String) -> Result<Vec<ConsentView>, DbError> {
    let rows = db
        .run(move |conn| Ok::<_, DbError>(q::for_user(conn, &user_id)?))
        .await?;
    Ok(rows.into_iter().map(ConsentView::from_row).collect())
}

/// The consents of `user` (a username, email or id, as the admin API names users), most
/// recently approved first.
///
/// # Errors
/// [`AccountError::NotFound`] for an unknown user; [`AccountError::Ambiguous`]; a database
/// failure.
pub async fn list_of(db: &Db, user: String) -> Result<Vec<ConsentView>, AccountError> {
    let rows = db
        .run(move |conn| {
            let id = users::get(conn, &user)?.id;
            Ok::<_, AccountError>(q::for_user(conn, &id)?)
        })
        .await?;
    Ok(rows.into_iter().map(ConsentView::from_row).collect())
}

/// What withdrawing a consent did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Revoked {
    /// The client whose consent was withdrawn.
    pub client_id: String,
    /// The grants it ended.
    pub ended: EndedGrants,
}

/// Withdraws the consent the user with id `user_id` gave `client_id` at `now`, and ends that
/// client's grants for the user in the same transaction (refresh families, access tokens,
/// unredeemed codes): the client's refresh token stops working, and its next authorization asks
/// again. An audited change (run it inside [`crate::accounts::audit::audited`]); the subject is
/// the user.
///
/// # Errors
/// [`AccountError::NotFound`] when the user gave `client_id` no consent (an unknown client
/// included); a database failure.
pub fn revoke(
    conn: &mut DbConn,
    user_id: &str,
    client_id: &str,
    now: NaiveDateTime,
) -> Result<Change<Revoked>, AccountError> {
    write_transaction(conn, |conn| {
        let existing = q::find(conn, user_id, client_id)?.ok_or(AccountError::NotFound)?;
        if q::delete(conn, user_id, client_id)? != 1 {
            return Err(AccountError::NotFound);
        }
        let ended = q::end_client_grants(conn, user_id, client_id, CONSENT_REVOKED, now)?;
        let detail = json!({
            "client_id": client_id,
            "scope": existing.scope,
            "ended": ended,
        });
        let revoked = Revoked {
            client_id: client_id.to_owned(),
            ended,
        };
        Ok(Change::made(revoked, user_id, detail))
    })
}

/// [`revoke`] for `user` named as the admin API names users (a username, email or id).
///
/// # Errors
/// [`AccountError::NotFound`] for an unknown user or no such consent;
/// [`AccountError::Ambiguous`]; a database failure.
pub fn revoke_of(
    conn: &mut DbConn,
    user: &str,
    client_id: &str,
    now: NaiveDateTime,
) -> Result<Change<Revoked>, AccountError> {
    let id = users::get(conn, user)?.id;
    revoke(conn, &id, client_id, now)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(text: &str) -> Scope {
        Scope::parse(text).unwrap()
    }

    #[test]
    fn a_request_is_covered_only_by_a_consent_holding_every_scope() {
        let consented = scope("openid email orders:read");
        assert!(covers(Some(&consented), &scope("openid")));
        assert!(covers(Some(&consented), &scope("orders:read openid email")));
        assert!(!covers(Some(&consented), &scope("openid profile")));
        assert!(!covers(None, &scope("openid")));
        assert_eq!(
            not_covered(Some(&consented), &scope("openid profile orders:write")),
            ["profile", "orders:write"]
        );
        assert_eq!(
            not_covered(None, &scope("openid email")),
            ["openid", "email"]
        );
    }

    #[test]
    fn approving_adds_the_new_scopes_after_the_old_ones() {
        assert_eq!(
            union("openid email", &scope("profile openid orders:read")),
            "openid email profile orders:read"
        );
        assert_eq!(union("", &scope("openid")), "openid");
        assert_eq!(union("openid", &scope("openid")), "openid");
    }
}
