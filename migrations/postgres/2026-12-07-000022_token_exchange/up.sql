-- Token exchange (RFC 8693; issue 18 item 5). `token_exchange_audiences` lists the audiences
-- (API identifiers, RFC 8707) a confidential client may ask for with the
-- `urn:ietf:params:oauth:grant-type:token-exchange` grant; the first is its default. JSON array.
ALTER TABLE clients ADD COLUMN token_exchange_audiences TEXT NOT NULL DEFAULT '[]';
