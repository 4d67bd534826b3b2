//! The contract of incidents and updates (the timeline, drafts, publishing, approval release)
//! and components with their history ([`Incidents`], [`Components`]), run on both backends:
//! round trips, sled's errors and messages, orders, the audit entry an armed request writes with
//! the change, and two nodes writing at once (updates numbered without a gap, an approval
//! released once, a component's before → after never lost, the public generation seen moving
//! from the other node).

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, Utc};
use futures_util::future::join_all;
use ulid::Ulid;

use super::t0;
use crate::domain::audit::{AuditFilter, NewAudit};
use crate::domain::{
    Approval, ApprovalAction, ApprovalState, Change, ComponentName, ComponentStatus, Decision,
    DomainError, IncidentFilter, NewIncident, NewUpdate, Status,
};
use crate::store::audit::{arm, record};
use crate::store::port::{Approvals, Audit, Components, Incidents};
use crate::store::tests::{new_incident, new_update};
use crate::store::StoreError;

fn name(s: &str) -> ComponentName {
    ComponentName::parse(s).unwrap()
}

fn draft(mut u: NewUpdate) -> NewUpdate {
    u.draft = true;
    u
}

fn affecting(title: &str, components: &[&str]) -> NewIncident {
    let mut n = new_incident(title);
    n.components = components.iter().map(|c| name(c)).collect();
    n
}

fn pending(incident: Ulid, at: DateTime<Utc>) -> Approval {
    Approval {
        id: Ulid::new(),
        state: ApprovalState::PendingApproval,
        action: ApprovalAction::Update,
        incident_id: incident,
        title: "held".into(),
        message: None,
        request: serde_json::Value::Null,
        author: "maria".into(),
        requested_at: at,
        reasons: vec![],
        decided_by: None,
        decided_at: None,
        reason: None,
    }
}

fn base_audit(request_id: &str) -> NewAudit {
    NewAudit {
        actor: "maria".into(),
        token: None,
        role: Some(crate::domain::Role::Publisher),
        client: None,
        request_id: request_id.into(),
        action: "incident.update".into(),
        target: String::new(),
        summary: String::new(),
    }
}

fn unknown_component(e: &StoreError) -> bool {
    matches!(e, StoreError::Domain(DomainError::UnknownComponent(_)))
}

pub(crate) async fn incidents<S: Incidents + Components + Approvals + Audit + Sync>(a: &S, b: &S) {
    let now = t0();
    let gen0 = a.public_generation().await.unwrap();

    // Opening, and reading back from the other node.
    let (i, u) = a
        .create_incident(new_incident("Outage"), now)
        .await
        .unwrap();
    assert_eq!((u.incident_id, i.update_count), (i.id, 1));
    assert_eq!(b.incident_summary(i.id).await.unwrap(), i);
    assert_eq!(
        b.incident(i.id).await.unwrap(),
        (i.clone(), vec![u.clone()])
    );
    let gen1 = b.public_generation().await.unwrap();
    assert!(gen1 > gen0, "an opening moves the public generation");

    // The same id again: a conflict with sled's message, nothing written.
    let e = b
        .create_incident_with_id(i.id, new_incident("Again"), now)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, StoreError::Conflict(m) if *m == format!("incident {} exists already", i.id)),
        "{e:?}"
    );
    assert_eq!(a.incident(i.id).await.unwrap().1.len(), 1);
    // Two nodes opening one new id at once: one opens it, the other is told it exists.
    let id = Ulid::new();
    let (x, y) = tokio::join!(
        a.create_incident_with_id(id, new_incident("First"), now),
        b.create_incident_with_id(id, new_incident("Second"), now)
    );
    let (won, lost) = match (x, y) {
        (Ok(w), Err(l)) | (Err(l), Ok(w)) => (w, l),
        other => panic!("exactly one of two openings opens: {other:?}"),
    };
    assert!(
        matches!(&lost, StoreError::Conflict(m) if *m == format!("incident {id} exists already")),
        "{lost:?}"
    );
    assert_eq!(b.incident(id).await.unwrap(), (won.0.clone(), vec![won.1]));

    // Missing incidents.
    let missing = Ulid::new();
    for e in [
        a.incident_summary(missing).await.unwrap_err(),
        a.incident(missing).await.unwrap_err(),
        a.append_update(missing, new_update("x"), now)
            .await
            .unwrap_err(),
        a.publish_drafts(missing, &[], now).await.unwrap_err(),
    ] {
        assert!(
            matches!(&e, StoreError::NotFound { what: "incident", id } if *id == missing.to_string()),
            "{e:?}"
        );
    }
    // Unknown components, named.
    let e = a
        .create_incident(affecting("Ghost", &["Nowhere"]), now)
        .await
        .unwrap_err();
    assert!(unknown_component(&e), "{e:?}");
    let statuses = [(name("Nowhere"), ComponentStatus::MajorOutage)];
    let e = a
        .append_update_setting(i.id, new_update("x"), &statuses, now, None)
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("unknown component \"Nowhere\""),
        "{e}"
    );
    // A draft sets no component.
    let e = a
        .append_update_setting(i.id, draft(new_update("x")), &statuses, now, None)
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        StoreError::from(crate::store::no_statuses_in_drafts()).to_string()
    );
    assert_eq!(b.incident_summary(i.id).await.unwrap().update_count, 1);

    // Appends from two nodes at once: numbered 2..=13 with no gap and none lost.
    let appended = join_all((0..12).map(|n| {
        let s = if n % 2 == 0 { a } else { b };
        s.append_update(
            i.id,
            new_update(&format!("u{n}")),
            now + Duration::seconds(n),
        )
    }))
    .await;
    for r in &appended {
        assert!(r.is_ok(), "{r:?}");
    }
    let (after, timeline) = a.incident(i.id).await.unwrap();
    assert_eq!(after.update_count, 13);
    assert_eq!(timeline.len(), 13);
    let texts: BTreeSet<String> = timeline[1..]
        .iter()
        .map(|u| format!("{:?}", u.body))
        .collect();
    assert_eq!(texts.len(), 12, "every append is in the timeline once");
    assert_eq!(timeline[0], u, "the opening stays first");
    // The timeline is in the order the appends were made.
    let mut answered: Vec<_> = appended.into_iter().map(Result::unwrap).collect();
    answered.sort_by_key(|(i, _)| i.update_count);
    let counts: Vec<u32> = answered.iter().map(|(i, _)| i.update_count).collect();
    assert_eq!(counts, (2..=13).collect::<Vec<_>>());
    let ids: Vec<Ulid> = answered.iter().map(|(_, u)| u.id).collect();
    let stored: Vec<Ulid> = timeline[1..].iter().map(|u| u.id).collect();
    assert_eq!(ids, stored);

    // Resolving, reported; and the domain's rules apply to the stored state.
    let mut resolve = new_update("fixed");
    resolve.change = Change::Resolve;
    let r = b
        .append_update_reported(i.id, resolve.clone(), now + Duration::minutes(1))
        .await
        .unwrap();
    assert_eq!(r.incident.status, Status::Resolved);
    assert!(!r.summary.is_empty());
    assert!(
        a.append_update(i.id, resolve, now).await.is_err(),
        "resolved twice"
    );

    // Drafts: an incident without them is refused; published once, in order.
    let e = a.publish_drafts(i.id, &[], now).await.unwrap_err();
    assert!(
        matches!(&e, StoreError::Conflict(m) if *m == format!("incident {} has no unpublished draft updates", i.id)),
        "{e:?}"
    );
    let mut nd = new_incident("Quiet");
    nd.draft = true;
    let (d, _) = a.create_incident(nd, now).await.unwrap();
    assert!(d.draft);
    a.append_update(d.id, draft(new_update("more")), now)
        .await
        .unwrap();
    let later = now + Duration::minutes(5);
    let (x, y) = tokio::join!(
        a.publish_drafts(d.id, &[], later),
        b.publish_drafts(d.id, &[], later)
    );
    let (pi, published) = match (x, y) {
        (Ok(w), Err(StoreError::Conflict(_))) | (Err(StoreError::Conflict(_)), Ok(w)) => w,
        other => panic!("exactly one of two publishes publishes: {other:?}"),
    };
    assert!(!pi.draft);
    assert_eq!(published.len(), 2);
    assert!(published.iter().all(|u| u.published_at == Some(later)));
    let (_, tl) = b.incident(d.id).await.unwrap();
    assert_eq!(tl, published);

    // An approval is released once: two appends carrying the same decision, from two nodes.
    let (h, _) = a.create_incident(new_incident("Held"), now).await.unwrap();
    let ap = pending(h.id, now);
    a.put_approval(&ap).await.unwrap();
    let dec = Decision {
        approval: ap.id,
        by: "jussi".into(),
        at: now,
    };
    let (x, y) = tokio::join!(
        a.append_update_decided(h.id, new_update("one"), now, Some(&dec)),
        b.append_update_decided(h.id, new_update("two"), now, Some(&dec))
    );
    let lost = match (x, y) {
        (Ok(_), Err(l)) | (Err(l), Ok(_)) => l,
        other => panic!("exactly one of two releases publishes: {other:?}"),
    };
    let decided = b.approval(ap.id).await.unwrap();
    assert_eq!(decided.state, ApprovalState::Approved);
    assert_eq!(decided.decided_by.as_deref(), Some("jussi"));
    assert_eq!(lost.to_string(), decided.decided_already());
    assert_eq!(a.incident_summary(h.id).await.unwrap().update_count, 2);
    // A rejected one releases nothing; an unknown one is not found; neither writes.
    let rej = pending(h.id, now);
    a.put_approval(&rej).await.unwrap();
    b.reject_approval(rej.id, "anna", "no", now).await.unwrap();
    let dec = Decision {
        approval: rej.id,
        by: "jussi".into(),
        at: now,
    };
    let e = a
        .append_update_decided(h.id, new_update("no"), now, Some(&dec))
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Conflict(_)), "{e:?}");
    let dec = Decision {
        approval: Ulid::new(),
        by: "jussi".into(),
        at: now,
    };
    let e = b
        .create_incident_decided(Ulid::new(), new_incident("x"), &[], now, Some(&dec))
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::NotFound {
                what: "approval",
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(b.incident_summary(h.id).await.unwrap().update_count, 2);

    // Listing: newest first, at most `limit`, filtered by the domain's rule.
    let all = a
        .incidents(&IncidentFilter {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    let listed: Vec<Ulid> = all.iter().map(|i| i.id).collect();
    let mut newest_first = vec![h.id, d.id, id, i.id];
    newest_first.sort_by(|x, y| y.cmp(x));
    assert_eq!(listed, newest_first);
    let two = b
        .incidents(&IncidentFilter {
            limit: 2,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(two, all[..2].to_vec());
    let open = b
        .incidents(&IncidentFilter {
            limit: 100,
            open: Some(true),
            ..Default::default()
        })
        .await
        .unwrap();
    newest_first.retain(|x| *x != i.id);
    assert!(won.0.is_open());
    assert_eq!(open.iter().map(|i| i.id).collect::<Vec<_>>(), newest_first);
    assert!(a
        .incidents(&IncidentFilter::default())
        .await
        .unwrap()
        .is_empty());

    // An armed request's entry is written with the change, and handed back.
    let before = a
        .audit_entries(&AuditFilter {
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .0
        .len();
    let (r, entry) = record(base_audit("req-armed"), t0, async {
        arm();
        b.append_update(h.id, new_update("audited"), now).await
    })
    .await;
    let r = r.unwrap();
    let entry = entry.expect("the store wrote the armed entry");
    assert_eq!(entry.target, format!("incident {}", h.id));
    assert_eq!(entry.request_id, "req-armed");
    assert_eq!(r.0.update_count, 3);
    let log = a
        .audit_entries(&AuditFilter {
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .0;
    assert_eq!(log.len(), before + 1);
    assert_eq!(log.last(), Some(&entry));
    // Not armed: no entry.
    let (_, none) = record(base_audit("req-plain"), t0, async {
        a.append_update(h.id, new_update("plain"), now).await
    })
    .await;
    assert!(none.is_none());

    assert!(a.public_generation().await.unwrap() > gen1);

    // A conditional append (the scheduler's holding statements and maintenance transitions,
    // `expect_count`): refused, writing nothing, once the incident has moved on; of two racing
    // on one count from two nodes (two leaders for a moment), exactly one is appended.
    let (c, _) = a
        .create_incident(new_incident("Conditional"), now)
        .await
        .unwrap();
    let mut stale = new_update("stale");
    stale.expect_count = Some(0);
    let e = b.append_update(c.id, stale, now).await.unwrap_err();
    assert!(
        matches!(&e, StoreError::Domain(DomainError::Transition(m)) if m.contains("changed meanwhile")),
        "{e:?}"
    );
    let (_, tl) = a.incident(c.id).await.unwrap();
    assert_eq!(tl.len(), 1, "a refused conditional append writes nothing");
    for round in 0..5u32 {
        let mut cond = new_update("holding statement");
        cond.expect_count = Some(round + 1);
        let (x, y) = tokio::join!(
            a.append_update(c.id, cond.clone(), now),
            b.append_update(c.id, cond, now)
        );
        assert!(
            x.is_ok() ^ y.is_ok(),
            "exactly one of two conditional appends on count {}: {x:?} {y:?}",
            round + 1
        );
    }
    let (ci, tl) = b.incident(c.id).await.unwrap();
    assert_eq!((ci.update_count, tl.len()), (6, 6));
}

pub(crate) async fn components<S: Incidents + Components + Audit + Sync>(a: &S, b: &S) {
    use ComponentStatus::*;
    let now = t0();
    assert!(a.components().await.unwrap().is_empty());
    let g0 = a.public_generation().await.unwrap();

    // Created, then changed with its group kept; listed by name, bytewise.
    let api = a
        .set_component(name("api"), Operational, Some("Core".into()), now)
        .await
        .unwrap();
    assert_eq!(api.group.as_deref(), Some("Core"));
    let g1 = b.public_generation().await.unwrap();
    assert!(g1 > g0);
    let web = b
        .set_component(name("Web"), Operational, None, now)
        .await
        .unwrap();
    let api2 = b
        .set_component(name("api"), PartialOutage, None, now + Duration::minutes(1))
        .await
        .unwrap();
    assert_eq!(api2.group.as_deref(), Some("Core"), "a None group keeps it");
    assert!(b.public_generation().await.unwrap() > g1);
    assert_eq!(
        a.components().await.unwrap(),
        vec![web.clone(), api2.clone()]
    );

    // Existence.
    a.check_components(&[name("api"), name("Web")])
        .await
        .unwrap();
    let e = b
        .check_components(&[name("api"), name("DNS"), name("Mail")])
        .await
        .unwrap_err();
    assert!(
        matches!(&e, StoreError::Domain(DomainError::UnknownComponent(n)) if n == "DNS"),
        "{e:?}"
    );

    // A time earlier than the component's last change is moved up to it.
    let back = a
        .set_component(name("Web"), MajorOutage, None, now - Duration::hours(1))
        .await
        .unwrap();
    assert_eq!(back.updated_at, now);

    // An incident's writes set components, each change said as before → after.
    let statuses = [
        (name("Web"), DegradedPerformance),
        (name("api"), PartialOutage),
        (name("Web"), Operational),
    ];
    let t2 = now + Duration::minutes(2) + Duration::microseconds(1500);
    let (inc, _, changed) = a
        .create_incident_decided(
            Ulid::new(),
            affecting("Slow", &["Web", "api"]),
            &statuses,
            t2,
            None,
        )
        .await
        .unwrap();
    assert_eq!(changed, vec!["Web: major_outage → degraded_performance"]);
    let t3 = now + Duration::minutes(3);
    let r = b
        .append_update_setting(
            inc.id,
            new_update("worse"),
            &[(name("api"), MajorOutage)],
            t3,
            None,
        )
        .await
        .unwrap();
    assert!(
        r.summary
            .ends_with("; components: api: partial_outage → major_outage"),
        "{}",
        r.summary
    );

    // History: by name, each oldest first, at the millisecond.
    let h = a.component_history(now - Duration::days(1)).await.unwrap();
    let got = |n: &str| -> Vec<(DateTime<Utc>, ComponentStatus)> {
        h[n].iter().map(|c| (c.at, c.status)).collect()
    };
    let t2_ms = now + Duration::minutes(2) + Duration::milliseconds(1);
    assert_eq!(h.keys().collect::<Vec<_>>(), ["Web", "api"]);
    assert_eq!(
        got("Web"),
        vec![(now, MajorOutage), (t2_ms, DegradedPerformance)],
        "a second change in the same millisecond replaces the first"
    );
    assert_eq!(
        got("api"),
        vec![
            (now, Operational),
            (now + Duration::minutes(1), PartialOutage),
            (t3, MajorOutage)
        ]
    );
    // From a later instant: the status the window starts with, then the later ones.
    let h2 = b
        .component_history(now + Duration::seconds(90))
        .await
        .unwrap();
    assert_eq!(
        h2["api"].iter().map(|c| c.status).collect::<Vec<_>>(),
        vec![PartialOutage, MajorOutage]
    );
    assert_eq!(
        h2["Web"].iter().map(|c| c.status).collect::<Vec<_>>(),
        vec![MajorOutage, DegradedPerformance]
    );

    // Restoring after the incident resolves: not while another open incident holds one.
    let (other, _) = b
        .create_incident(affecting("Also web", &["Web"]), t3)
        .await
        .unwrap();
    let mut resolve = new_update("fixed");
    resolve.change = Change::Resolve;
    let (resolved, _) = a.append_update(inc.id, resolve.clone(), t3).await.unwrap();
    let g = a.public_generation().await.unwrap();
    let restored = b
        .restore_components(&resolved, t3 + Duration::minutes(1))
        .await
        .unwrap();
    assert_eq!(restored, vec![name("api")]);
    assert!(a.public_generation().await.unwrap() > g);
    let (other, _) = a.append_update(other.id, resolve, t3).await.unwrap();
    let restored = a
        .restore_components(&other, t3 + Duration::minutes(2))
        .await
        .unwrap();
    assert_eq!(restored, vec![name("Web")]);
    assert!(b
        .restore_components(&other, t3 + Duration::minutes(3))
        .await
        .unwrap()
        .is_empty());
    assert!(a
        .components()
        .await
        .unwrap()
        .iter()
        .all(|c| c.status == Operational));

    // Changes of one component from two nodes at once, each audited: every before → after
    // follows the one before it (none read a status another had replaced).
    let t4 = t3 + Duration::minutes(10);
    let order = [
        MajorOutage,
        PartialOutage,
        DegradedPerformance,
        UnderMaintenance,
    ];
    let results = join_all((0..8).map(|n| {
        let s = if n % 2 == 0 { a } else { b };
        let status = order[n % order.len()];
        record(base_audit(&format!("req-set-{n}")), t0, async move {
            arm();
            s.set_component(name("api"), status, None, t4).await
        })
    }))
    .await;
    let mut summaries = Vec::new();
    for (r, entry) in results {
        r.unwrap();
        summaries.push(entry.expect("an armed set writes its entry"));
    }
    summaries.sort_by_key(|e| e.seq);
    let mut status = "operational".to_owned();
    for e in &summaries {
        let (from, to) = e.summary.split_once(" → ").unwrap();
        assert_eq!(
            from,
            status,
            "{:?}",
            summaries.iter().map(|e| &e.summary).collect::<Vec<_>>()
        );
        status = to.to_owned();
    }
    let last = a.components().await.unwrap();
    assert_eq!(last[1].status.as_str(), status);
}

mod on_sled {
    #[tokio::test]
    async fn incidents() {
        let (_dir, s) = super::super::on_sled::store();
        super::incidents(&s, &s.clone()).await;
    }

    #[tokio::test]
    async fn components() {
        let (_dir, s) = super::super::on_sled::store();
        super::components(&s, &s.clone()).await;
    }
}

mod on_pg {
    #[tokio::test]
    async fn incidents() {
        let Some((a, b)) = super::super::on_pg::nodes("cincidents").await else {
            return;
        };
        super::incidents(&a, &b).await;
    }

    #[tokio::test]
    async fn components() {
        let Some((a, b)) = super::super::on_pg::nodes("ccomponents").await else {
            return;
        };
        super::components(&a, &b).await;
    }
}
