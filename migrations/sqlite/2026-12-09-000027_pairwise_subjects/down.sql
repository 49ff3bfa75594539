-- Dropping the column would give every pairwise client its users' ids: refused while any
-- client is pairwise (delete those clients, or make them public, first).
CREATE TEMP TABLE migration_guard (ok INTEGER NOT NULL CHECK (ok = 1));
INSERT INTO migration_guard
    SELECT COUNT(*) = 0 FROM clients WHERE pairwise_sector IS NOT NULL;
DROP TABLE migration_guard;
ALTER TABLE clients DROP COLUMN pairwise_sector;
