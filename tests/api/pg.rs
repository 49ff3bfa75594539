//! A throwaway PostgreSQL cluster for the test run, started from the installed server binaries
//! (as the `postgres` user when the tests run as root), or `TEST_DATABASE_URL`; and a PgBouncer
//! in transaction pooling in front of it, when the `pgbouncer` binary is installed.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use diesel::{Connection, PgConnection, RunQueryDsl};

/// A running cluster (or an external server) on which tests create their own databases.
pub struct PgCluster {
    /// Admin URL without a database name, e.g. `postgres://postgres@127.0.0.1:5555`.
    base_url: String,
    /// The data directory, when this process started the cluster.
    data_dir: Option<PathBuf>,
    bin_dir: Option<PathBuf>,
    server_options: String,
}

static SHARED: OnceLock<Result<PgCluster, String>> = OnceLock::new();

/// The cluster shared by every test in this run, started on first use.
pub fn shared() -> &'static PgCluster {
    let cluster = SHARED.get_or_init(|| match std::env::var("TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => Ok(PgCluster::external(url)),
        _ => PgCluster::start(),
    });
    match cluster {
        Ok(cluster) => cluster,
        Err(message) => panic!("{message}"),
    }
}

impl PgCluster {
    fn external(url: String) -> Self {
        // Strip the database name: tests create their own databases beside it.
        let base_url = match url.rfind('/') {
            Some(i) if i > "postgres://".len() => url[..i].to_owned(),
            _ => url,
        };
        Self {
            base_url,
            data_dir: None,
            bin_dir: None,
            server_options: String::new(),
        }
    }

    /// Starts a new cluster in a fresh temporary directory on a free port. A watcher process
    /// stops it and deletes the directory once this test process has exited.
    pub fn start() -> Result<Self, String> {
        Self::start_with(&ClusterSetup::default())
    }

    /// [`PgCluster::start`] with files in the data directory and extra server settings (a TLS
    /// certificate and `ssl=on`, a stricter `pg_hba.conf`).
    pub fn start_with(setup: &ClusterSetup) -> Result<Self, String> {
        let bin_dir = find_bin_dir().ok_or_else(|| {
            "PostgreSQL server binaries (initdb, pg_ctl) not found: install them \
             (`apt-get install postgresql`) or set TEST_DATABASE_URL to a server the tests may \
             create databases on"
                .to_owned()
        })?;
        let root = std::env::temp_dir().join(format!(
            "portcullis-pg-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&root).map_err(|e| format!("create {}: {e}", root.display()))?;
        let as_root = is_root();
        if as_root {
            // initdb refuses to run as root; the cluster belongs to the `postgres` user.
            let status = Command::new("chown")
                .args(["postgres:postgres"])
                .arg(&root)
                .status()
                .map_err(|e| format!("chown: {e}"))?;
            if !status.success() {
                return Err(
                    "cannot chown the cluster directory to the postgres user (does it exist?)"
                        .into(),
                );
            }
        }
        let data_dir = root.join("data");
        run_pg(
            &bin_dir,
            as_root,
            "initdb",
            &[
                "-D",
                path_str(&data_dir)?,
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
            ],
        )?;
        for (name, contents) in &setup.data_files {
            write_server_file(&data_dir.join(name), contents, as_root)?;
        }
        let port = free_port()?;
        let mut options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off \
             -c full_page_writes=off -c max_connections=400 -c shared_buffers=64MB",
            path_str(&root)?
        );
        for setting in &setup.settings {
            options.push_str(" -c ");
            options.push_str(setting);
        }
        let log = root.join("postgres.log");
        run_pg(
            &bin_dir,
            as_root,
            "pg_ctl",
            &[
                "-D",
                path_str(&data_dir)?,
                "-o",
                &options,
                "-l",
                path_str(&log)?,
                "-w",
                "start",
            ],
        )?;
        spawn_reaper(&bin_dir, as_root, &root, &data_dir)?;
        Ok(Self {
            base_url: format!("postgres://postgres@127.0.0.1:{port}"),
            data_dir: Some(data_dir),
            bin_dir: Some(bin_dir),
            server_options: options,
        })
    }

    /// Creates a new, empty database and returns its URL.
    pub fn create_database(&self) -> String {
        self.create_database_now()
    }

    /// `host=… port=…` of the server, for a PgBouncer `[databases]` entry; `None` for an
    /// external server (`TEST_DATABASE_URL`, whose credentials PgBouncer would need).
    fn libpq_target(&self) -> Option<String> {
        self.data_dir.as_ref()?;
        let (host, port) = self.base_url.rsplit_once('@')?.1.rsplit_once(':')?;
        Some(format!("host={host} port={port}"))
    }

    /// [`PgCluster::create_database`] off the async executor.
    pub async fn new_database(self: &std::sync::Arc<Self>) -> String {
        let cluster = std::sync::Arc::clone(self);
        tokio::task::spawn_blocking(move || cluster.create_database())
            .await
            .expect("create database")
    }

    /// A cluster of the test's own (one it may stop or restart), started off the executor.
    pub async fn start_own() -> std::sync::Arc<Self> {
        let cluster = tokio::task::spawn_blocking(|| Self::start().expect("cluster starts"))
            .await
            .expect("cluster task");
        std::sync::Arc::new(cluster)
    }

    fn create_database_now(&self) -> String {
        let name = format!("portcullis_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = PgConnection::establish(&format!("{}/postgres", self.base_url))
            .unwrap_or_else(|e| {
                panic!(
                    "cannot connect to the test Postgres at {}: {e}",
                    self.base_url
                )
            });
        diesel::sql_query(format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .expect("CREATE DATABASE");
        format!("{}/{name}", self.base_url)
    }

    /// The URL of the cluster's `postgres` database, as the superuser.
    pub fn admin_url(&self) -> String {
        format!("{}/postgres", self.base_url)
    }

    /// Stops the server (fast shutdown), e.g. to simulate a database outage.
    pub fn stop(&self) {
        self.pg_ctl(&["stop", "-m", "fast", "-w"]);
    }

    /// Starts the server again after [`PgCluster::stop`], on the same port.
    pub fn restart(&self) {
        self.pg_ctl(&["start", "-w", "-o", &self.server_options]);
    }

    fn pg_ctl(&self, args: &[&str]) {
        let (Some(bin), Some(data)) = (&self.bin_dir, &self.data_dir) else {
            panic!("only a cluster started by the tests can be stopped and started");
        };
        let mut full = vec!["-D", data.to_str().expect("utf-8 path")];
        let log = data.with_file_name("postgres.log");
        let log = log.to_str().expect("utf-8 path").to_owned();
        if args.first() == Some(&"start") {
            full.extend(["-l", &log]);
        }
        full.extend_from_slice(args);
        run_pg(bin, is_root(), "pg_ctl", &full).unwrap_or_else(|e| panic!("{e}"));
    }
}

/// What a cluster of its own sets beyond the defaults of [`PgCluster::start`].
#[derive(Default)]
pub struct ClusterSetup {
    /// Files written into the data directory after `initdb` (name, contents), owned by and
    /// readable only by the server's user: PostgreSQL refuses a private key others can read.
    pub data_files: Vec<(&'static str, String)>,
    /// Extra server settings, `name=value` each (passed as `-c name=value`).
    pub settings: Vec<&'static str>,
}

/// Writes `contents` to `path` with mode 0600, owned by the `postgres` user when run as root.
fn write_server_file(path: &Path, contents: &str, as_root: bool) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("create {}: {e}", path.display()))?;
    file.write_all(contents.as_bytes())
        .map_err(|e| format!("write {}: {e}", path.display()))?;
    if as_root {
        let status = Command::new("chown")
            .arg("postgres:postgres")
            .arg(path)
            .status()
            .map_err(|e| format!("chown: {e}"))?;
        if !status.success() {
            return Err(format!("cannot chown {} to postgres", path.display()));
        }
    }
    Ok(())
}

fn find_bin_dir() -> Option<PathBuf> {
    let has_tools = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    if let Ok(output) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
        if has_tools(&dir) {
            return Some(dir);
        }
    }
    let mut candidates: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path().join("bin"))
        .filter(|dir| has_tools(dir))
        .collect();
    candidates.sort();
    candidates.pop().or_else(|| {
        std::env::var_os("PATH")
            .and_then(|paths| std::env::split_paths(&paths).find(|dir| has_tools(dir)))
    })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn path_str(path: &Path) -> Result<&str, String> {
    path.to_str()
        .ok_or_else(|| format!("non-UTF-8 path {}", path.display()))
}

fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}

fn run_pg(bin_dir: &Path, as_root: bool, tool: &str, args: &[&str]) -> Result<(), String> {
    let program = bin_dir.join(tool);
    let mut command = if as_root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(&program);
        c
    } else {
        Command::new(&program)
    };
    let output = command
        .args(args)
        .current_dir("/")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", program.display()))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{tool} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// Stops the cluster and removes its directory once the test process is gone, however it ends.
fn spawn_reaper(bin_dir: &Path, as_root: bool, root: &Path, data_dir: &Path) -> Result<(), String> {
    let pg_ctl = bin_dir.join("pg_ctl");
    let stop = if as_root {
        format!(
            "runuser -u postgres -- '{}' -D '{}' -m immediate stop",
            pg_ctl.display(),
            data_dir.display()
        )
    } else {
        format!(
            "'{}' -D '{}' -m immediate stop",
            pg_ctl.display(),
            data_dir.display()
        )
    };
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 1; done; {stop} >/dev/null 2>&1; rm -rf '{root}'",
        pid = std::process::id(),
        root = root.display()
    );
    Command::new("sh")
        .args(["-c", &script])
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map(|_| ())
        .map_err(|e| format!("cannot start the cluster reaper: {e}"))
}

/// A PgBouncer (`pool_mode = transaction`) in front of the shared cluster: tests reach their
/// database through it as production deployments behind a transaction pooler do.
pub struct PgBouncer {
    port: u16,
}

static BOUNCER: OnceLock<Option<PgBouncer>> = OnceLock::new();

/// The PgBouncer shared by every test in this run, started on first use; `None` when the
/// `pgbouncer` binary is not installed (or the tests run on an external `TEST_DATABASE_URL`).
/// Panics when it is installed but does not start.
pub fn bouncer() -> Option<&'static PgBouncer> {
    BOUNCER
        .get_or_init(|| PgBouncer::in_front_of(shared()))
        .as_ref()
}

impl PgBouncer {
    /// A PgBouncer of its own in front of `cluster` (one the test started), or `None` when the
    /// `pgbouncer` binary is not installed. Panics when it does not start.
    pub fn in_front_of(cluster: &PgCluster) -> Option<Self> {
        let program = find_program("pgbouncer")?;
        let target = cluster.libpq_target()?;
        Some(Self::start(&program, &target).unwrap_or_else(|e| panic!("{e}")))
    }

    /// Starts PgBouncer (as the `postgres` user when run as root: it refuses root) on a free
    /// loopback port, in a fresh directory with its own configuration; a watcher stops it and
    /// deletes the directory once this test process has exited.
    fn start(program: &Path, target: &str) -> Result<Self, String> {
        let root = std::env::temp_dir().join(format!(
            "portcullis-pgbouncer-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&root).map_err(|e| format!("create {}: {e}", root.display()))?;
        let port = free_port()?;
        let dir = path_str(&root)?;
        let as_root = is_root();
        // Each test database is a pool of its own: few server connections each, idle ones
        // closed soon, and a cap per user below the cluster's max_connections (400, shared
        // with the tests that connect directly) so that clients queue instead of failing.
        // A query waits for a server connection at most `query_wait_timeout` (the pool
        // timeout of the servers' default settings), then its client is disconnected: while
        // the database is down, Portcullis answers 503 after that wait instead of after
        // PgBouncer's default of 120 s.
        let config = format!(
            "[databases]\n* = {target}\n\n[pgbouncer]\nlisten_addr = 127.0.0.1\n\
             listen_port = {port}\nunix_socket_dir =\nauth_type = trust\n\
             auth_file = {dir}/userlist.txt\npool_mode = transaction\nmax_client_conn = 4000\n\
             default_pool_size = 8\nmax_user_connections = 150\nserver_idle_timeout = 5\n\
             query_wait_timeout = 5\n\
             ignore_startup_parameters = extra_float_digits\npidfile = {dir}/pgbouncer.pid\n\
             logfile = {dir}/pgbouncer.log\n"
        );
        write_server_file(&root.join("pgbouncer.ini"), &config, as_root)?;
        write_server_file(&root.join("userlist.txt"), "\"postgres\" \"\"\n", as_root)?;
        if as_root {
            let status = Command::new("chown")
                .args(["postgres:postgres"])
                .arg(&root)
                .status()
                .map_err(|e| format!("chown: {e}"))?;
            if !status.success() {
                return Err("cannot chown the PgBouncer directory to postgres".into());
            }
        }
        let mut command = if as_root {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        };
        let output = command
            .args(["-d", &format!("{dir}/pgbouncer.ini")])
            .current_dir("/")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {}: {e}", program.display()))?;
        if !output.status.success() {
            return Err(format!(
                "pgbouncer failed to start: {}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 1; done; \
             kill \"$(cat '{dir}/pgbouncer.pid')\" 2>/dev/null; sleep 1; rm -rf '{dir}'",
            pid = std::process::id(),
        );
        Command::new("sh")
            .args(["-c", &script])
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start the PgBouncer reaper: {e}"))?;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if std::time::Instant::now() > deadline {
                return Err(format!(
                    "pgbouncer did not listen on {port} (log: {dir}/pgbouncer.log)"
                ));
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Ok(Self { port })
    }

    /// `url` (a database of the shared cluster) reached through this PgBouncer.
    pub fn url_of(&self, url: &str) -> String {
        let database = url.rsplit_once('/').map_or(url, |(_, name)| name);
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }
}

/// `name` on the `PATH`, or in `/usr/sbin` (Debian's `pgbouncer`, off a user's `PATH`).
fn find_program(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .chain([PathBuf::from("/usr/sbin")])
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
}
