//! Queries on `user_claims`.

use diesel::prelude::*;

use crate::db::DbConn;
use crate::db::models::UserClaimsRow;
use crate::db::schema::user_claims;

/// The claims of a user (`None`: none stored).
pub fn find(conn: &mut DbConn, user_id: &str) -> QueryResult<Option<UserClaimsRow>> {
    user_claims::table
        .find(user_id)
        .select(UserClaimsRow::as_select())
        .first(conn)
        .optional()
}

/// The claims of these users (those that have any).
pub fn of(conn: &mut DbConn, user_ids: &[String]) -> QueryResult<Vec<UserClaimsRow>> {
    user_claims::table
        .filter(user_claims::user_id.eq_any(user_ids))
        .select(UserClaimsRow::as_select())
        .load(conn)
}

/// Replaces the user's claims with `row` (inside the caller's write transaction).
pub fn replace(conn: &mut DbConn, row: &UserClaimsRow) -> QueryResult<usize> {
    diesel::delete(user_claims::table.find(&row.user_id)).execute(conn)?;
    diesel::insert_into(user_claims::table)
        .values(row)
        .execute(conn)
}

/// Removes the user's claims (none set).
pub fn delete(conn: &mut DbConn, user_id: &str) -> QueryResult<usize> {
    diesel::delete(user_claims::table.find(user_id)).execute(conn)
}
