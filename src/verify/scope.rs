//! OAuth scopes (RFC 6749 §3.3): a space-delimited list of scope tokens, parsed once at the
//! boundary into a [`Scope`] and asked questions (`contains`, `is_subset_of`) everywhere else.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A scope value: scope tokens in the order first given, without duplicates, joined by one
/// space — the form that is issued, stored and compared. The empty scope is the empty string.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Scope(String);

/// A scope value that is not a list of RFC 6749 §3.3 scope tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("scope tokens are printable ASCII other than `\"` and `\\`, separated by spaces")]
pub struct InvalidScope;

/// RFC 6749 §3.3: `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`.
fn valid_token(token: &str) -> bool {
    !token.is_empty()
        && token
            .bytes()
            .all(|b| matches!(b, 0x21 | 0x23..=0x5B | 0x5D..=0x7E))
}

/// The tokens of a space-delimited scope text, empty tokens (repeated spaces) skipped. The one
/// place a scope text is split; prefer [`Scope::parse`] where the text can be refused.
pub fn tokens(text: &str) -> impl Iterator<Item = &str> {
    text.split(' ').filter(|token| !token.is_empty())
}

impl Scope {
    /// Parses a space-delimited scope: repeated spaces are tolerated and duplicates dropped
    /// (the first occurrence keeps its place); a token with a character outside RFC 6749 §3.3
    /// is refused. Costs one allocation.
    pub fn parse(text: &str) -> Result<Self, InvalidScope> {
        let mut canonical = true;
        for (i, token) in tokens(text).enumerate() {
            if !valid_token(token) {
                return Err(InvalidScope);
            }
            if tokens(text).take(i).any(|earlier| earlier == token) {
                canonical = false;
            }
        }
        if canonical && !text.starts_with(' ') && !text.ends_with(' ') && !text.contains("  ") {
            return Ok(Self(text.to_owned()));
        }
        let mut joined = String::with_capacity(text.len());
        for token in tokens(text) {
            if !tokens(&joined).any(|seen| seen == token) {
                if !joined.is_empty() {
                    joined.push(' ');
                }
                joined.push_str(token);
            }
        }
        Ok(Self(joined))
    }

    /// The empty scope.
    pub fn empty() -> Self {
        Self::default()
    }

    /// The space-delimited text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The text, by value.
    pub fn into_string(self) -> String {
        self.0
    }

    /// The scope tokens, in order.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        tokens(&self.0)
    }

    /// Whether no scope is granted.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `token` is granted.
    pub fn contains(&self, token: &str) -> bool {
        self.iter().any(|granted| granted == token)
    }

    /// Whether every token of this scope is also in `other` (narrowing, RFC 6749 §6).
    pub fn is_subset_of(&self, other: &Scope) -> bool {
        self.iter().all(|token| other.contains(token))
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Scope({:?})", self.0)
    }
}

impl PartialEq<str> for Scope {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for Scope {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl Serialize for Scope {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Scope {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_text_is_kept_as_given() {
        let scope = Scope::parse("openid profile email").expect("valid");
        assert_eq!(scope, "openid profile email");
        assert_eq!(
            scope.iter().collect::<Vec<_>>(),
            ["openid", "profile", "email"]
        );
        assert!(scope.contains("profile"));
        assert!(!scope.contains("prof"));
        assert!(Scope::parse("").expect("valid").is_empty());
    }

    #[test]
    fn extra_spaces_and_duplicates_are_dropped() {
        assert_eq!(
            Scope::parse("  openid  openid email ").expect("valid"),
            "openid email"
        );
        assert_eq!(Scope::parse(" ").expect("valid"), "");
    }

    #[test]
    fn tokens_outside_rfc_6749_are_refused() {
        for text in ["open\"id", "a\\b", "tab\there", "caf\u{e9}", "nul\0"] {
            assert_eq!(Scope::parse(text), Err(InvalidScope), "{text:?}");
        }
        assert!(Scope::parse("orders:read https://api.example.com/x").is_ok());
    }

    #[test]
    fn subsets() {
        let granted = Scope::parse("openid email").expect("valid");
        assert!(Scope::parse("email").expect("valid").is_subset_of(&granted));
        assert!(Scope::empty().is_subset_of(&granted));
        assert!(
            !Scope::parse("email profile")
                .expect("valid")
                .is_subset_of(&granted)
        );
    }

    #[test]
    fn serialises_as_its_text() {
        let scope = Scope::parse("a b").expect("valid");
        assert_eq!(serde_json::to_string(&scope).expect("json"), "\"a b\"");
        let back: Scope = serde_json::from_str("\"b  a b\"").expect("json");
        assert_eq!(back, "b a");
        assert!(serde_json::from_str::<Scope>("\"a\\\\b\"").is_err());
    }
}
