-- Refresh tokens: one family per login; every refresh marks the presented token used and adds
-- its successor. Tokens are stored only as SHA-256. A family's last use is the `created_at` of
-- its newest token, so a refresh writes no family row.
CREATE TABLE refresh_token_families (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    revoked_at TIMESTAMP,
    revoked_reason TEXT
);
CREATE INDEX refresh_token_families_user ON refresh_token_families (user_id);

CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    family_id TEXT NOT NULL REFERENCES refresh_token_families (id) ON DELETE CASCADE,
    -- The token this one replaced (NULL for a family's first token).
    parent_hash TEXT,
    created_at TIMESTAMP NOT NULL,
    used_at TIMESTAMP
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);

-- Login throttling, shared by every instance: attempts per key (account or client IP) in a window.
CREATE TABLE login_attempts (
    throttle_key TEXT PRIMARY KEY,
    attempts INTEGER NOT NULL,
    window_started_at TIMESTAMP NOT NULL
);

CREATE TABLE audit_events (
    id TEXT PRIMARY KEY,
    occurred_at TIMESTAMP NOT NULL,
    actor TEXT,
    action TEXT NOT NULL,
    subject TEXT,
    detail TEXT
);
CREATE INDEX audit_events_time ON audit_events (occurred_at);
