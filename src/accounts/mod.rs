//! Accounts: validated identifiers, Argon2id password hashing off the executor, and the user
//! operations shared by the CLI and (later) the HTTP API.

pub mod audit;
pub mod browser_sessions;
pub mod current;
pub mod email;
pub mod factors;
pub mod mail_links;
pub mod names;
pub mod network;
pub mod passkeys;
pub mod password;
pub mod profile;
pub mod registration;
pub mod self_service;
pub mod sessions;
pub mod users;

pub use names::{Email, Password, Role, Username};
pub use password::PasswordHasher;

use std::time::Duration;

/// The account settings: password hashing (`PORTCULLIS_ARGON2_*`, `PORTCULLIS_HASHING_*`), login
/// and registration throttling (`PORTCULLIS_LOGIN_*`, `PORTCULLIS_REGISTER_MAX_PER_IP`) and
/// `PORTCULLIS_OPEN_REGISTRATION`.
#[derive(Clone, Copy, Debug)]
pub struct AccountSettings {
    /// Argon2id parameters.
    pub password_hashing: password::HashParams,
    /// Concurrent password hashes.
    pub hashing_concurrency: usize,
    /// Requests that may wait for a hashing thread before 503.
    pub hashing_queue: usize,
    /// Whether anyone may register through the JSON API.
    pub open_registration: bool,
    /// Login attempts per account and client network (or trusted device) per window.
    pub login_max_attempts: u32,
    /// Login attempts per account from untrusted devices per window.
    pub login_max_attempts_per_account: u32,
    /// Login attempts per IP per window.
    pub login_max_attempts_per_ip: u32,
    /// Registrations per IP per window.
    pub register_max_per_ip: u32,
    /// Throttling window (logins and registrations).
    pub login_window: Duration,
    /// The deployment's second-factor policy (`PORTCULLIS_SECOND_FACTOR`).
    pub second_factor: factors::SecondFactorPolicy,
}
