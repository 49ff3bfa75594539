//! Queries on `clients`.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConn;
use crate::db::models::ClientRow;
use crate::db::schema::clients::dsl;

/// Inserts a client.
pub fn insert(conn: &mut DbConn, row: &ClientRow) -> QueryResult<usize> {
    diesel::insert_into(dsl::clients).values(row).execute(conn)
}

/// Every client, by id.
pub fn all(conn: &mut DbConn) -> QueryResult<Vec<ClientRow>> {
    dsl::clients
        .order(dsl::client_id.asc())
        .select(ClientRow::as_select())
        .load(conn)
}

/// One client.
pub fn find(conn: &mut DbConn, client_id: &str) -> QueryResult<Option<ClientRow>> {
    dsl::clients
        .find(client_id)
        .select(ClientRow::as_select())
        .first(conn)
        .optional()
}

/// Deletes a client; returns rows deleted.
pub fn delete(conn: &mut DbConn, client_id: &str) -> QueryResult<usize> {
    diesel::delete(dsl::clients.find(client_id)).execute(conn)
}

/// Replaces a secret hash.
pub fn set_secret(
    conn: &mut DbConn,
    client_id: &str,
    secret_hash: &str,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(dsl::clients.find(client_id))
        .set((dsl::secret_hash.eq(secret_hash), dsl::updated_at.eq(now)))
        .execute(conn)
}

/// Replaces the redirect URIs (a JSON array).
pub fn set_redirect_uris(
    conn: &mut DbConn,
    client_id: &str,
    redirect_uris: &str,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(dsl::clients.find(client_id))
        .set((
            dsl::redirect_uris.eq(redirect_uris),
            dsl::updated_at.eq(now),
        ))
        .execute(conn)
}

/// Replaces the explicitly registered web origins (a JSON array).
pub fn set_web_origins(
    conn: &mut DbConn,
    client_id: &str,
    web_origins: &str,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(dsl::clients.find(client_id))
        .set((dsl::web_origins.eq(web_origins), dsl::updated_at.eq(now)))
        .execute(conn)
}

/// Sets a client's second-factor policy at `now`.
pub fn set_second_factor(
    conn: &mut DbConn,
    client_id: &str,
    policy: &str,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(dsl::clients.find(client_id))
        .set((dsl::second_factor.eq(policy), dsl::updated_at.eq(now)))
        .execute(conn)
}

/// `(count, latest change)`: changes whenever a client is added, changed or deleted.
pub fn fingerprint(conn: &mut DbConn) -> QueryResult<(i64, Option<NaiveDateTime>)> {
    let count = dsl::clients.count().get_result(conn)?;
    let latest = dsl::clients
        .select(dsl::updated_at)
        .order(dsl::updated_at.desc())
        .first(conn)
        .optional()?;
    Ok((count, latest))
}
