//! The scheduler: one task that looks at the clock every tick and does what is due —
//! fires recurring notices, reminds staff of next-update promises, posts holding statements for
//! missed ones, moves maintenances through `scheduled → in_progress → completed`, and ends flap
//! hold-downs (publishing what was held, or nothing if the alert has already resolved).
//!
//! Every action is idempotent against the store, so a tick that is interrupted by a crash and
//! repeated after the restart does not do anything twice:
//! - a notice firing and a reminder are standalone messages whose key is derived from what they
//!   are for (see [`crate::store::schedule`]); posting one twice finds the first record;
//! - a notice remembers the last instant it fired (UTC) and only looks strictly after it, which
//!   is also what keeps fire times from repeating or going backwards around DST;
//! - a holding statement or a maintenance transition changes the incident (a new promise, a new
//!   status), so the next tick no longer finds it due.

use super::settings::{Missed, ScheduleSettings};
use crate::dispatch::Dispatcher;
use crate::domain::standalone::{
    maintenance_reminder_seq, notice_seq, reminder_seq, Standalone, StandaloneKind,
};
use crate::domain::{Body, Incident, IncidentKind, Locale, Notice, Status};
use crate::domain::{Change, IncidentFilter, NewUpdate};
use crate::leadership::Leadership;
use crate::render::{i18n, Context, Settings, Templates};
use crate::store::port::{Holds, Incidents, Notices, Standalones};
use crate::store::{Store, StoreError};
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

/// The most firings of one notice a single tick will walk through (after a very long downtime
/// the older ones are skipped in bulk).
const MAX_CATCH_UP: usize = 10_000;

/// Who posts the scheduler's updates (shown in timelines).
pub const AUTHOR: &str = "crier scheduler";

/// What one tick did (for logs and tests).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TickReport {
    /// (notice, scheduled instant) posted.
    pub notices_fired: Vec<(ulid::Ulid, DateTime<Utc>)>,
    /// (notice, scheduled instant) missed and skipped.
    pub notices_skipped: Vec<(ulid::Ulid, DateTime<Utc>)>,
    pub reminders: Vec<ulid::Ulid>,
    pub holding_statements: Vec<ulid::Ulid>,
    /// (incident, new status)
    pub transitions: Vec<(ulid::Ulid, Status)>,
    pub maintenance_reminders: Vec<ulid::Ulid>,
    /// Holds that ended with their drafts published.
    pub released: Vec<ulid::Ulid>,
    /// Holds that ended with the incident already resolved: nothing was published.
    pub suppressed: Vec<ulid::Ulid>,
    /// Incidents whose promise was found overdue for the first time (logged once each).
    pub overdue: Vec<ulid::Ulid>,
}

impl TickReport {
    fn did_something(&self) -> bool {
        *self != TickReport::default()
    }
}

/// A promise: the incident and the instant it promised.
type Promise = (ulid::Ulid, DateTime<Utc>);

/// The scheduler.
#[derive(Clone)]
pub struct Scheduler {
    store: Store,
    templates: Arc<Templates>,
    render: Arc<Settings>,
    settings: ScheduleSettings,
    dispatcher: Dispatcher,
    /// Overdue promises already logged: (incident, promised instant). Pruned every tick to
    /// those still overdue, so it stays as small as the number of open incidents.
    warned: Arc<Mutex<HashSet<Promise>>>,
}

impl Scheduler {
    pub fn new(
        store: Store,
        templates: Arc<Templates>,
        render: Arc<Settings>,
        settings: ScheduleSettings,
        dispatcher: Dispatcher,
    ) -> Self {
        Scheduler {
            store,
            templates,
            render,
            settings,
            dispatcher,
            warned: Arc::default(),
        }
    }

    /// Ticks until shutdown, while this node leads (`lead`; one sled node always does). Uses the
    /// dispatcher's clock, so paused tokio time drives it in tests.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>, lead: Leadership) {
        let mut interval = tokio::time::interval(self.settings.tick);
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
                continue; // another node runs the schedule
            }
            let now = self.dispatcher.now();
            match self.tick(now).await {
                Ok(report) if report.did_something() => {
                    tracing::debug!(?report, "scheduler tick");
                    self.dispatcher.kick();
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(error = %e, "scheduler tick failed; trying again next tick")
                }
            }
        }
    }

    /// Does everything due at `now`. Safe to call again with the same or a later `now`.
    pub async fn tick(&self, now: DateTime<Utc>) -> Result<TickReport, StoreError> {
        let mut report = TickReport::default();
        self.notices(now, &mut report).await?;
        self.holds(now, &mut report).await?;
        let open = self
            .store
            .incidents(&IncidentFilter {
                open: Some(true),
                limit: usize::MAX,
                ..IncidentFilter::default()
            })
            .await?;
        let mut overdue = HashSet::new();
        for incident in open {
            if incident.kind == IncidentKind::Maintenance {
                self.maintenance(&incident, now, &mut report).await?;
            }
            if let Some(due) = self.promise(&incident, now, &mut report).await? {
                overdue.insert((incident.id, due));
            }
        }
        self.dispatcher
            .metrics()
            .set_promises_overdue(overdue.len() as u64);
        if let Ok(mut warned) = self.warned.lock() {
            warned.retain(|p| overdue.contains(p));
        }
        Ok(report)
    }

    fn targets(&self, names: Option<&[String]>) -> Vec<(String, bool)> {
        self.dispatcher
            .broadcast_targets()
            .into_iter()
            .filter(|(n, _)| names.is_none_or(|names| names.contains(n)))
            .collect()
    }

    async fn notices(&self, now: DateTime<Utc>, report: &mut TickReport) -> Result<(), StoreError> {
        for mut notice in self.store.notices().await? {
            let Ok(tz) = notice.zone() else { continue };
            let schedule = notice.cron.in_zone(tz);
            let start = notice.last_fired.unwrap_or(notice.created_at);
            let mut due = Vec::new();
            let mut cursor = start;
            while let Some(t) = schedule.next_after(cursor) {
                if t > now || due.len() >= MAX_CATCH_UP {
                    break;
                }
                // The matcher never goes backwards, but this is the invariant the notice relies
                // on, so it is checked rather than assumed.
                if t <= cursor {
                    break;
                }
                due.push(t);
                cursor = t;
            }
            let Some(&latest) = due.last() else { continue };
            for &t in &due[..due.len() - 1] {
                tracing::warn!(notice = %notice.id, scheduled = %t, "notice firing missed while crier was down; skipped (a later one is due)");
                report.notices_skipped.push((notice.id, t));
            }
            let late = (now - latest).to_std().unwrap_or_default();
            let send = late <= self.settings.on_time
                || (self.settings.missed == Missed::Send && late <= self.settings.grace);
            if !notice.in_window(latest, tz) {
                // Outside its from/until days: not a firing at all.
            } else if send {
                if self.fire(&notice, latest, now).await? {
                    report.notices_fired.push((notice.id, latest));
                }
            } else {
                tracing::warn!(notice = %notice.id, scheduled = %latest, late_secs = late.as_secs(), "notice firing missed while crier was down; skipped by the missed-firing policy");
                report.notices_skipped.push((notice.id, latest));
            }
            notice.last_fired = Some(latest);
            self.store.put_notice(&notice).await?;
        }
        Ok(())
    }

    async fn fire(
        &self,
        notice: &Notice,
        at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let msg = Standalone::new(
            notice.id,
            notice_seq(at),
            StandaloneKind::Notice {
                notice_id: notice.id,
                scheduled_for: at,
                subject: notice.subject.clone(),
                body: notice.body.clone(),
            },
            now,
        );
        let targets = self.targets(Some(&notice.channels));
        if targets.len() < notice.channels.len() {
            tracing::warn!(notice = %notice.id, "some of the notice's channels are not active; it goes to the others");
        }
        self.store.post_standalone(&msg, &targets, now).await
    }

    async fn holds(&self, now: DateTime<Utc>, report: &mut TickReport) -> Result<(), StoreError> {
        for hold in self.store.holds().await? {
            if hold.until > now {
                continue;
            }
            let incident = match self.store.incident_summary(hold.incident_id).await {
                Ok(i) => i,
                Err(StoreError::NotFound { .. }) => {
                    self.store.remove_hold(hold.incident_id).await?;
                    continue;
                }
                Err(e) => return Err(e),
            };
            if incident.is_open() && incident.draft {
                match self
                    .store
                    .publish_drafts(incident.id, &hold.broadcast, now)
                    .await
                {
                    Ok(_) | Err(StoreError::Conflict(_)) => {}
                    Err(e) => return Err(e),
                }
                report.released.push(incident.id);
                tracing::info!(incident = %incident.id, "hold-down over and the alert is still firing: published");
            } else if incident.draft {
                report.suppressed.push(incident.id);
                tracing::info!(incident = %incident.id, "alert resolved within its hold-down: nothing was published");
            }
            self.store.remove_hold(hold.incident_id).await?;
        }
        Ok(())
    }

    /// Reminds staff before a promise, and when it is missed logs it (once) and posts a holding
    /// statement if one is configured. Returns the promise if it is still overdue afterwards.
    async fn promise(
        &self,
        incident: &Incident,
        now: DateTime<Utc>,
        report: &mut TickReport,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let Some(due) = incident.next_update_due else {
            return Ok(None);
        };
        if incident.draft {
            return Ok(None); // not public yet: no promise has been made to anyone
        }
        let lead = chrono::Duration::from_std(self.settings.remind_before).unwrap_or_default();
        if !self.settings.reminder_channels.is_empty() && now >= due - lead {
            // Keyed by the update that made the promise: later updates that keep it repeat the
            // same instant and must not remind again.
            let (_, timeline) = self.store.incident(incident.id).await?;
            let made_by = timeline
                .iter()
                .rev()
                .take_while(|u| u.next_update_due == Some(due))
                .count();
            let position = u32::try_from(timeline.len().saturating_sub(made_by.saturating_sub(1)))
                .unwrap_or(incident.update_count);
            let msg = Standalone::new(
                incident.id,
                reminder_seq(position),
                StandaloneKind::Reminder { due },
                now,
            );
            let targets = self.targets(Some(&self.settings.reminder_channels));
            if self.store.post_standalone(&msg, &targets, now).await? {
                report.reminders.push(incident.id);
            }
        }
        if now < due {
            return Ok(None);
        }
        let first = self
            .warned
            .lock()
            .map(|mut w| w.insert((incident.id, due)))
            .unwrap_or(true);
        if first {
            let late = (now - due).num_minutes();
            tracing::warn!(
                incident = %incident.id,
                "promised update overdue: \"{}\" promised its next update by {}, {late} min ago; post an update (`crier incident update {}`)",
                incident.title.as_str(),
                crate::domain::local_then_utc(due, self.render.timezone),
                incident.id,
            );
            report.overdue.push(incident.id);
        }
        let broadcast = if incident.holding_statement || self.settings.holding_statement {
            self.targets(None)
        } else if !self.settings.holding_statement_channels.is_empty() {
            self.targets(Some(&self.settings.holding_statement_channels))
        } else {
            return Ok(Some(due));
        };
        let next =
            now + chrono::Duration::from_std(self.settings.holding_next_update).unwrap_or_default();
        let body = self.holding_body(incident, next).await?;
        let new = NewUpdate {
            expect_count: Some(incident.update_count),
            titles: Default::default(),
            change: Change::Update(None),
            body,
            author: AUTHOR.into(),
            impact: None,
            promise: crate::domain::PromiseEdit::Set(next),
            draft: false,
            broadcast,
        };
        match self.store.append_update(incident.id, new, now).await {
            Ok(_) => report.holding_statements.push(incident.id),
            // Resolved or changed since the scan: nothing to hold.
            Err(StoreError::Domain(_)) => {}
            Err(e) => return Err(e),
        }
        Ok(None)
    }

    async fn holding_body(
        &self,
        incident: &Incident,
        next: DateTime<Utc>,
    ) -> Result<Body, StoreError> {
        let (_, updates) = self.store.incident(incident.id).await?;
        let last = updates
            .iter()
            .rev()
            .find(|u| u.published_at.is_some())
            .or(updates.last())
            .cloned()
            .ok_or_else(|| StoreError::Corrupt("an incident without updates".into()))?;
        let render = |locale: &Locale| {
            let mut ctx =
                Context::for_update(&self.render, incident, &last, locale, self.render.timezone);
            ctx.next_update = Some(i18n::format_time(next, self.render.timezone, locale));
            self.templates
                .holding_statement(locale, &ctx)
                .map_err(|e| StoreError::Corrupt(e.to_string()))
        };
        // In each language of the last update that has a template; else English, which ships.
        let mut texts = BTreeMap::new();
        for locale in last.body.texts().keys() {
            if let Some(t) = render(locale)? {
                texts.insert(locale.clone(), t);
            }
        }
        if texts.is_empty() {
            let en = Locale::english();
            let t = render(&en)?.unwrap_or_else(|| {
                format!(
                    "We are still working on \"{}\". The next update will follow.",
                    incident.title.as_str()
                )
            });
            texts.insert(en, t);
        }
        Body::parse(texts).map_err(|e| StoreError::Corrupt(e.to_string()))
    }

    async fn maintenance(
        &self,
        incident: &Incident,
        now: DateTime<Utc>,
        report: &mut TickReport,
    ) -> Result<(), StoreError> {
        let (Some(start), Some(end)) = (incident.scheduled_for, incident.scheduled_until) else {
            return Ok(());
        };
        if incident.status == Status::Scheduled && !incident.draft {
            // The window's own reminder; the config's for records from before it had one.
            if let Some(lead) = incident.reminder_lead(self.settings.maintenance_remind_before) {
                let lead = lead.as_chrono();
                if now >= start - lead && now < start {
                    let msg = Standalone::new(
                        incident.id,
                        maintenance_reminder_seq(1),
                        StandaloneKind::MaintenanceReminder { starts: start },
                        now,
                    );
                    if self
                        .store
                        .post_standalone(&msg, &self.targets(None), now)
                        .await?
                    {
                        report.maintenance_reminders.push(incident.id);
                    }
                }
            }
        }
        let to = match incident.status {
            Status::Scheduled if now >= end => Status::Completed,
            Status::Scheduled if now >= start => Status::InProgress,
            Status::InProgress | Status::Verifying if now >= end => Status::Completed,
            _ => return Ok(()),
        };
        let new = NewUpdate {
            expect_count: Some(incident.update_count),
            titles: Default::default(),
            change: Change::Update(Some(to)),
            body: transition_body(to)?,
            author: AUTHOR.into(),
            impact: None,
            promise: crate::domain::PromiseEdit::Keep,
            draft: incident.draft,
            broadcast: self.targets(None),
        };
        match self.store.append_update(incident.id, new, now).await {
            Ok(_) => report.transitions.push((incident.id, to)),
            Err(StoreError::Domain(_)) => {}
            Err(e) => return Err(e),
        }
        Ok(())
    }
}

/// The text of an automatic maintenance transition, in every shipped language.
fn transition_body(to: Status) -> Result<Body, StoreError> {
    let (en, fi, sv) = match to {
        Status::InProgress => (
            "The scheduled maintenance has started.",
            "Suunniteltu huoltotyö on alkanut.",
            "Det planerade underhållet har börjat.",
        ),
        _ => (
            "The scheduled maintenance is complete.",
            "Suunniteltu huoltotyö on valmis.",
            "Det planerade underhållet är klart.",
        ),
    };
    let mut texts = BTreeMap::new();
    for (l, t) in [("en", en), ("fi", fi), ("sv", sv)] {
        if let Ok(l) = Locale::parse(l) {
            texts.insert(l, t.to_owned());
        }
    }
    Body::parse(texts).map_err(StoreError::from)
}
