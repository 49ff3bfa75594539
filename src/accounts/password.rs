//! Argon2id password hashing on the blocking pool, with bounded concurrency so a burst of
//! logins cannot starve other blocking work (database calls).

use std::sync::Arc;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

use super::Password;

/// Argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashParams {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Passes.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl Default for HashParams {
    /// OWASP Password Storage Cheat Sheet: Argon2id, 19 MiB, 2 iterations, 1 lane.
    fn default() -> Self {
        Self {
            memory_kib: 19_456,
            iterations: 2,
            parallelism: 1,
        }
    }
}

/// Why hashing failed (bad parameters or a malformed stored hash); never includes the password.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// The parameters are out of Argon2's range.
    #[error("invalid Argon2 parameters: {0}")]
    Params(String),
    /// The hashing task failed.
    #[error("password hashing failed: {0}")]
    Hash(String),
}

/// Hashes and verifies passwords.
#[derive(Clone)]
pub struct PasswordHasher {
    argon2: Arc<Argon2<'static>>,
    permits: Arc<Semaphore>,
    dummy_hash: Arc<String>,
}

impl PasswordHasher {
    /// A hasher with `params`, running at most `concurrency` hashes at once.
    pub fn new(params: HashParams, concurrency: usize) -> Result<Self, HashError> {
        let params = Params::new(
            params.memory_kib,
            params.iterations,
            params.parallelism,
            None,
        )
        .map_err(|e| HashError::Params(e.to_string()))?;
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        // Verified against for unknown users, so a miss costs what a hit costs (LOGIN-04).
        let dummy_hash = argon2
            .hash_password(
                b"portcullis-dummy-password",
                &SaltString::generate(&mut OsRng),
            )
            .map_err(|e| HashError::Hash(e.to_string()))?
            .to_string();
        Ok(Self {
            argon2: Arc::new(argon2),
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            dummy_hash: Arc::new(dummy_hash),
        })
    }

    /// Hashes `password` into a PHC string (`$argon2id$v=19$m=…`).
    pub async fn hash(&self, password: Password) -> Result<String, HashError> {
        let argon2 = Arc::clone(&self.argon2);
        self.run(move || {
            argon2
                .hash_password(password.expose(), &SaltString::generate(&mut OsRng))
                .map(|hash| hash.to_string())
                .map_err(|e| HashError::Hash(e.to_string()))
        })
        .await
    }

    /// Checks `password` against `hash` (constant-time comparison inside Argon2). A missing
    /// `hash` is checked against a dummy, so unknown users take as long as known ones.
    pub async fn verify(&self, password: &[u8], hash: Option<&str>) -> Result<bool, HashError> {
        let argon2 = Arc::clone(&self.argon2);
        let known = hash.is_some();
        let hash = hash.map_or_else(|| self.dummy_hash.as_str().to_owned(), str::to_owned);
        let password = zeroize::Zeroizing::new(password.to_vec());
        let matched = self
            .run(move || {
                let parsed =
                    PasswordHash::new(&hash).map_err(|e| HashError::Hash(e.to_string()))?;
                Ok(argon2.verify_password(&password, &parsed).is_ok())
            })
            .await?;
        Ok(known && matched)
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, HashError> + Send + 'static,
    ) -> Result<T, HashError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| HashError::Hash(e.to_string()))?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| HashError::Hash(e.to_string()))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_never_contain_the_password() {
        let hasher = PasswordHasher::new(HashParams::default(), 2).unwrap();
        let hash = hasher
            .hash(Password::parse("correct horse battery".into()).unwrap())
            .await
            .unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(!hash.contains("correct horse"));
        assert!(
            hasher
                .verify(b"correct horse battery", Some(&hash))
                .await
                .unwrap()
        );
        assert!(
            !hasher
                .verify(b"correct horse batterY", Some(&hash))
                .await
                .unwrap()
        );
        assert!(
            !hasher
                .verify(b"portcullis-dummy-password", None)
                .await
                .unwrap(),
            "unknown user never matches"
        );
    }
}
