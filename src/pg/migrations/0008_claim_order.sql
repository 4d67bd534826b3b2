-- Migration 8: the claim scan reads the outbox in its whole order (docs/POSTGRES.md, "Claims").
-- `claim_due` orders a channel's due rows by (next_attempt_at, incident, seq, delivery id); the
-- index of migration 5 held only the first key, so when many rows share one due time (every
-- delivery of a fan-out does) each claim read and sorted all of them to take its batch: 57 ms
-- per claim at 30,000 pending rows, 60 % of the server's time in a fan-out (bench_pg,
-- pg_stat_statements). With the whole order in the index a claim stops after its batch and
-- the leased rows ahead of it. `next_due` reads the same index's first rows.
CREATE INDEX crier_deliveries_claim ON crier_deliveries
    (channel, next_attempt_at, incident_id COLLATE "C", seq, delivery_id COLLATE "C")
    WHERE state = 'pending';
DROP INDEX crier_deliveries_channel_due;
-- (incident_id, seq) is a prefix of migration 5's page index, which serves its lookups; every
-- index is one more entry to write when a delivery's outcome moves its due time.
DROP INDEX crier_deliveries_incident;
