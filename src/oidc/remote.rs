//! Documents that clients publish at URLs — their key sets (`jwks_uri`), their client ID
//! metadata documents — fetched through the SSRF-safe fetcher, parsed once, and cached per URL
//! for the lifetime their `Cache-Control` gives (within bounds), revalidated with their
//! `ETag`. One fetch per URL at a time (single flight); a failed fetch or an invalid document
//! is never cached.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::verify::FetchError;
use crate::verify::fetch::{Fetched, SafeFetcher, max_age};

/// How long a fetched document is kept: its `max-age` (zero for `no-store`/`no-cache`), or
/// `default` without one, clamped to `min..=max`.
#[derive(Clone, Copy, Debug)]
pub struct CacheBounds {
    /// Shortest lifetime.
    pub min: Duration,
    /// Lifetime without a `Cache-Control` lifetime.
    pub default: Duration,
    /// Longest lifetime.
    pub max: Duration,
    /// At most one early refetch (a document that lacks what a request needs: an unknown
    /// `kid`) per this interval and URL.
    pub refetch_cooldown: Duration,
}

/// The most URLs cached at once; beyond it, entries that have expired (then all idle ones)
/// are dropped.
pub const MAX_CACHED_URLS: usize = 1024;

struct Cached<T> {
    value: Arc<T>,
    etag: Option<String>,
    fresh_until: Instant,
}

struct Slot<T> {
    cached: Option<Cached<T>>,
    last_early_refetch: Option<Instant>,
}

/// A cache of documents of type `T` by URL.
pub struct RemoteCache<T> {
    fetcher: Arc<SafeFetcher>,
    accept: &'static str,
    limit: usize,
    bounds: CacheBounds,
    slots: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Slot<T>>>>>,
}

impl<T: Send + Sync> RemoteCache<T> {
    /// A cache fetching with `fetcher`, asking for `accept`, refusing bodies over `limit` bytes.
    pub fn new(
        fetcher: Arc<SafeFetcher>,
        accept: &'static str,
        limit: usize,
        bounds: CacheBounds,
    ) -> Self {
        Self {
            fetcher,
            accept,
            limit,
            bounds,
            slots: Mutex::new(HashMap::new()),
        }
    }

    /// The fetcher (its loopback allowance decides what URLs may be named).
    pub fn fetcher(&self) -> &SafeFetcher {
        &self.fetcher
    }

    fn slot(&self, url: &str) -> Arc<tokio::sync::Mutex<Slot<T>>> {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(slot) = slots.get(url) {
            return Arc::clone(slot);
        }
        if slots.len() >= MAX_CACHED_URLS {
            let now = Instant::now();
            slots.retain(|_, slot| {
                slot.try_lock().map_or(true, |s| {
                    s.cached.as_ref().is_some_and(|c| c.fresh_until > now)
                })
            });
            if slots.len() >= MAX_CACHED_URLS {
                slots.retain(|_, slot| slot.try_lock().is_err());
            }
        }
        let slot = Arc::new(tokio::sync::Mutex::new(Slot {
            cached: None,
            last_early_refetch: None,
        }));
        slots.insert(url.to_owned(), Arc::clone(&slot));
        slot
    }

    /// The document at `url`: the cached one while it is fresh and `suffices` for the request,
    /// else fetched (revalidated with its `ETag` when one is cached) and read by `parse`. A
    /// fresh document that does not suffice is refetched at most once per
    /// [`CacheBounds::refetch_cooldown`]; within it, the cached one is returned. Errors: the
    /// fetch's ([`SafeFetcher::get`]), or [`FetchError::Document`] with `parse`'s reason.
    pub async fn get(
        &self,
        url: &str,
        suffices: impl FnOnce(&T) -> bool,
        parse: impl FnOnce(&[u8]) -> Result<T, String>,
    ) -> Result<Arc<T>, FetchError> {
        let slot = self.slot(url);
        let mut slot = slot.lock().await;
        let now = Instant::now();
        if let Some(cached) = slot.cached.as_ref().filter(|c| now < c.fresh_until) {
            if suffices(&cached.value) {
                return Ok(Arc::clone(&cached.value));
            }
            let cooling = slot
                .last_early_refetch
                .is_some_and(|at| now.saturating_duration_since(at) < self.bounds.refetch_cooldown);
            if cooling {
                return Ok(Arc::clone(&cached.value));
            }
            slot.last_early_refetch = Some(now);
        }
        let etag = slot.cached.as_ref().and_then(|c| c.etag.clone());
        let fetched = self
            .fetcher
            .get(url, self.accept, self.limit, etag.as_deref())
            .await;
        let now = Instant::now();
        match fetched {
            Ok(Fetched::NotModified { cache_control }) => {
                let ttl = self.ttl(cache_control.as_deref());
                match slot.cached.as_mut() {
                    Some(cached) => {
                        cached.fresh_until = now + ttl;
                        Ok(Arc::clone(&cached.value))
                    }
                    None => Err(FetchError::Http {
                        url: url.to_owned(),
                        reason: "304 without a cached document".into(),
                    }),
                }
            }
            Ok(Fetched::Document(document)) => {
                let value =
                    Arc::new(
                        parse(&document.body).map_err(|reason| FetchError::Document {
                            url: url.to_owned(),
                            reason,
                        })?,
                    );
                slot.cached = Some(Cached {
                    value: Arc::clone(&value),
                    etag: document.etag,
                    fresh_until: now + self.ttl(document.cache_control.as_deref()),
                });
                Ok(value)
            }
            // Errors are not cached: the next request fetches again (a fresh document that is
            // still cached keeps serving the requests it suffices for).
            Err(error) => Err(error),
        }
    }

    fn ttl(&self, cache_control: Option<&str>) -> Duration {
        max_age(cache_control)
            .unwrap_or(self.bounds.default)
            .clamp(self.bounds.min, self.bounds.max)
    }
}
