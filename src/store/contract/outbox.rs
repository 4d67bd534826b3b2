//! The contract of the outbox: broadcasts, expansion, claims with leases, outcomes (Outbox), run on both backends.
