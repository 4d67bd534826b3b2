//! Discord adapter: posts each update through a channel webhook.
//!
//! Request (<https://discord.com/developers/docs/resources/webhook#execute-webhook>):
//! `POST {webhook_url}?wait=true` with JSON `content` (≤ 2000 characters) and
//! `allowed_mentions: {"parse": []}`, so that an `@everyone` or a role name in an update never
//! pings anyone. `wait=true` makes Discord answer with the created message, whose `id` is the
//! receipt. A webhook cannot reply to a message, so Discord does not thread.
//!
//! Rate limits (<https://discord.com/developers/docs/topics/rate-limits>): a 429 carries
//! `retry_after` (seconds, fractional) in its JSON body and a `Retry-After` header → `Retry`
//! after the body's value (rounded up), else the header's. A success with
//! `X-RateLimit-Remaining: 0` closes the gate for `X-RateLimit-Reset-After` seconds, so the next
//! send waits instead of hitting the 429. The webhook URL holds its token: it is never printed.
//! Check: `GET {webhook_url}` returns the webhook (its name and channel) without posting.

use super::http::{failure, header, seconds};
use super::outcome::{HttpReply, OutMessage, Outcome};
use super::provider::read;
use super::{Check, Http, Provider, Request};
use chrono::{DateTime, Utc};
use reqwest::header::HeaderMap;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};
use std::time::Duration;

/// Settings for one Discord channel.
#[derive(Debug, Clone)]
pub struct DiscordConfig {
    /// `https://discord.com/api/webhooks/{id}/{token}`. Secret: never printed.
    pub webhook_url: SecretString,
}

/// Posts to one Discord webhook.
#[derive(Debug)]
pub struct DiscordAdapter {
    config: DiscordConfig,
}

impl DiscordAdapter {
    /// Wraps a config.
    pub fn new(config: DiscordConfig) -> Self {
        DiscordAdapter { config }
    }

    fn send_url(&self) -> String {
        let sep = if self.config.webhook_url.expose_secret().contains('?') {
            '&'
        } else {
            '?'
        };
        format!("{}{sep}wait=true", self.config.webhook_url.expose_secret())
    }

    /// The JSON body for `msg`.
    fn body(msg: &OutMessage) -> Value {
        json!({"content": msg.text, "allowed_mentions": {"parse": []}})
    }
}

impl Provider for DiscordAdapter {
    const NAME: &'static str = "Discord";

    async fn request(&self, http: &Http, msg: &OutMessage) -> Request {
        Ok(http.client.post(self.send_url()).json(&Self::body(msg)))
    }

    fn classify(&self, reply: &HttpReply, now: DateTime<Utc>) -> Outcome {
        classify(reply.status, &reply.headers, &reply.body, now)
    }

    /// Discord says how many seconds are left in the window (`X-RateLimit-Reset-After`).
    fn rate_window(&self, headers: &HeaderMap, _now: DateTime<Utc>) -> Option<Duration> {
        if header(headers, "x-ratelimit-remaining") != Some("0") {
            return None;
        }
        header(headers, "x-ratelimit-reset-after")
            .and_then(|v| v.trim().parse::<f64>().ok())
            .and_then(|f| seconds(&json!(f)))
    }

    /// Reads the webhook (`GET` on its URL), which proves it exists without posting.
    async fn check(&self, http: &Http) -> Check {
        let request = http.client.get(self.config.webhook_url.expose_secret());
        match read(http, request, "the webhook").await {
            Ok(v) => Check::Ok(format!(
                "webhook \"{}\" posts to channel {}",
                v["name"].as_str().unwrap_or("?"),
                v["channel_id"].as_str().unwrap_or("?")
            )),
            Err(failed) => failed,
        }
    }
}

/// Classifies one execute-webhook answer. Pure.
pub fn classify(status: u16, headers: &HeaderMap, body: &str, now: DateTime<Utc>) -> Outcome {
    let v: Value = serde_json::from_str(body).unwrap_or_default();
    if (200..300).contains(&status) {
        return Outcome::Delivered {
            receipt: v["id"].as_str().map(str::to_owned),
        };
    }
    let from_body = if status == 429 {
        seconds(&v["retry_after"])
    } else {
        None
    };
    match (
        failure("Discord", status, headers, body, now, None),
        from_body,
    ) {
        (Outcome::Retry { reason, after }, Some(b)) => Outcome::Retry {
            reason,
            after: Some(after.map_or(b, |h| h.max(b))),
        },
        (o, _) => o,
    }
}

use crate::channels::{KindSettings, KindSpec, Resolve, Settings};
use crate::render::preview::Platform;

/// The `discord` kind: one incoming webhook, whose URL is itself the secret.
pub static KIND: KindSpec = KindSpec::social("discord", Platform::Discord, false, "2/s", declare);

fn declare(table: toml::Table, r: &mut Resolve<'_>) -> Result<Option<Settings>, String> {
    let webhook_url = super::http::chat_webhook(table, r)?;
    Ok(webhook_url.map(|webhook_url| Settings::new(DiscordConfig { webhook_url })))
}

impl KindSettings for DiscordConfig {
    fn build(&self, s: &super::Setup<'_>) -> Result<Box<dyn super::Deliver>, String> {
        s.http(DiscordAdapter::new(self.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::super::http::testing::{client, delivered_then_deferred, once, post};
    use super::super::HttpAdapter;
    use super::*;
    use wiremock::matchers::{body_json, header, method, path, query_param};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    const HOOK: &str = "/api/webhooks/1234/s3cr3t-token";

    fn adapter(base: &str) -> HttpAdapter<DiscordAdapter> {
        HttpAdapter::new(
            DiscordAdapter::new(DiscordConfig {
                webhook_url: format!("{base}{HOOK}").into(),
            }),
            client(),
        )
    }

    #[tokio::test]
    async fn posts_content_without_mentions_and_waits_for_the_message() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path(HOOK))
            .and(query_param("wait", "true"))
            .and(header("content-type", "application/json"))
            .and(body_json(json!({
                "content": "@everyone Häiriö ohi",
                "allowed_mentions": {"parse": []}
            })))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({"id": "998877", "channel_id": "55"})),
            )
            .expect(1)
            .mount(&server)
            .await;
        let out = adapter(&server.uri())
            .send(&post("k", "@everyone Häiriö ohi"))
            .await;
        assert_eq!(
            out,
            Outcome::Delivered {
                receipt: Some("998877".into())
            }
        );
    }

    #[tokio::test]
    async fn rate_limited_uses_the_body_retry_after() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(
                ResponseTemplate::new(429)
                    .insert_header("Retry-After", "1")
                    .set_body_json(json!({
                        "message": "You are being rate limited.",
                        "retry_after": 2.4,
                        "global": false
                    })),
            )
            .expect(1)
            .mount(&server)
            .await;
        let out = adapter(&server.uri()).send(&post("k", "x")).await;
        assert!(
            matches!(&out, Outcome::Retry { after: Some(d), .. } if *d == Duration::from_secs(3)),
            "{out:?}"
        );
        assert!(!out.reason().contains("s3cr3t"));
    }

    #[tokio::test]
    async fn an_exhausted_bucket_defers_the_next_send() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(
                ResponseTemplate::new(200)
                    .insert_header("X-RateLimit-Limit", "5")
                    .insert_header("X-RateLimit-Remaining", "0")
                    .insert_header("X-RateLimit-Reset-After", "60.5")
                    .set_body_json(json!({"id": "1"})),
            )
            .expect(1)
            .mount(&server)
            .await;
        // The second is not sent (expect(1) above): deferred until the bucket refills.
        delivered_then_deferred(&adapter(&server.uri()), Duration::from_secs(55)).await;
    }

    #[tokio::test]
    async fn check_reads_the_webhook() {
        let server = MockServer::start().await;
        once(&server, "GET", HOOK, ResponseTemplate::new(200).set_body_json(
                json!({"id": "1234", "name": "Status", "channel_id": "55", "token": "s3cr3t-token"}),
            )).await;
        once(
            &server,
            "GET",
            "/api/webhooks/1234/wrong",
            ResponseTemplate::new(401)
                .set_body_json(json!({"message": "Invalid Webhook Token", "code": 50027})),
        )
        .await;
        let good = adapter(&server.uri()).check().await;
        assert!(
            matches!(&good, Check::Ok(s) if s.contains("Status") && !s.contains("s3cr3t")),
            "{good:?}"
        );
        let bad = HttpAdapter::new(
            DiscordAdapter::new(DiscordConfig {
                webhook_url: format!("{}/api/webhooks/1234/wrong", server.uri()).into(),
            }),
            client(),
        )
        .check()
        .await;
        assert!(
            matches!(&bad, Check::Failed(s) if s.contains("401")),
            "{bad:?}"
        );
    }
}
