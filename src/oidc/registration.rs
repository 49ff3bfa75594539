//! Dynamic client registration (RFC 7591) and management (RFC 7592), off by default. Two ways
//! in: with an initial access token an administrator issued (hashed at rest, expiring, with an
//! optional number of uses; any client the CLI could register), or open registration of public
//! clients within a policy (loopback or private-use redirect URIs, https only if allowed, the
//! allowed scopes, a per-network budget). Metadata goes through the same validating path as the
//! CLI and the admin API ([`clients::create_with`]). Every registered client gets a
//! registration access token (hashed at rest, replaced at every read and update) for its
//! configuration endpoint. Dynamic clients that go unused for a configured time are deleted by
//! the janitor ([`expire_unused`]).

use std::time::Duration;

use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::accounts::factors::SecondFactorPolicy;
use crate::accounts::network::network_of;
use crate::db::models::{ClientRow, InitialAccessTokenRow};
use crate::db::queries::audit::{self as audit_q, Change};
use crate::db::queries::registration as q;
use crate::db::queries::{clients as clients_q, throttle};
use crate::db::{Db, DbConn, DbError, write_transaction};
use crate::keys::{IdTokenAlg, SigningAlg};
use crate::oidc::client_auth::AuthMethod;
use crate::oidc::client_logo::{self, LogoFetcher};
use crate::oidc::clients::{
    self, Client, ClientError, DisplayMetadata, Dynamic, GrantType, NewClient, PkcePolicy,
    RegistrationKind, RequestObjectAlg,
};
use crate::oidc::subjects::{self, SubjectType};
use crate::secrets::{InitialAccessToken, RegistrationAccessToken};
use crate::verify::fetch::SafeFetcher;

/// Largest registration request body, in bytes.
pub const MAX_METADATA_BODY: usize = 16 * 1024;

/// Whether and how clients may register themselves (`PORTCULLIS_CLIENT_REGISTRATION`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegistrationMode {
    /// No registration endpoint (the default).
    Off,
    /// Only with an initial access token.
    Token,
    /// With an initial access token, or without one for public clients within the open policy.
    Open,
}

impl RegistrationMode {
    /// Parses `off`, `token` or `open`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "off" => Some(Self::Off),
            "token" => Some(Self::Token),
            "open" => Some(Self::Open),
            _ => None,
        }
    }

    /// The setting's value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Token => "token",
            Self::Open => "open",
        }
    }
}

/// The registration settings (`PORTCULLIS_CLIENT_REGISTRATION*`).
#[derive(Clone, Debug)]
pub struct RegistrationSettings {
    /// Off, with initial access tokens, or open.
    pub mode: RegistrationMode,
    /// The scopes an openly registered client may be allowed (OpenID scopes and API scopes:
    /// an API scope lets it ask for tokens for that API); what it gets when it names none.
    pub open_scopes: Vec<String>,
    /// Whether open registration accepts https redirect URIs (besides loopback http and
    /// private-use schemes).
    pub open_https_redirects: bool,
    /// Open registrations per client network (an IPv6 /64) per `window`.
    pub max_per_ip: u32,
    /// The budget's window.
    pub window: Duration,
    /// Dynamic clients not used for a token for this long are deleted; `None`: never.
    pub unused_client_ttl: Option<Duration>,
}

impl RegistrationSettings {
    /// Registration switched off.
    pub fn off() -> Self {
        Self {
            mode: RegistrationMode::Off,
            open_scopes: Vec::new(),
            open_https_redirects: false,
            max_per_ip: 10,
            window: Duration::from_secs(3600),
            unused_client_ttl: None,
        }
    }

    /// Whether the registration endpoint is served (and advertised).
    pub fn enabled(&self) -> bool {
        self.mode != RegistrationMode::Off
    }
}

/// Why a registration or management request was refused (RFC 7591 §3.2.2, RFC 7592, RFC 6750).
#[derive(Debug, thiserror::Error)]
pub enum RegistrationError {
    /// Registration is off: the endpoint does not exist.
    #[error("registration is off")]
    Disabled,
    /// 400 `invalid_redirect_uri`.
    #[error("invalid redirect URI: {0}")]
    InvalidRedirectUri(String),
    /// 400 `invalid_client_metadata`.
    #[error("invalid client metadata: {0}")]
    InvalidClientMetadata(String),
    /// 400 `unapproved_software_statement`: software statements are not supported.
    #[error("software statements are not supported")]
    UnapprovedSoftwareStatement,
    /// No bearer token where one is required (401, RFC 6750 §3.1: no error code).
    #[error("a bearer token is required")]
    MissingToken,
    /// 401 `invalid_token`: an unknown, expired, revoked or used-up initial access token, or a
    /// registration access token that is not the client's current one (or no such client).
    #[error("invalid token")]
    InvalidToken,
    /// The network's open-registration budget is spent; retry after this many seconds.
    #[error("too many registrations")]
    Throttled(u64),
    /// Database trouble.
    #[error(transparent)]
    Db(#[from] DbError),
    /// No randomness for an identifier or a token.
    #[error("no randomness")]
    NoRandomness,
}

impl From<diesel::result::Error> for RegistrationError {
    fn from(error: diesel::result::Error) -> Self {
        Self::Db(DbError::Query(error))
    }
}

impl From<ClientError> for RegistrationError {
    fn from(error: ClientError) -> Self {
        match error {
            ClientError::Invalid(why) => Self::InvalidClientMetadata(why),
            ClientError::Db(db) => Self::Db(db),
            // A random 256-bit id taken, or a client deleted under a management request.
            ClientError::Exists | ClientError::NotFound => Self::InvalidToken,
        }
    }
}

/// The client metadata of a request (RFC 7591 §2), with the members Portcullis reads; every
/// other member is ignored (§2: "the authorization server MUST ignore any client metadata it
/// does not understand").
#[derive(Clone, Debug, Default, Deserialize)]
struct Metadata {
    redirect_uris: Option<Vec<String>>,
    token_endpoint_auth_method: Option<String>,
    grant_types: Option<Vec<String>>,
    response_types: Option<Vec<String>>,
    client_name: Option<String>,
    logo_uri: Option<String>,
    policy_uri: Option<String>,
    tos_uri: Option<String>,
    contacts: Option<Vec<String>>,
    scope: Option<String>,
    jwks: Option<Value>,
    jwks_uri: Option<String>,
    software_statement: Option<Value>,
    /// OIDC Registration §2: `RS256` (the default), `ES256` or `none` (unsigned ID tokens, for
    /// clients that get no ID token from the authorization endpoint: every client here).
    id_token_signed_response_alg: Option<String>,
    /// OIDC Registration §2: `public` (the default) or `pairwise` (OIDC Core §8.1); any other
    /// value is refused rather than ignored.
    subject_type: Option<String>,
    /// OIDC Registration §2 and §5: an https URL of a JSON array listing every redirect URI;
    /// its host is the pairwise sector. Pairwise registrations with an initial access token
    /// only.
    sector_identifier_uri: Option<String>,
    /// OIDC Registration §2: `RS256` or `ES256` for signed userinfo responses; absent (or
    /// `null`) for plain JSON.
    userinfo_signed_response_alg: Option<String>,
    post_logout_redirect_uris: Option<Vec<String>>,
    /// Portcullis's PKCE policy (`required`, `pkce_or_nonce`, `optional`): registrations with an
    /// initial access token only. Omitted: `required` for a public client, `pkce_or_nonce` for a
    /// confidential one.
    pkce: Option<String>,
    /// OIDC Registration §2: the URLs it may pass as `request_uri`.
    request_uris: Option<Vec<String>>,
    /// OIDC Registration §2: the algorithm of its request objects.
    request_object_signing_alg: Option<String>,
    /// RFC 7592 §2.2: an update names the client.
    client_id: Option<String>,
    /// RFC 7592 §2.2: an update may carry the current secret, which must then match.
    client_secret: Option<String>,
}

/// Parses a request body: a JSON object, at most [`MAX_METADATA_BODY`] bytes.
fn parse_body(body: &[u8]) -> Result<Metadata, RegistrationError> {
    if body.len() > MAX_METADATA_BODY {
        return Err(RegistrationError::InvalidClientMetadata(format!(
            "the body is larger than {MAX_METADATA_BODY} bytes"
        )));
    }
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        RegistrationError::InvalidClientMetadata(format!("the body is not JSON: {e}"))
    })?;
    if !value.is_object() {
        return Err(RegistrationError::InvalidClientMetadata(
            "the body must be a JSON object of client metadata".into(),
        ));
    }
    // Read again from the text, not from the value: a member sent twice is refused rather than
    // silently taken from its last occurrence.
    drop(value);
    serde_json::from_slice(body).map_err(|e| {
        RegistrationError::InvalidClientMetadata(format!(
            "a metadata value has the wrong type: {e}"
        ))
    })
}

/// Sector identifier documents one credential (an initial access token, a client's
/// registration access token) may make the server fetch per hour.
pub const MAX_SECTOR_FETCHES_PER_HOUR: u32 = 10;

/// A registration or RFC 7592 update whose subject type is to be checked.
struct Asking<'a> {
    metadata: &'a Metadata,
    client_id: &'a str,
    kind: RegistrationKind,
    /// Names the request's credential (already found good): its document fetches are counted
    /// under it.
    credential: String,
}

/// The subject type `asking` asks for (OIDC Registration §2), a pairwise sector checked by
/// [`subjects::checked_subject_type`], which fetches the sector identifier document with
/// `fetcher`. Call it only once the request's credential is known to be good: nobody without one
/// may make the server fetch a URL. Before a fetch, the rest of the metadata is checked (a
/// request refused anyway fetches nothing) and the fetch is counted against the credential's
/// budget ([`MAX_SECTOR_FETCHES_PER_HOUR`]; beyond it `Throttled`). Open registrations may ask
/// for pairwise identifiers in the sector of their redirect URIs, not name a document.
async fn subject_type_of(
    db: &Db,
    fetcher: &SafeFetcher,
    settings: &RegistrationSettings,
    asking: Asking<'_>,
    now: NaiveDateTime,
) -> Result<SubjectType, RegistrationError> {
    let metadata = asking.metadata;
    let document = metadata.sector_identifier_uri.as_deref();
    if document.is_some() {
        if asking.kind == RegistrationKind::Open {
            return Err(RegistrationError::InvalidClientMetadata(
                "sector_identifier_uri needs an initial access token: openly registered clients are pairwise in the sector of their redirect URIs".into(),
            ));
        }
        to_new_client(
            metadata.clone(),
            asking.client_id.to_owned(),
            asking.kind,
            settings,
            SubjectType::Public,
        )?;
        let key = format!("sector-document:{}", asking.credential);
        let wait = db
            .run(move |conn| {
                write_transaction(conn, |conn| {
                    Ok::<_, DbError>(throttle::spend(
                        conn,
                        &key,
                        MAX_SECTOR_FETCHES_PER_HOUR,
                        chrono::Duration::hours(1),
                        now,
                    )?)
                })
            })
            .await?;
        if let Some(seconds) = wait {
            tracing::warn!("sector identifier document fetches throttled");
            return Err(RegistrationError::Throttled(seconds));
        }
    }
    subjects::checked_subject_type(
        fetcher,
        metadata.subject_type.as_deref(),
        document,
        metadata.redirect_uris.as_deref().unwrap_or_default(),
        asking.client_id,
    )
    .await
    .map_err(RegistrationError::InvalidClientMetadata)
}

/// The registration's metadata as a client to create, checked against the policy of `kind`,
/// with the subject type [`subject_type_of`] checked.
fn to_new_client(
    metadata: Metadata,
    client_id: String,
    kind: RegistrationKind,
    settings: &RegistrationSettings,
    subject_type: SubjectType,
) -> Result<(NewClient, DisplayMetadata), RegistrationError> {
    let invalid = |why: &str| Err(RegistrationError::InvalidClientMetadata(why.to_owned()));
    if metadata.software_statement.is_some() {
        return Err(RegistrationError::UnapprovedSoftwareStatement);
    }
    let open = kind == RegistrationKind::Open;
    // RFC 7591 §2: the default method is client_secret_basic. Open registration is for public
    // clients, so there an omitted method means none (§3.2.1 lets the server substitute values).
    let method = match metadata.token_endpoint_auth_method.as_deref() {
        None if open => AuthMethod::None,
        None => AuthMethod::ClientSecretBasic,
        Some(text) => match AuthMethod::parse(text) {
            Some(method) => method,
            None => {
                return invalid(
                    "token_endpoint_auth_method must be none, client_secret_basic, client_secret_post or private_key_jwt",
                );
            }
        },
    };
    let public = method == AuthMethod::None;
    if open && !public {
        return invalid(
            "open registration is for public clients (token_endpoint_auth_method none); a confidential client needs an initial access token from an administrator",
        );
    }
    let grant_types = match &metadata.grant_types {
        None => vec![GrantType::AuthorizationCode],
        Some(names) => {
            let mut grants = Vec::new();
            for name in names {
                let Some(grant) = GrantType::parse(name) else {
                    return invalid(&format!("grant type `{name}` is not supported"));
                };
                if !grants.contains(&grant) {
                    grants.push(grant);
                }
            }
            if grants.is_empty() {
                return invalid("grant_types may not be empty");
            }
            grants
        }
    };
    let response_types = metadata
        .response_types
        .clone()
        .unwrap_or_else(|| vec!["code".to_owned()]);
    if let Some(other) = response_types.iter().find(|t| *t != "code") {
        return invalid(&format!(
            "response type `{other}` is not supported: only code"
        ));
    }
    // RFC 7591 §2.1: grant_types and response_types must agree.
    let code = grant_types.contains(&GrantType::AuthorizationCode);
    if code != response_types.iter().any(|t| t == "code") {
        return invalid(
            "response_types must be [\"code\"] exactly when grant_types has authorization_code",
        );
    }
    let redirect_uris = metadata.redirect_uris.unwrap_or_default();
    if code && redirect_uris.is_empty() {
        return Err(RegistrationError::InvalidRedirectUri(
            "the authorization_code grant needs at least one redirect URI".into(),
        ));
    }
    for uri in &redirect_uris {
        clients::validate_client_redirect_uri(uri, public)
            .map_err(RegistrationError::InvalidRedirectUri)?;
        if open {
            open_redirect_uri(uri, settings.open_https_redirects)?;
        }
    }
    let scopes: Vec<String> = metadata
        .scope
        .as_deref()
        .unwrap_or_default()
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    let scopes = if open {
        if let Some(refused) = scopes.iter().find(|s| !settings.open_scopes.contains(s)) {
            return invalid(&format!(
                "scope `{refused}` is not allowed for openly registered clients (allowed: {})",
                settings.open_scopes.join(" ")
            ));
        }
        if scopes.is_empty() {
            settings.open_scopes.clone()
        } else {
            scopes
        }
    } else {
        scopes
    };
    let id_token_alg = match metadata.id_token_signed_response_alg.as_deref() {
        None => IdTokenAlg::default(),
        // `none` too: OIDC Registration §2 allows it for clients that get no ID token from the
        // authorization endpoint: every client here (`code` is the only response type).
        Some(text) => match IdTokenAlg::parse(text) {
            Some(alg) => alg,
            None => return invalid("id_token_signed_response_alg must be RS256, ES256 or none"),
        },
    };
    let request_object_signing_alg = match metadata.request_object_signing_alg.as_deref() {
        None => None,
        Some(text) => match RequestObjectAlg::parse(text) {
            Some(alg) => Some(alg),
            None => {
                return invalid("request_object_signing_alg must be none, RS256, PS256 or ES256");
            }
        },
    };
    let request_uris = metadata.request_uris.unwrap_or_default();
    // An anonymous registration must not give anyone a URL the server fetches on every
    // authorization request it names (the fetch is SSRF-safe, yet it spends our outbound
    // budget on a stranger's behalf).
    if open && !request_uris.is_empty() {
        return invalid(
            "request_uris: openly registered clients pass request objects by value; request_uris need an initial access token",
        );
    }
    // OIDC Registration §2: when omitted, userinfo answers plain JSON. `none` is refused too:
    // an unsigned JWT adds nothing to the JSON answer, and the omission already means JSON.
    let userinfo_alg = match metadata.userinfo_signed_response_alg.as_deref() {
        None => None,
        Some(text) => match SigningAlg::parse(text) {
            Some(alg) => Some(alg),
            None => {
                return invalid(
                    "userinfo_signed_response_alg must be RS256 or ES256 (omit it for plain JSON userinfo)",
                );
            }
        },
    };
    let pkce = match metadata.pkce.as_deref() {
        // A public client always uses PKCE (and open registration registers only public
        // clients). A confidential client an administrator let in with an initial access token
        // authenticates at the token endpoint, so an OpenID request that carries a nonce may omit
        // PKCE (RFC 9700 §2.1.1): what OpenID Connect relying parties, the OpenID Foundation's
        // dynamic plan among them, send without asking for the policy.
        None if public => PkcePolicy::Required,
        None => PkcePolicy::PkceOrNonce,
        Some(_) if open => return invalid("pkce: openly registered clients always use PKCE"),
        Some(text) => match PkcePolicy::parse(text) {
            Some(policy) => policy,
            None => return invalid("pkce must be required, pkce_or_nonce or optional"),
        },
    };
    let new = NewClient {
        client_id,
        public,
        redirect_uris,
        grant_types,
        scopes,
        audiences: Vec::new(),
        access_token_alg: SigningAlg::Es256,
        id_token_alg,
        userinfo_signed_response_alg: userinfo_alg,
        first_party: false,
        post_logout_redirect_uris: metadata.post_logout_redirect_uris.unwrap_or_default(),
        introspection_audiences: Vec::new(),
        pkce,
        web_origins: Vec::new(),
        second_factor: SecondFactorPolicy::Off,
        token_endpoint_auth_method: Some(method),
        jwks: metadata.jwks,
        jwks_uri: metadata.jwks_uri,
        token_exchange_audiences: Vec::new(),
        request_uris,
        request_object_signing_alg,
        subject_type,
    };
    let display = DisplayMetadata {
        client_name: metadata.client_name,
        logo_uri: metadata.logo_uri,
        policy_uri: metadata.policy_uri,
        tos_uri: metadata.tos_uri,
        contacts: metadata.contacts.unwrap_or_default(),
    };
    Ok((new, display))
}

/// The open policy's redirect URIs: http on a loopback host or a private-use scheme (native
/// apps, RFC 8252 §7), and https only when the deployment allows it.
fn open_redirect_uri(uri: &str, https_allowed: bool) -> Result<(), RegistrationError> {
    let scheme = uri
        .split(':')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    if scheme == "https" && !https_allowed {
        return Err(RegistrationError::InvalidRedirectUri(format!(
            "redirect URI `{uri}` refused: open registration accepts loopback http and private-use scheme redirect URIs only"
        )));
    }
    Ok(())
}

/// What the registration endpoint and the configuration endpoint answer (RFC 7591 §3.2.1, RFC
/// 7592 §3): the client's identifiers and credentials and every registered metadata value.
#[derive(Debug, Serialize)]
pub struct ClientInformation {
    /// The client identifier.
    pub client_id: String,
    /// The secret, at registration only (confidential clients with a secret).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    /// When the client id was issued (seconds since the epoch).
    pub client_id_issued_at: i64,
    /// `0`: the secret does not expire (clients that hold a secret).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret_expires_at: Option<i64>,
    /// A new registration access token (RFC 7592): the previous one stops working.
    pub registration_access_token: String,
    /// The client configuration endpoint.
    pub registration_client_uri: String,
    /// Redirect URIs.
    pub redirect_uris: Vec<String>,
    /// Grant types.
    pub grant_types: Vec<&'static str>,
    /// `["code"]` with the code grant, else empty.
    pub response_types: Vec<&'static str>,
    /// The authentication method.
    pub token_endpoint_auth_method: &'static str,
    /// The allowed scopes, space-separated.
    pub scope: String,
    /// The ID-token algorithm: `RS256`, `ES256` or `none` (unsigned, [`IdTokenAlg`]).
    pub id_token_signed_response_alg: &'static str,
    /// The algorithm of signed userinfo responses (OIDC Registration §2); absent: plain JSON.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub userinfo_signed_response_alg: Option<&'static str>,
    /// Post-logout redirect URIs.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub post_logout_redirect_uris: Vec<String>,
    /// The public keys (`private_key_jwt`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks: Option<Value>,
    /// Where its public keys are fetched (`private_key_jwt`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    /// The URLs it may pass as `request_uri`, as registered (fragments kept).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub request_uris: Vec<String>,
    /// The algorithm of its request objects.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_object_signing_alg: Option<&'static str>,
    /// `public` or `pairwise` (OIDC Registration §2).
    pub subject_type: &'static str,
    /// The sector identifier document it registered, as registered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sector_identifier_uri: Option<String>,
    /// The display metadata.
    #[serde(flatten)]
    pub display: DisplayMetadata,
}

impl ClientInformation {
    fn of(
        client: Client,
        secret: Option<String>,
        token: RegistrationAccessToken,
        issuer: &str,
    ) -> Self {
        let code = client.allows(GrantType::AuthorizationCode);
        Self {
            registration_client_uri: configuration_uri(issuer, &client.client_id),
            client_id_issued_at: client.created_at.and_utc().timestamp(),
            client_secret_expires_at: (client.token_endpoint_auth_method
                == AuthMethod::ClientSecretBasic)
                .then_some(0),
            client_secret: secret,
            registration_access_token: token.into_exposed(),
            grant_types: client.grant_types.iter().map(|g| g.as_str()).collect(),
            response_types: if code { vec!["code"] } else { Vec::new() },
            token_endpoint_auth_method: client.token_endpoint_auth_method.as_str(),
            scope: client.scopes.join(" "),
            id_token_signed_response_alg: client.id_token_alg.as_str(),
            userinfo_signed_response_alg: client
                .userinfo_signed_response_alg
                .map(SigningAlg::as_str),
            redirect_uris: client.redirect_uris,
            post_logout_redirect_uris: client.post_logout_redirect_uris,
            jwks: client.jwks,
            jwks_uri: client.jwks_uri,
            request_uris: client.request_uris,
            request_object_signing_alg: client
                .request_object_signing_alg
                .map(RequestObjectAlg::as_str),
            subject_type: client.subject_type.as_str(),
            sector_identifier_uri: client
                .subject_type
                .sector_identifier_uri()
                .map(str::to_owned),
            display: client.display,
            client_id: client.client_id,
        }
    }
}

/// A client's configuration endpoint (RFC 7592 `registration_client_uri`).
pub fn configuration_uri(issuer: &str, client_id: &str) -> String {
    format!("{issuer}/register/{client_id}")
}

/// What registration fetches from the URLs a client names, each SSRF-safely: its logo and its
/// sector identifier document.
#[derive(Clone, Copy, Debug)]
pub struct Fetches<'a> {
    /// Logos ([`client_logo::sync`]).
    pub logos: &'a LogoFetcher,
    /// Sector identifier documents ([`subjects::pairwise_sector`]).
    pub documents: &'a SafeFetcher,
}

/// How a registration request is authorized.
pub enum Credential {
    /// `Authorization: Bearer` with this (initial access) token.
    Bearer(String),
    /// No credential, from this address (open registration).
    Anonymous(std::net::IpAddr),
}

/// `POST /register` (RFC 7591 §3): registers the client the JSON `body` describes at `now`,
/// audited as `client_registered`. With a bearer token, it must be a live initial access token
/// with a use left (spent in the registration's transaction: a refused registration spends
/// nothing); without one, open registration (if on) for public clients within the policy,
/// counted against the client network's budget first. A pairwise client's sector identifier
/// document is fetched with `fetches.documents` before the client is stored, and only for a
/// good initial access token ([`subject_type_of`]). Once the client is registered, its
/// `logo_uri` (if any) is fetched with `fetches.logos` and the logo stored
/// ([`client_logo::sync`]): a logo that cannot be fetched or is refused leaves the client
/// without one (logged), never fails the registration; `logo_uri` is answered as registered
/// either way.
///
/// # Errors
/// [`RegistrationError`]: off, a missing or bad token, metadata refused, throttled, database.
pub async fn register(
    db: &Db,
    settings: &RegistrationSettings,
    fetches: Fetches<'_>,
    issuer: &str,
    credential: Credential,
    body: Vec<u8>,
    now: NaiveDateTime,
) -> Result<ClientInformation, RegistrationError> {
    if !settings.enabled() {
        return Err(RegistrationError::Disabled);
    }
    let (kind, bearer_hash, network) = match credential {
        Credential::Bearer(token) => (
            RegistrationKind::Token,
            Some(InitialAccessToken::presented(token).hash()),
            None,
        ),
        Credential::Anonymous(_) if settings.mode != RegistrationMode::Open => {
            return Err(RegistrationError::MissingToken);
        }
        Credential::Anonymous(ip) => (RegistrationKind::Open, None, Some(network_of(ip))),
    };
    if let Some(network) = &network {
        let key = format!("register-client:ip:{network}");
        let (max, window) = (
            settings.max_per_ip,
            chrono::Duration::from_std(settings.window).unwrap_or(chrono::Duration::MAX),
        );
        let wait = db
            .run(move |conn| {
                write_transaction(conn, |conn| {
                    Ok::<_, DbError>(throttle::spend(conn, &key, max, window, now)?)
                })
            })
            .await?;
        if let Some(seconds) = wait {
            tracing::warn!(%network, "open client registration throttled");
            return Err(RegistrationError::Throttled(seconds));
        }
    }
    let metadata = parse_body(&body);
    let client_id =
        crate::secrets::random_identifier().map_err(|_| RegistrationError::NoRandomness)?;
    let subject_type = match &metadata {
        Ok(metadata) => {
            // Nobody may make the server fetch a sector document without a good credential.
            let credential = match &bearer_hash {
                Some(hash) if metadata.sector_identifier_uri.is_some() => {
                    let hash = hash.as_str().to_owned();
                    let checked = hash.clone();
                    let usable = db
                        .run(move |conn| {
                            Ok::<_, DbError>(q::initial_token_usable(conn, &checked, now)?)
                        })
                        .await?;
                    if !usable {
                        return Err(RegistrationError::InvalidToken);
                    }
                    format!("initial-access-token:{hash}")
                }
                _ => String::new(),
            };
            let asking = Asking {
                metadata,
                client_id: &client_id,
                kind,
                credential,
            };
            subject_type_of(db, fetches.documents, settings, asking, now).await
        }
        Err(_) => Ok(SubjectType::Public),
    };
    let token = RegistrationAccessToken::generate().map_err(|_| RegistrationError::NoRandomness)?;
    let token_hash = token.hash();
    let (settings, issuer_owned) = (settings.clone(), issuer.to_owned());
    let registered = db
        .run(move |conn| {
            audit_q::audited(
                conn,
                "dynamic_registration",
                "client_registered",
                now,
                |conn| {
                    let initial_token = match &bearer_hash {
                        Some(hash) => Some(
                            q::spend_initial_token(conn, hash.as_str(), now)?
                                .ok_or(RegistrationError::InvalidToken)?,
                        ),
                        None => None,
                    };
                    let (new, display) =
                        to_new_client(metadata?, client_id, kind, &settings, subject_type?)?;
                    let dynamic = Dynamic { kind, token_hash };
                    let mut change = clients::create_with(
                        conn,
                        new,
                        display,
                        Some(dynamic),
                        &issuer_owned,
                        now,
                    )?;
                    if let Some(detail) = change.detail.as_mut() {
                        detail["registration"] = kind.as_str().into();
                        detail["initial_access_token"] = initial_token.into();
                        detail["network"] = network.into();
                    }
                    Ok::<_, RegistrationError>(change)
                },
            )
        })
        .await?;
    let client = &registered.client;
    client_logo::sync(
        db,
        fetches.logos,
        &client.client_id,
        client.display.logo_uri.as_deref(),
        None,
        now,
    )
    .await;
    Ok(ClientInformation::of(
        registered.client,
        registered.client_secret,
        token,
        issuer,
    ))
}

/// The dynamic client `client_id` if `presented` is its current registration access token,
/// compared in constant time; any other case is the same `invalid_token`.
fn authorized(
    conn: &mut DbConn,
    client_id: &str,
    presented: &RegistrationAccessToken,
) -> Result<ClientRow, RegistrationError> {
    let row = clients_q::find(conn, client_id)?.ok_or(RegistrationError::InvalidToken)?;
    match (&row.registration, &row.registration_token_hash) {
        (Some(_), Some(stored)) if presented.hash().matches(stored) => Ok(row),
        _ => Err(RegistrationError::InvalidToken),
    }
}

/// Replaces the client's registration access token `current` with a new one (the
/// compare-and-swap decides between two requests that present the same token).
fn rotate(
    conn: &mut DbConn,
    client_id: &str,
    current: &RegistrationAccessToken,
) -> Result<RegistrationAccessToken, RegistrationError> {
    let next = RegistrationAccessToken::generate().map_err(|_| RegistrationError::NoRandomness)?;
    let swapped = q::rotate_registration_token(
        conn,
        client_id,
        current.hash().as_str(),
        next.hash().as_str(),
    )?;
    if swapped != 1 {
        return Err(RegistrationError::InvalidToken);
    }
    Ok(next)
}

/// `GET /register/{client_id}` (RFC 7592 §2.1): the client's current metadata, with a new
/// registration access token (the presented one stops working: it is stored only as a hash, so
/// it cannot be shown again, and RFC 7592 §3 requires one in every answer).
///
/// # Errors
/// `invalid_token` for a wrong token or an unknown or administrator-registered client.
pub async fn read(
    db: &Db,
    settings: &RegistrationSettings,
    issuer: &str,
    client_id: String,
    presented: String,
) -> Result<ClientInformation, RegistrationError> {
    if !settings.enabled() {
        return Err(RegistrationError::Disabled);
    }
    let presented = RegistrationAccessToken::presented(presented);
    let (client, token) = db
        .run(move |conn| {
            write_transaction(conn, |conn| {
                let row = authorized(conn, &client_id, &presented)?;
                let token = rotate(conn, &client_id, &presented)?;
                let client = clients::of_row(&row)?;
                Ok::<_, RegistrationError>((client, token))
            })
        })
        .await?;
    Ok(ClientInformation::of(client, None, token, issuer))
}

/// `PUT /register/{client_id}` (RFC 7592 §2.2): replaces the client's metadata with the JSON
/// `body` (which must name the client; a `client_secret` in it must be the current one),
/// validated as at registration under the policy it was registered with, at `now`, audited as
/// `client_updated`; answers the new metadata and a new registration access token. The logo
/// follows the new `logo_uri` ([`client_logo::sync`] with `logos`: fetched again; removed
/// without one; a failed fetch of an unchanged URL keeps the stored logo).
///
/// # Errors
/// `invalid_token`; the registration errors of the metadata.
#[expect(
    clippy::too_many_arguments,
    reason = "the request's parts and the services it uses, each needed"
)]
pub async fn update(
    db: &Db,
    settings: &RegistrationSettings,
    fetches: Fetches<'_>,
    issuer: &str,
    client_id: String,
    presented: String,
    body: Vec<u8>,
    now: NaiveDateTime,
) -> Result<ClientInformation, RegistrationError> {
    if !settings.enabled() {
        return Err(RegistrationError::Disabled);
    }
    let metadata = parse_body(&body);
    let subject_type = match &metadata {
        Ok(metadata) => {
            // The credential first: nobody without it may make the server fetch a document.
            let (id, token) = (
                client_id.clone(),
                RegistrationAccessToken::presented(presented.clone()),
            );
            let kind = db
                .run(move |conn| {
                    let row = authorized(conn, &id, &token)?;
                    row.registration
                        .as_deref()
                        .and_then(RegistrationKind::parse)
                        .ok_or(RegistrationError::InvalidToken)
                })
                .await?;
            let asking = Asking {
                metadata,
                client_id: &client_id,
                kind,
                credential: format!("client:{client_id}"),
            };
            subject_type_of(db, fetches.documents, settings, asking, now).await
        }
        Err(_) => Ok(SubjectType::Public),
    };
    let presented = RegistrationAccessToken::presented(presented);
    let (settings, issuer_owned) = (settings.clone(), issuer.to_owned());
    let (client, token, previous_logo_uri) = db
        .run(move |conn| {
            audit_q::audited(
                conn,
                "dynamic_registration",
                "client_updated",
                now,
                |conn| {
                    let row = authorized(conn, &client_id, &presented)?;
                    let metadata = metadata?;
                    if metadata.client_id.as_deref() != Some(client_id.as_str()) {
                        return Err(RegistrationError::InvalidClientMetadata(
                            "client_id must be the client's own (RFC 7592 §2.2)".into(),
                        ));
                    }
                    if let Some(secret) = &metadata.client_secret {
                        let current = clients::of_row(&row)?;
                        if !current.secret_matches(secret) {
                            return Err(RegistrationError::InvalidClientMetadata(
                                "client_secret is not the client's current secret".into(),
                            ));
                        }
                    }
                    let kind = row
                        .registration
                        .as_deref()
                        .and_then(RegistrationKind::parse)
                        .ok_or(RegistrationError::InvalidToken)?;
                    let (new, display) =
                        to_new_client(metadata, client_id.clone(), kind, &settings, subject_type?)?;
                    let change = clients::replace_dynamic(conn, new, display, &issuer_owned, now)?;
                    let token = rotate(conn, &client_id, &presented)?;
                    Ok(Change {
                        value: (change.value, token, row.logo_uri),
                        subject: change.subject,
                        detail: change.detail,
                    })
                },
            )
        })
        .await?;
    client_logo::sync(
        db,
        fetches.logos,
        &client.client_id,
        client.display.logo_uri.as_deref(),
        previous_logo_uri.as_deref(),
        now,
    )
    .await;
    Ok(ClientInformation::of(client, None, token, issuer))
}

/// `DELETE /register/{client_id}` (RFC 7592 §2.3): deletes the client (its refresh tokens,
/// consents and logo go with it) at `now`, audited as `client_deleted`.
///
/// # Errors
/// `invalid_token`; database.
pub async fn delete(
    db: &Db,
    settings: &RegistrationSettings,
    client_id: String,
    presented: String,
    now: NaiveDateTime,
) -> Result<(), RegistrationError> {
    if !settings.enabled() {
        return Err(RegistrationError::Disabled);
    }
    let presented = RegistrationAccessToken::presented(presented);
    db.run(move |conn| {
        audit_q::audited(
            conn,
            "dynamic_registration",
            "client_deleted",
            now,
            |conn| {
                authorized(conn, &client_id, &presented)?;
                Ok::<_, RegistrationError>(clients::delete(conn, &client_id, now)?)
            },
        )
    })
    .await
}

/// Records that a token was issued to `client` at `now` when it is a dynamic client whose last
/// recorded use is more than a day old (administrators' clients cost nothing). A failure is
/// logged, never the token request's.
pub async fn record_use(db: &Db, client: &Client, now: NaiveDateTime) {
    if !client.is_dynamic() {
        return;
    }
    let day_ago = now - chrono::Duration::days(1);
    if client.last_used_at.is_some_and(|at| at >= day_ago) {
        return;
    }
    let client_id = client.client_id.clone();
    let recorded = db
        .run(move |conn| Ok::<_, DbError>(q::record_use(conn, &client_id, now, day_ago)?))
        .await;
    if let Err(error) = recorded {
        tracing::warn!(%error, "recording a dynamic client's use failed");
    }
}

/// Deletes up to `batch` dynamic clients that issued no token since `before` (never used and
/// registered before it, or used last before it), each with its refresh tokens and consents,
/// audited as `client_expired` by `janitor`; returns how many. Administrators' clients are
/// never touched.
///
/// # Errors
/// Database.
pub fn expire_unused(
    conn: &mut DbConn,
    before: NaiveDateTime,
    now: NaiveDateTime,
    batch: i64,
) -> Result<usize, ClientError> {
    let mut deleted = 0;
    for client_id in q::unused_dynamic_clients(conn, before, batch)? {
        audit_q::audited(conn, "janitor", "client_expired", now, |conn| {
            clients::delete(conn, &client_id, now)
        })?;
        deleted += 1;
    }
    Ok(deleted)
}

// ---------------------------------------------------------------------------------------------
// Initial access tokens (RFC 7591 §3), issued by administrators.

/// An initial access token as administrators see it: its record (never the token or its
/// hash) and its state.
#[derive(Debug, Serialize)]
pub struct InitialTokenView {
    /// The record: `id`, `description`, `created_by`, `created_at`, `expires_at`, `max_uses`
    /// (`null`: no limit), `uses`, `revoked_at`.
    #[serde(flatten)]
    pub record: InitialAccessTokenRow,
    /// `active`, `expired`, `used_up` or `revoked` (at the time of the answer).
    pub state: &'static str,
}

impl InitialTokenView {
    fn of(record: InitialAccessTokenRow, now: NaiveDateTime) -> Self {
        let state = if record.revoked_at.is_some() {
            "revoked"
        } else if record.expires_at <= now {
            "expired"
        } else if record.max_uses.is_some_and(|max| record.uses >= max) {
            "used_up"
        } else {
            "active"
        };
        Self { record, state }
    }
}

/// A newly issued initial access token: shown once.
#[derive(Debug, Serialize)]
pub struct IssuedInitialToken {
    /// The token (`Authorization: Bearer` on `POST /register`); only its hash is stored.
    pub initial_access_token: String,
    /// Its record.
    #[serde(flatten)]
    pub view: InitialTokenView,
}

/// What an administrator asks for.
#[derive(Debug, Clone)]
pub struct NewInitialToken {
    /// What it is for (at most 200 characters).
    pub description: String,
    /// How long it is valid (1 second to 366 days).
    pub ttl: Duration,
    /// Registrations it allows (at least 1); `None`: no limit until it expires.
    pub max_uses: Option<i32>,
}

/// Issues an initial access token for `actor` at `now`. The audit detail names its id, expiry
/// and uses (never the token).
///
/// # Errors
/// `Invalid` naming a bad field; database.
pub fn issue_initial_token(
    conn: &mut DbConn,
    actor: &str,
    new: NewInitialToken,
    now: NaiveDateTime,
) -> Result<Change<IssuedInitialToken>, ClientError> {
    let invalid = |why: &str| Err(ClientError::Invalid(why.to_owned()));
    if new.description.chars().count() > 200 || new.description.chars().any(char::is_control) {
        return invalid("description: at most 200 characters, no control characters");
    }
    if new.ttl.is_zero() || new.ttl > Duration::from_secs(366 * 24 * 3600) {
        return invalid("expires_in must be between 1 second and 366 days");
    }
    if new.max_uses.is_some_and(|n| n < 1) {
        return invalid("max_uses must be at least 1");
    }
    let token =
        InitialAccessToken::generate().map_err(|_| ClientError::Invalid("no randomness".into()))?;
    let ttl = chrono::Duration::from_std(new.ttl).unwrap_or(chrono::Duration::MAX);
    let row = InitialAccessTokenRow {
        id: uuid::Uuid::new_v4().to_string(),
        token_hash: token.hash().into_string(),
        description: new.description,
        created_by: actor.to_owned(),
        created_at: now,
        expires_at: now + ttl,
        max_uses: new.max_uses,
        uses: 0,
        revoked_at: None,
    };
    q::insert_initial_token(conn, &row)?;
    let detail = serde_json::json!({
        "initial_access_token": {
            "id": row.id, "expires_at": row.expires_at, "max_uses": row.max_uses,
            "description": row.description,
        }
    });
    let id = row.id.clone();
    Ok(Change::made(
        IssuedInitialToken {
            initial_access_token: token.into_exposed(),
            view: InitialTokenView::of(row, now),
        },
        id,
        detail,
    ))
}

/// Every initial access token, newest first, with its state at `now`.
///
/// # Errors
/// Database.
pub fn list_initial_tokens(
    conn: &mut DbConn,
    now: NaiveDateTime,
) -> Result<Vec<InitialTokenView>, ClientError> {
    Ok(q::initial_tokens(conn)?
        .into_iter()
        .map(|row| InitialTokenView::of(row, now))
        .collect())
}

/// Revokes initial access token `id` at `now` (registrations made with it stay). Revoking a
/// revoked token changes nothing.
///
/// # Errors
/// `NotFound`; database.
pub fn revoke_initial_token(
    conn: &mut DbConn,
    id: &str,
    now: NaiveDateTime,
) -> Result<Change<InitialTokenView>, ClientError> {
    let changed = q::revoke_initial_token(conn, id, now)?;
    let row = q::find_initial_token(conn, id)?.ok_or(ClientError::NotFound)?;
    let view = InitialTokenView::of(row, now);
    if changed == 0 {
        return Ok(Change::none(view, id));
    }
    Ok(Change::made(
        view,
        id,
        serde_json::json!({ "initial_access_token": { "revoked_at": now } }),
    ))
}

#[cfg(test)]
mod tests {
    use super::{
        Metadata, RegistrationKind, RegistrationSettings, SafeFetcher, SubjectType, subjects,
        to_new_client,
    };

    fn open_settings() -> RegistrationSettings {
        RegistrationSettings {
            open_scopes: vec!["openid".into(), "profile".into()],
            ..RegistrationSettings::off()
        }
    }

    #[test]
    fn open_registration_takes_public_clients_with_native_redirects_only() {
        let settings = open_settings();
        let with = |uris: &[&str], method: Option<&str>| Metadata {
            redirect_uris: Some(uris.iter().map(|u| (*u).to_owned()).collect()),
            token_endpoint_auth_method: method.map(str::to_owned),
            ..Metadata::default()
        };
        for good in [
            "http://127.0.0.1/cb",
            "http://[::1]:8080/cb",
            "com.example.app:/cb",
        ] {
            let (new, _) = to_new_client(
                with(&[good], None),
                "c".into(),
                RegistrationKind::Open,
                &settings,
                SubjectType::Public,
            )
            .unwrap_or_else(|e| panic!("{good}: {e}"));
            assert!(new.public);
            assert_eq!(new.scopes, vec!["openid", "profile"]);
        }
        assert!(
            to_new_client(
                with(&["https://app.example.com/cb"], None),
                "c".into(),
                RegistrationKind::Open,
                &settings,
                SubjectType::Public
            )
            .is_err()
        );
        assert!(
            to_new_client(
                with(&["http://127.0.0.1/cb"], Some("client_secret_basic")),
                "c".into(),
                RegistrationKind::Open,
                &settings,
                SubjectType::Public
            )
            .is_err()
        );
    }

    #[test]
    fn confidential_clients_default_to_pkce_or_nonce_and_public_ones_to_required() {
        use crate::oidc::clients::PkcePolicy;
        let settings = open_settings();
        let with = |method: Option<&str>, pkce: Option<&str>| Metadata {
            redirect_uris: Some(vec!["http://127.0.0.1/cb".to_owned()]),
            token_endpoint_auth_method: method.map(str::to_owned),
            pkce: pkce.map(str::to_owned),
            ..Metadata::default()
        };
        let policy = |metadata: Metadata, kind: RegistrationKind| {
            to_new_client(metadata, "c".into(), kind, &settings, SubjectType::Public)
                .map(|(new, _)| new.pkce)
                .unwrap_or_else(|e| panic!("{e}"))
        };
        for method in [None, Some("client_secret_basic"), Some("private_key_jwt")] {
            let mut metadata = with(method, None);
            if method == Some("private_key_jwt") {
                metadata.jwks_uri = Some("https://rp.example.com/jwks".into());
            }
            assert_eq!(
                policy(metadata, RegistrationKind::Token),
                PkcePolicy::PkceOrNonce,
                "{method:?}"
            );
        }
        assert_eq!(
            policy(with(Some("none"), None), RegistrationKind::Token),
            PkcePolicy::Required
        );
        assert_eq!(
            policy(with(None, None), RegistrationKind::Open),
            PkcePolicy::Required
        );
        assert_eq!(
            policy(
                with(Some("client_secret_basic"), Some("required")),
                RegistrationKind::Token
            ),
            PkcePolicy::Required,
            "asked for explicitly"
        );
    }

    #[tokio::test]
    async fn subject_types_public_and_pairwise_others_refused() {
        let fetcher = SafeFetcher::new(&crate::verify::fetch::FetchPolicy::default()).unwrap();
        let of = |subject_type: Option<&str>, document: Option<&str>| {
            let fetcher = fetcher.clone();
            let (subject_type, document) =
                (subject_type.map(str::to_owned), document.map(str::to_owned));
            async move {
                subjects::checked_subject_type(
                    &fetcher,
                    subject_type.as_deref(),
                    document.as_deref(),
                    &["https://rp.example.com/cb".to_owned()],
                    "c-1",
                )
                .await
            }
        };
        for public in [None, Some("public")] {
            assert_eq!(of(public, None).await.unwrap(), SubjectType::Public);
        }
        assert_eq!(
            of(Some("pairwise"), None).await.unwrap(),
            SubjectType::Pairwise(subjects::Sector {
                sector_identifier: "rp.example.com".into(),
                sector_identifier_uri: None,
            })
        );
        let document = Some("https://rp.example.com/sector.json");
        for (subject_type, document) in [
            (Some("PUBLIC"), None),
            (Some(""), None),
            (None, document),
            (Some("public"), document),
        ] {
            assert!(
                of(subject_type, document).await.is_err(),
                "{subject_type:?} {document:?}"
            );
        }
    }

    #[test]
    fn request_uris_need_an_initial_access_token() {
        let settings = open_settings();
        let with_request_uri = || Metadata {
            redirect_uris: Some(vec!["http://127.0.0.1/cb".into()]),
            request_uris: Some(vec!["https://app.example.com/r.jwt".into()]),
            ..Metadata::default()
        };
        let public = || SubjectType::Public;
        assert!(
            to_new_client(
                with_request_uri(),
                "c".into(),
                RegistrationKind::Open,
                &settings,
                public()
            )
            .is_err()
        );
        let (new, _) = to_new_client(
            with_request_uri(),
            "c".into(),
            RegistrationKind::Token,
            &settings,
            public(),
        )
        .unwrap();
        assert_eq!(new.request_uris, ["https://app.example.com/r.jwt"]);
    }
}
