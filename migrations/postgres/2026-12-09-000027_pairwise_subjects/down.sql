-- Dropping the column would give every pairwise client its users' ids: refused while any
-- client is pairwise (delete those clients, or make them public, first).
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM clients WHERE pairwise_sector IS NOT NULL) THEN
        RAISE EXCEPTION 'pairwise clients exist: reverting would show them their users'' ids';
    END IF;
END
$$;
ALTER TABLE clients DROP COLUMN pairwise_sector;
