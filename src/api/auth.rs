//! Bearer tokens: the bootstrap admin token (compared in constant time, never logged) and the
//! `Authorization` header's parsing. Personal tokens and the route × role table are in
//! [`super::authz`]; the principal's name (never the token) is what an update records as its
//! author.

use crate::token::constant_time_eq;
use axum::http::header::AUTHORIZATION;

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

/// Who made a request, as established by its token: the name recorded as author, and the
/// effective role (see [`super::authz`]).
#[derive(Debug, Clone)]
pub struct Principal(pub String, pub crate::domain::Role);

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
