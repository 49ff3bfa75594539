-- Remembered consent (issue 15 item 3): what a user approved for a client, so the next
-- authorization asking for no more is not put to the user again (and prompt=none succeeds).
-- One row per user and client; `scope` is the union of every scope approved (space-separated,
-- OpenID and API scopes alike).
CREATE TABLE consents (
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    PRIMARY KEY (user_id, client_id)
);
CREATE INDEX consents_client ON consents (client_id);

-- prompt=consent of a pending request is kept in authorization_requests.force_login (bit 2,
-- next to bit 1 for prompt=login): a new column would pass diesel's 16-column limit. Existing
-- rows hold 0 or 1: consent not forced.
