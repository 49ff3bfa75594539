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

diesel::joinable!(user_roles -> users (user_id));
diesel::joinable!(refresh_token_families -> users (user_id));
diesel::joinable!(refresh_tokens -> refresh_token_families (family_id));
diesel::allow_tables_to_appear_in_same_query!(
    users,
    user_roles,
    refresh_token_families,
    refresh_tokens
);
