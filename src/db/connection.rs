//! The connection enum over both backends.

/// A connection to either backend. Queries are written once against this type.
#[derive(diesel::MultiConnection)]
pub enum DbConn {
    /// Production backend.
    Postgres(diesel::PgConnection),
    /// Embedded default.
    Sqlite(diesel::SqliteConnection),
}
