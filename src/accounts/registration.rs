//! The registration budget of a client network (DOS-07, DOS-12): `register_max_per_ip`
//! registrations per throttling window, counted in the shared throttle table so the budget holds
//! across instances, and counted before a registration costs a password hash.

use std::net::IpAddr;

use chrono::NaiveDateTime;

use crate::accounts::AccountSettings;
use crate::accounts::network::network_of;
use crate::db::queries::throttle;
use crate::db::{Db, DbError, write_transaction};

/// Counts one registration from `ip` at `now` against its network's budget (an IPv6 /64 is one
/// client, DOS-08). Every counted attempt stays counted, successful or not: a budget of
/// accounts, not of failures. Callers count only requests that would cost a hash.
///
/// Returns `Some(seconds)` to wait (the budget is spent; `Retry-After`), `None` to go on.
///
/// # Errors
/// A database failure (nothing counted).
pub async fn spend(
    db: &Db,
    settings: &AccountSettings,
    ip: IpAddr,
    now: NaiveDateTime,
) -> Result<Option<u64>, DbError> {
    let key = format!("register:ip:{}", network_of(ip));
    let max = settings.register_max_per_ip;
    let window = chrono::Duration::from_std(settings.login_window).unwrap_or(chrono::Duration::MAX);
    db.run(move |conn| {
        write_transaction(conn, |conn| {
            Ok::<_, DbError>(throttle::spend(conn, &key, max, window, now)?)
        })
    })
    .await
}
