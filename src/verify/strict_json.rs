//! One allocation-light pass over a JWS header or JWT claims set: refuses duplicate member
//! names (RFC 7515 §4, RFC 7519 §4: `{"alg":"RS256","alg":"none"}` must not be read as either)
//! and picks out the few members the verifier looks at.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::Value;

/// A member name, borrowed from the input unless it had escapes.
enum Name<'de> {
    Borrowed(&'de str),
    Owned(String),
}

impl Name<'_> {
    fn as_str(&self) -> &str {
        match self {
            Self::Borrowed(s) => s,
            Self::Owned(s) => s,
        }
    }
}

impl<'de> de::Deserialize<'de> for Name<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NameVisitor;
        impl<'de> Visitor<'de> for NameVisitor {
            type Value = Name<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a member name")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Name<'de>, E> {
                Ok(Name::Borrowed(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Name<'de>, E> {
                Ok(Name::Owned(v.to_owned()))
            }
        }
        deserializer.deserialize_str(NameVisitor)
    }
}

struct Scanner<'w, const N: usize> {
    wanted: &'w [&'w str; N],
}

impl<'de, const N: usize> DeserializeSeed<'de> for Scanner<'_, N> {
    type Value = [Option<Value>; N];

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de, const N: usize> Visitor<'de> for Scanner<'_, N> {
    type Value = [Option<Value>; N];

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found: [Option<Value>; N] = std::array::from_fn(|_| None);
        let mut names: Vec<Name<'de>> = Vec::with_capacity(16);
        while let Some(name) = map.next_key::<Name<'de>>()? {
            match self.wanted.iter().position(|w| *w == name.as_str()) {
                Some(i) => found[i] = Some(map.next_value::<Value>()?),
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            names.push(name);
        }
        names.sort_unstable_by(|a, b| a.as_str().cmp(b.as_str()));
        if let Some(pair) = names.windows(2).find(|w| w[0].as_str() == w[1].as_str()) {
            return Err(de::Error::custom(format_args!(
                "duplicate member `{}`",
                pair[0].as_str()
            )));
        }
        Ok(found)
    }
}

/// Parses `bytes` as one JSON object with unique member names and returns the values of the
/// `wanted` members (in the same order); other members are skipped without being built.
pub fn scan<const N: usize>(
    bytes: &[u8],
    wanted: &[&str; N],
) -> Result<[Option<Value>; N], serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let found = Scanner { wanted }.deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(found)
}

/// A JSON value built with unique member names in every object, at any depth.
struct StrictValue(Value);

impl<'de> de::Deserialize<'de> for StrictValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = StrictValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::Bool(v)))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::from(v)))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::from(v)))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::from(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::String(v.to_owned())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::String(v)))
    }

    fn visit_unit<E: de::Error>(self) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::Null))
    }

    fn visit_none<E: de::Error>(self) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::Null))
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<StrictValue, D::Error> {
        de::Deserialize::deserialize(deserializer)
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<StrictValue, A::Error> {
        let mut items = Vec::new();
        while let Some(StrictValue(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(StrictValue(Value::Array(items)))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<StrictValue, A::Error> {
        let mut object = serde_json::Map::new();
        while let Some(name) = map.next_key::<String>()? {
            let StrictValue(value) = map.next_value()?;
            if object.insert(name.clone(), value).is_some() {
                return Err(de::Error::custom(format_args!("duplicate member `{name}`")));
            }
        }
        Ok(StrictValue(Value::Object(object)))
    }
}

/// Parses `bytes` as one JSON object whose objects, at every depth, have unique member names
/// (RFC 7519 §4, RFC 8259 §4: a name sent twice is refused rather than read as either value);
/// nothing may follow it. Nesting is bounded by serde_json's recursion limit (128).
pub fn object(bytes: &[u8]) -> Result<serde_json::Map<String, Value>, serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let StrictValue(value) = de::Deserialize::deserialize(&mut deserializer)?;
    deserializer.end()?;
    match value {
        Value::Object(object) => Ok(object),
        _ => Err(de::Error::custom("not a JSON object")),
    }
}

#[cfg(test)]
mod tests {
    use super::{object, scan};

    #[test]
    fn objects_refuse_duplicates_at_every_depth() {
        let parsed = object(br#"{"a":1,"b":{"c":[1,{"d":true}]},"e":null}"#).unwrap();
        assert_eq!(parsed["b"]["c"][1]["d"], serde_json::json!(true));
        assert!(object(br#"{"a":1,"a":2}"#).is_err());
        assert!(object(br#"{"a":{"b":1,"b":2}}"#).is_err());
        assert!(object(br#"{"a":[{"b":1,"\u0062":2}]}"#).is_err());
        assert!(object(br#"[1]"#).is_err());
        assert!(object(br#"{"a":1} {"b":2}"#).is_err());
        let deep = "[".repeat(10_000);
        assert!(object(format!("{{\"a\":{deep}").as_bytes()).is_err());
    }

    #[test]
    fn duplicate_members_are_refused() {
        assert!(scan(br#"{"alg":"RS256","alg":"none"}"#, &["alg"]).is_err());
        assert!(
            scan(br#"{"exp":1,"exp":2}"#, &["alg"]).is_err(),
            "even when not wanted"
        );
        assert!(
            scan(br#"{"a\u0062":1,"ab":2}"#, &["ab"]).is_err(),
            "escaped names compare decoded"
        );
        assert!(scan(br#"["not","an","object"]"#, &["a"]).is_err());
        assert!(scan(br#"{"a":1} trailing"#, &["a"]).is_err());
        let [c, missing] = scan(br#"{"a":{"b":1},"c":2}"#, &["c", "z"]).unwrap();
        assert_eq!(c, Some(serde_json::json!(2)));
        assert_eq!(missing, None);
    }
}
