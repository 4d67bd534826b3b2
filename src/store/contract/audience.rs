//! The contract of subscribers and their sign-ups, notices, hold-downs and standalone messages
//! (Subscribers, SignUps, Notices, Holds, Standalones), run on both backends: round trips, sled's
//! messages for conflicts and missing records, orders, the sign-up rules applied atomically, and
//! what two nodes writing at once leave (one subscriber per address, no lost attempt count, each
//! stale sign-up purged once, each standalone message posted once).

use std::collections::BTreeSet;
use std::future::Future;

use chrono::Duration;
use futures_util::future::join_all;
use serde_json::json;
use ulid::Ulid;

use super::t0;
use crate::domain::standalone::{notice_seq, reminder_seq, StandaloneKind, STANDALONE_BASE};
use crate::domain::{
    Body, CodeCheck, ComponentName, Contact, DomainError, Hold, ImportCounts, Locale,
    NewSubscriber, Notice, Secret, SignUp, Standalone, Subscriber,
};
use crate::store::port::{Holds, Notices, SignUps, Standalones, Subscribers};
use crate::store::StoreError;

/// What the audience contract needs besides its traits (each backend's other aggregates, or
/// its tables, which other traits own): a component to name in filters, and the broadcasts a
/// standalone message wrote.
pub(crate) trait RawAudience {
    fn add_component(&self, name: &str) -> impl Future<Output = ()> + Send;
    /// (seq, channel, to subscribers) of every broadcast of `origin`, sorted.
    fn broadcasts_of_origin(
        &self,
        origin: Ulid,
    ) -> impl Future<Output = Vec<(u32, String, bool)>> + Send;
}

fn email(a: &str) -> Contact {
    Contact::email(a).unwrap()
}

fn phone(p: &str) -> Contact {
    Contact::phone(p).unwrap()
}

fn comp(n: &str) -> ComponentName {
    ComponentName::parse(n).unwrap()
}

fn new_sub(contact: Contact, components: &[&str], confirmed: bool) -> NewSubscriber {
    NewSubscriber {
        contact,
        locale: Locale::english(),
        components: components.iter().map(|c| comp(c)).collect(),
        confirmed,
    }
}

fn conflict_message(contact: &Contact) -> String {
    format!(
        "{contact} is already subscribed; change its language or components with `crier \
         subscribers set` (PATCH /api/v1/subscribers/{{address}})"
    )
}

fn unknown_component(e: StoreError, name: &str) {
    match e {
        StoreError::Domain(DomainError::UnknownComponent(n)) => assert_eq!(n, name),
        other => panic!("unknown component {name}: {other:?}"),
    }
}

async fn everyone<S: Subscribers + Sync>(s: &S) -> Vec<Subscriber> {
    s.subscribers(usize::MAX).await.unwrap()
}

// ---- subscribers -----------------------------------------------------------------------------

pub(crate) async fn subscribers<S: Subscribers + RawAudience + Sync>(a: &S, b: &S) {
    let now = t0();
    assert_eq!(a.subscriber_count().await.unwrap(), 0);
    assert!(a.subscribers(10).await.unwrap().is_empty());

    // An unknown component writes nothing.
    let e = a
        .add_subscriber(new_sub(email("alice@example.com"), &["api"], true), now)
        .await
        .unwrap_err();
    unknown_component(e, "api");
    assert_eq!(b.subscriber_count().await.unwrap(), 0);

    a.add_component("api").await;
    let alice = a
        .add_subscriber(new_sub(email("alice@example.com"), &["api"], true), now)
        .await
        .unwrap();
    assert_eq!(alice.contact, email("alice@example.com"));
    assert_eq!(alice.components, vec![comp("api")]);
    assert!(alice.confirmed && !alice.opted_out && alice.pending.is_none());
    assert_eq!(alice.created_at, now);
    assert_eq!(b.subscriber_standing(alice.id).await.unwrap(), Some(true));
    assert_eq!(
        b.subscriber_by_token(&alice.unsubscribe_token)
            .await
            .unwrap(),
        Some(alice.clone())
    );
    assert_eq!(b.subscriber_by_token("nope").await.unwrap(), None);
    assert_eq!(b.subscriber_standing(Ulid::new()).await.unwrap(), None);

    // The address is unique: sled's message, from either node.
    let again = b
        .add_subscriber(new_sub(email("alice@example.com"), &[], false), now)
        .await
        .unwrap_err();
    assert_eq!(
        again.to_string(),
        conflict_message(&email("alice@example.com"))
    );
    assert!(matches!(again, StoreError::Conflict(_)));

    let bob = b
        .add_subscriber(new_sub(phone("+358401234567"), &[], false), now)
        .await
        .unwrap();
    assert_eq!(
        a.subscriber_standing(bob.id).await.unwrap(),
        Some(false),
        "unconfirmed"
    );
    assert_eq!(a.subscriber_count().await.unwrap(), 2);
    let mut both = vec![alice.clone(), bob.clone()];
    both.sort_by_key(|s| s.id);
    assert_eq!(a.subscribers(10).await.unwrap(), both, "in id order");
    assert_eq!(a.subscribers(1).await.unwrap(), both[..1].to_vec());
    assert!(a.subscribers(0).await.unwrap().is_empty());

    // Changes: by email, by phone number, by id.
    let fi = Locale::parse("fi").unwrap();
    let (was, now_is) = b
        .change_subscriber("alice@example.com", Some(fi.clone()), Some(vec![]))
        .await
        .unwrap();
    assert_eq!(was, alice);
    assert_eq!((now_is.locale.clone(), now_is.components.len()), (fi, 0));
    let (_, bob2) = a
        .change_subscriber("+358 40 123 4567", None, Some(vec![comp("api")]))
        .await
        .unwrap();
    assert_eq!(bob2.components, vec![comp("api")]);
    assert_eq!(bob2.locale, Locale::english());
    let (_, bob3) = a
        .change_subscriber(&bob.id.to_string(), None, None)
        .await
        .unwrap();
    assert_eq!(bob3, bob2);
    assert_eq!(
        b.subscriber_by_token(&bob.unsubscribe_token).await.unwrap(),
        Some(bob2.clone())
    );
    let e = a
        .change_subscriber("alice@example.com", None, Some(vec![comp("nope")]))
        .await
        .unwrap_err();
    unknown_component(e, "nope");
    let e = a
        .change_subscriber("nobody@example.com", None, None)
        .await
        .unwrap_err();
    assert_eq!(e.to_string(), "subscriber nobody@example.com not found");
    let ghost = Ulid::new();
    let e = a
        .change_subscriber(&ghost.to_string(), None, None)
        .await
        .unwrap_err();
    assert_eq!(e.to_string(), format!("subscriber {ghost} not found"));
    assert!(matches!(
        a.change_subscriber("not an address", None, None).await,
        Err(StoreError::Domain(_))
    ));

    // Imports: duplicates in the batch and already subscribed are skipped; an unknown
    // component writes nothing.
    let batch = vec![
        new_sub(email("c1@example.com"), &[], true),
        new_sub(email("alice@example.com"), &[], true),
        new_sub(email("c2@example.com"), &["api"], true),
        new_sub(email("c1@example.com"), &["api"], false),
        new_sub(phone("+358409999999"), &[], true),
    ];
    assert_eq!(
        a.import_subscribers(batch, now).await.unwrap(),
        ImportCounts {
            added: 3,
            duplicates: 2
        }
    );
    let c1 = everyone(b)
        .await
        .into_iter()
        .find(|s| s.contact == email("c1@example.com"))
        .unwrap();
    assert!(
        c1.confirmed && c1.components.is_empty(),
        "the first one kept"
    );
    let e = b
        .import_subscribers(
            vec![
                new_sub(email("c3@example.com"), &[], true),
                new_sub(email("c4@example.com"), &["nope"], true),
            ],
            now,
        )
        .await
        .unwrap_err();
    unknown_component(e, "nope");
    assert_eq!(a.subscriber_count().await.unwrap(), 5);
    assert_eq!(
        a.import_subscribers(vec![], now).await.unwrap(),
        ImportCounts::default()
    );

    // Removal: by address, then gone; by token (the one-click link).
    let removed = b.remove_subscriber("alice@example.com").await.unwrap();
    assert_eq!(removed.id, alice.id);
    assert_eq!(a.subscriber_standing(alice.id).await.unwrap(), None);
    assert_eq!(
        a.subscriber_by_token(&alice.unsubscribe_token)
            .await
            .unwrap(),
        None
    );
    let e = a
        .remove_subscriber(&alice.id.to_string())
        .await
        .unwrap_err();
    assert_eq!(e.to_string(), format!("subscriber {} not found", alice.id));
    let e = a.remove_subscriber("alice@example.com").await.unwrap_err();
    assert_eq!(e.to_string(), "subscriber alice@example.com not found");
    // The address can be subscribed again.
    a.add_subscriber(new_sub(email("alice@example.com"), &[], true), now)
        .await
        .unwrap();
    let gone = a.unsubscribe(&bob.unsubscribe_token).await.unwrap();
    assert_eq!(gone, bob2);
    let e = b.unsubscribe(&bob.unsubscribe_token).await.unwrap_err();
    assert_eq!(e.to_string(), "subscription for this link not found");
    assert!(matches!(e, StoreError::NotFound { .. }));
    assert_eq!(a.subscriber_count().await.unwrap(), 4);

    // Two nodes adding one address at once: one subscriber, the other told of the conflict.
    let (x, y) = tokio::join!(
        a.add_subscriber(new_sub(email("race@example.com"), &[], true), now),
        b.add_subscriber(new_sub(email("race@example.com"), &["api"], true), now)
    );
    let lost = match (x, y) {
        (Ok(_), Err(l)) | (Err(l), Ok(_)) => l,
        other => panic!("exactly one of two adds of one address: {other:?}"),
    };
    assert_eq!(
        lost.to_string(),
        conflict_message(&email("race@example.com"))
    );

    // Two imports at once, overlapping: every address once, counted once.
    let batch = |from: usize, to: usize| -> Vec<NewSubscriber> {
        (from..to)
            .map(|i| new_sub(email(&format!("bulk{i}@example.com")), &[], true))
            .collect()
    };
    let (x, y) = tokio::join!(
        a.import_subscribers(batch(0, 300), now),
        b.import_subscribers(batch(200, 500), now)
    );
    let (x, y) = (x.unwrap(), y.unwrap());
    assert_eq!(x.added + y.added, 500);
    assert_eq!(x.duplicates + y.duplicates, 100);
    assert_eq!(a.subscriber_count().await.unwrap(), 505);

    // A long walk (more than a page of any backend): `keep` sees every subscriber once, in id
    // order, until `limit` are kept.
    b.import_subscribers(batch(500, 2600), now).await.unwrap();
    let total = a.subscriber_count().await.unwrap();
    assert_eq!(total, 2605);
    let mut seen = Vec::new();
    let kept = a
        .subscribers_where(usize::MAX, |s| {
            seen.push(s.id);
            seen.len() % 3 == 0
        })
        .await
        .unwrap();
    assert_eq!(seen.len(), total);
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "in id order");
    assert_eq!(kept.len(), total / 3);
    assert_eq!(
        kept.iter().map(|s| s.id).collect::<Vec<_>>(),
        seen.iter().skip(2).step_by(3).copied().collect::<Vec<_>>()
    );
    let mut looked = 0;
    let first = b
        .subscribers_where(1500, |_| {
            looked += 1;
            true
        })
        .await
        .unwrap();
    assert_eq!((first.len(), looked), (1500, 1500), "stops at the limit");
    assert_eq!(
        first.iter().map(|s| s.id).collect::<Vec<_>>(),
        seen[..1500].to_vec()
    );
    let mut looked = 0;
    let none = a
        .subscribers_where(10, |_| {
            looked += 1;
            false
        })
        .await
        .unwrap();
    assert_eq!(
        (none.len(), looked),
        (0, total),
        "a caller may count and keep none"
    );
    assert_eq!(a.subscribers(total + 10).await.unwrap().len(), total);
    assert_eq!(
        b.subscribers(2000)
            .await
            .unwrap()
            .iter()
            .map(|s| s.id)
            .collect::<Vec<_>>(),
        seen[..2000].to_vec()
    );
}

// ---- sign-ups --------------------------------------------------------------------------------

fn created(s: SignUp) -> Subscriber {
    match s {
        SignUp::Created(s) => s,
        other => panic!("not created: {other:?}"),
    }
}

pub(crate) async fn sign_ups<S: Subscribers + SignUps + RawAudience + Sync>(a: &S, b: &S) {
    let now = t0();
    let day = Duration::hours(24);
    let en = Locale::english();
    let link = Secret::Link("s3cret".into());

    // An unknown component writes nothing.
    let e = a
        .sign_up(
            email("a@example.com"),
            en.clone(),
            vec![comp("web")],
            &link,
            day,
            now,
        )
        .await
        .unwrap_err();
    unknown_component(e, "web");
    assert_eq!(a.subscriber_count().await.unwrap(), 0);
    a.add_component("web").await;

    // The link: forged, malformed or expired confirm nothing; the right one once.
    let s = created(
        a.sign_up(email("a@example.com"), en.clone(), vec![], &link, day, now)
            .await
            .unwrap(),
    );
    assert!(!s.confirmed && s.pending.is_some());
    assert_ne!(b.subscriber_standing(s.id).await.unwrap(), Some(true));
    let stored = serde_json::to_string(&everyone(b).await).unwrap();
    assert!(!stored.contains("s3cret"), "the secret is kept only hashed");
    // Renewed before confirming: new choices, the same record.
    let fi = Locale::parse("fi").unwrap();
    let renewed = match b
        .sign_up(
            email("a@example.com"),
            fi.clone(),
            vec![comp("web")],
            &link,
            day,
            now,
        )
        .await
        .unwrap()
    {
        SignUp::Renewed(r) => r,
        other => panic!("not renewed: {other:?}"),
    };
    assert_eq!(
        (renewed.id, &renewed.locale, &renewed.components),
        (s.id, &fi, &vec![comp("web")])
    );
    let token = format!("{}.s3cret", s.id);
    assert_eq!(
        a.confirm_link(&format!("{}.s3cres", s.id), now)
            .await
            .unwrap(),
        None
    );
    assert_eq!(a.confirm_link("nonsense", now).await.unwrap(), None);
    assert_eq!(
        a.confirm_link(&format!("{}.s3cret", Ulid::new()), now)
            .await
            .unwrap(),
        None
    );
    assert_eq!(a.confirm_link(&token, now + day).await.unwrap(), None);
    assert_eq!(
        everyone(a).await,
        vec![renewed.clone()],
        "refusals write nothing"
    );
    let c = b.confirm_link(&token, now).await.unwrap().unwrap();
    assert!(c.confirmed && c.pending.is_none());
    assert_eq!(c.locale, fi);
    assert_eq!(a.subscriber_standing(s.id).await.unwrap(), Some(true));
    assert_eq!(
        a.confirm_link(&token, now).await.unwrap(),
        None,
        "single use"
    );
    assert_eq!(
        a.sign_up(email("a@example.com"), en.clone(), vec![], &link, day, now)
            .await
            .unwrap(),
        SignUp::AlreadyConfirmed
    );
    assert_eq!(everyone(b).await, vec![c.clone()], "nothing written");

    // The code: three wrong ones lock it; a new sign-up sends another.
    let p = phone("+358401234567");
    let h = Duration::hours(1);
    created(
        a.sign_up(
            p.clone(),
            en.clone(),
            vec![],
            &Secret::Code("123456".into()),
            h,
            now,
        )
        .await
        .unwrap(),
    );
    assert_eq!(
        b.confirm_code(&p, "000000", now).await.unwrap(),
        CodeCheck::Wrong(2)
    );
    assert_eq!(
        a.confirm_code(&p, "000001", now).await.unwrap(),
        CodeCheck::Wrong(1)
    );
    assert_eq!(
        b.confirm_code(&p, "000002", now).await.unwrap(),
        CodeCheck::Dead
    );
    assert_eq!(
        a.confirm_code(&p, "123456", now).await.unwrap(),
        CodeCheck::Dead,
        "locked"
    );
    let SignUp::Renewed(_) = b
        .sign_up(
            p.clone(),
            en.clone(),
            vec![],
            &Secret::Code("654321".into()),
            h,
            now,
        )
        .await
        .unwrap()
    else {
        panic!("not renewed")
    };
    assert_eq!(
        a.confirm_code(&p, "654321", now + h).await.unwrap(),
        CodeCheck::Dead,
        "expired"
    );
    let confirmed = match a.confirm_code(&p, " 654321 ", now).await.unwrap() {
        CodeCheck::Confirmed(s) => *s,
        other => panic!("not confirmed: {other:?}"),
    };
    assert!(confirmed.confirmed && confirmed.pending.is_none());
    assert_eq!(
        b.confirm_code(&phone("+358400000000"), "654321", now)
            .await
            .unwrap(),
        CodeCheck::Dead,
        "no such number"
    );

    // STOP and START; an opt-out by id.
    let stop = a.set_opted_out(&p, true).await.unwrap().unwrap();
    assert!(stop.opted_out);
    assert_eq!(b.set_opted_out(&p, true).await.unwrap(), None, "no change");
    assert_ne!(
        b.subscriber_standing(confirmed.id).await.unwrap(),
        Some(true)
    );
    assert!(b.set_opted_out(&p, false).await.unwrap().is_some());
    assert_eq!(
        a.subscriber_standing(confirmed.id).await.unwrap(),
        Some(true)
    );
    assert_eq!(
        a.set_opted_out(&phone("+358400000000"), true)
            .await
            .unwrap(),
        None
    );
    assert!(a.opt_out_id(confirmed.id).await.unwrap());
    assert!(!b.opt_out_id(confirmed.id).await.unwrap(), "no change");
    assert!(!b.opt_out_id(Ulid::new()).await.unwrap());
    assert_ne!(
        a.subscriber_standing(confirmed.id).await.unwrap(),
        Some(true)
    );
    // START does not get round the double opt-in.
    let q = phone("+358401111111");
    created(
        a.sign_up(
            q.clone(),
            en.clone(),
            vec![],
            &Secret::Code("111111".into()),
            h,
            now,
        )
        .await
        .unwrap(),
    );
    assert_eq!(a.set_opted_out(&q, false).await.unwrap(), None);

    // Two nodes at once. Sign-ups of one address: one creates, the other renews.
    let (x, y) = tokio::join!(
        a.sign_up(
            email("twice@example.com"),
            en.clone(),
            vec![],
            &link,
            day,
            now
        ),
        b.sign_up(
            email("twice@example.com"),
            en.clone(),
            vec![],
            &link,
            day,
            now
        )
    );
    match (x.unwrap(), y.unwrap()) {
        (SignUp::Created(c), SignUp::Renewed(r)) | (SignUp::Renewed(r), SignUp::Created(c)) => {
            assert_eq!(c.id, r.id)
        }
        other => panic!("one creates, one renews: {other:?}"),
    }
    let twice: Vec<Subscriber> = everyone(a)
        .await
        .into_iter()
        .filter(|s| s.contact == email("twice@example.com"))
        .collect();
    assert_eq!(twice.len(), 1);
    // Wrong codes: every attempt counts (no lost update).
    let r = phone("+358402222222");
    created(
        a.sign_up(
            r.clone(),
            en.clone(),
            vec![],
            &Secret::Code("222222".into()),
            h,
            now,
        )
        .await
        .unwrap(),
    );
    let (x, y) = tokio::join!(
        a.confirm_code(&r, "000000", now),
        b.confirm_code(&r, "000001", now)
    );
    let got: BTreeSet<String> = [x.unwrap(), y.unwrap()]
        .iter()
        .map(|c| format!("{c:?}"))
        .collect();
    assert_eq!(
        got,
        [CodeCheck::Wrong(2), CodeCheck::Wrong(1)]
            .iter()
            .map(|c| format!("{c:?}"))
            .collect()
    );
    assert_eq!(
        a.confirm_code(&r, "000002", now).await.unwrap(),
        CodeCheck::Dead
    );

    // The purge: only sign-ups left unconfirmed since before the cutoff, each once even with
    // two nodes purging at once; staff-added unconfirmed subscribers stay.
    a.add_subscriber(new_sub(email("staff@example.com"), &[], false), now)
        .await
        .unwrap();
    let later = now + Duration::days(8);
    created(
        b.sign_up(
            email("new@example.com"),
            en.clone(),
            vec![],
            &link,
            day,
            later,
        )
        .await
        .unwrap(),
    );
    for i in 0..20 {
        created(
            a.sign_up(
                email(&format!("old{i}@example.com")),
                en.clone(),
                vec![],
                &link,
                day,
                now,
            )
            .await
            .unwrap(),
        );
    }
    let before = a.subscriber_count().await.unwrap();
    let cutoff = later - Duration::days(7);
    // Stale: twice@, q, r and the 20 old ones.
    let (x, y) = tokio::join!(a.purge_unconfirmed(cutoff), b.purge_unconfirmed(cutoff));
    assert_eq!(x.unwrap() + y.unwrap(), 23);
    assert_eq!(a.purge_unconfirmed(cutoff).await.unwrap(), 0, "idempotent");
    assert_eq!(b.subscriber_count().await.unwrap(), before - 23);
    let left: BTreeSet<String> = everyone(b)
        .await
        .into_iter()
        .map(|s| s.contact.to_string())
        .collect();
    assert_eq!(
        left,
        [
            "a@example.com",
            "+358401234567",
            "staff@example.com",
            "new@example.com"
        ]
        .map(String::from)
        .into()
    );
}

// ---- notices ---------------------------------------------------------------------------------

fn notice(id: Ulid, subject: &str) -> Notice {
    serde_json::from_value(json!({
        "id": id, "cron": "0 9 * * 1", "tz": "Europe/Helsinki",
        "subject": subject, "body": {"en": "Mondays at nine"},
        "channels": ["email"], "from": null, "until": null,
        "created_at": t0(), "last_fired": null
    }))
    .unwrap()
}

/// Ids made in this order, in increasing time (ids of one millisecond order at random).
fn ids(n: u64) -> Vec<Ulid> {
    (0..n)
        .map(|i| Ulid::from_parts(1_900_000_000_000 + i, u128::from(i) + 7))
        .collect()
}

pub(crate) async fn notices<S: Notices + Sync>(a: &S, b: &S) {
    let id = ids(3);
    assert!(a.notices().await.unwrap().is_empty());
    let e = a.notice(id[0]).await.unwrap_err();
    assert_eq!(e.to_string(), format!("notice {} not found", id[0]));
    let e = b.remove_notice(id[0]).await.unwrap_err();
    assert_eq!(e.to_string(), format!("notice {} not found", id[0]));

    let n2 = notice(id[2], "third");
    let n0 = notice(id[0], "first");
    let n1 = notice(id[1], "second");
    for (s, n) in [(a, &n2), (b, &n0), (a, &n1)] {
        s.put_notice(n).await.unwrap();
    }
    assert_eq!(b.notice(id[1]).await.unwrap(), n1);
    assert_eq!(
        b.notices().await.unwrap(),
        vec![n0.clone(), n1.clone(), n2.clone()],
        "oldest first"
    );
    // A put of a stored id replaces it.
    let mut fired = n1.clone();
    fired.last_fired = Some(t0() + Duration::days(7) + Duration::nanoseconds(5));
    fired.subject = "second, fired".into();
    b.put_notice(&fired).await.unwrap();
    assert_eq!(a.notice(id[1]).await.unwrap(), fired);
    assert_eq!(a.notices().await.unwrap().len(), 3);

    assert_eq!(a.remove_notice(id[1]).await.unwrap(), fired);
    assert_eq!(b.notices().await.unwrap(), vec![n0, n2]);
    let e = b.notice(id[1]).await.unwrap_err();
    assert!(matches!(e, StoreError::NotFound { what: "notice", .. }));
}

// ---- holds -----------------------------------------------------------------------------------

pub(crate) async fn holds<S: Holds + Sync>(a: &S, b: &S) {
    let id = ids(2);
    assert_eq!(a.hold(id[0]).await.unwrap(), None);
    assert!(a.holds().await.unwrap().is_empty());
    b.remove_hold(id[0]).await.unwrap();

    let h1 = Hold {
        incident_id: id[1],
        until: t0() + Duration::minutes(5),
        broadcast: vec![("sms".into(), true), ("log".into(), false)],
    };
    let h0 = Hold {
        incident_id: id[0],
        until: t0() + Duration::minutes(3),
        broadcast: vec![],
    };
    a.put_hold(&h1).await.unwrap();
    b.put_hold(&h0).await.unwrap();
    assert_eq!(b.hold(id[1]).await.unwrap(), Some(h1.clone()));
    assert_eq!(a.holds().await.unwrap(), vec![h0.clone(), h1.clone()]);
    // Extended.
    let longer = Hold {
        until: t0() + Duration::minutes(10) + Duration::nanoseconds(9),
        ..h1.clone()
    };
    b.put_hold(&longer).await.unwrap();
    assert_eq!(a.hold(id[1]).await.unwrap(), Some(longer.clone()));
    a.remove_hold(id[0]).await.unwrap();
    a.remove_hold(id[0]).await.unwrap();
    assert_eq!(b.holds().await.unwrap(), vec![longer]);
    assert_eq!(b.hold(id[0]).await.unwrap(), None);
}

// ---- standalone messages ---------------------------------------------------------------------

fn note(origin: Ulid, seq: u32, subject: &str) -> Standalone {
    Standalone::new(
        origin,
        seq,
        StandaloneKind::StaffNote {
            at: t0(),
            subject: subject.into(),
            body: Body::single(Locale::english(), "text").unwrap(),
        },
        t0(),
    )
}

pub(crate) async fn standalones<S: Standalones + RawAudience + Sync>(a: &S, b: &S) {
    let origin = Ulid::new();
    let now = t0();
    let chans = vec![("sms".to_string(), true), ("log".to_string(), false)];
    let at = now + Duration::hours(1);
    let fired = Standalone::new(
        origin,
        notice_seq(at),
        StandaloneKind::Notice {
            notice_id: origin,
            scheduled_for: at,
            subject: "Weekly".into(),
            body: Body::single(Locale::english(), "Maintenance tonight").unwrap(),
        },
        now,
    );
    assert!(fired.seq >= STANDALONE_BASE);
    assert_eq!(a.standalone(origin, fired.seq).await.unwrap(), None);
    assert!(a.standalones_of(origin).await.unwrap().is_empty());

    assert!(a.post_standalone(&fired, &chans, now).await.unwrap());
    // Posted again (a restart, another node): nothing written, even with other channels.
    let mut again = fired.clone();
    again.created_at = now + Duration::minutes(1);
    assert!(!b
        .post_standalone(&again, &[("email".into(), true)], now)
        .await
        .unwrap());
    assert_eq!(
        b.standalone(origin, fired.seq).await.unwrap(),
        Some(fired.clone())
    );
    assert_eq!(
        b.standalone(origin, 1).await.unwrap(),
        None,
        "a timeline seq"
    );
    assert_eq!(b.standalone(Ulid::new(), fired.seq).await.unwrap(), None);
    assert_eq!(
        a.broadcasts_of_origin(origin).await,
        vec![
            (fired.seq, "log".to_string(), false),
            (fired.seq, "sms".to_string(), true)
        ]
    );

    // Several messages of one origin, by seq; another origin's are not listed.
    let r1 = note(origin, reminder_seq(1), "reminder 1");
    let r2 = note(origin, reminder_seq(2), "reminder 2");
    assert!(b.post_standalone(&r2, &[], now).await.unwrap());
    assert!(a.post_standalone(&r1, &chans[..1], now).await.unwrap());
    let other = note(Ulid::new(), reminder_seq(1), "elsewhere");
    assert!(a.post_standalone(&other, &chans, now).await.unwrap());
    let mut want = vec![fired.clone(), r1.clone(), r2.clone()];
    want.sort_by_key(|m| m.seq);
    assert_eq!(b.standalones_of(origin).await.unwrap(), want);
    assert_eq!(a.broadcasts_of_origin(origin).await.len(), 3);

    // Two nodes posting one message at once: posted once, one broadcast per channel.
    let twice = note(origin, reminder_seq(9), "once");
    let results = join_all((0..6).map(|i| {
        let s = if i % 2 == 0 { a } else { b };
        s.post_standalone(&twice, &chans, now)
    }))
    .await;
    let posted = results.into_iter().filter(|r| *r.as_ref().unwrap()).count();
    assert_eq!(posted, 1, "exactly one post writes");
    let of_twice: Vec<_> = b
        .broadcasts_of_origin(origin)
        .await
        .into_iter()
        .filter(|(seq, _, _)| *seq == twice.seq)
        .collect();
    assert_eq!(of_twice.len(), 2);
    assert_eq!(b.standalones_of(origin).await.unwrap().len(), 4);
}

// ---- the backends ----------------------------------------------------------------------------

mod on_sled {
    use super::*;
    use crate::domain::ComponentStatus;
    use crate::store::port::{Components, Outbox};
    use crate::store::SledStore;

    impl RawAudience for SledStore {
        async fn add_component(&self, name: &str) {
            self.set_component(comp(name), ComponentStatus::Operational, None, t0())
                .await
                .unwrap();
        }

        async fn broadcasts_of_origin(&self, origin: Ulid) -> Vec<(u32, String, bool)> {
            let mut out: Vec<_> = self
                .broadcasts_of(origin)
                .await
                .unwrap()
                .into_iter()
                .map(|b| (b.seq, b.channel, b.subscribers))
                .collect();
            out.sort();
            out
        }
    }

    #[tokio::test]
    async fn subscribers() {
        let (_dir, s) = super::super::on_sled::store();
        super::subscribers(&s, &s.clone()).await;
    }

    #[tokio::test]
    async fn sign_ups() {
        let (_dir, s) = super::super::on_sled::store();
        super::sign_ups(&s, &s.clone()).await;
    }

    #[tokio::test]
    async fn notices() {
        let (_dir, s) = super::super::on_sled::store();
        super::notices(&s, &s.clone()).await;
    }

    #[tokio::test]
    async fn holds() {
        let (_dir, s) = super::super::on_sled::store();
        super::holds(&s, &s.clone()).await;
    }

    #[tokio::test]
    async fn standalones() {
        let (_dir, s) = super::super::on_sled::store();
        super::standalones(&s, &s.clone()).await;
    }
}

mod on_pg {
    use super::*;
    use crate::domain::{Component, ComponentStatus};
    use crate::pg::rows::{self, Write};
    use crate::pg::store::PgStore;

    impl RawAudience for PgStore {
        async fn add_component(&self, name: &str) {
            let c = self.pg().client().await.unwrap();
            let comp = Component {
                name: comp(name),
                group: None,
                status: ComponentStatus::Operational,
                updated_at: t0(),
            };
            rows::put_component(&**c, &comp, Write::Upsert)
                .await
                .unwrap();
        }

        async fn broadcasts_of_origin(&self, origin: Ulid) -> Vec<(u32, String, bool)> {
            let c = self.pg().client().await.unwrap();
            let mut out: Vec<(u32, String, bool)> = c
                .query(
                    "SELECT seq, channel, (body->>'subscribers')::boolean FROM crier_broadcasts
                     WHERE incident_id = $1",
                    &[&origin.to_string()],
                )
                .await
                .unwrap()
                .iter()
                .map(|r| {
                    let seq: i64 = r.get(0);
                    (u32::try_from(seq).unwrap(), r.get(1), r.get(2))
                })
                .collect();
            out.sort();
            out
        }
    }

    #[tokio::test]
    async fn subscribers() {
        let Some((a, b)) = super::super::on_pg::nodes("csubscribers").await else {
            return;
        };
        super::subscribers(&a, &b).await;
    }

    #[tokio::test]
    async fn sign_ups() {
        let Some((a, b)) = super::super::on_pg::nodes("csignups").await else {
            return;
        };
        super::sign_ups(&a, &b).await;
    }

    #[tokio::test]
    async fn notices() {
        let Some((a, b)) = super::super::on_pg::nodes("cnotices").await else {
            return;
        };
        super::notices(&a, &b).await;
    }

    #[tokio::test]
    async fn holds() {
        let Some((a, b)) = super::super::on_pg::nodes("cholds").await else {
            return;
        };
        super::holds(&a, &b).await;
    }

    #[tokio::test]
    async fn standalones() {
        let Some((a, b)) = super::super::on_pg::nodes("cstandalones").await else {
            return;
        };
        super::standalones(&a, &b).await;
    }
}
