//! The outbox aggregate of the port: broadcasts, their deliveries, claims and outcomes. Filled
//! in by the port of issue 16.
