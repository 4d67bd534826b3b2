//! Monitoring intake: triggers from `crier trigger`, `POST /api/v1/triggers`, Alertmanager and
//! Grafana webhooks become incidents — without flooding the public when an alert flaps.
//!
//! - A (source, group) maps to at most one open incident; each alert key in the group has a
//!   state. Firing opens the incident or appends to it; an identical repeat (HA pairs send every
//!   notification twice) is absorbed; the incident resolves when every key has resolved.
//! - Routing rules (config) map labels to components, impact, channels and a mode: `publish`
//!   (goes out at once, after the hold-down) or `draft` (waits for a person).
//! - Flap hold-down: the incident opens at once (visible in `incident list`) but as a draft with a
//!   hold; the scheduler publishes it when the hold ends if it is still open. An alert that fires
//!   and resolves inside the window publishes nothing; one that fires again shortly after it
//!   resolved reopens the same incident instead of opening another.
//!
//! Crash safety: the group records the incident id before the incident is written (a retried
//! trigger finds it and completes the opening instead of opening a second one); an update is
//! written before the key state that absorbs its repeat (a crash at worst repeats the update,
//! never loses it); a resolve is written before the key state for the same reason.

pub mod payloads;
pub mod settings;

use crate::domain::{Body, ComponentName, DomainError, Impact, IncidentKind, Locale, Title};
use crate::store::intake::{AlertGroup, AlertState, Mode};
use crate::store::schedule::Hold;
use crate::store::{Change, NewIncident, NewUpdate, Store, StoreError};
use chrono::{DateTime, Utc};
use serde::Serialize;
pub use settings::{IntakeSettings, Route};
use std::collections::BTreeMap;
use ulid::Ulid;

/// Whether an alert is firing or has resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertStatus {
    Firing,
    Resolved,
}

impl AlertStatus {
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "firing" | "alerting" | "problem" => Ok(AlertStatus::Firing),
            "resolved" | "ok" | "normal" => Ok(AlertStatus::Resolved),
            other => Err(DomainError::invalid(
                "status",
                format!("\"{other}\" is not an alert status; use firing or resolved"),
            )),
        }
    }
}

/// One alert, from whichever source.
#[derive(Debug, Clone, PartialEq)]
pub struct Trigger {
    /// The monitoring system ("prometheus-prod", "alertmanager", "nagios").
    pub source: String,
    /// Alerts of one group share one incident (Alertmanager's groupKey); defaults to the key.
    pub group: String,
    /// The alert's identity within its source (Alertmanager's fingerprint).
    pub key: String,
    pub status: AlertStatus,
    /// What is wrong, in words the public may read.
    pub summary: String,
    /// Incident title; defaults to the summary.
    pub title: Option<String>,
    /// Explicit impact and components override the route's.
    pub impact: Option<Impact>,
    pub components: Vec<ComponentName>,
    /// Labels the routing rules match on.
    pub labels: BTreeMap<String, String>,
}

/// What a trigger did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// A new incident was opened.
    Opened {
        incident: Ulid,
        held_until: Option<DateTime<Utc>>,
        draft: bool,
    },
    /// A new or changed alert was added to the group's open incident.
    Appended { incident: Ulid },
    /// The group's recently resolved incident was reopened (a flap).
    Reopened { incident: Ulid },
    /// Nothing new: a repeat of what is already known.
    Absorbed { incident: Option<Ulid> },
    /// The key resolved, but others in the group are still firing.
    PartlyResolved { incident: Ulid, still_firing: usize },
    /// Every key has resolved: so has the incident.
    Resolved { incident: Ulid },
}

impl Outcome {
    /// The incident it concerns, if any.
    pub fn incident(&self) -> Option<Ulid> {
        match self {
            Outcome::Opened { incident, .. }
            | Outcome::Appended { incident }
            | Outcome::Reopened { incident }
            | Outcome::PartlyResolved { incident, .. }
            | Outcome::Resolved { incident } => Some(*incident),
            Outcome::Absorbed { incident } => *incident,
        }
    }
}

/// Why a trigger could not be handled.
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Domain(#[from] DomainError),
}

/// The intake service: serialises triggers (one at a time: a read-check-write across the group
/// and the incident) and applies the routing rules.
pub struct Intake {
    store: Store,
    settings: IntakeSettings,
    lock: tokio::sync::Mutex<()>,
}

impl Intake {
    pub fn new(store: Store, settings: IntakeSettings) -> Self {
        Intake {
            store,
            settings,
            lock: tokio::sync::Mutex::new(()),
        }
    }

    pub fn settings(&self) -> &IntakeSettings {
        &self.settings
    }

    /// Handles a batch of alerts in order (an Alertmanager notification carries several).
    /// `targets` are the active channels (name, audience is subscribers).
    pub async fn handle_all(
        &self,
        triggers: Vec<Trigger>,
        targets: &[(String, bool)],
        now: DateTime<Utc>,
    ) -> Result<Vec<Outcome>, IntakeError> {
        let mut out = Vec::with_capacity(triggers.len());
        for t in triggers {
            out.push(self.handle(t, targets, now).await?);
        }
        Ok(out)
    }

    /// Handles one alert.
    pub async fn handle(
        &self,
        t: Trigger,
        targets: &[(String, bool)],
        now: DateTime<Utc>,
    ) -> Result<Outcome, IntakeError> {
        let _one = self.lock.lock().await;
        let group = self.store.alert_group(&t.source, &t.group)?;
        match t.status {
            AlertStatus::Firing => self.firing(t, group, targets, now).await,
            AlertStatus::Resolved => self.resolved(t, group, now).await,
        }
    }

    fn body(&self, text: &str) -> Result<Body, DomainError> {
        Body::single(self.settings.locale.clone(), text)
    }

    async fn firing(
        &self,
        t: Trigger,
        group: Option<AlertGroup>,
        targets: &[(String, bool)],
        now: DateTime<Utc>,
    ) -> Result<Outcome, IntakeError> {
        let hold_down = chrono::Duration::from_std(self.settings.hold_down).unwrap_or_default();
        if let Some(mut g) = group {
            match self.store.incident_summary(g.incident_id) {
                Ok(incident) if incident.is_open() => {
                    let known = g.alerts.get(&t.key);
                    if known.is_some_and(|a| a.firing && a.summary == t.summary) {
                        return Ok(Outcome::Absorbed {
                            incident: Some(incident.id),
                        });
                    }
                    let update = NewUpdate {
                        change: Change::Update(None),
                        body: self.body(&t.summary)?,
                        author: format!("monitoring ({})", t.source),
                        impact: t.impact.filter(|i| *i > incident.impact),
                        next_update_due: None,
                        draft: incident.draft || g.mode == Mode::Draft,
                        broadcast: g.broadcast.clone(),
                    };
                    self.store.append_update(incident.id, update, now).await?;
                    g.alerts.insert(t.key.clone(), firing_state(&t, now));
                    g.updated_at = now;
                    self.store.put_alert_group(&g).await?;
                    return Ok(Outcome::Appended {
                        incident: incident.id,
                    });
                }
                Ok(incident) => {
                    // Resolved. Within the hold-down of its resolution, this is a flap: reopen.
                    if incident.resolved_at.is_some_and(|r| now - r < hold_down) {
                        let update = NewUpdate {
                            change: Change::Reopen,
                            body: self.body(&t.summary)?,
                            author: format!("monitoring ({})", t.source),
                            impact: t.impact,
                            next_update_due: None,
                            draft: incident.draft || g.mode == Mode::Draft,
                            broadcast: g.broadcast.clone(),
                        };
                        self.store.append_update(incident.id, update, now).await?;
                        if incident.draft && g.mode == Mode::Publish {
                            self.store
                                .put_hold(&Hold {
                                    incident_id: incident.id,
                                    until: now + hold_down,
                                    broadcast: g.broadcast.clone(),
                                })
                                .await?;
                        }
                        g.alerts.insert(t.key.clone(), firing_state(&t, now));
                        g.updated_at = now;
                        self.store.put_alert_group(&g).await?;
                        return Ok(Outcome::Reopened {
                            incident: incident.id,
                        });
                    }
                }
                Err(StoreError::NotFound { .. }) => {
                    // The group was recorded but the incident write never happened (a crash):
                    // complete the opening under the recorded id.
                    return self.open(t, Some(g.incident_id), targets, now).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
        self.open(t, None, targets, now).await
    }

    async fn open(
        &self,
        t: Trigger,
        id: Option<Ulid>,
        targets: &[(String, bool)],
        now: DateTime<Utc>,
    ) -> Result<Outcome, IntakeError> {
        let route = self.settings.route_for(&t.labels);
        let mode = route.mode;
        let broadcast: Vec<(String, bool)> = match &route.channels {
            Some(names) => targets
                .iter()
                .filter(|(n, _)| names.contains(n))
                .cloned()
                .collect(),
            None => targets.to_vec(),
        };
        let known = self.store.components()?;
        let components = if t.components.is_empty() {
            route
                .components
                .iter()
                .filter(|c| known.iter().any(|k| &k.name == *c))
                .cloned()
                .collect()
        } else {
            // Named by the caller: an unknown one is their mistake, refused before any write.
            for c in &t.components {
                if !known.iter().any(|k| &k.name == c) {
                    return Err(DomainError::UnknownComponent(c.to_string()).into());
                }
            }
            t.components.clone()
        };
        let impact = t.impact.unwrap_or(route.impact);
        let hold = mode == Mode::Publish && !self.settings.hold_down.is_zero();
        // Not `unwrap_or_default`: a default ULID is the nil id, not a new one.
        let id = match id {
            Some(id) => id,
            None => Ulid::new(),
        };
        let title = t.title.clone().unwrap_or_else(|| t.summary.clone());
        let title: String = title.chars().take(200).collect();
        let new = NewIncident {
            title: Title::parse(&title)?,
            kind: IncidentKind::Incident,
            status: None,
            impact,
            components,
            body: self.body(&t.summary)?,
            author: format!("monitoring ({})", t.source),
            next_update_due: None,
            draft: mode == Mode::Draft || hold,
            broadcast: broadcast.clone(),
            scheduled_for: None,
            scheduled_until: None,
            holding_statement: false,
        };
        let mut alerts = BTreeMap::new();
        alerts.insert(t.key.clone(), firing_state(&t, now));
        let group = AlertGroup {
            source: t.source.clone(),
            group: t.group.clone(),
            incident_id: id,
            alerts,
            mode,
            broadcast: broadcast.clone(),
            updated_at: now,
        };
        // The group (with the incident's id) first: see the module docs.
        self.store.put_alert_group(&group).await?;
        let held_until = hold
            .then(|| now + chrono::Duration::from_std(self.settings.hold_down).unwrap_or_default());
        if let Some(until) = held_until {
            self.store
                .put_hold(&Hold {
                    incident_id: id,
                    until,
                    broadcast,
                })
                .await?;
        }
        self.store.create_incident_with_id(id, new, now).await?;
        Ok(Outcome::Opened {
            incident: id,
            held_until,
            draft: mode == Mode::Draft,
        })
    }

    async fn resolved(
        &self,
        t: Trigger,
        group: Option<AlertGroup>,
        now: DateTime<Utc>,
    ) -> Result<Outcome, IntakeError> {
        let Some(mut g) = group else {
            return Ok(Outcome::Absorbed { incident: None });
        };
        let incident = match self.store.incident_summary(g.incident_id) {
            Ok(i) => i,
            Err(StoreError::NotFound { .. }) => return Ok(Outcome::Absorbed { incident: None }),
            Err(e) => return Err(e.into()),
        };
        if !incident.is_open() {
            return Ok(Outcome::Absorbed {
                incident: Some(incident.id),
            });
        }
        let was_firing = g.alerts.get(&t.key).is_some_and(|a| a.firing);
        if !was_firing && g.alerts.contains_key(&t.key) {
            return Ok(Outcome::Absorbed {
                incident: Some(incident.id),
            });
        }
        let still = g
            .alerts
            .iter()
            .filter(|(k, a)| a.firing && **k != t.key)
            .count();
        if still == 0 {
            let update = NewUpdate {
                change: Change::Resolve,
                body: self.body(&t.summary)?,
                author: format!("monitoring ({})", t.source),
                impact: None,
                next_update_due: None,
                draft: incident.draft || g.mode == Mode::Draft,
                broadcast: g.broadcast.clone(),
            };
            // The incident first: see the module docs.
            self.store.append_update(incident.id, update, now).await?;
        }
        g.alerts.insert(
            t.key.clone(),
            AlertState {
                firing: false,
                summary: t.summary.clone(),
                since: now,
            },
        );
        g.updated_at = now;
        self.store.put_alert_group(&g).await?;
        Ok(if still == 0 {
            Outcome::Resolved {
                incident: incident.id,
            }
        } else {
            Outcome::PartlyResolved {
                incident: incident.id,
                still_firing: still,
            }
        })
    }
}

fn firing_state(t: &Trigger, now: DateTime<Utc>) -> AlertState {
    AlertState {
        firing: true,
        summary: t.summary.clone(),
        since: now,
    }
}

/// The default locale of monitoring texts.
pub fn default_locale() -> Locale {
    Locale::english()
}
