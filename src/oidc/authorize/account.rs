//! The account page's own sign-in through the hosted login: a pending authorization request of
//! the account console ([`Client::account_console`]) whose `state` is the account page to go
//! back to, and the rule that keeps that return path ours (no open redirect).
//!
//! The sign-in runs the same hosted login as every application (throttling, device trust, and
//! whatever steps a sign-in has), then answers the console's callback with a code the page
//! never redeems: what the page needs is the browser session the sign-in set.

use std::sync::Arc;

use super::request::{AuthorizationRequest, Prompt, RedirectUri, ResponseMode};
use crate::oidc::claims_request::RequestedClaims;
use crate::oidc::clients::Client;
use crate::secrets::{NoRandomness, random_identifier};
use crate::verify::Scope;

/// The account page, relative to the issuer.
pub const ACCOUNT_PATH: &str = "/account";
/// The console's redirect URI, relative to the issuer.
pub const CALLBACK_PATH: &str = "/account/callback";
/// The longest return path kept.
const MAX_RETURN_PATH: usize = 256;

/// The account console of the issuer `issuer` (its full URL, with its path if it has one).
pub fn console(issuer: &str) -> Client {
    Client::account_console(format!("{issuer}{CALLBACK_PATH}"))
}

/// The pending sign-in of the account console of `issuer`, coming back to `return_to` (a path
/// [`safe_return_path`] accepted). The code it ends with carries a random S256 challenge whose
/// verifier nobody holds: it cannot be redeemed even by a client that could name the console.
///
/// # Errors
/// The system's random generator failed.
pub fn sign_in_request(
    issuer: &str,
    return_to: String,
) -> Result<AuthorizationRequest, NoRandomness> {
    let client = Arc::new(console(issuer));
    let redirect_uri = RedirectUri::verified(format!("{issuer}{CALLBACK_PATH}"));
    Ok(AuthorizationRequest {
        client,
        redirect_uri,
        redirect_uri_sent: true,
        response_mode: ResponseMode::Query,
        scope: Scope::parse("openid").unwrap_or_default(),
        state: Some(return_to),
        nonce: None,
        code_challenge: Some(random_identifier()?),
        max_age: None,
        prompt: Prompt::default(),
        login_hint: None,
        claims: RequestedClaims::default(),
    })
}

/// `candidate` if it is a path of the account pages under the issuer's path `base` (`""` at
/// the root): `{base}/account` or below it, or the device verification page `{base}/device`,
/// with an optional query, and nothing but unreserved
/// characters (RFC 3986 §2.3 letters, digits, `-`, `_`, `.`, `~`) in `/`-separated segments
/// that are not `.` or `..`, and `=`/`&` in the query. Anything else (a scheme, `//host`, a
/// backslash, a percent-escape, another of our paths) is refused, so the sign-in can only come
/// back to an account page.
pub fn safe_return_path(base: &str, candidate: &str) -> Option<String> {
    if candidate.len() > MAX_RETURN_PATH {
        return None;
    }
    let under_base = candidate.strip_prefix(base)?;
    let rest = match under_base.strip_prefix(ACCOUNT_PATH) {
        Some(rest) => rest,
        // The device verification page (RFC 8628 §3.3) signs in through the same console,
        // and comes back with its query only (the user code).
        None => under_base
            .strip_prefix(crate::oidc::device::VERIFICATION_PATH)
            .filter(|rest| rest.is_empty() || rest.starts_with('?'))?,
    };
    let (path, query) = match rest.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (rest, None),
    };
    let unreserved = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '~');
    if !path.is_empty() {
        let segments = path.strip_prefix('/')?;
        for segment in segments.split('/') {
            if segment.is_empty() && segments.is_empty() {
                continue;
            }
            if segment.is_empty()
                || segment == "."
                || segment == ".."
                || !segment.chars().all(unreserved)
            {
                return None;
            }
        }
    }
    if let Some(query) = query
        && !query.chars().all(|c| unreserved(c) || c == '=' || c == '&')
    {
        return None;
    }
    Some(candidate.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_account_pages_are_return_paths() {
        for good in [
            "/account",
            "/account/",
            "/account/security",
            "/account/email?step=verify",
            "/device",
            "/device?user_code=WDJB-MJHT",
        ] {
            assert_eq!(safe_return_path("", good).as_deref(), Some(good), "{good}");
        }
        assert_eq!(
            safe_return_path("/idp", "/idp/account/security").as_deref(),
            Some("/idp/account/security")
        );
        for bad in [
            "https://evil.example/account",
            "//evil.example/account",
            "/\\evil.example/account",
            "/accountx",
            "/account//evil.example",
            "/account/../authorize",
            "/account/./x",
            "/account/%2e%2e/authorize",
            "/account\\evil",
            "/account/x?next=https://evil.example",
            "/authorize",
            "account",
            "",
            "/idp/account",
            "/devicex",
            "/device/x",
            "/device?next=https://evil.example",
        ] {
            assert_eq!(safe_return_path("", bad), None, "{bad}");
        }
        assert_eq!(safe_return_path("/idp", "/account"), None);
        assert_eq!(
            safe_return_path("", &format!("/account/{}", "a".repeat(300))),
            None
        );
    }
}
