-- A private_key_jwt client's keys by reference (issue 18; RFC 7591 §2 `jwks_uri`): fetched
-- through the SSRF-safe fetcher and cached by their HTTP headers. A client has `jwks` or
-- `jwks_uri`, never both.
ALTER TABLE clients ADD COLUMN jwks_uri TEXT;
