//! The bearer extractor of endpoints that act for a user on this server's own tokens (`/api/me`,
//! logout everywhere, the admin API): the token is verified by the same rules as every resource
//! server (`portcullis::verify`, the JSON API's audience), and then its user's *current* state
//! is checked in the database ([`crate::accounts::current`]): a revoked, disabled or logged-out
//! user's token stops working on the next request, on every instance (ADM-04).

use std::future::Future;
use std::pin::Pin;

use actix_web::{FromRequest, HttpRequest, web};

use crate::accounts::current::{self, CurrentUser};
use crate::http::error::Fault;
use crate::state::AppState;
use crate::verify::actix::{BearerError, bearer_token};
use crate::verify::{AccessClaims, VerifyError};

/// A verified access token whose user is current: the user and roles as the database says now.
pub struct UserBearer {
    /// The user, their current roles, and the client the token was issued to.
    pub current: CurrentUser,
    /// The token's claims.
    pub claims: AccessClaims,
}

/// Why a bearer token was not accepted, with the subject when the signature held (for the
/// audit record of a refused admin call).
pub struct Refused {
    /// The RFC 6750 answer.
    pub error: BearerError,
    /// `sub` of a token whose signature verified, and why it no longer counts.
    pub stale: Option<(String, current::NotCurrent)>,
}

impl From<BearerError> for Refused {
    fn from(error: BearerError) -> Self {
        Self { error, stale: None }
    }
}

impl UserBearer {
    /// Verifies the request's bearer token and checks its user's current state.
    pub async fn extract(request: &HttpRequest) -> Result<Self, Refused> {
        let state = request
            .app_data::<web::Data<AppState>>()
            .cloned()
            .ok_or(BearerError::NotConfigured)?;
        let token = bearer_token(request)?;
        let verified = state
            .tokens
            .verify_first_party(&token)
            .await
            .map_err(BearerError::from)?;
        let claims = verified.claims;
        let jti = claims
            .jti
            .clone()
            .ok_or(BearerError::Invalid(VerifyError::InvalidClaim("jti")))?;
        let subject = claims.sub.clone();
        let lookup = subject.clone();
        let standing = state
            .db
            .run(move |conn| {
                current::current_user(conn, &jti, &lookup).map_err(crate::db::DbError::Query)
            })
            .await
            .map_err(|error| Fault::from(error).into_bearer())?;
        match standing {
            Ok(current) => Ok(Self { current, claims }),
            Err(why) => {
                tracing::info!(user_id = %subject, reason = %why, "bearer token no longer speaks for its user");
                Err(Refused {
                    error: BearerError::Invalid(VerifyError::Rejected(why.to_string())),
                    stale: Some((subject, why)),
                })
            }
        }
    }
}

impl FromRequest for UserBearer {
    type Error = BearerError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, BearerError>>>>;

    fn from_request(request: &HttpRequest, _payload: &mut actix_web::dev::Payload) -> Self::Future {
        let request = request.clone();
        Box::pin(async move {
            Self::extract(&request)
                .await
                .map_err(|refused| refused.error)
        })
    }
}
