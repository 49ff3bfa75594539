//! The command line: `serve`, `migrate` and `keys …`. Results go to stdout as JSON; logs to stderr.

use std::sync::Arc;

use anyhow::Context;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use serde::Serialize;

use crate::accounts::factors::SecondFactorPolicy;
use crate::accounts::profile::Editor;
use crate::accounts::users::{self, NewUser};
use crate::accounts::{Email, Password, PasswordHasher, Role, Username};
use crate::clock::Clock;
use crate::config::{Settings, SettingsArgs};
use crate::db::Db;
use crate::keys::lifecycle::{self, Actor, KeyContext, RotateRequest};
use crate::keys::{IdTokenAlg, KeyState, SigningAlg};
use crate::oidc::Issuer;
use crate::oidc::apis::{self as oidc_apis, ApiScope, ApiUpdate, NewApi};
use crate::oidc::client_auth::AuthMethod;
use crate::oidc::clients::{
    self as oidc_clients, GrantType, NewClient, PkcePolicy, RequestObjectAlg,
};
use crate::startup::{self, Application};
use crate::telemetry::LogFormat;

/// Portcullis: an OpenID Connect identity provider.
#[derive(Parser)]
#[command(name = "portcullis", version, about)]
pub struct Cli {
    /// Settings shared by every command.
    #[command(flatten)]
    pub settings: SettingsArgs,

    /// Log format on stderr.
    #[arg(
        long,
        env = "PORTCULLIS_LOG_FORMAT",
        global = true,
        value_enum,
        default_value_t
    )]
    pub log_format: LogFormat,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The command line, with each setting's environment variable and default in its help (they
/// are derived from its declaration, which clap does not see).
pub fn command() -> clap::Command {
    crate::config::DECLARED
        .iter()
        .fold(Cli::command(), |command, setting| {
            command.mut_arg(setting.name, |arg| {
                let doc = setting
                    .doc
                    .lines()
                    .map(str::trim)
                    .collect::<Vec<_>>()
                    .join(" ");
                let default = match setting.default {
                    crate::config::declare::DefaultValue::Text(text) => {
                        format!(" [default: {text}]")
                    }
                    crate::config::declare::DefaultValue::Derived(text) => {
                        format!(" [default: {}]", text.replace('`', ""))
                    }
                    crate::config::declare::DefaultValue::Unset => String::new(),
                };
                arg.help(format!("{doc}{default} [env: {}]", setting.env()))
            })
        })
}

/// Parses the process's arguments (exits with clap's message on a usage error).
pub fn parse() -> Cli {
    let matches = command().get_matches();
    Cli::from_arg_matches(&matches).unwrap_or_else(|error| error.exit())
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (runs pending migrations and creates keys on first start).
    Serve,
    /// Run pending database migrations and exit.
    Migrate,
    /// Manage signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Manage users. Passwords are read from stdin (one line), never from arguments.
    #[command(subcommand)]
    Users(UsersCommand),
    /// Manage OAuth clients (boxed: `clients create` takes many options).
    #[command(subcommand)]
    Clients(Box<ClientsCommand>),
    /// Manage APIs (resource servers): the audiences of access tokens and their scopes.
    #[command(subcommand)]
    Apis(ApisCommand),
    /// Inspect the configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Mail (address verification, password reset).
    #[command(subcommand)]
    Mail(MailCommand),
}

/// `portcullis mail …`
#[derive(Debug, Subcommand)]
pub enum MailCommand {
    /// Print the outbox as JSON, newest first: every queued mail with its state (`pending`,
    /// `sent`, `failed`) and, while unsent, its text with the link (opened with the KEK). With no
    /// SMTP server configured, this is where mail goes.
    Outbox,
}

/// `portcullis config …`
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate the configuration (file, environment, flags) and print the effective settings as
    /// JSON, secrets redacted. Exits non-zero naming the first bad setting.
    Check,
}

/// `portcullis clients …`
#[derive(Debug, Subcommand)]
#[expect(
    clippy::large_enum_variant,
    reason = "parsed once per run; `create`'s many options stay plain clap fields"
)]
pub enum ClientsCommand {
    /// Register a client; prints it as JSON with its `client_secret` (confidential clients; shown
    /// only now).
    Create {
        /// The client identifier.
        #[arg(long)]
        client_id: String,
        /// A public client (no secret; PKCE only), such as a single-page or native app.
        #[arg(long)]
        public: bool,
        /// An exact redirect URI (https, or http on loopback); repeatable.
        #[arg(long = "redirect-uri")]
        redirect_uris: Vec<String>,
        /// An allowed grant type: authorization_code, refresh_token, client_credentials,
        /// urn:ietf:params:oauth:grant-type:device_code (RFC 8628),
        /// urn:ietf:params:oauth:grant-type:token-exchange (RFC 8693); repeatable. Default: code + refresh with redirect URIs, else client_credentials.
        #[arg(long = "grant-type", value_parser = parse_grant)]
        grant_types: Vec<GrantType>,
        /// An allowed scope: an OpenID scope (openid, profile, email, address, phone, offline_access) or a scope
        /// of a registered API (`portcullis apis list`); repeatable. Default: the OpenID scopes.
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// An allowed audience of its access tokens; repeatable; the first is the default.
        /// Default: the issuer.
        #[arg(long = "audience")]
        audiences: Vec<String>,
        /// Algorithm of its access tokens (ES256 or RS256). Default ES256.
        #[arg(id = "client_access_token_alg", long = "access-token-signing-alg", value_parser = parse_alg, default_value = "ES256")]
        access_token_alg: SigningAlg,
        /// Algorithm of its ID tokens: RS256 (default), ES256, or none — unsigned ID tokens
        /// (`alg: none`, empty signature). OIDC Registration §2 allows none for clients that get
        /// no ID token from the authorization endpoint: every client here (`code` is the only
        /// response type), whose ID tokens come from the token endpoint over TLS (OIDC Core
        /// §3.1.3.7). Never accepted back as an `id_token_hint` or token-exchange subject.
        #[arg(id = "client_id_token_alg", long = "id-token-signing-alg", value_parser = parse_id_token_alg, default_value = "RS256")]
        id_token_alg: IdTokenAlg,
        /// Sign its userinfo responses (OIDC Core §5.3.2): a JWT (`application/jwt`) signed
        /// with the active key of this algorithm (RS256 or ES256). Default: plain JSON.
        #[arg(long = "userinfo-signed-response-alg", value_parser = parse_alg)]
        userinfo_signed_response_alg: Option<SigningAlg>,
        /// A first-party client: its users are not asked for consent.
        #[arg(long)]
        first_party: bool,
        /// An exact post-logout redirect URI; repeatable.
        #[arg(long = "post-logout-redirect-uri")]
        post_logout_redirect_uris: Vec<String>,
        /// An audience (resource server) whose access tokens this confidential client may
        /// introspect, besides its own (RFC 7662 §4); repeatable.
        #[arg(long = "introspection-audience")]
        introspection_audiences: Vec<String>,
        /// When the client must use PKCE: `required` (default; the only choice for a public
        /// client), `pkce_or_nonce` (an OpenID request with a nonce may omit it, RFC 9700
        /// §2.1.1) or `optional` (confidential clients).
        #[arg(long, value_parser = parse_pkce, default_value = "required")]
        pkce: PkcePolicy,
        /// A web origin (`https://app.example.com`, `http://127.0.0.1:5173`) whose browser code
        /// may call the token, revocation and userinfo endpoints (CORS), besides the origins of
        /// the redirect URIs; repeatable.
        #[arg(long = "web-origin")]
        web_origins: Vec<String>,
        /// Its second-factor policy: `off` (default: the deployment's), `optional` or
        /// `required`; it can raise the deployment's `PORTCULLIS_SECOND_FACTOR`, never lower it.
        #[arg(long = "second-factor-policy", id = "client_second_factor", value_parser = parse_second_factor, default_value = "off")]
        second_factor: SecondFactorPolicy,
        /// How it authenticates at the token, revocation and introspection endpoints (RFC 7591
        /// §2): `none` (public clients), `client_secret_basic` (default for confidential
        /// clients; `client_secret_post` is the same secret in the body, also accepted) or
        /// `private_key_jwt` (RFC 7523: a JWT signed with a key of `--jwks`; no secret).
        #[arg(long, value_parser = parse_auth_method)]
        token_endpoint_auth_method: Option<AuthMethod>,
        /// The client's public keys for `private_key_jwt`: a JSON Web Key Set, inline or
        /// `@FILE` (RSA ≥ 2048 bits with RS256/PS256, or EC P-256 with ES256; no private members).
        #[arg(long, value_parser = parse_jwks, conflicts_with = "jwks_uri")]
        jwks: Option<serde_json::Value>,
        /// Or the https URL of the client's JSON Web Key Set (`private_key_jwt`), fetched when
        /// needed (SSRF-safe: public addresses only, no redirects) and cached by its headers.
        #[arg(long)]
        jwks_uri: Option<String>,
        /// An audience (API identifier, RFC 8707) this confidential client may ask for by token
        /// exchange (RFC 8693; needs `--grant-type
        /// urn:ietf:params:oauth:grant-type:token-exchange`); repeatable; the first is the
        /// default.
        #[arg(long = "token-exchange-audience")]
        token_exchange_audiences: Vec<String>,
        /// A URL the client may pass as `request_uri` (OIDC Core §6.2): https (its fragment
        /// kept and compared), at most 512 bytes; repeatable, at most 10. Only these are ever
        /// fetched for it, through the SSRF-safe outbound fetcher.
        #[arg(long = "request-uri")]
        request_uris: Vec<String>,
        /// The algorithm its request objects must be signed with: RS256, PS256, ES256 (needs
        /// its keys, `private_key_jwt`) or none (unsigned only). Default: unsigned objects or
        /// any of RS256/PS256/ES256 its keys support.
        #[arg(long, value_parser = parse_request_object_alg)]
        request_object_signing_alg: Option<RequestObjectAlg>,
        /// How its users are identified to it (OIDC Core §8): `public` (default: `sub` is the
        /// user id) or `pairwise` (`sub` is the user's identifier in the client's sector, which
        /// clients of other sectors cannot correlate). Fixed once the client exists.
        #[arg(long, value_parser = ["public", "pairwise"])]
        subject_type: Option<String>,
        /// Pairwise: an https URL of a JSON array listing every redirect URI of the client,
        /// fetched now (SSRF-safe); its host is the sector. Default: the one host of the
        /// redirect URIs.
        #[arg(long, requires = "subject_type")]
        sector_identifier_uri: Option<String>,
    },
    /// Change a client's web origins, second-factor policy, keys or token-exchange audiences
    /// (each change audited on its own); prints the client as JSON.
    Update {
        /// The client identifier.
        #[arg(allow_hyphen_values = true)]
        client_id: String,
        /// Its second-factor policy: `off`, `optional` or `required`.
        #[arg(long = "second-factor-policy", id = "client_second_factor", value_parser = parse_second_factor)]
        second_factor: Option<SecondFactorPolicy>,
        /// A web origin (CORS), replacing the registered ones; repeatable. The redirect URIs'
        /// origins stay allowed.
        #[arg(long = "web-origin", conflicts_with = "no_web_origins")]
        web_origins: Vec<String>,
        /// Remove every registered web origin (the redirect URIs' origins stay allowed).
        #[arg(long)]
        no_web_origins: bool,
        /// Replace the client's public keys with this JSON Web Key Set (inline or `@FILE`): a
        /// confidential client then authenticates with `private_key_jwt` only (a secret it had
        /// stops working; `rotate-secret` goes back to a secret).
        #[arg(long, value_parser = parse_jwks, conflicts_with = "jwks_uri")]
        jwks: Option<serde_json::Value>,
        /// Replace the client's public keys with the JSON Web Key Set at this https URL (as
        /// `--jwks` otherwise).
        #[arg(long)]
        jwks_uri: Option<String>,
        /// An audience this client may ask for by token exchange (RFC 8693), replacing the
        /// registered ones; repeatable; the first is the default. The client must have the
        /// token-exchange grant.
        #[arg(long = "token-exchange-audience")]
        token_exchange_audiences: Vec<String>,
    },
    /// List every client (no secrets) as a JSON array.
    List,
    /// Delete a client; its refresh tokens stop working.
    Delete {
        /// The client identifier.
        #[arg(allow_hyphen_values = true)]
        client_id: String,
    },
    /// Replace a confidential client's secret; prints the new one (shown only now).
    RotateSecret {
        /// The client identifier.
        #[arg(allow_hyphen_values = true)]
        client_id: String,
    },
    /// Initial access tokens of dynamic client registration (RFC 7591 §3,
    /// `PORTCULLIS_CLIENT_REGISTRATION=token` or `open`).
    #[command(subcommand)]
    InitialToken(InitialTokenCommand),
}

/// `portcullis clients initial-token …`
#[derive(Debug, Subcommand)]
pub enum InitialTokenCommand {
    /// Issue a token for `POST /register` (`Authorization: Bearer …`); prints it as JSON with
    /// `initial_access_token` (shown only now; only its hash is stored).
    Create {
        /// What it is for (shown in the list).
        #[arg(long, default_value = "")]
        description: String,
        /// How long it is valid (`1d`, `12h`; at most 366 days).
        #[arg(long, value_parser = parse_duration_arg, default_value = "1d")]
        expires_in: std::time::Duration,
        /// How many registrations it allows; default no limit until it expires.
        #[arg(long)]
        max_uses: Option<i32>,
    },
    /// List every initial access token (never the token) with its state, as JSON.
    List,
    /// Revoke a token by id (clients registered with it stay).
    Revoke {
        /// The token's id (from `list`).
        id: String,
    },
}

fn parse_duration_arg(text: &str) -> Result<std::time::Duration, String> {
    crate::config::parse_duration(text)
}

/// `portcullis apis …`
#[derive(Debug, Subcommand)]
pub enum ApisCommand {
    /// Register an API; prints it as JSON.
    Create {
        /// Its identifier: the audience (`aud`) of its access tokens and the `resource` clients
        /// name (RFC 8707); an absolute URI without a fragment.
        #[arg(long)]
        identifier: String,
        /// A name for operators.
        #[arg(long)]
        name: String,
        /// A scope and its description shown on the consent page, as `NAME=DESCRIPTION`
        /// (`orders:read=Read your orders`); repeatable. Names are unique across APIs.
        #[arg(long = "scope", value_parser = parse_api_scope)]
        scopes: Vec<ApiScope>,
    },
    /// List every API with its scopes as a JSON array.
    List,
    /// Change an API's name or scopes; prints it as JSON.
    Update {
        /// The API's id or identifier.
        #[arg(allow_hyphen_values = true)]
        api: String,
        /// A new name.
        #[arg(long)]
        name: Option<String>,
        /// A scope to add, or whose description to replace, as `NAME=DESCRIPTION`; repeatable.
        #[arg(long = "scope", value_parser = parse_api_scope)]
        scopes: Vec<ApiScope>,
        /// A scope to remove (refused while a client is allowed it); repeatable.
        #[arg(long = "remove-scope")]
        remove_scopes: Vec<String>,
    },
    /// Delete an API (refused while a client is allowed one of its scopes).
    Delete {
        /// The API's id or identifier.
        #[arg(allow_hyphen_values = true)]
        api: String,
    },
}

fn parse_api_scope(text: &str) -> Result<ApiScope, String> {
    let (name, description) = text
        .split_once('=')
        .ok_or_else(|| format!("`{text}` is not NAME=DESCRIPTION"))?;
    Ok(ApiScope {
        name: name.to_owned(),
        description: description.to_owned(),
    })
}

fn parse_grant(text: &str) -> Result<GrantType, String> {
    GrantType::parse(text).ok_or_else(|| {
        format!(
            "`{text}` is not authorization_code, refresh_token, client_credentials, urn:ietf:params:oauth:grant-type:device_code or urn:ietf:params:oauth:grant-type:token-exchange"
        )
    })
}

/// `portcullis users …`; USER is an id, a username or an email.
#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Create a user; the password is read from stdin. Prints the user as JSON.
    Create {
        /// Username (3–64 of letters, digits, '.', '_', '-').
        #[arg(long)]
        username: String,
        /// Email address.
        #[arg(long)]
        email: String,
        /// A role to grant (repeatable).
        #[arg(long = "role")]
        roles: Vec<String>,
    },
    /// List every user as a JSON array.
    List,
    /// Report stored values that no longer validate (emails, claims) as JSON
    /// `{"stale": [{user_id, username, field, value, reason}]}`; changes nothing. Exits non-zero
    /// when any is found.
    Check,
    /// Change a user's email and standard claims (OIDC Core §5.1); prints the user. An empty
    /// value clears a claim. Only the options given change.
    Update(Box<UserUpdate>),
    /// Disable a user.
    Disable {
        /// The user.
        #[arg(allow_hyphen_values = true)]
        user: String,
    },
    /// Remove every second factor of a user (TOTP, recovery codes), for one who lost their
    /// device; audited. Prints `{"removed_factors": n}`.
    ResetSecondFactors {
        /// The user.
        #[arg(allow_hyphen_values = true)]
        user: String,
    },
    /// Replace a user's password with one read from stdin.
    SetPassword {
        /// The user.
        #[arg(allow_hyphen_values = true)]
        user: String,
    },
    /// Grant a role.
    AddRole {
        /// The user.
        #[arg(allow_hyphen_values = true)]
        user: String,
        /// The role.
        #[arg(allow_hyphen_values = true)]
        role: String,
    },
    /// Withdraw a role.
    RemoveRole {
        /// The user.
        #[arg(allow_hyphen_values = true)]
        user: String,
        /// The role.
        #[arg(allow_hyphen_values = true)]
        role: String,
    },
}

/// `portcullis users update USER …`: each option a claim of OIDC Core §5.1.
#[derive(Debug, clap::Args)]
pub struct UserUpdate {
    /// The user.
    #[arg(allow_hyphen_values = true)]
    pub user: String,
    /// Email address (a new one is unverified unless --email-verified is given).
    #[arg(long)]
    pub email: Option<String>,
    /// `email_verified`.
    #[arg(long)]
    pub email_verified: Option<bool>,
    /// Full name.
    #[arg(long)]
    pub name: Option<String>,
    /// Given name(s).
    #[arg(long)]
    pub given_name: Option<String>,
    /// Surname(s).
    #[arg(long)]
    pub family_name: Option<String>,
    /// Middle name(s).
    #[arg(long)]
    pub middle_name: Option<String>,
    /// Casual name.
    #[arg(long)]
    pub nickname: Option<String>,
    /// Profile page URL (http or https).
    #[arg(long)]
    pub profile: Option<String>,
    /// Picture URL (http or https).
    #[arg(long)]
    pub picture: Option<String>,
    /// Web page URL (http or https).
    #[arg(long)]
    pub website: Option<String>,
    /// Gender.
    #[arg(long)]
    pub gender: Option<String>,
    /// Birthdate: YYYY-MM-DD, 0000-MM-DD or YYYY.
    #[arg(long)]
    pub birthdate: Option<String>,
    /// IANA time zone, e.g. Europe/Paris.
    #[arg(long)]
    pub zoneinfo: Option<String>,
    /// BCP 47 language tag, e.g. en-US.
    #[arg(long)]
    pub locale: Option<String>,
    /// E.164 phone number, e.g. +14155550100.
    #[arg(long)]
    pub phone_number: Option<String>,
    /// `phone_number_verified`.
    #[arg(long)]
    pub phone_number_verified: Option<bool>,
    /// The address as a JSON object (formatted, street_address, locality, region,
    /// postal_code, country); `{}` clears it.
    #[arg(long)]
    pub address: Option<String>,
}

impl UserUpdate {
    /// The patch these options make ([`users::update_claims`]).
    fn patch(&self) -> anyhow::Result<serde_json::Map<String, serde_json::Value>> {
        use serde_json::Value;
        let mut patch = serde_json::Map::new();
        let texts = [
            ("email", &self.email),
            ("name", &self.name),
            ("given_name", &self.given_name),
            ("family_name", &self.family_name),
            ("middle_name", &self.middle_name),
            ("nickname", &self.nickname),
            ("profile", &self.profile),
            ("picture", &self.picture),
            ("website", &self.website),
            ("gender", &self.gender),
            ("birthdate", &self.birthdate),
            ("zoneinfo", &self.zoneinfo),
            ("locale", &self.locale),
            ("phone_number", &self.phone_number),
        ];
        for (name, value) in texts {
            if let Some(value) = value {
                patch.insert(name.to_owned(), Value::String(value.clone()));
            }
        }
        for (name, value) in [
            ("email_verified", self.email_verified),
            ("phone_number_verified", self.phone_number_verified),
        ] {
            if let Some(value) = value {
                patch.insert(name.to_owned(), Value::Bool(value));
            }
        }
        if let Some(address) = &self.address {
            let value: Value = serde_json::from_str(address)
                .map_err(|_| anyhow::anyhow!("address: must be a JSON object"))?;
            patch.insert("address".to_owned(), value);
        }
        Ok(patch)
    }
}

/// `portcullis keys …`
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// List every key (no key material) with its next scheduled change, as a JSON array.
    List,
    /// Start a rotation: a new key per algorithm, published now, signing after the publish lead.
    Rotate {
        /// Activate at once (emergency): resource servers' cached JWKS may lag.
        #[arg(long)]
        immediate: bool,
        /// Only this algorithm (ES256 or RS256); repeatable. Default: every algorithm.
        #[arg(long = "alg", value_parser = parse_alg)]
        algs: Vec<SigningAlg>,
    },
    /// Revoke a key (compromise): removed from the JWKS at once; an active key is replaced in
    /// the same step (by its pending successor if there is one).
    Revoke {
        /// The key id (a thumbprint may start with `-`).
        #[arg(allow_hyphen_values = true)]
        kid: String,
        /// Accepted for compatibility with earlier releases: an active key is always replaced.
        #[arg(long, hide = true)]
        replace: bool,
    },
}

fn parse_second_factor(text: &str) -> Result<SecondFactorPolicy, String> {
    SecondFactorPolicy::parse(text)
        .ok_or_else(|| format!("`{text}` is not off, optional or required"))
}

fn parse_pkce(text: &str) -> Result<PkcePolicy, String> {
    PkcePolicy::parse(text)
        .ok_or_else(|| format!("`{text}` is not required, pkce_or_nonce or optional"))
}

fn parse_auth_method(text: &str) -> Result<AuthMethod, String> {
    AuthMethod::parse(text).ok_or_else(|| {
        format!("`{text}` is not none, client_secret_basic, client_secret_post or private_key_jwt")
    })
}

/// A JSON Web Key Set given inline or as `@FILE`.
fn parse_jwks(text: &str) -> Result<serde_json::Value, String> {
    let json = match text.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?,
        None => text.to_owned(),
    };
    serde_json::from_str(&json).map_err(|e| format!("not a JSON Web Key Set: {e}"))
}

fn parse_request_object_alg(text: &str) -> Result<RequestObjectAlg, String> {
    RequestObjectAlg::parse(text)
        .ok_or_else(|| format!("`{text}` is not none, RS256, PS256 or ES256"))
}

fn parse_alg(text: &str) -> Result<SigningAlg, String> {
    SigningAlg::parse(text).ok_or_else(|| format!("`{text}` is not ES256 or RS256"))
}

fn parse_id_token_alg(text: &str) -> Result<IdTokenAlg, String> {
    IdTokenAlg::parse(text).ok_or_else(|| format!("`{text}` is not RS256, ES256 or none"))
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = Settings::load(cli.settings)?;
    match cli.command {
        Command::Serve => {
            let app = Application::build(settings).await?;
            app.run_until_stopped().await.context("server failed")?;
        }
        Command::Migrate => {
            let applied = startup::migrate(&settings.db.url, settings.db.pooler).await?;
            print_json(&serde_json::json!({ "applied": applied }))?;
        }
        Command::Keys(command) => keys(settings, command).await?,
        Command::Users(command) => users(settings, command).await?,
        Command::Clients(command) => clients(settings, *command).await?,
        Command::Apis(command) => apis(settings, command).await?,
        Command::Config(ConfigCommand::Check) => print_json(&settings.redacted())?,
        Command::Mail(command) => mail(settings, command).await?,
    }
    Ok(())
}

async fn mail(settings: Settings, command: MailCommand) -> anyhow::Result<()> {
    use secrecy::ExposeSecret;
    startup::migrate(&settings.db.url, settings.db.pooler).await?;
    let db = Db::for_settings(&settings.db, 2, Arc::default());
    // Bodies are sealed under the KEK: the same one the server uses.
    let kek_text = settings
        .keys
        .kek
        .as_ref()
        .map(|kek| kek.expose_secret().to_owned());
    let (kek, _) =
        crate::keys::kek::Kek::load_or_create(kek_text.as_deref(), &settings.keys.keys_dir, false)?;
    match command {
        MailCommand::Outbox => {
            let entries = db
                .run(move |conn| crate::mail::list(conn, &kek).map_err(anyhow::Error::from))
                .await?;
            print_json(&entries)
        }
    }
}

async fn keys(settings: Settings, command: KeysCommand) -> anyhow::Result<()> {
    startup::install_crypto_provider();
    startup::migrate(&settings.db.url, settings.db.pooler).await?;
    let db = Db::for_settings(&settings.db, 2, Arc::default());
    let policy = settings.keys.policy;
    if let KeysCommand::List = command {
        let keys = db.run(move |conn| lifecycle::list(conn, &policy)).await?;
        return print_json(&keys);
    }
    // Changing keys needs the KEK, and every existing key must open under it first, so a wrong
    // KEK can never add keys sealed under another one.
    let clock = Clock::system();
    let boot = lifecycle::bootstrap(&db, &settings.keys, &clock).await?;
    let ctx = KeyContext::new(boot.kek, policy, settings.keys.rsa_key_size, clock);
    match command {
        KeysCommand::List => Ok(()),
        KeysCommand::Rotate { immediate, algs } => {
            let request = RotateRequest {
                algs: if algs.is_empty() {
                    SigningAlg::ALL.to_vec()
                } else {
                    algs
                },
                immediate,
            };
            // The CLI is its own process, not a request: it makes the keys it may need here.
            ctx.spares.fill(&request.algs).await?;
            let rotation = lifecycle::rotate_keys(&db, &ctx, request, Actor::Cli).await?;
            print_json(&rotation)
        }
        KeysCommand::Revoke { kid, .. } => {
            let lookup = kid.clone();
            if let Ok((alg, KeyState::Active)) =
                db.run(move |conn| lifecycle::key_alg(conn, &lookup)).await
            {
                ctx.spares.fill(&[alg]).await?;
            }
            let revocation = lifecycle::revoke_key(&db, &ctx, kid, Actor::Cli).await?;
            print_json(&revocation)
        }
    }
}

async fn clients(settings: Settings, command: ClientsCommand) -> anyhow::Result<()> {
    startup::migrate(&settings.db.url, settings.db.pooler).await?;
    let db = Db::for_settings(&settings.db, 2, Arc::default());
    let clock = Clock::system();
    // The issuer is the default audience; without PORTCULLIS_ISSUER it follows the bind address,
    // as `serve` does.
    let issuer = settings
        .server
        .issuer
        .clone()
        .unwrap_or_else(|| Issuer::from_bind(settings.server.bind))
        .to_string();
    match command {
        ClientsCommand::Create {
            client_id,
            public,
            redirect_uris,
            grant_types,
            scopes,
            audiences,
            access_token_alg,
            id_token_alg,
            userinfo_signed_response_alg,
            first_party,
            post_logout_redirect_uris,
            introspection_audiences,
            pkce,
            web_origins,
            second_factor,
            token_endpoint_auth_method,
            jwks,
            jwks_uri,
            token_exchange_audiences,
            request_uris,
            request_object_signing_alg,
            subject_type,
            sector_identifier_uri,
        } => {
            let fetcher = crate::verify::fetch::SafeFetcher::new(&settings.outbound.fetch)
                .map_err(anyhow::Error::msg)?;
            let subject_type = crate::oidc::subjects::checked_subject_type(
                &fetcher,
                subject_type.as_deref(),
                sector_identifier_uri.as_deref(),
                &redirect_uris,
                &client_id,
            )
            .await
            .map_err(anyhow::Error::msg)?;
            let new = NewClient {
                client_id,
                public,
                redirect_uris,
                grant_types,
                scopes,
                audiences,
                access_token_alg,
                id_token_alg,
                userinfo_signed_response_alg,
                first_party,
                post_logout_redirect_uris,
                introspection_audiences,
                pkce,
                web_origins,
                second_factor,
                token_endpoint_auth_method,
                jwks,
                jwks_uri,
                token_exchange_audiences,
                request_uris,
                request_object_signing_alg,
                subject_type,
            };
            let registered = audited(&db, "client_created", move |conn| {
                oidc_clients::create(conn, new, &issuer, clock.now_naive())
            })
            .await?;
            print_json(&registered)
        }
        ClientsCommand::Update {
            client_id,
            web_origins,
            no_web_origins,
            second_factor,
            jwks,
            jwks_uri,
            token_exchange_audiences,
        } => {
            let change_origins = !web_origins.is_empty() || no_web_origins;
            let keys = match (jwks, jwks_uri) {
                (Some(jwks), _) => Some(oidc_clients::KeySource::Jwks(jwks)),
                (None, Some(uri)) => Some(oidc_clients::KeySource::JwksUri(uri)),
                (None, None) => None,
            };
            if !change_origins
                && second_factor.is_none()
                && keys.is_none()
                && token_exchange_audiences.is_empty()
            {
                anyhow::bail!(
                    "nothing to change: give --web-origin (repeatable), --no-web-origins, --second-factor-policy, --jwks, --jwks-uri or --token-exchange-audience (repeatable)"
                );
            }
            let mut client = None;
            if change_origins {
                let (id, clock) = (client_id.clone(), clock.clone());
                client = Some(
                    audited(&db, "client_web_origins_changed", move |conn| {
                        oidc_clients::set_web_origins(conn, &id, &web_origins, clock.now_naive())
                    })
                    .await?,
                );
            }
            if let Some(policy) = second_factor {
                let (id, clock) = (client_id.clone(), clock.clone());
                client = Some(
                    audited(&db, "client_second_factor_changed", move |conn| {
                        oidc_clients::set_second_factor(conn, &id, policy, clock.now_naive())
                    })
                    .await?,
                );
            }
            if !token_exchange_audiences.is_empty() {
                let (id, clock) = (client_id.clone(), clock.clone());
                client = Some(
                    audited(
                        &db,
                        "client_token_exchange_audiences_changed",
                        move |conn| {
                            oidc_clients::set_token_exchange_audiences(
                                conn,
                                &id,
                                &token_exchange_audiences,
                                clock.now_naive(),
                            )
                        },
                    )
                    .await?,
                );
            }
            if let Some(keys) = keys {
                client = Some(
                    audited(&db, "client_jwks_changed", move |conn| {
                        oidc_clients::set_keys(conn, &client_id, &keys, clock.now_naive())
                    })
                    .await?,
                );
            }
            print_json(&client)
        }
        ClientsCommand::List => print_json(&db.run(oidc_clients::list).await?),
        ClientsCommand::Delete { client_id } => {
            let shown = client_id.clone();
            audited(&db, "client_deleted", move |conn| {
                oidc_clients::delete(conn, &client_id, clock.now_naive())
            })
            .await?;
            print_json(&serde_json::json!({ "deleted": shown }))
        }
        ClientsCommand::RotateSecret { client_id } => {
            let registered = audited(&db, "client_secret_rotated", move |conn| {
                oidc_clients::rotate_secret(conn, &client_id, clock.now_naive())
            })
            .await?;
            print_json(&registered)
        }
        ClientsCommand::InitialToken(command) => initial_tokens(&db, &clock, command).await,
    }
}

async fn initial_tokens(
    db: &Db,
    clock: &Clock,
    command: InitialTokenCommand,
) -> anyhow::Result<()> {
    use crate::oidc::registration;
    let now = clock.now_naive();
    match command {
        InitialTokenCommand::Create {
            description,
            expires_in,
            max_uses,
        } => {
            let new = registration::NewInitialToken {
                description,
                ttl: expires_in,
                max_uses,
            };
            let issued = audited(db, "initial_access_token_issued", move |conn| {
                registration::issue_initial_token(conn, CLI_ACTOR, new, now)
            })
            .await?;
            print_json(&issued)
        }
        InitialTokenCommand::List => print_json(
            &db.run(move |conn| registration::list_initial_tokens(conn, now))
                .await?,
        ),
        InitialTokenCommand::Revoke { id } => {
            let view = audited(db, "initial_access_token_revoked", move |conn| {
                registration::revoke_initial_token(conn, &id, now)
            })
            .await?;
            print_json(&view)
        }
    }
}

async fn apis(settings: Settings, command: ApisCommand) -> anyhow::Result<()> {
    startup::migrate(&settings.db.url, settings.db.pooler).await?;
    let db = Db::for_settings(&settings.db, 2, Arc::default());
    let clock = Clock::system();
    match command {
        ApisCommand::Create {
            identifier,
            name,
            scopes,
        } => {
            // The issuer is reserved (the first-party API's audience); without
            // PORTCULLIS_ISSUER it follows the bind address, as `serve` does.
            let issuer = settings
                .server
                .issuer
                .clone()
                .unwrap_or_else(|| Issuer::from_bind(settings.server.bind))
                .to_string();
            let new = NewApi {
                identifier,
                name,
                scopes,
            };
            let api = audited(&db, "api_created", move |conn| {
                oidc_apis::create(conn, new, &issuer, clock.now_naive())
            })
            .await?;
            print_json(&api)
        }
        ApisCommand::List => print_json(&db.run(oidc_apis::list).await?),
        ApisCommand::Update {
            api,
            name,
            scopes,
            remove_scopes,
        } => {
            let update = ApiUpdate {
                name,
                upsert_scopes: scopes,
                remove_scopes,
                replace_scopes: None,
            };
            let api = audited(&db, "api_changed", move |conn| {
                oidc_apis::update(conn, &api, update, clock.now_naive())
            })
            .await?;
            print_json(&api)
        }
        ApisCommand::Delete { api } => {
            let deleted = audited(&db, "api_deleted", move |conn| {
                oidc_apis::delete(conn, &api)
            })
            .await?;
            print_json(&serde_json::json!({ "deleted": deleted.identifier, "id": deleted.id }))
        }
    }
}

async fn users(settings: Settings, command: UsersCommand) -> anyhow::Result<()> {
    startup::migrate(&settings.db.url, settings.db.pooler).await?;
    let db = Db::for_settings(&settings.db, 2, Arc::default());
    let accounts = settings.accounts;
    let hasher = || PasswordHasher::new(accounts.password_hashing, accounts.hashing_concurrency);
    let clock = Clock::system();
    match command {
        UsersCommand::Create {
            username,
            email,
            roles,
        } => {
            let new = NewUser {
                username: Username::parse(&username)?,
                email: Email::parse(&email)?,
                roles: roles
                    .iter()
                    .map(|r| Role::parse(r))
                    .collect::<Result<_, _>>()?,
                password: read_password()?,
            };
            new.password
                .check_not_account_name(&new.username, &new.email)?;
            let user = users::create(&db, &hasher()?, &clock, new).await?;
            tracing::info!(user_id = %user.id, "created user");
            print_json(&user)
        }
        UsersCommand::List => print_json(&db.run(users::list).await?),
        UsersCommand::Check => {
            let today = clock.now_naive().date();
            let stale = db.run(move |conn| users::stale_values(conn, today)).await?;
            print_json(&serde_json::json!({ "stale": stale }))?;
            if !stale.is_empty() {
                anyhow::bail!(
                    "{} stored value(s) no longer validate; see the report on stdout",
                    stale.len()
                );
            }
            Ok(())
        }
        UsersCommand::Update(update) => {
            let patch = update.patch()?;
            let user = update.user.clone();
            print_json(
                &audited(&db, "user_updated", move |conn| {
                    users::update_claims(conn, &user, &patch, Editor::Admin, clock.now_naive())
                })
                .await?,
            )
        }
        UsersCommand::Disable { user } => print_json(
            &audited(&db, "user_disabled", move |conn| {
                users::disable(conn, &user, CLI_ACTOR, clock.now_naive())
            })
            .await?,
        ),
        UsersCommand::ResetSecondFactors { user } => {
            let removed = audited(&db, "second_factors_reset", move |conn| {
                let id = users::get(conn, &user)?.id;
                let removed = crate::accounts::factors::reset(conn, &id)?;
                Ok::<_, users::AccountError>(crate::accounts::audit::Change::made(
                    removed,
                    id,
                    serde_json::json!({ "removed_factors": removed }),
                ))
            })
            .await?;
            print_json(&serde_json::json!({ "removed_factors": removed }))
        }
        UsersCommand::SetPassword { user } => {
            let password = read_password()?;
            print_json(
                &users::set_password(&db, &hasher()?, &clock, user, password, CLI_ACTOR.into())
                    .await?,
            )
        }
        UsersCommand::AddRole { user, role } => {
            let role = Role::parse(&role)?;
            print_json(
                &audited(&db, "role_granted", move |conn| {
                    users::add_role(conn, &user, &role, clock.now_naive())
                })
                .await?,
            )
        }
        UsersCommand::RemoveRole { user, role } => {
            let role = Role::parse(&role)?;
            print_json(
                &audited(&db, "role_withdrawn", move |conn| {
                    users::remove_role(conn, &user, &role, clock.now_naive())
                })
                .await?,
            )
        }
    }
}

/// A client or user change by the CLI, in the audit trail as actor `cli` (as the admin API's
/// changes are under the administrator's id), committed together with its record.
async fn audited<T, E, F>(db: &Db, action: &'static str, change: F) -> Result<T, E>
where
    F: FnOnce(&mut crate::db::DbConn) -> Result<crate::accounts::audit::Change<T>, E>
        + Send
        + 'static,
    T: Send + 'static,
    E: From<crate::db::DbError> + From<diesel::result::Error> + Send + 'static,
{
    let now = Clock::system().now_naive();
    crate::accounts::audit::audited(db, CLI_ACTOR.to_owned(), action, now, change).await
}

/// The actor of the CLI's changes in the audit trail.
const CLI_ACTOR: &str = "cli";

/// One line from stdin; only the line ending is removed (no trimming, no truncation).
fn read_password() -> anyhow::Result<Password> {
    let mut line = zeroize::Zeroizing::new(String::new());
    std::io::stdin()
        .read_line(&mut line)
        .context("reading the password from stdin")?;
    let line = line
        .strip_suffix('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .unwrap_or(&line)
        .to_owned();
    // `line` is wiped on drop; `Password` wipes its own copy.
    Ok(Password::parse(line)?)
}

fn print_json<T: Serialize>(value: &T) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    println!("{text}");
    Ok(())
}

#[cfg(test)]
mod readme;

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::{Cli, ClientsCommand, Command, KeysCommand};

    #[test]
    fn the_command_line_definition_is_consistent() {
        // Catches clashing flags (a subcommand flag named like a global setting) at test time.
        <Cli as clap::CommandFactory>::command().debug_assert();
        // A subcommand field named like a global setting would clash when its value is read.
        let cli = Cli::try_parse_from([
            "portcullis",
            "--access-token-alg",
            "ES256",
            "clients",
            "create",
            "--client-id",
            "x",
            "--access-token-signing-alg",
            "RS256",
        ])
        .unwrap();
        assert!(matches!(
            cli.command,
            Command::Clients(command) if matches!(*command, ClientsCommand::Create { .. })
        ));
    }

    #[test]
    fn every_setting_shows_its_environment_variable_and_default() {
        let mut command = super::command();
        command.build();
        command.clone().debug_assert();
        let help = command.render_long_help().to_string();
        for setting in crate::config::DECLARED {
            assert!(help.contains(&setting.flag()), "{}", setting.name);
            assert!(
                help.contains(&format!("[env: {}]", setting.env())),
                "{}",
                setting.name
            );
        }
        assert!(help.contains("[default: 127.0.0.1:8080]"), "{help}");
    }

    #[test]
    fn a_kid_starting_with_a_dash_is_a_value() {
        // RFC 7638 thumbprints are base64url: one in 64 starts with `-`.
        let cli = Cli::try_parse_from(["portcullis", "keys", "revoke", "-o3kL_x"]).unwrap();
        match cli.command {
            Command::Keys(KeysCommand::Revoke { kid, .. }) => assert_eq!(kid, "-o3kL_x"),
            _ => panic!("parsed as another command"),
        }
    }
}
