//! Black-box tests: a real server on 127.0.0.1:0 per test, talking HTTP, on SQLite and Postgres.

#![expect(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod helpers;
mod pg;

mod account;
mod admin;
mod apis;
mod auth_api;
mod browser;
mod claims;
mod claims_parameter;
mod cli;
mod client_logo;
mod client_metadata;
mod cluster;
mod consent;
mod cors;
mod device;
mod edges;
mod email;
mod errors;
mod failover;
mod fuzz;
mod hardening;
mod http_basics;
mod issuer;
mod jwks;
mod keys;
mod mcp;
mod oauth;
mod oidf;
mod operations;
mod outbound;
mod pairwise;
mod passkeys;
mod passwords;
mod pkce_policy;
mod private_key_jwt;
mod registration;
mod request_objects;
mod rotation;
mod rotator_lease;
mod second_factors;
mod signed_userinfo;
mod stub;
mod tls;
mod token_exchange;
mod unavailable;
mod unsigned_id_tokens;
mod users;
mod verify;
