-- Clients that had unsigned ID tokens get the default, RS256.
UPDATE clients SET id_token_alg = 'RS256' WHERE id_token_alg = 'none';
ALTER TABLE clients
    DROP CONSTRAINT clients_id_token_alg_check,
    ADD CONSTRAINT clients_id_token_alg_check CHECK (id_token_alg IN ('ES256', 'RS256'));
