-- Pairwise subject identifiers (OpenID Connect Core §8.1; Dynamic Client Registration §2
-- `subject_type` and `sector_identifier_uri`). NULL for a public client (`sub` is the user id);
-- else a JSON object: `sector_identifier`, the client's sector (a host, lower case), in which
-- its users' `sub` is their pairwise identifier, and `sector_identifier_uri`, the document the
-- sector was checked against when it registered one. Fixed when the client is created.
ALTER TABLE clients ADD COLUMN pairwise_sector TEXT;
