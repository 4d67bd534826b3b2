//! Probes, metrics and the public status summary: the only reads that need no token.

use super::openapi::PROBLEM;
use super::{ApiError, AppState};
use crate::domain::IncidentFilter;
use crate::store::port::{Components, Incidents, Outbox};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

/// Liveness: the process answers and its store can write. After a failed write to disk the
/// store refuses service until it has re-opened its data; this reports it (503 with the reason)
/// so a supervisor or load balancer sees the broken store.
#[utoipa::path(
    get,
    path = "/healthz",
    operation_id = "healthz",
    tag = "public",
    responses(
        (status = 200, description = "`ok`", body = String, content_type = "text/plain"),
        (status = 503, description = "The store cannot write to disk (the reason and since when)", body = super::error::Problem, content_type = PROBLEM),
    )
)]
pub async fn healthz(State(state): State<AppState>) -> Result<&'static str, ApiError> {
    match state.store.broken() {
        None => Ok("ok"),
        Some(b) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "the store cannot write to disk since {} ({}); it refuses reads and writes and retries by itself: free space in the data directory",
                b.since.to_rfc3339(),
                b.reason
            ),
        )),
    }
}

/// The readiness answer's shape, for the OpenAPI document.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct Readiness {
    /// Always `ready` (not ready is a 503 problem).
    pub status: String,
    pub channels: ReadyChannels,
}

/// Which configured channels run and which were skipped.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct ReadyChannels {
    /// Channels that send.
    pub active: Vec<String>,
    /// Channels configured but not running, with what to fix.
    pub skipped: Vec<SkippedChannel>,
}

/// A configured channel that does not run.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct SkippedChannel {
    pub name: String,
    /// Why, naming the environment variable (never its value).
    pub reason: String,
}

/// Readiness: the store answers and its flusher is alive. The body also names the channels that
/// are configured but not running (credentials missing or invalid, disabled) and why: they do
/// not make crier unready, since every other channel works, but an operator must see them.
#[utoipa::path(
    get,
    path = "/readyz",
    operation_id = "readyz",
    tag = "public",
    responses(
        (status = 200, description = "Ready, with the active and skipped channels", body = Readiness),
        (status = 503, description = "The store is not ready", body = super::error::Problem, content_type = PROBLEM),
    )
)]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    state.store.ready().await.map_err(|e| {
        tracing::error!(error = %e, "readiness check failed");
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "the store is not ready")
    })?;
    let skipped: Vec<Value> = state
        .skipped_channels
        .iter()
        .map(|(name, reason)| json!({ "name": name, "reason": reason }))
        .collect();
    Ok(Json(json!({
        "status": "ready",
        "channels": {
            "active": state.dispatcher.broadcast_targets().into_iter().map(|(n, _)| n).collect::<Vec<_>>(),
            "skipped": skipped,
        },
    })))
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
    let components = state.store.components().await?;
    let incidents = state
        .store
        .incidents(&IncidentFilter {
            open: Some(true),
            published_only: true,
            limit: 100,
            ..Default::default()
        })
        .await?;
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
    let mut body = String::new();
    // Only a backend with a group commit of its own (sled) has these.
    if let Some(f) = state.store.flush_stats() {
        body.push_str(&format!(
            "# HELP crier_store_syncs_total Group commits: one sled flush plus one fdatasync each.\n\
             # TYPE crier_store_syncs_total counter\n\
             crier_store_syncs_total {}\n\
             # HELP crier_store_synced_writes_total Writes acknowledged after a group commit.\n\
             # TYPE crier_store_synced_writes_total counter\n\
             crier_store_synced_writes_total {}\n",
            f.syncs, f.waiters
        ));
    }
    let (depth, oldest) = state.store.queue_depth().await.unwrap_or_default();
    let age = oldest
        .map(|t| (state.dispatcher.now() - t).num_milliseconds().max(0) as f64 / 1000.0)
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
