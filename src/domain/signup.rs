//! Self-service sign-ups as rules: what a sign-up, a confirmation link, an SMS code and STOP/START
//! do to a [`Subscriber`]. They are pure functions of the record so that every store backend
//! (sled, PostgreSQL) applies them under its own lock or transaction and decides the same; a
//! backend only finds the record, calls the rule and writes what it returns.
//!
//! A pending confirmation keeps only SHA-256 hashes ([`Pending`]); the link's token is
//! `<subscriber id>.<secret>`, so it is found without an index.

use super::{ComponentName, Locale, Pending, Subscriber};
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use ulid::Ulid;

/// What a sign-up did. The page answers the same whatever it was (no address is revealed as
/// subscribed); the caller sends a confirmation for `Created` and `Renewed` only.
#[derive(Debug, Clone, PartialEq)]
pub enum SignUp {
    /// A new, unconfirmed subscriber.
    Created(Subscriber),
    /// The address had signed up before without confirming: new link or code, new choices.
    Renewed(Subscriber),
    /// The address is already a confirmed subscriber: nothing changed, nothing is sent.
    AlreadyConfirmed,
}

/// The secret a sign-up is confirmed with, in clear (it is sent, then only its hash is kept).
#[derive(Debug, Clone)]
pub enum Secret {
    /// The secret part of the email link.
    Link(String),
    /// The six-digit SMS code.
    Code(String),
}

/// What checking an SMS code found.
#[derive(Debug, Clone, PartialEq)]
pub enum CodeCheck {
    Confirmed(Box<Subscriber>),
    /// Wrong; this many attempts are left.
    Wrong(u8),
    /// No open code for that number: never asked, expired, already used or locked after three
    /// wrong attempts.
    Dead,
}

/// SHA-256 in hex.
pub fn hash_hex(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The pending confirmation for `secret`, valid for `valid` from `now`. `salt` (random, from the
/// caller) salts an SMS code's hash; a link's secret is long enough not to need one.
pub fn pending_for(
    secret: &Secret,
    salt: String,
    now: DateTime<Utc>,
    valid: chrono::Duration,
) -> Pending {
    match secret {
        Secret::Link(s) => Pending {
            token_hash: Some(hash_hex(&[s.as_bytes()])),
            code_hash: None,
            code_salt: String::new(),
            attempts: 0,
            expires_at: now + valid,
            requested_at: now,
        },
        Secret::Code(c) => Pending {
            token_hash: None,
            code_hash: Some(hash_hex(&[salt.as_bytes(), c.as_bytes()])),
            code_salt: salt,
            attempts: 0,
            expires_at: now + valid,
            requested_at: now,
        },
    }
}

/// A sign-up for an address that already has a subscriber `s`: a confirmed one is left alone
/// (`AlreadyConfirmed`, write nothing); an unconfirmed one takes the new choices and the new
/// pending confirmation (`Renewed`, write `s`).
pub fn renew(
    s: &mut Subscriber,
    locale: &Locale,
    components: &[ComponentName],
    pending: &Pending,
) -> SignUp {
    if s.confirmed {
        return SignUp::AlreadyConfirmed;
    }
    s.locale = locale.clone();
    s.components = components.to_vec();
    s.pending = Some(pending.clone());
    SignUp::Renewed(s.clone())
}

/// Splits a confirmation link's token (`<id>.<secret>`) into the subscriber's id and the hash of
/// the secret; `None` for anything else.
pub fn link_token(token: &str) -> Option<(Ulid, String)> {
    let (id, secret) = token.split_once('.')?;
    let id = Ulid::from_string(id).ok()?;
    Some((id, hash_hex(&[secret.as_bytes()])))
}

/// Confirms `s` with the hash of a link's secret (from [`link_token`]). Single use: the link's
/// hash is gone afterwards. `None` (write nothing) for a used, expired or forged link.
pub fn confirm_by_link(
    s: &mut Subscriber,
    presented: &str,
    now: DateTime<Utc>,
) -> Option<Subscriber> {
    let p = s.pending.as_ref()?;
    let stored = p.token_hash.as_ref()?;
    if s.confirmed
        || p.expires_at <= now
        || !crate::token::constant_time_eq(stored.as_bytes(), presented.as_bytes())
    {
        return None;
    }
    s.confirmed = true;
    s.pending = None;
    Some(s.clone())
}

/// Checks an SMS code against `s`: the right one confirms, a wrong one counts an attempt (three
/// lock the code). `None` (write nothing) when there is no open code. Pass the result through
/// [`code_outcome`] for the answer.
pub fn confirm_by_code(s: &mut Subscriber, code: &str, now: DateTime<Utc>) -> Option<CodeCheck> {
    let p = s.pending.as_mut()?;
    let stored = p.code_hash.clone()?;
    if s.confirmed || p.expires_at <= now || p.attempts >= Pending::MAX_ATTEMPTS {
        return None;
    }
    let presented = hash_hex(&[p.code_salt.as_bytes(), code.trim().as_bytes()]);
    if crate::token::constant_time_eq(stored.as_bytes(), presented.as_bytes()) {
        s.confirmed = true;
        s.pending = None;
        return Some(CodeCheck::Confirmed(Box::new(s.clone())));
    }
    p.attempts += 1;
    Some(CodeCheck::Wrong(Pending::MAX_ATTEMPTS - p.attempts))
}

/// The answer to a code check: no open code, or the last attempt used up, is `Dead`.
pub fn code_outcome(check: Option<CodeCheck>) -> CodeCheck {
    match check {
        Some(CodeCheck::Wrong(0)) | None => CodeCheck::Dead,
        Some(c) => c,
    }
}

/// STOP (`out`) or START (`!out`) for `s`. START resumes only a confirmed subscriber (it is no
/// way around the double opt-in). `Some` (write it) when it changed.
pub fn set_opted_out(s: &mut Subscriber, out: bool) -> Option<Subscriber> {
    if s.opted_out == out || (!out && !s.confirmed) {
        return None;
    }
    s.opted_out = out;
    Some(s.clone())
}

/// Whether `s` is a self-service sign-up left unconfirmed since before `cutoff` (purged).
/// Staff-added or imported subscribers have no pending confirmation and are never purged.
pub fn unconfirmed_since(s: &Subscriber, cutoff: DateTime<Utc>) -> bool {
    !s.confirmed && s.pending.as_ref().is_some_and(|p| p.requested_at < cutoff)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Contact;

    fn unconfirmed(secret: &Secret, now: DateTime<Utc>) -> Subscriber {
        Subscriber {
            id: Ulid::new(),
            contact: Contact::phone("+358401234567").unwrap(),
            locale: Locale::english(),
            components: vec![],
            confirmed: false,
            unsubscribe_token: "t".into(),
            created_at: now,
            opted_out: false,
            pending: Some(pending_for(
                secret,
                "salt".into(),
                now,
                chrono::Duration::hours(1),
            )),
        }
    }

    #[test]
    fn a_link_confirms_once_and_only_with_its_secret() {
        let now = Utc::now();
        let mut s = unconfirmed(&Secret::Link("abc".into()), now);
        let (id, good) = link_token(&format!("{}.abc", s.id)).unwrap();
        assert_eq!(id, s.id);
        let (_, bad) = link_token(&format!("{}.abd", s.id)).unwrap();
        assert_eq!(link_token("no-dot"), None);
        assert_eq!(confirm_by_link(&mut s, &bad, now), None);
        let late = now + chrono::Duration::hours(1);
        assert_eq!(confirm_by_link(&mut s, &good, late), None, "expired");
        assert!(confirm_by_link(&mut s, &good, now).is_some_and(|c| c.confirmed));
        assert_eq!(confirm_by_link(&mut s, &good, now), None, "single use");
    }

    #[test]
    fn three_wrong_codes_are_dead_and_start_needs_a_confirmed_subscriber() {
        let now = Utc::now();
        let mut s = unconfirmed(&Secret::Code("123456".into()), now);
        assert!(
            set_opted_out(&mut s, true).is_some_and(|c| c.opted_out),
            "STOP"
        );
        assert_eq!(
            set_opted_out(&mut s, false),
            None,
            "START cannot skip the opt-in"
        );
        let check = |s: &mut Subscriber, c: &str| code_outcome(confirm_by_code(s, c, now));
        assert_eq!(check(&mut s, "000000"), CodeCheck::Wrong(2));
        assert_eq!(check(&mut s, "000001"), CodeCheck::Wrong(1));
        assert_eq!(check(&mut s, "000002"), CodeCheck::Dead);
        assert_eq!(check(&mut s, " 123456 "), CodeCheck::Dead, "locked");
        let fresh = pending_for(
            &Secret::Code("654321".into()),
            "x".into(),
            now,
            chrono::Duration::hours(1),
        );
        assert!(matches!(
            renew(&mut s, &Locale::english(), &[], &fresh),
            SignUp::Renewed(_)
        ));
        assert!(matches!(check(&mut s, " 654321 "), CodeCheck::Confirmed(_)));
        assert_eq!(
            renew(&mut s, &Locale::english(), &[], &fresh),
            SignUp::AlreadyConfirmed
        );
        assert!(
            !unconfirmed_since(&s, now + chrono::Duration::days(30)),
            "confirmed: kept"
        );
    }
}
