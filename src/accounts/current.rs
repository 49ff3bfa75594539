//! Who a user's access token speaks for *now*. A signature proves what was true when the token
//! was issued; every endpoint that acts for a user on this server's own tokens (the admin API,
//! `/api/me`, logout everywhere, userinfo, introspection of user tokens) asks this module
//! instead, so that disabling a user, withdrawing a role, logging out everywhere and changing a
//! password take effect on the next request, on every instance (ADM-04, JWT-18).
//!
//! The rule: a user token counts only while its record in `access_tokens` exists for that user
//! and is not revoked (directly, or through its grant), and the user exists and is enabled. The
//! user's roles come from the database, never from the token's `roles` claim.

use chrono::NaiveDateTime;

use crate::db::DbConn;
use crate::db::models::UserRow;
use crate::db::queries::{oauth as oauth_q, users as user_q};

/// The user a token speaks for, as the database says now.
#[derive(Debug, Clone)]
pub struct CurrentUser {
    /// The user (enabled).
    pub user: UserRow,
    /// Their roles now, sorted.
    pub roles: Vec<String>,
    /// The client the token was issued to.
    pub client_id: String,
    /// The claims the token's grant asked for individually (OIDC Core §5.5), as
    /// `oidc::claims_request` stores them (userinfo reads them); opaque here.
    pub requested_claims: Option<String>,
}

impl CurrentUser {
    /// Whether the user holds `role` now.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|held| held == role)
    }
}

/// Why a token no longer speaks for its user. Never shown in detail to the caller (RFC 6750
/// `invalid_token` for all); logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NotCurrent {
    /// No record: not issued for a user by this server (or issued before records were kept).
    #[error("the token is not a recorded user token")]
    Unrecorded,
    /// The record names another subject.
    #[error("the token's record names another user")]
    OtherSubject,
    /// Revoked directly or with its grant (logout, logout everywhere, password change, admin).
    #[error("the token or its grant was revoked")]
    Revoked,
    /// The user was deleted.
    #[error("the user no longer exists")]
    Gone,
    /// The user is disabled.
    #[error("the user is disabled")]
    Disabled,
}

impl NotCurrent {
    /// A short static reason, for logs and the audit trail.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Unrecorded => "token not recorded for a user",
            Self::OtherSubject => "token recorded for another user",
            Self::Revoked => "token or grant revoked",
            Self::Gone => "user deleted",
            Self::Disabled => "user disabled",
        }
    }
}

/// The current standing of the user token `jti` issued for `subject`. Two indexed lookups.
pub fn current_user(
    conn: &mut DbConn,
    jti: &str,
    subject: &str,
) -> diesel::QueryResult<Result<CurrentUser, NotCurrent>> {
    let Some(oauth_q::AccessTokenRecord {
        record,
        grant_revoked_at: grant_revoked,
        requested_claims,
    }) = oauth_q::access_token_record(conn, jti)?
    else {
        return Ok(Err(NotCurrent::Unrecorded));
    };
    if record.user_id.as_deref() != Some(subject) {
        return Ok(Err(NotCurrent::OtherSubject));
    }
    if record.revoked_at.is_some() || grant_revoked.is_some() {
        return Ok(Err(NotCurrent::Revoked));
    }
    let Some(user) = user_q::find_by_id(conn, subject)? else {
        return Ok(Err(NotCurrent::Gone));
    };
    if user.disabled_at.is_some() {
        return Ok(Err(NotCurrent::Disabled));
    }
    let roles = user_q::roles_of(conn, std::slice::from_ref(&user.id))?
        .into_iter()
        .map(|(_, role)| role)
        .collect();
    Ok(Ok(CurrentUser {
        user,
        roles,
        client_id: record.client_id,
        requested_claims,
    }))
}

/// Whether a client's own token (client credentials: no user) is still good: not revoked. Such
/// tokens are recorded only when revoked.
pub fn client_token_active(conn: &mut DbConn, jti: &str) -> diesel::QueryResult<bool> {
    Ok(match oauth_q::access_token_record(conn, jti)? {
        None => true,
        Some(found) => {
            found.record.user_id.is_none()
                && found.record.revoked_at.is_none()
                && found.grant_revoked_at.is_none()
        }
    })
}

/// Ends everything that speaks for a user: every refresh family, every access token, every
/// browser session, and the trust of every device that signed in (`reason`: `logout_all`, `password_change`, `disabled`, `admin_revoked`).
/// Returns the families revoked. Composable inside the caller's transaction.
pub fn revoke_everything(
    conn: &mut DbConn,
    user_id: &str,
    reason: &str,
    now: NaiveDateTime,
) -> diesel::QueryResult<usize> {
    let revoked = crate::db::queries::refresh::revoke_user_families(conn, user_id, reason, now)?;
    oauth_q::revoke_user_access_tokens(conn, user_id, now)?;
    oauth_q::end_user_sessions(conn, user_id, now)?;
    crate::db::queries::devices::forget_user_devices(conn, user_id)?;
    Ok(revoked)
}
