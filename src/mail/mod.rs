//! Mail: the outbox that every mail goes through, and its delivery over SMTP (lettre).
//!
//! A mail is queued in `mail_outbox` inside the transaction of the action that causes it (a
//! password-reset request, a registration, an email change), so the action and its mail commit
//! together. A delivery task ([`deliver_until_stopped`]) sends what is due, off the request path,
//! on the async executor (lettre's tokio transport: no thread blocks on the network), and retries
//! with back-off while the SMTP server is away: the user's action is never lost because SMTP is
//! down, and a request never waits for SMTP. One instance of many sends a message: it claims
//! it with a conditional UPDATE first.
//!
//! The body holds a live link (a bearer secret), so it is sealed under the KEK (AES-256-GCM,
//! bound to the message id) at rest, and erased once sent or given up. With no SMTP server
//! configured (the embedded default) nothing is sent: each mail is announced in the log by id
//! and purpose — never its link or address — and stays in the outbox, which `portcullis mail
//! outbox` prints with the KEK.

pub mod smtp;

use std::sync::Arc;

use chrono::NaiveDateTime;
use serde::Serialize;

use crate::db::DbConn;
use crate::db::models::OutboxRow;
use crate::db::queries::outbox as q;
use crate::keys::kek::Kek;

pub use smtp::{SmtpSettings, SmtpTls, deliver_until_stopped};

/// Why a mail could not be queued or read back.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// Sealing or opening the body under the KEK failed.
    #[error("mail body sealing failed: {0}")]
    Seal(#[source] crate::keys::kek::KekError),
    /// Database trouble.
    #[error(transparent)]
    Db(#[from] diesel::result::Error),
}

/// The mail settings: the SMTP server (none: log and outbox only) and the `From` address.
#[derive(Clone, Debug)]
pub struct MailSettings {
    /// The SMTP server, if any.
    pub smtp: Option<SmtpSettings>,
    /// The `From` mailbox (`Name <address>` or an address); `None`: `Portcullis
    /// <noreply@HOST>`, HOST the issuer's host ([`default_from`]).
    pub from: Option<String>,
}

/// The `From` mailbox when none is configured: `Portcullis <noreply@HOST>`, HOST the issuer's
/// host name (`localhost` when it is an IP address, which a mailbox cannot name as such).
pub fn default_from(issuer: &str) -> String {
    let host = url::Url::parse(issuer)
        .ok()
        .and_then(|url| match url.host() {
            Some(url::Host::Domain(domain)) => Some(domain.to_owned()),
            _ => None,
        })
        .unwrap_or_else(|| "localhost".to_owned());
    format!("Portcullis <noreply@{host}>")
}

/// A mail to queue.
pub struct Message {
    /// The recipient's address.
    pub to: String,
    /// Subject line.
    pub subject: String,
    /// The text body (holds a live link: never logged).
    pub body: zeroize::Zeroizing<String>,
    /// What it is for (`verify_email`, `change_email`, `reset_password`, `account_exists`).
    pub purpose: &'static str,
}

/// The queue of outgoing mail: seals bodies under the KEK and wakes the delivery task. Cheap to
/// clone.
#[derive(Clone)]
pub struct Outbox {
    kek: Arc<Kek>,
    wake: Arc<tokio::sync::Notify>,
    sends: bool,
}

impl Outbox {
    /// An outbox sealing under `kek`; `sends` says whether an SMTP server is configured (else
    /// queued mail is only announced in the log).
    pub fn new(kek: Arc<Kek>, sends: bool) -> Self {
        Self {
            kek,
            wake: Arc::new(tokio::sync::Notify::new()),
            sends,
        }
    }

    /// The signal the delivery task waits on.
    pub fn waker(&self) -> Arc<tokio::sync::Notify> {
        Arc::clone(&self.wake)
    }

    /// The KEK bodies are sealed under.
    pub fn kek(&self) -> Arc<Kek> {
        Arc::clone(&self.kek)
    }

    /// Queues `message` at `now` inside the caller's transaction; returns its id. Call
    /// [`Outbox::wake`] once the transaction committed.
    ///
    /// # Errors
    /// Sealing (should not happen) or the database.
    pub fn enqueue(
        &self,
        conn: &mut DbConn,
        message: &Message,
        now: NaiveDateTime,
    ) -> Result<String, MailError> {
        let id = uuid::Uuid::new_v4().to_string();
        let body = self
            .kek
            .seal(&aad(&id), message.body.as_bytes())
            .map_err(MailError::Seal)?;
        q::insert(
            conn,
            &OutboxRow {
                id: id.clone(),
                recipient: message.to.clone(),
                subject: message.subject.clone(),
                body,
                purpose: message.purpose.to_owned(),
                created_at: now,
                next_attempt_at: now,
                attempts: 0,
                claimed_until: None,
                sent_at: None,
                failed_at: None,
                last_error: None,
            },
        )?;
        Ok(id)
    }

    /// After the queuing transaction committed: wakes the delivery task, or — with no SMTP
    /// server — announces the mail in the log (its id and purpose; the link and the address
    /// stay out of the log).
    pub fn wake(&self, id: &str, purpose: &str) {
        if self.sends {
            self.wake.notify_one();
        } else {
            tracing::info!(
                mail_id = %id,
                %purpose,
                "no SMTP server is configured (PORTCULLIS_SMTP_HOST): the mail stays in the outbox; `portcullis mail outbox` prints it"
            );
        }
    }
}

/// The additional data a body is sealed with: its message id, so a body cannot be moved to
/// another row.
fn aad(id: &str) -> String {
    format!("mail:{id}")
}

/// Opens a sealed body.
fn open(kek: &Kek, row: &OutboxRow) -> Result<zeroize::Zeroizing<String>, MailError> {
    let plain = kek
        .open(&aad(&row.id), &row.body)
        .map_err(MailError::Seal)?;
    Ok(zeroize::Zeroizing::new(
        String::from_utf8_lossy(&plain).into_owned(),
    ))
}

/// A message of the outbox as `portcullis mail outbox` prints it.
#[derive(Debug, Serialize)]
pub struct OutboxEntry {
    /// The message id.
    pub id: String,
    /// The recipient.
    pub to: String,
    /// Subject line.
    pub subject: String,
    /// What it is for.
    pub purpose: String,
    /// `pending`, `sent` or `failed`.
    pub state: &'static str,
    /// Queued (UTC).
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// Delivery attempts made.
    pub attempts: i32,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// The text body while unsent (`null` once sent or given up: erased).
    pub body: Option<String>,
}

/// Every message of the outbox, newest first, bodies opened with `kek` (the CLI).
///
/// # Errors
/// The database, or a body that does not open under `kek` (another KEK).
pub fn list(conn: &mut DbConn, kek: &Kek) -> Result<Vec<OutboxEntry>, MailError> {
    q::list(conn)?
        .into_iter()
        .map(|row| {
            let body = if row.body.is_empty() {
                None
            } else {
                Some(open(kek, &row)?.to_string())
            };
            let state = if row.sent_at.is_some() {
                "sent"
            } else if row.failed_at.is_some() {
                "failed"
            } else {
                "pending"
            };
            Ok(OutboxEntry {
                id: row.id,
                to: row.recipient,
                subject: row.subject,
                purpose: row.purpose,
                state,
                created_at: row.created_at.and_utc(),
                attempts: row.attempts,
                last_error: row.last_error,
                body,
            })
        })
        .collect()
}
