//! The authorization endpoint's rules, one small function each (after node-oidc-provider's
//! `lib/actions/authorization/check_*.js`). Each reads what it needs and answers a value or
//! the error it stands for; [`parse`](super::request::parse) and the decisions run them in
//! order. Pure: no database, no clock, no HTTP.

use std::sync::Arc;

use chrono::NaiveDateTime;

use super::request::{AuthorizationError, Prompt, RedirectUri, ResponseMode};
use crate::accounts::browser_sessions::SignedIn;
use crate::oidc::claims_request::{ClaimsError, RequestedClaims};
use crate::oidc::clients::{Client, GrantType, PkcePolicy, redirect_uri_matches};
use crate::oidc::consent::{self, Remembered};
use crate::oidc::params::{Params, valid_challenge};
use crate::secrets::{CsrfToken, FlowSecret};
use crate::verify::Scope;

/// Longest `state` accepted, in bytes (DOS-07): ample for a client's own encoded state, and it
/// bounds what an anonymous request can make the server store.
pub const MAX_STATE: usize = 2048;
/// Longest `nonce` accepted, in bytes (a nonce is a random value: 512 is generous).
pub const MAX_NONCE: usize = 512;
/// Longest `login_hint` kept, in bytes (longer hints are cut at a character boundary).
pub const MAX_LOGIN_HINT: usize = 256;

fn invalid_request(description: &'static str) -> AuthorizationError {
    AuthorizationError::new("invalid_request", description)
}

/// `client_id` names a registered client (RFC 6749 §4.1.2.1: otherwise the user is told, and
/// nothing is redirected).
pub fn check_client(
    params: &Params,
    find_client: impl FnOnce(&str) -> Option<Arc<Client>>,
) -> Result<Arc<Client>, &'static str> {
    params
        .get("client_id")
        .and_then(find_client)
        .ok_or("The application is unknown.")
}

/// `redirect_uri` is one the client registered, compared as exact strings (AUTHZ-02) but for
/// the port of a loopback IP one registered without a port (RFC 8252 §7.3,
/// [`redirect_uri_matches`]); it may be left out only by a client with exactly one (RFC 6749
/// §3.1.2.3). Returns the URI as requested (the response goes to that port) and whether the
/// request named it.
pub fn check_redirect_uri(
    params: &Params,
    client: &Client,
) -> Result<(RedirectUri, bool), &'static str> {
    match params.get("redirect_uri") {
        Some(uri)
            if client
                .redirect_uris
                .iter()
                .any(|r| redirect_uri_matches(r, uri)) =>
        {
            Ok((RedirectUri::verified(uri.to_owned()), true))
        }
        Some(_) => Err("The redirect URI is not registered for this application."),
        None => match client.redirect_uris.as_slice() {
            [only] => Ok((RedirectUri::verified(only.clone()), false)),
            _ => Err("The redirect URI is missing."),
        },
    }
}

/// `state` is at most [`MAX_STATE`] bytes (DOS-07). A longer one is not sent back either: the
/// user gets a page.
pub fn check_state(params: &Params) -> Result<Option<String>, &'static str> {
    match params.get("state") {
        Some(state) if state.len() > MAX_STATE => Err("The state parameter is too long."),
        state => Ok(state.map(str::to_owned)),
    }
}

/// No `request` or `request_uri` is left: [`request_object::resolve`](super::request_object::resolve)
/// applies a request object before the request is parsed, and removes it. One still here was
/// not applied, and the request it stands for must not be served from the outer parameters
/// alone (OIDC Core §6.3.3).
pub fn check_request_object_resolved(params: &Params) -> Result<(), AuthorizationError> {
    if params.has("request") || params.has("request_uri") {
        return Err(invalid_request("The request object was not applied."));
    }
    Ok(())
}

/// `response_type=code`, the only flow (RFC 6749 §4.1.1).
pub fn check_response_type(params: &Params) -> Result<(), AuthorizationError> {
    match params.get("response_type") {
        None => Err(invalid_request("response_type is required.")),
        Some("code") => Ok(()),
        Some(_) => Err(AuthorizationError::new(
            "unsupported_response_type",
            "Only response_type=code is supported.",
        )),
    }
}

/// The client is allowed the authorization code grant.
pub fn check_code_flow_allowed(client: &Client) -> Result<(), AuthorizationError> {
    if client.allows(GrantType::AuthorizationCode) {
        Ok(())
    } else {
        Err(AuthorizationError::new(
            "unauthorized_client",
            "This client may not use the authorization code flow.",
        ))
    }
}

/// `response_mode`, if sent, is `query` (the default) or `form_post` (OAuth 2.0 Form Post
/// Response Mode). `fragment`, allowed for the code flow by OAuth 2.0 Multiple Response Types
/// §2.1 but of no use to it (a code in a fragment reaches the client only through script), and
/// the JARM modes (`*.jwt`) are refused with `invalid_request`.
pub fn check_response_mode(params: &Params) -> Result<ResponseMode, AuthorizationError> {
    match params.get("response_mode") {
        None => Ok(ResponseMode::Query),
        Some(mode) => ResponseMode::parse(mode)
            .ok_or_else(|| invalid_request("response_mode must be query or form_post.")),
    }
}

/// `scope` is present and every value is allowed to the client (RFC 6749 §3.3). Returns it with
/// duplicates removed, in the order asked. A value no client can be allowed (a character
/// outside §3.3) is not allowed either.
pub fn check_scope(params: &Params, client: &Client) -> Result<Scope, AuthorizationError> {
    let not_allowed = AuthorizationError::new(
        "invalid_scope",
        "The requested scope is not allowed for this client.",
    );
    let scope = Scope::parse(params.get("scope").unwrap_or("")).map_err(|_| not_allowed)?;
    if scope.is_empty() {
        return Err(AuthorizationError::new(
            "invalid_scope",
            "scope is required.",
        ));
    }
    if !client.allows_scope(&scope) {
        return Err(not_allowed);
    }
    Ok(scope)
}

/// PKCE as the client's policy asks (RFC 7636 §4.3, RFC 9700 §2.1.1): a challenge that is sent
/// is S256 with a well-formed value (PKCE-04), whatever the policy; one may be left out only by
/// a client registered `optional`, or `pkce_or_nonce` in an OpenID request (`scope` has `openid`)
/// that carries a `nonce`. Returns the challenge, `None` when the request sent none (its code
/// then refuses any `code_verifier`).
pub fn check_pkce(
    params: &Params,
    client: &Client,
    scope: &Scope,
) -> Result<Option<String>, AuthorizationError> {
    let Some(challenge) = params.get("code_challenge") else {
        match client.pkce {
            PkcePolicy::Optional => {}
            PkcePolicy::PkceOrNonce if scope.contains("openid") && params.has("nonce") => {}
            PkcePolicy::PkceOrNonce => {
                return Err(invalid_request(
                    "PKCE is required unless an OpenID request carries a nonce: send \
                     code_challenge with code_challenge_method=S256, or scope openid with a nonce.",
                ));
            }
            PkcePolicy::Required => {
                return Err(invalid_request(
                    "PKCE is required: send code_challenge with code_challenge_method=S256.",
                ));
            }
        }
        // A method without its challenge is a client that meant PKCE and lost the challenge:
        // issuing a code without one would downgrade it.
        if params.has("code_challenge_method") {
            return Err(invalid_request(
                "code_challenge_method was sent without code_challenge.",
            ));
        }
        return Ok(None);
    };
    if params.get("code_challenge_method") != Some("S256") {
        return Err(invalid_request("code_challenge_method must be S256."));
    }
    if !valid_challenge(challenge) {
        return Err(invalid_request(
            "code_challenge must be 43 base64url characters.",
        ));
    }
    Ok(Some(challenge.to_owned()))
}

/// `nonce`, if sent, is at most [`MAX_NONCE`] bytes.
pub fn check_nonce(params: &Params) -> Result<Option<String>, AuthorizationError> {
    match params.get("nonce") {
        Some(nonce) if nonce.len() > MAX_NONCE => Err(invalid_request("nonce is too long.")),
        nonce => Ok(nonce.map(str::to_owned)),
    }
}

/// `prompt` is `none` alone, or any of `login` and `consent` (OIDC Core §3.1.2.1).
pub fn check_prompt(params: &Params) -> Result<Prompt, AuthorizationError> {
    let prompts: Vec<&str> = params
        .get("prompt")
        .unwrap_or("")
        .split(' ')
        .filter(|p| !p.is_empty())
        .collect();
    if prompts
        .iter()
        .any(|p| !["none", "login", "consent"].contains(p))
        || (prompts.contains(&"none") && prompts.len() > 1)
    {
        return Err(invalid_request(
            "prompt must be none, or any of login and consent.",
        ));
    }
    Ok(Prompt {
        none: prompts.contains(&"none"),
        login: prompts.contains(&"login"),
        consent: prompts.contains(&"consent"),
    })
}

/// `max_age`, if sent, is a non-negative integer (seconds).
pub fn check_max_age(params: &Params) -> Result<Option<i64>, AuthorizationError> {
    params
        .get("max_age")
        .map(|text| {
            text.parse::<i64>()
                .ok()
                .filter(|v| *v >= 0)
                .ok_or_else(|| invalid_request("max_age must be a non-negative integer."))
        })
        .transpose()
}

/// OpenID Connect Core Error Code unmet_authentication_requirements 1.0: the request asked for
/// an authentication (an essential `acr`) this server cannot perform.
pub const UNMET_AUTHENTICATION_REQUIREMENTS: AuthorizationError = AuthorizationError::new(
    "unmet_authentication_requirements",
    "The essential acr requested cannot be met: urn:portcullis:acr:password and urn:portcullis:acr:mfa are offered.",
);

/// The `claims` parameter (OIDC Core §5.5), if sent: a JSON object of the §5.5.1 shape, at most
/// [`MAX_CLAIMS_PARAMETER`](crate::oidc::claims_request::MAX_CLAIMS_PARAMETER) bytes
/// (`invalid_request` otherwise), whose essential `acr` (if any) can be met
/// ([`UNMET_AUTHENTICATION_REQUIREMENTS`]). See [`crate::oidc::claims_request`].
pub fn check_claims(params: &Params) -> Result<RequestedClaims, AuthorizationError> {
    match params.get("claims") {
        None => Ok(RequestedClaims::default()),
        Some(text) => RequestedClaims::parse(text).map_err(|error| match error {
            ClaimsError::Malformed(description) => invalid_request(description),
            ClaimsError::UnmetAcr => UNMET_AUTHENTICATION_REQUIREMENTS,
        }),
    }
}

/// `login_hint`, cut to [`MAX_LOGIN_HINT`] bytes at a character boundary (it only pre-fills the
/// login form).
pub fn login_hint(params: &Params) -> Option<String> {
    params.get("login_hint").map(|hint| {
        let mut end = hint.len().min(MAX_LOGIN_HINT);
        while !hint.is_char_boundary(end) {
            end -= 1;
        }
        hint[..end].to_owned()
    })
}

/// The browser's session may stand for this request: not when `prompt=login` asks for a new
/// sign-in, nor when it authenticated longer than `max_age` seconds ago (OIDC Core §3.1.2.1),
/// nor when the `claims` parameter asked for another user's `sub` (§5.5.1), nor when the
/// request needs a multi-factor sign-in and the session signed in with a password only
/// (step-up: `acr_values`, an essential `acr`, or the second-factor policy).
pub fn check_session_usable(
    prompt: Prompt,
    max_age: Option<i64>,
    claims: &RequestedClaims,
    session: &SignedIn,
    now: NaiveDateTime,
) -> bool {
    !prompt.login
        && check_auth_age(max_age, session.auth_time, now)
        && claims.allows_subject(&session.user_id)
        && (!claims.mfa || session.is_multi_factor())
}

/// Whether `acr_values` (OIDC Core §3.1.2.1, space-separated, in order of preference) asks for
/// the multi-factor class: the first value this server offers is
/// [`ACR_MFA`](crate::oidc::tokens::ACR_MFA). Values it does not offer are skipped (`acr` is
/// then answered with what the sign-in met).
pub fn check_acr_values(params: &Params) -> bool {
    use crate::oidc::tokens::{ACR_MFA, ACR_PASSWORD};
    params
        .get("acr_values")
        .unwrap_or("")
        .split(' ')
        .find(|value| [ACR_PASSWORD, ACR_MFA].contains(value))
        == Some(ACR_MFA)
}

/// An authentication at `auth_time` is at most `max_age` seconds old at `now` (OIDC Core
/// §3.1.2.1); any age when no `max_age` was asked.
pub fn check_auth_age(max_age: Option<i64>, auth_time: NaiveDateTime, now: NaiveDateTime) -> bool {
    max_age.is_none_or(|max| (now - auth_time).num_seconds() <= max)
}

/// Whether the user must approve the request: for any client when `prompt=consent` asks, and
/// for a third-party client unless the user approved before every scope of `requested` and
/// every claim `claims` asks for beyond them (`consented`, remembered consent; OIDC Core
/// §3.1.2.4, §5.5). A first-party client never asks otherwise.
pub fn check_consent_needed(
    client: &Client,
    prompt: Prompt,
    requested: &Scope,
    claims: &RequestedClaims,
    consented: Option<&Remembered>,
) -> bool {
    prompt.consent || (!client.first_party && !consent::covers(consented, requested, claims))
}

/// A hosted-page form belongs to the pending request it names: the browser holds the flow
/// cookie the request was bound to and the form carries its CSRF token (LOGIN-01). Compared
/// as hashes with the stored ones, in constant time.
pub fn check_browser_binding(
    browser_hash: &str,
    csrf_hash: &str,
    flow: &FlowSecret,
    csrf: &CsrfToken,
) -> bool {
    // Both are compared, whatever the first says.
    let browser = flow.hash().matches(browser_hash);
    let csrf = csrf.hash().matches(csrf_hash);
    browser && csrf
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A challenge of the right shape (RFC 7636 Appendix B).
    pub(crate) const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    pub(crate) fn params(query: &str) -> Params {
        Params::parse(query.as_bytes()).unwrap()
    }

    pub(crate) fn client(first_party: bool) -> Arc<Client> {
        Arc::new(Client::for_tests(
            "app",
            &["https://app.example/cb", "https://app.example/cb2?x=1"],
            first_party,
        ))
    }

    fn code(result: Result<impl std::fmt::Debug, AuthorizationError>) -> &'static str {
        result.unwrap_err().code
    }

    #[test]
    fn the_client_must_be_registered() {
        let find = |id: &str| (id == "app").then(|| client(false));
        assert!(check_client(&params("client_id=app"), find).is_ok());
        assert_eq!(
            check_client(&params("client_id=other"), find).unwrap_err(),
            "The application is unknown."
        );
        assert!(check_client(&params(""), find).is_err());
    }

    #[test]
    fn redirect_uris_match_exactly_and_may_be_left_out_only_when_one_is_registered() {
        let app = client(false);
        let (uri, sent) =
            check_redirect_uri(&params("redirect_uri=https://app.example/cb"), &app).unwrap();
        assert_eq!((uri.as_str(), sent), ("https://app.example/cb", true));
        for wrong in [
            "https://app.example/cb/",
            "https://APP.example/cb",
            "https://app.example/cb2",
            "https://app.example/cb?x=1",
        ] {
            let query = format!("redirect_uri={}", urlencode(wrong));
            assert!(
                check_redirect_uri(&params(&query), &app).is_err(),
                "{wrong}"
            );
        }
        assert_eq!(
            check_redirect_uri(&params(""), &app).unwrap_err(),
            "The redirect URI is missing."
        );
        let single = Client::for_tests("one", &["https://one.example/cb"], false);
        let (uri, sent) = check_redirect_uri(&params(""), &single).unwrap();
        assert_eq!((uri.as_str(), sent), ("https://one.example/cb", false));
    }

    fn urlencode(text: &str) -> String {
        url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
    }

    #[test]
    fn state_and_nonce_are_bounded() {
        let long = "s".repeat(MAX_STATE + 1);
        assert!(check_state(&params(&format!("state={long}"))).is_err());
        let exact = "s".repeat(MAX_STATE);
        assert_eq!(
            check_state(&params(&format!("state={exact}"))).unwrap(),
            Some(exact)
        );
        let nonce = "n".repeat(MAX_NONCE + 1);
        assert_eq!(
            code(check_nonce(&params(&format!("nonce={nonce}")))),
            "invalid_request"
        );
        assert_eq!(check_nonce(&params("")).unwrap(), None);
    }

    #[test]
    fn only_the_code_flow_in_query_or_form_post_mode() {
        assert!(check_response_type(&params("response_type=code")).is_ok());
        assert_eq!(code(check_response_type(&params(""))), "invalid_request");
        assert_eq!(
            code(check_response_type(&params("response_type=token"))),
            "unsupported_response_type"
        );
        assert_eq!(
            code(check_request_object_resolved(&params("request=x"))),
            "invalid_request"
        );
        assert_eq!(
            code(check_request_object_resolved(&params("request_uri=x"))),
            "invalid_request"
        );
        assert_eq!(
            check_response_mode(&params("response_mode=query")).unwrap(),
            ResponseMode::Query
        );
        assert_eq!(
            check_response_mode(&params("")).unwrap(),
            ResponseMode::Query
        );
        assert_eq!(
            check_response_mode(&params("response_mode=form_post")).unwrap(),
            ResponseMode::FormPost
        );
        for refused in ["fragment", "form_post.jwt", "query.jwt", "jwt", "FORM_POST"] {
            assert_eq!(
                code(check_response_mode(&params(&format!(
                    "response_mode={refused}"
                )))),
                "invalid_request",
                "{refused}"
            );
        }
        let mut machine = Client::for_tests("m", &["https://m.example/cb"], false);
        machine.grant_types = vec![GrantType::ClientCredentials];
        assert_eq!(
            code(check_code_flow_allowed(&machine)),
            "unauthorized_client"
        );
    }

    #[test]
    fn scope_is_required_deduplicated_and_allowed() {
        let app = client(false);
        assert_eq!(
            check_scope(&params("scope=openid+email+openid"), &app)
                .unwrap()
                .as_str(),
            "openid email"
        );
        assert_eq!(
            code(check_scope(&params("scope=openid+%22x%22"), &app)),
            "invalid_scope"
        );
        assert_eq!(code(check_scope(&params(""), &app)), "invalid_scope");
        assert_eq!(
            code(check_scope(&params("scope=openid+admin"), &app)),
            "invalid_scope"
        );
    }

    fn with_pkce(policy: PkcePolicy) -> Client {
        let mut app = Client::for_tests("app", &["https://app.example/cb"], false);
        app.pkce = policy;
        app
    }

    #[test]
    fn pkce_s256_is_required_by_default() {
        let app = client(false);
        let openid = Scope::parse("openid").unwrap();
        let good = format!("code_challenge={CHALLENGE}&code_challenge_method=S256");
        assert_eq!(
            check_pkce(&params(&good), &app, &openid)
                .unwrap()
                .as_deref(),
            Some(CHALLENGE)
        );
        for bad in [
            String::new(),
            "nonce=n".to_owned(),
            format!("code_challenge={CHALLENGE}"),
            format!("code_challenge={CHALLENGE}&code_challenge_method=plain"),
            "code_challenge=short&code_challenge_method=S256".to_owned(),
        ] {
            assert_eq!(
                code(check_pkce(&params(&bad), &app, &openid)),
                "invalid_request",
                "{bad}"
            );
        }
    }

    #[test]
    fn pkce_may_be_left_out_only_as_the_policy_allows() {
        let (openid, plain) = (
            Scope::parse("openid").unwrap(),
            Scope::parse("email").unwrap(),
        );
        let optional = with_pkce(PkcePolicy::Optional);
        let or_nonce = with_pkce(PkcePolicy::PkceOrNonce);
        assert_eq!(check_pkce(&params(""), &optional, &plain).unwrap(), None);
        assert_eq!(
            check_pkce(&params("nonce=n"), &or_nonce, &openid).unwrap(),
            None
        );
        assert_eq!(
            code(check_pkce(&params(""), &or_nonce, &openid)),
            "invalid_request"
        );
        assert_eq!(
            code(check_pkce(&params("nonce=n"), &or_nonce, &plain)),
            "invalid_request"
        );
        // A challenge that is sent is checked whatever the policy, and a method without its
        // challenge is refused rather than downgraded.
        for app in [&optional, &or_nonce] {
            for bad in [
                format!("nonce=n&code_challenge={CHALLENGE}&code_challenge_method=plain"),
                "nonce=n&code_challenge=short&code_challenge_method=S256".to_owned(),
                "nonce=n&code_challenge_method=S256".to_owned(),
            ] {
                assert_eq!(
                    code(check_pkce(&params(&bad), app, &openid)),
                    "invalid_request",
                    "{bad}"
                );
            }
            let good = format!("code_challenge={CHALLENGE}&code_challenge_method=S256");
            assert_eq!(
                check_pkce(&params(&good), app, &openid).unwrap().as_deref(),
                Some(CHALLENGE)
            );
        }
    }

    #[test]
    fn prompt_none_comes_alone() {
        assert_eq!(check_prompt(&params("")).unwrap(), Prompt::default());
        let both = check_prompt(&params("prompt=login+consent")).unwrap();
        assert!(both.login && both.consent && !both.none);
        assert!(check_prompt(&params("prompt=none")).unwrap().none);
        for bad in ["prompt=none+login", "prompt=select_account"] {
            assert_eq!(code(check_prompt(&params(bad))), "invalid_request", "{bad}");
        }
    }

    #[test]
    fn max_age_is_a_non_negative_integer() {
        assert_eq!(check_max_age(&params("max_age=0")).unwrap(), Some(0));
        assert_eq!(check_max_age(&params("")).unwrap(), None);
        for bad in ["max_age=-1", "max_age=soon", "max_age=1.5"] {
            assert_eq!(
                code(check_max_age(&params(bad))),
                "invalid_request",
                "{bad}"
            );
        }
    }

    #[test]
    fn login_hints_are_cut_at_a_character_boundary() {
        let hint = "é".repeat(MAX_LOGIN_HINT);
        let cut = login_hint(&params(&format!("login_hint={}", urlencode(&hint)))).unwrap();
        assert!(cut.len() <= MAX_LOGIN_HINT && cut.chars().all(|c| c == 'é'));
        assert_eq!(cut.len(), MAX_LOGIN_HINT);
        let odd = format!("a{}", "é".repeat(MAX_LOGIN_HINT));
        let cut = login_hint(&params(&format!("login_hint={}", urlencode(&odd)))).unwrap();
        assert_eq!(cut.len(), MAX_LOGIN_HINT - 1);
    }

    pub(crate) fn session(auth_time: NaiveDateTime) -> SignedIn {
        SignedIn {
            user_id: "u1".into(),
            username: "alice".into(),
            sid: "sid-1".into(),
            auth_time,
            amr: "pwd".into(),
        }
    }

    #[test]
    fn a_session_counts_unless_prompt_login_or_older_than_max_age() {
        let now = chrono::DateTime::from_timestamp(1_700_000_000, 0)
            .unwrap()
            .naive_utc();
        let ten_minutes_ago = session(now - chrono::Duration::minutes(10));
        let any = Prompt::default();
        let none = RequestedClaims::default();
        assert!(check_session_usable(
            any,
            None,
            &none,
            &ten_minutes_ago,
            now
        ));
        assert!(check_session_usable(
            any,
            Some(600),
            &none,
            &ten_minutes_ago,
            now
        ));
        assert!(!check_session_usable(
            any,
            Some(599),
            &none,
            &ten_minutes_ago,
            now
        ));
        assert!(!check_session_usable(
            Prompt { login: true, ..any },
            None,
            &none,
            &ten_minutes_ago,
            now
        ));
    }

    #[test]
    fn consent_is_needed_for_third_parties_and_when_asked() {
        let ask = Prompt {
            consent: true,
            ..Prompt::default()
        };
        let openid = Scope::parse("openid").unwrap();
        assert!(check_consent_needed(
            &client(false),
            Prompt::default(),
            &openid,
            &RequestedClaims::default(),
            None
        ));
        assert!(!check_consent_needed(
            &client(true),
            Prompt::default(),
            &openid,
            &RequestedClaims::default(),
            None
        ));
        assert!(check_consent_needed(
            &client(true),
            ask,
            &openid,
            &RequestedClaims::default(),
            None
        ));
    }

    #[test]
    fn a_remembered_consent_covers_the_scopes_it_holds_unless_prompt_consent() {
        let ask = Prompt {
            consent: true,
            ..Prompt::default()
        };
        let consented = Remembered {
            scope: Scope::parse("openid email").unwrap(),
            claims: Default::default(),
        };
        let none = RequestedClaims::default();
        let third_party = client(false);
        let covered = Scope::parse("email openid").unwrap();
        let more = Scope::parse("openid profile").unwrap();
        assert!(!check_consent_needed(
            &third_party,
            Prompt::default(),
            &covered,
            &none,
            Some(&consented)
        ));
        assert!(check_consent_needed(
            &third_party,
            Prompt::default(),
            &more,
            &none,
            Some(&consented)
        ));
        assert!(check_consent_needed(
            &third_party,
            ask,
            &covered,
            &none,
            Some(&consented)
        ));
    }

    #[test]
    fn a_form_must_come_from_the_browser_and_carry_the_csrf_token() {
        let (flow, csrf) = (FlowSecret::presented("b"), CsrfToken::presented("c"));
        let (browser_hash, csrf_hash) = (flow.hash().into_string(), csrf.hash().into_string());
        assert!(check_browser_binding(
            &browser_hash,
            &csrf_hash,
            &flow,
            &csrf
        ));
        let other_browser = FlowSecret::presented("x");
        assert!(!check_browser_binding(
            &browser_hash,
            &csrf_hash,
            &other_browser,
            &csrf
        ));
        let forged = CsrfToken::presented("x");
        assert!(!check_browser_binding(
            &browser_hash,
            &csrf_hash,
            &flow,
            &forged
        ));
        // The stored hashes are not the secrets.
        let stolen = CsrfToken::presented(csrf_hash.as_str());
        assert!(!check_browser_binding(
            &browser_hash,
            &csrf_hash,
            &flow,
            &stolen
        ));
    }
}
