//! Shared vocabulary between the delivery engine and the provider adapters.
//!
//! Every adapter takes an [`OutMessage`] and answers with an [`Outcome`]; the
//! engine only ever looks at the outcome to decide whether to record success,
//! schedule a retry, or give up. Keeping these types in one small module lets
//! the adapters stay independent of each other and of the engine.

/// What a provider said about one send.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Accepted; the provider's id for the message if it gave one (Twilio SID, Vonage message-id,
    /// SMTP response). Social adapters return the new post's reference here (a plain id, or
    /// Bluesky's `{"uri","cid"}` JSON), which later updates reply to.
    Delivered {
        /// Provider-side identifier for the accepted message, if any.
        receipt: Option<String>,
    },
    /// Transient failure: try again, no earlier than `after` if the provider said when (Retry-After etc.).
    Retry {
        /// Human-readable cause, safe to log (never contains secrets).
        reason: String,
        /// Earliest time to retry, relative to now, when the provider said so.
        after: Option<std::time::Duration>,
    },
    /// Permanent failure: never retry (invalid number, 4xx other than 408/429, SMTP 5xx).
    Rejected {
        /// Human-readable cause, safe to log (never contains secrets).
        reason: String,
    },
}

impl Outcome {
    /// Shorthand for a [`Outcome::Retry`] without a provider-given delay.
    pub fn retry(reason: impl Into<String>) -> Self {
        Outcome::Retry {
            reason: reason.into(),
            after: None,
        }
    }

    /// The reason of a failure (empty for `Delivered`).
    pub fn reason(&self) -> &str {
        match self {
            Outcome::Delivered { .. } => "",
            Outcome::Retry { reason, .. } | Outcome::Rejected { reason } => reason,
        }
    }

    /// Shorthand for a [`Outcome::Rejected`].
    pub fn rejected(reason: impl Into<String>) -> Self {
        Outcome::Rejected {
            reason: reason.into(),
        }
    }
}

/// Who a message goes to.
#[derive(Debug, Clone, PartialEq)]
pub enum Recipient {
    /// An email address (`local@domain`).
    Email(String),
    /// A phone number in E.164 form, e.g. `+358401234567`.
    Phone(String),
    /// The channel's fixed target, e.g. a webhook URL.
    Endpoint,
}

/// One message to send, already rendered and fitted to the channel's length rule.
#[derive(Debug, Clone)]
pub struct OutMessage {
    /// Hex string, stable per (update, channel, recipient); providers that accept an idempotency key get it.
    pub idempotency_key: String,
    /// Who the message goes to.
    pub recipient: Recipient,
    /// BCP 47 locale the message was rendered in.
    pub locale: String,
    /// Subject line (email).
    pub subject: Option<String>,
    /// Plain-text body; the SMS text or the email's text/plain part.
    pub text: String,
    /// Optional HTML body (email).
    pub html: Option<String>,
    /// RFC 8058 one-click unsubscribe URL (email/SMS subscribers).
    pub unsubscribe_url: Option<String>,
    /// The webhook JSON document (webhook channels).
    pub document: Option<serde_json::Value>,
    /// The earlier posts this one replies to (social channels that thread an incident's
    /// updates); `None` starts a new thread.
    pub thread: Option<ThreadRef>,
}

/// Where a social post sits in its incident's thread: the first post (`root`) and the post it
/// replies to (`parent`, the latest one). Each is a post reference exactly as the platform's
/// adapter returned it as its receipt (a plain id, or JSON such as Bluesky's `{"uri","cid"}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadRef {
    /// The thread's first post.
    pub root: String,
    /// The post to reply to.
    pub parent: String,
}

/// What came back from one HTTP exchange, read in full.
#[derive(Debug, Clone)]
pub struct HttpReply {
    /// HTTP status code.
    pub status: u16,
    /// Response headers.
    pub headers: reqwest::header::HeaderMap,
    /// Response body, lossily decoded as UTF-8.
    pub body: String,
}

/// Sends `request` and reads the whole response.
///
/// The bound on the whole send is the adapter's (its channel's `send_timeout`, around the send
/// path); failures that never produced an HTTP status are mapped to an [`Outcome`] right here:
/// connection/transport errors become `Retry`, and errors building the request become
/// `Rejected`.
pub async fn exchange(request: reqwest::RequestBuilder) -> Result<HttpReply, Outcome> {
    let work = async {
        let response = request.send().await?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.bytes().await?;
        Ok::<_, reqwest::Error>(HttpReply {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        })
    };
    work.await.map_err(transport_failure)
}

/// Maps a `reqwest` error that produced no HTTP status to an [`Outcome`].
///
/// The URL is stripped from the error first (webhook URLs can embed tokens).
pub fn transport_failure(err: reqwest::Error) -> Outcome {
    if err.is_timeout() {
        return Outcome::retry("timed out");
    }
    let err = err.without_url();
    let mut reason = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(inner) = source {
        reason.push_str(": ");
        reason.push_str(&inner.to_string());
        source = inner.source();
    }
    if err.is_builder() {
        Outcome::rejected(format!("could not build request: {reason}"))
    } else {
        Outcome::retry(format!("network error: {reason}"))
    }
}
