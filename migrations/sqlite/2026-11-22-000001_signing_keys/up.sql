-- Signing keys: public JWK in clear, private key sealed with AES-256-GCM under the KEK.
CREATE TABLE signing_keys (
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

-- Exactly one active signer per algorithm, enforced by the database on every instance.
CREATE UNIQUE INDEX signing_keys_one_active_per_alg ON signing_keys (alg) WHERE state = 'active';
