//! Protocol logic without actix types.

pub mod clients;
pub mod error;
pub mod grants;
pub mod introspect;
pub mod metadata;
pub mod params;
