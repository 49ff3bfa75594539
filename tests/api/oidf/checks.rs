//! The suite's conditions, as assertions (oidf-spec.md §0). FAILURE and WARNING conditions
//! alike fail the test (the goal is a run without warnings); INFO conditions are not checked.
//! Each helper names the condition classes it stands for.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{DecodingKey, Validation, jwk::Jwk};
use serde_json::{Map, Value};
use sha2::Digest;

use super::{AuthRequest, Callback, Mode};
use crate::helpers::json_of;

/// `client/CheckServerConfiguration`, `EnsureServerConfigurationSupportsClientSecretBasic` /
/// `…ClientSecretPost`, `SetProtectedResourceUrlToUserInfoEndpoint` (§0.2 #2, #10, #11).
pub fn server_configuration(discovery: &Value, auth: super::Auth) {
    for member in ["authorization_endpoint", "token_endpoint", "issuer"] {
        let value = discovery[member].as_str().unwrap_or_default();
        assert!(!value.is_empty(), "CheckServerConfiguration: {member}");
        url::Url::parse(value)
            .unwrap_or_else(|e| panic!("CheckServerConfiguration: {member}: {e}"));
    }
    let methods = &discovery["token_endpoint_auth_methods_supported"];
    match auth {
        super::Auth::Basic => assert!(
            methods.is_null() || has(methods, "client_secret_basic"),
            "EnsureServerConfigurationSupportsClientSecretBasic: {methods}"
        ),
        super::Auth::Post => assert!(
            has(methods, "client_secret_post"),
            "EnsureServerConfigurationSupportsClientSecretPost: {methods}"
        ),
        super::Auth::InForm => assert!(
            has(methods, "private_key_jwt"),
            "EnsureServerConfigurationSupportsPrivateKeyJwt: {methods}"
        ),
    }
    assert!(
        discovery["userinfo_endpoint"].is_string(),
        "SetProtectedResourceUrlToUserInfoEndpoint"
    );
}

/// Whether a JSON array holds `value`.
pub fn has(array: &Value, value: &str) -> bool {
    array
        .as_array()
        .is_some_and(|items| items.iter().any(|i| i == value))
}

/// Unpadded base64url.
fn base64url(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The JWKS checks of §0.2: `CheckServerKeysIsValid`, `EnsureJwksHasNoPrivateOrSymmetricKeyMaterial`,
/// `ValidateJwksStructure`, `ParseUsableJwksKeys`, `WarnOnUnusableJwksKeys`, and (flow modules,
/// `kids`) `CheckForKeyIdInServerJWKs`, `CheckDistinctKeyIdValueInServerJWKs`.
pub fn server_jwks(jwks: &Value, kids: bool) {
    let keys = jwks["keys"]
        .as_array()
        .expect("ValidateJwksStructure: keys array");
    assert!(!keys.is_empty(), "CheckServerKeysIsValid: no keys");
    let mut seen = Vec::new();
    for key in keys {
        for private in ["d", "p", "q", "dp", "dq", "qi", "oth", "k"] {
            assert!(
                key.get(private).is_none(),
                "EnsureJwksHasNoPrivateOrSymmetricKeyMaterial: {private} in {key}"
            );
        }
        let kty = key["kty"].as_str().expect("kty");
        let members: &[&str] = match kty {
            "RSA" => &["n", "e"],
            "EC" => &["crv", "x", "y"],
            other => panic!("WarnOnUnusableJwksKeys: kty {other}"),
        };
        for member in members {
            let value = key[member].as_str().unwrap_or_default();
            assert!(
                *member == "crv" || base64url(value),
                "ValidateJwksStructure: {member} of {key}"
            );
        }
        if kty == "EC" {
            assert!(
                ["P-256", "P-384", "P-521"].contains(&key["crv"].as_str().unwrap_or_default()),
                "WarnOnUnusableJwksKeys: crv of {key}"
            );
        }
        if let Some(alg) = key.get("alg") {
            assert!(
                [
                    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"
                ]
                .contains(&alg.as_str().unwrap_or_default()),
                "WarnOnUnusableJwksKeys: alg of {key}"
            );
        }
        let jwk: Jwk = serde_json::from_value(key.clone())
            .unwrap_or_else(|e| panic!("ParseUsableJwksKeys: {e}: {key}"));
        DecodingKey::from_jwk(&jwk).unwrap_or_else(|e| panic!("ParseUsableJwksKeys: {e}: {key}"));
        if kids {
            let kid = key["kid"].as_str().unwrap_or_default();
            assert!(!kid.trim().is_empty(), "CheckForKeyIdInServerJWKs: {key}");
            assert!(
                !seen.contains(&kid),
                "CheckDistinctKeyIdValueInServerJWKs: {kid}"
            );
            seen.push(kid);
        }
    }
}

/// A form of an auto-submitting page (form_post), as a browser reads it.
#[derive(Debug)]
pub struct PostForm {
    /// `action`.
    pub action: String,
    /// `method`.
    pub method: String,
    /// The media type the browser sends (`enctype`, default form-urlencoded).
    pub enctype: String,
    /// The fields, in order.
    pub fields: Vec<(String, String)>,
}

/// The first `<form>` of `html` and its `<input>` fields, if it has one with an `action`.
pub fn auto_post_form(html: &str) -> Option<PostForm> {
    let start = html.find("<form")?;
    let end = html[start..].find('>')? + start;
    let tag = &html[start..=end];
    let action = attribute(tag, "action")?;
    let method = attribute(tag, "method").unwrap_or_else(|| "get".into());
    let enctype =
        attribute(tag, "enctype").unwrap_or_else(|| "application/x-www-form-urlencoded".into());
    let close = html[end..].find("</form>").map_or(html.len(), |i| i + end);
    let mut fields = Vec::new();
    let mut rest = &html[end..close];
    while let Some(i) = rest.find("<input") {
        let tag_end = rest[i..].find('>').map_or(rest.len(), |j| i + j + 1);
        let tag = &rest[i..tag_end];
        if let Some(name) = attribute(tag, "name") {
            fields.push((name, attribute(tag, "value").unwrap_or_default()));
        }
        rest = &rest[tag_end..];
    }
    Some(PostForm {
        action,
        method,
        enctype,
        fields,
    })
}

/// An attribute of a tag, HTML-unescaped.
fn attribute(tag: &str, name: &str) -> Option<String> {
    for quote in ['"', '\''] {
        let marker = format!(" {name}={quote}");
        if let Some(i) = tag.find(&marker) {
            let start = i + marker.len();
            let end = tag[start..].find(quote)? + start;
            return Some(unescape(&tag[start..end]));
        }
    }
    None
}

/// HTML character references as a browser decodes them in attribute values (the ones askama
/// and hand-written pages produce).
pub fn unescape(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let Some(semi) = rest[i..].find(';') else {
            out.push_str(&rest[i..]);
            return out;
        };
        let entity = &rest[i + 1..i + semi];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .or_else(|| entity.strip_prefix("#X"))
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[i + semi + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[i + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The form-post checks every callback of the form-post plan gets (§0.4):
/// `CheckCallbackHttpMethodIsPost`, `CheckCallbackContentTypeIsFormUrlEncoded`,
/// `RejectAuthCodeInUrlQuery`, `RejectErrorInUrlQuery`.
pub fn form_post_callback(callback: &Callback) {
    assert_eq!(callback.method, "POST", "CheckCallbackHttpMethodIsPost");
    assert_eq!(
        callback.content_type.as_deref(),
        Some("application/x-www-form-urlencoded"),
        "CheckCallbackContentTypeIsFormUrlEncoded"
    );
    let names = callback.query_names();
    assert!(
        !names.iter().any(|n| n == "code"),
        "RejectAuthCodeInUrlQuery"
    );
    assert!(!names.iter().any(|n| n == "error"), "RejectErrorInUrlQuery");
}

/// The callback is the one of `mode` (§0.4): a GET with the parameters in the query, or the
/// form-post checks; `CheckMatchingCallbackParameters` (the redirect URI has no query);
/// `ValidateIssIfPresentInAuthorizationResponse`.
fn callback_shape(callback: &Callback, issuer: &str, mode: Mode) {
    match mode {
        Mode::Query => assert_eq!(callback.method, "GET", "default response mode: a redirect"),
        Mode::FormPost => form_post_callback(callback),
    }
    let mut called = callback.url.clone();
    if mode == Mode::Query {
        called.set_query(None);
    }
    assert_eq!(
        called.as_str(),
        super::redirect_uri(),
        "CheckMatchingCallbackParameters: the callback is the registered redirect URI"
    );
    if let Some(iss) = callback.param("iss") {
        assert_eq!(iss, issuer, "ValidateIssIfPresentInAuthorizationResponse");
    }
}

/// A successful authorization response (§0.4): `CheckIfAuthorizationEndpointError`,
/// `CheckStateInAuthorizationResponse`, `ExtractAuthorizationCodeFromAuthorizationResponse`.
/// Returns the code.
pub fn authorization_response(
    callback: &Callback,
    request: &AuthRequest,
    issuer: &str,
    mode: Mode,
) -> String {
    callback_shape(callback, issuer, mode);
    assert!(
        callback.param("error").is_none(),
        "CheckIfAuthorizationEndpointError: {:?}",
        callback.params
    );
    assert_eq!(
        callback.param("state"),
        request.state(),
        "CheckStateInAuthorizationResponse"
    );
    let code = callback.param("code").unwrap_or_default();
    assert!(
        !code.is_empty(),
        "ExtractAuthorizationCodeFromAuthorizationResponse"
    );
    code.to_owned()
}

/// The generic authorization-error checks (§0.8, `performGenericAuthorizationEndpointErrorResponseValidation`)
/// and that `error` is one of `allowed`. Returns the error.
pub fn authorization_error(
    callback: &Callback,
    request: &AuthRequest,
    issuer: &str,
    mode: Mode,
    allowed: &[&str],
) -> String {
    callback_shape(callback, issuer, mode);
    assert_eq!(
        callback.param("state"),
        request.state(),
        "CheckStateInAuthorizationResponse"
    );
    let error = callback
        .param("error")
        .expect("EnsureErrorFromAuthorizationEndpointResponse");
    assert!(
        callback.param("code").is_none() && callback.url.fragment().is_none(),
        "RejectAuthCodeInAuthorizationEndpointResponse"
    );
    for (name, _) in &callback.params {
        assert!(
            [
                "error",
                "error_description",
                "error_uri",
                "state",
                "session_state",
                "iss"
            ]
            .contains(&name.as_str()),
            "CheckForUnexpectedParametersInErrorResponseFromAuthorizationEndpoint: {name}"
        );
    }
    error_members(
        error,
        callback.param("error_description"),
        callback.param("error_uri"),
    );
    assert!(
        allowed.contains(&error),
        "the error is one of {allowed:?}: {error}"
    );
    error.to_owned()
}

/// `CheckErrorFromAuthorizationEndpointIsOneThatRequiredAUserInterface`.
pub const USER_INTERFACE_ERRORS: [&str; 4] = [
    "interaction_required",
    "login_required",
    "account_selection_required",
    "consent_required",
];

/// `error`, `error_description` and `error_uri` charsets (RFC 6749 §4.1.2.1, §5.2):
/// `Validate…ResponseError`, `…ContainsCRLFTAB` (WARNING), `ValidateErrorUri…`.
fn error_members(error: &str, description: Option<&str>, uri: Option<&str>) {
    let nqschar = |c: char| matches!(c, '\x20'..='\x21' | '\x23'..='\x5B' | '\x5D'..='\x7E');
    assert!(
        !error.is_empty() && error.chars().all(nqschar),
        "ValidateErrorFromResponseError: {error:?}"
    );
    if let Some(description) = description {
        assert!(
            !description.contains(['\r', '\n', '\t']),
            "CheckErrorDescription…ContainsCRLFTAB: {description:?}"
        );
        assert!(
            description.chars().all(nqschar),
            "ValidateErrorDescription…ResponseError: {description:?}"
        );
    }
    if let Some(uri) = uri {
        url::Url::parse(uri).expect("ValidateErrorUri…: a URL");
        assert!(
            uri.chars().all(|c| c == '\x21' || nqschar(c) && c != ' '),
            "ValidateErrorUri…: {uri:?}"
        );
    }
}

/// The token-endpoint success checks (§0.5): `CheckTokenEndpointHttpStatus200`,
/// `CheckIfTokenEndpointResponseError`, `CheckForAccessTokenValue`,
/// `ExtractExpiresInFromTokenEndpointResponse` (WARNING in oidcc-server and refresh: asserted
/// always), `ValidateExpiresIn`, `ExtractIdTokenFromTokenResponse`. Returns the body.
pub async fn token_response(response: reqwest::Response) -> Value {
    let status = response.status();
    let body = json_of(response).await;
    assert_eq!(status, 200, "CheckTokenEndpointHttpStatus200: {body}");
    assert!(
        body.get("error").is_none(),
        "CheckIfTokenEndpointResponseError: {body}"
    );
    for member in ["access_token", "token_type"] {
        assert!(
            !body[member].as_str().unwrap_or_default().is_empty(),
            "CheckForAccessTokenValue: {member}"
        );
    }
    let expires_in = body["expires_in"]
        .as_i64()
        .expect("ExtractExpiresInFromTokenEndpointResponse / ValidateExpiresIn: a number");
    assert!(
        expires_in > 0 && expires_in <= 31_536_000,
        "ValidateExpiresIn: {expires_in}"
    );
    let id_token = body["id_token"]
        .as_str()
        .expect("ExtractIdTokenFromTokenResponse");
    jwt_header(id_token);
    body
}

/// `ExtractIdTokenFromTokenResponse` (`JWTUtil.parseJWT`, Nimbus `JWTParser`): `token` is a
/// compact JWT — three segments of unpadded base64url, a JSON object header with a string `alg`;
/// an unsecured one (`alg: none`, RFC 7519 §6.1) with an empty third segment. Its header.
pub fn jwt_header(token: &str) -> Value {
    assert!(
        token
            .chars()
            .all(|c| c == '.' || c == '-' || c == '_' || c.is_ascii_alphanumeric()),
        "ExtractIdTokenFromTokenResponse: not base64url and dots: {token}"
    );
    let segments: Vec<&str> = token.split('.').collect();
    assert_eq!(
        segments.len(),
        3,
        "ExtractIdTokenFromTokenResponse: a JWT: {token}"
    );
    let header: Value = URL_SAFE_NO_PAD
        .decode(segments[0])
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .expect("ExtractIdTokenFromTokenResponse: a JSON header");
    let alg = header["alg"]
        .as_str()
        .expect("ExtractIdTokenFromTokenResponse: alg");
    // Nimbus `PlainObject.parse`: an unsecured JWT has no third part ("Unexpected third Base64URL
    // part").
    assert!(
        alg != "none" || segments[2].is_empty(),
        "ExtractIdTokenFromTokenResponse: an unsecured JWT with a signature: {token}"
    );
    header
}

/// The claims that are not standard claims (`ValidateIdTokenStandardClaims` removes them).
const TOKEN_CLAIMS: [&str; 15] = [
    "iss",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "acr",
    "amr",
    "azp",
    "c_hash",
    "at_hash",
    "s_hash",
    "jti",
    "nbf",
    "verified_claims",
];

/// `ValidateIdTokenStandardClaims` / `ValidateUserInfoStandardClaims`: the standard claims of
/// `claims` (after removing the token's own) form a non-empty object, each known claim typed
/// (OIDC Core §5.1).
pub fn standard_claims(claims: &Map<String, Value>, what: &str, now: i64) {
    let standard: Map<String, Value> = claims
        .iter()
        .filter(|(k, _)| !TOKEN_CLAIMS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    assert!(!standard.is_empty(), "Validate{what}StandardClaims: empty");
    for (name, value) in &standard {
        match name.as_str() {
            "sub" | "name" | "given_name" | "family_name" | "middle_name" | "nickname"
            | "preferred_username" | "profile" | "picture" | "website" | "email" | "gender"
            | "zoneinfo" | "locale" | "phone_number" | "txn" => {
                let text = value
                    .as_str()
                    .unwrap_or_else(|| panic!("Validate{what}StandardClaims: {name} a string"));
                assert!(
                    !text.trim().is_empty() && text != "null",
                    "Validate{what}StandardClaims: {name} blank"
                );
            }
            "email_verified" | "phone_number_verified" => assert!(
                value.is_boolean(),
                "Validate{what}StandardClaims: {name} a boolean"
            ),
            "birthdate" => {
                let text = value.as_str().expect("birthdate a string");
                let year = text.split('-').next().unwrap_or_default();
                let shaped = match text.len() {
                    4 => year.parse::<i64>().is_ok(),
                    10 => chrono::NaiveDate::parse_from_str(
                        &text.replacen("0000", "2000", 1),
                        "%Y-%m-%d",
                    )
                    .is_ok(),
                    _ => false,
                };
                assert!(shaped, "Validate{what}StandardClaims: birthdate {text}");
                let year: i64 = year.parse().unwrap_or_default();
                assert!(
                    year == 0 || (1850..=2100).contains(&year),
                    "Validate{what}StandardClaims: birthdate year {year}"
                );
            }
            "updated_at" => {
                let at = value
                    .as_i64()
                    .unwrap_or_else(|| panic!("Validate{what}StandardClaims: updated_at a number"));
                // EnsureUserInfoUpdatedAtValid: from 1990-01-01 to now + 5 min.
                assert!(
                    (631_152_000..=now + 300).contains(&at),
                    "Ensure{what}UpdatedAtValid: {at}"
                );
            }
            "address" => {
                let address = value.as_object().expect("address an object");
                for (part, text) in address {
                    assert!(
                        text.as_str().is_some_and(|t| !t.trim().is_empty()),
                        "Validate{what}StandardClaims: address.{part}"
                    );
                }
            }
            "_claim_names" | "_claim_sources" => {
                assert!(value.is_object(), "Validate{what}StandardClaims: {name}")
            }
            _ => {}
        }
    }
}

/// `PerformStandardIdTokenChecks` (§0.6): `ValidateIdToken`, `ValidateIdTokenNonce`,
/// `ValidateIdTokenACRClaimAgainstRequest`, `ValidateIdTokenStandardClaims`,
/// `ValidateIdTokenSignature`, `CheckForSubjectInIdToken`. `nonce` is what the request sent;
/// `now` the suite's time. Returns the claims.
pub fn standard_id_token(
    id_token: &str,
    issuer: &str,
    client_id: &str,
    nonce: Option<&str>,
    jwks: &Value,
    now: i64,
) -> Value {
    id_token_claims(
        verify_signature(id_token, jwks),
        issuer,
        client_id,
        nonce,
        now,
    )
}

/// [`standard_id_token`] without `ValidateIdTokenSignature`: the checks of the ID token's
/// `claims` (for an unsigned ID token, whose claims are read without a signature). Returns them.
pub fn id_token_claims(
    claims: Value,
    issuer: &str,
    client_id: &str,
    nonce: Option<&str>,
    now: i64,
) -> Value {
    let object = claims.as_object().expect("claims object");
    // ValidateIdToken.
    assert_eq!(claims["iss"], issuer, "ValidateIdToken: iss");
    let aud_ok = match &claims["aud"] {
        Value::String(aud) => aud == client_id,
        Value::Array(auds) => auds.iter().any(|a| a == client_id),
        _ => false,
    };
    assert!(aud_ok, "ValidateIdToken: aud {}", claims["aud"]);
    let exp = claims["exp"].as_i64().expect("ValidateIdToken: exp");
    assert!(
        exp >= now - 300 && exp <= now + 50 * 365 * 86_400,
        "ValidateIdToken: exp"
    );
    let iat = claims["iat"].as_i64().expect("ValidateIdToken: iat");
    assert!(
        (now - 300..=now + 300).contains(&iat),
        "ValidateIdToken: iat {iat}, now {now}"
    );
    if let Some(auth_time) = object.get("auth_time") {
        let auth_time = auth_time
            .as_i64()
            .expect("ValidateIdToken: auth_time a number");
        assert!(
            (now - 365 * 86_400..=now + 300).contains(&auth_time),
            "ValidateIdToken: auth_time"
        );
    }
    if let Some(acr) = object.get("acr") {
        // ValidateIdTokenACRClaimAgainstRequest: a string; ValidateIdToken: not empty.
        assert!(
            acr.as_str().is_some_and(|a| !a.is_empty()),
            "ValidateIdToken: acr"
        );
    }
    // ValidateIdTokenNonce.
    match nonce {
        Some(nonce) => assert_eq!(claims["nonce"], nonce, "ValidateIdTokenNonce"),
        None => assert!(
            object.get("nonce").is_none(),
            "ValidateIdTokenNonce: a nonce came back although none was sent"
        ),
    }
    standard_claims(object, "IdToken", now);
    // CheckForSubjectInIdToken.
    let sub = claims["sub"].as_str().expect("CheckForSubjectInIdToken");
    assert!(
        !sub.is_empty() && sub.len() <= 255 && sub.chars().all(|c| (' '..='~').contains(&c)),
        "CheckForSubjectInIdToken: {sub:?}"
    );
    claims
}

/// `ValidateIdTokenSignature`: the header's `kid` names exactly one key of the JWKS whose
/// `kty` fits `alg`, with `alg` (if present) equal and `use` (if present) `sig`; the signature
/// verifies. Returns the claims.
pub fn verify_signature(token: &str, jwks: &Value) -> Value {
    let header = jsonwebtoken::decode_header(token).expect("a JWS");
    let alg = format!("{:?}", header.alg);
    let kty = match &alg[..2] {
        "RS" | "PS" => "RSA",
        "ES" => "EC",
        other => panic!("ValidateIdTokenSignature: alg {other}"),
    };
    let keys = jwks["keys"].as_array().expect("keys");
    let candidates: Vec<&Value> = keys
        .iter()
        .filter(|k| {
            header
                .kid
                .as_deref()
                .is_none_or(|kid| k["kid"].as_str() == Some(kid))
                && k["kty"] == kty
                && k.get("alg").is_none_or(|a| *a == alg.as_str())
                && k.get("use").is_none_or(|u| u == "sig")
        })
        .collect();
    assert!(
        !candidates.is_empty(),
        "ValidateIdTokenSignature: no key for {:?}",
        header.kid
    );
    if header.kid.is_some() {
        assert_eq!(
            candidates.len(),
            1,
            "ValidateIdTokenSignature: more than one key with this kid"
        );
    }
    let mut validation = Validation::new(header.alg);
    validation.validate_aud = false;
    validation.validate_exp = false;
    validation.required_spec_claims.clear();
    let verified = candidates.iter().find_map(|key| {
        let jwk: Jwk = serde_json::from_value((*key).clone()).ok()?;
        let key = DecodingKey::from_jwk(&jwk).ok()?;
        jsonwebtoken::decode::<Value>(token, &key, &validation).ok()
    });
    verified
        .expect("ValidateIdTokenSignature: the signature verifies")
        .claims
}

/// `ValidateAtHash` / `ValidateCHash`: the left half of the SHA-256 of `value` (the ID tokens
/// here are RS256/ES256), base64url.
pub fn left_hash(value: &str) -> String {
    let digest = sha2::Sha256::digest(value.as_bytes());
    URL_SAFE_NO_PAD.encode(&digest[..16])
}

/// `ExtractAtHash`/`ValidateAtHash`, `ExtractCHash`/`ValidateCHash`: when present, they match.
pub fn hashes(claims: &Value, access_token: &str, code: &str) {
    if let Some(at_hash) = claims.get("at_hash") {
        assert_eq!(at_hash, &left_hash(access_token), "ValidateAtHash");
    }
    if let Some(c_hash) = claims.get("c_hash") {
        assert_eq!(c_hash, &left_hash(code), "ValidateCHash");
    }
}

/// The standard claims of each scope (`VerifyScopesReturnedInUserInfoClaims`,
/// `EnsureIdTokenDoesNotContainNonRequestedClaims`).
pub fn scope_claims(scope: &str) -> &'static [&'static str] {
    match scope {
        "profile" => &[
            "name",
            "given_name",
            "family_name",
            "middle_name",
            "nickname",
            "profile",
            "picture",
            "website",
            "gender",
            "birthdate",
            "zoneinfo",
            "locale",
            "updated_at",
            "preferred_username",
        ],
        "email" => &["email", "email_verified"],
        "address" => &["address"],
        "phone" => &["phone_number", "phone_number_verified"],
        _ => &[],
    }
}

/// `EnsureIdTokenDoesNotContainNonRequestedClaims` (WARNING): the ID token carries only the
/// token claims and the standard claims of the requested scopes.
pub fn no_unrequested_claims(claims: &Value, scope: &str) {
    let allowed = [
        "iss",
        "sub",
        "aud",
        "exp",
        "iat",
        "auth_time",
        "nonce",
        "acr",
        "amr",
        "azp",
        "at_hash",
        "c_hash",
        "nbf",
        "jti",
        "sid",
        "s_hash",
        "openbanking_intent_id",
        "txn",
    ];
    for name in claims.as_object().expect("claims").keys() {
        let requested = scope
            .split(' ')
            .any(|s| scope_claims(s).contains(&name.as_str()));
        assert!(
            allowed.contains(&name.as_str()) || requested,
            "EnsureIdTokenDoesNotContainNonRequestedClaims: {name}"
        );
    }
}

/// `EnsureIdTokenDoesNotContainName` (WARNING).
pub fn id_token_without_name(claims: &Value) {
    assert!(
        claims.get("name").is_none(),
        "EnsureIdTokenDoesNotContainName"
    );
}

/// `EnsureIdTokenDoesNotContainEmailForScopeEmail` (WARNING): a code flow issues an access
/// token, so `email` belongs in userinfo.
pub fn id_token_without_email(claims: &Value) {
    assert!(
        claims.get("email").is_none(),
        "EnsureIdTokenDoesNotContainEmailForScopeEmail"
    );
}

/// The userinfo checks after the code flow (§0.7, §0.10): `EnsureHttpStatusCodeIs200`,
/// `EnsureContentTypeJson`, `ExtractUserInfoFromUserInfoEndpointResponse`,
/// `ValidateUserInfoStandardClaims`, `EnsureUserInfoContainsSub`, `EnsureUserInfoUpdatedAtValid`,
/// `EnsureMemberValuesInClaimNameReferenceToMemberNamesInClaimSources`,
/// `VerifyUserInfoAndIdTokenInTokenEndpointSameSub`. Returns the object.
pub async fn userinfo_response(response: reqwest::Response, id_claims: &Value, now: i64) -> Value {
    let status = response.status();
    let media = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap_or_default().to_owned())
        .unwrap_or_default();
    let text = response.text().await.expect("userinfo body");
    assert_eq!(status, 200, "EnsureHttpStatusCodeIs200: {text}");
    assert_eq!(
        media.split(';').next().unwrap_or_default().trim(),
        "application/json",
        "EnsureContentTypeJson"
    );
    let userinfo: Value =
        serde_json::from_str(&text).expect("ExtractUserInfoFromUserInfoEndpointResponse");
    let object = userinfo
        .as_object()
        .expect("ExtractUserInfoFromUserInfoEndpointResponse: an object");
    standard_claims(object, "UserInfo", now);
    let sub = userinfo["sub"].as_str().unwrap_or_default();
    assert!(!sub.is_empty(), "EnsureUserInfoContainsSub");
    assert_eq!(
        object.contains_key("_claim_names"),
        object.contains_key("_claim_sources"),
        "EnsureMemberValuesInClaimNameReferenceToMemberNamesInClaimSources"
    );
    assert_eq!(
        sub, id_claims["sub"],
        "VerifyUserInfoAndIdTokenInTokenEndpointSameSub"
    );
    userinfo
}

/// `VerifyScopesReturnedInUserInfoClaims` (WARNING): userinfo holds every claim of each
/// requested scope.
pub fn scopes_in_userinfo(userinfo: &Value, scope: &str) {
    for s in scope.split(' ') {
        for claim in scope_claims(s) {
            assert!(
                userinfo.get(*claim).is_some(),
                "VerifyScopesReturnedInUserInfoClaims: {claim} ({s}) in {userinfo}"
            );
        }
    }
}

/// The token-endpoint error checks (§0.9): `CheckTokenEndpointHttpStatus400`,
/// `CheckTokenEndpointReturnedJsonContentType`, `CheckErrorFromTokenEndpointResponseErrorInvalidGrant`,
/// and the charset conditions.
pub async fn token_error_invalid_grant(response: reqwest::Response) {
    assert_eq!(response.status(), 400, "CheckTokenEndpointHttpStatus400");
    let media = response.headers()["content-type"]
        .to_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(
        media.split(';').next().unwrap_or_default().trim(),
        "application/json",
        "CheckTokenEndpointReturnedJsonContentType"
    );
    let body = json_of(response).await;
    let error = body["error"].as_str().unwrap_or_default();
    assert_eq!(
        error, "invalid_grant",
        "CheckErrorFromTokenEndpointResponseErrorInvalidGrant"
    );
    error_members(
        error,
        body["error_description"].as_str(),
        body["error_uri"].as_str(),
    );
}

/// "Page expected" (§0.11): the OP answered an HTML page the tester would screenshot, and did
/// not call the suite's callback.
pub fn page(outcome: &super::Outcome, what: &str) -> String {
    match outcome {
        super::Outcome::Page {
            status,
            content_type,
            html,
        } => {
            assert!(
                status.is_success() || status.is_client_error(),
                "{what}: status {status}"
            );
            assert!(
                content_type.starts_with("text/html"),
                "{what}: {content_type}"
            );
            html.clone()
        }
        super::Outcome::Callback(callback) => {
            panic!("{what}: a page was expected, the callback was called: {callback:?}")
        }
    }
}

/// Shannon entropy of `value` (bits per character) times its length, in bits
/// (`EnsureMinimum…Entropy`: more than 96).
pub fn entropy_bits(value: &str) -> f64 {
    let mut counts = std::collections::HashMap::new();
    for c in value.chars() {
        *counts.entry(c).or_insert(0usize) += 1;
    }
    let n = value.chars().count() as f64;
    let per_char: f64 = counts
        .values()
        .map(|&k| {
            let p = k as f64 / n;
            -p * p.log2()
        })
        .sum();
    per_char * n
}

/// `Ensure…ContainsAllowedCharactersOnly`: 0x20–0x7E.
pub fn printable(value: &str, what: &str) {
    assert!(
        value.chars().all(|c| (' '..='~').contains(&c)),
        "Ensure{what}ContainsAllowedCharactersOnly"
    );
}

/// The checks `OIDCCServerTest` adds to the standard flow: the code's length and entropy
/// (`EnsureMinimumAuthorizationCodeLength` / `…Entropy`), `at_hash`/`c_hash`, and an ID token of
/// scope `openid` that holds no profile claim and nothing unrequested.
pub fn oidcc_server(flow: &super::Flow) {
    assert!(
        flow.code.len() >= 16,
        "EnsureMinimumAuthorizationCodeLength"
    );
    assert!(
        entropy_bits(&flow.code) > 96.0,
        "EnsureMinimumAuthorizationCodeEntropy"
    );
    hashes(
        &flow.tokens.id_claims,
        flow.tokens.access_token(),
        &flow.code,
    );
    id_token_without_name(&flow.tokens.id_claims);
    no_unrequested_claims(&flow.tokens.id_claims, "openid");
}
