//! Monitoring alert groups as crier understands them: which incident a (source, group) of alerts
//! opened, each alert key's last state, what the public was last told and what waits for the
//! interval. The rules that act on them live in [`crate::intake`]; a backend only stores them
//! (sled: [`crate::store::intake`]), so these types are the domain's, not a backend's.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use ulid::Ulid;

/// Whether a route's incidents go out at once or wait for a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Published at once (after the flap hold-down).
    Publish,
    /// Kept as drafts until someone runs `crier incident publish`.
    #[default]
    Draft,
}

/// One alert key's last known state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertState {
    pub firing: bool,
    pub summary: String,
    pub since: DateTime<Utc>,
}

/// A group of alerts and the incident it maps to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertGroup {
    pub source: String,
    pub group: String,
    /// The incident the group opened (chosen before the incident is written).
    pub incident_id: Ulid,
    pub alerts: BTreeMap<String, AlertState>,
    pub mode: Mode,
    /// Channels its notifications go to: (name, audience is subscribers).
    pub broadcast: Vec<(String, bool)>,
    pub updated_at: DateTime<Utc>,
    /// When the group's incident last got a public update (its opening, resolution, reopening).
    #[serde(default)]
    pub public_at: Option<DateTime<Utc>>,
    /// What happened since that public update, for the next one.
    #[serde(default)]
    pub digest: Digest,
    /// A public update that waits for the interval, done by [`crate::intake::Intake::tick`].
    #[serde(default)]
    pub pending: Option<Pending>,
    /// How many staff detail messages the group has posted (their seq is derived from it).
    #[serde(default)]
    pub detail_seq: u32,
}

/// Alerts that fired or resolved since the group's last public update.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Digest {
    pub fired: u32,
    pub resolved: u32,
}

impl Digest {
    pub fn is_empty(&self) -> bool {
        self.fired == 0 && self.resolved == 0
    }
}

/// A public change held back by the interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PendingChange {
    /// Every key has resolved: resolve the incident.
    Resolve,
    /// A key fires again after the incident resolved: reopen it.
    Reopen,
}

/// A public update waiting until `due`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    pub change: PendingChange,
    pub due: DateTime<Utc>,
}

impl AlertGroup {
    /// How many of its keys are firing.
    pub fn firing(&self) -> usize {
        self.alerts.values().filter(|a| a.firing).count()
    }
}
