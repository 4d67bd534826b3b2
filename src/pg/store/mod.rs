//! The PostgreSQL backend of the store port (issue 16; docs/POSTGRES.md, "The store on
//! PostgreSQL"): [`PgStore`] implements the port's traits (`store::port`) over the row codecs of
//! [`super::rows`], so several crier nodes can share one database.
//!
//! Why it looks as it does:
//! - **Durable when the future resolves**: every write is one transaction (or one statement, which
//!   is its own transaction) whose `COMMIT` has returned; with PostgreSQL's defaults
//!   (`synchronous_commit = on`, `fsync = on`) that is on disk. [`PgStore::open`] warns when the
//!   server is set otherwise.
//! - **One consistent state per method**: a read is one statement, or, when it takes several
//!   (the audit listing's pages, the audit walk's entries and head), one `REPEATABLE READ READ
//!   ONLY` transaction, so an append by another node between them is not half seen.
//! - **Read-modify-write across nodes**: the sled backend serialises with in-process locks; here
//!   two nodes may change the same record at once, so each such method locks what it reads in
//!   its transaction (`SELECT … FOR UPDATE` of the row; for template names, a table lock that
//!   plays the part of sled's template lock; for the audit log, the head row) and writes before
//!   it commits.
//! - **The same answers as sled** (the reference): the same messages for conflicts and missing
//!   records, the same orders (sorted in Rust where a database collation could order text
//!   otherwise), the same audit bytes (the domain builds and encodes entries for both), and the
//!   audit listing's exact filter semantics. `store::contract` runs one suite on both.
//! - [`PgError`] becomes [`StoreError`] in one place (`From<PgError> for StoreError` below); no
//!   message carries the password (the URL is never part of an error).

mod audience;
mod exclusive;
mod health;
mod incidents;
mod outbox;
mod people;
mod rate;

pub use exclusive::Held;

use std::fs::File;
use std::path::Path;

use chrono::{DateTime, Utc};
use tokio_postgres::{IsolationLevel, Transaction};
use ulid::Ulid;

use super::{rows, ConnectOptions, Pg, PgError};
use crate::clock::Clock;
use crate::domain::alert::AlertGroup;
use crate::domain::audit::{self, AuditEntry, AuditFilter, NewAudit, Verified, GENESIS};
use crate::domain::{Approval, ApprovalState, IncidentTemplate, Thread};
use crate::store::audit::VerifyError;
use crate::store::backup::{BackupError, Summary};
use crate::store::port::{
    AlertGroups, Approvals, Audit, Backups, HookSignatures, Templates, Threads,
};
use crate::store::{BackendError, StoreError};

/// Connections in the pool when the caller does not say.
pub const DEFAULT_POOL_SIZE: usize = 16;

/// What a backup request answers on PostgreSQL (see [`Backups`] for [`PgStore`]).
pub const BACKUP_REFUSED: &str = "this crier keeps its store in PostgreSQL: crier's backup file \
     (`crier backup`, GET /api/v1/backup) is the sled store's format and is not written from a \
     database. Back the database up with PostgreSQL's own tools: `pg_dump --format=custom` for a \
     snapshot (consistent without stopping crier), or continuous archiving for point-in-time \
     recovery; see docs/POSTGRES.md";

/// The PostgreSQL store: the pool and the server's clock. Cheap to clone.
#[derive(Clone, Debug)]
pub struct PgStore {
    pg: Pg,
    clock: Clock,
    /// How long a claim holds its delivery ([`outbox::claim_lease`] unless the config says
    /// otherwise: `[postgres] lease`).
    lease: chrono::Duration,
}

impl From<PgError> for StoreError {
    fn from(e: PgError) -> Self {
        match e {
            PgError::Conflict(m) => StoreError::Conflict(m),
            PgError::Corrupt(m) => StoreError::Corrupt(m),
            // The rest (connection, TLS, pool, the server's errors, a schema too new, a lost
            // lease) as their message: none of them carries the password or the URL.
            other => StoreError::Backend(BackendError::message(other.to_string())),
        }
    }
}

fn db(e: tokio_postgres::Error) -> StoreError {
    PgError::Db(e).into()
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

fn template_not_found(id: impl ToString) -> StoreError {
    StoreError::NotFound {
        what: "template",
        id: id.to_string(),
    }
}

fn approval_not_found(id: Ulid) -> StoreError {
    StoreError::NotFound {
        what: "approval",
        id: id.to_string(),
    }
}

/// A `limit` as SQL's `bigint`.
fn sql_limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A time at the millisecond, as the sled store keeps webhook signature expiries (so both
/// backends compare them alike).
fn to_millis(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t)
}

impl PgStore {
    /// Connects and brings the schema up to date (refused, with nothing written, when the
    /// database was migrated by a newer crier: see [`super::migrate`]).
    pub async fn open(opts: &ConnectOptions<'_>, clock: Clock) -> Result<PgStore, PgError> {
        PgStore::with_pg(Pg::new(opts)?, clock).await
    }

    /// [`PgStore::open`] on a handle made already.
    pub async fn with_pg(pg: Pg, clock: Clock) -> Result<PgStore, PgError> {
        pg.migrate().await?;
        let client = pg.client().await?;
        for setting in ["synchronous_commit", "fsync"] {
            let row = client.query_one(&format!("SHOW {setting}"), &[]).await?;
            let value: String = row.try_get(0)?;
            if value != "on" {
                tracing::warn!(
                    setting,
                    value,
                    "PostgreSQL is set so that a committed write can be lost in a crash; crier \
                     answers a write once it is committed: set {setting} = on"
                );
            }
        }
        Ok(PgStore {
            pg,
            clock,
            lease: outbox::claim_lease(),
        })
    }

    /// The same store with claims leased for `lease` (`[postgres] lease`): after it, another
    /// node may claim a delivery this node claimed and did not report (a dead node's claims
    /// come back after it).
    pub fn with_lease(mut self, lease: std::time::Duration) -> PgStore {
        self.lease = chrono::Duration::from_std(lease).unwrap_or_else(|_| outbox::claim_lease());
        self
    }

    /// How long a claim holds its delivery.
    pub fn lease(&self) -> chrono::Duration {
        self.lease
    }

    /// The database handle (its pool, and dedicated connections for leader election and
    /// LISTEN).
    pub fn pg(&self) -> &Pg {
        &self.pg
    }

    /// The server's clock.
    pub fn clock(&self) -> Clock {
        self.clock
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        Ok(self.pg.client().await?)
    }
}

/// A read-write transaction (READ COMMITTED: each method locks what it reads).
async fn begin(client: &mut deadpool_postgres::Object) -> Result<Transaction<'_>, StoreError> {
    let c: &mut tokio_postgres::Client = client;
    c.transaction().await.map_err(db)
}

/// A read-only snapshot: every statement in it sees the same state.
async fn snapshot(client: &mut deadpool_postgres::Object) -> Result<Transaction<'_>, StoreError> {
    let c: &mut tokio_postgres::Client = client;
    c.build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .map_err(db)
}

// ---- the audit log ---------------------------------------------------------------------------

/// Appends `new` to the audit log inside `tx`, numbered and chained after the last entry, and
/// returns it as stored. The head row is locked (`FOR UPDATE`) until `tx` ends, so appends of
/// several nodes are serialised and each chains from the one before; an audited write of any
/// aggregate calls this in its own transaction, so its change and its entry commit together or
/// not at all.
pub(crate) async fn append_audit_tx(
    tx: &Transaction<'_>,
    new: NewAudit,
    at: DateTime<Utc>,
) -> Result<AuditEntry, PgError> {
    // The head row exists from the first append on; create it (at 0, never committed as such:
    // it is moved to entry 1 below) so there is a row to lock. A second node inserting it at
    // the same moment waits for the first one's transaction and then finds it.
    tx.execute(
        "INSERT INTO crier_audit_head (one, seq, hash) VALUES (true, 0, $1)
         ON CONFLICT (one) DO NOTHING",
        &[&GENESIS],
    )
    .await?;
    let row = tx
        .query_one(
            "SELECT seq, hash FROM crier_audit_head WHERE one FOR UPDATE",
            &[],
        )
        .await?;
    let seq: i64 = row.try_get(0)?;
    let hash: String = row.try_get(1)?;
    let seq = u64::try_from(seq)
        .map_err(|_| PgError::Corrupt(format!("audit head {seq} is out of range")))?;
    let entry = AuditEntry::chained(new, seq, &hash, at);
    let stored = entry
        .stored()
        .map_err(|e| PgError::Corrupt(format!("audit entry: {e}")))?;
    rows::append_audit(tx, &entry, &stored).await?;
    Ok(entry)
}

/// Whether `e` passes the audit listing's filters (all but `after` and `until`, which the walk
/// applies), as the sled store decides it.
fn audit_keeps(filter: &AuditFilter, e: &AuditEntry) -> bool {
    filter.since.is_none_or(|s| e.at >= s)
        && filter.actor.as_ref().is_none_or(|a| e.actor == *a)
        && filter.action.as_ref().is_none_or(|a| {
            e.action == *a || (a.ends_with('.') && e.action.starts_with(a.as_str()))
        })
        && filter
            .target
            .as_ref()
            .is_none_or(|x| e.target.contains(x.as_str()))
}

/// Entries read per round trip of the audit listing.
const AUDIT_PAGE: usize = 512;

impl Audit for PgStore {
    async fn audit(&self, new: NewAudit, at: DateTime<Utc>) -> Result<AuditEntry, StoreError> {
        let mut client = self.client().await?;
        let tx = begin(&mut client).await?;
        let entry = append_audit_tx(&tx, new, at).await?;
        tx.commit().await.map_err(db)?;
        Ok(entry)
    }

    /// The sled store walks the log from `after` and stops at the first entry later than
    /// `until` (entries are appended in time order, give or take a clock step). So does this,
    /// over pages of the rows that can matter: those passing the filters the columns can check
    /// (`at` is kept to the microsecond, so the database's test is the necessary half of the
    /// exact one made here on the entry) and those that may end the walk.
    async fn audit_entries(
        &self,
        filter: &AuditFilter,
    ) -> Result<(Vec<AuditEntry>, Option<u64>), StoreError> {
        let mut client = self.client().await?;
        let tx = snapshot(&mut client).await?;
        let page = filter.limit.saturating_add(1).clamp(1, AUDIT_PAGE);
        let page_sql = sql_limit(page);
        let mut cursor = i64::try_from(filter.after).unwrap_or(i64::MAX);
        let mut out: Vec<AuditEntry> = Vec::new();
        loop {
            let rows = tx
                .query(
                    "SELECT seq, entry FROM crier_audit
                     WHERE seq > $1
                       AND ((($2::timestamptz IS NULL OR at >= $2)
                             AND ($3::text IS NULL OR actor = $3)
                             AND ($4::text IS NULL OR action = $4
                                  OR (right($4, 1) = '.' AND starts_with(action, $4))))
                            OR ($5::timestamptz IS NOT NULL AND at >= $5))
                     ORDER BY seq
                     LIMIT $6",
                    &[
                        &cursor,
                        &filter.since,
                        &filter.actor,
                        &filter.action,
                        &filter.until,
                        &page_sql,
                    ],
                )
                .await
                .map_err(db)?;
            let fetched = rows.len();
            for r in rows {
                cursor = r.try_get(0).map_err(db)?;
                let raw: &[u8] = r.try_get(1).map_err(db)?;
                let e: AuditEntry = serde_json::from_slice(raw)
                    .map_err(|e| corrupt(&format!("audit entry {cursor}"), e))?;
                if filter.until.is_some_and(|u| e.at > u) {
                    return Ok((out, None));
                }
                if audit_keeps(filter, &e) {
                    if out.len() == filter.limit {
                        let next = out.last().map(|e| e.seq);
                        return Ok((out, next));
                    }
                    out.push(e);
                }
            }
            if fetched < page {
                return Ok((out, None));
            }
        }
    }

    async fn verify_audit(&self) -> Result<Verified, VerifyError> {
        let mut client = self.client().await?;
        let (entries, head) = {
            // The entries and the head from one snapshot: an append by another node between
            // the two reads would look like a truncated log.
            let tx = snapshot(&mut client).await?;
            let entries = rows::audit_stored(&tx).await.map_err(StoreError::from)?;
            let head = rows::audit_head(&tx).await.map_err(StoreError::from)?;
            tx.commit().await.map_err(db)?;
            (entries, head)
        };
        drop(client);
        // The walk hashes the whole log: off the async workers, as on sled.
        tokio::task::spawn_blocking(move || audit::verify(entries, head))
            .await
            .map_err(|e| StoreError::Broken(format!("the audit verification task failed: {e}")))?
            .map_err(VerifyError::Chain)
    }
}

// ---- social threads --------------------------------------------------------------------------

impl Threads for PgStore {
    async fn thread(&self, incident: Ulid, channel: &str) -> Result<Option<Thread>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT root, last FROM crier_threads WHERE incident_id = $1 AND channel = $2",
                &[&incident.to_string(), &channel],
            )
            .await
            .map_err(db)?;
        row.map(|r| {
            Ok(Thread {
                root: r.try_get(0).map_err(db)?,
                last: r.try_get(1).map_err(db)?,
            })
        })
        .transpose()
    }

    /// One statement, atomic on its own: the first post inserts the row (root and last), a
    /// later one — or one racing the first from another node, which waits for its row — only
    /// moves `last`; the row lock the upsert takes orders them. (A `SELECT … FOR UPDATE` first
    /// would lock nothing while the row does not exist yet.)
    async fn extend_thread(
        &self,
        incident: Ulid,
        channel: &str,
        post: &str,
    ) -> Result<Thread, StoreError> {
        let client = self.client().await?;
        let r = client
            .query_one(
                "INSERT INTO crier_threads (incident_id, channel, root, last)
                 VALUES ($1, $2, $3, $3)
                 ON CONFLICT (incident_id, channel) DO UPDATE SET last = EXCLUDED.last
                 RETURNING root, last",
                &[&incident.to_string(), &channel, &post],
            )
            .await
            .map_err(db)?;
        Ok(Thread {
            root: r.try_get(0).map_err(db)?,
            last: r.try_get(1).map_err(db)?,
        })
    }
}

// ---- templates -------------------------------------------------------------------------------

/// Taken by every template write, for the rest of its transaction: the name check and the
/// write it guards are one step across nodes (sled's `TEMPLATE_LOCK`). It conflicts with itself
/// and with other writes of the table, not with reads.
const LOCK_TEMPLATES: &str = "LOCK TABLE crier_templates IN SHARE ROW EXCLUSIVE MODE";

/// Another template with `tpl`'s name (in any case), inside a transaction holding the lock.
async fn name_taken(
    tx: &Transaction<'_>,
    tpl: &IncidentTemplate,
) -> Result<Option<IncidentTemplate>, StoreError> {
    let row = tx
        .query_opt(
            "SELECT body::text FROM crier_templates WHERE name_key = $1 AND id <> $2",
            &[&tpl.name.key(), &tpl.id.to_string()],
        )
        .await
        .map_err(db)?;
    template_of(row)
}

fn template_of(row: Option<tokio_postgres::Row>) -> Result<Option<IncidentTemplate>, StoreError> {
    row.map(|r| {
        let body: &str = r.try_get(0).map_err(db)?;
        Ok(rows::from_json::<IncidentTemplate>("template", body)?)
    })
    .transpose()
}

impl Templates for PgStore {
    async fn put_template(&self, tpl: &IncidentTemplate) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = begin(&mut client).await?;
        tx.batch_execute(LOCK_TEMPLATES).await.map_err(db)?;
        if let Some(other) = name_taken(&tx, tpl).await? {
            return Err(StoreError::Conflict(format!(
                "name: a template named \"{}\" exists already; choose another name, or edit that one (`crier templates edit \"{}\" …`)",
                other.name, other.name
            )));
        }
        rows::put_template(&tx, tpl, rows::Write::Upsert).await?;
        tx.commit().await.map_err(db)
    }

    async fn change_template(
        &self,
        id: Ulid,
        change: impl FnOnce(&IncidentTemplate) -> Result<IncidentTemplate, StoreError> + Send,
    ) -> Result<(IncidentTemplate, IncidentTemplate), StoreError> {
        let mut client = self.client().await?;
        let tx = begin(&mut client).await?;
        tx.batch_execute(LOCK_TEMPLATES).await.map_err(db)?;
        let row = tx
            .query_opt(
                "SELECT body::text FROM crier_templates WHERE id = $1 FOR UPDATE",
                &[&id.to_string()],
            )
            .await
            .map_err(db)?;
        let before = template_of(row)?.ok_or_else(|| template_not_found(id))?;
        let mut after = change(&before)?;
        after.id = before.id;
        if let Some(other) = name_taken(&tx, &after).await? {
            return Err(StoreError::Conflict(format!(
                "name: a template named \"{}\" exists already; choose another name",
                other.name
            )));
        }
        rows::put_template(&tx, &after, rows::Write::Upsert).await?;
        tx.commit().await.map_err(db)?;
        Ok((before, after))
    }

    async fn template(&self, id: Ulid) -> Result<IncidentTemplate, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT body::text FROM crier_templates WHERE id = $1",
                &[&id.to_string()],
            )
            .await
            .map_err(db)?;
        template_of(row)?.ok_or_else(|| template_not_found(id))
    }

    async fn template_by_key(&self, key: &str) -> Result<IncidentTemplate, StoreError> {
        let client = self.client().await?;
        let key = key.trim();
        // By id first, then by name, as the sled store looks (one statement: one state).
        let id = Ulid::from_string(key).ok().map(|id| id.to_string());
        let row = client
            .query_opt(
                "SELECT body::text FROM crier_templates
                 WHERE id = $1 OR name_key = $2
                 ORDER BY id = $1 DESC
                 LIMIT 1",
                &[&id, &key.to_lowercase()],
            )
            .await
            .map_err(db)?;
        template_of(row)?.ok_or_else(|| {
            template_not_found(format!(
                "\"{key}\" (see `crier templates list` for the names)"
            ))
        })
    }

    async fn templates(&self) -> Result<Vec<IncidentTemplate>, StoreError> {
        let client = self.client().await?;
        let mut all = rows::templates(&**client).await?;
        // By name as Rust orders it (the database's collation may order text otherwise).
        all.sort_by_key(|t| t.name.key());
        Ok(all)
    }

    async fn remove_template(&self, id: Ulid) -> Result<IncidentTemplate, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "DELETE FROM crier_templates WHERE id = $1 RETURNING body::text",
                &[&id.to_string()],
            )
            .await
            .map_err(db)?;
        template_of(row)?.ok_or_else(|| template_not_found(id))
    }
}

// ---- alert groups and webhook signatures -----------------------------------------------------

impl AlertGroups for PgStore {
    async fn alert_group(
        &self,
        source: &str,
        group: &str,
    ) -> Result<Option<AlertGroup>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT body::text FROM crier_alert_groups WHERE source = $1 AND grp = $2",
                &[&source, &group],
            )
            .await
            .map_err(db)?;
        row.map(|r| {
            let body: &str = r.try_get(0).map_err(db)?;
            Ok(rows::from_json::<AlertGroup>("alert group", body)?)
        })
        .transpose()
    }

    async fn put_alert_group(&self, g: &AlertGroup) -> Result<(), StoreError> {
        let client = self.client().await?;
        Ok(rows::put_alert_group(&**client, g, rows::Write::Upsert).await?)
    }

    async fn alert_groups(&self) -> Result<Vec<AlertGroup>, StoreError> {
        let client = self.client().await?;
        let mut all = rows::alert_groups(&**client).await?;
        // The sled store's key order (source, then group, bytewise), whatever the collation.
        all.sort_by(|a, b| (&a.source, &a.group).cmp(&(&b.source, &b.group)));
        Ok(all)
    }
}

impl HookSignatures for PgStore {
    /// Expired signatures are evicted on the way; an expired one still there gives way. Times
    /// are compared at the millisecond, as the sled store keeps them.
    async fn remember_signature(
        &self,
        key: [u8; 32],
        expires: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let (expires, now) = (to_millis(expires), to_millis(now));
        client
            .execute(
                "DELETE FROM crier_intake_signatures WHERE expires_at < $1",
                &[&now],
            )
            .await
            .map_err(db)?;
        // Inserted, or replacing an expired one: a row comes back; a live one: none. Two nodes
        // remembering the same signature at once: the second waits for the first's row, then
        // finds it live.
        let fresh = client
            .query_opt(
                "INSERT INTO crier_intake_signatures (key, expires_at) VALUES ($1, $2)
                 ON CONFLICT (key) DO UPDATE SET expires_at = EXCLUDED.expires_at
                     WHERE crier_intake_signatures.expires_at < $3
                 RETURNING true",
                &[&&key[..], &expires, &now],
            )
            .await
            .map_err(db)?;
        Ok(fresh.is_some())
    }

    async fn forget_signature(&self, key: [u8; 32]) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "DELETE FROM crier_intake_signatures WHERE key = $1",
                &[&&key[..]],
            )
            .await
            .map_err(db)?;
        Ok(())
    }
}

// ---- approvals -------------------------------------------------------------------------------

fn approval_row(r: &tokio_postgres::Row) -> Result<Approval, StoreError> {
    let body: &str = r.try_get(0).map_err(db)?;
    Ok(rows::from_json::<Approval>("approval", body)?)
}

fn approval_of(row: Option<tokio_postgres::Row>) -> Result<Option<Approval>, StoreError> {
    row.as_ref().map(approval_row).transpose()
}

impl Approvals for PgStore {
    /// Saved as the sled store does: a second put of the same id replaces it.
    async fn put_approval(&self, a: &Approval) -> Result<(), StoreError> {
        let client = self.client().await?;
        Ok(rows::put_approval(&**client, a, rows::Write::Upsert).await?)
    }

    async fn approval(&self, id: Ulid) -> Result<Approval, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT body::text FROM crier_approvals WHERE id = $1",
                &[&id.to_string()],
            )
            .await
            .map_err(db)?;
        approval_of(row)?.ok_or_else(|| approval_not_found(id))
    }

    /// Oldest first is id order (ULIDs), bytewise as their text sorts in the "C" collation.
    async fn approvals(
        &self,
        state: Option<ApprovalState>,
        limit: usize,
    ) -> Result<Vec<Approval>, StoreError> {
        let client = self.client().await?;
        let state = state.map(|s| rows::word(&s)).transpose()?;
        let found = client
            .query(
                "SELECT body::text FROM crier_approvals
                 WHERE $1::text IS NULL OR state = $1
                 ORDER BY id COLLATE \"C\"
                 LIMIT $2",
                &[&state, &sql_limit(limit)],
            )
            .await
            .map_err(db)?;
        found.iter().map(approval_row).collect()
    }

    async fn reject_approval(
        &self,
        id: Ulid,
        by: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<Approval, StoreError> {
        let mut client = self.client().await?;
        let tx = begin(&mut client).await?;
        // Locked until the commit: of two nodes deciding at once, the second reads the first's
        // decision.
        let row = tx
            .query_opt(
                "SELECT body::text FROM crier_approvals WHERE id = $1 FOR UPDATE",
                &[&id.to_string()],
            )
            .await
            .map_err(db)?;
        let mut a = approval_of(row)?.ok_or_else(|| approval_not_found(id))?;
        if a.state != ApprovalState::PendingApproval {
            return Err(StoreError::Conflict(a.decided_already()));
        }
        a.state = ApprovalState::Rejected;
        a.decided_by = Some(by.to_owned());
        a.decided_at = Some(now);
        a.reason = Some(reason.to_owned());
        rows::put_approval(&tx, &a, rows::Write::Upsert).await?;
        tx.commit().await.map_err(db)?;
        Ok(a)
    }
}

// ---- backups ---------------------------------------------------------------------------------

/// crier's backup file is a dump of the sled store's trees (keys in sled's layout, its derived
/// index trees, its commit counter), restored by writing a sled directory. Making one from rows
/// would mean rebuilding that layout for every aggregate, and the file could only be restored
/// into sled. PostgreSQL's own tools back a database up consistently while it serves, and
/// restore it into PostgreSQL: they are what an operator of a database already runs.
impl Backups for PgStore {
    async fn backup_to_file(&self, _file: File) -> Result<(File, Summary), BackupError> {
        Err(BackupError::Unsupported(BACKUP_REFUSED.to_owned()))
    }

    async fn backup_to_path(&self, _path: &Path) -> Result<Summary, BackupError> {
        Err(BackupError::Unsupported(BACKUP_REFUSED.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_map_to_the_stores_and_carry_no_secret() {
        let e: StoreError = PgError::Conflict("taken".into()).into();
        assert!(matches!(&e, StoreError::Conflict(m) if m == "taken"), "{e}");
        let e: StoreError = PgError::Corrupt("bad".into()).into();
        assert!(matches!(&e, StoreError::Corrupt(m) if m == "bad"), "{e}");
        let e: StoreError = PgError::SchemaTooNew {
            database: 9,
            binary: 2,
        }
        .into();
        assert!(matches!(&e, StoreError::Backend(_)), "{e}");
        assert!(e.to_string().contains("Run the newer crier"), "{e}");
        // A URL the parser refuses is not echoed (see `Pg::new`), so neither is its password.
        let bad = Pg::new(&ConnectOptions {
            url: "postgres://crier:hunter2@db:notaport/crier",
            password: None,
            ca_file: None,
            pool_size: 1,
        })
        .expect_err("refused");
        let e: StoreError = bad.into();
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }

    #[tokio::test]
    async fn open_migrates_and_a_newer_schema_is_refused() {
        let Some(db) = super::super::testdb::TestDb::create("pgstore").await else {
            return;
        };
        let (url, password) = db.url_and_password();
        let ca = db.ca_file();
        let url = match ca {
            Some(_) => format!("{url}?sslmode=require"),
            None => format!("{url}?sslmode=disable"),
        };
        let opts = ConnectOptions {
            url: &url,
            password: Some(&password),
            ca_file: ca.as_deref(),
            pool_size: 2,
        };
        let store = PgStore::open(&opts, Clock::new()).await.expect("open");
        let client = store.pg().client().await.expect("client");
        let version: i32 = client
            .query_one("SELECT max(version) FROM crier_schema", &[])
            .await
            .expect("version")
            .get(0);
        assert_eq!(version, super::super::migrate::binary_version());
        // Opened again: nothing to do.
        PgStore::open(&opts, Clock::new()).await.expect("reopen");
        client
            .execute(
                "INSERT INTO crier_schema (version, name) VALUES ($1, 'from the future')",
                &[&(version + 1)],
            )
            .await
            .expect("insert");
        let e = PgStore::open(&opts, Clock::new())
            .await
            .expect_err("a newer schema is refused");
        assert!(matches!(e, PgError::SchemaTooNew { .. }), "{e:?}");
        let e: StoreError = e.into();
        assert!(!e.to_string().contains(&password), "{e}");
    }

    #[tokio::test]
    async fn a_backup_is_refused_naming_pg_dump() {
        let Some(db) = super::super::testdb::TestDb::create("pgbackup").await else {
            return;
        };
        let store = PgStore::with_pg(db.pg(1), Clock::new())
            .await
            .expect("open");
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("crier.crb");
        let e = store.backup_to_path(&path).await.expect_err("refused");
        assert!(matches!(e, BackupError::Unsupported(_)), "{e:?}");
        assert!(e.to_string().contains("pg_dump"), "{e}");
        assert!(!path.exists(), "nothing written");
        let file = tempfile::tempfile().expect("file");
        let e = store.backup_to_file(file).await.expect_err("refused");
        assert!(e.to_string().contains("pg_dump"), "{e}");
    }
}
