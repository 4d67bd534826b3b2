//! Probes, metrics and the public status summary: the only reads that need no token.

use super::openapi::PROBLEM;
use super::{ApiError, AppState};
use crate::store::IncidentFilter;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

/// Liveness: the process answers.
#[utoipa::path(
    get,
    path = "/healthz",
    operation_id = "healthz",
    tag = "public",
    responses((status = 200, description = "`ok`", body = String, content_type = "text/plain"))
)]
pub async fn healthz() -> &'static str {
    "ok"
}

/// Readiness: the store answers and its flusher is alive.
#[utoipa::path(
    get,
    path = "/readyz",
    operation_id = "readyz",
    tag = "public",
    responses(
        (status = 200, description = "`ready`", body = String, content_type = "text/plain"),
        (status = 503, description = "The store is not ready", body = super::error::Problem, content_type = PROBLEM),
    )
)]
pub async fn readyz(State(state): State<AppState>) -> Result<&'static str, ApiError> {
    state.store.ready().await.map_err(|e| {
        tracing::error!(error = %e, "readiness check failed");
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "the store is not ready")
    })?;
    Ok("ready")
}

/// The public status summary's shape, for the OpenAPI document.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct PublicStatus {
    pub components: Vec<crate::domain::Component>,
    /// Open, published incidents (at most 100).
    pub incidents: Vec<crate::domain::Incident>,
}

/// What a public status page shows: components and open, published incidents.
#[utoipa::path(
    get,
    path = "/api/v1/status",
    operation_id = "publicStatus",
    tag = "public",
    responses(
        (status = 200, description = "Components and open, published incidents", body = PublicStatus),
    )
)]
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

/// Prometheus text exposition of the store's group-commit counters (delivery metrics join them
/// with the delivery engine). Aggregate counters only: nothing about incidents or people.
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics",
    tag = "public",
    responses((status = 200, description = "Prometheus text exposition", body = String, content_type = "text/plain; version=0.0.4"))
)]
pub async fn metrics(
    State(state): State<AppState>,
) -> ([(axum::http::HeaderName, &'static str); 1], String) {
    let f = state.store.flush_stats();
    let body = format!(
        "# HELP crier_store_syncs_total Group commits: one sled flush plus one fdatasync each.\n\
         # TYPE crier_store_syncs_total counter\n\
         crier_store_syncs_total {}\n\
         # HELP crier_store_synced_writes_total Writes acknowledged after a group commit.\n\
         # TYPE crier_store_synced_writes_total counter\n\
         crier_store_synced_writes_total {}\n",
        f.syncs, f.waiters
    );
    let mut body = body;
    let (depth, oldest) = state.store.queue_depth();
    let age = oldest
        .map(|t| (chrono::Utc::now() - t).num_milliseconds().max(0) as f64 / 1000.0)
        .unwrap_or(0.0);
    body.push_str(&format!(
        "# HELP crier_queue_depth Deliveries waiting in the due-index (pending and retrying).\n\
         # TYPE crier_queue_depth gauge\n\
         crier_queue_depth {depth}\n\
         # HELP crier_oldest_pending_seconds How long the oldest due delivery has been due.\n\
         # TYPE crier_oldest_pending_seconds gauge\n\
         crier_oldest_pending_seconds {age}\n"
    ));
    state.dispatcher.metrics().render(&mut body);
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        body,
    )
}
