//! X adapter: posts each update as a post (tweet) on the channel's account, replying to the
//! incident's previous post.
//!
//! Request (<https://docs.x.com/x-api/posts/create-post>): `POST {base}/2/tweets` with JSON
//! `text` and, in a thread, `reply: {in_reply_to_tweet_id}`, authorised with OAuth 1.0a user
//! context: an `Authorization: OAuth …` header signed with HMAC-SHA1 over the method, the URL
//! and the `oauth_*` parameters (a JSON body is not part of the signature), as X documents in
//! "Creating a signature" (<https://docs.x.com/fundamentals/authentication/oauth-1-0a/creating-a-signature>).
//! The signing is a few lines on the `hmac` and `sha1` crates, tested against that page's
//! worked example.
//!
//! Classification: 201 `{"data":{"id"}}` → `Delivered` (receipt: the id); 403 whose body says
//! the text is a duplicate → `Rejected` ("duplicate content": X refuses the same text twice,
//! retrying cannot help); 429 → `Retry` after `x-rate-limit-reset` (Unix seconds) or
//! `Retry-After`; 5xx → `Retry`; 401 and other 4xx → `Rejected`. A success that leaves
//! `x-rate-limit-remaining: 0` (or `x-user-limit-24hour-remaining: 0`) defers the next send
//! until the window resets. Check: `GET /2/users/me`.

use super::http::{failure, reset_after, window};
use super::outcome::{HttpReply, OutMessage, Outcome};
use super::provider::read;
use super::{Check, Http, Provider, Request};
use base64::Engine;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use reqwest::header::HeaderMap;
use serde_json::{json, Value};
use sha1::Sha1;
use std::fmt;
use std::time::Duration;

/// X's API origin.
pub const DEFAULT_BASE_URL: &str = "https://api.x.com";

/// OAuth 1.0a user-context credentials: the app's consumer key pair and the account's access
/// token pair.
#[derive(Clone)]
pub struct OAuth1Credentials {
    /// API key.
    pub consumer_key: String,
    /// API key secret. Never printed.
    pub consumer_secret: String,
    /// Access token of the posting account.
    pub token: String,
    /// Access token secret. Never printed.
    pub token_secret: String,
}

impl fmt::Debug for OAuth1Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OAuth1Credentials { *** }")
    }
}

/// RFC 3986 percent-encoding as OAuth 1.0a requires (everything but `A-Z a-z 0-9 - . _ ~`).
pub fn percent_encode(s: &str) -> String {
    super::http::path_segment(s)
}

/// The signature base string: `METHOD&enc(url)&enc(sorted, encoded params joined by &)`.
pub fn signature_base_string(method: &str, url: &str, params: &[(String, String)]) -> String {
    let mut encoded: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (percent_encode(k), percent_encode(v)))
        .collect();
    encoded.sort();
    let joined = encoded
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    format!(
        "{}&{}&{}",
        method.to_ascii_uppercase(),
        percent_encode(url),
        percent_encode(&joined)
    )
}

/// HMAC-SHA1 of the base string with `enc(consumer_secret)&enc(token_secret)`, base64.
pub fn sign(base_string: &str, consumer_secret: &str, token_secret: &str) -> String {
    let key = format!(
        "{}&{}",
        percent_encode(consumer_secret),
        percent_encode(token_secret)
    );
    match <Hmac<Sha1> as Mac>::new_from_slice(key.as_bytes()) {
        Ok(mut mac) => {
            mac.update(base_string.as_bytes());
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
        }
        // HMAC takes keys of any length; this cannot happen.
        Err(_) => String::new(),
    }
}

/// The `Authorization` header for a request: `OAuth` followed by the `oauth_*` parameters and
/// the signature over them plus `request_params` (query and form parameters; not a JSON body).
pub fn authorization(
    creds: &OAuth1Credentials,
    method: &str,
    url: &str,
    request_params: &[(String, String)],
    nonce: &str,
    timestamp: i64,
) -> String {
    let oauth: Vec<(String, String)> = vec![
        ("oauth_consumer_key".into(), creds.consumer_key.clone()),
        ("oauth_nonce".into(), nonce.to_owned()),
        ("oauth_signature_method".into(), "HMAC-SHA1".into()),
        ("oauth_timestamp".into(), timestamp.to_string()),
        ("oauth_token".into(), creds.token.clone()),
        ("oauth_version".into(), "1.0".into()),
    ];
    let mut all = oauth.clone();
    all.extend_from_slice(request_params);
    let signature = sign(
        &signature_base_string(method, url, &all),
        &creds.consumer_secret,
        &creds.token_secret,
    );
    let mut parts: Vec<String> = oauth
        .iter()
        .map(|(k, v)| format!("{}=\"{}\"", percent_encode(k), percent_encode(v)))
        .collect();
    parts.push(format!(
        "oauth_signature=\"{}\"",
        percent_encode(&signature)
    ));
    parts.sort();
    format!("OAuth {}", parts.join(", "))
}

/// A fresh nonce: 32 random bytes, hex (alphanumeric, as OAuth wants).
fn nonce(now: DateTime<Utc>) -> String {
    let mut b = [0u8; 32];
    if getrandom::fill(&mut b).is_err() {
        // Unique enough without the OS's randomness: the time to the nanosecond and a count.
        static COUNT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        return format!("{:x}{n:x}", now.timestamp_nanos_opt().unwrap_or_default());
    }
    hex::encode(b)
}

/// Settings for one X channel.
#[derive(Clone, Debug)]
pub struct XConfig {
    /// API origin, normally [`DEFAULT_BASE_URL`].
    pub base_url: String,
    /// OAuth 1.0a credentials.
    pub credentials: OAuth1Credentials,
}

/// Posts to one X account.
#[derive(Debug)]
pub struct XAdapter {
    config: XConfig,
}

impl XAdapter {
    /// Wraps a config.
    pub fn new(config: XConfig) -> Self {
        XAdapter { config }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.config.base_url.trim_end_matches('/'))
    }

    fn auth(&self, http: &Http, method: &str, url: &str) -> String {
        let now = http.now();
        authorization(
            &self.config.credentials,
            method,
            url,
            &[],
            &nonce(now),
            // The injected clock, the wall clock in production: X compares the OAuth
            // timestamp with real time.
            now.timestamp(),
        )
    }

    /// The JSON body for `msg`.
    fn body(msg: &OutMessage) -> Value {
        let mut body = json!({"text": msg.text});
        if let Some(t) = &msg.thread {
            body["reply"] = json!({"in_reply_to_tweet_id": t.parent});
        }
        body
    }
}

impl Provider for XAdapter {
    const NAME: &'static str = "X";

    /// Posts one post, signed.
    async fn request(&self, http: &Http, msg: &OutMessage) -> Request {
        let url = self.url("/2/tweets");
        Ok(http
            .client
            .post(&url)
            .header(
                reqwest::header::AUTHORIZATION,
                self.auth(http, "POST", &url),
            )
            .json(&Self::body(msg)))
    }

    fn classify(&self, reply: &HttpReply, now: DateTime<Utc>) -> Outcome {
        classify(reply.status, &reply.headers, &reply.body, now)
    }

    /// The user's 24-hour window when it is spent, else the app's 15-minute one.
    fn rate_window(&self, headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
        window(
            headers,
            "x-user-limit-24hour-remaining",
            "x-user-limit-24hour-reset",
            now,
        )
        .or_else(|| window(headers, "x-rate-limit-remaining", "x-rate-limit-reset", now))
    }

    /// Verifies the credentials with `GET /2/users/me` (posts nothing).
    async fn check(&self, http: &Http) -> Check {
        let url = self.url("/2/users/me");
        let request = http
            .client
            .get(&url)
            .header(reqwest::header::AUTHORIZATION, self.auth(http, "GET", &url));
        match read(http, request, "users/me").await {
            Ok(v) => Check::Ok(format!(
                "credentials valid for @{}",
                v["data"]["username"].as_str().unwrap_or("?")
            )),
            Err(failed) => failed,
        }
    }
}

/// Classifies one `POST /2/tweets` answer. Pure.
pub fn classify(status: u16, headers: &HeaderMap, body: &str, now: DateTime<Utc>) -> Outcome {
    if (200..300).contains(&status) {
        let id = serde_json::from_str::<Value>(body)
            .ok()
            .and_then(|v| v["data"]["id"].as_str().map(str::to_owned));
        return Outcome::Delivered { receipt: id };
    }
    if status == 403 && body.to_ascii_lowercase().contains("duplicate") {
        return Outcome::rejected(
            "duplicate content: X refuses a post whose text it already has from this account \
             (HTTP 403); change the text to post it (if an earlier attempt timed out, that one \
             may have been posted)",
        );
    }
    let reset = (status == 429)
        .then(|| reset_after(headers, "x-rate-limit-reset", now))
        .flatten();
    failure("X", status, headers, body, now, reset)
}

use crate::channels::{KindSettings, KindSpec, Resolve, Settings};
use crate::render::preview::Platform;

/// The `x` kind: an account, OAuth 1.0a user context.
pub static KIND: KindSpec = KindSpec::social("x", Platform::X, true, "10/m", declare);

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct XFile {
    consumer_key_env: Option<String>,
    consumer_secret_env: Option<String>,
    access_token_env: Option<String>,
    access_token_secret_env: Option<String>,
}

fn declare(table: toml::Table, r: &mut Resolve<'_>) -> Result<Option<Settings>, String> {
    let f: XFile = r.declared(table)?;
    let consumer_key = r.secret("consumer_key_env", f.consumer_key_env);
    let consumer_secret = r.secret("consumer_secret_env", f.consumer_secret_env);
    let token = r.secret("access_token_env", f.access_token_env);
    let token_secret = r.secret("access_token_secret_env", f.access_token_secret_env);
    let (Some(consumer_key), Some(consumer_secret), Some(token), Some(token_secret)) =
        (consumer_key, consumer_secret, token, token_secret)
    else {
        return Ok(None);
    };
    Ok(Some(Settings::new(XConfig {
        base_url: r.base(DEFAULT_BASE_URL),
        credentials: OAuth1Credentials {
            consumer_key,
            consumer_secret,
            token,
            token_secret,
        },
    })))
}

impl KindSettings for XConfig {
    fn build(&self, s: &super::Setup<'_>) -> Result<Box<dyn super::Deliver>, String> {
        s.http(XAdapter::new(self.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::super::http::testing::{client, post, reply};
    use super::super::HttpAdapter;
    use super::*;
    use wiremock::matchers::{body_json, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    fn doc_credentials() -> OAuth1Credentials {
        OAuth1Credentials {
            consumer_key: "xvz1evFS4wEEPTGEFPHBog".into(),
            consumer_secret: "kAcSOqF21Fu85e7zjz7ZN2U4ZRhfV3WpwPAoE3Z7kBw".into(),
            token: "370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb".into(),
            token_secret: "LswwdoUaIvS8ltyTt5jkRh4J50vUPVVHtR2YPi5kE".into(),
        }
    }

    /// The worked example of X's "Creating a signature" page: the same parameters must give
    /// the documented base string and signature.
    #[test]
    fn signature_matches_the_documented_example() {
        let c = doc_credentials();
        let params: Vec<(String, String)> = [
            (
                "status",
                "Hello Ladies + Gentlemen, a signed OAuth request!",
            ),
            ("include_entities", "true"),
            ("oauth_consumer_key", c.consumer_key.as_str()),
            ("oauth_nonce", "kYjzVBB8Y0ZFabxSWbWovY3uYSQ2pTgmZeNu2VS4cg"),
            ("oauth_signature_method", "HMAC-SHA1"),
            ("oauth_timestamp", "1318622958"),
            ("oauth_token", c.token.as_str()),
            ("oauth_version", "1.0"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let base = signature_base_string(
            "post",
            "https://api.twitter.com/1.1/statuses/update.json",
            &params,
        );
        assert_eq!(
            base,
            "POST&https%3A%2F%2Fapi.twitter.com%2F1.1%2Fstatuses%2Fupdate.json&include_entities%3Dtrue%26oauth_consumer_key%3Dxvz1evFS4wEEPTGEFPHBog%26oauth_nonce%3DkYjzVBB8Y0ZFabxSWbWovY3uYSQ2pTgmZeNu2VS4cg%26oauth_signature_method%3DHMAC-SHA1%26oauth_timestamp%3D1318622958%26oauth_token%3D370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb%26oauth_version%3D1.0%26status%3DHello%2520Ladies%2520%252B%2520Gentlemen%252C%2520a%2520signed%2520OAuth%2520request%2521"
        );
        assert_eq!(
            sign(&base, &c.consumer_secret, &c.token_secret),
            "hCtSmYh+iHYCEqBWrE7C7hYmtUk="
        );
        // The header carries the same signature, percent-encoded, and every oauth_* parameter.
        let h = authorization(
            &c,
            "POST",
            "https://api.twitter.com/1.1/statuses/update.json",
            &params[..2],
            "kYjzVBB8Y0ZFabxSWbWovY3uYSQ2pTgmZeNu2VS4cg",
            1318622958,
        );
        assert!(h.starts_with("OAuth "), "{h}");
        assert!(
            h.contains(r#"oauth_signature="hCtSmYh%2BiHYCEqBWrE7C7hYmtUk%3D""#),
            "{h}"
        );
        assert!(h.contains(r#"oauth_consumer_key="xvz1evFS4wEEPTGEFPHBog""#));
        assert!(h.contains(r#"oauth_signature_method="HMAC-SHA1""#));
        assert!(h.contains(r#"oauth_timestamp="1318622958""#));
        assert!(h.contains(r#"oauth_version="1.0""#));
        assert!(!h.contains(&c.consumer_secret) && !h.contains(&c.token_secret));
    }

    fn adapter(base: &str, creds: OAuth1Credentials) -> HttpAdapter<XAdapter> {
        HttpAdapter::new(
            XAdapter::new(XConfig {
                base_url: base.into(),
                credentials: creds,
            }),
            client(),
        )
    }

    /// Recomputes the signature of a recorded request from its own oauth_* parameters.
    fn verify_signed(req: &wiremock::Request, creds: &OAuth1Credentials, url: &str) {
        let h = req.headers.get("authorization").unwrap().to_str().unwrap();
        let params: Vec<(String, String)> = h
            .trim_start_matches("OAuth ")
            .split(", ")
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap();
                (k.to_owned(), v.trim_matches('"').to_owned())
            })
            .collect();
        let get = |k: &str| params.iter().find(|(n, _)| n == k).unwrap().1.clone();
        assert_eq!(get("oauth_consumer_key"), creds.consumer_key);
        assert_eq!(get("oauth_token"), creds.token);
        let expected = authorization(
            creds,
            req.method.as_str(),
            url,
            &[],
            &get("oauth_nonce"),
            get("oauth_timestamp").parse().unwrap(),
        );
        assert_eq!(h, expected);
    }

    #[tokio::test]
    async fn posts_signed_then_replies_to_the_previous_post() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/2/tweets"))
            .and(body_json(json!({"text": "Outage at check-in"})))
            .respond_with(ResponseTemplate::new(201).set_body_json(
                json!({"data": {"id": "1445880548472328192", "text": "Outage at check-in"}}),
            ))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/2/tweets"))
            .and(body_json(json!({
                "text": "Resolved",
                "reply": {"in_reply_to_tweet_id": "1445880548472328192"}
            })))
            .respond_with(
                ResponseTemplate::new(201)
                    .set_body_json(json!({"data": {"id": "1445880548472328193"}})),
            )
            .expect(1)
            .mount(&server)
            .await;
        let creds = doc_credentials();
        let a = adapter(&server.uri(), creds.clone());
        assert_eq!(
            a.send(&post("k1", "Outage at check-in")).await,
            Outcome::Delivered {
                receipt: Some("1445880548472328192".into())
            }
        );
        assert_eq!(
            a.send(&reply(
                "k2",
                "Resolved",
                "1445880548472328192",
                "1445880548472328192"
            ))
            .await,
            Outcome::Delivered {
                receipt: Some("1445880548472328193".into())
            }
        );
        let url = format!("{}/2/tweets", server.uri());
        for req in server.received_requests().await.unwrap() {
            assert_eq!(req.headers.get("content-type").unwrap(), "application/json");
            verify_signed(&req, &creds, &url);
        }
    }

    #[tokio::test]
    async fn duplicate_is_rejected_as_duplicate() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(403).set_body_json(json!({
                "detail": "You are not allowed to create a Tweet with duplicate content.",
                "type": "about:blank", "title": "Forbidden", "status": 403
            })))
            .expect(1)
            .mount(&server)
            .await;
        let out = adapter(&server.uri(), doc_credentials())
            .send(&post("k", "same"))
            .await;
        assert!(
            matches!(&out, Outcome::Rejected { reason } if reason.starts_with("duplicate content")),
            "{out:?}"
        );
        // Another 403 (no permission) is a plain rejection.
        let o = classify(
            403,
            &HeaderMap::new(),
            r#"{"title":"Forbidden","detail":"not permitted"}"#,
            Utc::now(),
        );
        assert!(matches!(&o, Outcome::Rejected { reason } if !reason.contains("duplicate")));
    }

    #[tokio::test]
    async fn rate_limit_reset_is_honoured_and_an_empty_window_defers() {
        let server = MockServer::start().await;
        let reset = Utc::now().timestamp() + 600;
        Mock::given(method("POST"))
            .and(path("/2/tweets"))
            .respond_with(
                ResponseTemplate::new(429)
                    .insert_header("x-rate-limit-limit", "200")
                    .insert_header("x-rate-limit-remaining", "0")
                    .insert_header("x-rate-limit-reset", reset.to_string().as_str())
                    .set_body_json(json!({"title": "Too Many Requests", "status": 429})),
            )
            .expect(1)
            .mount(&server)
            .await;
        let a = adapter(&server.uri(), doc_credentials());
        let out = a.send(&post("k1", "a")).await;
        assert!(
            matches!(&out, Outcome::Retry { after: Some(d), .. } if *d > Duration::from_secs(590)),
            "{out:?}"
        );
        // The window is empty: the next send is deferred without a request (expect(1)).
        let out = a.send(&post("k2", "b")).await;
        assert!(
            matches!(&out, Outcome::Retry { after: Some(d), .. } if *d > Duration::from_secs(590)),
            "{out:?}"
        );
    }

    #[tokio::test]
    async fn check_reads_users_me() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/2/users/me"))
            .respond_with(ResponseTemplate::new(200).set_body_json(
                json!({"data": {"id": "2244994945", "name": "Status", "username": "examplestatus"}}),
            ))
            .up_to_n_times(1)
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/2/users/me"))
            .respond_with(ResponseTemplate::new(401).set_body_json(
                json!({"title": "Unauthorized", "type": "about:blank", "status": 401, "detail": "Unauthorized"}),
            ))
            .expect(1)
            .mount(&server)
            .await;
        let creds = doc_credentials();
        let good = adapter(&server.uri(), creds.clone()).check().await;
        assert!(
            matches!(&good, Check::Ok(s) if s.contains("@examplestatus")),
            "{good:?}"
        );
        let reqs = server.received_requests().await.unwrap();
        verify_signed(&reqs[0], &creds, &format!("{}/2/users/me", server.uri()));
        let bad = adapter(&server.uri(), creds.clone()).check().await;
        assert!(
            matches!(&bad, Check::Failed(s) if s.contains("401") && !s.contains(&creds.token_secret)),
            "{bad:?}"
        );
    }
}
