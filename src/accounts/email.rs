//! Email addresses as OIDC Core §5.1 requires of the `email` claim: an RFC 5322 §3.4.1
//! `addr-spec`, with an internationalised domain checked by IDNA (UTS #46).
//!
//! What is accepted:
//! - the local part is a `dot-atom` (RFC 5322 §3.2.3: `atext` runs separated by single dots,
//!   none at either end) or a `quoted-string` of printable ASCII (`qtext` and `quoted-pair`,
//!   §3.2.4; no folding white space); at most 64 bytes (RFC 5321 §4.5.3.1.1). The local part is
//!   ASCII: RFC 6532's UTF-8 local parts are not accepted, they are where look-alikes hide and few
//!   mail systems deliver to them;
//! - the domain is a DNS name of at least two labels that passes UTS #46 ToASCII with the strict
//!   flags (`UseSTD3ASCIIRules`, `CheckHyphens`, `CheckBidi`, `CheckJoiners`, `VerifyDnsLength`):
//!   a U-label domain (`bücher.example`) is accepted, stored as given; domain literals
//!   (`[192.0.2.1]`) are not;
//! - the whole address is at most 254 bytes (RFC 5321 §4.5.3.1.3 less the angle brackets).
//!
//! Refused everywhere, before IDNA mapping could silently drop them: control characters, white
//! space, format characters (zero-width space/joiners, bidi embeddings, overrides and isolates,
//! the BOM, soft hyphen), other default-ignorable code points (variation selectors, Hangul
//! fillers, tags), private-use code points and noncharacters — so an existing address with an
//! invisible character added is not a new address.

/// Why an address was refused (the `reason` of the `email` field's error).
pub fn check(text: &str) -> Result<(), &'static str> {
    if text.is_empty() || text.len() > 254 {
        return Err("must be 1 to 254 bytes");
    }
    // An ASCII space is legal inside a quoted local part only; the syntax checks below refuse it
    // anywhere else.
    if let Some(c) = text.chars().find(|&c| c != ' ' && is_disallowed(c)) {
        return Err(if c.is_whitespace() || c.is_control() {
            "must not contain spaces or control characters"
        } else {
            "must not contain invisible, bidi-control or private-use characters"
        });
    }
    let Some((local, domain)) = text.rsplit_once('@') else {
        return Err("must contain '@'");
    };
    check_local(local)?;
    ascii_domain(domain).map(|_| ())
}

/// The uniqueness key: the local part lower-cased, `@`, the domain as UTS #46 maps it (case,
/// width and compatibility forms folded; an A-label `xn--…` shown as its U-label). For a valid
/// ASCII address this is the address lower-cased, as keys always were.
pub fn normalized(text: &str) -> String {
    let Some((local, domain)) = text.rsplit_once('@') else {
        return text.to_lowercase();
    };
    let (unicode, result) = idna::uts46::Uts46::new().to_unicode(
        domain.as_bytes(),
        idna::uts46::AsciiDenyList::STD3,
        idna::uts46::Hyphens::Check,
    );
    let domain = if result.is_ok() {
        unicode.into_owned()
    } else {
        domain.to_lowercase()
    };
    format!("{}@{domain}", local.to_lowercase())
}

/// Every uniqueness key an address may be stored under, the key ([`normalized`]: domain in
/// U-label form) first. Rows written before keys were IDNA-normalised hold the address
/// lower-cased as it was typed, so the same address is also looked up lower-cased with its
/// domain in A-label form (`u@xn--bcher-kva.example`) and lower-cased as given. No repeats; a
/// domain that does not convert adds nothing.
pub fn lookup_keys(text: &str) -> Vec<String> {
    let mut keys = vec![normalized(text)];
    let mut add = |key: String| {
        if !keys.contains(&key) {
            keys.push(key);
        }
    };
    if let Some((local, domain)) = text.rsplit_once('@')
        && let Ok(ascii) = ascii_domain(domain)
    {
        add(format!("{}@{}", local.to_lowercase(), ascii.to_lowercase()));
    }
    add(text.to_lowercase());
    keys
}

fn check_local(local: &str) -> Result<(), &'static str> {
    if local.is_empty() || local.len() > 64 {
        return Err("the part before '@' must be 1 to 64 bytes");
    }
    if !local.is_ascii() {
        return Err("the part before '@' must be ASCII");
    }
    let ok = if let Some(inner) = local
        .strip_prefix('"')
        .and_then(|rest| rest.strip_suffix('"'))
    {
        quoted_ok(inner)
    } else {
        local
            .split('.')
            .all(|atom| !atom.is_empty() && atom.bytes().all(is_atext))
    };
    if ok {
        Ok(())
    } else {
        Err("is not an email address (RFC 5322 addr-spec)")
    }
}

/// RFC 5322 §3.2.3 `atext` (ASCII).
fn is_atext(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&b)
}

/// The inside of a `quoted-string`: `qtext` (printable ASCII but `"` and `\`, and space) and
/// `quoted-pair`s (`\` before a printable character or space).
fn quoted_ok(inner: &str) -> bool {
    let mut bytes = inner.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'\\' => match bytes.next() {
                Some(next) if (0x20..=0x7e).contains(&next) => {}
                _ => return false,
            },
            b'"' => return false,
            0x20..=0x7e => {}
            _ => return false,
        }
    }
    true
}

/// The domain in A-label form (UTS #46 ToASCII, strict), or why it is refused.
fn ascii_domain(domain: &str) -> Result<String, &'static str> {
    let not_a_domain = "the part after '@' is not a valid domain name";
    if domain.starts_with('[') {
        return Err("the part after '@' must be a domain name, not an address literal");
    }
    let ascii = idna::uts46::Uts46::new()
        .to_ascii(
            domain.as_bytes(),
            idna::uts46::AsciiDenyList::STD3,
            idna::uts46::Hyphens::Check,
            idna::uts46::DnsLength::Verify,
        )
        .map_err(|_| not_a_domain)?;
    // A mail domain has at least two labels; the last is not all digits (an IPv4 address).
    let mut labels = ascii.rsplit('.');
    let last = labels.next().unwrap_or("");
    if labels.next().is_none() || last.is_empty() || last.bytes().all(|b| b.is_ascii_digit()) {
        return Err(not_a_domain);
    }
    Ok(ascii.into_owned())
}

/// Code points refused anywhere in an address: controls, white space, format characters
/// (`Cf`), other default-ignorable code points, private use, noncharacters, surrogates' stand-ins.
fn is_disallowed(c: char) -> bool {
    let u = u32::from(c);
    c.is_control()
        || c.is_whitespace()
        || matches!(u,
            // Format characters and default-ignorables (Unicode 15 DerivedCoreProperties).
            0x00AD | 0x034F | 0x061C | 0x0600..=0x0605 | 0x06DD | 0x070F | 0x0890..=0x0891
            | 0x08E2 | 0x115F..=0x1160 | 0x17B4..=0x17B5 | 0x180B..=0x180F
            | 0x200B..=0x200F | 0x2028..=0x202F | 0x205F..=0x206F | 0x3164 | 0xFE00..=0xFE0F
            | 0xFEFF | 0xFFA0 | 0xFFF0..=0xFFFB | 0x110BD | 0x110CD | 0x13430..=0x1343F
            | 0x1BCA0..=0x1BCA3 | 0x1D173..=0x1D17A | 0xE0000..=0xE0FFF
            // Private use.
            | 0xE000..=0xF8FF | 0xF0000..=0xFFFFD | 0x100000..=0x10FFFD
            // Noncharacters.
            | 0xFDD0..=0xFDEF)
        || (u & 0xFFFE) == 0xFFFE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_idna_forms_of_a_domain_share_one_key() {
        for form in [
            "u@bücher.example",
            "u@xn--bcher-kva.example",
            "U@BÜCHER.example",
            "u@XN--BCHER-KVA.EXAMPLE",
        ] {
            assert_eq!(normalized(form), "u@bücher.example", "{form}");
            assert_eq!(
                lookup_keys(form),
                ["u@bücher.example", "u@xn--bcher-kva.example"],
                "{form}"
            );
        }
        assert_eq!(lookup_keys("Alice@Example.COM"), ["alice@example.com"]);
        assert_eq!(lookup_keys("alice"), ["alice"]);
    }

    #[test]
    fn addr_specs_are_accepted() {
        for good in [
            "alice@example.com",
            "Alice.B+tag@Example.COM",
            "o'brien@example.co.uk",
            "!#$%&'*+-/=?^_`{|}~@example.com",
            "\"john doe\"@example.com",
            "\"a\\\"b\"@example.com",
            "x@bücher.example",
            "x@xn--bcher-kva.example",
            "x@sub-domain.example.org",
        ] {
            assert_eq!(check(good), Ok(()), "{good}");
        }
    }

    #[test]
    fn malformed_addresses_are_refused() {
        for bad in [
            "",
            "alice",
            "@example.com",
            "alice@",
            "u@@example.com",
            "a@b@example.com",
            "alice@localhost",
            "a b@example.com",
            "a@b..com",
            ".alice@example.com",
            "alice.@example.com",
            "al..ice@example.com",
            "al(ice@example.com",
            "al\"ice@example.com",
            "\"unterminated@example.com",
            "\"a\"b\"@example.com",
            "alice@-example.com",
            "alice@example-.com",
            "alice@exa_mple.com",
            "alice@[192.0.2.1]",
            "alice@192.0.2.1",
            "alice@example.com.",
            "ålice@example.com",
        ] {
            assert!(check(bad).is_err(), "{bad:?}");
        }
        assert!(check(&format!("{}@example.com", "a".repeat(65))).is_err());
        assert!(check(&format!("a@{}.com", "b".repeat(64))).is_err());
        assert!(check(&format!("a@{}.com", "b".repeat(63))).is_ok());
    }

    #[test]
    fn invisible_and_bidi_characters_are_refused() {
        for c in [
            '\u{200B}',
            '\u{200C}',
            '\u{200D}',
            '\u{2060}',
            '\u{FEFF}',
            '\u{00AD}',
            '\u{202E}',
            '\u{2066}',
            '\u{200E}',
            '\u{061C}',
            '\u{FE0F}',
            '\u{E0041}',
            '\u{E000}',
            '\u{3164}',
            '\u{0000}',
            '\u{00A0}',
            '\u{3000}',
        ] {
            for text in [
                format!("alice@example.com{c}"),
                format!("al{c}ice@example.com"),
                format!("alice@exam{c}ple.com"),
            ] {
                assert!(check(&text).is_err(), "{text:?}");
            }
        }
    }

    #[test]
    fn uniqueness_keys_fold_case_and_idna_forms() {
        assert_eq!(normalized("Alice@Example.COM"), "alice@example.com");
        assert_eq!(
            normalized("x@XN--BCHER-KVA.example"),
            normalized("x@Bücher.example")
        );
        // Full-width letters map to ASCII under UTS #46: the same account.
        assert_eq!(normalized("x@ｅxample.com"), "x@example.com");
    }
}
