-- Scheduled rotation: a pending key activates at `activates_at`; a retired key is removed from the
-- JWKS at `remove_after` (its private half erased, the row kept for audit) and becomes `removed`.
ALTER TABLE signing_keys DROP CONSTRAINT signing_keys_state_check;
ALTER TABLE signing_keys ADD CONSTRAINT signing_keys_state_check
    CHECK (state IN ('pending', 'active', 'retired', 'removed', 'revoked'));
ALTER TABLE signing_keys ADD COLUMN activates_at TIMESTAMP;
ALTER TABLE signing_keys ADD COLUMN remove_after TIMESTAMP;
ALTER TABLE signing_keys ADD COLUMN removed_at TIMESTAMP;

-- At most one pending key per algorithm: concurrent rotations cannot both start one.
CREATE UNIQUE INDEX signing_keys_one_pending_per_alg ON signing_keys (alg) WHERE state = 'pending';
