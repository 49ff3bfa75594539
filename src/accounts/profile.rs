//! A user's standard claims (OIDC Core §5.1) besides `sub`, `preferred_username` (the username),
//! `email` (the account's address) and `updated_at` (the row's): validated when written, stored
//! as one JSON object per user (`user_claims`), absent when unset — never `""`.
//!
//! Rules (each refusal is an [`InvalidField`] naming the claim):
//! - text claims (`name`, `given_name`, `family_name`, `middle_name`, `nickname`, `gender`):
//!   trimmed, at most 255 characters (`gender` 64), no control characters;
//! - `profile`, `picture`, `website`: absolute `http`/`https` URLs with a host, at most 2048
//!   bytes;
//! - `birthdate`: `YYYY-MM-DD`, `0000-MM-DD` (year withheld) or `YYYY` (§5.1), a real date, year
//!   1850 or later and not in the future;
//! - `zoneinfo`: a name of the IANA time-zone database (`Europe/Paris`), as chrono-tz has it;
//! - `locale`: a valid BCP 47 language tag (RFC 5646 with the IANA subtag registry, `fr-CA`);
//! - `phone_number`: E.164 (`+` and 2–15 digits, the first not 0), optionally `;ext=` and 1–10
//!   digits (RFC 3966, as §5.1 allows);
//! - `address` (§5.1.1): an object of `formatted`, `street_address` (these two may hold line
//!   breaks), `locality`, `region`, `postal_code`, `country`, each a string of at most 255
//!   characters; an object with no member left is no address;
//! - `email_verified`, `phone_number_verified`: booleans, set by an administrator only (a user
//!   changing the address or number resets its flag).
//!
//! `""`, blank strings and `null` clear a claim.

use std::str::FromStr;

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::names::InvalidField;

/// The §5.1.1 address claim; members absent when unset.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Address {
    /// Full mailing address, formatted for display; may contain line breaks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub formatted: Option<String>,
    /// Street address; may contain line breaks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub street_address: Option<String>,
    /// City or locality.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locality: Option<String>,
    /// State, province, prefecture or region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Zip or postal code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
    /// Country name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
}

impl Address {
    fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// The stored claims: members absent when unset, booleans absent when false.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// `name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `given_name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub given_name: Option<String>,
    /// `family_name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family_name: Option<String>,
    /// `middle_name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub middle_name: Option<String>,
    /// `nickname`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nickname: Option<String>,
    /// `profile`: URL of the profile page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// `picture`: URL of a picture.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub picture: Option<String>,
    /// `website`: URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub website: Option<String>,
    /// `gender`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gender: Option<String>,
    /// `birthdate`: `YYYY-MM-DD`, `0000-MM-DD` or `YYYY`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub birthdate: Option<String>,
    /// `zoneinfo`: IANA time zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zoneinfo: Option<String>,
    /// `locale`: BCP 47 tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    /// `email_verified` (of the account's email).
    #[serde(default, skip_serializing_if = "is_false")]
    pub email_verified: bool,
    /// `phone_number`: E.164.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<String>,
    /// `phone_number_verified`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub phone_number_verified: bool,
    /// `address`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<Address>,
}

fn is_false(value: &bool) -> bool {
    !*value
}

/// Who edits: an administrator (CLI, admin API) may set everything; a user (`PATCH /api/me`)
/// everything but the `*_verified` flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Editor {
    /// An operator.
    Admin,
    /// The user themself.
    User,
}

/// The claims a patch may name besides `email` (which the caller handles: it is the account's).
pub const EDITABLE: [&str; 16] = [
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
    "email_verified",
    "phone_number",
    "phone_number_verified",
    "address",
];

fn invalid(field: &'static str, reason: impl Into<String>) -> InvalidField {
    InvalidField {
        field,
        reason: reason.into(),
    }
}

impl Profile {
    /// Nothing set.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Reads a stored object; `None` when it is not one (reported by `users check`).
    pub fn from_stored(text: &str) -> Option<Self> {
        serde_json::from_str(text).ok()
    }

    /// The stored form (a JSON object).
    pub fn to_stored(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".to_owned())
    }

    /// Applies `patch` (member → new value; `null`, `""` or blank clears) as `editor`, `today`
    /// bounding `birthdate`. Members other than [`EDITABLE`] and `email` are refused; `email`
    /// is skipped here. On error nothing is applied. Returns the claims that changed.
    pub fn apply(
        &mut self,
        patch: &Map<String, Value>,
        editor: Editor,
        today: NaiveDate,
    ) -> Result<Vec<&'static str>, InvalidField> {
        let mut next = self.clone();
        let mut changed = Vec::new();
        // The flags last, so that a number set in the same patch does not reset its flag.
        let mut members: Vec<(&String, &Value)> = patch.iter().collect();
        members.sort_by_key(|(key, _)| key.ends_with("_verified"));
        for (key, value) in members {
            if key == "email" {
                continue;
            }
            let Some(field) = EDITABLE.iter().copied().find(|f| f == key) else {
                return Err(invalid(
                    "claims",
                    format!("unknown claim {}", printable(key)),
                ));
            };
            set(&mut next, field, value, editor, today)?;
        }
        for field in EDITABLE {
            if field_value(self, field) != field_value(&next, field) {
                changed.push(field);
            }
        }
        *self = next;
        Ok(changed)
    }

    /// Re-checks every stored claim with today's rules (`users check`): the first refusal.
    pub fn recheck(&self, today: NaiveDate) -> Result<(), InvalidField> {
        let Value::Object(members) = serde_json::to_value(self).unwrap_or(Value::Null) else {
            return Ok(());
        };
        Profile::default()
            .apply(&members, Editor::Admin, today)
            .map(|_| ())
    }
}

fn field_value(profile: &Profile, field: &str) -> Value {
    serde_json::to_value(profile)
        .ok()
        .and_then(|v| v.get(field).cloned())
        .unwrap_or(Value::Null)
}

/// A client-supplied name fit for an error description.
fn printable(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_ascii_graphic())
        .take(40)
        .collect()
}

fn set(
    profile: &mut Profile,
    field: &'static str,
    value: &Value,
    editor: Editor,
    today: NaiveDate,
) -> Result<(), InvalidField> {
    match field {
        "email_verified" | "phone_number_verified" => {
            if editor != Editor::Admin {
                return Err(invalid(field, "may be set by an administrator only"));
            }
            let flag = match value {
                Value::Bool(flag) => *flag,
                Value::Null => false,
                _ => return Err(invalid(field, "must be true or false")),
            };
            if field == "email_verified" {
                profile.email_verified = flag;
            } else {
                profile.phone_number_verified = flag;
            }
            return Ok(());
        }
        "address" => {
            profile.address = address(value)?;
            return Ok(());
        }
        _ => {}
    }
    let text = match value {
        Value::Null => None,
        Value::String(text) if text.trim().is_empty() => None,
        Value::String(text) => Some(text.trim()),
        _ => return Err(invalid(field, "must be a string or null")),
    };
    let checked = match text {
        None => None,
        Some(text) => Some(check(field, text, today)?),
    };
    if field == "phone_number" && profile.phone_number != checked {
        // A new number is not verified (an administrator may say otherwise in the same patch:
        // flags are applied last).
        profile.phone_number_verified = false;
    }
    let slot = match field {
        "name" => &mut profile.name,
        "given_name" => &mut profile.given_name,
        "family_name" => &mut profile.family_name,
        "middle_name" => &mut profile.middle_name,
        "nickname" => &mut profile.nickname,
        "profile" => &mut profile.profile,
        "picture" => &mut profile.picture,
        "website" => &mut profile.website,
        "gender" => &mut profile.gender,
        "birthdate" => &mut profile.birthdate,
        "zoneinfo" => &mut profile.zoneinfo,
        "locale" => &mut profile.locale,
        _ => &mut profile.phone_number,
    };
    *slot = checked;
    Ok(())
}

/// One non-blank, trimmed value of `field`, checked.
fn check(field: &'static str, text: &str, today: NaiveDate) -> Result<String, InvalidField> {
    match field {
        "profile" | "picture" | "website" => url(field, text),
        "birthdate" => birthdate(text, today),
        "zoneinfo" => chrono_tz::Tz::from_str(text)
            .map(|_| text.to_owned())
            .map_err(|_| invalid(field, "must be an IANA time zone such as Europe/Paris")),
        "locale" => locale(text),
        "phone_number" => phone(text),
        "gender" => plain(field, text, 64, false),
        _ => plain(field, text, 255, false),
    }
}

fn plain(
    field: &'static str,
    text: &str,
    max_chars: usize,
    line_breaks: bool,
) -> Result<String, InvalidField> {
    if text.chars().count() > max_chars {
        return Err(invalid(
            field,
            format!("must be at most {max_chars} characters"),
        ));
    }
    let bad = |c: char| c.is_control() && !(line_breaks && (c == '\n' || c == '\r'));
    if text.chars().any(bad) {
        return Err(invalid(field, "must not contain control characters"));
    }
    Ok(text.to_owned())
}

fn url(field: &'static str, text: &str) -> Result<String, InvalidField> {
    let refuse = || invalid(field, "must be an absolute http or https URL");
    if text.len() > 2048 {
        return Err(invalid(field, "must be at most 2048 bytes"));
    }
    let parsed = url::Url::parse(text).map_err(|_| refuse())?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none_or(str::is_empty) {
        return Err(refuse());
    }
    if text.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(refuse());
    }
    Ok(text.to_owned())
}

fn birthdate(text: &str, today: NaiveDate) -> Result<String, InvalidField> {
    let refuse = || invalid("birthdate", "must be YYYY-MM-DD, 0000-MM-DD or YYYY");
    let digits =
        |part: &str, len: usize| part.len() == len && part.bytes().all(|b| b.is_ascii_digit());
    let year_ok = |year: i32| {
        if (1850..=today.year()).contains(&year) {
            Ok(())
        } else {
            Err(invalid(
                "birthdate",
                "year must be 1850 or later and not in the future",
            ))
        }
    };
    let parts: Vec<&str> = text.split('-').collect();
    match parts.as_slice() {
        [year] if digits(year, 4) => {
            year_ok(year.parse().map_err(|_| refuse())?)?;
        }
        [year, month, day] if digits(year, 4) && digits(month, 2) && digits(day, 2) => {
            let (m, d): (u32, u32) = (
                month.parse().map_err(|_| refuse())?,
                day.parse().map_err(|_| refuse())?,
            );
            if *year == "0000" {
                // Year withheld: any day that exists in some year (29 February included).
                NaiveDate::from_ymd_opt(2000, m, d).ok_or_else(refuse)?;
            } else {
                let y: i32 = year.parse().map_err(|_| refuse())?;
                year_ok(y)?;
                let date = NaiveDate::from_ymd_opt(y, m, d).ok_or_else(refuse)?;
                if date > today {
                    return Err(invalid("birthdate", "must not be in the future"));
                }
            }
        }
        _ => return Err(refuse()),
    }
    Ok(text.to_owned())
}

fn locale(text: &str) -> Result<String, InvalidField> {
    let tag = language_tags::LanguageTag::parse(text)
        .map_err(|_| invalid("locale", "must be a BCP 47 language tag such as en-US"))?;
    tag.validate().map_err(|_| {
        invalid(
            "locale",
            "must be a valid BCP 47 language tag such as en-US",
        )
    })?;
    Ok(text.to_owned())
}

fn phone(text: &str) -> Result<String, InvalidField> {
    let (number, extension) = match text.split_once(";ext=") {
        Some((number, ext)) => (number, Some(ext)),
        None => (text, None),
    };
    let digits = number.strip_prefix('+').unwrap_or("");
    let number_ok = (2..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0');
    let extension_ok = extension
        .is_none_or(|e| (1..=10).contains(&e.len()) && e.bytes().all(|b| b.is_ascii_digit()));
    if number_ok && extension_ok {
        Ok(text.to_owned())
    } else {
        Err(invalid(
            "phone_number",
            "must be E.164: '+' and up to 15 digits, e.g. +14155550100 (optionally ;ext=123)",
        ))
    }
}

fn address(value: &Value) -> Result<Option<Address>, InvalidField> {
    let members = match value {
        Value::Null => return Ok(None),
        Value::Object(members) => members,
        _ => return Err(invalid("address", "must be an object or null")),
    };
    let mut address = Address::default();
    for (key, value) in members {
        let text = match value {
            Value::Null => None,
            Value::String(text) if text.trim().is_empty() => None,
            Value::String(text) => Some(text.trim()),
            _ => {
                return Err(invalid(
                    "address",
                    format!("{} must be a string", printable(key)),
                ));
            }
        };
        let (slot, breaks) = match key.as_str() {
            "formatted" => (&mut address.formatted, true),
            "street_address" => (&mut address.street_address, true),
            "locality" => (&mut address.locality, false),
            "region" => (&mut address.region, false),
            "postal_code" => (&mut address.postal_code, false),
            "country" => (&mut address.country, false),
            _ => {
                return Err(invalid(
                    "address",
                    format!("unknown member {}", printable(key)),
                ));
            }
        };
        *slot = match text {
            None => None,
            Some(text) => Some(plain("address", text, 255, breaks)?),
        };
    }
    Ok((!address.is_empty()).then_some(address))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 6, 1).unwrap()
    }

    fn patch(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(members) => members,
            _ => panic!("object"),
        }
    }

    fn refused(value: Value) -> &'static str {
        Profile::default()
            .apply(&patch(value), Editor::Admin, today())
            .unwrap_err()
            .field
    }

    #[test]
    fn valid_claims_are_stored_and_blank_ones_cleared() {
        let mut profile = Profile::default();
        let changed = profile
            .apply(
                &patch(json!({
                    "name": "  Alice Liddell ", "given_name": "Alice", "family_name": "Liddell",
                    "middle_name": "Pleasance", "nickname": "Al",
                    "profile": "https://example.com/alice", "picture": "http://example.com/a.png",
                    "website": "https://alice.example", "gender": "female",
                    "birthdate": "0000-02-29", "zoneinfo": "Europe/London", "locale": "en-GB",
                    "phone_number": "+441632960000;ext=12", "phone_number_verified": true,
                    "email_verified": true,
                    "address": {"street_address": "1 Rabbit Hole\nWonderland", "country": "UK",
                                "region": ""},
                })),
                Editor::Admin,
                today(),
            )
            .unwrap();
        assert_eq!(changed.len(), 16);
        assert_eq!(profile.name.as_deref(), Some("Alice Liddell"));
        assert_eq!(profile.address.as_ref().unwrap().region, None);
        let stored = profile.to_stored();
        assert!(!stored.contains("\"\""), "no blank strings: {stored}");
        assert_eq!(Profile::from_stored(&stored).unwrap(), profile);
        assert!(profile.recheck(today()).is_ok());
        let changed = profile
            .apply(
                &patch(
                    json!({"name": "", "nickname": null, "address": {"country": " "},
                              "phone_number": "+441632960001"}),
                ),
                Editor::Admin,
                today(),
            )
            .unwrap();
        assert_eq!(
            changed,
            [
                "name",
                "nickname",
                "phone_number",
                "phone_number_verified",
                "address"
            ]
        );
        assert_eq!(profile.name, None);
        assert_eq!(profile.address, None);
        assert!(!profile.phone_number_verified, "a new number is unverified");
        for date in ["1990-12-31", "1990", "0000-12-31", "2026-06-01"] {
            assert!(
                Profile::default()
                    .apply(&patch(json!({"birthdate": date})), Editor::User, today())
                    .is_ok(),
                "{date}"
            );
        }
    }

    #[test]
    fn invalid_claims_name_their_field() {
        for (value, field) in [
            (json!({"profile": "javascript:alert(1)"}), "profile"),
            (json!({"picture": "/relative.png"}), "picture"),
            (json!({"website": "ftp://example.com"}), "website"),
            (json!({"locale": "english"}), "locale"),
            (json!({"locale": "en_US"}), "locale"),
            (json!({"locale": "xx-YY-invalidvariant"}), "locale"),
            (json!({"zoneinfo": "Mars/Olympus"}), "zoneinfo"),
            (json!({"zoneinfo": "europe/paris"}), "zoneinfo"),
            (json!({"birthdate": "1990-02-30"}), "birthdate"),
            (json!({"birthdate": "90-01-01"}), "birthdate"),
            (json!({"birthdate": "1700"}), "birthdate"),
            (json!({"birthdate": "2026-06-02"}), "birthdate"),
            (json!({"birthdate": "0000-13-01"}), "birthdate"),
            (json!({"phone_number": "0044 20 7946 0000"}), "phone_number"),
            (json!({"phone_number": "+0441632960000"}), "phone_number"),
            (json!({"phone_number": "+1234567890123456"}), "phone_number"),
            (json!({"name": 7}), "name"),
            (json!({"name": "a\u{0007}b"}), "name"),
            (json!({"name": "x".repeat(256)}), "name"),
            (json!({"address": "1 Main St"}), "address"),
            (json!({"address": {"planet": "Earth"}}), "address"),
            (json!({"email_verified": "yes"}), "email_verified"),
            (json!({"preferred_username": "x"}), "claims"),
        ] {
            assert_eq!(refused(value.clone()), field, "{value}");
        }
        let mut profile = Profile::default();
        let error = profile
            .apply(
                &patch(json!({"name": "Bob", "email_verified": true})),
                Editor::User,
                today(),
            )
            .unwrap_err();
        assert_eq!(error.field, "email_verified");
        assert!(profile.is_empty(), "nothing applied on error");
    }
}
