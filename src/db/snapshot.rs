//! An in-memory copy of tables that the hot paths read without a database round trip (the
//! clients, the APIs), reloaded when the tables change and installed by compare-and-swap: a
//! load is installed only if the copy in place is still the one seen when its read began, so a
//! periodic refresh that read the tables before a change never puts its older copy back over the
//! reload that followed the change.

use std::sync::Arc;

use arc_swap::{ArcSwap, Guard};

use super::{Db, DbConn, DbError};

/// How often [`Snapshot::reload`] reads the tables when other loads keep overtaking it; the last
/// read is installed regardless (it was read after the change: at worst older than a change made
/// meanwhile, which the next refresh installs).
const RELOAD_ATTEMPTS: usize = 3;

/// The copy of some tables as a `T`, swapped whole.
pub struct Snapshot<T> {
    loaded: ArcSwap<T>,
}

impl<T: Send + Sync + 'static> Snapshot<T> {
    /// A snapshot holding `value`.
    pub fn new(value: T) -> Self {
        Self {
            loaded: ArcSwap::from_pointee(value),
        }
    }

    /// The copy in place (cheap: an `Arc`).
    pub fn current(&self) -> Arc<T> {
        self.loaded.load_full()
    }

    /// The copy in place, borrowed for a short read (cheaper than [`Self::current`]).
    pub fn peek(&self) -> Guard<Arc<T>> {
        self.loaded.load()
    }

    /// Reads the tables with `load` and installs the result at once (after a change made by this
    /// process), reading again when another load was installed meanwhile.
    ///
    /// # Errors
    /// `load`'s error or a database failure; the copy in place stays.
    pub async fn reload<E, F>(&self, db: &Db, load: F) -> Result<(), E>
    where
        F: Fn(&mut DbConn) -> Result<T, E> + Clone + Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        for attempt in 1..=RELOAD_ATTEMPTS {
            let observed = self.loaded.load_full();
            let loaded = db.run(load.clone()).await?;
            if attempt == RELOAD_ATTEMPTS {
                self.loaded.store(Arc::new(loaded));
            } else if self.install(&observed, loaded) {
                break;
            }
        }
        Ok(())
    }

    /// Runs `read_if_changed(copy in place)` on a blocking thread (it returns `None` when the
    /// tables did not change, typically by comparing a fingerprint) and installs what it read
    /// unless another load overtook it. Returns the installed copy, if any.
    ///
    /// # Errors
    /// The read's error or a database failure; the copy in place stays.
    pub async fn refresh<E, F>(
        &self,
        db: &Db,
        read_if_changed: impl FnOnce(&T) -> F,
    ) -> Result<Option<Arc<T>>, E>
    where
        F: FnOnce(&mut DbConn) -> Result<Option<T>, E> + Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        let observed = self.loaded.load_full();
        let read = read_if_changed(&observed);
        let Some(loaded) = db.run(read).await? else {
            return Ok(None);
        };
        let loaded = Arc::new(loaded);
        Ok(self
            .install_arc(&observed, Arc::clone(&loaded))
            .then_some(loaded))
    }

    /// Installs `loaded` if the copy in place is still `observed`.
    pub(crate) fn install(&self, observed: &Arc<T>, loaded: T) -> bool {
        self.install_arc(observed, Arc::new(loaded))
    }

    fn install_arc(&self, observed: &Arc<T>, loaded: Arc<T>) -> bool {
        let previous = self.loaded.compare_and_swap(observed, loaded);
        Arc::ptr_eq(&previous, observed)
    }
}

#[cfg(test)]
mod tests {
    use super::Snapshot;

    #[test]
    fn a_load_overtaken_by_another_is_not_installed() {
        let snapshot = Snapshot::new(0);
        let observed_by_tick = snapshot.current();
        let observed_by_reload = snapshot.current();
        assert!(snapshot.install(&observed_by_reload, 2));
        assert!(!snapshot.install(&observed_by_tick, 1));
        assert_eq!(*snapshot.current(), 2);
    }
}
