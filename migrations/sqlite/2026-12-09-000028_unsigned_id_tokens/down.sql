-- Clients that had unsigned ID tokens get the default, RS256; then the CHECK is narrowed back
-- (in place, as in up.sql).
UPDATE clients SET id_token_alg = 'RS256' WHERE id_token_alg = 'none';
PRAGMA writable_schema = ON;
UPDATE sqlite_schema
    SET sql = replace(sql, 'CHECK (id_token_alg IN (''ES256'', ''RS256'', ''none''))',
                      'CHECK (id_token_alg IN (''ES256'', ''RS256''))')
    WHERE type = 'table' AND name = 'clients';
PRAGMA writable_schema = RESET;
CREATE TABLE schema_cookie_bump (x INTEGER);
DROP TABLE schema_cookie_bump;
