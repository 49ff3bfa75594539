//! Queries on refresh-token families and tokens.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConn;
use crate::db::models::{RefreshFamilyRow, RefreshTokenRow, UserRow};
use crate::db::schema::{
    refresh_token_families as families, refresh_tokens as tokens, user_roles, users,
};

/// Inserts a family.
pub fn insert_family(conn: &mut DbConn, row: &RefreshFamilyRow) -> QueryResult<usize> {
    diesel::insert_into(families::table)
        .values(row)
        .execute(conn)
}

/// Inserts a token.
pub fn insert_token(conn: &mut DbConn, row: &RefreshTokenRow) -> QueryResult<usize> {
    diesel::insert_into(tokens::table).values(row).execute(conn)
}

/// A token and its family, by token hash.
pub fn find(
    conn: &mut DbConn,
    token_hash: &str,
) -> QueryResult<Option<(RefreshTokenRow, RefreshFamilyRow)>> {
    tokens::table
        .inner_join(families::table)
        .filter(tokens::token_hash.eq(token_hash))
        .select((RefreshTokenRow::as_select(), RefreshFamilyRow::as_select()))
        .first(conn)
        .optional()
}

/// Marks a token used if it is not yet: the row count (0 or 1) decides a race.
pub fn mark_used(conn: &mut DbConn, token_hash: &str, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(
        tokens::table
            .filter(tokens::token_hash.eq(token_hash))
            .filter(tokens::used_at.is_null()),
    )
    .set(tokens::used_at.eq(now))
    .execute(conn)
}

/// Revokes a family if it is live; returns rows changed.
pub fn revoke_family(
    conn: &mut DbConn,
    family_id: &str,
    reason: &str,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(
        families::table
            .filter(families::id.eq(family_id))
            .filter(families::revoked_at.is_null()),
    )
    .set((
        families::revoked_at.eq(now),
        families::revoked_reason.eq(reason),
    ))
    .execute(conn)
}

/// Revokes every live family of a user; returns rows changed.
pub fn revoke_user_families(
    conn: &mut DbConn,
    user_id: &str,
    reason: &str,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(
        families::table
            .filter(families::user_id.eq(user_id))
            .filter(families::revoked_at.is_null()),
    )
    .set((
        families::revoked_at.eq(now),
        families::revoked_reason.eq(reason),
    ))
    .execute(conn)
}

/// The live (unrevoked, unexpired) families of a user, newest first.
pub fn live_families(
    conn: &mut DbConn,
    user_id: &str,
    now: NaiveDateTime,
) -> QueryResult<Vec<RefreshFamilyRow>> {
    families::table
        .filter(families::user_id.eq(user_id))
        .filter(families::revoked_at.is_null())
        .filter(families::expires_at.gt(now))
        .order(families::created_at.desc())
        .select(RefreshFamilyRow::as_select())
        .load(conn)
}

/// Revokes every live family of a client; returns rows changed.
pub fn revoke_client_families(
    conn: &mut DbConn,
    client_id: &str,
    reason: &str,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(
        families::table
            .filter(families::client_id.eq(client_id))
            .filter(families::revoked_at.is_null()),
    )
    .set((
        families::revoked_at.eq(now),
        families::revoked_reason.eq(reason),
    ))
    .execute(conn)
}

/// Revokes every live family of a browser session; returns rows changed.
pub fn revoke_session_families(
    conn: &mut DbConn,
    sid: &str,
    reason: &str,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(
        families::table
            .filter(families::sid.eq(sid))
            .filter(families::revoked_at.is_null()),
    )
    .set((
        families::revoked_at.eq(now),
        families::revoked_reason.eq(reason),
    ))
    .execute(conn)
}

/// The tokens that replaced `parent_hash`.
pub fn children(conn: &mut DbConn, parent_hash: &str) -> QueryResult<Vec<RefreshTokenRow>> {
    tokens::table
        .filter(tokens::parent_hash.eq(parent_hash))
        .select(RefreshTokenRow::as_select())
        .load(conn)
}

/// Everything a refresh needs to decide, read together.
pub struct Presented {
    /// The presented token.
    pub token: RefreshTokenRow,
    /// Its family.
    pub family: RefreshFamilyRow,
    /// The family's user.
    pub user: UserRow,
    /// The user's roles, sorted.
    pub roles: Vec<String>,
}

/// A token, its family, the family's user and the user's roles, by token hash: the hot path
/// reads everything in one round trip (one row per role, at least one row).
pub fn find_with_user(conn: &mut DbConn, token_hash: &str) -> QueryResult<Option<Presented>> {
    let rows: Vec<(RefreshTokenRow, RefreshFamilyRow, UserRow, Option<String>)> = tokens::table
        .inner_join(families::table.inner_join(users::table.left_join(user_roles::table)))
        .filter(tokens::token_hash.eq(token_hash))
        .select((
            RefreshTokenRow::as_select(),
            RefreshFamilyRow::as_select(),
            UserRow::as_select(),
            user_roles::role.nullable(),
        ))
        .order(user_roles::role.asc())
        .load(conn)?;
    let mut rows = rows.into_iter();
    let Some((token, family, user, first_role)) = rows.next() else {
        return Ok(None);
    };
    let roles = first_role
        .into_iter()
        .chain(rows.filter_map(|(_, _, _, role)| role))
        .collect();
    Ok(Some(Presented {
        token,
        family,
        user,
        roles,
    }))
}

/// What the one-statement rotation returns: the family and its user's roles.
pub struct Rotated {
    /// The family's user.
    pub user_id: String,
    /// The user's roles, sorted.
    pub roles: Vec<String>,
    /// The family.
    pub family_id: String,
    /// Its scope.
    pub scope: String,
    /// Its authentication time (OAuth grants).
    pub auth_time: Option<NaiveDateTime>,
    /// Its browser session (OAuth grants).
    pub sid: Option<String>,
    /// The claims its request asked for individually (OIDC Core §5.5; JSON).
    pub requested_claims: Option<String>,
    /// How the user signed in (RFC 8176 methods, space-separated).
    pub amr: String,
}

/// What a one-statement rotation needs.
pub struct RotateParams<'a> {
    /// Hash of the presented token.
    pub presented_hash: &'a str,
    /// Hash of its successor.
    pub successor_hash: &'a str,
    /// The client presenting it.
    pub client_id: &'a str,
    /// Now (UTC).
    pub now: NaiveDateTime,
    /// Tokens created before this are idle-expired.
    pub issued_after: NaiveDateTime,
    /// `jti` of the access token issued with the successor (recorded with the user).
    pub access_jti: &'a str,
    /// Its expiry.
    pub access_expires_at: NaiveDateTime,
}

/// The hot path of a refresh on Postgres, in one statement and one round trip: the presented
/// token is marked used, its successor inserted and the new access token recorded only if the
/// token is unused and within its idle lifetime, its family live and unexpired and its user
/// enabled. The statement is atomic (autocommit), and of concurrent presentations the row lock
/// on the token lets exactly one match. A token of another client never matches. When nothing
/// matches nothing is written, and the caller takes the general path, which tells reuse, grace,
/// expiry and revocation apart. SQLite (embedded, no round trips) always takes the general
/// path: `Ok(None)`.
pub fn rotate_in_one_statement(
    conn: &mut DbConn,
    params: &RotateParams<'_>,
) -> QueryResult<Option<Rotated>> {
    let DbConn::Postgres(pg) = conn else {
        return Ok(None);
    };
    let rows = RotateStatement {
        now: params.now,
        presented_hash: params.presented_hash.to_owned(),
        issued_after: params.issued_after,
        successor_hash: params.successor_hash.to_owned(),
        client_id: params.client_id.to_owned(),
        access_jti: params.access_jti.to_owned(),
        access_expires_at: params.access_expires_at,
    }
    .load::<RotatedRow>(pg)?;
    let mut rows = rows.into_iter();
    let Some(first) = rows.next() else {
        return Ok(None);
    };
    let roles = first
        .role
        .into_iter()
        .chain(rows.filter_map(|row| row.role))
        .collect();
    Ok(Some(Rotated {
        user_id: first.user_id,
        roles,
        family_id: first.family_id,
        scope: first.scope,
        auth_time: first.auth_time,
        sid: first.sid,
        requested_claims: first.requested_claims,
        amr: first.amr,
    }))
}

#[derive(diesel::QueryableByName)]
struct RotatedRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    user_id: String,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    role: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Text)]
    family_id: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    scope: String,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Timestamp>)]
    auth_time: Option<NaiveDateTime>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    sid: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    requested_claims: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Text)]
    amr: String,
}

/// Data-modifying CTEs are Postgres-only and beyond diesel's DSL. A hand-written query type
/// (unlike `sql_query`) has a static query id and fixed SQL, so diesel keeps it as a named
/// prepared statement: one round trip per call, no re-planning.
struct RotateStatement {
    now: NaiveDateTime,
    presented_hash: String,
    issued_after: NaiveDateTime,
    successor_hash: String,
    client_id: String,
    access_jti: String,
    access_expires_at: NaiveDateTime,
}

/// The statement after its parameter row `p` (bound in `walk_ast`).
const ROTATE_SQL: &str = "
    , used AS (
        UPDATE refresh_tokens AS t SET used_at = p.now
        FROM p, refresh_token_families AS f, users AS u
        WHERE t.token_hash = p.presented AND t.used_at IS NULL
          AND t.created_at > p.issued_after
          AND f.id = t.family_id AND f.revoked_at IS NULL AND f.expires_at > p.now
          AND f.client_id = p.client_id
          AND u.id = f.user_id AND u.disabled_at IS NULL
        RETURNING t.family_id, f.user_id, f.scope, f.auth_time, f.sid, f.requested_claims, f.amr
    ), successor AS (
        INSERT INTO refresh_tokens (token_hash, family_id, parent_hash, created_at)
        SELECT p.successor, used.family_id, p.presented, p.now FROM p, used
        RETURNING family_id
    ), access AS (
        INSERT INTO access_tokens (jti, family_id, client_id, user_id, expires_at)
        SELECT p.access_jti, used.family_id, p.client_id, used.user_id, p.access_expires
        FROM p, used
        RETURNING family_id
    )
    SELECT used.user_id, r.role, used.family_id, used.scope, used.auth_time, used.sid,
        used.requested_claims, used.amr
    FROM used JOIN successor ON successor.family_id = used.family_id
    JOIN access ON access.family_id = used.family_id
    LEFT JOIN user_roles AS r ON r.user_id = used.user_id
    ORDER BY r.role";

impl diesel::query_builder::QueryId for RotateStatement {
    type QueryId = Self;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl diesel::query_builder::Query for RotateStatement {
    type SqlType = diesel::sql_types::Untyped;
}

impl diesel::query_builder::QueryFragment<diesel::pg::Pg> for RotateStatement {
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, diesel::pg::Pg>,
    ) -> QueryResult<()> {
        use diesel::sql_types::{Text, Timestamp};
        // Each parameter is bound once, into a one-row CTE the statement reads.
        out.push_sql(
            "WITH p (now, presented, issued_after, successor, client_id, access_jti, \
             access_expires) AS (SELECT ",
        );
        out.push_bind_param::<Timestamp, _>(&self.now)?;
        out.push_sql("::timestamp, ");
        out.push_bind_param::<Text, _>(&self.presented_hash)?;
        out.push_sql("::text, ");
        out.push_bind_param::<Timestamp, _>(&self.issued_after)?;
        out.push_sql("::timestamp, ");
        out.push_bind_param::<Text, _>(&self.successor_hash)?;
        out.push_sql("::text, ");
        out.push_bind_param::<Text, _>(&self.client_id)?;
        out.push_sql("::text, ");
        out.push_bind_param::<Text, _>(&self.access_jti)?;
        out.push_sql("::text, ");
        out.push_bind_param::<Timestamp, _>(&self.access_expires_at)?;
        out.push_sql("::timestamp)");
        out.push_sql(ROTATE_SQL);
        Ok(())
    }
}

impl RunQueryDsl<diesel::PgConnection> for RotateStatement {}
