//! Delivery status of an incident: counts per channel and state, the failures with their
//! reasons, expansion progress; an SSE stream of the same until every delivery is final; and
//! requeueing dead deliveries.

use super::openapi::PROBLEM;
use super::{ApiError, AppState};
use crate::domain::{Delivery, DeliveryState};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::Json;
use chrono::Utc;
use futures_util::stream::{self, Stream};
use serde::Serialize;
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::time::Duration;
use ulid::Ulid;

/// One channel's counts.
#[derive(Serialize, utoipa::ToSchema, Default, Debug, Clone, PartialEq, Eq)]
pub struct ChannelCounts {
    pub total: usize,
    pub pending: usize,
    pub in_flight: usize,
    pub delivered: usize,
    pub dead: usize,
    pub rejected: usize,
    /// Pending deliveries that already failed at least once.
    pub retrying: usize,
    /// Broadcasts of this channel still being expanded into deliveries.
    pub expanding: usize,
    /// Delivered deliveries whose provider later confirmed the handset got it (status callback).
    pub confirmed: usize,
    /// Delivered deliveries the provider later reported as undelivered or failed.
    pub undelivered: usize,
}

/// A delivery that failed (dead, rejected, or retrying).
#[derive(Serialize, utoipa::ToSchema, Debug, Clone)]
pub struct Failure {
    pub id: Ulid,
    pub channel: String,
    pub recipient: String,
    pub state: DeliveryState,
    pub attempts: u32,
    pub reason: String,
}

/// The status document.
#[derive(Serialize, Debug, Clone, utoipa::ToSchema)]
#[schema(as = DeliveryStatus)]
pub struct Status {
    pub incident: Ulid,
    pub channels: BTreeMap<String, ChannelCounts>,
    /// Every delivery is final and every broadcast expanded.
    pub complete: bool,
    pub failures: Vec<Failure>,
}

/// The most failures listed in one answer.
const MAX_FAILURES: usize = 100;

fn status_of(state: &AppState, id: Ulid) -> Result<Status, ApiError> {
    state.store.incident_summary(id)?;
    let mut channels: BTreeMap<String, ChannelCounts> = BTreeMap::new();
    for b in state.store.broadcasts_of(id)? {
        let c = channels.entry(b.channel.clone()).or_default();
        if !b.done {
            c.expanding += 1;
        }
    }
    let mut failures = Vec::new();
    state.store.for_each_delivery(id, |d| {
        let c = channels.entry(d.channel.clone()).or_default();
        c.total += 1;
        match d.state {
            DeliveryState::Pending => {
                c.pending += 1;
                if d.last_error.is_some() {
                    c.retrying += 1;
                }
            }
            DeliveryState::InFlight => c.in_flight += 1,
            DeliveryState::Delivered => {
                c.delivered += 1;
                match d.provider_status.as_deref() {
                    Some("delivered" | "read") => c.confirmed += 1,
                    Some("undelivered" | "failed" | "canceled") => c.undelivered += 1,
                    _ => {}
                }
            }
            DeliveryState::Dead => c.dead += 1,
            DeliveryState::Rejected => c.rejected += 1,
        }
        if failures.len() < MAX_FAILURES {
            if let Some(f) = failure(&d) {
                failures.push(f);
            }
        }
    })?;
    let complete = channels
        .values()
        .all(|c| c.expanding == 0 && c.pending == 0 && c.in_flight == 0);
    Ok(Status {
        incident: id,
        channels,
        complete,
        failures,
    })
}

/// [`status_of`] off the async workers: it reads every delivery of the incident, which for a
/// big fan-out takes long enough to stall other requests and the dispatcher's sends.
async fn status_blocking(state: &AppState, id: Ulid) -> Result<Status, ApiError> {
    let st = state.clone();
    tokio::task::spawn_blocking(move || status_of(&st, id))
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("the status scan failed: {e}"),
            )
        })?
}

fn failure(d: &Delivery) -> Option<Failure> {
    if d.state == DeliveryState::Delivered && d.provider_status.is_none() {
        return None;
    }
    if let (Some(status @ ("undelivered" | "failed" | "canceled")), true) = (
        d.provider_status.as_deref(),
        d.state == DeliveryState::Delivered,
    ) {
        return Some(Failure {
            id: d.id,
            channel: d.channel.clone(),
            recipient: d.target.recipient().to_owned(),
            state: d.state,
            attempts: d.attempts,
            reason: match d.provider_error {
                Some(code) => format!("provider reported {status} (error {code})"),
                None => format!("provider reported {status}"),
            },
        });
    }
    Some(Failure {
        id: d.id,
        channel: d.channel.clone(),
        recipient: d.target.recipient().to_owned(),
        state: d.state,
        attempts: d.attempts,
        reason: d.last_error.clone()?,
    })
}

fn parse_id(id: &str) -> Result<Ulid, ApiError> {
    Ulid::from_string(id.trim()).map_err(|_| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!("\"{id}\" is not an incident id; ids are 26-character ULIDs"),
        )
    })
}

/// An incident's delivery status: counts per channel and state, failures, expansion progress.
#[utoipa::path(
    get,
    path = "/api/v1/incidents/{id}/deliveries",
    operation_id = "deliveryStatus",
    tag = "deliveries",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The incident's id (a ULID)")),
    responses(
        (status = 200, description = "The delivery status", body = Status),
        (status = 401, description = "No valid bearer token", body = super::error::Problem, content_type = PROBLEM),
        (status = 404, description = "No such incident", body = super::error::Problem, content_type = PROBLEM),
    )
)]
pub async fn status(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Status>, ApiError> {
    Ok(Json(status_blocking(&state, parse_id(&id)?).await?))
}

/// `text/event-stream`: a `status` event every half second while anything changes, ending with
/// the first complete status.
#[utoipa::path(
    get,
    path = "/api/v1/incidents/{id}/deliveries/stream",
    operation_id = "deliveryStream",
    tag = "deliveries",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The incident's id (a ULID)")),
    responses(
        (status = 200, description = "Server-sent events, one `status` event carrying the delivery status as JSON every half second until complete", content_type = "text/event-stream", body = StatusEvent),
        (status = 401, description = "No valid bearer token", body = super::error::Problem, content_type = PROBLEM),
        (status = 404, description = "No such incident", body = super::error::Problem, content_type = PROBLEM),
    )
)]
pub async fn stream(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let id = parse_id(&id)?;
    status_blocking(&state, id).await?;
    let s = stream::unfold((state, false), move |(state, done)| async move {
        if done {
            return None;
        }
        let event = match status_blocking(&state, id).await {
            Ok(st) => {
                let complete = st.complete;
                let ev = Event::default()
                    .event("status")
                    .json_data(&st)
                    .unwrap_or_else(|_| Event::default().event("error"));
                if !complete {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                return Some((Ok(ev), (state, complete)));
            }
            Err(e) => Event::default().event("error").data(e.detail),
        };
        Some((Ok(event), (state, true)))
    });
    Ok(Sse::new(s).keep_alive(KeepAlive::default()))
}

/// One server-sent event of the delivery stream.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // the shape of `stream`'s events, for the OpenAPI document
pub struct StatusEvent {
    /// `status`, or `error` when the status could not be read.
    pub event: String,
    /// A `DeliveryStatus` as JSON, or the error's detail.
    pub data: String,
}

/// How many dead deliveries were requeued.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // the shape of `retry`'s answer, for the OpenAPI document
pub struct Requeued {
    pub requeued: usize,
}

/// Requeues an incident's dead deliveries.
#[utoipa::path(
    post,
    path = "/api/v1/incidents/{id}/deliveries/retry",
    operation_id = "retryDead",
    tag = "deliveries",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The incident's id (a ULID)")),
    responses(
        (status = 200, description = "Requeued", body = Requeued),
        (status = 401, description = "No valid bearer token", body = super::error::Problem, content_type = PROBLEM),
        (status = 404, description = "No such incident", body = super::error::Problem, content_type = PROBLEM),
    )
)]
pub async fn retry(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let id = parse_id(&id)?;
    state.store.incident_summary(id)?;
    let channels = state.store.requeue_dead(id, Utc::now()).await?;
    let mut seen: Vec<&String> = channels.iter().collect();
    seen.sort();
    seen.dedup();
    for c in seen {
        state.dispatcher.kick_channel(c);
    }
    Ok(Json(serde_json::json!({ "requeued": channels.len() })))
}
