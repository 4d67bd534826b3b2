//! Incident templates: canned titles, impacts, statuses, components and messages per language
//! that staff apply when composing (Statuspage's "incident templates"). Every role reads them;
//! publishers and admins create, edit and remove them (docs/SECURITY.md). The console's
//! templates page and the CLI's `crier templates` call these handlers / this API.

use super::authz::{noted, AuditNote};
use super::extract::ApiJson;
use super::openapi::PROBLEM;
use super::{ApiError, AppState, Principal};
use crate::domain::{ComponentName, DomainError, IncidentTemplate, Locale, TemplateFields};
use crate::store::port::Components;
use crate::store::port::Templates;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The languages a template's messages may be in: those crier ships templates for and the
/// console offers (en, fi, sv).
pub fn languages() -> Vec<Locale> {
    crate::render::i18n::SHIPPED
        .iter()
        .filter_map(|l| Locale::parse(l).ok())
        .collect()
}

/// A new template. The CLI (`crier templates add`) sends this type too.
#[derive(Debug, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"name": "Check-in slow", "title": "Check-in delays at Helsinki Airport", "impact": "major", "status": "investigating", "components": ["Check-in"], "messages": {"en": "Check-in is slower than usual; we are investigating.", "fi": "Lähtöselvitys on tavallista hitaampi; selvitämme syytä."}})))]
pub struct NewTemplate {
    /// Unique (in any case), one line of at most 80 characters.
    pub name: String,
    #[schema(value_type = crate::domain::Title)]
    pub title: String,
    #[schema(value_type = crate::domain::Impact)]
    pub impact: String,
    /// investigating, identified or monitoring.
    #[schema(value_type = crate::domain::Status)]
    pub status: String,
    /// Names of existing components.
    #[serde(default)]
    #[schema(value_type = Vec<crate::domain::ComponentName>)]
    pub components: Vec<String>,
    /// The message by language (en, fi, sv), at least one; each follows the rules of an
    /// update's message.
    #[schema(value_type = BTreeMap<String, String>)]
    pub messages: BTreeMap<String, String>,
}

/// A change to a template: the fields given are replaced, the rest kept. In `messages` each
/// language given is set, and an empty text removes that language. The CLI (`crier templates
/// edit`) sends this type too.
#[derive(Debug, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"impact": "critical", "messages": {"sv": "Incheckningen är långsam."}})))]
pub struct TemplateChange {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<crate::domain::Title>)]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<crate::domain::Impact>)]
    pub impact: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<crate::domain::Status>)]
    pub status: Option<String>,
    /// The new component list (`[]`: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<crate::domain::ComponentName>>)]
    pub components: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<BTreeMap<String, String>>)]
    pub messages: Option<BTreeMap<String, String>>,
}

impl TemplateChange {
    fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.title.is_none()
            && self.impact.is_none()
            && self.status.is_none()
            && self.components.is_none()
            && self.messages.is_none()
    }

    /// `fields` with this change applied.
    pub fn apply(self, mut fields: TemplateFields) -> TemplateFields {
        let TemplateChange {
            name,
            title,
            impact,
            status,
            components,
            messages,
        } = self;
        for (slot, v) in [
            (&mut fields.name, name),
            (&mut fields.title, title),
            (&mut fields.impact, impact),
            (&mut fields.status, status),
        ] {
            if let Some(v) = v {
                *slot = v;
            }
        }
        if let Some(c) = components {
            fields.components = c;
        }
        for (tag, text) in messages.unwrap_or_default() {
            // The stored tags are canonical; a change may spell one in another case.
            let canonical = Locale::parse(&tag).map_or_else(|_| tag.clone(), |l| l.to_string());
            fields.messages.remove(&canonical);
            if !text.trim().is_empty() {
                fields.messages.insert(tag, text);
            }
        }
        fields
    }
}

impl From<NewTemplate> for TemplateFields {
    fn from(n: NewTemplate) -> Self {
        TemplateFields {
            name: n.name,
            title: n.title,
            impact: n.impact,
            status: n.status,
            components: n.components,
            messages: n.messages,
        }
    }
}

/// Validates `fields` and checks that its components exist.
async fn content(
    state: &AppState,
    fields: TemplateFields,
) -> Result<crate::domain::TemplateContent, ApiError> {
    let c = fields.validate(&languages())?;
    state.store.check_components(&c.components).await?;
    Ok(c)
}

fn note(target: &IncidentTemplate, summary: String) -> AuditNote {
    AuditNote {
        target: Some(format!("template {}", target.id)),
        summary,
        ..Default::default()
    }
}

/// `GET /api/v1/templates`
#[utoipa::path(
    get,
    path = "/api/v1/templates",
    operation_id = "listTemplates",
    tag = "templates",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every template, by name", body = Vec<IncidentTemplate>),
        (status = 401, description = "No valid bearer token", body = super::error::Problem, content_type = PROBLEM),
    )
)]
pub async fn list(State(state): State<AppState>) -> Result<Json<Vec<IncidentTemplate>>, ApiError> {
    Ok(Json(state.store.templates().await?))
}

/// `GET /api/v1/templates/{key}`
#[utoipa::path(
    get,
    path = "/api/v1/templates/{key}",
    operation_id = "showTemplate",
    tag = "templates",
    security(("bearer" = [])),
    params(("key" = String, Path, description = "The template's id or its name (in any case)")),
    responses(
        (status = 200, description = "The template", body = IncidentTemplate),
        (status = 401, description = "No valid bearer token", body = super::error::Problem, content_type = PROBLEM),
        (status = 404, description = "No such template", body = super::error::Problem, content_type = PROBLEM),
    )
)]
pub async fn show(
    State(state): State<AppState>,
    Path(key): Path<String>,
) -> Result<Json<IncidentTemplate>, ApiError> {
    Ok(Json(state.store.template_by_key(&key).await?))
}

/// `POST /api/v1/templates`
#[utoipa::path(
    post,
    path = "/api/v1/templates",
    operation_id = "createTemplate",
    tag = "templates",
    security(("bearer" = [])),
    request_body = NewTemplate,
    responses(
        (status = 201, description = "Created", body = IncidentTemplate, links(
            ("show" = (operation_id = "showTemplate", parameters(("key" = "$response.body#/id")))),
            ("change" = (operation_id = "changeTemplate", parameters(("key" = "$response.body#/id")))),
            ("remove" = (operation_id = "removeTemplate", parameters(("key" = "$response.body#/id")))),
        )),
        (status = 400, description = "The body is not JSON", body = super::error::Problem, content_type = PROBLEM),
        (status = 401, description = "No valid bearer token", body = super::error::Problem, content_type = PROBLEM),
        (status = 403, description = "Not a publisher or admin", body = super::error::Problem, content_type = PROBLEM),
        (status = 409, description = "A template of that name exists", body = super::error::Problem, content_type = PROBLEM),
        (status = 413, description = "The body is too large", body = super::error::Problem, content_type = PROBLEM),
        (status = 415, description = "Not `Content-Type: application/json`", body = super::error::Problem, content_type = PROBLEM),
        (status = 422, description = "A field is invalid (name, title, impact, status, components, messages)", body = super::error::Problem, content_type = PROBLEM),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    ApiJson(req): ApiJson<NewTemplate>,
) -> Result<Response, ApiError> {
    let c = content(&state, req.into()).await?;
    let tpl = IncidentTemplate::new(c, &who.0, state.dispatcher.now());
    state.store.put_template(&tpl).await?;
    let n = note(&tpl, tpl.summary());
    Ok(noted((StatusCode::CREATED, Json(tpl)), n))
}

/// `PATCH /api/v1/templates/{key}`
#[utoipa::path(
    patch,
    path = "/api/v1/templates/{key}",
    operation_id = "changeTemplate",
    tag = "templates",
    security(("bearer" = [])),
    params(("key" = String, Path, description = "The template's id or its name (in any case)")),
    request_body = TemplateChange,
    responses(
        (status = 200, description = "The changed template", body = IncidentTemplate),
        (status = 400, description = "The body is not JSON", body = super::error::Problem, content_type = PROBLEM),
        (status = 401, description = "No valid bearer token", body = super::error::Problem, content_type = PROBLEM),
        (status = 403, description = "Not a publisher or admin", body = super::error::Problem, content_type = PROBLEM),
        (status = 404, description = "No such template", body = super::error::Problem, content_type = PROBLEM),
        (status = 409, description = "Another template has that name", body = super::error::Problem, content_type = PROBLEM),
        (status = 413, description = "The body is too large", body = super::error::Problem, content_type = PROBLEM),
        (status = 415, description = "Not `Content-Type: application/json`", body = super::error::Problem, content_type = PROBLEM),
        (status = 422, description = "Nothing to change, or a field is invalid", body = super::error::Problem, content_type = PROBLEM),
    )
)]
pub async fn change(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(key): Path<String>,
    ApiJson(req): ApiJson<TemplateChange>,
) -> Result<Response, ApiError> {
    if req.is_empty() {
        return Err(ApiError::unprocessable(
            "nothing to change: give at least one of name, title, impact, status, components, messages",
        ));
    }
    if let Some(m) = &req.messages {
        // Every language named must be a configured one, even one whose text removes it.
        let named = m.keys().map(|tag| (tag.clone(), "-".to_owned())).collect();
        crate::domain::parse_messages(named, &languages())?;
    }
    let current = state.store.template_by_key(&key).await?;
    let now = state.dispatcher.now();
    // The components, read before the change (which cannot wait on the store): none is ever
    // removed, so each that exists now exists when the change is applied.
    let known: Vec<ComponentName> = state
        .store
        .components()
        .await?
        .into_iter()
        .map(|c| c.name)
        .collect();
    // Applied to the stored template under the store's lock, so two edits never undo each other.
    let (before, after) = state
        .store
        .change_template(current.id, |t| {
            let c = req.apply(t.fields()).validate(&languages())?;
            if let Some(n) = c.components.iter().find(|n| !known.contains(n)) {
                return Err(DomainError::UnknownComponent(n.to_string()).into());
            }
            Ok(t.edited(c, &who.0, now))
        })
        .await?;
    let n = note(&after, IncidentTemplate::changes(&before, &after));
    Ok(noted(Json(after), n))
}

/// `DELETE /api/v1/templates/{key}`
#[utoipa::path(
    delete,
    path = "/api/v1/templates/{key}",
    operation_id = "removeTemplate",
    tag = "templates",
    security(("bearer" = [])),
    params(("key" = String, Path, description = "The template's id or its name (in any case)")),
    responses(
        (status = 200, description = "The removed template", body = IncidentTemplate),
        (status = 401, description = "No valid bearer token", body = super::error::Problem, content_type = PROBLEM),
        (status = 403, description = "Not a publisher or admin", body = super::error::Problem, content_type = PROBLEM),
        (status = 404, description = "No such template", body = super::error::Problem, content_type = PROBLEM),
    )
)]
pub async fn remove(
    State(state): State<AppState>,
    Path(key): Path<String>,
) -> Result<Response, ApiError> {
    let current = state.store.template_by_key(&key).await?;
    let removed = state.store.remove_template(current.id).await?;
    let n = note(&removed, format!("{} removed", removed.summary()));
    Ok(noted(Json(removed), n))
}
