//! Request parameters of the OAuth endpoints: `application/x-www-form-urlencoded` (query or
//! body), where a parameter sent twice is an error and unknown ones are ignored (RFC 6749 §3.1,
//! §3.2; AUTHZ-07, TEP-03). Empty values count as absent. The one exception is `resource`, which
//! RFC 8707 §2 lets a client repeat: its values are kept in order, and the caller decides.

use std::collections::HashMap;

/// Parsed parameters.
#[derive(Debug, Default)]
pub struct Params(HashMap<String, String>, Vec<String>);

/// The parameter RFC 8707 §2 allows more than once.
const RESOURCE: &str = "resource";

/// A parameter was sent more than once, or holds a NUL character (no value of ours can).
#[derive(Debug, PartialEq, Eq)]
pub struct Duplicate(pub String);

impl Params {
    /// Parses `name=value&…`; a repeated name is refused.
    pub fn parse(input: &[u8]) -> Result<Self, Duplicate> {
        let mut map = HashMap::new();
        let mut resources = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (name, value) in url::form_urlencoded::parse(input) {
            if name.contains('\0') || value.contains('\0') {
                return Err(Duplicate(name.replace('\0', "")));
            }
            if name == RESOURCE {
                if !value.is_empty() {
                    resources.push(value.into_owned());
                }
                continue;
            }
            // A repeated name is a repetition even without a value.
            if !seen.insert(name.clone().into_owned()) {
                return Err(Duplicate(name.into_owned()));
            }
            // RFC 6749 §3.1: parameters sent without a value are treated as omitted.
            if !value.is_empty() {
                map.insert(name.into_owned(), value.into_owned());
            }
        }
        Ok(Self(map, resources))
    }

    /// Every `resource` value, in order (RFC 8707 §2: the parameter may be repeated).
    pub fn resources(&self) -> &[String] {
        &self.1
    }

    /// A parameter's value (`resource`: see [`Params::resources`]).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// A parameter the request must carry: `invalid_request` naming it when missing.
    pub fn required(&self, name: &str) -> Result<&str, super::error::OAuthError> {
        self.get(name).ok_or_else(|| {
            super::error::OAuthError::invalid_request(format!("{name} is required."))
        })
    }

    /// Whether a parameter was sent.
    pub fn has(&self, name: &str) -> bool {
        self.0.contains_key(name) || (name == RESOURCE && !self.1.is_empty())
    }

    /// These parameters superseded by `values` (a request object's members, OIDC Core §6.3.3:
    /// its values win over those sent outside it; an empty one removes the parameter, as an
    /// empty value counts as absent), `resources` replacing the `resource` values when given,
    /// and the parameters named in `removed` gone (the `request` or `request_uri` that carried
    /// the object).
    pub fn superseded_by(
        &self,
        values: impl IntoIterator<Item = (String, String)>,
        resources: Option<Vec<String>>,
        removed: &[&str],
    ) -> Self {
        let mut map = self.0.clone();
        for name in removed {
            map.remove(*name);
        }
        for (name, value) in values {
            if value.is_empty() {
                map.remove(&name);
            } else {
                map.insert(name, value);
            }
        }
        let resources = resources.unwrap_or_else(|| self.1.clone());
        Self(
            map,
            resources.into_iter().filter(|r| !r.is_empty()).collect(),
        )
    }
}

/// `S256` PKCE check (RFC 7636 §4.6): `BASE64URL(SHA256(verifier)) == challenge`, in constant
/// time; a verifier outside 43–128 characters of `[A-Za-z0-9-._~]` never matches (PKCE-04).
pub fn pkce_matches(verifier: &str, challenge: &str) -> bool {
    use base64::Engine;
    use sha2::{Digest, Sha256};
    if !valid_verifier(verifier) {
        return false;
    }
    let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(Sha256::digest(verifier.as_bytes()));
    aws_lc_rs::constant_time::verify_slices_are_equal(computed.as_bytes(), challenge.as_bytes())
        .is_ok()
}

fn valid_verifier(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

/// A well-formed S256 challenge: 43 base64url characters (PKCE-04).
pub fn valid_challenge(challenge: &str) -> bool {
    challenge.len() == 43
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_parameters_are_refused_and_unknown_ones_kept_apart() {
        let params = Params::parse(b"a=1&b=two%20words&c=").unwrap();
        assert_eq!(params.get("a"), Some("1"));
        assert_eq!(params.get("b"), Some("two words"));
        assert_eq!(params.get("c"), None);
        assert_eq!(
            Params::parse(b"client_id=a&client_id=b").unwrap_err(),
            Duplicate("client_id".into())
        );
        assert!(Params::parse(b"x=&x=").is_err());
        let resources = Params::parse(b"resource=https%3A%2F%2Fa&resource=b&resource=").unwrap();
        assert_eq!(resources.resources(), ["https://a", "b"]);
        assert_eq!(resources.get("resource"), None);
    }

    #[test]
    fn a_request_object_supersedes_the_parameters_sent_outside_it() {
        let outer =
            Params::parse(b"client_id=a&state=outer&scope=openid&request=x&resource=r1").unwrap();
        let merged = outer.superseded_by(
            [
                ("state".to_owned(), "inner".to_owned()),
                ("scope".to_owned(), String::new()),
                ("nonce".to_owned(), "n".to_owned()),
            ],
            None,
            &["request"],
        );
        assert_eq!(merged.get("state"), Some("inner"));
        assert_eq!(merged.get("scope"), None);
        assert_eq!(merged.get("nonce"), Some("n"));
        assert_eq!(merged.get("client_id"), Some("a"));
        assert!(!merged.has("request"));
        assert_eq!(merged.resources(), ["r1"]);
        let replaced = outer.superseded_by([], Some(vec!["r2".into(), "r3".into()]), &[]);
        assert_eq!(replaced.resources(), ["r2", "r3"]);
    }

    #[test]
    fn pkce_s256_per_rfc_7636_appendix_b() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(valid_challenge(challenge));
        assert!(pkce_matches(verifier, challenge));
        assert!(!pkce_matches(challenge, challenge), "plain is not S256");
        assert!(!pkce_matches("short", challenge));
        assert!(!valid_challenge("too-short"));
    }
}
