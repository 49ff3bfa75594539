//! Argon2id password hashing on a small dedicated thread pool: bounded concurrency, so a burst
//! of logins cannot starve other blocking work (database calls) or the executor, and a fixed set
//! of threads, so the allocator keeps at most one Argon2 work area per thread instead of one per
//! blocking-pool thread (memory stays flat under login storms). Waiting is bounded too: beyond
//! [`PasswordHasher::with_queue_limit`] waiters a request is refused at once ([`HashError::Busy`],
//! answered 503 + `Retry-After`), and a waiter whose request went away (the client closed the
//! connection, so actix dropped the handler's future) leaves the queue without hashing (DOS-07: DOS-11, DOS-13).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex, PoisonError};

use std::cell::RefCell;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{Output, ParamsString, PasswordHash, PasswordHasher as _, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};

use tokio::sync::Semaphore;
use zeroize::Zeroizing;

use super::Password;
use super::names::normalize_password;

/// Waiters allowed per hashing thread when no queue limit is set: at the OWASP parameters (about
/// 35 ms a hash) an admitted request waits at most about 0.3 s, and a burst beyond that is told
/// to come back instead of piling up (an unbounded queue let 150 abandoned registrations delay a
/// login by 5 s).
pub const DEFAULT_QUEUE_PER_THREAD: usize = 8;

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

/// Why hashing failed (bad parameters, a malformed stored hash, the hashing threads gone);
/// never includes the password. The cause is kept as the error source.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// The parameters are out of Argon2's range; the source is the argon2 crate's error.
    #[error("invalid Argon2 parameters: {0}")]
    Params(#[source] argon2::Error),
    /// Hashing or verifying failed; the source is the cause: the argon2 / password-hash crates'
    /// error (a malformed stored hash, an Argon2 failure), the system's error when the hashing
    /// threads cannot start, or a [`HashFailure`].
    #[error("password hashing failed: {0}")]
    Hash(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Every hashing thread is busy and the queue is full: refused at once, retry shortly.
    #[error("password hashing is at capacity (queue full)")]
    Busy,
}

impl HashError {
    /// A [`HashError::Hash`] caused by `cause`.
    fn hash(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Hash(cause.into())
    }
}

/// A failure of the hashing threads themselves or of a stored hash's shape, where no library
/// error says what happened (the source of a [`HashError::Hash`]).
#[derive(Debug, thiserror::Error)]
pub enum HashFailure {
    /// The hashing threads could not be started; the source is the system's error.
    #[error("cannot start hashing threads: {0}")]
    Start(#[source] std::io::Error),
    /// No hashing thread is left to take the work.
    #[error("hashing threads stopped")]
    Stopped,
    /// The thread running the work ended without an answer (it panicked).
    #[error("a hashing job was lost")]
    Lost,
    /// The stored PHC string has no salt or no output to compare with.
    #[error("the stored hash has no salt or output")]
    Incomplete,
}

type Job = Box<dyn FnOnce() + Send>;

thread_local! {
    /// This hashing thread's Argon2 work area (`m_cost` KiB of blocks), allocated at its first
    /// hash and reused by every later one. Without it each hash allocates its 19 MiB afresh and
    /// the allocator keeps freed areas in per-thread arenas: resident memory grew by about
    /// 100 MB after five logins and stayed there (issue 16). With it, memory is bounded by the
    /// hashing threads × `m_cost`, however many logins pass.
    static WORK_AREA: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// Argon2 of `password` and `salt` into `out`, in this thread's reusable work area, which is
/// wiped afterwards (it holds password-derived data).
fn argon2_into(
    argon2: &Argon2<'_>,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> Result<(), argon2::Error> {
    WORK_AREA.with(|area| {
        let mut area = area.borrow_mut();
        let needed = argon2.params().block_count();
        if area.len() < needed {
            area.resize(needed, Block::new());
        }
        let result =
            argon2.hash_password_into_with_memory(password, salt, out, &mut area[..needed]);
        area[..needed].fill(Block::new());
        result
    })
}

/// A new PHC string (`$argon2id$v=19$m=…$salt$hash`) for `password`, in the work area.
fn hash_phc(argon2: &Argon2<'_>, password: &[u8]) -> Result<String, HashError> {
    let fail = HashError::hash;
    let salt = SaltString::generate(&mut OsRng);
    let mut salt_buffer = [0u8; 64];
    let salt_bytes = salt.as_salt().decode_b64(&mut salt_buffer).map_err(fail)?;
    let length = argon2
        .params()
        .output_len()
        .unwrap_or(Params::DEFAULT_OUTPUT_LEN);
    let output = Output::init_with(length, |out| {
        argon2_into(argon2, password, salt_bytes, out).map_err(Into::into)
    })
    .map_err(fail)?;
    let hash = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(argon2.params()).map_err(fail)?,
        salt: Some(salt.as_salt()),
        hash: Some(output),
    };
    Ok(hash.to_string())
}

/// Whether `candidate` matches the PHC string `stored`, with the stored hash's own algorithm,
/// version and parameters, in the work area; the outputs are compared in constant time.
fn verify_phc(stored: &PasswordHash<'_>, candidate: &[u8]) -> Result<bool, HashError> {
    let fail = HashError::hash;
    let algorithm = Algorithm::try_from(stored.algorithm).map_err(fail)?;
    let version = stored
        .version
        .map(Version::try_from)
        .transpose()
        .map_err(HashError::hash)?
        .unwrap_or_default();
    let params = Params::try_from(stored).map_err(fail)?;
    let (Some(salt), Some(expected)) = (stored.salt, stored.hash) else {
        return Err(HashError::hash(HashFailure::Incomplete));
    };
    let argon2 = Argon2::new(algorithm, version, params);
    let mut salt_buffer = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut salt_buffer).map_err(fail)?;
    let computed = Output::init_with(expected.len(), |out| {
        argon2_into(&argon2, candidate, salt_bytes, out).map_err(Into::into)
    })
    .map_err(fail)?;
    // `Output`'s equality is constant-time.
    Ok(computed == expected)
}

/// Hashes and verifies passwords. Clones share the threads, the queue and the counter.
#[derive(Clone)]
pub struct PasswordHasher {
    argon2: Arc<Argon2<'static>>,
    jobs: Sender<Job>,
    dummy_hash: Arc<String>,
    /// One permit per hashing thread: taken in FIFO order (tokio's semaphore is fair), held
    /// until the hash is done. A waiter dropped before its turn leaves the queue.
    running: Arc<Semaphore>,
    /// Requests admitted (hashing or waiting): threads + queue limit permits, never waited for.
    admitted: Arc<Semaphore>,
    admitted_max: usize,
    /// Argon2 computations done (each hash, each verification).
    computed: Arc<AtomicU64>,
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
            .map_err(|e| HashError::hash(HashFailure::Start(e)))?;
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
        .map_err(HashError::Params)?;
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        // Verified against for unknown users, so a miss costs what a hit costs (LOGIN-04).
        let dummy_hash = argon2
            .hash_password(
                b"portcullis-dummy-password",
                &SaltString::generate(&mut OsRng),
            )
            .map_err(HashError::hash)?
            .to_string();
        let threads = concurrency.max(1);
        let admitted_max = threads + threads * DEFAULT_QUEUE_PER_THREAD;
        Ok(Self {
            argon2: Arc::new(argon2),
            jobs: start_pool(threads)?,
            dummy_hash: Arc::new(dummy_hash),
            running: Arc::new(Semaphore::new(threads)),
            admitted: Arc::new(Semaphore::new(admitted_max)),
            admitted_max,
            computed: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Lets at most `waiting` requests wait for a hashing thread (beyond those hashing); more are
    /// refused with [`HashError::Busy`]. Default: [`DEFAULT_QUEUE_PER_THREAD`] per thread. Call
    /// before the hasher is cloned or used.
    #[must_use]
    pub fn with_queue_limit(mut self, waiting: usize) -> Self {
        let threads = self.running.available_permits();
        self.admitted_max = threads.saturating_add(waiting);
        self.admitted = Arc::new(Semaphore::new(self.admitted_max));
        self
    }

    /// Argon2 computations done so far by this hasher and its clones (hashes and verifications;
    /// not the dummy hash made at start). Work skipped for abandoned requests is not counted.
    pub fn hashes_computed(&self) -> u64 {
        self.computed.load(Ordering::Relaxed)
    }

    /// Requests admitted right now: hashing, or waiting for a thread.
    pub fn in_flight(&self) -> usize {
        self.admitted_max - self.admitted.available_permits()
    }

    /// Hashes `password` into a PHC string (`$argon2id$v=19$m=…`).
    pub async fn hash(&self, password: Password) -> Result<String, HashError> {
        let argon2 = Arc::clone(&self.argon2);
        let computed = Arc::clone(&self.computed);
        self.run(move || {
            computed.fetch_add(1, Ordering::Relaxed);
            hash_phc(&argon2, password.expose())
        })
        .await
    }

    /// Checks `password` against `hash` (constant-time comparison inside Argon2). A missing
    /// `hash` is checked against a dummy, so unknown users take as long as known ones.
    ///
    /// The password is NFKC-normalised first, as new passwords are ([`Password::parse`]). Hashes
    /// stored before normalisation were made from the bytes as typed: when the normalised form
    /// does not match and differs from the typed bytes, the typed bytes are tried too, so a
    /// legacy password typed exactly as before still works. Both tries run in one queue slot;
    /// only non-normalised input (never plain ASCII) pays the second, for known and unknown users
    /// alike (LOGIN-04).
    pub async fn verify(&self, password: &[u8], hash: Option<&str>) -> Result<bool, HashError> {
        let computed = Arc::clone(&self.computed);
        let known = hash.is_some();
        let hash = hash.map_or_else(|| self.dummy_hash.as_str().to_owned(), str::to_owned);
        let typed = Zeroizing::new(password.to_vec());
        let normalized = std::str::from_utf8(password)
            .ok()
            .map(normalize_password)
            .filter(|normalized| normalized.as_bytes() != password)
            .map(|mut normalized| Zeroizing::new(std::mem::take(&mut *normalized).into_bytes()));
        let matched = self
            .run(move || {
                let parsed =
                    PasswordHash::new(&hash).map_err(HashError::hash)?;
                let check = |candidate: &[u8]| {
                    computed.fetch_add(1, Ordering::Relaxed);
                    verify_phc(&parsed, candidate).unwrap_or(false)
                };
                Ok(match &normalized {
                    None => check(&typed),
                    Some(normalized) if check(normalized) => true,
                    Some(_) if check(&typed) => {
                        if known {
                            tracing::info!(
                                "password matched as typed, not normalised: its hash predates normalisation"
                            );
                        }
                        true
                    }
                    Some(_) => false,
                })
            })
            .await?;
        Ok(known && matched)
    }

    /// Runs `work` on a hashing thread: admitted at once or refused ([`HashError::Busy`]), then
    /// queued in FIFO order for a thread. Dropping the returned future (the client went away and
    /// actix dropped the handler) while it waits takes it out of the queue, so the work never
    /// runs; once a thread has started Argon2 it finishes (Argon2 cannot be interrupted).
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, HashError> + Send + 'static,
    ) -> Result<T, HashError> {
        // Held until this future ends, whichever way: an abandoned request frees its place.
        let _admitted = Arc::clone(&self.admitted)
            .try_acquire_owned()
            .map_err(|_| HashError::Busy)?;
        let turn = Arc::clone(&self.running)
            .acquire_owned()
            .await
            .map_err(|_| HashError::hash(HashFailure::Stopped))?;
        let (done, result) = tokio::sync::oneshot::channel();
        self.jobs
            .send(Box::new(move || {
                // Released when the job ends, so at most one job per thread is ever queued.
                let _turn = turn;
                // The request went away between getting its turn and a thread picking it up.
                if done.is_closed() {
                    return;
                }
                let _ = done.send(work());
            }))
            .map_err(|_| HashError::hash(HashFailure::Stopped))?;
        result
            .await
            .map_err(|_| HashError::hash(HashFailure::Lost))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The work-area hashing agrees with the argon2 crate's own PHC hashing and verification,
    // both ways, and refuses a wrong password.
    #[test]
    fn work_area_hashes_agree_with_the_argon2_crate() {
        use argon2::password_hash::PasswordVerifier as _;
        let params = Params::new(1024, 2, 1, None).unwrap();
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let ours = hash_phc(&argon2, b"correct horse").unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(argon2.verify_password(b"correct horse", &parsed).is_ok());
        assert!(verify_phc(&parsed, b"correct horse").unwrap());
        assert!(!verify_phc(&parsed, b"wrong horse").unwrap());
        let theirs = argon2
            .hash_password(b"battery staple", &SaltString::generate(&mut OsRng))
            .unwrap()
            .to_string();
        let parsed = PasswordHash::new(&theirs).unwrap();
        assert!(verify_phc(&parsed, b"battery staple").unwrap());
        assert!(!verify_phc(&parsed, b"battery stapler").unwrap());
        // A hash made with other parameters (more memory) verifies with its own.
        let bigger = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(4096, 1, 1, None).unwrap(),
        );
        let other = hash_phc(&bigger, b"x").unwrap();
        assert!(verify_phc(&PasswordHash::new(&other).unwrap(), b"x").unwrap());
        assert!(other.contains("m=4096"));
    }

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

    #[tokio::test]
    async fn verification_normalises_and_still_accepts_legacy_hashes() {
        let hasher = PasswordHasher::new(HashParams::default(), 2).unwrap();
        let nfc = "M\u{fc}ller-L\u{fc}denscheid";
        let nfd = "Mu\u{308}ller-Lu\u{308}denscheid";
        let hash = hasher
            .hash(Password::parse(nfd.into()).unwrap())
            .await
            .unwrap();
        assert!(hasher.verify(nfc.as_bytes(), Some(&hash)).await.unwrap());
        assert!(hasher.verify(nfd.as_bytes(), Some(&hash)).await.unwrap());

        // A hash stored before normalisation, of the bytes as typed (NFD).
        let legacy = hasher
            .argon2
            .hash_password(nfd.as_bytes(), &SaltString::generate(&mut OsRng))
            .unwrap()
            .to_string();
        let before = hasher.hashes_computed();
        assert!(
            hasher.verify(nfd.as_bytes(), Some(&legacy)).await.unwrap(),
            "typed exactly as before, it still works"
        );
        assert_eq!(
            hasher.hashes_computed() - before,
            2,
            "normalised, then as typed"
        );
        assert!(
            !hasher
                .verify(b"Mueller-Luedenscheid", Some(&legacy))
                .await
                .unwrap(),
            "a wrong password still fails"
        );
        // ASCII input is its own normal form: one computation, as before.
        let before = hasher.hashes_computed();
        assert!(
            !hasher
                .verify(b"wrong password", Some(&legacy))
                .await
                .unwrap()
        );
        assert_eq!(hasher.hashes_computed() - before, 1);
    }

    // The cause stays attached as the error source (for the logged chain), and the message
    // still names it, as the String did.
    #[tokio::test]
    async fn failures_keep_their_cause_as_the_source() {
        use std::error::Error as _;
        let params = HashParams {
            memory_kib: 1,
            ..HashParams::default()
        };
        let Err(error) = PasswordHasher::new(params, 1) else {
            panic!("1 KiB is below Argon2's minimum");
        };
        assert!(matches!(error, HashError::Params(_)), "{error:?}");
        let source = error.source().unwrap();
        assert!(source.downcast_ref::<argon2::Error>().is_some());
        assert_eq!(
            error.to_string(),
            format!("invalid Argon2 parameters: {source}")
        );

        let hasher = PasswordHasher::new(HashParams::default(), 1).unwrap();
        let error = hasher
            .verify(b"password", Some("not a PHC string"))
            .await
            .unwrap_err();
        assert!(matches!(error, HashError::Hash(_)), "{error:?}");
        let source = error.source().unwrap();
        assert!(
            source
                .downcast_ref::<argon2::password_hash::Error>()
                .is_some()
        );
        assert_eq!(
            error.to_string(),
            format!("password hashing failed: {source}")
        );
    }

    /// Parameters that keep a hashing thread busy for a good while (hundreds of ms).
    fn slow() -> HashParams {
        HashParams {
            memory_kib: 64 * 1024,
            iterations: 16,
            parallelism: 1,
        }
    }

    async fn wait_until(what: &str, done: impl Fn() -> bool) {
        for _ in 0..600 {
            if done() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("never happened: {what}");
    }

    fn spawn_hash(hasher: &PasswordHasher) -> tokio::task::JoinHandle<Result<String, HashError>> {
        let hasher = hasher.clone();
        tokio::spawn(async move {
            hasher
                .hash(Password::parse("correct horse battery".into()).unwrap())
                .await
        })
    }

    // DOS-11: beyond the threads and the queue, hashing is refused at once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_queue_refuses_at_once() {
        let hasher = PasswordHasher::new(slow(), 1).unwrap().with_queue_limit(1);
        let running = spawn_hash(&hasher);
        let waiting = spawn_hash(&hasher);
        wait_until("one hashing, one waiting", || hasher.in_flight() == 2).await;
        let refused = hasher.verify(b"correct horse battery", None).await;
        assert!(matches!(refused, Err(HashError::Busy)), "{refused:?}");
        assert!(running.await.unwrap().is_ok());
        assert!(waiting.await.unwrap().is_ok());
        assert_eq!(hasher.in_flight(), 0);
        assert!(hasher.verify(b"correct horse battery", None).await.is_ok());
    }

    // DOS-13: a waiter dropped while queued (its client went away) never hashes.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_waiter_dropped_while_queued_is_never_hashed() {
        let hasher = PasswordHasher::new(slow(), 1).unwrap();
        let running = spawn_hash(&hasher);
        wait_until("the first hash started", || hasher.hashes_computed() == 1).await;
        let abandoned: Vec<_> = (0..4).map(|_| spawn_hash(&hasher)).collect();
        wait_until("four waiting", || hasher.in_flight() == 5).await;
        for waiter in &abandoned {
            waiter.abort();
        }
        wait_until("the waiters left", || hasher.in_flight() <= 1).await;
        assert!(running.await.unwrap().is_ok());
        assert_eq!(hasher.in_flight(), 0);
        assert_eq!(
            hasher.hashes_computed(),
            1,
            "only the hash that had started"
        );
    }
}
