//! The HMAC check of a signed webhook that reaches crier (`X-Crier-Signature`, the format crier's
//! own webhook channels sign with: `adapters::webhook`): monitoring intake's triggers.

use crate::adapters::webhook::keyed_mac;
use chrono::{DateTime, Utc};
use hmac::Mac;
use std::time::Duration;

/// Checks an `X-Crier-Signature` header for `body` and `timestamp` (the
/// `X-Crier-Timestamp` header). False when the timestamp is further than
/// `tolerance` from `now` (either direction), when no `v1=` entry matches, or
/// when the header is malformed. The MAC comparison is constant-time.
pub fn verify(
    secret: &[u8],
    timestamp: i64,
    body: &[u8],
    header: &str,
    now: DateTime<Utc>,
    tolerance: Duration,
) -> bool {
    let age = now.timestamp().abs_diff(timestamp);
    if age > tolerance.as_secs() {
        return false;
    }
    let Some(mac) = keyed_mac(secret, timestamp, body) else {
        return false;
    };
    header
        .split(',')
        .filter_map(|part| part.trim().strip_prefix("v1="))
        .filter_map(|hex_sig| hex::decode(hex_sig).ok())
        .any(|candidate| mac.clone().verify_slice(&candidate).is_ok())
}
