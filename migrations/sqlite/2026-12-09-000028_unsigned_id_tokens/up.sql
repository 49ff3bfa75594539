-- Unsigned ID tokens (OpenID Connect Dynamic Client Registration §2 `id_token_signed_response_alg:
-- none`): a client's `id_token_alg` may be `none` besides `ES256` and `RS256`. Its ID tokens are
-- then Unsecured JWS (RFC 7515 Appendix A.5), which Registration §2 allows for clients that get
-- no ID token from the authorization endpoint: every client here (`code` is the only response type).
--
-- SQLite cannot alter a CHECK constraint. Rebuilding `clients` would name every column (and
-- empty `client_logos` through its ON DELETE CASCADE); widening a CHECK changes nothing stored, so
-- the table's definition is edited in place instead, as SQLite documents for CHECK changes
-- (https://www.sqlite.org/lang_altertable.html#otheralter): `writable_schema`, then RESET to reload
-- this connection's schema, then a DDL statement so that the schema cookie changes and every other
-- connection reloads it too.
PRAGMA writable_schema = ON;
UPDATE sqlite_schema
    SET sql = replace(sql, 'CHECK (id_token_alg IN (''ES256'', ''RS256''))',
                      'CHECK (id_token_alg IN (''ES256'', ''RS256'', ''none''))')
    WHERE type = 'table' AND name = 'clients';
-- The edit must have taken (a definition whose text differs would leave `none` refused, every
-- unsigned registration a server error): otherwise the migration fails and rolls back.
CREATE TEMP TABLE migration_guard (ok INTEGER NOT NULL CHECK (ok = 1));
INSERT INTO migration_guard
    SELECT instr(sql, 'CHECK (id_token_alg IN (''ES256'', ''RS256'', ''none''))') > 0
    FROM sqlite_schema WHERE type = 'table' AND name = 'clients';
DROP TABLE migration_guard;
PRAGMA writable_schema = RESET;
CREATE TABLE schema_cookie_bump (x INTEGER);
DROP TABLE schema_cookie_bump;
