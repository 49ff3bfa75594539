CREATE TABLE signing_keys_old (
    kid TEXT PRIMARY KEY,
    alg TEXT NOT NULL CHECK (alg IN ('ES256', 'RS256')),
    state TEXT NOT NULL CHECK (state IN ('pending', 'active', 'retired', 'revoked')),
    public_jwk TEXT NOT NULL,
    private_key_sealed TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    activated_at TIMESTAMP,
    retired_at TIMESTAMP,
    revoked_at TIMESTAMP
);
INSERT INTO signing_keys_old
    SELECT kid, alg, CASE state WHEN 'removed' THEN 'revoked' ELSE state END, public_jwk,
        private_key_sealed, created_at, activated_at, retired_at, COALESCE(revoked_at, removed_at)
    FROM signing_keys;
DROP TABLE signing_keys;
ALTER TABLE signing_keys_old RENAME TO signing_keys;
CREATE UNIQUE INDEX signing_keys_one_active_per_alg ON signing_keys (alg) WHERE state = 'active';
