//! Issuing authorization codes (RFC 6749 §4.1.2): opaque, stored only as a hash, single-use,
//! short-lived, bound to the client, the redirect URI, the PKCE challenge, the user and their
//! browser session.

use chrono::NaiveDateTime;

use super::AuthorizeError;
use super::pending::PendingRequest;
use super::request::{AuthorizationRequest, RedirectUri};
use crate::accounts::browser_sessions::SignedIn;
use crate::db::models::AuthorizationCodeRow;
use crate::db::queries::oauth as q;
use crate::db::{Db, DbError};
use crate::secrets::AuthorizationCode;

/// Authorization-code lifetime (CODE-03).
pub const CODE_TTL: chrono::Duration = chrono::Duration::seconds(60);

/// What a code is issued for: the parts of the request it binds and the user it speaks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodeGrant {
    /// The client.
    pub client_id: String,
    /// The verified redirect URI the code goes to (and the token request must match).
    pub redirect_uri: RedirectUri,
    /// Whether the request named the redirect URI.
    pub redirect_uri_sent: bool,
    /// The scope granted.
    pub scope: String,
    /// The client's `state`, returned with the code.
    pub state: Option<String>,
    /// The ID token's `nonce`.
    pub nonce: Option<String>,
    /// The S256 PKCE challenge.
    pub code_challenge: String,
    /// The user.
    pub user_id: String,
    /// When the user authenticated.
    pub auth_time: NaiveDateTime,
    /// The browser session the grant was made in (the ID token's `sid`; logout ends the grant).
    pub sid: String,
}

impl CodeGrant {
    /// A code for `request`, for the browser's signed-in user.
    pub fn for_request(request: &AuthorizationRequest, session: &SignedIn) -> Self {
        Self {
            client_id: request.client.client_id.clone(),
            redirect_uri: request.redirect_uri.clone(),
            redirect_uri_sent: request.redirect_uri_sent,
            scope: request.scope.as_str().to_owned(),
            state: request.state.clone(),
            nonce: request.nonce.clone(),
            code_challenge: request.code_challenge.clone(),
            user_id: session.user_id.clone(),
            auth_time: session.auth_time,
            sid: session.sid.clone(),
        }
    }

    /// A code for a pending request, for the user who authenticated for it in session `sid`.
    pub fn for_pending(
        pending: &PendingRequest,
        user_id: &str,
        auth_time: NaiveDateTime,
        sid: &str,
    ) -> Self {
        Self {
            client_id: pending.client_id.clone(),
            redirect_uri: pending.redirect_uri.clone(),
            redirect_uri_sent: pending.redirect_uri_sent,
            scope: pending.scope.clone(),
            state: pending.state.clone(),
            nonce: pending.nonce.clone(),
            code_challenge: pending.code_challenge.clone(),
            user_id: user_id.to_owned(),
            auth_time,
            sid: sid.to_owned(),
        }
    }
}

/// An issued code on its way to the client.
#[derive(Debug)]
pub struct CodeRedirect {
    redirect_uri: RedirectUri,
    code: AuthorizationCode,
    state: Option<String>,
}

impl CodeRedirect {
    /// Where the browser goes: `code`, `state` and `iss` (RFC 6749 §4.1.2, RFC 9207).
    pub fn location(&self, issuer: &str) -> String {
        let mut pairs = vec![("code", self.code.expose())];
        if let Some(state) = &self.state {
            pairs.push(("state", state));
        }
        pairs.push(("iss", issuer));
        self.redirect_uri.with_query(&pairs)
    }
}

/// Issues a code for `grant`: stores its hash, valid for [`CODE_TTL`] from `now`.
pub async fn issue_code(
    db: &Db,
    grant: CodeGrant,
    now: NaiveDateTime,
) -> Result<CodeRedirect, AuthorizeError> {
    let code = AuthorizationCode::generate()?;
    let row = AuthorizationCodeRow {
        code_hash: code.hash().into_string(),
        client_id: grant.client_id,
        user_id: grant.user_id,
        redirect_uri: grant.redirect_uri.as_str().to_owned(),
        redirect_uri_sent: i32::from(grant.redirect_uri_sent),
        scope: grant.scope,
        nonce: grant.nonce,
        code_challenge: grant.code_challenge,
        auth_time: grant.auth_time,
        sid: Some(grant.sid),
        created_at: now,
        expires_at: now + CODE_TTL,
        used_at: None,
        family_id: None,
        access_jti: None,
    };
    db.run(move |conn| Ok::<_, DbError>(q::insert_code(conn, &row)?))
        .await?;
    Ok(CodeRedirect {
        redirect_uri: grant.redirect_uri,
        code,
        state: grant.state,
    })
}
