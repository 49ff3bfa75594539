//! Table definitions shared by both backends (only types `#[derive(MultiConnection)]` supports).

diesel::table! {
    /// Signing keys and their lifecycle.
    signing_keys (kid) {
        /// RFC 7638 thumbprint of the public key.
        kid -> Text,
        /// `ES256` or `RS256`.
        alg -> Text,
        /// `pending`, `active`, `retired` or `revoked`.
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

diesel::joinable!(user_roles -> users (user_id));
diesel::allow_tables_to_appear_in_same_query!(users, user_roles);
