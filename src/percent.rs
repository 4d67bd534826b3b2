//! Percent-encoding (RFC 3986) and `application/x-www-form-urlencoded` decoding, on the
//! `percent-encoding` crate, in one place for the CLI's query strings, the console's links, the
//! TOTP provisioning URI and the sign-up page's forms.

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// Everything but RFC 3986's unreserved characters (`A-Z a-z 0-9 - . _ ~`) is escaped.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// As [`UNRESERVED`], and `/` stays: a path of several segments.
const PATH: &AsciiSet = &UNRESERVED.remove(b'/');

/// Percent-encodes a query value or a path segment: only unreserved characters stay.
pub fn encode(s: &str) -> String {
    utf8_percent_encode(s, UNRESERVED).to_string()
}

/// Percent-encodes a path, keeping its `/` separators.
pub fn encode_path(s: &str) -> String {
    utf8_percent_encode(s, PATH).to_string()
}

/// Why a form body was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormError {
    /// A `%` not followed by two hex digits.
    #[error("bad percent escape")]
    BadEscape,
    /// The decoded bytes are not UTF-8.
    #[error("not UTF-8")]
    NotUtf8,
}

/// Decodes an `application/x-www-form-urlencoded` body into ordered pairs; repeated names stay
/// separate. `+` is a space and `%XX` a byte; a malformed escape or a result that is not UTF-8
/// refuses the whole form (a lenient decoder would pass `%4` through as text).
pub fn decode_form(form: &str) -> Result<Vec<(String, String)>, FormError> {
    form.split('&')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            Ok((decode_component(k)?, decode_component(v)?))
        })
        .collect()
}

fn decode_component(s: &str) -> Result<String, FormError> {
    let b = s.as_bytes();
    let malformed = b.iter().enumerate().any(|(i, &c)| {
        c == b'%'
            && !b
                .get(i + 1..i + 3)
                .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))
    });
    if malformed {
        return Err(FormError::BadEscape);
    }
    percent_decode_str(&s.replace('+', " "))
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| FormError::NotUtf8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn unreserved_characters_stay_and_the_rest_is_escaped_in_upper_case() {
        assert_eq!(encode("Acme Status"), "Acme%20Status");
        assert_eq!(encode("a/b+c~d.e_f-g"), "a%2Fb%2Bc~d.e_f-g");
        assert_eq!(encode("ä€"), "%C3%A4%E2%82%AC");
        assert_eq!(encode_path("api/v1 x/ä"), "api/v1%20x/%C3%A4");
    }

    #[test]
    fn forms_decode_strictly() {
        assert_eq!(
            decode_form("a=1+2&b=%E2%82%AC&c&=x&&d=%2B").unwrap(),
            vec![
                ("a".to_string(), "1 2".to_string()),
                ("b".to_string(), "€".to_string()),
                ("c".to_string(), String::new()),
                (String::new(), "x".to_string()),
                ("d".to_string(), "+".to_string()),
            ]
        );
        assert_eq!(decode_form("a=%FF"), Err(FormError::NotUtf8));
        assert_eq!(decode_form("a=%4"), Err(FormError::BadEscape));
        assert_eq!(decode_form("a=%+1"), Err(FormError::BadEscape));
        assert_eq!(decode_form("a=1%"), Err(FormError::BadEscape));
        assert_eq!(decode_form(""), Ok(vec![]));
    }

    proptest! {
        /// Encoding then decoding gives back any text, and the encoding is pure ASCII with no
        /// form separator in it.
        #[test]
        fn encode_round_trips_through_the_form_decoder(k in ".{0,12}", v in ".{0,24}") {
            let e = format!("{}={}", encode(&k), encode(&v));
            prop_assert!(e.is_ascii());
            prop_assert_eq!(e.matches('&').count(), 0);
            let pairs = decode_form(&e).unwrap();
            if k.is_empty() && v.is_empty() {
                prop_assert_eq!(pairs, vec![(String::new(), String::new())]);
            } else {
                prop_assert_eq!(pairs, vec![(k, v)]);
            }
        }
    }
}
