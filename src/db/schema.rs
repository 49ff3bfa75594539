//! Table definitions shared by both backends (only types `#[derive(MultiConnection)]` supports).

diesel::table! {
    /// Signing keys and their lifecycle.
    signing_keys (kid) {
        /// RFC 7638 thumbprint of the public key.
        kid -> Text,
        /// `ES256` or `RS256`.
        alg -> Text,
        /// `pending`, `active`, `retired`, `removed` or `revoked`.
        state -> Text,
        /// Public JWK (JSON).
        public_jwk -> Text,
        /// Base64url of nonce ‖ AES-256-GCM ciphertext ‖ tag of the PKCS#8 private key.
        private_key_sealed -> Text,
        /// Creation time (UTC).
        created_at -> Timestamp,
        /// When it became the signer.
        activated_at -> Nullable<Timestamp>,
        /// When it stopped signing.
        retired_at -> Nullable<Timestamp>,
        /// When it was revoked.
        revoked_at -> Nullable<Timestamp>,
        /// A pending key's due activation.
        activates_at -> Nullable<Timestamp>,
        /// When a retired key leaves the JWKS (every token it signed has expired).
        remove_after -> Nullable<Timestamp>,
        /// When it left the JWKS.
        removed_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    /// Accounts.
    users (id) {
        /// UUID (text).
        id -> Text,
        /// As chosen.
        username -> Text,
        /// Lower-cased: the uniqueness key.
        username_normalized -> Text,
        /// As given.
        email -> Text,
        /// Lower-cased: the uniqueness key.
        email_normalized -> Text,
        /// Argon2id PHC string.
        password_hash -> Text,
        /// Created (UTC).
        created_at -> Timestamp,
        /// Last change (UTC).
        updated_at -> Timestamp,
        /// Last password change (UTC).
        password_changed_at -> Timestamp,
        /// Set when disabled.
        disabled_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    /// Roles of a user.
    user_roles (user_id, role) {
        /// The user.
        user_id -> Text,
        /// A role name.
        role -> Text,
    }
}

diesel::table! {
    /// Standard claims of a user (OIDC Core §5.1).
    user_claims (user_id) {
        /// The user.
        user_id -> Text,
        /// JSON object of the claims that are set.
        claims -> Text,
    }
}

diesel::table! {
    /// One login (or grant): the refresh tokens that succeed each other.
    refresh_token_families (id) {
        /// UUID.
        id -> Text,
        /// The user.
        user_id -> Text,
        /// The client it was issued to.
        client_id -> Text,
        /// Granted scope.
        scope -> Text,
        /// Login time (UTC).
        created_at -> Timestamp,
        /// Absolute end of the family (UTC).
        expires_at -> Timestamp,
        /// Set when revoked.
        revoked_at -> Nullable<Timestamp>,
        /// Why: `logout`, `logout_all`, `reuse`, `password_change`, `disabled`, `expired`.
        revoked_reason -> Nullable<Text>,
        /// When the user authenticated (OAuth grants; ID tokens on refresh keep it).
        auth_time -> Nullable<Timestamp>,
        /// The browser session the grant came from (OAuth grants).
        sid -> Nullable<Text>,
        /// The claims the grant's request asked for individually (OIDC Core §5.5; JSON).
        requested_claims -> Nullable<Text>,
        /// How the user signed in (RFC 8176 methods, space-separated).
        amr -> Text,
    }
}

diesel::table! {
    /// Refresh tokens, by SHA-256.
    refresh_tokens (token_hash) {
        /// Base64url SHA-256 of the token.
        token_hash -> Text,
        /// Its family.
        family_id -> Text,
        /// The token it replaced.
        parent_hash -> Nullable<Text>,
        /// Issued (UTC).
        created_at -> Timestamp,
        /// Set when rotated (presented and replaced).
        used_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    /// Login attempts per throttle key in the current window.
    login_attempts (throttle_key) {
        /// `account:<login>` or `ip:<address>`.
        throttle_key -> Text,
        /// Attempts in the window.
        attempts -> Integer,
        /// Start of the window (UTC).
        window_started_at -> Timestamp,
    }
}

diesel::table! {
    /// Security-relevant events.
    audit_events (id) {
        /// UUID.
        id -> Text,
        /// When (UTC).
        occurred_at -> Timestamp,
        /// Who acted (user id), if known.
        actor -> Nullable<Text>,
        /// What happened.
        action -> Text,
        /// What it was done to.
        subject -> Nullable<Text>,
        /// Details (JSON), never a secret.
        detail -> Nullable<Text>,
    }
}

diesel::table! {
    /// OAuth clients.
    clients (client_id) {
        /// The client identifier.
        client_id -> Text,
        /// Base64url SHA-256 of the secret (confidential clients).
        secret_hash -> Nullable<Text>,
        /// `public` or `confidential`.
        client_type -> Text,
        /// JSON array of exact redirect URIs.
        redirect_uris -> Text,
        /// JSON array of allowed grant types.
        grant_types -> Text,
        /// JSON array of allowed scopes.
        scopes -> Text,
        /// JSON array of allowed audiences (the first is the default).
        audiences -> Text,
        /// Access-token algorithm.
        access_token_alg -> Text,
        /// ID-token algorithm.
        id_token_alg -> Text,
        /// 1: skips consent.
        first_party -> Integer,
        /// JSON array of post-logout redirect URIs.
        post_logout_redirect_uris -> Text,
        /// Created (UTC).
        created_at -> Timestamp,
        /// Last change (UTC).
        updated_at -> Timestamp,
        /// JSON array of audiences whose tokens this client may introspect (RFC 7662 §4).
        introspection_audiences -> Text,
        /// PKCE policy: `required` (default), `pkce_or_nonce` or `optional`.
        pkce -> Text,
        /// JSON array of explicitly registered web origins (`scheme://host[:port]`, CORS).
        web_origins -> Text,
        /// Second-factor policy: `off` (the deployment's), `optional` or `required`.
        second_factor -> Text,
        /// Registered client authentication (RFC 7591 §2): `none`, `client_secret_basic` or
        /// `private_key_jwt`.
        token_endpoint_auth_method -> Text,
        /// JSON Web Key Set of the client's public keys (`private_key_jwt`).
        jwks -> Nullable<Text>,
        /// The https URL of the client's JSON Web Key Set, instead of `jwks`.
        jwks_uri -> Nullable<Text>,
        /// JSON array of the audiences it may ask for by token exchange (RFC 8693); the first
        /// is its default.
        token_exchange_audiences -> Text,
        /// How it was registered: NULL by an administrator, `token` (RFC 7591 with an initial
        /// access token) or `open` (open registration).
        registration -> Nullable<Text>,
        /// Base64url SHA-256 of its RFC 7592 registration access token (dynamic clients).
        registration_token_hash -> Nullable<Text>,
        /// The last time a token was issued to it (dynamic clients, recorded at most daily).
        last_used_at -> Nullable<Timestamp>,
        /// RFC 7591 §2 `client_name`.
        client_name -> Nullable<Text>,
        /// RFC 7591 §2 `logo_uri`.
        logo_uri -> Nullable<Text>,
        /// RFC 7591 §2 `policy_uri`.
        policy_uri -> Nullable<Text>,
        /// RFC 7591 §2 `tos_uri`.
        tos_uri -> Nullable<Text>,
        /// JSON array of RFC 7591 §2 `contacts`.
        contacts -> Text,
        /// `RS256` or `ES256`: userinfo answers it with a JWT signed with that algorithm (OIDC
        /// Core §5.3.2, OIDC Registration §2); NULL: plain JSON.
        userinfo_signed_response_alg -> Nullable<Text>,
        /// JSON array of the URLs it may pass as `request_uri` (OIDC Core §6.2), exact strings.
        request_uris -> Text,
        /// The algorithm of its request objects (`RS256`, `PS256`, `ES256`, `none`); NULL: not
        /// registered.
        request_object_signing_alg -> Nullable<Text>,
        /// JSON `{"sector_identifier", "sector_identifier_uri"}` when it gets pairwise subject
        /// identifiers (OIDC Core §8.1); NULL: public identifiers.
        pairwise_sector -> Nullable<Text>,
    }
}

diesel::table! {
    /// The logos of dynamically registered clients (RFC 7591 §2 `logo_uri`), fetched at
    /// registration and served from our own origin.
    client_logos (client_id) {
        /// The client (deleting it deletes the logo).
        client_id -> Text,
        /// `image/png`, `image/jpeg`, `image/gif` or `image/webp`: what the bytes were
        /// recognised as.
        content_type -> Text,
        /// The image, at most 64 KiB.
        bytes -> Binary,
        /// When it was fetched (UTC).
        fetched_at -> Timestamp,
    }
}

diesel::table! {
    /// Initial access tokens of dynamic client registration (RFC 7591 §3), issued by
    /// administrators.
    initial_access_tokens (id) {
        /// UUID.
        id -> Text,
        /// Base64url SHA-256 of the token.
        token_hash -> Text,
        /// What it is for (shown to administrators).
        description -> Text,
        /// The administrator (user id, or `cli`) who issued it.
        created_by -> Text,
        /// Issued (UTC).
        created_at -> Timestamp,
        /// Expires (UTC).
        expires_at -> Timestamp,
        /// Registrations it allows at most; NULL: no limit.
        max_uses -> Nullable<Integer>,
        /// Registrations made with it.
        uses -> Integer,
        /// Revoked (UTC).
        revoked_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    /// Client assertions accepted (`private_key_jwt`), until they expire: each `jti` once.
    client_assertions (client_id, jti_hash) {
        /// The client.
        client_id -> Text,
        /// Base64url SHA-256 of the assertion's `jti`.
        jti_hash -> Text,
        /// The assertion's `exp` (UTC).
        expires_at -> Timestamp,
    }
}

diesel::table! {
    /// Browser sessions of the hosted login page (SSO).
    browser_sessions (id_hash) {
        /// SHA-256 of the cookie secret.
        id_hash -> Text,
        /// Public session id (`sid` claim).
        sid -> Text,
        /// The user.
        user_id -> Text,
        /// When the user authenticated.
        auth_time -> Timestamp,
        /// Created.
        created_at -> Timestamp,
        /// Absolute end.
        expires_at -> Timestamp,
        /// Set at logout.
        ended_at -> Nullable<Timestamp>,
        /// How the user signed in (RFC 8176 methods, space-separated).
        amr -> Text,
    }
}

diesel::table! {
    /// Authorization requests waiting for login or consent.
    authorization_requests (id) {
        /// Random id.
        id -> Text,
        /// SHA-256 of the per-flow browser cookie.
        browser_hash -> Text,
        /// SHA-256 of the CSRF token of the form.
        csrf_hash -> Text,
        /// The client.
        client_id -> Text,
        /// The validated redirect URI.
        redirect_uri -> Text,
        /// 1: the request named it.
        redirect_uri_sent -> Integer,
        /// Requested scope (space-separated, validated).
        scope -> Text,
        /// `state`, echoed.
        state -> Nullable<Text>,
        /// `nonce`, into the ID token.
        nonce -> Nullable<Text>,
        /// S256 challenge; NULL when the request sent none (the client's PKCE policy allowed it).
        code_challenge -> Nullable<Text>,
        /// `max_age` in seconds.
        max_age -> Nullable<Integer>,
        /// Prompt flags: bit 1 `prompt=login`, bit 2 `prompt=consent`.
        force_login -> Integer,

        /// Authenticated user, once known (consent step).
        user_id -> Nullable<Text>,
        /// Their authentication time.
        auth_time -> Nullable<Timestamp>,
        /// Expires.
        expires_at -> Timestamp,
        /// Set when a code was issued or the request was denied.
        completed_at -> Nullable<Timestamp>,
        /// `query` or `form_post` (OAuth 2.0 Form Post Response Mode).
        response_mode -> Text,
        /// The `claims` parameter as kept (OIDC Core §5.5; JSON), NULL when none.
        requested_claims -> Nullable<Text>,
        /// The user who passed the password and owes the second factor.
        factor_user_id -> Nullable<Text>,
        /// When their password was checked.
        factor_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    /// Authorization codes, by SHA-256.
    authorization_codes (code_hash) {
        /// SHA-256 of the code.
        code_hash -> Text,
        /// The client.
        client_id -> Text,
        /// The user.
        user_id -> Text,
        /// The redirect URI of the request.
        redirect_uri -> Text,
        /// 1: the request named it, so the token request must repeat it.
        redirect_uri_sent -> Integer,
        /// Granted scope.
        scope -> Text,
        /// `nonce` of the request.
        nonce -> Nullable<Text>,
        /// S256 challenge; NULL when the request sent none (the client's PKCE policy allowed it).
        code_challenge -> Nullable<Text>,
        /// When the user authenticated.
        auth_time -> Timestamp,
        /// Browser session.
        sid -> Nullable<Text>,
        /// Created.
        created_at -> Timestamp,
        /// Expires (60 s).
        expires_at -> Timestamp,
        /// Set at redemption.
        used_at -> Nullable<Timestamp>,
        /// Refresh family issued at redemption.
        family_id -> Nullable<Text>,
        /// Access token issued at redemption.
        access_jti -> Nullable<Text>,
        /// The request's individually requested claims (OIDC Core §5.5; JSON).
        requested_claims -> Nullable<Text>,
        /// How the user signed in (RFC 8176 methods, space-separated).
        amr -> Text,
    }
}

diesel::table! {
    /// Access tokens of grants, and revoked access tokens.
    access_tokens (jti) {
        /// The `jti`.
        jti -> Text,
        /// The grant (refresh family), if any.
        family_id -> Nullable<Text>,
        /// The client.
        client_id -> Text,
        /// The token's `exp`.
        expires_at -> Timestamp,
        /// Set when revoked.
        revoked_at -> Nullable<Timestamp>,
        /// The user the token speaks for (NULL: a client's own token).
        user_id -> Nullable<Text>,
        /// The individually requested claims of the code grant that issued it (OIDC Core §5.5;
        /// JSON); refreshed tokens find them on their family.
        requested_claims -> Nullable<Text>,
    }
}

diesel::table! {
    /// Devices (browsers, apps) that signed in to an account: their login attempts have their
    /// own budget (OWASP device cookies).
    trusted_devices (token_hash) {
        /// SHA-256 of the device cookie.
        token_hash -> Text,
        /// The account it signed in to.
        user_id -> Text,
        /// Created (UTC).
        created_at -> Timestamp,
        /// Expires (UTC).
        expires_at -> Timestamp,
    }
}

diesel::table! {
    /// Remembered consent: the scopes a user approved for a client.
    consents (user_id, client_id) {
        /// The user.
        user_id -> Text,
        /// The client.
        client_id -> Text,
        /// The union of the approved scopes (space-separated).
        scope -> Text,
        /// First approval (UTC).
        created_at -> Timestamp,
        /// Last approval (UTC).
        updated_at -> Timestamp,
        /// The claims approved beyond the scopes (space-separated names, OIDC Core §5.5).
        claims -> Text,
    }
}

diesel::table! {
    /// APIs (resource servers): the audiences clients may ask tokens for (RFC 8707).
    apis (id) {
        /// UUID.
        id -> Text,
        /// The audience of its access tokens: an absolute URI, unique.
        identifier -> Text,
        /// Shown to operators.
        name -> Text,
        /// Created (UTC).
        created_at -> Timestamp,
        /// Last change of the API or its scopes (UTC).
        updated_at -> Timestamp,
    }
}

diesel::table! {
    /// The scopes of APIs; a name is unique across APIs.
    api_scopes (scope) {
        /// The scope name (RFC 6749 §3.3 scope-token).
        scope -> Text,
        /// Its API.
        api_id -> Text,
        /// Shown on the consent page.
        description -> Text,
        /// Created (UTC).
        created_at -> Timestamp,
    }
}

diesel::joinable!(user_roles -> users (user_id));
diesel::joinable!(user_claims -> users (user_id));
diesel::table! {
    /// Second factors of users (`totp`, `passkey`).
    second_factors (id) {
        /// UUID.
        id -> Text,
        /// The user.
        user_id -> Text,
        /// `totp` or `passkey`.
        kind -> Text,
        /// A name the user recognises it by.
        name -> Text,
        /// TOTP: base64url of nonce ‖ AES-256-GCM ciphertext ‖ tag of the secret, under the KEK.
        secret_sealed -> Nullable<Text>,
        /// TOTP: the RFC 6238 time step of the last code accepted.
        last_used_step -> Nullable<BigInt>,
        /// Created (UTC).
        created_at -> Timestamp,
        /// When enrolment finished (one valid code); NULL while enrolling.
        confirmed_at -> Nullable<Timestamp>,
        /// Last successful use.
        last_used_at -> Nullable<Timestamp>,
        /// Passkey: the WebAuthn credential id, base64url (unique across users).
        credential_id -> Nullable<Text>,
        /// Passkey: serde_json of webauthn-rs's `Passkey` (public key, counter, flags).
        passkey -> Nullable<Text>,
        /// Passkey: the authenticator's signature counter (u32) after the last use.
        sign_count -> Nullable<BigInt>,
        /// Passkey: backup eligible (BE flag), 0 or 1.
        backup_eligible -> Nullable<Integer>,
        /// Passkey: backed up (BS flag: a synced passkey), 0 or 1.
        backup_state -> Nullable<Integer>,
    }
}

diesel::table! {
    /// WebAuthn ceremonies in progress (server-side state, single use, short-lived).
    webauthn_ceremonies (id_hash) {
        /// Base64url SHA-256 of the ceremony id the browser holds.
        id_hash -> Text,
        /// `register`, `second_factor` or `passwordless`.
        purpose -> Text,
        /// The user; NULL for a passwordless sign-in.
        user_id -> Nullable<Text>,
        /// The pending authorization request of a sign-in.
        request_id -> Nullable<Text>,
        /// serde_json of the webauthn-rs ceremony state.
        state -> Text,
        /// Registration: the passkey's name.
        passkey_name -> Nullable<Text>,
        /// Created (UTC).
        created_at -> Timestamp,
        /// Expires (UTC).
        expires_at -> Timestamp,
        /// Set when finished (or attempted).
        used_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    /// Recovery codes, by SHA-256, single use.
    recovery_codes (code_hash) {
        /// Base64url SHA-256 of the code.
        code_hash -> Text,
        /// The user.
        user_id -> Text,
        /// Created (UTC).
        created_at -> Timestamp,
        /// Set when used.
        used_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    /// The JSON API's pending second-factor steps.
    second_factor_challenges (id_hash) {
        /// Base64url SHA-256 of the challenge.
        id_hash -> Text,
        /// The user whose password matched.
        user_id -> Text,
        /// Created (UTC).
        created_at -> Timestamp,
        /// Expires (UTC).
        expires_at -> Timestamp,
        /// Set when completed.
        used_at -> Nullable<Timestamp>,
    }
}

diesel::joinable!(refresh_token_families -> users (user_id));
diesel::joinable!(refresh_tokens -> refresh_token_families (family_id));
diesel::joinable!(browser_sessions -> users (user_id));
diesel::joinable!(trusted_devices -> users (user_id));
diesel::joinable!(api_scopes -> apis (api_id));
diesel::allow_tables_to_appear_in_same_query!(
    users,
    user_claims,
    trusted_devices,
    user_roles,
    refresh_token_families,
    refresh_tokens,
    browser_sessions,
    access_tokens
);
diesel::allow_tables_to_appear_in_same_query!(apis, api_scopes);

diesel::table! {
    /// Leases of cluster-wide roles (the signing-key rotator): one row per role.
    rotator_lease (role) {
        /// The role, e.g. `signing_keys`.
        role -> Text,
        /// The instance holding it (a UUID per process; empty: never held).
        holder -> Text,
        /// Held until then (UTC), unless renewed; afterwards any instance may take it.
        expires_at -> Timestamp,
    }
}

diesel::table! {
    /// Single-use tokens sent by mail (address verification, email change, password reset), by
    /// SHA-256.
    email_tokens (token_hash) {
        /// Base64url SHA-256 of the token.
        token_hash -> Text,
        /// The user.
        user_id -> Text,
        /// `verify_email`, `change_email` or `reset_password`.
        purpose -> Text,
        /// The address the token was sent to (and, for a change, the new address).
        email -> Text,
        /// Issued (UTC).
        created_at -> Timestamp,
        /// Expires (UTC).
        expires_at -> Timestamp,
        /// Set when used (or superseded).
        used_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    /// Mail waiting to be sent, or sent.
    mail_outbox (id) {
        /// UUID.
        id -> Text,
        /// The recipient's address.
        recipient -> Text,
        /// Subject line.
        subject -> Text,
        /// The text body, sealed under the KEK; `""` once sent.
        body -> Text,
        /// What the mail is for (`verify_email`, `change_email`, `reset_password`).
        purpose -> Text,
        /// Queued (UTC).
        created_at -> Timestamp,
        /// The next delivery attempt is due then (UTC).
        next_attempt_at -> Timestamp,
        /// Delivery attempts made.
        attempts -> Integer,
        /// An instance is sending it until then (UTC).
        claimed_until -> Nullable<Timestamp>,
        /// Accepted by the SMTP server (UTC).
        sent_at -> Nullable<Timestamp>,
        /// Given up (UTC).
        failed_at -> Nullable<Timestamp>,
        /// Why the last attempt failed (no secret).
        last_error -> Nullable<Text>,
    }
}

diesel::table! {
    /// Device authorization requests (RFC 8628): hashed device and user codes, the user's
    /// decision, the polling state and the single redemption.
    device_authorizations (id) {
        /// UUID.
        id -> Text,
        /// SHA-256 of the device code.
        device_code_hash -> Text,
        /// SHA-256 of the normalised user code (upper case, no dash).
        user_code_hash -> Text,
        /// The client that asked.
        client_id -> Text,
        /// The requested scope.
        scope -> Text,
        /// The requested resource (RFC 8707), if any.
        resource -> Nullable<Text>,
        /// `pending`, `approved` or `denied`.
        status -> Text,
        /// The user who decided.
        user_id -> Nullable<Text>,
        /// When that user authenticated (their browser session's sign-in).
        auth_time -> Nullable<Timestamp>,
        /// How that user signed in (RFC 8176 methods, space-separated).
        amr -> Nullable<Text>,
        /// The polling interval the device must keep, in seconds.
        interval_secs -> Integer,
        /// The last token request for it (UTC).
        last_polled_at -> Nullable<Timestamp>,
        /// Created (UTC).
        created_at -> Timestamp,
        /// Expires (UTC).
        expires_at -> Timestamp,
        /// When the user approved or denied it (UTC).
        decided_at -> Nullable<Timestamp>,
        /// When the device redeemed it (UTC).
        used_at -> Nullable<Timestamp>,
        /// The refresh family its redemption started.
        family_id -> Nullable<Text>,
        /// The access token its redemption issued.
        access_jti -> Nullable<Text>,
    }
}
