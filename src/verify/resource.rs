//! OAuth 2.0 Protected Resource Metadata (RFC 9728): what a resource server publishes so that a
//! client holding nothing but the resource's URL (an MCP client, for one) finds the
//! authorization server that issues tokens for it and the scopes it understands.
//!
//! The document is served at the resource identifier's well-known URL (§3.1), and the resource's
//! `401` challenges point at it with `resource_metadata` (§5.1); the actix side of both is
//! [`super::actix::ProtectedResource`].

use serde::{Deserialize, Serialize};

/// The well-known path segment of RFC 9728 §3.
pub const WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";

/// A resource's metadata document (RFC 9728 §2). Build with [`ProtectedResourceMetadata::new`]
/// and fill the optional fields; unset ones are left out of the JSON.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProtectedResourceMetadata {
    /// The resource identifier (RFC 8707 §2): the URL clients use for this API and the audience
    /// of the tokens it accepts. Clients check that it equals the URL they started from (§3.3).
    pub resource: String,
    /// Issuer identifiers of the authorization servers whose tokens the resource accepts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub authorization_servers: Vec<String>,
    /// The scope values a client may request to access the resource (RFC 6749 §3.3 tokens).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes_supported: Vec<String>,
    /// How the resource accepts a bearer token (RFC 6750 §2): `["header"]`, the only method
    /// [`super::actix::Authenticated`] reads.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bearer_methods_supported: Vec<String>,
    /// A human-readable name of the resource, for consent and logs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_name: Option<String>,
    /// A URL of the resource's documentation for developers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_documentation: Option<String>,
    /// A URL of the resource's policy on how client data is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_policy_uri: Option<String>,
    /// A URL of the resource's terms of service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_tos_uri: Option<String>,
}

impl ProtectedResourceMetadata {
    /// The metadata of `resource`, protected by tokens from `issuer` sent in the
    /// `Authorization` header.
    pub fn new(resource: impl Into<String>, issuer: impl Into<String>) -> Self {
        Self {
            resource: resource.into(),
            authorization_servers: vec![issuer.into()],
            scopes_supported: Vec::new(),
            bearer_methods_supported: vec!["header".into()],
            resource_name: None,
            resource_documentation: None,
            resource_policy_uri: None,
            resource_tos_uri: None,
        }
    }
}

/// Why a resource identifier cannot have metadata.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("resource identifier `{identifier}` refused: {reason}")]
pub struct InvalidResource {
    /// The identifier as given.
    pub identifier: String,
    /// Why.
    pub reason: &'static str,
}

/// Where the metadata of `resource` is (RFC 9728 §3.1): the well-known segment inserted between
/// the host and the path, any terminating `/` of the path removed —
/// `https://api.example/orders` → `https://api.example/.well-known/oauth-protected-resource/orders`;
/// `https://api.example/` → `https://api.example/.well-known/oauth-protected-resource`.
///
/// Errors: an identifier that is not an absolute `https` URL (RFC 9728 §2; `http` is accepted
/// for a loopback host only, for development), or one with a fragment, a query, credentials, or
/// a character that cannot stand inside a quoted challenge parameter.
pub fn metadata_url(resource: &str) -> Result<String, InvalidResource> {
    let refuse = |reason| InvalidResource {
        identifier: resource.to_owned(),
        reason,
    };
    let url = url::Url::parse(resource).map_err(|_| refuse("not an absolute URL"))?;
    let loopback = match url.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => return Err(refuse("no host")),
    };
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        _ => return Err(refuse("not https (http only on a loopback host)")),
    }
    if resource.contains('#') {
        return Err(refuse("it has a fragment (RFC 9728 §2)"));
    }
    if url.query().is_some() {
        return Err(refuse("it has a query (RFC 9728 §2 advises against one)"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(refuse("it has credentials"));
    }
    let origin = url.origin().ascii_serialization();
    let path = url.path().trim_end_matches('/');
    let location = format!("{origin}{WELL_KNOWN}{path}");
    if location.contains(['"', '\\']) || location.chars().any(|c| c.is_control()) {
        return Err(refuse("it cannot be quoted in a challenge"));
    }
    Ok(location)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_well_known_segment_goes_between_host_and_path() {
        for (resource, expected) in [
            (
                "https://api.example",
                "https://api.example/.well-known/oauth-protected-resource",
            ),
            (
                "https://api.example/",
                "https://api.example/.well-known/oauth-protected-resource",
            ),
            (
                "https://api.example/orders",
                "https://api.example/.well-known/oauth-protected-resource/orders",
            ),
            (
                "https://api.example:8443/v1/orders/",
                "https://api.example:8443/.well-known/oauth-protected-resource/v1/orders",
            ),
            (
                "http://127.0.0.1:8081/mcp",
                "http://127.0.0.1:8081/.well-known/oauth-protected-resource/mcp",
            ),
            (
                "http://[::1]:9/",
                "http://[::1]:9/.well-known/oauth-protected-resource",
            ),
        ] {
            assert_eq!(
                metadata_url(resource).as_deref(),
                Ok(expected),
                "{resource}"
            );
        }
    }

    #[test]
    fn identifiers_that_cannot_have_metadata_are_refused() {
        for bad in [
            "",
            "orders",
            "/orders",
            "http://api.example/orders",
            "ftp://api.example/",
            "https://api.example/#x",
            "https://api.example/?a=b",
            "https://user:pw@api.example/",
            "urn:example:orders",
        ] {
            assert!(metadata_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_document_leaves_unset_fields_out() {
        let metadata = ProtectedResourceMetadata::new("https://api.example", "https://id.example");
        assert_eq!(
            serde_json::to_value(&metadata).unwrap(),
            serde_json::json!({
                "resource": "https://api.example",
                "authorization_servers": ["https://id.example"],
                "bearer_methods_supported": ["header"],
            })
        );
    }
}
