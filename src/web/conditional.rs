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
use sha2::{Digest, Sha256};

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

/// The middleware: adds the ETag to 200 answers of GET/HEAD and turns a match into 304.
pub async fn etag(req: Request, next: Next) -> Response {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return next.run(req).await;
    }
    let inm = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let res = next.run(req).await;
    if res.status() != StatusCode::OK {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    let bytes = match to_bytes(body, MAX_HASHED_BYTES).await {
        Ok(b) => b,
        Err(_) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    };
    let tag = etag_of(&bytes);
    let Ok(value) = HeaderValue::from_str(&tag) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    parts.headers.insert(header::ETAG, value);
    parts
        .headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-cache"));
    if inm.as_deref().is_some_and(|v| none_match(v, &tag)) {
        parts.status = StatusCode::NOT_MODIFIED;
        parts.headers.remove(header::CONTENT_LENGTH);
        return Response::from_parts(parts, Body::empty());
    }
    Response::from_parts(parts, Body::from(bytes))
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
}
