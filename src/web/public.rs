//! What the public may see of the store, in one place: incidents as their last published update
//! left them, and only their published updates. Every machine-readable document (the Statuspage
//! v2 JSON, the Atom/RSS history, the CAP alerts) reads through here, so a rule about what is
//! public is written once: drafts (and drafts not yet published) never appear, and the author of
//! an update is never copied out of the [`Update`] (the projections below have no field for it).

use super::feed_settings::PublicSettings;
use crate::api::AppState;
use crate::domain::IncidentFilter;
use crate::domain::{Incident, Update};
use crate::render::Settings;
use crate::store::port::Incidents;
use crate::store::{Store, StoreError};
use chrono::{DateTime, SecondsFormat, Utc};
use sha2::{Digest, Sha256};

/// What every public document is made from: the store and the settings, nothing of a running
/// server, so `crier export-static` writes the same bytes the server answers.
#[derive(Clone, Copy)]
pub struct Public<'a> {
    pub store: &'a Store,
    pub render: &'a Settings,
    pub public: &'a PublicSettings,
}

impl<'a> Public<'a> {
    /// The server's view.
    pub fn of(state: &'a AppState) -> Self {
        Public {
            store: &state.store,
            render: &state.render,
            public: &state.public,
        }
    }
}

/// An incident as the public sees it, with its published updates oldest first.
#[derive(Debug, Clone)]
pub struct PublicIncident {
    pub incident: Incident,
    pub updates: Vec<Update>,
}

/// True when the public may see `u`: written as published, or a draft published since.
pub fn is_published(u: &Update) -> bool {
    !u.draft || u.published_at.is_some()
}

/// When the public first saw an update: its publication, or its writing when it was never a draft.
pub fn shown_at(u: &Update) -> DateTime<Utc> {
    u.published_at.unwrap_or(u.created_at)
}

/// The `limit` newest incidents (and maintenances) with at least one published update, newest
/// first, each with its published updates.
pub async fn incidents(
    state: &Public<'_>,
    filter: IncidentFilter,
) -> Result<Vec<PublicIncident>, StoreError> {
    let list = state
        .store
        .incidents(&IncidentFilter {
            published_only: true,
            ..filter
        })
        .await?;
    let mut out = Vec::with_capacity(list.len());
    for incident in list {
        if let Some(p) = incident_by_id(state, incident.id).await? {
            out.push(p);
        }
    }
    Ok(out)
}

/// One incident as the public sees it; `None` when it does not exist or nothing of it is public.
pub async fn incident_by_id(
    state: &Public<'_>,
    id: ulid::Ulid,
) -> Result<Option<PublicIncident>, StoreError> {
    let (incident, updates) = match state.store.incident(id).await {
        Ok(x) => x,
        Err(StoreError::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(e),
    };
    let Some(incident) = incident.public_view() else {
        return Ok(None);
    };
    let updates: Vec<Update> = updates.into_iter().filter(is_published).collect();
    if updates.is_empty() {
        return Ok(None);
    }
    Ok(Some(PublicIncident { incident, updates }))
}

/// A stable public id for something known by name (a component, a group, the page): 12
/// lower-case hex digits of a hash, like Statuspage's 12-character ids. The same name always
/// gives the same id, across restarts and static copies.
pub fn name_id(kind: &str, name: &str) -> String {
    let d = Sha256::digest(format!("crier:{kind}:{name}").as_bytes());
    hex::encode(&d[..6])
}

/// The public id of a record with a ULID: the ULID in lower case.
pub fn ulid_id(id: ulid::Ulid) -> String {
    id.to_string().to_ascii_lowercase()
}

/// RFC 3339 with a numeric offset (UTC, milliseconds), as Statuspage writes its times.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, false)
}

/// The public page's base URL (`public_url` without a trailing slash), or `""` when none is
/// configured: links are then root-relative (`/incidents/<id>`), which feed readers and
/// browsers resolve against the document they came from.
pub fn base(state: &Public<'_>) -> String {
    state
        .render
        .public_url
        .as_deref()
        .map(|u| u.trim_end_matches('/').to_owned())
        .unwrap_or_default()
}

/// The permalink of an incident: the same `<public_url>/incidents/<id>` the notifications link to.
pub fn permalink(state: &Public<'_>, id: ulid::Ulid) -> String {
    format!("{}/incidents/{id}", base(state))
}

/// The host of `public_url` (for tag: URIs and the CAP sender), or `localhost` without one.
pub fn host(state: &Public<'_>) -> String {
    let b = base(state);
    let rest = b.split_once("://").map_or("", |(_, r)| r);
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = host.rsplit('@').next().unwrap_or_default();
    let host = host.split(':').next().unwrap_or_default();
    if host.is_empty() {
        "localhost".to_owned()
    } else {
        host.to_ascii_lowercase()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_ids_are_stable_and_distinct() {
        assert_eq!(name_id("component", "API"), name_id("component", "API"));
        assert_ne!(name_id("component", "API"), name_id("group", "API"));
        assert_eq!(name_id("component", "API").len(), 12);
        assert!(name_id("x", "y")
            .chars()
            .all(|c| c.is_ascii_digit() || c.is_ascii_lowercase()));
    }

    #[test]
    fn times_have_a_numeric_offset() {
        let t = DateTime::parse_from_rfc3339("2026-12-02T10:05:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(rfc3339(t), "2026-12-02T10:05:00.000+00:00");
    }
}
