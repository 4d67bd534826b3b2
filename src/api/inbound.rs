//! Twilio's inbound-message webhook: replies from subscribers' phones. Configure the Twilio
//! number's "A message comes in" webhook (HTTP POST) as
//! `<public_url>/api/v1/hooks/twilio/<channel>/inbound`; crier verifies `X-Twilio-Signature` with
//! the channel's auth token over exactly that URL, so a forged request is refused (403) and
//! changes nothing.
//!
//! The whole body, trimmed and in any case, is the keyword (as carriers and Twilio match them):
//! STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT (and Twilio's REVOKE, OPTOUT) mark the number
//! opted out; START, YES, UNSTOP resume a confirmed number; HELP (and INFO) answer with a short
//! help text in the subscriber's language. Twilio expects TwiML back
//! (<https://www.twilio.com/docs/messaging/twiml>): an empty `<Response/>` sends no reply, which
//! is the answer to STOP and START (Twilio's default opt-out handling sends the carrier-required
//! confirmation itself) and to anything else.

use super::openapi::PROBLEM;
use super::{ApiError, AppState};
use crate::domain::Contact;
use crate::store::port::{SignUps, Subscribers};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

/// An inbound message's form fields (others are accepted and ignored).
#[derive(utoipa::ToSchema)]
#[allow(dead_code, non_snake_case)] // the form's shape, for the OpenAPI document
pub struct TwilioInbound {
    pub From: String,
    pub Body: String,
    pub MessageSid: Option<String>,
}

/// What a message asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keyword {
    Stop,
    Start,
    Help,
    Other,
}

/// The keyword of a whole message body (case-insensitive, surrounding space ignored).
pub fn keyword(body: &str) -> Keyword {
    match body.trim().to_ascii_uppercase().as_str() {
        "STOP" | "STOPALL" | "UNSUBSCRIBE" | "CANCEL" | "END" | "QUIT" | "REVOKE" | "OPTOUT" => {
            Keyword::Stop
        }
        "START" | "YES" | "UNSTOP" => Keyword::Start,
        "HELP" | "INFO" => Keyword::Help,
        _ => Keyword::Other,
    }
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn twiml(reply: Option<&str>) -> Response {
    let body = match reply {
        Some(text) => format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Message>{}</Message></Response>",
            xml_escape(text)
        ),
        None => "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response></Response>".to_owned(),
    };
    ([(header::CONTENT_TYPE, "text/xml; charset=utf-8")], body).into_response()
}

/// Twilio's inbound-message webhook, authenticated by `X-Twilio-Signature`.
#[utoipa::path(
    post,
    path = "/api/v1/hooks/twilio/{channel}/inbound",
    operation_id = "twilioInboundMessage",
    tag = "hooks",
    params(
        ("channel" = String, Path, description = "The Twilio channel's name"),
        ("X-Twilio-Signature" = String, Header, description = "Twilio's signature over this URL and the parameters"),
    ),
    request_body(content = TwilioInbound, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "TwiML: an empty <Response/>, or a <Message> answering HELP", content_type = "text/xml"),
        (status = 400, description = "The form is malformed", body = super::error::Problem, content_type = PROBLEM),
        (status = 403, description = "The signature does not match", body = super::error::Problem, content_type = PROBLEM),
        (status = 404, description = "No active Twilio channel of that name", body = super::error::Problem, content_type = PROBLEM),
        (status = 413, description = "The body is too large", body = super::error::Problem, content_type = PROBLEM),
    )
)]
pub async fn twilio_inbound(
    State(state): State<AppState>,
    Path(channel): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let token = state
        .dispatcher
        .twilio_auth_token(&channel)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                format!("no active Twilio channel \"{channel}\""),
            )
        })?;
    let url = format!(
        "{}/api/v1/hooks/twilio/{channel}/inbound",
        state.subscriptions.base_url
    );
    let params = super::hooks::twilio_signed_form(
        &token,
        &url,
        &headers,
        &body,
        "message",
        "<public_url>/api/v1/hooks/twilio/<channel>/inbound",
    )?;
    let get = |k: &str| {
        params
            .iter()
            .find(|(n, _)| n == k)
            .map_or("", |(_, v)| v.as_str())
    };
    let Ok(from) = Contact::phone(get("From")) else {
        // Not a phone number (a short code, a WhatsApp sender): nothing to do.
        return Ok(twiml(None));
    };
    match keyword(get("Body")) {
        Keyword::Stop => {
            if state.store.set_opted_out(&from, true).await?.is_some() {
                tracing::info!("a subscriber answered STOP; opted out");
            }
            Ok(twiml(None))
        }
        Keyword::Start => {
            if state.store.set_opted_out(&from, false).await?.is_some() {
                tracing::info!("a subscriber answered START; resumed");
            }
            Ok(twiml(None))
        }
        Keyword::Help => {
            let lang = state
                .store
                .subscribers_where(1, |s| s.contact == from)
                .await?
                .first()
                .map_or_else(|| "en".to_owned(), |s| s.locale.as_str().to_owned());
            let lang = crate::web::lang::negotiate(Some(&lang), None);
            let words = crate::web::lang::words(lang);
            let text = words
                .get("sms_help")
                .cloned()
                .unwrap_or_default()
                .replace("{org}", &state.render.org_name)
                .replace(
                    "{url}",
                    &format!("{}/subscribe", state.subscriptions.base_url),
                );
            Ok(twiml(Some(&text)))
        }
        Keyword::Other => Ok(twiml(None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_are_the_whole_body_in_any_case() {
        for s in [
            "STOP",
            "stop",
            " Stop \n",
            "STOPALL",
            "unsubscribe",
            "Cancel",
            "END",
            "quit",
        ] {
            assert_eq!(keyword(s), Keyword::Stop, "{s}");
        }
        for s in ["START", "yes", "Unstop"] {
            assert_eq!(keyword(s), Keyword::Start, "{s}");
        }
        assert_eq!(keyword("help"), Keyword::Help);
        for s in ["stop it", "please stop", "", "STOP!"] {
            assert_eq!(keyword(s), Keyword::Other, "{s}");
        }
    }
}
