//! A flap hold-down: an incident opened by monitoring whose public notifications wait, so an
//! alert that resolves within the hold-down never reaches the public. Stored by a backend, acted
//! on by [`crate::intake`] and the scheduler.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use ulid::Ulid;

/// A flap hold-down: the incident's public notifications wait until `until`; if it is resolved
/// by then, they are never sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hold {
    pub incident_id: Ulid,
    pub until: DateTime<Utc>,
    /// Channels to announce on when the hold ends: (name, audience is subscribers).
    pub broadcast: Vec<(String, bool)>,
}
