-- Passkeys (issue 17 item 1, WebAuthn Level 2): rows of `second_factors` with kind `passkey`,
-- usable once registered (confirmed_at = created_at). The credential is public data: its id
-- (base64url, unique across all users: one account per credential, WebAuthn §7.1 step 22) and
-- webauthn-rs's serialised `Passkey` (COSE public key, counter, flags). The sign counter and the
-- backup flags (BE, BS) are also kept in columns of their own, for the page and for the
-- conditional update that never moves a counter back.
ALTER TABLE second_factors ADD COLUMN credential_id TEXT;
ALTER TABLE second_factors ADD COLUMN passkey TEXT;
ALTER TABLE second_factors ADD COLUMN sign_count BIGINT;
ALTER TABLE second_factors ADD COLUMN backup_eligible INTEGER;
ALTER TABLE second_factors ADD COLUMN backup_state INTEGER;
-- NULLs (TOTP rows) never collide, on PostgreSQL and SQLite alike.
CREATE UNIQUE INDEX second_factors_credential ON second_factors (credential_id);

-- WebAuthn ceremonies in progress: the state webauthn-rs needs to finish one (its challenge),
-- kept server-side (never in the browser, which could replay an old state), single use by a
-- conditional update, five minutes. The browser holds a random id; only its SHA-256 is here.
CREATE TABLE webauthn_ceremonies (
    id_hash TEXT PRIMARY KEY NOT NULL,
    -- `register`, `second_factor` or `passwordless`.
    purpose TEXT NOT NULL,
    -- The user (NULL for a passwordless sign-in: the authenticator names the user).
    user_id TEXT REFERENCES users (id) ON DELETE CASCADE,
    -- The pending authorization request of a sign-in.
    request_id TEXT,
    -- serde_json of PasskeyRegistration / PasskeyAuthentication / DiscoverableAuthentication.
    state TEXT NOT NULL,
    -- Registration: the name the user gave the passkey.
    passkey_name TEXT,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    used_at TIMESTAMP
);
CREATE INDEX webauthn_ceremonies_expiry ON webauthn_ceremonies (expires_at);
