-- Logos of dynamically registered clients (RFC 7591 §2 and OpenID Connect Dynamic Client
-- Registration §2 `logo_uri`): fetched once at registration (and at each RFC 7592 update)
-- through the SSRF-safe fetcher, kept only when the bytes are a PNG, JPEG, GIF or WebP image
-- (by magic number; never SVG) of at most 64 KiB, and served from our own origin at
-- {issuer}/clients/{client_id}/logo, so the login and consent pages load nothing from other
-- origins (AUTHZ-11). A table of its own keeps the clients rows and the in-memory client
-- registry small. `content_type`: the type the bytes were recognised as. Deleting the client
-- deletes its logo.
CREATE TABLE client_logos (
    client_id TEXT PRIMARY KEY NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    content_type TEXT NOT NULL,
    bytes BLOB NOT NULL CHECK (length(bytes) <= 65536),
    fetched_at TIMESTAMP NOT NULL
);
