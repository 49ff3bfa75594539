//! Delivery over SMTP with lettre's tokio transport: STARTTLS (required), implicit TLS (SMTPS)
//! or plain (loopback only), optional authentication, the system's CA store or a CA file. A
//! delivery task sends what is due in the outbox, claims each message first (one instance of
//! many sends it), and retries with exponential back-off until it is accepted, refused for good
//! (a 5xx answer) or too old.

use std::path::PathBuf;
use std::time::Duration;

use chrono::NaiveDateTime;
use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use secrecy::{ExposeSecret, SecretString};

use super::{Outbox, open};
use crate::clock::Clock;
use crate::db::queries::outbox as q;
use crate::db::{Db, DbError};

/// How the SMTP connection is protected (`PORTCULLIS_SMTP_TLS`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmtpTls {
    /// STARTTLS, required (RFC 3207): the session is upgraded before anything is sent.
    StartTls,
    /// Implicit TLS from the first byte (SMTPS, RFC 8314 §3.3).
    Tls,
    /// No TLS: only to a loopback host (a local relay).
    None,
}

impl SmtpTls {
    /// `starttls`, `tls` or `none`.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "starttls" => Ok(Self::StartTls),
            "tls" => Ok(Self::Tls),
            "none" => Ok(Self::None),
            other => Err(format!("`{other}` is not starttls, tls or none")),
        }
    }

    /// The setting's text.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::StartTls => "starttls",
            Self::Tls => "tls",
            Self::None => "none",
        }
    }

    /// The usual port: 587 (submission), 465 (submissions), 25.
    pub fn default_port(self) -> u16 {
        match self {
            Self::StartTls => 587,
            Self::Tls => 465,
            Self::None => 25,
        }
    }
}

/// Where and how mail is sent (`PORTCULLIS_SMTP_*`).
#[derive(Clone, Debug)]
pub struct SmtpSettings {
    /// Host name (checked against the server's certificate).
    pub host: String,
    /// Port.
    pub port: u16,
    /// TLS mode.
    pub tls: SmtpTls,
    /// CA certificates (PEM) instead of the system's.
    pub ca_file: Option<PathBuf>,
    /// User name and password, if the server wants authentication.
    pub credentials: Option<(String, SecretString)>,
}

/// Why a transport could not be built.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TransportError(String);

/// The transport of `settings`.
pub type Transport = AsyncSmtpTransport<Tokio1Executor>;

impl SmtpSettings {
    /// Builds the transport (reads the CA file). Nothing connects yet.
    ///
    /// # Errors
    /// An unreadable or invalid CA file, or a host lettre refuses.
    pub fn transport(&self) -> Result<Transport, TransportError> {
        let fail = |what: &str, e: &dyn std::fmt::Display| TransportError(format!("{what}: {e}"));
        let tls_parameters = || -> Result<TlsParameters, TransportError> {
            let mut builder = TlsParameters::builder(self.host.clone());
            if let Some(path) = &self.ca_file {
                let pem = std::fs::read(path)
                    .map_err(|e| fail(&format!("cannot read {}", path.display()), &e))?;
                let certificate = Certificate::from_pem(&pem).map_err(|e| {
                    fail(&format!("{} is not a PEM certificate", path.display()), &e)
                })?;
                builder = builder.add_root_certificate(certificate);
            }
            builder
                .build_rustls()
                .map_err(|e| fail("TLS parameters", &e))
        };
        let builder = Transport::builder_dangerous(self.host.as_str())
            .port(self.port)
            .timeout(Some(SMTP_TIMEOUT));
        let builder = match self.tls {
            SmtpTls::StartTls => builder.tls(Tls::Required(tls_parameters()?)),
            SmtpTls::Tls => builder.tls(Tls::Wrapper(tls_parameters()?)),
            SmtpTls::None => builder.tls(Tls::None),
        };
        let builder = match &self.credentials {
            Some((user, password)) => builder.credentials(Credentials::new(
                user.clone(),
                password.expose_secret().to_owned(),
            )),
            None => builder,
        };
        Ok(builder.build())
    }
}

/// How long one SMTP conversation may take.
const SMTP_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a claim lasts: longer than one conversation, so two instances never send one
/// message, and short enough that a crashed sender's message is retried soon.
const CLAIM: chrono::Duration = chrono::Duration::seconds(60);
/// How often the delivery task looks for due mail when nothing woke it (mail queued by another
/// instance, retries).
const POLL: Duration = Duration::from_secs(2);
/// Messages sent per round at most.
const BATCH: i64 = 50;
/// The first retry's delay; each further one doubles, up to [`MAX_DELAY`].
const FIRST_DELAY: chrono::Duration = chrono::Duration::seconds(5);
/// The longest delay between attempts.
const MAX_DELAY: chrono::Duration = chrono::Duration::minutes(30);
/// A message not delivered this long after it was queued is given up (its link has expired or
/// soon will).
const GIVE_UP_AFTER: chrono::Duration = chrono::Duration::hours(24);

/// Sends due mail until the task is aborted: wakes when this instance queues mail, else every
/// [`POLL`].
pub async fn deliver_until_stopped(
    db: Db,
    outbox: Outbox,
    transport: Transport,
    from: Mailbox,
    clock: Clock,
) {
    let wake = outbox.waker();
    loop {
        tokio::select! {
            () = wake.notified() => {}
            () = tokio::time::sleep(POLL) => {}
        }
        deliver_due(&db, &outbox, &transport, &from, &clock).await;
    }
}

/// One round: every message due now, each claimed, sent and recorded.
pub async fn deliver_due(
    db: &Db,
    outbox: &Outbox,
    transport: &Transport,
    from: &Mailbox,
    clock: &Clock,
) {
    let now = clock.now_naive();
    let due = db
        .run(move |conn| q::due(conn, now, BATCH).map_err(DbError::Query))
        .await;
    let ids = match due {
        Ok(ids) => ids,
        Err(error) => {
            tracing::warn!(%error, "mail delivery: reading the outbox failed; retrying");
            return;
        }
    };
    for id in ids {
        let now = clock.now_naive();
        let claim_id = id.clone();
        let claimed = db
            .run(move |conn| q::claim(conn, &claim_id, now, now + CLAIM).map_err(DbError::Query))
            .await;
        let row = match claimed {
            Ok(Some(row)) => row,
            Ok(None) => continue,
            Err(error) => {
                tracing::warn!(%error, "mail delivery: claiming a message failed; retrying");
                return;
            }
        };
        let outcome = match compose(outbox, &row, from) {
            Ok(message) => transport
                .send(message)
                .await
                .map(|_| ())
                .map_err(|e| (e.is_permanent(), e.to_string())),
            Err(reason) => Err((true, reason)),
        };
        let now = clock.now_naive();
        let (purpose, mail_id) = (row.purpose.clone(), row.id.clone());
        let recorded = match outcome {
            Ok(()) => {
                tracing::info!(%mail_id, %purpose, "mail sent");
                db.run(move |conn| q::mark_sent(conn, &id, now).map_err(DbError::Query))
                    .await
            }
            Err((permanent, reason)) => {
                let next = next_attempt(row.attempts, row.created_at, now, permanent);
                tracing::warn!(%mail_id, %purpose, attempts = row.attempts + 1, retry = next.is_some(), error = %reason, "mail not delivered");
                db.run(move |conn| {
                    q::mark_failed(conn, &id, &reason, now, next).map_err(DbError::Query)
                })
                .await
            }
        };
        if let Err(error) = recorded {
            // The claim lapses and the message is tried again (at worst sent twice).
            tracing::warn!(%error, %mail_id, "mail delivery: recording the outcome failed");
        }
    }
}

/// The message of an outbox row, its body opened under the KEK; a reason when it cannot be
/// made (never sendable: given up).
fn compose(
    outbox: &Outbox,
    row: &crate::db::models::OutboxRow,
    from: &Mailbox,
) -> Result<lettre::Message, String> {
    let to: Mailbox = row
        .recipient
        .parse()
        .map_err(|e| format!("the recipient is not a deliverable address: {e}"))?;
    let body = open(&outbox.kek, row).map_err(|e| e.to_string())?;
    lettre::Message::builder()
        .from(from.clone())
        .to(to)
        .subject(row.subject.clone())
        .header(ContentType::TEXT_PLAIN)
        .body(body.to_string())
        .map_err(|e| format!("the message could not be built: {e}"))
}

/// When to try again after attempt number `attempts + 1` failed at `now`: exponential back-off
/// from [`FIRST_DELAY`] up to [`MAX_DELAY`]; `None` (give up) after a permanent refusal or once
/// the message is [`GIVE_UP_AFTER`] old.
fn next_attempt(
    attempts: i32,
    created_at: NaiveDateTime,
    now: NaiveDateTime,
    permanent: bool,
) -> Option<NaiveDateTime> {
    if permanent || now - created_at >= GIVE_UP_AFTER {
        return None;
    }
    let doublings = u32::try_from(attempts.clamp(0, 20)).unwrap_or(20);
    let delay = FIRST_DELAY
        .checked_mul(2_i32.saturating_pow(doublings))
        .unwrap_or(MAX_DELAY)
        .min(MAX_DELAY);
    Some(now + delay)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_and_end() {
        let start = chrono::DateTime::from_timestamp(0, 0)
            .map(|t| t.naive_utc())
            .unwrap_or_default();
        let delays: Vec<i64> = (0..6)
            .map(|n| {
                next_attempt(n, start, start, false).map_or(-1, |next| (next - start).num_seconds())
            })
            .collect();
        assert_eq!(delays, [5, 10, 20, 40, 80, 160]);
        assert_eq!(
            next_attempt(30, start, start, false).map(|n| (n - start).num_seconds()),
            Some(1800)
        );
        assert_eq!(next_attempt(0, start, start, true), None);
        assert_eq!(
            next_attempt(0, start, start + chrono::Duration::hours(25), false),
            None
        );
    }
}
