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
//! `StatusCallback` URL; [`parse_status_callback`] reads that body. Checking
//! the `X-Twilio-Signature` header (HMAC-SHA1 over URL + sorted params) is the
//! receiving HTTP handler's job and is not done here.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::header::HeaderMap;
use serde::Deserialize;

use super::http::is_transient;
use super::outcome::{HttpReply, OutMessage, Outcome, Recipient};
use super::retry_after;
use super::{Http, Provider};

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
    #[error("status callback MessageStatus {0:?} is not a Twilio message status; expected one of {STATUS_NAMES}")]
    UnknownStatus(String),
}

/// Whether an account SID can go into the request path: non-empty, letters and digits only.
/// (Channel loading checks it too, so a malformed one skips its channel instead of failing.)
pub fn valid_account_sid(sid: &str) -> bool {
    !sid.is_empty() && sid.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Twilio's documented `MessageStatus` values, for error messages.
const STATUS_NAMES: &str = "queued, accepted, scheduled, sending, sent, delivered, undelivered, failed, read, canceled, partially_delivered, receiving, received";

/// Settings for one Twilio channel. Secrets are resolved by the caller.
#[derive(Clone)]
pub struct TwilioConfig {
    /// API origin, normally [`DEFAULT_BASE_URL`]; tests point it at a mock.
    pub base_url: String,
    /// Account SID (`AC...`), used in the path and as the Basic-auth user.
    pub account_sid: String,
    /// Auth token, the Basic-auth password. Never printed.
    pub auth_token: String,
    /// Sender phone number or alphanumeric id (`From`); set this or `messaging_service_sid`.
    pub from: Option<String>,
    /// Messaging Service SID (`MG...`); set this or `from`.
    pub messaging_service_sid: Option<String>,
    /// Optional `StatusCallback` URL for delivery status updates.
    pub status_callback: Option<String>,
    /// Bound on one send, on top of the client's own timeout.
    pub timeout: Duration,
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
            auth_token: auth_token.into(),
            from,
            messaging_service_sid,
            status_callback: None,
            timeout: DEFAULT_TIMEOUT,
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
        if self.auth_token.is_empty() {
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
    pub fn messages_url(&self) -> String {
        format!(
            "{}/2010-04-01/Accounts/{}/Messages.json",
            self.base_url.trim_end_matches('/'),
            self.account_sid
        )
    }
}

impl fmt::Debug for TwilioConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TwilioConfig")
            .field("base_url", &self.base_url)
            .field("account_sid", &self.account_sid)
            .field("auth_token", &"***")
            .field("from", &self.from)
            .field("messaging_service_sid", &self.messaging_service_sid)
            .field("status_callback", &self.status_callback)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Sends SMS through Twilio.
#[derive(Debug, Clone)]
pub struct TwilioAdapter {
    config: TwilioConfig,
}

impl TwilioAdapter {
    /// Wraps a config and a caller-built client (which should have a timeout).
    ///
    /// The config is checked on every [`send`](Self::send); call
    /// [`TwilioConfig::validate`] at start-up to fail early.
    pub fn new(config: TwilioConfig) -> Self {
        TwilioAdapter { config }
    }

    /// The form fields sent for `msg`, in order. `Err` means the message can
    /// never be sent through this channel.
    pub fn form_fields(&self, msg: &OutMessage) -> Result<Vec<(&'static str, String)>, String> {
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
    async fn request(
        &self,
        http: &Http,
        msg: &OutMessage,
    ) -> Result<reqwest::RequestBuilder, Outcome> {
        let fields = self.form_fields(msg).map_err(Outcome::rejected)?;
        Ok(http
            .client
            .post(self.config.messages_url())
            .basic_auth(&self.config.account_sid, Some(&self.config.auth_token))
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

/// Twilio's `MessageStatus` values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageStatus {
    /// Queued for sending.
    Queued,
    /// Accepted by a Messaging Service, not yet queued.
    Accepted,
    /// Scheduled for later.
    Scheduled,
    /// Being sent to the carrier.
    Sending,
    /// Handed to the carrier.
    Sent,
    /// Carrier confirmed delivery.
    Delivered,
    /// Carrier could not deliver.
    Undelivered,
    /// Twilio could not send.
    Failed,
    /// Read receipt (channels that support it).
    Read,
    /// Cancelled before sending.
    Canceled,
    /// Some parts of a multi-part message were delivered.
    PartiallyDelivered,
    /// Inbound message being received.
    Receiving,
    /// Inbound message received.
    Received,
}

impl MessageStatus {
    /// Reads a `MessageStatus` value (case-insensitive); anything else is refused, so a callback
    /// can only record a status Twilio documents.
    pub fn parse(s: &str) -> Result<Self, TwilioError> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "queued" => Self::Queued,
            "accepted" => Self::Accepted,
            "scheduled" => Self::Scheduled,
            "sending" => Self::Sending,
            "sent" => Self::Sent,
            "delivered" => Self::Delivered,
            "undelivered" => Self::Undelivered,
            "failed" => Self::Failed,
            "read" => Self::Read,
            "canceled" => Self::Canceled,
            "partially_delivered" => Self::PartiallyDelivered,
            "receiving" => Self::Receiving,
            "received" => Self::Received,
            _ => return Err(TwilioError::UnknownStatus(s.to_owned())),
        })
    }

    /// The status as Twilio spells it.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Queued => "queued",
            Self::Accepted => "accepted",
            Self::Scheduled => "scheduled",
            Self::Sending => "sending",
            Self::Sent => "sent",
            Self::Delivered => "delivered",
            Self::Undelivered => "undelivered",
            Self::Failed => "failed",
            Self::Read => "read",
            Self::Canceled => "canceled",
            Self::PartiallyDelivered => "partially_delivered",
            Self::Receiving => "receiving",
            Self::Received => "received",
        }
    }

    /// How far along its life a message with this status is. Callbacks can arrive out of order
    /// (Twilio sends them concurrently); a status only replaces one of a lower stage, so a late
    /// `sent` never overwrites `delivered`. The inbound statuses never concern an outbound
    /// message and rank lowest.
    fn stage(&self) -> u8 {
        match self {
            Self::Receiving | Self::Received => 0,
            Self::Scheduled => 1,
            Self::Accepted | Self::Queued => 2,
            Self::Sending => 3,
            Self::Sent => 4,
            Self::PartiallyDelivered => 5,
            Self::Delivered | Self::Undelivered | Self::Failed | Self::Canceled => 6,
            Self::Read => 7,
        }
    }

    /// Whether a callback reporting `self` should replace the recorded status `recorded`
    /// (`None`: nothing recorded yet, or a value earlier versions stored that is not a status).
    /// A later stage wins; within a stage the first final status stays (a message is not both
    /// delivered and failed), and a repeated non-final one may refresh it.
    pub fn supersedes(&self, recorded: Option<&str>) -> bool {
        let Some(old) = recorded.and_then(|r| MessageStatus::parse(r).ok()) else {
            return true;
        };
        match self.stage().cmp(&old.stage()) {
            std::cmp::Ordering::Greater => true,
            std::cmp::Ordering::Equal => !old.is_final(),
            std::cmp::Ordering::Less => false,
        }
    }

    /// True for statuses after which Twilio will not report further progress.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            Self::Delivered | Self::Undelivered | Self::Failed | Self::Read | Self::Canceled
        )
    }

    /// True when the message did not reach the handset.
    pub fn is_failure(&self) -> bool {
        matches!(self, Self::Undelivered | Self::Failed | Self::Canceled)
    }
}

/// The fields crier uses from a Twilio status callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusCallback {
    /// The message SID (`SM...`/`MM...`), matching the send's receipt.
    pub message_sid: String,
    /// New status of the message.
    pub message_status: MessageStatus,
    /// Twilio error code for failed/undelivered messages.
    pub error_code: Option<u32>,
    /// Account the message belongs to, when present.
    pub account_sid: Option<String>,
    /// Recipient number, when present.
    pub to: Option<String>,
}

/// Parses the `application/x-www-form-urlencoded` body Twilio POSTs to a
/// `StatusCallback` URL. `MessageSid` (or legacy `SmsSid`) and
/// `MessageStatus` (or legacy `SmsStatus`) are required; an empty `ErrorCode`
/// counts as absent.
pub fn parse_status_callback(form: &str) -> Result<StatusCallback, TwilioError> {
    let pairs = decode_form(form)?;
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .filter(|v| !v.is_empty())
    };
    let message_sid = get("MessageSid")
        .or_else(|| get("SmsSid"))
        .ok_or(TwilioError::MissingField("MessageSid"))?;
    let message_status = get("MessageStatus")
        .or_else(|| get("SmsStatus"))
        .ok_or(TwilioError::MissingField("MessageStatus"))
        .and_then(|s| MessageStatus::parse(&s))?;
    let error_code = match get("ErrorCode") {
        None => None,
        Some(raw) => Some(
            raw.parse::<u32>()
                .map_err(|_| TwilioError::BadErrorCode(raw.clone()))?,
        ),
    };
    Ok(StatusCallback {
        message_sid,
        message_status,
        error_code,
        account_sid: get("AccountSid"),
        to: get("To"),
    })
}

/// Decodes an `application/x-www-form-urlencoded` body into ordered pairs
/// (`+` is a space, `%XX` a byte; the result must be UTF-8).
pub fn decode_form(form: &str) -> Result<Vec<(String, String)>, TwilioError> {
    form.split('&')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            Ok((percent_decode(k)?, percent_decode(v)?))
        })
        .collect()
}

fn percent_decode(s: &str) -> Result<String, TwilioError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| TwilioError::MalformedForm("bad percent escape".into()))?;
                out.push(hex);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| TwilioError::MalformedForm("not UTF-8".into()))
}

/// Checks `X-Twilio-Signature` on a status callback: Base64 of HMAC-SHA1, keyed with the auth
/// token, over the exact callback URL followed by every POST parameter's name and value, sorted
/// by name (twilio.com/docs/usage/security#validating-requests). Constant-time comparison.
pub fn verify_signature(
    auth_token: &str,
    url: &str,
    params: &[(String, String)],
    signature: &str,
) -> bool {
    use base64::Engine;
    use hmac::{Hmac, Mac};
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    let Ok(mut mac) = Hmac::<sha1::Sha1>::new_from_slice(auth_token.as_bytes()) else {
        return false;
    };
    mac.update(url.as_bytes());
    for (k, v) in sorted {
        mac.update(k.as_bytes());
        mac.update(v.as_bytes());
    }
    let Ok(given) = base64::engine::general_purpose::STANDARD.decode(signature.trim()) else {
        return false;
    };
    mac.verify_slice(&given).is_ok()
}

#[cfg(test)]
mod tests {
    use super::super::HttpAdapter;
    use super::*;

    #[test]
    fn status_callback_signature_matches_twilios_documented_example() {
        let params: Vec<(String, String)> = [
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+12349013030"),
            ("Digits", "1234"),
            ("From", "+12349013030"),
            ("To", "+18005551212"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        assert!(verify_signature(
            "12345",
            url,
            &params,
            "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
        ));
        assert!(!verify_signature(
            "12346",
            url,
            &params,
            "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
        ));
        assert!(!verify_signature(
            "12345",
            "https://mycompany.com/other",
            &params,
            "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
        ));
        assert!(!verify_signature(
            "12345",
            url,
            &params[1..],
            "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
        ));
        assert!(!verify_signature("12345", url, &params, "not base64!"));
    }
    use chrono::TimeZone;
    use wiremock::matchers::{basic_auth, header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    const SID: &str = "AC0123456789abcdef0123456789abcdef";
    const TOKEN: &str = "tok-secret-4242";

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 3, 1, 12, 0, 0).unwrap()
    }

    fn config(base: &str) -> TwilioConfig {
        let mut c = TwilioConfig::new(SID, TOKEN, Some("+15005550006".into()), None);
        c.base_url = base.to_owned();
        c.status_callback = Some("https://crier.example/twilio/status".into());
        c.timeout = Duration::from_secs(5);
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
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(
                ResponseTemplate::new(201).set_body_json(serde_json::json!({"sid": "SM9"})),
            )
            .expect(1)
            .mount(&server)
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
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(
                ResponseTemplate::new(429)
                    .insert_header("Retry-After", "7")
                    .set_body_json(error_body(20429, "Too Many Requests", 429)),
            )
            .expect(1)
            .mount(&server)
            .await;
        let out = HttpAdapter::new(TwilioAdapter::new(config(&server.uri())), client())
            .send(&sms("+15551234567", "hi"))
            .await;
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
        let out = HttpAdapter::new(TwilioAdapter::new(config(&server.uri())), client())
            .send(&sms("+15551234567", "hi"))
            .await;
        match out {
            Outcome::Retry {
                after: Some(after), ..
            } => assert!(after <= Duration::from_secs(30) && after >= Duration::from_secs(20)),
            other => panic!("expected retry with delay, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn invalid_to_is_rejected_with_code_and_message() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(400).set_body_json(error_body(
                21211,
                "The 'To' number +15550000000 is not a valid phone number.",
                400,
            )))
            .expect(1)
            .mount(&server)
            .await;
        let out = HttpAdapter::new(TwilioAdapter::new(config(&server.uri())), client())
            .send(&sms("+15550000000", "hi"))
            .await;
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
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(500).set_body_string("oops"))
            .expect(1)
            .mount(&server)
            .await;
        let out = HttpAdapter::new(TwilioAdapter::new(config(&server.uri())), client())
            .send(&sms("+15551234567", "hi"))
            .await;
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
        let mut c = config(&server.uri());
        c.timeout = Duration::from_millis(200);
        let out = HttpAdapter::new(TwilioAdapter::new(c), client())
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
        no_token.auth_token.clear();
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

    #[test]
    fn status_callback_parsing() {
        let body = "SmsSid=SM1&SmsStatus=undelivered&MessageStatus=undelivered&To=%2B15558675310\
                    &MessageSid=SM1&AccountSid=AC1&From=%2B15017250604&ApiVersion=2010-04-01\
                    &ErrorCode=30003";
        let cb = parse_status_callback(body).unwrap();
        assert_eq!(
            cb,
            StatusCallback {
                message_sid: "SM1".into(),
                message_status: MessageStatus::Undelivered,
                error_code: Some(30003),
                account_sid: Some("AC1".into()),
                to: Some("+15558675310".into()),
            }
        );
        assert!(cb.message_status.is_final() && cb.message_status.is_failure());

        let ok =
            parse_status_callback("MessageSid=SM2&MessageStatus=delivered&ErrorCode=").unwrap();
        assert_eq!(ok.message_status, MessageStatus::Delivered);
        assert_eq!(ok.error_code, None);
        assert!(!ok.message_status.is_failure());

        let queued = parse_status_callback("MessageSid=SM3&MessageStatus=sending").unwrap();
        assert!(!queued.message_status.is_final());
        assert_eq!(
            parse_status_callback("MessageSid=SM3&MessageStatus=brand_new"),
            Err(TwilioError::UnknownStatus("brand_new".into()))
        );

        assert_eq!(
            parse_status_callback("MessageStatus=sent"),
            Err(TwilioError::MissingField("MessageSid"))
        );
        assert_eq!(
            parse_status_callback("MessageSid=SM1"),
            Err(TwilioError::MissingField("MessageStatus"))
        );
        assert!(matches!(
            parse_status_callback("MessageSid=SM1&MessageStatus=failed&ErrorCode=abc"),
            Err(TwilioError::BadErrorCode(_))
        ));
        assert!(matches!(
            parse_status_callback("MessageSid=SM%ZZ&MessageStatus=failed"),
            Err(TwilioError::MalformedForm(_))
        ));
    }

    #[test]
    fn every_documented_status_parses_and_nothing_else() {
        for name in STATUS_NAMES.split(", ") {
            assert_eq!(MessageStatus::parse(name).unwrap().as_str(), name);
        }
        assert_eq!(
            MessageStatus::parse("DELIVERED"),
            Ok(MessageStatus::Delivered)
        );
        for bad in ["", "delivered ", "pwned", "unknown"] {
            assert!(MessageStatus::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn callbacks_are_ordered_by_stage_and_finals_stay() {
        use MessageStatus::*;
        // In order: each replaces the one before.
        assert!(Queued.supersedes(None));
        assert!(Sending.supersedes(Some("queued")));
        assert!(Sent.supersedes(Some("sending")));
        assert!(Delivered.supersedes(Some("sent")));
        assert!(Read.supersedes(Some("delivered")));
        assert!(Undelivered.supersedes(Some("sent")));
        // Late arrivals of earlier stages do not overwrite a final status.
        assert!(!Sent.supersedes(Some("delivered")));
        assert!(!Queued.supersedes(Some("sent")));
        assert!(!Sending.supersedes(Some("undelivered")));
        assert!(!Delivered.supersedes(Some("read")));
        // Two different final statuses: the first one stays.
        assert!(!Failed.supersedes(Some("delivered")));
        assert!(!Delivered.supersedes(Some("undelivered")));
        // A repeated non-final status refreshes; an unreadable stored value is replaced.
        assert!(Sent.supersedes(Some("sent")));
        assert!(Sent.supersedes(Some("brand_new")));
    }

    #[test]
    fn form_decoding() {
        assert_eq!(
            decode_form("a=1+2&b=%E2%82%AC&c&=x").unwrap(),
            vec![
                ("a".to_string(), "1 2".to_string()),
                ("b".to_string(), "€".to_string()),
                ("c".to_string(), String::new()),
                (String::new(), "x".to_string()),
            ]
        );
        assert!(decode_form("a=%FF").is_err());
        assert!(decode_form("a=%4").is_err());
        assert!(decode_form("a=%+1").is_err());
    }
}
