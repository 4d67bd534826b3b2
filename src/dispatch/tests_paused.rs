//! Dispatcher tests in paused time with a scripted adapter: the backoff schedule, Retry-After,
//! hangs cut by the send timeout, permanent rejections, dead letters and requeue, and the rate
//! limit — all without sleeping for real.

use super::*;
use crate::adapters::scripted::{Scripted, Step};
use crate::channels::{Kind, Rate};
use crate::domain::NewIncident;
use crate::domain::{Body, Impact, IncidentKind, Locale, Title};
use crate::render::preview::Platform;
use crate::store::port::{Outbox, Threads};
use std::path::PathBuf;
use tokio::time::Instant;

fn channel(name: &str, retry: &[u64], rate: Rate) -> Channel {
    Channel {
        name: name.into(),
        kind: Kind::new(&crate::adapters::webhook::KIND),
        audience: Audience::Fixed,
        rate,
        concurrency: 4,
        locale: Locale::english(),
        timezone: None,
        platform: Platform::Slack,
        policy_name: "thread".into(),
        sms_max_segments: 3,
        approval_required: false,
        base_url: None,
        retry: retry.iter().map(|s| Duration::from_secs(*s)).collect(),
        send_timeout: Duration::from_secs(5),
        settings: crate::channels::Settings::new(crate::adapters::log::LogSettings),
        templates: None,
    }
}

struct Harness {
    store: Store,
    dispatcher: Dispatcher,
    stop: watch::Sender<bool>,
    running: Option<Running>,
    _dir: tempfile::TempDir,
}

async fn harness(channels: Vec<(Channel, Arc<Scripted>)>) -> Harness {
    harness_with(channels, Settings::default()).await
}

async fn harness_with(channels: Vec<(Channel, Arc<Scripted>)>, settings: Settings) -> Harness {
    let overrides: Vec<(String, PathBuf)> = channels
        .iter()
        .filter_map(|(c, _)| Some((c.name.clone(), c.templates.clone()?)))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("db")).unwrap();
    let templates = Arc::new(
        Templates::load(
            &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("templates"),
            &overrides,
        )
        .unwrap(),
    );
    let (stop, stopped) = watch::channel(false);
    let with = channels
        .into_iter()
        .map(|(c, s)| {
            let timeout = c.send_timeout;
            (c, Adapter::new(s, timeout))
        })
        .collect();
    let (dispatcher, running) =
        Dispatcher::start_with(store.clone(), templates, Arc::new(settings), with, stopped)
            .await
            .unwrap();
    Harness {
        store,
        dispatcher,
        stop,
        running: Some(running),
        _dir: dir,
    }
}

impl Harness {
    async fn publish(&self, n: usize) -> Vec<ulid::Ulid> {
        let mut ids = Vec::new();
        for i in 0..n {
            ids.push(self.create(&format!("Outage {i}"), "Investigating").await);
        }
        self.dispatcher.kick();
        ids
    }

    /// Publishes one incident whose first update says `text`.
    async fn publish_text(&self, text: &str) -> ulid::Ulid {
        let id = self.create("Check-in down", text).await;
        self.dispatcher.kick();
        id
    }

    /// Creates a published incident (broadcast on every channel) without waking the expander.
    async fn create(&self, title: &str, text: &str) -> ulid::Ulid {
        let (inc, _) = self
            .store
            .create_incident(
                NewIncident {
                    titles: Default::default(),
                    title: Title::parse(title).unwrap(),
                    kind: IncidentKind::Incident,
                    status: None,
                    impact: Impact::Major,
                    components: vec![],
                    body: Body::single(Locale::english(), text).unwrap(),
                    author: "t".into(),
                    next_update_due: None,
                    draft: false,
                    broadcast: self.dispatcher.broadcast_targets(),
                    scheduled_for: None,
                    scheduled_until: None,
                    holding_statement: false,
                    remind_before: None,
                },
                self.dispatcher.inner.clock.now(),
            )
            .await
            .unwrap();
        inc.id
    }

    /// Waits (in paused time) until every delivery of `incident` is final.
    async fn settle(&self, incident: ulid::Ulid) -> Vec<Delivery> {
        for _ in 0..100_000 {
            let ds = self.store.deliveries_of(incident).await.unwrap();
            if !ds.is_empty() && ds.iter().all(|d| d.state.is_final()) {
                return ds;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("deliveries did not settle");
    }

    async fn stop(mut self) {
        let _ = self.stop.send(true);
        if let Some(r) = self.running.take() {
            r.finished().await;
        }
    }
}

fn fast() -> Rate {
    Rate {
        n: 1000,
        per: Duration::from_secs(1),
    }
}

fn retry(reason: &str, after: Option<u64>) -> Step {
    Step::Answer(Outcome::Retry {
        reason: reason.into(),
        after: after.map(Duration::from_secs),
    })
}

fn gaps(s: &Scripted) -> Vec<Duration> {
    let sent = s.sent.lock().unwrap().clone();
    sent.windows(2).map(|w| w[1].0 - w[0].0).collect()
}

#[tokio::test(start_paused = true)]
async fn backoff_schedule_and_retry_after_are_followed() {
    let s = Arc::new(Scripted::new(vec![
        retry("503 Service Unavailable", None),
        retry("429 Too Many Requests", Some(120)),
        retry("503 again", None),
    ]));
    let h = harness(vec![(channel("hook", &[10, 60, 300], fast()), s.clone())]).await;
    let id = h.publish(1).await[0];
    let ds = h.settle(id).await;
    assert_eq!(ds[0].state, DeliveryState::Delivered);
    assert_eq!(ds[0].attempts, 4);
    let g = gaps(&s);
    assert_eq!(g.len(), 3, "{g:?}");
    let within = |d: Duration, lo: u64, hi: u64| {
        d >= Duration::from_secs(lo) && d <= Duration::from_secs(hi) + Duration::from_millis(200)
    };
    assert!(within(g[0], 8, 12), "first retry after 10 s ±20 %: {g:?}");
    assert!(
        within(g[1], 120, 121),
        "Retry-After 120 s beats the 60 s step: {g:?}"
    );
    assert!(within(g[2], 240, 360), "third step 300 s ±20 %: {g:?}");
    // Every attempt carried the same idempotency key.
    let sent = s.sent.lock().unwrap().clone();
    assert!(sent
        .iter()
        .all(|(_, m)| m.idempotency_key == ds[0].idempotency_key));
    h.stop().await;
}

/// A retry whose delivery was the channel's only one (it was in flight, so nothing else was
/// due and the worker went to sleep) leaves on its schedule: recording the retry wakes the
/// worker, which used to sleep its idle 60 s first.
#[tokio::test(start_paused = true)]
async fn a_retry_with_nothing_else_due_leaves_on_time() {
    // The provider takes a second to answer, so the worker has gone idle by then.
    let s = Arc::new(Scripted::new(vec![Step::Slow(
        Duration::from_secs(1),
        Outcome::Retry {
            reason: "429 Too Many Requests".into(),
            after: Some(Duration::from_secs(2)),
        },
    )]));
    // A 1 s step (±20 %) loses to the 2 s Retry-After: the retry is due exactly 2 s later.
    let h = harness(vec![(channel("hook", &[1], fast()), s.clone())]).await;
    let id = h.publish(1).await[0];
    let ds = h.settle(id).await;
    assert_eq!(ds[0].state, DeliveryState::Delivered);
    let g = gaps(&s);
    assert_eq!(g.len(), 1, "{g:?}");
    assert!(
        g[0] >= Duration::from_secs(3) && g[0] < Duration::from_millis(3500),
        "sent at 0 s, answered at 1 s, re-sent 2 s later on the paused clock, not after the idle wait: {g:?}"
    );
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn permanent_rejections_are_not_retried() {
    let s = Arc::new(Scripted::new(vec![Step::Answer(Outcome::Rejected {
        reason: "Twilio error 21211: invalid 'To'".into(),
    })]));
    let h = harness(vec![(channel("hook", &[10, 60], fast()), s.clone())]).await;
    let id = h.publish(1).await[0];
    let ds = h.settle(id).await;
    assert_eq!(ds[0].state, DeliveryState::Rejected);
    assert_eq!(ds[0].attempts, 1);
    assert!(ds[0].last_error.as_deref().unwrap().contains("21211"));
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert_eq!(s.sent.lock().unwrap().len(), 1, "never retried");
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn hangs_time_out_and_exhausted_retries_die_then_requeue() {
    let s = Arc::new(Scripted::new(vec![
        Step::Hang,
        retry("503", None),
        retry("503", None),
    ]));
    let h = harness(vec![(channel("hook", &[10, 20], fast()), s.clone())]).await;
    let id = h.publish(1).await[0];
    let ds = h.settle(id).await;
    assert_eq!(ds[0].state, DeliveryState::Dead, "{:?}", ds[0]);
    assert_eq!(ds[0].attempts, 3);
    let g = gaps(&s);
    assert!(
        g[0] >= Duration::from_secs(5 + 8),
        "the hang lasted the 5 s send timeout, then ~10 s: {g:?}"
    );
    let requeued = h
        .store
        .requeue_dead(id, h.dispatcher.inner.clock.now())
        .await
        .unwrap();
    assert_eq!(requeued.len(), 1);
    h.dispatcher.kick_channel("hook");
    let ds = h.settle(id).await;
    assert_eq!(
        ds[0].state,
        DeliveryState::Delivered,
        "the script is exhausted: delivers"
    );
    assert_eq!(s.sent.lock().unwrap().len(), 4);
    h.stop().await;
}

/// Expansion takes open broadcasts in turn, one batch each per round: a second channel's
/// broadcast gets its first batch right after the first channel's first batch, not after the
/// first channel's whole audience.
#[tokio::test]
async fn expansion_rounds_take_every_broadcast_in_turn() {
    let mut a = channel("log-a", &[10], fast());
    let mut b = channel("log-b", &[10], fast());
    for c in [&mut a, &mut b] {
        c.kind = Kind::new(&crate::adapters::log::KIND);
        c.audience = Audience::Subscribers;
    }
    let h = harness(vec![
        (a, Arc::new(Scripted::new(vec![]))),
        (b, Arc::new(Scripted::new(vec![]))),
    ])
    .await;
    // Stop the background expander and workers, so that rounds run only when called here.
    let _ = h.stop.send(true);
    let now = h.dispatcher.inner.clock.now();
    let n = 2 * EXPAND_BATCH + 500;
    let rows = (0..n)
        .map(|i| crate::domain::NewSubscriber {
            contact: crate::domain::Contact::phone(&format!("+3584{i:08}")).unwrap(),
            locale: Locale::english(),
            components: vec![],
            confirmed: true,
        })
        .collect();
    h.store.import_subscribers(rows, now).await.unwrap();
    let id = h.publish(1).await[0];
    let per_channel = |store: &Store| {
        let store = store.clone();
        async move {
            let mut counts = std::collections::BTreeMap::new();
            store
                .for_each_delivery(id, |d| *counts.entry(d.channel).or_insert(0) += 1)
                .await
                .unwrap();
            counts
        }
    };
    let inner = &h.dispatcher.inner;
    let open = h.store.open_broadcasts().await.unwrap();
    assert_eq!(open.len(), 2);
    let open = expand_round(inner, open).await.unwrap();
    assert_eq!(open.len(), 2, "both have more to expand");
    let after_one: Vec<(String, usize)> = per_channel(&h.store).await.into_iter().collect();
    assert_eq!(
        after_one,
        vec![
            ("log-a".into(), EXPAND_BATCH),
            ("log-b".into(), EXPAND_BATCH)
        ],
        "one batch of each broadcast, not all of the first"
    );
    let open = expand_round(inner, open).await.unwrap();
    assert_eq!(open.len(), 2);
    let open = expand_round(inner, open).await.unwrap();
    assert!(
        open.is_empty(),
        "the last 500 of each: nothing left to expand"
    );
    assert!(h.store.open_broadcasts().await.unwrap().is_empty());
    let all: Vec<(String, usize)> = per_channel(&h.store).await.into_iter().collect();
    assert_eq!(all, vec![("log-a".into(), n), ("log-b".into(), n)]);
    if let Some(r) = h.running {
        r.finished().await;
    }
}

/// A channel never has more than `concurrency` sends in flight, and a delivery in flight is
/// never claimed a second time while it waits (claims live in memory, and its due entry stays
/// in the store until the outcome is recorded).
#[tokio::test(start_paused = true)]
async fn concurrency_bounds_sends_in_flight_and_claimed_deliveries_are_not_sent_twice() {
    // Ten deliveries; the first four sends hang until the 5 s send timeout, the rest succeed.
    let s = Arc::new(Scripted::new((0..4).map(|_| Step::Hang).collect()));
    let h = harness(vec![(channel("hook", &[30], fast()), s.clone())]).await;
    let ids = h.publish(10).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        s.sent.lock().unwrap().len(),
        4,
        "four slots, all held by hanging sends"
    );
    for id in &ids {
        h.settle(*id).await;
    }
    let sent = s.sent.lock().unwrap().clone();
    // 4 hung (then retried once each after ~30 s) + 6 others = 14 sends for 10 deliveries.
    assert_eq!(
        sent.len(),
        14,
        "{:?}",
        sent.iter().map(|x| x.0).collect::<Vec<_>>()
    );
    let first_free = sent[4].0 - sent[0].0;
    assert!(
        first_free >= Duration::from_secs(5),
        "the fifth send waited for a slot: {first_free:?}"
    );
    let mut keys: Vec<&str> = sent
        .iter()
        .map(|(_, m)| m.idempotency_key.as_str())
        .collect();
    keys.sort_unstable();
    let n = keys.len();
    keys.dedup();
    assert_eq!(
        (n, keys.len()),
        (14, 10),
        "only the four timed-out ones twice"
    );
    assert_eq!(h.store.queue_depth().await.unwrap().0, 0);
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn the_rate_limit_paces_sends_and_a_failing_channel_does_not_hold_back_another() {
    let slow = Arc::new(Scripted::new((0..200).map(|_| Step::Hang).collect()));
    let ok = Arc::new(Scripted::new(vec![]));
    let h = harness(vec![
        (channel("broken", &[3600], fast()), slow.clone()),
        (
            channel(
                "paced",
                &[10],
                Rate {
                    n: 2,
                    per: Duration::from_secs(1),
                },
            ),
            ok.clone(),
        ),
    ])
    .await;
    let ids = h.publish(10).await;
    let start = Instant::now();
    for id in &ids {
        loop {
            let ds = h.store.deliveries_of(*id).await.unwrap();
            if ds
                .iter()
                .any(|d| d.channel == "paced" && d.state == DeliveryState::Delivered)
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let took = Instant::now() - start;
    // 10 sends at 2/s with a burst of 2: the last goes out after about 4 s, not at once and not
    // after the broken channel's hour-long retry.
    assert!(
        took >= Duration::from_secs(3) && took < Duration::from_secs(60),
        "{took:?}"
    );
    let sent = ok.sent.lock().unwrap().clone();
    assert_eq!(sent.len(), 10);
    // A bucket of 2 refilling at 2/s allows at most 2 + 2·T sends in any T seconds: any five
    // consecutive sends span at least (5 - 1 - 2) / 2 = 1 s.
    for w in sent.windows(5) {
        assert!(
            w[4].0 - w[0].0 >= Duration::from_millis(990),
            "rate exceeded: {:?}",
            w[4].0 - w[0].0
        );
    }
    assert!(
        sent[9].0 - sent[0].0 >= Duration::from_millis(3990),
        "10 sends at 2/s with a burst of 2 take 4 s"
    );
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn subscribers_removed_or_stopped_after_expansion_are_not_messaged() {
    let s = Arc::new(Scripted::new(vec![]));
    let mut ch = channel(
        "subs",
        &[10],
        Rate {
            n: 1,
            per: Duration::from_secs(60),
        },
    );
    ch.kind = Kind::new(&crate::adapters::log::KIND);
    ch.audience = Audience::Subscribers;
    ch.concurrency = 1;
    let h = harness(vec![(ch, s.clone())]).await;
    let batch = ["+358401000001", "+358401000002", "+358401000003"]
        .iter()
        .map(|p| crate::domain::NewSubscriber {
            contact: crate::domain::Contact::phone(p).unwrap(),
            locale: Locale::english(),
            components: vec![],
            confirmed: true,
        })
        .collect();
    h.store.import_subscribers(batch, Utc::now()).await.unwrap();
    let id = h.publish(1).await[0];
    // The first goes out at once; the rate limit holds the others for a minute each.
    while s.sent.lock().unwrap().is_empty() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let first = match &s.sent.lock().unwrap()[0].1.recipient {
        crate::adapters::Recipient::Phone(p) => p.clone(),
        other => panic!("{other:?}"),
    };
    // Of the other two, one unsubscribes and one answers STOP.
    let others: Vec<&str> = ["+358401000001", "+358401000002", "+358401000003"]
        .into_iter()
        .filter(|p| *p != first)
        .collect();
    h.store.remove_subscriber(others[0]).await.unwrap();
    let stopped = crate::domain::Contact::phone(others[1]).unwrap();
    assert!(h
        .store
        .set_opted_out(&stopped, true)
        .await
        .unwrap()
        .is_some());
    let ds = h.settle(id).await;
    assert_eq!(
        s.sent.lock().unwrap().len(),
        1,
        "only the first was messaged"
    );
    let mut errors: Vec<&str> = ds
        .iter()
        .filter(|d| d.state == DeliveryState::Rejected)
        .filter_map(|d| d.last_error.as_deref())
        .collect();
    errors.sort_unstable();
    assert_eq!(
        errors,
        [
            "the subscriber opted out (STOP) before it was sent",
            "unsubscribed before it was sent"
        ]
    );
    h.stop().await;
}

fn delivered(receipt: &str) -> Step {
    Step::Answer(Outcome::Delivered {
        receipt: Some(receipt.into()),
    })
}

/// A threading channel: a long first update goes out as parts that reply to each other, a
/// retried part resumes in place, and the next update replies to the last part; the thread's
/// root and latest post are in the store.
#[tokio::test(start_paused = true)]
async fn social_parts_and_later_updates_reply_in_one_thread() {
    let s = Arc::new(Scripted::new(vec![
        delivered("p1"),
        retry("503", None),
        delivered("p2"),
        delivered("p3"),
    ]));
    let mut ch = channel("masto", &[10, 10], fast());
    ch.kind = Kind::new(&crate::adapters::mastodon::KIND);
    ch.platform = Platform::Mastodon;
    ch.concurrency = 1;
    let h = harness(vec![(ch, s.clone())]).await;
    let long = "The check-in system is down at every airport and we are working on it. ".repeat(9);
    let inc_id = h.publish_text(&long).await;
    h.settle(inc_id).await;
    h.store
        .append_update(
            inc_id,
            crate::domain::NewUpdate {
                expect_count: None,
                titles: Default::default(),
                change: crate::domain::Change::Update(None),
                body: Body::single(Locale::english(), "Fixed.").unwrap(),
                author: "t".into(),
                impact: None,
                promise: crate::domain::PromiseEdit::Keep,
                draft: false,
                broadcast: h.dispatcher.broadcast_targets(),
            },
            h.dispatcher.inner.clock.now(),
        )
        .await
        .unwrap();
    h.dispatcher.kick();
    loop {
        let ds = h.store.deliveries_of(inc_id).await.unwrap();
        if ds.len() == 2 && ds.iter().all(|d| d.state.is_final()) {
            assert!(ds.iter().all(|d| d.state == DeliveryState::Delivered));
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let sent: Vec<OutMessage> = s.sent.lock().unwrap().iter().map(|x| x.1.clone()).collect();
    let threads: Vec<Option<(String, String)>> = sent
        .iter()
        .map(|m| {
            m.thread
                .as_ref()
                .map(|t| (t.root.clone(), t.parent.clone()))
        })
        .collect();
    let pair = |r: &str, p: &str| Some((r.to_owned(), p.to_owned()));
    // Part 1 starts the thread; part 2 replies to it (twice: the first try failed); the update
    // replies to the last part.
    // (The 650-character update is two parts at Mastodon's 500.)
    assert_eq!(sent.len(), 4, "{threads:?}");
    assert_eq!(
        threads,
        vec![None, pair("p1", "p1"), pair("p1", "p1"), pair("p1", "p2")]
    );
    assert!(sent[0].idempotency_key.ends_with("-1"));
    assert!(sent[1].idempotency_key.ends_with("-2"));
    assert_eq!(sent[1].idempotency_key, sent[2].idempotency_key);
    assert!(sent[3].text.contains("Fixed."));
    let t = h.store.thread(inc_id, "masto").await.unwrap().unwrap();
    assert_eq!((t.root.as_str(), t.last.as_str()), ("p1", "p3"));
    h.stop().await;
}

/// Channels that cannot reply (webhooks) never get a thread reference.
#[tokio::test(start_paused = true)]
async fn non_threading_channels_send_no_thread() {
    let s = Arc::new(Scripted::new(vec![delivered("m1"), delivered("m2")]));
    let h = harness(vec![(channel("slack", &[10], fast()), s.clone())]).await;
    let id = h.publish(2).await;
    h.settle(id[0]).await;
    h.settle(id[1]).await;
    assert!(s
        .sent
        .lock()
        .unwrap()
        .iter()
        .all(|(_, m)| m.thread.is_none()));
    assert_eq!(h.store.thread(id[0], "slack").await.unwrap(), None);
    h.stop().await;
}

/// Three email readers of one incident, on a channel with `templates` (its own templates
/// folder) if given: what each was sent, with each reader's unsubscribe token, and whether the
/// channel's render cache holds a stand-in rendering.
async fn email_three_readers(
    templates: Option<PathBuf>,
) -> (Vec<(String, OutMessage)>, Vec<String>, Vec<bool>) {
    let s = Arc::new(Scripted::new(vec![]));
    let mut ch = channel("mail", &[10], fast());
    ch.kind = Kind::new(&crate::adapters::email::KIND);
    ch.audience = Audience::Subscribers;
    ch.platform = Platform::Email;
    ch.concurrency = 1;
    ch.templates = templates;
    let settings = Settings {
        public_url: Some("https://status.example.com".into()),
        ..Settings::default()
    };
    let h = harness_with(vec![(ch, s.clone())], settings).await;
    let readers = ["ann@example.net", "bob@example.net", "cai@example.net"];
    let batch = readers
        .iter()
        .map(|a| crate::domain::NewSubscriber {
            contact: crate::domain::Contact::email(a).unwrap(),
            locale: Locale::english(),
            components: vec![],
            confirmed: true,
        })
        .collect();
    h.store.import_subscribers(batch, Utc::now()).await.unwrap();
    let id = h.publish(1).await[0];
    let ds = h.settle(id).await;
    let token_of = |addr: &str| -> String {
        ds.iter()
            .find_map(|d| match &d.target {
                Target::Subscriber {
                    contact: Contact::Email(a),
                    unsubscribe_token,
                    ..
                } if a == addr => Some(unsubscribe_token.clone()),
                _ => None,
            })
            .unwrap()
    };
    let sent = s
        .sent
        .lock()
        .unwrap()
        .iter()
        .map(|(_, m)| match &m.recipient {
            Recipient::Email(a) => (token_of(a), m.clone()),
            other => panic!("{other:?}"),
        })
        .collect();
    let tokens = readers.iter().map(|r| token_of(r)).collect();
    let cached = h.dispatcher.inner.channels["mail"].composer.cached_swaps();
    h.stop().await;
    (sent, tokens, cached)
}

#[tokio::test(start_paused = true)]
async fn a_template_that_changes_the_link_is_rendered_for_each_reader() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("incident_opened")).unwrap();
    std::fs::write(
        dir.path().join("incident_opened/email.en.txt.j2"),
        "{{ incident.title }}\nUnsubscribe: {{ unsubscribe_url | upper }}\n",
    )
    .unwrap();
    let (sent, tokens, cached) = email_three_readers(Some(dir.path().to_owned())).await;
    assert_eq!(sent.len(), 3);
    for (own, m) in &sent {
        let url = format!("https://status.example.com/api/v1/unsubscribe/{own}").to_uppercase();
        assert!(m.text.contains(&url), "{}", m.text);
        for other in tokens.iter().filter(|t| *t != own) {
            assert!(
                !m.text.contains(other.to_uppercase().as_str()),
                "{}",
                m.text
            );
        }
    }
    assert_eq!(cached, [false], "swapping tokens is not rendering here");
}

#[tokio::test(start_paused = true)]
async fn two_readers_of_one_update_get_the_same_email_with_their_own_unsubscribe_links() {
    let (sent, tokens, cached) = email_three_readers(None).await;
    assert_eq!(sent.len(), 3);
    let mut frames = Vec::new();
    for (own, m) in &sent {
        let url = format!("https://status.example.com/api/v1/unsubscribe/{own}");
        assert_eq!(m.unsubscribe_url.as_deref(), Some(url.as_str()));
        let html = m.html.clone().unwrap();
        assert!(m.text.contains(&url), "{}", m.text);
        assert!(html.contains(own.as_str()), "{html}");
        for other in tokens.iter().filter(|t| *t != own) {
            assert!(
                !m.text.contains(other.as_str()) && !html.contains(other.as_str()),
                "a reader got another reader's link"
            );
        }
        frames.push((
            m.subject.clone(),
            m.text.replace(own.as_str(), "TOKEN"),
            html.replace(own.as_str(), "TOKEN"),
        ));
    }
    assert!(frames.windows(2).all(|w| w[0] == w[1]), "{frames:#?}");
    // The templates ran for the first reader; the others got a copy with their token swapped in.
    assert_eq!(cached, [true]);
}

#[tokio::test(start_paused = true)]
async fn a_message_too_long_for_a_reject_channel_is_rejected_unsent() {
    let s = Arc::new(Scripted::new(vec![]));
    let mut ch = channel("strict", &[10, 10], fast());
    ch.platform = Platform::Sms;
    ch.policy_name = "reject".into();
    ch.sms_max_segments = 1;
    let h = harness(vec![(ch, s.clone())]).await;
    let id = h
        .publish_text(&"The check-in system is down at every airport. ".repeat(8))
        .await;
    let ds = h.settle(id).await;
    assert_eq!(ds.len(), 1);
    assert_eq!(ds[0].state, DeliveryState::Rejected);
    assert_eq!(ds[0].attempts, 1, "not retried");
    let reason = ds[0].last_error.clone().unwrap();
    assert!(
        reason.starts_with("message is ") && reason.contains("policy is reject"),
        "{reason}"
    );
    assert!(s.sent.lock().unwrap().is_empty());
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_template_that_fails_on_the_text_is_retried_until_dead() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("incident_opened")).unwrap();
    std::fs::write(
        dir.path().join("incident_opened/chat.en.md.j2"),
        "{% if update.text == \"boom\" %}{{ no_such_variable }}{% endif %}{{ update.text }}\n",
    )
    .unwrap();
    let s = Arc::new(Scripted::new(vec![]));
    let mut ch = channel("ops", &[10, 10], fast());
    ch.templates = Some(dir.path().to_owned());
    let h = harness(vec![(ch, s.clone())]).await;
    let id = h.publish_text("boom").await;
    let ds = h.settle(id).await;
    assert_eq!(ds.len(), 1);
    assert_eq!(ds[0].state, DeliveryState::Dead);
    assert_eq!(ds[0].attempts, 3, "tried on the whole schedule");
    let reason = ds[0].last_error.clone().unwrap();
    assert!(
        reason.starts_with("cannot render the message: "),
        "{reason}"
    );
    assert!(s.sent.lock().unwrap().is_empty());
    h.stop().await;
}
