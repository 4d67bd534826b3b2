//! A channel kind that crier does not ship, added the way docs/CHANNELS.md says and through
//! the public registration path only: its module (a `KindSpec` with its declared keys, its
//! settings building a `Provider` on the one send path) registered with one line
//! (`Kinds::builtin().with(&PAGER)`), configured in a TOML channel file, loaded like every
//! channels folder, started by the real dispatcher and sending to a mock provider end to end.
//! Nothing here reaches inside the adapters, the channel loader or the dispatcher.

use super::http::failure;
use super::http::testing::post;
use super::{Deliver, Http, HttpReply, OutMessage, Outcome, Provider, Request, Setup};
use crate::channels::{
    self, Audiences, KindSettings, KindSpec, Kinds, Reach, Resolve, Settings as ChannelSettings,
};
use crate::dispatch::{Clock, Dispatcher};
use crate::render::preview::Platform;
use crate::render::{Settings, Templates};
use crate::store::Store;
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use std::path::PathBuf;
use std::sync::Arc;
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// The worked example of docs/CHANNELS.md: a pager service. Its one registration line is in
/// the test below.
static PAGER: KindSpec = KindSpec {
    name: "pager",
    platform: Platform::Slack,
    render_key: false,
    audience: Audiences::Fixed("posts to its pager service"),
    reach: Reach::Nobody,
    social: false,
    threads: false,
    rate: "10/s",
    declare,
};

/// The kind's own keys in a channel file.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PagerFile {
    token_env: Option<String>,
}

fn declare(table: toml::Table, r: &mut Resolve<'_>) -> Result<Option<ChannelSettings>, String> {
    let f: PagerFile = r.declared(table)?;
    let token = r.secret("token_env", f.token_env);
    if r.base_url().is_none() {
        r.invalid("base_url is missing: the pager service, e.g. https://pager.example");
    }
    Ok(token.map(|token| {
        ChannelSettings::new(PagerAdapter {
            base_url: r.base(""),
            token: token.into(),
        })
    }))
}

#[derive(Debug, Clone)]
struct PagerAdapter {
    base_url: String,
    token: SecretString,
}

impl KindSettings for PagerAdapter {
    fn build(&self, s: &Setup<'_>) -> Result<Box<dyn Deliver>, String> {
        s.http(self.clone())
    }
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
    let dir = tempfile::tempdir().unwrap();
    let channels_dir = dir.path().join("channels");
    std::fs::create_dir_all(&channels_dir).unwrap();
    std::fs::write(
        channels_dir.join("pager.toml"),
        format!(
            "kind = \"pager\"\nbase_url = \"{}\"\ntoken_env = \"PAGER_TOKEN\"\nrate = \"100/s\"\nsend_timeout = \"5s\"\n",
            server.uri()
        ),
    )
    .unwrap();
    let env = |name: &str| (name == "PAGER_TOKEN").then(|| "pager-token".to_owned());
    // The one registration line.
    let kinds = Kinds::builtin().with(&PAGER);
    let loaded = channels::load_with(&channels_dir, &env, &kinds).unwrap();
    assert_eq!(loaded.skipped, Vec::<(String, String)>::new());
    let store = Store::open(&dir.path().join("db")).unwrap();
    let templates = Arc::new(
        Templates::load(
            &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("templates"),
            &[],
        )
        .unwrap(),
    );
    let (_stop, stopped) = tokio::sync::watch::channel(false);
    let (dispatcher, _running) = Dispatcher::start(
        store,
        templates,
        Arc::new(Settings::default()),
        loaded.active,
        dir.path(),
        Clock::new(),
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
