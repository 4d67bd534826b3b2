//! Statuspage's public API v2, field for field, so the exporters, aggregators and widgets that
//! read a Statuspage page read crier unchanged: `/api/v2/summary.json`, `status.json`,
//! `components.json`, `incidents.json`, `incidents/unresolved.json`,
//! `scheduled-maintenances.json`, `scheduled-maintenances/upcoming.json` and
//! `scheduled-maintenances/active.json` (docs/FEEDS.md maps each field to crier's data;
//! tests/fixtures/statuspage_v2/ holds the documented shapes a test compares with).
//!
//! Only what [`super::public`] lets through appears: published updates, never drafts or authors.
//! These routes are not in the OpenAPI document of `/api/v1`: their contract is Statuspage's,
//! checked against those fixtures, and they are a different API with its own versioning.

use super::documents::DocError;
use super::public::Public;
use super::public::{self, name_id, rfc3339, shown_at, ulid_id, PublicIncident};
use super::status::Banner;
use crate::domain::IncidentFilter;
use crate::domain::{Component, ComponentStatus, IncidentKind, Status};
use crate::store::port::Components;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

/// How many records the list endpoints show, as Statuspage does.
pub const LIST_LIMIT: usize = 50;

const JSON: &str = "application/json; charset=utf-8";

/// `page`: the page's identity and when anything on it last changed.
fn page(state: &Public<'_>, components: &[Component], incidents: &[PublicIncident]) -> Value {
    let updated = components
        .iter()
        .map(|c| c.updated_at)
        .chain(incidents.iter().map(|i| i.incident.updated_at))
        .max()
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
    let base = public::base(state);
    json!({
        "id": page_id(state),
        "name": state.render.org_name,
        "url": if base.is_empty() { "/".to_owned() } else { base },
        "time_zone": state.render.timezone.name(),
        "updated_at": rfc3339(updated),
    })
}

/// The page's id: stable for a given public URL (or organisation name without one).
fn page_id(state: &Public<'_>) -> String {
    let key = state
        .render
        .public_url
        .clone()
        .unwrap_or_else(|| state.render.org_name.clone());
    name_id("page", &key)
}

/// `status`: the indicator and its words, the status page's banner: the worse of what the
/// components say and the impact of the worst open incident.
fn status(components: &[Component], open: &[PublicIncident]) -> Value {
    let banner = open
        .iter()
        .filter(|i| i.incident.kind == IncidentKind::Incident && i.incident.is_open())
        .map(|i| Banner::of_impact(i.incident.impact))
        .fold(Banner::of(components), Banner::max);
    let (indicator, description) = match banner {
        Banner::Operational => ("none", "All Systems Operational"),
        Banner::Maintenance => ("none", "Service Under Maintenance"),
        Banner::Degraded => ("minor", "Partially Degraded Service"),
        Banner::Minor => ("minor", "Minor Service Outage"),
        Banner::Partial => ("major", "Partial System Outage"),
        Banner::Major => ("critical", "Major System Outage"),
    };
    json!({"indicator": indicator, "description": description})
}

/// `components[]`: each group first (as Statuspage lists a group with `group: true` and its
/// children's ids), then its children, then the components in no group.
fn components(state: &Public<'_>, list: &[Component]) -> Vec<Value> {
    let page = page_id(state);
    let mut groups: Vec<(&str, Vec<&Component>)> = Vec::new();
    let mut loose = Vec::new();
    for c in list {
        match c.group.as_deref() {
            Some(g) => match groups.iter_mut().find(|(name, _)| *name == g) {
                Some((_, v)) => v.push(c),
                None => groups.push((g, vec![c])),
            },
            None => loose.push(c),
        }
    }
    let mut out = Vec::new();
    let mut position = 0;
    let mut next = || {
        position += 1;
        position
    };
    for (g, children) in &groups {
        let gid = name_id("group", g);
        let worst = children
            .iter()
            .map(|c| c.status)
            .max_by_key(|s| severity(*s))
            .unwrap_or(ComponentStatus::Operational);
        let first = children.iter().map(|c| c.updated_at).min();
        let last = children.iter().map(|c| c.updated_at).max();
        out.push(json!({
            "id": gid,
            "name": g,
            "status": worst.as_str(),
            "created_at": first.map(rfc3339),
            "updated_at": last.map(rfc3339),
            "position": next(),
            "description": null,
            "showcase": false,
            "start_date": null,
            "group_id": null,
            "page_id": page,
            "group": true,
            "only_show_if_degraded": false,
            "components": children.iter().map(|c| name_id("component", c.name.as_str())).collect::<Vec<_>>(),
        }));
        for c in children {
            out.push(component(c, Some(&gid), &page, next()));
        }
    }
    for c in loose {
        out.push(component(c, None, &page, next()));
    }
    out
}

fn component(c: &Component, group: Option<&str>, page: &str, position: usize) -> Value {
    json!({
        "id": name_id("component", c.name.as_str()),
        "name": c.name.as_str(),
        "status": c.status.as_str(),
        // crier keeps no creation time for a component; its last change is the earliest known.
        "created_at": rfc3339(c.updated_at),
        "updated_at": rfc3339(c.updated_at),
        "position": position,
        "description": null,
        "showcase": false,
        "start_date": null,
        "group_id": group,
        "page_id": page,
        "group": false,
        "only_show_if_degraded": false,
    })
}

/// Orders component statuses from operational to major outage (maintenance is not an outage).
fn severity(s: ComponentStatus) -> u8 {
    match s {
        ComponentStatus::Operational => 0,
        ComponentStatus::UnderMaintenance => 1,
        ComponentStatus::DegradedPerformance => 2,
        ComponentStatus::PartialOutage => 3,
        ComponentStatus::MajorOutage => 4,
    }
}

/// One incident or maintenance, with its published updates newest first.
fn incident(state: &Public<'_>, p: &PublicIncident, all: &[Component]) -> Value {
    let page = page_id(state);
    let lang = &state.public.feed_language;
    let i = &p.incident;
    let id = ulid_id(i.id);
    let first = p.updates.first().map_or(i.created_at, shown_at);
    // When it last entered monitoring (cleared by a later status other than monitoring).
    let mut monitoring_at = None;
    for u in &p.updates {
        match u.status {
            Status::Monitoring if monitoring_at.is_none() => monitoring_at = Some(shown_at(u)),
            Status::Monitoring => {}
            _ => monitoring_at = None,
        }
    }
    if i.status.is_final() && monitoring_at.is_none() {
        monitoring_at = p
            .updates
            .iter()
            .rev()
            .find(|u| u.status == Status::Monitoring)
            .map(shown_at);
    }
    let updates: Vec<Value> = p
        .updates
        .iter()
        .rev()
        .map(|u| {
            json!({
                "id": ulid_id(u.id),
                "status": u.status.as_str(),
                "body": u.body.text_for(lang),
                "incident_id": id,
                "created_at": rfc3339(shown_at(u)),
                "updated_at": rfc3339(shown_at(u)),
                "display_at": rfc3339(shown_at(u)),
                "affected_components": null,
                "deliver_notifications": true,
                "custom_tweet": null,
                "tweet_id": null,
            })
        })
        .collect();
    let components: Vec<Value> = i
        .components
        .iter()
        .filter_map(|name| all.iter().find(|c| &c.name == name))
        .enumerate()
        .map(|(n, c)| {
            component(
                c,
                c.group.as_deref().map(|g| name_id("group", g)).as_deref(),
                &page,
                n + 1,
            )
        })
        .collect();
    let mut v = json!({
        "id": id,
        "name": i.title.as_str(),
        "status": i.status.as_str(),
        "created_at": rfc3339(first),
        "updated_at": rfc3339(i.updated_at),
        "monitoring_at": monitoring_at.map(rfc3339),
        "resolved_at": i.resolved_at.map(rfc3339),
        "impact": i.impact.as_str(),
        "shortlink": public::permalink(state, i.id),
        "started_at": rfc3339(first),
        "page_id": page,
        "incident_updates": updates,
        "components": components,
    });
    if i.kind == IncidentKind::Maintenance {
        v["impact"] = json!("maintenance");
        v["scheduled_for"] = json!(i.scheduled_for.map(rfc3339));
        v["scheduled_until"] = json!(i.scheduled_until.map(rfc3339));
    }
    v
}

async fn load(
    state: &Public<'_>,
    kind: Option<IncidentKind>,
    open: Option<bool>,
    limit: usize,
) -> Result<Vec<PublicIncident>, DocError> {
    Ok(public::incidents(
        state,
        IncidentFilter {
            kind,
            open,
            limit,
            ..Default::default()
        },
    )
    .await?)
}

fn bytes(v: &Value) -> Result<(&'static str, Vec<u8>), DocError> {
    let mut out = serde_json::to_vec(v).map_err(|e| DocError::Encode(e.to_string()))?;
    out.push(b'\n');
    Ok((JSON, out))
}

/// Every open record (incidents and maintenances); an open record is never left out.
async fn open_records(state: &Public<'_>) -> Result<Vec<PublicIncident>, DocError> {
    load(state, None, Some(true), usize::MAX).await
}

/// `/api/v2/summary.json`: page, status, components, unresolved incidents, and upcoming or
/// in-progress maintenances.
pub async fn summary(state: &Public<'_>) -> Result<(&'static str, Vec<u8>), DocError> {
    let all = state.store.components().await?;
    let open = open_records(state).await?;
    let incidents: Vec<Value> = open
        .iter()
        .filter(|p| p.incident.kind == IncidentKind::Incident)
        .map(|p| incident(state, p, &all))
        .collect();
    let maintenances: Vec<Value> = open
        .iter()
        .filter(|p| p.incident.kind == IncidentKind::Maintenance)
        .map(|p| incident(state, p, &all))
        .collect();
    bytes(&json!({
        "page": page(state, &all, &open),
        "status": status(&all, &open),
        "components": components(state, &all),
        "incidents": incidents,
        "scheduled_maintenances": maintenances,
    }))
}

/// `/api/v2/status.json`: page and status only.
pub async fn status_json(state: &Public<'_>) -> Result<(&'static str, Vec<u8>), DocError> {
    let all = state.store.components().await?;
    let open = open_records(state).await?;
    bytes(&json!({
        "page": page(state, &all, &open),
        "status": status(&all, &open),
    }))
}

/// `/api/v2/components.json`.
pub async fn components_json(state: &Public<'_>) -> Result<(&'static str, Vec<u8>), DocError> {
    let all = state.store.components().await?;
    bytes(&json!({
        "page": page(state, &all, &[]),
        "components": components(state, &all),
    }))
}

async fn incident_list(
    state: &Public<'_>,
    key: &str,
    list: Vec<PublicIncident>,
) -> Result<(&'static str, Vec<u8>), DocError> {
    let all = state.store.components().await?;
    let items: Vec<Value> = list.iter().map(|p| incident(state, p, &all)).collect();
    let mut doc = serde_json::Map::new();
    doc.insert("page".into(), page(state, &all, &list));
    doc.insert(key.into(), Value::Array(items));
    bytes(&Value::Object(doc))
}

/// `/api/v2/incidents.json`: the 50 most recent incidents, open or resolved.
pub async fn incidents_json(state: &Public<'_>) -> Result<(&'static str, Vec<u8>), DocError> {
    let list = load(state, Some(IncidentKind::Incident), None, LIST_LIMIT).await?;
    incident_list(state, "incidents", list).await
}

/// `/api/v2/incidents/unresolved.json`: every incident not yet resolved.
pub async fn unresolved_json(state: &Public<'_>) -> Result<(&'static str, Vec<u8>), DocError> {
    let list = load(state, Some(IncidentKind::Incident), Some(true), usize::MAX).await?;
    incident_list(state, "incidents", list).await
}

/// `/api/v2/scheduled-maintenances.json`: the 50 most recent maintenances.
pub async fn maintenances_json(state: &Public<'_>) -> Result<(&'static str, Vec<u8>), DocError> {
    let list = load(state, Some(IncidentKind::Maintenance), None, LIST_LIMIT).await?;
    incident_list(state, "scheduled_maintenances", list).await
}

async fn maintenances_in(
    state: &Public<'_>,
    statuses: &[Status],
) -> Result<(&'static str, Vec<u8>), DocError> {
    let list = load(
        state,
        Some(IncidentKind::Maintenance),
        Some(true),
        usize::MAX,
    )
    .await?
    .into_iter()
    .filter(|p| statuses.contains(&p.incident.status))
    .collect();
    incident_list(state, "scheduled_maintenances", list).await
}

/// `/api/v2/scheduled-maintenances/upcoming.json`: maintenances still `scheduled`.
pub async fn upcoming_json(state: &Public<'_>) -> Result<(&'static str, Vec<u8>), DocError> {
    maintenances_in(state, &[Status::Scheduled]).await
}

/// `/api/v2/scheduled-maintenances/active.json`: maintenances `in_progress` or `verifying`.
pub async fn active_json(state: &Public<'_>) -> Result<(&'static str, Vec<u8>), DocError> {
    maintenances_in(state, &[Status::InProgress, Status::Verifying]).await
}
