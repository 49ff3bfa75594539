//! A JSON object parser that refuses duplicate member names (RFC 7515 §4, RFC 7519 §4:
//! `{"alg":"RS256","alg":"none"}` must not be read as either).

use std::fmt;

use serde::Deserializer;
use serde::de::{self, MapAccess, Visitor};
use serde_json::Value;

/// A top-level JSON object whose member names are unique.
#[derive(Debug, Clone, PartialEq)]
pub struct StrictObject(pub serde_json::Map<String, Value>);

impl<'de> serde::Deserialize<'de> for StrictObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor;

        impl<'de> Visitor<'de> for ObjectVisitor {
            type Value = StrictObject;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<StrictObject, A::Error> {
                let mut members = serde_json::Map::new();
                while let Some((name, value)) = map.next_entry::<String, Value>()? {
                    if members.contains_key(&name) {
                        return Err(de::Error::custom(format_args!("duplicate member `{name}`")));
                    }
                    members.insert(name, value);
                }
                Ok(StrictObject(members))
            }
        }

        deserializer.deserialize_map(ObjectVisitor)
    }
}

impl StrictObject {
    /// Parses bytes as one JSON object with unique member names.
    pub fn parse(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    /// A member.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0.get(name)
    }
}

#[cfg(test)]
mod tests {
    use super::StrictObject;

    #[test]
    fn duplicate_members_are_refused() {
        assert!(StrictObject::parse(br#"{"alg":"RS256","alg":"none"}"#).is_err());
        assert!(StrictObject::parse(br#"{"exp":1,"exp":2}"#).is_err());
        assert!(StrictObject::parse(br#"["not","an","object"]"#).is_err());
        let ok = StrictObject::parse(br#"{"a":{"b":1},"c":2}"#).unwrap();
        assert_eq!(ok.get("c"), Some(&serde_json::json!(2)));
    }
}
