//! Monitoring intake over HTTP: `POST /api/v1/triggers` (crier's own document, bearer token),
//! `POST /api/v1/hooks/alertmanager` and `POST /api/v1/hooks/grafana` (their webhook payloads).
//!
//! The hooks authenticate by the bearer token (Alertmanager's `http_config.authorization`,
//! Grafana's Authorization header setting) or, when `intake.hmac_secret_env` is configured, by an
//! HMAC-SHA256 signature:
//! - crier's own scheme (`X-Crier-Timestamp` + `X-Crier-Signature: v1=…` over `timestamp.body`,
//!   five minutes' tolerance — the one crier's outgoing webhooks use);
//! - Grafana's contact-point HMAC: hex in `X-Grafana-Alerting-Signature` (or Grafana's default
//!   name, `X-Grafana-Alert-Signature`) over `timestamp:body` with the Unix timestamp in
//!   `X-Grafana-Alerting-Timestamp` (or `X-Grafana-Alert-Timestamp`,
//!   `X-Grafana-Alerting-Signature-Timestamp`), five minutes' tolerance. Grafana signs the body
//!   alone when its contact point names no timestamp header; such a signature never expires, so
//!   it is accepted only with `intake.grafana_body_signature = true`.
//!
//! A signed request is accepted once: after the payload is validated (so a refused request
//! writes nothing), the (scheme, timestamp, body) it signs is remembered in the store until the
//! timestamp leaves the window, and a repeat is answered 409 — the credentials are right, the
//! request was already handled (409 rather than 401, so a sender does not think its secret is
//! wrong). Remembered in sled, not memory, so a restart inside the window does not reopen it.
//! Bad credentials get 401; bad payloads 422; each is problem+json and writes nothing.

use super::extract::{too_large, ApiJson, ApiQuery};
use super::openapi::PROBLEM;
use super::{ApiError, AppState, Principal};
use crate::intake::payloads::{HookKind, HookPayload, TriggerDoc};
use crate::intake::Outcome;
use crate::store::port::HookSignatures;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::{Extension, Json};
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The largest monitoring webhook body: a notification carries every alert of its group
/// (Alertmanager's `max_alerts` is unlimited by default), about 0.5 KiB each, so this takes
/// thousands.
pub const HOOK_MAX_BYTES: usize = 4 * 1024 * 1024;

/// What the intake endpoints answer.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct IntakeReply {
    pub outcomes: Vec<Outcome>,
}

/// `POST /api/v1/triggers`
///
/// One monitoring trigger (crier's own document): opens, appends to or resolves the incident of
/// its (source, group).
#[utoipa::path(
    post,
    path = "/api/v1/triggers",
    operation_id = "trigger",
    tag = "intake",
    security(("bearer" = [])),
    request_body = TriggerDoc,
    responses(
        (status = 200, description = "What the trigger did", body = IntakeReply),
        (status = 400, description = "The body is not JSON", body = super::error::Problem, content_type = PROBLEM),
        (status = 413, description = "The body is too large", body = super::error::Problem, content_type = PROBLEM),
        (status = 415, description = "Not `Content-Type: application/json`", body = super::error::Problem, content_type = PROBLEM),
        (status = 401, description = "No valid bearer token", body = super::error::Problem, content_type = PROBLEM),
        (status = 422, description = "A field is invalid", body = super::error::Problem, content_type = PROBLEM),
    )
)]
pub async fn trigger(
    State(state): State<AppState>,
    Extension(_who): Extension<Principal>,
    ApiJson(doc): ApiJson<TriggerDoc>,
) -> Result<Json<IntakeReply>, ApiError> {
    let t = doc.into_trigger()?;
    let targets = state.dispatcher.broadcast_targets();
    let now = state.dispatcher.now();
    let outcome = state.intake.handle(t, &targets, now).await?;
    tracing::info!(?outcome, "trigger");
    state.dispatcher.kick();
    Ok(Json(IntakeReply {
        outcomes: vec![outcome],
    }))
}

/// Query of the hook endpoints: `?source=prod-alertmanager` names the source (default
/// `alertmanager` / `grafana`), so two installations keep their alerts apart.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HookQuery {
    /// The source name (1-100 characters), default `alertmanager` / `grafana`.
    #[param(min_length = 1, max_length = 100)]
    pub source: Option<String>,
}

/// `POST /api/v1/hooks/alertmanager`
///
/// An Alertmanager webhook notification (payload version 4). Authenticated by the bearer token or,
/// when `intake.hmac_secret_env` is set, by `X-Crier-Timestamp` + `X-Crier-Signature`.
#[utoipa::path(
    post,
    path = "/api/v1/hooks/alertmanager",
    operation_id = "alertmanagerHook",
    tag = "intake",
    security(("bearer" = [])),
    params(HookQuery),
    request_body = HookPayload,
    responses(
        (status = 200, description = "What each alert did", body = IntakeReply),
        (status = 400, description = "The body is not JSON, or a bad query string", body = super::error::Problem, content_type = PROBLEM),
        (status = 401, description = "No valid bearer token", body = super::error::Problem, content_type = PROBLEM),
        (status = 413, description = "The body is too large", body = super::error::Problem, content_type = PROBLEM),
        (status = 422, description = "The payload or `source` is invalid", body = super::error::Problem, content_type = PROBLEM),
    )
)]
pub async fn alertmanager(
    state: State<AppState>,
    query: ApiQuery<HookQuery>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<IntakeReply>, ApiError> {
    hook(HookKind::Alertmanager, state, query, headers, body).await
}

/// `POST /api/v1/hooks/grafana`
///
/// A Grafana webhook contact point notification. Authenticated by the bearer token or, when
/// `intake.hmac_secret_env` is set, by `X-Grafana-Alerting-Signature` (or crier's own signature).
#[utoipa::path(
    post,
    path = "/api/v1/hooks/grafana",
    operation_id = "grafanaHook",
    tag = "intake",
    security(("bearer" = [])),
    params(HookQuery),
    request_body = HookPayload,
    responses(
        (status = 200, description = "What each alert did", body = IntakeReply),
        (status = 400, description = "The body is not JSON, or a bad query string", body = super::error::Problem, content_type = PROBLEM),
        (status = 401, description = "No valid bearer token", body = super::error::Problem, content_type = PROBLEM),
        (status = 413, description = "The body is too large", body = super::error::Problem, content_type = PROBLEM),
        (status = 422, description = "The payload or `source` is invalid", body = super::error::Problem, content_type = PROBLEM),
    )
)]
pub async fn grafana(
    state: State<AppState>,
    query: ApiQuery<HookQuery>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<IntakeReply>, ApiError> {
    hook(HookKind::Grafana, state, query, headers, body).await
}

async fn hook(
    kind: HookKind,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<HookQuery>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<IntakeReply>, ApiError> {
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            too_large()
        } else {
            ApiError::bad_request(format!("cannot read the request body: {}", e.body_text()))
        }
    })?;
    let signed = authenticate(&state, &headers, &body, state.dispatcher.now()).await?;
    let source = match q.source.as_deref().map(str::trim) {
        Some("") => {
            return Err(ApiError::unprocessable(
                "source: is empty; leave it out or name the system",
            ))
        }
        Some(s) if s.chars().count() > 100 => {
            return Err(ApiError::unprocessable(
                "source: longer than 100 characters",
            ))
        }
        other => other,
    };
    let payload = HookPayload::parse(kind, &body)?;
    let triggers = payload.into_triggers(kind, source)?;
    // Valid and authentic: now (and only now) the signature is spent.
    if let Some(s) = &signed {
        if !state
            .store
            .remember_signature(s.key, s.expires, state.dispatcher.now())
            .await?
        {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "this signed notification was already accepted (a replay); sign every request anew with a fresh timestamp",
            ));
        }
    }
    let targets = state.dispatcher.broadcast_targets();
    let now = state.dispatcher.now();
    let outcomes = match state.intake.handle_all(triggers, &targets, now).await {
        Ok(o) => o,
        Err(e) => {
            // Nothing was done: the sender may send the same request again.
            if let Some(s) = &signed {
                if let Err(f) = state.store.forget_signature(s.key).await {
                    tracing::error!(error = %f, "cannot forget a refused hook's signature");
                }
            }
            return Err(e.into());
        }
    };
    tracing::info!(source = kind.source(), ?outcomes, "monitoring webhook");
    state.dispatcher.kick();
    Ok(Json(IntakeReply { outcomes }))
}

/// How long a signature's timestamp may be off the server's clock.
const TOLERANCE: std::time::Duration = std::time::Duration::from_secs(300);

/// A verified signature: what identifies the signed request, and until when it could be
/// replayed.
struct Signed {
    key: [u8; 32],
    expires: DateTime<Utc>,
}

fn replay_key(scheme: &str, timestamp: Option<i64>, body: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(scheme.as_bytes());
    h.update([0]);
    if let Some(ts) = timestamp {
        h.update(ts.to_be_bytes());
    }
    h.update(body);
    h.finalize().into()
}

fn until(timestamp: i64) -> DateTime<Utc> {
    let window = chrono::Duration::from_std(TOLERANCE).unwrap_or_default();
    DateTime::from_timestamp(timestamp, 0).unwrap_or_default()
        + window
        + chrono::Duration::seconds(1)
}

/// Bearer token — the bootstrap admin token or a personal token of a publisher or admin —
/// (`Ok(None)`), or a valid HMAC signature when a secret is configured
/// (`Ok(Some)`): what it signs must still be checked against replays.
async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<Option<Signed>, ApiError> {
    if let Some(t) = super::auth::bearer(headers) {
        if state.tokens.check(t).is_some() {
            return Ok(None);
        }
        // A personal token of a publisher or admin (a monitoring system's own token).
        if let Some(caller) = state.team.authenticate(state, t).await? {
            if caller.role >= crate::domain::Role::Publisher {
                return Ok(None);
            }
        }
    }
    let settings = state.intake.settings();
    let Some(secret) = settings.hmac_secret.as_deref() else {
        return Err(ApiError::unauthorized());
    };
    let refused = |why: &str| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            format!("{why}; send a valid signature or `Authorization: Bearer <token>`"),
        )
    };
    let header = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| headers.get(*n))
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let (Some(ts), Some(sig)) = (
        header(&["x-crier-timestamp"]),
        header(&["x-crier-signature"]),
    ) {
        let ts = ts
            .parse::<i64>()
            .map_err(|_| refused("X-Crier-Timestamp is not a Unix timestamp"))?;
        if !crate::inbound::webhook::verify(secret, ts, body, sig, now, TOLERANCE) {
            return Err(refused(
                "X-Crier-Signature does not match, or its timestamp is more than 5 minutes off",
            ));
        }
        return Ok(Some(Signed {
            key: replay_key("crier", Some(ts), body),
            expires: until(ts),
        }));
    }
    if let Some(sig) = header(&["x-grafana-alerting-signature", "x-grafana-alert-signature"]) {
        let expected = hex::decode(sig).map_err(|_| refused("the Grafana signature is not hex"))?;
        let mut mac =
            Hmac::<Sha256>::new_from_slice(secret).map_err(|_| refused("unusable secret"))?;
        let ts = header(&[
            "x-grafana-alerting-timestamp",
            "x-grafana-alert-timestamp",
            "x-grafana-alerting-signature-timestamp",
        ]);
        let Some(ts) = ts else {
            // Signed over the body alone: valid forever once captured.
            if !settings.grafana_body_signature {
                return Err(refused(
                    "a Grafana signature without a timestamp can be replayed forever and is refused; set the contact point's HMAC timestamp header to X-Grafana-Alerting-Timestamp (or allow it with intake.grafana_body_signature = true)",
                ));
            }
            mac.update(body);
            mac.verify_slice(&expected)
                .map_err(|_| refused("the Grafana signature does not match"))?;
            let window = chrono::Duration::from_std(TOLERANCE).unwrap_or_default();
            return Ok(Some(Signed {
                key: replay_key("grafana-body", None, body),
                expires: now + window,
            }));
        };
        let ts = ts
            .parse::<i64>()
            .map_err(|_| refused("the Grafana timestamp is not a Unix timestamp"))?;
        if now.timestamp().abs_diff(ts) > TOLERANCE.as_secs() {
            return Err(refused("the Grafana timestamp is more than 5 minutes off"));
        }
        mac.update(ts.to_string().as_bytes());
        mac.update(b":");
        mac.update(body);
        // Constant-time comparison.
        mac.verify_slice(&expected)
            .map_err(|_| refused("the Grafana signature does not match"))?;
        return Ok(Some(Signed {
            key: replay_key("grafana", Some(ts), body),
            expires: until(ts),
        }));
    }
    Err(ApiError::unauthorized())
}
