//! Who carries out the schedule. Any number of instances share one database and exactly one of
//! them is the rotator: the holder of a lease row (`rotator_lease`) with an expiry, taken or
//! renewed at every tick in a short statement and taken over by another instance once it lapses
//! (the holder died, or lost the database for longer than the lease). Unlike a session-level
//! advisory lock, the lease lives in a table: it survives PgBouncer's transaction pooling (which
//! hands each transaction whichever server connection is free) and a failover (a synchronous
//! standby has the row; a lock would be gone with the old primary's sessions).
//!
//! Exactly one rotator acts at a time: every transition's transaction first renews the lease on
//! the condition that this instance still holds it, and does nothing if another took it over.
//! Clocks only decide when a lease lapses; two instances whose clocks disagree may both believe
//! they lead for a moment, but the conditional update serialises their transactions on the lease
//! row, and only the holder's commit. Correctness of the keys themselves never rests on the
//! lease alone: every transition is a conditional update under the one-active and one-pending
//! indexes; the lease keeps instances from duplicating work (and keys from being generated
//! twice).

use std::time::Duration;

use super::lifecycle::{self, KeyContext, KeyError};
use super::schedule::Transition;
use crate::db::DbConn;
use crate::db::queries::lease as q;

/// The row of `rotator_lease` this role uses.
const ROLE: &str = "signing_keys";

/// A lease lasts this many ticks: a holder that misses a few ticks (a slow key generation, a
/// brief database outage) keeps the role; one that is gone is replaced within this many.
pub const LEASE_TICKS: u32 = 5;

/// One instance's claim on the rotator role: who it is and how long a lease it takes.
#[derive(Clone, Debug)]
pub struct RotatorLease {
    /// Unique per process (a new UUID at every start).
    holder: String,
    ttl: chrono::Duration,
}

impl RotatorLease {
    /// A claim under a new holder id, taking leases of `ttl`.
    pub fn new(ttl: Duration) -> Self {
        Self {
            holder: uuid::Uuid::new_v4().to_string(),
            ttl: chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX),
        }
    }

    /// This instance's holder id, as stored in `rotator_lease.holder`.
    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// Takes the lease (if free or lapsed) or renews it (if held): one statement, its own
    /// transaction. Returns whether this instance holds it now.
    pub fn take_or_renew(&self, conn: &mut DbConn, ctx: &KeyContext) -> Result<bool, KeyError> {
        let now = ctx.clock.now_naive();
        Ok(q::take_or_renew(
            conn,
            ROLE,
            &self.holder,
            now,
            now + self.ttl,
        )?)
    }

    /// Inside the transaction of a transition, first: renews the lease if this instance still
    /// holds it (locking the row until the transaction ends), else fails with
    /// [`KeyError::NotRotator`] so that nothing is written.
    pub fn confirm(&self, conn: &mut DbConn, ctx: &KeyContext) -> Result<(), KeyError> {
        let until = ctx.clock.now_naive() + self.ttl;
        if q::renew_if_held(conn, ROLE, &self.holder, until)? {
            Ok(())
        } else {
            Err(KeyError::NotRotator)
        }
    }

    /// Gives the lease up now (a clean shutdown), so another instance takes over at its next
    /// tick rather than when the lease lapses.
    pub fn release(&self, conn: &mut DbConn, ctx: &KeyContext) -> Result<bool, KeyError> {
        Ok(q::release(conn, ROLE, &self.holder, ctx.clock.now_naive())?)
    }
}

/// The rotator role of one instance: its claim and whether it held the lease at its last tick.
#[derive(Clone, Debug)]
pub struct Leadership {
    lease: RotatorLease,
    leading: bool,
}

impl Leadership {
    /// The role for an instance ticking every `tick`: it takes leases of [`LEASE_TICKS`] ticks.
    /// Not held until the first tick.
    pub fn new(tick: Duration) -> Self {
        Self::with_lease(RotatorLease::new(tick.saturating_mul(LEASE_TICKS)))
    }

    /// The role for an instance with this claim.
    pub fn with_lease(lease: RotatorLease) -> Self {
        Self {
            lease,
            leading: false,
        }
    }

    /// This instance's claim.
    pub fn lease(&self) -> &RotatorLease {
        &self.lease
    }

    /// Whether this instance held the rotator role at its last tick (it also runs the janitor).
    pub fn is_leading(&self) -> bool {
        self.leading
    }

    /// Forgets the role until the next tick takes or renews it (the database was unreachable).
    pub fn step_down(&mut self) {
        self.leading = false;
    }

    /// One tick on a blocking thread, with any connection (a pooled one will do: nothing is
    /// kept on it): take or renew the lease; if held, carry out every due transition, each
    /// confirming the lease in its own transaction. Returns the transitions made (none when
    /// another instance leads).
    pub fn tick(
        &mut self,
        conn: &mut DbConn,
        ctx: &KeyContext,
    ) -> Result<Vec<Transition>, KeyError> {
        let result = self.lead_and_run(conn, ctx);
        match result {
            Err(KeyError::NotRotator) => {
                tracing::warn!(
                    "another instance took over the key rotator lease; this one stops rotating"
                );
                self.leading = false;
                Ok(Vec::new())
            }
            Err(error) => {
                // The lease may still be ours; the next tick that reaches the database says.
                self.leading = false;
                Err(error)
            }
            Ok(made) => Ok(made),
        }
    }

    fn lead_and_run(
        &mut self,
        conn: &mut DbConn,
        ctx: &KeyContext,
    ) -> Result<Vec<Transition>, KeyError> {
        if !self.lease.take_or_renew(conn, ctx)? {
            if self.leading {
                tracing::warn!("the key rotator lease passed to another instance");
            }
            self.leading = false;
            return Ok(Vec::new());
        }
        if !self.leading {
            tracing::info!(holder = %self.lease.holder, "this instance is now the key rotator");
            self.leading = true;
        }
        lifecycle::run_due(conn, ctx, &self.lease)
    }
}
