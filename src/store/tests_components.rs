//! Components set in the same write as an incident opening or update: a crash leaves both or
//! neither, a concurrent component write loses nothing, and bad input writes nothing.

use super::audit;
use super::tests::new_incident;
use super::*;
use crate::domain::audit::{AuditFilter, NewAudit};
use crate::store::port::Audit;
use crate::store::port::{Components, Incidents};
use std::cell::Cell;
use std::time::Duration;

thread_local! {
    /// Set by a test: the next write that commits component changes "crashes" just before its
    /// one commit (after the records that come before it: the incident, its broadcasts).
    static CRASH: Cell<bool> = const { Cell::new(false) };
}

/// Whether to simulate a crash here (once).
pub(super) fn crash_here() -> bool {
    CRASH.with(|c| c.replace(false))
}

fn name(n: &str) -> ComponentName {
    ComponentName::parse(n).unwrap()
}

async fn status_of(store: &SledStore, n: &str) -> ComponentStatus {
    store
        .components()
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.name.as_str() == n)
        .map(|c| c.status)
        .unwrap()
}

fn base(request_id: &str, action: &str) -> NewAudit {
    NewAudit {
        actor: "maria".into(),
        request_id: request_id.into(),
        action: action.into(),
        target: "/api/v1/incidents".into(),
        ..Default::default()
    }
}

async fn entries(store: &SledStore) -> Vec<crate::domain::audit::AuditEntry> {
    let filter = AuditFilter {
        limit: 10_000,
        ..Default::default()
    };
    store.audit_entries(&filter).await.unwrap().0
}

/// Opens the store in `path` once the previous handle's flusher has let go of sled's lock.
async fn reopen(path: &Path) -> SledStore {
    for _ in 0..250 {
        match SledStore::open(path) {
            Err(StoreError::Locked(_)) => tokio::time::sleep(Duration::from_millis(20)).await,
            other => return other.unwrap(),
        }
    }
    SledStore::open(path).unwrap()
}

/// Opens `id` (published) setting Check-in and Baggage, as the API does it: armed, so the
/// store writes the request's audit entry with the change.
async fn open_setting(
    store: &SledStore,
    id: Ulid,
) -> (
    Result<(Incident, Update, Vec<String>), StoreError>,
    Option<crate::domain::audit::AuditEntry>,
) {
    let statuses = [
        (name("Check-in"), ComponentStatus::MajorOutage),
        (name("Baggage"), ComponentStatus::PartialOutage),
    ];
    let mut new = new_incident("Check-in down");
    new.components = vec![name("Check-in"), name("Baggage")];
    new.broadcast = vec![("log".into(), false)];
    audit::record(base("r-open", "incident.create"), Utc::now, async {
        audit::arm();
        store
            .create_incident_decided(id, new, &statuses, Utc::now(), None)
            .await
    })
    .await
}

/// Fault injection: a crash just before the opening's commit (its incident record and
/// broadcasts already written) leaves, after repair, no incident, both components unchanged,
/// no history record and no audit entry; the complete write leaves all of them, with one entry
/// naming each change. (The commit itself is one sled transaction, recovered whole or not at
/// all, so there is no crash point inside it.)
#[tokio::test]
async fn a_crash_leaves_the_opening_and_its_component_changes_together_or_neither() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let crashed = Ulid::new();
    {
        let store = SledStore::open(&path).unwrap();
        let then = Utc::now() - chrono::Duration::minutes(5);
        for c in ["Check-in", "Baggage"] {
            store
                .set_component(name(c), ComponentStatus::Operational, None, then)
                .await
                .unwrap();
        }
        CRASH.with(|c| c.set(true));
        let (r, entry) = open_setting(&store, crashed).await;
        assert!(r.is_err(), "{r:?}");
        assert!(entry.is_none());
        let t = store.t().unwrap();
        assert!(
            t.incidents.contains_key(crashed.to_bytes()).unwrap(),
            "the crash came after the opening's first record"
        );
        assert!(t
            .broadcasts
            .scan_prefix(crashed.to_bytes())
            .next()
            .is_some());
        drop(t);
        // What was written before the crash is on disk, as a crash may leave it.
        store.durable().await.unwrap();
        store.close().await.unwrap();
    }
    let store = reopen(&path).await;
    assert!(matches!(
        store.incident(crashed).await,
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(
        status_of(&store, "Check-in").await,
        ComponentStatus::Operational
    );
    assert_eq!(
        status_of(&store, "Baggage").await,
        ComponentStatus::Operational
    );
    let changes = store
        .component_history(Utc::now() - chrono::Duration::days(1))
        .await
        .unwrap()
        .remove("Check-in")
        .unwrap_or_default();
    assert!(
        changes
            .iter()
            .all(|c| c.status == ComponentStatus::Operational),
        "{changes:?}"
    );
    assert!(entries(&store)
        .await
        .iter()
        .all(|e| e.action != "incident.create"));
    store.verify_audit().await.unwrap();
    assert_eq!(store.repair().unwrap(), 0);

    // The complete write, and a restart after it: everything is there.
    let done = Ulid::new();
    let (r, entry) = open_setting(&store, done).await;
    let (_, _, changed) = r.unwrap();
    assert_eq!(
        changed,
        [
            "Check-in: operational → major_outage",
            "Baggage: operational → partial_outage"
        ]
    );
    let entry = entry.expect("the entry is written with the change");
    store.close().await.unwrap();
    let store = reopen(&path).await;
    assert_eq!(store.incident(done).await.unwrap().1.len(), 1);
    assert_eq!(
        status_of(&store, "Check-in").await,
        ComponentStatus::MajorOutage
    );
    assert_eq!(
        status_of(&store, "Baggage").await,
        ComponentStatus::PartialOutage
    );
    let opened: Vec<_> = entries(&store)
        .await
        .into_iter()
        .filter(|e| e.action == "incident.create")
        .collect();
    assert_eq!(opened.len(), 1, "{opened:?}");
    assert_eq!(opened[0].seq, entry.seq);
    assert!(
        opened[0].summary.ends_with(
            "; components: Check-in: operational → major_outage, Baggage: operational → partial_outage"
        ),
        "{}",
        opened[0].summary
    );
    let last = store
        .component_history(Utc::now() - chrono::Duration::days(1))
        .await
        .unwrap()
        .remove("Check-in")
        .unwrap_or_default();
    assert_eq!(
        last.last().map(|c| c.status),
        Some(ComponentStatus::MajorOutage)
    );
    store.verify_audit().await.unwrap();
    assert_eq!(store.repair().unwrap(), 0);
}

/// The same for an update: a crash before its commit leaves the incident as it was and the
/// component unchanged; the complete update sets it.
#[tokio::test]
async fn a_crash_leaves_the_update_and_its_component_change_together_or_neither() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let id = {
        let store = SledStore::open(&path).unwrap();
        store
            .set_component(
                name("Check-in"),
                ComponentStatus::Operational,
                None,
                Utc::now(),
            )
            .await
            .unwrap();
        let (i, _) = store
            .create_incident(new_incident("i"), Utc::now())
            .await
            .unwrap();
        CRASH.with(|c| c.set(true));
        let r = store
            .append_update_setting(
                i.id,
                super::tests::new_update("degraded"),
                &[(name("Check-in"), ComponentStatus::DegradedPerformance)],
                Utc::now(),
                None,
            )
            .await;
        assert!(r.is_err());
        assert!(
            store
                .t()
                .unwrap()
                .updates
                .contains_key(update_key(i.id, 2))
                .unwrap(),
            "the crash came after the update's first record"
        );
        store.durable().await.unwrap();
        store.close().await.unwrap();
        i.id
    };
    let store = reopen(&path).await;
    assert_eq!(store.incident(id).await.unwrap().1.len(), 1);
    assert_eq!(
        status_of(&store, "Check-in").await,
        ComponentStatus::Operational
    );
    let (_, entry) = audit::record(base("r-up", "incident.update"), Utc::now, async {
        audit::arm();
        store
            .append_update_setting(
                id,
                super::tests::new_update("degraded"),
                &[(name("Check-in"), ComponentStatus::DegradedPerformance)],
                Utc::now(),
                None,
            )
            .await
            .unwrap()
    })
    .await;
    let entry = entry.unwrap();
    assert!(
        entry
            .summary
            .ends_with("; components: Check-in: operational → degraded_performance"),
        "{}",
        entry.summary
    );
    store.close().await.unwrap();
    let store = reopen(&path).await;
    assert_eq!(store.incident(id).await.unwrap().1.len(), 2);
    assert_eq!(
        status_of(&store, "Check-in").await,
        ComponentStatus::DegradedPerformance
    );
    store.verify_audit().await.unwrap();
}

/// An unknown component, or statuses in a draft: refused, naming the component, nothing
/// written.
#[tokio::test]
async fn bad_component_statuses_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(&dir.path().join("db")).unwrap();
    store
        .set_component(
            name("Check-in"),
            ComponentStatus::Operational,
            None,
            Utc::now(),
        )
        .await
        .unwrap();
    let before = store.checksum().unwrap();
    let e = store
        .create_incident_decided(
            Ulid::new(),
            new_incident("x"),
            &[(name("Baggage"), ComponentStatus::MajorOutage)],
            Utc::now(),
            None,
        )
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("unknown component \"Baggage\""),
        "{e}"
    );
    let mut draft = new_incident("x");
    draft.draft = true;
    let e = store
        .create_incident_decided(
            Ulid::new(),
            draft,
            &[(name("Check-in"), ComponentStatus::MajorOutage)],
            Utc::now(),
            None,
        )
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("a draft changes no component"),
        "{e}"
    );
    assert_eq!(store.checksum().unwrap(), before);
}

/// A component write (`PUT /api/v1/components/{name}`) racing an opening that sets the same
/// component: neither change is lost. Whichever is audited later is the final status, and its
/// entry's "before" is the earlier one's "after" (both audited, in one consistent order); the
/// history's last record agrees.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_component_write_racing_an_opening_loses_neither_change() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(&dir.path().join("db")).unwrap();
    let api = name("api");
    for round in 0..200 {
        let t0 = Utc::now();
        store
            .set_component(api.clone(), ComponentStatus::Operational, None, t0)
            .await
            .unwrap();
        let (s1, s2) = (store.clone(), store.clone());
        let put = tokio::spawn(async move {
            audit::record(base("put", "component.set"), Utc::now, async {
                audit::arm();
                s1.set_component(
                    name("api"),
                    ComponentStatus::PartialOutage,
                    None,
                    Utc::now(),
                )
                .await
                .unwrap()
            })
            .await
            .1
            .unwrap()
        });
        let open = tokio::spawn(async move {
            let mut new = new_incident("race");
            new.components = vec![name("api")];
            audit::record(base("open", "incident.create"), Utc::now, async {
                audit::arm();
                s2.create_incident_decided(
                    Ulid::new(),
                    new,
                    &[(name("api"), ComponentStatus::MajorOutage)],
                    Utc::now(),
                    None,
                )
                .await
                .unwrap()
            })
            .await
            .1
            .unwrap()
        });
        let (put, open) = (put.await.unwrap(), open.await.unwrap());
        let fin = status_of(&store, "api").await;
        if put.seq < open.seq {
            assert_eq!(put.summary, "operational → partial_outage", "round {round}");
            assert!(
                open.summary
                    .ends_with("; components: api: partial_outage → major_outage"),
                "round {round}: {}",
                open.summary
            );
            assert_eq!(fin, ComponentStatus::MajorOutage, "round {round}");
        } else {
            assert!(
                open.summary
                    .ends_with("; components: api: operational → major_outage"),
                "round {round}: {}",
                open.summary
            );
            assert_eq!(
                put.summary, "major_outage → partial_outage",
                "round {round}"
            );
            assert_eq!(fin, ComponentStatus::PartialOutage, "round {round}");
        }
        let history = store
            .component_history(t0 - chrono::Duration::seconds(1))
            .await
            .unwrap()
            .remove("api")
            .unwrap_or_default();
        assert_eq!(history.last().map(|c| c.status), Some(fin), "round {round}");
    }
    store.verify_audit().await.unwrap();
}
