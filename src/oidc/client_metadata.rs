//! Client ID metadata documents (draft-ietf-oauth-client-id-metadata-document): a `client_id`
//! that is an https URL names a JSON document of the client's metadata, fetched through the
//! SSRF-safe fetcher (no redirects, public addresses only, at most 5 KB) and cached by its HTTP
//! headers; errors and invalid documents are never cached (§4.4). Off unless enabled.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::oidc::client_auth::AuthMethod;
use crate::oidc::clients::{Client, DocumentMetadata, GrantType, KNOWN_SCOPES};
use crate::oidc::remote::{CacheBounds, RemoteCache};
use crate::verify::FetchError;
use crate::verify::fetch::{SafeFetcher, check_url};

/// Largest document accepted, in bytes (the draft's §6.6 recommendation: 5 KB).
pub const MAX_DOCUMENT_BYTES: usize = 5 * 1024;

/// Longest client ID URL accepted, in bytes.
pub const MAX_CLIENT_ID_URL_LEN: usize = 2048;

/// Most redirect URIs a document may list.
pub const MAX_REDIRECT_URIS: usize = 20;

/// How long a document is kept: its `Cache-Control` lifetime bounded to 1 to 60 minutes (5
/// without one).
pub const DOCUMENT_CACHE: CacheBounds = CacheBounds {
    min: Duration::from_secs(60),
    default: Duration::from_secs(300),
    max: Duration::from_secs(3600),
    refetch_cooldown: Duration::from_secs(60),
};

/// Whether `client_id` has the form of a client ID metadata document URL (it starts with
/// `https://`; registered client ids never do, as they are `[A-Za-z0-9-._~]`).
pub fn is_document_url(client_id: &str) -> bool {
    client_id.starts_with("https://")
}

/// Checks a client ID URL (§3): `https`, a host, a path other than `/`, no fragment, no user
/// name or password, at most [`MAX_CLIENT_ID_URL_LEN`] bytes, and already in the canonical
/// form the URL parser gives (lowercase host, no default port, no `.` or `..` segments), so
/// that the document's `client_id` can be compared with it byte for byte. The host may not be
/// a special-use IP address ([`check_url`]). The error says why.
pub fn check_document_url(client_id: &str, allow_loopback: bool) -> Result<url::Url, String> {
    if client_id.len() > MAX_CLIENT_ID_URL_LEN {
        return Err(format!(
            "the client_id URL is longer than {MAX_CLIENT_ID_URL_LEN} bytes"
        ));
    }
    let url = check_url(client_id, allow_loopback)?;
    if url.path() == "/" {
        return Err("a client_id URL must have a path other than `/`".into());
    }
    if url.as_str() != client_id {
        return Err(format!(
            "the client_id URL is not in canonical form (`{}`)",
            url.as_str()
        ));
    }
    Ok(url)
}

/// The host a client ID metadata document comes from, for the login and consent pages (§6.4:
/// the user sees who vouches for the client); `None` for a registered client id.
pub fn document_host(client_id: &str) -> Option<String> {
    if !is_document_url(client_id) {
        return None;
    }
    url::Url::parse(client_id)
        .ok()
        .and_then(|url| url.host_str().map(str::to_owned))
}

/// Reads the document at `url` (§4.1): a JSON object whose `client_id` is `url` byte for byte;
/// `redirect_uris` (1 to [`MAX_REDIRECT_URIS`]); `token_endpoint_auth_method` `none` (the
/// default) or `private_key_jwt` with `jwks` or `jwks_uri` — never a shared-secret method, and no
/// `client_secret` or `client_secret_expires_at`; `grant_types` from `authorization_code`
/// (required; the default) and `refresh_token`; `response_types` only `code`; `scope`, the
/// scopes it may ask for (else the OpenID scopes). The error names what is wrong.
pub fn client_from_document(url: &str, body: &[u8], issuer: &str) -> Result<Client, String> {
    let doc: Map<String, Value> =
        serde_json::from_slice(body).map_err(|_| "the document is not a JSON object")?;
    if doc.get("client_id").and_then(Value::as_str) != Some(url) {
        return Err("its client_id is not the document's URL".into());
    }
    if doc.contains_key("client_secret") || doc.contains_key("client_secret_expires_at") {
        return Err("a client ID metadata document holds no client_secret".into());
    }
    let method = match doc.get("token_endpoint_auth_method") {
        None => AuthMethod::None,
        Some(Value::String(text)) if text == "none" => AuthMethod::None,
        Some(Value::String(text)) if text == "private_key_jwt" => AuthMethod::PrivateKeyJwt,
        Some(Value::String(text)) if text.starts_with("client_secret") => {
            return Err(format!(
                "token_endpoint_auth_method {text} is a shared secret, which a document cannot hold"
            ));
        }
        Some(_) => return Err("token_endpoint_auth_method is none or private_key_jwt".into()),
    };
    let strings = |name: &str| -> Result<Option<Vec<String>>, String> {
        match doc.get(name) {
            None => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| {
                    item.as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| format!("{name} must be an array of strings"))
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(_) => Err(format!("{name} must be an array of strings")),
        }
    };
    let redirect_uris = strings("redirect_uris")?.unwrap_or_default();
    if redirect_uris.is_empty() || redirect_uris.len() > MAX_REDIRECT_URIS {
        return Err(format!(
            "redirect_uris must list 1 to {MAX_REDIRECT_URIS} redirect URIs"
        ));
    }
    let grant_types = strings("grant_types")?
        .unwrap_or_else(|| vec!["authorization_code".to_owned()])
        .iter()
        .map(|grant| match GrantType::parse(grant) {
            Some(grant @ (GrantType::AuthorizationCode | GrantType::RefreshToken)) => Ok(grant),
            _ => Err(format!(
                "grant type {grant} is not available to a client ID metadata document"
            )),
        })
        .collect::<Result<Vec<_>, _>>()?;
    if !grant_types.contains(&GrantType::AuthorizationCode) {
        return Err("grant_types must include authorization_code".into());
    }
    if strings("response_types")?.is_some_and(|types| types.iter().any(|r| r != "code")) {
        return Err("response_types may only be code".into());
    }
    let scopes = match doc.get("scope") {
        None => KNOWN_SCOPES.iter().map(|s| (*s).to_owned()).collect(),
        Some(Value::String(scope)) => scope.split_whitespace().map(str::to_owned).collect(),
        Some(_) => return Err("scope must be a string".into()),
    };
    let jwks_uri = match doc.get("jwks_uri") {
        None => None,
        Some(Value::String(uri)) => Some(uri.clone()),
        Some(_) => return Err("jwks_uri must be a string".into()),
    };
    Client::from_document(
        DocumentMetadata {
            client_id: url.to_owned(),
            redirect_uris,
            grant_types,
            scopes,
            method,
            jwks: doc.get("jwks").cloned(),
            jwks_uri,
        },
        issuer,
    )
}

/// The clients of client ID metadata documents, fetched and cached by URL ([`DOCUMENT_CACHE`]).
pub struct MetadataDocuments {
    cache: RemoteCache<Client>,
    issuer: String,
}

impl MetadataDocuments {
    /// Documents fetched with `fetcher` for the server `issuer`.
    pub fn new(fetcher: Arc<SafeFetcher>, issuer: &str) -> Self {
        Self {
            cache: RemoteCache::new(
                fetcher,
                "application/cimd+json, application/json",
                MAX_DOCUMENT_BYTES,
                DOCUMENT_CACHE,
            ),
            issuer: issuer.to_owned(),
        }
    }

    /// The client whose id is the URL `client_id` ([`check_document_url`]), from its document
    /// ([`client_from_document`]). Errors: [`FetchError::Refused`] for a URL that may not be
    /// fetched, the fetch's errors, [`FetchError::Document`] for an invalid document.
    pub async fn client(&self, client_id: &str) -> Result<Arc<Client>, FetchError> {
        check_document_url(client_id, self.cache.fetcher().allows_loopback()).map_err(
            |reason| FetchError::Refused {
                url: client_id.to_owned(),
                reason,
            },
        )?;
        self.cache
            .get(
                client_id,
                |_| true,
                |body| client_from_document(client_id, body, &self.issuer),
            )
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "https://app.example.com/oauth/client.json";

    fn read(doc: Value) -> Result<Client, String> {
        client_from_document(URL, doc.to_string().as_bytes(), "https://issuer.example")
    }

    #[test]
    fn client_id_urls_are_https_with_a_path_in_canonical_form() {
        assert!(check_document_url(URL, false).is_ok());
        for (bad, why) in [
            ("http://app.example.com/c.json", "https"),
            ("https://app.example.com/", "path"),
            ("https://app.example.com", "path"),
            ("https://APP.example.com/c.json", "canonical"),
            ("https://app.example.com:443/c.json", "canonical"),
            ("https://app.example.com/a/../c.json", "canonical"),
            ("https://app.example.com/./c.json", "canonical"),
            ("https://app.example.com/c.json#x", "fragment"),
            ("https://u:p@app.example.com/c.json", "credentials"),
            ("https://10.0.0.1/c.json", "special-use"),
        ] {
            let error = check_document_url(bad, false).expect_err(bad);
            assert!(error.contains(why), "{bad}: {error}");
        }
        assert_eq!(document_host(URL).as_deref(), Some("app.example.com"));
        assert_eq!(document_host("webapp"), None);
    }

    #[test]
    fn documents_are_read_strictly() {
        let good = serde_json::json!({
            "client_id": URL, "client_name": "App", "redirect_uris": ["https://app.example.com/cb"],
            "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        });
        let client = read(good.clone()).unwrap_or_else(|e| panic!("{e}"));
        assert!(!client.confidential);
        assert_eq!(client.token_endpoint_auth_method, AuthMethod::None);
        assert!(client.allows(GrantType::RefreshToken));
        let with = |member: &str, value: Value| {
            let mut doc = good.clone();
            if value.is_null() {
                doc.as_object_mut().map(|d| d.remove(member));
            } else {
                doc[member] = value;
            }
            doc
        };
        for (doc, why) in [
            (
                with("client_id", "https://other.example/c.json".into()),
                "client_id",
            ),
            (with("client_secret", "s".into()), "client_secret"),
            (with("client_secret_expires_at", 0.into()), "client_secret"),
            (
                with("token_endpoint_auth_method", "client_secret_basic".into()),
                "shared secret",
            ),
            (
                with("token_endpoint_auth_method", "client_secret_post".into()),
                "shared secret",
            ),
            (
                with("token_endpoint_auth_method", "client_secret_jwt".into()),
                "shared secret",
            ),
            (
                with("token_endpoint_auth_method", "private_key_jwt".into()),
                "jwks",
            ),
            (with("redirect_uris", Value::Null), "redirect_uris"),
            (
                with(
                    "redirect_uris",
                    serde_json::json!(["http://app.example.com/cb"]),
                ),
                "http",
            ),
            (
                with("grant_types", serde_json::json!(["client_credentials"])),
                "client_credentials",
            ),
            (
                with("grant_types", serde_json::json!(["refresh_token"])),
                "authorization_code",
            ),
            (with("response_types", serde_json::json!(["token"])), "code"),
        ] {
            let error = read(doc).expect_err(why);
            assert!(error.contains(why), "{why}: {error}");
        }
        assert!(client_from_document(URL, b"[]", "https://i").is_err());
    }
}
