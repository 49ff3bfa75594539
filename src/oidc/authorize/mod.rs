//! The authorization endpoint's protocol, without actix types (RFC 6749 §4.1, RFC 7636, OIDC
//! Core §3.1.2, RFC 9207): [`request::parse`] turns parameters into a typed
//! [`AuthorizationRequest`] by running one [`checks`] rule after another; [`decide()`] answers an
//! [`Outcome`] from it and the browser's session; [`pending`] and [`code`] carry out the state
//! changes (the pending request bound to the browser, the code row). `http/authorize.rs` renders
//! the outcomes: pages, cookies, headers. A request object (OIDC Core §6) is applied before
//! any of it by [`request_object::resolve`], which may fetch (an async step, hence apart).
//!
//! An unknown client or a redirect URI that is not registered gets an error page, never a
//! redirect (AUTHZ-01/03): only the checks make a [`RedirectUri`]. Every other error redirects
//! with `error`, `state` and `iss`.

pub mod account;
pub mod checks;
pub mod code;
pub mod decide;
pub mod pending;
pub mod request;
pub mod request_object;

pub use code::{CodeGrant, CodeRedirect, issue_code};
pub use decide::{ConsentOutcome, Outcome, consent_after_sign_in, decide, decide_consent};
pub use request::{
    AuthorizationError, AuthorizationRequest, AuthorizationResponse, ErrorRedirect, Prompt,
    RedirectUri, Rejection, RequestBinding, ResponseMode, parse, reject_request_object,
};
pub use request_object::RequestObjects;

use crate::db::DbError;
use crate::secrets::NoRandomness;

/// Why a step of the authorization flow could not be carried out. Never the user's fault: the
/// hosted pages answer "temporarily unavailable".
#[derive(Debug, thiserror::Error)]
pub enum AuthorizeError {
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The system's random generator failed.
    #[error(transparent)]
    Randomness(#[from] NoRandomness),
}
