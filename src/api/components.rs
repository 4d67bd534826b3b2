//! Components: list, and create-or-set status.

use super::extract::ApiJson;
use super::openapi::PROBLEM;
use super::{ApiError, AppState};
use crate::domain::{Component, ComponentName, ComponentStatus};
use crate::store::port::Components;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

/// Lists the components with their current status.
#[utoipa::path(
    get,
    path = "/api/v1/components",
    operation_id = "listComponents",
    tag = "components",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The components", body = Vec<Component>),
        (status = 401, description = "No valid bearer token", body = super::error::Problem, content_type = PROBLEM),
    )
)]
pub async fn list(State(state): State<AppState>) -> Result<Json<Vec<Component>>, ApiError> {
    Ok(Json(state.store.components().await?))
}

/// A component's status (and optional group).
#[derive(Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"status": "degraded_performance", "group": "Airport"})))]
pub struct SetComponent {
    #[schema(value_type = ComponentStatus)]
    pub status: String,
    /// A group name of 1-64 characters.
    #[schema(min_length = 1, max_length = 64, pattern = r"\S")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

/// Creates a component or sets its status.
#[utoipa::path(
    put,
    path = "/api/v1/components/{name}",
    operation_id = "setComponent",
    tag = "components",
    security(("bearer" = [])),
    params(("name" = ComponentName, Path, description = "The component's name")),
    request_body = SetComponent,
    responses(
        (status = 200, description = "The component as it now stands", body = Component),
        (status = 400, description = "The body is not JSON", body = super::error::Problem, content_type = PROBLEM),
        (status = 413, description = "The body is too large", body = super::error::Problem, content_type = PROBLEM),
        (status = 415, description = "Not `Content-Type: application/json`", body = super::error::Problem, content_type = PROBLEM),
        (status = 401, description = "No valid bearer token", body = super::error::Problem, content_type = PROBLEM),
        (status = 422, description = "The name or a field is invalid", body = super::error::Problem, content_type = PROBLEM),
    )
)]
pub async fn set(
    State(state): State<AppState>,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<SetComponent>,
) -> Result<Response, ApiError> {
    let name = ComponentName::parse(&name)?;
    let status = ComponentStatus::parse(&body.status)?;
    let group = match body.group {
        Some(g) if g.trim().is_empty() || g.chars().count() > 64 => {
            return Err(ApiError::unprocessable(
                "group: give a group name of 1-64 characters, or leave it out",
            ))
        }
        g => g.map(|g| g.trim().to_owned()),
    };
    if let Some(g) = &group {
        crate::domain::check_line("group", g)?;
    }
    // The store writes the audit entry with the component.
    crate::store::audit::arm();
    let after = state
        .store
        .set_component(name, status, group, state.dispatcher.now())
        .await?;
    Ok(Json(after).into_response())
}

#[cfg(test)]
mod wire_tests {
    use super::*;
    use serde_json::json;

    /// The CLI sends this struct: what it serialises, the API reads back unchanged
    /// (`deny_unknown_fields`), and an absent group stays absent.
    #[test]
    fn set_component_round_trips() {
        for sent in [
            json!({"status": "degraded_performance", "group": "Airport"}),
            json!({"status": "operational"}),
        ] {
            let req: SetComponent = serde_json::from_value(sent.clone()).unwrap();
            assert_eq!(serde_json::to_value(&req).unwrap(), sent);
        }
    }
}
