//! Browser sessions of the hosted pages (single sign-on): who is signed in in a browser, a new
//! session at every sign-in, and the session's end. The cookie's secret is stored only as its
//! SHA-256; a session names its user, its public `sid` and when the user authenticated.

use chrono::NaiveDateTime;

use crate::db::models::BrowserSessionRow;
use crate::db::queries::{oauth as q, users as user_q};
use crate::db::{Db, DbConn, DbError};
use crate::secrets::{NoRandomness, SessionSecret, random_identifier};

/// How long a browser session (SSO) lasts.
pub const SESSION_TTL: chrono::Duration = chrono::Duration::hours(12);

/// The signed-in user of a browser: a live session of an enabled user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedIn {
    /// The user.
    pub user_id: String,
    /// Their username (shown on the consent and logout pages).
    pub username: String,
    /// The session's public id (the ID token's `sid`).
    pub sid: String,
    /// When the user authenticated (OIDC Core `auth_time`, checked against `max_age`).
    pub auth_time: NaiveDateTime,
    /// How (RFC 8176 methods, space-separated: `pwd`, or `pwd otp mfa`).
    pub amr: String,
}

impl SignedIn {
    /// Whether the sign-in used more than one factor.
    pub fn is_multi_factor(&self) -> bool {
        super::factors::is_multi_factor(&self.amr)
    }
}

/// The live session named by a browser's session-cookie `secret`, if its user is enabled.
pub async fn signed_in(
    db: &Db,
    secret: &SessionSecret,
    now: NaiveDateTime,
) -> Result<Option<SignedIn>, DbError> {
    let hash = secret.hash();
    db.run(move |conn| {
        let Some(session) = q::live_session(conn, hash.as_str(), now)? else {
            return Ok(None);
        };
        let user = user_q::find_by_id(conn, &session.user_id)?;
        Ok(user.filter(|u| u.disabled_at.is_none()).map(|u| SignedIn {
            user_id: session.user_id,
            username: u.username,
            sid: session.sid,
            auth_time: session.auth_time,
            amr: session.amr,
        }))
    })
    .await
}

/// A browser session about to start: the cookie secret (sent once, stored only as its hash)
/// and the row to store.
#[derive(Debug)]
pub struct NewSession {
    /// The cookie value.
    pub secret: SessionSecret,
    /// The row, keyed by the secret's hash.
    pub row: BrowserSessionRow,
}

/// A new session of `user_id`, authenticated at `now` by the methods `amr` (RFC 8176,
/// space-separated), with fresh random cookie secret and `sid`.
pub fn new_session(
    user_id: &str,
    now: NaiveDateTime,
    amr: &str,
) -> Result<NewSession, NoRandomness> {
    let secret = SessionSecret::generate()?;
    let sid = random_identifier()?;
    Ok(NewSession {
        row: BrowserSessionRow {
            id_hash: secret.hash().into_string(),
            sid,
            user_id: user_id.to_owned(),
            auth_time: now,
            created_at: now,
            expires_at: now + SESSION_TTL,
            ended_at: None,
            amr: amr.to_owned(),
        },
        secret,
    })
}

/// Stores `session`, ending the browser's previous one (`previous_secret`) first: every sign-in
/// gets a new cookie value, whatever cookie came in (LOGIN-03). Runs inside the caller's
/// transaction.
pub fn replace(
    conn: &mut DbConn,
    previous_secret: Option<&SessionSecret>,
    session: &BrowserSessionRow,
) -> Result<(), diesel::result::Error> {
    if let Some(previous) = previous_secret {
        q::end_session(conn, previous.hash().as_str(), session.auth_time)?;
    }
    q::insert_session(conn, session)?;
    Ok(())
}
