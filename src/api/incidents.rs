//! Incidents and their timelines: open, list, show, post an update, resolve, reopen, publish drafts.

use super::approvals;
use super::authz::AuditNote;
use super::extract::{ApiJson, ApiQuery};
use super::openapi::PROBLEM;
use super::{ApiError, AppState, Principal};
use crate::domain::Decision;
use crate::domain::{
    parse_titles, Approval, ApprovalAction, Body, ComponentName, ComponentStatus, DomainError,
    Impact, Incident, IncidentKind, Locale, NextUpdate, PromiseChange, PromiseEdit, Reminder,
    Status, Title, Titles, Update, UpdateAction,
};
use crate::domain::{Change, IncidentFilter, NewIncident, NewUpdate};
use crate::store::port::{Components, Incidents};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
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
/// organisation's time zone, the config's `timezone`), not both.
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

/// The promise edit of an update: a new promise, an explicit withdrawal, or (neither given) the
/// standing promise kept.
fn promise_edit(
    state: &AppState,
    req: &mut PostUpdate,
    now: DateTime<Utc>,
) -> Result<PromiseEdit, ApiError> {
    let given = promise(
        state,
        req.next_update.take(),
        req.next_update_at.take(),
        now,
    )?;
    match (given, req.clear_next_update) {
        (Some(_), true) => Err(ApiError::unprocessable(
            "clear_next_update: give either a new promise (next_update or next_update_at) or clear_next_update, not both",
        )),
        (Some(t), false) => Ok(PromiseEdit::Set(t)),
        (None, true) => Ok(PromiseEdit::Clear),
        (None, false) => Ok(PromiseEdit::Keep),
    }
}

/// An instant in the organisation's zone, RFC 3339 with that zone's offset at the instant.
fn local(t: DateTime<Utc>, tz: chrono_tz::Tz) -> String {
    t.with_timezone(&tz)
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
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

/// A maintenance window's reminder: the one asked for, else the config's; none without a
/// window. Asking for one on an incident or a maintenance without a window is an error.
fn reminder(
    kind: IncidentKind,
    has_window: bool,
    asked: Option<&str>,
    config: Option<std::time::Duration>,
) -> Result<Option<Reminder>, ApiError> {
    match asked {
        Some(_) if kind != IncidentKind::Maintenance => Err(ApiError::from(DomainError::invalid(
            "remind_before",
            "only a maintenance reminds its audience; open it with kind \"maintenance\" and a window (scheduled_for, scheduled_until), or leave remind_before out",
        ))),
        Some(_) if !has_window => Err(ApiError::from(DomainError::invalid(
            "remind_before",
            "a reminder goes before the window starts; give the window too (scheduled_for, scheduled_until)",
        ))),
        Some(s) => Ok(Some(Reminder::parse(s)?)),
        None if has_window => Ok(Some(Reminder::from_config(config))),
        None => Ok(None),
    }
}

/// A request's `titles`, validated (none given: none).
fn titles(raw: Option<&BTreeMap<String, String>>) -> Result<Titles, ApiError> {
    Ok(raw.map(parse_titles).transpose()?.unwrap_or_default())
}

fn parse_id(id: &str) -> Result<Ulid, ApiError> {
    Ulid::from_string(id.trim()).map_err(|_| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!("\"{id}\" is not an incident id; ids are 26-character ULIDs as shown by `crier incident list`"),
        )
    })
}

/// Opens an incident or a maintenance. The text is either `message` (in `locale`, default `en`)
/// or `body` (one text per locale), exactly one of the two.
#[derive(Deserialize, Serialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"title": "Check-in delays at HEL", "titles": {"fi": "Lähtöselvitys viivästyy Helsinki-Vantaalla"}, "impact": "major", "components": [], "message": "We are investigating slow check-in.", "next_update": "30m"})))]
pub struct CreateIncident {
    /// The main title: readers of a language without a title in `titles` see it.
    #[schema(value_type = Title)]
    pub title: String,
    /// The title in other languages, by locale (`{"fi": "Lähtöselvitys viivästyy"}`); each
    /// follows the rules of `title`. A reader sees the title in their language, else the `en`
    /// one, else `title`.
    #[schema(value_type = Option<BTreeMap<String, Title>>)]
    pub titles: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub kind: IncidentKind,
    /// Default: the kind's first status (investigating or scheduled).
    #[schema(value_type = Option<Status>)]
    pub status: Option<String>,
    /// Required for an incident; a maintenance defaults to `none`.
    #[schema(value_type = Option<Impact>)]
    pub impact: Option<String>,
    #[serde(default)]
    #[schema(value_type = Vec<ComponentName>)]
    pub components: Vec<String>,
    /// Components to give a new status as the incident opens, in the same write (they are
    /// added to `components`): `[{"component": "Check-in", "status": "major_outage"}]`. Not in
    /// a draft; a held opening sets them when it is approved.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub component_statuses: Vec<SetComponentStatus>,
    /// The promised next update: a delay of 1 minute to 7 days (`30m`, `1h30m`) or an RFC 3339
    /// instant; not with `next_update_at`.
    pub next_update: Option<String>,
    /// The promised next update as a time of day (`HH:MM`) in the organisation's zone (the
    /// config's `timezone`; answers name it in `timezone`): the next such time, today or tomorrow.
    pub next_update_at: Option<String>,
    /// A draft is not public and notifies nobody until published.
    #[serde(default)]
    pub draft: bool,
    #[schema(min_length = 1, max_length = 25000)]
    pub message: Option<String>,
    #[schema(value_type = Option<Locale>)]
    pub locale: Option<String>,
    #[schema(value_type = Option<BTreeMap<Locale, String>>)]
    pub body: Option<BTreeMap<String, String>>,
    /// Maintenance window, RFC 3339 (both or neither).
    pub scheduled_for: Option<String>,
    pub scheduled_until: Option<String>,
    /// A maintenance window's reminder to its audience: how long before `scheduled_for` it
    /// goes (`30m`, `2h`, `1d`; 1 minute to 7 days), or `none` for no reminder. Default: the
    /// config's `maintenance.remind_before`. Only with a window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "1h")]
    pub remind_before: Option<String>,
    /// Post a holding statement automatically when a promised update is missed.
    #[serde(default)]
    pub holding_statement: bool,
    /// Publish at once although the configuration asks for a second person's approval
    /// (admins only, with a `reason`; recorded in the audit log as `break_glass`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub break_glass: bool,
    /// Why glass is broken: required with `break_glass`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// One affected component's new status, set in the same write as the incident or update.
#[derive(Deserialize, Serialize, Clone, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetComponentStatus {
    /// The component's name (it must exist).
    #[schema(value_type = ComponentName)]
    pub component: String,
    /// `operational`, `degraded_performance`, `partial_outage`, `major_outage` or
    /// `under_maintenance`.
    #[schema(value_type = ComponentStatus)]
    pub status: String,
}

/// The `component_statuses` of a request, checked: each name and status valid and the
/// component existing (the error names it), none in a draft. Nothing is written on an error.
async fn component_statuses(
    state: &AppState,
    list: &[SetComponentStatus],
    draft: bool,
) -> Result<Vec<(ComponentName, ComponentStatus)>, ApiError> {
    if draft && !list.is_empty() {
        return Err(crate::store::no_statuses_in_drafts().into());
    }
    let mut out = Vec::with_capacity(list.len());
    for s in list {
        let bad = |reason: String| {
            ApiError::from(crate::domain::DomainError::invalid(
                "component_statuses",
                format!("component \"{}\": {reason}", s.component),
            ))
        };
        let reason = |e: crate::domain::DomainError| match e {
            crate::domain::DomainError::Invalid { reason, .. } => reason,
            other => other.to_string(),
        };
        let name = ComponentName::parse(&s.component).map_err(|e| bad(reason(e)))?;
        let status = ComponentStatus::parse(&s.status).map_err(|e| bad(reason(e)))?;
        if state
            .store
            .check_components(std::slice::from_ref(&name))
            .await
            .is_err()
        {
            return Err(bad(format!(
                "no such component: create it first with `crier component set {name} operational`, or check the spelling (`crier component list`)"
            )));
        }
        if out.iter().any(|(n, _): &(ComponentName, _)| *n == name) {
            return Err(bad("named twice; give each component one new status".into()));
        }
        out.push((name, status));
    }
    Ok(out)
}

/// An incident as the API shows it: its record plus `overdue`, true when the promised next
/// update is past due and the incident is still open, and the promise in the organisation's
/// time zone. The CLI reads it as this type too (`crier incident list`).
#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub struct IncidentView {
    #[serde(flatten)]
    pub incident: Incident,
    pub overdue: bool,
    /// `next_update_due` in the organisation's time zone, with that zone's offset at the instant
    /// (e.g. `2026-10-25T14:00:00+02:00`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_update_due_local: Option<String>,
    /// The organisation's time zone (IANA, the config's `timezone`): `next_update_at` times of
    /// day are read in it, and `next_update_due_local` is shown in it.
    #[schema(example = "Europe/Helsinki")]
    pub timezone: String,
}

impl IncidentView {
    pub fn new(incident: Incident, now: DateTime<Utc>, tz: chrono_tz::Tz) -> Self {
        let overdue = incident.is_open() && incident.next_update_due.is_some_and(|due| due < now);
        IncidentView {
            next_update_due_local: incident.next_update_due.map(|t| local(t, tz)),
            incident,
            overdue,
            timezone: tz.name().to_owned(),
        }
    }
}

impl AppState {
    /// An incident as the API shows it, at the server's "now" and in the organisation's zone.
    fn view(&self, incident: Incident) -> IncidentView {
        IncidentView::new(incident, self.dispatcher.now(), self.render.timezone)
    }
}

/// An incident with its timeline.
#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub struct IncidentDetail {
    #[serde(flatten)]
    pub incident: IncidentView,
    pub updates: Vec<Update>,
}

/// An update just posted, with the incident as it now stands.
#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub struct Posted {
    pub incident: IncidentView,
    pub update: Update,
    /// What the update did to the incident's promise of a next update.
    pub promise: PromiseReport,
    /// Components this resolution put back to operational.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub restored_components: Vec<ComponentName>,
}

/// What an update did to the promise of a next update: never dropped silently.
#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub struct PromiseReport {
    /// `made` (a new promise), `kept` (the standing one still holds), `cleared` (withdrawn on
    /// request), `lapsed` (the standing one had passed, so it could not be kept: none stands
    /// now), `ended` (resolved: no further update is promised) or `none`.
    pub change: PromiseChange,
    /// The promise that stood before this update, when it was replaced, withdrawn, lapsed or
    /// ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_due: Option<DateTime<Utc>>,
    /// `previous_due` in the organisation's time zone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_due_local: Option<String>,
}

/// Opens an incident or a maintenance with its first update.
#[utoipa::path(
    post,
    path = "/api/v1/incidents",
    operation_id = "createIncident",
    tag = "incidents",
    security(("bearer" = [])),
    request_body = CreateIncident,
    responses(
        (status = 201, description = "Opened", body = IncidentDetail, links(
            ("show" = (operation_id = "showIncident", parameters(("id" = "$response.body#/id")))),
            ("update" = (operation_id = "postUpdate", parameters(("id" = "$response.body#/id")))),
            ("resolve" = (operation_id = "resolveIncident", parameters(("id" = "$response.body#/id")))),
            ("reopen" = (operation_id = "reopenIncident", parameters(("id" = "$response.body#/id")))),
            ("publish" = (operation_id = "publishDrafts", parameters(("id" = "$response.body#/id")))),
            ("deliveries" = (operation_id = "deliveryStatus", parameters(("id" = "$response.body#/id")))),
            ("stream" = (operation_id = "deliveryStream", parameters(("id" = "$response.body#/id")))),
            ("retry" = (operation_id = "retryDead", parameters(("id" = "$response.body#/id")))),
        )),
        (status = 202, description = "Held for a second person's approval (the configuration asks for one, or the author is a responder); nothing was sent", body = Approval),
        (status = 400, description = "The body is not JSON", body = super::error::Problem, content_type = PROBLEM),
        (status = 401, description = "No valid bearer token", body = super::error::Problem, content_type = PROBLEM),
        (status = 403, description = "A token below responder, or break_glass by a non-admin (a responder's non-draft write is held for approval: 202)", body = super::error::Problem, content_type = PROBLEM),
        (status = 413, description = "The body is too large", body = super::error::Problem, content_type = PROBLEM),
        (status = 415, description = "Not `Content-Type: application/json`", body = super::error::Problem, content_type = PROBLEM),
        (status = 422, description = "A field is invalid (`field` names it)", body = super::error::Problem, content_type = PROBLEM),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    ApiJson(mut req): ApiJson<CreateIncident>,
) -> Result<Response, ApiError> {
    let glass = approvals::break_glass(
        &who,
        std::mem::take(&mut req.break_glass),
        req.reason.take(),
        req.draft,
    )?;
    component_statuses(&state, &req.component_statuses, req.draft).await?;
    let needed = match req.draft {
        true => Vec::new(),
        false => state.approval_reasons_for(&who).await,
    };
    if !needed.is_empty() && glass.is_none() {
        // Checked in full now, so a write that would fail is refused before anyone approves it.
        let request = approvals::request_value(&req)?;
        let id = Ulid::new();
        let new = new_incident(&state, who.0.clone(), req, state.dispatcher.now())?;
        state.store.check_components(&new.components).await?;
        crate::domain::check_status_for_new(
            new.kind,
            new.status.unwrap_or(new.kind.initial_status()),
        )?;
        let held = approvals::Held {
            action: ApprovalAction::Open,
            incident_id: id,
            title: new.title.as_str().to_owned(),
            message: first_text(&new.body),
            request,
            reasons: needed,
        };
        return approvals::hold(&state, &who, held).await;
    }
    if glass.is_none() {
        // No approval applies: the store writes the audit entry with the change (a break of
        // glass is recorded by the middleware, as `break_glass`).
        crate::store::audit::arm();
    }
    let out = open(&state, Ulid::new(), who.0.clone(), req, None).await?;
    Ok(approvals::finish(out, glass, &needed))
}

/// The first text of a body (its first language), for staff to read.
fn first_text(b: &Body) -> Option<String> {
    b.texts().values().next().cloned()
}

/// The new incident a request describes, checked field by field.
fn new_incident(
    state: &AppState,
    author: String,
    req: CreateIncident,
    now: DateTime<Utc>,
) -> Result<NewIncident, ApiError> {
    let (scheduled_for, scheduled_until) =
        window(req.kind, req.scheduled_for, req.scheduled_until)?;
    let remind_before = reminder(
        req.kind,
        scheduled_for.is_some(),
        req.remind_before.as_deref(),
        state.maintenance_remind_before,
    )?;
    Ok(NewIncident {
        title: Title::parse(&req.title)?,
        titles: titles(req.titles.as_ref())?,
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
        author,
        next_update_due: promise(state, req.next_update, req.next_update_at, now)?,
        draft: req.draft,
        broadcast: state.dispatcher.broadcast_targets(),
        scheduled_for,
        scheduled_until,
        holding_statement: req.holding_statement,
        remind_before,
    })
}

/// Opens the incident `id` as `author` wrote it; with `decision`, releasing that approval in
/// the same write.
pub(super) async fn open(
    state: &AppState,
    id: Ulid,
    author: String,
    req: CreateIncident,
    decision: Option<&Decision>,
) -> Result<approvals::Out, ApiError> {
    let now = state.dispatcher.now();
    let statuses = component_statuses(state, &req.component_statuses, req.draft).await?;
    let mut new = new_incident(state, author, req, now)?;
    // A component given a new status is affected.
    for (name, _) in &statuses {
        if !new.components.contains(name) {
            new.components.push(name.clone());
        }
    }
    let broadcasting = !new.draft && !new.broadcast.is_empty();
    let (incident, update, changed) = state
        .store
        .create_incident_decided(id, new, &statuses, now, decision)
        .await?;
    if broadcasting {
        state.dispatcher.kick();
    }
    tracing::info!(incident = %incident.id, draft = incident.draft, "incident opened");
    let mut summary = crate::domain::audit::opened(&incident);
    if !changed.is_empty() {
        summary = format!("{summary}; components: {}", changed.join(", "));
    }
    let note = AuditNote {
        target: Some(format!("incident {}", incident.id)),
        summary,
        ..Default::default()
    };
    approvals::Out::new(
        StatusCode::CREATED,
        &IncidentDetail {
            incident: state.view(incident),
            updates: vec![update],
        },
        note,
    )
}

/// Filters of the incident list.
#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only open (true) or only resolved/completed (false) ones.
    open: Option<bool>,
    #[param(value_type = Option<IncidentKind>)]
    kind: Option<IncidentKind>,
    #[param(value_type = Option<Status>)]
    status: Option<String>,
    #[param(value_type = Option<Impact>)]
    impact: Option<String>,
    /// Only those affecting this component.
    #[param(value_type = Option<ComponentName>)]
    component: Option<String>,
    /// At most this many, newest first (default 1000).
    #[param(minimum = 1, maximum = 10000)]
    limit: Option<usize>,
}

/// The most incidents one list request returns.
const MAX_LIMIT: usize = 10_000;

/// Lists incidents, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/incidents",
    operation_id = "listIncidents",
    tag = "incidents",
    security(("bearer" = [])),
    params(ListQuery),
    responses(
        (status = 200, description = "The incidents", body = Vec<IncidentView>),
        (status = 400, description = "A bad query string (unknown parameter, `limit` out of range)", body = super::error::Problem, content_type = PROBLEM),
        (status = 401, description = "No valid bearer token", body = super::error::Problem, content_type = PROBLEM),
        (status = 422, description = "A filter value is invalid", body = super::error::Problem, content_type = PROBLEM),
    )
)]
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
            .incidents(&filter)
            .await?
            .into_iter()
            .map(|i| state.view(i))
            .collect(),
    ))
}

/// One incident with its whole timeline.
#[utoipa::path(
    get,
    path = "/api/v1/incidents/{id}",
    operation_id = "showIncident",
    tag = "incidents",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The incident's id (a ULID)")),
    responses(
        (status = 200, description = "The incident and its updates", body = IncidentDetail),
        (status = 401, description = "No valid bearer token", body = super::error::Problem, content_type = PROBLEM),
        (status = 404, description = "No such incident", body = super::error::Problem, content_type = PROBLEM),
    )
)]
pub async fn show(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<IncidentDetail>, ApiError> {
    let (incident, updates) = state.store.incident(parse_id(&id)?).await?;
    Ok(Json(IncidentDetail {
        incident: state.view(incident),
        updates,
    }))
}

/// A timeline update: the text (`message` or `body`, exactly one), optionally a new status,
/// impact and promise.
#[derive(Deserialize, Serialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"status": "identified", "message": "A failed network switch; it is being replaced.", "next_update": "1h"})))]
pub struct PostUpdate {
    #[schema(value_type = Option<Status>)]
    pub status: Option<String>,
    /// Titles in other languages to add or replace, by locale (`{"sv": "Incheckningen är
    /// försenad"}`); the other languages' titles and the main title stay. A draft's titles are
    /// public once it is published.
    #[schema(value_type = Option<BTreeMap<String, Title>>)]
    pub titles: Option<BTreeMap<String, String>>,
    #[schema(value_type = Option<Impact>)]
    pub impact: Option<String>,
    /// A new promise: a delay of 1 minute to 7 days (`30m`) or an RFC 3339 instant; not with
    /// `next_update_at`. Without either, the standing promise is kept (unless it has passed:
    /// the answer's `promise` says so).
    pub next_update: Option<String>,
    /// A new promise as a time of day (`HH:MM`) in the organisation's zone (the config's
    /// `timezone`; answers name it): the next such time, today or tomorrow.
    pub next_update_at: Option<String>,
    /// Withdraw the standing promise (no next update is promised after this update).
    #[serde(default)]
    pub clear_next_update: bool,
    #[serde(default)]
    pub draft: bool,
    #[schema(min_length = 1, max_length = 25000)]
    pub message: Option<String>,
    #[schema(value_type = Option<Locale>)]
    pub locale: Option<String>,
    #[schema(value_type = Option<BTreeMap<Locale, String>>)]
    pub body: Option<BTreeMap<String, String>>,
    /// When this update resolves: leave the components' statuses as they are.
    #[serde(default)]
    pub keep_components: bool,
    /// Components to give a new status with this update, in the same write:
    /// `[{"component": "Check-in", "status": "degraded_performance"}]`. Not in a draft; a held
    /// update sets them when it is approved.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub component_statuses: Vec<SetComponentStatus>,
    /// Publish at once although the configuration asks for a second person's approval
    /// (admins only, with a `reason`; recorded in the audit log as `break_glass`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub break_glass: bool,
    /// Why glass is broken: required with `break_glass`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A timeline write: published at once, or held for approval when the configuration asks for
/// a second person and no admin breaks glass.
async fn append_or_hold(
    state: &AppState,
    who: Principal,
    id: &str,
    change: Change,
    mut req: PostUpdate,
) -> Result<Response, ApiError> {
    let glass = approvals::break_glass(
        &who,
        std::mem::take(&mut req.break_glass),
        req.reason.take(),
        req.draft,
    )?;
    let id = parse_id(id)?;
    component_statuses(state, &req.component_statuses, req.draft).await?;
    let needed = match req.draft {
        true => Vec::new(),
        false => state.approval_reasons_for(&who).await,
    };
    if !needed.is_empty() && glass.is_none() {
        // Checked in full now (fields and the state machine), so a write that would fail is
        // refused before anyone approves it.
        let request = approvals::request_value(&req)?;
        let incident = state.store.incident_summary(id).await?;
        match change {
            Change::Update(to) => incident.check_update(to.unwrap_or(incident.status))?,
            Change::Resolve => {
                incident.check_resolve()?;
            }
            Change::Reopen => {
                incident.check_reopen()?;
            }
        }
        let new = new_update(state, who.0.clone(), change, req, state.dispatcher.now())?;
        let held = approvals::Held {
            action: match change {
                Change::Update(_) => ApprovalAction::Update,
                Change::Resolve => ApprovalAction::Resolve,
                Change::Reopen => ApprovalAction::Reopen,
            },
            incident_id: id,
            title: incident.title.as_str().to_owned(),
            message: first_text(&new.body),
            request,
            reasons: needed,
        };
        return approvals::hold(state, &who, held).await;
    }
    if glass.is_none() {
        // No approval applies: the store writes the audit entry with the change (a break of
        // glass is recorded by the middleware, as `break_glass`).
        crate::store::audit::arm();
    }
    let out = append(state, who.0.clone(), id, change, req, None).await?;
    Ok(approvals::finish(out, glass, &needed))
}

/// The timeline entry a request describes, checked field by field.
fn new_update(
    state: &AppState,
    author: String,
    change: Change,
    mut req: PostUpdate,
    now: DateTime<Utc>,
) -> Result<NewUpdate, ApiError> {
    Ok(NewUpdate {
        expect_count: None,
        change,
        titles: titles(req.titles.as_ref())?,
        impact: req.impact.as_deref().map(Impact::parse).transpose()?,
        promise: promise_edit(state, &mut req, now)?,
        draft: req.draft,
        body: Text {
            message: req.message,
            locale: req.locale,
            body: req.body,
        }
        .into_body()?,
        author,
        broadcast: state.dispatcher.broadcast_targets(),
    })
}

/// The change a stored update request makes (its `status`, for a plain update).
pub(super) fn change_of(action: ApprovalAction, req: &PostUpdate) -> Result<Change, ApiError> {
    Ok(match action {
        ApprovalAction::Resolve => Change::Resolve,
        ApprovalAction::Reopen => Change::Reopen,
        _ => Change::Update(req.status.as_deref().map(Status::parse).transpose()?),
    })
}

/// Appends to incident `id` as `author` wrote it; with `decision`, releasing that approval in
/// the same write.
pub(super) async fn append(
    state: &AppState,
    author: String,
    id: Ulid,
    change: Change,
    req: PostUpdate,
    decision: Option<&Decision>,
) -> Result<approvals::Out, ApiError> {
    let now = state.dispatcher.now();
    let keep_components = req.keep_components;
    let statuses = component_statuses(state, &req.component_statuses, req.draft).await?;
    let new = new_update(state, author, change, req, now)?;
    // Only a published update on at least one channel creates broadcasts to expand.
    let broadcasting = !new.draft && !new.broadcast.is_empty();
    let crate::domain::Appended {
        incident,
        update,
        promise,
        previous_due,
        summary,
    } = state
        .store
        .append_update_setting(id, new, &statuses, now, decision)
        .await?;
    if broadcasting {
        state.dispatcher.kick();
    }
    tracing::info!(incident = %incident.id, update = %update.id, status = %update.status, promise = ?promise, "update posted");
    let previous_due = previous_due.filter(|_| {
        matches!(
            promise,
            PromiseChange::Made
                | PromiseChange::Cleared
                | PromiseChange::Lapsed
                | PromiseChange::Ended
        )
    });
    let promise = PromiseReport {
        change: promise,
        previous_due,
        previous_due_local: previous_due.map(|t| local(t, state.render.timezone)),
    };
    // The resolution is already durable: a failure here is logged, not answered as one (a
    // retry of the resolve would only get a conflict).
    let restored_components = if update.action == UpdateAction::Resolved
        && !update.draft
        && !keep_components
    {
        // A component this update gave a status keeps it; the others go back to operational.
        let mut rest = incident.clone();
        rest.components
            .retain(|c| !statuses.iter().any(|(n, _)| n == c));
        state
                .store
                .restore_components(&rest, now)
                .await
                .unwrap_or_else(|e| {
                    tracing::error!(incident = %incident.id, error = %e, "restoring the incident's components failed; set them with `crier component set`");
                    Vec::new()
                })
    } else {
        Vec::new()
    };
    let note = AuditNote {
        target: Some(format!("incident {}", incident.id)),
        summary,
        ..Default::default()
    };
    approvals::Out::new(
        StatusCode::CREATED,
        &Posted {
            incident: state.view(incident),
            update,
            promise,
            restored_components,
        },
        note,
    )
}

/// Posts an update to an incident's timeline.
#[utoipa::path(
    post,
    path = "/api/v1/incidents/{id}/updates",
    operation_id = "postUpdate",
    tag = "incidents",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The incident's id (a ULID)")),
    request_body = PostUpdate,
    responses(
        (status = 201, description = "Posted", body = Posted, links(
            ("show" = (operation_id = "showIncident", parameters(("id" = "$response.body#/incident/id")))),
            ("update" = (operation_id = "postUpdate", parameters(("id" = "$response.body#/incident/id")))),
            ("resolve" = (operation_id = "resolveIncident", parameters(("id" = "$response.body#/incident/id")))),
            ("reopen" = (operation_id = "reopenIncident", parameters(("id" = "$response.body#/incident/id")))),
            ("publish" = (operation_id = "publishDrafts", parameters(("id" = "$response.body#/incident/id")))),
            ("deliveries" = (operation_id = "deliveryStatus", parameters(("id" = "$response.body#/incident/id")))),
            ("stream" = (operation_id = "deliveryStream", parameters(("id" = "$response.body#/incident/id")))),
            ("retry" = (operation_id = "retryDead", parameters(("id" = "$response.body#/incident/id")))),
        )),
        (status = 202, description = "Held for a second person's approval (the configuration asks for one, or the author is a responder); nothing was sent", body = Approval),
        (status = 400, description = "The body is not JSON", body = super::error::Problem, content_type = PROBLEM),
        (status = 401, description = "No valid bearer token", body = super::error::Problem, content_type = PROBLEM),
        (status = 403, description = "A token below responder, or break_glass by a non-admin (a responder's non-draft write is held for approval: 202)", body = super::error::Problem, content_type = PROBLEM),
        (status = 404, description = "No such incident", body = super::error::Problem, content_type = PROBLEM),
        (status = 409, description = "The state machine refuses the change (e.g. resolved: reopen first)", body = super::error::Problem, content_type = PROBLEM),
        (status = 413, description = "The body is too large", body = super::error::Problem, content_type = PROBLEM),
        (status = 415, description = "Not `Content-Type: application/json`", body = super::error::Problem, content_type = PROBLEM),
        (status = 422, description = "A field is invalid", body = super::error::Problem, content_type = PROBLEM),
    )
)]
pub async fn update(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<PostUpdate>,
) -> Result<Response, ApiError> {
    let status = req.status.as_deref().map(Status::parse).transpose()?;
    append_or_hold(&state, who, &id, Change::Update(status), req).await
}

/// Resolve and reopen take only the text (and, for reopen, an optional promise).
#[derive(Deserialize, Serialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"message": "Check-in works normally again."})))]
pub struct Transition {
    /// Reopen only: the promised next update.
    pub next_update: Option<String>,
    #[schema(min_length = 1, max_length = 25000)]
    pub message: Option<String>,
    #[schema(value_type = Option<Locale>)]
    pub locale: Option<String>,
    #[schema(value_type = Option<BTreeMap<Locale, String>>)]
    pub body: Option<BTreeMap<String, String>>,
    /// Resolve: leave the components' statuses as they are.
    #[serde(default)]
    pub keep_components: bool,
    /// Publish at once although the configuration asks for a second person's approval
    /// (admins only, with a `reason`; recorded in the audit log as `break_glass`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub break_glass: bool,
    /// Why glass is broken: required with `break_glass`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl From<Transition> for PostUpdate {
    fn from(t: Transition) -> Self {
        PostUpdate {
            status: None,
            titles: None,
            impact: None,
            next_update: t.next_update,
            next_update_at: None,
            clear_next_update: false,
            draft: false,
            message: t.message,
            locale: t.locale,
            body: t.body,
            keep_components: t.keep_components,
            component_statuses: Vec::new(),
            break_glass: t.break_glass,
            reason: t.reason,
        }
    }
}

/// Resolves an incident (or completes a maintenance) with a closing text.
#[utoipa::path(
    post,
    path = "/api/v1/incidents/{id}/resolve",
    operation_id = "resolveIncident",
    tag = "incidents",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The incident's id (a ULID)")),
    request_body = Transition,
    responses(
        (status = 201, description = "Resolved", body = Posted, links(
            ("show" = (operation_id = "showIncident", parameters(("id" = "$response.body#/incident/id")))),
            ("update" = (operation_id = "postUpdate", parameters(("id" = "$response.body#/incident/id")))),
            ("resolve" = (operation_id = "resolveIncident", parameters(("id" = "$response.body#/incident/id")))),
            ("reopen" = (operation_id = "reopenIncident", parameters(("id" = "$response.body#/incident/id")))),
            ("publish" = (operation_id = "publishDrafts", parameters(("id" = "$response.body#/incident/id")))),
            ("deliveries" = (operation_id = "deliveryStatus", parameters(("id" = "$response.body#/incident/id")))),
            ("stream" = (operation_id = "deliveryStream", parameters(("id" = "$response.body#/incident/id")))),
            ("retry" = (operation_id = "retryDead", parameters(("id" = "$response.body#/incident/id")))),
        )),
        (status = 202, description = "Held for a second person's approval (the configuration asks for one); nothing was sent", body = Approval),
        (status = 400, description = "The body is not JSON", body = super::error::Problem, content_type = PROBLEM),
        (status = 401, description = "No valid bearer token", body = super::error::Problem, content_type = PROBLEM),
        (status = 403, description = "A responder's non-draft write, or break_glass by a non-admin", body = super::error::Problem, content_type = PROBLEM),
        (status = 404, description = "No such incident", body = super::error::Problem, content_type = PROBLEM),
        (status = 409, description = "Already resolved", body = super::error::Problem, content_type = PROBLEM),
        (status = 413, description = "The body is too large", body = super::error::Problem, content_type = PROBLEM),
        (status = 415, description = "Not `Content-Type: application/json`", body = super::error::Problem, content_type = PROBLEM),
        (status = 422, description = "A field is invalid", body = super::error::Problem, content_type = PROBLEM),
    )
)]
pub async fn resolve(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<Transition>,
) -> Result<Response, ApiError> {
    if req.next_update.is_some() {
        return Err(ApiError::unprocessable(
            "next_update: a resolved incident promises no further update; leave it out",
        ));
    }
    append_or_hold(&state, who, &id, Change::Resolve, req.into()).await
}

/// Reopens a resolved incident.
#[utoipa::path(
    post,
    path = "/api/v1/incidents/{id}/reopen",
    operation_id = "reopenIncident",
    tag = "incidents",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The incident's id (a ULID)")),
    request_body = Transition,
    responses(
        (status = 201, description = "Reopened", body = Posted),
        (status = 202, description = "Held for a second person's approval (the configuration asks for one); nothing was sent", body = Approval),
        (status = 400, description = "The body is not JSON", body = super::error::Problem, content_type = PROBLEM),
        (status = 401, description = "No valid bearer token", body = super::error::Problem, content_type = PROBLEM),
        (status = 403, description = "A responder's non-draft write, or break_glass by a non-admin", body = super::error::Problem, content_type = PROBLEM),
        (status = 404, description = "No such incident", body = super::error::Problem, content_type = PROBLEM),
        (status = 409, description = "Not resolved, or a maintenance", body = super::error::Problem, content_type = PROBLEM),
        (status = 413, description = "The body is too large", body = super::error::Problem, content_type = PROBLEM),
        (status = 415, description = "Not `Content-Type: application/json`", body = super::error::Problem, content_type = PROBLEM),
        (status = 422, description = "A field is invalid", body = super::error::Problem, content_type = PROBLEM),
    )
)]
pub async fn reopen(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<Transition>,
) -> Result<Response, ApiError> {
    append_or_hold(&state, who, &id, Change::Reopen, req.into()).await
}

/// Break glass on a publication (admins only): publish at once although the configuration asks
/// for a second person's approval.
#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PublishQuery {
    /// Publish without the approval the configuration asks for (admins only, with `reason`;
    /// recorded in the audit log as `break_glass`).
    #[serde(default)]
    break_glass: bool,
    /// Why glass is broken: required with `break_glass`.
    reason: Option<String>,
}

/// Publishes an incident's draft updates: they become public and are sent (or, when the
/// configuration asks for a second person, they wait for approval: 202).
#[utoipa::path(
    post,
    path = "/api/v1/incidents/{id}/publish",
    operation_id = "publishDrafts",
    tag = "incidents",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The incident's id (a ULID)"), PublishQuery),
    responses(
        (status = 200, description = "Published; the updates that were drafts", body = IncidentDetail),
        (status = 202, description = "Held for a second person's approval; nothing was sent", body = Approval),
        (status = 400, description = "A bad query string", body = super::error::Problem, content_type = PROBLEM),
        (status = 401, description = "No valid bearer token", body = super::error::Problem, content_type = PROBLEM),
        (status = 403, description = "Breaking glass is for admins", body = super::error::Problem, content_type = PROBLEM),
        (status = 404, description = "No such incident", body = super::error::Problem, content_type = PROBLEM),
        (status = 409, description = "Nothing to publish", body = super::error::Problem, content_type = PROBLEM),
        (status = 422, description = "`break_glass` without a `reason`", body = super::error::Problem, content_type = PROBLEM),
    )
)]
pub async fn publish(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<PublishQuery>,
) -> Result<Response, ApiError> {
    let glass = approvals::break_glass(&who, q.break_glass, q.reason, false)?;
    let id = parse_id(&id)?;
    let needed = state.approval_reasons().await;
    if !needed.is_empty() && glass.is_none() {
        let (incident, updates) = state.store.incident(id).await?;
        let Some(draft) = updates.iter().find(|u| u.draft && u.published_at.is_none()) else {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!("incident {id} has no unpublished draft updates"),
            ));
        };
        let held = approvals::Held {
            action: ApprovalAction::Publish,
            incident_id: id,
            title: incident.title.as_str().to_owned(),
            message: first_text(&draft.body),
            request: serde_json::json!({}),
            reasons: needed,
        };
        return approvals::hold(&state, &who, held).await;
    }
    if glass.is_none() {
        // No approval applies: the store writes the audit entry with the change (a break of
        // glass is recorded by the middleware, as `break_glass`).
        crate::store::audit::arm();
    }
    let out = publish_now(&state, id, None).await?;
    Ok(approvals::finish(out, glass, &needed))
}

/// Publishes incident `id`'s drafts; with `decision`, releasing that approval in the same write.
pub(super) async fn publish_now(
    state: &AppState,
    id: Ulid,
    decision: Option<&Decision>,
) -> Result<approvals::Out, ApiError> {
    let (incident, updates) = state
        .store
        .publish_drafts_decided(
            id,
            &state.dispatcher.broadcast_targets(),
            state.dispatcher.now(),
            decision,
        )
        .await?;
    state.dispatcher.kick();
    tracing::info!(incident = %incident.id, published = updates.len(), "drafts published");
    let note = AuditNote {
        target: Some(format!("incident {}", incident.id)),
        summary: format!("{} draft update(s) published", updates.len()),
        ..Default::default()
    };
    approvals::Out::new(
        StatusCode::OK,
        &IncidentDetail {
            incident: state.view(incident),
            updates,
        },
        note,
    )
}

#[cfg(test)]
mod wire_tests {
    use super::*;
    use serde_json::json;

    /// The request structs are the CLI's wire format too: what one serialises, the API reads
    /// back unchanged (`deny_unknown_fields`), break glass included (the held copy leaves it
    /// out because the handler takes it out first, not because serialising drops it).
    #[test]
    fn write_requests_round_trip_with_break_glass() {
        let sent = json!({"title": "Delays", "impact": "minor", "message": "Slow.",
                          "break_glass": true, "reason": "outage"});
        let req: CreateIncident = serde_json::from_value(sent).unwrap();
        let v = serde_json::to_value(&req).unwrap();
        assert_eq!(
            (v["break_glass"].clone(), v["reason"].clone()),
            (json!(true), json!("outage"))
        );
        let again: CreateIncident = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(serde_json::to_value(&again).unwrap(), v);
        for sent in [
            json!({"message": "Fixed.", "break_glass": true, "reason": "r"}),
            json!({"status": "identified", "message": "Found.", "break_glass": true, "reason": "r"}),
        ] {
            let req: PostUpdate = serde_json::from_value(sent).unwrap();
            let v = serde_json::to_value(&req).unwrap();
            assert_eq!(v["break_glass"], json!(true), "{v}");
            assert_eq!(v["reason"], json!("r"), "{v}");
        }
        let t: Transition = serde_json::from_value(
            json!({"message": "Fixed.", "break_glass": true, "reason": "r"}),
        )
        .unwrap();
        let v = serde_json::to_value(&t).unwrap();
        assert_eq!(v["break_glass"], json!(true), "{v}");
    }
}
