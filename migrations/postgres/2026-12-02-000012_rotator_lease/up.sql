-- Who is the signing-key rotator: one row per role, held by one instance until `expires_at`.
-- Taken or renewed in short transactions by a conditional UPDATE (holder is me, or the lease
-- lapsed) and a row count, so it needs no session state on the connection: it works behind
-- PgBouncer's transaction pooling and across a failover, where a session-level advisory lock
-- does not. The row exists from the start (never inserted at run time), so taking the lease is
-- an UPDATE on both backends.
CREATE TABLE rotator_lease (
    role TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    expires_at TIMESTAMP NOT NULL
);
INSERT INTO rotator_lease (role, holder, expires_at)
    VALUES ('signing_keys', '', '1970-01-01 00:00:00');
