//! Errors as RFC 9457 `application/problem+json`: a status, a short title and a detail that tells
//! the client what to fix. Internal failures are logged in full and answered with a generic
//! detail, so storage paths and the like never leak to clients.

use crate::domain::DomainError;
use crate::store::StoreError;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub detail: String,
    pub field: Option<&'static str>,
}

/// An error answer (RFC 9457 problem details), `application/problem+json`.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct Problem<'a> {
    /// Always `about:blank`: the status says what kind of problem it is.
    #[serde(rename = "type")]
    kind: &'static str,
    /// The status's reason phrase.
    title: &'a str,
    /// The HTTP status code.
    status: u16,
    /// What went wrong and what to do instead.
    detail: &'a str,
    /// The request field at fault, for validation errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'static str>,
}

impl ApiError {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            detail: detail.into(),
            field: None,
        }
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, detail)
    }

    pub fn unprocessable(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, detail)
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "missing or invalid bearer token; send `Authorization: Bearer <token>` (the admin token is in <data>/admin.token)",
        )
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        match &e {
            DomainError::Invalid { field, .. } => ApiError {
                field: Some(field),
                ..ApiError::unprocessable(e.to_string())
            },
            DomainError::UnknownComponent(_) => ApiError {
                field: Some("components"),
                ..ApiError::unprocessable(e.to_string())
            },
            DomainError::Transition(_) => ApiError::new(StatusCode::CONFLICT, e.to_string()),
        }
    }
}

impl From<crate::intake::IntakeError> for ApiError {
    fn from(e: crate::intake::IntakeError) -> Self {
        match e {
            crate::intake::IntakeError::Store(e) => e.into(),
            crate::intake::IntakeError::Domain(e) => e.into(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Domain(d) => d.into(),
            StoreError::NotFound { .. } => ApiError::new(StatusCode::NOT_FOUND, e.to_string()),
            StoreError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, m),
            StoreError::Broken(_) => {
                tracing::error!(error = %e, "store unavailable");
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
            }
            other => {
                tracing::error!(error = %other, "store failure");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the store could not complete the request; nothing was acknowledged — retry, and check the server log",
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let title = self.status.canonical_reason().unwrap_or("Error");
        let body = serde_json::to_vec(&Problem {
            kind: "about:blank",
            title,
            status: self.status.as_u16(),
            detail: &self.detail,
            field: self.field,
        })
        .unwrap_or_default();
        let mut resp = (self.status, body).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}
