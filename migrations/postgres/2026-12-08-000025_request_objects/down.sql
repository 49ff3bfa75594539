ALTER TABLE clients DROP COLUMN request_object_signing_alg;
ALTER TABLE clients DROP COLUMN request_uris;
