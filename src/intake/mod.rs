//! Monitoring intake: triggers from `crier trigger`, `POST /api/v1/triggers`, Alertmanager and
//! Grafana webhooks become incidents — without flooding the public when an alert flaps or a
//! whole fleet alerts at once.
//!
//! - A (source, group) maps to at most one open incident; each alert key in the group has a
//!   state. An identical repeat (HA pairs send every notification twice) is absorbed.
//! - The group's incident gets a PUBLIC update only when its public meaning changes: it opens
//!   (the first key fires), it resolves (every key has resolved), it reopens (a key fires again
//!   shortly after). Another key firing or resolving, or a changed summary (a live value), is
//!   per-alert detail: it goes to the staff channels (`intake.staff_channels`) as one standalone
//!   message per notification, and is counted in the group's digest. A 400-alert notification is
//!   one opening, not 400 updates.
//! - At most one public update per group per `intake.public_interval` (default 15 minutes): a
//!   resolve or reopen inside the interval waits (`pending` in the group) and [`Intake::tick`]
//!   posts it when the interval allows — unless the state moved back meanwhile (a flap), when
//!   nothing is posted at all. Every public update carries the digest of what happened since
//!   the last one ("3 more alerts fired, 2 resolved"). Drafts are not public and not limited.
//! - Routing rules (config) map labels to components, impact, channels and a mode: `publish`
//!   (goes out at once, after the hold-down) or `draft` (waits for a person).
//! - Flap hold-down: the incident opens at once (visible in `incident list`) but as a draft with a
//!   hold; the scheduler publishes it when the hold ends if it is still open. An alert that fires
//!   and resolves inside the window publishes nothing; one that fires again shortly after it
//!   resolved reopens the same incident instead of opening another.
//!
//! Crash safety: the group records the incident id before the incident is written (a retried
//! trigger finds it and completes the opening instead of opening a second one); a public update
//! is written before the key states that absorb its repeat (a crash at worst repeats the update,
//! never loses it); a resolve is written before the key states for the same reason; a pending
//! update is cleared only after it was written. A staff detail message is keyed by the group's
//! `detail_seq`, posted before the group that counts it, so a retry finds it instead of posting
//! it twice (a crash between the incident and its detail message loses that staff message, not
//! a public update).

pub mod payloads;
pub mod settings;

use crate::domain::alert::{AlertGroup, AlertState, Digest, Mode, Pending, PendingChange};
use crate::domain::standalone::{alert_detail_seq, Standalone, StandaloneKind};
use crate::domain::Hold;
use crate::domain::{Body, ComponentName, DomainError, Impact, IncidentKind, Locale, Title};
use crate::domain::{Change, NewIncident, NewUpdate};
use crate::store::port::{AlertGroups, Components, Holds, Incidents, Standalones};
use crate::store::{Store, StoreError};
use chrono::{DateTime, Utc};
use payloads::first_line;
use serde::{Deserialize, Serialize};
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// A new incident was opened.
    Opened {
        incident: Ulid,
        held_until: Option<DateTime<Utc>>,
        draft: bool,
    },
    /// A new or changed alert in the group's open incident: detail for staff, counted in the
    /// digest of the next public update; the public timeline does not change.
    Noted { incident: Ulid },
    /// The group's public update (a resolve or a reopen) waits for the public interval.
    Deferred {
        incident: Ulid,
        until: DateTime<Utc>,
    },
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
            | Outcome::Noted { incident }
            | Outcome::Deferred { incident, .. }
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

/// How one alert of a notification changed its key's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change1 {
    /// Nothing new.
    Same,
    /// The key started firing (new, or again after it resolved).
    Fired,
    /// Still firing, with another summary.
    Changed,
    /// It was firing and has resolved; `still` keys of the group fire after it.
    Resolved { still: usize },
}

/// An alert group's identity: (source, group).
type GroupId = (String, String);

/// Groups with a pending public update → when it is due.
type DueIndex = BTreeMap<GroupId, DateTime<Utc>>;

/// The most detail lines one staff message lists.
const MAX_DETAIL_LINES: usize = 50;
/// The longest detail line.
const MAX_DETAIL_LINE: usize = 300;

/// The intake service: serialises triggers (one at a time: a read-check-write across the group
/// and the incident) and applies the routing rules.
pub struct Intake {
    store: Store,
    settings: IntakeSettings,
    lock: tokio::sync::Mutex<()>,
    /// Groups with a pending public update and when it is due; built from the store by the
    /// first [`Intake::tick`] (None until then), kept up to date by every group write after.
    pending: std::sync::Mutex<Option<DueIndex>>,
}

impl Intake {
    pub fn new(store: Store, settings: IntakeSettings) -> Self {
        Intake {
            store,
            settings,
            lock: tokio::sync::Mutex::new(()),
            pending: std::sync::Mutex::new(None),
        }
    }

    pub fn settings(&self) -> &IntakeSettings {
        &self.settings
    }

    /// Handles a batch of alerts (an Alertmanager notification carries several): the alerts of
    /// one group are handled together, so a notification yields at most one public update per
    /// group. Outcomes are in the order of `triggers`. `targets` are the active channels (name,
    /// audience is subscribers).
    pub async fn handle_all(
        &self,
        triggers: Vec<Trigger>,
        targets: &[(String, bool)],
        now: DateTime<Utc>,
    ) -> Result<Vec<Outcome>, IntakeError> {
        let n = triggers.len();
        // (source, group) → its alerts with their places in `triggers`, in first-seen order.
        let mut groups: Vec<(GroupId, Vec<(usize, Trigger)>)> = Vec::new();
        for (i, t) in triggers.into_iter().enumerate() {
            let id = (t.source.clone(), t.group.clone());
            match groups.iter_mut().find(|(g, _)| *g == id) {
                Some((_, v)) => v.push((i, t)),
                None => groups.push((id, vec![(i, t)])),
            }
        }
        let mut out: Vec<Option<Outcome>> = vec![None; n];
        for (_, batch) in groups {
            let (at, batch): (Vec<usize>, Vec<Trigger>) = batch.into_iter().unzip();
            let outcomes = self.group_batch(batch, targets, now).await?;
            for (i, o) in at.into_iter().zip(outcomes) {
                if let Some(slot) = out.get_mut(i) {
                    *slot = Some(o);
                }
            }
        }
        Ok(out
            .into_iter()
            .map(|o| o.unwrap_or(Outcome::Absorbed { incident: None }))
            .collect())
    }

    /// Handles one alert.
    pub async fn handle(
        &self,
        t: Trigger,
        targets: &[(String, bool)],
        now: DateTime<Utc>,
    ) -> Result<Outcome, IntakeError> {
        let mut v = self.handle_all(vec![t], targets, now).await?;
        Ok(v.pop().unwrap_or(Outcome::Absorbed { incident: None }))
    }

    fn body(&self, text: &str) -> Result<Body, DomainError> {
        // Alert text is not refused for control characters (the sender would retry forever):
        // they are marked instead (domain::replace_controls).
        let text = crate::domain::replace_controls(text, &['\n', '\r', '\t']);
        Body::single(self.settings.locale.clone(), &text)
    }

    fn interval(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.settings.public_interval).unwrap_or_default()
    }

    fn hold_down(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.settings.hold_down).unwrap_or_default()
    }

    /// When the group may next get a public update (None: now).
    fn gate(&self, g: &AlertGroup, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let next = g.public_at? + self.interval();
        (next > now).then_some(next)
    }

    /// The alerts of one (source, group), in order.
    async fn group_batch(
        &self,
        triggers: Vec<Trigger>,
        targets: &[(String, bool)],
        now: DateTime<Utc>,
    ) -> Result<Vec<Outcome>, IntakeError> {
        let Some(first) = triggers.first() else {
            return Ok(Vec::new());
        };
        let _one = self.lock.lock().await;
        let existing = self.store.alert_group(&first.source, &first.group).await?;
        // The group's incident, as the public knows it.
        let mut old = None;
        let (group, incident) = match existing {
            None => (None, None),
            Some(g) => match self.store.incident_summary(g.incident_id).await {
                Ok(i) if i.is_open() => (Some(g), Some(i)),
                // Resolved, but within the hold-down (a flap) or with a reopen waiting.
                Ok(i)
                    if i.resolved_at.is_some_and(|r| now - r < self.hold_down())
                        || g.pending.is_some_and(|p| p.change == PendingChange::Reopen) =>
                {
                    (Some(g), Some(i))
                }
                // Resolved long ago: anything firing now is a new incident.
                Ok(i) => {
                    old = Some(i.id);
                    (None, None)
                }
                // The group was recorded but the incident write never happened (a crash):
                // complete the opening under the recorded id.
                Err(StoreError::NotFound { .. }) => (Some(g), None),
                Err(e) => return Err(e.into()),
            },
        };
        // Each alert against the working key states.
        let mut alerts = group.as_ref().map(|g| g.alerts.clone()).unwrap_or_default();
        let mut changes = Vec::with_capacity(triggers.len());
        for t in &triggers {
            let known = alerts.get(&t.key);
            let c = match t.status {
                AlertStatus::Firing => match known {
                    Some(a) if a.firing && a.summary == t.summary => Change1::Same,
                    Some(a) if a.firing => {
                        let since = a.since;
                        alerts.insert(
                            t.key.clone(),
                            AlertState {
                                firing: true,
                                summary: t.summary.clone(),
                                since,
                            },
                        );
                        Change1::Changed
                    }
                    _ => {
                        alerts.insert(t.key.clone(), firing_state(t, now));
                        Change1::Fired
                    }
                },
                AlertStatus::Resolved => match known {
                    Some(a) if a.firing => {
                        alerts.insert(
                            t.key.clone(),
                            AlertState {
                                firing: false,
                                summary: t.summary.clone(),
                                since: now,
                            },
                        );
                        Change1::Resolved {
                            still: alerts.values().filter(|a| a.firing).count(),
                        }
                    }
                    _ => Change1::Same,
                },
            };
            changes.push(c);
        }
        let firing = alerts.values().filter(|a| a.firing).count();
        match (group, incident) {
            (g, None) => {
                let id = g.as_ref().map(|g| g.incident_id);
                // The opener: the first alert still firing after the notification.
                let opener = triggers
                    .iter()
                    .position(|t| t.status == AlertStatus::Firing && firing_key(&alerts, &t.key));
                let Some(opener) = opener else {
                    return Ok(vec![Outcome::Absorbed { incident: old }; triggers.len()]);
                };
                let fired = changes.iter().filter(|c| **c == Change1::Fired).count();
                let others = Digest {
                    fired: count(fired.saturating_sub(1)),
                    resolved: count(
                        changes
                            .iter()
                            .filter(|c| matches!(c, Change1::Resolved { .. }))
                            .count(),
                    ),
                };
                let (outcome, mut g) = self
                    .open(&triggers[opener], id, alerts, others, targets, now)
                    .await?;
                let incident = g.incident_id;
                let title = triggers[opener]
                    .title
                    .clone()
                    .unwrap_or_else(|| triggers[opener].summary.clone());
                self.post_detail(&mut g, &title, &triggers, &changes, targets, now)
                    .await?;
                self.save(&g).await?;
                Ok(changes
                    .iter()
                    .enumerate()
                    .map(|(i, c)| {
                        if i == opener {
                            outcome.clone()
                        } else {
                            per_alert(incident, *c)
                        }
                    })
                    .collect())
            }
            (Some(_), Some(incident)) if changes.iter().all(|c| *c == Change1::Same) => {
                // A repeat (an HA pair's copy): nothing to write.
                Ok(vec![
                    Outcome::Absorbed {
                        incident: Some(incident.id)
                    };
                    triggers.len()
                ])
            }
            (Some(mut g), Some(incident)) => {
                let public = !(incident.draft || g.mode == Mode::Draft);
                let fired = changes.iter().filter(|c| **c == Change1::Fired).count();
                let resolved = changes
                    .iter()
                    .filter(|c| matches!(c, Change1::Resolved { .. }))
                    .count();
                g.alerts = alerts;
                g.updated_at = now;
                g.digest.fired = g.digest.fired.saturating_add(count(fired));
                g.digest.resolved = g.digest.resolved.saturating_add(count(resolved));
                // Which alert carries the public change, if any.
                let mut carrier: Option<(usize, Outcome)> = None;
                if incident.is_open() {
                    if firing == 0 {
                        if let Some(i) = changes
                            .iter()
                            .rposition(|c| matches!(c, Change1::Resolved { .. }))
                        {
                            let o = match self.gate(&g, now).filter(|_| public) {
                                Some(until) => {
                                    g.pending = Some(Pending {
                                        change: PendingChange::Resolve,
                                        due: until,
                                    });
                                    Outcome::Deferred {
                                        incident: incident.id,
                                        until,
                                    }
                                }
                                None => {
                                    let text = triggers[i].summary.clone();
                                    self.public_change(
                                        &mut g,
                                        &incident,
                                        Change::Resolve,
                                        &text,
                                        None,
                                        public,
                                        now,
                                    )
                                    .await?;
                                    Outcome::Resolved {
                                        incident: incident.id,
                                    }
                                }
                            };
                            carrier = Some((i, o));
                        }
                    } else if g
                        .pending
                        .is_some_and(|p| p.change == PendingChange::Resolve)
                    {
                        // It flapped back before the resolve went out: the public never knew.
                        g.pending = None;
                    }
                } else if firing > 0 {
                    if let Some(i) = changes.iter().position(|c| *c == Change1::Fired) {
                        let o = match self.gate(&g, now).filter(|_| public) {
                            Some(until) => {
                                g.pending = Some(Pending {
                                    change: PendingChange::Reopen,
                                    due: until,
                                });
                                Outcome::Deferred {
                                    incident: incident.id,
                                    until,
                                }
                            }
                            None => {
                                let t = &triggers[i];
                                self.public_change(
                                    &mut g,
                                    &incident,
                                    Change::Reopen,
                                    &t.summary,
                                    t.impact,
                                    public,
                                    now,
                                )
                                .await?;
                                Outcome::Reopened {
                                    incident: incident.id,
                                }
                            }
                        };
                        carrier = Some((i, o));
                    }
                } else if g.pending.is_some_and(|p| p.change == PendingChange::Reopen) {
                    g.pending = None;
                }
                let title = incident.title.as_str().to_owned();
                self.post_detail(&mut g, &title, &triggers, &changes, targets, now)
                    .await?;
                self.save(&g).await?;
                Ok(changes
                    .iter()
                    .enumerate()
                    .map(|(i, c)| match &carrier {
                        Some((at, o)) if *at == i => o.clone(),
                        _ => per_alert(incident.id, *c),
                    })
                    .collect())
            }
            // A group always comes with its incident or none.
            (None, Some(_)) => Ok(vec![Outcome::Absorbed { incident: old }; triggers.len()]),
        }
    }

    /// Posts a public change (resolve or reopen) of the group's incident with the digest of what
    /// happened since the last one, and resets the digest. `public`: whether the update goes out
    /// (otherwise it is a draft and the interval does not count it).
    #[allow(clippy::too_many_arguments)]
    async fn public_change(
        &self,
        g: &mut AlertGroup,
        incident: &crate::domain::Incident,
        change: Change,
        text: &str,
        impact: Option<Impact>,
        public: bool,
        now: DateTime<Utc>,
    ) -> Result<(), IntakeError> {
        let reopen = matches!(change, Change::Reopen);
        // What the digest says besides the alert that carries the change.
        let mut digest = g.digest;
        if reopen {
            digest.fired = digest.fired.saturating_sub(1);
        } else {
            digest.resolved = digest.resolved.saturating_sub(1);
        }
        let update = NewUpdate {
            expect_count: None,
            titles: Default::default(),
            change,
            body: self.body(&with_digest(text, digest))?,
            author: format!("monitoring ({})", g.source),
            impact,
            promise: crate::domain::PromiseEdit::Keep,
            draft: !public,
            broadcast: g.broadcast.clone(),
        };
        // The update first: see the module docs.
        self.store.append_update(incident.id, update, now).await?;
        if reopen && incident.draft && g.mode == Mode::Publish {
            self.store
                .put_hold(&Hold {
                    incident_id: incident.id,
                    until: now + self.hold_down(),
                    broadcast: g.broadcast.clone(),
                })
                .await?;
        }
        g.pending = None;
        if public {
            g.digest = Digest::default();
            g.public_at = Some(now);
        }
        Ok(())
    }

    /// Posts the per-alert detail of a notification to the staff channels, once (keyed by the
    /// group's `detail_seq`). Nothing when no staff channel is active or nothing changed.
    async fn post_detail(
        &self,
        g: &mut AlertGroup,
        title: &str,
        triggers: &[Trigger],
        changes: &[Change1],
        targets: &[(String, bool)],
        now: DateTime<Utc>,
    ) -> Result<(), IntakeError> {
        let staff = self.settings.staff_targets(targets);
        if staff.is_empty() {
            return Ok(());
        }
        let mut lines = Vec::new();
        let (mut fired, mut resolved, mut changed) = (0usize, 0usize, 0usize);
        for (t, c) in triggers.iter().zip(changes) {
            let what = match c {
                Change1::Same => continue,
                Change1::Fired => {
                    fired += 1;
                    "firing"
                }
                Change1::Changed => {
                    changed += 1;
                    "changed"
                }
                Change1::Resolved { .. } => {
                    resolved += 1;
                    "resolved"
                }
            };
            let line = format!("{what} {}: {}", t.key, t.summary.replace(['\n', '\r'], " "));
            lines.push(line.chars().take(MAX_DETAIL_LINE).collect::<String>());
        }
        if lines.is_empty() {
            return Ok(());
        }
        let more = lines.len().saturating_sub(MAX_DETAIL_LINES);
        lines.truncate(MAX_DETAIL_LINES);
        if more > 0 {
            lines.push(format!("… and {more} more"));
        }
        let subject: String = format!(
            "[{}] {title}: {fired} firing, {resolved} resolved, {changed} changed; {} of {} keys firing",
            g.source,
            g.firing(),
            g.alerts.len()
        )
        .chars()
        .take(250)
        .collect();
        let msg = Standalone::new(
            g.incident_id,
            alert_detail_seq(g.detail_seq),
            StandaloneKind::AlertDetail {
                at: now,
                subject,
                body: self.body(&lines.join("\n"))?,
            },
            now,
        );
        // Before the group counts it: a retry finds it (see the module docs).
        self.store.post_standalone(&msg, &staff, now).await?;
        g.detail_seq = g.detail_seq.wrapping_add(1);
        Ok(())
    }

    /// Saves the group and keeps the pending index up to date.
    async fn save(&self, g: &AlertGroup) -> Result<(), IntakeError> {
        self.store.put_alert_group(g).await?;
        if let Ok(mut index) = self.pending.lock() {
            if let Some(index) = index.as_mut() {
                let id = (g.source.clone(), g.group.clone());
                match g.pending {
                    Some(p) => index.insert(id, p.due),
                    None => index.remove(&id),
                };
            }
        }
        Ok(())
    }

    /// Opens the group's incident with the notification's key states; `others` counts the
    /// other alerts of the notification (the opening's digest). Returns the outcome and the
    /// group as written.
    async fn open(
        &self,
        t: &Trigger,
        id: Option<Ulid>,
        alerts: BTreeMap<String, AlertState>,
        others: Digest,
        targets: &[(String, bool)],
        now: DateTime<Utc>,
    ) -> Result<(Outcome, AlertGroup), IntakeError> {
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
        let known = self.store.components().await?;
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
        let title: String = crate::domain::replace_controls(&first_line(&title).0, &['\n', '\r'])
            .chars()
            .take(200)
            .collect();
        let new = NewIncident {
            titles: Default::default(),
            title: Title::parse(&title)?,
            kind: IncidentKind::Incident,
            status: None,
            impact,
            components,
            body: self.body(&with_digest(&t.summary, others))?,
            author: format!("monitoring ({})", t.source),
            next_update_due: None,
            draft: mode == Mode::Draft || hold,
            broadcast: broadcast.clone(),
            scheduled_for: None,
            scheduled_until: None,
            holding_statement: false,
            remind_before: None,
        };
        let group = AlertGroup {
            source: t.source.clone(),
            group: t.group.clone(),
            incident_id: id,
            alerts,
            mode,
            broadcast: broadcast.clone(),
            updated_at: now,
            public_at: (mode == Mode::Publish).then_some(now),
            digest: Digest::default(),
            pending: None,
            detail_seq: 0,
        };
        // The group (with the incident's id) first: see the module docs.
        self.save(&group).await?;
        let held_until = hold.then(|| now + self.hold_down());
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
        Ok((
            Outcome::Opened {
                incident: id,
                held_until,
                draft: mode == Mode::Draft,
            },
            group,
        ))
    }

    /// Posts the public updates whose interval has passed (a resolve or reopen held back), each
    /// with its digest — unless the group's state moved back meanwhile, when nothing is posted.
    /// Safe to call again with the same or a later `now`.
    pub async fn tick(&self, now: DateTime<Utc>) -> Result<Vec<Outcome>, IntakeError> {
        let due: Vec<(String, String)> = {
            // With a store other nodes write too (PostgreSQL), a webhook another node took
            // changed the groups behind this node's back: the index is rebuilt every tick.
            let loaded = self.pending.lock().map(|i| i.is_some()).unwrap_or(false)
                && !self.store.is_shared();
            if !loaded {
                // Under the intake lock: a group saved meanwhile would miss both the scan and
                // the (not yet loaded) index.
                let _one = self.lock.lock().await;
                let mut index = BTreeMap::new();
                for g in self.store.alert_groups().await? {
                    if let Some(p) = g.pending {
                        index.insert((g.source, g.group), p.due);
                    }
                }
                if let Ok(mut slot) = self.pending.lock() {
                    *slot = Some(index);
                }
            }
            match self.pending.lock() {
                Ok(index) => index
                    .iter()
                    .flatten()
                    .filter(|(_, due)| **due <= now)
                    .map(|(k, _)| k.clone())
                    .collect(),
                Err(_) => Vec::new(),
            }
        };
        let mut out = Vec::new();
        for (source, group) in due {
            let _one = self.lock.lock().await;
            let Some(mut g) = self.store.alert_group(&source, &group).await? else {
                if let Ok(mut index) = self.pending.lock() {
                    index.as_mut().map(|i| i.remove(&(source, group)));
                }
                continue;
            };
            let Some(p) = g.pending else {
                self.save(&g).await?;
                continue;
            };
            if p.due > now {
                self.save(&g).await?;
                continue;
            }
            let incident = match self.store.incident_summary(g.incident_id).await {
                Ok(i) => i,
                Err(StoreError::NotFound { .. }) => {
                    g.pending = None;
                    self.save(&g).await?;
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            let public = !(incident.draft || g.mode == Mode::Draft);
            // The latest word of the keys that carry the change.
            let latest = |firing: bool| {
                g.alerts
                    .values()
                    .filter(|a| a.firing == firing)
                    .max_by_key(|a| a.since)
                    .map(|a| a.summary.clone())
                    .unwrap_or_default()
            };
            match p.change {
                PendingChange::Resolve if incident.is_open() && g.firing() == 0 => {
                    let text = latest(false);
                    self.public_change(
                        &mut g,
                        &incident,
                        Change::Resolve,
                        &text,
                        None,
                        public,
                        now,
                    )
                    .await?;
                    out.push(Outcome::Resolved {
                        incident: incident.id,
                    });
                }
                PendingChange::Reopen if !incident.is_open() && g.firing() > 0 => {
                    let text = latest(true);
                    self.public_change(&mut g, &incident, Change::Reopen, &text, None, public, now)
                        .await?;
                    out.push(Outcome::Reopened {
                        incident: incident.id,
                    });
                }
                // The state moved on (a person resolved it, or it flapped back): nothing.
                _ => g.pending = None,
            }
            g.updated_at = now;
            self.save(&g).await?;
        }
        Ok(out)
    }

    /// Ticks every second on the dispatcher's clock until shutdown (paused time drives it in
    /// tests), waking the dispatcher when it posted something.
    pub async fn run(
        self: std::sync::Arc<Self>,
        dispatcher: crate::dispatch::Dispatcher,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
        lead: crate::leadership::Leadership,
    ) {
        let mut interval = tokio::time::interval(std::time::Duration::from_secs(1));
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = interval.tick() => {}
                _ = shutdown.changed() => {}
            }
            if *shutdown.borrow() {
                return;
            }
            if !lead.is_leader() {
                continue; // another node posts the held-back updates
            }
            match self.tick(dispatcher.now()).await {
                Ok(done) if !done.is_empty() => {
                    tracing::info!(?done, "intake: held-back public updates posted");
                    dispatcher.kick();
                }
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "intake tick failed; trying again"),
            }
        }
    }
}

/// What a non-carrying alert of a notification did.
fn per_alert(incident: Ulid, c: Change1) -> Outcome {
    match c {
        Change1::Same => Outcome::Absorbed {
            incident: Some(incident),
        },
        Change1::Fired | Change1::Changed => Outcome::Noted { incident },
        Change1::Resolved { still: 0 } => Outcome::Noted { incident },
        Change1::Resolved { still } => Outcome::PartlyResolved {
            incident,
            still_firing: still,
        },
    }
}

fn firing_key(alerts: &BTreeMap<String, AlertState>, key: &str) -> bool {
    alerts.get(key).is_some_and(|a| a.firing)
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// A public text with the digest of the other alerts appended.
fn with_digest(text: &str, d: Digest) -> String {
    if d.is_empty() {
        return text.to_owned();
    }
    let mut parts = Vec::new();
    if d.fired > 0 {
        let s = if d.fired == 1 { "" } else { "s" };
        parts.push(format!("{} more alert{s} fired", d.fired));
    }
    if d.resolved > 0 {
        parts.push(format!("{} resolved", d.resolved));
    }
    format!("{text}\n\nMonitoring: {}.", parts.join(", "))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::standalone::STANDALONE_BASE;
    use crate::store::port::{Incidents, Outbox};
    use std::time::Duration;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn alert(key: &str, status: AlertStatus, summary: &str) -> Trigger {
        Trigger {
            source: "prom".into(),
            group: "g".into(),
            key: key.into(),
            status,
            summary: summary.into(),
            title: Some("Checkout is slow".into()),
            impact: None,
            components: Vec::new(),
            labels: BTreeMap::new(),
        }
    }

    fn settings() -> IntakeSettings {
        let mut s = IntakeSettings {
            hold_down: Duration::ZERO,
            public_interval: Duration::from_secs(15 * 60),
            staff_channels: vec!["staff".into()],
            ..IntakeSettings::default()
        };
        s.default.mode = Mode::Publish;
        s
    }

    fn targets() -> Vec<(String, bool)> {
        vec![("public".into(), false), ("staff".into(), false)]
    }

    /// Public updates of the incident: (timeline broadcasts on the "public" channel, texts).
    async fn public(store: &Store, id: Ulid) -> (usize, Vec<String>) {
        let b = store
            .broadcasts_of(id)
            .await
            .unwrap()
            .into_iter()
            .filter(|b| b.seq < STANDALONE_BASE && b.channel == "public")
            .count();
        let (_, updates) = store.incident(id).await.unwrap();
        let texts = updates
            .iter()
            .map(|u| u.body.text_for(&Locale::english()).to_owned())
            .collect();
        (b, texts)
    }

    #[tokio::test]
    async fn resolves_inside_the_interval_wait_for_it_and_carry_the_digest() {
        use AlertStatus::{Firing, Resolved};
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let intake = Intake::new(store.clone(), settings());
        let t0 = at("2026-11-23T08:00:00Z");
        let min = |m: i64| t0 + chrono::Duration::minutes(m);
        let o = intake
            .handle_all(
                vec![alert("a", Firing, "a slow"), alert("b", Firing, "b slow")],
                &targets(),
                t0,
            )
            .await
            .unwrap();
        let id = o[0].incident().unwrap();
        assert!(matches!(o[0], Outcome::Opened { .. }), "{o:?}");
        assert_eq!(o[1], Outcome::Noted { incident: id });
        assert_eq!(public(&store, id).await.0, 1);

        // Everything resolves after a minute: the resolve waits for the interval.
        let o = intake
            .handle_all(
                vec![alert("a", Resolved, "a ok"), alert("b", Resolved, "b ok")],
                &targets(),
                min(1),
            )
            .await
            .unwrap();
        assert_eq!(
            o[1],
            Outcome::Deferred {
                incident: id,
                until: min(15)
            }
        );
        assert!(store.incident_summary(id).await.unwrap().is_open());
        // It fires again and resolves again meanwhile: still nothing public.
        let o = intake
            .handle(alert("c", Firing, "c slow"), &targets(), min(2))
            .await
            .unwrap();
        assert_eq!(o, Outcome::Noted { incident: id });
        intake
            .handle(alert("c", Resolved, "c ok"), &targets(), min(3))
            .await
            .unwrap();
        assert!(intake.tick(min(10)).await.unwrap().is_empty(), "not yet");
        assert_eq!(public(&store, id).await.0, 1);

        // A restart before it is due: a new intake finds the pending resolve in the store.
        let intake = Intake::new(store.clone(), settings());
        let done = intake.tick(min(15)).await.unwrap();
        assert_eq!(done, vec![Outcome::Resolved { incident: id }]);
        assert!(!store.incident_summary(id).await.unwrap().is_open());
        let (n, texts) = public(&store, id).await;
        assert_eq!(n, 2, "opened and resolved: two public updates in all");
        assert_eq!(
            texts[1], "c ok\n\nMonitoring: 1 more alert fired, 2 resolved.",
            "the digest of what happened in between"
        );
        assert!(intake.tick(min(16)).await.unwrap().is_empty(), "once");
        // Each notification's per-alert detail went to the staff channel only.
        let staff: Vec<_> = store
            .broadcasts_of(id)
            .await
            .unwrap()
            .into_iter()
            .filter(|b| b.seq >= STANDALONE_BASE)
            .collect();
        assert_eq!(staff.len(), 4, "{staff:?}");
        assert!(staff.iter().all(|b| b.channel == "staff"));
    }

    #[tokio::test]
    async fn a_flap_inside_the_interval_publishes_nothing_and_a_late_one_reopens_once() {
        use AlertStatus::{Firing, Resolved};
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut s = settings();
        // A re-fire within half an hour of a resolve reopens; the opening is held that long.
        s.hold_down = Duration::from_secs(30 * 60);
        let intake = Intake::new(store.clone(), s);
        let t0 = at("2026-11-23T08:00:00Z");
        let min = |m: i64| t0 + chrono::Duration::minutes(m);
        let id = intake
            .handle(alert("a", Firing, "a slow"), &targets(), t0)
            .await
            .unwrap()
            .incident()
            .unwrap();
        // Held (hold-down): a draft until the hold ends (as the scheduler would, here by hand).
        assert!(store.incident_summary(id).await.unwrap().draft);
        store.publish_drafts(id, &targets(), min(1)).await.unwrap();
        store.remove_hold(id).await.unwrap();
        intake
            .handle(alert("a", Resolved, "a ok"), &targets(), min(2))
            .await
            .unwrap();
        intake
            .handle(alert("a", Firing, "a slow"), &targets(), min(4))
            .await
            .unwrap();
        assert!(intake.tick(min(15)).await.unwrap().is_empty());
        assert_eq!(
            public(&store, id).await.0,
            1,
            "the flap never reached the public"
        );
        // Resolved after the interval: at once.
        let o = intake
            .handle(alert("a", Resolved, "a ok"), &targets(), min(20))
            .await
            .unwrap();
        assert_eq!(o, Outcome::Resolved { incident: id });
        // Fires again 5 minutes later: a reopen, held back to the interval after the resolve.
        let o = intake
            .handle(alert("a", Firing, "a slow again"), &targets(), min(25))
            .await
            .unwrap();
        assert_eq!(
            o,
            Outcome::Deferred {
                incident: id,
                until: min(35)
            }
        );
        assert_eq!(
            intake.tick(min(35)).await.unwrap(),
            vec![Outcome::Reopened { incident: id }]
        );
        assert!(store.incident_summary(id).await.unwrap().is_open());
        assert_eq!(public(&store, id).await.0, 3, "opened, resolved, reopened");
    }
}
