//! What the social and chat adapters share about HTTP answers: the status classes every
//! platform agrees on (2xx accepted; 408, 425, 429 and 5xx worth retrying, honouring
//! `Retry-After`; redirects and other 4xx permanent), the `X-RateLimit-Reset` header in its two
//! documented forms, and short body excerpts for reasons. Each adapter adds its platform's own
//! body-level signals on top (Telegram's `parameters.retry_after`, Discord's `retry_after`,
//! X's duplicate-content 403, Facebook's throttling codes).

use super::outcome::Outcome;
use super::retry_after;
use chrono::{DateTime, Utc};
use reqwest::header::HeaderMap;
use std::time::Duration;

/// The first 200 characters of a body, for reasons (`"empty body"` when there is none).
pub fn snippet(body: &str) -> String {
    let trimmed = body.trim();
    if trimmed.is_empty() {
        return "empty body".to_owned();
    }
    trimmed.chars().take(200).collect()
}

/// Whether an HTTP status is worth retrying: the one status class every adapter shares (408,
/// 425, 429 and 5xx).
pub fn is_transient(status: u16) -> bool {
    matches!(status, 408 | 425 | 429 | 500..=599)
}

/// A header's value as text, if present and printable.
pub fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// When a platform's rate-limit window resets, from `X-RateLimit-Reset` (or `name`): Unix
/// seconds (X) or an ISO 8601 instant (Mastodon). A reset in the past means now; clamped to
/// [`retry_after::DEFAULT_MAX_RETRY_AFTER`].
pub fn reset_after(headers: &HeaderMap, name: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = header(headers, name)?.trim();
    let at = if value.bytes().all(|b| b.is_ascii_digit()) && !value.is_empty() {
        DateTime::<Utc>::from_timestamp(value.parse().ok()?, 0)?
    } else {
        DateTime::parse_from_rfc3339(value)
            .ok()?
            .with_timezone(&Utc)
    };
    let d = (at - now).to_std().unwrap_or(Duration::ZERO);
    Some(retry_after::clamp_retry_after(
        d,
        retry_after::DEFAULT_MAX_RETRY_AFTER,
    ))
}

/// A delay in (possibly fractional) seconds from a JSON body, rounded up, clamped.
pub fn seconds(value: &serde_json::Value) -> Option<Duration> {
    let secs = value.as_f64()?;
    if !secs.is_finite() || secs < 0.0 {
        return None;
    }
    let d = Duration::from_secs_f64(secs.ceil().min(1e9));
    Some(retry_after::clamp_retry_after(
        d,
        retry_after::DEFAULT_MAX_RETRY_AFTER,
    ))
}

/// The outcome of a non-2xx answer by status class alone: `Retry` (with `Retry-After` or
/// `fallback_after`) for transient statuses, `Rejected` otherwise. `platform` names the
/// provider in the reason; the body excerpt is appended.
pub fn failure(
    platform: &str,
    status: u16,
    headers: &HeaderMap,
    body: &str,
    now: DateTime<Utc>,
    fallback_after: Option<Duration>,
) -> Outcome {
    let reason = format!("{platform} answered HTTP {status}: {}", snippet(body));
    if is_transient(status) {
        Outcome::Retry {
            reason,
            after: retry_after::from_headers(headers, now).or(fallback_after),
        }
    } else if (300..400).contains(&status) {
        Outcome::rejected(format!(
            "{platform} answered with a redirect (HTTP {status}); configure its final URL"
        ))
    } else {
        Outcome::rejected(reason)
    }
}

/// How long until the rate-limit window resets, when a reply says no requests are left in it:
/// header `remaining` is `0` and `reset` (Unix seconds or an ISO 8601 instant) is given.
pub fn window(
    headers: &HeaderMap,
    remaining: &str,
    reset: &str,
    now: DateTime<Utc>,
) -> Option<Duration> {
    if header(headers, remaining).map(str::trim) != Some("0") {
        return None;
    }
    reset_after(headers, reset, now)
}

/// Remembers a platform's "no requests left until …" from its rate-limit headers, so the next
/// send is deferred (`Retry` after the rest of the window) instead of being refused with a 429.
#[derive(Debug, Default)]
pub struct RateGate {
    until: std::sync::Mutex<Option<std::time::Instant>>,
}

impl RateGate {
    /// How long sends must still wait, if at all.
    pub fn wait(&self) -> Option<Duration> {
        let until = (*self.until.lock().ok()?)?;
        let left = until.checked_duration_since(std::time::Instant::now())?;
        (!left.is_zero()).then_some(left)
    }

    /// Holds sends back for `d`.
    pub fn close_for(&self, d: Duration) {
        if let Ok(mut u) = self.until.lock() {
            *u = Some(std::time::Instant::now() + d);
        }
    }

    /// `Retry` after the rest of the window, when the gate is closed.
    pub fn deferred(&self, platform: &str) -> Option<Outcome> {
        self.wait().map(|d| Outcome::Retry {
            reason: format!("{platform} rate limit: no requests left in this window"),
            after: Some(d),
        })
    }
}

/// Percent-encodes one path segment (RFC 3986 unreserved characters stay as they are).
pub fn path_segment(s: &str) -> String {
    crate::percent::encode(s)
}

/// The primary language subtag of a BCP 47 locale (`fi-FI` → `fi`), as Mastodon and Bluesky
/// expect it.
pub fn language(locale: &str) -> String {
    locale
        .split(['-', '_'])
        .next()
        .unwrap_or(locale)
        .to_ascii_lowercase()
}

#[cfg(test)]
pub mod testing {
    //! Helpers for the adapters' wiremock tests.
    use super::super::outcome::{OutMessage, Recipient, ThreadRef};
    use std::time::Duration;

    /// A client as [`super::super::http_client`] builds it: timeout, no redirects.
    pub fn client() -> reqwest::Client {
        reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
    }

    /// A post with `text`, key `key`, locale `fi`, starting a thread.
    pub fn post(key: &str, text: &str) -> OutMessage {
        OutMessage {
            idempotency_key: key.into(),
            recipient: Recipient::Endpoint,
            locale: "fi".into(),
            subject: None,
            text: text.into(),
            html: None,
            unsubscribe_url: None,
            document: None,
            thread: None,
        }
    }

    /// An SMS with key `key` to phone `to`.
    pub fn sms(key: &str, to: &str, text: &str) -> OutMessage {
        let mut m = post(key, text);
        m.recipient = Recipient::Phone(to.into());
        m
    }

    /// A post replying in a thread.
    pub fn reply(key: &str, text: &str, root: &str, parent: &str) -> OutMessage {
        let mut m = post(key, text);
        m.thread = Some(ThreadRef {
            root: root.into(),
            parent: parent.into(),
        });
        m
    }

    /// Mounts a mock answering `method` on `path` with `answer`, expected exactly once.
    pub async fn once(
        server: &wiremock::MockServer,
        method: &str,
        path: &str,
        answer: wiremock::ResponseTemplate,
    ) {
        wiremock::Mock::given(wiremock::matchers::method(method))
            .and(wiremock::matchers::path(path))
            .respond_with(answer)
            .expect(1)
            .mount(server)
            .await;
    }

    /// A mock server answering `method` on any path with `answer`, expected exactly once.
    pub async fn server_once(
        method: &str,
        answer: wiremock::ResponseTemplate,
    ) -> wiremock::MockServer {
        let server = wiremock::MockServer::start().await;
        let mock = wiremock::Mock::given(wiremock::matchers::method(method)).respond_with(answer);
        mount_once(&server, mock).await;
        server
    }

    /// Mounts `mock`, expected exactly once.
    pub async fn mount_once(server: &wiremock::MockServer, mock: wiremock::Mock) {
        mock.expect(1).mount(server).await;
    }

    /// Sends two posts through `a`: the first is delivered and empties the provider's window,
    /// so the second is not sent but deferred for more than `more_than`.
    pub async fn delivered_then_deferred<P: super::super::provider::Provider>(
        a: &super::super::HttpAdapter<P>,
        more_than: Duration,
    ) {
        assert!(matches!(
            a.send(&post("k1", "a")).await,
            super::super::Outcome::Delivered { .. }
        ));
        let out = a.send(&post("k2", "b")).await;
        assert!(
            matches!(&out, super::super::Outcome::Retry { after: Some(d), .. } if *d > more_than),
            "{out:?}"
        );
    }

    /// Mounts `/busy` answering 429 with `Retry-After: secs` and `refuse` answering `status`
    /// with `body`, each expected once; sends a post through the adapter `make` builds for each
    /// URL, asserts that the first retries after `secs` seconds, and returns the server and the
    /// second's outcome.
    pub async fn busy_then_refused<P: super::super::provider::Provider>(
        make: impl Fn(String) -> super::super::HttpAdapter<P>,
        secs: u64,
        refuse: &str,
        status: u16,
        body: &str,
    ) -> (wiremock::MockServer, super::super::Outcome) {
        let server = wiremock::MockServer::start().await;
        let busy = wiremock::ResponseTemplate::new(429).insert_header("Retry-After", secs);
        once(&server, "POST", "/busy", busy).await;
        let refused = wiremock::ResponseTemplate::new(status).set_body_string(body);
        once(&server, "POST", refuse, refused).await;
        let out = make(format!("{}/busy", server.uri()))
            .send(&post("k", "x"))
            .await;
        assert!(
            matches!(&out, super::super::Outcome::Retry { after: Some(d), .. } if *d == Duration::from_secs(secs)),
            "{out:?}"
        );
        let out = make(format!("{}{refuse}", server.uri()))
            .send(&post("k", "x"))
            .await;
        (server, out)
    }

    /// The JSON body of a recorded request.
    pub fn json_body(req: &wiremock::Request) -> serde_json::Value {
        serde_json::from_slice(&req.body).unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 3, 1, 12, 0, 0).unwrap()
    }

    #[test]
    fn rate_limit_reset_in_both_forms() {
        let mut h = HeaderMap::new();
        h.insert("x-rate-limit-reset", "1740830430".parse().unwrap());
        assert_eq!(
            reset_after(&h, "x-rate-limit-reset", now()),
            Some(Duration::from_secs(30))
        );
        h.insert(
            "x-ratelimit-reset",
            "2025-03-01T12:05:00.000Z".parse().unwrap(),
        );
        assert_eq!(
            reset_after(&h, "x-ratelimit-reset", now()),
            Some(Duration::from_secs(300))
        );
        h.insert("x-ratelimit-reset", "2020-01-01T00:00:00Z".parse().unwrap());
        assert_eq!(
            reset_after(&h, "x-ratelimit-reset", now()),
            Some(Duration::ZERO)
        );
        h.insert("x-ratelimit-reset", "soon".parse().unwrap());
        assert_eq!(reset_after(&h, "x-ratelimit-reset", now()), None);
    }

    #[test]
    fn body_seconds_round_up_and_clamp() {
        assert_eq!(
            seconds(&serde_json::json!(1.2)),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            seconds(&serde_json::json!(35)),
            Some(Duration::from_secs(35))
        );
        assert_eq!(
            seconds(&serde_json::json!(1e12)),
            Some(retry_after::DEFAULT_MAX_RETRY_AFTER)
        );
        assert_eq!(seconds(&serde_json::json!(-1)), None);
        assert_eq!(seconds(&serde_json::json!("x")), None);
    }

    #[test]
    fn status_classes() {
        let h = HeaderMap::new();
        assert!(matches!(
            failure("P", 503, &h, "", now(), None),
            Outcome::Retry { after: None, .. }
        ));
        assert!(matches!(
            failure("P", 429, &h, "", now(), Some(Duration::from_secs(3))),
            Outcome::Retry { after: Some(d), .. } if d == Duration::from_secs(3)
        ));
        assert_eq!(
            failure("P", 401, &h, "bad token", now(), None),
            Outcome::rejected("P answered HTTP 401: bad token")
        );
        assert!(matches!(
            failure("P", 302, &h, "", now(), None),
            Outcome::Rejected { reason } if reason.contains("redirect")
        ));
        assert_eq!(path_segment("!abc:example.org"), "%21abc%3Aexample.org");
        assert_eq!(language("fi-FI"), "fi");
        assert_eq!(language("sv"), "sv");
    }

    /// Twilio and Vonage share the status classes of [`is_transient`]: for every non-2xx status
    /// without a provider error code, both retry exactly when it is transient (once Twilio's
    /// own list forgot 425).
    #[test]
    fn sms_providers_share_the_status_classes() {
        let h = HeaderMap::new();
        for status in (100..200).chain(300..600) {
            for outcome in [
                super::super::twilio::classify(status, &h, "", now()),
                super::super::vonage::classify(status, &h, "", now()),
            ] {
                assert_eq!(
                    matches!(outcome, Outcome::Retry { .. }),
                    is_transient(status),
                    "HTTP {status}: {outcome:?}"
                );
            }
        }
    }
}

/// A chat webhook's request: `body` posted as JSON to the secret `url` (Slack, Teams).
pub fn post_json(
    http: &super::Http,
    url: &secrecy::SecretString,
    body: &serde_json::Value,
) -> reqwest::RequestBuilder {
    use secrecy::ExposeSecret;
    http.client.post(url.expose_secret()).json(body)
}

/// Slack, Teams and Discord: the webhook URL is itself the secret.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ChatFile {
    webhook_url_env: Option<String>,
}

/// A chat kind's one key, `webhook_url_env`: the variable holding the webhook's http(s) URL.
pub fn chat_webhook(
    table: toml::Table,
    r: &mut crate::channels::Resolve<'_>,
) -> Result<Option<secrecy::SecretString>, String> {
    let f: ChatFile = r.declared(table)?;
    Ok(match r.secret("webhook_url_env", f.webhook_url_env) {
        // h-types: an HttpUrl type replaces this check.
        Some(u) if u.starts_with("https://") || u.starts_with("http://") => Some(u.into()),
        Some(_) => {
            r.malformed("webhook_url_env", "must hold an http(s) URL");
            None
        }
        None => None,
    })
}
