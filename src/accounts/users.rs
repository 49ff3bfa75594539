//! User operations (create, list, disable, password, roles), shared by the CLI and the API.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Serialize;

use super::names::{Email, InvalidField, Password, Role, Username};
use super::password::{HashError, PasswordHasher};
use super::profile::{Editor, Profile};
use crate::clock::Clock;
use crate::db::models::UserRow;
use crate::db::queries::audit::Change;
use crate::db::queries::user_claims as claims_q;
use crate::db::queries::users as q;
use crate::db::{Db, DbConn, DbError, write_transaction};

/// Why a user operation failed. Messages contain no secret.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// An input is invalid.
    #[error(transparent)]
    Invalid(#[from] InvalidField),
    /// The username or email is taken.
    #[error("a user with this username or email already exists")]
    UserExists,
    /// No such user.
    #[error("no such user")]
    NotFound,
    /// The name matches one user's id and another user's username or email: address the user
    /// by id (ADM-06).
    #[error("the name matches more than one user; use the user's id")]
    Ambiguous,
    /// The change would leave no enabled administrator (ADM-05).
    #[error("this would leave no enabled administrator")]
    LastAdmin,
    /// Hashing failed.
    #[error(transparent)]
    Hash(#[from] HashError),
    /// Database trouble.
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<diesel::result::Error> for AccountError {
    fn from(error: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        match error {
            // Two registrations raced for the same name: the unique index decided.
            Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => Self::UserExists,
            other => Self::Db(DbError::Query(other)),
        }
    }
}

/// A user as shown to operators and to the user (never the hash).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct UserView {
    /// Stable id (the `sub` of tokens).
    pub id: String,
    /// Username as chosen.
    pub username: String,
    /// Email as given.
    pub email: String,
    /// Roles, sorted.
    pub roles: Vec<String>,
    /// True when disabled.
    pub disabled: bool,
    /// Created (UTC).
    pub created_at: DateTime<Utc>,
    /// Last change (UTC).
    pub updated_at: DateTime<Utc>,
    /// Last password change (UTC).
    pub password_changed_at: DateTime<Utc>,
    /// When disabled (UTC).
    pub disabled_at: Option<DateTime<Utc>>,
    /// The standard claims that are set (OIDC Core §5.1); left out when none is.
    #[serde(skip_serializing_if = "Profile::is_empty")]
    pub claims: Profile,
}

impl UserView {
    /// The view of a user row and its roles (sorted), e.g. a [`super::current::CurrentUser`]'s.
    pub fn from_row(row: UserRow, roles: Vec<String>) -> Self {
        Self {
            id: row.id,
            username: row.username,
            email: row.email,
            roles,
            disabled: row.disabled_at.is_some(),
            created_at: row.created_at.and_utc(),
            updated_at: row.updated_at.and_utc(),
            password_changed_at: row.password_changed_at.and_utc(),
            disabled_at: row.disabled_at.map(|t| t.and_utc()),
            claims: Profile::default(),
        }
    }

    /// With the user's claims.
    pub fn with_claims(mut self, claims: Profile) -> Self {
        self.claims = claims;
        self
    }
}

/// The stored claims of a user (none when unset or unreadable; `users check` reports the
/// latter).
pub fn claims_of(conn: &mut DbConn, user_id: &str) -> Result<Profile, AccountError> {
    Ok(claims_q::find(conn, user_id)?
        .and_then(|row| Profile::from_stored(&row.claims))
        .unwrap_or_default())
}

/// Input of [`create`].
#[derive(Debug)]
pub struct NewUser {
    /// Username.
    pub username: Username,
    /// Email.
    pub email: Email,
    /// Password (hashed before anything is stored).
    pub password: Password,
    /// Initial roles.
    pub roles: Vec<Role>,
}

fn view(conn: &mut DbConn, row: UserRow) -> Result<UserView, AccountError> {
    let roles = q::roles_of(conn, std::slice::from_ref(&row.id))?
        .into_iter()
        .map(|(_, role)| role)
        .collect();
    let claims = claims_of(conn, &row.id)?;
    Ok(UserView::from_row(row, roles).with_claims(claims))
}

/// One user by id, username or email. A value that is one user's id and another user's username
/// or email is refused as ambiguous (ADM-06): new usernames cannot look like ids, but rows made
/// before that rule may.
fn find_row(conn: &mut DbConn, who: &str) -> Result<UserRow, AccountError> {
    let by_id = q::find_by_id(conn, who)?;
    let by_login = q::find_by_login(conn, &super::names::login_keys(who))?;
    match (by_id, by_login) {
        (Some(id), Some(login)) if id.id != login.id => Err(AccountError::Ambiguous),
        (Some(row), _) | (None, Some(row)) => Ok(row),
        (None, None) => Err(AccountError::NotFound),
    }
}

/// The role whose last enabled holder may not be removed.
const ADMIN_ROLE: &str = "admin";

/// Refuses (inside the caller's transaction, after its change) a state with no enabled
/// administrator, when there was one before (ADM-05).
fn keep_an_admin(conn: &mut DbConn, admins_before: i64) -> Result<(), AccountError> {
    if admins_before > 0 && q::count_enabled_with_role(conn, ADMIN_ROLE)? == 0 {
        return Err(AccountError::LastAdmin);
    }
    Ok(())
}

/// Creates a user, dated by `clock` once the password is hashed (first, off the executor).
pub async fn create(
    db: &Db,
    hasher: &PasswordHasher,
    clock: &Clock,
    new: NewUser,
) -> Result<UserView, AccountError> {
    let hash = hasher.hash(new.password).await?;
    let now = clock.now_naive();
    let row = UserRow {
        id: uuid::Uuid::new_v4().to_string(),
        username: new.username.as_str().to_owned(),
        username_normalized: new.username.normalized(),
        email: new.email.as_str().to_owned(),
        email_normalized: new.email.normalized(),
        password_hash: hash,
        created_at: now,
        updated_at: now,
        password_changed_at: now,
        disabled_at: None,
    };
    let roles: Vec<String> = new.roles.iter().map(|r| r.as_str().to_owned()).collect();
    // Either IDNA form of the domain, and the keys of rows from before IDNA keys, are taken.
    let email_keys = new.email.keys();
    db.run(move |conn| {
        write_transaction(conn, |conn| {
            if q::exists(conn, &row.username_normalized, &email_keys)? {
                return Err(AccountError::UserExists);
            }
            q::insert(conn, &row)?;
            let mut sorted = roles.clone();
            sorted.sort();
            sorted.dedup();
            for role in &sorted {
                q::add_role(conn, &row.id, role)?;
            }
            Ok(UserView::from_row(row, sorted))
        })
    })
    .await
}

/// Every user, oldest first.
pub fn list(conn: &mut DbConn) -> Result<Vec<UserView>, AccountError> {
    let rows = q::list(conn)?;
    let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
    let mut roles = q::roles_of(conn, &ids)?;
    let mut claims: std::collections::HashMap<String, Profile> = claims_q::of(conn, &ids)?
        .into_iter()
        .filter_map(|row| Profile::from_stored(&row.claims).map(|p| (row.user_id, p)))
        .collect();
    Ok(rows
        .into_iter()
        .map(|row| {
            let mine: Vec<String> = roles
                .iter()
                .filter(|(user, _)| *user == row.id)
                .map(|(_, role)| role.clone())
                .collect();
            roles.retain(|(user, _)| *user != row.id);
            let profile = claims.remove(&row.id).unwrap_or_default();
            UserView::from_row(row, mine).with_claims(profile)
        })
        .collect())
}

/// One user by id, username or email.
pub fn get(conn: &mut DbConn, who: &str) -> Result<UserView, AccountError> {
    let row = find_row(conn, who)?;
    view(conn, row)
}

/// Disables a user and revokes everything that speaks for them, as `actor` at `now`
/// (idempotent: an already disabled user is no change). Never disables the last enabled
/// administrator.
pub fn disable(
    conn: &mut DbConn,
    who: &str,
    actor: &str,
    now: NaiveDateTime,
) -> Result<Change<UserView>, AccountError> {
    write_transaction(conn, |conn| {
        q::lock_role_holders(conn, ADMIN_ROLE)?;
        let admins = q::count_enabled_with_role(conn, ADMIN_ROLE)?;
        let row = find_row(conn, who)?;
        let changed = q::disable(conn, &row.id, now)? == 1;
        if changed {
            keep_an_admin(conn, admins)?;
            super::sessions::revoke_all(conn, &row.id, "disabled", actor, now)?;
        }
        let row = find_row(conn, &row.id)?;
        let id = row.id.clone();
        let view = view(conn, row)?;
        Ok(if changed {
            Change::made(
                view,
                id,
                serde_json::json!({ "disabled": { "old": false, "new": true } }),
            )
        } else {
            Change::none(view, id)
        })
    })
}

/// Replaces a user's password, dated by `clock` once the new one is hashed.
pub async fn set_password(
    db: &Db,
    hasher: &PasswordHasher,
    clock: &Clock,
    who: String,
    password: Password,
    actor: String,
) -> Result<UserView, AccountError> {
    let lookup = who.clone();
    db.run(move |conn| find_row(conn, &lookup)).await?;
    let hash = hasher.hash(password).await?;
    let now = clock.now_naive();
    db.run(move |conn| {
        write_transaction(conn, |conn| {
            let row = find_row(conn, &who)?;
            q::set_password(conn, &row.id, &hash, now)?;
            // A new password ends every session started with the old one.
            super::sessions::revoke_all(conn, &row.id, "password_change", &actor, now)?;
            let row = find_row(conn, &row.id)?;
            view(conn, row)
        })
    })
    .await
}

/// Grants a role at `now` (idempotent: a role already held is no change).
pub fn add_role(
    conn: &mut DbConn,
    who: &str,
    role: &Role,
    now: NaiveDateTime,
) -> Result<Change<UserView>, AccountError> {
    write_transaction(conn, |conn| {
        let row = find_row(conn, who)?;
        let changed = !q::has_role(conn, &row.id, role.as_str())?;
        if changed {
            q::add_role(conn, &row.id, role.as_str())?;
            q::touch(conn, &row.id, now)?;
        }
        role_change(conn, &row.id, role, changed, "granted")
    })
}

/// Withdraws a role at `now` (idempotent: a role not held is no change). Never withdraws
/// `admin` from the last enabled administrator.
pub fn remove_role(
    conn: &mut DbConn,
    who: &str,
    role: &Role,
    now: NaiveDateTime,
) -> Result<Change<UserView>, AccountError> {
    write_transaction(conn, |conn| {
        q::lock_role_holders(conn, role.as_str())?;
        let admins = q::count_enabled_with_role(conn, ADMIN_ROLE)?;
        let row = find_row(conn, who)?;
        let changed = q::remove_role(conn, &row.id, role.as_str())? > 0;
        if changed {
            keep_an_admin(conn, admins)?;
            q::touch(conn, &row.id, now)?;
        }
        role_change(conn, &row.id, role, changed, "withdrawn")
    })
}

/// The user after a role change, with the audit detail: the role, and the roles before and
/// after.
fn role_change(
    conn: &mut DbConn,
    id: &str,
    role: &Role,
    changed: bool,
    how: &str,
) -> Result<Change<UserView>, AccountError> {
    let row = find_row(conn, id)?;
    let view = view(conn, row)?;
    if !changed {
        return Ok(Change::none(view, id));
    }
    let after = view.roles.clone();
    let mut before: Vec<String> = after
        .iter()
        .filter(|r| r.as_str() != role.as_str())
        .cloned()
        .collect();
    if how == "withdrawn" {
        before.push(role.as_str().to_owned());
        before.sort();
    }
    let detail =
        serde_json::json!({ "role": role.as_str(), "roles": { "old": before, "new": after } });
    Ok(Change::made(view, id, detail))
}

/// A stored value that no longer passes the validation new input gets (`portcullis users
/// check`): rows written before a rule was added, or by hand. Reported, never changed.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct StaleValue {
    /// The user id.
    pub user_id: String,
    /// The username.
    pub username: String,
    /// The field (`email`).
    pub field: &'static str,
    /// The stored value.
    pub value: String,
    /// Why it no longer validates.
    pub reason: String,
}

/// Every stored value that would be refused today (oldest user first), for an operator to fix
/// by hand: emails that are not an RFC 5322 addr-spec or carry invisible characters, and claims
/// that no longer pass their rules (`today` bounds `birthdate`).
pub fn stale_values(
    conn: &mut DbConn,
    today: chrono::NaiveDate,
) -> Result<Vec<StaleValue>, AccountError> {
    let mut found = Vec::new();
    let rows = q::list(conn)?;
    let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
    let stored: std::collections::HashMap<String, String> = claims_q::of(conn, &ids)?
        .into_iter()
        .map(|row| (row.user_id, row.claims))
        .collect();
    for row in rows {
        if let Some(text) = stored.get(&row.id) {
            let refusal = match Profile::from_stored(text) {
                None => Some(InvalidField {
                    field: "claims",
                    reason: "the stored claims are not a valid claims object".into(),
                }),
                Some(profile) => profile.recheck(today).err(),
            };
            if let Some(error) = refusal {
                found.push(StaleValue {
                    user_id: row.id.clone(),
                    username: row.username.clone(),
                    field: error.field,
                    value: text.clone(),
                    reason: error.reason,
                });
            }
        }
        match Email::parse(&row.email) {
            Err(error) => found.push(StaleValue {
                user_id: row.id.clone(),
                username: row.username.clone(),
                field: error.field,
                value: row.email.clone(),
                reason: error.reason,
            }),
            // A row from before keys were IDNA-normalised: still found by login (the lookup
            // tries its old key), reported so that an operator can re-save the address.
            Ok(email) if email.normalized() != row.email_normalized => {
                found.push(StaleValue {
                    user_id: row.id.clone(),
                    username: row.username.clone(),
                    field: "email",
                    value: row.email.clone(),
                    reason:
                        "its uniqueness key predates IDNA keys; saving the address again renews it"
                            .into(),
                });
            }
            Ok(_) => {}
        }
    }
    Ok(found)
}

/// Changes a user's standard claims and email (`PATCH /admin/users/{user}`, `PATCH /api/me`,
/// `users update`) as `editor` at `now`: `patch` maps claim names to new values ([`Profile::apply`]
/// for the rules; `email` is the account's address, validated as [`Email::parse`] and unique).
/// A new email is unverified unless an administrator sets `email_verified` in the same patch.
/// All or nothing; the audit detail names the changed claims (not their values).
pub fn update_claims(
    conn: &mut DbConn,
    who: &str,
    patch: &serde_json::Map<String, serde_json::Value>,
    editor: Editor,
    now: NaiveDateTime,
) -> Result<Change<UserView>, AccountError> {
    let email = match patch.get("email") {
        None => None,
        Some(serde_json::Value::String(text)) => Some(Email::parse(text.trim())?),
        Some(_) => {
            return Err(InvalidField {
                field: "email",
                reason: "must be a string".into(),
            }
            .into());
        }
    };
    write_transaction(conn, |conn| {
        let row = find_row(conn, who)?;
        let mut profile = claims_of(conn, &row.id)?;
        let mut changed = profile.apply(patch, editor, now.date())?;
        if let Some(email) = &email
            && email.as_str() != row.email
        {
            if q::login_taken_by_other(conn, &row.id, &email.keys())? {
                return Err(AccountError::UserExists);
            }
            q::set_email(conn, &row.id, email.as_str(), &email.normalized(), now)?;
            changed.insert(0, "email");
            if !patch.contains_key("email_verified") && profile.email_verified {
                profile.email_verified = false;
                changed.push("email_verified");
            }
        } else if let Some(email) = &email
            && email.normalized() != row.email_normalized
        {
            // The same address saved again renews a key from before IDNA keys (`users check`
            // reports those); the address and its verification stay as they were.
            if q::login_taken_by_other(conn, &row.id, &email.keys())? {
                return Err(AccountError::UserExists);
            }
            q::set_email(conn, &row.id, email.as_str(), &email.normalized(), now)?;
            changed.insert(0, "email_key");
        }
        if !changed.is_empty() {
            if profile.is_empty() {
                claims_q::delete(conn, &row.id)?;
            } else {
                claims_q::replace(
                    conn,
                    &crate::db::models::UserClaimsRow {
                        user_id: row.id.clone(),
                        claims: profile.to_stored(),
                    },
                )?;
            }
            q::touch(conn, &row.id, now)?;
        }
        let id = row.id.clone();
        let fresh = find_row(conn, &id)?;
        let view = view(conn, fresh)?;
        Ok(if changed.is_empty() {
            Change::none(view, id)
        } else {
            Change::made(view, id, serde_json::json!({ "claims": changed }))
        })
    })
}
