-- Dynamic client registration (RFC 7591) and management (RFC 7592), issue 18 item 3.
-- `registration`: how the client was registered: NULL by an administrator (CLI, admin API);
-- `token` through POST /register with an initial access token; `open` through open
-- registration (public clients within the open policy). `registration_token_hash`: SHA-256 of
-- the RFC 7592 registration access token (dynamic clients only). `last_used_at`: the last time
-- a token was issued to a dynamic client (recorded at most once a day), for the expiry of
-- unused dynamic clients. The RFC 7591 §2 display metadata is stored as registered.
ALTER TABLE clients ADD COLUMN registration TEXT;
ALTER TABLE clients ADD COLUMN registration_token_hash TEXT;
ALTER TABLE clients ADD COLUMN last_used_at TIMESTAMP;
ALTER TABLE clients ADD COLUMN client_name TEXT;
ALTER TABLE clients ADD COLUMN logo_uri TEXT;
ALTER TABLE clients ADD COLUMN policy_uri TEXT;
ALTER TABLE clients ADD COLUMN tos_uri TEXT;
ALTER TABLE clients ADD COLUMN contacts TEXT NOT NULL DEFAULT '[]';
CREATE INDEX clients_registration ON clients (registration);

-- Initial access tokens (RFC 7591 §3): issued by administrators, stored as SHA-256, each
-- valid until `expires_at` for at most `max_uses` registrations (NULL: no limit) unless
-- revoked. A use is spent by a conditional UPDATE in the registration's transaction.
CREATE TABLE initial_access_tokens (
    id TEXT PRIMARY KEY NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    max_uses INTEGER,
    uses INTEGER NOT NULL DEFAULT 0,
    revoked_at TIMESTAMP
);
