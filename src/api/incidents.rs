//! Incidents and their timelines: open, list, show, post an update, resolve, reopen, publish drafts.

use super::extract::{ApiJson, ApiQuery};
use super::{ApiError, AppState, Principal};
use crate::domain::{
    Body, ComponentName, Impact, Incident, IncidentKind, Locale, NextUpdate, Status, Title, Update,
    UpdateAction,
};
use crate::store::{Change, IncidentFilter, NewIncident, NewUpdate};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use ulid::Ulid;

/// The text of an update (not flattened with serde: `flatten` defeats `deny_unknown_fields`):
/// either `message` (in `locale`, default `en`) or `body` with one text per
/// locale — exactly one of the two.
pub struct Text {
    pub(crate) message: Option<String>,
    pub(crate) locale: Option<String>,
    pub(crate) body: Option<BTreeMap<String, String>>,
}

impl Text {
    pub(crate) fn into_body(self) -> Result<Body, ApiError> {
        match (self.message, self.body) {
            (Some(m), None) => {
                let locale = match self.locale {
                    Some(l) => Locale::parse(&l)?,
                    None => Locale::english(),
                };
                Ok(Body::single(locale, &m)?)
            }
            (None, Some(map)) => {
                if self.locale.is_some() {
                    return Err(ApiError::unprocessable(
                        "locale: give `locale` only with `message`; in `body` each text is keyed by its locale",
                    ));
                }
                let mut texts = BTreeMap::new();
                for (l, t) in map {
                    texts.insert(Locale::parse(&l)?, t);
                }
                Ok(Body::parse(texts)?)
            }
            (Some(_), Some(_)) => Err(ApiError::unprocessable(
                "give either `message` (with an optional `locale`) or `body` (texts by locale), not both",
            )),
            (None, None) => Err(ApiError::unprocessable(
                "message: missing; say what is happening in `message` or `body`",
            )),
        }
    }
}

fn parse_next_update(
    s: Option<String>,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, ApiError> {
    let Some(s) = s else { return Ok(None) };
    let promise = match DateTime::parse_from_rfc3339(s.trim()) {
        Ok(t) => NextUpdate::At(t.with_timezone(&Utc)),
        Err(_) => NextUpdate::In(s),
    };
    Ok(Some(promise.resolve(now)?))
}

/// The promise of a request: `next_update` (30m, 1h, RFC 3339) or `next_update_at` (HH:MM in the
/// server's time zone), not both.
fn promise(
    state: &AppState,
    next_update: Option<String>,
    next_update_at: Option<String>,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, ApiError> {
    match (next_update, next_update_at) {
        (Some(_), Some(_)) => Err(ApiError::unprocessable(
            "give either next_update (a delay such as 30m) or next_update_at (a time such as 14:00), not both",
        )),
        (None, Some(at)) => Ok(Some(crate::domain::next_local_time(
            &at,
            state.render.timezone,
            now,
        )?)),
        (n, None) => parse_next_update(n, now),
    }
}

fn parse_instant(field: &'static str, s: &str) -> Result<DateTime<Utc>, ApiError> {
    DateTime::parse_from_rfc3339(s.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            ApiError::unprocessable(format!(
                "{field}: \"{s}\" is not an RFC 3339 time; write e.g. 2026-12-01T22:00:00+02:00"
            ))
        })
}

/// A maintenance window's two ends (both or neither).
type Window = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

/// A maintenance window: both ends, in order, only on maintenances.
fn window(
    kind: IncidentKind,
    from: Option<String>,
    until: Option<String>,
) -> Result<Window, ApiError> {
    match (from, until) {
        (None, None) => Ok((None, None)),
        (Some(f), Some(u)) => {
            if kind != IncidentKind::Maintenance {
                return Err(ApiError::unprocessable(
                    "scheduled_for: only a maintenance has a window; open it with kind \"maintenance\"",
                ));
            }
            let (f, u) = (
                parse_instant("scheduled_for", &f)?,
                parse_instant("scheduled_until", &u)?,
            );
            if u <= f {
                return Err(ApiError::unprocessable(
                    "scheduled_until: must be after scheduled_for",
                ));
            }
            Ok((Some(f), Some(u)))
        }
        _ => Err(ApiError::unprocessable(
            "scheduled_for and scheduled_until go together; give both ends of the window",
        )),
    }
}

fn parse_id(id: &str) -> Result<Ulid, ApiError> {
    Ulid::from_string(id.trim()).map_err(|_| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!("\"{id}\" is not an incident id; ids are 26-character ULIDs as shown by `crier incident list`"),
        )
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateIncident {
    title: String,
    #[serde(default)]
    kind: IncidentKind,
    status: Option<String>,
    impact: Option<String>,
    #[serde(default)]
    components: Vec<String>,
    next_update: Option<String>,
    next_update_at: Option<String>,
    #[serde(default)]
    draft: bool,
    message: Option<String>,
    locale: Option<String>,
    body: Option<BTreeMap<String, String>>,
    /// Maintenance window, RFC 3339 (both or neither).
    scheduled_for: Option<String>,
    scheduled_until: Option<String>,
    #[serde(default)]
    holding_statement: bool,
}

/// An incident as the API shows it: its record plus `overdue`, true when the promised next
/// update is past due and the incident is still open.
#[derive(Serialize)]
pub struct IncidentView {
    #[serde(flatten)]
    pub incident: Incident,
    pub overdue: bool,
}

impl From<Incident> for IncidentView {
    fn from(incident: Incident) -> Self {
        let overdue =
            incident.is_open() && incident.next_update_due.is_some_and(|due| due < Utc::now());
        IncidentView { incident, overdue }
    }
}

/// An incident with its timeline.
#[derive(Serialize)]
pub struct IncidentDetail {
    #[serde(flatten)]
    pub incident: IncidentView,
    pub updates: Vec<Update>,
}

/// An update just posted, with the incident as it now stands.
#[derive(Serialize)]
pub struct Posted {
    pub incident: Incident,
    pub update: Update,
    /// Components this resolution put back to operational.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub restored_components: Vec<ComponentName>,
}

pub async fn create(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    ApiJson(req): ApiJson<CreateIncident>,
) -> Result<(StatusCode, Json<IncidentDetail>), ApiError> {
    let now = state.dispatcher.now();
    let (scheduled_for, scheduled_until) =
        window(req.kind, req.scheduled_for, req.scheduled_until)?;
    let new = NewIncident {
        title: Title::parse(&req.title)?,
        kind: req.kind,
        status: req.status.as_deref().map(Status::parse).transpose()?,
        impact: match (req.impact.as_deref(), req.kind) {
            (Some(i), _) => Impact::parse(i)?,
            (None, IncidentKind::Maintenance) => Impact::None,
            (None, IncidentKind::Incident) => {
                return Err(ApiError::unprocessable(
                    "impact: missing; say how bad it is with none, minor, major or critical",
                ))
            }
        },
        components: req
            .components
            .iter()
            .map(|c| ComponentName::parse(c))
            .collect::<Result<_, _>>()?,
        body: Text {
            message: req.message,
            locale: req.locale,
            body: req.body,
        }
        .into_body()?,
        author: who.0,
        next_update_due: promise(&state, req.next_update, req.next_update_at, now)?,
        draft: req.draft,
        broadcast: state.dispatcher.broadcast_targets(),
        scheduled_for,
        scheduled_until,
        holding_statement: req.holding_statement,
    };
    let broadcasting = !new.draft && !new.broadcast.is_empty();
    let (incident, update) = state.store.create_incident(new, now).await?;
    if broadcasting {
        state.dispatcher.kick();
    }
    tracing::info!(incident = %incident.id, draft = incident.draft, "incident opened");
    Ok((
        StatusCode::CREATED,
        Json(IncidentDetail {
            incident: incident.into(),
            updates: vec![update],
        }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    open: Option<bool>,
    kind: Option<IncidentKind>,
    status: Option<String>,
    impact: Option<String>,
    component: Option<String>,
    limit: Option<usize>,
}

/// The most incidents one list request returns.
const MAX_LIMIT: usize = 10_000;

pub async fn list(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Vec<IncidentView>>, ApiError> {
    let limit = q.limit.unwrap_or(1000);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(ApiError::bad_request(format!(
            "limit: use 1 to {MAX_LIMIT}"
        )));
    }
    let filter = IncidentFilter {
        open: q.open,
        kind: q.kind,
        status: q.status.as_deref().map(Status::parse).transpose()?,
        impact: q.impact.as_deref().map(Impact::parse).transpose()?,
        component: q
            .component
            .as_deref()
            .map(ComponentName::parse)
            .transpose()?,
        published_only: false,
        limit,
    };
    Ok(Json(
        state
            .store
            .incidents(&filter)?
            .into_iter()
            .map(IncidentView::from)
            .collect(),
    ))
}

pub async fn show(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<IncidentDetail>, ApiError> {
    let (incident, updates) = state.store.incident(parse_id(&id)?)?;
    Ok(Json(IncidentDetail {
        incident: incident.into(),
        updates,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostUpdate {
    status: Option<String>,
    impact: Option<String>,
    next_update: Option<String>,
    next_update_at: Option<String>,
    #[serde(default)]
    draft: bool,
    message: Option<String>,
    locale: Option<String>,
    body: Option<BTreeMap<String, String>>,
    /// When this update resolves: leave the components' statuses as they are.
    #[serde(default)]
    keep_components: bool,
}

async fn append(
    state: &AppState,
    who: Principal,
    id: &str,
    change: Change,
    req: PostUpdate,
) -> Result<(StatusCode, Json<Posted>), ApiError> {
    let now = state.dispatcher.now();
    let id = parse_id(id)?;
    let keep_components = req.keep_components;
    let new = NewUpdate {
        change,
        impact: req.impact.as_deref().map(Impact::parse).transpose()?,
        next_update_due: promise(state, req.next_update, req.next_update_at, now)?,
        draft: req.draft,
        body: Text {
            message: req.message,
            locale: req.locale,
            body: req.body,
        }
        .into_body()?,
        author: who.0,
        broadcast: state.dispatcher.broadcast_targets(),
    };
    // Only a published update on at least one channel creates broadcasts to expand.
    let broadcasting = !new.draft && !new.broadcast.is_empty();
    let (incident, update) = state.store.append_update(id, new, now).await?;
    if broadcasting {
        state.dispatcher.kick();
    }
    tracing::info!(incident = %incident.id, update = %update.id, status = %update.status, "update posted");
    // The resolution is already durable: a failure here is logged, not answered as one (a
    // retry of the resolve would only get a conflict).
    let restored_components = if update.action == UpdateAction::Resolved
        && !update.draft
        && !keep_components
    {
        state
                .store
                .restore_components(&incident, now)
                .await
                .unwrap_or_else(|e| {
                    tracing::error!(incident = %incident.id, error = %e, "restoring the incident's components failed; set them with `crier component set`");
                    Vec::new()
                })
    } else {
        Vec::new()
    };
    Ok((
        StatusCode::CREATED,
        Json(Posted {
            incident,
            update,
            restored_components,
        }),
    ))
}

pub async fn update(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<PostUpdate>,
) -> Result<(StatusCode, Json<Posted>), ApiError> {
    let status = req.status.as_deref().map(Status::parse).transpose()?;
    append(&state, who, &id, Change::Update(status), req).await
}

/// Resolve and reopen take only the text (and, for reopen, an optional promise).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Transition {
    next_update: Option<String>,
    message: Option<String>,
    locale: Option<String>,
    body: Option<BTreeMap<String, String>>,
    /// Resolve: leave the components' statuses as they are.
    #[serde(default)]
    keep_components: bool,
}

impl From<Transition> for PostUpdate {
    fn from(t: Transition) -> Self {
        PostUpdate {
            status: None,
            impact: None,
            next_update: t.next_update,
            next_update_at: None,
            draft: false,
            message: t.message,
            locale: t.locale,
            body: t.body,
            keep_components: t.keep_components,
        }
    }
}

pub async fn resolve(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<Transition>,
) -> Result<(StatusCode, Json<Posted>), ApiError> {
    if req.next_update.is_some() {
        return Err(ApiError::unprocessable(
            "next_update: a resolved incident promises no further update; leave it out",
        ));
    }
    append(&state, who, &id, Change::Resolve, req.into()).await
}

pub async fn reopen(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<Transition>,
) -> Result<(StatusCode, Json<Posted>), ApiError> {
    append(&state, who, &id, Change::Reopen, req.into()).await
}

pub async fn publish(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<IncidentDetail>, ApiError> {
    let (incident, updates) = state
        .store
        .publish_drafts(
            parse_id(&id)?,
            &state.dispatcher.broadcast_targets(),
            state.dispatcher.now(),
        )
        .await?;
    state.dispatcher.kick();
    tracing::info!(incident = %incident.id, published = updates.len(), "drafts published");
    Ok(Json(IncidentDetail {
        incident: incident.into(),
        updates,
    }))
}
