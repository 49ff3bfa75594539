//! Every setting, declared once: its doc, name, type and default. The flag (`--name-with-dashes`),
//! the environment variable (`PORTCULLIS_NAME`) and the configuration file's key (`name`) are
//! derived from the name; the README's table is checked against this list by a test.

use std::path::PathBuf;

use secrecy::SecretString;

use super::declare::DefaultValue::{Derived, Text, Unset};
use super::declare::{HumanDuration, declare_settings};

declare_settings! {
    /// Database URL: `sqlite://PATH` (the embedded setup) or `postgres://…`; `DATABASE_URL` is
    /// read when this is unset.
    database_url: String = Text("sqlite://data/portcullis.db");

    /// Address to listen on (`IP:PORT`; port 0 picks a free one).
    bind: String = Text("127.0.0.1:8080");

    /// Public issuer URL, used byte-identically in every token and document; every route is
    /// served under its path.
    issuer: Option<String> = Derived(
        "`http://<bind>` (`http://127.0.0.1:<port>` when bound to `0.0.0.0`, `http://[::1]:<port>` for `[::]`)"
    );

    /// Accept a plain-http issuer on a host that is not loopback (`true`/`false`): codes, tokens,
    /// passwords and cookies then cross the network unencrypted.
    insecure_http_issuer: bool = Text("false");

    /// Directory holding the key-encryption key file `kek`.
    keys_dir: PathBuf = Text("keys");

    /// Key-encryption key: 32 bytes, base64. Takes precedence over `<keys-dir>/kek`.
    kek: Option<SecretString> = Unset;

    /// `max-age` of the JWKS and discovery responses, in seconds.
    jwks_max_age: u64 = Text("300");

    /// RSA modulus size for new RS256 keys: 2048, 3072 or 4096.
    rsa_key_bits: usize = Text("2048");

    /// Maximum connections in the database pool.
    db_pool_size: u32 = Text("10");

    /// How long a request waits for a pooled connection before it gets a 503 (`5s`, `500ms`).
    db_pool_timeout: HumanDuration = Text("5s");

    /// The longest a single database statement may run (PostgreSQL `statement_timeout`) before it
    /// is cancelled and the request gets a 503.
    db_statement_timeout: HumanDuration = Text("5s");

    /// What sits between Portcullis and PostgreSQL: `none` (direct, or PgBouncer in session
    /// pooling) or `transaction` (PgBouncer's `pool_mode = transaction`: no named prepared
    /// statements, and the statement timeout set per transaction instead of per session).
    db_pooler: String = Text("none");

    /// How often a running server re-reads the signing keys from the database (and the rotator
    /// checks the schedule).
    key_refresh_interval: HumanDuration = Text("2s");

    /// Automatic signing-key rotation period (`30d`); `0` rotates only on demand.
    key_rotation_interval: HumanDuration = Text("30d");

    /// How long a new key is published before it signs: at least the JWKS max-age plus the key
    /// refresh interval.
    key_publish_lead: Option<HumanDuration> = Derived("JWKS max-age + `60s`");

    /// How long a retired key stays published: at least the longest token lifetime.
    key_retention: Option<HumanDuration> = Derived("longest token lifetime + `60s` + refresh interval");

    /// How long a client may take to send a request's headers (and again its body) before it gets
    /// 408 and the connection closes (slowloris).
    request_timeout: HumanDuration = Text("10s");

    /// On SIGTERM/SIGINT, how long readiness answers 503 (so load balancers stop sending traffic)
    /// before the listener closes; in-flight requests then get up to 10 s more.
    shutdown_drain: HumanDuration = Text("5s");

    /// A separate address for the admin API (`/admin/…`), which the public listener then does not
    /// serve; unset, the admin API is on the public listener (bearer-authenticated).
    admin_bind: Option<String> = Unset;

    /// HTTP worker threads.
    workers: Option<usize> = Derived("one per core");

    /// Argon2id memory cost in KiB (OWASP: 19 MiB).
    argon2_memory_kib: u32 = Text("19456");

    /// Argon2id passes (OWASP).
    argon2_iterations: u32 = Text("2");

    /// Argon2id lanes (OWASP).
    argon2_parallelism: u32 = Text("1");

    /// Password hashes computed at once at most.
    hashing_concurrency: Option<usize> = Derived("one per core");

    /// Requests that may wait for a hashing thread; beyond them a login or registration gets 503
    /// with `Retry-After` at once.
    hashing_queue: Option<usize> = Derived("8 × hashing concurrency");

    /// Access-token lifetime (`900s`, `15m`).
    access_token_ttl: HumanDuration = Text("15m");

    /// ID-token lifetime (`15m`).
    id_token_ttl: HumanDuration = Text("15m");

    /// Access-token algorithm: ES256 or RS256.
    access_token_alg: String = Text("ES256");

    /// Audience of access tokens from the JSON API.
    access_token_audience: Option<String> = Derived("the issuer");

    /// Whether anyone may register through the JSON API (`true`/`false`); on Postgres
    /// (production) operators create users unless this is set.
    open_registration: Option<bool> = Derived("`true` on SQLite, `false` on Postgres");

    /// A refresh-token family ends after this long without a refresh.
    refresh_idle_ttl: HumanDuration = Text("7d");

    /// A refresh-token family ends this long after login, whatever its use.
    refresh_absolute_ttl: HumanDuration = Text("30d");

    /// How long a rotated refresh token may be presented once more, while its successor is
    /// unused (a lost response); `0s` is never, at most 60s.
    refresh_reuse_grace: HumanDuration = Text("0s");

    /// Login attempts per account from one client network (or from one trusted device) in one
    /// window before 429.
    login_max_attempts: u32 = Text("5");

    /// Login attempts per account from all untrusted devices together in one window before 429
    /// (a trusted device keeps its own budget).
    login_max_attempts_per_account: u32 = Text("100");

    /// Login attempts per client IP in one window before 429.
    login_max_attempts_per_ip: u32 = Text("20");

    /// Registrations per client IP in one login window before 429, counted before any hashing.
    register_max_per_ip: u32 = Text("10");

    /// Second factors for the whole deployment: `off` (asked only when a client requires one or a
    /// request asks for the multi-factor class), `optional` (asked of every user who enrolled
    /// one) or `required` (every sign-in; a user without one enrols while signing in).
    second_factor: String = Text("optional");

    /// The throttling window, for logins and registrations.
    login_window: HumanDuration = Text("15m");

    /// How often the janitor deletes what ended more than a day ago (on one instance).
    janitor_interval: HumanDuration = Text("5m");

    /// Proxies whose `X-Forwarded-For` is trusted (comma-separated IPs).
    trusted_proxies: Option<String> = Unset;

    /// Browser origins allowed to call the JSON API cross-origin (comma-separated, exact, e.g.
    /// `https://app.example.com`); unset, CORS is off.
    cors_origins: Option<String> = Unset;

    /// SMTP server that mail (address verification, password reset) goes through; unset, no
    /// mail leaves: each is logged (without its link) and kept in the outbox, which `portcullis
    /// mail outbox` prints.
    smtp_host: Option<String> = Unset;

    /// SMTP port.
    smtp_port: Option<u32> = Derived("`587` (`starttls`), `465` (`tls`), `25` (`none`)");

    /// How the SMTP connection is protected: `starttls` (upgrade required), `tls` (implicit TLS,
    /// SMTPS) or `none` (plain, only to a loopback host).
    smtp_tls: String = Text("starttls");

    /// A PEM file of CA certificates the SMTP server's certificate must chain to, instead of the
    /// system's.
    smtp_ca_file: Option<PathBuf> = Unset;

    /// SMTP user name (AUTH PLAIN/LOGIN); unset, no authentication.
    smtp_username: Option<String> = Unset;

    /// SMTP password.
    smtp_password: Option<SecretString> = Unset;

    /// The `From` address of mail (`Name <address>` or an address).
    mail_from: Option<String> = Derived("`Portcullis <noreply@HOST>`, HOST the issuer's host (`localhost` for an IP)");

    /// How long an address-verification link works.
    email_verification_ttl: HumanDuration = Text("24h");

    /// How long a password-reset link works.
    password_reset_ttl: HumanDuration = Text("30m");

    /// Mails (password resets, verification links) asked for one address in one login window.
    mail_max_per_address: u32 = Text("3");

    /// Mails (password resets, verification links) asked from one client network in one login
    /// window.
    mail_max_per_ip: u32 = Text("10");

    /// Outbound fetches (a client's `jwks_uri`, client ID metadata documents) may reach loopback
    /// addresses (`127.0.0.0/8`, `::1`): for tests and local development only, refused unless
    /// the issuer's host is loopback too. Every other special-use address stays refused.
    outbound_allow_loopback: bool = Text("false");

    /// A PEM file of CA certificates trusted by outbound fetches, besides the system's.
    outbound_ca_file: Option<PathBuf> = Unset;

    /// Longest an outbound fetch may take in all (at most 3 s of it to connect).
    outbound_timeout: HumanDuration = Text("5s");

    /// Resolve a `client_id` that is an https URL by fetching its client ID metadata document
    /// (`true`/`false`).
    client_id_metadata_documents: bool = Text("false");
    /// Dynamic client registration (RFC 7591, RFC 7592): `off`, `token` (with an initial access
    /// token an administrator issued) or `open` (also without one: public clients within the
    /// open policy).
    client_registration: String = Text("off");

    /// The scopes an openly registered client may be allowed (comma-separated OpenID or API
    /// scopes; an API scope lets it ask for that API's tokens); those it gets when it names none.
    client_registration_open_scopes: String = Text("openid,profile,email,offline_access");

    /// Whether open registration accepts https redirect URIs (`true`/`false`); otherwise only
    /// loopback http and private-use schemes (native apps, CLIs, local agents).
    client_registration_open_https: bool = Text("false");

    /// Open registrations per client network (an IPv6 /64) in one login window before 429.
    client_registration_max_per_ip: u32 = Text("10");

    /// Dynamically registered clients not used for a token for this long are deleted by the
    /// janitor (`0`: never).
    client_registration_unused_ttl: HumanDuration = Text("30d");
}
