//! Extractors that turn axum's rejections into problem+json with a useful detail, so a client that
//! sends malformed JSON, an unknown field or an oversized body learns exactly what to change.
//!
//! [`problem_responses`] is the net under them: any error answer that is not yet problem+json —
//! a rejection by one of axum's own extractors (`Path`, `Query`, `Bytes`, the body-limit layer's
//! 413) or the router's 405 — is rewritten as problem+json with the same status, so no client
//! ever has to parse plain text. It also sends `Connection: close` with every error answer to a
//! request that carried a body: such answers (401, 413, 404, …) are often given before the body
//! was read, and the server then cannot reuse the connection; saying so lets the client open a
//! new one instead of seeing a reset on its next request.

use super::error::ApiError;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

/// `axum::Json` with problem+json rejections.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(ApiJson(v)),
            Err(rej) => Err(json_rejection(rej)),
        }
    }
}

fn json_rejection(rej: JsonRejection) -> ApiError {
    match rej {
        JsonRejection::JsonDataError(e) => ApiError::unprocessable(format!(
            "the JSON body does not match the expected shape: {}",
            inner_message(&e.body_text())
        )),
        JsonRejection::JsonSyntaxError(e) => ApiError::bad_request(format!(
            "the body is not valid JSON: {}",
            inner_message(&e.body_text())
        )),
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the body as JSON with `Content-Type: application/json`",
        ),
        JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            too_large()
        }
        other => ApiError::new(other.status(), other.body_text()),
    }
}

/// The response to a body over the configured limit.
pub fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "the request body is larger than this server accepts; send less (CSV imports may be split into several files)",
    )
}

/// axum prefixes serde's message with a generic sentence; keep serde's part, which names the field.
fn inner_message(s: &str) -> &str {
    s.split_once(": ").map(|(_, rest)| rest).unwrap_or(s)
}

/// `axum::extract::Query` with problem+json rejections.
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(ApiQuery(v)),
            Err(QueryRejection::FailedToDeserializeQueryString(e)) => Err(ApiError::bad_request(
                format!("bad query string: {}", inner_message(&e.body_text())),
            )),
            Err(other) => Err(ApiError::bad_request(other.body_text())),
        }
    }
}

/// The longest plain-text error body [`problem_responses`] keeps as a detail.
const PLAIN_DETAIL_MAX: usize = 4096;

/// Middleware: every error answer as problem+json, and `Connection: close` on error answers to
/// requests with a body (see the module docs).
pub async fn problem_responses(req: Request, next: Next) -> Response {
    let had_body = req.headers().contains_key(header::TRANSFER_ENCODING)
        || req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim() != "0");
    let resp = next.run(req).await;
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let is_problem = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json"));
    // The pages (`crate::web`, the staff console too) answer their errors as pages.
    let is_page = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/html"));
    let mut resp = if is_problem || is_page {
        resp
    } else {
        let (parts, body) = resp.into_parts();
        let text = axum::body::to_bytes(body, PLAIN_DETAIL_MAX)
            .await
            .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
            .unwrap_or_default();
        let mut problem = plain_to_problem(status, &text).into_response();
        // Keep what the rejection said besides its body (e.g. `Allow` on a 405).
        for (name, value) in &parts.headers {
            if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
                problem.headers_mut().insert(name.clone(), value.clone());
            }
        }
        problem
    };
    if had_body {
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    resp
}

/// The problem for a plain-text error answer from axum.
fn plain_to_problem(status: StatusCode, text: &str) -> ApiError {
    match status {
        StatusCode::PAYLOAD_TOO_LARGE => too_large(),
        StatusCode::METHOD_NOT_ALLOWED => ApiError::new(
            status,
            "this endpoint does not take that method; the Allow header lists the ones it takes",
        ),
        _ if text.starts_with("Failed to deserialize query string") => {
            ApiError::new(status, format!("bad query string: {}", inner_message(text)))
        }
        _ if text.is_empty() => ApiError::new(
            status,
            status
                .canonical_reason()
                .unwrap_or("the request was refused")
                .to_owned(),
        ),
        _ => ApiError::new(status, text.to_owned()),
    }
}
