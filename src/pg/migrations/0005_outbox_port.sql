-- Migration: the outbox on PostgreSQL as the store port's `Outbox` (src/pg/store/outbox.rs).
-- Claims are per channel: the claim scan, `next_due` and the leased rows of a channel from one
-- index of its pending rows in due order.
CREATE INDEX crier_deliveries_channel_due ON crier_deliveries (channel, next_attempt_at)
    WHERE state = 'pending';

-- A provider's status callback names the message by its receipt alone (as sled's `receipts`
-- tree keys it); `index_receipt` keeps a receipt on one row at most.
CREATE INDEX crier_deliveries_by_receipt ON crier_deliveries (receipt)
    WHERE receipt IS NOT NULL;

-- An incident's deliveries page by page in (seq, delivery id) order, bytewise as sled's keys.
CREATE INDEX crier_deliveries_page ON crier_deliveries (incident_id, seq, delivery_id COLLATE "C");
