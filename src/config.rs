//! Settings: every knob has a default, an environment variable and a flag; parsed once, then injected.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::accounts::AccountSettings;
use crate::accounts::password::HashParams;
use crate::db::{DatabaseUrl, PoolSettings};
use crate::http::HttpSettings;
use crate::keys::schedule::KeyPolicy;
use crate::keys::{KeySettings, RsaKeySize, SigningAlg};
use crate::oidc::TokenSettings;
pub use crate::oidc::issuer::Issuer;

/// Raw settings as given on the command line or in the environment. Every field is optional; the
/// defaults are applied by [`Settings::from_args`], so tests can build one with `..Default::default()`.
/// Deliberately not `Debug`: the database URL may hold a password and the KEK is a secret.
#[derive(Args, Clone, Default, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SettingsArgs {
    /// A TOML configuration file (`portcullis.toml`); flags and environment variables override
    /// its values. Keys are the settings' names in snake_case, e.g. `database_url`.
    #[arg(long, env = "PORTCULLIS_CONFIG", global = true)]
    #[serde(skip)]
    pub config: Option<PathBuf>,

    /// Database URL: `sqlite://PATH` (embedded default) or `postgres://…`.
    /// Default `sqlite://data/portcullis.db`; `DATABASE_URL` is read when this is unset.
    #[arg(
        long,
        env = "PORTCULLIS_DATABASE_URL",
        global = true,
        hide_env_values = true
    )]
    pub database_url: Option<String>,

    /// Address to listen on. Default `127.0.0.1:8080`.
    #[arg(long, env = "PORTCULLIS_BIND", global = true)]
    pub bind: Option<String>,

    /// Public issuer URL, used byte-identically in every token and document; every route is
    /// served under its path. Default `http://<bind>` (`http://127.0.0.1:<port>` when bound to
    /// every interface).
    #[arg(long, env = "PORTCULLIS_ISSUER", global = true)]
    pub issuer: Option<String>,

    /// Accept a plain-http issuer on a host that is not loopback (`true`/`false`): codes, tokens,
    /// passwords and cookies then cross the network unencrypted. Default false: such an issuer
    /// is refused at start.
    #[arg(long, env = "PORTCULLIS_INSECURE_HTTP_ISSUER", global = true)]
    pub insecure_http_issuer: Option<bool>,

    /// Directory holding the key-encryption key file `kek`. Default `keys`.
    #[arg(long, env = "PORTCULLIS_KEYS_DIR", global = true)]
    pub keys_dir: Option<PathBuf>,

    /// Key-encryption key: 32 bytes, base64. Takes precedence over `<keys-dir>/kek`.
    #[arg(long, env = "PORTCULLIS_KEK", global = true, hide_env_values = true)]
    pub kek: Option<SecretString>,

    /// `max-age` of the JWKS and discovery responses, in seconds. Default 300.
    #[arg(long, env = "PORTCULLIS_JWKS_MAX_AGE", global = true)]
    pub jwks_max_age: Option<u64>,

    /// RSA modulus size for new RS256 keys: 2048, 3072 or 4096. Default 2048.
    #[arg(long, env = "PORTCULLIS_RSA_KEY_BITS", global = true)]
    pub rsa_key_bits: Option<usize>,

    /// Maximum connections in the database pool. Default 10.
    #[arg(long, env = "PORTCULLIS_DB_POOL_SIZE", global = true)]
    pub db_pool_size: Option<u32>,

    /// How long a request waits for a pooled connection before it gets a 503 (`5s`, `500ms`). Default 5s.
    #[arg(long, env = "PORTCULLIS_DB_POOL_TIMEOUT", global = true)]
    pub db_pool_timeout: Option<String>,

    /// The longest a single database statement may run (PostgreSQL `statement_timeout`) before it
    /// is cancelled and the request gets a 503. Default 5s.
    #[arg(long, env = "PORTCULLIS_DB_STATEMENT_TIMEOUT", global = true)]
    pub db_statement_timeout: Option<String>,

    /// How often a running server re-reads the signing keys from the database (and the rotator
    /// checks the schedule). Default 2s.
    #[arg(long, env = "PORTCULLIS_KEY_REFRESH_INTERVAL", global = true)]
    pub key_refresh_interval: Option<String>,

    /// HTTP worker threads. Default: one per CPU core.
    #[arg(long, env = "PORTCULLIS_WORKERS", global = true)]
    pub workers: Option<usize>,

    /// Argon2id memory cost in KiB. Default 19456 (OWASP).
    #[arg(long, env = "PORTCULLIS_ARGON2_MEMORY_KIB", global = true)]
    pub argon2_memory_kib: Option<u32>,

    /// Argon2id passes. Default 2 (OWASP).
    #[arg(long, env = "PORTCULLIS_ARGON2_ITERATIONS", global = true)]
    pub argon2_iterations: Option<u32>,

    /// Argon2id lanes. Default 1 (OWASP).
    #[arg(long, env = "PORTCULLIS_ARGON2_PARALLELISM", global = true)]
    pub argon2_parallelism: Option<u32>,

    /// Password hashes computed at once at most. Default: one per CPU core.
    #[arg(long, env = "PORTCULLIS_HASHING_CONCURRENCY", global = true)]
    pub hashing_concurrency: Option<usize>,

    /// Requests that may wait for a hashing thread; beyond them a login or registration gets 503
    /// with `Retry-After` at once. Default: 8 per hashing thread.
    #[arg(long, env = "PORTCULLIS_HASHING_QUEUE", global = true)]
    pub hashing_queue: Option<usize>,

    /// Access-token lifetime (`900s`, `15m`). Default 15m.
    #[arg(long, env = "PORTCULLIS_ACCESS_TOKEN_TTL", global = true)]
    pub access_token_ttl: Option<String>,

    /// ID-token lifetime (`15m`). Default 15m.
    #[arg(long, env = "PORTCULLIS_ID_TOKEN_TTL", global = true)]
    pub id_token_ttl: Option<String>,

    /// Access-token algorithm: ES256 or RS256. Default ES256.
    #[arg(long, env = "PORTCULLIS_ACCESS_TOKEN_ALG", global = true)]
    pub access_token_alg: Option<String>,

    /// Audience of access tokens from the JSON API. Default: the issuer.
    #[arg(long, env = "PORTCULLIS_ACCESS_TOKEN_AUDIENCE", global = true)]
    pub access_token_audience: Option<String>,

    /// Whether anyone may register through the JSON API (`true`/`false`). Default: on for the
    /// embedded SQLite setup, off on Postgres (production), where operators create users.
    #[arg(long, env = "PORTCULLIS_OPEN_REGISTRATION", global = true)]
    pub open_registration: Option<bool>,

    /// A refresh-token family ends after this long without a refresh. Default 7d.
    #[arg(long, env = "PORTCULLIS_REFRESH_IDLE_TTL", global = true)]
    pub refresh_idle_ttl: Option<String>,

    /// A refresh-token family ends this long after login, whatever its use. Default 30d.
    #[arg(long, env = "PORTCULLIS_REFRESH_ABSOLUTE_TTL", global = true)]
    pub refresh_absolute_ttl: Option<String>,

    /// How long a rotated refresh token may be presented once more, while its successor is
    /// unused (a lost response). Default 0s: never.
    #[arg(long, env = "PORTCULLIS_REFRESH_REUSE_GRACE", global = true)]
    pub refresh_reuse_grace: Option<String>,

    /// Login attempts per account from one client network (or from one trusted device) in one
    /// window before 429. Default 5.
    #[arg(long, env = "PORTCULLIS_LOGIN_MAX_ATTEMPTS", global = true)]
    pub login_max_attempts: Option<u32>,

    /// Login attempts per account from all untrusted devices together in one window before 429
    /// (a trusted device keeps its own budget). Default 100.
    #[arg(long, env = "PORTCULLIS_LOGIN_MAX_ATTEMPTS_PER_ACCOUNT", global = true)]
    pub login_max_attempts_per_account: Option<u32>,

    /// Login attempts per client IP in one window before 429. Default 20.
    #[arg(long, env = "PORTCULLIS_LOGIN_MAX_ATTEMPTS_PER_IP", global = true)]
    pub login_max_attempts_per_ip: Option<u32>,

    /// Registrations per client IP in one login window before 429, counted before any hashing.
    /// Default 10.
    #[arg(long, env = "PORTCULLIS_REGISTER_MAX_PER_IP", global = true)]
    pub register_max_per_ip: Option<u32>,

    /// The login throttling window. Default 15m.
    #[arg(long, env = "PORTCULLIS_LOGIN_WINDOW", global = true)]
    pub login_window: Option<String>,

    /// How often the janitor deletes what ended more than a day ago (on one instance). Default 5m.
    #[arg(long, env = "PORTCULLIS_JANITOR_INTERVAL", global = true)]
    pub janitor_interval: Option<String>,

    /// Browser origins allowed to call the JSON API cross-origin (comma-separated, exact, e.g.
    /// `https://app.example.com`). Default: none (CORS off).
    #[arg(long, env = "PORTCULLIS_CORS_ORIGINS", global = true)]
    pub cors_origins: Option<String>,

    /// Proxies whose `X-Forwarded-For` is trusted (comma-separated IPs). Default: none.
    #[arg(long, env = "PORTCULLIS_TRUSTED_PROXIES", global = true)]
    pub trusted_proxies: Option<String>,

    /// Automatic signing-key rotation period (`30d`); `0` rotates only on demand. Default 30d.
    #[arg(long, env = "PORTCULLIS_KEY_ROTATION_INTERVAL", global = true)]
    pub key_rotation_interval: Option<String>,

    /// How long a new key is published before it signs. At least the JWKS max-age plus the key
    /// refresh interval. Default: JWKS max-age + 60s.
    #[arg(long, env = "PORTCULLIS_KEY_PUBLISH_LEAD", global = true)]
    pub key_publish_lead: Option<String>,

    /// How long a retired key stays published. At least the longest token lifetime. Default: the
    /// longest token lifetime + 60s verifier leeway + the key refresh interval.
    #[arg(long, env = "PORTCULLIS_KEY_RETENTION", global = true)]
    pub key_retention: Option<String>,

    /// How long a client may take to send a request's headers before it gets 408 and the
    /// connection closes (slowloris). Default 10s.
    #[arg(long, env = "PORTCULLIS_REQUEST_TIMEOUT", global = true)]
    pub request_timeout: Option<String>,

    /// On SIGTERM/SIGINT, how long readiness answers 503 (so load balancers stop sending traffic)
    /// before the listener closes; in-flight requests then get up to 10 s more. Default 5s.
    #[arg(long, env = "PORTCULLIS_SHUTDOWN_DRAIN", global = true)]
    pub shutdown_drain: Option<String>,

    /// A separate address for the admin API (`/admin/…`), which the public listener then does not
    /// serve. Default: none (admin API on the public listener, bearer-authenticated).
    #[arg(long, env = "PORTCULLIS_ADMIN_BIND", global = true)]
    pub admin_bind: Option<String>,
}

/// Validated settings, one struct per concern; each service gets only its own part. Construct
/// with [`Settings::from_args`].
#[derive(Clone, Debug)]
pub struct Settings {
    /// The listeners, the issuer and the process's own tasks (read by `startup` only).
    pub server: ServerSettings,
    /// The database and its pool.
    pub db: PoolSettings,
    /// Signing keys: KEK, key size, rotation schedule, JWKS caching.
    pub keys: KeySettings,
    /// Password hashing, login and registration throttling, open registration.
    pub accounts: AccountSettings,
    /// Token lifetimes, access-token algorithm and audience, refresh families.
    pub tokens: TokenSettings,
    /// CORS, trusted proxies, request deadlines.
    pub http: HttpSettings,
}

/// What only the process itself needs: where it listens, its issuer, its background tasks.
#[derive(Clone, Debug)]
pub struct ServerSettings {
    /// Listen address (port 0 picks a free port).
    pub bind: SocketAddr,
    /// Explicit issuer; `None` means [`Issuer::from_bind`] of the bound address.
    pub issuer: Option<Issuer>,
    /// A plain-http issuer on a non-loopback host was explicitly accepted.
    pub insecure_http_issuer: bool,
    /// Separate admin listener, if any.
    pub admin_bind: Option<SocketAddr>,
    /// HTTP workers.
    pub workers: Option<usize>,
    /// Readiness drain before shutdown.
    pub shutdown_drain: Duration,
    /// Janitor interval.
    pub janitor_interval: Duration,
}

/// A configuration value that was rejected; the message names the setting.
#[derive(Debug, thiserror::Error)]
#[error("{setting}: {reason}")]
pub struct ConfigError {
    /// The environment variable naming the setting.
    pub setting: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

impl ConfigError {
    fn new(setting: &'static str, reason: impl Into<String>) -> Self {
        Self {
            setting,
            reason: reason.into(),
        }
    }
}

/// Default database of the embedded setup.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/portcullis.db";
/// Default listen address.
pub const DEFAULT_BIND: &str = "127.0.0.1:8080";

impl Settings {
    /// Applies defaults and validates every value.
    pub fn from_args(args: SettingsArgs) -> Result<Self, ConfigError> {
        let database_url = args
            .database_url
            .or_else(|| std::env::var("DATABASE_URL").ok().filter(|v| !v.is_empty()))
            .unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned());
        let database = DatabaseUrl::parse(&database_url)
            .map_err(|reason| ConfigError::new("PORTCULLIS_DATABASE_URL", reason))?;

        let bind_text = args.bind.unwrap_or_else(|| DEFAULT_BIND.to_owned());
        let bind: SocketAddr = bind_text.parse().map_err(|_| {
            ConfigError::new(
                "PORTCULLIS_BIND",
                format!("`{bind_text}` is not an IP address and port such as 127.0.0.1:8080"),
            )
        })?;

        let issuer = args
            .issuer
            .map(|text| Issuer::parse(&text))
            .transpose()
            .map_err(|reason| ConfigError::new("PORTCULLIS_ISSUER", reason))?;
        let insecure_http_issuer = args.insecure_http_issuer.unwrap_or(false);
        refuse_plain_http_issuer(issuer.as_ref(), bind, insecure_http_issuer)?;

        let rsa_key_size = match args.rsa_key_bits.unwrap_or(2048) {
            2048 => RsaKeySize::Rsa2048,
            3072 => RsaKeySize::Rsa3072,
            4096 => RsaKeySize::Rsa4096,
            other => {
                return Err(ConfigError::new(
                    "PORTCULLIS_RSA_KEY_BITS",
                    format!("{other} is not one of 2048, 3072, 4096"),
                ));
            }
        };

        let db_pool_size = args.db_pool_size.unwrap_or(10);
        if db_pool_size == 0 {
            return Err(ConfigError::new(
                "PORTCULLIS_DB_POOL_SIZE",
                "must be at least 1",
            ));
        }
        let db_pool_timeout = parse_setting_duration(
            "PORTCULLIS_DB_POOL_TIMEOUT",
            args.db_pool_timeout.as_deref(),
            Duration::from_secs(5),
        )?;
        let key_refresh_interval = parse_setting_duration(
            "PORTCULLIS_KEY_REFRESH_INTERVAL",
            args.key_refresh_interval.as_deref(),
            Duration::from_secs(2),
        )?;
        if db_pool_timeout.is_zero() || key_refresh_interval.is_zero() {
            return Err(ConfigError::new(
                "PORTCULLIS_DB_POOL_TIMEOUT/PORTCULLIS_KEY_REFRESH_INTERVAL",
                "must be greater than zero",
            ));
        }
        let db_statement_timeout = parse_setting_duration(
            "PORTCULLIS_DB_STATEMENT_TIMEOUT",
            args.db_statement_timeout.as_deref(),
            Duration::from_secs(5),
        )?;
        if db_statement_timeout < Duration::from_millis(1) {
            return Err(ConfigError::new(
                "PORTCULLIS_DB_STATEMENT_TIMEOUT",
                "must be at least 1ms (a statement may not run unbounded)",
            ));
        }
        if args.workers == Some(0) {
            return Err(ConfigError::new("PORTCULLIS_WORKERS", "must be at least 1"));
        }

        let password_hashing = HashParams {
            memory_kib: args
                .argon2_memory_kib
                .unwrap_or(HashParams::default().memory_kib),
            iterations: args
                .argon2_iterations
                .unwrap_or(HashParams::default().iterations),
            parallelism: args
                .argon2_parallelism
                .unwrap_or(HashParams::default().parallelism),
        };
        argon2::Params::new(
            password_hashing.memory_kib,
            password_hashing.iterations,
            password_hashing.parallelism,
            None,
        )
        .map_err(|e| ConfigError::new("PORTCULLIS_ARGON2_*", e.to_string()))?;
        let hashing_concurrency = match args.hashing_concurrency {
            Some(0) => {
                return Err(ConfigError::new(
                    "PORTCULLIS_HASHING_CONCURRENCY",
                    "must be at least 1",
                ));
            }
            Some(n) => n,
            None => std::thread::available_parallelism().map_or(1, usize::from),
        };
        let hashing_queue = args.hashing_queue.unwrap_or_else(|| {
            hashing_concurrency.saturating_mul(crate::accounts::password::DEFAULT_QUEUE_PER_THREAD)
        });

        let access_token_ttl = parse_setting_duration(
            "PORTCULLIS_ACCESS_TOKEN_TTL",
            args.access_token_ttl.as_deref(),
            Duration::from_secs(900),
        )?;
        let access_token_alg = match args.access_token_alg.as_deref() {
            None => SigningAlg::Es256,
            Some(name) => SigningAlg::parse(name).ok_or_else(|| {
                ConfigError::new(
                    "PORTCULLIS_ACCESS_TOKEN_ALG",
                    format!("`{name}` is not ES256 or RS256"),
                )
            })?,
        };
        let refresh_idle_ttl = parse_setting_duration(
            "PORTCULLIS_REFRESH_IDLE_TTL",
            args.refresh_idle_ttl.as_deref(),
            Duration::from_secs(7 * 86_400),
        )?;
        let refresh_absolute_ttl = parse_setting_duration(
            "PORTCULLIS_REFRESH_ABSOLUTE_TTL",
            args.refresh_absolute_ttl.as_deref(),
            Duration::from_secs(30 * 86_400),
        )?;
        let refresh_reuse_grace = parse_setting_duration(
            "PORTCULLIS_REFRESH_REUSE_GRACE",
            args.refresh_reuse_grace.as_deref(),
            Duration::ZERO,
        )?;
        if refresh_reuse_grace > Duration::from_secs(60) {
            return Err(ConfigError::new(
                "PORTCULLIS_REFRESH_REUSE_GRACE",
                "must be at most 60s: a longer window weakens reuse detection",
            ));
        }
        let login_window = parse_setting_duration(
            "PORTCULLIS_LOGIN_WINDOW",
            args.login_window.as_deref(),
            Duration::from_secs(900),
        )?;
        let janitor_interval = parse_setting_duration(
            "PORTCULLIS_JANITOR_INTERVAL",
            args.janitor_interval.as_deref(),
            Duration::from_secs(300),
        )?;
        if janitor_interval.is_zero() {
            return Err(ConfigError::new(
                "PORTCULLIS_JANITOR_INTERVAL",
                "must be greater than zero",
            ));
        }
        let id_token_ttl = parse_setting_duration(
            "PORTCULLIS_ID_TOKEN_TTL",
            args.id_token_ttl.as_deref(),
            Duration::from_secs(900),
        )?;
        if id_token_ttl.is_zero() {
            return Err(ConfigError::new(
                "PORTCULLIS_ID_TOKEN_TTL",
                "must be greater than zero",
            ));
        }
        if access_token_ttl.is_zero()
            || refresh_idle_ttl.is_zero()
            || refresh_absolute_ttl.is_zero()
            || login_window.is_zero()
        {
            return Err(ConfigError::new(
                "PORTCULLIS_ACCESS_TOKEN_TTL/PORTCULLIS_REFRESH_*_TTL/PORTCULLIS_LOGIN_WINDOW",
                "must be greater than zero",
            ));
        }
        let trusted_proxies = args
            .trusted_proxies
            .as_deref()
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| {
                p.parse::<IpAddr>().map_err(|_| {
                    ConfigError::new(
                        "PORTCULLIS_TRUSTED_PROXIES",
                        format!("`{p}` is not an IP address"),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;

        let cors_origins = args
            .cors_origins
            .as_deref()
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|o| !o.is_empty())
            .map(|origin| {
                let parsed = url::Url::parse(origin).ok().filter(|u| {
                    matches!(u.scheme(), "http" | "https")
                        && u.path() == "/"
                        && !origin.ends_with('/')
                });
                parsed.map(|_| origin.to_owned()).ok_or_else(|| {
                    ConfigError::new(
                        "PORTCULLIS_CORS_ORIGINS",
                        format!("`{origin}` is not an origin such as https://app.example.com"),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;

        let jwks_max_age = Duration::from_secs(args.jwks_max_age.unwrap_or(300));
        let key_policy = key_policy(
            [
                args.key_rotation_interval.as_deref(),
                args.key_publish_lead.as_deref(),
                args.key_retention.as_deref(),
            ],
            jwks_max_age,
            key_refresh_interval,
            longest_token_lifetime(access_token_ttl, id_token_ttl),
        )?;
        let admin_bind = args
            .admin_bind
            .as_deref()
            .filter(|text| !text.is_empty())
            .map(|text| {
                text.parse::<SocketAddr>().map_err(|_| {
                    ConfigError::new(
                        "PORTCULLIS_ADMIN_BIND",
                        format!("`{text}` is not an IP address and port such as 127.0.0.1:8081"),
                    )
                })
            })
            .transpose()?;

        let shutdown_drain = parse_setting_duration(
            "PORTCULLIS_SHUTDOWN_DRAIN",
            args.shutdown_drain.as_deref(),
            Duration::from_secs(5),
        )?;
        let request_timeout = parse_setting_duration(
            "PORTCULLIS_REQUEST_TIMEOUT",
            args.request_timeout.as_deref(),
            Duration::from_secs(10),
        )?;
        if request_timeout.is_zero() {
            return Err(ConfigError::new(
                "PORTCULLIS_REQUEST_TIMEOUT",
                "must be greater than zero",
            ));
        }
        let open_registration = args.open_registration.unwrap_or(database.is_sqlite());
        Ok(Self {
            server: ServerSettings {
                bind,
                issuer,
                insecure_http_issuer,
                admin_bind,
                workers: args.workers,
                shutdown_drain,
                janitor_interval,
            },
            db: PoolSettings {
                url: database,
                size: db_pool_size,
                checkout_timeout: db_pool_timeout,
                statement_timeout: db_statement_timeout,
            },
            keys: KeySettings {
                keys_dir: args.keys_dir.unwrap_or_else(|| PathBuf::from("keys")),
                kek: args
                    .kek
                    .map(|kek| secrecy::SecretString::from(kek.expose().to_owned())),
                rsa_key_size,
                policy: key_policy,
                jwks_max_age,
                refresh_interval: key_refresh_interval,
            },
            accounts: AccountSettings {
                password_hashing,
                hashing_concurrency,
                hashing_queue,
                open_registration,
                login_max_attempts: args.login_max_attempts.unwrap_or(5).max(1),
                login_max_attempts_per_account: args
                    .login_max_attempts_per_account
                    .unwrap_or(100)
                    .max(1),
                login_max_attempts_per_ip: args.login_max_attempts_per_ip.unwrap_or(20).max(1),
                register_max_per_ip: args.register_max_per_ip.unwrap_or(10).max(1),
                login_window,
            },
            tokens: TokenSettings {
                access_token_ttl,
                id_token_ttl,
                access_token_alg,
                access_token_audience: args.access_token_audience.filter(|a| !a.is_empty()),
                refresh_idle_ttl,
                refresh_absolute_ttl,
                refresh_reuse_grace,
            },
            http: HttpSettings {
                trusted_proxies,
                cors_origins,
                request_timeout,
            },
        })
    }
}

/// Refuses a plain-http issuer (explicit, or the default derived from `bind`) on a host that is
/// not loopback, unless `insecure` says the operator accepts it: over plain http on a network,
/// codes, tokens, passwords and session cookies can be read and changed by anyone on the path.
fn refuse_plain_http_issuer(
    issuer: Option<&Issuer>,
    bind: SocketAddr,
    insecure: bool,
) -> Result<(), ConfigError> {
    let effective = issuer.cloned().unwrap_or_else(|| Issuer::from_bind(bind));
    if insecure || effective.is_https() || effective.is_loopback() {
        return Ok(());
    }
    let which = if issuer.is_some() {
        format!("`{effective}`")
    } else {
        format!("unset, so the issuer defaults to `{effective}` (from PORTCULLIS_BIND), which")
    };
    Err(ConfigError::new(
        "PORTCULLIS_ISSUER",
        format!(
            "{which} is plain http on a host that is not loopback: codes, tokens, passwords and cookies would cross the network unencrypted; use an https issuer, or set PORTCULLIS_INSECURE_HTTP_ISSUER=true to accept this"
        ),
    ))
}

/// The longest lifetime of any token a key signs.
fn longest_token_lifetime(access_token_ttl: Duration, id_token_ttl: Duration) -> Duration {
    access_token_ttl.max(id_token_ttl)
}

/// The verifier leeway resource servers may apply past `exp` (RFC 9068 verifiers, ours included).
pub const VERIFIER_LEEWAY: Duration = Duration::from_secs(60);

/// The rotation settings, refused when they would break the key invariants: a key signs only
/// after every cached JWKS holds it, and stays published while a token it signed is live.
fn key_policy(
    [interval, lead, retention]: [Option<&str>; 3],
    jwks_max_age: Duration,
    key_refresh_interval: Duration,
    longest_token: Duration,
) -> Result<KeyPolicy, ConfigError> {
    let rotation_interval = parse_setting_duration(
        "PORTCULLIS_KEY_ROTATION_INTERVAL",
        interval,
        Duration::from_secs(30 * 86_400),
    )?;
    // Every instance publishes a new key within one refresh interval; a resource server then
    // keeps its cached copy for at most max-age.
    let min_lead = jwks_max_age + key_refresh_interval;
    let publish_lead = parse_setting_duration(
        "PORTCULLIS_KEY_PUBLISH_LEAD",
        lead,
        (jwks_max_age + Duration::from_secs(60)).max(min_lead),
    )?;
    if publish_lead < min_lead {
        return Err(ConfigError::new(
            "PORTCULLIS_KEY_PUBLISH_LEAD",
            format!(
                "{}s is shorter than the JWKS max-age plus the key refresh interval ({}s): a resource server's cached JWKS could lack the new key when it starts signing",
                publish_lead.as_secs_f64(),
                min_lead.as_secs_f64()
            ),
        ));
    }
    if !rotation_interval.is_zero() && rotation_interval <= publish_lead {
        return Err(ConfigError::new(
            "PORTCULLIS_KEY_ROTATION_INTERVAL",
            format!(
                "must be 0 (manual) or longer than the publish lead ({}s)",
                publish_lead.as_secs_f64()
            ),
        ));
    }
    let retention = parse_setting_duration(
        "PORTCULLIS_KEY_RETENTION",
        retention,
        longest_token + VERIFIER_LEEWAY + key_refresh_interval,
    )?;
    if retention < longest_token {
        return Err(ConfigError::new(
            "PORTCULLIS_KEY_RETENTION",
            format!(
                "{}s is shorter than the longest token lifetime ({}s): tokens would stop verifying before they expire",
                retention.as_secs_f64(),
                longest_token.as_secs_f64()
            ),
        ));
    }
    Ok(KeyPolicy {
        rotation_interval: (!rotation_interval.is_zero()).then_some(rotation_interval),
        publish_lead,
        retention,
    })
}

fn parse_setting_duration(
    setting: &'static str,
    value: Option<&str>,
    default: Duration,
) -> Result<Duration, ConfigError> {
    value
        .map(|text| parse_duration(text).map_err(|reason| ConfigError::new(setting, reason)))
        .transpose()
        .map(|parsed| parsed.unwrap_or(default))
}

/// Parses `500ms`, `5s`, `10m`, `12h`, `30d` or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration such as 500ms, 5s, 10m, 12h or 30d"))?;
    let seconds_per_unit = match unit {
        "ms" => return Ok(Duration::from_millis(number)),
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => {
            return Err(format!(
                "`{text}` has an unknown unit (use ms, s, m, h or d)"
            ));
        }
    };
    number
        .checked_mul(seconds_per_unit)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("`{text}` is too large"))
}

/// A secret string whose `Debug` never shows the value.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct SecretString(String);

impl SecretString {
    /// The secret value; call only where it is used, never to log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for SecretString {
    type Err = std::convert::Infallible;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(Self(text.to_owned()))
    }
}

impl std::fmt::Debug for SecretString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretString(<redacted>)")
    }
}

impl SettingsArgs {
    /// These settings over those of the configuration file they name, if any: a value given as a
    /// flag or environment variable wins over the file's. An unreadable file, malformed TOML or
    /// an unknown key is an error naming the file.
    pub fn with_config_file(self) -> Result<Self, ConfigError> {
        let Some(path) = self.config.clone() else {
            return Ok(self);
        };
        let fail = |reason: String| {
            ConfigError::new("PORTCULLIS_CONFIG", format!("{}: {reason}", path.display()))
        };
        let text = std::fs::read_to_string(&path).map_err(|e| fail(e.to_string()))?;
        let file: SettingsArgs = toml::from_str(&text).map_err(|e| fail(e.message().to_owned()))?;
        let mut merged = serde_json::to_value(file).map_err(|e| fail(e.to_string()))?;
        let given = serde_json::to_value(&self).map_err(|e| fail(e.to_string()))?;
        if let (Some(merged), Some(given)) = (merged.as_object_mut(), given.as_object()) {
            for (key, value) in given {
                if !value.is_null() {
                    merged.insert(key.clone(), value.clone());
                }
            }
        }
        let mut args: SettingsArgs =
            serde_json::from_value(merged).map_err(|e| fail(e.to_string()))?;
        args.config = self.config;
        Ok(args)
    }
}

impl Settings {
    /// The effective settings as JSON, secrets redacted (`portcullis config check`).
    pub fn redacted(&self) -> serde_json::Value {
        let secs = |d: Duration| format!("{}s", d.as_secs_f64());
        let Self {
            server,
            db,
            keys,
            accounts,
            tokens,
            http,
        } = self;
        serde_json::json!({
            "database_url": db.url.to_string(),
            "bind": server.bind.to_string(),
            "issuer": server.issuer.as_ref().map(ToString::to_string),
            "insecure_http_issuer": server.insecure_http_issuer,
            "keys_dir": keys.keys_dir.display().to_string(),
            "kek": keys.kek.as_ref().map(|_| "<redacted>"),
            "jwks_max_age": keys.jwks_max_age.as_secs(),
            "key_rotation_interval": keys.policy.rotation_interval.map_or_else(|| "0".into(), secs),
            "key_publish_lead": secs(keys.policy.publish_lead),
            "key_retention": secs(keys.policy.retention),
            "key_refresh_interval": secs(keys.refresh_interval),
            "admin_bind": server.admin_bind.map(|a| a.to_string()),
            "shutdown_drain": secs(server.shutdown_drain),
            "request_timeout": secs(http.request_timeout),
            "rsa_key_bits": match keys.rsa_key_size {
                RsaKeySize::Rsa2048 => 2048,
                RsaKeySize::Rsa3072 => 3072,
                RsaKeySize::Rsa4096 => 4096,
            },
            "db_pool_size": db.size,
            "db_pool_timeout": secs(db.checkout_timeout),
            "db_statement_timeout": secs(db.statement_timeout),
            "workers": server.workers,
            "argon2_memory_kib": accounts.password_hashing.memory_kib,
            "argon2_iterations": accounts.password_hashing.iterations,
            "argon2_parallelism": accounts.password_hashing.parallelism,
            "hashing_concurrency": accounts.hashing_concurrency,
            "hashing_queue": accounts.hashing_queue,
            "access_token_ttl": secs(tokens.access_token_ttl),
            "id_token_ttl": secs(tokens.id_token_ttl),
            "access_token_alg": tokens.access_token_alg.as_str(),
            "access_token_audience": tokens.access_token_audience,
            "open_registration": accounts.open_registration,
            "refresh_idle_ttl": secs(tokens.refresh_idle_ttl),
            "refresh_absolute_ttl": secs(tokens.refresh_absolute_ttl),
            "refresh_reuse_grace": secs(tokens.refresh_reuse_grace),
            "login_max_attempts": accounts.login_max_attempts,
            "login_max_attempts_per_account": accounts.login_max_attempts_per_account,
            "login_max_attempts_per_ip": accounts.login_max_attempts_per_ip,
            "register_max_per_ip": accounts.register_max_per_ip,
            "login_window": secs(accounts.login_window),
            "janitor_interval": secs(server.janitor_interval),
            "trusted_proxies": http.trusted_proxies.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "cors_origins": http.cors_origins,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("5"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("30d"), Ok(Duration::from_secs(30 * 86_400)));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("").is_err());
    }

    fn issuer_settings(issuer: Option<&str>, bind: &str, insecure: Option<bool>) -> SettingsArgs {
        SettingsArgs {
            issuer: issuer.map(Into::into),
            bind: Some(bind.into()),
            insecure_http_issuer: insecure,
            ..Default::default()
        }
    }

    // Plain http is refused on a host that is not loopback unless explicitly accepted.
    #[test]
    fn plain_http_issuer_needs_loopback_or_the_insecure_setting() {
        let refused = Settings::from_args(issuer_settings(
            Some("http://example.com"),
            "127.0.0.1:8080",
            None,
        ))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(
            refused.starts_with("PORTCULLIS_ISSUER: `http://example.com` is plain http")
                && refused.contains("PORTCULLIS_INSECURE_HTTP_ISSUER=true")
                && !refused.contains('\n'),
            "{refused}"
        );
        // The prefix trick is not loopback either.
        assert!(
            Settings::from_args(issuer_settings(
                Some("http://127.0.0.1.evil.com"),
                "127.0.0.1:8080",
                Some(false),
            ))
            .is_err()
        );
        let accepted = Settings::from_args(issuer_settings(
            Some("http://example.com"),
            "127.0.0.1:8080",
            Some(true),
        ))
        .unwrap();
        assert!(accepted.server.insecure_http_issuer);
        assert_eq!(accepted.redacted()["insecure_http_issuer"], true);
        for ok in [
            "http://localhost:8080",
            "http://[::1]:80",
            "https://example.com",
        ] {
            let settings = Settings::from_args(issuer_settings(Some(ok), "0.0.0.0:8080", None));
            assert!(settings.is_ok(), "{ok}");
        }

        // The default issuer follows the same rule: fine for loopback and every interface,
        // refused for a specific public address.
        for bind in ["127.0.0.1:8080", "0.0.0.0:8080", "[::]:8080"] {
            assert!(
                Settings::from_args(issuer_settings(None, bind, None)).is_ok(),
                "{bind}"
            );
        }
        let refused = Settings::from_args(issuer_settings(None, "192.0.2.1:8080", None))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            refused.starts_with(
                "PORTCULLIS_ISSUER: unset, so the issuer defaults to `http://192.0.2.1:8080`"
            ),
            "{refused}"
        );
        assert!(Settings::from_args(issuer_settings(None, "192.0.2.1:8080", Some(true))).is_ok());
    }

    #[test]
    fn insecure_http_issuer_is_read_from_the_config_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("portcullis.toml");
        std::fs::write(
            &path,
            "issuer = \"http://idp.internal\"\ninsecure_http_issuer = true\n",
        )
        .unwrap();
        let args = SettingsArgs {
            config: Some(path),
            ..Default::default()
        }
        .with_config_file()
        .unwrap();
        assert_eq!(args.insecure_http_issuer, Some(true));
        assert!(
            Settings::from_args(args)
                .unwrap()
                .server
                .insecure_http_issuer
        );
    }

    fn key_settings(interval: &str, lead: Option<&str>, retention: Option<&str>) -> SettingsArgs {
        SettingsArgs {
            jwks_max_age: Some(300),
            key_refresh_interval: Some("2s".into()),
            access_token_ttl: Some("15m".into()),
            key_rotation_interval: Some(interval.into()),
            key_publish_lead: lead.map(Into::into),
            key_retention: retention.map(Into::into),
            ..Default::default()
        }
    }

    fn refused(args: SettingsArgs) -> String {
        match Settings::from_args(args) {
            Ok(_) => panic!("unsafe key settings were accepted"),
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn a_config_file_is_overridden_by_flags_and_environment() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("portcullis.toml");
        std::fs::write(
            &path,
            "bind = \"127.0.0.1:9999\"\njwks_max_age = 120\nkek = \"c2VjcmV0\"\nopen_registration = false\n",
        )
        .unwrap();
        let args = SettingsArgs {
            config: Some(path.clone()),
            jwks_max_age: Some(60),
            ..Default::default()
        }
        .with_config_file()
        .unwrap();
        assert_eq!(
            args.bind.as_deref(),
            Some("127.0.0.1:9999"),
            "from the file"
        );
        assert_eq!(args.jwks_max_age, Some(60), "a flag or env var wins");
        assert_eq!(args.open_registration, Some(false));
        let settings = Settings::from_args(args).unwrap();
        let shown = settings.redacted().to_string();
        assert!(
            shown.contains("<redacted>") && !shown.contains("c2VjcmV0"),
            "{shown}"
        );

        std::fs::write(&path, "bnid = \"127.0.0.1:1\"\n").unwrap();
        let error = SettingsArgs {
            config: Some(path),
            ..Default::default()
        }
        .with_config_file()
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(
            error.contains("portcullis.toml") && error.contains("bnid"),
            "{error}"
        );
    }

    #[test]
    fn key_schedule_defaults_keep_the_invariants() {
        let policy = Settings::from_args(key_settings("30d", None, None))
            .unwrap()
            .keys
            .policy;
        assert_eq!(
            policy.rotation_interval,
            Some(Duration::from_secs(30 * 86_400))
        );
        assert_eq!(
            policy.publish_lead,
            Duration::from_secs(360),
            "max-age + 60 s"
        );
        // The longest token (15 min) + 60 s leeway + one refresh interval.
        assert_eq!(policy.retention, Duration::from_secs(900 + 60 + 2));
        let manual = Settings::from_args(key_settings("0", None, None)).unwrap();
        assert_eq!(manual.keys.policy.rotation_interval, None);
    }

    #[test]
    fn unsafe_key_settings_are_refused_at_start() {
        // A lead shorter than the JWKS max-age (+ refresh): caches could lack the signer.
        let message = refused(key_settings("30d", Some("300s"), None));
        assert!(message.contains("PORTCULLIS_KEY_PUBLISH_LEAD"), "{message}");
        assert!(Settings::from_args(key_settings("30d", Some("302s"), None)).is_ok());
        // A retention shorter than a token lifetime: tokens would outlive their key.
        let message = refused(key_settings("30d", None, Some("10m")));
        assert!(message.contains("PORTCULLIS_KEY_RETENTION"), "{message}");
        assert!(Settings::from_args(key_settings("30d", None, Some("15m"))).is_ok());
        // An interval within the lead: keys would pile up pending.
        let message = refused(key_settings("5m", None, None));
        assert!(
            message.contains("PORTCULLIS_KEY_ROTATION_INTERVAL"),
            "{message}"
        );
    }

    #[test]
    fn open_registration_defaults_to_the_embedded_setup_only() {
        let embedded = Settings::from_args(SettingsArgs::default()).unwrap();
        assert!(embedded.accounts.open_registration);
        let production = Settings::from_args(SettingsArgs {
            database_url: Some("postgres://db/portcullis".into()),
            ..Default::default()
        })
        .unwrap();
        assert!(!production.accounts.open_registration);
    }

    #[test]
    fn bad_settings_name_the_setting() {
        let err = Settings::from_args(SettingsArgs {
            database_url: Some("mysql://x".into()),
            ..Default::default()
        });
        assert!(matches!(
            err,
            Err(ConfigError {
                setting: "PORTCULLIS_DATABASE_URL",
                ..
            })
        ));
        let err = Settings::from_args(SettingsArgs {
            rsa_key_bits: Some(1024),
            ..Default::default()
        });
        assert!(matches!(
            err,
            Err(ConfigError {
                setting: "PORTCULLIS_RSA_KEY_BITS",
                ..
            })
        ));
    }
}
