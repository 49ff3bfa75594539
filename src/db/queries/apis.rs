//! Queries on `apis` and `api_scopes`.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConn;
use crate::db::models::{ApiRow, ApiScopeRow};
use crate::db::schema::{api_scopes, apis};

/// Inserts an API.
pub fn insert(conn: &mut DbConn, row: &ApiRow) -> QueryResult<usize> {
    diesel::insert_into(apis::table).values(row).execute(conn)
}

/// Inserts scopes.
pub fn insert_scopes(conn: &mut DbConn, rows: &[ApiScopeRow]) -> QueryResult<usize> {
    // One statement per row: SQLite's batch insert through diesel's multi-backend connection is
    // not portable.
    let mut inserted = 0;
    for row in rows {
        inserted += diesel::insert_into(api_scopes::table)
            .values(row)
            .execute(conn)?;
    }
    Ok(inserted)
}

/// Every API, by identifier.
pub fn all(conn: &mut DbConn) -> QueryResult<Vec<ApiRow>> {
    apis::table
        .order(apis::identifier.asc())
        .select(ApiRow::as_select())
        .load(conn)
}

/// Every API scope, by name.
pub fn all_scopes(conn: &mut DbConn) -> QueryResult<Vec<ApiScopeRow>> {
    api_scopes::table
        .order(api_scopes::scope.asc())
        .select(ApiScopeRow::as_select())
        .load(conn)
}

/// One API by id.
pub fn find(conn: &mut DbConn, id: &str) -> QueryResult<Option<ApiRow>> {
    apis::table
        .find(id)
        .select(ApiRow::as_select())
        .first(conn)
        .optional()
}

/// One API by identifier.
pub fn find_by_identifier(conn: &mut DbConn, identifier: &str) -> QueryResult<Option<ApiRow>> {
    apis::table
        .filter(apis::identifier.eq(identifier))
        .select(ApiRow::as_select())
        .first(conn)
        .optional()
}

/// The scopes of one API, by name.
pub fn scopes_of(conn: &mut DbConn, api_id: &str) -> QueryResult<Vec<ApiScopeRow>> {
    api_scopes::table
        .filter(api_scopes::api_id.eq(api_id))
        .order(api_scopes::scope.asc())
        .select(ApiScopeRow::as_select())
        .load(conn)
}

/// The scope rows named `names` (of any API).
pub fn scopes_named(conn: &mut DbConn, names: &[String]) -> QueryResult<Vec<ApiScopeRow>> {
    api_scopes::table
        .filter(api_scopes::scope.eq_any(names))
        .select(ApiScopeRow::as_select())
        .load(conn)
}

/// Renames an API and marks it changed at `now`.
pub fn set_name(conn: &mut DbConn, id: &str, name: &str, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(apis::table.find(id))
        .set((apis::name.eq(name), apis::updated_at.eq(now)))
        .execute(conn)
}

/// Marks an API changed at `now` (its scopes changed).
pub fn touch(conn: &mut DbConn, id: &str, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(apis::table.find(id))
        .set(apis::updated_at.eq(now))
        .execute(conn)
}

/// Deletes the scopes of an API.
pub fn delete_scopes(conn: &mut DbConn, api_id: &str) -> QueryResult<usize> {
    diesel::delete(api_scopes::table.filter(api_scopes::api_id.eq(api_id))).execute(conn)
}

/// Deletes an API (its scopes first); returns the API rows deleted.
pub fn delete(conn: &mut DbConn, id: &str) -> QueryResult<usize> {
    delete_scopes(conn, id)?;
    diesel::delete(apis::table.find(id)).execute(conn)
}

/// `(count, latest change)` of the APIs: changes whenever an API or its scopes change.
pub fn fingerprint(conn: &mut DbConn) -> QueryResult<(i64, Option<NaiveDateTime>)> {
    let count = apis::table.count().get_result(conn)?;
    let latest = apis::table
        .select(apis::updated_at)
        .order(apis::updated_at.desc())
        .first(conn)
        .optional()?;
    Ok((count, latest))
}
