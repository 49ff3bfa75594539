-- APIs (resource servers, issue 15): the audience of their access tokens and the scopes clients
-- may be allowed. Scope names are unique across APIs, so a scope names its API. Ids are UUIDs
-- made in Rust; an API's updated_at changes with its scopes (the registry's fingerprint).
CREATE TABLE apis (
    id TEXT PRIMARY KEY,
    -- The audience (`aud`) of its access tokens: an absolute URI without a fragment (RFC 8707 §2).
    identifier TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

CREATE TABLE api_scopes (
    scope TEXT PRIMARY KEY,
    api_id TEXT NOT NULL REFERENCES apis (id) ON DELETE CASCADE,
    -- Shown on the consent page.
    description TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX api_scopes_api ON api_scopes (api_id);
