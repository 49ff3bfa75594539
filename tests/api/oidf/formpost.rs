//! `oidcc-formpost-basic-certification-test-plan` (oidf-spec.md §3): the basic plan's modules
//! with `response_mode=form_post` everywhere, and the four form-post checks on every callback
//! (`CheckCallbackHttpMethodIsPost`, `CheckCallbackContentTypeIsFormUrlEncoded`,
//! `RejectAuthCodeInUrlQuery`, `RejectErrorInUrlQuery`). The bodies are the basic plan's
//! ([`super::basic`]); the same three modules are not run for a static client.
//!
//! Modules that never reach a callback pass today: the scope skips (decided at configure) and
//! the two error-page modules (the redirect URI is checked before the response mode).

use super::Mode;
use super::basic;
use crate::helpers::Backend;
use crate::oidf_modules;

async fn formpost_oidcc_server(backend: Backend) {
    basic::oidcc_server_in(backend, Mode::FormPost).await
}

async fn formpost_oidcc_response_type_missing(backend: Backend) {
    basic::oidcc_response_type_missing_in(backend, Mode::FormPost).await
}

async fn formpost_oidcc_userinfo_get(backend: Backend) {
    basic::oidcc_userinfo_get_in(backend, Mode::FormPost).await
}

async fn formpost_oidcc_userinfo_post_header(backend: Backend) {
    basic::oidcc_userinfo_post_header_in(backend, Mode::FormPost).await
}

async fn formpost_oidcc_userinfo_post_body(backend: Backend) {
    basic::oidcc_userinfo_post_body_in(backend, Mode::FormPost).await
}

async fn formpost_oidcc_ensure_request_without_nonce_succeeds_for_code_flow(backend: Backend) {
    basic::oidcc_ensure_request_without_nonce_succeeds_for_code_flow_in(backend, Mode::FormPost)
        .await
}

async fn formpost_oidcc_scope_profile(backend: Backend) {
    basic::oidcc_scope_profile_in(backend, Mode::FormPost).await
}

async fn formpost_oidcc_scope_email(backend: Backend) {
    basic::oidcc_scope_email_in(backend, Mode::FormPost).await
}

async fn formpost_oidcc_scope_address(backend: Backend) {
    basic::oidcc_scope_address_in(backend, Mode::FormPost).await
}

async fn formpost_oidcc_scope_phone(backend: Backend) {
    basic::oidcc_scope_phone_in(backend, Mode::FormPost).await
}

async fn formpost_oidcc_scope_all(backend: Backend) {
    basic::oidcc_scope_all_in(backend, Mode::FormPost).await
}

async fn formpost_oidcc_alternate_happy_flow(backend: Backend) {
    basic::oidcc_alternate_happy_flow_in(backend, Mode::FormPost).await
}

async fn formpost_oidcc_display_page(backend: Backend) {
    basic::oidcc_display_page_in(backend, Mode::FormPost).await
}

async fn formpost_oidcc_display_popup(backend: Backend) {
    basic::oidcc_display_popup_in(backend, Mode::FormPost).await
}

async fn formpost_oidcc_prompt_login(backend: Backend) {
    basic::oidcc_prompt_login_in(backend, Mode::FormPost).await
}

async fn formpost_oidcc_prompt_none_not_logged_in(backend: Backend) {
    basic::oidcc_prompt_none_not_logged_in_in(backend, Mode::FormPost).await
}

async fn formpost_oidcc_prompt_none_logged_in(backend: Backend) {
    basic::oidcc_prompt_none_logged_in_in(backend, Mode::FormPost).await
}

async fn formpost_oidcc_max_age_1(backend: Backend) {
    basic::oidcc_max_age_1_in(backend, Mode::FormPost).await
}

async fn formpost_oidcc_max_age_10000(backend: Backend) {
    basic::oidcc_max_age_10000_in(backend, Mode::FormPost).await
}

async fn formpost_oidcc_ensure_request_with_unknown_parameter_succeeds(backend: Backend) {
    basic::oidcc_ensure_request_with_unknown_parameter_succeeds_in(backend, Mode::FormPost).await
}

async fn formpost_oidcc_id_token_hint(backend: Backend) {
    basic::oidcc_id_token_hint_in(backend, Mode::FormPost).await
}

async fn formpost_oidcc_login_hint(backend: Backend) {
    basic::oidcc_login_hint_in(backend, Mode::FormPost).await
}

async fn formpost_oidcc_ui_locales(backend: Backend) {
    basic::oidcc_ui_locales_in(backend, Mode::FormPost).await
}

async fn formpost_oidcc_claims_locales(backend: Backend) {
    basic::oidcc_claims_locales_in(backend, Mode::FormPost).await
}

async fn formpost_oidcc_ensure_request_with_acr_values_succeeds(backend: Backend) {
    basic::oidcc_ensure_request_with_acr_values_succeeds_in(backend, Mode::FormPost).await
}

async fn formpost_oidcc_codereuse(backend: Backend) {
    basic::oidcc_codereuse_in(backend, Mode::FormPost).await
}

async fn formpost_oidcc_codereuse_30seconds(backend: Backend) {
    basic::oidcc_codereuse_30seconds_in(backend, Mode::FormPost).await
}

async fn formpost_oidcc_ensure_registered_redirect_uri(backend: Backend) {
    basic::oidcc_ensure_registered_redirect_uri_in(backend, Mode::FormPost).await
}

async fn formpost_oidcc_ensure_post_request_succeeds(backend: Backend) {
    basic::oidcc_ensure_post_request_succeeds_in(backend, Mode::FormPost).await
}

async fn formpost_oidcc_server_client_secret_post(backend: Backend) {
    basic::oidcc_server_client_secret_post_in(backend, Mode::FormPost).await
}

async fn formpost_oidcc_unsigned_request_object_supported_correctly_or_rejected_as_unsupported(
    backend: Backend,
) {
    basic::oidcc_unsigned_request_object_supported_correctly_or_rejected_as_unsupported_in(
        backend,
        Mode::FormPost,
    )
    .await
}

async fn formpost_oidcc_claims_essential(backend: Backend) {
    basic::oidcc_claims_essential_in(backend, Mode::FormPost).await
}

async fn formpost_oidcc_ensure_request_object_with_redirect_uri(backend: Backend) {
    basic::oidcc_ensure_request_object_with_redirect_uri_in(backend, Mode::FormPost).await
}

async fn formpost_oidcc_refresh_token(backend: Backend) {
    basic::oidcc_refresh_token_in(backend, Mode::FormPost).await
}

async fn formpost_oidcc_ensure_request_with_valid_pkce_succeeds(backend: Backend) {
    basic::oidcc_ensure_request_with_valid_pkce_succeeds_in(backend, Mode::FormPost).await
}

oidf_modules!(
    formpost_oidcc_server,
    formpost_oidcc_response_type_missing,
    formpost_oidcc_userinfo_get,
    formpost_oidcc_userinfo_post_header,
    formpost_oidcc_userinfo_post_body,
    formpost_oidcc_ensure_request_without_nonce_succeeds_for_code_flow,
    formpost_oidcc_scope_profile,
    formpost_oidcc_scope_email,
    formpost_oidcc_scope_address,
    formpost_oidcc_scope_phone,
    formpost_oidcc_scope_all,
    formpost_oidcc_alternate_happy_flow,
    formpost_oidcc_display_page,
    formpost_oidcc_display_popup,
    formpost_oidcc_prompt_login,
    formpost_oidcc_prompt_none_not_logged_in,
    formpost_oidcc_prompt_none_logged_in,
    formpost_oidcc_max_age_1,
    formpost_oidcc_max_age_10000,
    formpost_oidcc_ensure_request_with_unknown_parameter_succeeds,
    formpost_oidcc_id_token_hint,
    formpost_oidcc_login_hint,
    formpost_oidcc_ui_locales,
    formpost_oidcc_claims_locales,
    formpost_oidcc_ensure_request_with_acr_values_succeeds,
    formpost_oidcc_codereuse,
    formpost_oidcc_codereuse_30seconds,
    formpost_oidcc_ensure_registered_redirect_uri,
    formpost_oidcc_ensure_post_request_succeeds,
    formpost_oidcc_server_client_secret_post,
    formpost_oidcc_unsigned_request_object_supported_correctly_or_rejected_as_unsupported,
    formpost_oidcc_claims_essential,
    formpost_oidcc_ensure_request_object_with_redirect_uri,
    formpost_oidcc_refresh_token,
    formpost_oidcc_ensure_request_with_valid_pkce_succeeds,
);
