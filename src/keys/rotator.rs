//! Who carries out the schedule. On Postgres, any number of instances share one database and
//! exactly one of them is the rotator: the holder of a session-level advisory lock on its own
//! connection. If that instance dies or loses its connection the lock is released and another
//! instance takes over at its next tick. SQLite is single-node: its one instance is the rotator.
//! Correctness never rests on the lock alone: every transition is a conditional update under the
//! one-active and one-pending indexes; the lock only keeps instances from duplicating work.

use diesel::RunQueryDsl;

use super::lifecycle::{self, KeyContext, KeyError};
use super::schedule::Transition;
use crate::db::{ConnectionManager, DatabaseUrl, DbConn, DbError};

/// Advisory lock id of the rotator ("portcull" in ASCII, as an i64).
const ROTATOR_LOCK: i64 = 0x706f_7274_6375_6c6c;

/// The rotator role of one instance on Postgres.
pub struct Leadership {
    manager: ConnectionManager,
    /// This instance's own connection: it holds the lock once acquired, and is kept between
    /// attempts while another instance leads.
    conn: Option<DbConn>,
    leading: bool,
}

impl Leadership {
    /// The role for an instance on `url`, not yet acquired; `None` on SQLite, where the one
    /// instance always carries out the schedule (through its pool).
    pub fn for_database(url: &DatabaseUrl) -> Option<Self> {
        matches!(url, DatabaseUrl::Postgres(_)).then(|| Self {
            manager: ConnectionManager::new(url.clone()),
            conn: None,
            leading: false,
        })
    }

    /// Whether this instance holds the rotator role (it also runs the janitor).
    pub fn is_leading(&self) -> bool {
        self.leading
    }

    /// One tick on a blocking thread: if this instance is (or becomes) the rotator, carry out
    /// every due transition. Returns the transitions made (none when another instance leads).
    pub fn tick(&mut self, ctx: &KeyContext) -> Result<Vec<Transition>, KeyError> {
        let result = self.lead_and_run(ctx);
        if let Err(KeyError::Db(_)) = &result {
            // A broken connection has lost the lock (if it held it); another instance may take
            // over, and this one reconnects at its next tick.
            if self.leading {
                tracing::warn!("the key rotator lost its database connection; giving up the role");
            }
            self.conn = None;
            self.leading = false;
        }
        result
    }

    fn lead_and_run(&mut self, ctx: &KeyContext) -> Result<Vec<Transition>, KeyError> {
        let conn = match &mut self.conn {
            Some(conn) => conn,
            empty => empty.insert(
                self.manager
                    .establish()
                    .map_err(|e| KeyError::Db(DbError::Connect(e)))?,
            ),
        };
        if !self.leading {
            if !try_lock(conn)? {
                return Ok(Vec::new());
            }
            tracing::info!("this instance is now the key rotator");
            self.leading = true;
        }
        lifecycle::run_due(conn, ctx)
    }
}

fn try_lock(conn: &mut DbConn) -> Result<bool, KeyError> {
    #[derive(diesel::QueryableByName)]
    struct Locked {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        locked: bool,
    }
    let DbConn::Postgres(pg) = conn else {
        return Ok(true);
    };
    let row: Locked = diesel::sql_query("SELECT pg_try_advisory_lock($1) AS locked")
        .bind::<diesel::sql_types::BigInt, _>(ROTATOR_LOCK)
        .get_result(pg)
        .map_err(|e| KeyError::Db(DbError::Query(e)))?;
    Ok(row.locked)
}
