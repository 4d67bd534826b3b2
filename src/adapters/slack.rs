//! Slack adapter: posts each update through an incoming webhook.
//!
//! Request (<https://api.slack.com/messaging/webhooks>): `POST {webhook_url}` with JSON `text`
//! (the notification and fallback text) and `blocks`: the same text as `section` blocks of
//! `mrkdwn`, split at line or word boundaries into sections of at most 3000 characters (Slack's
//! limit per section text). Slack answers `200 ok`; errors are plain-text codes
//! (`invalid_payload`, `no_service`, `channel_is_archived`, …). About one message per second per
//! webhook, then 429 with `Retry-After` → `Retry`. An incoming webhook returns no message id and
//! cannot reply in a thread. The URL holds the token: never printed.
//!
//! Check: an incoming webhook has no read endpoint, but Slack validates the URL before the
//! payload, so an empty JSON object is answered `400 no_text`/`invalid_payload` by a live
//! webhook (nothing is posted) and 403/404/410 by a revoked or unknown one.

use super::http::{failure, post_json, snippet};
use super::outcome::{HttpReply, OutMessage, Outcome};
use super::{Check, Http, Provider, Request};
use chrono::{DateTime, Utc};
use reqwest::header::HeaderMap;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};

/// Longest text of one section block.
pub const SECTION_MAX_CHARS: usize = 3000;

/// Settings for one Slack channel.
#[derive(Debug, Clone)]
pub struct SlackConfig {
    /// `https://hooks.slack.com/services/T…/B…/…`. Secret: never printed.
    pub webhook_url: SecretString,
}

/// Posts to one Slack incoming webhook.
#[derive(Debug, Clone)]
pub struct SlackAdapter {
    config: SlackConfig,
}

/// Splits `text` into pieces of at most `max` characters, preferring a line break, then a
/// space, in the second half of each piece; never inside a character.
pub fn sections(text: &str, max: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while rest.chars().count() > max {
        let cut = rest.char_indices().nth(max).map_or(rest.len(), |(i, _)| i);
        let head = &rest[..cut];
        let half = head.char_indices().nth(max / 2).map_or(0, |(i, _)| i);
        let at = head[half..]
            .rfind('\n')
            .or_else(|| head[half..].rfind(' '))
            .map_or(cut, |i| half + i + 1);
        out.push(rest[..at].trim_end().to_owned());
        rest = &rest[at..];
    }
    if !rest.trim().is_empty() || out.is_empty() {
        out.push(rest.to_owned());
    }
    out
}

impl SlackAdapter {
    /// Wraps a config.
    pub fn new(config: SlackConfig) -> Self {
        SlackAdapter { config }
    }

    /// The JSON body for `msg`.
    fn body(msg: &OutMessage) -> Value {
        let blocks: Vec<Value> = sections(&msg.text, SECTION_MAX_CHARS)
            .into_iter()
            .map(|t| json!({"type": "section", "text": {"type": "mrkdwn", "text": t}}))
            .collect();
        json!({"text": msg.text, "blocks": blocks})
    }
}

impl Provider for SlackAdapter {
    const NAME: &'static str = "Slack";

    async fn request(&self, http: &Http, msg: &OutMessage) -> Request {
        Ok(post_json(http, &self.config.webhook_url, &Self::body(msg)))
    }

    fn classify(&self, reply: &HttpReply, now: DateTime<Utc>) -> Outcome {
        classify(reply.status, &reply.headers, &reply.body, now)
    }

    /// Probes the webhook with an empty payload (see the module docs): nothing is posted.
    async fn check(&self, http: &Http) -> Check {
        let request = http
            .client
            .post(self.config.webhook_url.expose_secret())
            .json(&json!({}));
        match http.exchange(request).await {
            Ok(r)
                if r.status == 400
                    && [
                        "no_text",
                        "invalid_payload",
                        "missing_text_or_fallback_or_attachments",
                    ]
                    .contains(&r.body.trim()) =>
            {
                Check::Ok("webhook is live (probed with an empty payload; nothing posted)".into())
            }
            Ok(r) if (200..300).contains(&r.status) => Check::Ok("webhook is live".into()),
            Ok(r) => Check::Failed(format!(
                "the webhook answered HTTP {}: {}",
                r.status,
                snippet(&r.body)
            )),
            Err(o) => Check::Failed(o.reason().to_owned()),
        }
    }
}

/// Classifies one webhook answer. Pure.
pub fn classify(status: u16, headers: &HeaderMap, body: &str, now: DateTime<Utc>) -> Outcome {
    if (200..300).contains(&status) {
        return Outcome::Delivered { receipt: None };
    }
    failure("Slack", status, headers, body, now, None)
}

use crate::channels::{KindSettings, KindSpec, Resolve, Settings};
use crate::render::preview::Platform;

/// The `slack` kind: one incoming webhook, whose URL is itself the secret.
pub static KIND: KindSpec = KindSpec::social("slack", Platform::Slack, false, "1/s", declare);

fn declare(table: toml::Table, r: &mut Resolve<'_>) -> Result<Option<Settings>, String> {
    let webhook_url = super::http::chat_webhook(table, r)?;
    Ok(webhook_url.map(|webhook_url| Settings::new(SlackConfig { webhook_url })))
}

impl KindSettings for SlackConfig {
    fn build(&self, s: &super::Setup<'_>) -> Result<Box<dyn super::Deliver>, String> {
        s.http(SlackAdapter::new(self.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::super::http::testing::{busy_then_refused, client, mount_once, once, post};
    use super::super::HttpAdapter;
    use super::*;
    use wiremock::matchers::{body_json, header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    const HOOK: &str = "/services/T000/B000/XXXXsecret";

    fn adapter(url: String) -> HttpAdapter<SlackAdapter> {
        HttpAdapter::new(
            SlackAdapter::new(SlackConfig {
                webhook_url: url.into(),
            }),
            client(),
        )
    }

    #[tokio::test]
    async fn posts_text_and_blocks() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path(HOOK))
            .and(header("content-type", "application/json"))
            .and(body_json(json!({
                "text": "*Payments* degraded",
                "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "*Payments* degraded"}}]
            })))
            .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
            .expect(1)
            .mount(&server)
            .await;
        let out = adapter(format!("{}{HOOK}", server.uri()))
            .send(&post("k", "*Payments* degraded"))
            .await;
        assert_eq!(out, Outcome::Delivered { receipt: None });
    }

    #[tokio::test]
    async fn rate_limited_and_revoked() {
        let (_server, out) = busy_then_refused(adapter, 30, "/gone", 404, "no_service").await;
        assert_eq!(
            out,
            Outcome::rejected("Slack answered HTTP 404: no_service")
        );
    }

    #[test]
    fn long_text_is_split_into_sections_at_boundaries() {
        let line = "word ".repeat(100); // 500 chars
        let text = format!("{}\n{}", line.repeat(5), line.repeat(5));
        let parts = sections(&text, SECTION_MAX_CHARS);
        assert!(parts.len() >= 2);
        assert!(parts.iter().all(|p| p.chars().count() <= SECTION_MAX_CHARS));
        assert!(parts
            .iter()
            .all(|p| !p.starts_with(' ') && !p.ends_with("wor")));
        assert_eq!(sections("short", 3000), vec!["short".to_owned()]);
        // No boundary at all: cut at the limit, on a character boundary.
        let ä = "ä".repeat(7);
        assert_eq!(sections(&ä, 3), vec!["äää", "äää", "ä"]);
    }

    #[tokio::test]
    async fn check_probes_with_an_empty_payload() {
        let server = MockServer::start().await;
        let probe = Mock::given(method("POST"))
            .and(path(HOOK))
            .and(body_json(json!({})))
            .respond_with(ResponseTemplate::new(400).set_body_string("no_text"));
        mount_once(&server, probe).await;
        once(
            &server,
            "POST",
            "/services/T000/B000/revoked",
            ResponseTemplate::new(403).set_body_string("invalid_token"),
        )
        .await;
        let good = adapter(format!("{}{HOOK}", server.uri())).check().await;
        assert!(matches!(good, Check::Ok(_)), "{good:?}");
        let bad = adapter(format!("{}/services/T000/B000/revoked", server.uri()))
            .check()
            .await;
        assert!(
            matches!(&bad, Check::Failed(s) if s.contains("403")),
            "{bad:?}"
        );
    }
}
