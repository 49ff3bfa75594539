-- The `claims` request parameter (OpenID Connect Core §5.5, issue 15 item 4): the claims a
-- client asked for individually, carried from the pending request to its code, to the grant's
-- refresh family and to the access token the code issued (userinfo reads it there, or through
-- the family for refreshed tokens). A compact JSON object written by `oidc::claims_request`
-- (`{"userinfo":[names],"id_token":[names],"sub":value}`, known claim names only); NULL when
-- the request named none, as every existing row.
ALTER TABLE authorization_requests ADD COLUMN requested_claims TEXT;
ALTER TABLE authorization_codes ADD COLUMN requested_claims TEXT;
ALTER TABLE refresh_token_families ADD COLUMN requested_claims TEXT;
ALTER TABLE access_tokens ADD COLUMN requested_claims TEXT;
-- Remembered consent covers the claims approved beyond the scopes (space-separated names);
-- existing consents approved none.
ALTER TABLE consents ADD COLUMN claims TEXT NOT NULL DEFAULT '';
