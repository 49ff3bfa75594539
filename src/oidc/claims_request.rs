//! The `claims` request parameter (OpenID Connect Core §5.5): claims a client asks for one by
//! one, for userinfo and for the ID token, in addition to what its scopes stand for.
//!
//! - **Shape** (§5.5, §5.5.1): a JSON object whose optional members `userinfo` and `id_token`
//!   map a claim name to `null` or to `{"essential": bool, "value": …, "values": […]}`. Other
//!   top-level members, claim names this server does not know, and unknown members of a claim's
//!   object are ignored (§5.5: "any members used that are not understood MUST be ignored"). Not
//!   JSON, not an object, a known claim asked with the wrong shape, or more than
//!   [`MAX_CLAIMS_PARAMETER`] bytes: [`ClaimsError::Malformed`] (`invalid_request`).
//! - **Release**: userinfo returns the claims of the granted scopes plus those of `userinfo`; the
//!   ID token carries those of `id_token` (never the scopes' claims: every ID token here comes
//!   with an access token, §5.4). A requested claim that has no value is left out, essential or
//!   not (§5.5.1: not returning it is not an error).
//! - **`sub` with a `value`** (§5.5.1): only the user with that id may be answered: a session of
//!   another user does not count (`login_required` under `prompt=none`, else the login page), and
//!   a sign-in as another user is refused. `values` for `sub` is not defined and is ignored.
//! - **`acr` asked `essential` with `value` or `values`** (§5.5.1.1): the classes this server
//!   offers are [`ACR_PASSWORD`] and [`ACR_MFA`]; when only the latter is among them the user
//!   signs in with a second factor (step-up); when neither is the request fails with
//!   `unmet_authentication_requirements` (OpenID Connect Core Error Code
//!   unmet_authentication_requirements 1.0). Asked without `essential` it is voluntary, and the
//!   ID token carries what the sign-in met, as for `acr_values`.
//! - Other claims' `value`/`values` are informational: the stored value is returned.
//! - **Kept** as a compact JSON object ([`RequestedClaims::to_stored`]: known names only, so
//!   small) with the pending request, its code, the grant's refresh family and the access token
//!   the code issued, so refreshed ID tokens and userinfo keep honouring it.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::standard_claims;
use super::tokens::{ACR_MFA, ACR_PASSWORD};
use crate::verify::Scope;

/// Longest `claims` parameter accepted, in bytes of its JSON text: every known claim asked for
/// in both members with a long `value` fits many times over.
pub const MAX_CLAIMS_PARAMETER: usize = 4096;

/// Why a `claims` parameter was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClaimsError {
    /// Not the shape of §5.5 (`invalid_request`), with a description safe to send (ASCII,
    /// no quote or backslash: RFC 6749 §4.1.2.1).
    Malformed(&'static str),
    /// `acr` asked essential with values this server cannot meet
    /// (`unmet_authentication_requirements`).
    UnmetAcr,
}

/// The claims an authorization request asked for individually (OIDC Core §5.5), as kept with
/// the grant: names of claims this server can return, and the `sub` the request is limited to.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestedClaims {
    /// User claims asked for in userinfo (`claims.userinfo`).
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub userinfo: BTreeSet<String>,
    /// User claims asked for in the ID token (`claims.id_token`).
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub id_token: BTreeSet<String>,
    /// The user id `sub` was asked `value` of (in either member): only that user may be
    /// answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// The request needs a multi-factor sign-in ([`ACR_MFA`]): asked by an essential `acr`
    /// that only it meets (§5.5.1.1), by `acr_values` (§3.1.2.1, see
    /// [`crate::oidc::authorize::checks::check_acr_values`]) or by the second-factor policy of
    /// the deployment or the client. A session signed in with a password only does not count.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub mfa: bool,
}

/// One claim's request (§5.5.1): `null`, or an object of which these members count.
#[derive(Default)]
struct ClaimAsk<'a> {
    essential: bool,
    value: Option<&'a Value>,
    values: Option<&'a [Value]>,
}

impl<'a> ClaimAsk<'a> {
    fn parse(request: &'a Value) -> Result<Self, ClaimsError> {
        let entries = match request {
            Value::Null => return Ok(Self::default()),
            Value::Object(entries) => entries,
            _ => {
                return Err(ClaimsError::Malformed(
                    "claims: each claim is requested with null or a JSON object.",
                ));
            }
        };
        let essential = match entries.get("essential") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(essential)) => *essential,
            Some(_) => {
                return Err(ClaimsError::Malformed(
                    "claims: essential must be true or false.",
                ));
            }
        };
        let values = match entries.get("values") {
            None | Some(Value::Null) => None,
            Some(Value::Array(values)) => Some(values.as_slice()),
            Some(_) => {
                return Err(ClaimsError::Malformed("claims: values must be an array."));
            }
        };
        let value = entries.get("value").filter(|value| !value.is_null());
        Ok(Self {
            essential,
            value,
            values,
        })
    }

    /// Whether `text` meets the request: no `value`/`values`, or among them.
    fn accepts(&self, text: &str) -> bool {
        if self.value.is_none() && self.values.is_none() {
            return true;
        }
        let is = |value: &Value| value.as_str() == Some(text);
        self.value.is_some_and(is) || self.values.is_some_and(|values| values.iter().any(is))
    }
}

impl RequestedClaims {
    /// Parses a `claims` parameter (see the module documentation for what is refused and what
    /// is ignored).
    ///
    /// # Errors
    /// [`ClaimsError::Malformed`] for a parameter that is not the shape of §5.5 or too long;
    /// [`ClaimsError::UnmetAcr`] for an essential `acr` this server cannot meet.
    pub fn parse(text: &str) -> Result<Self, ClaimsError> {
        if text.len() > MAX_CLAIMS_PARAMETER {
            return Err(ClaimsError::Malformed("claims is too long."));
        }
        let not_an_object = ClaimsError::Malformed("claims must be a JSON object (OIDC Core 5.5).");
        let Ok(Value::Object(top)) = serde_json::from_str::<Value>(text) else {
            return Err(not_an_object);
        };
        let mut requested = Self::default();
        for member in ["userinfo", "id_token"] {
            let entries = match top.get(member) {
                None | Some(Value::Null) => continue,
                Some(Value::Object(entries)) => entries,
                Some(_) => {
                    return Err(ClaimsError::Malformed(
                        "claims: userinfo and id_token must be JSON objects.",
                    ));
                }
            };
            for (name, ask) in entries {
                let user_claim = standard_claims::user_claim_names().any(|known| known == name);
                if !user_claim && !["sub", "acr", "auth_time"].contains(&name.as_str()) {
                    // §5.5: a claim this server does not know is ignored.
                    continue;
                }
                let ask = ClaimAsk::parse(ask)?;
                match name.as_str() {
                    "sub" => requested.limit_subject(ask.value)?,
                    // §5.5.1.1: an essential acr we cannot meet fails the request; a voluntary
                    // one is answered with what the sign-in met.
                    "acr" if ask.essential && !ask.accepts(ACR_PASSWORD) => {
                        // Only the multi-factor class meets it: a step-up.
                        if !ask.accepts(ACR_MFA) {
                            return Err(ClaimsError::UnmetAcr);
                        }
                        requested.mfa = true;
                    }
                    // Always in the ID token (as are acr and sub).
                    "acr" | "auth_time" => {}
                    _ if member == "userinfo" => {
                        requested.userinfo.insert(name.clone());
                    }
                    _ => {
                        requested.id_token.insert(name.clone());
                    }
                }
            }
        }
        Ok(requested)
    }

    /// Records a `sub` `value`: a string, the same in both members.
    fn limit_subject(&mut self, value: Option<&Value>) -> Result<(), ClaimsError> {
        let Some(value) = value else {
            return Ok(());
        };
        let Value::String(sub) = value else {
            return Err(ClaimsError::Malformed(
                "claims: the value of sub must be a string.",
            ));
        };
        if self.sub.as_ref().is_some_and(|asked| asked != sub) {
            return Err(ClaimsError::Malformed(
                "claims: two different sub values were requested.",
            ));
        }
        self.sub = Some(sub.clone());
        Ok(())
    }

    /// Nothing asked for.
    pub fn is_empty(&self) -> bool {
        self.userinfo.is_empty() && self.id_token.is_empty() && self.sub.is_none() && !self.mfa
    }

    /// Whether the user `user_id` may be answered: any user, unless a `sub` `value` was asked.
    pub fn allows_subject(&self, user_id: &str) -> bool {
        self.sub.as_deref().is_none_or(|sub| sub == user_id)
    }

    /// The claims asked for (in either member) that `scope` does not stand for: what the user
    /// must approve beyond the scopes, in name order.
    pub fn beyond_scope(&self, scope: &Scope) -> BTreeSet<&str> {
        let covered = standard_claims::for_scope(scope);
        self.userinfo
            .iter()
            .chain(&self.id_token)
            .map(String::as_str)
            .filter(|name| !covered.contains(name))
            .collect()
    }

    /// The stored form: compact JSON, `None` when nothing was asked (the column stays NULL).
    pub fn to_stored(&self) -> Option<String> {
        if self.is_empty() {
            return None;
        }
        serde_json::to_string(self).ok()
    }

    /// Reads the stored form back (`None`: nothing was asked).
    ///
    /// # Errors
    /// A stored text that is not this type's JSON (a corrupt row).
    pub fn from_stored(stored: Option<&str>) -> Result<Self, serde_json::Error> {
        stored.map_or_else(|| Ok(Self::default()), serde_json::from_str)
    }

    /// [`Self::from_stored`] where reading less is safe (which claims to release): a corrupt
    /// row releases no individually requested claim, and is logged.
    pub fn released_from(stored: Option<&str>) -> Self {
        Self::from_stored(stored).unwrap_or_else(|error| {
            tracing::error!(%error, "stored claims request does not parse: none released");
            Self::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<RequestedClaims, ClaimsError> {
        RequestedClaims::parse(text)
    }

    fn names(set: &BTreeSet<String>) -> Vec<&str> {
        set.iter().map(String::as_str).collect()
    }

    #[test]
    fn members_name_the_claims_for_userinfo_and_for_the_id_token() {
        let asked = parse(
            r#"{"userinfo":{"name":{"essential":true},"email":null,"nickname":{"value":"x"}},
                "id_token":{"email":{"essential":false},"auth_time":{"essential":true},
                            "acr":null,"picture":{"values":["a","b"]}}}"#,
        )
        .unwrap();
        assert_eq!(names(&asked.userinfo), ["email", "name", "nickname"]);
        assert_eq!(names(&asked.id_token), ["email", "picture"]);
        assert_eq!(asked.sub, None);
        let openid = Scope::parse("openid email").unwrap();
        assert_eq!(
            asked.beyond_scope(&openid).into_iter().collect::<Vec<_>>(),
            ["name", "nickname", "picture"]
        );
    }

    #[test]
    fn unknown_members_and_claims_are_ignored() {
        let asked = parse(
            r#"{"userinfo":{"verified_claims":[1,2],"x-custom":7},"other":true,
                "id_token":{"name":{"essential":true,"purpose":"p"}}}"#,
        )
        .unwrap();
        assert!(asked.userinfo.is_empty());
        assert_eq!(names(&asked.id_token), ["name"]);
        assert_eq!(parse("{}").unwrap(), RequestedClaims::default());
        assert_eq!(parse(r#"{"userinfo":null}"#).unwrap().to_stored(), None);
    }

    #[test]
    fn malformed_parameters_are_invalid_requests() {
        for bad in [
            "",
            "not json",
            "[]",
            "\"userinfo\"",
            r#"{"userinfo":[]}"#,
            r#"{"id_token":"name"}"#,
            r#"{"userinfo":{"name":true}}"#,
            r#"{"userinfo":{"name":{"essential":"yes"}}}"#,
            r#"{"userinfo":{"name":{"values":"a"}}}"#,
            r#"{"id_token":{"sub":{"value":42}}}"#,
            r#"{"id_token":{"sub":{"value":"a"}},"userinfo":{"sub":{"value":"b"}}}"#,
            r#"{"userinfo":{"name":null}"#,
        ] {
            assert!(
                matches!(parse(bad), Err(ClaimsError::Malformed(_))),
                "{bad}"
            );
        }
        let long = format!(
            r#"{{"userinfo":{{"name":{{"value":"{}"}}}}}}"#,
            "a".repeat(MAX_CLAIMS_PARAMETER)
        );
        assert_eq!(
            parse(&long),
            Err(ClaimsError::Malformed("claims is too long."))
        );
    }

    #[test]
    fn error_descriptions_use_only_the_characters_rfc_6749_allows() {
        for bad in ["x", r#"{"userinfo":[]}"#, r#"{"userinfo":{"name":1}}"#] {
            let Err(ClaimsError::Malformed(text)) = parse(bad) else {
                panic!("{bad}");
            };
            assert!(
                text.bytes()
                    .all(|b| (0x20..=0x7e).contains(&b) && b != b'"' && b != b'\\'),
                "{text}"
            );
        }
    }

    #[test]
    fn an_essential_acr_must_be_one_we_offer() {
        for unmet in [
            r#"{"id_token":{"acr":{"essential":true,"value":"urn:mace:incommon:iap:silver"}}}"#,
            r#"{"id_token":{"acr":{"essential":true,"values":["a","b"]}}}"#,
            r#"{"userinfo":{"acr":{"essential":true,"value":"a"}}}"#,
        ] {
            assert_eq!(parse(unmet), Err(ClaimsError::UnmetAcr), "{unmet}");
        }
        for met in [
            r#"{"id_token":{"acr":{"essential":true}}}"#,
            r#"{"id_token":{"acr":{"essential":true,"values":["a","urn:portcullis:acr:password"]}}}"#,
            r#"{"id_token":{"acr":{"value":"a"}}}"#,
            r#"{"id_token":{"acr":{"essential":false,"values":["a"]}}}"#,
        ] {
            assert!(parse(met).unwrap().is_empty(), "{met}");
        }
    }

    #[test]
    fn a_sub_value_limits_the_user() {
        let asked =
            parse(r#"{"id_token":{"sub":{"value":"u-1"}},"userinfo":{"sub":null}}"#).unwrap();
        assert!(asked.allows_subject("u-1") && !asked.allows_subject("u-2"));
        assert!(RequestedClaims::default().allows_subject("anyone"));
        let same =
            parse(r#"{"id_token":{"sub":{"value":"u-1"}},"userinfo":{"sub":{"value":"u-1"}}}"#)
                .unwrap();
        assert_eq!(same.sub.as_deref(), Some("u-1"));
    }

    #[test]
    fn the_stored_form_reads_back() {
        let asked =
            parse(r#"{"userinfo":{"name":null},"id_token":{"email":null,"sub":{"value":"u"}}}"#)
                .unwrap();
        let stored = asked.to_stored().unwrap();
        assert_eq!(
            stored,
            r#"{"userinfo":["name"],"id_token":["email"],"sub":"u"}"#
        );
        assert_eq!(RequestedClaims::from_stored(Some(&stored)).unwrap(), asked);
        assert_eq!(
            RequestedClaims::from_stored(None).unwrap(),
            RequestedClaims::default()
        );
        assert!(RequestedClaims::from_stored(Some("nope")).is_err());
        assert_eq!(
            RequestedClaims::released_from(Some("nope")),
            RequestedClaims::default()
        );
    }
}
