//! Writes waiting for a second person (see [`crate::domain::approval`]): the sled backend of
//! [`Approvals`] (the port's trait), plus `mark_approved`, the step of an incident write that
//! releases an approval.
//!
//! Tree `approvals`: approval ULID → JSON [`Approval`].
//!
//! A decision is taken under the write lock of the approval's incident, the same lock the
//! incident write it releases takes: approving marks the approval `approved` and writes the
//! update in one locked section with one group commit, so of two approvals of the same record
//! exactly one publishes, and the other finds it decided (a conflict). The mark is written before
//! the update's records: a crash in between can lose the publication (the approval says
//! approved, the timeline lacks it: post it again), never send it twice.

use super::port::Approvals;
use super::{decode, encode, SledStore, StoreError, Trees};
use crate::domain::Decision;
use crate::domain::{Approval, ApprovalState};
use chrono::{DateTime, Utc};
use ulid::Ulid;

impl Approvals for SledStore {
    /// Saves a new approval. Durable when it returns.
    async fn put_approval(&self, a: &Approval) -> Result<(), StoreError> {
        let t = self.t()?;
        {
            let _w = self.writing_async().await;
            t.approvals.insert(a.id.to_bytes(), encode(a)?)?;
        }
        t.durable().await
    }

    /// One approval.
    async fn approval(&self, id: Ulid) -> Result<Approval, StoreError> {
        let t = self.t()?;
        Self::approval_in(&t, id)
    }

    /// Approvals in `state` (all with `None`), oldest first, at most `limit`.
    async fn approvals(
        &self,
        state: Option<ApprovalState>,
        limit: usize,
    ) -> Result<Vec<Approval>, StoreError> {
        let t = self.t()?;
        let mut out = Vec::new();
        for v in t.approvals.iter().values() {
            if out.len() >= limit {
                break;
            }
            let a: Approval = decode(&v?)?;
            if state.is_none_or(|s| a.state == s) {
                out.push(a);
            }
        }
        Ok(out)
    }

    /// Rejects a pending approval with a reason; nothing is sent. Durable when it returns.
    async fn reject_approval(
        &self,
        id: Ulid,
        by: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<Approval, StoreError> {
        let t = self.t()?;
        let incident = Self::approval_in(&t, id)?.incident_id;
        let a = {
            let _w = self.lock(incident).await;
            let mut a = Self::approval_in(&t, id)?;
            if a.state != ApprovalState::PendingApproval {
                return Err(StoreError::Conflict(a.decided_already()));
            }
            a.state = ApprovalState::Rejected;
            a.decided_by = Some(by.to_owned());
            a.decided_at = Some(now);
            a.reason = Some(reason.to_owned());
            t.approvals.insert(a.id.to_bytes(), encode(&a)?)?;
            a
        };
        t.durable().await?;
        Ok(a)
    }
}

impl SledStore {
    fn approval_in(t: &Trees, id: Ulid) -> Result<Approval, StoreError> {
        let raw = t
            .approvals
            .get(id.to_bytes())?
            .ok_or_else(|| StoreError::NotFound {
                what: "approval",
                id: id.to_string(),
            })?;
        decode(&raw)
    }

    /// Inside the incident's write lock: marks a pending approval approved, or refuses a decided
    /// one with a conflict (see the module docs).
    pub(crate) fn mark_approved(&self, t: &Trees, d: &Decision) -> Result<(), StoreError> {
        let mut a = Self::approval_in(t, d.approval)?;
        if a.state != ApprovalState::PendingApproval {
            return Err(StoreError::Conflict(a.decided_already()));
        }
        a.state = ApprovalState::Approved;
        a.decided_by = Some(d.by.clone());
        a.decided_at = Some(d.at);
        t.approvals.insert(a.id.to_bytes(), encode(&a)?)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ApprovalAction;
    use crate::store::port::Incidents;
    use crate::store::tests::{new_incident, new_update};

    fn pending(incident: Ulid) -> Approval {
        Approval {
            id: Ulid::new(),
            state: ApprovalState::PendingApproval,
            action: ApprovalAction::Update,
            incident_id: incident,
            title: "t".into(),
            message: None,
            request: serde_json::Value::Null,
            author: "maria".into(),
            requested_at: Utc::now(),
            reasons: vec![],
            decided_by: None,
            decided_at: None,
            reason: None,
        }
    }

    /// The check that an approval is still pending is made under the incident's write lock, in
    /// the write that publishes it: the same decision applied twice publishes once, and a
    /// rejected approval cannot be published.
    #[tokio::test]
    async fn a_decision_releases_its_write_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        let now = Utc::now();
        let (i, _) = store
            .create_incident(new_incident("held"), now)
            .await
            .unwrap();
        let a = pending(i.id);
        store.put_approval(&a).await.unwrap();
        let d = Decision {
            approval: a.id,
            by: "jussi".into(),
            at: now,
        };
        store
            .append_update_decided(i.id, new_update("approved"), now, Some(&d))
            .await
            .unwrap();
        let again = store
            .append_update_decided(i.id, new_update("approved"), now, Some(&d))
            .await;
        assert!(
            matches!(again, Err(StoreError::Conflict(m)) if m.contains("already approved by jussi"))
        );
        assert_eq!(store.incident(i.id).await.unwrap().1.len(), 2);
        assert_eq!(
            store.approval(a.id).await.unwrap().state,
            ApprovalState::Approved
        );

        let b = pending(i.id);
        store.put_approval(&b).await.unwrap();
        store
            .reject_approval(b.id, "jussi", "no", now)
            .await
            .unwrap();
        let d = Decision {
            approval: b.id,
            by: "jussi".into(),
            at: now,
        };
        assert!(store
            .append_update_decided(i.id, new_update("rejected"), now, Some(&d))
            .await
            .is_err());
        assert!(store
            .reject_approval(b.id, "jussi", "no", now)
            .await
            .is_err());
        assert_eq!(store.incident(i.id).await.unwrap().1.len(), 2);
    }
}
