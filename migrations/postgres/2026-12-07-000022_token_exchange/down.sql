ALTER TABLE clients DROP COLUMN token_exchange_audiences;
