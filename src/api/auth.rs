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

/// The token of an `Authorization: Bearer` header, if there is one. The scheme name is
/// case-insensitive (RFC 9110 §11.1: `bearer`, `BEARER` and `Bearer` are the same scheme) and
/// may be followed by more than one space.
pub fn bearer(headers: &axum::http::HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?.trim_start();
    let (scheme, token) = value.split_once([' ', '\t'])?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    Some(token.trim()).filter(|t| !t.is_empty())
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

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderMap, HeaderValue};

    fn with(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn the_scheme_is_case_insensitive() {
        for v in ["Bearer tok", "bearer tok", "BEARER tok", "bEaReR   tok "] {
            assert_eq!(bearer(&with(v)), Some("tok"), "{v}");
        }
    }

    #[test]
    fn other_schemes_and_empty_tokens_are_none() {
        for v in ["Basic dG9rOg==", "Bearertok", "Bearer ", "tok", "Token tok"] {
            assert_eq!(bearer(&with(v)), None, "{v}");
        }
        assert_eq!(bearer(&HeaderMap::new()), None);
    }
}
