//! Browser sessions and TOTP second factors.
//!
//! Trees:
//! - `sessions`: SHA-256 of the session id (32 bytes) → JSON [`Session`] (no secret in it)
//! - `totp`: user name → JSON [`TotpRecord`]: the TOTP secret (needed to verify codes), the
//!   last time step used, and the SHA-256 of each unused recovery code
//!
//! A session id is never stored: the cookie's value is hashed and looked up, as a personal
//! token's is. Creating, upgrading and ending sessions and every TOTP change are durable before
//! they return; the last-seen time is written without a flush by `touch_session` (a crash loses
//! at most the last minute of activity, which can only end a session earlier). TOTP records are
//! written under the people write lock (see [`super::users::PEOPLE_LOCK`]), as users are.

use super::port::{SecondFactors, Sessions};
use super::users::PEOPLE_LOCK;
use super::{decode, encode, SledStore, StoreError};
use crate::domain::UserName;
use crate::domain::{Session, TotpRecord};
use chrono::{DateTime, Utc};

impl Sessions for SledStore {
    /// Stores a new session under the SHA-256 of its id.
    async fn add_session(&self, hash: &[u8; 32], session: &Session) -> Result<(), StoreError> {
        let t = self.t()?;
        let raw = encode(session)?;
        let w = self.writing_async().await;
        t.sessions
            .compare_and_swap(hash, None as Option<&[u8]>, Some(raw))?
            .map_err(|_| StoreError::Conflict("session collision; sign in again".into()))?;
        drop(w);
        t.durable().await?;
        Ok(())
    }

    /// The session whose id hashes to `hash`.
    async fn session(&self, hash: &[u8; 32]) -> Result<Option<Session>, StoreError> {
        let t = self.t()?;
        match t.sessions.get(hash)? {
            Some(raw) => Ok(Some(decode(&raw)?)),
            None => Ok(None),
        }
    }

    /// Records activity without waiting for the disk (see the module docs). A session ended
    /// meanwhile stays ended.
    async fn touch_session(&self, hash: &[u8; 32], at: DateTime<Utc>) -> Result<(), StoreError> {
        let t = self.t()?;
        let _w = self.writing_async().await;
        t.sessions.fetch_and_update(hash, |old| {
            let mut s: Session = serde_json::from_slice(old?).ok()?;
            if s.last_seen_at < at {
                s.last_seen_at = at;
            }
            serde_json::to_vec(&s).ok()
        })?;
        Ok(())
    }

    /// Lets an enrol-only session act fully (its user has just enrolled a second factor).
    async fn upgrade_session(&self, hash: &[u8; 32]) -> Result<(), StoreError> {
        let t = self.t()?;
        let w = self.writing_async().await;
        t.sessions.fetch_and_update(hash, |old| {
            let mut s: Session = serde_json::from_slice(old?).ok()?;
            s.enrol_only = false;
            serde_json::to_vec(&s).ok()
        })?;
        drop(w);
        t.durable().await?;
        Ok(())
    }

    /// Ends one session (logout, expiry); returns it if it existed.
    async fn end_session(&self, hash: &[u8; 32]) -> Result<Option<Session>, StoreError> {
        let t = self.t()?;
        let w = self.writing_async().await;
        let old = t.sessions.remove(hash)?;
        drop(w);
        t.durable().await?;
        old.map(|raw| decode(&raw)).transpose()
    }

    /// Ends every session of a user (disabled, role changed, removed, password reset); returns
    /// how many.
    async fn end_sessions_of(&self, user: &UserName) -> Result<usize, StoreError> {
        let t = self.t()?;
        let w = self.writing_async().await;
        let mut ended = 0;
        for kv in t.sessions.iter() {
            let (k, v) = kv?;
            let s: Session = decode(&v)?;
            if s.user == *user {
                t.sessions.remove(k)?;
                ended += 1;
            }
        }
        drop(w);
        t.durable().await?;
        Ok(ended)
    }

    /// Removes sessions past their idle or absolute limit (they are refused already; this keeps
    /// the tree small). Not flushed: a crash at worst leaves them to the next pruning.
    async fn prune_sessions(
        &self,
        now: DateTime<Utc>,
        idle: chrono::Duration,
        absolute: chrono::Duration,
    ) -> Result<usize, StoreError> {
        let t = self.t()?;
        let _w = self.writing_async().await;
        let mut pruned = 0;
        for kv in t.sessions.iter() {
            let (k, v) = kv?;
            let expired = decode::<Session>(&v).map_or(true, |s| {
                now >= s.last_seen_at + idle || now >= s.created_at + absolute
            });
            if expired {
                t.sessions.remove(k)?;
                pruned += 1;
            }
        }
        Ok(pruned)
    }

    /// Every session of a user (tests and the session listing).
    async fn sessions_of(&self, user: &UserName) -> Result<Vec<Session>, StoreError> {
        let t = self.t()?;
        let mut out = Vec::new();
        for v in t.sessions.iter().values() {
            let s: Session = decode(&v?)?;
            if s.user == *user {
                out.push(s);
            }
        }
        Ok(out)
    }
}

impl SecondFactors for SledStore {
    /// A user's TOTP record.
    async fn totp(&self, user: &UserName) -> Result<Option<TotpRecord>, StoreError> {
        let t = self.t()?;
        match t.totp.get(user.as_str())? {
            Some(raw) => Ok(Some(decode(&raw)?)),
            None => Ok(None),
        }
    }

    /// Changes a user's TOTP record with `change` (which sees the current one and may refuse;
    /// `None` removes it), atomically under the people write lock; returns what `change`
    /// returned alongside.
    async fn change_totp<R: Send>(
        &self,
        user: &UserName,
        change: impl FnOnce(Option<TotpRecord>) -> Result<(Option<TotpRecord>, R), StoreError> + Send,
    ) -> Result<R, StoreError> {
        let t = self.t()?;
        let out = {
            let _w = self.lock(PEOPLE_LOCK).await;
            let current = match t.totp.get(user.as_str())? {
                Some(raw) => Some(decode::<TotpRecord>(&raw)?),
                None => None,
            };
            let (next, out) = change(current)?;
            match next {
                Some(r) => {
                    t.totp.insert(user.as_str(), encode(&r)?)?;
                }
                None => {
                    t.totp.remove(user.as_str())?;
                }
            }
            out
        };
        t.durable().await?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Role;
    use ulid::Ulid;

    #[tokio::test]
    async fn sessions_are_found_by_hash_touched_and_ended_per_user() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        let maria = UserName::parse("maria").unwrap();
        let now = Utc::now();
        let s = Session {
            id: Ulid::new(),
            user: maria.clone(),
            role: Role::Admin,
            created_at: now,
            last_seen_at: now,
            enrol_only: true,
        };
        store.add_session(&[1; 32], &s).await.unwrap();
        store.add_session(&[2; 32], &s).await.unwrap();
        assert!(store.add_session(&[1; 32], &s).await.is_err());
        let later = now + chrono::Duration::minutes(5);
        store.touch_session(&[1; 32], later).await.unwrap();
        store.upgrade_session(&[1; 32]).await.unwrap();
        let got = store.session(&[1; 32]).await.unwrap().unwrap();
        assert_eq!(got.last_seen_at, later);
        assert!(!got.enrol_only);
        // Touching an ended session does not bring it back.
        store.end_session(&[2; 32]).await.unwrap();
        store.touch_session(&[2; 32], later).await.unwrap();
        assert!(store.session(&[2; 32]).await.unwrap().is_none());
        assert_eq!(store.end_sessions_of(&maria).await.unwrap(), 1);
        assert!(store.session(&[1; 32]).await.unwrap().is_none());
    }
}
