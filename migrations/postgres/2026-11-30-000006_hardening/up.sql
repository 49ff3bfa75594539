-- Security hardening (issue 13).

-- Every access token that speaks for a user is recorded with that user, so endpoints acting for
-- a user check the user's current state (disabled, sessions revoked) and not just the signature.
ALTER TABLE access_tokens ADD COLUMN user_id TEXT;
UPDATE access_tokens SET user_id = (
    SELECT f.user_id FROM refresh_token_families AS f WHERE f.id = access_tokens.family_id
) WHERE family_id IS NOT NULL;
UPDATE access_tokens SET user_id = (
    SELECT c.user_id FROM authorization_codes AS c WHERE c.access_jti = access_tokens.jti
) WHERE user_id IS NULL;
CREATE INDEX access_tokens_user ON access_tokens (user_id);

-- Pending authorization requests are bounded per browser (and, through the throttle table, per
-- client network); the janitor finds expired ones by time.
CREATE INDEX authorization_requests_browser ON authorization_requests (browser_hash);
CREATE INDEX authorization_requests_expiry ON authorization_requests (expires_at);

-- Devices (browsers, apps) that signed in to an account before: their attempts have a budget
-- of their own, so failures elsewhere never lock the owner out (OWASP device cookies).
CREATE TABLE trusted_devices (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL
);
CREATE INDEX trusted_devices_user ON trusted_devices (user_id);
CREATE INDEX trusted_devices_expiry ON trusted_devices (expires_at);

-- Resource servers allowed to introspect tokens issued for these audiences (RFC 7662 §4).
ALTER TABLE clients ADD COLUMN introspection_audiences TEXT NOT NULL DEFAULT '[]';
