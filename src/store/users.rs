//! Users, their password hashes and their personal API tokens.
//!
//! Trees:
//! - `users`: user name → JSON [`User`] (no secret in it)
//! - `credentials`: user name → the argon2id PHC string of the password
//! - `tokens`: token ULID (16 bytes) → JSON [`ApiToken`] (no secret in it)
//! - `token_hashes`: SHA-256 of the token's secret (32 bytes) → token ULID
//!
//! A token's secret is never stored: the request's bearer token is hashed and looked up in
//! `token_hashes`. User changes are rare: every write of `users`, `credentials` and `totp` holds
//! one write lock ([`PEOPLE_LOCK`]), so a change runs its caller's transform once, and writes
//! touching several trees use sled transactions over them. Last-used times are written without a
//! flush by `touch_tokens` (at most once a minute, by the API's token cache); everything else is
//! durable before it returns.

use super::port::{Dump, Tokens, Users};
use super::{abort, decode, encode, SledStore, StoreError};
use crate::domain::{ApiToken, User, UserName};
use chrono::{DateTime, Utc};
use sled::transaction::Transactional;
use ulid::Ulid;

/// One stored record: (tree name, key, value).
pub type Record = (Vec<u8>, Vec<u8>, Vec<u8>);

/// What a user change did: the user before and after.
pub type Changed = (User, User);

/// The write lock (one stripe of the store's write locks) every write of a user, a password or
/// a second factor takes: a read-change-write of one of them is one step, so the caller's
/// transform runs exactly once (no transaction retry calls it again).
pub(super) const PEOPLE_LOCK: Ulid = Ulid(1);

impl Users for SledStore {
    /// Adds a user with a password hash; a taken name is a conflict.
    async fn add_user(&self, user: User, password_hash: &str) -> Result<User, StoreError> {
        let t = self.t()?;
        let raw = encode(&user)?;
        let key = user.name.as_str().as_bytes();
        {
            let _w = self.lock(PEOPLE_LOCK).await;
            (&t.users, &t.credentials).transaction(|(users, creds)| {
                if users.get(key)?.is_some() {
                    return abort(StoreError::Conflict(format!(
                        "there is already a user {}; choose another name, or change theirs with `crier users set-role`",
                        user.name
                    )));
                }
                users.insert(key, raw.as_slice())?;
                creds.insert(key, password_hash.as_bytes())?;
                Ok(())
            })?;
        }
        t.durable().await?;
        Ok(user)
    }

    /// One user.
    async fn user(&self, name: &UserName) -> Result<Option<User>, StoreError> {
        let t = self.t()?;
        match t.users.get(name.as_str())? {
            Some(raw) => Ok(Some(decode(&raw)?)),
            None => Ok(None),
        }
    }

    /// Every user, by name.
    async fn users(&self) -> Result<Vec<User>, StoreError> {
        let t = self.t()?;
        t.users.iter().values().map(|v| decode(&v?)).collect()
    }

    /// Changes a user with `change` (which may refuse); returns before and after.
    async fn change_user(
        &self,
        name: &UserName,
        change: impl FnOnce(&User) -> Result<User, StoreError> + Send,
    ) -> Result<Changed, StoreError> {
        let t = self.t()?;
        let changed = {
            let _w = self.lock(PEOPLE_LOCK).await;
            let raw = t.users.get(name.as_str())?.ok_or_else(|| not_found(name))?;
            let before: User = decode(&raw)?;
            let after = change(&before)?;
            t.users.insert(name.as_str(), encode(&after)?)?;
            (before, after)
        };
        t.durable().await?;
        Ok(changed)
    }

    /// Removes a user, their password, second factor and sessions, and their tokens (revoked,
    /// so they stay listed for the record until pruned).
    async fn remove_user(&self, name: &UserName, now: DateTime<Utc>) -> Result<User, StoreError> {
        let t = self.t()?;
        let removed = {
            let _w = self.lock(PEOPLE_LOCK).await;
            let removed =
                (&t.users, &t.credentials, &t.totp).transaction(|(users, creds, totp)| {
                    let Some(raw) = users.remove(name.as_str())? else {
                        return abort(not_found(name));
                    };
                    creds.remove(name.as_str())?;
                    totp.remove(name.as_str())?;
                    decode::<User>(&raw).or_else(abort)
                })?;
            // Their sessions end with them.
            for kv in t.sessions.iter() {
                let (k, v) = kv?;
                if decode::<crate::domain::Session>(&v).is_ok_and(|s| s.user == *name) {
                    t.sessions.remove(k)?;
                }
            }
            for token in tokens_in(&t, Some(name))? {
                if token.revoked_at.is_none() {
                    revoke_in(&t, token.id, now)?;
                }
            }
            removed
        };
        t.durable().await?;
        Ok(removed)
    }

    /// The argon2id PHC string of a user's password.
    async fn password_hash(&self, name: &UserName) -> Result<Option<String>, StoreError> {
        let t = self.t()?;
        match t.credentials.get(name.as_str())? {
            Some(raw) => String::from_utf8(raw.to_vec()).map(Some).map_err(|_| {
                StoreError::Corrupt(format!("the password hash of {name} is not text"))
            }),
            None => Ok(None),
        }
    }

    /// Replaces a user's password hash.
    async fn set_password(&self, name: &UserName, password_hash: &str) -> Result<(), StoreError> {
        let t = self.t()?;
        {
            let _w = self.lock(PEOPLE_LOCK).await;
            (&t.users, &t.credentials).transaction(|(users, creds)| {
                if users.get(name.as_str())?.is_none() {
                    return abort(not_found(name));
                }
                creds.insert(name.as_str(), password_hash.as_bytes())?;
                Ok(())
            })?;
        }
        t.durable().await
    }
}

impl Tokens for SledStore {
    /// Stores a new token under the SHA-256 of its secret.
    async fn add_token(&self, token: &ApiToken, secret_hash: &[u8; 32]) -> Result<(), StoreError> {
        let t = self.t()?;
        let raw = encode(token)?;
        let w = self.writing_async().await;
        (&t.tokens, &t.token_hashes).transaction(|(tokens, hashes)| {
            if hashes.get(secret_hash)?.is_some() {
                // 256 random bits do not collide; refuse rather than overwrite.
                return abort(StoreError::Conflict("token collision; try again".into()));
            }
            tokens.insert(&token.id.to_bytes(), raw.as_slice())?;
            hashes.insert(secret_hash, &token.id.to_bytes())?;
            Ok(())
        })?;
        drop(w);
        t.durable().await?;
        Ok(())
    }

    /// The token whose secret hashes to `secret_hash`, live or not.
    async fn token_by_hash(&self, secret_hash: &[u8; 32]) -> Result<Option<ApiToken>, StoreError> {
        let t = self.t()?;
        let Some(id) = t.token_hashes.get(secret_hash)? else {
            return Ok(None);
        };
        match t.tokens.get(&id)? {
            Some(raw) => Ok(Some(decode(&raw)?)),
            None => Ok(None),
        }
    }

    /// One token by id.
    async fn token(&self, id: Ulid) -> Result<Option<ApiToken>, StoreError> {
        let t = self.t()?;
        match t.tokens.get(id.to_bytes())? {
            Some(raw) => Ok(Some(decode(&raw)?)),
            None => Ok(None),
        }
    }

    /// Tokens, oldest first: all of them, or one owner's.
    async fn tokens(&self, owner: Option<&UserName>) -> Result<Vec<ApiToken>, StoreError> {
        let t = self.t()?;
        tokens_in(&t, owner)
    }

    /// Revokes a token: it stops working at once and stays listed as revoked.
    async fn revoke_token(&self, id: Ulid, now: DateTime<Utc>) -> Result<ApiToken, StoreError> {
        let t = self.t()?;
        let w = self.writing_async().await;
        let token = revoke_in(&t, id, now)?;
        drop(w);
        t.durable().await?;
        Ok(token)
    }

    /// Records last-used times without waiting for the disk: losing them in a crash loses at
    /// most a minute of "last used", never a security decision.
    async fn touch_tokens(&self, used: &[(Ulid, DateTime<Utc>)]) -> Result<(), StoreError> {
        let t = self.t()?;
        // Inside the write pause, so a backup holds all of these or none.
        let _w = self.writing_async().await;
        for (id, at) in used {
            let Some(raw) = t.tokens.get(id.to_bytes())? else {
                continue;
            };
            let mut token: ApiToken = decode(&raw)?;
            if token.last_used_at.is_none_or(|old| old < *at) {
                token.last_used_at = Some(*at);
                t.tokens.insert(id.to_bytes(), encode(&token)?)?;
            }
        }
        Ok(())
    }
}

impl Dump for SledStore {
    /// Every (tree name, key, value) in the database, for tests that prove a secret is nowhere.
    async fn dump(&self) -> Result<Vec<Record>, StoreError> {
        let t = self.t()?;
        let mut out = Vec::new();
        for name in t.db.tree_names() {
            for kv in t.db.open_tree(&name)?.iter() {
                let (k, v) = kv?;
                out.push((name.to_vec(), k.to_vec(), v.to_vec()));
            }
        }
        Ok(out)
    }
}

/// Tokens, oldest first: all of them, or one owner's.
fn tokens_in(t: &super::Trees, owner: Option<&UserName>) -> Result<Vec<ApiToken>, StoreError> {
    let mut out = Vec::new();
    for v in t.tokens.iter().values() {
        let token: ApiToken = decode(&v?)?;
        if owner.is_none_or(|o| *o == token.owner) {
            out.push(token);
        }
    }
    Ok(out)
}

fn revoke_in(t: &super::Trees, id: Ulid, now: DateTime<Utc>) -> Result<ApiToken, StoreError> {
    let Some(raw) = t.tokens.get(id.to_bytes())? else {
        return Err(StoreError::NotFound {
            what: "token",
            id: id.to_string(),
        });
    };
    let mut token: ApiToken = decode(&raw)?;
    if token.revoked_at.is_none() {
        token.revoked_at = Some(now);
    }
    // The record first: a crash between the two leaves a revoked record with a stale index
    // entry, which finds a revoked token (refused), never a live one.
    t.tokens.insert(id.to_bytes(), encode(&token)?)?;
    let stale: Vec<sled::IVec> = t
        .token_hashes
        .iter()
        .filter_map(|kv| kv.ok())
        .filter(|(_, v)| v.as_ref() == id.to_bytes())
        .map(|(k, _)| k)
        .collect();
    for k in stale {
        t.token_hashes.remove(k)?;
    }
    Ok(token)
}

fn not_found(name: &UserName) -> StoreError {
    StoreError::NotFound {
        what: "user",
        id: name.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Role;

    fn user(name: &str, role: Role) -> User {
        User {
            name: UserName::parse(name).unwrap(),
            display_name: name.into(),
            role,
            email: None,
            phone: None,
            disabled: false,
            created_at: Utc::now(),
        }
    }

    #[tokio::test]
    async fn users_are_unique_and_removal_revokes_their_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        store
            .add_user(user("maria", Role::Admin), "h1")
            .await
            .unwrap();
        let e = store
            .add_user(user("maria", Role::Viewer), "h2")
            .await
            .unwrap_err();
        assert!(matches!(e, StoreError::Conflict(_)), "{e}");
        let name = UserName::parse("maria").unwrap();
        assert_eq!(
            store.password_hash(&name).await.unwrap().as_deref(),
            Some("h1")
        );

        let token = ApiToken {
            id: Ulid::new(),
            name: "laptop".into(),
            owner: name.clone(),
            role: Role::Viewer,
            created_at: Utc::now(),
            expires_at: None,
            last_used_at: None,
            revoked_at: None,
        };
        store.add_token(&token, &[7; 32]).await.unwrap();
        assert_eq!(
            store.token_by_hash(&[7; 32]).await.unwrap().unwrap().id,
            token.id
        );
        store.remove_user(&name, Utc::now()).await.unwrap();
        assert!(store.user(&name).await.unwrap().is_none());
        assert!(store.password_hash(&name).await.unwrap().is_none());
        assert!(store.token_by_hash(&[7; 32]).await.unwrap().is_none());
        assert!(store
            .token(token.id)
            .await
            .unwrap()
            .unwrap()
            .revoked_at
            .is_some());
    }
}
