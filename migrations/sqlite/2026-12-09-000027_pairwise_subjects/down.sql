ALTER TABLE clients DROP COLUMN pairwise_sector;
