//! Parsing of the HTTP `Retry-After` header (RFC 9110 §10.2.3).
//!
//! Providers tell us when to come back after a 429 or 503 either as a number of
//! seconds or as an absolute HTTP-date. Every HTTP adapter needs the same
//! lenient-but-safe reading of that header, so it lives here: garbage is
//! ignored (`None`), dates in the past mean "now", and absurd values can be
//! capped with [`clamp_retry_after`] so a misbehaving server cannot park a
//! crisis message for days.

use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};

/// The longest wait the adapters will pass on from a provider's `Retry-After`.
///
/// Anything longer is clamped to this; the delivery engine may clamp further.
pub const DEFAULT_MAX_RETRY_AFTER: Duration = Duration::from_secs(60 * 60);

/// Reads a `Retry-After` header value.
///
/// Accepts `delta-seconds` (one or more ASCII digits; values too large for a
/// `u64` saturate) or an HTTP-date in IMF-fixdate form (and, leniently, the
/// obsolete RFC 850 and asctime forms). A date at or before `now` yields
/// `Some(Duration::ZERO)`. Anything else — empty, negative, fractional,
/// garbage — yields `None`.
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    if value.bytes().all(|b| b.is_ascii_digit()) {
        // All digits: delta-seconds. Overflow can only mean "very large".
        let secs = value.parse::<u64>().unwrap_or(u64::MAX);
        return Some(Duration::from_secs(secs));
    }
    let when = parse_http_date(value)?;
    let delta = when.signed_duration_since(now);
    // A negative delta (date in the past) fails to convert: retry right away.
    Some(delta.to_std().unwrap_or(Duration::ZERO))
}

/// Caps a provider-supplied delay at `max`.
pub fn clamp_retry_after(d: Duration, max: Duration) -> Duration {
    d.min(max)
}

/// Reads a `Retry-After` value and clamps it to [`DEFAULT_MAX_RETRY_AFTER`].
///
/// Convenience for the adapters' classifiers.
pub fn parse_and_clamp(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    parse_retry_after(value, now).map(|d| clamp_retry_after(d, DEFAULT_MAX_RETRY_AFTER))
}

/// Reads the `Retry-After` header from a header map, clamped to
/// [`DEFAULT_MAX_RETRY_AFTER`]. Non-UTF-8 or missing headers yield `None`.
pub fn from_headers(headers: &reqwest::header::HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_and_clamp(v, now))
}

fn parse_http_date(value: &str) -> Option<DateTime<Utc>> {
    // IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") is a subset of RFC 2822.
    if let Ok(dt) = DateTime::parse_from_rfc2822(value) {
        return Some(dt.with_timezone(&Utc));
    }
    // Obsolete forms that RFC 9110 says recipients should still accept.
    const OBSOLETE: [&str; 2] = [
        "%A, %d-%b-%y %H:%M:%S GMT", // RFC 850
        "%a %b %e %H:%M:%S %Y",      // asctime
    ];
    OBSOLETE.iter().find_map(|fmt| {
        NaiveDateTime::parse_from_str(value, fmt)
            .ok()
            .map(|naive| naive.and_utc())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 3, 1, 12, 0, 0).unwrap()
    }

    #[test]
    fn delta_seconds() {
        assert_eq!(parse_retry_after("7", now()), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after(" 120 ", now()),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after("0", now()), Some(Duration::ZERO));
    }

    #[test]
    fn http_date_in_future() {
        assert_eq!(
            parse_retry_after("Sat, 01 Mar 2025 12:00:30 GMT", now()),
            Some(Duration::from_secs(30))
        );
    }

    #[test]
    fn http_date_obsolete_forms() {
        assert_eq!(
            parse_retry_after("Saturday, 01-Mar-25 12:01:00 GMT", now()),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            parse_retry_after("Sat Mar  1 12:00:10 2025", now()),
            Some(Duration::from_secs(10))
        );
    }

    #[test]
    fn past_date_means_now() {
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now()),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn garbage_is_ignored() {
        for v in [
            "",
            "   ",
            "soon",
            "1.5",
            "7s",
            "0x10",
            "Sat, 99 Foo 2025",
            "+5",
        ] {
            assert_eq!(parse_retry_after(v, now()), None, "value {v:?}");
        }
    }

    #[test]
    fn negative_is_ignored() {
        assert_eq!(parse_retry_after("-5", now()), None);
    }

    #[test]
    fn huge_values_saturate_and_clamp() {
        let huge = parse_retry_after("99999999999999999999999999", now());
        assert_eq!(huge, Some(Duration::from_secs(u64::MAX)));
        let max = Duration::from_secs(3600);
        assert_eq!(clamp_retry_after(huge.unwrap(), max), max);
        assert_eq!(
            parse_and_clamp("86400000", now()),
            Some(DEFAULT_MAX_RETRY_AFTER)
        );
        // A far-future date clamps too.
        assert_eq!(
            parse_and_clamp("Fri, 31 Dec 9999 23:59:59 GMT", now()),
            Some(DEFAULT_MAX_RETRY_AFTER)
        );
    }

    #[test]
    fn clamp_keeps_small_values() {
        let max = Duration::from_secs(60);
        assert_eq!(
            clamp_retry_after(Duration::from_secs(5), max),
            Duration::from_secs(5)
        );
        assert_eq!(clamp_retry_after(max, max), max);
    }

    #[test]
    fn from_header_map() {
        let mut h = reqwest::header::HeaderMap::new();
        assert_eq!(from_headers(&h, now()), None);
        h.insert(reqwest::header::RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(from_headers(&h, now()), Some(Duration::from_secs(7)));
    }
}
