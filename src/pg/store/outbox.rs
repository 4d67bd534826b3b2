//! PostgreSQL backend of the port's the outbox: broadcasts, expansion, claims with leases, outcomes (Outbox).
