//! An update is one entry of an incident's timeline. Updates are append-only: a correction is a
//! new update, so the record of what was told to the public, and when, can always be audited.

use super::{DomainError, Locale, Status};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use ulid::Ulid;

/// Statuspage's limit on an update body, per locale.
pub const MAX_BODY_CHARS: usize = 25_000;

/// The text of an update, one per locale; at least one, none blank.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(value_type = BTreeMap<Locale, String>)]
#[serde(
    try_from = "BTreeMap<Locale, String>",
    into = "BTreeMap<Locale, String>"
)]
pub struct Body(BTreeMap<Locale, String>);

impl Body {
    /// Validates texts given as input: the rules below, line breaks normalised to LF, and no
    /// control character other than LF and tab.
    pub fn parse(texts: BTreeMap<Locale, String>) -> Result<Self, DomainError> {
        let mut normalized = BTreeMap::new();
        for (locale, text) in texts {
            let text = super::normalize_breaks(&text);
            super::check_text("body", text.trim()).map_err(|e| match e {
                DomainError::Invalid { field, reason } => DomainError::Invalid {
                    field,
                    reason: format!("the {locale} text {reason}"),
                },
                other => other,
            })?;
            normalized.insert(locale, text);
        }
        Self::parse_stored(normalized)
    }

    /// The rules a stored body was written under before control characters were refused, so a
    /// record written by an earlier version still reads.
    fn parse_stored(texts: BTreeMap<Locale, String>) -> Result<Self, DomainError> {
        if texts.is_empty() {
            return Err(DomainError::invalid(
                "body",
                "has no text; give the message in at least one language",
            ));
        }
        let mut out = BTreeMap::new();
        for (locale, text) in texts {
            let t = text.trim();
            if t.is_empty() {
                return Err(DomainError::invalid(
                    "body",
                    format!(
                        "the {locale} text is blank; write the message or leave that language out"
                    ),
                ));
            }
            let n = t.chars().count();
            if n > MAX_BODY_CHARS {
                return Err(DomainError::invalid(
                    "body",
                    format!(
                        "the {locale} text is {n} characters; keep it at most {MAX_BODY_CHARS}"
                    ),
                ));
            }
            out.insert(locale, t.to_owned());
        }
        Ok(Body(out))
    }

    /// A body in one language.
    pub fn single(locale: Locale, text: &str) -> Result<Self, DomainError> {
        Body::parse(BTreeMap::from([(locale, text.to_owned())]))
    }

    pub fn texts(&self) -> &BTreeMap<Locale, String> {
        &self.0
    }

    /// The text for `locale`, falling back to English, then to any language present.
    pub fn text_for(&self, locale: &Locale) -> &str {
        self.0
            .get(locale)
            .or_else(|| self.0.get(&Locale::english()))
            .or_else(|| self.0.values().next())
            .map(String::as_str)
            .unwrap_or_default()
    }
}

impl TryFrom<BTreeMap<Locale, String>> for Body {
    type Error = DomainError;
    fn try_from(m: BTreeMap<Locale, String>) -> Result<Self, Self::Error> {
        Body::parse_stored(m)
    }
}

impl From<Body> for BTreeMap<Locale, String> {
    fn from(b: Body) -> Self {
        b.0
    }
}

/// What an update did to its incident, so the timeline and the templates can say "resolved" or
/// "reopened" rather than guess from the statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UpdateAction {
    Opened,
    Updated,
    Resolved,
    Reopened,
}

impl UpdateAction {
    /// The action's name as the API writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            UpdateAction::Opened => "opened",
            UpdateAction::Updated => "updated",
            UpdateAction::Resolved => "resolved",
            UpdateAction::Reopened => "reopened",
        }
    }
}

/// One timeline entry. Its content never changes after it is written; only `published_at` is set
/// once, when a draft is published.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Update {
    pub id: Ulid,
    pub incident_id: Ulid,
    pub action: UpdateAction,
    pub status: Status,
    pub body: Body,
    pub author: String,
    pub created_at: DateTime<Utc>,
    pub next_update_due: Option<DateTime<Utc>>,
    pub draft: bool,
    pub published_at: Option<DateTime<Utc>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_rules() {
        let fi = Locale::parse("fi").unwrap();
        assert!(Body::parse(BTreeMap::new()).is_err());
        assert!(Body::single(fi.clone(), "   ").is_err());
        assert!(Body::single(fi.clone(), &"ä".repeat(MAX_BODY_CHARS + 1)).is_err());
        let b = Body::parse(BTreeMap::from([
            (fi.clone(), "Lennot myöhässä".to_owned()),
            (Locale::english(), "Flights delayed".to_owned()),
        ]))
        .unwrap();
        assert_eq!(b.text_for(&fi), "Lennot myöhässä");
        assert_eq!(b.text_for(&Locale::parse("sv").unwrap()), "Flights delayed");
    }

    #[test]
    fn input_texts_refuse_control_characters_but_keep_breaks_and_tabs() {
        let e = Body::single(Locale::english(), "Fixed\u{1b}]0;pwned\u{7}")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "body: the en text contains the control character U+001B (ESC) at character 6; remove it (a text may hold printable characters, line breaks and tabs)"
        );
        let b = Body::single(Locale::english(), "Line 1\r\n\tLine 2").unwrap();
        assert_eq!(b.text_for(&Locale::english()), "Line 1\n\tLine 2");
        // A record stored by an earlier version still reads.
        let stored: Body = serde_json::from_str(r#"{"en": "old \u0007 text"}"#).unwrap();
        assert_eq!(stored.text_for(&Locale::english()), "old \u{7} text");
    }
}
