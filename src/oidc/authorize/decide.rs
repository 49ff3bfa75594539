//! The decisions of the authorization endpoint and its hosted pages: given a validated request
//! and the browser's session, what happens next. Outcomes are values; `http/` renders them.

use chrono::NaiveDateTime;

use super::checks;
use super::code::CodeGrant;
use super::pending::PendingRequest;
use super::request::{AuthorizationError, AuthorizationRequest, ErrorRedirect, Prompt, Rejection};
use crate::accounts::browser_sessions::SignedIn;
use crate::oidc::clients::Client;
use crate::oidc::consent::Remembered;
use crate::verify::Scope;

/// OIDC Core §3.1.2.6: `prompt=none` and nobody (usable) is signed in.
pub const LOGIN_REQUIRED: AuthorizationError =
    AuthorizationError::new("login_required", "The user is not signed in.");
/// OIDC Core §3.1.2.6: `prompt=none`, and the browser's session is too old for `max_age` (or
/// `prompt=login`, which cannot come with `none`): the user would have to sign in again.
pub const REAUTHENTICATION_REQUIRED: AuthorizationError = AuthorizationError::new(
    "login_required",
    "The user must sign in again: the session is older than max_age allows.",
);
/// OIDC Core §3.1.2.6, §5.5.1: `prompt=none`, and the `claims` parameter asked for a `sub`
/// other than the signed-in user's: only that user may be answered, after signing in.
pub const SUBJECT_NOT_SIGNED_IN: AuthorizationError = AuthorizationError::new(
    "login_required",
    "The user the claims parameter names (sub) is not the one signed in.",
);
/// OIDC Core §3.1.2.6: `prompt=none`, and the request needs a multi-factor sign-in (step-up by
/// `acr_values` or an essential `acr`, or the second-factor policy) while the browser's session
/// signed in with a password only: the user would have to present the second factor.
pub const SECOND_FACTOR_REQUIRED: AuthorizationError = AuthorizationError::new(
    "login_required",
    "The user must sign in with a second factor: the session used a password only.",
);
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

/// Decides a validated request against the browser's signed-in user (single sign-on) and what
/// that user approved for the client before (`consented`, remembered consent).
pub fn decide(
    request: AuthorizationRequest,
    session: Option<SignedIn>,
    consented: Option<&Remembered>,
    now: NaiveDateTime,
) -> Outcome {
    let session = match session {
        Some(s)
            if checks::check_session_usable(
                request.prompt,
                request.max_age,
                &request.claims,
                &s,
                now,
            ) =>
        {
            s
        }
        unusable => {
            if request.prompt.none {
                let error = match unusable {
                    None => LOGIN_REQUIRED,
                    Some(s) if !request.claims.allows_subject(&s.user_id) => SUBJECT_NOT_SIGNED_IN,
                    Some(s)
                        if request.claims.mfa
                            && !s.is_multi_factor()
                            && !request.prompt.login
                            && checks::check_auth_age(request.max_age, s.auth_time, now) =>
                    {
                        SECOND_FACTOR_REQUIRED
                    }
                    Some(_) => REAUTHENTICATION_REQUIRED,
                };
                return Outcome::RedirectError(request.error_redirect(error));
            }
            return Outcome::ShowLogin(request);
        }
    };
    if checks::check_consent_needed(
        &request.client,
        request.prompt,
        &request.scope,
        &request.claims,
        consented,
    ) {
        if request.prompt.none {
            return Outcome::RedirectError(request.error_redirect(CONSENT_REQUIRED));
        }
        return Outcome::ShowConsent(request, session);
    }
    Outcome::IssueCode(CodeGrant::for_request(&request, &session))
}

/// After the user signed in at the hosted login page for `pending`: whether they are asked to
/// approve, by the same rule as [`decide`] (`prompt=consent` always; a third-party client
/// unless `consented` covers the request). A client that disappeared meanwhile, or a stored
/// scope that no longer parses, asks.
pub fn consent_after_sign_in(
    pending: &PendingRequest,
    client: Option<&Client>,
    consented: Option<&Remembered>,
) -> bool {
    let (Some(client), Ok(requested)) = (client, Scope::parse(&pending.request.scope)) else {
        return true;
    };
    let prompt = Prompt {
        consent: pending.force_consent,
        ..Prompt::default()
    };
    checks::check_consent_needed(
        client,
        prompt,
        &requested,
        &pending.request.claims,
        consented,
    )
}

/// What the consent form's answer does.
#[derive(Debug)]
pub enum ConsentOutcome {
    /// The browser's signed-in user is not the one who authenticated for the request.
    SignInFirst,
    /// Neither Allow nor Deny was chosen.
    ChooseAgain,
    /// Approved, but the authentication is now older than the request's `max_age` allows (the
    /// user took long to decide): the user signs in again for the same request.
    SignInAgain,
    /// Approved: once the request is completed, issue the code.
    Approved(Box<CodeGrant>),
    /// Denied: once the request is completed, tell the client `access_denied`.
    Denied(ErrorRedirect),
}

/// Decides the consent form of `pending` at `now`: consent is given by the signed-in user of
/// this browser, for the user who authenticated; `decision` is `approve` or `deny`. An approval
/// still honours the request's `max_age` (OIDC Core §3.1.2.1): the authentication must not
/// have grown older than it while the page waited.
pub fn decide_consent(
    pending: &PendingRequest,
    session: Option<&SignedIn>,
    decision: Option<&str>,
    now: NaiveDateTime,
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
        Some("approve") if !checks::check_auth_age(pending.max_age, auth_time, now) => {
            ConsentOutcome::SignInAgain
        }
        Some("approve") => ConsentOutcome::Approved(Box::new(CodeGrant::for_pending(
            pending,
            user_id,
            auth_time,
            &session.sid,
            &session.amr,
        ))),
        Some("deny") => ConsentOutcome::Denied(pending.error_redirect(ACCESS_DENIED)),
        _ => ConsentOutcome::ChooseAgain,
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Duration};

    use super::*;
    use crate::oidc::apis::Apis;
    use crate::oidc::authorize::checks::tests::{CHALLENGE, client, params, session};
    use crate::oidc::authorize::request::{self, RedirectUri, RequestBinding, ResponseMode};
    use crate::oidc::claims_request::RequestedClaims;

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
        request::parse(
            &params(&query),
            |_| Some(client(first_party)),
            &Apis::empty(),
        )
        .unwrap()
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
            decide(request("", false), None, None, now()),
            Outcome::ShowLogin(_)
        ));
    }

    #[test]
    fn prompt_none_without_a_session_answers_login_required_with_state_and_iss() {
        let redirect = error_of(decide(request("&prompt=none", true), None, None, now()));
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
        let Outcome::IssueCode(grant) = decide(request("", true), Some(signed_in), None, now())
        else {
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
            decide(request("", false), Some(signed_in.clone()), None, now()),
            Outcome::ShowConsent(_, s) if s == signed_in
        ));
        assert!(matches!(
            decide(
                request("&prompt=consent", true),
                Some(signed_in),
                None,
                now()
            ),
            Outcome::ShowConsent(..)
        ));
    }

    #[test]
    fn prompt_none_that_would_need_consent_answers_consent_required() {
        let redirect = error_of(decide(
            request("&prompt=none", false),
            Some(session(now())),
            None,
            now(),
        ));
        assert_eq!(redirect.error, CONSENT_REQUIRED);
    }

    #[test]
    fn prompt_login_or_an_old_session_asks_to_sign_in_again() {
        let old = session(now() - Duration::seconds(61));
        assert!(matches!(
            decide(
                request("&prompt=login", true),
                Some(session(now())),
                None,
                now()
            ),
            Outcome::ShowLogin(_)
        ));
        assert!(matches!(
            decide(request("&max_age=60", true), Some(old.clone()), None, now()),
            Outcome::ShowLogin(_)
        ));
        assert_eq!(
            error_of(decide(
                request("&max_age=60&prompt=none", true),
                Some(old),
                None,
                now()
            ))
            .error,
            REAUTHENTICATION_REQUIRED
        );
    }

    #[test]
    fn rejections_become_pages_or_redirects() {
        let page =
            request::parse(&params("client_id=nobody"), |_| None, &Apis::empty()).unwrap_err();
        assert!(matches!(
            Outcome::from(page),
            Outcome::ErrorPage("The application is unknown.")
        ));
        let query = "client_id=app&redirect_uri=https%3A%2F%2Fapp.example%2Fcb2%3Fx%3D1\
                     &response_type=token&state=s";
        let rejection =
            request::parse(&params(query), |_| Some(client(false)), &Apis::empty()).unwrap_err();
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
            let rejection =
                request::parse(&params(&query), |_| Some(client(false)), &Apis::empty())
                    .unwrap_err();
            assert!(matches!(rejection, request::Rejection::Page(_)), "{extra}");
        }
    }

    #[test]
    fn after_sign_in_only_a_known_first_party_client_skips_consent() {
        let request = pending(Some("u1"));
        assert!(!consent_after_sign_in(&request, Some(&client(true)), None));
        assert!(consent_after_sign_in(&request, Some(&client(false)), None));
        assert!(consent_after_sign_in(&request, None, None));
    }

    #[test]
    fn after_sign_in_prompt_consent_asks_and_a_remembered_consent_skips() {
        let consented = remembered("openid email");
        let mut request = pending(Some("u1"));
        assert!(!consent_after_sign_in(
            &request,
            Some(&client(false)),
            Some(&consented)
        ));
        request.force_consent = true;
        assert!(consent_after_sign_in(&request, Some(&client(true)), None));
        assert!(consent_after_sign_in(
            &request,
            Some(&client(false)),
            Some(&consented)
        ));
    }

    #[test]
    fn a_remembered_consent_issues_a_code_and_a_new_scope_asks_again() {
        let consented = remembered("openid");
        let signed_in = session(now());
        assert!(matches!(
            decide(
                request("&prompt=none", false),
                Some(signed_in.clone()),
                Some(&consented),
                now()
            ),
            Outcome::IssueCode(_)
        ));
        let more = request("&prompt=none", false);
        let more = AuthorizationRequest {
            scope: Scope::parse("openid email").unwrap(),
            ..more
        };
        assert_eq!(
            error_of(decide(
                more,
                Some(signed_in.clone()),
                Some(&consented),
                now()
            ))
            .error,
            CONSENT_REQUIRED
        );
        assert!(matches!(
            decide(
                request("&prompt=consent", false),
                Some(signed_in),
                Some(&consented),
                now()
            ),
            Outcome::ShowConsent(..)
        ));
    }

    fn remembered(scope: &str) -> Remembered {
        Remembered {
            scope: Scope::parse(scope).unwrap(),
            claims: Default::default(),
        }
    }

    fn with_claims(extra: &str, first_party: bool, claims: &str) -> AuthorizationRequest {
        let encoded: String = url::form_urlencoded::byte_serialize(claims.as_bytes()).collect();
        request(&format!("{extra}&claims={encoded}"), first_party)
    }

    #[test]
    fn a_sub_value_makes_another_users_session_unusable() {
        let claims = r#"{"id_token":{"sub":{"value":"u2"}}}"#;
        let alice = session(now());
        assert!(matches!(
            decide(
                with_claims("", true, claims),
                Some(alice.clone()),
                None,
                now()
            ),
            Outcome::ShowLogin(_)
        ));
        assert_eq!(
            error_of(decide(
                with_claims("&prompt=none", true, claims),
                Some(alice.clone()),
                None,
                now()
            ))
            .error,
            SUBJECT_NOT_SIGNED_IN
        );
        let own = r#"{"id_token":{"sub":{"value":"u1"}}}"#;
        assert!(matches!(
            decide(with_claims("&prompt=none", true, own), Some(alice), None, now()),
            Outcome::IssueCode(grant) if grant.request.claims.sub.as_deref() == Some("u1")
        ));
    }

    #[test]
    fn a_claim_beyond_the_remembered_consent_asks_again() {
        let claims = r#"{"userinfo":{"name":{"essential":true}}}"#;
        let signed_in = session(now());
        assert_eq!(
            error_of(decide(
                with_claims("&prompt=none", false, claims),
                Some(signed_in.clone()),
                Some(&remembered("openid")),
                now()
            ))
            .error,
            CONSENT_REQUIRED
        );
        let approved = Remembered {
            claims: ["name".to_owned()].into(),
            ..remembered("openid")
        };
        assert!(matches!(
            decide(
                with_claims("&prompt=none", false, claims),
                Some(signed_in.clone()),
                Some(&approved),
                now()
            ),
            Outcome::IssueCode(_)
        ));
        // A first-party client asks nothing.
        assert!(matches!(
            decide(
                with_claims("&prompt=none", true, claims),
                Some(signed_in),
                None,
                now()
            ),
            Outcome::IssueCode(_)
        ));
    }

    #[test]
    fn an_unmet_essential_acr_or_a_malformed_claims_parameter_goes_back_to_the_client() {
        let parse = |claims: &str| {
            let encoded: String = url::form_urlencoded::byte_serialize(claims.as_bytes()).collect();
            let query = format!(
                "client_id=app&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&response_type=code\
                 &scope=openid&state=xyz&nonce=n1&code_challenge={CHALLENGE}\
                 &code_challenge_method=S256&claims={encoded}"
            );
            let Err(request::Rejection::Redirect(redirect)) =
                request::parse(&params(&query), |_| Some(client(true)), &Apis::empty())
            else {
                panic!("expected a redirect for {claims}");
            };
            redirect
        };
        let unmet = parse(r#"{"id_token":{"acr":{"essential":true,"value":"gold"}}}"#);
        assert_eq!(unmet.error.code, "unmet_authentication_requirements");
        assert_eq!(unmet.state.as_deref(), Some("xyz"));
        assert_eq!(parse("{not json").error.code, "invalid_request");
    }

    fn pending(user: Option<&str>) -> PendingRequest {
        PendingRequest {
            id: "r1".into(),
            request: RequestBinding {
                client_id: "app".into(),
                redirect_uri: RedirectUri::verified("https://app.example/cb".into()),
                redirect_uri_sent: true,
                response_mode: ResponseMode::Query,
                scope: "openid".into(),
                state: Some("xyz".into()),
                nonce: None,
                code_challenge: Some(CHALLENGE.into()),
                claims: RequestedClaims::default(),
            },
            user_id: user.map(str::to_owned),
            auth_time: user.map(|_| now()),
            max_age: None,
            force_consent: false,
            factor_owed: None,
        }
    }

    #[test]
    fn consent_is_given_by_the_user_who_authenticated() {
        let alice = session(now());
        assert!(matches!(
            decide_consent(&pending(Some("u1")), Some(&alice), Some("approve"), now()),
            ConsentOutcome::Approved(grant) if grant.user_id == "u1" && grant.sid == "sid-1"
        ));
        let ConsentOutcome::Denied(redirect) =
            decide_consent(&pending(Some("u1")), Some(&alice), Some("deny"), now())
        else {
            panic!("expected a denial");
        };
        assert_eq!(redirect.error, ACCESS_DENIED);
        assert_eq!(redirect.state.as_deref(), Some("xyz"));
        assert!(matches!(
            decide_consent(&pending(Some("u1")), Some(&alice), Some("maybe"), now()),
            ConsentOutcome::ChooseAgain
        ));
        for (request, session) in [
            (pending(Some("u2")), Some(&alice)),
            (pending(None), Some(&alice)),
            (pending(Some("u1")), None),
        ] {
            assert!(matches!(
                decide_consent(&request, session, Some("approve"), now()),
                ConsentOutcome::SignInFirst
            ));
        }
    }

    #[test]
    fn an_approval_after_max_age_ran_out_signs_in_again() {
        let alice = session(now());
        let mut request = pending(Some("u1"));
        request.max_age = Some(60);
        let later = now() + Duration::seconds(61);
        assert!(matches!(
            decide_consent(&request, Some(&alice), Some("approve"), later),
            ConsentOutcome::SignInAgain
        ));
        assert!(matches!(
            decide_consent(&request, Some(&alice), Some("deny"), later),
            ConsentOutcome::Denied(_)
        ));
        assert!(matches!(
            decide_consent(
                &request,
                Some(&alice),
                Some("approve"),
                now() + Duration::seconds(60)
            ),
            ConsentOutcome::Approved(_)
        ));
    }
}
