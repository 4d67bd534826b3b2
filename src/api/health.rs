//! Probes and the public status summary: the only reads that need no token.

use super::{ApiError, AppState};
use crate::store::IncidentFilter;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

/// Liveness: the process answers.
pub async fn healthz() -> &'static str {
    "ok"
}

/// Readiness: the store answers and its flusher is alive.
pub async fn readyz(State(state): State<AppState>) -> Result<&'static str, ApiError> {
    state.store.ready().await.map_err(|e| {
        tracing::error!(error = %e, "readiness check failed");
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "the store is not ready")
    })?;
    Ok("ready")
}

/// What a public status page shows: components and open, published incidents.
pub async fn public_status(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let components = state.store.components()?;
    let incidents = state.store.incidents(&IncidentFilter {
        open: Some(true),
        published_only: true,
        limit: 100,
        ..Default::default()
    })?;
    Ok(Json(
        json!({ "components": components, "incidents": incidents }),
    ))
}
