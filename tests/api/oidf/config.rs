//! `oidcc-config-certification-test-plan` (oidf-spec.md §2): `oidcc-discovery-endpoint-verification`,
//! against a server whose issuer is `https://` (the suite's https rows cannot pass on a plain-http
//! issuer; the document is built from the issuer, so it is fetched over the test listener). The
//! dynamic plan runs the same module in its `dynamic_client` variant ([`endpoint_verification`]).

use serde_json::Value;

use super::checks;
use crate::helpers::{Backend, TestApp, TestEnv};
use crate::oidf_modules;

/// The issuer of the https deployment.
pub const HTTPS_ISSUER: &str = "https://op.example.test";

/// A server with an `https://` issuer, its environment, and its discovery response.
pub async fn https_op(backend: Backend) -> (TestEnv, TestApp, reqwest::Response) {
    let env = TestEnv::new(backend).await;
    let app = env
        .spawn_with(portcullis::config::SettingsArgs {
            issuer: Some(HTTPS_ISSUER.into()),
            ..env.args()
        })
        .await;
    let response = app.get("/.well-known/openid-configuration").await;
    (env, app, response)
}

/// The discovery URL the suite is configured with, for `issuer`.
pub fn discovery_url(issuer: &str) -> String {
    format!("{issuer}/.well-known/openid-configuration")
}

/// How the plan's clients are registered (the suite's `ClientRegistration` variant): two rows of
/// the module differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Registration {
    /// `static_client` (the config plan).
    Static,
    /// `dynamic_client` (the dynamic plan, [`super::dynamic`]).
    Dynamic,
}

/// An https URL with a host (`CheckDiscEndpoint…Endpoint`, `CheckJwksUri`).
pub fn https_url(value: &Value, what: &str) {
    let text = value.as_str().unwrap_or_else(|| panic!("{what}: a string"));
    let url = url::Url::parse(text).unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(url.scheme(), "https", "{what}: https");
    assert!(url.host_str().is_some(), "{what}: a host");
}

/// `CheckDiscEndpointAllEndpointsAreHttps`: every member named `…_endpoint` is an https URL.
pub fn all_endpoints_https(doc: &Value) {
    for (name, value) in doc.as_object().expect("an object") {
        if name.ends_with("_endpoint") {
            https_url(
                value,
                &format!("CheckDiscEndpointAllEndpointsAreHttps: {name}"),
            );
        }
    }
}

/// The type of a member in `json-schemas/rfc8414/oauth_authorization_server_metadata.json`.
enum Kind {
    Uri,
    Str,
    Strings,
    Bool,
    Object,
    Any,
}

/// The members of that schema (`additionalProperties: false`).
const SCHEMA: [(&str, Kind); 106] = [
    ("issuer", Kind::Uri),
    ("authorization_endpoint", Kind::Uri),
    ("token_endpoint", Kind::Uri),
    ("jwks_uri", Kind::Uri),
    ("registration_endpoint", Kind::Uri),
    ("scopes_supported", Kind::Strings),
    ("response_types_supported", Kind::Strings),
    ("response_modes_supported", Kind::Strings),
    ("grant_types_supported", Kind::Strings),
    ("token_endpoint_auth_methods_supported", Kind::Strings),
    (
        "token_endpoint_auth_signing_alg_values_supported",
        Kind::Strings,
    ),
    ("service_documentation", Kind::Uri),
    ("ui_locales_supported", Kind::Strings),
    ("op_policy_uri", Kind::Uri),
    ("op_tos_uri", Kind::Uri),
    ("revocation_endpoint", Kind::Uri),
    ("revocation_endpoint_auth_methods_supported", Kind::Strings),
    (
        "revocation_endpoint_auth_signing_alg_values_supported",
        Kind::Strings,
    ),
    ("global_token_revocation_endpoint", Kind::Uri),
    (
        "global_token_revocation_endpoint_auth_methods_supported",
        Kind::Strings,
    ),
    ("introspection_endpoint", Kind::Uri),
    (
        "introspection_endpoint_auth_methods_supported",
        Kind::Strings,
    ),
    (
        "introspection_endpoint_auth_signing_alg_values_supported",
        Kind::Strings,
    ),
    ("code_challenge_methods_supported", Kind::Strings),
    ("userinfo_endpoint", Kind::Uri),
    ("end_session_endpoint", Kind::Uri),
    ("check_session_iframe", Kind::Uri),
    ("subject_types_supported", Kind::Strings),
    ("id_token_signing_alg_values_supported", Kind::Strings),
    ("id_token_encryption_alg_values_supported", Kind::Strings),
    ("id_token_encryption_enc_values_supported", Kind::Strings),
    ("userinfo_signing_alg_values_supported", Kind::Strings),
    ("userinfo_encryption_alg_values_supported", Kind::Strings),
    ("userinfo_encryption_enc_values_supported", Kind::Strings),
    ("request_object_signing_alg_values_supported", Kind::Strings),
    (
        "request_object_encryption_alg_values_supported",
        Kind::Strings,
    ),
    (
        "request_object_encryption_enc_values_supported",
        Kind::Strings,
    ),
    ("display_values_supported", Kind::Strings),
    ("claim_types_supported", Kind::Strings),
    ("claims_supported", Kind::Strings),
    ("claims_locales_supported", Kind::Strings),
    ("claims_parameter_supported", Kind::Bool),
    ("request_parameter_supported", Kind::Bool),
    ("request_uri_parameter_supported", Kind::Bool),
    ("require_request_uri_registration", Kind::Bool),
    ("acr_values_supported", Kind::Strings),
    ("frontchannel_logout_supported", Kind::Bool),
    ("frontchannel_logout_session_supported", Kind::Bool),
    ("backchannel_logout_supported", Kind::Bool),
    ("backchannel_logout_session_supported", Kind::Bool),
    ("dpop_signing_alg_values_supported", Kind::Strings),
    ("pushed_authorization_request_endpoint", Kind::Uri),
    ("require_pushed_authorization_requests", Kind::Bool),
    ("authorization_details_types_supported", Kind::Strings),
    ("authorization_challenge_endpoint", Kind::Uri),
    ("backchannel_authentication_endpoint", Kind::Uri),
    ("backchannel_token_delivery_modes_supported", Kind::Strings),
    (
        "backchannel_authentication_request_signing_alg_values_supported",
        Kind::Strings,
    ),
    ("backchannel_user_code_parameter_supported", Kind::Bool),
    ("authorization_signing_alg_values_supported", Kind::Strings),
    (
        "authorization_encryption_alg_values_supported",
        Kind::Strings,
    ),
    (
        "authorization_encryption_enc_values_supported",
        Kind::Strings,
    ),
    (
        "client_attestation_signing_alg_values_supported",
        Kind::Strings,
    ),
    (
        "client_attestation_pop_signing_alg_values_supported",
        Kind::Strings,
    ),
    ("challenge_endpoint", Kind::Uri),
    ("mtls_endpoint_aliases", Kind::Object),
    ("tls_client_certificate_bound_access_tokens", Kind::Bool),
    ("signed_metadata", Kind::Str),
    (
        "pre-authorized_grant_anonymous_access_supported",
        Kind::Bool,
    ),
    ("authorization_response_iss_parameter_supported", Kind::Bool),
    ("device_authorization_endpoint", Kind::Uri),
    ("require_signed_request_object", Kind::Bool),
    ("introspection_signing_alg_values_supported", Kind::Strings),
    (
        "introspection_encryption_alg_values_supported",
        Kind::Strings,
    ),
    (
        "introspection_encryption_enc_values_supported",
        Kind::Strings,
    ),
    ("prompt_values_supported", Kind::Strings),
    ("signed_jwks_uri", Kind::Uri),
    ("jwks", Kind::Object),
    ("organization_name", Kind::Str),
    ("organization_uri", Kind::Uri),
    ("display_name", Kind::Str),
    ("description", Kind::Str),
    ("keywords", Kind::Strings),
    ("contacts", Kind::Strings),
    ("logo_uri", Kind::Uri),
    ("information_uri", Kind::Uri),
    ("federation_registration_endpoint", Kind::Uri),
    ("client_registration_types_supported", Kind::Strings),
    ("client_id_metadata_document_supported", Kind::Bool),
    ("trust_frameworks_supported", Kind::Strings),
    ("evidence_supported", Kind::Strings),
    ("documents_supported", Kind::Strings),
    ("documents_check_methods_supported", Kind::Strings),
    ("documents_methods_supported", Kind::Strings),
    ("electronic_records_supported", Kind::Strings),
    ("attachments_supported", Kind::Strings),
    ("claims_in_verified_claims_supported", Kind::Strings),
    ("transformed_claims_functions_supported", Kind::Strings),
    ("transformed_claims_predefined", Kind::Any),
    ("grant_management_endpoint", Kind::Uri),
    ("grant_management_actions_supported", Kind::Strings),
    ("grant_management_action_required", Kind::Bool),
    ("request_authentication_methods_supported", Kind::Any),
    (
        "request_authentication_signing_alg_values_supported",
        Kind::Strings,
    ),
    ("protected_resources", Kind::Strings),
    ("status_list_aggregation_endpoint", Kind::Uri),
];

/// RFC 6749 §3.3 scope-token: `%x21 / %x23-5B / %x5D-7E`, one or more.
fn scope_token(scope: &str) -> bool {
    !scope.is_empty()
        && scope
            .chars()
            .all(|c| matches!(c, '\x21' | '\x23'..='\x5B' | '\x5D'..='\x7E'))
}

/// `OIDCCDiscoveryEndpointVerification` (§2.1) of the config plan.
async fn oidcc_discovery_endpoint_verification(backend: Backend) {
    let (_env, app, response) = https_op(backend).await;
    endpoint_verification(&app, HTTPS_ISSUER, response, Registration::Static).await;
}

/// `OIDCCDiscoveryEndpointVerification` (§2.1): every row, on the discovery `response` of `app`,
/// whose issuer is the https URL `issuer`, in the `registration` variant. Two rows are the
/// dynamic variant's own (`OIDCCCheckDiscEndpointResponseTypesSupportedDynamic`,
/// `OIDCCCheckDiscEndpointGrantTypesSupportedDynamic`); their implicit-flow parts are not
/// applicable (see [`super::dynamic`]).
pub async fn endpoint_verification(
    app: &TestApp,
    issuer: &str,
    response: reqwest::Response,
    registration: Registration,
) {
    // 1–3: GetDynamicServerConfiguration, …StatusCodeIs200, …ReturnedJsonContentType.
    assert_eq!(
        response.status(),
        200,
        "EnsureDiscoveryEndpointResponseStatusCodeIs200"
    );
    let media = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        media.split(';').next().unwrap().trim(),
        "application/json",
        "CheckDiscoveryEndpointReturnedJsonContentType"
    );
    let doc: Value = response
        .json()
        .await
        .expect("GetDynamicServerConfiguration: JSON");
    let object = doc
        .as_object()
        .expect("GetDynamicServerConfiguration: an object");
    // 4: OIDCCCheckDiscEndpointResponseTypesSupported (dynamic: …SupportedDynamic, below).
    let known = [
        "code",
        "code id_token",
        "id_token",
        "token id_token",
        "code id_token token",
        "code token",
    ];
    let normalise = |t: &str| {
        let mut parts: Vec<&str> = t.split(' ').collect();
        parts.sort_unstable();
        parts.join(" ")
    };
    assert!(
        doc["response_types_supported"]
            .as_array()
            .is_some_and(|types| types.iter().any(|t| {
                known
                    .iter()
                    .any(|k| normalise(k) == normalise(t.as_str().unwrap_or_default()))
            })),
        "OIDCCCheckDiscEndpointResponseTypesSupported"
    );
    if registration == Registration::Dynamic {
        super::dynamic::response_types_supported_dynamic(&doc);
    }
    // 5: CheckDiscEndpointDiscoveryUrl.
    let discovery = discovery_url(issuer);
    assert!(
        discovery.starts_with("https://")
            && discovery.ends_with("/.well-known/openid-configuration")
    );
    // 6: CheckDiscEndpointIssuer; 7: CheckDiscEndpointIssuerIsValidUrl.
    let issuer = doc["issuer"].as_str().expect("issuer");
    assert_eq!(
        issuer.trim_end_matches('/'),
        discovery
            .trim_end_matches("/.well-known/openid-configuration")
            .trim_end_matches('/'),
        "CheckDiscEndpointIssuer"
    );
    let parsed = url::Url::parse(issuer).expect("CheckDiscEndpointIssuerIsValidUrl");
    assert_eq!(
        parsed.scheme(),
        "https",
        "CheckDiscEndpointIssuerIsValidUrl: https"
    );
    assert!(parsed.host_str().is_some() && parsed.query().is_none() && parsed.fragment().is_none());
    assert!(parsed.username().is_empty() && parsed.password().is_none());
    // 8: ValidateServerMetadataAgainstSchema; 9: CheckForUnexpectedParametersInServerMetadata.
    for (name, value) in object {
        let kind = SCHEMA
            .iter()
            .find(|(member, _)| member == name)
            .map(|(_, kind)| kind)
            .unwrap_or_else(|| panic!("CheckForUnexpectedParametersInServerMetadata: {name}"));
        let typed = match kind {
            Kind::Uri => value.as_str().is_some_and(|v| url::Url::parse(v).is_ok()),
            Kind::Str => value.is_string(),
            Kind::Strings => value
                .as_array()
                .is_some_and(|a| a.iter().all(Value::is_string)),
            Kind::Bool => value.is_boolean(),
            Kind::Object => value.is_object(),
            Kind::Any => true,
        };
        assert!(
            typed,
            "ValidateServerMetadataAgainstSchema: {name} = {value}"
        );
    }
    // 10: CheckDiscEndpointSubjectTypesSupported.
    let subjects = &doc["subject_types_supported"];
    assert!(checks::has(subjects, "public") || checks::has(subjects, "pairwise"));
    // 11: OIDCCCheckDiscEndpointIdTokenSigningAlgValuesSupported.
    assert!(checks::has(
        &doc["id_token_signing_alg_values_supported"],
        "RS256"
    ));
    // 12: OIDCCCheckDiscEndpointUserinfoSigningAlgValuesSupported (if present).
    if let Some(algs) = object.get("userinfo_signing_alg_values_supported") {
        assert!(algs.is_array());
    }
    // 13, 14, 15, 16: the endpoints and jwks_uri are https URLs; userinfo present (WARNING).
    for member in [
        "authorization_endpoint",
        "token_endpoint",
        "userinfo_endpoint",
        "jwks_uri",
    ] {
        https_url(&doc[member], member);
    }
    if let Some(registration) = object.get("registration_endpoint") {
        https_url(registration, "CheckDiscEndpointRegistrationEndpoint");
    }
    // 17: FetchServerKeys + ValidateJwksSequence (no kid checks in this module). The jwks_uri is
    // the issuer's; the same path on the listener.
    let jwks_path = doc["jwks_uri"]
        .as_str()
        .unwrap()
        .trim_start_matches(issuer)
        .to_owned();
    let jwks = app.get(&jwks_path).await;
    assert_eq!(jwks.status(), 200, "FetchServerKeys");
    let jwks: Value = jwks.json().await.expect("FetchServerKeys: JSON");
    checks::server_jwks(&jwks, false);
    // 20: CheckDiscEndpointRequestObjectSigningAlgValuesSupportedIncludesRS256 (if present).
    if let Some(algs) = object.get("request_object_signing_alg_values_supported") {
        assert!(
            checks::has(algs, "RS256"),
            "…RequestObjectSigningAlgValuesSupportedIncludesRS256"
        );
    }
    // 22: OIDCCCheckDiscEndpointClaimsSupported (WARNING).
    assert!(
        doc["claims_supported"].is_array(),
        "OIDCCCheckDiscEndpointClaimsSupported"
    );
    // 23: OIDCCCheckDiscEndpointGrantTypesSupported (dynamic: …SupportedDynamic).
    if let Some(grants) = object.get("grant_types_supported") {
        assert!(grants.as_array().is_some_and(|g| !g.is_empty()));
        if registration == Registration::Dynamic {
            super::dynamic::grant_types_supported_dynamic(grants);
        }
    }
    // 24, 25: CheckDiscEndpointScopesSupportedContainsOpenId (WARNING if absent), …Syntax.
    let scopes = doc["scopes_supported"]
        .as_array()
        .expect("scopes_supported (WARNING if absent)");
    assert!(checks::has(&doc["scopes_supported"], "openid"));
    for scope in scopes {
        assert!(
            scope_token(scope.as_str().unwrap_or_default()),
            "scope-token {scope}"
        );
    }
    // 26, 27: CheckDiscEndpointLocalesSyntax / …CanonicalCasing (absent here: nothing to check;
    // a value would have to be a registered BCP 47 tag in canonical case).
    for member in ["ui_locales_supported", "claims_locales_supported"] {
        if let Some(locales) = object.get(member) {
            for locale in locales.as_array().expect("an array") {
                let tag = locale.as_str().expect("a string");
                let canonical: Vec<String> = tag
                    .split('-')
                    .enumerate()
                    .map(|(i, part)| match (i, part.len()) {
                        (0, _) => part.to_ascii_lowercase(),
                        (_, 2) => part.to_ascii_uppercase(),
                        (_, 4) => {
                            let mut c = part.to_ascii_lowercase();
                            c[..1].make_ascii_uppercase();
                            c
                        }
                        _ => part.to_ascii_lowercase(),
                    })
                    .collect();
                assert_eq!(
                    tag,
                    canonical.join("-"),
                    "CheckDiscEndpointLocalesCanonicalCasing"
                );
            }
        }
    }
    // 28: CheckDiscEndpointAllEndpointsAreHttps.
    all_endpoints_https(&doc);
    // 29: EnsureServerConfigurationCodeChallengeMethodsSupportedIsAnArray.
    if let Some(methods) = object.get("code_challenge_methods_supported") {
        let methods = methods.as_array().expect("an array");
        assert!(
            methods.is_empty() || methods.iter().any(|m| m == "S256" || m == "plain"),
            "EnsureServerConfigurationCodeChallengeMethodsSupportedIsAnArray"
        );
    }
}

oidf_modules!(oidcc_discovery_endpoint_verification);
