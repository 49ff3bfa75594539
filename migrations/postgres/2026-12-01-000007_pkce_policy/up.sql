-- Per-client PKCE policy (issue 15): `required` (the default, and the only value for public
-- clients), `pkce_or_nonce` (an OpenID request with a nonce may omit PKCE, RFC 9700 §2.1.1) or
-- `optional` (confidential clients). Existing clients keep requiring PKCE.
ALTER TABLE clients ADD COLUMN pkce TEXT NOT NULL DEFAULT 'required'
    CHECK (pkce IN ('required', 'pkce_or_nonce', 'optional'));

-- A request (and its code) may carry no challenge when the client's policy allows it; such a
-- code is then redeemed without any code_verifier (RFC 7636 §4.6, RFC 9700 §2.1.1).
ALTER TABLE authorization_requests ALTER COLUMN code_challenge DROP NOT NULL;
ALTER TABLE authorization_codes ALTER COLUMN code_challenge DROP NOT NULL;
