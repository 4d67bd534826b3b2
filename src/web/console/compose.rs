//! Compose: a new incident or an update to one, with the live per-channel preview.
//!
//! The form is turned into the API's request body and handed to the API's own handlers —
//! [`crate::api::incidents::create`] and [`crate::api::incidents::update`] for the write,
//! [`crate::api::preview::preview`] for each channel's preview — so validation, approval
//! rules, rendering and fitting are the API's, message for message.

use super::{answer, field, field_of, fields, filled, me, Answer};
use crate::api::authz::Caller;
use crate::api::extract::ApiJson;
use crate::api::session::SessionAuth;
use crate::api::{ApiError, AppState, Principal};
use crate::store::port::{Components, Incidents};
use axum::body::Bytes;
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;
use minijinja::{context, Value};
use serde::Deserialize;
use serde_json::{json, Map};

/// The languages the console writes in (`en` first: the fallback every reader gets).
pub const LANGUAGES: [(&str, &str); 3] = [("en", "English"), ("fi", "Suomi"), ("sv", "Svenska")];
const IMPACTS: [&str; 4] = ["none", "minor", "major", "critical"];
const STATUSES: [&str; 3] = ["investigating", "identified", "monitoring"];
const QUICK_PICKS: [&str; 3] = ["15m", "30m", "1h"];
/// A maintenance's reminder picks (the config's default is added when it is not one of them).
const REMIND_PICKS: [&str; 4] = ["none", "15m", "1h", "1d"];
/// The fields an API message may name, for showing it next to its field.
const KNOWN: [&str; 15] = [
    "kind",
    "remind_before",
    "component_statuses",
    "scheduled_for",
    "scheduled_until",
    "title",
    "impact",
    "status",
    "components",
    "message",
    "body",
    "locale",
    "next_update",
    "next_update_at",
    "reason",
];

#[derive(Deserialize)]
pub struct ComposeQuery {
    incident: Option<String>,
    /// An incident template (id or name) whose fields fill the form (see [`super::templates`]).
    template: Option<String>,
}

/// The incident an update is composed for: (id, title, status).
async fn target(
    state: &AppState,
    id: Option<&str>,
) -> Result<Option<(String, String, String)>, ApiError> {
    let Some(id) = id.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    let ulid = ulid::Ulid::from_string(id).map_err(|_| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!("\"{id}\" is not an incident id"),
        )
    })?;
    let i = state.store.incident_summary(ulid).await?;
    Ok(Some((
        i.id.to_string(),
        i.title.as_str().to_owned(),
        i.status.as_str().to_owned(),
    )))
}

/// `GET /console/compose[?incident=ID]`.
pub async fn page(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    session: Option<Extension<SessionAuth>>,
    Query(q): Query<ComposeQuery>,
) -> Result<Response, ApiError> {
    let incident = target(&state, q.incident.as_deref()).await?;
    // "Start from template" without JavaScript: the template's fields, and their previews.
    let (f, previews) = match q.template.as_deref().filter(|t| !t.trim().is_empty()) {
        Some(key) => {
            let f = super::templates::fill_for_compose(&state, key).await?;
            let previews = previews_of(&state, &f).await;
            (f, Some(previews))
        }
        None => (Vec::new(), None),
    };
    Ok(form_page(
        &state,
        &caller,
        session.as_deref(),
        incident,
        &f,
        previews,
        None,
    )
    .await)
}

/// The values of the form as the template shows them again.
fn values(f: &[(String, String)]) -> Value {
    let mut m = Map::new();
    for (k, v) in f {
        if !m.contains_key(k) {
            m.insert(k.clone(), json!(v));
        }
    }
    let many = |name: &str| -> Vec<String> {
        f.iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect()
    };
    m.insert("components".into(), json!(many("components")));
    m.insert("preview".into(), json!(many("preview")));
    Value::from_serialize(&m)
}

/// The channels previewed: those ticked, or every active one on a fresh form.
fn previewed(state: &AppState, f: &[(String, String)]) -> Vec<String> {
    let active: Vec<String> = state
        .dispatcher
        .broadcast_targets()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    if field(f, "preview_set").is_none() {
        return active;
    }
    let ticked: Vec<&str> = f
        .iter()
        .filter(|(k, _)| k == "preview")
        .map(|(_, v)| v.as_str())
        .collect();
    active
        .into_iter()
        .filter(|c| ticked.contains(&c.as_str()))
        .collect()
}

// --- Component statuses (issue 13): each component's new status, set in the write. ---

/// The statuses a component may be given (the API's names).
const COMPONENT_STATUSES: [&str; 5] = [
    "operational",
    "degraded_performance",
    "partial_outage",
    "major_outage",
    "under_maintenance",
];

/// The form field holding a component's new status: `cs.NAME` (empty: unchanged).
const STATUS_OF: &str = "cs.";

/// The form's rows of component statuses: each component, its status now, the one chosen.
async fn status_rows(state: &AppState, f: &[(String, String)]) -> Vec<Value> {
    state
        .store
        .components()
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|c| {
            let name = c.name.as_str().to_owned();
            let chosen = field(f, &format!("{STATUS_OF}{name}"))
                .unwrap_or_default()
                .trim()
                .to_owned();
            context! { name => name, now => c.status.as_str(), chosen => chosen }
        })
        .collect()
}

/// The API's `component_statuses` from the form: each component given a new status.
fn status_request(f: &[(String, String)], req: &mut Map<String, serde_json::Value>) {
    let set: Vec<serde_json::Value> = f
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix(STATUS_OF)?, v.trim())))
        .filter(|(_, v)| !v.is_empty())
        .map(|(name, status)| json!({"component": name, "status": status}))
        .collect();
    if !set.is_empty() {
        req.insert("component_statuses".into(), serde_json::Value::Array(set));
    }
}

// --- end of component statuses ---

/// The compose form, with the previews and (after a refused write) the API's message.
async fn form_page(
    state: &AppState,
    caller: &Caller,
    session: Option<&SessionAuth>,
    incident: Option<(String, String, String)>,
    f: &[(String, String)],
    previews: Option<Vec<Value>>,
    error: Option<(String, String)>,
) -> Response {
    let components: Vec<String> = state
        .store
        .components()
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.name.as_str().to_owned())
        .collect();
    let ticked = previewed(state, f);
    let channels: Vec<Value> = state
        .dispatcher
        .broadcast_targets()
        .into_iter()
        .map(|(n, subs)| {
            let kind = state
                .dispatcher
                .channel(&n)
                .map(|c| c.kind.as_str().to_owned())
                .unwrap_or_default();
            context! { name => n.clone(), kind => kind, subscribers => subs, ticked => ticked.contains(&n) }
        })
        .collect();
    let previews = previews.unwrap_or_default();
    let languages: Vec<Value> = LANGUAGES
        .iter()
        .map(|(code, name)| context! { code => code, name => name })
        .collect();
    let (error_field, error) = match error {
        Some((f, e)) => (Some(f), Some(e)),
        None => (None, None),
    };
    let mut resp = super::page(
        state,
        "console/compose.html",
        me(caller, session),
        context! {
            incident => incident.map(|(id, title, status)| context! { id => id, title => title, status => status }),
            v => values(f),
            components => components,
            channels => channels,
            languages => languages,
            impacts => IMPACTS,
            statuses => STATUSES,
            picks => QUICK_PICKS,
            remind_picks => remind_picks(state),
            remind_default => remind_default(state),
            status_rows => status_rows(state, f).await,
            component_statuses => COMPONENT_STATUSES,
            zone => state.render.timezone.name(),
            previews => previews,
            error => error,
            error_field => error_field,
            approval => state.approval_reasons_for(&Principal(caller.actor.clone(), caller.role)).await,
            templates => super::templates::choices(state).await,
        },
    );
    if error_field.is_some() {
        *resp.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    }
    resp
}

/// The config's reminder for a new maintenance window, as the form writes it (`1h`, `none`).
fn remind_default(state: &AppState) -> String {
    crate::domain::Reminder::from_config(state.maintenance_remind_before).to_string()
}

/// The reminder picks: none, 15m, 1h, 1d, and the config's default if it is another.
fn remind_picks(state: &AppState) -> Vec<String> {
    let mut picks: Vec<String> = REMIND_PICKS.iter().map(|p| (*p).to_owned()).collect();
    let default = remind_default(state);
    if !picks.contains(&default) {
        picks.push(default);
    }
    picks
}

/// One preview per ticked channel and written language, each from the API's preview.
async fn previews_of(state: &AppState, f: &[(String, String)]) -> Vec<Value> {
    let channels = previewed(state, f);
    // The title and promise as typed (an update: its incident's title), so the preview is the
    // message as it will be sent, not a sample.
    let title = match filled(f, "incident") {
        Some(id) => target(state, Some(id))
            .await
            .ok()
            .flatten()
            .map(|(_, t, _)| t),
        None => filled(f, "title").map(str::to_owned),
    };
    let next_update = match (filled(f, "next_update"), filled(f, "next_update_at")) {
        (Some(d), None) => Some(d.to_owned()),
        (None, Some(at)) => {
            let now = state.dispatcher.now();
            crate::domain::next_local_time(at, state.render.timezone, now)
                .ok()
                .map(|due| format!("{}m", (due - now).num_minutes().max(1)))
        }
        _ => None,
    };
    let mut out = Vec::new();
    for (code, name) in LANGUAGES {
        let Some(text) = filled(f, &format!("msg_{code}")) else {
            continue;
        };
        for ch in &channels {
            let mut body = json!({"channel": ch, "message": text, "locale": code});
            if let Some(t) = &title {
                body["title"] = json!(t);
            }
            if let Some(n) = &next_update {
                body["next_update"] = json!(n);
            }
            out.push(preview_one(state, ch, name, text, body).await);
        }
    }
    out
}

async fn preview_one(
    state: &AppState,
    channel: &str,
    language: &str,
    text: &str,
    body: serde_json::Value,
) -> Value {
    let result = match serde_json::from_value(body) {
        Ok(b) => crate::api::preview::preview(State(state.clone()), ApiJson(b)).await,
        Err(e) => Err(ApiError::unprocessable(e.to_string())),
    };
    match result {
        Err(e) => context! { channel => channel, language => language, error => e.detail },
        Ok(axum::Json(p)) => {
            let n = p.parts.len();
            let parts: Vec<Value> = p
                .parts
                .iter()
                .zip(&p.part_lengths)
                .enumerate()
                .map(|(i, (text, len))| context! { n => i + 1, text => text, length => len })
                .collect();
            let ucs2 = p.encoding.as_deref().is_some_and(|e| e.contains("UCS-2"));
            let outside: String = if ucs2 {
                let mut seen: Vec<char> = Vec::new();
                for c in text.chars() {
                    if !crate::render::rules::is_gsm7(&c.to_string()) && !seen.contains(&c) {
                        seen.push(c);
                    }
                }
                seen.into_iter().take(10).collect()
            } else {
                String::new()
            };
            context! {
                channel => channel,
                language => language,
                kind => p.kind,
                subject => p.subject,
                parts => parts,
                threaded => n > 1,
                length => p.length,
                limit => p.limit,
                unit => p.unit,
                over => p.limit.is_some_and(|l| p.length > l),
                encoding => p.encoding,
                segments => p.segments,
                ucs2 => ucs2,
                outside => outside,
                policy => p.policy,
                samples => p.samples,
            }
        }
    }
}

/// `POST /console/preview[?fragment]`: the previews alone (for `console.js`), or — without
/// JavaScript, from the form's Preview button — the whole form again with them.
pub async fn preview(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    session: Option<Extension<SessionAuth>>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    let f = fields(&body);
    let previews = previews_of(&state, &f).await;
    if q.is_some_and(|q| q.split('&').any(|p| p == "fragment")) {
        return Ok(super::page(
            &state,
            "console/previews.html",
            me(&caller, session.as_deref()),
            context! { previews => previews },
        ));
    }
    let incident = target(&state, filled(&f, "incident")).await?;
    Ok(form_page(
        &state,
        &caller,
        session.as_deref(),
        incident,
        &f,
        Some(previews),
        None,
    )
    .await)
}

/// `POST /console/confirm`: before publishing, how many recipients on how many channels, and
/// whether a second person must approve; the form's values ride along to the real write.
pub async fn confirm(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    session: Option<Extension<SessionAuth>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let f = fields(&body);
    let incident = target(&state, filled(&f, "incident")).await?;
    let targets = state.dispatcher.broadcast_targets();
    let hidden: Vec<Value> = f
        .iter()
        .filter(|(k, _)| k != "csrf")
        .map(|(k, v)| context! { name => k, value => v })
        .collect();
    let action = match &incident {
        Some((id, _, _)) => format!("/console/incidents/{id}/updates"),
        None => "/console/incidents".to_owned(),
    };
    Ok(super::page(
        &state,
        "console/confirm.html",
        me(&caller, session.as_deref()),
        context! {
            hidden => hidden,
            action => action,
            title => incident.as_ref().map(|(_, t, _)| t.clone()).or_else(|| field(&f, "title").map(str::to_owned)),
            recipients => state.audience(&targets).await,
            channels => targets.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>(),
            approval => state.approval_reasons_for(&Principal(caller.actor.clone(), caller.role)).await,
            component_changes => f.iter().filter_map(|(k, v)| Some(format!("{} → {}", k.strip_prefix(STATUS_OF)?, v.trim()))).filter(|s| !s.ends_with("→ ")).collect::<Vec<_>>(),
            written_in => LANGUAGES.iter().filter(|(c, _)| filled(&f, &format!("msg_{c}")).is_some()).map(|(_, n)| *n).collect::<Vec<_>>(),
        },
    ))
}

/// The texts by language, and the promise, of a compose form.
fn common(f: &[(String, String)], req: &mut Map<String, serde_json::Value>) {
    let mut body = Map::new();
    for (code, _) in LANGUAGES {
        if let Some(t) = filled(f, &format!("msg_{code}")) {
            body.insert(code.to_owned(), json!(t));
        }
    }
    if !body.is_empty() {
        req.insert("body".into(), serde_json::Value::Object(body));
    }
    for key in ["next_update", "next_update_at", "status", "impact"] {
        if let Some(v) = filled(f, key) {
            req.insert(key.into(), json!(v));
        }
    }
    req.insert("draft".into(), json!(field(f, "action") == Some("draft")));
    status_request(f, req);
}

/// A `datetime-local` value (`2026-12-03T14:00`) read in the organisation's zone, as the
/// RFC 3339 instant the API takes; anything else is passed on as typed, for the API to explain.
fn local_instant(state: &AppState, v: &str) -> String {
    use chrono::TimeZone;
    chrono::NaiveDateTime::parse_from_str(v, "%Y-%m-%dT%H:%M")
        .ok()
        .and_then(|t| state.render.timezone.from_local_datetime(&t).single())
        .map_or_else(
            || v.to_owned(),
            |t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        )
}

/// After a write: the incident page, or — for a write held for approval — the dashboard.
fn after(a: Answer, id: Option<&str>) -> Response {
    if a.status == StatusCode::ACCEPTED {
        let approval = a.body["id"].as_str().unwrap_or_default().to_owned();
        return a.redirect(&format!("/console/?held={approval}"));
    }
    let id = id
        .map(str::to_owned)
        .or_else(|| a.body["id"].as_str().map(str::to_owned))
        .or_else(|| a.body["incident"]["id"].as_str().map(str::to_owned))
        .unwrap_or_default();
    let done = if a.body["update"]["draft"] == true || a.body["updates"][0]["draft"] == true {
        "draft"
    } else {
        "published"
    };
    a.redirect(&format!("/console/incidents/{id}?done={done}"))
}

/// `POST /console/incidents`: opens an incident through [`crate::api::incidents::create`].
pub async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Extension(who): Extension<Principal>,
    session: Option<Extension<SessionAuth>>,
    body: Bytes,
) -> Response {
    let f = fields(&body);
    let mut req = Map::new();
    req.insert(
        "title".into(),
        json!(field(&f, "title").unwrap_or_default()),
    );
    let components: Vec<&str> = f
        .iter()
        .filter(|(k, _)| k == "components")
        .map(|(_, v)| v.as_str())
        .collect();
    req.insert("components".into(), json!(components));
    if let Some(kind) = filled(&f, "kind") {
        req.insert("kind".into(), json!(kind));
    }
    for key in ["scheduled_for", "scheduled_until"] {
        if let Some(v) = filled(&f, key) {
            req.insert(key.into(), json!(local_instant(&state, v)));
        }
    }
    // The reminder belongs to a maintenance: the form shows it always (it works without
    // JavaScript), so for an incident it is left out.
    if filled(&f, "kind") == Some("maintenance") {
        if let Some(v) = filled(&f, "remind_before") {
            req.insert("remind_before".into(), json!(v));
        }
    }
    common(&f, &mut req);
    let result = match serde_json::from_value(serde_json::Value::Object(req)) {
        Ok(r) => {
            crate::api::incidents::create(State(state.clone()), Extension(who), ApiJson(r)).await
        }
        Err(e) => Err(ApiError::unprocessable(e.to_string())),
    };
    match result {
        Ok(resp) => after(answer(resp).await, None),
        Err(e) => {
            let field = field_of(&e, &KNOWN);
            let previews = previews_of(&state, &f).await;
            form_page(
                &state,
                &caller,
                session.as_deref(),
                None,
                &f,
                Some(previews),
                Some((field, e.detail)),
            )
            .await
        }
    }
}

/// `POST /console/incidents/{id}/updates`: posts an update through
/// [`crate::api::incidents::update`].
pub async fn update(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Extension(who): Extension<Principal>,
    session: Option<Extension<SessionAuth>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let incident = target(&state, Some(&id)).await?;
    let f = fields(&body);
    let mut req = Map::new();
    common(&f, &mut req);
    let result = match serde_json::from_value(serde_json::Value::Object(req)) {
        Ok(r) => {
            crate::api::incidents::update(
                State(state.clone()),
                Extension(who),
                Path(id.clone()),
                ApiJson(r),
            )
            .await
        }
        Err(e) => Err(ApiError::unprocessable(e.to_string())),
    };
    Ok(match result {
        Ok(resp) => after(answer(resp).await, Some(&id)),
        Err(e) => {
            let field = field_of(&e, &KNOWN);
            let previews = previews_of(&state, &f).await;
            form_page(
                &state,
                &caller,
                session.as_deref(),
                incident,
                &f,
                Some(previews),
                Some((field, e.detail)),
            )
            .await
        }
    })
}
