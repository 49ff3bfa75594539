-- Unsigned ID tokens (OpenID Connect Dynamic Client Registration §2 `id_token_signed_response_alg:
-- none`): a client's `id_token_alg` may be `none` besides `ES256` and `RS256`. Its ID tokens are
-- then Unsecured JWS (RFC 7515 Appendix A.5), which Registration §2 allows for clients that get
-- no ID token from the authorization endpoint: every client here (`code` is the only response type).
ALTER TABLE clients
    DROP CONSTRAINT clients_id_token_alg_check,
    ADD CONSTRAINT clients_id_token_alg_check CHECK (id_token_alg IN ('ES256', 'RS256', 'none'));
