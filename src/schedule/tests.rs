//! Scheduler tests with controlled time: every tick is given its "now", so fire times, grace
//! windows, promises, maintenance windows and hold-downs are tested at exact instants, and a
//! restart is a real one (the store closed and reopened from its directory).

use super::scheduler::{Scheduler, TickReport};
use super::settings::{Missed, ScheduleSettings};
use crate::channels::{Audience, Channel, Kind, Rate, Settings as ChannelSettings};
use crate::dispatch::{Dispatcher, Running};
use crate::domain::alert::Mode;
use crate::domain::{Body, Impact, IncidentKind, Locale, Notice, Status, Title};
use crate::domain::{Change, NewIncident, NewUpdate};
use crate::intake::{AlertStatus, Intake, IntakeSettings, Outcome, Trigger};
use crate::render::preview::Platform;
use crate::render::{Settings, Templates};
use crate::store::port::{Components, Holds, Incidents, Notices, Outbox, Standalones};
use crate::store::Store;
use chrono::{DateTime, Duration, Utc};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::watch;
use ulid::Ulid;

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().to_utc()
}

fn log_channel(name: &str) -> Channel {
    Channel {
        name: name.into(),
        kind: Kind::new(&crate::adapters::log::KIND),
        audience: Audience::Fixed,
        rate: Rate {
            n: 1000,
            per: std::time::Duration::from_secs(1),
        },
        concurrency: 4,
        locale: Locale::english(),
        timezone: None,
        platform: Platform::Slack,
        policy_name: "thread".into(),
        sms_max_segments: 3,
        approval_required: false,
        base_url: None,
        retry: vec![std::time::Duration::from_secs(1)],
        send_timeout: std::time::Duration::from_secs(5),
        settings: ChannelSettings::new(crate::adapters::log::LogSettings),
        templates: None,
    }
}

struct Harness {
    store: Store,
    scheduler: Scheduler,
    dispatcher: Dispatcher,
    stop: watch::Sender<bool>,
    running: Option<Running>,
}

async fn harness(dir: &Path, settings: ScheduleSettings) -> Harness {
    // After a restart the previous instance's flusher task may still hold sled's lock for a
    // moment while it winds down.
    let mut store = Store::open(&dir.join("db"));
    for _ in 0..500 {
        if store.is_ok() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        store = Store::open(&dir.join("db"));
    }
    let store = store.unwrap();
    let templates = Arc::new(
        Templates::load(
            &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("templates"),
            &[],
        )
        .unwrap(),
    );
    let render = Arc::new(Settings::default());
    let (stop, stopped) = watch::channel(false);
    let (dispatcher, running) = Dispatcher::start(
        store.clone(),
        templates.clone(),
        render.clone(),
        vec![log_channel("public"), log_channel("staff")],
        dir,
        crate::dispatch::Clock::new(),
        stopped,
    )
    .await
    .unwrap();
    let scheduler = Scheduler::new(
        store.clone(),
        templates,
        render,
        settings,
        dispatcher.clone(),
    );
    Harness {
        store,
        scheduler,
        dispatcher,
        stop,
        running: Some(running),
    }
}

impl Harness {
    async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(r) = self.running.take() {
            r.finished().await;
        }
        self.store.durable().await.unwrap();
    }

    /// Polls the outbox until `origin` has `n` deliveries, all final.
    async fn settle(&self, origin: Ulid, n: usize) -> Vec<crate::domain::Delivery> {
        for _ in 0..2000 {
            let ds = self.store.deliveries_of(origin).await.unwrap();
            if ds.len() == n && ds.iter().all(|d| d.state.is_final()) {
                return ds;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("{origin} did not reach {n} final deliveries");
    }

    async fn tick(&self, now: &str) -> TickReport {
        self.scheduler.tick(at(now)).await.unwrap()
    }

    async fn notice(&self, cron: &str, tz: &str, created: &str) -> Ulid {
        let n = Notice {
            id: Ulid::new(),
            cron: cron.parse().unwrap(),
            tz: tz.into(),
            subject: "Weekly".into(),
            body: Body::single(Locale::english(), "Backups run tonight").unwrap(),
            channels: vec!["public".into()],
            from: None,
            until: None,
            created_at: at(created),
            last_fired: None,
        };
        self.store.put_notice(&n).await.unwrap();
        n.id
    }

    async fn incident(&self, now: &str, promise: Option<&str>, holding: bool) -> Ulid {
        let (i, _) = self
            .store
            .create_incident(
                NewIncident {
                    titles: Default::default(),
                    title: Title::parse("Checkout errors").unwrap(),
                    kind: IncidentKind::Incident,
                    status: None,
                    impact: Impact::Major,
                    components: vec![],
                    body: Body::single(Locale::english(), "Investigating").unwrap(),
                    author: "t".into(),
                    next_update_due: promise.map(at),
                    draft: false,
                    broadcast: vec![("public".into(), false)],
                    scheduled_for: None,
                    scheduled_until: None,
                    holding_statement: holding,
                    remind_before: None,
                },
                at(now),
            )
            .await
            .unwrap();
        i.id
    }
}

fn fired(r: &TickReport) -> Vec<DateTime<Utc>> {
    r.notices_fired.iter().map(|(_, t)| *t).collect()
}

#[tokio::test]
async fn a_notice_fires_exactly_once_per_instant_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let h = harness(dir.path(), ScheduleSettings::default()).await;
    let id = h
        .notice("0 9 * * Mon-Fri", "Europe/Helsinki", "2026-11-23T06:00:00Z")
        .await;
    assert!(fired(&h.tick("2026-11-23T06:59:59Z").await).is_empty());
    // 09:00 Helsinki = 07:00 UTC in winter.
    assert_eq!(
        fired(&h.tick("2026-11-23T07:00:00Z").await),
        vec![at("2026-11-23T07:00:00Z")]
    );
    assert!(fired(&h.tick("2026-11-23T07:00:30Z").await).is_empty());
    h.shutdown().await;

    // Restart: the store is reopened from disk; the same instant does not fire again.
    let h = harness(dir.path(), ScheduleSettings::default()).await;
    assert!(fired(&h.tick("2026-11-23T07:01:00Z").await).is_empty());
    // A crash between posting a firing and recording it on the notice: the firing's record
    // exists, so posting it again is a no-op.
    let mut n = h.store.notice(id).await.unwrap();
    n.last_fired = None;
    h.store.put_notice(&n).await.unwrap();
    assert!(fired(&h.tick("2026-11-23T07:01:30Z").await).is_empty());
    assert_eq!(h.store.standalones_of(id).await.unwrap().len(), 1);
    // The next weekday fires; Saturday and Sunday do not.
    assert_eq!(
        fired(&h.tick("2026-11-24T07:00:05Z").await),
        vec![at("2026-11-24T07:00:00Z")]
    );
    for day in ["2026-11-28T07:00:00Z", "2026-11-29T07:00:00Z"] {
        assert!(fired(&h.tick(day).await).is_empty(), "{day} is a weekend");
    }
    // The firings went through the outbox: one delivery each, to the channel named.
    h.dispatcher.kick();
    let ds = h.settle(id, 2).await;
    assert!(ds
        .iter()
        .all(|d| d.state == crate::domain::DeliveryState::Delivered));
    let sent = std::fs::read_to_string(dir.path().join("outbox/public.jsonl")).unwrap();
    assert_eq!(sent.matches("Backups run tonight").count(), 2, "{sent}");
    assert!(ds.iter().all(|d| d.channel == "public"));
    h.shutdown().await;
}

#[tokio::test]
async fn missed_firings_after_downtime_follow_the_policy() {
    let dir = tempfile::tempdir().unwrap();
    let h = harness(dir.path(), ScheduleSettings::default()).await;
    h.notice("0 9 * * *", "UTC", "2026-11-20T08:00:00Z").await;
    // Down from before the 20th 09:00 until the 23rd 09:30: the 20th to 22nd are skipped, the
    // 23rd (30 minutes late, inside the 1 h grace) is sent once.
    let r = h.tick("2026-11-23T09:30:00Z").await;
    assert_eq!(fired(&r), vec![at("2026-11-23T09:00:00Z")]);
    let skipped: Vec<_> = r.notices_skipped.iter().map(|(_, t)| *t).collect();
    assert_eq!(
        skipped,
        vec![
            at("2026-11-20T09:00:00Z"),
            at("2026-11-21T09:00:00Z"),
            at("2026-11-22T09:00:00Z")
        ]
    );
    // Later than the grace: skipped and logged.
    let r = h.tick("2026-11-24T10:30:00Z").await;
    assert!(fired(&r).is_empty());
    assert_eq!(r.notices_skipped.len(), 1);
    h.shutdown().await;

    let dir = tempfile::tempdir().unwrap();
    let skip = ScheduleSettings {
        missed: Missed::Skip,
        ..ScheduleSettings::default()
    };
    let h = harness(dir.path(), skip).await;
    h.notice("0 9 * * *", "UTC", "2026-11-20T08:00:00Z").await;
    let r = h.tick("2026-11-23T09:30:00Z").await;
    assert!(
        fired(&r).is_empty(),
        "the skip policy sends no missed firing"
    );
    assert_eq!(r.notices_skipped.len(), 4);
    // On time (within the tick slack) still fires under the skip policy.
    assert_eq!(
        fired(&h.tick("2026-11-24T09:00:40Z").await),
        vec![at("2026-11-24T09:00:00Z")]
    );
    h.shutdown().await;
}

#[tokio::test]
async fn around_dst_a_notice_fires_once_in_the_overlap_and_skips_the_gap() {
    let dir = tempfile::tempdir().unwrap();
    let h = harness(dir.path(), ScheduleSettings::default()).await;
    // Helsinki: 2026-10-25 04:00 EEST → 03:00 EET, so 03:30 happens twice (00:30Z and 01:30Z).
    h.notice("30 3 * * *", "Europe/Helsinki", "2026-10-24T12:00:00Z")
        .await;
    let mut all = Vec::new();
    let mut t = at("2026-10-24T22:00:00Z");
    while t < at("2026-10-25T04:00:00Z") {
        all.extend(fired(&h.scheduler.tick(t).await.unwrap()));
        t += Duration::minutes(10);
    }
    assert_eq!(
        all,
        vec![at("2026-10-25T00:30:00Z")],
        "once, at the first 03:30"
    );
    h.shutdown().await;

    let dir = tempfile::tempdir().unwrap();
    let h = harness(dir.path(), ScheduleSettings::default()).await;
    // 2027-03-28 03:00 EET → 04:00 EEST: 03:30 does not exist that day.
    h.notice("30 3 * * *", "Europe/Helsinki", "2027-03-27T12:00:00Z")
        .await;
    let mut all = Vec::new();
    let mut t = at("2027-03-27T22:00:00Z");
    while t < at("2027-03-29T04:00:00Z") {
        let r = h.scheduler.tick(t).await.unwrap();
        all.extend(fired(&r));
        t += Duration::minutes(10);
    }
    assert_eq!(
        all,
        vec![at("2027-03-29T00:30:00Z")],
        "the gap day is skipped; the next day fires at 03:30 EEST"
    );
    assert!(all.windows(2).all(|w| w[0] < w[1]));
    h.shutdown().await;
}

#[tokio::test]
async fn promises_remind_staff_before_they_are_due_and_holding_statements_are_opt_in() {
    let dir = tempfile::tempdir().unwrap();
    let settings = ScheduleSettings {
        reminder_channels: vec!["staff".into()],
        remind_before: std::time::Duration::from_secs(600),
        ..ScheduleSettings::default()
    };
    let h = harness(dir.path(), settings).await;
    let plain = h
        .incident("2026-11-23T12:00:00Z", Some("2026-11-23T12:30:00Z"), false)
        .await;
    let opted = h
        .incident("2026-11-23T12:00:00Z", Some("2026-11-23T12:30:00Z"), true)
        .await;
    let r = h.tick("2026-11-23T12:19:59Z").await;
    assert!(r.reminders.is_empty());
    let r = h.tick("2026-11-23T12:20:00Z").await;
    assert_eq!(r.reminders.len(), 2, "10 minutes before: both reminded");
    assert!(
        h.tick("2026-11-23T12:25:00Z").await.reminders.is_empty(),
        "once"
    );
    let reminders: Vec<_> = h
        .store
        .broadcasts_of(plain)
        .await
        .unwrap()
        .into_iter()
        .filter(|b| b.seq >= crate::domain::standalone::STANDALONE_BASE)
        .collect();
    assert_eq!(reminders.len(), 1);
    assert_eq!(reminders[0].channel, "staff", "to the staff channel only");

    // Past due: only the opted-in incident gets a holding statement, with a new promise.
    let r = h.tick("2026-11-23T12:30:01Z").await;
    assert_eq!(r.holding_statements, vec![opted]);
    let (i, updates) = h.store.incident(opted).await.unwrap();
    let last = updates.last().unwrap();
    assert_eq!(last.author, super::scheduler::AUTHOR);
    assert!(last.body.texts()[&Locale::english()].contains("still working on"));
    assert_eq!(i.next_update_due, Some(at("2026-11-23T13:00:01Z")));
    assert!(h
        .tick("2026-11-23T12:31:00Z")
        .await
        .holding_statements
        .is_empty());
    let (p, _) = h.store.incident(plain).await.unwrap();
    assert_eq!(p.update_count, 1, "not opted in: no holding statement");

    // Resolving clears the promise: no reminder, no holding statement afterwards.
    h.store
        .append_update(
            opted,
            NewUpdate {
                expect_count: None,
                titles: Default::default(),
                change: Change::Resolve,
                body: Body::single(Locale::english(), "Fixed").unwrap(),
                author: "t".into(),
                impact: None,
                promise: crate::domain::PromiseEdit::Keep,
                draft: false,
                broadcast: vec![],
            },
            at("2026-11-23T12:40:00Z"),
        )
        .await
        .unwrap();
    let (i, _) = h.store.incident(opted).await.unwrap();
    assert_eq!(i.next_update_due, None);
    let r = h.tick("2026-11-23T13:30:00Z").await;
    assert!(!r.reminders.contains(&opted) && !r.holding_statements.contains(&opted));
    h.shutdown().await;

    // A channel may opt in for every incident: the statement goes to it alone.
    let dir = tempfile::tempdir().unwrap();
    let settings = ScheduleSettings {
        holding_statement_channels: vec!["staff".into()],
        ..ScheduleSettings::default()
    };
    let h = harness(dir.path(), settings).await;
    let id = h
        .incident("2026-11-23T12:00:00Z", Some("2026-11-23T12:30:00Z"), false)
        .await;
    assert_eq!(
        h.tick("2026-11-23T12:31:00Z").await.holding_statements,
        vec![id]
    );
    let channels: Vec<String> = h
        .store
        .broadcasts_of(id)
        .await
        .unwrap()
        .into_iter()
        .filter(|b| b.seq == 2)
        .map(|b| b.channel)
        .collect();
    assert_eq!(channels, vec!["staff".to_string()]);
    h.shutdown().await;
}

/// An update that keeps the standing promise repeats it; staff are reminded of that promise
/// once, not again for each update that kept it. A new promise gets its own reminder.
#[tokio::test]
async fn a_kept_promise_is_reminded_once() {
    let dir = tempfile::tempdir().unwrap();
    let settings = ScheduleSettings {
        reminder_channels: vec!["staff".into()],
        remind_before: std::time::Duration::from_secs(600),
        ..ScheduleSettings::default()
    };
    let h = harness(dir.path(), settings).await;
    let id = h
        .incident("2026-11-23T12:00:00Z", Some("2026-11-23T12:30:00Z"), false)
        .await;
    let update = |promise, at_: &str| {
        let store = h.store.clone();
        let at_ = at(at_);
        async move {
            store
                .append_update(
                    id,
                    NewUpdate {
                        expect_count: None,
                        titles: Default::default(),
                        change: Change::Update(None),
                        body: Body::single(Locale::english(), "Still on it").unwrap(),
                        author: "t".into(),
                        impact: None,
                        promise,
                        draft: false,
                        broadcast: vec![],
                    },
                    at_,
                )
                .await
                .unwrap()
        }
    };
    assert_eq!(h.tick("2026-11-23T12:20:00Z").await.reminders, vec![id]);
    let (i, u) = update(crate::domain::PromiseEdit::Keep, "2026-11-23T12:22:00Z").await;
    assert_eq!(i.next_update_due, Some(at("2026-11-23T12:30:00Z")));
    assert_eq!(
        u.next_update_due, i.next_update_due,
        "the update repeats it"
    );
    update(crate::domain::PromiseEdit::Keep, "2026-11-23T12:23:00Z").await;
    assert!(
        h.tick("2026-11-23T12:24:00Z").await.reminders.is_empty(),
        "the same promise: no second reminder"
    );
    update(
        crate::domain::PromiseEdit::Set(at("2026-11-23T13:00:00Z")),
        "2026-11-23T12:25:00Z",
    )
    .await;
    assert_eq!(
        h.tick("2026-11-23T12:50:00Z").await.reminders,
        vec![id],
        "a new promise is reminded"
    );
    h.shutdown().await;
}

/// A missed promise is logged once (not every tick) and counted in `/metrics` while it stays
/// missed; a new promise ends it, and one covered by a holding statement is not counted.
#[tokio::test]
async fn an_overdue_promise_is_logged_once_and_counted_until_a_new_promise() {
    let dir = tempfile::tempdir().unwrap();
    let h = harness(dir.path(), ScheduleSettings::default()).await;
    let gauge = || h.dispatcher.metrics().promises_overdue();
    let a = h
        .incident("2026-10-24T20:00:00Z", Some("2026-10-25T12:00:00Z"), false)
        .await;
    let b = h
        .incident("2026-10-24T20:00:00Z", Some("2026-10-25T13:00:00Z"), false)
        .await;
    assert!(h.tick("2026-10-25T11:59:59Z").await.overdue.is_empty());
    assert_eq!(gauge(), 0);
    assert_eq!(h.tick("2026-10-25T12:00:01Z").await.overdue, vec![a]);
    assert_eq!(gauge(), 1);
    assert!(
        h.tick("2026-10-25T12:10:00Z").await.overdue.is_empty(),
        "logged once, not every tick"
    );
    assert_eq!(gauge(), 1, "still overdue");
    assert_eq!(h.tick("2026-10-25T13:00:01Z").await.overdue, vec![b]);
    assert_eq!(gauge(), 2);
    h.store
        .append_update(
            a,
            NewUpdate {
                expect_count: None,
                titles: Default::default(),
                change: Change::Update(None),
                body: Body::single(Locale::english(), "Still on it").unwrap(),
                author: "t".into(),
                impact: None,
                promise: crate::domain::PromiseEdit::Set(at("2026-10-25T14:00:00Z")),
                draft: false,
                broadcast: vec![],
            },
            at("2026-10-25T13:05:00Z"),
        )
        .await
        .unwrap();
    assert!(h.tick("2026-10-25T13:05:01Z").await.overdue.is_empty());
    assert_eq!(gauge(), 1, "a's new promise is not overdue");
    h.shutdown().await;

    // Covered by a holding statement (a new promise at once): logged, not counted.
    let dir = tempfile::tempdir().unwrap();
    let h = harness(dir.path(), ScheduleSettings::default()).await;
    let c = h
        .incident("2026-10-24T20:00:00Z", Some("2026-10-25T12:00:00Z"), true)
        .await;
    let r = h.tick("2026-10-25T12:00:01Z").await;
    assert_eq!((r.overdue, r.holding_statements), (vec![c], vec![c]));
    assert_eq!(h.dispatcher.metrics().promises_overdue(), 0);
    h.shutdown().await;
}

#[tokio::test]
async fn maintenance_moves_through_its_window_on_time() {
    let dir = tempfile::tempdir().unwrap();
    let settings = ScheduleSettings {
        maintenance_remind_before: Some(std::time::Duration::from_secs(3600)),
        ..ScheduleSettings::default()
    };
    let h = harness(dir.path(), settings).await;
    let (m, _) = h
        .store
        .create_incident(
            NewIncident {
                titles: Default::default(),
                title: Title::parse("Database upgrade").unwrap(),
                kind: IncidentKind::Maintenance,
                status: None,
                impact: Impact::None,
                components: vec![],
                body: Body::single(Locale::english(), "Planned upgrade").unwrap(),
                author: "t".into(),
                next_update_due: None,
                draft: false,
                broadcast: vec![("public".into(), false)],
                scheduled_for: Some(at("2026-11-24T22:00:00Z")),
                scheduled_until: Some(at("2026-11-24T23:30:00Z")),
                holding_statement: false,
                remind_before: None,
            },
            at("2026-11-23T12:00:00Z"),
        )
        .await
        .unwrap();
    assert_eq!(m.status, Status::Scheduled);
    assert_eq!(h.tick("2026-11-24T20:59:59Z").await, TickReport::default());
    assert_eq!(
        h.tick("2026-11-24T21:00:00Z").await.maintenance_reminders,
        vec![m.id],
        "an hour before it starts"
    );
    assert!(h
        .tick("2026-11-24T21:30:00Z")
        .await
        .maintenance_reminders
        .is_empty());
    assert!(h.tick("2026-11-24T21:59:59Z").await.transitions.is_empty());
    assert_eq!(
        h.tick("2026-11-24T22:00:00Z").await.transitions,
        vec![(m.id, Status::InProgress)]
    );
    assert!(h.tick("2026-11-24T22:00:01Z").await.transitions.is_empty());
    assert_eq!(
        h.tick("2026-11-24T23:30:00Z").await.transitions,
        vec![(m.id, Status::Completed)]
    );
    let (m2, updates) = h.store.incident(m.id).await.unwrap();
    assert_eq!(m2.status, Status::Completed);
    let statuses: Vec<Status> = updates.iter().map(|u| u.status).collect();
    assert_eq!(
        statuses,
        vec![Status::Scheduled, Status::InProgress, Status::Completed]
    );
    // Each transition was announced (a broadcast per update).
    let mut seqs: Vec<u32> = h
        .store
        .broadcasts_of(m.id)
        .await
        .unwrap()
        .iter()
        .map(|b| b.seq)
        .filter(|s| *s < crate::domain::standalone::STANDALONE_BASE)
        .collect();
    seqs.dedup();
    assert_eq!(seqs, vec![1, 2, 3]);
    h.shutdown().await;
}

fn trigger(key: &str, status: AlertStatus) -> Trigger {
    Trigger {
        source: "prometheus".into(),
        group: "checkout".into(),
        key: key.into(),
        status,
        summary: format!("{key} is slow"),
        title: Some("Checkout is slow".into()),
        impact: None,
        components: vec![],
        labels: BTreeMap::from([("severity".into(), "critical".into())]),
    }
}

fn publish_route(hold_secs: u64) -> IntakeSettings {
    let mut s = IntakeSettings {
        hold_down: std::time::Duration::from_secs(hold_secs),
        ..IntakeSettings::default()
    };
    s.default.mode = Mode::Publish;
    s
}

#[tokio::test]
async fn an_alert_that_flaps_inside_the_hold_down_publishes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let h = harness(dir.path(), ScheduleSettings::default()).await;
    let intake = Intake::new(h.store.clone(), publish_route(120));
    let targets = h.dispatcher.broadcast_targets();
    let t0 = at("2026-11-23T12:00:00Z");
    let o = intake
        .handle(trigger("web-1", AlertStatus::Firing), &targets, t0)
        .await
        .unwrap();
    let Outcome::Opened {
        incident,
        held_until,
        ..
    } = o
    else {
        panic!("{o:?}")
    };
    assert_eq!(held_until, Some(t0 + Duration::minutes(2)));
    // Visible at once (as a draft) …
    let (i, _) = h.store.incident(incident).await.unwrap();
    assert!(i.draft && i.is_open());
    // … resolves, fires again and resolves again, all inside the window.
    for (secs, status) in [
        (30, AlertStatus::Resolved),
        (60, AlertStatus::Firing),
        (90, AlertStatus::Resolved),
    ] {
        intake
            .handle(
                trigger("web-1", status),
                &targets,
                t0 + Duration::seconds(secs),
            )
            .await
            .unwrap();
    }
    let (i, _) = h.store.incident(incident).await.unwrap();
    assert_eq!(i.status, Status::Resolved);
    let r = h.scheduler.tick(t0 + Duration::minutes(10)).await.unwrap();
    assert_eq!(r.suppressed, vec![incident]);
    assert!(r.released.is_empty());
    assert!(
        h.store.broadcasts_of(incident).await.unwrap().is_empty(),
        "nothing was ever announced"
    );
    assert!(h.store.hold(incident).await.unwrap().is_none());

    // An alert that keeps firing past the hold-down is published when it ends.
    let mut db_alert = trigger("db-1", AlertStatus::Firing);
    db_alert.group = "database".into();
    let o = intake.handle(db_alert, &targets, t0).await.unwrap();
    let Outcome::Opened { incident: db, .. } = o else {
        panic!("{o:?}")
    };
    assert!(h
        .scheduler
        .tick(t0 + Duration::seconds(119))
        .await
        .unwrap()
        .released
        .is_empty());
    let r = h.scheduler.tick(t0 + Duration::seconds(120)).await.unwrap();
    assert_eq!(r.released, vec![db]);
    let (i, _) = h.store.incident(db).await.unwrap();
    assert!(!i.draft);
    assert_eq!(
        h.store.broadcasts_of(db).await.unwrap().len(),
        2,
        "both channels"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn routing_rules_choose_components_impact_channels_and_mode() {
    use crate::domain::{ComponentName, ComponentStatus};
    use crate::intake::Route;
    let dir = tempfile::tempdir().unwrap();
    let h = harness(dir.path(), ScheduleSettings::default()).await;
    let api = ComponentName::parse("Payments API").unwrap();
    h.store
        .set_component(
            api.clone(),
            ComponentStatus::Operational,
            None,
            at("2026-11-23T12:00:00Z"),
        )
        .await
        .unwrap();
    let mut settings = IntakeSettings {
        hold_down: std::time::Duration::ZERO,
        ..IntakeSettings::default()
    };
    settings.routes.push(Route {
        matchers: BTreeMap::from([("severity".into(), "critical".into())]),
        components: vec![api.clone(), ComponentName::parse("Not created").unwrap()],
        impact: Impact::Critical,
        channels: Some(vec!["staff".into()]),
        mode: Mode::Publish,
    });
    let intake = Intake::new(h.store.clone(), settings);
    let targets = h.dispatcher.broadcast_targets();
    let now = at("2026-11-23T12:00:00Z");
    let Outcome::Opened {
        incident, draft, ..
    } = intake
        .handle(trigger("web-1", AlertStatus::Firing), &targets, now)
        .await
        .unwrap()
    else {
        panic!()
    };
    assert!(!draft);
    let (i, _) = h.store.incident(incident).await.unwrap();
    assert_eq!(i.impact, Impact::Critical);
    assert_eq!(
        i.components,
        vec![api],
        "unknown route components are dropped"
    );
    assert!(!i.draft, "publish mode, no hold-down: public at once");
    let channels: Vec<String> = h
        .store
        .broadcasts_of(incident)
        .await
        .unwrap()
        .into_iter()
        .map(|b| b.channel)
        .collect();
    assert_eq!(channels, vec!["staff".to_string()]);

    // No route matches: the default (draft, minor, every channel) — waits for a person.
    let mut other = trigger("disk", AlertStatus::Firing);
    other.group = "disk".into();
    other.labels.clear();
    let Outcome::Opened {
        incident, draft, ..
    } = intake.handle(other, &targets, now).await.unwrap()
    else {
        panic!()
    };
    assert!(draft);
    let (i, _) = h.store.incident(incident).await.unwrap();
    assert!(i.draft && i.impact == Impact::Minor);
    assert!(h.store.broadcasts_of(incident).await.unwrap().is_empty());
    h.shutdown().await;
}

/// Opens a maintenance window 22:00–23:30 UTC on 24 November with `remind_before`.
async fn window(h: &Harness, remind_before: Option<crate::domain::Reminder>) -> Ulid {
    let (m, _) = h
        .store
        .create_incident(
            NewIncident {
                titles: Default::default(),
                title: Title::parse("Database upgrade").unwrap(),
                kind: IncidentKind::Maintenance,
                status: None,
                impact: Impact::None,
                components: vec![],
                body: Body::single(Locale::english(), "Planned upgrade").unwrap(),
                author: "t".into(),
                next_update_due: None,
                draft: false,
                broadcast: vec![("public".into(), false)],
                scheduled_for: Some(at("2026-11-24T22:00:00Z")),
                scheduled_until: Some(at("2026-11-24T23:30:00Z")),
                holding_statement: false,
                remind_before,
            },
            at("2026-11-23T12:00:00Z"),
        )
        .await
        .unwrap();
    m.id
}

#[tokio::test]
async fn a_window_s_own_reminder_fires_at_its_lead_and_none_never() {
    use crate::domain::{Reminder, Span};
    let dir = tempfile::tempdir().unwrap();
    // The config says an hour; the first window says 30 minutes, the second none.
    let settings = ScheduleSettings {
        maintenance_remind_before: Some(std::time::Duration::from_secs(3600)),
        ..ScheduleSettings::default()
    };
    let h = harness(dir.path(), settings).await;
    let own = window(&h, Some(Reminder::Before(Span::from_secs(1800)))).await;
    let off = window(&h, Some(Reminder::Off)).await;
    // At the config's lead (start − 1 h) nothing is reminded: neither window uses it.
    assert!(h
        .tick("2026-11-24T21:00:00Z")
        .await
        .maintenance_reminders
        .is_empty());
    assert!(h
        .tick("2026-11-24T21:29:59Z")
        .await
        .maintenance_reminders
        .is_empty());
    assert_eq!(
        h.tick("2026-11-24T21:30:00Z").await.maintenance_reminders,
        vec![own],
        "start − its own 30 minutes; the window without a reminder gets none"
    );
    assert!(h
        .tick("2026-11-24T21:45:00Z")
        .await
        .maintenance_reminders
        .is_empty());
    // Both still move through their windows; the one without a reminder never reminded.
    let r = h.tick("2026-11-24T22:00:00Z").await;
    assert!(r.maintenance_reminders.is_empty());
    assert_eq!(r.transitions.len(), 2);
    let reminders: Vec<u32> = h
        .store
        .broadcasts_of(off)
        .await
        .unwrap()
        .iter()
        .map(|b| b.seq)
        .filter(|s| *s >= crate::domain::standalone::STANDALONE_BASE)
        .collect();
    assert!(reminders.is_empty(), "{reminders:?}");
    h.shutdown().await;
}

#[tokio::test]
async fn a_window_from_before_reminders_were_its_own_uses_the_config_s() {
    let dir = tempfile::tempdir().unwrap();
    let settings = ScheduleSettings {
        maintenance_remind_before: Some(std::time::Duration::from_secs(3600)),
        ..ScheduleSettings::default()
    };
    let h = harness(dir.path(), settings).await;
    let old = window(&h, None).await;
    assert!(h
        .tick("2026-11-24T20:59:59Z")
        .await
        .maintenance_reminders
        .is_empty());
    assert_eq!(
        h.tick("2026-11-24T21:00:00Z").await.maintenance_reminders,
        vec![old]
    );
    h.shutdown().await;
}

/// Two nodes may both believe they lead for a moment (a leader cut off from the database learns
/// it only at its next check). Two schedulers ticking the same instant at once on one store
/// still post one holding statement, one maintenance transition and one notice firing: each
/// action is conditional on the state it was decided on, or keyed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_schedulers_ticking_at_once_act_once() {
    let dir = tempfile::tempdir().unwrap();
    let settings = ScheduleSettings {
        holding_statement: true,
        ..ScheduleSettings::default()
    };
    let h = harness(dir.path(), settings.clone()).await;
    let other = Scheduler::new(
        h.store.clone(),
        Arc::new(
            Templates::load(
                &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("templates"),
                &[],
            )
            .unwrap(),
        ),
        Arc::new(Settings::default()),
        settings,
        h.dispatcher.clone(),
    );
    let late = h
        .incident("2026-11-23T12:00:00Z", Some("2026-11-23T12:30:00Z"), false)
        .await;
    let window = window(&h, None).await;
    let notice = h.notice("0 23 * * *", "UTC", "2026-11-23T12:00:00Z").await;
    // Each round is a new due instant for each: a missed promise (the previous holding
    // statement promised the next 30 minutes later), a window that starts or ends, a firing.
    let rounds = [
        "2026-11-24T22:00:01Z", // late; window starts
        "2026-11-24T23:00:01Z", // late again; the notice fires
        "2026-11-24T23:30:01Z", // late again; window ends
    ];
    let mut holding = 0;
    let mut transitions = 0;
    let mut fired = 0;
    for now in rounds {
        let (x, y) = tokio::join!(h.scheduler.tick(at(now)), other.tick(at(now)));
        for r in [x.unwrap(), y.unwrap()] {
            holding += r.holding_statements.iter().filter(|i| **i == late).count();
            transitions += r.transitions.iter().filter(|(i, _)| *i == window).count();
            fired += r.notices_fired.iter().filter(|(n, _)| *n == notice).count();
        }
    }
    let (_, tl) = h.store.incident(late).await.unwrap();
    assert_eq!(
        (holding, tl.len()),
        (3, 4),
        "one holding statement per missed promise: {:?}",
        tl.iter().map(|u| u.created_at).collect::<Vec<_>>()
    );
    let (w, tl) = h.store.incident(window).await.unwrap();
    assert_eq!(
        (transitions, tl.len()),
        (2, 3),
        "started once, completed once"
    );
    assert_eq!(w.status, Status::Completed);
    assert_eq!(fired, 1, "the notice fired once");
    let firings: Vec<_> = h
        .store
        .broadcasts_of(notice)
        .await
        .unwrap()
        .into_iter()
        .filter(|b| b.seq >= crate::domain::standalone::STANDALONE_BASE)
        .collect();
    assert_eq!(firings.len(), 1, "{firings:?}");
    h.shutdown().await;
}
