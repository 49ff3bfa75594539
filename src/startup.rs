//! Builds a running server from settings: database, migrations, keys, self-test, listener.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::{Server, ServerHandle};
use actix_web::http::header::HeaderValue;
use actix_web::web::Bytes;
use actix_web::{App, HttpServer, web};

use crate::accounts::PasswordHasher;
use crate::accounts::mail_links::MailLinks;
use crate::accounts::sessions::Authenticator;
use crate::clock::Clock;
use crate::config::{ServerSettings, Settings};
use crate::db::{self, ConnectionManager, DatabaseUrl, Db, Pooler};
use crate::keys::kek::KekOrigin;
use crate::keys::lifecycle::{self, KeyContext, KeyError};
use crate::keys::rotator::Leadership;
use crate::keys::{KeyRing, Signer};
use crate::mail::Outbox;
use crate::metrics::Metrics;
use crate::oidc::Issuer;
use crate::oidc::apis::ApiRegistry;
use crate::oidc::clients::ClientRegistry;
use crate::oidc::metadata::ProviderMetadata;
use crate::oidc::tokens::TokenService;
use crate::state::AppState;

/// Why the server could not start. Each message is one line naming what to fix.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The database could not be opened or migrated.
    #[error("database {url}: {reason}")]
    Database {
        /// Redacted URL.
        url: String,
        /// What failed.
        reason: String,
    },
    /// Keys could not be loaded or created.
    #[error(transparent)]
    Keys(#[from] KeyError),
    /// The start-up self-test failed.
    #[error("signing self-test failed: {0}")]
    SelfTest(String),
    /// The SMTP settings cannot make a transport (a CA file, the `From` address).
    #[error("{0}")]
    Mail(String),
    /// The listen address is unusable.
    #[error("PORTCULLIS_BIND: cannot listen on {addr}: {reason}")]
    Bind {
        /// The address.
        addr: String,
        /// The OS error.
        reason: String,
    },
}

/// Installs aws-lc-rs as jsonwebtoken's crypto provider (idempotent).
pub fn install_crypto_provider() {
    // Err only means it is installed already (several servers in one test process).
    let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
}

/// Opens the database (through `pooler`) and runs pending migrations; returns the versions
/// applied now.
pub async fn migrate(url: &DatabaseUrl, pooler: Pooler) -> Result<Vec<String>, StartupError> {
    let url = url.clone();
    let fail = |reason: String| StartupError::Database {
        url: url.to_string(),
        reason,
    };
    db::prepare_sqlite_path(&url).map_err(|e| fail(format!("cannot create the directory: {e}")))?;
    let manager = ConnectionManager::new(url.clone()).behind(pooler);
    tokio::task::spawn_blocking(move || {
        let mut conn = manager
            .establish()
            .map_err(|e| format!("cannot connect: {e}"))?;
        db::run_migrations(&mut conn).map_err(|e| format!("migration failed: {e}"))
    })
    .await
    .map_err(|e| fail(e.to_string()))?
    .map_err(fail)
}

/// A bound, ready-to-run server.
pub struct Application {
    port: u16,
    issuer: Issuer,
    server: Server,
    admin: Option<(u16, Server)>,
    state: AppState,
    key_refresh_interval: Duration,
    server_settings: ServerSettings,
    /// The SMTP transport, its outbox and `From`, when mail is sent.
    delivery: Option<(
        Outbox,
        crate::mail::smtp::Transport,
        lettre::message::Mailbox,
    )>,
}

impl Application {
    /// Prepares everything on the system clock; the server answers once
    /// [`Application::run_until_stopped`] is awaited.
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        Self::build_with_clock(settings, Clock::system()).await
    }

    /// [`Application::build`] on `clock`: every expiry, the key schedule and the janitor read it
    /// (tests hand in a clock they move forward instead of sleeping).
    pub async fn build_with_clock(settings: Settings, clock: Clock) -> Result<Self, StartupError> {
        install_crypto_provider();
        let Settings {
            server: server_settings,
            db: pool_settings,
            keys: key_settings,
            accounts: account_settings,
            tokens: token_settings,
            http: http_settings,
            mail: mail_settings,
            email: mut email_settings,
            outbound: outbound_settings,
            registration: registration_settings,
        } = settings;
        let database = pool_settings.url.clone();
        let applied = migrate(&database, pool_settings.pooler).await?;
        if !applied.is_empty() {
            tracing::info!(%database, migrations = ?applied, "applied migrations");
        }
        // The application's own registry: each server (and each test server in one process)
        // counts only its own events.
        let metrics = Arc::new(Metrics::new());
        let db = Db::for_settings(&pool_settings, pool_settings.size, Arc::clone(&metrics));

        let boot = lifecycle::bootstrap(&db, &key_settings, &clock).await?;
        match &boot.kek_origin {
            KekOrigin::Created(path) => tracing::warn!(
                path = %path.display(),
                "created a new key-encryption key; back it up — without it the signing keys cannot be decrypted"
            ),
            KekOrigin::File(path) => {
                tracing::info!(path = %path.display(), "loaded key-encryption key")
            }
            KekOrigin::Setting => tracing::info!("loaded key-encryption key from PORTCULLIS_KEK"),
        }
        if !boot.generated.is_empty() {
            tracing::info!(kids = ?boot.generated, "generated initial signing keys");
        }

        let keys = Arc::new(KeyRing::new(boot.key_set));
        let signer = Signer::new(Arc::clone(&keys));
        // The system time, not the application's clock: jsonwebtoken checks `exp` against it.
        lifecycle::self_test(&signer, Clock::system().now()).map_err(StartupError::SelfTest)?;

        let bind = server_settings.bind;
        let listener = TcpListener::bind(bind).map_err(|e| StartupError::Bind {
            addr: bind.to_string(),
            reason: e.to_string(),
        })?;
        let local = listener.local_addr().map_err(|e| StartupError::Bind {
            addr: bind.to_string(),
            reason: e.to_string(),
        })?;
        let issuer = server_settings
            .issuer
            .clone()
            .unwrap_or_else(|| Issuer::from_bind(local));
        if !issuer.is_https() && !issuer.is_loopback() {
            // Accepted by the settings only with PORTCULLIS_INSECURE_HTTP_ISSUER=true.
            tracing::warn!(%issuer, "plain-http issuer on a host that is not loopback (PORTCULLIS_INSECURE_HTTP_ISSUER): codes, tokens, passwords and cookies cross the network unencrypted");
        }
        // Every route lives under the issuer's path (OIDC Discovery §4).
        let base = issuer.path().to_owned();
        let admin_base = base.clone();

        let mut metadata = ProviderMetadata::for_issuer(&issuer)
            .with_registration(registration_settings.enabled());
        metadata.client_id_metadata_document_supported =
            outbound_settings.client_id_metadata_documents;
        let discovery = serde_json::to_vec(&metadata).map_err(|e| {
            StartupError::SelfTest(format!("discovery document did not serialise: {e}"))
        })?;
        let public_cache_control = HeaderValue::from_str(&format!(
            "public, max-age={}",
            key_settings.jwks_max_age.as_secs()
        ))
        .map_err(|e| StartupError::SelfTest(e.to_string()))?;

        let tokens = TokenService::new(
            db.clone(),
            signer.clone(),
            issuer.clone(),
            token_settings.clone(),
            clock.clone(),
            Arc::clone(&metrics),
            crate::oidc::subjects::PairwiseSubjects::new(&boot.kek)
                .map_err(|e| StartupError::SelfTest(e.to_string()))?,
        )
        .map_err(|e| StartupError::SelfTest(e.to_string()))?;
        let (params, concurrency) = (
            account_settings.password_hashing,
            account_settings.hashing_concurrency,
        );
        let hasher = tokio::task::spawn_blocking(move || PasswordHasher::new(params, concurrency))
            .await
            .map_err(|e| StartupError::SelfTest(e.to_string()))?
            .map_err(|e| StartupError::SelfTest(e.to_string()))?
            .with_queue_limit(account_settings.hashing_queue);
        tokens
            .install_jwks(keys.current().jwks_body())
            .map_err(StartupError::SelfTest)?;
        let authenticator = Authenticator::new(
            db.clone(),
            hasher.clone(),
            account_settings,
            clock.clone(),
            Arc::clone(&metrics),
        );
        // Authenticator apps show the issuer's host above the code.
        let factor_label = url::Url::parse(issuer.as_str())
            .ok()
            .and_then(|url| url.host_str().map(str::to_owned))
            .unwrap_or_else(|| "Portcullis".to_owned());
        let factors = crate::accounts::factors::Factors::new(
            db.clone(),
            Arc::clone(&boot.kek),
            account_settings,
            clock.clone(),
            &factor_label,
        );
        // Passkeys: the relying party is the issuer's host; an IP issuer (the loopback default)
        // cannot have them, which is said once here and is no reason not to start.
        let webauthn = match crate::accounts::passkeys::webauthn_for(issuer.as_str(), "Portcullis")
        {
            Ok(webauthn) => Some(webauthn),
            Err(reason) => {
                tracing::warn!(%reason, "passkeys are unavailable");
                None
            }
        };
        let passkeys = crate::accounts::passkeys::Passkeys::new(
            db.clone(),
            webauthn,
            account_settings,
            clock.clone(),
        );
        let clients = db
            .run(ClientRegistry::load)
            .await
            .map_err(|e| StartupError::Database {
                url: database.to_string(),
                reason: format!("cannot load clients: {e}"),
            })?;
        let apis = db
            .run(ApiRegistry::load)
            .await
            .map_err(|e| StartupError::Database {
                url: database.to_string(),
                reason: format!("cannot load APIs: {e}"),
            })?;
        // Mail: its links are built from the issuer, never from a request's Host.
        email_settings.link_base = issuer.as_str().to_owned();
        let from_text = mail_settings
            .from
            .clone()
            .unwrap_or_else(|| crate::mail::default_from(issuer.as_str()));
        let from: lettre::message::Mailbox = from_text.parse().map_err(|e| {
            StartupError::Mail(format!(
                "PORTCULLIS_MAIL_FROM: `{from_text}` is not a mailbox: {e}"
            ))
        })?;
        let delivery = match &mail_settings.smtp {
            Some(smtp) => Some(
                smtp.transport()
                    .map_err(|e| StartupError::Mail(format!("PORTCULLIS_SMTP_*: {e}")))?,
            ),
            None => {
                tracing::info!(
                    "no SMTP server configured (PORTCULLIS_SMTP_HOST): mail stays in the outbox (`portcullis mail outbox`)"
                );
                None
            }
        };
        let outbox = Outbox::new(Arc::clone(&boot.kek), delivery.is_some());
        let mail_links = MailLinks::new(
            db.clone(),
            hasher.clone(),
            outbox.clone(),
            email_settings,
            clock.clone(),
        );
        let fetcher = crate::verify::fetch::SafeFetcher::new(&outbound_settings.fetch)
            .map_err(StartupError::SelfTest)?;
        if fetcher.allows_loopback() {
            tracing::warn!(
                "outbound fetches may reach loopback addresses (PORTCULLIS_OUTBOUND_ALLOW_LOOPBACK): for tests and local development only"
            );
        }
        let fetcher = Arc::new(fetcher);
        let remote_keys = Arc::new(crate::oidc::client_auth::RemoteKeys::new(Arc::clone(
            &fetcher,
        )));
        let state = AppState {
            client_logos: Arc::new(crate::oidc::client_logo::LogoFetcher::new(Arc::clone(
                &fetcher,
            ))),
            request_objects: Arc::new(crate::oidc::authorize::RequestObjects::new(
                Arc::clone(&fetcher),
                Arc::clone(&remote_keys),
            )),
            remote_keys,
            outbound: Arc::clone(&fetcher),
            client_documents: outbound_settings.client_id_metadata_documents.then(|| {
                Arc::new(crate::oidc::client_metadata::MetadataDocuments::new(
                    Arc::clone(&fetcher),
                    issuer.as_str(),
                ))
            }),
            mail_links,
            db,
            keys,
            signer,
            issuer: issuer.clone(),
            discovery: Bytes::from(discovery),
            public_cache_control,
            hasher,
            authenticator,
            factors,
            passkeys,
            tokens: Arc::new(tokens),
            key_context: KeyContext::new(
                Arc::clone(&boot.kek),
                key_settings.policy,
                key_settings.rsa_key_size,
                clock.clone(),
            ),
            token_settings,
            account_settings,
            http_settings: http_settings.clone(),
            clients: Arc::new(clients),
            apis: Arc::new(apis),
            draining: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            metrics,
            clock,
            registration: Arc::new(registration_settings),
        };
        let app_state = web::Data::new(state.clone());
        let verifier_data = web::Data::new(state.tokens.first_party_verifier().clone());
        let cors_origins = Arc::new(http_settings.cors_origins.clone());
        let admin_here = server_settings.admin_bind.is_none();
        let admin_app_state = app_state.clone();
        let mut server = HttpServer::new(move || {
            App::new()
                .wrap(actix_web::middleware::from_fn(
                    crate::http::context::request_context,
                ))
                .app_data(app_state.clone())
                .app_data(verifier_data.clone())
                .configure(crate::http::configure_with_cors(
                    &cors_origins,
                    admin_here,
                    &base,
                ))
                .default_service(web::to(crate::http::not_found))
        })
        .shutdown_timeout(10)
        // Signals are handled in `run_until_stopped`: readiness drains before the listener stops.
        .disable_signals()
        // DOS: headers must arrive in time (slowloris gets 408), idle connections close.
        .client_request_timeout(http_settings.request_timeout)
        .client_disconnect_timeout(Duration::from_secs(2))
        .keep_alive(Duration::from_secs(15))
        // DOS-13: a client that closes its connection abandons its request. actix's default
        // (half-closed HTTP/1 connections allowed) keeps the handler running after the client's
        // EOF, so 150 abandoned registrations were all hashed; refusing half-closure drops the
        // handler at EOF, and a request waiting for a hashing thread leaves the queue.
        .h1_allow_half_closed(false);
        if let Some(workers) = server_settings.workers {
            server = server.workers(workers);
        }
        let server = server
            .listen(listener)
            .map_err(|e| StartupError::Bind {
                addr: local.to_string(),
                reason: e.to_string(),
            })?
            .run();
        tracing::info!(address = %local, %issuer, "portcullis listening");

        let request_timeout = http_settings.request_timeout;
        let admin = match server_settings.admin_bind {
            None => None,
            Some(addr) => {
                let failed = |e: std::io::Error| StartupError::Bind {
                    addr: format!("{addr} (PORTCULLIS_ADMIN_BIND)"),
                    reason: e.to_string(),
                };
                let listener = TcpListener::bind(addr).map_err(failed)?;
                let admin_local = listener.local_addr().map_err(failed)?;
                let admin_server = HttpServer::new(move || {
                    App::new()
                        .wrap(actix_web::middleware::from_fn(
                            crate::http::context::request_context,
                        ))
                        .app_data(admin_app_state.clone())
                        .configure(crate::http::configure_admin_listener(&admin_base))
                        .default_service(web::to(crate::http::not_found))
                })
                .workers(1)
                .shutdown_timeout(10)
                .disable_signals()
                .client_request_timeout(request_timeout)
                .client_disconnect_timeout(Duration::from_secs(2))
                .keep_alive(Duration::from_secs(15))
                .listen(listener)
                .map_err(failed)?
                .run();
                tracing::info!(address = %admin_local, "admin API listening");
                Some((admin_local.port(), admin_server))
            }
        };

        Ok(Self {
            port: local.port(),
            issuer,
            server,
            admin,
            state,
            key_refresh_interval: key_settings.refresh_interval,
            server_settings,
            delivery: delivery.map(|transport| (outbox, transport, from)),
        })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The issuer identifier in effect.
    pub fn issuer(&self) -> &Issuer {
        &self.issuer
    }

    /// The port of the separate admin listener, if configured.
    pub fn admin_port(&self) -> Option<u16> {
        self.admin.as_ref().map(|(port, _)| *port)
    }

    /// A handle to stop the server (the admin listener stops with it).
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// The shared state (for in-process callers such as benchmarks).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until stopped (signal or handle), carrying out the key schedule (when this
    /// instance is the rotator) and reloading keys when the database changes.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let leadership = Leadership::new(self.key_refresh_interval);
        let lease = leadership.lease().clone();
        let keys_task = tokio::spawn(maintain_keys(
            self.state.clone(),
            leadership,
            self.key_refresh_interval,
            self.server_settings.janitor_interval,
        ));
        // Mail leaves through the outbox on its own task: no request waits for SMTP.
        let mail_task = self.delivery.map(|(outbox, transport, from)| {
            tokio::spawn(crate::mail::deliver_until_stopped(
                self.state.db.clone(),
                outbox,
                transport,
                from,
                self.state.clock.clone(),
            ))
        });
        let spares = Arc::clone(&self.state.key_context.spares);
        let interval = self.key_refresh_interval;
        let spares_task = tokio::spawn(async move { spares.keep_filled(interval).await });
        let signals_task = tokio::spawn(shut_down_on_signal(
            self.state.clone(),
            self.server.handle(),
            self.server_settings.shutdown_drain,
        ));
        let admin_handle = self.admin.as_ref().map(|(_, server)| server.handle());
        let admin_task = self.admin.map(|(_, server)| tokio::spawn(server));
        let result = self.server.await;
        if let Some(handle) = admin_handle {
            handle.stop(true).await;
        }
        if let Some(task) = admin_task {
            let _ = task.await;
        }
        keys_task.abort();
        if let Some(task) = mail_task {
            task.abort();
        }
        spares_task.abort();
        signals_task.abort();
        // Hand the rotator role on now rather than when the lease lapses (a restart, a
        // scale-down); if the database is away, the lease simply lapses.
        let ctx = self.state.key_context.clone();
        let released = self
            .state
            .db
            .run(move |conn| lease.release(conn, &ctx))
            .await;
        match released {
            Ok(true) => tracing::info!("released the key rotator lease"),
            Ok(false) => {}
            Err(error) => tracing::warn!(%error, "could not release the key rotator lease"),
        }
        tracing::info!("stopped");
        result
    }
}

/// Every `interval`: if this instance is (or becomes) the rotator, carry out the due key
/// transitions (then reload at once); in any case re-read the key states and reload when they
/// changed (a transition by another instance, the CLI or the admin API elsewhere). The rotator
/// role is a lease row in the database, taken and renewed through the pool (see
/// `keys::rotator`), on both backends.
async fn maintain_keys(
    state: AppState,
    mut leadership: Leadership,
    interval: Duration,
    janitor_interval: Duration,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let janitor_interval =
        chrono::Duration::from_std(janitor_interval).unwrap_or(chrono::Duration::MAX);
    let mut last_purge = state.clock.now();
    loop {
        ticker.tick().await;
        // The janitor runs on one instance at a time: the rotator.
        // Whether it is due is read from the application's clock, like every expiry it decides.
        if leadership.is_leading() && state.clock.now() - last_purge >= janitor_interval {
            last_purge = state.clock.now();
            purge_expired(&state).await;
        }
        let ctx = state.key_context.clone();
        let mut lead = leadership.clone();
        let ticked = state
            .db
            .run(move |conn| {
                let made = lead.tick(conn, &ctx);
                Ok::<_, KeyError>((lead, made))
            })
            .await;
        let made = match ticked {
            Ok((lead, made)) => {
                leadership = lead;
                made
            }
            // No connection (or the task failed): the lease is renewed at a later tick, or
            // lapses and passes to an instance that reaches the database.
            Err(error) => {
                leadership.step_down();
                Err(error)
            }
        };
        match made {
            Ok(made) if !made.is_empty() => {
                tracing::info!(transitions = ?made, "key schedule: transitions made");
                state.reload_keys().await;
                continue;
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "key schedule: tick failed; retrying next tick"),
        }
        if let Err(error) = state.clients.refresh(&state.db).await {
            tracing::warn!(%error, "checking clients failed; keeping the current set");
        }
        if let Err(error) = state.apis.refresh(&state.db).await {
            tracing::warn!(%error, "checking APIs failed; keeping the current set");
        }
        let states = state
            .db
            .run(|conn| Ok::<_, db::DbError>(db::queries::signing_keys::published_states(conn)?))
            .await;
        match states {
            Ok(states) if states.as_slice() == state.keys.current().fingerprint() => {}
            Ok(_) => state.reload_keys().await,
            Err(error) => {
                tracing::warn!(%error, "checking signing keys failed; keeping the current set")
            }
        }
    }
}

/// Rows of each kind one janitor batch deletes at most (one short write transaction).
const PURGE_BATCH: i64 = 1000;
/// Batches one janitor run does at most before it yields to its next run (a backlog of 10
/// million rows of one kind); each batch is its own transaction, so requests interleave.
const PURGE_MAX_BATCHES: usize = 10_000;

/// Janitor: deletes what expired or ended more than a day ago (codes, access-token records,
/// sessions, refresh families with their tokens), pending authorization requests once expired,
/// expired trusted devices and throttle windows that are over — batch after batch until a
/// batch finds less than a full batch of every kind, so it keeps up with any rate the server
/// accepts (DOS-07). Removed keys' private halves are erased when they are removed.
pub async fn purge_expired(state: &AppState) {
    let mut purged = db::queries::oauth::Purged::default();
    for _ in 0..PURGE_MAX_BATCHES {
        let now = state.clock.now_naive();
        let before = now - chrono::Duration::days(1);
        let throttle_before = now
            - chrono::Duration::from_std(state.account_settings.login_window)
                .unwrap_or(chrono::Duration::MAX);
        let batch = state
            .db
            .run(move |conn| {
                Ok::<_, db::DbError>(db::queries::oauth::purge_expired(
                    conn,
                    now,
                    before,
                    throttle_before,
                    PURGE_BATCH,
                )?)
            })
            .await;
        match batch {
            Ok(batch) => {
                purged.absorb(&batch);
                if batch.largest() < usize::try_from(PURGE_BATCH).unwrap_or(usize::MAX) {
                    break;
                }
            }
            Err(error) => {
                tracing::warn!(%error, "janitor failed; retrying at its next run");
                break;
            }
        }
    }
    // The JSON API's second-factor challenges (made only after a correct password, so their
    // number is bounded by the login budgets): expired ones go in one statement.
    let now = state.clock.now_naive();
    let challenges = state
        .db
        .run(move |conn| Ok::<_, db::DbError>(db::queries::factors::purge_challenges(conn, now)?))
        .await;
    match challenges {
        Ok(0) => {}
        Ok(rows) => tracing::info!(rows, "janitor deleted expired second-factor challenges"),
        Err(error) => tracing::warn!(%error, "janitor failed on second-factor challenges"),
    }
    // WebAuthn ceremonies: at most one live per pending request or user, so one statement too.
    let ceremonies = state
        .db
        .run(move |conn| crate::accounts::passkeys::purge_expired(conn, now))
        .await;
    match ceremonies {
        Ok(0) => {}
        Ok(rows) => tracing::info!(rows, "janitor deleted expired WebAuthn ceremonies"),
        Err(error) => tracing::warn!(%error, "janitor failed on WebAuthn ceremonies"),
    }
    purge_mail(state).await;
    expire_unused_clients(state).await;
    if purged.total() == 0 {
        return;
    }
    let counts = [
        ("authorization_requests", purged.authorization_requests),
        ("authorization_codes", purged.authorization_codes),
        ("access_tokens", purged.access_tokens),
        ("browser_sessions", purged.browser_sessions),
        ("refresh_families", purged.refresh_families),
        ("login_attempts", purged.login_attempts),
        ("trusted_devices", purged.trusted_devices),
        ("client_assertions", purged.client_assertions),
    ];
    for (kind, rows) in counts {
        state
            .metrics
            .janitor_deleted_rows(kind, u64::try_from(rows).unwrap_or(u64::MAX));
    }
    tracing::info!(?purged, "janitor deleted expired rows");
}

/// The janitor's part for dynamic client registration: deletes the dynamically registered
/// clients not used for a token within `PORTCULLIS_CLIENT_REGISTRATION_UNUSED_TTL` (each audited
/// as `client_expired`), batch after batch, then reloads the client registry.
async fn expire_unused_clients(state: &AppState) {
    let Some(ttl) = state.registration.unused_client_ttl else {
        return;
    };
    let ttl = chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX);
    let mut deleted = 0usize;
    for _ in 0..PURGE_MAX_BATCHES {
        let now = state.clock.now_naive();
        let batch = state
            .db
            .run(move |conn| {
                crate::oidc::registration::expire_unused(conn, now - ttl, now, PURGE_BATCH)
            })
            .await;
        match batch {
            Ok(rows) => {
                deleted += rows;
                if rows < usize::try_from(PURGE_BATCH).unwrap_or(usize::MAX) {
                    break;
                }
            }
            Err(error) => {
                tracing::warn!(%error, "janitor failed on unused dynamic clients");
                break;
            }
        }
    }
    if deleted == 0 {
        return;
    }
    tracing::info!(
        clients = deleted,
        "janitor deleted unused dynamically registered clients"
    );
    state.metrics.janitor_deleted_rows(
        "dynamic_clients",
        u64::try_from(deleted).unwrap_or(u64::MAX),
    );
    if let Err(error) = state.clients.reload(&state.db).await {
        tracing::warn!(%error, "reloading clients after the janitor failed");
    }
}

/// The janitor's part for mail: tokens expired more than a day ago, and outbox messages queued
/// more than two days ago (delivery gives up after one; their links have expired), batch after
/// batch.
async fn purge_mail(state: &AppState) {
    let (mut tokens, mut messages) = (0usize, 0usize);
    for _ in 0..PURGE_MAX_BATCHES {
        let now = state.clock.now_naive();
        let batch = state
            .db
            .run(move |conn| {
                let tokens = db::queries::email_tokens::purge(
                    conn,
                    now - chrono::Duration::days(1),
                    PURGE_BATCH,
                )?;
                let messages =
                    db::queries::outbox::purge(conn, now - chrono::Duration::days(2), PURGE_BATCH)?;
                Ok::<_, db::DbError>((tokens, messages))
            })
            .await;
        match batch {
            Ok((t, m)) => {
                tokens += t;
                messages += m;
                let full = usize::try_from(PURGE_BATCH).unwrap_or(usize::MAX);
                if t < full && m < full {
                    break;
                }
            }
            Err(error) => {
                tracing::warn!(%error, "janitor failed on mail; retrying at its next run");
                break;
            }
        }
    }
    for (kind, rows) in [("email_tokens", tokens), ("mail_outbox", messages)] {
        if rows > 0 {
            state
                .metrics
                .janitor_deleted_rows(kind, u64::try_from(rows).unwrap_or(u64::MAX));
        }
    }
}

/// On SIGTERM or SIGINT: readiness answers 503 for `PORTCULLIS_SHUTDOWN_DRAIN`, then the
/// listener stops and in-flight requests get up to 10 s to finish. Key transitions are single
/// transactions, so stopping never leaves a rotation half done.
async fn shut_down_on_signal(state: AppState, server: ServerHandle, drain: Duration) {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = terminate => {}
        result = tokio::signal::ctrl_c() => {
            if result.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }
    state
        .draining
        .store(true, std::sync::atomic::Ordering::Relaxed);
    tracing::info!(
        drain_seconds = drain.as_secs_f64(),
        "shutdown requested: readiness answers 503, then the listener stops"
    );
    tokio::time::sleep(drain).await;
    server.stop(true).await;
}
