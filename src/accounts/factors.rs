//! Second factors: TOTP (RFC 6238) enrolment and checks, recovery codes, the second-factor
//! policy, the JSON API's challenge step and how a sign-in is described (RFC 8176 `amr`).
//!
//! - A factor has a kind: `totp`, or `passkey` (WebAuthn, in [`super::passkeys`]).
//! - TOTP: SHA-1, 6 digits, 30 s steps (what every authenticator app reads from an `otpauth://`
//!   URI), a 160-bit secret (RFC 4226 §4) sealed under the KEK (AES-256-GCM bound to the
//!   factor's id). A code of the step before, the current or the next step is accepted (one step
//!   of clock skew, RFC 6238 §5.2), and only if no code of that or a later step was accepted
//!   before: a code is good once (replay refused), decided by a conditional update.
//! - Guesses are throttled like logins: every code checked counts on the user's budget
//!   (`PORTCULLIS_LOGIN_MAX_ATTEMPTS` per `PORTCULLIS_LOGIN_WINDOW`) and on the client network's
//!   (`PORTCULLIS_LOGIN_MAX_ATTEMPTS_PER_IP`) before it is checked; a success takes its count back.
//! - Recovery codes: ten, 80 random bits each, shown once, stored as SHA-256, single use,
//!   accepted wherever a TOTP code is.

use std::net::IpAddr;
use std::sync::Arc;

use chrono::NaiveDateTime;

use super::AccountSettings;
use crate::clock::Clock;
use crate::db::models::SecondFactorRow;
use crate::db::queries::{factors as q, throttle};
use crate::db::{Db, DbConn, DbError, write_transaction};
use crate::keys::kek::Kek;
use crate::secrets::{FactorChallenge, NoRandomness, RecoveryCode};

/// RFC 8176 `pwd`: a password.
pub const AMR_PASSWORD: &str = "pwd";
/// RFC 8176 `otp`: a one-time password (a TOTP code, or a recovery code).
pub const AMR_OTP: &str = "otp";
/// RFC 8176 `mfa`: more than one factor.
pub const AMR_MFA: &str = "mfa";
/// RFC 8176 `hwk`: proof of possession of a hardware-held key (a passkey that is not backed up).
pub const AMR_HWK: &str = "hwk";
/// RFC 8176 `swk`: proof of possession of a software-held key (a synced passkey: its BS flag
/// says it is backed up, so it is not bound to one device).
pub const AMR_SWK: &str = "swk";
/// RFC 8176 `user`: a user presence test (a passkey's ceremony tests presence and verifies the
/// user; the PIN or biometric behind UV is not disclosed, so `pin`/`fpt` are never claimed).
pub const AMR_USER: &str = "user";
/// The methods of a sign-in with a device-bound passkey alone (user verification required, so
/// two factors: the key and the PIN or biometric that unlocked it), as stored.
pub const SIGNED_IN_WITH_PASSKEY: &str = "hwk user mfa";
/// The methods of a sign-in with a synced passkey alone, as stored.
pub const SIGNED_IN_WITH_SYNCED_PASSKEY: &str = "swk user mfa";
/// The methods of a sign-in with a password and a device-bound passkey, as stored.
pub const SIGNED_IN_WITH_PASSWORD_AND_PASSKEY: &str = "pwd hwk mfa";
/// The methods of a sign-in with a password and a synced passkey, as stored.
pub const SIGNED_IN_WITH_PASSWORD_AND_SYNCED_PASSKEY: &str = "pwd swk mfa";

/// The stored methods of a passkey sign-in: after a password or not, with a synced passkey
/// (BS flag) or not.
pub fn passkey_methods(after_password: bool, synced: bool) -> &'static str {
    match (after_password, synced) {
        (false, false) => SIGNED_IN_WITH_PASSKEY,
        (false, true) => SIGNED_IN_WITH_SYNCED_PASSKEY,
        (true, false) => SIGNED_IN_WITH_PASSWORD_AND_PASSKEY,
        (true, true) => SIGNED_IN_WITH_PASSWORD_AND_SYNCED_PASSKEY,
    }
}

/// The methods of a password-only sign-in, as stored (space-separated).
pub const SIGNED_IN_WITH_PASSWORD: &str = "pwd";
/// The methods of a sign-in with a password and a TOTP or recovery code, as stored.
pub const SIGNED_IN_WITH_PASSWORD_AND_OTP: &str = "pwd otp mfa";

/// Whether stored methods (`amr`, space-separated) include more than one factor.
pub fn is_multi_factor(amr: &str) -> bool {
    amr.split(' ').any(|method| method == AMR_MFA)
}

/// TOTP time step, in seconds (RFC 6238 §4.1 `X`, the default every app uses).
pub const TOTP_STEP_SECONDS: u64 = 30;
/// TOTP code length.
pub const TOTP_DIGITS: usize = 6;
/// Recovery codes made at once.
pub const RECOVERY_CODES: usize = 10;
/// How long a JSON API challenge waits for its code.
pub const CHALLENGE_TTL: chrono::Duration = chrono::Duration::minutes(5);
/// Length of a TOTP secret in bytes (160 bits, RFC 4226 §4 R6).
const SECRET_BYTES: usize = 20;

/// The second-factor policy (`PORTCULLIS_SECOND_FACTOR` for the deployment, client metadata
/// `second_factor` per client). Ordered: a client can raise the deployment's policy, never lower
/// it ([`SecondFactorPolicy::strictest`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SecondFactorPolicy {
    /// Not asked at sign-in, unless the request asks for the multi-factor class (step-up).
    Off,
    /// Asked of every user who has one (the default).
    #[default]
    Optional,
    /// Every sign-in needs one; a user without one enrols during the sign-in.
    Required,
}

impl SecondFactorPolicy {
    /// The setting's value: `off`, `optional` or `required`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Optional => "optional",
            Self::Required => "required",
        }
    }

    /// Parses a setting's value; `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "off" => Some(Self::Off),
            "optional" => Some(Self::Optional),
            "required" => Some(Self::Required),
            _ => None,
        }
    }

    /// The policy of a sign-in for a client: the stricter of the deployment's and the client's.
    pub fn strictest(self, client: Self) -> Self {
        self.max(client)
    }
}

/// What a sign-in owes after the password.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecondStep {
    /// Nothing: the password is enough.
    None,
    /// A TOTP or recovery code.
    Verify,
    /// The user has no factor but needs one: enrol now, with one valid code.
    Enrol,
}

/// What a sign-in under `policy` owes after the password, for a user who has (`enrolled`) a
/// confirmed factor or not; `asked_mfa`: the request asked for the multi-factor class
/// (`acr_values`, an essential `acr`: step-up).
pub fn second_step(policy: SecondFactorPolicy, asked_mfa: bool, enrolled: bool) -> SecondStep {
    let needed = asked_mfa
        || policy == SecondFactorPolicy::Required
        || (policy == SecondFactorPolicy::Optional && enrolled);
    match (needed, enrolled) {
        (false, _) => SecondStep::None,
        (true, true) => SecondStep::Verify,
        (true, false) => SecondStep::Enrol,
    }
}

/// Why a second-factor operation failed.
#[derive(Debug, thiserror::Error)]
pub enum FactorError {
    /// The code is wrong, was used already, or the challenge is unknown or expired.
    #[error("invalid code")]
    InvalidCode,
    /// Too many guesses; retry after this many seconds.
    #[error("too many attempts")]
    Throttled(u64),
    /// The user has no confirmed factor (nothing to check, or to make recovery codes for).
    #[error("no second factor enrolled")]
    NotEnrolled,
    /// The user has a confirmed TOTP factor already.
    #[error("a TOTP factor is enrolled already")]
    AlreadyEnrolled,
    /// Database trouble.
    #[error(transparent)]
    Db(#[from] DbError),
    /// Sealing or opening a secret failed (a KEK that does not open it: logged, never shown).
    #[error("TOTP secret: {0}")]
    Secret(String),
    /// The system's random generator failed.
    #[error(transparent)]
    Random(#[from] NoRandomness),
}

impl From<diesel::result::Error> for FactorError {
    fn from(error: diesel::result::Error) -> Self {
        Self::Db(DbError::Query(error))
    }
}

/// A TOTP enrolment waiting for its first code: what the user's app needs. `Debug` leaves the
/// secret out.
pub struct Enrolment {
    /// The secret, base32 (RFC 4648) without padding, to type into an app.
    pub secret_base32: String,
    /// The `otpauth://totp/…` URI the QR code holds.
    pub otpauth_uri: String,
}

impl std::fmt::Debug for Enrolment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Enrolment(<redacted>)")
    }
}

impl Enrolment {
    /// The `otpauth://` URI as an SVG QR code (drawn here, no external service), without the
    /// XML declaration so it can sit inline in a page.
    pub fn qr_svg(&self) -> Option<String> {
        let code = qrcode::QrCode::new(self.otpauth_uri.as_bytes()).ok()?;
        let svg = code
            .render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(200, 200)
            .build();
        Some(match svg.find("<svg") {
            Some(start) => svg[start..].to_owned(),
            None => svg,
        })
    }
}

/// How a second factor was presented (both count as `otp` + `mfa`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Presented {
    /// A TOTP code.
    Totp,
    /// A recovery code (one fewer left).
    RecoveryCode,
}

/// The user's second factors as their account page shows them.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct FactorStatus {
    /// A confirmed TOTP factor.
    pub totp: bool,
    /// Unused recovery codes.
    pub recovery_codes_left: i64,
    /// Registered passkeys.
    pub passkeys: usize,
}

/// Second factors of users. Cheap to clone.
#[derive(Clone)]
pub struct Factors {
    db: Db,
    kek: Arc<Kek>,
    settings: AccountSettings,
    clock: Clock,
    /// The `issuer` of `otpauth://` URIs: what an app shows above the code.
    label: String,
}

impl std::fmt::Debug for Factors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Factors")
            .field("label", &self.label)
            .finish()
    }
}

/// The associated data a TOTP secret is sealed with: bound to its factor.
fn sealing_aad(factor_id: &str) -> String {
    format!("totp:{factor_id}")
}

/// A `totp_rs::TOTP` for `secret` (SHA-1, 6 digits, 30 s, no skew: steps are checked here).
fn totp(secret: Vec<u8>, label: &str, account: &str) -> Result<totp_rs::TOTP, FactorError> {
    totp_rs::TOTP::new(
        totp_rs::Algorithm::SHA1,
        TOTP_DIGITS,
        0,
        TOTP_STEP_SECONDS,
        secret,
        Some(label.to_owned()),
        account.to_owned(),
    )
    .map_err(|error| FactorError::Secret(error.to_string()))
}

/// The time step of a code `code` for `secret` at `now_unix` (the step before, the current or
/// the next, RFC 6238 §5.2), compared in constant time; `None` if none matches.
fn matching_step(totp: &totp_rs::TOTP, code: &str, now_unix: u64) -> Option<i64> {
    if code.len() != TOTP_DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let current = now_unix / TOTP_STEP_SECONDS;
    let mut found = None;
    for step in [current.saturating_sub(1), current, current + 1] {
        let expected = totp.generate(step * TOTP_STEP_SECONDS);
        if aws_lc_rs::constant_time::verify_slices_are_equal(expected.as_bytes(), code.as_bytes())
            .is_ok()
        {
            found = i64::try_from(step).ok();
        }
    }
    found
}

/// The code as typed, without spaces (apps show `123 456`).
fn compact(code: &str) -> String {
    code.chars().filter(|c| !c.is_whitespace()).collect()
}

impl Factors {
    /// The service over `db`, sealing secrets under `kek`, throttling by `settings`' login
    /// budgets; `label` names the deployment in authenticator apps (`:` is removed, as the
    /// `otpauth` format reserves it).
    pub fn new(
        db: Db,
        kek: Arc<Kek>,
        settings: AccountSettings,
        clock: Clock,
        label: &str,
    ) -> Self {
        Self {
            db,
            kek,
            settings,
            clock,
            label: label.replace(':', ""),
        }
    }

    /// The user's factors.
    pub async fn status(&self, user_id: String) -> Result<FactorStatus, FactorError> {
        self.db
            .run(move |conn| {
                let kinds = q::confirmed_kinds(conn, &user_id)?;
                Ok::<_, FactorError>(FactorStatus {
                    totp: kinds.iter().any(|k| k == q::TOTP),
                    passkeys: kinds
                        .iter()
                        .filter(|k| *k == crate::db::queries::webauthn::PASSKEY)
                        .count(),
                    recovery_codes_left: q::unused_recovery_codes(conn, &user_id)?,
                })
            })
            .await
    }

    /// The user `user_id` if it exists and is enabled (a sign-in owing its second factor
    /// continues only for such a user).
    pub async fn enabled_user(
        &self,
        user_id: String,
    ) -> Result<Option<crate::db::models::UserRow>, FactorError> {
        self.db
            .run(move |conn| {
                Ok::<_, FactorError>(
                    crate::db::queries::users::find_by_id(conn, &user_id)?
                        .filter(|user| user.disabled_at.is_none()),
                )
            })
            .await
    }

    /// Whether the user has a confirmed factor.
    pub async fn is_enrolled(&self, user_id: String) -> Result<bool, FactorError> {
        self.db
            .run(move |conn| Ok::<_, FactorError>(!q::confirmed_kinds(conn, &user_id)?.is_empty()))
            .await
    }

    /// The TOTP enrolment of `user_id` (shown as `account` in apps): the one being enrolled, or
    /// a new one (a fresh 160-bit secret, sealed and stored unconfirmed).
    ///
    /// # Errors
    /// [`FactorError::AlreadyEnrolled`] when the user has a confirmed TOTP factor.
    pub async fn enrolment(
        &self,
        user_id: String,
        account: String,
    ) -> Result<Enrolment, FactorError> {
        let (kek, label, now) = (
            Arc::clone(&self.kek),
            self.label.clone(),
            self.clock.now_naive(),
        );
        self.db
            .run(move |conn| {
                write_transaction(conn, |conn| {
                    let secret = match q::totp_of(conn, &user_id)? {
                        Some(row) if row.confirmed_at.is_some() => {
                            return Err(FactorError::AlreadyEnrolled);
                        }
                        Some(row) => open_secret(&kek, &row)?,
                        None => {
                            let mut secret = zeroize::Zeroizing::new(vec![0u8; SECRET_BYTES]);
                            aws_lc_rs::rand::fill(&mut secret)
                                .map_err(|_| FactorError::Secret("no randomness".into()))?;
                            let id = uuid::Uuid::new_v4().to_string();
                            let sealed = kek
                                .seal(&sealing_aad(&id), &secret)
                                .map_err(|e| FactorError::Secret(e.to_string()))?;
                            q::insert(
                                conn,
                                &SecondFactorRow {
                                    id,
                                    user_id: user_id.clone(),
                                    kind: q::TOTP.into(),
                                    name: "Authenticator app".into(),
                                    secret_sealed: Some(sealed),
                                    last_used_step: None,
                                    created_at: now,
                                    confirmed_at: None,
                                    last_used_at: None,
                                },
                            )?;
                            secret
                        }
                    };
                    let totp = totp(secret.to_vec(), &label, &account)?;
                    Ok(Enrolment {
                        secret_base32: totp.get_secret_base32(),
                        otpauth_uri: totp.get_url(),
                    })
                })
            })
            .await
    }

    /// Finishes the user's TOTP enrolment with one valid code (throttled); the factor is usable
    /// from now on, and that code is spent.
    ///
    /// # Errors
    /// [`FactorError::InvalidCode`], [`FactorError::Throttled`], [`FactorError::NotEnrolled`]
    /// when no enrolment is waiting.
    pub async fn confirm_totp(
        &self,
        user_id: String,
        code: &str,
        client_ip: IpAddr,
    ) -> Result<(), FactorError> {
        let code = compact(code);
        let (kek, now, now_unix) = (
            Arc::clone(&self.kek),
            self.clock.now_naive(),
            self.now_unix(),
        );
        self.throttled(user_id.clone(), client_ip, move |conn, user_id| {
            let Some(row) = q::totp_of(conn, user_id)?.filter(|r| r.confirmed_at.is_none()) else {
                return Err(FactorError::NotEnrolled);
            };
            let secret = open_secret(&kek, &row)?;
            let totp = totp(secret.to_vec(), "-", "-")?;
            let step = matching_step(&totp, &code, now_unix).ok_or(FactorError::InvalidCode)?;
            if q::confirm(conn, &row.id, step, now)? != 1 {
                return Err(FactorError::InvalidCode);
            }
            Ok(())
        })
        .await
    }

    /// Checks a second factor of `user_id`: a TOTP code (each accepted once) or a recovery code
    /// (single use), throttled.
    ///
    /// # Errors
    /// [`FactorError::InvalidCode`] (wrong, replayed or used), [`FactorError::Throttled`],
    /// [`FactorError::NotEnrolled`].
    pub async fn verify(
        &self,
        user_id: String,
        code: &str,
        client_ip: IpAddr,
    ) -> Result<Presented, FactorError> {
        let code = compact(code);
        let (kek, now, now_unix) = (
            Arc::clone(&self.kek),
            self.clock.now_naive(),
            self.now_unix(),
        );
        self.throttled(user_id, client_ip, move |conn, user_id| {
            verify_in(conn, &kek, user_id, &code, now, now_unix)
        })
        .await
    }

    /// New recovery codes for `user_id`, replacing any before; the user must have a confirmed
    /// factor. The codes are returned once and only their hashes are kept.
    ///
    /// # Errors
    /// [`FactorError::NotEnrolled`].
    pub async fn new_recovery_codes(&self, user_id: String) -> Result<Vec<String>, FactorError> {
        let now = self.clock.now_naive();
        let codes = (0..RECOVERY_CODES)
            .map(|_| RecoveryCode::generate_code())
            .collect::<Result<Vec<_>, _>>()?;
        let hashes: Vec<String> = codes
            .iter()
            .map(|c| c.stored_hash().into_string())
            .collect();
        self.db
            .run(move |conn| {
                write_transaction(conn, |conn| {
                    if q::confirmed_kinds(conn, &user_id)?.is_empty() {
                        return Err(FactorError::NotEnrolled);
                    }
                    q::replace_recovery_codes(conn, &user_id, &hashes, now)?;
                    Ok(())
                })
            })
            .await?;
        Ok(codes.into_iter().map(RecoveryCode::into_exposed).collect())
    }

    /// Removes the user's TOTP factor, and their recovery codes with it, after a valid code
    /// (TOTP or recovery; throttled): whoever removes it proves they hold it.
    ///
    /// # Errors
    /// As [`Factors::verify`].
    pub async fn remove_totp(
        &self,
        user_id: String,
        code: &str,
        client_ip: IpAddr,
    ) -> Result<(), FactorError> {
        let code = compact(code);
        let (kek, now, now_unix) = (
            Arc::clone(&self.kek),
            self.clock.now_naive(),
            self.now_unix(),
        );
        self.throttled(user_id, client_ip, move |conn, user_id| {
            verify_in(conn, &kek, user_id, &code, now, now_unix)?;
            q::delete_totp(conn, user_id)?;
            q::delete_recovery_codes(conn, user_id)?;
            Ok(())
        })
        .await
    }

    /// Starts the JSON API's second-factor step for `user_id` (whose password matched): a
    /// challenge (returned once, stored as its hash) valid for [`CHALLENGE_TTL`]. `forgive`
    /// runs in the same write (the password attempt is taken back).
    pub async fn start_challenge<F>(
        &self,
        user_id: String,
        forgive: F,
    ) -> Result<FactorChallenge, FactorError>
    where
        F: FnOnce(&mut DbConn) -> Result<(), diesel::result::Error> + Send + 'static,
    {
        let challenge = FactorChallenge::generate()?;
        let hash = challenge.hash().into_string();
        let now = self.clock.now_naive();
        self.db
            .run(move |conn| {
                write_transaction(conn, |conn| {
                    forgive(conn)?;
                    q::insert_challenge(conn, &hash, &user_id, now, now + CHALLENGE_TTL)?;
                    Ok::<_, FactorError>(())
                })
            })
            .await?;
        Ok(challenge)
    }

    /// The user a live challenge was issued to, after a valid code for them (throttled); the
    /// challenge itself is spent by [`complete_challenge`] in the write that issues the tokens.
    ///
    /// # Errors
    /// [`FactorError::InvalidCode`] for an unknown, used or expired challenge, or a wrong code;
    /// [`FactorError::Throttled`].
    pub async fn check_challenge(
        &self,
        challenge: &FactorChallenge,
        code: &str,
        client_ip: IpAddr,
    ) -> Result<(String, Presented), FactorError> {
        let hash = challenge.hash().into_string();
        let now = self.clock.now_naive();
        let user = self
            .db
            .run(move |conn| Ok::<_, FactorError>(q::challenge_user(conn, &hash, now)?))
            .await?;
        let Some(user_id) = user else {
            return Err(FactorError::InvalidCode);
        };
        let presented = self.verify(user_id.clone(), code, client_ip).await?;
        Ok((user_id, presented))
    }

    fn now_unix(&self) -> u64 {
        u64::try_from(self.clock.now().timestamp()).unwrap_or_default()
    }

    /// Runs `check` for `user_id` in one write transaction after counting the attempt on the
    /// user's and the network's budgets; a success takes the counts back (LOGIN-06's rule: the
    /// attempt is counted first, so parallel guesses are counted exactly).
    async fn throttled<T, F>(
        &self,
        user_id: String,
        client_ip: IpAddr,
        check: F,
    ) -> Result<T, FactorError>
    where
        F: FnOnce(&mut DbConn, &str) -> Result<T, FactorError> + Send + 'static,
        T: Send + 'static,
    {
        let settings = self.settings;
        let window =
            chrono::Duration::from_std(settings.login_window).unwrap_or(chrono::Duration::MAX);
        let network = super::network::network_of(client_ip);
        let now = self.clock.now_naive();
        let keys = [
            (
                format!("factor:user:{user_id}"),
                settings.login_max_attempts,
            ),
            (
                format!("factor:ip:{network}"),
                settings.login_max_attempts_per_ip,
            ),
        ];
        let outcome = self
            .db
            .run(move |conn| {
                write_transaction(conn, |conn| {
                    for (key, max) in &keys {
                        if let Some(seconds) = throttle::spend(conn, key, *max, window, now)? {
                            return Ok::<_, FactorError>(Err(FactorError::Throttled(seconds)));
                        }
                    }
                    Ok(Ok(keys))
                })
            })
            .await?;
        let keys = match outcome {
            Ok(keys) => keys,
            Err(throttled) => {
                tracing::warn!(%user_id, "second-factor check throttled");
                return Err(throttled);
            }
        };
        let checked = self
            .db
            .run(move |conn| {
                write_transaction(conn, |conn| {
                    let value = match check(conn, &user_id) {
                        Ok(value) => value,
                        Err(error) => return Ok::<_, FactorError>(Err((error, user_id))),
                    };
                    for (key, _) in &keys {
                        throttle::uncount_attempt(conn, key)?;
                    }
                    Ok(Ok(value))
                })
            })
            .await?;
        checked.map_err(|(error, user_id)| {
            if matches!(error, FactorError::InvalidCode) {
                tracing::info!(%user_id, "second factor refused: invalid code");
            }
            error
        })
    }
}

/// Opens a factor's sealed secret.
fn open_secret(
    kek: &Kek,
    row: &SecondFactorRow,
) -> Result<zeroize::Zeroizing<Vec<u8>>, FactorError> {
    let sealed = row
        .secret_sealed
        .as_deref()
        .ok_or_else(|| FactorError::Secret("no secret stored".into()))?;
    kek.open(&sealing_aad(&row.id), sealed)
        .map_err(|e| FactorError::Secret(e.to_string()))
}

/// [`Factors::verify`] inside a transaction: a 6-digit code is a TOTP code, anything else a
/// recovery code.
fn verify_in(
    conn: &mut DbConn,
    kek: &Kek,
    user_id: &str,
    code: &str,
    now: NaiveDateTime,
    now_unix: u64,
) -> Result<Presented, FactorError> {
    let Some(row) = q::totp_of(conn, user_id)?.filter(|r| r.confirmed_at.is_some()) else {
        return Err(FactorError::NotEnrolled);
    };
    if code.len() == TOTP_DIGITS {
        let secret = open_secret(kek, &row)?;
        let totp = totp(secret.to_vec(), "-", "-")?;
        let step = matching_step(&totp, code, now_unix).ok_or(FactorError::InvalidCode)?;
        // RFC 6238 §5.2: the verifier MUST NOT accept the second attempt of the same OTP.
        if q::use_step(conn, &row.id, step, now)? != 1 {
            tracing::warn!(%user_id, "TOTP code replayed: refused");
            return Err(FactorError::InvalidCode);
        }
        return Ok(Presented::Totp);
    }
    let hash = RecoveryCode::presented_code(code).stored_hash();
    if q::use_recovery_code(conn, user_id, hash.as_str(), now)? != 1 {
        return Err(FactorError::InvalidCode);
    }
    tracing::info!(%user_id, "recovery code used");
    Ok(Presented::RecoveryCode)
}

/// Spends a JSON API challenge inside the write that issues the login's tokens: `true` once.
pub fn complete_challenge(
    conn: &mut DbConn,
    challenge: &FactorChallenge,
    now: NaiveDateTime,
) -> Result<bool, diesel::result::Error> {
    Ok(q::complete_challenge(conn, challenge.hash().as_str(), now)? == 1)
}

/// Removes every second factor of `user_id` and their recovery codes (an administrator's reset;
/// inside the caller's audited transaction). Returns the factors removed.
pub fn reset(conn: &mut DbConn, user_id: &str) -> Result<usize, diesel::result::Error> {
    q::delete_all(conn, user_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_raises_the_deployment_policy_and_never_lowers_it() {
        use SecondFactorPolicy::{Off, Optional, Required};
        assert_eq!(Off.strictest(Required), Required);
        assert_eq!(Required.strictest(Off), Required);
        assert_eq!(Optional.strictest(Off), Optional);
        for policy in [Off, Optional, Required] {
            assert_eq!(SecondFactorPolicy::parse(policy.as_str()), Some(policy));
        }
    }

    #[test]
    fn the_second_step_follows_policy_enrolment_and_step_up() {
        use SecondFactorPolicy::{Off, Optional, Required};
        assert_eq!(second_step(Off, false, true), SecondStep::None);
        assert_eq!(second_step(Off, true, true), SecondStep::Verify);
        assert_eq!(second_step(Optional, false, false), SecondStep::None);
        assert_eq!(second_step(Optional, false, true), SecondStep::Verify);
        assert_eq!(second_step(Optional, true, false), SecondStep::Enrol);
        assert_eq!(second_step(Required, false, false), SecondStep::Enrol);
        assert_eq!(second_step(Required, false, true), SecondStep::Verify);
    }

    #[test]
    fn codes_match_their_step_and_its_neighbours_only() {
        // RFC 6238 Appendix B: the SHA-1 test secret at T = 59 gives 94287082 (8 digits); with
        // 6 digits the code is its last six.
        let totp = totp(b"12345678901234567890".to_vec(), "x", "y").unwrap();
        assert_eq!(totp.generate(59), "287082");
        assert_eq!(matching_step(&totp, "287082", 59), Some(1));
        assert_eq!(matching_step(&totp, "287082", 89), Some(1));
        assert_eq!(matching_step(&totp, "287082", 29), Some(1));
        assert_eq!(matching_step(&totp, "287082", 120), None);
        assert_eq!(matching_step(&totp, "28708", 59), None);
        assert_eq!(matching_step(&totp, "abcdef", 59), None);
        assert!(is_multi_factor(SIGNED_IN_WITH_PASSWORD_AND_OTP));
        assert!(!is_multi_factor(SIGNED_IN_WITH_PASSWORD));
    }
}
