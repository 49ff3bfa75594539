//! Remembered consent (OIDC Core §3.1.2.4, "the Authorization Server … MAY … use previously
//! recorded consent"): the scopes a user approved for a client, per user and client, and the
//! claims approved beyond them (the `claims` parameter, §5.5). Scope strings of every kind count
//! alike (OpenID scopes and API scopes): a request is covered when every scope it asks for was
//! approved before, and every claim it asks for individually was approved before or belongs to
//! an approved scope. Approving at the consent page records the union of what was approved
//! before and what the request asked; withdrawing a consent ends that client's grants for the
//! user in the same transaction.

use std::collections::BTreeSet;

use chrono::NaiveDateTime;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use serde::Serialize;
use serde_json::json;

use crate::accounts::audit::Change;
use crate::accounts::users::{self, AccountError};
use crate::db::models::ConsentRow;
use crate::db::queries::consents as q;
use crate::db::{Db, DbConn, DbError, write_transaction};
use crate::oidc::claims_request::RequestedClaims;
use crate::oidc::standard_claims;
use crate::verify::Scope;

pub use q::EndedGrants;

/// The revocation reason recorded on the refresh families a withdrawn consent ended.
pub const CONSENT_REVOKED: &str = "consent_revoked";

/// What a user approved for a client: the scopes, and the claims beyond them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Remembered {
    /// The approved scopes.
    pub scope: Scope,
    /// The claims approved individually (OIDC Core §5.5), beyond those of the scopes.
    pub claims: BTreeSet<String>,
}

impl Remembered {
    /// Whether claim `name` was approved: by name, or with a scope that stands for it (§5.4).
    pub fn covers_claim(&self, name: &str) -> bool {
        self.claims.contains(name) || standard_claims::for_scope(&self.scope).contains(name)
    }
}

/// Whether `consented` (none: never approved) covers every scope of `requested` and every claim
/// `claims` asks for beyond them.
pub fn covers(consented: Option<&Remembered>, requested: &Scope, claims: &RequestedClaims) -> bool {
    consented.is_some_and(|consented| {
        requested.is_subset_of(&consented.scope)
            && claims
                .beyond_scope(requested)
                .into_iter()
                .all(|name| consented.covers_claim(name))
    })
}

/// The scopes of `requested` that `consented` does not cover, in the requested order: what the
/// consent page presents as new.
pub fn not_covered<'a>(consented: Option<&Remembered>, requested: &'a Scope) -> Vec<&'a str> {
    requested
        .iter()
        .filter(|scope| !consented.is_some_and(|c| c.scope.contains(scope)))
        .collect()
}

/// The claims `claims` asks for beyond the scopes of `requested`, split into those `consented`
/// does not cover (new) and those it does, in name order: what the consent page lists.
pub fn claims_split<'a>(
    consented: Option<&Remembered>,
    requested: &Scope,
    claims: &'a RequestedClaims,
) -> (Vec<&'a str>, Vec<&'a str>) {
    claims
        .beyond_scope(requested)
        .into_iter()
        .partition(|name| !consented.is_some_and(|c| c.covers_claim(name)))
}

/// `consented` (space-separated names) with the names of `approved` it lacks, sorted.
fn claims_union<'a>(consented: &'a str, approved: impl IntoIterator<Item = &'a str>) -> String {
    let mut names: BTreeSet<&str> = consented.split(' ').filter(|n| !n.is_empty()).collect();
    names.extend(approved);
    names.into_iter().collect::<Vec<_>>().join(" ")
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

/// What `user_id` approved for `client_id`; `None` when never (or no longer). A stored scope
/// that no longer parses counts as none (the user is asked again).
///
/// # Errors
/// A database failure.
pub async fn remembered(
    db: &Db,
    user_id: String,
    client_id: String,
) -> Result<Option<Remembered>, DbError> {
    let row = db
        .run(move |conn| Ok::<_, DbError>(q::find(conn, &user_id, &client_id)?))
        .await?;
    Ok(row.and_then(|row| {
        Some(Remembered {
            scope: Scope::parse(&row.scope).ok()?,
            claims: row
                .claims
                .split(' ')
                .filter(|name| !name.is_empty())
                .map(str::to_owned)
                .collect(),
        })
    }))
}

/// What the user approves at the consent page: the request's scopes and the claims it asks for
/// beyond them (OIDC Core §5.5).
#[derive(Clone, Copy, Debug)]
pub struct Approval<'a> {
    /// The scopes.
    pub scope: &'a Scope,
    /// The claims asked for individually.
    pub claims: &'a RequestedClaims,
}

/// Records that `user_id` approved `approved` for `client_id` at `now`: the consent's scope
/// becomes the union of what it held and the approved scopes, its claims the union of what it
/// held and the claims approved beyond those scopes. Composes inside the caller's transaction;
/// on PostgreSQL a concurrent first approval (the primary key decides) is merged, not failed.
///
/// # Errors
/// A database failure.
pub fn record(
    conn: &mut DbConn,
    user_id: &str,
    client_id: &str,
    approved: Approval<'_>,
    now: NaiveDateTime,
) -> Result<(), DieselError> {
    if merge(conn, user_id, client_id, approved, now)? {
        return Ok(());
    }
    let row = ConsentRow {
        user_id: user_id.to_owned(),
        client_id: client_id.to_owned(),
        scope: approved.scope.as_str().to_owned(),
        created_at: now,
        updated_at: now,
        claims: claims_union("", approved.claims.beyond_scope(approved.scope)),
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
    approved: Approval<'_>,
    now: NaiveDateTime,
) -> Result<bool, DieselError> {
    let Some(existing) = q::find(conn, user_id, client_id)? else {
        return Ok(false);
    };
    let scope = union(&existing.scope, approved.scope);
    let claims = claims_union(
        &existing.claims,
        approved.claims.beyond_scope(approved.scope),
    );
    q::set_scope(conn, user_id, client_id, &scope, &claims, now)?;
    Ok(true)
}

/// A consent as the JSON and admin APIs list it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ConsentView {
    /// The client it was given to.
    pub client_id: String,
    /// The approved scopes, in the order first approved (OpenID and API scopes alike).
    pub scopes: Vec<String>,
    /// The claims approved beyond the scopes (the `claims` parameter, OIDC Core §5.5), by name.
    pub claims: Vec<String>,
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
            claims: row
                .claims
                .split(' ')
                .filter(|name| !name.is_empty())
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
            "claims": existing.claims,
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

    fn remembered(scope_text: &str, claims: &[&str]) -> Remembered {
        Remembered {
            scope: scope(scope_text),
            claims: claims.iter().map(|c| (*c).to_owned()).collect(),
        }
    }

    #[test]
    fn a_request_is_covered_only_by_a_consent_holding_every_scope() {
        let consented = remembered("openid email orders:read", &[]);
        let none = RequestedClaims::default();
        assert!(covers(Some(&consented), &scope("openid"), &none));
        assert!(covers(
            Some(&consented),
            &scope("orders:read openid email"),
            &none
        ));
        assert!(!covers(Some(&consented), &scope("openid profile"), &none));
        assert!(!covers(None, &scope("openid"), &none));
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
    fn claims_beyond_the_scopes_are_covered_by_name_or_by_an_approved_scope() {
        let asked = RequestedClaims::parse(r#"{"userinfo":{"name":null,"email":null}}"#).unwrap();
        let openid = scope("openid");
        assert!(!covers(Some(&remembered("openid", &[])), &openid, &asked));
        assert!(!covers(
            Some(&remembered("openid", &["name"])),
            &openid,
            &asked
        ));
        assert!(covers(
            Some(&remembered("openid", &["email", "name"])),
            &openid,
            &asked
        ));
        assert!(covers(
            Some(&remembered("openid profile email", &[])),
            &openid,
            &asked
        ));
        // Asked with the scope itself: nothing beyond it.
        assert!(covers(
            Some(&remembered("openid email profile", &[])),
            &scope("openid email profile"),
            &asked
        ));
        let (new, before) = claims_split(Some(&remembered("openid", &["email"])), &openid, &asked);
        assert_eq!((new, before), (vec!["name"], vec!["email"]));
        assert_eq!(claims_union("email", ["name", "email"]), "email name");
        assert_eq!(claims_union("", ["name"]), "name");
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
