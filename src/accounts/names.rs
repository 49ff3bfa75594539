//! Newtypes parsed at the boundary: once a value exists, it is valid everywhere.

use zeroize::Zeroizing;

/// A rejected value; `field` names the input so errors can point at it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct InvalidField {
    /// The input field.
    pub field: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

fn invalid(field: &'static str, reason: impl Into<String>) -> InvalidField {
    InvalidField {
        field,
        reason: reason.into(),
    }
}

/// A username: 3–64 ASCII letters, digits, `.`, `_` or `-`, starting with a letter or digit.
/// Unique case-insensitively (as Keycloak does), shown as chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    /// Parses a username.
    pub fn parse(text: &str) -> Result<Self, InvalidField> {
        let ok_chars = text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if !(3..=64).contains(&text.len()) {
            return Err(invalid("username", "must be 3 to 64 characters"));
        }
        if !ok_chars || !text.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            return Err(invalid(
                "username",
                "may contain only letters, digits, '.', '_' and '-', and must start with a letter or digit",
            ));
        }
        // ADM-06: user ids are UUIDs, and the CLI and the admin API address users by id,
        // username or email; a username shaped like an id could make them hit another user.
        if uuid::Uuid::parse_str(text).is_ok() {
            return Err(invalid(
                "username",
                "may not have the form of a user id (a UUID)",
            ));
        }
        Ok(Self(text.to_owned()))
    }

    /// As chosen.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The uniqueness key.
    pub fn normalized(&self) -> String {
        self.0.to_ascii_lowercase()
    }
}

/// An email address: one `@` between a non-empty local part and a dotted domain, no spaces or
/// control characters, at most 254 bytes (RFC 5321). Unique case-insensitively.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    /// Parses an email address.
    pub fn parse(text: &str) -> Result<Self, InvalidField> {
        if text.is_empty() || text.len() > 254 {
            return Err(invalid("email", "must be 1 to 254 bytes"));
        }
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid(
                "email",
                "must not contain spaces or control characters",
            ));
        }
        let Some((local, domain)) = text.rsplit_once('@') else {
            return Err(invalid("email", "must contain '@'"));
        };
        let domain_ok = domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..")
            && !domain.contains('@');
        if local.is_empty() || local.len() > 64 || !domain_ok {
            return Err(invalid("email", "is not an email address"));
        }
        Ok(Self(text.to_owned()))
    }

    /// As given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The uniqueness key.
    pub fn normalized(&self) -> String {
        self.0.to_lowercase()
    }
}

/// A role name: 1–64 of lower-case ASCII letters, digits, `_`, `-`, `.` or `:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role(String);

impl Role {
    /// Parses a role name.
    pub fn parse(text: &str) -> Result<Self, InvalidField> {
        let ok = (1..=64).contains(&text.len())
            && text.chars().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-' | '.' | ':')
            });
        if ok {
            Ok(Self(text.to_owned()))
        } else {
            Err(invalid(
                "role",
                "must be 1 to 64 of a-z, 0-9, '_', '-', '.', ':'",
            ))
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Longest password accepted, in bytes; longer input is refused before any hashing.
pub const MAX_PASSWORD_BYTES: usize = 1024;
/// Shortest password accepted, in characters (NIST SP 800-63B §3.1.1.2).
pub const MIN_PASSWORD_CHARS: usize = 8;

/// A password that meets the policy: 8 characters to 1024 bytes, any Unicode, never truncated.
/// `Debug` never shows it; the memory is wiped on drop.
pub struct Password(Zeroizing<String>);

impl Password {
    /// Checks the policy.
    pub fn parse(text: String) -> Result<Self, InvalidField> {
        let text = Zeroizing::new(text);
        if text.len() > MAX_PASSWORD_BYTES {
            return Err(invalid(
                "password",
                format!("must be at most {MAX_PASSWORD_BYTES} bytes"),
            ));
        }
        if text.chars().count() < MIN_PASSWORD_CHARS {
            return Err(invalid(
                "password",
                format!("must be at least {MIN_PASSWORD_CHARS} characters"),
            ));
        }
        Ok(Self(text))
    }

    /// The password bytes, for hashing only.
    pub fn expose(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_and_emails_are_checked_and_normalised() {
        assert_eq!(Username::parse("Alice.B").unwrap().normalized(), "alice.b");
        assert!(Username::parse("al").is_err());
        assert!(Username::parse("-alice").is_err());
        assert!(Username::parse("alice smith").is_err());
        assert_eq!(
            Email::parse("Alice@Example.COM").unwrap().normalized(),
            "alice@example.com"
        );
        for bad in [
            "alice",
            "@example.com",
            "alice@",
            "alice@localhost",
            "a b@example.com",
            "a@b..com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn password_policy_counts_characters_and_bounds_bytes() {
        assert!(Password::parse("short".into()).is_err());
        assert!(
            Password::parse("ünïcødé!".into()).is_ok(),
            "8 characters of any script"
        );
        assert!(Password::parse("x".repeat(MAX_PASSWORD_BYTES)).is_ok());
        let too_long = Password::parse("x".repeat(MAX_PASSWORD_BYTES + 1));
        assert_eq!(too_long.unwrap_err().field, "password");
        assert_eq!(
            format!("{:?}", Password::parse("correct horse".into()).unwrap()),
            "Password(<redacted>)"
        );
    }
}
