//! Components: list, and create-or-set status.

use super::extract::ApiJson;
use super::{ApiError, AppState};
use crate::domain::{Component, ComponentName, ComponentStatus};
use axum::extract::{Path, State};
use axum::Json;
use chrono::Utc;
use serde::Deserialize;

pub async fn list(State(state): State<AppState>) -> Result<Json<Vec<Component>>, ApiError> {
    Ok(Json(state.store.components()?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetComponent {
    status: String,
    group: Option<String>,
}

pub async fn set(
    State(state): State<AppState>,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<SetComponent>,
) -> Result<Json<Component>, ApiError> {
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
    Ok(Json(
        state
            .store
            .set_component(name, status, group, Utc::now())
            .await?,
    ))
}
