//! Synchronous, composable queries: `fn(&mut DbConn, …) -> QueryResult<T>`. They never touch the
//! pool, so several compose inside one transaction.

pub mod account;
pub mod apis;
pub mod audit;
pub mod client_logos;
pub mod clients;
pub mod consents;
pub mod device_authorizations;
pub mod devices;
pub mod email_tokens;
pub mod factors;
pub mod lease;
pub mod oauth;
pub mod outbox;
pub mod refresh;
pub mod registration;
pub mod signing_keys;
pub mod throttle;
pub mod user_claims;
pub mod users;
pub mod webauthn;
