//! Passkeys (WebAuthn Level 2, issue 17 item 1): registration from the account page, sign-in
//! without a password (discoverable credentials) and a passkey as the second factor after a
//! password. The WebAuthn checks are webauthn-rs's; this service keeps what it needs around them.
//!
//! - Relying party: the id is the issuer's host, the origin the issuer's scheme, host and port
//!   ([`relying_party`]); webauthn-rs checks both in every response (clientData `origin`, the
//!   authenticator data's `rpIdHash`). An issuer whose host is an IP address cannot have
//!   passkeys (the WebAuthn RP id is a domain; browsers refuse IP origins): they are then
//!   unavailable, never a start-up failure.
//! - User verification is required in every ceremony (webauthn-rs's passkey calls), so a passkey
//!   alone is two factors (possession and a PIN or biometric). Attestation `none`.
//! - Registration asks for a discoverable credential (`residentKey: required`), so the same
//!   passkey signs in without a username. The user handle is the user's id (a UUID, no PII).
//! - A ceremony's state (its challenge) stays in the database under the hash of a random id the
//!   form carries, taken once whatever the outcome (no replay), for [`CEREMONY_TTL`].
//! - Counters: an assertion whose signature counter does not move forward (when either counter
//!   is non-zero) is refused (a cloned authenticator, WebAuthn §6.1.1); the passkey is kept so its
//!   owner can remove it. The stored counter only moves forward (a conditional update).
//! - Every sign-in attempt counts on the network's second-factor budget, and on the user's once
//!   the user is known (`PORTCULLIS_LOGIN_MAX_ATTEMPTS[_PER_IP]` per `PORTCULLIS_LOGIN_WINDOW`);
//!   a success takes its counts back.

use std::net::IpAddr;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::NaiveDateTime;
use webauthn_rs::prelude::{
    AuthenticationResult, CredentialID, DiscoverableAuthentication, DiscoverableKey, Passkey,
    PasskeyAuthentication, PasskeyRegistration, PublicKeyCredential, RegisterPublicKeyCredential,
    Url, Uuid, Webauthn, WebauthnBuilder, WebauthnError,
};

use super::AccountSettings;
use crate::clock::Clock;
use crate::db::models::{CeremonyRow, PasskeyRow};
use crate::db::queries::{throttle, users as users_q, webauthn as q};
use crate::db::{Db, DbConn, DbError, write_transaction};
use crate::secrets::{CeremonyId, NoRandomness};

/// How long a ceremony waits for the browser (webauthn-rs's default timeout too).
pub const CEREMONY_TTL: chrono::Duration = chrono::Duration::minutes(5);
/// The longest passkey name, in characters.
pub const MAX_NAME_CHARS: usize = 64;
/// The most passkeys a user can have (each is listed in every second-factor request).
pub const MAX_PASSKEYS: usize = 10;
/// The largest credential a browser may post, in bytes (a passkey's is well under 4 KiB).
pub const MAX_CREDENTIAL_BYTES: usize = 16 * 1024;

/// What a ceremony is for (the `purpose` column).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// Registering a passkey on the account page.
    Register,
    /// The second factor after a password.
    SecondFactor,
    /// Signing in with a passkey alone.
    Passwordless,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Self::Register => "register",
            Self::SecondFactor => "second_factor",
            Self::Passwordless => "passwordless",
        }
    }
}

/// Why a passkey operation failed.
#[derive(Debug, thiserror::Error)]
pub enum PasskeyError {
    /// Passkeys are off: the issuer's host is not a domain.
    #[error("passkeys are unavailable for this issuer")]
    Unavailable,
    /// The browser's answer was refused: a WebAuthn check failed (origin, rpId, challenge,
    /// signature, user verification, counter), the ceremony is unknown, used or expired, the
    /// credential is unknown or removed, or its user cannot sign in. The cause is logged, never
    /// shown.
    #[error("passkey refused")]
    Refused,
    /// The name is empty, too long or holds control characters.
    #[error("invalid passkey name")]
    InvalidName,
    /// The user has [`MAX_PASSKEYS`] already.
    #[error("too many passkeys")]
    TooMany,
    /// This credential is registered already (to this or another account).
    #[error("passkey registered already")]
    Duplicate,
    /// Too many attempts; retry after this many seconds.
    #[error("too many attempts")]
    Throttled(u64),
    /// Database trouble.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The system's random generator failed.
    #[error(transparent)]
    Random(#[from] NoRandomness),
    /// webauthn-rs could not start a ceremony, or stored state does not read back (logged).
    #[error("webauthn: {0}")]
    Internal(String),
}

impl From<diesel::result::Error> for PasskeyError {
    fn from(error: diesel::result::Error) -> Self {
        Self::Db(DbError::Query(error))
    }
}

/// A ceremony started: the id its form carries and the options for the browser
/// (`navigator.credentials.create` or `.get`), as JSON text.
pub struct Started {
    /// The ceremony's id (single use).
    pub ceremony: CeremonyId,
    /// `{"publicKey": {…}}` (WebAuthn Level 2 `PublicKeyCredentialCreationOptions` or
    /// `…RequestOptions`, binary fields base64url).
    pub options: String,
}

/// A passkey as the account page lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PasskeyInfo {
    /// Its id (to remove it).
    pub id: String,
    /// Its name.
    pub name: String,
    /// Registered (UTC).
    pub created_at: NaiveDateTime,
    /// Last used to sign in (UTC).
    pub last_used_at: Option<NaiveDateTime>,
    /// Backed up (BS flag): a synced passkey.
    pub synced: bool,
    /// The signature counter after the last use (0 for most synced passkeys).
    pub sign_count: i64,
}

/// A passkey's successful assertion.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Asserted {
    /// The user it signed in.
    pub user_id: String,
    /// Their username.
    pub username: String,
    /// The passkey used.
    pub passkey_id: String,
    /// Backed up (BS): a synced passkey, software-held as far as the server can tell (RFC 8176
    /// `swk`); else `hwk`.
    pub synced: bool,
}

/// The relying party of `issuer`: its id (the host, which must be a domain: WebAuthn §5.1.1
/// RP ID; browsers refuse IP origins) and its origin (scheme, host and port, without the
/// issuer's path: an origin has none). `https://id.example.com/tenant` →
/// (`id.example.com`, `https://id.example.com`).
///
/// # Errors
/// A text saying why, when the issuer does not parse or its host is not a domain.
pub fn relying_party(issuer: &str) -> Result<(String, Url), String> {
    let url = Url::parse(issuer).map_err(|e| format!("`{issuer}` is not a URL: {e}"))?;
    let Some(domain) = url.domain() else {
        return Err(format!(
            "the issuer's host in `{issuer}` is not a domain name (WebAuthn relying-party ids are domains)"
        ));
    };
    let origin = Url::parse(&url.origin().ascii_serialization())
        .map_err(|e| format!("`{issuer}` has no origin: {e}"))?;
    Ok((domain.to_owned(), origin))
}

/// The WebAuthn relying party for `issuer` (named `rp_name` in authenticators), or why passkeys
/// are unavailable. Subdomains and other ports are never accepted as origins.
///
/// # Errors
/// As [`relying_party`], or webauthn-rs's refusal of the pair.
pub fn webauthn_for(issuer: &str, rp_name: &str) -> Result<Webauthn, String> {
    let (rp_id, origin) = relying_party(issuer)?;
    WebauthnBuilder::new(&rp_id, &origin)
        .and_then(|builder| {
            builder
                .rp_name(rp_name)
                .timeout(std::time::Duration::from_secs(
                    u64::try_from(CEREMONY_TTL.num_seconds()).unwrap_or(300),
                ))
                .allow_subdomains(false)
                .allow_any_port(false)
                .build()
        })
        .map_err(|e| format!("webauthn-rs refused relying party `{rp_id}` at `{origin}`: {e}"))
}

/// The name of a passkey as typed, trimmed; `None` when empty, longer than [`MAX_NAME_CHARS`]
/// or holding control characters.
pub fn passkey_name(text: &str) -> Option<String> {
    let name = text.trim();
    (!name.is_empty()
        && name.chars().count() <= MAX_NAME_CHARS
        && !name.chars().any(char::is_control))
    .then(|| name.to_owned())
}

fn internal(error: impl std::fmt::Display) -> PasskeyError {
    PasskeyError::Internal(error.to_string())
}

/// The base64url text of a credential id, as stored.
fn credential_text(id: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(id)
}

/// What the stored form of a `Passkey` says of its counter and flags (webauthn-rs keeps them
/// private; its serde form is stable, `CredentialV5`).
fn counter_and_flags(passkey: &Passkey) -> Result<(String, i64, bool, bool), PasskeyError> {
    let value = serde_json::to_value(passkey).map_err(internal)?;
    let cred = &value["cred"];
    let text = serde_json::to_string(&value).map_err(internal)?;
    Ok((
        text,
        cred["counter"].as_i64().unwrap_or(0),
        cred["backup_eligible"].as_bool().unwrap_or(false),
        cred["backup_state"].as_bool().unwrap_or(false),
    ))
}

fn stored_passkey(row: &PasskeyRow) -> Result<Passkey, PasskeyError> {
    let text = row
        .passkey
        .as_deref()
        .ok_or_else(|| internal("passkey row without its credential"))?;
    serde_json::from_str(text).map_err(internal)
}

/// The JSON of `value` with `edit` applied.
fn options_json<T: serde::Serialize>(
    value: &T,
    edit: impl FnOnce(&mut serde_json::Value),
) -> Result<String, PasskeyError> {
    let mut json = serde_json::to_value(value).map_err(internal)?;
    edit(&mut json);
    serde_json::to_string(&json).map_err(internal)
}

/// Logs why webauthn-rs refused an answer (never shown) and refuses.
fn refused(error: &WebauthnError, purpose: Purpose) -> PasskeyError {
    match error {
        WebauthnError::CredentialPossibleCompromise => {
            tracing::warn!(
                purpose = purpose.as_str(),
                "passkey refused: its signature counter did not move forward (a cloned authenticator?)"
            );
        }
        other => tracing::info!(purpose = purpose.as_str(), error = %other, "passkey refused"),
    }
    PasskeyError::Refused
}

/// Passkeys of users. Cheap to clone.
#[derive(Clone)]
pub struct Passkeys {
    db: Db,
    webauthn: Option<Arc<Webauthn>>,
    settings: AccountSettings,
    clock: Clock,
}

impl std::fmt::Debug for Passkeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Passkeys")
            .field("available", &self.webauthn.is_some())
            .finish()
    }
}

impl Passkeys {
    /// The service over `db`; `webauthn` is `None` when passkeys are unavailable. Attempts are
    /// throttled by `settings`' login budgets.
    pub fn new(
        db: Db,
        webauthn: Option<Webauthn>,
        settings: AccountSettings,
        clock: Clock,
    ) -> Self {
        Self {
            db,
            webauthn: webauthn.map(Arc::new),
            settings,
            clock,
        }
    }

    /// Whether passkeys can be used at all (the issuer's host is a domain).
    pub fn available(&self) -> bool {
        self.webauthn.is_some()
    }

    fn webauthn(&self) -> Result<Arc<Webauthn>, PasskeyError> {
        self.webauthn.clone().ok_or(PasskeyError::Unavailable)
    }

    /// The user's passkeys, oldest first.
    pub async fn list(&self, user_id: String) -> Result<Vec<PasskeyInfo>, PasskeyError> {
        let rows = self
            .db
            .run(move |conn| Ok::<_, PasskeyError>(q::passkeys_of(conn, &user_id)?))
            .await?;
        Ok(rows
            .into_iter()
            .map(|row| PasskeyInfo {
                id: row.id,
                name: row.name,
                created_at: row.created_at,
                last_used_at: row.last_used_at,
                synced: row.backup_state == Some(1),
                sign_count: row.sign_count.unwrap_or(0),
            })
            .collect())
    }

    /// Starts registering a passkey named `name` for `user_id` (`username` is what the
    /// authenticator shows): the creation options exclude the user's passkeys, ask for a
    /// discoverable credential, user verification and attestation `none`.
    ///
    /// # Errors
    /// [`PasskeyError::InvalidName`], [`PasskeyError::TooMany`], [`PasskeyError::Unavailable`].
    pub async fn start_registration(
        &self,
        user_id: String,
        username: String,
        name: &str,
    ) -> Result<Started, PasskeyError> {
        let webauthn = self.webauthn()?;
        let name = passkey_name(name).ok_or(PasskeyError::InvalidName)?;
        let user_uuid = Uuid::parse_str(&user_id).map_err(internal)?;
        let ceremony = CeremonyId::generate()?;
        let id_hash = ceremony.hash().into_string();
        let now = self.clock.now_naive();
        let options = self
            .db
            .run(move |conn| {
                write_transaction(conn, |conn| {
                    let existing = q::passkeys_of(conn, &user_id)?;
                    if existing.len() >= MAX_PASSKEYS {
                        return Err(PasskeyError::TooMany);
                    }
                    let exclude = existing
                        .iter()
                        .map(|row| stored_passkey(row).map(|p| p.cred_id().clone()))
                        .collect::<Result<Vec<CredentialID>, _>>()?;
                    let (options, state) = webauthn
                        .start_passkey_registration(user_uuid, &username, &username, Some(exclude))
                        .map_err(internal)?;
                    // webauthn-rs asks for `residentKey: discouraged`; a passkey that signs in
                    // without a username must be discoverable (WebAuthn §5.4.6).
                    let options = options_json(&options, |json| {
                        let selection = &mut json["publicKey"]["authenticatorSelection"];
                        selection["residentKey"] = "required".into();
                        selection["requireResidentKey"] = true.into();
                    })?;
                    q::delete_unfinished(conn, Purpose::Register.as_str(), Some(&user_id), None)?;
                    q::insert_ceremony(
                        conn,
                        &CeremonyRow {
                            id_hash,
                            purpose: Purpose::Register.as_str().into(),
                            user_id: Some(user_id.clone()),
                            request_id: None,
                            state: serde_json::to_string(&state).map_err(internal)?,
                            passkey_name: Some(name),
                            created_at: now,
                            expires_at: now + CEREMONY_TTL,
                            used_at: None,
                        },
                    )?;
                    Ok(options)
                })
            })
            .await?;
        Ok(Started { ceremony, options })
    }

    /// Finishes a registration of `user_id` with the browser's `credential` (JSON of a
    /// `RegisterPublicKeyCredential`): the passkey's name.
    ///
    /// # Errors
    /// [`PasskeyError::Refused`] (a failed check, or a ceremony unknown, used, expired or of
    /// another user), [`PasskeyError::Duplicate`], [`PasskeyError::TooMany`].
    pub async fn finish_registration(
        &self,
        user_id: String,
        ceremony: &CeremonyId,
        credential: &str,
    ) -> Result<String, PasskeyError> {
        let webauthn = self.webauthn()?;
        let id_hash = ceremony.hash().into_string();
        let now = self.clock.now_naive();
        let answer: Option<RegisterPublicKeyCredential> = (credential.len()
            <= MAX_CREDENTIAL_BYTES)
            .then(|| serde_json::from_str(credential).ok())
            .flatten();
        self.db
            .run(move |conn| {
                let Some(row) = write_transaction(conn, |conn| {
                    q::take_ceremony(conn, &id_hash, Purpose::Register.as_str(), now)
                })?
                else {
                    tracing::info!(%user_id, "passkey registration refused: unknown, used or expired ceremony");
                    return Err(PasskeyError::Refused);
                };
                if row.user_id.as_deref() != Some(user_id.as_str()) {
                    tracing::warn!(%user_id, "passkey registration refused: the ceremony is another user's");
                    return Err(PasskeyError::Refused);
                }
                let Some(answer) = answer else {
                    tracing::info!(%user_id, "passkey registration refused: the credential does not parse");
                    return Err(PasskeyError::Refused);
                };
                let state: PasskeyRegistration =
                    serde_json::from_str(&row.state).map_err(internal)?;
                let passkey = webauthn
                    .finish_passkey_registration(&answer, &state)
                    .map_err(|e| refused(&e, Purpose::Register))?;
                let credential_id = credential_text(passkey.cred_id().as_ref());
                let (stored, counter, backup_eligible, backup_state) = counter_and_flags(&passkey)?;
                let name = row.passkey_name.unwrap_or_else(|| "Passkey".into());
                write_transaction(conn, |conn| {
                    if q::passkey_by_credential(conn, &credential_id)?.is_some() {
                        return Err(PasskeyError::Duplicate);
                    }
                    if q::passkeys_of(conn, &user_id)?.len() >= MAX_PASSKEYS {
                        return Err(PasskeyError::TooMany);
                    }
                    let id = Uuid::new_v4().to_string();
                    q::insert_passkey(
                        conn,
                        &q::NewPasskey {
                            id: &id,
                            user_id: &user_id,
                            name: &name,
                            credential_id: &credential_id,
                            passkey: &stored,
                            sign_count: counter,
                            backup_eligible,
                            backup_state,
                            now,
                        },
                    )
                    .map_err(|error| match error {
                        diesel::result::Error::DatabaseError(
                            diesel::result::DatabaseErrorKind::UniqueViolation,
                            _,
                        ) => PasskeyError::Duplicate,
                        other => other.into(),
                    })?;
                    tracing::info!(%user_id, passkey_id = %id, synced = backup_state, "passkey registered");
                    Ok(name)
                })
            })
            .await
    }

    /// Removes the user's passkey `id`: whether it was theirs.
    pub async fn remove(&self, user_id: String, id: String) -> Result<bool, PasskeyError> {
        self.db
            .run(move |conn| {
                let removed = q::delete_passkey(conn, &user_id, &id)? == 1;
                if removed {
                    tracing::info!(%user_id, passkey_id = %id, "passkey removed by the user");
                }
                Ok::<_, PasskeyError>(removed)
            })
            .await
    }

    /// Starts a sign-in ceremony for pending request `request_id`: the second factor of
    /// `user_id` (their passkeys allowed), or a passwordless sign-in (`None`: any discoverable
    /// passkey of this relying party). Replaces the request's unfinished ceremony.
    ///
    /// # Errors
    /// [`PasskeyError::Unavailable`]; [`PasskeyError::Refused`] when the user has no passkey.
    pub async fn start_sign_in(
        &self,
        request_id: String,
        user_id: Option<String>,
    ) -> Result<Started, PasskeyError> {
        let webauthn = self.webauthn()?;
        let ceremony = CeremonyId::generate()?;
        let id_hash = ceremony.hash().into_string();
        let now = self.clock.now_naive();
        let options = self
            .db
            .run(move |conn| {
                write_transaction(conn, |conn| {
                    let (purpose, options, state) = match &user_id {
                        Some(user_id) => {
                            let passkeys = q::passkeys_of(conn, user_id)?
                                .iter()
                                .map(stored_passkey)
                                .collect::<Result<Vec<_>, _>>()?;
                            if passkeys.is_empty() {
                                return Err(PasskeyError::Refused);
                            }
                            let (options, state) = webauthn
                                .start_passkey_authentication(&passkeys)
                                .map_err(internal)?;
                            let state = serde_json::to_string(&state).map_err(internal)?;
                            (
                                Purpose::SecondFactor,
                                options_json(&options, |_| {})?,
                                state,
                            )
                        }
                        None => {
                            let (mut options, state) = webauthn
                                .start_discoverable_authentication()
                                .map_err(internal)?;
                            // A modal prompt behind a button, not conditional mediation (autofill).
                            options.mediation = None;
                            let state = serde_json::to_string(&state).map_err(internal)?;
                            (
                                Purpose::Passwordless,
                                options_json(&options, |_| {})?,
                                state,
                            )
                        }
                    };
                    q::delete_unfinished(conn, purpose.as_str(), None, Some(&request_id))?;
                    q::insert_ceremony(
                        conn,
                        &CeremonyRow {
                            id_hash,
                            purpose: purpose.as_str().into(),
                            user_id,
                            request_id: Some(request_id),
                            state,
                            passkey_name: None,
                            created_at: now,
                            expires_at: now + CEREMONY_TTL,
                            used_at: None,
                        },
                    )?;
                    Ok(options)
                })
            })
            .await?;
        Ok(Started { ceremony, options })
    }

    /// Finishes a sign-in ceremony of pending request `request_id` with the browser's
    /// `credential` (JSON of a `PublicKeyCredential`): the second factor of `user_id`, or a
    /// passwordless sign-in (`None`). Throttled; the ceremony is spent whatever the outcome.
    ///
    /// # Errors
    /// [`PasskeyError::Refused`] (see there), [`PasskeyError::Throttled`].
    pub async fn finish_sign_in(
        &self,
        request_id: String,
        user_id: Option<String>,
        ceremony: &CeremonyId,
        credential: &str,
        client_ip: IpAddr,
    ) -> Result<Asserted, PasskeyError> {
        let webauthn = self.webauthn()?;
        let purpose = if user_id.is_some() {
            Purpose::SecondFactor
        } else {
            Purpose::Passwordless
        };
        let id_hash = ceremony.hash().into_string();
        let now = self.clock.now_naive();
        let answer: Option<PublicKeyCredential> = (credential.len() <= MAX_CREDENTIAL_BYTES)
            .then(|| serde_json::from_str(credential).ok())
            .flatten();
        let settings = self.settings;
        let window =
            chrono::Duration::from_std(settings.login_window).unwrap_or(chrono::Duration::MAX);
        let network = super::network::network_of(client_ip);
        self.db
            .run(move |conn| {
                // The ceremony is taken and the attempt counted in one committed write, before
                // any check: a failure below leaves both spent.
                let mut budgets = vec![(
                    format!("factor:ip:{network}"),
                    settings.login_max_attempts_per_ip,
                )];
                let handle_user = match (&user_id, &answer) {
                    (Some(user_id), _) => Some(user_id.clone()),
                    (None, Some(answer)) => webauthn
                        .identify_discoverable_authentication(answer)
                        .ok()
                        .map(|(uuid, _)| uuid.to_string()),
                    (None, None) => None,
                };
                if let Some(user) = &handle_user {
                    budgets.push((format!("factor:user:{user}"), settings.login_max_attempts));
                }
                let taken = write_transaction(conn, |conn| {
                    let row = q::take_ceremony(conn, &id_hash, purpose.as_str(), now)?;
                    for (key, max) in &budgets {
                        if let Some(seconds) = throttle::spend(conn, key, *max, window, now)? {
                            return Ok::<_, PasskeyError>(Err(seconds));
                        }
                    }
                    Ok(Ok(row))
                })?;
                let row = match taken {
                    Ok(row) => row,
                    Err(seconds) => {
                        tracing::warn!(purpose = purpose.as_str(), "passkey sign-in throttled");
                        return Err(PasskeyError::Throttled(seconds));
                    }
                };
                let Some(row) = row.filter(|row| {
                    row.request_id.as_deref() == Some(request_id.as_str())
                        && row.user_id == user_id
                }) else {
                    tracing::info!(purpose = purpose.as_str(), "passkey refused: unknown, used, expired or misbound ceremony");
                    return Err(PasskeyError::Refused);
                };
                let Some(answer) = answer else {
                    tracing::info!(purpose = purpose.as_str(), "passkey refused: the credential does not parse");
                    return Err(PasskeyError::Refused);
                };
                let credential_id = credential_text(answer.get_credential_id());
                let Some(stored) = q::passkey_by_credential(conn, &credential_id)? else {
                    tracing::info!(purpose = purpose.as_str(), "passkey refused: unknown or removed credential");
                    return Err(PasskeyError::Refused);
                };
                // The credential must be the user's: the one who owes the second factor, or the
                // one the authenticator's user handle names.
                if handle_user.as_deref() != Some(stored.user_id.as_str()) {
                    tracing::warn!(purpose = purpose.as_str(), "passkey refused: the credential belongs to another user");
                    return Err(PasskeyError::Refused);
                }
                let Some(user) = users_q::find_by_id(conn, &stored.user_id)?
                    .filter(|user| user.disabled_at.is_none())
                else {
                    tracing::info!(user_id = %stored.user_id, "passkey refused: the user is disabled or gone");
                    return Err(PasskeyError::Refused);
                };
                let mut passkey = stored_passkey(&stored)?;
                let result: AuthenticationResult = match purpose {
                    Purpose::SecondFactor => {
                        let state: PasskeyAuthentication =
                            serde_json::from_str(&row.state).map_err(internal)?;
                        webauthn.finish_passkey_authentication(&answer, &state)
                    }
                    _ => {
                        let state: DiscoverableAuthentication =
                            serde_json::from_str(&row.state).map_err(internal)?;
                        webauthn.finish_discoverable_authentication(
                            &answer,
                            state,
                            &[DiscoverableKey::from(&passkey)],
                        )
                    }
                }
                .map_err(|e| refused(&e, purpose))?;
                // webauthn-rs requires UV in every passkey ceremony; checked again, as the
                // sign-in counts it as a second factor.
                if !result.user_verified() {
                    tracing::warn!(user_id = %user.id, "passkey refused: no user verification");
                    return Err(PasskeyError::Refused);
                }
                if passkey.update_credential(&result).is_none() {
                    tracing::warn!(user_id = %user.id, "passkey refused: the assertion names another credential");
                    return Err(PasskeyError::Refused);
                }
                let (text, counter, backup_eligible, backup_state) = counter_and_flags(&passkey)?;
                write_transaction(conn, |conn| {
                    let recorded = q::record_use(
                        conn,
                        &stored.id,
                        &text,
                        counter,
                        backup_eligible,
                        backup_state,
                        now,
                    )?;
                    if recorded != 1 {
                        return Ok::<_, PasskeyError>(Err(()));
                    }
                    for (key, _) in &budgets {
                        throttle::uncount_attempt(conn, key)?;
                    }
                    Ok(Ok(()))
                })?
                .map_err(|()| {
                    tracing::warn!(user_id = %user.id, "passkey refused: a later use moved its counter meanwhile");
                    PasskeyError::Refused
                })?;
                tracing::info!(user_id = %user.id, passkey_id = %stored.id, purpose = purpose.as_str(), "passkey accepted");
                Ok(Asserted {
                    user_id: user.id,
                    username: user.username,
                    passkey_id: stored.id,
                    synced: backup_state,
                })
            })
            .await
    }
}

/// Deletes expired ceremonies (the janitor); returns rows deleted.
pub fn purge_expired(conn: &mut DbConn, now: NaiveDateTime) -> Result<usize, DbError> {
    Ok(q::purge_ceremonies(conn, now)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_relying_party_is_the_issuers_domain_and_origin() {
        let (id, origin) = relying_party("https://id.example.com/tenant").unwrap();
        assert_eq!(id, "id.example.com");
        assert_eq!(origin.as_str(), "https://id.example.com/");
        let (id, origin) = relying_party("http://localhost:8080").unwrap();
        assert_eq!(id, "localhost");
        assert_eq!(origin.as_str(), "http://localhost:8080/");
        assert!(relying_party("http://127.0.0.1:8080").is_err());
        assert!(relying_party("http://[::1]:8080").is_err());
        assert!(webauthn_for("http://127.0.0.1:8080", "x").is_err());
        assert!(webauthn_for("https://id.example.com/tenant", "x").is_ok());
    }

    #[test]
    fn passkey_names_are_trimmed_short_and_printable() {
        assert_eq!(passkey_name("  Laptop  ").as_deref(), Some("Laptop"));
        assert_eq!(passkey_name(""), None);
        assert_eq!(passkey_name("   "), None);
        assert_eq!(passkey_name("a\u{0}b"), None);
        assert_eq!(passkey_name(&"x".repeat(65)), None);
        assert!(passkey_name(&"é".repeat(64)).is_some());
    }
}
