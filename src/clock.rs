//! The time source of every service: the system clock in production; tests move a clock
//! forward instead of sleeping.
//!
//! Services read `Clock::now` (or take a `now` argument from their caller) and never call
//! `Utc::now()` themselves, so expiry, rotation and janitor behaviour can be tested by
//! advancing time. The advancing clock exists only with the `test-clock` cargo feature, which
//! only the test suite enables (a dev-dependency of the package on itself): a release build of
//! `portcullis` has no way to shift its time.

use chrono::{DateTime, NaiveDateTime, Utc};

/// A cheap, cloneable handle on the current time (UTC).
#[derive(Clone, Debug, Default)]
pub struct Clock {
    #[cfg(feature = "test-clock")]
    offset: std::sync::Arc<std::sync::atomic::AtomicI64>,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Self::default()
    }

    /// The current instant.
    #[cfg(not(feature = "test-clock"))]
    pub fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    /// The current instant: the system time plus however far the tests moved this clock.
    #[cfg(feature = "test-clock")]
    pub fn now(&self) -> DateTime<Utc> {
        let offset = self.offset.load(std::sync::atomic::Ordering::Relaxed);
        Utc::now() + chrono::Duration::milliseconds(offset)
    }

    /// The current instant without a zone, as the database columns store it.
    pub fn now_naive(&self) -> NaiveDateTime {
        self.now().naive_utc()
    }

    /// Moves this clock (and every clone of it) forward by `by`; time keeps running from there.
    /// Test builds only.
    #[cfg(feature = "test-clock")]
    pub fn advance(&self, by: std::time::Duration) {
        let millis = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.offset
            .fetch_add(millis, std::sync::atomic::Ordering::Relaxed);
    }
}

#[cfg(all(test, feature = "test-clock"))]
mod tests {
    use super::*;

    #[test]
    fn advancing_moves_every_clone() {
        let clock = Clock::system();
        let clone = clock.clone();
        let before = clone.now();
        clock.advance(std::time::Duration::from_secs(3600));
        assert!(clone.now() - before >= chrono::Duration::seconds(3600));
    }
}
