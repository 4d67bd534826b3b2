//! Mastodon adapter: posts an update as a status on the channel's account, replying to the
//! incident's previous post so that one incident reads as one thread.
//!
//! Request (<https://docs.joinmastodon.org/methods/statuses/#create>):
//! `POST {instance}/api/v1/statuses` with `Authorization: Bearer <token>` (scope
//! `write:statuses`), `Idempotency-Key: <delivery key>` (the server keeps it about an hour, so a
//! retried timeout does not post twice) and a JSON body `status`, `visibility`, `language`
//! (the locale's primary subtag) and, in a thread, `in_reply_to_id` (the previous post's id).
//!
//! The answer's `id` is the receipt (and the next post's parent). Limits come from
//! `GET /api/v2/instance` (`configuration.statuses.max_characters`,
//! `characters_reserved_per_url`; 500 and 23 when the instance does not say), fetched once at
//! start-up and used to fit messages.
//!
//! Classification: 2xx → `Delivered`; 429 → `Retry` after `Retry-After` or the
//! `X-RateLimit-Reset` instant; 408/5xx → `Retry`; 401/403/422 and other 4xx → `Rejected`.
//! A reply with `X-RateLimit-Remaining: 0` defers the next send until `X-RateLimit-Reset`.

use super::http::{failure, language, reset_after, window};
use super::outcome::{HttpReply, OutMessage, Outcome};
use super::provider::read;
use super::{Check, Http, Provider, Request};
use crate::render::rules::{
    ChannelRule, Limit, MASTODON_DEFAULT_MAX_CHARS, MASTODON_DEFAULT_URL_WEIGHT,
};
use chrono::{DateTime, Utc};
use reqwest::header::HeaderMap;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};
use std::sync::RwLock;
use std::time::Duration;

/// Settings for one Mastodon channel; the token is resolved by the caller.
#[derive(Debug, Clone)]
pub struct MastodonConfig {
    /// The instance's origin, e.g. `https://mastodon.social`.
    pub base_url: String,
    /// An access token with `write:statuses` (and `read:accounts` for the check). Never printed.
    pub token: SecretString,
    /// `public`, `unlisted`, `private` or `direct`.
    pub visibility: String,
}

/// An instance's status length limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InstanceLimits {
    /// Longest status in characters.
    pub max_characters: usize,
    /// What one link counts.
    pub characters_reserved_per_url: usize,
}

impl Default for InstanceLimits {
    fn default() -> Self {
        InstanceLimits {
            max_characters: MASTODON_DEFAULT_MAX_CHARS,
            characters_reserved_per_url: MASTODON_DEFAULT_URL_WEIGHT,
        }
    }
}

impl InstanceLimits {
    /// Reads `GET /api/v2/instance`; missing or odd values fall back to the defaults.
    pub fn from_instance(v: &Value) -> InstanceLimits {
        let statuses = &v["configuration"]["statuses"];
        let read = |k: &str, default: usize| {
            statuses[k]
                .as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .filter(|n| *n > 0)
                .unwrap_or(default)
        };
        InstanceLimits {
            max_characters: read("max_characters", MASTODON_DEFAULT_MAX_CHARS),
            characters_reserved_per_url: read(
                "characters_reserved_per_url",
                MASTODON_DEFAULT_URL_WEIGHT,
            ),
        }
    }
}

/// Posts statuses to one Mastodon account.
#[derive(Debug)]
pub struct MastodonAdapter {
    config: MastodonConfig,
    limits: RwLock<Option<InstanceLimits>>,
}

impl MastodonAdapter {
    /// Wraps a config.
    pub fn new(config: MastodonConfig) -> Self {
        MastodonAdapter {
            config,
            limits: RwLock::new(None),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.config.base_url.trim_end_matches('/'))
    }

    /// The JSON body for `msg`.
    fn body(&self, msg: &OutMessage) -> Value {
        let mut body = json!({
            "status": msg.text,
            "visibility": self.config.visibility,
            "language": language(&msg.locale),
        });
        if let Some(t) = &msg.thread {
            body["in_reply_to_id"] = json!(t.parent);
        }
        body
    }

    /// Reads the instance's limits (`GET /api/v2/instance`, no authentication) and keeps them
    /// for [`rule`](Self::rule). Falls back to the defaults when the instance cannot say.
    pub async fn fetch_limits(&self, http: &Http) -> InstanceLimits {
        let request = http.client.get(self.url("/api/v2/instance"));
        let limits = match http.exchange(request).await {
            Ok(r) if (200..300).contains(&r.status) => serde_json::from_str::<Value>(&r.body)
                .map(|v| InstanceLimits::from_instance(&v))
                .unwrap_or_default(),
            Ok(r) => {
                tracing::warn!(
                    status = r.status,
                    "Mastodon instance limits unavailable; using 500/23"
                );
                InstanceLimits::default()
            }
            Err(o) => {
                tracing::warn!(outcome = ?o, "Mastodon instance limits unavailable; using 500/23");
                InstanceLimits::default()
            }
        };
        if let Ok(mut l) = self.limits.write() {
            *l = Some(limits);
        }
        limits
    }
}

impl Provider for MastodonAdapter {
    const NAME: &'static str = "Mastodon";

    /// Posts one status.
    async fn request(&self, http: &Http, msg: &OutMessage) -> Request {
        Ok(http
            .client
            .post(self.url("/api/v1/statuses"))
            .bearer_auth(self.config.token.expose_secret())
            .header("Idempotency-Key", &msg.idempotency_key)
            .json(&self.body(msg)))
    }

    fn classify(&self, reply: &HttpReply, now: DateTime<Utc>) -> Outcome {
        classify(reply.status, &reply.headers, &reply.body, now)
    }

    fn rate_window(&self, headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
        window(headers, "x-ratelimit-remaining", "x-ratelimit-reset", now)
    }

    async fn warm_up(&self, http: &Http) {
        self.fetch_limits(http).await;
    }

    /// The length rule with the instance's limits, once [`fetch_limits`](Self::fetch_limits)
    /// has run.
    fn rule(&self) -> Option<ChannelRule> {
        let limits = (*self.limits.read().ok()?)?;
        Some(ChannelRule::new(Limit::Mastodon {
            max_chars: limits.max_characters,
            url_weight: limits.characters_reserved_per_url,
        }))
    }

    /// Verifies the token (`GET /api/v1/accounts/verify_credentials`) without posting.
    async fn check(&self, http: &Http) -> Check {
        let request = http
            .client
            .get(self.url("/api/v1/accounts/verify_credentials"))
            .bearer_auth(self.config.token.expose_secret());
        match read(http, request, "verify_credentials").await {
            Ok(v) => {
                let limits = self.fetch_limits(http).await;
                Check::Ok(format!(
                    "token valid for @{} (statuses up to {} characters)",
                    v["acct"].as_str().unwrap_or("?"),
                    limits.max_characters
                ))
            }
            Err(failed) => failed,
        }
    }
}

/// Classifies one answer to `POST /api/v1/statuses`. Pure.
pub fn classify(status: u16, headers: &HeaderMap, body: &str, now: DateTime<Utc>) -> Outcome {
    if (200..300).contains(&status) {
        let id = serde_json::from_str::<Value>(body)
            .ok()
            .and_then(|v| v["id"].as_str().map(str::to_owned));
        return match id {
            Some(id) => Outcome::Delivered { receipt: Some(id) },
            // Accepted, but without an id the thread cannot continue from it.
            None => Outcome::Delivered { receipt: None },
        };
    }
    // Mastodon says when its window resets as an ISO 8601 instant.
    let reset = (status == 429)
        .then(|| reset_after(headers, "x-ratelimit-reset", now))
        .flatten();
    failure("Mastodon", status, headers, body, now, reset)
}

use crate::channels::{KindSettings, KindSpec, Resolve, Settings};
use crate::render::preview::Platform;

/// The `mastodon` kind: an account's statuses.
pub static KIND: KindSpec = KindSpec::social("mastodon", Platform::Mastodon, true, "30/m", declare);

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct MastodonFile {
    token_env: Option<String>,
    #[serde(default = "public")]
    visibility: String,
}

fn public() -> String {
    "public".into()
}

fn declare(table: toml::Table, r: &mut Resolve<'_>) -> Result<Option<Settings>, String> {
    let f: MastodonFile = r.declared(table)?;
    let token = r.secret("token_env", f.token_env);
    let visibility = f.visibility;
    if !["public", "unlisted", "private", "direct"].contains(&visibility.as_str()) {
        r.invalid(format!(
            "visibility = \"{visibility}\": use public, unlisted, private or direct"
        ));
    }
    if r.base_url().is_none() {
        r.invalid("base_url is missing: the instance, e.g. https://mastodon.social");
    }
    Ok(token.map(|token| {
        Settings::new(MastodonConfig {
            base_url: r.base(""),
            token: token.into(),
            visibility,
        })
    }))
}

impl KindSettings for MastodonConfig {
    fn build(&self, s: &super::Setup<'_>) -> Result<Box<dyn super::Deliver>, String> {
        s.http(MastodonAdapter::new(self.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::super::http::testing::{
        client, delivered_then_deferred, json_body, mount_once, once, post, reply,
    };
    use super::super::HttpAdapter;
    use super::*;
    use wiremock::matchers::{body_json, header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    const TOKEN: &str = "mastodon-token-xyz";

    fn adapter(base: &str) -> HttpAdapter<MastodonAdapter> {
        HttpAdapter::new(
            MastodonAdapter::new(MastodonConfig {
                base_url: base.into(),
                token: TOKEN.into(),
                visibility: "public".into(),
            }),
            client(),
        )
    }

    #[tokio::test]
    async fn posts_status_then_replies_in_thread() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/api/v1/statuses"))
            .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
            .and(header("idempotency-key", "key-a"))
            .and(header("content-type", "application/json"))
            .and(body_json(json!({
                "status": "Kassakatko jatkuu",
                "visibility": "public",
                "language": "fi"
            })))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(json!({"id": "110001", "uri": "x"})),
            )
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/api/v1/statuses"))
            .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
            .and(header("idempotency-key", "key-b"))
            .and(body_json(json!({
                "status": "Korjattu",
                "visibility": "public",
                "language": "fi",
                "in_reply_to_id": "110001"
            })))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "110002"})))
            .expect(1)
            .mount(&server)
            .await;
        let a = adapter(&server.uri());
        let first = a.send(&post("key-a", "Kassakatko jatkuu")).await;
        assert_eq!(
            first,
            Outcome::Delivered {
                receipt: Some("110001".into())
            }
        );
        let second = a
            .send(&reply("key-b", "Korjattu", "110001", "110001"))
            .await;
        assert_eq!(
            second,
            Outcome::Delivered {
                receipt: Some("110002".into())
            }
        );
        let reqs = server.received_requests().await.unwrap();
        assert_eq!(json_body(&reqs[1])["in_reply_to_id"], "110001");
    }

    #[tokio::test]
    async fn rate_limited_retries_after_the_header() {
        let server = MockServer::start().await;
        once(
            &server,
            "POST",
            "/api/v1/statuses",
            ResponseTemplate::new(429)
                .insert_header("Retry-After", "17")
                .set_body_json(json!({"error": "Too many requests"})),
        )
        .await;
        let out = adapter(&server.uri()).send(&post("k", "x")).await;
        assert!(
            matches!(&out, Outcome::Retry { after: Some(d), .. } if *d == Duration::from_secs(17)),
            "{out:?}"
        );
    }

    #[tokio::test]
    async fn an_empty_window_defers_the_next_send_until_the_reset() {
        let server = MockServer::start().await;
        let reset = (Utc::now() + chrono::Duration::seconds(600)).to_rfc3339();
        once(
            &server,
            "POST",
            "/api/v1/statuses",
            ResponseTemplate::new(200)
                .insert_header("X-RateLimit-Limit", "300")
                .insert_header("X-RateLimit-Remaining", "0")
                .insert_header("X-RateLimit-Reset", reset.as_str())
                .set_body_json(json!({"id": "1"})),
        )
        .await;
        delivered_then_deferred(&adapter(&server.uri()), Duration::from_secs(590)).await;
    }

    #[test]
    fn rate_limit_reset_header_and_rejections() {
        let now = Utc::now();
        let mut h = HeaderMap::new();
        h.insert("x-ratelimit-remaining", "0".parse().unwrap());
        let reset = (now + chrono::Duration::seconds(90)).to_rfc3339();
        h.insert("x-ratelimit-reset", reset.parse().unwrap());
        match classify(429, &h, "{}", now) {
            Outcome::Retry { after: Some(d), .. } => {
                assert!(d <= Duration::from_secs(90) && d >= Duration::from_secs(89))
            }
            o => panic!("{o:?}"),
        }
        let o = classify(
            422,
            &HeaderMap::new(),
            r#"{"error":"Validation failed: Text character limit of 500 exceeded"}"#,
            now,
        );
        assert!(matches!(&o, Outcome::Rejected { reason } if reason.contains("422")));
        assert!(matches!(
            classify(401, &HeaderMap::new(), "{}", now),
            Outcome::Rejected { .. }
        ));
    }

    #[tokio::test]
    async fn limits_come_from_the_instance_with_defaults() {
        let server = MockServer::start().await;
        once(&server, "GET", "/api/v2/instance", ResponseTemplate::new(200).set_body_json(json!({
                "domain": "example.social",
                "configuration": {"statuses": {"max_characters": 1000, "characters_reserved_per_url": 30}}
            }))).await;
        let a = adapter(&server.uri());
        assert_eq!(a.provider.rule(), None, "unknown until fetched");
        assert_eq!(
            a.provider.fetch_limits(a.http()).await,
            InstanceLimits {
                max_characters: 1000,
                characters_reserved_per_url: 30
            }
        );
        assert_eq!(
            a.provider.rule(),
            Some(ChannelRule::new(Limit::Mastodon {
                max_chars: 1000,
                url_weight: 30
            }))
        );
        assert_eq!(
            InstanceLimits::from_instance(&json!({"configuration": {}})),
            InstanceLimits {
                max_characters: 500,
                characters_reserved_per_url: 23
            }
        );
    }

    #[tokio::test]
    async fn check_verifies_credentials_good_and_bad() {
        let server = MockServer::start().await;
        mount_once(
            &server,
            Mock::given(method("GET"))
                .and(path("/api/v1/accounts/verify_credentials"))
                .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
                .respond_with(ResponseTemplate::new(200).set_body_json(json!({"acct": "status"}))),
        )
        .await;
        once(
            &server,
            "GET",
            "/api/v1/accounts/verify_credentials",
            ResponseTemplate::new(401)
                .set_body_json(json!({"error": "The access token is invalid"})),
        )
        .await;
        Mock::given(method("GET"))
            .and(path("/api/v2/instance"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
            .mount(&server)
            .await;
        let good = adapter(&server.uri()).check().await;
        assert!(
            matches!(&good, Check::Ok(s) if s.contains("@status") && s.contains("500")),
            "{good:?}"
        );
        let mut bad = adapter(&server.uri());
        bad.provider.config.token = "wrong".into();
        let out = bad.check().await;
        assert!(
            matches!(&out, Check::Failed(s) if s.contains("401") && !s.contains("wrong")),
            "{out:?}"
        );
    }
}
