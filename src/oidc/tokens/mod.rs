//! The one token model. Every token this server issues is made here — access tokens (RFC 9068)
//! for every grant of the token endpoint and for the first-party JSON API, ID tokens, and the
//! one refresh path both share — and the server's own tokens are read back here, by the
//! `verify` rules (one policy, with server-side options), for introspection, userinfo,
//! revocation, `id_token_hint` and the endpoints that act for a user.
//!
//! The service holds only what it needs: the database handle, the signer, its settings, the
//! issuer, a clock and the metrics registry. Adding a claim (`acr`, `act`, `cnf`) is one change in [`AccessClaims`] and
//! [`TokenService::sign_access_token`].

mod claims;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::Value;

pub use claims::{
    ACR_MFA, ACR_PASSWORD, AMR_PASSWORD, AccessClaims, IdClaims, UserInfoClaims, acr_of, amr_claim,
    at_hash,
};

use super::clients::Client;
use super::issuer::Issuer;
use super::settings::TokenSettings;
use super::subjects::PairwiseSubjects;
use crate::accounts::factors::{
    self, SIGNED_IN_WITH_PASSWORD, SIGNED_IN_WITH_PASSWORD_AND_OTP, SecondFactorPolicy,
};
use crate::accounts::sessions::{
    self, AccessRecord, AuthError, Authenticated, FIRST_PARTY_CLIENT_ID, Grant, RefreshPolicy,
    Refreshed,
};
use crate::clock::Clock;
use crate::db::models::UserRow;
use crate::db::queries::oauth as oauth_q;
use crate::db::{Db, write_transaction};
use crate::keys::{IdTokenAlg, SignError, Signer, SigningAlg, signer};
use crate::metrics::Metrics;
use crate::secrets::{DeviceSecret, FactorChallenge, RefreshToken};
use crate::verify::{
    Actor, ConfigError, Scope, TokenKind, Verified, Verifier, VerifierConfig, VerifyError,
};

/// The largest token the server reads back (its own tokens are far smaller).
const MAX_OWN_TOKEN_BYTES: usize = 16 * 1024;

/// Who an access token is issued to.
#[derive(Clone, Copy, Debug)]
pub enum Recipient<'a> {
    /// An OAuth client: its own algorithm and audiences; roles only for a first-party client.
    Client(&'a Client),
    /// The first-party JSON API (`portcullis`): the configured algorithm and audience; roles.
    FirstParty,
}

impl Recipient<'_> {
    /// The `client_id` of its tokens.
    pub fn client_id(&self) -> &str {
        match self {
            Self::Client(client) => &client.client_id,
            Self::FirstParty => FIRST_PARTY_CLIENT_ID,
        }
    }
}

/// Whom an access token speaks for.
#[derive(Clone, Copy, Debug)]
pub enum Subject<'a> {
    /// A user: `sub` is the user id, as the recipient sees it (a pairwise client: its pairwise
    /// identifier, [`crate::oidc::subjects`]).
    User {
        /// The user id.
        id: &'a str,
        /// Their roles (carried by first-party tokens only).
        roles: &'a [String],
        /// When they authenticated, for OAuth grants (`auth_time`).
        auth_time: Option<NaiveDateTime>,
        /// How they signed in (RFC 8176 methods, space-separated): the token's `acr` and `amr`.
        amr: &'a str,
    },
    /// The client itself (`client_credentials`): `sub` is the client id.
    Client,
}

/// How a token was obtained: the `grant` label of the issued-tokens metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GrantKind {
    /// The JSON API's password login.
    Password,
    /// `authorization_code`.
    AuthorizationCode,
    /// A refresh: `refresh_token` at the token endpoint, `refresh` in the JSON API.
    Refresh,
    /// `client_credentials`.
    ClientCredentials,
    /// The device authorization grant (RFC 8628).
    DeviceCode,
    /// Token exchange (RFC 8693).
    TokenExchange,
}

impl GrantKind {
    fn label(self, recipient: Recipient<'_>) -> &'static str {
        match (self, recipient) {
            (Self::Password, _) => "password",
            (Self::AuthorizationCode, _) => "authorization_code",
            (Self::Refresh, Recipient::FirstParty) => "refresh",
            (Self::Refresh, Recipient::Client(_)) => "refresh_token",
            (Self::ClientCredentials, _) => "client_credentials",
            (Self::DeviceCode, _) => "device_code",
            (Self::TokenExchange, _) => "token_exchange",
        }
    }
}

/// An access token to issue.
#[derive(Clone, Copy, Debug)]
pub struct AccessRequest<'a> {
    /// Who receives it.
    pub recipient: Recipient<'a>,
    /// Whom it speaks for.
    pub subject: Subject<'a>,
    /// Granted scope.
    pub scope: &'a Scope,
    /// The audience when the request chose one (RFC 8707); `None`: the recipient's default.
    pub audience: Option<&'a str>,
    /// How it was obtained.
    pub grant: GrantKind,
    /// Who acts for the subject (RFC 8693 §4.1), tokens of token exchange only.
    pub actor: Option<&'a Actor>,
}

/// An ID token to issue.
#[derive(Clone, Copy, Debug)]
pub struct IdTokenRequest<'a> {
    /// The client (audience and algorithm).
    pub client: &'a Client,
    /// The user.
    pub user: &'a UserRow,
    /// Granted scope.
    pub scope: &'a Scope,
    /// When the user authenticated.
    pub auth_time: NaiveDateTime,
    /// The request's nonce (not on refresh).
    pub nonce: Option<&'a str>,
    /// The browser session.
    pub sid: Option<&'a str>,
    /// The access token issued with it.
    pub access_token: &'a str,
    /// How the user signed in (RFC 8176 methods, space-separated): `acr` and `amr`.
    pub amr: &'a str,
    /// The user claims the `claims` parameter asked for in the ID token, with their values
    /// (OIDC Core §5.5; see [`super::standard_claims::id_token_claims`]).
    pub user_claims: &'a BTreeMap<String, Value>,
}

/// A signed access token (`Debug` leaves the bearer token out).
pub struct SignedAccess {
    /// The JWT.
    pub token: String,
    /// Seconds until it expires.
    pub expires_in: u64,
}

impl std::fmt::Debug for SignedAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignedAccess")
            .field("token", &"<redacted>")
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

/// Tokens the first-party JSON API hands out (login, refresh). `Debug` leaves the tokens out.
pub struct Issued {
    /// The access token (JWT).
    pub access_token: String,
    /// Seconds until it expires.
    pub expires_in: u64,
    /// The refresh token.
    pub refresh_token: RefreshToken,
    /// A device cookie to set: the login made this device trusted for the account.
    pub new_device: Option<DeviceSecret>,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issued")
            .field("access_token", &"<redacted>")
            .field("expires_in", &self.expires_in)
            .field("refresh_token", &self.refresh_token)
            .field("new_device", &self.new_device)
            .finish()
    }
}

/// How a JSON API login completes.
pub enum SignIn {
    /// The password was enough.
    Password(Box<Authenticated>),
    /// The password matched earlier, and now a second factor for `challenge`.
    SecondFactor {
        /// The user.
        user_id: String,
        /// The challenge, spent once in the write that issues the tokens.
        challenge: FactorChallenge,
    },
}

impl std::fmt::Debug for SignIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Password(authenticated) => f
                .debug_tuple("Password")
                .field(&authenticated.user.id)
                .finish(),
            Self::SecondFactor { user_id, .. } => f
                .debug_struct("SecondFactor")
                .field("user_id", user_id)
                .finish_non_exhaustive(),
        }
    }
}

/// A refresh through the one rotation path: the new access token, its scope, and the rotation
/// (successor refresh token, user, roles, what the family grants).
#[derive(Debug)]
pub struct RefreshedTokens {
    /// The new access token.
    pub access: SignedAccess,
    /// Its scope: the requested narrowing, else the family's.
    pub scope: Scope,
    /// The rotation.
    pub rotation: Refreshed,
}

/// A fresh `jti`: a random (version 4) UUID from aws-lc's userspace DRBG, which costs no system
/// call per token (uuid's own `new_v4` asks the kernel each time, one `getrandom` per token on
/// the client_credentials hot path).
fn new_jti() -> String {
    let mut bytes = [0u8; 16];
    if aws_lc_rs::rand::fill(&mut bytes).is_err() {
        return uuid::Uuid::new_v4().to_string();
    }
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

/// Issues and reads back this server's tokens. Built once at start; cheap to share.
pub struct TokenService {
    db: Db,
    signer: Signer,
    issuer: Issuer,
    first_party_audience: String,
    settings: TokenSettings,
    clock: Clock,
    metrics: Arc<Metrics>,
    /// Pairwise subject identifiers (OIDC Core §8.1).
    subjects: PairwiseSubjects,
    /// The JSON API's tokens, for the endpoints that act for a user (`/api/me`, the admin
    /// API): the rules of every resource server, the JSON API's audience.
    first_party: Verifier,
    /// Any of our access tokens, whatever its audience (introspection, userinfo, revocation).
    own_access: Verifier,
    /// Our ID tokens, expired or not (`id_token_hint`).
    own_id: Verifier,
}

impl TokenService {
    /// The service for `issuer`. Its verifiers hold no keys until [`TokenService::install_jwks`].
    pub fn new(
        db: Db,
        signer: Signer,
        issuer: Issuer,
        settings: TokenSettings,
        clock: Clock,
        metrics: Arc<Metrics>,
        subjects: PairwiseSubjects,
    ) -> Result<Self, ConfigError> {
        let first_party_audience = settings
            .access_token_audience
            .clone()
            .unwrap_or_else(|| issuer.as_str().to_owned());
        let mut first_party = VerifierConfig::for_issuer(issuer.as_str());
        first_party.audiences = vec![first_party_audience.clone()];
        // The issuer's own endpoints: any audience of ours, no leeway (the clock that signed is
        // the clock that checks).
        let mut own_access = VerifierConfig::for_issuer(issuer.as_str());
        own_access.audiences = Vec::new();
        own_access.any_audience = true;
        own_access.leeway = Duration::ZERO;
        own_access.max_token_bytes = MAX_OWN_TOKEN_BYTES;
        let own_id = VerifierConfig {
            token_kind: TokenKind::Id,
            check_expiry: false,
            ..own_access.clone()
        };
        Ok(Self {
            db,
            signer,
            issuer,
            first_party_audience,
            settings,
            clock,
            metrics,
            subjects,
            first_party: Verifier::local(first_party)?,
            own_access: Verifier::local(own_access)?,
            own_id: Verifier::local(own_id)?,
        })
    }

    /// The issuer identifier, as in `iss`.
    pub fn issuer(&self) -> &Issuer {
        &self.issuer
    }

    /// The `sub` `client` sees for `user_id` (OIDC Core §8): the user id, or for a pairwise
    /// client its pairwise identifier.
    ///
    /// # Errors
    /// [`SignError::Crypto`] if the crypto library refuses (should not happen).
    pub fn subject_for<'a>(
        &self,
        client: &Client,
        user_id: &'a str,
    ) -> Result<Cow<'a, str>, SignError> {
        self.subjects.subject(&client.subject_type, user_id)
    }

    /// The user id behind the `sub` of one of our own (verified) tokens: a pairwise identifier
    /// opened back, else the `sub` itself.
    pub fn user_id_of<'a>(&self, sub: &'a str) -> Cow<'a, str> {
        self.subjects.user_id(sub)
    }

    /// The user a `claims` request's `sub` value names (OIDC Core §5.5.1) for `client`: for a
    /// public client, the value as asked; for a pairwise client, the user whose identifier in
    /// its sector it is, and `None` for any other value (a user id, another sector's
    /// identifier): it names nobody this client knows.
    pub fn requested_user(&self, client: &Client, asked: &str) -> Option<String> {
        if client.subject_type.sector().is_none() {
            return Some(asked.to_owned());
        }
        let user = self.subjects.user_id(asked);
        match self.subjects.subject(&client.subject_type, &user) {
            Ok(own) if own == asked && user != asked => Some(user.into_owned()),
            _ => None,
        }
    }

    /// The refresh-family lifetimes and reuse grace, as the rotation takes them.
    fn refresh_policy(&self) -> RefreshPolicy {
        RefreshPolicy {
            idle_ttl: self.settings.refresh_idle_ttl,
            absolute_ttl: self.settings.refresh_absolute_ttl,
            reuse_grace: self.settings.refresh_reuse_grace,
        }
    }

    /// The settings.
    pub fn settings(&self) -> &TokenSettings {
        &self.settings
    }

    /// The database handle (the grants' storage).
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The clock tokens are issued and checked by.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// The verifier of the JSON API's tokens (also the `Authenticated` extractor's).
    pub fn first_party_verifier(&self) -> &Verifier {
        &self.first_party
    }

    /// Makes `jwks` (the published keys) the keys every own-token check uses.
    pub fn install_jwks(&self, jwks: &[u8]) -> Result<(), String> {
        for verifier in [&self.first_party, &self.own_access, &self.own_id] {
            verifier.install_jwks(jwks)?;
        }
        Ok(())
    }

    fn now_secs(&self) -> u64 {
        u64::try_from(self.clock.now().timestamp()).unwrap_or_default()
    }

    /// The record of an access token issued at `now`: a fresh `jti`, `iat`, expiry.
    pub fn access_record(&self, now: DateTime<Utc>) -> AccessRecord {
        AccessRecord::new(new_jti(), now, self.settings.access_token_ttl)
    }

    /// Signs an RFC 9068 access token (`typ: at+jwt`) for `record` (`jti`, `iat`, expiry: `exp`
    /// is the record's `expires_at`, so a token shorter than the usual lifetime is a record
    /// with an earlier expiry) with the recipient's algorithm, and counts it. Never touches the
    /// database.
    pub fn sign_access_token(
        &self,
        request: &AccessRequest<'_>,
        record: &AccessRecord,
    ) -> Result<SignedAccess, SignError> {
        let exp = record.expires_at.and_utc().timestamp();
        let (client_id, alg, default_audience, carries_roles) = match request.recipient {
            Recipient::Client(client) => (
                client.client_id.as_str(),
                client.access_token_alg,
                client.default_audience(self.issuer.as_str()),
                client.first_party,
            ),
            Recipient::FirstParty => (
                FIRST_PARTY_CLIENT_ID,
                self.settings.access_token_alg,
                self.first_party_audience.as_str(),
                true,
            ),
        };
        let (subject, roles, auth_time, amr) = match request.subject {
            Subject::User {
                id,
                roles,
                auth_time,
                amr,
            } => {
                let sub = match request.recipient {
                    Recipient::Client(client) => self.subject_for(client, id)?,
                    Recipient::FirstParty => Cow::Borrowed(id),
                };
                (sub, carries_roles.then_some(roles), auth_time, Some(amr))
            }
            Subject::Client => (Cow::Borrowed(client_id), None, None, None),
        };
        let claims = AccessClaims {
            iss: Cow::Borrowed(self.issuer.as_str()),
            sub: subject,
            aud: Cow::Borrowed(request.audience.unwrap_or(default_audience)),
            exp,
            iat: record.issued_at,
            nbf: record.issued_at,
            jti: Cow::Borrowed(&record.jti),
            client_id: Cow::Borrowed(client_id),
            scope: Cow::Borrowed(request.scope),
            auth_time: auth_time.map(|t| t.and_utc().timestamp()),
            acr: amr.map(|amr| Cow::Borrowed(acr_of(amr))),
            amr: amr.map(amr_claim),
            roles: roles.map(Cow::Borrowed),
            act: request.actor.map(Cow::Borrowed),
        };
        // RFC 9068 §2.1: `typ` is `at+jwt`.
        let token = self.signer.sign(alg, "at+jwt", &claims)?;
        self.metrics
            .token_issued(request.grant.label(request.recipient), alg.as_str());
        Ok(SignedAccess {
            token,
            expires_in: u64::try_from(exp.saturating_sub(record.issued_at)).unwrap_or_default(),
        })
    }

    /// Signs an ID token with the client's ID-token algorithm (RS256 by default); for a client
    /// registered with `none` it is an Unsecured JWS with the same claims ([`IdTokenAlg`],
    /// [`signer::unsecured`]). It is always issued with an access token, so the scopes' claims
    /// are left to userinfo (OIDC Core §5.4); it carries the user claims the `claims` parameter
    /// asked for in it (§5.5).
    pub fn sign_id_token(&self, request: &IdTokenRequest<'_>) -> Result<String, SignError> {
        let iat = self.clock.now().timestamp();
        let ttl = i64::try_from(self.settings.id_token_ttl.as_secs()).unwrap_or(i64::MAX / 2);
        let client_id = request.client.client_id.as_str();
        let claims = IdClaims {
            iss: Cow::Borrowed(self.issuer.as_str()),
            sub: self.subject_for(request.client, &request.user.id)?,
            aud: Cow::Borrowed(client_id),
            exp: iat.saturating_add(ttl),
            iat,
            auth_time: request.auth_time.and_utc().timestamp(),
            nonce: request.nonce.map(Cow::Borrowed),
            at_hash: at_hash(request.access_token),
            // A pairwise client's `sid` is sealed for its sector as its `sub` is: the browser
            // session's id would otherwise link its users with other sectors' clients.
            sid: request
                .sid
                .map(|sid| self.subjects.subject(&request.client.subject_type, sid))
                .transpose()?,
            azp: Cow::Borrowed(client_id),
            // The class the sign-in met: a request that needed the multi-factor class got a
            // multi-factor sign-in; other `acr_values` are answered with what was met (acr is a
            // voluntary claim unless asked essential, OIDC Core §3.1.2.1, §5.5.1.1).
            acr: Some(Cow::Borrowed(acr_of(request.amr))),
            amr: Some(amr_claim(request.amr)),
            user_claims: request.user_claims.clone(),
        };
        match request.client.id_token_alg {
            IdTokenAlg::Signed(alg) => self.signer.sign(alg, "JWT", &claims),
            // OIDC Registration §2: `none` only for clients that get no ID token from the
            // authorization endpoint, which is every client here (response type `code` only):
            // this one leaves by the token endpoint, over TLS (OIDC Core §3.1.3.7 item 6).
            IdTokenAlg::Unsigned => signer::unsecured("JWT", &claims),
        }
    }

    /// Signs a userinfo response (OIDC Core §5.3.2) for `client_id` with the active key of
    /// `alg` (the client's registered `userinfo_signed_response_alg`): `iss`, `aud` the client,
    /// `iat` now, then `user_claims` ([`UserInfoClaims`]). The header's `alg` and `kid` are the
    /// key's ([`Signer::sign`]); `typ` is `JWT`.
    ///
    /// # Errors
    /// No active key of `alg`, or the crypto library refused ([`SignError`]).
    pub fn sign_userinfo(
        &self,
        client_id: &str,
        alg: SigningAlg,
        user_claims: &BTreeMap<String, Value>,
    ) -> Result<String, SignError> {
        let claims = UserInfoClaims {
            iss: Cow::Borrowed(self.issuer.as_str()),
            aud: Cow::Borrowed(client_id),
            iat: self.clock.now().timestamp(),
            user_claims,
        };
        self.signer.sign(alg, "JWT", &claims)
    }

    /// The JSON API's login, after [`sessions::Authenticator::authenticate`] (and, when one was
    /// owed, the second factor): the password attempt is forgiven (or the second-factor
    /// challenge spent, once), a refresh family started and the access token recorded in one
    /// write transaction; then the access token is signed.
    pub async fn login(&self, sign_in: SignIn, client_ip: IpAddr) -> Result<Issued, AuthError> {
        let (user_id, new_device, amr) = match &sign_in {
            SignIn::Password(authenticated) => (
                authenticated.user.id.clone(),
                authenticated.new_device_secret(),
                SIGNED_IN_WITH_PASSWORD,
            ),
            SignIn::SecondFactor { user_id, .. } => {
                (user_id.clone(), None, SIGNED_IN_WITH_PASSWORD_AND_OTP)
            }
        };
        let now = self.clock.now();
        let record = self.access_record(now);
        let stored = record.clone();
        let absolute_ttl = self.settings.refresh_absolute_ttl;
        let owner = user_id.clone();
        let (refresh_token, roles) = self
            .db
            .run(move |conn| {
                write_transaction(conn, |conn| {
                    match &sign_in {
                        SignIn::Password(authenticated) => authenticated.forgive(conn)?,
                        SignIn::SecondFactor { challenge, .. } => {
                            // Single use: of concurrent completions exactly one gets tokens.
                            if !factors::complete_challenge(conn, challenge, now.naive_utc())? {
                                return Err(AuthError::InvalidGrant);
                            }
                        }
                    }
                    let (family, token) = sessions::start_family(
                        conn,
                        &owner,
                        &Grant::first_party(amr),
                        absolute_ttl,
                        now.naive_utc(),
                    )?;
                    oauth_q::insert_access_token(
                        conn,
                        &stored.row(&owner, FIRST_PARTY_CLIENT_ID, Some(&family)),
                    )?;
                    let roles = sessions::roles_of(conn, &owner)?;
                    Ok::<_, AuthError>((token, roles))
                })
            })
            .await?;
        let scope = sessions::first_party_scope();
        let access = self.sign_access_token(
            &AccessRequest {
                recipient: Recipient::FirstParty,
                subject: Subject::User {
                    id: &user_id,
                    roles: &roles,
                    auth_time: None,
                    amr,
                },
                scope: &scope,
                audience: None,
                grant: GrantKind::Password,
                actor: None,
            },
            &record,
        )?;
        tracing::info!(%user_id, %client_ip, "login");
        Ok(Issued {
            access_token: access.token,
            expires_in: access.expires_in,
            refresh_token,
            new_device,
        })
    }

    /// The one refresh path, of the token endpoint's `refresh_token` grant and of the JSON API:
    /// the presented token is rotated for `recipient` (reuse detection, the client binding,
    /// the new access token recorded in the same write), then the access token is signed with
    /// the `requested` narrowing of the scope (checked by the caller), else the family's scope,
    /// for `audience` (a resource of the grant, RFC 8707 §2.2, checked by the caller), else the
    /// recipient's default.
    pub async fn refresh(
        &self,
        recipient: Recipient<'_>,
        presented: &RefreshToken,
        requested: Option<Scope>,
        audience: Option<&str>,
    ) -> Result<RefreshedTokens, AuthError> {
        let now = self.clock.now();
        let record = self.access_record(now);
        let rotation = sessions::rotate(
            &self.db,
            self.refresh_policy(),
            now.naive_utc(),
            presented,
            recipient.client_id().to_owned(),
            record.clone(),
            &self.metrics,
        )
        .await?;
        // No bypass: a grant from a password-only sign-in does not refresh where a second
        // factor is now required (the deployment's policy, or the client's); it ends.
        let policy = match recipient {
            Recipient::Client(client) => {
                self.settings.second_factor.strictest(client.second_factor)
            }
            Recipient::FirstParty => self.settings.second_factor,
        };
        if policy == SecondFactorPolicy::Required && !factors::is_multi_factor(&rotation.grant.amr)
        {
            let family = rotation.family_id.clone();
            let at = now.naive_utc();
            self.db
                .run(move |conn| {
                    write_transaction(conn, |conn| {
                        oauth_q::revoke_grant(conn, &family, "second_factor_required", at)
                    })
                    .map_err(AuthError::from)
                })
                .await?;
            tracing::warn!(user_id = %rotation.user_id, family_id = %rotation.family_id, "refresh refused: the grant's sign-in had no second factor, which is now required");
            return Err(AuthError::InvalidGrant);
        }
        let scope = requested.unwrap_or_else(|| rotation.grant.scope.clone());
        let access = self.sign_access_token(
            &AccessRequest {
                recipient,
                subject: Subject::User {
                    id: &rotation.user_id,
                    roles: &rotation.roles,
                    auth_time: rotation.grant.auth_time,
                    amr: &rotation.grant.amr,
                },
                scope: &scope,
                audience,
                grant: GrantKind::Refresh,
                actor: None,
            },
            &record,
        )?;
        Ok(RefreshedTokens {
            access,
            scope,
            rotation,
        })
    }

    /// The JSON API's refresh: [`TokenService::refresh`] for the first-party client.
    pub async fn refresh_first_party(&self, presented: &RefreshToken) -> Result<Issued, AuthError> {
        let refreshed = self
            .refresh(Recipient::FirstParty, presented, None, None)
            .await?;
        Ok(Issued {
            access_token: refreshed.access.token,
            expires_in: refreshed.access.expires_in,
            refresh_token: refreshed.rotation.token,
            new_device: None,
        })
    }

    /// One of our unexpired access tokens, of any audience, or `None`.
    pub async fn verify_access_token(&self, token: &str) -> Option<AccessClaims<'static>> {
        self.own_access
            .verify_at::<AccessClaims<'static>>(token, self.now_secs())
            .await
            .ok()
            .map(|verified| verified.claims)
    }

    /// One of our ID tokens, expired or not (an `id_token_hint` may be old), or `None`; its
    /// `sub` is the user id and its `sid` the browser session's id (pairwise ones opened back).
    pub async fn verify_id_token_hint(&self, token: &str) -> Option<IdClaims<'static>> {
        let mut claims = self
            .own_id
            .verify_at::<IdClaims<'static>>(token, self.now_secs())
            .await
            .ok()?
            .claims;
        if let Cow::Owned(user_id) = self.user_id_of(&claims.sub) {
            claims.sub = Cow::Owned(user_id);
        }
        if let Some(Cow::Owned(sid)) = claims.sid.as_deref().map(|sid| self.user_id_of(sid)) {
            claims.sid = Some(Cow::Owned(sid));
        }
        Some(claims)
    }

    /// A JSON API access token, by the rules of every resource server (`/api/me`, the admin
    /// API).
    pub async fn verify_first_party(
        &self,
        token: &str,
    ) -> Result<Verified<crate::verify::AccessClaims>, VerifyError> {
        self.first_party.verify_at(token, self.now_secs()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_tokens_never_print() {
        let issued = Issued {
            access_token: "eyJhbGciOiJFUzI1NiJ9.secret.sig".into(),
            expires_in: 900,
            refresh_token: RefreshToken::presented("refresh-secret"),
            new_device: Some(DeviceSecret::presented("device-secret")),
        };
        let printed = format!("{issued:?}");
        for secret in ["secret.sig", "refresh-secret", "device-secret"] {
            assert!(!printed.contains(secret), "{printed}");
        }
        assert!(printed.contains("900"));
    }
}
