//! Protocol logic without actix types.

pub mod metadata;
