ALTER TABLE clients DROP COLUMN second_factor;
ALTER TABLE authorization_requests DROP COLUMN factor_at;
ALTER TABLE authorization_requests DROP COLUMN factor_user_id;
ALTER TABLE refresh_token_families DROP COLUMN amr;
ALTER TABLE authorization_codes DROP COLUMN amr;
ALTER TABLE browser_sessions DROP COLUMN amr;
DROP TABLE second_factor_challenges;
DROP TABLE recovery_codes;
DROP TABLE second_factors;
