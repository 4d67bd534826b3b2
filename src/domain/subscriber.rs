//! Subscribers: people who asked to be told by email or SMS. Addresses are validated and normalised
//! on the way in (an E.164 phone number, a syntactically valid email address), so that the same
//! person cannot be subscribed twice under two spellings and receive every message twice.

use super::{ComponentName, DomainError, Locale};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use ulid::Ulid;

/// Where a subscriber is reached.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Contact {
    /// A lower-cased email address.
    Email(String),
    /// An E.164 number: `+`, country code, subscriber number, 8–15 digits in all.
    Phone(String),
}

impl Contact {
    /// Validates an email address with lettre's RFC 5321/5322 parser, lower-casing the domain part
    /// and the local part (mailbox local parts are case-insensitive in practice everywhere crier
    /// sends; this is what de-duplication relies on).
    pub fn email(s: &str) -> Result<Self, DomainError> {
        let t = s.trim();
        let bad = |why: &str| {
            DomainError::invalid(
                "email",
                format!(
                    "\"{t}\" is not a valid email address: {why}; write it as name@example.com"
                ),
            )
        };
        if t.len() > 254 {
            return Err(bad("longer than 254 characters"));
        }
        let addr: lettre::Address = t.parse().map_err(|_| bad("not of the form local@domain"))?;
        if !addr.domain().contains('.') && !addr.domain().starts_with('[') {
            return Err(bad("the domain has no dot"));
        }
        Ok(Contact::Email(t.to_lowercase()))
    }

    /// Validates and normalises a phone number to E.164. Spaces, dashes, dots and parentheses are
    /// dropped; a leading `00` becomes `+`. A number without a country code is refused, because
    /// guessing the country is how SMS ends up abroad.
    pub fn phone(s: &str) -> Result<Self, DomainError> {
        let t = s.trim();
        let compact: String = t
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
            .collect();
        let digits = if let Some(rest) = compact.strip_prefix('+') {
            rest
        } else if let Some(rest) = compact.strip_prefix("00") {
            rest
        } else {
            return Err(DomainError::invalid(
                "phone",
                format!(
                    "\"{t}\" has no country code; write it in E.164 form such as +358401234567"
                ),
            ));
        };
        if !digits.chars().all(|c| c.is_ascii_digit())
            || !(8..=15).contains(&digits.len())
            || digits.starts_with('0')
        {
            return Err(DomainError::invalid(
                "phone",
                format!("\"{t}\" is not an E.164 number (+, a country code that does not start with 0, 8-15 digits in all); for example +358401234567"),
            ));
        }
        Ok(Contact::Phone(format!("+{digits}")))
    }

    /// The normalised address, used as the de-duplication key.
    pub fn address(&self) -> &str {
        match self {
            Contact::Email(a) | Contact::Phone(a) => a,
        }
    }

    /// Parses either form: an address with `@` is an email, anything else a phone number.
    pub fn parse_any(s: &str) -> Result<Self, DomainError> {
        if s.contains('@') {
            Contact::email(s)
        } else {
            Contact::phone(s)
        }
    }
}

impl fmt::Display for Contact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.address())
    }
}

/// A person subscribed to updates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subscriber {
    pub id: Ulid,
    pub contact: Contact,
    pub locale: Locale,
    /// Components this subscriber cares about; empty means all.
    pub components: Vec<ComponentName>,
    /// Added by staff or confirmed by the subscriber (double opt-in).
    pub confirmed: bool,
    /// The secret in the one-click unsubscribe link.
    pub unsubscribe_token: String,
    pub created_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_numbers_normalise_to_e164() {
        assert_eq!(
            Contact::phone("+358 40 123 4567").unwrap(),
            Contact::Phone("+358401234567".into())
        );
        assert_eq!(
            Contact::phone("00358-40-1234567").unwrap(),
            Contact::Phone("+358401234567".into())
        );
        assert_eq!(
            Contact::phone("+1 (212) 555-0100").unwrap(),
            Contact::Phone("+12125550100".into())
        );
        for bad in [
            "0401234567",
            "+0401234567",
            "+35840abc",
            "+1234567",
            "+1234567890123456",
            "",
        ] {
            assert!(Contact::phone(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn emails_validate_and_lowercase() {
        assert_eq!(
            Contact::email(" Ops@Example.COM ").unwrap(),
            Contact::Email("ops@example.com".into())
        );
        for bad in ["nope", "a@", "@b.com", "a b@c.com", "a@localhost"] {
            assert!(Contact::email(bad).is_err(), "{bad} should be rejected");
        }
        assert!(matches!(
            Contact::parse_any("x@y.fi"),
            Ok(Contact::Email(_))
        ));
        assert!(matches!(
            Contact::parse_any("+358401234567"),
            Ok(Contact::Phone(_))
        ));
    }
}
