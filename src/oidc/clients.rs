//! OAuth clients: the registered model, redirect-URI rules (AUTHZ-02), server-generated secrets
//! stored as SHA-256 and compared in constant time (TEP-05), and an in-memory registry so a
//! token request costs no database round trip for its client (reloaded when the table changes),
//! and the web origins each client's browser code may call the token, revocation and userinfo
//! endpoints from (CORS), computed when the registry loads.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::NaiveDateTime;
use serde::Serialize;

use crate::accounts::factors::SecondFactorPolicy;
use crate::db::models::ClientRow;
use crate::db::queries::audit::Change;
use crate::db::queries::client_logos as logos_q;
use crate::db::queries::clients as q;
use crate::db::snapshot::Snapshot;
use crate::db::{Db, DbConn, DbError};
use crate::keys::{IdTokenAlg, SigningAlg};
use crate::oidc::client_auth::{AuthMethod, ClientKeys};
use crate::oidc::error::OAuthError;
use crate::oidc::subjects::SubjectType;
use crate::secrets::{ClientSecret, TokenHash};
use crate::verify::Scope;

/// The `grant_type` of the device authorization grant (RFC 8628 §3.4).
pub const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// The grant types a client may be allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantType {
    /// Authorization code with PKCE.
    AuthorizationCode,
    /// Refresh token.
    RefreshToken,
    /// Client credentials (confidential clients only).
    ClientCredentials,
    /// The device authorization grant (RFC 8628): the client asks at the device authorization
    /// endpoint and polls the token endpoint.
    #[serde(rename = "urn:ietf:params:oauth:grant-type:device_code")]
    DeviceCode,
    /// Token exchange (RFC 8693 §2.1; confidential clients only), for the audiences of
    /// [`Client::token_exchange_audiences`].
    #[serde(rename = "urn:ietf:params:oauth:grant-type:token-exchange")]
    TokenExchange,
}

/// The `grant_type` of token exchange (RFC 8693 §2.1).
pub const TOKEN_EXCHANGE_GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

impl GrantType {
    /// The RFC 6749 name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AuthorizationCode => "authorization_code",
            Self::RefreshToken => "refresh_token",
            Self::ClientCredentials => "client_credentials",
            Self::DeviceCode => DEVICE_CODE_GRANT,
            Self::TokenExchange => TOKEN_EXCHANGE_GRANT,
        }
    }

    /// Parses an RFC 6749 name.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "authorization_code" => Some(Self::AuthorizationCode),
            "refresh_token" => Some(Self::RefreshToken),
            "client_credentials" => Some(Self::ClientCredentials),
            DEVICE_CODE_GRANT => Some(Self::DeviceCode),
            TOKEN_EXCHANGE_GRANT => Some(Self::TokenExchange),
            _ => None,
        }
    }
}

/// When a client must use PKCE at the authorization endpoint (client metadata `pkce`). Whatever
/// the policy, a challenge that is sent is checked (S256, well formed), and a code is redeemed
/// only as it was issued: with the verifier of its challenge, or without any verifier
/// (downgrade protection both ways, RFC 9700 §2.1.1, RFC 7636 §4.6).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PkcePolicy {
    /// Every authorization request carries an S256 challenge (RFC 9700 §2.1.1). The default,
    /// and the only policy a public client may have.
    #[default]
    Required,
    /// An OpenID Connect request (`scope` has `openid`) that carries a `nonce` may omit PKCE;
    /// other requests need it (RFC 9700 §2.1.1). Confidential clients only.
    PkceOrNonce,
    /// PKCE may be omitted (legacy OAuth 2.0 clients; the OpenID certification client).
    /// Confidential clients only: their code is useless without their secret.
    Optional,
}

impl PkcePolicy {
    /// The metadata value: `required`, `pkce_or_nonce` or `optional`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Required => "required",
            Self::PkceOrNonce => "pkce_or_nonce",
            Self::Optional => "optional",
        }
    }

    /// Parses a metadata value; `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "required" => Some(Self::Required),
            "pkce_or_nonce" => Some(Self::PkceOrNonce),
            "optional" => Some(Self::Optional),
            _ => None,
        }
    }
}

/// The scopes Portcullis knows; a client is allowed a subset.
pub const KNOWN_SCOPES: [&str; 6] = [
    "openid",
    "profile",
    "email",
    "address",
    "phone",
    "offline_access",
];

/// A registered client (no secret: only its hash).
#[derive(Clone, Debug, Serialize)]
pub struct Client {
    /// The identifier.
    pub client_id: String,
    /// `true` for confidential clients (they hold a secret).
    #[serde(skip)]
    pub confidential: bool,
    /// `public` or `confidential`.
    pub client_type: &'static str,
    /// Exact redirect URIs.
    pub redirect_uris: Vec<String>,
    /// Allowed grant types.
    pub grant_types: Vec<GrantType>,
    /// Allowed scopes.
    pub scopes: Vec<String>,
    /// Allowed audiences; the first is the default.
    pub audiences: Vec<String>,
    /// Access-token algorithm.
    pub access_token_alg: SigningAlg,
    /// ID-token algorithm: RS256, ES256, or `none` (unsigned; see [`IdTokenAlg`]).
    pub id_token_alg: IdTokenAlg,
    /// The algorithm of its signed userinfo responses (OIDC Core §5.3.2, OIDC Registration §2
    /// `userinfo_signed_response_alg`); `None`: userinfo answers plain JSON.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub userinfo_signed_response_alg: Option<SigningAlg>,
    /// Skips consent.
    pub first_party: bool,
    /// Exact post-logout redirect URIs.
    pub post_logout_redirect_uris: Vec<String>,
    /// Audiences (resource servers) whose access tokens this client may introspect, besides
    /// its own tokens (RFC 7662 §4).
    pub introspection_audiences: Vec<String>,
    /// When PKCE is required at the authorization endpoint.
    pub pkce: PkcePolicy,
    /// Explicitly registered web origins (`scheme://host[:port]`), besides the origins of its
    /// redirect URIs ([`Client::allows_origin`]).
    pub web_origins: Vec<String>,
    /// Its second-factor policy (metadata `second_factor`): `off` (the deployment's), `optional`
    /// or `required`; the stricter of it and the deployment's applies to its sign-ins.
    pub second_factor: SecondFactorPolicy,
    /// Every origin its browser code may call from: `web_origins` and the origins of its http(s)
    /// redirect URIs, as browsers serialise them in `Origin` (computed once, at load).
    #[serde(skip)]
    origins: HashSet<String>,
    /// How it authenticates at the token, revocation and introspection endpoints (RFC 7591 §2).
    pub token_endpoint_auth_method: AuthMethod,
    /// Its registered public keys (`private_key_jwt`), as registered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks: Option<serde_json::Value>,
    /// Or the https URL of its public keys (`private_key_jwt`, RFC 7591 §2), fetched through
    /// the SSRF-safe fetcher ([`crate::oidc::client_auth::RemoteKeys`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    /// `jwks`, parsed once at load.
    #[serde(skip)]
    keys: Option<Arc<ClientKeys>>,
    /// The audiences (API identifiers, RFC 8707) it may ask for by token exchange (RFC 8693);
    /// the first is the default when the request names none. Empty: it exchanges for none.
    pub token_exchange_audiences: Vec<String>,
    /// The URLs it may pass as `request_uri` (OIDC Core §6.2), each compared as an exact string
    /// (fragment included): no other URL is ever fetched for it (AUTHZ-09).
    pub request_uris: Vec<String>,
    /// The algorithm its request objects must be signed with (OpenID Connect Dynamic Client
    /// Registration §2); `None`: unsigned, or any of RS256/PS256/ES256 its keys support.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_object_signing_alg: Option<RequestObjectAlg>,
    /// How its users are identified to it (OIDC Core §8): `subject_type` `public`, or
    /// `pairwise` with its `sector_identifier` ([`crate::oidc::subjects`]).
    #[serde(flatten)]
    pub subject_type: SubjectType,
    #[serde(skip)]
    secret_hash: Option<TokenHash>,
    /// Its RFC 7591 §2 display metadata (name, logo, policy and terms links, contacts).
    #[serde(flatten)]
    pub display: DisplayMetadata,
    /// How it was registered, when not by an administrator: through RFC 7591 dynamic
    /// registration with an initial access token (`token`) or open registration (`open`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registration: Option<RegistrationKind>,
    /// A dynamic client's last token (recorded at most once a day; `None`: never, or not a
    /// dynamic client).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<NaiveDateTime>,
    /// When it was registered (UTC; RFC 7591 `client_id_issued_at`).
    #[serde(skip)]
    pub created_at: NaiveDateTime,
    /// Whether a logo fetched from its `logo_uri` is stored ([`crate::oidc::client_logo`]);
    /// known in the registry only (set when it loads).
    #[serde(skip)]
    logo_stored: bool,
}

/// How a client was registered through RFC 7591 (administrators' clients have none).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RegistrationKind {
    /// With an initial access token an administrator issued (RFC 7591 §3).
    Token,
    /// Open registration: a public client within the open policy.
    Open,
}

impl RegistrationKind {
    /// The stored name: `token` or `open`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Token => "token",
            Self::Open => "open",
        }
    }

    /// Parses a stored name.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "token" => Some(Self::Token),
            "open" => Some(Self::Open),
            _ => None,
        }
    }
}

/// A client's RFC 7591 §2 human-facing metadata, stored as registered and shown on the hosted
/// login and consent pages: the name, the policy and terms as links, and the logo — never
/// loaded from `logo_uri` by the browser, but fetched once at registration, checked and served
/// from our own origin ([`crate::oidc::client_logo`]; the pages load nothing from other
/// origins, AUTHZ-11).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DisplayMetadata {
    /// `client_name`: 1–200 characters, no control characters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_name: Option<String>,
    /// `logo_uri`: an https URL (http on loopback).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logo_uri: Option<String>,
    /// `policy_uri`: an https URL (http on loopback).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_uri: Option<String>,
    /// `tos_uri`: an https URL (http on loopback).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tos_uri: Option<String>,
    /// `contacts`: at most 10 addresses of up to 320 characters.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub contacts: Vec<String>,
}

impl DisplayMetadata {
    /// Checks every member; the error names the member and why.
    pub fn validate(&self) -> Result<(), String> {
        let printable = |text: &str| !text.chars().any(char::is_control);
        if let Some(name) = &self.client_name {
            let length = name.chars().count();
            if length == 0 || length > 200 || !printable(name) || name.trim() != name {
                return Err(
                    "client_name must be 1-200 characters without control characters or surrounding spaces"
                        .into(),
                );
            }
        }
        for (field, uri) in [
            ("logo_uri", &self.logo_uri),
            ("policy_uri", &self.policy_uri),
            ("tos_uri", &self.tos_uri),
        ] {
            if let Some(uri) = uri {
                validate_document_uri(uri).map_err(|why| format!("{field} refused: {why}"))?;
            }
        }
        if self.contacts.len() > 10 {
            return Err("contacts: at most 10".into());
        }
        for contact in &self.contacts {
            if contact.is_empty() || contact.len() > 320 || !printable(contact) {
                return Err("contacts: each 1-320 characters without control characters".into());
            }
        }
        Ok(())
    }
}

/// A URL of a document about a client (logo, policy, terms): absolute, `https` or `http` on a
/// loopback host, no credentials, no whitespace, at most 2000 bytes.
fn validate_document_uri(uri: &str) -> Result<(), &'static str> {
    if uri.len() > 2000 || uri.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("at most 2000 characters without whitespace");
    }
    let parsed = url::Url::parse(uri).map_err(|_| "not an absolute URL")?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("it carries credentials");
    }
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(&parsed) => Ok(()),
        _ => Err("https (or http on a loopback host) only"),
    }
}

impl Client {
    /// The account page as a client of the hosted login (as Keycloak's account console is a
    /// client of its own realm): first-party (no consent), public, its one redirect URI the
    /// account page's callback (`redirect_uri`, under the issuer). It is not in the registry,
    /// so the authorization endpoint never accepts it from a browser, and the token endpoint
    /// never redeems its codes (the page needs only the browser session the sign-in sets). Its
    /// id is the reserved first-party id ([`RESERVED_CLIENT_IDS`]), which no registered client
    /// can have.
    pub fn account_console(redirect_uri: String) -> Self {
        Self {
            client_id: crate::accounts::sessions::FIRST_PARTY_CLIENT_ID.to_owned(),
            confidential: false,
            client_type: "public",
            redirect_uris: vec![redirect_uri],
            grant_types: vec![GrantType::AuthorizationCode],
            scopes: vec!["openid".to_owned()],
            audiences: Vec::new(),
            access_token_alg: SigningAlg::Es256,
            id_token_alg: IdTokenAlg::default(),
            userinfo_signed_response_alg: None,
            first_party: true,
            post_logout_redirect_uris: Vec::new(),
            introspection_audiences: Vec::new(),
            pkce: PkcePolicy::Required,
            web_origins: Vec::new(),
            // The deployment's policy applies to the account page's sign-in.
            second_factor: SecondFactorPolicy::Off,
            origins: HashSet::new(),
            token_endpoint_auth_method: AuthMethod::None,
            jwks: None,
            jwks_uri: None,
            keys: None,
            token_exchange_audiences: Vec::new(),
            request_uris: Vec::new(),
            request_object_signing_alg: None,
            subject_type: SubjectType::Public,
            secret_hash: None,
            display: DisplayMetadata::default(),
            registration: None,
            last_used_at: None,
            created_at: NaiveDateTime::default(),
            logo_stored: false,
        }
    }

    /// Whether the client may use `grant`.
    pub fn allows(&self, grant: GrantType) -> bool {
        self.grant_types.contains(&grant)
    }

    /// The audience of its access tokens when the request names none: its first allowed
    /// audience, else the issuer.
    pub fn default_audience<'a>(&'a self, issuer: &'a str) -> &'a str {
        self.audiences.first().map_or(issuer, String::as_str)
    }

    /// Whether every scope of `scope` is allowed to this client.
    pub fn allows_scope(&self, scope: &Scope) -> bool {
        scope
            .iter()
            .all(|s| self.scopes.iter().any(|allowed| allowed == s))
    }

    /// Whether `origin` (an `Origin` header's value, compared byte for byte) is one of this
    /// client's web origins: an explicitly registered one, or the origin (scheme, host and port
    /// exactly as registered) of one of its http(s) redirect URIs. A loopback redirect URI
    /// registered without a port gives the origin on port 80 only: RFC 8252 §7.3's any-port
    /// matching is for redirects, not for CORS; a private-use-scheme redirect URI gives none.
    pub fn allows_origin(&self, origin: &str) -> bool {
        self.origins.contains(origin)
    }

    /// The parsed keys of a `private_key_jwt` client; `None` for other clients.
    pub fn keys(&self) -> Option<&ClientKeys> {
        self.keys.as_deref()
    }

    /// Constant-time check of a presented secret against the stored hash.
    pub fn secret_matches(&self, presented: &str) -> bool {
        let Some(stored) = &self.secret_hash else {
            return false;
        };
        ClientSecret::presented(presented)
            .hash()
            .matches(stored.as_str())
    }

    /// A public client for unit tests: the code and refresh grants, every known scope.
    #[cfg(test)]
    pub(crate) fn for_tests(client_id: &str, redirect_uris: &[&str], first_party: bool) -> Self {
        Self {
            client_id: client_id.to_owned(),
            confidential: false,
            client_type: "public",
            redirect_uris: redirect_uris.iter().map(|u| (*u).to_owned()).collect(),
            grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
            scopes: KNOWN_SCOPES.iter().map(|s| (*s).to_owned()).collect(),
            audiences: Vec::new(),
            access_token_alg: SigningAlg::Es256,
            id_token_alg: IdTokenAlg::default(),
            userinfo_signed_response_alg: None,
            first_party,
            post_logout_redirect_uris: Vec::new(),
            introspection_audiences: Vec::new(),
            pkce: PkcePolicy::Required,
            web_origins: Vec::new(),
            second_factor: SecondFactorPolicy::Off,
            origins: origins_of::<&str, _>(&[], redirect_uris),
            token_endpoint_auth_method: AuthMethod::None,
            jwks: None,
            jwks_uri: None,
            keys: None,
            token_exchange_audiences: Vec::new(),
            request_uris: Vec::new(),
            request_object_signing_alg: None,
            subject_type: SubjectType::Public,
            secret_hash: None,
            display: DisplayMetadata::default(),
            registration: None,
            last_used_at: None,
            created_at: NaiveDateTime::default(),
            logo_stored: false,
        }
    }

    fn from_row(row: &ClientRow) -> Result<Self, String> {
        let list =
            |text: &str| serde_json::from_str::<Vec<String>>(text).map_err(|e| e.to_string());
        let alg = |text: &str| SigningAlg::parse(text).ok_or_else(|| format!("bad alg {text}"));
        let confidential = row.client_type == "confidential";
        let redirect_uris = list(&row.redirect_uris)?;
        let web_origins = list(&row.web_origins)?;
        let origins = origins_of(&web_origins, &redirect_uris);
        let token_endpoint_auth_method = AuthMethod::parse(&row.token_endpoint_auth_method)
            .ok_or_else(|| format!("bad auth method {}", row.token_endpoint_auth_method))?;
        let jwks = row
            .jwks
            .as_deref()
            .map(serde_json::from_str::<serde_json::Value>)
            .transpose()
            .map_err(|e| e.to_string())?;
        let keys = jwks
            .as_ref()
            .map(|jwks| ClientKeys::parse(jwks).map(Arc::new))
            .transpose()?;
        Ok(Self {
            client_id: row.client_id.clone(),
            confidential,
            client_type: if confidential {
                "confidential"
            } else {
                "public"
            },
            redirect_uris,
            grant_types: list(&row.grant_types)?
                .iter()
                .filter_map(|g| GrantType::parse(g))
                .collect(),
            scopes: list(&row.scopes)?,
            audiences: list(&row.audiences)?,
            access_token_alg: alg(&row.access_token_alg)?,
            id_token_alg: IdTokenAlg::parse(&row.id_token_alg)
                .ok_or_else(|| format!("bad ID-token alg {}", row.id_token_alg))?,
            userinfo_signed_response_alg: row
                .userinfo_signed_response_alg
                .as_deref()
                .map(alg)
                .transpose()?,
            first_party: row.first_party != 0,
            post_logout_redirect_uris: list(&row.post_logout_redirect_uris)?,
            introspection_audiences: list(&row.introspection_audiences)?,
            pkce: PkcePolicy::parse(&row.pkce)
                .ok_or_else(|| format!("bad pkce policy {}", row.pkce))?,
            web_origins,
            second_factor: SecondFactorPolicy::parse(&row.second_factor)
                .ok_or_else(|| format!("bad second_factor policy {}", row.second_factor))?,
            origins,
            token_endpoint_auth_method,
            jwks,
            jwks_uri: row.jwks_uri.clone(),
            keys,
            token_exchange_audiences: list(&row.token_exchange_audiences)?,
            request_uris: list(&row.request_uris)?,
            request_object_signing_alg: row
                .request_object_signing_alg
                .as_deref()
                .map(|text| {
                    RequestObjectAlg::parse(text)
                        .ok_or_else(|| format!("bad request_object_signing_alg {text}"))
                })
                .transpose()?,
            subject_type: SubjectType::from_stored(row.pairwise_sector.as_deref())?,
            secret_hash: row
                .secret_hash
                .as_deref()
                .map(|h| {
                    // A stored hash is the base64url of a SHA-256 digest; anything else is a
                    // corrupt row.
                    match URL_SAFE_NO_PAD.decode(h) {
                        Ok(digest) if digest.len() == 32 => Ok(TokenHash::stored(h.to_owned())),
                        Ok(_) => Err("secret hash is not a SHA-256 digest".to_owned()),
                        Err(e) => Err(e.to_string()),
                    }
                })
                .transpose()?,
            display: DisplayMetadata {
                client_name: row.client_name.clone(),
                logo_uri: row.logo_uri.clone(),
                policy_uri: row.policy_uri.clone(),
                tos_uri: row.tos_uri.clone(),
                contacts: list(&row.contacts)?,
            },
            registration: row
                .registration
                .as_deref()
                .map(|text| {
                    RegistrationKind::parse(text).ok_or_else(|| format!("bad registration {text}"))
                })
                .transpose()?,
            last_used_at: row.last_used_at,
            created_at: row.created_at,
            logo_stored: false,
        })
    }

    /// Whether it was registered dynamically (RFC 7591), not by an administrator.
    pub fn is_dynamic(&self) -> bool {
        self.registration.is_some()
    }

    /// Whether a logo is stored for it (served at `{issuer}/clients/{client_id}/logo`): known
    /// for clients from the registry ([`ClientRegistry::get`]), `false` for others.
    pub fn has_logo(&self) -> bool {
        self.logo_stored
    }
}

/// What a client ID metadata document says of its client, read by
/// [`crate::oidc::client_metadata`] (its `client_id` already checked to be the document's URL).
#[derive(Clone, Debug)]
pub struct DocumentMetadata {
    /// The document's URL.
    pub client_id: String,
    /// `redirect_uris`, matched exactly.
    pub redirect_uris: Vec<String>,
    /// `grant_types` (`authorization_code`, `refresh_token`).
    pub grant_types: Vec<GrantType>,
    /// The scopes it may ask for: its `scope`, else the OpenID scopes.
    pub scopes: Vec<String>,
    /// `token_endpoint_auth_method`: `None` or `PrivateKeyJwt`.
    pub method: AuthMethod,
    /// `jwks` (`private_key_jwt`).
    pub jwks: Option<serde_json::Value>,
    /// `jwks_uri` (`private_key_jwt`).
    pub jwks_uri: Option<String>,
}

impl Client {
    /// The client a client ID metadata document describes: public (`none`, PKCE required) or,
    /// with `private_key_jwt` and its `jwks` or `jwks_uri`, confidential; never first-party
    /// (consent is asked), its tokens for the issuer or the APIs of its scopes, the
    /// deployment's second-factor policy. Redirect URIs, keys and the key URL are checked as at
    /// registration; the error names what is wrong.
    pub fn from_document(doc: DocumentMetadata, issuer: &str) -> Result<Self, String> {
        let public = doc.method != AuthMethod::PrivateKeyJwt;
        let method =
            checked_auth_method(public, Some(doc.method), &doc.jwks, doc.jwks_uri.as_deref())?;
        for uri in &doc.redirect_uris {
            validate_client_redirect_uri(uri, public)?;
        }
        let keys = doc
            .jwks
            .as_ref()
            .map(|jwks| ClientKeys::parse(jwks).map(Arc::new))
            .transpose()?;
        Ok(Self {
            origins: origins_of::<&str, _>(&[], &doc.redirect_uris),
            client_id: doc.client_id,
            confidential: !public,
            client_type: if public { "public" } else { "confidential" },
            redirect_uris: doc.redirect_uris,
            grant_types: doc.grant_types,
            scopes: doc.scopes,
            audiences: vec![issuer.to_owned()],
            access_token_alg: SigningAlg::Es256,
            id_token_alg: IdTokenAlg::default(),
            // A metadata document's signing preferences are not read: plain JSON userinfo.
            userinfo_signed_response_alg: None,
            first_party: false,
            post_logout_redirect_uris: Vec::new(),
            introspection_audiences: Vec::new(),
            pkce: PkcePolicy::Required,
            web_origins: Vec::new(),
            second_factor: SecondFactorPolicy::Off,
            token_endpoint_auth_method: method,
            jwks: doc.jwks,
            jwks_uri: doc.jwks_uri,
            keys,
            // A metadata-document client exchanges no tokens (it has no such setting).
            token_exchange_audiences: Vec::new(),
            // Nor request URIs: a request object by value only, unsigned.
            request_uris: Vec::new(),
            request_object_signing_alg: None,
            subject_type: SubjectType::Public,
            secret_hash: None,
            // The hosted pages name the document's host instead of a name it claims.
            display: DisplayMetadata::default(),
            registration: None,
            last_used_at: None,
            created_at: NaiveDateTime::default(),
            logo_stored: false,
        })
    }
}

/// Why a client could not be registered or changed. Messages name the field.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// A field is invalid.
    #[error("{0}")]
    Invalid(String),
    /// The client id is taken.
    #[error("a client with this client_id already exists")]
    Exists,
    /// No such client.
    #[error("no client with this client_id")]
    NotFound,
    /// Database trouble.
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<diesel::result::Error> for ClientError {
    fn from(error: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        match error {
            Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => Self::Exists,
            other => Self::Db(DbError::Query(other)),
        }
    }
}

/// Checks a redirect URI for registration (AUTHZ-02): an absolute `https` URL, `http` on a
/// loopback host, or — for a public client (`public`) — a private-use URI scheme in
/// reverse-domain form (RFC 8252 §7.1: `com.example.app:/cb`); no fragment, no wildcard, no
/// credentials. It is then compared byte for byte, except that a loopback IP one registered
/// without a port matches any port (RFC 8252 §7.3; see [`redirect_uri_matches`]). Post-logout
/// redirect URIs are checked as a confidential client's (no private-use schemes).
pub fn validate_redirect_uri(uri: &str) -> Result<(), String> {
    validate_client_redirect_uri(uri, false)
}

/// [`validate_redirect_uri`] for a client that is public (`true`) or confidential.
pub fn validate_client_redirect_uri(uri: &str, public: bool) -> Result<(), String> {
    let refuse = |why: &str| Err(format!("redirect URI `{uri}` refused: {why}"));
    if uri.contains('#') {
        return refuse("it has a fragment");
    }
    if uri.contains('*') {
        return refuse("wildcards are not allowed");
    }
    if uri.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return refuse("it contains whitespace or control characters");
    }
    let Ok(parsed) = url::Url::parse(uri) else {
        return refuse("it is not an absolute URL");
    };
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return refuse("it carries credentials");
    }
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(&parsed) => Ok(()),
        "http" => refuse("http is allowed only for loopback hosts"),
        scheme if is_private_use_scheme(scheme) => {
            if public {
                Ok(())
            } else {
                refuse("private-use URI schemes are for public (native) clients only")
            }
        }
        _ => refuse(
            "only https, http on loopback, or (public clients) a reverse-domain private-use scheme is allowed",
        ),
    }
}

/// A private-use URI scheme in reverse-domain form (RFC 8252 §7.1): at least two dot-separated
/// labels of letters, digits and `-` (the URL parser already lower-cased it), so that no
/// well-known scheme (`javascript`, `data`, `file`…) can pass.
fn is_private_use_scheme(scheme: &str) -> bool {
    let labels: Vec<&str> = scheme.split('.').collect();
    labels.len() >= 2
        && labels.iter().all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
        && labels[0]
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic())
}

/// Whether `requested` (a request's `redirect_uri`) matches `registered`: byte for byte
/// (AUTHZ-02), or — for a loopback IP redirect URI registered without a port,
/// `http://127.0.0.1/…` or `http://[::1]/…` — the same string with any port added after the
/// host (RFC 8252 §7.3: a native app opens its listener on an ephemeral port). Only the port
/// may differ. `localhost` is not a loopback IP: it is matched exactly (RFC 8252 §8.3: not
/// recommended, the name may not resolve to the loopback interface).
pub fn redirect_uri_matches(registered: &str, requested: &str) -> bool {
    if registered == requested {
        return true;
    }
    for host in ["http://127.0.0.1", "http://[::1]"] {
        let Some(rest) = registered.strip_prefix(host) else {
            continue;
        };
        if !(rest.is_empty() || rest.starts_with(['/', '?'])) {
            continue;
        }
        let Some(after_host) = requested
            .strip_prefix(host)
            .and_then(|r| r.strip_prefix(':'))
        else {
            return false;
        };
        let digits = after_host.bytes().take_while(u8::is_ascii_digit).count();
        let (port, tail) = after_host.split_at(digits);
        return !port.starts_with('0') && port.parse::<u16>().is_ok_and(|p| p > 0) && tail == rest;
    }
    false
}

/// Checks a web origin for registration (client metadata `web_origins`): exactly
/// `scheme://host[:port]` as a browser serialises it in `Origin` (RFC 6454 §6.2: lowercase
/// scheme and host, IDNs in punycode, no default port), with no path, query, fragment or
/// trailing slash; `https`, or `http` on a loopback host (`127.0.0.1`, `[::1]`, `localhost`) as
/// for redirect URIs (RFC 9700 §2.6). Not `*` nor `null`. The error names the origin and why.
pub fn validate_web_origin(origin: &str) -> Result<(), String> {
    let refuse = |why: &str| Err(format!("web origin `{origin}` refused: {why}"));
    if origin == "*" || origin.eq_ignore_ascii_case("null") {
        return refuse("register each origin by name; `*` and `null` are not allowed");
    }
    if origin.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return refuse("it contains whitespace or control characters");
    }
    let Ok(parsed) = url::Url::parse(origin) else {
        return refuse("it is not an origin such as https://app.example.com");
    };
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return refuse("it carries credentials");
    }
    match parsed.scheme() {
        "https" => {}
        "http" if is_loopback(&parsed) => {}
        "http" => return refuse("http is allowed only for loopback hosts"),
        _ => return refuse("the scheme must be https (or http on a loopback host)"),
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return refuse("an origin has no query or fragment");
    }
    if parsed.path() != "/" {
        return refuse("an origin has no path");
    }
    let canonical = parsed.origin().ascii_serialization();
    if canonical == origin {
        Ok(())
    } else if origin.strip_suffix('/') == Some(canonical.as_str()) {
        refuse("an origin has no trailing slash")
    } else {
        refuse(&format!(
            "write it as `{canonical}`, as browsers send it (lowercase host, no default port)"
        ))
    }
}

/// Every origin a client's browser code may call from: its `web_origins` and the origins of its
/// http(s) redirect URIs.
fn origins_of<W: AsRef<str>, R: AsRef<str>>(
    web_origins: &[W],
    redirect_uris: &[R],
) -> HashSet<String> {
    web_origins
        .iter()
        .map(|o| o.as_ref().to_owned())
        .chain(
            redirect_uris
                .iter()
                .filter_map(|u| redirect_uri_origin(u.as_ref())),
        )
        .collect()
}

/// The origin of an http(s) redirect URI (`scheme://host[:port]`, as browsers serialise it), or
/// `None` for a private-use URI scheme (a native app has no web origin).
fn redirect_uri_origin(uri: &str) -> Option<String> {
    let parsed = url::Url::parse(uri).ok()?;
    matches!(parsed.scheme(), "http" | "https").then(|| parsed.origin().ascii_serialization())
}

/// What the `Origin` header of a token or revocation request means once its client is known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestOrigin {
    /// No `Origin`: a server-side client (or a same-origin navigation); nothing to allow.
    Absent,
    /// One of the client's web origins: its browser code may read the answer.
    Allowed,
}

/// Decides a token or revocation request's `Origin` for the client it authenticates as, before
/// the request does anything: absent or one of the client's origins
/// ([`Client::allows_origin`]) goes on; any other origin (`null`, unreadable bytes, another
/// site) is refused with 400 `invalid_request` (RFC 6749 §5.2). A form POST is a CORS "simple
/// request" that browsers send without a preflight, so without this a hostile page could make
/// a victim's browser spend a code or revoke a token it cannot read the answer of (CORS-02).
pub fn check_request_origin(
    client: &Client,
    origin: Option<&[u8]>,
) -> Result<RequestOrigin, OAuthError> {
    let Some(origin) = origin else {
        return Ok(RequestOrigin::Absent);
    };
    match std::str::from_utf8(origin) {
        Ok(origin) if client.allows_origin(origin) => Ok(RequestOrigin::Allowed),
        _ => Err(OAuthError::invalid_request(
            "Cross-origin requests from this Origin are not allowed for this client: it is not one of the client's web origins.",
        )),
    }
}

fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// A client to register.
#[derive(Clone, Debug)]
pub struct NewClient {
    /// The identifier.
    pub client_id: String,
    /// Public (no secret, PKCE only) or confidential.
    pub public: bool,
    /// Redirect URIs.
    pub redirect_uris: Vec<String>,
    /// Grant types; empty: code + refresh when redirect URIs are given, else client
    /// credentials (confidential clients).
    pub grant_types: Vec<GrantType>,
    /// Scopes; empty: every known scope.
    pub scopes: Vec<String>,
    /// Audiences; empty: the issuer.
    pub audiences: Vec<String>,
    /// Access-token algorithm.
    pub access_token_alg: SigningAlg,
    /// ID-token algorithm: RS256, ES256, or `none` (unsigned; see [`IdTokenAlg`]).
    pub id_token_alg: IdTokenAlg,
    /// The algorithm of its signed userinfo responses (OIDC Core §5.3.2); `None`: plain JSON.
    pub userinfo_signed_response_alg: Option<SigningAlg>,
    /// Skips consent.
    pub first_party: bool,
    /// Post-logout redirect URIs.
    pub post_logout_redirect_uris: Vec<String>,
    /// Audiences whose tokens the client may introspect (confidential clients only).
    pub introspection_audiences: Vec<String>,
    /// When PKCE is required; anything but [`PkcePolicy::Required`] is for confidential
    /// clients only.
    pub pkce: PkcePolicy,
    /// Web origins its browser code calls from, besides its redirect URIs' origins (each
    /// checked by [`validate_web_origin`]).
    pub web_origins: Vec<String>,
    /// Its second-factor policy (it can raise the deployment's, never lower it).
    pub second_factor: SecondFactorPolicy,
    /// How it authenticates (RFC 7591 §2); `None`: `none` for a public client, else
    /// `client_secret_basic`.
    pub token_endpoint_auth_method: Option<AuthMethod>,
    /// Its public keys, a JWKS (`private_key_jwt` only; it or `jwks_uri` is required for it).
    pub jwks: Option<serde_json::Value>,
    /// The https URL of its public keys (`private_key_jwt` only; instead of `jwks`), checked by
    /// [`validate_jwks_uri`].
    pub jwks_uri: Option<String>,
    /// The audiences it may ask for by token exchange (RFC 8693), the first its default:
    /// confidential clients allowed the token-exchange grant only, which need one at least.
    pub token_exchange_audiences: Vec<String>,
    /// The URLs it may pass as `request_uri` (OIDC Core §6.2), each checked by
    /// [`validate_request_uri`]; at most [`MAX_REQUEST_URIS`], duplicates dropped.
    pub request_uris: Vec<String>,
    /// The algorithm of its request objects; a signed one needs the client's keys (`jwks` or
    /// `jwks_uri`, `private_key_jwt`).
    pub request_object_signing_alg: Option<RequestObjectAlg>,
    /// How its users are identified to it (OIDC Core §8). A pairwise sector comes from
    /// [`crate::oidc::subjects::checked_subject_type`], which checked it against
    /// `redirect_uris` and the sector identifier document.
    pub subject_type: SubjectType,
}

/// Client ids no OAuth client may take: `portcullis` names the first-party JSON API's tokens,
/// which open the admin API (ADM-07).
pub const RESERVED_CLIENT_IDS: [&str; 1] = [crate::accounts::sessions::FIRST_PARTY_CLIENT_ID];

/// A registered client and, for confidential clients, its secret (shown once).
#[derive(Debug, Serialize)]
pub struct Registered {
    /// The client.
    #[serde(flatten)]
    pub client: Client,
    /// The secret: returned at creation and rotation only, never stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
}

/// A new client secret (shown once) and its stored form.
fn generate_secret() -> Result<(String, String), ClientError> {
    let secret =
        ClientSecret::generate().map_err(|_| ClientError::Invalid("no randomness".into()))?;
    let hash = secret.hash().into_string();
    Ok((secret.into_exposed(), hash))
}

fn json_list(items: &[String]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".into())
}

/// The audit detail of a client: its metadata (never a secret).
fn detail(client: &Client) -> serde_json::Value {
    serde_json::to_value(client).unwrap_or_default()
}

/// Validates and registers a client at `now`; returns it with its secret (shown once), and its
/// metadata for the audit record.
pub fn create(
    conn: &mut DbConn,
    new: NewClient,
    issuer: &str,
    now: NaiveDateTime,
) -> Result<Change<Registered>, ClientError> {
    create_with(conn, new, DisplayMetadata::default(), None, issuer, now)
}

/// How a dynamically registered client is stored: how it was registered and the hash of its
/// registration access token (RFC 7592).
#[derive(Clone, Debug)]
pub struct Dynamic {
    /// Open registration or an initial access token.
    pub kind: RegistrationKind,
    /// The registration access token's hash.
    pub token_hash: TokenHash,
}

/// [`create`] with display metadata (checked by [`DisplayMetadata::validate`]) and, for RFC
/// 7591 registration, how it was registered: the validating path of the CLI, the admin API and
/// dynamic registration alike.
pub fn create_with(
    conn: &mut DbConn,
    new: NewClient,
    display: DisplayMetadata,
    dynamic: Option<Dynamic>,
    issuer: &str,
    now: NaiveDateTime,
) -> Result<Change<Registered>, ClientError> {
    let (mut row, secret) = validated_row(conn, new, &display, issuer, now)?;
    if let Some(dynamic) = dynamic {
        row.registration = Some(dynamic.kind.as_str().into());
        row.registration_token_hash = Some(dynamic.token_hash.into_string());
    }
    q::insert(conn, &row)?;
    let client = Client::from_row(&row).map_err(ClientError::Invalid)?;
    let detail = serde_json::json!({ "client": detail(&client) });
    let id = client.client_id.clone();
    Ok(Change::made(
        Registered {
            client,
            client_secret: secret,
        },
        id,
        detail,
    ))
}

/// Replaces every metadata value of dynamic client `client_id` with `new` and `display` at
/// `now` (RFC 7592 §2.2), validated as at registration. Its secret (or keys' method), type,
/// registration and registration access token stay: changing `token_endpoint_auth_method` or
/// public/confidential is refused. The audit detail is the old and new metadata.
pub fn replace_dynamic(
    conn: &mut DbConn,
    new: NewClient,
    display: DisplayMetadata,
    issuer: &str,
    now: NaiveDateTime,
) -> Result<Change<Client>, ClientError> {
    let client_id = new.client_id.clone();
    let old = q::find(conn, &client_id)?.ok_or(ClientError::NotFound)?;
    if old.registration.is_none() {
        return Err(ClientError::NotFound);
    }
    let (mut row, _unused_secret) = validated_row(conn, new, &display, issuer, now)?;
    if row.client_type != old.client_type
        || row.token_endpoint_auth_method != old.token_endpoint_auth_method
    {
        return Err(ClientError::Invalid(
            "token_endpoint_auth_method cannot change after registration".into(),
        ));
    }
    let sector = |row: &ClientRow| {
        SubjectType::from_stored(row.pairwise_sector.as_deref())
            .ok()
            .and_then(|t| t.sector().map(str::to_owned))
    };
    if sector(&row) != sector(&old) {
        return Err(ClientError::Invalid(
            "subject_type and the sector cannot change after registration: every user's sub would change".into(),
        ));
    }
    row.secret_hash = old.secret_hash.clone();
    row.created_at = old.created_at;
    row.registration = old.registration.clone();
    row.registration_token_hash = old.registration_token_hash.clone();
    row.last_used_at = old.last_used_at;
    // Settings only administrators give stay as they are.
    row.first_party = old.first_party;
    row.audiences = old.audiences.clone();
    row.introspection_audiences = old.introspection_audiences.clone();
    row.web_origins = old.web_origins.clone();
    row.second_factor = old.second_factor.clone();
    row.access_token_alg = old.access_token_alg.clone();
    row.token_exchange_audiences = old.token_exchange_audiences.clone();
    q::replace(conn, &row)?;
    let before = Client::from_row(&old).map_err(ClientError::Invalid)?;
    let after = Client::from_row(&row).map_err(ClientError::Invalid)?;
    let change = serde_json::json!({ "client": { "old": detail(&before), "new": detail(&after) } });
    Ok(Change::made(after, client_id, change))
}

/// Every check of [`create`], and the row it inserts (with a fresh secret for a
/// `client_secret_basic` client, shown once).
fn validated_row(
    conn: &mut DbConn,
    new: NewClient,
    display: &DisplayMetadata,
    issuer: &str,
    now: NaiveDateTime,
) -> Result<(ClientRow, Option<String>), ClientError> {
    display.validate().map_err(ClientError::Invalid)?;
    let invalid = |m: String| ClientError::Invalid(m);
    let id_ok = !new.client_id.is_empty()
        && new.client_id.len() <= 128
        && new
            .client_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._~".contains(c));
    if !id_ok {
        return Err(invalid(
            "client_id must be 1-128 characters of A-Z a-z 0-9 - . _ ~".into(),
        ));
    }
    if RESERVED_CLIENT_IDS
        .iter()
        .any(|reserved| reserved.eq_ignore_ascii_case(&new.client_id))
    {
        return Err(invalid(format!(
            "client_id `{}` is reserved",
            new.client_id
        )));
    }
    for uri in &new.redirect_uris {
        validate_client_redirect_uri(uri, new.public).map_err(invalid)?;
    }
    for uri in &new.post_logout_redirect_uris {
        validate_redirect_uri(uri).map_err(invalid)?;
    }
    let web_origins = checked_web_origins(&new.web_origins).map_err(invalid)?;
    let grant_types = if new.grant_types.is_empty() {
        if new.redirect_uris.is_empty() {
            vec![GrantType::ClientCredentials]
        } else {
            vec![GrantType::AuthorizationCode, GrantType::RefreshToken]
        }
    } else {
        new.grant_types.clone()
    };
    if new.public && grant_types.contains(&GrantType::ClientCredentials) {
        return Err(invalid(
            "client_credentials is for confidential clients only".into(),
        ));
    }
    let token_exchange_audiences = checked_exchange_audiences(
        new.public,
        grant_types.contains(&GrantType::TokenExchange),
        &new.token_exchange_audiences,
    )
    .map_err(invalid)?;
    if grant_types.contains(&GrantType::AuthorizationCode) && new.redirect_uris.is_empty() {
        return Err(invalid(
            "authorization_code needs at least one --redirect-uri".into(),
        ));
    }
    let scopes = if new.scopes.is_empty() {
        KNOWN_SCOPES.iter().map(|s| (*s).to_owned()).collect()
    } else {
        new.scopes.clone()
    };
    if let Some(unknown) = crate::oidc::apis::unknown_scopes(conn, &scopes)?.first() {
        return Err(invalid(unknown_scope_message(conn, unknown)?));
    }
    let audiences = if new.audiences.is_empty() {
        vec![issuer.to_owned()]
    } else {
        new.audiences.clone()
    };
    if audiences
        .iter()
        .chain(&new.introspection_audiences)
        .any(|a| a.is_empty() || a.contains(' '))
    {
        return Err(invalid(
            "an audience may not be empty or contain spaces".into(),
        ));
    }
    if new.public && !new.introspection_audiences.is_empty() {
        return Err(invalid(
            "introspection is for confidential clients only".into(),
        ));
    }
    if new.public && new.pkce != PkcePolicy::Required {
        return Err(invalid(format!(
            "a public client must use pkce=required, not {}",
            new.pkce.as_str()
        )));
    }
    let method = checked_auth_method(
        new.public,
        new.token_endpoint_auth_method,
        &new.jwks,
        new.jwks_uri.as_deref(),
    )
    .map_err(invalid)?;
    let request_uris = checked_request_uris(&new.request_uris).map_err(invalid)?;
    checked_request_object_alg(new.request_object_signing_alg, method, new.jwks.as_ref())
        .map_err(invalid)?;
    let (secret, secret_hash) = if method == AuthMethod::ClientSecretBasic {
        let (secret, hash) = generate_secret()?;
        (Some(secret), Some(hash))
    } else {
        (None, None)
    };
    let grants: Vec<String> = grant_types.iter().map(|g| g.as_str().to_owned()).collect();
    let row = ClientRow {
        client_id: new.client_id,
        secret_hash,
        client_type: if new.public { "public" } else { "confidential" }.into(),
        redirect_uris: json_list(&new.redirect_uris),
        grant_types: json_list(&grants),
        scopes: json_list(&scopes),
        audiences: json_list(&audiences),
        access_token_alg: new.access_token_alg.as_str().into(),
        id_token_alg: new.id_token_alg.as_str().into(),
        first_party: i32::from(new.first_party),
        post_logout_redirect_uris: json_list(&new.post_logout_redirect_uris),
        created_at: now,
        updated_at: now,
        introspection_audiences: json_list(&new.introspection_audiences),
        pkce: new.pkce.as_str().into(),
        web_origins: json_list(&web_origins),
        second_factor: new.second_factor.as_str().into(),
        token_endpoint_auth_method: method.as_str().into(),
        jwks: new.jwks.as_ref().map(serde_json::Value::to_string),
        jwks_uri: new.jwks_uri,
        token_exchange_audiences: json_list(&token_exchange_audiences),
        registration: None,
        registration_token_hash: None,
        last_used_at: None,
        client_name: display.client_name.clone(),
        logo_uri: display.logo_uri.clone(),
        policy_uri: display.policy_uri.clone(),
        tos_uri: display.tos_uri.clone(),
        contacts: json_list(&display.contacts),
        userinfo_signed_response_alg: new
            .userinfo_signed_response_alg
            .map(|alg| alg.as_str().to_owned()),
        request_uris: json_list(&request_uris),
        request_object_signing_alg: new
            .request_object_signing_alg
            .map(|alg| alg.as_str().to_owned()),
        pairwise_sector: new.subject_type.to_stored(),
    };
    Ok((row, secret))
}

/// The token-exchange audiences of a new client (RFC 8693): for a confidential client allowed
/// the grant (`exchanges`), one at least, each an audience without spaces (duplicates dropped);
/// none for any other client, so that a setting never lies about what the client can do.
fn checked_exchange_audiences(
    public: bool,
    exchanges: bool,
    audiences: &[String],
) -> Result<Vec<String>, String> {
    if public && exchanges {
        return Err(format!(
            "{TOKEN_EXCHANGE_GRANT} is for confidential clients only"
        ));
    }
    if !exchanges {
        return if audiences.is_empty() {
            Ok(Vec::new())
        } else {
            Err(format!(
                "token_exchange_audiences need the {TOKEN_EXCHANGE_GRANT} grant type"
            ))
        };
    }
    if audiences.is_empty() {
        return Err(format!(
            "{TOKEN_EXCHANGE_GRANT} needs at least one token_exchange_audience"
        ));
    }
    checked_distinct(audiences, |audience| {
        if audience.is_empty()
            || audience.len() > 512
            || audience
                .chars()
                .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(
                "a token_exchange_audience is 1-512 characters without spaces or control characters"
                    .into(),
            );
        }
        Ok(())
    })
}

/// `items` each checked by `check`, duplicates dropped (the first kept, the order kept).
fn checked_distinct(
    items: &[String],
    check: impl Fn(&str) -> Result<(), String>,
) -> Result<Vec<String>, String> {
    let mut checked: Vec<String> = Vec::with_capacity(items.len());
    for item in items {
        check(item)?;
        if !checked.contains(item) {
            checked.push(item.clone());
        }
    }
    Ok(checked)
}

/// The authentication method a new client gets: `none` for a public client (nothing else is
/// possible), `client_secret_basic` by default for a confidential one, `private_key_jwt` with a
/// valid `jwks` ([`ClientKeys::parse`]) or `jwks_uri` ([`validate_jwks_uri`]), not both; keys
/// with any other method are refused.
fn checked_auth_method(
    public: bool,
    requested: Option<AuthMethod>,
    jwks: &Option<serde_json::Value>,
    jwks_uri: Option<&str>,
) -> Result<AuthMethod, String> {
    let method = match (public, requested) {
        (true, None | Some(AuthMethod::None)) => AuthMethod::None,
        (true, Some(other)) => {
            return Err(format!(
                "a public client authenticates with none, not {}",
                other.as_str()
            ));
        }
        (false, None) => AuthMethod::ClientSecretBasic,
        (false, Some(AuthMethod::None)) => {
            return Err(
                "a confidential client authenticates with client_secret_basic or private_key_jwt"
                    .into(),
            );
        }
        (false, Some(method)) => method,
    };
    match (method, jwks, jwks_uri) {
        (_, Some(_), Some(_)) => Err("give jwks or jwks_uri, not both".into()),
        (AuthMethod::PrivateKeyJwt, Some(jwks), None) => ClientKeys::parse(jwks).map(|_| method),
        (AuthMethod::PrivateKeyJwt, None, Some(uri)) => validate_jwks_uri(uri).map(|()| method),
        (AuthMethod::PrivateKeyJwt, None, None) => {
            Err("private_key_jwt needs the client's jwks or jwks_uri".into())
        }
        (_, Some(_), _) => Err("jwks is for clients that authenticate with private_key_jwt".into()),
        (_, _, Some(_)) => {
            Err("jwks_uri is for clients that authenticate with private_key_jwt".into())
        }
        (_, None, None) => Ok(method),
    }
}

/// The algorithm a client's request objects must be signed with (OpenID Connect Dynamic
/// Client Registration 1.0 §2 `request_object_signing_alg`; OIDC Core §6.1). `none` is the
/// unsigned object (RFC 7519 §6), accepted only from a client that registered no algorithm or
/// registered `none`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum RequestObjectAlg {
    /// Unsigned (`alg: none`).
    #[serde(rename = "none")]
    None,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    #[serde(rename = "RS256")]
    Rs256,
    /// RSASSA-PSS with SHA-256.
    #[serde(rename = "PS256")]
    Ps256,
    /// ECDSA P-256 with SHA-256.
    #[serde(rename = "ES256")]
    Es256,
}

impl RequestObjectAlg {
    /// Every value, as discovery lists them (`request_object_signing_alg_values_supported`).
    pub const ALL: [Self; 4] = [Self::None, Self::Rs256, Self::Ps256, Self::Es256];

    /// The JWA name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Rs256 => "RS256",
            Self::Ps256 => "PS256",
            Self::Es256 => "ES256",
        }
    }

    /// Parses a JWA name, exactly (`None` or `NONE` are not `none`, JWT-01).
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|alg| alg.as_str() == text)
    }

    /// The signature algorithm; `None` for an unsigned object.
    pub fn algorithm(self) -> Option<jsonwebtoken::Algorithm> {
        match self {
            Self::None => None,
            Self::Rs256 => Some(jsonwebtoken::Algorithm::RS256),
            Self::Ps256 => Some(jsonwebtoken::Algorithm::PS256),
            Self::Es256 => Some(jsonwebtoken::Algorithm::ES256),
        }
    }
}

/// Most `request_uris` a client may register.
pub const MAX_REQUEST_URIS: usize = 10;

/// Longest `request_uri` a client may register, in bytes (RFC 9101 §5.2 asks for at most 512
/// ASCII characters).
pub const MAX_REQUEST_URI_LEN: usize = 512;

/// Checks a `request_uri` for registration (OIDC Core §6.2): at most [`MAX_REQUEST_URI_LEN`]
/// bytes without whitespace or control characters, and — its fragment aside, which is kept and
/// compared but never sent — a URL the outbound fetcher may fetch, as for a `jwks_uri`: `https`
/// with a host, no credentials, no special-use IP address as the host (loopback aside, which
/// the fetch itself refuses unless the test-only allowance is on).
pub fn validate_request_uri(uri: &str) -> Result<(), String> {
    if uri.len() > MAX_REQUEST_URI_LEN {
        return Err(format!(
            "request_uri `{uri}` refused: longer than {MAX_REQUEST_URI_LEN} bytes"
        ));
    }
    if uri.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "request_uri `{uri}` refused: it contains whitespace or control characters"
        ));
    }
    let fetched = uri.split_once('#').map_or(uri, |(base, _)| base);
    crate::verify::fetch::check_url(fetched, true)
        .map(|_| ())
        .map_err(|why| format!("request_uri `{uri}` refused: {why}"))
}

/// `uris` each checked by [`validate_request_uri`], at most [`MAX_REQUEST_URIS`], duplicates
/// dropped (first kept).
fn checked_request_uris(uris: &[String]) -> Result<Vec<String>, String> {
    if uris.len() > MAX_REQUEST_URIS {
        return Err(format!("request_uris: at most {MAX_REQUEST_URIS}"));
    }
    checked_distinct(uris, validate_request_uri)
}

/// A signed `request_object_signing_alg` needs keys to verify it: a `private_key_jwt` client's
/// `jwks` (one key of which must fit the algorithm) or `jwks_uri` (checked when fetched).
fn checked_request_object_alg(
    alg: Option<RequestObjectAlg>,
    method: AuthMethod,
    jwks: Option<&serde_json::Value>,
) -> Result<(), String> {
    let Some(signature) = alg.and_then(RequestObjectAlg::algorithm) else {
        return Ok(());
    };
    let name = alg.map_or("", RequestObjectAlg::as_str);
    if method != AuthMethod::PrivateKeyJwt {
        return Err(format!(
            "request_object_signing_alg {name} needs the client's public keys: jwks or jwks_uri, with token_endpoint_auth_method private_key_jwt"
        ));
    }
    match jwks.map(ClientKeys::parse) {
        Some(Ok(keys)) if !keys.supports(signature) => Err(format!(
            "request_object_signing_alg {name}: no key of jwks is for {name}"
        )),
        _ => Ok(()),
    }
}

/// Longest `jwks_uri` accepted, in bytes.
pub const MAX_JWKS_URI_LEN: usize = 2048;

/// Checks a `jwks_uri` for registration: an absolute `https` URL with a host, no credentials,
/// no fragment, at most [`MAX_JWKS_URI_LEN`] bytes, and no special-use IP address as its host
/// (loopback aside, which the fetch itself refuses unless the test-only allowance is on). The
/// addresses a name resolves to are checked at each fetch (SSRF-01..).
pub fn validate_jwks_uri(uri: &str) -> Result<(), String> {
    if uri.len() > MAX_JWKS_URI_LEN {
        return Err(format!("jwks_uri is longer than {MAX_JWKS_URI_LEN} bytes"));
    }
    crate::verify::fetch::check_url(uri, true)
        .map(|_| ())
        .map_err(|why| format!("jwks_uri `{uri}` refused: {why}"))
}

/// Why `scope` cannot be allowed, and where scopes come from: the OpenID scopes and the scopes
/// of registered APIs (the first twenty named).
fn unknown_scope_message(conn: &mut DbConn, scope: &str) -> Result<String, ClientError> {
    const SHOWN: usize = 20;
    let api_scopes = crate::oidc::apis::scope_names(conn, SHOWN + 1)?;
    let apis = match api_scopes.len() {
        0 => "none yet: register an API and its scopes with `portcullis apis create`".to_owned(),
        n if n > SHOWN => format!(
            "{}, …; see `portcullis apis list`",
            api_scopes[..SHOWN].join(", ")
        ),
        _ => format!("{}; see `portcullis apis list`", api_scopes.join(", ")),
    };
    Ok(format!(
        "unknown scope `{scope}`: a client may be allowed the OpenID scopes ({}) and the scopes of registered APIs ({apis})",
        KNOWN_SCOPES.join(", ")
    ))
}

/// The client of a stored row.
pub fn of_row(row: &ClientRow) -> Result<Client, ClientError> {
    Client::from_row(row).map_err(ClientError::Invalid)
}

/// Every client.
pub fn list(conn: &mut DbConn) -> Result<Vec<Client>, ClientError> {
    q::all(conn)?
        .iter()
        .map(|row| Client::from_row(row).map_err(ClientError::Invalid))
        .collect()
}

/// Deletes a client; its refresh families are revoked at `now`. The audit detail is the deleted
/// client.
pub fn delete(
    conn: &mut DbConn,
    client_id: &str,
    now: NaiveDateTime,
) -> Result<Change<()>, ClientError> {
    crate::db::write_transaction(conn, |conn| {
        let row = q::find(conn, client_id)?.ok_or(ClientError::NotFound)?;
        if q::delete(conn, client_id)? != 1 {
            return Err(ClientError::NotFound);
        }
        crate::db::queries::refresh::revoke_client_families(
            conn,
            client_id,
            "client_deleted",
            now,
        )?;
        // A client registered again under this id starts without the old one's consents.
        crate::db::queries::consents::delete_for_client(conn, client_id)?;
        let client = Client::from_row(&row).map_err(ClientError::Invalid)?;
        Ok(Change::made(
            (),
            client_id,
            serde_json::json!({ "client": { "old": detail(&client), "new": null } }),
        ))
    })
}

/// Replaces a confidential client's secret at `now`; returns the client with the new secret
/// (shown once; the audit detail says only that it changed).
pub fn rotate_secret(
    conn: &mut DbConn,
    client_id: &str,
    now: NaiveDateTime,
) -> Result<Change<Registered>, ClientError> {
    let (secret, hash) = generate_secret()?;
    let row = q::find(conn, client_id)?.ok_or(ClientError::NotFound)?;
    if row.client_type != "confidential" {
        return Err(ClientError::Invalid(
            "a public client has no secret to rotate".into(),
        ));
    }
    let detail = if row.token_endpoint_auth_method == AuthMethod::PrivateKeyJwt.as_str() {
        // A key client given a secret authenticates with the secret from now on.
        q::set_authentication(
            conn,
            client_id,
            AuthMethod::ClientSecretBasic.as_str(),
            (None, None),
            Some(&hash),
            now,
        )?;
        serde_json::json!({
            "client_secret": "replaced",
            "token_endpoint_auth_method": { "old": "private_key_jwt", "new": "client_secret_basic" },
        })
    } else {
        q::set_secret(conn, client_id, &hash, now)?;
        serde_json::json!({ "client_secret": "replaced" })
    };
    let row = q::find(conn, client_id)?.ok_or(ClientError::NotFound)?;
    Ok(Change::made(
        Registered {
            client: Client::from_row(&row).map_err(ClientError::Invalid)?,
            client_secret: Some(secret),
        },
        client_id,
        detail,
    ))
}

/// Replaces a client's redirect URIs at `now` (each validated as at registration); the audit
/// detail is the old and new list (no change when they are equal).
pub fn set_redirect_uris(
    conn: &mut DbConn,
    client_id: &str,
    redirect_uris: &[String],
    now: NaiveDateTime,
) -> Result<Change<Client>, ClientError> {
    let row = q::find(conn, client_id)?.ok_or(ClientError::NotFound)?;
    let public = row.client_type != "confidential";
    for uri in redirect_uris {
        validate_client_redirect_uri(uri, public).map_err(ClientError::Invalid)?;
    }
    let grants: Vec<String> = serde_json::from_str(&row.grant_types).unwrap_or_default();
    if redirect_uris.is_empty() && grants.iter().any(|g| g == "authorization_code") {
        return Err(ClientError::Invalid(
            "authorization_code needs at least one redirect URI".into(),
        ));
    }
    let old: Vec<String> = serde_json::from_str(&row.redirect_uris).unwrap_or_default();
    if old == redirect_uris {
        let client = Client::from_row(&row).map_err(ClientError::Invalid)?;
        return Ok(Change::none(client, client_id));
    }
    q::set_redirect_uris(conn, client_id, &json_list(redirect_uris), now)?;
    let row = q::find(conn, client_id)?.ok_or(ClientError::NotFound)?;
    Ok(Change::made(
        Client::from_row(&row).map_err(ClientError::Invalid)?,
        client_id,
        serde_json::json!({ "redirect_uris": { "old": old, "new": redirect_uris } }),
    ))
}

/// `origins` each checked by [`validate_web_origin`], duplicates dropped (first kept).
fn checked_web_origins(origins: &[String]) -> Result<Vec<String>, String> {
    checked_distinct(origins, validate_web_origin)
}

/// Replaces a client's explicitly registered web origins at `now` (each validated as at
/// registration; duplicates dropped); the audit detail is the old and new list (no change when
/// they are equal). The client's origins also include its redirect URIs' origins.
pub fn set_web_origins(
    conn: &mut DbConn,
    client_id: &str,
    web_origins: &[String],
    now: NaiveDateTime,
) -> Result<Change<Client>, ClientError> {
    let web_origins = checked_web_origins(web_origins).map_err(ClientError::Invalid)?;
    let row = q::find(conn, client_id)?.ok_or(ClientError::NotFound)?;
    let old: Vec<String> = serde_json::from_str(&row.web_origins).unwrap_or_default();
    if old == web_origins {
        let client = Client::from_row(&row).map_err(ClientError::Invalid)?;
        return Ok(Change::none(client, client_id));
    }
    q::set_web_origins(conn, client_id, &json_list(&web_origins), now)?;
    let row = q::find(conn, client_id)?.ok_or(ClientError::NotFound)?;
    Ok(Change::made(
        Client::from_row(&row).map_err(ClientError::Invalid)?,
        client_id,
        serde_json::json!({ "web_origins": { "old": old, "new": web_origins } }),
    ))
}

/// Replaces the audiences a client may ask for by token exchange (RFC 8693 §2.1 `audience` and
/// `resource`; the first is the default) at `now`. The client must be confidential and allowed
/// the token-exchange grant (grants are fixed at registration), and the list is checked as at
/// registration: one audience at least, no spaces or control characters, at most 512 bytes each
/// (duplicates dropped). Tokens already issued keep their audience; the next exchange follows
/// the new list. The audit detail is the old and new list (no change when they are equal).
pub fn set_token_exchange_audiences(
    conn: &mut DbConn,
    client_id: &str,
    audiences: &[String],
    now: NaiveDateTime,
) -> Result<Change<Client>, ClientError> {
    let row = q::find(conn, client_id)?.ok_or(ClientError::NotFound)?;
    let client = Client::from_row(&row).map_err(ClientError::Invalid)?;
    if !client.allows(GrantType::TokenExchange) {
        return Err(ClientError::Invalid(format!(
            "the client is not allowed the {TOKEN_EXCHANGE_GRANT} grant type (fixed at registration)"
        )));
    }
    let audiences = checked_exchange_audiences(!client.confidential, true, audiences)
        .map_err(ClientError::Invalid)?;
    if client.token_exchange_audiences == audiences {
        return Ok(Change::none(client, client_id));
    }
    let old = client.token_exchange_audiences;
    q::set_token_exchange_audiences(conn, client_id, &json_list(&audiences), now)?;
    let row = q::find(conn, client_id)?.ok_or(ClientError::NotFound)?;
    Ok(Change::made(
        Client::from_row(&row).map_err(ClientError::Invalid)?,
        client_id,
        serde_json::json!({ "token_exchange_audiences": { "old": old, "new": audiences } }),
    ))
}

/// Sets a client's second-factor policy at `now`; the audit detail is the old and new policy (no
/// change when they are equal).
pub fn set_second_factor(
    conn: &mut DbConn,
    client_id: &str,
    policy: SecondFactorPolicy,
    now: NaiveDateTime,
) -> Result<Change<Client>, ClientError> {
    let row = q::find(conn, client_id)?.ok_or(ClientError::NotFound)?;
    if row.second_factor == policy.as_str() {
        let client = Client::from_row(&row).map_err(ClientError::Invalid)?;
        return Ok(Change::none(client, client_id));
    }
    q::set_second_factor(conn, client_id, policy.as_str(), now)?;
    let old = row.second_factor;
    let row = q::find(conn, client_id)?.ok_or(ClientError::NotFound)?;
    Ok(Change::made(
        Client::from_row(&row).map_err(ClientError::Invalid)?,
        client_id,
        serde_json::json!({ "second_factor": { "old": old, "new": policy.as_str() } }),
    ))
}

/// Where a `private_key_jwt` client's public keys are: inline, or at an https URL.
#[derive(Clone, Debug)]
pub enum KeySource {
    /// A JSON Web Key Set (`jwks`).
    Jwks(serde_json::Value),
    /// The URL of one (`jwks_uri`).
    JwksUri(String),
}

/// Makes a confidential client authenticate with `private_key_jwt` and the keys of `source`
/// (replacing any earlier keys or key URL; a secret it had stops working at once) at `now`.
/// Errors: a public client, a `jwks` refused by [`ClientKeys::parse`], a `jwks_uri` refused by
/// [`validate_jwks_uri`]. The audit detail names the old and new method and the key ids or
/// URLs (no key material).
pub fn set_keys(
    conn: &mut DbConn,
    client_id: &str,
    source: &KeySource,
    now: NaiveDateTime,
) -> Result<Change<Client>, ClientError> {
    let (jwks, jwks_uri, new_keys) = match source {
        KeySource::Jwks(jwks) => {
            let keys = ClientKeys::parse(jwks).map_err(ClientError::Invalid)?;
            (Some(jwks.to_string()), None, serde_json::json!(keys.kids()))
        }
        KeySource::JwksUri(uri) => {
            validate_jwks_uri(uri).map_err(ClientError::Invalid)?;
            (None, Some(uri.clone()), serde_json::Value::Null)
        }
    };
    let row = q::find(conn, client_id)?.ok_or(ClientError::NotFound)?;
    if row.client_type != "confidential" {
        return Err(ClientError::Invalid(
            "a public client has no keys: it authenticates with none".into(),
        ));
    }
    let old_kids = Client::from_row(&row)
        .ok()
        .and_then(|client| client.keys.map(|keys| keys.kids()));
    let old_uri = row.jwks_uri.clone();
    q::set_authentication(
        conn,
        client_id,
        AuthMethod::PrivateKeyJwt.as_str(),
        (jwks.as_deref(), jwks_uri.as_deref()),
        None,
        now,
    )?;
    let row = q::find(conn, client_id)?.ok_or(ClientError::NotFound)?;
    let old_method = if old_kids.is_some() || old_uri.is_some() {
        "private_key_jwt"
    } else {
        "client_secret_basic"
    };
    Ok(Change::made(
        Client::from_row(&row).map_err(ClientError::Invalid)?,
        client_id,
        serde_json::json!({
            "token_endpoint_auth_method": { "old": old_method, "new": "private_key_jwt" },
            "jwks": { "old": old_kids, "new": new_keys },
            "jwks_uri": { "old": old_uri, "new": jwks_uri },
        }),
    ))
}

struct Loaded {
    clients: HashMap<String, Arc<Client>>,
    /// The union of every client's origins: a CORS preflight names no client, so it is
    /// answered for an origin of any client ([`ClientRegistry::knows_origin`]).
    origins: HashSet<String>,
    fingerprint: Fingerprint,
}

/// What changes whenever a client or a client's logo is added, changed or deleted: `(count,
/// latest change)` of `clients`, and `(count, latest fetch)` of `client_logos`.
type Fingerprint = ((i64, Option<NaiveDateTime>), (i64, Option<NaiveDateTime>));

/// The current [`Fingerprint`].
fn fingerprint(conn: &mut DbConn) -> Result<Fingerprint, DbError> {
    Ok((q::fingerprint(conn)?, logos_q::fingerprint(conn)?))
}

/// Every client in memory, reloaded when the table changes (checked every key refresh tick on
/// every instance, and at once after a change made by this process).
pub struct ClientRegistry {
    loaded: Snapshot<Loaded>,
}

impl ClientRegistry {
    /// Loads every client.
    pub fn load(conn: &mut DbConn) -> Result<Self, ClientError> {
        Ok(Self {
            loaded: Snapshot::new(load(conn)?),
        })
    }

    /// A client by id, from memory.
    pub fn get(&self, client_id: &str) -> Option<Arc<Client>> {
        self.loaded.peek().clients.get(client_id).cloned()
    }

    /// Whether `origin` is a web origin of any client ([`Client::allows_origin`]), from memory:
    /// what a CORS preflight, which names no client, is allowed by; the actual request is then
    /// checked against its own client.
    pub fn knows_origin(&self, origin: &str) -> bool {
        self.loaded.peek().origins.contains(origin)
    }

    /// Reloads at once (after a change made by this process), by compare-and-swap
    /// ([`Snapshot::reload`]).
    pub async fn reload(&self, db: &Db) -> Result<(), ClientError> {
        self.loaded.reload(db, load).await
    }

    /// Reloads if the table changed since the last load; a load that another one overtook is
    /// dropped ([`Snapshot::refresh`]).
    pub async fn refresh(&self, db: &Db) -> Result<(), ClientError> {
        let installed = self
            .loaded
            .refresh(db, |observed| {
                let current = observed.fingerprint;
                move |conn: &mut DbConn| {
                    if fingerprint(conn)? == current {
                        return Ok::<_, ClientError>(None);
                    }
                    load(conn).map(Some)
                }
            })
            .await?;
        if let Some(loaded) = installed {
            tracing::info!(clients = loaded.clients.len(), "clients changed; reloaded");
        }
        Ok(())
    }
}

fn load(conn: &mut DbConn) -> Result<Loaded, ClientError> {
    let fingerprint = fingerprint(conn)?;
    let logos: HashSet<String> = logos_q::client_ids(conn)?.into_iter().collect();
    let mut clients = HashMap::new();
    let mut origins = HashSet::new();
    for row in q::all(conn)? {
        match Client::from_row(&row) {
            Ok(mut client) => {
                client.logo_stored = logos.contains(&client.client_id);
                origins.extend(client.origins.iter().cloned());
                clients.insert(client.client_id.clone(), Arc::new(client));
            }
            Err(error) => {
                tracing::error!(client_id = %row.client_id, %error, "client row is invalid; ignored")
            }
        }
    }
    Ok(Loaded {
        clients,
        origins,
        fingerprint,
    })
}

#[cfg(test)]
mod tests {
    use super::{
        Client, RequestOrigin, check_request_origin, redirect_uri_matches,
        validate_client_redirect_uri, validate_redirect_uri, validate_web_origin,
    };

    #[test]
    fn web_origins_are_exactly_what_browsers_send() {
        for good in [
            "https://app.example.com",
            "https://app.example.com:8443",
            "http://127.0.0.1:5173",
            "http://[::1]:8080",
            "http://localhost:3000",
            "https://xn--bcher-kva.example",
        ] {
            assert!(validate_web_origin(good).is_ok(), "{good}");
        }
        for (bad, why) in [
            ("*", "`*`"),
            ("null", "`null`"),
            ("https://app.example.com/", "trailing slash"),
            ("https://app.example.com/app", "no path"),
            ("https://app.example.com?x=1", "no query"),
            ("https://app.example.com#x", "no query or fragment"),
            (
                "https://App.Example.com",
                "write it as `https://app.example.com`",
            ),
            (
                "https://app.example.com:443",
                "write it as `https://app.example.com`",
            ),
            (
                "https://bücher.example",
                "write it as `https://xn--bcher-kva.example`",
            ),
            ("http://app.example.com", "loopback"),
            ("ftp://app.example.com", "scheme"),
            ("com.example.app:", "scheme"),
            ("https://user@app.example.com", "credentials"),
            ("app.example.com", "not an origin"),
            ("https://app.example.com ", "whitespace"),
            ("", "not an origin"),
        ] {
            let error = validate_web_origin(bad).expect_err(bad);
            assert!(error.contains(why), "{bad}: {error}");
        }
    }

    #[test]
    fn a_clients_origins_are_its_web_origins_and_its_redirect_uris_origins() {
        let client = Client::for_tests(
            "spa",
            &[
                "https://app.example.com/cb?tenant=1",
                "http://127.0.0.1/cb",
                "http://localhost:5173/callback",
                "com.example.app:/cb",
            ],
            false,
        );
        for allowed in [
            "https://app.example.com",
            "http://127.0.0.1",
            "http://localhost:5173",
        ] {
            assert!(client.allows_origin(allowed), "{allowed}");
        }
        for refused in [
            // RFC 8252 §7.3 any-port matching does not widen CORS.
            "http://127.0.0.1:51004",
            "http://app.example.com",
            "https://app.example.com:8443",
            "https://app.example.com.evil.example",
            "https://APP.example.com",
            "https://app.example.com/",
            "http://localhost",
            "com.example.app:",
            "null",
            "",
        ] {
            assert!(!client.allows_origin(refused), "{refused}");
        }
        assert_eq!(
            check_request_origin(&client, None).ok(),
            Some(RequestOrigin::Absent)
        );
        assert_eq!(
            check_request_origin(&client, Some(b"https://app.example.com")).ok(),
            Some(RequestOrigin::Allowed)
        );
        for refused in [&b"https://evil.example"[..], b"null", b"\xff"] {
            assert!(check_request_origin(&client, Some(refused)).is_err());
        }
    }

    #[test]
    fn redirect_uris_are_checked_at_registration() {
        for good in [
            "https://app.example.com/cb",
            "https://app.example.com/cb?x=1",
            "http://127.0.0.1:8080/cb",
            "http://localhost/cb",
            "http://[::1]:9000/cb",
        ] {
            assert!(validate_redirect_uri(good).is_ok(), "{good}");
        }
        for bad in [
            "javascript:alert(1)",
            "JavaScript:alert(1)",
            "data:text/html,hi",
            "vbscript:msgbox",
            "http://app.example.com/cb",
            "https://app.example.com/cb#frag",
            "https://*.example.com/cb",
            "https://user:pw@app.example.com/cb",
            "/relative",
            "https://app.example.com/c b",
        ] {
            assert!(validate_redirect_uri(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn private_use_schemes_in_reverse_domain_form_are_for_public_clients() {
        for good in [
            "com.example.app:/cb",
            "com.example.app:/oauth2redirect/example-provider",
            "io.my-app.ios://callback",
        ] {
            assert!(validate_client_redirect_uri(good, true).is_ok(), "{good}");
            assert!(validate_client_redirect_uri(good, false).is_err(), "{good}");
            assert!(validate_redirect_uri(good).is_err(), "{good}");
        }
        for bad in [
            "myapp:/cb",
            "javascript:alert(1)",
            "data:text/html,x",
            "file:///etc/passwd",
            "com.example.app:/cb#frag",
            "com..app:/cb",
            "1com.example:/cb",
            "com.-x.app:/cb",
            "com.example.app:/c b",
        ] {
            assert!(validate_client_redirect_uri(bad, true).is_err(), "{bad}");
        }
    }

    #[test]
    fn loopback_ip_redirect_uris_registered_without_a_port_match_any_port() {
        let v4 = "http://127.0.0.1/cb";
        let v6 = "http://[::1]/cb";
        for (registered, requested) in [
            (v4, "http://127.0.0.1/cb"),
            (v4, "http://127.0.0.1:51004/cb"),
            (v4, "http://127.0.0.1:1/cb"),
            (v4, "http://127.0.0.1:65535/cb"),
            (v6, "http://[::1]:61023/cb"),
            ("http://127.0.0.1/cb?x=1", "http://127.0.0.1:8080/cb?x=1"),
            ("http://127.0.0.1:8080/cb", "http://127.0.0.1:8080/cb"),
        ] {
            assert!(
                redirect_uri_matches(registered, requested),
                "{registered} {requested}"
            );
        }
        for (registered, requested) in [
            (v4, "http://127.0.0.1:51004/cb/"),
            (v4, "http://127.0.0.1:51004/other"),
            (v4, "http://127.0.0.1:51004/cb?x=1"),
            (v4, "http://127.0.0.1:0/cb"),
            (v4, "http://127.0.0.1:065535/cb"),
            (v4, "http://127.0.0.1:65536/cb"),
            (v4, "http://127.0.0.1:/cb"),
            (v4, "http://127.0.0.1:80@evil.example/cb"),
            (v4, "http://127.0.0.1.evil.example/cb"),
            (v4, "http://127.0.0.2:5000/cb"),
            (v4, "https://127.0.0.1:5000/cb"),
            (v4, "http://[::1]:5000/cb"),
            (v6, "http://127.0.0.1:5000/cb"),
            ("http://127.0.0.1:8080/cb", "http://127.0.0.1:9090/cb"),
            ("http://localhost/cb", "http://localhost:5000/cb"),
            ("http://127.0.0.10/cb", "http://127.0.0.10:5000/cb"),
            ("http://127.0.0.1/cb", "http://127.0.0.1:5000"),
        ] {
            assert!(
                !redirect_uri_matches(registered, requested),
                "{registered} {requested}"
            );
        }
    }
}
