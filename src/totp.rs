//! TOTP second factors (RFC 6238 over RFC 4226 HOTP): HMAC-SHA-1, 6 digits, 30-second steps,
//! one step of clock drift either way; base32 secrets (RFC 4648, no padding) and the
//! `otpauth://totp/…` URI authenticator apps read from a QR code; and recovery codes.
//!
//! A secret is 20 random bytes (160 bits, RFC 4226's recommendation). Verification returns the
//! time step the code matched, so the caller can refuse that step and every earlier one the next
//! time (a code is good once). Recovery codes are 16 base32 characters (80 random bits) shown
//! as `abcd-efgh-ijkl-mnop`; only their SHA-256 (keyed with the user name) is stored.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// Seconds per time step.
pub const STEP_SECS: i64 = 30;
/// Digits of a code.
pub const DIGITS: u32 = 6;
/// Steps of drift accepted either side of the current one.
pub const DRIFT_STEPS: i64 = 1;
/// Recovery codes made at enrolment.
pub const RECOVERY_CODES: usize = 10;
/// Bytes of a secret.
pub const SECRET_BYTES: usize = 20;

const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// Why a secret or code could not be made.
#[derive(Debug, thiserror::Error)]
pub enum TotpError {
    #[error("the operating system gave no randomness: {0}")]
    Random(String),
}

/// RFC 4648 base32 without padding.
pub fn base32_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let (mut buf, mut bits) = (0u32, 0u32);
    for &b in bytes {
        buf = (buf << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(BASE32[((buf >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(BASE32[((buf << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// Decodes base32 in any case, ignoring spaces, dashes and padding; `None` if malformed.
pub fn base32_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 5 / 8);
    let (mut buf, mut bits) = (0u32, 0u32);
    for c in s.chars() {
        if matches!(c, ' ' | '-' | '=') {
            continue;
        }
        let c = c.to_ascii_uppercase() as u8;
        let v = BASE32.iter().position(|&x| x == c)? as u32;
        buf = ((buf << 5) | v) & 0xffff;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
        }
    }
    Some(out)
}

/// The HOTP value of `secret` at `counter` (RFC 4226 §5.3), `DIGITS` digits.
pub fn hotp(secret: &[u8], counter: u64) -> u32 {
    // HMAC accepts a key of any length, so this cannot fail.
    let Ok(mut mac) = Hmac::<sha1::Sha1>::new_from_slice(secret) else {
        return u32::MAX;
    };
    mac.update(&counter.to_be_bytes());
    let h = mac.finalize().into_bytes();
    let offset = (h[19] & 0x0f) as usize;
    let bin = (u32::from(h[offset] & 0x7f) << 24)
        | (u32::from(h[offset + 1]) << 16)
        | (u32::from(h[offset + 2]) << 8)
        | u32::from(h[offset + 3]);
    bin % 10u32.pow(DIGITS)
}

/// The time step of a Unix time.
pub fn step_at(unix_secs: i64) -> i64 {
    unix_secs.div_euclid(STEP_SECS)
}

/// The code for `secret` at a Unix time, zero-padded.
pub fn code_at(secret: &[u8], unix_secs: i64) -> String {
    format!(
        "{:0width$}",
        hotp(secret, step_at(unix_secs).max(0) as u64),
        width = DIGITS as usize
    )
}

/// Whether `code` looks like a TOTP code (six digits, spaces allowed) rather than a recovery
/// code; returns the digits.
pub fn as_code(code: &str) -> Option<String> {
    let digits: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    (digits.len() == DIGITS as usize && digits.chars().all(|c| c.is_ascii_digit()))
        .then_some(digits)
}

/// The step `code` matches at `unix_secs` (within the drift), if any, and only if it is later
/// than `after` (the last step used): a code is good once.
pub fn verify(secret: &[u8], code: &str, unix_secs: i64, after: Option<i64>) -> Option<i64> {
    let code = as_code(code)?;
    let now = step_at(unix_secs);
    let mut found = None;
    // Every candidate is computed and compared, so the time taken does not say which matched.
    for step in now - DRIFT_STEPS..=now + DRIFT_STEPS {
        if step < 0 {
            continue;
        }
        let want = format!(
            "{:0width$}",
            hotp(secret, step as u64),
            width = DIGITS as usize
        );
        if crate::token::constant_time_eq(want.as_bytes(), code.as_bytes())
            && after.is_none_or(|a| step > a)
            && found.is_none()
        {
            found = Some(step);
        }
    }
    found
}

fn random(n: usize) -> Result<Vec<u8>, TotpError> {
    let mut buf = vec![0u8; n];
    getrandom::fill(&mut buf).map_err(|e| TotpError::Random(e.to_string()))?;
    Ok(buf)
}

/// A new secret.
pub fn new_secret() -> Result<Vec<u8>, TotpError> {
    random(SECRET_BYTES)
}

/// The `otpauth://` URI of a secret for `account` at `issuer` (Google Authenticator's key URI
/// format: SHA1, 6 digits, 30 s are stated explicitly).
pub fn uri(issuer: &str, account: &str, secret: &[u8]) -> String {
    let issuer = crate::percent::encode(issuer);
    format!(
        "otpauth://totp/{issuer}:{}?secret={}&issuer={issuer}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}",
        crate::percent::encode(account),
        base32_encode(secret)
    )
}

/// New recovery codes, formatted for people (`abcd-efgh-ijkl-mnop`).
pub fn new_recovery_codes() -> Result<Vec<String>, TotpError> {
    (0..RECOVERY_CODES)
        .map(|_| {
            let raw = base32_encode(&random(10)?).to_ascii_lowercase();
            let parts: Vec<&str> = (0..4).map(|i| &raw[i * 4..i * 4 + 4]).collect();
            Ok(parts.join("-"))
        })
        .collect()
}

/// The stored form of a recovery code: SHA-256 over the user and the code without dashes,
/// spaces or case, so `ABCD EFGH…` works as well as `abcd-efgh-…`.
pub fn recovery_hash(user: &str, code: &str) -> [u8; 32] {
    let norm: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    let mut h = Sha256::new();
    h.update(b"crier recovery code v1\0");
    h.update(user.as_bytes());
    h.update(b"\0");
    h.update(norm.as_bytes());
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B, SHA-1 (the 20-byte ASCII secret "12345678901234567890"), last six
    /// digits of its eight-digit values.
    #[test]
    fn rfc_6238_test_vectors() {
        let secret = b"12345678901234567890";
        for (t, code8) in [
            (59, "94287082"),
            (1111111109, "07081804"),
            (1111111111, "14050471"),
            (1234567890, "89005924"),
            (2000000000, "69279037"),
            (20000000000, "65353130"),
        ] {
            assert_eq!(code_at(secret, t), &code8[2..], "t = {t}");
        }
        // RFC 4226 Appendix D, HOTP counters 0 and 9.
        assert_eq!(hotp(secret, 0), 755224);
        assert_eq!(hotp(secret, 9), 520489);
    }

    #[test]
    fn base32_round_trips_and_matches_rfc_4648() {
        assert_eq!(base32_encode(b"foobar"), "MZXW6YTBOI");
        assert_eq!(base32_encode(b"f"), "MY");
        assert_eq!(base32_decode("MZXW6YTBOI").unwrap(), b"foobar");
        assert_eq!(base32_decode("mzxw 6ytb-oi======").unwrap(), b"foobar");
        assert!(base32_decode("MZ1").is_none());
        let s = new_secret().unwrap();
        assert_eq!(base32_decode(&base32_encode(&s)).unwrap(), s);
    }

    #[test]
    fn a_code_is_good_within_one_step_and_once() {
        let secret = b"12345678901234567890";
        let t = 1_111_111_111;
        let now = step_at(t);
        let code = code_at(secret, t);
        assert_eq!(verify(secret, &code, t, None), Some(now));
        assert_eq!(
            verify(secret, &code, t + 30, None),
            Some(now),
            "one step late"
        );
        assert_eq!(
            verify(secret, &code, t - 30, None),
            Some(now),
            "one step early"
        );
        assert_eq!(verify(secret, &code, t + 60, None), None, "two steps late");
        assert_eq!(verify(secret, &code, t, Some(now)), None, "used");
        assert_eq!(verify(secret, "000000x", t, None), None);
        assert_eq!(verify(secret, &format!(" {} ", &code), t, None), Some(now));
    }

    #[test]
    fn uris_and_recovery_codes_are_well_formed() {
        let u = uri("Acme Status", "maria.k", b"foobar");
        assert_eq!(
            u,
            "otpauth://totp/Acme%20Status:maria.k?secret=MZXW6YTBOI&issuer=Acme%20Status&algorithm=SHA1&digits=6&period=30"
        );
        let codes = new_recovery_codes().unwrap();
        assert_eq!(codes.len(), RECOVERY_CODES);
        assert!(codes
            .iter()
            .all(|c| c.len() == 19 && c.matches('-').count() == 3));
        assert_eq!(
            recovery_hash("maria", &codes[0]),
            recovery_hash("maria", &codes[0].to_uppercase().replace('-', " "))
        );
        assert_ne!(
            recovery_hash("maria", &codes[0]),
            recovery_hash("mario", &codes[0])
        );
    }
}
