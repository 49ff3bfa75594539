//! Links sent by mail: verification of the account's address (at registration, and of every new
//! address before it replaces the old one) and password reset. Each link carries a single-use
//! token (256 random bits; only its SHA-256 is stored) that expires; spending it is a conditional
//! UPDATE and its row count, in the transaction that acts on it. Links are built from the issuer
//! (`EmailSettings::link_base`), never from a request's `Host`.
//!
//! - **Verification.** `email_verified` (the claim of userinfo and ID tokens) becomes true only
//!   when a link sent to the account's current address is opened and confirmed. A new address
//!   (`PATCH /api/me`, `POST /api/me/email`, `/account/email`) is only *pending*: the old one keeps
//!   working (sign-in, reset) until the link sent to the new one is confirmed; then the address
//!   changes, verified, and links still out for the old one (reset, other changes) stop working.
//!   A token proves one address of one account: whoever presents it, it acts on its own account
//!   and address only.
//! - **Reset.** A request is answered the same whether or not the address has an account (the
//!   work — lookup, token, mail — runs after the answer, off the request path) and is throttled
//!   per address and per client network, as logins are. Completing it sets a password that passes
//!   the password policy and ends every session of the user (refresh families, access tokens,
//!   browser sessions, trusted devices), as a password change does.

use std::net::IpAddr;
use std::time::Duration;

use chrono::NaiveDateTime;

use super::names::{Email, InvalidField, Password, Username};
use super::password::{HashError, PasswordHasher};
use super::profile::Profile;
use crate::clock::Clock;
use crate::db::models::{EmailTokenRow, UserClaimsRow, UserRow};
use crate::db::queries::{
    audit, email_tokens as q, throttle, user_claims as claims_q, users as user_q,
};
use crate::db::{Db, DbConn, DbError, write_transaction};
use crate::mail::{MailError, Message, Outbox};
use crate::secrets::{MailToken, NoRandomness};

/// Purpose of a token proving the account's current address.
pub const VERIFY_EMAIL: &str = "verify_email";
/// Purpose of a token proving a new address.
pub const CHANGE_EMAIL: &str = "change_email";
/// Purpose of a password-reset token.
pub const RESET_PASSWORD: &str = "reset_password";

/// The settings of mailed links (`PORTCULLIS_EMAIL_VERIFICATION_TTL`,
/// `PORTCULLIS_PASSWORD_RESET_TTL`, `PORTCULLIS_MAIL_MAX_PER_*`).
#[derive(Clone, Debug)]
pub struct EmailSettings {
    /// How long a verification link works.
    pub verification_ttl: Duration,
    /// How long a reset link works.
    pub reset_ttl: Duration,
    /// Mails one address may be sent per window on request (reset, resend, change).
    pub max_per_address: u32,
    /// Mails one client network may ask for per window.
    pub max_per_ip: u32,
    /// The window (the login window).
    pub window: Duration,
    /// The issuer: every link is `{link_base}/…`.
    pub link_base: String,
}

/// Why a mailed-link operation failed. Messages hold no secret.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The link is unknown, used, superseded or expired, or its account or address changed since
    /// (one answer for all).
    #[error("the link is invalid, expired or was already used")]
    InvalidLink,
    /// Too many mails asked for; retry after this many seconds.
    #[error("too many mails asked for")]
    Throttled(u64),
    /// An input is invalid (the password policy, an address).
    #[error(transparent)]
    Invalid(#[from] InvalidField),
    /// The address belongs to another account.
    #[error("the address belongs to another account")]
    AddressTaken,
    /// Database trouble.
    #[error(transparent)]
    Db(#[from] DbError),
    /// Password hashing failed (a full queue included).
    #[error(transparent)]
    Hash(#[from] HashError),
    /// The mail could not be queued.
    #[error(transparent)]
    Mail(#[from] MailError),
    /// No randomness for a token.
    #[error(transparent)]
    Random(#[from] NoRandomness),
}

impl From<diesel::result::Error> for LinkError {
    fn from(error: diesel::result::Error) -> Self {
        Self::Db(DbError::Query(error))
    }
}

/// A confirmed address.
#[derive(Debug, Clone)]
pub struct Confirmed {
    /// The account.
    pub user_id: String,
    /// Its address now, verified.
    pub email: String,
    /// Whether the address changed (a pending change took effect).
    pub changed: bool,
}

/// An account's address as its email page shows it.
#[derive(Debug, Clone)]
pub struct EmailStatus {
    /// The account.
    pub user: UserRow,
    /// Whether its address is verified.
    pub verified: bool,
    /// The new address waiting for its link to be confirmed.
    pub pending: Option<String>,
}

/// Mailed links: issuing (with the mail, in one transaction), and spending. Cheap to clone.
#[derive(Clone)]
pub struct MailLinks {
    db: Db,
    hasher: PasswordHasher,
    outbox: Outbox,
    settings: std::sync::Arc<EmailSettings>,
    clock: Clock,
}

fn chrono_duration(duration: Duration) -> chrono::Duration {
    chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::MAX)
}

/// "24 hours", "30 minutes": how long a link works, for the mail's text.
fn lifetime_text(duration: Duration) -> String {
    let minutes = duration.as_secs() / 60;
    match minutes {
        0 => format!("{} seconds", duration.as_secs()),
        m if m % 60 == 0 && m >= 120 => format!("{} hours", m / 60),
        60 => "1 hour".to_owned(),
        1 => "1 minute".to_owned(),
        m => format!("{m} minutes"),
    }
}

impl MailLinks {
    /// Links over `db`, mailed through `outbox`, new passwords hashed by `hasher`, time from
    /// `clock`.
    pub fn new(
        db: Db,
        hasher: PasswordHasher,
        outbox: Outbox,
        settings: EmailSettings,
        clock: Clock,
    ) -> Self {
        Self {
            db,
            hasher,
            outbox,
            settings: std::sync::Arc::new(settings),
            clock,
        }
    }

    /// Counts one requested mail to `address` from `ip` against both budgets (the network's
    /// first: a throttled network creates no further rows). The key is the address's text key,
    /// so an address without an account costs and answers the same.
    async fn spend_budget(&self, address_key: String, ip: IpAddr) -> Result<(), LinkError> {
        let network = super::network::network_of(ip);
        let (max_ip, max_address) = (self.settings.max_per_ip, self.settings.max_per_address);
        let window = chrono_duration(self.settings.window);
        let now = self.clock.now_naive();
        let retry_after = self
            .db
            .run(move |conn| {
                write_transaction(conn, |conn| {
                    let by_network =
                        throttle::spend(conn, &format!("mail:ip:{network}"), max_ip, window, now)?;
                    if by_network.is_some() {
                        return Ok::<_, LinkError>(by_network);
                    }
                    Ok(throttle::spend(
                        conn,
                        &format!("mail:address:{address_key}"),
                        max_address,
                        window,
                        now,
                    )?)
                })
            })
            .await?;
        match retry_after {
            Some(seconds) => {
                tracing::warn!(%ip, "mail request throttled");
                Err(LinkError::Throttled(seconds))
            }
            None => Ok(()),
        }
    }

    /// Stores a new token for `user` and `purpose` proving `address` and queues its mail, inside
    /// the caller's transaction, superseding the user's earlier tokens of that purpose. Returns
    /// the mail's id.
    fn issue(
        &self,
        conn: &mut DbConn,
        user: &UserRow,
        purpose: &'static str,
        address: &str,
        now: NaiveDateTime,
    ) -> Result<String, LinkError> {
        let token = MailToken::generate()?;
        let ttl = match purpose {
            RESET_PASSWORD => self.settings.reset_ttl,
            _ => self.settings.verification_ttl,
        };
        q::supersede(conn, &user.id, &[purpose], now)?;
        q::insert(
            conn,
            &EmailTokenRow {
                token_hash: token.hash().into_string(),
                user_id: user.id.clone(),
                purpose: purpose.to_owned(),
                email: address.to_owned(),
                created_at: now,
                expires_at: now + chrono_duration(ttl),
                used_at: None,
            },
        )?;
        let message = compose(
            &self.settings.link_base,
            purpose,
            &user.username,
            address,
            &token,
            &lifetime_text(ttl),
        );
        Ok(self.outbox.enqueue(conn, &message, now)?)
    }

    /// Asks for a password-reset link to `address`: counted against the budgets, then answered
    /// at once; whether an account has this address is looked up afterwards, off the request path,
    /// and only an enabled account gets a mail (at its stored address). So every request that
    /// passes the budgets gets the same answer in about the same time.
    ///
    /// # Errors
    /// `Throttled`, or the database (the budget could not be counted).
    pub async fn request_password_reset(
        &self,
        address: &Email,
        ip: IpAddr,
    ) -> Result<(), LinkError> {
        self.spend_budget(address.normalized(), ip).await?;
        let links = self.clone();
        let keys = address.keys();
        tokio::spawn(async move {
            if let Err(error) = links.mail_reset_link(keys).await {
                tracing::warn!(%error, "a password-reset link could not be queued");
            }
        });
        Ok(())
    }

    async fn mail_reset_link(&self, keys: Vec<String>) -> Result<(), LinkError> {
        let now = self.clock.now_naive();
        let links = self.clone();
        let queued = self
            .db
            .run(move |conn| {
                write_transaction(conn, |conn| {
                    let Some(user) = user_q::find_by_login(conn, &keys)?
                        .filter(|user| user.disabled_at.is_none())
                    else {
                        return Ok::<_, LinkError>(None);
                    };
                    let address = user.email.clone();
                    links
                        .issue(conn, &user, RESET_PASSWORD, &address, now)
                        .map(Some)
                })
            })
            .await?;
        if let Some(id) = queued {
            self.outbox.wake(&id, RESET_PASSWORD);
        }
        Ok(())
    }

    /// Whether `presented` is a live token of one of `purposes` (a read, for the page that shows
    /// the form: nothing is spent, so a mail scanner opening the link spends nothing).
    ///
    /// # Errors
    /// The database.
    pub async fn is_live(
        &self,
        presented: &MailToken,
        purposes: &'static [&'static str],
    ) -> Result<bool, LinkError> {
        let hash = presented.hash();
        let now = self.clock.now_naive();
        Ok(self
            .db
            .run(move |conn| {
                q::find_live(conn, hash.as_str(), purposes, now).map_err(DbError::Query)
            })
            .await?
            .is_some())
    }

    /// Completes a password reset: `password` (already through the policy) must not be the
    /// account's own name; it is hashed, then, in one transaction, the token is spent (exactly
    /// once), the password set and every session of the user ended (`password_reset`, audited with
    /// the user as actor). A link sent to the account's current address also proves it
    /// (`email_verified`). Returns the user id.
    ///
    /// # Errors
    /// `InvalidLink` (unknown, used, expired, superseded, or the account is disabled), `Invalid`
    /// (the password is the account's name), hashing (`Busy` included), the database.
    pub async fn reset_password(
        &self,
        presented: &MailToken,
        password: Password,
    ) -> Result<String, LinkError> {
        let hash = presented.hash();
        let now = self.clock.now_naive();
        let lookup = hash.clone();
        let (token, user) = self
            .db
            .run(move |conn| {
                let Some(token) = q::find_live(conn, lookup.as_str(), &[RESET_PASSWORD], now)?
                else {
                    return Ok::<_, LinkError>(None);
                };
                Ok(user_q::find_by_id(conn, &token.user_id)?.map(|user| (token, user)))
            })
            .await?
            .ok_or(LinkError::InvalidLink)?;
        if let (Ok(username), Ok(email)) =
            (Username::parse(&user.username), Email::parse(&user.email))
        {
            password.check_not_account_name(&username, &email)?;
        }
        // Argon2 before the transaction (off the executor); the token is spent only with the change.
        let password_hash = self.hasher.hash(password).await?;
        let now = self.clock.now_naive();
        self.db
            .run(move |conn| {
                write_transaction(conn, |conn| {
                    if q::spend(conn, hash.as_str(), &[RESET_PASSWORD], now)? != 1 {
                        return Err(LinkError::InvalidLink);
                    }
                    let Some(user) = user_q::find_by_id(conn, &token.user_id)?
                        .filter(|user| user.disabled_at.is_none())
                    else {
                        return Err(LinkError::InvalidLink);
                    };
                    user_q::set_password(conn, &user.id, &password_hash, now)?;
                    // A reset ends every session of the user, as a password change does.
                    super::sessions::revoke_all(conn, &user.id, "password_reset", &user.id, now)?;
                    q::supersede(conn, &user.id, &[RESET_PASSWORD], now)?;
                    if same_address(&token.email, &user.email_normalized) {
                        set_email_verified(conn, &user.id, now)?;
                    }
                    Ok(user.id)
                })
            })
            .await
    }

    /// Mails a verification link to the account's current address unless it is verified already
    /// (registration; no budget: registrations have their own). Returns whether a mail was queued.
    ///
    /// # Errors
    /// The database, or the mail could not be queued.
    pub async fn send_verification(&self, user_id: String) -> Result<bool, LinkError> {
        let now = self.clock.now_naive();
        let links = self.clone();
        let queued = self
            .db
            .run(move |conn| {
                write_transaction(conn, |conn| {
                    let Some(user) = user_q::find_by_id(conn, &user_id)? else {
                        return Ok::<_, LinkError>(None);
                    };
                    if stored_profile(conn, &user.id)?.email_verified {
                        return Ok(None);
                    }
                    let address = user.email.clone();
                    links
                        .issue(conn, &user, VERIFY_EMAIL, &address, now)
                        .map(Some)
                })
            })
            .await?;
        Ok(match queued {
            Some(id) => {
                self.outbox.wake(&id, VERIFY_EMAIL);
                true
            }
            None => false,
        })
    }

    /// [`MailLinks::send_verification`] on the user's request (`POST /api/me/email/verification`):
    /// counted against the budgets of the current address and the client's network first.
    ///
    /// # Errors
    /// `Throttled`, the database, or the mail could not be queued.
    pub async fn resend_verification(&self, user: &UserRow, ip: IpAddr) -> Result<bool, LinkError> {
        self.spend_budget(user.email_normalized.clone(), ip).await?;
        self.send_verification(user.id.clone()).await
    }

    /// Refuses an address another account has (`AddressTaken`); checked before a change is asked
    /// for, so a refused change writes nothing.
    ///
    /// # Errors
    /// `AddressTaken`, or the database.
    pub async fn check_available(&self, user_id: String, address: &Email) -> Result<(), LinkError> {
        let keys = address.keys();
        let taken = self
            .db
            .run(move |conn| {
                user_q::login_taken_by_other(conn, &user_id, &keys).map_err(DbError::Query)
            })
            .await?;
        if taken {
            return Err(LinkError::AddressTaken);
        }
        Ok(())
    }

    /// Asks to change the account's address to `address`: counted against the budgets of the new
    /// address and the client's network, then a link goes to the new address. The account keeps
    /// its address (and sign-in by it) until the link is confirmed; a newer request supersedes
    /// the older link.
    ///
    /// # Errors
    /// `AddressTaken`, `Throttled`, the database, or the mail could not be queued.
    pub async fn request_email_change(
        &self,
        user: &UserRow,
        address: &Email,
        ip: IpAddr,
    ) -> Result<(), LinkError> {
        self.check_available(user.id.clone(), address).await?;
        self.spend_budget(address.normalized(), ip).await?;
        let now = self.clock.now_naive();
        let (links, user_id, new_address) =
            (self.clone(), user.id.clone(), address.as_str().to_owned());
        let keys = address.keys();
        let id = self
            .db
            .run(move |conn| {
                write_transaction(conn, |conn| {
                    if user_q::login_taken_by_other(conn, &user_id, &keys)? {
                        return Err(LinkError::AddressTaken);
                    }
                    let user = user_q::find_by_id(conn, &user_id)?.ok_or(LinkError::InvalidLink)?;
                    links.issue(conn, &user, CHANGE_EMAIL, &new_address, now)
                })
            })
            .await?;
        self.outbox.wake(&id, CHANGE_EMAIL);
        Ok(())
    }

    /// The account's address, whether it is verified and the address a change is pending for
    /// (the account's email page). `None` when the user is gone.
    ///
    /// # Errors
    /// The database.
    pub async fn email_status(&self, user_id: String) -> Result<Option<EmailStatus>, LinkError> {
        let now = self.clock.now_naive();
        self.db
            .run(move |conn| {
                let Some(user) = user_q::find_by_id(conn, &user_id)? else {
                    return Ok(None);
                };
                let verified = stored_profile(conn, &user.id)?.email_verified;
                let pending =
                    q::newest_live(conn, &user.id, CHANGE_EMAIL, now)?.map(|row| row.email);
                Ok(Some(EmailStatus {
                    user,
                    verified,
                    pending,
                }))
            })
            .await
    }

    /// The address a change is pending for (its link not yet confirmed, not expired), if any.
    ///
    /// # Errors
    /// The database.
    pub async fn pending_change(&self, user_id: String) -> Result<Option<String>, LinkError> {
        let now = self.clock.now_naive();
        Ok(self
            .db
            .run(move |conn| {
                q::newest_live(conn, &user_id, CHANGE_EMAIL, now).map_err(DbError::Query)
            })
            .await?
            .map(|row| row.email))
    }

    /// Confirms an address with `presented`, in one transaction: the token is spent (exactly
    /// once) and acts on its own account and address only. A verification token marks the
    /// account's address verified if it is still the address the link was sent to; a change token
    /// makes its address the account's (verified), unless another account took it meanwhile, and
    /// ends the links still out for the old address (resets, other changes). Audited
    /// (`email_verified`, `email_changed`) with the user as actor.
    ///
    /// # Errors
    /// `InvalidLink`, `AddressTaken` (nothing spent), the database.
    pub async fn confirm_email(&self, presented: &MailToken) -> Result<Confirmed, LinkError> {
        let hash = presented.hash();
        let now = self.clock.now_naive();
        self.db
            .run(move |conn| {
                write_transaction(conn, |conn| {
                    let purposes = [VERIFY_EMAIL, CHANGE_EMAIL];
                    let Some(token) = q::find_live(conn, hash.as_str(), &purposes, now)? else {
                        return Err(LinkError::InvalidLink);
                    };
                    if q::spend(conn, hash.as_str(), &purposes, now)? != 1 {
                        return Err(LinkError::InvalidLink);
                    }
                    let Some(user) = user_q::find_by_id(conn, &token.user_id)?
                        .filter(|user| user.disabled_at.is_none())
                    else {
                        return Err(LinkError::InvalidLink);
                    };
                    if token.purpose == VERIFY_EMAIL {
                        // The address changed since the link was sent: it proves nothing now.
                        if !same_address(&token.email, &user.email_normalized) {
                            return Err(LinkError::InvalidLink);
                        }
                        set_email_verified(conn, &user.id, now)?;
                        audit::record(
                            conn,
                            Some(&user.id),
                            "email_verified",
                            Some(&user.id),
                            None,
                            now,
                        )?;
                        return Ok(Confirmed {
                            user_id: user.id,
                            email: user.email,
                            changed: false,
                        });
                    }
                    let address = Email::parse(&token.email)?;
                    if user_q::login_taken_by_other(conn, &user.id, &address.keys())? {
                        return Err(LinkError::AddressTaken);
                    }
                    user_q::set_email(
                        conn,
                        &user.id,
                        address.as_str(),
                        &address.normalized(),
                        now,
                    )?;
                    set_email_verified(conn, &user.id, now)?;
                    // Links sent to the old address, and other pending changes, end here.
                    q::supersede(
                        conn,
                        &user.id,
                        &[VERIFY_EMAIL, CHANGE_EMAIL, RESET_PASSWORD],
                        now,
                    )?;
                    audit::record(
                        conn,
                        Some(&user.id),
                        "email_changed",
                        Some(&user.id),
                        None,
                        now,
                    )?;
                    Ok(Confirmed {
                        user_id: user.id,
                        email: address.as_str().to_owned(),
                        changed: true,
                    })
                })
            })
            .await
    }
}

/// Whether the address a token was sent to is the account's address now (by its key).
fn same_address(sent_to: &str, stored_key: &str) -> bool {
    let key = super::email::normalized(sent_to);
    key == stored_key || sent_to.to_lowercase() == stored_key
}

/// The account's stored claims (none when unset or unreadable).
fn stored_profile(conn: &mut DbConn, user_id: &str) -> Result<Profile, diesel::result::Error> {
    Ok(claims_q::find(conn, user_id)?
        .and_then(|row| Profile::from_stored(&row.claims))
        .unwrap_or_default())
}

/// Sets the account's `email_verified` claim at `now`, inside the caller's transaction.
fn set_email_verified(
    conn: &mut DbConn,
    user_id: &str,
    now: NaiveDateTime,
) -> Result<(), diesel::result::Error> {
    let mut profile = stored_profile(conn, user_id)?;
    if profile.email_verified {
        return Ok(());
    }
    profile.email_verified = true;
    claims_q::replace(
        conn,
        &UserClaimsRow {
            user_id: user_id.to_owned(),
            claims: profile.to_stored(),
        },
    )?;
    user_q::touch(conn, user_id, now)?;
    Ok(())
}

/// The mail of a link: subject and text, the link built from `base` (the issuer).
fn compose(
    base: &str,
    purpose: &'static str,
    username: &str,
    address: &str,
    token: &MailToken,
    lifetime: &str,
) -> Message {
    let (subject, path, text) = match purpose {
        RESET_PASSWORD => (
            "Reset your password",
            "/password-reset/confirm",
            "Someone (we hope you) asked to reset the password of your account. Choose a new password here:",
        ),
        CHANGE_EMAIL => (
            "Confirm your new email address",
            "/email/verify",
            "Confirm that this is the new email address of your account. Your address changes once you confirm; until then the old one stays in use:",
        ),
        _ => (
            "Confirm your email address",
            "/email/verify",
            "Confirm that this is the email address of your account:",
        ),
    };
    let body = format!(
        "Hello {username},\n\n{text}\n\n{base}{path}?token={token}\n\nThe link works once, for {lifetime}. If you did not ask for this, ignore this mail: nothing changes.\n",
        token = token.expose()
    );
    Message {
        to: address.to_owned(),
        subject: subject.to_owned(),
        body: zeroize::Zeroizing::new(body),
        purpose,
    }
}
