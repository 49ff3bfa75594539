//! Queries of dynamic client registration (RFC 7591, RFC 7592): initial access tokens, the
//! registration access tokens and last use of dynamically registered clients, and the unused
//! ones the janitor deletes.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConn;
use crate::db::models::InitialAccessTokenRow;
use crate::db::schema::clients::dsl as clients;
use crate::db::schema::initial_access_tokens as tokens;

/// Inserts an initial access token.
pub fn insert_initial_token(conn: &mut DbConn, row: &InitialAccessTokenRow) -> QueryResult<usize> {
    diesel::insert_into(tokens::table).values(row).execute(conn)
}

/// Every initial access token, newest first.
pub fn initial_tokens(conn: &mut DbConn) -> QueryResult<Vec<InitialAccessTokenRow>> {
    tokens::table
        .order(tokens::created_at.desc())
        .select(InitialAccessTokenRow::as_select())
        .load(conn)
}

/// One initial access token by id.
pub fn find_initial_token(
    conn: &mut DbConn,
    id: &str,
) -> QueryResult<Option<InitialAccessTokenRow>> {
    tokens::table
        .find(id)
        .select(InitialAccessTokenRow::as_select())
        .first(conn)
        .optional()
}

/// Revokes an initial access token at `now`; returns rows changed (0: unknown or revoked).
pub fn revoke_initial_token(conn: &mut DbConn, id: &str, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(
        tokens::table
            .filter(tokens::id.eq(id))
            .filter(tokens::revoked_at.is_null()),
    )
    .set(tokens::revoked_at.eq(now))
    .execute(conn)
}

/// Spends one use of the initial access token whose hash is `token_hash`, if it is unrevoked,
/// unexpired at `now` and has uses left: one conditional UPDATE, so concurrent registrations
/// never spend more uses than allowed. Returns the token's id when a use was spent.
pub fn spend_initial_token(
    conn: &mut DbConn,
    token_hash: &str,
    now: NaiveDateTime,
) -> QueryResult<Option<String>> {
    let spent = diesel::update(tokens::table.filter(spendable(token_hash, now)))
        .set(tokens::uses.eq(tokens::uses + 1))
        .execute(conn)?;
    if spent != 1 {
        return Ok(None);
    }
    tokens::table
        .filter(tokens::token_hash.eq(token_hash))
        .select(tokens::id)
        .first(conn)
        .optional()
}

/// Whether `token_hash` names an initial access token that [`spend_initial_token`] would spend
/// at `now` (live, with a use left), spending nothing: checked before a registration makes an
/// outbound request on the caller's behalf.
pub fn initial_token_usable(
    conn: &mut DbConn,
    token_hash: &str,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        tokens::table.filter(spendable(token_hash, now)),
    ))
    .get_result(conn)
}

/// The initial access token `token_hash` while a use of it may be spent at `now`: unrevoked,
/// unexpired, with a use left.
#[diesel::dsl::auto_type(no_type_alias)]
fn spendable<'a>(token_hash: &'a str, now: NaiveDateTime) -> _ {
    tokens::token_hash
        .eq(token_hash)
        .and(tokens::revoked_at.is_null())
        .and(tokens::expires_at.gt(now))
        .and(
            tokens::max_uses
                .is_null()
                .or(tokens::uses.nullable().lt(tokens::max_uses)),
        )
}

/// Replaces a dynamic client's registration access token hash, if it is still `current`
/// (compare-and-swap: of two requests with one token, one wins). Returns rows changed.
pub fn rotate_registration_token(
    conn: &mut DbConn,
    client_id: &str,
    current: &str,
    next: &str,
) -> QueryResult<usize> {
    diesel::update(
        clients::clients
            .filter(clients::client_id.eq(client_id))
            .filter(clients::registration_token_hash.eq(current)),
    )
    .set(clients::registration_token_hash.eq(next))
    .execute(conn)
}

/// Records that a token was issued to dynamic client `client_id` at `now`, unless that was
/// recorded after `recorded_after` already (at most one write a day per client). `updated_at`
/// is not touched: a use is no change of the registry.
pub fn record_use(
    conn: &mut DbConn,
    client_id: &str,
    now: NaiveDateTime,
    recorded_after: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(
        clients::clients
            .filter(clients::client_id.eq(client_id))
            .filter(clients::registration.is_not_null())
            .filter(
                clients::last_used_at
                    .is_null()
                    .or(clients::last_used_at.lt(recorded_after)),
            ),
    )
    .set(clients::last_used_at.eq(now))
    .execute(conn)
}

/// Up to `batch` dynamically registered clients not used for a token since `before`: used last
/// before it, or never used and registered before it. Administrators' clients never qualify.
pub fn unused_dynamic_clients(
    conn: &mut DbConn,
    before: NaiveDateTime,
    batch: i64,
) -> QueryResult<Vec<String>> {
    clients::clients
        .filter(clients::registration.is_not_null())
        .filter(
            clients::last_used_at.lt(before).or(clients::last_used_at
                .is_null()
                .and(clients::created_at.lt(before))),
        )
        .select(clients::client_id)
        .limit(batch)
        .load(conn)
}
