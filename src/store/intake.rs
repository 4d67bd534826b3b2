//! Monitoring alert groups: which incident a (source, group) of alerts opened, and the state of
//! each alert key in it, so repeated triggers are absorbed and the incident resolves only when
//! every key has resolved.
//!
//! The group also remembers what the public was last told and when (`public_at`), what happened
//! since (`digest`), a public update waiting for the interval (`pending`) and how many staff
//! detail messages it has posted (`detail_seq`), so the rules of [`crate::intake`] survive a
//! restart. Fields added later default when an older record is read.
//!
//! Tree `alerts`: source ‖ 0x00 ‖ group → JSON [`AlertGroup`].

use super::port::{AlertGroups, HookSignatures};
use super::{decode, encode, SledStore, StoreError};
use crate::domain::alert::AlertGroup;
use chrono::{DateTime, Utc};

fn group_key(source: &str, group: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(source.len() + group.len() + 1);
    k.extend_from_slice(source.as_bytes());
    k.push(0);
    k.extend_from_slice(group.as_bytes());
    k
}

impl AlertGroups for SledStore {
    /// The alert group (source, group), if monitoring has reported it before.
    async fn alert_group(
        &self,
        source: &str,
        group: &str,
    ) -> Result<Option<AlertGroup>, StoreError> {
        let t = self.t()?;
        match t.alerts.get(group_key(source, group))? {
            Some(raw) => Ok(Some(decode(&raw)?)),
            None => Ok(None),
        }
    }

    /// Saves an alert group. Durable when it returns.
    async fn put_alert_group(&self, g: &AlertGroup) -> Result<(), StoreError> {
        let t = self.t()?;
        {
            let _w = self.writing_async().await;
            t.alerts
                .insert(group_key(&g.source, &g.group), encode(g)?)?;
        }
        t.durable().await
    }

    /// Every alert group (for status and tests).
    async fn alert_groups(&self) -> Result<Vec<AlertGroup>, StoreError> {
        let t = self.t()?;
        t.alerts.iter().values().map(|v| decode(&v?)).collect()
    }
}

/// Tree of accepted webhook signatures: SHA-256 of (scheme ‖ signature) → expiry (ms, u64 BE).
/// Opened on first use; entries live as long as the signature's timestamp is acceptable.
const SIGNATURES: &str = "hook_signatures";

impl HookSignatures for SledStore {
    /// Remembers an accepted webhook signature until `expires`, once: `Ok(false)` when it was
    /// accepted before and has not expired (a replay). Expired entries are evicted on the way.
    /// Durable when it returns, so a restart inside the window still refuses the replay.
    async fn remember_signature(
        &self,
        key: [u8; 32],
        expires: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let t = self.t()?;
        let tree = t.db.open_tree(SIGNATURES)?;
        let now_ms = u64::try_from(now.timestamp_millis()).unwrap_or(0);
        let value = u64::try_from(expires.timestamp_millis())
            .unwrap_or(0)
            .to_be_bytes();
        let w = self.writing_async().await;
        let mut stale = Vec::new();
        for kv in tree.iter() {
            let (k, v) = kv?;
            if expiry(&v) < now_ms {
                stale.push(k);
            }
        }
        for k in stale {
            tree.remove(k)?;
        }
        let fresh = match tree.compare_and_swap(key, None as Option<&[u8]>, Some(&value[..]))? {
            Ok(()) => true,
            // An entry that has expired (but was not evicted yet) gives way.
            Err(e) => match e.current {
                Some(old) if expiry(&old) < now_ms => tree
                    .compare_and_swap(key, Some(old), Some(&value[..]))?
                    .is_ok(),
                _ => false,
            },
        };
        drop(w);
        if fresh {
            t.durable().await?;
        }
        Ok(fresh)
    }

    /// Forgets an accepted signature (its request failed before doing anything, so the sender
    /// may send it again).
    async fn forget_signature(&self, key: [u8; 32]) -> Result<(), StoreError> {
        let t = self.t()?;
        {
            let _w = self.writing_async().await;
            t.db.open_tree(SIGNATURES)?.remove(key)?;
        }
        t.durable().await
    }
}

fn expiry(v: &[u8]) -> u64 {
    v.try_into().map(u64::from_be_bytes).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_accepted_signature_is_refused_again_until_it_expires_even_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let now = Utc::now();
        let expires = now + chrono::Duration::seconds(300);
        {
            let store = SledStore::open(&path).unwrap();
            assert!(store
                .remember_signature([1; 32], expires, now)
                .await
                .unwrap());
            assert!(!store
                .remember_signature([1; 32], expires, now)
                .await
                .unwrap());
            assert!(store
                .remember_signature([2; 32], expires, now)
                .await
                .unwrap());
            store.close().await.unwrap();
        }
        let store = SledStore::open(&path).unwrap();
        let later = now + chrono::Duration::seconds(60);
        assert!(
            !store
                .remember_signature([1; 32], expires, later)
                .await
                .unwrap(),
            "a restart inside the window does not reopen it"
        );
        // Past its expiry the entry is evicted (and the timestamp check refuses it anyway).
        let after = expires + chrono::Duration::seconds(1);
        let next = after + chrono::Duration::seconds(300);
        assert!(store
            .remember_signature([1; 32], next, after)
            .await
            .unwrap());
        let tree = store.t().unwrap().db.open_tree(SIGNATURES).unwrap();
        assert_eq!(tree.len(), 1, "the expired [2; 32] was evicted");
        // A refused request's signature is forgotten, so the sender may try again.
        store.forget_signature([1; 32]).await.unwrap();
        assert!(store
            .remember_signature([1; 32], next, after)
            .await
            .unwrap());
    }
}
