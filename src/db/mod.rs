//! Storage: one diesel code base over Postgres and SQLite, a pool, and the helper that keeps
//! every blocking database call off the async executor.

pub mod models;
pub mod queries;
pub mod schema;
pub mod snapshot;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel::connection::{AnsiTransactionManager, CacheSize, SimpleConnection, TransactionManager};
use diesel::prelude::*;
use diesel::r2d2::{self, ManageConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use secrecy::{ExposeSecret, SecretString};

use crate::metrics::Metrics;

const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");
const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

mod connection;
pub use connection::DbConn;

/// Which database to use, decided by the URL scheme (never by trial connection).
#[derive(Clone)]
pub enum DatabaseUrl {
    /// `postgres://…` or `postgresql://…`, passed to libpq unchanged. Secret: it may hold a
    /// password (shown only redacted, see `Display`).
    Postgres(SecretString),
    /// `sqlite://PATH`: a file path relative to the working directory, or absolute with `sqlite:///`.
    Sqlite(PathBuf),
}

impl DatabaseUrl {
    /// Parses a database URL by its scheme.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            return Ok(Self::Postgres(SecretString::from(text)));
        }
        if let Some(path) = text.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err(
                    "`sqlite://` needs a file path, e.g. sqlite://data/portcullis.db".into(),
                );
            }
            return Ok(Self::Sqlite(PathBuf::from(path)));
        }
        let scheme = text.split(':').next().unwrap_or_default();
        Err(format!(
            "unsupported scheme `{scheme}`: use postgres://… or sqlite://PATH"
        ))
    }

    /// True for the embedded backend.
    pub fn is_sqlite(&self) -> bool {
        matches!(self, Self::Sqlite(_))
    }
}

impl std::fmt::Display for DatabaseUrl {
    /// Shows the URL with any password replaced, so it can be logged.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Sqlite(path) => write!(f, "sqlite://{}", path.display()),
            Self::Postgres(url) => f.write_str(&redact_password(url.expose_secret())),
        }
    }
}

/// `url` with the password of its user info replaced. Done on the text rather than with a URL
/// parser: libpq's multi-host form (`postgres://u:p@h1:5432,h2:5432/db`) is no valid URL to one.
fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "postgres://<unparseable>".to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, hosts)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:REDACTED@{hosts}{tail}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

impl PartialEq for DatabaseUrl {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Postgres(a), Self::Postgres(b)) => a.expose_secret() == b.expose_secret(),
            (Self::Sqlite(a), Self::Sqlite(b)) => a == b,
            _ => false,
        }
    }
}

impl Eq for DatabaseUrl {}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

/// What sits between Portcullis and PostgreSQL (`PORTCULLIS_DB_POOLER`), which decides whether
/// a connection's session state (named prepared statements, `SET`) is its own.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Pooler {
    /// Nothing, or a pooler that gives each client one server connection for its whole session
    /// (PgBouncer `pool_mode = session`): session state holds. `none` or `session`.
    #[default]
    None,
    /// A pooler that lends a server connection per transaction (PgBouncer
    /// `pool_mode = transaction`): consecutive statements of one client may run on different
    /// server connections, so nothing may rest on session state. Connections keep no named
    /// prepared statements (diesel's statement cache is off: each statement is parsed and
    /// planned anew, one round trip as before), and the statement timeout is set per
    /// transaction (`SET LOCAL`) on a transaction around each unit of work instead of once per
    /// session. `transaction`.
    Transaction,
}

impl Pooler {
    /// Parses `none`, `session` or `transaction`.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "none" | "session" => Ok(Self::None),
            "transaction" => Ok(Self::Transaction),
            other => Err(format!(
                "`{other}` is not one of none, session, transaction"
            )),
        }
    }

    /// The setting's value: `none` or `transaction`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Transaction => "transaction",
        }
    }
}

/// Opens connections of the backend the URL names, with per-connection settings applied.
#[derive(Debug)]
pub struct ConnectionManager {
    url: DatabaseUrl,
    /// Pool connections: (connect timeout, statement timeout).
    timeouts: Option<(Duration, Duration)>,
    pooler: Pooler,
}

impl ConnectionManager {
    /// A manager for `url`, connecting directly ([`Pooler::None`]).
    pub fn new(url: DatabaseUrl) -> Self {
        Self {
            url,
            timeouts: None,
            pooler: Pooler::None,
        }
    }

    /// Connections through `pooler`: with [`Pooler::Transaction`], they keep no named prepared
    /// statements and set no session state.
    pub fn behind(self, pooler: Pooler) -> Self {
        Self { pooler, ..self }
    }

    /// Bounds what an unreachable or stuck PostgreSQL can cost (SQLite waits at most its busy
    /// timeout for a lock): connecting gives up after `connect`; the server cancels a statement
    /// that runs longer than `statement`; and a connection whose peer vanished (a network black
    /// hole, a host gone without a reset) fails once sent data stays unacknowledged past the
    /// statement timeout, or keepalives go unanswered, instead of after the kernel's default of
    /// many minutes.
    pub fn with_timeouts(self, connect: Duration, statement: Duration) -> Self {
        Self {
            timeouts: Some((connect, statement)),
            ..self
        }
    }

    /// Opens one connection outside any pool (migrations, CLI, tests).
    pub fn establish(&self) -> ConnectionResult<DbConn> {
        match &self.url {
            DatabaseUrl::Postgres(url) => {
                let url = url.expose_secret();
                let mut conn = match self.timeouts {
                    Some((connect, timeout)) => diesel::PgConnection::establish(
                        &with_network_timeouts(url, connect, timeout),
                    )?,
                    None => diesel::PgConnection::establish(url)?,
                };
                match (self.pooler, self.timeouts) {
                    // A named prepared statement lives on one server connection, and the next
                    // transaction may get another (`prepared statement "__diesel_stmt_0" does
                    // not exist`): unnamed statements only, parsed with each execution.
                    (Pooler::Transaction, _) => {
                        conn.set_prepared_statement_cache_size(CacheSize::Disabled);
                    }
                    // A stuck or slow database costs a bounded wait, then a 503 — never a
                    // request (and its pooled connection) held indefinitely. Through a
                    // transaction pooler [`Db::run`] sets it per transaction instead.
                    (Pooler::None, Some((_, timeout))) => conn
                        .batch_execute(&format!(
                            "SET statement_timeout = {}",
                            timeout.as_millis().max(1)
                        ))
                        .map_err(|e| ConnectionError::BadConnection(e.to_string()))?,
                    (Pooler::None, None) => {}
                }
                Ok(DbConn::Postgres(conn))
            }
            DatabaseUrl::Sqlite(path) => {
                let path_text = path.to_string_lossy();
                let mut conn = diesel::SqliteConnection::establish(&path_text)?;
                // WAL lets readers proceed during a write; busy_timeout turns lock contention
                // between pooled connections into a short wait instead of an error.
                conn.batch_execute(
                    "PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; \
                     PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;",
                )
                .map_err(|e| ConnectionError::BadConnection(e.to_string()))?;
                Ok(DbConn::Sqlite(conn))
            }
        }
    }
}

/// `url` with libpq's network timeouts added, unless it sets them itself (an operator's choice
/// wins): `connect_timeout` (whole seconds, at least 2, libpq's minimum; with several hosts it
/// bounds each attempt), TCP keepalives, and `tcp_user_timeout` a little above the statement
/// timeout. The query is edited as text, as libpq's multi-host URLs
/// (`postgres://u@h1:5432,h2:5432/db?target_session_attrs=read-write`) are no valid URLs to a
/// URL parser.
fn with_network_timeouts(url: &str, connect: Duration, statement: Duration) -> String {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut pairs: Vec<String> = query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(str::to_owned)
        .collect();
    let present: Vec<String> = pairs
        .iter()
        .map(|pair| pair.split('=').next().unwrap_or_default().to_owned())
        .collect();
    let defaults = [
        ("connect_timeout", connect.as_secs().max(2).to_string()),
        ("keepalives", "1".to_owned()),
        ("keepalives_idle", "10".to_owned()),
        ("keepalives_interval", "5".to_owned()),
        ("keepalives_count", "3".to_owned()),
        (
            "tcp_user_timeout",
            (statement + Duration::from_secs(5)).as_millis().to_string(),
        ),
    ];
    for (key, value) in defaults {
        if !present.iter().any(|p| p == key) {
            pairs.push(format!("{key}={value}"));
        }
    }
    format!("{base}?{}", pairs.join("&"))
}

/// A pooled connection and what the pool needs to know of its health.
pub struct PooledConn {
    conn: DbConn,
    last_used: Instant,
    broken: bool,
}

/// A connection unused for this long is checked before use: it may have been cut while idle
/// (database restart, a firewall's idle timeout). A busy connection is trusted, and checked only
/// after a query on it failed — so the hot path pays no liveness round trip.
const CHECK_IF_IDLE_FOR: Duration = Duration::from_secs(5);

impl PooledConn {
    fn alive(&mut self) -> bool {
        self.conn.batch_execute("SELECT 1").is_ok()
    }

    /// Whether diesel's transaction bookkeeping is at rest (no transaction left open, not
    /// broken by a rollback that failed): a connection left otherwise serves no other request.
    fn at_rest(&mut self) -> bool {
        let status = match &mut self.conn {
            DbConn::Postgres(c) => AnsiTransactionManager::transaction_manager_status_mut(c),
            DbConn::Sqlite(c) => AnsiTransactionManager::transaction_manager_status_mut(c),
        };
        matches!(status.transaction_depth(), Ok(None))
    }

    /// After a failed call: whether the connection can serve the next one. It must answer, and
    /// a PostgreSQL connection must take writes: a leader demoted to a standby (or a server
    /// set read-only) answers every write with 25006 for as long as the connection lasts, while
    /// a new connection (libpq's `target_session_attrs=read-write` trying every host) finds the
    /// new primary.
    fn usable_after_failure(&mut self) -> bool {
        match &mut self.conn {
            DbConn::Postgres(pg) => diesel::select(diesel::dsl::sql::<diesel::sql_types::Bool>(
                "current_setting('transaction_read_only') = 'off'",
            ))
            .get_result::<bool>(pg)
            .unwrap_or(false),
            DbConn::Sqlite(_) => self.alive(),
        }
    }
}

impl ManageConnection for ConnectionManager {
    type Connection = PooledConn;
    type Error = r2d2::Error;

    fn connect(&self) -> Result<PooledConn, r2d2::Error> {
        Ok(PooledConn {
            conn: self.establish().map_err(r2d2::Error::ConnectionError)?,
            last_used: Instant::now(),
            broken: false,
        })
    }

    fn is_valid(&self, pooled: &mut PooledConn) -> Result<(), r2d2::Error> {
        pooled
            .conn
            .batch_execute("SELECT 1")
            .map_err(r2d2::Error::QueryError)
    }

    fn has_broken(&self, pooled: &mut PooledConn) -> bool {
        // Also a connection given back with a transaction open (a call that panicked in one).
        pooled.broken || !pooled.at_rest()
    }
}

/// The shared pool of database connections.
pub type Pool = r2d2::Pool<ConnectionManager>;

/// Why a database call failed. The diesel or r2d2 error is kept as the source (and shown in the
/// message, so a plain `%error` log line is complete too); [`DbError::is_transient`] says whether the database is away (answer
/// 503, retry later) or something is wrong (500).
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// No connection could be had within the checkout timeout: the database is down or saturated.
    #[error("no database connection within the pool's checkout timeout: {0}")]
    Checkout(#[source] r2d2::PoolError),
    /// A connection outside the pool could not be opened.
    #[error("cannot connect to the database: {0}")]
    Connect(#[source] ConnectionError),
    /// Every connection the pool offered was dead, several times over.
    #[error("no live database connection")]
    NoLiveConnection,
    /// The query itself failed.
    #[error("database query failed: {0}")]
    Query(#[from] diesel::result::Error),
    /// The blocking task was cancelled or panicked.
    #[error("database task failed: {0}")]
    Task(#[source] tokio::task::JoinError),
}

impl DbError {
    /// Whether the database is away, overloaded or not taking writes rather than the request or
    /// the code at fault: no connection ([`DbError::Checkout`], [`DbError::Connect`],
    /// [`DbError::NoLiveConnection`]), or a query that failed for one of the reasons of
    /// [`is_transient_query_error`]. The client may retry the same request (answered `503` +
    /// `Retry-After`): a failed transaction was rolled back and changed nothing — except when
    /// the connection died during its `COMMIT`, whose outcome is then unknown (the commit may
    /// have reached a synchronous standby). Every write is therefore one transaction that a
    /// retry finds either undone or done: a spent code is refused, and a refresh token whose
    /// rotation committed is accepted once more inside `PORTCULLIS_REFRESH_REUSE_GRACE`
    /// (with a grace of 0 that retry is reuse; see the README's *Failover under load*).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Checkout(_) | Self::Connect(_) | Self::NoLiveConnection => true,
            Self::Query(error) => is_transient_query_error(error),
            Self::Task(_) => false,
        }
    }
}

/// Whether a query failed because of the database's state rather than the query: worth a retry
/// once the database is back (HA failover, restart, overload), with nothing written.
///
/// - SQLSTATE class 08 (connection exception) and a connection libpq reports dead (diesel's
///   `ClosedConnection`, which includes 57P01 admin shutdown when libpq has seen the socket
///   close), or no connection to send on (`UnableToSendCommand`);
/// - 25006 `read_only_sql_transaction`: a write reached a server that is not (or no longer)
///   the primary, a demoted leader or a standby, until the connection is replaced;
/// - 40001 `serialization_failure` (also a standby's recovery conflict) and 40P01
///   `deadlock_detected`: the transaction was rolled back; nothing retries them inside the
///   server;
/// - 57P01/57P02/57P03 (admin shutdown, crash shutdown, cannot connect now) and 57014 (statement
///   timeout, cancel), which diesel does not classify: matched on PostgreSQL's message (see
///   [`is_transient_message`]), as are PgBouncer's own refusals;
/// - a `COMMIT` that failed for one of these reasons and whose rollback failed too.
pub fn is_transient_query_error(error: &diesel::result::Error) -> bool {
    use diesel::result::{DatabaseErrorKind as Kind, Error};
    match error {
        Error::DatabaseError(
            Kind::ClosedConnection
            | Kind::UnableToSendCommand
            | Kind::ReadOnlyTransaction
            | Kind::SerializationFailure,
            _,
        ) => true,
        Error::DatabaseError(_, info) => is_transient_message(info.message()),
        Error::RollbackErrorOnCommit { commit_error, .. } => is_transient_query_error(commit_error),
        _ => false,
    }
}

/// Whether a database error message is one of the transient failures whose SQLSTATE diesel does
/// not expose ([`is_timeout`] included). Messages are PostgreSQL's and PgBouncer's in English: a
/// server with other `lc_messages` yields a 500 instead of a 503 for these, still without a
/// partial write.
pub fn is_transient_message(message: &str) -> bool {
    const PREFIXES: [&str; 13] = [
        // 57P01 admin_shutdown (shutdown, pg_terminate_backend, a failover's demotion)
        "terminating connection due to administrator command",
        // 57P02 crash_shutdown
        "terminating connection because of crash of another server process",
        // 57P03 cannot_connect_now
        "the database system is starting up",
        "the database system is shutting down",
        "the database system is in recovery mode",
        "the database system is not yet accepting connections",
        "the database system is not accepting connections",
        // 40P01 deadlock_detected
        "deadlock detected",
        // 57014 query_canceled by an operator (the timeouts are in `is_timeout`)
        "canceling statement due to user request",
        // PgBouncer (08P01): no server connection in time, or none to be had
        "query_wait_timeout",
        "pgbouncer cannot connect to server",
        "server login has been failing",
        "server conn crashed",
    ];
    is_timeout(message) || PREFIXES.iter().any(|prefix| message.starts_with(prefix))
}

/// Whether a database error message says the statement ran out of time rather than failed:
/// PostgreSQL's statement or lock timeout (SQLSTATE 57014, which diesel does not expose, so the
/// server's message is matched; a server with non-English `lc_messages` yields a 500 instead of
/// a 503, still without a partial write) or SQLite's busy timeout.
pub fn is_timeout(message: &str) -> bool {
    message.starts_with("canceling statement due to statement timeout")
        || message.starts_with("canceling statement due to lock timeout")
        || message.starts_with("database is locked")
        || message.starts_with("database table is locked")
}

/// The database and its pool, as configured (`PORTCULLIS_DATABASE_URL`, `PORTCULLIS_DB_POOL_*`,
/// `PORTCULLIS_DB_STATEMENT_TIMEOUT`, `PORTCULLIS_DB_POOLER`).
#[derive(Clone, Debug)]
pub struct PoolSettings {
    /// Which database, chosen by URL scheme.
    pub url: DatabaseUrl,
    /// Maximum connections of the server's pool.
    pub size: u32,
    /// How long a request waits for a pooled connection (also libpq's connect timeout).
    pub checkout_timeout: Duration,
    /// The longest a statement may run (PostgreSQL `statement_timeout`).
    pub statement_timeout: Duration,
    /// What sits between the server and PostgreSQL (`PORTCULLIS_DB_POOLER`).
    pub pooler: Pooler,
}

/// A handle to the pool that runs closures on blocking threads.
#[derive(Clone)]
pub struct Db {
    pool: Arc<Pool>,
    /// Where checkout waits are recorded (the application's registry).
    metrics: Arc<Metrics>,
    /// Behind a transaction pooler on PostgreSQL: the statement timeout each unit of work sets
    /// on the transaction it runs in.
    per_transaction_timeout: Option<Duration>,
}

impl Db {
    /// Opens the pool without connecting eagerly, so a server can start serving from memory and
    /// report readiness even while the database is briefly away. Checkout waits are recorded in
    /// `metrics`.
    pub fn connect(
        url: DatabaseUrl,
        size: u32,
        checkout_timeout: Duration,
        statement_timeout: Duration,
        pooler: Pooler,
        metrics: Arc<Metrics>,
    ) -> Self {
        let per_transaction_timeout =
            (pooler == Pooler::Transaction && !url.is_sqlite()).then_some(statement_timeout);
        let pool = r2d2::Pool::builder()
            .max_size(size)
            .min_idle(Some(0))
            .connection_timeout(checkout_timeout)
            .test_on_check_out(false)
            .error_handler(Box::new(LogPoolErrors))
            .build_unchecked(
                ConnectionManager::new(url)
                    .with_timeouts(checkout_timeout, statement_timeout)
                    .behind(pooler),
            );
        Self {
            pool: Arc::new(pool),
            metrics,
            per_transaction_timeout,
        }
    }

    /// A pool of `size` connections to the configured database, with its timeouts (the server
    /// passes `settings.size`; one-shot commands a smaller pool); checkout waits go to `metrics`.
    pub fn for_settings(settings: &PoolSettings, size: u32, metrics: Arc<Metrics>) -> Self {
        Self::connect(
            settings.url.clone(),
            size,
            settings.checkout_timeout,
            settings.statement_timeout,
            settings.pooler,
            metrics,
        )
    }

    /// Runs `f` with a pooled connection on a blocking thread, in the caller's tracing span.
    pub async fn run<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConn) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        let (pool, metrics) = (Arc::clone(&self.pool), Arc::clone(&self.metrics));
        let per_transaction_timeout = self.per_transaction_timeout;
        // A blocking thread runs in no span: enter the caller's (the request's, with its id),
        // so whatever the closure logs is attributed to the request (zero2prod's
        // `spawn_blocking_with_tracing`).
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || {
            let _entered = span.enter();
            let mut pooled = checkout(&pool, &metrics)?;
            let result = match per_transaction_timeout {
                Some(timeout) => in_timed_transaction(&mut pooled.conn, timeout, f),
                None => f(&mut pooled.conn),
            };
            if result.is_err() && !pooled.usable_after_failure() {
                // Dropped from the pool on return; the next checkout connects afresh.
                pooled.broken = true;
            }
            pooled.last_used = Instant::now();
            result
        })
        .await
        .map_err(|e| E::from(DbError::Task(e)))?
    }

    /// `(open, idle)` connections of the pool.
    pub fn pool_state(&self) -> (u32, u32) {
        let state = self.pool.state();
        (state.connections, state.idle_connections)
    }

    /// Checks that the database answers; any failure means "not ready".
    pub async fn ping(&self) -> Result<(), DbError> {
        self.run(|conn| Ok(conn.batch_execute("SELECT 1")?)).await
    }
}

/// Runs `f` in one PostgreSQL transaction whose statements may run for `timeout` each
/// (`SET LOCAL statement_timeout`, sent with `BEGIN` in one round trip): the statement timeout of
/// a connection behind a transaction pooler, where a session's `SET` would stay on whichever
/// server connection it ran on. What `f` wrote is committed whatever it returns, as each of its
/// statements would have been on its own (a statement that failed has aborted the transaction
/// already, and `COMMIT` then rolls back); transactions `f` opens become savepoints of this one.
fn in_timed_transaction<T, E, F>(conn: &mut DbConn, timeout: Duration, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConn) -> Result<T, E>,
    E: From<DbError>,
{
    let DbConn::Postgres(pg) = conn else {
        return f(conn);
    };
    AnsiTransactionManager::begin_transaction_sql(
        pg,
        &format!(
            "BEGIN; SET LOCAL statement_timeout = {}",
            timeout.as_millis().max(1)
        ),
    )
    .map_err(|e| E::from(DbError::Query(e)))?;
    let result = f(conn);
    let committed = <DbConn as Connection>::TransactionManager::commit_transaction(conn);
    match (result, committed) {
        (result, Ok(())) | (result @ Err(_), Err(_)) => result,
        (Ok(_), Err(error)) => Err(E::from(DbError::Query(error))),
    }
}

/// A healthy connection from the pool: one idle for a while is checked first, and replaced if
/// it no longer answers (at most a few times, then the database is reported unavailable).
fn checkout(
    pool: &Pool,
    metrics: &Metrics,
) -> Result<r2d2::PooledConnection<ConnectionManager>, DbError> {
    let started = Instant::now();
    let checked_out = checkout_live(pool);
    metrics.pool_wait.observe(started.elapsed().as_secs_f64());
    checked_out
}

fn checkout_live(pool: &Pool) -> Result<r2d2::PooledConnection<ConnectionManager>, DbError> {
    for _ in 0..3 {
        let mut pooled = pool.get().map_err(DbError::Checkout)?;
        if pooled.last_used.elapsed() < CHECK_IF_IDLE_FOR || pooled.alive() {
            return Ok(pooled);
        }
        pooled.broken = true;
    }
    Err(DbError::NoLiveConnection)
}

#[derive(Debug)]
struct LogPoolErrors;

impl r2d2::HandleError<r2d2::Error> for LogPoolErrors {
    fn handle_error(&self, error: r2d2::Error) {
        tracing::warn!(%error, "database connection failed");
    }
}

/// Runs `f` in a transaction that holds the write lock from its first statement.
///
/// Postgres: an ordinary transaction; conditional updates and unique indexes decide races.
/// SQLite: `BEGIN IMMEDIATE`, so two writers queue on the busy timeout instead of one failing
/// with SQLITE_BUSY when it upgrades a read lock.
/// Nested in another transaction, it is a savepoint of that one (which holds the lock already).
pub fn write_transaction<T, E, F>(conn: &mut DbConn, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConn) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    match conn {
        DbConn::Postgres(_) => conn.transaction(f),
        DbConn::Sqlite(inner) => {
            let status = AnsiTransactionManager::transaction_manager_status_mut(inner);
            if status.transaction_depth()?.is_some() {
                return conn.transaction(f);
            }
            AnsiTransactionManager::begin_transaction_sql(inner, "BEGIN IMMEDIATE")?;
            match f(conn) {
                Ok(value) => {
                    <DbConn as Connection>::TransactionManager::commit_transaction(conn)?;
                    Ok(value)
                }
                Err(error) => {
                    <DbConn as Connection>::TransactionManager::rollback_transaction(conn)?;
                    Err(error)
                }
            }
        }
    }
}

/// Runs every pending migration of the connection's backend; a second run is a no-op.
/// Returns the versions applied now.
pub fn run_migrations(conn: &mut DbConn) -> Result<Vec<String>, String> {
    let applied = match conn {
        DbConn::Postgres(c) => c
            .run_pending_migrations(POSTGRES_MIGRATIONS)
            .map(|v| v.iter().map(ToString::to_string).collect()),
        DbConn::Sqlite(c) => c
            .run_pending_migrations(SQLITE_MIGRATIONS)
            .map(|v| v.iter().map(ToString::to_string).collect()),
    };
    applied.map_err(|e| e.to_string())
}

/// Creates the parent directory of a SQLite database file if it is missing.
pub fn prepare_sqlite_path(url: &DatabaseUrl) -> std::io::Result<()> {
    if let DatabaseUrl::Sqlite(path) = url
        && let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_write_transactions_are_savepoints_of_the_outer_one() {
        let sqlite =
            diesel::SqliteConnection::establish(":memory:").unwrap_or_else(|e| panic!("{e}"));
        let mut conn = DbConn::Sqlite(sqlite);
        conn.batch_execute("CREATE TABLE t (v INTEGER)")
            .unwrap_or_else(|e| panic!("{e}"));
        let insert =
            |conn: &mut DbConn, v: i32| conn.batch_execute(&format!("INSERT INTO t VALUES ({v})"));
        let count = |conn: &mut DbConn| {
            diesel::dsl::sql::<diesel::sql_types::BigInt>("SELECT COUNT(*) FROM t")
                .get_result::<i64>(conn)
                .unwrap_or_else(|e| panic!("{e}"))
        };
        // A nested transaction that succeeds commits with the outer one; one that fails undoes
        // only its own writes.
        write_transaction(&mut conn, |conn| {
            insert(conn, 1)?;
            write_transaction(conn, |conn| insert(conn, 2))?;
            let failed = write_transaction(conn, |conn| {
                insert(conn, 3)?;
                Err::<(), _>(diesel::result::Error::RollbackTransaction)
            });
            assert!(failed.is_err());
            Ok::<_, diesel::result::Error>(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(count(&mut conn), 2);
        // An outer failure undoes the nested writes that succeeded too.
        let outer = write_transaction(&mut conn, |conn| {
            write_transaction(conn, |conn| insert(conn, 4))?;
            Err::<(), _>(diesel::result::Error::RollbackTransaction)
        });
        assert!(outer.is_err());
        assert_eq!(count(&mut conn), 2);
    }

    #[test]
    fn transient_failures_are_the_database_being_away_or_slow() {
        use diesel::result::{DatabaseErrorKind, Error};
        let query = |kind, message: &str| {
            DbError::Query(Error::DatabaseError(kind, Box::new(message.to_owned())))
        };
        for transient in [
            DbError::NoLiveConnection,
            DbError::Connect(ConnectionError::BadConnection("refused".into())),
            query(
                DatabaseErrorKind::ClosedConnection,
                "server closed the connection",
            ),
            query(
                DatabaseErrorKind::UnableToSendCommand,
                "no connection to the server",
            ),
            query(
                DatabaseErrorKind::Unknown,
                "canceling statement due to statement timeout",
            ),
            query(DatabaseErrorKind::Unknown, "database is locked"),
            query(
                DatabaseErrorKind::ReadOnlyTransaction,
                "cannot execute INSERT in a read-only transaction",
            ),
            query(
                DatabaseErrorKind::SerializationFailure,
                "could not serialize access due to concurrent update",
            ),
            query(DatabaseErrorKind::Unknown, "deadlock detected"),
            query(
                DatabaseErrorKind::Unknown,
                "terminating connection due to administrator command",
            ),
            query(
                DatabaseErrorKind::Unknown,
                "terminating connection because of crash of another server process",
            ),
            query(
                DatabaseErrorKind::Unknown,
                "the database system is shutting down",
            ),
            query(DatabaseErrorKind::Unknown, "query_wait_timeout"),
            DbError::Query(Error::RollbackErrorOnCommit {
                rollback_error: Box::new(Error::BrokenTransactionManager),
                commit_error: Box::new(Error::DatabaseError(
                    DatabaseErrorKind::ClosedConnection,
                    Box::new("server closed the connection unexpectedly".to_owned()),
                )),
            }),
        ] {
            assert!(transient.is_transient(), "{transient:?}");
        }
        for broken in [
            DbError::Query(Error::NotFound),
            query(DatabaseErrorKind::UniqueViolation, "duplicate key"),
            query(
                DatabaseErrorKind::Unknown,
                "relation \"users\" does not exist",
            ),
            query(
                DatabaseErrorKind::CheckViolation,
                "violates check constraint",
            ),
            query(DatabaseErrorKind::NotNullViolation, "null value in column"),
            DbError::Query(Error::BrokenTransactionManager),
        ] {
            assert!(!broken.is_transient(), "{broken:?}");
        }
    }

    #[test]
    fn backend_is_chosen_by_scheme() {
        assert_eq!(
            DatabaseUrl::parse("sqlite://data/p.db"),
            Ok(DatabaseUrl::Sqlite(PathBuf::from("data/p.db")))
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite:///var/lib/p.db"),
            Ok(DatabaseUrl::Sqlite(PathBuf::from("/var/lib/p.db")))
        );
        assert!(matches!(
            DatabaseUrl::parse("postgresql://u@h/db"),
            Ok(DatabaseUrl::Postgres(_))
        ));
        // A mistyped scheme must not silently become a SQLite file.
        assert!(DatabaseUrl::parse("postgress://u@h/db").is_err());
        assert!(DatabaseUrl::parse("data/p.db").is_err());
    }

    #[test]
    fn pool_connections_get_network_timeouts_unless_the_url_sets_them() {
        let url = with_network_timeouts(
            "postgres://u@db/p?connect_timeout=9&sslmode=require",
            Duration::from_millis(500),
            Duration::from_secs(5),
        );
        let parsed = url::Url::parse(&url).unwrap_or_else(|e| panic!("{e}"));
        let pairs: Vec<(String, String)> = parsed.query_pairs().into_owned().collect();
        let value = |key: &str| {
            let found: Vec<&str> = pairs
                .iter()
                .filter(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
                .collect();
            assert_eq!(found.len(), 1, "{key} once in {url}");
            found[0].to_owned()
        };
        assert_eq!(value("connect_timeout"), "9", "the operator's value wins");
        assert_eq!(value("sslmode"), "require");
        assert_eq!(value("keepalives"), "1");
        assert_eq!(value("tcp_user_timeout"), "10000");
        let fresh = with_network_timeouts(
            "postgres://u@db/p",
            Duration::from_millis(500),
            Duration::from_secs(1),
        );
        assert!(
            fresh.contains("connect_timeout=2"),
            "libpq's minimum: {fresh}"
        );
    }

    #[test]
    fn multi_host_urls_get_timeouts_and_keep_their_hosts() {
        let url = with_network_timeouts(
            "postgres://u:p@127.0.0.1:5432,127.0.0.1:5433/db?target_session_attrs=read-write",
            Duration::from_secs(3),
            Duration::from_secs(5),
        );
        assert!(
            url.starts_with(
                "postgres://u:p@127.0.0.1:5432,127.0.0.1:5433/db?target_session_attrs=read-write&"
            ),
            "{url}"
        );
        assert!(url.contains("&connect_timeout=3&"), "{url}");
        assert!(url.ends_with("&tcp_user_timeout=10000"), "{url}");
        let shown = DatabaseUrl::parse("postgres://u:hunter2@h1:5432,h2:5433/db?sslmode=require")
            .unwrap_or_else(|e| panic!("{e}"))
            .to_string();
        assert_eq!(
            shown,
            "postgres://u:REDACTED@h1:5432,h2:5433/db?sslmode=require"
        );
    }

    #[test]
    fn display_redacts_password() {
        let url = DatabaseUrl::parse("postgres://user:hunter2@db:5432/p")
            .unwrap_or_else(|e| panic!("{e}"));
        let shown = url.to_string();
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("REDACTED"));
    }
}
