-- Migration 5: the audience's listings in ULID order.
-- Subscribers are listed in the order they were added, which is their ids' bytewise order (sled's
-- keys), read in pages by an id cursor (`id > $1 ORDER BY id COLLATE "C"`). The primary key's
-- index is in the database's collation, which may order text otherwise; this one is bytewise, so
-- each page is an index range, not a scan of every subscriber.
CREATE INDEX crier_subscribers_id_c ON crier_subscribers (id COLLATE "C");
