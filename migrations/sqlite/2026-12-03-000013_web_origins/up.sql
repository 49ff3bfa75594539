-- Browser apps (issue 15 item 7): a client's explicitly registered web origins, a JSON array of
-- `scheme://host[:port]`. The token, revocation and userinfo endpoints answer CORS for these and
-- for the origins of the client's http(s) redirect URIs. Existing clients get none (their
-- redirect URIs' origins still apply).
ALTER TABLE clients ADD COLUMN web_origins TEXT NOT NULL DEFAULT '[]';
