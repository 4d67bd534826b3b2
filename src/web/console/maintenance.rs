//! A maintenance window's automatic transitions as the console shows them: the reminder to its
//! audience, the move to in progress at its start and to completed at its end — each with its
//! time in the organisation's zone and in UTC, and whether it has happened (when it did) or is
//! still coming. The instants are the scheduler's own rules ([`Incident::reminder_lead`]).

use super::when;
use crate::api::AppState;
use crate::domain::standalone::maintenance_reminder_seq;
use crate::domain::{Incident, Reminder, Status, Update};
use crate::store::port::Standalones;
use chrono::{DateTime, Utc};
use minijinja::{context, Value};

/// `21:00 EET (19:00 UTC)`: a time in the organisation's zone and in UTC.
pub fn both(state: &AppState, t: DateTime<Utc>) -> String {
    format!("{} ({} UTC)", when(state, t), t.format("%H:%M"))
}

/// One step of a window's schedule.
struct Step {
    /// "Reminder", "In progress", "Completed".
    what: &'static str,
    at: DateTime<Utc>,
    /// When it happened (`None`: not yet).
    done: Option<DateTime<Utc>>,
    /// It will not happen any more: a reminder not sent by its time or before the window
    /// started (the scheduler reminds only a window still scheduled).
    missed: bool,
}

/// The steps of a maintenance window, in order; none for an incident or a window-less one.
async fn steps(state: &AppState, incident: &Incident, updates: &[Update]) -> Vec<Step> {
    let (Some(start), Some(end)) = (incident.scheduled_for, incident.scheduled_until) else {
        return Vec::new();
    };
    let reached = |s: Status| updates.iter().find(|u| u.status == s).map(|u| u.created_at);
    let now = state.dispatcher.now();
    let mut out = Vec::new();
    if let Some(lead) = incident.reminder_lead(state.maintenance_remind_before) {
        let sent = state
            .store
            .standalone(incident.id, maintenance_reminder_seq(1))
            .await
            .ok()
            .flatten()
            .map(|s| s.created_at);
        let at = start - lead.as_chrono();
        out.push(Step {
            what: "Reminder",
            at,
            done: sent,
            missed: sent.is_none() && (at <= now || incident.status != Status::Scheduled),
        });
    }
    out.push(Step {
        what: "In progress",
        at: start,
        done: reached(Status::InProgress),
        missed: false,
    });
    out.push(Step {
        what: "Completed",
        at: end,
        done: reached(Status::Completed),
        missed: false,
    });
    out
}

/// The incident page's schedule: each step with its time and state, and the reminder's
/// setting (`1h`, `none`).
pub async fn schedule(state: &AppState, incident: &Incident, updates: &[Update]) -> Option<Value> {
    let steps = steps(state, incident, updates).await;
    if steps.is_empty() {
        return None;
    }
    let rows: Vec<Value> = steps
        .iter()
        .map(|s| {
            // A step past its time that never happened: the reminder of a window opened after
            // its time, or a window moved by hand.
            let reminder = s.what == "Reminder";
            let state_text = match s.done {
                Some(t) if reminder => format!("sent at {}", both(state, t)),
                Some(t) => format!("done at {}", both(state, t)),
                None if s.missed => "not sent".to_owned(),
                None if reminder => "not yet".to_owned(),
                None => "upcoming".to_owned(),
            };
            context! {
                what => s.what,
                slug => s.what.to_lowercase().replace(' ', "-"),
                at => both(state, s.at),
                done => s.done.is_some(),
                state => state_text,
            }
        })
        .collect();
    let setting = incident
        .remind_before
        .unwrap_or(Reminder::from_config(state.maintenance_remind_before));
    Some(context! {
        steps => rows,
        reminder => setting.to_string(),
        closed => incident.status.is_final(),
    })
}

/// The dashboard's "next: …" of a maintenance: its first step still to come.
pub async fn next(state: &AppState, incident: &Incident, updates: &[Update]) -> Option<String> {
    steps(state, incident, updates)
        .await
        .into_iter()
        .find(|s| s.done.is_none() && !s.missed)
        .map(|s| format!("{} at {}", s.what, both(state, s.at)))
}
