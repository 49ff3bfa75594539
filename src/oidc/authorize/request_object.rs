//! Request objects (OpenID Connect Core 1.0 §6; RFC 9101 where it does not conflict with
//! Core): the authorization request as a JWT, by value (`request`, §6.1) or by reference
//! (`request_uri`, §6.2). [`resolve`] finds the object, fetches a reference — only a URL the
//! client registered, compared as an exact string, ever (AUTHZ-09, REQOBJ-01; Keycloak
//! CVE-2020-10770) — checks it ([`RequestObjects::parameters`]) and answers the parameters it
//! stands for: its members supersede those sent outside it (Core §6.3.3), and the result goes
//! through every usual check ([`parse`](super::request::parse)), the redirect URI first.
//!
//! What is checked: a JWS of three segments (no JWE), header and payload JSON objects with
//! unique members at every depth (JWT-10); no header member that brings a key or processing
//! rules (`jwk`, `jku`, `x5u`, `x5c`, `crit`…, JWT-05); `typ`, when present, `JWT` or
//! `oauth-authz-req+jwt`; `alg` exactly `none`, `RS256`, `PS256` or `ES256` and the client's
//! registered `request_object_signing_alg` when it has one (`none` only from a client that
//! registered none or nothing, REQOBJ-02); a signature verified with the client's own keys —
//! its `jwks`, or its `jwks_uri` through the cached SSRF-safe fetch — by `kid`, or without one
//! every key of the algorithm's type, the algorithm never the header's alone (JWT-03, JWT-06,
//! REQOBJ-03); `iss` the client id and `aud` naming the issuer when present, `exp` not past and
//! `nbf` not ahead (60 s leeway) when present (REQOBJ-04); `exp`, `jti` and `typ` are not
//! required (the OpenID certification objects carry none of them). An inner `client_id` or
//! `response_type` must be the outer one (REQOBJ-05); `request` and `request_uri` inside are
//! refused. Failures are `invalid_request_object`, or `invalid_request_uri` for a reference
//! that is not registered or cannot be fetched; both reach the client only at a redirect URI
//! that is verified (registered), else the error page.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use serde_json::{Map, Value};

use super::checks;
use super::request::{AuthorizationError, Rejection, reject_request_object};
use crate::oidc::client_auth::{ClientKeys, RemoteKeys};
use crate::oidc::clients::{Client, RequestObjectAlg};
use crate::oidc::params::Params;
use crate::verify::FetchError;
use crate::verify::fetch::SafeFetcher;
use crate::verify::strict_json;

/// Largest request object, by value or fetched, in bytes (a request object holds a few
/// parameters; the `claims` parameter is itself bounded to less).
pub const MAX_REQUEST_OBJECT_LEN: usize = 16 * 1024;

/// The content types a `request_uri` may answer (RFC 9101 §10.2 registers the first; OIDC
/// Core §6.2 examples use the second). Anything else is refused.
pub const REQUEST_OBJECT_CONTENT_TYPES: [&str; 2] =
    ["application/oauth-authz-req+jwt", "application/jwt"];

/// Clock skew allowed on `exp` and `nbf`, in seconds.
pub const LEEWAY_SECS: i64 = 60;

/// Header members refused rather than ignored: keys brought by the token (RFC 8725 §3.10) and
/// processing rules we do not implement (RFC 7515 §4.1.11 `crit`, RFC 7797 `b64`, JWE members).
const FORBIDDEN_HEADER: [&str; 8] = ["jwk", "jku", "x5u", "x5c", "crit", "b64", "zip", "enc"];

/// Claims about the object itself (RFC 7519 §4.1), never authorization parameters.
const OBJECT_CLAIMS: [&str; 7] = ["iss", "aud", "exp", "nbf", "iat", "jti", "sub"];

/// The authorization parameters this server reads: inside an object each must be a string (a
/// number for `max_age`, an object for `claims`, a string or an array of strings for
/// `resource`), or the object is refused.
const PARAMETERS: [&str; 19] = [
    "client_id",
    "response_type",
    "redirect_uri",
    "scope",
    "state",
    "nonce",
    "response_mode",
    "code_challenge",
    "code_challenge_method",
    "prompt",
    "max_age",
    "login_hint",
    "acr_values",
    "claims",
    "ui_locales",
    "claims_locales",
    "display",
    "id_token_hint",
    "resource",
];

fn invalid_object(description: &'static str) -> AuthorizationError {
    AuthorizationError::new("invalid_request_object", description)
}

fn invalid_uri(description: &'static str) -> AuthorizationError {
    AuthorizationError::new("invalid_request_uri", description)
}

/// Reads request objects: fetches references through the SSRF-safe fetcher and a client's
/// remote keys through their cache.
pub struct RequestObjects {
    fetcher: Arc<SafeFetcher>,
    remote_keys: Arc<RemoteKeys>,
}

impl RequestObjects {
    /// Request objects fetched with `fetcher`, verified with keys from `remote_keys` for
    /// clients registered with a `jwks_uri`.
    pub fn new(fetcher: Arc<SafeFetcher>, remote_keys: Arc<RemoteKeys>) -> Self {
        Self {
            fetcher,
            remote_keys,
        }
    }

    /// The parameters of `params` (of `client`, already found by its outer `client_id`) with
    /// its request object applied: `None` when it has none. `issuer` is the audience an `aud`
    /// must name; `now` is seconds since the epoch. Errors: `invalid_request` for both
    /// `request` and `request_uri`; `invalid_request_uri` for a reference that is not
    /// registered (nothing is fetched) or cannot be fetched; `invalid_request_object` for an
    /// object refused by a rule of the module documentation.
    pub async fn parameters(
        &self,
        params: &Params,
        client: &Client,
        issuer: &str,
        now: i64,
    ) -> Result<Option<Params>, AuthorizationError> {
        let (jwt, carrier) = match (params.get("request"), params.get("request_uri")) {
            (None, None) => return Ok(None),
            (Some(_), Some(_)) => {
                return Err(AuthorizationError::new(
                    "invalid_request",
                    "Send the request object by value (request) or by reference (request_uri), not both.",
                ));
            }
            (Some(jwt), None) => (jwt.to_owned(), "request"),
            (None, Some(uri)) => (self.fetch(client, uri).await?, "request_uri"),
        };
        let object = read(&jwt).inspect_err(|error| refused(client, error))?;
        let algorithm =
            signature_algorithm(&object.alg, client).inspect_err(|error| refused(client, error))?;
        let fetched;
        let keys = match (algorithm, client.keys(), client.jwks_uri.as_deref()) {
            (None, _, _) => None,
            (Some(_), Some(keys), _) => Some(keys),
            (Some(_), None, Some(jwks_uri)) => {
                fetched = self
                    .remote_keys
                    .keys(jwks_uri, object.kid.as_deref())
                    .await
                    .map_err(|error| {
                        tracing::warn!(client_id = %client.client_id, %error, "the client's jwks_uri could not be used for its request object");
                        invalid_object("The client's keys could not be fetched from its jwks_uri.")
                    })?;
                Some(&*fetched)
            }
            (Some(_), None, None) => None,
        };
        let checked = verify_signature(&object, algorithm, keys)
            .and_then(|()| check_claims(&object.claims, client, params, issuer, now))
            .and_then(|()| parameters_of(object.claims))
            .inspect_err(|error| refused(client, error))?;
        Ok(Some(params.superseded_by(
            checked.values,
            checked.resources,
            &[carrier],
        )))
    }

    /// The request object at `uri`, if the client registered it (compared as exact strings,
    /// fragment included; AUTHZ-09: no other URL is ever fetched), fetched without its fragment
    /// through the SSRF-safe fetcher: at most [`MAX_REQUEST_OBJECT_LEN`] bytes of one of
    /// [`REQUEST_OBJECT_CONTENT_TYPES`], within the fetcher's time limits.
    async fn fetch(&self, client: &Client, uri: &str) -> Result<String, AuthorizationError> {
        if !client
            .request_uris
            .iter()
            .any(|registered| registered == uri)
        {
            tracing::warn!(client_id = %client.client_id, "request_uri is not registered: not fetched");
            return Err(invalid_uri(
                "The request_uri is not one this client registered.",
            ));
        }
        let without_fragment = uri.split_once('#').map_or(uri, |(base, _)| base);
        let body = self
            .fetcher
            .get_media(
                without_fragment,
                &REQUEST_OBJECT_CONTENT_TYPES.join(", "),
                MAX_REQUEST_OBJECT_LEN,
                is_request_object_type,
            )
            .await
            .map(|media| media.body)
            .map_err(|error| {
                tracing::warn!(client_id = %client.client_id, %error, "request_uri fetch failed");
                match error {
                    FetchError::Document { .. } => invalid_uri(
                        "The request_uri did not answer a request object (Content-Type application/oauth-authz-req+jwt or application/jwt).",
                    ),
                    FetchError::Refused { .. } => invalid_uri(
                        "The request_uri may not be fetched (its address is not public, or it redirected).",
                    ),
                    FetchError::Http { .. } => invalid_uri(
                        "The request_uri could not be fetched (network error, timeout, error status, or larger than 16 KiB).",
                    ),
                }
            })?;
        let text = String::from_utf8(body)
            .map_err(|_| invalid_object("The request object fetched is not text."))?;
        Ok(text.trim().to_owned())
    }
}

/// Whether `content_type` (a header's value, parameters aside, case-insensitively) is one of
/// [`REQUEST_OBJECT_CONTENT_TYPES`].
fn is_request_object_type(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or("").trim();
    REQUEST_OBJECT_CONTENT_TYPES
        .iter()
        .any(|accepted| accepted.eq_ignore_ascii_case(essence))
}

/// Logs a refused request object (the reason only; never the object).
fn refused(client: &Client, error: &AuthorizationError) {
    tracing::warn!(client_id = %client.client_id, error = error.code, reason = error.description, "request object refused");
}

/// The parameters `params` stand for once their request object, if any, is applied (see the
/// module documentation). The client is found by the outer `client_id` (an unknown one is the
/// error page, as for any request); an error of the object reaches the client as
/// [`reject_request_object`] decides: at the outer request's verified redirect URI, else on
/// the error page.
pub async fn resolve(
    params: Params,
    find_client: impl FnOnce(&str) -> Option<Arc<Client>>,
    objects: &RequestObjects,
    issuer: &str,
    now: i64,
) -> Result<Params, Rejection> {
    if !params.has("request") && !params.has("request_uri") {
        return Ok(params);
    }
    let client = checks::check_client(&params, find_client).map_err(Rejection::Page)?;
    match objects.parameters(&params, &client, issuer, now).await {
        Ok(Some(resolved)) => Ok(resolved),
        Ok(None) => Ok(params),
        Err(error) => Err(reject_request_object(&params, &client, error)),
    }
}

/// A request object read but not verified.
struct Unverified<'j> {
    /// `alg`, as written.
    alg: String,
    /// `kid`, if any.
    kid: Option<String>,
    /// `header.payload`, what the signature covers.
    signing_input: &'j str,
    /// The signature segment (base64url).
    signature: &'j str,
    /// The payload.
    claims: Map<String, Value>,
}

/// Reads `jwt` as a compact JWS: three segments, a header and a payload that are JSON objects
/// with unique members, no forbidden header member, a known `typ` if any.
fn read(jwt: &str) -> Result<Unverified<'_>, AuthorizationError> {
    if jwt.len() > MAX_REQUEST_OBJECT_LEN {
        return Err(invalid_object("The request object is larger than 16 KiB."));
    }
    let Some([header, payload, signature]) = crate::verify::compact_segments(jwt) else {
        return Err(invalid_object(
            "The request object is not a compact JWS (encrypted request objects are not supported).",
        ));
    };
    let signing_input = &jwt[..header.len() + 1 + payload.len()];
    let header = URL_SAFE_NO_PAD
        .decode(header)
        .ok()
        .and_then(|bytes| strict_json::object(&bytes).ok())
        .ok_or_else(|| {
            invalid_object("The request object's header is not a JSON object with unique members.")
        })?;
    if FORBIDDEN_HEADER
        .iter()
        .any(|name| header.contains_key(*name))
    {
        return Err(invalid_object(
            "The request object's header brings keys or processing rules (jwk, jku, x5u, x5c, crit, b64, zip, enc).",
        ));
    }
    let alg = match header.get("alg") {
        Some(Value::String(alg)) => alg.clone(),
        _ => return Err(invalid_object("The request object's header has no alg.")),
    };
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(kid)) if !kid.is_empty() && kid.len() <= 256 => Some(kid.clone()),
        Some(_) => {
            return Err(invalid_object(
                "The request object's kid is not a string of 1 to 256 characters.",
            ));
        }
    };
    // RFC 8725 §3.11: a typ, when sent, must say what the JWT is for, so that another kind of
    // JWT of the client's (a client assertion) is not taken for a request.
    match header.get("typ") {
        None => {}
        Some(Value::String(typ))
            if [
                "JWT",
                "oauth-authz-req+jwt",
                "application/oauth-authz-req+jwt",
            ]
            .iter()
            .any(|known| typ.eq_ignore_ascii_case(known)) => {}
        Some(_) => {
            return Err(invalid_object(
                "The request object's typ is neither JWT nor oauth-authz-req+jwt.",
            ));
        }
    }
    let claims = URL_SAFE_NO_PAD
        .decode(payload)
        .ok()
        .and_then(|bytes| strict_json::object(&bytes).ok())
        .ok_or_else(|| {
            invalid_object("The request object's payload is not a JSON object with unique members.")
        })?;
    Ok(Unverified {
        alg,
        kid,
        signing_input,
        signature,
        claims,
    })
}

/// The algorithm that verifies an object whose header says `alg`, for `client`: `None` for an
/// unsigned one. The header names one of [`RequestObjectAlg`] exactly; a client that
/// registered an algorithm gets that one only (`none` is accepted from a client that
/// registered `none` or nothing, REQOBJ-02).
fn signature_algorithm(
    alg: &str,
    client: &Client,
) -> Result<Option<Algorithm>, AuthorizationError> {
    let found = RequestObjectAlg::parse(alg).ok_or_else(|| {
        invalid_object("The request object's alg is not none, RS256, PS256 or ES256.")
    })?;
    if client
        .request_object_signing_alg
        .is_some_and(|registered| registered != found)
    {
        return Err(invalid_object(
            "The request object is not signed with the client's registered request_object_signing_alg.",
        ));
    }
    Ok(found.algorithm())
}

/// Checks the signature of `object` with `algorithm` against `keys` (the client's): an
/// unsigned object must have an empty signature (RFC 7519 §6.1); a signed one must verify with
/// one of [`ClientKeys::verifying_keys`].
fn verify_signature(
    object: &Unverified<'_>,
    algorithm: Option<Algorithm>,
    keys: Option<&ClientKeys>,
) -> Result<(), AuthorizationError> {
    let Some(algorithm) = algorithm else {
        return if object.signature.is_empty() {
            Ok(())
        } else {
            Err(invalid_object(
                "An unsigned request object (alg none) must have an empty signature.",
            ))
        };
    };
    let keys = keys.ok_or_else(|| {
        invalid_object("The client has no registered keys (jwks or jwks_uri) to verify a signed request object.")
    })?;
    let candidates = keys.verifying_keys(algorithm, object.kid.as_deref());
    if candidates.is_empty() {
        return Err(invalid_object(
            "No key of the client fits the request object's kid and alg.",
        ));
    }
    let verified = candidates.iter().any(|key| {
        jsonwebtoken::crypto::verify(
            object.signature,
            object.signing_input.as_bytes(),
            &key.decoding_key,
            algorithm,
        )
        .unwrap_or(false)
    });
    if verified {
        Ok(())
    } else {
        Err(invalid_object(
            "The request object's signature does not verify with the client's keys.",
        ))
    }
}

/// The claims about the object and the parameters that must agree with the outer request.
fn check_claims(
    claims: &Map<String, Value>,
    client: &Client,
    outer: &Params,
    issuer: &str,
    now: i64,
) -> Result<(), AuthorizationError> {
    if claims
        .get("iss")
        .is_some_and(|iss| iss.as_str() != Some(client.client_id.as_str()))
    {
        return Err(invalid_object(
            "The request object's iss is not the client_id.",
        ));
    }
    if let Some(aud) = claims.get("aud") {
        let names_us = match aud {
            Value::String(aud) => aud == issuer,
            Value::Array(auds) => auds.iter().any(|aud| aud.as_str() == Some(issuer)),
            _ => false,
        };
        if !names_us {
            return Err(invalid_object(
                "The request object's aud does not name this server's issuer.",
            ));
        }
    }
    let numeric = |name: &str| -> Result<Option<i64>, AuthorizationError> {
        match claims.get(name) {
            None => Ok(None),
            // RFC 7519 §2 NumericDate; strings and floats are refused, not skipped (JWT-12).
            Some(value) => value.as_i64().map(Some).ok_or_else(|| {
                invalid_object("The request object's exp or nbf is not an integer.")
            }),
        }
    };
    if numeric("exp")?.is_some_and(|exp| exp < now - LEEWAY_SECS) {
        return Err(invalid_object("The request object has expired."));
    }
    if numeric("nbf")?.is_some_and(|nbf| nbf > now + LEEWAY_SECS) {
        return Err(invalid_object("The request object is not valid yet (nbf)."));
    }
    // OIDC Core §6.1: client_id and response_type are sent outside too; inside, they must be
    // the same (an object of another client, or for another flow, is not this request).
    for name in ["client_id", "response_type"] {
        if let (Some(inner), Some(outer)) = (claims.get(name), outer.get(name))
            && inner.as_str() != Some(outer)
        {
            return Err(invalid_object(
                "The request object's client_id or response_type differs from the request's.",
            ));
        }
    }
    if claims.contains_key("request") || claims.contains_key("request_uri") {
        return Err(invalid_object(
            "A request object may not hold request or request_uri.",
        ));
    }
    Ok(())
}

/// The authorization parameters of a request object.
struct ObjectParameters {
    /// Name and value, as text.
    values: Vec<(String, String)>,
    /// `resource` values, when the object has any.
    resources: Option<Vec<String>>,
}

/// The object's members as authorization parameters (claims about the object left out):
/// strings as they are, numbers as their decimal text (`max_age`), the `claims` object as its
/// JSON text (OIDC Core §6.1), `resource` as one string or an array of strings. Another JSON
/// type for a parameter of [`PARAMETERS`] refuses the object; other members of other types are
/// ignored, as unknown parameters are.
fn parameters_of(claims: Map<String, Value>) -> Result<ObjectParameters, AuthorizationError> {
    let wrong_type =
        || invalid_object("A parameter of the request object has the wrong JSON type.");
    let mut values = Vec::new();
    let mut resources = None;
    for (name, value) in claims {
        if OBJECT_CLAIMS.contains(&name.as_str()) {
            continue;
        }
        let text = match (name.as_str(), value) {
            ("resource", Value::String(resource)) => {
                resources = Some(vec![resource]);
                continue;
            }
            ("resource", Value::Array(items)) => {
                let items = items
                    .into_iter()
                    .map(|item| match item {
                        Value::String(resource) => Ok(resource),
                        _ => Err(wrong_type()),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                resources = Some(items);
                continue;
            }
            (_, Value::String(text)) => text,
            (_, Value::Number(number)) => number.to_string(),
            ("claims", claims @ Value::Object(_)) => claims.to_string(),
            (known, _) if PARAMETERS.contains(&known) => return Err(wrong_type()),
            _ => continue,
        };
        // As outside: no value of ours can hold a NUL character.
        if text.contains('\0') {
            return Err(wrong_type());
        }
        values.push((name, text));
    }
    if resources
        .as_ref()
        .is_some_and(|items| items.iter().any(|r| r.contains('\0')))
    {
        return Err(wrong_type());
    }
    Ok(ObjectParameters { values, resources })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ISSUER: &str = "https://op.example";

    fn b64(value: &Value) -> String {
        URL_SAFE_NO_PAD.encode(value.to_string())
    }

    fn unsigned(claims: &Value) -> String {
        format!("{}.{}.", b64(&json!({"alg": "none"})), b64(claims))
    }

    fn client() -> Client {
        Client::for_tests("app", &["https://app.example/cb"], false)
    }

    fn outer() -> Params {
        Params::parse(b"client_id=app&response_type=code&scope=openid").unwrap()
    }

    fn checked(jwt: &str, client: &Client, now: i64) -> Result<Params, AuthorizationError> {
        let object = read(jwt)?;
        let algorithm = signature_algorithm(&object.alg, client)?;
        verify_signature(&object, algorithm, client.keys())?;
        check_claims(&object.claims, client, &outer(), ISSUER, now)?;
        let parameters = parameters_of(object.claims)?;
        Ok(outer().superseded_by(parameters.values, parameters.resources, &["request"]))
    }

    fn code(result: Result<Params, AuthorizationError>) -> &'static str {
        result.map(|_| ()).unwrap_err().code
    }

    #[test]
    fn an_unsigned_object_supersedes_the_outer_parameters() {
        let jwt = unsigned(&json!({
            "iss": "app", "aud": [ISSUER, "other"], "client_id": "app", "response_type": "code",
            "state": "s", "nonce": "n", "max_age": 60, "scope": "openid email",
            "claims": {"id_token": {"email": null}}, "resource": ["https://api.example"],
            "exp": 1_000, "x-unknown": {"ignored": true},
        }));
        let params = checked(&jwt, &client(), 990).unwrap();
        assert_eq!(params.get("state"), Some("s"));
        assert_eq!(params.get("nonce"), Some("n"));
        assert_eq!(params.get("max_age"), Some("60"));
        assert_eq!(params.get("scope"), Some("openid email"));
        assert_eq!(params.get("claims"), Some(r#"{"id_token":{"email":null}}"#));
        assert_eq!(params.resources(), ["https://api.example"]);
        assert_eq!(params.get("iss"), None);
        assert_eq!(params.get("x-unknown"), None);
        assert!(!params.has("request"));
    }

    #[test]
    fn object_claims_and_the_outer_request_must_agree() {
        let client = client();
        for (claims, why) in [
            (json!({"iss": "other"}), "iss"),
            (json!({"iss": 7}), "iss type"),
            (json!({"aud": "https://elsewhere"}), "aud"),
            (json!({"aud": ["https://elsewhere"]}), "aud array"),
            (json!({"exp": 100}), "expired"),
            (json!({"exp": "9999999999"}), "exp as a string"),
            (json!({"nbf": 1_000}), "nbf ahead"),
            (json!({"client_id": "other"}), "client_id"),
            (json!({"response_type": "token"}), "response_type"),
            (json!({"request_uri": "https://x"}), "nested request_uri"),
            (json!({"request": "x"}), "nested request"),
            (json!({"state": ["a"]}), "state type"),
            (json!({"resource": [1]}), "resource type"),
            (json!({"nonce": "a\u{0}b"}), "NUL"),
        ] {
            assert_eq!(
                code(checked(&unsigned(&claims), &client, 500)),
                "invalid_request_object",
                "{why}"
            );
        }
        // Within the leeway.
        assert!(checked(&unsigned(&json!({"exp": 450})), &client, 500).is_ok());
    }

    #[test]
    fn malformed_objects_are_refused() {
        let client = client();
        let header = b64(&json!({"alg": "none"}));
        let payload = b64(&json!({"state": "s"}));
        for (jwt, why) in [
            ("not-a-jwt".to_owned(), "one segment"),
            (format!("{header}.{payload}"), "two segments"),
            (format!("{header}.{payload}..."), "five segments (JWE)"),
            (format!("{header}.{payload}.sig"), "none with a signature"),
            (
                format!(
                    "{}.{payload}.",
                    URL_SAFE_NO_PAD.encode(br#"{"alg":"none","alg":"none"}"#)
                ),
                "duplicate header member",
            ),
            (
                format!(
                    "{header}.{}.",
                    URL_SAFE_NO_PAD.encode(br#"{"state":"a","state":"b"}"#)
                ),
                "duplicate claim",
            ),
            (
                format!(
                    "{header}.{}.",
                    URL_SAFE_NO_PAD.encode(br#"{"claims":{"id_token":{},"id_token":{}}}"#)
                ),
                "duplicate nested member",
            ),
            (format!("{header}.%%%."), "payload not base64url"),
            (
                format!("{header}.{}.", URL_SAFE_NO_PAD.encode(b"[1]")),
                "payload not an object",
            ),
            (
                format!("{}.{payload}.", b64(&json!({"alg": "None"}))),
                "None is not none",
            ),
            (
                format!("{}.{payload}.", b64(&json!({"alg": "HS256"}))),
                "HS256",
            ),
            (
                format!(
                    "{}.{payload}.",
                    b64(&json!({"alg": "none", "jku": "https://evil"}))
                ),
                "jku",
            ),
            (
                format!(
                    "{}.{payload}.",
                    b64(&json!({"alg": "none", "typ": "at+jwt"}))
                ),
                "typ",
            ),
            (
                format!(
                    "{header}.{}.",
                    URL_SAFE_NO_PAD.encode("x".repeat(MAX_REQUEST_OBJECT_LEN))
                ),
                "oversized",
            ),
        ] {
            assert_eq!(
                code(checked(&jwt, &client, 500)),
                "invalid_request_object",
                "{why}"
            );
        }
        let typed = format!(
            "{}.{payload}.",
            b64(&json!({"alg": "none", "typ": "oauth-authz-req+jwt"}))
        );
        assert!(checked(&typed, &client, 500).is_ok());
    }

    #[test]
    fn only_jwt_content_types_are_request_objects() {
        assert!(is_request_object_type("application/JWT; charset=utf-8"));
        assert!(is_request_object_type("application/oauth-authz-req+jwt"));
        for other in [
            "application/json",
            "text/plain",
            "application/octet-stream",
            "",
        ] {
            assert!(!is_request_object_type(other), "{other}");
        }
    }

    #[test]
    fn none_only_when_the_client_registered_none_or_nothing() {
        let jwt = unsigned(&json!({"state": "s"}));
        let mut registered = client();
        assert!(checked(&jwt, &registered, 500).is_ok());
        registered.request_object_signing_alg = Some(RequestObjectAlg::None);
        assert!(checked(&jwt, &registered, 500).is_ok());
        registered.request_object_signing_alg = Some(RequestObjectAlg::Rs256);
        assert_eq!(
            code(checked(&jwt, &registered, 500)),
            "invalid_request_object"
        );
        // A signed object from a client without keys.
        let signed = format!("{}.{}.c2ln", b64(&json!({"alg": "RS256"})), b64(&json!({})));
        assert_eq!(
            code(checked(&signed, &client(), 500)),
            "invalid_request_object"
        );
        registered.request_object_signing_alg = Some(RequestObjectAlg::None);
        assert_eq!(
            code(checked(&signed, &registered, 500)),
            "invalid_request_object"
        );
    }
}
