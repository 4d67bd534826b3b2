//! Conditional GETs: every successful page and asset is sent with a strong ETag computed from
//! its bytes, and a request whose `If-None-Match` names it gets `304 Not Modified` and no body.
//!
//! Why hash the rendered bytes rather than track versions: a page depends on components,
//! incidents, the language and the configuration; the bytes are the one thing that changes
//! exactly when any of them does. Pages are small (a few kilobytes), so hashing is cheap next to
//! rendering, and a reader polling during a crisis costs one 304 instead of a page.

use axum::body::{to_bytes, Body};
use axum::extract::Request;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Timelike, Utc};
use sha2::{Digest, Sha256};

/// When each body (by its ETag) was first sent: its Last-Modified. Bounded: cleared when full,
/// after which pages show the time they are next rendered (later, never earlier, than the
/// truth, so a cache never keeps a stale page for a matching date).
static FIRST_SEEN: std::sync::LazyLock<
    std::sync::Mutex<std::collections::HashMap<String, DateTime<Utc>>>,
> = std::sync::LazyLock::new(Default::default);
const FIRST_SEEN_MAX: usize = 4096;

/// The Last-Modified of a body: when the server first sent these bytes, to the second.
fn last_modified(tag: &str) -> DateTime<Utc> {
    let now = Utc::now().with_nanosecond(0).unwrap_or_else(Utc::now);
    let mut seen = FIRST_SEEN.lock().unwrap_or_else(|p| p.into_inner());
    if seen.len() >= FIRST_SEEN_MAX && !seen.contains_key(tag) {
        seen.clear();
    }
    *seen.entry(tag.to_owned()).or_insert(now)
}

/// An HTTP date (RFC 9110 §5.6.7, IMF-fixdate).
pub fn http_date(t: DateTime<Utc>) -> String {
    t.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

/// Parses an IMF-fixdate (the form every current client sends); anything else is ignored.
pub fn parse_http_date(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc2822(s.trim())
        .ok()
        .map(|t| t.to_utc())
}

/// Pages larger than this are sent without an ETag rather than buffered.
const MAX_HASHED_BYTES: usize = 4 * 1024 * 1024;

/// The ETag of a body: the first 128 bits of its SHA-256, quoted.
pub fn etag_of(body: &[u8]) -> String {
    let d = Sha256::digest(body);
    format!("\"{}\"", hex::encode(&d[..16]))
}

/// True when an `If-None-Match` value names `etag` (or is `*`). Weak validators match too
/// (RFC 9110 §13.1.2 uses the weak comparison for `If-None-Match`).
pub fn none_match(if_none_match: &str, etag: &str) -> bool {
    let bare = etag.trim_start_matches("W/");
    if_none_match
        .split(',')
        .map(str::trim)
        .any(|t| t == "*" || t.trim_start_matches("W/") == bare)
}

/// The middleware: adds the ETag and Last-Modified to 200 answers of GET/HEAD and turns a
/// match into 304: `If-None-Match` when sent, else `If-Modified-Since` (RFC 9110 §13.2.2).
pub async fn etag(req: Request, next: Next) -> Response {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return next.run(req).await;
    }
    let inm = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let ims = req
        .headers()
        .get(header::IF_MODIFIED_SINCE)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_http_date);
    let res = next.run(req).await;
    if res.status() != StatusCode::OK {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    // A handler that knows its ETag (the status page's render cache) set it: no hashing, no
    // buffering.
    let known = parts
        .headers
        .get(header::ETAG)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (tag, body) = match known {
        Some(tag) => (tag, body),
        None => {
            let bytes = match to_bytes(body, MAX_HASHED_BYTES).await {
                Ok(b) => b,
                Err(_) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
            };
            let tag = etag_of(&bytes);
            let Ok(value) = HeaderValue::from_str(&tag) else {
                return Response::from_parts(parts, Body::from(bytes));
            };
            parts.headers.insert(header::ETAG, value);
            (tag, Body::from(bytes))
        }
    };
    let modified = last_modified(&tag);
    if let Ok(v) = HeaderValue::from_str(&http_date(modified)) {
        parts.headers.insert(header::LAST_MODIFIED, v);
    }
    let not_modified = match inm.as_deref() {
        Some(v) => none_match(v, &tag),
        None => ims.is_some_and(|since| modified <= since),
    };
    parts
        .headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-cache"));
    if not_modified {
        parts.status = StatusCode::NOT_MODIFIED;
        parts.headers.remove(header::CONTENT_LENGTH);
        return Response::from_parts(parts, Body::empty());
    }
    Response::from_parts(parts, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_follow_the_bytes_and_match_weakly() {
        let a = etag_of(b"page one");
        assert_eq!(a, etag_of(b"page one"));
        assert_ne!(a, etag_of(b"page two"));
        assert!(none_match(&a, &a));
        assert!(none_match(&format!("\"x\", W/{a}"), &a));
        assert!(none_match("*", &a));
        assert!(!none_match("\"x\"", &a));
        assert!(!none_match("", &a));
    }

    #[test]
    fn http_dates_round_trip() {
        let t = DateTime::parse_from_rfc3339("2026-12-03T04:05:06Z")
            .unwrap()
            .to_utc();
        assert_eq!(http_date(t), "Thu, 03 Dec 2026 04:05:06 GMT");
        assert_eq!(parse_http_date(&http_date(t)), Some(t));
        assert_eq!(parse_http_date("yesterday"), None);
    }
}
