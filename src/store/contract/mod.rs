//! The store port's contract as one test suite for every backend: generic async functions, one
//! per trait of [`super::port`], each asserting what the trait's documentation promises — round
//! trips, conflicts and missing records with the sled store's exact messages, orders, and what
//! two writers at once leave behind. The sled store and the PostgreSQL store each run the same
//! functions (the modules at the end), so the backends cannot drift apart unnoticed: the suite
//! is written once, not copied per backend, and sled's answers are the reference.
//!
//! Each function takes two handles on one store, `a` and `b`: for PostgreSQL two stores on
//! separate pools (two nodes of a cluster), for sled two clones of one store. "At once" is
//! futures joined on one task: their statements interleave at every await, and on PostgreSQL
//! their transactions overlap in the server.
//!
//! Not here: backups (sled writes crier's backup file, PostgreSQL refuses and names pg_dump:
//! two different answers by design, each tested with its backend) and durability across a
//! crash (each backend's own tests: sled's reopen and crash-cut tests; PostgreSQL's commit).

mod audience;
mod incidents;
mod outbox;
mod people;

use std::future::Future;

use chrono::{DateTime, Duration, TimeZone, Utc};
use futures_util::future::join_all;
use ulid::Ulid;

use super::audit::VerifyError;
use super::port::{AlertGroups, Approvals, Audit, HookSignatures, Templates, Threads};
use super::StoreError;
use crate::domain::alert::{AlertGroup, AlertState, Mode};
use crate::domain::audit::{self, AuditEntry, AuditFilter, ChainError, NewAudit, GENESIS};
use crate::domain::{
    Approval, ApprovalAction, ApprovalState, Impact, IncidentTemplate, Locale, TemplateFields,
    TemplateName, Thread, Title,
};

/// A fixed instant, whole milliseconds (so every backend keeps it exactly).
fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2031, 3, 4, 5, 6, 7)
        .single()
        .expect("a valid date")
}

// ---- threads ---------------------------------------------------------------------------------

pub(crate) async fn threads<S: Threads + Sync>(a: &S, b: &S) {
    let inc = Ulid::new();
    assert_eq!(a.thread(inc, "mastodon").await.unwrap(), None);
    let t = a.extend_thread(inc, "mastodon", "101").await.unwrap();
    assert_eq!(
        t,
        Thread {
            root: "101".into(),
            last: "101".into()
        },
        "the first post is root and last"
    );
    let t = b.extend_thread(inc, "mastodon", "102").await.unwrap();
    assert_eq!((t.root.as_str(), t.last.as_str()), ("101", "102"));
    assert_eq!(a.thread(inc, "mastodon").await.unwrap(), Some(t));
    // Another channel and another incident have their own threads.
    assert_eq!(a.thread(inc, "mastodon2").await.unwrap(), None);
    assert_eq!(b.thread(Ulid::new(), "mastodon").await.unwrap(), None);
    // A reference is kept as the platform gave it (Bluesky's is JSON).
    let bsky = r#"{"uri":"at://did:plc:x/app.bsky.feed.post/3k","cid":"bafyrei"}"#;
    let t = a.extend_thread(inc, "bluesky", bsky).await.unwrap();
    assert_eq!(b.thread(inc, "bluesky").await.unwrap(), Some(t.clone()));
    assert_eq!(t.root, bsky);

    // Eight posts to a new thread at once, from both handles: one of them is the root, every
    // answer names that root (none is lost), and each answer has its own post as last.
    let inc = Ulid::new();
    let posts: Vec<String> = (0..8).map(|i| format!("p{i}")).collect();
    let answers = join_all(posts.iter().enumerate().map(|(i, p)| {
        let s = if i % 2 == 0 { a } else { b };
        s.extend_thread(inc, "mastodon", p)
    }))
    .await;
    let answers: Vec<Thread> = answers.into_iter().map(Result::unwrap).collect();
    let root = answers[0].root.clone();
    assert!(posts.contains(&root), "{root}");
    for (answer, post) in answers.iter().zip(&posts) {
        assert_eq!(answer.root, root, "{answers:?}");
        assert_eq!(&answer.last, post, "{answers:?}");
    }
    let stored = a.thread(inc, "mastodon").await.unwrap().unwrap();
    assert_eq!(stored.root, root);
    assert!(posts.contains(&stored.last));
}

// ---- templates -------------------------------------------------------------------------------

fn template(name: &str) -> IncidentTemplate {
    let fields = TemplateFields {
        name: name.into(),
        title: "Check-in delays".into(),
        impact: "major".into(),
        status: "investigating".into(),
        components: vec![],
        messages: [("en".into(), "Check-in is slow.".into())].into(),
    };
    let content = fields.validate(&[Locale::english()]).unwrap();
    IncidentTemplate::new(content, "anna", t0())
}

fn name_taken(name: &str) -> String {
    format!(
        "name: a template named \"{name}\" exists already; choose another name, or edit that one (`crier templates edit \"{name}\" …`)"
    )
}

pub(crate) async fn templates<S: Templates + Sync>(a: &S, b: &S) {
    assert!(a.templates().await.unwrap().is_empty());
    let slow = template("Check-in slow");
    a.put_template(&slow).await.unwrap();
    b.put_template(&template("Baggage belt")).await.unwrap();
    b.put_template(&template("check-in à la carte"))
        .await
        .unwrap();
    let names: Vec<String> = a
        .templates()
        .await
        .unwrap()
        .iter()
        .map(|t| t.name.to_string())
        .collect();
    // By the lower-cased name, bytewise (a database collation could put "à" before "s").
    assert_eq!(
        names,
        ["Baggage belt", "Check-in slow", "check-in à la carte"],
        "by name"
    );
    assert_eq!(b.template(slow.id).await.unwrap(), slow);
    assert_eq!(b.template_by_key("CHECK-IN SLOW").await.unwrap(), slow);
    assert_eq!(b.template_by_key("  check-in slow ").await.unwrap(), slow);
    assert_eq!(a.template_by_key(&slow.id.to_string()).await.unwrap(), slow);
    assert_eq!(
        a.template_by_key(&slow.id.to_string().to_lowercase())
            .await
            .unwrap(),
        slow,
        "an id in any case"
    );

    // Missing: the sled store's words.
    let missing = Ulid::new();
    let e = a.template(missing).await.unwrap_err();
    assert!(matches!(e, StoreError::NotFound { .. }), "{e:?}");
    assert_eq!(e.to_string(), format!("template {missing} not found"));
    let e = a.template_by_key("Runway lights").await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "template \"Runway lights\" (see `crier templates list` for the names) not found"
    );
    let e = a.template_by_key(&missing.to_string()).await.unwrap_err();
    assert!(matches!(e, StoreError::NotFound { .. }), "{e:?}");

    // The same name in another case is refused, naming the template that has it, and nothing is
    // written.
    let before = a.templates().await.unwrap();
    let e = b
        .put_template(&template("check-in SLOW"))
        .await
        .unwrap_err();
    assert!(matches!(&e, StoreError::Conflict(_)), "{e:?}");
    assert_eq!(e.to_string(), name_taken("Check-in slow"));
    let e = a
        .change_template(slow.id, |t| {
            let mut t = t.clone();
            t.name = TemplateName::parse("baggage BELT")?;
            Ok(t)
        })
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "name: a template named \"Baggage belt\" exists already; choose another name"
    );
    // A change that fails changes nothing.
    let e = a
        .change_template(slow.id, |_| Err(StoreError::Conflict("not today".into())))
        .await
        .unwrap_err();
    assert_eq!(e.to_string(), "not today");
    let e = a
        .change_template(missing, |t| Ok(t.clone()))
        .await
        .unwrap_err();
    assert_eq!(e.to_string(), format!("template {missing} not found"));
    assert_eq!(a.templates().await.unwrap(), before);

    // Its own name again (an edit of other fields) is fine; the id cannot be changed.
    let (b4, after) = a
        .change_template(slow.id, |t| {
            let mut t = t.clone();
            t.impact = Impact::Critical;
            t.id = Ulid::new();
            Ok(t)
        })
        .await
        .unwrap();
    assert_eq!(b4, slow);
    assert_eq!(after.id, slow.id);
    assert_eq!(after.impact, Impact::Critical);
    assert_eq!(b.template(slow.id).await.unwrap(), after);
    assert_eq!(a.templates().await.unwrap().len(), 3);
    // A put of a stored id replaces it (here renamed to a free name).
    let mut renamed = after.clone();
    renamed.name = TemplateName::parse("Check-in stopped").unwrap();
    b.put_template(&renamed).await.unwrap();
    assert_eq!(
        a.template_by_key("check-in stopped").await.unwrap(),
        renamed
    );
    assert!(a.template_by_key("check-in slow").await.is_err());
    assert_eq!(a.templates().await.unwrap().len(), 3);

    // Two changes of one template at once, from two nodes: both take effect.
    let (x, y) = tokio::join!(
        a.change_template(slow.id, |t| {
            let mut t = t.clone();
            t.impact = Impact::Minor;
            Ok(t)
        }),
        b.change_template(slow.id, |t| {
            let mut t = t.clone();
            t.title = Title::parse("Check-in halted")?;
            Ok(t)
        }),
    );
    x.unwrap();
    y.unwrap();
    let both = a.template(slow.id).await.unwrap();
    assert_eq!(both.impact, Impact::Minor, "{both:?}");
    assert_eq!(both.title.as_str(), "Check-in halted", "{both:?}");

    // Two new templates with one name (in two cases) at once: one is saved, the other is
    // refused naming the first.
    let (g1, g2) = (template("Gate closed"), template("GATE CLOSED"));
    let (r1, r2) = tokio::join!(a.put_template(&g1), b.put_template(&g2));
    match (r1, r2) {
        (Ok(()), Err(e)) => assert_eq!(e.to_string(), name_taken("Gate closed")),
        (Err(e), Ok(())) => assert_eq!(e.to_string(), name_taken("GATE CLOSED")),
        other => panic!("exactly one of two templates with one name is saved: {other:?}"),
    }
    assert_eq!(a.templates().await.unwrap().len(), 4);

    // Removed: returned, then missing.
    let gone = b.remove_template(slow.id).await.unwrap();
    assert_eq!(gone, both);
    let e = a.template(slow.id).await.unwrap_err();
    assert!(matches!(e, StoreError::NotFound { .. }), "{e:?}");
    let e = a.remove_template(slow.id).await.unwrap_err();
    assert_eq!(e.to_string(), format!("template {} not found", slow.id));
    assert_eq!(a.templates().await.unwrap().len(), 3);
}

// ---- alert groups ----------------------------------------------------------------------------

fn group(source: &str, name: &str, incident: Ulid) -> AlertGroup {
    AlertGroup {
        source: source.into(),
        group: name.into(),
        incident_id: incident,
        alerts: [(
            "disk".to_owned(),
            AlertState {
                firing: true,
                summary: "disk full on db-1".into(),
                since: t0(),
            },
        )]
        .into(),
        mode: Mode::Draft,
        broadcast: vec![("mastodon".into(), true)],
        updated_at: t0(),
        public_at: None,
        digest: Default::default(),
        pending: None,
        detail_seq: 0,
    }
}

pub(crate) async fn alert_groups<S: AlertGroups + Sync>(a: &S, b: &S) {
    assert_eq!(a.alert_group("alertmanager", "db").await.unwrap(), None);
    assert!(a.alert_groups().await.unwrap().is_empty());
    let g = group("alertmanager", "db", Ulid::new());
    a.put_alert_group(&g).await.unwrap();
    assert_eq!(
        b.alert_group("alertmanager", "db").await.unwrap(),
        Some(g.clone())
    );
    assert_eq!(b.alert_group("alertmanager", "DB").await.unwrap(), None);
    assert_eq!(b.alert_group("grafana", "db").await.unwrap(), None);
    // Saved again: replaced.
    let mut changed = g.clone();
    changed.alerts.clear();
    changed.detail_seq = 3;
    changed.updated_at = t0() + Duration::minutes(5);
    changed.mode = Mode::Publish;
    b.put_alert_group(&changed).await.unwrap();
    assert_eq!(
        a.alert_group("alertmanager", "db").await.unwrap(),
        Some(changed.clone())
    );
    // Listed by source, then group, bytewise (upper case before lower).
    for (s, n) in [
        ("grafana", "api"),
        ("alertmanager", "Zeta"),
        ("alertmanager", "api"),
    ] {
        a.put_alert_group(&group(s, n, Ulid::new())).await.unwrap();
    }
    let keys: Vec<(String, String)> = b
        .alert_groups()
        .await
        .unwrap()
        .into_iter()
        .map(|g| (g.source, g.group))
        .collect();
    assert_eq!(
        keys,
        [
            ("alertmanager", "Zeta"),
            ("alertmanager", "api"),
            ("alertmanager", "db"),
            ("grafana", "api")
        ]
        .map(|(s, g)| (s.to_owned(), g.to_owned()))
    );
}

// ---- webhook signatures ----------------------------------------------------------------------

pub(crate) async fn hook_signatures<S: HookSignatures + Sync>(a: &S, b: &S) {
    let now = t0();
    let k1 = [1u8; 32];
    assert!(a
        .remember_signature(k1, now + Duration::minutes(5), now)
        .await
        .unwrap());
    // A replay, on either node, until it expires.
    assert!(!a
        .remember_signature(k1, now + Duration::minutes(5), now)
        .await
        .unwrap());
    let later = now + Duration::minutes(4);
    assert!(!b
        .remember_signature(k1, later + Duration::minutes(5), later)
        .await
        .unwrap());
    // Forgotten (its request failed): accepted again.
    b.forget_signature(k1).await.unwrap();
    b.forget_signature(k1).await.unwrap();
    assert!(a
        .remember_signature(k1, now + Duration::minutes(5), now)
        .await
        .unwrap());

    // An expired signature gives way.
    let k2 = [2u8; 32];
    assert!(a
        .remember_signature(k2, now + Duration::seconds(1), now)
        .await
        .unwrap());
    let now2 = now + Duration::seconds(10);
    assert!(b
        .remember_signature(k2, now2 + Duration::minutes(5), now2)
        .await
        .unwrap());
    assert!(!a
        .remember_signature(k2, now2 + Duration::minutes(5), now2)
        .await
        .unwrap());

    // Expiry is kept to the millisecond: one expiring within the same millisecond as `now` is
    // still live, and one expiring exactly at `now` too (only an earlier expiry has passed).
    let k3 = [3u8; 32];
    let t = now2 + Duration::minutes(1);
    assert!(a
        .remember_signature(k3, t + Duration::microseconds(500), now2)
        .await
        .unwrap());
    assert!(!b
        .remember_signature(
            k3,
            t + Duration::minutes(5),
            t + Duration::microseconds(900)
        )
        .await
        .unwrap());
    assert!(!b
        .remember_signature(k3, t + Duration::minutes(5), t)
        .await
        .unwrap());
    assert!(b
        .remember_signature(k3, t + Duration::minutes(5), t + Duration::milliseconds(1))
        .await
        .unwrap());

    // The same signature on two nodes at once: accepted once.
    let k4 = [4u8; 32];
    let exp = now2 + Duration::minutes(5);
    let (x, y) = tokio::join!(
        a.remember_signature(k4, exp, now2),
        b.remember_signature(k4, exp, now2)
    );
    assert_eq!(
        [x.unwrap(), y.unwrap()].iter().filter(|f| **f).count(),
        1,
        "exactly one acceptance"
    );
}

// ---- approvals -------------------------------------------------------------------------------

/// A pending approval whose id sorts `n`-th (ids are ULIDs: oldest first is id order).
fn pending(incident: Ulid, n: u64) -> Approval {
    Approval {
        id: Ulid::from_parts(1_900_000_000_000 + n, u128::from(n) * 7919),
        state: ApprovalState::PendingApproval,
        action: ApprovalAction::Update,
        incident_id: incident,
        title: format!("Check-in {n}"),
        message: Some("Check-in is slow.".into()),
        request: serde_json::json!({"status": "identified", "message": "x"}),
        author: "maria".into(),
        requested_at: t0() + Duration::seconds(i64::try_from(n).unwrap_or(0)),
        reasons: vec!["impact major".into()],
        decided_by: None,
        decided_at: None,
        reason: None,
    }
}

pub(crate) async fn approvals<S: Approvals + Sync>(a: &S, b: &S) {
    let inc = Ulid::new();
    assert!(a.approvals(None, 10).await.unwrap().is_empty());
    // Put out of order: listed by id.
    let all: Vec<Approval> = (1..=4).map(|n| pending(inc, n)).collect();
    for i in [2, 0, 3, 1] {
        a.put_approval(&all[i]).await.unwrap();
    }
    assert_eq!(b.approval(all[2].id).await.unwrap(), all[2]);
    let missing = Ulid::new();
    let e = b.approval(missing).await.unwrap_err();
    assert!(matches!(e, StoreError::NotFound { .. }), "{e:?}");
    assert_eq!(e.to_string(), format!("approval {missing} not found"));
    assert_eq!(b.approvals(None, 10).await.unwrap(), all);
    assert_eq!(b.approvals(None, 2).await.unwrap(), all[..2]);
    assert!(b.approvals(None, 0).await.unwrap().is_empty());

    // Rejected: the decision is stored and returned; a second decision is a conflict.
    let now = Utc::now();
    let r = b
        .reject_approval(all[1].id, "jussi", "not yet", now)
        .await
        .unwrap();
    assert_eq!(r.state, ApprovalState::Rejected);
    assert_eq!(r.decided_by.as_deref(), Some("jussi"));
    assert_eq!(r.decided_at, Some(now));
    assert_eq!(r.reason.as_deref(), Some("not yet"));
    assert_eq!(a.approval(r.id).await.unwrap(), r);
    let e = a
        .reject_approval(all[1].id, "anna", "again", now)
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Conflict(_)), "{e:?}");
    assert_eq!(e.to_string(), r.decided_already());
    assert_eq!(a.approval(r.id).await.unwrap(), r, "unchanged");
    let e = a
        .reject_approval(missing, "anna", "x", now)
        .await
        .unwrap_err();
    assert_eq!(e.to_string(), format!("approval {missing} not found"));

    // By state, oldest first, at most `limit`.
    let pending_ones = a
        .approvals(Some(ApprovalState::PendingApproval), 10)
        .await
        .unwrap();
    assert_eq!(
        pending_ones,
        vec![all[0].clone(), all[2].clone(), all[3].clone()]
    );
    assert_eq!(
        a.approvals(Some(ApprovalState::PendingApproval), 2)
            .await
            .unwrap(),
        vec![all[0].clone(), all[2].clone()]
    );
    assert_eq!(
        a.approvals(Some(ApprovalState::Rejected), 10)
            .await
            .unwrap(),
        vec![r.clone()]
    );
    assert!(a
        .approvals(Some(ApprovalState::Approved), 10)
        .await
        .unwrap()
        .is_empty());

    // Two rejections at once, from two nodes: one decides, the other is told who did.
    let (x, y) = tokio::join!(
        a.reject_approval(all[3].id, "jussi", "no", now),
        b.reject_approval(all[3].id, "anna", "nope", now)
    );
    let (won, lost) = match (x, y) {
        (Ok(w), Err(l)) | (Err(l), Ok(w)) => (w, l),
        other => panic!("exactly one of two rejections decides: {other:?}"),
    };
    assert_eq!(lost.to_string(), won.decided_already());
    assert_eq!(b.approval(all[3].id).await.unwrap(), won);

    // A put of a stored id replaces it.
    let mut edited = all[0].clone();
    edited.title = "Check-in (edited)".into();
    b.put_approval(&edited).await.unwrap();
    assert_eq!(a.approval(edited.id).await.unwrap(), edited);
    assert_eq!(a.approvals(None, 10).await.unwrap().len(), 4);
}

// ---- the audit log ---------------------------------------------------------------------------

/// What the audit contract needs besides the trait: the stored bytes of an entry, read and
/// overwritten as someone with access to the storage (not through crier) could.
pub(crate) trait RawAudit {
    fn stored_entry(&self, seq: u64) -> impl Future<Output = Vec<u8>> + Send;
    fn overwrite_entry(&self, seq: u64, bytes: Vec<u8>) -> impl Future<Output = ()> + Send;
}

fn new_audit(actor: &str, action: &str, target: &str) -> NewAudit {
    NewAudit {
        actor: actor.into(),
        token: None,
        role: Some(crate::domain::Role::Publisher),
        client: Some("192.0.2.7".into()),
        request_id: format!("req-{actor}-{action}"),
        action: action.into(),
        target: target.into(),
        summary: String::new(),
    }
}

fn seqs(page: &(Vec<AuditEntry>, Option<u64>)) -> (Vec<u64>, Option<u64>) {
    (page.0.iter().map(|e| e.seq).collect(), page.1)
}

async fn listed<S: Audit + Sync>(s: &S, f: AuditFilter) -> (Vec<u64>, Option<u64>) {
    seqs(&s.audit_entries(&f).await.unwrap())
}

pub(crate) async fn audit<S: Audit + RawAudit + Sync>(a: &S, b: &S) {
    let all = |limit: usize| AuditFilter {
        limit,
        ..Default::default()
    };
    let v = a.verify_audit().await.unwrap();
    assert_eq!((v.entries, v.head.as_str()), (0, GENESIS), "an empty log");
    assert_eq!(listed(a, all(10)).await, (vec![], None));

    // Five entries; the third is stamped before the second (a clock step back), the fifth has
    // nanoseconds.
    let t = t0();
    let nanos = t + Duration::hours(4) + Duration::nanoseconds(123);
    let mut summary = new_audit("anna", "incident.update", "/api/v1/incidents/B/updates");
    summary.summary = "investigating → identified".into();
    let entries = [
        (
            new_audit("maria", "incident.create", "/api/v1/incidents/A"),
            t,
        ),
        (
            new_audit("jussi", "incident.update", "/api/v1/incidents/A/updates"),
            t + Duration::hours(2),
        ),
        (
            new_audit("maria", "login.failed", "maria"),
            t + Duration::hours(1),
        ),
        (summary, t + Duration::hours(3)),
        (new_audit("anna", "token.create", "tok"), nanos),
    ];
    let mut written = Vec::new();
    for (i, (new, at)) in entries.into_iter().enumerate() {
        let s = if i % 2 == 0 { a } else { b };
        let e = s.audit(new.clone(), at).await.unwrap();
        assert_eq!(e.seq, i as u64 + 1);
        assert_eq!(
            (e.at, &e.actor, &e.action, &e.target),
            (at, &new.actor, &new.action, &new.target)
        );
        assert_eq!(
            (&e.role, &e.client, &e.request_id, &e.summary),
            (&new.role, &new.client, &new.request_id, &new.summary)
        );
        written.push(e);
    }
    // Stored as the domain encodes it, each chained to the one before.
    let mut prev = GENESIS.to_owned();
    for e in &written {
        assert_eq!(e.prev, prev, "entry {}", e.seq);
        let stored = a.stored_entry(e.seq).await;
        assert_eq!(stored, e.stored().unwrap(), "entry {}", e.seq);
        prev = audit::hash(&stored);
    }
    let v = b.verify_audit().await.unwrap();
    assert_eq!((v.entries, v.head.clone()), (5, prev));
    assert_eq!(
        a.audit_entries(&all(10)).await.unwrap(),
        (written.clone(), None)
    );

    // The filters, and pages.
    let f = |g: fn(&mut AuditFilter)| {
        let mut f = all(10);
        g(&mut f);
        f
    };
    assert_eq!(
        listed(a, f(|f| f.actor = Some("maria".into()))).await,
        (vec![1, 3], None)
    );
    assert_eq!(
        listed(a, f(|f| f.action = Some("incident.".into()))).await,
        (vec![1, 2, 4], None)
    );
    assert_eq!(
        listed(a, f(|f| f.action = Some("incident.update".into()))).await,
        (vec![2, 4], None)
    );
    assert_eq!(
        listed(a, f(|f| f.action = Some("incident".into()))).await,
        (vec![], None),
        "an action without a dot is exact"
    );
    assert_eq!(
        listed(a, f(|f| f.target = Some("incidents/A".into()))).await,
        (vec![1, 2], None)
    );
    assert_eq!(
        listed(a, f(|f| f.since = Some(t0() + Duration::minutes(90)))).await,
        (vec![2, 4, 5], None)
    );
    // The walk stops at the first entry later than `until`: entry 3, stamped earlier than
    // entry 2, is not reached.
    assert_eq!(
        listed(a, f(|f| f.until = Some(t0() + Duration::minutes(90)))).await,
        (vec![1], None)
    );
    assert_eq!(
        listed(a, f(|f| f.until = Some(t0() + Duration::hours(3)))).await,
        (vec![1, 2, 3, 4], None)
    );
    assert_eq!(
        listed(
            a,
            f(|f| {
                f.actor = Some("anna".into());
                f.until = Some(t0() + Duration::minutes(90));
            })
        )
        .await,
        (vec![], None)
    );
    // Times to the nanosecond.
    let exact = |since: DateTime<Utc>, until: Option<DateTime<Utc>>| AuditFilter {
        since: Some(since),
        until,
        limit: 10,
        ..Default::default()
    };
    assert_eq!(listed(a, exact(nanos, None)).await, (vec![5], None));
    assert_eq!(
        listed(a, exact(nanos + Duration::nanoseconds(1), None)).await,
        (vec![], None)
    );
    assert_eq!(
        listed(a, exact(t, Some(nanos - Duration::nanoseconds(1)))).await,
        (vec![1, 2, 3, 4], None)
    );
    assert_eq!(
        listed(a, exact(t, Some(nanos))).await,
        (vec![1, 2, 3, 4, 5], None)
    );
    // Pages: `next` only when a further entry matches.
    assert_eq!(listed(a, all(2)).await, (vec![1, 2], Some(2)));
    let mut next = all(2);
    next.after = 2;
    assert_eq!(listed(a, next.clone()).await, (vec![3, 4], Some(4)));
    next.after = 4;
    assert_eq!(listed(a, next.clone()).await, (vec![5], None));
    next.after = 5;
    assert_eq!(listed(a, next).await, (vec![], None));
    assert_eq!(listed(a, all(5)).await, (vec![1, 2, 3, 4, 5], None));
    assert_eq!(listed(a, all(0)).await, (vec![], None));
    assert_eq!(
        listed(
            a,
            f(|f| {
                f.actor = Some("maria".into());
                f.limit = 1;
            })
        )
        .await,
        (vec![1], Some(1))
    );
    let mut maria = all(1);
    maria.actor = Some("maria".into());
    maria.after = 1;
    assert_eq!(listed(a, maria).await, (vec![3], None));

    // A longer log, listed in small pages through sparse matches.
    for i in 0..40u32 {
        let target = if i % 7 == 3 { "rare" } else { "common" };
        b.audit(
            new_audit("ci", "hook.accepted", target),
            t + Duration::hours(5) + Duration::seconds(i64::from(i)),
        )
        .await
        .unwrap();
    }
    let mut rare = all(2);
    rare.target = Some("rare".into());
    let mut got = Vec::new();
    loop {
        let (page, next) = listed(a, rare.clone()).await;
        got.extend(page);
        match next {
            Some(n) => rare.after = n,
            None => break,
        }
    }
    assert_eq!(got, [9, 16, 23, 30, 37, 44]);

    // Twelve appends at once from two nodes: numbered 46..=57 without a gap, and the chain
    // verifies.
    let at = t + Duration::hours(6);
    let appended = join_all((0..12).map(|i| {
        let s = if i % 2 == 0 { a } else { b };
        s.audit(new_audit("maria", "incident.update", &format!("n{i}")), at)
    }))
    .await;
    let mut numbers: Vec<u64> = appended.into_iter().map(|e| e.unwrap().seq).collect();
    numbers.sort_unstable();
    assert_eq!(numbers, (46..=57).collect::<Vec<_>>());
    let v = a.verify_audit().await.unwrap();
    assert_eq!(v.entries, 57);
    assert_eq!(v.head, audit::hash(&a.stored_entry(57).await));

    // Tampering is named: an entry altered in the middle, the last one altered.
    for seq in [3, 57] {
        let original = a.stored_entry(seq).await;
        let forged = String::from_utf8(original.clone())
            .unwrap()
            .replace("maria", "mallory")
            .into_bytes();
        assert_ne!(forged, original);
        a.overwrite_entry(seq, forged).await;
        match b.verify_audit().await {
            Err(VerifyError::Chain(ChainError::Altered(n))) => assert_eq!(n, seq),
            other => panic!("entry {seq} altered: {other:?}"),
        }
        a.overwrite_entry(seq, original).await;
        assert_eq!(b.verify_audit().await.unwrap().entries, 57);
    }
    // An entry that is no longer an entry.
    let original = a.stored_entry(10).await;
    a.overwrite_entry(10, b"{\"not\":\"an entry\"}".to_vec())
        .await;
    match b.verify_audit().await {
        Err(VerifyError::Chain(ChainError::Unreadable(10))) => {}
        other => panic!("entry 10 unreadable: {other:?}"),
    }
    a.overwrite_entry(10, original).await;
    assert_eq!(a.verify_audit().await.unwrap().entries, 57);
}

// ---- the backends ----------------------------------------------------------------------------

mod on_sled {
    use super::*;
    use crate::store::SledStore;

    impl RawAudit for SledStore {
        async fn stored_entry(&self, seq: u64) -> Vec<u8> {
            let tree = self.audit_tree_for_tests().unwrap();
            tree.get(seq.to_be_bytes()).unwrap().unwrap()
        }

        async fn overwrite_entry(&self, seq: u64, bytes: Vec<u8>) {
            let tree = self.audit_tree_for_tests().unwrap();
            tree.insert(seq.to_be_bytes(), bytes).unwrap();
        }
    }

    pub(super) fn store() -> (tempfile::TempDir, SledStore) {
        let dir = tempfile::tempdir().unwrap();
        let s = SledStore::open(dir.path()).unwrap();
        (dir, s)
    }

    #[tokio::test]
    async fn threads() {
        let (_dir, s) = store();
        super::threads(&s, &s.clone()).await;
    }

    #[tokio::test]
    async fn templates() {
        let (_dir, s) = store();
        super::templates(&s, &s.clone()).await;
    }

    #[tokio::test]
    async fn alert_groups() {
        let (_dir, s) = store();
        super::alert_groups(&s, &s.clone()).await;
    }

    #[tokio::test]
    async fn hook_signatures() {
        let (_dir, s) = store();
        super::hook_signatures(&s, &s.clone()).await;
    }

    #[tokio::test]
    async fn approvals() {
        let (_dir, s) = store();
        super::approvals(&s, &s.clone()).await;
    }

    #[tokio::test]
    async fn audit() {
        let (_dir, s) = store();
        super::audit(&s, &s.clone()).await;
    }
}

mod on_pg {
    use super::*;
    use crate::clock::Clock;
    use crate::pg::store::PgStore;
    use crate::pg::testdb::TestDb;

    impl RawAudit for PgStore {
        async fn stored_entry(&self, seq: u64) -> Vec<u8> {
            let c = self.pg().client().await.unwrap();
            let seq = i64::try_from(seq).unwrap();
            c.query_one("SELECT entry FROM crier_audit WHERE seq = $1", &[&seq])
                .await
                .unwrap()
                .get(0)
        }

        /// As the table's owner can: past the append-only trigger.
        async fn overwrite_entry(&self, seq: u64, bytes: Vec<u8>) {
            let mut c = self.pg().client().await.unwrap();
            let c: &mut tokio_postgres::Client = &mut c;
            let tx = c.transaction().await.unwrap();
            let seq = i64::try_from(seq).unwrap();
            tx.batch_execute("ALTER TABLE crier_audit DISABLE TRIGGER crier_audit_append_only")
                .await
                .unwrap();
            let n = tx
                .execute(
                    "UPDATE crier_audit SET entry = $2 WHERE seq = $1",
                    &[&seq, &bytes],
                )
                .await
                .unwrap();
            assert_eq!(n, 1);
            tx.batch_execute("ALTER TABLE crier_audit ENABLE TRIGGER crier_audit_append_only")
                .await
                .unwrap();
            tx.commit().await.unwrap();
        }
    }

    /// Two nodes on one fresh database (separate pools), or None when no test cluster is set.
    pub(super) async fn nodes(name: &str) -> Option<(PgStore, PgStore)> {
        let db = TestDb::create(name).await?;
        let a = PgStore::with_pg(db.pg(4), Clock::new()).await.unwrap();
        let b = PgStore::with_pg(db.pg(4), Clock::new()).await.unwrap();
        Some((a, b))
    }

    #[tokio::test]
    async fn threads() {
        let Some((a, b)) = nodes("cthreads").await else {
            return;
        };
        super::threads(&a, &b).await;
    }

    #[tokio::test]
    async fn templates() {
        let Some((a, b)) = nodes("ctemplates").await else {
            return;
        };
        super::templates(&a, &b).await;
    }

    #[tokio::test]
    async fn alert_groups() {
        let Some((a, b)) = nodes("calerts").await else {
            return;
        };
        super::alert_groups(&a, &b).await;
    }

    #[tokio::test]
    async fn hook_signatures() {
        let Some((a, b)) = nodes("csigs").await else {
            return;
        };
        super::hook_signatures(&a, &b).await;
    }

    #[tokio::test]
    async fn approvals() {
        let Some((a, b)) = nodes("capprovals").await else {
            return;
        };
        super::approvals(&a, &b).await;
    }

    #[tokio::test]
    async fn audit() {
        let Some((a, b)) = nodes("caudit").await else {
            return;
        };
        super::audit(&a, &b).await;
    }
}

/// The same contracts through [`super::Store`], the handle crier holds: its dispatch arms reach
/// the backend that is open (a mistake there — an arm calling the wrong method — fails here).
/// Each contract gets a fresh store, as in the backends' own runs.
mod through_the_handle {
    use crate::store::Store;

    const CONTRACTS: usize = 13;

    async fn run(i: usize, a: &Store, b: &Store) {
        match i {
            0 => super::threads(a, b).await,
            1 => super::templates(a, b).await,
            2 => super::alert_groups(a, b).await,
            3 => super::hook_signatures(a, b).await,
            4 => super::approvals(a, b).await,
            5 => super::incidents::incidents(a, b).await,
            6 => super::incidents::components(a, b).await,
            7 => super::people::users(a, b).await,
            8 => super::people::tokens(a, b).await,
            9 => super::people::sessions(a, b).await,
            10 => super::people::second_factors(a, b).await,
            11 => super::audience::notices(a, b).await,
            _ => super::audience::holds(a, b).await,
        }
    }

    #[tokio::test]
    async fn on_sled() {
        for i in 0..CONTRACTS {
            let (_dir, s) = super::on_sled::store();
            let s = Store::Sled(s);
            run(i, &s, &s.clone()).await;
        }
    }

    #[tokio::test]
    async fn on_pg() {
        for i in 0..CONTRACTS {
            let Some((a, b)) = super::on_pg::nodes(&format!("chandle{i}")).await else {
                return;
            };
            run(i, &Store::Pg(Box::new(a)), &Store::Pg(Box::new(b))).await;
        }
    }
}
