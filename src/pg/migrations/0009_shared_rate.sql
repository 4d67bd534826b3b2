-- Migration 9: a channel's rate shared by every node (docs/DEPLOYMENT.md, "Rates").
-- One token bucket per channel: the tokens left when it was last taken from, and when. A node
-- takes a few tokens at a time (`PgStore::take_rate`), so all nodes together send no faster than
-- the channel's `rate`. UNLOGGED: the bucket need not survive a crash (it starts full again),
-- and a transaction that changes only an unlogged table does not wait for a WAL flush.
CREATE UNLOGGED TABLE crier_rate (
    channel text PRIMARY KEY,
    tokens  double precision NOT NULL,
    at      timestamptz NOT NULL
);
