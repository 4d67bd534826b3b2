//! Read-only listings that only `crier store migrate` (src/cli/store_migrate.rs) needs: trees
//! the store otherwise reads by key only (threads, token hashes, standalone messages), every
//! broadcast with errors reported, and the audit log's entries as stored (the bytes its hash
//! chain covers).

use super::{decode, SledStore, StoreError};
use crate::domain::{Broadcast, Standalone, Thread};
use ulid::Ulid;

fn ulid_at(key: &[u8], what: &str) -> Result<Ulid, StoreError> {
    key.get(..16)
        .and_then(|b| <[u8; 16]>::try_from(b).ok())
        .map(Ulid::from_bytes)
        .ok_or_else(|| StoreError::Corrupt(format!("a {what} key is shorter than 16 bytes")))
}

impl SledStore {
    /// Every social thread: (incident, channel, thread), in key order.
    pub fn all_threads(&self) -> Result<Vec<(Ulid, String, Thread)>, StoreError> {
        let t = self.t()?;
        let mut out = Vec::new();
        for kv in t.threads.iter() {
            let (k, v) = kv?;
            let id = ulid_at(&k, "thread")?;
            let channel = String::from_utf8(k.get(16..).unwrap_or_default().to_vec())
                .map_err(|_| StoreError::Corrupt("a thread's channel is not UTF-8".into()))?;
            out.push((id, channel, decode(&v)?));
        }
        Ok(out)
    }

    /// Every token's (id, SHA-256 of its secret).
    pub fn token_hashes(&self) -> Result<Vec<(Ulid, [u8; 32])>, StoreError> {
        let t = self.t()?;
        let mut out = Vec::new();
        for kv in t.token_hashes.iter() {
            let (k, v) = kv?;
            let hash = <[u8; 32]>::try_from(&k[..])
                .map_err(|_| StoreError::Corrupt("a token hash is not 32 bytes".into()))?;
            out.push((ulid_at(&v, "token")?, hash));
        }
        Ok(out)
    }

    /// Every broadcast, in key order; unlike `broadcasts_of_all`, an unreadable record is an
    /// error, not skipped (a migration must not lose one silently).
    pub fn all_broadcasts(&self) -> Result<Vec<Broadcast>, StoreError> {
        let t = self.t()?;
        t.broadcasts.iter().values().map(|v| decode(&v?)).collect()
    }

    /// Every standalone message posted, by (origin, seq).
    pub fn all_standalones(&self) -> Result<Vec<Standalone>, StoreError> {
        let t = self.t()?;
        t.messages.iter().values().map(|v| decode(&v?)).collect()
    }

    /// The audit log's entries as stored: (number, the bytes hashed), in order.
    pub fn audit_stored(&self) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let t = self.t()?;
        let mut out = Vec::new();
        for kv in t.audit.iter() {
            let (k, v) = kv?;
            let seq = <[u8; 8]>::try_from(&k[..])
                .map(u64::from_be_bytes)
                .map_err(|_| StoreError::Corrupt("an audit key is not 8 bytes".into()))?;
            out.push((seq, v.to_vec()));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::port::Incidents;

    #[tokio::test]
    async fn an_unreadable_broadcast_is_an_error_not_a_gap() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(&dir.path().join("db")).unwrap();
        let mut new = super::super::tests::new_incident("t");
        new.broadcast = vec![("sms".into(), true)];
        store
            .create_incident(new, chrono::Utc::now())
            .await
            .unwrap();
        assert_eq!(store.all_broadcasts().unwrap().len(), 1);
        store
            .t()
            .unwrap()
            .broadcasts
            .insert(b"garbage-key", b"not json".as_slice())
            .unwrap();
        assert!(matches!(
            store.all_broadcasts(),
            Err(StoreError::Corrupt(_))
        ));
    }
}
