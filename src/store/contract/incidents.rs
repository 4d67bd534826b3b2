//! The contract of incidents and updates (the timeline, drafts, publishing, approval release) and components with their history (Incidents, Components), run on both backends.
