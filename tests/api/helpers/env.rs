//! A test's own database and keys directory, and the servers started on them.

use std::path::PathBuf;

use portcullis::clock::Clock;
use portcullis::config::{Settings, SettingsArgs};
use portcullis::db::Pooler;
use portcullis::startup::Application;
use tempfile::TempDir;

use super::TestApp;
use crate::pg;

/// The storage backend a test runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite in a temporary file.
    Sqlite,
    /// A fresh database on the throwaway Postgres cluster (through PgBouncer as well when
    /// `TEST_VIA_PGBOUNCER` is set: the whole Postgres suite through the pooler).
    Postgres,
    /// A fresh database on the throwaway Postgres cluster, reached through the shared PgBouncer
    /// in transaction pooling, with the server's `db_pooler = transaction` (see
    /// [`pgbouncer_or_skip`]).
    PgBouncer,
}

/// Whether the tests of [`Backend::PgBouncer`] can run: `false` (after saying so) when the
/// `pgbouncer` binary is not installed. `.ci/run` installs it and sets
/// `PORTCULLIS_REQUIRE_PGBOUNCER=1`, which makes a missing one a failure.
pub fn pgbouncer_or_skip() -> bool {
    if crate::pg::bouncer().is_some() {
        return true;
    }
    assert!(
        std::env::var("PORTCULLIS_REQUIRE_PGBOUNCER").is_err(),
        "PORTCULLIS_REQUIRE_PGBOUNCER is set but pgbouncer is not installed"
    );
    eprintln!("PGBOUNCER TEST DID NOT RUN: pgbouncer is not installed (apt-get install pgbouncer)");
    false
}

/// `TEST_VIA_PGBOUNCER=1`: every Postgres test reaches its database through PgBouncer.
fn whole_suite_via_pgbouncer() -> bool {
    std::env::var("TEST_VIA_PGBOUNCER").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// A fresh database plus a keys directory, owned by one test, and the clock of every server the
/// test starts on them.
pub struct TestEnv {
    /// `sqlite://…` or `postgres://…`.
    pub database_url: String,
    /// Directory that holds the KEK file.
    pub keys_dir: PathBuf,
    /// Scratch directory (SQLite file, keys); deleted on drop.
    pub dir: TempDir,
    /// The time of every server spawned here (restarts and several instances included): a test
    /// moves it forward instead of sleeping. Processes started from the binary keep the system
    /// time.
    pub clock: Clock,
    /// What sits between the servers (and [`TestEnv::with_db`]) and the database.
    pub pooler: Pooler,
}

impl TestEnv {
    /// A new empty database on `backend`.
    pub async fn new(backend: Backend) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let database_url = match backend {
            // A nested path also checks that the directory is created on first start.
            Backend::Sqlite => format!("sqlite://{}/data/portcullis.db", dir.path().display()),
            Backend::Postgres | Backend::PgBouncer => {
                tokio::task::spawn_blocking(|| pg::shared().create_database())
                    .await
                    .expect("create database")
            }
        };
        let pooled = backend == Backend::PgBouncer
            || (backend == Backend::Postgres && whole_suite_via_pgbouncer());
        match pooled.then(pg::bouncer).flatten() {
            Some(bouncer) => Self {
                database_url: bouncer.url_of(&database_url),
                pooler: Pooler::Transaction,
                ..Self::on(database_url, dir)
            },
            None if backend == Backend::PgBouncer => {
                panic!("Backend::PgBouncer without pgbouncer: guard with pgbouncer_or_skip()")
            }
            None => Self::on(database_url, dir),
        }
    }

    /// An environment on an existing database (a cluster of the test's own, say), with keys and
    /// scratch files in `dir`.
    pub fn on(database_url: String, dir: TempDir) -> Self {
        Self {
            database_url,
            keys_dir: dir.path().join("keys"),
            dir,
            clock: Clock::system(),
            pooler: Pooler::None,
        }
    }

    /// Settings for a server on this environment, with quick key reloads.
    pub fn args(&self) -> SettingsArgs {
        SettingsArgs {
            database_url: Some(self.database_url.clone()),
            bind: Some("127.0.0.1:0".into()),
            keys_dir: Some(self.keys_dir.clone()),
            key_refresh_interval: Some("200ms".into()),
            workers: Some(2),
            // The API tests register users on both backends.
            open_registration: Some(true),
            db_pooler: Some(self.pooler.as_str().into()),
            ..Default::default()
        }
    }

    /// Starts a server with default test settings.
    pub async fn spawn(&self) -> TestApp {
        self.spawn_with(self.args()).await
    }

    /// Starts a server with `args`, on this environment's clock.
    pub async fn spawn_with(&self, args: SettingsArgs) -> TestApp {
        let settings = Settings::from_args(args).expect("settings");
        let app = Application::build_with_clock(settings, self.clock.clone())
            .await
            .expect("server starts");
        TestApp::running(app)
    }

    /// The database URL, parsed.
    pub fn database(&self) -> portcullis::db::DatabaseUrl {
        portcullis::db::DatabaseUrl::parse(&self.database_url).expect("url")
    }

    /// Opens connections to this environment's database as its servers do (through its
    /// pooler), without their timeouts.
    pub fn connection_manager(&self) -> portcullis::db::ConnectionManager {
        portcullis::db::ConnectionManager::new(self.database()).behind(self.pooler)
    }

    /// Runs `f` with a fresh connection to this environment's database, on a blocking thread.
    pub async fn with_db<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut portcullis::db::DbConn) -> T + Send + 'static,
    ) -> T {
        let manager = self.connection_manager();
        tokio::task::spawn_blocking(move || {
            let mut conn = manager.establish().expect("connect");
            f(&mut conn)
        })
        .await
        .expect("database task")
    }

    /// Every signing key as `portcullis keys list` shows it, read in-process. States, kids and
    /// times do not depend on the schedule; `next` is that of manual rotation.
    pub async fn keys_list(&self) -> serde_json::Value {
        let policy = portcullis::keys::schedule::KeyPolicy {
            rotation_interval: None,
            publish_lead: std::time::Duration::from_secs(1),
            retention: std::time::Duration::from_secs(1),
        };
        let keys = self
            .with_db(move |conn| portcullis::keys::lifecycle::list(conn, &policy).expect("keys"))
            .await;
        serde_json::to_value(keys).expect("keys as JSON")
    }

    /// Rows in `table` (a table name of the schema).
    pub async fn count_rows(&self, table: &'static str) -> i64 {
        self.with_db(move |conn| {
            use diesel::RunQueryDsl;
            #[derive(diesel::QueryableByName)]
            struct Count {
                #[diesel(sql_type = diesel::sql_types::BigInt)]
                n: i64,
            }
            diesel::sql_query(format!("SELECT COUNT(*) AS n FROM {table}"))
                .get_result::<Count>(conn)
                .expect("count")
                .n
        })
        .await
    }
}
