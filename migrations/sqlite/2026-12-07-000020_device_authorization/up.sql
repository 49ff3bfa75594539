-- Device authorization grant (RFC 8628, issue 18 item 1). One row per device authorization
-- request: the device code and the user code are stored as SHA-256 hashes only (the user code
-- normalised: upper case, no dash). `status` is `pending` until the user approves or denies it
-- at the verification page; the token endpoint redeems an approved row once (`used_at`, set by
-- a conditional update). `interval_secs` is the polling interval the device must keep (5 s,
-- raised by 5 s on every `slow_down`, RFC 8628 §3.5); `last_polled_at` the last token request.
CREATE TABLE device_authorizations (
    id TEXT PRIMARY KEY NOT NULL,
    device_code_hash TEXT NOT NULL UNIQUE,
    user_code_hash TEXT NOT NULL UNIQUE,
    client_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    resource TEXT,
    status TEXT NOT NULL DEFAULT 'pending',
    user_id TEXT,
    auth_time TIMESTAMP,
    amr TEXT,
    interval_secs INTEGER NOT NULL,
    last_polled_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    decided_at TIMESTAMP,
    used_at TIMESTAMP,
    family_id TEXT,
    access_jti TEXT
);
CREATE INDEX device_authorizations_expires_at ON device_authorizations (expires_at);
