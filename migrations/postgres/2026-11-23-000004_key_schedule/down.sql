DROP INDEX signing_keys_one_pending_per_alg;
UPDATE signing_keys SET state = 'revoked', revoked_at = removed_at WHERE state = 'removed';
ALTER TABLE signing_keys DROP COLUMN removed_at;
ALTER TABLE signing_keys DROP COLUMN remove_after;
ALTER TABLE signing_keys DROP COLUMN activates_at;
ALTER TABLE signing_keys DROP CONSTRAINT signing_keys_state_check;
ALTER TABLE signing_keys ADD CONSTRAINT signing_keys_state_check
    CHECK (state IN ('pending', 'active', 'retired', 'revoked'));
