//! The claims of the tokens this server signs: one access-token type (RFC 9068) and one
//! ID-token type (OIDC Core §2), used to issue them and to read them back (introspection,
//! userinfo, revocation, `id_token_hint`), and the claims of signed userinfo responses (OIDC
//! Core §5.3.2), which are only issued.
//!
//! Fields are `Cow`s so that issuing borrows everything it can (no copies on the
//! `client_credentials` hot path) while reading owns its data. The field order is the order of
//! the JSON members in issued tokens.

use std::borrow::Cow;
use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::verify::{Actor, Scope};

/// The claims of an access token (RFC 9068 §2.2): `iss sub aud exp iat nbf jti client_id
/// scope`, then `auth_time` when a user authenticated at an OAuth client, `roles` for
/// first-party tokens, and `act` for tokens of token exchange (RFC 8693 §4.1).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessClaims<'a> {
    /// Issuer.
    pub iss: Cow<'a, str>,
    /// Subject: the user id, or the client id for `client_credentials`.
    pub sub: Cow<'a, str>,
    /// Audience: one resource server.
    pub aud: Cow<'a, str>,
    /// Expiry (seconds since the epoch).
    pub exp: i64,
    /// Issued at.
    pub iat: i64,
    /// Not before (= `iat`).
    pub nbf: i64,
    /// Token id (the key of its record, see `accounts::current`).
    pub jti: Cow<'a, str>,
    /// The client it was issued to (`portcullis` for the first-party JSON API).
    pub client_id: Cow<'a, str>,
    /// Granted scope.
    #[serde(default)]
    pub scope: Cow<'a, Scope>,
    /// When the user authenticated (OAuth grants for a user).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    /// How the user signed in: the class (`urn:portcullis:acr:password` or
    /// `urn:portcullis:acr:mfa`), user tokens only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<Cow<'a, str>>,
    /// How the user signed in: RFC 8176 methods (`pwd`; `pwd otp mfa`), user tokens only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amr: Option<Vec<Cow<'a, str>>>,
    /// The user's roles when the token was issued (first-party tokens only; endpoints of this
    /// server read roles from the database instead).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Cow<'a, [String]>>,
    /// The current actor (RFC 8693 §4.1), tokens of token exchange only: who acts for `sub`,
    /// with the earlier actors of the chain nested inside.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Cow<'a, Actor>>,
}

impl AccessClaims<'_> {
    /// Whether the token was issued to a client for itself (`client_credentials`: `sub` is the
    /// client).
    pub fn is_client_token(&self) -> bool {
        self.sub == self.client_id
    }
}

/// The claims of an ID token (OIDC Core §2, §3.1.3.6). Every ID token this server issues comes
/// with an access token, so the claims of the `profile`, `email`, `address` and `phone` scopes
/// are not in it but in userinfo (OIDC Core §5.4) — unless the `claims` parameter asked for them
/// here (§5.5): those follow the registered claims, in [`IdClaims::user_claims`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdClaims<'a> {
    /// Issuer.
    pub iss: Cow<'a, str>,
    /// Subject (the user id).
    pub sub: Cow<'a, str>,
    /// Audience: the client.
    pub aud: Cow<'a, str>,
    /// Expiry.
    pub exp: i64,
    /// Issued at.
    pub iat: i64,
    /// When the user authenticated.
    pub auth_time: i64,
    /// The authorization request's nonce (not on refresh, OIDC Core §12.2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<Cow<'a, str>>,
    /// Left half of the SHA-256 of the access token issued with it, base64url.
    pub at_hash: String,
    /// The browser session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<Cow<'a, str>>,
    /// Authorized party: the client.
    pub azp: Cow<'a, str>,
    /// Authentication context class reference (OIDC Core §2): [`ACR_PASSWORD`] for every
    /// session (absent in tokens issued before it existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<Cow<'a, str>>,
    /// Authentication methods (RFC 8176 §2): `["pwd"]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amr: Option<Vec<Cow<'a, str>>>,
    /// User claims the `claims` parameter asked for in the ID token (OIDC Core §5.5), by name
    /// (standard claims only, never one of the members above); read back, any other member.
    #[serde(flatten)]
    pub user_claims: BTreeMap<String, Value>,
}

/// The claims of a signed userinfo response (OIDC Core §5.3.2): `iss` (this issuer), `aud`
/// (the client the access token was issued to), `iat`, then the userinfo claims — `sub` and
/// the standard claims released (OIDC Core §5.1), none of which is one of the members before
/// them. No `exp` or `nonce`: the response is a reply to one request, not a token to keep.
#[derive(Debug, Serialize)]
pub struct UserInfoClaims<'a> {
    /// Issuer.
    pub iss: Cow<'a, str>,
    /// Audience: the client.
    pub aud: Cow<'a, str>,
    /// Issued at (seconds since the epoch).
    pub iat: i64,
    /// The userinfo claims, by name.
    #[serde(flatten)]
    pub user_claims: &'a BTreeMap<String, Value>,
}

/// The single-factor class (discovery `acr_values_supported`): a password sign-in at the hosted
/// login page or the JSON API (NIST SP 800-63B AAL1).
pub const ACR_PASSWORD: &str = "urn:portcullis:acr:password";

/// The RFC 8176 method of a password sign-in.
pub const AMR_PASSWORD: &str = "pwd";

/// The multi-factor class (discovery `acr_values_supported`): a password and a second factor
/// (a TOTP code or a recovery code) at the hosted login page or the JSON API (NIST SP 800-63B
/// AAL2). Requested with `acr_values` or an essential `acr` claim, it makes a password-only
/// session sign in again with the second factor (step-up).
pub const ACR_MFA: &str = "urn:portcullis:acr:mfa";

/// The `acr` of a sign-in by the methods `amr` (RFC 8176, space-separated).
pub fn acr_of(amr: &str) -> &'static str {
    if crate::accounts::factors::is_multi_factor(amr) {
        ACR_MFA
    } else {
        ACR_PASSWORD
    }
}

/// The `amr` claim of the methods `amr` as stored (space-separated).
pub fn amr_claim(amr: &str) -> Vec<Cow<'_, str>> {
    amr.split(' ')
        .filter(|m| !m.is_empty())
        .map(Cow::Borrowed)
        .collect()
}

/// `at_hash` (OIDC Core §3.1.3.6): the left half of the SHA-256 of the access token (both of our
/// algorithms hash with SHA-256), base64url.
pub fn at_hash(access_token: &str) -> String {
    let digest = Sha256::digest(access_token.as_bytes());
    URL_SAFE_NO_PAD.encode(&digest[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(text: &str) -> Scope {
        Scope::parse(text).expect("scope")
    }

    // The members and their order are those tokens have always had: resource servers and the
    // test suite read them, and the JSON must not change with the refactoring.
    #[test]
    fn access_claims_serialise_as_issued_tokens_always_did() {
        let roles = vec!["admin".to_owned()];
        let first_party = scope("openid profile email");
        let user = AccessClaims {
            iss: "https://id.example".into(),
            sub: "u-1".into(),
            aud: "https://id.example".into(),
            exp: 1_000_900,
            iat: 1_000_000,
            nbf: 1_000_000,
            jti: "j-1".into(),
            client_id: "portcullis".into(),
            scope: Cow::Borrowed(&first_party),
            auth_time: None,
            acr: None,
            amr: None,
            roles: Some(Cow::Borrowed(&roles)),
            act: None,
        };
        assert_eq!(
            serde_json::to_string(&user).expect("json"),
            r#"{"iss":"https://id.example","sub":"u-1","aud":"https://id.example","exp":1000900,"iat":1000000,"nbf":1000000,"jti":"j-1","client_id":"portcullis","scope":"openid profile email","roles":["admin"]}"#
        );
        let empty = Scope::empty();
        let client = AccessClaims {
            sub: "svc".into(),
            client_id: "svc".into(),
            aud: "https://api.example".into(),
            scope: Cow::Borrowed(&empty),
            roles: None,
            auth_time: None,
            ..user.clone()
        };
        assert_eq!(
            serde_json::to_string(&client).expect("json"),
            r#"{"iss":"https://id.example","sub":"svc","aud":"https://api.example","exp":1000900,"iat":1000000,"nbf":1000000,"jti":"j-1","client_id":"svc","scope":""}"#
        );
        assert!(client.is_client_token() && !user.is_client_token());
        let oauth = AccessClaims {
            auth_time: Some(999_000),
            roles: None,
            ..user
        };
        let text = serde_json::to_string(&oauth).expect("json");
        assert!(text.ends_with(r#""scope":"openid profile email","auth_time":999000}"#));
        let back: AccessClaims<'static> = serde_json::from_str(&text).expect("reads back");
        assert_eq!(back.scope.as_str(), "openid profile email");
        assert_eq!(back.auth_time, Some(999_000));
    }

    #[test]
    fn id_claims_serialise_as_issued_tokens_always_did_less_the_scope_claims() {
        let claims = IdClaims {
            iss: "https://id.example".into(),
            sub: "u-1".into(),
            aud: "web".into(),
            exp: 1_000_900,
            iat: 1_000_000,
            auth_time: 999_000,
            nonce: Some("n".into()),
            at_hash: at_hash("token"),
            sid: Some("s".into()),
            azp: "web".into(),
            acr: Some(ACR_PASSWORD.into()),
            amr: Some(vec![AMR_PASSWORD.into()]),
            user_claims: BTreeMap::new(),
        };
        assert_eq!(
            serde_json::to_string(&claims).expect("json"),
            format!(
                r#"{{"iss":"https://id.example","sub":"u-1","aud":"web","exp":1000900,"iat":1000000,"auth_time":999000,"nonce":"n","at_hash":"{}","sid":"s","azp":"web","acr":"urn:portcullis:acr:password","amr":["pwd"]}}"#,
                at_hash("token")
            )
        );
    }

    #[test]
    fn userinfo_claims_are_the_issuer_audience_and_time_then_the_user_claims() {
        let mut user_claims = BTreeMap::new();
        user_claims.insert("sub".to_owned(), Value::from("u-1"));
        user_claims.insert("email".to_owned(), Value::from("u@example.com"));
        let claims = UserInfoClaims {
            iss: "https://id.example".into(),
            aud: "web".into(),
            iat: 1_000_000,
            user_claims: &user_claims,
        };
        assert_eq!(
            serde_json::to_string(&claims).expect("json"),
            r#"{"iss":"https://id.example","aud":"web","iat":1000000,"email":"u@example.com","sub":"u-1"}"#
        );
    }

    #[test]
    fn requested_user_claims_follow_the_registered_ones_and_read_back() {
        let mut user_claims = BTreeMap::new();
        user_claims.insert("email".to_owned(), Value::from("u@example.com"));
        user_claims.insert("email_verified".to_owned(), Value::Bool(true));
        let claims = IdClaims {
            iss: "https://id.example".into(),
            sub: "u-1".into(),
            aud: "web".into(),
            exp: 1_000_900,
            iat: 1_000_000,
            auth_time: 999_000,
            nonce: None,
            at_hash: "h".into(),
            sid: None,
            azp: "web".into(),
            acr: None,
            amr: None,
            user_claims,
        };
        let text = serde_json::to_string(&claims).expect("json");
        assert!(
            text.ends_with(r#""azp":"web","email":"u@example.com","email_verified":true}"#),
            "{text}"
        );
        let back: IdClaims<'static> = serde_json::from_str(&text).expect("reads back");
        assert_eq!(back.sub, "u-1");
        assert_eq!(back.user_claims.len(), 2);
        assert_eq!(back.user_claims["email"], "u@example.com");
    }
}
