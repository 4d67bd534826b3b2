//! Self-service sign-ups: the double opt-in (a confirmation link by email, a six-digit code by
//! SMS), the subscriber's own manage page, SMS opt-out (STOP/START, Twilio error 21610) and the
//! purge of sign-ups never confirmed.
//!
//! Nothing here adds a tree: a pending confirmation lives on the subscriber record itself
//! ([`Pending`]), holding only SHA-256 hashes. The link's token is `<subscriber id>.<secret>`, so
//! it is found without an index; the SMS code is found through the phone number (the `contacts`
//! tree). An unconfirmed subscriber is skipped by the fan-out (`Subscriber::receives`).

use super::{abort, decode, encode, SledStore, StoreError, Trees};
use crate::domain::{ComponentName, Contact, Locale, Pending, Subscriber};
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use sled::transaction::Transactional;
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

fn random(n: usize) -> Result<String, StoreError> {
    crate::token::random_hex(n).map_err(|e| StoreError::Corrupt(format!("no randomness: {e}")))
}

fn pending_for(
    secret: &Secret,
    now: DateTime<Utc>,
    valid: chrono::Duration,
) -> Result<Pending, StoreError> {
    Ok(match secret {
        Secret::Link(s) => Pending {
            token_hash: Some(hash_hex(&[s.as_bytes()])),
            code_hash: None,
            code_salt: String::new(),
            attempts: 0,
            expires_at: now + valid,
            requested_at: now,
        },
        Secret::Code(c) => {
            let salt = random(16)?;
            Pending {
                token_hash: None,
                code_hash: Some(hash_hex(&[salt.as_bytes(), c.as_bytes()])),
                code_salt: salt,
                attempts: 0,
                expires_at: now + valid,
                requested_at: now,
            }
        }
    })
}

impl SledStore {
    /// Records a self-service sign-up awaiting confirmation with `secret`, valid for `valid`.
    pub async fn sign_up(
        &self,
        contact: Contact,
        locale: Locale,
        components: Vec<ComponentName>,
        secret: &Secret,
        valid: chrono::Duration,
        now: DateTime<Utc>,
    ) -> Result<SignUp, StoreError> {
        let t = self.t()?;
        Self::components_exist(&t, &components)?;
        let pending = pending_for(secret, now, valid)?;
        let mut fresh = Self::new_subscriber(
            crate::domain::NewSubscriber {
                contact,
                locale,
                components,
                confirmed: false,
            },
            now,
        )?;
        fresh.pending = Some(pending.clone());
        let fresh_bytes = encode(&fresh)?;
        let w = self.writing_async().await;
        let outcome = (&t.subscribers, &t.contacts, &t.unsubscribe).transaction(
            |(subs, contacts, tokens)| {
                if let Some(id) = contacts.get(fresh.contact.address())? {
                    let Some(raw) = subs.get(&id)? else {
                        return abort(StoreError::Corrupt("contact without subscriber".into()));
                    };
                    let mut s: Subscriber = decode(&raw).or_else(abort)?;
                    if s.confirmed {
                        return Ok(SignUp::AlreadyConfirmed);
                    }
                    s.locale = fresh.locale.clone();
                    s.components = fresh.components.clone();
                    s.pending = Some(pending.clone());
                    subs.insert(&id, encode(&s).or_else(abort)?)?;
                    return Ok(SignUp::Renewed(s));
                }
                subs.insert(&fresh.id.to_bytes(), fresh_bytes.as_slice())?;
                contacts.insert(fresh.contact.address(), &fresh.id.to_bytes())?;
                tokens.insert(fresh.unsubscribe_token.as_str(), &fresh.id.to_bytes())?;
                Ok(SignUp::Created(fresh.clone()))
            },
        )?;
        drop(w);
        if outcome != SignUp::AlreadyConfirmed {
            t.durable().await?;
        }
        Ok(outcome)
    }

    /// Changes one subscriber in a transaction; `f` returns `None` to write nothing.
    async fn update_subscriber<R: Clone>(
        &self,
        t: &Trees,
        id: Ulid,
        f: impl Fn(&mut Subscriber) -> Option<R>,
    ) -> Result<Option<R>, StoreError> {
        let w = self.writing_async().await;
        let out = t.subscribers.transaction(|subs| {
            let Some(raw) = subs.get(id.to_bytes())? else {
                return Ok(None);
            };
            let mut s: Subscriber = decode(&raw).or_else(abort)?;
            match f(&mut s) {
                Some(r) => {
                    subs.insert(&id.to_bytes(), encode(&s).or_else(abort)?)?;
                    Ok(Some(r))
                }
                None => Ok(None),
            }
        })?;
        drop(w);
        if out.is_some() {
            t.durable().await?;
        }
        Ok(out)
    }

    /// Confirms the sign-up whose email link carries `token` (`<id>.<secret>`). Single use: the
    /// link's hash is gone afterwards. A used, expired or forged token confirms nothing and
    /// writes nothing (`None`).
    pub async fn confirm_link(
        &self,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Subscriber>, StoreError> {
        let t = self.t()?;
        let Some((id, secret)) = token.split_once('.') else {
            return Ok(None);
        };
        let Ok(id) = Ulid::from_string(id) else {
            return Ok(None);
        };
        let presented = hash_hex(&[secret.as_bytes()]);
        self.update_subscriber(&t, id, |s| {
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
        })
        .await
    }

    /// Checks an SMS code for `phone`. Three wrong codes lock it (a new sign-up sends another).
    pub async fn confirm_code(
        &self,
        phone: &Contact,
        code: &str,
        now: DateTime<Utc>,
    ) -> Result<CodeCheck, StoreError> {
        let t = self.t()?;
        let Some(raw) = t.contacts.get(phone.address())? else {
            return Ok(CodeCheck::Dead);
        };
        let id = Ulid::from_bytes(
            <[u8; 16]>::try_from(raw.as_ref())
                .map_err(|_| StoreError::Corrupt("contact index entry".into()))?,
        );
        let code = code.trim();
        let out = self
            .update_subscriber(&t, id, |s| {
                let p = s.pending.as_mut()?;
                let stored = p.code_hash.clone()?;
                if s.confirmed || p.expires_at <= now || p.attempts >= Pending::MAX_ATTEMPTS {
                    return None;
                }
                let presented = hash_hex(&[p.code_salt.as_bytes(), code.as_bytes()]);
                if crate::token::constant_time_eq(stored.as_bytes(), presented.as_bytes()) {
                    s.confirmed = true;
                    s.pending = None;
                    return Some(CodeCheck::Confirmed(Box::new(s.clone())));
                }
                p.attempts += 1;
                Some(CodeCheck::Wrong(Pending::MAX_ATTEMPTS - p.attempts))
            })
            .await?;
        Ok(match out {
            Some(CodeCheck::Wrong(0)) => CodeCheck::Dead,
            Some(c) => c,
            None => CodeCheck::Dead,
        })
    }

    /// The subscriber holding a manage/unsubscribe token.
    pub fn subscriber_by_token(&self, token: &str) -> Result<Option<Subscriber>, StoreError> {
        let t = self.t()?;
        let Some(raw) = t.unsubscribe.get(token)? else {
            return Ok(None);
        };
        let Some(v) = t.subscribers.get(raw)? else {
            return Ok(None);
        };
        decode(&v).map(Some)
    }

    /// STOP (`true`) or START (`false`) for a phone number. START resumes only a confirmed
    /// subscriber (it is no way around the double opt-in). Returns the subscriber if it changed.
    pub async fn set_opted_out(
        &self,
        phone: &Contact,
        out: bool,
    ) -> Result<Option<Subscriber>, StoreError> {
        let t = self.t()?;
        let Some(raw) = t.contacts.get(phone.address())? else {
            return Ok(None);
        };
        let id = Ulid::from_bytes(
            <[u8; 16]>::try_from(raw.as_ref())
                .map_err(|_| StoreError::Corrupt("contact index entry".into()))?,
        );
        self.update_subscriber(&t, id, |s| {
            if s.opted_out == out || (!out && !s.confirmed) {
                return None;
            }
            s.opted_out = out;
            Some(s.clone())
        })
        .await
    }

    /// Marks a subscriber opted out by id (a send refused with Twilio error 21610).
    pub async fn opt_out_id(&self, id: Ulid) -> Result<bool, StoreError> {
        let t = self.t()?;
        Ok(self
            .update_subscriber(&t, id, |s| {
                if s.opted_out {
                    return None;
                }
                s.opted_out = true;
                Some(())
            })
            .await?
            .is_some())
    }

    /// Whether a subscriber exists and may be sent to (confirmed, not opted out).
    pub fn subscriber_receives(&self, id: Ulid) -> Result<bool, StoreError> {
        let t = self.t()?;
        match t.subscribers.get(id.to_bytes())? {
            Some(v) => Ok(decode::<Subscriber>(&v)?.receives()),
            None => Ok(false),
        }
    }

    /// Subscribers matching `keep`, in the order they were added, at most `limit`.
    pub fn subscribers_where(
        &self,
        limit: usize,
        keep: impl Fn(&Subscriber) -> bool,
    ) -> Result<Vec<Subscriber>, StoreError> {
        let t = self.t()?;
        let mut out = Vec::new();
        for v in t.subscribers.iter().values() {
            let s: Subscriber = decode(&v?)?;
            if keep(&s) {
                out.push(s);
                if out.len() >= limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// Removes self-service sign-ups left unconfirmed since before `cutoff`. Idempotent: a second
    /// run finds nothing. Staff-added or imported subscribers are never purged.
    pub async fn purge_unconfirmed(&self, cutoff: DateTime<Utc>) -> Result<usize, StoreError> {
        let stale = self.subscribers_where(usize::MAX, |s| {
            !s.confirmed && s.pending.as_ref().is_some_and(|p| p.requested_at < cutoff)
        })?;
        let mut removed = 0;
        for s in stale {
            match self.remove_subscriber(&s.id.to_string()).await {
                Ok(_) => removed += 1,
                // Removed meanwhile (confirmed and unsubscribed, or a concurrent purge).
                Err(StoreError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn open() -> (tempfile::TempDir, SledStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(&dir.path().join("db")).unwrap();
        (dir, store)
    }

    fn email(a: &str) -> Contact {
        Contact::email(a).unwrap()
    }

    #[tokio::test]
    async fn a_link_confirms_once_and_not_after_it_expires() {
        let (_d, store) = open().await;
        let now = Utc::now();
        let day = chrono::Duration::hours(24);
        let secret = Secret::Link("s3cret".into());
        let SignUp::Created(s) = store
            .sign_up(
                email("a@example.com"),
                Locale::english(),
                vec![],
                &secret,
                day,
                now,
            )
            .await
            .unwrap()
        else {
            panic!("not created")
        };
        assert!(!s.confirmed);
        let raw = serde_json::to_string(&store.subscribers(10).unwrap()).unwrap();
        assert!(!raw.contains("s3cret"), "the secret is stored only hashed");
        let token = format!("{}.s3cret", s.id);
        let forged = format!("{}.s3cres", s.id);
        let before = store.checksum().unwrap();
        assert_eq!(store.confirm_link(&forged, now).await.unwrap(), None);
        assert_eq!(store.confirm_link("nonsense", now).await.unwrap(), None);
        assert_eq!(store.confirm_link(&token, now + day).await.unwrap(), None);
        assert_eq!(store.checksum().unwrap(), before, "refusals write nothing");
        let c = store.confirm_link(&token, now).await.unwrap().unwrap();
        assert!(c.confirmed && c.pending.is_none());
        assert_eq!(
            store.confirm_link(&token, now).await.unwrap(),
            None,
            "single use"
        );
        // Signing up again once confirmed changes nothing.
        assert_eq!(
            store
                .sign_up(
                    email("a@example.com"),
                    Locale::english(),
                    vec![],
                    &secret,
                    day,
                    now
                )
                .await
                .unwrap(),
            SignUp::AlreadyConfirmed
        );
    }

    #[tokio::test]
    async fn three_wrong_codes_lock_the_code() {
        let (_d, store) = open().await;
        let now = Utc::now();
        let phone = Contact::phone("+358401234567").unwrap();
        let code = Secret::Code("123456".into());
        let h = chrono::Duration::hours(1);
        store
            .sign_up(phone.clone(), Locale::english(), vec![], &code, h, now)
            .await
            .unwrap();
        assert_eq!(
            store.confirm_code(&phone, "000000", now).await.unwrap(),
            CodeCheck::Wrong(2)
        );
        assert_eq!(
            store.confirm_code(&phone, "000001", now).await.unwrap(),
            CodeCheck::Wrong(1)
        );
        assert_eq!(
            store.confirm_code(&phone, "000002", now).await.unwrap(),
            CodeCheck::Dead
        );
        assert_eq!(
            store.confirm_code(&phone, "123456", now).await.unwrap(),
            CodeCheck::Dead,
            "locked: even the right code is refused"
        );
        // A new sign-up sends a new code, which works.
        let SignUp::Renewed(_) = store
            .sign_up(
                phone.clone(),
                Locale::english(),
                vec![],
                &Secret::Code("654321".into()),
                h,
                now,
            )
            .await
            .unwrap()
        else {
            panic!("not renewed")
        };
        assert!(matches!(
            store.confirm_code(&phone, "654321", now).await.unwrap(),
            CodeCheck::Confirmed(_)
        ));
        // STOP and START.
        assert!(store.set_opted_out(&phone, true).await.unwrap().is_some());
        let id = store.subscribers(1).unwrap()[0].id;
        assert!(!store.subscriber_receives(id).unwrap());
        assert!(store.set_opted_out(&phone, false).await.unwrap().is_some());
        assert!(store.subscriber_receives(id).unwrap());
    }

    #[tokio::test]
    async fn unconfirmed_sign_ups_are_purged_once_and_only_them() {
        let (_d, store) = open().await;
        let now = Utc::now();
        let day = chrono::Duration::hours(24);
        let link = Secret::Link("x".into());
        store
            .sign_up(
                email("old@example.com"),
                Locale::english(),
                vec![],
                &link,
                day,
                now,
            )
            .await
            .unwrap();
        store
            .add_subscriber(
                crate::domain::NewSubscriber {
                    contact: email("staff@example.com"),
                    locale: Locale::english(),
                    components: vec![],
                    confirmed: false,
                },
                now,
            )
            .await
            .unwrap();
        let later = now + chrono::Duration::days(8);
        store
            .sign_up(
                email("new@example.com"),
                Locale::english(),
                vec![],
                &link,
                day,
                later,
            )
            .await
            .unwrap();
        let cutoff = later - chrono::Duration::days(7);
        assert_eq!(store.purge_unconfirmed(cutoff).await.unwrap(), 1);
        assert_eq!(
            store.purge_unconfirmed(cutoff).await.unwrap(),
            0,
            "idempotent"
        );
        // Ids made in the same millisecond order at random: compare as a set.
        let left: std::collections::BTreeSet<String> = store
            .subscribers(10)
            .unwrap()
            .into_iter()
            .map(|s| s.contact.to_string())
            .collect();
        assert_eq!(
            left,
            ["new@example.com", "staff@example.com"]
                .map(String::from)
                .into()
        );
    }
}
