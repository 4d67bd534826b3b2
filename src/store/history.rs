//! Component status history: every change of a component's status, kept for the uptime bars of
//! the status page (see `web::uptime`).
//!
//! Tree `component_history`: key = component name ‖ 0 ‖ time in milliseconds since the epoch
//! (i64, big-endian with the sign bit flipped, so byte order is time order, before 1970 too);
//! value = JSON `{"status": …}`. A component name cannot contain a NUL byte, so one
//! component's records are exactly the keys starting with its name and 0, in time order.
//!
//! A record is written with the status change it records: in the same sled transaction
//! (`Components::restore_components` of the sled backend), or just before the component record that commits the change
//! and its audit entry (`Components::set_component`; a crash in between leaves a record newer than
//! the component, which [`repair`] removes at start-up). Records older than
//! [`RETAIN_DAYS`] are pruned when the component changes again, keeping the newest one before
//! the cutoff: it says what the status was when the window starts.

use super::{decode, encode, StoreError, Trees};
use crate::domain::{ComponentName, ComponentStatus, StatusChange};
use chrono::{DateTime, Duration, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use sled::transaction::{TransactionalTree, UnabortableTransactionError};
use std::collections::BTreeMap;

/// The tree's name.
pub const TREE: &str = "component_history";

/// How long records are kept (the page shows 90 days).
pub const RETAIN_DAYS: i64 = 100;

#[derive(Serialize, Deserialize)]
struct Record {
    status: ComponentStatus,
}

fn time_bytes(at: DateTime<Utc>) -> [u8; 8] {
    ((at.timestamp_millis() as u64) ^ (1 << 63)).to_be_bytes()
}

fn prefix(name: &ComponentName) -> Vec<u8> {
    let mut k = Vec::with_capacity(name.as_str().len() + 9);
    k.extend_from_slice(name.as_str().as_bytes());
    k.push(0);
    k
}

pub(super) fn key(name: &ComponentName, at: DateTime<Utc>) -> Vec<u8> {
    let mut k = prefix(name);
    k.extend_from_slice(&time_bytes(at));
    k
}

/// Splits a key into the component name and the time.
fn parse_key(k: &[u8]) -> Option<(&str, DateTime<Utc>)> {
    let split = k.len().checked_sub(9)?;
    if k.get(split) != Some(&0) {
        return None;
    }
    let name = std::str::from_utf8(&k[..split]).ok()?;
    let t = <[u8; 8]>::try_from(&k[split + 1..]).ok()?;
    let ms = (u64::from_be_bytes(t) ^ (1 << 63)) as i64;
    Some((name, Utc.timestamp_millis_opt(ms).single()?))
}

/// The value of a record saying that the component had `status` (see [`key`]).
pub(super) fn value(status: ComponentStatus) -> Result<Vec<u8>, StoreError> {
    encode(&Record { status })
}

/// Records a change inside the caller's transaction.
pub(super) fn record(
    th: &TransactionalTree,
    name: &ComponentName,
    status: ComponentStatus,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    let value = encode(&Record { status })?;
    th.insert(key(name, at), value)
        .map_err(|e: UnabortableTransactionError| match e {
            UnabortableTransactionError::Storage(e) => e.into(),
            UnabortableTransactionError::Conflict => {
                StoreError::Conflict("the component changed concurrently; try again".into())
            }
        })?;
    Ok(())
}

/// Records a change outside a transaction, before the component record that commits it (see
/// [`repair`]).
pub(super) fn record_plain(
    t: &Trees,
    name: &ComponentName,
    status: ComponentStatus,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    t.put(
        &t.component_history,
        key(name, at),
        encode(&Record { status })?,
    )
}

/// Removes what a crash between a history record and its component's record left: a record
/// newer than its component's last change, or of a component that was never written (there is
/// no way to remove a component). Returns how many records it removed.
pub(super) fn repair(t: &Trees) -> Result<usize, StoreError> {
    let mut newest: BTreeMap<String, (sled::IVec, DateTime<Utc>)> = BTreeMap::new();
    for k in t.component_history.iter().keys() {
        let k = k?;
        let Some((name, at)) = parse_key(&k) else {
            return Err(StoreError::Corrupt("a component history key".into()));
        };
        newest.insert(name.to_owned(), (k.clone(), at));
    }
    let mut removed = 0;
    for (name, (k, at)) in newest {
        let cut_off = match t.components.get(name.as_bytes())? {
            Some(raw) => decode::<crate::domain::Component>(&raw)?.updated_at < at,
            None => true,
        };
        if cut_off {
            t.component_history.remove(k)?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Removes the records of `name` older than [`RETAIN_DAYS`] before `now`, except the newest of
/// them. The caller flushes.
pub(super) fn prune(t: &Trees, name: &ComponentName, now: DateTime<Utc>) -> Result<(), StoreError> {
    let cutoff = key(name, now - Duration::days(RETAIN_DAYS));
    let old: Vec<_> = t
        .component_history
        .range(prefix(name)..cutoff)
        .keys()
        .collect::<Result<_, _>>()?;
    if let Some((_, older)) = old.split_last() {
        for k in older {
            t.component_history.remove(k)?;
        }
    }
    Ok(())
}

/// Every component's changes that matter from `since` on, as read in `t`: the last one at or
/// before `since` (the status the window starts with) and every later one, oldest first (see
/// `Components::component_history`).
pub(super) fn changes_since(
    t: &Trees,
    since: DateTime<Utc>,
) -> Result<BTreeMap<String, Vec<StatusChange>>, StoreError> {
    let mut out: BTreeMap<String, Vec<StatusChange>> = BTreeMap::new();
    for item in t.component_history.iter() {
        let (k, v) = item?;
        let Some((name, at)) = parse_key(&k) else {
            return Err(StoreError::Corrupt("a component history key".into()));
        };
        let r: Record = decode(&v)?;
        let list = out.entry(name.to_owned()).or_default();
        // Only the last change before the window is needed.
        if list.last().is_some_and(|c| c.at <= since) && at <= since {
            list.clear();
        }
        list.push(StatusChange {
            at,
            status: r.status,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Incident;
    use crate::store::port::Components;
    use crate::store::SledStore;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    #[test]
    fn keys_order_by_time_and_read_back() {
        let n = ComponentName::parse("API").unwrap();
        let a = key(&n, at("1969-12-31T23:59:59Z"));
        let b = key(&n, at("1970-01-01T00:00:01Z"));
        let c = key(&n, at("2026-12-01T00:00:00Z"));
        assert!(a < b && b < c);
        assert_eq!(parse_key(&c), Some(("API", at("2026-12-01T00:00:00Z"))));
        assert_eq!(parse_key(b"API"), None);
    }

    #[tokio::test]
    async fn repair_removes_a_record_whose_component_change_a_crash_cut_off() {
        use ComponentStatus::*;
        let dir = tempfile::tempdir().unwrap();
        let api = ComponentName::parse("API").unwrap();
        let web = ComponentName::parse("Web").unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        {
            store
                .set_component(api.clone(), Operational, None, at("2026-01-01T00:00:00Z"))
                .await
                .unwrap();
            store
                .set_component(api.clone(), MajorOutage, None, at("2026-01-02T00:00:00Z"))
                .await
                .unwrap();
            // What a crash after the history record and before the component leaves: a change
            // of API and a new component Web, neither written.
            let t = store.t().unwrap();
            record_plain(&t, &api, Operational, at("2026-01-03T00:00:00Z")).unwrap();
            record_plain(&t, &web, PartialOutage, at("2026-01-03T00:00:00Z")).unwrap();
            t.durable().await.unwrap();
        }
        // What the next start-up runs.
        assert_eq!(store.repair().unwrap(), 2);
        let h = store
            .component_history(at("2025-01-01T00:00:00Z"))
            .await
            .unwrap();
        assert_eq!(
            h["API"].iter().map(|c| c.status).collect::<Vec<_>>(),
            vec![Operational, MajorOutage],
            "the cut-off change is gone; the two made are kept"
        );
        assert!(!h.contains_key("Web"), "{h:?}");
    }

    #[tokio::test]
    async fn changes_are_recorded_with_the_status_and_pruned_after_100_days() {
        use ComponentStatus::*;
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        let api = ComponentName::parse("API").unwrap();
        let web = ComponentName::parse("Web").unwrap();
        store
            .set_component(api.clone(), Operational, None, at("2026-01-01T00:00:00Z"))
            .await
            .unwrap();
        // Same status, new group: no change to record.
        store
            .set_component(
                api.clone(),
                Operational,
                Some("Core".into()),
                at("2026-01-02T00:00:00Z"),
            )
            .await
            .unwrap();
        store
            .set_component(api.clone(), MajorOutage, None, at("2026-01-03T00:00:00Z"))
            .await
            .unwrap();
        store
            .set_component(web.clone(), PartialOutage, None, at("2026-01-03T00:00:00Z"))
            .await
            .unwrap();
        let h = store
            .component_history(at("2025-01-01T00:00:00Z"))
            .await
            .unwrap();
        assert_eq!(
            h["API"],
            vec![
                StatusChange {
                    at: at("2026-01-01T00:00:00Z"),
                    status: Operational
                },
                StatusChange {
                    at: at("2026-01-03T00:00:00Z"),
                    status: MajorOutage
                }
            ]
        );
        assert_eq!(h["Web"].len(), 1);
        // From a later instant, the change before it is the starting point.
        let h = store
            .component_history(at("2026-01-02T00:00:00Z"))
            .await
            .unwrap();
        assert_eq!(h["API"][0].status, Operational);
        assert_eq!(h["API"].len(), 2);

        // A resolved incident's restore is recorded too.
        let mut incident: Incident = serde_json::from_value(serde_json::json!({
            "id": ulid::Ulid::new(), "title": "x", "kind": "incident", "status": "resolved",
            "impact": "major", "components": ["API"], "created_at": "2026-01-03T00:00:00Z",
            "updated_at": "2026-01-03T00:00:00Z", "resolved_at": null, "next_update_due": null,
            "draft": false, "update_count": 1
        }))
        .unwrap();
        incident.components = vec![api.clone()];
        let restored = store
            .restore_components(&incident, at("2026-01-03T06:00:00Z"))
            .await
            .unwrap();
        assert_eq!(restored, vec![api.clone()]);
        let h = store
            .component_history(at("2025-01-01T00:00:00Z"))
            .await
            .unwrap();
        assert_eq!(h["API"].len(), 3);
        assert_eq!(h["API"][2].status, Operational);

        // 200 days later: only the newest record before the 100-day cutoff stays.
        store
            .set_component(
                api.clone(),
                DegradedPerformance,
                None,
                at("2026-07-22T00:00:00Z"),
            )
            .await
            .unwrap();
        let h = store
            .component_history(at("2000-01-01T00:00:00Z"))
            .await
            .unwrap();
        assert_eq!(
            h["API"],
            vec![
                StatusChange {
                    at: at("2026-01-03T06:00:00Z"),
                    status: Operational
                },
                StatusChange {
                    at: at("2026-07-22T00:00:00Z"),
                    status: DegradedPerformance
                }
            ]
        );
    }
}
