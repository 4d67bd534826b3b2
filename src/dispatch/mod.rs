//! Dispatch: turning broadcasts into sent messages.
//!
//! - The **expander** walks open broadcasts and creates their deliveries in batches behind each
//!   broadcast's persisted cursor (memory stays flat whatever the audience; a crash resumes).
//! - One **channel worker** per channel claims its due deliveries (its own due-index prefix, so a
//!   slow or failing channel never holds back another), paces them with the channel's token
//!   bucket (on PostgreSQL also the one every node shares, see [`pace`]), sends up to
//!   `concurrency` at once through the adapter, and records the outcome: delivered, rejected,
//!   or retried on the channel's schedule with jitter (honouring the provider's Retry-After)
//!   until it is dead.
//! - The message itself comes from the channel's composer ([`crate::render::compose`]): the
//!   dispatcher loads what it is about (the update, the standalone record) and sends the parts
//!   it gets back; a permanent composition error rejects the delivery, a transient one retries it.
//! - On start-up, deliveries left in flight by a crash are due again (at-least-once, bounded by
//!   what was in flight). On shutdown, workers stop claiming and finish their in-flight sends.
//! - Idle, the expander and the workers wait to be woken, or a poll interval ([`Polls`]). On
//!   PostgreSQL another node may queue the work: a LISTEN/NOTIFY listener
//!   ([`crate::pg::wake::Wakeup`]) wakes them when any node inserts deliveries or opens a
//!   broadcast; the poll stays as the fallback (a notification sent while the listener is
//!   disconnected is lost). On sled only this process writes, and [`Dispatcher::kick`] wakes it.
//! - On PostgreSQL a claim is a lease: a claim whose lease ran out while it waited (the rate
//!   limit, a permit) is not sent and is dropped unrecorded (another node may hold it now), and
//!   the progress of a multi-part message extends the lease.

pub mod metrics;
mod rate;

pub use crate::clock::Clock;
pub use metrics::Metrics;
pub use rate::TokenBucket;

use crate::adapters::{Adapter, OutMessage, Outcome, Recipient};
use crate::channels::{Audience, Channel};
use crate::domain::standalone::{StandaloneKind, STANDALONE_BASE};
use crate::domain::ExpandTarget;
use crate::domain::{Claim, Contact, Delivery, DeliveryState, Incident, Lease, Target, Update};
use crate::render::compose::StaffDetail;
use crate::render::{
    ComposeError, Composed, Composer, Outlet, Request, Settings, Source, Templates,
};
use crate::store::port::{Incidents, Outbox, SignUps, Standalones, Subscribers, Threads};
use crate::store::{Store, StoreError};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{watch, Notify, Semaphore};
use tokio::task::JoinSet;

/// Subscribers expanded per step (one durable write each).
pub const EXPAND_BATCH: usize = 1000;
/// The longest a provider's Retry-After is honoured; longer values are clamped.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// How long the idle expander and channel workers wait before looking again without being woken,
/// and how soon the PostgreSQL listener reconnects after losing its connection.
#[derive(Debug, Clone, Copy)]
pub struct Polls {
    /// The expander's longest idle wait.
    pub expander: Duration,
    /// A channel worker's longest idle wait (shorter when a delivery comes due sooner).
    pub worker: Duration,
    /// The wait before the LISTEN connection is opened again after it was lost.
    pub reconnect: Duration,
}

impl Default for Polls {
    fn default() -> Self {
        Polls {
            expander: Duration::from_secs(5),
            worker: Duration::from_secs(60),
            reconnect: Duration::from_secs(1),
        }
    }
}

/// One channel at run time.
struct ChannelRt {
    channel: Channel,
    adapter: Adapter,
    notify: Notify,
    bucket: tokio::sync::Mutex<TokenBucket>,
    /// On PostgreSQL: tokens taken from the bucket every node shares (see [`pace`]).
    shared: tokio::sync::Mutex<Granted>,
    /// Composes its messages, with its cache of those the same for every recipient.
    composer: Composer,
}

/// An update and its incident, shared by every delivery of a broadcast.
type Shared = Arc<(Incident, Update)>;

struct Inner {
    store: Store,
    channels: HashMap<String, Arc<ChannelRt>>,
    expander: Notify,
    clock: Clock,
    metrics: Arc<Metrics>,
    /// (incident, seq) → the incident summary and the update, for rendering.
    cache: Mutex<HashMap<(ulid::Ulid, u32), Shared>>,
    polls: Polls,
    /// On PostgreSQL: the listener whose notifications wake the expander and the workers.
    wake: Option<Arc<crate::pg::wake::Wakeup>>,
}

/// Handle to the running dispatcher.
#[derive(Clone)]
pub struct Dispatcher {
    inner: Arc<Inner>,
}

/// The tasks to await on shutdown.
pub struct Running {
    tasks: JoinSet<()>,
}

impl Running {
    /// Waits until every worker has finished its in-flight sends.
    pub async fn finished(mut self) {
        while self.tasks.join_next().await.is_some() {}
    }
}

impl Dispatcher {
    /// Builds every channel's adapter and starts the expander and the channel workers. They stop
    /// claiming when `shutdown` turns true.
    pub async fn start(
        store: Store,
        templates: Arc<Templates>,
        settings: Arc<Settings>,
        channels: Vec<Channel>,
        data_dir: &Path,
        clock: Clock,
        shutdown: watch::Receiver<bool>,
    ) -> anyhow::Result<(Dispatcher, Running)> {
        let mut with_adapters = Vec::new();
        for ch in channels {
            let adapter = Adapter::build(&ch, data_dir, clock)?;
            // Best effort, bounded (start-up must not wait on a platform that is down): one that
            // does not answer in time keeps its kind's default rule.
            let bound = ch.send_timeout.min(Duration::from_secs(5));
            let _ = tokio::time::timeout(bound, adapter.warm_up()).await;
            with_adapters.push((ch, adapter));
        }
        Self::start_clocked(store, templates, settings, with_adapters, clock, shutdown).await
    }

    /// Starts with ready adapters (tests use scripted ones) on the wall clock.
    pub async fn start_with(
        store: Store,
        templates: Arc<Templates>,
        settings: Arc<Settings>,
        channels: Vec<(Channel, Adapter)>,
        shutdown: watch::Receiver<bool>,
    ) -> anyhow::Result<(Dispatcher, Running)> {
        Self::start_clocked(store, templates, settings, channels, Clock::new(), shutdown).await
    }

    async fn start_clocked(
        store: Store,
        templates: Arc<Templates>,
        settings: Arc<Settings>,
        channels: Vec<(Channel, Adapter)>,
        clock: Clock,
        shutdown: watch::Receiver<bool>,
    ) -> anyhow::Result<(Dispatcher, Running)> {
        Self::start_polled(
            store,
            templates,
            settings,
            channels,
            clock,
            Polls::default(),
            shutdown,
        )
        .await
    }

    /// Starts with ready adapters, `clock` and idle waits of `polls` (tests make the polls long,
    /// so that only a wake-up can start a send in time).
    pub async fn start_polled(
        store: Store,
        templates: Arc<Templates>,
        settings: Arc<Settings>,
        channels: Vec<(Channel, Adapter)>,
        clock: Clock,
        polls: Polls,
        shutdown: watch::Receiver<bool>,
    ) -> anyhow::Result<(Dispatcher, Running)> {
        let mut map = HashMap::new();
        for (ch, adapter) in channels {
            map.insert(
                ch.name.clone(),
                Arc::new(ChannelRt {
                    bucket: tokio::sync::Mutex::new(TokenBucket::new(ch.rate)),
                    shared: tokio::sync::Mutex::new(Granted::default()),
                    composer: Composer::new(
                        templates.clone(),
                        settings.clone(),
                        outlet(&ch, &settings),
                    ),
                    channel: ch,
                    adapter,
                    notify: Notify::new(),
                }),
            );
        }
        let recovered = store.recover_in_flight(clock.now()).await?;
        if recovered > 0 {
            tracing::warn!(
                deliveries = recovered,
                "deliveries were in flight when crier stopped; sending them again (a provider may see these twice)"
            );
        }
        let metrics = Arc::new(Metrics::default());
        let wake = match &store {
            Store::Pg(p) => {
                metrics.set_pg(p.pg().clone());
                Some(Arc::new(crate::pg::wake::Wakeup::listen(
                    p.pg().clone(),
                    polls.reconnect,
                )))
            }
            Store::Sled(_) => None,
        };
        let inner = Arc::new(Inner {
            store,
            channels: map,
            expander: Notify::new(),
            clock,
            metrics,
            cache: Mutex::new(HashMap::new()),
            polls,
            wake,
        });
        let mut tasks = JoinSet::new();
        if let Some(wake) = &inner.wake {
            tasks.spawn(forward_wakeups(
                inner.clone(),
                wake.clone(),
                shutdown.clone(),
            ));
        }
        tasks.spawn(expander(inner.clone(), shutdown.clone()));
        for ch in inner.channels.values() {
            tasks.spawn(channel_worker(inner.clone(), ch.clone(), shutdown.clone()));
        }
        Ok((Dispatcher { inner }, Running { tasks }))
    }

    /// Wakes the expander: a broadcast was created.
    pub fn kick(&self) {
        self.inner.expander.notify_one();
    }

    /// Wakes a channel's worker: deliveries were requeued.
    pub fn kick_channel(&self, name: &str) {
        if let Some(ch) = self.inner.channels.get(name) {
            ch.notify.notify_one();
        }
    }

    /// The channels a published update is broadcast on: (name, audience is subscribers).
    pub fn broadcast_targets(&self) -> Vec<(String, bool)> {
        let mut v: Vec<(String, bool)> = self
            .inner
            .channels
            .values()
            .map(|c| {
                (
                    c.channel.name.clone(),
                    c.channel.audience == Audience::Subscribers,
                )
            })
            .collect();
        v.sort();
        v
    }

    /// For a Twilio channel with a status callback: its auth token and the callback URL, which
    /// together verify `X-Twilio-Signature`.
    pub fn twilio_callback(&self, channel: &str) -> Option<(String, String)> {
        let ch = &self.inner.channels.get(channel)?.channel;
        let t = ch.settings.get::<crate::adapters::twilio::TwilioConfig>()?;
        Some((
            secrecy::ExposeSecret::expose_secret(&t.auth_token).to_owned(),
            t.status_callback.clone()?,
        ))
    }

    /// The first active channel of `kind`, by name.
    pub fn first_channel_of(&self, kind: crate::channels::Kind) -> Option<String> {
        let mut names: Vec<&String> = self
            .inner
            .channels
            .values()
            .filter(|c| c.channel.kind == kind)
            .map(|c| &c.channel.name)
            .collect();
        names.sort();
        names.first().map(|n| (*n).clone())
    }

    /// A Twilio channel's auth token (it verifies `X-Twilio-Signature` on inbound messages).
    pub fn twilio_auth_token(&self, channel: &str) -> Option<String> {
        let ch = &self.inner.channels.get(channel)?.channel;
        let t = ch.settings.get::<crate::adapters::twilio::TwilioConfig>()?;
        Some(secrecy::ExposeSecret::expose_secret(&t.auth_token).to_owned())
    }

    /// Sends one message outside any broadcast (a sign-up's confirmation) through a channel's
    /// adapter, under its send timeout and its rate; `None` if the channel is not active.
    pub async fn send_direct(&self, channel: &str, msg: &OutMessage) -> Option<Outcome> {
        let ch = self.inner.channels.get(channel)?;
        let wait = pace(&self.inner, ch).await;
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        Some(ch.adapter.send(msg).await)
    }

    /// An active channel's configuration.
    pub fn channel(&self, name: &str) -> Option<Channel> {
        self.inner.channels.get(name).map(|c| c.channel.clone())
    }

    /// Whether channel `name` says `approval = "required"`, read in place: the approval check
    /// runs on every publishing write and needs this one flag, not a copy of the channel.
    pub fn approval_required(&self, name: &str) -> bool {
        self.inner
            .channels
            .get(name)
            .is_some_and(|c| c.channel.approval_required)
    }

    /// The dispatcher's "now" (wall-clock UTC advanced by tokio's clock, so paused time in tests
    /// moves it).
    pub fn now(&self) -> DateTime<Utc> {
        self.inner.clock.now()
    }

    /// The clock itself, for the parts of the server that share it (sessions, TOTP).
    pub fn clock(&self) -> Clock {
        self.inner.clock
    }

    pub fn metrics(&self) -> Arc<Metrics> {
        self.inner.metrics.clone()
    }

    /// On PostgreSQL, the backend pid of the connection listening for wake-ups while it
    /// listens; `None` while it reconnects, and always on sled.
    pub fn listening_pid(&self) -> Option<i32> {
        self.inner.wake.as_ref().and_then(|w| w.listening_pid())
    }
}

/// Turns each notification of the PostgreSQL listener (another node, or this one, inserted
/// deliveries or opened a broadcast; or the listener reconnected and work may have come
/// meanwhile) into a wake-up of the expander and every channel worker. A wake-up that finds
/// nothing costs one query; one that comes while a task is busy makes its next wait return at
/// once.
async fn forward_wakeups(
    inner: Arc<Inner>,
    wake: Arc<crate::pg::wake::Wakeup>,
    mut shutdown: watch::Receiver<bool>,
) {
    // A shutdown sender dropped without a shutdown leaves nothing to watch (and `changed` would
    // return at once, every time).
    let mut watching = true;
    loop {
        if *shutdown.borrow() {
            return;
        }
        tokio::select! {
            _ = wake.notified() => {
                inner.expander.notify_one();
                for ch in inner.channels.values() {
                    ch.notify.notify_one();
                }
            }
            changed = shutdown.changed(), if watching => watching = changed.is_ok(),
        }
    }
}

async fn expander(inner: Arc<Inner>, mut shutdown: watch::Receiver<bool>) {
    loop {
        if *shutdown.borrow() {
            return;
        }
        if let Err(e) = expand_all(&inner, &shutdown).await {
            tracing::error!(error = %e, "expanding broadcasts failed; retrying shortly");
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        tokio::select! {
            _ = inner.expander.notified() => {}
            _ = tokio::time::sleep(inner.polls.expander) => {}
            _ = shutdown.changed() => {}
        }
    }
}

async fn expand_all(inner: &Inner, shutdown: &watch::Receiver<bool>) -> Result<(), StoreError> {
    let mut open = inner.store.open_broadcasts().await?;
    while !open.is_empty() && !*shutdown.borrow() {
        open = expand_round(inner, open).await?;
    }
    Ok(())
}

/// Expands one batch of each of `open` that can be expanded now, and returns those with more to
/// expand, reloaded with their advanced cursors. Rounds take the broadcasts in turn, so a
/// channel whose broadcast is queued behind another channel's million-subscriber expansion
/// starts sending after one batch of it, not after all of it. Broadcasts that cannot be
/// expanded now (a draft, an inactive channel) drop out until the expander's next pass.
async fn expand_round(
    inner: &Inner,
    open: Vec<crate::domain::Broadcast>,
) -> Result<Vec<crate::domain::Broadcast>, StoreError> {
    let mut more = Vec::with_capacity(open.len());
    for b in open {
        let Some(ch) = inner.channels.get(&b.channel) else {
            continue; // the channel is not active now; its broadcast waits for it
        };
        let components = if b.seq >= STANDALONE_BASE {
            match inner.store.standalone(b.incident_id, b.seq).await? {
                None => continue, // its record was not written (a crash): it is posted again
                Some(m) => match m.kind {
                    // Not about an incident (an approval's note's origin is the approval).
                    StandaloneKind::Notice { .. } | StandaloneKind::StaffNote { .. } => Vec::new(),
                    _ => {
                        inner
                            .store
                            .incident_summary(b.incident_id)
                            .await?
                            .components
                    }
                },
            }
        } else {
            if inner
                .store
                .published_update(b.incident_id, b.seq)
                .await?
                .is_none()
            {
                continue; // a draft: published later, or never
            }
            inner
                .store
                .incident_summary(b.incident_id)
                .await?
                .components
        };
        let reaches = |s: &crate::domain::Subscriber| ch.channel.reaches(&s.contact);
        let target = ExpandTarget { reaches: &reaches };
        let step = inner
            .store
            .expand(&b, &components, &target, EXPAND_BATCH, inner.clock.now())
            .await?;
        if step.created > 0 {
            ch.notify.notify_one();
        }
        if !step.done {
            // Reload to continue from the persisted cursor.
            more.extend(
                inner
                    .store
                    .broadcast(b.incident_id, b.seq, &b.channel)
                    .await?,
            );
        }
    }
    Ok(more)
}

async fn channel_worker(
    inner: Arc<Inner>,
    ch: Arc<ChannelRt>,
    mut shutdown: watch::Receiver<bool>,
) {
    let concurrency = ch.channel.concurrency;
    let sem = Arc::new(Semaphore::new(concurrency));
    // Each claim scans the due-index past the entries already in flight, so while sends are
    // under way the worker waits until a batch of slots is free and claims them in one scan:
    // at most `concurrency / batch` skipped entries per claimed delivery, not `concurrency`.
    let batch_slots = u32::try_from((concurrency / 8).clamp(1, 32)).unwrap_or(1);
    let mut tasks = JoinSet::new();
    loop {
        while tasks.try_join_next().is_some() {}
        let busy = sem.available_permits() < concurrency;
        let want = if busy { batch_slots } else { 1 };
        let permits = tokio::select! {
            p = sem.clone().acquire_many_owned(want) => match p { Ok(p) => p, Err(_) => break },
            _ = shutdown.changed() => break,
        };
        if *shutdown.borrow() {
            break;
        }
        let mut permits = permits;
        let extra = u32::try_from(sem.available_permits()).unwrap_or(0);
        if extra > 0 {
            if let Ok(more) = sem.clone().try_acquire_many_owned(extra) {
                permits.merge(more);
            }
        }
        let now = inner.clock.now();
        let batch = match inner
            .store
            .claim_due(&ch.channel.name, now, permits.num_permits())
            .await
        {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(channel = %ch.channel.name, error = %e, "claiming deliveries failed");
                drop(permits);
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if batch.is_empty() {
            drop(permits);
            let idle = inner.polls.worker;
            let wait = match inner.store.next_due(&ch.channel.name).await {
                Ok(Some(t)) => (t - now).to_std().unwrap_or(Duration::ZERO).min(idle),
                _ => idle,
            };
            tokio::select! {
                _ = ch.notify.notified() => {}
                _ = tokio::time::sleep(wait.max(Duration::from_millis(1))) => {}
                _ = shutdown.changed() => {}
            }
            continue;
        }
        // Each claim counts as held (`/metrics`) until its send task ends or, unsent, it drops.
        let batch: Vec<_> = batch
            .into_iter()
            .map(|c| (c, inner.metrics.hold_claim()))
            .collect();
        for (claim, held) in batch {
            // One permit per send; the batch never holds more deliveries than permits. The
            // unused rest go back when `permits` drops after the loop.
            let Some(p) = permits.split(1) else { break };
            let wait = pace(&inner, &ch).await;
            if !wait.is_zero() {
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    // Shutting down: the rest of the batch is not sent. A claim writes nothing,
                    // so it is due again at the next start; the loop's check then ends it.
                    _ = shutdown.changed() => break,
                }
            }
            let (inner, ch) = (inner.clone(), ch.clone());
            tasks.spawn(async move {
                // It may have waited in the rate limiter: `send_one` checks its lease first.
                send_one(&inner, &ch, claim).await;
                drop(held);
                // Only now, with the outcome durable: a delivery the provider accepted but whose
                // outcome is not yet on disk is resent after a crash, so releasing the slot on
                // the provider's answer would expose more than `concurrency` deliveries to a
                // duplicate (the crash e2e test saw 49 with 32 slots when it did).
                drop(p);
            });
        }
    }
    // Graceful shutdown: no more claims; let in-flight sends finish and be recorded.
    while tasks.join_next().await.is_some() {}
}

/// Tokens a node took from the bucket all nodes share (PostgreSQL), not yet spent.
#[derive(Debug, Default)]
struct Granted {
    tokens: u32,
    /// When they may be spent (the shared bucket may have been short). A second after it the
    /// rest are dropped ([`GRANT_KEPT`]).
    ready: Option<tokio::time::Instant>,
}

/// How long past its ready time a grant's unspent tokens are kept: tokens held through a pause
/// would make a burst on top of the one the shared bucket allows meanwhile.
const GRANT_KEPT: Duration = Duration::from_secs(1);

/// How long the next send of `ch` waits for its rate: the node's own bucket, and on PostgreSQL
/// also the channel's bucket that every node shares (`PgStore::take_rate`), from which a node
/// takes a tenth of a second's tokens at a time (at least 1, at most 64 and the bucket's size).
/// If the database cannot be asked, the node's own bucket alone paces it, and the warning says
/// so.
async fn pace(inner: &Inner, ch: &ChannelRt) -> Duration {
    let local = ch.bucket.lock().await.take();
    let Store::Pg(p) = &inner.store else {
        return local;
    };
    let mut granted = ch.shared.lock().await;
    let now = tokio::time::Instant::now();
    if let Some(ready) = granted
        .ready
        .filter(|r| granted.tokens > 0 && now < *r + GRANT_KEPT)
    {
        granted.tokens -= 1;
        return local.max(ready.saturating_duration_since(now));
    }
    let rate = ch.channel.rate;
    let k = grant_size(rate);
    match p
        .take_rate(&ch.channel.name, rate, k, inner.clock.now())
        .await
    {
        Ok(wait) => {
            *granted = Granted {
                tokens: k - 1,
                ready: Some(now + wait),
            };
            local.max(wait)
        }
        Err(e) => {
            tracing::warn!(channel = %ch.channel.name, error = %e, "the channel's rate shared by all nodes could not be read; this node paces it alone for this send");
            local
        }
    }
}

/// Tokens taken from the shared bucket at a time: a tenth of a second's worth, at least 1 and
/// at most 64 or the bucket's size.
fn grant_size(rate: crate::channels::Rate) -> u32 {
    let tenth = (rate.per_second() / 10.0).floor();
    let most = rate.n.clamp(1, 64);
    if tenth.is_finite() && tenth >= 1.0 {
        (tenth as u32).min(most)
    } else {
        1
    }
}

/// Delay before retry number `attempt` (1-based): the schedule's entry ±20 % jitter, or the
/// provider's Retry-After (clamped) if that is later. `None` when the schedule is exhausted.
pub fn retry_delay(
    schedule: &[Duration],
    attempt: u32,
    after: Option<Duration>,
    jitter: f64,
) -> Option<Duration> {
    let base = *schedule.get(usize::try_from(attempt).ok()?.checked_sub(1)?)?;
    let factor = 1.0 + 0.2 * jitter.clamp(-1.0, 1.0);
    let jittered = base.mul_f64(factor);
    Some(match after {
        Some(a) => jittered.max(a.min(MAX_RETRY_AFTER)),
        None => jittered,
    })
}

/// A jitter value in [-1, 1] from the OS's randomness (or 0 if none is available).
fn jitter() -> f64 {
    let mut b = [0u8; 4];
    if getrandom::fill(&mut b).is_err() {
        return 0.0;
    }
    f64::from(u32::from_le_bytes(b)) / f64::from(u32::MAX) * 2.0 - 1.0
}

/// What composition reads of a channel's configuration.
fn outlet(ch: &Channel, settings: &Settings) -> Outlet {
    Outlet {
        own_templates: ch.templates.as_ref().map(|_| ch.name.clone()),
        platform: ch.platform,
        webhook: ch.kind == crate::channels::Kind::new(&crate::adapters::webhook::KIND),
        locale: ch.locale.clone(),
        timezone: ch.timezone.unwrap_or(settings.timezone),
        policy: ch.policy(None),
    }
}

/// Loads what a delivery's message is made from and has the channel's composer make it: one
/// outgoing message per part (several when a thread is needed).
async fn prepare(
    inner: &Inner,
    ch: &ChannelRt,
    d: &Delivery,
) -> Result<Vec<OutMessage>, ComposeError> {
    let composed = if d.seq >= STANDALONE_BASE {
        compose_standalone(inner, ch, d).await?
    } else {
        let pair = published(inner, d).await?;
        let source = Source::Update {
            incident: &pair.0,
            update: &pair.1,
        };
        compose(ch, d, source)?
    };
    Ok(out_messages(d, &composed))
}

fn compose(ch: &ChannelRt, d: &Delivery, source: Source<'_>) -> Result<Composed, ComposeError> {
    let request = Request {
        message: (d.incident_id, d.seq),
        source,
        target: &d.target,
    };
    ch.composer.compose(&request, || channel_rule(ch))
}

/// The incident (as the public sees it) and the published update a delivery announces, from
/// the cache shared by the broadcast's deliveries.
async fn published(inner: &Inner, d: &Delivery) -> Result<Shared, ComposeError> {
    let key = (d.incident_id, d.seq);
    if let Some(p) = inner.cache.lock().ok().and_then(|c| c.get(&key).cloned()) {
        return Ok(p);
    }
    let incident = inner
        .store
        .incident_summary(d.incident_id)
        .await
        .map_err(ComposeError::unavailable)?;
    // Messages show the incident as the public sees it: a draft written since this update must
    // not change the status or impact they state.
    let incident = incident.public_view().unwrap_or(incident);
    let update = inner
        .store
        .published_update(d.incident_id, d.seq)
        .await
        .map_err(ComposeError::unavailable)?
        .ok_or(ComposeError::missing("the update is not published"))?;
    let p = Arc::new((incident, update));
    if let Ok(mut c) = inner.cache.lock() {
        if c.len() > 1024 {
            c.clear();
        }
        c.insert(key, p.clone());
    }
    Ok(p)
}

/// A standalone message's delivery: a notice firing, a staff reminder, a maintenance reminder.
async fn compose_standalone(
    inner: &Inner,
    ch: &ChannelRt,
    d: &Delivery,
) -> Result<Composed, ComposeError> {
    let msg = inner
        .store
        .standalone(d.incident_id, d.seq)
        .await
        .map_err(ComposeError::unavailable)?
        .ok_or(ComposeError::missing("the message record is missing"))?;
    match &msg.kind {
        StandaloneKind::Notice {
            subject,
            body,
            scheduled_for,
            ..
        } => {
            let source = Source::Notice {
                origin: msg.origin,
                scheduled_for: *scheduled_for,
                subject,
                body,
            };
            compose(ch, d, source)
        }
        StandaloneKind::AlertDetail { at, subject, body }
        | StandaloneKind::StaffNote { at, subject, body } => {
            let detail = match &msg.kind {
                StandaloneKind::StaffNote { .. } => StaffDetail::Approval,
                _ => StaffDetail::Alert,
            };
            let source = Source::Staff {
                detail,
                origin: msg.origin,
                at: *at,
                subject,
                body,
            };
            compose(ch, d, source)
        }
        StandaloneKind::Reminder { due } | StandaloneKind::MaintenanceReminder { starts: due } => {
            let (incident, updates) = inner
                .store
                .incident(d.incident_id)
                .await
                .map_err(ComposeError::unavailable)?;
            let source = Source::Reminder {
                incident: &incident,
                updates: &updates,
                due: *due,
                maintenance: matches!(msg.kind, StandaloneKind::MaintenanceReminder { .. }),
                now: inner.clock.now(),
            };
            compose(ch, d, source)
        }
    }
}

/// One outgoing message per fitted part.
fn out_messages(d: &Delivery, composed: &Composed) -> Vec<OutMessage> {
    let msg = &composed.message;
    let recipient = match &d.target {
        Target::Subscriber {
            contact: Contact::Email(a),
            ..
        } => Recipient::Email(a.clone()),
        Target::Subscriber {
            contact: Contact::Phone(p),
            ..
        } => Recipient::Phone(p.to_string()),
        Target::Endpoint => Recipient::Endpoint,
    };
    let n = msg.parts.len();
    msg.parts
        .iter()
        .enumerate()
        .map(|(i, text)| OutMessage {
            idempotency_key: if n == 1 {
                d.idempotency_key.clone()
            } else {
                format!("{}-{}", d.idempotency_key, i + 1)
            },
            recipient: recipient.clone(),
            locale: composed.locale.to_string(),
            subject: msg.subject.clone(),
            text: text.clone(),
            html: msg.html.clone(),
            unsubscribe_url: composed.unsubscribe_url.clone(),
            document: msg.document.clone(),
            thread: None,
        })
        .collect()
}

/// Whether a claim's lease has run out at `now` (another node may have claimed the delivery
/// since). A lease without an expiry (sled's) never runs out.
fn lease_expired(lease: &Lease, now: DateTime<Utc>) -> bool {
    lease.until.is_some_and(|until| until <= now)
}

/// Records a delivery's outcome on its claim; an outcome refused because the claim lost its
/// lease is counted (`/metrics`). Returns whether it was recorded.
async fn record_outcome(inner: &Inner, ch: &ChannelRt, d: &Delivery, lease: Lease) -> bool {
    let mut wait = RECORD_RETRY_FIRST;
    let mut waited = Duration::ZERO;
    loop {
        let e = match inner.store.record(d, lease).await {
            Ok(()) => return true,
            Err(e) => e,
        };
        // A leased claim (a database that may be restarting or failing over) whose outcome
        // could not be written is tried again while the lease holds: the send happened, and
        // an outcome left unwritten would have the delivery sent again once the lease runs
        // out. The fence makes a repeat harmless, and a write that did land before its answer
        // was lost is taken as done (see `Outbox::record`). sled's claims have no lease: its
        // errors are the disk's, and the delivery is resumed at start-up as before.
        let transient = matches!(e, StoreError::Backend(_));
        let retry = transient
            && waited < RECORD_RETRY_FOR
            && lease.until.is_some()
            && !lease_expired(
                &lease,
                inner.clock.now() + chrono::Duration::milliseconds(100),
            );
        if !retry {
            if matches!(e, StoreError::Conflict(_)) {
                inner.metrics.note_lease_lost();
            }
            tracing::error!(channel = %ch.channel.name, error = %e, "recording a delivery outcome failed");
            return false;
        }
        tracing::warn!(channel = %ch.channel.name, delivery = %d.id, error = %e, "recording a delivery outcome failed; trying again while the claim's lease holds");
        tokio::time::sleep(wait).await;
        waited += wait;
        wait = (wait * 2).min(RECORD_RETRY_MAX);
    }
}

/// How an outcome the database could not take is retried: first after 100 ms, doubling to 2 s,
/// for at most 30 s (a restart or a failover) and never past the claim's lease.
const RECORD_RETRY_FIRST: Duration = Duration::from_millis(100);
const RECORD_RETRY_MAX: Duration = Duration::from_secs(2);
const RECORD_RETRY_FOR: Duration = Duration::from_secs(30);

async fn send_one(inner: &Inner, ch: &ChannelRt, claim: Claim) {
    let Claim {
        delivery: mut d,
        mut lease,
    } = claim;
    // It may have waited (the rate limit, a permit) past its lease: then another node may hold
    // the delivery now. Not sent, nothing recorded: the row is not this claim's any more.
    if lease_expired(&lease, inner.clock.now()) {
        inner.metrics.note_lease_expired();
        tracing::warn!(channel = %ch.channel.name, delivery = %d.id, "the claim's lease ran out before its send; not sent, left to the next claim");
        return;
    }
    let started = tokio::time::Instant::now();
    // Someone who unsubscribed after the fan-out was expanded is not messaged.
    if let Target::Subscriber { id, .. } = &d.target {
        // A number that answered STOP (or that a provider reported opted out) is not tried.
        // (A read that fails stops nothing: the send goes ahead, as it would have without it.)
        let standing = inner.store.subscriber_standing(*id).await;
        let gone = matches!(standing, Ok(None));
        let stopped = matches!(standing, Ok(Some(false)));
        if gone || stopped {
            d.state = DeliveryState::Rejected;
            d.last_error = Some(
                if gone {
                    "unsubscribed before it was sent"
                } else {
                    "the subscriber opted out (STOP) before it was sent"
                }
                .into(),
            );
            d.updated_at = inner.clock.now();
            inner
                .metrics
                .observe(&ch.channel.name, "rejected", started.elapsed());
            record_outcome(inner, ch, &d, lease).await;
            return;
        }
    }
    let outcome = match prepare(inner, ch, &d).await {
        Ok(msgs) => {
            let mut last = Outcome::Delivered { receipt: None };
            let skip = usize::try_from(d.parts_done).unwrap_or(0);
            let total = msgs.len();
            for (i, m) in msgs.iter().enumerate().skip(skip) {
                if i > skip && lease_expired(&lease, inner.clock.now()) {
                    // Ran out between parts: the next claim resumes after the parts recorded.
                    inner.metrics.note_lease_expired();
                    tracing::warn!(channel = %ch.channel.name, delivery = %d.id, "the claim's lease ran out between parts; the rest is left to the next claim");
                    return;
                }
                last = send_part(inner, ch, &d, m).await;
                if !matches!(last, Outcome::Delivered { .. }) {
                    break;
                }
                if i + 1 < total {
                    d.parts_done = u32::try_from(i + 1).unwrap_or(u32::MAX);
                    match inner.store.record_progress(&d, lease).await {
                        // On PostgreSQL the lease is extended: the rest is sent on the new one.
                        Ok(extended) => lease = extended,
                        Err(StoreError::Conflict(e)) => {
                            // Another claim holds it now: this one reports nothing more.
                            inner.metrics.note_lease_lost();
                            tracing::error!(channel = %ch.channel.name, error = %e, "recording thread progress was refused: the claim lost its lease; the rest is left to the claim that holds it");
                            return;
                        }
                        Err(e) => {
                            tracing::error!(error = %e, "recording thread progress failed");
                        }
                    }
                }
            }
            last
        }
        Err(e @ ComposeError::Permanent(_)) => Outcome::Rejected {
            reason: e.to_string(),
        },
        Err(e @ ComposeError::Transient(_)) => Outcome::Retry {
            reason: format!("cannot render the message: {e}"),
            after: None,
        },
    };
    // Twilio error 21610: the number answered STOP to the sender. Crier marks it opted out so
    // that nothing more is tried until it answers START.
    if let (Outcome::Rejected { reason }, Target::Subscriber { id, .. }) = (&outcome, &d.target) {
        if crate::adapters::twilio::is_opted_out(reason) {
            match inner.store.opt_out_id(*id).await {
                Ok(_) => {
                    tracing::info!(subscriber = %id, "Twilio says the number opted out (21610); marked opted out")
                }
                Err(e) => tracing::error!(error = %e, "marking an opted-out number failed"),
            }
        }
    }
    let now = inner.clock.now();
    d.updated_at = now;
    let label = apply_outcome(&mut d, outcome, &ch.channel.retry, now);
    inner
        .metrics
        .observe(&ch.channel.name, label, started.elapsed());
    if matches!(label, "retry" | "dead") {
        if let Some(reason) = &d.last_error {
            inner.metrics.note_error(&ch.channel.name, reason, now);
        }
    }
    if let (Some(receipt), Some(_)) = (&d.receipt, ch.channel.status_callback()) {
        if let Err(e) = inner.store.index_receipt(receipt, &d).await {
            tracing::error!(error = %e, "indexing a receipt failed; its status callback will be ignored");
        }
    }
    if !record_outcome(inner, ch, &d, lease).await {
        return;
    }
    if d.state == DeliveryState::Pending {
        // A retry is a new due time the worker has not seen: while this delivery was in flight
        // `next_due` saw it only as a claim (none on sled, its lease's expiry on PostgreSQL), so
        // an otherwise idle worker sleeps its full idle wait.
        // Wake it to sleep until the retry instead.
        ch.notify.notify_one();
    }
}

/// The channel's length rule: the one its platform announced (a Mastodon instance's limits), or
/// its kind's default.
fn channel_rule(ch: &ChannelRt) -> crate::render::rules::ChannelRule {
    ch.adapter
        .rule()
        .unwrap_or_else(|| ch.channel.platform.rule(ch.channel.sms_max_segments))
}

/// Sends one part of a delivery, under the channel's send timeout. On a social channel that
/// threads (its own account, not subscribers), the part replies to the incident's latest post
/// there, and a delivered part becomes the thread's latest post (its first, the root): so part 2
/// of a long update replies to part 1, and the next update to the last part of this one.
async fn send_part(inner: &Inner, ch: &ChannelRt, d: &Delivery, m: &OutMessage) -> Outcome {
    // A recurring notice's firings are posts of their own, not replies to each other; so are
    // notes about approvals.
    let notice = d.seq >= STANDALONE_BASE
        && matches!(
            inner.store.standalone(d.incident_id, d.seq).await,
            Ok(Some(crate::domain::standalone::Standalone {
                kind: StandaloneKind::Notice { .. } | StandaloneKind::StaffNote { .. },
                ..
            }))
        );
    let threaded =
        ch.channel.kind.supports_threads() && matches!(d.target, Target::Endpoint) && !notice;
    let mut msg = std::borrow::Cow::Borrowed(m);
    if threaded {
        match inner.store.thread(d.incident_id, &ch.channel.name).await {
            Ok(Some(t)) => {
                msg.to_mut().thread = Some(crate::adapters::ThreadRef {
                    root: t.root,
                    parent: t.last,
                })
            }
            Ok(None) => {}
            Err(e) => {
                return Outcome::retry(format!("cannot read the incident's thread: {e}"));
            }
        }
    }
    // The adapter bounds the send by the channel's send timeout.
    let outcome = ch.adapter.send(&msg).await;
    if let (
        true,
        Outcome::Delivered {
            receipt: Some(post),
        },
    ) = (threaded, &outcome)
    {
        if let Err(e) = inner
            .store
            .extend_thread(d.incident_id, &ch.channel.name, post)
            .await
        {
            tracing::error!(channel = %ch.channel.name, error = %e, "recording the thread's latest post failed; the next update may start a new thread");
        }
    }
    outcome
}

/// Applies an adapter's outcome to a delivery; returns the metrics label.
pub fn apply_outcome(
    d: &mut Delivery,
    outcome: Outcome,
    schedule: &[Duration],
    now: DateTime<Utc>,
) -> &'static str {
    match outcome {
        Outcome::Delivered { receipt } => {
            d.state = DeliveryState::Delivered;
            d.receipt = receipt;
            d.last_error = None;
            "delivered"
        }
        Outcome::Rejected { reason } => {
            d.state = DeliveryState::Rejected;
            d.last_error = Some(reason);
            "rejected"
        }
        Outcome::Retry { reason, after } => {
            d.last_error = Some(reason);
            match retry_delay(schedule, d.attempts, after, jitter()) {
                Some(delay) => {
                    d.state = DeliveryState::Pending;
                    d.next_at = now + chrono::Duration::from_std(delay).unwrap_or_default();
                    "retry"
                }
                None => {
                    d.state = DeliveryState::Dead;
                    "dead"
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Target;
    use ulid::Ulid;

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn retry_delay_follows_the_schedule_with_bounded_jitter() {
        let s = [secs(10), secs(60), secs(600)];
        assert_eq!(retry_delay(&s, 1, None, 0.0), Some(secs(10)));
        assert_eq!(retry_delay(&s, 2, None, 0.0), Some(secs(60)));
        assert_eq!(retry_delay(&s, 3, None, 1.0), Some(secs(720)));
        assert_eq!(retry_delay(&s, 3, None, -1.0), Some(secs(480)));
        assert_eq!(
            retry_delay(&s, 4, None, 0.0),
            None,
            "schedule exhausted: dead"
        );
        assert_eq!(retry_delay(&s, 0, None, 0.0), None);
    }

    #[test]
    fn retry_after_wins_when_later_and_is_clamped() {
        let s = [secs(10), secs(60)];
        assert_eq!(retry_delay(&s, 1, Some(secs(30)), 0.0), Some(secs(30)));
        assert_eq!(retry_delay(&s, 1, Some(secs(2)), 0.0), Some(secs(10)));
        assert_eq!(
            retry_delay(&s, 1, Some(secs(86_400)), 0.0),
            Some(MAX_RETRY_AFTER)
        );
        // Even a Retry-After does not extend the schedule past its end.
        assert_eq!(retry_delay(&s, 3, Some(secs(5)), 0.0), None);
    }

    fn delivery(attempts: u32) -> Delivery {
        let now = Utc::now();
        Delivery {
            id: Ulid::new(),
            incident_id: Ulid::new(),
            seq: 1,
            update_id: Ulid::new(),
            channel: "sms".into(),
            target: Target::Endpoint,
            idempotency_key: "k".into(),
            state: DeliveryState::InFlight,
            attempts,
            parts_done: 0,
            next_at: now,
            last_error: None,
            receipt: None,
            provider_status: None,
            provider_error: None,
            created_at: now,
            updated_at: now,
        }
    }

    #[test]
    fn outcomes_move_deliveries_to_the_right_state() {
        let now = Utc::now();
        let s = [secs(10), secs(60)];
        let mut d = delivery(1);
        assert_eq!(
            apply_outcome(
                &mut d,
                Outcome::Delivered {
                    receipt: Some("SM1".into())
                },
                &s,
                now
            ),
            "delivered"
        );
        assert_eq!(
            (d.state, d.receipt.as_deref()),
            (DeliveryState::Delivered, Some("SM1"))
        );

        let mut d = delivery(1);
        assert_eq!(
            apply_outcome(
                &mut d,
                Outcome::Rejected {
                    reason: "21211 invalid To".into()
                },
                &s,
                now
            ),
            "rejected"
        );
        assert_eq!(d.state, DeliveryState::Rejected);
        assert_eq!(d.last_error.as_deref(), Some("21211 invalid To"));

        let mut d = delivery(1);
        let o = Outcome::Retry {
            reason: "429".into(),
            after: Some(secs(45)),
        };
        assert_eq!(apply_outcome(&mut d, o, &s, now), "retry");
        assert_eq!(d.state, DeliveryState::Pending);
        assert_eq!(
            d.next_at,
            now + chrono::Duration::seconds(45),
            "Retry-After 45 s beats 10 s ±20 %"
        );

        let mut d = delivery(3);
        let o = Outcome::Retry {
            reason: "503".into(),
            after: None,
        };
        assert_eq!(apply_outcome(&mut d, o, &s, now), "dead");
        assert_eq!(d.state, DeliveryState::Dead);
        assert_eq!(d.last_error.as_deref(), Some("503"));
    }
}

#[cfg(test)]
mod tests_paused;

#[cfg(test)]
mod tests_pg;
