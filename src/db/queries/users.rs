//! Queries on `users` and `user_roles`.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConn;
use crate::db::models::UserRow;
use crate::db::schema::{user_roles, users};

/// Inserts a user.
pub fn insert(conn: &mut DbConn, row: &UserRow) -> QueryResult<usize> {
    diesel::insert_into(users::table).values(row).execute(conn)
}

/// True when the normalised username, or any of the email's keys, is taken.
pub fn exists(
    conn: &mut DbConn,
    username_normalized: &str,
    email_keys: &[String],
) -> QueryResult<bool> {
    let count: i64 = users::table
        .filter(
            users::username_normalized
                .eq(username_normalized)
                .or(users::email_normalized.eq_any(email_keys)),
        )
        .count()
        .get_result(conn)?;
    Ok(count > 0)
}

/// A user by id.
pub fn find_by_id(conn: &mut DbConn, id: &str) -> QueryResult<Option<UserRow>> {
    users::table
        .find(id)
        .select(UserRow::as_select())
        .first(conn)
        .optional()
}

/// A user by normalised username or email key (what a login form names): `keys` in order of
/// preference (`accounts::names::login_keys`), the user matching the earliest one.
pub fn find_by_login(conn: &mut DbConn, keys: &[String]) -> QueryResult<Option<UserRow>> {
    let rows: Vec<UserRow> = users::table
        .filter(
            users::username_normalized
                .eq_any(keys)
                .or(users::email_normalized.eq_any(keys)),
        )
        .select(UserRow::as_select())
        .load(conn)?;
    let rank = |row: &UserRow| {
        keys.iter()
            .position(|key| *key == row.username_normalized || *key == row.email_normalized)
            .unwrap_or(usize::MAX)
    };
    Ok(rows.into_iter().min_by_key(rank))
}

/// Every user, oldest first.
pub fn list(conn: &mut DbConn) -> QueryResult<Vec<UserRow>> {
    users::table
        .order((users::created_at.asc(), users::id.asc()))
        .select(UserRow::as_select())
        .load(conn)
}

/// `(user_id, role)` for the given users, sorted by role.
pub fn roles_of(conn: &mut DbConn, user_ids: &[String]) -> QueryResult<Vec<(String, String)>> {
    user_roles::table
        .filter(user_roles::user_id.eq_any(user_ids))
        .order((user_roles::user_id.asc(), user_roles::role.asc()))
        .select((user_roles::user_id, user_roles::role))
        .load(conn)
}

/// Whether the user has the role.
pub fn has_role(conn: &mut DbConn, user_id: &str, role: &str) -> QueryResult<bool> {
    let count: i64 = user_roles::table
        .filter(user_roles::user_id.eq(user_id))
        .filter(user_roles::role.eq(role))
        .count()
        .get_result(conn)?;
    Ok(count > 0)
}

/// Grants a role (the caller checks it is not held yet, in the same transaction).
pub fn add_role(conn: &mut DbConn, user_id: &str, role: &str) -> QueryResult<usize> {
    diesel::insert_into(user_roles::table)
        .values((user_roles::user_id.eq(user_id), user_roles::role.eq(role)))
        .execute(conn)
}

/// Withdraws a role; returns the number of rows removed.
pub fn remove_role(conn: &mut DbConn, user_id: &str, role: &str) -> QueryResult<usize> {
    diesel::delete(
        user_roles::table
            .filter(user_roles::user_id.eq(user_id))
            .filter(user_roles::role.eq(role)),
    )
    .execute(conn)
}

/// Replaces the password hash.
pub fn set_password(
    conn: &mut DbConn,
    user_id: &str,
    hash: &str,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(users::table.find(user_id))
        .set((
            users::password_hash.eq(hash),
            users::password_changed_at.eq(now),
            users::updated_at.eq(now),
        ))
        .execute(conn)
}

/// Disables an enabled user; returns the number of rows changed (0 when already disabled).
pub fn disable(conn: &mut DbConn, user_id: &str, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(
        users::table
            .find(user_id)
            .filter(users::disabled_at.is_null()),
    )
    .set((users::disabled_at.eq(now), users::updated_at.eq(now)))
    .execute(conn)
}

/// Marks the user changed (after a role change).
pub fn touch(conn: &mut DbConn, user_id: &str, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(users::table.find(user_id))
        .set(users::updated_at.eq(now))
        .execute(conn)
}

/// Holders of `role` whose account is enabled.
pub fn count_enabled_with_role(conn: &mut DbConn, role: &str) -> QueryResult<i64> {
    user_roles::table
        .inner_join(users::table)
        .filter(user_roles::role.eq(role))
        .filter(users::disabled_at.is_null())
        .count()
        .get_result(conn)
}

/// Serialises changes to the holders of `role` for the rest of the transaction: on PostgreSQL
/// the role's rows are locked (`FOR UPDATE`), so two administrators demoting each other at once
/// are decided one after the other; SQLite's write transactions are serial already.
pub fn lock_role_holders(conn: &mut DbConn, role: &str) -> QueryResult<()> {
    if let DbConn::Postgres(pg) = conn {
        user_roles::table
            .filter(user_roles::role.eq(role))
            .select(user_roles::user_id)
            .for_update()
            .load::<String>(pg)?;
    }
    Ok(())
}

/// Replaces the email address and its uniqueness key.
pub fn set_email(
    conn: &mut DbConn,
    user_id: &str,
    email: &str,
    email_normalized: &str,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(users::table.find(user_id))
        .set((
            users::email.eq(email),
            users::email_normalized.eq(email_normalized),
            users::updated_at.eq(now),
        ))
        .execute(conn)
}

/// Whether another user than `user_id` has one of these email keys (or usernames).
pub fn login_taken_by_other(
    conn: &mut DbConn,
    user_id: &str,
    keys: &[String],
) -> QueryResult<bool> {
    let count: i64 = users::table
        .filter(users::id.ne(user_id))
        .filter(
            users::email_normalized
                .eq_any(keys)
                .or(users::username_normalized.eq_any(keys)),
        )
        .count()
        .get_result(conn)?;
    Ok(count > 0)
}
