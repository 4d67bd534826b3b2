//! The dashboard: what is open and what is promised, what waits for a second person, the
//! components, the channels' health and the outbox. `GET /console/live` is the same content
//! without the page around it, which `console.js` fetches every few seconds.

use super::{me, span, when};
use crate::api::authz::Caller;
use crate::api::session::SessionAuth;
use crate::api::AppState;
use crate::domain::IncidentFilter;
use crate::domain::{ApprovalState, IncidentKind};
use crate::store::port::{Approvals, Components, Incidents, Outbox, Subscribers};
use axum::extract::{Query, State};
use axum::response::Response;
use axum::Extension;
use minijinja::{context, Value};

/// How often the page refreshes itself (seconds).
pub const REFRESH_SECS: u32 = 5;

#[derive(serde::Deserialize)]
pub struct DashQuery {
    held: Option<String>,
    done: Option<String>,
}

/// `GET /console/`.
pub async fn page(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    session: Option<Extension<SessionAuth>>,
    Query(q): Query<DashQuery>,
) -> Response {
    let me = me(&caller, session.as_deref());
    let notice = match (q.held, q.done.as_deref()) {
        (Some(id), _) => Some(format!(
            "Held for approval ({id}): nothing is sent until another publisher or admin approves it."
        )),
        (None, Some("rejected")) => Some("Rejected: nothing was sent.".to_owned()),
        (None, Some("approved")) => Some("Approved and published.".to_owned()),
        _ => None,
    };
    let live = live_context(&state).await;
    super::page(
        &state,
        "console/dashboard.html",
        me,
        context! { live => live, refresh => REFRESH_SECS, notice => notice },
    )
}

/// `GET /console/live`: the dashboard's content alone.
pub async fn live(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    session: Option<Extension<SessionAuth>>,
) -> Response {
    let me = me(&caller, session.as_deref());
    let live = live_context(&state).await;
    super::page(&state, "console/live.html", me, context! { live => live })
}

/// Everything the dashboard shows, read now.
async fn live_context(state: &AppState) -> Value {
    let now = state.dispatcher.now();
    let mut problems = Vec::new();
    let open = state
        .store
        .incidents(&IncidentFilter {
            open: Some(true),
            limit: 200,
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| {
            problems.push(format!("incidents could not be read: {e}"));
            Vec::new()
        });
    let mut incidents = Vec::new();
    let mut maintenance = Vec::new();
    for i in open {
        let overdue = i.next_update_due.is_some_and(|d| d < now);
        let promise = i.next_update_due.map(|d| {
            if overdue {
                format!("overdue by {} (was due {})", span(d, now), when(state, d))
            } else {
                format!("due {} (in {})", when(state, d), span(now, d))
            }
        });
        let next = match i.kind {
            IncidentKind::Maintenance => match state.store.incident(i.id).await {
                Ok((i, u)) => super::maintenance::next(state, &i, &u).await,
                Err(_) => None,
            },
            IncidentKind::Incident => None,
        };
        let row = context! {
            id => i.id.to_string(),
            title => i.title.as_str(),
            impact => i.impact.as_str(),
            status => i.status.as_str(),
            draft => i.draft,
            age => span(i.created_at, now),
            last_update => when(state, i.updated_at),
            promise => promise,
            due => i.next_update_due.map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
            overdue => overdue,
            window => match (i.scheduled_for, i.scheduled_until) {
                (Some(f), Some(u)) => Some(format!("{} – {}", when(state, f), when(state, u))),
                _ => None,
            },
            next => next,
        };
        match i.kind {
            IncidentKind::Incident => incidents.push(row),
            IncidentKind::Maintenance => maintenance.push(row),
        }
    }
    let approvals: Vec<Value> = state
        .store
        .approvals(Some(ApprovalState::PendingApproval), 100)
        .await
        .unwrap_or_else(|e| {
            problems.push(format!("approvals could not be read: {e}"));
            Vec::new()
        })
        .into_iter()
        .map(|a| {
            context! {
                id => a.id.to_string(),
                incident => a.incident_id.to_string(),
                action => a.action.as_str(),
                title => a.title,
                message => a.message,
                author => a.author,
                waiting => span(a.requested_at, now),
                reasons => a.reasons,
            }
        })
        .collect();
    let components: Vec<Value> = state
        .store
        .components()
        .await
        .unwrap_or_else(|e| {
            problems.push(format!("components could not be read: {e}"));
            Vec::new()
        })
        .into_iter()
        .map(|c| {
            context! {
                name => c.name.as_str(),
                status => c.status.as_str(),
                label => c.status.as_str().replace('_', " "),
            }
        })
        .collect();
    let channels = channel_health(state);
    let subscribers = state.store.subscriber_count().await.unwrap_or(0);
    let (depth, oldest) = state.store.queue_depth().await.unwrap_or_default();
    context! {
        incidents => incidents,
        maintenance => maintenance,
        approvals => approvals,
        components => components,
        channels => channels,
        queue => depth,
        oldest => oldest.map(|t| span(t, now)),
        subscribers => subscribers,
        now => when(state, now),
        problems => problems,
    }
}

/// Every channel's health, active ones first (in the dispatcher's order), then the skipped:
/// **active** with what it sent since start, **failing** (retries or dead deliveries since
/// start, with the last error) or **skipped** with the reason (naming the missing variable).
/// The dashboard and the channels page show the same rows.
pub(super) fn channel_health(state: &AppState) -> Vec<Value> {
    let metrics = state.dispatcher.metrics();
    let mut channels: Vec<Value> = state
        .dispatcher
        .broadcast_targets()
        .into_iter()
        .map(|(name, subscribers)| {
            let ch = state.dispatcher.channel(&name);
            let kind = ch.as_ref().map(|c| c.kind.as_str().to_owned()).unwrap_or_default();
            let rate = ch.as_ref().map(|c| rate(&c.rate)).unwrap_or_default();
            let (sent, retries, dead, rejected) = (
                metrics.count(&name, "delivered"),
                metrics.count(&name, "retry"),
                metrics.count(&name, "dead"),
                metrics.count(&name, "rejected"),
            );
            let failing = retries + dead > 0;
            let last = metrics
                .last_error(&name)
                .map(|(why, at)| format!("; last error at {}: {why}", when(state, at)))
                .unwrap_or_default();
            context! {
                name => name,
                kind => kind,
                rate => rate,
                audience => if subscribers { "subscribers" } else { "fixed" },
                state => if failing { "failing" } else { "active" },
                detail => if failing {
                    format!("since start: {sent} sent, {retries} retried, {dead} dead, {rejected} rejected{last}")
                } else {
                    format!("since start: {sent} sent")
                },
            }
        })
        .collect();
    for (name, reason) in state.skipped_channels.iter() {
        channels.push(context! {
            name => name, kind => "", rate => "", audience => "", state => "skipped", detail => reason,
        });
    }
    channels
}

/// A send rate as channel files write it: `30/s`, `100/m`, `5/10s`.
fn rate(r: &crate::channels::Rate) -> String {
    let per =
        crate::domain::Span::from_millis(u64::try_from(r.per.as_millis()).unwrap_or(u64::MAX))
            .to_string();
    let per = per
        .strip_prefix('1')
        .filter(|u| u.chars().all(|c| c.is_ascii_alphabetic()))
        .unwrap_or(&per);
    format!("{}/{per}", r.n)
}
