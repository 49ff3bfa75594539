//! The decisions of the authorization endpoint and its hosted pages: given a validated request
//! and the browser's session, what happens next. Outcomes are values; `http/` renders them.

use chrono::NaiveDateTime;

use super::checks;
use super::code::CodeGrant;
use super::pending::PendingRequest;
use super::request::{AuthorizationError, AuthorizationRequest, ErrorRedirect, Rejection};
use crate::accounts::browser_sessions::SignedIn;
use crate::oidc::clients::Client;

/// OIDC Core §3.1.2.6: `prompt=none` and nobody (usable) is signed in.
pub const LOGIN_REQUIRED: AuthorizationError =
    AuthorizationError::new("login_required", "The user is not signed in.");
/// OIDC Core §3.1.2.6: `prompt=none` and the user would have to approve.
pub const CONSENT_REQUIRED: AuthorizationError = AuthorizationError::new(
    "consent_required",
    "The user has not approved this application.",
);
/// RFC 6749 §4.1.2.1: the user said no.
pub const ACCESS_DENIED: AuthorizationError =
    AuthorizationError::new("access_denied", "The user denied the request.");

/// What the authorization endpoint does with a request.
#[derive(Debug)]
pub enum Outcome {
    /// An error page for the user; nothing goes to the client (no verified redirect URI).
    ErrorPage(&'static str),
    /// An error sent to the client's verified redirect URI.
    RedirectError(ErrorRedirect),
    /// Nobody usable is signed in: keep the request pending and show the login page.
    ShowLogin(AuthorizationRequest),
    /// The signed-in user must approve: keep the request pending and show the consent page.
    ShowConsent(AuthorizationRequest, SignedIn),
    /// The signed-in user may proceed: issue a code and send it to the client.
    IssueCode(CodeGrant),
}

impl From<Rejection> for Outcome {
    fn from(rejection: Rejection) -> Self {
        match rejection {
            Rejection::Page(text) => Self::ErrorPage(text),
            Rejection::Redirect(redirect) => Self::RedirectError(redirect),
        }
    }
}

/// Decides a validated request against the browser's signed-in user (single sign-on).
pub fn decide(
    request: AuthorizationRequest,
    session: Option<SignedIn>,
    now: NaiveDateTime,
) -> Outcome {
    let usable =
        session.filter(|s| checks::check_session_usable(request.prompt, request.max_age, s, now));
    let Some(session) = usable else {
        if request.prompt.none {
            return Outcome::RedirectError(request.error_redirect(LOGIN_REQUIRED));
        }
        return Outcome::ShowLogin(request);
    };
    if checks::check_consent_needed(&request.client, request.prompt) {
        if request.prompt.none {
            return Outcome::RedirectError(request.error_redirect(CONSENT_REQUIRED));
        }
        return Outcome::ShowConsent(request, session);
    }
    Outcome::IssueCode(CodeGrant::for_request(&request, &session))
}

/// After the user signed in at the hosted login page: whether they are asked to approve. A
/// first-party client skips consent; a client that disappeared meanwhile is treated as
/// third-party.
pub fn consent_after_sign_in(client: Option<&Client>) -> bool {
    client.is_none_or(|c| !c.first_party)
}

/// What the consent form's answer does.
#[derive(Debug)]
pub enum ConsentOutcome {
    /// The browser's signed-in user is not the one who authenticated for the request.
    SignInFirst,
    /// Neither Allow nor Deny was chosen.
    ChooseAgain,
    /// Approved: once the request is completed, issue the code.
    Approved(CodeGrant),
    /// Denied: once the request is completed, tell the client `access_denied`.
    Denied(ErrorRedirect),
}

/// Decides the consent form of `pending`: consent is given by the signed-in user of this
/// browser, for the user who authenticated; `decision` is `approve` or `deny`.
pub fn decide_consent(
    pending: &PendingRequest,
    session: Option<&SignedIn>,
    decision: Option<&str>,
) -> ConsentOutcome {
    let (Some(session), Some(user_id), Some(auth_time)) =
        (session, pending.user_id.as_deref(), pending.auth_time)
    else {
        return ConsentOutcome::SignInFirst;
    };
    if session.user_id != user_id {
        return ConsentOutcome::SignInFirst;
    }
    match decision {
        Some("approve") => ConsentOutcome::Approved(CodeGrant::for_pending(
            pending,
            user_id,
            auth_time,
            &session.sid,
        )),
        Some("deny") => ConsentOutcome::Denied(pending.error_redirect(ACCESS_DENIED)),
        _ => ConsentOutcome::ChooseAgain,
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Duration};

    use super::*;
    use crate::oidc::authorize::checks::tests::{CHALLENGE, client, params, session};
    use crate::oidc::authorize::request::{self, RedirectUri, RequestBinding};

    fn now() -> NaiveDateTime {
        DateTime::from_timestamp(1_700_000_000, 0)
            .unwrap()
            .naive_utc()
    }

    fn request(extra: &str, first_party: bool) -> AuthorizationRequest {
        let query = format!(
            "client_id=app&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&response_type=code\
             &scope=openid&state=xyz&nonce=n1&code_challenge={CHALLENGE}\
             &code_challenge_method=S256{extra}"
        );
        request::parse(&params(&query), |_| Some(client(first_party))).unwrap()
    }

    fn error_of(outcome: Outcome) -> ErrorRedirect {
        match outcome {
            Outcome::RedirectError(redirect) => redirect,
            other => panic!("expected an error redirect, got {other:?}"),
        }
    }

    #[test]
    fn nobody_signed_in_shows_the_login_page() {
        assert!(matches!(
            decide(request("", false), None, now()),
            Outcome::ShowLogin(_)
        ));
    }

    #[test]
    fn prompt_none_without_a_session_answers_login_required_with_state_and_iss() {
        let redirect = error_of(decide(request("&prompt=none", true), None, now()));
        assert_eq!(redirect.error, LOGIN_REQUIRED);
        assert_eq!(
            redirect.location("https://id.example"),
            "https://app.example/cb?error=login_required\
             &error_description=The+user+is+not+signed+in.&state=xyz&iss=https%3A%2F%2Fid.example"
        );
    }

    #[test]
    fn a_first_party_client_gets_a_code_for_the_signed_in_user() {
        let signed_in = session(now() - Duration::minutes(5));
        let Outcome::IssueCode(grant) = decide(request("", true), Some(signed_in), now()) else {
            panic!("expected a code");
        };
        assert_eq!(grant.user_id, "u1");
        assert_eq!(grant.sid, "sid-1");
        assert_eq!(grant.auth_time, now() - Duration::minutes(5));
        assert_eq!(
            grant.request.redirect_uri.as_str(),
            "https://app.example/cb"
        );
        assert_eq!(
            (grant.request.scope.as_str(), grant.request.nonce.as_deref()),
            ("openid", Some("n1"))
        );
    }

    #[test]
    fn a_third_party_client_or_prompt_consent_shows_the_consent_page() {
        let signed_in = session(now());
        assert!(matches!(
            decide(request("", false), Some(signed_in.clone()), now()),
            Outcome::ShowConsent(_, s) if s == signed_in
        ));
        assert!(matches!(
            decide(request("&prompt=consent", true), Some(signed_in), now()),
            Outcome::ShowConsent(..)
        ));
    }

    #[test]
    fn prompt_none_that_would_need_consent_answers_consent_required() {
        let redirect = error_of(decide(
            request("&prompt=none", false),
            Some(session(now())),
            now(),
        ));
        assert_eq!(redirect.error, CONSENT_REQUIRED);
    }

    #[test]
    fn prompt_login_or_an_old_session_asks_to_sign_in_again() {
        let old = session(now() - Duration::seconds(61));
        assert!(matches!(
            decide(request("&prompt=login", true), Some(session(now())), now()),
            Outcome::ShowLogin(_)
        ));
        assert!(matches!(
            decide(request("&max_age=60", true), Some(old.clone()), now()),
            Outcome::ShowLogin(_)
        ));
        assert_eq!(
            error_of(decide(
                request("&max_age=60&prompt=none", true),
                Some(old),
                now()
            ))
            .error,
            LOGIN_REQUIRED
        );
    }

    #[test]
    fn rejections_become_pages_or_redirects() {
        let page = request::parse(&params("client_id=nobody"), |_| None).unwrap_err();
        assert!(matches!(
            Outcome::from(page),
            Outcome::ErrorPage("The application is unknown.")
        ));
        let query = "client_id=app&redirect_uri=https%3A%2F%2Fapp.example%2Fcb2%3Fx%3D1\
                     &response_type=token&state=s";
        let rejection = request::parse(&params(query), |_| Some(client(false))).unwrap_err();
        let redirect = error_of(Outcome::from(rejection));
        assert_eq!(redirect.error.code, "unsupported_response_type");
        assert!(
            redirect
                .location("https://id.example")
                .starts_with("https://app.example/cb2?x=1&error=unsupported_response_type&")
        );
    }

    #[test]
    fn an_unregistered_redirect_uri_is_never_redirected_to() {
        for extra in ["", "&prompt=none", "&response_type=token"] {
            let query = format!("client_id=app&redirect_uri=https%3A%2F%2Fevil.example{extra}");
            let rejection = request::parse(&params(&query), |_| Some(client(false))).unwrap_err();
            assert!(matches!(rejection, request::Rejection::Page(_)), "{extra}");
        }
    }

    #[test]
    fn after_sign_in_only_a_known_first_party_client_skips_consent() {
        assert!(!consent_after_sign_in(Some(&client(true))));
        assert!(consent_after_sign_in(Some(&client(false))));
        assert!(consent_after_sign_in(None));
    }

    fn pending(user: Option<&str>) -> PendingRequest {
        PendingRequest {
            id: "r1".into(),
            request: RequestBinding {
                client_id: "app".into(),
                redirect_uri: RedirectUri::verified("https://app.example/cb".into()),
                redirect_uri_sent: true,
                scope: "openid".into(),
                state: Some("xyz".into()),
                nonce: None,
                code_challenge: CHALLENGE.into(),
            },
            user_id: user.map(str::to_owned),
            auth_time: user.map(|_| now()),
        }
    }

    #[test]
    fn consent_is_given_by_the_user_who_authenticated() {
        let alice = session(now());
        assert!(matches!(
            decide_consent(&pending(Some("u1")), Some(&alice), Some("approve")),
            ConsentOutcome::Approved(grant) if grant.user_id == "u1" && grant.sid == "sid-1"
        ));
        let ConsentOutcome::Denied(redirect) =
            decide_consent(&pending(Some("u1")), Some(&alice), Some("deny"))
        else {
            panic!("expected a denial");
        };
        assert_eq!(redirect.error, ACCESS_DENIED);
        assert_eq!(redirect.state.as_deref(), Some("xyz"));
        assert!(matches!(
            decide_consent(&pending(Some("u1")), Some(&alice), Some("maybe")),
            ConsentOutcome::ChooseAgain
        ));
        for (request, session) in [
            (pending(Some("u2")), Some(&alice)),
            (pending(None), Some(&alice)),
            (pending(Some("u1")), None),
        ] {
            assert!(matches!(
                decide_consent(&request, session, Some("approve")),
                ConsentOutcome::SignInFirst
            ));
        }
    }
}
