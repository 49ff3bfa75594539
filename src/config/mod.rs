//! Settings: each is declared once ([`declared`]: name, type, default, doc), read from layered
//! sources (the declared default, the configuration file, the environment, the flags; [`layers`]),
//! validated here into one settings struct per concern, and injected.

pub mod declare;
pub mod declared;
mod layers;

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use crate::accounts::AccountSettings;
use crate::accounts::factors::SecondFactorPolicy;
use crate::accounts::mail_links::EmailSettings;
use crate::accounts::password::HashParams;
use crate::db::{DatabaseUrl, PoolSettings, Pooler};
use crate::http::HttpSettings;
use crate::keys::schedule::KeyPolicy;
use crate::keys::{KeySettings, RsaKeySize, SigningAlg};
use crate::mail::{MailSettings, SmtpSettings, SmtpTls};
use crate::oidc::TokenSettings;
pub use crate::oidc::issuer::Issuer;
use crate::oidc::registration::{RegistrationMode, RegistrationSettings};
pub use declare::parse_duration;
pub use declared::{DECLARED, SettingsArgs};
use declared::{Declared, ENV};
use layers::Sources;

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
    /// The SMTP server (if any) and the `From` address.
    pub mail: MailSettings,
    /// Mailed links: lifetimes and budgets (the link base is the issuer, set at start).
    pub email: EmailSettings,
    /// Outbound fetches (client key sets, client ID metadata documents).
    pub outbound: OutboundSettings,
    /// Dynamic client registration (RFC 7591, RFC 7592).
    pub registration: RegistrationSettings,
}

/// How documents that clients name are fetched (`PORTCULLIS_OUTBOUND_*`), and whether a
/// `client_id` may be the URL of a client ID metadata document
/// (`PORTCULLIS_CLIENT_ID_METADATA_DOCUMENTS`).
#[derive(Clone, Debug)]
pub struct OutboundSettings {
    /// The fetcher's policy (loopback allowance, extra roots, time limits).
    pub fetch: crate::verify::fetch::FetchPolicy,
    /// The extra roots' file, for `config check`.
    pub ca_file: Option<std::path::PathBuf>,
    /// Client ID metadata documents are resolved.
    pub client_id_metadata_documents: bool,
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

    /// Something is wrong with the configuration file (or a value in it).
    fn file(path: &Path, reason: impl std::fmt::Display) -> Self {
        Self::new("PORTCULLIS_CONFIG", format!("{}: {reason}", path.display()))
    }
}

impl Settings {
    /// The settings given by `args` over the declared defaults (and `DATABASE_URL`), validated.
    /// Neither the configuration file nor the `PORTCULLIS_*` environment is read: in-process
    /// callers (tests, benchmarks) get exactly what they ask for.
    pub fn from_args(args: SettingsArgs) -> Result<Self, ConfigError> {
        let sources = Sources {
            file: false,
            environment: None,
        };
        Self::validate(layers::read(&args, sources)?)
    }

    /// The settings of a process (the CLI): the declared defaults, then `DATABASE_URL`, then the
    /// configuration file named by `--config`/`PORTCULLIS_CONFIG`, then the `PORTCULLIS_*`
    /// environment, then the flags in `args`; each layer overrides the ones before. Validated.
    pub fn load(args: SettingsArgs) -> Result<Self, ConfigError> {
        Self::load_with_environment(args, std::env::vars_os().collect())
    }

    /// [`Settings::load`] with the given environment instead of the process's.
    pub fn load_with_environment(
        args: SettingsArgs,
        environment: Vec<(std::ffi::OsString, std::ffi::OsString)>,
    ) -> Result<Self, ConfigError> {
        let sources = Sources {
            file: true,
            environment: Some(environment),
        };
        Self::validate(layers::read(&args, sources)?)
    }

    /// Parses and checks every value; an error names the setting.
    fn validate(declared: Declared) -> Result<Self, ConfigError> {
        let env = &*ENV;
        let Declared {
            database_url,
            bind,
            issuer,
            insecure_http_issuer,
            keys_dir,
            kek,
            jwks_max_age,
            rsa_key_bits,
            db_pool_size,
            db_pool_timeout,
            db_statement_timeout,
            db_pooler,
            key_refresh_interval,
            key_rotation_interval,
            key_publish_lead,
            key_retention,
            request_timeout,
            shutdown_drain,
            admin_bind,
            workers,
            argon2_memory_kib,
            argon2_iterations,
            argon2_parallelism,
            hashing_concurrency,
            hashing_queue,
            access_token_ttl,
            id_token_ttl,
            access_token_alg,
            access_token_audience,
            open_registration,
            refresh_idle_ttl,
            refresh_absolute_ttl,
            refresh_reuse_grace,
            login_max_attempts,
            login_max_attempts_per_account,
            login_max_attempts_per_ip,
            register_max_per_ip,
            second_factor,
            login_window,
            janitor_interval,
            trusted_proxies,
            cors_origins,
            smtp_host,
            smtp_port,
            smtp_tls,
            smtp_ca_file,
            smtp_username,
            smtp_password,
            mail_from,
            email_verification_ttl,
            password_reset_ttl,
            mail_max_per_address,
            mail_max_per_ip,
            outbound_allow_loopback,
            outbound_ca_file,
            outbound_timeout,
            client_id_metadata_documents,
            client_registration,
            client_registration_open_scopes,
            client_registration_open_https,
            client_registration_max_per_ip,
            client_registration_unused_ttl,
        } = declared;

        let database = DatabaseUrl::parse(&database_url)
            .map_err(|reason| ConfigError::new(&env.database_url, reason))?;

        let bind: SocketAddr = bind.parse().map_err(|_| {
            ConfigError::new(
                &env.bind,
                format!("`{bind}` is not an IP address and port such as 127.0.0.1:8080"),
            )
        })?;

        let issuer = issuer
            .map(|text| Issuer::parse(&text))
            .transpose()
            .map_err(|reason| ConfigError::new(&env.issuer, reason))?;
        refuse_plain_http_issuer(issuer.as_ref(), bind, insecure_http_issuer)?;
        let loopback_server = issuer
            .as_ref()
            .map_or(bind.ip().is_loopback(), Issuer::is_loopback);
        if outbound_allow_loopback && !loopback_server {
            return Err(ConfigError::new(
                &env.outbound_allow_loopback,
                "is for tests and local development: the issuer's host must be loopback too",
            ));
        }
        let extra_roots_pem = outbound_ca_file
            .as_ref()
            .map(|path| {
                std::fs::read(path).map_err(|e| {
                    ConfigError::new(
                        &env.outbound_ca_file,
                        format!("cannot read {}: {e}", path.display()),
                    )
                })
            })
            .transpose()?;
        let outbound_timeout = outbound_timeout.0;
        if outbound_timeout.is_zero() {
            return Err(ConfigError::new(
                &env.outbound_timeout,
                "must be greater than zero",
            ));
        }
        let outbound = OutboundSettings {
            fetch: crate::verify::fetch::FetchPolicy {
                allow_loopback: outbound_allow_loopback,
                extra_roots_pem,
                connect_timeout: outbound_timeout.min(Duration::from_secs(3)),
                timeout: outbound_timeout,
            },
            ca_file: outbound_ca_file,
            client_id_metadata_documents,
        };
        // The extra roots must be readable as certificates now, not at the first fetch.
        crate::verify::fetch::SafeFetcher::new(&outbound.fetch)
            .map_err(|reason| ConfigError::new(&env.outbound_ca_file, reason))?;

        let rsa_key_size = match rsa_key_bits {
            2048 => RsaKeySize::Rsa2048,
            3072 => RsaKeySize::Rsa3072,
            4096 => RsaKeySize::Rsa4096,
            other => {
                return Err(ConfigError::new(
                    &env.rsa_key_bits,
                    format!("{other} is not one of 2048, 3072, 4096"),
                ));
            }
        };

        if db_pool_size == 0 {
            return Err(ConfigError::new(&env.db_pool_size, "must be at least 1"));
        }
        let (db_pool_timeout, key_refresh_interval) = (db_pool_timeout.0, key_refresh_interval.0);
        if db_pool_timeout.is_zero() || key_refresh_interval.is_zero() {
            return Err(ConfigError::new(
                "PORTCULLIS_DB_POOL_TIMEOUT/PORTCULLIS_KEY_REFRESH_INTERVAL",
                "must be greater than zero",
            ));
        }
        let db_statement_timeout = db_statement_timeout.0;
        if db_statement_timeout < Duration::from_millis(1) {
            return Err(ConfigError::new(
                &env.db_statement_timeout,
                "must be at least 1ms (a statement may not run unbounded)",
            ));
        }
        let db_pooler =
            Pooler::parse(&db_pooler).map_err(|reason| ConfigError::new(&env.db_pooler, reason))?;
        if workers == Some(0) {
            return Err(ConfigError::new(&env.workers, "must be at least 1"));
        }

        let password_hashing = HashParams {
            memory_kib: argon2_memory_kib,
            iterations: argon2_iterations,
            parallelism: argon2_parallelism,
        };
        argon2::Params::new(
            password_hashing.memory_kib,
            password_hashing.iterations,
            password_hashing.parallelism,
            None,
        )
        .map_err(|e| ConfigError::new("PORTCULLIS_ARGON2_*", e.to_string()))?;
        let hashing_concurrency = match hashing_concurrency {
            Some(0) => {
                return Err(ConfigError::new(
                    &env.hashing_concurrency,
                    "must be at least 1",
                ));
            }
            Some(n) => n,
            None => std::thread::available_parallelism().map_or(1, usize::from),
        };
        let hashing_queue = hashing_queue.unwrap_or_else(|| {
            hashing_concurrency.saturating_mul(crate::accounts::password::DEFAULT_QUEUE_PER_THREAD)
        });

        let access_token_ttl = access_token_ttl.0;
        let access_token_alg = SigningAlg::parse(&access_token_alg).ok_or_else(|| {
            ConfigError::new(
                &env.access_token_alg,
                format!("`{access_token_alg}` is not ES256 or RS256"),
            )
        })?;
        let (refresh_idle_ttl, refresh_absolute_ttl) = (refresh_idle_ttl.0, refresh_absolute_ttl.0);
        let refresh_reuse_grace = refresh_reuse_grace.0;
        if refresh_reuse_grace > Duration::from_secs(60) {
            return Err(ConfigError::new(
                &env.refresh_reuse_grace,
                "must be at most 60s: a longer window weakens reuse detection",
            ));
        }
        let login_window = login_window.0;
        let janitor_interval = janitor_interval.0;
        if janitor_interval.is_zero() {
            return Err(ConfigError::new(
                &env.janitor_interval,
                "must be greater than zero",
            ));
        }
        let id_token_ttl = id_token_ttl.0;
        if id_token_ttl.is_zero() {
            return Err(ConfigError::new(
                &env.id_token_ttl,
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
        let trusted_proxies = comma_separated(trusted_proxies.as_deref())
            .map(|p| {
                p.parse::<IpAddr>().map_err(|_| {
                    ConfigError::new(&env.trusted_proxies, format!("`{p}` is not an IP address"))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;

        let cors_origins = comma_separated(cors_origins.as_deref())
            .map(|origin| {
                let parsed = url::Url::parse(origin).ok().filter(|u| {
                    matches!(u.scheme(), "http" | "https")
                        && u.path() == "/"
                        && !origin.ends_with('/')
                });
                parsed.map(|_| origin.to_owned()).ok_or_else(|| {
                    ConfigError::new(
                        &env.cors_origins,
                        format!("`{origin}` is not an origin such as https://app.example.com"),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;

        let jwks_max_age = Duration::from_secs(jwks_max_age);
        let key_policy = key_policy(
            KeySchedule {
                interval: key_rotation_interval.0,
                lead: key_publish_lead.map(|d| d.0),
                retention: key_retention.map(|d| d.0),
            },
            jwks_max_age,
            key_refresh_interval,
            longest_token_lifetime(access_token_ttl, id_token_ttl),
        )?;
        let admin_bind = admin_bind
            .as_deref()
            .filter(|text| !text.is_empty())
            .map(|text| {
                text.parse::<SocketAddr>().map_err(|_| {
                    ConfigError::new(
                        &env.admin_bind,
                        format!("`{text}` is not an IP address and port such as 127.0.0.1:8081"),
                    )
                })
            })
            .transpose()?;

        let shutdown_drain = shutdown_drain.0;
        let request_timeout = request_timeout.0;
        if request_timeout.is_zero() {
            return Err(ConfigError::new(
                &env.request_timeout,
                "must be greater than zero",
            ));
        }
        let open_registration = open_registration.unwrap_or(database.is_sqlite());
        let second_factor = SecondFactorPolicy::parse(&second_factor).ok_or_else(|| {
            ConfigError::new(
                &env.second_factor,
                format!("`{second_factor}` is not off, optional or required"),
            )
        })?;
        let mail = mail_settings(MailInput {
            host: smtp_host,
            port: smtp_port,
            tls: smtp_tls,
            ca_file: smtp_ca_file,
            username: smtp_username,
            password: smtp_password,
            from: mail_from,
        })?;
        let (email_verification_ttl, password_reset_ttl) =
            (email_verification_ttl.0, password_reset_ttl.0);
        if email_verification_ttl.is_zero() || password_reset_ttl.is_zero() {
            return Err(ConfigError::new(
                "PORTCULLIS_EMAIL_VERIFICATION_TTL/PORTCULLIS_PASSWORD_RESET_TTL",
                "must be greater than zero",
            ));
        }
        let registration = RegistrationSettings {
            mode: RegistrationMode::parse(&client_registration).ok_or_else(|| {
                ConfigError::new(
                    &env.client_registration,
                    format!("`{client_registration}` is not off, token or open"),
                )
            })?,
            open_scopes: comma_separated(Some(&client_registration_open_scopes))
                .map(str::to_owned)
                .collect(),
            open_https_redirects: client_registration_open_https,
            max_per_ip: client_registration_max_per_ip.max(1),
            window: login_window,
            unused_client_ttl: Some(client_registration_unused_ttl.0).filter(|d| !d.is_zero()),
        };
        let email = EmailSettings {
            verification_ttl: email_verification_ttl,
            reset_ttl: password_reset_ttl,
            max_per_address: mail_max_per_address.max(1),
            max_per_ip: mail_max_per_ip.max(1),
            window: login_window,
            link_base: String::new(),
        };
        Ok(Self {
            server: ServerSettings {
                bind,
                issuer,
                insecure_http_issuer,
                admin_bind,
                workers,
                shutdown_drain,
                janitor_interval,
            },
            db: PoolSettings {
                url: database,
                size: db_pool_size,
                checkout_timeout: db_pool_timeout,
                statement_timeout: db_statement_timeout,
                pooler: db_pooler,
            },
            keys: KeySettings {
                keys_dir,
                kek,
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
                login_max_attempts: login_max_attempts.max(1),
                login_max_attempts_per_account: login_max_attempts_per_account.max(1),
                login_max_attempts_per_ip: login_max_attempts_per_ip.max(1),
                register_max_per_ip: register_max_per_ip.max(1),
                login_window,
                second_factor,
            },
            tokens: TokenSettings {
                access_token_ttl,
                id_token_ttl,
                access_token_alg,
                access_token_audience: access_token_audience.filter(|a| !a.is_empty()),
                refresh_idle_ttl,
                refresh_absolute_ttl,
                refresh_reuse_grace,
                second_factor,
            },
            http: HttpSettings {
                trusted_proxies,
                cors_origins,
                request_timeout,
            },
            mail,
            email,
            outbound,
            registration,
        })
    }
}

/// The mail settings as given.
struct MailInput {
    host: Option<String>,
    port: Option<u32>,
    tls: String,
    ca_file: Option<std::path::PathBuf>,
    username: Option<String>,
    password: Option<secrecy::SecretString>,
    from: Option<String>,
}

/// The SMTP server and `From` address, refused when they would send credentials or links in the
/// clear to another host, or cannot be parsed.
fn mail_settings(given: MailInput) -> Result<MailSettings, ConfigError> {
    use secrecy::ExposeSecret;
    let env = &*ENV;
    let tls =
        SmtpTls::parse(&given.tls).map_err(|reason| ConfigError::new(&env.smtp_tls, reason))?;
    let from = given
        .from
        .filter(|text| !text.trim().is_empty())
        .map(|text| {
            text.parse::<lettre::message::Mailbox>()
                .map(|_| text.clone())
                .map_err(|e| {
                    ConfigError::new(&env.mail_from, format!("`{text}` is not a mailbox: {e}"))
                })
        })
        .transpose()?;
    let credentials = match (given.username.filter(|u| !u.is_empty()), given.password) {
        (Some(user), Some(password)) if !password.expose_secret().is_empty() => {
            Some((user, password))
        }
        (None, None) => None,
        (None, Some(password)) if password.expose_secret().is_empty() => None,
        _ => {
            return Err(ConfigError::new(
                "PORTCULLIS_SMTP_USERNAME/PORTCULLIS_SMTP_PASSWORD",
                "give both or neither",
            ));
        }
    };
    let smtp = match given.host.filter(|h| !h.trim().is_empty()) {
        None => None,
        Some(host) => {
            let port = match given.port {
                None => tls.default_port(),
                Some(port) => u16::try_from(port).ok().filter(|p| *p > 0).ok_or_else(|| {
                    ConfigError::new(&env.smtp_port, format!("{port} is not a port"))
                })?,
            };
            let loopback = host == "localhost"
                || host
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback());
            if tls == SmtpTls::None && !loopback {
                return Err(ConfigError::new(
                    &env.smtp_tls,
                    format!(
                        "`none` sends mail (password-reset links) and credentials in the clear: only to a loopback host, not `{host}`; use starttls or tls"
                    ),
                ));
            }
            Some(SmtpSettings {
                host,
                port,
                tls,
                ca_file: given.ca_file,
                credentials,
            })
        }
    };
    Ok(MailSettings { smtp, from })
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

/// The rotation settings as given: the interval, and the lead and retention unless derived.
struct KeySchedule {
    interval: Duration,
    lead: Option<Duration>,
    retention: Option<Duration>,
}

/// The rotation settings, refused when they would break the key invariants: a key signs only
/// after every cached JWKS holds it, and stays published while a token it signed is live.
fn key_policy(
    given: KeySchedule,
    jwks_max_age: Duration,
    key_refresh_interval: Duration,
    longest_token: Duration,
) -> Result<KeyPolicy, ConfigError> {
    let env = &*ENV;
    let rotation_interval = given.interval;
    // Every instance publishes a new key within one refresh interval; a resource server then
    // keeps its cached copy for at most max-age.
    let min_lead = jwks_max_age + key_refresh_interval;
    let publish_lead = given
        .lead
        .unwrap_or((jwks_max_age + Duration::from_secs(60)).max(min_lead));
    if publish_lead < min_lead {
        return Err(ConfigError::new(
            &env.key_publish_lead,
            format!(
                "{}s is shorter than the JWKS max-age plus the key refresh interval ({}s): a resource server's cached JWKS could lack the new key when it starts signing",
                publish_lead.as_secs_f64(),
                min_lead.as_secs_f64()
            ),
        ));
    }
    if !rotation_interval.is_zero() && rotation_interval <= publish_lead {
        return Err(ConfigError::new(
            &env.key_rotation_interval,
            format!(
                "must be 0 (manual) or longer than the publish lead ({}s)",
                publish_lead.as_secs_f64()
            ),
        ));
    }
    let retention = given
        .retention
        .unwrap_or(longest_token + VERIFIER_LEEWAY + key_refresh_interval);
    if retention < longest_token {
        return Err(ConfigError::new(
            &env.key_retention,
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

/// The items of a comma-separated list, trimmed, without empty ones.
fn comma_separated(list: Option<&str>) -> impl Iterator<Item = &str> {
    list.unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
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
            mail,
            email,
            outbound,
            registration,
        } = self;
        let mut effective = serde_json::json!({
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
            "db_pooler": db.pooler.as_str(),
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
        });
        // Outside the macro: one more member passes serde_json's recursion limit.
        effective["second_factor"] = accounts.second_factor.as_str().into();
        // A second object: one macro call this long exceeds the macro recursion limit.
        let mail_json = serde_json::json!({
            "smtp_host": mail.smtp.as_ref().map(|s| s.host.clone()),
            "smtp_port": mail.smtp.as_ref().map(|s| s.port),
            "smtp_tls": mail.smtp.as_ref().map(|s| s.tls.as_str()),
            "smtp_ca_file": mail.smtp.as_ref().and_then(|s| s.ca_file.as_ref()).map(|p| p.display().to_string()),
            "smtp_username": mail.smtp.as_ref().and_then(|s| s.credentials.as_ref()).map(|(user, _)| user.clone()),
            "smtp_password": mail.smtp.as_ref().and_then(|s| s.credentials.as_ref()).map(|_| "<redacted>"),
            "mail_from": mail.from,
            "email_verification_ttl": secs(email.verification_ttl),
            "password_reset_ttl": secs(email.reset_ttl),
            "mail_max_per_address": email.max_per_address,
            "mail_max_per_ip": email.max_per_ip,
            "client_registration": registration.mode.as_str(),
            "client_registration_open_scopes": registration.open_scopes,
            "client_registration_open_https": registration.open_https_redirects,
            "client_registration_max_per_ip": registration.max_per_ip,
            "client_registration_unused_ttl": registration.unused_client_ttl.map_or_else(|| "0".into(), secs),
        });
        let outbound_json = serde_json::json!({
            "outbound_allow_loopback": outbound.fetch.allow_loopback,
            "outbound_ca_file": outbound.ca_file.as_ref().map(|p| p.display().to_string()),
            "outbound_timeout": secs(outbound.fetch.timeout),
            "client_id_metadata_documents": outbound.client_id_metadata_documents,
        });
        for part in [mail_json, outbound_json] {
            if let (Some(all), serde_json::Value::Object(part)) = (effective.as_object_mut(), part)
            {
                all.extend(part);
            }
        }
        effective
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

    /// The settings of a process with `file` as its configuration file and `vars` as its
    /// environment.
    fn load(
        file: &str,
        vars: &[(&str, &str)],
        args: SettingsArgs,
    ) -> (tempfile::TempDir, Result<Settings, ConfigError>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("portcullis.toml");
        std::fs::write(&path, file).unwrap();
        let vars = vars
            .iter()
            .map(|(key, value)| ((*key).into(), (*value).into()))
            .collect();
        let args = SettingsArgs {
            config: Some(path),
            ..args
        };
        (dir, Settings::load_with_environment(args, vars))
    }

    #[test]
    fn insecure_http_issuer_is_read_from_the_config_file() {
        let (_dir, settings) = load(
            "issuer = \"http://idp.internal\"\ninsecure_http_issuer = true\n",
            &[],
            SettingsArgs::default(),
        );
        assert!(settings.unwrap().server.insecure_http_issuer);
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
        let file = "bind = \"127.0.0.1:9999\"\njwks_max_age = 120\nkek = \"c2VjcmV0\"\nopen_registration = false\naccess_token_ttl = \"10m\"\nid_token_ttl = \"5m\"\n";
        let (_dir, settings) = load(
            file,
            &[
                ("PORTCULLIS_JWKS_MAX_AGE", "90"),
                ("PORTCULLIS_ACCESS_TOKEN_TTL", "5m"),
                // Not settings: ignored.
                ("PORTCULLIS_LOG_FORMAT", "json"),
                ("PORTCULLIS_NOT_A_SETTING", "x"),
            ],
            SettingsArgs {
                jwks_max_age: Some(60),
                ..Default::default()
            },
        );
        let settings = settings.unwrap();
        assert_eq!(
            settings.server.bind.to_string(),
            "127.0.0.1:9999",
            "from the file"
        );
        assert_eq!(
            settings.keys.jwks_max_age,
            Duration::from_secs(60),
            "a flag wins"
        );
        assert_eq!(
            settings.tokens.access_token_ttl,
            Duration::from_secs(300),
            "the environment wins over the file"
        );
        assert_eq!(settings.tokens.id_token_ttl, Duration::from_secs(300));
        assert!(!settings.accounts.open_registration);
        let shown = settings.redacted().to_string();
        assert!(
            shown.contains("<redacted>") && !shown.contains("c2VjcmV0"),
            "{shown}"
        );
        assert!(!format!("{settings:?}").contains("c2VjcmV0"));

        let (_dir, error) = load("bnid = \"127.0.0.1:1\"\n", &[], SettingsArgs::default());
        let error = error.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            error.contains("portcullis.toml") && error.contains("bnid"),
            "{error}"
        );
    }

    #[test]
    fn a_bad_value_names_where_it_came_from() {
        // From the file: the file and the key.
        let (_dir, error) = load("jwks_max_age = \"soon\"\n", &[], SettingsArgs::default());
        let error = error.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            error.starts_with("PORTCULLIS_CONFIG: ")
                && error.contains("portcullis.toml: jwks_max_age:"),
            "{error}"
        );
        let (_dir, error) = load("login_window = \"soon\"\n", &[], SettingsArgs::default());
        let error = error.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(error.contains("login_window: `soon`"), "{error}");
        // From the environment or a flag: the environment variable.
        for (vars, args) in [
            (
                &[("PORTCULLIS_DB_POOL_SIZE", "many")][..],
                SettingsArgs::default(),
            ),
            (
                &[("PORTCULLIS_DB_POOL_TIMEOUT", "soon")][..],
                SettingsArgs::default(),
            ),
            (
                &[][..],
                SettingsArgs {
                    db_pool_timeout: Some("soon".into()),
                    ..Default::default()
                },
            ),
        ] {
            let (_dir, error) = load("", vars, args);
            let error = error.err().map(|e| e.to_string()).unwrap_or_default();
            assert!(error.starts_with("PORTCULLIS_DB_POOL_"), "{error}");
            assert!(!error.contains('\n'), "{error}");
        }
        // A malformed file is one line naming the file.
        let (_dir, error) = load("bind = \n", &[], SettingsArgs::default());
        let error = error.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            error.contains("portcullis.toml") && !error.contains('\n'),
            "{error}"
        );
        // A missing file too.
        let missing = Settings::load_with_environment(
            SettingsArgs {
                config: Some("/nonexistent/portcullis.toml".into()),
                ..Default::default()
            },
            Vec::new(),
        );
        assert!(matches!(
            missing,
            Err(ConfigError {
                setting: "PORTCULLIS_CONFIG",
                ..
            })
        ));
    }

    #[test]
    fn environment_values_are_read_as_text_then_typed() {
        let (_dir, settings) = load(
            "",
            &[
                ("PORTCULLIS_OPEN_REGISTRATION", "false"),
                ("PORTCULLIS_ACCESS_TOKEN_AUDIENCE", "12345"),
                ("PORTCULLIS_KEY_ROTATION_INTERVAL", "0"),
                ("PORTCULLIS_TRUSTED_PROXIES", "10.0.0.1, ::1"),
                ("PORTCULLIS_KEK", "c2VjcmV0"),
            ],
            SettingsArgs::default(),
        );
        let settings = settings.unwrap();
        assert!(!settings.accounts.open_registration);
        assert_eq!(
            settings.tokens.access_token_audience.as_deref(),
            Some("12345")
        );
        assert_eq!(settings.keys.policy.rotation_interval, None);
        assert_eq!(settings.http.trusted_proxies.len(), 2);
        assert!(settings.keys.kek.is_some());
    }

    #[test]
    fn the_declared_defaults_are_the_documented_ones() {
        let settings = Settings::from_args(SettingsArgs::default()).unwrap();
        let shown = settings.redacted();
        assert_eq!(shown["database_url"], "sqlite://data/portcullis.db");
        assert_eq!(shown["bind"], "127.0.0.1:8080");
        assert_eq!(shown["jwks_max_age"], 300);
        assert_eq!(shown["db_pool_timeout"], "5s");
        assert_eq!(shown["key_rotation_interval"], "2592000s");
        assert_eq!(shown["refresh_reuse_grace"], "0s");
        assert_eq!(shown["access_token_alg"], "ES256");
        assert_eq!(shown["kek"], serde_json::Value::Null);
        // `config check` shows every declared setting, and nothing else.
        let mut shown_names: Vec<&str> = shown
            .as_object()
            .map(|o| o.keys().map(String::as_str).collect())
            .unwrap_or_default();
        let mut declared: Vec<&str> = DECLARED.iter().map(|s| s.name).collect();
        shown_names.sort_unstable();
        declared.sort_unstable();
        assert_eq!(shown_names, declared);
        // The hashing default of the settings is the library's.
        assert_eq!(settings.accounts.password_hashing, HashParams::default());
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
