//! Dispatcher tests on PostgreSQL, two nodes (two pools, two `PgStore`s) on one test database:
//! an idle node is woken through LISTEN/NOTIFY when the other queues work (its polls are an hour,
//! far past the bound waited, so only a wake-up can start the send in time), also after its
//! listening connection was killed; and the leases: progress extends one, a claim whose lease
//! ran out is not sent, an outcome on a lost lease is refused and counted. They skip without
//! CRIER_TEST_PG_URL (run them through scripts/pg.sh).

use super::*;
use crate::adapters::scripted::{Scripted, Step};
use crate::channels::{Kind, Rate};
use crate::domain::standalone::{notice_seq, Standalone};
use crate::domain::{Body, Impact, IncidentKind, Locale, NewIncident, Title};
use crate::pg::store::PgStore;
use crate::pg::testdb::TestDb;
use crate::render::preview::Platform;
use crate::store::port::{Incidents, Outbox, Standalones};
use std::path::PathBuf;

/// How long a test waits for a wake-up (a bound that only stops a hung test; the idle polls
/// are an hour).
const BOUND: Duration = Duration::from_secs(30);

fn hour_polls() -> Polls {
    Polls {
        expander: Duration::from_secs(3600),
        worker: Duration::from_secs(3600),
        reconnect: Duration::from_millis(20),
    }
}

fn channel(name: &str) -> Channel {
    Channel {
        name: name.into(),
        kind: Kind::new(&crate::adapters::webhook::KIND),
        audience: Audience::Fixed,
        rate: Rate {
            n: 1000,
            per: Duration::from_secs(1),
        },
        concurrency: 4,
        locale: Locale::english(),
        timezone: None,
        platform: Platform::Slack,
        policy_name: "thread".into(),
        sms_max_segments: 3,
        approval_required: false,
        base_url: None,
        retry: vec![Duration::from_secs(10)],
        send_timeout: Duration::from_secs(10),
        settings: crate::channels::Settings::new(crate::adapters::log::LogSettings),
        templates: None,
    }
}

fn templates() -> Arc<Templates> {
    Arc::new(
        Templates::load(
            &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("templates"),
            &[],
        )
        .unwrap(),
    )
}

/// Node A (no dispatcher: it only writes, as another crier node's API does) and node B's store.
async fn two_nodes(name: &str) -> Option<(Store, Store)> {
    let db = TestDb::create(name).await?;
    let a = PgStore::with_pg(db.pg(4), Clock::new()).await.unwrap();
    let b = PgStore::with_pg(db.pg(4), Clock::new()).await.unwrap();
    Some((Store::Pg(Box::new(a)), Store::Pg(Box::new(b))))
}

/// Node B's dispatcher, idle: its first passes are over and it listens for wake-ups.
struct Idle {
    dispatcher: Dispatcher,
    sent: Arc<Scripted>,
    stop: watch::Sender<bool>,
    running: Running,
}

async fn idle_dispatcher(store: Store) -> Idle {
    let sent = Arc::new(Scripted::new(vec![]));
    let ch = channel("hook");
    let timeout = ch.send_timeout;
    let (stop, stopped) = watch::channel(false);
    let (dispatcher, running) = Dispatcher::start_polled(
        store,
        templates(),
        Arc::new(Settings::default()),
        vec![(ch, Adapter::new(sent.clone(), timeout))],
        Clock::new(),
        hour_polls(),
        stopped,
    )
    .await
    .unwrap();
    wait_for("node B's listener listens", || {
        let ok = dispatcher.listening_pid().is_some();
        async move { ok }
    })
    .await;
    // Its first expansion pass and first claim (at start) have found nothing: from now on only
    // a wake-up (or an hour's poll) makes it look again. Letting them finish first is what lets
    // these tests fail when the wake-up is missing.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(sent.sent.lock().unwrap().is_empty());
    Idle {
        dispatcher,
        sent,
        stop,
        running,
    }
}

impl Idle {
    async fn stop(self) {
        let _ = self.stop.send(true);
        self.running.finished().await;
    }
}

/// Waits until `cond` holds, checking every 20 ms, and fails with `what` after [`BOUND`].
async fn wait_for<F, Fut>(what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + BOUND;
    loop {
        if cond().await {
            return;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("gave up after {BOUND:?} waiting until {what} (the idle polls are an hour)");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until every delivery of `origin` is delivered (there being `n`), as node A reads them.
async fn wait_delivered(a: &Store, origin: ulid::Ulid, n: usize, what: &str) -> Vec<Delivery> {
    wait_for(what, || async {
        let ds = a.deliveries_of(origin).await.unwrap();
        ds.len() == n && ds.iter().all(|d| d.state == DeliveryState::Delivered)
    })
    .await;
    a.deliveries_of(origin).await.unwrap()
}

/// A published incident broadcast on `hook`, created through `store`.
async fn publish(store: &Store, title: &str, now: DateTime<Utc>) -> ulid::Ulid {
    let (inc, _) = store
        .create_incident(
            NewIncident {
                titles: Default::default(),
                title: Title::parse(title).unwrap(),
                kind: IncidentKind::Incident,
                status: None,
                impact: Impact::Major,
                components: vec![],
                body: Body::single(Locale::english(), "Investigating").unwrap(),
                author: "t".into(),
                next_update_due: None,
                draft: false,
                broadcast: vec![("hook".into(), false)],
                scheduled_for: None,
                scheduled_until: None,
                holding_statement: false,
                remind_before: None,
            },
            now,
        )
        .await
        .unwrap();
    inc.id
}

/// A notice's firing, a standalone message broadcast on `hook`, posted through `store`.
async fn post_notice(store: &Store, subject: &str) -> ulid::Ulid {
    let origin = ulid::Ulid::new();
    let at = Utc::now();
    let msg = Standalone::new(
        origin,
        notice_seq(at),
        StandaloneKind::Notice {
            notice_id: origin,
            scheduled_for: at,
            subject: subject.into(),
            body: Body::single(Locale::english(), "Maintenance tonight").unwrap(),
        },
        at,
    );
    assert!(store
        .post_standalone(&msg, &[("hook".into(), false)], at)
        .await
        .unwrap());
    origin
}

/// Expands `incident`'s broadcasts through `store` (as that node's expander does), due at `at`.
async fn expand_all_of(store: &Store, incident: ulid::Ulid, at: DateTime<Utc>) {
    let everyone = |_: &crate::domain::Subscriber| true;
    for b in store.broadcasts_of(incident).await.unwrap() {
        let step = store
            .expand(&b, &[], &ExpandTarget { reaches: &everyone }, 1000, at)
            .await
            .unwrap();
        assert!(step.done);
    }
}

#[tokio::test]
async fn deliveries_queued_by_another_node_wake_an_idle_dispatcher() {
    let Some((a, b)) = two_nodes("wakedel").await else {
        return;
    };
    // Only the deliveries' own notification may wake B here: broadcasts notify nothing.
    if let Store::Pg(p) = &a {
        let c = p.pg().client().await.unwrap();
        c.batch_execute(
            "ALTER TABLE crier_broadcasts DISABLE TRIGGER crier_broadcasts_notify_insert",
        )
        .await
        .unwrap();
    }
    let node_b = idle_dispatcher(b).await;
    let id = publish(&a, "Queued by A", Utc::now()).await;
    expand_all_of(&a, id, Utc::now()).await;
    let ds = wait_delivered(&a, id, 1, "node B sent the delivery node A queued").await;
    assert_eq!(node_b.sent.sent.lock().unwrap().len(), 1);
    assert_eq!(ds[0].attempts, 1);
    node_b.stop().await;
}

#[tokio::test]
async fn an_update_published_on_another_node_wakes_an_idle_dispatcher() {
    let Some((a, b)) = two_nodes("wakeupd").await else {
        return;
    };
    let node_b = idle_dispatcher(b).await;
    // Nobody on A expands it: B's expander, woken by the broadcast, does.
    let id = publish(&a, "Published on A", Utc::now()).await;
    wait_delivered(&a, id, 1, "node B expanded and sent node A's update").await;
    let sent = node_b.sent.sent.lock().unwrap().clone();
    assert_eq!(sent.len(), 1);
    assert!(sent[0].1.text.contains("Investigating"), "{:?}", sent[0].1);
    node_b.stop().await;
}

#[tokio::test]
async fn a_standalone_message_posted_on_another_node_wakes_an_idle_dispatcher() {
    let Some((a, b)) = two_nodes("wakemsg").await else {
        return;
    };
    let node_b = idle_dispatcher(b).await;
    let origin = post_notice(&a, "Tonight").await;
    wait_delivered(&a, origin, 1, "node B expanded and sent node A's notice").await;
    assert_eq!(node_b.sent.sent.lock().unwrap().len(), 1);
    node_b.stop().await;
}

#[tokio::test]
async fn after_its_listening_connection_is_killed_an_idle_dispatcher_is_still_woken() {
    let Some((a, b)) = two_nodes("wakekill").await else {
        return;
    };
    let node_b = idle_dispatcher(b).await;
    let before = node_b.dispatcher.listening_pid().unwrap();
    let Store::Pg(p) = &a else { unreachable!() };
    let c = p.pg().client().await.unwrap();
    let killed: bool = c
        .query_one("SELECT pg_terminate_backend($1)", &[&before])
        .await
        .unwrap()
        .get(0);
    assert!(killed);
    wait_for("node B's listener is back on a new connection", || {
        let now = node_b.dispatcher.listening_pid();
        async move { now.is_some_and(|p| p != before) }
    })
    .await;
    // The reconnection's own wake-up has found nothing; let it pass.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let origin = post_notice(&a, "After the cut").await;
    wait_delivered(
        &a,
        origin,
        1,
        "node B, listening again, sent node A's notice",
    )
    .await;
    let id = publish(&a, "And an update", Utc::now()).await;
    wait_delivered(&a, id, 1, "node B sent node A's update").await;
    assert_eq!(node_b.sent.sent.lock().unwrap().len(), 2);
    node_b.stop().await;
}

/// A dispatcher's state without its tasks, so a test can hand `send_one` the claims it made.
fn bare_inner(store: Store, sent: Arc<Scripted>) -> (Arc<Inner>, Arc<ChannelRt>) {
    bare_inner_with(store, sent, channel("hook"))
}

fn bare_inner_with(store: Store, sent: Arc<Scripted>, ch: Channel) -> (Arc<Inner>, Arc<ChannelRt>) {
    let settings = Arc::new(Settings::default());
    let rt = Arc::new(ChannelRt {
        bucket: tokio::sync::Mutex::new(TokenBucket::new(ch.rate)),
        shared: tokio::sync::Mutex::new(Granted::default()),
        composer: Composer::new(templates(), settings.clone(), outlet(&ch, &settings)),
        adapter: Adapter::new(sent, ch.send_timeout),
        notify: Notify::new(),
        channel: ch,
    });
    let metrics = Arc::new(Metrics::default());
    if let Store::Pg(p) = &store {
        metrics.set_pg(p.pg().clone());
    }
    let inner = Arc::new(Inner {
        store,
        channels: HashMap::from([("hook".to_string(), rt.clone())]),
        expander: Notify::new(),
        clock: Clock::new(),
        metrics,
        cache: Mutex::new(HashMap::new()),
        polls: Polls::default(),
        wake: None,
    });
    (inner, rt)
}

async fn lease_row(store: &Store, key: &str) -> (String, i32, Option<DateTime<Utc>>) {
    let Store::Pg(p) = store else { unreachable!() };
    let c = p.pg().client().await.unwrap();
    let r = c
        .query_one(
            "SELECT state, attempts, lease_expires_at FROM crier_deliveries WHERE id = $1",
            &[&key],
        )
        .await
        .unwrap();
    (r.get(0), r.get(1), r.get(2))
}

#[tokio::test]
async fn a_claim_whose_lease_ran_out_before_its_send_is_not_sent() {
    let Some((a, b)) = two_nodes("leaseexp").await else {
        return;
    };
    let sent = Arc::new(Scripted::new(vec![]));
    let (inner, ch) = bare_inner(b.clone(), sent.clone());
    // Claimed ten minutes ago (a controlled clock): its five-minute lease ran out while it
    // waited.
    let then = Utc::now() - chrono::Duration::minutes(10);
    let id = publish(&a, "Waited too long", then).await;
    expand_all_of(&a, id, then).await;
    let mut old = b.claim_due("hook", then, 10).await.unwrap();
    assert_eq!(old.len(), 1);
    let old = old.remove(0);
    assert!(old.lease.until.unwrap() < Utc::now());
    let key = old.delivery.idempotency_key.clone();
    send_one(&inner, &ch, old).await;
    assert!(
        sent.sent.lock().unwrap().is_empty(),
        "a claim whose lease ran out was sent"
    );
    assert_eq!(inner.metrics.lease_figures(), (0, 0, 1));
    // Nothing recorded: the row is as the claim left it, for the next claim.
    let (state, attempts, until) = lease_row(&b, &key).await;
    assert_eq!((state.as_str(), attempts), ("pending", 1));
    assert!(until.is_some());
    // The next claim (here, another node's) takes it as attempt 2 and sends it.
    let mut next = a.claim_due("hook", Utc::now(), 10).await.unwrap();
    assert_eq!(next.len(), 1);
    let next = next.remove(0);
    assert_eq!(next.lease.attempt, 2);
    let (inner_a, ch_a) = bare_inner(a.clone(), sent.clone());
    send_one(&inner_a, &ch_a, next).await;
    assert_eq!(sent.sent.lock().unwrap().len(), 1);
    let ds = a.deliveries_of(id).await.unwrap();
    assert_eq!(ds[0].state, DeliveryState::Delivered);
    assert_eq!(inner_a.metrics.lease_figures(), (0, 0, 0));
    let mut text = String::new();
    inner.metrics.render(&mut text);
    assert!(
        text.contains("crier_lease_expired_before_send_total 1\n"),
        "{text}"
    );
}

#[tokio::test]
async fn an_outcome_on_a_lease_another_claim_took_over_is_refused_and_counted() {
    let Some((a, b)) = two_nodes("leaselost").await else {
        return;
    };
    // The send takes a while; meanwhile another claim takes the delivery over.
    let sent = Arc::new(Scripted::new(vec![Step::Slow(
        Duration::from_secs(5),
        Outcome::Delivered { receipt: None },
    )]));
    let (inner, ch) = bare_inner(b.clone(), sent.clone());
    let now = Utc::now();
    let id = publish(&a, "Taken over", now).await;
    expand_all_of(&a, id, now).await;
    let claim = b.claim_due("hook", now, 10).await.unwrap().remove(0);
    let key = claim.delivery.idempotency_key.clone();
    let task = {
        let (inner, ch) = (inner.clone(), ch.clone());
        tokio::spawn(async move { send_one(&inner, &ch, claim).await })
    };
    wait_for("the send started", || {
        let started = !sent.sent.lock().unwrap().is_empty();
        async move { started }
    })
    .await;
    assert_eq!(inner.metrics.lease_figures().0, 0, "bare: no claim loop");
    // As a claim by another node after the lease ran out: the next attempt, a later expiry.
    let Store::Pg(p) = &a else { unreachable!() };
    let c = p.pg().client().await.unwrap();
    let n = c
        .execute(
            "UPDATE crier_deliveries
                SET attempts = attempts + 1, lease_expires_at = lease_expires_at + interval '1 hour'
              WHERE id = $1",
            &[&key],
        )
        .await
        .unwrap();
    assert_eq!(n, 1);
    task.await.unwrap();
    assert_eq!(inner.metrics.lease_figures(), (0, 1, 0));
    let (state, attempts, _) = lease_row(&b, &key).await;
    assert_eq!(
        (state.as_str(), attempts),
        ("pending", 2),
        "the other claim's row was overwritten"
    );
}

#[tokio::test]
async fn progress_extends_the_lease_and_the_old_lease_reports_nothing() {
    let Some((a, b)) = two_nodes("leaseext").await else {
        return;
    };
    let then = Utc::now() - chrono::Duration::minutes(3);
    let id = publish(&a, "Long thread", then).await;
    expand_all_of(&a, id, then).await;
    let Claim {
        delivery: mut d,
        lease,
    } = b.claim_due("hook", then, 10).await.unwrap().remove(0);
    let key = d.idempotency_key.clone();
    let (_, _, before) = lease_row(&a, &key).await;
    assert_eq!(before, lease.until);
    d.parts_done = 1;
    // B's clock reads now, three minutes after the claim: the lease runs five minutes from now.
    let extended = b.record_progress(&d, lease).await.unwrap();
    let (_, attempts, after) = lease_row(&a, &key).await;
    assert_eq!(attempts, 1);
    assert_eq!(after, extended.until, "the column holds the new expiry");
    let (before, after) = (before.unwrap(), after.unwrap());
    assert!(
        after >= before + chrono::Duration::minutes(2),
        "not extended: {before} -> {after}"
    );
    assert!(after > Utc::now() + chrono::Duration::minutes(4));
    // Still this claim's: no other claim gets it past the first expiry.
    assert!(a
        .claim_due("hook", before + chrono::Duration::seconds(1), 10)
        .await
        .unwrap()
        .is_empty());
    // The old lease reports nothing any more; the extended one does.
    d.state = DeliveryState::Delivered;
    d.parts_done = 2;
    let e = a.record(&d, lease).await.unwrap_err();
    assert!(matches!(e, StoreError::Conflict(_)), "{e:?}");
    a.record(&d, extended).await.unwrap();
    assert_eq!(
        a.deliveries_of(id).await.unwrap()[0].state,
        DeliveryState::Delivered
    );
}

/// A channel's rate holds for all nodes together: with 4 an hour, two nodes taking turns send 4
/// at once, and the fifth waits a quarter of an hour although its node's own bucket still holds
/// a token (it took 3 of its 4). Node-local pacing alone would answer zero.
#[tokio::test]
async fn a_channels_rate_holds_for_all_nodes_together() {
    let Some((a, b)) = two_nodes("sharedpace").await else {
        return;
    };
    let mut ch = channel("hook");
    ch.rate = Rate::parse("4/h").unwrap();
    let (node_a, rt_a) = bare_inner_with(a, Arc::new(Scripted::new(vec![])), ch.clone());
    let (node_b, rt_b) = bare_inner_with(b, Arc::new(Scripted::new(vec![])), ch);
    assert_eq!(pace(&node_a, &rt_a).await, Duration::ZERO);
    assert_eq!(pace(&node_b, &rt_b).await, Duration::ZERO);
    assert_eq!(pace(&node_a, &rt_a).await, Duration::ZERO);
    assert_eq!(pace(&node_b, &rt_b).await, Duration::ZERO);
    let fifth = pace(&node_a, &rt_a).await;
    // One token at 4 an hour is 900 s; what refilled between the calls shortens it a little.
    assert!(
        fifth > Duration::from_secs(800) && fifth <= Duration::from_secs(900),
        "{fifth:?}"
    );
    // The other node is behind it in the queue: two tokens owed.
    let sixth = pace(&node_b, &rt_b).await;
    assert!(
        sixth > Duration::from_secs(1700) && sixth <= Duration::from_secs(1800),
        "{sixth:?}"
    );
}

/// A node takes a tenth of a second's tokens at a time from the shared bucket: at least 1, at
/// most 64 and the bucket's size.
#[test]
fn a_node_takes_a_tenth_of_a_seconds_tokens_at_a_time() {
    let k = |r: &str| grant_size(Rate::parse(r).unwrap());
    assert_eq!(k("4/h"), 1);
    assert_eq!(k("1/s"), 1);
    assert_eq!(k("30/s"), 3);
    assert_eq!(k("300/s"), 30);
    assert_eq!(k("100000/s"), 64);
    // A bucket of 5 refilled fast: never more than it holds.
    assert_eq!(k("5/1ms"), 5);
}
