//! Twilio Programmable Messaging adapter: sends one SMS per [`OutMessage`]
//! through the Message resource and classifies Twilio's answer.
//!
//! Request (see <https://www.twilio.com/docs/messaging/api/message-resource>):
//! `POST {base}/2010-04-01/Accounts/{AccountSid}/Messages.json`, HTTP Basic
//! `AccountSid:AuthToken`, `application/x-www-form-urlencoded` fields `To`
//! (E.164), exactly one of `From` / `MessagingServiceSid`, `Body`, and
//! `StatusCallback` when configured.
//!
//! Twilio offers **no idempotency key** for message creation: a request that
//! timed out after Twilio accepted it will, when retried, send a second SMS.
//! The engine's idempotency key is therefore not sent; a timeout is still
//! reported as `Retry` because in a crisis a duplicate beats a lost message.
//!
//! Classification ([`classify`]):
//!
//! | HTTP / Twilio code | Outcome | Source |
//! |---|---|---|
//! | 2xx (201 Created) | `Delivered { receipt: sid }` | message-resource docs |
//! | 429, or body `code` 20429 | `Retry`, honouring `Retry-After` | <https://www.twilio.com/docs/api/errors/20429> ("safe to retry") |
//! | 408, 5xx | `Retry`, honouring `Retry-After` | HTTP semantics |
//! | 21610 (the recipient answered STOP) | `Rejected`; the engine marks the subscriber opted out ([`is_opted_out`]) | <https://www.twilio.com/docs/api/errors/21610> |
//! | 21211 (invalid `To`) and every other 4xx | `Rejected` with Twilio's code and message | <https://www.twilio.com/docs/api/errors/21211> |
//! | anything else (1xx/3xx) | `Rejected` | unexpected |
//!
//! Twilio's error body is `{"code": 21211, "message": "...", "more_info": "...", "status": 400}`.
//!
//! Status callbacks: Twilio POSTs `application/x-www-form-urlencoded` with
//! `MessageSid`, `MessageStatus` and (on failure) `ErrorCode` to the
//! `StatusCallback` URL; reading that body and checking its `X-Twilio-Signature`
//! header (HMAC-SHA1 over URL + sorted params) is the inbound side's job:
//! `crate::inbound::twilio`.

use secrecy::{ExposeSecret, SecretString};
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::header::HeaderMap;
use serde::Deserialize;

use super::http::is_transient;
use super::outcome::{HttpReply, OutMessage, Outcome, Recipient};
use super::retry_after;
use super::{Http, Provider, Request};

/// Twilio's production REST API origin.
pub const DEFAULT_BASE_URL: &str = "https://api.twilio.com";

/// Default bound on one send (request + response body).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);

/// Twilio error code for "Too Many Requests" (concurrency limit).
pub const CODE_TOO_MANY_REQUESTS: i64 = 20429;

/// Twilio error code for "Invalid 'To' Phone Number".
pub const CODE_INVALID_TO: i64 = 21211;

/// Errors in a Twilio configuration or in a status callback body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TwilioError {
    /// A required configuration value is empty.
    #[error("Twilio config: {0} must not be empty")]
    EmptyField(&'static str),
    /// Neither or both of `from` and `messaging_service_sid` were set.
    #[error("Twilio config: set exactly one of `from` or `messaging_service_sid`")]
    SenderChoice,
    /// The base URL is not an http(s) URL.
    #[error("Twilio config: base_url must start with http:// or https://")]
    BadBaseUrl,
    /// The account SID contains characters that cannot appear in a URL path segment.
    #[error("Twilio config: account_sid must be alphanumeric")]
    BadAccountSid,
    /// A form body could not be decoded.
    #[error("malformed form body: {0}")]
    MalformedForm(String),
    /// A status callback lacks a required field.
    #[error("status callback is missing {0}")]
    MissingField(&'static str),
    /// `ErrorCode` is present but not a number.
    #[error("status callback ErrorCode is not a number: {0:?}")]
    BadErrorCode(String),
    /// `MessageStatus` is not one of Twilio's documented values.
    #[error("status callback MessageStatus {0:?} is not a Twilio message status; expected one of {names}", names = crate::inbound::twilio::STATUS_NAMES)]
    UnknownStatus(String),
}

/// Whether an account SID can go into the request path: non-empty, letters and digits only.
/// (Channel loading checks it too, so a malformed one skips its channel instead of failing.)
pub fn valid_account_sid(sid: &str) -> bool {
    !sid.is_empty() && sid.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Settings for one Twilio channel. Secrets are resolved by the caller.
#[derive(Clone)]
pub struct TwilioConfig {
    /// API origin, normally [`DEFAULT_BASE_URL`]; tests point it at a mock.
    pub base_url: String,
    /// Account SID (`AC...`), used in the path and as the Basic-auth user.
    pub account_sid: String,
    /// Auth token, the Basic-auth password. Never printed.
    pub auth_token: SecretString,
    /// Sender phone number or alphanumeric id (`From`); set this or `messaging_service_sid`.
    pub from: Option<String>,
    /// Messaging Service SID (`MG...`); set this or `from`.
    pub messaging_service_sid: Option<String>,
    /// Optional `StatusCallback` URL for delivery status updates.
    pub status_callback: Option<String>,
}

impl TwilioConfig {
    /// A config with the production base URL and default timeout.
    pub fn new(
        account_sid: impl Into<String>,
        auth_token: impl Into<String>,
        from: Option<String>,
        messaging_service_sid: Option<String>,
    ) -> Self {
        TwilioConfig {
            base_url: DEFAULT_BASE_URL.to_owned(),
            account_sid: account_sid.into(),
            auth_token: SecretString::from(auth_token.into()),
            from,
            messaging_service_sid,
            status_callback: None,
        }
    }

    /// Checks that the config can produce a valid request.
    pub fn validate(&self) -> Result<(), TwilioError> {
        if !(self.base_url.starts_with("https://") || self.base_url.starts_with("http://")) {
            return Err(TwilioError::BadBaseUrl);
        }
        if self.account_sid.is_empty() {
            return Err(TwilioError::EmptyField("account_sid"));
        }
        if !valid_account_sid(&self.account_sid) {
            return Err(TwilioError::BadAccountSid);
        }
        if self.auth_token.expose_secret().is_empty() {
            return Err(TwilioError::EmptyField("auth_token"));
        }
        let from = self.from.as_deref().filter(|s| !s.is_empty());
        let service = self
            .messaging_service_sid
            .as_deref()
            .filter(|s| !s.is_empty());
        if from.is_some() == service.is_some() {
            return Err(TwilioError::SenderChoice);
        }
        Ok(())
    }

    /// The Message-resource URL for this account.
    fn messages_url(&self) -> String {
        format!(
            "{}/2010-04-01/Accounts/{}/Messages.json",
            self.base_url.trim_end_matches('/'),
            self.account_sid
        )
    }
}

impl std::fmt::Debug for TwilioConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TwilioConfig")
            .field("base_url", &self.base_url)
            .field("account_sid", &self.account_sid)
            .field("auth_token", &"***")
            .field("from", &self.from)
            .field("messaging_service_sid", &self.messaging_service_sid)
            .field("status_callback", &self.status_callback)
            .finish()
    }
}

/// Sends SMS through Twilio.
#[derive(Debug, Clone)]
pub struct TwilioAdapter {
    config: TwilioConfig,
}

impl TwilioAdapter {
    /// Wraps a config.
    ///
    /// The config is checked on every request; call
    /// [`TwilioConfig::validate`] at start-up to fail early.
    pub fn new(config: TwilioConfig) -> Self {
        TwilioAdapter { config }
    }

    /// The form fields sent for `msg`, in order. `Err` means the message can
    /// never be sent through this channel.
    fn form_fields(&self, msg: &OutMessage) -> Result<Vec<(&'static str, String)>, String> {
        self.config
            .validate()
            .map_err(|e| format!("invalid Twilio configuration: {e}"))?;
        let to = match &msg.recipient {
            Recipient::Phone(p) if is_e164(p) => p.clone(),
            Recipient::Phone(_) => return Err("recipient is not an E.164 phone number".into()),
            _ => return Err("Twilio needs a phone recipient".into()),
        };
        let mut fields = vec![("To", to)];
        match (&self.config.from, &self.config.messaging_service_sid) {
            (Some(from), _) if !from.is_empty() => fields.push(("From", from.clone())),
            (_, Some(sid)) => fields.push(("MessagingServiceSid", sid.clone())),
            _ => return Err("invalid Twilio configuration: no sender".into()),
        }
        fields.push(("Body", msg.text.clone()));
        if let Some(cb) = &self.config.status_callback {
            fields.push(("StatusCallback", cb.clone()));
        }
        Ok(fields)
    }
}

impl Provider for TwilioAdapter {
    const NAME: &'static str = "Twilio";

    /// One SMS. Never panics; a message that can never be sent is `Rejected`.
    async fn request(&self, http: &Http, msg: &OutMessage) -> Request {
        let fields = self.form_fields(msg).map_err(Outcome::rejected)?;
        Ok(http
            .client
            .post(self.config.messages_url())
            .basic_auth(
                &self.config.account_sid,
                Some(self.config.auth_token.expose_secret()),
            )
            .form(&fields))
    }

    fn classify(&self, reply: &HttpReply, now: DateTime<Utc>) -> Outcome {
        classify(reply.status, &reply.headers, &reply.body, now)
    }
}

/// `+` followed by 2 to 15 digits, the first not zero.
fn is_e164(s: &str) -> bool {
    let Some(digits) = s.strip_prefix('+') else {
        return false;
    };
    (2..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0')
}

#[derive(Deserialize)]
struct Created {
    sid: Option<String>,
}

#[derive(Deserialize)]
struct ErrorBody {
    code: Option<i64>,
    message: Option<String>,
}

/// Twilio error 21610: "Attempt to send to unsubscribed recipient" — the number answered STOP
/// to this sender (<https://www.twilio.com/docs/api/errors/21610>).
pub const CODE_OPTED_OUT: i64 = 21610;

/// Whether a rejection reason made by [`classify`] is Twilio's 21610 (the recipient opted out).
pub fn is_opted_out(reason: &str) -> bool {
    reason.starts_with(&format!("Twilio error {CODE_OPTED_OUT} "))
}

/// Classifies one Twilio HTTP answer. Pure: no I/O, `now` is only used to
/// resolve an HTTP-date `Retry-After`.
pub fn classify(status: u16, headers: &HeaderMap, body: &str, now: DateTime<Utc>) -> Outcome {
    if (200..300).contains(&status) {
        let receipt = serde_json::from_str::<Created>(body)
            .ok()
            .and_then(|c| c.sid)
            .filter(|s| !s.is_empty());
        return Outcome::Delivered { receipt };
    }
    let err = serde_json::from_str::<ErrorBody>(body).ok();
    let code = err.as_ref().and_then(|e| e.code);
    let message = err
        .as_ref()
        .and_then(|e| e.message.clone())
        .unwrap_or_else(|| "no error message".to_owned());
    let reason = match code {
        Some(code) => format!("Twilio error {code} (HTTP {status}): {message}"),
        None => format!("Twilio HTTP {status}: {message}"),
    };
    let after = retry_after::from_headers(headers, now);
    let transient = is_transient(status) || code == Some(CODE_TOO_MANY_REQUESTS);
    if transient {
        Outcome::Retry { reason, after }
    } else {
        Outcome::Rejected { reason }
    }
}

use crate::channels::{KindSettings, KindSpec, Reach, Resolve, Settings};
use crate::render::preview::Platform;

/// The `twilio` kind: SMS to subscribers.
pub static KIND: KindSpec =
    KindSpec::subscribers("twilio", Platform::Sms, Reach::Phone, "30/s", declare);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TwilioFile {
    account_sid_env: Option<String>,
    auth_token_env: Option<String>,
    from: Option<String>,
    messaging_service_sid: Option<String>,
    status_callback: Option<String>,
}

fn declare(table: toml::Table, r: &mut Resolve<'_>) -> Result<Option<Settings>, String> {
    let f: TwilioFile = r.declared(table)?;
    let account_sid = r.secret("account_sid_env", f.account_sid_env);
    let auth_token = r.secret("auth_token_env", f.auth_token_env);
    if f.from.is_some() == f.messaging_service_sid.is_some() {
        r.invalid("give exactly one of `from` (a Twilio number) or `messaging_service_sid`");
    }
    if let Some(sid) = &account_sid {
        if !valid_account_sid(sid) {
            r.malformed(
                "account_sid_env",
                "is not an account SID: use letters and digits only (AC followed by 32 hex digits, as the Twilio console shows it)",
            );
        }
    }
    let (Some(account_sid), Some(auth_token)) = (account_sid, auth_token) else {
        return Ok(None);
    };
    Ok(Some(Settings::new(TwilioConfig {
        base_url: r.base(DEFAULT_BASE_URL),
        account_sid,
        auth_token: auth_token.into(),
        from: f.from,
        messaging_service_sid: f.messaging_service_sid,
        status_callback: f.status_callback,
    })))
}

impl KindSettings for TwilioConfig {
    fn build(&self, s: &super::Setup<'_>) -> Result<Box<dyn super::Deliver>, String> {
        self.validate().map_err(|e| e.to_string())?;
        s.http(TwilioAdapter::new(self.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::super::http::testing::server_once;
    use super::super::HttpAdapter;
    use super::*;
    use crate::inbound::twilio::decode_form;

    use chrono::TimeZone;
    use wiremock::matchers::{basic_auth, header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    const SID: &str = "AC0123456789abcdef0123456789abcdef";
    const TOKEN: &str = "tok-secret-4242";

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 3, 1, 12, 0, 0).unwrap()
    }

    /// Sends "hi" to `to` through the adapter on `server`.
    async fn send_hi(server: &MockServer, to: &str) -> Outcome {
        HttpAdapter::new(TwilioAdapter::new(config(&server.uri())), client())
            .send(&sms(to, "hi"))
            .await
    }

    fn config(base: &str) -> TwilioConfig {
        let mut c = TwilioConfig::new(SID, TOKEN, Some("+15005550006".into()), None);
        c.base_url = base.to_owned();
        c.status_callback = Some("https://crier.example/twilio/status".into());
        c
    }

    fn sms(to: &str, text: &str) -> OutMessage {
        super::super::http::testing::sms("ab12", to, text)
    }

    fn client() -> reqwest::Client {
        reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap()
    }

    fn error_body(code: i64, msg: &str, status: u16) -> serde_json::Value {
        serde_json::json!({
            "code": code, "message": msg,
            "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
            "status": status
        })
    }

    #[tokio::test]
    async fn sends_exact_request_and_reads_sid() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path(format!("/2010-04-01/Accounts/{SID}/Messages.json")))
            .and(basic_auth(SID, TOKEN))
            .and(header("content-type", "application/x-www-form-urlencoded"))
            .respond_with(
                ResponseTemplate::new(201)
                    .set_body_json(serde_json::json!({"sid": "SM123", "status": "queued"})),
            )
            .expect(1)
            .mount(&server)
            .await;
        let adapter = HttpAdapter::new(TwilioAdapter::new(config(&server.uri())), client());
        let out = adapter
            .send(&sms("+358401234567", "Sähkökatko & vesi: 5 € / 100%"))
            .await;
        assert_eq!(
            out,
            Outcome::Delivered {
                receipt: Some("SM123".into())
            }
        );
        let reqs = server.received_requests().await.unwrap();
        assert_eq!(reqs.len(), 1);
        let form = decode_form(std::str::from_utf8(&reqs[0].body).unwrap()).unwrap();
        let expected: Vec<(String, String)> = [
            ("To", "+358401234567"),
            ("From", "+15005550006"),
            ("Body", "Sähkökatko & vesi: 5 € / 100%"),
            ("StatusCallback", "https://crier.example/twilio/status"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(form, expected);
    }

    #[tokio::test]
    async fn messaging_service_sid_replaces_from() {
        let server = server_once(
            "POST",
            ResponseTemplate::new(201).set_body_json(serde_json::json!({"sid": "SM9"})),
        )
        .await;
        let mut c = config(&server.uri());
        c.from = None;
        c.messaging_service_sid = Some("MG0001".into());
        c.status_callback = None;
        let out = HttpAdapter::new(TwilioAdapter::new(c), client())
            .send(&sms("+15551234567", "hi"))
            .await;
        assert!(matches!(out, Outcome::Delivered { .. }));
        let reqs = server.received_requests().await.unwrap();
        let form = decode_form(std::str::from_utf8(&reqs[0].body).unwrap()).unwrap();
        let keys: Vec<&str> = form.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["To", "MessagingServiceSid", "Body"]);
        assert_eq!(form[1].1, "MG0001");
    }

    #[tokio::test]
    async fn http_429_with_retry_after_seconds() {
        let server = server_once(
            "POST",
            ResponseTemplate::new(429)
                .insert_header("Retry-After", "7")
                .set_body_json(error_body(20429, "Too Many Requests", 429)),
        )
        .await;
        let out = send_hi(&server, "+15551234567").await;
        match out {
            Outcome::Retry { after, reason } => {
                assert_eq!(after, Some(Duration::from_secs(7)));
                assert!(reason.contains("20429"), "{reason}");
            }
            other => panic!("expected retry, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn http_429_with_retry_after_date() {
        let server = MockServer::start().await;
        let when = (Utc::now() + chrono::Duration::seconds(30))
            .format("%a, %d %b %Y %H:%M:%S GMT")
            .to_string();
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", when.as_str()))
            .expect(1)
            .mount(&server)
            .await;
        let out = send_hi(&server, "+15551234567").await;
        match out {
            Outcome::Retry {
                after: Some(after), ..
            } => assert!(after <= Duration::from_secs(30) && after >= Duration::from_secs(20)),
            other => panic!("expected retry with delay, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn invalid_to_is_rejected_with_code_and_message() {
        let server = server_once(
            "POST",
            ResponseTemplate::new(400).set_body_json(error_body(
                21211,
                "The 'To' number +15550000000 is not a valid phone number.",
                400,
            )),
        )
        .await;
        let out = send_hi(&server, "+15550000000").await;
        match out {
            Outcome::Rejected { reason } => {
                assert!(reason.contains("21211"), "{reason}");
                assert!(reason.contains("not a valid phone number"), "{reason}");
                assert!(!reason.contains(TOKEN));
            }
            other => panic!("expected rejection, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn server_error_retries() {
        let server = server_once("POST", ResponseTemplate::new(500).set_body_string("oops")).await;
        let out = send_hi(&server, "+15551234567").await;
        assert!(matches!(out, Outcome::Retry { after: None, .. }), "{out:?}");
    }

    #[tokio::test]
    async fn connection_refused_retries() {
        // Bind then drop a listener to get a port that is (very likely) closed.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let out = HttpAdapter::new(
            TwilioAdapter::new(config(&format!("http://127.0.0.1:{port}"))),
            client(),
        )
        .send(&sms("+15551234567", "hi"))
        .await;
        match out {
            Outcome::Retry { reason, .. } => {
                assert!(reason.starts_with("network error"), "{reason}");
                assert!(!reason.contains(TOKEN));
            }
            other => panic!("expected retry, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn hang_times_out_as_retry() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(201).set_delay(Duration::from_secs(5)))
            .mount(&server)
            .await;
        let adapter = HttpAdapter::new(TwilioAdapter::new(config(&server.uri())), client());
        let out = super::super::Adapter::new(adapter, Duration::from_millis(200))
            .send(&sms("+15551234567", "hi"))
            .await;
        assert_eq!(
            out,
            Outcome::Retry {
                reason: "timed out".into(),
                after: None
            }
        );
    }

    #[tokio::test]
    async fn bad_recipient_never_hits_network() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(201))
            .expect(0)
            .mount(&server)
            .await;
        let adapter = HttpAdapter::new(TwilioAdapter::new(config(&server.uri())), client());
        for to in ["0401234567", "+", "+0123", "+12ab"] {
            assert!(matches!(
                adapter.send(&sms(to, "x")).await,
                Outcome::Rejected { .. }
            ));
        }
        let mut email = sms("+15551234567", "x");
        email.recipient = Recipient::Email("a@b.example".into());
        assert!(matches!(
            adapter.send(&email).await,
            Outcome::Rejected { .. }
        ));
    }

    #[test]
    fn classify_table() {
        let h = HeaderMap::new();
        assert_eq!(
            classify(201, &h, r#"{"sid":"SMabc"}"#, now()),
            Outcome::Delivered {
                receipt: Some("SMabc".into())
            }
        );
        assert_eq!(
            classify(201, &h, "not json", now()),
            Outcome::Delivered { receipt: None }
        );
        // 20429 in the body means retry even if the HTTP status were odd.
        let body = error_body(20429, "Too Many Requests", 400).to_string();
        assert!(matches!(
            classify(400, &h, &body, now()),
            Outcome::Retry { .. }
        ));
        let body = error_body(21211, "bad To", 400).to_string();
        assert!(matches!(
            classify(400, &h, &body, now()),
            Outcome::Rejected { .. }
        ));
        let body = error_body(20003, "Authenticate", 401).to_string();
        assert!(matches!(
            classify(401, &h, &body, now()),
            Outcome::Rejected { .. }
        ));
        assert!(matches!(
            classify(408, &h, "", now()),
            Outcome::Retry { .. }
        ));
        assert!(matches!(
            classify(503, &h, "", now()),
            Outcome::Retry { .. }
        ));
        assert!(matches!(
            classify(302, &h, "", now()),
            Outcome::Rejected { .. }
        ));

        let mut h = HeaderMap::new();
        h.insert(
            "retry-after",
            "Sat, 01 Mar 2025 12:00:45 GMT".parse().unwrap(),
        );
        assert_eq!(
            classify(429, &h, "", now()),
            Outcome::Retry {
                reason: "Twilio HTTP 429: no error message".into(),
                after: Some(Duration::from_secs(45))
            }
        );
    }

    #[test]
    fn validate_config() {
        let ok = config("https://api.twilio.com");
        assert_eq!(ok.validate(), Ok(()));
        let mut both = ok.clone();
        both.messaging_service_sid = Some("MG1".into());
        assert_eq!(both.validate(), Err(TwilioError::SenderChoice));
        let mut neither = ok.clone();
        neither.from = None;
        assert_eq!(neither.validate(), Err(TwilioError::SenderChoice));
        let mut empty_from = ok.clone();
        empty_from.from = Some(String::new());
        assert_eq!(empty_from.validate(), Err(TwilioError::SenderChoice));
        let mut no_token = ok.clone();
        no_token.auth_token = "".into();
        assert_eq!(
            no_token.validate(),
            Err(TwilioError::EmptyField("auth_token"))
        );
        let mut bad_sid = ok.clone();
        bad_sid.account_sid = "AC/../x".into();
        assert_eq!(bad_sid.validate(), Err(TwilioError::BadAccountSid));
        let mut bad_url = ok;
        bad_url.base_url = "ftp://x".into();
        assert_eq!(bad_url.validate(), Err(TwilioError::BadBaseUrl));
        assert_eq!(
            TwilioConfig::new(SID, TOKEN, None, Some("MG1".into())).base_url,
            DEFAULT_BASE_URL
        );
    }

    #[test]
    fn debug_hides_token() {
        let c = config("https://api.twilio.com");
        let dbg = format!("{c:?}");
        assert!(!dbg.contains(TOKEN));
        assert!(dbg.contains("***"));
        let adapter = HttpAdapter::new(TwilioAdapter::new(c), client());
        assert!(!format!("{adapter:?}").contains(TOKEN));
    }
}
