//! Extractors that turn axum's rejections into problem+json with a useful detail, so a client that
//! sends malformed JSON, an unknown field or an oversized body learns exactly what to change.

use super::error::ApiError;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
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
