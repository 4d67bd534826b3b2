//! Signed webhook adapter: POSTs a status update's JSON document to a
//! subscriber-configured URL, signed so the receiver can prove it came from
//! crier and was not replayed.
//!
//! Request: `POST <url>` with the exact body bytes of the document and headers
//!
//! * `Content-Type: application/json`
//! * `Idempotency-Key: <message idempotency key>` (stable across retries, so
//!   receivers can drop duplicates)
//! * `X-Crier-Timestamp: <unix seconds>`
//! * `X-Crier-Signature: v1=<hex HMAC-SHA256(secret, "{timestamp}.{body}")>`
//!
//! Receivers check it with [`crate::inbound::webhook::verify`] (constant-time comparison, timestamp
//! within a tolerance). The header may carry several comma-separated `v1=`
//! values (e.g. during secret rotation); any one matching is enough.
//!
//! Classification ([`classify`]):
//!
//! | HTTP status | Outcome |
//! |---|---|
//! | 2xx | `Delivered` |
//! | 408, 425, 429, 5xx | `Retry`, honouring `Retry-After` |
//! | 3xx | `Rejected`: redirects are not followed; configure the final URL |
//! | other 4xx (e.g. 410 Gone) | `Rejected` |
//! | anything else | `Rejected` |
//!
//! **The caller must build the `reqwest::Client` with
//! `.redirect(reqwest::redirect::Policy::none())`** (and a timeout): following
//! a redirect would re-send a signed payload to a URL nobody configured, and
//! 301/302 would silently turn the POST into a GET.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use reqwest::header::HeaderMap;
use sha2::Sha256;

use super::outcome::{HttpReply, OutMessage, Outcome};
use super::retry_after;
use super::{Http, Provider, Request};

/// Default bound on one send (request + response body).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Default freshness window receivers should allow in [`crate::inbound::webhook::verify`].
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

/// Header carrying the idempotency key.
pub const HEADER_IDEMPOTENCY_KEY: &str = "Idempotency-Key";
/// Header carrying the signing timestamp (unix seconds).
pub const HEADER_TIMESTAMP: &str = "X-Crier-Timestamp";
/// Header carrying the signature(s).
pub const HEADER_SIGNATURE: &str = "X-Crier-Signature";

/// Errors in a webhook configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// The URL is not an http(s) URL.
    #[error("webhook config: url must start with http:// or https://")]
    BadUrl,
    /// The signing secret is empty.
    #[error("webhook config: secret must not be empty")]
    EmptySecret,
}

/// Settings for one webhook channel. The secret is resolved by the caller.
#[derive(Clone)]
pub struct WebhookConfig {
    /// Target URL (the channel's fixed endpoint). Printed without query or userinfo.
    pub url: String,
    /// HMAC signing secret shared with the receiver. Never printed.
    pub secret: Vec<u8>,
}

impl WebhookConfig {
    /// A config for `url`, signing with `secret`.
    pub fn new(url: impl Into<String>, secret: impl Into<Vec<u8>>) -> Self {
        WebhookConfig {
            url: url.into(),
            secret: secret.into(),
        }
    }

    /// Checks that the config can produce a valid request.
    pub fn validate(&self) -> Result<(), WebhookError> {
        if !(self.url.starts_with("https://") || self.url.starts_with("http://")) {
            return Err(WebhookError::BadUrl);
        }
        if self.secret.is_empty() {
            return Err(WebhookError::EmptySecret);
        }
        Ok(())
    }
}

impl fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("url", &redact_url(&self.url))
            .field("secret", &"***")
            .finish()
    }
}

/// A URL with any userinfo and query string masked (both can hold tokens).
pub fn redact_url(url: &str) -> String {
    let (base, had_query) = match url.split_once(['?', '#']) {
        Some((b, _)) => (b, true),
        None => (url, false),
    };
    let mut out = match base.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            match authority.rsplit_once('@') {
                Some((_, host)) => format!("{scheme}://***@{host}{path}"),
                None => base.to_owned(),
            }
        }
        None => base.to_owned(),
    };
    if had_query {
        out.push_str("?***");
    }
    out
}

/// Posts signed JSON documents to one endpoint.
#[derive(Debug, Clone)]
pub struct WebhookAdapter {
    config: WebhookConfig,
}

impl WebhookAdapter {
    /// Wraps a config.
    pub fn new(config: WebhookConfig) -> Self {
        WebhookAdapter { config }
    }
}

impl Provider for WebhookAdapter {
    const NAME: &'static str = "webhook";

    /// Signs and posts `msg.document`. The recipient is ignored: the URL is the channel's fixed
    /// endpoint.
    async fn request(&self, http: &Http, msg: &OutMessage) -> Request {
        if let Err(e) = self.config.validate() {
            return Err(Outcome::rejected(format!(
                "invalid webhook configuration: {e}"
            )));
        }
        let Some(document) = &msg.document else {
            return Err(Outcome::rejected("webhook message has no JSON document"));
        };
        let body = serde_json::to_vec(document)
            .map_err(|e| Outcome::rejected(format!("document is not serialisable: {e}")))?;
        // The injected clock, the system's wall clock in production: the receiver checks the
        // signed timestamp against its own real clock (its replay window).
        let timestamp = http.now().timestamp();
        let signature = sign(&self.config.secret, timestamp, &body);
        Ok(http
            .client
            .post(&self.config.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(HEADER_IDEMPOTENCY_KEY, &msg.idempotency_key)
            .header(HEADER_TIMESTAMP, timestamp.to_string())
            .header(HEADER_SIGNATURE, signature)
            .body(body))
    }

    fn classify(&self, reply: &HttpReply, now: DateTime<Utc>) -> Outcome {
        classify(reply.status, &reply.headers, &reply.body, now)
    }
}

pub(crate) fn keyed_mac(secret: &[u8], timestamp: i64, body: &[u8]) -> Option<Hmac<Sha256>> {
    // HMAC accepts keys of any length, so this never fails in practice.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).ok()?;
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Some(mac)
}

/// The `X-Crier-Signature` value for `body` sent at `timestamp`:
/// `v1=` followed by lowercase hex HMAC-SHA256(secret, "{timestamp}.{body}").
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    match keyed_mac(secret, timestamp, body) {
        Some(mac) => format!("v1={}", hex::encode(mac.finalize().into_bytes())),
        None => "v1=".to_owned(),
    }
}

/// Classifies one webhook HTTP answer. Pure: no I/O, `now` is only used to
/// resolve an HTTP-date `Retry-After`. The response body is not used beyond a
/// short excerpt in rejection reasons.
pub fn classify(status: u16, headers: &HeaderMap, body: &str, now: DateTime<Utc>) -> Outcome {
    match status {
        200..=299 => Outcome::Delivered { receipt: None },
        408 | 425 | 429 | 500..=599 => Outcome::Retry {
            reason: format!("webhook answered HTTP {status}"),
            after: retry_after::from_headers(headers, now),
        },
        300..=399 => Outcome::rejected(format!(
            "webhook answered with a redirect (HTTP {status}); redirects are not followed, \
             configure the webhook with its final URL"
        )),
        _ => {
            let excerpt: String = body.trim().chars().take(200).collect();
            if excerpt.is_empty() {
                Outcome::rejected(format!("webhook answered HTTP {status}"))
            } else {
                Outcome::rejected(format!("webhook answered HTTP {status}: {excerpt}"))
            }
        }
    }
}

use crate::channels::{KindSettings, KindSpec, Resolve, Settings};
use crate::render::preview::Platform;

/// The `webhook` kind: a signed JSON document to one URL.
pub static KIND: KindSpec = KindSpec::fixed(
    "webhook",
    Platform::Slack,
    "posts to its url",
    "10/s",
    declare,
);

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct WebhookFile {
    url: Option<String>,
    secret_env: Option<String>,
}

fn declare(table: toml::Table, r: &mut Resolve<'_>) -> Result<Option<Settings>, String> {
    let f: WebhookFile = r.declared(table)?;
    let secret = r.secret("secret_env", f.secret_env);
    // h-types: an HttpUrl type replaces this check.
    match &f.url {
        Some(u) if u.starts_with("https://") || u.starts_with("http://") => {}
        _ => r.invalid("url must be the http(s) URL to POST to"),
    }
    let (Some(url), Some(secret)) = (f.url, secret) else {
        return Ok(None);
    };
    Ok(Some(Settings::new(WebhookConfig {
        url,
        secret: secret.into_bytes(),
    })))
}

impl KindSettings for WebhookConfig {
    fn build(&self, s: &super::Setup<'_>) -> Result<Box<dyn super::Deliver>, String> {
        s.http(WebhookAdapter::new(self.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::super::http::testing::{once, server_once};
    use super::super::outcome::Recipient;
    use super::super::HttpAdapter;
    use super::*;
    use crate::inbound::webhook::verify;
    use chrono::TimeZone;
    use wiremock::matchers::{header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    const SECRET: &[u8] = b"whsec-super-secret";
    const KEY: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    fn client() -> reqwest::Client {
        reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
    }

    fn msg(doc: Option<serde_json::Value>) -> OutMessage {
        OutMessage {
            idempotency_key: KEY.into(),
            recipient: Recipient::Endpoint,
            locale: "en".into(),
            subject: None,
            text: "ignored".into(),
            html: None,
            unsubscribe_url: None,
            document: doc,
            thread: None,
        }
    }

    fn doc() -> serde_json::Value {
        serde_json::json!({"incident": "inc-1", "status": "investigating", "text": "Vesikatko – 5 €"})
    }

    /// The adapter posting to `path` on `server`.
    fn adapter_at(server: &MockServer, path: &str) -> HttpAdapter<WebhookAdapter> {
        let url = format!("{}{path}", server.uri());
        HttpAdapter::new(WebhookAdapter::new(config(url)), client())
    }

    fn config(url: String) -> WebhookConfig {
        WebhookConfig::new(url, SECRET)
    }

    /// The signed timestamp is the injected clock's: an anchored clock in 2001 signs 2001, and
    /// the signature covers it.
    #[tokio::test]
    async fn the_signature_timestamp_is_read_on_the_injected_clock() {
        use chrono::TimeZone;
        let server =
            super::super::http::testing::server_once("POST", ResponseTemplate::new(204)).await;
        let start = Utc.with_ymd_and_hms(2001, 2, 3, 4, 5, 6).unwrap();
        let adapter = adapter_at(&server, "/hooks/crier")
            .with_clock(crate::dispatch::Clock::starting_at(start));
        let out = adapter.send(&msg(Some(doc()))).await;
        assert_eq!(out, Outcome::Delivered { receipt: None });
        let reqs = server.received_requests().await.unwrap();
        let h = |name: &str| {
            reqs[0]
                .headers
                .get(name)
                .unwrap()
                .to_str()
                .unwrap()
                .to_owned()
        };
        let ts: i64 = h("x-crier-timestamp").parse().unwrap();
        assert!(
            (start.timestamp()..start.timestamp() + 60).contains(&ts),
            "{ts}"
        );
        assert_eq!(h("x-crier-signature"), sign(SECRET, ts, &reqs[0].body));
    }

    #[tokio::test]
    async fn posts_signed_document_with_exact_headers() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/hooks/crier"))
            .and(header("content-type", "application/json"))
            .and(header("idempotency-key", KEY))
            .respond_with(ResponseTemplate::new(204))
            .expect(1)
            .mount(&server)
            .await;
        let adapter = adapter_at(&server, "/hooks/crier");
        let before = Utc::now().timestamp();
        let out = adapter.send(&msg(Some(doc()))).await;
        assert_eq!(out, Outcome::Delivered { receipt: None });

        let reqs = server.received_requests().await.unwrap();
        let req = &reqs[0];
        let h = |name: &str| req.headers.get(name).unwrap().to_str().unwrap().to_owned();
        assert_eq!(h("content-type"), "application/json");
        assert_eq!(h("idempotency-key"), KEY);
        let ts: i64 = h("x-crier-timestamp").parse().unwrap();
        assert!(ts >= before && ts <= Utc::now().timestamp());
        let sig = h("x-crier-signature");
        assert!(sig.starts_with("v1=") && sig.len() == 3 + 64, "{sig}");
        assert_eq!(sig, sign(SECRET, ts, &req.body));
        // The body is exactly the document.
        let sent: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
        assert_eq!(sent, doc());
        // A receiver can verify it, and tampering breaks it.
        assert!(verify(
            SECRET,
            ts,
            &req.body,
            &sig,
            Utc::now(),
            DEFAULT_TOLERANCE
        ));
        let mut tampered = req.body.clone();
        tampered.push(b' ');
        assert!(!verify(
            SECRET,
            ts,
            &tampered,
            &sig,
            Utc::now(),
            DEFAULT_TOLERANCE
        ));
        assert!(!verify(
            b"other",
            ts,
            &req.body,
            &sig,
            Utc::now(),
            DEFAULT_TOLERANCE
        ));
        assert!(!verify(
            SECRET,
            ts + 1,
            &req.body,
            &sig,
            Utc::now(),
            DEFAULT_TOLERANCE
        ));
    }

    #[tokio::test]
    async fn gone_is_rejected() {
        let server = server_once(
            "POST",
            ResponseTemplate::new(410).set_body_string("subscription removed"),
        )
        .await;
        let out = adapter_at(&server, "").send(&msg(Some(doc()))).await;
        assert_eq!(
            out,
            Outcome::rejected("webhook answered HTTP 410: subscription removed")
        );
    }

    #[tokio::test]
    async fn unavailable_with_retry_after_retries() {
        let server = server_once(
            "POST",
            ResponseTemplate::new(503).insert_header("Retry-After", "7"),
        )
        .await;
        let out = adapter_at(&server, "").send(&msg(Some(doc()))).await;
        assert_eq!(
            out,
            Outcome::Retry {
                reason: "webhook answered HTTP 503".into(),
                after: Some(Duration::from_secs(7))
            }
        );
    }

    #[tokio::test]
    async fn redirect_is_not_followed() {
        let server = MockServer::start().await;
        once(
            &server,
            "POST",
            "/old",
            ResponseTemplate::new(301).insert_header("Location", format!("{}/new", server.uri())),
        )
        .await;
        Mock::given(path("/new"))
            .respond_with(ResponseTemplate::new(200))
            .expect(0)
            .mount(&server)
            .await;
        let out = adapter_at(&server, "/old").send(&msg(Some(doc()))).await;
        assert!(
            matches!(&out, Outcome::Rejected { reason } if reason.contains("final URL")),
            "{out:?}"
        );
    }

    #[tokio::test]
    async fn network_failures_retry() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let out = HttpAdapter::new(
            WebhookAdapter::new(config(format!("http://127.0.0.1:{port}/x?token=abc"))),
            client(),
        )
        .send(&msg(Some(doc())))
        .await;
        match out {
            Outcome::Retry { reason, .. } => assert!(!reason.contains("token=abc"), "{reason}"),
            other => panic!("expected retry, got {other:?}"),
        }

        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(5)))
            .mount(&server)
            .await;
        let adapter = HttpAdapter::new(WebhookAdapter::new(config(server.uri())), client());
        let out = super::super::Adapter::new(adapter, Duration::from_millis(200))
            .send(&msg(Some(doc())))
            .await;
        assert_eq!(out, Outcome::retry("timed out"));
    }

    #[tokio::test]
    async fn missing_document_is_rejected_locally() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(200))
            .expect(0)
            .mount(&server)
            .await;
        let out = HttpAdapter::new(WebhookAdapter::new(config(server.uri())), client())
            .send(&msg(None))
            .await;
        assert!(matches!(out, Outcome::Rejected { .. }));
    }

    #[test]
    fn sign_and_verify_known_vector() {
        let now = Utc.with_ymd_and_hms(2025, 3, 1, 12, 0, 0).unwrap();
        let ts = now.timestamp();
        let body = br#"{"a":1}"#;
        let sig = sign(b"k", ts, body);
        // Known answer, computed independently (Python hmac/hashlib).
        assert_eq!(ts, 1_740_830_400);
        assert_eq!(
            sig,
            "v1=2539fb291a9217b6ad502f3d8e92dcffc3266a2724da14487a701a73ac140d62"
        );
        assert!(sig[3..]
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        let tol = Duration::from_secs(300);
        assert!(verify(b"k", ts, body, &sig, now, tol));
        // Rotation: any matching entry is enough.
        let both = format!("v1=00ff, {sig}");
        assert!(verify(b"k", ts, body, &both, now, tol));
        // Stale or future timestamps are refused even with a valid MAC.
        let later = now + chrono::Duration::seconds(301);
        assert!(!verify(b"k", ts, body, &sig, later, tol));
        let earlier = now - chrono::Duration::seconds(301);
        assert!(!verify(b"k", ts, body, &sig, earlier, tol));
        // Malformed headers.
        for bad in ["", "v1=", "v1=zz", "v2=abcd", &sig[3..]] {
            assert!(!verify(b"k", ts, body, bad, now, tol), "{bad:?}");
        }
    }

    #[test]
    fn classify_table() {
        let now = Utc.with_ymd_and_hms(2025, 3, 1, 12, 0, 0).unwrap();
        let h = HeaderMap::new();
        assert_eq!(
            classify(200, &h, "", now),
            Outcome::Delivered { receipt: None }
        );
        assert_eq!(
            classify(202, &h, "", now),
            Outcome::Delivered { receipt: None }
        );
        for s in [408, 425, 429, 500, 502, 503, 504] {
            assert!(
                matches!(classify(s, &h, "", now), Outcome::Retry { .. }),
                "{s}"
            );
        }
        for s in [301, 302, 307, 308, 400, 401, 403, 404, 410, 422] {
            assert!(
                matches!(classify(s, &h, "", now), Outcome::Rejected { .. }),
                "{s}"
            );
        }
        let mut h = HeaderMap::new();
        h.insert(
            "retry-after",
            "Sat, 01 Mar 2025 12:00:07 GMT".parse().unwrap(),
        );
        assert!(matches!(
            classify(429, &h, "", now),
            Outcome::Retry { after: Some(d), .. } if d == Duration::from_secs(7)
        ));
    }

    #[test]
    fn debug_hides_secret_and_url_tokens() {
        let c = WebhookConfig::new("https://user:pw@hooks.example/x/y?token=abc", SECRET);
        let dbg = format!("{c:?}");
        assert!(
            !dbg.contains("whsec") && !dbg.contains("pw") && !dbg.contains("abc"),
            "{dbg}"
        );
        assert!(dbg.contains("https://***@hooks.example/x/y?***"), "{dbg}");
        assert_eq!(
            redact_url("https://hooks.example/a"),
            "https://hooks.example/a"
        );
        assert_eq!(c.validate(), Ok(()));
        assert_eq!(
            WebhookConfig::new("ftp://x", SECRET).validate(),
            Err(WebhookError::BadUrl)
        );
        assert_eq!(
            WebhookConfig::new("https://x", Vec::new()).validate(),
            Err(WebhookError::EmptySecret)
        );
    }
}
