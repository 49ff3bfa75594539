ALTER TABLE clients DROP COLUMN introspection_audiences;
DROP TABLE trusted_devices;
DROP INDEX authorization_requests_expiry;
DROP INDEX authorization_requests_browser;
DROP INDEX access_tokens_user;
ALTER TABLE access_tokens DROP COLUMN user_id;
