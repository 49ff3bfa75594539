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
