//! The typed authorization request: what [`parse`] makes of the parameters, running every
//! [`checks`](super::checks) rule in the order that decides which error the client sees.

use std::sync::Arc;

use super::checks;
use crate::oidc::apis::Apis;
use crate::oidc::clients::Client;
use crate::oidc::params::Params;
use crate::verify::Scope;

/// A redirect URI the client registered, matched exactly (AUTHZ-02). Only the checks (and a
/// request stored after them) make one, so neither a code nor an error can be sent to a URI
/// that was not verified (AUTHZ-01/03).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedirectUri(String);

impl RedirectUri {
    /// A URI already verified against the client's registration (by a check, or when the
    /// pending request holding it was stored).
    pub(super) fn verified(uri: String) -> Self {
        Self(uri)
    }

    /// The URI, as registered.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The URI with `pairs` appended to its query.
    pub fn with_query(&self, pairs: &[(&str, &str)]) -> String {
        with_query(&self.0, pairs)
    }
}

/// `uri` with `pairs` appended to its query, byte for byte otherwise (the registered string).
pub fn with_query(uri: &str, pairs: &[(&str, &str)]) -> String {
    let mut serializer = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in pairs {
        serializer.append_pair(name, value);
    }
    let separator = if uri.contains('?') { '&' } else { '?' };
    format!("{uri}{separator}{}", serializer.finish())
}

/// The `prompt` values asked for (OIDC Core §3.1.2.1); `none` comes alone.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Prompt {
    /// `prompt=none`: no page may be shown.
    pub none: bool,
    /// `prompt=login`: the user signs in again, whatever session the browser has.
    pub login: bool,
    /// `prompt=consent`: the user is asked, even by a first-party client.
    pub consent: bool,
}

/// A validated authorization request (RFC 6749 §4.1.1, RFC 7636 §4.3, OIDC Core §3.1.2.1).
#[derive(Clone, Debug)]
pub struct AuthorizationRequest {
    /// The registered client.
    pub client: Arc<Client>,
    /// Where the answer goes.
    pub redirect_uri: RedirectUri,
    /// Whether the request named the redirect URI (the token request must then repeat it).
    pub redirect_uri_sent: bool,
    /// The scope: known to the client, duplicates removed, in the order asked.
    pub scope: Scope,
    /// The client's `state`, returned as sent.
    pub state: Option<String>,
    /// The ID token's `nonce`.
    pub nonce: Option<String>,
    /// The S256 PKCE challenge.
    pub code_challenge: String,
    /// `max_age` in seconds.
    pub max_age: Option<i64>,
    /// `prompt`.
    pub prompt: Prompt,
    /// `login_hint`, cut to a bounded length.
    pub login_hint: Option<String>,
}

impl AuthorizationRequest {
    /// `error` sent back to this request's redirect URI, with its `state`.
    pub fn error_redirect(&self, error: AuthorizationError) -> ErrorRedirect {
        ErrorRedirect {
            redirect_uri: self.redirect_uri.clone(),
            state: self.state.clone(),
            error,
        }
    }
}

/// The parts of an authorization request that its code is bound to and carries to the token
/// endpoint (RFC 6749 §4.1.3, RFC 7636 §4.6, OIDC Core §3.1.3.7), plus the `state` it is
/// returned with. Taken from the validated request, stored with a pending request, issued with
/// the code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestBinding {
    /// The client.
    pub client_id: String,
    /// The verified redirect URI (the token request must match it).
    pub redirect_uri: RedirectUri,
    /// Whether the request named the redirect URI (the token request must then repeat it).
    pub redirect_uri_sent: bool,
    /// The scope (space-separated, as validated).
    pub scope: String,
    /// The client's `state`, returned with the code or the error.
    pub state: Option<String>,
    /// The ID token's `nonce`.
    pub nonce: Option<String>,
    /// The S256 PKCE challenge.
    pub code_challenge: String,
}

impl RequestBinding {
    /// The binding of a validated request.
    pub fn of(request: &AuthorizationRequest) -> Self {
        Self {
            client_id: request.client.client_id.clone(),
            redirect_uri: request.redirect_uri.clone(),
            redirect_uri_sent: request.redirect_uri_sent,
            scope: request.scope.as_str().to_owned(),
            state: request.state.clone(),
            nonce: request.nonce.clone(),
            code_challenge: request.code_challenge.clone(),
        }
    }

    /// `error` sent back to this request's redirect URI, with its `state`.
    pub fn error_redirect(&self, error: AuthorizationError) -> ErrorRedirect {
        ErrorRedirect {
            redirect_uri: self.redirect_uri.clone(),
            state: self.state.clone(),
            error,
        }
    }
}

/// An error code of the authorization response (RFC 6749 §4.1.2.1, OIDC Core §3.1.2.6) and a
/// description safe to show.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuthorizationError {
    /// The `error` code.
    pub code: &'static str,
    /// The `error_description`.
    pub description: &'static str,
}

impl AuthorizationError {
    /// An error with its code and description.
    pub const fn new(code: &'static str, description: &'static str) -> Self {
        Self { code, description }
    }
}

/// An error the client learns of at its verified redirect URI (RFC 6749 §4.1.2.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorRedirect {
    /// The verified redirect URI.
    pub redirect_uri: RedirectUri,
    /// The request's `state`.
    pub state: Option<String>,
    /// What went wrong.
    pub error: AuthorizationError,
}

impl ErrorRedirect {
    /// Where the browser goes: `error`, `error_description`, `state` and `iss` (RFC 9207).
    pub fn location(&self, issuer: &str) -> String {
        let mut pairs = vec![
            ("error", self.error.code),
            ("error_description", self.error.description),
        ];
        if let Some(state) = &self.state {
            pairs.push(("state", state));
        }
        pairs.push(("iss", issuer));
        self.redirect_uri.with_query(&pairs)
    }
}

/// Why a request was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// No verified redirect URI (unknown client, unregistered or missing URI) or a request the
    /// client must not be sent back with: an error page for the user, never a redirect.
    Page(&'static str),
    /// An error sent to the client's verified redirect URI.
    Redirect(ErrorRedirect),
}

/// Parses and validates an authorization request. The client and redirect URI come first: until
/// both are known good, every failure is a page; after them, failures go back to the client.
/// `apis` decide whether the `resource` (RFC 8707 §2) fits the scopes asked for.
pub fn parse(
    params: &Params,
    find_client: impl FnOnce(&str) -> Option<Arc<Client>>,
    apis: &Apis,
) -> Result<AuthorizationRequest, Rejection> {
    let client = checks::check_client(params, find_client).map_err(Rejection::Page)?;
    let (redirect_uri, redirect_uri_sent) =
        checks::check_redirect_uri(params, &client).map_err(Rejection::Page)?;
    let state = checks::check_state(params).map_err(Rejection::Page)?;
    let fail = |error| {
        Rejection::Redirect(ErrorRedirect {
            redirect_uri: redirect_uri.clone(),
            state: state.clone(),
            error,
        })
    };
    checks::check_request_object(params).map_err(fail)?;
    checks::check_response_type(params).map_err(fail)?;
    checks::check_code_flow_allowed(&client).map_err(fail)?;
    checks::check_response_mode(params).map_err(fail)?;
    let scope = checks::check_scope(params, &client).map_err(fail)?;
    apis.check_authorization_resource(&client, &scope, params.resources())
        .map_err(fail)?;
    let code_challenge = checks::check_pkce(params).map_err(fail)?;
    let nonce = checks::check_nonce(params).map_err(fail)?;
    let prompt = checks::check_prompt(params).map_err(fail)?;
    let max_age = checks::check_max_age(params).map_err(fail)?;
    let login_hint = checks::login_hint(params);
    Ok(AuthorizationRequest {
        client,
        redirect_uri,
        redirect_uri_sent,
        scope,
        state,
        nonce,
        code_challenge,
        max_age,
        prompt,
        login_hint,
    })
}
