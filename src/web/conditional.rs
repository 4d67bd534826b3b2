//! Conditional GETs: every successful page and asset is sent with a strong ETag computed from
//! its bytes, and a request whose `If-None-Match` names it gets `304 Not Modified` and no body.
//!
//! Why hash the rendered bytes rather than track versions: a page depends on components,
//! incidents, the language and the configuration; the bytes are the one thing that changes
//! exactly when any of them does. Pages are small (a few kilobytes), so hashing is cheap next to
//! rendering, and a reader polling during a crisis costs one 304 instead of a page.

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Timelike, Utc};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

use crate::dispatch::Clock;

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

/// When each body (by ETag) was first sent: its `Last-Modified`. Bodies are named by content,
/// so the first time crier sent these bytes is a time they have not changed since (after a
/// restart, a later one: still true). Bounded: when full it starts again, which only moves
/// times later.
static FIRST_SEEN: LazyLock<Mutex<HashMap<String, DateTime<Utc>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));
const FIRST_SEEN_MAX: usize = 4096;

/// The `Last-Modified` of a body with `tag`: when it was first sent, to the second.
pub fn first_seen(tag: &str, now: DateTime<Utc>) -> DateTime<Utc> {
    let now = now.with_nanosecond(0).unwrap_or(now);
    let Ok(mut seen) = FIRST_SEEN.lock() else {
        return now;
    };
    if seen.len() >= FIRST_SEEN_MAX && !seen.contains_key(tag) {
        seen.clear();
    }
    *seen.entry(tag.to_owned()).or_insert(now)
}

/// An HTTP date (RFC 9110 §5.6.7, IMF-fixdate).
pub fn http_date(t: DateTime<Utc>) -> String {
    t.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

/// True when `If-Modified-Since` says the client's copy is as new as `modified`.
pub fn not_modified_since(if_modified_since: &str, modified: DateTime<Utc>) -> bool {
    DateTime::parse_from_rfc2822(if_modified_since.trim())
        .is_ok_and(|since| modified <= since.with_timezone(&Utc))
}

/// The middleware: adds the ETag and Last-Modified to 200 answers of GET/HEAD and turns a match
/// into 304 (`If-None-Match` first; `If-Modified-Since` only without it, RFC 9110 §13.2.2).
/// `Last-Modified` first-seen times read the server's clock (`clock`).
pub async fn etag(State(clock): State<Clock>, req: Request, next: Next) -> Response {
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
        .map(str::to_owned);
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
    parts
        .headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-cache"));
    let modified = first_seen(&tag, clock.now());
    if let Ok(v) = HeaderValue::from_str(&http_date(modified)) {
        parts.headers.insert(header::LAST_MODIFIED, v);
    }
    let fresh = match (inm.as_deref(), ims.as_deref()) {
        (Some(v), _) => none_match(v, &tag),
        (None, Some(v)) => not_modified_since(v, modified),
        (None, None) => false,
    };
    if fresh {
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

    /// The middleware's `Last-Modified` is the server's clock's time when the bytes were first
    /// sent, not the wall clock's.
    #[tokio::test(start_paused = true)]
    async fn last_modified_follows_the_injected_clock() {
        let t0 = DateTime::parse_from_rfc3339("2031-05-06T07:08:09Z")
            .unwrap()
            .with_timezone(&Utc);
        let app = axum::Router::new()
            .route(
                "/",
                axum::routing::get(|| async { "injected clock test body" }),
            )
            .layer(axum::middleware::from_fn_with_state(
                Clock::starting_at(t0),
                etag,
            ));
        // Served on the loopback, as the server does; paused time: the clock stays at t0.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let res = reqwest::get(format!("http://{addr}/")).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(
            res.headers()[header::LAST_MODIFIED].to_str().unwrap(),
            "Tue, 06 May 2031 07:08:09 GMT"
        );
    }

    #[test]
    fn last_modified_is_when_the_bytes_were_first_sent() {
        let t0 = DateTime::parse_from_rfc3339("2026-12-02T10:05:00.700Z")
            .unwrap()
            .with_timezone(&Utc);
        let tag = etag_of(b"last-modified test body");
        assert_eq!(
            first_seen(&tag, t0),
            t0.with_nanosecond(0).unwrap(),
            "to the second"
        );
        let later = t0 + chrono::Duration::hours(1);
        assert_eq!(first_seen(&tag, later), t0.with_nanosecond(0).unwrap());
        assert_eq!(http_date(t0), "Wed, 02 Dec 2026 10:05:00 GMT");
        assert!(not_modified_since(
            "Wed, 02 Dec 2026 10:05:00 GMT",
            t0.with_nanosecond(0).unwrap()
        ));
        assert!(!not_modified_since("Wed, 02 Dec 2026 10:04:59 GMT", t0));
        assert!(!not_modified_since("yesterday", t0));
    }
}
