//! Argon2id password hashing on a small dedicated thread pool: bounded concurrency, so a burst
//! of logins cannot starve other blocking work (database calls) or the executor, and a fixed set
//! of threads, so the allocator keeps at most one Argon2 work area per thread instead of one per
//! blocking-pool thread (memory stays flat under login storms).

use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex, PoisonError};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

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

type Job = Box<dyn FnOnce() + Send>;

/// Hashes and verifies passwords.
#[derive(Clone)]
pub struct PasswordHasher {
    argon2: Arc<Argon2<'static>>,
    jobs: Sender<Job>,
    dummy_hash: Arc<String>,
}

/// Starts `threads` hashing threads; they end when every `Sender` is dropped.
fn start_pool(threads: usize) -> Result<Sender<Job>, HashError> {
    let (jobs, queue) = channel::<Job>();
    let queue: Arc<Mutex<Receiver<Job>>> = Arc::new(Mutex::new(queue));
    for index in 0..threads.max(1) {
        let queue = Arc::clone(&queue);
        std::thread::Builder::new()
            .name(format!("portcullis-argon2-{index}"))
            .spawn(move || {
                loop {
                    let next = queue.lock().unwrap_or_else(PoisonError::into_inner).recv();
                    match next {
                        Ok(job) => job(),
                        Err(_) => break,
                    }
                }
            })
            .map_err(|e| HashError::Hash(format!("cannot start hashing threads: {e}")))?;
    }
    Ok(jobs)
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
            jobs: start_pool(concurrency)?,
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
        let (done, result) = tokio::sync::oneshot::channel();
        self.jobs
            .send(Box::new(move || {
                let _ = done.send(work());
            }))
            .map_err(|_| HashError::Hash("hashing threads stopped".into()))?;
        result
            .await
            .map_err(|_| HashError::Hash("a hashing job was lost".into()))?
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
