//! Subscribers: people who asked to be told by email or SMS. Addresses are validated and normalised
//! on the way in (an E.164 phone number valid in its country's numbering plan, a syntactically
//! valid email address), so that the same person cannot be subscribed twice under two spellings
//! and receive every message twice.

use super::{ComponentName, DomainError, Locale, PhoneNumber};
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
    /// An E.164 number valid in its country's numbering plan.
    Phone(#[schema(inline)] PhoneNumber),
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
        // The lower-cased form is what is stored, so it is what must be valid (lower-casing can
        // lengthen a text: `İ` becomes `i` + U+0307).
        let lower = t.to_lowercase();
        if lower.len() > 254 {
            return Err(bad("longer than 254 characters"));
        }
        super::check_line("email", t)?;
        // CSV injection: a cell starting with one of these is run as a formula when an exported
        // subscriber list is opened in a spreadsheet. `+` is valid inside a local part (tags),
        // and phone numbers start with `+`, but an email address never needs to start with it.
        if let Some(c) = t
            .chars()
            .next()
            .filter(|c| matches!(c, '=' | '+' | '-' | '@'))
        {
            return Err(bad(&format!(
                "it starts with '{c}', which spreadsheets run as a formula"
            )));
        }
        let addr: lettre::Address = lower
            .parse()
            .map_err(|_| bad("not of the form local@domain"))?;
        if !addr.domain().contains('.') && !addr.domain().starts_with('[') {
            return Err(bad("the domain has no dot"));
        }
        Ok(Contact::Email(lower))
    }

    /// Validates and normalises a phone number to E.164 ([`PhoneNumber::parse`]).
    pub fn phone(s: &str) -> Result<Self, DomainError> {
        PhoneNumber::parse(s).map(Contact::Phone)
    }

    /// The normalised address, used as the de-duplication key.
    pub fn address(&self) -> &str {
        match self {
            Contact::Email(a) => a,
            Contact::Phone(p) => p.as_str(),
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
    /// The secret in the one-click unsubscribe link (and the `/manage/{token}` page).
    pub unsubscribe_token: String,
    pub created_at: DateTime<Utc>,
    /// The number answered STOP (or a send was refused with Twilio error 21610): nothing is sent
    /// to it until it answers START. Only for confirmed subscribers; the record stays so that
    /// START can resume it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub opted_out: bool,
    /// The open double opt-in of a self-service sign-up (none once confirmed or added by staff).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<Pending>,
}

impl Subscriber {
    /// Whether messages may be sent to this subscriber: confirmed and not opted out.
    pub fn receives(&self) -> bool {
        self.confirmed && !self.opted_out
    }
}

/// How a self-service sign-up is confirmed: only hashes are kept, never the link's secret or the
/// SMS code itself (a copy of the store confirms nobody).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pending {
    /// SHA-256 (hex) of the secret in the email's confirmation link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_hash: Option<String>,
    /// SHA-256 (hex) of `salt ‖ code` for the SMS code, and its random salt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_hash: Option<String>,
    #[serde(default)]
    pub code_salt: String,
    /// Wrong codes entered so far; at [`Pending::MAX_ATTEMPTS`] the code is dead.
    #[serde(default)]
    pub attempts: u8,
    /// The link or code is refused after this.
    pub expires_at: DateTime<Utc>,
    /// When the sign-up last asked for a link or code (the purge counts from here).
    pub requested_at: DateTime<Utc>,
}

impl Pending {
    /// Wrong SMS codes allowed before the code is locked.
    pub const MAX_ATTEMPTS: u8 = 3;
}

/// A subscriber to add; the store assigns the id and the unsubscribe token.
#[derive(Debug, Clone)]
pub struct NewSubscriber {
    pub contact: Contact,
    pub locale: Locale,
    pub components: Vec<ComponentName>,
    pub confirmed: bool,
}

/// Result of a bulk import.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ImportCounts {
    pub added: usize,
    pub duplicates: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_numbers_normalise_to_e164() {
        assert_eq!(
            Contact::phone("+358 40 123 4567").unwrap().address(),
            "+358401234567"
        );
        assert_eq!(
            Contact::phone("00358-40-1234567").unwrap().address(),
            "+358401234567"
        );
        assert_eq!(
            Contact::phone("+1 (212) 555-0100").unwrap().address(),
            "+12125550100"
        );
        for bad in [
            "0401234567",
            "+0401234567",
            "+35840abc",
            "+1234567",
            "+1234567890123456",
            "+1 555 0100",
            "+358 12",
            "+44 20 7946",
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
        for formula in [
            "=1+1@example.com",
            "+cmd@example.com",
            "-2+3@example.com",
            "=HYPERLINK(\"x\")@example.com",
        ] {
            let e = Contact::email(formula).unwrap_err().to_string();
            assert!(e.contains("which spreadsheets run as a formula"), "{e}");
        }
        let e = Contact::email("\t=1+1@example.com")
            .unwrap_err()
            .to_string();
        assert!(e.contains("starts with '='"), "{e}");
        let e = Contact::email("a\u{1b}b@example.com")
            .unwrap_err()
            .to_string();
        assert!(e.contains("U+001B (ESC) at character 2"), "{e}");
        // A `+` inside the local part stays valid, and phones start with `+`.
        assert!(Contact::email("ops+status@example.com").is_ok());
        assert!(Contact::phone("+358401234567").is_ok());
        assert!(matches!(
            Contact::parse_any("x@y.fi"),
            Ok(Contact::Email(_))
        ));
        assert!(matches!(
            Contact::parse_any("+358401234567"),
            Ok(Contact::Phone(_))
        ));
    }

    /// Found with the csv_import fuzz target: `İ` lower-cases to `i` + U+0307, one byte longer,
    /// so a 254-byte address was accepted and stored as 255 bytes, which the same check refuses.
    /// What is stored must itself be valid: the check applies to the lower-cased form.
    #[test]
    fn the_stored_lowercase_form_is_what_is_validated() {
        let local = format!("İ{}", "a".repeat(50));
        let domain = format!(
            "{}.{}.{}.{}.com",
            "b".repeat(60),
            "c".repeat(60),
            "d".repeat(60),
            "e".repeat(14)
        );
        let addr = format!("{local}@{domain}");
        assert_eq!(addr.len(), 254);
        assert!(Contact::email(&addr.to_lowercase()).is_err(), "255 bytes");
        assert!(
            Contact::email(&addr).is_err(),
            "accepted an address whose stored form is 255 bytes"
        );
        // Every accepted address re-validates to itself (`İnfo@…` is refused now: lettre
        // refuses its stored form, so no email could have been sent to it).
        for a in ["Ops@Example.COM", "İnfo@example.com", &addr[2..]] {
            if let Ok(c) = Contact::email(a) {
                assert_eq!(Contact::email(c.address()).ok(), Some(c), "{a}");
            }
        }
        assert!(Contact::email(&addr[2..]).is_ok());
    }
}
