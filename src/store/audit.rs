//! The audit log: append-only, hash-chained (see [`crate::domain::audit`]).
//!
//! Trees:
//! - `audit`: entry number (u64 BE, from 1) → the entry's JSON, exactly the bytes hashed
//! - `audit_head`: `head` → JSON `[number, hash]` of the last entry written through crier
//!
//! Appends are serialised by one in-memory lock (held for two inserts, never across the
//! flush): the entry first, then the head, so a crash between them leaves an entry past the head,
//! which still chains from it and verifies. Nothing in crier removes or rewrites an entry.

use super::{decode, encode, Store, StoreError};
use crate::domain::audit::{self, AuditEntry, ChainError, Verified, GENESIS};
use crate::domain::Role;
use chrono::{DateTime, Utc};

const HEAD: &[u8] = b"head";

/// An entry to append; the store numbers and chains it.
#[derive(Debug, Clone, Default)]
pub struct NewAudit {
    pub actor: String,
    pub token: Option<String>,
    pub role: Option<Role>,
    pub client: Option<String>,
    pub request_id: String,
    pub action: String,
    pub target: String,
    pub summary: String,
}

/// Filters of the audit listing; all optional, combined with AND.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Only entries numbered above this (the previous page's `next`).
    pub after: u64,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub actor: Option<String>,
    /// An action, or a prefix ending in `.` (e.g. `incident.`).
    pub action: Option<String>,
    /// Entries whose target contains this.
    pub target: Option<String>,
    pub limit: usize,
}

/// Why verification could not say yes.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("the audit log was tampered with: {0}")]
    Chain(#[from] ChainError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Store {
    /// Appends an entry and waits until it is on disk.
    pub async fn audit(&self, new: NewAudit, at: DateTime<Utc>) -> Result<AuditEntry, StoreError> {
        let t = self.t()?;
        // Inside the write pause: a backup holds an entry together with the head naming it.
        let w = self.writing_async().await;
        let entry = {
            let _guard = self
                .inner
                .audit_lock
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            let (seq, prev) = match t.audit.last()? {
                Some((k, v)) => (seq_of(&k)? + 1, audit::hash(&v)),
                None => (1, GENESIS.to_owned()),
            };
            let entry = AuditEntry {
                seq,
                at,
                actor: new.actor,
                token: new.token,
                role: new.role,
                client: new.client,
                request_id: new.request_id,
                action: new.action,
                target: new.target,
                summary: new.summary,
                prev,
            };
            let raw = encode(&entry)?;
            let hash = audit::hash(&raw);
            t.audit.insert(seq.to_be_bytes(), raw)?;
            t.audit_head.insert(HEAD, encode(&(seq, hash))?)?;
            entry
        };
        drop(w);
        t.durable().await?;
        Ok(entry)
    }

    /// Entries matching `filter`, oldest first, at most `filter.limit`; and the number to pass
    /// as `after` for the next page, if there may be more.
    pub fn audit_entries(
        &self,
        filter: &AuditFilter,
    ) -> Result<(Vec<AuditEntry>, Option<u64>), StoreError> {
        let t = self.t()?;
        let mut out = Vec::new();
        let start = filter.after.saturating_add(1).to_be_bytes();
        for kv in t.audit.range(start..) {
            let (_, v) = kv?;
            let e: AuditEntry = decode(&v)?;
            if filter.until.is_some_and(|u| e.at > u) {
                // Entries are appended in time order (give or take a clock step).
                break;
            }
            let keep = filter.since.is_none_or(|s| e.at >= s)
                && filter.actor.as_ref().is_none_or(|a| e.actor == *a)
                && filter.action.as_ref().is_none_or(|a| {
                    e.action == *a || (a.ends_with('.') && e.action.starts_with(a.as_str()))
                })
                && filter
                    .target
                    .as_ref()
                    .is_none_or(|x| e.target.contains(x.as_str()));
            if keep {
                if out.len() == filter.limit {
                    let next = out.last().map(|e: &AuditEntry| e.seq);
                    return Ok((out, next));
                }
                out.push(e);
            }
        }
        Ok((out, None))
    }

    /// Walks the whole chain (see [`audit::verify`]).
    pub fn verify_audit(&self) -> Result<Verified, VerifyError> {
        let t = self.t()?;
        let head: Option<(u64, String)> = match t.audit_head.get(HEAD).map_err(StoreError::from)? {
            Some(raw) => Some(decode(&raw).map_err(|_| ChainError::Unreadable(0))?),
            None => None,
        };
        let mut entries = Vec::new();
        for kv in t.audit.iter() {
            let (k, v) = kv.map_err(StoreError::from)?;
            entries.push((seq_of(&k)?, v.to_vec()));
        }
        Ok(audit::verify(entries, head)?)
    }

    /// The raw audit tree, for tests that tamper with it as an attacker with the files would.
    #[doc(hidden)]
    pub fn audit_tree_for_tests(&self) -> Result<sled::Tree, StoreError> {
        Ok(self.t()?.audit.clone())
    }
}

fn seq_of(key: &[u8]) -> Result<u64, StoreError> {
    <[u8; 8]>::try_from(key)
        .map(u64::from_be_bytes)
        .map_err(|_| StoreError::Corrupt("an audit key is not 8 bytes".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(action: &str, actor: &str) -> NewAudit {
        NewAudit {
            actor: actor.into(),
            request_id: "r".into(),
            action: action.into(),
            target: "t".into(),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn entries_chain_filter_and_page() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.verify_audit().unwrap().entries, 0);
        for i in 0..5 {
            let actor = if i % 2 == 0 { "maria" } else { "jussi" };
            let e = store
                .audit(new("incident.create", actor), Utc::now())
                .await
                .unwrap();
            assert_eq!(e.seq, i + 1);
        }
        store
            .audit(new("login.failed", "x"), Utc::now())
            .await
            .unwrap();
        assert_eq!(store.verify_audit().unwrap().entries, 6);

        let f = AuditFilter {
            actor: Some("maria".into()),
            limit: 2,
            ..Default::default()
        };
        let (page, next) = store.audit_entries(&f).unwrap();
        assert_eq!(page.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 3]);
        let (page, next) = store
            .audit_entries(&AuditFilter {
                after: next.unwrap(),
                ..f
            })
            .unwrap();
        assert_eq!(page.iter().map(|e| e.seq).collect::<Vec<_>>(), [5]);
        assert_eq!(next, None);
        let by_prefix = AuditFilter {
            action: Some("login.".into()),
            limit: 10,
            ..Default::default()
        };
        assert_eq!(store.audit_entries(&by_prefix).unwrap().0.len(), 1);
    }
}
