//! Bluesky adapter: posts each update as an `app.bsky.feed.post` record on the channel's account
//! (an app password, never the account password), replying to the incident's previous post.
//!
//! Session (<https://docs.bsky.app/docs/api/com-atproto-server-create-session>):
//! `POST {pds}/xrpc/com.atproto.server.createSession` `{identifier, password}` answers
//! `accessJwt` (short-lived), `refreshJwt` and `did`. createSession is rate-limited hard
//! (30 per 5 minutes, 300 per day per account), so the session is created once and kept in
//! memory; when the PDS says `ExpiredToken`, it is renewed with
//! `POST com.atproto.server.refreshSession` (`Authorization: Bearer <refreshJwt>`), and only if
//! that fails too is a new session created. Each of these happens at most once per send.
//!
//! Post (<https://docs.bsky.app/docs/advanced-guides/posts>):
//! `POST {pds}/xrpc/com.atproto.repo.createRecord` with `Authorization: Bearer <accessJwt>` and
//! `{repo: did, collection: "app.bsky.feed.post", record: {"$type": "app.bsky.feed.post", text,
//! createdAt, langs, facets, reply}}`: `facets` make every link clickable with its UTF-8 byte
//! range (from [`crate::render::rules::bluesky_link_facets`], computed on the exact text sent);
//! `reply` names the thread's `root` and the `parent` post, each as `{uri, cid}`.
//!
//! The receipt is the new post's `{"uri":…,"cid":…}` as JSON text: the thread store keeps it and
//! hands it back as a reply ref. There is no idempotency key: a send that timed out after the
//! PDS stored the post may post twice when retried.
//!
//! Classification: 200 → `Delivered`; 429 → `Retry` after `Retry-After` or the `ratelimit-reset`
//! instant (Unix seconds); 5xx → `Retry`; 401 `AuthenticationRequired` (wrong app password) and
//! other 4xx → `Rejected`. A reply with `ratelimit-remaining: 0` defers the next send until
//! `ratelimit-reset`. Check: createSession.

use super::http::{failure, language, reset_after, snippet, window};
use super::outcome::{HttpReply, OutMessage, Outcome};
use super::{Check, Http, Provider, Request};
use crate::render::rules::bluesky_link_facets;
use chrono::{DateTime, SecondsFormat, Utc};
use reqwest::header::HeaderMap;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::fmt;
use std::time::Duration;

/// The default PDS (Bluesky's own entryway).
pub const DEFAULT_BASE_URL: &str = "https://bsky.social";

/// Settings for one Bluesky channel.
#[derive(Debug, Clone)]
pub struct BlueskyConfig {
    /// The PDS origin, normally [`DEFAULT_BASE_URL`].
    pub base_url: String,
    /// The account's handle or DID.
    pub identifier: String,
    /// An app password. Never printed.
    pub password: SecretString,
}

/// A reference to a record: what `reply.root` and `reply.parent` hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StrongRef {
    /// `at://did/app.bsky.feed.post/rkey`.
    pub uri: String,
    /// The record's content id.
    pub cid: String,
}

#[derive(Clone)]
struct Session {
    access_jwt: String,
    refresh_jwt: String,
    did: String,
}

/// Posts to one Bluesky account.
pub struct BlueskyAdapter {
    config: BlueskyConfig,
    session: tokio::sync::Mutex<Option<Session>>,
}

impl fmt::Debug for BlueskyAdapter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlueskyAdapter")
            .field("config", &self.config)
            .finish()
    }
}

/// The error code of an XRPC error body (`{"error": "ExpiredToken", "message": …}`).
fn xrpc_error(body: &str) -> String {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v["error"].as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn session_from(reply: &HttpReply) -> Option<Session> {
    let v: Value = serde_json::from_str(&reply.body).ok()?;
    Some(Session {
        access_jwt: v["accessJwt"].as_str()?.to_owned(),
        refresh_jwt: v["refreshJwt"].as_str()?.to_owned(),
        did: v["did"].as_str()?.to_owned(),
    })
}

impl BlueskyAdapter {
    /// Wraps a config.
    pub fn new(config: BlueskyConfig) -> Self {
        BlueskyAdapter {
            config,
            session: tokio::sync::Mutex::new(None),
        }
    }

    fn xrpc(&self, method: &str) -> String {
        format!(
            "{}/xrpc/{method}",
            self.config.base_url.trim_end_matches('/')
        )
    }

    async fn create_session(&self, http: &Http) -> Result<Session, Outcome> {
        let request = http
            .client
            .post(self.xrpc("com.atproto.server.createSession"))
            .json(&json!({"identifier": self.config.identifier, "password": self.config.password.expose_secret()}));
        let reply = http.exchange(request).await?;
        if (200..300).contains(&reply.status) {
            return session_from(&reply).ok_or_else(|| {
                Outcome::retry(format!(
                    "Bluesky createSession answered without a session: {}",
                    snippet(&reply.body)
                ))
            });
        }
        Err(classify(
            reply.status,
            &reply.headers,
            &reply.body,
            // The reset header is Bluesky's own instant, measured against the injected clock
            // (the wall clock in production).
            http.now(),
        ))
    }

    async fn refresh_session(&self, http: &Http, old: &Session) -> Option<Session> {
        let request = http
            .client
            .post(self.xrpc("com.atproto.server.refreshSession"))
            .bearer_auth(&old.refresh_jwt);
        let reply = http.exchange(request).await.ok()?;
        if (200..300).contains(&reply.status) {
            session_from(&reply)
        } else {
            None
        }
    }

    /// The `createRecord` body for `msg`, posted at `now` by `did`. `Err` when the thread
    /// reference is not a `{uri, cid}` pair.
    fn record_body(msg: &OutMessage, did: &str, now: DateTime<Utc>) -> Result<Value, String> {
        let mut record = json!({
            "$type": "app.bsky.feed.post",
            "text": msg.text,
            "createdAt": now.to_rfc3339_opts(SecondsFormat::Millis, true),
            "langs": [language(&msg.locale)],
        });
        let facets: Vec<Value> = bluesky_link_facets(&msg.text)
            .into_iter()
            .map(|f| {
                json!({
                    "index": {"byteStart": f.byte_start, "byteEnd": f.byte_end},
                    "features": [{"$type": "app.bsky.richtext.facet#link", "uri": f.uri}]
                })
            })
            .collect();
        if !facets.is_empty() {
            record["facets"] = json!(facets);
        }
        if let Some(t) = &msg.thread {
            let parse = |s: &str| {
                serde_json::from_str::<StrongRef>(s)
                    .map_err(|_| "the thread's Bluesky reference is not {uri, cid}".to_owned())
            };
            record["reply"] = json!({"root": parse(&t.root)?, "parent": parse(&t.parent)?});
        }
        Ok(json!({"repo": did, "collection": "app.bsky.feed.post", "record": record}))
    }
}

impl Provider for BlueskyAdapter {
    const NAME: &'static str = "Bluesky";

    /// Posts one record, logging in first when there is no session yet.
    async fn request(&self, http: &Http, msg: &OutMessage) -> Request {
        let mut guard = self.session.lock().await;
        let session = match guard.clone() {
            Some(s) => s,
            None => {
                let s = self.create_session(http).await?;
                *guard = Some(s.clone());
                s
            }
        };
        // The injected clock (the wall clock in production): the record's `createdAt` is
        // ordered by Bluesky against real time.
        let body = Self::record_body(msg, &session.did, http.now()).map_err(Outcome::rejected)?;
        Ok(http
            .client
            .post(self.xrpc("com.atproto.repo.createRecord"))
            .bearer_auth(&session.access_jwt)
            .json(&body))
    }

    fn classify(&self, reply: &HttpReply, now: DateTime<Utc>) -> Outcome {
        classify(reply.status, &reply.headers, &reply.body, now)
    }

    fn rate_window(&self, headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
        window(headers, "ratelimit-remaining", "ratelimit-reset", now)
    }

    /// The access token expired: refresh it (or, failing that, log in again); the post is then
    /// sent once more. When that fails too, its outcome is the send's, and the next send logs in
    /// afresh.
    async fn renew(&self, http: &Http, reply: &HttpReply) -> Result<bool, Outcome> {
        let expired = matches!(reply.status, 400 | 401)
            && matches!(
                xrpc_error(&reply.body).as_str(),
                "ExpiredToken" | "InvalidToken"
            );
        if !expired {
            return Ok(false);
        }
        let mut guard = self.session.lock().await;
        let refreshed = match guard.clone() {
            Some(old) => self.refresh_session(http, &old).await,
            None => None,
        };
        let renewed = match refreshed {
            Some(s) => Ok(s),
            None => self.create_session(http).await,
        };
        match renewed {
            Ok(s) => {
                *guard = Some(s);
                Ok(true)
            }
            Err(o) => {
                *guard = None;
                Err(o)
            }
        }
    }

    /// Logs in with createSession (posts nothing) and keeps the session for sending.
    async fn check(&self, http: &Http) -> Check {
        match self.create_session(http).await {
            Ok(s) => {
                let did = s.did.clone();
                *self.session.lock().await = Some(s);
                Check::Ok(format!(
                    "app password valid for {} ({did})",
                    self.config.identifier
                ))
            }
            Err(o) => Check::Failed(o.reason().to_owned()),
        }
    }
}

/// Classifies one XRPC answer (createRecord or createSession). Pure.
pub fn classify(status: u16, headers: &HeaderMap, body: &str, now: DateTime<Utc>) -> Outcome {
    if (200..300).contains(&status) {
        let receipt = serde_json::from_str::<StrongRef>(body)
            .ok()
            .and_then(|r| serde_json::to_string(&r).ok());
        return Outcome::Delivered { receipt };
    }
    let reset = (status == 429)
        .then(|| reset_after(headers, "ratelimit-reset", now))
        .flatten();
    failure("Bluesky", status, headers, body, now, reset)
}

use crate::channels::{KindSettings, KindSpec, Resolve, Settings};
use crate::render::preview::Platform;

/// The `bluesky` kind: an account, with an app password.
pub static KIND: KindSpec = KindSpec::social("bluesky", Platform::Bluesky, true, "30/m", declare);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BlueskyFile {
    identifier: Option<String>,
    app_password_env: Option<String>,
}

fn declare(table: toml::Table, r: &mut Resolve<'_>) -> Result<Option<Settings>, String> {
    let f: BlueskyFile = r.declared(table)?;
    let password = r.secret("app_password_env", f.app_password_env);
    if f.identifier.is_none() {
        r.invalid("identifier is missing: the account's handle, e.g. status.example.com");
    }
    let (Some(identifier), Some(password)) = (f.identifier, password) else {
        return Ok(None);
    };
    Ok(Some(Settings::new(BlueskyConfig {
        base_url: r.base(DEFAULT_BASE_URL),
        identifier,
        password: password.into(),
    })))
}

impl KindSettings for BlueskyConfig {
    fn build(&self, s: &super::Setup<'_>) -> Result<Box<dyn super::Deliver>, String> {
        s.http(BlueskyAdapter::new(self.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::super::http::testing::{client, json_body, once, post, reply};
    use super::super::HttpAdapter;
    use super::*;
    use wiremock::matchers::{body_json, header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    const DID: &str = "did:plc:abc123";

    fn adapter(base: &str, password: &str) -> HttpAdapter<BlueskyAdapter> {
        HttpAdapter::new(
            BlueskyAdapter::new(BlueskyConfig {
                base_url: base.into(),
                identifier: "status.example.com".into(),
                password: password.into(),
            }),
            client(),
        )
    }

    fn session(access: &str) -> Value {
        json!({"accessJwt": access, "refreshJwt": "refresh-1", "did": DID, "handle": "status.example.com"})
    }

    async fn mount_session(server: &MockServer, expect: u64) {
        Mock::given(method("POST"))
            .and(path("/xrpc/com.atproto.server.createSession"))
            .and(header("content-type", "application/json"))
            .and(body_json(
                json!({"identifier": "status.example.com", "password": "app-pass-1234"}),
            ))
            .respond_with(ResponseTemplate::new(200).set_body_json(session("access-1")))
            .expect(expect)
            .mount(server)
            .await;
    }

    #[tokio::test]
    async fn one_session_two_posts_with_facets_and_reply_refs() {
        let server = MockServer::start().await;
        mount_session(&server, 1).await;
        let first = json!({"uri": format!("at://{DID}/app.bsky.feed.post/3k1"), "cid": "bafy1"});
        let second = json!({"uri": format!("at://{DID}/app.bsky.feed.post/3k2"), "cid": "bafy2"});
        Mock::given(method("POST"))
            .and(path("/xrpc/com.atproto.repo.createRecord"))
            .and(header("authorization", "Bearer access-1"))
            .and(header("content-type", "application/json"))
            .respond_with(ResponseTemplate::new(200).set_body_json(first.clone()))
            .up_to_n_times(1)
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/xrpc/com.atproto.repo.createRecord"))
            .and(header("authorization", "Bearer access-1"))
            .respond_with(ResponseTemplate::new(200).set_body_json(second.clone()))
            .expect(1)
            .mount(&server)
            .await;
        let a = adapter(&server.uri(), "app-pass-1234");
        let text = "Häiriö ✈ lisätietoja https://status.example.com/i/1 kiitos";
        let out = a.send(&post("k1", text)).await;
        let receipt1 = match out {
            Outcome::Delivered { receipt: Some(r) } => r,
            o => panic!("{o:?}"),
        };
        assert_eq!(serde_json::from_str::<Value>(&receipt1).unwrap(), first);
        let out = a.send(&reply("k2", "Korjattu", &receipt1, &receipt1)).await;
        assert!(matches!(out, Outcome::Delivered { receipt: Some(_) }));

        let reqs = server.received_requests().await.unwrap();
        let posts: Vec<Value> = reqs
            .iter()
            .filter(|r| r.url.path().ends_with("createRecord"))
            .map(json_body)
            .collect();
        assert_eq!(posts.len(), 2);
        let p = &posts[0];
        assert_eq!(p["repo"], DID);
        assert_eq!(p["collection"], "app.bsky.feed.post");
        let r = &p["record"];
        assert_eq!(r["$type"], "app.bsky.feed.post");
        assert_eq!(r["text"], text);
        assert_eq!(r["langs"], json!(["fi"]));
        assert!(DateTime::parse_from_rfc3339(r["createdAt"].as_str().unwrap()).is_ok());
        let start = text.find("https://").unwrap();
        let end = start + "https://status.example.com/i/1".len();
        assert_eq!(
            r["facets"],
            json!([{
                "index": {"byteStart": start, "byteEnd": end},
                "features": [{"$type": "app.bsky.richtext.facet#link", "uri": "https://status.example.com/i/1"}]
            }])
        );
        assert!(
            start > "Häiriö ✈ lisätietoja ".chars().count(),
            "byte, not char, offsets"
        );
        assert!(r.get("reply").is_none());
        let r2 = &posts[1]["record"];
        assert_eq!(r2["reply"], json!({"root": first, "parent": first}));
        assert!(r2.get("facets").is_none());
    }

    /// Bluesky's answer to a post with an expired access token.
    fn expired() -> ResponseTemplate {
        ResponseTemplate::new(400)
            .set_body_json(json!({"error": "ExpiredToken", "message": "Token has expired"}))
    }

    #[tokio::test]
    async fn expired_access_token_is_refreshed_once_and_the_post_retried() {
        let server = MockServer::start().await;
        mount_session(&server, 1).await;
        Mock::given(method("POST"))
            .and(path("/xrpc/com.atproto.repo.createRecord"))
            .and(header("authorization", "Bearer access-1"))
            .respond_with(expired())
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/xrpc/com.atproto.server.refreshSession"))
            .and(header("authorization", "Bearer refresh-1"))
            .respond_with(ResponseTemplate::new(200).set_body_json(session("access-2")))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/xrpc/com.atproto.repo.createRecord"))
            .and(header("authorization", "Bearer access-2"))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(json!({"uri": "at://x/y/z", "cid": "c"})),
            )
            .expect(2)
            .mount(&server)
            .await;
        let a = adapter(&server.uri(), "app-pass-1234");
        assert!(matches!(
            a.send(&post("k1", "a")).await,
            Outcome::Delivered { .. }
        ));
        // The renewed session is kept: no second login, no second refresh.
        assert!(matches!(
            a.send(&post("k2", "b")).await,
            Outcome::Delivered { .. }
        ));
    }

    /// An expired token whose renewal fails for a passing reason (the refresh refused, the new
    /// log-in answered 503) leaves the post to retry, not rejected for the expired token.
    #[tokio::test]
    async fn a_failed_renewal_keeps_its_own_outcome() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/xrpc/com.atproto.server.createSession"))
            .respond_with(ResponseTemplate::new(200).set_body_json(session("access-1")))
            .up_to_n_times(1)
            .expect(1)
            .mount(&server)
            .await;
        once(
            &server,
            "POST",
            "/xrpc/com.atproto.server.createSession",
            ResponseTemplate::new(503),
        )
        .await;
        once(
            &server,
            "POST",
            "/xrpc/com.atproto.repo.createRecord",
            expired(),
        )
        .await;
        once(
            &server,
            "POST",
            "/xrpc/com.atproto.server.refreshSession",
            ResponseTemplate::new(400),
        )
        .await;
        let out = adapter(&server.uri(), "app-pass-1234")
            .send(&post("k1", "a"))
            .await;
        assert!(matches!(out, Outcome::Retry { .. }), "{out:?}");
    }

    #[tokio::test]
    async fn rate_limited_retries_after_the_reset() {
        let server = MockServer::start().await;
        mount_session(&server, 1).await;
        let reset = Utc::now().timestamp() + 120;
        Mock::given(method("POST"))
            .and(path("/xrpc/com.atproto.repo.createRecord"))
            .respond_with(
                ResponseTemplate::new(429)
                    .insert_header("ratelimit-remaining", "0")
                    .insert_header("ratelimit-reset", reset.to_string().as_str())
                    .set_body_json(
                        json!({"error": "RateLimitExceeded", "message": "Rate Limit Exceeded"}),
                    ),
            )
            .expect(1)
            .mount(&server)
            .await;
        let a = adapter(&server.uri(), "app-pass-1234");
        let out = a.send(&post("k", "x")).await;
        assert!(
            matches!(&out, Outcome::Retry { after: Some(d), .. } if *d > Duration::from_secs(100) && *d <= Duration::from_secs(120)),
            "{out:?}"
        );
        // The window is empty: the next send waits for it without a request (expect(1)).
        let out = a.send(&post("k2", "y")).await;
        assert!(
            matches!(&out, Outcome::Retry { after: Some(d), .. } if *d > Duration::from_secs(100)),
            "{out:?}"
        );
    }

    #[tokio::test]
    async fn check_logs_in_and_reports_a_wrong_password() {
        let server = MockServer::start().await;
        mount_session(&server, 1).await;
        Mock::given(method("POST"))
            .and(path("/xrpc/com.atproto.server.createSession"))
            .respond_with(ResponseTemplate::new(401).set_body_json(json!({
                "error": "AuthenticationRequired", "message": "Invalid identifier or password"
            })))
            .expect(1)
            .mount(&server)
            .await;
        let good = adapter(&server.uri(), "app-pass-1234").check().await;
        assert!(matches!(&good, Check::Ok(s) if s.contains(DID)), "{good:?}");
        let bad = adapter(&server.uri(), "wrong-pass").check().await;
        assert!(
            matches!(&bad, Check::Failed(s) if s.contains("401") && !s.contains("wrong-pass")),
            "{bad:?}"
        );
    }
}
