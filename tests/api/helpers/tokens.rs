//! Reading and checking tokens as a relying party or resource server would, independently of
//! the server's code.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{DecodingKey, Validation, jwk::Jwk};
use portcullis::keys::SigningAlg;
use serde_json::{Value, json};

use super::TestApp;

/// The claims of a JWT, decoded without verification.
pub fn decode_claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url"))
        .expect("JSON claims")
}

/// A numeric claim of a JWT.
pub fn claim_i64(token: &str, name: &str) -> i64 {
    decode_claims(token)[name]
        .as_i64()
        .expect("a numeric claim")
}

/// The `kid` of a JWT's header.
pub fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token)
        .expect("a JWT header")
        .kid
        .expect("kid")
}

/// Kids of a JWKS document.
pub fn kids_of(jwks: &Value) -> Vec<String> {
    jwks["keys"]
        .as_array()
        .expect("keys array")
        .iter()
        .map(|k| k["kid"].as_str().expect("kid").to_owned())
        .collect()
}

/// Verifies `token` with plain jsonwebtoken against `jwks`, for `issuer` as issuer and audience,
/// as any resource server would.
pub fn verifies_against(token: &str, jwks: &Value, issuer: &str) -> Result<Value, String> {
    let header = jsonwebtoken::decode_header(token).map_err(|e| e.to_string())?;
    let kid = header.kid.ok_or("no kid")?;
    let jwk = jwks["keys"]
        .as_array()
        .ok_or("no keys")?
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .ok_or_else(|| format!("{kid} is not published"))?;
    let jwk: Jwk = serde_json::from_value(jwk.clone()).map_err(|e| e.to_string())?;
    let key = DecodingKey::from_jwk(&jwk).map_err(|e| e.to_string())?;
    let mut validation = Validation::new(header.alg);
    validation.set_audience(&[issuer]);
    validation.set_issuer(&[issuer]);
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .map(|data| data.claims)
        .map_err(|e| e.to_string())
}

/// Signs with the in-process `Signer`, verifies with plain `jsonwebtoken` and the served JWKS:
/// (token, kid).
pub async fn verify_signed_token(app: &TestApp, alg: SigningAlg) -> (String, String) {
    let now = jsonwebtoken::get_current_timestamp();
    let claims = json!({
        "iss": app.issuer, "sub": "user-1", "aud": "api", "iat": now, "nbf": now, "exp": now + 300,
    });
    let token = app
        .state
        .signer
        .sign(alg, "at+jwt", &claims)
        .expect("signed");
    let header = jsonwebtoken::decode_header(&token).expect("header");
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    let kid = header.kid.clone().expect("kid in header");

    let jwks = app.jwks().await;
    let jwk_value = jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .expect("signing key is published")
        .clone();
    let jwk: Jwk = serde_json::from_value(jwk_value).expect("JWK");
    let key = DecodingKey::from_jwk(&jwk).expect("key");
    let expected = match alg {
        SigningAlg::Es256 => jsonwebtoken::Algorithm::ES256,
        SigningAlg::Rs256 => jsonwebtoken::Algorithm::RS256,
    };
    assert_eq!(header.alg, expected);
    let mut validation = Validation::new(expected);
    validation.set_audience(&["api"]);
    validation.set_issuer(&[&app.issuer]);
    let data = jsonwebtoken::decode::<Value>(&token, &key, &validation).expect("token verifies");
    assert_eq!(data.claims["sub"], "user-1");

    // The signature covers the payload: a tampered token does not verify.
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let tampered = json!({"iss": app.issuer, "sub": "admin", "aud": "api", "exp": now + 300});
    parts[1] = URL_SAFE_NO_PAD.encode(tampered.to_string());
    assert!(jsonwebtoken::decode::<Value>(&parts.join("."), &key, &validation).is_err());
    (token, kid)
}
