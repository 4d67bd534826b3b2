-- Migration 3: what the incident aggregates need besides their tables (docs/POSTGRES.md,
-- "The store on PostgreSQL").

-- The public pages' generation (`Components::public_generation`): one row, incremented in the
-- transaction of every write the public pages show, so it becomes visible with the write on
-- every node at once (a sequence would run ahead of uncommitted writes).
CREATE TABLE crier_public_generation (
    one boolean PRIMARY KEY DEFAULT true CHECK (one),
    gen bigint  NOT NULL CHECK (gen >= 0)
);
INSERT INTO crier_public_generation (one, gen) VALUES (true, 0);

-- Incidents newest first, as sled lists them: by id, bytewise (ULIDs sort in time order in
-- the "C" collation, whatever the database's default).
CREATE INDEX crier_incidents_id_c ON crier_incidents (id COLLATE "C");
