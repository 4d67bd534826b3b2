//! Self-service sign-ups in the sled backend: the double opt-in (a confirmation link by email, a
//! six-digit code by SMS), SMS opt-out (STOP/START, Twilio error 21610) and the purge of sign-ups
//! never confirmed. The rules are [`crate::domain::signup`]'s; this file finds the record and
//! applies them in a transaction.
//!
//! Nothing here adds a tree: a pending confirmation lives on the subscriber record itself
//! ([`Pending`](crate::domain::Pending)), holding only SHA-256 hashes. The link's token is
//! `<subscriber id>.<secret>`, so it is found without an index; the SMS code is found through the
//! phone number (the `contacts` tree). An unconfirmed subscriber is skipped by the fan-out
//! (`Subscriber::receives`).

use super::port::{SignUps, Subscribers};
use super::{abort, decode, encode, SledStore, StoreError, Trees};
use crate::domain::signup::{self as rules};
use crate::domain::{ComponentName, Contact, Locale, Subscriber};
use chrono::{DateTime, Utc};
use sled::transaction::Transactional;
use ulid::Ulid;

/// The sign-up types and the hash are the domain's; kept reachable here for existing paths.
pub use crate::domain::signup::hash_hex;
pub use crate::domain::{CodeCheck, Secret, SignUp};

fn random(n: usize) -> Result<String, StoreError> {
    crate::token::random_hex(n).map_err(|e| StoreError::Corrupt(format!("no randomness: {e}")))
}

impl SledStore {
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

    /// The subscriber id the `contacts` tree holds for an address, if any.
    fn contact_id(t: &Trees, contact: &Contact) -> Result<Option<Ulid>, StoreError> {
        let Some(raw) = t.contacts.get(contact.address())? else {
            return Ok(None);
        };
        let bytes = <[u8; 16]>::try_from(raw.as_ref())
            .map_err(|_| StoreError::Corrupt("contact index entry".into()))?;
        Ok(Some(Ulid::from_bytes(bytes)))
    }
}

impl SignUps for SledStore {
    /// Records a self-service sign-up awaiting confirmation with `secret`, valid for `valid`.
    async fn sign_up(
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
        let salt = match secret {
            Secret::Code(_) => random(16)?,
            Secret::Link(_) => String::new(),
        };
        let pending = rules::pending_for(secret, salt, now, valid);
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
                    let outcome = rules::renew(&mut s, &fresh.locale, &fresh.components, &pending);
                    if let SignUp::Renewed(_) = outcome {
                        subs.insert(&id, encode(&s).or_else(abort)?)?;
                    }
                    return Ok(outcome);
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

    /// Confirms the sign-up whose email link carries `token` (`<id>.<secret>`). Single use: the
    /// link's hash is gone afterwards. A used, expired or forged token confirms nothing and
    /// writes nothing (`None`).
    async fn confirm_link(
        &self,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Subscriber>, StoreError> {
        let t = self.t()?;
        let Some((id, presented)) = rules::link_token(token) else {
            return Ok(None);
        };
        self.update_subscriber(&t, id, |s| rules::confirm_by_link(s, &presented, now))
            .await
    }

    /// Checks an SMS code for `phone`. Three wrong codes lock it (a new sign-up sends another).
    async fn confirm_code(
        &self,
        phone: &Contact,
        code: &str,
        now: DateTime<Utc>,
    ) -> Result<CodeCheck, StoreError> {
        let t = self.t()?;
        let Some(id) = Self::contact_id(&t, phone)? else {
            return Ok(CodeCheck::Dead);
        };
        let out = self
            .update_subscriber(&t, id, |s| rules::confirm_by_code(s, code, now))
            .await?;
        Ok(rules::code_outcome(out))
    }

    /// STOP (`true`) or START (`false`) for a phone number. START resumes only a confirmed
    /// subscriber (it is no way around the double opt-in). Returns the subscriber if it changed.
    async fn set_opted_out(
        &self,
        phone: &Contact,
        out: bool,
    ) -> Result<Option<Subscriber>, StoreError> {
        let t = self.t()?;
        let Some(id) = Self::contact_id(&t, phone)? else {
            return Ok(None);
        };
        self.update_subscriber(&t, id, |s| rules::set_opted_out(s, out))
            .await
    }

    /// Marks a subscriber opted out by id (a send refused with Twilio error 21610).
    async fn opt_out_id(&self, id: Ulid) -> Result<bool, StoreError> {
        let t = self.t()?;
        Ok(self
            .update_subscriber(&t, id, |s| rules::set_opted_out(s, true).map(|_| ()))
            .await?
            .is_some())
    }

    /// Removes self-service sign-ups left unconfirmed since before `cutoff`. Idempotent: a second
    /// run finds nothing. Staff-added or imported subscribers are never purged.
    async fn purge_unconfirmed(&self, cutoff: DateTime<Utc>) -> Result<usize, StoreError> {
        let stale = self
            .subscribers_where(usize::MAX, |s| rules::unconfirmed_since(s, cutoff))
            .await?;
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
        let raw = serde_json::to_string(&store.subscribers(10).await.unwrap()).unwrap();
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
        let id = store.subscribers(1).await.unwrap()[0].id;
        assert_ne!(store.subscriber_standing(id).await.unwrap(), Some(true));
        assert!(store.set_opted_out(&phone, false).await.unwrap().is_some());
        assert_eq!(store.subscriber_standing(id).await.unwrap(), Some(true));
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
            .await
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
