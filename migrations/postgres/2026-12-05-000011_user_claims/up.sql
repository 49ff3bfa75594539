-- Standard claims of a user (OIDC Core §5.1), one row per user that has any: `claims` is a JSON
-- object of the claims that are set — strings, `email_verified`/`phone_number_verified`
-- booleans and the §5.1.1 `address` object — validated when written (`accounts::profile`).
-- Absent claims are absent members, never "". `sub`, `preferred_username`, `email` and
-- `updated_at` come from `users`.
CREATE TABLE user_claims (
    user_id TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    claims TEXT NOT NULL
);
