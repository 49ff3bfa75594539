DROP INDEX refresh_token_families_sid;
ALTER TABLE refresh_token_families DROP COLUMN sid;
ALTER TABLE refresh_token_families DROP COLUMN auth_time;
DROP TABLE access_tokens;
DROP TABLE authorization_codes;
DROP TABLE authorization_requests;
DROP TABLE browser_sessions;
DROP TABLE clients;
