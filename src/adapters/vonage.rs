//! Vonage (Nexmo) SMS API adapter: sends one SMS per [`OutMessage`] and
//! classifies the per-message `status` Vonage returns inside an HTTP 200.
//!
//! Request (see <https://developer.vonage.com/en/api/sms>): `POST {base}/sms/json`
//! (default base `https://rest.nexmo.com`), `application/x-www-form-urlencoded`
//! fields `api_key`, `api_secret`, `from`, `to`, `text`, `type`, `client-ref`.
//!
//! * `to` is E.164 **without** the leading `+` (the API reference's example is
//!   `447700900000`, and its pattern is 7–15 digits).
//! * `type` is `unicode` when the text has a character outside the GSM 03.38
//!   basic set and extension table ([`is_gsm7`]), otherwise `text`.
//! * `client-ref` carries the engine's idempotency key so delivery receipts can
//!   be matched. The SMS API OpenAPI description limits it to
//!   [`CLIENT_REF_MAX`] = 40 characters ("You can optionally include your own
//!   reference of up to 40 characters"), so the key is truncated to its first
//!   40 characters (160 bits of a hex digest is still unique). Vonage does
//!   **not** de-duplicate on `client-ref`: a retried timeout can send twice.
//!
//! Vonage answers HTTP 200 with
//! `{"message-count":"1","messages":[{"status":"0","message-id":"…"}]}`; a long
//! text is split into several parts, each with its own entry. The status table
//! (<https://developer.vonage.com/en/api-errors/sms>, also
//! <https://developer.vonage.com/en/messaging/sms/guides/troubleshooting-sms>):
//!
//! | status | meaning | Outcome |
//! |---|---|---|
//! | 0 | Success | `Delivered` (receipt: message-id; several parts are joined with `,`) |
//! | 1 | Throttled | `Retry` |
//! | 2 | Missing Parameters | `Rejected` |
//! | 3 | Invalid Parameters | `Rejected` |
//! | 4 | Invalid Credentials | `Rejected` |
//! | 5 | Internal Error | `Retry` |
//! | 6 | Invalid Message (e.g. unrecognised number prefix) | `Rejected` |
//! | 7 | Number Barred | `Rejected` |
//! | 8 | Partner Account Barred | `Rejected` |
//! | 9 | Partner Quota Violation (no credit; needs a human to top up) | `Rejected` |
//! | 10 | Too Many Existing Binds ("back-off and retry") | `Retry` |
//! | 11 | Account Not Enabled For HTTP | `Rejected` |
//! | 12 | Message Too Long | `Rejected` |
//! | 13 | Communication Failed (older tables only) | `Retry` |
//! | 14 | Invalid Signature | `Rejected` |
//! | 15 | Invalid Sender Address | `Rejected` |
//! | 16, 19, 20, 22, 23 | Invalid TTL / Facility Not Allowed / Invalid Message Class / Invalid Network Code / Invalid Callback URL | `Rejected` |
//! | 29 | Non-Whitelisted Destination | `Rejected` |
//! | 32, 33, 34 | Signature And API Secret Disallowed / Number De-activated / Invalid or missing MSISDN | `Rejected` |
//! | any other | unknown | `Rejected` (reason carries the code and `error-text`) |
//!
//! If parts disagree, any permanent failure makes the whole send `Rejected`,
//! else any transient one makes it `Retry` (a retry may then repeat parts that
//! did go out). A 200 whose body cannot be read is `Retry`: Vonage reports
//! every error inside a 200, so an unreadable body says nothing either way.
//! Non-2xx: 408/429/5xx → `Retry` (honouring `Retry-After`), other 4xx → `Rejected`.

use secrecy::{ExposeSecret, SecretString};
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::header::HeaderMap;
use serde::Deserialize;

use super::http::{is_transient, snippet};
use super::outcome::{HttpReply, OutMessage, Outcome, Recipient};
use super::retry_after;
use super::{Http, Provider, Request};

/// Vonage's production SMS API origin.
pub const DEFAULT_BASE_URL: &str = "https://rest.nexmo.com";

/// Default bound on one send (request + response body).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);

/// Longest `client-ref` the SMS API accepts.
pub const CLIENT_REF_MAX: usize = 40;

/// Statuses that are worth retrying (see the table in the module docs).
pub const TRANSIENT_STATUSES: [&str; 4] = ["1", "5", "10", "13"];

/// Errors in a Vonage configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VonageError {
    /// A required configuration value is empty.
    #[error("Vonage config: {0} must not be empty")]
    EmptyField(&'static str),
    /// The base URL is not an http(s) URL.
    #[error("Vonage config: base_url must start with http:// or https://")]
    BadBaseUrl,
}

/// Settings for one Vonage channel. Secrets are resolved by the caller.
#[derive(Debug, Clone)]
pub struct VonageConfig {
    /// API origin, normally [`DEFAULT_BASE_URL`]; tests point it at a mock.
    pub base_url: String,
    /// API key (account identifier).
    pub api_key: String,
    /// API secret. Never printed.
    pub api_secret: SecretString,
    /// Sender: a number (digits, no `+`) or an alphanumeric sender id.
    pub from: String,
}

impl VonageConfig {
    /// A config with the production base URL and default timeout.
    pub fn new(
        api_key: impl Into<String>,
        api_secret: impl Into<String>,
        from: impl Into<String>,
    ) -> Self {
        VonageConfig {
            base_url: DEFAULT_BASE_URL.to_owned(),
            api_key: api_key.into(),
            api_secret: SecretString::from(api_secret.into()),
            from: from.into(),
        }
    }

    /// Checks that the config can produce a valid request.
    pub fn validate(&self) -> Result<(), VonageError> {
        if !(self.base_url.starts_with("https://") || self.base_url.starts_with("http://")) {
            return Err(VonageError::BadBaseUrl);
        }
        for (name, value) in [
            ("api_key", self.api_key.as_str()),
            ("api_secret", self.api_secret.expose_secret()),
            ("from", self.from.as_str()),
        ] {
            if value.is_empty() {
                return Err(VonageError::EmptyField(name));
            }
        }
        Ok(())
    }

    /// The send endpoint.
    fn sms_url(&self) -> String {
        format!("{}/sms/json", self.base_url.trim_end_matches('/'))
    }
}

/// Sends SMS through the Vonage SMS API.
#[derive(Debug, Clone)]
pub struct VonageAdapter {
    config: VonageConfig,
}

impl VonageAdapter {
    /// Wraps a config.
    pub fn new(config: VonageConfig) -> Self {
        VonageAdapter { config }
    }

    /// The form fields sent for `msg`, in order. `Err` means the message can
    /// never be sent through this channel. Contains the API secret: never log.
    fn form_fields(&self, msg: &OutMessage) -> Result<Vec<(&'static str, String)>, String> {
        self.config
            .validate()
            .map_err(|e| format!("invalid Vonage configuration: {e}"))?;
        let to = match &msg.recipient {
            Recipient::Phone(p) => vonage_number(p)
                .ok_or_else(|| "recipient is not an E.164 phone number".to_owned())?,
            _ => return Err("Vonage needs a phone recipient".into()),
        };
        let kind = if is_gsm7(&msg.text) {
            "text"
        } else {
            "unicode"
        };
        Ok(vec![
            ("api_key", self.config.api_key.clone()),
            (
                "api_secret",
                self.config.api_secret.expose_secret().to_owned(),
            ),
            ("from", self.config.from.clone()),
            ("to", to),
            ("text", msg.text.clone()),
            ("type", kind.to_owned()),
            ("client-ref", client_ref(&msg.idempotency_key)),
        ])
    }
}

impl Provider for VonageAdapter {
    const NAME: &'static str = "Vonage";

    /// One SMS. Never panics; a message that can never be sent is `Rejected`.
    async fn request(&self, http: &Http, msg: &OutMessage) -> Request {
        let fields = self.form_fields(msg).map_err(Outcome::rejected)?;
        Ok(http.client.post(self.config.sms_url()).form(&fields))
    }

    fn classify(&self, reply: &HttpReply, now: DateTime<Utc>) -> Outcome {
        classify(reply.status, &reply.headers, &reply.body, now)
    }
}

/// Converts `+<digits>` E.164 into Vonage's form (digits only, 7–15 of them).
pub fn vonage_number(e164: &str) -> Option<String> {
    let digits = e164.strip_prefix('+')?;
    let ok = (7..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0');
    ok.then(|| digits.to_owned())
}

/// The `client-ref` for an idempotency key: its first [`CLIENT_REF_MAX`] characters.
pub fn client_ref(idempotency_key: &str) -> String {
    idempotency_key.chars().take(CLIENT_REF_MAX).collect()
}

/// Whether the whole text can be sent as GSM-7 (the SMS can use `type=text`): the one GSM-7
/// alphabet, the one the length rules count segments by.
pub use crate::render::rules::is_gsm7;

#[derive(Deserialize)]
struct SendResponse {
    #[serde(default)]
    messages: Vec<PartStatus>,
}

#[derive(Deserialize)]
struct PartStatus {
    status: String,
    #[serde(rename = "message-id")]
    message_id: Option<String>,
    #[serde(rename = "error-text")]
    error_text: Option<String>,
}

/// Classifies one Vonage HTTP answer. Pure: no I/O, `now` is only used to
/// resolve an HTTP-date `Retry-After`.
pub fn classify(status: u16, headers: &HeaderMap, body: &str, now: DateTime<Utc>) -> Outcome {
    if !(200..300).contains(&status) {
        let reason = format!("Vonage HTTP {status}: {}", snippet(body));
        return if is_transient(status) {
            Outcome::Retry {
                reason,
                after: retry_after::from_headers(headers, now),
            }
        } else {
            Outcome::Rejected { reason }
        };
    }
    let parsed = match serde_json::from_str::<SendResponse>(body) {
        Ok(p) if !p.messages.is_empty() => p,
        _ => {
            return Outcome::retry(format!(
                "Vonage HTTP {status} with unreadable body: {}",
                snippet(body)
            ))
        }
    };
    let describe = |p: &PartStatus| {
        format!(
            "Vonage status {}: {}",
            p.status,
            p.error_text.as_deref().unwrap_or("no error text")
        )
    };
    let failed = parsed.messages.iter().filter(|p| p.status.trim() != "0");
    let (transient, permanent): (Vec<&PartStatus>, Vec<&PartStatus>) =
        failed.partition(|p| TRANSIENT_STATUSES.contains(&p.status.trim()));
    if let Some(p) = permanent.first() {
        return Outcome::rejected(describe(p));
    }
    if let Some(p) = transient.first() {
        return Outcome::Retry {
            reason: describe(p),
            after: retry_after::from_headers(headers, now),
        };
    }
    let ids: Vec<&str> = parsed
        .messages
        .iter()
        .filter_map(|p| p.message_id.as_deref())
        .filter(|id| !id.is_empty())
        .collect();
    Outcome::Delivered {
        receipt: (!ids.is_empty()).then(|| ids.join(",")),
    }
}

use crate::channels::{KindSettings, KindSpec, Reach, Resolve, Settings};
use crate::render::preview::Platform;

/// The `vonage` kind: SMS to subscribers.
pub static KIND: KindSpec =
    KindSpec::subscribers("vonage", Platform::Sms, Reach::Phone, "30/s", declare);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VonageFile {
    api_key_env: Option<String>,
    api_secret_env: Option<String>,
    from: Option<String>,
}

fn declare(table: toml::Table, r: &mut Resolve<'_>) -> Result<Option<Settings>, String> {
    let f: VonageFile = r.declared(table)?;
    let api_key = r.secret("api_key_env", f.api_key_env);
    let api_secret = r.secret("api_secret_env", f.api_secret_env);
    if f.from.is_none() {
        r.invalid("from is missing: the sender id or number");
    }
    let (Some(api_key), Some(api_secret), Some(from)) = (api_key, api_secret, f.from) else {
        return Ok(None);
    };
    Ok(Some(Settings::new(VonageConfig {
        base_url: r.base(DEFAULT_BASE_URL),
        api_key,
        api_secret: api_secret.into(),
        from,
    })))
}

impl KindSettings for VonageConfig {
    fn build(&self, s: &super::Setup<'_>) -> Result<Box<dyn super::Deliver>, String> {
        self.validate().map_err(|e| e.to_string())?;
        s.http(VonageAdapter::new(self.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::super::http::testing::server_once;
    use super::super::HttpAdapter;
    use super::*;
    use crate::inbound::twilio::decode_form;
    use chrono::TimeZone;
    use wiremock::matchers::{header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    const SECRET: &str = "vonage-secret-77";
    const KEY: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 3, 1, 12, 0, 0).unwrap()
    }

    fn config(base: &str) -> VonageConfig {
        let mut c = VonageConfig::new("abcd1234", SECRET, "Crier");
        c.base_url = base.to_owned();
        c
    }

    fn sms(to: &str, text: &str) -> OutMessage {
        super::super::http::testing::sms(KEY, to, text)
    }

    fn client() -> reqwest::Client {
        reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap()
    }

    fn ok_body(id: &str) -> serde_json::Value {
        serde_json::json!({"message-count": "1", "messages": [
            {"to": "358401234567", "message-id": id, "status": "0",
             "remaining-balance": "15.5", "message-price": "0.03", "network": "24405"}]})
    }

    fn status_body(status: &str, text: &str) -> serde_json::Value {
        serde_json::json!({"message-count": "1", "messages": [{"status": status, "error-text": text}]})
    }

    async fn send_once(body: serde_json::Value, text: &str) -> (Outcome, Vec<(String, String)>) {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/sms/json"))
            .and(header("content-type", "application/x-www-form-urlencoded"))
            .respond_with(ResponseTemplate::new(200).set_body_json(body))
            .expect(1)
            .mount(&server)
            .await;
        let out = HttpAdapter::new(VonageAdapter::new(config(&server.uri())), client())
            .send(&sms("+358401234567", text))
            .await;
        let reqs = server.received_requests().await.unwrap();
        let form = decode_form(std::str::from_utf8(&reqs[0].body).unwrap()).unwrap();
        (out, form)
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[tokio::test]
    async fn status_0_delivers_and_sends_exact_form() {
        let text = "Sähkökatko Helsingissä klo 14–16? Ei: klo 14-16, hinta 5 €.";
        // The en dash is not GSM-7; use a GSM-only Finnish text instead.
        assert!(!is_gsm7(text));
        let text = "Sähkökatko Helsingissä klo 14-16, korvaus 5 € [info]";
        let (out, form) = send_once(ok_body("0A0000000123ABCD1"), text).await;
        assert_eq!(
            out,
            Outcome::Delivered {
                receipt: Some("0A0000000123ABCD1".into())
            }
        );
        assert_eq!(
            form,
            pairs(&[
                ("api_key", "abcd1234"),
                ("api_secret", SECRET),
                ("from", "Crier"),
                ("to", "358401234567"),
                ("text", text),
                ("type", "text"),
                ("client-ref", &KEY[..CLIENT_REF_MAX]),
            ])
        );
    }

    #[tokio::test]
    async fn emoji_selects_unicode() {
        let (out, form) = send_once(ok_body("X1"), "Evakuointi nyt 🚨").await;
        assert!(matches!(out, Outcome::Delivered { .. }));
        let kind = form.iter().find(|(k, _)| k == "type").unwrap();
        assert_eq!(kind.1, "unicode");
        let to = form.iter().find(|(k, _)| k == "to").unwrap();
        assert_eq!(to.1, "358401234567");
    }

    #[tokio::test]
    async fn status_1_retries() {
        let (out, _) = send_once(status_body("1", "Throughput Rate Exceeded"), "hi").await;
        match out {
            Outcome::Retry { reason, after } => {
                assert!(reason.contains("status 1"), "{reason}");
                assert_eq!(after, None);
            }
            other => panic!("expected retry, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn status_4_rejects_without_leaking_secret() {
        let (out, _) = send_once(status_body("4", "Bad Credentials"), "hi").await;
        match out {
            Outcome::Rejected { reason } => {
                assert!(reason.contains("status 4") && reason.contains("Bad Credentials"));
                assert!(!reason.contains(SECRET));
            }
            other => panic!("expected rejection, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn http_errors_and_network() {
        let server = server_once(
            "POST",
            ResponseTemplate::new(503).insert_header("Retry-After", "7"),
        )
        .await;
        let out = HttpAdapter::new(VonageAdapter::new(config(&server.uri())), client())
            .send(&sms("+358401234567", "hi"))
            .await;
        assert!(
            matches!(out, Outcome::Retry { after: Some(d), .. } if d == Duration::from_secs(7))
        );

        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let out = HttpAdapter::new(
            VonageAdapter::new(config(&format!("http://127.0.0.1:{port}"))),
            client(),
        )
        .send(&sms("+358401234567", "hi"))
        .await;
        assert!(matches!(out, Outcome::Retry { .. }), "{out:?}");
    }

    #[tokio::test]
    async fn hang_times_out_as_retry() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(ok_body("late"))
                    .set_delay(Duration::from_secs(5)),
            )
            .mount(&server)
            .await;
        let adapter = HttpAdapter::new(VonageAdapter::new(config(&server.uri())), client());
        let out = super::super::Adapter::new(adapter, Duration::from_millis(200))
            .send(&sms("+358401234567", "hi"))
            .await;
        assert_eq!(out, Outcome::retry("timed out"));
    }

    #[test]
    fn classify_table() {
        let h = HeaderMap::new();
        let c = |b: serde_json::Value| classify(200, &h, &b.to_string(), now());
        for s in ["1", "5", "10", "13"] {
            assert!(
                matches!(c(status_body(s, "x")), Outcome::Retry { .. }),
                "status {s}"
            );
        }
        for s in [
            "2", "3", "4", "6", "7", "8", "9", "11", "12", "14", "15", "29", "99",
        ] {
            assert!(
                matches!(c(status_body(s, "x")), Outcome::Rejected { .. }),
                "status {s}"
            );
        }
        // Multi-part: all ok → ids joined; one permanent failure wins over a transient one.
        let multi = serde_json::json!({"message-count": "2", "messages": [
            {"status": "0", "message-id": "A"}, {"status": "0", "message-id": "B"}]});
        assert_eq!(
            c(multi),
            Outcome::Delivered {
                receipt: Some("A,B".into())
            }
        );
        let mixed = serde_json::json!({"message-count": "3", "messages": [
            {"status": "0", "message-id": "A"}, {"status": "1"}, {"status": "7", "error-text": "barred"}]});
        assert!(matches!(c(mixed), Outcome::Rejected { reason } if reason.contains("barred")));
        // Unreadable 200 → retry; HTTP 4xx → reject; 429 → retry.
        assert!(matches!(
            classify(200, &h, "<html>", now()),
            Outcome::Retry { .. }
        ));
        assert!(matches!(
            classify(200, &h, "{\"messages\":[]}", now()),
            Outcome::Retry { .. }
        ));
        assert!(matches!(
            classify(401, &h, "", now()),
            Outcome::Rejected { .. }
        ));
        assert!(matches!(
            classify(429, &h, "", now()),
            Outcome::Retry { .. }
        ));
        assert!(matches!(
            classify(500, &h, "", now()),
            Outcome::Retry { .. }
        ));
    }

    #[test]
    fn gsm7_detection() {
        assert!(is_gsm7(
            "Hyvää päivää! Åland, Øresund, 100 € ^{}\\[~]|\n\r\u{0C}"
        ));
        assert!(is_gsm7(
            "@£$¥èéùìòÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./:;<=>?¡§¿"
        ));
        assert!(!is_gsm7("emoji 🚨"));
        assert!(!is_gsm7("backtick `"));
        assert!(!is_gsm7("Привет"));
        assert!(!is_gsm7("š")); // Estonian/Finnish loan letter, not GSM-7
        assert!(!is_gsm7("\u{1B}")); // ESC itself is not text
        assert!(is_gsm7(""));
    }

    #[test]
    fn number_and_client_ref() {
        assert_eq!(
            vonage_number("+447700900000").as_deref(),
            Some("447700900000")
        );
        assert_eq!(vonage_number("447700900000"), None);
        assert_eq!(vonage_number("+12345"), None);
        assert_eq!(vonage_number("+4477009000001234"), None);
        assert_eq!(client_ref("abc"), "abc");
        assert_eq!(client_ref(KEY).len(), CLIENT_REF_MAX);
    }

    #[test]
    fn debug_hides_secret_and_validate() {
        let c = config(DEFAULT_BASE_URL);
        assert!(!format!("{c:?}").contains(SECRET));
        assert!(!format!(
            "{:?}",
            HttpAdapter::new(VonageAdapter::new(c.clone()), client())
        )
        .contains(SECRET));
        assert_eq!(c.validate(), Ok(()));
        let mut bad = c.clone();
        bad.api_secret = "".into();
        assert_eq!(bad.validate(), Err(VonageError::EmptyField("api_secret")));
        let mut bad = c;
        bad.base_url = "rest.nexmo.com".into();
        assert_eq!(bad.validate(), Err(VonageError::BadBaseUrl));
    }
}
