//! The incident aggregates of the port: incidents and their updates (the timeline, drafts,
//! publishing) and components with their history. Filled in by the port of issue 16.
