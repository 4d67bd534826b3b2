//! Provider callbacks. Twilio POSTs a message's later status (delivered, undelivered, failed) to
//! the channel's `status_callback` URL; crier verifies `X-Twilio-Signature` with the channel's
//! auth token (no bearer token: Twilio cannot send one) and records it on the delivery. Only
//! Twilio's documented statuses are accepted (another value is 422 and writes nothing), and a
//! status never replaces a later one: callbacks arrive out of order, and a late `sent` must
//! not undo `delivered` (see `MessageStatus::supersedes`).

use super::openapi::PROBLEM;
use super::{ApiError, AppState};
use crate::adapters::twilio::TwilioError;
use crate::inbound::twilio::{decode_form, status_callback_from, verify_signature};
use crate::store::port::Outbox;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};

/// A Twilio status callback's form fields (others are accepted and ignored).
#[derive(utoipa::ToSchema)]
#[allow(dead_code, non_snake_case)] // the form's shape, for the OpenAPI document
pub struct TwilioCallback {
    pub MessageSid: String,
    pub MessageStatus: String,
    pub ErrorCode: Option<String>,
}

/// Twilio's message status callback, authenticated by `X-Twilio-Signature`.
#[utoipa::path(
    post,
    path = "/api/v1/hooks/twilio/{channel}",
    operation_id = "twilioStatusCallback",
    tag = "hooks",
    params(
        ("channel" = String, Path, description = "The Twilio channel's name"),
        ("X-Twilio-Signature" = String, Header, description = "Twilio's signature over the callback URL and parameters"),
    ),
    request_body(content = TwilioCallback, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 204, description = "Recorded (or an unknown message, acknowledged)"),
        (status = 400, description = "The form is malformed", body = super::error::Problem, content_type = PROBLEM),
        (status = 403, description = "The signature does not match", body = super::error::Problem, content_type = PROBLEM),
        (status = 404, description = "No active Twilio channel of that name with a status_callback", body = super::error::Problem, content_type = PROBLEM),
        (status = 413, description = "The body is too large", body = super::error::Problem, content_type = PROBLEM),
    )
)]
pub async fn twilio_status(
    State(state): State<AppState>,
    Path(channel): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let (token, url) = state.dispatcher.twilio_callback(&channel).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no active Twilio channel \"{channel}\" with a status_callback"),
        )
    })?;
    let params = twilio_signed_form(
        &token,
        &url,
        &headers,
        &body,
        "callback",
        "the configured status_callback URL",
    )?;
    let cb = status_callback_from(&params).map_err(|e| match e {
        TwilioError::UnknownStatus(_) => ApiError {
            field: Some("MessageStatus"),
            ..ApiError::unprocessable(e.to_string())
        },
        e => ApiError::bad_request(e.to_string()),
    })?;
    let status = cb.message_status.as_str();
    match state
        .store
        .record_provider_status(
            &cb.message_sid,
            status,
            cb.error_code,
            state.dispatcher.now(),
            |old| cb.message_status.supersedes(old),
        )
        .await?
    {
        Some(d) => {
            tracing::info!(delivery = %d.id, status, "Twilio status callback");
            Ok(StatusCode::NO_CONTENT)
        }
        // Unknown SIDs are acknowledged so Twilio does not retry them forever.
        None => Ok(StatusCode::NO_CONTENT),
    }
}

/// The form parameters of a request Twilio signed: the body decoded as UTF-8 form data and its
/// `X-Twilio-Signature` checked against `url` with the channel's auth token. `what` names the
/// request in errors ("callback", "message"), `to` where Twilio must send it.
pub(crate) fn twilio_signed_form(
    token: &str,
    url: &str,
    headers: &axum::http::HeaderMap,
    body: &[u8],
    what: &str,
    to: &str,
) -> Result<Vec<(String, String)>, ApiError> {
    let form = std::str::from_utf8(body)
        .map_err(|_| ApiError::bad_request(format!("the {what} body is not UTF-8 form data")))?;
    let params = decode_form(form).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let signature = headers
        .get("x-twilio-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !verify_signature(token, url, &params, signature) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!("X-Twilio-Signature does not match; the {what} must come from Twilio to {to}"),
        ));
    }
    Ok(params)
}
