-- Signed UserInfo responses (OpenID Connect Core §5.3.2; Dynamic Client Registration §2
-- `userinfo_signed_response_alg`). `RS256` or `ES256`: userinfo answers this client with a JWT
-- (`application/jwt`) signed with the server's active key of that algorithm; NULL: plain JSON.
ALTER TABLE clients ADD COLUMN userinfo_signed_response_alg TEXT;
