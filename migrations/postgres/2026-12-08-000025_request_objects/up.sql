-- Request objects (OIDC Core §6, RFC 9101): `request_uris` is the JSON array of the https URLs
-- the client may pass as `request_uri` (compared as exact strings, fragment included; only
-- these are ever fetched). `request_object_signing_alg` is the algorithm every request object
-- of the client must be signed with (RS256, PS256, ES256, or none for unsigned ones); NULL:
-- unsigned objects or any of RS256/PS256/ES256 its keys support.
ALTER TABLE clients ADD COLUMN request_uris TEXT NOT NULL DEFAULT '[]';
ALTER TABLE clients ADD COLUMN request_object_signing_alg TEXT;
