//! Queries on passkeys (rows of `second_factors` with kind `passkey`) and on WebAuthn ceremonies
//! in progress (`webauthn_ceremonies`). A ceremony is taken once by a conditional update; a
//! passkey's counter only moves forward by a conditional update.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConn;
use crate::db::models::{CeremonyRow, PasskeyRow};
use crate::db::schema::{second_factors as factors, webauthn_ceremonies as ceremonies};

/// The `kind` of a passkey.
pub const PASSKEY: &str = "passkey";

/// The user's passkeys, oldest first.
pub fn passkeys_of(conn: &mut DbConn, user_id: &str) -> QueryResult<Vec<PasskeyRow>> {
    factors::table
        .filter(factors::user_id.eq(user_id))
        .filter(factors::kind.eq(PASSKEY))
        .order((factors::created_at.asc(), factors::id.asc()))
        .select(PasskeyRow::as_select())
        .load(conn)
}

/// The passkey of credential id `credential_id` (base64url), whoever it belongs to.
pub fn passkey_by_credential(
    conn: &mut DbConn,
    credential_id: &str,
) -> QueryResult<Option<PasskeyRow>> {
    factors::table
        .filter(factors::kind.eq(PASSKEY))
        .filter(factors::credential_id.eq(credential_id))
        .select(PasskeyRow::as_select())
        .first(conn)
        .optional()
}

/// A new passkey, usable at once (`confirmed_at` = `created_at`).
pub struct NewPasskey<'a> {
    /// UUID.
    pub id: &'a str,
    /// The user.
    pub user_id: &'a str,
    /// The name the user gave it.
    pub name: &'a str,
    /// The credential id, base64url.
    pub credential_id: &'a str,
    /// serde_json of webauthn-rs's `Passkey`.
    pub passkey: &'a str,
    /// The signature counter at registration.
    pub sign_count: i64,
    /// BE flag.
    pub backup_eligible: bool,
    /// BS flag.
    pub backup_state: bool,
    /// Registered.
    pub now: NaiveDateTime,
}

/// Inserts a passkey (the unique index refuses a credential id registered before).
pub fn insert_passkey(conn: &mut DbConn, new: &NewPasskey<'_>) -> QueryResult<usize> {
    diesel::insert_into(factors::table)
        .values((
            factors::id.eq(new.id),
            factors::user_id.eq(new.user_id),
            factors::kind.eq(PASSKEY),
            factors::name.eq(new.name),
            factors::created_at.eq(new.now),
            factors::confirmed_at.eq(new.now),
            factors::credential_id.eq(new.credential_id),
            factors::passkey.eq(new.passkey),
            factors::sign_count.eq(new.sign_count),
            factors::backup_eligible.eq(i32::from(new.backup_eligible)),
            factors::backup_state.eq(i32::from(new.backup_state)),
        ))
        .execute(conn)
}

/// Records a use of passkey `id`: its updated credential, counter and flags. Conditional on the
/// stored counter being at most `sign_count`, so an assertion checked against an older read
/// never moves the counter back: 1, or 0 when it would have (or the passkey is gone).
pub fn record_use(
    conn: &mut DbConn,
    id: &str,
    passkey: &str,
    sign_count: i64,
    backup_eligible: bool,
    backup_state: bool,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(
        factors::table
            .filter(factors::id.eq(id))
            .filter(factors::kind.eq(PASSKEY))
            .filter(
                factors::sign_count
                    .is_null()
                    .or(factors::sign_count.le(sign_count)),
            ),
    )
    .set((
        factors::passkey.eq(passkey),
        factors::sign_count.eq(sign_count),
        factors::backup_eligible.eq(i32::from(backup_eligible)),
        factors::backup_state.eq(i32::from(backup_state)),
        factors::last_used_at.eq(now),
    ))
    .execute(conn)
}

/// Deletes the user's passkey `id`: 1, or 0 when the user has no such passkey.
pub fn delete_passkey(conn: &mut DbConn, user_id: &str, id: &str) -> QueryResult<usize> {
    diesel::delete(
        factors::table
            .filter(factors::id.eq(id))
            .filter(factors::user_id.eq(user_id))
            .filter(factors::kind.eq(PASSKEY)),
    )
    .execute(conn)
}

/// Inserts a ceremony.
pub fn insert_ceremony(conn: &mut DbConn, row: &CeremonyRow) -> QueryResult<usize> {
    diesel::insert_into(ceremonies::table)
        .values(row)
        .execute(conn)
}

/// Deletes the unfinished ceremonies of `purpose` for `user_id` (registration, second factor)
/// or for pending request `request_id` (sign-ins): a new one replaces them, so each has at most
/// one live ceremony.
pub fn delete_unfinished(
    conn: &mut DbConn,
    purpose: &str,
    user_id: Option<&str>,
    request_id: Option<&str>,
) -> QueryResult<usize> {
    let unfinished = ceremonies::table
        .filter(ceremonies::purpose.eq(purpose))
        .filter(ceremonies::used_at.is_null());
    match (user_id, request_id) {
        (_, Some(request_id)) => {
            diesel::delete(unfinished.filter(ceremonies::request_id.eq(request_id))).execute(conn)
        }
        (Some(user_id), None) => {
            diesel::delete(unfinished.filter(ceremonies::user_id.eq(user_id))).execute(conn)
        }
        (None, None) => Ok(0),
    }
}

/// Takes the live ceremony of hash `id_hash` and `purpose` once: the row, marked used (whatever
/// the outcome of what follows: a challenge is answered once, WebAuthn §13.4.3); `None` when it
/// is unknown, used or expired.
pub fn take_ceremony(
    conn: &mut DbConn,
    id_hash: &str,
    purpose: &str,
    now: NaiveDateTime,
) -> QueryResult<Option<CeremonyRow>> {
    let live = || {
        ceremonies::table
            .filter(ceremonies::id_hash.eq(id_hash))
            .filter(ceremonies::purpose.eq(purpose))
            .filter(ceremonies::used_at.is_null())
            .filter(ceremonies::expires_at.gt(now))
    };
    let Some(row) = live()
        .select(CeremonyRow::as_select())
        .first(conn)
        .optional()?
    else {
        return Ok(None);
    };
    let taken = diesel::update(live())
        .set(ceremonies::used_at.eq(now))
        .execute(conn)?;
    Ok((taken == 1).then_some(row))
}

/// Deletes ceremonies that expired before `before`; returns rows deleted.
pub fn purge_ceremonies(conn: &mut DbConn, before: NaiveDateTime) -> QueryResult<usize> {
    diesel::delete(ceremonies::table.filter(ceremonies::expires_at.lt(before))).execute(conn)
}
