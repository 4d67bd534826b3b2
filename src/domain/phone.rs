//! Phone numbers: one type, one rule. A [`PhoneNumber`] is an E.164 number (ITU-T E.164: `+`, a
//! country code that does not start with 0, at most 15 digits in all) that is also valid in its
//! country's numbering plan (libphonenumber's metadata: right length, a range in use). Every place
//! that takes a phone number — subscribers, users, the sign-up page, inbound SMS, the API —
//! goes through [`PhoneNumber::parse`], so the same person cannot be known under two spellings.
//!
//! The shape rule is E.164's own: `+[1-9][0-9]{1,14}`. E.164 sets no minimum beyond a country
//! code and one subscriber digit; the real minimum is per country, and the numbering-plan check
//! enforces it (`+1234567` has E.164's shape but is no number in the North American plan).
//! [`PhoneNumber::has_e164_shape`] is the shape rule alone, for checks that must not depend on
//! the numbering-plan metadata (a stored number, a provider's answer).

use super::DomainError;
use serde::{Deserialize, Serialize};
use std::fmt;

/// An E.164 phone number valid in its country's numbering plan, stored as `+` and digits.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PhoneNumber(String);

impl PhoneNumber {
    /// Validates and normalises a phone number to E.164. Spaces, dashes, dots and parentheses are
    /// dropped; a leading `00` becomes `+`. A number without a country code is refused, because
    /// guessing the country is how SMS ends up abroad.
    pub fn parse(s: &str) -> Result<Self, DomainError> {
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
        let e164 = format!("+{digits}");
        if !Self::has_e164_shape(&e164) {
            return Err(DomainError::invalid(
                "phone",
                format!("\"{t}\" is not an E.164 number (+, a country code that does not start with 0, at most 15 digits in all); for example +358401234567"),
            ));
        }
        // The country's own numbering plan (libphonenumber's metadata): right length, a range
        // in use. `+1 555 0100` has E.164's shape but is no number anywhere.
        let valid = phonenumber::parse(None, &e164)
            .map(|n| phonenumber::is_valid(&n))
            .unwrap_or(false);
        if !valid {
            return Err(DomainError::invalid(
                "phone",
                format!("\"{t}\" is not a valid number in the numbering plan of its country code (wrong length or an unused range); check the digits, e.g. +358401234567 or +12025550123"),
            ));
        }
        Ok(PhoneNumber(e164))
    }

    /// E.164's shape alone: `+`, then 2 to 15 digits, the first not zero. No normalisation.
    pub fn has_e164_shape(s: &str) -> bool {
        let Some(digits) = s.strip_prefix('+') else {
            return false;
        };
        (2..=15).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0')
    }

    /// A number read back from crier's own storage, where only [`PhoneNumber::parse`] wrote it.
    /// The shape is checked (a corrupt record is an error); the numbering plan is not, so a
    /// stored number stays readable after libphonenumber's metadata changes.
    pub fn from_stored(s: String) -> Result<Self, DomainError> {
        if Self::has_e164_shape(&s) {
            Ok(PhoneNumber(s))
        } else {
            Err(DomainError::invalid(
                "phone",
                format!("\"{s}\" is not an E.164 number"),
            ))
        }
    }

    /// `+` and digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for PhoneNumber {
    type Error = DomainError;
    fn try_from(s: String) -> Result<Self, DomainError> {
        PhoneNumber::from_stored(s)
    }
}

impl From<PhoneNumber> for String {
    fn from(p: PhoneNumber) -> String {
        p.0
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl utoipa::PartialSchema for PhoneNumber {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        String::schema()
    }
}

impl utoipa::ToSchema for PhoneNumber {}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_shape_rule_is_e164s_own() {
        for good in ["+12", "+358401234567", "+123456789012345"] {
            assert!(PhoneNumber::has_e164_shape(good), "{good}");
        }
        for bad in [
            "+1",
            "+0123",
            "+1234567890123456",
            "358401234567",
            "+35840 1234567",
            "+35840abc",
            "",
        ] {
            assert!(!PhoneNumber::has_e164_shape(bad), "{bad}");
        }
    }

    /// E.164 sets no minimum of 8 digits: Niue's numbers are 7 digits with the country code
    /// (`+683 4002`, a landline; libphonenumber knows the plan). The old rule (8-15 digits)
    /// refused a real, dialable number.
    #[test]
    fn a_short_real_number_is_accepted() {
        assert_eq!(
            PhoneNumber::parse("+683 4002").unwrap().as_str(),
            "+6834002"
        );
    }

    #[test]
    fn stored_numbers_are_shape_checked_and_round_trip_through_serde() {
        let p = PhoneNumber::parse("+358 40 123 4567").unwrap();
        let j = serde_json::to_string(&p).unwrap();
        assert_eq!(j, "\"+358401234567\"");
        assert_eq!(serde_json::from_str::<PhoneNumber>(&j).unwrap(), p);
        assert!(serde_json::from_str::<PhoneNumber>("\"0401234567\"").is_err());
        assert!(PhoneNumber::from_stored("+0401".into()).is_err());
    }

    proptest! {
        /// Whatever `parse` accepts has E.164's shape and parses again to itself.
        #[test]
        fn parsed_numbers_are_e164_and_stable(s in "[+0]{0,2}[0-9 ().-]{0,20}") {
            if let Ok(p) = PhoneNumber::parse(&s) {
                prop_assert!(PhoneNumber::has_e164_shape(p.as_str()));
                prop_assert_eq!(PhoneNumber::parse(p.as_str()).unwrap(), p);
            }
        }
    }
}
