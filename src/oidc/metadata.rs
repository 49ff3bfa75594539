//! Discovery metadata (OpenID Connect Discovery 1.0 §3, RFC 8414 §2). It lists only what is
//! implemented.

use serde::Serialize;

use super::client_auth::ASSERTION_ALGS;
use super::clients::{KNOWN_SCOPES, RequestObjectAlg};
use super::issuer::Issuer;
use crate::keys::IdTokenAlg;

/// The provider metadata document.
#[derive(Debug, Serialize)]
pub struct ProviderMetadata {
    /// The issuer identifier, byte-identical to the `iss` of every token.
    pub issuer: String,
    /// Where the public signing keys are published.
    pub jwks_uri: String,
    /// The authorization endpoint.
    pub authorization_endpoint: String,
    /// The token endpoint.
    pub token_endpoint: String,
    /// The userinfo endpoint.
    pub userinfo_endpoint: String,
    /// RFC 7009.
    pub revocation_endpoint: String,
    /// RFC 7662.
    pub introspection_endpoint: String,
    /// RP-Initiated Logout 1.0.
    pub end_session_endpoint: String,
    /// RFC 8628 §4: where devices ask for a device and a user code.
    pub device_authorization_endpoint: String,
    /// Scopes.
    pub scopes_supported: Vec<&'static str>,
    /// `code` only.
    pub response_types_supported: Vec<&'static str>,
    /// `query` (the default) and `form_post`.
    pub response_modes_supported: Vec<&'static str>,
    /// Grants.
    pub grant_types_supported: Vec<&'static str>,
    /// `public` and `pairwise` (OIDC Core §8; [`crate::oidc::subjects`]).
    pub subject_types_supported: Vec<&'static str>,
    /// ID-token algorithms a client may register: RS256, ES256 and `none` (unsigned ID tokens,
    /// OIDC Registration §2: `code` is the only response type; see [`IdTokenAlg`]).
    pub id_token_signing_alg_values_supported: Vec<&'static str>,
    /// Algorithms of signed userinfo responses (OIDC Discovery §3, OIDC Core §5.3.2), for
    /// clients that register `userinfo_signed_response_alg`.
    pub userinfo_signing_alg_values_supported: Vec<&'static str>,
    /// Client authentication at the token endpoint.
    pub token_endpoint_auth_methods_supported: Vec<&'static str>,
    /// Algorithms of `private_key_jwt` client assertions (RFC 8414 §2).
    pub token_endpoint_auth_signing_alg_values_supported: Vec<&'static str>,
    /// Client authentication at the revocation endpoint.
    pub revocation_endpoint_auth_methods_supported: Vec<&'static str>,
    /// Algorithms of client assertions at the revocation endpoint.
    pub revocation_endpoint_auth_signing_alg_values_supported: Vec<&'static str>,
    /// Client authentication at the introspection endpoint.
    pub introspection_endpoint_auth_methods_supported: Vec<&'static str>,
    /// Algorithms of client assertions at the introspection endpoint.
    pub introspection_endpoint_auth_signing_alg_values_supported: Vec<&'static str>,
    /// `S256` only.
    pub code_challenge_methods_supported: Vec<&'static str>,
    /// Claims.
    pub claims_supported: Vec<&'static str>,
    /// `none`, `login`, `consent`.
    pub prompt_values_supported: Vec<&'static str>,
    /// RFC 9207.
    pub authorization_response_iss_parameter_supported: bool,
    /// Request objects by value (`request`, OIDC Core §6.1).
    pub request_parameter_supported: bool,
    /// Request objects by reference (`request_uri`, OIDC Core §6.2).
    pub request_uri_parameter_supported: bool,
    /// A `request_uri` must be one the client registered (OIDC Discovery §3): no other URL is
    /// ever fetched (AUTHZ-09).
    pub require_request_uri_registration: bool,
    /// Algorithms of request objects: `none` (unsigned), RS256, PS256, ES256.
    pub request_object_signing_alg_values_supported: Vec<&'static str>,
    /// The `claims` parameter (OIDC Core §5.5) is supported.
    pub claims_parameter_supported: bool,
    /// The authentication context classes (`acr`) it can satisfy: a password sign-in, and one
    /// with a second factor.
    pub acr_values_supported: Vec<&'static str>,
    /// A `client_id` may be the URL of a client ID metadata document
    /// (draft-ietf-oauth-client-id-metadata-document §5); published only when `true`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub client_id_metadata_document_supported: bool,
    /// The RFC 7591 registration endpoint, when dynamic registration is on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registration_endpoint: Option<String>,
}

impl ProviderMetadata {
    /// The metadata of an issuer.
    pub fn for_issuer(issuer: &Issuer) -> Self {
        let at = |path: &str| format!("{issuer}{path}");
        Self {
            issuer: issuer.as_str().to_owned(),
            jwks_uri: at("/.well-known/jwks.json"),
            authorization_endpoint: at("/authorize"),
            token_endpoint: at("/token"),
            userinfo_endpoint: at("/userinfo"),
            revocation_endpoint: at("/revoke"),
            introspection_endpoint: at("/introspect"),
            end_session_endpoint: at("/logout"),
            device_authorization_endpoint: at("/device_authorization"),
            scopes_supported: KNOWN_SCOPES.to_vec(),
            response_types_supported: vec!["code"],
            response_modes_supported: vec!["query", "form_post"],
            grant_types_supported: vec![
                "authorization_code",
                "refresh_token",
                "client_credentials",
                super::clients::DEVICE_CODE_GRANT,
                super::clients::TOKEN_EXCHANGE_GRANT,
            ],
            subject_types_supported: vec!["public", "pairwise"],
            id_token_signing_alg_values_supported: IdTokenAlg::ALL
                .iter()
                .map(|alg| alg.as_str())
                .collect(),
            userinfo_signing_alg_values_supported: vec!["RS256", "ES256"],
            token_endpoint_auth_methods_supported: vec![
                "client_secret_basic",
                "client_secret_post",
                "private_key_jwt",
                "none",
            ],
            token_endpoint_auth_signing_alg_values_supported: ASSERTION_ALGS.to_vec(),
            revocation_endpoint_auth_methods_supported: vec![
                "client_secret_basic",
                "client_secret_post",
                "private_key_jwt",
                "none",
            ],
            revocation_endpoint_auth_signing_alg_values_supported: ASSERTION_ALGS.to_vec(),
            introspection_endpoint_auth_methods_supported: vec![
                "client_secret_basic",
                "client_secret_post",
                "private_key_jwt",
            ],
            introspection_endpoint_auth_signing_alg_values_supported: ASSERTION_ALGS.to_vec(),
            code_challenge_methods_supported: vec!["S256"],
            claims_supported: [
                "iss",
                "sub",
                "aud",
                "exp",
                "iat",
                "auth_time",
                "nonce",
                "at_hash",
                "sid",
                "azp",
                "acr",
                "amr",
            ]
            .into_iter()
            .chain(super::standard_claims::user_claim_names())
            .collect(),
            prompt_values_supported: vec!["none", "login", "consent"],
            authorization_response_iss_parameter_supported: true,
            request_parameter_supported: true,
            request_uri_parameter_supported: true,
            require_request_uri_registration: true,
            request_object_signing_alg_values_supported: RequestObjectAlg::ALL
                .iter()
                .map(|alg| alg.as_str())
                .collect(),
            claims_parameter_supported: true,
            acr_values_supported: vec![super::tokens::ACR_PASSWORD, super::tokens::ACR_MFA],
            client_id_metadata_document_supported: false,
            registration_endpoint: None,
        }
    }

    /// The metadata with `registration_endpoint` (RFC 8414 §2, OIDC Discovery §3) when dynamic
    /// registration is `enabled`.
    pub fn with_registration(mut self, enabled: bool) -> Self {
        self.registration_endpoint = enabled.then(|| format!("{}/register", self.issuer));
        self
    }
}
