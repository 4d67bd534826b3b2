//! The vocabulary every adapter speaks: the message to send and the provider's verdict on it.

/// What a provider said about one send.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Accepted; the provider's id for the message if it gave one (Twilio SID, Vonage message-id, SMTP response).
    Delivered { receipt: Option<String> },
    /// Transient failure: try again, no earlier than `after` if the provider said when (Retry-After etc.).
    Retry {
        reason: String,
        after: Option<std::time::Duration>,
    },
    /// Permanent failure: never retry (invalid number, 4xx other than 408/429, SMTP 5xx).
    Rejected { reason: String },
}

/// Who a message goes to.
#[derive(Debug, Clone, PartialEq)]
pub enum Recipient {
    Email(String),
    /// E.164.
    Phone(String),
    /// The channel's fixed target, e.g. a webhook URL.
    Endpoint,
}

/// One message to send, already rendered and fitted to the channel's length rule.
#[derive(Debug, Clone)]
pub struct OutMessage {
    /// Hex string, stable per (update, channel, recipient); providers that accept an idempotency key get it.
    pub idempotency_key: String,
    pub recipient: Recipient,
    pub locale: String,
    pub subject: Option<String>,
    pub text: String,
    pub html: Option<String>,
    /// RFC 8058 one-click unsubscribe URL (email/SMS subscribers).
    pub unsubscribe_url: Option<String>,
    /// The webhook JSON document (webhook channels).
    pub document: Option<serde_json::Value>,
}
