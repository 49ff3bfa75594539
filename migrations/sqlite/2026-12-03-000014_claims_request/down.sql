ALTER TABLE consents DROP COLUMN claims;
ALTER TABLE access_tokens DROP COLUMN requested_claims;
ALTER TABLE refresh_token_families DROP COLUMN requested_claims;
ALTER TABLE authorization_codes DROP COLUMN requested_claims;
ALTER TABLE authorization_requests DROP COLUMN requested_claims;
