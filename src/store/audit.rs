//! The audit log: append-only, hash-chained (see [`crate::domain::audit`]). The sled backend of
//! [`Audit`] (the port's trait: `audit`, `audit_entries`, `verify_audit`); the armed-commit
//! plumbing ([`record`], [`arm`], `SledStore::commit_audited`) and the test hook
//! (`audit_tree_for_tests`) are this backend's own.
//!
//! Trees:
//! - `audit`: entry number (u64 BE, from 1) → the entry's JSON, exactly the bytes hashed
//! - `audit_head`: `head` → JSON `[number, hash]` of the last entry appended on its own;
//!   `pending`, only in a store written by an earlier build (see [`Trees::repair_audit`])
//! - and in the records of `incidents`, `updates` and `components`: a field `audit_head`,
//!   `[number, hash]` of the chain's last entry when the record was written (see [`marked`])
//!
//! Appends are serialised by one in-memory lock per opened database (held for a few inserts,
//! never across the flush), which numbers the entry and chains it to the last one. The lock
//! keeps the last entry's number and hash (the chain head) in memory, read from `audit` on first
//! use and again after [`Trees::repair_audit`], so an append neither re-reads nor re-hashes the
//! last entry. A side effect: an entry removed from the end of the log behind the server's back
//! is not covered up by the next append (which chains from the removed entry), so `verify`
//! reports the gap.
//!
//! **An entry in the same commit as its change.** A request recorded with [`record`] whose
//! handler called [`arm`] gets its entry from the store method that makes its change, inside
//! that method's write (see `SledStore::commit_audited`): under the audit lock it writes the entry,
//! then the change's last record (the one that commits it: the incident with its new
//! `update_count`, an opening's first update, a component) carrying the entry's number and hash
//! in its `audit_head` field; and the change's one group commit makes them durable together.
//! So an audited change writes one record of the audit log's own, the entry. sled recovers a
//! prefix of its log, so after a crash: no entry means the commit record is missing too (the
//! change's earlier records are removed by `SledStore::repair`); an entry whose commit record is
//! missing can only be the last entry (every later record is written after this commit
//! record), and no record names it: [`Trees::repair_audit`] removes it. So an entry never
//! survives without its change, nor a change without its entry.
//!
//! **The head** of the log — the last entry that must exist, which `verify` checks the log
//! against — is the highest entry any record names: `head`, or an `audit_head` field (see
//! [`Trees::log_head`]). Every record of `incidents`, `updates` and `components` that crier
//! writes carries the chain head as it stood then (a write without an entry of its own carries
//! the last entry, so replacing a commit record never lowers the head), and every such record
//! is written after the entry it names. So an entry removed from the end is noticed while any
//! later record is there: its commit record, the next update of the timeline, a later change.
//!
//! Requests whose handler does not arm (and security events such as failed logins) get their
//! entry from the middleware after the handler, with its own group commit (`SledStore::audit`):
//! the entry first, then the head. A crash between them leaves an entry no record names, which
//! was not acknowledged either, and `repair_audit` removes it like an armed write's. Nothing in
//! crier removes or rewrites an acknowledged entry.

use super::port::Audit;
use super::{decode, encode, SledStore, StoreError, Trees};
use crate::domain::audit::{
    self, AuditEntry, AuditFilter, ChainError, NewAudit, Verified, GENESIS,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

const HEAD: &[u8] = b"head";
const PENDING: &[u8] = b"pending";

/// The entry written together with a change, and the record that commits the change: the
/// tree's name, the key and the SHA-256 of the value written.
#[derive(Debug, Serialize, Deserialize)]
struct Pending {
    seq: u64,
    tree: String,
    key: Vec<u8>,
    value: String,
    /// The hash of entry `seq`, and of entry `seq - 1` ([`GENESIS`] for entry 1). Empty in a
    /// note written before `pending` was also the head (a `head` record followed it then).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    hash: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    prev: String,
}

tokio::task_local! {
    static RECORDING: Arc<Recording>;
}

/// The audit entry of the request being handled, before the store has written it.
struct Recording {
    /// Everything but the number, the time and what the store method adds (target, summary).
    base: NewAudit,
    /// The handler's write carries the entry (see [`arm`]).
    armed: AtomicBool,
    written: Mutex<Option<AuditEntry>>,
    /// The server's clock (`dispatch::Clock`), which stamps the entry.
    now: Box<dyn Fn() -> DateTime<Utc> + Send + Sync>,
}

impl std::fmt::Debug for Recording {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recording")
            .field("base", &self.base)
            .field("armed", &self.armed)
            .finish_non_exhaustive()
    }
}

/// Runs `work` (a request's handler) so that the store method that makes its change can write
/// its audit entry `base` in the same commit, if the handler calls [`arm`]. Returns what `work`
/// returned and the entry, if the store wrote it; if not, the caller writes one itself. `now`
/// is the server's clock: it stamps the entry.
pub async fn record<F: Future>(
    base: NewAudit,
    now: impl Fn() -> DateTime<Utc> + Send + Sync + 'static,
    work: F,
) -> (F::Output, Option<AuditEntry>) {
    let recording = Arc::new(Recording {
        base,
        armed: AtomicBool::new(false),
        written: Mutex::new(None),
        now: Box::new(now),
    });
    let out = RECORDING.scope(recording.clone(), work).await;
    let written = recording
        .written
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take();
    (out, written)
}

/// Says that the next store write of this request (create or update an incident, publish its
/// drafts, set a component) makes its change and writes the request's audit entry together.
/// Outside [`record`] it does nothing.
pub fn arm() {
    let _ = RECORDING.try_with(|r| r.armed.store(true, Ordering::Relaxed));
}

/// The armed, not yet written recording of the current request.
/// The armed recording of the current request, if any, with its entry's target and summary
/// from `describe` (called only when armed).
fn armed_entry(describe: impl FnOnce() -> (String, String)) -> Option<(Arc<Recording>, NewAudit)> {
    armed().map(|r| {
        let (target, summary) = describe();
        let new = NewAudit {
            target,
            summary,
            ..r.base.clone()
        };
        (r, new)
    })
}

fn armed() -> Option<Arc<Recording>> {
    RECORDING
        .try_with(|r| {
            let open = r.armed.load(Ordering::Relaxed)
                && r.written
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .is_none();
            open.then(|| r.clone())
        })
        .ok()
        .flatten()
}

/// The armed audit entry of the current request, for a backend that writes it in its own
/// transaction (the PostgreSQL store): the entry as [`record`] was given it, with the target and
/// summary of the write, and the server's clock that stamps it.
pub(crate) struct ArmedAudit {
    recording: Arc<Recording>,
    /// The entry to append, without its number, time and chain.
    pub(crate) new: NewAudit,
}

impl ArmedAudit {
    /// The time to stamp the entry with.
    pub(crate) fn now(&self) -> DateTime<Utc> {
        (self.recording.now)()
    }

    /// Hands the entry, once its write committed, to [`record`]'s caller (which then writes no
    /// entry of its own).
    pub(crate) fn written(self, entry: AuditEntry) {
        *self
            .recording
            .written
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(entry);
    }
}

/// The current request's armed, not yet written entry (see [`arm`]), with the target and
/// summary `describe` gives (called only when armed).
pub(crate) fn armed_audit(describe: impl FnOnce() -> (String, String)) -> Option<ArmedAudit> {
    armed_entry(describe).map(|(recording, new)| ArmedAudit { recording, new })
}

/// Why verification could not say yes.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("the audit log was tampered with: {0}")]
    Chain(#[from] ChainError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl SledStore {
    /// Inserts `key` → `value` into `tree`: the record that commits a change, written last,
    /// after `first` (the change's record just before it, if it is one of `updates`) when
    /// given. If the current request is recording its audit entry and armed (see [`record`]),
    /// writes the entry between them, as the module docs describe, with the target and summary
    /// `describe` gives. Both records carry the chain head (see [`marked`]). The caller holds
    /// the write pause (and the incident's lock) and waits for the group commit afterwards, as
    /// for any write.
    pub(crate) fn commit_audited(
        &self,
        t: &Trees,
        first: Option<(&sled::Tree, &[u8], Vec<u8>)>,
        tree: &sled::Tree,
        key: &[u8],
        value: Vec<u8>,
        describe: impl FnOnce() -> (String, String),
    ) -> Result<(), StoreError> {
        // Everything that does not depend on the entry's number, before the lock.
        let recording = armed_entry(describe);
        let mut chain = t.chain();
        let head = t.chain_head(&mut chain)?;
        if let Some((tree, key, value)) = first {
            t.put(tree, key, marked(value, head)?)?;
        }
        let Some((recording, new)) = recording else {
            // A write without an entry names the last entry, as the record it may replace did.
            t.put(tree, key, marked(value, head)?)?;
            return Ok(());
        };
        let (entry, raw) = next_entry(t, &mut chain, new, (recording.now)())?;
        let hash = audit::hash(&raw);
        // The order crash recovery relies on (see the module docs).
        t.put(&t.audit, entry.seq.to_be_bytes(), raw)?;
        let head = set_head(&mut chain, entry.seq, hash);
        t.put(tree, key, marked(value, head)?)?;
        *recording.written.lock().unwrap_or_else(|p| p.into_inner()) = Some(entry);
        Ok(())
    }

    /// [`SledStore::commit_audited`] for a change that also sets components (an incident opened or
    /// updated with new component statuses): `first` (the update record of an update) is written
    /// before, as there; then the commit record, each component with its history record, and (if
    /// armed) the entry go in ONE sled transaction, which sled recovers whole or not at all. Every
    /// record of `incidents`, `updates` and `components` carries the chain head (see [`marked`]):
    /// `first` the head before the entry, the rest the entry itself. So a crash leaves either the
    /// change with its components and its entry, or none of them (the change's earlier records
    /// are removed by `SledStore::repair`, an entry no record names by the audit repair). The caller
    /// holds the component lock (see `SledStore::component_lock`) since it read the components, the
    /// write pause, and waits for the group commit afterwards.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn commit_audited_with_components(
        &self,
        t: &Trees,
        first: Option<(&sled::Tree, &[u8], Vec<u8>)>,
        tree: &sled::Tree,
        key: &[u8],
        value: Vec<u8>,
        components: &[crate::domain::Component],
        describe: impl FnOnce() -> (String, String),
    ) -> Result<(), StoreError> {
        if components.is_empty() {
            return self.commit_audited(t, first, tree, key, value, describe);
        }
        // Everything that does not depend on the entry's number, before the lock.
        let recording = armed_entry(describe);
        let mut chain = t.chain();
        let before = t.chain_head(&mut chain)?.clone();
        if let Some((tree, key, value)) = first {
            t.put(tree, key, marked(value, &before)?)?;
        }
        let entry = match recording {
            Some((recording, new)) => {
                let (entry, raw) = next_entry(t, &mut chain, new, (recording.now)())?;
                let hash = audit::hash(&raw);
                Some((recording, entry, raw, hash))
            }
            None => None,
        };
        let head = match &entry {
            Some((_, entry, _, hash)) => ChainHead {
                seq: entry.seq,
                hash: hash.clone(),
            },
            None => before,
        };
        let value = marked(value, &head)?;
        let mut records = Vec::with_capacity(components.len());
        for c in components {
            records.push((
                c.name.as_str().as_bytes().to_vec(),
                marked(encode(c)?, &head)?,
                super::history::key(&c.name, c.updated_at),
                super::history::value(c.status)?,
            ));
        }
        #[cfg(test)]
        if super::tests_components::crash_here() {
            // A simulated crash before the one commit (see `tests_components`).
            return Err(StoreError::Broken(
                "simulated crash before the commit".into(),
            ));
        }
        use sled::Transactional;
        (tree, &t.components, &t.component_history, &t.audit).transaction(
            |(tc, comp, hist, log)| {
                if let Some((_, entry, raw, _)) = &entry {
                    log.insert(&entry.seq.to_be_bytes(), raw.as_slice())?;
                }
                for (name, c, hk, hv) in &records {
                    hist.insert(hk.as_slice(), hv.as_slice())?;
                    comp.insert(name.as_slice(), c.as_slice())?;
                }
                tc.insert(key, value.as_slice())?;
                Ok::<_, sled::transaction::ConflictableTransactionError<StoreError>>(())
            },
        )?;
        if let Some((recording, entry, _, hash)) = entry {
            set_head(&mut chain, entry.seq, hash);
            *recording.written.lock().unwrap_or_else(|p| p.into_inner()) = Some(entry);
        }
        Ok(())
    }
    /// The raw audit records, for tests that tamper with them as an attacker with the files
    /// would.
    #[doc(hidden)]
    pub fn audit_tree_for_tests(&self) -> Result<RawRecords, StoreError> {
        Ok(RawRecords(self.t()?.audit.clone()))
    }
}

impl Audit for SledStore {
    /// Appends an entry and waits until it is on disk (its own group commit: for entries that
    /// record no change of the store, or whose handler did not arm, see the module docs).
    async fn audit(&self, new: NewAudit, at: DateTime<Utc>) -> Result<AuditEntry, StoreError> {
        let t = self.t()?;
        // Inside the write pause: a backup holds an entry together with the head naming it.
        let w = self.writing_async().await;
        let entry = {
            let mut chain = t.chain();
            let (entry, raw) = next_entry(&t, &mut chain, new, at)?;
            let hash = audit::hash(&raw);
            t.put(&t.audit, entry.seq.to_be_bytes(), raw)?;
            let head = set_head(&mut chain, entry.seq, hash);
            t.put(&t.audit_head, HEAD, encode(&(head.seq, &head.hash))?)?;
            entry
        };
        drop(w);
        t.durable().await?;
        Ok(entry)
    }

    /// Entries matching `filter`, oldest first, at most `filter.limit`; and the number to pass
    /// as `after` for the next page, if there may be more.
    async fn audit_entries(
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
    async fn verify_audit(&self) -> Result<Verified, VerifyError> {
        // The walk reads and hashes the whole log: off the async workers.
        let store = self.clone();
        tokio::task::spawn_blocking(move || {
            let t = store.t()?;
            // A head that cannot be read was altered, as before records carried it.
            let head = t.log_head().map_err(|e| match e {
                StoreError::Corrupt(_) => VerifyError::Chain(ChainError::Unreadable(0)),
                e => e.into(),
            })?;
            let mut entries = Vec::new();
            for kv in t.audit.iter() {
                let (k, v) = kv.map_err(StoreError::from)?;
                entries.push((seq_of(&k)?, v.to_vec()));
            }
            Ok(audit::verify(entries, head)?)
        })
        .await
        .map_err(|e| StoreError::Broken(format!("the audit verification task failed: {e}")))?
    }
}

/// One tree's raw records by key, for tests that tamper with the files (the backend's own tree
/// type stays inside the store).
#[doc(hidden)]
pub struct RawRecords(sled::Tree);

impl RawRecords {
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.0.get(key)?.map(|v| v.to_vec()))
    }

    pub fn insert(
        &self,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.0.insert(key, value.as_ref())?.map(|v| v.to_vec()))
    }

    pub fn remove(&self, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.0.remove(key)?.map(|v| v.to_vec()))
    }
}

/// The last entry of the chain: its number (0 for an empty log) and its hash ([`GENESIS`] for
/// an empty log). Kept in memory under the audit lock (`Trees::audit_chain`) so that an append
/// neither re-reads nor re-hashes the last entry; read from `audit` on first use and again after
/// `Trees::repair_audit`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ChainHead {
    seq: u64,
    hash: String,
}

/// The chain head as the store holds it: the last entry in `audit`, whatever the head says
/// (see the module docs).
fn stored_chain_head(t: &Trees) -> Result<ChainHead, StoreError> {
    Ok(match t.audit.last()? {
        Some((k, v)) => ChainHead {
            seq: seq_of(&k)?,
            hash: audit::hash(&v),
        },
        None => ChainHead {
            seq: 0,
            hash: GENESIS.to_owned(),
        },
    })
}

/// The audit lock, held while an entry is numbered, chained and inserted: the chain head, or
/// `None` if it must be read from the store.
pub(super) type ChainGuard<'a> = MutexGuard<'a, Option<ChainHead>>;

/// The field of a record in `incidents`, `updates` or `components` that names the chain head.
const MARK_FIELD: &str = "audit_head";

/// `value`, the JSON object of a record of `incidents`, `updates` or `components` as `encode`
/// made it, with the chain head `head` added as its field `audit_head`: `[number, hash]`
/// (nothing for an empty log). Readers of the record's own type ignore the field, and a
/// record read and written again gets the chain head of its new write, never two fields.
pub(super) fn marked(mut value: Vec<u8>, head: &ChainHead) -> Result<Vec<u8>, StoreError> {
    if head.seq == 0 {
        return Ok(value);
    }
    if value.last() != Some(&b'}') {
        return Err(StoreError::Corrupt(
            "a record to be written is not a JSON object".into(),
        ));
    }
    value.pop();
    if value.last() != Some(&b'{') {
        value.push(b',');
    }
    // Written in place (no intermediate string): this runs for every record of every write.
    value.reserve(MARK_FIELD.len() + head.hash.len() + 28);
    use std::io::Write as _;
    write!(value, "\"{MARK_FIELD}\":[{},\"{}\"]}}", head.seq, head.hash)
        .map_err(|e| StoreError::Corrupt(format!("marking a record: {e}")))?;
    Ok(value)
}

/// The chain head a record names in its `audit_head` field, if it has one.
fn mark_of(raw: &[u8]) -> Result<Option<(u64, String)>, StoreError> {
    #[derive(Deserialize)]
    struct Mark {
        #[serde(default)]
        audit_head: Option<(u64, String)>,
    }
    Ok(decode::<Mark>(raw)?.audit_head)
}

/// Keeps `b` in `best` if it names a later entry.
fn later(best: &mut Option<(u64, String)>, b: Option<(u64, String)>) {
    if let Some(b) = b {
        if best.as_ref().is_none_or(|(n, _)| b.0 > *n) {
            *best = Some(b);
        }
    }
}

impl Trees {
    /// The chain head, read from the store if the lock does not hold it yet.
    pub(super) fn chain_head<'g>(
        &self,
        chain: &'g mut ChainGuard<'_>,
    ) -> Result<&'g ChainHead, StoreError> {
        if chain.is_none() {
            **chain = Some(stored_chain_head(self)?);
        }
        chain
            .as_ref()
            .ok_or_else(|| StoreError::Corrupt("the audit chain head".into()))
    }

    /// `value` with the chain head as it stands now (see [`marked`]), for a record of
    /// `incidents`, `updates` or `components` written without an entry of its own. Taken under
    /// the audit lock but not held: the head only grows, so a record written a moment later
    /// still names an entry written before it.
    pub(super) fn marked_now(&self, value: Vec<u8>) -> Result<Vec<u8>, StoreError> {
        let mut chain = self.chain();
        marked(value, self.chain_head(&mut chain)?)
    }

    /// Takes the audit lock. After a panic under it the cached head may be behind the store,
    /// so it is dropped and read again.
    pub(super) fn chain(&self) -> ChainGuard<'_> {
        match self.audit_chain.lock() {
            Ok(g) => g,
            Err(poisoned) => {
                let mut g = poisoned.into_inner();
                *g = None;
                self.audit_chain.clear_poison();
                g
            }
        }
    }
}

/// Records `seq` (just inserted into `audit`) as the chain's last entry.
fn set_head<'g>(chain: &'g mut ChainGuard<'_>, seq: u64, hash: String) -> &'g ChainHead {
    chain.insert(ChainHead { seq, hash })
}

/// The next entry: numbered after the last one and chained to it. The caller holds the audit
/// lock (`chain`) until it has inserted the entry and called [`set_head`].
fn next_entry(
    t: &Trees,
    chain: &mut ChainGuard<'_>,
    new: NewAudit,
    at: DateTime<Utc>,
) -> Result<(AuditEntry, Vec<u8>), StoreError> {
    let last = t.chain_head(chain)?;
    let entry = AuditEntry::chained(new, last.seq, &last.hash, at);
    let raw = encode(&entry)?;
    Ok((entry, raw))
}

impl Trees {
    /// The head of the log, `(number, hash)` of the last entry that must exist (`None` for an
    /// empty log): the highest entry that `head`, an earlier build's `pending` note, or the
    /// `audit_head` field of any record of `incidents`, `updates` or `components` names (see
    /// the module docs).
    fn log_head(&self) -> Result<Option<(u64, String)>, StoreError> {
        let mut best = self.legacy_head()?;
        for tree in [&self.incidents, &self.updates, &self.components] {
            for v in tree.iter().values() {
                later(&mut best, mark_of(&v?)?);
            }
        }
        Ok(best)
    }

    /// The head of the log as `head` and an earlier build's `pending` note give it.
    fn legacy_head(&self) -> Result<Option<(u64, String)>, StoreError> {
        let head: Option<(u64, String)> = match self.audit_head.get(HEAD)? {
            Some(raw) => Some(decode(&raw)?),
            None => None,
        };
        let pending: Pending = match self.audit_head.get(PENDING)? {
            Some(raw) => decode(&raw)?,
            None => return Ok(head),
        };
        if pending.hash.is_empty() || head.as_ref().is_some_and(|(n, _)| *n >= pending.seq) {
            return Ok(head);
        }
        if self.commits(&pending)? {
            return Ok(Some((pending.seq, pending.hash)));
        }
        // Cut off by a crash: the entry before it is the last one written.
        Ok(match pending.seq - 1 {
            0 => head,
            n => Some((n, pending.prev)),
        })
    }

    /// The highest entry that the records a completed audited write leaves name: `head`, and
    /// the `audit_head` field of every incident, of every incident's first update and of every
    /// component (the records that commit an audited change, and that a later write without an
    /// entry replaces with one naming the same entry or a later one).
    fn committed_head(&self) -> Result<u64, StoreError> {
        let mut best = match self.audit_head.get(HEAD)? {
            Some(raw) => Some(decode::<(u64, String)>(&raw)?),
            None => None,
        };
        for kv in self.incidents.iter() {
            let (k, v) = kv?;
            later(&mut best, mark_of(&v)?);
            let mut first = k.to_vec();
            first.extend_from_slice(&1u32.to_be_bytes());
            if let Some(u) = self.updates.get(first)? {
                later(&mut best, mark_of(&u)?);
            }
        }
        for v in self.components.iter().values() {
            later(&mut best, mark_of(&v?)?);
        }
        Ok(best.map_or(0, |(n, _)| n))
    }

    /// Whether the record that commits `pending`'s change holds the value written with it.
    fn commits(&self, pending: &Pending) -> Result<bool, StoreError> {
        // Only the trees whose records commit an audited change; no tree is created.
        let tree = match pending.tree.as_str() {
            "incidents" => &self.incidents,
            "updates" => &self.updates,
            "components" => &self.components,
            _ => return Ok(false),
        };
        Ok(tree
            .get(&pending.key)?
            .is_some_and(|v| hex::encode(Sha256::digest(&v)) == pending.value))
    }

    /// Removes the last entry if a crash left it without the record that names it (see the
    /// module docs): an armed write's entry without its change, or an entry written on its own
    /// without its `head`; neither was acknowledged. Returns how many entries it removed.
    ///
    /// A store written by an earlier build may hold a `pending` note, which named the last
    /// armed write's entry, its hash and its predecessor's, and the record that commits that
    /// change: that entry is removed if the record does not hold what was written, and the note
    /// is replaced by the `head` it stood for.
    pub(super) fn repair_audit(&self) -> Result<usize, StoreError> {
        let mut chain = self.chain();
        // Whatever this finds, the head is read from the store again at the next append.
        *chain = None;
        let mut removed = self.repair_pending()?;
        let Some((last, _)) = self.audit.last()? else {
            return Ok(removed);
        };
        if seq_of(&last)? > self.committed_head()? {
            self.audit.remove(last)?;
            removed += 1;
        }
        Ok(removed)
    }

    /// An earlier build's `pending` note (see [`Trees::repair_audit`]).
    fn repair_pending(&self) -> Result<usize, StoreError> {
        let Some(raw) = self.audit_head.get(PENDING)? else {
            return Ok(0);
        };
        let p: Pending = decode(&raw)?;
        let head = match self.audit_head.get(HEAD)? {
            Some(h) => decode::<(u64, String)>(&h)?.0,
            None => 0,
        };
        let mut removed = 0;
        match self.audit.last()? {
            Some((last, entry)) if p.seq > head && seq_of(&last)? == p.seq => {
                if !self.commits(&p)? {
                    self.audit.remove(last)?;
                    removed = 1;
                } else if p.hash.is_empty() {
                    // A note from before `pending` was also the head was followed by a `head`
                    // record, which the crash cut off: restore it.
                    self.audit_head
                        .insert(HEAD, encode(&(p.seq, audit::hash(&entry)))?)?;
                }
            }
            // The entry was never written (the crash came before it), or it is not the last
            // one, which a crash cannot leave: `audit verify` judges the log.
            _ => {}
        }
        if let Some((n, hash)) = self.legacy_head()? {
            if n > head {
                self.audit_head.insert(HEAD, encode(&(n, hash))?)?;
            }
        }
        self.audit_head.remove(PENDING)?;
        Ok(removed)
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
    use crate::domain::Incident;
    use crate::store::port::{Components, Incidents};

    fn new(action: &str, actor: &str) -> NewAudit {
        NewAudit {
            actor: actor.into(),
            request_id: "r".into(),
            action: action.into(),
            target: "t".into(),
            ..Default::default()
        }
    }

    fn base(request_id: &str) -> NewAudit {
        NewAudit {
            actor: "maria".into(),
            request_id: request_id.into(),
            action: "incident.update".into(),
            target: "/api/v1/incidents/x/updates".into(),
            ..Default::default()
        }
    }

    /// An armed update recorded under `request_id`, as the API's middleware and handler do it.
    async fn armed_update(store: &SledStore, id: ulid::Ulid, request_id: &str) -> AuditEntry {
        let (done, entry) = record(base(request_id), Utc::now, async {
            arm();
            store
                .append_update(id, super::super::tests::new_update("u"), Utc::now())
                .await
        })
        .await;
        done.unwrap();
        entry.expect("the store wrote the entry with the change")
    }

    /// An armed write's entry is stamped by the clock the request was recorded with (the
    /// server's injected clock), not the wall clock.
    #[tokio::test]
    async fn an_armed_entry_is_stamped_by_the_injected_clock() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        let (incident, _) = store
            .create_incident(super::super::tests::new_incident("i"), Utc::now())
            .await
            .unwrap();
        let at = DateTime::parse_from_rfc3339("2031-05-06T07:08:09Z")
            .unwrap()
            .with_timezone(&Utc);
        let (done, entry) = record(base("r9"), move || at, async {
            arm();
            store
                .append_update(incident.id, super::super::tests::new_update("u"), at)
                .await
        })
        .await;
        done.unwrap();
        assert_eq!(entry.expect("written with the change").at, at);
    }

    /// The records written to every tree but `meta` (the group commit's counter) while `work`
    /// runs, in tree name order, from sled's own change events: one name per record.
    async fn records_written<F: Future>(store: &SledStore, work: F) -> (F::Output, Vec<String>) {
        let t = store.t().unwrap();
        let mut watching = Vec::new();
        for name in t.db.tree_names() {
            if name.as_ref() == b"meta" {
                continue;
            }
            let tree = t.db.open_tree(&name).unwrap();
            let name = String::from_utf8_lossy(&name).into_owned();
            watching.push((name, tree.watch_prefix(vec![])));
        }
        let out = work.await;
        let mut written = Vec::new();
        for (name, mut events) in watching {
            // sled fills an event before the insert returns: none is still on its way.
            while events.next_timeout(std::time::Duration::ZERO).is_ok() {
                written.push(name.clone());
            }
        }
        written.sort();
        (out, written)
    }

    /// An audited update writes its update, its entry and the incident that commits both:
    /// no record of the audit log's own besides the entry (the chain head rides in the
    /// incident record). Unaudited, the same update writes two.
    #[tokio::test]
    async fn an_audited_update_writes_one_record_besides_its_change() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        let (incident, _) = store
            .create_incident(super::super::tests::new_incident("i"), Utc::now())
            .await
            .unwrap();
        armed_update(&store, incident.id, "r1").await;
        let (entry, written) =
            records_written(&store, armed_update(&store, incident.id, "r2")).await;
        assert_eq!(entry.seq, 2);
        assert_eq!(written, ["audit", "incidents", "updates"]);
        let (done, written) = records_written(
            &store,
            store.append_update(
                incident.id,
                super::super::tests::new_update("u"),
                Utc::now(),
            ),
        )
        .await;
        done.unwrap();
        assert_eq!(written, ["incidents", "updates"]);
        assert_eq!(store.verify_audit().await.unwrap().entries, 2);
        assert_eq!(store.repair().unwrap(), 0);
    }

    /// The audited writes the crash tests cut off.
    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Cut {
        /// An armed update: the update, the entry, the incident.
        Update,
        /// An armed opening: the incident, the entry, update 1.
        Open,
        /// An armed component change: its history record, the entry, the component.
        Component,
        /// An entry written on its own: the entry, the head.
        Alone,
    }

    /// What the store held after a write cut off after `k` records and a restart.
    #[derive(Debug)]
    struct AfterCrash {
        /// The write was cut off (`k` was below the number of records it writes).
        cut: bool,
        entries: u64,
        /// The entry of the write is in the log.
        entry: bool,
        /// Its change is in the store.
        change: bool,
    }

    /// Writes three entries (armed, on its own, armed), then `cut` with the log cut off after
    /// `k` of its records, restarts, and checks what every restart must leave: the log
    /// verifies, nothing is left of a change but all of it, the next write chains on, and
    /// removing the last entry is noticed.
    async fn crash_after(cut: Cut, k: usize) -> AfterCrash {
        use crate::domain::{ComponentName, ComponentStatus};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let store = SledStore::open(&path).unwrap();
        let api = ComponentName::parse("API").unwrap();
        store
            .set_component(api.clone(), ComponentStatus::Operational, None, Utc::now())
            .await
            .unwrap();
        let (incident, _) = store
            .create_incident(super::super::tests::new_incident("i"), Utc::now())
            .await
            .unwrap();
        armed_update(&store, incident.id, "r1").await;
        store
            .audit(new("login.failed", "x"), Utc::now())
            .await
            .unwrap();
        armed_update(&store, incident.id, "r3").await;
        let opened = ulid::Ulid::new();

        let t = store.t().unwrap();
        t.crash.after(k);
        match cut {
            Cut::Update => {
                armed_update(&store, incident.id, "crash").await;
            }
            Cut::Open => {
                let (done, _) = record(base("crash"), Utc::now, async {
                    arm();
                    store
                        .create_incident_with_id(
                            opened,
                            super::super::tests::new_incident("o"),
                            Utc::now(),
                        )
                        .await
                })
                .await;
                done.unwrap();
            }
            Cut::Component => {
                let (done, _) = record(base("crash"), Utc::now, async {
                    arm();
                    store
                        .set_component(api.clone(), ComponentStatus::MajorOutage, None, Utc::now())
                        .await
                })
                .await;
                done.unwrap();
            }
            Cut::Alone => {
                let mut e = new("login.failed", "y");
                e.request_id = "crash".into();
                store.audit(e, Utc::now()).await.unwrap();
            }
        }
        let was_cut = t.crash.was_cut();
        drop((t, store));
        let store = reopen(&path).await;

        let entries = store.verify_audit().await.unwrap().entries;
        let (all, _) = store
            .audit_entries(&AuditFilter {
                limit: 100,
                ..Default::default()
            })
            .await
            .unwrap();
        let entry = all.iter().any(|e| e.request_id == "crash");
        assert_eq!(all.len() as u64, entries);
        let (now, updates) = store.incident(incident.id).await.unwrap();
        assert_eq!(updates.len(), now.update_count as usize, "no orphan update");
        let change = match cut {
            Cut::Update => now.update_count == 4,
            Cut::Open => match store.incident(opened).await {
                Ok((o, u)) => {
                    assert_eq!((o.update_count, u.len()), (1, 1));
                    true
                }
                Err(StoreError::NotFound { .. }) => false,
                Err(e) => panic!("{e}"),
            },
            Cut::Component => store
                .components()
                .await
                .unwrap()
                .iter()
                .any(|c| c.name == api && c.status == ComponentStatus::MajorOutage),
            // An entry on its own records no change of the store.
            Cut::Alone => entry,
        };
        assert_eq!(
            entry, change,
            "{cut:?} cut after {k} records: the entry and its change, or neither"
        );
        assert_eq!(entries, 3 + u64::from(entry));
        // The next write chains on, and removing it from the end is noticed.
        let next = armed_update(&store, incident.id, "next").await;
        assert_eq!(next.seq, entries + 1);
        assert_eq!(store.verify_audit().await.unwrap().entries, entries + 1);
        let tree = store.audit_tree_for_tests().unwrap();
        tree.remove(next.seq.to_be_bytes()).unwrap();
        match store.verify_audit().await {
            Err(VerifyError::Chain(ChainError::Truncated { found, head })) => {
                assert_eq!((found, head), (entries, entries + 1))
            }
            other => panic!("{cut:?} cut after {k}: removing the last entry: {other:?}"),
        }
        AfterCrash {
            cut: was_cut,
            entries,
            entry,
            change,
        }
    }

    /// Cuts `cut` off after every one of its records in turn (and once not at all): the
    /// states a crash can leave. Returns, for each point, whether the entry survived.
    async fn crash_at_every_point(cut: Cut) -> Vec<bool> {
        let mut survived = Vec::new();
        for k in 0..10 {
            let after = crash_after(cut, k).await;
            survived.push(after.entry);
            if !after.cut {
                assert!(after.entry && after.change, "{cut:?} uncut: {after:?}");
                assert_eq!(after.entries, 4);
                return survived;
            }
        }
        panic!("{cut:?} writes more than 10 records");
    }

    /// A crash at every point of an audited update (the update, the entry, the incident that
    /// commits both): after the restart the update and its entry are both there or neither.
    #[tokio::test]
    async fn a_crash_anywhere_in_an_audited_update_keeps_both_or_neither() {
        assert_eq!(
            crash_at_every_point(Cut::Update).await,
            [false, false, false, true],
            "the entry survives only with the incident record"
        );
    }

    /// The same for an audited opening (the incident, the entry, update 1 that commits it).
    #[tokio::test]
    async fn a_crash_anywhere_in_an_audited_opening_keeps_both_or_neither() {
        assert_eq!(
            crash_at_every_point(Cut::Open).await,
            [false, false, false, true]
        );
    }

    /// The same for an audited component change (its history record, the entry, the
    /// component that commits both).
    #[tokio::test]
    async fn a_crash_anywhere_in_an_audited_component_change_keeps_both_or_neither() {
        assert_eq!(
            crash_at_every_point(Cut::Component).await,
            [false, false, false, true]
        );
    }

    /// An entry written on its own (the entry, then the head): cut off before its head it was
    /// not acknowledged, and the restart removes it; the log verifies at every point.
    #[tokio::test]
    async fn a_crash_anywhere_in_an_entry_on_its_own_leaves_a_verified_log() {
        assert_eq!(crash_at_every_point(Cut::Alone).await, [false, false, true]);
    }

    /// The states a crash can leave around an armed write (sled recovers a prefix of its log:
    /// `pending`, the entry, the commit record, the head): the entry without its commit record
    /// is removed with the rest of the change; the entry with it is kept and the head restored.
    #[tokio::test]
    async fn repair_keeps_an_entry_exactly_when_its_change_is_there() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        let (incident, _) = store
            .create_incident(super::super::tests::new_incident("i"), Utc::now())
            .await
            .unwrap();
        let t = store.t().unwrap();
        let committed_before = t.incidents.get(incident.id.to_bytes()).unwrap().unwrap();

        // Crash after the entry, before the incident record (and the head).
        let e = armed_update(&store, incident.id, "r1").await;
        assert_eq!(
            (e.seq, e.target.as_str()),
            (1, format!("incident {}", incident.id).as_str())
        );
        assert_eq!(e.summary, "investigating → monitoring");
        t.incidents
            .insert(incident.id.to_bytes(), committed_before)
            .unwrap();
        t.audit_head.remove(HEAD).unwrap();
        assert_eq!(
            store.repair().unwrap(),
            2,
            "the entry and the orphan update"
        );
        assert_eq!(store.verify_audit().await.unwrap().entries, 0);
        assert_eq!(store.incident(incident.id).await.unwrap().1.len(), 1);

        // Crash after the incident record: the write is complete (the incident record names
        // the entry as the head).
        let e = armed_update(&store, incident.id, "r2").await;
        assert_eq!(e.seq, 1);
        assert_eq!(store.repair().unwrap(), 0);
        let v = store.verify_audit().await.unwrap();
        assert_eq!(v.entries, 1);
        assert_eq!(store.incident(incident.id).await.unwrap().1.len(), 2);

        // A note from an earlier build (no hashes; it wrote `head` after the incident record),
        // the crash before that `head`: the head is restored.
        // Its incident record names no head, its note names the record by its hash.
        let plain: Incident =
            decode(&t.incidents.get(incident.id.to_bytes()).unwrap().unwrap()).unwrap();
        let plain = encode(&plain).unwrap();
        let old = Pending {
            seq: 1,
            tree: "incidents".into(),
            key: incident.id.to_bytes().to_vec(),
            value: hex::encode(Sha256::digest(&plain)),
            hash: String::new(),
            prev: String::new(),
        };
        t.incidents.insert(incident.id.to_bytes(), plain).unwrap();
        t.audit_head.insert(PENDING, encode(&old).unwrap()).unwrap();
        assert_eq!(store.repair().unwrap(), 0);
        assert!(t.audit_head.get(HEAD).unwrap().is_some(), "head restored");
        assert_eq!(store.verify_audit().await.unwrap().entries, 1);

        // A complete write is left alone, and so is a later entry written on its own.
        armed_update(&store, incident.id, "r3").await;
        store
            .audit(new("login.failed", "x"), Utc::now())
            .await
            .unwrap();
        assert_eq!(store.repair().unwrap(), 0);
        assert_eq!(store.verify_audit().await.unwrap().entries, 3);
    }

    /// Opens the store in `path` once the previous handle's flusher has let go of sled's lock.
    async fn reopen(path: &std::path::Path) -> SledStore {
        for _ in 0..250 {
            match SledStore::open(path) {
                Err(StoreError::Locked(_)) => {
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await
                }
                other => return other.unwrap(),
            }
        }
        SledStore::open(path).unwrap()
    }

    /// The chain head kept in memory agrees with the store after `repair` removed an entry (on
    /// the open store and when the store is opened again after a crash): the next entry takes
    /// the removed entry's number and chains from the one before it.
    #[tokio::test]
    async fn the_chain_head_in_memory_follows_repair_and_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let store = SledStore::open(&path).unwrap();
        let (incident, _) = store
            .create_incident(super::super::tests::new_incident("i"), Utc::now())
            .await
            .unwrap();
        let t = store.t().unwrap();
        armed_update(&store, incident.id, "r1").await;
        // A crash cut entry 2 off from its change (the incident record and the head).
        let committed = t.incidents.get(incident.id.to_bytes()).unwrap().unwrap();
        assert_eq!(armed_update(&store, incident.id, "r2").await.seq, 2);
        t.incidents
            .insert(incident.id.to_bytes(), committed.clone())
            .unwrap();
        t.audit_head.remove(HEAD).unwrap();
        assert_eq!(store.repair().unwrap(), 2, "entry 2 and its orphan update");
        let e = armed_update(&store, incident.id, "r3").await;
        assert_eq!(e.seq, 2, "the removed entry's number is taken again");
        assert_eq!(store.verify_audit().await.unwrap().entries, 2);

        // The same on a store opened again: entry 3 loses its change, the restart repairs.
        assert_eq!(armed_update(&store, incident.id, "r4").await.seq, 3);
        let committed = t.incidents.get(incident.id.to_bytes()).unwrap().unwrap();
        armed_update(&store, incident.id, "r5").await;
        t.incidents
            .insert(incident.id.to_bytes(), committed)
            .unwrap();
        t.audit_head.remove(HEAD).unwrap();
        t.db.flush().unwrap();
        drop((t, store));
        let store = reopen(&path).await;
        assert_eq!(
            store.verify_audit().await.unwrap().entries,
            3,
            "entry 4 was removed"
        );
        let e = armed_update(&store, incident.id, "r6").await;
        assert_eq!(e.seq, 4);
        let e = store
            .audit(new("login.failed", "x"), Utc::now())
            .await
            .unwrap();
        assert_eq!(e.seq, 5);
        assert_eq!(store.verify_audit().await.unwrap().entries, 5);
    }

    /// Removing the last entry behind a running server's back is not covered up by the next
    /// write: the chain head in memory still names the removed entry, so the next entry chains
    /// from it and `verify` reports the gap (re-reading the last entry from the store took the
    /// removed entry's number again and chained over the hole).
    #[tokio::test]
    async fn removing_the_last_entry_is_not_covered_by_the_next_write() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        for i in 0..3 {
            store
                .audit(new("login.failed", &format!("x{i}")), Utc::now())
                .await
                .unwrap();
        }
        let tree = store.audit_tree_for_tests().unwrap();
        tree.remove(3u64.to_be_bytes()).unwrap();
        let e = store
            .audit(new("login.failed", "y"), Utc::now())
            .await
            .unwrap();
        assert_eq!(e.seq, 4);
        assert!(matches!(
            store.verify_audit().await,
            Err(VerifyError::Chain(ChainError::Missing(3)))
        ));
    }

    /// An armed write leaves its commit record naming its entry as the head of the log (the
    /// test's name is from when a `pending` note did): removing its entry from the end is
    /// noticed while its change is there; with the change gone too it is what a crash before
    /// the entry left (the head falls back to the entry before, which the update records of
    /// the timeline still name), unless more is missing than a crash can cut off.
    #[tokio::test]
    async fn pending_is_the_head_after_an_armed_write() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        let (incident, _) = store
            .create_incident(super::super::tests::new_incident("i"), Utc::now())
            .await
            .unwrap();
        let t = store.t().unwrap();
        store
            .audit(new("login.failed", "x"), Utc::now())
            .await
            .unwrap();
        let before2 = t.incidents.get(incident.id.to_bytes()).unwrap().unwrap();
        armed_update(&store, incident.id, "r2").await;
        let before3 = t.incidents.get(incident.id.to_bytes()).unwrap().unwrap();
        let e3 = armed_update(&store, incident.id, "r3").await;
        assert_eq!(e3.seq, 3);
        assert_eq!(store.verify_audit().await.unwrap().entries, 3);

        // Entry 3 removed, its change kept: the log was cut.
        let raw3 = t.audit.remove(3u64.to_be_bytes()).unwrap().unwrap();
        assert!(matches!(
            store.verify_audit().await,
            Err(VerifyError::Chain(ChainError::Truncated {
                found: 2,
                head: 3
            }))
        ));
        // Entries 2 and 3 removed: cut as well, whatever their changes.
        let raw2 = t.audit.remove(2u64.to_be_bytes()).unwrap().unwrap();
        t.incidents.insert(incident.id.to_bytes(), before2).unwrap();
        assert!(matches!(
            store.verify_audit().await,
            Err(VerifyError::Chain(ChainError::Truncated {
                found: 1,
                head: 2
            }))
        ));
        // Entry 2 back, entry 3 and its change missing (a crash before the entry): entry 2 is
        // the head, and altering it is noticed.
        t.incidents.insert(incident.id.to_bytes(), before3).unwrap();
        t.audit.insert(2u64.to_be_bytes(), raw2.clone()).unwrap();
        assert_eq!(store.verify_audit().await.unwrap().entries, 2);
        let forged = String::from_utf8(raw2.to_vec())
            .unwrap()
            .replace("\"actor\":\"maria\"", "\"actor\":\"mallory\"");
        assert_ne!(forged.as_bytes(), &raw2[..]);
        t.audit
            .insert(2u64.to_be_bytes(), forged.as_bytes())
            .unwrap();
        assert!(matches!(
            store.verify_audit().await,
            Err(VerifyError::Chain(ChainError::Altered(2)))
        ));
        t.audit.insert(2u64.to_be_bytes(), raw2).unwrap();
        // Entry 3 there without its change (a crash before the incident record): repair.
        t.audit.insert(3u64.to_be_bytes(), raw3).unwrap();
        assert_eq!(store.repair().unwrap(), 2, "entry 3 and its orphan update");
        assert_eq!(store.verify_audit().await.unwrap().entries, 2);
        assert_eq!(armed_update(&store, incident.id, "r4").await.seq, 3);
        assert_eq!(store.verify_audit().await.unwrap().entries, 3);
    }

    /// A component restored when its incident resolves (a write without an entry) replaces the
    /// component record an armed `set_component` committed its entry with: `repair` keeps it.
    #[tokio::test]
    async fn a_restored_component_does_not_unsettle_its_last_entry() {
        use crate::domain::{ComponentName, ComponentStatus};
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(&dir.path().join("db")).unwrap();
        let api = ComponentName::parse("API").unwrap();
        let mut incident = super::super::tests::new_incident("i");
        incident.components = vec![api.clone()];
        store
            .set_component(api.clone(), ComponentStatus::Operational, None, Utc::now())
            .await
            .unwrap();
        let (incident, _) = store.create_incident(incident, Utc::now()).await.unwrap();
        let (set, _) = record(base("r1"), Utc::now, async {
            arm();
            store
                .set_component(api.clone(), ComponentStatus::MajorOutage, None, Utc::now())
                .await
        })
        .await;
        set.unwrap();
        let restored = store
            .restore_components(&incident, Utc::now())
            .await
            .unwrap();
        assert_eq!(restored, vec![api]);
        assert_eq!(
            store.repair().unwrap(),
            0,
            "the entry is not taken as cut off"
        );
        assert_eq!(store.verify_audit().await.unwrap().entries, 1);
    }

    /// A write without an entry that replaces the record an armed write's `pending` names (an
    /// update posted by crier itself, drafts published without a request) does not make that
    /// entry look cut off by a crash: `repair` keeps it, on the open store and after a restart.
    #[tokio::test]
    async fn a_later_write_without_an_entry_does_not_unsettle_the_last_entry() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let store = SledStore::open(&path).unwrap();
        // An opening whose entry is committed by update 1, then its drafts published unarmed.
        let mut draft = super::super::tests::new_incident("d");
        draft.draft = true;
        let (opened, _) = record(base("r1"), Utc::now, async {
            arm();
            store.create_incident(draft, Utc::now()).await
        })
        .await;
        let (opened, _) = opened.unwrap();
        store
            .publish_drafts(opened.id, &[], Utc::now())
            .await
            .unwrap();
        assert_eq!(store.repair().unwrap(), 0);
        assert_eq!(store.verify_audit().await.unwrap().entries, 1);
        // An update recorded with its change, then one without an entry.
        let (incident, _) = store
            .create_incident(super::super::tests::new_incident("i"), Utc::now())
            .await
            .unwrap();
        assert_eq!(armed_update(&store, incident.id, "r2").await.seq, 2);
        store
            .append_update(
                incident.id,
                super::super::tests::new_update("u"),
                Utc::now(),
            )
            .await
            .unwrap();
        assert_eq!(store.repair().unwrap(), 0);
        assert_eq!(store.verify_audit().await.unwrap().entries, 2);
        // And after a restart (the head in memory is read again).
        assert_eq!(armed_update(&store, incident.id, "r3").await.seq, 3);
        drop(store);
        let store = reopen(&path).await;
        store
            .append_update(
                incident.id,
                super::super::tests::new_update("v"),
                Utc::now(),
            )
            .await
            .unwrap();
        drop(store);
        let store = reopen(&path).await;
        assert_eq!(store.verify_audit().await.unwrap().entries, 3);
        assert_eq!(store.incident(incident.id).await.unwrap().1.len(), 5);
    }

    /// Many concurrent writes across incidents (sharing stripes), armed or audited on their
    /// own: the chain verifies and holds exactly one entry per write, each with its change.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_writes_chain_one_entry_each() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        let mut incidents = Vec::new();
        for i in 0..8 {
            let (inc, _) = store
                .create_incident(
                    super::super::tests::new_incident(&format!("i{i}")),
                    Utc::now(),
                )
                .await
                .unwrap();
            incidents.push(inc.id);
        }
        let mut tasks = Vec::new();
        for n in 0..240 {
            let store = store.clone();
            let id = incidents[n % incidents.len()];
            tasks.push(tokio::spawn(async move {
                if n % 10 == 9 {
                    store
                        .audit(new("login.failed", &format!("r{n}")), Utc::now())
                        .await
                        .unwrap();
                } else {
                    armed_update(&store, id, &format!("r{n}")).await;
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(store.verify_audit().await.unwrap().entries, 240);
        let (all, _) = store
            .audit_entries(&AuditFilter {
                limit: 1000,
                ..Default::default()
            })
            .await
            .unwrap();
        let mut ids: Vec<String> = all
            .iter()
            .map(|e| match e.action.as_str() {
                "login.failed" => e.actor.clone(),
                _ => e.request_id.clone(),
            })
            .collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 240, "one entry per write");
        let mut updates = 0;
        for id in &incidents {
            updates += store.incident(*id).await.unwrap().1.len() - 1;
        }
        assert_eq!(updates, 216, "one update per armed write");
    }

    #[tokio::test]
    async fn entries_chain_filter_and_page() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        assert_eq!(store.verify_audit().await.unwrap().entries, 0);
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
        assert_eq!(store.verify_audit().await.unwrap().entries, 6);

        let f = AuditFilter {
            actor: Some("maria".into()),
            limit: 2,
            ..Default::default()
        };
        let (page, next) = store.audit_entries(&f).await.unwrap();
        assert_eq!(page.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 3]);
        let (page, next) = store
            .audit_entries(&AuditFilter {
                after: next.unwrap(),
                ..f
            })
            .await
            .unwrap();
        assert_eq!(page.iter().map(|e| e.seq).collect::<Vec<_>>(), [5]);
        assert_eq!(next, None);
        let by_prefix = AuditFilter {
            action: Some("login.".into()),
            limit: 10,
            ..Default::default()
        };
        assert_eq!(store.audit_entries(&by_prefix).await.unwrap().0.len(), 1);
    }
}
