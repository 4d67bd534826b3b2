//! The incident templates page: every role sees the list; publishers and admins add, edit and
//! remove (with a confirmation first) through the API's handlers ([`crate::api::templates`]),
//! so the checks, messages and audit entries are the API's. The compose page applies a
//! template ([`template_fill`], [`choices`]).

use super::compose::LANGUAGES;
use super::{answer, field, field_of, fields, me};
use crate::api::authz::Caller;
use crate::api::extract::ApiJson;
use crate::api::session::SessionAuth;
use crate::api::templates::{NewTemplate, TemplateChange};
use crate::api::{ApiError, AppState, Principal};
use crate::domain::IncidentTemplate;
use crate::store::port::Components;
use crate::store::port::Templates;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::Extension;
use minijinja::{context, Value};
use serde::Deserialize;
use serde_json::json;
use std::collections::BTreeMap;

const IMPACTS: [&str; 4] = ["none", "minor", "major", "critical"];
const STATUSES: [&str; 3] = ["investigating", "identified", "monitoring"];
/// The fields an API message about a template may name.
const KNOWN: [&str; 6] = [
    "name",
    "title",
    "impact",
    "status",
    "components",
    "messages",
];

#[derive(Deserialize)]
pub struct PageQuery {
    /// The template whose values fill the form, to be edited.
    edit: Option<String>,
    /// The template to confirm the removal of.
    remove: Option<String>,
    /// What was just done (`added`, `changed`, `removed`).
    done: Option<String>,
}

/// A template as the form's fields: what the compose page and the edit form fill in.
pub fn template_fill(t: &IncidentTemplate) -> Vec<(String, String)> {
    let mut f = vec![
        ("template".to_owned(), t.id.to_string()),
        ("name".to_owned(), t.name.to_string()),
        ("title".to_owned(), t.title.as_str().to_owned()),
        ("impact".to_owned(), t.impact.as_str().to_owned()),
        ("status".to_owned(), t.status.as_str().to_owned()),
    ];
    for c in &t.components {
        f.push(("components".to_owned(), c.to_string()));
    }
    for (l, text) in t.messages.texts() {
        f.push((format!("msg_{l}"), text.clone()));
    }
    f
}

/// The templates a compose form offers: id, name and what applying it fills in (JSON, read by
/// `console.js` to apply it without a round trip).
pub async fn choices(state: &AppState) -> Vec<Value> {
    state
        .store
        .templates()
        .await
        .unwrap_or_default()
        .iter()
        .map(|t| {
            let fill = json!({
                "title": t.title.as_str(),
                "impact": t.impact.as_str(),
                "status": t.status.as_str(),
                "components": t.components,
                "messages": t.messages.texts(),
            });
            context! { id => t.id.to_string(), name => t.name.as_str(), fill => fill.to_string() }
        })
        .collect()
}

/// `GET /console/templates[?edit=ID|remove=ID]`.
pub async fn page(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    session: Option<Extension<SessionAuth>>,
    Query(q): Query<PageQuery>,
) -> Result<Response, ApiError> {
    let editing = match q.edit.as_deref().filter(|s| !s.trim().is_empty()) {
        Some(key) => Some(state.store.template_by_key(key).await?),
        None => None,
    };
    let removing = match q.remove.as_deref().filter(|s| !s.trim().is_empty()) {
        Some(key) => Some(state.store.template_by_key(key).await?),
        None => None,
    };
    let f = editing.as_ref().map(template_fill).unwrap_or_default();
    Ok(render(
        &state,
        &caller,
        session.as_deref(),
        Form {
            typed: &f,
            editing: editing.map(|t| t.id.to_string()),
            removing,
            done: q.done,
            error: None,
        },
    )
    .await)
}

/// The texts of the form, by language (blank ones included: an edit removes them).
fn texts(f: &[(String, String)]) -> BTreeMap<String, String> {
    LANGUAGES
        .iter()
        .map(|(code, _)| {
            (
                (*code).to_owned(),
                field(f, &format!("msg_{code}"))
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect()
}

fn components(f: &[(String, String)]) -> Vec<String> {
    f.iter()
        .filter(|(k, _)| k == "components")
        .map(|(_, v)| v.clone())
        .collect()
}

/// `POST /console/templates` → [`crate::api::templates::create`].
pub async fn add(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Extension(who): Extension<Principal>,
    session: Option<Extension<SessionAuth>>,
    body: Bytes,
) -> Response {
    let f = fields(&body);
    let req = NewTemplate {
        name: field(&f, "name").unwrap_or_default().to_owned(),
        title: field(&f, "title").unwrap_or_default().to_owned(),
        impact: field(&f, "impact").unwrap_or_default().to_owned(),
        status: field(&f, "status").unwrap_or_default().to_owned(),
        components: components(&f),
        messages: texts(&f)
            .into_iter()
            .filter(|(_, t)| !t.trim().is_empty())
            .collect(),
    };
    match crate::api::templates::create(State(state.clone()), Extension(who), ApiJson(req)).await {
        Ok(resp) => answer(resp).await.redirect("/console/templates?done=added"),
        Err(e) => refused(&state, &caller, session.as_deref(), &f, None, e).await,
    }
}

/// `POST /console/templates/{id}` → [`crate::api::templates::change`] with every field of the
/// form (a blank message removes that language).
pub async fn change(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Extension(who): Extension<Principal>,
    session: Option<Extension<SessionAuth>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let f = fields(&body);
    let req = TemplateChange {
        name: Some(field(&f, "name").unwrap_or_default().to_owned()),
        title: Some(field(&f, "title").unwrap_or_default().to_owned()),
        impact: Some(field(&f, "impact").unwrap_or_default().to_owned()),
        status: Some(field(&f, "status").unwrap_or_default().to_owned()),
        components: Some(components(&f)),
        messages: Some(texts(&f)),
    };
    match crate::api::templates::change(
        State(state.clone()),
        Extension(who),
        Path(id.clone()),
        ApiJson(req),
    )
    .await
    {
        Ok(resp) => answer(resp)
            .await
            .redirect("/console/templates?done=changed"),
        Err(e) => refused(&state, &caller, session.as_deref(), &f, Some(id), e).await,
    }
}

/// `POST /console/templates/{id}/remove` (the confirmation's button) →
/// [`crate::api::templates::remove`].
pub async fn remove(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let resp = crate::api::templates::remove(State(state), Path(id)).await?;
    Ok(answer(resp)
        .await
        .redirect("/console/templates?done=removed"))
}

async fn refused(
    state: &AppState,
    caller: &Caller,
    session: Option<&SessionAuth>,
    f: &[(String, String)],
    editing: Option<String>,
    e: ApiError,
) -> Response {
    let status = e.status;
    let mut resp = render(
        state,
        caller,
        session,
        Form {
            typed: f,
            editing,
            removing: None,
            done: None,
            error: Some(e),
        },
    )
    .await;
    *resp.status_mut() = status;
    resp
}

struct Form<'a> {
    typed: &'a [(String, String)],
    /// The id of the template the form edits (else it adds one).
    editing: Option<String>,
    removing: Option<IncidentTemplate>,
    done: Option<String>,
    error: Option<ApiError>,
}

async fn render(
    state: &AppState,
    caller: &Caller,
    session: Option<&SessionAuth>,
    form: Form<'_>,
) -> Response {
    let all = state.store.templates().await.unwrap_or_default();
    let rows: Vec<Value> = all
        .iter()
        .map(|t| {
            context! {
                id => t.id.to_string(),
                name => t.name.as_str(),
                title => t.title.as_str(),
                impact => t.impact.as_str(),
                status => t.status.as_str(),
                components => t.components.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
                texts => t.messages.texts().iter().map(|(l, x)| context! { locale => l.as_str(), text => x }).collect::<Vec<_>>(),
                updated => format!("{} by {}", super::when(state, t.updated_at), t.updated_by),
            }
        })
        .collect();
    let mut v = serde_json::Map::new();
    for (k, val) in form.typed {
        if k != "components" && k != "csrf" && !v.contains_key(k) {
            v.insert(k.clone(), json!(val));
        }
    }
    let ticked = components(form.typed);
    let component_list: Vec<Value> = state
        .store
        .components()
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|c| {
            let name = c.name.as_str().to_owned();
            context! { checked => ticked.contains(&name), name => name }
        })
        .collect();
    let (error, error_field) = match form.error {
        Some(e) => {
            let field = field_of(&e, &KNOWN);
            (Some(e.detail), Some(field))
        }
        None => (None, None),
    };
    let languages: Vec<Value> = LANGUAGES
        .iter()
        .map(|(code, name)| context! { code => code, name => name })
        .collect();
    let removing = form
        .removing
        .map(|t| context! { id => t.id.to_string(), name => t.name.as_str() });
    let editing_name = form
        .editing
        .as_deref()
        .and_then(|id| all.iter().find(|t| t.id.to_string() == id))
        .map(|t| t.name.to_string());
    super::page(
        state,
        "console/templates.html",
        me(caller, session),
        context! {
            templates => rows,
            v => Value::from_serialize(&v),
            editing => form.editing,
            editing_name => editing_name,
            removing => removing,
            done => form.done.filter(|d| ["added", "changed", "removed"].contains(&d.as_str())),
            components => component_list,
            impacts => IMPACTS,
            statuses => STATUSES,
            languages => languages,
            error => error,
            error_field => error_field,
        },
    )
}

/// The compose page's fields filled from template `key` (id or name), or the API's message.
pub async fn fill_for_compose(
    state: &AppState,
    key: &str,
) -> Result<Vec<(String, String)>, ApiError> {
    let t = state.store.template_by_key(key).await?;
    Ok(template_fill(&t)
        .into_iter()
        .filter(|(k, _)| k != "name")
        .collect())
}
