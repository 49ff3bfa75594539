//! Opaque secrets — refresh tokens, authorization codes, CSRF tokens and the browser's secrets —
//! each its own type: generated from the OS CSPRNG (256 bits, base64url), stored only as a
//! [`TokenHash`] (SHA-256), compared in constant time, and never printed (`Debug` shows a
//! placeholder). A leaf: it imports nothing of the crate.
//!
//! A plaintext secret can only be hashed, handed over (`expose`) or compared; a hash can only be
//! stored or compared. Mixing them up, or a refresh token with a code, does not compile.

use std::fmt;

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// The operating system's random number generator failed (should not happen).
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("no randomness")]
pub struct NoRandomness(#[source] aws_lc_rs::error::Unspecified);

/// 256 fresh random bits from the OS CSPRNG, base64url without padding (43 characters).
fn random_text() -> Result<String, NoRandomness> {
    let mut bytes = [0u8; 32];
    SystemRandom::new().fill(&mut bytes).map_err(NoRandomness)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// An unguessable identifier that is no secret itself (a pending request's id in a form, a
/// browser session's `sid` in ID tokens): 256 random bits, base64url.
pub fn random_identifier() -> Result<String, NoRandomness> {
    random_text()
}

/// Constant-time equality of two byte strings (the length is not hidden; every value compared
/// here has a fixed length).
fn same(a: &[u8], b: &[u8]) -> bool {
    aws_lc_rs::constant_time::verify_slices_are_equal(a, b).is_ok()
}

/// The stored form of an opaque secret: the base64url SHA-256 of its text. The secrets are
/// 256 random bits, so a plain (unsalted) hash is enough to make a stolen table useless.
#[derive(Clone)]
pub struct TokenHash(String);

impl TokenHash {
    fn of(secret: &str) -> Self {
        Self(URL_SAFE_NO_PAD.encode(Sha256::digest(secret.as_bytes())))
    }

    /// The text to store or look up.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The text to store, by value.
    pub fn into_string(self) -> String {
        self.0
    }

    /// Whether `stored` is this hash, compared in constant time.
    pub fn matches(&self, stored: &str) -> bool {
        same(self.0.as_bytes(), stored.as_bytes())
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenHash(<redacted>)")
    }
}

macro_rules! opaque_secret {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        pub struct $name(String);

        impl $name {
            /// A fresh value: 256 bits from the OS CSPRNG, base64url.
            pub fn generate() -> Result<Self, NoRandomness> {
                random_text().map(Self)
            }

            /// A value as a client presented it. It is never trusted: only hashed and looked up,
            /// or compared.
            pub fn presented(text: impl Into<String>) -> Self {
                Self(text.into())
            }

            /// Its stored form.
            pub fn hash(&self) -> TokenHash {
                TokenHash::of(&self.0)
            }

            /// The plaintext, for the one response, redirect or cookie that hands it over.
            pub fn expose(&self) -> &str {
                &self.0
            }

            /// The plaintext, by value (see [`Self::expose`]).
            pub fn into_exposed(self) -> String {
                self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "(<redacted>)"))
            }
        }
    };
}

opaque_secret!(
    /// An opaque refresh token (one rotation step of a refresh family). Only its hash is stored.
    RefreshToken
);
opaque_secret!(
    /// An authorization code (RFC 6749 §4.1.2): single-use, short-lived; only its hash is stored.
    AuthorizationCode
);
opaque_secret!(
    /// A CSRF token of a hosted form: stored as a hash with the pending request it protects, or
    /// derived from the browser session it is bound to ([`CsrfToken::bound_to`]).
    CsrfToken
);
opaque_secret!(
    /// The secret of a browser session (the hosted pages' session cookie); only its hash is
    /// stored.
    SessionSecret
);
opaque_secret!(
    /// The secret that binds pending authorization requests to one browser (the flow cookie).
    FlowSecret
);
opaque_secret!(
    /// The device cookie of a device that signed in to an account (its own login budget).
    DeviceSecret
);

impl CsrfToken {
    /// The CSRF token of a form bound to a browser session, derived from the session's secret
    /// (an HttpOnly cookie no other site can read) and the form's `purpose`: it needs no storage
    /// and is good only for the one session.
    pub fn bound_to(session: &SessionSecret, purpose: &str) -> Self {
        Self(TokenHash::of(&format!("{purpose}:{}", session.expose())).into_string())
    }

    /// Whether a presented token is this one, compared in constant time.
    pub fn matches(&self, presented: &str) -> bool {
        same(self.0.as_bytes(), presented.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_random_and_never_printed() {
        let a = RefreshToken::generate().expect("randomness");
        let b = RefreshToken::generate().expect("randomness");
        assert_eq!(a.expose().len(), 43);
        assert_ne!(a.expose(), b.expose());
        assert_eq!(format!("{a:?}"), "RefreshToken(<redacted>)");
        assert_eq!(format!("{:?}", a.hash()), "TokenHash(<redacted>)");
        assert!(!format!("{:?}", AuthorizationCode::presented("abc")).contains("abc"));
    }

    #[test]
    fn a_presented_value_hashes_like_the_generated_one() {
        let token = RefreshToken::generate().expect("randomness");
        let presented = RefreshToken::presented(token.expose());
        assert!(presented.hash().matches(token.hash().as_str()));
        assert!(!presented.hash().matches(&token.hash().as_str()[1..]));
        // The stored form is the base64url SHA-256 of the text, as before this type existed.
        assert_eq!(
            RefreshToken::presented("abc").hash().as_str(),
            "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0"
        );
    }

    #[test]
    fn a_bound_csrf_token_belongs_to_its_session() {
        let session = SessionSecret::presented("session-secret");
        let token = CsrfToken::bound_to(&session, "logout-confirmation");
        assert!(token.matches(token.expose()));
        assert!(
            !CsrfToken::bound_to(&SessionSecret::presented("other"), "logout-confirmation")
                .matches(token.expose())
        );
        assert!(!CsrfToken::bound_to(&session, "other-form").matches(token.expose()));
    }
}
