//! Portcullis: an OpenID Connect identity provider that signs RS256/ES256 tokens with rotating
//! keys, publishes them as a JWKS, and keeps refresh state in the database.

pub mod cli;
pub mod config;
pub mod db;
pub mod error;
pub mod http;
pub mod keys;
pub mod oidc;
pub mod startup;
pub mod state;
pub mod telemetry;
