-- Second factors (issue 17 items 2 and 3). A factor belongs to a user and has a kind: `totp`
-- today (RFC 6238; its secret sealed under the KEK, AES-256-GCM bound to the factor's id);
-- `passkey` (WebAuthn) comes next on the same table with columns of its own. A TOTP factor is
-- usable once confirmed (its enrolment needed one valid code); `last_used_step` is the RFC 6238
-- time step of the last code accepted, so a code is accepted once (replay refused, §5.2).
CREATE TABLE second_factors (
    id TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    secret_sealed TEXT,
    last_used_step BIGINT,
    created_at TIMESTAMP NOT NULL,
    confirmed_at TIMESTAMP,
    last_used_at TIMESTAMP
);
CREATE INDEX second_factors_user ON second_factors (user_id);
-- One TOTP factor per user (confirmed or being enrolled).
CREATE UNIQUE INDEX second_factors_one_totp ON second_factors (user_id) WHERE kind = 'totp';

-- Recovery codes: ten per user, shown once, stored as SHA-256 (80 random bits each), single use.
CREATE TABLE recovery_codes (
    code_hash TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TIMESTAMP NOT NULL,
    used_at TIMESTAMP
);
CREATE INDEX recovery_codes_user ON recovery_codes (user_id);

-- The JSON API's second-factor step: a login whose password matched gets a challenge (SHA-256
-- of 256 random bits), single use, short-lived, completed with a code.
CREATE TABLE second_factor_challenges (
    id_hash TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    used_at TIMESTAMP
);
CREATE INDEX second_factor_challenges_expiry ON second_factor_challenges (expires_at);

-- How the user signed in (RFC 8176 methods, space-separated), kept by the browser session, the
-- codes it issues and the refresh families of a grant, so every token of it carries the right
-- `amr`/`acr`. Existing rows were password sign-ins.
ALTER TABLE browser_sessions ADD COLUMN amr TEXT NOT NULL DEFAULT 'pwd';
ALTER TABLE authorization_codes ADD COLUMN amr TEXT NOT NULL DEFAULT 'pwd';
ALTER TABLE refresh_token_families ADD COLUMN amr TEXT NOT NULL DEFAULT 'pwd';

-- A pending authorization request whose user passed the password and now owes the second
-- factor (or its enrolment): who, and when the password was checked.
ALTER TABLE authorization_requests ADD COLUMN factor_user_id TEXT;
ALTER TABLE authorization_requests ADD COLUMN factor_at TIMESTAMP;

-- Client metadata `second_factor`: `off` (the deployment's policy), `optional` or `required`;
-- a client can raise the deployment's policy, never lower it.
ALTER TABLE clients ADD COLUMN second_factor TEXT NOT NULL DEFAULT 'off';
