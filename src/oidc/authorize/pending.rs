//! Pending authorization requests: stored while the user signs in or decides, bound to the
//! browser that started them (the hash of a per-browser flow secret) and to a CSRF token, so the
//! hosted forms only name a request and carry no authority (LOGIN-01). What an anonymous browser
//! can make the server store is bounded (DOS-07).

use chrono::NaiveDateTime;

use super::AuthorizeError;
use super::checks;
use super::request::{
    AuthorizationError, AuthorizationRequest, ErrorRedirect, Prompt, RedirectUri, RequestBinding,
    ResponseMode,
};
use crate::accounts::browser_sessions::{self, SignedIn};
use crate::accounts::sessions::Authenticated;
use crate::db::models::{AuthorizationRequestRow, BrowserSessionRow};
use crate::db::queries::{oauth as q, throttle};
use crate::db::{Db, DbError, write_transaction};
use crate::oidc::claims_request::RequestedClaims;
use crate::oidc::consent::{self, Approval};
use crate::secrets::{CsrfToken, FlowSecret, SessionSecret, random_identifier};
use crate::verify::Scope;
use crate::verify::scope::tokens as scope_tokens;

/// How long a pending authorization request waits for the user.
pub const REQUEST_TTL: chrono::Duration = chrono::Duration::minutes(10);
/// Pending authorization requests one browser (flow cookie) keeps: its newest, one per open
/// sign-in tab; starting another drops the oldest.
pub const PENDING_PER_BROWSER: usize = 16;
/// Pending authorization requests one client network (an IPv4 address, an IPv6 /64) may start
/// per request lifetime (10 minutes), so it holds at most this many at once (each at most a few
/// KiB: state, nonce and hint are bounded); more are refused.
pub const PENDING_PER_NETWORK: u32 = 300;
/// Length of a flow secret (256 bits, base64url).
const FLOW_SECRET_LEN: usize = 43;
/// `authorization_requests.force_login` bit of `prompt=login`.
const PROMPT_LOGIN: i32 = 1;
/// `authorization_requests.force_login` bit of `prompt=consent`.
const PROMPT_CONSENT: i32 = 2;

/// The stored `prompt` flags of a request (rows written before `prompt=consent` was kept hold 0
/// or [`PROMPT_LOGIN`]).
fn prompt_flags(prompt: Prompt) -> i32 {
    let mut flags = 0;
    if prompt.login {
        flags |= PROMPT_LOGIN;
    }
    if prompt.consent {
        flags |= PROMPT_CONSENT;
    }
    flags
}

/// A request waiting for the user, as stored.
#[derive(Clone, Debug)]
pub struct PendingRequest {
    /// Its random id (named by the hosted forms).
    pub id: String,
    /// The request's client, redirect URI, scope, `state`, `nonce` and PKCE challenge.
    pub request: RequestBinding,
    /// The user who authenticated for it (at the login page, or the signed-in user).
    pub user_id: Option<String>,
    /// When that user authenticated.
    pub auth_time: Option<NaiveDateTime>,
    /// The request's `max_age` in seconds: checked again when the request resumes after the
    /// consent page.
    pub max_age: Option<i64>,
    /// `prompt=consent`: the consent page follows the sign-in whatever was approved before.
    pub force_consent: bool,
    /// The user who passed the password and owes the second factor (or its enrolment), and
    /// when the password was checked.
    pub factor_owed: Option<(String, NaiveDateTime)>,
}

impl PendingRequest {
    /// The request a row holds; `None` for a row whose stored claims request does not parse (a
    /// corrupt row: its `sub` limit cannot be honoured, so the request is not continued).
    fn from_row(row: AuthorizationRequestRow) -> Option<Self> {
        let claims = match RequestedClaims::from_stored(row.requested_claims.as_deref()) {
            Ok(claims) => claims,
            Err(error) => {
                tracing::error!(%error, request_id = %row.id, "stored claims request does not parse: the request is not continued");
                return None;
            }
        };
        Some(Self {
            id: row.id,
            request: RequestBinding {
                client_id: row.client_id,
                // Verified against the client's registration before it was stored.
                redirect_uri: RedirectUri::verified(row.redirect_uri),
                redirect_uri_sent: row.redirect_uri_sent != 0,
                // Stored by `start` from a parsed mode; a value it never writes is read as the
                // default.
                response_mode: ResponseMode::parse(&row.response_mode).unwrap_or_default(),
                scope: row.scope,
                state: row.state,
                nonce: row.nonce,
                code_challenge: row.code_challenge,
                claims,
            },
            user_id: row.user_id,
            auth_time: row.auth_time,
            max_age: row.max_age.map(i64::from),
            force_consent: row.force_login & PROMPT_CONSENT != 0,
            factor_owed: row.factor_user_id.zip(row.factor_at),
        })
    }

    /// The scope's values, in order.
    pub fn scopes(&self) -> Vec<&str> {
        scope_tokens(&self.request.scope).collect()
    }

    /// `error` sent back to this request's redirect URI, with its `state`.
    pub fn error_redirect(&self, error: AuthorizationError) -> ErrorRedirect {
        self.request.error_redirect(error)
    }
}

/// A request now pending: what the browser must hold and the form must carry to continue it.
#[derive(Debug)]
pub struct Started {
    /// The request's id (a hidden form field).
    pub request_id: String,
    /// The form's CSRF token (stored only as its hash).
    pub csrf_token: CsrfToken,
    /// The browser's flow secret (its cookie): the one it had, or a new one.
    pub flow_secret: FlowSecret,
}

/// The result of [`start`].
#[derive(Debug)]
pub enum Start {
    /// The request is pending.
    Pending(Started),
    /// The browser's network holds too many pending requests (DOS-07).
    TooManyPending,
}

/// Stores `request` as pending, bound to the browser's flow secret (its existing one is kept,
/// so parallel tabs keep working) and to a new CSRF token. `signed_in` is the user who will be
/// asked for consent; `network` the client's network (an IPv4 address, an IPv6 /64).
///
/// DOS-07: what an anonymous browser can make us store is bounded. A browser keeps its newest
/// [`PENDING_PER_BROWSER`] requests (tabs); a network may hold only [`PENDING_PER_NETWORK`]
/// pending at once.
pub async fn start(
    db: &Db,
    request: &AuthorizationRequest,
    flow_secret: Option<String>,
    signed_in: Option<&SignedIn>,
    network: &str,
    now: NaiveDateTime,
) -> Result<Start, AuthorizeError> {
    let flow_secret = match flow_secret.filter(|v| v.len() == FLOW_SECRET_LEN) {
        Some(existing) => FlowSecret::presented(existing),
        None => FlowSecret::generate()?,
    };
    let csrf_token = CsrfToken::generate()?;
    let request_id = random_identifier()?;
    let row = AuthorizationRequestRow {
        id: request_id.clone(),
        browser_hash: flow_secret.hash().into_string(),
        csrf_hash: csrf_token.hash().into_string(),
        client_id: request.client.client_id.clone(),
        redirect_uri: request.redirect_uri.as_str().to_owned(),
        redirect_uri_sent: i32::from(request.redirect_uri_sent),
        scope: request.scope.as_str().to_owned(),
        state: request.state.clone(),
        nonce: request.nonce.clone(),
        code_challenge: request.code_challenge.clone(),
        max_age: request
            .max_age
            .map(|m| i32::try_from(m).unwrap_or(i32::MAX)),
        force_login: prompt_flags(request.prompt),
        user_id: signed_in.map(|s| s.user_id.clone()),
        auth_time: signed_in.map(|s| s.auth_time),
        expires_at: now + REQUEST_TTL,
        completed_at: None,
        response_mode: request.response_mode.as_str().to_owned(),
        requested_claims: request.claims.to_stored(),
        factor_user_id: None,
        factor_at: None,
    };
    let key = format!("authorize:{network}");
    let stored = db
        .run(move |conn| {
            write_transaction(conn, |conn| {
                if throttle::spend(conn, &key, PENDING_PER_NETWORK, REQUEST_TTL, now)?.is_some() {
                    return Ok::<_, DbError>(false);
                }
                q::trim_browser_requests(conn, &row.browser_hash, PENDING_PER_BROWSER - 1)?;
                q::insert_request(conn, &row)?;
                Ok(true)
            })
        })
        .await?;
    if !stored {
        tracing::warn!("authorization request refused: too many pending from this network");
        return Ok(Start::TooManyPending);
    }
    Ok(Start::Pending(Started {
        request_id,
        csrf_token,
        flow_secret,
    }))
}

/// The result of [`bound`].
#[derive(Debug)]
pub enum Binding {
    /// The request is pending and this browser's form belongs to it.
    Bound(Box<PendingRequest>),
    /// No such pending request: expired, completed, or never stored.
    Expired,
    /// The request was started in another browser, or the CSRF token does not match.
    Refused,
}

/// The pending request `request_id` names, if the browser holding `flow_secret` started it and
/// `csrf_token` is its token.
pub async fn bound(
    db: &Db,
    request_id: String,
    flow_secret: &FlowSecret,
    csrf_token: &CsrfToken,
    now: NaiveDateTime,
) -> Result<Binding, DbError> {
    let row = db
        .run(move |conn| Ok::<_, DbError>(q::pending_request(conn, &request_id, now)?))
        .await?;
    let Some(row) = row else {
        return Ok(Binding::Expired);
    };
    if !checks::check_browser_binding(&row.browser_hash, &row.csrf_hash, flow_secret, csrf_token) {
        tracing::warn!(client_id = %row.client_id, "authorization form refused: browser binding or CSRF token mismatch");
        return Ok(Binding::Refused);
    }
    Ok(match PendingRequest::from_row(row) {
        Some(pending) => Binding::Bound(Box::new(pending)),
        None => Binding::Expired,
    })
}

/// Records a sign-in at the hosted login page for pending request `request_id`, in one write
/// transaction: the password attempt is taken back (and a new trusted device recorded), the
/// browser's previous session ends and `session` starts, and the request either records its
/// user (to ask consent) or completes (to issue the code). `false`: the request was completed
/// meanwhile.
pub async fn record_sign_in(
    db: &Db,
    request_id: String,
    authenticated: Option<Authenticated>,
    previous_session_secret: Option<SessionSecret>,
    session: BrowserSessionRow,
    needs_consent: bool,
) -> Result<bool, DbError> {
    let auth_time = session.auth_time;
    db.run(move |conn| {
        write_transaction(conn, |conn| {
            if let Some(authenticated) = &authenticated {
                authenticated.forgive(conn)?;
            }
            browser_sessions::replace(conn, previous_session_secret.as_ref(), &session)?;
            if needs_consent {
                q::authenticate_request(conn, &request_id, &session.user_id, auth_time)?;
                Ok::<_, DbError>(true)
            } else {
                Ok(q::complete_request(conn, &request_id, auth_time)? == 1)
            }
        })
    })
    .await
}

/// Records that the user of `authenticated` passed the password for pending request
/// `request_id` at `at` and now owes the second factor (or its enrolment), in one write
/// transaction with taking the password attempt back (and recording a new trusted device).
/// No session starts yet. `false`: the request was completed meanwhile.
pub async fn await_second_factor(
    db: &Db,
    request_id: String,
    authenticated: Authenticated,
    at: NaiveDateTime,
) -> Result<bool, DbError> {
    db.run(move |conn| {
        write_transaction(conn, |conn| {
            authenticated.forgive(conn)?;
            let user_id = authenticated.user.id.clone();
            Ok::<_, DbError>(
                crate::db::queries::factors::await_second_factor(conn, &request_id, &user_id, at)?
                    == 1,
            )
        })
    })
    .await
}

/// Completes pending request `request_id` once; `false` when it was completed already.
pub async fn complete(db: &Db, request_id: String, now: NaiveDateTime) -> Result<bool, DbError> {
    let changed = db
        .run(move |conn| Ok::<_, DbError>(q::complete_request(conn, &request_id, now)?))
        .await?;
    Ok(changed == 1)
}

/// Completes `pending` once, approved by `user_id` at the consent page at `now`, and remembers
/// the approval — its scopes and the claims it asked for beyond them — (the union with what the
/// user approved the client before, see [`consent::record`]) in the same write transaction; `false` when the request was completed
/// already (nothing is recorded then).
pub async fn complete_approved(
    db: &Db,
    pending: &PendingRequest,
    user_id: &str,
    now: NaiveDateTime,
) -> Result<bool, DbError> {
    let (request_id, user_id) = (pending.id.clone(), user_id.to_owned());
    let client_id = pending.request.client_id.clone();
    // Validated before the request was stored; a scope that no longer parses is not remembered.
    let approved = Scope::parse(&pending.request.scope).ok();
    let claims = pending.request.claims.clone();
    db.run(move |conn| {
        write_transaction(conn, |conn| {
            if q::complete_request(conn, &request_id, now)? != 1 {
                return Ok::<_, DbError>(false);
            }
            if let Some(approved) = &approved {
                let approval = Approval {
                    scope: approved,
                    claims: &claims,
                };
                consent::record(conn, &user_id, &client_id, approval, now)?;
            }
            Ok(true)
        })
    })
    .await
}
