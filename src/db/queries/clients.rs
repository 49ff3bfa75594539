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

/// Replaces every column of the client `row.client_id` with `row`'s; returns rows changed.
pub fn replace(conn: &mut DbConn, row: &ClientRow) -> QueryResult<usize> {
    diesel::update(dsl::clients.find(&row.client_id))
        .set(row)
        .execute(conn)
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

/// Replaces a client's token-exchange audiences (a JSON array) at `now`.
pub fn set_token_exchange_audiences(
    conn: &mut DbConn,
    client_id: &str,
    audiences: &str,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(dsl::clients.find(client_id))
        .set((
            dsl::token_exchange_audiences.eq(audiences),
            dsl::updated_at.eq(now),
        ))
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

/// Replaces the client authentication method and the JSON Web Key Set or its URL
/// (`private_key_jwt`); the secret hash is replaced too (`None`: a client that authenticates by
/// key holds no secret).
pub fn set_authentication(
    conn: &mut DbConn,
    client_id: &str,
    method: &str,
    (jwks, jwks_uri): (Option<&str>, Option<&str>),
    secret_hash: Option<&str>,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(dsl::clients.find(client_id))
        .set((
            dsl::token_endpoint_auth_method.eq(method),
            dsl::jwks.eq(jwks),
            dsl::jwks_uri.eq(jwks_uri),
            dsl::secret_hash.eq(secret_hash),
            dsl::updated_at.eq(now),
        ))
        .execute(conn)
}

/// Records an accepted client assertion's `jti` until `expires_at`, as `jti_hash` (unique across
/// clients: the hash covers the client id too). `Ok(false)`: the
/// client had presented this `jti` before (a replay), whichever instance saw it.
pub fn record_assertion(
    conn: &mut DbConn,
    client_id: &str,
    jti_hash: &str,
    expires_at: NaiveDateTime,
) -> QueryResult<bool> {
    use crate::db::schema::client_assertions as assertions;
    use diesel::result::{DatabaseErrorKind, Error};
    let inserted = diesel::insert_into(assertions::table)
        .values((
            assertions::client_id.eq(client_id),
            assertions::jti_hash.eq(jti_hash),
            assertions::expires_at.eq(expires_at),
        ))
        .execute(conn);
    match inserted {
        Ok(_) => Ok(true),
        Err(Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => Ok(false),
        Err(other) => Err(other),
    }
}

/// Deletes up to `batch` assertion records that expired before `before`; returns how many.
pub fn purge_assertions(
    conn: &mut DbConn,
    before: NaiveDateTime,
    batch: i64,
) -> QueryResult<usize> {
    use crate::db::schema::client_assertions as assertions;
    let expired: Vec<String> = assertions::table
        .filter(assertions::expires_at.lt(before))
        .select(assertions::jti_hash)
        .limit(batch)
        .load(conn)?;
    diesel::delete(assertions::table.filter(assertions::jti_hash.eq_any(&expired))).execute(conn)
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
