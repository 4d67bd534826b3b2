//! The outbox: broadcasts (an update going out on a channel), deliveries (one per update ×
//! channel × recipient) and the per-channel due-index that orders pending work.
//!
//! Keys (big-endian, so scans come out in time / timeline order):
//! - `broadcasts`: incident ULID ‖ seq (u32) ‖ channel → JSON [`Broadcast`]
//! - `deliveries`: incident ULID ‖ seq ‖ delivery id → [`Delivery`] in the compact encoding of
//!   [`super::codec`]; the id is the idempotency key of (update, channel, recipient), so each
//!   triple has exactly one record
//! - `due`: channel ‖ 0x00 ‖ due time (ms, u64) ‖ delivery key → (); an entry is live while its
//!   record is unfinished and due at that very millisecond, and stale otherwise
//! - `inflight`: delivery key → channel; written only by earlier versions, whose claims marked
//!   deliveries there, and emptied at start-up (claims now live in memory, see
//!   [`Outbox::claim_due`])
//! - `receipts`: provider message id → delivery key (channels with status callbacks)
//!
//! A delivery costs four writes: its record and due entry at expansion, then its record again
//! and the removal of its due entry with the outcome. Claiming writes nothing.
//!
//! Broadcasts are written *before* their update (see `Incidents::append_update_setting`), so an update that
//! exists always has its broadcasts; crash repair removes broadcasts past `update_count`.

use super::port::{Outbox, DELIVERY_PAGE};
use super::{codec, decode, encode, SledStore, StoreError, Trees};
use crate::domain::{
    Broadcast, Claim, ComponentName, Delivery, DeliveryCursor, DeliveryState, Lease, Subscriber,
    Target, Update,
};
use crate::domain::{ExpandTarget, Expanded};
use chrono::{DateTime, TimeZone, Utc};
use std::ops::Bound;
use ulid::Ulid;

/// Length of a delivery key.
pub const DELIVERY_KEY_LEN: usize = 36;

pub(super) fn broadcast_key(incident: Ulid, seq: u32, channel: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(20 + channel.len());
    k.extend_from_slice(&incident.to_bytes());
    k.extend_from_slice(&seq.to_be_bytes());
    k.extend_from_slice(channel.as_bytes());
    k
}

/// The key of a delivery.
pub fn delivery_key(d: &Delivery) -> [u8; DELIVERY_KEY_LEN] {
    key_of(d.incident_id, d.seq, d.id)
}

/// The key of delivery `id` of (incident, seq).
fn key_of(incident: Ulid, seq: u32, id: Ulid) -> [u8; DELIVERY_KEY_LEN] {
    let mut k = [0u8; DELIVERY_KEY_LEN];
    k[..16].copy_from_slice(&incident.to_bytes());
    k[16..20].copy_from_slice(&seq.to_be_bytes());
    k[20..].copy_from_slice(&id.to_bytes());
    k
}

fn due_key(channel: &str, at: DateTime<Utc>, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(channel.len() + 9 + key.len());
    k.extend_from_slice(channel.as_bytes());
    k.push(0);
    k.extend_from_slice(&(at.timestamp_millis().max(0) as u64).to_be_bytes());
    k.extend_from_slice(key);
    k
}

fn due_prefix(channel: &str) -> Vec<u8> {
    let mut k = channel.as_bytes().to_vec();
    k.push(0);
    k
}

fn due_time(key: &[u8], prefix_len: usize) -> Option<DateTime<Utc>> {
    let ms = u64::from_be_bytes(key.get(prefix_len..prefix_len + 8)?.try_into().ok()?);
    Utc.timestamp_millis_opt(i64::try_from(ms).ok()?).single()
}

impl SledStore {
    fn insert_delivery(
        t: &Trees,
        b: &Broadcast,
        target: Target,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let d = Delivery::pending(b, target, now);
        let dk = delivery_key(&d);
        if t.deliveries.contains_key(dk)? {
            return Ok(false);
        }
        // Due entry first, then the record. sled recovers a prefix of its log, so after a crash
        // either nothing is there (re-expansion creates both), or a due entry without its record
        // (claiming drops it; re-expansion creates both), or both. A record is never left
        // without a way to be sent.
        t.due.insert(due_key(&d.channel, now, &dk), &[])?;
        t.deliveries.insert(dk, codec::encode(&d))?;
        Ok(true)
    }

    /// The synchronous part of [`Outbox::expand`]: reads up to `batch` subscribers, writes their
    /// deliveries and the advanced broadcast. Returns (deliveries created, the broadcast).
    fn expand_batch(
        &self,
        b: &Broadcast,
        components: &[ComponentName],
        target: &ExpandTarget<'_>,
        batch: usize,
        now: DateTime<Utc>,
    ) -> Result<(usize, Broadcast), StoreError> {
        let t = self.t()?;
        // The whole batch, cursor included, is one change for a backup.
        let _w = self.writing();
        let mut created = 0;
        let mut next = b.clone();
        if !b.subscribers {
            if SledStore::insert_delivery(&t, b, Target::Endpoint, now)? {
                created += 1;
            }
            next.done = true;
        } else {
            let iter = match &b.cursor {
                Some(c) => t.subscribers.range::<&[u8], _>((
                    std::ops::Bound::Excluded(c.as_slice()),
                    std::ops::Bound::Unbounded,
                )),
                None => t.subscribers.iter(),
            };
            let mut seen = 0;
            for item in iter {
                let (k, v) = item?;
                let s: Subscriber = decode(&v)?;
                seen += 1;
                next.cursor = Some(k.to_vec());
                if target.reaches(&s, components) {
                    let to = Target::Subscriber {
                        id: s.id,
                        contact: s.contact,
                        locale: s.locale,
                        unsubscribe_token: s.unsubscribe_token,
                    };
                    if SledStore::insert_delivery(&t, b, to, now)? {
                        created += 1;
                    }
                }
                if seen >= batch {
                    break;
                }
            }
            if seen < batch {
                next.done = true;
            }
        }
        t.broadcasts.insert(
            super::outbox::broadcast_key(b.incident_id, b.seq, &b.channel),
            encode(&next)?,
        )?;
        Ok((created, next))
    }

    /// The deliveries claimed and not yet recorded. The set only ever holds whole entries, so a
    /// panic elsewhere while it was locked leaves nothing half-done: a poisoned lock is used as is.
    fn claimed(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<[u8; DELIVERY_KEY_LEN], Vec<u8>>> {
        self.inner
            .claimed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether `dk` (a delivery key, as it ends a due key) is claimed by this process.
    fn is_claimed(&self, dk: &[u8]) -> bool {
        <[u8; DELIVERY_KEY_LEN]>::try_from(dk).is_ok_and(|dk| self.claimed().contains_key(&dk))
    }
}

impl Outbox for SledStore {
    /// Broadcasts not yet fully expanded, oldest first.
    async fn open_broadcasts(&self) -> Result<Vec<Broadcast>, StoreError> {
        let t = self.t()?;
        let mut out = Vec::new();
        for v in t.broadcasts.iter().values() {
            let b: Broadcast = decode(&v?)?;
            if !b.done {
                out.push(b);
            }
        }
        Ok(out)
    }

    /// The update a broadcast announces, if it is published.
    async fn published_update(
        &self,
        incident: Ulid,
        seq: u32,
    ) -> Result<Option<Update>, StoreError> {
        let t = self.t()?;
        let raw = t.updates.get(super::update_key(incident, seq))?;
        let Some(raw) = raw else { return Ok(None) };
        let u: Update = decode(&raw)?;
        Ok(u.published_at.is_some().then_some(u))
    }

    /// Expands up to `batch` subscribers of a broadcast into deliveries (or its single endpoint
    /// delivery), advancing its persisted cursor, and makes it durable.
    async fn expand(
        &self,
        b: &Broadcast,
        components: &[ComponentName],
        target: &ExpandTarget<'_>,
        batch: usize,
        now: DateTime<Utc>,
    ) -> Result<Expanded, StoreError> {
        let t = self.t()?;
        let (created, next) =
            off_the_runtime(|| self.expand_batch(b, components, target, batch, now))?;
        t.durable().await?;
        Ok(Expanded {
            created,
            done: next.done,
        })
    }

    /// Claims up to `limit` deliveries of `channel` due at or before `now`, in due order.
    ///
    /// The sled backend has one claimer, this process, so its leases never run out. A claim
    /// writes nothing: the delivery joins this process's claimed set and its due entry
    /// stays where it is until [`Outbox::record`] writes the outcome and removes it. After a crash
    /// the set is gone and the delivery is simply due again (a resend of at most what was in
    /// flight). Scans skip claimed entries; entries that no longer match a pending record (the
    /// record is final, or was rescheduled to another time, or was never written because an
    /// expansion was cut short) are stale and removed.
    async fn claim_due(
        &self,
        channel: &str,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Claim>, StoreError> {
        let t = self.t()?;
        // Claims write nothing, but stale due entries are removed on the way: unless a backup
        // is reading the store, when they are left for a later scan (a channel worker must not
        // wait for a backup).
        let writable = self.try_writing();
        let prefix = due_prefix(channel);
        let mut out = Vec::with_capacity(limit.min(1024));
        for item in t.due.scan_prefix(&prefix) {
            if out.len() >= limit {
                break;
            }
            let (k, _) = item?;
            let at = match due_time(&k, prefix.len()) {
                Some(t) if t <= now => t,
                _ => break,
            };
            let Ok(dk) = <[u8; DELIVERY_KEY_LEN]>::try_from(&k[prefix.len() + 8..]) else {
                if writable.is_some() {
                    t.due.remove(&k)?;
                }
                continue;
            };
            if self.claimed().contains_key(&dk) {
                continue;
            }
            let record = match t.deliveries.get(dk)? {
                Some(raw) => Some(codec::decode(&raw)?),
                None => None,
            };
            let Some(mut d) = record.filter(|d: &Delivery| {
                // In flight in the record itself: a threaded message interrupted between parts
                // (`record_progress`), which resumes after the parts already accepted.
                matches!(d.state, DeliveryState::Pending | DeliveryState::InFlight)
                    && d.next_at.timestamp_millis() == at.timestamp_millis()
            }) else {
                // A stale entry: final, rescheduled, or left by an interrupted expansion.
                if writable.is_some() {
                    t.due.remove(&k)?;
                }
                continue;
            };
            self.claimed().insert(dk, k.to_vec());
            d.state = DeliveryState::InFlight;
            d.attempts += 1;
            d.updated_at = now;
            // Held for as long as this process lives: nothing for a report to prove.
            let lease = Lease {
                attempt: d.attempts,
                until: None,
            };
            out.push(Claim { delivery: d, lease });
        }
        Ok(out)
    }

    /// When the next delivery of `channel` is due, if any is pending (claimed ones are not).
    async fn next_due(&self, channel: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        let t = self.t()?;
        let prefix = due_prefix(channel);
        for item in t.due.scan_prefix(&prefix) {
            let (k, _) = item?;
            if !k
                .get(prefix.len() + 8..)
                .is_some_and(|dk| self.is_claimed(dk))
            {
                return Ok(due_time(&k, prefix.len()));
            }
        }
        Ok(None)
    }

    /// Records a send's result (`d` carries the new state, error, receipt, next time) and
    /// waits until it is durable.
    ///
    /// The record is written before its claimed due entry goes, so a crash between the two
    /// leaves a due entry that no longer matches (dropped by the next claim), never a pending
    /// delivery without one.
    ///
    /// The lease is not checked: this process is the only claimer.
    async fn record(&self, d: &Delivery, _lease: Lease) -> Result<(), StoreError> {
        let t = self.t()?;
        let dk = delivery_key(d);
        let w = self.writing_async().await;
        t.deliveries.insert(dk, codec::encode(d))?;
        let next = (d.state == DeliveryState::Pending).then(|| due_key(&d.channel, d.next_at, &dk));
        if let Some(next) = &next {
            t.due.insert(next.as_slice(), &[])?;
        }
        // The record is already written, so a claim scan that meets the old entry once it is
        // unclaimed finds it stale (or, for a retry due at the same millisecond, due).
        let claimed_through = self.claimed().remove(&dk);
        if let Some(old) = claimed_through {
            if next.as_ref() != Some(&old) {
                t.due.remove(old)?;
            }
        }
        drop(w);
        t.durable().await
    }

    /// Indexes a delivery under the provider's message id, so a status callback can find it.
    async fn index_receipt(&self, receipt: &str, d: &Delivery) -> Result<(), StoreError> {
        let t = self.t()?;
        let _w = self.writing_async().await;
        t.receipts
            .insert(receipt.as_bytes(), delivery_key(d).as_slice())?;
        Ok(())
    }

    /// Records what the provider reported later about a message (`delivered`, `undelivered`,
    /// …). Returns the delivery, or `None` if no delivery has that receipt.
    /// `supersedes` decides from the recorded status whether `status` replaces it (provider
    /// callbacks arrive out of order); when it does not, nothing is written and the delivery is
    /// returned as it is.
    async fn record_provider_status(
        &self,
        receipt: &str,
        status: &str,
        error: Option<u32>,
        now: DateTime<Utc>,
        supersedes: impl Fn(Option<&str>) -> bool + Send,
    ) -> Result<Option<Delivery>, StoreError> {
        let t = self.t()?;
        let Some(dk) = t.receipts.get(receipt.as_bytes())? else {
            return Ok(None);
        };
        let Some(raw) = t.deliveries.get(&dk)? else {
            return Ok(None);
        };
        let mut d: Delivery = codec::decode(&raw)?;
        if !supersedes(d.provider_status.as_deref()) {
            return Ok(Some(d));
        }
        d.provider_status = Some(status.to_owned());
        d.provider_error = error;
        d.updated_at = now;
        {
            let _w = self.writing_async().await;
            t.deliveries.insert(&dk, codec::encode(&d))?;
        }
        t.durable().await?;
        Ok(Some(d))
    }

    /// Records progress inside a threaded message (parts already accepted), durably.
    /// One claimer and no lease to extend: the claim holds until its outcome is recorded.
    async fn record_progress(&self, d: &Delivery, lease: Lease) -> Result<Lease, StoreError> {
        let t = self.t()?;
        {
            let _w = self.writing_async().await;
            t.deliveries.insert(delivery_key(d), codec::encode(d))?;
        }
        t.durable().await?;
        Ok(lease)
    }

    /// Start-up: deliveries that an earlier version of crier marked in flight (in the `inflight`
    /// tree, which claims no longer write) are due again now. Deliveries claimed by this version
    /// kept their due entries, so they need nothing.
    async fn recover_in_flight(&self, now: DateTime<Utc>) -> Result<usize, StoreError> {
        let t = self.t()?;
        let mut n = 0;
        let w = self.writing_async().await;
        for item in t.inflight.iter() {
            let (dk, _) = item?;
            if let Some(raw) = t.deliveries.get(&dk)? {
                let mut d: Delivery = codec::decode(&raw)?;
                if !d.state.is_final() {
                    d.state = DeliveryState::Pending;
                    d.next_at = now;
                    t.deliveries.insert(&dk, codec::encode(&d))?;
                    t.due.insert(due_key(&d.channel, now, &dk), &[])?;
                    n += 1;
                }
            }
            t.inflight.remove(&dk)?;
        }
        drop(w);
        if n > 0 {
            t.durable().await?;
        }
        Ok(n)
    }

    /// Reads the page off the runtime's async workers: a page of a big fan-out takes about a
    /// millisecond to decode, and a status over it reads a hundred pages.
    async fn deliveries_page(
        &self,
        incident: Ulid,
        after: Option<DeliveryCursor>,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        let t = self.t()?;
        let prefix = incident.to_bytes();
        let from = match after {
            Some(c) => Bound::Excluded(key_of(incident, c.seq, c.id).to_vec()),
            None => Bound::Included(prefix.to_vec()),
        };
        off_the_runtime(|| {
            let mut out = Vec::with_capacity(limit.min(DELIVERY_PAGE));
            for item in t.deliveries.range((from, Bound::Unbounded)) {
                if out.len() >= limit {
                    break;
                }
                let (k, v) = item?;
                if !k.starts_with(&prefix) {
                    break;
                }
                let mut d: Delivery = codec::decode(&v)?;
                if d.state == DeliveryState::Pending && self.is_claimed(&k) {
                    d.state = DeliveryState::InFlight;
                }
                out.push(d);
            }
            Ok(out)
        })
    }

    /// Every broadcast (tests and diagnostics).
    /// Unreadable records are left out (`all_broadcasts`, for exports, refuses them).
    async fn broadcasts_of_all(&self) -> Result<Vec<Broadcast>, StoreError> {
        let t = self.t()?;
        Ok(t.broadcasts
            .iter()
            .values()
            .filter_map(|v| v.ok().and_then(|v| decode(&v).ok()))
            .collect())
    }

    /// One broadcast, as last written (its expansion cursor).
    async fn broadcast(
        &self,
        incident: Ulid,
        seq: u32,
        channel: &str,
    ) -> Result<Option<Broadcast>, StoreError> {
        let t = self.t()?;
        t.broadcasts
            .get(broadcast_key(incident, seq, channel))?
            .map(|v| decode(&v))
            .transpose()
    }

    /// Broadcasts of an incident (expansion progress).
    async fn broadcasts_of(&self, incident: Ulid) -> Result<Vec<Broadcast>, StoreError> {
        let t = self.t()?;
        t.broadcasts
            .scan_prefix(incident.to_bytes())
            .values()
            .map(|v| decode(&v?))
            .collect()
    }

    /// Puts an incident's dead deliveries back in the queue (attempts reset). Returns how many.
    async fn requeue_dead(
        &self,
        incident: Ulid,
        now: DateTime<Utc>,
    ) -> Result<Vec<String>, StoreError> {
        let t = self.t()?;
        let mut channels = Vec::new();
        let w = self.writing_async().await;
        for item in t.deliveries.scan_prefix(incident.to_bytes()) {
            let (dk, raw) = item?;
            let mut d: Delivery = codec::decode(&raw)?;
            if d.state == DeliveryState::Dead {
                d.state = DeliveryState::Pending;
                d.attempts = 0;
                d.next_at = now;
                d.updated_at = now;
                t.deliveries.insert(&dk, codec::encode(&d))?;
                t.due.insert(due_key(&d.channel, now, &dk), &[])?;
                channels.push(d.channel);
            }
        }
        drop(w);
        if !channels.is_empty() {
            t.durable().await?;
        }
        Ok(channels)
    }

    /// Pending deliveries across all channels, and the oldest one's due time.
    async fn queue_depth(&self) -> Result<(usize, Option<DateTime<Utc>>), StoreError> {
        let t = self.t()?;
        let mut oldest: Option<DateTime<Utc>> = None;
        let mut n = 0;
        for k in t.due.iter().keys().flatten() {
            if let Some(sep) = k.iter().position(|&b| b == 0) {
                if k.get(sep + 9..).is_some_and(|dk| self.is_claimed(dk)) {
                    continue; // in flight, not queued
                }
                n += 1;
                if let Some(t) = due_time(&k, sep + 1) {
                    oldest = Some(oldest.map_or(t, |o| o.min(t)));
                }
            }
        }
        Ok((n, oldest))
    }
}

/// Runs `f`, a batch of synchronous store work taking milliseconds, without holding up the
/// other tasks of this runtime worker: on a multi-threaded runtime the worker hands its queue to
/// another thread first (`block_in_place`), so API requests queued behind an expansion batch are
/// not kept waiting for it. On a current-thread runtime (tests) `f` simply runs.
pub(super) fn off_the_runtime<R>(f: impl FnOnce() -> R) -> R {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Body, Contact, Impact, IncidentKind, Locale, Title};
    use crate::store::port::{Incidents, Subscribers};
    use crate::store::{NewIncident, NewSubscriber};

    fn open(dir: &std::path::Path) -> SledStore {
        SledStore::open(&dir.join("db")).unwrap()
    }

    async fn setup(store: &SledStore, subscribers: usize) -> Broadcast {
        let now = Utc::now();
        let batch = (0..subscribers)
            .map(|i| NewSubscriber {
                contact: Contact::phone(&format!("+35840{i:07}")).unwrap(),
                locale: Locale::english(),
                components: vec![],
                confirmed: true,
            })
            .collect();
        store.import_subscribers(batch, now).await.unwrap();
        let (i, _) = store
            .create_incident(
                NewIncident {
                    titles: Default::default(),
                    title: Title::parse("t").unwrap(),
                    kind: IncidentKind::Incident,
                    status: None,
                    impact: Impact::Minor,
                    components: vec![],
                    body: Body::single(Locale::english(), "m").unwrap(),
                    author: "a".into(),
                    next_update_due: None,
                    draft: false,
                    broadcast: vec![("sms".into(), true)],
                    scheduled_for: None,
                    scheduled_until: None,
                    holding_statement: false,
                    remind_before: None,
                },
                now,
            )
            .await
            .unwrap();
        let open = store.open_broadcasts().await.unwrap();
        assert_eq!(open.len(), 1);
        assert_eq!(open[0].incident_id, i.id);
        open[0].clone()
    }

    fn all(_: &Subscriber) -> bool {
        true
    }

    /// A store in a fresh dir with `subscribers` subscribers and one incident whose `sms`
    /// broadcast is fully expanded at the returned time.
    async fn expanded(
        subscribers: usize,
    ) -> (tempfile::TempDir, SledStore, Broadcast, DateTime<Utc>) {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let b = setup(&store, subscribers).await;
        let now = Utc::now();
        store
            .expand(&b, &[], &ExpandTarget { reaches: &all }, 100, now)
            .await
            .unwrap();
        (dir, store, b, now)
    }

    /// An expansion batch (milliseconds of synchronous store work) gives its runtime worker up
    /// first, so the worker's other tasks — API requests — run meanwhile. With one worker, the
    /// first subscriber check spawns a task and waits for it: the task can only run if the batch
    /// handed the worker over. The 10 s wait guards against a hang; it is not a timing: the
    /// signal comes at once or never.
    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn an_expansion_batch_lets_the_other_tasks_of_its_worker_run() {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::Arc;
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let b = setup(&store, 3).await;
        let other_ran = Arc::new(AtomicBool::new(false));
        let seen = other_ran.clone();
        // Spawned, so that it runs on the worker (the test body runs on its own thread).
        let expansion = tokio::spawn(async move {
            let asked = AtomicBool::new(false);
            let reaches = |_: &Subscriber| {
                if !asked.swap(true, Ordering::SeqCst) {
                    let (tx, rx) = std::sync::mpsc::channel();
                    tokio::runtime::Handle::current().spawn(async move { tx.send(()).ok() });
                    let ran = rx.recv_timeout(std::time::Duration::from_secs(10)).is_ok();
                    seen.store(ran, Ordering::SeqCst);
                }
                true
            };
            store
                .expand(
                    &b,
                    &[],
                    &ExpandTarget { reaches: &reaches },
                    100,
                    Utc::now(),
                )
                .await
        });
        let step = expansion.await.unwrap().unwrap();
        assert_eq!(step.created, 3);
        assert!(
            other_ran.load(Ordering::SeqCst),
            "a task of the expander's worker waited for the whole batch"
        );
    }

    #[tokio::test]
    async fn expansion_resumes_from_its_cursor_without_duplicates() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = open(dir.path());
            let b = setup(&store, 25).await;
            let step = store
                .expand(&b, &[], &ExpandTarget { reaches: &all }, 10, Utc::now())
                .await
                .unwrap();
            assert_eq!(
                step,
                Expanded {
                    created: 10,
                    done: false
                }
            );
            // Simulate a crash after deliveries of the next batch were written but before the
            // cursor moved: expand from the *old* broadcast record once more.
            store
                .expand(&b, &[], &ExpandTarget { reaches: &all }, 15, Utc::now())
                .await
                .unwrap();
            store.close().await.unwrap();
        }
        let store = open(dir.path());
        let mut rounds = 0;
        while let Some(b) = store.open_broadcasts().await.unwrap().pop() {
            store
                .expand(&b, &[], &ExpandTarget { reaches: &all }, 10, Utc::now())
                .await
                .unwrap();
            rounds += 1;
            assert!(rounds < 10);
        }
        let deliveries = store
            .deliveries_of(store.broadcasts_of_all().await.unwrap()[0].incident_id)
            .await
            .unwrap();
        assert_eq!(deliveries.len(), 25, "every subscriber once");
        let mut keys: Vec<&str> = deliveries
            .iter()
            .map(|d| d.idempotency_key.as_str())
            .collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), 25);
        assert_eq!(store.queue_depth().await.unwrap().0, 25);
    }

    #[tokio::test]
    async fn claims_are_due_ordered_and_recovered_after_a_crash() {
        let (dir, store, _b, now) = expanded(5).await;
        assert!(
            store
                .claim_due("sms", now - chrono::Duration::seconds(1), 10)
                .await
                .unwrap()
                .is_empty(),
            "nothing due yet"
        );
        assert!(
            store.claim_due("email", now, 10).await.unwrap().is_empty(),
            "other channels are separate"
        );
        let claimed = store.claim_due("sms", now, 3).await.unwrap();
        assert_eq!(claimed.len(), 3);
        assert!(claimed
            .iter()
            .all(|c| c.delivery.state == DeliveryState::InFlight
                && c.delivery.attempts == 1
                && c.lease.attempt == 1));
        // A retry scheduled later is not claimable before its time.
        let mut later = claimed[0].delivery.clone();
        later.state = DeliveryState::Pending;
        later.next_at = now + chrono::Duration::seconds(30);
        store.record(&later, claimed[0].lease).await.unwrap();
        assert_eq!(
            store.claim_due("sms", now, 10).await.unwrap().len(),
            2,
            "the other two"
        );
        assert_eq!(
            store.next_due("sms").await.unwrap(),
            Some(later.next_at).map(|t| Utc.timestamp_millis_opt(t.timestamp_millis()).unwrap())
        );
        // Four are in flight, and the claims wrote nothing: after a crash (the store reopened
        // without recording them) all four are due again, and nothing else is.
        assert_eq!(
            store.queue_depth().await.unwrap().0,
            1,
            "only the rescheduled one is queued"
        );
        store.close().await.unwrap();
        let store = open(dir.path());
        let again = store.claim_due("sms", now, 10).await.unwrap();
        assert_eq!(again.len(), 4);
        assert!(
            again.iter().all(|c| c.delivery.id != later.id),
            "the rescheduled one waits for its time"
        );
        assert_eq!(store.recover_in_flight(now).await.unwrap(), 0);
    }

    /// Deliveries marked in flight by an earlier version (the `inflight` tree) are due again at
    /// start-up, and the tree is emptied.
    #[tokio::test]
    async fn in_flight_marks_of_earlier_versions_are_recovered() {
        let (_dir, store, b, now) = expanded(2).await;
        // What an earlier version's claim left: the due entry gone, an in-flight mark instead.
        for d in store.deliveries_of(b.incident_id).await.unwrap() {
            let dk = delivery_key(&d);
            store
                .t()
                .unwrap()
                .due
                .remove(due_key("sms", d.next_at, &dk))
                .unwrap();
            store.t().unwrap().inflight.insert(dk, "sms").unwrap();
        }
        assert!(store.claim_due("sms", now, 10).await.unwrap().is_empty());
        let later = now + chrono::Duration::seconds(1);
        assert_eq!(store.recover_in_flight(later).await.unwrap(), 2);
        assert!(store.t().unwrap().inflight.is_empty());
        assert_eq!(store.claim_due("sms", later, 10).await.unwrap().len(), 2);
    }

    /// A delivery whose outcome was recorded is not claimed again through its old due entry,
    /// even if that entry survived (a crash between writing the record and removing the entry),
    /// and a retry is not claimed before its new time through the entry it was claimed by.
    #[tokio::test]
    async fn recorded_outcomes_retire_their_due_entries() {
        let (_dir, store, _b, now) = expanded(2).await;
        let mut claimed = store.claim_due("sms", now, 10).await.unwrap();
        assert_eq!(claimed.len(), 2);
        let Claim {
            delivery: mut done,
            lease: done_lease,
        } = claimed.remove(0);
        let Claim {
            delivery: mut retry,
            lease: retry_lease,
        } = claimed.remove(0);
        done.state = DeliveryState::Delivered;
        store.record(&done, done_lease).await.unwrap();
        retry.state = DeliveryState::Pending;
        retry.next_at = now + chrono::Duration::seconds(60);
        store.record(&retry, retry_lease).await.unwrap();
        // The crash case: the old entries put back as if their removal had been lost.
        for d in [&done, &retry] {
            store
                .t()
                .unwrap()
                .due
                .insert(due_key("sms", now, &delivery_key(d)), &[])
                .unwrap();
        }
        let soon = now + chrono::Duration::seconds(1);
        assert!(store.claim_due("sms", soon, 10).await.unwrap().is_empty());
        assert_eq!(
            store.queue_depth().await.unwrap().0,
            1,
            "the stale entries were dropped"
        );
        let later = now + chrono::Duration::seconds(61);
        let again = store.claim_due("sms", later, 10).await.unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].delivery.id, retry.id);
        assert_eq!(again[0].delivery.attempts, 2);
    }

    #[tokio::test]
    async fn dead_deliveries_can_be_requeued() {
        let (_dir, store, b, now) = expanded(2).await;
        for Claim {
            delivery: mut d,
            lease,
        } in store.claim_due("sms", now, 10).await.unwrap()
        {
            d.state = DeliveryState::Dead;
            d.last_error = Some("gave up".into());
            store.record(&d, lease).await.unwrap();
        }
        assert_eq!(store.queue_depth().await.unwrap().0, 0);
        let requeued = store.requeue_dead(b.incident_id, now).await.unwrap();
        assert_eq!(requeued, vec!["sms".to_owned(), "sms".to_owned()]);
        let again = store.claim_due("sms", now, 10).await.unwrap();
        assert_eq!(again.len(), 2);
        assert!(
            again.iter().all(|c| c.delivery.attempts == 1),
            "attempts start over"
        );
    }

    /// What a crash can leave (a prefix of the log) never sends a delivery twice or loses it:
    /// a second due entry for a claimed delivery is dropped, a due entry without its record is
    /// dropped, and re-expansion does not create a second record for the same recipient.
    #[tokio::test]
    async fn stale_due_entries_are_dropped_and_re_expansion_reuses_the_record() {
        let (_dir, store, b, now) = expanded(1).await;
        // Re-expanding the same broadcast (cursor not yet moved at the crash) reuses the key.
        let again = store
            .expand(&b, &[], &ExpandTarget { reaches: &all }, 100, now)
            .await
            .unwrap();
        assert_eq!(again.created, 0);
        assert_eq!(store.deliveries_of(b.incident_id).await.unwrap().len(), 1);
        let claimed = store.claim_due("sms", now, 10).await.unwrap();
        assert_eq!(
            claimed.len(),
            1,
            "the duplicate due entry is not claimed twice"
        );
        // A second due entry for a delivery in flight is not claimed again.
        let dk = delivery_key(&claimed[0].delivery);
        store
            .t()
            .unwrap()
            .due
            .insert(due_key("sms", now, &dk), &[])
            .unwrap();
        assert!(store.claim_due("sms", now, 10).await.unwrap().is_empty());
        // A due entry without a record (an expansion cut short) is dropped too.
        let mut ghost = claimed[0].delivery.clone();
        ghost.id = Ulid::new();
        store
            .t()
            .unwrap()
            .due
            .insert(due_key("sms", now, &delivery_key(&ghost)), &[])
            .unwrap();
        assert!(store.claim_due("sms", now, 10).await.unwrap().is_empty());
        assert_eq!(
            store.queue_depth().await.unwrap().0,
            0,
            "the ghost was dropped"
        );
        let mut done = claimed[0].delivery.clone();
        done.state = DeliveryState::Delivered;
        store.record(&done, claimed[0].lease).await.unwrap();
        assert!(store.claim_due("sms", now, 10).await.unwrap().is_empty());
        assert_eq!(
            store.t().unwrap().due.len(),
            0,
            "the second entry went with the outcome's claim scan"
        );
    }
}
