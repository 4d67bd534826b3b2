//! Twilio's callbacks to crier: the status callback's form (`MessageSid`, `MessageStatus`,
//! `ErrorCode`), inbound messages' forms, and the `X-Twilio-Signature` check both carry. The
//! outbound side (sending SMS) is `adapters::twilio`.

use crate::adapters::twilio::TwilioError;

/// Twilio's documented `MessageStatus` values, for error messages.
pub const STATUS_NAMES: &str = "queued, accepted, scheduled, sending, sent, delivered, undelivered, failed, read, canceled, partially_delivered, receiving, received";

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
    status_callback_from(&decode_form(form)?)
}

/// [`parse_status_callback`] of a body already decoded (as the signature check decodes it).
pub fn status_callback_from(pairs: &[(String, String)]) -> Result<StatusCallback, TwilioError> {
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
    crate::percent::decode_form(form).map_err(|e| TwilioError::MalformedForm(e.to_string()))
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
