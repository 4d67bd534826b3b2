//! Matrix adapter: posts each update as an `m.text` message in one room, as a reply to the
//! incident's previous message.
//!
//! Request (Client-Server API v3, <https://spec.matrix.org/latest/client-server-api/#put_matrixclientv3roomsroomidsendeventtypetxnid>):
//! `PUT {homeserver}/_matrix/client/v3/rooms/{roomId}/send/m.room.message/{txnId}` with
//! `Authorization: Bearer <access token>` and JSON `msgtype: "m.text"`, `body`, an empty
//! `m.mentions` (nobody is mentioned: `@room` in an update notifies no one) and, in a thread,
//! `"m.relates_to": {"m.in_reply_to": {"event_id": <previous event>}}`.
//!
//! The transaction id is the delivery's idempotency key: the homeserver de-duplicates a repeated
//! txnId from the same access token and answers with the first event's id, so a send repeated
//! after a crash or a timeout never posts twice. The answer's `event_id` is the receipt.
//!
//! Classification: 2xx → `Delivered`; 429 `M_LIMIT_EXCEEDED` → `Retry` after `Retry-After` or
//! the body's `retry_after_ms`; 5xx → `Retry`; 401 `M_UNKNOWN_TOKEN`, 403 `M_FORBIDDEN` (not in
//! the room) and other 4xx → `Rejected`. Check: `GET /_matrix/client/v3/account/whoami`, then
//! `GET …/rooms/{roomId}/joined_members` (answered only to members) to tell a good token that
//! is not in the room.

use super::http::{failure, path_segment, snippet};
use super::outcome::{HttpReply, OutMessage, Outcome};
use super::provider::read;
use super::{Check, Http, Provider, Request};
use chrono::{DateTime, Utc};
use reqwest::header::HeaderMap;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};
use std::time::Duration;

/// Settings for one Matrix channel.
#[derive(Debug, Clone)]
pub struct MatrixConfig {
    /// The homeserver's client API origin, e.g. `https://matrix.example.org`.
    pub base_url: String,
    /// The access token of the posting user. Never printed.
    pub access_token: SecretString,
    /// The room id, e.g. `!abc:example.org`.
    pub room_id: String,
}

/// Posts messages to one Matrix room.
#[derive(Debug, Clone)]
pub struct MatrixAdapter {
    config: MatrixConfig,
}

impl MatrixAdapter {
    /// Wraps a config.
    pub fn new(config: MatrixConfig) -> Self {
        MatrixAdapter { config }
    }

    fn base(&self) -> &str {
        self.config.base_url.trim_end_matches('/')
    }

    /// The URL of the send request for transaction `txn_id`.
    fn send_url(&self, txn_id: &str) -> String {
        format!(
            "{}/_matrix/client/v3/rooms/{}/send/m.room.message/{}",
            self.base(),
            path_segment(&self.config.room_id),
            path_segment(txn_id)
        )
    }

    /// The event content for `msg`.
    fn content(msg: &OutMessage) -> Value {
        // An empty `m.mentions` says the event mentions nobody: clients that follow the spec
        // (v1.7, intentional mentions) then stop matching `@room`, display names and user ids
        // in the body, so an update that quotes one never notifies the room.
        let mut c = json!({"msgtype": "m.text", "body": msg.text, "m.mentions": {}});
        if let Some(t) = &msg.thread {
            c["m.relates_to"] = json!({"m.in_reply_to": {"event_id": t.parent}});
        }
        c
    }
}

impl Provider for MatrixAdapter {
    const NAME: &'static str = "Matrix";

    /// Sends one message, idempotent by its txnId.
    async fn request(&self, http: &Http, msg: &OutMessage) -> Request {
        Ok(http
            .client
            .put(self.send_url(&msg.idempotency_key))
            .bearer_auth(self.config.access_token.expose_secret())
            .json(&Self::content(msg)))
    }

    fn classify(&self, reply: &HttpReply, now: DateTime<Utc>) -> Outcome {
        classify(reply.status, &reply.headers, &reply.body, now)
    }

    /// Verifies the token with `whoami` (posts nothing).
    async fn check(&self, http: &Http) -> Check {
        let request = http
            .client
            .get(format!("{}/_matrix/client/v3/account/whoami", self.base()))
            .bearer_auth(self.config.access_token.expose_secret());
        match read(http, request, "whoami").await {
            Ok(v) => {
                let user = v["user_id"].as_str().unwrap_or("?").to_owned();
                self.check_membership(http, &user).await
            }
            Err(failed) => failed,
        }
    }
}

impl MatrixAdapter {
    /// The token works; can its user post in the room? (`joined_members` answers only members.)
    async fn check_membership(&self, http: &Http, user: &str) -> Check {
        let request = http
            .client
            .get(format!(
                "{}/_matrix/client/v3/rooms/{}/joined_members",
                self.base(),
                path_segment(&self.config.room_id)
            ))
            .bearer_auth(self.config.access_token.expose_secret());
        match http.exchange(request).await {
            Ok(r) if (200..300).contains(&r.status) => Check::Ok(format!(
                "token valid for {user}, a member of {}",
                self.config.room_id
            )),
            Ok(r) => Check::Failed(format!(
                "token valid for {user}, but it cannot read {} (HTTP {}: {}); invite and join it first",
                self.config.room_id,
                r.status,
                snippet(&r.body)
            )),
            Err(o) => Check::Failed(o.reason().to_owned()),
        }
    }
}

/// Classifies one send answer. Pure.
pub fn classify(status: u16, headers: &HeaderMap, body: &str, now: DateTime<Utc>) -> Outcome {
    let v: Value = serde_json::from_str(body).unwrap_or_default();
    if (200..300).contains(&status) {
        return Outcome::Delivered {
            receipt: v["event_id"].as_str().map(str::to_owned),
        };
    }
    let from_body = v["retry_after_ms"]
        .as_u64()
        .map(|ms| Duration::from_millis(ms).min(super::retry_after::DEFAULT_MAX_RETRY_AFTER));
    failure("Matrix", status, headers, body, now, from_body)
}

use crate::channels::{KindSettings, KindSpec, Resolve, Settings};
use crate::render::preview::Platform;

/// The `matrix` kind: a room.
pub static KIND: KindSpec = KindSpec::social("matrix", Platform::Matrix, true, "5/s", declare);

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct MatrixFile {
    access_token_env: Option<String>,
    room_id: Option<String>,
}

fn declare(table: toml::Table, r: &mut Resolve<'_>) -> Result<Option<Settings>, String> {
    let f: MatrixFile = r.declared(table)?;
    let access_token = r.secret("access_token_env", f.access_token_env);
    match &f.room_id {
        // Room versions before 12 end in `:server`; version 12 ids are `!` + a hash.
        Some(id) if id.starts_with('!') && id.len() > 1 => {}
        _ => r.invalid(
            "room_id must be a room id (starting with !) such as !abc123:example.org, not an alias",
        ),
    }
    if r.base_url().is_none() {
        r.invalid("base_url is missing: the homeserver, e.g. https://matrix.example.org");
    }
    let (Some(access_token), Some(room_id)) = (access_token, f.room_id) else {
        return Ok(None);
    };
    Ok(Some(Settings::new(MatrixConfig {
        base_url: r.base(""),
        access_token: access_token.into(),
        room_id,
    })))
}

impl KindSettings for MatrixConfig {
    fn build(&self, s: &super::Setup<'_>) -> Result<Box<dyn super::Deliver>, String> {
        s.http(MatrixAdapter::new(self.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::super::http::testing::{client, post, reply};
    use super::super::HttpAdapter;
    use super::*;
    use wiremock::matchers::{body_json, header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    const TOKEN: &str = "syt_secret_token";

    fn adapter(base: &str, token: &str) -> HttpAdapter<MatrixAdapter> {
        HttpAdapter::new(
            MatrixAdapter::new(MatrixConfig {
                base_url: base.into(),
                access_token: token.into(),
                room_id: "!room1:example.org".into(),
            }),
            client(),
        )
    }

    #[tokio::test]
    async fn puts_with_the_key_as_txn_id_and_replies_in_thread() {
        let server = MockServer::start().await;
        Mock::given(method("PUT"))
            .and(path(
                "/_matrix/client/v3/rooms/%21room1%3Aexample.org/send/m.room.message/key-1",
            ))
            .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
            .and(header("content-type", "application/json"))
            .and(body_json(
                json!({"msgtype": "m.text", "body": "Outage", "m.mentions": {}}),
            ))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"event_id": "$ev1"})))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("PUT"))
            .and(path(
                "/_matrix/client/v3/rooms/%21room1%3Aexample.org/send/m.room.message/key-2",
            ))
            .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
            .and(body_json(json!({
                "msgtype": "m.text",
                "body": "Fixed",
                "m.mentions": {},
                "m.relates_to": {"m.in_reply_to": {"event_id": "$ev1"}}
            })))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"event_id": "$ev2"})))
            .expect(1)
            .mount(&server)
            .await;
        let a = adapter(&server.uri(), TOKEN);
        assert_eq!(
            a.send(&post("key-1", "Outage")).await,
            Outcome::Delivered {
                receipt: Some("$ev1".into())
            }
        );
        assert_eq!(
            a.send(&reply("key-2", "Fixed", "$ev1", "$ev1")).await,
            Outcome::Delivered {
                receipt: Some("$ev2".into())
            }
        );
    }

    #[tokio::test]
    async fn limit_exceeded_retries_after_retry_after_ms() {
        let server = MockServer::start().await;
        Mock::given(method("PUT"))
            .respond_with(ResponseTemplate::new(429).set_body_json(json!({
                "errcode": "M_LIMIT_EXCEEDED", "error": "Too many requests", "retry_after_ms": 2500
            })))
            .expect(1)
            .mount(&server)
            .await;
        let out = adapter(&server.uri(), TOKEN).send(&post("k", "x")).await;
        assert!(
            matches!(&out, Outcome::Retry { after: Some(d), .. } if *d == Duration::from_millis(2500)),
            "{out:?}"
        );
        let o = classify(
            403,
            &HeaderMap::new(),
            r#"{"errcode":"M_FORBIDDEN","error":"User not in room"}"#,
            Utc::now(),
        );
        assert!(matches!(&o, Outcome::Rejected { reason } if reason.contains("M_FORBIDDEN")));
    }

    #[tokio::test]
    async fn check_reports_a_room_the_user_is_not_in() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/_matrix/client/v3/account/whoami"))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(json!({"user_id": "@crier:example.org"})),
            )
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path(
                "/_matrix/client/v3/rooms/%21room1%3Aexample.org/joined_members",
            ))
            .respond_with(
                ResponseTemplate::new(403)
                    .set_body_json(json!({"errcode": "M_FORBIDDEN", "error": "User not in room"})),
            )
            .expect(1)
            .mount(&server)
            .await;
        let out = adapter(&server.uri(), TOKEN).check().await;
        assert!(
            matches!(&out, Check::Failed(s) if s.contains("M_FORBIDDEN") && s.contains("join")),
            "{out:?}"
        );
    }

    #[tokio::test]
    async fn check_uses_whoami() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/_matrix/client/v3/account/whoami"))
            .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(json!({"user_id": "@crier:example.org"})),
            )
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/_matrix/client/v3/account/whoami"))
            .respond_with(ResponseTemplate::new(401).set_body_json(
                json!({"errcode": "M_UNKNOWN_TOKEN", "error": "Invalid access token passed."}),
            ))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path(
                "/_matrix/client/v3/rooms/%21room1%3Aexample.org/joined_members",
            ))
            .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
            .respond_with(ResponseTemplate::new(200).set_body_json(
                json!({"joined": {"@crier:example.org": {"display_name": "crier"}}}),
            ))
            .expect(1)
            .mount(&server)
            .await;
        let good = adapter(&server.uri(), TOKEN).check().await;
        assert!(
            matches!(&good, Check::Ok(s) if s.contains("@crier:example.org") && s.contains("member")),
            "{good:?}"
        );
        let bad = adapter(&server.uri(), "nope").check().await;
        assert!(
            matches!(&bad, Check::Failed(s) if s.contains("M_UNKNOWN_TOKEN")),
            "{bad:?}"
        );
    }
}
