//! `POST /api/v1/preview`: what one channel kind would send for an incident's latest update (or
//! for a draft text), rendered and fitted exactly as delivery will. Writes nothing.

use super::extract::ApiJson;
use super::openapi::PROBLEM;
use super::{ApiError, AppState};
use crate::domain::Locale;
use crate::render::preview::{
    parse_event, preview as render_preview, preview_text_with, Given, Platform, Preview,
    PreviewError, PreviewRequest, TextPreview,
};
use crate::render::Event;
use crate::store::port::Incidents;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use ulid::Ulid;

/// What to preview: `incident` or `message`, and `kind` or `channel` (exactly one of each pair).
#[derive(Deserialize, Serialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"kind": "sms", "message": "Check-in is delayed at HEL; next update by 14:00."})))]
pub struct PreviewBody {
    /// An incident: its latest update is previewed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incident: Option<String>,
    /// Or a text, previewed as the body of an update.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// A platform kind (`sms`, `x`, …) …
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// … or a configured channel: its platform, templates, locale, zone, policy and SMS cap.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    #[schema(value_type = Option<crate::domain::Locale>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    /// The event to render (default: the update's own).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// IANA zone for times (default: the server's `timezone`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tz: Option<String>,
    /// With `message`: the incident's title (default: a sample title, listed in `samples`).
    #[schema(value_type = Option<crate::domain::Title>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// With `message`: the promised next update, a delay such as `30m` (default: a sample
    /// 30-minute promise, listed in `samples`; with `title` given, none unless this is given).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_update: Option<String>,
    /// SMS segment cap, 1-255 (the most a concatenated SMS can have; default 3).
    #[schema(minimum = 1, maximum = 255)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sms_segments: Option<usize>,
}

/// The default SMS segment cap of a preview: a long message costs at most three segments.
pub const DEFAULT_SMS_SEGMENTS: usize = 3;

/// The most segments a concatenated SMS can have (the UDH counts them in one byte).
const MAX_SMS_SEGMENTS: usize = 255;

/// Renders what one channel kind (or configured channel) would send. Writes nothing.
#[utoipa::path(
    post,
    path = "/api/v1/preview",
    operation_id = "preview",
    tag = "preview",
    security(("bearer" = [])),
    request_body = PreviewBody,
    responses(
        (status = 200, description = "The rendered, fitted message(s)", body = Preview),
        (status = 400, description = "The body is not JSON", body = super::error::Problem, content_type = PROBLEM),
        (status = 413, description = "The body is too large", body = super::error::Problem, content_type = PROBLEM),
        (status = 415, description = "Not `Content-Type: application/json`", body = super::error::Problem, content_type = PROBLEM),
        (status = 401, description = "No valid bearer token", body = super::error::Problem, content_type = PROBLEM),
        (status = 404, description = "No such incident", body = super::error::Problem, content_type = PROBLEM),
        (status = 409, description = "The incident has no updates", body = super::error::Problem, content_type = PROBLEM),
        (status = 422, description = "A field is invalid, or the text does not fit under the `reject` policy", body = super::error::Problem, content_type = PROBLEM),
    )
)]
pub async fn preview(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<PreviewBody>,
) -> Result<Json<Preview>, ApiError> {
    let channel = match (&req.kind, &req.channel) {
        (Some(_), None) => None,
        (None, Some(name)) => Some(state.dispatcher.channel(name).ok_or_else(|| {
            ApiError::unprocessable(format!(
                "channel: no active channel \"{name}\"; see `crier serve`'s start-up log for the active ones"
            ))
        })?),
        _ => {
            return Err(ApiError::unprocessable(
                "give either `kind` (sms, x, mastodon, bluesky, telegram, discord, slack, email) or `channel` (a configured channel's name)",
            ))
        }
    };
    let platform = match (&req.kind, &channel) {
        (Some(k), _) => Platform::parse(k).map_err(ApiError::unprocessable)?,
        (None, Some(c)) => c.platform,
        (None, None) => Platform::Sms,
    };
    let own = channel
        .as_ref()
        .filter(|c| c.templates.is_some())
        .map(|c| c.name.as_str());
    let policy = channel.as_ref().map(|c| c.policy_name.as_str());
    let channel_locale = channel.as_ref().map(|c| c.locale.clone());
    let locale = req.locale.as_deref().map(Locale::parse).transpose()?;
    let tz = match &req.tz {
        Some(t) => t.parse().map_err(|_| {
            ApiError::unprocessable(format!(
                "tz: \"{t}\" is not an IANA time zone such as Europe/Helsinki"
            ))
        })?,
        None => channel
            .as_ref()
            .and_then(|c| c.timezone)
            .unwrap_or(state.render.timezone),
    };
    let event = req
        .event
        .as_deref()
        .map(parse_event)
        .transpose()
        .map_err(|e| ApiError::unprocessable(format!("event: {e}")))?;
    if req
        .sms_segments
        .is_some_and(|n| !(1..=MAX_SMS_SEGMENTS).contains(&n))
    {
        return Err(crate::domain::DomainError::invalid(
            "sms_segments",
            format!("use 1 to {MAX_SMS_SEGMENTS} (a concatenated SMS has at most {MAX_SMS_SEGMENTS} segments)"),
        )
        .into());
    }
    let segments = req.sms_segments.unwrap_or(
        channel
            .as_ref()
            .map_or(DEFAULT_SMS_SEGMENTS, |c| c.sms_max_segments),
    );
    if req.incident.is_some() && (req.title.is_some() || req.next_update.is_some()) {
        return Err(ApiError::unprocessable(
            "title and next_update go with `message`; an incident's preview uses its own",
        ));
    }
    if let Some(t) = &req.title {
        crate::domain::Title::parse(t)?;
    }
    let next_update = req
        .next_update
        .as_deref()
        .map(crate::domain::parse_next_update)
        .transpose()?;
    let given = (req.title.is_some() || next_update.is_some()).then_some(Given {
        title: req.title.as_deref(),
        next_update,
    });
    let result = match (&req.incident, &req.message) {
        (Some(id), None) => {
            let id = Ulid::from_string(id.trim()).map_err(|_| {
                ApiError::new(
                    StatusCode::NOT_FOUND,
                    format!("\"{id}\" is not an incident id"),
                )
            })?;
            let (incident, mut updates) = state.store.incident(id).await?;
            let update = updates.pop().ok_or_else(|| {
                ApiError::new(
                    StatusCode::CONFLICT,
                    "the incident has no updates to preview",
                )
            })?;
            let locales: Vec<Locale> = locale.into_iter().chain(channel_locale).collect();
            render_preview(
                &state.templates,
                &state.render,
                &PreviewRequest {
                    platform,
                    event: event.unwrap_or_else(|| Event::of_update(incident.kind, &update)),
                    incident: &incident,
                    update: &update,
                    locales: &locales,
                    tz,
                    sms_segments: segments,
                    channel: own,
                    policy,
                },
            )
        }
        (None, Some(text)) => preview_text_with(
            &state.templates,
            &state.render,
            &TextPreview {
                platform,
                event,
                text,
                locale,
                tz,
                sms_segments: segments,
                channel: own,
                policy,
                channel_locale,
            },
            given.as_ref(),
            state.dispatcher.clock().now(),
        ),
        _ => {
            return Err(ApiError::unprocessable(
                "give either `incident` (an id) or `message` (a text), not both",
            ))
        }
    };
    let p = result.map_err(|e| match e {
        PreviewError::Fit(f) => ApiError::unprocessable(f.to_string()),
        PreviewError::Render(crate::render::RenderError::Domain(d)) => d.into(),
        PreviewError::Render(r) => {
            tracing::error!(error = %r, "preview rendering failed");
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, r.to_string())
        }
    })?;
    Ok(Json(p))
}

#[cfg(test)]
mod wire_tests {
    use super::*;
    use serde_json::json;

    /// The CLI sends this struct: what it serialises, the API reads back unchanged
    /// (`deny_unknown_fields`), and the fields not given stay absent.
    #[test]
    fn preview_body_round_trips() {
        for sent in [
            json!({"kind": "sms", "message": "Delays.", "sms_segments": 3, "locale": "fi",
                   "event": "update", "tz": "Europe/Helsinki"}),
            json!({"channel": "sms-fi", "incident": "01J0000000000000000000000A",
                   "title": "Delays", "next_update": "30m"}),
        ] {
            let req: PreviewBody = serde_json::from_value(sent.clone()).unwrap();
            assert_eq!(serde_json::to_value(&req).unwrap(), sent);
        }
    }
}
