-- private_key_jwt client authentication (issue 18 item 2; RFC 7523 §2.2, OIDC Core §9).
-- `token_endpoint_auth_method` is the client's registered method (RFC 7591 §2): `none` for
-- public clients, `client_secret_basic` (a secret, in the header or the body) for existing
-- confidential ones, `private_key_jwt` for clients that prove themselves with a JWT signed by
-- a key of their `jwks` (a JSON Web Key Set of public keys, RFC 7517 §5).
ALTER TABLE clients ADD COLUMN token_endpoint_auth_method TEXT NOT NULL DEFAULT 'client_secret_basic';
UPDATE clients SET token_endpoint_auth_method = 'none' WHERE client_type = 'public';
ALTER TABLE clients ADD COLUMN jwks TEXT;

-- The `jti` of every client assertion accepted, until the assertion expires: an assertion is
-- accepted once, by whichever instance sees it first (the primary key decides).
CREATE TABLE client_assertions (
    client_id TEXT NOT NULL,
    jti_hash TEXT NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    PRIMARY KEY (client_id, jti_hash)
);
CREATE INDEX client_assertions_expires_at ON client_assertions (expires_at);
