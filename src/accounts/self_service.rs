//! The signed-in user's own account, as the hosted account page manages it: what the page shows
//! (the profile, the live browser sessions and grants) and the changes it makes (a new password
//! that signs out every other device, ending one session or grant, ending everything). Every
//! change is one write transaction with its audit record (actor and subject: the user); every
//! id the page sends back is looked up together with the user, so another user's session or
//! grant is "not found", never touched.

use chrono::NaiveDateTime;
use serde_json::json;

use super::names::{Email, Password, Username};
use super::password::PasswordHasher;
use super::profile::Profile;
use super::sessions::Authenticated;
use super::users::{self, AccountError};
use crate::clock::Clock;
use crate::db::models::{BrowserSessionRow, RefreshFamilyRow};
use crate::db::queries::{account as q, audit, devices, oauth, users as user_q};
use crate::db::{Db, DbConn, write_transaction};

/// The revocation reason of a grant or session the user ended on the account page.
pub const USER_REVOKED: &str = "user_revoked";

/// A live grant (refresh-token family, RFC 6749 §6) of the user, with when it last issued a
/// token.
#[derive(Clone, Debug)]
pub struct GrantLine {
    /// The family.
    pub family: RefreshFamilyRow,
    /// When it last issued a refresh token (its latest rotation; its start if never rotated).
    pub last_used: Option<NaiveDateTime>,
}

/// What the account page shows of its user.
#[derive(Clone, Debug)]
pub struct Overview {
    /// The username.
    pub username: String,
    /// The account's email address.
    pub email: String,
    /// The standard claims that are set.
    pub profile: Profile,
    /// When the password last changed (UTC).
    pub password_changed_at: NaiveDateTime,
    /// The live browser sessions, newest first.
    pub sessions: Vec<BrowserSessionRow>,
    /// The live grants, newest first.
    pub grants: Vec<GrantLine>,
}

/// The account page's view of the user with id `user_id` at `now`.
///
/// # Errors
/// [`AccountError::NotFound`] when the user no longer exists; a database failure.
pub async fn overview(
    db: &Db,
    user_id: String,
    now: NaiveDateTime,
) -> Result<Overview, AccountError> {
    db.run(move |conn| {
        let user = user_q::find_by_id(conn, &user_id)?.ok_or(AccountError::NotFound)?;
        let profile = users::claims_of(conn, &user_id)?;
        let sessions = q::live_sessions(conn, &user_id, now)?;
        let families = crate::db::queries::refresh::live_families(conn, &user_id, now)?;
        let ids: Vec<String> = families.iter().map(|f| f.id.clone()).collect();
        let last: std::collections::HashMap<String, Option<NaiveDateTime>> =
            q::last_issued(conn, &ids)?.into_iter().collect();
        let grants = families
            .into_iter()
            .map(|family| GrantLine {
                last_used: last.get(&family.id).copied().flatten(),
                family,
            })
            .collect();
        Ok(Overview {
            username: user.username,
            email: user.email,
            profile,
            password_changed_at: user.password_changed_at,
            sessions,
            grants,
        })
    })
    .await
}

/// Ends the live browser session `sid` of `user_id` at `now`, with every grant made in it (its
/// refresh families and their access tokens), audited as `session_ended`.
///
/// # Errors
/// [`AccountError::NotFound`] when `user_id` has no live session `sid` (another user's
/// included); a database failure.
pub async fn end_session(
    db: &Db,
    user_id: String,
    sid: String,
    now: NaiveDateTime,
) -> Result<(), AccountError> {
    db.run(move |conn| {
        write_transaction(conn, |conn| {
            if q::end_session_of(conn, &user_id, &sid, now)? != 1 {
                return Err(AccountError::NotFound);
            }
            let families = q::session_family_ids(conn, &user_id, &sid)?;
            for family in &families {
                oauth::revoke_grant(conn, family, USER_REVOKED, now)?;
            }
            let detail = json!({ "sid": sid, "grants_ended": families.len() });
            record(conn, &user_id, "session_ended", &detail, now)?;
            Ok(())
        })
    })
    .await
}

/// Ends the live grant `family_id` of `user_id` at `now` (the refresh family and its access
/// tokens), audited as `grant_revoked`.
///
/// # Errors
/// [`AccountError::NotFound`] when `user_id` has no live grant `family_id` (another user's
/// included); a database failure.
pub async fn end_grant(
    db: &Db,
    user_id: String,
    family_id: String,
    now: NaiveDateTime,
) -> Result<(), AccountError> {
    db.run(move |conn| {
        write_transaction(conn, |conn| {
            let family = q::live_family_of(conn, &user_id, &family_id, now)?
                .ok_or(AccountError::NotFound)?;
            if oauth::revoke_grant(conn, &family.id, USER_REVOKED, now)? != 1 {
                return Err(AccountError::NotFound);
            }
            let detail = json!({ "family_id": family.id, "client_id": family.client_id });
            record(conn, &user_id, "grant_revoked", &detail, now)?;
            Ok(())
        })
    })
    .await
}

/// The policy checks of a new password for the user with id `user_id`: [`Password::parse`]
/// (length, NFKC, not a common password) and not the account's own name or address.
///
/// # Errors
/// [`AccountError::Invalid`] naming `password`; [`AccountError::NotFound`]; a database failure.
pub async fn check_new_password(
    db: &Db,
    user_id: String,
    new_password: String,
) -> Result<Password, AccountError> {
    let password = Password::parse(new_password)?;
    let user = db
        .run(move |conn| user_q::find_by_id(conn, &user_id).map_err(AccountError::from))
        .await?
        .ok_or(AccountError::NotFound)?;
    // A stored name that no longer parses (a row from before a rule) cannot be compared; the
    // rest of the policy still holds.
    if let (Ok(username), Ok(email)) = (Username::parse(&user.username), Email::parse(&user.email))
    {
        password.check_not_account_name(&username, &email)?;
    }
    Ok(password)
}

/// Sets the password of `user_id` (already checked: `checked` is the current password verified
/// as a sign-in is, throttled; its attempt is taken back here) and signs out every other device, as Keycloak's "sign out other
/// devices": every browser session but `keep_sid` ends, every grant and access token is
/// revoked (`password_change`; applications signed in through the kept session get new ones
/// from it without a password), every trusted device is forgotten. Dated by `clock` once the
/// new password is hashed (Argon2id, off the executor); audited as `password_change` with the
/// number of other sessions ended. Returns that number.
///
/// # Errors
/// [`AccountError::Hash`] (`Busy`: retry shortly); [`AccountError::NotFound`]; a database
/// failure. Nothing is written on error.
pub async fn change_password(
    db: &Db,
    hasher: &PasswordHasher,
    clock: &Clock,
    user_id: String,
    keep_sid: String,
    checked: Authenticated,
    password: Password,
) -> Result<usize, AccountError> {
    let hash = hasher.hash(password).await?;
    let now = clock.now_naive();
    db.run(move |conn| {
        write_transaction(conn, |conn| {
            if user_q::set_password(conn, &user_id, &hash, now)? != 1 {
                return Err(AccountError::NotFound);
            }
            crate::db::queries::refresh::revoke_user_families(
                conn,
                &user_id,
                "password_change",
                now,
            )?;
            oauth::revoke_user_access_tokens(conn, &user_id, now)?;
            let ended = q::end_sessions_except(conn, &user_id, &keep_sid, now)?;
            checked.forgive(conn)?;
            devices::forget_user_devices(conn, &user_id)?;
            let detail = json!({ "other_sessions_ended": ended });
            record(conn, &user_id, "password_change", &detail, now)?;
            Ok(ended)
        })
    })
    .await
}

/// Signs the user out everywhere, this browser included ([`super::sessions::revoke_all`],
/// audited as `logout_all`).
///
/// # Errors
/// A database failure.
pub async fn end_everything(
    db: &Db,
    user_id: String,
    now: NaiveDateTime,
) -> Result<usize, AccountError> {
    db.run(move |conn| {
        write_transaction(conn, |conn| {
            Ok(super::sessions::revoke_all(
                conn,
                &user_id,
                "logout_all",
                &user_id,
                now,
            )?)
        })
    })
    .await
}

/// Records the user's own change (actor and subject: the user).
fn record(
    conn: &mut DbConn,
    user_id: &str,
    action: &str,
    detail: &serde_json::Value,
    now: NaiveDateTime,
) -> Result<(), AccountError> {
    audit::record(
        conn,
        Some(user_id),
        action,
        Some(user_id),
        Some(&detail.to_string()),
        now,
    )?;
    tracing::info!(user_id, action, "account change");
    Ok(())
}
