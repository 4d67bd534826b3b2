//! A channel kind that crier does not ship, added the way docs/CHANNELS.md says: a `Provider`
//! (build the request, classify the answer) on the public one send path (`HttpAdapter::new`,
//! `Adapter::new`), handed to the dispatcher with its channel, sending to a mock provider end to
//! end. Nothing here reaches inside the adapters or the dispatcher.

use super::http::failure;
use super::http::testing::post;
use super::{Adapter, Http, HttpAdapter, HttpReply, OutMessage, Outcome, Provider, Request};
use crate::channels::{Audience, Channel, Kind, Rate, Settings as ChannelSettings};
use crate::dispatch::Dispatcher;
use crate::domain::Locale;
use crate::render::preview::Platform;
use crate::render::{Settings, Templates};
use crate::store::Store;
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// The worked example of docs/CHANNELS.md: a pager service.
#[derive(Debug)]
struct PagerAdapter {
    base_url: String,
    token: SecretString,
}

impl Provider for PagerAdapter {
    const NAME: &'static str = "Pager";

    async fn request(&self, http: &Http, msg: &OutMessage) -> Request {
        Ok(http
            .client
            .post(format!("{}/v1/pages", self.base_url))
            .bearer_auth(self.token.expose_secret())
            .header("Idempotency-Key", &msg.idempotency_key)
            .json(&json!({"text": msg.text})))
    }

    fn classify(&self, reply: &HttpReply, now: DateTime<Utc>) -> Outcome {
        match reply.status {
            200..=299 => Outcome::Delivered {
                receipt: serde_json::from_str::<serde_json::Value>(&reply.body)
                    .ok()
                    .and_then(|v| v["id"].as_str().map(str::to_owned)),
            },
            s => failure(Self::NAME, s, &reply.headers, &reply.body, now, None),
        }
    }
}

fn channel(name: &str) -> Channel {
    Channel {
        name: name.into(),
        kind: Kind::Webhook,
        audience: Audience::Fixed,
        rate: Rate {
            n: 100,
            per: Duration::from_secs(1),
        },
        concurrency: 1,
        locale: Locale::english(),
        timezone: None,
        platform: Platform::Slack,
        policy_name: "thread".into(),
        sms_max_segments: 3,
        approval_required: false,
        base_url: None,
        retry: vec![Duration::from_secs(10)],
        send_timeout: Duration::from_secs(5),
        settings: ChannelSettings::Log,
        templates: None,
    }
}

#[tokio::test]
async fn a_new_kind_sends_end_to_end() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/pages"))
        .and(header("authorization", "Bearer pager-token"))
        .and(header("idempotency-key", "k1"))
        .and(body_json(json!({"text": "Payments degraded"})))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": "pg-1"})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/pages"))
        .and(body_json(json!({"text": "busy"})))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "99999999"))
        .expect(1)
        .mount(&server)
        .await;
    let pager = PagerAdapter {
        base_url: server.uri(),
        token: "pager-token".into(),
    };
    let adapter = Adapter::new(
        HttpAdapter::new(pager, reqwest::Client::new()),
        Duration::from_secs(5),
    );
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("db")).unwrap();
    let templates = Arc::new(
        Templates::load(
            &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("templates"),
            &[],
        )
        .unwrap(),
    );
    let (_stop, stopped) = tokio::sync::watch::channel(false);
    let (dispatcher, _running) = Dispatcher::start_with(
        store,
        templates,
        Arc::new(Settings::default()),
        vec![(channel("pager"), adapter)],
        stopped,
    )
    .await
    .unwrap();
    assert_eq!(
        dispatcher
            .send_direct("pager", &post("k1", "Payments degraded"))
            .await,
        Some(Outcome::Delivered {
            receipt: Some("pg-1".into())
        })
    );
    // The one send path clamps a provider's Retry-After (here about three years).
    match dispatcher.send_direct("pager", &post("k2", "busy")).await {
        Some(Outcome::Retry { after: Some(d), .. }) => {
            assert_eq!(d, super::retry_after::DEFAULT_MAX_RETRY_AFTER)
        }
        other => panic!("expected a clamped retry, got {other:?}"),
    }
}
