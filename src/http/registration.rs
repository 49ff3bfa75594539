//! Dynamic client registration: `POST /register` (RFC 7591 §3) and the client configuration
//! endpoint `GET/PUT/DELETE /register/{client_id}` (RFC 7592 §2). The decisions are
//! `oidc::registration`'s; here the bearer token, the client address and the JSON body are read
//! and the outcome is answered: 201/200 JSON (`Cache-Control: no-store`), 204 for a deletion,
//! RFC 7591 §3.2.2 errors (`invalid_redirect_uri`, `invalid_client_metadata`,
//! `unapproved_software_statement`: 400 `{error, error_description}`), RFC 6750 for tokens (401,
//! `invalid_token`), 429 with `Retry-After` for a spent open-registration budget, 404 when
//! registration is off.

use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE, PRAGMA};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};

use crate::http::auth_api::client_ip;
use crate::http::error::{self, ApiError, Fault};
use crate::oidc::registration::{
    self, ClientInformation, Credential, MAX_METADATA_BODY, RegistrationError,
};
use crate::state::AppState;
use crate::verify::VerifyError;
use crate::verify::actix::{BearerError, bearer_token};

/// The answer of a refused request.
fn refused(error: RegistrationError) -> HttpResponse {
    let metadata = |code: &'static str, description: &str| {
        // Descriptions may quote what the client sent: no control characters, bounded.
        let description: String = description
            .chars()
            .map(|c| if c.is_control() { '?' } else { c })
            .take(300)
            .collect();
        error::refusal(StatusCode::BAD_REQUEST, code, &description)
    };
    match error {
        RegistrationError::Disabled => ApiError::NotFound.error_response(),
        RegistrationError::InvalidRedirectUri(why) => metadata("invalid_redirect_uri", &why),
        RegistrationError::InvalidClientMetadata(why) => metadata("invalid_client_metadata", &why),
        RegistrationError::UnapprovedSoftwareStatement => metadata(
            "unapproved_software_statement",
            "Software statements are not supported; register without one.",
        ),
        RegistrationError::MissingToken => BearerError::Missing.error_response(),
        RegistrationError::InvalidToken => {
            BearerError::Invalid(VerifyError::Malformed("registration credential refused"))
                .error_response()
        }
        RegistrationError::Throttled(seconds) => {
            ApiError::TooManyRequests(seconds).error_response()
        }
        RegistrationError::Db(db) => ApiError::from(db).error_response(),
        RegistrationError::NoRandomness => {
            ApiError::Fault(Fault::internal(RegistrationError::NoRandomness)).error_response()
        }
    }
}

/// Makes a registration, change or deletion visible to this instance at once (the others see it
/// at their next refresh tick); a failure is logged, the change stands.
async fn reload_clients(state: &AppState) {
    if let Err(error) = state.clients.reload(&state.db).await {
        tracing::warn!(%error, "reloading clients after a registration change failed");
    }
}

/// A JSON answer that is never cached (it may hold a secret and tokens).
fn answer(status: StatusCode, information: &ClientInformation) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((CACHE_CONTROL, "no-store"))
        .insert_header((PRAGMA, "no-cache"))
        .json(information)
}

/// The request's JSON body: `application/json`, at most [`MAX_METADATA_BODY`] bytes (else 400
/// `invalid_client_metadata`).
async fn json_body(
    request: &HttpRequest,
    payload: web::Payload,
) -> Result<Vec<u8>, RegistrationError> {
    let json = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"));
    if !json {
        return Err(RegistrationError::InvalidClientMetadata(
            "the body must be application/json".into(),
        ));
    }
    let body = tokio::time::timeout(
        super::body_deadline(request),
        payload.to_bytes_limited(MAX_METADATA_BODY),
    )
    .await
    .map_err(|_| {
        RegistrationError::InvalidClientMetadata("the body did not arrive in time".into())
    })?
    .map_err(|_| {
        RegistrationError::InvalidClientMetadata(format!(
            "the body is larger than {MAX_METADATA_BODY} bytes"
        ))
    })?
    .map_err(|_| RegistrationError::InvalidClientMetadata("the body could not be read".into()))?;
    Ok(body.to_vec())
}

/// The registration access token of a configuration request (RFC 7592 §2: bearer, required).
fn registration_token(request: &HttpRequest) -> Result<String, RegistrationError> {
    bearer_token(request).map_err(|error| match error {
        BearerError::Missing => RegistrationError::MissingToken,
        _ => RegistrationError::InvalidToken,
    })
}

/// `POST /register` (RFC 7591 §3): 201 with the client information.
pub async fn register(
    state: web::Data<AppState>,
    request: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let registered = async {
        if !state.registration.enabled() {
            return Err(RegistrationError::Disabled);
        }
        let credential = match bearer_token(&request) {
            Ok(token) => Credential::Bearer(token),
            Err(BearerError::Missing) => Credential::Anonymous(client_ip(&state, &request)),
            Err(_) => return Err(RegistrationError::InvalidToken),
        };
        let body = json_body(&request, payload).await?;
        registration::register(
            &state.db,
            &state.registration,
            state.registration_fetches(),
            state.issuer.as_str(),
            credential,
            body,
            state.clock.now_naive(),
        )
        .await
    }
    .await;
    match registered {
        Ok(information) => {
            reload_clients(&state).await;
            answer(StatusCode::CREATED, &information)
        }
        Err(error) => refused(error),
    }
}

/// `GET`, `PUT` and `DELETE /register/{client_id}` (RFC 7592 §2.1–§2.3): the client's
/// information (200, a new registration access token), its replaced metadata (200), or 204.
pub async fn configuration(
    state: web::Data<AppState>,
    request: HttpRequest,
    client_id: web::Path<String>,
    payload: web::Payload,
) -> HttpResponse {
    let client_id = client_id.into_inner();
    let settings = &state.registration;
    let issuer = state.issuer.as_str();
    let outcome = async {
        if !settings.enabled() {
            return Err(RegistrationError::Disabled);
        }
        let token = registration_token(&request)?;
        let now = state.clock.now_naive();
        match *request.method() {
            actix_web::http::Method::GET => {
                registration::read(&state.db, settings, issuer, client_id, token)
                    .await
                    .map(Some)
            }
            actix_web::http::Method::PUT => {
                let body = json_body(&request, payload).await?;
                let updated = registration::update(
                    &state.db,
                    settings,
                    state.registration_fetches(),
                    issuer,
                    client_id,
                    token,
                    body,
                    now,
                )
                .await?;
                Ok(Some(updated))
            }
            _ => registration::delete(&state.db, settings, client_id, token, now)
                .await
                .map(|()| None),
        }
    }
    .await;
    match outcome {
        Ok(Some(information)) => {
            if request.method() == actix_web::http::Method::PUT {
                reload_clients(&state).await;
            }
            answer(StatusCode::OK, &information)
        }
        Ok(None) => {
            reload_clients(&state).await;
            HttpResponse::NoContent()
                .insert_header((CACHE_CONTROL, "no-store"))
                .finish()
        }
        Err(error) => refused(error),
    }
}
