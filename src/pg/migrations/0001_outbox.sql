-- Migration 1: the outbox.
-- One row per delivery (update x channel x recipient; the id is its idempotency key). A delivery
-- is pending until it is sent or dead. A node claims due pending rows by setting lease_owner and
-- lease_expires_at and counting the attempt; the attempt number is the claim's fencing token:
-- only the node holding that very claim may record its outcome. An expired lease lets any node
-- claim the row again.
CREATE TABLE crier_deliveries (
    id               text        PRIMARY KEY,
    channel          text        NOT NULL,
    payload          bytea       NOT NULL,
    state            text        NOT NULL DEFAULT 'pending'
                                 CHECK (state IN ('pending', 'sent', 'dead')),
    attempts         integer     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at  timestamptz NOT NULL,
    lease_owner      text,
    lease_expires_at timestamptz,
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    finished_at      timestamptz,
    CHECK ((lease_owner IS NULL) = (lease_expires_at IS NULL)),
    CHECK (state = 'pending' OR lease_owner IS NULL)
);

-- The claim scan: due pending rows in due order.
CREATE INDEX crier_deliveries_due ON crier_deliveries (next_attempt_at, id)
    WHERE state = 'pending';

-- New deliveries wake idle nodes (LISTEN crier_outbox); a notification is only a hint, nodes
-- also poll, since a listener that is disconnected misses it.
CREATE FUNCTION crier_deliveries_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('crier_outbox', '');
    RETURN NULL;
END
$$;
CREATE TRIGGER crier_deliveries_notify AFTER INSERT ON crier_deliveries
    FOR EACH STATEMENT EXECUTE FUNCTION crier_deliveries_notify();
