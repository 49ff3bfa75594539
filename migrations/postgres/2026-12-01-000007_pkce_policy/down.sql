-- Requests and codes without a challenge (minutes-lived) cannot be kept under NOT NULL.
DELETE FROM authorization_codes WHERE code_challenge IS NULL;
DELETE FROM authorization_requests WHERE code_challenge IS NULL;
ALTER TABLE authorization_codes ALTER COLUMN code_challenge SET NOT NULL;
ALTER TABLE authorization_requests ALTER COLUMN code_challenge SET NOT NULL;
ALTER TABLE clients DROP COLUMN pkce;
