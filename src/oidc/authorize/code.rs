//! Issuing authorization codes (RFC 6749 §4.1.2): opaque, stored only as a hash, single-use,
//! short-lived, bound to the client, the redirect URI, the PKCE challenge, the user and their
//! browser session.

use chrono::NaiveDateTime;

use super::AuthorizeError;
use super::pending::PendingRequest;
use super::request::{
    AuthorizationRequest, AuthorizationResponse, RedirectUri, RequestBinding, ResponseMode,
};
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
    /// The request's client, redirect URI, scope, `state`, `nonce` and PKCE challenge.
    pub request: RequestBinding,
    /// The user.
    pub user_id: String,
    /// When the user authenticated.
    pub auth_time: NaiveDateTime,
    /// The browser session the grant was made in (the ID token's `sid`; logout ends the grant).
    pub sid: String,
    /// How the user signed in (RFC 8176 methods, space-separated).
    pub amr: String,
}

impl CodeGrant {
    /// A code for `request`, for the browser's signed-in user.
    pub fn for_request(request: &AuthorizationRequest, session: &SignedIn) -> Self {
        Self {
            request: RequestBinding::of(request),
            user_id: session.user_id.clone(),
            auth_time: session.auth_time,
            sid: session.sid.clone(),
            amr: session.amr.clone(),
        }
    }

    /// A code for a pending request, for the user who authenticated for it in session `sid`
    /// by the methods `amr`.
    pub fn for_pending(
        pending: &PendingRequest,
        user_id: &str,
        auth_time: NaiveDateTime,
        sid: &str,
        amr: &str,
    ) -> Self {
        Self {
            request: pending.request.clone(),
            user_id: user_id.to_owned(),
            auth_time,
            sid: sid.to_owned(),
            amr: amr.to_owned(),
        }
    }
}

/// An issued code on its way to the client.
#[derive(Debug)]
pub struct CodeRedirect {
    redirect_uri: RedirectUri,
    response_mode: ResponseMode,
    code: AuthorizationCode,
    state: Option<String>,
}

impl CodeRedirect {
    /// The response parameters: `code`, `state` and `iss` (RFC 6749 §4.1.2, RFC 9207).
    fn pairs<'a>(&'a self, issuer: &'a str) -> Vec<(&'static str, &'a str)> {
        let mut pairs = vec![("code", self.code.expose())];
        if let Some(state) = &self.state {
            pairs.push(("state", state));
        }
        pairs.push(("iss", issuer));
        pairs
    }

    /// Where the browser goes in query mode: the redirect URI with [`Self::pairs`] in its query.
    pub fn location(&self, issuer: &str) -> String {
        self.redirect_uri.with_query(&self.pairs(issuer))
    }

    /// The response in the request's mode.
    pub fn response(&self, issuer: &str) -> AuthorizationResponse {
        AuthorizationResponse::deliver(&self.redirect_uri, self.response_mode, &self.pairs(issuer))
    }
}

/// Issues a code for `grant`: stores its hash, valid for [`CODE_TTL`] from `now`.
pub async fn issue_code(
    db: &Db,
    grant: CodeGrant,
    now: NaiveDateTime,
) -> Result<CodeRedirect, AuthorizeError> {
    let code = AuthorizationCode::generate()?;
    let request = grant.request;
    let row = AuthorizationCodeRow {
        code_hash: code.hash().into_string(),
        client_id: request.client_id,
        user_id: grant.user_id,
        redirect_uri: request.redirect_uri.as_str().to_owned(),
        redirect_uri_sent: i32::from(request.redirect_uri_sent),
        scope: request.scope,
        nonce: request.nonce,
        code_challenge: request.code_challenge,
        auth_time: grant.auth_time,
        sid: Some(grant.sid),
        created_at: now,
        expires_at: now + CODE_TTL,
        used_at: None,
        family_id: None,
        access_jti: None,
        requested_claims: request.claims.to_stored(),
        amr: grant.amr,
    };
    db.run(move |conn| Ok::<_, DbError>(q::insert_code(conn, &row)?))
        .await?;
    Ok(CodeRedirect {
        redirect_uri: request.redirect_uri,
        response_mode: request.response_mode,
        code,
        state: request.state,
    })
}
