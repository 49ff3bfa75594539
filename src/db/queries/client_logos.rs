//! Queries on `client_logos`: the logos of dynamically registered clients.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConn;
use crate::db::models::ClientLogoRow;
use crate::db::schema::client_logos::dsl;

/// Stores `row` as its client's logo, replacing any earlier one (a delete and an insert: no
/// backend-specific upsert in shared code).
pub fn replace(conn: &mut DbConn, row: &ClientLogoRow) -> QueryResult<usize> {
    diesel::delete(dsl::client_logos.find(&row.client_id)).execute(conn)?;
    diesel::insert_into(dsl::client_logos)
        .values(row)
        .execute(conn)
}

/// Deletes a client's logo; returns rows deleted.
pub fn delete(conn: &mut DbConn, client_id: &str) -> QueryResult<usize> {
    diesel::delete(dsl::client_logos.find(client_id)).execute(conn)
}

/// A client's logo.
pub fn find(conn: &mut DbConn, client_id: &str) -> QueryResult<Option<ClientLogoRow>> {
    dsl::client_logos
        .find(client_id)
        .select(ClientLogoRow::as_select())
        .first(conn)
        .optional()
}

/// The clients that have a logo.
pub fn client_ids(conn: &mut DbConn) -> QueryResult<Vec<String>> {
    dsl::client_logos.select(dsl::client_id).load(conn)
}

/// `(count, latest fetch)`: changes whenever a logo is stored or deleted (the client registry
/// reloads on it).
pub fn fingerprint(conn: &mut DbConn) -> QueryResult<(i64, Option<NaiveDateTime>)> {
    let count = dsl::client_logos.count().get_result(conn)?;
    let latest = dsl::client_logos
        .select(dsl::fetched_at)
        .order(dsl::fetched_at.desc())
        .first(conn)
        .optional()?;
    Ok((count, latest))
}
