//! Password hashing (argon2id) and personal token secrets.
//!
//! Passwords are hashed with argon2id at OWASP's recommended parameters (19 MiB of memory,
//! 2 passes, 1 lane) with a 16-byte random salt, and stored as a PHC string
//! (`$argon2id$v=19$m=19456,t=2,p=1$…`), which carries its parameters: raising them later
//! leaves old hashes verifiable. A personal token is `crier_` followed by 64 hex digits
//! (256 random bits); only its SHA-256 is stored.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use sha2::{Digest, Sha256};
use std::sync::OnceLock;

/// OWASP Password Storage Cheat Sheet, argon2id: m = 19456 KiB, t = 2, p = 1.
pub const ARGON2_M_KIB: u32 = 19_456;
pub const ARGON2_T: u32 = 2;
pub const ARGON2_P: u32 = 1;

/// What every personal token starts with (so secret scanners and people recognise one).
pub const TOKEN_PREFIX: &str = "crier_";

/// Why a credential could not be made.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("the operating system gave no randomness: {0}")]
    Random(String),
    #[error("cannot hash the password: {0}")]
    Hash(String),
}

fn argon2() -> Result<Argon2<'static>, CredentialError> {
    let params = Params::new(ARGON2_M_KIB, ARGON2_T, ARGON2_P, None)
        .map_err(|e| CredentialError::Hash(e.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

fn random(n: usize) -> Result<Vec<u8>, CredentialError> {
    let mut buf = vec![0u8; n];
    getrandom::fill(&mut buf).map_err(|e| CredentialError::Random(e.to_string()))?;
    Ok(buf)
}

/// Hashes a password into a PHC string. Slow on purpose (tens of milliseconds): call it off
/// the async workers (`spawn_blocking`).
pub fn hash_password(password: &str) -> Result<String, CredentialError> {
    let salt =
        SaltString::encode_b64(&random(16)?).map_err(|e| CredentialError::Hash(e.to_string()))?;
    argon2()?
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| CredentialError::Hash(e.to_string()))
}

/// Whether `password` matches the PHC string `phc` (false for a malformed hash).
pub fn verify_password(password: &str, phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    // The parameters come from the PHC string; the default instance only supplies the code.
    Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
}

/// A hash of a password nobody knows, computed once: checked against for unknown and disabled
/// users, so that their answer takes as long as a wrong password's.
pub fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let pw = hex::encode(random(16).unwrap_or_else(|_| vec![0x5a; 16]));
        // With fixed, valid parameters hashing cannot fail; a constant PHC string of the same
        // cost would serve as well should it ever.
        hash_password(&pw).unwrap_or_else(|_| {
            "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$bm90aGluZyB0byBzZWUgaGVyZSBhdCBhbGwhISE".into()
        })
    })
}

/// A new random password for a new user: 20 characters from 54 unambiguous letters and
/// digits (about 115 bits).
pub fn random_password() -> Result<String, CredentialError> {
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut out = String::with_capacity(20);
    while out.len() < 20 {
        for b in random(32)? {
            // Rejection sampling keeps every character equally likely.
            let limit = (256 / ALPHABET.len()) * ALPHABET.len();
            if (b as usize) < limit && out.len() < 20 {
                out.push(ALPHABET[b as usize % ALPHABET.len()] as char);
            }
        }
    }
    Ok(out)
}

/// A new personal token secret and the SHA-256 it is stored under.
pub fn new_token() -> Result<(String, [u8; 32]), CredentialError> {
    let secret = format!("{TOKEN_PREFIX}{}", hex::encode(random(32)?));
    let hash = token_hash(&secret);
    Ok((secret, hash))
}

/// The SHA-256 a presented token is looked up by.
pub fn token_hash(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_verifies_against_its_own_hash_only() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify_password("correct horse battery", &h));
        assert!(!verify_password("correct horse batterY", &h));
        assert!(!verify_password("correct horse battery", "not a hash"));
        assert!(!h.contains("correct"));
        assert!(!verify_password("x", dummy_hash()));
    }

    #[test]
    fn tokens_and_passwords_are_random_and_well_formed() {
        let (a, ha) = new_token().unwrap();
        let (b, _) = new_token().unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with(TOKEN_PREFIX) && a.len() == TOKEN_PREFIX.len() + 64);
        assert_eq!(token_hash(&a), ha);
        let p = random_password().unwrap();
        assert_eq!(p.chars().count(), 20);
        assert_ne!(p, random_password().unwrap());
    }
}
