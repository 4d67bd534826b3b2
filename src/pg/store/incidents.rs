//! PostgreSQL backend of the port's incidents and updates (the timeline, drafts, publishing,
//! approval release) and components with their history ([`Incidents`], [`Components`]).
//!
//! Why it looks as it does (sled, `store/mod.rs`, is the reference):
//! - **The incident's write lock** is its row, `SELECT … FOR UPDATE` in the write's transaction:
//!   two nodes appending at once take turns, so updates are numbered 1..n with no gap (the
//!   position is `update_count` after `domain::apply_update`, which runs on the incident as the
//!   lock holder read it), and an approval released with the write (`Decision`) is checked and
//!   marked approved under that lock, in the same transaction: the same decision applied twice
//!   publishes once, across nodes. An opening has no row to lock yet; its insert is refused by
//!   the primary key when another node opened the same id first (sled's message).
//! - **The component lock** (sled's `component_lock`) is a table lock on `crier_components`
//!   that conflicts with itself and with writes, not with reads: a write that sets components
//!   reads, checks and writes them as one step, and `set_component` records the `before → after`
//!   of the status it replaces. Locks are always taken in one order — incident row, component
//!   table, approval row, audit head, public generation — so two writes cannot deadlock.
//! - **Audited writes** append the request's armed entry (`store::audit::armed_audit`) with
//!   `append_audit_tx` in the write's transaction: the change and its entry commit together.
//! - **The public generation** is a row incremented in the transaction of every public write,
//!   so every node sees it move exactly when the write becomes visible (migration 3).
//! - **Component history** is kept at the millisecond, as sled's keys keep it (a second change
//!   in the same millisecond replaces the first), and pruned as sled prunes it.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Duration, Utc};
use tokio_postgres::Transaction;
use ulid::Ulid;

use super::PgStore;
use super::{append_audit_tx, approval_not_found, begin, db, snapshot, sql_limit, to_millis};
use crate::domain::audit::AuditEntry;
use crate::domain::{
    apply_update, open_incident, Appended, Approval, ApprovalState, Broadcast, Component,
    ComponentName, ComponentStatus, Decision, DomainError, Incident, IncidentFilter, NewIncident,
    NewUpdate, Status, StatusChange, Update,
};
use crate::pg::rows::{self, Write};
use crate::store::audit::{armed_audit, ArmedAudit};
use crate::store::history::RETAIN_DAYS;
use crate::store::port::{Components, Incidents};
use crate::store::{no_statuses_in_drafts, unknown_status_component, with_components, StoreError};

/// The component lock: taken by every write that sets components, until its commit.
const LOCK_COMPONENTS: &str = "LOCK TABLE crier_components IN SHARE ROW EXCLUSIVE MODE";

/// Incidents read per round trip of a listing.
const INCIDENT_PAGE: usize = 256;

fn incident_not_found(id: Ulid) -> StoreError {
    StoreError::NotFound {
        what: "incident",
        id: id.to_string(),
    }
}

fn body_of<T: serde::de::DeserializeOwned>(
    what: &str,
    row: Option<tokio_postgres::Row>,
) -> Result<Option<T>, StoreError> {
    row.map(|r| {
        let body: &str = r.try_get(0).map_err(db)?;
        Ok(rows::from_json::<T>(what, body)?)
    })
    .transpose()
}

/// Incident `id` locked until the end of `tx` (None when there is none).
async fn locked_incident(tx: &Transaction<'_>, id: Ulid) -> Result<Option<Incident>, StoreError> {
    let row = tx
        .query_opt(
            "SELECT body::text FROM crier_incidents WHERE id = $1 FOR UPDATE",
            &[&id.to_string()],
        )
        .await
        .map_err(db)?;
    body_of("incident", row)
}

/// Marks the approval `d` names approved, or refuses one decided already (sled's
/// `mark_approved`); its row stays locked until the end of `tx`.
async fn mark_approved(tx: &Transaction<'_>, d: &Decision) -> Result<(), StoreError> {
    let row = tx
        .query_opt(
            "SELECT body::text FROM crier_approvals WHERE id = $1 FOR UPDATE",
            &[&d.approval.to_string()],
        )
        .await
        .map_err(db)?;
    let mut a: Approval =
        body_of("approval", row)?.ok_or_else(|| approval_not_found(d.approval))?;
    if a.state != ApprovalState::PendingApproval {
        return Err(StoreError::Conflict(a.decided_already()));
    }
    a.state = ApprovalState::Approved;
    a.decided_by = Some(d.by.clone());
    a.decided_at = Some(d.at);
    rows::put_approval(tx, &a, Write::Upsert).await?;
    Ok(())
}

/// The components `statuses` set, as they will be written, each with its change for the audit
/// entry; one already in its new status is left out. Refuses an unknown component, naming it.
/// The caller holds the component lock. (sled's `component_changes`.)
async fn component_changes(
    tx: &Transaction<'_>,
    statuses: &[(ComponentName, ComponentStatus)],
    now: DateTime<Utc>,
) -> Result<(Vec<Component>, Vec<String>), StoreError> {
    let (mut set, mut said) = (Vec::new(), Vec::new());
    for (name, status) in statuses {
        let row = tx
            .query_opt(
                "SELECT body::text FROM crier_components WHERE name = $1",
                &[&name.as_str()],
            )
            .await
            .map_err(db)?;
        let Some(mut c) = body_of::<Component>("component", row)? else {
            return Err(unknown_status_component(name).into());
        };
        if c.status == *status || set.iter().any(|s: &Component| s.name == *name) {
            continue;
        }
        said.push(format!(
            "{name}: {} → {}",
            c.status.as_str(),
            status.as_str()
        ));
        c.status = *status;
        c.updated_at = now.max(c.updated_at);
        set.push(c);
    }
    Ok((set, said))
}

/// Records that from `at` on component `name` had `status`, at the millisecond as sled keeps it.
async fn record_change(
    tx: &Transaction<'_>,
    name: &ComponentName,
    status: ComponentStatus,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    Ok(rows::put_component_change(tx, name, to_millis(at), status).await?)
}

/// Removes the records of `name` older than `RETAIN_DAYS` before `now`, except the newest of
/// them (sled's `history::prune`).
async fn prune(
    tx: &Transaction<'_>,
    name: &ComponentName,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let cutoff = to_millis(now - Duration::days(RETAIN_DAYS));
    tx.execute(
        "DELETE FROM crier_component_history
         WHERE name = $1 AND at < $2
           AND at < (SELECT max(at) FROM crier_component_history WHERE name = $1 AND at < $2)",
        &[&name.as_str(), &cutoff],
    )
    .await
    .map_err(db)?;
    Ok(())
}

/// Writes components changed by an incident's write, each with its history record.
async fn write_components(
    tx: &Transaction<'_>,
    set: &[Component],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    for c in set {
        record_change(tx, &c.name, c.status, c.updated_at).await?;
        rows::put_component(tx, c, Write::Upsert).await?;
        prune(tx, &c.name, now).await?;
    }
    Ok(())
}

/// Writes the broadcasts of update `seq` (sled's `write_broadcasts`).
async fn write_broadcasts(
    tx: &Transaction<'_>,
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
        rows::put_broadcast(tx, &b, Write::Upsert).await?;
    }
    Ok(())
}

/// Appends the current request's armed audit entry, if any, in `tx`.
async fn audit_armed(
    tx: &Transaction<'_>,
    describe: impl FnOnce() -> (String, String),
) -> Result<Option<(ArmedAudit, AuditEntry)>, StoreError> {
    let Some(armed) = armed_audit(describe) else {
        return Ok(None);
    };
    let at = armed.now();
    let entry = append_audit_tx(tx, armed.new.clone(), at).await?;
    Ok(Some((armed, entry)))
}

/// Commits `tx`, then hands the audit entry written in it to the request.
async fn commit(
    tx: Transaction<'_>,
    audited: Option<(ArmedAudit, AuditEntry)>,
) -> Result<(), StoreError> {
    tx.commit().await.map_err(db)?;
    if let Some((armed, entry)) = audited {
        armed.written(entry);
    }
    Ok(())
}

/// Moves the public generation on, in the transaction of a public write.
async fn public_changed(tx: &Transaction<'_>) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE crier_public_generation SET gen = gen + 1 WHERE one",
        &[],
    )
    .await
    .map_err(db)?;
    Ok(())
}

/// Refuses the first of `names` that is not a component.
async fn components_exist<C: tokio_postgres::GenericClient>(
    c: &C,
    names: &[ComponentName],
) -> Result<(), StoreError> {
    if names.is_empty() {
        return Ok(());
    }
    let wanted: Vec<&str> = names.iter().map(|n| n.as_str()).collect();
    let found = c
        .query(
            "SELECT name FROM crier_components WHERE name = ANY($1)",
            &[&wanted],
        )
        .await
        .map_err(db)?;
    let found: HashSet<String> = found
        .iter()
        .map(|r| r.try_get::<_, String>(0))
        .collect::<Result<_, _>>()
        .map_err(db)?;
    match names.iter().find(|n| !found.contains(n.as_str())) {
        Some(n) => Err(DomainError::UnknownComponent(n.to_string()).into()),
        None => Ok(()),
    }
}

impl Incidents for PgStore {
    async fn create_incident_decided(
        &self,
        id: Ulid,
        mut new: NewIncident,
        statuses: &[(ComponentName, ComponentStatus)],
        now: DateTime<Utc>,
        decision: Option<&Decision>,
    ) -> Result<(Incident, Update, Vec<String>), StoreError> {
        let mut client = self.client().await?;
        components_exist(&**client, &new.components).await?;
        if new.draft && !statuses.is_empty() {
            return Err(no_statuses_in_drafts().into());
        }
        let broadcast = std::mem::take(&mut new.broadcast);
        let (incident, update) = open_incident(id, Ulid::new(), new, now)?;
        let tx = begin(&mut client).await?;
        let exists = tx
            .query_opt(
                "SELECT 1 FROM crier_incidents WHERE id = $1",
                &[&id.to_string()],
            )
            .await
            .map_err(db)?;
        if exists.is_some() {
            return Err(StoreError::Conflict(format!(
                "incident {id} exists already"
            )));
        }
        if !statuses.is_empty() {
            tx.batch_execute(LOCK_COMPONENTS).await.map_err(db)?;
        }
        let (set, changed) = component_changes(&tx, statuses, now).await?;
        if let Some(d) = decision {
            mark_approved(&tx, d).await?;
        }
        // Another node opening the same id at once waits here for its commit, then is refused
        // with the same message.
        rows::put_incident(&tx, &incident, Write::Insert).await?;
        if !update.draft {
            write_broadcasts(&tx, id, 1, update.id, &broadcast, now).await?;
        }
        rows::put_update(&tx, 1, &update, Write::Insert).await?;
        write_components(&tx, &set, now).await?;
        let audited = audit_armed(&tx, || {
            (
                format!("incident {id}"),
                with_components(crate::domain::audit::opened(&incident), &changed),
            )
        })
        .await?;
        public_changed(&tx).await?;
        commit(tx, audited).await?;
        Ok((incident, update, changed))
    }

    async fn append_update_setting(
        &self,
        id: Ulid,
        mut new: NewUpdate,
        statuses: &[(ComponentName, ComponentStatus)],
        now: DateTime<Utc>,
        decision: Option<&Decision>,
    ) -> Result<Appended, StoreError> {
        if new.draft && !statuses.is_empty() {
            return Err(no_statuses_in_drafts().into());
        }
        let mut client = self.client().await?;
        let tx = begin(&mut client).await?;
        // The incident's write lock, first (see the module docs for the order).
        let stored = locked_incident(&tx, id).await?;
        if !statuses.is_empty() {
            tx.batch_execute(LOCK_COMPONENTS).await.map_err(db)?;
        }
        // Checked before the incident is looked for, as sled does.
        let (set, changed) = component_changes(&tx, statuses, now).await?;
        let mut incident = stored.ok_or_else(|| incident_not_found(id))?;
        if incident.public.is_none() && !incident.draft {
            // A record from before `public` existed: its state is what the public saw.
            incident.publish_state();
        }
        let before = (incident.status, incident.impact, incident.titles.clone());
        let broadcast = std::mem::take(&mut new.broadcast);
        let update_id = Ulid::new();
        let (update, promise, previous_due) = apply_update(&mut incident, new, update_id, now)?;
        if let Some(d) = decision {
            mark_approved(&tx, d).await?;
        }
        let seq = incident.update_count;
        if !update.draft {
            write_broadcasts(&tx, id, seq, update_id, &broadcast, now).await?;
        }
        let summary = with_components(
            crate::domain::audit::changed((before.0, before.1, &before.2), &incident, &update),
            &changed,
        );
        rows::put_update(&tx, seq, &update, Write::Insert).await?;
        rows::put_incident(&tx, &incident, Write::Upsert).await?;
        write_components(&tx, &set, now).await?;
        let audited = audit_armed(&tx, || (format!("incident {id}"), summary.clone())).await?;
        public_changed(&tx).await?;
        commit(tx, audited).await?;
        Ok(Appended {
            incident,
            update,
            promise,
            previous_due,
            summary,
        })
    }

    async fn publish_drafts_decided(
        &self,
        id: Ulid,
        broadcast: &[(String, bool)],
        now: DateTime<Utc>,
        decision: Option<&Decision>,
    ) -> Result<(Incident, Vec<Update>), StoreError> {
        let mut client = self.client().await?;
        let tx = begin(&mut client).await?;
        let mut incident = locked_incident(&tx, id)
            .await?
            .ok_or_else(|| incident_not_found(id))?;
        let mut published = Vec::new();
        for (seq, mut u) in rows::updates(&tx, id).await? {
            if u.draft && u.published_at.is_none() {
                u.published_at = Some(now);
                published.push((seq, u));
            }
        }
        if published.is_empty() {
            return Err(StoreError::Conflict(format!(
                "incident {id} has no unpublished draft updates"
            )));
        }
        if let Some(d) = decision {
            mark_approved(&tx, d).await?;
        }
        for (seq, u) in &published {
            write_broadcasts(&tx, id, *seq, u.id, broadcast, now).await?;
            rows::put_update(&tx, *seq, u, Write::Upsert).await?;
        }
        incident.draft = false;
        // Every update is published now, so the public sees the latest state.
        incident.publish_state();
        rows::put_incident(&tx, &incident, Write::Upsert).await?;
        let n = published.len();
        let audited = audit_armed(&tx, || {
            (
                format!("incident {id}"),
                format!("{n} draft update(s) published"),
            )
        })
        .await?;
        public_changed(&tx).await?;
        commit(tx, audited).await?;
        Ok((incident, published.into_iter().map(|(_, u)| u).collect()))
    }

    async fn incident_summary(&self, id: Ulid) -> Result<Incident, StoreError> {
        let client = self.client().await?;
        rows::incident(&**client, id)
            .await?
            .ok_or_else(|| incident_not_found(id))
    }

    /// The incident and its timeline from one snapshot.
    async fn incident(&self, id: Ulid) -> Result<(Incident, Vec<Update>), StoreError> {
        let mut client = self.client().await?;
        let tx = snapshot(&mut client).await?;
        let incident = rows::incident(&tx, id)
            .await?
            .ok_or_else(|| incident_not_found(id))?;
        let updates = rows::updates(&tx, id)
            .await?
            .into_iter()
            .map(|(_, u)| u)
            .collect();
        tx.commit().await.map_err(db)?;
        Ok((incident, updates))
    }

    /// Newest first is descending id order (ULIDs), bytewise as sled's keys; read in pages from
    /// one snapshot until `filter.limit` incidents passed `IncidentFilter::view`.
    async fn incidents(&self, filter: &IncidentFilter) -> Result<Vec<Incident>, StoreError> {
        let mut out = Vec::new();
        if filter.limit == 0 {
            return Ok(out);
        }
        let mut client = self.client().await?;
        let tx = snapshot(&mut client).await?;
        let page = sql_limit(INCIDENT_PAGE);
        let mut cursor: Option<String> = None;
        loop {
            let found = tx
                .query(
                    "SELECT id, body::text FROM crier_incidents
                     WHERE $1::text IS NULL OR id COLLATE \"C\" < $1
                     ORDER BY id COLLATE \"C\" DESC
                     LIMIT $2",
                    &[&cursor, &page],
                )
                .await
                .map_err(db)?;
            let fetched = found.len();
            for r in found {
                let id: String = r.try_get(0).map_err(db)?;
                let body: &str = r.try_get(1).map_err(db)?;
                let i: Incident = rows::from_json("incident", body)?;
                cursor = Some(id);
                if let Some(i) = filter.view(i) {
                    out.push(i);
                    if out.len() >= filter.limit {
                        tx.commit().await.map_err(db)?;
                        return Ok(out);
                    }
                }
            }
            if fetched < INCIDENT_PAGE {
                tx.commit().await.map_err(db)?;
                return Ok(out);
            }
        }
    }
}

impl Components for PgStore {
    async fn set_component(
        &self,
        name: ComponentName,
        status: ComponentStatus,
        group: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<Component, StoreError> {
        let mut client = self.client().await?;
        let tx = begin(&mut client).await?;
        // Read under the component lock, so the before → after it records is the status it
        // replaces.
        tx.batch_execute(LOCK_COMPONENTS).await.map_err(db)?;
        let row = tx
            .query_opt(
                "SELECT body::text FROM crier_components WHERE name = $1",
                &[&name.as_str()],
            )
            .await
            .map_err(db)?;
        let before: Option<Component> = body_of("component", row)?;
        // Never before the change it replaces.
        let now = before.as_ref().map_or(now, |b| now.max(b.updated_at));
        let c = Component {
            name,
            group: group.or_else(|| before.as_ref().and_then(|b| b.group.clone())),
            status,
            updated_at: now,
        };
        if before.as_ref().is_none_or(|b| b.status != status) {
            record_change(&tx, &c.name, status, now).await?;
        }
        let before = before.map_or("new", |b| b.status.as_str());
        rows::put_component(&tx, &c, Write::Upsert).await?;
        let audited = audit_armed(&tx, || {
            (
                format!("component {}", c.name),
                format!("{before} → {}", c.status.as_str()),
            )
        })
        .await?;
        public_changed(&tx).await?;
        prune(&tx, &c.name, now).await?;
        commit(tx, audited).await?;
        Ok(c)
    }

    async fn restore_components(
        &self,
        incident: &Incident,
        now: DateTime<Utc>,
    ) -> Result<Vec<ComponentName>, StoreError> {
        if incident.components.is_empty() {
            return Ok(Vec::new());
        }
        let mut client = self.client().await?;
        let tx = begin(&mut client).await?;
        tx.batch_execute(LOCK_COMPONENTS).await.map_err(db)?;
        // The components other open incidents affect, read under the lock.
        let finals = [
            rows::word(&Status::Resolved)?,
            rows::word(&Status::Completed)?,
        ];
        let open = tx
            .query(
                "SELECT body::text FROM crier_incidents WHERE id <> $1 AND status <> ALL($2)",
                &[&incident.id.to_string(), &&finals[..]],
            )
            .await
            .map_err(db)?;
        let mut held = HashSet::new();
        for r in &open {
            let body: &str = r.try_get(0).map_err(db)?;
            let other: Incident = rows::from_json("incident", body)?;
            if other.is_open() {
                held.extend(other.components);
            }
        }
        let mut restored = Vec::new();
        for name in &incident.components {
            if held.contains(name) {
                continue;
            }
            let row = tx
                .query_opt(
                    "SELECT body::text FROM crier_components WHERE name = $1",
                    &[&name.as_str()],
                )
                .await
                .map_err(db)?;
            let Some(mut c) = body_of::<Component>("component", row)? else {
                continue;
            };
            if c.status == ComponentStatus::Operational {
                continue;
            }
            c.status = ComponentStatus::Operational;
            c.updated_at = now;
            rows::put_component(&tx, &c, Write::Upsert).await?;
            record_change(&tx, name, ComponentStatus::Operational, now).await?;
            prune(&tx, name, now).await?;
            restored.push(name.clone());
        }
        if !restored.is_empty() {
            public_changed(&tx).await?;
        }
        tx.commit().await.map_err(db)?;
        Ok(restored)
    }

    /// By name, bytewise as sled's keys (whatever the database's collation).
    async fn components(&self) -> Result<Vec<Component>, StoreError> {
        let client = self.client().await?;
        let mut all = rows::components(&**client).await?;
        all.sort_by(|a, b| a.name.as_str().cmp(b.name.as_str()));
        Ok(all)
    }

    async fn check_components(&self, names: &[ComponentName]) -> Result<(), StoreError> {
        let client = self.client().await?;
        components_exist(&**client, names).await
    }

    /// Sled's walk over its history keys (name, then time), over rows in that order.
    async fn component_history(
        &self,
        since: DateTime<Utc>,
    ) -> Result<BTreeMap<String, Vec<StatusChange>>, StoreError> {
        let client = self.client().await?;
        let mut out: BTreeMap<String, Vec<StatusChange>> = BTreeMap::new();
        for (name, at, status) in rows::component_changes(&**client).await? {
            let list = out.entry(name).or_default();
            // The rows come by name in the database's collation, each name's in time order:
            // the map orders the names.
            if list.last().is_some_and(|c| c.at <= since) && at <= since {
                list.clear();
            }
            list.push(StatusChange { at, status });
        }
        Ok(out)
    }

    async fn public_generation(&self) -> Result<u64, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_one("SELECT gen FROM crier_public_generation WHERE one", &[])
            .await
            .map_err(db)?;
        let gen: i64 = row.try_get(0).map_err(db)?;
        u64::try_from(gen).map_err(|_| {
            StoreError::Corrupt(format!("the public generation {gen} is out of range"))
        })
    }
}
