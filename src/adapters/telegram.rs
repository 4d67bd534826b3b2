//! Telegram adapter: a bot posts each update to one chat (a group or a channel), replying to
//! the incident's previous message so the chat shows one thread per incident.
//!
//! Request (<https://core.telegram.org/bots/api#sendmessage>):
//! `POST {base}/bot<token>/sendMessage` with JSON `chat_id` (a number, or `@channelname`),
//! `text` (≤ 4096 characters, plain: no `parse_mode`, so nothing in an update can break the
//! markup) and, in a thread, `reply_to_message_id`. The bot token sits in the URL path, so
//! request errors are reported without their URL.
//!
//! The answer `{"ok":true,"result":{"message_id":N}}` gives the receipt `N`. Flood control
//! answers 429 with `parameters.retry_after` (seconds) in the body → `Retry` after that; a group
//! upgraded to a supergroup answers 400 with `parameters.migrate_to_chat_id` → `Rejected`
//! naming the new id to configure. Check: `getMe`.

use super::http::{failure, seconds, snippet};
use super::outcome::{HttpReply, OutMessage, Outcome};
use super::provider::read;
use super::{Check, Http, Provider, Request};
use chrono::{DateTime, Utc};
use reqwest::header::HeaderMap;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};

/// The Bot API's origin.
pub const DEFAULT_BASE_URL: &str = "https://api.telegram.org";

/// Settings for one Telegram channel; the token is resolved by the caller.
#[derive(Debug, Clone)]
pub struct TelegramConfig {
    /// API origin, normally [`DEFAULT_BASE_URL`].
    pub base_url: String,
    /// The bot's token (`123456:ABC…`). Never printed.
    pub bot_token: SecretString,
    /// The chat: a numeric id (groups are negative) or `@channelusername`.
    pub chat_id: String,
}

/// Sends messages to one chat through a bot.
#[derive(Debug, Clone)]
pub struct TelegramAdapter {
    config: TelegramConfig,
}

impl TelegramAdapter {
    /// Wraps a config.
    pub fn new(config: TelegramConfig) -> Self {
        TelegramAdapter { config }
    }

    fn url(&self, method: &str) -> String {
        format!(
            "{}/bot{}/{method}",
            self.config.base_url.trim_end_matches('/'),
            self.config.bot_token.expose_secret()
        )
    }

    /// The JSON body for `msg`.
    fn body(&self, msg: &OutMessage) -> Value {
        let chat: Value = match self.config.chat_id.parse::<i64>() {
            Ok(n) => json!(n),
            Err(_) => json!(self.config.chat_id),
        };
        let mut body = json!({"chat_id": chat, "text": msg.text});
        if let Some(t) = &msg.thread {
            body["reply_to_message_id"] = match t.parent.parse::<i64>() {
                Ok(n) => json!(n),
                Err(_) => json!(t.parent),
            };
        }
        body
    }
}

impl Provider for TelegramAdapter {
    const NAME: &'static str = "Telegram";

    async fn request(&self, http: &Http, msg: &OutMessage) -> Request {
        Ok(http
            .client
            .post(self.url("sendMessage"))
            .json(&self.body(msg)))
    }

    fn classify(&self, reply: &HttpReply, now: DateTime<Utc>) -> Outcome {
        classify(reply.status, &reply.headers, &reply.body, now)
    }

    /// Verifies the token with `getMe` (posts nothing).
    async fn check(&self, http: &Http) -> Check {
        let request = http.client.get(self.url("getMe"));
        match read(http, request, "getMe").await {
            Ok(v) => Check::Ok(format!(
                "bot @{} (posts to chat {})",
                v["result"]["username"].as_str().unwrap_or("?"),
                self.config.chat_id
            )),
            Err(failed) => failed,
        }
    }
}

/// Classifies one `sendMessage` answer. Pure.
pub fn classify(status: u16, headers: &HeaderMap, body: &str, now: DateTime<Utc>) -> Outcome {
    let v: Value = serde_json::from_str(body).unwrap_or_default();
    if (200..300).contains(&status) && v["ok"] == json!(true) {
        let id = &v["result"]["message_id"];
        let receipt = id
            .as_i64()
            .map(|n| n.to_string())
            .or_else(|| id.as_str().map(str::to_owned));
        return Outcome::Delivered { receipt };
    }
    if let Some(new_id) = v["parameters"]["migrate_to_chat_id"].as_i64() {
        return Outcome::rejected(format!(
            "Telegram: the group became a supergroup; set chat_id = {new_id}"
        ));
    }
    let after = seconds(&v["parameters"]["retry_after"]);
    if (200..300).contains(&status) {
        // 200 without ok: true is not something the Bot API does; try again later.
        return Outcome::retry(format!("Telegram answered {status}: {}", snippet(body)));
    }
    failure("Telegram", status, headers, body, now, after)
}

use crate::channels::{KindSettings, KindSpec, Resolve, Settings};
use crate::render::preview::Platform;

/// The `telegram` kind: a chat, through a bot.
pub static KIND: KindSpec = KindSpec::social("telegram", Platform::Telegram, true, "20/m", declare);

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TelegramFile {
    bot_token_env: Option<String>,
    chat_id: Option<ChatId>,
}

/// A Telegram chat: a number (`-1001234567890`) or `@channelusername`.
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum ChatId {
    Number(i64),
    Name(String),
}

fn declare(table: toml::Table, r: &mut Resolve<'_>) -> Result<Option<Settings>, String> {
    let f: TelegramFile = r.declared(table)?;
    let bot_token = r.secret("bot_token_env", f.bot_token_env);
    let chat_id = match f.chat_id {
        Some(ChatId::Name(s)) if !s.is_empty() => Some(s),
        Some(ChatId::Number(i)) => Some(i.to_string()),
        _ => {
            r.invalid(
                "chat_id is missing: the chat's id (e.g. -1001234567890) or @channelusername",
            );
            None
        }
    };
    let (Some(bot_token), Some(chat_id)) = (bot_token, chat_id) else {
        return Ok(None);
    };
    Ok(Some(Settings::new(TelegramConfig {
        base_url: r.base(DEFAULT_BASE_URL),
        bot_token: bot_token.into(),
        chat_id,
    })))
}

impl KindSettings for TelegramConfig {
    fn build(&self, s: &super::Setup<'_>) -> Result<Box<dyn super::Deliver>, String> {
        s.http(TelegramAdapter::new(self.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::super::http::testing::{client, once, post, reply};
    use super::super::HttpAdapter;
    use super::*;
    use std::time::Duration;
    use wiremock::matchers::{body_json, header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    const TOKEN: &str = "123456:ABC-secret";

    fn adapter(base: &str, token: &str) -> HttpAdapter<TelegramAdapter> {
        HttpAdapter::new(
            TelegramAdapter::new(TelegramConfig {
                base_url: base.into(),
                bot_token: token.into(),
                chat_id: "-1001234567890".into(),
            }),
            client(),
        )
    }

    #[tokio::test]
    async fn sends_then_replies_to_the_previous_message() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path(format!("/bot{TOKEN}/sendMessage")))
            .and(header("content-type", "application/json"))
            .and(body_json(
                json!({"chat_id": -1001234567890_i64, "text": "Häiriö"}),
            ))
            .respond_with(ResponseTemplate::new(200).set_body_json(
                json!({"ok": true, "result": {"message_id": 41, "chat": {"id": -1001234567890_i64}}}),
            ))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path(format!("/bot{TOKEN}/sendMessage")))
            .and(body_json(json!({
                "chat_id": -1001234567890_i64,
                "text": "Korjattu",
                "reply_to_message_id": 41
            })))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({"ok": true, "result": {"message_id": 42}})),
            )
            .expect(1)
            .mount(&server)
            .await;
        let a = adapter(&server.uri(), TOKEN);
        assert_eq!(
            a.send(&post("k1", "Häiriö")).await,
            Outcome::Delivered {
                receipt: Some("41".into())
            }
        );
        assert_eq!(
            a.send(&reply("k2", "Korjattu", "41", "41")).await,
            Outcome::Delivered {
                receipt: Some("42".into())
            }
        );
    }

    #[tokio::test]
    async fn flood_control_retries_after_the_body_value() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(429).set_body_json(json!({
                "ok": false, "error_code": 429,
                "description": "Too Many Requests: retry after 35",
                "parameters": {"retry_after": 35}
            })))
            .expect(1)
            .mount(&server)
            .await;
        let out = adapter(&server.uri(), TOKEN).send(&post("k", "x")).await;
        assert!(
            matches!(&out, Outcome::Retry { after: Some(d), .. } if *d == Duration::from_secs(35)),
            "{out:?}"
        );
        assert!(!out.reason().contains("ABC-secret"));
    }

    #[test]
    fn migrated_group_and_bad_requests_are_rejected() {
        let now = Utc::now();
        let h = HeaderMap::new();
        let o = classify(
            400,
            &h,
            r#"{"ok":false,"error_code":400,"description":"Bad Request: group chat was upgraded to a supergroup chat","parameters":{"migrate_to_chat_id":-1009876}}"#,
            now,
        );
        assert!(matches!(&o, Outcome::Rejected { reason } if reason.contains("-1009876")));
        let o = classify(
            400,
            &h,
            r#"{"ok":false,"error_code":400,"description":"Bad Request: chat not found"}"#,
            now,
        );
        assert!(matches!(&o, Outcome::Rejected { reason } if reason.contains("chat not found")));
    }

    #[tokio::test]
    async fn check_uses_get_me() {
        let server = MockServer::start().await;
        once(
            &server,
            "GET",
            &format!("/bot{TOKEN}/getMe"),
            ResponseTemplate::new(200).set_body_json(
                json!({"ok": true, "result": {"id": 1, "is_bot": true, "username": "crier_bot"}}),
            ),
        )
        .await;
        once(
            &server,
            "GET",
            "/botWRONG/getMe",
            ResponseTemplate::new(401).set_body_json(
                json!({"ok": false, "error_code": 401, "description": "Unauthorized"}),
            ),
        )
        .await;
        let good = adapter(&server.uri(), TOKEN).check().await;
        assert!(
            matches!(&good, Check::Ok(s) if s.contains("@crier_bot")),
            "{good:?}"
        );
        let bad = adapter(&server.uri(), "WRONG").check().await;
        assert!(
            matches!(&bad, Check::Failed(s) if s.contains("401") && !s.contains("WRONG")),
            "{bad:?}"
        );
    }
}
