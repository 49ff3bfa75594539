//! Rows as Rust types.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::signing_keys;

/// A row of `signing_keys`.
#[derive(Queryable, Selectable, Insertable, Clone)]
#[diesel(table_name = signing_keys)]
pub struct SigningKeyRow {
    /// RFC 7638 thumbprint.
    pub kid: String,
    /// Algorithm name.
    pub alg: String,
    /// Lifecycle state.
    pub state: String,
    /// Public JWK JSON.
    pub public_jwk: String,
    /// Sealed private key.
    pub private_key_sealed: String,
    /// Creation time (UTC).
    pub created_at: NaiveDateTime,
    /// Activation time (UTC).
    pub activated_at: Option<NaiveDateTime>,
    /// Retirement time (UTC).
    pub retired_at: Option<NaiveDateTime>,
    /// Revocation time (UTC).
    pub revoked_at: Option<NaiveDateTime>,
    /// A pending key's due activation (UTC).
    pub activates_at: Option<NaiveDateTime>,
    /// When a retired key leaves the JWKS (UTC).
    pub remove_after: Option<NaiveDateTime>,
    /// When it left the JWKS (UTC).
    pub removed_at: Option<NaiveDateTime>,
}

impl std::fmt::Debug for SigningKeyRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeyRow")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("state", &self.state)
            .field("private_key_sealed", &"<sealed>")
            .finish_non_exhaustive()
    }
}

/// A row of `users`.
#[derive(Queryable, Selectable, Insertable, Clone)]
#[diesel(table_name = crate::db::schema::users)]
pub struct UserRow {
    /// UUID.
    pub id: String,
    /// As chosen.
    pub username: String,
    /// Lower-cased username.
    pub username_normalized: String,
    /// As given.
    pub email: String,
    /// Lower-cased email.
    pub email_normalized: String,
    /// Argon2id PHC string.
    pub password_hash: String,
    /// Created (UTC).
    pub created_at: NaiveDateTime,
    /// Last change (UTC).
    pub updated_at: NaiveDateTime,
    /// Last password change (UTC).
    pub password_changed_at: NaiveDateTime,
    /// Set when disabled.
    pub disabled_at: Option<NaiveDateTime>,
}

impl std::fmt::Debug for UserRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRow")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("password_hash", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// A row of `user_claims` (OIDC Core §5.1).
#[derive(Queryable, Selectable, Insertable, Clone, Debug, PartialEq, Eq)]
#[diesel(table_name = crate::db::schema::user_claims)]
pub struct UserClaimsRow {
    /// The user.
    pub user_id: String,
    /// JSON object of the claims that are set (`accounts::profile::Profile`).
    pub claims: String,
}

/// A row of `refresh_token_families`.
#[derive(Queryable, Selectable, Insertable, Clone, Debug)]
#[diesel(table_name = crate::db::schema::refresh_token_families)]
pub struct RefreshFamilyRow {
    /// UUID.
    pub id: String,
    /// The user.
    pub user_id: String,
    /// The client.
    pub client_id: String,
    /// Granted scope.
    pub scope: String,
    /// Login time.
    pub created_at: NaiveDateTime,
    /// Absolute end.
    pub expires_at: NaiveDateTime,
    /// Revocation time.
    pub revoked_at: Option<NaiveDateTime>,
    /// Revocation reason.
    pub revoked_reason: Option<String>,
    /// When the user authenticated (OAuth grants).
    pub auth_time: Option<NaiveDateTime>,
    /// The browser session of the grant (OAuth grants).
    pub sid: Option<String>,
    /// The claims the grant's request asked for individually (OIDC Core §5.5; JSON).
    pub requested_claims: Option<String>,
    /// How the user signed in (RFC 8176 methods, space-separated).
    pub amr: String,
}

/// A row of `refresh_tokens` (the hash only; the token itself is never stored).
#[derive(Queryable, Selectable, Insertable, Clone, Debug)]
#[diesel(table_name = crate::db::schema::refresh_tokens)]
pub struct RefreshTokenRow {
    /// SHA-256 of the token.
    pub token_hash: String,
    /// Its family.
    pub family_id: String,
    /// The token it replaced.
    pub parent_hash: Option<String>,
    /// Issued.
    pub created_at: NaiveDateTime,
    /// Rotated.
    pub used_at: Option<NaiveDateTime>,
}

/// A row of `clients`.
#[derive(Queryable, Selectable, Insertable, AsChangeset, Clone, Debug)]
#[diesel(table_name = crate::db::schema::clients, treat_none_as_null = true)]
pub struct ClientRow {
    /// The client identifier.
    pub client_id: String,
    /// Hash of the secret (confidential clients).
    pub secret_hash: Option<String>,
    /// `public` or `confidential`.
    pub client_type: String,
    /// JSON array.
    pub redirect_uris: String,
    /// JSON array.
    pub grant_types: String,
    /// JSON array.
    pub scopes: String,
    /// JSON array.
    pub audiences: String,
    /// Access-token algorithm.
    pub access_token_alg: String,
    /// ID-token algorithm.
    pub id_token_alg: String,
    /// 1: skips consent.
    pub first_party: i32,
    /// JSON array.
    pub post_logout_redirect_uris: String,
    /// Created.
    pub created_at: NaiveDateTime,
    /// Last change.
    pub updated_at: NaiveDateTime,
    /// JSON array: audiences whose tokens this client may introspect.
    pub introspection_audiences: String,
    /// PKCE policy: `required`, `pkce_or_nonce` or `optional`.
    pub pkce: String,
    /// JSON array: explicitly registered web origins (CORS).
    pub web_origins: String,
    /// Second-factor policy: `off` (the deployment's), `optional` or `required`.
    pub second_factor: String,
    /// `none`, `client_secret_basic` or `private_key_jwt`.
    pub token_endpoint_auth_method: String,
    /// JSON Web Key Set of public keys (`private_key_jwt`).
    pub jwks: Option<String>,
    /// The https URL of its JSON Web Key Set (`private_key_jwt`), instead of `jwks`.
    pub jwks_uri: Option<String>,
    /// JSON array of the audiences it may ask for by token exchange (RFC 8693).
    pub token_exchange_audiences: String,
    /// NULL (an administrator's), `token` or `open` (RFC 7591 registration).
    pub registration: Option<String>,
    /// Hash of the RFC 7592 registration access token.
    pub registration_token_hash: Option<String>,
    /// Last token issued (dynamic clients).
    pub last_used_at: Option<NaiveDateTime>,
    /// RFC 7591 `client_name`.
    pub client_name: Option<String>,
    /// RFC 7591 `logo_uri`.
    pub logo_uri: Option<String>,
    /// RFC 7591 `policy_uri`.
    pub policy_uri: Option<String>,
    /// RFC 7591 `tos_uri`.
    pub tos_uri: Option<String>,
    /// JSON array: RFC 7591 `contacts`.
    pub contacts: String,
    /// `RS256` or `ES256`: signed userinfo responses (OIDC Core §5.3.2); `None`: plain JSON.
    pub userinfo_signed_response_alg: Option<String>,
    /// JSON array: the URLs it may pass as `request_uri` (OIDC Core §6.2).
    pub request_uris: String,
    /// The algorithm of its request objects; `None`: not registered.
    pub request_object_signing_alg: Option<String>,
    /// JSON `{"sector_identifier", "sector_identifier_uri"}`: pairwise subject identifiers;
    /// NULL: public.
    pub pairwise_sector: Option<String>,
}

/// A row of `client_logos`: a dynamic client's logo, as served.
#[derive(Queryable, Selectable, Insertable, Clone)]
#[diesel(table_name = crate::db::schema::client_logos)]
pub struct ClientLogoRow {
    /// The client.
    pub client_id: String,
    /// The recognised image type (`image/png`, `image/jpeg`, `image/gif`, `image/webp`).
    pub content_type: String,
    /// The image, at most 64 KiB.
    pub bytes: Vec<u8>,
    /// When it was fetched.
    pub fetched_at: NaiveDateTime,
}

/// A row of `initial_access_tokens`; serialised for administrators without its hash.
#[derive(Queryable, Selectable, Insertable, serde::Serialize, Clone, Debug)]
#[diesel(table_name = crate::db::schema::initial_access_tokens)]
pub struct InitialAccessTokenRow {
    /// UUID.
    pub id: String,
    /// Hash of the token.
    #[serde(skip)]
    pub token_hash: String,
    /// What it is for.
    pub description: String,
    /// Who issued it.
    pub created_by: String,
    /// Issued.
    pub created_at: NaiveDateTime,
    /// Expires.
    pub expires_at: NaiveDateTime,
    /// Uses allowed; `None`: no limit.
    pub max_uses: Option<i32>,
    /// Uses made.
    pub uses: i32,
    /// Revoked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<NaiveDateTime>,
}

/// A row of `browser_sessions`.
#[derive(Queryable, Selectable, Insertable, Clone, Debug)]
#[diesel(table_name = crate::db::schema::browser_sessions)]
pub struct BrowserSessionRow {
    /// SHA-256 of the cookie secret.
    pub id_hash: String,
    /// Public session id.
    pub sid: String,
    /// The user.
    pub user_id: String,
    /// Authentication time.
    pub auth_time: NaiveDateTime,
    /// Created.
    pub created_at: NaiveDateTime,
    /// Absolute end.
    pub expires_at: NaiveDateTime,
    /// Set at logout.
    pub ended_at: Option<NaiveDateTime>,
    /// How the user signed in (RFC 8176 methods, space-separated).
    pub amr: String,
}

/// A row of `authorization_requests`.
#[derive(Queryable, Selectable, Insertable, Clone, Debug)]
#[diesel(table_name = crate::db::schema::authorization_requests)]
pub struct AuthorizationRequestRow {
    /// Random id.
    pub id: String,
    /// Hash of the per-flow cookie.
    pub browser_hash: String,
    /// Hash of the CSRF token.
    pub csrf_hash: String,
    /// The client.
    pub client_id: String,
    /// The redirect URI.
    pub redirect_uri: String,
    /// 1: the request named it.
    pub redirect_uri_sent: i32,
    /// Scope.
    pub scope: String,
    /// State.
    pub state: Option<String>,
    /// Nonce.
    pub nonce: Option<String>,
    /// S256 challenge; `None`: the request sent none (the client's PKCE policy allowed it).
    pub code_challenge: Option<String>,
    /// `max_age` in seconds, as asked: checked again when the request resumes after the
    /// consent page (the user may have taken up to the request's lifetime to decide).
    pub max_age: Option<i32>,
    /// The `prompt` flags: bit 1 `prompt=login` (written, not read back: a sign-in at the
    /// hosted page is fresh), bit 2 `prompt=consent` (the consent page follows the sign-in
    /// whatever was approved before). One column for both: a table has at most 16 columns
    /// without diesel's `32-column-tables` feature.
    pub force_login: i32,
    /// Authenticated user (consent step).
    pub user_id: Option<String>,
    /// Their authentication time.
    pub auth_time: Option<NaiveDateTime>,
    /// Expires.
    pub expires_at: NaiveDateTime,
    /// Completed.
    pub completed_at: Option<NaiveDateTime>,
    /// `query` or `form_post`: how the response is delivered.
    pub response_mode: String,
    /// The individually requested claims (OIDC Core §5.5), as `oidc::claims_request` stores
    /// them; `None`: none.
    pub requested_claims: Option<String>,
    /// The user who passed the password and owes the second factor (or its enrolment).
    pub factor_user_id: Option<String>,
    /// When their password was checked.
    pub factor_at: Option<NaiveDateTime>,
}

/// A row of `authorization_codes`.
#[derive(Queryable, Selectable, Insertable, Clone, Debug)]
#[diesel(table_name = crate::db::schema::authorization_codes)]
pub struct AuthorizationCodeRow {
    /// SHA-256 of the code.
    pub code_hash: String,
    /// The client.
    pub client_id: String,
    /// The user.
    pub user_id: String,
    /// Redirect URI of the request.
    pub redirect_uri: String,
    /// 1: the request named it.
    pub redirect_uri_sent: i32,
    /// Scope.
    pub scope: String,
    /// Nonce.
    pub nonce: Option<String>,
    /// S256 challenge; `None`: the request sent none (the client's PKCE policy allowed it).
    pub code_challenge: Option<String>,
    /// Authentication time.
    pub auth_time: NaiveDateTime,
    /// Browser session.
    pub sid: Option<String>,
    /// Created.
    pub created_at: NaiveDateTime,
    /// Expires.
    pub expires_at: NaiveDateTime,
    /// Redeemed.
    pub used_at: Option<NaiveDateTime>,
    /// Family issued at redemption.
    pub family_id: Option<String>,
    /// Access token issued at redemption.
    pub access_jti: Option<String>,
    /// The request's individually requested claims (OIDC Core §5.5; JSON).
    pub requested_claims: Option<String>,
    /// How the user signed in (RFC 8176 methods, space-separated).
    pub amr: String,
}

/// A row of `access_tokens`.
#[derive(Queryable, Selectable, Insertable, Clone, Debug)]
#[diesel(table_name = crate::db::schema::access_tokens)]
pub struct AccessTokenRow {
    /// The `jti`.
    pub jti: String,
    /// The grant.
    pub family_id: Option<String>,
    /// The client.
    pub client_id: String,
    /// `exp`.
    pub expires_at: NaiveDateTime,
    /// Revoked.
    pub revoked_at: Option<NaiveDateTime>,
    /// The user it speaks for (`None`: a client's own token).
    pub user_id: Option<String>,
    /// The code grant's individually requested claims (OIDC Core §5.5; JSON); `None` for
    /// refreshed tokens (their family holds them) and for grants that asked for none.
    pub requested_claims: Option<String>,
}

/// A row of `consents`: what a user approved for a client.
#[derive(Queryable, Selectable, Insertable, Clone, Debug)]
#[diesel(table_name = crate::db::schema::consents)]
pub struct ConsentRow {
    /// The user.
    pub user_id: String,
    /// The client.
    pub client_id: String,
    /// The union of the approved scopes (space-separated).
    pub scope: String,
    /// First approval (UTC).
    pub created_at: NaiveDateTime,
    /// Last approval (UTC).
    pub updated_at: NaiveDateTime,
    /// The claims approved beyond the scopes (space-separated names).
    pub claims: String,
}

/// A row of `apis`.
#[derive(Queryable, Selectable, Insertable, Clone, Debug)]
#[diesel(table_name = crate::db::schema::apis)]
pub struct ApiRow {
    /// UUID.
    pub id: String,
    /// The audience: an absolute URI.
    pub identifier: String,
    /// Shown to operators.
    pub name: String,
    /// Created.
    pub created_at: NaiveDateTime,
    /// Last change of the API or its scopes.
    pub updated_at: NaiveDateTime,
}

/// A row of `api_scopes`.
#[derive(Queryable, Selectable, Insertable, Clone, Debug)]
#[diesel(table_name = crate::db::schema::api_scopes)]
pub struct ApiScopeRow {
    /// The scope name.
    pub scope: String,
    /// Its API.
    pub api_id: String,
    /// Shown on the consent page.
    pub description: String,
    /// Created.
    pub created_at: NaiveDateTime,
}

/// A row of `second_factors`.
#[derive(Queryable, Selectable, Insertable, Clone)]
#[diesel(table_name = crate::db::schema::second_factors)]
pub struct SecondFactorRow {
    /// UUID.
    pub id: String,
    /// The user.
    pub user_id: String,
    /// `totp` or `passkey`.
    pub kind: String,
    /// Its name.
    pub name: String,
    /// TOTP: the secret sealed under the KEK.
    pub secret_sealed: Option<String>,
    /// TOTP: the time step of the last code accepted.
    pub last_used_step: Option<i64>,
    /// Created.
    pub created_at: NaiveDateTime,
    /// Enrolment finished.
    pub confirmed_at: Option<NaiveDateTime>,
    /// Last use.
    pub last_used_at: Option<NaiveDateTime>,
}

impl std::fmt::Debug for SecondFactorRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecondFactorRow")
            .field("id", &self.id)
            .field("user_id", &self.user_id)
            .field("kind", &self.kind)
            .field("secret_sealed", &"<redacted>")
            .field("confirmed_at", &self.confirmed_at)
            .finish_non_exhaustive()
    }
}

/// A passkey: a row of `second_factors` of kind `passkey`, its WebAuthn columns.
#[derive(Queryable, Selectable, Clone, Debug)]
#[diesel(table_name = crate::db::schema::second_factors)]
pub struct PasskeyRow {
    /// UUID.
    pub id: String,
    /// The user.
    pub user_id: String,
    /// The name the user gave it.
    pub name: String,
    /// Registered.
    pub created_at: NaiveDateTime,
    /// Last use.
    pub last_used_at: Option<NaiveDateTime>,
    /// The credential id, base64url.
    pub credential_id: Option<String>,
    /// serde_json of webauthn-rs's `Passkey` (public data).
    pub passkey: Option<String>,
    /// The signature counter after the last use.
    pub sign_count: Option<i64>,
    /// BE flag, 0 or 1.
    pub backup_eligible: Option<i32>,
    /// BS flag, 0 or 1.
    pub backup_state: Option<i32>,
}

/// A row of `webauthn_ceremonies`.
#[derive(Queryable, Selectable, Insertable, Clone)]
#[diesel(table_name = crate::db::schema::webauthn_ceremonies)]
pub struct CeremonyRow {
    /// Base64url SHA-256 of the ceremony id.
    pub id_hash: String,
    /// `register`, `second_factor` or `passwordless`.
    pub purpose: String,
    /// The user (NULL for passwordless).
    pub user_id: Option<String>,
    /// The pending authorization request.
    pub request_id: Option<String>,
    /// serde_json of the webauthn-rs state.
    pub state: String,
    /// Registration: the passkey's name.
    pub passkey_name: Option<String>,
    /// Created.
    pub created_at: NaiveDateTime,
    /// Expires.
    pub expires_at: NaiveDateTime,
    /// Finished.
    pub used_at: Option<NaiveDateTime>,
}

impl std::fmt::Debug for CeremonyRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CeremonyRow")
            .field("purpose", &self.purpose)
            .field("user_id", &self.user_id)
            .field("request_id", &self.request_id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// A row of `email_tokens`.
#[derive(Queryable, Selectable, Insertable, Clone, Debug)]
#[diesel(table_name = crate::db::schema::email_tokens)]
pub struct EmailTokenRow {
    /// Base64url SHA-256 of the token (never the token).
    pub token_hash: String,
    /// The user.
    pub user_id: String,
    /// `verify_email`, `change_email` or `reset_password`.
    pub purpose: String,
    /// The address it was sent to.
    pub email: String,
    /// Issued (UTC).
    pub created_at: NaiveDateTime,
    /// Expires (UTC).
    pub expires_at: NaiveDateTime,
    /// Used or superseded (UTC).
    pub used_at: Option<NaiveDateTime>,
}

/// A row of `mail_outbox`.
#[derive(Queryable, Selectable, Insertable, Clone)]
#[diesel(table_name = crate::db::schema::mail_outbox)]
pub struct OutboxRow {
    /// UUID.
    pub id: String,
    /// The recipient's address.
    pub recipient: String,
    /// Subject line.
    pub subject: String,
    /// The body sealed under the KEK (`""` once sent).
    pub body: String,
    /// What the mail is for.
    pub purpose: String,
    /// Queued (UTC).
    pub created_at: NaiveDateTime,
    /// Next attempt due (UTC).
    pub next_attempt_at: NaiveDateTime,
    /// Attempts made.
    pub attempts: i32,
    /// Claimed by an instance until then (UTC).
    pub claimed_until: Option<NaiveDateTime>,
    /// Sent (UTC).
    pub sent_at: Option<NaiveDateTime>,
    /// Given up (UTC).
    pub failed_at: Option<NaiveDateTime>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
}

impl std::fmt::Debug for OutboxRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboxRow")
            .field("id", &self.id)
            .field("purpose", &self.purpose)
            .field("body", &"<sealed>")
            .finish_non_exhaustive()
    }
}

/// A row of `device_authorizations` (RFC 8628).
#[derive(Queryable, Selectable, Insertable, Clone, Debug)]
#[diesel(table_name = crate::db::schema::device_authorizations)]
pub struct DeviceAuthorizationRow {
    /// UUID.
    pub id: String,
    /// SHA-256 of the device code.
    pub device_code_hash: String,
    /// SHA-256 of the normalised user code.
    pub user_code_hash: String,
    /// The client.
    pub client_id: String,
    /// The requested scope.
    pub scope: String,
    /// The requested resource (RFC 8707).
    pub resource: Option<String>,
    /// `pending`, `approved` or `denied`.
    pub status: String,
    /// Who decided.
    pub user_id: Option<String>,
    /// Their authentication time.
    pub auth_time: Option<NaiveDateTime>,
    /// How they signed in.
    pub amr: Option<String>,
    /// Polling interval, seconds.
    pub interval_secs: i32,
    /// Last poll.
    pub last_polled_at: Option<NaiveDateTime>,
    /// Created.
    pub created_at: NaiveDateTime,
    /// Expires.
    pub expires_at: NaiveDateTime,
    /// Decided.
    pub decided_at: Option<NaiveDateTime>,
    /// Redeemed.
    pub used_at: Option<NaiveDateTime>,
    /// Family issued at redemption.
    pub family_id: Option<String>,
    /// Access token issued at redemption.
    pub access_jti: Option<String>,
}
