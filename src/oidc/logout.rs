//! RP-Initiated Logout 1.0: which logout request is acceptable, whether the browser's session
//! ends at once or the user is asked first, and ending the session with every grant made in it.
//!
//! Logout is a state change, so it is never done on the strength of a navigation alone
//! (LOGOUT-01): the session ends at once only when a valid `id_token_hint` names this browser's
//! own session (its `sid`, or its user when the token has no `sid`); otherwise the user is asked,
//! on a page that posts back with a CSRF token bound to the session. A browser without a session
//! ends nothing, whatever ID token it carries (LOGOUT-02). The browser goes back only to a
//! registered `post_logout_redirect_uri` of the client named by the hint (or `client_id`).

use std::sync::Arc;

use chrono::NaiveDateTime;

use super::authorize::checks::MAX_STATE;
use super::authorize::request::with_query;
use super::clients::Client;
use super::params::Params;
use super::tokens::IdClaims;
use crate::accounts::browser_sessions::SignedIn;
use crate::db::queries::{oauth as q, refresh as refresh_q};
use crate::db::{Db, DbError, write_transaction};
use crate::secrets::{CsrfToken, SessionSecret};

/// An `id_token_hint` as the token service read it back (one of our ID tokens, expired or not).
#[derive(Clone, Debug)]
pub enum IdTokenHint {
    /// Ours: its claims.
    Valid(Box<IdClaims<'static>>),
    /// Not one of our ID tokens.
    Invalid,
}

/// A validated logout request.
#[derive(Clone, Debug, Default)]
pub struct LogoutRequest {
    /// The client, named by `client_id` or by the hint's audience.
    pub client_id: Option<String>,
    /// A `post_logout_redirect_uri` registered by that client.
    pub post_logout_redirect_uri: Option<String>,
    /// The client's `state` (dropped when longer than the authorization endpoint accepts).
    pub state: Option<String>,
    /// The verified `id_token_hint`.
    pub hint: Option<IdClaims<'static>>,
}

impl LogoutRequest {
    /// Where the browser goes once done: the registered URI with `state`, if one was asked for.
    pub fn redirect_location(&self) -> Option<String> {
        let uri = self.post_logout_redirect_uri.as_ref()?;
        Some(match &self.state {
            Some(state) => with_query(uri, &[("state", state)]),
            None => uri.clone(),
        })
    }
}

/// Parses a logout request; the error is the text of the page the user sees (no redirect).
/// `hint` is the request's `id_token_hint` as verified, if it sent one.
pub fn parse(
    params: &Params,
    hint: Option<IdTokenHint>,
    find_client: impl FnOnce(&str) -> Option<Arc<Client>>,
) -> Result<LogoutRequest, &'static str> {
    let hint = match hint {
        None => None,
        Some(IdTokenHint::Valid(claims)) => Some(*claims),
        Some(IdTokenHint::Invalid) => return Err("The id_token_hint is not valid."),
    };
    let client_id = match (
        params.get("client_id"),
        hint.as_ref().map(|h| h.aud.as_ref()),
    ) {
        (Some(a), Some(b)) if a != b => return Err("client_id does not match the id_token_hint."),
        (Some(a), _) => Some(a.to_owned()),
        (None, b) => b.map(str::to_owned),
    };
    let post_logout_redirect_uri = match params.get("post_logout_redirect_uri") {
        None => None,
        Some(uri) => {
            let registered = client_id
                .as_deref()
                .and_then(find_client)
                .is_some_and(|c| c.post_logout_redirect_uris.iter().any(|r| r == uri));
            if !registered {
                return Err("The post_logout_redirect_uri is not registered for this application.");
            }
            Some(uri.to_owned())
        }
    };
    Ok(LogoutRequest {
        client_id,
        post_logout_redirect_uri,
        state: params
            .get("state")
            .filter(|s| s.len() <= MAX_STATE)
            .map(str::to_owned),
        hint,
    })
}

/// The CSRF token of the logout confirmation: derived from the browser's session secret (an
/// HttpOnly cookie no other site can read), so it needs no storage and is bound to the one
/// session it ends.
pub fn confirmation_token(session_secret: &SessionSecret) -> CsrfToken {
    CsrfToken::bound_to(session_secret, "logout-confirmation")
}

/// The confirmation form posted back (a POST only; a navigation confirms nothing).
#[derive(Clone, Copy, Debug, Default)]
pub struct Confirmation<'a> {
    /// Its CSRF token.
    pub csrf_token: Option<&'a str>,
    /// `stay` keeps the session.
    pub decision: Option<&'a str>,
}

/// What a logout request does to the browser's live session.
#[derive(Debug)]
pub enum LogoutOutcome {
    /// Ask the user, with this CSRF token in the form.
    AskConfirmation {
        /// The confirmation's CSRF token.
        csrf_token: CsrfToken,
    },
    /// The user chose to stay signed in.
    StillSignedIn,
    /// End the session (and every grant made in it).
    EndSession,
}

/// Decides a logout request for the browser's live `session` (cookie `session_secret`);
/// `posted` is the confirmation form, when the request is a POST.
pub fn decide(
    request: &LogoutRequest,
    session: &SignedIn,
    session_secret: &SessionSecret,
    posted: Option<Confirmation<'_>>,
) -> LogoutOutcome {
    let hint_matches = request.hint.as_ref().is_some_and(|h| match &h.sid {
        Some(sid) => *sid == session.sid,
        None => h.sub == session.user_id,
    });
    let expected = confirmation_token(session_secret);
    // Compared in constant time.
    let confirmed = posted
        .and_then(|p| p.csrf_token)
        .is_some_and(|token| expected.matches(token));
    if confirmed && posted.and_then(|p| p.decision) == Some("stay") {
        return LogoutOutcome::StillSignedIn;
    }
    if !hint_matches && !confirmed {
        return LogoutOutcome::AskConfirmation {
            csrf_token: expected,
        };
    }
    LogoutOutcome::EndSession
}

/// Ends the browser session of cookie `session_secret` and revokes every grant made in it, in
/// one write transaction.
pub async fn end_session(
    db: &Db,
    session_secret: &SessionSecret,
    now: NaiveDateTime,
) -> Result<(), DbError> {
    let hash = session_secret.hash();
    db.run(move |conn| {
        write_transaction(conn, |conn| {
            if let Some(sid) = q::end_session(conn, hash.as_str(), now)? {
                refresh_q::revoke_session_families(conn, &sid, "logout", now)?;
            }
            Ok::<_, DbError>(())
        })
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(query: &str) -> Params {
        Params::parse(query.as_bytes()).unwrap()
    }

    fn hint(sub: &str, sid: Option<&str>) -> IdTokenHint {
        IdTokenHint::Valid(Box::new(IdClaims {
            iss: "https://id.example".into(),
            sub: sub.to_owned().into(),
            aud: "app".into(),
            exp: 0,
            iat: 0,
            auth_time: 0,
            nonce: None,
            at_hash: String::new(),
            sid: sid.map(|s| s.to_owned().into()),
            azp: "app".into(),
            acr: None,
            user_claims: std::collections::BTreeMap::new(),
            amr: None,
        }))
    }

    fn claims(hint: IdTokenHint) -> IdClaims<'static> {
        match hint {
            IdTokenHint::Valid(claims) => *claims,
            IdTokenHint::Invalid => panic!("a valid hint"),
        }
    }

    fn client() -> Arc<Client> {
        let mut client = Client::for_tests("app", &["https://app.example/cb"], false);
        client.post_logout_redirect_uris = vec!["https://app.example/bye".into()];
        Arc::new(client)
    }

    fn session() -> SignedIn {
        SignedIn {
            user_id: "u1".into(),
            username: "alice".into(),
            sid: "sid-1".into(),
            auth_time: NaiveDateTime::default(),
            amr: "pwd".into(),
        }
    }

    #[test]
    fn only_a_registered_uri_of_the_hinted_client_is_redirected_to() {
        let ok = parse(
            &params("id_token_hint=t&post_logout_redirect_uri=https://app.example/bye&state=s"),
            Some(hint("u1", None)),
            |_| Some(client()),
        )
        .unwrap();
        assert_eq!(ok.client_id.as_deref(), Some("app"));
        assert_eq!(
            ok.redirect_location().as_deref(),
            Some("https://app.example/bye?state=s")
        );
        assert_eq!(
            parse(
                &params("id_token_hint=t"),
                Some(IdTokenHint::Invalid),
                |_| None
            )
            .unwrap_err(),
            "The id_token_hint is not valid."
        );
        assert_eq!(
            parse(
                &params("id_token_hint=t&client_id=other"),
                Some(hint("u1", None)),
                |_| None
            )
            .unwrap_err(),
            "client_id does not match the id_token_hint."
        );
        for query in [
            "client_id=app&post_logout_redirect_uri=https://evil.example/",
            "post_logout_redirect_uri=https://app.example/bye",
        ] {
            assert!(
                parse(&params(query), None, |_| Some(client())).is_err(),
                "{query}"
            );
        }
        let long = "s".repeat(MAX_STATE + 1);
        let dropped = parse(&params(&format!("state={long}")), None, |_| None).unwrap();
        assert_eq!(dropped.state, None);
    }

    #[test]
    fn a_hint_for_this_session_ends_it_at_once() {
        let secret = SessionSecret::presented("secret");
        for hint in [hint("u2", Some("sid-1")), hint("u1", None)] {
            let request = LogoutRequest {
                hint: Some(claims(hint)),
                ..LogoutRequest::default()
            };
            assert!(matches!(
                decide(&request, &session(), &secret, None),
                LogoutOutcome::EndSession
            ));
        }
    }

    #[test]
    fn otherwise_the_user_confirms_with_a_token_bound_to_the_session() {
        let secret = SessionSecret::presented("secret");
        let other = LogoutRequest {
            hint: Some(claims(hint("u1", Some("sid-other")))),
            ..LogoutRequest::default()
        };
        let LogoutOutcome::AskConfirmation { csrf_token } =
            decide(&other, &session(), &secret, None)
        else {
            panic!("expected a confirmation page");
        };
        assert!(confirmation_token(&secret).matches(csrf_token.expose()));
        let another = SessionSecret::presented("another secret");
        assert!(!confirmation_token(&another).matches(csrf_token.expose()));
        let posted = |csrf_token, decision| {
            Some(Confirmation {
                csrf_token: Some(csrf_token),
                decision,
            })
        };
        assert!(matches!(
            decide(
                &other,
                &session(),
                &secret,
                posted(csrf_token.expose(), None)
            ),
            LogoutOutcome::EndSession
        ));
        assert!(matches!(
            decide(
                &other,
                &session(),
                &secret,
                posted(csrf_token.expose(), Some("stay"))
            ),
            LogoutOutcome::StillSignedIn
        ));
        assert!(matches!(
            decide(&other, &session(), &secret, posted("forged", None)),
            LogoutOutcome::AskConfirmation { .. }
        ));
    }
}
