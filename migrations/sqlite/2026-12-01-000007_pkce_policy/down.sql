-- Requests and codes without a challenge (minutes-lived) cannot be kept under NOT NULL.
CREATE TABLE authorization_requests_new (
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
INSERT INTO authorization_requests_new
    (id, browser_hash, csrf_hash, client_id, redirect_uri, redirect_uri_sent, scope, state, nonce,
     code_challenge, max_age, force_login, user_id, auth_time, expires_at, completed_at)
    SELECT id, browser_hash, csrf_hash, client_id, redirect_uri, redirect_uri_sent, scope, state,
        nonce, code_challenge, max_age, force_login, user_id, auth_time, expires_at, completed_at
    FROM authorization_requests WHERE code_challenge IS NOT NULL;
DROP TABLE authorization_requests;
ALTER TABLE authorization_requests_new RENAME TO authorization_requests;
CREATE INDEX authorization_requests_browser ON authorization_requests (browser_hash);
CREATE INDEX authorization_requests_expiry ON authorization_requests (expires_at);

CREATE TABLE authorization_codes_new (
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
INSERT INTO authorization_codes_new
    (code_hash, client_id, user_id, redirect_uri, redirect_uri_sent, scope, nonce, code_challenge,
     auth_time, sid, created_at, expires_at, used_at, family_id, access_jti)
    SELECT code_hash, client_id, user_id, redirect_uri, redirect_uri_sent, scope, nonce,
        code_challenge, auth_time, sid, created_at, expires_at, used_at, family_id, access_jti
    FROM authorization_codes WHERE code_challenge IS NOT NULL;
DROP TABLE authorization_codes;
ALTER TABLE authorization_codes_new RENAME TO authorization_codes;
ALTER TABLE clients DROP COLUMN pkce;
