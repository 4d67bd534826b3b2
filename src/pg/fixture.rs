//! A sled store holding something of every aggregate, made through the store's own methods,
//! for the row codec and migration tests.

use crate::store::port::{Components, Incidents};
use chrono::{Duration, Utc};
use serde_json::json;
use ulid::Ulid;

use crate::domain::alert::AlertGroup;
use crate::domain::audit::NewAudit;
use crate::domain::{
    ApiToken, Approval, Body, ComponentName, ComponentStatus, Contact, Impact, Incident,
    IncidentKind, IncidentTemplate, Locale, Notice, PromiseEdit, Role, Status, Title, Titles, User,
    UserName,
};
use crate::domain::{
    Change, ExpandTarget, Hold, NewIncident, NewSubscriber, NewUpdate, Standalone, StandaloneKind,
    TotpRecord,
};
use crate::store::port::{
    AlertGroups, Approvals, Audit, Holds, Notices, Outbox, SecondFactors, Standalones, Subscribers,
    Templates, Threads, Tokens, Users,
};
use crate::store::Store;

pub(crate) struct Fixture {
    pub _dir: tempfile::TempDir,
    pub store: Store,
    /// The incident with several updates and pending deliveries.
    pub busy: Incident,
    pub token_hash: [u8; 32],
}

fn new_incident(title: &str, draft: bool, broadcast: Vec<(String, bool)>) -> NewIncident {
    NewIncident {
        title: Title::parse(title).unwrap(),
        titles: Titles::new(),
        kind: IncidentKind::Incident,
        status: None,
        impact: Impact::Major,
        components: vec![ComponentName::parse("api").unwrap()],
        body: Body::single(Locale::english(), &format!("{title}: first")).unwrap(),
        author: "maria".into(),
        next_update_due: None,
        draft,
        broadcast,
        scheduled_for: None,
        scheduled_until: None,
        holding_statement: false,
        remind_before: None,
    }
}

fn new_update(text: &str, status: Status) -> NewUpdate {
    NewUpdate {
        expect_count: None,
        change: Change::Update(Some(status)),
        titles: Titles::new(),
        body: Body::single(Locale::english(), text).unwrap(),
        author: "maria".into(),
        impact: None,
        promise: PromiseEdit::Keep,
        draft: false,
        broadcast: vec![],
    }
}

/// A store in a temp dir with incidents (one with four updates and pending SMS deliveries to
/// `subscribers` phone subscribers), an email subscriber, components with history, a notice
/// and its posted message, intake state, a thread, a user with a token and TOTP, a template, an
/// approval and audit entries.
pub(crate) async fn populated(subscribers: usize) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("db")).unwrap();
    let now = Utc::now();
    let api = ComponentName::parse("api").unwrap();
    store
        .set_component(
            api.clone(),
            ComponentStatus::Operational,
            Some("core".into()),
            now,
        )
        .await
        .unwrap();
    store
        .set_component(
            ComponentName::parse("web").unwrap(),
            ComponentStatus::Operational,
            None,
            now,
        )
        .await
        .unwrap();
    let batch = (0..subscribers)
        .map(|i| NewSubscriber {
            contact: Contact::phone(&format!("+35840{i:07}")).unwrap(),
            locale: Locale::english(),
            components: vec![],
            confirmed: true,
        })
        .collect();
    store.import_subscribers(batch, now).await.unwrap();
    store
        .add_subscriber(
            NewSubscriber {
                contact: Contact::email("Ops@Example.com").unwrap(),
                locale: Locale::parse("fi").unwrap(),
                components: vec![api.clone()],
                confirmed: false,
            },
            now,
        )
        .await
        .unwrap();

    let (busy, _) = store
        .create_incident(
            new_incident("Check-in slow", false, vec![("sms".into(), true)]),
            now,
        )
        .await
        .unwrap();
    for (text, status) in [
        ("Found it", Status::Identified),
        ("Fix deployed", Status::Monitoring),
        ("Watching", Status::Monitoring),
    ] {
        store
            .append_update(busy.id, new_update(text, status), now)
            .await
            .unwrap();
    }
    let (draft, _) = store
        .create_incident(new_incident("Maybe DNS", true, vec![]), now)
        .await
        .unwrap();
    store
        .set_component(
            api.clone(),
            ComponentStatus::MajorOutage,
            Some("core".into()),
            now + Duration::seconds(1),
        )
        .await
        .unwrap();

    let notice: Notice = serde_json::from_value(json!({
        "id": Ulid::new(), "cron": "0 9 * * 1", "tz": "Europe/Helsinki",
        "subject": "Weekly maintenance", "body": {"en": "Mondays at nine"},
        "channels": ["email"], "from": null, "until": null,
        "created_at": now, "last_fired": null
    }))
    .unwrap();
    store.put_notice(&notice).await.unwrap();
    let msg = Standalone::new(
        notice.id,
        crate::domain::standalone::notice_seq(now),
        StandaloneKind::Notice {
            notice_id: notice.id,
            scheduled_for: now,
            subject: "Weekly maintenance".into(),
            body: notice.body.clone(),
        },
        now,
    );
    // Posted to SMS subscribers: its broadcast and deliveries carry the message's seq, above
    // 2^31 (standalone seqs use the top bit).
    store
        .post_standalone(&msg, &[("sms".into(), true)], now)
        .await
        .unwrap();

    // Expand the opening's and the notice's broadcasts into pending deliveries.
    let all = |_: &crate::domain::Subscriber| true;
    for b in store.open_broadcasts().await.unwrap() {
        store
            .expand(&b, &[], &ExpandTarget { reaches: &all }, 1000, now)
            .await
            .unwrap();
    }
    let group: AlertGroup = serde_json::from_value(json!({
        "source": "alertmanager", "group": "api-5xx", "incident_id": draft.id,
        "alerts": {"HighErrorRate": {"firing": true, "summary": "5xx > 5%", "since": now}},
        "mode": "draft", "broadcast": [["sms", true]], "updated_at": now
    }))
    .unwrap();
    store.put_alert_group(&group).await.unwrap();
    store
        .put_hold(&Hold {
            incident_id: draft.id,
            until: now + Duration::minutes(5),
            broadcast: vec![("sms".into(), true)],
        })
        .await
        .unwrap();
    store
        .extend_thread(busy.id, "mastodon", "https://social.example/1")
        .await
        .unwrap();
    store
        .extend_thread(busy.id, "mastodon", "https://social.example/2")
        .await
        .unwrap();

    let maria = UserName::parse("maria").unwrap();
    store
        .add_user(
            User {
                name: maria.clone(),
                display_name: "Maria K".into(),
                role: Role::Publisher,
                email: Some("maria@example.com".into()),
                phone: None,
                disabled: false,
                created_at: now,
            },
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo",
        )
        .await
        .unwrap();
    let token_hash = [7u8; 32];
    store
        .add_token(
            &ApiToken {
                id: Ulid::new(),
                name: "laptop".into(),
                owner: maria.clone(),
                role: Role::Responder,
                created_at: now,
                expires_at: Some(now + Duration::days(30)),
                last_used_at: None,
                revoked_at: None,
            },
            &token_hash,
        )
        .await
        .unwrap();
    // A revoked token: sled deletes its hash, so the migration copies it without one.
    let revoked = ApiToken {
        id: Ulid::new(),
        name: "old phone".into(),
        owner: maria.clone(),
        role: Role::Viewer,
        created_at: now,
        expires_at: None,
        last_used_at: None,
        revoked_at: None,
    };
    store.add_token(&revoked, &[9u8; 32]).await.unwrap();
    store.revoke_token(revoked.id, now).await.unwrap();
    store
        .change_totp(&maria, |_| {
            Ok((
                Some(TotpRecord {
                    secret: "JBSWY3DPEHPK3PXP".into(),
                    enabled: true,
                    last_step: Some(42),
                    recovery: vec!["ab".repeat(32)],
                    created_at: now,
                }),
                (),
            ))
        })
        .await
        .unwrap();
    let template: IncidentTemplate = serde_json::from_value(json!({
        "id": Ulid::new(), "name": "Check-in down", "title": "Check-in is down",
        "impact": "major", "status": "investigating", "components": ["api"],
        "messages": {"en": "We are looking into it"}, "created_by": "maria",
        "created_at": now, "updated_by": "maria", "updated_at": now
    }))
    .unwrap();
    store.put_template(&template).await.unwrap();
    let approval: Approval = serde_json::from_value(json!({
        "id": Ulid::new(), "state": "pending_approval", "action": "update",
        "incident_id": busy.id, "title": "Check-in slow", "message": "All clear soon",
        "request": {"body": "All clear soon"}, "author": "maria", "requested_at": now,
        "reasons": ["publishing needs a second person"]
    }))
    .unwrap();
    store.put_approval(&approval).await.unwrap();
    for (i, action) in ["login", "incident.create", "incident.update"]
        .iter()
        .enumerate()
    {
        store
            .audit(
                NewAudit {
                    actor: "maria".into(),
                    role: Some(Role::Publisher),
                    request_id: format!("req-{i}"),
                    action: (*action).into(),
                    target: format!("/api/v1/incidents/{}", busy.id),
                    summary: if i == 0 {
                        String::new()
                    } else {
                        "x → y".into()
                    },
                    ..NewAudit::default()
                },
                now,
            )
            .await
            .unwrap();
    }
    let (busy, _) = store.incident(busy.id).await.unwrap();
    Fixture {
        _dir: dir,
        store,
        busy,
        token_hash,
    }
}
