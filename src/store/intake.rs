//! Monitoring alert groups: which incident a (source, group) of alerts opened, and the state of
//! each alert key in it, so repeated triggers are absorbed and the incident resolves only when
//! every key has resolved.
//!
//! Tree `alerts`: source ‖ 0x00 ‖ group → JSON [`AlertGroup`].

use super::{decode, encode, Store, StoreError};
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
}

impl AlertGroup {
    /// How many of its keys are firing.
    pub fn firing(&self) -> usize {
        self.alerts.values().filter(|a| a.firing).count()
    }
}

fn group_key(source: &str, group: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(source.len() + group.len() + 1);
    k.extend_from_slice(source.as_bytes());
    k.push(0);
    k.extend_from_slice(group.as_bytes());
    k
}

impl Store {
    /// The alert group (source, group), if monitoring has reported it before.
    pub fn alert_group(&self, source: &str, group: &str) -> Result<Option<AlertGroup>, StoreError> {
        let t = self.t()?;
        match t.alerts.get(group_key(source, group))? {
            Some(raw) => Ok(Some(decode(&raw)?)),
            None => Ok(None),
        }
    }

    /// Saves an alert group. Durable when it returns.
    pub async fn put_alert_group(&self, g: &AlertGroup) -> Result<(), StoreError> {
        let t = self.t()?;
        t.alerts
            .insert(group_key(&g.source, &g.group), encode(g)?)?;
        t.durable().await
    }

    /// Every alert group (for status and tests).
    pub fn alert_groups(&self) -> Result<Vec<AlertGroup>, StoreError> {
        let t = self.t()?;
        t.alerts.iter().values().map(|v| decode(&v?)).collect()
    }
}
