//! The store as a port: what crier asks of its storage, in the domain's terms, so a second
//! backend (PostgreSQL, issue 16) can implement the same interface and every caller — api/,
//! web/, dispatch/, schedule/, intake/, the CLI — stays as it is.
//!
//! The cut is one trait per aggregate (a set of records that change together under one rule),
//! not one trait of ~140 methods: a backend can be written, reviewed and tested an aggregate at
//! a time, and a caller names only the aggregates it uses (`use crate::store::port::Threads`).
//! Every method is async (a network database answers asynchronously; sled's reads are fast
//! enough to run inline in the future) and returns a future that is `Send`, so handlers and
//! spawned tasks can hold it across an await whatever the backend. Static dispatch, no boxing:
//! native `impl Future` in traits, no new crate.
//!
//! [`Store`](super::Store), the handle the rest of crier holds, is an enum of backends whose trait
//! methods dispatch to the one open backend: adding PostgreSQL is one variant and one arm per
//! method, and the compiler lists every method the new backend lacks. Each guarantee stays the
//! backend's to keep and is part of the contract: a write is durable before its future
//! resolves (sled: the group commit), and a method sees one consistent state of the store
//! (sled: one snapshot of the open database, `let t = self.t()?`).
//!
//! Business rules are not here and not in a backend: they are pure functions of
//! [`crate::domain`] (the incident state machine and promise: `domain::apply_update`,
//! `domain::open_incident`; who a broadcast reaches: `domain::ExpandTarget::reaches`; which
//! incidents a listing shows: `domain::IncidentFilter::view`), which each backend calls under its
//! own locks, so both backends decide the same.
//!
//! Every aggregate is ported: [`Threads`], [`Templates`], [`AlertGroups`], [`HookSignatures`], [`Backups`],
//! [`Approvals`], [`Audit`]; in `incidents.rs`: [`Incidents`] (three writes and three reads a
//! backend implements; the narrower writes are provided methods) and [`Components`] (with their
//! status history and the public generation); in `people.rs`: [`Users`], [`Tokens`],
//! [`Sessions`], [`SecondFactors`] (TOTP) and the test hook [`Dump`]; in `audience.rs`:
//! [`Subscribers`] (the list, lookups by id, address and token, a one-pass filtered walk),
//! [`SignUps`] (double opt-in, STOP/START, the purge; the rules are `domain::signup`'s),
//! [`Notices`], [`Holds`], [`Standalones`]; in `outbox.rs`: [`Outbox`] (broadcasts, expansion,
//! claims that carry a [`Lease`](crate::domain::Lease) handed back with the outcome, deliveries
//! listed a page at a time). Health and lifecycle (`broken`, `ready`, `durable`, …) are inherent
//! methods of `Store` that match on the backend.

mod audience;
mod incidents;
mod outbox;
mod people;

#[allow(unused_imports)]
pub use audience::*;
#[allow(unused_imports)]
pub use incidents::*;
#[allow(unused_imports)]
pub use outbox::*;
#[allow(unused_imports)]
pub use people::*;

use super::audit::VerifyError;
use super::backup::{BackupError, Summary};
use super::{Store, StoreError};
use crate::domain::alert::AlertGroup;
use crate::domain::audit::{AuditEntry, AuditFilter, NewAudit, Verified};
use crate::domain::{Approval, ApprovalState, IncidentTemplate, Thread};
use chrono::{DateTime, Utc};
use std::fs::File;
use std::future::Future;
use std::path::Path;
use ulid::Ulid;

/// Social threads: the platform references of an incident's first and latest post per channel.
pub trait Threads {
    /// The thread of `incident` on `channel`, if something was posted there.
    fn thread(
        &self,
        incident: Ulid,
        channel: &str,
    ) -> impl Future<Output = Result<Option<Thread>, StoreError>> + Send;

    /// Records `post` as the latest post of the thread (and as its root when it is the first),
    /// in one atomic read-modify-write, durably. Returns the thread as stored.
    fn extend_thread(
        &self,
        incident: Ulid,
        channel: &str,
        post: &str,
    ) -> impl Future<Output = Result<Thread, StoreError>> + Send;
}

/// Incident templates: canned texts staff apply when composing. Names are unique in any case.
pub trait Templates {
    /// Saves a new or changed template; refuses a name another template has. Durable.
    fn put_template(
        &self,
        tpl: &IncidentTemplate,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Changes a template with `change` (given the stored one) and saves the result as
    /// [`Templates::put_template`] does; returns (before, after). Durable.
    fn change_template(
        &self,
        id: Ulid,
        change: impl FnOnce(&IncidentTemplate) -> Result<IncidentTemplate, StoreError> + Send,
    ) -> impl Future<Output = Result<(IncidentTemplate, IncidentTemplate), StoreError>> + Send;

    /// One template by id.
    fn template(
        &self,
        id: Ulid,
    ) -> impl Future<Output = Result<IncidentTemplate, StoreError>> + Send;

    /// One template by id or by name (any case).
    fn template_by_key(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<IncidentTemplate, StoreError>> + Send;

    /// Every template, by name.
    fn templates(&self) -> impl Future<Output = Result<Vec<IncidentTemplate>, StoreError>> + Send;

    /// Removes a template; returns it. Durable.
    fn remove_template(
        &self,
        id: Ulid,
    ) -> impl Future<Output = Result<IncidentTemplate, StoreError>> + Send;
}

/// Monitoring alert groups: which incident a (source, group) of alerts opened, and each key's
/// state (the rules are [`crate::intake`]'s).
pub trait AlertGroups {
    /// The alert group (source, group), if monitoring has reported it before.
    fn alert_group(
        &self,
        source: &str,
        group: &str,
    ) -> impl Future<Output = Result<Option<AlertGroup>, StoreError>> + Send;

    /// Saves an alert group. Durable.
    fn put_alert_group(
        &self,
        g: &AlertGroup,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Every alert group.
    fn alert_groups(&self) -> impl Future<Output = Result<Vec<AlertGroup>, StoreError>> + Send;
}

/// Accepted webhook signatures, each refused again until it expires (replay protection that
/// survives a restart).
pub trait HookSignatures {
    /// Remembers an accepted signature until `expires`, once: `false` when it was accepted
    /// before and has not expired (a replay). Durable when it answers `true`.
    fn remember_signature(
        &self,
        key: [u8; 32],
        expires: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Forgets an accepted signature (its request failed before doing anything). Durable.
    fn forget_signature(
        &self,
        key: [u8; 32],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Online backups: one consistent state of the whole store in crier's backup format (see
/// `store::backup` and docs/ARCHITECTURE.md "Backups"), durable before it is called complete.
pub trait Backups {
    /// Writes a backup into `file` (synced) and waits until everything in it is on disk in the
    /// store; returns the file, positioned at its end, and the backup's summary.
    fn backup_to_file(
        &self,
        file: File,
    ) -> impl Future<Output = Result<(File, Summary), BackupError>> + Send;

    /// Writes a backup to `path` (a temporary file beside it, synced, then renamed).
    fn backup_to_path(
        &self,
        path: &Path,
    ) -> impl Future<Output = Result<Summary, BackupError>> + Send;
}

/// Approvals: writes waiting for a second person (the rules are [`crate::domain::approval`]'s).
/// Approving one is the incident write it releases (`SledStore::mark_approved`, inside that
/// write's lock), not a method here.
pub trait Approvals {
    /// Saves a new approval. Durable.
    fn put_approval(&self, a: &Approval) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// One approval by id.
    fn approval(&self, id: Ulid) -> impl Future<Output = Result<Approval, StoreError>> + Send;

    /// Approvals in `state` (all with `None`), oldest first, at most `limit`.
    fn approvals(
        &self,
        state: Option<ApprovalState>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Approval>, StoreError>> + Send;

    /// Rejects a pending approval with a reason (a decided one is a conflict); nothing is sent.
    /// Returns the approval as stored. Durable.
    fn reject_approval(
        &self,
        id: Ulid,
        by: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Approval, StoreError>> + Send;
}

/// The audit log: append-only and hash-chained (the rules are [`crate::domain::audit`]'s). An
/// entry for a change is written by the change's own store method, in the same commit (the sled
/// backend's armed-commit plumbing, see `store::audit`), not through this trait.
pub trait Audit {
    /// Appends an entry on its own (for a request that changed nothing in the store, or whose
    /// handler did not arm one) and returns it as stored. Durable.
    fn audit(
        &self,
        new: NewAudit,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<AuditEntry, StoreError>> + Send;

    /// Entries matching `filter`, oldest first, at most `filter.limit`; and the number to pass
    /// as `after` for the next page, if there may be more.
    fn audit_entries(
        &self,
        filter: &AuditFilter,
    ) -> impl Future<Output = Result<(Vec<AuditEntry>, Option<u64>), StoreError>> + Send;

    /// Walks the whole chain against the log's head (see [`crate::domain::audit::verify`]).
    fn verify_audit(&self) -> impl Future<Output = Result<Verified, VerifyError>> + Send;
}

/// The handle dispatches each method to the open backend.
impl Threads for Store {
    async fn thread(&self, incident: Ulid, channel: &str) -> Result<Option<Thread>, StoreError> {
        match self {
            Store::Sled(s) => s.thread(incident, channel).await,
            Store::Pg(p) => p.thread(incident, channel).await,
        }
    }

    async fn extend_thread(
        &self,
        incident: Ulid,
        channel: &str,
        post: &str,
    ) -> Result<Thread, StoreError> {
        match self {
            Store::Sled(s) => s.extend_thread(incident, channel, post).await,
            Store::Pg(p) => p.extend_thread(incident, channel, post).await,
        }
    }
}

impl Templates for Store {
    async fn put_template(&self, tpl: &IncidentTemplate) -> Result<(), StoreError> {
        match self {
            Store::Sled(s) => s.put_template(tpl).await,
            Store::Pg(p) => p.put_template(tpl).await,
        }
    }

    async fn change_template(
        &self,
        id: Ulid,
        change: impl FnOnce(&IncidentTemplate) -> Result<IncidentTemplate, StoreError> + Send,
    ) -> Result<(IncidentTemplate, IncidentTemplate), StoreError> {
        match self {
            Store::Sled(s) => s.change_template(id, change).await,
            Store::Pg(p) => p.change_template(id, change).await,
        }
    }

    async fn template(&self, id: Ulid) -> Result<IncidentTemplate, StoreError> {
        match self {
            Store::Sled(s) => s.template(id).await,
            Store::Pg(p) => p.template(id).await,
        }
    }

    async fn template_by_key(&self, key: &str) -> Result<IncidentTemplate, StoreError> {
        match self {
            Store::Sled(s) => s.template_by_key(key).await,
            Store::Pg(p) => p.template_by_key(key).await,
        }
    }

    async fn templates(&self) -> Result<Vec<IncidentTemplate>, StoreError> {
        match self {
            Store::Sled(s) => s.templates().await,
            Store::Pg(p) => p.templates().await,
        }
    }

    async fn remove_template(&self, id: Ulid) -> Result<IncidentTemplate, StoreError> {
        match self {
            Store::Sled(s) => s.remove_template(id).await,
            Store::Pg(p) => p.remove_template(id).await,
        }
    }
}

impl AlertGroups for Store {
    async fn alert_group(
        &self,
        source: &str,
        group: &str,
    ) -> Result<Option<AlertGroup>, StoreError> {
        match self {
            Store::Sled(s) => s.alert_group(source, group).await,
            Store::Pg(p) => p.alert_group(source, group).await,
        }
    }

    async fn put_alert_group(&self, g: &AlertGroup) -> Result<(), StoreError> {
        match self {
            Store::Sled(s) => s.put_alert_group(g).await,
            Store::Pg(p) => p.put_alert_group(g).await,
        }
    }

    async fn alert_groups(&self) -> Result<Vec<AlertGroup>, StoreError> {
        match self {
            Store::Sled(s) => s.alert_groups().await,
            Store::Pg(p) => p.alert_groups().await,
        }
    }
}

impl HookSignatures for Store {
    async fn remember_signature(
        &self,
        key: [u8; 32],
        expires: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        match self {
            Store::Sled(s) => s.remember_signature(key, expires, now).await,
            Store::Pg(p) => p.remember_signature(key, expires, now).await,
        }
    }

    async fn forget_signature(&self, key: [u8; 32]) -> Result<(), StoreError> {
        match self {
            Store::Sled(s) => s.forget_signature(key).await,
            Store::Pg(p) => p.forget_signature(key).await,
        }
    }
}

impl Backups for Store {
    async fn backup_to_file(&self, file: File) -> Result<(File, Summary), BackupError> {
        match self {
            Store::Sled(s) => s.backup_to_file(file).await,
            Store::Pg(p) => p.backup_to_file(file).await,
        }
    }

    async fn backup_to_path(&self, path: &Path) -> Result<Summary, BackupError> {
        match self {
            Store::Sled(s) => s.backup_to_path(path).await,
            Store::Pg(p) => p.backup_to_path(path).await,
        }
    }
}

impl Approvals for Store {
    async fn put_approval(&self, a: &Approval) -> Result<(), StoreError> {
        match self {
            Store::Sled(s) => s.put_approval(a).await,
            Store::Pg(p) => p.put_approval(a).await,
        }
    }

    async fn approval(&self, id: Ulid) -> Result<Approval, StoreError> {
        match self {
            Store::Sled(s) => s.approval(id).await,
            Store::Pg(p) => p.approval(id).await,
        }
    }

    async fn approvals(
        &self,
        state: Option<ApprovalState>,
        limit: usize,
    ) -> Result<Vec<Approval>, StoreError> {
        match self {
            Store::Sled(s) => s.approvals(state, limit).await,
            Store::Pg(p) => p.approvals(state, limit).await,
        }
    }

    async fn reject_approval(
        &self,
        id: Ulid,
        by: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<Approval, StoreError> {
        match self {
            Store::Sled(s) => s.reject_approval(id, by, reason, now).await,
            Store::Pg(p) => p.reject_approval(id, by, reason, now).await,
        }
    }
}

impl Audit for Store {
    async fn audit(&self, new: NewAudit, at: DateTime<Utc>) -> Result<AuditEntry, StoreError> {
        match self {
            Store::Sled(s) => s.audit(new, at).await,
            Store::Pg(p) => p.audit(new, at).await,
        }
    }

    async fn audit_entries(
        &self,
        filter: &AuditFilter,
    ) -> Result<(Vec<AuditEntry>, Option<u64>), StoreError> {
        match self {
            Store::Sled(s) => s.audit_entries(filter).await,
            Store::Pg(p) => p.audit_entries(filter).await,
        }
    }

    async fn verify_audit(&self) -> Result<Verified, VerifyError> {
        match self {
            Store::Sled(s) => s.verify_audit().await,
            Store::Pg(p) => p.verify_audit().await,
        }
    }
}
