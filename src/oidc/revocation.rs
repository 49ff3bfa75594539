//! Token revocation (RFC 7009): a refresh token revokes its whole grant; an access token is put
//! on the revocation list until it expires. Whatever the hint says, both kinds are looked for
//! (§2.1). Unknown tokens count as revoked (§2.2); another client's token is refused and stays
//! valid (REV-03); a storage failure is an error, never reported as success (REV-05).

use chrono::NaiveDateTime;

use super::tokens::AccessClaims;
use crate::db::queries::{oauth as q, refresh as refresh_q};
use crate::db::{Db, DbError, write_transaction};
use crate::secrets::RefreshToken;

/// The answer to a revocation request.
#[derive(Debug, PartialEq, Eq)]
pub enum Revocation {
    /// Revoked, or nothing to revoke: the client gets 200.
    Done,
    /// The token belongs to another client; nothing was changed.
    NotIssuedToClient,
}

/// What revoking a token does, once the token is known.
#[derive(Debug, PartialEq, Eq)]
enum Action {
    /// Revoke the refresh family (and what it issued).
    RevokeGrant { family_id: String },
    /// List the access token `jti` as revoked until `expires_at`.
    RevokeAccessToken {
        jti: String,
        expires_at: NaiveDateTime,
    },
    /// Not ours to touch.
    Refuse,
    /// Unknown: nothing to do.
    Nothing,
}

/// The decision, pure: a refresh token (its family's id and client) wins over an access token;
/// either must have been issued to `client_id`.
fn action(
    family: Option<(&str, &str)>,
    access: Option<&AccessClaims<'_>>,
    client_id: &str,
    now: NaiveDateTime,
) -> Action {
    if let Some((family_id, family_client)) = family {
        if family_client != client_id {
            return Action::Refuse;
        }
        return Action::RevokeGrant {
            family_id: family_id.to_owned(),
        };
    }
    match access {
        Some(claims) if claims.client_id != client_id => Action::Refuse,
        Some(claims) => Action::RevokeAccessToken {
            jti: claims.jti.clone().into_owned(),
            expires_at: chrono::DateTime::from_timestamp(claims.exp, 0)
                .map_or(now, |t| t.naive_utc()),
        },
        None => Action::Nothing,
    }
}

/// Revokes `token` for `client_id`, in one write transaction. `access` is the token's claims
/// when it is one of our unexpired access tokens.
pub async fn revoke(
    db: &Db,
    client_id: &str,
    token: &str,
    access: Option<AccessClaims<'static>>,
    now: NaiveDateTime,
) -> Result<Revocation, DbError> {
    let hash = RefreshToken::presented(token).hash();
    let client_id = client_id.to_owned();
    db.run(move |conn| {
        write_transaction(conn, |conn| {
            let family = refresh_q::find(conn, hash.as_str())?.map(|(_, family)| family);
            let family = family
                .as_ref()
                .map(|f| (f.id.as_str(), f.client_id.as_str()));
            match action(family, access.as_ref(), &client_id, now) {
                Action::Refuse => return Ok::<_, DbError>(Revocation::NotIssuedToClient),
                Action::RevokeGrant { family_id } => {
                    q::revoke_grant(conn, &family_id, "revoked", now)?;
                }
                Action::RevokeAccessToken { jti, expires_at } => {
                    q::revoke_access_token(conn, &jti, &client_id, expires_at, now)?;
                }
                Action::Nothing => {}
            }
            Ok(Revocation::Done)
        })
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> NaiveDateTime {
        chrono::DateTime::from_timestamp(1_700_000_000, 0)
            .unwrap()
            .naive_utc()
    }

    fn access(client_id: &str) -> AccessClaims<'static> {
        AccessClaims {
            iss: "https://id.example".into(),
            sub: "u1".into(),
            aud: "api".into(),
            exp: 1_700_000_900,
            iat: 1_700_000_000,
            nbf: 1_700_000_000,
            jti: "j1".into(),
            client_id: client_id.to_owned().into(),
            scope: Default::default(),
            auth_time: None,
            acr: None,
            amr: None,
            roles: None,
            act: None,
        }
    }

    #[test]
    fn a_refresh_token_revokes_its_grant_for_its_own_client_only() {
        assert_eq!(
            action(Some(("f1", "app")), None, "app", now()),
            Action::RevokeGrant {
                family_id: "f1".into()
            }
        );
        assert_eq!(
            action(Some(("f1", "app")), Some(&access("app")), "other", now()),
            Action::Refuse
        );
    }

    #[test]
    fn an_access_token_is_listed_until_it_expires_for_its_own_client_only() {
        assert_eq!(
            action(None, Some(&access("app")), "app", now()),
            Action::RevokeAccessToken {
                jti: "j1".into(),
                expires_at: now() + chrono::Duration::seconds(900)
            }
        );
        assert_eq!(
            action(None, Some(&access("app")), "other", now()),
            Action::Refuse
        );
    }

    #[test]
    fn an_unknown_token_changes_nothing() {
        assert_eq!(action(None, None, "app", now()), Action::Nothing);
    }
}
