-- OAuth 2.0 Form Post Response Mode (issue 15 item 5): how a pending authorization request's
-- response is delivered once the user has signed in or decided. Existing rows keep the default.
ALTER TABLE authorization_requests ADD COLUMN response_mode TEXT NOT NULL DEFAULT 'query';
