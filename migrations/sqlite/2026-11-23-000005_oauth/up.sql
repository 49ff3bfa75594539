-- OAuth 2 / OpenID Connect: clients, browser sessions (SSO), pending authorization requests,
-- authorization codes, and the access tokens that can be revoked. Lists are JSON arrays (text);
-- flags are integers 0/1: the same schema serves both backends.
CREATE TABLE clients (
    client_id TEXT PRIMARY KEY,
    -- Base64url SHA-256 of a server-generated 256-bit secret; NULL for public clients.
    secret_hash TEXT,
    client_type TEXT NOT NULL CHECK (client_type IN ('public', 'confidential')),
    redirect_uris TEXT NOT NULL,
    grant_types TEXT NOT NULL,
    scopes TEXT NOT NULL,
    audiences TEXT NOT NULL,
    access_token_alg TEXT NOT NULL CHECK (access_token_alg IN ('ES256', 'RS256')),
    id_token_alg TEXT NOT NULL CHECK (id_token_alg IN ('ES256', 'RS256')),
    first_party INTEGER NOT NULL,
    post_logout_redirect_uris TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

-- A browser's login at the hosted page (SSO); the cookie holds a secret whose hash is the key.
CREATE TABLE browser_sessions (
    id_hash TEXT PRIMARY KEY,
    sid TEXT NOT NULL UNIQUE,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    auth_time TIMESTAMP NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    ended_at TIMESTAMP
);
CREATE INDEX browser_sessions_user ON browser_sessions (user_id);

-- An authorization request waiting for login or consent, bound to the browser that started it
-- (the hash of a per-flow cookie) and protected by a CSRF token (hashed).
CREATE TABLE authorization_requests (
    id TEXT PRIMARY KEY,
    browser_hash TEXT NOT NULL,
    csrf_hash TEXT NOT NULL,
    client_id TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    redirect_uri_sent INTEGER NOT NULL,
    scope TEXT NOT NULL,
    state TEXT,
    nonce TEXT,
    code_challenge TEXT NOT NULL,
    max_age INTEGER,
    force_login INTEGER NOT NULL,
    user_id TEXT,
    auth_time TIMESTAMP,
    expires_at TIMESTAMP NOT NULL,
    completed_at TIMESTAMP
);

CREATE TABLE authorization_codes (
    code_hash TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    redirect_uri TEXT NOT NULL,
    -- 1 when the authorization request named it: the token request must then repeat it.
    redirect_uri_sent INTEGER NOT NULL,
    scope TEXT NOT NULL,
    nonce TEXT,
    code_challenge TEXT NOT NULL,
    auth_time TIMESTAMP NOT NULL,
    sid TEXT,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    used_at TIMESTAMP,
    -- What the redemption issued, revoked if the code is replayed (CODE-01).
    family_id TEXT,
    access_jti TEXT
);

-- Access tokens of grants (and revoked ones): introspection and userinfo consult this, so a
-- revoked token or a token of a revoked grant is inactive before its `exp`.
CREATE TABLE access_tokens (
    jti TEXT PRIMARY KEY,
    family_id TEXT,
    client_id TEXT NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    revoked_at TIMESTAMP
);
CREATE INDEX access_tokens_family ON access_tokens (family_id);

-- What an OAuth grant remembers for its refreshes and ID tokens.
ALTER TABLE refresh_token_families ADD COLUMN auth_time TIMESTAMP;
ALTER TABLE refresh_token_families ADD COLUMN sid TEXT;
CREATE INDEX refresh_token_families_sid ON refresh_token_families (sid);
