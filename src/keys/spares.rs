//! Spare keys: one private key per algorithm generated ahead of need, in memory only, so that an
//! admin rotation or an emergency revocation takes a ready key instead of generating one inside
//! the request. A background task refills a slot as soon as it is taken; until then a request
//! that needs that algorithm is told to retry shortly.
//!
//! Spares are never written anywhere: a spare becomes a stored (sealed) key only inside the
//! transaction that publishes it, and is wiped from memory when dropped.

use std::sync::Mutex;

use serde::Serialize;
use tokio::sync::Notify;

use super::error::KeyError;
use super::generate::{KeyMaterial, generate_keys};
use super::{RsaKeySize, SigningAlg};

/// A spare as shown to administrators: its public identity only.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SpareInfo {
    /// Algorithm.
    pub alg: SigningAlg,
    /// The kid it will have when published.
    pub kid: String,
}

/// The spare slots, one per algorithm.
pub struct Spares {
    slots: Mutex<Vec<KeyMaterial>>,
    rsa_size: RsaKeySize,
    taken: Notify,
}

impl Spares {
    /// Empty slots; `fill` or the refill task generates their keys.
    pub fn new(rsa_size: RsaKeySize) -> Self {
        Self {
            slots: Mutex::new(Vec::new()),
            rsa_size,
            taken: Notify::new(),
        }
    }

    fn slots(&self) -> std::sync::MutexGuard<'_, Vec<KeyMaterial>> {
        // A panic while holding the lock cannot leave the Vec inconsistent.
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes the spares of every algorithm in `algs`, or none of them: `NoSpare` names the first
    /// algorithm whose spare is not ready yet.
    pub fn take(&self, algs: &[SigningAlg]) -> Result<Vec<KeyMaterial>, KeyError> {
        let mut slots = self.slots();
        if let Some(missing) = algs
            .iter()
            .find(|alg| !slots.iter().any(|m| m.alg == **alg))
        {
            return Err(KeyError::NoSpare(*missing));
        }
        let (taken, kept) = std::mem::take(&mut *slots)
            .into_iter()
            .partition(|m| algs.contains(&m.alg));
        *slots = kept;
        drop(slots);
        if !algs.is_empty() {
            self.taken.notify_one();
        }
        Ok(taken)
    }

    /// The algorithms of `algs` without a spare.
    fn missing(&self, algs: &[SigningAlg]) -> Vec<SigningAlg> {
        let slots = self.slots();
        algs.iter()
            .copied()
            .filter(|alg| !slots.iter().any(|m| m.alg == *alg))
            .collect()
    }

    /// Generates (on a blocking thread) the spares of `algs` that are missing.
    pub async fn fill(&self, algs: &[SigningAlg]) -> Result<(), KeyError> {
        let missing = self.missing(algs);
        if missing.is_empty() {
            return Ok(());
        }
        let made = generate_keys(missing, self.rsa_size).await?;
        let mut slots = self.slots();
        for material in made {
            if !slots.iter().any(|m| m.alg == material.alg) {
                slots.push(material);
            }
        }
        Ok(())
    }

    /// The spares ready now (public identity only).
    pub fn ready(&self) -> Vec<SpareInfo> {
        let mut ready: Vec<SpareInfo> = self
            .slots()
            .iter()
            .map(|m| SpareInfo {
                alg: m.alg,
                kid: m.jwk.thumbprint(),
            })
            .collect();
        ready.sort_by_key(|spare| spare.alg);
        ready
    }

    /// Keeps every algorithm's spare ready for as long as it runs: fills the slots, then waits
    /// until one is taken. A failed generation is retried after `retry`.
    pub async fn keep_filled(&self, retry: std::time::Duration) {
        loop {
            match self.fill(&SigningAlg::ALL).await {
                Ok(()) => self.taken.notified().await,
                Err(error) => {
                    tracing::warn!(%error, "generating spare signing keys failed; retrying");
                    tokio::time::sleep(retry).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn take_is_all_or_nothing_and_fill_only_adds_what_is_missing() {
        let spares = Spares::new(RsaKeySize::Rsa2048);
        assert!(matches!(
            spares.take(&[SigningAlg::Es256]),
            Err(KeyError::NoSpare(SigningAlg::Es256))
        ));
        spares.fill(&[SigningAlg::Es256]).await.unwrap();
        let ready = spares.ready();
        assert_eq!(ready.len(), 1);
        // ES256 is ready but RS256 is not: nothing is taken.
        assert!(matches!(
            spares.take(&SigningAlg::ALL),
            Err(KeyError::NoSpare(SigningAlg::Rs256))
        ));
        assert_eq!(spares.ready(), ready);
        spares.fill(&[SigningAlg::Es256]).await.unwrap();
        assert_eq!(spares.ready(), ready, "a ready spare is not replaced");
        let taken = spares.take(&[SigningAlg::Es256]).unwrap();
        assert_eq!(taken.len(), 1);
        assert_eq!(taken[0].jwk.thumbprint(), ready[0].kid);
        assert!(spares.ready().is_empty());
    }
}
