//! The contract of the outbox ([`Outbox`]): broadcasts, expansion, claims with leases and
//! outcomes, run on both backends with two handles (two nodes on PostgreSQL).
//!
//! What it holds a backend to: expansion reaches exactly the subscribers the domain's rule
//! reaches, once each, however often a batch is run again and by however many nodes at once;
//! claims come in due order and no two claims (two nodes at once) get the same delivery;
//! outcomes, progress, receipts and provider statuses are kept as recorded; listings come in
//! sled's orders. Where the backends differ by design — sled has one claimer and no lease
//! expiry, PostgreSQL leases claims and refuses a report from a claim that lost its delivery —
//! the fixture says which ([`OutboxFixture::LEASED`]) and each side is asserted.
//!
//! Broadcasts and subscribers belong to other aggregates' writes (an update's publication, the
//! subscriber list); the suite seeds them through [`OutboxFixture`], as raw rows, so the outbox
//! is tested on its own.

use std::collections::HashSet;
use std::future::Future;

use chrono::Duration;
use futures_util::future::join_all;
use ulid::Ulid;

use super::t0;
use crate::domain::{
    Broadcast, Claim, ComponentName, Contact, Delivery, DeliveryState, ExpandTarget, Expanded,
    Locale, Subscriber,
};
use crate::store::port::Outbox;
use crate::store::StoreError;

/// What the suite needs besides the trait: rows other aggregates write, and which claim model
/// the backend has.
pub(crate) trait OutboxFixture {
    /// Claims are leases that run out, and a report from a claim that lost its delivery is
    /// refused (PostgreSQL); otherwise a claim holds until its outcome (sled).
    const LEASED: bool;
    fn seed_subscribers(&self, subs: Vec<Subscriber>) -> impl Future<Output = ()> + Send;
    fn seed_broadcast(&self, b: Broadcast) -> impl Future<Output = ()> + Send;
}

/// Subscriber ids in a known order (their time part).
fn sub_id(i: u64) -> Ulid {
    Ulid::from_parts(1_950_000_000_000 + i, 7)
}

fn subscriber(i: u64, contact: Contact) -> Subscriber {
    Subscriber {
        id: sub_id(i),
        contact,
        locale: Locale::english(),
        components: vec![],
        confirmed: true,
        unsubscribe_token: format!("token-{i}"),
        created_at: t0(),
        opted_out: false,
        pending: None,
    }
}

fn phone(i: u64) -> Subscriber {
    subscriber(i, Contact::phone(&format!("+35840{i:07}")).unwrap())
}

fn broadcast(incident: Ulid, seq: u32, channel: &str, subscribers: bool) -> Broadcast {
    Broadcast {
        incident_id: incident,
        seq,
        update_id: Ulid::from_parts(1_960_000_000_000 + u64::from(seq), 9),
        channel: channel.into(),
        subscribers,
        cursor: None,
        done: false,
        created_at: t0(),
    }
}

/// The channel rule of the suite: phone numbers only.
fn phones_only(s: &Subscriber) -> bool {
    matches!(s.contact, Contact::Phone(_))
}

/// Expands `b` to the end in batches of `batch`, reloading it between batches as the
/// dispatcher does; returns the deliveries created.
async fn expand_to_end<S: Outbox + Sync>(
    s: &S,
    b: &Broadcast,
    components: &[ComponentName],
    batch: usize,
) -> usize {
    let target = ExpandTarget {
        reaches: &phones_only,
    };
    let mut b = b.clone();
    let mut created = 0;
    for _ in 0..1000 {
        let step = s
            .expand(&b, components, &target, batch, t0())
            .await
            .unwrap();
        created += step.created;
        if step.done {
            return created;
        }
        b = s
            .broadcast(b.incident_id, b.seq, &b.channel)
            .await
            .unwrap()
            .unwrap();
    }
    panic!("the expansion of {b:?} does not end");
}

fn keys(ds: &[Delivery]) -> HashSet<String> {
    ds.iter().map(|d| d.idempotency_key.clone()).collect()
}

fn in_order(ds: &[Delivery]) -> bool {
    ds.windows(2)
        .all(|w| (w[0].seq, w[0].id) < (w[1].seq, w[1].id))
}

// ---- expansion -------------------------------------------------------------------------------

pub(crate) async fn expansion<S: Outbox + OutboxFixture + Sync>(a: &S, b: &S) {
    // Five not reached (unconfirmed, opted out, two emails on a phone channel, a phone that
    // follows another component), then thirty reached, in id order.
    let mut subs = Vec::new();
    let mut unconfirmed = phone(0);
    unconfirmed.confirmed = false;
    subs.push(unconfirmed);
    let mut stopped = phone(1);
    stopped.opted_out = true;
    subs.push(stopped);
    subs.push(subscriber(2, Contact::email("two@example.com").unwrap()));
    let mut other = phone(3);
    other.components = vec![ComponentName::parse("db").unwrap()];
    subs.push(other);
    subs.push(subscriber(4, Contact::email("four@example.com").unwrap()));
    subs.extend((5..35).map(phone));
    a.seed_subscribers(subs).await;
    let components = vec![ComponentName::parse("api").unwrap()];

    let inc = Ulid::from_parts(1_970_000_000_000, 1);
    let sms = broadcast(inc, 1, "sms", true);
    let hook = broadcast(inc, 1, "webhook", false);
    let mut finished = broadcast(inc, 2, "sms", true);
    finished.done = true;
    for x in [&sms, &hook, &finished] {
        b.seed_broadcast(x.clone()).await;
    }
    assert_eq!(
        a.open_broadcasts().await.unwrap(),
        [sms.clone(), hook.clone()]
    );
    assert_eq!(
        b.broadcast(inc, 1, "sms").await.unwrap().as_ref(),
        Some(&sms)
    );
    assert_eq!(b.broadcast(inc, 9, "sms").await.unwrap(), None);
    let all = vec![sms.clone(), hook.clone(), finished.clone()];
    assert_eq!(a.broadcasts_of(inc).await.unwrap(), all);
    assert_eq!(a.broadcasts_of_all().await.unwrap(), all);
    assert!(b.broadcasts_of(Ulid::new()).await.unwrap().is_empty());
    assert_eq!(a.published_update(inc, 1).await.unwrap(), None, "no update");

    // A batch of ten reads ten subscribers, five of them reached, and moves the cursor.
    let target = ExpandTarget {
        reaches: &phones_only,
    };
    let step = a
        .expand(&sms, &components, &target, 10, t0())
        .await
        .unwrap();
    assert_eq!(
        step,
        Expanded {
            created: 5,
            done: false
        }
    );
    let stored = b.broadcast(inc, 1, "sms").await.unwrap().unwrap();
    assert_eq!(stored.cursor, Some(sub_id(9).to_bytes().to_vec()));
    assert!(!stored.done);
    // The broadcast as first read, expanded again by the other node (a crash, or a node that
    // read it before the first batch): nobody is given a second delivery.
    let again = b
        .expand(&sms, &components, &target, 10, t0())
        .await
        .unwrap();
    let stored = a.broadcast(inc, 1, "sms").await.unwrap().unwrap();
    let rest = expand_to_end(b, &stored, &components, 7).await;
    assert_eq!(5 + again.created + rest, 30, "each reached subscriber once");
    let ds = a.deliveries_of(inc).await.unwrap();
    assert_eq!(ds.len(), 30);
    assert_eq!(keys(&ds).len(), 30);
    assert!(in_order(&ds), "(seq, id) order");
    let reached: HashSet<Ulid> = (5..35).map(sub_id).collect();
    for d in &ds {
        let crate::domain::Target::Subscriber { id, .. } = &d.target else {
            panic!("{d:?}");
        };
        assert!(reached.contains(id), "{d:?}");
        assert_eq!(d.state, DeliveryState::Pending);
        assert_eq!((d.attempts, d.parts_done, d.seq), (0, 0, 1));
        assert_eq!((d.next_at, d.created_at), (t0(), t0()));
        assert_eq!(d.channel, "sms");
        assert_eq!(d.update_id, sms.update_id);
    }
    // Done: a stale copy does not reopen it, and creates nothing.
    let step = a
        .expand(&sms, &components, &target, 100, t0())
        .await
        .unwrap();
    assert_eq!(
        step,
        Expanded {
            created: 0,
            done: true
        }
    );
    assert!(a.broadcast(inc, 1, "sms").await.unwrap().unwrap().done);
    assert_eq!(
        b.open_broadcasts().await.unwrap(),
        std::slice::from_ref(&hook)
    );

    // An endpoint broadcast is one delivery, once.
    for want in [1, 0] {
        let step = b.expand(&hook, &[], &target, 10, t0()).await.unwrap();
        assert_eq!(
            step,
            Expanded {
                created: want,
                done: true
            }
        );
    }
    assert!(a.open_broadcasts().await.unwrap().is_empty());
    let ds = a.deliveries_of(inc).await.unwrap();
    assert_eq!(ds.len(), 31);
    let endpoint: Vec<&Delivery> = ds
        .iter()
        .filter(|d| d.target == crate::domain::Target::Endpoint)
        .collect();
    assert_eq!(endpoint.len(), 1);
    assert_eq!(endpoint[0].channel, "webhook");

    // Two nodes expanding one broadcast at once (two workers each): thirty deliveries, each
    // created by exactly one of them.
    let wide = broadcast(inc, 3, "sms", true);
    a.seed_broadcast(wide.clone()).await;
    let created = join_all((0..4).map(|i| {
        let s = if i % 2 == 0 { a } else { b };
        expand_to_end(s, &wide, &components, 4)
    }))
    .await;
    assert_eq!(created.iter().sum::<usize>(), 30, "{created:?}");

    // Pages: (seq, id) order, a short last page, nothing past the end.
    let all = b.deliveries_of(inc).await.unwrap();
    assert_eq!(all.len(), 61);
    assert!(in_order(&all));
    let mut paged = Vec::new();
    let mut after = None;
    loop {
        let page = a.deliveries_page(inc, after, 7).await.unwrap();
        assert!(page.len() <= 7);
        let last = page.len() < 7;
        after = page.last().map(crate::domain::DeliveryCursor::after);
        paged.extend(page);
        if last {
            break;
        }
    }
    assert_eq!(paged, all);
    assert!(a.deliveries_page(inc, after, 7).await.unwrap().is_empty());
    assert!(a.deliveries_of(Ulid::new()).await.unwrap().is_empty());
}

// ---- claims and outcomes ---------------------------------------------------------------------

fn secs(n: i64) -> chrono::DateTime<chrono::Utc> {
    t0() + Duration::seconds(n)
}

fn stored<'a>(ds: &'a [Delivery], d: &Delivery) -> &'a Delivery {
    ds.iter().find(|x| x.id == d.id).unwrap()
}

pub(crate) async fn claims<S: Outbox + OutboxFixture + Sync>(a: &S, b: &S) {
    a.seed_subscribers((0..12).map(phone).collect()).await;
    let inc = Ulid::from_parts(1_970_000_000_000, 2);
    let sms = broadcast(inc, 1, "sms", true);
    a.seed_broadcast(sms.clone()).await;
    assert_eq!(expand_to_end(b, &sms, &[], 5).await, 12);
    let listed = a.deliveries_of(inc).await.unwrap();

    assert_eq!(a.queue_depth().await.unwrap(), (12, Some(t0())));
    assert_eq!(b.next_due("sms").await.unwrap(), Some(t0()));
    assert_eq!(b.next_due("email").await.unwrap(), None);
    assert!(a.claim_due("sms", secs(-1), 10).await.unwrap().is_empty());
    assert!(a.claim_due("email", t0(), 10).await.unwrap().is_empty());
    assert!(a.claim_due("sms", t0(), 0).await.unwrap().is_empty());

    // Due order (all due at once: key order), in flight, the attempt counted.
    let first = a.claim_due("sms", t0(), 3).await.unwrap();
    assert_eq!(first.len(), 3);
    let ids: Vec<Ulid> = first.iter().map(|c| c.delivery.id).collect();
    let want: Vec<Ulid> = listed[..3].iter().map(|d| d.id).collect();
    assert_eq!(ids, want);
    for c in &first {
        assert_eq!(c.delivery.state, DeliveryState::InFlight);
        assert_eq!((c.delivery.attempts, c.lease.attempt), (1, 1));
        assert_eq!(c.delivery.updated_at, t0());
        assert_eq!(c.lease.until.is_some(), S::LEASED);
    }
    // Listed in flight, not queued.
    let now = b.deliveries_of(inc).await.unwrap();
    for d in &now {
        let claimed = ids.contains(&d.id);
        let want = if claimed {
            DeliveryState::InFlight
        } else {
            DeliveryState::Pending
        };
        assert_eq!(d.state, want, "{d:?}");
    }
    assert_eq!(a.queue_depth().await.unwrap(), (9, Some(t0())));
    let rest = b.claim_due("sms", t0(), 100).await.unwrap();
    assert_eq!(rest.len(), 9);
    assert!(rest.iter().all(|c| !ids.contains(&c.delivery.id)));
    // All claimed: nothing is due until a lease runs out (never, where claims have none).
    let first_expiry = first
        .iter()
        .chain(&rest)
        .filter_map(|c| c.lease.until)
        .min();
    assert_eq!(
        a.next_due("sms").await.unwrap(),
        first_expiry,
        "all claimed: due again when the first lease runs out"
    );
    assert_eq!(a.queue_depth().await.unwrap(), (0, None));
    assert!(a.claim_due("sms", secs(1), 100).await.unwrap().is_empty());

    // Outcomes: delivered, retried later, dead; reported through either node.
    let [c0, c1, c2] = <[Claim; 3]>::try_from(first).unwrap();
    let mut sent = c0.delivery.clone();
    sent.state = DeliveryState::Delivered;
    sent.receipt = Some("r-0".into());
    sent.updated_at = secs(1);
    a.record(&sent, c0.lease).await.unwrap();
    let mut retry = c1.delivery.clone();
    retry.state = DeliveryState::Pending;
    retry.next_at = secs(30);
    retry.last_error = Some("429 too many requests".into());
    b.record(&retry, c1.lease).await.unwrap();
    let mut dead = c2.delivery.clone();
    dead.state = DeliveryState::Dead;
    dead.last_error = Some("gave up".into());
    a.record(&dead, c2.lease).await.unwrap();
    let now = b.deliveries_of(inc).await.unwrap();
    assert_eq!(stored(&now, &sent), &sent);
    assert_eq!(stored(&now, &retry), &retry);
    assert_eq!(stored(&now, &dead), &dead);
    assert_eq!(a.queue_depth().await.unwrap(), (1, Some(secs(30))));
    assert_eq!(b.next_due("sms").await.unwrap(), Some(secs(30)));
    assert!(a.claim_due("sms", secs(29), 10).await.unwrap().is_empty());

    // A report handed back twice: a leased backend refuses it and changes nothing; the same
    // report made again (the answer to the first lost on its way back) is taken as done.
    if S::LEASED {
        b.record(&sent, c0.lease).await.unwrap();
        assert_eq!(stored(&a.deliveries_of(inc).await.unwrap(), &sent), &sent);
        let mut late = sent.clone();
        late.state = DeliveryState::Dead;
        let e = b.record(&late, c0.lease).await.unwrap_err();
        assert!(matches!(e, StoreError::Conflict(_)), "{e:?}");
        let e = b.record_progress(&late, c0.lease).await.unwrap_err();
        assert!(matches!(e, StoreError::Conflict(_)), "{e:?}");
        assert_eq!(stored(&a.deliveries_of(inc).await.unwrap(), &sent), &sent);
    }

    // The retry, due at its time, as attempt 2; a threaded message's progress keeps the claim.
    let again = b.claim_due("sms", secs(30), 10).await.unwrap();
    assert_eq!(again.len(), 1);
    let Claim {
        delivery: mut threaded,
        lease,
    } = again.into_iter().next().unwrap();
    assert_eq!(threaded.id, retry.id);
    assert_eq!((threaded.attempts, lease.attempt), (2, 2));
    threaded.parts_done = 1;
    let held = a.record_progress(&threaded, lease).await.unwrap();
    // A leased backend extends the lease (never shortens it) and fences with the new one; the
    // other hands the lease back as it was.
    assert_eq!(held.attempt, lease.attempt);
    if S::LEASED {
        assert!(held.until >= lease.until, "{held:?} < {lease:?}");
    } else {
        assert_eq!(held, lease);
    }
    assert!(b.claim_due("sms", secs(31), 10).await.unwrap().is_empty());
    let shown = stored(&a.deliveries_of(inc).await.unwrap(), &threaded).clone();
    assert_eq!(shown.parts_done, 1);
    assert_eq!(shown.state, DeliveryState::InFlight);
    threaded.state = DeliveryState::Delivered;
    threaded.parts_done = 2;
    b.record(&threaded, held).await.unwrap();
    assert_eq!(
        stored(&a.deliveries_of(inc).await.unwrap(), &threaded),
        &threaded
    );

    // Dead ones back in the queue, attempts reset; once.
    assert_eq!(b.requeue_dead(inc, secs(40)).await.unwrap(), ["sms"]);
    assert!(a.requeue_dead(inc, secs(40)).await.unwrap().is_empty());
    let back = stored(&a.deliveries_of(inc).await.unwrap(), &dead).clone();
    assert_eq!(back.state, DeliveryState::Pending);
    assert_eq!((back.attempts, back.next_at), (0, secs(40)));
    assert_eq!(a.queue_depth().await.unwrap(), (1, Some(secs(40))));
    let requeued = a.claim_due("sms", secs(40), 10).await.unwrap();
    assert_eq!(requeued.len(), 1);
    assert_eq!(requeued[0].delivery.id, dead.id);
    assert_eq!(requeued[0].lease.attempt, 1, "attempts start over");
    let mut dead_again = requeued[0].delivery.clone();
    dead_again.state = DeliveryState::Delivered;
    a.record(&dead_again, requeued[0].lease).await.unwrap();
    if S::LEASED {
        // The claim before the requeue had attempt 1 too: it is still refused.
        let e = b.record(&dead, c2.lease).await.unwrap_err();
        assert!(matches!(e, StoreError::Conflict(_)), "{e:?}");
    }

    // Receipts and the provider's later reports.
    a.index_receipt("r-0", &sent).await.unwrap();
    let first_rank = |prev: Option<&str>| prev.is_none();
    let d = b
        .record_provider_status("r-0", "sent", None, secs(50), first_rank)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(d.id, sent.id);
    assert_eq!(d.provider_status.as_deref(), Some("sent"));
    assert_eq!(d.updated_at, secs(50));
    // Not superseding: nothing written, the delivery as stored.
    let d = a
        .record_provider_status("r-0", "queued", Some(1), secs(51), first_rank)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (d.provider_status.as_deref(), d.provider_error),
        (Some("sent"), None)
    );
    assert_eq!(d.updated_at, secs(50));
    let d = a
        .record_provider_status("r-0", "undelivered", Some(30003), secs(52), |p| {
            p != Some("undelivered")
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (d.provider_status.as_deref(), d.provider_error),
        (Some("undelivered"), Some(30003))
    );
    assert_eq!(stored(&b.deliveries_of(inc).await.unwrap(), &sent), &d);
    assert_eq!(
        a.record_provider_status("r-x", "sent", None, secs(53), |_| true)
            .await
            .unwrap(),
        None
    );
    // A receipt indexed again names the later delivery.
    b.index_receipt("r-0", &threaded).await.unwrap();
    let d = a
        .record_provider_status("r-0", "delivered", None, secs(54), |_| true)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(d.id, threaded.id);

    assert_eq!(a.recover_in_flight(secs(60)).await.unwrap(), 0);
}

// ---- two nodes claiming at once --------------------------------------------------------------

pub(crate) async fn claims_at_once<S: Outbox + OutboxFixture + Sync>(a: &S, b: &S) {
    const N: u64 = 150;
    a.seed_subscribers((0..N).map(phone).collect()).await;
    let inc = Ulid::from_parts(1_970_000_000_000, 3);
    let sms = broadcast(inc, 1, "sms", true);
    a.seed_broadcast(sms.clone()).await;
    assert_eq!(expand_to_end(a, &sms, &[], 1000).await, 150);

    // Four workers, two per node, claiming a few at a time and recording each outcome.
    let workers = join_all((0..4).map(|w| async move {
        let s = if w % 2 == 0 { a } else { b };
        let mut mine = Vec::new();
        loop {
            let got = s.claim_due("sms", t0(), 4).await.unwrap();
            if got.is_empty() {
                return mine;
            }
            for Claim {
                delivery: mut d,
                lease,
            } in got
            {
                mine.push(d.id);
                d.state = DeliveryState::Delivered;
                s.record(&d, lease).await.unwrap();
            }
        }
    }))
    .await;
    let mut seen = HashSet::new();
    for id in workers.iter().flatten() {
        assert!(seen.insert(*id), "{id} claimed twice");
    }
    assert_eq!(seen.len(), 150, "every delivery claimed");
    let ds = a.deliveries_of(inc).await.unwrap();
    assert!(ds
        .iter()
        .all(|d| d.state == DeliveryState::Delivered && d.attempts == 1));
    assert_eq!(b.queue_depth().await.unwrap(), (0, None));
}

// ---- leases ----------------------------------------------------------------------------------

pub(crate) async fn leases<S: Outbox + OutboxFixture + Sync>(a: &S, b: &S) {
    a.seed_subscribers((0..3).map(phone).collect()).await;
    let inc = Ulid::from_parts(1_970_000_000_000, 4);
    let sms = broadcast(inc, 1, "sms", true);
    a.seed_broadcast(sms.clone()).await;
    expand_to_end(a, &sms, &[], 10).await;
    let held = a.claim_due("sms", t0(), 10).await.unwrap();
    assert_eq!(held.len(), 3);
    // While the claim holds, the other node gets nothing.
    assert!(b
        .claim_due("sms", t0() + Duration::seconds(60), 10)
        .await
        .unwrap()
        .is_empty());
    if !S::LEASED {
        // One claimer: a claim holds until its outcome.
        assert!(b
            .claim_due("sms", t0() + Duration::days(1), 10)
            .await
            .unwrap()
            .is_empty());
        for Claim {
            delivery: mut d,
            lease,
        } in held
        {
            d.state = DeliveryState::Delivered;
            b.record(&d, lease).await.unwrap();
        }
        return;
    }
    // A node that stopped: its claims return when the lease runs out, as the next attempt.
    let until = held[0].lease.until.unwrap();
    assert!(until > t0());
    assert!(b
        .claim_due("sms", until - Duration::seconds(1), 10)
        .await
        .unwrap()
        .is_empty());
    let taken = b.claim_due("sms", until, 10).await.unwrap();
    assert_eq!(taken.len(), 3);
    assert!(taken.iter().all(|c| c.lease.attempt == 2));
    // The first node comes back and reports: refused, nothing changes.
    let before = a.deliveries_of(inc).await.unwrap();
    for c in &held {
        let mut d = c.delivery.clone();
        d.state = DeliveryState::Delivered;
        let e = a.record(&d, c.lease).await.unwrap_err();
        assert!(matches!(e, StoreError::Conflict(_)), "{e:?}");
        d.parts_done = 1;
        let e = a.record_progress(&d, c.lease).await.unwrap_err();
        assert!(matches!(e, StoreError::Conflict(_)), "{e:?}");
    }
    assert_eq!(a.deliveries_of(inc).await.unwrap(), before);
    assert!(before.iter().all(|d| d.state == DeliveryState::InFlight));
    // The claim that holds them counts; a lease that ran out while nobody took the delivery
    // over still does (the send happened).
    for (i, c) in taken.iter().enumerate() {
        let mut d = c.delivery.clone();
        d.state = if i == 0 {
            DeliveryState::Dead
        } else {
            DeliveryState::Delivered
        };
        a.record(&d, c.lease).await.unwrap();
        // The same report again (its first answer lost on the way back) is done; any other
        // report under the ended claim is refused, and nothing changes.
        b.record(&d, c.lease).await.unwrap();
        let mut other = d.clone();
        other.last_error = Some("a second report".into());
        let e = b.record(&other, c.lease).await.unwrap_err();
        assert!(matches!(e, StoreError::Conflict(_)), "{e:?}");
        assert_eq!(stored(&b.deliveries_of(inc).await.unwrap(), &d), &d);
    }
    // The fence is the attempt and the lease: requeued, the dead one starts its attempts over,
    // and the first node's old claim (attempt 1 too) still does not hold it.
    let later = until + Duration::minutes(1);
    assert_eq!(b.requeue_dead(inc, later).await.unwrap(), ["sms"]);
    let requeued = b.claim_due("sms", later, 10).await.unwrap();
    assert_eq!(requeued.len(), 1);
    assert_eq!(requeued[0].lease.attempt, held[0].lease.attempt);
    let old = held
        .iter()
        .find(|c| c.delivery.id == requeued[0].delivery.id)
        .unwrap();
    let mut d = old.delivery.clone();
    d.state = DeliveryState::Delivered;
    let e = a.record(&d, old.lease).await.unwrap_err();
    assert!(matches!(e, StoreError::Conflict(_)), "{e:?}");
    let mut d = requeued[0].delivery.clone();
    d.state = DeliveryState::Delivered;
    b.record(&d, requeued[0].lease).await.unwrap();
    let after = b.deliveries_of(inc).await.unwrap();
    assert!(after.iter().all(|d| d.state == DeliveryState::Delivered));
    assert_eq!(
        after.iter().map(|d| d.attempts).sum::<u32>(),
        5,
        "two taken over (2 each), one requeued (1)"
    );
}

// ---- the backends ----------------------------------------------------------------------------

mod on_sled {
    use super::*;
    use crate::store::outbox::broadcast_key;
    use crate::store::{encode, SledStore};

    impl OutboxFixture for SledStore {
        const LEASED: bool = false;

        async fn seed_subscribers(&self, subs: Vec<Subscriber>) {
            let t = self.t().unwrap();
            for s in subs {
                t.subscribers
                    .insert(s.id.to_bytes(), encode(&s).unwrap())
                    .unwrap();
            }
        }

        async fn seed_broadcast(&self, b: Broadcast) {
            let t = self.t().unwrap();
            t.broadcasts
                .insert(
                    broadcast_key(b.incident_id, b.seq, &b.channel),
                    encode(&b).unwrap(),
                )
                .unwrap();
        }
    }

    #[tokio::test]
    async fn expansion() {
        let (_dir, s) = super::super::on_sled::store();
        super::expansion(&s, &s.clone()).await;
    }

    #[tokio::test]
    async fn claims() {
        let (_dir, s) = super::super::on_sled::store();
        super::claims(&s, &s.clone()).await;
    }

    #[tokio::test]
    async fn claims_at_once() {
        let (_dir, s) = super::super::on_sled::store();
        super::claims_at_once(&s, &s.clone()).await;
    }

    #[tokio::test]
    async fn leases() {
        let (_dir, s) = super::super::on_sled::store();
        super::leases(&s, &s.clone()).await;
    }
}

mod on_pg {
    use super::*;
    use crate::pg::rows;
    use crate::pg::store::PgStore;

    impl OutboxFixture for PgStore {
        const LEASED: bool = true;

        async fn seed_subscribers(&self, subs: Vec<Subscriber>) {
            let c = self.pg().client().await.unwrap();
            for s in subs {
                rows::put_subscriber(&**c, &s, rows::Write::Insert)
                    .await
                    .unwrap();
            }
        }

        async fn seed_broadcast(&self, b: Broadcast) {
            let c = self.pg().client().await.unwrap();
            rows::put_broadcast(&**c, &b, rows::Write::Insert)
                .await
                .unwrap();
        }
    }

    #[tokio::test]
    async fn expansion() {
        let Some((a, b)) = super::super::on_pg::nodes("coutexpand").await else {
            return;
        };
        super::expansion(&a, &b).await;
    }

    #[tokio::test]
    async fn claims() {
        let Some((a, b)) = super::super::on_pg::nodes("coutclaims").await else {
            return;
        };
        super::claims(&a, &b).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn claims_at_once() {
        let Some((a, b)) = super::super::on_pg::nodes("coutonce").await else {
            return;
        };
        super::claims_at_once(&a, &b).await;
    }

    #[tokio::test]
    async fn leases() {
        let Some((a, b)) = super::super::on_pg::nodes("coutleases").await else {
            return;
        };
        super::leases(&a, &b).await;
    }
}
