//! Newtypes parsed at the boundary: once a value exists, it is valid everywhere.

use std::collections::HashSet;
use std::sync::OnceLock;

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

/// An email address: an RFC 5322 `addr-spec` with an IDNA-checked domain, no invisible,
/// bidi-control or private-use characters ([`super::email`]). Unique case-insensitively (and
/// across IDNA forms of the domain). Stored as given, except that a domain with non-ASCII
/// characters is stored as UTS #46 maps it (full-width and compatibility forms folded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    /// Parses an email address. Errors: `email` with the reason.
    pub fn parse(text: &str) -> Result<Self, InvalidField> {
        super::email::check(text).map_err(|reason| invalid("email", reason))?;
        let stored = match text.rsplit_once('@') {
            Some((local, domain)) if !domain.is_ascii() => {
                let mapped = super::email::normalized(text);
                let domain = mapped.rsplit_once('@').map_or(domain, |(_, d)| d);
                format!("{local}@{domain}")
            }
            _ => text.to_owned(),
        };
        Ok(Self(stored))
    }

    /// As given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The uniqueness key ([`super::email::normalized`]): the domain in U-label form, so both
    /// IDNA forms of an address (`u@bücher.example`, `u@xn--bcher-kva.example`) have one key.
    pub fn normalized(&self) -> String {
        super::email::normalized(&self.0)
    }

    /// The keys this address may be stored under, [`Email::normalized`] first, then those of rows
    /// written before keys were IDNA-normalised ([`super::email::lookup_keys`]): what uniqueness
    /// checks compare against.
    pub fn keys(&self) -> Vec<String> {
        super::email::lookup_keys(&self.0)
    }
}

/// The keys a login name (a username or an email address, as typed at a login form, or as the
/// CLI and the admin API name a user) is looked up by, the preferred first: an email address by
/// [`super::email::lookup_keys`] (its canonical key, so either IDNA form of the domain finds the
/// account, then the keys of rows from before IDNA keys); a username lower-cased.
pub fn login_keys(login: &str) -> Vec<String> {
    if login.contains('@') {
        super::email::lookup_keys(login)
    } else {
        vec![login.to_lowercase()]
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

/// Longest password accepted, in bytes of the input as typed; longer input is refused before any
/// hashing.
pub const MAX_PASSWORD_BYTES: usize = 1024;
/// Shortest password accepted, in characters after normalisation (NIST SP 800-63B §3.1.1.2).
pub const MIN_PASSWORD_CHARS: usize = 8;

/// Common and breached passwords, one a line, lower case: Django's list (BSD-3-Clause, see
/// `src/accounts/common-passwords.LICENSE`), compiled in so the check needs no file at run time.
const COMMON_PASSWORDS: &str = include_str!("common-passwords.txt");

/// The list, normalised like a password and lower-cased, built once on first use. A process-wide
/// constant, not configuration: every server and test refuses the same list.
fn common_passwords() -> &'static HashSet<String> {
    static LIST: OnceLock<HashSet<String>> = OnceLock::new();
    LIST.get_or_init(|| {
        COMMON_PASSWORDS
            .lines()
            .map(|line| comparable(&normalize_password(line)))
            .filter(|entry| !entry.is_empty())
            .collect()
    })
}

/// The form the blocklist and the account names are compared in: lower case, without the
/// surrounding whitespace (`Password ` is as common as `password`, as in Django's check).
fn comparable(normalized: &str) -> String {
    normalized.trim().to_lowercase()
}

/// NIST SP 800-63B §5.1.1.2: a password is normalised with NFKC (Unicode UAX #15) before it is
/// hashed or verified, so one password typed on keyboards that produce different code points (`é`
/// precomposed or as `e` + U+0301; full-width letters) is one password. Applied to new passwords
/// by [`Password::parse`] and to typed ones by `PasswordHasher::verify`.
pub fn normalize_password(text: &str) -> Zeroizing<String> {
    let mut normalized = Zeroizing::new(String::with_capacity(text.len()));
    // ICU4X's normaliser (already built for URL handling) with its compiled Unicode data.
    icu_normalizer::ComposingNormalizerBorrowed::new_nfkc()
        .normalize_to(text, &mut *normalized)
        // Writing into a `String` cannot fail.
        .unwrap_or(());
    normalized
}

/// Whether a normalised password is on the list of common and breached passwords (compared in
/// lower case).
pub fn is_common_password(normalized: &str) -> bool {
    common_passwords().contains(&comparable(normalized))
}

/// A password that meets the policy: 8 characters (after NFKC normalisation) to 1024 bytes (as
/// typed), any Unicode, never truncated, not on the list of common and breached passwords. Holds
/// the normalised form. `Debug` never shows it; the memory is wiped on drop.
pub struct Password(Zeroizing<String>);

impl Password {
    /// Checks the policy and normalises (NFKC). The reasons name the rule, never the password.
    pub fn parse(text: String) -> Result<Self, InvalidField> {
        let text = Zeroizing::new(text);
        if text.len() > MAX_PASSWORD_BYTES {
            return Err(invalid(
                "password",
                format!("must be at most {MAX_PASSWORD_BYTES} bytes"),
            ));
        }
        let normalized = normalize_password(&text);
        if normalized.chars().count() < MIN_PASSWORD_CHARS {
            return Err(invalid(
                "password",
                format!("must be at least {MIN_PASSWORD_CHARS} characters"),
            ));
        }
        // NIST SP 800-63B §5.1.1.2: compare against commonly used and breached passwords.
        if is_common_password(&normalized) {
            return Err(invalid(
                "password",
                "is on the list of common and breached passwords; choose another",
            ));
        }
        Ok(Self(normalized))
    }

    /// Refuses a password that is the account's own username, email address or the email's
    /// local part (compared in lower case): the first guesses of anyone who knows the account
    /// (NIST SP 800-63B §5.1.1.2, "context-specific words").
    pub fn check_not_account_name(
        &self,
        username: &Username,
        email: &Email,
    ) -> Result<(), InvalidField> {
        let password = comparable(&self.0);
        let email = comparable(&normalize_password(email.as_str()));
        let local = email
            .rsplit_once('@')
            .map_or(email.as_str(), |(local, _)| local);
        let names = [username.normalized(), email.clone(), local.to_owned()];
        if names.contains(&password) {
            return Err(invalid(
                "password",
                "must not be the username or the email address",
            ));
        }
        Ok(())
    }

    /// The normalised password bytes, for hashing only.
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

    #[test]
    fn passwords_are_nfkc_normalised() {
        let nfc = "caf\u{e9} cr\u{e8}me br\u{fb}l\u{e9}e";
        let nfd = "cafe\u{301} cre\u{300}me bru\u{302}le\u{301}e";
        assert_ne!(nfc, nfd);
        assert_eq!(*normalize_password(nfd), nfc, "NFD composes");
        assert_eq!(
            Password::parse(nfd.into()).unwrap().expose(),
            nfc.as_bytes(),
            "the stored form is the normalised one"
        );
        // Compatibility forms fold too (the K of NFKC): full-width letters, ligatures.
        assert_eq!(
            *normalize_password("\u{ff34}\u{ff45}st \u{fb01}sh"),
            "Test fish"
        );
        // ASCII is already normal: legacy ASCII passwords are unchanged.
        assert_eq!(*normalize_password(PLAIN), PLAIN);
        // Length counts characters after normalisation: 7 composed letters are too short,
        // however many code points they were typed as.
        let seven = "e\u{301}".repeat(7);
        assert_eq!(seven.chars().count(), 14);
        assert!(Password::parse(seven).is_err());
    }

    const PLAIN: &str = "plain ASCII passphrase";

    #[test]
    fn common_passwords_are_refused_in_any_case_and_form() {
        for common in [
            "password",
            "12345678",
            "Password",
            "PASSWORD",
            " password ",
            "iloveyou",
            "password1",
            // Full-width letters are the same password once normalised.
            "\u{ff50}\u{ff41}\u{ff53}\u{ff53}\u{ff57}\u{ff4f}\u{ff52}\u{ff44}",
        ] {
            let refused = Password::parse(common.into()).unwrap_err();
            // One fixed reason for every listed password: it names the rule, never the input.
            assert_eq!(refused.field, "password", "{common}");
            assert_eq!(
                refused.reason, "is on the list of common and breached passwords; choose another",
                "{common}"
            );
        }
        assert!(common_passwords().len() > 19_000, "the list is compiled in");
        assert!(Password::parse("correct horse battery staple".into()).is_ok());
        assert!(Password::parse(PLAIN.into()).is_ok());
    }

    #[test]
    fn a_password_may_not_be_the_account_name() {
        let username = Username::parse("Alice.Smith").unwrap();
        let email = Email::parse("wonder.land@Example.com").unwrap();
        for own in [
            "alice.smith",
            "ALICE.SMITH",
            "Wonder.Land",
            "wonder.land@example.com",
        ] {
            let password = Password::parse(own.into()).unwrap();
            let refused = password
                .check_not_account_name(&username, &email)
                .unwrap_err();
            assert_eq!(refused.field, "password", "{own}");
        }
        let password = Password::parse("alice.smith!".into()).unwrap();
        assert!(password.check_not_account_name(&username, &email).is_ok());
    }
}
