//! Protocol logic without actix types.

pub mod apis;
pub mod authorize;
pub mod claims_request;
pub mod client_auth;
pub mod client_logo;
pub mod client_metadata;
pub mod clients;
pub mod consent;
pub mod device;
pub mod error;
pub mod grants;
pub mod introspect;
pub mod issuer;
pub mod logout;
pub mod metadata;
pub mod params;
pub mod registration;
pub mod remote;
pub mod revocation;
pub mod settings;
pub mod standard_claims;
pub mod subjects;
pub mod token_exchange;
pub mod tokens;
pub mod user_grants;

pub use issuer::Issuer;
pub use settings::TokenSettings;
pub use tokens::TokenService;
