//! The audit trail's entries and the hash chain that makes tampering visible.
//!
//! Entries are numbered from 1 without gaps. Each holds the SHA-256 of the previous entry's
//! stored bytes (entry 1 holds 64 zeros), and the store keeps the number and hash of the last
//! entry apart from the entries (the head). [`verify`] walks the chain and names the first entry
//! that does not fit: an altered entry breaks the link to its successor (or the head, for the
//! last one), a removed entry leaves a gap, and entries swapped in place sit under the wrong
//! number. It proves the log was not edited by someone without the means to rewrite every later
//! entry and the head; it is not a signature.

use super::Role;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The `prev` of entry 1.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One thing that happened: who did what to what, from where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditEntry {
    /// Position in the log, from 1.
    pub seq: u64,
    pub at: DateTime<Utc>,
    /// A user name, `admin` for the bootstrap admin token, or what acted without a credential
    /// (`anonymous`, `hook:alertmanager`). Never a secret.
    pub actor: String,
    /// The id of the personal token used, if one was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// The client's address as the server saw it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    /// The request's id (the `x-request-id` answer header).
    pub request_id: String,
    /// What was done, e.g. `incident.create`, `login.failed`.
    pub action: String,
    /// What it was done to, e.g. the request path or a user name.
    pub target: String,
    /// A short before → after, or the outcome.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub summary: String,
    /// SHA-256 (hex) of the previous entry as stored.
    pub prev: String,
}

/// The summary of an incident's opening: `opened "Title": status, impact i (draft)`.
pub fn opened(i: &super::Incident) -> String {
    format!(
        "opened \"{}\": {}, impact {}{}",
        i.title.as_str(),
        i.status,
        i.impact.as_str(),
        if i.draft { " (draft)" } else { "" }
    )
}

/// The summary of an update: `status → status`, the impact if it changed, the languages whose
/// title changed, `(draft)`.
pub fn changed(
    before: (super::Status, super::Impact, &super::Titles),
    after: &super::Incident,
    update: &super::Update,
) -> String {
    let mut summary = format!("{} → {}", before.0, update.status);
    if before.1 != after.impact {
        summary.push_str(&format!(
            ", impact {} → {}",
            before.1.as_str(),
            after.impact.as_str()
        ));
    }
    let retitled: Vec<&str> = after
        .titles
        .iter()
        .filter(|(l, t)| before.2.get(*l) != Some(*t))
        .map(|(l, _)| l.as_str())
        .collect();
    if !retitled.is_empty() {
        summary.push_str(&format!(", title in {}", retitled.join(", ")));
    }
    if update.draft {
        summary.push_str(" (draft)");
    }
    summary
}

/// The SHA-256 (hex) of an entry's stored bytes.
pub fn hash(stored: &[u8]) -> String {
    hex::encode(Sha256::digest(stored))
}

/// Where the chain breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    #[error("entry {0} is missing: it was removed")]
    Missing(u64),
    #[error("entry {at} holds entry {claims}: entries were swapped or moved")]
    Moved { at: u64, claims: u64 },
    #[error("entry {0} was altered: the next entry (or the head) holds a different hash of it")]
    Altered(u64),
    #[error("entry {0} cannot be read: it was altered")]
    Unreadable(u64),
    #[error("the log ends at entry {found} but its head says {head}: entries after {found} were removed")]
    Truncated { found: u64, head: u64 },
}

/// The result of a clean walk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Verified {
    /// How many entries were checked.
    pub entries: u64,
    /// The hash of the last one (GENESIS for an empty log).
    pub head: String,
}

/// Walks stored entries in key order — `(key's number, stored bytes)` — against the head
/// (`(number, hash)` of the last entry recorded as such, `None` for an empty log).
pub fn verify(
    entries: impl IntoIterator<Item = (u64, Vec<u8>)>,
    head: Option<(u64, String)>,
) -> Result<Verified, ChainError> {
    let mut expected = 1u64;
    let mut prev_hash = GENESIS.to_owned();
    let mut at_head = None;
    for (key, raw) in entries {
        if key > expected {
            return Err(ChainError::Missing(expected));
        }
        let entry: AuditEntry =
            serde_json::from_slice(&raw).map_err(|_| ChainError::Unreadable(key))?;
        if entry.seq != key {
            return Err(ChainError::Moved {
                at: key,
                claims: entry.seq,
            });
        }
        if entry.prev != prev_hash {
            return Err(ChainError::Altered(key.saturating_sub(1).max(1)));
        }
        prev_hash = hash(&raw);
        if head.as_ref().is_some_and(|(n, _)| *n == key) {
            at_head = Some(prev_hash.clone());
        }
        expected += 1;
    }
    let found = expected - 1;
    // The head is a high-water mark: entries appended after it (a crash between writing an
    // entry and its head) must still chain from it, which the walk above checked.
    if let Some((n, h)) = head {
        if n > found {
            return Err(ChainError::Truncated { found, head: n });
        }
        if at_head.as_ref() != Some(&h) {
            return Err(ChainError::Altered(n));
        }
    }
    Ok(Verified {
        entries: found,
        head: prev_hash,
    })
}

impl AuditEntry {
    /// `new` as the entry after the chain's last one, `(last_seq, last_hash)` (`(0, GENESIS)`
    /// for an empty log): numbered `last_seq + 1` and holding `last_hash` as `prev`. Every
    /// backend builds its entries here, so both chain the same way.
    pub fn chained(new: NewAudit, last_seq: u64, last_hash: &str, at: DateTime<Utc>) -> Self {
        AuditEntry {
            seq: last_seq + 1,
            at,
            actor: new.actor,
            token: new.token,
            role: new.role,
            client: new.client,
            request_id: new.request_id,
            action: new.action,
            target: new.target,
            summary: new.summary,
            prev: last_hash.to_owned(),
        }
    }

    /// The entry's stored bytes, which the next entry's `prev` hashes: its compact JSON (what
    /// the sled store's `encode` writes too).
    pub fn stored(&self) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(self)
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    type Stored = Vec<(u64, Vec<u8>)>;

    fn chain(n: u64) -> (Stored, Option<(u64, String)>) {
        let mut out = Vec::new();
        let mut prev = GENESIS.to_owned();
        for seq in 1..=n {
            let e = AuditEntry {
                seq,
                at: Utc::now(),
                actor: "maria".into(),
                token: None,
                role: Some(Role::Admin),
                client: None,
                request_id: format!("r{seq}"),
                action: "x.y".into(),
                target: format!("t{seq}"),
                summary: String::new(),
                prev: prev.clone(),
            };
            let raw = serde_json::to_vec(&e).unwrap();
            prev = hash(&raw);
            out.push((seq, raw));
        }
        let head = (n > 0).then_some((n, prev));
        (out, head)
    }

    #[test]
    fn an_untouched_chain_verifies() {
        let (c, h) = chain(5);
        assert_eq!(verify(c, h).unwrap().entries, 5);
        let (c, h) = chain(0);
        assert_eq!(verify(c, h).unwrap().entries, 0);
    }

    #[test]
    fn each_kind_of_tampering_names_the_entry() {
        let (mut c, h) = chain(5);
        c[2].1 = String::from_utf8(c[2].1.clone())
            .unwrap()
            .replace("t3", "t9")
            .into_bytes();
        assert_eq!(verify(c, h.clone()), Err(ChainError::Altered(3)));

        let (mut c, h) = chain(5);
        c.remove(2);
        assert_eq!(verify(c, h), Err(ChainError::Missing(3)));

        let (mut c, h) = chain(5);
        let (a, b) = (c[1].1.clone(), c[2].1.clone());
        c[1].1 = b;
        c[2].1 = a;
        assert_eq!(verify(c, h), Err(ChainError::Moved { at: 2, claims: 3 }));

        let (mut c, h) = chain(5);
        c.pop();
        assert_eq!(
            verify(c, h),
            Err(ChainError::Truncated { found: 4, head: 5 })
        );

        let (mut c, h) = chain(5);
        c[4].1 = String::from_utf8(c[4].1.clone())
            .unwrap()
            .replace("maria", "mallory")
            .into_bytes();
        assert_eq!(verify(c, h), Err(ChainError::Altered(5)));

        let (mut c, h) = chain(3);
        c[0].1 = b"not json".to_vec();
        assert_eq!(verify(c, h), Err(ChainError::Unreadable(1)));
    }
}
