//! Locale tags (`en`, `fi`, `sv`, `pt-BR`): validated once so templates and subscribers can rely
//! on a canonical spelling when they look up the text for a reader's language.

use super::DomainError;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A BCP 47 language tag restricted to `language[-REGION]` (e.g. `fi`, `en-GB`), stored in canonical
/// case: lower-case language, upper-case region.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(try_from = "String", into = "String")]
#[schema(value_type = String, pattern = r"^\s*[A-Za-z]{2,3}([-_][A-Za-z]{2})?\s*$")]
pub struct Locale(String);

impl Locale {
    /// Parses and canonicalises a tag; `FI`, `fi`, `en_gb` and `en-GB` are all accepted.
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        let s = s.trim().replace('_', "-");
        let mut parts = s.split('-');
        let lang = parts.next().unwrap_or_default();
        let region = parts.next();
        let bad = || {
            DomainError::invalid(
                "locale",
                format!("\"{s}\" is not a language tag; use a two- or three-letter code such as en, fi or sv, optionally with a region (en-GB)"),
            )
        };
        if parts.next().is_some()
            || !(2..=3).contains(&lang.len())
            || !lang.chars().all(|c| c.is_ascii_alphabetic())
        {
            return Err(bad());
        }
        let mut out = lang.to_ascii_lowercase();
        if let Some(r) = region {
            if r.len() != 2 || !r.chars().all(|c| c.is_ascii_alphabetic()) {
                return Err(bad());
            }
            out.push('-');
            out.push_str(&r.to_ascii_uppercase());
        }
        Ok(Locale(out))
    }

    /// The default locale of crier's shipped templates.
    pub fn english() -> Self {
        Locale("en".to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Locale {
    type Error = DomainError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Locale::parse(&s)
    }
}

impl From<Locale> for String {
    fn from(l: Locale) -> String {
        l.0
    }
}

impl fmt::Display for Locale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonicalises_case_and_separator() {
        assert_eq!(Locale::parse("FI").unwrap().as_str(), "fi");
        assert_eq!(Locale::parse("en_gb").unwrap().as_str(), "en-GB");
        assert_eq!(Locale::parse("pt-br").unwrap().as_str(), "pt-BR");
    }

    #[test]
    fn rejects_garbage() {
        for bad in ["", "e", "english", "en-GBR", "e1", "en-GB-x", "fi-1"] {
            assert!(Locale::parse(bad).is_err(), "{bad} should be rejected");
        }
    }
}
