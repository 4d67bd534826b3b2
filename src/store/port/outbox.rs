//! The outbox aggregate of the port: broadcasts (an update going out on a channel), their
//! deliveries (one per update × channel × recipient), claims and outcomes.
//!
//! Why this shape: the dispatcher's hot path is claim → send → record, once per message of a
//! fan-out of up to a hundred thousand. A claim returns a [`Claim`] — the delivery and the
//! [`Lease`] it is held by — and every report on it hands the lease back, so a backend whose
//! outbox several nodes share (PostgreSQL: `FOR UPDATE SKIP LOCKED` and a lease fenced by the
//! attempt number, see `pg::outbox`) refuses a report from a claim that lost its delivery, while
//! sled, with one claimer, ignores it: the lease is two plain values, no allocation and no write
//! per delivery. An incident's deliveries are read a page at a time
//! ([`Outbox::deliveries_page`], keyset by [`DeliveryCursor`]): a status over a big fan-out
//! never holds them all in memory, and each page is one query for a network database.
//! Who a broadcast reaches is the domain's rule ([`ExpandTarget::reaches`]), applied by the
//! backend under its own locks.

use crate::domain::{
    Broadcast, Claim, ComponentName, Delivery, DeliveryCursor, ExpandTarget, Expanded, Lease,
    Update,
};
use crate::store::{Store, StoreError};
use chrono::{DateTime, Utc};
use std::future::Future;
use ulid::Ulid;

/// Deliveries per page when [`Outbox::for_each_delivery`] walks an incident's deliveries.
pub const DELIVERY_PAGE: usize = 1000;

/// The outbox: broadcasts and their expansion into deliveries, claiming due deliveries and
/// recording what became of them.
pub trait Outbox {
    /// Broadcasts not yet fully expanded, oldest first.
    fn open_broadcasts(&self) -> impl Future<Output = Result<Vec<Broadcast>, StoreError>> + Send;

    /// The update a broadcast announces, if it is published.
    fn published_update(
        &self,
        incident: Ulid,
        seq: u32,
    ) -> impl Future<Output = Result<Option<Update>, StoreError>> + Send;

    /// Expands up to `batch` subscribers of a broadcast (those `target` reaches) into pending
    /// deliveries due at `now` — or its single endpoint delivery — and advances the broadcast's
    /// persisted cursor, in one durable step. A recipient already holding a delivery of this
    /// (update, channel) is not given a second (re-expanding after a crash creates nothing new).
    /// A long batch must not hold up the other tasks of the caller's runtime.
    fn expand(
        &self,
        b: &Broadcast,
        components: &[ComponentName],
        target: &ExpandTarget<'_>,
        batch: usize,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Expanded, StoreError>> + Send;

    /// Claims up to `limit` deliveries of `channel` due at or before `now`, in due order: each
    /// comes back in flight with its attempt counted, and no other claim gets it while the lease
    /// holds. A claim that is never recorded (a crash) leaves the delivery due again, at the
    /// latest when its lease runs out (at-least-once). Pending or interrupted between the parts
    /// of a threaded message (`parts_done`), a delivery is claimable.
    fn claim_due(
        &self,
        channel: &str,
        now: DateTime<Utc>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Claim>, StoreError>> + Send;

    /// When the next delivery of `channel` is due, if any is pending. A claimed one counts from
    /// when its lease runs out (a dead node's claim is due again then); a backend whose claims
    /// have no expiry (sled: one node, in-flight ones resumed at start-up) leaves them out.
    fn next_due(
        &self,
        channel: &str,
    ) -> impl Future<Output = Result<Option<DateTime<Utc>>, StoreError>> + Send;

    /// Records the outcome of a claimed delivery (`d` carries the new state, error, receipt and,
    /// when pending again, its next due time) and ends the claim `lease` is of. Durable before
    /// it resolves. A backend that leases claims refuses it (`StoreError::Conflict`) when the
    /// claim no longer holds the delivery, unless the delivery already holds exactly `d` (the
    /// same report made again after its answer was lost: done).
    fn record(
        &self,
        d: &Delivery,
        lease: Lease,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Records progress of a claimed threaded message (`d.parts_done`, the parts already
    /// accepted), keeping the claim, and returns the lease that holds it from now on: a backend
    /// that leases claims extends the lease (a long multi-part send keeps its claim), and the
    /// lease handed in no longer reports on it; one that does not returns `lease` as it was.
    /// Refused as [`Outbox::record`] is when the claim no longer holds the delivery. Durable
    /// before it resolves.
    fn record_progress(
        &self,
        d: &Delivery,
        lease: Lease,
    ) -> impl Future<Output = Result<Lease, StoreError>> + Send;

    /// Indexes a delivery under the provider's message id, so a status callback can find it.
    fn index_receipt(
        &self,
        receipt: &str,
        d: &Delivery,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Records what the provider reported later about a message (`delivered`, `undelivered`, …)
    /// with its error code, in one read-modify-write. `supersedes` decides from the recorded
    /// status whether `status` replaces it (callbacks arrive out of order); when it does not,
    /// nothing is written. Returns the delivery as stored, or `None` if no delivery has that
    /// receipt. Durable before it resolves.
    fn record_provider_status(
        &self,
        receipt: &str,
        status: &str,
        error: Option<u32>,
        now: DateTime<Utc>,
        supersedes: impl Fn(Option<&str>) -> bool + Send,
    ) -> impl Future<Output = Result<Option<Delivery>, StoreError>> + Send;

    /// Start-up: deliveries an earlier run of crier left claimed and unfinished are due again
    /// at `now`. Returns how many. Durable before it resolves.
    fn recover_in_flight(
        &self,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<usize, StoreError>> + Send;

    /// Up to `limit` deliveries of an incident (or of a standalone message's origin) in
    /// (seq, id) order, from just past `after` (from the first with `None`); claimed ones are
    /// shown in flight. A page shorter than `limit` is the last.
    fn deliveries_page(
        &self,
        incident: Ulid,
        after: Option<DeliveryCursor>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Delivery>, StoreError>> + Send;

    /// Visits an incident's deliveries one at a time, in pages of [`DELIVERY_PAGE`]: a status
    /// over a hundred thousand deliveries holds one page in memory, not all of them.
    fn for_each_delivery(
        &self,
        incident: Ulid,
        mut f: impl FnMut(Delivery) + Send,
    ) -> impl Future<Output = Result<(), StoreError>> + Send
    where
        Self: Sync,
    {
        async move {
            let mut after = None;
            loop {
                let page = self.deliveries_page(incident, after, DELIVERY_PAGE).await?;
                let last = page.len() < DELIVERY_PAGE;
                after = page.last().map(DeliveryCursor::after);
                page.into_iter().for_each(&mut f);
                if last {
                    return Ok(());
                }
            }
        }
    }

    /// Every delivery of an incident, in memory (tests, and incidents known to be small).
    fn deliveries_of(
        &self,
        incident: Ulid,
    ) -> impl Future<Output = Result<Vec<Delivery>, StoreError>> + Send
    where
        Self: Sync,
    {
        async move {
            let mut out = Vec::new();
            self.for_each_delivery(incident, |d| out.push(d)).await?;
            Ok(out)
        }
    }

    /// Every broadcast (tests and diagnostics).
    fn broadcasts_of_all(&self) -> impl Future<Output = Result<Vec<Broadcast>, StoreError>> + Send;

    /// One broadcast, as last written (its expansion cursor).
    fn broadcast(
        &self,
        incident: Ulid,
        seq: u32,
        channel: &str,
    ) -> impl Future<Output = Result<Option<Broadcast>, StoreError>> + Send;

    /// Broadcasts of an incident (expansion progress).
    fn broadcasts_of(
        &self,
        incident: Ulid,
    ) -> impl Future<Output = Result<Vec<Broadcast>, StoreError>> + Send;

    /// Puts an incident's dead deliveries back in the queue, due at `now`, attempts reset.
    /// Returns the channel of each one requeued. Durable before it resolves.
    fn requeue_dead(
        &self,
        incident: Ulid,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;

    /// Deliveries waiting to be sent across all channels (pending and retrying, not claimed),
    /// and the oldest one's due time.
    fn queue_depth(
        &self,
    ) -> impl Future<Output = Result<(usize, Option<DateTime<Utc>>), StoreError>> + Send;
}

/// The handle dispatches each method to the open backend.
impl Outbox for Store {
    async fn open_broadcasts(&self) -> Result<Vec<Broadcast>, StoreError> {
        match self {
            Store::Sled(s) => s.open_broadcasts().await,
            Store::Pg(p) => p.open_broadcasts().await,
        }
    }

    async fn published_update(
        &self,
        incident: Ulid,
        seq: u32,
    ) -> Result<Option<Update>, StoreError> {
        match self {
            Store::Sled(s) => s.published_update(incident, seq).await,
            Store::Pg(p) => p.published_update(incident, seq).await,
        }
    }

    async fn expand(
        &self,
        b: &Broadcast,
        components: &[ComponentName],
        target: &ExpandTarget<'_>,
        batch: usize,
        now: DateTime<Utc>,
    ) -> Result<Expanded, StoreError> {
        match self {
            Store::Sled(s) => s.expand(b, components, target, batch, now).await,
            Store::Pg(p) => p.expand(b, components, target, batch, now).await,
        }
    }

    async fn claim_due(
        &self,
        channel: &str,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Claim>, StoreError> {
        match self {
            Store::Sled(s) => s.claim_due(channel, now, limit).await,
            Store::Pg(p) => p.claim_due(channel, now, limit).await,
        }
    }

    async fn next_due(&self, channel: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        match self {
            Store::Sled(s) => s.next_due(channel).await,
            Store::Pg(p) => p.next_due(channel).await,
        }
    }

    async fn record(&self, d: &Delivery, lease: Lease) -> Result<(), StoreError> {
        match self {
            Store::Sled(s) => s.record(d, lease).await,
            Store::Pg(p) => p.record(d, lease).await,
        }
    }

    async fn record_progress(&self, d: &Delivery, lease: Lease) -> Result<Lease, StoreError> {
        match self {
            Store::Sled(s) => s.record_progress(d, lease).await,
            Store::Pg(p) => p.record_progress(d, lease).await,
        }
    }

    async fn index_receipt(&self, receipt: &str, d: &Delivery) -> Result<(), StoreError> {
        match self {
            Store::Sled(s) => s.index_receipt(receipt, d).await,
            Store::Pg(p) => p.index_receipt(receipt, d).await,
        }
    }

    async fn record_provider_status(
        &self,
        receipt: &str,
        status: &str,
        error: Option<u32>,
        now: DateTime<Utc>,
        supersedes: impl Fn(Option<&str>) -> bool + Send,
    ) -> Result<Option<Delivery>, StoreError> {
        match self {
            Store::Sled(s) => {
                s.record_provider_status(receipt, status, error, now, supersedes)
                    .await
            }
            Store::Pg(p) => {
                p.record_provider_status(receipt, status, error, now, supersedes)
                    .await
            }
        }
    }

    async fn recover_in_flight(&self, now: DateTime<Utc>) -> Result<usize, StoreError> {
        match self {
            Store::Sled(s) => s.recover_in_flight(now).await,
            Store::Pg(p) => p.recover_in_flight(now).await,
        }
    }

    async fn deliveries_page(
        &self,
        incident: Ulid,
        after: Option<DeliveryCursor>,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        match self {
            Store::Sled(s) => s.deliveries_page(incident, after, limit).await,
            Store::Pg(p) => p.deliveries_page(incident, after, limit).await,
        }
    }

    async fn broadcasts_of_all(&self) -> Result<Vec<Broadcast>, StoreError> {
        match self {
            Store::Sled(s) => s.broadcasts_of_all().await,
            Store::Pg(p) => p.broadcasts_of_all().await,
        }
    }

    async fn broadcast(
        &self,
        incident: Ulid,
        seq: u32,
        channel: &str,
    ) -> Result<Option<Broadcast>, StoreError> {
        match self {
            Store::Sled(s) => s.broadcast(incident, seq, channel).await,
            Store::Pg(p) => p.broadcast(incident, seq, channel).await,
        }
    }

    async fn broadcasts_of(&self, incident: Ulid) -> Result<Vec<Broadcast>, StoreError> {
        match self {
            Store::Sled(s) => s.broadcasts_of(incident).await,
            Store::Pg(p) => p.broadcasts_of(incident).await,
        }
    }

    async fn requeue_dead(
        &self,
        incident: Ulid,
        now: DateTime<Utc>,
    ) -> Result<Vec<String>, StoreError> {
        match self {
            Store::Sled(s) => s.requeue_dead(incident, now).await,
            Store::Pg(p) => p.requeue_dead(incident, now).await,
        }
    }

    async fn queue_depth(&self) -> Result<(usize, Option<DateTime<Utc>>), StoreError> {
        match self {
            Store::Sled(s) => s.queue_depth().await,
            Store::Pg(p) => p.queue_depth().await,
        }
    }
}
