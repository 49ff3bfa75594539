//! The errors of the token, revocation and introspection endpoints as protocol data: an RFC 6749
//! §5.2 code, a description, a status and, for a server-side failure, its cause. How they are
//! answered (headers, body, logging the cause) is the HTTP edge's business: `http::error`.

use crate::db::DbError;

/// What caused a server-side failure: kept as the error's source, logged, never sent.
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// An OAuth error: a §5.2 code, a description without CR/LF/TAB or internals, an HTTP status,
/// and for a 5xx the cause.
#[derive(Debug, thiserror::Error)]
#[error("{code}: {description}")]
pub struct OAuthError {
    /// The §5.2 code.
    pub code: &'static str,
    /// Human-readable, safe to show.
    pub description: String,
    /// HTTP status.
    pub status: u16,
    /// Send `WWW-Authenticate: Basic` (a failed Basic client authentication).
    pub basic_challenge: bool,
    /// Why the server failed (only `temporarily_unavailable` and `server_error` have one).
    #[source]
    pub cause: Option<Cause>,
}

impl OAuthError {
    fn new(code: &'static str, status: u16, description: impl Into<String>) -> Self {
        Self {
            code,
            description: description.into(),
            status,
            basic_challenge: false,
            cause: None,
        }
    }

    /// 400 `invalid_request`.
    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::new("invalid_request", 400, description)
    }

    /// 408 `invalid_request`: the body did not arrive within the request timeout.
    pub fn body_timeout() -> Self {
        Self {
            status: 408,
            ..Self::invalid_request("The request body did not arrive in time.")
        }
    }

    /// 413 `invalid_request`: the body is larger than allowed.
    pub fn payload_too_large() -> Self {
        Self {
            status: 413,
            ..Self::invalid_request("The request body is too large.")
        }
    }

    /// 401 `invalid_client`.
    pub fn invalid_client(basic: bool) -> Self {
        Self {
            basic_challenge: basic,
            ..Self::new("invalid_client", 401, "Client authentication failed.")
        }
    }

    /// 401 `invalid_client` saying why (a client assertion that was refused: the client is the
    /// one who needs the reason, and it names nothing about other clients).
    pub fn invalid_client_because(description: impl Into<String>) -> Self {
        Self::new("invalid_client", 401, description)
    }

    /// 400 `invalid_grant`.
    pub fn invalid_grant(description: impl Into<String>) -> Self {
        Self::new("invalid_grant", 400, description)
    }

    /// 400 `unauthorized_client`.
    pub fn unauthorized_client(description: impl Into<String>) -> Self {
        Self::new("unauthorized_client", 400, description)
    }

    /// 400 `unsupported_grant_type`.
    pub fn unsupported_grant_type() -> Self {
        Self::new(
            "unsupported_grant_type",
            400,
            "This grant type is not supported.",
        )
    }

    /// 400 `invalid_scope`.
    pub fn invalid_scope(description: impl Into<String>) -> Self {
        Self::new("invalid_scope", 400, description)
    }

    /// 400 `invalid_target` (RFC 8707): an audience the client may not request.
    pub fn invalid_target() -> Self {
        Self::new(
            "invalid_target",
            400,
            "The requested audience is not allowed for this client.",
        )
    }

    /// 400 `invalid_target` (RFC 8707 §2) with its own description: the resource is invalid,
    /// missing, unknown or not allowed.
    pub fn invalid_target_because(description: impl Into<String>) -> Self {
        Self::new("invalid_target", 400, description)
    }

    /// 400 `authorization_pending` (RFC 8628 §3.5): the user has not decided yet; poll again
    /// after the interval.
    pub fn authorization_pending() -> Self {
        Self::new(
            "authorization_pending",
            400,
            "The user has not yet approved or denied the request.",
        )
    }

    /// 400 `slow_down` (RFC 8628 §3.5): still pending, and polled too fast; the interval is now
    /// `interval` seconds, for this and every later request.
    pub fn slow_down(interval: i32) -> Self {
        Self::new(
            "slow_down",
            400,
            format!("Polled too fast; wait {interval} seconds between requests."),
        )
    }

    /// 400 `access_denied` (RFC 8628 §3.5): the user denied the request.
    pub fn access_denied(description: impl Into<String>) -> Self {
        Self::new("access_denied", 400, description)
    }

    /// 400 `expired_token` (RFC 8628 §3.5): the device code expired; the device may start again.
    pub fn expired_token() -> Self {
        Self::new(
            "expired_token",
            400,
            "The device code has expired; start a new device authorization.",
        )
    }

    /// 429 `slow_down`: too many device authorization requests (RFC 8628 §5.2 does not name an
    /// error for it; the client is to wait, as a polling device is told with `slow_down`).
    pub fn too_many_requests(description: impl Into<String>) -> Self {
        Self::new("slow_down", 429, description)
    }

    /// An authorization request's error (its code and description) at an endpoint that answers
    /// in JSON (the device authorization endpoint, RFC 8628 §3.2 and RFC 6749 §5.2).
    pub fn from_code(code: &'static str, description: &'static str) -> Self {
        Self::new(code, 400, description)
    }

    /// 503 `temporarily_unavailable` (RFC 6749 §4.1.2.1, used at the token endpoint as common
    /// practice): a dependency is away; the client may retry.
    pub fn unavailable(cause: impl Into<Cause>) -> Self {
        Self {
            cause: Some(cause.into()),
            ..Self::new(
                "temporarily_unavailable",
                503,
                "The service is temporarily unavailable; try again shortly.",
            )
        }
    }

    /// 500 `server_error`.
    pub fn internal(cause: impl Into<Cause>) -> Self {
        Self {
            cause: Some(cause.into()),
            ..Self::new("server_error", 500, "An internal error occurred.")
        }
    }
}

impl From<DbError> for OAuthError {
    fn from(error: DbError) -> Self {
        if error.is_transient() {
            Self::unavailable(error)
        } else {
            Self::internal(error)
        }
    }
}

impl From<diesel::result::Error> for OAuthError {
    fn from(error: diesel::result::Error) -> Self {
        DbError::Query(error).into()
    }
}
