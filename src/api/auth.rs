//! Bearer-token authentication. Tokens are compared in constant time and never logged; the
//! principal's name (not the token) is what the audit trail records as the author.

use super::{ApiError, AppState};
use crate::token::constant_time_eq;
use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::Response;

/// The accepted tokens, each with the name recorded as author of what it writes.
pub struct Tokens {
    entries: Vec<(String, String)>,
}

impl Tokens {
    /// One admin token.
    pub fn admin(token: String) -> Self {
        Tokens {
            entries: vec![("admin".to_owned(), token)],
        }
    }

    /// The principal a presented token belongs to (constant-time comparison).
    pub fn check(&self, presented: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(_, t)| constant_time_eq(t.as_bytes(), presented.as_bytes()))
            .map(|(name, _)| name.as_str())
    }
}

/// Who made a request, as established by its token.
#[derive(Debug, Clone)]
pub struct Principal(pub String);

/// The token of an `Authorization: Bearer` header, if there is one.
pub fn bearer(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}

/// Middleware: rejects requests without a valid `Authorization: Bearer` token with 401.
pub async fn require_token(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let presented = bearer(req.headers()).ok_or_else(ApiError::unauthorized)?;
    let name = state
        .tokens
        .check(presented)
        .ok_or_else(ApiError::unauthorized)?
        .to_owned();
    req.extensions_mut().insert(Principal(name));
    Ok(next.run(req).await)
}
