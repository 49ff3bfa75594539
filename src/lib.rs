//! Portcullis: an OpenID Connect identity provider that signs RS256/ES256 tokens with rotating
//! keys, publishes them as a JWKS, and keeps refresh state in the database.

#[cfg(feature = "server")]
pub mod accounts;
#[cfg(feature = "server")]
pub mod cli;
#[cfg(feature = "server")]
pub mod clock;
#[cfg(feature = "server")]
pub mod config;
#[cfg(feature = "server")]
pub mod db;
#[cfg(feature = "server")]
pub mod fault;
#[cfg(feature = "server")]
pub mod http;
#[cfg(feature = "server")]
pub mod keys;
#[cfg(feature = "server")]
pub mod mail;
#[cfg(feature = "server")]
pub mod metrics;
#[cfg(feature = "server")]
pub mod oidc;
#[cfg(feature = "server")]
pub mod secrets;
#[cfg(feature = "server")]
pub mod startup;
#[cfg(feature = "server")]
pub mod state;
#[cfg(feature = "server")]
pub mod telemetry;
#[cfg(feature = "verify")]
pub mod verify;
