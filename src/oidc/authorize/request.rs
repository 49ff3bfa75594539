//! The typed authorization request: what [`parse`] makes of the parameters, running every
//! [`checks`](super::checks) rule in the order that decides which error the client sees.

use std::sync::Arc;

use super::checks;
use crate::oidc::apis::Apis;
use crate::oidc::claims_request::RequestedClaims;
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

/// How the authorization response reaches the client (OAuth 2.0 Multiple Response Type
/// Encoding Practices §2.1; OAuth 2.0 Form Post Response Mode §2). `fragment` is not offered:
/// the code flow's default is `query`, and a code in a fragment only reaches the client through
/// script in the page, which `form_post` does better.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ResponseMode {
    /// Parameters in the redirect URI's query, by a `303` redirect (the default).
    #[default]
    Query,
    /// Parameters posted to the redirect URI as `application/x-www-form-urlencoded` by a page
    /// that submits itself.
    FormPost,
}

impl ResponseMode {
    /// The `response_mode` value (also the stored form).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Query => "query",
            Self::FormPost => "form_post",
        }
    }

    /// Parses a `response_mode` value this server supports.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "query" => Some(Self::Query),
            "form_post" => Some(Self::FormPost),
            _ => None,
        }
    }
}

/// An authorization response on its way to the client's verified redirect URI: how the browser
/// is sent there. `http/` renders it (a `303`, or the self-submitting page).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthorizationResponse {
    /// `303 See Other` to this URL (the parameters in its query).
    Redirect(String),
    /// A page that POSTs `fields` to `action` (the redirect URI, exactly as registered).
    FormPost {
        /// The verified redirect URI.
        action: String,
        /// The response parameters, in order (`code`/`error`…, `state`, `iss`).
        fields: Vec<(&'static str, String)>,
    },
}

impl AuthorizationResponse {
    /// `pairs` delivered to `redirect_uri` in `mode`.
    pub fn deliver(
        redirect_uri: &RedirectUri,
        mode: ResponseMode,
        pairs: &[(&'static str, &str)],
    ) -> Self {
        match mode {
            ResponseMode::Query => Self::Redirect(redirect_uri.with_query(pairs)),
            ResponseMode::FormPost => Self::FormPost {
                action: redirect_uri.as_str().to_owned(),
                fields: pairs
                    .iter()
                    .map(|(name, value)| (*name, (*value).to_owned()))
                    .collect(),
            },
        }
    }
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
    /// How the response is delivered.
    pub response_mode: ResponseMode,
    /// The scope: known to the client, duplicates removed, in the order asked.
    pub scope: Scope,
    /// The client's `state`, returned as sent.
    pub state: Option<String>,
    /// The ID token's `nonce`.
    pub nonce: Option<String>,
    /// The S256 PKCE challenge; `None` when the client's PKCE policy let the request omit it
    /// (the code then refuses any `code_verifier`).
    pub code_challenge: Option<String>,
    /// `max_age` in seconds.
    pub max_age: Option<i64>,
    /// `prompt`.
    pub prompt: Prompt,
    /// `login_hint`, cut to a bounded length.
    pub login_hint: Option<String>,
    /// The claims asked for individually (the `claims` parameter, OIDC Core §5.5).
    pub claims: RequestedClaims,
}

impl AuthorizationRequest {
    /// `error` sent back to this request's redirect URI, with its `state`.
    pub fn error_redirect(&self, error: AuthorizationError) -> ErrorRedirect {
        ErrorRedirect {
            redirect_uri: self.redirect_uri.clone(),
            response_mode: self.response_mode,
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
    /// How the response is delivered.
    pub response_mode: ResponseMode,
    /// The scope (space-separated, as validated).
    pub scope: String,
    /// The client's `state`, returned with the code or the error.
    pub state: Option<String>,
    /// The ID token's `nonce`.
    pub nonce: Option<String>,
    /// The S256 PKCE challenge; `None` when the client's PKCE policy let the request omit it
    /// (the code then refuses any `code_verifier`).
    pub code_challenge: Option<String>,
    /// The claims asked for individually (OIDC Core §5.5): released with the grant.
    pub claims: RequestedClaims,
}

impl RequestBinding {
    /// The binding of a validated request.
    pub fn of(request: &AuthorizationRequest) -> Self {
        Self {
            client_id: request.client.client_id.clone(),
            redirect_uri: request.redirect_uri.clone(),
            redirect_uri_sent: request.redirect_uri_sent,
            response_mode: request.response_mode,
            scope: request.scope.as_str().to_owned(),
            state: request.state.clone(),
            nonce: request.nonce.clone(),
            code_challenge: request.code_challenge.clone(),
            claims: request.claims.clone(),
        }
    }

    /// `error` sent back to this request's redirect URI, with its `state`.
    pub fn error_redirect(&self, error: AuthorizationError) -> ErrorRedirect {
        ErrorRedirect {
            redirect_uri: self.redirect_uri.clone(),
            response_mode: self.response_mode,
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
    /// How the error is delivered.
    pub response_mode: ResponseMode,
    /// The request's `state`.
    pub state: Option<String>,
    /// What went wrong.
    pub error: AuthorizationError,
}

impl ErrorRedirect {
    /// The response parameters: `error`, `error_description`, `state` and `iss` (RFC 9207).
    fn pairs<'a>(&'a self, issuer: &'a str) -> Vec<(&'static str, &'a str)> {
        let mut pairs = vec![
            ("error", self.error.code),
            ("error_description", self.error.description),
        ];
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

/// Why a request was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// No verified redirect URI (unknown client, unregistered or missing URI) or a request the
    /// client must not be sent back with: an error page for the user, never a redirect.
    Page(&'static str),
    /// An error sent to the client's verified redirect URI.
    Redirect(ErrorRedirect),
}

/// Where an error of a request object (OIDC Core §6) goes: to the redirect URI of the request
/// sent outside the object when that one is verified (registered, AUTHZ-01/03), with its
/// `state` and in its `response_mode` (the default when it names none we offer) — nothing of an
/// object that failed is trusted — else the error page.
pub fn reject_request_object(
    params: &Params,
    client: &Client,
    error: AuthorizationError,
) -> Rejection {
    let Ok((redirect_uri, _)) = checks::check_redirect_uri(params, client) else {
        return Rejection::Page(error.description);
    };
    let Ok(state) = checks::check_state(params) else {
        return Rejection::Page(error.description);
    };
    Rejection::Redirect(ErrorRedirect {
        redirect_uri,
        response_mode: checks::check_response_mode(params).unwrap_or_default(),
        state,
        error,
    })
}

/// Parses and validates an authorization request. The client and redirect URI come first: until
/// both are known good, every failure is a page; after them, failures go back to the client.
/// A request object must have been applied before
/// ([`request_object::resolve`](super::request_object::resolve)).
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
    // The mode comes before every other check, so that their errors are delivered in it (the
    // form-post certification plan checks that a missing response_type is posted too); an
    // unsupported mode is answered in the default one.
    let response_mode = checks::check_response_mode(params).map_err(|error| {
        Rejection::Redirect(ErrorRedirect {
            redirect_uri: redirect_uri.clone(),
            response_mode: ResponseMode::Query,
            state: state.clone(),
            error,
        })
    })?;
    let fail = |error| {
        Rejection::Redirect(ErrorRedirect {
            redirect_uri: redirect_uri.clone(),
            response_mode,
            state: state.clone(),
            error,
        })
    };
    checks::check_request_object_resolved(params).map_err(fail)?;
    checks::check_response_type(params).map_err(fail)?;
    checks::check_code_flow_allowed(&client).map_err(fail)?;
    let scope = checks::check_scope(params, &client).map_err(fail)?;
    apis.check_authorization_resource(&client, &scope, params.resources())
        .map_err(fail)?;
    let code_challenge = checks::check_pkce(params, &client, &scope).map_err(fail)?;
    let nonce = checks::check_nonce(params).map_err(fail)?;
    let prompt = checks::check_prompt(params).map_err(fail)?;
    let max_age = checks::check_max_age(params).map_err(fail)?;
    let mut claims = checks::check_claims(params).map_err(fail)?;
    // Step-up (OIDC Core §3.1.2.1): acr_values preferring the multi-factor class.
    claims.mfa |= checks::check_acr_values(params);
    let login_hint = checks::login_hint(params);
    Ok(AuthorizationRequest {
        client,
        redirect_uri,
        redirect_uri_sent,
        response_mode,
        scope,
        state,
        nonce,
        code_challenge,
        max_age,
        prompt,
        login_hint,
        claims,
    })
}
