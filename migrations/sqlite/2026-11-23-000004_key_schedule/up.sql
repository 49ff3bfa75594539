-- Scheduled rotation: a pending key activates at `activates_at`; a retired key is removed from the
-- JWKS at `remove_after` (its private half erased, the row kept for audit) and becomes `removed`.
-- SQLite cannot alter a CHECK constraint, so the table is rebuilt.
CREATE TABLE signing_keys_new (
    kid TEXT PRIMARY KEY,
    alg TEXT NOT NULL CHECK (alg IN ('ES256', 'RS256')),
    state TEXT NOT NULL CHECK (state IN ('pending', 'active', 'retired', 'removed', 'revoked')),
    public_jwk TEXT NOT NULL,
    private_key_sealed TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    activated_at TIMESTAMP,
    retired_at TIMESTAMP,
    revoked_at TIMESTAMP,
    activates_at TIMESTAMP,
    remove_after TIMESTAMP,
    removed_at TIMESTAMP
);
INSERT INTO signing_keys_new
    (kid, alg, state, public_jwk, private_key_sealed, created_at, activated_at, retired_at, revoked_at)
    SELECT kid, alg, state, public_jwk, private_key_sealed, created_at, activated_at, retired_at, revoked_at
    FROM signing_keys;
DROP TABLE signing_keys;
ALTER TABLE signing_keys_new RENAME TO signing_keys;
CREATE UNIQUE INDEX signing_keys_one_active_per_alg ON signing_keys (alg) WHERE state = 'active';
-- At most one pending key per algorithm: concurrent rotations cannot both start one.
CREATE UNIQUE INDEX signing_keys_one_pending_per_alg ON signing_keys (alg) WHERE state = 'pending';
