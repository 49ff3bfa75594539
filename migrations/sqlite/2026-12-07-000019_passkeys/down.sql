DROP TABLE webauthn_ceremonies;
DELETE FROM second_factors WHERE kind = 'passkey';
DROP INDEX second_factors_credential;
ALTER TABLE second_factors DROP COLUMN backup_state;
ALTER TABLE second_factors DROP COLUMN backup_eligible;
ALTER TABLE second_factors DROP COLUMN sign_count;
ALTER TABLE second_factors DROP COLUMN passkey;
ALTER TABLE second_factors DROP COLUMN credential_id;
