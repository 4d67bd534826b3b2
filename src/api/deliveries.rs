//! Delivery status of an incident: counts per channel and state, the failures with their
//! reasons, expansion progress; an SSE stream of the same until every delivery is final; and
//! requeueing dead deliveries.

use super::openapi::PROBLEM;
use super::{ApiError, AppState, Principal};
use crate::domain::{Delivery, DeliveryState};
use crate::store::port::{Incidents, Outbox};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::{Extension, Json};
use chrono::Utc;
use futures_util::stream::{self, Stream};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::time::Duration;
use ulid::Ulid;

/// One channel's counts. `pending`, `retrying`, `in_flight`, `delivered`, `dead` and `rejected`
/// partition `total`: each delivery is counted in exactly one of them.
#[derive(Serialize, Deserialize, utoipa::ToSchema, Default, Debug, Clone, PartialEq, Eq)]
pub struct ChannelCounts {
    pub total: usize,
    /// Waiting for their first attempt.
    pub pending: usize,
    pub in_flight: usize,
    pub delivered: usize,
    pub dead: usize,
    pub rejected: usize,
    /// Failed at least once and waiting for their next attempt.
    pub retrying: usize,
    /// Broadcasts of this channel still being expanded into deliveries.
    pub expanding: usize,
    /// Delivered deliveries whose provider later confirmed the handset got it (status callback).
    pub confirmed: usize,
    /// Delivered deliveries the provider later reported as undelivered or failed.
    pub undelivered: usize,
}

impl ChannelCounts {
    /// Counts one delivery: in `total` and in exactly one state.
    pub fn add(&mut self, d: &Delivery) {
        self.total += 1;
        match d.state {
            DeliveryState::Pending if d.last_error.is_some() => self.retrying += 1,
            DeliveryState::Pending => self.pending += 1,
            DeliveryState::InFlight => self.in_flight += 1,
            DeliveryState::Delivered => {
                self.delivered += 1;
                match d.provider_status.as_deref() {
                    Some("delivered" | "read") => self.confirmed += 1,
                    Some("undelivered" | "failed" | "canceled") => self.undelivered += 1,
                    _ => {}
                }
            }
            DeliveryState::Dead => self.dead += 1,
            DeliveryState::Rejected => self.rejected += 1,
        }
    }

    /// Every delivery has reached a final state and nothing is left to expand.
    pub fn is_final(&self) -> bool {
        self.expanding == 0 && self.pending == 0 && self.retrying == 0 && self.in_flight == 0
    }
}

/// A delivery that failed (dead, rejected, or retrying).
#[derive(Serialize, Deserialize, utoipa::ToSchema, Debug, Clone)]
pub struct Failure {
    pub id: Ulid,
    pub channel: String,
    pub recipient: String,
    pub state: DeliveryState,
    pub attempts: u32,
    pub reason: String,
    /// When a retrying delivery's next attempt is due (absent once it is final).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<chrono::DateTime<Utc>>,
}

/// The status document; the CLI reads it as this type too (`crier deliveries`).
#[derive(Serialize, Deserialize, Debug, Clone, utoipa::ToSchema)]
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

async fn status_of(state: &AppState, id: Ulid) -> Result<Status, ApiError> {
    state.store.incident_summary(id).await?;
    let mut channels: BTreeMap<String, ChannelCounts> = BTreeMap::new();
    for b in state.store.broadcasts_of(id).await? {
        let c = channels.entry(b.channel.clone()).or_default();
        if !b.done {
            c.expanding += 1;
        }
    }
    let mut failures = Vec::new();
    state
        .store
        .for_each_delivery(id, |d| {
            channels.entry(d.channel.clone()).or_default().add(&d);
            if failures.len() < MAX_FAILURES {
                if let Some(f) = failure(&d) {
                    failures.push(f);
                }
            }
        })
        .await?;
    let complete = channels.values().all(ChannelCounts::is_final);
    Ok(Status {
        incident: id,
        channels,
        complete,
        failures,
    })
}

/// [`status_of`] as `who` may see it. It reads every delivery of the incident, a page at a
/// time: for a big fan-out that takes long enough to stall other requests and the dispatcher's
/// sends, so the store reads each page off the async workers (see `Outbox::deliveries_page`).
/// Below the publisher role, subscribers' addresses are hidden (docs/SECURITY.md).
async fn status_for(state: &AppState, id: Ulid, who: &Principal) -> Result<Status, ApiError> {
    let mut status = status_of(state, id).await?;
    if who.1 < crate::domain::Role::Publisher {
        for f in &mut status.failures {
            if f.recipient != "endpoint" {
                f.recipient = HIDDEN.to_owned();
            }
        }
    }
    Ok(status)
}

/// What a viewer or responder sees instead of a subscriber's address.
pub const HIDDEN: &str = "(a subscriber: addresses are shown to publishers and admins)";

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
            next_attempt_at: None,
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
        next_attempt_at: (d.state == DeliveryState::Pending).then_some(d.next_at),
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
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Json<Status>, ApiError> {
    Ok(Json(status_for(&state, parse_id(&id)?, &who).await?))
}

/// `text/event-stream`: a `status` event every half second while anything changes, ending with
/// the first complete status, or when the server shuts down (a client that still wants to
/// watch reconnects to the restarted server).
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
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let id = parse_id(&id)?;
    status_for(&state, id, &who).await?;
    let s = stream::unfold((state, false), move |(state, done)| {
        let who = who.clone();
        async move {
            if done || *state.closing.borrow() {
                return None;
            }
            let event = match status_for(&state, id, &who).await {
                Ok(st) => {
                    let complete = st.complete;
                    let ev = Event::default()
                        .event("status")
                        .json_data(&st)
                        .unwrap_or_else(|_| Event::default().event("error"));
                    // Shutting down (or the server gone): this event is the last.
                    let closed = !complete && !next_look(&state).await;
                    return Some((Ok(ev), (state, complete || closed)));
                }
                Err(e) => Event::default().event("error").data(e.detail),
            };
            Some((Ok(event), (state, true)))
        }
    });
    Ok(Sse::new(s).keep_alive(KeepAlive::default()))
}

/// How often a delivery stream (this API's and the console's) reads the deliveries again.
pub const LOOK_EVERY: Duration = Duration::from_millis(500);

/// Waits for a delivery stream's next look at the deliveries: `true` after [`LOOK_EVERY`],
/// `false` at once when the server is shutting down (or gone), and the stream is to end.
pub async fn next_look(state: &AppState) -> bool {
    let mut closing = state.closing.clone();
    tokio::select! {
        _ = tokio::time::sleep(LOOK_EVERY) => true,
        _ = closing.wait_for(|c| *c) => false,
    }
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
#[derive(Serialize, Deserialize, utoipa::ToSchema)]
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
) -> Result<Json<Requeued>, ApiError> {
    let id = parse_id(&id)?;
    state.store.incident_summary(id).await?;
    let channels = state.store.requeue_dead(id, state.dispatcher.now()).await?;
    let mut seen: Vec<&String> = channels.iter().collect();
    seen.sort();
    seen.dedup();
    for c in seen {
        state.dispatcher.kick_channel(c);
    }
    Ok(Json(Requeued {
        requeued: channels.len(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::Outcome;
    use crate::domain::Target;
    use proptest::prelude::*;

    fn delivery(channel: &str) -> Delivery {
        let now = Utc::now();
        Delivery {
            id: Ulid::new(),
            incident_id: Ulid::new(),
            seq: 1,
            update_id: Ulid::new(),
            channel: channel.into(),
            target: Target::Endpoint,
            idempotency_key: "k".into(),
            state: DeliveryState::Pending,
            attempts: 0,
            parts_done: 0,
            next_at: now,
            last_error: None,
            receipt: None,
            provider_status: None,
            provider_error: None,
            created_at: now,
            updated_at: now,
        }
    }

    /// One step in a delivery's life: 0 delivered, 1 rejected, 2 retry, 3 claimed and still in
    /// flight (the sequence stops there), 4 a provider status callback.
    fn run(channel: &str, steps: &[u8], schedule: &[Duration]) -> Delivery {
        let mut d = delivery(channel);
        let now = Utc::now();
        for step in steps {
            if matches!(d.state, DeliveryState::Dead | DeliveryState::Rejected)
                || d.state == DeliveryState::InFlight
            {
                break;
            }
            if *step == 4 {
                if d.state == DeliveryState::Delivered {
                    d.provider_status = Some("undelivered".into());
                }
                continue;
            }
            if d.state == DeliveryState::Delivered {
                break;
            }
            d.attempts += 1;
            d.state = DeliveryState::InFlight;
            let outcome = match step {
                0 => Outcome::Delivered { receipt: None },
                1 => Outcome::Rejected {
                    reason: "bad number".into(),
                },
                2 => Outcome::Retry {
                    reason: "503".into(),
                    after: None,
                },
                _ => break,
            };
            crate::dispatch::apply_outcome(&mut d, outcome, schedule, now);
        }
        d
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        /// Whatever happened to the deliveries, the states partition each channel's total, and
        /// every retrying failure says when its next attempt is due.
        #[test]
        fn states_partition_the_total(
            lives in proptest::collection::vec(
                (0..2u8, proptest::collection::vec(0..5u8, 0..8)),
                0..60,
            )
        ) {
            let schedule = [Duration::from_secs(10), Duration::from_secs(60)];
            let mut channels: BTreeMap<String, ChannelCounts> = BTreeMap::new();
            let mut retrying = 0;
            let mut total = 0;
            for (ch, steps) in &lives {
                let name = if *ch == 0 { "sms" } else { "email" };
                let d = run(name, steps, &schedule);
                channels.entry(name.to_owned()).or_default().add(&d);
                total += 1;
                if let Some(f) = failure(&d) {
                    if f.state == DeliveryState::Pending {
                        retrying += 1;
                        prop_assert_eq!(f.next_attempt_at, Some(d.next_at));
                    } else {
                        prop_assert!(f.next_attempt_at.is_none());
                    }
                }
            }
            let mut sum_total = 0;
            for c in channels.values() {
                let parts = c.pending + c.retrying + c.in_flight + c.delivered + c.dead + c.rejected;
                prop_assert_eq!(parts, c.total, "{:?}", c);
                prop_assert!(c.confirmed + c.undelivered <= c.delivered);
                sum_total += c.total;
            }
            prop_assert_eq!(sum_total, total);
            prop_assert_eq!(channels.values().map(|c| c.retrying).sum::<usize>(), retrying);
        }
    }
}
