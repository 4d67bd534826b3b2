//! Microsoft Teams adapter: posts each update as an Adaptive Card through a Workflows webhook
//! (the retired Office 365 connectors' replacement; their MessageCard payloads are not used).
//!
//! Request: `POST {workflow_url}` with
//! `{"type":"message","attachments":[{"contentType":"application/vnd.microsoft.card.adaptive",
//! "content":{"$schema":"http://adaptivecards.io/schemas/adaptive-card.json","type":"AdaptiveCard",
//! "version":"1.2","body":[{"type":"TextBlock","text":"…","wrap":true}]}}]}`.
//! The flow answers 202 Accepted (or 200) with no message id, so Teams does not thread.
//! 429 with `Retry-After` and 5xx → `Retry`; other 4xx → `Rejected`. The URL carries a
//! signature (`sig=`): never printed.
//!
//! Check: every request to a Workflows URL runs the flow, so it cannot be checked without
//! posting; `crier channels check` says so.

use super::http::{failure, post_json};
use super::outcome::{HttpReply, OutMessage, Outcome};
use super::{Check, Http, Provider, Request};
use chrono::{DateTime, Utc};
use reqwest::header::HeaderMap;
use secrecy::SecretString;
use serde_json::{json, Value};

/// Settings for one Teams channel.
#[derive(Debug, Clone)]
pub struct TeamsConfig {
    /// The Workflows HTTP trigger URL. Secret: never printed.
    pub webhook_url: SecretString,
}

/// Posts Adaptive Cards to one Workflows webhook.
#[derive(Debug, Clone)]
pub struct TeamsAdapter {
    config: TeamsConfig,
}

impl TeamsAdapter {
    /// Wraps a config.
    pub fn new(config: TeamsConfig) -> Self {
        TeamsAdapter { config }
    }

    /// The message with its Adaptive Card for `msg`.
    fn body(msg: &OutMessage) -> Value {
        json!({
            "type": "message",
            "attachments": [{
                "contentType": "application/vnd.microsoft.card.adaptive",
                "content": {
                    "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                    "type": "AdaptiveCard",
                    "version": "1.2",
                    "body": [{"type": "TextBlock", "text": msg.text, "wrap": true}]
                }
            }]
        })
    }
}

impl Provider for TeamsAdapter {
    const NAME: &'static str = "Teams";

    async fn request(&self, http: &Http, msg: &OutMessage) -> Request {
        Ok(post_json(http, &self.config.webhook_url, &Self::body(msg)))
    }

    fn classify(&self, reply: &HttpReply, now: DateTime<Utc>) -> Outcome {
        classify(reply.status, &reply.headers, &reply.body, now)
    }

    /// A Workflows webhook cannot be checked without posting.
    async fn check(&self, _http: &Http) -> Check {
        Check::Unchecked(
            "cannot be checked without posting: every request to a Workflows URL runs its flow"
                .into(),
        )
    }
}

/// Classifies one answer. Pure.
pub fn classify(status: u16, headers: &HeaderMap, body: &str, now: DateTime<Utc>) -> Outcome {
    if (200..300).contains(&status) {
        return Outcome::Delivered { receipt: None };
    }
    failure("Teams", status, headers, body, now, None)
}

use crate::channels::{KindSettings, KindSpec, Resolve, Settings};
use crate::render::preview::Platform;

/// The `teams` kind: one incoming webhook, whose URL is itself the secret.
pub static KIND: KindSpec = KindSpec::social("teams", Platform::Teams, false, "1/s", declare);

fn declare(table: toml::Table, r: &mut Resolve<'_>) -> Result<Option<Settings>, String> {
    let webhook_url = super::http::chat_webhook(table, r)?;
    Ok(webhook_url.map(|webhook_url| Settings::new(TeamsConfig { webhook_url })))
}

impl KindSettings for TeamsConfig {
    fn build(&self, s: &super::Setup<'_>) -> Result<Box<dyn super::Deliver>, String> {
        s.http(TeamsAdapter::new(self.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::super::http::testing::{busy_then_refused, client, post};
    use super::super::HttpAdapter;
    use super::*;
    use wiremock::matchers::{body_json, header, method, path, query_param};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    fn adapter(url: String) -> HttpAdapter<TeamsAdapter> {
        HttpAdapter::new(
            TeamsAdapter::new(TeamsConfig {
                webhook_url: url.into(),
            }),
            client(),
        )
    }

    #[tokio::test]
    async fn posts_an_adaptive_card() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/workflows/abc/triggers/manual/paths/invoke"))
            .and(query_param("sig", "secret-sig"))
            .and(header("content-type", "application/json"))
            .and(body_json(json!({
                "type": "message",
                "attachments": [{
                    "contentType": "application/vnd.microsoft.card.adaptive",
                    "content": {
                        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                        "type": "AdaptiveCard",
                        "version": "1.2",
                        "body": [{"type": "TextBlock", "text": "Check-in restored", "wrap": true}]
                    }
                }]
            })))
            .respond_with(ResponseTemplate::new(202))
            .expect(1)
            .mount(&server)
            .await;
        let out = adapter(format!(
            "{}/workflows/abc/triggers/manual/paths/invoke?sig=secret-sig",
            server.uri()
        ))
        .send(&post("k", "Check-in restored"))
        .await;
        assert_eq!(out, Outcome::Delivered { receipt: None });
    }

    #[tokio::test]
    async fn throttled_retries_and_bad_request_rejects() {
        let (server, out) = busy_then_refused(adapter, 12, "/bad", 400, "Bad card").await;
        assert!(matches!(out, Outcome::Rejected { .. }));
        assert!(matches!(
            adapter(server.uri()).check().await,
            Check::Unchecked(_)
        ));
    }
}
