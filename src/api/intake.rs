//! Monitoring intake over HTTP: `POST /api/v1/triggers` (crier's own document, bearer token),
//! `POST /api/v1/hooks/alertmanager` and `POST /api/v1/hooks/grafana` (their webhook payloads).
//!
//! The hooks authenticate by the bearer token (Alertmanager's `http_config.authorization`,
//! Grafana's Authorization header setting) or, when `intake.hmac_secret_env` is configured, by an
//! HMAC-SHA256 signature: crier's own scheme (`X-Crier-Timestamp` + `X-Crier-Signature: v1=…` over
//! `timestamp.body`, five minutes' tolerance — the one crier's outgoing webhooks use), or Grafana's
//! `X-Grafana-Alerting-Signature` (hex over the body). Anything else gets 401 and writes nothing.

use super::extract::ApiJson;
use super::openapi::PROBLEM;
use super::{ApiError, AppState, Principal};
use crate::intake::payloads::{HookKind, HookPayload, TriggerDoc};
use crate::intake::Outcome;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::{Extension, Json};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// What the intake endpoints answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
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
    query: Query<HookQuery>,
    headers: HeaderMap,
    body: Bytes,
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
    query: Query<HookQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<IntakeReply>, ApiError> {
    hook(HookKind::Grafana, state, query, headers, body).await
}

async fn hook(
    kind: HookKind,
    State(state): State<AppState>,
    Query(q): Query<HookQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<IntakeReply>, ApiError> {
    if !authenticated(&state, &headers, &body) {
        return Err(ApiError::unauthorized());
    }
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
    let targets = state.dispatcher.broadcast_targets();
    let now = state.dispatcher.now();
    let outcomes = state.intake.handle_all(triggers, &targets, now).await?;
    tracing::info!(source = kind.source(), ?outcomes, "monitoring webhook");
    state.dispatcher.kick();
    Ok(Json(IntakeReply { outcomes }))
}

/// Bearer token, or a valid HMAC signature when a secret is configured.
fn authenticated(state: &AppState, headers: &HeaderMap, body: &[u8]) -> bool {
    if let Some(t) = super::auth::bearer(headers) {
        if state.tokens.check(t).is_some() {
            return true;
        }
    }
    let Some(secret) = state.intake.settings().hmac_secret.as_deref() else {
        return false;
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let (Some(ts), Some(sig)) = (header("x-crier-timestamp"), header("x-crier-signature")) {
        if let Ok(ts) = ts.trim().parse::<i64>() {
            return crate::adapters::webhook::verify(
                secret,
                ts,
                body,
                sig,
                chrono::Utc::now(),
                std::time::Duration::from_secs(300),
            );
        }
        return false;
    }
    if let Some(sig) = header("x-grafana-alerting-signature") {
        let Ok(expected) = hex::decode(sig.trim()) else {
            return false;
        };
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
            return false;
        };
        mac.update(body);
        // Constant-time comparison.
        return mac.verify_slice(&expected).is_ok();
    }
    false
}
