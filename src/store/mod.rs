//! The embedded store: sled trees holding incidents, their timelines, components and subscribers.
//!
//! Layout (one tree each; keys big-endian so iteration order is time order):
//! - `meta`: `schema_version` → u32 BE
//! - `incidents`: incident ULID (16 bytes) → JSON [`Incident`]
//! - `updates`: incident ULID ‖ timeline position (u32 BE) → JSON [`Update`]
//! - `components`: name → JSON [`Component`]
//! - `component_history`: name ‖ 0 ‖ time (ms, BE) → each status change, see [`history`]
//! - `subscribers`: subscriber ULID → JSON [`Subscriber`]
//! - `contacts`: normalised address → subscriber ULID (de-duplication)
//! - `unsubscribe`: unsubscribe token → subscriber ULID
//! - outbox trees (`broadcasts`, `deliveries`, `due`, `inflight`, `receipts`): see [`outbox`]
//! - scheduler trees (`notices`, `messages`, `holds`): see [`schedule`]
//! - `alerts`: monitoring alert groups, see [`intake`]
//! - `threads`: incident ULID ‖ channel → the social thread's root and last post: see [`threads`]
//! - users and tokens (`users`, `credentials`, `tokens`, `token_hashes`): see [`users`]
//! - the audit log (`audit`, `audit_head`): see [`audit`]
//! - writes waiting for a second person (`approvals`): see [`approvals`]
//! - browser sessions and TOTP second factors (`sessions`, `totp`): see [`sessions`]
//! - incident templates (`templates`): see [`templates`]
//!
//! Every mutating method returns only after the change is on disk (see [`flusher`]: one `flush()`
//! plus one `fdatasync` per group of concurrent writers), so an acknowledged write survives
//! `kill -9` and power loss.
//!
//! Incident writes do not use sled transactions: in sled 0.34 every transaction seals and writes
//! its own IO buffer (`pin_log`), one `pwrite` + `sync_file_range` per request, which defeats group
//! commit. Instead a write lock serialises read-check-write, and the two records of a change are
//! written in an order that crash recovery can repair: sled recovers a prefix of its log, so a
//! crash can leave at most the first record of an unacknowledged change, which [`SledStore::open`]
//! removes (see [`SledStore::repair`]). Subscriber changes, rarer and spread over three trees, keep
//! using transactions, whose closures have no side effects (sled may run them more than once).
//!
//! This module is the store's port and its sled backend. [`Store`], the handle the rest of crier
//! holds, is an enum of backends; [`port`] defines the interface in domain terms, one trait per
//! aggregate, so a PostgreSQL backend (issue 16) is one more variant. [`SledStore`] is the sled
//! backend: no sled type appears in its public signatures (sled's errors are wrapped in
//! [`BackendError`]; the flusher and the mark are crate-private). The business rules a backend
//! applies are the domain's pure functions (`domain::apply_update`, `domain::open_incident`,
//! `domain::IncidentFilter::view`, `domain::ExpandTarget::reaches`), not this module's. The
//! store reads the server's injected clock (`Store::open_with_clock`), never the wall clock by
//! itself. Every aggregate is behind a trait of [`port`]; `Store` has no `Deref` to a backend, so
//! what only sled has (its listings for `crier store migrate`, checksums, test hooks) is reached
//! through [`Store::as_sled`] and says so at the call.

pub mod approvals;
pub mod audit;
pub mod backup;
pub mod codec;
pub mod export;
pub(crate) mod flusher;
pub mod health;
pub mod history;
pub mod intake;
pub(crate) mod mark;
pub mod outbox;
pub mod port;
pub mod schedule;
pub mod sessions;
pub mod signup;
pub mod templates;
pub mod threads;
pub mod users;

use crate::clock::Clock;
use crate::domain::{
    apply_update, open_incident, Appended, Broadcast, Component, ComponentName, ComponentStatus,
    Contact, Decision, DomainError, ImportCounts, Incident, IncidentFilter, Locale, NewIncident,
    NewSubscriber, NewUpdate, Subscriber, Update,
};
use chrono::{DateTime, Utc};
use health::Health;
use serde::{de::DeserializeOwned, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};
use sled::Tree;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, Weak};
use ulid::Ulid;

use flusher::Flusher;
pub use flusher::{FlushError, FlushStats};
use port::{Components, Incidents, Subscribers};

/// The layout version this build writes. Opening a directory written with a newer one is refused.
pub const SCHEMA_VERSION: u32 = 1;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error("{what} {id} not found")]
    NotFound { what: &'static str, id: String },
    #[error("{0}")]
    Conflict(String),
    #[error("storage error: {0}")]
    Backend(#[from] BackendError),
    #[error("a stored record could not be read ({0}); the data directory may be damaged")]
    Corrupt(String),
    #[error(transparent)]
    Flush(#[from] FlushError),
    #[error("the store cannot write to disk ({0}); reads and writes are refused until it recovers: free space in the data directory, crier retries by itself")]
    Broken(String),
    #[error("the store in {} is damaged: {why}; do not serve from it: restore your latest backup with `crier restore FILE --data {} --force` (the damaged store is kept aside as db.replaced-<time>), or restore into a new directory and start crier there", .dir.display(), .dir.parent().unwrap_or(.dir).display())]
    Damaged { dir: PathBuf, why: String },
    #[error("the data directory {} is read-only ({why}); make it writable for the user running crier, or choose another with --data", .dir.display())]
    ReadOnly { dir: PathBuf, why: String },
    #[error("the data directory {} is in use by another crier process (its lock is held); stop that process or choose another directory with --data", .0.display())]
    Locked(PathBuf),
    #[error("cannot use the files in {}: {why}; check free space and permissions of the data directory", .dir.display())]
    Files { dir: PathBuf, why: String },
    #[error("the data directory was written by a newer crier (schema {found}; this build knows {known}); upgrade crier")]
    Schema { found: u32, known: u32 },
}

/// A failure of the storage engine itself (an I/O error, a damaged file), as its message. The
/// engine's own error type stays inside the backend: callers match on [`StoreError`]'s variants,
/// never on sled's (issue 16: the store as a port).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BackendError(Engine);

/// Which engine failed: sled's own error, or another backend's, as its message (PostgreSQL's
/// errors are mapped in `pg::store`, with no password or password-bearing URL in them).
#[derive(Debug, thiserror::Error)]
enum Engine {
    #[error("{0}")]
    Sled(sled::Error),
    #[error("{0}")]
    Other(String),
}

impl BackendError {
    /// A failure of a backend other than sled, as its message (which must carry no secret).
    pub fn message(msg: impl Into<String>) -> Self {
        BackendError(Engine::Other(msg.into()))
    }
}

impl From<sled::Error> for StoreError {
    fn from(e: sled::Error) -> Self {
        StoreError::Backend(BackendError(Engine::Sled(e)))
    }
}

impl From<TransactionError<StoreError>> for StoreError {
    fn from(e: TransactionError<StoreError>) -> Self {
        match e {
            TransactionError::Abort(e) => e,
            TransactionError::Storage(e) => e.into(),
        }
    }
}

type TxResult<T> = Result<T, ConflictableTransactionError<StoreError>>;

fn abort<T>(e: impl Into<StoreError>) -> TxResult<T> {
    Err(ConflictableTransactionError::Abort(e.into()))
}

fn encode<T: Serialize>(v: &T) -> Result<Vec<u8>, StoreError> {
    // Sized for a typical record, so serde_json does not grow the buffer field by field.
    let mut out = Vec::with_capacity(512);
    serde_json::to_writer(&mut out, v).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok(out)
}

fn decode<T: DeserializeOwned>(b: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(b).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// Re-opens the store after each failure: first after a second, then backing off to 30 s, until
/// a commit succeeds (space was freed). Holds only a weak handle, so it ends with the store.
async fn supervise(store: Weak<Inner>, health: Arc<Health>) {
    loop {
        health.wake.notified().await;
        let mut delay = std::time::Duration::from_secs(1);
        while health.broken().is_some() {
            tokio::time::sleep(delay).await;
            let Some(inner) = store.upgrade() else { return };
            if let Err(e) = (SledStore { inner }).recover().await {
                tracing::warn!(error = %e, retry_in_s = delay.as_secs(), "the store is still broken");
            }
            delay = (delay * 2).min(std::time::Duration::from_secs(30));
        }
        if store.strong_count() == 0 {
            return;
        }
    }
}

/// An update's key: incident ULID ‖ its position in the timeline (u32 BE, from 1). The position,
/// not the update's ULID, orders the timeline: ULIDs made in the same millisecond are not ordered,
/// and a clock step back would misorder them.
pub(crate) fn update_key(incident: Ulid, seq: u32) -> [u8; 20] {
    let mut k = [0u8; 20];
    k[..16].copy_from_slice(&incident.to_bytes());
    k[16..].copy_from_slice(&seq.to_be_bytes());
    k
}

/// Why a draft may not set component statuses.
pub fn no_statuses_in_drafts() -> DomainError {
    DomainError::invalid(
        "component_statuses",
        "a draft changes no component; choose the new statuses when you publish it (or post an update with them)",
    )
}

/// Why a write may not set the status of component `name`: there is no such component.
pub(crate) fn unknown_status_component(name: &ComponentName) -> DomainError {
    DomainError::invalid(
        "component_statuses",
        format!("unknown component \"{name}\": create it first with `crier component set {name} operational`, or check the spelling (`crier component list`)"),
    )
}

/// An audit summary with the component changes of the same write appended.
pub(crate) fn with_components(mut summary: String, changed: &[String]) -> String {
    if !changed.is_empty() {
        summary.push_str("; components: ");
        summary.push_str(&changed.join(", "));
    }
    summary
}

/// Subscribers written per transaction by an import (see `SledStore::import_subscribers`), and rows
/// parsed and written at a time by `POST /api/v1/subscribers/import`.
pub const IMPORT_CHUNK: usize = 2_000;

/// sled's page-cache budget (see `SledStore::open`).
pub const STORE_CACHE_BYTES: u64 = 32 * 1024 * 1024;

/// Stripes of the per-incident write lock (see `SledStore::lock`).
const WRITE_LOCK_STRIPES: usize = 64;

/// A held incident write lock and the write pause (see `SledStore::lock`).
struct WriteGuard<'a> {
    _stripe: MutexGuard<'a, ()>,
    _pause: std::sync::RwLockReadGuard<'a, ()>,
}

/// The store crier holds: the open backend, behind the port's traits ([`port`]); cheap to
/// clone. One backend today (sled); a PostgreSQL backend is one more variant, and one more arm
/// in each method of [`port`]'s impls for `Store`.
///
/// Every aggregate is a trait of [`port`] implemented for `Store`; health and lifecycle
/// (`ready`, `broken`, `durable`, `close`, …) are `Store`'s own methods matching on the backend.
#[derive(Clone, Debug)]
pub enum Store {
    Sled(SledStore),
    /// PostgreSQL, shared by several nodes (docs/POSTGRES.md).
    Pg(Box<crate::pg::store::PgStore>),
}

/// A lock across nodes held by [`Store::exclusive`]; [`Exclusive::release`] frees it (a dropped
/// one is freed too, by closing its connection).
#[derive(Debug)]
pub struct Exclusive(Option<crate::pg::store::Held>);

impl Exclusive {
    pub async fn release(self) {
        if let Some(h) = self.0 {
            h.release().await;
        }
    }
}

impl Store {
    /// Whether other processes may write the same store (PostgreSQL: more than one node).
    /// What a node caches from the store must then be re-read, not kept.
    pub fn is_shared(&self) -> bool {
        matches!(self, Store::Pg(_))
    }

    /// Holds the lock named `name` across every node until the guard is released (or dropped),
    /// for a read-decide-write sequence that spans several calls (the intake's handling of one
    /// alert group). With sled there is one node, whose own mutex is enough: nothing is taken.
    pub async fn exclusive(&self, name: &str) -> Result<Exclusive, StoreError> {
        match self {
            Store::Sled(_) => Ok(Exclusive(None)),
            Store::Pg(p) => Ok(Exclusive(Some(p.exclusive(name).await?))),
        }
    }

    /// The sled backend, when that is the one open: for what only sled has (its listings for
    /// `crier store migrate`, checksums and test hooks).
    pub fn as_sled(&self) -> Option<&SledStore> {
        match self {
            Store::Sled(s) => Some(s),
            Store::Pg(_) => None,
        }
    }

    /// Opens (or creates) the sled store in `dir` on the system's wall clock.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        SledStore::open(dir).map(Store::Sled)
    }

    /// Opens the sled store in `dir` reading `clock` (see [`SledStore::open_with_clock`]).
    pub fn open_with_clock(dir: &Path, clock: Clock) -> Result<Store, StoreError> {
        SledStore::open_with_clock(dir, clock).map(Store::Sled)
    }

    /// Closes the store and returns once its directory can be opened again
    /// ([`SledStore::close`]).
    pub async fn close(self) -> Result<(), StoreError> {
        match self {
            Store::Sled(s) => s.close().await,
            Store::Pg(p) => {
                p.close();
                Ok(())
            }
        }
    }

    // Health and lifecycle: what the server, `/healthz`, `/readyz` and `/metrics` ask of
    // whichever backend is open. The sled backend's own machinery (re-opening after a failed
    // flush, `SledStore::recover`; repairing an interrupted write at open, `SledStore::repair`)
    // runs inside it and is not asked for from here.

    /// The clock the store reads (the server's, see [`Store::open_with_clock`]).
    pub fn clock(&self) -> Clock {
        match self {
            Store::Sled(s) => s.clock(),
            Store::Pg(p) => p.clock(),
        }
    }

    /// The data directory crier was started with; temporary backup files go there.
    pub fn data_dir(&self) -> PathBuf {
        match self {
            Store::Sled(s) => s.data_dir(),
            // Backups are refused on PostgreSQL (pg_dump is the tool); a scratch file of the
            // refused request goes to the system's temporary directory.
            Store::Pg(_) => std::env::temp_dir(),
        }
    }

    /// Whether the store is refusing service after a failed write to disk, and why since when
    /// (`/healthz`).
    pub fn broken(&self) -> Option<health::Broken> {
        match self {
            Store::Sled(s) => s.broken(),
            // A failed statement fails its own request; the pool reconnects on the next.
            Store::Pg(_) => None,
        }
    }

    /// What was not saved, for the shutdown message: `None` if every write reached the disk.
    pub fn unsaved(&self) -> Option<String> {
        match self {
            Store::Sled(s) => s.unsaved(),
            // Every answered write was committed.
            Store::Pg(_) => None,
        }
    }

    /// Waits until every write made so far is durable (the final flush at shutdown).
    pub async fn durable(&self) -> Result<(), StoreError> {
        match self {
            Store::Sled(s) => s.durable().await,
            Store::Pg(_) => Ok(()),
        }
    }

    /// Readiness probe: the store answers and takes writes to disk (`/readyz`).
    pub async fn ready(&self) -> Result<(), StoreError> {
        match self {
            Store::Sled(s) => s.ready().await,
            Store::Pg(p) => p.ready().await,
        }
    }

    /// Group-commit counters since the store was (re-)opened; `None` for a backend that has
    /// no group commit of its own (a database commits each transaction itself).
    pub fn flush_stats(&self) -> Option<FlushStats> {
        match self {
            Store::Sled(s) => Some(s.flush_stats()),
            Store::Pg(_) => None,
        }
    }

    /// A checksum over the stored state except the audit log and the commit counter: equal
    /// before and after means nothing was written (tests prove refusals write nothing with it).
    /// Each backend sums its own records, so two backends' checksums are not comparable.
    pub async fn checksum(&self) -> Result<u32, StoreError> {
        match self {
            Store::Sled(s) => s.checksum(),
            Store::Pg(p) => p.checksum().await,
        }
    }
}

/// The sled backend's handle; cheap to clone. The sled database sits in a swappable cell: after a
/// failed group commit the store is broken and refuses reads and writes until the recovery task
/// has re-opened the database from disk (see [`health`] and `SledStore::recover`).
#[derive(Clone, Debug)]
pub struct SledStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// The open database; `None` while it is being re-opened.
    cell: RwLock<Option<Arc<Trees>>>,
    /// sled's directory.
    dir: PathBuf,
    health: Arc<Health>,
    /// Serialise read-check-write sequences on one incident (held for microseconds, never across
    /// an await or a flush). Striped by incident id: writers to different incidents rarely share
    /// a stripe, so they do not park each other's runtime workers on one global mutex.
    write_locks: Box<[Mutex<()>]>,
    /// Serialises every read-check-write of components' statuses (`set_component`,
    /// `restore_components`, an incident opened or updated with `statuses`), so that no write
    /// reads a status another is about to replace (see `SledStore::component_lock`). Taken after
    /// the write pause and an incident's lock, before the audit lock; never across an await.
    component_lock: Mutex<()>,
    /// The write pause: every write section holds it shared, a backup exclusively while it
    /// iterates, so the backup is one consistent state (see [`backup`]).
    pause: RwLock<()>,
    /// Woken when a backup releases the write pause (writers wait for it without blocking a
    /// runtime thread: see `SledStore::writing_async`).
    resumed: tokio::sync::Notify,
    /// Deliveries this process has claimed and not yet recorded, each with the due entry it was
    /// claimed through. A claim is only this: its due entry stays in the store until the outcome
    /// is recorded, so a crash leaves every unfinished delivery due again, with no write per
    /// claim (see [`outbox`]).
    claimed: Mutex<std::collections::HashMap<[u8; outbox::DELIVERY_KEY_LEN], Vec<u8>>>,
    /// Bumped after every write the public pages show (incidents, updates, components): the
    /// pages' render cache is valid while it is unchanged (see [`Components::public_generation`]).
    public_gen: std::sync::atomic::AtomicU64,
    /// crier's one clock, as the server injected it (see [`SledStore::open_with_clock`]).
    clock: Clock,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Lets the recovery task notice that the store is gone and end.
        self.health.wake.notify_one();
    }
}

/// One opened sled database: its trees and its flusher. Every store method takes one snapshot
/// of it and uses it throughout, so a write and its flush always go to the same database.
#[derive(Debug)]
pub(crate) struct Trees {
    db: sled::Db,
    incidents: Tree,
    updates: Tree,
    components: Tree,
    component_history: Tree,
    subscribers: Tree,
    contacts: Tree,
    unsubscribe: Tree,
    broadcasts: Tree,
    deliveries: Tree,
    due: Tree,
    inflight: Tree,
    receipts: Tree,
    notices: Tree,
    messages: Tree,
    holds: Tree,
    alerts: Tree,
    threads: Tree,
    users: Tree,
    credentials: Tree,
    tokens: Tree,
    token_hashes: Tree,
    audit: Tree,
    audit_head: Tree,
    approvals: Tree,
    sessions: Tree,
    totp: Tree,
    templates: Tree,
    /// Serialises audit appends and holds the chain's last entry (number and hash), read from
    /// `audit` on first use; see [`audit`].
    audit_chain: Mutex<Option<audit::ChainHead>>,
    /// Tests cut the log off at a chosen record (see [`Trees::put`]).
    #[cfg(test)]
    crash: CrashPoint,
    flusher: Flusher,
    health: Arc<Health>,
}

impl Trees {
    /// Opens sled in `dir`, checks its schema and high-water mark, removes the leftovers of
    /// interrupted writes and starts a flusher.
    fn open(dir: &Path, health: Arc<Health>) -> Result<Trees, StoreError> {
        // sled reports damage it meets while reading its log as corruption or a short read.
        Trees::open_checked(dir, health).map_err(|e| match e {
            StoreError::Backend(BackendError(Engine::Sled(sled::Error::Corruption { .. }))) => {
                StoreError::Damaged {
                    dir: dir.to_owned(),
                    why: e.to_string(),
                }
            }
            StoreError::Backend(BackendError(Engine::Sled(sled::Error::Io(io))))
                if io.kind() == std::io::ErrorKind::UnexpectedEof =>
            {
                StoreError::Damaged {
                    dir: dir.to_owned(),
                    why: format!("a file ends early ({io})"),
                }
            }
            other => other,
        })
    }

    fn open_checked(dir: &Path, health: Arc<Health>) -> Result<Trees, StoreError> {
        let config = sled::Config::new()
            .path(dir)
            .mode(sled::Mode::HighThroughput)
            // sled's default page cache is 1 GiB; crier's working set is the recent incidents
            // and the due-index, so a small cache keeps memory flat with millions of deliveries.
            // sled counts a page at its serialized size; in memory each small record also
            // carries its allocations, so the resident cost is well above the figure given here
            // (a 1,000,000-subscriber fan-out peaked at 277 MiB with 64 MiB).
            .cache_capacity(STORE_CACHE_BYTES)
            // Only the flusher writes the log: a background flush could put a write on disk
            // whose group commit then fails, and the re-open after a failure must find only
            // what was flushed before it.
            .flush_every_ms(None);
        // sled 0.34 panics on some damaged logs (an index out of bounds in its segment
        // accounting) instead of returning an error; that is a damaged store, not a crash.
        let db = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| config.open()))
            .map_err(|_| StoreError::Damaged {
                dir: dir.to_owned(),
                why: "sled could not read its log".into(),
            })?
            .map_err(|e| open_error(dir, e))?;
        let meta = db.open_tree("meta")?;
        match meta.get("schema_version")? {
            None => {
                meta.insert("schema_version", &SCHEMA_VERSION.to_be_bytes())?;
                db.flush()?;
            }
            Some(v) => {
                let found = <[u8; 4]>::try_from(v.as_ref())
                    .map(u32::from_be_bytes)
                    .map_err(|_| StoreError::Corrupt("schema_version is not 4 bytes".into()))?;
                if found > SCHEMA_VERSION {
                    return Err(StoreError::Schema {
                        found,
                        known: SCHEMA_VERSION,
                    });
                }
            }
        }
        let commit = match meta.get(mark::COMMIT_KEY)? {
            None => 0,
            Some(v) => <[u8; 8]>::try_from(v.as_ref())
                .map(u64::from_be_bytes)
                .map_err(|_| StoreError::Damaged {
                    dir: dir.to_owned(),
                    why: "its commit number is not 8 bytes".into(),
                })?,
        };
        let marked = mark::read(dir).map_err(|e| StoreError::Damaged {
            dir: dir.to_owned(),
            why: format!("its high-water mark cannot be read ({e})"),
        })?;
        if let Some(m) = marked {
            if commit < m {
                return Err(StoreError::Damaged {
                    dir: dir.to_owned(),
                    why: format!(
                        "commit {m} was acknowledged but the data ends at commit {commit}: acknowledged writes are missing (truncated or damaged files)"
                    ),
                });
            }
        }
        let mark = mark::Mark::create(dir, commit).map_err(|e| file_error(dir, e))?;
        restrict(dir).map_err(|e| file_error(dir, e))?;
        let trees = Trees {
            incidents: db.open_tree("incidents")?,
            updates: db.open_tree("updates")?,
            components: db.open_tree("components")?,
            component_history: db.open_tree(history::TREE)?,
            subscribers: db.open_tree("subscribers")?,
            contacts: db.open_tree("contacts")?,
            unsubscribe: db.open_tree("unsubscribe")?,
            broadcasts: db.open_tree("broadcasts")?,
            deliveries: db.open_tree("deliveries")?,
            due: db.open_tree("due")?,
            inflight: db.open_tree("inflight")?,
            receipts: db.open_tree("receipts")?,
            notices: db.open_tree("notices")?,
            messages: db.open_tree("messages")?,
            holds: db.open_tree("holds")?,
            alerts: db.open_tree("alerts")?,
            threads: db.open_tree("threads")?,
            users: db.open_tree("users")?,
            credentials: db.open_tree("credentials")?,
            tokens: db.open_tree("tokens")?,
            token_hashes: db.open_tree("token_hashes")?,
            audit: db.open_tree("audit")?,
            audit_head: db.open_tree("audit_head")?,
            approvals: db.open_tree("approvals")?,
            sessions: db.open_tree("sessions")?,
            totp: db.open_tree("totp")?,
            templates: db.open_tree("templates")?,
            audit_chain: Mutex::new(None),
            #[cfg(test)]
            crash: CrashPoint::default(),
            flusher: Flusher::spawn(db.clone(), dir, commit, mark, health.clone())?,
            health,
            db,
        };
        let repaired = trees.repair()?;
        if repaired > 0 {
            tracing::warn!(
                records = repaired,
                "removed the partial records of writes that were interrupted by a crash before they were acknowledged"
            );
            trees.db.flush()?;
        }
        Ok(trees)
    }

    /// Inserts a record of a write whose order crash recovery relies on (an audited change,
    /// an audit entry and its head). Tests cut the log off here ([`CrashPoint`]): the records
    /// after the chosen one are never written, as sled recovers a prefix of its log after a
    /// crash.
    fn put(
        &self,
        tree: &Tree,
        key: impl AsRef<[u8]>,
        value: impl Into<sled::IVec>,
    ) -> Result<(), StoreError> {
        #[cfg(test)]
        if self.crash.cuts() {
            return Ok(());
        }
        tree.insert(key.as_ref(), value)?;
        Ok(())
    }

    /// Waits until every write made so far to this database is on disk (group commit).
    async fn durable(&self) -> Result<(), StoreError> {
        match self.flusher.durable().await {
            Ok(()) => Ok(()),
            Err(e) => Err(match self.health.broken() {
                Some(b) => StoreError::Broken(b.reason),
                None => e.into(),
            }),
        }
    }

    /// Removes what an interrupted, unacknowledged incident write left behind. Opening writes the
    /// incident (with `update_count` 1) first, then update 1; appending writes update n+1 first,
    /// then the incident with `update_count` n+1. After a crash sled holds a prefix of those
    /// writes, so the only possible leftovers are an incident whose first update is missing and
    /// updates past their incident's `update_count`. Returns how many records it removed.
    fn repair(&self) -> Result<usize, StoreError> {
        let t = self;
        // An audit entry whose change is missing (see [`audit`]).
        let mut removed = t.repair_audit()?;
        // A component history record whose component change a crash cut off.
        removed += history::repair(t)?;
        for item in t.incidents.iter() {
            let (key, raw) = item?;
            let incident: Incident = decode(&raw)?;
            let n = incident.update_count;
            if !t.updates.contains_key(update_key(incident.id, n))? {
                if n == 1 {
                    t.incidents.remove(&key)?;
                    removed += 1;
                    for k in t.broadcasts.scan_prefix(incident.id.to_bytes()).keys() {
                        t.broadcasts.remove(k?)?;
                        removed += 1;
                    }
                    continue;
                }
                return Err(StoreError::Corrupt(format!(
                    "incident {} has {n} updates but update {n} is missing",
                    incident.id
                )));
            }
            let orphans: Vec<sled::IVec> = t
                .updates
                .range(
                    update_key(incident.id, n.saturating_add(1))
                        ..=update_key(incident.id, u32::MAX),
                )
                .keys()
                .collect::<Result<_, _>>()?;
            for k in orphans {
                t.updates.remove(k)?;
                removed += 1;
            }
            let after = outbox::broadcast_key(incident.id, n.saturating_add(1), "").to_vec();
            // Broadcasts of standalone messages (reminders) sit above the timeline's range.
            let end = SledStore::standalone_broadcast_floor(incident.id);
            let stale: Vec<sled::IVec> = t
                .broadcasts
                .range(after..end)
                .keys()
                .collect::<Result<_, _>>()?;
            for k in stale {
                t.broadcasts.remove(k)?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}

/// A simulated crash for tests: after `after` more records written with [`Trees::put`], no
/// record is written any more.
#[cfg(test)]
#[derive(Debug, Default)]
pub(crate) struct CrashPoint {
    after: Mutex<Option<usize>>,
    cut: std::sync::atomic::AtomicBool,
}

#[cfg(test)]
impl CrashPoint {
    /// Lets `n` more records through, then none.
    pub(crate) fn after(&self, n: usize) {
        *self.after.lock().unwrap() = Some(n);
    }

    /// Whether a record was held back.
    pub(crate) fn was_cut(&self) -> bool {
        self.cut.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn cuts(&self) -> bool {
        let mut after = self.after.lock().unwrap();
        match after.as_mut() {
            None => false,
            Some(0) => {
                self.cut.store(true, std::sync::atomic::Ordering::SeqCst);
                true
            }
            Some(n) => {
                *n -= 1;
                false
            }
        }
    }
}

/// Creates `dir` (and its parents) if needed and makes it private to the user running crier
/// (mode 0700): the store holds subscribers' addresses.
pub fn private_dir(dir: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .and_then(|()| std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)))
        .map_err(|e| file_error(dir, e))
}

/// An I/O error on the data directory: read-only gets its own message.
fn file_error(dir: &Path, e: std::io::Error) -> StoreError {
    if e.kind() == std::io::ErrorKind::PermissionDenied
        || e.kind() == std::io::ErrorKind::ReadOnlyFilesystem
    {
        StoreError::ReadOnly {
            dir: dir.to_owned(),
            why: e.to_string(),
        }
    } else {
        StoreError::Files {
            dir: dir.to_owned(),
            why: e.to_string(),
        }
    }
}

/// Makes everything sled created under `dir` private: directories 0700, files 0600. Files sled
/// creates later (snapshots) sit inside these directories, which others cannot enter.
fn restrict(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            restrict(&entry.path())?;
        } else {
            std::fs::set_permissions(entry.path(), std::fs::Permissions::from_mode(0o600))?;
        }
    }
    Ok(())
}

/// How long [`SledStore::close`] waits for the database to be released.
pub const CLOSE_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Waits (at most [`CLOSE_WAIT`]) until sled's lock on `<dir>/db` is free: its IO threads may
/// hold it for a moment after the last handle on the database was dropped.
pub(crate) async fn wait_released(dir: &Path) -> Result<(), StoreError> {
    tokio::time::timeout(CLOSE_WAIT, wait_unlocked(dir))
        .await
        .unwrap_or_else(|_| Err(StoreError::Locked(dir.to_owned())))
}

/// Waits until sled's exclusive lock on `<dir>/db` is free (sled takes it with `flock`; a probe
/// of our own on a new open file description conflicts with it while it is held).
async fn wait_unlocked(dir: &Path) -> Result<(), StoreError> {
    let path = dir.join("db");
    loop {
        let file = match std::fs::File::open(&path) {
            Ok(f) => f,
            // Never created: nothing holds it.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(sled::Error::Io(e).into()),
        };
        match file.try_lock() {
            Ok(()) => return Ok(()),
            Err(std::fs::TryLockError::WouldBlock) => {
                drop(file);
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(sled::Error::Io(e).into()),
        }
    }
}

/// Why sled would not open `dir`, in words that say what to do.
fn open_error(dir: &Path, e: sled::Error) -> StoreError {
    if let sled::Error::Io(io) = &e {
        if io.kind() == std::io::ErrorKind::WouldBlock
            || io.to_string().contains("could not acquire lock")
        {
            return StoreError::Locked(dir.to_owned());
        }
        if io.kind() == std::io::ErrorKind::PermissionDenied
            || io.kind() == std::io::ErrorKind::ReadOnlyFilesystem
        {
            return StoreError::ReadOnly {
                dir: dir.to_owned(),
                why: io.to_string(),
            };
        }
    }
    if let sled::Error::Corruption { .. } = &e {
        return StoreError::Damaged {
            dir: dir.to_owned(),
            why: e.to_string(),
        };
    }
    e.into()
}

impl SledStore {
    /// Opens (or creates) the store under `dir` and starts its flusher task. Must be called inside
    /// a tokio runtime.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        SledStore::open_with_clock(dir, Clock::wall())
    }

    /// [`SledStore::open`] with the server's clock: every instant the store decides by itself (a
    /// backup's creation time, since when it is broken) is read from `clock`, never from the
    /// system directly, so a rehearsal (`clock_start`) or a test's paused time moves them too.
    pub fn open_with_clock(dir: &Path, clock: Clock) -> Result<Self, StoreError> {
        let health = Arc::new(Health::new(clock));
        let trees = Trees::open(dir, health.clone())?;
        let inner = Arc::new(Inner {
            cell: RwLock::new(Some(Arc::new(trees))),
            dir: dir.to_owned(),
            health: health.clone(),
            write_locks: (0..WRITE_LOCK_STRIPES).map(|_| Mutex::new(())).collect(),
            component_lock: Mutex::new(()),
            pause: RwLock::new(()),
            resumed: tokio::sync::Notify::new(),
            claimed: Mutex::default(),
            public_gen: Default::default(),
            clock,
        });
        tokio::spawn(supervise(Arc::downgrade(&inner), health));
        Ok(SledStore { inner })
    }

    /// Closes the store for every clone of this handle (their calls answer "being re-opened"
    /// from now on) and returns once the directory can be opened again: the flusher task has
    /// ended and dropped its database handle, and sled's file lock on `<dir>/db` is free (sled's
    /// IO threads may hold it for a moment after its last handle is gone). Writes acknowledged
    /// before are on disk already (group commit); nothing is flushed here. Waits at most
    /// [`CLOSE_WAIT`] for an operation still holding the database to finish.
    pub async fn close(self) -> Result<(), StoreError> {
        let trees = self
            .inner
            .cell
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let dir = self.inner.dir.clone();
        drop(self);
        let ended = async {
            if let Some(trees) = trees {
                let ended = trees.flusher.ended();
                drop(trees);
                ended.await;
            }
        };
        if tokio::time::timeout(CLOSE_WAIT, ended).await.is_err() {
            return Err(StoreError::Locked(dir));
        }
        wait_released(&dir).await
    }

    /// The open database, or why the store refuses service.
    pub(crate) fn t(&self) -> Result<Arc<Trees>, StoreError> {
        if let Some(b) = self.inner.health.broken() {
            return Err(StoreError::Broken(b.reason));
        }
        self.inner
            .cell
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or_else(|| StoreError::Broken("the store is being re-opened".into()))
    }

    /// The clock the store reads (see [`SledStore::open_with_clock`]).
    pub fn clock(&self) -> Clock {
        self.inner.clock
    }

    /// The data directory holding the store (`<data>/db`); temporary backup files go there.
    pub fn data_dir(&self) -> PathBuf {
        match self.inner.dir.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => self.inner.dir.clone(),
        }
    }

    /// Whether the store is refusing service after a failed write to disk, and why.
    pub fn broken(&self) -> Option<health::Broken> {
        self.inner.health.broken()
    }

    /// What was not saved, for the shutdown message: `None` if every write reached the disk.
    pub fn unsaved(&self) -> Option<String> {
        let failed = self.inner.health.failed_writes();
        match self.broken() {
            Some(b) => Some(format!(
                "the store could not write to disk since {} ({}); {failed} write(s) were answered with an error and not saved; everything acknowledged before is on disk",
                b.since.to_rfc3339(), b.reason
            )),
            None if failed > 0 => Some(format!(
                "{failed} write(s) were answered with an error after a failed flush and not saved; the store recovered and everything acknowledged is on disk"
            )),
            None => None,
        }
    }

    /// Re-opens the database from disk after a failed flush, which drops every write that was
    /// not flushed (sled applies writes in memory first; the failed ones were answered with an
    /// error and must never be served). The new database must take a commit before it is used;
    /// until then the store stays broken. Returns whether the store is healthy again.
    pub async fn recover(&self) -> Result<(), StoreError> {
        if self.inner.health.broken().is_none() {
            return Ok(());
        }
        // Drop this handle on the old database; in-flight operations drop theirs when they end
        // (sled's file lock makes the open below fail until then, and we try again later).
        let old = self
            .inner
            .cell
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        drop(old);
        let (dir, health) = (self.inner.dir.clone(), self.inner.health.clone());
        let trees = tokio::task::spawn_blocking(move || Trees::open(&dir, health))
            .await
            .map_err(|e| StoreError::Broken(format!("re-open task failed: {e}")))??;
        // A commit proves the disk takes writes again (space was freed).
        trees.flusher.durable().await?;
        *self.inner.cell.write().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(trees));
        self.inner.health.recovered();
        tracing::info!("the store re-opened its data from disk and accepts writes again");
        Ok(())
    }

    /// Removes what an interrupted, unacknowledged incident write left behind (see
    /// `Trees::repair`); `SledStore::open` runs it.
    pub fn repair(&self) -> Result<usize, StoreError> {
        self.t()?.repair()
    }

    /// The write lock of incident (or message origin) `id`, with the write pause (taken first,
    /// so a backup never waits for a writer that waits for a stripe it could not get).
    async fn lock(&self, id: Ulid) -> WriteGuard<'_> {
        let pause = self.writing_async().await;
        // A ULID's low 80 bits are random, so the low bits spread incidents over the stripes.
        let stripe = (u128::from(id) % self.inner.write_locks.len() as u128) as usize;
        // A panic while holding the lock cannot leave a half-applied change behind that the
        // next writer would build on (records are only written at the end), so poisoning is
        // safe to clear.
        let stripe = self.inner.write_locks[stripe]
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        WriteGuard {
            _stripe: stripe,
            _pause: pause,
        }
    }

    /// The component lock (see `Inner::component_lock`). The caller holds the write pause.
    fn component_lock(&self) -> MutexGuard<'_, ()> {
        // Records are written only at the end of a section, so a panic under the lock leaves
        // nothing half-applied: poisoning is safe to clear.
        self.inner
            .component_lock
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// The components `statuses` set, as they will be written, each with its change for the
    /// audit entry (`Check-in: operational → major_outage`); a component already in its new
    /// status is left out. Refuses an unknown component, naming it, before anything is written.
    /// The caller holds the component lock.
    fn component_changes(
        &self,
        t: &Trees,
        statuses: &[(ComponentName, ComponentStatus)],
        now: DateTime<Utc>,
    ) -> Result<(Vec<Component>, Vec<String>), StoreError> {
        let (mut set, mut said) = (Vec::new(), Vec::new());
        for (name, status) in statuses {
            let Some(raw) = t.components.get(name.as_str())? else {
                return Err(unknown_status_component(name).into());
            };
            let mut c: Component = decode(&raw)?;
            if c.status == *status || set.iter().any(|s: &Component| s.name == *name) {
                continue;
            }
            said.push(format!(
                "{name}: {} → {}",
                c.status.as_str(),
                status.as_str()
            ));
            c.status = *status;
            // Never before the change it replaces (a writer that read the clock before waiting
            // for the lock), so the history's last record is the status the component has.
            c.updated_at = now.max(c.updated_at);
            set.push(c);
        }
        Ok((set, said))
    }

    /// Waits until every write made so far is on disk (group commit).
    pub async fn durable(&self) -> Result<(), StoreError> {
        self.t()?.durable().await
    }

    /// Group-commit counters since the database was (re-)opened.
    pub fn flush_stats(&self) -> FlushStats {
        match self.t() {
            Ok(t) => t.flusher.stats(),
            Err(_) => FlushStats {
                syncs: 0,
                waiters: 0,
            },
        }
    }

    /// A checksum over every tree: equal before and after means nothing was written. Tests use it
    /// to prove that rejected requests write nothing. (The commit number in `meta` advances with
    /// every group commit, so it is left out; so is the audit log, which records requests rather
    /// than state: an accepted request that changes nothing still has its entry.)
    pub fn checksum(&self) -> Result<u32, StoreError> {
        use sha2::{Digest, Sha256};
        let t = self.t()?;
        let mut hasher = Sha256::new();
        // Sorted: sled lists its trees in no fixed order, and two stores holding the same
        // records (a restored backup and its origin) must agree.
        let mut names = t.db.tree_names();
        names.sort();
        for name in names {
            if matches!(name.as_ref(), b"meta" | b"audit" | b"audit_head") {
                continue;
            }
            hasher.update((name.len() as u64).to_be_bytes());
            hasher.update(&name);
            for kv in t.db.open_tree(&name)?.iter() {
                let (k, v) = kv?;
                hasher.update((k.len() as u64).to_be_bytes());
                hasher.update(&k);
                hasher.update((v.len() as u64).to_be_bytes());
                hasher.update(&v);
            }
        }
        let d = hasher.finalize();
        Ok(u32::from_be_bytes([d[0], d[1], d[2], d[3]]))
    }

    /// Readiness probe: the trees answer and the flusher is alive.
    pub async fn ready(&self) -> Result<(), StoreError> {
        let t = self.t()?;
        t.incidents.first()?;
        t.durable().await
    }

    /// Writes the broadcasts of update `seq` (before the update itself; see the module docs).
    fn write_broadcasts(
        &self,
        t: &Trees,
        incident: Ulid,
        seq: u32,
        update_id: Ulid,
        channels: &[(String, bool)],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        for (channel, subscribers) in channels {
            let b = Broadcast {
                incident_id: incident,
                seq,
                update_id,
                channel: channel.clone(),
                subscribers: *subscribers,
                cursor: None,
                done: false,
                created_at: now,
            };
            t.put(
                &t.broadcasts,
                outbox::broadcast_key(incident, seq, channel),
                encode(&b)?,
            )?;
        }
        Ok(())
    }

    /// Refuses components that do not exist, read in `t`.
    pub(crate) fn components_exist(t: &Trees, names: &[ComponentName]) -> Result<(), StoreError> {
        for n in names {
            if !t.components.contains_key(n.as_str())? {
                return Err(DomainError::UnknownComponent(n.to_string()).into());
            }
        }
        Ok(())
    }

    /// An incident's current state as read in `t`, without its timeline.
    fn incident_in(t: &Trees, id: Ulid) -> Result<Incident, StoreError> {
        let raw = t
            .incidents
            .get(id.to_bytes())?
            .ok_or_else(|| StoreError::NotFound {
                what: "incident",
                id: id.to_string(),
            })?;
        decode(&raw)
    }

    fn public_changed(&self) {
        self.inner
            .public_gen
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }
}

impl Incidents for SledStore {
    /// Opens incident `id` with its first update, setting the components' `statuses` and
    /// releasing an approval in the same write (see [`approvals`]). The components, the opening update that
    /// commits the incident and the request's audit entry (which names each component's
    /// before → after) go in one sled transaction: after a crash all of them are there or none
    /// (see `SledStore::commit_audited_with_components`). A draft sets no component. Returns the
    /// incident, its opening update and each component change (`name: before → after`).
    async fn create_incident_decided(
        &self,
        id: Ulid,
        mut new: NewIncident,
        statuses: &[(ComponentName, ComponentStatus)],
        now: DateTime<Utc>,
        decision: Option<&Decision>,
    ) -> Result<(Incident, Update, Vec<String>), StoreError> {
        let t = self.t()?;
        Self::components_exist(&t, &new.components)?;
        if new.draft && !statuses.is_empty() {
            return Err(no_statuses_in_drafts().into());
        }
        let broadcast = std::mem::take(&mut new.broadcast);
        let (incident, update) = open_incident(id, Ulid::new(), new, now)?;
        let (ib, ub) = (encode(&incident)?, encode(&update)?);
        let changed = {
            let _w = self.lock(id).await;
            if t.incidents.contains_key(id.to_bytes())? {
                return Err(StoreError::Conflict(format!(
                    "incident {id} exists already"
                )));
            }
            // The components are read, checked and written under their lock, so a concurrent
            // `set_component` comes wholly before or after this opening.
            let _c = (!statuses.is_empty()).then(|| self.component_lock());
            let (set, changed) = self.component_changes(&t, statuses, now)?;
            if let Some(d) = decision {
                self.mark_approved(&t, d)?;
            }
            // Incident first: a crash in between leaves an incident without its opening update,
            // which `repair` removes.
            t.put(&t.incidents, id.to_bytes(), ib)?;
            self.public_changed();
            if !update.draft {
                self.write_broadcasts(&t, id, 1, update.id, &broadcast, now)?;
            }
            // The opening update commits it, with the components it sets and the request's
            // audit entry.
            self.commit_audited_with_components(
                &t,
                None,
                &t.updates,
                &update_key(id, 1),
                ub,
                &set,
                || {
                    (
                        format!("incident {id}"),
                        with_components(crate::domain::audit::opened(&incident), &changed),
                    )
                },
            )?;
            self.public_changed();
            for c in &set {
                history::prune(&t, &c.name, now)?;
            }
            changed
        };
        t.durable().await?;
        Ok((incident, update, changed))
    }

    /// Appends an update, releasing an approval and setting the components' `statuses` in the
    /// same write: the components and the incident record that commits the update, with the audit
    /// entry naming each component's before → after, go in one sled transaction (see
    /// `SledStore::commit_audited_with_components`). A draft update sets no component.
    async fn append_update_setting(
        &self,
        id: Ulid,
        mut new: NewUpdate,
        statuses: &[(ComponentName, ComponentStatus)],
        now: DateTime<Utc>,
        decision: Option<&Decision>,
    ) -> Result<Appended, StoreError> {
        let t = self.t()?;
        if new.draft && !statuses.is_empty() {
            return Err(no_statuses_in_drafts().into());
        }
        let (incident, update, promise, previous_due, summary) = {
            let _w = self.lock(id).await;
            // See `create_incident_decided`.
            let _c = (!statuses.is_empty()).then(|| self.component_lock());
            let (set, changed) = self.component_changes(&t, statuses, now)?;
            let mut incident = Self::incident_in(&t, id)?;
            if incident.public.is_none() && !incident.draft {
                // A record from before `public` existed: its state is what the public saw.
                incident.publish_state();
            }
            // For the audit entry's before → after.
            let before = (incident.status, incident.impact, incident.titles.clone());
            let broadcast = std::mem::take(&mut new.broadcast);
            let update_id = Ulid::new();
            let (update, promise, previous_due) = apply_update(&mut incident, new, update_id, now)?;
            let (ib, ub) = (encode(&incident)?, encode(&update)?);
            if let Some(d) = decision {
                self.mark_approved(&t, d)?;
            }
            // Broadcasts, then the update, then the incident: a crash in between leaves records
            // past the incident's `update_count`, which `repair` removes.
            if !update.draft {
                self.write_broadcasts(&t, id, incident.update_count, update_id, &broadcast, now)?;
            }
            let summary = with_components(
                crate::domain::audit::changed((before.0, before.1, &before.2), &incident, &update),
                &changed,
            );
            // The update, then the incident that commits it with the components it sets, with
            // the request's audit entry between them.
            let key = update_key(id, incident.update_count);
            let update_record = Some((&t.updates, &key[..], ub));
            self.commit_audited_with_components(
                &t,
                update_record,
                &t.incidents,
                &id.to_bytes(),
                ib,
                &set,
                || (format!("incident {id}"), summary.clone()),
            )?;
            self.public_changed();
            for c in &set {
                history::prune(&t, &c.name, now)?;
            }
            (incident, update, promise, previous_due, summary)
        };
        t.durable().await?;
        Ok(Appended {
            incident,
            update,
            promise,
            previous_due,
            summary,
        })
    }

    /// Publishes every draft update of an incident (sets `published_at`; the content is
    /// untouched), releasing an approval in the same write (see [`approvals`]). Returns the
    /// incident and the updates that were published.
    async fn publish_drafts_decided(
        &self,
        id: Ulid,
        broadcast: &[(String, bool)],
        now: DateTime<Utc>,
        decision: Option<&Decision>,
    ) -> Result<(Incident, Vec<Update>), StoreError> {
        let t = self.t()?;
        let (incident, published) = {
            let _w = self.lock(id).await;
            let mut incident = Self::incident_in(&t, id)?;
            let mut published = Vec::new();
            for item in t.updates.scan_prefix(id.to_bytes()) {
                let (key, raw) = item?;
                let mut u: Update = decode(&raw)?;
                if u.draft && u.published_at.is_none() {
                    u.published_at = Some(now);
                    published.push((key, u));
                }
            }
            if published.is_empty() {
                return Err(StoreError::Conflict(format!(
                    "incident {id} has no unpublished draft updates"
                )));
            }
            if let Some(d) = decision {
                self.mark_approved(&t, d)?;
            }
            // A crash part-way leaves some drafts published and the incident still marked draft;
            // publishing again completes it.
            for (key, u) in &published {
                let seq = key
                    .get(16..20)
                    .and_then(|b| <[u8; 4]>::try_from(b).ok())
                    .map(u32::from_be_bytes)
                    .ok_or_else(|| StoreError::Corrupt("update key".into()))?;
                // The broadcasts first; the expander only sends updates whose record says published.
                self.write_broadcasts(&t, id, seq, u.id, broadcast, now)?;
                // Update 1 may be the record that commits the opening's audit entry: it keeps
                // naming that entry or a later one (see `audit`).
                t.put(&t.updates, key, t.marked_now(encode(u)?)?)?;
            }
            incident.draft = false;
            // Every update is published now, so the public sees the latest state.
            incident.publish_state();
            let n = published.len();
            let ib = encode(&incident)?;
            self.commit_audited(&t, None, &t.incidents, &id.to_bytes(), ib, || {
                (
                    format!("incident {id}"),
                    format!("{n} draft update(s) published"),
                )
            })?;
            self.public_changed();
            (incident, published.into_iter().map(|(_, u)| u).collect())
        };
        t.durable().await?;
        Ok((incident, published))
    }

    /// An incident's current state, without its timeline.
    async fn incident_summary(&self, id: Ulid) -> Result<Incident, StoreError> {
        let t = self.t()?;
        Self::incident_in(&t, id)
    }

    /// One incident with its timeline, oldest update first.
    async fn incident(&self, id: Ulid) -> Result<(Incident, Vec<Update>), StoreError> {
        let t = self.t()?;
        let incident = Self::incident_in(&t, id)?;
        let updates = t
            .updates
            .scan_prefix(id.to_bytes())
            .values()
            .map(|v| decode(&v?))
            .collect::<Result<Vec<Update>, _>>()?;
        Ok((incident, updates))
    }

    /// Incidents matching `filter`, newest first.
    async fn incidents(&self, filter: &IncidentFilter) -> Result<Vec<Incident>, StoreError> {
        let t = self.t()?;
        let mut out = Vec::new();
        for item in t.incidents.iter().rev() {
            if out.len() >= filter.limit {
                break;
            }
            let (_, v) = item?;
            let i: Incident = decode(&v)?;
            if let Some(i) = filter.view(i) {
                out.push(i);
            }
        }
        Ok(out)
    }
}

impl Components for SledStore {
    /// Creates or changes a component. A new status is recorded in the component's history
    /// (see [`history`]) in the same transaction, so the uptime bars never miss a change that
    /// the page showed, nor show one that was not acknowledged.
    async fn set_component(
        &self,
        name: ComponentName,
        status: ComponentStatus,
        group: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<Component, StoreError> {
        let t = self.t()?;
        let c = {
            let _w = self.writing_async().await;
            // Read under the component lock, so the before → after it records is the status it
            // replaces, and no opening setting this component comes in between.
            let _c = self.component_lock();
            let before = match t.components.get(name.as_str())? {
                Some(raw) => Some(decode::<Component>(&raw)?),
                None => None,
            };
            // Never before the change it replaces (see `component_changes`).
            let now = before.as_ref().map_or(now, |b| now.max(b.updated_at));
            let c = Component {
                name,
                group: group.or_else(|| before.as_ref().and_then(|b| b.group.clone())),
                status,
                updated_at: now,
            };
            // The history record first, then the component with the request's audit entry: a
            // crash in between leaves a record newer than the component, which `repair` removes.
            if before.as_ref().is_none_or(|b| b.status != status) {
                history::record_plain(&t, &c.name, status, now)?;
            }
            let before = before.map_or("new", |b| b.status.as_str());
            self.commit_audited(
                &t,
                None,
                &t.components,
                c.name.as_str().as_bytes(),
                encode(&c)?,
                || {
                    (
                        format!("component {}", c.name),
                        format!("{before} → {}", c.status.as_str()),
                    )
                },
            )?;
            self.public_changed();
            history::prune(&t, &c.name, now)?;
            c
        };
        t.durable().await?;
        Ok(c)
    }

    /// After `incident` was resolved (or completed): puts each of its components that is not
    /// operational back to operational, unless another open incident still affects it, as
    /// Statuspage does. A component changed concurrently by someone else is left alone.
    /// Returns the names restored.
    async fn restore_components(
        &self,
        incident: &Incident,
        now: DateTime<Utc>,
    ) -> Result<Vec<ComponentName>, StoreError> {
        if incident.components.is_empty() {
            return Ok(Vec::new());
        }
        let t = self.t()?;
        let mut held = std::collections::HashSet::new();
        for item in t.incidents.iter() {
            let (_, v) = item?;
            let other: Incident = decode(&v)?;
            if other.id != incident.id && other.is_open() {
                held.extend(other.components);
            }
        }
        let mut restored = Vec::new();
        let _w = self.writing_async().await;
        let _c = self.component_lock();
        for name in &incident.components {
            if held.contains(name) {
                continue;
            }
            let Some(raw) = t.components.get(name.as_str())? else {
                continue;
            };
            let mut c: Component = decode(&raw)?;
            if c.status == ComponentStatus::Operational {
                continue;
            }
            c.status = ComponentStatus::Operational;
            c.updated_at = now;
            // The component may be the record that commits an audited change: it keeps naming
            // that entry or a later one (see `audit`).
            let value = t.marked_now(encode(&c)?)?;
            // Compare-and-swap and the history record in one transaction.
            let swapped = (&t.components, &t.component_history).transaction(|(tc, th)| {
                if tc.get(name.as_str())?.as_deref() != Some(raw.as_ref()) {
                    return Ok(false);
                }
                tc.insert(name.as_str(), value.clone())?;
                history::record(th, name, ComponentStatus::Operational, now).or_else(abort)?;
                Ok(true)
            })?;
            if swapped {
                self.public_changed();
                history::prune(&t, name, now)?;
                restored.push(name.clone());
            }
        }
        drop(_c);
        drop(_w);
        if !restored.is_empty() {
            t.durable().await?;
        }
        Ok(restored)
    }

    /// All components, by name.
    async fn components(&self) -> Result<Vec<Component>, StoreError> {
        let t = self.t()?;
        t.components.iter().values().map(|v| decode(&v?)).collect()
    }
    /// Refuses components that do not exist.
    async fn check_components(&self, names: &[ComponentName]) -> Result<(), StoreError> {
        let t = self.t()?;
        Self::components_exist(&t, names)
    }

    async fn component_history(
        &self,
        since: DateTime<Utc>,
    ) -> Result<std::collections::BTreeMap<String, Vec<crate::domain::StatusChange>>, StoreError>
    {
        let t = self.t()?;
        history::changes_since(&t, since)
    }

    /// A number that changes after every write the public pages show (incidents, their
    /// updates, components). A page rendered after reading generation `g` shows at least
    /// everything written before `g`; a cache keyed by it is never stale for a finished write.
    async fn public_generation(&self) -> Result<u64, StoreError> {
        Ok(self
            .inner
            .public_gen
            .load(std::sync::atomic::Ordering::Acquire))
    }
}

impl SledStore {
    fn new_subscriber(new: NewSubscriber, now: DateTime<Utc>) -> Result<Subscriber, StoreError> {
        Ok(Subscriber {
            id: Ulid::new(),
            contact: new.contact,
            locale: new.locale,
            components: new.components,
            confirmed: new.confirmed,
            unsubscribe_token: crate::token::random_hex(16)
                .map_err(|e| StoreError::Corrupt(format!("no randomness: {e}")))?,
            created_at: now,
            opted_out: false,
            pending: None,
        })
    }

    /// A subscriber's id from its id, email or phone number.
    fn subscriber_id(&self, t: &Trees, key: &str) -> Result<Ulid, StoreError> {
        Ok(match Ulid::from_string(key.trim()) {
            Ok(id) => id,
            Err(_) => {
                let contact = Contact::parse_any(key)?;
                let raw =
                    t.contacts
                        .get(contact.address())?
                        .ok_or_else(|| StoreError::NotFound {
                            what: "subscriber",
                            id: contact.to_string(),
                        })?;
                let bytes = <[u8; 16]>::try_from(raw.as_ref())
                    .map_err(|_| StoreError::Corrupt("contact index entry".into()))?;
                Ulid::from_bytes(bytes)
            }
        })
    }
}

impl Subscribers for SledStore {
    /// Adds one subscriber; an address that is already subscribed is a conflict.
    async fn add_subscriber(
        &self,
        new: NewSubscriber,
        now: DateTime<Utc>,
    ) -> Result<Subscriber, StoreError> {
        let t = self.t()?;
        Self::components_exist(&t, &new.components)?;
        let s = Self::new_subscriber(new, now)?;
        let sb = encode(&s)?;
        let w = self.writing_async().await;
        (&t.subscribers, &t.contacts, &t.unsubscribe).transaction(|(subs, contacts, tokens)| {
            if contacts.get(s.contact.address())?.is_some() {
                return abort(StoreError::Conflict(format!(
                    "{} is already subscribed; change its language or components with `crier subscribers set` (PATCH /api/v1/subscribers/{{address}})",
                    s.contact
                )));
            }
            subs.insert(&s.id.to_bytes(), sb.as_slice())?;
            contacts.insert(s.contact.address(), &s.id.to_bytes())?;
            tokens.insert(s.unsubscribe_token.as_str(), &s.id.to_bytes())?;
            Ok(())
        })?;
        drop(w);
        t.durable().await?;
        Ok(s)
    }

    /// Adds many subscribers, in transactions of [`IMPORT_CHUNK`], skipping addresses already
    /// subscribed (or repeated within the batch). Component filters must name known components;
    /// a batch with an unknown one writes nothing. The CSV import calls it once per chunk of
    /// [`IMPORT_CHUNK`] rows, so that no request holds a whole file's subscribers in memory.
    async fn import_subscribers(
        &self,
        batch: Vec<NewSubscriber>,
        now: DateTime<Utc>,
    ) -> Result<ImportCounts, StoreError> {
        let t = self.t()?;
        for n in &batch {
            Self::components_exist(&t, &n.components)?;
        }
        let subs: Vec<Subscriber> = batch
            .into_iter()
            .map(|n| Self::new_subscriber(n, now))
            .collect::<Result<_, _>>()?;
        let encoded: Vec<Vec<u8>> = subs.iter().map(encode).collect::<Result<_, _>>()?;
        // One transaction per chunk, not per request: sled keeps a transaction's whole write set
        // (three trees) in memory, and a 50,000-row import in one transaction peaked above
        // 1 GiB and left the heap fragmented (slower allocation for the process's lifetime).
        // Every row was validated above, so only a storage failure can stop an import half-way;
        // a later chunk still sees the contacts of earlier ones, so duplicates stay duplicates.
        let mut counts = ImportCounts::default();
        for (subs, encoded) in subs.chunks(IMPORT_CHUNK).zip(encoded.chunks(IMPORT_CHUNK)) {
            // Per chunk: a backup may fall between chunks (an import is not atomic anyway).
            let _w = self.writing_async().await;
            let chunk = (&t.subscribers, &t.contacts, &t.unsubscribe).transaction(
                |(st, contacts, tokens)| {
                    let mut counts = ImportCounts::default();
                    for (s, b) in subs.iter().zip(encoded) {
                        if contacts.get(s.contact.address())?.is_some() {
                            counts.duplicates += 1;
                            continue;
                        }
                        st.insert(&s.id.to_bytes(), b.as_slice())?;
                        contacts.insert(s.contact.address(), &s.id.to_bytes())?;
                        tokens.insert(s.unsubscribe_token.as_str(), &s.id.to_bytes())?;
                        counts.added += 1;
                    }
                    Ok(counts)
                },
            )?;
            counts.added += chunk.added;
            counts.duplicates += chunk.duplicates;
        }
        if counts.added > 0 {
            t.durable().await?;
        }
        Ok(counts)
    }

    /// Subscribers in the order they were added, at most `limit`.
    async fn subscribers(&self, limit: usize) -> Result<Vec<Subscriber>, StoreError> {
        let t = self.t()?;
        t.subscribers
            .iter()
            .values()
            .take(limit)
            .map(|v| decode(&v?))
            .collect()
    }

    /// Removes a subscriber given its id or its address.
    async fn remove_subscriber(&self, key: &str) -> Result<Subscriber, StoreError> {
        let t = self.t()?;
        let id = self.subscriber_id(&t, key)?;
        let w = self.writing_async().await;
        let removed = (&t.subscribers, &t.contacts, &t.unsubscribe).transaction(
            |(subs, contacts, tokens)| {
                let Some(raw) = subs.remove(&id.to_bytes())? else {
                    return abort(StoreError::NotFound {
                        what: "subscriber",
                        id: id.to_string(),
                    });
                };
                let s: Subscriber = decode(&raw).or_else(abort)?;
                contacts.remove(s.contact.address())?;
                tokens.remove(s.unsubscribe_token.as_str())?;
                Ok(s)
            },
        )?;
        drop(w);
        t.durable().await?;
        Ok(removed)
    }

    /// Changes a subscriber's language and/or component filter (`Some(vec![])`: every
    /// component), found by id, email or phone number; returns it as it was and as it is now.
    /// Unknown components write nothing.
    async fn change_subscriber(
        &self,
        key: &str,
        locale: Option<Locale>,
        components: Option<Vec<ComponentName>>,
    ) -> Result<(Subscriber, Subscriber), StoreError> {
        let t = self.t()?;
        let id = self.subscriber_id(&t, key)?;
        for n in components.iter().flatten() {
            if !t.components.contains_key(n.as_str())? {
                return Err(DomainError::UnknownComponent(n.to_string()).into());
            }
        }
        let w = self.writing_async().await;
        let changed = t.subscribers.transaction(|subs| {
            let Some(raw) = subs.get(id.to_bytes())? else {
                return abort(StoreError::NotFound {
                    what: "subscriber",
                    id: id.to_string(),
                });
            };
            let was: Subscriber = decode(&raw).or_else(abort)?;
            let mut s = was.clone();
            if let Some(l) = &locale {
                s.locale = l.clone();
            }
            if let Some(c) = &components {
                s.components = c.clone();
            }
            subs.insert(&id.to_bytes(), encode(&s).or_else(abort)?)?;
            Ok((was, s))
        })?;
        drop(w);
        t.durable().await?;
        Ok(changed)
    }

    /// Removes the subscriber holding an unsubscribe token (the one-click link).
    async fn unsubscribe(&self, token: &str) -> Result<Subscriber, StoreError> {
        let t = self.t()?;
        let raw = t
            .unsubscribe
            .get(token)?
            .ok_or_else(|| StoreError::NotFound {
                what: "subscription",
                id: "for this link".into(),
            })?;
        let bytes = <[u8; 16]>::try_from(raw.as_ref())
            .map_err(|_| StoreError::Corrupt("unsubscribe index entry".into()))?;
        self.remove_subscriber(&Ulid::from_bytes(bytes).to_string())
            .await
    }

    /// Number of subscribers.
    async fn subscriber_count(&self) -> Result<usize, StoreError> {
        Ok(self.t()?.subscribers.len())
    }

    async fn subscriber_standing(&self, id: Ulid) -> Result<Option<bool>, StoreError> {
        let t = self.t()?;
        match t.subscribers.get(id.to_bytes())? {
            Some(v) => Ok(Some(decode::<Subscriber>(&v)?.receives())),
            None => Ok(None),
        }
    }

    /// The subscriber holding a manage/unsubscribe token.
    async fn subscriber_by_token(&self, token: &str) -> Result<Option<Subscriber>, StoreError> {
        let t = self.t()?;
        let Some(raw) = t.unsubscribe.get(token)? else {
            return Ok(None);
        };
        let Some(v) = t.subscribers.get(raw)? else {
            return Ok(None);
        };
        decode(&v).map(Some)
    }

    /// Subscribers matching `keep`, in the order they were added, at most `limit`. One pass, off
    /// the async workers (it may walk every subscriber).
    async fn subscribers_where(
        &self,
        limit: usize,
        mut keep: impl FnMut(&Subscriber) -> bool + Send,
    ) -> Result<Vec<Subscriber>, StoreError> {
        let t = self.t()?;
        outbox::off_the_runtime(|| {
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
        })
    }
}

#[cfg(test)]
mod contract;
#[cfg(test)]
mod tests_components;
#[cfg(test)]
mod tests_faults;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{
        Body, Change, Impact, IncidentKind, Locale, Status, Title, Titles, UpdateAction,
    };

    pub(super) fn new_incident(title: &str) -> NewIncident {
        NewIncident {
            title: Title::parse(title).unwrap(),
            titles: Titles::new(),
            kind: IncidentKind::Incident,
            status: None,
            impact: Impact::Minor,
            components: vec![],
            body: Body::single(Locale::english(), "m").unwrap(),
            author: "admin".into(),
            next_update_due: None,
            draft: false,
            broadcast: vec![],
            scheduled_for: None,
            scheduled_until: None,
            holding_statement: false,
            remind_before: None,
        }
    }

    pub(super) fn new_update(text: &str) -> NewUpdate {
        NewUpdate {
            expect_count: None,
            change: Change::Update(Some(Status::Monitoring)),
            titles: Titles::new(),
            body: Body::single(Locale::english(), text).unwrap(),
            author: "admin".into(),
            impact: None,
            promise: crate::domain::PromiseEdit::Keep,
            draft: false,
            broadcast: vec![],
        }
    }

    /// Simulates the two torn writes a crash can leave (a prefix of the log) and checks that
    /// reopening removes exactly them and keeps every complete write.
    /// `close` returns once the directory can be opened again: a restart needs no retries.
    #[tokio::test]
    async fn a_closed_store_opens_again_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let mut created = Vec::new();
        for round in 0..20 {
            let store = SledStore::open(&path).unwrap_or_else(|e| panic!("round {round}: {e}"));
            let (i, _) = store
                .create_incident(new_incident("restart"), Utc::now())
                .await
                .unwrap();
            created.push(i.id);
            store.close().await.unwrap();
        }
        let store = SledStore::open(&path).unwrap();
        for id in created {
            store.incident(id).await.unwrap();
        }
        // Every clone of a closed store refuses service instead of writing to a closed database.
        let other = store.clone();
        store.close().await.unwrap();
        assert!(matches!(other.t(), Err(StoreError::Broken(_))));
    }

    #[tokio::test]
    async fn repair_removes_partial_writes_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let (kept, orphan_update, torn_open) = {
            let store = SledStore::open(&path).unwrap();
            let now = Utc::now();
            let (kept, _) = store
                .create_incident(new_incident("kept"), now)
                .await
                .unwrap();
            store
                .append_update(kept.id, new_update("acknowledged"), now)
                .await
                .unwrap();
            // An append interrupted after its update record (the incident was not rewritten).
            let (i, _) = store.incident(kept.id).await.unwrap();
            let orphan = Update {
                id: Ulid::new(),
                incident_id: kept.id,
                action: UpdateAction::Updated,
                status: Status::Identified,
                body: Body::single(Locale::english(), "never acknowledged").unwrap(),
                author: "admin".into(),
                created_at: now,
                next_update_due: None,
                draft: false,
                published_at: Some(now),
            };
            store
                .t()
                .unwrap()
                .updates
                .insert(update_key(kept.id, 3), encode(&orphan).unwrap())
                .unwrap();
            // An open interrupted after its incident record.
            let mut torn = i.clone();
            torn.id = Ulid::new();
            torn.update_count = 1;
            store
                .t()
                .unwrap()
                .incidents
                .insert(torn.id.to_bytes(), encode(&torn).unwrap())
                .unwrap();
            store.durable().await.unwrap();
            store.close().await.unwrap();
            (kept.id, orphan.id, torn.id)
        };
        let store = SledStore::open(&path).unwrap();
        let (i, updates) = store.incident(kept).await.unwrap();
        assert_eq!(
            updates.len(),
            2,
            "the acknowledged update is kept, the orphan removed"
        );
        assert!(updates.iter().all(|u| u.id != orphan_update));
        assert_eq!(i.update_count, 2);
        assert!(matches!(
            store.incident(torn_open).await,
            Err(StoreError::NotFound { .. })
        ));
        assert_eq!(store.repair().unwrap(), 0, "repair is idempotent");
    }

    /// An import larger than a transaction chunk counts duplicates that straddle chunks, and a
    /// bad row anywhere still writes nothing.
    #[tokio::test]
    async fn large_imports_are_chunked_and_still_de_duplicated_across_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(&dir.path().join("db")).unwrap();
        let now = Utc::now();
        let n = 2 * IMPORT_CHUNK + 10;
        let phone = |i: usize| crate::domain::Contact::phone(&format!("+3584{i:08}")).unwrap();
        let row = |i: usize| NewSubscriber {
            contact: phone(i),
            locale: crate::domain::Locale::english(),
            components: vec![],
            confirmed: true,
        };
        // Row k and row IMPORT_CHUNK + k are the same address: each pair straddles a chunk.
        let batch: Vec<NewSubscriber> = (0..n).map(|i| row(i % (IMPORT_CHUNK + 5))).collect();
        let counts = store.import_subscribers(batch, now).await.unwrap();
        assert_eq!(counts.added, IMPORT_CHUNK + 5);
        assert_eq!(counts.duplicates, n - (IMPORT_CHUNK + 5));
        assert_eq!(store.subscriber_count().await.unwrap(), IMPORT_CHUNK + 5);
        // An unknown component anywhere writes nothing, even in a batch of several chunks.
        let before = store.checksum().unwrap();
        let mut bad: Vec<NewSubscriber> = (0..n).map(|i| row(1_000_000 + i)).collect();
        bad[n - 1].components = vec![crate::domain::ComponentName::parse("nope").unwrap()];
        assert!(store.import_subscribers(bad, now).await.is_err());
        assert_eq!(store.checksum().unwrap(), before);
    }

    /// Concurrent writers share syncs: 50 writes issued together are made durable by far fewer
    /// than 50 flush + fdatasync rounds (on this single-threaded runtime, by one or two).
    #[tokio::test]
    async fn concurrent_writers_share_one_sync() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(&dir.path().join("db")).unwrap();
        let before = store.flush_stats();
        let tasks: Vec<_> = (0..50)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    let name = ComponentName::parse(&format!("c{i}")).unwrap();
                    store
                        .set_component(name, ComponentStatus::Operational, None, Utc::now())
                        .await
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        let after = store.flush_stats();
        assert_eq!(after.waiters - before.waiters, 50);
        let syncs = after.syncs - before.syncs;
        assert!(syncs <= 2, "50 concurrent writes took {syncs} syncs");
        assert_eq!(store.components().await.unwrap().len(), 50);
    }

    /// The write lock is per incident (striped), yet concurrent writers on several runtime threads
    /// still lose nothing: every append to a shared incident gets its own sequence number, and of
    /// many concurrent resolves of one incident exactly one passes the state machine.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_appends_on_many_threads_lose_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(&dir.path().join("db")).unwrap();
        let now = Utc::now();
        let mut ids = Vec::new();
        for t in ["a", "b", "c"] {
            ids.push(
                store
                    .create_incident(new_incident(t), now)
                    .await
                    .unwrap()
                    .0
                    .id,
            );
        }
        let tasks: Vec<_> = (0..8)
            .map(|task| {
                let (store, ids) = (store.clone(), ids.clone());
                tokio::spawn(async move {
                    for n in 0..40 {
                        let id = ids[(task + n) % ids.len()];
                        let text = format!("t{task} n{n}");
                        store
                            .append_update(id, new_update(&text), now)
                            .await
                            .unwrap();
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let mut total = 0;
        for id in &ids {
            let (incident, updates) = store.incident(*id).await.unwrap();
            assert_eq!(incident.update_count as usize, updates.len());
            total += updates.len() - 1;
        }
        assert_eq!(total, 8 * 40, "an append was lost");

        let resolve = || NewUpdate {
            titles: Default::default(),
            change: Change::Resolve,
            ..new_update("fixed")
        };
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let store = store.clone();
                let id = ids[0];
                let update = resolve();
                tokio::spawn(async move { store.append_update(id, update, now).await.is_ok() })
            })
            .collect();
        let mut passed = 0;
        for t in tasks {
            passed += usize::from(t.await.unwrap());
        }
        assert_eq!(passed, 1, "a resolved incident was resolved again");
    }

    /// Updates posted within the same millisecond keep their order (ULIDs alone would not).
    #[tokio::test]
    async fn rapid_updates_keep_timeline_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(&dir.path().join("db")).unwrap();
        let now = Utc::now();
        let (i, _) = store
            .create_incident(new_incident("fast"), now)
            .await
            .unwrap();
        for n in 0..100 {
            store
                .append_update(i.id, new_update(&format!("u{n}")), now)
                .await
                .unwrap();
        }
        let (_, updates) = store.incident(i.id).await.unwrap();
        let texts: Vec<String> = updates[1..]
            .iter()
            .map(|u| u.body.text_for(&Locale::english()).to_owned())
            .collect();
        let expected: Vec<String> = (0..100).map(|n| format!("u{n}")).collect();
        assert_eq!(texts, expected);
    }

    /// An incident record as versions before per-language titles wrote it (no `titles`, nor in
    /// `public`): it still reads, shows its one title to every reader, and takes translations.
    #[tokio::test]
    async fn an_incident_stored_without_titles_still_reads_and_takes_them() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(&dir.path().join("db")).unwrap();
        let id = Ulid::new();
        let old = format!(
            r#"{{"id":"{id}","title":"Check-in delays","kind":"incident","status":"investigating","impact":"major","components":[],"created_at":"2026-11-01T10:00:00Z","updated_at":"2026-11-01T10:00:00Z","resolved_at":null,"next_update_due":null,"draft":false,"update_count":1,"holding_statement":false,"public":{{"status":"investigating","impact":"major","updated_at":"2026-11-01T10:00:00Z","resolved_at":null,"next_update_due":null,"update_count":1}}}}"#
        );
        let opening = Update {
            id: Ulid::new(),
            incident_id: id,
            action: UpdateAction::Opened,
            status: Status::Investigating,
            body: Body::single(Locale::english(), "Slow.").unwrap(),
            author: "admin".into(),
            created_at: Utc::now(),
            next_update_due: None,
            draft: false,
            published_at: Some(Utc::now()),
        };
        {
            let t = store.t().unwrap();
            t.incidents.insert(id.to_bytes(), old.as_bytes()).unwrap();
            t.updates
                .insert(update_key(id, 1), encode(&opening).unwrap())
                .unwrap();
        }
        let i = store.incident_summary(id).await.unwrap();
        assert!(i.titles.is_empty());
        let fi = Locale::parse("fi").unwrap();
        assert_eq!(i.title_for(&fi).as_str(), "Check-in delays");
        assert_eq!(
            i.public_view().unwrap().title_for(&fi).as_str(),
            "Check-in delays"
        );
        // An update gives it a Finnish title; the public sees it once published.
        let mut u = new_update("Identified.");
        u.titles =
            crate::domain::parse_titles(&[("fi".into(), "Lähtöselvitys viivästyy".into())].into())
                .unwrap();
        let (i, _) = store.append_update(id, u, Utc::now()).await.unwrap();
        let public = i.public_view().unwrap();
        assert_eq!(public.title_for(&fi).as_str(), "Lähtöselvitys viivästyy");
        assert_eq!(
            public.title_for(&Locale::parse("sv").unwrap()).as_str(),
            "Check-in delays"
        );
        assert_eq!(store.incident_summary(id).await.unwrap(), i);
    }
}
