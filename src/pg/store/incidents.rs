//! PostgreSQL backend of the port's incidents and updates (the timeline, drafts, publishing, approval release) and components with their history (Incidents, Components).
