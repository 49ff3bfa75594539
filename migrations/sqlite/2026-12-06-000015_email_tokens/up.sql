-- Email (issue 17 item 4): single-use tokens sent by mail, and the outbox mail leaves through.

-- A token sent by mail: only its SHA-256 is stored. `purpose` is `verify_email` (proves the
-- account's current address), `change_email` (proves `email`, the new address, which becomes the
-- account's address only then) or `reset_password`. Used once (`used_at`, set by a conditional
-- UPDATE), and never after `expires_at`.
CREATE TABLE email_tokens (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose TEXT NOT NULL,
    email TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    used_at TIMESTAMP
);
CREATE INDEX email_tokens_user ON email_tokens (user_id, purpose);
CREATE INDEX email_tokens_expiry ON email_tokens (expires_at);

-- Mail waiting to be sent, or sent: the user's action is committed with its mail, and a
-- delivery task sends it (retrying while the SMTP server is away). `body` is sealed under the KEK
-- (it holds a live link) and erased once sent. One instance sends a row at a time: it claims it
-- (`claimed_until`) with a conditional UPDATE.
CREATE TABLE mail_outbox (
    id TEXT PRIMARY KEY,
    recipient TEXT NOT NULL,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    purpose TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    next_attempt_at TIMESTAMP NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    claimed_until TIMESTAMP,
    sent_at TIMESTAMP,
    failed_at TIMESTAMP,
    last_error TEXT
);
CREATE INDEX mail_outbox_due ON mail_outbox (next_attempt_at);
CREATE INDEX mail_outbox_created ON mail_outbox (created_at);
