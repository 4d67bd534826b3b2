//! Leader election (to come).
